/*
 * test_bpe.c - exact token counts (cl100k_base, o200k_base) against
 * OpenAI's tiktoken.
 *
 * The expected counts are tiktoken's own: tests/bpe/expected.mjs runs the
 * npm package (1.0.22, the WASM build of OpenAI's Rust code) over the
 * texts it lists, the files in tests/bpe/corpus/ and long generated runs,
 * and writes them into tests/bpe/expected.h, included below. Invalid
 * UTF-8, which tiktoken does not take, is held to the rule bpe.c states.
 * Texts are copied into buffers of their exact length, so that a read past
 * the end shows under AddressSanitizer.
 *
 *	tests/test_bpe                 TAP, as make check runs it
 *	tests/test_bpe --count FILE    counts for tests/bpe/crosscheck.mjs
 *
 * --count reads records of a 4-byte little-endian length and that many
 * bytes, and prints "CL100K O200K" for each, one line a record.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "fixture.h"
#include "tap.h"

struct text_case {
	const char *text;
	size_t len;
	size_t cl100k, o200k;
	const char *what;
};

struct file_case {
	const char *name; /* in tests/bpe/corpus */
	size_t len;
	size_t cl100k, o200k;
};

/* n characters: unit repeated, or drawn from an ASCII alphabet by
 * xorshift32 from seed (run_text()); len bytes in all. */
struct run_case {
	const char *unit;
	const char *alphabet;
	size_t n;
	uint32_t seed;
	size_t len;
	size_t cl100k, o200k;
};

#include "bpe/expected.h"

/* A malloc'd copy of len bytes, exactly len long (one byte for len 0). */
static char *
copy_exact(const char *text, size_t len)
{
	char *p = malloc(len ? len : 1);

	if (p == NULL) {
		perror("malloc");
		exit(1);
	}
	memcpy(p, text, len);
	return p;
}

/* Checks both encodings' counts of len bytes at text. */
static void
check_counts(const char *text, size_t len, size_t cl100k, size_t o200k,
	     const char *what)
{
	char *p = copy_exact(text, len);
	size_t cl = bpe_count(BPE_CL100K, p, len);
	size_t o2 = bpe_count(BPE_O200K, p, len);

	ok(cl == cl100k && o2 == o200k,
	   "%s: cl100k %zu (want %zu), o200k %zu (want %zu)", what, cl, cl100k,
	   o2, o200k);
	free(p);
}

static void
test_texts(void)
{
	for (size_t i = 0; i < sizeof text_cases / sizeof *text_cases; i++) {
		const struct text_case *c = &text_cases[i];

		check_counts(c->text, c->len, c->cl100k, c->o200k, c->what);
	}
}

static void
test_files(void)
{
	const char *top = getenv("top_srcdir");
	char path[4096];

	for (size_t i = 0; i < sizeof file_cases / sizeof *file_cases; i++) {
		const struct file_case *c = &file_cases[i];
		size_t len;
		char *text;

		snprintf(path, sizeof path, "%s/tests/bpe/corpus/%s",
			 top && *top ? top : ".", c->name);
		text = read_whole_file(path, &len);
		if (!ok(text != NULL && len == c->len, "%s: %zu bytes", c->name,
			c->len)) {
			diag("cannot read %s, or it changed (%zu bytes): run "
			     "tests/bpe/expected.mjs",
			     path, len);
			free(text);
			continue;
		}
		check_counts(text, len, c->cl100k, c->o200k, c->name);
		free(text);
	}
}

/* s for a TAP line: blanks and control bytes as \xNN. The result lives
 * until the next call. */
static const char *
shown(const char *s)
{
	static char buf[128];
	size_t o = 0;

	for (; *s != '\0' && o + 5 < sizeof buf; s++) {
		if ((unsigned char)*s <= ' ')
			o += (size_t)snprintf(buf + o, sizeof buf - o,
					      "\\x%02x", (unsigned char)*s);
		else
			buf[o++] = *s;
	}
	buf[o] = '\0';
	return buf;
}

/* The text of a run case (malloc'd, *len bytes). */
static char *
run_text(const struct run_case *c, size_t *len)
{
	size_t ulen = c->unit ? strlen(c->unit) : 1;
	size_t alen = c->alphabet ? strlen(c->alphabet) : 0;
	char *p = malloc(c->n * ulen + 1);
	uint32_t x = c->seed;

	if (p == NULL) {
		perror("malloc");
		exit(1);
	}
	for (size_t i = 0; i < c->n; i++) {
		if (c->unit) {
			memcpy(p + i * ulen, c->unit, ulen);
			continue;
		}
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = c->alphabet[x % alen];
	}
	*len = c->n * ulen;
	return p;
}

/* Long pieces: the merge heap, and runs of blanks and punctuation. */
static void
test_runs(void)
{
	for (size_t i = 0; i < sizeof run_cases / sizeof *run_cases; i++) {
		const struct run_case *c = &run_cases[i];
		size_t len;
		char *text = run_text(c, &len);
		char what[160];

		snprintf(what, sizeof what, "%zu %s %s", c->n,
			 c->unit ? "x" : "drawn from",
			 shown(c->unit ? c->unit : c->alphabet));
		if (ok(len == c->len, "%s: %zu bytes", what, len))
			check_counts(text, len, c->cl100k, c->o200k, what);
		free(text);
	}
}

/* A megabyte in one piece: merged in O(n log n), where tiktoken would take
 * minutes. The count is extrapolated: tiktoken gives n / 8 for n letters a
 * (a token of eight) from n = 1,000 to 30,000. */
static void
test_huge(void)
{
	size_t n = 1 << 20;
	char *p = malloc(n);

	if (p == NULL) {
		perror("malloc");
		exit(1);
	}
	memset(p, 'a', n);
	is_int(bpe_count(BPE_CL100K, p, n), n / 8, "1 MiB of a: cl100k");
	is_int(bpe_count(BPE_O200K, p, n), n / 8, "1 MiB of a: o200k");
	free(p);
}

/* Bytes that are not UTF-8 are characters of class OTHER of their own
 * (bpe.c). The pieces below follow from that, and each piece's count is
 * what tiktoken's merge (_byte_pair_merge, redone in a few lines of Python
 * over data/bpe/) makes of its bytes; no token of more than one byte holds
 * a byte that UTF-8 never uses (C0, C1, F5 to FF). */
static void
test_invalid_utf8(void)
{
	static const struct {
		const char *text;
		size_t len;
		size_t count; /* the same in both encodings */
		const char *what;
	} cases[] = {
		{ "\x80", 1, 1, "lone continuation byte" },
		{ "\xff\xfe\xfd", 3, 3, "bytes UTF-8 never uses: one piece" },
		{ "\xc0\xaf", 2, 2, "overlong slash: two characters" },
		{ "\xed\xa0\x80", 3, 2,
		  "UTF-16 surrogate: three characters, A0 80 merge" },
		{ "\xf4\x90\x80\x80", 4, 4, "past U+10FFFF" },
		{ "\xe4\xbd", 2, 1, "truncated ideograph: E4 BD is a token" },
		{ "\xe4\xbd\xa0\xe5\xa5", 5, 2,
		  "an ideograph, then a truncated one" },
		{ "Hello\xffworld", 11, 3,
		  "a bad byte before a word joins it like punctuation" },
		{ "a \xff b", 5, 4, "a bad byte after a space" },
		{ "\xff\n", 2, 2, "a bad byte takes the newline after it" },
		{ "don\x80t", 5, 3, "a continuation byte inside a word" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		check_counts(cases[i].text, cases[i].len, cases[i].count,
			     cases[i].count, cases[i].what);
}

/* Any bytes: at most one token per byte, and no read past len (ASan):
 * random bytes, and every prefix of a text whose characters are 1 to 4
 * bytes long, so that most prefixes cut a character. */
static void
test_any_bytes(void)
{
	static const char mixed[] = "a\xc3\xa9\xe4\xbd\xa0\xf0\x9f\x98\x80"
				    " 1'\xc5\xbf\n\xe3\x80\x80x\xcc\x81";
	uint32_t x = 12345;
	int over = 0;

	for (int round = 0; round < 2000; round++) {
		size_t len = 1 + round % 300;
		char *p = malloc(len);

		if (p == NULL) {
			perror("malloc");
			exit(1);
		}
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			/* Mostly high bytes, some ASCII blanks and letters. */
			if (x % 4 == 0)
				p[i] = " a'\n"[(x >> 8) % 4];
			else
				p[i] = (char)(0x80 + (x >> 8) % 128);
		}
		if (bpe_count(BPE_CL100K, p, len) > len ||
		    bpe_count(BPE_O200K, p, len) > len)
			over++;
		free(p);
	}
	is_int(over, 0, "2000 random byte strings: at most a token a byte");
	over = 0;
	for (size_t len = 0; len <= sizeof mixed - 1; len++) {
		char *p = copy_exact(mixed, len);

		if (bpe_count(BPE_CL100K, p, len) > len ||
		    bpe_count(BPE_O200K, p, len) > len)
			over++;
		free(p);
	}
	is_int(over, 0, "every prefix of a mixed text: at most a token a byte");
	is_int(bpe_count(BPE_CL100K, NULL, 0), 0, "NULL, 0: zero");
}

struct thread_arg {
	int failures;
};

/* Counts the run cases in a thread (scratch per thread). */
static void *
count_thread(void *argp)
{
	struct thread_arg *arg = argp;

	for (int rep = 0; rep < 2; rep++) {
		for (size_t i = 0; i < sizeof run_cases / sizeof *run_cases;
		     i++) {
			const struct run_case *c = &run_cases[i];
			size_t len;
			char *text = run_text(c, &len);

			if (bpe_count(BPE_CL100K, text, len) != c->cl100k ||
			    bpe_count(BPE_O200K, text, len) != c->o200k)
				arg->failures++;
			free(text);
		}
	}
	return NULL;
}

/* Four threads at once, each with its own merge scratch. */
static void
test_threads(void)
{
	pthread_t t[4];
	struct thread_arg arg[4] = { { 0 } };
	int started = 0, failures = 0;

	for (int i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, count_thread, &arg[i]) == 0)
			started++;
		else
			break;
	for (int i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
		failures += arg[i].failures;
	}
	ok(started == 4 && failures == 0,
	   "4 threads counting the long runs: %d wrong", failures);
}

/* --count FILE: the counts of each record, for crosscheck.mjs. */
static int
count_records(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char h[4];

	if (f == NULL) {
		perror(path);
		return 1;
	}
	while (fread(h, 1, 4, f) == 4) {
		size_t len = (size_t)h[0] | (size_t)h[1] << 8 |
			     (size_t)h[2] << 16 | (size_t)h[3] << 24;
		char *p = malloc(len ? len : 1);

		if (p == NULL || fread(p, 1, len, f) != len) {
			fprintf(stderr, "%s: short record\n", path);
			free(p);
			fclose(f);
			return 1;
		}
		printf("%zu %zu\n", bpe_count(BPE_CL100K, p, len),
		       bpe_count(BPE_O200K, p, len));
		free(p);
	}
	fclose(f);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--count") == 0)
		return bpe_init() == 0 ? count_records(argv[2]) : 1;
	is_int(bpe_init(), 0, "bpe_init");
	is_int(bpe_init(), 0, "bpe_init again");
	test_texts();
	test_files();
	test_runs();
	test_huge();
	test_invalid_utf8();
	test_any_bytes();
	test_threads();
	return done_testing();
}
