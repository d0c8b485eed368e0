/*
 * test_translate_stream.c - the chat <-> messages translation of
 * streams: every provider fixture and the tool streams translated, parsed
 * back and reassembled as a client library would, usage metered from both
 * sides, and errors in the middle of a stream.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "tap.h"
#include "translate_util.h"

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
	ok(tools_eq(&src, &got),
	   "%s: %d tool calls reassembled (id, name, arguments)", file,
	   src.ntools);
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
#define FEED(tr, name, s, out)                                                 \
	tr_stream_event((tr), (name), (s), strlen(s), (out))

/* Errors inside streams, and events that are not JSON. */
static void
test_stream_errors(void)
{
	static const char start[] =
		"{\"type\":\"message_start\",\"message\":"
		"{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
		"\"content\":[],\"usage\":{\"input_tokens\":3,"
		"\"output_tokens\":1}}}";
	static const char err[] =
		"{\"type\":\"error\",\"error\":{\"type\":"
		"\"overloaded_error\",\"message\":\"Overloaded\"}}";
	static const char chunk[] =
		"{\"id\":\"chatcmpl-1\",\"object\":"
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
	ok(FEED(tr, "message_start", start, &out) == 0, "message_start");
	before = out.len;
	ok(FEED(tr, "ping", "not json", &out) == -1 && out.len == before,
	   "non-JSON event: -1, nothing written");
	ok(FEED(tr, "x", "{\"type\":\"ping\"} trailing", &out) == -1 &&
		   out.len == before,
	   "trailing bytes: -1");
	ok(FEED(tr, "content_block_delta",
		"{\"type\":\"content_block_delta\",\"index\":\"0\"}",
		&out) == -1 &&
		   out.len == before,
	   "bad index: -1, nothing written");
	ok(FEED(tr, "error", err, &out) == 0, "error event");
	ok(tr_stream_done(tr), "an error event ends the stream");
	parse_sse(out.data, out.len, &ev);
	e = ev.n == 2 ? cJSON_Parse(ev.v[1].data) : NULL;
	is_str(js(e, "error.message"), "Overloaded", "error message passed on");
	is_str(js(e, "error.type"), "overloaded_error", "error type");
	ok(cJSON_IsNull(jp(e, "error.param")) &&
		   cJSON_IsNull(jp(e, "error.code")),
	   "param and code null");
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
	ok(FEED(tr, NULL, chunk, &out) == 0, "text chunk");
	before = out.len;
	ok(FEED(tr, NULL,
		"{\"choices\":[{\"delta\":{\"tool_calls\":"
		"[{\"index\":-1,\"id\":\"c\",\"function\":{\"name\":"
		"\"f\"}}]}}]}",
		&out) == -1 &&
		   out.len == before,
	   "negative tool index: -1, nothing written");
	ok(FEED(tr, NULL, "{\"choices\":7}", &out) == -1 && out.len == before,
	   "choices not an array: -1");
	ok(FEED(tr, NULL, cerr, &out) == 0, "error chunk");
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
	ok(FEED(tr, NULL, "[DONE]", &out) == 0 && tr_stream_done(tr),
	   "[DONE] with nothing before");
	parse_sse(out.data, out.len, &ev);
	is_int(ev.n, 3, "message_start, message_delta, message_stop");
	evs_free(&ev);
	tr_stream_free(tr);
	buf_free(&out);
}

/* message_start carries the prompt's estimate until OpenAI's count
 * arrives; message_delta then carries the exact count. */
static void
test_stream_prompt_estimate(void)
{
	struct tr_stream *tr = tr_stream_new(TR_CHAT_TO_ANTHROPIC, "m", 0, 0);
	struct buf out = { 0 };
	struct evs ev = { 0 };
	cJSON *start, *delta;

	tr_stream_set_prompt(tr, 42);
	ok(FEED(tr, NULL,
		"{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":"
		"{\"role\":\"assistant\",\"content\":\"Hi\"}}]}",
		&out) == 0,
	   "first chunk");
	ok(FEED(tr, NULL,
		"{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},"
		"\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":"
		"25,\"completion_tokens\":9,\"total_tokens\":34}}",
		&out) == 0,
	   "last chunk with usage");
	ok(FEED(tr, NULL, "[DONE]", &out) == 0, "[DONE]");
	parse_sse(out.data, out.len, &ev);
	start = ev.n > 0 ? cJSON_Parse(ev.v[0].data) : NULL;
	delta = ev.n > 1 ? cJSON_Parse(ev.v[ev.n - 2].data) : NULL;
	is_str(ev.n > 0 ? ev.v[0].name : NULL, "message_start",
	       "message_start first");
	is_int(ji(start, "message.usage.input_tokens"), 42,
	       "message_start: the estimated prompt");
	is_int(ji(start, "message.usage.output_tokens"), 0,
	       "message_start: no output yet");
	is_str(ev.n > 1 ? ev.v[ev.n - 2].name : NULL, "message_delta",
	       "message_delta before message_stop");
	is_int(ji(delta, "usage.input_tokens"), 25,
	       "message_delta: the provider's exact prompt");
	is_int(ji(delta, "usage.output_tokens"), 9,
	       "message_delta: the provider's output");
	cJSON_Delete(start);
	cJSON_Delete(delta);
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
		  "\"code\":\"invalid_api_key\"}",
		  "authentication_error" },
		{ "{\"message\":\"m\",\"type\":\"insufficient_quota\","
		  "\"code\":\"insufficient_quota\"}",
		  "rate_limit_error" },
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
		struct tr_stream *tr =
			tr_stream_new(TR_CHAT_TO_ANTHROPIC, "m", 0, 0);
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

int
main(void)
{
	test_stream_a2c("anthropic-messages-stream.sse",
			"msg_01Hb3kQ7x8ZyWvT2nR5sPqLm");
	test_stream_a2c("../extra/anthropic-tools-stream.sse",
			"msg_014p7gG3wDgGV9EUtLvnow3U");
	for (size_t i = 0; i < sizeof(c2a_cases) / sizeof(c2a_cases[0]); i++)
		test_stream_c2a(&c2a_cases[i]);
	test_stream_errors();
	test_stream_prompt_estimate();
	test_stream_error_types();
	return done_testing();
}
