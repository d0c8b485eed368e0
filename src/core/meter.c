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
	free(rec->cost);
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
	buf_add(b, ",\"", 2);
	buf_str(b, name);
	buf_add(b, "\":", 2);
	buf_int(b, v);
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

/* Writes ,"name":"value" (or null), escaped, valid UTF-8, cut; 1 when
 * the value had to be cut or mended, else 0. */
static int
put_str(struct buf *b, const char *name, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, i = 0, out = 0;
	int mended = 0;

	buf_add(b, ",\"", 2);
	buf_str(b, name);
	if (s == NULL) {
		buf_add(b, "\":null", 6);
		return 0;
	}
	buf_add(b, "\":\"", 3);
	n = strlen(s);
	while (i < n) {
		size_t k, run = i;
		char esc[8];

		/* Printable ASCII goes in runs. */
		while (run < n && out + (run - i) < METER_STR_MAX &&
		       p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' &&
		       p[run] != '\\')
			run++;
		if (run > i) {
			buf_add(b, s + i, run - i);
			out += run - i;
			i = run;
			continue;
		}
		k = utf8_len(p + i, n - i);
		if (out + (k == 0 ? 3 : k) > METER_STR_MAX)
			break;
		if (k == 0) {
			buf_add(b, "\xef\xbf\xbd", 3); /* U+FFFD */
			i++;
			out += 3;
			mended = 1;
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
	return mended || i < n;
}

/* Encodes rec as one line of JSON (no newline) after head bytes left for
 * the caller (the journal's checksum). Returns the malloc'd buffer, the
 * JSON's length in *len, or NULL when out of memory. */
char *
meter_record_encode_at(const struct usage_record *rec, size_t head, size_t *len,
		       int *mended)
{
	struct buf b = BUF_INIT;
	int m = 0;

	/* The head is left for the caller to fill. */
	if (buf_reserve(&b, head + 512) == 0)
		b.len = head;
	buf_str(&b, "{\"v\":1");
	m |= put_str(&b, "id", rec->request_id);
	put_int(&b, "ts", rec->ts_us);
	put_int(&b, "tenant_id", rec->tenant_id);
	put_int(&b, "key_id", rec->key_id);
	m |= put_str(&b, "tenant", rec->tenant);
	m |= put_str(&b, "endpoint", rec->endpoint);
	m |= put_str(&b, "model", rec->requested_model);
	m |= put_str(&b, "provider", rec->provider);
	m |= put_str(&b, "upstream_model", rec->upstream_model);
	put_int(&b, "stream", rec->streamed != 0);
	put_int(&b, "status", rec->status);
	put_int(&b, "prompt", rec->usage.prompt);
	put_int(&b, "completion", rec->usage.completion);
	put_int(&b, "cached", rec->usage.cached);
	put_int(&b, "cache_write", rec->usage.cache_write);
	put_int(&b, "reasoning", rec->usage.reasoning);
	m |= put_str(&b, "source", meter_source_name(rec->source));
	put_int(&b, "aborted", rec->client_aborted != 0);
	put_int(&b, "latency_ms", rec->latency_ms);
	put_int(&b, "ttfb_ms", rec->ttfb_ms);
	m |= put_str(&b, "error", rec->error);
	m |= put_str(&b, "refusal", rec->refusal);
	put_int(&b, "failed_attempts", rec->failed_attempts);
	buf_add(&b, "}", 1);
	if (b.failed) {
		buf_free(&b);
		return NULL;
	}
	*len = b.len - head;
	if (mended != NULL)
		*mended = m;
	return buf_detach(&b, NULL);
}

/* Encodes rec as one line of JSON, from the buffer's start. */
char *
meter_record_encode(const struct usage_record *rec, size_t *len)
{
	return meter_record_encode_at(rec, 0, len, NULL);
}

/* The members of the journal form, in the order the encoder writes them. */
enum field {
	F_V,
	F_ID,
	F_TS,
	F_TENANT_ID,
	F_KEY_ID,
	F_TENANT,
	F_ENDPOINT,
	F_MODEL,
	F_PROVIDER,
	F_UPSTREAM_MODEL,
	F_STREAM,
	F_STATUS,
	F_PROMPT,
	F_COMPLETION,
	F_CACHED,
	F_CACHE_WRITE,
	F_REASONING,
	F_SOURCE,
	F_ABORTED,
	F_LATENCY,
	F_TTFB,
	F_ERROR,
	F_REFUSAL,
	F_FAILED,
	F_COUNT
};

static const char *const field_names[F_COUNT] = {
	"v",         "id",
	"ts",        "tenant_id",
	"key_id",    "tenant",
	"endpoint",  "model",
	"provider",  "upstream_model",
	"stream",    "status",
	"prompt",    "completion",
	"cached",    "cache_write",
	"reasoning", "source",
	"aborted",   "latency_ms",
	"ttfb_ms",   "error",
	"refusal",   "failed_attempts",
};

/* Which field a member's raw name (between its quotes) is, or -1. The
 * encoder writes field i as the i-th member: that one is tried first. */
static int
field_of(const char *raw, size_t n, int guess)
{
	int escaped = memchr(raw, '\\', n) != NULL;

	for (int k = 0; k < F_COUNT; k++) {
		int f = (guess + k) % F_COUNT;
		const char *name = field_names[f];
		if (escaped ? json_name_is(raw, n, name)
			    : strlen(name) == n && memcmp(raw, name, n) == 0)
			return f;
	}
	return -1;
}

/* Writes code point cp as UTF-8. */
static size_t
put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decodes the string value at t[vs..ve) (its quotes included) into a
 * malloc'd C string, cut at a NUL it may hold; NULL when it is null. NULL
 * with *bad when it is not a string, or its escapes do not hold. */
static char *
j_string(const char *t, size_t vs, size_t ve, int *bad)
{
	const char *p = t + vs + 1, *end = t + ve - 1;
	char *out, *o;

	if (ve - vs == 4 && memcmp(t + vs, "null", 4) == 0)
		return NULL;
	if (ve - vs < 2 || t[vs] != '"' || t[ve - 1] != '"') {
		*bad = 1;
		return NULL;
	}
	/* Unescaped, a string is never longer than written. */
	if ((o = out = malloc((size_t)(end - p) + 1)) == NULL) {
		*bad = 1;
		return NULL;
	}
	while (p < end) {
		uint32_t cp, lo;
		const char *bs = memchr(p, '\\', (size_t)(end - p));
		size_t run = bs != NULL ? (size_t)(bs - p) : (size_t)(end - p);

		memcpy(o, p, run);
		o += run;
		p += run;
		if (p == end)
			break;
		if (++p == end)
			goto fail;
		switch (*p++) {
		case '"':
			*o++ = '"';
			break;
		case '\\':
			*o++ = '\\';
			break;
		case '/':
			*o++ = '/';
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u':
			if (end - p < 4 || json_hex4(p, &cp) != 0)
				goto fail;
			p += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				goto fail; /* a low surrogate alone */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p < 6 || p[0] != '\\' ||
				    p[1] != 'u' || json_hex4(p + 2, &lo) != 0 ||
				    lo < 0xdc00 || lo > 0xdfff)
					goto fail;
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
			}
			o += put_utf8(o, cp);
			break;
		default:
			goto fail;
		}
	}
	*o = '\0';
	return out;
fail:
	free(out);
	*bad = 1;
	return NULL;
}

/* Reads the integer value at t[vs..ve) into *v; null leaves *v. */
static void
j_int(const char *t, size_t vs, size_t ve, int64_t *v, int *bad)
{
	if (ve - vs == 4 && memcmp(t + vs, "null", 4) == 0)
		return;
	if (json_parse_int(t + vs, ve - vs, v) != 0)
		*bad = 1;
}

/* Whether a record's numbers are what the journal form allows: a time,
 * counts not negative, an HTTP status, a bounded number of attempts. */
static int
numbers_ok(int64_t ts, const struct usage *u, int64_t status, int64_t failed)
{
	return ts > 0 && u->prompt >= 0 && u->completion >= 0 &&
	       u->cached >= 0 && u->cache_write >= 0 && u->reasoning >= 0 &&
	       status >= 0 && status <= 999 && failed >= 0 && failed <= 1000;
}

/* Decodes a record written by meter_record_encode(), in one pass over its
 * members: integers read from their digits, strings unescaped as JSON
 * defines, the first of repeated members taken, unknown members skipped.
 * NULL when the text is not such a record. */
struct usage_record *
meter_record_decode(const char *json, size_t len)
{
	struct usage_record *rec = meter_record_new();
	struct json_span name, val;
	size_t pos = 0;
	int64_t n[F_COUNT] = { 0 };
	char *str[F_COUNT] = { NULL };
	unsigned seen = 0;
	int bad = 0, rc, next = 0;

	if (rec == NULL)
		return NULL;
	n[F_TTFB] = -1;
	while ((rc = json_member_next(json, len, &pos, &name, &val)) == 1) {
		int f = field_of(json + name.start, name.end - name.start,
				 next);
		if (f < 0 || (seen & 1u << f))
			continue;
		seen |= 1u << f;
		next = (f + 1) % F_COUNT;
		switch (f) {
		case F_ID:
		case F_TENANT:
		case F_ENDPOINT:
		case F_MODEL:
		case F_PROVIDER:
		case F_UPSTREAM_MODEL:
		case F_SOURCE:
		case F_ERROR:
		case F_REFUSAL:
			str[f] = j_string(json, val.start, val.end, &bad);
			break;
		default:
			j_int(json, val.start, val.end, &n[f], &bad);
		}
		if (bad)
			break;
	}
	/* Nothing but blanks after the object. */
	for (; rc == 0 && pos < len; pos++)
		if (json[pos] != ' ' && json[pos] != '\t' &&
		    json[pos] != '\n' && json[pos] != '\r')
			rc = -1;
	rec->usage.prompt = n[F_PROMPT];
	rec->usage.completion = n[F_COMPLETION];
	rec->usage.cached = n[F_CACHED];
	rec->usage.cache_write = n[F_CACHE_WRITE];
	rec->usage.reasoning = n[F_REASONING];
	if (rc != 0 || bad || n[F_V] != 1 || str[F_ID] == NULL ||
	    str[F_ID][0] == '\0' ||
	    strlen(str[F_ID]) >= sizeof rec->request_id ||
	    (str[F_ENDPOINT] != NULL &&
	     strlen(str[F_ENDPOINT]) >= sizeof rec->endpoint_buf) ||
	    !numbers_ok(n[F_TS], &rec->usage, n[F_STATUS], n[F_FAILED])) {
		for (int f = 0; f < F_COUNT; f++)
			free(str[f]);
		meter_record_free(rec);
		return NULL;
	}
	memcpy(rec->request_id, str[F_ID], strlen(str[F_ID]) + 1);
	rec->ts_us = n[F_TS];
	rec->tenant_id = n[F_TENANT_ID];
	rec->key_id = n[F_KEY_ID];
	rec->tenant = str[F_TENANT];
	if (str[F_ENDPOINT] != NULL) {
		memcpy(rec->endpoint_buf, str[F_ENDPOINT],
		       strlen(str[F_ENDPOINT]) + 1);
		rec->endpoint = rec->endpoint_buf;
	}
	rec->requested_model = str[F_MODEL];
	rec->provider = str[F_PROVIDER];
	rec->upstream_model = str[F_UPSTREAM_MODEL];
	rec->streamed = n[F_STREAM] != 0;
	rec->status = (int)n[F_STATUS];
	rec->usage.present =
		rec->usage.prompt != 0 || rec->usage.completion != 0;
	if (str[F_SOURCE] != NULL && strcmp(str[F_SOURCE], "reported") == 0)
		rec->source = USAGE_REPORTED;
	else if (str[F_SOURCE] != NULL &&
		 strcmp(str[F_SOURCE], "estimated") == 0)
		rec->source = USAGE_ESTIMATED;
	else
		rec->source = USAGE_NONE;
	rec->client_aborted = n[F_ABORTED] != 0;
	rec->latency_ms = n[F_LATENCY];
	rec->ttfb_ms = n[F_TTFB];
	rec->error = str[F_ERROR];
	rec->failed_attempts = (int)n[F_FAILED];
	if (str[F_REFUSAL] != NULL)
		snprintf(rec->refusal, sizeof rec->refusal, "%s",
			 str[F_REFUSAL]);
	free(str[F_ID]);
	free(str[F_ENDPOINT]);
	free(str[F_SOURCE]);
	free(str[F_REFUSAL]);
	return rec;
}

int
meter_record_as_decoded(struct usage_record *rec, int mended)
{
	if (mended || rec->request_id[0] == '\0' ||
	    (rec->endpoint != NULL &&
	     strlen(rec->endpoint) >= sizeof rec->endpoint_buf) ||
	    !numbers_ok(rec->ts_us, &rec->usage, rec->status,
			rec->failed_attempts))
		return -1;
	rec->streamed = rec->streamed != 0;
	rec->client_aborted = rec->client_aborted != 0;
	rec->usage.present =
		rec->usage.prompt != 0 || rec->usage.completion != 0;
	if (rec->source != USAGE_REPORTED && rec->source != USAGE_ESTIMATED)
		rec->source = USAGE_NONE;
	return 0;
}
