/*
 * console_live.h - the console's live figures: rates and latency
 * percentiles over the last minute, from the numbers /metrics shows.
 */
#ifndef TOLLGATE_CONSOLE_LIVE_H
#define TOLLGATE_CONSOLE_LIVE_H

#include "buf.h"

struct event_base;

/* Starts sampling the figures every second on base. 0, or -1. */
int console_live_start(struct event_base *base);

/* Stops sampling. */
void console_live_stop(void);

/* Appends GET /api/live's JSON to b (on base's thread). */
void console_live_json(struct buf *b);

/* The estimate of quantile q (per mille, 500 for the median) of a
 * histogram: counts per bucket (n bounds, then the count above the last),
 * interpolated within the bucket as Prometheus' histogram_quantile does;
 * the last bound for the overflow bucket; -1 for an empty histogram. */
int64_t console_live_quantile(const int64_t *counts, const int64_t *bounds,
			      int n, int q);

#endif
