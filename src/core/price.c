/*
 * price.c - exact price arithmetic in integer nano-units.
 */
#include <stdio.h>
#include <string.h>

#include "price.h"

/* Parses a decimal with at most nine fractional digits into nanos. */
int
price_parse(const char *s, int64_t *nanos, const char **cause)
{
	int64_t whole = 0, frac = 0;
	int digits = 0, fdigits = 0;

	if (s == NULL || *s == '\0') {
		*cause = "empty price";
		return -1;
	}
	if (*s == '-') {
		*cause = "a price cannot be negative";
		return -1;
	}
	if (*s == '+')
		s++;
	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		whole = whole * 10 + (*s - '0');
		if (whole > PRICE_MAX / PRICE_NANOS) {
			*cause = "price too large";
			return -1;
		}
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, fdigits++) {
			if (fdigits == 9) {
				if (*s != '0') {
					*cause = "more than nine decimals";
					return -1;
				}
				continue;
			}
			frac = frac * 10 + (*s - '0');
		}
		if (fdigits == 0 && digits == 0) {
			*cause = "not a number";
			return -1;
		}
	}
	if (*s != '\0' || (digits == 0 && fdigits == 0)) {
		*cause = "not a decimal number";
		return -1;
	}
	for (int i = fdigits < 9 ? fdigits : 9; i < 9; i++)
		frac *= 10;
	*nanos = whole * PRICE_NANOS + frac;
	if (*nanos > PRICE_MAX) {
		*cause = "price too large";
		return -1;
	}
	return 0;
}

/* Formats nanos as a decimal, without trailing zeros. */
void
price_format(int64_t nanos, char *buf, size_t size)
{
	int64_t whole = nanos / PRICE_NANOS, frac = nanos % PRICE_NANOS;
	char f[16];
	size_t n;

	if (frac == 0) {
		snprintf(buf, size, "%lld", (long long)whole);
		return;
	}
	snprintf(f, sizeof f, "%09lld", (long long)frac);
	n = strlen(f);
	while (n > 0 && f[n - 1] == '0')
		f[--n] = '\0';
	snprintf(buf, size, "%lld.%s", (long long)whole, f);
}

/* Splits usage into the four billed classes. */
void
price_classes(const struct usage *u, struct token_counts *t)
{
	int64_t in = u->prompt - u->cached - u->cache_write;

	t->n[TC_INPUT] = in > 0 ? in : 0;
	t->n[TC_CACHED] = u->cached;
	t->n[TC_CACHE_WRITE] = u->cache_write;
	t->n[TC_OUTPUT] = u->completion;
}

/* Sums tokens * price (* bp/10000) over classes, divides once, rounds half
 * up. The sum is in 128 bits: 2^63 tokens times the largest price fits. */
static int
cost(const struct price *p, const struct token_counts *t, int bp,
     int64_t *nanos)
{
	__int128 sum = 0, div = (__int128)PRICE_MTOK * 10000, q;

	for (int c = 0; c < TC__COUNT; c++) {
		if (t->n[c] < 0 || p->per_mtok[c] < 0)
			return -1;
		sum += (__int128)t->n[c] * p->per_mtok[c];
		if (sum < 0)
			return -1;
	}
	/* sum * bp may exceed 128 bits only past 2^113: divide first then. */
	if (sum > ((__int128)1 << 112)) {
		q = sum / PRICE_MTOK;
		sum = q * bp;
		div = 10000;
	} else {
		sum *= bp;
	}
	q = (sum + div / 2) / div;
	if (q > INT64_MAX)
		return -1;
	*nanos = (int64_t)q;
	return 0;
}

/* The cost of counts at p. */
int
price_cost(const struct price *p, const struct token_counts *t, int64_t *nanos)
{
	return cost(p, t, 10000, nanos);
}

/* The cost of counts at p scaled by bp/10000. */
int
price_cost_bp(const struct price *p, const struct token_counts *t, int bp,
	      int64_t *nanos)
{
	if (bp < 0 || bp > 10000)
		return -1;
	return cost(p, t, bp, nanos);
}
