/*
 * httpd.h - the gateway's HTTP/1.1 server: listeners, client connections
 * (plain or TLS) and the requests on them.
 *
 * A worker owns one server on its loop. The server reads a request's head
 * under a deadline and hands it over (struct httpd_callbacks) before a
 * byte of its body is read: the handler answers at once (a refusal, which
 * closes the connection when a body is left unread) or asks for the body,
 * within a size and a deadline of its choosing. Every answer goes through
 * the handler, the server's own included (a malformed head, a deadline
 * passed, a body too large), so each is in the API's shape.
 *
 * Resources are bounded per connection (head size and field count, the
 * body the handler allows, pipelined bytes held back) and per process
 * (max_connections, max_connections_per_address); running out of file
 * descriptors pauses accepting briefly instead of spinning.
 */
#ifndef TOLLGATE_HTTPD_H
#define TOLLGATE_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "http_parse.h"

struct config;
struct event_base;
struct evbuffer;
struct evkeyvalq;
struct httpd;
struct hreq;

/* What the server calls with a request whose head is in, or with one it
 * must refuse (hreq_error() is then set: a malformed head, or its
 * deadline passed). The handler answers, now or later, or asks for the
 * body. */
struct httpd_callbacks {
	void (*request)(struct hreq *r, void *arg);
	void *arg;
};

/* A server on base, with cfg's limits (borrowed: the caller keeps it
 * alive until httpd_set_config() replaces it or httpd_free()). */
struct httpd *httpd_new(struct event_base *base, const struct config *cfg,
			const struct httpd_callbacks *cb);

/* Opens a listening TCP socket on "host:port" ("[v6]:port"), with
 * SO_REUSEPORT so that every worker can have its own. The fd, or -1 with
 * *cause (malloc'd). */
int httpd_open_listener(const char *addr, char **cause);

/* Counts this server's connections apart from the data plane's, at most
 * max of them (the admin server: an operator must get in while clients
 * fill max_connections). */
void httpd_own_limit(struct httpd *h, int64_t max);

/* Serves on the listening socket fd (taken over), TLS when tls is set.
 * 0, or -1. */
int httpd_listen(struct httpd *h, int fd, int tls);

/* Stops accepting (drain); connections in use carry on, idle ones close
 * once their request is done. */
void httpd_stop_listening(struct httpd *h);

/* New limits for connections and requests from now on. */
void httpd_set_config(struct httpd *h, const struct config *cfg);

/* Closes every connection and listener, and frees the server. */
void httpd_free(struct httpd *h);

/* Process-wide setup: the connection limits' table and the figures for
 * /metrics. Once, before any server starts. */
void httpd_init(void);

/* The request's refusal by the server itself (its status and message),
 * or NULL for a well-formed request. */
const struct hp_error *hreq_error(const struct hreq *r);

/* The method ("" when the head was malformed). */
const char *hreq_method(const struct hreq *r);

/* The path of the target without its query, and the query (NULL when
 * none). "" when the head was malformed. */
const char *hreq_path(const struct hreq *r);
const char *hreq_query(const struct hreq *r);

/* The request's headers, and the reply's (added before it is sent). */
struct evkeyvalq *hreq_input_headers(struct hreq *r);
struct evkeyvalq *hreq_output_headers(struct hreq *r);

/* The client's address, as text. */
const char *hreq_peer(const struct hreq *r);

/* The subject of the client's certificate (RFC 2253), when it presented
 * one on a TLS connection; else NULL. */
const char *hreq_client_subject(const struct hreq *r);

/* Reads the body, at most max bytes within body_timeout, then calls done
 * with err NULL, or with the reason it could not (413 too large, 408 too
 * slow, 400 malformed chunks): the handler answers that in the API's
 * shape. Sends 100 Continue first when the client asked for it. */
void hreq_read_body(struct hreq *r, size_t max,
		    void (*done)(struct hreq *r, const struct hp_error *err,
				 void *arg),
		    void *arg);

/* Takes the body read: malloc'd, NUL-terminated, length in *len (NULL
 * when out of memory). */
char *hreq_body_take(struct hreq *r, size_t *len);

/* Called when the client leaves before the reply ended; r is freed once
 * gone returns. */
void hreq_on_gone(struct hreq *r, void (*gone)(void *arg), void *arg);

/* Called once an ended reply was written out (written 1) or its
 * connection was lost first (0); r is freed once done returns. */
void hreq_on_done(struct hreq *r, void (*done)(void *arg, int written),
		  void *arg);

/* Called each time a started stream's output buffer empties. */
void hreq_on_drained(struct hreq *r, void (*drained)(void *arg), void *arg);

/* Sends the whole reply: status, the output headers, body (may be NULL;
 * drained). Ends the request. */
void hreq_send(struct hreq *r, int status, struct evbuffer *body);

/* Starts a streamed reply (chunked for HTTP/1.1), sends data (drained),
 * and ends it. */
void hreq_stream_start(struct hreq *r, int status);
void hreq_stream_add(struct hreq *r, struct evbuffer *data);
void hreq_stream_end(struct hreq *r);

/* Bytes of the reply not yet written to the client's socket. */
size_t hreq_backlog(const struct hreq *r);

#endif
