/*
 * mock.h - mock_upstream, a fake LLM provider for integration tests and
 * benchmarks: what its files share.
 *
 * Principle: the mock replays the recorded fixtures byte for byte, so what a
 * test sees through the gateway can be compared with the fixture file, and
 * it misbehaves only when told to (POST /_mock/config, below: besides
 * failures, it can read bodies as a permissive provider does and answer
 * greedily instead of from fixtures). A request names its fixture through the
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
 *   .../messages/count_tokens   Anthropic's count of a prompt, checked
 *            as .../messages: {"input_tokens": N}, N the usage.input_tokens
 *            of the model's JSON fixture.
 *   .../responses  OpenAI Responses.
 *   anything else ending in /chat/completions, /completions or
 *            /embeddings: OpenAI and the OpenAI-compatible providers. An
 *            embeddings request with "encoding_format": "base64" gets each
 *            vector as the base64 of its little-endian float32 values.
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
 *   gzip             "off" (the default), "always" (as a CDN that
 *                    compresses whatever was asked) or "asked" (when the
 *                    request's Accept-Encoding names gzip): answers go out
 *                    with Content-Encoding: gzip, a stream flushed event by
 *                    event; answers cut short on purpose are never
 *                    compressed
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
 *   last_member_wins true: read bodies as a permissive provider's parser
 *                    does: of two members of one object with the same
 *                    name (compared after unescaping, so "mod\u0065l" is
 *                    "model"), the last one counts, in every object.
 *                    false (the default): the first one counts, as cJSON
 *                    finds it.
 *   fold_names       true: the members of the top-level object and of its
 *                    stream_options match names as Go's encoding/json
 *                    matches them to fields: ASCII case-insensitively,
 *                    with U+212A KELVIN SIGN as 'k' and U+017F LONG S as
 *                    's' ("MODEL", "ſtream" and "max_Tokens" are model,
 *                    stream and max_tokens), and of names equal that way
 *                    the last one counts. Default false.
 *            Both change what the mock makes of a body: the model (so the
 *            fixture served and the name counted in "by_model"), stream,
 *            stream_options, the caps and n. /_mock/last_request still
 *            shows the body as received.
 *   greedy           true: answer every model request, whatever its model
 *                    (no fixture is read), with generated output using
 *                    every output token the request allows: per choice,
 *                    the request's cap (the first of max_completion_tokens,
 *                    max_tokens and max_output_tokens that is a number;
 *                    Anthropic: max_tokens), or greedy_uncapped when there
 *                    is none or ignore_caps is set; chat and completions
 *                    requests get n choices (n from 1 to 128, else 1);
 *                    4,000,000 words at most in all. The text is "the"
 *                    followed by " the" repeated, one token a word in
 *                    cl100k_base and o200k_base. The usage reported: prompt
 *                    (input) tokens greedy_prompt_tokens, completion
 *                    (output) tokens the words sent, in the endpoint's
 *                    shape. Not streamed: one chat.completion (n choices),
 *                    text_completion, response object or Anthropic message.
 *                    Streamed ("stream":true): the wire's events, each
 *                    carrying greedy_per_event words, then the usage: a
 *                    usage-only chunk (chat and completions, under the
 *                    include_usage rule above), then data: [DONE];
 *                    Responses end with response.completed, Anthropic with
 *                    message_delta (its usage) and message_stop.
 *                    Embeddings: one short vector per input; prompt_tokens
 *                    counts the ids of an input given as an array of
 *                    integers, and greedy_prompt_tokens per other input.
 *                    Answers are paced, cut and counted as "served" like
 *                    fixtures. Default false.
 *   greedy_uncapped  words per choice when a request has no cap (17000)
 *   greedy_prompt_tokens  prompt tokens reported (10)
 *   greedy_per_event words per stream event (16, at least 1)
 *   ignore_caps      true: greedy answers use greedy_uncapped whatever the
 *                    request's caps say, as a provider that ignores them
 *                    (default false)
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
#ifndef TOLLGATE_MOCK_H
#define TOLLGATE_MOCK_H

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

#define MOCK_MAX_FIXTURE       (256 * 1024 * 1024)
#define MOCK_DEFAULT_CUT_AFTER 2
#define MOCK_MAX_DIRS          8
#define MOCK_MAX_NAME          200 /* longest fixture name */
#define MOCK_GREEDY_UNCAPPED   17000
#define MOCK_GREEDY_PROMPT     10
#define MOCK_GREEDY_PER_EVENT  16

/* The provider wire a request speaks, told by its path. */
enum mock_wire {
	WIRE_OPENAI,    /* OpenAI and the OpenAI-compatible providers */
	WIRE_AZURE,     /* Azure OpenAI deployment paths */
	WIRE_ANTHROPIC, /* Anthropic Messages */
	WIRE_RESPONSES, /* OpenAI Responses */
};

/* The oldest Azure api-version (date part) that takes stream_options. */
#define AZURE_STREAM_OPTIONS_SINCE "2024-09-01"

enum mock_fail {
	FAIL_NONE,
	FAIL_500,   /* answer 500 with an OpenAI-shaped error */
	FAIL_429,   /* answer openai-error-429.json with 429, Retry-After */
	FAIL_HANG,  /* never answer; wait for the peer to leave */
	FAIL_CUT,   /* send part of the response, then close */
	FAIL_CLOSE, /* close right after reading the request */
	FAIL_STALL, /* send part of the response, then go silent */
	FAIL_ERROR, /* send part of a stream, then an error event */
};

/* What OpenAI says when it fails in the middle of a stream. */
#define MOCK_MIDSTREAM_ERROR                                                   \
	"The server had an error while processing your request."

/* What Anthropic says for a 500, and in the middle of a stream. */
#define ANTHROPIC_500                                                          \
	"{\"type\":\"error\",\"error\":{\"type\":\"api_error\","               \
	"\"message\":\"Internal server error\"}}"
#define ANTHROPIC_MIDSTREAM_ERROR                                              \
	"{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","        \
	"\"message\":\"Overloaded\"}}"

/* What old Azure api-versions say about stream_options. */
#define AZURE_NO_STREAM_OPTIONS                                                \
	"{\"error\":{\"code\":\"400\",\"message\":\"Unrecognized request "     \
	"argument supplied: stream_options\"}}"

/* When answers are compressed with gzip (mock_gzip.c). */
enum mock_gzip {
	GZIP_OFF,
	GZIP_ALWAYS, /* whatever the request accepts, as a CDN may */
	GZIP_ASKED,  /* when Accept-Encoding names gzip */
};

struct mock_config {
	int mc_latency_ms;
	int mc_chunk_delay_ms;
	enum mock_fail mc_fail;
	int mc_cut_after;
	int mc_fail_times;                     /* -1: until changed */
	char mc_fail_model[MOCK_MAX_NAME + 1]; /* "": every model */
	int mc_last_member_wins; /* duplicate members: the last one counts */
	int mc_fold_names;       /* top-level names matched Go-style */
	int mc_greedy;           /* generated answers using every token */
	int mc_greedy_uncapped;  /* words per choice when there is no cap */
	int mc_greedy_prompt_tokens;
	int mc_greedy_per_event; /* words per stream event */
	int mc_ignore_caps;      /* greedy: the request's caps are ignored */
	int mc_gzip;             /* enum mock_gzip: answers compressed */
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
	MR_WAITING,   /* latency timer armed, nothing sent yet */
	MR_STREAMING, /* headers sent; one event per timer tick */
	MR_DRAINING,  /* cut: waiting for sent bytes to leave, then close */
	MR_CLOSING,   /* close: connection teardown on the next tick */
	MR_HANGING,   /* hang: never answered; the peer must leave */
	MR_STALLED,   /* stall: part sent, then silence until the peer leaves */
};

/* How a response is cut short after mr_cut_after events. */
enum mr_cut {
	CUT_NONE,
	CUT_CLOSE, /* close the connection */
	CUT_STALL, /* stay silent, connection open */
	CUT_ERROR, /* send an error event and end the response */
};

struct mr_span {
	size_t sp_off;
	size_t sp_len;
};

struct mock_req {
	TAILQ_ENTRY(mock_req) mr_link;
	struct evhttp_request *mr_req;     /* borrowed from evhttp */
	struct evhttp_connection *mr_conn; /* borrowed from evhttp */
	struct event *mr_timer;
	struct event *mr_watch; /* peer-close watch while nothing is sent */
	enum mr_state mr_state;
	int mr_status;
	int mr_sse;         /* body is a stream of events */
	enum mr_cut mr_cut; /* cut the response short, and how */
	int mr_cut_after;   /* events sent before a cut */
	int mr_retry_after; /* add Retry-After: 1 */
	int mr_failed;      /* not answered from a fixture */
	int mr_delay_ms;    /* between stream events */
	enum mock_wire mr_wire;
	char mr_model[MOCK_MAX_NAME + 1]; /* fixture name, "-": none */
	char *mr_body;                    /* owned */
	size_t mr_len;
	struct mr_span *mr_events; /* owned; SSE only */
	size_t mr_nevents;
	size_t mr_next;    /* next event to send */
	char mr_what[192]; /* "POST /path model=M" for the log */
	void *mr_gz;       /* the z_stream compressing the answer, or NULL */
};

TAILQ_HEAD(mock_req_list, mock_req);

/* The server: its loop, its knobs, its counters. */
struct mock_server {
	struct event_base *base;
	struct evhttp *http;
	const char *fixtures[MOCK_MAX_DIRS];
	int nfixtures;
	char *extra_dir; /* owned; DIR/../extra when searched */
	int quiet;
	struct mock_config defaults;
	struct mock_config cfg;
	struct mock_stats stats;
	struct model_stats_list by_model;
	struct mock_last last;
	long in_flight;
	evutil_socket_t blackhole[2]; /* listener, the connection filling it */
	char *last_request;           /* owned; serialized JSON or NULL */
	struct mock_req_list live;
};

extern struct mock_server srv;

/* mock_main.c */

/* Writes one line to stderr unless --quiet. */
void __attribute__((format(printf, 1, 2))) mock_log(const char *fmt, ...);

/* Returns the reason phrase for an HTTP status. */
const char *status_reason(int status);

/* Returns a new OpenAI-shaped error body; caller frees. param and code may
 * be NULL (serialized as null). */
char *error_json(const char *message, const char *type, const char *param,
		 const char *code);

/* Sends a whole reply with the given body at once (control endpoints and
 * early errors). */
void reply_now(struct evhttp_request *req, int status, const char *ctype,
	       const char *body, size_t len);

/* Sends a JSON reply built from a cJSON tree; takes ownership of root. */
void reply_json(struct evhttp_request *req, int status, cJSON *root);

/* Sends an OpenAI-shaped error reply. */
void reply_error(struct evhttp_request *req, int status, const char *message,
		 const char *type);

/* mock_fixture.c */

/* Reads fixture file name from the first fixture directory that has it;
 * returns NULL when none has. Caller frees. */
char *fixture_read(const char *name, size_t *lenp);

/* Returns a new JSON error body in the shape of the wire's provider, for a
 * refusal or failure of the mock itself; caller frees. The OpenAI shape
 * takes type, param and code (NULL: null); Anthropic's type follows the
 * status as Anthropic's does; Azure names the status in "code". */
char *wire_error_json(enum mock_wire wire, int status, const char *message,
		      const char *type, const char *param, const char *code);

/* Returns a copy of a constant body; caller frees. */
char *body_dup(const char *s);

/*
 * Returns the wire a model path speaks. An Azure deployment path also
 * gives its deployment, copied to dep (size bytes); "" otherwise.
 */
enum mock_wire wire_of(const char *path, char *dep, size_t size);

/* Returns whether a model name is safe to use as a file name. */
int model_name_ok(const char *m);

/* Returns the HTTP status of an error fixture name: the first 3-digit number
 * after "-error-", else 429. */
int error_status(const char *model);

/* Returns whether the fixture belongs to a provider that sends stream usage
 * only on request. */
int usage_on_request(const char *model);

/* Replaces mr's SSE body with the usage-stripped version. */
void mr_strip_usage(struct mock_req *mr);

/* Splits mr's SSE body into events. */
void mr_split_events(struct mock_req *mr);

/* mock_stream.c */

/* Takes a request off the live list and frees it. */
void mr_free(struct mock_req *mr);

/* Connection close callback: the client left before the request ended. */
void mr_conn_closed(struct evhttp_connection *conn, void *arg);

/* Arms mr's timer to call mr_step() after ms milliseconds. */
void mr_arm(struct mock_req *mr, int ms);

/* Timer callback. */
void mr_timer_cb(evutil_socket_t fd, short what, void *arg);

/* Starts watching mr's socket for the peer's leaving. */
void mr_watch_peer(struct mock_req *mr);

/* Puts mr into the hang state: no answer until the peer leaves. */
void mr_hang(struct mock_req *mr);

/* mock_model.c */

/* Handles a request to a model endpoint. */
void handle_model(struct evhttp_request *req, const char *path);

/* Whether path is Anthropic's count of a prompt's tokens
 * (.../messages/count_tokens). */
int mock_is_count_tokens(const char *path);

/* mock_fixture.c */

/* Rewrites mr's embeddings answer with each vector in base64 (the
 * little-endian float32 values), as OpenAI answers "encoding_format":
 * "base64". */
void mr_embeddings_base64(struct mock_req *mr);

/* mock_gzip.c */

/* Starts compressing mr's answer when the gzip knob says so (adding
 * Content-Encoding: gzip to the reply's headers): 1, else 0. */
int mock_gzip_begin(struct mock_req *mr);

/* Compresses len bytes at p into out, flushed so the client can decode
 * them now; with finish, the gzip trailer follows. */
void mock_gzip_add(struct mock_req *mr, const char *p, size_t len, int finish,
		   struct evbuffer *out);

/* Frees mr's compressor, if any. */
void mock_gzip_end(struct mock_req *mr);

/* mock_body.c */

/* Parses a model request's body the way the knobs say the provider reads
 * it (last_member_wins, fold_names); NULL when it is not JSON. Caller
 * deletes. */
cJSON *body_parse(const char *body, size_t len);

/* mock_greedy.c */

/* Sets mr's answer to the greedy one for a model request on path whose
 * body root (an object, borrowed) names model m. */
void greedy_load(struct mock_req *mr, const cJSON *root, const char *path,
		 const char *m);

/* mock_control.c */

/* Returns the counters of a fixture name; creates them when create is set,
 * else returns NULL for a name not seen since the last reset. */
struct model_stats *model_stats_of(const char *name, int create);

/* Forgets every fixture name's counters. */
void model_stats_clear(void);

/* Handles the /_mock/ control endpoints. */
void handle_control(struct evhttp_request *req, const char *path);

#endif
