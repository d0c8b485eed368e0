/*
 * request.c - a request's life: admission, upstream transfer, relay,
 * metering, close.
 *
 * Principle: one function drives each step and one function ends a
 * request, request_close(), whatever happened: success, refusal, upstream
 * failure or a client that went away. It settles the usage record and hands
 * it to the writer, so every request that reached admission is recorded
 * exactly once.
 *
 * Streams are relayed event by event as they arrive: the SSE parser gives
 * each complete event's exact bytes, the usage tracker reads its usage, and
 * the event is forwarded untouched unless it is the usage the gateway asked
 * for on the client's behalf (dropped, or stripped when it rides with
 * content). When the client's connection holds more than stream_buffer
 * bytes unsent, the upstream transfer is paused and resumed once the
 * connection drained, so a slow client never makes the gateway hold a whole
 * response.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <fnmatch.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "config.h"
#include "estimate.h"
#include "http_server.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "pgwriter.h"
#include "price.h"
#include "provider.h"
#include "request.h"
#include "sse.h"
#include "translate.h"
#include "upstream.h"
#include "worker.h"

#define RESPONSE_MAX (64u << 20) /* largest non-streamed upstream body */
#define EVENT_MAX    (16u << 20) /* largest single SSE event */

/* Logs a line prefixed with the request id and tenant. */
void
rlog(const struct request *req, int level, const char *fmt, ...)
{
	char prefix[160];
	va_list ap;

	if (!log_enabled((enum log_level)level))
		return;
	snprintf(prefix, sizeof prefix, "%s tenant=%s ", req->rq_id,
		 req->rq_grant.tenant != NULL ? req->rq_grant.tenant : "-");
	va_start(ap, fmt);
	log_vmsg((enum log_level)level, prefix, fmt, ap);
	va_end(ap);
}

static int should_fall_back(const struct request *req, CURLcode result);
static int fall_back(struct request *req, CURLcode result);

/* Stops watching the client's socket. */
static void
unwatch_client(struct request *req)
{
	if (req->rq_watch != NULL) {
		event_free(req->rq_watch);
		req->rq_watch = NULL;
	}
}

/* The client's socket became readable while evhttp is not reading it
 * (it does not while a reply is pending): end of file means the client
 * left, before any byte or during a silent stretch of a stream. */
static void
client_watch(evutil_socket_t fd, short what, void *arg)
{
	struct request *req = arg;
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK);

	(void)what;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == EINTR))
		return;
	unwatch_client(req);
	if (n > 0)
		return; /* a pipelined request: not ours to judge */
	req->rq_rec->client_aborted = 1;
	req->rq_client_gone = 1;
	request_close(req, "client closed the connection");
}

/* Starts watching the client's socket for its leaving. */
static void
watch_client(struct request *req)
{
	struct evhttp_connection *evcon =
		evhttp_request_get_connection(req->rq_http);
	struct bufferevent *bev =
		evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;

	if (fd < 0)
		return;
	req->rq_watch = event_new(req->rq_worker->w_base, fd,
				  EV_READ | EV_PERSIST, client_watch, req);
	if (req->rq_watch != NULL)
		event_add(req->rq_watch, NULL);
}

/* The upstream's idle timer: a stream silent for idle_timeout (while the
 * gateway is not holding it back for a slow client) is ended. */
static void
upstream_idle(evutil_socket_t fd, short what, void *arg)
{
	struct request *req = arg;
	int64_t idle_us = req->rq_target->provider->idle_timeout_ms * 1000;
	int64_t quiet = clock_mono_us() - req->rq_last_rx_us;
	struct timeval tv;
	char msg[160];

	(void)fd;
	(void)what;
	if (req->rq_paused) {
		req->rq_last_rx_us = clock_mono_us();
		quiet = 0;
	}
	if (quiet < idle_us) {
		int64_t left = idle_us - quiet;
		tv.tv_sec = (time_t)(left / 1000000);
		tv.tv_usec = (suseconds_t)(left % 1000000);
		evtimer_add(req->rq_idle, &tv);
		return;
	}
	snprintf(msg, sizeof msg, "upstream idle timeout: provider '%s' sent "
		 "nothing for %lld ms", req->rq_target->provider->name,
		 (long long)req->rq_target->provider->idle_timeout_ms);
	if (req->rq_easy != NULL &&
	    should_fall_back(req, CURLE_OPERATION_TIMEDOUT)) {
		/* Silent before any byte: the next target may answer. */
		upstream_remove(req->rq_worker, req->rq_easy);
		curl_easy_cleanup(req->rq_easy);
		req->rq_easy = NULL;
		snprintf(req->rq_errbuf, sizeof req->rq_errbuf, "%s", msg);
		if (fall_back(req, CURLE_OPERATION_TIMEDOUT))
			return;
	}
	if (req->rq_state == REQ_RELAYING)
		request_close(req, msg);
	else
		request_refuse(req, 504, "upstream_error", "upstream_timeout",
			       NULL, msg);
}

/* The client's connection closed before the request was done. */
static void
client_closed(struct evhttp_connection *evcon, void *arg)
{
	struct request *req = arg;

	/* A request evhttp detached from its failed connection is ours to
	 * free; one still attached is freed with the connection. */
	if (evhttp_request_get_connection(req->rq_http) == NULL)
		evhttp_request_free(req->rq_http);
	req->rq_http = NULL;
	req->rq_rec->client_aborted = 1;
	request_close(req, "client closed the connection");
}

/* Prepares an OpenAI error and closes the request with that reason; the
 * error goes out once the record is journaled. */
void
request_refuse(struct request *req, int status, const char *type,
	       const char *code, const char *param, const char *message)
{
	req->rq_rec->status = status;
	if (req->rq_http != NULL && req->rq_state != REQ_RELAYING) {
		evbuffer_drain(req->rq_resp, evbuffer_get_length(req->rq_resp));
		http_error_json(req->rq_resp, req->rq_ep->wire, status, type,
				code, param, message);
		req->rq_reply_status = status;
		evhttp_add_header(evhttp_request_get_output_headers(req->rq_http),
				  "Content-Type", "application/json");
	}
	request_close(req, message);
}

/* Bytes waiting in the client connection's output buffer. */
static size_t
client_backlog(struct request *req)
{
	struct evhttp_connection *evcon;
	struct bufferevent *bev;

	if (req->rq_http == NULL)
		return 0;
	evcon = evhttp_request_get_connection(req->rq_http);
	bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	return bev != NULL ? evbuffer_get_length(bufferevent_get_output(bev))
			   : 0;
}

/* The client connection drained what it was given: resume upstream. */
static void
client_drained(struct evhttp_connection *evcon, void *arg)
{
	struct request *req = arg;

	if (req->rq_paused && req->rq_easy != NULL) {
		req->rq_paused = 0;
		/* curl schedules delivery of what it held through its timer. */
		curl_easy_pause(req->rq_easy, CURLPAUSE_CONT);
	}
}

/* Sends whatever relayed bytes are pending to the client. */
static void
flush_to_client(struct request *req)
{
	if (req->rq_http == NULL || evbuffer_get_length(req->rq_resp) == 0)
		return;
	evhttp_send_reply_chunk_with_cb(req->rq_http, req->rq_resp,
					client_drained, req);
}

/* Cross-format requests (translate.h): the request goes up in the
 * provider's wire; a buffered answer or error, or each stream event, comes
 * back in the client's. Metering reads the provider's wire before any of
 * this. */
static char *
translate_request(struct request *req, size_t *len)
{
	const struct provider_conf *p = req->rq_target->provider;
	char *cause = NULL, *body;

	if (req->rq_uwire == WIRE_ANTHROPIC)
		body = tr_chat_to_messages(req->rq_json,
					   req->rq_rec->upstream_model, len,
					   &cause);
	else
		body = tr_messages_to_chat(req->rq_json,
					   req->rq_rec->upstream_model,
					   req->rq_stream && !p->no_stream_options,
					   len, &cause);
	if (body == NULL) {
		free(req->rq_tr_cause);
		req->rq_tr_cause = cause != NULL ? cause
						 : strdup("out of memory");
	}
	return body;
}

/* Replaces the buffered upstream answer (parsed as body, NULL when it is
 * not JSON) by its translation into the client's wire. */
static void
translate_body(struct request *req, const cJSON *body)
{
	const char *raw = (const char *)evbuffer_pullup(req->rq_resp, -1);
	size_t rawlen = evbuffer_get_length(req->rq_resp), len = 0;
	int client_anthropic = req->rq_ep->wire == WIRE_ANTHROPIC;
	char *out = NULL, *cause = NULL;

	if (req->rq_status >= 200 && req->rq_status < 300 && body != NULL) {
		out = client_anthropic
			? tr_chat_resp_to_messages(body, req->rq_model, &len,
						   &cause)
			: tr_messages_resp_to_chat(body, req->rq_model,
						   req->rq_start_us / 1000000,
						   &len, &cause);
		if (out == NULL) {
			rlog(req, LOG_WARN, "cannot translate the provider's "
			     "answer: %s", cause ? cause : "out of memory");
			free(cause);
			req->rq_status = 502;
		}
	}
	if (out == NULL && req->rq_status >= 400)
		out = client_anthropic
			? tr_error_to_messages((int)req->rq_status, raw,
					       rawlen, &len)
			: tr_error_to_chat((int)req->rq_status, raw, rawlen,
					   &len);
	if (out == NULL)
		return;
	evbuffer_drain(req->rq_resp, rawlen);
	evbuffer_add(req->rq_resp, out, len);
	free(out);
	free(req->rq_ctype);
	req->rq_ctype = strdup("application/json");
}

/* Starts translating a stream into the client's wire. 0 or -1. */
static int
translate_stream_start(struct request *req)
{
	req->rq_tr = tr_stream_new(req->rq_ep->wire == WIRE_ANTHROPIC
					   ? TR_CHAT_TO_ANTHROPIC
					   : TR_ANTHROPIC_TO_CHAT,
				   req->rq_model, req->rq_client_usage,
				   req->rq_start_us / 1000000);
	return req->rq_tr != NULL ? 0 : -1;
}

/* One upstream event, translated into rq_resp (through a buffer the
 * request keeps for its whole stream). */
static void
translate_event(struct request *req, const struct sse_event *ev)
{
	struct buf *out = &req->rq_trout;

	if (ev->data == NULL)
		return;
	buf_reset(out, 0);
	if (tr_stream_event(req->rq_tr, ev->event, ev->data, ev->data_len,
			    out) == 0 && out->len > 0)
		evbuffer_add(req->rq_resp, out->data, out->len);
}

static void
translate_free(struct request *req)
{
	if (req->rq_tr != NULL)
		tr_stream_free(req->rq_tr);
	req->rq_tr = NULL;
	buf_free(&req->rq_trout);
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

/* One complete SSE event from upstream: meter it, then forward it as it
 * came, or without the usage the gateway asked for on its own. */
static int
relay_event(const struct sse_event *ev, void *arg)
{
	struct request *req = arg;
	int flags = 0;

	if (ev->data != NULL)
		flags = usage_stream_event(&req->rq_ust, ev->event, ev->data,
					   ev->data_len);
	/* The terminal event waits for the record to be journaled
	 * (request_close): a client never sees a stream end that is not
	 * on record. */
	if (flags & USAGE_EV_DONE)
		req->rq_hold = 1;
	if (ev->data != NULL && req->rq_rec->error == NULL &&
	    is_error_event(ev)) {
		char msg[320];
		snprintf(msg, sizeof msg, "upstream sent an error mid-stream: "
			 "%.*s", (int)(ev->data_len < 256 ? ev->data_len : 256),
			 ev->data);
		req->rq_rec->error = strdup(msg);
	}
	if (req->rq_tr != NULL) {
		translate_event(req, ev);
		return 0;
	}
	if (req->rq_injected_usage && (flags & USAGE_EV_USAGE_ONLY))
		return 0;
	if (req->rq_injected_usage && (flags & USAGE_EV_HAS_USAGE)) {
		char *stripped = usage_strip(ev->data, ev->data_len);
		if (stripped != NULL) {
			if (ev->event != NULL)
				evbuffer_add_printf(req->rq_resp, "event: %s\n",
						    ev->event);
			evbuffer_add_printf(req->rq_resp, "data: %s\n\n",
					    stripped);
			free(stripped);
			return 0;
		}
	}
	evbuffer_add(req->rq_resp, ev->raw, ev->raw_len);
	return 0;
}

/* Starts the streamed reply to the client with upstream's status. */
static void
start_relay(struct request *req)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req->rq_http);

	evhttp_add_header(out, "Content-Type",
			  req->rq_ctype != NULL ? req->rq_ctype
						: "text/event-stream");
	evhttp_add_header(out, "Cache-Control", "no-cache");
	evhttp_send_reply_start(req->rq_http, (int)req->rq_status,
				http_reason((int)req->rq_status));
	req->rq_state = REQ_RELAYING;
	req->rq_ttfb_us = clock_mono_us();
}

/* Whether the upstream response is an event stream to relay. */
static int
is_event_stream(const struct request *req)
{
	return req->rq_status >= 200 && req->rq_status < 300 &&
	       req->rq_ctype != NULL &&
	       strncasecmp(req->rq_ctype, "text/event-stream", 17) == 0;
}

/* curl delivers response body bytes. */
static size_t
upstream_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct request *req = arg;
	size_t n = size * nmemb;

	req->rq_last_rx_us = clock_mono_us();
	if (req->rq_http == NULL)
		return 0;
	if (req->rq_state == REQ_UPSTREAM) {
		curl_easy_getinfo(req->rq_easy, CURLINFO_RESPONSE_CODE,
				  &req->rq_status);
		req->rq_relay = is_event_stream(req);
		if (req->rq_relay) {
			req->rq_sse = sse_parser_new(EVENT_MAX, relay_event,
						     req);
			if (req->rq_sse == NULL ||
			    (req->rq_uwire != req->rq_ep->wire &&
			     translate_stream_start(req) != 0))
				return 0;
			start_relay(req);
		}
	}
	if (!req->rq_relay) {
		if (evbuffer_get_length(req->rq_resp) + n > RESPONSE_MAX)
			return 0;
		evbuffer_add(req->rq_resp, data, n);
		return n;
	}
	if (client_backlog(req) > (size_t)req->rq_cfg->stream_buffer) {
		req->rq_paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (sse_parser_feed(req->rq_sse, data, n) != 0)
		return 0;
	if (!req->rq_hold)
		flush_to_client(req);
	return n;
}

/* curl delivers one response header line. */
static size_t
upstream_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct request *req = arg;
	size_t n = size * nmemb, len = n;
	char **slot = NULL;
	const char *v;

	req->rq_last_rx_us = clock_mono_us();
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after 100 Continue): forget the last. */
		free(req->rq_ctype);
		free(req->rq_retry_after);
		req->rq_ctype = req->rq_retry_after = NULL;
		return n;
	}
	if (len > 13 && strncasecmp(line, "Content-Type:", 13) == 0) {
		slot = &req->rq_ctype;
		v = line + 13;
	} else if (len > 12 && strncasecmp(line, "Retry-After:", 12) == 0) {
		slot = &req->rq_retry_after;
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

/* Points the request at the first target from index i on whose provider
 * can serve its wire: provider, upstream model and wire, recorded as the
 * one serving. 0, or -1 when none is left. */
static int
use_target(struct request *req, int i)
{
	const struct route_conf *route = req->rq_route;
	struct usage_record *rec = req->rq_rec;

	for (; i < route->ntargets; i++) {
		const struct route_target *t = &route->targets[i];
		int uw = provider_upstream_wire(t->provider, req->rq_ep->wire);
		if (uw < 0)
			continue;
		req->rq_tidx = i;
		req->rq_target = t;
		req->rq_uwire = (enum wire)uw;
		free(rec->provider);
		free(rec->upstream_model);
		rec->provider = strdup(t->provider->name);
		/* A target model of "*" passes the requested name through. */
		rec->upstream_model = strdup(strcmp(t->model, "*") == 0
						     ? req->rq_model
						     : t->model);
		usage_stream_init(&req->rq_ust, req->rq_uwire,
				  t->provider->flavor);
		return 0;
	}
	return -1;
}

/* Forgets what a failed attempt left, before the next target. */
static void
reset_attempt(struct request *req)
{
	free(req->rq_upbody);
	req->rq_upbody = NULL;
	curl_slist_free_all(req->rq_hdrs);
	req->rq_hdrs = NULL;
	free(req->rq_ctype);
	free(req->rq_retry_after);
	req->rq_ctype = req->rq_retry_after = NULL;
	evbuffer_drain(req->rq_resp, evbuffer_get_length(req->rq_resp));
	if (req->rq_sse != NULL)
		sse_parser_free(req->rq_sse);
	req->rq_sse = NULL;
	if (req->rq_idle != NULL)
		event_free(req->rq_idle);
	req->rq_idle = NULL;
	translate_free(req);
	req->rq_status = 0;
	req->rq_relay = req->rq_paused = req->rq_hold = 0;
	req->rq_injected_usage = req->rq_delivered = 0;
	req->rq_errbuf[0] = '\0';
	req->rq_reply_status = 0;
}

/* Whether a finished attempt failed in a way the next target may fix: a
 * transfer error (connect, timeout) or a 5xx or 429 answer, before any
 * byte reached the client, with a target left to try. */
static int
should_fall_back(const struct request *req, CURLcode result)
{
	const struct route_conf *route = req->rq_route;

	if (req->rq_state != REQ_UPSTREAM || req->rq_http == NULL ||
	    route == NULL || req->rq_tidx + 1 >= route->ntargets)
		return 0;
	return result != CURLE_OK || req->rq_status == 429 ||
	       req->rq_status >= 500;
}

/* Builds and starts the upstream transfer. 0 or -1. */
static int
start_upstream(struct request *req)
{
	const struct provider_conf *p = req->rq_target->provider;
	size_t uplen = 0;
	char *url;
	CURL *easy;

	if (req->rq_uwire == req->rq_ep->wire)
		req->rq_upbody = provider_rewrite_body(
			p, req->rq_uwire, req->rq_body, req->rq_body_len,
			req->rq_json,
			req->rq_rec->upstream_model, &req->rq_injected_usage,
			&uplen);
	else
		req->rq_upbody = translate_request(req, &uplen);
	url = provider_url(p, req->rq_uwire, req->rq_rec->upstream_model);
	req->rq_hdrs = provider_headers(
		p, req->rq_ep->wire == WIRE_ANTHROPIC
			   ? evhttp_find_header(evhttp_request_get_input_headers(
						       req->rq_http),
					       "anthropic-beta")
			   : NULL);
	easy = curl_easy_init();
	if (req->rq_upbody == NULL || url == NULL || req->rq_hdrs == NULL ||
	    easy == NULL) {
		free(url);
		if (easy != NULL)
			curl_easy_cleanup(easy);
		return -1;
	}
	req->rq_easy = easy;
	curl_easy_setopt(easy, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->rq_upbody);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)uplen);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, req->rq_hdrs);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, upstream_write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, upstream_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, req);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, req);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->rq_errbuf);
	provider_setopt(p, easy, req->rq_stream);
	if (upstream_add(req->rq_worker, easy) != 0) {
		curl_easy_cleanup(easy);
		req->rq_easy = NULL;
		return -1;
	}
	req->rq_uplen = uplen;
	req->rq_state = REQ_UPSTREAM;
	req->rq_sent = 1;
	if (req->rq_stream) {
		int64_t ms = p->idle_timeout_ms;
		struct timeval tv = { (time_t)(ms / 1000),
				      (suseconds_t)(ms % 1000) * 1000 };
		req->rq_last_rx_us = clock_mono_us();
		req->rq_idle = evtimer_new(req->rq_worker->w_base,
					   upstream_idle, req);
		if (req->rq_idle != NULL)
			evtimer_add(req->rq_idle, &tv);
	}
	return 0;
}

/* The most tokens a request can use: its estimated prompt plus the
 * output it allows (max_tokens, or the configured cap when it sets none). */
static int64_t
worst_case_tokens(const struct request *req)
{
	static const char *const caps[] = { "max_completion_tokens",
					    "max_tokens", "max_output_tokens",
					    NULL };
	int64_t out = req->rq_cfg->default_output_cap;

	if (req->rq_ep->wire == WIRE_OPENAI_EMBEDDINGS)
		out = 0;
	for (int i = 0; caps[i] != NULL; i++) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(req->rq_json,
								  caps[i]);
		if (cJSON_IsNumber(m) && m->valuedouble >= 1 &&
		    m->valuedouble <= 1e9) {
			out = (int64_t)m->valuedouble;
			break;
		}
	}
	return estimate_prompt(req->rq_json, req->rq_ep->wire) + out;
}

/* Formats a duration as OpenAI's reset headers do: "20ms", "6s", "1m0s". */
static void
format_reset(int64_t ms, char *buf, size_t size)
{
	if (ms < 1000)
		snprintf(buf, size, "%lldms", (long long)ms);
	else if (ms < 60000)
		snprintf(buf, size, "%llds", (long long)((ms + 999) / 1000));
	else
		snprintf(buf, size, "%lldm%llds", (long long)(ms / 60000),
			 (long long)(ms % 60000 + 999) / 1000);
}

/* Adds the x-ratelimit-* headers of the tightest limit. */
static void
add_ratelimit_headers(struct request *req, const struct rl_status *st)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req->rq_http);
	char v[32];

	if (st->limit_requests > 0) {
		snprintf(v, sizeof v, "%lld", (long long)st->limit_requests);
		evhttp_add_header(out, "x-ratelimit-limit-requests", v);
		snprintf(v, sizeof v, "%lld", (long long)st->remaining_requests);
		evhttp_add_header(out, "x-ratelimit-remaining-requests", v);
		format_reset(st->reset_requests_ms, v, sizeof v);
		evhttp_add_header(out, "x-ratelimit-reset-requests", v);
	}
	if (st->limit_tokens > 0) {
		snprintf(v, sizeof v, "%lld", (long long)st->limit_tokens);
		evhttp_add_header(out, "x-ratelimit-limit-tokens", v);
		snprintf(v, sizeof v, "%lld", (long long)st->remaining_tokens);
		evhttp_add_header(out, "x-ratelimit-remaining-tokens", v);
		format_reset(st->reset_tokens_ms, v, sizeof v);
		evhttp_add_header(out, "x-ratelimit-reset-tokens", v);
	}
}

/* Checks the tenant's and the key's rate limits; refuses with 429 and
 * Retry-After what does not fit. 0 when admitted. */
static int
admit_rate_limits(struct request *req)
{
	const struct key_grant *g = &req->rq_grant;
	struct rl_status st;
	char msg[512], v[32];
	int64_t retry_s;

	if (ratelimit_admit(g->tenant_id, &g->rl_tenant, g->key_id, &g->rl_key,
			    req->rq_worst, clock_policy_ms(), &req->rq_rl,
			    &st) == 0) {
		req->rq_rl_held = 1;
		add_ratelimit_headers(req, &st);
		return 0;
	}
	add_ratelimit_headers(req, &st);
	if (strcmp(st.refused, "tokens") == 0 && st.retry_after_ms == 0) {
		snprintf(msg, sizeof msg, "Request too large: it may use %lld "
			 "tokens, more than the %s's limit of %lld tokens per "
			 "minute. Lower max_tokens or the prompt.",
			 (long long)req->rq_worst, st.scope,
			 (long long)st.limit);
		snprintf(req->rq_rec->refusal, sizeof req->rq_rec->refusal, "%s",
			 "rate_limit:tokens");
		request_refuse(req, 429, "tokens", "rate_limit_exceeded", NULL,
			       msg);
		return -1;
	}
	retry_s = (st.retry_after_ms + 999) / 1000;
	snprintf(v, sizeof v, "%lld", (long long)(retry_s > 0 ? retry_s : 1));
	evhttp_add_header(evhttp_request_get_output_headers(req->rq_http),
			  "Retry-After", v);
	if (strcmp(st.refused, "concurrency") == 0) {
		snprintf(msg, sizeof msg, "Too many concurrent requests for "
			 "this %s: limit %lld, in flight %lld. Please try "
			 "again shortly.", st.scope, (long long)st.limit,
			 (long long)st.used);
		snprintf(req->rq_rec->refusal, sizeof req->rq_rec->refusal, "%s",
			 "rate_limit:concurrency");
	} else {
		int tokens = strcmp(st.refused, "tokens") == 0;
		snprintf(msg, sizeof msg, "Rate limit reached for %s per "
			 "minute (%s) of this %s: Limit %lld, Used %lld, "
			 "Requested %lld. Please try again in %llds.",
			 st.refused, tokens ? "TPM" : "RPM", st.scope,
			 (long long)st.limit, (long long)st.used,
			 (long long)(tokens ? req->rq_worst : 1),
			 (long long)retry_s);
		snprintf(req->rq_rec->refusal, sizeof req->rq_rec->refusal,
			 "%s", tokens ? "rate_limit:tokens"
				      : "rate_limit:requests");
	}
	request_refuse(req, 429, st.refused, "rate_limit_exceeded", NULL, msg);
	return -1;
}

/* Authenticates, parses and routes; refuses what does not pass. Returns
 * 0 when the request may go upstream. */
static int
admit(struct request *req)
{
	const struct config *cfg = req->rq_cfg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req->rq_http);
	struct usage_record *rec = req->rq_rec;
	const struct route_conf *route;
	const cJSON *model, *so;
	const char *key;
	size_t keylen = 0;
	char msg[512];
	int depth;

	key = http_api_key(req->rq_http, &keylen);
	if (key == NULL) {
		request_refuse(req, 401, "invalid_request_error",
			       "invalid_api_key", NULL,
			       req->rq_ep->wire == WIRE_ANTHROPIC
			       ? "You didn't provide an API key. Send it as "
				 "'x-api-key: tg-...'."
			       : "You didn't provide an API key. Send it as "
				 "'Authorization: Bearer tg-...'.");
		return -1;
	}
	switch (keystore_lookup(key, keylen, &req->rq_grant)) {
	case KEY_OK:
		break;
	case KEY_EXPIRED:
		request_refuse(req, 401, "invalid_request_error",
			       "invalid_api_key", NULL,
			       "The API key has expired.");
		return -1;
	default:
		request_refuse(req, 401, "invalid_request_error",
			       "invalid_api_key", NULL,
			       "Incorrect API key provided.");
		return -1;
	}
	req->rq_authed = 1;
	rec->tenant_id = req->rq_grant.tenant_id;
	rec->key_id = req->rq_grant.key_id;
	rec->tenant = strdup(req->rq_grant.tenant);
	if (cfg->db_down_refuse && !pgwriter_db_ok()) {
		snprintf(rec->refusal, sizeof rec->refusal, "ledger");
		request_refuse(req, 503, "server_error", "ledger_unavailable",
			       NULL, "The usage ledger is unreachable and this "
			       "gateway is set to refuse requests meanwhile "
			       "(on_db_down = refuse). Please try again "
			       "shortly.");
		return -1;
	}

	req->rq_body_len = evbuffer_get_length(in);
	if (req->rq_body_len > (size_t)cfg->max_body_size) {
		snprintf(msg, sizeof msg, "Request body of %zu bytes exceeds "
			 "the limit of %lld bytes.", req->rq_body_len,
			 (long long)cfg->max_body_size);
		request_refuse(req, 413, "invalid_request_error",
			       "invalid_request_error", NULL, msg);
		return -1;
	}
	req->rq_body = malloc(req->rq_body_len + 1);
	if (req->rq_body == NULL) {
		request_refuse(req, 500, "server_error", NULL, NULL,
			       "Out of memory.");
		return -1;
	}
	evbuffer_copyout(in, req->rq_body, req->rq_body_len);
	req->rq_body[req->rq_body_len] = '\0';

	depth = json_depth(req->rq_body, req->rq_body_len);
	if (depth > cfg->max_json_depth) {
		snprintf(msg, sizeof msg, "Request body nests deeper than %lld "
			 "levels.", (long long)cfg->max_json_depth);
		request_refuse(req, 400, "invalid_request_error",
			       "invalid_request_error", NULL, msg);
		return -1;
	}
	req->rq_json = depth < 0 ? NULL
				 : cJSON_ParseWithLength(req->rq_body,
							 req->rq_body_len);
	if (!cJSON_IsObject(req->rq_json)) {
		request_refuse(req, 400, "invalid_request_error",
			       "invalid_request_error", NULL,
			       "We could not parse the JSON body of your "
			       "request. The body must be a JSON object.");
		return -1;
	}
	model = cJSON_GetObjectItemCaseSensitive(req->rq_json, "model");
	if (req->rq_path_model != NULL) {
		/* Azure's shape: the deployment in the path is the model. */
		req->rq_model = req->rq_path_model;
	} else if (!cJSON_IsString(model) || *model->valuestring == '\0') {
		request_refuse(req, 400, "invalid_request_error",
			       "invalid_request_error", "model",
			       "You must provide a model parameter.");
		return -1;
	} else {
		req->rq_model = model->valuestring;
	}
	rec->requested_model = strdup(req->rq_model);
	req->rq_stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
		req->rq_json, "stream"));
	rec->streamed = req->rq_stream;
	so = cJSON_GetObjectItemCaseSensitive(req->rq_json, "stream_options");
	req->rq_client_usage = cJSON_IsTrue(
		cJSON_GetObjectItemCaseSensitive(so, "include_usage"));

	if (!keystore_model_allowed(&req->rq_grant, req->rq_model)) {
		snprintf(msg, sizeof msg, "This API key is not allowed to use "
			 "the model '%.200s'.", req->rq_model);
		request_refuse(req, 403, "invalid_request_error",
			       "model_not_allowed", "model", msg);
		return -1;
	}
	route = config_route(cfg, req->rq_model);
	if (route == NULL) {
		snprintf(msg, sizeof msg, "The model '%.200s' does not exist "
			 "or you do not have access to it.", req->rq_model);
		request_refuse(req, 404, "invalid_request_error",
			       "model_not_found", "model", msg);
		return -1;
	}
	req->rq_route = route;
	if (use_target(req, 0) != 0) {
		snprintf(msg, sizeof msg, "The model '%.200s' is served by "
			 "provider '%s', which does not take %s requests.",
			 req->rq_model, route->targets[0].provider->name,
			 req->rq_ep->path);
		request_refuse(req, 400, "invalid_request_error",
			       "unsupported_endpoint", "model", msg);
		return -1;
	}
	req->rq_worst = worst_case_tokens(req);
	return admit_rate_limits(req);
}

/* Starts the upstream transfer, or refuses when it cannot start. */
static void
go_upstream(struct request *req)
{
	char msg[512];

	if (start_upstream(req) == 0)
		return;
	if (req->rq_tr_cause != NULL) {
		snprintf(msg, sizeof msg, "The request cannot be sent to "
			 "provider '%s' in its API: %s",
			 req->rq_target->provider->name, req->rq_tr_cause);
		request_refuse(req, 400, "invalid_request_error",
			       "invalid_request_error", NULL, msg);
		return;
	}
	request_refuse(req, 502, "upstream_error", "upstream_error", NULL,
		       "Could not start the upstream request.");
}

/* The quota thread answered: go on, or refuse. */
static void
quota_done(evutil_socket_t fd, short what, void *arg)
{
	struct request *req = arg;
	struct quota_job *job = &req->rq_qjob;
	char msg[512], v[160];

	event_free(job->ev);
	job->ev = NULL;
	req->rq_state = REQ_ADMISSION;
	if (job->status == 0)
		req->rq_quota_held = 1;
	if (req->rq_close_pending) {
		char *reason = req->rq_close_reason;
		req->rq_close_pending = 0;
		req->rq_close_reason = NULL;
		request_close(req, reason);
		free(reason);
		return;
	}
	if (job->status == 1 && job->spend) {
		char used[32], lim[32];
		price_format(job->used + job->reserved, used, sizeof used);
		price_format(job->limit, lim, sizeof lim);
		snprintf(msg, sizeof msg, "You exceeded quota %lld: %s of its "
			 "spend limit of %s (in your billing currency) used or "
			 "reserved in this period.", (long long)job->quota_id,
			 used, lim);
		snprintf(req->rq_rec->refusal, sizeof req->rq_rec->refusal,
			 "quota:%lld", (long long)job->quota_id);
		request_refuse(req, 429, "insufficient_quota",
			       "insufficient_quota", NULL, msg);
		return;
	}
	if (job->status == 1) {
		snprintf(msg, sizeof msg, "You exceeded quota %lld: %lld of "
			 "%lld tokens used or reserved in this period, and this "
			 "request may use %lld.", (long long)job->quota_id,
			 (long long)(job->used + job->reserved),
			 (long long)job->limit, (long long)job->tokens);
		snprintf(req->rq_rec->refusal, sizeof req->rq_rec->refusal,
			 "quota:%lld", (long long)job->quota_id);
		request_refuse(req, 429, "insufficient_quota",
			       "insufficient_quota", NULL, msg);
		return;
	}
	if (job->status < 0 && !job->any_hard) {
		/* Soft quotas only warn: serve while their state is away. */
		rlog(req, LOG_WARN, "quota state unreachable; soft quotas not "
		     "checked for this request");
	} else if (job->status < 0) {
		snprintf(req->rq_rec->refusal, sizeof req->rq_rec->refusal,
			 "quota:unavailable");
		request_refuse(req, 503, "server_error", "quota_unavailable",
			       NULL, "The quota state cannot be reached; "
			       "please try again shortly.");
		return;
	}
	if (job->soft_exceeded) {
		snprintf(v, sizeof v, "quota %lld exceeded: %lld of %lld "
			 "tokens used or reserved", (long long)job->quota_id,
			 (long long)(job->used + job->reserved + job->tokens),
			 (long long)job->limit);
		evhttp_add_header(evhttp_request_get_output_headers(req->rq_http),
				  "x-tollgate-quota-warning", v);
		rlog(req, LOG_WARN, "soft %s", v);
		metrics_soft_quota();
	}
	go_upstream(req);
}

/* Parks the request while its worst case is reserved against the quotas
 * that apply to it. Returns 1 when parked, 0 when no quota applies. */
static int
park_for_quotas(struct request *req)
{
	const struct key_grant *g = &req->rq_grant;
	struct quota_job *job = &req->rq_qjob;

	int leasable = 1;

	memset(job, 0, sizeof *job);
	for (int i = 0; i < g->nquotas && job->n < QUOTA_MAX; i++) {
		const struct quota_ref *r = &g->quotas[i];
		if (r->model_pattern[0] != '\0' &&
		    fnmatch(r->model_pattern, req->rq_model, 0) != 0)
			continue;
		job->ids[job->n++] = r->id;
		/* Soft quotas warn and spend is settled by the ledger: those
		 * are reserved per request. */
		if (!r->hard || r->spend)
			leasable = 0;
		if (r->hard)
			job->any_hard = 1;
	}
	if (job->n == 0)
		return 0;
	job->tokens = req->rq_worst;
	if (leasable && quota_lease_take(job->ids, job->n, job->tokens,
					 clock_policy_ms())) {
		req->rq_lease_held = 1;
		return 0;
	}
	memcpy(job->request_id, req->rq_id, sizeof job->request_id);
	job->tokens = req->rq_worst;
	snprintf(job->provider, sizeof job->provider, "%s",
		 req->rq_rec->provider);
	snprintf(job->model, sizeof job->model, "%s",
		 req->rq_rec->upstream_model);
	job->now_ms = clock_policy_ms();
	job->ev = event_new(req->rq_worker->w_base, -1, 0, quota_done, req);
	if (job->ev == NULL)
		return 0;
	req->rq_state = REQ_QUOTA;
	quota_reserve(job);
	return 1;
}

/* Handles a data-plane request for a known endpoint. */
void
request_start(struct worker *w, struct evhttp_request *http,
	      const struct endpoint *ep, const char *path_model)
{
	struct request *req = calloc(1, sizeof *req);
	struct evhttp_connection *evcon = evhttp_request_get_connection(http);

	if (req == NULL || (req->rq_rec = meter_record_new()) == NULL ||
	    (req->rq_resp = evbuffer_new()) == NULL) {
		if (req != NULL) {
			meter_record_free(req->rq_rec);
			free(req);
		}
		http_reply_error(http, ep->wire, 500, "server_error", NULL,
				 NULL, "Out of memory.");
		return;
	}
	req->rq_worker = w;
	req->rq_cfg = config_ref(w->w_cfg);
	if (path_model != NULL)
		req->rq_path_model = strdup(path_model);
	req->rq_http = http;
	req->rq_ep = ep;
	req->rq_state = REQ_ADMISSION;
	req->rq_start_us = clock_wall_us();
	req->rq_start_mono_us = clock_mono_us();
	http_request_id(req->rq_id);
	memcpy(req->rq_rec->request_id, req->rq_id, sizeof req->rq_id);
	req->rq_rec->ts_us = req->rq_start_us;
	req->rq_rec->endpoint = ep->name;
	w->w_inflight++;
	req->rq_next = w->w_requests;
	if (w->w_requests != NULL)
		w->w_requests->rq_prevp = &req->rq_next;
	req->rq_prevp = &w->w_requests;
	w->w_requests = req;
	evhttp_add_header(evhttp_request_get_output_headers(http),
			  "x-request-id", req->rq_id);
	evhttp_connection_set_closecb(evcon, client_closed, req);
	watch_client(req);

	if (admit(req) != 0)
		return;
	if (park_for_quotas(req))
		return;
	go_upstream(req);
}

/* Meters the buffered upstream response and readies it to go out, as
 * the provider sent it, once the record is journaled. */
static void
prepare_buffered(struct request *req)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req->rq_http);
	size_t len = evbuffer_get_length(req->rq_resp);
	cJSON *body;

	body = cJSON_ParseWithLength(
		(const char *)evbuffer_pullup(req->rq_resp, -1), len);
	if (body != NULL) {
		struct usage u;
		if (usage_from_body(body, req->rq_uwire,
				    req->rq_target->provider->flavor, &u)) {
			req->rq_ust.last = u;
			req->rq_ust.last.present = 1;
		} else if (req->rq_status >= 200 && req->rq_status < 300) {
			req->rq_ust.text_tokens = estimate_output(
				body, req->rq_uwire);
		}
		if (req->rq_uwire != req->rq_ep->wire)
			translate_body(req, body);
		cJSON_Delete(body);
	} else if (req->rq_uwire != req->rq_ep->wire &&
		   req->rq_status >= 400) {
		translate_body(req, NULL);
	}
	evhttp_add_header(out, "Content-Type",
			  req->rq_ctype != NULL ? req->rq_ctype
						: "application/json");
	if (req->rq_retry_after != NULL)
		evhttp_add_header(out, "Retry-After", req->rq_retry_after);
	req->rq_reply_status = (int)req->rq_status;
	req->rq_ttfb_us = clock_mono_us();
}

/* Notes whether the provider got the whole request, and so may bill it:
 * it answered, or the body went out in full. */
static void
note_delivery(struct request *req)
{
	curl_off_t up = 0;

	if (req->rq_easy == NULL || req->rq_delivered)
		return;
	if (req->rq_status != 0 ||
	    (curl_easy_getinfo(req->rq_easy, CURLINFO_SIZE_UPLOAD_T, &up) ==
		     CURLE_OK && up >= (curl_off_t)req->rq_uplen))
		req->rq_delivered = 1;
}

/* Moves a failed attempt on to the route's next target. Returns 1 when
 * the next attempt started (or the request was closed trying), 0 when no
 * target was left to try. */
static int
fall_back(struct request *req, CURLcode result)
{
	const struct route_target *failed = req->rq_target;
	char why[CURL_ERROR_SIZE + 32];

	if (result != CURLE_OK)
		snprintf(why, sizeof why, "%s", req->rq_errbuf[0]
			 ? req->rq_errbuf : curl_easy_strerror(result));
	else
		snprintf(why, sizeof why, "HTTP %ld", req->rq_status);
	if (use_target(req, req->rq_tidx + 1) != 0)
		return 0;
	req->rq_rec->failed_attempts++;
	rlog(req, LOG_WARN, "target %s:%s failed (%s); falling back to %s:%s",
	     failed->provider->name, failed->model, why,
	     req->rq_target->provider->name, req->rq_target->model);
	reset_attempt(req);
	if (start_upstream(req) != 0)
		request_refuse(req, 502, "upstream_error", "upstream_error",
			       NULL, "Could not start the upstream request.");
	return 1;
}

/* The upstream transfer ended (curl removed it from the multi handle). */
void
request_upstream_done(struct request *req, CURLcode result)
{
	char msg[CURL_ERROR_SIZE + 128];

	if (req->rq_status == 0)
		curl_easy_getinfo(req->rq_easy, CURLINFO_RESPONSE_CODE,
				  &req->rq_status);
	note_delivery(req);
	curl_easy_cleanup(req->rq_easy);
	req->rq_easy = NULL;

	if (req->rq_state == REQ_RELAYING) {
		if (result != CURLE_OK) {
			snprintf(msg, sizeof msg, "upstream stream failed: %s",
				 req->rq_errbuf[0] ? req->rq_errbuf
						   : curl_easy_strerror(result));
			request_close(req, msg);
			return;
		}
		request_close(req, NULL);
		return;
	}
	if (req->rq_http == NULL) {
		request_close(req, "client closed the connection");
		return;
	}
	if (should_fall_back(req, result) && fall_back(req, result))
		return;
	if (result != CURLE_OK) {
		int timeout = result == CURLE_OPERATION_TIMEDOUT;
		snprintf(msg, sizeof msg, "Upstream provider '%s' failed: %s",
			 req->rq_target->provider->name,
			 req->rq_errbuf[0] ? req->rq_errbuf
					   : curl_easy_strerror(result));
		request_refuse(req, timeout ? 504 : 502, "upstream_error",
			       timeout ? "upstream_timeout" : "upstream_error",
			       NULL, msg);
		return;
	}
	prepare_buffered(req);
	request_close(req, NULL);
}

/* Whether a request without reported usage is billed by estimate: the
 * provider got it and either succeeded (a silent provider, a cut stream)
 * or lost its client while it worked. Refusals, provider errors and
 * requests that never reached the provider bill zero. */
static int
needs_estimate(const struct request *req)
{
	if (!req->rq_delivered || req->rq_json == NULL)
		return 0;
	if (req->rq_status >= 200 && req->rq_status < 300)
		return 1;
	return req->rq_status == 0 && req->rq_rec->client_aborted;
}

/* Sends what the request has for its client, after the record is on
 * record: the end of a relayed stream, a prepared reply, or an error. */
static void
finish_reply(struct request *req, const char *reason)
{
	struct evhttp_request *http = req->rq_http;

	if (http == NULL)
		return;
	req->rq_http = NULL;
	evhttp_connection_set_closecb(evhttp_request_get_connection(http),
				      NULL, NULL);
	if (req->rq_state == REQ_RELAYING) {
		size_t plen = 0;
		const char *pending = sse_parser_pending(req->rq_sse, &plen);
		/* A cut stream's unterminated tail goes out as it came. */
		if (pending != NULL && plen > 0)
			evbuffer_add(req->rq_resp, pending, plen);
		if (evbuffer_get_length(req->rq_resp) > 0)
			evhttp_send_reply_chunk(http, req->rq_resp);
		evhttp_send_reply_end(http);
	} else if (req->rq_reply_status != 0) {
		evhttp_send_reply(http, req->rq_reply_status,
				  http_reason(req->rq_reply_status),
				  req->rq_resp);
	} else {
		http_reply_error(http, req->rq_ep->wire, 500, "server_error",
				 NULL, NULL,
				 reason != NULL ? reason : "Internal error.");
	}
}

/* Ends a request: settle its usage record, journal it, then finish or
 * abandon the reply, and free. */
void
request_close(struct request *req, const char *reason)
{
	struct usage_record *rec = req->rq_rec;
	int64_t end = clock_mono_us();
	struct worker *w = req->rq_worker;
	enum request_state state = req->rq_state;

	if (state == REQ_CLOSED)
		return;
	if (state == REQ_QUOTA) {
		/* The quota thread still holds this request: finish when its
		 * answer arrives (quota_done). */
		req->rq_close_pending = 1;
		if (req->rq_close_reason == NULL && reason != NULL)
			req->rq_close_reason = strdup(reason);
		return;
	}
	unwatch_client(req);
	if (req->rq_idle != NULL) {
		event_free(req->rq_idle);
		req->rq_idle = NULL;
	}
	if (req->rq_easy != NULL) {
		note_delivery(req);
		upstream_remove(w, req->rq_easy);
		curl_easy_cleanup(req->rq_easy);
		req->rq_easy = NULL;
	}

	if (rec->status == 0)
		rec->status = (int)req->rq_status;
	if (req->rq_ust.last.present) {
		rec->usage = req->rq_ust.last;
		rec->source = USAGE_REPORTED;
	} else if (needs_estimate(req)) {
		rec->usage.prompt = estimate_prompt(req->rq_json,
						    req->rq_ep->wire);
		rec->usage.completion = req->rq_ust.text_tokens;
		rec->source = USAGE_ESTIMATED;
	}
	if (req->rq_lease_held) {
		quota_lease_return(req->rq_qjob.ids, req->rq_qjob.n,
				   req->rq_qjob.tokens,
				   rec->usage.prompt + rec->usage.completion);
		req->rq_lease_held = 0;
	}
	if (req->rq_quota_held) {
		quota_settle(req->rq_id, rec->usage.prompt + rec->usage.completion);
		req->rq_quota_held = 0;
	}
	if (req->rq_rl_held) {
		ratelimit_settle(&req->rq_rl,
				 rec->usage.prompt + rec->usage.completion,
				 clock_policy_ms());
		req->rq_rl_held = 0;
	}
	rec->latency_ms = (end - req->rq_start_mono_us) / 1000;
	if (req->rq_ttfb_us > 0)
		rec->ttfb_ms = (req->rq_ttfb_us - req->rq_start_mono_us) / 1000;
	if (reason != NULL && rec->error == NULL)
		rec->error = strdup(reason);
	rlog(req, reason != NULL && rec->status < 400 ? LOG_WARN : LOG_INFO,
	     "%s %s model=%s provider=%s status=%d prompt=%lld "
	     "completion=%lld %s ms=%lld%s%s", rec->endpoint,
	     rec->streamed ? "stream" : "json",
	     rec->requested_model ? rec->requested_model : "-",
	     rec->provider ? rec->provider : "-", rec->status,
	     (long long)rec->usage.prompt, (long long)rec->usage.completion,
	     meter_source_name(rec->source), (long long)rec->latency_ms,
	     reason ? " reason=" : "", reason ? reason : "");
	metrics_count(rec);
	/* On record first, then the client hears the end. */
	pgwriter_submit(rec);
	req->rq_rec = NULL;
	finish_reply(req, reason);
	req->rq_state = REQ_CLOSED;

	keystore_grant_clear(&req->rq_grant);
	cJSON_Delete(req->rq_json);
	free(req->rq_body);
	free(req->rq_upbody);
	curl_slist_free_all(req->rq_hdrs);
	free(req->rq_ctype);
	free(req->rq_retry_after);
	free(req->rq_close_reason);
	free(req->rq_path_model);
	free(req->rq_tr_cause);
	translate_free(req);
	if (req->rq_sse != NULL)
		sse_parser_free(req->rq_sse);
	evbuffer_free(req->rq_resp);
	config_unref(req->rq_cfg);
	*req->rq_prevp = req->rq_next;
	if (req->rq_next != NULL)
		req->rq_next->rq_prevp = req->rq_prevp;
	free(req);
	w->w_inflight--;
}

/* Closes every request of the worker that is not parked on the quota
 * thread, with reason (shutdown at the end of its bound). Streams end
 * where they are and are billed by estimate. */
void
request_cut_all(struct worker *w, const char *reason)
{
	struct request *req = w->w_requests, *next;

	for (; req != NULL; req = next) {
		next = req->rq_next;
		if (req->rq_state == REQ_QUOTA)
			continue;
		if (req->rq_state == REQ_RELAYING || req->rq_http == NULL)
			request_close(req, reason);
		else
			request_refuse(req, 503, "server_error",
				       "shutting_down", NULL, reason);
	}
}
