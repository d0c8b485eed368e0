/*
 * relay.c - an admitted request's upstream transfer: the call, the answer
 * relayed, usage read on the way, fallback.
 *
 * Principle: the client receives exactly what the provider sent (or its
 * translation into the client's API), and the gateway reads every usage
 * count on the way without ever holding a whole stream.
 *
 * A transfer goes through phases (enum phase). A call starts WAITING; its
 * first body byte decides: an event stream is relayed (STREAMING), any
 * other answer is buffered whole (BUFFERING) and, once complete, metered
 * and translated into a prepared reply (ANSWERED) that goes out after the
 * request's record is journaled. Streams are relayed event by event as
 * they arrive: the SSE parser gives each complete event's exact bytes, the
 * usage tracker reads its usage, and the event is forwarded untouched
 * unless it is the usage the gateway asked for on the client's behalf
 * (dropped, or stripped when it rides with content). The terminal event
 * moves the stream to HOLDING: what follows waits for the record, so a
 * client never sees a stream end that is not on record. When the client's
 * connection holds more than stream_buffer bytes unsent, the call is
 * paused and resumed once the connection drained, so a slow client never
 * makes the gateway hold a whole response.
 *
 * A call that fails before any byte reached the client (a transfer error,
 * 5xx or 429, silence past idle_timeout) moves to the route's next target
 * that takes the endpoint, if there is one; the record names the target
 * that served and counts the failed attempts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admit.h"
#include "clock.h"
#include "config.h"
#include "estimate.h"
#include "httpd.h"
#include "log.h"
#include "meter.h"
#include "provider.h"
#include "relay.h"
#include "sse.h"
#include "translate.h"
#include "upstream.h"
#include "usage.h"

#define RESPONSE_MAX (64u << 20) /* largest non-streamed upstream body */
#define EVENT_MAX    (16u << 20) /* largest single SSE event */

/* Where a transfer is. */
enum phase {
	PH_IDLE,      /* no call yet, or between a failed target and the next */
	PH_WAITING,   /* a call runs; no body byte has come */
	PH_BUFFERING, /* a whole answer is being read */
	PH_STREAMING, /* events go to the client as they come */
	PH_HOLDING,   /* the stream's terminal event came: the rest waits */
	PH_STREAMED,  /* the stream's call ended */
	PH_ANSWERED,  /* a buffered answer is ready to go out */
	PH_FAILED,    /* the call failed and no target is left */
};

struct relay {
	struct relay_input in;
	enum phase phase;
	int target; /* the route target being tried */
	const struct route_target *t;
	enum wire uwire; /* the wire upstream speaks */
	struct upstream_call call;
	char *upbody; /* body sent upstream */
	size_t uplen;
	struct curl_slist *hdrs;
	char *ctype; /* upstream Content-Type */
	char *retry_after;
	int injected_usage;       /* the gateway added include_usage */
	int over;                 /* the stream passed its reservation: cut */
	int64_t delivered_tokens; /* output estimated before the last event */
	int paused;               /* the call waits for the client */
	struct event *idle;       /* a stream's idle timer */
	int64_t last_rx_us;       /* last byte from upstream */
	struct evbuffer *out;     /* the buffered answer, or stream
				     bytes not yet sent */
	struct sse_parser *sse;
	struct usage_stream ust;
	struct tr_stream *tr; /* translating a stream */
	struct buf trout;     /* its output, one event at a time */
	char *tr_cause;       /* why the request cannot be
				 translated */
	char *reason;         /* why it failed or was cut, once it was */
};

static int fall_back(struct relay *r, CURLcode result);

/* Sets why the relay failed or was cut. */
static void __attribute__((format(printf, 2, 3)))
set_reason(struct relay *r, const char *fmt, ...)
{
	char text[CURL_ERROR_SIZE + 160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	free(r->reason);
	r->reason = strdup(text);
}

/* Why the relay failed or was cut, as text. */
static const char *
reason_text(const struct relay *r)
{
	return r->reason != NULL ? r->reason : "out of memory";
}

/* Logs a line about the relay's request. */
#define rlog(r, level, ...)                                                    \
	log_request(level, (r)->in.rec->request_id, (r)->in.rec->tenant,       \
		    __VA_ARGS__)

/* Reports the end of the transfer; the relay may be freed by the time
 * this returns. */
static void
report(struct relay *r, enum relay_outcome outcome, int status,
       const char *type, const char *code)
{
	struct relay_end end;

	memset(&end, 0, sizeof end);
	end.outcome = outcome;
	end.reason = r->reason;
	end.err.status = status;
	end.err.type = type;
	end.err.code = code;
	end.err.message = reason_text(r);
	if (outcome == RELAY_FAILED)
		r->phase = PH_FAILED;
	r->in.events->done(r->in.arg, &end);
}

/* Whether events are being relayed to the client. */
static int
streaming(const struct relay *r)
{
	return r->phase == PH_STREAMING || r->phase == PH_HOLDING ||
	       r->phase == PH_STREAMED;
}

/* Bytes waiting in the client connection's output buffer. */
static size_t
client_backlog(const struct relay *r)
{
	return r->in.http != NULL ? hreq_backlog(r->in.http) : 0;
}

/* The client connection drained what it was given: resume upstream. */
static void
client_drained(void *arg)
{
	struct relay *r = arg;

	if (r->paused) {
		r->paused = 0;
		upstream_resume(&r->call);
	}
}

/* Sends whatever relayed bytes are pending to the client. */
static void
flush_to_client(struct relay *r)
{
	if (r->in.http == NULL || evbuffer_get_length(r->out) == 0)
		return;
	hreq_stream_add(r->in.http, r->out);
}

/* The output cap the provider is sent instead of the request's own: the
 * one reserved under a hard quota, else 0 (none). */
static int64_t
sent_cap(const struct admission *a)
{
	return a->clamp ? a->out_cap : 0;
}

/* Cross-format requests (translate.h): the request goes up in the
 * provider's wire; a buffered answer or error, or each stream event, comes
 * back in the client's. Metering reads the provider's wire before any of
 * this. */
static char *
translate_request(struct relay *r, size_t *len)
{
	const struct admission *a = r->in.adm;
	const char *model = r->in.rec->upstream_model;
	char *cause = NULL, *body;
	int64_t cap = sent_cap(a);

	if (r->uwire == WIRE_ANTHROPIC)
		body = tr_chat_to_messages(a->json, model, cap, len, &cause);
	else
		body = tr_messages_to_chat(
			a->json, model,
			a->stream && !r->t->provider->no_stream_options, cap,
			len, &cause);
	if (body == NULL) {
		free(r->tr_cause);
		r->tr_cause = cause != NULL ? cause : strdup("out of memory");
	}
	return body;
}

/* Replaces the buffered answer (parsed as body, NULL when it is not JSON)
 * by its translation into the client's wire. */
static void
translate_body(struct relay *r, const cJSON *body)
{
	const char *raw = (const char *)evbuffer_pullup(r->out, -1);
	size_t rawlen = evbuffer_get_length(r->out), len = 0;
	int client_anthropic = r->in.ep->wire == WIRE_ANTHROPIC;
	const char *model = r->in.adm->model;
	long status = r->call.status;
	char *out = NULL, *cause = NULL;

	if (status >= 200 && status < 300 && body != NULL) {
		out = client_anthropic
			      ? tr_chat_resp_to_messages(body, model, &len,
							 &cause)
			      : tr_messages_resp_to_chat(
					body, model, r->in.start_us / 1000000,
					&len, &cause);
		if (out == NULL) {
			rlog(r, LOG_WARN,
			     "cannot translate the provider's answer: %s",
			     cause ? cause : "out of memory");
			free(cause);
			r->call.status = status = 502;
		}
	}
	if (out == NULL && status >= 400)
		out = client_anthropic ? tr_error_to_messages((int)status, raw,
							      rawlen, &len)
				       : tr_error_to_chat((int)status, raw,
							  rawlen, &len);
	if (out == NULL)
		return;
	evbuffer_drain(r->out, rawlen);
	evbuffer_add(r->out, out, len);
	free(out);
	free(r->ctype);
	r->ctype = strdup("application/json");
}

/* Whether an event reports an error: {"error": ...} in the data, as
 * OpenAI-style providers send mid-stream, or Anthropic's "error" event. */
static int
is_error_event(const struct sse_event *ev)
{
	const char *p = ev->data, *end = ev->data + ev->data_len;

	if (ev->event != NULL && strcmp(ev->event, "error") == 0)
		return 1;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || *p++ != '{')
		return 0;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n'))
		p++;
	return end - p >= 7 && memcmp(p, "\"error\"", 7) == 0;
}

/* Forwards an event carrying the usage the gateway asked for: dropped
 * when it carries only that, stripped of it when it rides with content.
 * Returns 1 when handled, 0 to forward the event as it came. */
static int
forward_injected(struct relay *r, const struct sse_event *ev, int flags)
{
	char *stripped;

	if (flags & USAGE_EV_USAGE_ONLY)
		return 1;
	if (!(flags & USAGE_EV_HAS_USAGE) ||
	    (stripped = usage_strip(ev->data, ev->data_len)) == NULL)
		return 0;
	if (ev->event != NULL)
		evbuffer_add_printf(r->out, "event: %s\n", ev->event);
	evbuffer_add_printf(r->out, "data: %s\n\n", stripped);
	free(stripped);
	return 1;
}

/* The output a request reserved: its cap for each of its outputs. */
static int64_t
reserved_output(const struct admission *a)
{
	return a->choices * a->out_cap;
}

/* Whether a stream has passed the output reserved for it under a hard
 * quota (a provider that ignores the cap it was sent): then it is cut
 * there, and the event that passed it is not forwarded. Text counted in
 * an encoding that is not the provider's own may count more than the
 * provider does: the reservation is then given the prompt's safety
 * factor before a stream that kept to its cap is taken for one that did
 * not. */
static int
past_reservation(struct relay *r)
{
	const struct admission *a = r->in.adm;
	int64_t limit = reserved_output(a);

	if (!r->ust.est->exact)
		limit = estimate_reserve(r->ust.est, limit);
	if (!a->clamp || r->ust.text_tokens <= limit)
		return 0;
	r->over = 1;
	set_reason(
		r,
		"stream cut at its reservation: the output passed the %lld tokens reserved under a hard quota",
		(long long)limit);
	free(r->in.rec->error);
	r->in.rec->error = strdup(reason_text(r));
	rlog(r, LOG_WARN, "%s (provider '%s')", reason_text(r),
	     r->t->provider->name);
	return 1;
}

/* The terminal error event of a stream cut at its reservation, in the
 * client's wire. */
static void
add_cut_event(struct relay *r)
{
	const struct admission *a = r->in.adm;
	cJSON *ev = cJSON_CreateObject(), *err = ev;
	char msg[256], *text;

	snprintf(
		msg, sizeof msg,
		"The output reached the %lld tokens reserved for this request under a hard quota, and the stream was ended there.",
		(long long)reserved_output(a));
	switch (r->in.ep->wire) {
	case WIRE_ANTHROPIC:
		cJSON_AddStringToObject(ev, "type", "error");
		err = cJSON_AddObjectToObject(ev, "error");
		cJSON_AddStringToObject(err, "type", "invalid_request_error");
		cJSON_AddStringToObject(err, "message", msg);
		break;
	case WIRE_OPENAI_RESPONSES:
		cJSON_AddStringToObject(ev, "type", "error");
		cJSON_AddStringToObject(ev, "code", "insufficient_quota");
		cJSON_AddStringToObject(ev, "message", msg);
		cJSON_AddNullToObject(ev, "param");
		break;
	default:
		err = cJSON_AddObjectToObject(ev, "error");
		cJSON_AddStringToObject(err, "message", msg);
		cJSON_AddStringToObject(err, "type", "insufficient_quota");
		cJSON_AddNullToObject(err, "param");
		cJSON_AddStringToObject(err, "code",
					"output_reserved_exceeded");
	}
	text = cJSON_PrintUnformatted(ev);
	cJSON_Delete(ev);
	if (text == NULL)
		return;
	evbuffer_add_printf(r->out, "%sdata: %s\n\n",
			    r->in.ep->wire == WIRE_ANTHROPIC ||
					    r->in.ep->wire ==
						    WIRE_OPENAI_RESPONSES
				    ? "event: error\n"
				    : "",
			    text);
	cJSON_free(text);
}

/* One complete SSE event from upstream: meter it, then forward it as it
 * came, translated, or without the usage the gateway asked for. */
static int
relay_event(const struct sse_event *ev, void *arg)
{
	struct relay *r = arg;
	struct usage_record *rec = r->in.rec;
	int flags = 0;

	if (r->over)
		return 0;
	r->delivered_tokens = r->ust.text_tokens;
	if (ev->data != NULL)
		flags = usage_stream_event(&r->ust, ev->event, ev->data,
					   ev->data_len);
	if (past_reservation(r))
		return 0;
	if ((flags & USAGE_EV_DONE) && r->phase == PH_STREAMING)
		r->phase = PH_HOLDING;
	if (ev->data != NULL && rec->error == NULL && is_error_event(ev)) {
		char msg[320];
		snprintf(msg, sizeof msg,
			 "upstream sent an error mid-stream: %.*s",
			 (int)(ev->data_len < 256 ? ev->data_len : 256),
			 ev->data);
		rec->error = strdup(msg);
	}
	if (r->tr != NULL) {
		if (ev->data == NULL)
			return 0;
		buf_reset(&r->trout, 0);
		if (tr_stream_event(r->tr, ev->event, ev->data, ev->data_len,
				    &r->trout) == 0 &&
		    r->trout.len > 0)
			evbuffer_add(r->out, r->trout.data, r->trout.len);
		return 0;
	}
	if (r->injected_usage && forward_injected(r, ev, flags))
		return 0;
	evbuffer_add(r->out, ev->raw, ev->raw_len);
	return 0;
}

/* Starts relaying a stream to the client with upstream's status. 0, or
 * -1 when out of memory. */
static int
start_stream(struct relay *r)
{
	struct evkeyvalq *out = hreq_output_headers(r->in.http);
	int status = (int)r->call.status;

	r->sse = sse_parser_new(EVENT_MAX, relay_event, r);
	if (r->sse == NULL)
		return -1;
	if (r->uwire != r->in.ep->wire) {
		r->tr = tr_stream_new(r->in.ep->wire == WIRE_ANTHROPIC
					      ? TR_CHAT_TO_ANTHROPIC
					      : TR_ANTHROPIC_TO_CHAT,
				      r->in.adm->model, r->in.adm->client_usage,
				      r->in.start_us / 1000000);
		if (r->tr == NULL)
			return -1;
		tr_stream_set_prompt(r->tr, r->in.adm->prompt_tokens);
	}
	evhttp_add_header(out, "Content-Type",
			  r->ctype != NULL ? r->ctype : "text/event-stream");
	evhttp_add_header(out, "Cache-Control", "no-cache");
	hreq_on_drained(r->in.http, client_drained, r);
	hreq_stream_start(r->in.http, status);
	r->phase = PH_STREAMING;
	r->in.rec->ttfb_ms = (clock_mono_us() - r->in.start_mono_us) / 1000;
	r->in.events->streaming(r->in.arg);
	return 0;
}

/* Whether the answer is an event stream to relay. */
static int
is_event_stream(const struct relay *r)
{
	return r->call.status >= 200 && r->call.status < 300 &&
	       r->ctype != NULL &&
	       strncasecmp(r->ctype, "text/event-stream", 17) == 0;
}

/* curl delivers response body bytes. */
static size_t
on_data(void *arg, const char *data, size_t n)
{
	struct relay *r = arg;

	r->last_rx_us = clock_mono_us();
	if (r->in.http == NULL)
		return 0;
	if (r->phase == PH_WAITING) {
		upstream_status(&r->call);
		r->phase = PH_BUFFERING;
		if (is_event_stream(r) && start_stream(r) != 0)
			return 0;
	}
	if (r->phase == PH_BUFFERING) {
		if (evbuffer_get_length(r->out) + n > RESPONSE_MAX)
			return 0;
		evbuffer_add(r->out, data, n);
		return n;
	}
	if (client_backlog(r) > (size_t)r->in.cfg->stream_buffer) {
		r->paused = 1;
		return UPSTREAM_PAUSE;
	}
	if (sse_parser_feed(r->sse, data, n) != 0 || r->over)
		return 0;
	if (r->phase == PH_STREAMING)
		flush_to_client(r);
	return n;
}

/* curl delivers one response header line: keep Content-Type and
 * Retry-After. */
static size_t
on_header(void *arg, const char *line, size_t n)
{
	struct relay *r = arg;
	size_t len = n;
	char **slot = NULL;
	const char *v;

	r->last_rx_us = clock_mono_us();
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after 100 Continue): forget the last. */
		free(r->ctype);
		free(r->retry_after);
		r->ctype = r->retry_after = NULL;
		return n;
	}
	if (len > 13 && strncasecmp(line, "Content-Type:", 13) == 0) {
		slot = &r->ctype;
		v = line + 13;
	} else if (len > 12 && strncasecmp(line, "Retry-After:", 12) == 0) {
		slot = &r->retry_after;
		v = line + 12;
	} else {
		return n;
	}
	while (v < line + len && (*v == ' ' || *v == '\t'))
		v++;
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' ||
			   line[len - 1] == ' '))
		len--;
	free(*slot);
	*slot = strndup(v, (size_t)(line + len - v));
	return n;
}

/* Meters the buffered answer and readies it to go out, as the provider
 * sent it (or translated), once the record is journaled. */
static void
prepare_answer(struct relay *r)
{
	struct evkeyvalq *out = hreq_output_headers(r->in.http);
	size_t len = evbuffer_get_length(r->out);
	long status = r->call.status;
	const char *text = (const char *)evbuffer_pullup(r->out, -1);
	cJSON *body = NULL;
	struct usage found;

	/* The common answer, relayed as it came with its usage at the top,
	 * is read without building its tree. */
	if (r->uwire == r->in.ep->wire &&
	    usage_from_text(text, len, r->uwire, &found)) {
		r->ust.last = found;
		r->ust.last.present = 1;
	} else if ((body = cJSON_ParseWithLength(text, len)) != NULL) {
		struct usage u;
		if (usage_from_body(body, r->uwire, r->t->provider->flavor,
				    &u)) {
			r->ust.last = u;
			r->ust.last.present = 1;
		} else if (status >= 200 && status < 300) {
			r->ust.text_tokens =
				estimate_output(body, r->uwire, r->ust.est);
		}
		if (r->uwire != r->in.ep->wire)
			translate_body(r, body);
		cJSON_Delete(body);
	} else if (r->uwire != r->in.ep->wire && status >= 400) {
		translate_body(r, NULL);
	}
	evhttp_add_header(out, "Content-Type",
			  r->ctype != NULL ? r->ctype : "application/json");
	if (r->retry_after != NULL)
		evhttp_add_header(out, "Retry-After", r->retry_after);
	r->phase = PH_ANSWERED;
	r->in.rec->ttfb_ms = (clock_mono_us() - r->in.start_mono_us) / 1000;
}

/* Whether the provider refused the gateway's own credential (401, 403):
 * that answer is the operator's to read, never the tenant's. */
static int
refused_credential(const struct relay *r)
{
	return r->call.status == 401 || r->call.status == 403;
}

/* Logs a provider's refusal of the gateway's credential with its whole
 * answer, which may quote parts of the provider key. */
static void
log_credential_refusal(struct relay *r)
{
	size_t len = evbuffer_get_length(r->out);

	rlog(r, LOG_ERROR,
	     "provider %s refused the gateway's credential (HTTP %ld): %.*s",
	     r->t->provider->name, r->call.status,
	     (int)(len > 4096 ? 4096 : len),
	     (const char *)evbuffer_pullup(r->out, -1));
}

/* Whether a failed call may be tried on the next target: a transfer
 * error (connect, timeout), a 5xx or 429 answer, or a refused credential,
 * before any byte reached the client, with a target left to try. */
static int
should_fall_back(const struct relay *r, CURLcode result)
{
	const struct route_conf *route = r->in.adm->route;

	if (r->phase != PH_WAITING && r->phase != PH_BUFFERING)
		return 0;
	if (r->in.http == NULL || r->target + 1 >= route->ntargets)
		return 0;
	return result != CURLE_OK || r->call.status == 429 ||
	       r->call.status >= 500 || refused_credential(r);
}

/* The call ended (upstream.c detached it). */
static void
on_done(void *arg, CURLcode result)
{
	struct relay *r = arg;

	if (streaming(r)) {
		r->phase = PH_STREAMED;
		if (r->over) {
			report(r, RELAY_CUT, 0, NULL, NULL);
			return;
		}
		if (result != CURLE_OK) {
			set_reason(r, "upstream stream failed: %s",
				   upstream_strerror(&r->call, result));
			report(r, RELAY_CUT, 0, NULL, NULL);
			return;
		}
		report(r, RELAY_REPLY, 0, NULL, NULL);
		return;
	}
	if (r->in.http == NULL) {
		set_reason(r, "client closed the connection");
		report(r, RELAY_CUT, 0, NULL, NULL);
		return;
	}
	if (result == CURLE_OK && refused_credential(r))
		log_credential_refusal(r);
	if (should_fall_back(r, result) && fall_back(r, result))
		return;
	if (result != CURLE_OK) {
		int timeout = result == CURLE_OPERATION_TIMEDOUT;
		set_reason(r, "Upstream provider '%s' failed: %s",
			   r->t->provider->name,
			   upstream_strerror(&r->call, result));
		report(r, RELAY_FAILED, timeout ? 504 : 502, "upstream_error",
		       timeout ? "upstream_timeout" : "upstream_error");
		return;
	}
	if (refused_credential(r)) {
		set_reason(
			r,
			"The upstream provider '%s' refused the gateway's credential; the gateway's operator has the details.",
			r->t->provider->name);
		report(r, RELAY_FAILED, 502, "upstream_error",
		       "upstream_auth_error");
		return;
	}
	prepare_answer(r);
	report(r, RELAY_REPLY, 0, NULL, NULL);
}

/* The idle timer: a stream silent for idle_timeout (while the gateway is
 * not holding it back for a slow client) is ended, or tried on the next
 * target when nothing reached the client yet. */
static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	const struct provider_conf *p = r->t->provider;
	int64_t idle_us = p->idle_timeout_ms * 1000;
	int64_t quiet = clock_mono_us() - r->last_rx_us;

	(void)fd;
	(void)what;
	if (r->paused) {
		r->last_rx_us = clock_mono_us();
		quiet = 0;
	}
	if (quiet < idle_us) {
		int64_t left = idle_us - quiet;
		struct timeval tv = { (time_t)(left / 1000000),
				      (suseconds_t)(left % 1000000) };
		evtimer_add(r->idle, &tv);
		return;
	}
	set_reason(
		r,
		"upstream idle timeout: provider '%s' sent nothing for %lld ms",
		p->name, (long long)p->idle_timeout_ms);
	if (r->call.easy != NULL &&
	    should_fall_back(r, CURLE_OPERATION_TIMEDOUT)) {
		/* Silent before any byte: the next target may answer. */
		upstream_cancel(&r->call);
		snprintf(r->call.errbuf, sizeof r->call.errbuf, "%.*s",
			 (int)sizeof r->call.errbuf - 1, reason_text(r));
		if (fall_back(r, CURLE_OPERATION_TIMEDOUT))
			return;
	}
	if (streaming(r))
		report(r, RELAY_CUT, 0, NULL, NULL);
	else
		report(r, RELAY_FAILED, 504, "upstream_error",
		       "upstream_timeout");
}

/* Points the relay at route target i: provider, upstream model and wire,
 * recorded as the one serving. */
static void
use_target(struct relay *r, int i)
{
	struct usage_record *rec = r->in.rec;
	const struct route_target *t = &r->in.adm->route->targets[i];

	r->target = i;
	r->t = t;
	r->uwire =
		(enum wire)provider_upstream_wire(t->provider, r->in.ep->wire);
	free(rec->provider);
	free(rec->upstream_model);
	rec->provider = strdup(t->provider->name);
	rec->upstream_model =
		strdup(provider_target_model(t, r->in.adm->model));
	usage_stream_init(&r->ust, r->uwire, t->provider->flavor);
	r->ust.est = estimate_for(rec->upstream_model);
}

/* Forgets what a failed attempt left, before the next target. */
static void
reset_attempt(struct relay *r)
{
	free(r->upbody);
	r->upbody = NULL;
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
	free(r->ctype);
	free(r->retry_after);
	r->ctype = r->retry_after = NULL;
	evbuffer_drain(r->out, evbuffer_get_length(r->out));
	if (r->idle != NULL)
		event_free(r->idle);
	r->idle = NULL;
	if (r->sse != NULL)
		sse_parser_free(r->sse);
	r->sse = NULL;
	if (r->tr != NULL)
		tr_stream_free(r->tr);
	r->tr = NULL;
	r->phase = PH_IDLE;
	r->paused = r->injected_usage = 0;
}

/* Builds and starts the call to the current target. 0 or -1. */
static int
start_call(struct relay *r)
{
	const struct provider_conf *p = r->t->provider;
	const struct admission *a = r->in.adm;
	const char *model = r->in.rec->upstream_model;
	const char *beta = NULL;
	char *url;
	int rc;

	if (r->uwire == r->in.ep->wire) {
		struct upstream_body ub = {
			.wire = r->uwire,
			.body = a->body,
			.len = a->body_len,
			.json = a->json,
			.model = model,
			.stream = a->stream,
			.caps = a->caps,
			.cap = sent_cap(a),
		};
		r->upbody = provider_rewrite_body(p, &ub, &r->injected_usage,
						  &r->uplen);
	} else {
		r->upbody = translate_request(r, &r->uplen);
	}
	if (r->in.ep->wire == WIRE_ANTHROPIC)
		beta = evhttp_find_header(hreq_input_headers(r->in.http),
					  "anthropic-beta");
	r->hdrs = provider_headers(p, beta);
	url = provider_url(p, r->uwire, r->in.ep->op, model);
	r->call.on_header = on_header;
	r->call.on_data = on_data;
	r->call.on_done = on_done;
	r->call.arg = r;
	rc = r->upbody == NULL || url == NULL || r->hdrs == NULL ||
			     upstream_start(r->in.upstream, &r->call, p, url,
					    r->hdrs, r->upbody, r->uplen,
					    a->stream) != 0
		     ? -1
		     : 0;
	free(url);
	if (rc != 0)
		return -1;
	r->phase = PH_WAITING;
	if (a->stream) {
		int64_t ms = p->idle_timeout_ms;
		struct timeval tv = { (time_t)(ms / 1000),
				      (suseconds_t)(ms % 1000) * 1000 };
		r->last_rx_us = clock_mono_us();
		r->idle = evtimer_new(r->in.base, idle_cb, r);
		if (r->idle != NULL)
			evtimer_add(r->idle, &tv);
	}
	return 0;
}

/* The route's first target from index from on that can serve the
 * request: one that takes its wire; for a count of tokens, one whose
 * provider counts them (Anthropic's). -1 when none is left. */
static int
next_target(const struct relay *r, int from)
{
	const struct route_conf *route = r->in.adm->route;
	int i = from;

	while ((i = provider_first_target(route, i, r->in.ep->wire)) >= 0 &&
	       r->in.ep->op == EP_COUNT_TOKENS &&
	       route->targets[i].provider->type != PROVIDER_ANTHROPIC)
		i++;
	return i;
}

/* Moves a failed call on to the route's next target. Returns 1 when the
 * next call started (or its failure was reported), 0 when no target was
 * left to try. */
static int
fall_back(struct relay *r, CURLcode result)
{
	const struct route_target *failed = r->t;
	int next = next_target(r, r->target + 1);
	char why[CURL_ERROR_SIZE + 32];

	if (next < 0)
		return 0;
	if (result != CURLE_OK)
		snprintf(why, sizeof why, "%s",
			 upstream_strerror(&r->call, result));
	else
		snprintf(why, sizeof why, "HTTP %ld", r->call.status);
	use_target(r, next);
	r->in.rec->failed_attempts++;
	rlog(r, LOG_WARN, "target %s:%s failed (%s); falling back to %s:%s",
	     failed->provider->name, failed->model, why, r->t->provider->name,
	     r->t->model);
	reset_attempt(r);
	if (start_call(r) != 0) {
		set_reason(r, "Could not start the upstream request.");
		report(r, RELAY_FAILED, 502, "upstream_error",
		       "upstream_error");
	}
	return 1;
}

/* A relay for an admitted request. */
struct relay *
relay_new(const struct relay_input *in)
{
	struct relay *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->in = *in;
	r->out = evbuffer_new();
	if (r->out == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

/* Starts the call to the first target. */
int
relay_start(struct relay *r, struct reply_error *err)
{
	use_target(r, r->in.adm->target);
	if (start_call(r) == 0)
		return 0;
	err->param = NULL;
	if (r->tr_cause != NULL) {
		set_reason(
			r,
			"The request cannot be sent to provider '%s' in its API: %s",
			r->t->provider->name, r->tr_cause);
		err->message = reason_text(r);
		err->status = 400;
		err->type = err->code = "invalid_request_error";
		return -1;
	}
	set_reason(r, "Could not start the upstream request.");
	err->message = reason_text(r);
	err->status = 502;
	err->type = err->code = "upstream_error";
	return -1;
}

/* A streamed reply started: no other target will be tried, so the body
 * sent upstream is freed once it is all out. */
void
relay_drop_body(struct relay *r)
{
	if (r != NULL && r->upbody != NULL && upstream_body_sent(&r->call)) {
		free(r->upbody);
		r->upbody = NULL;
	}
}

/* The client left. */
void
relay_client_gone(struct relay *r)
{
	r->in.http = NULL;
}

/* Stops a running transfer. */
void
relay_cancel(struct relay *r)
{
	if (r->idle != NULL)
		event_free(r->idle);
	r->idle = NULL;
	upstream_cancel(&r->call);
}

/* The output a stream cut at its reservation is billed: what reached the
 * client, up to what was reserved. */
static int64_t
cut_billed(const struct relay *r)
{
	int64_t reserved = reserved_output(r->in.adm);

	return r->delivered_tokens < reserved ? r->delivered_tokens : reserved;
}

/* What metering needs. */
void
relay_meter(const struct relay *r, struct meter_end *end)
{
	end->reported = r->ust.last;
	/* A stream cut at its reservation is billed what reached the
	 * client, up to the reservation (cut_billed). */
	end->output_tokens = r->over ? cut_billed(r) : r->ust.text_tokens;
	if (r->over && end->reported.present &&
	    end->reported.completion < end->output_tokens)
		end->reported.completion = end->output_tokens;
	end->delivered = r->call.sent_all;
	end->upstream_status = (int)r->call.status;
}

/* Finishes the client's reply. */
int
relay_finish(struct relay *r, struct hreq *http)
{
	if (streaming(r)) {
		size_t plen = 0;
		const char *pending = sse_parser_pending(r->sse, &plen);
		/* A cut stream's unterminated tail goes out as it came; one
		 * cut at its reservation ends with an error event. */
		if (r->over)
			add_cut_event(r);
		else if (pending != NULL && plen > 0)
			evbuffer_add(r->out, pending, plen);
		hreq_on_drained(http, NULL, NULL);
		hreq_stream_add(http, r->out);
		hreq_stream_end(http);
		return 0;
	}
	if (r->phase == PH_ANSWERED) {
		hreq_send(http, (int)r->call.status, r->out);
		return 0;
	}
	return -1;
}

/* Frees the relay; the call must have ended or been cancelled. */
void
relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	relay_cancel(r);
	free(r->upbody);
	curl_slist_free_all(r->hdrs);
	free(r->ctype);
	free(r->retry_after);
	free(r->tr_cause);
	free(r->reason);
	if (r->tr != NULL)
		tr_stream_free(r->tr);
	buf_free(&r->trout);
	if (r->sse != NULL)
		sse_parser_free(r->sse);
	evbuffer_free(r->out);
	free(r);
}
