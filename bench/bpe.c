/*
 * bench/bpe.c - how fast bpe_count() is, against baselines measured in the
 * same run: OpenAI's tiktoken (npm, the WASM build of its Rust code) on the
 * same text through bench/bpe_tiktoken.mjs, when node and
 * tests/bpe/node_modules are there; and always a floor, a pass that only
 * decodes the UTF-8 and looks up each character's class (what any exact
 * tokenizer must do at least).
 *
 *	make bench-bpe              # builds bench/bpe and runs it
 *	bench/bpe [CORPUS_DIR] [SECONDS]
 *
 * The corpus is the files of tests/bpe/corpus (English prose, Chinese
 * prose, C, Python, JSON, mixed scripts), each timed alone and all of them
 * together, repeated to about 4 MB; then one-piece megabytes (a letter
 * repeated, random letters, spaces), which tiktoken merges in quadratic
 * time. Prints MB/s (10^6 bytes) and ratios; judges nothing.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bpe.h"
#include "bpe_int.h"

#ifndef TOLLGATE_SRCDIR
#define TOLLGATE_SRCDIR "."
#endif

struct text {
	char name[64];
	char *p;
	size_t len;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads a whole file (malloc'd); NULL on failure. */
static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
	    fread(buf, 1, (size_t)n, f) == (size_t)n) {
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Repeats f to at least min bytes (realloc'd in place). */
static void
grow(struct text *t, size_t min)
{
	size_t unit = t->len;

	if (unit == 0)
		return;
	while (t->len < min) {
		char *p = realloc(t->p, t->len + unit);

		if (p == NULL) {
			perror("realloc");
			exit(1);
		}
		memcpy(p + t->len, p, unit);
		t->p = p;
		t->len += unit;
	}
}

static volatile size_t sink;

/* The floor: characters of each class in len bytes (UTF-8 decoded, bad
 * bytes one each, as bpe.c does), returned as the number of letters. */
static size_t
class_scan(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t count[8] = { 0 };

	for (size_t i = 0; i < len;) {
		uint32_t cp = s[i];
		size_t n = 1;

		if (cp >= 0xc2 && cp < 0xf5) {
			n = cp < 0xe0 ? 2 : cp < 0xf0 ? 3 : 4;
			if (len - i < n)
				n = 1;
			cp &= 0x3f >> (n - 1);
			for (size_t k = 1; k < n; k++)
				cp = cp << 6 | (s[i + k] & 0x3f);
			if (cp > 0x10ffff)
				cp = 0xfffd;
		}
		count[bpe_uclass_of(cp)]++;
		i += n;
	}
	return count[BPE_UPPER] + count[BPE_LOWER] + count[BPE_LETTER];
}

/* MB/s of bpe_count(e) (e >= 0) or class_scan() (e < 0) over t, repeated
 * for at least seconds; the count of one pass in *tokens. */
static double
rate(int e, const struct text *t, double seconds, size_t *tokens)
{
	double t0 = now(), el;
	size_t runs = 0, n = 0;

	do {
		n = e >= 0 ? bpe_count((enum bpe_encoding)e, t->p, t->len)
			   : class_scan(t->p, t->len);
		sink += n;
		runs++;
		el = now() - t0;
	} while (el < seconds);
	*tokens = n;
	return (double)t->len * (double)runs / el / 1e6;
}

/* Runs bench/bpe_tiktoken.mjs on t; fills mbs[2] and tk[2]; 0 or -1. */
static int
tiktoken_rate(const char *srcdir, const struct text *t, double seconds,
	      double mbs[2], size_t tk[2])
{
	char path[] = "/tmp/bench-bpe-XXXXXX", cmd[8192], line[256];
	int fd = mkstemp(path), got = 0;
	FILE *f, *p;

	if (fd < 0 || (f = fdopen(fd, "wb")) == NULL)
		return -1;
	if (fwrite(t->p, 1, t->len, f) != t->len) {
		fclose(f);
		remove(path);
		return -1;
	}
	fclose(f);
	snprintf(cmd, sizeof cmd,
		 "test -d '%s/tests/bpe/node_modules/tiktoken' && "
		 "node '%s/bench/bpe_tiktoken.mjs' '%s' %g 2>/dev/null",
		 srcdir, srcdir, path, seconds);
	p = popen(cmd, "r");
	while (p != NULL && fgets(line, sizeof line, p) != NULL) {
		char name[32];
		size_t n;
		double r;

		if (sscanf(line, "%31s %zu %lf", name, &n, &r) != 3)
			continue;
		if (strcmp(name, "cl100k_base") == 0) {
			mbs[0] = r;
			tk[0] = n;
			got |= 1;
		} else if (strcmp(name, "o200k_base") == 0) {
			mbs[1] = r;
			tk[1] = n;
			got |= 2;
		}
	}
	if (p != NULL)
		pclose(p);
	remove(path);
	return got == 3 ? 0 : -1;
}

/* Bytes of a table's compiled-in data: the tokens and their lengths. */
static size_t
fixed_size(const struct bpe_table *t)
{
	return t->offs[t->ntokens] + t->ntokens;
}

/* Bytes of what bpe_init() builds: the offsets and the hash slots. */
static size_t
built_size(const struct bpe_table *t)
{
	return 4 * ((size_t)t->ntokens + 1 + (size_t)t->mask + 1);
}

/* Loads the corpus files of dir, sorted by name. */
static size_t
load_corpus(const char *dir, struct text *out, size_t max)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	size_t k = 0;

	for (int i = 0; i < n; i++) {
		char path[4400];

		if (names[i]->d_name[0] != '.' && k < max) {
			snprintf(path, sizeof path, "%s/%s", dir,
				 names[i]->d_name);
			snprintf(out[k].name, sizeof out[k].name, "%.63s",
				 names[i]->d_name);
			out[k].p = read_file(path, &out[k].len);
			if (out[k].p != NULL)
				k++;
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	return k;
}

int
main(int argc, char **argv)
{
	static const char *enc_name[2] = { "cl100k", "o200k" };
	const char *srcdir = TOLLGATE_SRCDIR;
	char dir[4096];
	struct text files[32], all = { "mixed corpus", NULL, 0 }, big[3];
	double seconds = argc > 2 ? atof(argv[2]) : 1.0, t0, mbs[2], base;
	double tk_mbs[2];
	size_t nfiles, tokens[2], letters, tk_tokens[2];
	uint32_t x = 1;

	snprintf(dir, sizeof dir, "%s",
		 argc > 1 ? argv[1] : TOLLGATE_SRCDIR "/tests/bpe/corpus");
	t0 = now();
	if (bpe_init() != 0) {
		fprintf(stderr, "bpe_init failed\n");
		return 1;
	}
	printf("bpe_init: %.1f ms (both encodings)\n", (now() - t0) * 1e3);
	printf("tables: cl100k %u tokens, o200k %u; %zu KB read-only "
	       "(bytes, lengths), %zu KB built at init (offsets, hash)\n",
	       bpe_cl100k_base.ntokens, bpe_o200k_base.ntokens,
	       (fixed_size(&bpe_cl100k_base) + fixed_size(&bpe_o200k_base)) /
		       1000,
	       (built_size(&bpe_cl100k_base) + built_size(&bpe_o200k_base)) /
		       1000);

	nfiles = load_corpus(dir, files, sizeof files / sizeof *files);
	if (nfiles == 0) {
		fprintf(stderr, "no corpus in %s\n", dir);
		return 1;
	}
	for (size_t i = 0; i < nfiles; i++) {
		char *p = realloc(all.p, all.len + files[i].len);

		if (p == NULL) {
			perror("realloc");
			return 1;
		}
		memcpy(p + all.len, files[i].p, files[i].len);
		all.p = p;
		all.len += files[i].len;
	}
	printf("\n%-22s %9s %11s %11s %11s\n", "text (repeated)", "bytes",
	       "cl100k MB/s", "o200k MB/s", "floor MB/s");
	for (size_t i = 0; i <= nfiles; i++) {
		struct text *t = i < nfiles ? &files[i] : &all;

		grow(t, 4u << 20);
		for (int e = 0; e < 2; e++)
			mbs[e] = rate(e, t, seconds / 4, &tokens[e]);
		base = rate(-1, t, seconds / 4, &letters);
		printf("%-22s %9zu %11.1f %11.1f %11.1f\n", t->name, t->len,
		       mbs[0], mbs[1], base);
	}

	printf("\nmixed corpus, %zu bytes, %.1f s per measure:\n", all.len,
	       seconds);
	base = rate(-1, &all, seconds, &letters);
	printf("  floor   %8.1f MB/s (UTF-8 decoding and classes only)\n",
	       base);
	for (int e = 0; e < 2; e++) {
		mbs[e] = rate(e, &all, seconds, &tokens[e]);
		printf("  %-7s %8.1f MB/s, %zu tokens; bpe / floor %.2f\n",
		       enc_name[e], mbs[e], tokens[e], mbs[e] / base);
	}
	if (tiktoken_rate(srcdir, &all, seconds, tk_mbs, tk_tokens) == 0) {
		for (int e = 0; e < 2; e++)
			printf("  %-7s tiktoken (npm WASM) %.1f MB/s, %zu "
			       "tokens%s; bpe / tiktoken %.2f\n",
			       enc_name[e], tk_mbs[e], tk_tokens[e],
			       tk_tokens[e] == tokens[e] ? " (same)"
							 : " (DIFFERENT)",
			       mbs[e] / tk_mbs[e]);
	} else {
		printf("  tiktoken baseline skipped (needs node and "
		       "npm ci --prefix tests/bpe)\n");
	}

	/* One piece of a megabyte each. */
	for (int k = 0; k < 3; k++) {
		big[k].len = 1 << 20;
		big[k].p = malloc(big[k].len);
		if (big[k].p == NULL) {
			perror("malloc");
			return 1;
		}
	}
	snprintf(big[0].name, sizeof big[0].name, "1 MiB of a");
	memset(big[0].p, 'a', big[0].len);
	snprintf(big[1].name, sizeof big[1].name, "1 MiB random a-z");
	for (size_t i = 0; i < big[1].len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		big[1].p[i] = (char)('a' + x % 26);
	}
	snprintf(big[2].name, sizeof big[2].name, "1 MiB of spaces");
	memset(big[2].p, ' ', big[2].len);
	printf("\none piece: %-18s %10s %10s\n", "", "cl100k ms", "o200k ms");
	for (int k = 0; k < 3; k++) {
		double ms[2];

		for (int e = 0; e < 2; e++) {
			t0 = now();
			tokens[e] = bpe_count((enum bpe_encoding)e, big[k].p,
					      big[k].len);
			ms[e] = (now() - t0) * 1e3;
		}
		printf("  %-27s %10.1f %10.1f  (%zu, %zu tokens)\n",
		       big[k].name, ms[0], ms[1], tokens[0], tokens[1]);
		free(big[k].p);
	}
	for (size_t i = 0; i < nfiles; i++)
		free(files[i].p);
	free(all.p);
	return 0;
}
