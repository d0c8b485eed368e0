/*
 * http_server.c - dispatch of data-plane requests and shared replies.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "http_server.h"
#include "keystore.h"
#include "log.h"
#include "request.h"
#include "translate.h"
#include "worker.h"

static const struct endpoint endpoints[] = {
	{ "/v1/chat/completions", "/chat/completions", "chat/completions",
	  WIRE_OPENAI_CHAT },
	{ "/v1/completions", "/completions", "completions",
	  WIRE_OPENAI_COMPLETIONS },
	{ "/v1/embeddings", "/embeddings", "embeddings",
	  WIRE_OPENAI_EMBEDDINGS },
	{ "/v1/responses", "/responses", "responses", WIRE_OPENAI_RESPONSES },
	{ "/v1/messages", "/messages", "messages", WIRE_ANTHROPIC },
};

/* Azure OpenAI's shape: /openai/deployments/{name}/<path>?api-version=,
 * the deployment name being the requested model. */
#define AZURE_PREFIX "/openai/deployments/"
static const struct endpoint azure_endpoints[] = {
	{ "/chat/completions", "/chat/completions", "chat/completions",
	  WIRE_OPENAI_CHAT },
	{ "/completions", "/completions", "completions",
	  WIRE_OPENAI_COMPLETIONS },
	{ "/embeddings", "/embeddings", "embeddings",
	  WIRE_OPENAI_EMBEDDINGS },
};

/* The reason phrase for a status; evhttp's own table stops at 417. */
const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 529: return "Overloaded";
	default: return status < 300 ? "OK" : status < 500 ? "Client Error"
							    : "Server Error";
	}
}

/* Writes a new random request id. */
void
http_request_id(char id[40])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[12];

	if (RAND_bytes(raw, sizeof raw) != 1)
		memset(raw, 0, sizeof raw);
	memcpy(id, "req_", 4);
	for (size_t i = 0; i < sizeof raw; i++) {
		id[4 + 2 * i] = hex[raw[i] >> 4];
		id[5 + 2 * i] = hex[raw[i] & 15];
	}
	id[4 + 2 * sizeof raw] = '\0';
}

/* Finds the presented API key in the request headers. */
const char *
http_api_key(struct evhttp_request *req, size_t *len)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *v = evhttp_find_header(h, "Authorization");

	if (v != NULL) {
		if (strncasecmp(v, "Bearer ", 7) != 0)
			return NULL;
		v += 7;
		while (*v == ' ')
			v++;
	} else if ((v = evhttp_find_header(h, "x-api-key")) == NULL &&
		   (v = evhttp_find_header(h, "api-key")) == NULL) {
		return NULL;
	}
	*len = strlen(v);
	while (*len > 0 && v[*len - 1] == ' ')
		(*len)--;
	return *len > 0 ? v : NULL;
}

/* Sends an error reply in the wire's shape. */
void
http_reply_error(struct evhttp_request *req, enum wire wire, int status,
		 const char *type, const char *code, const char *param,
		 const char *message)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf != NULL)
		http_error_json(buf, wire, status, type, code, param, message);
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", "application/json");
	evhttp_send_reply(req, status, http_reason(status), buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

/* Appends an error object in the wire's shape and a newline to out:
 * Anthropic's {"type":"error","error":{"type","message"}} for the
 * Messages API, OpenAI's {"error":{"message","type","param","code"}}
 * for the rest. */
void
http_error_json(struct evbuffer *out, enum wire wire, int status,
		const char *type, const char *code, const char *param,
		const char *message)
{
	cJSON *root = cJSON_CreateObject(), *err = cJSON_CreateObject();
	char *text;

	if (wire == WIRE_ANTHROPIC) {
		cJSON_AddStringToObject(root, "type", "error");
		cJSON_AddStringToObject(err, "type",
					tr_anthropic_error_type(status));
		cJSON_AddStringToObject(err, "message", message);
	} else {
		cJSON_AddStringToObject(err, "message", message);
		cJSON_AddStringToObject(err, "type", type);
		if (param != NULL)
			cJSON_AddStringToObject(err, "param", param);
		else
			cJSON_AddNullToObject(err, "param");
		if (code != NULL)
			cJSON_AddStringToObject(err, "code", code);
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

/* GET /v1/models: the routes the presented key may use, in OpenAI's list
 * shape, or Anthropic's when the client sends anthropic-version. */
static void
list_models(struct worker *w, struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	int anthropic = evhttp_find_header(in, "anthropic-version") != NULL;
	enum wire wire = anthropic ? WIRE_ANTHROPIC : WIRE_OPENAI_CHAT;
	const char *first = NULL, *last = NULL;
	struct key_grant g;
	const char *key;
	size_t len = 0;
	cJSON *root, *data;
	struct evbuffer *buf;
	char *text;

	key = http_api_key(req, &len);
	if (key == NULL || keystore_lookup(key, len, &g) != KEY_OK) {
		http_reply_error(req, wire, 401, "invalid_request_error",
				 "invalid_api_key",
				 NULL, "Incorrect or missing API key.");
		return;
	}
	root = cJSON_CreateObject();
	if (!anthropic)
		cJSON_AddStringToObject(root, "object", "list");
	data = cJSON_AddArrayToObject(root, "data");
	for (const struct route_conf *r = w->w_cfg->routes; r; r = r->next) {
		cJSON *m;
		if (strcmp(r->name, "*") == 0 ||
		    !keystore_model_allowed(&g, r->name))
			continue;
		m = cJSON_CreateObject();
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
		cJSON_AddItemToArray(data, m);
		if (first == NULL)
			first = r->name;
		last = r->name;
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
	keystore_grant_clear(&g);
	text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	buf = evbuffer_new();
	evbuffer_add(buf, text, strlen(text));
	cJSON_free(text);
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", "application/json");
	evhttp_send_reply(req, 200, "OK", buf);
	evbuffer_free(buf);
}

/* Refuses a method the path does not take. */
static void
wrong_method(struct evhttp_request *req, enum wire wire, const char *allow)
{
	char msg[64];

	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
			  allow);
	snprintf(msg, sizeof msg, "Only %s is allowed here.", allow);
	http_reply_error(req, wire, 405, "invalid_request_error",
			 "method_not_allowed", NULL, msg);
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

/* Routes a request by method and path. */
static void
dispatch(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	const struct endpoint *ep = NULL;
	char id[40], deployment[256];

	if (path == NULL)
		path = "";
	for (size_t i = 0; i < sizeof endpoints / sizeof *endpoints; i++)
		if (strcmp(path, endpoints[i].path) == 0)
			ep = &endpoints[i];
	if (ep == NULL)
		ep = match_azure(path, deployment, sizeof deployment);
	if (ep != NULL && cmd == EVHTTP_REQ_POST) {
		request_start(w, req, ep,
			      ep >= azure_endpoints &&
			      ep < azure_endpoints + sizeof azure_endpoints /
						     sizeof *azure_endpoints
			      ? deployment : NULL);
		return;
	}
	http_request_id(id);
	evhttp_add_header(out, "x-request-id", id);
	if (ep != NULL) {
		wrong_method(req, ep->wire, "POST");
		return;
	}
	if (strcmp(path, "/v1/models") == 0) {
		if (cmd != EVHTTP_REQ_GET)
			wrong_method(req, WIRE_OPENAI_CHAT, "GET");
		else
			list_models(w, req);
		return;
	}
	http_reply_error(req, WIRE_OPENAI_CHAT, 404, "invalid_request_error",
			 "unknown_url", NULL, "Unknown request URL.");
}

/* Installs the dispatcher. */
void
http_server_setup(struct worker *w)
{
	evhttp_set_gencb(w->w_http, dispatch, w);
}
