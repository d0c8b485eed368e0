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
#include <cjson/cJSON.h>

#include "clock.h"
#include "console_live.h"
#include "json.h"
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

/* Adds an integer member, exactly. */
static void
add_int(cJSON *o, const char *name, int64_t v)
{
	cJSON_AddItemToObject(o, name, json_int_item(v));
}

/* A figure another module registered with /metrics. */
static int64_t
figure(const char *name)
{
	int found;

	return metrics_read(name, &found);
}

/* One provider's figures over the window from was (NULL: none) to
 * cur. NULL when out of memory. */
static cJSON *
provider_json(const struct metrics_latency *cur,
	      const struct metrics_latency *was)
{
	int64_t d[METRICS_NBUCKETS + 1], window = 0, all = 0, p50, p99;
	cJSON *o = cJSON_CreateObject();

	for (int k = 0; k <= METRICS_NBUCKETS; k++) {
		d[k] = cur->hist[k] - (was != NULL ? was->hist[k] : 0);
		window += d[k];
		all += cur->hist[k];
	}
	p50 = console_live_quantile(d, metrics_buckets_ms, METRICS_NBUCKETS,
				    500);
	p99 = console_live_quantile(d, metrics_buckets_ms, METRICS_NBUCKETS,
				    990);
	cJSON_AddStringToObject(o, "provider", cur->provider);
	add_int(o, "requests", window);
	add_int(o, "requests_total", all);
	cJSON_AddItemToObject(o, "p50_ms",
			      p50 >= 0 ? json_int_item(p50)
				       : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "p99_ms",
			      p99 >= 0 ? json_int_item(p99)
				       : cJSON_CreateNull());
	return o;
}

/* Appends GET /api/live's JSON. */
void
console_live_json(struct buf *b)
{
	struct sample now;
	const struct sample *old;
	int64_t span_us, rate_milli;
	char at[CLOCK_TEXT_MAX], rate[48];
	cJSON *o = cJSON_CreateObject(), *providers, *db, *journal;
	char *text;

	sample(&now);
	old = live.n > 0 ? &live.ring[(live.next - live.n + WINDOW) % WINDOW]
			 : &now;
	span_us = now.mono_us - old->mono_us;
	rate_milli = span_us > 0 ? (now.requests - old->requests) *
					   INT64_C(1000000000) / span_us
				 : 0;
	clock_format(clock_wall_us(), CLOCK_ISO_MS, at);
	snprintf(rate, sizeof rate, "%lld.%03lld",
		 (long long)(rate_milli / 1000),
		 (long long)(rate_milli % 1000));
	cJSON_AddStringToObject(o, "at", at);
	add_int(o, "uptime_s", (now.mono_us - live.start_us) / 1000000);
	add_int(o, "requests_total", now.requests);
	cJSON_AddStringToObject(o, "requests_per_s", rate);
	add_int(o, "window_s", span_us / 1000000);
	add_int(o, "in_flight", metrics_get(METRIC_IN_FLIGHT));
	add_int(o, "streams", metrics_get(METRIC_STREAMS));
	providers = cJSON_AddArrayToObject(o, "providers");
	for (int i = 0; i < now.nproviders; i++) {
		const struct metrics_latency *was =
			old != &now ? find(old, now.lat[i].provider) : NULL;
		cJSON_AddItemToArray(providers,
				     provider_json(&now.lat[i], was));
	}
	db = cJSON_AddObjectToObject(o, "database");
	cJSON_AddBoolToObject(db, "up", figure("tollgate_database_up") != 0);
	journal = cJSON_AddObjectToObject(o, "journal");
	cJSON_AddBoolToObject(journal, "up", figure("tollgate_spool_up") != 0);
	add_int(journal, "pending_bytes",
		figure("tollgate_spool_pending_bytes"));
	add_int(journal, "in_memory", figure("tollgate_usage_in_memory"));
	add_int(journal, "write_errors",
		figure("tollgate_spool_write_errors_total"));
	add_int(o, "usage_written_total",
		figure("tollgate_usage_written_total"));
	add_int(o, "usage_rejected_total",
		figure("tollgate_usage_rejected_total"));
	add_int(o, "keys", figure("tollgate_keys"));
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (text == NULL) {
		b->failed = 1;
		return;
	}
	buf_str(b, text);
	buf_str(b, "\n");
	free(text);
}
