/*
 * mock_stream.c - a model request's replay: latency, pacing one event per
 * timer tick, the injected failures (cut, stall, hang, close, error) and
 * the end of the request, whoever ends it.
 */
#include "mock.h"

static void mr_step(struct mock_req *mr);
static void mr_unwatch_peer(struct mock_req *mr);
static void mr_stall(struct mock_req *mr);
static void mr_cut_short(struct mock_req *mr);

/* Ends a model request: logs the reason, counts it and frees its state. The
 * evhttp request is not touched; the caller has replied to it, or evhttp
 * frees it with its connection. */
static void
mr_finish(struct mock_req *mr, int ok, const char *reason)
{
	struct mock_last *l = &srv.last;
	struct model_stats *m = model_stats_of(mr->mr_model, 0);

	if (ok && !mr->mr_failed)
		srv.stats.ms_served++;
	else
		srv.stats.ms_failed++;
	/* A reset while the request ran forgot its name: count nothing. */
	if (m != NULL && ok && !mr->mr_failed)
		m->mm_served++;
	else if (m != NULL)
		m->mm_failed++;
	l->ml_seen = 1;
	l->ml_status = mr->mr_status;
	snprintf(l->ml_what, sizeof(l->ml_what), "%s", mr->mr_what);
	snprintf(l->ml_end, sizeof(l->ml_end), "%s", reason);
	l->ml_events_sent = mr->mr_next;
	l->ml_events_total = mr->mr_nevents;
	if (mr->mr_status != 0)
		mock_log("%s -> %d %s", mr->mr_what, mr->mr_status, reason);
	else
		mock_log("%s -> no response, %s", mr->mr_what, reason);
	evhttp_connection_set_closecb(mr->mr_conn, NULL, NULL);
	srv.in_flight--;
	mr_free(mr);
}

/* Takes a request off the live list and frees it. */
void
mr_free(struct mock_req *mr)
{
	TAILQ_REMOVE(&srv.live, mr, mr_link);
	event_free(mr->mr_timer);
	if (mr->mr_watch != NULL)
		event_free(mr->mr_watch);
	free(mr->mr_events);
	free(mr->mr_body);
	mock_gzip_end(mr);
	free(mr);
}

/* Connection close callback: the client left before the request ended. */
void
mr_conn_closed(struct evhttp_connection *conn, void *arg)
{
	struct mock_req *mr = arg;
	struct evhttp_request *req = mr->mr_req;

	/*
	 * After a network error evhttp detaches a request that is still
	 * being answered and leaves it to its owner; one still attached is
	 * freed with the connection.
	 */
	if (evhttp_request_get_connection(req) == NULL)
		evhttp_request_free(req);
	srv.stats.ms_client_left++;
	mr_finish(mr, 0,
		  mr->mr_state == MR_HANGING ? "hung until the client left"
		  : mr->mr_state == MR_STALLED
			  ? "stalled until the client left"
			  : "client closed the connection");
}

/* Closes mr's connection without (more of) a response and ends mr. */
static void
mr_abort(struct mock_req *mr, const char *reason)
{
	struct evhttp_connection *conn = mr->mr_conn;

	mr_finish(mr, 0, reason);
	evhttp_connection_free(conn);
}

/* Arms mr's timer to call mr_step() after ms milliseconds. */
void
mr_arm(struct mock_req *mr, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(mr->mr_timer, &tv);
}

/* Timer callback. */
void
mr_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	mr_step(arg);
}

/* Sends the response headers. */
static void
mr_start_reply(struct mock_req *mr)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(mr->mr_req);
	char len[32];

	if (mr->mr_sse) {
		evhttp_add_header(h, "Content-Type", "text/event-stream");
		evhttp_add_header(h, "Cache-Control", "no-cache");
	} else {
		evhttp_add_header(h, "Content-Type", "application/json");
		/* A cut body must still announce its full length. */
		snprintf(len, sizeof(len), "%zu", mr->mr_len);
		evhttp_add_header(h, "Content-Length", len);
	}
	if (mr->mr_retry_after)
		evhttp_add_header(h, "Retry-After", "1");
	if (mr->mr_sse && mr->mr_cut == CUT_NONE)
		mock_gzip_begin(mr);
	evhttp_send_reply_start(mr->mr_req, mr->mr_status,
				status_reason(mr->mr_status));
}

/* Sends len bytes at p as one chunk of mr's reply. */
static void
mr_send(struct mock_req *mr, const char *p, size_t len)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL)
		abort();
	if (mr->mr_gz != NULL)
		mock_gzip_add(mr, p, len, 0, buf);
	else
		evbuffer_add(buf, p, len);
	evhttp_send_reply_chunk(mr->mr_req, buf);
	evbuffer_free(buf);
}

/* Starts the wait for the sent bytes to leave before a cut. */
static void
mr_begin_drain(struct mock_req *mr)
{
	mr->mr_state = MR_DRAINING;
	mr_arm(mr, 0);
}

/* Returns the bytes not yet written to mr's socket. */
static size_t
mr_unsent(struct mock_req *mr)
{
	struct bufferevent *bev =
		evhttp_connection_get_bufferevent(mr->mr_conn);

	return evbuffer_get_length(bufferevent_get_output(bev));
}

/* Moves a request on by one step; called from its timer. */
static void
mr_step(struct mock_req *mr)
{
	struct mr_span *sp;

	switch (mr->mr_state) {
	case MR_WAITING:
		mr_unwatch_peer(mr);
		if (!mr->mr_sse && mr->mr_cut == CUT_NONE) {
			struct evbuffer *buf = evbuffer_new();
			struct evkeyvalq *h =
				evhttp_request_get_output_headers(mr->mr_req);

			if (buf == NULL)
				abort();
			evhttp_add_header(h, "Content-Type",
					  "application/json");
			if (mr->mr_retry_after)
				evhttp_add_header(h, "Retry-After", "1");
			if (mock_gzip_begin(mr))
				mock_gzip_add(mr, mr->mr_body, mr->mr_len, 1,
					      buf);
			else
				evbuffer_add(buf, mr->mr_body, mr->mr_len);
			evhttp_send_reply(mr->mr_req, mr->mr_status,
					  status_reason(mr->mr_status), buf);
			evbuffer_free(buf);
			mr_finish(mr, 1, "json");
			return;
		}
		mr_start_reply(mr);
		if (!mr->mr_sse) {
			mr_send(mr, mr->mr_body, mr->mr_len / 2);
			if (mr->mr_cut == CUT_STALL)
				mr_stall(mr);
			else
				mr_begin_drain(mr);
			return;
		}
		mr->mr_state = MR_STREAMING;
		/* FALLTHROUGH */
	case MR_STREAMING:
		for (;;) {
			if (mr->mr_cut != CUT_NONE &&
			    mr->mr_next >= (size_t)mr->mr_cut_after) {
				mr_cut_short(mr);
				return;
			}
			if (mr->mr_next == mr->mr_nevents) {
				if (mr->mr_gz != NULL) {
					struct evbuffer *t = evbuffer_new();
					if (t == NULL)
						abort();
					mock_gzip_add(mr, "", 0, 1, t);
					evhttp_send_reply_chunk(mr->mr_req, t);
					evbuffer_free(t);
				}
				evhttp_send_reply_end(mr->mr_req);
				mr_finish(mr, 1, "stream");
				return;
			}
			sp = &mr->mr_events[mr->mr_next++];
			mr_send(mr, mr->mr_body + sp->sp_off, sp->sp_len);
			if (mr->mr_delay_ms > 0 &&
			    mr->mr_next < mr->mr_nevents) {
				mr_arm(mr, mr->mr_delay_ms);
				return;
			}
		}
	case MR_DRAINING:
		if (mr_unsent(mr) > 0) {
			mr_arm(mr, 1);
			return;
		}
		mr_abort(mr, mr->mr_sse ? "cut stream" : "cut body");
		return;
	case MR_CLOSING:
		mr_abort(mr, "closed without a response");
		return;
	case MR_HANGING:
	case MR_STALLED:
		return;
	}
}

/*
 * Socket watch of a request that is not being written to: waiting out its
 * latency, hanging or stalled. evhttp stops reading a connection while its
 * request awaits an answer and notices a closed peer only when a write
 * fails, so without this watch a peer's leaving would go unseen. Bytes the
 * peer sends meanwhile are discarded: they would never be answered.
 */
static void
mr_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mock_req *mr = arg;
	char buf[4096];
	ssize_t n;

	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
				errno == EINTR)))
		return;
	srv.stats.ms_client_left++;
	if (mr->mr_state == MR_WAITING)
		mr->mr_status = 0;
	mr_abort(mr, mr->mr_state == MR_HANGING ? "hung until the client left"
		     : mr->mr_state == MR_STALLED
			     ? "stalled until the client left"
			     : "client left before the response started");
}

/* Starts watching mr's socket for the peer's leaving. */
void
mr_watch_peer(struct mock_req *mr)
{
	struct bufferevent *bev =
		evhttp_connection_get_bufferevent(mr->mr_conn);

	if (mr->mr_watch != NULL)
		return;
	mr->mr_watch = event_new(srv.base, bufferevent_getfd(bev),
				 EV_READ | EV_PERSIST, mr_watch_cb, mr);
	if (mr->mr_watch == NULL || event_add(mr->mr_watch, NULL) < 0)
		abort();
}

/* Stops the watch before evhttp uses the socket again: the watch would
 * swallow what the peer sends next. */
static void
mr_unwatch_peer(struct mock_req *mr)
{
	if (mr->mr_watch == NULL)
		return;
	event_free(mr->mr_watch);
	mr->mr_watch = NULL;
}

/* Puts mr into the hang state: no answer until the peer leaves. */
void
mr_hang(struct mock_req *mr)
{
	mr->mr_state = MR_HANGING;
	mr->mr_status = 0;
	mr_watch_peer(mr);
	mock_log("%s hanging", mr->mr_what);
}

/* Puts mr into the stall state: what was sent stays, nothing follows, the
 * connection stays open until the peer leaves. */
static void
mr_stall(struct mock_req *mr)
{
	mr->mr_state = MR_STALLED;
	mr_watch_peer(mr);
	mock_log("%s stalled after %zu events", mr->mr_what, mr->mr_next);
}

/* Cuts a stream short after mr_cut_after events, the way mr_cut says. */
static void
mr_cut_short(struct mock_req *mr)
{
	char *err, *ev;
	size_t n;

	switch (mr->mr_cut) {
	case CUT_NONE:
	case CUT_CLOSE:
		mr_begin_drain(mr);
		return;
	case CUT_STALL:
		mr_stall(mr);
		return;
	case CUT_ERROR:
		/* One chunk, as every other event. */
		if (mr->mr_wire == WIRE_ANTHROPIC) {
			err = body_dup(ANTHROPIC_MIDSTREAM_ERROR);
		} else if (mr->mr_wire == WIRE_RESPONSES) {
			err = body_dup("{\"type\":\"error\",\"code\":"
				       "\"server_error\",\"message\":"
				       "\"" MOCK_MIDSTREAM_ERROR
				       "\",\"param\":null}");
		} else {
			err = error_json(MOCK_MIDSTREAM_ERROR, "server_error",
					 NULL, NULL);
		}
		ev = malloc(strlen(err) + 24);
		if (ev == NULL)
			abort();
		/* Anthropic and Responses name their error events. */
		n = (size_t)sprintf(ev, "%sdata: %s\n\n",
				    mr->mr_wire == WIRE_ANTHROPIC ||
						    mr->mr_wire ==
							    WIRE_RESPONSES
					    ? "event: error\n"
					    : "",
				    err);
		mr_send(mr, ev, n);
		free(ev);
		free(err);
		evhttp_send_reply_end(mr->mr_req);
		mr_finish(mr, 1, "stream ended by an error event");
		return;
	}
}
