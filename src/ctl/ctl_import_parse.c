/*
 * ctl_import_parse.c - one line of tollctl usage import read into a
 * checked record, with no database: member names and types, the integers
 * from their digits, the time, the token counts against each other.
 *
 * Token counts and other integers are read from the digits of the line,
 * not from cJSON's double, so any integer up to 2^63 - 1 is exact and 1.5
 * or 1e3 is refused. What only the database knows (whether the tenant and
 * key named exist) is left to ctl_import.c, which reports bad lines and
 * writes the records.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_import_parse.h"
#include "json.h"

/* Where a bad line's reason goes. */
struct reason {
	char *buf;
	size_t size;
};

/* Writes a bad line's reason; returns -1. */
static int bad(struct reason *why, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
bad(struct reason *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why->buf, why->size, fmt, ap);
	va_end(ap);
	return -1;
}

/* The raw text of one top-level number member. */
struct raw_num {
	const char *key, *val;
	size_t keylen, vallen;
};

/* Records the raw text of the number members at the top level of line, a
 * JSON object cJSON has already accepted. Returns how many (at most max). */
static int
raw_numbers(const char *line, struct raw_num *out, int max)
{
	const char *p, *q, *key = NULL;
	size_t keylen = 0;
	int depth = 0, expect_key = 0, n = 0;

	for (p = line; *p != '\0'; p++) {
		if (*p == '"') {
			for (q = p + 1; *q != '"' && *q != '\0'; q++)
				if (*q == '\\' && q[1] != '\0')
					q++;
			if (depth == 1 && expect_key) {
				key = p + 1;
				keylen = (size_t)(q - p - 1);
				expect_key = 0;
			}
			if (*q == '\0')
				break;
			p = q;
		} else if (*p == '{' || *p == '[') {
			expect_key = ++depth == 1 && *p == '{';
		} else if (*p == '}' || *p == ']') {
			depth--;
		} else if (*p == ',' && depth == 1) {
			expect_key = 1;
		} else if (depth == 1 &&
			   (*p == '-' || (*p >= '0' && *p <= '9'))) {
			for (q = p; *q != '\0' &&
				    strchr("+-.eE0123456789", *q) != NULL;
			     q++)
				;
			if (n < max && key != NULL) {
				out[n].key = key;
				out[n].keylen = keylen;
				out[n].val = p;
				out[n].vallen = (size_t)(q - p);
				n++;
			}
			p = q - 1;
		}
	}
	return n;
}

/* Parses the raw integer text of member name into *v, within [lo, hi].
 * 0, or -1 with *why set. */
static int
raw_int(const struct raw_num *raws, int nraw, const char *name, int64_t lo,
	int64_t hi, int64_t *v, const char **why)
{
	size_t len = strlen(name);
	const struct raw_num *r = NULL;
	int k;
	int64_t x = 0;

	for (k = 0; k < nraw && r == NULL; k++)
		if (raws[k].keylen == len &&
		    memcmp(raws[k].key, name, len) == 0)
			r = &raws[k];
	if (r == NULL) {
		*why = "member names with escapes are not supported";
		return -1;
	}
	switch (json_parse_int(r->val, r->vallen, &x)) {
	case -1:
		*why = "not an integer";
		return -1;
	case -2:
		*why = "too large";
		return -1;
	}
	if (x < lo) {
		*why = "below zero";
		return -1;
	}
	if (x > hi) {
		*why = "too large";
		return -1;
	}
	*v = x;
	return 0;
}

/* The members a record line may carry. */
enum member {
	M_REQUEST_ID,
	M_TS,
	M_TENANT,
	M_KEY_ID,
	M_KEY,
	M_ENDPOINT,
	M_REQUESTED_MODEL,
	M_PROVIDER,
	M_UPSTREAM_MODEL,
	M_STREAMED,
	M_STATUS,
	M_PROMPT,
	M_COMPLETION,
	M_CACHED,
	M_CACHE_WRITE,
	M_REASONING,
	M_SOURCE,
	M_ABORTED,
	M_LATENCY,
	M_TTFB,
	M_ERROR,
	M__COUNT
};

/* Value kinds: string, integer, boolean; each may be null but request_id
 * and ts. */
enum mtype { MT_STR, MT_INT, MT_BOOL };

static const struct {
	const char *name;
	enum mtype type;
} members[M__COUNT] = {
	[M_REQUEST_ID] = { "request_id", MT_STR },
	[M_TS] = { "ts", MT_STR },
	[M_TENANT] = { "tenant", MT_STR },
	[M_KEY_ID] = { "key_id", MT_INT },
	[M_KEY] = { "key", MT_STR },
	[M_ENDPOINT] = { "endpoint", MT_STR },
	[M_REQUESTED_MODEL] = { "requested_model", MT_STR },
	[M_PROVIDER] = { "provider", MT_STR },
	[M_UPSTREAM_MODEL] = { "upstream_model", MT_STR },
	[M_STREAMED] = { "streamed", MT_BOOL },
	[M_STATUS] = { "status", MT_INT },
	[M_PROMPT] = { "prompt_tokens", MT_INT },
	[M_COMPLETION] = { "completion_tokens", MT_INT },
	[M_CACHED] = { "cached_tokens", MT_INT },
	[M_CACHE_WRITE] = { "cache_write_tokens", MT_INT },
	[M_REASONING] = { "reasoning_tokens", MT_INT },
	[M_SOURCE] = { "usage_source", MT_STR },
	[M_ABORTED] = { "client_aborted", MT_BOOL },
	[M_LATENCY] = { "latency_ms", MT_INT },
	[M_TTFB] = { "ttfb_ms", MT_INT },
	[M_ERROR] = { "error", MT_STR },
};

/* Interns s into strings; NULL stays NULL. Sets *failed when out of
 * memory. */
static const char *
intern(struct strmap *strings, const char *s, int *failed)
{
	const char *owned = NULL;

	if (s == NULL)
		return NULL;
	if (strmap_add(strings, s, &owned) == NULL)
		*failed = 1;
	return owned;
}

/* Reads obj's members into m (by member index) and the integers and
 * booleans among them into ints (from raws, never through a double),
 * checking names and types. 0, or -1 for a bad line (why says why). */
static int
read_members(struct reason *why, const cJSON *obj, const struct raw_num *raws,
	     int nraw, const cJSON **m, int64_t *ints)
{
	const char *cause = "not an integer";
	const cJSON *it;
	int i;

	cJSON_ArrayForEach (it, obj) {
		for (i = 0; i < M__COUNT; i++)
			if (strcmp(it->string, members[i].name) == 0)
				break;
		if (i == M__COUNT) {
			bad(why, "unknown member '%s'", it->string);
			return -1;
		}
		if (m[i] != NULL) {
			bad(why, "'%s' given twice", it->string);
			return -1;
		}
		m[i] = it;
		if (cJSON_IsNull(it) && i != M_REQUEST_ID && i != M_TS)
			continue;
		switch (members[i].type) {
		case MT_STR:
			if (!cJSON_IsString(it)) {
				bad(why, "'%s' is not a string", it->string);
				return -1;
			}
			break;
		case MT_BOOL:
			if (!cJSON_IsBool(it)) {
				bad(why, "'%s' is not true or false",
				    it->string);
				return -1;
			}
			ints[i] = cJSON_IsTrue(it);
			break;
		case MT_INT:
			if (!cJSON_IsNumber(it) ||
			    raw_int(raws, nraw, it->string, 0,
				    i == M_STATUS                   ? 999
				    : i == M_LATENCY || i == M_TTFB ? INT32_MAX
								    : INT64_MAX,
				    &ints[i], &cause) < 0) {
				bad(why, "'%s': %s", it->string,
				    cJSON_IsNumber(it) ? cause
						       : "not an integer");
				return -1;
			}
			break;
		}
	}
	for (i = 0; i < M__COUNT; i++)
		if (m[i] != NULL && cJSON_IsNull(m[i]))
			m[i] = NULL;
	return 0;
}

/* Checks r's token counts against each other and sets its usage source
 * (given, or reported when it has tokens). 0, or -1 for a bad line (why
 * says why). */
static int
read_usage(struct reason *why, struct import_rec *r, const char *source)
{
	int64_t sum;

	if (__builtin_add_overflow(r->usage.cached, r->usage.cache_write,
				   &sum) ||
	    sum > r->usage.prompt) {
		bad(why, "cached_tokens and cache_write_tokens "
			 "exceed prompt_tokens, which includes them");
		return -1;
	}
	if (r->usage.reasoning > r->usage.completion) {
		bad(why, "reasoning_tokens exceed "
			 "completion_tokens, which include them");
		return -1;
	}
	if (source == NULL)
		r->source = r->usage.prompt > 0 || r->usage.completion > 0
				    ? USAGE_REPORTED
				    : USAGE_NONE;
	else if (strcmp(source, "reported") == 0)
		r->source = USAGE_REPORTED;
	else if (strcmp(source, "estimated") == 0)
		r->source = USAGE_ESTIMATED;
	else if (strcmp(source, "none") == 0)
		r->source = USAGE_NONE;
	else {
		bad(why, "'usage_source' must be reported, estimated or none");
		return -1;
	}
	if (r->source == USAGE_NONE &&
	    (r->usage.prompt > 0 || r->usage.completion > 0)) {
		bad(why, "usage_source none with tokens");
		return -1;
	}
	r->usage.present = r->source != USAGE_NONE;
	return 0;
}

/* The string value of member i, or NULL. */
#define MSTR(m, i) ((m)[i] != NULL ? (m)[i]->valuestring : NULL)

/* Fills r from the members of obj; ints come from raws. IMPORT_RECORD,
 * IMPORT_BAD or IMPORT_NOMEM. */
static enum import_parsed
fill_record(struct reason *why, struct strmap *strings, struct import_rec *r,
	    const cJSON *obj, const struct raw_num *raws, int nraw,
	    struct import_owner *owner)
{
	const cJSON *m[M__COUNT] = { NULL };
	int64_t ints[M__COUNT] = { 0 };
	const char *s;
	int date_only, failed = 0;

	if (read_members(why, obj, raws, nraw, m, ints) < 0)
		return IMPORT_BAD;
	if (m[M_REQUEST_ID] == NULL || m[M_TS] == NULL) {
		bad(why, "'%s' is required",
		    m[M_REQUEST_ID] == NULL ? "request_id" : "ts");
		return IMPORT_BAD;
	}
	s = m[M_REQUEST_ID]->valuestring;
	if (*s == '\0' || strlen(s) >= sizeof(r->request_id)) {
		bad(why, "'request_id' must have 1 to %zu bytes",
		    sizeof(r->request_id) - 1);
		return IMPORT_BAD;
	}
	memcpy(r->request_id, s, strlen(s) + 1);
	if (ctl_parse_time(m[M_TS]->valuestring, &date_only, &r->ts_us) < 0 ||
	    date_only) {
		bad(why, "'ts' is not an RFC 3339 timestamp");
		return IMPORT_BAD;
	}
	s = MSTR(m, M_ENDPOINT);
	r->endpoint =
		intern(strings, s != NULL ? s : "chat/completions", &failed);
	if ((s = MSTR(m, M_REQUESTED_MODEL)) != NULL)
		r->requested_model = intern(strings, s, &failed);
	if ((s = MSTR(m, M_PROVIDER)) != NULL)
		r->provider = intern(strings, s, &failed);
	if ((s = MSTR(m, M_UPSTREAM_MODEL)) != NULL)
		r->upstream_model = intern(strings, s, &failed);
	if ((s = MSTR(m, M_ERROR)) != NULL && (r->error = strdup(s)) == NULL)
		failed = 1;
	if (failed)
		return IMPORT_NOMEM;
	r->streamed = (int)ints[M_STREAMED];
	r->client_aborted = (int)ints[M_ABORTED];
	r->status = m[M_STATUS] != NULL ? (int)ints[M_STATUS] : 200;
	r->latency_ms = ints[M_LATENCY];
	r->ttfb_ms = m[M_TTFB] != NULL ? ints[M_TTFB] : -1;
	r->usage.prompt = ints[M_PROMPT];
	r->usage.completion = ints[M_COMPLETION];
	r->usage.cached = ints[M_CACHED];
	r->usage.cache_write = ints[M_CACHE_WRITE];
	r->usage.reasoning = ints[M_REASONING];
	if (read_usage(why, r, MSTR(m, M_SOURCE)) < 0)
		return IMPORT_BAD;
	owner->tenant = MSTR(m, M_TENANT);
	owner->key = MSTR(m, M_KEY);
	owner->key_id = m[M_KEY_ID] != NULL ? ints[M_KEY_ID] : 0;
	return IMPORT_RECORD;
}

/* Reads one line into a record; see ctl_import_parse.h. */
enum import_parsed
ctl_import_parse(char *line, size_t len, struct strmap *strings,
		 struct import_rec *r, cJSON **obj, struct import_owner *owner,
		 char *why, size_t whysize)
{
	struct reason reason = { why, whysize };
	struct raw_num raws[M__COUNT + 8];
	const char *end = NULL;
	enum import_parsed rc;
	int nraw;

	*obj = NULL;
	memset(r, 0, sizeof(*r));
	memset(owner, 0, sizeof(*owner));
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		line[--len] = '\0';
	if (strspn(line, " \t") == len)
		return IMPORT_BLANK;
	if (strlen(line) != len) {
		bad(&reason, "NUL byte in the line");
		return IMPORT_BAD;
	}
	*obj = cJSON_ParseWithOpts(line, &end, 1);
	if (*obj == NULL || !cJSON_IsObject(*obj)) {
		if (*obj == NULL)
			bad(&reason, "not JSON (near byte %ld)",
			    end != NULL ? (long)(end - line) + 1 : 1L);
		else
			bad(&reason, "not a JSON object");
		cJSON_Delete(*obj);
		*obj = NULL;
		return IMPORT_BAD;
	}
	nraw = raw_numbers(line, raws, M__COUNT + 8);
	rc = fill_record(&reason, strings, r, *obj, raws, nraw, owner);
	if (rc != IMPORT_RECORD) {
		free(r->error);
		r->error = NULL;
		cJSON_Delete(*obj);
		*obj = NULL;
	}
	return rc;
}
