/*
 * meter.h - the usage record: what one request used and how it ended.
 *
 * Every request that reaches admission produces exactly one record, filled
 * as the request goes, settled by meter_settle() when it ends (the
 * metering decision: reported, estimated, or nothing) and handed to the
 * journal (spool_submit), which owns it from then on. The record's key is
 * the request id.
 */
#ifndef TOLLGATE_METER_H
#define TOLLGATE_METER_H

#include <stddef.h>
#include <stdint.h>
#include "promo.h"
#include "usage.h"

enum usage_source {
	USAGE_NONE, /* no tokens: refused, error, or never reached upstream */
	USAGE_REPORTED,  /* counts came from the provider */
	USAGE_ESTIMATED, /* counted by the gateway (estimate.h) */
};

struct usage_record {
	char request_id[40];
	int64_t ts_us;     /* request start, microseconds since the epoch */
	int64_t tenant_id; /* 0 when no valid key was given */
	int64_t key_id;
	char *tenant;         /* owned tenant name, for logs and metrics */
	const char *endpoint; /* e.g. "chat/completions": a static string,
				 or endpoint_buf when decoded */
	char endpoint_buf[32];
	char *requested_model; /* owned, may be NULL */
	char *provider;        /* owned, may be NULL */
	char *upstream_model;  /* owned, may be NULL */
	int streamed;
	int status;
	struct usage usage;
	enum usage_source source;
	int client_aborted;
	int64_t latency_ms;
	int64_t ttfb_ms;     /* -1 when no byte reached the client */
	char *error;         /* owned reason for refusals and failures */
	int failed_attempts; /* route targets that failed before this */
	char refusal[32];    /* which policy refused it
				("rate_limit:requests", "quota:12"), or "" */

	/* Filled by ledger_write() when the record is ingested. */
	int inserted;     /* new in the ledger (not a replay) */
	int64_t price_id; /* 0 when unpriced or nothing to price */
	char currency[4];
	int unpriced;              /* tokens but no price row */
	struct promo_result *cost; /* allocated when priced, else NULL */
	struct usage_record *next; /* queue link, owned by the writer */
};

/* What a request knew about its usage when it ended: the metering
 * decision's input. */
struct meter_end {
	struct usage reported; /* the provider's counts, when present */
	int64_t output_tokens; /* estimated tokens of the output text seen */
	int64_t prompt_tokens; /* the prompt's estimate from admission */
	int body_read;         /* admission read the body (prompt_tokens
				  is meaningful) */
	int delivered;         /* the provider got the whole request */
	int upstream_status;   /* the provider's HTTP status, 0 = none */
};

/* Settles rec's usage: the provider's counts when it reported any; else
 * an estimate (the prompt and the output seen) when the provider got the
 * request and either succeeded (a silent provider, a cut stream) or lost
 * its client while it worked; else nothing: refusals, provider errors and
 * requests that never reached the provider bill zero. A status still 0 is
 * set to the provider's. */
void meter_settle(struct usage_record *rec, const struct meter_end *end);

struct usage_record *meter_record_new(void);
void meter_record_free(struct usage_record *rec);
const char *meter_source_name(enum usage_source s);

/* The journal form (spool.h): one line of JSON, no newline inside, strings
 * valid UTF-8 and cut at METER_STR_MAX bytes. encode returns malloc'd,
 * NUL-terminated text (length in *len) or NULL when out of memory; decode
 * returns a new record or NULL when the text is not one. */
#define METER_STR_MAX 1024
char *meter_record_encode(const struct usage_record *rec, size_t *len);
/* The same after head bytes left free for the caller to fill (the JSON
 * starts at the buffer + head), so a framed line needs no copy; *mended
 * (unless NULL) tells whether a string had to be cut or mended. */
char *meter_record_encode_at(const struct usage_record *rec, size_t head,
			     size_t *len, int *mended);
struct usage_record *meter_record_decode(const char *json, size_t len);

/* Makes rec what decoding its journal form gives back (flags 0 or 1,
 * usage.present from the counts), so it can be handed on without the
 * round trip: 0, or -1 when the round trip would change it (mended, from
 * the encoder) or refuse it. */
int meter_record_as_decoded(struct usage_record *rec, int mended);

#endif
