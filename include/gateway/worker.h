/*
 * worker.h - an event-loop thread: its own event base, HTTP server on the
 * shared listen ports (SO_REUSEPORT), and libcurl multi handle.
 */
#ifndef TOLLGATE_WORKER_H
#define TOLLGATE_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <curl/curl.h>

struct config;
struct request;
struct event_base;
struct evhttp;
struct event;

struct worker {
	int w_id;
	pthread_t w_thread;
	struct event_base *w_base;
	struct evhttp *w_http;
	CURLM *w_multi;
	struct event *w_curl_timer;
	struct event *w_stop_ev;
	struct config *w_cfg;         /* a reference; swapped on reload */
	int64_t w_inflight;           /* requests not yet closed */
	struct request *w_requests;   /* those requests, for shutdown */
	int w_draining;
	uint64_t w_seq;               /* request counter, part of ids */
};

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
