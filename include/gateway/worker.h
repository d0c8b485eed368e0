/*
 * worker.h - an event-loop thread: its own event base, HTTP server on the
 * shared listen ports (SO_REUSEPORT), upstream calls and requests.
 */
#ifndef TOLLGATE_WORKER_H
#define TOLLGATE_WORKER_H

struct config;
struct worker;

/* Creates a worker (taking a reference to cfg), opens its own
 * SO_REUSEPORT socket for each listen address and starts its thread. NULL
 * with *cause (caller frees). */
struct worker *worker_start(int id, struct config *cfg, char **cause)
	__attribute__((warn_unused_result));

/* Hands the worker a new configuration for the requests it starts from
 * now on; returns once the worker uses it (or after a second). */
void worker_set_config(struct worker *w, struct config *cfg);

/* Asks the worker to stop accepting and to end once in-flight requests
 * have closed; at wait_ms those still open are cut (and recorded). Does
 * not wait: worker_join does. Drain every worker first, then join them,
 * so no listener outlives the signal. */
void worker_drain(struct worker *w, int wait_ms);
void worker_join(struct worker *w);

/* Frees a joined worker. Its event base lives until then, so the quota
 * thread may still activate the events of requests parked on it. */
void worker_free(struct worker *w);

#endif
