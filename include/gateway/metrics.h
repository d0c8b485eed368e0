/*
 * metrics.h - the gateway's figures for /metrics (Prometheus text).
 *
 * A leaf: it includes no other module of the gateway. Requests, tokens
 * and spend are pushed by the modules that know them (request.c when a
 * request ends, the usage writer when the ledger priced a record); the
 * gateway's own event counters are added to by name; any module's other
 * figures (the journal's depth, the database's state) are registered as
 * readers and read when /metrics is rendered.
 */
#ifndef TOLLGATE_METRICS_H
#define TOLLGATE_METRICS_H

#include <stdint.h>

struct evbuffer;

/* What one finished request adds to the counters. Strings are borrowed
 * for the call; NULL tenant and model count as "-". */
struct metrics_request {
	const char *tenant;
	const char *model;    /* as requested */
	const char *provider; /* NULL when it reached none */
	int status;
	int64_t prompt, completion, cached, reasoning;
	int64_t latency_ms;
	int64_t ttfb_ms; /* -1 when no byte reached the client */
	int streamed;
	int aborted;   /* the client left */
	int unmetered; /* succeeded without usage */
};

/* Counts one finished request. */
void metrics_request(const struct metrics_request *r);

/* Counts the cost of a record the ledger priced, in nano-units of
 * currency. */
void metrics_spend(const char *tenant, const char *currency,
		   int64_t billed_nanos, int64_t list_nanos);

/* Events the gateway counts. */
enum metrics_counter {
	METRIC_SOFT_QUOTA, /* a request served over a soft quota */
	METRIC_IN_FLIGHT,  /* gauge: requests begun and not yet ended */
	METRIC_STREAMS,    /* gauge: streamed replies under way */
	METRIC__COUNT
};

void metrics_add(enum metrics_counter c, int64_t n);

/* The current value of one of those. */
int64_t metrics_get(enum metrics_counter c);

/* The latency histogram's bucket bounds (ms), METRICS_NBUCKETS of them;
 * a histogram has one more count, for the slower ones. */
#define METRICS_NBUCKETS 11
extern const int64_t metrics_buckets_ms[METRICS_NBUCKETS];

/* One provider's request durations since start, as /metrics shows them
 * (counts per bucket, not cumulative). */
struct metrics_latency {
	char provider[64];
	int64_t hist[METRICS_NBUCKETS + 1];
};

/* Copies at most max providers' histograms into out; returns how many
 * there are (maybe more than max). */
int metrics_latency_read(struct metrics_latency *out, int max);

/* Requests finished since start, over every tenant, model and status. */
int64_t metrics_requests_total(void);

/* A figure registered with metrics_register(), read now: 0 and *found 0
 * when no figure has that name. */
int64_t metrics_read(const char *name, int *found);

/* Registers a figure another module owns: its name, Prometheus type
 * ("counter" or "gauge"), help text, and the function that reads it (any
 * thread). Figures render in the order registered. */
void metrics_register(const char *name, const char *type, const char *help,
		      int64_t (*read)(void));

/* Appends the exposition text to buf. */
void metrics_render(struct evbuffer *buf);

#endif
