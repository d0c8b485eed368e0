/*
 * upstream.h - HTTP calls to providers through libcurl's multi interface,
 * on a worker's event loop.
 *
 * Follows curl's hiperfifo example: curl tells which sockets to watch and
 * when to time out; libevent events call curl_multi_socket_action(), and
 * finished transfers are collected after every action. Every curl option
 * is set here: a caller describes the call (URL, headers, body, the
 * provider's connection settings) and gets its response through three
 * callbacks, the last of which reports how it ended.
 */
#ifndef TOLLGATE_UPSTREAM_H
#define TOLLGATE_UPSTREAM_H

#include <stddef.h>
#include <curl/curl.h>

struct event_base;
struct provider_conf;

/* One event loop's calls (its multi handle and timer). */
struct upstream;

/* A data callback's answer that holds the transfer until upstream_resume
 * (curl delivers the same bytes again then). */
#define UPSTREAM_PAUSE CURL_WRITEFUNC_PAUSE

/* One call. The caller fills the callbacks and arg, and keeps the struct
 * (and the body and headers it passed) alive until on_done ran or
 * upstream_cancel returned. */
struct upstream_call {
	/* A response header line (the status line included). Returns n. */
	size_t (*on_header)(void *arg, const char *line, size_t n);
	/* Response body bytes: returns n, UPSTREAM_PAUSE, or 0 to abort. */
	size_t (*on_data)(void *arg, const char *data, size_t n);
	/* The transfer ended (result CURLE_OK or why not); the call is
	 * finished and its easy handle gone when this runs, so on_done may
	 * free the struct. */
	void (*on_done)(void *arg, CURLcode result);
	void *arg;

	/* Kept by upstream.c: */
	CURL *easy;
	struct upstream *u;
	size_t body_len;
	long status;     /* the response's HTTP status, 0 = none */
	int sent_all;    /* the body went out in full, or the
			    provider answered */
	int reset_after; /* the handle was given options a later call would
			    not set back (a CA file) */
	char errbuf[CURL_ERROR_SIZE];
};

/* The calls of the event loop base, keeping up to max_idle connections
 * for reuse; NULL when out of memory. */
struct upstream *upstream_new(struct event_base *base, long max_idle);

/* Frees a loop's calls; every call must have ended. */
void upstream_free(struct upstream *u);

/* Starts a POST of body to url with headers, under the provider's
 * connection settings (timeouts, proxy, TLS); stream selects the idle
 * timeout over the total one. 0, or -1 when it could not start. */
int upstream_start(struct upstream *u, struct upstream_call *c,
		   const struct provider_conf *p, const char *url,
		   const struct curl_slist *headers, const char *body,
		   size_t body_len, int stream)
	__attribute__((warn_unused_result));

/* Whether the whole body of a running call went out. */
int upstream_body_sent(struct upstream_call *c);

/* Stops a call that has not finished (client gone, shutdown, timeout);
 * on_done is not called. Does nothing when the call is not running. */
void upstream_cancel(struct upstream_call *c);

/* Lets a paused call deliver again. */
void upstream_resume(struct upstream_call *c);

/* The response's status, read as soon as curl has it. */
long upstream_status(struct upstream_call *c);

/* Why a call failed: curl's message for it, or its result's text. */
const char *upstream_strerror(const struct upstream_call *c, CURLcode result);

#endif
