/*
 * http_server.c - the data plane's dispatcher: a request's method and path
 * pick its endpoint (request.c takes it from there), /v1/models, or an
 * error in the shape of the API the path belongs to.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <cjson/cJSON.h>

#include "admit.h"
#include "config.h"
#include "http_server.h"
#include "httpd.h"
#include "refusals.h"
#include "reply.h"
#include "request.h"

static const struct endpoint endpoints[] = {
	{ "/v1/chat/completions", "chat/completions", WIRE_OPENAI_CHAT,
	  EP_GENERATE },
	{ "/v1/completions", "completions", WIRE_OPENAI_COMPLETIONS,
	  EP_GENERATE },
	{ "/v1/embeddings", "embeddings", WIRE_OPENAI_EMBEDDINGS, EP_GENERATE },
	{ "/v1/responses", "responses", WIRE_OPENAI_RESPONSES, EP_GENERATE },
	{ "/v1/messages", "messages", WIRE_ANTHROPIC, EP_GENERATE },
	{ "/v1/messages/count_tokens", "messages/count_tokens", WIRE_ANTHROPIC,
	  EP_COUNT_TOKENS },
	/* Azure OpenAI's v1 surface, {endpoint}/openai/v1/<path> with or
	 * without api-version, and its Responses path before v1
	 * (/openai/responses?api-version=): the model is the body's. */
	{ "/openai/v1/chat/completions", "chat/completions", WIRE_OPENAI_CHAT,
	  EP_GENERATE },
	{ "/openai/v1/completions", "completions", WIRE_OPENAI_COMPLETIONS,
	  EP_GENERATE },
	{ "/openai/v1/embeddings", "embeddings", WIRE_OPENAI_EMBEDDINGS,
	  EP_GENERATE },
	{ "/openai/v1/responses", "responses", WIRE_OPENAI_RESPONSES,
	  EP_GENERATE },
	{ "/openai/responses", "responses", WIRE_OPENAI_RESPONSES,
	  EP_GENERATE },
};

/* Azure OpenAI's deployment shape: /openai/deployments/{name}/<path>
 * ?api-version=, the deployment name being the requested model. */
#define AZURE_PREFIX "/openai/deployments/"
static const struct endpoint azure_endpoints[] = {
	{ "/chat/completions", "chat/completions", WIRE_OPENAI_CHAT,
	  EP_GENERATE },
	{ "/completions", "completions", WIRE_OPENAI_COMPLETIONS, EP_GENERATE },
	{ "/embeddings", "embeddings", WIRE_OPENAI_EMBEDDINGS, EP_GENERATE },
};

/* A model (a route) as the models endpoints show it, in OpenAI's shape
 * or Anthropic's. */
static cJSON *
model_object(const struct route_conf *r, int anthropic)
{
	cJSON *m = cJSON_CreateObject();

	if (anthropic) {
		cJSON_AddStringToObject(m, "type", "model");
		cJSON_AddStringToObject(m, "id", r->name);
		cJSON_AddStringToObject(m, "display_name", r->name);
		cJSON_AddStringToObject(m, "created_at",
					"1970-01-01T00:00:00Z");
	} else {
		cJSON_AddStringToObject(m, "id", r->name);
		cJSON_AddStringToObject(m, "object", "model");
		cJSON_AddNumberToObject(m, "created", 0);
		cJSON_AddStringToObject(m, "owned_by",
					r->targets[0].provider->name);
	}
	return m;
}

/* Sends a JSON document with 200 and frees it. */
static void
send_json(struct hreq *req, cJSON *root)
{
	char *text = cJSON_PrintUnformatted(root);
	struct evbuffer *buf = evbuffer_new();

	cJSON_Delete(root);
	if (buf != NULL && text != NULL)
		evbuffer_add(buf, text, strlen(text));
	cJSON_free(text);
	reply_send(req, 200, "application/json", buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

/* GET /v1/models (id NULL): the routes the presented key may use, in
 * OpenAI's list shape, or Anthropic's when the client sends
 * anthropic-version; GET /v1/models/{id}: one of them. */
static void
list_models(const struct config *cfg, struct hreq *req, const char *id)
{
	struct evkeyvalq *in = hreq_input_headers(req);
	int anthropic = evhttp_find_header(in, "anthropic-version") != NULL;
	enum wire wire = anthropic ? WIRE_ANTHROPIC : WIRE_OPENAI_CHAT;
	const char *first = NULL, *last = NULL;
	static const struct reply_error unauthorized = {
		401, "invalid_request_error", "invalid_api_key", NULL,
		"Incorrect or missing API key."
	};
	char msg[320];
	struct reply_error unknown = { 404, "invalid_request_error",
				       "model_not_found", "model", msg };
	struct key_grant g;
	cJSON *root, *data;

	if (admit_key(req, &g) != KEY_OK) {
		refusals_note(hreq_peer(req));
		reply_error(req, wire, &unauthorized);
		return;
	}
	root = cJSON_CreateObject();
	if (!anthropic)
		cJSON_AddStringToObject(root, "object", "list");
	data = cJSON_AddArrayToObject(root, "data");
	for (const struct route_conf *r = cfg->routes; r; r = r->next) {
		if (strcmp(r->name, "*") == 0 ||
		    !keystore_model_allowed(&g, r->name))
			continue;
		if (id != NULL && strcmp(r->name, id) == 0) {
			cJSON_Delete(root);
			keystore_grant_clear(&g);
			send_json(req, model_object(r, anthropic));
			return;
		}
		cJSON_AddItemToArray(data, model_object(r, anthropic));
		if (first == NULL)
			first = r->name;
		last = r->name;
	}
	keystore_grant_clear(&g);
	if (id != NULL) {
		cJSON_Delete(root);
		snprintf(
			msg, sizeof msg,
			"The model '%.200s' does not exist or you do not have access to it.",
			id);
		reply_error(req, wire, &unknown);
		return;
	}
	if (anthropic) {
		cJSON_AddFalseToObject(root, "has_more");
		if (first != NULL) {
			cJSON_AddStringToObject(root, "first_id", first);
			cJSON_AddStringToObject(root, "last_id", last);
		} else {
			cJSON_AddNullToObject(root, "first_id");
			cJSON_AddNullToObject(root, "last_id");
		}
	}
	send_json(req, root);
}

/* Whether a path lists the models (OpenAI's and Anthropic's, or Azure's
 * v1) or names one of them: then *id is its name (NULL for the list). */
static int
is_models(const char *path, const char **id)
{
	static const char *const prefixes[] = { "/v1/models",
						"/openai/v1/models" };

	for (size_t i = 0; i < 2; i++) {
		size_t n = strlen(prefixes[i]);
		if (strncmp(path, prefixes[i], n) != 0)
			continue;
		if (path[n] == '\0') {
			*id = NULL;
			return 1;
		}
		if (path[n] == '/' && path[n + 1] != '\0') {
			*id = path + n + 1;
			return 1;
		}
	}
	return 0;
}

/* Refuses a method the path does not take. */
static void
wrong_method(struct hreq *req, enum wire wire, const char *allow)
{
	char msg[64];
	struct reply_error err = { 405, "invalid_request_error",
				   "method_not_allowed", NULL, msg };

	evhttp_add_header(hreq_output_headers(req), "Allow", allow);
	snprintf(msg, sizeof msg, "Only %s is allowed here.", allow);
	reply_error(req, wire, &err);
}

/* Matches /openai/deployments/{name}/<endpoint>: the endpoint, with the
 * deployment name copied into name; NULL when the path is not one. */
static const struct endpoint *
match_azure(const char *path, char *name, size_t size)
{
	const char *dep = path + strlen(AZURE_PREFIX), *slash;

	if (strncmp(path, AZURE_PREFIX, strlen(AZURE_PREFIX)) != 0)
		return NULL;
	slash = strchr(dep, '/');
	if (slash == NULL || slash == dep || (size_t)(slash - dep) >= size)
		return NULL;
	for (size_t i = 0; i < sizeof azure_endpoints / sizeof *azure_endpoints;
	     i++) {
		if (strcmp(slash, azure_endpoints[i].path) != 0)
			continue;
		memcpy(name, dep, (size_t)(slash - dep));
		name[slash - dep] = '\0';
		return &azure_endpoints[i];
	}
	return NULL;
}

/* The API the caller speaks, for the shape of its errors: Anthropic's
 * under /v1/messages, or from a client that sends anthropic-version (its
 * SDKs always do) anywhere but under Azure's /openai/; else OpenAI's,
 * whose envelope Azure's errors share. */
static enum wire
caller_wire(struct hreq *req)
{
	const char *path = hreq_path(req);

	if (strncmp(path, "/v1/messages", 12) == 0 &&
	    (path[12] == '\0' || path[12] == '/'))
		return WIRE_ANTHROPIC;
	if (strncmp(path, "/openai/", 8) != 0 &&
	    evhttp_find_header(hreq_input_headers(req), "anthropic-version") !=
		    NULL)
		return WIRE_ANTHROPIC;
	return WIRE_OPENAI_CHAT;
}

/* Answers a request the server refused (malformed, too slow, too many
 * connections) in the shape of the API its path names. */
static void
refuse_framing(struct hreq *req, const struct hp_error *e)
{
	struct reply_error err = reply_from_server(e);

	reply_error(req, caller_wire(req), &err);
}

/* Routes a request by method and path. */
static void
dispatch(struct hreq *req, void *arg)
{
	struct request_loop *loop = arg;
	const char *path = hreq_path(req), *method = hreq_method(req);
	const struct hp_error *bad = hreq_error(req);
	struct evkeyvalq *out = hreq_output_headers(req);
	const struct endpoint *ep = NULL;
	const char *model = NULL;
	static const struct reply_error unknown = { 404,
						    "invalid_request_error",
						    "unknown_url", NULL,
						    "Unknown request URL." };
	char id[REPLY_ID_SIZE], deployment[256];

	if (bad == NULL) {
		for (size_t i = 0; i < sizeof endpoints / sizeof *endpoints;
		     i++)
			if (strcmp(path, endpoints[i].path) == 0)
				ep = &endpoints[i];
		if (ep == NULL)
			ep = match_azure(path, deployment, sizeof deployment);
	}
	if (ep != NULL && strcmp(method, "POST") == 0) {
		request_start(
			loop, req, ep,
			ep >= azure_endpoints &&
					ep < azure_endpoints +
							sizeof azure_endpoints /
								sizeof *azure_endpoints
				? deployment
				: NULL);
		return;
	}
	reply_request_id(id);
	evhttp_add_header(out, "x-request-id", id);
	if (is_models(path, &model) && strcmp(method, "GET") == 0) {
		list_models(loop->cfg, req, model);
		return;
	}
	/* Everything else here is refused before any key is looked at. */
	refusals_note(hreq_peer(req));
	if (bad != NULL)
		refuse_framing(req, bad);
	else if (ep != NULL)
		wrong_method(req, ep->wire, "POST");
	else if (is_models(path, &model))
		wrong_method(req, caller_wire(req), "GET");
	else
		reply_error(req, caller_wire(req), &unknown);
}

struct httpd *
http_server_new(struct event_base *base, struct request_loop *loop)
{
	struct httpd_callbacks cb = { dispatch, loop };

	return httpd_new(base, loop->cfg, &cb);
}
