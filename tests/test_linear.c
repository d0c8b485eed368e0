/*
 * test_linear.c - every pass over a request or an answer takes time in
 * proportion to its size.
 *
 * A pass that is quadratic in the number of turns (or blocks, events,
 * members, bytes) lets one large request hold a worker thread for
 * minutes, and every request behind it waits: translating 100,000 chat
 * turns to Anthropic once took 563 s. Each pass here runs on an input of
 * size n and of size 10 n, and its CPU time (this thread's, so that other
 * processes on a shared machine count little) is compared: a quadratic
 * pass takes 100 times as long or more (that translation: 1113 times), a
 * linear one 10 times, up to twice that when the larger input no longer
 * fits the caches (which are emptied before each run, so that the small
 * input starts cold too), an n log n one a little more. The test asks for
 * less than RATIO_MAX, and for the large input to take less than BIG_MAX
 * seconds; a measure that fails is taken again, up to ATTEMPTS times, so
 * that a burst of load on a shared machine does not fail it. Each pass's
 * result is checked too, at both sizes.
 *
 * LINEAR_ONLY=text in the environment runs only the passes whose name
 * holds text.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "body.h"
#include "bpe.h"
#include "buf.h"
#include "estimate.h"
#include "json.h"
#include "sse.h"
#include "tap.h"
#include "translate.h"
#include "translate_util.h"
#include "usage.h"

/* Time for 10 n over time for n: linear 10 to 25, quadratic 100 and
 * more. */
#define RATIO_MAX 40.0
/* Seconds the large input may take. Under AddressSanitizer every pass is
 * tens of times slower (CI adds slow unwinding and use-after-return
 * checks): inputs are a tenth the size there, the ratio is what tells
 * linear from quadratic, and the bound is looser. */
#if defined(__SANITIZE_ADDRESS__)
#define BIG_MAX 20.0
#define SAN_DIV 10
#else
#define BIG_MAX 5.0
#define SAN_DIV 1
#endif
/* Measures taken before a pass is held to be slow. */
#define ATTEMPTS 3
/* Bytes written to empty the caches before a pass. */
#define EVICT_BYTES (64u << 20)
/* Runs at size n, the fastest of which is kept. */
#define SMALL_RUNS 3

/* One pass's input, and what it made of it. */
struct input {
	size_t n;
	struct buf text;  /* the input as bytes */
	struct buf want;  /* what the output must hold (text of a stream) */
	cJSON *json;      /* the input parsed, where the pass takes a tree */
	struct evs evs;   /* the input as SSE events */
	char *out;        /* the pass's output */
	size_t out_len;   /* its length */
	struct buf bout;  /* the pass's output, for streams */
	int rc;           /* what the pass returned */
	int64_t count;    /* a count it made */
	struct body body; /* body_read's result */
	struct body_error err;
	int fed; /* bytes given at a time to the SSE parser (0: all) */
	enum tr_stream_dir dir; /* a stream's translation */
};

/* A pass: make builds the input of size n (not timed), run is the pass
 * (timed), check says whether its result is right (not timed), given the
 * output text parsed when the pass made one. */
struct pass {
	const char *name;
	size_t n;
	void (*make)(struct input *in);
	void (*run)(struct input *in);
	int (*check)(struct input *in, const cJSON *out);
};

/* This thread's CPU time in seconds. */
static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes over more memory than the caches hold, so that a pass on a
 * small input starts as cold as one on a large input. */
static void
evict(void)
{
	static unsigned char junk[EVICT_BYTES];
	static unsigned char v;

	v++;
	for (size_t i = 0; i < sizeof junk; i += 64)
		junk[i] = v;
}

static void
input_free(struct input *in)
{
	buf_free(&in->text);
	buf_free(&in->want);
	buf_free(&in->bout);
	cJSON_Delete(in->json);
	cJSON_Delete(in->body.json);
	evs_free(&in->evs);
	free(in->out);
	memset(in, 0, sizeof *in);
}

/* The pass's output parsed (NULL when it is not JSON); the text is
 * freed. */
static cJSON *
take_out(struct input *in)
{
	size_t len = in->out_len;
	cJSON *out = take(in->out, &len);

	in->out = NULL;
	return out;
}

/* Runs a pass at size n: the fastest of runs runs, in seconds; *right is
 * cleared when a result is wrong. */
static double
time_pass(const struct pass *p, size_t n, int runs, int *right)
{
	double best = -1;

	for (int r = 0; r < runs; r++) {
		struct input in = { .n = n };
		double t0, t;
		cJSON *out;

		p->make(&in);
		if (in.text.failed || in.want.failed)
			abort(); /* out of memory */
		evict();
		t0 = cpu_now();
		p->run(&in);
		t = cpu_now() - t0;
		out = in.out != NULL ? take_out(&in) : NULL;
		if (!p->check(&in, out))
			*right = 0;
		cJSON_Delete(out);
		input_free(&in);
		if (best < 0 || t < best)
			best = t;
	}
	return best;
}

/* Measures a pass at n and 10 n and checks the figures. */
static void
measure(const struct pass *p)
{
	double small = 0, big = 0, ratio = 0;
	int right = 1;

	size_t n = p->n / SAN_DIV;

	for (int a = 0; a < ATTEMPTS; a++) {
		small = time_pass(p, n, SMALL_RUNS, &right);
		big = time_pass(p, n * 10, 1, &right);
		ratio = big / (small > 1e-6 ? small : 1e-6);
		diag("%s: %zu in %.1f ms, %zu in %.1f ms (x%.1f)", p->name, n,
		     small * 1e3, n * 10, big * 1e3, ratio);
		if ((big < BIG_MAX && ratio < RATIO_MAX) || big >= BIG_MAX)
			break;
	}
	ok(right, "%s: the result is right at both sizes", p->name);
	ok(big < BIG_MAX, "%s: %zu take %.2f s, under %.0f s", p->name, n * 10,
	   big, BIG_MAX);
	ok(ratio < RATIO_MAX,
	   "%s: 10 times the size takes %.1f times the time, under %.0f",
	   p->name, ratio, RATIO_MAX);
}

/*
 * Requests: a chat of n messages (after a system message) in groups of
 * four: a question, an answer calling a tool, the tool's result and the
 * final answer. Anthropic turns alternate one for one with them.
 */

static void
make_chat(struct input *in)
{
	buf_printf(
		&in->text,
		"{\"model\":\"gpt-4o\",\"max_tokens\":100,\"tools\":[{\"type\":"
		"\"function\",\"function\":{\"name\":\"weather\",\"parameters\":"
		"{\"type\":\"object\"}}}],\"messages\":[{\"role\":\"system\","
		"\"content\":\"You are terse.\"}");
	for (size_t i = 0; i < in->n; i++) {
		switch (i % 4) {
		case 0:
			buf_printf(
				&in->text,
				",{\"role\":\"user\",\"content\":\"Question %zu: "
				"what is the weather in Paris?\"}",
				i);
			break;
		case 1:
			buf_printf(
				&in->text,
				",{\"role\":\"assistant\",\"content\":\"Checking."
				"\",\"tool_calls\":[{\"id\":\"call_%zu\",\"type\":"
				"\"function\",\"function\":{\"name\":\"weather\","
				"\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]}",
				i);
			break;
		case 2:
			buf_printf(
				&in->text,
				",{\"role\":\"tool\",\"tool_call_id\":\"call_%zu\","
				"\"content\":\"sunny, %zu degrees\"}",
				i - 1, i % 40);
			break;
		default:
			buf_printf(
				&in->text,
				",{\"role\":\"assistant\",\"content\":\"It is sunny "
				"(%zu).\"}",
				i);
		}
	}
	buf_printf(&in->text, "]}");
}

/* The chat request, parsed (translation takes a tree). */
static void
make_chat_tree(struct input *in)
{
	make_chat(in);
	in->json = json_parse_exact(in->text.data, in->text.len);
}

static void
run_chat_to_messages(struct input *in)
{
	char *cause = NULL;

	in->out = tr_chat_to_messages(in->json, "claude-x", 0, &in->out_len,
				      &cause);
	free(cause);
}

/* The last turn's text, as the chat's last message had it. */
static int
last_text_is(const cJSON *msgs, size_t n)
{
	char want[64];
	const cJSON *last = msgs != NULL ? msgs->child : NULL;

	/* The last item, without indexing the list. */
	while (last != NULL && last->next != NULL)
		last = last->next;
	snprintf(want, sizeof want, "It is sunny (%zu).", n - 1);
	return last != NULL && str_eq(js(last, "content"), want);
}

static int
check_chat_to_messages(struct input *in, const cJSON *out)
{
	const cJSON *msgs = jp(out, "messages");

	return cJSON_GetArraySize(msgs) == (int)in->n && alternates(msgs) &&
	       last_text_is(msgs, in->n) &&
	       str_eq(js(out, "system"), "You are terse.");
}

/* The same conversation as an Anthropic request: n turns. */
static void
make_messages(struct input *in)
{
	buf_printf(
		&in->text,
		"{\"model\":\"claude-x\",\"max_tokens\":100,\"system\":\"You are "
		"terse.\",\"tools\":[{\"name\":\"weather\",\"input_schema\":{"
		"\"type\":\"object\"}}],\"messages\":[");
	for (size_t i = 0; i < in->n; i++) {
		if (i > 0)
			buf_printf(&in->text, ",");
		switch (i % 4) {
		case 0:
			buf_printf(
				&in->text,
				"{\"role\":\"user\",\"content\":\"Question %zu: "
				"what is the weather in Paris?\"}",
				i);
			break;
		case 1:
			buf_printf(
				&in->text,
				"{\"role\":\"assistant\",\"content\":[{\"type\":"
				"\"text\",\"text\":\"Checking.\"},{\"type\":"
				"\"tool_use\",\"id\":\"call_%zu\",\"name\":"
				"\"weather\",\"input\":{\"city\":\"Paris\"}}]}",
				i);
			break;
		case 2:
			buf_printf(
				&in->text,
				"{\"role\":\"user\",\"content\":[{\"type\":"
				"\"tool_result\",\"tool_use_id\":\"call_%zu\","
				"\"content\":\"sunny, %zu degrees\"}]}",
				i - 1, i % 40);
			break;
		default:
			buf_printf(
				&in->text,
				"{\"role\":\"assistant\",\"content\":\"It is sunny "
				"(%zu).\"}",
				i);
		}
	}
	buf_printf(&in->text, "]}");
	in->json = json_parse_exact(in->text.data, in->text.len);
}

static void
run_messages_to_chat(struct input *in)
{
	char *cause = NULL;

	in->out = tr_messages_to_chat(in->json, "gpt-x", 0, 0, &in->out_len,
				      &cause);
	free(cause);
}

/* Back in chat: the system message and the n messages, in order, the
 * tool calls with their ids. */
static int
check_messages_to_chat(struct input *in, const cJSON *out)
{
	static const char *const roles[] = { "user", "assistant", "tool",
					     "assistant" };
	size_t i = 0;
	const cJSON *msgs = jp(out, "messages"), *m;
	int good = cJSON_GetArraySize(msgs) == (int)in->n + 1 &&
		   str_eq(js(out, "messages[0].content"), "You are terse.") &&
		   str_eq(js(out, "messages[2].tool_calls[0].id"), "call_1") &&
		   str_eq(js(out, "messages[3].tool_call_id"), "call_1") &&
		   last_text_is(msgs, in->n);

	cJSON_ArrayForEach (m, msgs) {
		if (i > 0 && !str_eq(js(m, "role"), roles[(i - 1) % 4]))
			good = 0;
		i++;
	}
	return good;
}

/* The chat request to Anthropic and back, parsed on the way as the
 * upstream would. */
static void
run_round_trip(struct input *in)
{
	char *cause = NULL, *s;
	size_t len = 0;
	cJSON *mid;

	s = tr_chat_to_messages(in->json, "claude-x", 0, &len, &cause);
	mid = s != NULL ? json_parse_exact(s, len) : NULL;
	free(s);
	free(cause);
	cause = NULL;
	in->out = tr_messages_to_chat(mid, "gpt-x", 0, 0, &in->out_len, &cause);
	cJSON_Delete(mid);
	free(cause);
}

/* A chat of n user messages in a row: one Anthropic turn of n blocks. */
static void
make_one_role(struct input *in)
{
	buf_printf(&in->text, "{\"model\":\"gpt-4o\",\"messages\":[");
	for (size_t i = 0; i < in->n; i++)
		buf_printf(&in->text,
			   "%s{\"role\":\"user\",\"content\":\"part %zu\"}",
			   i > 0 ? "," : "", i);
	buf_printf(&in->text, "]}");
	in->json = json_parse_exact(in->text.data, in->text.len);
}

static int
check_one_role(struct input *in, const cJSON *out)
{
	return jsize(out, "messages") == 1 &&
	       jsize(out, "messages[0].content") == (int)in->n;
}

/*
 * Answers.
 */

/* An Anthropic message of n blocks, text and tool_use in turn. */
static void
make_anthropic_answer(struct input *in)
{
	buf_printf(&in->text,
		   "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
		   "\"assistant\",\"model\":\"claude-x\",\"content\":[");
	for (size_t i = 0; i < in->n; i++) {
		if (i % 2 == 0) {
			buf_printf(
				&in->text,
				"%s{\"type\":\"text\",\"text\":\"part %zu. \"}",
				i > 0 ? "," : "", i);
			buf_printf(&in->want, "part %zu. ", i);
		} else {
			buf_printf(
				&in->text,
				",{\"type\":\"tool_use\",\"id\":\"toolu_%zu\","
				"\"name\":\"f\",\"input\":{\"i\":%zu}}",
				i, i);
		}
	}
	buf_printf(&in->text, "],\"stop_reason\":\"tool_use\",\"usage\":{"
			      "\"input_tokens\":10,\"output_tokens\":20}}");
	in->json = json_parse_exact(in->text.data, in->text.len);
}

static void
run_anthropic_answer(struct input *in)
{
	char *cause = NULL;

	in->out = tr_messages_resp_to_chat(in->json, "gpt-x", CREATED,
					   &in->out_len, &cause);
	free(cause);
}

static int
check_anthropic_answer(struct input *in, const cJSON *out)
{
	return str_eq(js(out, "choices[0].message.content"), in->want.data) &&
	       jsize(out, "choices[0].message.tool_calls") == (int)(in->n / 2);
}

/* A chat answer of a text and n tool calls. */
static void
make_chat_answer(struct input *in)
{
	buf_printf(
		&in->text,
		"{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":"
		"1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"message\":{"
		"\"role\":\"assistant\",\"content\":\"Calling.\",\"tool_calls\":[");
	for (size_t i = 0; i < in->n; i++)
		buf_printf(
			&in->text,
			"%s{\"id\":\"call_%zu\",\"type\":\"function\",\"function\":"
			"{\"name\":\"f\",\"arguments\":\"{\\\"i\\\":%zu}\"}}",
			i > 0 ? "," : "", i, i);
	buf_printf(&in->text,
		   "]},\"finish_reason\":\"tool_calls\"}],\"usage\":{"
		   "\"prompt_tokens\":10,\"completion_tokens\":20}}");
	in->json = json_parse_exact(in->text.data, in->text.len);
}

static void
run_chat_answer(struct input *in)
{
	char *cause = NULL;

	in->out = tr_chat_resp_to_messages(in->json, "claude-x", &in->out_len,
					   &cause);
	free(cause);
}

static int
check_chat_answer(struct input *in, const cJSON *out)
{
	return jsize(out, "content") == (int)in->n + 1 &&
	       str_eq(js(out, "content[0].text"), "Calling.") &&
	       str_eq(js(out, "stop_reason"), "tool_use");
}

/*
 * Streams: n text deltas, each way.
 */

static void
make_anthropic_stream(struct input *in)
{
	buf_printf(
		&in->text,
		"event: message_start\ndata: {\"type\":\"message_start\","
		"\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
		"\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":10,"
		"\"output_tokens\":1}}}\n\n"
		"event: content_block_start\ndata: {\"type\":"
		"\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
		"\"text\",\"text\":\"\"}}\n\n");
	for (size_t i = 0; i < in->n; i++) {
		buf_printf(
			&in->text,
			"event: content_block_delta\ndata: {\"type\":"
			"\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
			"\"text_delta\",\"text\":\"w%zu \"}}\n\n",
			i);
		buf_printf(&in->want, "w%zu ", i);
	}
	buf_printf(
		&in->text,
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
		"\"index\":0}\n\n"
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
		"{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":%zu}}"
		"\n\n"
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
		in->n);
	parse_sse(in->text.data, in->text.len, &in->evs);
	in->dir = TR_ANTHROPIC_TO_CHAT;
}

/* The events through a translator; the client's bytes in bout. A chat
 * client asks for the usage chunk. */
static void
run_translator(struct input *in)
{
	int fails = 0;

	tr_stream_free(run_stream(in->dir, in->dir == TR_ANTHROPIC_TO_CHAT,
				  &in->evs, in->evs.n, &in->bout, &fails));
	in->rc = fails > 0 ? -1 : 0;
}

/* Whether the client's stream is whole and carries the text, read as a
 * client library of its wire would. */
static int
check_translated(struct input *in, const cJSON *none)
{
	enum tr_stream_dir dir = in->dir;
	struct evs out;
	struct reasm r;
	int good;

	(void)none; /* the output is events, not one JSON text */
	parse_sse(in->bout.data, in->bout.len, &out);
	if (dir == TR_ANTHROPIC_TO_CHAT)
		reasm_chat(&out, &r, 1);
	else
		reasm_anthropic(&out, &r);
	good = in->rc == 0 && r.done && r.order_ok &&
	       str_eq(text_of(&r), in->want.data) &&
	       str_eq(r.finish,
		      dir == TR_ANTHROPIC_TO_CHAT ? "stop" : "end_turn") &&
	       r.usage_chunks == (dir == TR_ANTHROPIC_TO_CHAT);
	reasm_free(&r);
	evs_free(&out);
	return good;
}

static void
make_chat_stream(struct input *in)
{
	static const char head[] =
		"data: {\"id\":\"chatcmpl-1\",\"object\":"
		"\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",";

	buf_printf(
		&in->text,
		"%s\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
		"\"content\":\"\"},\"finish_reason\":null}]}\n\n",
		head);
	for (size_t i = 0; i < in->n; i++) {
		buf_printf(&in->text,
			   "%s\"choices\":[{\"index\":0,\"delta\":{\"content\":"
			   "\"w%zu \"},\"finish_reason\":null}]}\n\n",
			   head, i);
		buf_printf(&in->want, "w%zu ", i);
	}
	buf_printf(&in->text,
		   "%s\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
		   "\"stop\"}]}\n\n"
		   "%s\"choices\":[],\"usage\":{\"prompt_tokens\":10,"
		   "\"completion_tokens\":%zu,\"total_tokens\":%zu}}\n\n"
		   "data: [DONE]\n\n",
		   head, head, in->n, in->n + 10);
	parse_sse(in->text.data, in->text.len, &in->evs);
	in->dir = TR_CHAT_TO_ANTHROPIC;
}

/* The chat stream metered as relay.c meters it, event by event. */
static void
run_usage_stream(struct input *in)
{
	struct usage_stream st;

	usage_stream_init(&st, WIRE_OPENAI_CHAT, FLAVOR_OPENAI);
	for (size_t i = 0; i < in->evs.n; i++)
		in->rc |=
			usage_stream_event(&st, in->evs.v[i].name,
					   in->evs.v[i].data, in->evs.v[i].len);
	in->count = st.last.present ? st.last.completion : -1;
	if (st.text_tokens < (int64_t)in->n)
		in->count = -1;
}

static int
check_usage_stream(struct input *in, const cJSON *out)
{
	return in->count == (int64_t)in->n && (in->rc & USAGE_EV_DONE) &&
	       !(in->rc & USAGE_EV_BAD_JSON);
}

/* A chunk with n choices, each with a usage: stripped of them all. */
static void
make_usage_choices(struct input *in)
{
	buf_printf(&in->text, "{\"id\":\"c\",\"choices\":[");
	for (size_t i = 0; i < in->n; i++)
		buf_printf(
			&in->text,
			"%s{\"index\":%zu,\"delta\":{\"content\":\"x\"},\"usage\":"
			"{\"prompt_tokens\":1}}",
			i > 0 ? "," : "", i);
	buf_printf(&in->text, "],\"usage\":{\"prompt_tokens\":1}}");
}

static void
run_usage_strip(struct input *in)
{
	in->out = usage_strip(in->text.data, in->text.len);
	in->out_len = in->out != NULL ? strlen(in->out) : 0;
}

static int
check_usage_strip(struct input *in, const cJSON *out)
{
	const cJSON *c;
	int good = jp(out, "usage") == NULL &&
		   jsize(out, "choices") == (int)in->n &&
		   str_eq(js(out, "choices[0].delta.content"), "x");

	cJSON_ArrayForEach (c, jp(out, "choices"))
		if (jp(c, "usage") != NULL)
			good = 0;
	return good;
}

/*
 * Reading a request: body_read, the estimate, the edits.
 */

static void
run_body_read(struct input *in)
{
	in->rc = body_read(in->text.data, in->text.len, &in->body, &in->err);
}

static int
check_body_read(struct input *in, const cJSON *out)
{
	return in->rc == 0 && str_eq(in->body.model, "gpt-4o") &&
	       in->body.caps[BODY_MAX_TOKENS] == 100;
}

/* A body of n top-level members whose names share a long beginning (the
 * sort of duplicate detection compares them far), the first one again at
 * the end. */
static void
make_members(struct input *in)
{
	static const char prefix[] =
		"a-member-name-long-enough-that-names-compare-far-before-they-"
		"differ-";

	buf_printf(&in->text, "{\"model\":\"gpt-4o\"");
	for (size_t i = 0; i < in->n; i++)
		buf_printf(&in->text, ",\"%s%08zu\":%zu", prefix,
			   i * 7919 % in->n, i);
	buf_printf(&in->text, ",\"%s%08zu\":0}", prefix, (size_t)0);
}

static int
check_members(struct input *in, const cJSON *out)
{
	return in->rc == -1 && strstr(in->err.msg, "more than once") != NULL &&
	       strstr(in->err.param, "-00000000") != NULL;
}

static void
run_estimate(struct input *in)
{
	in->count = estimate_prompt(in->json, WIRE_OPENAI_CHAT,
				    estimate_for("gpt-4o"));
}

static int
check_estimate(struct input *in, const cJSON *out)
{
	/* Each message is at least its 4 tokens of framing and a word. */
	return in->count > (int64_t)in->n * 5 &&
	       in->count < (int64_t)in->n * 40;
}

/* The edits provider.c makes to a request of n messages. */
static void
run_edit(struct input *in)
{
	struct json_edit e[3] = {
		{ .name = "model", .value = "\"gpt-4o-2024\"" },
		{ .name = "max_tokens", .value = "50" },
		{ .name = "stream_options",
		  .value = "{\"include_usage\":true}" },
	};
	struct buf out = BUF_INIT;

	in->rc = json_depth(in->text.data, in->text.len) < 0 ||
		 json_edit_members(in->text.data, in->text.len, e, 3, &out);
	in->out = buf_detach(&out, &in->out_len);
}

static int
check_edit(struct input *in, const cJSON *out)
{
	return in->rc == 0 && str_eq(js(out, "model"), "gpt-4o-2024") &&
	       ji(out, "max_tokens") == 50 &&
	       jsize(out, "messages") == (int)in->n + 1 &&
	       cJSON_IsTrue(jp(out, "stream_options.include_usage"));
}

/*
 * The tokenizer, on long runs without a space: one piece of n bytes for
 * the merge (or, for digits, n / 3 pieces).
 */

static void
make_run(struct input *in, const char *unit)
{
	size_t u = strlen(unit);

	for (size_t i = 0; i < in->n; i += u)
		buf_printf(&in->text, "%s", unit);
}

static void
make_letters(struct input *in)
{
	make_run(in, "a");
}

static void
make_digits(struct input *in)
{
	make_run(in, "7");
}

static void
make_spaces(struct input *in)
{
	make_run(in, " ");
}

static void
make_punct(struct input *in)
{
	make_run(in, "!");
}

static void
make_cjk(struct input *in)
{
	make_run(in, "\xe4\xb8\xad"); /* U+4E2D */
}

static void
make_bad_utf8(struct input *in)
{
	make_run(in, "\xff");
}

static void
make_mixed_case(struct input *in)
{
	make_run(in, "aB");
}

static void
run_o200k(struct input *in)
{
	in->count = (int64_t)bpe_count(BPE_O200K, in->text.data, in->text.len);
}

static void
run_cl100k(struct input *in)
{
	in->count = (int64_t)bpe_count(BPE_CL100K, in->text.data, in->text.len);
}

/* At most one token per byte, and at least one per 255 bytes (no token
 * is longer). */
static int
check_count(struct input *in, const cJSON *out)
{
	return in->count >= (int64_t)(in->text.len / 255) &&
	       in->count <= (int64_t)in->text.len && in->count > 0;
}

/* Digits go three to a piece, and each group of three is a token. */
static int
check_digits(struct input *in, const cJSON *out)
{
	return in->count == (int64_t)((in->text.len + 2) / 3);
}

/*
 * The SSE parser: events and lines straddling many reads.
 */

struct sse_count {
	size_t events, data_len;
};

static int
count_cb(const struct sse_event *ev, void *arg)
{
	struct sse_count *c = arg;

	c->events++;
	c->data_len += ev->data_len;
	return 0;
}

/* One event whose data line is n bytes, lines ended by CRLF. */
static void
make_long_line(struct input *in)
{
	buf_printf(&in->text, "event: big\r\ndata: ");
	make_run(in, "x");
	buf_printf(&in->text, "\r\n\r\n");
	in->fed = 1;
}

/* n events of one short line. */
static void
make_many_events(struct input *in)
{
	for (size_t i = 0; i < in->n; i++)
		buf_printf(&in->text, "data: %08zu\n\n", i);
	in->fed = 1;
}

/* One event of n data lines, given whole. */
static void
make_many_lines(struct input *in)
{
	for (size_t i = 0; i < in->n; i++)
		buf_printf(&in->text, "data: %08zu\n", i);
	buf_printf(&in->text, "\n");
}

static void
run_sse(struct input *in)
{
	struct sse_count c = { 0, 0 };
	struct sse_parser *p = sse_parser_new(64u << 20, count_cb, &c);
	size_t step = in->fed > 0 ? (size_t)in->fed : in->text.len;

	for (size_t i = 0; i < in->text.len && in->rc == 0; i += step)
		in->rc = sse_parser_feed(
			p, in->text.data + i,
			in->text.len - i < step ? in->text.len - i : step);
	sse_parser_free(p);
	in->count = (int64_t)c.events;
	in->out_len = c.data_len;
}

static int
check_long_line(struct input *in, const cJSON *out)
{
	return in->rc == 0 && in->count == 1 && in->out_len == in->n;
}

static int
check_many_events(struct input *in, const cJSON *out)
{
	return in->rc == 0 && in->count == (int64_t)in->n &&
	       in->out_len == in->n * 8;
}

static int
check_many_lines(struct input *in, const cJSON *out)
{
	return in->rc == 0 && in->count == 1 && in->out_len == in->n * 9 - 1;
}

int
main(void)
{
	static const struct pass passes[] = {
		{ "chat request -> Anthropic (turns)", 10000, make_chat_tree,
		  run_chat_to_messages, check_chat_to_messages },
		{ "Anthropic request -> chat (turns)", 10000, make_messages,
		  run_messages_to_chat, check_messages_to_chat },
		{ "chat request -> Anthropic -> chat (turns)", 10000,
		  make_chat_tree, run_round_trip, check_messages_to_chat },
		{ "chat request of one role -> Anthropic (blocks)", 10000,
		  make_one_role, run_chat_to_messages, check_one_role },
		{ "Anthropic answer -> chat (blocks)", 10000,
		  make_anthropic_answer, run_anthropic_answer,
		  check_anthropic_answer },
		{ "chat answer -> Anthropic (tool calls)", 10000,
		  make_chat_answer, run_chat_answer, check_chat_answer },
		{ "Anthropic stream -> chat (events)", 10000,
		  make_anthropic_stream, run_translator, check_translated },
		{ "chat stream -> Anthropic (events)", 10000, make_chat_stream,
		  run_translator, check_translated },
		{ "stream usage (events)", 10000, make_chat_stream,
		  run_usage_stream, check_usage_stream },
		{ "usage stripped (choices)", 10000, make_usage_choices,
		  run_usage_strip, check_usage_strip },
		{ "body read (messages)", 10000, make_chat, run_body_read,
		  check_body_read },
		{ "body read, duplicate names (members)", 10000, make_members,
		  run_body_read, check_members },
		{ "prompt estimate (messages)", 10000, make_chat_tree,
		  run_estimate, check_estimate },
		{ "member edits (messages)", 20000, make_chat, run_edit,
		  check_edit },
		{ "o200k, one letter (bytes)", 100000, make_letters, run_o200k,
		  check_count },
		{ "cl100k, one letter (bytes)", 100000, make_letters,
		  run_cl100k, check_count },
		{ "o200k, digits (bytes)", 1000000, make_digits, run_o200k,
		  check_digits },
		{ "cl100k, digits (bytes)", 1000000, make_digits, run_cl100k,
		  check_digits },
		{ "o200k, spaces (bytes)", 100000, make_spaces, run_o200k,
		  check_count },
		{ "o200k, punctuation (bytes)", 100000, make_punct, run_o200k,
		  check_count },
		{ "cl100k, punctuation (bytes)", 100000, make_punct, run_cl100k,
		  check_count },
		{ "o200k, CJK (bytes)", 100000, make_cjk, run_o200k,
		  check_count },
		{ "o200k, invalid UTF-8 (bytes)", 1000000, make_bad_utf8,
		  run_o200k, check_count },
		{ "o200k, aBaB (bytes)", 1000000, make_mixed_case, run_o200k,
		  check_count },
		{ "SSE, one line a byte at a time (bytes)", 1000000,
		  make_long_line, run_sse, check_long_line },
		{ "SSE, events a byte at a time (events)", 100000,
		  make_many_events, run_sse, check_many_events },
		{ "SSE, one event of many lines (lines)", 200000,
		  make_many_lines, run_sse, check_many_lines },
	};
	const char *only = getenv("LINEAR_ONLY");

	for (size_t i = 0; i < sizeof passes / sizeof passes[0]; i++)
		if (only == NULL || strstr(passes[i].name, only) != NULL)
			measure(&passes[i]);
	return done_testing();
}
