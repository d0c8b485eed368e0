/*
 * mock_model.c - a model request's arrival: the body as the provider reads
 * it, the wire's checks, injected refusals, the fixture chosen (or the
 * greedy answer), and the record of the last request.
 */
#include "mock.h"

static const char *const wire_names[] = {
	[WIRE_OPENAI] = "openai",
	[WIRE_AZURE] = "azure",
	[WIRE_ANTHROPIC] = "anthropic",
	[WIRE_RESPONSES] = "responses",
};

/* Takes the failure to inject into the next model request for fixture
 * name model, counting down fail_times. */
static enum mock_fail
take_fail(const char *model)
{
	enum mock_fail f = srv.cfg.mc_fail;

	if (f == FAIL_NONE)
		return f;
	if (srv.cfg.mc_fail_model[0] != '\0' &&
	    strcmp(srv.cfg.mc_fail_model, model) != 0)
		return FAIL_NONE;
	if (srv.cfg.mc_fail_times > 0 && --srv.cfg.mc_fail_times == 0)
		srv.cfg.mc_fail = FAIL_NONE;
	return f;
}

/* Records a request as the last model request received. */
static void
record_request(struct evhttp_request *req, enum mock_wire wire,
	       const char *body, size_t len)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	struct evkeyval *kv;
	cJSON *root, *headers, *old;
	const char *query, *method;
	char name[256], *copy;
	size_t i;

	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		method = "GET";
		break;
	case EVHTTP_REQ_POST:
		method = "POST";
		break;
	case EVHTTP_REQ_PUT:
		method = "PUT";
		break;
	case EVHTTP_REQ_DELETE:
		method = "DELETE";
		break;
	case EVHTTP_REQ_HEAD:
		method = "HEAD";
		break;
	case EVHTTP_REQ_PATCH:
		method = "PATCH";
		break;
	case EVHTTP_REQ_OPTIONS:
		method = "OPTIONS";
		break;
	default:
		method = "OTHER";
		break;
	}
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "method", method);
	cJSON_AddStringToObject(root, "path", evhttp_uri_get_path(uri));
	query = evhttp_uri_get_query(uri);
	if (query != NULL)
		cJSON_AddStringToObject(root, "query", query);
	else
		cJSON_AddNullToObject(root, "query");
	cJSON_AddStringToObject(root, "wire", wire_names[wire]);
	headers = cJSON_AddObjectToObject(root, "headers");
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
	{
		for (i = 0; kv->key[i] != '\0' && i < sizeof(name) - 1; i++)
			name[i] = (char)tolower((unsigned char)kv->key[i]);
		name[i] = '\0';
		old = cJSON_GetObjectItemCaseSensitive(headers, name);
		if (old != NULL && cJSON_IsString(old)) {
			/* Repeated header: join the values as HTTP allows. */
			size_t n = strlen(old->valuestring) +
				   strlen(kv->value) + 3;

			copy = malloc(n);
			if (copy == NULL)
				abort();
			snprintf(copy, n, "%s, %s", old->valuestring,
				 kv->value);
			cJSON_ReplaceItemInObjectCaseSensitive(
				headers, name, cJSON_CreateString(copy));
			free(copy);
		} else {
			cJSON_AddStringToObject(headers, name, kv->value);
		}
	}
	copy = malloc(len + 1);
	if (copy == NULL)
		abort();
	memcpy(copy, body, len);
	copy[len] = '\0';
	cJSON_AddStringToObject(root, "body", copy);
	free(copy);
	free(srv.last_request);
	srv.last_request = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (srv.last_request == NULL)
		abort();
}

/* Creates the state of a model request (freed by mr_finish) and makes it
 * live; its end is tied to the connection's close. */
static struct mock_req *
mr_new(struct evhttp_request *req, enum mock_wire wire, const char *model,
       const char *what)
{
	struct mock_req *mr = calloc(1, sizeof(*mr));

	if (mr == NULL)
		abort();
	mr->mr_req = req;
	mr->mr_conn = evhttp_request_get_connection(req);
	mr->mr_timer = evtimer_new(srv.base, mr_timer_cb, mr);
	if (mr->mr_timer == NULL)
		abort();
	mr->mr_status = 200;
	mr->mr_delay_ms = srv.cfg.mc_chunk_delay_ms;
	mr->mr_wire = wire;
	snprintf(mr->mr_model, sizeof(mr->mr_model), "%s", model);
	snprintf(mr->mr_what, sizeof(mr->mr_what), "%s", what);
	TAILQ_INSERT_TAIL(&srv.live, mr, mr_link);
	srv.in_flight++;
	evhttp_connection_set_closecb(mr->mr_conn, mr_conn_closed, mr);
	return mr;
}

/* Sets mr's body to a JSON error reply of the given status (owned body). */
static void
mr_set_error(struct mock_req *mr, int status, char *body)
{
	mr->mr_status = status;
	mr->mr_body = body;
	mr->mr_len = strlen(body);
	mr->mr_sse = 0;
	mr->mr_cut = CUT_NONE;
}

/* Loads the fixture named m (NULL: the request named none) into mr, for a
 * parsed request body root (borrowed); on failure sets an error reply in
 * the shape of mr's wire instead. */
static void
mr_load_fixture(struct mock_req *mr, const cJSON *root, const char *m)
{
	const cJSON *so;
	char name[PATH_MAX], msg[320];
	int stream, include_usage, strip;

	if (!cJSON_IsObject(root)) {
		mr_set_error(
			mr, 400,
			wire_error_json(mr->mr_wire, 400,
					"mock: request body is not valid JSON",
					"invalid_request_error", NULL, NULL));
		return;
	}
	if (m == NULL) {
		mr_set_error(mr, 400,
			     wire_error_json(
				     mr->mr_wire, 400,
				     "mock: request has no \"model\" string",
				     "invalid_request_error", "model", NULL));
		return;
	}
	stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "stream"));
	so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
	include_usage = cJSON_IsObject(so) &&
			cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
				so, "include_usage"));

	if (model_name_ok(m) && strstr(m, "-error-") != NULL) {
		/* Providers answer errors in JSON, streaming or not. */
		snprintf(name, sizeof(name), "%s.json", m);
		mr->mr_body = fixture_read(name, &mr->mr_len);
		mr->mr_status = error_status(m);
		mr->mr_retry_after = mr->mr_status == 429;
	} else if (model_name_ok(m)) {
		snprintf(name, sizeof(name), "%s.sse", m);
		mr->mr_body = fixture_read(name, &mr->mr_len);
		mr->mr_sse = mr->mr_body != NULL;
		if (mr->mr_body == NULL) {
			snprintf(name, sizeof(name),
				 stream ? "%s-stream.sse" : "%s.json", m);
			mr->mr_body = fixture_read(name, &mr->mr_len);
			mr->mr_sse = stream;
		}
	}
	if (mr->mr_body == NULL) {
		snprintf(msg, sizeof(msg), "mock: no fixture for model %.250s",
			 m);
		mr_set_error(mr, 404,
			     wire_error_json(mr->mr_wire, 404, msg,
					     "invalid_request_error", "model",
					     mr->mr_wire == WIRE_AZURE
						     ? "DeploymentNotFound"
						     : "model_not_found"));
		return;
	}
	switch (mr->mr_wire) {
	case WIRE_AZURE:
		strip = 1;
		break;
	case WIRE_OPENAI:
		strip = usage_on_request(m);
		break;
	default:
		strip = 0;
		break;
	}
	if (mr->mr_sse && !include_usage && strip)
		mr_strip_usage(mr);
	if (mr->mr_sse)
		mr_split_events(mr);
}

/* Returns whether a request header is present and not empty. */
static int
has_header(struct evhttp_request *req, const char *name)
{
	const char *v =
		evhttp_find_header(evhttp_request_get_input_headers(req), name);

	return v != NULL && v[0] != '\0';
}

/*
 * The checks a provider makes before it looks at the model: credentials and
 * protocol version. Returns 0 when the request passes, else sets the
 * provider's refusal on mr and returns -1.
 */
static int
mr_check_wire(struct mock_req *mr, struct evhttp_request *req,
	      const cJSON *root)
{
	const char *query, *ver;
	struct evkeyvalq params;
	char *b;
	size_t n;
	int rc = 0;

	switch (mr->mr_wire) {
	case WIRE_OPENAI:
	case WIRE_RESPONSES:
		return 0;
	case WIRE_ANTHROPIC:
		if (has_header(req, "x-api-key") &&
		    has_header(req, "anthropic-version"))
			return 0;
		b = fixture_read("anthropic-error-401.json", &n);
		mr_set_error(mr, 401,
			     b != NULL ? b
				       : wire_error_json(WIRE_ANTHROPIC, 401,
							 "invalid x-api-key",
							 NULL, NULL, NULL));
		return -1;
	case WIRE_AZURE:
		break;
	}
	if (!has_header(req, "api-key")) {
		b = fixture_read("azure-openai-error-401.json", &n);
		mr_set_error(mr, 401,
			     b != NULL ? b
				       : wire_error_json(
						 WIRE_AZURE, 401,
						 "Access denied due to invalid "
						 "subscription key",
						 NULL, NULL, NULL));
		return -1;
	}
	TAILQ_INIT(&params);
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (query == NULL || evhttp_parse_query_str(query, &params) < 0 ||
	    (ver = evhttp_find_header(&params, "api-version")) == NULL ||
	    ver[0] == '\0') {
		mr_set_error(
			mr, 400,
			wire_error_json(
				WIRE_AZURE, 400,
				"Missing required query parameter: api-version",
				NULL, NULL, NULL));
		rc = -1;
	} else if (strncmp(ver, AZURE_STREAM_OPTIONS_SINCE,
			   strlen(AZURE_STREAM_OPTIONS_SINCE)) < 0 &&
		   cJSON_IsObject(root) &&
		   cJSON_GetObjectItemCaseSensitive(root, "stream_options") !=
			   NULL) {
		mr_set_error(mr, 400, body_dup(AZURE_NO_STREAM_OPTIONS));
		rc = -1;
	}
	evhttp_clear_headers(&params);
	return rc;
}

/* Sets mr's reply to an injected 429: the wire's rate-limit fixture. */
static void
mr_set_429(struct mock_req *mr)
{
	const char *file;
	char *b;
	size_t n;

	switch (mr->mr_wire) {
	case WIRE_ANTHROPIC:
		file = "anthropic-error-429.json";
		break;
	case WIRE_AZURE:
		file = "azure-openai-error-429.json";
		break;
	default:
		file = "openai-error-429.json";
		break;
	}
	b = fixture_read(file, &n);
	if (b == NULL) {
		b = wire_error_json(mr->mr_wire, 429,
				    "mock: injected rate limit", "requests",
				    NULL, "rate_limit_exceeded");
		n = strlen(b);
	}
	mr_set_error(mr, 429, b);
	mr->mr_len = n;
	mr->mr_retry_after = 1;
}

/* Sets mr's reply to the wire's 500 error; message is the OpenAI shape's
 * (Anthropic's 500 has its own). */
static void
mr_set_500(struct mock_req *mr, const char *message)
{
	if (mr->mr_wire == WIRE_ANTHROPIC)
		mr_set_error(mr, 500, body_dup(ANTHROPIC_500));
	else
		mr_set_error(mr, 500,
			     error_json(message, "server_error", NULL, NULL));
}

/* Whether an embeddings request asks for its vectors in base64, as the
 * openai SDKs do by default. */
static int
mock_asks_base64(const char *path, const cJSON *root)
{
	const cJSON *f =
		cJSON_GetObjectItemCaseSensitive(root, "encoding_format");
	size_t n = strlen(path);

	return n >= 11 && strcmp(path + n - 11, "/embeddings") == 0 &&
	       cJSON_IsString(f) && strcmp(f->valuestring, "base64") == 0;
}

/* Whether path is Anthropic's count of a prompt's tokens. */
int
mock_is_count_tokens(const char *path)
{
	size_t n = strlen(path), s = strlen("/messages/count_tokens");

	return n >= s && strcmp(path + n - s, "/messages/count_tokens") == 0;
}

/* Answers a count of tokens for fixture m as Anthropic does: the
 * fixture's usage.input_tokens, {"input_tokens": N}. */
static void
mr_load_count(struct mock_req *mr, const char *m)
{
	char name[PATH_MAX], msg[320];
	cJSON *fx = NULL;
	const cJSON *n = NULL;
	char *text = NULL;
	size_t len = 0;

	if (m != NULL && model_name_ok(m)) {
		snprintf(name, sizeof(name), "%s.json", m);
		text = fixture_read(name, &len);
	}
	if (text != NULL) {
		fx = cJSON_ParseWithLength(text, len);
		n = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(fx, "usage"),
			"input_tokens");
	}
	free(text);
	if (!cJSON_IsNumber(n)) {
		snprintf(msg, sizeof(msg),
			 "mock: no fixture with usage for model %.250s",
			 m != NULL ? m : "-");
		mr_set_error(mr, 404,
			     wire_error_json(mr->mr_wire, 404, msg,
					     "not_found_error", "model", NULL));
		cJSON_Delete(fx);
		return;
	}
	snprintf(msg, sizeof(msg), "{\"input_tokens\":%d}", n->valueint);
	cJSON_Delete(fx);
	mr->mr_body = strdup(msg);
	if (mr->mr_body == NULL)
		abort();
	mr->mr_len = strlen(mr->mr_body);
	mr->mr_status = 200;
	mr->mr_sse = 0;
}

/* Handles a request to a model endpoint. */
void
handle_model(struct evhttp_request *req, const char *path)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = (const char *)evbuffer_pullup(in, -1);
	const cJSON *model, *stream;
	const char *m = NULL;
	struct mock_req *mr;
	enum mock_wire wire;
	enum mock_fail f;
	cJSON *root;
	char what[192], dep[MOCK_MAX_NAME + 1];

	if (body == NULL)
		body = "";
	wire = wire_of(path, dep, sizeof(dep));
	srv.stats.ms_requests++;
	record_request(req, wire, body, len);
	root = body_parse(body, len);
	model = cJSON_GetObjectItemCaseSensitive(root, "model");
	stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
	/* Azure names the model in the path; the body's is ignored. */
	if (wire == WIRE_AZURE)
		m = dep;
	else if (cJSON_IsString(model))
		m = model->valuestring;
	snprintf(what, sizeof(what), "POST %.80s model=%.80s%s", path,
		 m != NULL ? m : "-", cJSON_IsTrue(stream) ? " stream" : "");
	mr = mr_new(req, wire, m != NULL ? m : "-", what);
	model_stats_of(mr->mr_model, 1)->mm_requests++;

	if (mr_check_wire(mr, req, root) < 0) {
		mr->mr_failed = 1;
		goto start;
	}
	switch ((f = take_fail(mr->mr_model))) {
	case FAIL_NONE:
		break;
	case FAIL_500:
		mr->mr_failed = 1;
		mr_set_500(mr, "mock: injected failure");
		goto start;
	case FAIL_429:
		mr->mr_failed = 1;
		mr_set_429(mr);
		goto start;
	case FAIL_HANG:
		mr->mr_failed = 1;
		mr_hang(mr);
		goto out;
	case FAIL_CLOSE:
		mr->mr_failed = 1;
		mr->mr_state = MR_CLOSING;
		mr->mr_status = 0;
		mr_arm(mr, 0);
		goto out;
	case FAIL_CUT:
	case FAIL_STALL:
	case FAIL_ERROR:
		mr->mr_failed = 1;
		mr->mr_cut = f == FAIL_CUT     ? CUT_CLOSE
			     : f == FAIL_STALL ? CUT_STALL
					       : CUT_ERROR;
		mr->mr_cut_after = srv.cfg.mc_cut_after;
		break;
	}
	if (mock_is_count_tokens(path))
		mr_load_count(mr, m);
	else if (srv.cfg.mc_greedy && cJSON_IsObject(root) && m != NULL)
		greedy_load(mr, root, path, m);
	else
		mr_load_fixture(mr, root, m);
	if (mr->mr_status == 200 && !mr->mr_sse && mock_asks_base64(path, root))
		mr_embeddings_base64(mr);
	if (mr->mr_status == 404 || mr->mr_status == 400)
		mr->mr_failed = 1;
	if (mr->mr_cut == CUT_ERROR && !mr->mr_sse) {
		/* Not a stream: the provider's error is the whole answer. */
		free(mr->mr_body);
		mr_set_500(mr, MOCK_MIDSTREAM_ERROR);
	}
start:
	mr->mr_state = MR_WAITING;
	if (srv.cfg.mc_latency_ms > 0)
		mr_watch_peer(mr);
	mr_arm(mr, srv.cfg.mc_latency_ms);
out:
	cJSON_Delete(root);
}
