/*
 * reply.h - what goes back to a client, in the shape of the API it
 * called: errors (OpenAI's or Anthropic's), prepared bodies, the
 * x-ratelimit-* headers, reason phrases and request ids.
 *
 * Below both the dispatcher (http_server.c) and the request lifecycle
 * (request.c): it knows the server (httpd.h) and the wires, nothing of either.
 */
#ifndef TOLLGATE_REPLY_H
#define TOLLGATE_REPLY_H

#include "tollgate.h"

struct evbuffer;
struct hp_error;
struct hreq;
struct evkeyvalq;
struct rl_status;

#define REPLY_ID_SIZE 40

/* An error as the gateway answers it: status, OpenAI's type, code and
 * param (code and param may be NULL: JSON null), and the message. */
struct reply_error {
	int status;
	const char *type;
	const char *code;
	const char *param;
	const char *message;
};

/* Writes a fresh request id ("req_" and 24 hex digits) into id. */
void reply_request_id(char id[REPLY_ID_SIZE]);

/* Appends err in the wire's shape and a newline to out: OpenAI's
 * {"error":{"message","type","param","code"}}, or Anthropic's
 * {"type":"error","error":{"type","message"}} with the type its status
 * maps to. */
void reply_error_json(struct evbuffer *out, enum wire wire,
		      const struct reply_error *err);

/* The error to answer for a request the server itself refused (a
 * malformed head, a deadline, a connection limit): err's message is e's. */
struct reply_error reply_from_server(const struct hp_error *e);

/* Sends err as the whole reply (JSON, with its Content-Type). */
void reply_error(struct hreq *req, enum wire wire,
		 const struct reply_error *err);

/* Sends body (may be NULL) with status and content type. */
void reply_send(struct hreq *req, int status, const char *ctype,
		struct evbuffer *body);

/* Adds OpenAI's x-ratelimit-* headers for the tightest limit in st. */
void reply_ratelimit_headers(struct evkeyvalq *out, const struct rl_status *st);

#endif
