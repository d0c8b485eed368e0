/*
 * mock_control.c - the /_mock/ control endpoints: knobs, counters per
 * fixture, the last request, and the blackhole port.
 */
#include "mock.h"

static const char *const fail_names[] = {
	[FAIL_NONE] = "none",   [FAIL_500] = "500",     [FAIL_429] = "429",
	[FAIL_HANG] = "hang",   [FAIL_CUT] = "cut",     [FAIL_CLOSE] = "close",
	[FAIL_STALL] = "stall", [FAIL_ERROR] = "error",
};

/* Returns the counters of a fixture name; creates them when create is set,
 * else returns NULL for a name not seen since the last reset. */
struct model_stats *
model_stats_of(const char *name, int create)
{
	struct model_stats *m;

	SLIST_FOREACH(m, &srv.by_model, mm_link)
	if (strcmp(m->mm_name, name) == 0)
		return m;
	if (!create)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		abort();
	snprintf(m->mm_name, sizeof(m->mm_name), "%s", name);
	SLIST_INSERT_HEAD(&srv.by_model, m, mm_link);
	return m;
}

/* Forgets every fixture name's counters. */
void
model_stats_clear(void)
{
	struct model_stats *m;

	while ((m = SLIST_FIRST(&srv.by_model)) != NULL) {
		SLIST_REMOVE_HEAD(&srv.by_model, mm_link);
		free(m);
	}
}

/* Reads an integer member of a config object into *out when present;
 * returns -1 when it is present but not an integer >= min. */
static int
config_int(const cJSON *root, const char *key, int min, int *out, int *seen)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);

	*seen = 0;
	if (it == NULL)
		return 0;
	if (!cJSON_IsNumber(it) || it->valuedouble < min ||
	    it->valuedouble > 86400000 || it->valuedouble != it->valueint)
		return -1;
	*out = it->valueint;
	*seen = 1;
	return 0;
}

/* Reads a boolean member of a config object into *out when present;
 * returns -1 when it is present but not true or false. */
static int
config_bool(const cJSON *root, const char *key, int *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);

	if (it == NULL)
		return 0;
	if (!cJSON_IsBool(it))
		return -1;
	*out = cJSON_IsTrue(it);
	return 0;
}

/* Reads the "gzip" member: "off", "always" or "asked". 0, or -1 when it
 * is something else. */
static int
config_gzip(const cJSON *root, int *out)
{
	static const char *const names[] = { "off", "always", "asked" };
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "gzip");

	if (it == NULL)
		return 0;
	for (int i = 0; i < 3; i++)
		if (cJSON_IsString(it) &&
		    strcmp(it->valuestring, names[i]) == 0) {
			*out = i;
			return 0;
		}
	return -1;
}

/* POST /_mock/config: validates every member, then applies them all. */
static void
handle_config(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = (const char *)evbuffer_pullup(in, -1);
	struct mock_config c = srv.cfg;
	cJSON *root, *fail, *fmodel, *ok;
	int seen_fail = 0, seen_times, seen;
	size_t i;

	root = cJSON_ParseWithLength(body == NULL ? "" : body, len);
	if (!cJSON_IsObject(root)) {
		reply_error(req, 400, "mock: config body must be a JSON object",
			    "invalid_request_error");
		goto out;
	}
	if (config_int(root, "latency_ms", 0, &c.mc_latency_ms, &seen) < 0 ||
	    config_int(root, "chunk_delay_ms", 0, &c.mc_chunk_delay_ms, &seen) <
		    0 ||
	    config_int(root, "cut_after", 0, &c.mc_cut_after, &seen) < 0 ||
	    config_int(root, "fail_times", -1, &c.mc_fail_times, &seen_times) <
		    0 ||
	    config_int(root, "greedy_uncapped", 0, &c.mc_greedy_uncapped,
		       &seen) < 0 ||
	    config_int(root, "greedy_prompt_tokens", 0,
		       &c.mc_greedy_prompt_tokens, &seen) < 0 ||
	    config_int(root, "greedy_per_event", 1, &c.mc_greedy_per_event,
		       &seen) < 0) {
		reply_error(req, 400,
			    "mock: config numbers must be integers "
			    ">= 0 (fail_times >= -1, greedy_per_event >= 1)",
			    "invalid_request_error");
		goto out;
	}
	if (config_bool(root, "last_member_wins", &c.mc_last_member_wins) < 0 ||
	    config_bool(root, "fold_names", &c.mc_fold_names) < 0 ||
	    config_bool(root, "greedy", &c.mc_greedy) < 0 ||
	    config_bool(root, "ignore_caps", &c.mc_ignore_caps) < 0) {
		reply_error(req, 400,
			    "mock: last_member_wins, fold_names, greedy and "
			    "ignore_caps must be true or false",
			    "invalid_request_error");
		goto out;
	}
	if (config_gzip(root, &c.mc_gzip) < 0) {
		reply_error(req, 400,
			    "mock: gzip must be one of off, always, asked",
			    "invalid_request_error");
		goto out;
	}
	fail = cJSON_GetObjectItemCaseSensitive(root, "fail");
	if (fail != NULL) {
		for (i = 0; i < sizeof(fail_names) / sizeof(fail_names[0]); i++)
			if (cJSON_IsString(fail) &&
			    strcmp(fail->valuestring, fail_names[i]) == 0)
				break;
		if (i == sizeof(fail_names) / sizeof(fail_names[0])) {
			reply_error(req, 400,
				    "mock: fail must be one of none, "
				    "500, 429, hang, cut, close, stall, error",
				    "invalid_request_error");
			goto out;
		}
		c.mc_fail = (enum mock_fail)i;
		seen_fail = 1;
	}
	fmodel = cJSON_GetObjectItemCaseSensitive(root, "fail_model");
	if (fmodel != NULL && !cJSON_IsNull(fmodel) &&
	    (!cJSON_IsString(fmodel) ||
	     strlen(fmodel->valuestring) > MOCK_MAX_NAME)) {
		reply_error(req, 400,
			    "mock: fail_model must be a fixture "
			    "name, \"\" or null",
			    "invalid_request_error");
		goto out;
	}
	if (cJSON_IsString(fmodel))
		snprintf(c.mc_fail_model, sizeof(c.mc_fail_model), "%s",
			 fmodel->valuestring);
	else if (fmodel != NULL || seen_fail)
		c.mc_fail_model[0] = '\0';
	if (seen_fail && !seen_times)
		c.mc_fail_times = -1;
	if (c.mc_fail_times == 0)
		c.mc_fail = FAIL_NONE;
	srv.cfg = c;
	mock_log("config: latency_ms=%d chunk_delay_ms=%d fail=%s "
		 "cut_after=%d fail_times=%d fail_model=%s "
		 "last_member_wins=%d fold_names=%d greedy=%d "
		 "greedy_uncapped=%d greedy_prompt_tokens=%d "
		 "greedy_per_event=%d ignore_caps=%d",
		 c.mc_latency_ms, c.mc_chunk_delay_ms, fail_names[c.mc_fail],
		 c.mc_cut_after, c.mc_fail_times,
		 c.mc_fail_model[0] != '\0' ? c.mc_fail_model : "(any)",
		 c.mc_last_member_wins, c.mc_fold_names, c.mc_greedy,
		 c.mc_greedy_uncapped, c.mc_greedy_prompt_tokens,
		 c.mc_greedy_per_event, c.mc_ignore_caps);
	ok = cJSON_CreateObject();
	cJSON_AddTrueToObject(ok, "ok");
	reply_json(req, 200, ok);
out:
	cJSON_Delete(root);
}

/* Adds the description of the last finished model request to root. */
static void
add_last(cJSON *root)
{
	const struct mock_last *l = &srv.last;
	cJSON *o;

	if (!l->ml_seen) {
		cJSON_AddNullToObject(root, "last");
		return;
	}
	o = cJSON_AddObjectToObject(root, "last");
	cJSON_AddStringToObject(o, "what", l->ml_what);
	cJSON_AddNumberToObject(o, "status", l->ml_status);
	cJSON_AddStringToObject(o, "end", l->ml_end);
	cJSON_AddNumberToObject(o, "events_sent", (double)l->ml_events_sent);
	cJSON_AddNumberToObject(o, "events_total", (double)l->ml_events_total);
}

/*
 * Returns the blackhole port, setting it up on first use: a listener with
 * the shortest queue that is never accepted, and one connection of our own
 * that fills the queue. The kernel then drops every further SYN, so a
 * connection attempt stays pending until its own timeout: an upstream that
 * cannot be reached but does not refuse either. -1 on failure.
 */
static int
blackhole_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	evutil_socket_t l, c;

	if (srv.blackhole[0] >= 0) {
		if (getsockname(srv.blackhole[0], (struct sockaddr *)&sin,
				&len) < 0)
			return -1;
		return ntohs(sin.sin_port);
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -1;
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(l, 0) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) < 0) {
		close(l);
		return -1;
	}
	/* Loopback: the kernel completes the handshake at once. */
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		if (c >= 0)
			close(c);
		close(l);
		return -1;
	}
	srv.blackhole[0] = l;
	srv.blackhole[1] = c;
	return ntohs(sin.sin_port);
}

/* Adds the counters of every fixture name to root. */
static void
add_by_model(cJSON *root)
{
	const struct model_stats *m;
	cJSON *all, *o;

	all = cJSON_AddObjectToObject(root, "by_model");
	SLIST_FOREACH(m, &srv.by_model, mm_link)
	{
		o = cJSON_AddObjectToObject(all, m->mm_name);
		cJSON_AddNumberToObject(o, "requests", (double)m->mm_requests);
		cJSON_AddNumberToObject(o, "served", (double)m->mm_served);
		cJSON_AddNumberToObject(o, "failed", (double)m->mm_failed);
	}
}

/* Handles the /_mock/ control endpoints. */
void
handle_control(struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	cJSON *root;
	int port;

	if (strcmp(path, "/_mock/config") == 0 && cmd == EVHTTP_REQ_POST) {
		handle_config(req);
	} else if (strcmp(path, "/_mock/reset") == 0 &&
		   cmd == EVHTTP_REQ_POST) {
		srv.cfg = srv.defaults;
		memset(&srv.stats, 0, sizeof(srv.stats));
		model_stats_clear();
		memset(&srv.last, 0, sizeof(srv.last));
		free(srv.last_request);
		srv.last_request = NULL;
		mock_log("reset");
		root = cJSON_CreateObject();
		cJSON_AddTrueToObject(root, "ok");
		reply_json(req, 200, root);
	} else if (strcmp(path, "/_mock/last_request") == 0 &&
		   cmd == EVHTTP_REQ_GET) {
		mock_log("GET %s -> %d", path, srv.last_request ? 200 : 404);
		if (srv.last_request == NULL)
			reply_error(req, 404, "mock: no model request received",
				    "invalid_request_error");
		else
			reply_now(req, 200, "application/json",
				  srv.last_request, strlen(srv.last_request));
	} else if (strcmp(path, "/_mock/stats") == 0 && cmd == EVHTTP_REQ_GET) {
		root = cJSON_CreateObject();
		cJSON_AddNumberToObject(root, "requests",
					(double)srv.stats.ms_requests);
		cJSON_AddNumberToObject(root, "served",
					(double)srv.stats.ms_served);
		cJSON_AddNumberToObject(root, "failed",
					(double)srv.stats.ms_failed);
		cJSON_AddNumberToObject(root, "client_left",
					(double)srv.stats.ms_client_left);
		cJSON_AddNumberToObject(root, "in_flight",
					(double)srv.in_flight);
		add_last(root);
		add_by_model(root);
		mock_log("GET %s -> 200", path);
		reply_json(req, 200, root);
	} else if (strcmp(path, "/_mock/blackhole") == 0 &&
		   cmd == EVHTTP_REQ_POST) {
		port = blackhole_port();
		mock_log("POST %s -> %d", path, port < 0 ? 500 : 200);
		if (port < 0) {
			reply_error(req, 500,
				    "mock: cannot set up the blackhole port",
				    "server_error");
			return;
		}
		root = cJSON_CreateObject();
		cJSON_AddNumberToObject(root, "port", port);
		reply_json(req, 200, root);
	} else {
		mock_log("%s -> 404 unknown control endpoint", path);
		reply_error(req, 404, "mock: unknown control endpoint",
			    "invalid_request_error");
	}
}
