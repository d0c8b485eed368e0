/*
 * test_translate_request.c - the chat <-> messages translation of
 * requests: fields, system prompts, tool definitions and choices, the
 * small cases (defaults, clamps, refusals), and round trips.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "tap.h"
#include "translate_util.h"

static void
test_chat_request(void)
{
	cJSON *req = load_json("../extra/openai-tools-request.json");
	cJSON *out, *want;
	char *cause = NULL, *s;
	size_t len = 0;

	s = tr_chat_to_messages(req, "claude-target", 0, &len, &cause);
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
	is_str(js(out, "stop_sequences[0]"),
	       "\n\nUser:", "stop -> stop_sequences");
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
		   jp(out, "tools[0].type") == NULL,
	   "strict and type not sent");
	want = J("{\"type\":\"object\",\"properties\":{}}");
	ok(cJSON_Compare(jp(out, "tools[1].input_schema"), want, 1),
	   "function without parameters gets an empty object schema");
	cJSON_Delete(want);
	want = J("{\"type\":\"auto\",\"disable_parallel_tool_use\":true}");
	ok(cJSON_Compare(jp(out, "tool_choice"), want, 1),
	   "parallel_tool_calls false -> disable_parallel_tool_use");
	cJSON_Delete(want);
	ok(!jp(out, "seed") && !jp(out, "logprobs") && !jp(out, "user") &&
		   !jp(out, "stream_options") &&
		   !jp(out, "frequency_penalty") &&
		   !jp(out, "max_completion_tokens") &&
		   !jp(out, "parallel_tool_calls"),
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

	s = tr_messages_to_chat(req, "gpt-target", 1, 0, &len, &cause);
	ok(s != NULL, "Anthropic request with tools translates (%s)",
	   cause ? cause : "no cause");
	out = take(s, &len);
	is_str(js(out, "model"), "gpt-target", "request model is the target");
	is_int(ji(out, "max_tokens"), 4096, "max_tokens kept");
	is_int(jsize(out, "messages"), 7,
	       "two system + user + assistant + two tool + user");
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

	out = take(tr_messages_to_chat(req, "gpt-target", 0, 0, &len, NULL),
		   &len);
	ok(out != NULL && jp(out, "stream_options") == NULL,
	   "no stream_options when the provider rejects it");
	cJSON_Delete(out);

	want = J("{\"model\":\"x\",\"max_tokens\":10,\"system\":\"Be brief.\","
		 "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	out = take(tr_messages_to_chat(want, "m", 1, 0, &len, NULL), &len);
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
	const char *want; /* NULL: refused */
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

		snprintf(buf, sizeof(buf),
			 "{\"messages\":[{\"role\":\"user\","
			 "\"content\":\"hi\"}],\"tools\":[{\"type\":\"function"
			 "\",\"function\":{\"name\":\"f\"}}],"
			 "\"tool_choice\":%s}",
			 to_msg[i].in);
		req = J(buf);
		out = take(tr_chat_to_messages(req, "m", 0, &len, &cause),
			   &len);
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

		snprintf(buf, sizeof(buf),
			 "{\"max_tokens\":5,\"messages\":"
			 "[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":"
			 "[{\"name\":\"f\",\"input_schema\":{\"type\":"
			 "\"object\"}}],\"tool_choice\":%s}",
			 to_chat[i].in);
		req = J(buf);
		out = take(tr_messages_to_chat(req, "m", 1, 0, &len, &cause),
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
		cJSON *out = take(tr_chat_to_messages(req, "m", 0, &len, NULL),
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
		cJSON *out = take(tr_chat_to_messages(req, "m", 0, &len, NULL),
				  &len),
		      *want = J("{\"type\":\"none\"}");

		ok(cJSON_Compare(jp(out, "tool_choice"), want, 1),
		   "none takes no disable_parallel_tool_use");
		cJSON_Delete(want);
		cJSON_Delete(out);
		cJSON_Delete(req);
	}
}

/* Small request cases: defaults, clamps, ids, refusals. */
struct req_case {
	int to_messages; /* 1: chat -> messages, 0: messages -> chat */
	const char *req;
	const char *path; /* checked in the output; NULL: must be refused */
	const char *want; /* JSON value expected at path; NULL: absent */
	const char *what;
};

static const struct req_case req_cases[] = {
	{ 1, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	  "max_tokens", "4096", "max_tokens defaults to 4096" },
	{ 1,
	  "{\"max_tokens\":100,\"max_completion_tokens\":200,\"messages\":"
	  "[{\"role\":\"user\",\"content\":\"hi\"}]}",
	  "max_tokens", "200", "max_completion_tokens wins over max_tokens" },
	{ 1,
	  "{\"temperature\":1.6,\"messages\":[{\"role\":\"user\","
	  "\"content\":\"hi\"}]}",
	  "temperature", "1", "temperature clamped to Anthropic's 1" },
	{ 1,
	  "{\"stop\":\"END\",\"messages\":[{\"role\":\"user\","
	  "\"content\":\"hi\"}]}",
	  "stop_sequences", "[\"END\"]", "stop string -> one stop sequence" },
	{ 1,
	  "{\"top_p\":0.5,\"messages\":[{\"role\":\"user\","
	  "\"content\":\"hi\"}]}",
	  "top_p", "0.5", "top_p alone kept" },
	{ 1,
	  "{\"stop\":[\"\\n\",\"END\",\"\",\" \\t\"],\"messages\":[{\"role\""
	  ":\"user\",\"content\":\"hi\"}]}",
	  "stop_sequences", "[\"END\"]",
	  "empty and white-space stop sequences dropped" },
	{ 1,
	  "{\"stop\":\"\\n\",\"max_tokens\":5,\"messages\":[{\"role\":"
	  "\"user\",\"content\":\"hi\"}]}",
	  "stop_sequences", NULL, "only white space: no stop_sequences" },
	{ 1, "{\"n\":1,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	  "messages", "[{\"role\":\"user\",\"content\":\"hi\"}]",
	  "n = 1 accepted" },
	{ 1,
	  "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
	  "{\"role\":\"user\",\"content\":\"hi\"}]}",
	  "system", "\"S\"", "one system message -> string system" },
	{ 1,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
	  "{\"role\":\"system\",\"content\":\"late\"},{\"role\":\"user\","
	  "\"content\":\"again\"}]}",
	  "messages",
	  "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
	  "\"hi\"},{\"type\":\"text\",\"text\":\"again\"}]}]",
	  "a system message between user turns is hoisted, the turns merge" },
	{ 1,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
	  "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":"
	  "\"functions.get:0\",\"type\":\"function\",\"function\":{\"name\":"
	  "\"get\",\"arguments\":\"not json\"}}]},{\"role\":\"tool\","
	  "\"tool_call_id\":\"functions.get:0\",\"content\":\"r\"}]}",
	  "messages",
	  "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":"
	  "\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":"
	  "\"functions_get_0\",\"name\":\"get\",\"input\":{}}]},{\"role\":"
	  "\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
	  "\"functions_get_0\",\"content\":\"r\"}]}]",
	  "ids made Anthropic-safe the same way; bad arguments -> {}; empty "
	  "text skipped" },
	{ 1,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
	  "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
	  "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
	  "\"[1,2]\"}}]}]}",
	  "messages[1].content[0].input", "{}",
	  "arguments that are JSON but not an object -> {}" },
	{ 1,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
	  "{\"role\":\"assistant\",\"content\":\"\"},{\"role\":\"user\","
	  "\"content\":\"there\"}]}",
	  "messages",
	  "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
	  "\"hi\"},{\"type\":\"text\",\"text\":\"there\"}]}]",
	  "an empty assistant turn is dropped" },
	{ 1,
	  "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"file\",\"file\":{\"filename\":\"a.pdf\",\"file_data\":"
	  "\"data:application/pdf;base64,JVBERi0=\"}}]}]}",
	  "messages[0].content[0].source",
	  "{\"type\":\"base64\",\"media_type\":\"application/pdf\","
	  "\"data\":\"JVBERi0=\"}",
	  "PDF file part -> document block" },
	{ 1,
	  "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;name=a.jpg;"
	  "base64,/9j/\"}}]}]}",
	  "messages[0].content[0].source",
	  "{\"type\":\"base64\",\"media_type\":\"image/jpeg\",\"data\":"
	  "\"/9j/\"}",
	  "data: URL with parameters: media type before them" },
	{ 1, "{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	  NULL, NULL, "n = 2 refused" },
	{ 1,
	  "{\"functions\":[{\"name\":\"f\"}],\"messages\":[{\"role\":"
	  "\"user\",\"content\":\"hi\"}]}",
	  NULL, NULL, "legacy functions refused" },
	{ 1,
	  "{\"messages\":[{\"role\":\"function\",\"name\":\"f\","
	  "\"content\":\"x\"}]}",
	  NULL, NULL, "role function refused" },
	{ 1,
	  "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"input_audio\",\"input_audio\":{\"data\":\"AAAA\",\"format\":"
	  "\"wav\"}}]}]}",
	  NULL, NULL, "audio input refused" },
	{ 1,
	  "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"image_url\",\"image_url\":{\"url\":\"data:image/png,abc\"}}]}]}",
	  NULL, NULL, "non-base64 data: URL refused" },
	{ 1, "{\"messages\":[{\"role\":\"tool\",\"content\":\"r\"}]}", NULL,
	  NULL, "tool message without tool_call_id refused" },
	{ 1,
	  "{\"max_tokens\":0,\"messages\":[{\"role\":\"user\","
	  "\"content\":\"hi\"}]}",
	  NULL, NULL, "max_tokens 0 refused" },
	{ 1,
	  "{\"max_tokens\":\"12\",\"messages\":[{\"role\":\"user\","
	  "\"content\":\"hi\"}]}",
	  NULL, NULL, "max_tokens string refused" },
	{ 1, "{\"messages\":[]}", NULL, NULL, "empty messages refused" },
	{ 1, "{\"messages\":[{\"role\":\"assistant\",\"content\":\"\"}]}", NULL,
	  NULL, "no content at all refused" },
	{ 1, "[1,2]", NULL, NULL, "array body refused" },
	{ 1,
	  "{\"stop\":7,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	  NULL, NULL, "numeric stop refused" },
	{ 0,
	  "{\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":"
	  "[{\"type\":\"document\",\"source\":{\"type\":\"text\",\"media_type\""
	  ":\"text/plain\",\"data\":\"doc text\"}}]}]}",
	  "messages[0].content", "\"doc text\"", "text document -> text" },
	{ 0,
	  "{\"max_tokens\":9,\"messages\":[{\"role\":\"assistant\","
	  "\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\","
	  "\"input\":{}}]}]}",
	  "messages[0]",
	  "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
	  "\"t1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
	  "\"arguments\":\"{}\"}}]}",
	  "tool_use only -> content null" },
	{ 0,
	  "{\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":"
	  "[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":"
	  "[{\"type\":\"text\",\"text\":\"see\"},{\"type\":\"image\","
	  "\"source\":{\"type\":\"url\",\"url\":\"https://x/y.png\"}}]}]}]}",
	  "messages",
	  "[{\"role\":\"tool\",\"tool_call_id\":\"t1\","
	  "\"content\":\"see\"},{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}]",
	  "an image in a tool result moves to the next user message" },
	{ 0,
	  "{\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":"
	  "\"hi\"}],\"tools\":[{\"type\":\"web_search_20250305\",\"name\":"
	  "\"web_search\"}]}",
	  NULL, NULL, "server tools refused" },
	{ 0,
	  "{\"max_tokens\":9,\"messages\":[{\"role\":\"assistant\","
	  "\"content\":[{\"type\":\"server_tool_use\",\"id\":\"s\",\"name\":"
	  "\"web_search\",\"input\":{}}]}]}",
	  NULL, NULL, "server tool blocks refused" },
	{ 0,
	  "{\"max_tokens\":9,\"messages\":[{\"role\":\"robot\","
	  "\"content\":\"x\"}]}",
	  NULL, NULL, "unknown role refused" },
	{ 0,
	  "{\"max_tokens\":-1,\"messages\":[{\"role\":\"user\","
	  "\"content\":\"x\"}]}",
	  NULL, NULL, "negative max_tokens refused" },
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

		out = take(c->to_messages ? tr_chat_to_messages(req, "m", 0,
								&len, &cause)
					  : tr_messages_to_chat(req, "m", 1, 0,
								&len, &cause),
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
		"\"stop\":[\"END\",\"STOP\"],\"stream\":true,\"messages\":["
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
		"messages",    "tools",
		"tool_choice", "stop",
		"temperature", "max_tokens",
		"stream",      "parallel_tool_calls",
		"user",
	};
	static const char *const msg_keys[] = {
		"system",         "messages",    "tools",      "tool_choice",
		"stop_sequences", "temperature", "max_tokens", "metadata",
	};
	cJSON *mid, *back;
	size_t len;
	char *s;

	s = tr_chat_to_messages(chat, "claude", 0, &len, NULL);
	mid = take(s, &len);
	s = mid ? tr_messages_to_chat(mid, "gpt-4o", 0, 0, &len, NULL) : NULL;
	back = take(s, &len);
	ok(back != NULL, "chat -> messages -> chat");
	for (size_t i = 0; i < sizeof(chat_keys) / sizeof(chat_keys[0]); i++)
		ok(cJSON_Compare(jp(chat, chat_keys[i]), jp(back, chat_keys[i]),
				 1),
		   "round trip keeps %s", chat_keys[i]);
	is_int(cJSON_GetArraySize(back), cJSON_GetArraySize(chat),
	       "round trip adds no field");
	cJSON_Delete(mid);
	cJSON_Delete(back);

	s = tr_messages_to_chat(msg, "gpt-4o", 0, 0, &len, NULL);
	mid = take(s, &len);
	s = mid ? tr_chat_to_messages(mid, "claude", 0, &len, NULL) : NULL;
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

/* A cap a hard quota reserved replaces the request's own, and is added
 * when it set none, in either direction. */
static void
test_cap(void)
{
	cJSON *chat = cJSON_Parse("{\"messages\":[{\"role\":\"user\","
				  "\"content\":\"hi\"}],\"max_tokens\":900}");
	cJSON *msg = cJSON_Parse("{\"messages\":[{\"role\":\"user\","
				 "\"content\":\"hi\"}]}");
	size_t len = 0;
	cJSON *out;

	out = take(tr_chat_to_messages(chat, "m", 77, &len, NULL), &len);
	ok(cJSON_IsNumber(jp(out, "max_tokens")) &&
		   jp(out, "max_tokens")->valueint == 77,
	   "chat -> messages: the cap sent replaces max_tokens 900");
	cJSON_Delete(out);
	out = take(tr_messages_to_chat(msg, "m", 0, 77, &len, NULL), &len);
	ok(cJSON_IsNumber(jp(out, "max_tokens")) &&
		   jp(out, "max_tokens")->valueint == 77,
	   "messages -> chat: the cap sent is added");
	cJSON_Delete(out);
	cJSON_Delete(chat);
	cJSON_Delete(msg);
}

int
main(void)
{
	test_cap();
	test_chat_request();
	test_messages_request();
	test_tool_choice();
	test_request_cases();
	test_round_trip();
	return done_testing();
}
