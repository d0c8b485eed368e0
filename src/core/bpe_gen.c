/*
 * bpe_gen.c - turns rank files (data/bpe/NAME.tiktoken: one "base64 rank"
 * line per token, ranks 0, 1, 2, ... in order) into C for bpe_ranks.c.
 *
 *	bpe_gen data/bpe/cl100k_base.tiktoken data/bpe/o200k_base.tiktoken \
 *		> src/core/bpe_ranks.inc
 *
 * Principle: the build checks the data so that run time need not. Each
 * file must hold ranks 0..n-1 in order, well-formed base64 tokens of 1 to
 * BPE_MAX_TOKEN bytes, and all 256 single bytes (byte-level BPE can
 * always fall back to them). For each file NAME it writes the tokens'
 * bytes back to back as one string literal (a literal compiles far faster
 * than an array of numbers), their lengths as another, zeroed storage for
 * the offsets and the hash table that bpe.c builds once, and
 * struct bpe_table bpe_NAME. Built and run on the build machine; it is not
 * part of the library. Exits 1 with a message on bad input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe_int.h"

/* Source bytes per line of a string literal, escapes included. */
#define LINE_WIDTH 72

struct ranks {
	char name[64];
	unsigned char *bytes; /* all tokens, back to back */
	size_t nbytes, cap;
	unsigned char *lens;
	size_t n, lcap;
};

/* Value of a base64 digit, -1 for anything else. */
static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes padded base64 s[0..len) into out (room for BPE_MAX_TOKEN);
 * returns the number of bytes, -1 when malformed or too long. */
static int
b64decode(const char *s, size_t len, unsigned char *out)
{
	size_t o = 0;

	if (len == 0 || len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
			} else if (pad > 0 || (v[k] = b64val(s[i + k])) < 0) {
				return -1;
			}
		}
		if (o + 3 - (size_t)pad > BPE_MAX_TOKEN)
			return -1;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] =
				(unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	return (int)o;
}

/* Appends len bytes to r's token storage; -1 when out of memory. */
static int
add_token(struct ranks *r, const unsigned char *tok, size_t len)
{
	if (r->nbytes + len > r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 1 << 20;
		unsigned char *p = realloc(r->bytes, cap);

		if (p == NULL)
			return -1;
		r->bytes = p;
		r->cap = cap;
	}
	if (r->n == r->lcap) {
		size_t cap = r->lcap ? r->lcap * 2 : 1 << 16;
		unsigned char *p = realloc(r->lens, cap);

		if (p == NULL)
			return -1;
		r->lens = p;
		r->lcap = cap;
	}
	memcpy(r->bytes + r->nbytes, tok, len);
	r->nbytes += len;
	r->lens[r->n++] = (unsigned char)len;
	return 0;
}

/* Reads and checks one rank file; prints why and returns -1 on failure. */
static int
read_ranks(const char *path, struct ranks *r)
{
	char line[512];
	unsigned char tok[BPE_MAX_TOKEN];
	unsigned char seen[256] = { 0 };
	const char *base = strrchr(path, '/');
	size_t lineno = 0, nlen;
	FILE *f;

	base = base ? base + 1 : path;
	nlen = strcspn(base, ".");
	if (nlen == 0 || nlen >= sizeof r->name) {
		fprintf(stderr, "bpe_gen: %s: bad file name\n", path);
		return -1;
	}
	memcpy(r->name, base, nlen);
	r->name[nlen] = '\0';
	for (size_t i = 0; i < nlen; i++) {
		char c = r->name[i];

		if (!(c == '_' || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9'))) {
			fprintf(stderr, "bpe_gen: %s: name is not a C name\n",
				path);
			return -1;
		}
	}
	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "bpe_gen: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *sp = strchr(line, ' ');
		char *end;
		unsigned long rank;
		int len;

		lineno++;
		if (sp == NULL || strchr(line, '\n') == NULL)
			goto bad;
		len = b64decode(line, (size_t)(sp - line), tok);
		errno = 0;
		rank = strtoul(sp + 1, &end, 10);
		if (len <= 0 || errno != 0 || end == sp + 1 || *end != '\n' ||
		    rank != r->n)
			goto bad;
		if (add_token(r, tok, (size_t)len) < 0) {
			fprintf(stderr, "bpe_gen: out of memory\n");
			fclose(f);
			return -1;
		}
		if (len == 1)
			seen[tok[0]] = 1;
	}
	if (ferror(f) || r->n == 0) {
		fprintf(stderr, "bpe_gen: %s: cannot read\n", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	/* bpe.c keeps rank + 1 in 18 bits of a hash slot. */
	if (r->n >= (1u << 18) - 1) {
		fprintf(stderr, "bpe_gen: %s: too many tokens (%zu)\n", path,
			r->n);
		return -1;
	}
	for (int b = 0; b < 256; b++) {
		if (!seen[b]) {
			fprintf(stderr, "bpe_gen: %s: no token for byte %d\n",
				path, b);
			return -1;
		}
	}
	return 0;
bad:
	fprintf(stderr, "bpe_gen: %s:%zu: not \"base64 rank\" with rank %zu\n",
		path, lineno, r->n);
	fclose(f);
	return -1;
}

/* Writes n bytes as a C string literal, LINE_WIDTH source bytes a line. */
static void
write_literal(FILE *out, const unsigned char *p, size_t n)
{
	size_t col = 0;

	fputs("\t\"", out);
	for (size_t i = 0; i < n; i++) {
		unsigned c = p[i];

		if (col >= LINE_WIDTH) {
			fputs("\"\n\t\"", out);
			col = 0;
		}
		/* '?' is escaped so that no "??x" reads as a trigraph. */
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' &&
		    c != '?') {
			fputc((int)c, out);
			col++;
		} else {
			fprintf(out, "\\%03o", c);
			col += 4;
		}
	}
	fputs("\";\n", out);
}

/* Writes one encoding's tables and struct bpe_table bpe_NAME. */
static void
write_table(FILE *out, const struct ranks *r)
{
	uint32_t slots = 1;

	/* At least twice as many slots as tokens: short probe runs. */
	while (slots < 2 * r->n)
		slots <<= 1;
	fprintf(out, "/* %s: %zu tokens, %zu bytes. */\n", r->name, r->n,
		r->nbytes);
	fprintf(out, "static const unsigned char %s_bytes[] =\n", r->name);
	write_literal(out, r->bytes, r->nbytes);
	fprintf(out, "static const unsigned char %s_lens[] =\n", r->name);
	write_literal(out, r->lens, r->n);
	fprintf(out, "static uint32_t %s_offs[%zu];\n", r->name, r->n + 1);
	fprintf(out, "static uint32_t %s_slots[%lu];\n", r->name,
		(unsigned long)slots);
	fprintf(out,
		"struct bpe_table bpe_%s = {\n"
		"\t.name = \"%s\",\n"
		"\t.bytes = %s_bytes,\n"
		"\t.lens = %s_lens,\n"
		"\t.ntokens = %zu,\n"
		"\t.offs = %s_offs,\n"
		"\t.slots = %s_slots,\n"
		"\t.mask = %lu,\n"
		"};\n\n",
		r->name, r->name, r->name, r->name, r->n, r->name, r->name,
		(unsigned long)(slots - 1));
}

int
main(int argc, char **argv)
{
	struct ranks *r;
	int status = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: bpe_gen FILE.tiktoken... > OUT\n");
		return 2;
	}
	r = calloc((size_t)argc - 1, sizeof *r);
	if (r == NULL) {
		fprintf(stderr, "bpe_gen: out of memory\n");
		return 1;
	}
	printf("/* Generated by bpe_gen from");
	for (int i = 1; i < argc; i++) {
		const char *base = strrchr(argv[i], '/');

		printf(" %s", base ? base + 1 : argv[i]);
	}
	printf("; do not edit. */\n\n");
	for (int i = 1; i < argc && status == 0; i++) {
		if (read_ranks(argv[i], &r[i - 1]) < 0)
			status = 1;
		else
			write_table(stdout, &r[i - 1]);
	}
	for (int i = 1; i < argc; i++) {
		free(r[i - 1].bytes);
		free(r[i - 1].lens);
	}
	free(r);
	if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
		fprintf(stderr, "bpe_gen: write error\n");
		status = 1;
	}
	return status;
}
