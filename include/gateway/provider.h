/*
 * provider.h - what differs between providers on the way out: the URL,
 * the credential header, and the body rewrite (model name, and
 * stream_options.include_usage where the flavor only reports stream usage
 * when asked).
 */
#ifndef TOLLGATE_PROVIDER_H
#define TOLLGATE_PROVIDER_H

#include <stddef.h>
#include <curl/curl.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "tollgate.h"

struct provider_conf;
struct route_conf;
struct route_target;

/* A request body to send upstream, and what the gateway decided on it. */
struct upstream_body {
	enum wire wire;   /* the provider's wire */
	const char *body; /* the client's bytes */
	size_t len;
	const cJSON *json;   /* body parsed, for reading */
	const char *model;   /* the upstream model */
	int stream;          /* the client asked for a stream */
	const int64_t *caps; /* the caps the client set (body.h) */
	int64_t cap;         /* the cap to set, 0 for none */
};

/* The body to send upstream: the client's bytes with the model's value
 * replaced, for a stream to a flavor that needs it include_usage switched
 * on, and with ub->cap > 0 that cap set in each cap member the client set,
 * or in the one the provider reads (OpenAI and Azure chat:
 * max_completion_tokens; other chat, completions and Anthropic:
 * max_tokens; Responses: max_output_tokens). *injected tells whether the
 * gateway asked for usage the client had not. Returns a malloc'd string
 * (length in *outlen) or NULL. */
char *provider_rewrite_body(const struct provider_conf *p,
			    const struct upstream_body *ub, int *injected,
			    size_t *outlen);

/* The wire a request sent in the client's wire cw travels in to p (the
 * same, or the other chat wire where translate.h carries it), or -1 when
 * p cannot serve such a request. */
int provider_upstream_wire(const struct provider_conf *p, enum wire cw);

/* The full upstream URL for a request in wire uw asking for op to the
 * upstream model (Azure: the deployment). malloc'd. */
char *provider_url(const struct provider_conf *p, enum wire uw,
		   enum endpoint_op op, const char *model);

/* Request headers for the provider: content type, user agent, its
 * credential header (Bearer, x-api-key or api-key), and for Anthropic
 * anthropic-version and the client's anthropic-beta (may be NULL).
 * (Accept-Encoding is upstream.c's.) */
struct curl_slist *provider_headers(const struct provider_conf *p,
				    const char *beta);

/* The index of the first target of route, from index from on, whose
 * provider takes requests sent in the client's wire cw; -1 when none. */
int provider_first_target(const struct route_conf *route, int from,
			  enum wire cw);

/* The model to ask a target for: its own, or the requested one when the
 * target names "*". Borrowed. */
const char *provider_target_model(const struct route_target *t,
				  const char *requested);

#endif
