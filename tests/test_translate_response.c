/*
 * test_translate_response.c - the chat <-> messages translation of
 * answers and errors: fields, tool calls, stop reasons, usage, answers
 * that cannot be translated, and error bodies in each shape.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "tap.h"
#include "translate_util.h"

static void
test_anthropic_response(void)
{
	cJSON *in = load_json("anthropic-messages.json"), *out;
	struct usage ui, uo;
	char *cause = NULL;
	size_t len = 0;

	out = take(
		tr_messages_resp_to_chat(in, "my-model", CREATED, &len, &cause),
		&len);
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
	out = take(
		tr_messages_resp_to_chat(in, "my-model", CREATED, &len, NULL),
		&len);
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
				"function.arguments"),
			jp(in, "content[2].input")),
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
			       "arguments"),
			jp(out, "content[1].input")),
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
			   ui.completion == uo.completion &&
			   ui.cached == uo.cached,
		   "%s: usage %lld/%lld/%lld metered the same once translated",
		   files[i].file, (long long)ui.prompt,
		   (long long)ui.completion, (long long)ui.cached);
		cJSON_Delete(out);
		cJSON_Delete(in);
	}
}

/* Counts up to 2^53 cross both ways digit for digit (a double printed
 * with 15 significant digits would drop the last one). */
static void
test_large_counts(void)
{
	static const char msg[] =
		"{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
		"\"assistant\",\"model\":\"m\",\"content\":[],"
		"\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":472,"
		"\"output_tokens\":3,"
		"\"cache_read_input_tokens\":9007199254740191}}";
	static const char chat[] =
		"{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\","
		"\"choices\":[{\"index\":0,\"message\":{\"role\":"
		"\"assistant\",\"content\":\"\"},\"finish_reason\":\"stop\"}],"
		"\"usage\":{\"prompt_tokens\":9007199254740991,"
		"\"completion_tokens\":4503599627370497,"
		"\"prompt_tokens_details\":{\"cached_tokens\":"
		"9007199254740189}}}";
	cJSON *in;
	char *out;
	size_t len;

	in = cJSON_Parse(msg);
	out = tr_messages_resp_to_chat(in, "m", 1700000000, &len, NULL);
	ok(out != NULL && strstr(out, "\"cached_tokens\":9007199254740191}") &&
		   strstr(out, "\"prompt_tokens\":9007199254740663,"),
	   "Anthropic -> chat: cache reads and prompt keep every digit: %s",
	   out ? out : "(null)");
	free(out);
	cJSON_Delete(in);

	in = cJSON_Parse(chat);
	out = tr_chat_resp_to_messages(in, "m", &len, NULL);
	ok(out != NULL &&
		   strstr(out,
			  "\"cache_read_input_tokens\":9007199254740189,") &&
		   strstr(out, "\"input_tokens\":802,") &&
		   strstr(out, "\"output_tokens\":4503599627370497}"),
	   "chat -> Anthropic: counts keep every digit: %s",
	   out ? out : "(null)");
	free(out);
	cJSON_Delete(in);
}

static void
test_stop_reasons(void)
{
	static const char *const a2c[][2] = {
		{ "end_turn", "stop" },
		{ "stop_sequence", "stop" },
		{ "max_tokens", "length" },
		{ "tool_use", "tool_calls" },
		{ "pause_turn", "stop" },
		{ "refusal", "content_filter" },
		{ "model_context_window_exceeded", "length" },
	};
	static const char *const c2a[][2] = {
		{ "stop", "end_turn" },
		{ "length", "max_tokens" },
		{ "tool_calls", "tool_use" },
		{ "function_call", "tool_use" },
		{ "content_filter", "end_turn" },
	};
	char buf[256];
	size_t len;

	for (size_t i = 0; i < sizeof(a2c) / sizeof(a2c[0]); i++) {
		cJSON *in, *out;

		snprintf(buf, sizeof(buf),
			 "{\"id\":\"msg_1\",\"type\":"
			 "\"message\",\"content\":[],\"stop_reason\":\"%s\","
			 "\"usage\":{}}",
			 a2c[i][0]);
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

		snprintf(buf, sizeof(buf),
			 "{\"id\":\"x\",\"choices\":[{"
			 "\"message\":{\"role\":\"assistant\",\"content\":"
			 "\"a\"},\"finish_reason\":\"%s\"}]}",
			 c2a[i][0]);
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
		"[]",
		"null",
	};
	static const char *const bad_c[] = {
		"{\"choices\":[]}",
		"{\"choices\":{\"message\":{}}}",
		"{\"error\":{\"message\":\"x\"}}",
		"7",
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

struct err_case {
	const char *file;
	int status;
	const char *type;
	const char *code; /* NULL: null */
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

		out = take(
			tr_error_to_chat(to_chat[i].status, body, flen, &len),
			&len);
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
						&len),
			   &len);
		is_str(js(out, "type"), "error", "%s: envelope",
		       to_msg[i].file);
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

		out = take(
			tr_error_to_messages(502, html, sizeof(html) - 1, &len),
			&len);
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

int
main(void)
{
	test_anthropic_response();
	test_chat_responses();
	test_large_counts();
	test_stop_reasons();
	test_bad_responses();
	test_errors();
	return done_testing();
}
