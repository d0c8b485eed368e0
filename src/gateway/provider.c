/*
 * provider.c - request rewriting and connection settings per provider.
 *
 * The client's body is forwarded as written: only the model value is
 * replaced and, where needed, stream_options is added or completed and
 * the output cap reserved under a hard quota set. The edits are made on
 * the raw bytes (json.h), so numbers, key order and unknown fields reach
 * the provider untouched; body.c made sure those bytes mean one thing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "buf.h"
#include "config.h"
#include "json.h"
#include "provider.h"
#include "usage.h"

/* Whether the client asked for a stream with include_usage on. */
static int
client_include_usage(const cJSON *json)
{
	const cJSON *so =
		cJSON_GetObjectItemCaseSensitive(json, "stream_options");
	return cJSON_IsTrue(
		cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
}

/* The cap members to set on a request going to p in wire w: each one the
 * client set, and the one the provider reads when the client set none
 * (OpenAI's chat takes max_completion_tokens, the compatible providers
 * max_tokens). Returns how many were written to names. */
static int
cap_members(const struct provider_conf *p, enum wire w, const int64_t *caps,
	    const char **names)
{
	int n = 0;

	switch (w) {
	case WIRE_OPENAI_RESPONSES:
		names[n++] = body_cap_name(BODY_MAX_OUTPUT_TOKENS);
		return n;
	case WIRE_ANTHROPIC:
	case WIRE_OPENAI_COMPLETIONS:
		names[n++] = body_cap_name(BODY_MAX_TOKENS);
		return n;
	case WIRE_OPENAI_EMBEDDINGS:
		return 0;
	case WIRE_OPENAI_CHAT:
		break;
	}
	if (caps[BODY_MAX_TOKENS] > 0)
		names[n++] = body_cap_name(BODY_MAX_TOKENS);
	if (caps[BODY_MAX_COMPLETION_TOKENS] > 0 ||
	    (n == 0 &&
	     (p->flavor == FLAVOR_OPENAI || p->flavor == FLAVOR_AZURE)))
		names[n++] = body_cap_name(BODY_MAX_COMPLETION_TOKENS);
	if (n == 0)
		names[n++] = body_cap_name(BODY_MAX_TOKENS);
	return n;
}

/* The stream_options to send: the client's with include_usage on. */
static char *
usage_stream_options(const cJSON *json)
{
	cJSON *so = cJSON_Duplicate(
		cJSON_GetObjectItemCaseSensitive(json, "stream_options"), 1);
	char *text;

	if (!cJSON_IsObject(so)) {
		cJSON_Delete(so);
		so = cJSON_CreateObject();
	}
	cJSON_DeleteItemFromObjectCaseSensitive(so, "include_usage");
	cJSON_AddTrueToObject(so, "include_usage");
	text = cJSON_PrintUnformatted(so);
	cJSON_Delete(so);
	return text;
}

/* Builds the upstream body. */
char *
provider_rewrite_body(const struct provider_conf *p,
		      const struct upstream_body *ub, int *injected,
		      size_t *outlen)
{
	struct json_edit e[2 + BODY_CAP__COUNT];
	const char *caps[BODY_CAP__COUNT];
	struct buf out = BUF_INIT;
	char *mq = NULL, *so_text = NULL, cap[24];
	int n = 0, ncaps;
	cJSON *mj;

	*injected = 0;
	if (buf_reserve(&out, ub->len + 128) != 0)
		return NULL;
	mj = cJSON_CreateString(ub->model);
	mq = cJSON_PrintUnformatted(mj);
	cJSON_Delete(mj);
	if (mq == NULL)
		goto fail;
	e[n++] = (struct json_edit){ .name = "model", .value = mq };
	/* Chat and legacy completions streams carry usage only when asked;
	 * the Responses API always reports it (and takes no such option). */
	if (ub->stream &&
	    (ub->wire == WIRE_OPENAI_CHAT ||
	     ub->wire == WIRE_OPENAI_COMPLETIONS) &&
	    flavor_needs_include_usage(p->flavor) && !p->no_stream_options &&
	    !client_include_usage(ub->json)) {
		*injected = 1;
		so_text = usage_stream_options(ub->json);
		if (so_text == NULL)
			goto fail;
		e[n++] = (struct json_edit){ .name = "stream_options",
					     .value = so_text };
	}
	if (ub->cap > 0) {
		snprintf(cap, sizeof cap, "%lld", (long long)ub->cap);
		ncaps = cap_members(p, ub->wire, ub->caps, caps);
		for (int i = 0; i < ncaps; i++)
			e[n++] = (struct json_edit){ .name = caps[i],
						     .value = cap };
	}
	if (json_edit_members(ub->body, ub->len, e, n, &out) != 0)
		goto fail;
	cJSON_free(mq);
	cJSON_free(so_text);
	return buf_detach(&out, outlen);
fail:
	cJSON_free(mq);
	cJSON_free(so_text);
	buf_free(&out);
	return NULL;
}

/* The path of a wire's endpoint under a provider's base URL. */
static const char *
wire_path(enum wire w, enum endpoint_op op)
{
	if (op == EP_COUNT_TOKENS)
		return "/messages/count_tokens";
	switch (w) {
	case WIRE_OPENAI_CHAT:
		return "/chat/completions";
	case WIRE_OPENAI_COMPLETIONS:
		return "/completions";
	case WIRE_OPENAI_EMBEDDINGS:
		return "/embeddings";
	case WIRE_OPENAI_RESPONSES:
		return "/responses";
	case WIRE_ANTHROPIC:
		return "/messages";
	}
	return "/";
}

/* The wire a request the client sent in wire cw travels in to p: the
 * same when p speaks it, the other chat wire when translate.c can carry
 * it there, else -1. */
int
provider_upstream_wire(const struct provider_conf *p, enum wire cw)
{
	switch (p->type) {
	case PROVIDER_ANTHROPIC:
		if (cw == WIRE_ANTHROPIC || cw == WIRE_OPENAI_CHAT)
			return WIRE_ANTHROPIC;
		return -1;
	case PROVIDER_OPENAI:
		return cw == WIRE_ANTHROPIC ? WIRE_OPENAI_CHAT : (int)cw;
	case PROVIDER_AZURE:
	case PROVIDER_OPENAI_COMPATIBLE:
		if (cw == WIRE_OPENAI_RESPONSES)
			return -1;
		return cw == WIRE_ANTHROPIC ? WIRE_OPENAI_CHAT : (int)cw;
	}
	return -1;
}

/* The upstream URL for a request in wire uw to upstream model: base_url
 * and the wire's path (op's); for Azure the deployment path and
 * api-version. */
char *
provider_url(const struct provider_conf *p, enum wire uw, enum endpoint_op op,
	     const char *model)
{
	const char *path = wire_path(uw, op);
	char *dep = NULL, *url;
	size_t n;

	if (p->type != PROVIDER_AZURE) {
		n = strlen(p->base_url) + strlen(path) + 1;
		url = malloc(n);
		if (url != NULL)
			snprintf(url, n, "%s%s", p->base_url, path);
		return url;
	}
	dep = curl_easy_escape(NULL, model, 0);
	if (dep == NULL)
		return NULL;
	n = strlen(p->base_url) + strlen(dep) + strlen(path) +
	    strlen(p->api_version) + 48;
	url = malloc(n);
	if (url != NULL)
		snprintf(url, n, "%s/openai/deployments/%s%s?api-version=%s",
			 p->base_url, dep, path, p->api_version);
	curl_free(dep);
	return url;
}

/* Headers for the upstream request. */
struct curl_slist *
provider_headers(const struct provider_conf *p, const char *beta)
{
	struct curl_slist *h = NULL, *t;

	h = curl_slist_append(h, "Content-Type: application/json");
	if (h == NULL)
		return NULL;
	/* A header of the list rather than CURLOPT_USERAGENT, which curl
	 * formats twice for each request. */
	if ((t = curl_slist_append(
		     h, "User-Agent: tollgate/" PACKAGE_VERSION)) == NULL)
		goto fail;
	h = t;
	/* No "Expect: 100-continue" round trip for large bodies. */
	if ((t = curl_slist_append(h, "Expect:")) == NULL)
		goto fail;
	h = t;
	if (p->type == PROVIDER_ANTHROPIC) {
		char v[96];
		snprintf(v, sizeof v, "anthropic-version: %s",
			 p->anthropic_version);
		if ((t = curl_slist_append(h, v)) == NULL)
			goto fail;
		h = t;
		if (beta != NULL && strlen(beta) < 512) {
			char b[560];
			snprintf(b, sizeof b, "anthropic-beta: %s", beta);
			if ((t = curl_slist_append(h, b)) == NULL)
				goto fail;
			h = t;
		}
	}
	if (p->api_key != NULL) {
		/* Each type's own credential header. */
		const char *fmt = p->type == PROVIDER_ANTHROPIC
					  ? "x-api-key: %s"
				  : p->type == PROVIDER_AZURE
					  ? "api-key: %s"
					  : "Authorization: Bearer %s";
		size_t n = strlen(p->api_key) + 32;
		char *line = malloc(n);
		if (line == NULL)
			goto fail;
		snprintf(line, n, fmt, p->api_key);
		t = curl_slist_append(h, line);
		memset(line, 0, n);
		free(line);
		if (t == NULL)
			goto fail;
		h = t;
	}
	return h;
fail:
	curl_slist_free_all(h);
	return NULL;
}

/* The first target from index from on that takes the client's wire. */
int
provider_first_target(const struct route_conf *route, int from, enum wire cw)
{
	for (int i = from; i < route->ntargets; i++)
		if (provider_upstream_wire(route->targets[i].provider, cw) >= 0)
			return i;
	return -1;
}

/* The model a target is asked for. */
const char *
provider_target_model(const struct route_target *t, const char *requested)
{
	return strcmp(t->model, "*") == 0 ? requested : t->model;
}
