/*
 * translate.c - OpenAI Chat Completions <-> Anthropic Messages translation.
 *
 * Principle: a client keeps its own wire and switches provider by changing
 * a route, so everything the client sees is in its own wire's shape, and
 * what the upstream sees is a request it accepts. Each direction maps the
 * fields both wires have, drops what only one has and whose loss changes
 * no answer's meaning (logprobs, top_k, thinking, cache_control, seed...),
 * and refuses with a reason what cannot be expressed (n > 1, audio input,
 * legacy functions, Anthropic server tools): a 400 the client can read is
 * better than an answer that silently ignores part of the request.
 *
 * Output is built as a cJSON tree and printed unformatted; a field is read
 * only when it has the expected JSON type, and every allocation failure
 * lands in one flag (struct bld) checked before printing, so a malformed
 * or hostile input gives NULL and a reason, never a crash or half a body.
 * Each translation is linear in the size of its input: cJSON arrays are
 * linked lists, so their items are walked in order and kept at hand
 * (the last turn, when merging), never counted or found by index in a
 * loop (tests/test_linear.c measures it).
 *
 * Requests, chat -> messages (tr_chat_to_messages):
 * - system and developer messages, wherever they are, become the top-level
 *   "system": a string for one, text blocks for several.
 * - content strings and parts become blocks: text; image_url with a data:
 *   URL -> base64 image source, else a url source; file with PDF file_data
 *   -> document block. Audio and other parts are refused.
 * - assistant tool_calls -> tool_use blocks, arguments parsed into "input"
 *   (not a JSON object -> {}); role tool -> a tool_result block in a user
 *   turn. Consecutive turns of one role merge (Anthropic wants alternation,
 *   and all results of one assistant turn in the next user turn). Empty
 *   text is skipped and an empty turn dropped (Anthropic rejects both).
 * - tool ids are made of [A-Za-z0-9_-] (Anthropic's pattern; some OpenAI-
 *   compatible providers use ids like "functions.f:0"): other bytes become
 *   '_', the same way in tool_use and tool_result so pairs still match.
 * - max_completion_tokens, else max_tokens, else 4096 (required there);
 *   temperature is clamped to Anthropic's [0, 1]; top_p only without
 *   temperature (Anthropic's recent models refuse both at once); stop
 *   (string or array) -> stop_sequences, minus the empty and white-space-
 *   only ones that Anthropic refuses (so a "\n" stop is lost); stream;
 *   tools -> {name, description, input_schema} (an empty object schema
 *   when a function has no parameters); tool_choice auto/none/required/
 *   named -> auto/none/any/tool; parallel_tool_calls false ->
 *   disable_parallel_tool_use; user -> metadata.user_id. tool_choice goes
 *   only with tools (Anthropic refuses it alone). response_format, seed,
 *   logprobs, stream_options... are dropped.
 *
 * Requests, messages -> chat (tr_messages_to_chat): system (string or each
 * text block) -> leading system messages; text, image (base64 -> data:
 * URL) and document blocks -> content parts, a lone text part as a plain
 * string; tool_use -> tool_calls (input printed as arguments); each
 * tool_result -> a tool message placed before the rest of its user turn
 * (OpenAI wants them right after the assistant's calls), images in results
 * moved into that user turn; thinking blocks dropped; stop_sequences ->
 * stop; tool_choice any -> required, disable_parallel_tool_use ->
 * parallel_tool_calls false; metadata.user_id -> user; top_k and thinking
 * dropped. max_tokens stays max_tokens, the name every OpenAI-compatible
 * provider knows.
 *
 * Responses: the chat answer gets id "chatcmpl-" + message id, the client's
 * model, text blocks joined, tool_use as tool_calls (content null when
 * there is no text), finish_reason end_turn/stop_sequence/pause_turn ->
 * stop, max_tokens/model_context_window_exceeded -> length, tool_use ->
 * tool_calls, refusal -> content_filter. The Anthropic answer gets id
 * "msg_" + the chat id without "chatcmpl-", stop_reason stop -> end_turn,
 * length -> max_tokens, tool_calls/function_call -> tool_use,
 * content_filter -> end_turn. Usage is normalised as in usage.c: Anthropic
 * input_tokens excludes cache reads and writes, OpenAI prompt_tokens
 * includes them, so prompt = input + cache_creation + cache_read, cached =
 * cache_read, and back: input = prompt - cached - cache_write.
 *
 * Streams: one event in, zero or more out, state in struct tr_stream.
 * Anthropic -> chat: message_start -> a role chunk; text deltas -> content
 * chunks; a tool_use block -> a tool_calls chunk with index, id, name and
 * "" arguments, its non-empty input_json_delta -> arguments chunks
 * (thinking and server-tool blocks are not passed on); message_delta ->
 * the finish_reason chunk; message_stop -> the usage chunk ("choices":[],
 * as OpenAI sends it when include_usage was asked) and [DONE]; error ->
 * data: {"error":...}. Chat -> Anthropic: the first chunk with a choice
 * opens message_start (usage 0: OpenAI reports usage only at the end);
 * text and each tool call get their own content block, one open at a
 * time (a late fragment of an earlier call still goes to that call's
 * index); [DONE] closes the block and sends message_delta (stop_reason,
 * and the final usage as Anthropic's newer API does: input, output and
 * cache counts; SDKs older than that keep input_tokens 0) and
 * message_stop. An upstream event that is not JSON is refused whole:
 * every check comes before the first byte written for it. A stream cut
 * before its terminal event is left open on purpose: inventing
 * message_stop or [DONE] would tell the client a truncated answer was
 * complete.
 *
 * Errors: an Anthropic error type maps to an OpenAI type and code:
 *   invalid_request_error -> invalid_request_error, null
 *   authentication_error  -> invalid_request_error, invalid_api_key
 *   permission_error      -> permission_error, null
 *   not_found_error       -> not_found_error, null
 *   request_too_large     -> invalid_request_error, request_too_large
 *   rate_limit_error      -> rate_limit_error, rate_limit_exceeded
 *   api_error             -> server_error, null
 *   overloaded_error      -> overloaded_error, null
 * (OpenAI's own type where one means the same, Anthropic's name where none
 * does, OpenAI's well-known codes only where they apply; SDKs of both
 * sides pick the exception class by HTTP status, which is kept.) The
 * other way the Anthropic type follows the status (tr_anthropic_error_type)
 * and the message is the upstream's.
 *
 * The code is in three files: this one (requests, and the helpers the
 * others borrow), translate_resp.c (whole answers, usage, error bodies)
 * and translate_stream.c (streams); translate_int.h is what they share.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "translate.h"
#include "translate_int.h"

/* Anthropic requires max_tokens; OpenAI clients often leave it out. */
#define TR_DEFAULT_MAX_TOKENS 4096

/* ------------------------------------------------------------------ */
/* Helpers shared with translate_resp.c and translate_stream.c        */
/* ------------------------------------------------------------------ */

/* Prints root (then deletes it) unless the build failed; the printed
 * body, or NULL with *cause set. */
char *
tr_print(struct bld *b, cJSON *root, size_t *len, char **cause)
{
	char *s = NULL;

	if (!b->oom && root != NULL)
		s = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (s == NULL)
		return fail(cause, "out of memory");
	if (len != NULL)
		*len = strlen(s);
	return s;
}

/* A copy of id with every byte outside [A-Za-z0-9_-] replaced by '_'. */
static char *
tool_id(const char *id)
{
	char *d = memdup0(id, strlen(id));

	for (char *p = d; p != NULL && *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			*p = '_';
	return d;
}

/* Adds a text block {"type":"text","text":s} (skipped when s is empty). */
void
tr_text_block(struct bld *b, cJSON *arr, const char *s)
{
	cJSON *blk;

	if (*s == '\0')
		return;
	blk = b_obj(b, arr, NULL);
	b_str(b, blk, "type", "text");
	b_str(b, blk, "text", s);
}

/* Keeps the last of the members an object names more than once, at every
 * level, as the providers' JSON parsers do: a body sent upstream must be
 * one the gateway itself reads, and body.c refuses repeated members.
 * Linear: the names kept so far in a set per object. */
static void
last_members_win(cJSON *v)
{
	cJSON *c, *prev;
	struct strmap seen;

	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return;
	if (cJSON_IsObject(v) && v->child != NULL && v->child->next != NULL) {
		strmap_init(&seen, 1);
		for (c = v->child->prev; c != NULL; c = prev) {
			prev = c == v->child ? NULL : c->prev;
			if (c->string == NULL)
				continue;
			if (strmap_get(&seen, c->string) != NULL)
				cJSON_Delete(cJSON_DetachItemViaPointer(v, c));
			else
				(void)strmap_add(&seen, c->string, NULL);
		}
		strmap_free(&seen);
	}
	cJSON_ArrayForEach (c, v)
		last_members_win(c);
}

/* Parses a tool call's arguments string into an object ({} when it is not
 * a JSON object: Anthropic's input must be one), each member once. */
cJSON *
tr_parse_arguments(const char *args)
{
	cJSON *v = args != NULL ? cJSON_Parse(args) : NULL;

	if (cJSON_IsObject(v)) {
		last_members_win(v);
		return v;
	}
	cJSON_Delete(v);
	return cJSON_CreateObject();
}

/* ------------------------------------------------------------------ */
/* Requests: chat -> messages                                         */
/* ------------------------------------------------------------------ */

/* Adds the image of an image_url part as an image block. */
static int
image_url_block(struct bld *b, cJSON *arr, const cJSON *part, int mi,
		char **cause)
{
	const char *url = get_str(get(part, "image_url"), "url");
	const char *semi, *b64;
	cJSON *blk, *src;
	char *mt;

	if (url == NULL)
		url = get_str(part, "image_url");
	if (url == NULL) {
		fail(cause, "messages[%d]: image_url part without a url", mi);
		return -1;
	}
	blk = b_obj(b, arr, NULL);
	b_str(b, blk, "type", "image");
	src = b_obj(b, blk, "source");
	if (strncmp(url, "data:", 5) != 0) {
		b_str(b, src, "type", "url");
		b_str(b, src, "url", url);
		return 0;
	}
	b64 = strstr(url + 5, ";base64,");
	if (b64 == NULL) {
		fail(cause,
		     "messages[%d]: only base64 data: URLs are supported for images",
		     mi);
		return -1;
	}
	semi = strchr(url + 5, ';'); /* at or before b64 */
	mt = memdup0(url + 5, (size_t)(semi - (url + 5)));
	if (mt == NULL) {
		b->oom = 1;
		return 0;
	}
	b_str(b, src, "type", "base64");
	b_str(b, src, "media_type", mt);
	b_str(b, src, "data", b64 + 8);
	free(mt);
	return 0;
}

/* Adds the PDF of a file part as a document block. */
static int
file_block(struct bld *b, cJSON *arr, const cJSON *part, int mi, char **cause)
{
	static const char prefix[] = "data:application/pdf;base64,";
	const char *data = get_str(get(part, "file"), "file_data");
	cJSON *blk, *src;

	if (data == NULL || strncmp(data, prefix, sizeof(prefix) - 1) != 0) {
		fail(cause,
		     "messages[%d]: only PDF file_data (a base64 data: URL) is supported in file parts",
		     mi);
		return -1;
	}
	blk = b_obj(b, arr, NULL);
	b_str(b, blk, "type", "document");
	src = b_obj(b, blk, "source");
	b_str(b, src, "type", "base64");
	b_str(b, src, "media_type", "application/pdf");
	b_str(b, src, "data", data + sizeof(prefix) - 1);
	return 0;
}

/* Adds the blocks of a user/system/assistant/tool "content" to arr. what
 * is the set of part types accepted: 0 text only, 1 text and refusal
 * (assistant), 2 text, images and files (user). */
static int
content_blocks(struct bld *b, cJSON *arr, const cJSON *content, int what,
	       int mi, char **cause)
{
	const cJSON *part;

	if (content == NULL || cJSON_IsNull(content))
		return 0;
	if (cJSON_IsString(content)) {
		tr_text_block(b, arr, content->valuestring);
		return 0;
	}
	if (!cJSON_IsArray(content)) {
		fail(cause,
		     "messages[%d]: content must be a string or an array", mi);
		return -1;
	}
	cJSON_ArrayForEach (part, content) {
		const char *type = get_str(part, "type");
		const char *text;

		if (type == NULL) {
			fail(cause, "messages[%d]: content part without a type",
			     mi);
			return -1;
		}
		if (strcmp(type, "text") == 0 &&
		    (text = get_str(part, "text")) != NULL) {
			tr_text_block(b, arr, text);
		} else if (what == 1 && strcmp(type, "refusal") == 0 &&
			   (text = get_str(part, "refusal")) != NULL) {
			tr_text_block(b, arr, text);
		} else if (what == 2 && strcmp(type, "image_url") == 0) {
			if (image_url_block(b, arr, part, mi, cause) < 0)
				return -1;
		} else if (what == 2 && strcmp(type, "file") == 0) {
			if (file_block(b, arr, part, mi, cause) < 0)
				return -1;
		} else {
			fail(cause,
			     "messages[%d]: content part \"%s\" cannot be sent to an Anthropic model",
			     mi, type);
			return -1;
		}
	}
	return 0;
}

/* Adds the tool_use blocks of an assistant message's tool_calls. */
static int
tool_use_blocks(struct bld *b, cJSON *arr, const cJSON *calls, int mi,
		char **cause)
{
	const cJSON *tc;

	if (calls == NULL || cJSON_IsNull(calls))
		return 0;
	if (!cJSON_IsArray(calls)) {
		fail(cause, "messages[%d]: tool_calls must be an array", mi);
		return -1;
	}
	cJSON_ArrayForEach (tc, calls) {
		const cJSON *fn = get(tc, "function");
		const char *id = get_str(tc, "id");
		const char *name = get_str(fn, "name");
		cJSON *blk;
		char *tid;

		if (!absent(tc, "type") && !str_is(tc, "type", "function")) {
			fail(cause,
			     "messages[%d]: only function tool calls can be sent to an Anthropic model",
			     mi);
			return -1;
		}
		if (id == NULL || name == NULL) {
			fail(cause,
			     "messages[%d]: a tool call needs an id and a function name",
			     mi);
			return -1;
		}
		blk = b_obj(b, arr, NULL);
		b_str(b, blk, "type", "tool_use");
		tid = tool_id(id);
		if (tid == NULL)
			b->oom = 1;
		else
			b_str(b, blk, "id", tid);
		free(tid);
		b_str(b, blk, "name", name);
		b_add(b, blk, "input",
		      tr_parse_arguments(get_str(fn, "arguments")));
	}
	return 0;
}

/* Adds one tool message as a tool_result block. */
static int
tool_result_block(struct bld *b, cJSON *arr, const cJSON *m, int mi,
		  char **cause)
{
	const char *id = get_str(m, "tool_call_id");
	const cJSON *content = get(m, "content");
	cJSON *blk, *inner;
	char *tid;

	if (id == NULL) {
		fail(cause, "messages[%d]: tool message without tool_call_id",
		     mi);
		return -1;
	}
	blk = b_obj(b, arr, NULL);
	b_str(b, blk, "type", "tool_result");
	tid = tool_id(id);
	if (tid == NULL)
		b->oom = 1;
	else
		b_str(b, blk, "tool_use_id", tid);
	free(tid);
	if (cJSON_IsString(content)) {
		if (content->valuestring[0] != '\0')
			b_str(b, blk, "content", content->valuestring);
		return 0;
	}
	inner = cJSON_CreateArray();
	if (content_blocks(b, inner, content, 0, mi, cause) < 0) {
		cJSON_Delete(inner);
		return -1;
	}
	if (has_items(inner))
		b_add(b, blk, "content", inner);
	else
		cJSON_Delete(inner);
	return 0;
}

/* Adds a turn {role, content: blocks} to msgs; takes ownership of blocks.
 * Returns the content array as added (NULL when out of memory). */
static cJSON *
add_turn(struct bld *b, cJSON *msgs, const char *role, cJSON *blocks)
{
	cJSON *turn = b_obj(b, msgs, NULL);

	b_str(b, turn, "role", role);
	return b_add(b, turn, "content", blocks);
}

/* Replaces a content array holding a single plain text block by the text
 * itself, the plainer form both wires accept. */
static void
collapse_text(struct bld *b, cJSON *holder, const char *key)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(holder, key);
	cJSON *blk = has_items(arr) ? arr->child : NULL;
	cJSON *s;

	if (blk == NULL || blk->next != NULL || !str_is(blk, "type", "text") ||
	    cJSON_GetArraySize(blk) != 2)
		return;
	if (get_str(blk, "text") == NULL)
		return;
	s = cJSON_CreateString(get_str(blk, "text"));
	b_replace(b, holder, key, s);
}

/* Adds the blocks of one user, assistant or tool message to blocks; -1
 * with *cause when it cannot be translated. */
static int
chat_turn(struct bld *b, const cJSON *m, const char *role, cJSON *blocks,
	  int mi, char **cause)
{
	const cJSON *content = get(m, "content");
	int r;

	if (strcmp(role, "user") == 0) {
		r = content_blocks(b, blocks, content, 2, mi, cause);
	} else if (strcmp(role, "assistant") == 0) {
		if (!absent(m, "function_call")) {
			fail(cause,
			     "messages[%d]: legacy function_call is not translated; use tool_calls",
			     mi);
			r = -1;
		} else if ((r = content_blocks(b, blocks, content, 1, mi,
					       cause)) == 0) {
			r = tool_use_blocks(b, blocks, get(m, "tool_calls"), mi,
					    cause);
		}
	} else if (strcmp(role, "tool") == 0) {
		r = tool_result_block(b, blocks, m, mi, cause);
	} else {
		fail(cause, "messages[%d]: role \"%s\" is not translated", mi,
		     role);
		r = -1;
	}
	return r;
}

/* Translates the chat "messages" into "system" blocks and turns. A
 * message of the same Anthropic role as the turn before adds its blocks
 * to that turn, which is kept at hand (looking it up in msgs would walk
 * the whole list for each message: cJSON arrays are linked lists). */
static int
chat_messages(struct bld *b, const cJSON *messages, cJSON *system, cJSON *msgs,
	      char **cause)
{
	const cJSON *m;
	const char *last_role = NULL; /* the last turn's role and content */
	cJSON *last = NULL, *blocks;
	int mi = 0;

	cJSON_ArrayForEach (m, messages) {
		const char *role = get_str(m, "role"), *trole;

		if (role == NULL) {
			fail(cause, "messages[%d] has no role", mi);
			return -1;
		}
		if (strcmp(role, "system") == 0 ||
		    strcmp(role, "developer") == 0) {
			if (content_blocks(b, system, get(m, "content"), 0, mi,
					   cause) < 0)
				return -1;
			mi++;
			continue;
		}
		/* A tool result goes in a user turn. */
		trole = strcmp(role, "tool") == 0 ? "user" : role;
		if (last != NULL && strcmp(last_role, trole) == 0) {
			if (chat_turn(b, m, role, last, mi, cause) < 0)
				return -1;
		} else {
			if ((blocks = cJSON_CreateArray()) == NULL) {
				b->oom = 1;
				fail(cause, "out of memory");
				return -1;
			}
			if (chat_turn(b, m, role, blocks, mi, cause) < 0) {
				cJSON_Delete(blocks);
				return -1;
			}
			if (blocks->child == NULL) {
				/* Nothing to say: no turn. */
				cJSON_Delete(blocks);
			} else {
				last = add_turn(b, msgs, trole, blocks);
				last_role = trole;
			}
		}
		mi++;
	}
	return 0;
}

/* Starts the "tools" array of out for a request's tools member, either
 * wire: 1 with *arr set, 0 when there are none, -1 (with *cause) when it
 * is not an array. */
static int
tools_begin(struct bld *b, cJSON *out, const cJSON *tools, cJSON **arr,
	    char **cause)
{
	if (tools == NULL || cJSON_IsNull(tools))
		return 0;
	if (!cJSON_IsArray(tools)) {
		fail(cause, "tools must be an array");
		return -1;
	}
	if (!has_items(tools))
		return 0;
	*arr = b_arr(b, out, "tools");
	return 1;
}

/* Translates the chat tools into Anthropic tools. */
static int
chat_tools(struct bld *b, cJSON *out, const cJSON *tools, char **cause)
{
	const cJSON *t;
	cJSON *arr;
	int ti = 0, rc = tools_begin(b, out, tools, &arr, cause);

	if (rc <= 0)
		return rc;
	cJSON_ArrayForEach (t, tools) {
		const cJSON *fn = get(t, "function");
		const cJSON *params = get(fn, "parameters");
		const char *name = get_str(fn, "name");
		const char *desc = get_str(fn, "description");
		cJSON *o, *schema;

		if (!str_is(t, "type", "function") || name == NULL) {
			fail(cause,
			     "tools[%d]: only function tools with a name can be sent to an Anthropic model",
			     ti);
			return -1;
		}
		o = b_obj(b, arr, NULL);
		b_str(b, o, "name", name);
		if (desc != NULL)
			b_str(b, o, "description", desc);
		if (cJSON_IsObject(params)) {
			b_dup(b, o, "input_schema", params);
		} else {
			/* OpenAI allows a function without parameters;
			 * Anthropic requires a schema. */
			schema = b_obj(b, o, "input_schema");
			b_str(b, schema, "type", "object");
			b_obj(b, schema, "properties");
		}
		ti++;
	}
	return 0;
}

/* Translates tool_choice and parallel_tool_calls (only with tools). */
static int
chat_tool_choice(struct bld *b, cJSON *out, const cJSON *req, char **cause)
{
	const cJSON *tc = get(req, "tool_choice");
	const cJSON *ptc = get(req, "parallel_tool_calls");
	const char *name;
	cJSON *o;

	if (cJSON_GetObjectItemCaseSensitive(out, "tools") == NULL)
		return 0;
	if (tc == NULL || cJSON_IsNull(tc)) {
		if (!cJSON_IsFalse(ptc))
			return 0;
		o = b_obj(b, out, "tool_choice");
		b_str(b, o, "type", "auto");
	} else if (cJSON_IsString(tc)) {
		const char *s = tc->valuestring;
		const char *type = strcmp(s, "auto") == 0       ? "auto"
				   : strcmp(s, "none") == 0     ? "none"
				   : strcmp(s, "required") == 0 ? "any"
								: NULL;
		if (type == NULL) {
			fail(cause, "tool_choice \"%s\" is not translated", s);
			return -1;
		}
		o = b_obj(b, out, "tool_choice");
		b_str(b, o, "type", type);
	} else if (str_is(tc, "type", "function") &&
		   (name = get_str(get(tc, "function"), "name")) != NULL) {
		o = b_obj(b, out, "tool_choice");
		b_str(b, o, "type", "tool");
		b_str(b, o, "name", name);
	} else {
		fail(cause,
		     "tool_choice must be \"auto\", \"none\", \"required\" or a named function");
		return -1;
	}
	if (cJSON_IsFalse(ptc) && !str_is(o, "type", "none"))
		b_bool(b, o, "disable_parallel_tool_use", 1);
	return 0;
}

/* Reads an optional number field: 1 and *v, 0 absent/null, -1 (with
 * *cause) for another type. */
static int
num_field(const cJSON *req, const char *key, double *v, char **cause)
{
	const cJSON *it = get(req, key);

	if (it == NULL || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsNumber(it)) {
		fail(cause, "%s must be a number", key);
		return -1;
	}
	*v = it->valuedouble;
	return 1;
}

/* Whether s has a byte other than white space (Anthropic refuses empty
 * and white-space-only stop sequences). */
static int
has_ink(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' &&
		    *s != '\f' && *s != '\v')
			return 1;
	return 0;
}

/* Translates the sampling and stop fields of a chat request. */
static int
chat_params(struct bld *b, cJSON *out, const cJSON *req, char **cause)
{
	const cJSON *stop = get(req, "stop"), *s;
	const char *user;
	cJSON *arr;
	double t, p;
	int rt, rp;

	if ((rt = num_field(req, "temperature", &t, cause)) < 0 ||
	    (rp = num_field(req, "top_p", &p, cause)) < 0)
		return -1;
	if (rt > 0)
		b_num(b, out, "temperature", t < 0 ? 0 : t > 1 ? 1 : t);
	else if (rp > 0)
		b_num(b, out, "top_p", p);
	if (cJSON_IsString(stop) || cJSON_IsArray(stop)) {
		arr = cJSON_CreateArray();
		if (cJSON_IsString(stop) && has_ink(stop->valuestring))
			b_str(b, arr, NULL, stop->valuestring);
		cJSON_ArrayForEach (s, arr_of(stop)) {
			if (!cJSON_IsString(s)) {
				cJSON_Delete(arr);
				fail(cause,
				     "stop must be a string or an array of strings");
				return -1;
			}
			if (has_ink(s->valuestring))
				b_str(b, arr, NULL, s->valuestring);
		}
		if (has_items(arr))
			b_add(b, out, "stop_sequences", arr);
		else
			cJSON_Delete(arr);
	} else if (stop != NULL && !cJSON_IsNull(stop)) {
		fail(cause, "stop must be a string or an array of strings");
		return -1;
	}
	s = get(req, "stream");
	if (cJSON_IsTrue(s))
		b_bool(b, out, "stream", 1);
	else if (s != NULL && !cJSON_IsBool(s) && !cJSON_IsNull(s)) {
		fail(cause, "stream must be a boolean");
		return -1;
	}
	if ((user = get_str(req, "user")) != NULL)
		b_str(b, b_obj(b, out, "metadata"), "user_id", user);
	return 0;
}

/* Reads max_completion_tokens, else max_tokens, else the default. */
static int
chat_max_tokens(const cJSON *req, int64_t *mt, char **cause)
{
	int r = json_count(req, "max_completion_tokens", mt);

	if (r == 0)
		r = json_count(req, "max_tokens", mt);
	if (r < 0 || (r > 0 && *mt < 1)) {
		fail(cause, "max_tokens must be a positive integer");
		return -1;
	}
	if (r == 0)
		*mt = TR_DEFAULT_MAX_TOKENS;
	return 0;
}

/* OpenAI chat request -> Anthropic Messages request. */
char *
tr_chat_to_messages(const cJSON *req, const char *model, int64_t cap,
		    size_t *len, char **cause)
{
	const cJSON *messages = get(req, "messages");
	struct bld b = { 0 };
	cJSON *out = NULL, *system = NULL, *msgs = NULL, *turn;
	int64_t n, mt;
	int r;

	if (!cJSON_IsObject(req))
		return fail(cause, "the request body is not a JSON object");
	if (!has_items(messages))
		return fail(cause, "messages must be a non-empty array");
	r = json_count(req, "n", &n);
	if (r < 0 || (r > 0 && n != 1))
		return fail(
			cause,
			"n other than 1 is not supported by Anthropic models");
	if (!absent(req, "functions") || !absent(req, "function_call"))
		return fail(cause,
			    "legacy functions are not translated; use tools");
	if (chat_max_tokens(req, &mt, cause) < 0)
		return NULL;
	if (cap > 0)
		mt = cap;
	out = cJSON_CreateObject();
	system = cJSON_CreateArray();
	msgs = cJSON_CreateArray();
	if (out == NULL || system == NULL || msgs == NULL) {
		b.oom = 1;
		goto fail_oom;
	}
	if (chat_messages(&b, messages, system, msgs, cause) < 0)
		goto fail;
	if (!has_items(msgs)) {
		fail(cause, "no user or assistant message has content");
		goto fail;
	}
	cJSON_ArrayForEach (turn, msgs)
		collapse_text(&b, turn, "content");
	b_str(&b, out, "model", model);
	b_num(&b, out, "max_tokens", (double)mt);
	if (has_items(system)) {
		b_add(&b, out, "system", system);
		collapse_text(&b, out, "system");
	} else {
		cJSON_Delete(system);
	}
	system = NULL;
	b_add(&b, out, "messages", msgs);
	msgs = NULL;
	if (chat_params(&b, out, req, cause) < 0 ||
	    chat_tools(&b, out, get(req, "tools"), cause) < 0 ||
	    chat_tool_choice(&b, out, req, cause) < 0)
		goto fail;
	return tr_print(&b, out, len, cause);
fail_oom:
	fail(cause, "out of memory");
fail:
	cJSON_Delete(out);
	cJSON_Delete(system);
	cJSON_Delete(msgs);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Requests: messages -> chat                                         */
/* ------------------------------------------------------------------ */

/* A chat message {role, content} with a string content, added to msgs. */
static void
b_chat_text_msg(struct bld *b, cJSON *msgs, const char *role, const char *s)
{
	cJSON *m = b_obj(b, msgs, NULL);

	b_str(b, m, "role", role);
	b_str(b, m, "content", s);
}

/* Adds a {"type":"text","text"} part. */
static void
b_text_part(struct bld *b, cJSON *parts, const char *s)
{
	cJSON *p = b_obj(b, parts, NULL);

	b_str(b, p, "type", "text");
	b_str(b, p, "text", s);
}

/* Adds an image block as an image_url part. */
static int
image_part(struct bld *b, cJSON *parts, const cJSON *blk, int mi, char **cause)
{
	const cJSON *src = get(blk, "source");
	const char *mt = get_str(src, "media_type");
	const char *data = get_str(src, "data");
	const char *url = get_str(src, "url");
	char *u = NULL;
	cJSON *p;

	if (str_is(src, "type", "base64") && mt != NULL && data != NULL) {
		size_t n = strlen(mt) + strlen(data) + 16;
		if ((u = malloc(n)) == NULL) {
			b->oom = 1;
			return 0;
		}
		snprintf(u, n, "data:%s;base64,%s", mt, data);
		url = u;
	} else if (!str_is(src, "type", "url") || url == NULL) {
		fail(cause,
		     "messages[%d]: only base64 and url image sources are translated",
		     mi);
		return -1;
	}
	p = b_obj(b, parts, NULL);
	b_str(b, p, "type", "image_url");
	b_str(b, b_obj(b, p, "image_url"), "url", url);
	free(u);
	return 0;
}

/* Adds a document block: a PDF as a file part, plain text as text. */
static int
document_part(struct bld *b, cJSON *parts, const cJSON *blk, int mi,
	      char **cause)
{
	const cJSON *src = get(blk, "source");
	const char *data = get_str(src, "data");
	const char *title = get_str(blk, "title");
	cJSON *p, *f;
	char *u;

	if (str_is(src, "type", "text") && data != NULL) {
		b_text_part(b, parts, data);
		return 0;
	}
	if (!str_is(src, "type", "base64") ||
	    !str_is(src, "media_type", "application/pdf") || data == NULL) {
		fail(cause,
		     "messages[%d]: only base64 PDF and text documents are translated",
		     mi);
		return -1;
	}
	if ((u = concat("data:application/pdf;base64,", data)) == NULL) {
		b->oom = 1;
		return 0;
	}
	p = b_obj(b, parts, NULL);
	b_str(b, p, "type", "file");
	f = b_obj(b, p, "file");
	b_str(b, f, "filename", title != NULL ? title : "document.pdf");
	b_str(b, f, "file_data", u);
	free(u);
	return 0;
}

/* Adds a tool_result block as a tool message; its images go to extra. */
static int
tool_message(struct bld *b, cJSON *msgs, cJSON *extra, const cJSON *blk, int mi,
	     char **cause)
{
	const char *id = get_str(blk, "tool_use_id");
	const cJSON *content = get(blk, "content"), *c;
	cJSON *m, *parts;

	if (id == NULL) {
		fail(cause, "messages[%d]: tool_result without tool_use_id",
		     mi);
		return -1;
	}
	m = b_obj(b, msgs, NULL);
	b_str(b, m, "role", "tool");
	b_str(b, m, "tool_call_id", id);
	if (content == NULL || cJSON_IsNull(content)) {
		b_str(b, m, "content", "");
		return 0;
	}
	if (cJSON_IsString(content)) {
		b_str(b, m, "content", content->valuestring);
		return 0;
	}
	if (!cJSON_IsArray(content)) {
		fail(cause,
		     "messages[%d]: tool_result content must be a string or an array",
		     mi);
		return -1;
	}
	parts = b_arr(b, m, "content");
	cJSON_ArrayForEach (c, content) {
		const char *text = get_str(c, "text");

		if (str_is(c, "type", "text") && text != NULL) {
			b_text_part(b, parts, text);
		} else if (str_is(c, "type", "image")) {
			if (image_part(b, extra, c, mi, cause) < 0)
				return -1;
		} else {
			fail(cause,
			     "messages[%d]: tool_result block \"%s\" is not translated",
			     mi, get_str(c, "type") ? get_str(c, "type") : "?");
			return -1;
		}
	}
	if (!has_items(parts))
		b_replace(b, m, "content", cJSON_CreateString(""));
	else
		collapse_text(b, m, "content");
	return 0;
}

/* Translates one Anthropic user turn: its tool results first, as tool
 * messages, then the rest as one user message. */
static int
user_turn(struct bld *b, cJSON *msgs, const cJSON *content, int mi,
	  char **cause)
{
	const cJSON *blk;
	cJSON *parts, *m;

	if (cJSON_IsString(content)) {
		b_chat_text_msg(b, msgs, "user", content->valuestring);
		return 0;
	}
	if (!cJSON_IsArray(content)) {
		fail(cause,
		     "messages[%d]: content must be a string or an array", mi);
		return -1;
	}
	if ((parts = cJSON_CreateArray()) == NULL) {
		b->oom = 1;
		return 0;
	}
	cJSON_ArrayForEach (blk, content) {
		const char *type = get_str(blk, "type");
		const char *text = get_str(blk, "text");
		int r = 0;

		if (type == NULL) {
			fail(cause,
			     "messages[%d]: content block without a type", mi);
			r = -1;
		} else if (strcmp(type, "text") == 0 && text != NULL) {
			b_text_part(b, parts, text);
		} else if (strcmp(type, "image") == 0) {
			r = image_part(b, parts, blk, mi, cause);
		} else if (strcmp(type, "document") == 0) {
			r = document_part(b, parts, blk, mi, cause);
		} else if (strcmp(type, "tool_result") == 0) {
			r = tool_message(b, msgs, parts, blk, mi, cause);
		} else {
			fail(cause,
			     "messages[%d]: content block \"%s\" cannot be sent to an OpenAI model",
			     mi, type);
			r = -1;
		}
		if (r < 0) {
			cJSON_Delete(parts);
			return -1;
		}
	}
	if (!has_items(parts)) {
		cJSON_Delete(parts);
		return 0;
	}
	m = b_obj(b, msgs, NULL);
	b_str(b, m, "role", "user");
	b_add(b, m, "content", parts);
	collapse_text(b, m, "content");
	return 0;
}

/* Translates one Anthropic assistant turn into one assistant message. */
static int
assistant_turn(struct bld *b, cJSON *msgs, const cJSON *content, int mi,
	       char **cause)
{
	const cJSON *blk;
	cJSON *m, *parts, *calls = NULL;

	m = b_obj(b, msgs, NULL);
	b_str(b, m, "role", "assistant");
	if (cJSON_IsString(content)) {
		b_str(b, m, "content", content->valuestring);
		return 0;
	}
	if (!cJSON_IsArray(content)) {
		fail(cause,
		     "messages[%d]: content must be a string or an array", mi);
		return -1;
	}
	parts = b_arr(b, m, "content");
	cJSON_ArrayForEach (blk, content) {
		const char *type = get_str(blk, "type");
		const char *text = get_str(blk, "text");
		const char *id = get_str(blk, "id");
		const char *name = get_str(blk, "name");
		cJSON *tc, *fn;
		char *args;

		if (type == NULL) {
			fail(cause,
			     "messages[%d]: content block without a type", mi);
			return -1;
		}
		if (strcmp(type, "text") == 0 && text != NULL) {
			if (*text != '\0')
				b_text_part(b, parts, text);
		} else if (strcmp(type, "tool_use") == 0 && id != NULL &&
			   name != NULL) {
			if (calls == NULL)
				calls = b_arr(b, m, "tool_calls");
			tc = b_obj(b, calls, NULL);
			b_str(b, tc, "id", id);
			b_str(b, tc, "type", "function");
			fn = b_obj(b, tc, "function");
			b_str(b, fn, "name", name);
			args = cJSON_IsObject(get(blk, "input"))
				       ? cJSON_PrintUnformatted(
						 get(blk, "input"))
				       : NULL;
			b_str(b, fn, "arguments", args != NULL ? args : "{}");
			free(args);
		} else if (strcmp(type, "thinking") == 0 ||
			   strcmp(type, "redacted_thinking") == 0) {
			continue;
		} else {
			fail(cause,
			     "messages[%d]: content block \"%s\" cannot be sent to an OpenAI model",
			     mi, type);
			return -1;
		}
	}
	if (has_items(parts))
		collapse_text(b, m, "content");
	else if (calls != NULL)
		b_replace(b, m, "content", cJSON_CreateNull());
	else
		b_replace(b, m, "content", cJSON_CreateString(""));
	return 0;
}

/* Translates the system prompt into leading system messages. */
static int
msg_system(struct bld *b, cJSON *msgs, const cJSON *system, char **cause)
{
	const cJSON *blk;

	if (system == NULL || cJSON_IsNull(system))
		return 0;
	if (cJSON_IsString(system)) {
		if (*system->valuestring != '\0')
			b_chat_text_msg(b, msgs, "system", system->valuestring);
		return 0;
	}
	if (!cJSON_IsArray(system)) {
		fail(cause,
		     "system must be a string or an array of text blocks");
		return -1;
	}
	cJSON_ArrayForEach (blk, system) {
		const char *text = get_str(blk, "text");

		if (!str_is(blk, "type", "text") || text == NULL) {
			fail(cause,
			     "system must be a string or an array of text blocks");
			return -1;
		}
		if (*text != '\0')
			b_chat_text_msg(b, msgs, "system", text);
	}
	return 0;
}

/* Translates Anthropic tools into function tools. */
static int
msg_tools(struct bld *b, cJSON *out, const cJSON *tools, char **cause)
{
	const cJSON *t;
	cJSON *arr;
	int ti = 0, rc = tools_begin(b, out, tools, &arr, cause);

	if (rc <= 0)
		return rc;
	cJSON_ArrayForEach (t, tools) {
		const char *name = get_str(t, "name");
		const char *desc = get_str(t, "description");
		const cJSON *schema = get(t, "input_schema");
		cJSON *o, *fn;

		if ((!absent(t, "type") && !str_is(t, "type", "custom")) ||
		    name == NULL || !cJSON_IsObject(schema)) {
			fail(cause,
			     "tools[%d]: only custom tools with a name and an input_schema can be sent to an OpenAI model (not server tools)",
			     ti);
			return -1;
		}
		o = b_obj(b, arr, NULL);
		b_str(b, o, "type", "function");
		fn = b_obj(b, o, "function");
		b_str(b, fn, "name", name);
		if (desc != NULL)
			b_str(b, fn, "description", desc);
		b_dup(b, fn, "parameters", schema);
		ti++;
	}
	return 0;
}

/* Translates tool_choice (only with tools). */
static int
msg_tool_choice(struct bld *b, cJSON *out, const cJSON *tc, char **cause)
{
	const char *type = get_str(tc, "type"), *name;
	cJSON *o;

	if (tc == NULL || cJSON_IsNull(tc) ||
	    cJSON_GetObjectItemCaseSensitive(out, "tools") == NULL)
		return 0;
	if (type == NULL) {
		fail(cause, "tool_choice must be an object with a type");
		return -1;
	}
	if (strcmp(type, "auto") == 0 || strcmp(type, "none") == 0) {
		b_str(b, out, "tool_choice", type);
	} else if (strcmp(type, "any") == 0) {
		b_str(b, out, "tool_choice", "required");
	} else if (strcmp(type, "tool") == 0 &&
		   (name = get_str(tc, "name")) != NULL) {
		o = b_obj(b, out, "tool_choice");
		b_str(b, o, "type", "function");
		b_str(b, b_obj(b, o, "function"), "name", name);
	} else {
		fail(cause, "tool_choice type \"%s\" is not translated", type);
		return -1;
	}
	if (cJSON_IsTrue(get(tc, "disable_parallel_tool_use")))
		b_bool(b, out, "parallel_tool_calls", 0);
	return 0;
}

/* Anthropic Messages request -> OpenAI chat request. */
char *
tr_messages_to_chat(const cJSON *req, const char *model, int include_usage,
		    int64_t cap, size_t *len, char **cause)
{
	const cJSON *messages = get(req, "messages"), *m, *stop, *s;
	struct bld b = { 0 };
	cJSON *out, *msgs, *arr;
	const char *user;
	int64_t mt = 0;
	double v;
	int mi = 0, r, rmt;

	if (!cJSON_IsObject(req))
		return fail(cause, "the request body is not a JSON object");
	if (!has_items(messages))
		return fail(cause, "messages must be a non-empty array");
	rmt = json_count(req, "max_tokens", &mt);
	if (rmt < 0)
		return fail(cause, "max_tokens must be a positive integer");
	if (cap > 0) {
		rmt = 1;
		mt = cap;
	}
	if ((out = cJSON_CreateObject()) == NULL)
		return fail(cause, "out of memory");
	b_str(&b, out, "model", model);
	msgs = b_arr(&b, out, "messages");
	if (msg_system(&b, msgs, get(req, "system"), cause) < 0)
		goto fail;
	cJSON_ArrayForEach (m, messages) {
		const char *role = get_str(m, "role");
		const cJSON *content = get(m, "content");

		if (role == NULL) {
			fail(cause, "messages[%d] has no role", mi);
			goto fail;
		} else if (strcmp(role, "user") == 0) {
			r = user_turn(&b, msgs, content, mi, cause);
		} else if (strcmp(role, "assistant") == 0) {
			r = assistant_turn(&b, msgs, content, mi, cause);
		} else if (strcmp(role, "system") == 0) {
			r = msg_system(&b, msgs, content, cause);
		} else {
			fail(cause,
			     "messages[%d]: role \"%s\" is not translated", mi,
			     role);
			goto fail;
		}
		if (r < 0)
			goto fail;
		mi++;
	}
	if (rmt > 0)
		b_num(&b, out, "max_tokens", (double)mt);
	if ((r = num_field(req, "temperature", &v, cause)) < 0)
		goto fail;
	if (r > 0)
		b_num(&b, out, "temperature", v);
	if ((r = num_field(req, "top_p", &v, cause)) < 0)
		goto fail;
	if (r > 0)
		b_num(&b, out, "top_p", v);
	stop = get(req, "stop_sequences");
	if (has_items(stop)) {
		arr = b_arr(&b, out, "stop");
		cJSON_ArrayForEach (s, stop) {
			if (!cJSON_IsString(s)) {
				fail(cause,
				     "stop_sequences must be an array of strings");
				goto fail;
			}
			b_str(&b, arr, NULL, s->valuestring);
		}
	} else if (stop != NULL && !cJSON_IsNull(stop) &&
		   !cJSON_IsArray(stop)) {
		fail(cause, "stop_sequences must be an array of strings");
		goto fail;
	}
	s = get(req, "stream");
	if (cJSON_IsTrue(s)) {
		b_bool(&b, out, "stream", 1);
		if (include_usage)
			b_bool(&b, b_obj(&b, out, "stream_options"),
			       "include_usage", 1);
	} else if (s != NULL && !cJSON_IsBool(s) && !cJSON_IsNull(s)) {
		fail(cause, "stream must be a boolean");
		goto fail;
	}
	if (msg_tools(&b, out, get(req, "tools"), cause) < 0 ||
	    msg_tool_choice(&b, out, get(req, "tool_choice"), cause) < 0)
		goto fail;
	if ((user = get_str(get(req, "metadata"), "user_id")) != NULL)
		b_str(&b, out, "user", user);
	return tr_print(&b, out, len, cause);
fail:
	cJSON_Delete(out);
	return NULL;
}
