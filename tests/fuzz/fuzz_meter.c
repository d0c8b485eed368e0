/*
 * fuzz_meter.c - the journal form of the usage record (meter.c): what
 * spool.c writes for every request and reads back after a crash.
 *
 * Input: a byte of options, then either a journal line's JSON (decoded)
 * or the bytes a record is built from as the gateway fills one (its
 * free-text fields, tenant, models, provider and error, any bytes, as
 * clients and upstreams can make them). Every record built that way is
 * encoded into a line that decodes into a record that encodes to the
 * same line: no record the gateway writes is lost or changed on the way
 * back. A record decoded from any text is within decode's bounds. (The
 * journal's framing, a checksum before the JSON, is read in spool.c only
 * by the usage writer's thread, with the journal open; it is not fuzzed.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "meter.h"

static const char *const endpoints[] = { "chat/completions", "messages",
					 "responses",        "completions",
					 "embeddings",       NULL };
static const char *const refusals[] = { "", "invalid_request",
					"rate_limit:requests", "quota:12",
					"ledger" };

/* Encodes rec, decodes the line and encodes the result: same line. */
static void
round_trip(const struct usage_record *rec)
{
	struct usage_record *back;
	size_t n1, n2;
	char *e1 = meter_record_encode(rec, &n1), *e2;

	FUZZ_CHECK(e1 != NULL, "not encoded");
	FUZZ_CHECK(strlen(e1) == n1 && memchr(e1, '\n', n1) == NULL,
		   "not one line");
	back = meter_record_decode(e1, n1);
	FUZZ_CHECK(back != NULL, "an encoded record does not decode: %s", e1);
	e2 = meter_record_encode(back, &n2);
	FUZZ_CHECK(e2 != NULL && fuzz_same(e1, n1, e2, n2),
		   "decoded, it encodes differently:\n%s\n%s", e1, e2);
	FUZZ_CHECK(back->ts_us == rec->ts_us &&
			   back->usage.prompt == rec->usage.prompt &&
			   back->usage.completion == rec->usage.completion &&
			   back->source == rec->source &&
			   back->status == rec->status,
		   "a number changed: %s", e1);
	free(e1);
	free(e2);
	meter_record_free(back);
}

/* Whether s is printable ASCII (NULL is). */
static int
ascii(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* Checks a record decoded from any text: within the bounds decode
 * promises, and, when its request id, endpoint and refusal are what the
 * gateway writes there (ASCII: in their fixed buffers, bytes that encode
 * escapes or replaces would no longer fit), it goes round. */
static void
check_decoded(const struct usage_record *rec)
{
	size_t n = strlen(rec->request_id);

	FUZZ_CHECK(n > 0 && n < sizeof(rec->request_id), "request id of %zu",
		   n);
	FUZZ_CHECK(rec->ts_us > 0 && rec->status >= 0 && rec->status <= 999 &&
			   rec->failed_attempts >= 0 &&
			   rec->failed_attempts <= 1000,
		   "a field out of bounds");
	FUZZ_CHECK(rec->usage.prompt >= 0 && rec->usage.completion >= 0 &&
			   rec->usage.cached >= 0 &&
			   rec->usage.cache_write >= 0 &&
			   rec->usage.reasoning >= 0,
		   "a negative count");
	if (ascii(rec->request_id) && ascii(rec->endpoint) &&
	    ascii(rec->refusal))
		round_trip(rec);
}

/* The next NUL-separated piece of the input as a string, or NULL. */
static char *
piece(struct fuzz_in *in)
{
	const uint8_t *nul = memchr(in->p, '\0', in->n);
	size_t n = nul != NULL ? (size_t)(nul - in->p) : in->n;
	char *s;

	if (in->n == 0)
		return NULL;
	s = malloc(n + 1);
	FUZZ_CHECK(s != NULL, "out of memory");
	memcpy(s, in->p, n);
	s[n] = '\0';
	in->p += n + (nul != NULL);
	in->n -= n + (nul != NULL);
	return s;
}

/* A 64-bit value from the input, below 2^(8 * bytes). */
static int64_t
take_int(struct fuzz_in *in, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | fuzz_take(in);
	return (int64_t)(v & INT64_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned opt = fuzz_take(&in);
	struct usage_record *rec;

	if (opt & 1) {
		rec = meter_record_decode((const char *)in.p, in.n);
		if (rec != NULL) {
			check_decoded(rec);
			meter_record_free(rec);
		}
		return 0;
	}
	rec = meter_record_new();
	FUZZ_CHECK(rec != NULL, "out of memory");
	snprintf(rec->request_id, sizeof(rec->request_id), "%016llx%016llx",
		 (unsigned long long)take_int(&in, 8),
		 (unsigned long long)take_int(&in, 8));
	rec->ts_us = 1 + take_int(&in, 7);
	rec->tenant_id = take_int(&in, 2);
	rec->key_id = take_int(&in, 2);
	rec->endpoint = endpoints[(opt >> 1) % 6];
	snprintf(rec->refusal, sizeof(rec->refusal), "%s",
		 refusals[(opt >> 4) % 5]);
	rec->streamed = (opt >> 7) & 1;
	rec->status = (int)(take_int(&in, 2) % 1000);
	rec->usage.prompt = take_int(&in, 8);
	rec->usage.completion = take_int(&in, 8);
	rec->usage.cached = take_int(&in, 2);
	rec->usage.reasoning = take_int(&in, 2);
	rec->usage.present = 1;
	rec->source = (enum usage_source)(fuzz_take(&in) % 3);
	rec->latency_ms = take_int(&in, 4);
	rec->ttfb_ms = take_int(&in, 4) - 1;
	rec->failed_attempts = (int)(take_int(&in, 1) % 9);
	rec->tenant = piece(&in);
	rec->requested_model = piece(&in);
	rec->provider = piece(&in);
	rec->upstream_model = piece(&in);
	rec->error = piece(&in);
	round_trip(rec);
	meter_record_free(rec);
	return 0;
}
