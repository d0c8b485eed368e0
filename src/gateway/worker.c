/*
 * worker.c - event-loop threads.
 *
 * Each worker owns an event base, an HTTP server (httpd.c) on its own
 * SO_REUSEPORT sockets (the kernel spreads connections across workers) and
 * a libcurl multi handle, so a request lives its whole life on one thread
 * and needs no locks. Stopping closes the worker's listeners first, then
 * lets in-flight requests finish within a bound.
 */
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/util.h>

#include "clock.h"
#include "config.h"
#include "http_server.h"
#include "httpd.h"
#include "log.h"
#include "request.h"
#include "upstream.h"
#include "worker.h"

#define STOP_POLL_MS 50

/* An event-loop thread and what it owns. */
struct worker {
	int w_id;
	pthread_t w_thread;
	struct event_base *w_base;
	struct httpd *w_httpd;
	struct request_loop w_loop; /* its requests, upstream calls and
				       configuration (swapped on reload) */
	struct event *w_stop_ev;    /* asks the loop to stop accepting */
	struct event *w_stop_timer; /* polls the drain */
	int64_t w_stop_left_ms;
	struct event *w_reload_ev; /* asks the loop to take reload_cfg */
	pthread_mutex_t w_reload_lock;
	pthread_cond_t w_reload_done;
	struct config *w_reload_cfg; /* handed over, not yet in use */
};

/* The worker thread: run the loop until stopped. */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->w_base);
	/* Records of requests that ended in the loop's last pass. */
	request_loop_flush(&w->w_loop);
	return NULL;
}

/* While stopping: end the loop once nothing is in flight and every reply
 * was written out; when time is up, cut what is still open (each request
 * is recorded as it closes) and end once the cut replies went out, or a
 * second later whatever is left. */
static void
stop_check(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = { 0, STOP_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	w->w_stop_left_ms -= STOP_POLL_MS;
	if (w->w_loop.inflight <= 0 && w->w_loop.unsent <= 0) {
		event_base_loopbreak(w->w_base);
		return;
	}
	if (w->w_stop_left_ms <= 0 && w->w_loop.requests != NULL) {
		log_warn(
			"worker %d: cutting %lld requests still in flight at the end of shutdown_timeout",
			w->w_id, (long long)w->w_loop.inflight);
		request_cut_all(&w->w_loop,
				"shutdown: cut at the end of shutdown_timeout");
	} else if (w->w_stop_left_ms <= -1000) {
		/* Parked on the quota thread, or replies a client does not
		 * read, past the bound and a second. */
		log_warn(
			"worker %d: %lld requests and %lld unwritten replies left at shutdown",
			w->w_id, (long long)w->w_loop.inflight,
			(long long)w->w_loop.unsent);
		event_base_loopbreak(w->w_base);
		return;
	}
	evtimer_add(w->w_stop_timer, &tv);
}

/* Runs on the worker's thread: swap in the configuration handed over. */
static void
reload_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct config *old = w->w_loop.cfg, *cfg;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->w_reload_lock);
	cfg = w->w_reload_cfg;
	w->w_reload_cfg = NULL;
	if (cfg != NULL) {
		w->w_loop.cfg = cfg;
		httpd_set_config(w->w_httpd, cfg);
	}
	pthread_cond_broadcast(&w->w_reload_done);
	pthread_mutex_unlock(&w->w_reload_lock);
	if (cfg != NULL)
		config_unref(old);
}

/* Hands over a new configuration and waits (at most a second) for the
 * worker to use it. */
void
worker_set_config(struct worker *w, struct config *cfg)
{
	struct config *stale;
	struct timespec ts;

	pthread_mutex_lock(&w->w_reload_lock);
	stale = w->w_reload_cfg;
	w->w_reload_cfg = config_ref(cfg);
	event_active(w->w_reload_ev, EV_READ, 0);
	ts = clock_deadline(1000);
	while (w->w_reload_cfg != NULL &&
	       pthread_cond_timedwait(&w->w_reload_done, &w->w_reload_lock,
				      &ts) == 0)
		;
	pthread_mutex_unlock(&w->w_reload_lock);
	config_unref(stale);
}

/* Runs on the worker's thread when asked to stop: close the listeners. */
static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = { 0, 0 };

	httpd_stop_listening(w->w_httpd);
	evtimer_add(w->w_stop_timer, &tv);
}

/* Frees what worker_start() made of a worker. */
static void
worker_destroy(struct worker *w)
{
	httpd_free(w->w_httpd);
	upstream_free(w->w_loop.upstream);
	request_loop_free(&w->w_loop);
	if (w->w_stop_timer != NULL)
		event_free(w->w_stop_timer);
	if (w->w_reload_ev != NULL)
		event_free(w->w_reload_ev);
	if (w->w_stop_ev != NULL)
		event_free(w->w_stop_ev);
	if (w->w_base != NULL)
		event_base_free(w->w_base);
	config_unref(w->w_reload_cfg);
	config_unref(w->w_loop.cfg);
	pthread_mutex_destroy(&w->w_reload_lock);
	pthread_cond_destroy(&w->w_reload_done);
	free(w);
}

/* Creates a worker and starts its thread. */
struct worker *
worker_start(int id, struct config *cfg, char **cause)
{
	struct worker *w = calloc(1, sizeof *w);

	if (w == NULL) {
		*cause = strdup("out of memory");
		return NULL;
	}
	w->w_id = id;
	w->w_loop.cfg = config_ref(cfg);
	pthread_mutex_init(&w->w_reload_lock, NULL);
	pthread_cond_init(&w->w_reload_done, NULL);
	w->w_base = event_base_new();
	if (w->w_base == NULL)
		goto fail_msg;
	w->w_loop.base = w->w_base;
	w->w_loop.upstream =
		upstream_new(w->w_base, (long)cfg->max_connections);
	if (request_loop_init(&w->w_loop) != 0)
		goto fail_msg;
	w->w_httpd = http_server_new(w->w_base, &w->w_loop);
	w->w_stop_ev = event_new(w->w_base, -1, 0, stop_cb, w);
	w->w_stop_timer = evtimer_new(w->w_base, stop_check, w);
	w->w_reload_ev = event_new(w->w_base, -1, 0, reload_cb, w);
	if (w->w_httpd == NULL || w->w_stop_ev == NULL ||
	    w->w_stop_timer == NULL || w->w_reload_ev == NULL ||
	    w->w_loop.upstream == NULL)
		goto fail_msg;
	for (int i = 0; i < cfg->nlisten; i++) {
		char addr[300];
		int tls, fd;
		if (config_listen_split(cfg->listen[i], addr, sizeof addr,
					&tls) != 0) {
			*cause = strdup("listen: malformed");
			goto fail;
		}
		fd = httpd_open_listener(addr, cause);
		if (fd < 0)
			goto fail;
		if (httpd_listen(w->w_httpd, fd, tls) != 0) {
			close(fd);
			*cause = strdup("cannot listen: out of memory");
			goto fail;
		}
	}
	if (pthread_create(&w->w_thread, NULL, worker_main, w) != 0)
		goto fail_msg;
	return w;
fail_msg:
	*cause = strdup("cannot create the worker's event loop");
fail:
	worker_destroy(w);
	return NULL;
}

/* Asks the worker to stop accepting and drain within wait_ms. */
void
worker_drain(struct worker *w, int wait_ms)
{
	w->w_stop_left_ms = wait_ms;
	event_active(w->w_stop_ev, EV_READ, 0);
}

/* Waits for a drained worker's thread to end. */
void
worker_join(struct worker *w)
{
	pthread_join(w->w_thread, NULL);
}

/* Frees a joined worker. */
void
worker_free(struct worker *w)
{
	worker_destroy(w);
}
