/*
 * reply.c - answers in the shape of the API the client called (reply.h).
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>

#include "buf.h"
#include "clock.h"
#include "http_parse.h"
#include "httpd.h"
#include "ratelimit.h"
#include "reply.h"
#include "translate.h"

/* Bytes unique to this thread and moment, should OpenSSL fail to give
 * random ones: ids must still differ (splitmix64 of the time, the thread
 * and a count). */
static void
fallback_bytes(unsigned char *p, size_t n)
{
	static __thread uint64_t count;
	uint64_t x = (uint64_t)clock_wall_us() ^ (uint64_t)(uintptr_t)&count;

	for (size_t i = 0; i < n; i++) {
		uint64_t z = x + 0x9e3779b97f4a7c15ULL * ++count;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		p[i] = (unsigned char)(z ^ (z >> 31));
	}
}

/* Writes a new random request id. */
void
reply_request_id(char id[REPLY_ID_SIZE])
{
	/* Random bytes are drawn from OpenSSL 256 ids at a time: each draw
	 * costs a system call (its check for a fork). */
	static __thread unsigned char pool[12 * 256];
	static __thread size_t left;
	unsigned char raw[12];

	if (left < sizeof raw) {
		if (RAND_bytes(pool, sizeof pool) != 1)
			fallback_bytes(pool, sizeof pool);
		left = sizeof pool;
	}
	memcpy(raw, pool + sizeof pool - left, sizeof raw);
	left -= sizeof raw;
	memcpy(id, "req_", 4);
	hex_text(id + 4, raw, sizeof raw);
}

/* Appends an error object in the wire's shape and a newline to out. */
void
reply_error_json(struct evbuffer *out, enum wire wire,
		 const struct reply_error *e)
{
	cJSON *root = cJSON_CreateObject(), *err = cJSON_CreateObject();
	char *text;

	if (wire == WIRE_ANTHROPIC) {
		cJSON_AddStringToObject(root, "type", "error");
		cJSON_AddStringToObject(err, "type",
					tr_anthropic_error_type(e->status));
		cJSON_AddStringToObject(err, "message", e->message);
	} else {
		cJSON_AddStringToObject(err, "message", e->message);
		cJSON_AddStringToObject(err, "type", e->type);
		if (e->param != NULL)
			cJSON_AddStringToObject(err, "param", e->param);
		else
			cJSON_AddNullToObject(err, "param");
		if (e->code != NULL)
			cJSON_AddStringToObject(err, "code", e->code);
		else
			cJSON_AddNullToObject(err, "code");
	}
	cJSON_AddItemToObject(root, "error", err);
	text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (text != NULL) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
	}
	cJSON_free(text);
}

/* The error for a request the server refused for its framing or its
 * time: PRODUCT's invalid_request_error for what the client sent,
 * request_timeout for a deadline, too_many_connections for a limit. */
struct reply_error
reply_from_server(const struct hp_error *e)
{
	struct reply_error err = { e->status, "invalid_request_error",
				   "invalid_request_error", NULL, e->message };

	if (e->status == 408) {
		err.code = "request_timeout";
	} else if (e->status >= 500) {
		err.type = "server_error";
		err.code = e->status == 503 ? "too_many_connections" : NULL;
	}
	return err;
}

/* Sends a whole reply. */
void
reply_send(struct hreq *req, int status, const char *ctype,
	   struct evbuffer *body)
{
	if (ctype != NULL)
		evhttp_add_header(hreq_output_headers(req), "Content-Type",
				  ctype);
	hreq_send(req, status, body);
}

/* Sends an error reply in the wire's shape. */
void
reply_error(struct hreq *req, enum wire wire, const struct reply_error *err)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf != NULL)
		reply_error_json(buf, wire, err);
	reply_send(req, err->status, "application/json", buf);
	if (buf != NULL)
		evbuffer_free(buf);
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

/* Adds one kind's limit, remaining and reset headers. */
static void
add_limit(struct evkeyvalq *out, const char *kind, int64_t limit,
	  int64_t remaining, int64_t reset_ms)
{
	char name[48], v[32];

	snprintf(name, sizeof name, "x-ratelimit-limit-%s", kind);
	snprintf(v, sizeof v, "%lld", (long long)limit);
	evhttp_add_header(out, name, v);
	snprintf(name, sizeof name, "x-ratelimit-remaining-%s", kind);
	snprintf(v, sizeof v, "%lld", (long long)remaining);
	evhttp_add_header(out, name, v);
	snprintf(name, sizeof name, "x-ratelimit-reset-%s", kind);
	format_reset(reset_ms, v, sizeof v);
	evhttp_add_header(out, name, v);
}

/* Adds the x-ratelimit-* headers of the tightest limit. */
void
reply_ratelimit_headers(struct evkeyvalq *out, const struct rl_status *st)
{
	if (st->limit_requests > 0)
		add_limit(out, "requests", st->limit_requests,
			  st->remaining_requests, st->reset_requests_ms);
	if (st->limit_tokens > 0)
		add_limit(out, "tokens", st->limit_tokens, st->remaining_tokens,
			  st->reset_tokens_ms);
}
