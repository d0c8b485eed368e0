/*
 * provider.c - request rewriting and connection settings per provider.
 *
 * The client's body is forwarded as written: only the model value is
 * replaced and, where needed, stream_options is added or completed. The
 * edits are made on the raw bytes (json.h), so numbers, key order and
 * unknown fields reach the provider untouched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Builds the upstream body. */
char *
provider_rewrite_body(const struct provider_conf *p, enum wire w,
		      const char *body, size_t len, const cJSON *json,
		      const char *model, int *injected, size_t *outlen)
{
	size_t ms, me, ss = 0, se = 0;
	struct buf out = BUF_INIT;
	char *mq = NULL, *so_text = NULL;
	int stream =
		cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "stream"));
	int has_so, model_added = 0;
	long end;
	cJSON *mj;

	*injected = 0;
	if (buf_reserve(&out, len + 128) != 0)
		return NULL;
	if (json_member_span(body, len, "model", &ms, &me) != 0) {
		/* No model (Azure's shape names it in the path): insert one
		 * right after the opening brace. */
		const char *b = memchr(body, '{', len);
		if (b == NULL)
			goto fail;
		ms = me = (size_t)(b - body) + 1;
		model_added = 1;
	}
	mj = cJSON_CreateString(model);
	mq = cJSON_PrintUnformatted(mj);
	cJSON_Delete(mj);
	if (mq == NULL)
		goto fail;
	if (model_added) {
		/* "model":"X" plus a comma unless the object is empty. */
		size_t q = strlen(mq), rest = ms;
		char *m2 = malloc(q + 10);
		while (rest < len && (body[rest] == ' ' || body[rest] == '\t' ||
				      body[rest] == '\n' || body[rest] == '\r'))
			rest++;
		if (m2 == NULL)
			goto fail;
		snprintf(m2, q + 10, "\"model\":%s%s", mq,
			 rest < len && body[rest] == '}' ? "" : ",");
		cJSON_free(mq);
		mq = m2;
	}

	has_so = json_member_span(body, len, "stream_options", &ss, &se) == 0;
	/* Chat and legacy completions streams carry usage only when asked;
	 * the Responses API always reports it (and takes no such option). */
	if (stream && (w == WIRE_OPENAI_CHAT || w == WIRE_OPENAI_COMPLETIONS) &&
	    flavor_needs_include_usage(p->flavor) && !p->no_stream_options &&
	    !client_include_usage(json)) {
		*injected = 1;
		if (has_so) {
			/* Keep the client's other options; switch usage on. */
			cJSON *so = cJSON_Duplicate(
				cJSON_GetObjectItemCaseSensitive(
					json, "stream_options"),
				1);
			if (!cJSON_IsObject(so)) {
				cJSON_Delete(so);
				so = cJSON_CreateObject();
			}
			cJSON_DeleteItemFromObjectCaseSensitive(
				so, "include_usage");
			cJSON_AddTrueToObject(so, "include_usage");
			so_text = cJSON_PrintUnformatted(so);
			cJSON_Delete(so);
			if (so_text == NULL)
				goto fail;
		}
	}

	/* Copy the body, replacing the spans in order of position. */
	{
		size_t cuts[2][2] = { { ms, me }, { ss, se } };
		const char *reps[2] = { mq, so_text };
		int order[2] = { 0, 1 }, nrep = so_text != NULL ? 2 : 1;
		size_t pos = 0;

		if (nrep == 2 && ss < ms) {
			order[0] = 1;
			order[1] = 0;
		}
		for (int i = 0; i < nrep; i++) {
			int k = order[i];
			buf_add(&out, body + pos, cuts[k][0] - pos);
			buf_str(&out, reps[k]);
			pos = cuts[k][1];
		}
		if (*injected && !has_so) {
			static const char add[] =
				",\"stream_options\":{\"include_usage\":true}";
			end = json_object_end(body, len);
			if (end < 0 || (size_t)end < pos)
				goto fail;
			buf_add(&out, body + pos, (size_t)end - pos);
			buf_add(&out, add, sizeof add - 1);
			pos = (size_t)end;
		}
		buf_add(&out, body + pos, len - pos);
	}
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
wire_path(enum wire w)
{
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
 * and the wire's path; for Azure the deployment path and api-version. */
char *
provider_url(const struct provider_conf *p, enum wire uw, const char *model)
{
	const char *path = wire_path(uw);
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
