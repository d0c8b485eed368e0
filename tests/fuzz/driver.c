/*
 * driver.c - runs a fuzz target's kept inputs as a test: the main() of
 * the tests/fuzz/fuzz_NAME programs that make check runs.
 *
 * Without arguments it runs every file in $top_srcdir/tests/fuzz/regress/
 * NAME/ (NAME is the program's name without "fuzz_"), in name order,
 * through LLVMFuzzerTestOneInput(); with arguments, the files given and the
 * files in the directories given. An input that fails a check aborts the
 * program (fuzz.h), so the test fails on it; finding no input fails too.
 * Prints "ok N - FILE" per input.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int count;

/* Reads a whole file; NULL on failure (reported). */
static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return NULL;
	}
	do {
		if (n == cap) {
			uint8_t *grown = realloc(buf, cap = cap * 2 + 4096);
			if (grown == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = grown;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

/* Runs one file; 0, or -1 when it cannot be read. */
static int
run_file(const char *path)
{
	size_t len;
	uint8_t *buf = slurp(path, &len);
	uint8_t *copy;

	if (buf == NULL)
		return -1;
	printf("# %s (%zu bytes)\n", path, len);
	fflush(stdout);
	/* An exact-size copy, so ASan sees a read past the input. */
	copy = malloc(len > 0 ? len : 1);
	if (copy == NULL) {
		free(buf);
		return -1;
	}
	memcpy(copy, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
	printf("ok %d - %s\n", ++count, path);
	return 0;
}

/* Orders directory entries by name. */
static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs a file, or every regular file of a directory; 0 or -1. */
static int
run_path(const char *path)
{
	struct stat st;
	struct dirent *de;
	char **names = NULL, full[4096];
	size_t n = 0, cap = 0;
	int rc = 0;
	DIR *d;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	if ((d = opendir(path)) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char **grown;

		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			grown = realloc(names,
					(cap = cap * 2 + 16) * sizeof(*names));
			if (grown == NULL) {
				rc = -1;
				break;
			}
			names = grown;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			rc = -1;
			break;
		}
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		snprintf(full, sizeof(full), "%s/%s", path, names[i]);
		if (rc == 0 && stat(full, &st) == 0 && S_ISREG(st.st_mode))
			rc = run_file(full);
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *srcdir = getenv("top_srcdir"), *name;
	char dir[4096];
	int rc = 0;

	if (argc > 1) {
		for (int i = 1; i < argc && rc == 0; i++)
			rc = run_path(argv[i]);
	} else {
		name = strrchr(argv[0], '/');
		name = name != NULL ? name + 1 : argv[0];
		if (strncmp(name, "fuzz_", 5) == 0)
			name += 5;
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/regress/%s",
			 srcdir != NULL && *srcdir ? srcdir : ".", name);
		rc = run_path(dir);
	}
	if (rc == 0 && count == 0) {
		fprintf(stderr, "no inputs found\n");
		rc = -1;
	}
	printf("1..%d\n", count);
	return rc == 0 ? 0 : 1;
}
