/*
 * http_server.h - the data plane's HTTP side: dispatch by path, API key
 * extraction, and replies in the OpenAI error shape.
 */
#ifndef TOLLGATE_HTTP_SERVER_H
#define TOLLGATE_HTTP_SERVER_H

#include <stddef.h>
#include "usage.h"

struct worker;
struct evhttp_request;

/* Installs the dispatcher on the worker's evhttp. */
void http_server_setup(struct worker *w);

/* The API key the client presented (Authorization: Bearer, x-api-key or
 * api-key), or NULL. *len is set to its length. Borrowed from req. */
const char *http_api_key(struct evhttp_request *req, size_t *len);

/* Sends an error with status in the shape of the wire the client called:
 * OpenAI's {"error":{"message","type","param","code"}} (param and code may
 * be NULL: JSON null), or Anthropic's {"type":"error","error":{"type",
 * "message"}} with the type the status maps to. */
void http_reply_error(struct evhttp_request *req, enum wire wire, int status,
		      const char *type, const char *code, const char *param,
		      const char *message);

/* Appends that error object and a newline to out. */
struct evbuffer;
void http_error_json(struct evbuffer *out, enum wire wire, int status,
		     const char *type, const char *code, const char *param,
		     const char *message);


/* The HTTP reason phrase for a status code. */
const char *http_reason(int status);

/* Writes a fresh request id ("req_" and 24 hex digits) into id. */
void http_request_id(char id[40]);

#endif
