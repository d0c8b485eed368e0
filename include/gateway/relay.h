/*
 * relay.h - an admitted request's upstream transfer.
 *
 * The body goes up rewritten (the model, stream usage) or translated for
 * the target's wire; the answer comes back buffered (metered, translated,
 * held until the request ends) or as a stream relayed event by event to
 * the client with backpressure, its usage read on the way. A target that
 * fails before any byte reached the client hands over to the route's next
 * one. The relay tells its request two things: that a streamed reply
 * started, and how the transfer ended.
 */
#ifndef TOLLGATE_RELAY_H
#define TOLLGATE_RELAY_H

#include <stdint.h>

#include "reply.h"
#include "tollgate.h"

struct admission;
struct config;
struct event_base;
struct hreq;
struct meter_end;
struct upstream;
struct usage_record;

struct relay;

/* How a transfer ended. */
enum relay_outcome {
	RELAY_REPLY,  /* an answer is ready, or a stream ended well */
	RELAY_CUT,    /* a stream that had started ended badly */
	RELAY_FAILED, /* nothing reached the client and no target is left */
};

struct relay_end {
	enum relay_outcome outcome;
	struct reply_error err; /* RELAY_FAILED: what to answer */
	const char *reason;     /* RELAY_CUT and RELAY_FAILED: why */
};

/* What a relay tells its request (arg). */
struct relay_events {
	void (*streaming)(void *arg); /* the streamed reply started */
	void (*done)(void *arg, const struct relay_end *end); /* the end; the
					 strings live until relay_free */
};

/* What a relay works with; everything is borrowed until relay_free. */
struct relay_input {
	struct event_base *base;
	struct upstream *upstream; /* the loop's calls */
	const struct config *cfg;
	struct hreq *http; /* the client */
	const struct endpoint *ep;
	const struct admission *adm;
	struct usage_record *rec; /* provider, model, attempts,
				     mid-stream errors, ttfb */
	int64_t start_us;         /* wall clock, for translations */
	int64_t start_mono_us;
	const struct relay_events *events;
	void *arg;
};

/* A relay; NULL when out of memory. */
struct relay *relay_new(const struct relay_input *in);

/* Starts the call to the admission's first target. 0, or -1 with *err
 * (400 when the request cannot be translated to the target's wire, else
 * 502); its message lives until relay_free. */
int relay_start(struct relay *r, struct reply_error *err)
	__attribute__((warn_unused_result));

/* The client left: nothing more is written to it, and the transfer ends
 * at its next byte. */
void relay_client_gone(struct relay *r);

/* A streamed reply started: frees the body sent upstream once it is all
 * out (no other target will be tried). */
void relay_drop_body(struct relay *r);

/* Stops a running transfer; nothing more is reported. */
void relay_cancel(struct relay *r);

/* What metering needs to know of the transfer. */
void relay_meter(const struct relay *r, struct meter_end *end);

/* Finishes the client's reply once the request is on record: the rest of
 * a stream and its end, or the prepared answer. 0, or -1 when the relay
 * has no answer (the request then sends its own). */
int relay_finish(struct relay *r, struct hreq *http);

void relay_free(struct relay *r);

#endif
