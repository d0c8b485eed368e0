/*
 * request.h - one client request's life, from admission to usage record.
 *
 * A request is opaque outside request.c, which drives it through its
 * states (documented there) and ends it in one place, whatever happened:
 * the record settled and journaled, the reply finished or abandoned, what
 * admission held given back.
 */
#ifndef TOLLGATE_REQUEST_H
#define TOLLGATE_REQUEST_H

#include <stdint.h>

struct config;
struct endpoint;
struct event_base;
struct hreq;
struct request;
struct upstream;

/* The requests of one event loop and what they share: the loop, its
 * upstream calls, and the configuration new requests start on (a
 * reference, swapped on reload). Owned by the worker that runs the loop;
 * used on its thread only. */
struct request_loop {
	struct event_base *base;
	struct upstream *upstream;
	struct config *cfg;
	struct request *requests; /* in flight, for shutdown */
	int64_t inflight;
	int64_t unsent;          /* ended, their replies not yet written out */
	struct request *closing; /* ended, their records not yet journaled */
	struct event *close_ev;  /* journals them, once a loop pass */
};

/* Makes the loop's event that journals ended requests. 0 or -1. */
int request_loop_init(struct request_loop *loop)
	__attribute__((warn_unused_result));

/* Journals the ended requests' records, then finishes their replies (the
 * loop's event; and once more when the loop has ended). */
void request_loop_flush(struct request_loop *loop);

/* Frees what request_loop_init() made. */
void request_loop_free(struct request_loop *loop);

/* Handles a data-plane request for a known endpoint (http_server.c).
 * path_model is the model the path named (Azure), borrowed for the call,
 * or NULL. */
void request_start(struct request_loop *loop, struct hreq *http,
		   const struct endpoint *ep, const char *path_model);

/* Ends every request of the loop that is not parked on the quota thread,
 * with reason (shutdown at the end of its bound): streams end where they
 * are and are billed by estimate, the rest are answered 503. */
void request_cut_all(struct request_loop *loop, const char *reason);

#endif
