/*
 * test_util.c - table tests for the utility layer every module builds
 * on: the growable buffer, the string-keyed hash table, PostgreSQL array
 * literals, the timestamp formatter and UTF-8 lengths and widths.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "sqlarr.h"
#include "strmap.h"
#include "tap.h"
#include "utf8.h"

struct time_case {
	int64_t us;
	enum clock_style style;
	const char *want;
};

static const struct time_case time_cases[] = {
	{ 0, CLOCK_SQL, "1970-01-01 00:00:00.000000+00" },
	{ 0, CLOCK_ISO_MS, "1970-01-01T00:00:00.000Z" },
	{ 0, CLOCK_ISO, "1970-01-01T00:00:00Z" },
	{ 1762164000123456LL, CLOCK_SQL, "2025-11-03 10:00:00.123456+00" },
	{ 1762164000123456LL, CLOCK_ISO_MS, "2025-11-03T10:00:00.123Z" },
	/* a leap day, and the last microsecond of a year */
	{ 1709164800000000LL, CLOCK_ISO, "2024-02-29T00:00:00Z" },
	{ 1735689599999999LL, CLOCK_SQL, "2024-12-31 23:59:59.999999+00" },
	/* before the epoch: the fraction still counts forward */
	{ -1, CLOCK_SQL, "1969-12-31 23:59:59.999999+00" },
	{ -86400000000LL, CLOCK_ISO, "1969-12-31T00:00:00Z" },
	{ 951782400000000LL, CLOCK_ISO, "2000-02-29T00:00:00Z" },
	{ 253402300799000000LL, CLOCK_ISO, "9999-12-31T23:59:59Z" },
};

/* Every style of every case, and the day counts both ways. */
static void
test_clock(void)
{
	char got[CLOCK_TEXT_MAX];
	int y, m, d;

	for (size_t i = 0; i < sizeof time_cases / sizeof *time_cases; i++) {
		const struct time_case *c = &time_cases[i];
		size_t n = clock_format(c->us, c->style, got);
		is_str(got, c->want, "clock_format(%lld)", (long long)c->us);
		is_int((int64_t)n, (int64_t)strlen(c->want), "its length");
	}
	is_int(clock_days_from_civil(1970, 1, 1), 0, "epoch day");
	is_int(clock_days_from_civil(2024, 3, 1), 19783, "2024-03-01");
	is_int(clock_days_from_civil(1969, 12, 31), -1, "the day before");
	for (int64_t day = -800000; day <= 800000; day += 997) {
		clock_civil_from_days(day, &y, &m, &d);
		if (clock_days_from_civil(y, m, d) != day) {
			ok(0, "day %lld round trip", (long long)day);
			return;
		}
	}
	ok(1, "days round trip through civil dates over 4,000 years");
}

/* Appending, formatting, detaching and reuse. */
static void
test_buf(void)
{
	struct buf b = BUF_INIT;
	char *text;
	size_t len;

	ok(buf_str(&b, "abc") == 0 && b.len == 3, "appends a string");
	is_str(b.data, "abc", "NUL-terminated");
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	ok(!b.failed && b.len == 3 + 3890, "grows past its first allocation");
	ok(memcmp(b.data + b.len - 4, "999,", 4) == 0, "keeps every byte");
	buf_reset(&b, 0);
	ok(b.len == 0 && b.data != NULL && b.data[0] == '\0',
	   "reset empties and keeps the memory");
	buf_reset(&b, 16);
	ok(b.data == NULL, "reset over the kept size frees");
	buf_add(&b, "x\0y", 3);
	text = buf_detach(&b, &len);
	ok(text != NULL && len == 3 && memcmp(text, "x\0y", 4) == 0,
	   "detach hands over the bytes, NUL included");
	ok(b.data == NULL && b.len == 0, "and leaves the buffer empty");
	free(text);
	b.failed = 1;
	ok(buf_str(&b, "z") == -1 && b.len == 0,
	   "a failed buffer adds nothing");
	ok(buf_detach(&b, NULL) == NULL, "nor detaches");
	buf_free(&b);
}

/* A spill target for test_ftext: the bytes handed over, in order. */
static void
spill_to(void *arg, const char *p, size_t n)
{
	buf_add(arg, p, n);
}

/* Text in fixed storage: cut when full, or spilled in order. */
static void
test_ftext(void)
{
	char small[8], big[4000], mid[16];
	struct ftext t = FTEXT(small);
	struct buf got = BUF_INIT;
	struct ftext s = { mid, 0, sizeof mid, spill_to, &got };

	ft_str(&t, "ab");
	ft_int(&t, -9223372036854775807LL - 1);
	is_str(small, "ab-9223", "cut to the storage, NUL-terminated");
	is_int((long long)t.len, 7, "its length counts what was kept");

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ft_str(&s, "HTTP/1.1 ");
	ft_int(&s, 200);
	ft_str(&s, " OK\r\n");
	ft_str(&s, big);
	ft_str(&s, "\r\n");
	buf_add(&got, s.p, s.len);
	ok(got.len == 17 + 3999 + 2 &&
		   memcmp(got.data, "HTTP/1.1 200 OK\r\nxxx", 20) == 0 &&
		   memcmp(got.data + got.len - 3, "x\r\n", 3) == 0,
	   "with a spill, every byte goes out in order (%zu)", got.len);
	buf_free(&got);
}

/* Adding, finding, growing and walking. */
static void
test_strmap(void)
{
	struct strmap m;
	char key[32];
	const char *owned, *k;
	int64_t *v, sum = 0;
	size_t it = 0, seen = 0;

	strmap_init(&m, sizeof(int64_t));
	ok(strmap_get(&m, "a") == NULL, "an empty table finds nothing");
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof key, "tenant-%d", i);
		v = strmap_add(&m, key, &owned);
		if (v == NULL || *v != 0 || strcmp(owned, key) != 0)
			break;
		*v = i;
	}
	is_int((int64_t)m.n, 5000, "5000 keys added, each value zeroed");
	v = strmap_add(&m, "tenant-42", NULL);
	ok(v != NULL && *v == 42 && m.n == 5000, "adding a key again finds it");
	v = strmap_get(&m, "tenant-4999");
	ok(v != NULL && *v == 4999, "finds a key after the table grew");
	ok(strmap_get(&m, "tenant-5000") == NULL, "misses an absent key");
	while (strmap_next(&m, &it, &k, (void **)&v)) {
		seen++;
		sum += *v;
	}
	ok(seen == 5000 && sum == 4999LL * 5000 / 2, "a walk sees every entry");
	strmap_free(&m);
	ok(m.n == 0 && strmap_get(&m, "tenant-1") == NULL, "free empties it");
	is_int((int64_t)strmap_hash(""), (int64_t)14695981039346656037ULL,
	       "FNV-1a offset basis");
}

/* Array literals as PostgreSQL reads them. */
static void
test_sqlarr(void)
{
	struct sqlarr a = SQLARR_INIT, e = SQLARR_INIT, n = SQLARR_INIT;

	sqlarr_text(&a, "plain");
	sqlarr_text(&a, "quote\" and \\ backslash, comma {}");
	sqlarr_text(&a, NULL);
	sqlarr_text(&a, "");
	sqlarr_text(&a, "\"ends\\");
	is_str(sqlarr_end(&a),
	       "{\"plain\",\"quote\\\" and \\\\ backslash, comma {}\",NULL,"
	       "\"\",\"\\\"ends\\\\\"}",
	       "text elements are quoted and escaped");
	is_str(sqlarr_end(&e), "{}", "an empty array");
	sqlarr_int(&n, -9223372036854775807LL - 1);
	sqlarr_int(&n, 42);
	sqlarr_raw(&n, NULL);
	sqlarr_raw(&n, "t");
	is_str(sqlarr_end(&n), "{-9223372036854775808,42,NULL,t}",
	       "integers and raw elements");
	sqlarr_free(&a);
	sqlarr_free(&e);
	sqlarr_free(&n);
}

/* Columns closed into a parameter vector; a failed column fails it. */
static void
test_sqlarr_params(void)
{
	struct sqlarr cols[2] = { SQLARR_INIT, SQLARR_INIT };
	const char *params[2];

	sqlarr_int(&cols[0], 7);
	sqlarr_text(&cols[1], "x");
	ok(sqlarr_params(cols, 2, params) == 0, "two columns close");
	is_str(params[0], "{7}", "the first column's literal");
	is_str(params[1], "{\"x\"}", "the second column's literal");
	sqlarr_free(&cols[0]);
	sqlarr_free(&cols[1]);
	cols[0] = (struct sqlarr)SQLARR_INIT;
	cols[1] = (struct sqlarr)SQLARR_INIT;
	sqlarr_int(&cols[0], 1);
	cols[1].b.failed = 1; /* as after a failed allocation */
	ok(sqlarr_params(cols, 2, params) == -1,
	   "a column that ran out of memory fails the vector");
	ok(params[0] != NULL && params[1] == NULL,
	   "and only that column is missing");
	sqlarr_free(&cols[0]);
	sqlarr_free(&cols[1]);
}

/* A string and what a utf8 function says of it. */
struct utf8_case {
	const char *s;
	size_t want;
	const char *what;
};

/* Runs fn, named name, over n cases. */
static void
check_utf8(const char *name, size_t (*fn)(const char *),
	   const struct utf8_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		is_int((long long)fn(cases[i].s), (long long)cases[i].want,
		       "%s: %s", name, cases[i].what);
}

/* utf8_len against RFC 3629's edges. */
static void
test_utf8(void)
{
	static const struct utf8_case cases[] = {
		{ "a", 1, "ASCII" },
		{ "\xc3\xa9", 2, "U+00E9" },
		{ "\xe4\xb8\xad", 3, "U+4E2D" },
		{ "\xf0\x9f\x98\x80", 4, "U+1F600" },
		{ "\xf4\x8f\xbf\xbf", 4, "U+10FFFF" },
		{ "\xc0\xaf", 0, "overlong slash" },
		{ "\xe0\x80\xaf", 0, "overlong, three bytes" },
		{ "\xed\xa0\x80", 0, "a surrogate" },
		{ "\xf4\x90\x80\x80", 0, "past U+10FFFF" },
		{ "\x80", 0, "a stray continuation byte" },
		{ "\xff", 0, "0xFF" },
		{ "\xe4\xb8", 0, "cut short by the end" },
		{ "\xf0\x9f\x98", 0, "four bytes cut to three" },
	};

	check_utf8("utf8_len", utf8_len, cases, sizeof cases / sizeof *cases);
}

/* utf8_width: the columns tollctl's tables align on. */
static void
test_utf8_width(void)
{
	static const struct utf8_case cases[] = {
		{ "", 0, "empty" },
		{ "acme", 4, "ASCII" },
		{ "caf\xc3\xa9", 4, "Latin-1, precomposed" },
		{ "cafe\xcc\x81", 4, "a combining acute accent" },
		{ "\xe5\x8c\x97\xe4\xba\xac\xe7\xa0\x94\xe5\x8f\x91\xe4\xb8\xad"
		  "\xe5\xbf\x83",
		  12, "six CJK ideographs" },
		{ "Acme \xe4\xb8\xad\xe5\x9b\xbd", 9, "ASCII and CJK" },
		{ "\xed\x95\x9c\xea\xb8\x80", 4, "Hangul syllables" },
		{ "\xe3\x81\x8b\xe3\x82\x99", 2, "kana and a voiced mark" },
		{ "\xef\xbc\xa1", 2, "a fullwidth letter" },
		{ "\xef\xbd\xb1", 1, "a halfwidth katakana" },
		{ "\xf0\x9f\x98\x80", 2, "an emoji" },
		{ "\xf0\xa0\x80\x80", 2, "a CJK ideograph past the BMP" },
		{ "a\xe2\x80\x8b"
		  "b",
		  2, "a zero-width space" },
		{ "a\tb", 2, "a control character" },
		{ "\xff\xfe", 2, "two bytes that are not UTF-8" },
		{ "\xe4\xb8", 2, "a sequence cut short" },
	};

	check_utf8("utf8_width", utf8_width, cases,
		   sizeof cases / sizeof *cases);
}

int
main(void)
{
	test_utf8();
	test_utf8_width();
	test_clock();
	test_buf();
	test_ftext();
	test_strmap();
	test_sqlarr();
	test_sqlarr_params();
	return done_testing();
}
