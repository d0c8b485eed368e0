/*
 * fuzz_import.c - the lines of tollctl usage import (ctl_import_parse.c),
 * read without a database.
 *
 * Input: the file to import, cut into lines as getline() cuts it. A line
 * is blank, bad with a reason, or a record that holds what the ledger
 * needs: a request id of 1 to 39 bytes, a time, a status below 1000,
 * counts that are not negative and hold together (cached and cache-write
 * within the prompt, reasoning within the completion), a source that
 * agrees with them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_import_parse.h"
#include "fuzz.h"

/*
 * ctl_args.c, linked for ctl_parse_time(), also holds helpers that call
 * these of tollctl.c (which has main()); reading a line reaches none.
 */
void
ctl_err(const char *fmt, ...)
{
	FUZZ_CHECK(0, "ctl_err(%s) while reading a line", fmt);
}

PGresult *
ctl_query(struct ctl *ctl, const char *what, const char *sql, int nparams,
	  const char *const *params)
{
	FUZZ_CHECK(0, "a query while reading a line: %s", sql);
}

int
ctl_is_digits(const char *s)
{
	FUZZ_CHECK(0, "ctl_is_digits(%s) while reading a line", s);
}

PGresult *
ctl_query_named(struct ctl *ctl, const char *what, const char *noun,
		const char *sql, int nparams, const char *const *params)
{
	FUZZ_CHECK(0, "a query while reading a line: %s", sql);
}

/* Checks a record read from a line. */
static void
check_record(const struct import_rec *r, const struct import_owner *o)
{
	const struct usage *u = &r->usage;
	size_t n = strlen(r->request_id);

	FUZZ_CHECK(n > 0 && n < sizeof(r->request_id), "request id of %zu", n);
	FUZZ_CHECK(r->endpoint != NULL, "no endpoint");
	FUZZ_CHECK(r->status >= 0 && r->status <= 999, "status %d", r->status);
	FUZZ_CHECK(u->prompt >= 0 && u->completion >= 0 && u->cached >= 0 &&
			   u->cache_write >= 0 && u->reasoning >= 0,
		   "a negative count");
	FUZZ_CHECK(u->cached + u->cache_write <= u->prompt &&
			   u->reasoning <= u->completion,
		   "counts that do not hold together");
	FUZZ_CHECK(r->source != USAGE_NONE ||
			   (u->prompt == 0 && u->completion == 0),
		   "source none with tokens");
	FUZZ_CHECK(u->present == (r->source != USAGE_NONE),
		   "present and source disagree");
	FUZZ_CHECK(r->latency_ms >= 0 && r->latency_ms <= INT32_MAX &&
			   r->ttfb_ms >= -1 && r->ttfb_ms <= INT32_MAX,
		   "latency %lld, ttfb %lld", (long long)r->latency_ms,
		   (long long)r->ttfb_ms);
	FUZZ_CHECK(o->key_id >= 0, "key id %lld", (long long)o->key_id);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strmap strings;
	size_t off = 0;

	strmap_init(&strings, 0);
	while (off < size) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len =
			nl != NULL ? (size_t)(nl - data) + 1 - off : size - off;
		char *line = malloc(len + 1), why[256] = "";
		struct import_rec r;
		struct import_owner owner;
		cJSON *obj = NULL;

		FUZZ_CHECK(line != NULL, "out of memory");
		memcpy(line, data + off, len);
		line[len] = '\0';
		off += len;
		switch (ctl_import_parse(line, len, &strings, &r, &obj, &owner,
					 why, sizeof(why))) {
		case IMPORT_BLANK:
			FUZZ_CHECK(obj == NULL, "a parsed blank line");
			break;
		case IMPORT_BAD:
			FUZZ_CHECK(why[0] != '\0', "a bad line without reason");
			FUZZ_CHECK(obj == NULL, "a parsed bad line");
			break;
		case IMPORT_RECORD:
			check_record(&r, &owner);
			free(r.error);
			cJSON_Delete(obj);
			break;
		case IMPORT_NOMEM:
			FUZZ_CHECK(0, "out of memory");
		}
		free(line);
	}
	strmap_free(&strings);
	return 0;
}
