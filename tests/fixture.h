/*
 * fixture.h - reading the provider fixtures in C tests.
 *
 * The directory comes from $FIXTURES (set by make check), else
 * tests/fixtures/providers relative to the current directory.
 */
#ifndef TOLLGATE_TESTS_FIXTURE_H
#define TOLLGATE_TESTS_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

/* Returns the fixture directory. */
static inline const char *
fixture_dir(void)
{
	const char *d = getenv("FIXTURES");

	return d && *d ? d : "tests/fixtures/providers";
}

/* Reads a whole file (malloc'd and NUL-terminated, caller frees); NULL
 * on failure. */
static inline char *
read_whole_file(const char *path, size_t *len)
{
	char *buf = NULL;
	long n;
	FILE *f;

	*len = 0;
	f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto fail;
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
		goto fail;
	buf[n] = '\0';
	*len = (size_t)n;
	fclose(f);
	return buf;
fail:
	free(buf);
	fclose(f);
	return NULL;
}

/* Reads a whole fixture file (malloc'd, caller frees); NULL on failure. */
static inline char *
read_fixture(const char *name, size_t *len)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", fixture_dir(), name);
	return read_whole_file(path, len);
}

#endif
