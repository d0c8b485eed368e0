/*
 * console_live.c - the console's live figures.
 *
 * Every second the admin loop samples the counters /metrics shows (the
 * requests finished, each provider's latency histogram) into a ring of
 * the last minute; /api/live answers with the difference between now and
 * the oldest sample: requests per second, and each provider's p50 and p99
 * over that window. Gauges (in flight, streams, the journal, the
 * database) are read as they are. Nothing here touches the database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "clock.h"
#include "console_live.h"
#include "metrics.h"

#define WINDOW        61 /* samples: a minute of seconds, and now */
#define MAX_PROVIDERS 32

struct sample {
	int64_t mono_us;
	int64_t requests;
	int nproviders;
	struct metrics_latency lat[MAX_PROVIDERS];
};

static struct {
	struct event *tick;
	struct sample ring[WINDOW];
	int next, n; /* next slot; samples held */
	int64_t start_us;
} live;

/* Takes a sample into s. */
static void
sample(struct sample *s)
{
	int n;

	s->mono_us = clock_mono_us();
	s->requests = metrics_requests_total();
	n = metrics_latency_read(s->lat, MAX_PROVIDERS);
	s->nproviders = n < MAX_PROVIDERS ? n : MAX_PROVIDERS;
}

/* Every second: a sample into the ring. */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sample(&live.ring[live.next]);
	live.next = (live.next + 1) % WINDOW;
	if (live.n < WINDOW)
		live.n++;
}

/* Starts sampling. */
int
console_live_start(struct event_base *base)
{
	struct timeval second = { 1, 0 };

	live.start_us = clock_mono_us();
	live.tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	if (live.tick == NULL || event_add(live.tick, &second) != 0)
		return -1;
	tick_cb(-1, 0, NULL);
	return 0;
}

/* Stops sampling. */
void
console_live_stop(void)
{
	if (live.tick != NULL)
		event_free(live.tick);
	live.tick = NULL;
}

/* Estimates a quantile of a histogram. */
int64_t
console_live_quantile(const int64_t *counts, const int64_t *bounds, int n,
		      int q)
{
	int64_t total = 0, rank, below = 0;

	for (int i = 0; i <= n; i++)
		total += counts[i];
	if (total <= 0)
		return -1;
	/* The rank, rounded up, so that p99 of 100 is the 99th. */
	rank = (total * q + 999) / 1000;
	if (rank < 1)
		rank = 1;
	for (int i = 0; i < n; i++) {
		if (below + counts[i] >= rank) {
			int64_t lo = i > 0 ? bounds[i - 1] : 0;
			return lo +
			       (bounds[i] - lo) * (rank - below) / counts[i];
		}
		below += counts[i];
	}
	return bounds[n - 1];
}

/* The sample of provider name in s, or NULL. */
static const struct metrics_latency *
find(const struct sample *s, const char *name)
{
	for (int i = 0; i < s->nproviders; i++)
		if (strcmp(s->lat[i].provider, name) == 0)
			return &s->lat[i];
	return NULL;
}

/* Appends a JSON string (the provider names are tokens of the config, but
 * are escaped all the same). */
static void
json_str(struct buf *b, const char *s)
{
	buf_str(b, "\"");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf_add(b, "\\", 1);
			buf_add(b, s, 1);
		} else if (c < 0x20) {
			buf_printf(b, "\\u%04x", c);
		} else {
			buf_add(b, s, 1);
		}
	}
	buf_str(b, "\"");
}

/* A figure another module registered with /metrics. */
static int64_t
figure(const char *name)
{
	int found;

	return metrics_read(name, &found);
}

/* Appends GET /api/live's JSON. */
void
console_live_json(struct buf *b)
{
	struct sample now;
	const struct sample *old;
	int64_t span_us, rate_milli;
	char at[CLOCK_TEXT_MAX];

	sample(&now);
	old = &live.ring[(live.next - live.n + WINDOW) % WINDOW];
	if (live.n == 0)
		old = &now;
	span_us = now.mono_us - old->mono_us;
	rate_milli = span_us > 0 ? (now.requests - old->requests) *
					   INT64_C(1000000000) / span_us
				 : 0;
	clock_format(clock_wall_us(), CLOCK_ISO_MS, at);
	buf_printf(b,
		   "{\"at\":\"%s\",\"uptime_s\":%lld,\"requests_total\":%lld,"
		   "\"requests_per_s\":\"%lld.%03lld\",\"window_s\":%lld,"
		   "\"in_flight\":%lld,\"streams\":%lld,\"providers\":[",
		   at, (long long)((now.mono_us - live.start_us) / 1000000),
		   (long long)now.requests, (long long)(rate_milli / 1000),
		   (long long)(rate_milli % 1000),
		   (long long)(span_us / 1000000),
		   (long long)metrics_get(METRIC_IN_FLIGHT),
		   (long long)metrics_get(METRIC_STREAMS));
	for (int i = 0; i < now.nproviders; i++) {
		const struct metrics_latency *cur = &now.lat[i];
		const struct metrics_latency *was = find(old, cur->provider);
		int64_t d[METRICS_NBUCKETS + 1], total = 0, all = 0;
		int64_t p50, p99;

		for (int k = 0; k <= METRICS_NBUCKETS; k++) {
			d[k] = cur->hist[k] -
			       (was != NULL && was != cur ? was->hist[k] : 0);
			total += d[k];
			all += cur->hist[k];
		}
		p50 = console_live_quantile(d, metrics_buckets_ms,
					    METRICS_NBUCKETS, 500);
		p99 = console_live_quantile(d, metrics_buckets_ms,
					    METRICS_NBUCKETS, 990);
		buf_str(b, i > 0 ? ",{\"provider\":" : "{\"provider\":");
		json_str(b, cur->provider);
		buf_printf(b, ",\"requests\":%lld,\"requests_total\":%lld,",
			   (long long)total, (long long)all);
		if (p50 >= 0)
			buf_printf(b, "\"p50_ms\":%lld,\"p99_ms\":%lld}",
				   (long long)p50, (long long)p99);
		else
			buf_str(b, "\"p50_ms\":null,\"p99_ms\":null}");
	}
	buf_printf(b,
		   "],\"database\":{\"up\":%s},"
		   "\"journal\":{\"up\":%s,\"pending_bytes\":%lld,"
		   "\"in_memory\":%lld,\"write_errors\":%lld},"
		   "\"usage_written_total\":%lld,"
		   "\"usage_rejected_total\":%lld,\"keys\":%lld}\n",
		   figure("tollgate_database_up") ? "true" : "false",
		   figure("tollgate_spool_up") ? "true" : "false",
		   (long long)figure("tollgate_spool_pending_bytes"),
		   (long long)figure("tollgate_usage_in_memory"),
		   (long long)figure("tollgate_spool_write_errors_total"),
		   (long long)figure("tollgate_usage_written_total"),
		   (long long)figure("tollgate_usage_rejected_total"),
		   (long long)figure("tollgate_keys"));
}
