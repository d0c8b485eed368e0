/*
 * metrics.h - the gateway's counters for /metrics (Prometheus text).
 *
 * Requests and tokens by tenant, model and status, spend by tenant and
 * currency, upstream latency by provider, and the state of the writer and
 * the key cache. Updated once per finished request (and per ingested
 * record for spend); rendered by the admin server.
 */
#ifndef TOLLGATE_METRICS_H
#define TOLLGATE_METRICS_H

struct usage_record;
struct evbuffer;

/* Counts one finished request from its usage record. */
void metrics_count(const struct usage_record *rec);

/* Counts the cost of a record the ledger just priced. */
void metrics_spend(const struct usage_record *rec);

/* Counts a request served over a soft quota. */
void metrics_soft_quota(void);

/* Appends the exposition text to buf. */
void metrics_render(struct evbuffer *buf);

#endif
