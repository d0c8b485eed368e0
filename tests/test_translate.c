/*
 * test_translate.c - table tests for the chat <-> messages translation.
 *
 * What a user of either SDK would check: the fields of translated requests
 * and answers, tool calls both ways, system prompts, stop reasons, usage;
 * streams translated from the provider fixtures and the hand-written tool
 * streams (tests/fixtures/extra), parsed back with the SSE parser and
 * reassembled (text, tool ids, names and arguments) to compare with what
 * the upstream sent, usage metered from both sides by usage.c; round trips;
 * error bodies; and malformed input (every node of the fixtures replaced
 * by a value of another type, every event truncated at every byte, random
 * bytes), which must give NULL with a reason or -1 with nothing written,
 * never a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sse.h"
#include "translate.h"
#include "usage.h"
#include "fixture.h"
#include "tap.h"

#define CREATED 1730000123

/* ---- JSON helpers ---- */

/* Parses a fixture (a path under the fixture directory); aborts when it is
 * missing, since every later check would be meaningless. */
static cJSON *
load_json(const char *name)
{
	size_t len;
	char *buf = read_fixture(name, &len);
	cJSON *root;

	if (buf == NULL) {
		printf("Bail out! cannot read fixture %s in %s\n", name,
		       fixture_dir());
		exit(1);
	}
	root = cJSON_ParseWithLength(buf, len);
	free(buf);
	if (root == NULL) {
		printf("Bail out! fixture %s is not JSON\n", name);
		exit(1);
	}
	return root;
}

/* Parses a translator's output and frees it; NULL stays NULL. The length
 * is read through a pointer, after the call that sets it. */
static cJSON *
take(char *s, const size_t *lenp)
{
	size_t len = *lenp;
	cJSON *root;

	if (s == NULL)
		return NULL;
	root = cJSON_ParseWithLength(s, len);
	if (root == NULL || strlen(s) != len)
		printf("# output is not JSON or len is wrong: %s\n", s);
	free(s);
	return root;
}

/* The value at a path like "choices[0].message.content", or NULL. */
static const cJSON *
jp(const cJSON *root, const char *path)
{
	const cJSON *cur = root;
	char key[128];
	const char *p = path;

	while (cur != NULL && *p != '\0') {
		size_t n = 0;

		if (*p == '.')
			p++;
		if (*p == '[') {
			cur = cJSON_IsArray(cur) ?
			      cJSON_GetArrayItem(cur, atoi(p + 1)) : NULL;
			p = strchr(p, ']');
			if (p == NULL)
				return NULL;
			p++;
			continue;
		}
		while (*p != '\0' && *p != '.' && *p != '[' &&
		       n < sizeof(key) - 1)
			key[n++] = *p++;
		key[n] = '\0';
		cur = cJSON_IsObject(cur) ?
		      cJSON_GetObjectItemCaseSensitive(cur, key) : NULL;
	}
	return cur;
}

/* Whether two strings are equal (NULL equals nothing). */
static int
str_eq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* The string at path, or NULL. */
static const char *
js(const cJSON *root, const char *path)
{
	const cJSON *v = jp(root, path);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The number at path, or -1 when there is none. */
static long long
ji(const cJSON *root, const char *path)
{
	const cJSON *v = jp(root, path);

	return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

/* The size of the array or object at path, or -1. */
static int
jsize(const cJSON *root, const char *path)
{
	const cJSON *v = jp(root, path);

	return cJSON_IsArray(v) || cJSON_IsObject(v) ? cJSON_GetArraySize(v)
						      : -1;
}

/* Whether the JSON text s parses to a value equal to v. */
static int
json_text_eq(const char *s, const cJSON *v)
{
	cJSON *p = s != NULL ? cJSON_Parse(s) : NULL;
	int eq = p != NULL && v != NULL && cJSON_Compare(p, v, 1);

	cJSON_Delete(p);
	return eq;
}

/* Whether two JSON texts parse to equal values. */
static int
json_texts_eq(const char *a, const char *b)
{
	cJSON *pb = b != NULL ? cJSON_Parse(b) : NULL;
	int eq = json_text_eq(a, pb);

	cJSON_Delete(pb);
	return eq;
}

/* Builds a cJSON value from text; aborts on a typo in the test. */
static cJSON *
J(const char *text)
{
	cJSON *v = cJSON_Parse(text);

	if (v == NULL) {
		printf("Bail out! bad JSON in test: %s\n", text);
		exit(1);
	}
	return v;
}

/* ---- SSE helpers ---- */

struct ev {
	char *name;   /* NULL when absent */
	char *data;   /* NULL when absent */
	size_t len;
};

struct evs {
	struct ev *v;
	size_t n;
	size_t cap;
};

static char *
dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d == NULL)
		abort();
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* Records one SSE event (comments skipped). */
static int
collect_cb(const struct sse_event *e, void *arg)
{
	struct evs *evs = arg;
	struct ev *v;

	if (e->comment_only)
		return 0;
	if (evs->n == evs->cap) {
		evs->cap = evs->cap ? evs->cap * 2 : 16;
		evs->v = realloc(evs->v, evs->cap * sizeof(*evs->v));
		if (evs->v == NULL)
			abort();
	}
	v = &evs->v[evs->n++];
	v->name = e->event ? dup_n(e->event, strlen(e->event)) : NULL;
	v->data = e->data ? dup_n(e->data, e->data_len) : NULL;
	v->len = e->data ? e->data_len : 0;
	return 0;
}

/* Splits an SSE body into events. */
static void
parse_sse(const char *buf, size_t len, struct evs *out)
{
	struct sse_parser *p = sse_parser_new(1 << 24, collect_cb, out);

	memset(out, 0, sizeof(*out));
	if (p == NULL || sse_parser_feed(p, buf, len) != 0)
		abort();
	sse_parser_free(p);
}

static void
evs_free(struct evs *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].name);
		free(e->v[i].data);
	}
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/* Reads and splits an SSE fixture. */
static void
load_sse(const char *name, struct evs *out)
{
	size_t len;
	char *buf = read_fixture(name, &len);

	if (buf == NULL) {
		printf("Bail out! cannot read fixture %s\n", name);
		exit(1);
	}
	parse_sse(buf, len, out);
	free(buf);
}

/* Feeds the first n events of in to a new translator; the client's bytes
 * go to out. Returns the translator (caller frees); *fails counts -1s. */
static struct tr_stream *
run_stream(enum tr_stream_dir dir, int include_usage, const struct evs *in,
	   size_t n, struct buf *out, int *fails)
{
	struct tr_stream *tr = tr_stream_new(dir, "client-model",
					     include_usage, CREATED);

	*fails = 0;
	for (size_t i = 0; i < n && i < in->n; i++)
		if (tr_stream_event(tr, in->v[i].name, in->v[i].data,
				    in->v[i].len, out) < 0)
			(*fails)++;
	return tr;
}

/* Metered usage of an event list, as usage.c reads that wire. */
static struct usage_stream
meter(const struct evs *e, enum wire w, enum flavor f)
{
	struct usage_stream st;

	usage_stream_init(&st, w, f);
	for (size_t i = 0; i < e->n; i++)
		(void)usage_stream_event(&st, e->v[i].name, e->v[i].data,
					 e->v[i].len);
	return st;
}

/* ---- stream reassembly ---- */

#define MAX_TOOLS 8

struct tool_acc {
	char id[128];
	char name[128];
	struct buf args;
};

/* What a client library would rebuild from a stream. */
struct reasm {
	struct buf text;
	struct tool_acc tools[MAX_TOOLS];
	int ntools;
	char finish[32];      /* finish_reason / stop_reason */
	int done;             /* [DONE] / message_stop seen */
	int order_ok;         /* Anthropic: events in protocol order; chat:
	                         every chunk well-formed */
	int usage_chunks;     /* chat: chunks with a non-null usage */
	int usage_last;       /* chat: the usage chunk came right before
	                         [DONE], with "choices":[] */
	int chunks;
	int errors;           /* error events */
	char id[128];         /* the chunks' / message's id */
	int same_id;          /* every chunk had that id */
};

static void
reasm_free(struct reasm *r)
{
	buf_free(&r->text);
	for (int i = 0; i < MAX_TOOLS; i++)
		buf_free(&r->tools[i].args);
}

/* Appends a string to a buffer; aborts when out of memory. */
static void
must_add(struct buf *b, const char *s)
{
	if (buf_str(b, s) < 0)
		abort();
}

/* Rebuilds a chat chunk stream, checking each chunk's envelope when
 * envelope is set (translated output: our id, model and created). */
static void
reasm_chat(const struct evs *e, struct reasm *r, int envelope)
{
	int prev_usage_only = 0;

	memset(r, 0, sizeof(*r));
	r->order_ok = 1;
	r->same_id = 1;
	for (size_t i = 0; i < e->n; i++) {
		const char *d = e->v[i].data;
		const cJSON *ch, *delta, *tc, *u;
		cJSON *c;

		if (d == NULL)
			continue;
		if (strcmp(d, "[DONE]") == 0) {
			r->done = 1;
			r->usage_last = prev_usage_only;
			continue;
		}
		if (r->done)
			r->order_ok = 0;	/* nothing after [DONE] */
		c = cJSON_Parse(d);
		if (c == NULL) {
			r->order_ok = 0;
			continue;
		}
		if (jp(c, "error") != NULL) {
			r->errors++;
			cJSON_Delete(c);
			continue;
		}
		r->chunks++;
		if (envelope) {
			const char *id = js(c, "id");

			if (r->id[0] == '\0' && id != NULL)
				snprintf(r->id, sizeof(r->id), "%s", id);
			if (id == NULL || strcmp(id, r->id) != 0)
				r->same_id = 0;
			if (js(c, "object") == NULL ||
			    strcmp(js(c, "object"), "chat.completion.chunk") ||
			    js(c, "model") == NULL ||
			    strcmp(js(c, "model"), "client-model") ||
			    ji(c, "created") != CREATED)
				r->order_ok = 0;
		}
		u = jp(c, "usage");
		prev_usage_only = 0;
		if (cJSON_IsObject(u)) {
			r->usage_chunks++;
			prev_usage_only = jsize(c, "choices") == 0;
		}
		ch = jp(c, "choices[0]");
		delta = jp(ch, "delta");
		if (js(delta, "content") != NULL)
			must_add(&r->text, js(delta, "content"));
		cJSON_ArrayForEach(tc, jp(delta, "tool_calls")) {
			long long k = ji(tc, "index");
			struct tool_acc *t;

			if (k < 0 || k >= MAX_TOOLS) {
				r->order_ok = 0;
				continue;
			}
			t = &r->tools[k];
			if (k >= r->ntools)
				r->ntools = (int)k + 1;
			if (js(tc, "id") != NULL)
				snprintf(t->id, sizeof(t->id), "%s",
					 js(tc, "id"));
			if (js(tc, "function.name") != NULL)
				snprintf(t->name, sizeof(t->name), "%s",
					 js(tc, "function.name"));
			if (js(tc, "function.arguments") != NULL)
				must_add(&t->args, js(tc, "function.arguments"));
		}
		if (js(ch, "finish_reason") != NULL)
			snprintf(r->finish, sizeof(r->finish), "%s",
				 js(ch, "finish_reason"));
		cJSON_Delete(c);
	}
}

/* Rebuilds an Anthropic event stream, checking the protocol order:
 * message_start first; blocks opened with consecutive indexes, one at a
 * time, deltas only to the open block; message_delta after the last
 * block; message_stop last; each event's name equal to its data type. */
static void
reasm_anthropic(const struct evs *e, struct reasm *r)
{
	int started = 0, open = -1, next = 0, delta_seen = 0;
	int blk_tool[64];

	memset(r, 0, sizeof(*r));
	r->order_ok = 1;
	for (int i = 0; i < 64; i++)
		blk_tool[i] = -1;
	for (size_t i = 0; i < e->n; i++) {
		const char *type;
		cJSON *c;
		long long idx;

		if (e->v[i].data == NULL)
			continue;
		c = cJSON_Parse(e->v[i].data);
		type = js(c, "type");
		if (type == NULL || r->done) {
			r->order_ok = 0;
			cJSON_Delete(c);
			continue;
		}
		if (e->v[i].name == NULL || strcmp(e->v[i].name, type) != 0)
			r->order_ok = 0;
		idx = ji(c, "index");
		if (strcmp(type, "message_start") == 0) {
			if (started)
				r->order_ok = 0;
			started = 1;
			if (js(c, "message.id") != NULL)
				snprintf(r->id, sizeof(r->id), "%s",
					 js(c, "message.id"));
		} else if (strcmp(type, "error") == 0) {
			r->errors++;
		} else if (!started) {
			if (strcmp(type, "ping") != 0)
				r->order_ok = 0;
		} else if (strcmp(type, "content_block_start") == 0) {
			if (open >= 0 || idx != next || delta_seen || idx >= 64)
				r->order_ok = 0;
			open = (int)idx;
			next++;
			if (idx >= 0 && idx < 64 && r->ntools < MAX_TOOLS &&
			    str_eq(js(c, "content_block.type"), "tool_use")) {
				struct tool_acc *t = &r->tools[r->ntools];

				snprintf(t->id, sizeof(t->id), "%s",
					 js(c, "content_block.id"));
				snprintf(t->name, sizeof(t->name), "%s",
					 js(c, "content_block.name"));
				blk_tool[idx] = r->ntools++;
			}
		} else if (strcmp(type, "content_block_delta") == 0) {
			const char *dt = js(c, "delta.type");

			if (idx != open)
				r->order_ok = 0;
			if (strcmp(dt, "text_delta") == 0)
				must_add(&r->text, js(c, "delta.text"));
			else if (strcmp(dt, "input_json_delta") == 0 &&
				 idx >= 0 && idx < 64 && blk_tool[idx] >= 0)
				must_add(&r->tools[blk_tool[idx]].args,
					js(c, "delta.partial_json"));
		} else if (strcmp(type, "content_block_stop") == 0) {
			if (idx != open)
				r->order_ok = 0;
			open = -1;
		} else if (strcmp(type, "message_delta") == 0) {
			if (open >= 0)
				r->order_ok = 0;
			delta_seen = 1;
			if (js(c, "delta.stop_reason") != NULL)
				snprintf(r->finish, sizeof(r->finish), "%s",
					 js(c, "delta.stop_reason"));
		} else if (strcmp(type, "message_stop") == 0) {
			if (!delta_seen)
				r->order_ok = 0;
			r->done = 1;
		}
		cJSON_Delete(c);
	}
	if (!started)
		r->order_ok = 0;
}

/* Whether the tools of two reassemblies match: ids, names and arguments
 * (as JSON values; an empty argument string reads as {}). */
static int
tools_eq(const struct reasm *a, const struct reasm *b)
{
	if (a->ntools != b->ntools)
		return 0;
	for (int i = 0; i < a->ntools; i++) {
		const char *x = a->tools[i].args.data ? a->tools[i].args.data
						       : "{}";
		const char *y = b->tools[i].args.data ? b->tools[i].args.data
						       : "{}";
		if (strcmp(a->tools[i].id, b->tools[i].id) != 0 ||
		    strcmp(a->tools[i].name, b->tools[i].name) != 0 ||
		    !json_texts_eq(x, y)) {
			printf("# tool %d: %s %s %s vs %s %s %s\n", i,
			       a->tools[i].id, a->tools[i].name, x,
			       b->tools[i].id, b->tools[i].name, y);
			return 0;
		}
	}
	return 1;
}

static const char *
text_of(const struct reasm *r)
{
	return r->text.data ? r->text.data : "";
}

/* ---- requests ---- */

/* Roles alternate user/assistant, starting with user. */
static int
alternates(const cJSON *msgs)
{
	const cJSON *m;
	int i = 0;

	cJSON_ArrayForEach(m, msgs) {
		const char *role = js(m, "role");

		if (role == NULL || strcmp(role, i % 2 ? "assistant" : "user"))
			return 0;
		i++;
	}
	return i > 0;
}

static void
test_chat_request(void)
{
	cJSON *req = load_json("../extra/openai-tools-request.json");
	cJSON *out, *want;
	char *cause = NULL, *s;
	size_t len = 0;

	s = tr_chat_to_messages(req, "claude-target", &len, &cause);
	ok(s != NULL, "chat request with tools translates (%s)",
	   cause ? cause : "no cause");
	out = take(s, &len);
	is_str(js(out, "model"), "claude-target",
	       "request model is the target");
	is_int(ji(out, "max_tokens"), 512,
	       "max_completion_tokens -> max_tokens");
	is_int(jsize(out, "system"), 2,
	       "system and developer -> two system blocks");
	is_str(js(out, "system[0].text"), "You are a weather assistant.",
	       "first system block");
	is_str(js(out, "system[1].text"), "Answer in one sentence.",
	       "developer message as second system block");
	is_int(jsize(out, "messages"), 5, "nine chat messages -> five turns");
	ok(alternates(jp(out, "messages")), "turns alternate user/assistant");
	is_int(jsize(out, "messages[0].content"), 3,
	       "user text and two images");
	is_str(js(out, "messages[0].content[1].type"), "image", "image block");
	is_str(js(out, "messages[0].content[1].source.type"), "base64",
	       "data: URL -> base64 source");
	is_str(js(out, "messages[0].content[1].source.media_type"), "image/png",
	       "media type from the data: URL");
	is_str(js(out, "messages[0].content[1].source.data"),
	       "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
	       "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
	       "base64 data after the comma");
	is_str(js(out, "messages[0].content[2].source.type"), "url",
	       "http image -> url source");
	is_str(js(out, "messages[0].content[2].source.url"),
	       js(req, "messages[2].content[2].image_url.url"),
	       "image url kept");
	ok(jp(out, "messages[0].name") == NULL, "message name dropped");
	is_str(js(out, "messages[1].role"), "assistant", "assistant turn");
	is_int(jsize(out, "messages[1].content"), 2, "two tool_use blocks");
	is_str(js(out, "messages[1].content[0].type"), "tool_use", "tool_use");
	is_str(js(out, "messages[1].content[0].id"),
	       "call_8Xq2mLw9ZpT4vB1nR6yK3dHs", "tool_use id = call id");
	is_str(js(out, "messages[1].content[0].name"), "get_weather",
	       "tool_use name");
	ok(json_text_eq(js(req, "messages[3].tool_calls[0].function.arguments"),
			jp(out, "messages[1].content[0].input")),
	   "arguments string parsed into the input object");
	ok(json_text_eq(js(req, "messages[3].tool_calls[1].function.arguments"),
			jp(out, "messages[1].content[1].input")),
	   "second call's input");
	is_str(js(out, "messages[2].role"), "user",
	       "tool results in a user turn");
	is_int(jsize(out, "messages[2].content"), 2,
	       "consecutive tool results merged into one turn");
	is_str(js(out, "messages[2].content[0].type"), "tool_result",
	       "tool_result block");
	is_str(js(out, "messages[2].content[0].tool_use_id"),
	       "call_8Xq2mLw9ZpT4vB1nR6yK3dHs", "tool_result id");
	is_str(js(out, "messages[2].content[0].content"),
	       js(req, "messages[4].content"), "string tool result kept");
	is_str(js(out, "messages[2].content[1].content[0].text"),
	       js(req, "messages[5].content[0].text"),
	       "text-part tool result -> text blocks");
	is_str(js(out, "messages[3].content"),
	       "San Francisco is foggy at 18 °C and Paris is sunny at 22 °C.",
	       "assistant text as a plain string");
	is_int(jsize(out, "messages[4].content"), 2,
	       "consecutive user messages merged");
	is_str(js(out, "messages[4].content[1].text"), "In Fahrenheit, please.",
	       "second user message's text");
	ok(jp(out, "temperature") && jp(out, "temperature")->valuedouble == 0.2,
	   "temperature");
	ok(jp(out, "top_p") == NULL, "top_p dropped next to temperature");
	is_str(js(out, "stop_sequences[0]"), "\n\nUser:",
	       "stop -> stop_sequences");
	ok(cJSON_IsTrue(jp(out, "stream")), "stream kept");
	is_str(js(out, "metadata.user_id"), "user-1234",
	       "user -> metadata.user_id");
	is_int(jsize(out, "tools"), 2, "two tools");
	is_str(js(out, "tools[0].name"), "get_weather", "tool name");
	is_str(js(out, "tools[0].description"),
	       "Get the current weather for a location", "tool description");
	ok(cJSON_Compare(jp(out, "tools[0].input_schema"),
			 jp(req, "tools[0].function.parameters"), 1),
	   "parameters -> input_schema");
	ok(jp(out, "tools[0].strict") == NULL &&
	   jp(out, "tools[0].type") == NULL, "strict and type not sent");
	want = J("{\"type\":\"object\",\"properties\":{}}");
	ok(cJSON_Compare(jp(out, "tools[1].input_schema"), want, 1),
	   "function without parameters gets an empty object schema");
	cJSON_Delete(want);
	want = J("{\"type\":\"auto\",\"disable_parallel_tool_use\":true}");
	ok(cJSON_Compare(jp(out, "tool_choice"), want, 1),
	   "parallel_tool_calls false -> disable_parallel_tool_use");
	cJSON_Delete(want);
	ok(!jp(out, "seed") && !jp(out, "logprobs") && !jp(out, "user") &&
	   !jp(out, "stream_options") && !jp(out, "frequency_penalty") &&
	   !jp(out, "max_completion_tokens") && !jp(out, "parallel_tool_calls"),
	   "OpenAI-only fields dropped");
	cJSON_Delete(out);
	cJSON_Delete(req);
}

static void
test_messages_request(void)
{
	cJSON *req = load_json("../extra/anthropic-tools-request.json");
	cJSON *out, *want;
	char *cause = NULL, *s;
	size_t len = 0;

	s = tr_messages_to_chat(req, "gpt-target", 1, &len, &cause);
	ok(s != NULL, "Anthropic request with tools translates (%s)",
	   cause ? cause : "no cause");
	out = take(s, &len);
	is_str(js(out, "model"), "gpt-target", "request model is the target");
	is_int(ji(out, "max_tokens"), 4096, "max_tokens kept");
	is_int(jsize(out, "messages"), 7, "two system + user + assistant + two "
	       "tool + user");
	is_str(js(out, "messages[0].role"), "system", "system first");
	is_str(js(out, "messages[0].content"), "You are a weather assistant.",
	       "first system block");
	is_str(js(out, "messages[1].content"), "Answer in one sentence.",
	       "second system block");
	is_str(js(out, "messages[2].role"), "user", "user turn");
	is_int(jsize(out, "messages[2].content"), 3, "text and two images");
	is_str(js(out, "messages[2].content[1].image_url.url"),
	       "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAf"
	       "FcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
	       "base64 image -> data: URL");
	is_str(js(out, "messages[2].content[2].image_url.url"),
	       js(req, "messages[0].content[2].source.url"),
	       "url image -> image_url");
	is_str(js(out, "messages[3].role"), "assistant", "assistant turn");
	is_str(js(out, "messages[3].content"), "I'll check both cities.",
	       "thinking dropped, text kept");
	is_int(jsize(out, "messages[3].tool_calls"), 2, "two tool calls");
	is_str(js(out, "messages[3].tool_calls[0].id"),
	       "toolu_01A09q90qw90lq917835lq9", "call id = tool_use id");
	is_str(js(out, "messages[3].tool_calls[0].type"), "function", "type");
	is_str(js(out, "messages[3].tool_calls[0].function.name"),
	       "get_weather", "function name");
	ok(json_text_eq(js(out, "messages[3].tool_calls[1].function.arguments"),
			jp(req, "messages[1].content[3].input")),
	   "input printed as the arguments string");
	is_str(js(out, "messages[4].role"), "tool",
	       "tool result -> tool message");
	is_str(js(out, "messages[4].tool_call_id"),
	       "toolu_01A09q90qw90lq917835lq9", "tool_call_id");
	is_str(js(out, "messages[4].content"),
	       js(req, "messages[2].content[0].content"), "string result");
	is_str(js(out, "messages[5].content"),
	       js(req, "messages[2].content[1].content[0].text"),
	       "one-block result -> string");
	is_str(js(out, "messages[6].role"), "user",
	       "user text after the tool messages");
	is_str(js(out, "messages[6].content"), "And tomorrow?", "user text");
	is_str(js(out, "stop[0]"), "\n\nHuman:", "stop_sequences -> stop");
	ok(cJSON_IsTrue(jp(out, "stream")), "stream");
	ok(cJSON_IsTrue(jp(out, "stream_options.include_usage")),
	   "include_usage added to a streamed request");
	is_str(js(out, "tools[0].type"), "function", "tool type");
	is_str(js(out, "tools[0].function.name"), "get_weather", "tool name");
	ok(cJSON_Compare(jp(out, "tools[0].function.parameters"),
			 jp(req, "tools[0].input_schema"), 1),
	   "input_schema -> parameters");
	is_str(js(out, "tool_choice"), "auto", "tool_choice auto");
	ok(cJSON_IsFalse(jp(out, "parallel_tool_calls")),
	   "disable_parallel_tool_use -> parallel_tool_calls false");
	is_str(js(out, "user"), "user-1234", "metadata.user_id -> user");
	ok(!jp(out, "top_k") && !jp(out, "thinking") && !jp(out, "metadata") &&
	   !jp(out, "system") && !jp(out, "stop_sequences"),
	   "Anthropic-only fields dropped");
	cJSON_Delete(out);

	out = take(tr_messages_to_chat(req, "gpt-target", 0, &len, NULL), &len);
	ok(out != NULL && jp(out, "stream_options") == NULL,
	   "no stream_options when the provider rejects it");
	cJSON_Delete(out);

	want = J("{\"model\":\"x\",\"max_tokens\":10,\"system\":\"Be brief.\","
		 "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	out = take(tr_messages_to_chat(want, "m", 1, &len, NULL), &len);
	is_str(js(out, "messages[0].role"), "system",
	       "string system -> system");
	is_str(js(out, "messages[0].content"), "Be brief.", "system text");
	is_str(js(out, "messages[1].content"), "hi", "string content kept");
	ok(jp(out, "stream") == NULL && jp(out, "stream_options") == NULL,
	   "no stream_options when not streaming");
	cJSON_Delete(out);
	cJSON_Delete(want);
	cJSON_Delete(req);
}

/* One tool_choice case in each direction. */
struct choice_case {
	const char *in;
	const char *want;   /* NULL: refused */
};

static void
test_tool_choice(void)
{
	static const struct choice_case to_msg[] = {
		{ "\"auto\"", "{\"type\":\"auto\"}" },
		{ "\"none\"", "{\"type\":\"none\"}" },
		{ "\"required\"", "{\"type\":\"any\"}" },
		{ "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}",
		  "{\"type\":\"tool\",\"name\":\"f\"}" },
		{ "\"sometimes\"", NULL },
		{ "{\"type\":\"allowed_tools\",\"allowed_tools\":{}}", NULL },
	};
	static const struct choice_case to_chat[] = {
		{ "{\"type\":\"auto\"}", "\"auto\"" },
		{ "{\"type\":\"none\"}", "\"none\"" },
		{ "{\"type\":\"any\"}", "\"required\"" },
		{ "{\"type\":\"tool\",\"name\":\"f\"}",
		  "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}" },
		{ "{\"type\":\"whatever\"}", NULL },
	};
	char buf[512];
	size_t len;

	for (size_t i = 0; i < sizeof(to_msg) / sizeof(to_msg[0]); i++) {
		cJSON *req, *out, *want;
		char *cause = NULL;

		snprintf(buf, sizeof(buf), "{\"messages\":[{\"role\":\"user\","
			 "\"content\":\"hi\"}],\"tools\":[{\"type\":\"function"
			 "\",\"function\":{\"name\":\"f\"}}],"
			 "\"tool_choice\":%s}",
			 to_msg[i].in);
		req = J(buf);
		out = take(tr_chat_to_messages(req, "m", &len, &cause), &len);
		if (to_msg[i].want == NULL) {
			ok(out == NULL && cause != NULL,
			   "tool_choice %s refused (%s)", to_msg[i].in, cause);
		} else {
			want = J(to_msg[i].want);
			ok(cJSON_Compare(jp(out, "tool_choice"), want, 1),
			   "tool_choice %s -> %s", to_msg[i].in,
			   to_msg[i].want);
			cJSON_Delete(want);
		}
		free(cause);
		cJSON_Delete(out);
		cJSON_Delete(req);
	}
	for (size_t i = 0; i < sizeof(to_chat) / sizeof(to_chat[0]); i++) {
		cJSON *req, *out, *want;
		char *cause = NULL;

		snprintf(buf, sizeof(buf), "{\"max_tokens\":5,\"messages\":"
			 "[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":"
			 "[{\"name\":\"f\",\"input_schema\":{\"type\":"
			 "\"object\"}}],\"tool_choice\":%s}", to_chat[i].in);
		req = J(buf);
		out = take(tr_messages_to_chat(req, "m", 1, &len, &cause),
			   &len);
		if (to_chat[i].want == NULL) {
			ok(out == NULL && cause != NULL,
			   "tool_choice %s refused (%s)", to_chat[i].in, cause);
		} else {
			want = J(to_chat[i].want);
			ok(cJSON_Compare(jp(out, "tool_choice"), want, 1),
			   "tool_choice %s -> %s", to_chat[i].in,
			   to_chat[i].want);
			ok(jp(out, "parallel_tool_calls") == NULL,
			   "no parallel_tool_calls unless disabled");
			cJSON_Delete(want);
		}
		free(cause);
		cJSON_Delete(out);
		cJSON_Delete(req);
	}
	/* Without tools, tool_choice is not sent (Anthropic rejects it). */
	{
		cJSON *req = J("{\"messages\":[{\"role\":\"user\",\"content\":"
			       "\"hi\"}],\"tool_choice\":\"none\","
			       "\"parallel_tool_calls\":false}");
		cJSON *out = take(tr_chat_to_messages(req, "m", &len, NULL),
				  &len);

		ok(out != NULL && jp(out, "tool_choice") == NULL &&
		   jp(out, "tools") == NULL,
		   "tool_choice without tools dropped");
		cJSON_Delete(out);
		cJSON_Delete(req);
	}
	{
		cJSON *req = J("{\"messages\":[{\"role\":\"user\",\"content\":"
			       "\"hi\"}],\"tools\":[{\"type\":\"function\","
			       "\"function\":{\"name\":\"f\"}}],\"tool_choice\""
			       ":\"none\",\"parallel_tool_calls\":false}");
		cJSON *out = take(tr_chat_to_messages(req, "m", &len, NULL),
				  &len), *want = J("{\"type\":\"none\"}");

		ok(cJSON_Compare(jp(out, "tool_choice"), want, 1),
		   "none takes no disable_parallel_tool_use");
		cJSON_Delete(want);
		cJSON_Delete(out);
		cJSON_Delete(req);
	}
}

/* Small request cases: defaults, clamps, ids, refusals. */
struct req_case {
	int to_messages;   /* 1: chat -> messages, 0: messages -> chat */
	const char *req;
	const char *path;  /* checked in the output; NULL: must be refused */
	const char *want;  /* JSON value expected at path; NULL: absent */
	const char *what;
};

static const struct req_case req_cases[] = {
	{ 1, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	  "max_tokens", "4096", "max_tokens defaults to 4096" },
	{ 1, "{\"max_tokens\":100,\"max_completion_tokens\":200,\"messages\":"
	  "[{\"role\":\"user\",\"content\":\"hi\"}]}",
	  "max_tokens", "200", "max_completion_tokens wins over max_tokens" },
	{ 1, "{\"temperature\":1.6,\"messages\":[{\"role\":\"user\","
	  "\"content\":\"hi\"}]}", "temperature", "1",
	  "temperature clamped to Anthropic's 1" },
	{ 1, "{\"stop\":\"END\",\"messages\":[{\"role\":\"user\","
	  "\"content\":\"hi\"}]}", "stop_sequences", "[\"END\"]",
	  "stop string -> one stop sequence" },
	{ 1, "{\"top_p\":0.5,\"messages\":[{\"role\":\"user\","
	  "\"content\":\"hi\"}]}", "top_p", "0.5", "top_p alone kept" },
	{ 1, "{\"stop\":[\"\\n\",\"END\",\"\",\" \\t\"],\"messages\":[{\"role\""
	  ":\"user\",\"content\":\"hi\"}]}", "stop_sequences", "[\"END\"]",
	  "empty and white-space stop sequences dropped" },
	{ 1, "{\"stop\":\"\\n\",\"max_tokens\":5,\"messages\":[{\"role\":"
	  "\"user\",\"content\":\"hi\"}]}", "stop_sequences", NULL,
	  "only white space: no stop_sequences" },
	{ 1, "{\"n\":1,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	  "messages", "[{\"role\":\"user\",\"content\":\"hi\"}]",
	  "n = 1 accepted" },
	{ 1, "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
	  "{\"role\":\"user\",\"content\":\"hi\"}]}", "system", "\"S\"",
	  "one system message -> string system" },
	{ 1, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
	  "{\"role\":\"system\",\"content\":\"late\"},{\"role\":\"user\","
	  "\"content\":\"again\"}]}", "messages",
	  "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
	  "\"hi\"},{\"type\":\"text\",\"text\":\"again\"}]}]",
	  "a system message between user turns is hoisted, the turns merge" },
	{ 1, "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
	  "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":"
	  "\"functions.get:0\",\"type\":\"function\",\"function\":{\"name\":"
	  "\"get\",\"arguments\":\"not json\"}}]},{\"role\":\"tool\","
	  "\"tool_call_id\":\"functions.get:0\",\"content\":\"r\"}]}",
	  "messages", "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":"
	  "\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":"
	  "\"functions_get_0\",\"name\":\"get\",\"input\":{}}]},{\"role\":"
	  "\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
	  "\"functions_get_0\",\"content\":\"r\"}]}]",
	  "ids made Anthropic-safe the same way; bad arguments -> {}; empty "
	  "text skipped" },
	{ 1, "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
	  "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
	  "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
	  "\"[1,2]\"}}]}]}", "messages[1].content[0].input", "{}",
	  "arguments that are JSON but not an object -> {}" },
	{ 1, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
	  "{\"role\":\"assistant\",\"content\":\"\"},{\"role\":\"user\","
	  "\"content\":\"there\"}]}", "messages",
	  "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
	  "\"hi\"},{\"type\":\"text\",\"text\":\"there\"}]}]",
	  "an empty assistant turn is dropped" },
	{ 1, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"file\",\"file\":{\"filename\":\"a.pdf\",\"file_data\":"
	  "\"data:application/pdf;base64,JVBERi0=\"}}]}]}",
	  "messages[0].content[0].source",
	  "{\"type\":\"base64\",\"media_type\":\"application/pdf\","
	  "\"data\":\"JVBERi0=\"}", "PDF file part -> document block" },
	{ 1, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;name=a.jpg;"
	  "base64,/9j/\"}}]}]}", "messages[0].content[0].source",
	  "{\"type\":\"base64\",\"media_type\":\"image/jpeg\",\"data\":"
	  "\"/9j/\"}", "data: URL with parameters: media type before them" },
	{ 1, "{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	  NULL, NULL, "n = 2 refused" },
	{ 1, "{\"functions\":[{\"name\":\"f\"}],\"messages\":[{\"role\":"
	  "\"user\",\"content\":\"hi\"}]}", NULL, NULL,
	  "legacy functions refused" },
	{ 1, "{\"messages\":[{\"role\":\"function\",\"name\":\"f\","
	  "\"content\":\"x\"}]}", NULL, NULL, "role function refused" },
	{ 1, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"input_audio\",\"input_audio\":{\"data\":\"AAAA\",\"format\":"
	  "\"wav\"}}]}]}", NULL, NULL, "audio input refused" },
	{ 1, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"image_url\",\"image_url\":{\"url\":\"data:image/png,abc\"}}]}]}",
	  NULL, NULL, "non-base64 data: URL refused" },
	{ 1, "{\"messages\":[{\"role\":\"tool\",\"content\":\"r\"}]}", NULL,
	  NULL, "tool message without tool_call_id refused" },
	{ 1, "{\"max_tokens\":0,\"messages\":[{\"role\":\"user\","
	  "\"content\":\"hi\"}]}", NULL, NULL, "max_tokens 0 refused" },
	{ 1, "{\"max_tokens\":\"12\",\"messages\":[{\"role\":\"user\","
	  "\"content\":\"hi\"}]}", NULL, NULL, "max_tokens string refused" },
	{ 1, "{\"messages\":[]}", NULL, NULL, "empty messages refused" },
	{ 1, "{\"messages\":[{\"role\":\"assistant\",\"content\":\"\"}]}",
	  NULL, NULL, "no content at all refused" },
	{ 1, "[1,2]", NULL, NULL, "array body refused" },
	{ 1, "{\"stop\":7,\"messages\":[{\"role\":\"user\",\"content\":"
	  "\"hi\"}]}", NULL, NULL, "numeric stop refused" },
	{ 0, "{\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":"
	  "[{\"type\":\"document\",\"source\":{\"type\":\"text\",\"media_type\""
	  ":\"text/plain\",\"data\":\"doc text\"}}]}]}", "messages[0].content",
	  "\"doc text\"", "text document -> text" },
	{ 0, "{\"max_tokens\":9,\"messages\":[{\"role\":\"assistant\","
	  "\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\","
	  "\"input\":{}}]}]}", "messages[0]",
	  "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
	  "\"t1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
	  "\"arguments\":\"{}\"}}]}", "tool_use only -> content null" },
	{ 0, "{\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":"
	  "[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":"
	  "[{\"type\":\"text\",\"text\":\"see\"},{\"type\":\"image\","
	  "\"source\":{\"type\":\"url\",\"url\":\"https://x/y.png\"}}]}]}]}",
	  "messages", "[{\"role\":\"tool\",\"tool_call_id\":\"t1\","
	  "\"content\":\"see\"},{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}]",
	  "an image in a tool result moves to the next user message" },
	{ 0, "{\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":"
	  "\"hi\"}],\"tools\":[{\"type\":\"web_search_20250305\",\"name\":"
	  "\"web_search\"}]}", NULL, NULL, "server tools refused" },
	{ 0, "{\"max_tokens\":9,\"messages\":[{\"role\":\"assistant\","
	  "\"content\":[{\"type\":\"server_tool_use\",\"id\":\"s\",\"name\":"
	  "\"web_search\",\"input\":{}}]}]}", NULL, NULL,
	  "server tool blocks refused" },
	{ 0, "{\"max_tokens\":9,\"messages\":[{\"role\":\"robot\","
	  "\"content\":\"x\"}]}", NULL, NULL, "unknown role refused" },
	{ 0, "{\"max_tokens\":-1,\"messages\":[{\"role\":\"user\","
	  "\"content\":\"x\"}]}", NULL, NULL, "negative max_tokens refused" },
	{ 0, "\"text\"", NULL, NULL, "string body refused" },
};

static void
test_request_cases(void)
{
	for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		const struct req_case *c = &req_cases[i];
		cJSON *req = J(c->req), *out, *want;
		char *cause = NULL;
		size_t len = 0;

		out = take(c->to_messages ?
			   tr_chat_to_messages(req, "m", &len, &cause) :
			   tr_messages_to_chat(req, "m", 1, &len, &cause),
			   &len);
		if (c->path == NULL) {
			ok(out == NULL && cause != NULL && *cause != '\0',
			   "%s (%s)", c->what, cause ? cause : "no cause");
		} else if (c->want == NULL) {
			ok(out != NULL && jp(out, c->path) == NULL, "%s",
			   c->what);
		} else {
			want = J(c->want);
			if (!ok(cJSON_Compare(jp(out, c->path), want, 1), "%s",
				c->what)) {
				char *got = out ? cJSON_PrintUnformatted(out)
						: NULL;
				printf("#   got %s (%s)\n", got ? got : "NULL",
				       cause ? cause : "");
				free(got);
			}
			cJSON_Delete(want);
		}
		free(cause);
		cJSON_Delete(out);
		cJSON_Delete(req);
	}
}

/* chat -> messages -> chat and messages -> chat -> messages keep what
 * both wires can say. */
static void
test_round_trip(void)
{
	cJSON *chat = J(
		"{\"model\":\"gpt-4o\",\"max_tokens\":300,\"temperature\":0.5,"
		"\"stop\":[\"END\",\"STOP\"],\"stream\":true,"
		"\"messages\":["
		"{\"role\":\"system\",\"content\":\"Be brief.\"},"
		"{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
		"{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id"
		"\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
		"\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\""
		"}},{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"na"
		"me\":\"get_time\",\"arguments\":\"{}\"}}]},"
		"{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"2"
		"2C\"},{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content"
		"\":\"noon\"},{\"role\":\"assistant\",\"content\":\"It is 22C a"
		"t noon.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
		"\"text\":\"And here?\"},{\"type\":\"image_url\",\"image_url\":"
		"{\"url\":\"data:image/jpeg;base64,/9j/4AAQ\"}}]}],"
		"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
		"\"get_weather\",\"description\":\"Weather\",\"parameters\":{"
		"\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
		"\"string\"}},\"required\":[\"city\"]}}},{\"type\":\"function\""
		",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":"
		"\"object\",\"properties\":{}}}}],"
		"\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":"
		"\"get_weather\"}},\"parallel_tool_calls\":false,"
		"\"user\":\"u-9\"}");
	cJSON *msg = J(
		"{\"model\":\"claude\",\"max_tokens\":300,\"system\":\"Be brief"
		".\",\"stop_sequences\":[\"END\"],\"temperature\":0.5,"
		"\"messages\":["
		"{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
		"{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text"
		"\":\"Checking.\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\",\""
		"name\":\"get_weather\",\"input\":{\"city\":\"Paris\",\"days\":"
		"[1,2]}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_res"
		"ult\",\"tool_use_id\":\"toolu_1\",\"content\":\"22C\"},{\"type"
		"\":\"text\",\"text\":\"Thanks\"},{\"type\":\"image\",\"source"
		"\":{\"type\":\"base64\",\"media_type\":\"image/gif\",\"data\":"
		"\"R0lGOD\"}}]},"
		"{\"role\":\"assistant\",\"content\":\"You're welcome.\"}],"
		"\"tools\":[{\"name\":\"get_weather\",\"description\":\"W\","
		"\"input_schema\":{\"type\":\"object\"}}],"
		"\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use"
		"\":true},\"metadata\":{\"user_id\":\"u-9\"}}");
	static const char *const chat_keys[] = {
		"messages", "tools", "tool_choice", "stop", "temperature",
		"max_tokens", "stream", "parallel_tool_calls", "user",
	};
	static const char *const msg_keys[] = {
		"system", "messages", "tools", "tool_choice", "stop_sequences",
		"temperature", "max_tokens", "metadata",
	};
	cJSON *mid, *back;
	size_t len;
	char *s;

	s = tr_chat_to_messages(chat, "claude", &len, NULL);
	mid = take(s, &len);
	s = mid ? tr_messages_to_chat(mid, "gpt-4o", 0, &len, NULL) : NULL;
	back = take(s, &len);
	ok(back != NULL, "chat -> messages -> chat");
	for (size_t i = 0; i < sizeof(chat_keys) / sizeof(chat_keys[0]); i++)
		ok(cJSON_Compare(jp(chat, chat_keys[i]), jp(back, chat_keys[i]),
				 1), "round trip keeps %s", chat_keys[i]);
	is_int(cJSON_GetArraySize(back), cJSON_GetArraySize(chat),
	       "round trip adds no field");
	cJSON_Delete(mid);
	cJSON_Delete(back);

	s = tr_messages_to_chat(msg, "gpt-4o", 0, &len, NULL);
	mid = take(s, &len);
	s = mid ? tr_chat_to_messages(mid, "claude", &len, NULL) : NULL;
	back = take(s, &len);
	ok(back != NULL, "messages -> chat -> messages");
	for (size_t i = 0; i < sizeof(msg_keys) / sizeof(msg_keys[0]); i++)
		if (!ok(cJSON_Compare(jp(msg, msg_keys[i]),
				      jp(back, msg_keys[i]), 1),
			"round trip keeps %s", msg_keys[i])) {
			char *g = cJSON_PrintUnformatted(jp(back, msg_keys[i]));
			printf("#   got %s\n", g ? g : "NULL");
			free(g);
		}
	cJSON_Delete(mid);
	cJSON_Delete(back);
	cJSON_Delete(chat);
	cJSON_Delete(msg);
}

/* ---- responses ---- */

static void
test_anthropic_response(void)
{
	cJSON *in = load_json("anthropic-messages.json"), *out;
	struct usage ui, uo;
	char *cause = NULL;
	size_t len = 0;

	out = take(tr_messages_resp_to_chat(in, "my-model", CREATED, &len,
					    &cause), &len);
	ok(out != NULL, "anthropic-messages.json -> chat.completion");
	is_str(js(out, "id"), "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL",
	       "id is chatcmpl- + message id");
	is_str(js(out, "object"), "chat.completion", "object");
	is_int(ji(out, "created"), CREATED, "created as passed");
	is_str(js(out, "model"), "my-model", "model is the client's");
	is_int(jsize(out, "choices"), 1, "one choice");
	is_int(ji(out, "choices[0].index"), 0, "choice index");
	is_str(js(out, "choices[0].message.role"), "assistant", "role");
	is_str(js(out, "choices[0].message.content"),
	       "The cached system prompt was read from the prompt cache.",
	       "content text");
	ok(jp(out, "choices[0].message.tool_calls") == NULL, "no tool_calls");
	is_str(js(out, "choices[0].finish_reason"), "stop", "end_turn -> stop");
	ok(cJSON_IsNull(jp(out, "choices[0].logprobs")), "logprobs null");
	is_int(ji(out, "usage.prompt_tokens"), 2098,
	       "prompt = input 50 + cache read 2048");
	is_int(ji(out, "usage.completion_tokens"), 120, "completion tokens");
	is_int(ji(out, "usage.total_tokens"), 2218, "total tokens");
	is_int(ji(out, "usage.prompt_tokens_details.cached_tokens"), 2048,
	       "cached_tokens = cache reads");
	usage_from_body(in, WIRE_ANTHROPIC, FLAVOR_ANTHROPIC, &ui);
	usage_from_body(out, WIRE_OPENAI_CHAT, FLAVOR_OPENAI, &uo);
	ok(ui.prompt == uo.prompt && ui.completion == uo.completion &&
	   ui.cached == uo.cached,
	   "usage.c meters the translation as the original");
	cJSON_Delete(out);
	cJSON_Delete(in);

	in = load_json("../extra/anthropic-tools.json");
	out = take(tr_messages_resp_to_chat(in, "my-model", CREATED, &len,
					    NULL), &len);
	is_str(js(out, "choices[0].message.content"),
	       "I'll check the current weather in both cities.",
	       "text next to tool calls");
	is_int(jsize(out, "choices[0].message.tool_calls"), 2,
	       "two tool calls");
	is_str(js(out, "choices[0].message.tool_calls[0].id"),
	       "toolu_01A09q90qw90lq917835lq9", "tool call id");
	is_str(js(out, "choices[0].message.tool_calls[0].type"), "function",
	       "tool call type");
	is_str(js(out, "choices[0].message.tool_calls[1].function.name"),
	       "get_weather", "tool call name");
	ok(json_text_eq(js(out, "choices[0].message.tool_calls[1]."
			   "function.arguments"), jp(in, "content[2].input")),
	   "nested input -> arguments JSON string");
	is_str(js(out, "choices[0].finish_reason"), "tool_calls",
	       "tool_use -> tool_calls");
	is_int(ji(out, "usage.prompt_tokens"), 1496, "prompt 472 + 1024");
	is_int(ji(out, "usage.prompt_tokens_details.cached_tokens"), 1024,
	       "cached");
	cJSON_Delete(out);
	cJSON_Delete(in);
}

/* Every OpenAI-shaped chat fixture -> Anthropic message keeps the text
 * and the usage. */
static void
test_chat_responses(void)
{
	static const struct {
		const char *file;
		enum flavor flavor;
	} files[] = {
		{ "openai-chat.json", FLAVOR_OPENAI },
		{ "openai-chat-reasoning.json", FLAVOR_OPENAI },
		{ "azure-openai-chat.json", FLAVOR_AZURE },
		{ "zhipu-chat.json", FLAVOR_ZHIPU },
		{ "dashscope-chat.json", FLAVOR_DASHSCOPE },
		{ "qianfan-chat.json", FLAVOR_QIANFAN },
		{ "baichuan-chat.json", FLAVOR_BAICHUAN },
		{ "yi-chat.json", FLAVOR_YI },
		{ "moonshot-chat.json", FLAVOR_MOONSHOT },
		{ "deepseek-chat.json", FLAVOR_DEEPSEEK },
		{ "deepseek-reasoner-chat.json", FLAVOR_DEEPSEEK },
	};
	cJSON *in, *out;
	struct usage ui, uo;
	size_t len;

	in = load_json("openai-chat.json");
	out = take(tr_chat_resp_to_messages(in, "claude-x", &len, NULL), &len);
	is_str(js(out, "id"), "msg_AaL4xq2Tn0pXwq1Qm7hZbVd3kR9sE",
	       "id is msg_ + the chat id without chatcmpl-");
	is_str(js(out, "type"), "message", "type");
	is_str(js(out, "role"), "assistant", "role");
	is_str(js(out, "model"), "claude-x", "model is the client's");
	is_int(jsize(out, "content"), 1, "one block");
	is_str(js(out, "content[0].type"), "text", "text block");
	is_str(js(out, "content[0].text"),
	       "The proxy should read usage from the final response body.",
	       "text");
	is_str(js(out, "stop_reason"), "end_turn", "stop -> end_turn");
	ok(cJSON_IsNull(jp(out, "stop_sequence")), "stop_sequence null");
	is_int(ji(out, "usage.input_tokens"), 176,
	       "input = 1200 - 1024 cached");
	is_int(ji(out, "usage.cache_read_input_tokens"), 1024, "cache reads");
	is_int(ji(out, "usage.cache_creation_input_tokens"), 0, "cache writes");
	is_int(ji(out, "usage.output_tokens"), 85, "output tokens");
	cJSON_Delete(out);
	cJSON_Delete(in);

	in = load_json("../extra/openai-tools.json");
	out = take(tr_chat_resp_to_messages(in, "claude-x", &len, NULL), &len);
	is_int(jsize(out, "content"), 2,
	       "null content -> only tool_use blocks");
	is_str(js(out, "content[0].type"), "tool_use", "tool_use block");
	is_str(js(out, "content[0].id"), "call_8Xq2mLw9ZpT4vB1nR6yK3dHs", "id");
	is_str(js(out, "content[1].name"), "get_weather", "name");
	ok(json_text_eq(js(in, "choices[0].message.tool_calls[1].function."
			   "arguments"), jp(out, "content[1].input")),
	   "arguments parsed into input");
	is_str(js(out, "stop_reason"), "tool_use", "tool_calls -> tool_use");
	is_int(ji(out, "usage.input_tokens"), 472, "input 1496 - 1024");
	is_int(ji(out, "usage.output_tokens"), 52, "output");
	cJSON_Delete(out);
	cJSON_Delete(in);

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		in = load_json(files[i].file);
		out = take(tr_chat_resp_to_messages(in, "c", &len, NULL), &len);
		is_str(js(out, "content[0].text"),
		       js(in, "choices[0].message.content"), "%s: text",
		       files[i].file);
		usage_from_body(in, WIRE_OPENAI_CHAT, files[i].flavor, &ui);
		usage_from_body(out, WIRE_ANTHROPIC, FLAVOR_ANTHROPIC, &uo);
		ok(ui.present && ui.prompt == uo.prompt &&
		   ui.completion == uo.completion && ui.cached == uo.cached,
		   "%s: usage %lld/%lld/%lld metered the same once translated",
		   files[i].file, (long long)ui.prompt,
		   (long long)ui.completion, (long long)ui.cached);
		cJSON_Delete(out);
		cJSON_Delete(in);
	}
}

static void
test_stop_reasons(void)
{
	static const char *const a2c[][2] = {
		{ "end_turn", "stop" }, { "stop_sequence", "stop" },
		{ "max_tokens", "length" }, { "tool_use", "tool_calls" },
		{ "pause_turn", "stop" }, { "refusal", "content_filter" },
		{ "model_context_window_exceeded", "length" },
	};
	static const char *const c2a[][2] = {
		{ "stop", "end_turn" }, { "length", "max_tokens" },
		{ "tool_calls", "tool_use" }, { "function_call", "tool_use" },
		{ "content_filter", "end_turn" },
	};
	char buf[256];
	size_t len;

	for (size_t i = 0; i < sizeof(a2c) / sizeof(a2c[0]); i++) {
		cJSON *in, *out;

		snprintf(buf, sizeof(buf), "{\"id\":\"msg_1\",\"type\":"
			 "\"message\",\"content\":[],\"stop_reason\":\"%s\","
			 "\"usage\":{}}", a2c[i][0]);
		in = J(buf);
		out = take(tr_messages_resp_to_chat(in, "m", 0, &len, NULL),
			   &len);
		is_str(js(out, "choices[0].finish_reason"), a2c[i][1],
		       "stop_reason %s -> finish_reason %s", a2c[i][0],
		       a2c[i][1]);
		cJSON_Delete(out);
		cJSON_Delete(in);
	}
	for (size_t i = 0; i < sizeof(c2a) / sizeof(c2a[0]); i++) {
		cJSON *in, *out;

		snprintf(buf, sizeof(buf), "{\"id\":\"x\",\"choices\":[{"
			 "\"message\":{\"role\":\"assistant\",\"content\":"
			 "\"a\"},\"finish_reason\":\"%s\"}]}", c2a[i][0]);
		in = J(buf);
		out = take(tr_chat_resp_to_messages(in, "m", &len, NULL), &len);
		is_str(js(out, "stop_reason"), c2a[i][1],
		       "finish_reason %s -> stop_reason %s", c2a[i][0],
		       c2a[i][1]);
		cJSON_Delete(out);
		cJSON_Delete(in);
	}
}

static void
test_bad_responses(void)
{
	static const char *const bad_a[] = {
		"{\"type\":\"error\",\"error\":{\"type\":\"api_error\"}}",
		"{\"id\":\"m\",\"type\":\"message\"}",
		"[]", "null",
	};
	static const char *const bad_c[] = {
		"{\"choices\":[]}", "{\"choices\":{\"message\":{}}}",
		"{\"error\":{\"message\":\"x\"}}", "7",
	};
	size_t len;

	for (size_t i = 0; i < sizeof(bad_a) / sizeof(bad_a[0]); i++) {
		cJSON *in = J(bad_a[i]);
		char *cause = NULL;
		char *s = tr_messages_resp_to_chat(in, "m", 0, &len, &cause);

		ok(s == NULL && cause != NULL, "not a message refused: %s",
		   bad_a[i]);
		free(s);
		free(cause);
		cJSON_Delete(in);
	}
	for (size_t i = 0; i < sizeof(bad_c) / sizeof(bad_c[0]); i++) {
		cJSON *in = J(bad_c[i]);
		char *cause = NULL;
		char *s = tr_chat_resp_to_messages(in, "m", &len, &cause);

		ok(s == NULL && cause != NULL, "not a completion refused: %s",
		   bad_c[i]);
		free(s);
		free(cause);
		cJSON_Delete(in);
	}
}

/* ---- streams ---- */

/* Anthropic stream fixtures -> chat chunks. */
static void
test_stream_a2c(const char *file, const char *msg_id)
{
	struct evs in, outev;
	struct buf out = { 0 };
	struct reasm src, got;
	struct usage_stream us, uc;
	struct tr_stream *tr;
	char want_id[160];
	int fails;
	cJSON *first;

	load_sse(file, &in);
	reasm_anthropic(&in, &src);
	tr = run_stream(TR_ANTHROPIC_TO_CHAT, 1, &in, in.n, &out, &fails);
	is_int(fails, 0, "%s: every event translated", file);
	ok(tr_stream_done(tr), "%s: done after message_stop", file);
	tr_stream_free(tr);
	parse_sse(out.data, out.len, &outev);
	reasm_chat(&outev, &got, 1);
	ok(got.order_ok, "%s: chunks well-formed (object, model, created)",
	   file);
	snprintf(want_id, sizeof(want_id), "chatcmpl-%s", msg_id);
	is_str(got.id, want_id, "%s: chunk id", file);
	ok(got.same_id, "%s: one id in every chunk", file);
	first = outev.n > 0 ? cJSON_Parse(outev.v[0].data) : NULL;
	is_str(js(first, "choices[0].delta.role"), "assistant",
	       "%s: first chunk has the role", file);
	is_str(js(first, "choices[0].delta.content"), "",
	       "%s: and empty content", file);
	cJSON_Delete(first);
	is_str(text_of(&got), text_of(&src), "%s: text reassembled", file);
	ok(tools_eq(&src, &got), "%s: %d tool calls reassembled (id, name, "
	   "arguments)", file, src.ntools);
	is_str(got.finish, src.ntools ? "tool_calls" : "stop",
	       "%s: finish_reason", file);
	ok(got.done, "%s: ends with [DONE]", file);
	is_int(got.usage_chunks, 1, "%s: one usage chunk", file);
	ok(got.usage_last, "%s: usage chunk has choices [] and precedes [DONE]",
	   file);
	us = meter(&in, WIRE_ANTHROPIC, FLAVOR_ANTHROPIC);
	uc = meter(&outev, WIRE_OPENAI_CHAT, FLAVOR_OPENAI);
	ok(us.last.present && uc.last.present &&
	   us.last.prompt == uc.last.prompt &&
	   us.last.completion == uc.last.completion &&
	   us.last.cached == uc.last.cached,
	   "%s: client-side usage %lld/%lld equals upstream %lld/%lld", file,
	   (long long)uc.last.prompt, (long long)uc.last.completion,
	   (long long)us.last.prompt, (long long)us.last.completion);
	evs_free(&outev);
	reasm_free(&got);

	/* Without include_usage: no usage chunk, no usage member. */
	buf_reset(&out, 0);
	tr = run_stream(TR_ANTHROPIC_TO_CHAT, 0, &in, in.n, &out, &fails);
	tr_stream_free(tr);
	parse_sse(out.data, out.len, &outev);
	reasm_chat(&outev, &got, 1);
	ok(got.usage_chunks == 0 && strstr(out.data, "\"usage\"") == NULL,
	   "%s: no usage unless asked", file);
	is_str(text_of(&got), text_of(&src), "%s: same text without usage",
	       file);
	ok(got.done, "%s: [DONE] without usage too", file);
	evs_free(&outev);
	reasm_free(&got);

	/* Cut before message_stop: no [DONE] invented. */
	buf_reset(&out, 0);
	tr = run_stream(TR_ANTHROPIC_TO_CHAT, 1, &in, in.n - 1, &out, &fails);
	ok(!tr_stream_done(tr) && strstr(out.data, "[DONE]") == NULL,
	   "%s: cut stream left open", file);
	tr_stream_free(tr);

	buf_free(&out);
	reasm_free(&src);
	evs_free(&in);
}

/* OpenAI-shaped stream fixtures -> Anthropic events. */
struct c2a_case {
	const char *file;
	enum flavor flavor;
	const char *stop;
};

static const struct c2a_case c2a_cases[] = {
	{ "openai-chat-stream.sse", FLAVOR_OPENAI, "end_turn" },
	{ "openai-chat-stream-no-usage.sse", FLAVOR_OPENAI, "end_turn" },
	{ "azure-openai-chat-stream.sse", FLAVOR_AZURE, "end_turn" },
	{ "zhipu-chat-stream.sse", FLAVOR_ZHIPU, "end_turn" },
	{ "dashscope-chat-stream.sse", FLAVOR_DASHSCOPE, "end_turn" },
	{ "qianfan-chat-stream.sse", FLAVOR_QIANFAN, "end_turn" },
	{ "baichuan-chat-stream.sse", FLAVOR_BAICHUAN, "end_turn" },
	{ "yi-chat-stream.sse", FLAVOR_YI, "end_turn" },
	{ "moonshot-chat-stream.sse", FLAVOR_MOONSHOT, "end_turn" },
	{ "deepseek-chat-stream.sse", FLAVOR_DEEPSEEK, "end_turn" },
	{ "../extra/openai-tools-stream.sse", FLAVOR_OPENAI, "tool_use" },
};

static void
test_stream_c2a(const struct c2a_case *c)
{
	struct evs in, outev;
	struct buf out = { 0 };
	struct reasm src, got;
	struct usage_stream us, ua;
	struct tr_stream *tr;
	int fails;
	cJSON *first;

	load_sse(c->file, &in);
	reasm_chat(&in, &src, 0);
	tr = run_stream(TR_CHAT_TO_ANTHROPIC, 0, &in, in.n, &out, &fails);
	is_int(fails, 0, "%s: every chunk translated", c->file);
	ok(tr_stream_done(tr), "%s: done after [DONE]", c->file);
	tr_stream_free(tr);
	parse_sse(out.data, out.len, &outev);
	reasm_anthropic(&outev, &got);
	ok(got.order_ok, "%s: events in Anthropic's order", c->file);
	first = outev.n > 0 ? cJSON_Parse(outev.v[0].data) : NULL;
	ok(js(first, "message.id") != NULL &&
	   strncmp(js(first, "message.id"), "msg_", 4) == 0 &&
	   strcmp(js(first, "message.model"), "client-model") == 0 &&
	   strcmp(js(first, "message.role"), "assistant") == 0 &&
	   jsize(first, "message.content") == 0,
	   "%s: message_start with msg_ id, client model, empty content",
	   c->file);
	cJSON_Delete(first);
	is_str(text_of(&got), text_of(&src), "%s: text reassembled", c->file);
	ok(tools_eq(&src, &got), "%s: %d tool calls reassembled", c->file,
	   src.ntools);
	is_str(got.finish, c->stop, "%s: stop_reason", c->file);
	ok(got.done, "%s: ends with message_stop", c->file);
	us = meter(&in, WIRE_OPENAI_CHAT, c->flavor);
	ua = meter(&outev, WIRE_ANTHROPIC, FLAVOR_ANTHROPIC);
	if (us.last.present)
		ok(ua.last.prompt == us.last.prompt &&
		   ua.last.completion == us.last.completion &&
		   ua.last.cached == us.last.cached,
		   "%s: client-side usage %lld/%lld equals upstream %lld/%lld",
		   c->file, (long long)ua.last.prompt,
		   (long long)ua.last.completion, (long long)us.last.prompt,
		   (long long)us.last.completion);
	else
		ok(ua.last.prompt == 0 && ua.last.completion == 0,
		   "%s: no upstream usage -> zeros", c->file);
	evs_free(&outev);
	reasm_free(&got);

	/* Cut before [DONE] (after the finish chunk): no message_stop. */
	buf_reset(&out, 0);
	tr = run_stream(TR_CHAT_TO_ANTHROPIC, 0, &in, in.n - 1, &out, &fails);
	ok(!tr_stream_done(tr) && (out.data == NULL ||
				   strstr(out.data, "message_stop") == NULL),
	   "%s: cut stream left open", c->file);
	tr_stream_free(tr);
	buf_free(&out);
	reasm_free(&src);
	evs_free(&in);
}

/* Feeds a NUL-terminated event. */
#define FEED(tr, name, s, out) tr_stream_event((tr), (name), (s), strlen(s), \
					       (out))

/* Errors inside streams, and events that are not JSON. */
static void
test_stream_errors(void)
{
	static const char start[] = "{\"type\":\"message_start\",\"message\":"
		"{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
		"\"content\":[],\"usage\":{\"input_tokens\":3,"
		"\"output_tokens\":1}}}";
	static const char err[] = "{\"type\":\"error\",\"error\":{\"type\":"
		"\"overloaded_error\",\"message\":\"Overloaded\"}}";
	static const char chunk[] = "{\"id\":\"chatcmpl-1\",\"object\":"
		"\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":"
		"{\"content\":\"Hi\"},\"finish_reason\":null}]}";
	static const char cerr[] = "{\"error\":{\"message\":\"Rate limit "
		"reached\",\"type\":\"requests\",\"code\":"
		"\"rate_limit_exceeded\"}}";
	struct buf out = { 0 };
	struct tr_stream *tr;
	struct evs ev;
	cJSON *e;
	size_t before;

	tr = tr_stream_new(TR_ANTHROPIC_TO_CHAT, "m", 1, 0);
	ok(FEED(tr, "message_start", start, &out)
	   == 0, "message_start");
	before = out.len;
	ok(FEED(tr, "ping", "not json", &out) == -1 &&
	   out.len == before, "non-JSON event: -1, nothing written");
	ok(FEED(tr, "x", "{\"type\":\"ping\"} trailing", &out)
	   == -1 && out.len == before, "trailing bytes: -1");
	ok(FEED(tr, "content_block_delta",
		"{\"type\":\"content_block_delta\",\"index\":\"0\"}",
		&out) == -1 && out.len == before,
	   "bad index: -1, nothing written");
	ok(FEED(tr, "error", err, &out) == 0,
	   "error event");
	ok(tr_stream_done(tr), "an error event ends the stream");
	parse_sse(out.data, out.len, &ev);
	e = ev.n == 2 ? cJSON_Parse(ev.v[1].data) : NULL;
	is_str(js(e, "error.message"), "Overloaded", "error message passed on");
	is_str(js(e, "error.type"), "overloaded_error", "error type");
	ok(cJSON_IsNull(jp(e, "error.param")) &&
	   cJSON_IsNull(jp(e, "error.code")), "param and code null");
	ok(strstr(out.data, "[DONE]") == NULL, "no [DONE] after an error");
	before = out.len;
	ok(FEED(tr, "message_stop", "{\"type\":\"message_stop\"}", &out) == 0 &&
	   out.len == before,
	   "events after the end ignored");
	cJSON_Delete(e);
	evs_free(&ev);
	tr_stream_free(tr);

	buf_reset(&out, 0);
	tr = tr_stream_new(TR_CHAT_TO_ANTHROPIC, "m", 0, 0);
	ok(FEED(tr, NULL, chunk, &out) == 0,
	   "text chunk");
	before = out.len;
	ok(FEED(tr, NULL, "{\"choices\":[{\"delta\":{\"tool_calls\":"
		"[{\"index\":-1,\"id\":\"c\",\"function\":{\"name\":"
		"\"f\"}}]}}]}", &out) == -1 && out.len == before,
	   "negative tool index: -1, nothing written");
	ok(FEED(tr, NULL, "{\"choices\":7}", &out) == -1 &&
	   out.len == before, "choices not an array: -1");
	ok(FEED(tr, NULL, cerr, &out) == 0,
	   "error chunk");
	ok(tr_stream_done(tr), "an error chunk ends the stream");
	parse_sse(out.data, out.len, &ev);
	is_str(ev.n > 0 ? ev.v[ev.n - 1].name : NULL, "error", "event: error");
	e = ev.n > 0 ? cJSON_Parse(ev.v[ev.n - 1].data) : NULL;
	is_str(js(e, "type"), "error", "Anthropic error envelope");
	is_str(js(e, "error.type"), "rate_limit_error", "rate limit type");
	is_str(js(e, "error.message"), "Rate limit reached", "message");
	ok(strstr(out.data, "message_stop") == NULL,
	   "no message_stop after an error");
	cJSON_Delete(e);
	evs_free(&ev);
	tr_stream_free(tr);

	/* [DONE] alone still gives a complete (empty) message. */
	buf_reset(&out, 0);
	tr = tr_stream_new(TR_CHAT_TO_ANTHROPIC, "m", 0, 0);
	ok(FEED(tr, NULL, "[DONE]", &out) == 0 &&
	   tr_stream_done(tr), "[DONE] with nothing before");
	parse_sse(out.data, out.len, &ev);
	is_int(ev.n, 3, "message_start, message_delta, message_stop");
	evs_free(&ev);
	tr_stream_free(tr);
	buf_free(&out);
}

/* The Anthropic type given to an error met inside a chat stream. */
static void
test_stream_error_types(void)
{
	static const char *const cases[][2] = {
		{ "{\"message\":\"m\",\"type\":\"invalid_request_error\","
		  "\"code\":\"invalid_api_key\"}", "authentication_error" },
		{ "{\"message\":\"m\",\"type\":\"insufficient_quota\","
		  "\"code\":\"insufficient_quota\"}", "rate_limit_error" },
		{ "{\"message\":\"m\",\"code\":\"429\"}", "rate_limit_error" },
		{ "{\"message\":\"m\",\"code\":529}", "overloaded_error" },
		{ "{\"message\":\"m\",\"type\":\"invalid_request_error\"}",
		  "invalid_request_error" },
		{ "{\"message\":\"m\",\"type\":\"server_error\"}",
		  "api_error" },
		{ "{\"message\":\"m\",\"code\":\"1302\"}", "api_error" },
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tr_stream *tr = tr_stream_new(TR_CHAT_TO_ANTHROPIC, "m",
						     0, 0);
		struct buf out = { 0 };
		struct evs ev;
		cJSON *e;

		snprintf(buf, sizeof(buf), "{\"error\":%s}", cases[i][0]);
		ok(FEED(tr, NULL, buf, &out) == 0, "error chunk %s", buf);
		parse_sse(out.data, out.len, &ev);
		e = ev.n == 1 ? cJSON_Parse(ev.v[0].data) : NULL;
		is_str(js(e, "error.type"), cases[i][1], "  -> %s",
		       cases[i][1]);
		cJSON_Delete(e);
		evs_free(&ev);
		buf_free(&out);
		tr_stream_free(tr);
	}
}

/* ---- errors ---- */

struct err_case {
	const char *file;
	int status;
	const char *type;
	const char *code;   /* NULL: null */
};

static void
test_errors(void)
{
	static const struct err_case to_chat[] = {
		{ "anthropic-error-400-credit.json", 400,
		  "invalid_request_error", NULL },
		{ "anthropic-error-401.json", 401, "invalid_request_error",
		  "invalid_api_key" },
		{ "anthropic-error-429.json", 429, "rate_limit_error",
		  "rate_limit_exceeded" },
		{ "anthropic-error-529.json", 529, "overloaded_error", NULL },
	};
	static const struct {
		const char *file;
		int status;
		const char *type;
	} to_msg[] = {
		{ "openai-error-401.json", 401, "authentication_error" },
		{ "openai-error-403-region.json", 403, "permission_error" },
		{ "openai-error-429.json", 429, "rate_limit_error" },
		{ "openai-error-429-quota.json", 429, "rate_limit_error" },
		{ "azure-openai-error-401.json", 401, "authentication_error" },
		{ "azure-openai-error-429.json", 429, "rate_limit_error" },
		{ "deepseek-error-402.json", 402, "invalid_request_error" },
		{ "zhipu-error-429.json", 429, "rate_limit_error" },
		{ "moonshot-error-401.json", 401, "authentication_error" },
		{ "qianfan-error-401.json", 401, "authentication_error" },
	};
	static const struct {
		int status;
		const char *type;
	} types[] = {
		{ 400, "invalid_request_error" },
		{ 401, "authentication_error" },
		{ 403, "permission_error" },
		{ 404, "not_found_error" },
		{ 413, "request_too_large" },
		{ 429, "rate_limit_error" },
		{ 500, "api_error" },
		{ 502, "api_error" },
		{ 503, "api_error" },
		{ 504, "api_error" },
		{ 529, "overloaded_error" },
		{ 422, "invalid_request_error" },
	};
	size_t len, flen;

	for (size_t i = 0; i < sizeof(to_chat) / sizeof(to_chat[0]); i++) {
		char *body = read_fixture(to_chat[i].file, &flen);
		cJSON *in = cJSON_Parse(body), *out;

		out = take(tr_error_to_chat(to_chat[i].status, body, flen,
					    &len), &len);
		is_str(js(out, "error.type"), to_chat[i].type, "%s: type",
		       to_chat[i].file);
		if (to_chat[i].code)
			is_str(js(out, "error.code"), to_chat[i].code,
			       "%s: code", to_chat[i].file);
		else
			ok(cJSON_IsNull(jp(out, "error.code")), "%s: code null",
			   to_chat[i].file);
		ok(cJSON_IsNull(jp(out, "error.param")), "%s: param null",
		   to_chat[i].file);
		is_str(js(out, "error.message"), js(in, "error.message"),
		       "%s: message kept", to_chat[i].file);
		is_int(cJSON_GetArraySize(out), 1, "%s: only \"error\"",
		       to_chat[i].file);
		cJSON_Delete(out);
		cJSON_Delete(in);
		free(body);
	}
	for (size_t i = 0; i < sizeof(to_msg) / sizeof(to_msg[0]); i++) {
		char *body = read_fixture(to_msg[i].file, &flen);
		cJSON *in = cJSON_Parse(body), *out;

		out = take(tr_error_to_messages(to_msg[i].status, body, flen,
						&len), &len);
		is_str(js(out, "type"), "error",
		       "%s: envelope", to_msg[i].file);
		is_str(js(out, "error.type"), to_msg[i].type, "%s: type",
		       to_msg[i].file);
		is_str(js(out, "error.message"), js(in, "error.message"),
		       "%s: message kept", to_msg[i].file);
		cJSON_Delete(out);
		cJSON_Delete(in);
		free(body);
	}
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		is_str(tr_anthropic_error_type(types[i].status), types[i].type,
		       "HTTP %d -> %s", types[i].status, types[i].type);
	{
		static const char html[] = "<html><body>502 Bad Gateway</body>"
					   "</html>\r\n";
		cJSON *out;

		out = take(tr_error_to_messages(502, html, sizeof(html) - 1,
						&len), &len);
		is_str(js(out, "error.type"), "api_error", "502 -> api_error");
		is_str(js(out, "error.message"),
		       "<html><body>502 Bad Gateway</body></html>",
		       "a short non-JSON body is the message");
		cJSON_Delete(out);
		out = take(tr_error_to_chat(504, NULL, 0, &len), &len);
		is_str(js(out, "error.message"), "upstream returned HTTP 504",
		       "empty body -> generic message");
		is_str(js(out, "error.type"), "server_error",
		       "504 without a body -> server_error");
		cJSON_Delete(out);
		out = take(tr_error_to_chat(401, "{}", 2, &len), &len);
		is_str(js(out, "error.code"), "invalid_api_key",
		       "type from the status when the body has none");
		cJSON_Delete(out);
	}
}

/* ---- malformed input ---- */

/* Replaces the k-th node (pre-order, root excluded) of root by a copy of
 * with; returns 1 when it was found. *k counts down. */
static int
replace_nth(cJSON *root, int *k, const cJSON *with)
{
	cJSON *c;

	for (c = root->child; c != NULL; c = c->next) {
		if ((*k)-- == 0)
			return cJSON_ReplaceItemViaPointer(root, c,
					cJSON_Duplicate(with, 1));
		if (replace_nth(c, k, with))
			return 1;
	}
	return 0;
}

/* Runs fn on every single-node mutation of a fixture; counts outputs that
 * are valid JSON objects or refusals with a reason. */
enum fuzz_fn { F_CHAT_REQ, F_MSG_REQ, F_MSG_RESP, F_CHAT_RESP };

static void
fuzz_types(const char *file, enum fuzz_fn fn)
{
	static const char *const values[] = {
		"null", "7", "-1.5", "\"x\"", "[]", "{}", "[{}]", "true",
	};
	cJSON *base = load_json(file);
	int total = 0, good = 0;

	for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
		cJSON *with = J(values[v]);

		for (int k = 0;; k++) {
			cJSON *t = cJSON_Duplicate(base, 1);
			char *cause = NULL, *s = NULL;
			int n = k;
			size_t len = 0;
			cJSON *parsed;

			if (!replace_nth(t, &n, with)) {
				cJSON_Delete(t);
				break;
			}
			switch (fn) {
			case F_CHAT_REQ:
				s = tr_chat_to_messages(t, "m", &len, &cause);
				break;
			case F_MSG_REQ:
				s = tr_messages_to_chat(t, "m", 1, &len,
							&cause);
				break;
			case F_MSG_RESP:
				s = tr_messages_resp_to_chat(t, "m", 1, &len,
							     &cause);
				break;
			case F_CHAT_RESP:
				s = tr_chat_resp_to_messages(t, "m", &len,
							     &cause);
				break;
			}
			total++;
			parsed = s ? cJSON_ParseWithLength(s, len) : NULL;
			if ((s != NULL && cJSON_IsObject(parsed) &&
			     cause == NULL) ||
			    (s == NULL && cause != NULL && *cause != '\0'))
				good++;
			cJSON_Delete(parsed);
			free(s);
			free(cause);
			cJSON_Delete(t);
		}
		cJSON_Delete(with);
	}
	ok(total > 100 && good == total, "%s: %d of %d mutated inputs give "
	   "JSON or a reason", file, good, total);
	cJSON_Delete(base);
}

/* Every event of a stream fixture is first fed truncated at every byte
 * (and with one byte flipped at every position): each must be refused
 * with nothing written, or accepted; the output of the whole run must
 * then equal a clean run's when only truncations are fed (a refused
 * event changes nothing). */
static void
fuzz_stream(const char *file, enum tr_stream_dir dir)
{
	struct evs in;
	struct buf clean = { 0 }, out = { 0 };
	struct tr_stream *tr;
	int fails, refused_ok = 1, nrefused = 0;

	load_sse(file, &in);
	tr = run_stream(dir, 1, &in, in.n, &clean, &fails);
	tr_stream_free(tr);
	tr = tr_stream_new(dir, "client-model", 1, CREATED);
	for (size_t i = 0; i < in.n; i++) {
		const struct ev *e = &in.v[i];

		for (size_t cut = 0; e->data != NULL && cut < e->len; cut++) {
			char *d = dup_n(e->data, cut);
			size_t before = out.len;

			if (tr_stream_event(tr, e->name, d, cut, &out) < 0) {
				nrefused++;
				if (out.len != before)
					refused_ok = 0;
			} else {
				/* a proper prefix is never a whole event */
				refused_ok = 0;
			}
			free(d);
		}
		if (tr_stream_event(tr, e->name, e->data, e->len, &out) < 0)
			refused_ok = 0;
	}
	tr_stream_free(tr);
	ok(refused_ok && nrefused > 0, "%s: %d truncated events refused with "
	   "nothing written", file, nrefused);
	is_mem(out.data, out.len, clean.data, clean.len,
	       "%s: refused events left the translation unchanged", file);

	/* Flipped bytes: anything may be accepted, nothing may crash, and a
	 * refusal writes nothing. */
	refused_ok = 1;
	for (size_t i = 0; i < in.n; i++) {
		const struct ev *e = &in.v[i];

		for (size_t pos = 0; e->data != NULL && pos < e->len; pos++) {
			char *d = dup_n(e->data, e->len);
			size_t before;

			d[pos] = (char)(d[pos] ^ (0x01 << (pos % 7)));
			tr = run_stream(dir, 1, &in, i, &out, &fails);
			before = out.len;
			if (tr_stream_event(tr, e->name, d, e->len, &out) < 0 &&
			    out.len != before)
				refused_ok = 0;
			tr_stream_free(tr);
			buf_reset(&out, 0);
			free(d);
		}
	}
	ok(refused_ok, "%s: flipped bytes never crash, refusals write nothing",
	   file);
	buf_free(&out);
	buf_free(&clean);
	evs_free(&in);
}

/* Random bytes as error bodies always give a well-formed error. */
static void
fuzz_errors(void)
{
	uint32_t seed = 12345;
	int good = 0, total = 0;
	char buf[300];

	for (int round = 0; round < 2000; round++) {
		size_t n = round % 300;
		cJSON *a, *b;
		size_t la, lb;

		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (char)(seed >> 16);
			if (round % 2)
				buf[i] = "{}[]\":,ae 1\\"[(seed >> 8) % 12];
		}
		a = take(tr_error_to_chat(500, buf, n, &la), &la);
		b = take(tr_error_to_messages(500, buf, n, &lb), &lb);
		total++;
		if (js(a, "error.message") && js(a, "error.type") &&
		    js(b, "error.message") && js(b, "error.type"))
			good++;
		cJSON_Delete(a);
		cJSON_Delete(b);
	}
	is_int(good, total, "random error bodies give well-formed errors");
}

int
main(void)
{
	test_chat_request();
	test_messages_request();
	test_tool_choice();
	test_request_cases();
	test_round_trip();
	test_anthropic_response();
	test_chat_responses();
	test_stop_reasons();
	test_bad_responses();
	test_stream_a2c("anthropic-messages-stream.sse",
			"msg_01Hb3kQ7x8ZyWvT2nR5sPqLm");
	test_stream_a2c("../extra/anthropic-tools-stream.sse",
			"msg_014p7gG3wDgGV9EUtLvnow3U");
	for (size_t i = 0; i < sizeof(c2a_cases) / sizeof(c2a_cases[0]); i++)
		test_stream_c2a(&c2a_cases[i]);
	test_stream_errors();
	test_stream_error_types();
	test_errors();
	fuzz_types("../extra/openai-tools-request.json", F_CHAT_REQ);
	fuzz_types("../extra/anthropic-tools-request.json", F_MSG_REQ);
	fuzz_types("../extra/anthropic-tools.json", F_MSG_RESP);
	fuzz_types("../extra/openai-tools.json", F_CHAT_RESP);
	fuzz_stream("../extra/anthropic-tools-stream.sse",
		    TR_ANTHROPIC_TO_CHAT);
	fuzz_stream("../extra/openai-tools-stream.sse",
		    TR_CHAT_TO_ANTHROPIC);
	fuzz_errors();
	return done_testing();
}
