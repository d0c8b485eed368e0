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
	const struct config *w_cfg;   /* borrowed; outlives the worker */
	int64_t w_inflight;           /* requests not yet closed */
	int w_draining;
	uint64_t w_seq;               /* request counter, part of ids */
};

/* Creates a worker, opens its own SO_REUSEPORT socket for each listen
 * address and starts its thread. NULL with *cause (caller frees). */
struct worker *worker_start(int id, const struct config *cfg, char **cause)
	__attribute__((warn_unused_result));

/* Asks the worker to stop accepting and to end once in-flight requests
 * have closed or wait_ms passed; joins and frees it. */
void worker_stop(struct worker *w, int wait_ms);

#endif
