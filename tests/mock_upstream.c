/*
 * mock_upstream.c - a fake LLM provider for integration tests and benchmarks.
 *
 * Principle: the mock replays the recorded fixtures byte for byte, so what a
 * test sees through the gateway can be compared with the fixture file, and
 * it misbehaves only when told to. A request names its fixture through the
 * "model" field of its JSON body (an Azure request through its deployment,
 * see below): model M is served from DIR/M.sse (always a stream) when that
 * file exists, else from DIR/M-stream.sse when the body asks for
 * "stream":true, else from DIR/M.json. A model whose name contains
 * "-error-" is an error fixture: DIR/M.json with the HTTP status named by
 * the first 3-digit number after "-error-" (429 when there is none).
 * Fixtures are looked up in every --fixtures DIR in the order given; with a
 * single --fixtures DIR, DIR/../extra is searched after it when it exists.
 *
 * The path says which provider's wire a request speaks; answers, refusals
 * and injected failures take that provider's shapes:
 *   .../openai/deployments/D/chat/completions, .../completions and
 *   .../embeddings   Azure OpenAI. The fixture is deployment D (the body's
 *            "model" is optional and ignored). Without an api-key header:
 *            401 with azure-openai-error-401.json; without an api-version
 *            query parameter: 400. An api-version older than
 *            2024-09-01-preview (the date part compared) rejects a body
 *            that has "stream_options" with 400, as Azure did.
 *   .../messages   Anthropic Messages. Without an x-api-key or an
 *            anthropic-version header: 401 with anthropic-error-401.json.
 *            Errors are {"type":"error","error":{"type":T,"message":M}}.
 *   .../responses  OpenAI Responses.
 *   anything else ending in /chat/completions, /completions or
 *            /embeddings: OpenAI and the OpenAI-compatible providers.
 *
 * The one deliberate change to the bytes copies real providers: OpenAI,
 * Azure OpenAI, DashScope and Qianfan send usage in a chat or completions
 * stream only when the request carries "stream_options":{"include_usage":
 * true}. Without it the usage-only event (empty "choices" and a "usage"
 * object) is dropped and any other "usage" object is removed from its
 * event, which is then re-serialized; every other event stays exact. This
 * applies to every Azure request and to OpenAI-wire requests for models
 * named openai-*, azure-openai-*, dashscope-* and qianfan-*; Anthropic and
 * Responses streams always carry their usage.
 *
 * Streams go out with chunked transfer encoding, one SSE event per chunk,
 * paced by event timers so one thread serves many slow streams at once.
 * Each model request lives in a struct mock_req driven by mr_step(); it
 * ends in mr_finish(), which takes the reason that is logged. When the
 * client goes away first, the connection's close callback ends it.
 *
 * Control endpoints under /_mock/ (JSON over HTTP on the same port) change
 * latency and pacing, inject failures for the next N model requests, report
 * counters and return the last model request received, so tests can check
 * what the gateway sent upstream.
 *
 * POST /_mock/config takes a JSON object; every member is optional:
 *   latency_ms       wait before the response starts
 *   chunk_delay_ms   wait between two stream events
 *   fail             failure to inject, one of:
 *     none   answer from the fixture
 *     500    answer 500 with an OpenAI-shaped error, before any other byte
 *            (Anthropic: {"type":"error","error":{"type":"api_error",
 *            "message":"Internal server error"}})
 *     429    answer openai-error-429.json with 429 and Retry-After: 1
 *            (Anthropic: anthropic-error-429.json; Azure:
 *            azure-openai-error-429.json)
 *     hang   never answer; wait for the peer to leave
 *     cut    send cut_after events (half of a JSON body), then close the
 *            connection without ending the response
 *     close  close the connection right after reading the request
 *     stall  send cut_after events (half of a JSON body), then go silent
 *            with the connection open until the peer leaves
 *     error  send cut_after events of the 200 stream, then the event
 *            data: {"error":{"message":"The server had an error while
 *            processing your request.","type":"server_error","param":null,
 *            "code":null}} and end the response there, without [DONE], as
 *            OpenAI does when it fails mid-stream; a JSON answer gets that
 *            error body with status 500 instead. Anthropic: the event
 *            "event: error" with data {"type":"error","error":{"type":
 *            "overloaded_error","message":"Overloaded"}} (a JSON answer:
 *            500 with the api_error body above). Responses: "event: error"
 *            with data {"type":"error","code":"server_error","message":
 *            ...,"param":null}
 *   cut_after        events sent before cut, stall or error (default 2); a
 *                    stream with fewer events than that ends normally
 *   fail_times       requests the failure applies to (-1: until changed)
 *   fail_model       the failure applies only to requests for this fixture
 *                    name (body model or Azure deployment); requests for
 *                    other names are served normally and do not count
 *                    against fail_times. "" or null: every request. A
 *                    config that sets "fail" without "fail_model" clears it.
 * Refusals of the wire checks (missing credentials, api-version) happen
 * before any injected failure and do not consume one.
 * POST /_mock/reset restores the start-up knobs and zeroes the counters.
 * GET /_mock/last_request returns the last model request received: method,
 * path, query (null when none), wire (openai, azure, anthropic, responses),
 * every header as sent (names in lower case, nothing redacted) and body.
 * POST /_mock/blackhole returns {"port":N}: a local port whose listen queue
 * is kept full and never accepted, so a connection attempt to it neither
 * succeeds nor fails until the connecting side gives up (the same port on
 * every call).
 *
 * GET /_mock/stats: "requests" counts model requests received, "served"
 * those answered completely from a fixture (error fixtures included),
 * "failed" those answered otherwise: injected failures, malformed bodies,
 * unknown fixtures and peers that left before the end. "client_left" counts
 * the requests whose peer closed the connection before the response ended
 * (a gateway cancelling the transfer). "in_flight" is the number of model
 * requests not yet finished. "last" describes the model request that
 * finished last (null before the first): "what" (method, path, model),
 * "status" (0 when no response was started), "end" (why it ended, as
 * logged), "events_sent" (stream events handed to the connection) and
 * "events_total" (events in the stream it was answering from). "by_model"
 * has the same counters per fixture name (body model or Azure deployment,
 * "-" when the request named none): {"NAME":{"requests":n,"served":m,
 * "failed":k}}, so a test can see which targets a gateway tried.
 *
 * The peer's leaving is noticed when a write fails, and also while nothing
 * is being written: during latency_ms, hang and stall a watch on the socket
 * sees the close.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define MOCK_MAX_FIXTURE	(256 * 1024 * 1024)
#define MOCK_DEFAULT_CUT_AFTER	2
#define MOCK_MAX_DIRS		8
#define MOCK_MAX_NAME		200	/* longest fixture name */

/* The provider wire a request speaks, told by its path. */
enum mock_wire {
	WIRE_OPENAI,	/* OpenAI and the OpenAI-compatible providers */
	WIRE_AZURE,	/* Azure OpenAI deployment paths */
	WIRE_ANTHROPIC,	/* Anthropic Messages */
	WIRE_RESPONSES,	/* OpenAI Responses */
};

static const char *const wire_names[] = {
	[WIRE_OPENAI] = "openai",
	[WIRE_AZURE] = "azure",
	[WIRE_ANTHROPIC] = "anthropic",
	[WIRE_RESPONSES] = "responses",
};

/* The oldest Azure api-version (date part) that takes stream_options. */
#define AZURE_STREAM_OPTIONS_SINCE	"2024-09-01"

enum mock_fail {
	FAIL_NONE,
	FAIL_500,	/* answer 500 with an OpenAI-shaped error */
	FAIL_429,	/* answer openai-error-429.json with 429, Retry-After */
	FAIL_HANG,	/* never answer; wait for the peer to leave */
	FAIL_CUT,	/* send part of the response, then close */
	FAIL_CLOSE,	/* close right after reading the request */
	FAIL_STALL,	/* send part of the response, then go silent */
	FAIL_ERROR,	/* send part of a stream, then an error event */
};

static const char *const fail_names[] = {
	[FAIL_NONE] = "none",
	[FAIL_500] = "500",
	[FAIL_429] = "429",
	[FAIL_HANG] = "hang",
	[FAIL_CUT] = "cut",
	[FAIL_CLOSE] = "close",
	[FAIL_STALL] = "stall",
	[FAIL_ERROR] = "error",
};

/* What OpenAI says when it fails in the middle of a stream. */
#define MOCK_MIDSTREAM_ERROR \
	"The server had an error while processing your request."

/* What Anthropic says for a 500, and in the middle of a stream. */
#define ANTHROPIC_500 \
	"{\"type\":\"error\",\"error\":{\"type\":\"api_error\"," \
	"\"message\":\"Internal server error\"}}"
#define ANTHROPIC_MIDSTREAM_ERROR \
	"{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"," \
	"\"message\":\"Overloaded\"}}"

/* What old Azure api-versions say about stream_options. */
#define AZURE_NO_STREAM_OPTIONS \
	"{\"error\":{\"code\":\"400\",\"message\":\"Unrecognized request " \
	"argument supplied: stream_options\"}}"

struct mock_config {
	int mc_latency_ms;
	int mc_chunk_delay_ms;
	enum mock_fail mc_fail;
	int mc_cut_after;
	int mc_fail_times;	/* -1: until changed */
	char mc_fail_model[MOCK_MAX_NAME + 1];	/* "": every model */
};

struct mock_stats {
	long ms_requests;
	long ms_served;
	long ms_failed;
	long ms_client_left;
};

/* Counters of one fixture name, for "by_model" in /_mock/stats. */
struct model_stats {
	SLIST_ENTRY(model_stats) mm_link;
	long mm_requests;
	long mm_served;
	long mm_failed;
	char mm_name[MOCK_MAX_NAME + 1];
};

SLIST_HEAD(model_stats_list, model_stats);

/* The model request that finished last, for /_mock/stats. */
struct mock_last {
	int ml_seen;
	int ml_status;
	char ml_what[192];
	char ml_end[64];
	size_t ml_events_sent;
	size_t ml_events_total;
};

/* A model request's life; mr_step() moves it on. */
enum mr_state {
	MR_WAITING,	/* latency timer armed, nothing sent yet */
	MR_STREAMING,	/* headers sent; one event per timer tick */
	MR_DRAINING,	/* cut: waiting for sent bytes to leave, then close */
	MR_CLOSING,	/* close: connection teardown on the next tick */
	MR_HANGING,	/* hang: never answered; the peer must leave */
	MR_STALLED,	/* stall: part sent, then silence until the peer leaves */
};

/* How a response is cut short after mr_cut_after events. */
enum mr_cut {
	CUT_NONE,
	CUT_CLOSE,	/* close the connection */
	CUT_STALL,	/* stay silent, connection open */
	CUT_ERROR,	/* send an error event and end the response */
};

struct mr_span {
	size_t sp_off;
	size_t sp_len;
};

struct mock_req {
	TAILQ_ENTRY(mock_req) mr_link;
	struct evhttp_request *mr_req;		/* borrowed from evhttp */
	struct evhttp_connection *mr_conn;	/* borrowed from evhttp */
	struct event *mr_timer;
	struct event *mr_watch;	/* peer-close watch while nothing is sent */
	enum mr_state mr_state;
	int mr_status;
	int mr_sse;		/* body is a stream of events */
	enum mr_cut mr_cut;	/* cut the response short, and how */
	int mr_cut_after;	/* events sent before a cut */
	int mr_retry_after;	/* add Retry-After: 1 */
	int mr_failed;	/* not answered from a fixture */
	int mr_delay_ms;	/* between stream events */
	enum mock_wire mr_wire;
	char mr_model[MOCK_MAX_NAME + 1];	/* fixture name, "-": none */
	char *mr_body;		/* owned */
	size_t mr_len;
	struct mr_span *mr_events;	/* owned; SSE only */
	size_t mr_nevents;
	size_t mr_next;		/* next event to send */
	char mr_what[192];	/* "POST /path model=M" for the log */
};

TAILQ_HEAD(mock_req_list, mock_req);

static struct {
	struct event_base *base;
	struct evhttp *http;
	const char *fixtures[MOCK_MAX_DIRS];
	int nfixtures;
	char *extra_dir;	/* owned; DIR/../extra when searched */
	int quiet;
	struct mock_config defaults;
	struct mock_config cfg;
	struct mock_stats stats;
	struct model_stats_list by_model;
	struct mock_last last;
	long in_flight;
	evutil_socket_t blackhole[2];	/* listener, the connection filling it */
	char *last_request;	/* owned; serialized JSON or NULL */
	struct mock_req_list live;
} srv;

static void mr_step(struct mock_req *mr);
static void mr_unwatch_peer(struct mock_req *mr);
static void mr_stall(struct mock_req *mr);
static void mr_cut_short(struct mock_req *mr);

/* Writes one line to stderr unless --quiet. */
static void __attribute__((format(printf, 1, 2)))
mock_log(const char *fmt, ...)
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
static const char *
status_reason(int status)
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
	case 529: return "Site Overloaded";
	default: return "Error";
	}
}

/* Returns a new OpenAI-shaped error body; caller frees. param and code may
 * be NULL (serialized as null). */
static char *
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
static void
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
static void
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
static void
reply_error(struct evhttp_request *req, int status, const char *message,
    const char *type)
{
	char *body = error_json(message, type, NULL, NULL);

	reply_now(req, status, "application/json", body, strlen(body));
	free(body);
}

/* Reads dir/name into a new buffer; returns NULL when the file does not
 * exist or cannot be read. Caller frees. */
static char *
fixture_read_in(const char *dir, const char *name, size_t *lenp)
{
	char path[PATH_MAX];
	struct stat st;
	FILE *f;
	char *buf;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return NULL;
	f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > MOCK_MAX_FIXTURE)
		goto fail;
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		goto fail;
	if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		free(buf);
		goto fail;
	}
	buf[st.st_size] = '\0';
	fclose(f);
	*lenp = (size_t)st.st_size;
	return buf;
fail:
	fclose(f);
	return NULL;
}

/* Reads fixture file name from the first fixture directory that has it;
 * returns NULL when none has. Caller frees. */
static char *
fixture_read(const char *name, size_t *lenp)
{
	char *buf;
	int i;

	for (i = 0; i < srv.nfixtures; i++) {
		buf = fixture_read_in(srv.fixtures[i], name, lenp);
		if (buf != NULL)
			return buf;
	}
	return NULL;
}

/* Returns a new JSON error body in the shape of the wire's provider, for a
 * refusal or failure of the mock itself; caller frees. The OpenAI shape
 * takes type, param and code (NULL: null); Anthropic's type follows the
 * status as Anthropic's does; Azure names the status in "code". */
static char *
wire_error_json(enum mock_wire wire, int status, const char *message,
    const char *type, const char *param, const char *code)
{
	cJSON *root, *err;
	const char *atype;
	char num[16];
	char *out;

	switch (wire) {
	case WIRE_OPENAI:
	case WIRE_RESPONSES:
		break;
	case WIRE_ANTHROPIC:
		switch (status) {
		case 400: atype = "invalid_request_error"; break;
		case 401: atype = "authentication_error"; break;
		case 403: atype = "permission_error"; break;
		case 404: atype = "not_found_error"; break;
		case 413: atype = "request_too_large"; break;
		case 429: atype = "rate_limit_error"; break;
		case 529: atype = "overloaded_error"; break;
		default: atype = "api_error"; break;
		}
		root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "type", "error");
		err = cJSON_AddObjectToObject(root, "error");
		cJSON_AddStringToObject(err, "type", atype);
		cJSON_AddStringToObject(err, "message", message);
		goto print;
	case WIRE_AZURE:
		snprintf(num, sizeof(num), "%d", status);
		root = cJSON_CreateObject();
		err = cJSON_AddObjectToObject(root, "error");
		cJSON_AddStringToObject(err, "code", code != NULL ? code : num);
		cJSON_AddStringToObject(err, "message", message);
		goto print;
	}
	return error_json(message, type, param, code);
print:
	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (out == NULL)
		abort();
	return out;
}

/* Returns a copy of a constant body; caller frees. */
static char *
body_dup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

/*
 * Returns the wire a model path speaks. An Azure deployment path also
 * gives its deployment, copied to dep (size bytes); "" otherwise.
 */
static enum mock_wire
wire_of(const char *path, char *dep, size_t size)
{
	static const char *const azure_ops[] = {
		"chat/completions", "completions", "embeddings",
	};
	const char *p = strstr(path, "/openai/deployments/"), *slash = NULL;
	size_t n = strlen(path), i;

	dep[0] = '\0';
	if (p != NULL) {
		p += strlen("/openai/deployments/");
		slash = strchr(p, '/');
	}
	if (slash != NULL && slash > p && (size_t)(slash - p) < size) {
		for (i = 0; i < sizeof(azure_ops) / sizeof(azure_ops[0]); i++) {
			if (strcmp(slash + 1, azure_ops[i]) != 0)
				continue;
			memcpy(dep, p, (size_t)(slash - p));
			dep[slash - p] = '\0';
			return WIRE_AZURE;
		}
	}
	if (n >= 9 && strcmp(path + n - 9, "/messages") == 0)
		return WIRE_ANTHROPIC;
	if (n >= 10 && strcmp(path + n - 10, "/responses") == 0)
		return WIRE_RESPONSES;
	return WIRE_OPENAI;
}

/* Returns whether a model name is safe to use as a file name. */
static int
model_name_ok(const char *m)
{
	size_t n = strlen(m);

	if (n == 0 || n > 200 || m[0] == '.')
		return 0;
	for (; *m != '\0'; m++)
		if (*m == '/' || *m == '\\' || (unsigned char)*m < 0x20)
			return 0;
	return 1;
}

/* Returns the HTTP status of an error fixture name: the first 3-digit number
 * after "-error-", else 429. */
static int
error_status(const char *model)
{
	const char *p = strstr(model, "-error-");
	const char *q;
	int v;

	for (p += 7; *p != '\0'; p = q) {
		if (!isdigit((unsigned char)*p)) {
			q = p + 1;
			continue;
		}
		for (q = p; isdigit((unsigned char)*q); q++)
			;
		if (q - p == 3) {
			v = (int)strtol(p, NULL, 10);
			if (v >= 100 && v <= 599)
				return v;
		}
	}
	return 429;
}

/* Returns whether the fixture belongs to a provider that sends stream usage
 * only on request. */
static int
usage_on_request(const char *model)
{
	static const char *const prefixes[] = {
		"openai-", "azure-openai-", "dashscope-", "qianfan-",
	};
	size_t i;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(model, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

/* Returns whether the item exists and is not JSON null. */
static int
present(const cJSON *item)
{
	return item != NULL && !cJSON_IsNull(item);
}

/* Appends one event to out with its usage removed as a provider does when
 * include_usage was not asked for; the event may also be dropped. */
static void
strip_event(struct evbuffer *out, const char *ev, size_t len)
{
	const char *line = ev, *end = ev + len, *eol, *payload;
	cJSON *root = NULL, *choices, *c;
	char *printed;
	int changed = 0;

	/* Find the (single) data line of the event. */
	for (;;) {
		eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - line) >= 5 && memcmp(line, "data:", 5) == 0)
			break;
		if (eol == end)
			goto keep;
		line = eol + 1;
	}
	payload = line + 5;
	if (payload < eol && *payload == ' ')
		payload++;
	root = cJSON_ParseWithLength(payload, (size_t)(eol - payload));
	if (!cJSON_IsObject(root))
		goto keep;

	choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
	if (present(cJSON_GetObjectItemCaseSensitive(root, "usage"))) {
		if (cJSON_IsArray(choices) && cJSON_GetArraySize(choices) == 0)
			goto drop;
		cJSON_DeleteItemFromObjectCaseSensitive(root, "usage");
		changed = 1;
	}
	if (cJSON_IsArray(choices)) {
		cJSON_ArrayForEach(c, choices) {
			if (cJSON_IsObject(c) && present(
			    cJSON_GetObjectItemCaseSensitive(c, "usage"))) {
				cJSON_DeleteItemFromObjectCaseSensitive(c,
				    "usage");
				changed = 1;
			}
		}
	}
	if (!changed)
		goto keep;
	printed = cJSON_PrintUnformatted(root);
	if (printed == NULL)
		abort();
	evbuffer_add(out, ev, (size_t)(line - ev));
	evbuffer_add(out, "data: ", 6);
	evbuffer_add(out, printed, strlen(printed));
	evbuffer_add(out, eol, (size_t)(end - eol));
	free(printed);
	cJSON_Delete(root);
	return;
keep:
	evbuffer_add(out, ev, len);
drop:
	cJSON_Delete(root);
}

/* Returns the length of the event starting at p: up to and including its
 * blank line, or the rest of the buffer. */
static size_t
event_len(const char *p, size_t left)
{
	const char *e = memmem(p, left, "\n\n", 2);

	return e == NULL ? left : (size_t)(e + 2 - p);
}

/* Replaces mr's SSE body with the usage-stripped version. */
static void
mr_strip_usage(struct mock_req *mr)
{
	struct evbuffer *out = evbuffer_new();
	size_t off, n;

	if (out == NULL)
		abort();
	for (off = 0; off < mr->mr_len; off += n) {
		n = event_len(mr->mr_body + off, mr->mr_len - off);
		strip_event(out, mr->mr_body + off, n);
	}
	free(mr->mr_body);
	mr->mr_len = evbuffer_get_length(out);
	mr->mr_body = malloc(mr->mr_len + 1);
	if (mr->mr_body == NULL)
		abort();
	evbuffer_remove(out, mr->mr_body, mr->mr_len);
	mr->mr_body[mr->mr_len] = '\0';
	evbuffer_free(out);
}

/* Splits mr's SSE body into events. */
static void
mr_split_events(struct mock_req *mr)
{
	size_t off, n, cap = 16;

	mr->mr_events = malloc(cap * sizeof(*mr->mr_events));
	if (mr->mr_events == NULL)
		abort();
	for (off = 0; off < mr->mr_len; off += n) {
		n = event_len(mr->mr_body + off, mr->mr_len - off);
		if (mr->mr_nevents == cap) {
			cap *= 2;
			mr->mr_events = realloc(mr->mr_events,
			    cap * sizeof(*mr->mr_events));
			if (mr->mr_events == NULL)
				abort();
		}
		mr->mr_events[mr->mr_nevents].sp_off = off;
		mr->mr_events[mr->mr_nevents].sp_len = n;
		mr->mr_nevents++;
	}
}

/* Returns the counters of a fixture name; creates them when create is set,
 * else returns NULL for a name not seen since the last reset. */
static struct model_stats *
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
static void
model_stats_clear(void)
{
	struct model_stats *m;

	while ((m = SLIST_FIRST(&srv.by_model)) != NULL) {
		SLIST_REMOVE_HEAD(&srv.by_model, mm_link);
		free(m);
	}
}

/* Ends a model request: logs the reason, counts it and frees its state. The
 * evhttp request is not touched; the caller has replied to it, or evhttp
 * frees it with its connection. */
static void
mr_finish(struct mock_req *mr, int ok, const char *reason)
{
	struct mock_last *l = &srv.last;
	struct model_stats *m = model_stats_of(mr->mr_model, 0);

	if (ok && !mr->mr_failed)
		srv.stats.ms_served++;
	else
		srv.stats.ms_failed++;
	/* A reset while the request ran forgot its name: count nothing. */
	if (m != NULL && ok && !mr->mr_failed)
		m->mm_served++;
	else if (m != NULL)
		m->mm_failed++;
	l->ml_seen = 1;
	l->ml_status = mr->mr_status;
	snprintf(l->ml_what, sizeof(l->ml_what), "%s", mr->mr_what);
	snprintf(l->ml_end, sizeof(l->ml_end), "%s", reason);
	l->ml_events_sent = mr->mr_next;
	l->ml_events_total = mr->mr_nevents;
	if (mr->mr_status != 0)
		mock_log("%s -> %d %s", mr->mr_what, mr->mr_status, reason);
	else
		mock_log("%s -> no response, %s", mr->mr_what, reason);
	evhttp_connection_set_closecb(mr->mr_conn, NULL, NULL);
	TAILQ_REMOVE(&srv.live, mr, mr_link);
	srv.in_flight--;
	event_free(mr->mr_timer);
	if (mr->mr_watch != NULL)
		event_free(mr->mr_watch);
	free(mr->mr_events);
	free(mr->mr_body);
	free(mr);
}

/* Connection close callback: the client left before the request ended. */
static void
mr_conn_closed(struct evhttp_connection *conn, void *arg)
{
	struct mock_req *mr = arg;
	struct evhttp_request *req = mr->mr_req;

	/*
	 * After a network error evhttp detaches a request that is still
	 * being answered and leaves it to its owner; one still attached is
	 * freed with the connection.
	 */
	if (evhttp_request_get_connection(req) == NULL)
		evhttp_request_free(req);
	srv.stats.ms_client_left++;
	mr_finish(mr, 0, mr->mr_state == MR_HANGING ?
	    "hung until the client left" : mr->mr_state == MR_STALLED ?
	    "stalled until the client left" : "client closed the connection");
}

/* Closes mr's connection without (more of) a response and ends mr. */
static void
mr_abort(struct mock_req *mr, const char *reason)
{
	struct evhttp_connection *conn = mr->mr_conn;

	mr_finish(mr, 0, reason);
	evhttp_connection_free(conn);
}

/* Arms mr's timer to call mr_step() after ms milliseconds. */
static void
mr_arm(struct mock_req *mr, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(mr->mr_timer, &tv);
}

/* Timer callback. */
static void
mr_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	mr_step(arg);
}

/* Sends the response headers. */
static void
mr_start_reply(struct mock_req *mr)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(mr->mr_req);
	char len[32];

	if (mr->mr_sse) {
		evhttp_add_header(h, "Content-Type", "text/event-stream");
		evhttp_add_header(h, "Cache-Control", "no-cache");
	} else {
		evhttp_add_header(h, "Content-Type", "application/json");
		/* A cut body must still announce its full length. */
		snprintf(len, sizeof(len), "%zu", mr->mr_len);
		evhttp_add_header(h, "Content-Length", len);
	}
	if (mr->mr_retry_after)
		evhttp_add_header(h, "Retry-After", "1");
	evhttp_send_reply_start(mr->mr_req, mr->mr_status,
	    status_reason(mr->mr_status));
}

/* Sends len bytes at p as one chunk of mr's reply. */
static void
mr_send(struct mock_req *mr, const char *p, size_t len)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL)
		abort();
	evbuffer_add(buf, p, len);
	evhttp_send_reply_chunk(mr->mr_req, buf);
	evbuffer_free(buf);
}

/* Starts the wait for the sent bytes to leave before a cut. */
static void
mr_begin_drain(struct mock_req *mr)
{
	mr->mr_state = MR_DRAINING;
	mr_arm(mr, 0);
}

/* Returns the bytes not yet written to mr's socket. */
static size_t
mr_unsent(struct mock_req *mr)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(
	    mr->mr_conn);

	return evbuffer_get_length(bufferevent_get_output(bev));
}

/* Moves a request on by one step; called from its timer. */
static void
mr_step(struct mock_req *mr)
{
	struct mr_span *sp;

	switch (mr->mr_state) {
	case MR_WAITING:
		mr_unwatch_peer(mr);
		if (!mr->mr_sse && mr->mr_cut == CUT_NONE) {
			struct evbuffer *buf = evbuffer_new();
			struct evkeyvalq *h =
			    evhttp_request_get_output_headers(mr->mr_req);

			if (buf == NULL)
				abort();
			evhttp_add_header(h, "Content-Type",
			    "application/json");
			if (mr->mr_retry_after)
				evhttp_add_header(h, "Retry-After", "1");
			evbuffer_add(buf, mr->mr_body, mr->mr_len);
			evhttp_send_reply(mr->mr_req, mr->mr_status,
			    status_reason(mr->mr_status), buf);
			evbuffer_free(buf);
			mr_finish(mr, 1, "json");
			return;
		}
		mr_start_reply(mr);
		if (!mr->mr_sse) {
			mr_send(mr, mr->mr_body, mr->mr_len / 2);
			if (mr->mr_cut == CUT_STALL)
				mr_stall(mr);
			else
				mr_begin_drain(mr);
			return;
		}
		mr->mr_state = MR_STREAMING;
		/* FALLTHROUGH */
	case MR_STREAMING:
		for (;;) {
			if (mr->mr_cut != CUT_NONE && mr->mr_next >=
			    (size_t)mr->mr_cut_after) {
				mr_cut_short(mr);
				return;
			}
			if (mr->mr_next == mr->mr_nevents) {
				evhttp_send_reply_end(mr->mr_req);
				mr_finish(mr, 1, "stream");
				return;
			}
			sp = &mr->mr_events[mr->mr_next++];
			mr_send(mr, mr->mr_body + sp->sp_off, sp->sp_len);
			if (mr->mr_delay_ms > 0 &&
			    mr->mr_next < mr->mr_nevents) {
				mr_arm(mr, mr->mr_delay_ms);
				return;
			}
		}
	case MR_DRAINING:
		if (mr_unsent(mr) > 0) {
			mr_arm(mr, 1);
			return;
		}
		mr_abort(mr, mr->mr_sse ? "cut stream" : "cut body");
		return;
	case MR_CLOSING:
		mr_abort(mr, "closed without a response");
		return;
	case MR_HANGING:
	case MR_STALLED:
		return;
	}
}

/*
 * Socket watch of a request that is not being written to: waiting out its
 * latency, hanging or stalled. evhttp stops reading a connection while its
 * request awaits an answer and notices a closed peer only when a write
 * fails, so without this watch a peer's leaving would go unseen. Bytes the
 * peer sends meanwhile are discarded: they would never be answered.
 */
static void
mr_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mock_req *mr = arg;
	char buf[4096];
	ssize_t n;

	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR)))
		return;
	srv.stats.ms_client_left++;
	if (mr->mr_state == MR_WAITING)
		mr->mr_status = 0;
	mr_abort(mr, mr->mr_state == MR_HANGING ?
	    "hung until the client left" : mr->mr_state == MR_STALLED ?
	    "stalled until the client left" :
	    "client left before the response started");
}

/* Starts watching mr's socket for the peer's leaving. */
static void
mr_watch_peer(struct mock_req *mr)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(
	    mr->mr_conn);

	if (mr->mr_watch != NULL)
		return;
	mr->mr_watch = event_new(srv.base, bufferevent_getfd(bev),
	    EV_READ | EV_PERSIST, mr_watch_cb, mr);
	if (mr->mr_watch == NULL || event_add(mr->mr_watch, NULL) < 0)
		abort();
}

/* Stops the watch before evhttp uses the socket again: the watch would
 * swallow what the peer sends next. */
static void
mr_unwatch_peer(struct mock_req *mr)
{
	if (mr->mr_watch == NULL)
		return;
	event_free(mr->mr_watch);
	mr->mr_watch = NULL;
}

/* Puts mr into the hang state: no answer until the peer leaves. */
static void
mr_hang(struct mock_req *mr)
{
	mr->mr_state = MR_HANGING;
	mr->mr_status = 0;
	mr_watch_peer(mr);
	mock_log("%s hanging", mr->mr_what);
}

/* Puts mr into the stall state: what was sent stays, nothing follows, the
 * connection stays open until the peer leaves. */
static void
mr_stall(struct mock_req *mr)
{
	mr->mr_state = MR_STALLED;
	mr_watch_peer(mr);
	mock_log("%s stalled after %zu events", mr->mr_what, mr->mr_next);
}

/* Cuts a stream short after mr_cut_after events, the way mr_cut says. */
static void
mr_cut_short(struct mock_req *mr)
{
	char *err, *ev;
	size_t n;

	switch (mr->mr_cut) {
	case CUT_NONE:
	case CUT_CLOSE:
		mr_begin_drain(mr);
		return;
	case CUT_STALL:
		mr_stall(mr);
		return;
	case CUT_ERROR:
		/* One chunk, as every other event. */
		if (mr->mr_wire == WIRE_ANTHROPIC) {
			err = body_dup(ANTHROPIC_MIDSTREAM_ERROR);
		} else if (mr->mr_wire == WIRE_RESPONSES) {
			err = body_dup("{\"type\":\"error\",\"code\":"
			    "\"server_error\",\"message\":\""
			    MOCK_MIDSTREAM_ERROR "\",\"param\":null}");
		} else {
			err = error_json(MOCK_MIDSTREAM_ERROR, "server_error",
			    NULL, NULL);
		}
		ev = malloc(strlen(err) + 24);
		if (ev == NULL)
			abort();
		/* Anthropic and Responses name their error events. */
		n = (size_t)sprintf(ev, "%sdata: %s\n\n",
		    mr->mr_wire == WIRE_ANTHROPIC ||
		    mr->mr_wire == WIRE_RESPONSES ? "event: error\n" : "", err);
		mr_send(mr, ev, n);
		free(ev);
		free(err);
		evhttp_send_reply_end(mr->mr_req);
		mr_finish(mr, 1, "stream ended by an error event");
		return;
	}
}

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
	case EVHTTP_REQ_GET: method = "GET"; break;
	case EVHTTP_REQ_POST: method = "POST"; break;
	case EVHTTP_REQ_PUT: method = "PUT"; break;
	case EVHTTP_REQ_DELETE: method = "DELETE"; break;
	case EVHTTP_REQ_HEAD: method = "HEAD"; break;
	case EVHTTP_REQ_PATCH: method = "PATCH"; break;
	case EVHTTP_REQ_OPTIONS: method = "OPTIONS"; break;
	default: method = "OTHER"; break;
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
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next) {
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
			cJSON_ReplaceItemInObjectCaseSensitive(headers, name,
			    cJSON_CreateString(copy));
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
		mr_set_error(mr, 400, wire_error_json(mr->mr_wire, 400,
		    "mock: request body is not valid JSON",
		    "invalid_request_error", NULL, NULL));
		return;
	}
	if (m == NULL) {
		mr_set_error(mr, 400, wire_error_json(mr->mr_wire, 400,
		    "mock: request has no \"model\" string",
		    "invalid_request_error", "model", NULL));
		return;
	}
	stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root,
	    "stream"));
	so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
	include_usage = cJSON_IsObject(so) && cJSON_IsTrue(
	    cJSON_GetObjectItemCaseSensitive(so, "include_usage"));

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
			snprintf(name, sizeof(name), stream ? "%s-stream.sse" :
			    "%s.json", m);
			mr->mr_body = fixture_read(name, &mr->mr_len);
			mr->mr_sse = stream;
		}
	}
	if (mr->mr_body == NULL) {
		snprintf(msg, sizeof(msg), "mock: no fixture for model %.250s",
		    m);
		mr_set_error(mr, 404, wire_error_json(mr->mr_wire, 404, msg,
		    "invalid_request_error", "model", mr->mr_wire ==
		    WIRE_AZURE ? "DeploymentNotFound" : "model_not_found"));
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
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(
	    req), name);

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
		mr_set_error(mr, 401, b != NULL ? b : wire_error_json(
		    WIRE_ANTHROPIC, 401, "invalid x-api-key", NULL, NULL,
		    NULL));
		return -1;
	case WIRE_AZURE:
		break;
	}
	if (!has_header(req, "api-key")) {
		b = fixture_read("azure-openai-error-401.json", &n);
		mr_set_error(mr, 401, b != NULL ? b : wire_error_json(
		    WIRE_AZURE, 401, "Access denied due to invalid "
		    "subscription key", NULL, NULL, NULL));
		return -1;
	}
	TAILQ_INIT(&params);
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (query == NULL || evhttp_parse_query_str(query, &params) < 0 ||
	    (ver = evhttp_find_header(&params, "api-version")) == NULL ||
	    ver[0] == '\0') {
		mr_set_error(mr, 400, wire_error_json(WIRE_AZURE, 400,
		    "Missing required query parameter: api-version", NULL,
		    NULL, NULL));
		rc = -1;
	} else if (strncmp(ver, AZURE_STREAM_OPTIONS_SINCE,
	    strlen(AZURE_STREAM_OPTIONS_SINCE)) < 0 && cJSON_IsObject(root) &&
	    cJSON_GetObjectItemCaseSensitive(root, "stream_options") != NULL) {
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
	case WIRE_ANTHROPIC: file = "anthropic-error-429.json"; break;
	case WIRE_AZURE: file = "azure-openai-error-429.json"; break;
	default: file = "openai-error-429.json"; break;
	}
	b = fixture_read(file, &n);
	if (b == NULL) {
		b = wire_error_json(mr->mr_wire, 429,
		    "mock: injected rate limit", "requests", NULL,
		    "rate_limit_exceeded");
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
		mr_set_error(mr, 500, error_json(message, "server_error",
		    NULL, NULL));
}

/* Handles a request to a model endpoint. */
static void
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
	root = cJSON_ParseWithLength(body, len);
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
		mr->mr_cut = f == FAIL_CUT ? CUT_CLOSE : f == FAIL_STALL ?
		    CUT_STALL : CUT_ERROR;
		mr->mr_cut_after = srv.cfg.mc_cut_after;
		break;
	}
	mr_load_fixture(mr, root, m);
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

/* Reads an integer member of a config object into *out when present;
 * returns -1 when it is present but not an integer >= min. */
static int
config_int(const cJSON *root, const char *key, int min, int *out,
    int *seen)
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
	    config_int(root, "chunk_delay_ms", 0, &c.mc_chunk_delay_ms,
	    &seen) < 0 ||
	    config_int(root, "cut_after", 0, &c.mc_cut_after, &seen) < 0 ||
	    config_int(root, "fail_times", -1, &c.mc_fail_times,
	    &seen_times) < 0) {
		reply_error(req, 400, "mock: config numbers must be integers "
		    ">= 0 (fail_times >= -1)", "invalid_request_error");
		goto out;
	}
	fail = cJSON_GetObjectItemCaseSensitive(root, "fail");
	if (fail != NULL) {
		for (i = 0; i < sizeof(fail_names) / sizeof(fail_names[0]); i++)
			if (cJSON_IsString(fail) &&
			    strcmp(fail->valuestring, fail_names[i]) == 0)
				break;
		if (i == sizeof(fail_names) / sizeof(fail_names[0])) {
			reply_error(req, 400, "mock: fail must be one of none, "
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
		reply_error(req, 400, "mock: fail_model must be a fixture "
		    "name, \"\" or null", "invalid_request_error");
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
	    "cut_after=%d fail_times=%d fail_model=%s", c.mc_latency_ms,
	    c.mc_chunk_delay_ms, fail_names[c.mc_fail], c.mc_cut_after,
	    c.mc_fail_times, c.mc_fail_model[0] != '\0' ? c.mc_fail_model :
	    "(any)");
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
	cJSON_AddNumberToObject(o, "events_total",
	    (double)l->ml_events_total);
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
	SLIST_FOREACH(m, &srv.by_model, mm_link) {
		o = cJSON_AddObjectToObject(all, m->mm_name);
		cJSON_AddNumberToObject(o, "requests", (double)m->mm_requests);
		cJSON_AddNumberToObject(o, "served", (double)m->mm_served);
		cJSON_AddNumberToObject(o, "failed", (double)m->mm_failed);
	}
}

/* Handles the /_mock/ control endpoints. */
static void
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
	} else if (strcmp(path, "/_mock/stats") == 0 &&
	    cmd == EVHTTP_REQ_GET) {
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
			reply_error(req, 500, "mock: cannot set up the "
			    "blackhole port", "server_error");
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

/* Returns whether path ends in one of the model endpoints. */
static int
is_model_path(const char *path)
{
	static const char *const suffixes[] = {
		"/chat/completions", "/completions", "/embeddings",
		"/responses", "/messages",
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
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(
	    req));

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
	    "[--port-file FILE] [--quiet]\n", to);
}

/* Parses a non-negative integer option or exits. */
static int
parse_nonneg(const char *opt, const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < 0 ||
	    v > INT_MAX) {
		fprintf(stderr, "mock_upstream: bad value for --%s: %s\n", opt,
		    s);
		exit(2);
	}
	return (int)v;
}

int
main(int argc, char **argv)
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
	const char *host = "127.0.0.1", *port_file = NULL;
	struct evhttp_bound_socket *bound;
	struct event *sigterm = NULL, *sigint = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	struct stat st;
	struct mock_req *mr;
	int port = -1, opt, rc = 1, i;

	srv.defaults.mc_cut_after = MOCK_DEFAULT_CUT_AFTER;
	srv.defaults.mc_fail_times = -1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': port = parse_nonneg("port", optarg); break;
		case 'H': host = optarg; break;
		case 'f':
			if (srv.nfixtures == MOCK_MAX_DIRS) {
				fprintf(stderr, "mock_upstream: at most %d "
				    "--fixtures\n", MOCK_MAX_DIRS);
				return 2;
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
		case 'P': port_file = optarg; break;
		case 'q': srv.quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || port < 0 || port > 65535 ||
	    srv.nfixtures == 0) {
		usage(stderr);
		return 2;
	}
	for (i = 0; i < srv.nfixtures; i++) {
		if (stat(srv.fixtures[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "mock_upstream: %s: not a directory\n",
			    srv.fixtures[i]);
			return 2;
		}
	}
	/* One directory given: its sibling extra/ holds more fixtures. */
	if (srv.nfixtures == 1) {
		if (asprintf(&srv.extra_dir, "%s/../extra", srv.fixtures[0]) <
		    0)
			abort();
		if (stat(srv.extra_dir, &st) == 0 && S_ISDIR(st.st_mode))
			srv.fixtures[srv.nfixtures++] = srv.extra_dir;
	}
	srv.cfg = srv.defaults;
	srv.blackhole[0] = srv.blackhole[1] = -1;
	TAILQ_INIT(&srv.live);
	SLIST_INIT(&srv.by_model);
	signal(SIGPIPE, SIG_IGN);

	srv.base = event_base_new();
	if (srv.base == NULL)
		goto fail;
	srv.http = evhttp_new(srv.base);
	if (srv.http == NULL)
		goto fail;
	evhttp_set_gencb(srv.http, on_request, NULL);
	evhttp_set_allowed_methods(srv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
	bound = evhttp_bind_socket_with_handle(srv.http, host,
	    (ev_uint16_t)port);
	if (bound == NULL) {
		fprintf(stderr, "mock_upstream: cannot listen on %s:%d\n", host,
		    port);
		goto fail;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bound),
	    (struct sockaddr *)&ss, &sslen) < 0)
		goto fail;
	port = ntohs(ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port);
	if (port_file != NULL && write_port_file(port_file, port) < 0) {
		fprintf(stderr, "mock_upstream: cannot write %s: %s\n",
		    port_file, strerror(errno));
		goto fail;
	}
	sigterm = evsignal_new(srv.base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(srv.base, SIGINT, on_signal, NULL);
	if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) <
	    0 || evsignal_add(sigint, NULL) < 0)
		goto fail;
	mock_log("listening on %s:%d, fixtures %s", host, port,
	    srv.fixtures[0]);
	for (i = 1; i < srv.nfixtures; i++)
		mock_log("fixtures also from %s", srv.fixtures[i]);

	event_base_dispatch(srv.base);
	rc = 0;
fail:
	/* Live requests end with their connections: the close callbacks
	 * free their state. Anything left has no connection any more. */
	if (srv.http != NULL)
		evhttp_free(srv.http);
	while ((mr = TAILQ_FIRST(&srv.live)) != NULL) {
		mr->mr_conn = NULL;
		TAILQ_REMOVE(&srv.live, mr, mr_link);
		event_free(mr->mr_timer);
		if (mr->mr_watch != NULL)
			event_free(mr->mr_watch);
		free(mr->mr_events);
		free(mr->mr_body);
		free(mr);
	}
	if (sigterm != NULL)
		event_free(sigterm);
	if (sigint != NULL)
		event_free(sigint);
	if (srv.base != NULL)
		event_base_free(srv.base);
	if (srv.blackhole[1] >= 0)
		close(srv.blackhole[1]);
	if (srv.blackhole[0] >= 0)
		close(srv.blackhole[0]);
	free(srv.last_request);
	free(srv.extra_dir);
	model_stats_clear();
	return rc;
}
