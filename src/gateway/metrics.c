/*
 * metrics.c - the figures /metrics shows.
 *
 * Labelled series live in one table per family under a mutex, keyed by
 * their rendered label set; a request takes the lock once, at its end. The
 * number of series is bounded (tenants x models x statuses can grow with
 * what clients send): past MAX_SERIES a new label set is counted in its
 * family's overflow series, the same labels with the unbounded values
 * (tenant, model, provider) replaced by "other" and the bounded ones kept:
 * spend stays apart by currency, a status stays a status. Event counters are
 * atomics; other modules' figures are registered readers, called at render
 * time, so this file depends on none of them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "buf.h"
#include "metrics.h"
#include "strmap.h"
#include "utf8.h"

#define MAX_SERIES  20000
#define MAX_READERS 32

/* Upper bounds of the latency buckets, in milliseconds. */
const int64_t metrics_buckets_ms[METRICS_NBUCKETS] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000
};

enum family { F_REQUESTS, F_SPEND, F_LATENCY, F__COUNT };

/* A labelled series' numbers; its labels, rendered (tenant="a",...), are
 * its key in the family's table. */
struct series {
	int64_t v[5]; /* requests, prompt, completion, cached,
			 reasoning; or spend: billed, list */
	int64_t hist[METRICS_NBUCKETS + 1]; /* latency buckets, +Inf last */
	int64_t sum;                        /* latency sum (ms) */
};

static struct {
	pthread_mutex_t lock;
	struct strmap fam[F__COUNT];
	size_t n; /* series in all families */
} m = { .lock = PTHREAD_MUTEX_INITIALIZER,
	.fam = { { .vsize = sizeof(struct series) },
		 { .vsize = sizeof(struct series) },
		 { .vsize = sizeof(struct series) } } };

static atomic_llong streamed, aborted, unmetered, pooled;
static atomic_llong counters[METRIC__COUNT];

/* Figures of other modules, read at render time. */
static struct {
	pthread_mutex_t lock;
	struct reader {
		const char *name, *type, *help;
		int64_t (*read)(void);
	} r[MAX_READERS];
	int n;
} readers = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Adds to one of the gateway's event counters. */
void
metrics_add(enum metrics_counter c, int64_t n)
{
	atomic_fetch_add(&counters[c], n);
}

/* The current value of an event counter or gauge. */
int64_t
metrics_get(enum metrics_counter c)
{
	return atomic_load(&counters[c]);
}

/* Registers a figure another module owns. */
void
metrics_register(const char *name, const char *type, const char *help,
		 int64_t (*read)(void))
{
	pthread_mutex_lock(&readers.lock);
	if (readers.n < MAX_READERS)
		readers.r[readers.n++] =
			(struct reader){ name, type, help, read };
	pthread_mutex_unlock(&readers.lock);
}

/* Appends a label value to buf, escaped as Prometheus wants, and valid
 * UTF-8 whatever it held: a byte that is not is written as U+FFFD, a
 * control character as '?'. */
static size_t
esc(char *buf, size_t size, size_t off, const char *v)
{
	while (v != NULL && *v != '\0' && off + 5 < size) {
		size_t n = utf8_len(v);
		if (*v == '\\' || *v == '"') {
			buf[off++] = '\\';
			buf[off++] = *v;
		} else if (*v == '\n') {
			buf[off++] = '\\';
			buf[off++] = 'n';
		} else if (n == 0) {
			memcpy(buf + off, "\xef\xbf\xbd", 3);
			off += 3;
		} else if ((unsigned char)*v < 0x20 || *v == 0x7f) {
			buf[off++] = '?';
		} else {
			memcpy(buf + off, v, n);
			off += n;
			v += n;
			continue;
		}
		v++;
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
		size_t n = strlen(kv[i]);
		if (off + n + 3 >= size)
			break;
		if (i > 0)
			buf[off++] = ',';
		memcpy(buf + off, kv[i], n);
		off += n;
		buf[off++] = '=';
		buf[off++] = '"';
		buf[off] = '\0';
		off = esc(buf, size, off, kv[i + 1] ? kv[i + 1] : "");
		if (off + 2 < size) {
			buf[off++] = '"';
			buf[off] = '\0';
		}
	}
}

/* The series of a family for labels l, rendered from kv (name, value
 * pairs, NULL ended; the first nother pairs are the unbounded ones). Past
 * MAX_SERIES a new set is counted in its overflow series, those values
 * "other" (kv and l are rewritten). Caller holds the lock. NULL when out
 * of memory. */
static struct series *
series(enum family fam, char *l, size_t size, const char **kv, int nother)
{
	struct strmap *t = &m.fam[fam];
	struct series *s;

	if ((s = strmap_get(t, l)) != NULL)
		return s;
	if (m.n >= MAX_SERIES) {
		atomic_fetch_add(&pooled, 1);
		for (int i = 0; i < nother; i++)
			kv[2 * i + 1] = "other";
		labels(l, size, kv);
		if ((s = strmap_get(t, l)) != NULL)
			return s;
	}
	if ((s = strmap_add(t, l, NULL)) != NULL)
		m.n++;
	return s;
}

/* Counts one finished request. */
void
metrics_request(const struct metrics_request *r)
{
	char status[16], l[512], pl[256];
	const char *kv[] = { "tenant", r->tenant ? r->tenant : "-",
			     "model",  r->model ? r->model : "-",
			     "status", status,
			     NULL };
	const char *prov[] = { "provider", r->provider, NULL };
	struct series *s;

	{
		struct ftext t = FTEXT(status);
		ft_int(&t, r->status);
	}
	labels(l, sizeof l, kv);
	if (r->provider != NULL && r->ttfb_ms >= 0)
		labels(pl, sizeof pl, prov);
	if (r->streamed)
		atomic_fetch_add(&streamed, 1);
	if (r->aborted)
		atomic_fetch_add(&aborted, 1);
	if (r->unmetered)
		atomic_fetch_add(&unmetered, 1);
	pthread_mutex_lock(&m.lock);
	if ((s = series(F_REQUESTS, l, sizeof l, kv, 2)) != NULL) {
		s->v[0]++;
		s->v[1] += r->prompt;
		s->v[2] += r->completion;
		s->v[3] += r->cached;
		s->v[4] += r->reasoning;
	}
	if (r->provider != NULL && r->ttfb_ms >= 0 &&
	    (s = series(F_LATENCY, pl, sizeof pl, prov, 1)) != NULL) {
		int b = 0;
		while (b < METRICS_NBUCKETS &&
		       r->latency_ms > metrics_buckets_ms[b])
			b++;
		s->hist[b]++;
		s->sum += r->latency_ms;
	}
	pthread_mutex_unlock(&m.lock);
}

/* Counts a priced record's cost. */
void
metrics_spend(const char *tenant, const char *currency, int64_t billed_nanos,
	      int64_t list_nanos)
{
	char l[256];
	const char *kv[] = { "tenant", tenant ? tenant : "-", "currency",
			     currency, NULL };
	struct series *s;

	labels(l, sizeof l, kv);
	pthread_mutex_lock(&m.lock);
	if ((s = series(F_SPEND, l, sizeof l, kv, 1)) != NULL) {
		s->v[0] += billed_nanos;
		s->v[1] += list_nanos;
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

	evbuffer_add_printf(b,
			    "# HELP tollgate_requests_total Requests "
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
			evbuffer_add_printf(b,
					    "tollgate_tokens_total{%s,"
					    "class=\"%s\"} %lld\n",
					    l, tok[k], (long long)s->v[k]);
	evbuffer_add_printf(b, "# HELP tollgate_spend_nanos_total Cost of "
			       "the usage written to the ledger, in nano-units "
			       "of its currency: billed (after promotions) and "
			       "at list price.\n"
			       "# TYPE tollgate_spend_nanos_total counter\n");
	for (it = 0; strmap_next(&m.fam[F_SPEND], &it, &l, (void **)&s);)
		evbuffer_add_printf(b,
				    "tollgate_spend_nanos_total{%s,"
				    "kind=\"billed\"} %lld\n"
				    "tollgate_spend_nanos_total{%s,"
				    "kind=\"list\"} %lld\n",
				    l, (long long)s->v[0], l,
				    (long long)s->v[1]);
	evbuffer_add_printf(b,
			    "# HELP tollgate_request_duration_ms Time from "
			    "a request's arrival to its end, for requests "
			    "that reached a provider.\n"
			    "# TYPE tollgate_request_duration_ms histogram\n");
	for (it = 0; strmap_next(&m.fam[F_LATENCY], &it, &l, (void **)&s);) {
		int64_t cum = 0;
		for (int k = 0; k <= METRICS_NBUCKETS; k++) {
			char le[24];
			cum += s->hist[k];
			if (k < METRICS_NBUCKETS)
				snprintf(le, sizeof le, "%lld",
					 (long long)metrics_buckets_ms[k]);
			else
				snprintf(le, sizeof le, "+Inf");
			evbuffer_add_printf(b,
					    "tollgate_request_duration_ms_"
					    "bucket{%s,le=\"%s\"} %lld\n",
					    l, le, (long long)cum);
		}
		evbuffer_add_printf(b,
				    "tollgate_request_duration_ms_sum{%s} "
				    "%lld\ntollgate_request_duration_ms_count"
				    "{%s} %lld\n",
				    l, (long long)s->sum, l, (long long)cum);
	}
}

/* Renders one unlabelled figure. */
static void
render_one(struct evbuffer *b, const char *name, const char *type,
	   const char *help, int64_t v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name,
			    help, name, type, name, (long long)v);
}

/* Renders every metric. */
void
metrics_render(struct evbuffer *b)
{
	pthread_mutex_lock(&m.lock);
	render_series(b);
	pthread_mutex_unlock(&m.lock);
	render_one(b, "tollgate_streamed_requests_total", "counter",
		   "Streamed requests.", atomic_load(&streamed));
	render_one(b, "tollgate_client_aborted_total", "counter",
		   "Requests the client left.", atomic_load(&aborted));
	render_one(b, "tollgate_unmetered_success_total", "counter",
		   "Successful requests without usage.",
		   atomic_load(&unmetered));
	render_one(b, "tollgate_metrics_pooled_total", "counter",
		   "Figures counted under \"other\" because the series limit "
		   "was reached.",
		   atomic_load(&pooled));
	render_one(b, "tollgate_soft_quota_exceeded_total", "counter",
		   "Requests served over a soft quota.",
		   atomic_load(&counters[METRIC_SOFT_QUOTA]));
	render_one(b, "tollgate_requests_in_flight", "gauge",
		   "Requests begun and not yet ended.",
		   atomic_load(&counters[METRIC_IN_FLIGHT]));
	render_one(b, "tollgate_streams_open", "gauge",
		   "Streamed replies under way.",
		   atomic_load(&counters[METRIC_STREAMS]));
	pthread_mutex_lock(&readers.lock);
	for (int i = 0; i < readers.n; i++)
		render_one(b, readers.r[i].name, readers.r[i].type,
			   readers.r[i].help, readers.r[i].read());
	pthread_mutex_unlock(&readers.lock);
}

/* Copies the providers' latency histograms. */
int
metrics_latency_read(struct metrics_latency *out, int max)
{
	static const char pre[] = "provider=\"";
	const char *l;
	struct series *s;
	size_t it;
	int n = 0;

	pthread_mutex_lock(&m.lock);
	for (it = 0; strmap_next(&m.fam[F_LATENCY], &it, &l, (void **)&s);
	     n++) {
		struct metrics_latency *o = &out[n];
		size_t len;

		if (n >= max)
			continue;
		/* The key is the rendered label, provider="NAME", its value
		 * escaped only where a provider's name could not be. */
		if (strncmp(l, pre, sizeof pre - 1) == 0)
			l += sizeof pre - 1;
		len = strlen(l);
		if (len > 0 && l[len - 1] == '"')
			len--;
		if (len >= sizeof o->provider)
			len = sizeof o->provider - 1;
		memcpy(o->provider, l, len);
		o->provider[len] = '\0';
		memcpy(o->hist, s->hist, sizeof o->hist);
	}
	pthread_mutex_unlock(&m.lock);
	return n;
}

/* Requests finished since start. */
int64_t
metrics_requests_total(void)
{
	const char *l;
	struct series *s;
	size_t it;
	int64_t n = 0;

	pthread_mutex_lock(&m.lock);
	for (it = 0; strmap_next(&m.fam[F_REQUESTS], &it, &l, (void **)&s);)
		n += s->v[0];
	pthread_mutex_unlock(&m.lock);
	return n;
}

/* Reads one registered figure by name. */
int64_t
metrics_read(const char *name, int *found)
{
	int64_t (*read)(void) = NULL;

	pthread_mutex_lock(&readers.lock);
	for (int i = 0; i < readers.n && read == NULL; i++)
		if (strcmp(readers.r[i].name, name) == 0)
			read = readers.r[i].read;
	pthread_mutex_unlock(&readers.lock);
	*found = read != NULL;
	return read != NULL ? read() : 0;
}
