/*
 * fuzz.h - what the fuzz targets share.
 *
 * Each tests/fuzz/fuzz_NAME.c defines LLVMFuzzerTestOneInput(), libFuzzer's
 * entry point. Built with clang -fsanitize=fuzzer (make fuzz) it is fuzzed;
 * linked with driver.c (make check) it runs the inputs kept in
 * tests/fuzz/regress/NAME/. A target checks more than "no crash": what the
 * module promises (events concatenate back to the input, an encoded record
 * decodes, a translation is JSON or a reason). FUZZ_CHECK() fails an input
 * by aborting, so libFuzzer saves it and the regression run fails on it.
 *
 * Many targets read parameters from the input's first bytes (a wire, a
 * flavor, where to cut): fuzz_take() hands them out, 0 once the input is
 * used up, and the rest is the payload.
 */
#ifndef TOLLGATE_FUZZ_H
#define TOLLGATE_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reports a failed check and aborts. */
static inline void __attribute__((noreturn, format(printf, 4, 5)))
fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: check failed: %s: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* Fails the input unless cond holds; the rest is a printf message. */
#define FUZZ_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond))                                                   \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);     \
	} while (0)

/* Whether two byte strings are equal (either may be NULL when empty). */
static inline int
fuzz_same(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Whether two JSON values are the same, as printed: cJSON_Compare()
 * finds an infinite number (1e999) unequal to itself. */
static inline int
fuzz_json_equal(const cJSON *a, const cJSON *b)
{
	char *pa = cJSON_PrintUnformatted(a), *pb = cJSON_PrintUnformatted(b);
	int same = pa != NULL && pb != NULL && strcmp(pa, pb) == 0;

	cJSON_free(pa);
	cJSON_free(pb);
	return same;
}

/* An input being read: parameters first, then the payload. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

/* The next byte of the input, 0 when there is none. */
static inline unsigned
fuzz_take(struct fuzz_in *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

/* A small deterministic generator, for cuts that follow from one byte. */
static inline uint32_t
fuzz_rand(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 16;
}

#endif
