/*
 * mock_main.c - mock_upstream's arguments, listener, dispatch and replies
 * (see mock.h for what the mock does).
 */
#include "mock.h"

struct mock_server srv;

/* Writes one line to stderr unless --quiet. */
void __attribute__((format(printf, 1, 2))) mock_log(const char *fmt, ...)
{
	va_list ap;

	if (srv.quiet)
		return;
	va_start(ap, fmt);
	fputs("mock_upstream: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Returns the reason phrase for an HTTP status. */
const char *
status_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 402:
		return "Payment Required";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 529:
		return "Site Overloaded";
	default:
		return "Error";
	}
}

/* Returns a new OpenAI-shaped error body; caller frees. param and code may
 * be NULL (serialized as null). */
char *
error_json(const char *message, const char *type, const char *param,
	   const char *code)
{
	cJSON *root, *err;
	char *out;

	root = cJSON_CreateObject();
	err = cJSON_AddObjectToObject(root, "error");
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
	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (out == NULL)
		abort();
	return out;
}

/* Sends a whole reply with the given body at once (control endpoints and
 * early errors). */
void
reply_now(struct evhttp_request *req, int status, const char *ctype,
	  const char *body, size_t len)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL)
		abort();
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", ctype);
	evbuffer_add(buf, body, len);
	evhttp_send_reply(req, status, status_reason(status), buf);
	evbuffer_free(buf);
}

/* Sends a JSON reply built from a cJSON tree; takes ownership of root. */
void
reply_json(struct evhttp_request *req, int status, cJSON *root)
{
	char *out = cJSON_PrintUnformatted(root);

	cJSON_Delete(root);
	if (out == NULL)
		abort();
	reply_now(req, status, "application/json", out, strlen(out));
	free(out);
}

/* Sends an OpenAI-shaped error reply. */
void
reply_error(struct evhttp_request *req, int status, const char *message,
	    const char *type)
{
	char *body = error_json(message, type, NULL, NULL);

	reply_now(req, status, "application/json", body, strlen(body));
	free(body);
}

/* Returns whether path ends in one of the model endpoints. */
static int
is_model_path(const char *path)
{
	static const char *const suffixes[] = {
		"/chat/completions", "/completions", "/embeddings",
		"/responses",        "/messages",    "/messages/count_tokens",
	};
	size_t i, n = strlen(path), s;

	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		s = strlen(suffixes[i]);
		if (n >= s && strcmp(path + n - s, suffixes[i]) == 0)
			return 1;
	}
	return 0;
}

/* evhttp callback for every request. */
static void
on_request(struct evhttp_request *req, void *arg)
{
	const char *path =
		evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

	if (path == NULL)
		path = "/";
	if (strncmp(path, "/_mock/", 7) == 0) {
		handle_control(req, path);
		return;
	}
	if (!is_model_path(path)) {
		mock_log("%s -> 404 unknown path", path);
		reply_error(req, 404, "mock: unknown path",
			    "invalid_request_error");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		mock_log("%s -> 405 not POST", path);
		reply_error(req, 405, "mock: model endpoints take POST",
			    "invalid_request_error");
		return;
	}
	handle_model(req, path);
}

/* SIGTERM/SIGINT: leave the event loop. */
static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	mock_log("signal %d, exiting", (int)sig);
	event_base_loopexit(srv.base, NULL);
}

/* Writes the bound port to file through a temporary file and a rename, so
 * a reader never sees it half written. */
static int
write_port_file(const char *file, int port)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= (int)sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, file) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Prints the usage text. */
static void
usage(FILE *to)
{
	fputs("usage: mock_upstream --port N [--host 127.0.0.1] "
	      "--fixtures DIR [--fixtures DIR]...\n"
	      "           [--latency-ms N] [--chunk-delay-ms N] "
	      "[--port-file FILE] [--quiet]\n",
	      to);
}

/* Parses a non-negative integer option or exits. */
static int
parse_nonneg(const char *opt, const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < 0 || v > INT_MAX) {
		fprintf(stderr, "mock_upstream: bad value for --%s: %s\n", opt,
			s);
		exit(2);
	}
	return (int)v;
}

/* The command line's settings besides the knobs in srv. */
struct options {
	const char *host;
	const char *port_file;
	int port;
};

/* Parses the command line into o and srv's start-up knobs and fixture
 * directories. 0, or the exit status plus one. */
static int
parse_args(int argc, char **argv, struct options *o)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'H' },
		{ "fixtures", required_argument, NULL, 'f' },
		{ "latency-ms", required_argument, NULL, 'l' },
		{ "chunk-delay-ms", required_argument, NULL, 'c' },
		{ "port-file", required_argument, NULL, 'P' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			o->port = parse_nonneg("port", optarg);
			break;
		case 'H':
			o->host = optarg;
			break;
		case 'f':
			if (srv.nfixtures == MOCK_MAX_DIRS) {
				fprintf(stderr,
					"mock_upstream: at most %d "
					"--fixtures\n",
					MOCK_MAX_DIRS);
				return 3;
			}
			srv.fixtures[srv.nfixtures++] = optarg;
			break;
		case 'l':
			srv.defaults.mc_latency_ms =
				parse_nonneg("latency-ms", optarg);
			break;
		case 'c':
			srv.defaults.mc_chunk_delay_ms =
				parse_nonneg("chunk-delay-ms", optarg);
			break;
		case 'P':
			o->port_file = optarg;
			break;
		case 'q':
			srv.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return 3;
		}
	}
	if (optind != argc || o->port < 0 || o->port > 65535 ||
	    srv.nfixtures == 0) {
		usage(stderr);
		return 3;
	}
	return 0;
}

/* Checks the fixture directories; with a single one, its sibling extra/
 * joins them when it exists. 0 or -1. */
static int
check_fixture_dirs(void)
{
	struct stat st;

	for (int i = 0; i < srv.nfixtures; i++) {
		if (stat(srv.fixtures[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "mock_upstream: %s: not a directory\n",
				srv.fixtures[i]);
			return -1;
		}
	}
	if (srv.nfixtures == 1) {
		if (asprintf(&srv.extra_dir, "%s/../extra", srv.fixtures[0]) <
		    0)
			abort();
		if (stat(srv.extra_dir, &st) == 0 && S_ISDIR(st.st_mode))
			srv.fixtures[srv.nfixtures++] = srv.extra_dir;
	}
	return 0;
}

/* Creates the server and listens on o's address (port 0: one the kernel
 * picks), writing the port to o->port_file. 0 or -1. */
static int
listen_on(struct options *o)
{
	struct evhttp_bound_socket *bound;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);

	srv.base = event_base_new();
	if (srv.base == NULL)
		return -1;
	srv.http = evhttp_new(srv.base);
	if (srv.http == NULL)
		return -1;
	evhttp_set_gencb(srv.http, on_request, NULL);
	evhttp_set_allowed_methods(
		srv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
				  EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
				  EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
	bound = evhttp_bind_socket_with_handle(srv.http, o->host,
					       (ev_uint16_t)o->port);
	if (bound == NULL) {
		fprintf(stderr, "mock_upstream: cannot listen on %s:%d\n",
			o->host, o->port);
		return -1;
	}
	/* evhttp listens with a backlog of 128: a gateway opening hundreds
	 * of connections at once would see SYNs dropped and retried a
	 * second later. Listening again sets a deeper one. */
	if (listen(evhttp_bound_socket_get_fd(bound), 4096) < 0)
		return -1;
	if (getsockname(evhttp_bound_socket_get_fd(bound),
			(struct sockaddr *)&ss, &sslen) < 0)
		return -1;
	o->port = ntohs(ss.ss_family == AF_INET6
				? ((struct sockaddr_in6 *)&ss)->sin6_port
				: ((struct sockaddr_in *)&ss)->sin_port);
	if (o->port_file != NULL &&
	    write_port_file(o->port_file, o->port) < 0) {
		fprintf(stderr, "mock_upstream: cannot write %s: %s\n",
			o->port_file, strerror(errno));
		return -1;
	}
	return 0;
}

/* Frees what the server holds. Live requests end with their connections
 * (evhttp_free), whose close callbacks free their state; anything left has
 * no connection any more. */
static void
shut_down(void)
{
	struct mock_req *mr;

	if (srv.http != NULL)
		evhttp_free(srv.http);
	while ((mr = TAILQ_FIRST(&srv.live)) != NULL)
		mr_free(mr);
	if (srv.base != NULL)
		event_base_free(srv.base);
	if (srv.blackhole[1] >= 0)
		close(srv.blackhole[1]);
	if (srv.blackhole[0] >= 0)
		close(srv.blackhole[0]);
	free(srv.last_request);
	free(srv.extra_dir);
	model_stats_clear();
}

int
main(int argc, char **argv)
{
	struct options o = { "127.0.0.1", NULL, -1 };
	struct event *sigterm = NULL, *sigint = NULL;
	int rc;

	srv.defaults.mc_cut_after = MOCK_DEFAULT_CUT_AFTER;
	srv.defaults.mc_fail_times = -1;
	srv.defaults.mc_greedy_uncapped = MOCK_GREEDY_UNCAPPED;
	srv.defaults.mc_greedy_prompt_tokens = MOCK_GREEDY_PROMPT;
	srv.defaults.mc_greedy_per_event = MOCK_GREEDY_PER_EVENT;
	if ((rc = parse_args(argc, argv, &o)) != 0)
		return rc - 1;
	if (check_fixture_dirs() != 0)
		return 2;
	srv.cfg = srv.defaults;
	srv.blackhole[0] = srv.blackhole[1] = -1;
	TAILQ_INIT(&srv.live);
	SLIST_INIT(&srv.by_model);
	signal(SIGPIPE, SIG_IGN);
	rc = 1;
	if (listen_on(&o) != 0)
		goto out;
	sigterm = evsignal_new(srv.base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(srv.base, SIGINT, on_signal, NULL);
	if (sigterm == NULL || sigint == NULL ||
	    evsignal_add(sigterm, NULL) < 0 || evsignal_add(sigint, NULL) < 0)
		goto out;
	mock_log("listening on %s:%d, fixtures %s", o.host, o.port,
		 srv.fixtures[0]);
	for (int i = 1; i < srv.nfixtures; i++)
		mock_log("fixtures also from %s", srv.fixtures[i]);
	event_base_dispatch(srv.base);
	rc = 0;
out:
	if (sigterm != NULL)
		event_free(sigterm);
	if (sigint != NULL)
		event_free(sigint);
	shut_down();
	return rc;
}
