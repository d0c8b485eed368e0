/*
 * upstream.c - libcurl's multi interface driven by a worker's event loop.
 *
 * curl's socket callback tells which descriptors to watch; each gets one
 * persistent libevent event that calls curl_multi_socket_action() when it
 * fires. curl's timer callback arms one timer event. After every action,
 * finished transfers are read with curl_multi_info_read(), detached from
 * the multi handle and handed to their request (CURLOPT_PRIVATE).
 */
#include <stdlib.h>
#include <event2/event.h>

#include "log.h"
#include "request.h"
#include "upstream.h"
#include "worker.h"

struct sock_ctx {
	struct event *ev;
	struct worker *w;
};

/* Hands every finished transfer back to its request. */
static void
check_multi_info(struct worker *w)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(w->w_multi, &left)) != NULL) {
		struct request *req = NULL;
		CURL *easy = msg->easy_handle;
		CURLcode res = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
		curl_multi_remove_handle(w->w_multi, easy);
		if (req != NULL)
			request_upstream_done(req, res);
	}
}

/* A watched socket is ready. */
static void
event_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct worker *w = arg;
	int action = (kind & EV_READ ? CURL_CSELECT_IN : 0) |
		     (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;

	curl_multi_socket_action(w->w_multi, fd, action, &running);
	check_multi_info(w);
}

/* curl's timer expired. */
static void
timer_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct worker *w = arg;
	int running;

	curl_multi_socket_action(w->w_multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info(w);
}

/* curl asks for a new timeout: arm, or disarm when negative. */
static int
multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct worker *w = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(w->w_curl_timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(w->w_curl_timer, &tv);
	return 0;
}

/* curl asks to watch, change or forget a socket. */
static int
multi_sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct worker *w = userp;
	struct sock_ctx *ctx = sockp;
	short kind;

	if (what == CURL_POLL_REMOVE) {
		if (ctx != NULL) {
			event_free(ctx->ev);
			free(ctx);
			curl_multi_assign(w->w_multi, s, NULL);
		}
		return 0;
	}
	kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) |
		       (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
	if (ctx == NULL) {
		ctx = calloc(1, sizeof *ctx);
		if (ctx == NULL)
			return -1;
		ctx->w = w;
		curl_multi_assign(w->w_multi, s, ctx);
	} else {
		event_free(ctx->ev);
	}
	ctx->ev = event_new(w->w_base, s, kind, event_cb, w);
	if (ctx->ev == NULL || event_add(ctx->ev, NULL) != 0)
		return -1;
	return 0;
}

/* Creates the worker's multi handle and its timer. */
int
upstream_init(struct worker *w)
{
	w->w_multi = curl_multi_init();
	w->w_curl_timer = evtimer_new(w->w_base, timer_cb, w);
	if (w->w_multi == NULL || w->w_curl_timer == NULL)
		return -1;
	curl_multi_setopt(w->w_multi, CURLMOPT_SOCKETFUNCTION, multi_sock_cb);
	curl_multi_setopt(w->w_multi, CURLMOPT_SOCKETDATA, w);
	curl_multi_setopt(w->w_multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
	curl_multi_setopt(w->w_multi, CURLMOPT_TIMERDATA, w);
	curl_multi_setopt(w->w_multi, CURLMOPT_MAXCONNECTS, 256L);
	return 0;
}

/* Frees the multi handle; every transfer must have been removed. */
void
upstream_free(struct worker *w)
{
	if (w->w_multi != NULL)
		curl_multi_cleanup(w->w_multi);
	if (w->w_curl_timer != NULL)
		event_free(w->w_curl_timer);
	w->w_multi = NULL;
	w->w_curl_timer = NULL;
}

/* Starts a transfer. */
int
upstream_add(struct worker *w, CURL *easy)
{
	CURLMcode rc = curl_multi_add_handle(w->w_multi, easy);

	if (rc != CURLM_OK) {
		log_error("curl_multi_add_handle: %s", curl_multi_strerror(rc));
		return -1;
	}
	return 0;
}

/* Cancels a transfer that has not finished. */
void
upstream_remove(struct worker *w, CURL *easy)
{
	curl_multi_remove_handle(w->w_multi, easy);
}
