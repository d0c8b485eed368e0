/*
 * metrics.h - process counters for /metrics (Prometheus text format).
 *
 * Counters are atomics updated once per finished request; the admin
 * server renders them with the writer's and key cache's state.
 */
#ifndef TOLLGATE_METRICS_H
#define TOLLGATE_METRICS_H

struct usage_record;
struct evbuffer;

/* Counts a finished request from its usage record. */
void metrics_count(const struct usage_record *rec);

/* Appends the exposition text to buf. */
void metrics_render(struct evbuffer *buf);

#endif
