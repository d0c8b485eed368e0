/*
 * meter.c - usage records: allocation, and their journal form.
 *
 * The journal form is one line of JSON per record (no newline inside), so a
 * spool segment can be read by eye, by jq, or salvaged by hand. Strings are
 * written as valid UTF-8 (an invalid byte becomes U+FFFD) and cut at
 * METER_STR_MAX bytes: whatever a client put in a model name, the record
 * stays small and PostgreSQL accepts it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "buf.h"
#include "json.h"
#include "meter.h"

/* Allocates a zeroed record. */
struct usage_record *
meter_record_new(void)
{
	struct usage_record *rec = calloc(1, sizeof *rec);

	if (rec != NULL)
		rec->ttfb_ms = -1;
	return rec;
}

/* Frees a record and the strings it owns. */
void
meter_record_free(struct usage_record *rec)
{
	if (rec == NULL)
		return;
	free(rec->tenant);
	free(rec->requested_model);
	free(rec->provider);
	free(rec->upstream_model);
	free(rec->error);
	free(rec);
}

/* Whether a request without reported usage is billed by estimate. */
static int
needs_estimate(const struct usage_record *rec, const struct meter_end *end)
{
	if (!end->delivered || !end->body_read)
		return 0;
	if (end->upstream_status >= 200 && end->upstream_status < 300)
		return 1;
	return end->upstream_status == 0 && rec->client_aborted;
}

/* The metering decision. */
void
meter_settle(struct usage_record *rec, const struct meter_end *end)
{
	if (rec->status == 0)
		rec->status = end->upstream_status;
	if (end->reported.present) {
		rec->usage = end->reported;
		rec->source = USAGE_REPORTED;
	} else if (needs_estimate(rec, end)) {
		memset(&rec->usage, 0, sizeof rec->usage);
		rec->usage.prompt = end->prompt_tokens;
		rec->usage.completion = end->output_tokens;
		rec->source = USAGE_ESTIMATED;
	}
}

/* The name stored in usage_records.usage_source. */
const char *
meter_source_name(enum usage_source s)
{
	switch (s) {
	case USAGE_REPORTED:
		return "reported";
	case USAGE_ESTIMATED:
		return "estimated";
	default:
		return "none";
	}
}

/* Appends ,"name":v. */
static void
put_int(struct buf *b, const char *name, int64_t v)
{
	buf_printf(b, ",\"%s\":%" PRId64, name, v);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* Writes ,"name":"value" (or null), escaped, valid UTF-8, cut. */
static void
put_str(struct buf *b, const char *name, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, i = 0, out = 0;

	buf_add(b, ",\"", 2);
	buf_str(b, name);
	if (s == NULL) {
		buf_add(b, "\":null", 6);
		return;
	}
	buf_add(b, "\":\"", 3);
	n = strlen(s);
	while (i < n) {
		size_t k = utf8_len(p + i, n - i);
		char esc[8];

		if (out + (k == 0 ? 3 : k) > METER_STR_MAX)
			break;
		if (k == 0) {
			buf_add(b, "\xef\xbf\xbd", 3); /* U+FFFD */
			i++;
			out += 3;
			continue;
		}
		if (p[i] == '"' || p[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)p[i];
			buf_add(b, esc, 2);
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			snprintf(esc, sizeof esc, "\\u%04x", p[i]);
			buf_add(b, esc, 6);
		} else {
			buf_add(b, s + i, k);
		}
		i += k;
		out += k;
	}
	buf_add(b, "\"", 1);
}

/* Encodes rec as one line of JSON (no newline) after head bytes left for
 * the caller (the journal's checksum). Returns the malloc'd buffer, the
 * JSON's length in *len, or NULL when out of memory. */
char *
meter_record_encode_at(const struct usage_record *rec, size_t head, size_t *len)
{
	struct buf b = BUF_INIT;

	/* The head is left for the caller to fill. */
	if (buf_reserve(&b, head + 512) == 0)
		b.len = head;
	buf_str(&b, "{\"v\":1");
	put_str(&b, "id", rec->request_id);
	put_int(&b, "ts", rec->ts_us);
	put_int(&b, "tenant_id", rec->tenant_id);
	put_int(&b, "key_id", rec->key_id);
	put_str(&b, "tenant", rec->tenant);
	put_str(&b, "endpoint", rec->endpoint);
	put_str(&b, "model", rec->requested_model);
	put_str(&b, "provider", rec->provider);
	put_str(&b, "upstream_model", rec->upstream_model);
	put_int(&b, "stream", rec->streamed != 0);
	put_int(&b, "status", rec->status);
	put_int(&b, "prompt", rec->usage.prompt);
	put_int(&b, "completion", rec->usage.completion);
	put_int(&b, "cached", rec->usage.cached);
	put_int(&b, "cache_write", rec->usage.cache_write);
	put_int(&b, "reasoning", rec->usage.reasoning);
	put_str(&b, "source", meter_source_name(rec->source));
	put_int(&b, "aborted", rec->client_aborted != 0);
	put_int(&b, "latency_ms", rec->latency_ms);
	put_int(&b, "ttfb_ms", rec->ttfb_ms);
	put_str(&b, "error", rec->error);
	put_str(&b, "refusal", rec->refusal);
	put_int(&b, "failed_attempts", rec->failed_attempts);
	buf_add(&b, "}", 1);
	if (b.failed) {
		buf_free(&b);
		return NULL;
	}
	*len = b.len - head;
	return buf_detach(&b, NULL);
}

/* Encodes rec as one line of JSON, from the buffer's start. */
char *
meter_record_encode(const struct usage_record *rec, size_t *len)
{
	return meter_record_encode_at(rec, 0, len);
}

/* The text being decoded; integers are read from its digits. */
struct jtext {
	const char *p;
	size_t len;
};

/* An integer member, or def when absent or null; *bad when it is not an
 * integer that fits. Read from the digits, never through a double. */
static int64_t
j_int(const struct jtext *t, const char *name, int64_t def, int *bad)
{
	int64_t v;
	int rc = json_member_int(t->p, t->len, name, &v);

	if (rc < 0)
		*bad = 1;
	return rc == 1 ? v : def;
}

/* A string member, NULL when absent or null; *bad when another type. */
static const char *
j_str(const cJSON *o, const char *name, int *bad)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (v == NULL || cJSON_IsNull(v))
		return NULL;
	if (!cJSON_IsString(v)) {
		*bad = 1;
		return NULL;
	}
	return v->valuestring;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* Decodes a record written by meter_record_encode(). NULL when the text is
 * not such a record. */
struct usage_record *
meter_record_decode(const char *json, size_t len)
{
	struct usage_record *rec;
	const char *id, *ep, *src, *refusal;
	const struct jtext t = { json, len };
	cJSON *o = json_parse_exact(json, len); /* nothing after the record */
	int bad = 0;

	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return NULL;
	}
	rec = meter_record_new();
	if (rec == NULL || j_int(&t, "v", 0, &bad) != 1)
		goto fail;
	id = j_str(o, "id", &bad);
	if (id == NULL || *id == '\0' || strlen(id) >= sizeof rec->request_id)
		goto fail;
	memcpy(rec->request_id, id, strlen(id) + 1);
	rec->ts_us = j_int(&t, "ts", 0, &bad);
	rec->tenant_id = j_int(&t, "tenant_id", 0, &bad);
	rec->key_id = j_int(&t, "key_id", 0, &bad);
	rec->tenant = dup_or_null(j_str(o, "tenant", &bad));
	ep = j_str(o, "endpoint", &bad);
	if (ep != NULL && strlen(ep) >= sizeof rec->endpoint_buf)
		goto fail;
	if (ep != NULL) {
		memcpy(rec->endpoint_buf, ep, strlen(ep) + 1);
		rec->endpoint = rec->endpoint_buf;
	}
	rec->requested_model = dup_or_null(j_str(o, "model", &bad));
	rec->provider = dup_or_null(j_str(o, "provider", &bad));
	rec->upstream_model = dup_or_null(j_str(o, "upstream_model", &bad));
	rec->streamed = j_int(&t, "stream", 0, &bad) != 0;
	{
		int64_t st = j_int(&t, "status", 0, &bad);
		rec->status = st < 0 || st > 999 ? -1 : (int)st;
	}
	rec->usage.prompt = j_int(&t, "prompt", 0, &bad);
	rec->usage.completion = j_int(&t, "completion", 0, &bad);
	rec->usage.cached = j_int(&t, "cached", 0, &bad);
	rec->usage.cache_write = j_int(&t, "cache_write", 0, &bad);
	rec->usage.reasoning = j_int(&t, "reasoning", 0, &bad);
	rec->usage.present =
		rec->usage.prompt != 0 || rec->usage.completion != 0;
	src = j_str(o, "source", &bad);
	if (src != NULL && strcmp(src, "reported") == 0)
		rec->source = USAGE_REPORTED;
	else if (src != NULL && strcmp(src, "estimated") == 0)
		rec->source = USAGE_ESTIMATED;
	else
		rec->source = USAGE_NONE;
	rec->client_aborted = j_int(&t, "aborted", 0, &bad) != 0;
	rec->latency_ms = j_int(&t, "latency_ms", 0, &bad);
	rec->ttfb_ms = j_int(&t, "ttfb_ms", -1, &bad);
	rec->error = dup_or_null(j_str(o, "error", &bad));
	{
		int64_t fa = j_int(&t, "failed_attempts", 0, &bad);
		rec->failed_attempts = fa < 0 || fa > 1000 ? -1 : (int)fa;
	}
	refusal = j_str(o, "refusal", &bad);
	if (refusal != NULL)
		snprintf(rec->refusal, sizeof rec->refusal, "%s", refusal);
	if (bad || rec->ts_us <= 0 || rec->usage.prompt < 0 ||
	    rec->usage.completion < 0 || rec->usage.cached < 0 ||
	    rec->usage.cache_write < 0 || rec->usage.reasoning < 0 ||
	    rec->status < 0 || rec->status > 999 || rec->failed_attempts < 0 ||
	    rec->failed_attempts > 1000)
		goto fail;
	cJSON_Delete(o);
	return rec;
fail:
	cJSON_Delete(o);
	meter_record_free(rec);
	return NULL;
}
