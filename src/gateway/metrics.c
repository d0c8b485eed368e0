/*
 * metrics.c - counters for /metrics.
 *
 * Labelled series live in one table under a mutex, keyed by their
 * rendered label set; a request takes the lock once, at its end. The
 * number of series is bounded (tenants x models x statuses can grow with
 * what clients send): past MAX_SERIES new label sets are counted under
 * tenant="other".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "keystore.h"
#include "meter.h"
#include "metrics.h"
#include "pgwriter.h"
#include "spool.h"
#include "strmap.h"

#define MAX_SERIES 20000

/* Upper bounds of the latency buckets, in milliseconds. */
static const int64_t buckets_ms[] = { 50, 100, 250, 500, 1000, 2500, 5000,
				      10000, 30000, 60000, 120000 };
#define NBUCKETS ((int)(sizeof buckets_ms / sizeof *buckets_ms))

enum family { F_REQUESTS, F_SPEND, F_LATENCY, F__COUNT };

/* A labelled series' numbers; its labels, rendered (tenant="a",...), are
 * its key in the family's table. */
struct series {
	int64_t v[5];               /* requests, prompt, completion, cached,
	                               reasoning; or spend: billed, list */
	int64_t hist[NBUCKETS + 1]; /* latency buckets, +Inf last */
	int64_t sum;                /* latency sum (ms) */
};

static struct {
	pthread_mutex_t lock;
	struct strmap fam[F__COUNT];
	size_t n;                   /* series in all families */
} m = { .lock = PTHREAD_MUTEX_INITIALIZER,
	.fam = { { .vsize = sizeof(struct series) },
		 { .vsize = sizeof(struct series) },
		 { .vsize = sizeof(struct series) } } };

static atomic_llong streamed, aborted, unmetered, soft_quota;

/* Counts a request served over a soft quota. */
void
metrics_soft_quota(void)
{
	atomic_fetch_add(&soft_quota, 1);
}

/* Appends a label value to buf, escaped as Prometheus wants. */
static size_t
esc(char *buf, size_t size, size_t off, const char *v)
{
	for (; v != NULL && *v != '\0' && off + 3 < size; v++) {
		if (*v == '\\' || *v == '"') {
			buf[off++] = '\\';
			buf[off++] = *v;
		} else if (*v == '\n') {
			buf[off++] = '\\';
			buf[off++] = 'n';
		} else {
			buf[off++] = *v;
		}
	}
	buf[off] = '\0';
	return off;
}

/* Renders name="value" pairs (NULL-terminated list) into buf. */
static void
labels(char *buf, size_t size, const char *const *kv)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; kv[i] != NULL && off + 8 < size; i += 2) {
		off += (size_t)snprintf(buf + off, size - off, "%s%s=\"",
					i ? "," : "", kv[i]);
		off = esc(buf, size, off, kv[i + 1] ? kv[i + 1] : "");
		if (off + 2 < size) {
			buf[off++] = '"';
			buf[off] = '\0';
		}
	}
}

/* The series of a family for labels; past MAX_SERIES, new label sets
 * are counted under tenant="other". Caller holds the lock. NULL when out
 * of memory. */
static struct series *
series(enum family fam, const char *l)
{
	struct strmap *t = &m.fam[fam];
	struct series *s = strmap_get(t, l);

	if (s != NULL)
		return s;
	if (m.n >= MAX_SERIES) {
		l = "tenant=\"other\"";
		if ((s = strmap_get(t, l)) != NULL)
			return s;
	}
	if ((s = strmap_add(t, l, NULL)) != NULL)
		m.n++;
	return s;
}

/* Counts one finished request. */
void
metrics_count(const struct usage_record *rec)
{
	char l[512], status[16];
	struct series *s;

	snprintf(status, sizeof status, "%d", rec->status);
	labels(l, sizeof l, (const char *const[]){
		"tenant", rec->tenant ? rec->tenant : "-", "model",
		rec->requested_model ? rec->requested_model : "-", "status",
		status, NULL });
	if (rec->streamed)
		atomic_fetch_add(&streamed, 1);
	if (rec->client_aborted)
		atomic_fetch_add(&aborted, 1);
	if (rec->status >= 200 && rec->status < 300 &&
	    rec->source == USAGE_NONE)
		atomic_fetch_add(&unmetered, 1);
	pthread_mutex_lock(&m.lock);
	if ((s = series(F_REQUESTS, l)) != NULL) {
		s->v[0]++;
		s->v[1] += rec->usage.prompt;
		s->v[2] += rec->usage.completion;
		s->v[3] += rec->usage.cached;
		s->v[4] += rec->usage.reasoning;
	}
	if (rec->provider != NULL && rec->ttfb_ms >= 0) {
		labels(l, sizeof l, (const char *const[]){
			"provider", rec->provider, NULL });
		if ((s = series(F_LATENCY, l)) != NULL) {
			int b = 0;
			while (b < NBUCKETS && rec->latency_ms > buckets_ms[b])
				b++;
			s->hist[b]++;
			s->sum += rec->latency_ms;
		}
	}
	pthread_mutex_unlock(&m.lock);
}

/* Counts a priced record's cost. */
void
metrics_spend(const struct usage_record *rec)
{
	char l[256];
	struct series *s;

	if (rec->price_id == 0)
		return;
	labels(l, sizeof l, (const char *const[]){
		"tenant", rec->tenant ? rec->tenant : "-", "currency",
		rec->currency, NULL });
	pthread_mutex_lock(&m.lock);
	if ((s = series(F_SPEND, l)) != NULL) {
		s->v[0] += rec->cost.billed_nanos;
		s->v[1] += rec->cost.list_nanos;
	}
	pthread_mutex_unlock(&m.lock);
}

/* Renders the labelled families. Caller holds the lock. */
static void
render_series(struct evbuffer *b)
{
	static const char *const tok[] = { NULL, "prompt", "completion",
					   "cached", "reasoning" };
	const char *l;
	struct series *s;
	size_t it;

	evbuffer_add_printf(b, "# HELP tollgate_requests_total Requests "
			    "finished, by tenant, requested model and status.\n"
			    "# TYPE tollgate_requests_total counter\n");
	for (it = 0; strmap_next(&m.fam[F_REQUESTS], &it, &l, (void **)&s);)
		evbuffer_add_printf(b, "tollgate_requests_total{%s} %lld\n", l,
				    (long long)s->v[0]);
	evbuffer_add_printf(b, "# HELP tollgate_tokens_total Tokens metered, "
			    "by tenant, requested model, status and class.\n"
			    "# TYPE tollgate_tokens_total counter\n");
	for (it = 0; strmap_next(&m.fam[F_REQUESTS], &it, &l, (void **)&s);)
		for (int k = 1; k < 5; k++)
			evbuffer_add_printf(b, "tollgate_tokens_total{%s,"
					    "class=\"%s\"} %lld\n", l, tok[k],
					    (long long)s->v[k]);
	evbuffer_add_printf(b, "# HELP tollgate_spend_nanos_total Cost of "
			    "the usage written to the ledger, in nano-units "
			    "of its currency: billed (after promotions) and "
			    "at list price.\n"
			    "# TYPE tollgate_spend_nanos_total counter\n");
	for (it = 0; strmap_next(&m.fam[F_SPEND], &it, &l, (void **)&s);)
		evbuffer_add_printf(b, "tollgate_spend_nanos_total{%s,"
				    "kind=\"billed\"} %lld\n"
				    "tollgate_spend_nanos_total{%s,"
				    "kind=\"list\"} %lld\n",
				    l, (long long)s->v[0], l,
				    (long long)s->v[1]);
	evbuffer_add_printf(b, "# HELP tollgate_request_duration_ms Time from "
			    "a request's arrival to its end, for requests "
			    "that reached a provider.\n"
			    "# TYPE tollgate_request_duration_ms histogram\n");
	for (it = 0; strmap_next(&m.fam[F_LATENCY], &it, &l, (void **)&s);) {
		int64_t cum = 0;
		for (int k = 0; k <= NBUCKETS; k++) {
			char le[24];
			cum += s->hist[k];
			if (k < NBUCKETS)
				snprintf(le, sizeof le, "%lld",
					 (long long)buckets_ms[k]);
			else
				snprintf(le, sizeof le, "+Inf");
			evbuffer_add_printf(b, "tollgate_request_duration_ms_"
					    "bucket{%s,le=\"%s\"} %lld\n", l,
					    le, (long long)cum);
		}
		evbuffer_add_printf(b, "tollgate_request_duration_ms_sum{%s} "
				    "%lld\ntollgate_request_duration_ms_count"
				    "{%s} %lld\n", l, (long long)s->sum, l,
				    (long long)cum);
	}
}

/* Renders every metric. */
void
metrics_render(struct evbuffer *b)
{
	pthread_mutex_lock(&m.lock);
	render_series(b);
	pthread_mutex_unlock(&m.lock);
	evbuffer_add_printf(b,
		"# HELP tollgate_streamed_requests_total Streamed requests.\n"
		"# TYPE tollgate_streamed_requests_total counter\n"
		"tollgate_streamed_requests_total %lld\n"
		"# HELP tollgate_client_aborted_total Requests the client left.\n"
		"# TYPE tollgate_client_aborted_total counter\n"
		"tollgate_client_aborted_total %lld\n"
		"# HELP tollgate_unmetered_success_total Successful requests "
		"without usage.\n"
		"# TYPE tollgate_unmetered_success_total counter\n"
		"tollgate_unmetered_success_total %lld\n"
		"# HELP tollgate_soft_quota_exceeded_total Requests served "
		"over a soft quota.\n"
		"# TYPE tollgate_soft_quota_exceeded_total counter\n"
		"tollgate_soft_quota_exceeded_total %lld\n"
		"# HELP tollgate_spool_pending_bytes Journal bytes not yet "
		"in the database.\n"
		"# TYPE tollgate_spool_pending_bytes gauge\n"
		"tollgate_spool_pending_bytes %lld\n"
		"# HELP tollgate_spool_torn_records_total Torn or corrupt "
		"journal records skipped.\n"
		"# TYPE tollgate_spool_torn_records_total counter\n"
		"tollgate_spool_torn_records_total %lld\n"
		"# HELP tollgate_spool_write_errors_total Journal appends that "
		"failed.\n"
		"# TYPE tollgate_spool_write_errors_total counter\n"
		"tollgate_spool_write_errors_total %lld\n"
		"# HELP tollgate_spool_up Whether the journal takes appends.\n"
		"# TYPE tollgate_spool_up gauge\n"
		"tollgate_spool_up %d\n"
		"# HELP tollgate_usage_in_memory Usage records the journal "
		"could not take, waiting in memory.\n"
		"# TYPE tollgate_usage_in_memory gauge\n"
		"tollgate_usage_in_memory %lld\n"
		"# HELP tollgate_usage_rejected_total Usage records the ledger "
		"refused, kept in rejected.jnl.\n"
		"# TYPE tollgate_usage_rejected_total counter\n"
		"tollgate_usage_rejected_total %lld\n"
		"# HELP tollgate_usage_written_total Usage records committed.\n"
		"# TYPE tollgate_usage_written_total counter\n"
		"tollgate_usage_written_total %lld\n"
		"# HELP tollgate_database_up Whether the usage writer reaches "
		"PostgreSQL.\n"
		"# TYPE tollgate_database_up gauge\n"
		"tollgate_database_up %d\n"
		"# HELP tollgate_keys Keys in the cache.\n"
		"# TYPE tollgate_keys gauge\n"
		"tollgate_keys %lld\n",
		(long long)atomic_load(&streamed),
		(long long)atomic_load(&aborted),
		(long long)atomic_load(&unmetered),
		(long long)atomic_load(&soft_quota),
		(long long)spool_pending_bytes(), (long long)spool_torn(),
		(long long)spool_write_errors(), !spool_failing(NULL, 0),
		(long long)pgwriter_in_memory(), (long long)pgwriter_rejected(),
		(long long)pgwriter_written(),
		pgwriter_db_ok(), (long long)keystore_count());
}
