/*
 * translate_resp.c - whole answers, usage and error bodies between the
 * chat and messages wires (the principle is at the top of translate.c).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate.h"
#include "translate_int.h"

/* An upstream error body that is not JSON is quoted up to this length. */
#define TR_MAX_RAW_MESSAGE 512

/* ------------------------------------------------------------------ */
/* Stop reasons and usage                                             */
/* ------------------------------------------------------------------ */

/* Anthropic stop_reason -> OpenAI finish_reason. */
const char *
tr_finish_reason(const char *stop)
{
	if (stop == NULL)
		return "stop";
	if (strcmp(stop, "max_tokens") == 0 ||
	    strcmp(stop, "model_context_window_exceeded") == 0)
		return "length";
	if (strcmp(stop, "tool_use") == 0)
		return "tool_calls";
	if (strcmp(stop, "refusal") == 0)
		return "content_filter";
	return "stop";
}

/* OpenAI finish_reason -> Anthropic stop_reason. */
const char *
tr_stop_reason(const char *finish)
{
	if (finish == NULL)
		return "end_turn";
	if (strcmp(finish, "length") == 0)
		return "max_tokens";
	if (strcmp(finish, "tool_calls") == 0 ||
	    strcmp(finish, "function_call") == 0)
		return "tool_use";
	return "end_turn";
}

/* Overrides the counts present in an Anthropic usage object (cumulative
 * in streams: a later value replaces, never adds). */
void
tr_counts_merge(struct tr_counts *c, const cJSON *u)
{
	json_count(u, "input_tokens", &c->input);
	json_count(u, "cache_creation_input_tokens", &c->cache_write);
	json_count(u, "cache_read_input_tokens", &c->cache_read);
	json_count(u, "output_tokens", &c->output);
}

/* Adds an OpenAI usage object for Anthropic counts. */
void
tr_chat_usage(struct bld *b, cJSON *parent, const struct tr_counts *c)
{
	int64_t prompt = c->input + c->cache_write + c->cache_read;
	cJSON *u = b_obj(b, parent, "usage");

	b_int(b, u, "prompt_tokens", prompt);
	b_int(b, u, "completion_tokens", c->output);
	b_int(b, u, "total_tokens", prompt + c->output);
	b_int(b, b_obj(b, u, "prompt_tokens_details"), "cached_tokens",
	      c->cache_read);
}

/* Reads an OpenAI usage object (top level, or in a choice as Moonshot
 * sends it) into Anthropic counts; 1 when found. */
int
tr_counts_from_chat(struct tr_counts *c, const cJSON *root)
{
	const cJSON *u = get(root, "usage"), *ch;
	int64_t prompt = 0, cached = 0, write = 0, completion = 0;

	if (!cJSON_IsObject(u)) {
		u = NULL;
		cJSON_ArrayForEach (ch, arr_of(get(root, "choices")))
			if (cJSON_IsObject(get(ch, "usage"))) {
				u = get(ch, "usage");
				break;
			}
	}
	if (u == NULL || (json_count(u, "prompt_tokens", &prompt) <= 0 &&
			  json_count(u, "completion_tokens", &completion) <= 0))
		return 0;
	json_count(u, "completion_tokens", &completion);
	if (json_count(get(u, "prompt_tokens_details"), "cached_tokens",
		       &cached) <= 0 &&
	    json_count(u, "prompt_cache_hit_tokens", &cached) <= 0)
		json_count(u, "cached_tokens", &cached);
	json_count(get(u, "prompt_tokens_details"), "cache_write_tokens",
		   &write);
	if (cached > prompt)
		cached = prompt;
	if (write > prompt - cached)
		write = prompt - cached;
	c->input = prompt - cached - write;
	c->cache_read = cached;
	c->cache_write = write;
	c->output = completion;
	return 1;
}

/* Adds an Anthropic usage object. */
void
tr_msg_usage(struct bld *b, cJSON *parent, const struct tr_counts *c)
{
	cJSON *u = b_obj(b, parent, "usage");

	b_int(b, u, "input_tokens", c->input);
	b_int(b, u, "cache_creation_input_tokens", c->cache_write);
	b_int(b, u, "cache_read_input_tokens", c->cache_read);
	b_int(b, u, "output_tokens", c->output);
}

/* ------------------------------------------------------------------ */
/* Whole responses                                                    */
/* ------------------------------------------------------------------ */

/* Adds one tool_calls entry {id, type, function {name, arguments}}. */
static void
b_tool_call(struct bld *b, cJSON *calls, const char *id, const char *name,
	    const cJSON *input)
{
	cJSON *tc = b_obj(b, calls, NULL), *fn;
	char *args =
		cJSON_IsObject(input) ? cJSON_PrintUnformatted(input) : NULL;

	b_str(b, tc, "id", id);
	b_str(b, tc, "type", "function");
	fn = b_obj(b, tc, "function");
	b_str(b, fn, "name", name);
	b_str(b, fn, "arguments", args != NULL ? args : "{}");
	free(args);
}

/* Anthropic message -> chat.completion. */
char *
tr_messages_resp_to_chat(const cJSON *resp, const char *model, int64_t created,
			 size_t *len, char **cause)
{
	const cJSON *content = get(resp, "content"), *blk;
	const char *id = get_str(resp, "id");
	struct tr_counts c = { 0 };
	struct bld b = { 0 };
	struct buf text = { 0 };
	cJSON *out, *choice, *msg, *calls = NULL;
	char *cid;

	if (!str_is(resp, "type", "message") || id == NULL ||
	    !cJSON_IsArray(content))
		return fail(cause,
			    "upstream answer is not an Anthropic message");
	if ((out = cJSON_CreateObject()) == NULL)
		return fail(cause, "out of memory");
	if ((cid = concat("chatcmpl-", id)) == NULL)
		b.oom = 1;
	b_str(&b, out, "id", cid != NULL ? cid : "");
	free(cid);
	b_str(&b, out, "object", "chat.completion");
	b_num(&b, out, "created", (double)created);
	b_str(&b, out, "model", model);
	choice = b_obj(&b, b_arr(&b, out, "choices"), NULL);
	b_num(&b, choice, "index", 0);
	msg = b_obj(&b, choice, "message");
	b_str(&b, msg, "role", "assistant");
	cJSON_ArrayForEach (blk, content) {
		const char *t = get_str(blk, "text");
		const char *tid = get_str(blk, "id");
		const char *name = get_str(blk, "name");

		if (str_is(blk, "type", "text") && t != NULL) {
			if (buf_add(&text, t, strlen(t)) < 0)
				b.oom = 1;
		} else if (str_is(blk, "type", "tool_use") && tid != NULL &&
			   name != NULL) {
			if (calls == NULL)
				calls = cJSON_CreateArray();
			b_tool_call(&b, calls, tid, name, get(blk, "input"));
		}
	}
	if (text.len > 0 || calls == NULL)
		b_str(&b, msg, "content", text.data != NULL ? text.data : "");
	else
		b_null(&b, msg, "content");
	buf_free(&text);
	b_null(&b, msg, "refusal");
	if (calls != NULL)
		b_add(&b, msg, "tool_calls", calls);
	b_null(&b, choice, "logprobs");
	b_str(&b, choice, "finish_reason",
	      tr_finish_reason(get_str(resp, "stop_reason")));
	tr_counts_merge(&c, get(resp, "usage"));
	tr_chat_usage(&b, out, &c);
	return tr_print(&b, out, len, cause);
}

/* The Anthropic message id for a chat id: "msg_" + the id without its
 * "chatcmpl-" prefix. */
char *
tr_msg_id(const char *id)
{
	if (id == NULL || *id == '\0')
		id = "tollgate";
	if (strncmp(id, "chatcmpl-", 9) == 0)
		id += 9;
	return concat("msg_", id);
}

/* chat.completion -> Anthropic message. */
char *
tr_chat_resp_to_messages(const cJSON *resp, const char *model, size_t *len,
			 char **cause)
{
	const cJSON *choices = get(resp, "choices");
	const cJSON *choice =
		cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
	const cJSON *msg = get(choice, "message"), *tc;
	const char *text = get_str(msg, "content");
	const char *refusal = get_str(msg, "refusal");
	const char *finish_reason = get_str(choice, "finish_reason");
	struct tr_counts c = { 0 };
	struct bld b = { 0 };
	cJSON *out, *content, *blk;
	char *id;

	if (!cJSON_IsObject(msg))
		return fail(cause, "upstream answer is not a chat completion");
	if ((out = cJSON_CreateObject()) == NULL)
		return fail(cause, "out of memory");
	if ((id = tr_msg_id(get_str(resp, "id"))) == NULL)
		b.oom = 1;
	b_str(&b, out, "id", id != NULL ? id : "");
	free(id);
	b_str(&b, out, "type", "message");
	b_str(&b, out, "role", "assistant");
	b_str(&b, out, "model", model);
	content = b_arr(&b, out, "content");
	if (text != NULL)
		tr_text_block(&b, content, text);
	else if (refusal != NULL)
		tr_text_block(&b, content, refusal);
	cJSON_ArrayForEach (tc, arr_of(get(msg, "tool_calls"))) {
		const cJSON *fn = get(tc, "function");
		const char *tid = get_str(tc, "id");
		const char *name = get_str(fn, "name");

		if (tid == NULL || name == NULL)
			continue;
		blk = b_obj(&b, content, NULL);
		b_str(&b, blk, "type", "tool_use");
		b_str(&b, blk, "id", tid);
		b_str(&b, blk, "name", name);
		b_add(&b, blk, "input",
		      tr_parse_arguments(get_str(fn, "arguments")));
	}
	b_str(&b, out, "stop_reason", tr_stop_reason(finish_reason));
	b_null(&b, out, "stop_sequence");
	tr_counts_from_chat(&c, resp);
	tr_msg_usage(&b, out, &c);
	return tr_print(&b, out, len, cause);
}

/* ------------------------------------------------------------------ */
/* Errors                                                             */
/* ------------------------------------------------------------------ */

/* The Anthropic error type for an HTTP status. */
const char *
tr_anthropic_error_type(int status)
{
	switch (status) {
	case 400:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 529:
		return "overloaded_error";
	default:
		return status >= 400 && status < 500 ? "invalid_request_error"
						     : "api_error";
	}
}

/* Anthropic error type -> OpenAI type and code (the table in the
 * principle comment); *code NULL for a null code. */
static const char *
chat_error_type(const char *atype, const char **code)
{
	static const struct {
		const char *anthropic, *type, *code;
	} map[] = {
		{ "invalid_request_error", "invalid_request_error", NULL },
		{ "authentication_error", "invalid_request_error",
		  "invalid_api_key" },
		{ "request_too_large", "invalid_request_error",
		  "request_too_large" },
		{ "rate_limit_error", "rate_limit_error",
		  "rate_limit_exceeded" },
		{ "api_error", "server_error", NULL },
	};

	*code = NULL;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(atype, map[i].anthropic) == 0) {
			*code = map[i].code;
			return map[i].type;
		}
	return atype;
}

/* The upstream's error message: error.message, else a top-level message,
 * else the body itself when it is short text, else a generic one. Returns
 * a malloc'd string (NULL when out of memory). */
static char *
error_message(const cJSON *root, const char *body, size_t body_len, int status)
{
	const char *m = get_str(get(root, "error"), "message");
	char buf[64];

	if (m == NULL)
		m = get_str(root, "message");
	if (m == NULL && cJSON_IsString(get(root, "error")))
		m = get(root, "error")->valuestring;
	if (m != NULL && *m != '\0')
		return memdup0(m, strlen(m));
	if (root == NULL && body_len > 0 && body_len <= TR_MAX_RAW_MESSAGE &&
	    memchr(body, '\0', body_len) == NULL) {
		while (body_len > 0 && (body[body_len - 1] == '\n' ||
					body[body_len - 1] == '\r' ||
					body[body_len - 1] == ' '))
			body_len--;
		if (body_len > 0)
			return memdup0(body, body_len);
	}
	snprintf(buf, sizeof(buf), "upstream returned HTTP %d", status);
	return memdup0(buf, strlen(buf));
}

/* Builds {"error":{"message","type","param":null,"code"}}. */
cJSON *
tr_chat_error_body(struct bld *b, const char *atype, const char *message)
{
	cJSON *out = cJSON_CreateObject(), *e;
	const char *code, *type = chat_error_type(atype, &code);

	e = b_obj(b, out, "error");
	b_str(b, e, "message", message);
	b_str(b, e, "type", type);
	b_null(b, e, "param");
	if (code != NULL)
		b_str(b, e, "code", code);
	else
		b_null(b, e, "code");
	return out;
}

/* Upstream Anthropic error body -> OpenAI error body. */
char *
tr_error_to_chat(int status, const char *body, size_t body_len, size_t *len)
{
	cJSON *root = body_len > 0 ? json_parse_exact(body, body_len) : NULL;
	const char *atype = get_str(get(root, "error"), "type");
	struct bld b = { 0 };
	char *msg = error_message(root, body, body_len, status), *s;
	cJSON *out;

	if (atype == NULL || *atype == '\0')
		atype = tr_anthropic_error_type(status);
	out = tr_chat_error_body(&b, atype, msg != NULL ? msg : "");
	if (msg == NULL)
		b.oom = 1;
	s = tr_print(&b, out, len, NULL);
	free(msg);
	cJSON_Delete(root);
	return s;
}

/* Builds {"type":"error","error":{"type","message"}}. */
cJSON *
tr_msg_error_body(struct bld *b, const char *type, const char *message)
{
	cJSON *out = cJSON_CreateObject(), *e;

	b_str(b, out, "type", "error");
	e = b_obj(b, out, "error");
	b_str(b, e, "type", type);
	b_str(b, e, "message", message);
	return out;
}

/* Upstream OpenAI-shaped error body -> Anthropic error body. */
char *
tr_error_to_messages(int status, const char *body, size_t body_len, size_t *len)
{
	cJSON *root = body_len > 0 ? json_parse_exact(body, body_len) : NULL;
	struct bld b = { 0 };
	char *msg = error_message(root, body, body_len, status), *s;
	cJSON *out;

	out = tr_msg_error_body(&b, tr_anthropic_error_type(status),
				msg != NULL ? msg : "");
	if (msg == NULL)
		b.oom = 1;
	s = tr_print(&b, out, len, NULL);
	free(msg);
	cJSON_Delete(root);
	return s;
}
