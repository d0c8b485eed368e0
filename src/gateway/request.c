/*
 * request.c - a request's life: its states, the one function that drives
 * them, and the one that ends it.
 *
 * Principle: every request that reached admission is recorded exactly
 * once, and no client hears the end of a request before its record is on
 * record. drive() is the only place a request changes state, in answer to
 * an event; request_close() is the only way out: it settles the usage
 * record (meter.c) and gives back what admission held. The records of the
 * requests that end in one pass of the loop are journaled with one write
 * (spool.c) at the end of the pass; then their replies are finished or
 * abandoned and everything is freed.
 *
 * The work of each state lives in its module: admission (admit.c) decides
 * whether the request may go upstream, the relay (relay.c) runs the
 * upstream transfer and relays the answer, reply.c shapes the errors.
 * What stays here is the client's side: its connection closing, its body
 * read only once its key passed, and a request parked on the quota
 * thread, which must not be freed before the thread's answer arrives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admit.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "httpd.h"
#include "log.h"
#include "meter.h"
#include "metrics.h"
#include "quota.h"
#include "refusals.h"
#include "relay.h"
#include "reply.h"
#include "request.h"
#include "spool.h"

/*
 * A request's states. Each names what the request waits for; drive() is
 * the only place that moves it from one to another:
 *
 *   HEAD --> BODY --> QUOTA --> UPSTREAM --> RELAYING --> CLOSING
 *     |       |        |  \        |                        ^
 *     |       |        |   `-> ABANDONED ---(answer)--------|
 *     `-------+--------+-----------+------------------------'
 */
enum request_state {
	REQ_HEAD,      /* the head is in: the key is checked */
	REQ_BODY,      /* the key passed: the body is read, then admission
			  runs */
	REQ_QUOTA,     /* parked while the quota thread reserves the worst
			  case; it cannot be freed until the answer arrives */
	REQ_ABANDONED, /* ended while parked: closes when the answer comes */
	REQ_UPSTREAM,  /* the upstream transfer runs; nothing sent yet */
	REQ_RELAYING,  /* a streamed reply has started */
	REQ_CLOSING,   /* request_close() ran: record settled; once the loop
			  journaled it, reply finished or abandoned, memory
			  freed */
};

/* What happens to a request. */
enum request_event {
	EV_START,       /* its head arrived */
	EV_BODY,        /* its body was read (NULL), or could not be (the
			   server's struct hp_error) */
	EV_QUOTA,       /* the quota thread answered */
	EV_STREAMING,   /* the relay started a streamed reply */
	EV_RELAY_DONE,  /* the relay ended (struct relay_end) */
	EV_CLIENT_GONE, /* the client left (its connection closed, or end of
			   file on its socket) */
	EV_CUT,         /* shutdown ends it (reason) */
};

struct request {
	struct request_loop *rq_loop;
	struct config *rq_cfg;               /* a reference: the configuration
						the request started on */
	struct request *rq_next, **rq_prevp; /* the loop's requests */
	struct hreq *rq_http;                /* NULL once the client is gone */
	const struct endpoint *rq_ep;
	char *rq_path_model; /* the model the path named */
	enum request_state rq_state;
	char rq_id[REPLY_ID_SIZE];
	char rq_peer[48]; /* the client's address */
	int64_t rq_start_us;
	int64_t rq_start_mono_us;
	struct admission rq_adm;
	struct relay *rq_relay;     /* from REQ_UPSTREAM on */
	struct refusal *rq_refusal; /* the answer when refused */
	int rq_refused;
	int rq_streaming;              /* counted in METRIC_STREAMS */
	char *rq_abandoned;            /* REQ_ABANDONED: why */
	char *rq_answer;               /* the gateway's own answer (a count of
					  tokens), sent once on record */
	char *rq_close_reason;         /* why it ended, while its record waits
					  for the loop's journal write */
	struct request *rq_close_next; /* the loop's ended requests */
	struct usage_record *rq_rec;   /* filled as the request goes */
};

static enum request_state drive(struct request *req, enum request_event ev,
				const void *data);
static void request_close(struct request *req, const char *reason);

/* The client left before its reply ended. */
static void
client_gone(void *arg)
{
	struct request *req = arg;

	req->rq_http = NULL;
	if (req->rq_relay != NULL)
		relay_client_gone(req->rq_relay);
	drive(req, EV_CLIENT_GONE, NULL);
}

/* The body was read, or could not be. */
static void
body_arrived(struct hreq *http, const struct hp_error *err, void *arg)
{
	(void)http;
	drive(arg, EV_BODY, err);
}

/* What admission fills when it refuses, on this worker's thread; a
 * request that is refused keeps a copy (most are not, and a refusal's
 * texts are most of a request's size). */
static _Thread_local struct refusal scratch;

/* The scratch refusal, cleared for an admission step to fill. */
static struct refusal *
fresh(void)
{
	memset(&scratch, 0, sizeof scratch);
	return &scratch;
}

/* The refusal kept when there is no memory for one. */
static struct refusal oom_refusal = {
	{ 500, "server_error", NULL, NULL, "Out of memory." },
	"Out of memory.",
	"",
};

/* Refuses the request: its error goes out once the record is journaled.
 * Returns REQ_CLOSING, with the error's message as the reason. */
static enum request_state
refuse(struct request *req, const struct reply_error *err, const char **reason)
{
	struct refusal *r = req->rq_refusal;

	if (r == NULL && (r = calloc(1, sizeof *r)) == NULL) {
		r = &oom_refusal;
	} else if (err != &r->err) {
		r->err = *err;
		snprintf(r->msg, sizeof r->msg, "%s", err->message);
		r->err.message = r->msg;
		if (err->param != NULL) {
			snprintf(r->param, sizeof r->param, "%s", err->param);
			r->err.param = r->param;
		}
	}
	req->rq_refusal = r;
	req->rq_refused = 1;
	req->rq_rec->status = r->err.status;
	*reason = r->msg;
	return REQ_CLOSING;
}

/* The quota thread answered (on the request's loop). */
static void
quota_answered(evutil_socket_t fd, short what, void *arg)
{
	struct request *req = arg;

	(void)fd;
	(void)what;
	event_free(req->rq_adm.qjob->ev);
	req->rq_adm.qjob->ev = NULL;
	admit_quota_reserved(&req->rq_adm);
	drive(req, EV_QUOTA, NULL);
}

/* The relay started a streamed reply. */
static void
relay_streaming(void *arg)
{
	struct request *req = arg;

	if (!req->rq_streaming) {
		req->rq_streaming = 1;
		metrics_add(METRIC_STREAMS, 1);
	}
	drive(req, EV_STREAMING, NULL);
}

/* The relay ended. */
static void
relay_done(void *arg, const struct relay_end *end)
{
	drive(arg, EV_RELAY_DONE, end);
}

static const struct relay_events relay_events = { relay_streaming, relay_done };

/* Starts the upstream transfer: REQ_UPSTREAM, or REQ_CLOSING refused. */
static enum request_state
go_upstream(struct request *req, const char **reason)
{
	struct relay_input in = {
		.base = req->rq_loop->base,
		.upstream = req->rq_loop->upstream,
		.cfg = req->rq_cfg,
		.http = req->rq_http,
		.ep = req->rq_ep,
		.adm = &req->rq_adm,
		.rec = req->rq_rec,
		.start_us = req->rq_start_us,
		.start_mono_us = req->rq_start_mono_us,
		.events = &relay_events,
		.arg = req,
	};
	struct reply_error err = { 500, "server_error", NULL, NULL,
				   "Out of memory." };

	if (req->rq_adm.clamp) {
		/* The cap the provider is sent, for the client to see. */
		char v[24];
		snprintf(v, sizeof v, "%lld", (long long)req->rq_adm.out_cap);
		evhttp_add_header(hreq_output_headers(req->rq_http),
				  "x-tollgate-output-cap", v);
	}
	req->rq_relay = relay_new(&in);
	if (req->rq_relay != NULL && relay_start(req->rq_relay, &err) == 0)
		return REQ_UPSTREAM;
	return refuse(req, &err, reason);
}

/* Parks the request on the quota thread: 0, or -1 when it cannot. */
static int
park(struct request *req)
{
	struct quota_job *job = req->rq_adm.qjob;

	job->ev = event_new(req->rq_loop->base, -1, 0, quota_answered, req);
	if (job->ev == NULL)
		return -1;
	quota_reserve(job);
	return 0;
}

/* Checks the key from the head: refused, or on to read the body. */
static enum request_state
authenticate(struct request *req, const char **reason)
{
	if (admit_auth(req->rq_cfg, req->rq_http, req->rq_ep, &req->rq_adm,
		       req->rq_rec, fresh()) != 0)
		return refuse(req, &scratch.err, reason);
	return REQ_BODY;
}

/* The server could not read the body: refused in the API's shape. */
static enum request_state
body_failed(struct request *req, const struct hp_error *e, const char **reason)
{
	char msg[160];
	struct reply_error err = reply_from_server(e);

	if (e->status == 413) {
		snprintf(msg, sizeof msg,
			 "Request body exceeds the limit of %lld bytes.",
			 (long long)req->rq_cfg->max_body_size);
		err.message = msg;
	}
	snprintf(req->rq_rec->refusal, sizeof req->rq_rec->refusal, "%s",
		 e->status == 408 ? "body_timeout" : "invalid_request");
	return refuse(req, &err, reason);
}

/* The refusal of a request the gateway has no memory for. */
static const struct reply_error oom = { 500, "server_error", NULL, NULL,
					"Out of memory." };

/* Answers a count_tokens request the gateway counts itself. */
static enum request_state
count_locally(struct request *req, const char **reason)
{
	int64_t tokens = 0;
	int exact = 0;
	char text[64];

	if (admit_count_tokens(&req->rq_adm, req->rq_rec, &tokens, &exact,
			       fresh()) != 0)
		return refuse(req, &scratch.err, reason);
	snprintf(text, sizeof text, "{\"input_tokens\":%lld}",
		 (long long)tokens);
	if ((req->rq_answer = strdup(text)) == NULL)
		return refuse(req, &oom, reason);
	evhttp_add_header(hreq_output_headers(req->rq_http),
			  "x-tollgate-token-count",
			  exact ? "exact" : "estimated");
	req->rq_rec->status = 200;
	return REQ_CLOSING;
}

/* Admits the request whose body is in: refused, parked on the quota
 * thread, or gone upstream. */
static enum request_state
admit(struct request *req, const char **reason)
{
	struct admission *a = &req->rq_adm;

	if (admit_request(req->rq_cfg, req->rq_http, req->rq_ep,
			  req->rq_path_model, a, req->rq_rec, fresh()) != 0)
		return refuse(req, &scratch.err, reason);
	if (req->rq_ep->op == EP_COUNT_TOKENS)
		/* A count uses no tokens: no quota to reserve. */
		return admit_counts_locally(a) ? count_locally(req, reason)
					       : go_upstream(req, reason);
	switch (admit_quotas(a, req->rq_rec)) {
	case ADMIT_QUOTA_NONE:
		return go_upstream(req, reason);
	case ADMIT_QUOTA_RESERVE:
		if (park(req) == 0)
			return REQ_QUOTA;
		break;
	case ADMIT_QUOTA_FAILED:
		break;
	}
	/* A quota that cannot be checked lets no request by. */
	return refuse(req, &oom, reason);
}

/* The quota thread's answer: refused, parked again for a smaller
 * reservation, or gone upstream. */
static enum request_state
quota_answer(struct request *req, const char **reason)
{
	struct evkeyvalq *out = hreq_output_headers(req->rq_http);

	switch (admit_quota_answer(&req->rq_adm, req->rq_rec, out, fresh())) {
	case 0:
		return go_upstream(req, reason);
	case 1:
		/* A smaller worst case to reserve. */
		if (park(req) == 0)
			return REQ_QUOTA;
		return refuse(req, &oom, reason);
	}
	return refuse(req, &scratch.err, reason);
}

/* The relay's end ends the request: refused when nothing reached the
 * client, else closed with the relay's reason (NULL when all went well). */
static enum request_state
relay_ended(struct request *req, const struct relay_end *end,
	    const char **reason)
{
	if (end->outcome == RELAY_FAILED)
		return refuse(req, &end->err, reason);
	*reason = end->reason;
	return REQ_CLOSING;
}

/* Ends a request shutdown cuts: a stream where it is, anything else with
 * 503 while the client still waits. */
static enum request_state
cut(struct request *req, const char *why, const char **reason)
{
	struct reply_error err = { 503, "server_error", "shutting_down", NULL,
				   why };

	if (req->rq_state == REQ_RELAYING || req->rq_http == NULL) {
		*reason = why;
		return REQ_CLOSING;
	}
	return refuse(req, &err, reason);
}

/* Moves a request on after ev: the one place its state changes. data is
 * the event's (the server's error or NULL for EV_BODY, a struct
 * relay_end for EV_RELAY_DONE, the reason for EV_CUT). A request that
 * reaches REQ_CLOSING is closed and freed. Returns the new state. */
static enum request_state
drive(struct request *req, enum request_event ev, const void *data)
{
	enum request_state next = req->rq_state;
	const char *reason = NULL;

	if (ev == EV_CLIENT_GONE)
		req->rq_rec->client_aborted = 1;
	switch (req->rq_state) {
	case REQ_HEAD:
		if (ev == EV_START)
			next = authenticate(req, &reason);
		break;
	case REQ_BODY:
		if (ev == EV_BODY && data != NULL) {
			next = body_failed(req, data, &reason);
		} else if (ev == EV_BODY) {
			next = admit(req, &reason);
		} else if (ev == EV_CLIENT_GONE) {
			reason = "client closed the connection";
			next = REQ_CLOSING;
		} else if (ev == EV_CUT) {
			next = cut(req, data, &reason);
		}
		break;
	case REQ_QUOTA:
		if (ev == EV_QUOTA) {
			next = quota_answer(req, &reason);
			break;
		}
		/* The quota thread still holds this request. */
		req->rq_abandoned =
			strdup(ev == EV_CUT ? (const char *)data
					    : "client closed the connection");
		next = REQ_ABANDONED;
		break;
	case REQ_ABANDONED:
		if (ev == EV_QUOTA) {
			reason = req->rq_abandoned;
			next = REQ_CLOSING;
		}
		break;
	case REQ_UPSTREAM:
	case REQ_RELAYING:
		if (ev == EV_STREAMING) {
			next = REQ_RELAYING;
			admit_drop_body(&req->rq_adm);
			relay_drop_body(req->rq_relay);
		} else if (ev == EV_RELAY_DONE) {
			next = relay_ended(req, data, &reason);
		} else if (ev == EV_CLIENT_GONE) {
			reason = "client closed the connection";
			next = REQ_CLOSING;
		} else if (ev == EV_CUT) {
			next = cut(req, data, &reason);
		}
		break;
	case REQ_CLOSING:
		return REQ_CLOSING;
	}
	req->rq_state = next;
	if (next == REQ_CLOSING)
		request_close(req, reason);
	return next;
}

/* Handles a data-plane request for a known endpoint: its key first,
 * then its body. */
void
request_start(struct request_loop *loop, struct hreq *http,
	      const struct endpoint *ep, const char *path_model)
{
	struct request *req = calloc(1, sizeof *req);

	if (req == NULL || (req->rq_rec = meter_record_new()) == NULL ||
	    (path_model != NULL &&
	     (req->rq_path_model = strdup(path_model)) == NULL)) {
		if (req != NULL)
			meter_record_free(req->rq_rec);
		free(req);
		reply_error(http, ep->wire, &oom);
		return;
	}
	req->rq_loop = loop;
	req->rq_cfg = config_ref(loop->cfg);
	req->rq_http = http;
	req->rq_ep = ep;
	req->rq_state = REQ_HEAD;
	{
		struct ftext peer = FTEXT(req->rq_peer);
		ft_str(&peer, hreq_peer(http));
	}
	req->rq_start_us = clock_wall_us();
	req->rq_start_mono_us = clock_mono_us();
	reply_request_id(req->rq_id);
	memcpy(req->rq_rec->request_id, req->rq_id, sizeof req->rq_id);
	req->rq_rec->ts_us = req->rq_start_us;
	req->rq_rec->endpoint = ep->name;
	loop->inflight++;
	metrics_add(METRIC_IN_FLIGHT, 1);
	req->rq_next = loop->requests;
	if (loop->requests != NULL)
		loop->requests->rq_prevp = &req->rq_next;
	req->rq_prevp = &loop->requests;
	loop->requests = req;
	evhttp_add_header(hreq_output_headers(http), "x-request-id",
			  req->rq_id);
	hreq_on_gone(http, client_gone, req);
	if (drive(req, EV_START, NULL) == REQ_BODY)
		hreq_read_body(http, (size_t)req->rq_cfg->max_body_size,
			       body_arrived, req);
}

/* A finished reply was written out to its client, or its connection was
 * lost first. */
static void
reply_done(void *arg, int written)
{
	struct request_loop *loop = arg;

	(void)written;
	loop->unsent--;
}

/* Sends what the request has for its client, after the record is on
 * record: the relay's answer or the end of its stream, or an error. Until
 * it is written out the reply counts as unsent, so that a draining worker
 * does not end its loop with the last bytes in an output buffer. */
static void
finish_reply(struct request *req, const char *reason)
{
	struct hreq *http = req->rq_http;
	struct reply_error internal = { 500, "server_error", NULL, NULL,
					reason != NULL ? reason
						       : "Internal error." };

	if (http == NULL)
		return;
	req->rq_http = NULL;
	req->rq_loop->unsent++;
	hreq_on_gone(http, NULL, NULL);
	hreq_on_done(http, reply_done, req->rq_loop);
	if (req->rq_refused) {
		reply_error(http, req->rq_ep->wire, &req->rq_refusal->err);
	} else if (req->rq_answer != NULL) {
		struct evbuffer *buf = evbuffer_new();
		if (buf != NULL)
			evbuffer_add(buf, req->rq_answer,
				     strlen(req->rq_answer));
		reply_send(http, 200, "application/json", buf);
		if (buf != NULL)
			evbuffer_free(buf);
	} else if (req->rq_relay == NULL ||
		   relay_finish(req->rq_relay, http) != 0)
		reply_error(http, req->rq_ep->wire, &internal);
}

/* The model as /metrics labels it: a route's own name, else "other". A
 * client chooses the rest (unknown models, what a "*" route takes), and
 * each would be a series. */
static const char *
model_label(const struct config *cfg, const char *model)
{
	const struct route_conf *r;

	if (model == NULL)
		return NULL;
	r = config_route(cfg, model);
	return r != NULL && strcmp(r->name, model) == 0 ? model : "other";
}

/* Logs the request's line and counts it; refusals are logged at a
 * bounded rate. */
static void
account(struct request *req, const char *reason)
{
	const struct usage_record *rec = req->rq_rec;
	enum log_level level =
		reason != NULL && rec->status < 400 ? LOG_WARN : LOG_INFO;
	long long skipped = 0;
	char line[2048];
	struct ftext t = FTEXT(line);
	struct metrics_request m = {
		.tenant = rec->tenant,
		.model = model_label(req->rq_cfg, rec->requested_model),
		.provider = rec->provider,
		.status = rec->status,
		.prompt = rec->usage.prompt,
		.completion = rec->usage.completion,
		.cached = rec->usage.cached,
		.reasoning = rec->usage.reasoning,
		.latency_ms = rec->latency_ms,
		.ttfb_ms = rec->ttfb_ms,
		.streamed = rec->streamed,
		.aborted = rec->client_aborted,
		.unmetered = rec->status >= 200 && rec->status < 300 &&
			     rec->source == USAGE_NONE &&
			     req->rq_ep->op != EP_COUNT_TOKENS,
	};

	metrics_request(&m);
	if (!log_enabled(level) ||
	    (req->rq_refused && !refusals_log_due(&skipped)))
		return;
	if (rec->endpoint != NULL)
		ft_str(&t, rec->endpoint);
	else
		ft_add(&t, "(null)", 6);
	ft_str(&t, rec->streamed ? " stream model=" : " json model=");
	ft_str(&t, rec->requested_model ? rec->requested_model : "-");
	ft_add(&t, " provider=", 10);
	ft_str(&t, rec->provider ? rec->provider : "-");
	ft_add(&t, " status=", 8);
	ft_int(&t, rec->status);
	ft_add(&t, " prompt=", 8);
	ft_int(&t, rec->usage.prompt);
	ft_add(&t, " completion=", 12);
	ft_int(&t, rec->usage.completion);
	ft_add(&t, " ", 1);
	ft_str(&t, meter_source_name(rec->source));
	ft_add(&t, " ms=", 4);
	ft_int(&t, rec->latency_ms);
	if (reason != NULL) {
		ft_add(&t, " reason=", 8);
		ft_str(&t, reason);
	}
	if (skipped > 0) {
		ft_add(&t, " (", 2);
		ft_int(&t, skipped);
		ft_str(&t, " refusals not logged before)");
	}
	log_request_text(level, rec->request_id, rec->tenant, line);
}

/* Frees a closed request. */
static void
request_free(struct request *req)
{
	struct request_loop *loop = req->rq_loop;

	relay_free(req->rq_relay);
	admit_free(&req->rq_adm);
	free(req->rq_abandoned);
	free(req->rq_answer);
	free(req->rq_close_reason);
	if (req->rq_refusal != &oom_refusal)
		free(req->rq_refusal);
	free(req->rq_path_model);
	config_unref(req->rq_cfg);
	*req->rq_prevp = req->rq_next;
	if (req->rq_next != NULL)
		req->rq_next->rq_prevp = req->rq_prevp;
	if (req->rq_streaming)
		metrics_add(METRIC_STREAMS, -1);
	free(req);
	loop->inflight--;
	metrics_add(METRIC_IN_FLIGHT, -1);
}

/* Ends a request (REQ_CLOSING, from drive() only): settle its usage
 * record, give back what admission held, and hand the request to the
 * loop's journal write, which finishes or abandons the reply and frees it
 * once the record is journaled (request_loop_flush). reason is NULL on
 * success. */
static void
request_close(struct request *req, const char *reason)
{
	struct usage_record *rec = req->rq_rec;
	struct meter_end end = { .prompt_tokens = req->rq_adm.prompt_tokens,
				 .body_read = req->rq_adm.body_read };

	if (req->rq_relay != NULL) {
		relay_cancel(req->rq_relay);
		relay_meter(req->rq_relay, &end);
	}
	if (req->rq_ep->op == EP_COUNT_TOKENS)
		/* A count uses no tokens, whatever its answer says. */
		end = (struct meter_end){ .upstream_status =
						  end.upstream_status };
	meter_settle(rec, &end);
	admit_release(&req->rq_adm, req->rq_id,
		      rec->usage.prompt + rec->usage.completion);
	rec->latency_ms = (clock_mono_us() - req->rq_start_mono_us) / 1000;
	if (reason != NULL && rec->error == NULL)
		rec->error = strdup(reason);
	account(req, reason);
	if (req->rq_refused)
		admit_count_refusal(&req->rq_adm, rec);
	if (req->rq_refused && rec->tenant_id == 0) {
		/* Without a key: a count, not a record (refusals.c). */
		refusals_note(req->rq_peer);
		meter_record_free(rec);
		req->rq_rec = NULL;
		finish_reply(req, reason);
		request_free(req);
		return;
	}
	/* On record first, then the client hears the end: the records of
	 * the requests that end in this loop pass are journaled together,
	 * and the first of them schedules the write. (Without memory for
	 * the reason, an error reply says "Internal error.") */
	if (reason != NULL)
		req->rq_close_reason = strdup(reason);
	if (req->rq_loop->closing == NULL)
		event_active(req->rq_loop->close_ev, EV_TIMEOUT, 0);
	req->rq_close_next = req->rq_loop->closing;
	req->rq_loop->closing = req;
}

static void
close_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	request_loop_flush(arg);
}

int
request_loop_init(struct request_loop *loop)
{
	loop->close_ev = event_new(loop->base, -1, 0, close_cb, loop);
	return loop->close_ev != NULL ? 0 : -1;
}

void
request_loop_flush(struct request_loop *loop)
{
	struct usage_record *recs[64];

	while (loop->closing != NULL) {
		struct request *reqs[64], *req = loop->closing;
		int n = 0;

		/* Oldest first: the list is newest first. */
		for (; req != NULL && n < 64; req = req->rq_close_next)
			reqs[n++] = req;
		loop->closing = req;
		for (int i = 0; i < n; i++) {
			recs[i] = reqs[n - 1 - i]->rq_rec;
			reqs[n - 1 - i]->rq_rec = NULL;
		}
		spool_submit(recs, n);
		for (int i = n - 1; i >= 0; i--) {
			finish_reply(reqs[i], reqs[i]->rq_close_reason);
			request_free(reqs[i]);
		}
	}
}

void
request_loop_free(struct request_loop *loop)
{
	if (loop->close_ev != NULL)
		event_free(loop->close_ev);
	loop->close_ev = NULL;
}

/* Ends every request of the loop not parked on the quota thread. */
void
request_cut_all(struct request_loop *loop, const char *reason)
{
	struct request *req = loop->requests, *next;

	for (; req != NULL; req = next) {
		next = req->rq_next;
		if (req->rq_state != REQ_QUOTA &&
		    req->rq_state != REQ_ABANDONED)
			drive(req, EV_CUT, reason);
	}
}
