/*
 * test_price.c - table tests for exact price arithmetic: parsing and
 * formatting prices, splitting usage into token classes, and costs in
 * nano-units rounded once, half up, including the smallest prices, the
 * largest token counts and discounts in basis points.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "price.h"
#include "tap.h"

/* Nano-units per million tokens from a whole and a nine-digit fraction. */
#define NANOS(whole, frac) ((int64_t)(whole)*PRICE_NANOS + (frac))

struct parse_case {
	const char *text;
	int64_t nanos;
	const char *canonical; /* what price_format gives back */
};

static const struct parse_case valid_cases[] = {
	{ "0", 0, "0" },
	{ "2.5", NANOS(2, 500000000), "2.5" },
	{ "0.075", NANOS(0, 75000000), "0.075" },
	{ "0.1", NANOS(0, 100000000), "0.1" },
	{ "100", NANOS(100, 0), "100" },
	{ "0.000000001", 1, "0.000000001" },
	{ "1000000", PRICE_MAX, "1000000" },
	{ "0.0", 0, "0" },
	{ "2.50", NANOS(2, 500000000), "2.5" },
	{ "1.0000000000", NANOS(1, 0), "1" },
	{ "999999.999999999", PRICE_MAX - 1, "999999.999999999" },
	{ "0.014", NANOS(0, 14000000), "0.014" },
	{ "15", NANOS(15, 0), "15" },
	{ "123.456789012", NANOS(123, 456789012), "123.456789012" },
	{ "007.5", NANOS(7, 500000000), "7.5" },
};

static const char *const invalid_cases[] = {
	"",
	"-1",
	"-0.5",
	"1e5",
	"1.0000000001",
	"abc",
	"1.2.3",
	".",
	"1000000.000000001",
	"1000001",
	"99999999999999999999999",
	" 1",
	"1 ",
	"1,5",
	"0x10",
};

/* Valid prices parse to exact nano-units and format back canonically. */
static void
test_parse_valid(void)
{
	for (size_t i = 0; i < sizeof valid_cases / sizeof *valid_cases; i++) {
		const struct parse_case *c = &valid_cases[i];
		const char *cause = NULL;
		int64_t nanos = -1, again = -1;
		char buf[64];
		int rc = price_parse(c->text, &nanos, &cause);

		if (!is_int(rc, 0, "price_parse(\"%s\") succeeds", c->text))
			diag("cause: %s", cause ? cause : "(none)");
		is_int(nanos, c->nanos, "price_parse(\"%s\") nanos", c->text);
		price_format(nanos, buf, sizeof buf);
		is_str(buf, c->canonical, "price_format(%lld)",
		       (long long)nanos);
		rc = price_parse(buf, &again, &cause);
		ok(rc == 0 && again == nanos, "\"%s\" parses back to %lld", buf,
		   (long long)nanos);
	}
}

/* Invalid prices are refused with a message. */
static void
test_parse_invalid(void)
{
	for (size_t i = 0; i < sizeof invalid_cases / sizeof *invalid_cases;
	     i++) {
		const char *cause = NULL;
		int64_t nanos = 12345;
		int rc = price_parse(invalid_cases[i], &nanos, &cause);

		is_int(rc, -1, "price_parse(\"%s\") fails", invalid_cases[i]);
		ok(cause != NULL && cause[0] != '\0',
		   "price_parse(\"%s\") says why (%s)", invalid_cases[i],
		   cause ? cause : "(none)");
	}
}

/* Formatting: every nano-unit kept, no trailing zeros, small buffers
 * truncated safely. */
static void
test_format(void)
{
	static const struct {
		int64_t nanos;
		const char *text;
	} cases[] = {
		{ 0, "0" },
		{ 1, "0.000000001" },
		{ 10, "0.00000001" },
		{ 999999999, "0.999999999" },
		{ PRICE_NANOS, "1" },
		{ PRICE_NANOS + 1, "1.000000001" },
		{ 1250000000, "1.25" },
		{ PRICE_MAX, "1000000" },
	};
	char small[4];

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char buf[64];
		price_format(cases[i].nanos, buf, sizeof buf);
		is_str(buf, cases[i].text, "price_format(%lld)",
		       (long long)cases[i].nanos);
	}
	memset(small, 'x', sizeof small);
	price_format(1250000000, small, sizeof small);
	is_str(small, "1.2", "price_format truncates to the buffer");
}

/* Usage splits into input (uncached prompt), cached, cache write and
 * output (completion, reasoning included). */
static void
test_classes(void)
{
	static const struct {
		struct usage u;
		int64_t in, cached, cw, out;
		const char *name;
	} cases[] = {
		{ { 1200, 85, 1024, 0, 0, 1 },
		  176,
		  1024,
		  0,
		  85,
		  "openai-chat: 1200 prompt incl. 1024 cached" },
		{ { 1100, 50, 1024, 0, 0, 1 },
		  76,
		  1024,
		  0,
		  50,
		  "deepseek-chat: 1100 prompt incl. 1024 cached" },
		{ { 16, 44, 0, 0, 0, 1 }, 16, 0, 0, 44, "zhipu-chat" },
		{ { 30, 210, 0, 0, 192, 1 },
		  30,
		  0,
		  0,
		  210,
		  "reasoning bills as output" },
		{ { 3000, 10, 1000, 1500, 0, 1 },
		  500,
		  1000,
		  1500,
		  10,
		  "cache reads and writes" },
		{ { 10, 0, 8, 8, 0, 1 }, 0, 8, 8, 0, "input never below zero" },
		{ { 0, 0, 0, 0, 0, 0 }, 0, 0, 0, 0, "no usage" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct token_counts t;
		price_classes(&cases[i].u, &t);
		is_int(t.n[TC_INPUT], cases[i].in, "%s: input", cases[i].name);
		is_int(t.n[TC_CACHED], cases[i].cached, "%s: cached",
		       cases[i].name);
		is_int(t.n[TC_CACHE_WRITE], cases[i].cw, "%s: cache write",
		       cases[i].name);
		is_int(t.n[TC_OUTPUT], cases[i].out, "%s: output",
		       cases[i].name);
	}
}

/* A price with the same nano-units per million for every class. */
static struct price
flat(int64_t per_mtok)
{
	struct price p = { .id = 1, .currency = "CNY" };

	for (int c = 0; c < TC__COUNT; c++)
		p.per_mtok[c] = per_mtok;
	return p;
}

struct cost_case {
	const char *name;
	int64_t per_mtok[TC__COUNT];
	int64_t n[TC__COUNT];
	int rc;
	int64_t nanos;
};

#define P4(x)                                                                  \
	{                                                                      \
		(x), (x), (x), (x)                                             \
	}
#define IN(x)                                                                  \
	{                                                                      \
		(x), 0, 0, 0                                                   \
	}
#define T40 ((int64_t)1 << 40)
#define T62 ((int64_t)1 << 62)

static const struct cost_case cost_cases[] = {
	/* 0.1 CNY per million is 100 nano-units a token. */
	{ "0.1/M, 1 token", P4(NANOS(0, 100000000)), IN(1), 0, 100 },
	{ "0.1/M, 5 tokens", P4(NANOS(0, 100000000)), IN(5), 0, 500 },
	/* 0.0001 per million is 0.1 nano-unit a token. */
	{ "0.0001/M, 1 token: 0.1 rounds to 0", P4(100000), IN(1), 0, 0 },
	{ "0.0001/M, 4 tokens: 0.4 rounds to 0", P4(100000), IN(4), 0, 0 },
	{ "0.0001/M, 5 tokens: 0.5 rounds half up to 1", P4(100000), IN(5), 0,
	  1 },
	{ "0.0001/M, 15 tokens: 1.5 -> 2", P4(100000), IN(15), 0, 2 },
	{ "0.0001/M, 25 tokens: 2.5 -> 3 (half up, not to even)", P4(100000),
	  IN(25), 0, 3 },
	{ "0.0001/M, 35 tokens: 3.5 -> 4", P4(100000), IN(35), 0, 4 },
	{ "0.0001/M, 24 tokens: 2.4 -> 2", P4(100000), IN(24), 0, 2 },
	{ "0.0001/M, 26 tokens: 2.6 -> 3", P4(100000), IN(26), 0, 3 },
	/* The finest price: one nano-unit per million tokens. */
	{ "1 nano/M, 499999 tokens", P4(1), IN(499999), 0, 0 },
	{ "1 nano/M, 500000 tokens", P4(1), IN(500000), 0, 1 },
	{ "1 nano/M, 1500000 tokens", P4(1), IN(1500000), 0, 2 },
	/* Rounded once over the sum of the classes, not per class:
	 * 0.3 + 0.2 = 0.5 -> 1, where per-class rounding would give 0. */
	{ "rounded once over classes",
	  { 100000, 0, 0, 100000 },
	  { 3, 0, 0, 2 },
	  0,
	  1 },
	{ "rounded once over four classes", P4(100000), { 1, 1, 1, 2 }, 0, 1 },
	/* Zero prices and zero tokens. */
	{ "zero price", P4(0), { 1000, 2000, 3000, 4000 }, 0, 0 },
	{ "zero price, huge counts", P4(0), P4(T62), 0, 0 },
	{ "zero tokens", P4(PRICE_MAX), P4(0), 0, 0 },
	/* Mixed classes: openai-chat split at 2.5 / 1.25 / 3.75 / 10 USD. */
	{ "mixed classes, exact",
	  { NANOS(2, 500000000), NANOS(1, 250000000), NANOS(3, 750000000),
	    NANOS(10, 0) },
	  { 176, 1024, 0, 85 },
	  0,
	  2570000 },
	{ "mixed classes with cache write",
	  { NANOS(3, 0), NANOS(0, 300000000), NANOS(3, 750000000),
	    NANOS(15, 0) },
	  { 500, 1000, 1500, 10 },
	  0,
	  1500000 + 300000 + 5625000 + 150000 },
	{ "mixed classes, 0.14 / 0.014 / 0.28 USD",
	  { NANOS(0, 140000000), NANOS(0, 14000000), NANOS(0, 140000000),
	    NANOS(0, 280000000) },
	  { 76, 1024, 0, 50 },
	  0,
	  10640 + 14336 + 14000 },
	/* Huge token counts. */
	{ "2^40 tokens at 0.001/M", P4(1000000), IN(T40), 0, T40 },
	{ "2^40 tokens at 1/M", P4(PRICE_NANOS), IN(T40), 0, T40 * 1000 },
	{ "2^33 tokens at 1,000,000/M", P4(PRICE_MAX), IN((int64_t)1 << 33), 0,
	  ((int64_t)1 << 33) * PRICE_NANOS },
	{ "2^40 tokens at 1,000,000/M overflows", P4(PRICE_MAX), IN(T40), -1,
	  0 },
	{ "2^62 tokens at 1 nano/M", P4(1), IN(T62), 0,
	  4611686018427LL /* 4611686018427.387904 */ },
	{ "2^62 tokens at 1/M overflows", P4(PRICE_NANOS), IN(T62), -1, 0 },
	{ "2^62 tokens at 1,000,000/M overflows", P4(PRICE_MAX), IN(T62), -1,
	  0 },
	{ "2^62 tokens in every class at 1,000,000/M overflows", P4(PRICE_MAX),
	  P4(T62), -1, 0 },
	{ "INT64_MAX tokens in every class at 1,000,000/M overflows",
	  P4(PRICE_MAX), P4(INT64_MAX), -1, 0 },
	{ "just below INT64_MAX nano-units", P4(PRICE_NANOS),
	  IN(INT64_MAX / 1000), 0, (INT64_MAX / 1000) * 1000 },
	/* Refused inputs. */
	{ "negative tokens", P4(PRICE_NANOS), IN(-1), -1, 0 },
	{ "negative price", { -1, 0, 0, 0 }, IN(1), -1, 0 },
};

/* price_cost over the table. */
static void
test_cost(void)
{
	for (size_t i = 0; i < sizeof cost_cases / sizeof *cost_cases; i++) {
		const struct cost_case *c = &cost_cases[i];
		struct price p = { .id = 1, .currency = "USD" };
		struct token_counts t;
		int64_t nanos = -777;
		int rc;

		memcpy(p.per_mtok, c->per_mtok, sizeof p.per_mtok);
		memcpy(t.n, c->n, sizeof t.n);
		rc = price_cost(&p, &t, &nanos);
		is_int(rc, c->rc, "%s: status", c->name);
		if (c->rc == 0)
			is_int(nanos, c->nanos, "%s: nano-units", c->name);
	}
}

struct bp_case {
	const char *name;
	int64_t per_mtok;
	int64_t tokens;
	int bp;
	int rc;
	int64_t nanos;
};

static const struct bp_case bp_cases[] = {
	/* 1 token at 2.57/M: 2,570 nano-units before the discount. */
	{ "0 bp", NANOS(2, 570000000), 1, 0, 0, 0 },
	{ "1 bp of 2,570: 0.257 -> 0", NANOS(2, 570000000), 1, 1, 0, 0 },
	{ "1 bp of 2,570,000", NANOS(2, 570000000), 1000, 1, 0, 257 },
	{ "2000 bp", NANOS(2, 570000000), 1, 2000, 0, 514 },
	{ "10000 bp is the whole cost", NANOS(2, 570000000), 1, 10000, 0,
	  2570 },
	{ "0 bp of a huge cost", NANOS(2, 570000000), T40, 0, 0, 0 },
	/* One nano-unit (1 token at 0.001/M). */
	{ "5000 bp of 1: 0.5 -> 1", 1000000, 1, 5000, 0, 1 },
	{ "4999 bp of 1: 0.4999 -> 0", 1000000, 1, 4999, 0, 0 },
	{ "5001 bp of 1: 0.5001 -> 1", 1000000, 1, 5001, 0, 1 },
	{ "5000 bp of 3: 1.5 -> 2", 1000000, 3, 5000, 0, 2 },
	{ "5000 bp of 5: 2.5 -> 3", 1000000, 5, 5000, 0, 3 },
	{ "2500 bp of 2: 0.5 -> 1", 1000000, 2, 2500, 0, 1 },
	{ "2000 bp of 5 x 0.1: 0.1 -> 0", 100000, 5, 2000, 0, 0 },
	/* The discount is applied before the one rounding: 2000 bp of
	 * 25 x 0.1 nano is 0.5 -> 1, where rounding the cost first (2.5 ->
	 * 3, x 0.2 = 0.6 -> 1) or truncating would not be exact. */
	{ "2000 bp of 25 x 0.1 nano: 0.5 -> 1", 100000, 25, 2000, 0, 1 },
	{ "2000 bp of 22 x 0.1 nano: 0.44 -> 0", 100000, 22, 2000, 0, 0 },
	{ "3000 bp of 5 x 0.1: 0.15 -> 0", 100000, 5, 3000, 0, 0 },
	/* Refused percentages. */
	{ "-1 bp", NANOS(1, 0), 1000, -1, -1, 0 },
	{ "10001 bp", NANOS(1, 0), 1000, 10001, -1, 0 },
	/* Overflow is reported with a discount too. */
	{ "2^62 tokens at 1,000,000/M, 1 bp overflows", PRICE_MAX, T62, 1, -1,
	  0 },
	{ "2^62 tokens at 1/M, 1 bp", PRICE_NANOS, T62, 1, 0,
	  461168601842738790LL /* 4611686018427387904000 / 10^4 */ },
};

/* price_cost_bp over the table, and agreement with price_cost. */
static void
test_cost_bp(void)
{
	for (size_t i = 0; i < sizeof bp_cases / sizeof *bp_cases; i++) {
		const struct bp_case *c = &bp_cases[i];
		struct price p = flat(c->per_mtok);
		struct token_counts t = { { c->tokens, 0, 0, 0 } };
		int64_t nanos = -777;
		int rc = price_cost_bp(&p, &t, c->bp, &nanos);

		is_int(rc, c->rc, "%s: status", c->name);
		if (c->rc == 0)
			is_int(nanos, c->nanos, "%s: nano-units", c->name);
	}
	for (size_t i = 0; i < sizeof cost_cases / sizeof *cost_cases; i++) {
		const struct cost_case *c = &cost_cases[i];
		struct price p;
		struct token_counts t;
		int64_t a = -1, b = -2;
		int ra, rb;

		memcpy(p.per_mtok, c->per_mtok, sizeof p.per_mtok);
		memcpy(t.n, c->n, sizeof t.n);
		ra = price_cost(&p, &t, &a);
		rb = price_cost_bp(&p, &t, 10000, &b);
		ok(ra == rb && (ra != 0 || a == b),
		   "%s: 10000 bp equals price_cost", c->name);
	}
}

int
main(void)
{
	test_parse_valid();
	test_parse_invalid();
	test_format();
	test_classes();
	test_cost();
	test_cost_bp();
	return done_testing();
}
