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
 *   temperature is clamped to Anthropic's [0, 1]; top_p; stop (string or
 *   array) -> stop_sequences; stream; tools -> {name, description,
 *   input_schema}; tool_choice auto/none/required/named -> auto/none/any/
 *   tool; parallel_tool_calls false -> disable_parallel_tool_use; user ->
 *   metadata.user_id. tool_choice goes only with tools (Anthropic refuses
 *   it alone). response_format, seed, logprobs, stream_options... dropped.
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
 * "" arguments, its input_json_delta -> arguments chunks; message_delta ->
 * the finish_reason chunk; message_stop -> the usage chunk ("choices":[],
 * as OpenAI sends it when include_usage was asked) and [DONE]; error ->
 * data: {"error":...}. Chat -> Anthropic: the first chunk with a choice
 * opens message_start (usage 0: OpenAI reports usage only at the end);
 * text and each tool call get their own content block, one open at a
 * time; [DONE] closes the block and sends message_delta (stop_reason, and
 * the final usage as Anthropic's newer API does: input, output and cache
 * counts) and message_stop. A stream cut before its terminal event is left
 * open on purpose: inventing message_stop or [DONE] would tell the client
 * a truncated answer was complete.
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
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate.h"

/* Anthropic requires max_tokens; OpenAI clients often leave it out. */
#define TR_DEFAULT_MAX_TOKENS 4096
/* 2^53: every integer below it is exact in a double. */
#define TR_INT_LIMIT 9007199254740992.0
/* Caps on stream bookkeeping, far above any real answer. */
#define TR_MAX_BLOCKS 4096
#define TR_MAX_TOOLS 1024
/* An upstream error body that is not JSON is quoted up to this length. */
#define TR_MAX_RAW_MESSAGE 512

/* ------------------------------------------------------------------ */
/* Byte buffer                                                         */
/* ------------------------------------------------------------------ */

/* Appends n bytes, growing by doubling. */
int
tr_buf_append(struct tr_buf *b, const void *p, size_t n)
{
	size_t need = b->len + n + 1, cap;
	char *d;

	if (need < b->len)
		return -1;
	if (need > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < need) {
			if (cap > SIZE_MAX / 2)
				return -1;
			cap *= 2;
		}
		d = realloc(b->data, cap);
		if (d == NULL)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* Empties b, keeping its memory. */
void
tr_buf_reset(struct tr_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Frees b's memory. */
void
tr_buf_free(struct tr_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ------------------------------------------------------------------ */
/* Reading and building JSON                                           */
/* ------------------------------------------------------------------ */

/* A tree under construction: any failed allocation sets oom, checked once
 * before the tree is printed. */
struct bld {
	int oom;
};

/* Sets *cause to a malloc'd formatted message (when cause is not NULL);
 * returns NULL for the caller to return. */
static void *__attribute__((format(printf, 2, 3)))
fail(char **cause, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	if (cause == NULL)
		return NULL;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	*cause = NULL;
	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	*cause = s;
	return NULL;
}

/* obj[key], or NULL when obj is not an object or has no such member. */
static const cJSON *
get(const cJSON *obj, const char *key)
{
	if (!cJSON_IsObject(obj))
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* obj[key] as a string, or NULL. */
static const char *
get_str(const cJSON *obj, const char *key)
{
	const cJSON *it = get(obj, key);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Whether obj[key] is absent or null. */
static int
absent(const cJSON *obj, const char *key)
{
	const cJSON *it = get(obj, key);

	return it == NULL || cJSON_IsNull(it);
}

/* Reads an exact non-negative integer: 1 and *out set, 0 when absent or
 * null, -1 for any other value. */
static int
get_int(const cJSON *obj, const char *key, int64_t *out)
{
	const cJSON *it = get(obj, key);
	double d;

	if (it == NULL || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsNumber(it))
		return -1;
	d = it->valuedouble;
	if (!(d >= 0.0 && d < TR_INT_LIMIT) || (double)(int64_t)d != d)
		return -1;
	*out = (int64_t)d;
	return 1;
}

/* Parses exactly one JSON value filling data (blanks around allowed);
 * NULL when data is anything else. */
static cJSON *
parse_exact(const char *data, size_t len)
{
	const char *end = NULL;
	cJSON *root;

	root = cJSON_ParseWithLengthOpts(data, len, &end, 0);
	if (root == NULL)
		return NULL;
	while (end < data + len && (*end == ' ' || *end == '\t' ||
				    *end == '\r' || *end == '\n'))
		end++;
	if (end != data + len) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* Whether s equals the string member obj[key]. */
static int
str_is(const cJSON *obj, const char *key, const char *s)
{
	const char *v = get_str(obj, key);

	return v != NULL && strcmp(v, s) == 0;
}

/* Adds item to parent: as member key of an object, or appended to an
 * array when key is NULL. Takes ownership of item (NULL: out of memory). */
static cJSON *
b_add(struct bld *b, cJSON *parent, const char *key, cJSON *item)
{
	if (item == NULL || parent == NULL) {
		b->oom = 1;
		cJSON_Delete(item);
		return NULL;
	}
	if (key != NULL ? !cJSON_AddItemToObject(parent, key, item)
			: !cJSON_AddItemToArray(parent, item)) {
		b->oom = 1;
		cJSON_Delete(item);
		return NULL;
	}
	return item;
}

static cJSON *
b_obj(struct bld *b, cJSON *parent, const char *key)
{
	return b_add(b, parent, key, cJSON_CreateObject());
}

static cJSON *
b_arr(struct bld *b, cJSON *parent, const char *key)
{
	return b_add(b, parent, key, cJSON_CreateArray());
}

static void
b_str(struct bld *b, cJSON *parent, const char *key, const char *s)
{
	b_add(b, parent, key, cJSON_CreateString(s));
}

static void
b_num(struct bld *b, cJSON *parent, const char *key, double v)
{
	b_add(b, parent, key, cJSON_CreateNumber(v));
}

static void
b_null(struct bld *b, cJSON *parent, const char *key)
{
	b_add(b, parent, key, cJSON_CreateNull());
}

static void
b_bool(struct bld *b, cJSON *parent, const char *key, int v)
{
	b_add(b, parent, key, cJSON_CreateBool(v));
}

/* Adds a deep copy of src. */
static cJSON *
b_dup(struct bld *b, cJSON *parent, const char *key, const cJSON *src)
{
	return b_add(b, parent, key, cJSON_Duplicate(src, 1));
}

/* Replaces member key of obj by item (takes ownership). */
static void
b_replace(struct bld *b, cJSON *obj, const char *key, cJSON *item)
{
	if (item == NULL || obj == NULL ||
	    !cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item)) {
		b->oom = 1;
		cJSON_Delete(item);
	}
}

/* v when it is an array, else NULL (for loops over optional arrays). */
static const cJSON *
arr_of(const cJSON *v)
{
	return cJSON_IsArray(v) ? v : NULL;
}

/* A malloc'd copy of the n bytes at s, NUL-terminated; NULL on failure. */
static char *
memdup0(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d == NULL)
		return NULL;
	if (n > 0)
		memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* A malloc'd "a" + "b"; NULL on failure. */
static char *
concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *d = malloc(la + lb + 1);

	if (d == NULL)
		return NULL;
	memcpy(d, a, la);
	memcpy(d + la, b, lb + 1);
	return d;
}

/* Prints root (then deletes it) unless the build failed; the printed
 * body, or NULL with *cause set. */
static char *
finish(struct bld *b, cJSON *root, size_t *len, char **cause)
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
static void
b_text_block(struct bld *b, cJSON *arr, const char *s)
{
	cJSON *blk;

	if (*s == '\0')
		return;
	blk = b_obj(b, arr, NULL);
	b_str(b, blk, "type", "text");
	b_str(b, blk, "text", s);
}

/* Parses a tool call's arguments string into an object ({} when it is not
 * a JSON object: Anthropic's input must be one). */
static cJSON *
parse_arguments(const char *args)
{
	cJSON *v = args != NULL ? cJSON_Parse(args) : NULL;

	if (cJSON_IsObject(v))
		return v;
	cJSON_Delete(v);
	return cJSON_CreateObject();
}

/* ------------------------------------------------------------------ */
/* Requests: chat -> messages                                          */
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
		fail(cause, "messages[%d]: only base64 data: URLs are supported "
		     "for images", mi);
		return -1;
	}
	semi = strchr(url + 5, ';');	/* at or before b64 */
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
		fail(cause, "messages[%d]: only PDF file_data (a base64 data: "
		     "URL) is supported in file parts", mi);
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
		b_text_block(b, arr, content->valuestring);
		return 0;
	}
	if (!cJSON_IsArray(content)) {
		fail(cause, "messages[%d]: content must be a string or an array",
		     mi);
		return -1;
	}
	cJSON_ArrayForEach(part, content) {
		const char *type = get_str(part, "type");
		const char *text;

		if (type == NULL) {
			fail(cause, "messages[%d]: content part without a type",
			     mi);
			return -1;
		}
		if (strcmp(type, "text") == 0 &&
		    (text = get_str(part, "text")) != NULL) {
			b_text_block(b, arr, text);
		} else if (what == 1 && strcmp(type, "refusal") == 0 &&
			   (text = get_str(part, "refusal")) != NULL) {
			b_text_block(b, arr, text);
		} else if (what == 2 && strcmp(type, "image_url") == 0) {
			if (image_url_block(b, arr, part, mi, cause) < 0)
				return -1;
		} else if (what == 2 && strcmp(type, "file") == 0) {
			if (file_block(b, arr, part, mi, cause) < 0)
				return -1;
		} else {
			fail(cause, "messages[%d]: content part \"%s\" cannot be "
			     "sent to an Anthropic model", mi, type);
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
	cJSON_ArrayForEach(tc, calls) {
		const cJSON *fn = get(tc, "function");
		const char *id = get_str(tc, "id");
		const char *name = get_str(fn, "name");
		cJSON *blk;
		char *tid;

		if (!absent(tc, "type") && !str_is(tc, "type", "function")) {
			fail(cause, "messages[%d]: only function tool calls can "
			     "be sent to an Anthropic model", mi);
			return -1;
		}
		if (id == NULL || name == NULL) {
			fail(cause, "messages[%d]: a tool call needs an id and a "
			     "function name", mi);
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
		      parse_arguments(get_str(fn, "arguments")));
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
	if (cJSON_GetArraySize(inner) > 0)
		b_add(b, blk, "content", inner);
	else
		cJSON_Delete(inner);
	return 0;
}

/* Appends the blocks of one turn to msgs, merging them into the last turn
 * when it has the same role. Takes ownership of blocks. */
static void
add_turn(struct bld *b, cJSON *msgs, const char *role, cJSON *blocks)
{
	cJSON *last, *content, *blk;

	if (blocks == NULL) {
		b->oom = 1;
		return;
	}
	if (cJSON_GetArraySize(blocks) == 0) {
		cJSON_Delete(blocks);
		return;
	}
	last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
	if (last != NULL && str_is(last, "role", role)) {
		content = cJSON_GetObjectItemCaseSensitive(last, "content");
		while ((blk = cJSON_DetachItemFromArray(blocks, 0)) != NULL)
			cJSON_AddItemToArray(content, blk);
		cJSON_Delete(blocks);
		return;
	}
	last = b_obj(b, msgs, NULL);
	b_str(b, last, "role", role);
	b_add(b, last, "content", blocks);
}

/* Replaces a content array holding a single plain text block by the text
 * itself, the plainer form both wires accept. */
static void
collapse_text(struct bld *b, cJSON *holder, const char *key)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(holder, key);
	cJSON *blk = cJSON_GetArrayItem(arr, 0);
	cJSON *s;

	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != 1 ||
	    !str_is(blk, "type", "text") || cJSON_GetArraySize(blk) != 2)
		return;
	if (get_str(blk, "text") == NULL)
		return;
	s = cJSON_CreateString(get_str(blk, "text"));
	b_replace(b, holder, key, s);
}

/* The blocks of one user, assistant or tool message (NULL with *cause
 * when it cannot be translated); *role is the Anthropic turn's role. */
static cJSON *
chat_turn(struct bld *b, const cJSON *m, const char **role, int mi,
	  char **cause)
{
	const cJSON *content = get(m, "content");
	cJSON *blocks = cJSON_CreateArray();
	int r;

	if (blocks == NULL) {
		b->oom = 1;
		return fail(cause, "out of memory");
	}
	if (strcmp(*role, "user") == 0) {
		r = content_blocks(b, blocks, content, 2, mi, cause);
	} else if (strcmp(*role, "assistant") == 0) {
		if (!absent(m, "function_call"))
			r = -1, fail(cause, "messages[%d]: legacy function_call "
				     "is not translated; use tool_calls", mi);
		else if ((r = content_blocks(b, blocks, content, 1, mi,
					     cause)) == 0)
			r = tool_use_blocks(b, blocks, get(m, "tool_calls"),
					    mi, cause);
	} else if (strcmp(*role, "tool") == 0) {
		r = tool_result_block(b, blocks, m, mi, cause);
		*role = "user";
	} else {
		r = -1, fail(cause, "messages[%d]: role \"%s\" is not "
			     "translated", mi, *role);
	}
	if (r < 0) {
		cJSON_Delete(blocks);
		return NULL;
	}
	return blocks;
}

/* Translates the chat "messages" into "system" blocks and turns. */
static int
chat_messages(struct bld *b, const cJSON *messages, cJSON *system,
	      cJSON *msgs, char **cause)
{
	const cJSON *m;
	cJSON *blocks;
	int mi = 0;

	cJSON_ArrayForEach(m, messages) {
		const char *role = get_str(m, "role");

		if (role == NULL) {
			fail(cause, "messages[%d] has no role", mi);
			return -1;
		}
		if (strcmp(role, "system") == 0 ||
		    strcmp(role, "developer") == 0) {
			if (content_blocks(b, system, get(m, "content"), 0, mi,
					   cause) < 0)
				return -1;
		} else {
			if ((blocks = chat_turn(b, m, &role, mi, cause)) == NULL)
				return -1;
			add_turn(b, msgs, role, blocks);
		}
		mi++;
	}
	return 0;
}

/* Translates the chat tools into Anthropic tools. */
static int
chat_tools(struct bld *b, cJSON *out, const cJSON *tools, char **cause)
{
	const cJSON *t;
	cJSON *arr;
	int ti = 0;

	if (tools == NULL || cJSON_IsNull(tools))
		return 0;
	if (!cJSON_IsArray(tools)) {
		fail(cause, "tools must be an array");
		return -1;
	}
	if (cJSON_GetArraySize(tools) == 0)
		return 0;
	arr = b_arr(b, out, "tools");
	cJSON_ArrayForEach(t, tools) {
		const cJSON *fn = get(t, "function");
		const cJSON *params = get(fn, "parameters");
		const char *name = get_str(fn, "name");
		const char *desc = get_str(fn, "description");
		cJSON *o, *schema;

		if (!str_is(t, "type", "function") || name == NULL) {
			fail(cause, "tools[%d]: only function tools with a name "
			     "can be sent to an Anthropic model", ti);
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
		const char *type = strcmp(s, "auto") == 0 ? "auto" :
				   strcmp(s, "none") == 0 ? "none" :
				   strcmp(s, "required") == 0 ? "any" : NULL;
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
		fail(cause, "tool_choice must be \"auto\", \"none\", "
		     "\"required\" or a named function");
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

/* Translates the sampling and stop fields of a chat request. */
static int
chat_params(struct bld *b, cJSON *out, const cJSON *req, char **cause)
{
	const cJSON *stop = get(req, "stop"), *s;
	const char *user;
	cJSON *arr;
	double v;
	int r;

	if ((r = num_field(req, "temperature", &v, cause)) < 0)
		return -1;
	if (r > 0)
		b_num(b, out, "temperature", v < 0 ? 0 : v > 1 ? 1 : v);
	if ((r = num_field(req, "top_p", &v, cause)) < 0)
		return -1;
	if (r > 0)
		b_num(b, out, "top_p", v);
	if (cJSON_IsString(stop)) {
		arr = b_arr(b, out, "stop_sequences");
		b_str(b, arr, NULL, stop->valuestring);
	} else if (cJSON_IsArray(stop)) {
		arr = b_arr(b, out, "stop_sequences");
		cJSON_ArrayForEach(s, stop) {
			if (!cJSON_IsString(s)) {
				fail(cause, "stop must be a string or an array "
				     "of strings");
				return -1;
			}
			b_str(b, arr, NULL, s->valuestring);
		}
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
	int r = get_int(req, "max_completion_tokens", mt);

	if (r == 0)
		r = get_int(req, "max_tokens", mt);
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
tr_chat_to_messages(const cJSON *req, const char *model, size_t *len,
		    char **cause)
{
	const cJSON *messages = get(req, "messages");
	struct bld b = { 0 };
	cJSON *out = NULL, *system = NULL, *msgs = NULL, *turn;
	int64_t n, mt;
	int r;

	if (!cJSON_IsObject(req))
		return fail(cause, "the request body is not a JSON object");
	if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0)
		return fail(cause, "messages must be a non-empty array");
	r = get_int(req, "n", &n);
	if (r < 0 || (r > 0 && n != 1))
		return fail(cause, "n other than 1 is not supported by "
			    "Anthropic models");
	if (!absent(req, "functions") || !absent(req, "function_call"))
		return fail(cause, "legacy functions are not translated; use "
			    "tools");
	if (chat_max_tokens(req, &mt, cause) < 0)
		return NULL;
	out = cJSON_CreateObject();
	system = cJSON_CreateArray();
	msgs = cJSON_CreateArray();
	if (out == NULL || system == NULL || msgs == NULL) {
		b.oom = 1;
		goto fail_oom;
	}
	if (chat_messages(&b, messages, system, msgs, cause) < 0)
		goto fail;
	if (cJSON_GetArraySize(msgs) == 0) {
		fail(cause, "no user or assistant message has content");
		goto fail;
	}
	cJSON_ArrayForEach(turn, msgs)
		collapse_text(&b, turn, "content");
	b_str(&b, out, "model", model);
	b_num(&b, out, "max_tokens", (double)mt);
	if (cJSON_GetArraySize(system) > 0) {
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
	return finish(&b, out, len, cause);
fail_oom:
	fail(cause, "out of memory");
fail:
	cJSON_Delete(out);
	cJSON_Delete(system);
	cJSON_Delete(msgs);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Requests: messages -> chat                                          */
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
image_part(struct bld *b, cJSON *parts, const cJSON *blk, int mi,
	   char **cause)
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
		fail(cause, "messages[%d]: only base64 and url image sources "
		     "are translated", mi);
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
		fail(cause, "messages[%d]: only base64 PDF and text documents "
		     "are translated", mi);
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
tool_message(struct bld *b, cJSON *msgs, cJSON *extra, const cJSON *blk,
	     int mi, char **cause)
{
	const char *id = get_str(blk, "tool_use_id");
	const cJSON *content = get(blk, "content"), *c;
	cJSON *m, *parts;

	if (id == NULL) {
		fail(cause, "messages[%d]: tool_result without tool_use_id", mi);
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
		fail(cause, "messages[%d]: tool_result content must be a string "
		     "or an array", mi);
		return -1;
	}
	parts = b_arr(b, m, "content");
	cJSON_ArrayForEach(c, content) {
		const char *text = get_str(c, "text");

		if (str_is(c, "type", "text") && text != NULL) {
			b_text_part(b, parts, text);
		} else if (str_is(c, "type", "image")) {
			if (image_part(b, extra, c, mi, cause) < 0)
				return -1;
		} else {
			fail(cause, "messages[%d]: tool_result block \"%s\" is "
			     "not translated", mi,
			     get_str(c, "type") ? get_str(c, "type") : "?");
			return -1;
		}
	}
	if (cJSON_GetArraySize(parts) == 0)
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
		fail(cause, "messages[%d]: content must be a string or an array",
		     mi);
		return -1;
	}
	if ((parts = cJSON_CreateArray()) == NULL) {
		b->oom = 1;
		return 0;
	}
	cJSON_ArrayForEach(blk, content) {
		const char *type = get_str(blk, "type");
		const char *text = get_str(blk, "text");
		int r = 0;

		if (type == NULL) {
			fail(cause, "messages[%d]: content block without a type",
			     mi);
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
			fail(cause, "messages[%d]: content block \"%s\" cannot be "
			     "sent to an OpenAI model", mi, type);
			r = -1;
		}
		if (r < 0) {
			cJSON_Delete(parts);
			return -1;
		}
	}
	if (cJSON_GetArraySize(parts) == 0) {
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
		fail(cause, "messages[%d]: content must be a string or an array",
		     mi);
		return -1;
	}
	parts = b_arr(b, m, "content");
	cJSON_ArrayForEach(blk, content) {
		const char *type = get_str(blk, "type");
		const char *text = get_str(blk, "text");
		const char *id = get_str(blk, "id");
		const char *name = get_str(blk, "name");
		cJSON *tc, *fn;
		char *args;

		if (type == NULL) {
			fail(cause, "messages[%d]: content block without a type",
			     mi);
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
			args = cJSON_IsObject(get(blk, "input")) ?
			       cJSON_PrintUnformatted(get(blk, "input")) : NULL;
			b_str(b, fn, "arguments", args != NULL ? args : "{}");
			free(args);
		} else if (strcmp(type, "thinking") == 0 ||
			   strcmp(type, "redacted_thinking") == 0) {
			continue;
		} else {
			fail(cause, "messages[%d]: content block \"%s\" cannot be "
			     "sent to an OpenAI model", mi, type);
			return -1;
		}
	}
	if (cJSON_GetArraySize(parts) == 0)
		b_replace(b, m, "content", calls != NULL ? cJSON_CreateNull()
							 : cJSON_CreateString(""));
	else
		collapse_text(b, m, "content");
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
		fail(cause, "system must be a string or an array of text blocks");
		return -1;
	}
	cJSON_ArrayForEach(blk, system) {
		const char *text = get_str(blk, "text");

		if (!str_is(blk, "type", "text") || text == NULL) {
			fail(cause, "system must be a string or an array of "
			     "text blocks");
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
	int ti = 0;

	if (tools == NULL || cJSON_IsNull(tools))
		return 0;
	if (!cJSON_IsArray(tools)) {
		fail(cause, "tools must be an array");
		return -1;
	}
	if (cJSON_GetArraySize(tools) == 0)
		return 0;
	arr = b_arr(b, out, "tools");
	cJSON_ArrayForEach(t, tools) {
		const char *name = get_str(t, "name");
		const char *desc = get_str(t, "description");
		const cJSON *schema = get(t, "input_schema");
		cJSON *o, *fn;

		if ((!absent(t, "type") && !str_is(t, "type", "custom")) ||
		    name == NULL || !cJSON_IsObject(schema)) {
			fail(cause, "tools[%d]: only custom tools with a name and "
			     "an input_schema can be sent to an OpenAI model "
			     "(not server tools)", ti);
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
		    size_t *len, char **cause)
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
	if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0)
		return fail(cause, "messages must be a non-empty array");
	rmt = get_int(req, "max_tokens", &mt);
	if (rmt < 0)
		return fail(cause, "max_tokens must be a positive integer");
	if ((out = cJSON_CreateObject()) == NULL)
		return fail(cause, "out of memory");
	b_str(&b, out, "model", model);
	msgs = b_arr(&b, out, "messages");
	if (msg_system(&b, msgs, get(req, "system"), cause) < 0)
		goto fail;
	cJSON_ArrayForEach(m, messages) {
		const char *role = get_str(m, "role");
		const cJSON *content = get(m, "content");

		if (role != NULL && strcmp(role, "user") == 0)
			r = user_turn(&b, msgs, content, mi, cause);
		else if (role != NULL && strcmp(role, "assistant") == 0)
			r = assistant_turn(&b, msgs, content, mi, cause);
		else if (role != NULL && strcmp(role, "system") == 0)
			r = msg_system(&b, msgs, content, cause);
		else
			r = -1, fail(cause, "messages[%d]: role must be user or "
				     "assistant", mi);
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
	if (cJSON_IsArray(stop) && cJSON_GetArraySize(stop) > 0) {
		arr = b_arr(&b, out, "stop");
		cJSON_ArrayForEach(s, stop) {
			if (!cJSON_IsString(s)) {
				fail(cause, "stop_sequences must be an array of "
				     "strings");
				goto fail;
			}
			b_str(&b, arr, NULL, s->valuestring);
		}
	} else if (stop != NULL && !cJSON_IsNull(stop) && !cJSON_IsArray(stop)) {
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
	return finish(&b, out, len, cause);
fail:
	cJSON_Delete(out);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Stop reasons and usage                                              */
/* ------------------------------------------------------------------ */

/* Anthropic stop_reason -> OpenAI finish_reason. */
static const char *
finish_from_stop(const char *stop)
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
static const char *
stop_from_finish(const char *finish)
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

/* Anthropic's counts as sent (input excludes both cache counts). */
struct acounts {
	int64_t input, cache_write, cache_read, output;
};

/* Overrides the counts present in an Anthropic usage object (cumulative
 * in streams: a later value replaces, never adds). */
static void
acounts_merge(struct acounts *c, const cJSON *u)
{
	get_int(u, "input_tokens", &c->input);
	get_int(u, "cache_creation_input_tokens", &c->cache_write);
	get_int(u, "cache_read_input_tokens", &c->cache_read);
	get_int(u, "output_tokens", &c->output);
}

/* Adds an OpenAI usage object for Anthropic counts. */
static void
b_chat_usage(struct bld *b, cJSON *parent, const struct acounts *c)
{
	int64_t prompt = c->input + c->cache_write + c->cache_read;
	cJSON *u = b_obj(b, parent, "usage");

	b_num(b, u, "prompt_tokens", (double)prompt);
	b_num(b, u, "completion_tokens", (double)c->output);
	b_num(b, u, "total_tokens", (double)(prompt + c->output));
	b_num(b, b_obj(b, u, "prompt_tokens_details"), "cached_tokens",
	      (double)c->cache_read);
}

/* Reads an OpenAI usage object (top level, or in a choice as Moonshot
 * sends it) into Anthropic counts; 1 when found. */
static int
acounts_from_chat(struct acounts *c, const cJSON *root)
{
	const cJSON *u = get(root, "usage"), *ch;
	int64_t prompt = 0, cached = 0, write = 0, completion = 0;

	if (!cJSON_IsObject(u)) {
		u = NULL;
		cJSON_ArrayForEach(ch, arr_of(get(root, "choices")))
			if (cJSON_IsObject(get(ch, "usage"))) {
				u = get(ch, "usage");
				break;
			}
	}
	if (u == NULL || (get_int(u, "prompt_tokens", &prompt) <= 0 &&
			  get_int(u, "completion_tokens", &completion) <= 0))
		return 0;
	get_int(u, "completion_tokens", &completion);
	if (get_int(get(u, "prompt_tokens_details"), "cached_tokens",
		    &cached) <= 0 &&
	    get_int(u, "prompt_cache_hit_tokens", &cached) <= 0)
		get_int(u, "cached_tokens", &cached);
	get_int(get(u, "prompt_tokens_details"), "cache_write_tokens", &write);
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
static void
b_msg_usage(struct bld *b, cJSON *parent, const struct acounts *c)
{
	cJSON *u = b_obj(b, parent, "usage");

	b_num(b, u, "input_tokens", (double)c->input);
	b_num(b, u, "cache_creation_input_tokens", (double)c->cache_write);
	b_num(b, u, "cache_read_input_tokens", (double)c->cache_read);
	b_num(b, u, "output_tokens", (double)c->output);
}

/* ------------------------------------------------------------------ */
/* Whole responses                                                     */
/* ------------------------------------------------------------------ */

/* Adds one tool_calls entry {id, type, function {name, arguments}}. */
static void
b_tool_call(struct bld *b, cJSON *calls, const char *id, const char *name,
	    const cJSON *input)
{
	cJSON *tc = b_obj(b, calls, NULL), *fn;
	char *args = cJSON_IsObject(input) ? cJSON_PrintUnformatted(input)
					   : NULL;

	b_str(b, tc, "id", id);
	b_str(b, tc, "type", "function");
	fn = b_obj(b, tc, "function");
	b_str(b, fn, "name", name);
	b_str(b, fn, "arguments", args != NULL ? args : "{}");
	free(args);
}

/* Anthropic message -> chat.completion. */
char *
tr_messages_resp_to_chat(const cJSON *resp, const char *model,
			 int64_t created, size_t *len, char **cause)
{
	const cJSON *content = get(resp, "content"), *blk;
	const char *id = get_str(resp, "id");
	struct acounts c = { 0 };
	struct bld b = { 0 };
	struct tr_buf text = { 0 };
	cJSON *out, *choice, *msg, *calls = NULL;
	char *cid;

	if (!str_is(resp, "type", "message") || id == NULL ||
	    !cJSON_IsArray(content))
		return fail(cause, "upstream answer is not an Anthropic message");
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
	cJSON_ArrayForEach(blk, content) {
		const char *t = get_str(blk, "text");
		const char *tid = get_str(blk, "id");
		const char *name = get_str(blk, "name");

		if (str_is(blk, "type", "text") && t != NULL) {
			if (tr_buf_append(&text, t, strlen(t)) < 0)
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
	tr_buf_free(&text);
	b_null(&b, msg, "refusal");
	if (calls != NULL)
		b_add(&b, msg, "tool_calls", calls);
	b_null(&b, choice, "logprobs");
	b_str(&b, choice, "finish_reason",
	      finish_from_stop(get_str(resp, "stop_reason")));
	acounts_merge(&c, get(resp, "usage"));
	b_chat_usage(&b, out, &c);
	return finish(&b, out, len, cause);
}

/* The Anthropic message id for a chat id: "msg_" + the id without its
 * "chatcmpl-" prefix. */
static char *
msg_id(const char *id)
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
	const cJSON *choice = cJSON_IsArray(choices) ?
			      cJSON_GetArrayItem(choices, 0) : NULL;
	const cJSON *msg = get(choice, "message"), *tc;
	const char *text = get_str(msg, "content");
	const char *refusal = get_str(msg, "refusal");
	const char *finish_reason = get_str(choice, "finish_reason");
	struct acounts c = { 0 };
	struct bld b = { 0 };
	cJSON *out, *content, *blk;
	char *id;

	if (!cJSON_IsObject(msg))
		return fail(cause, "upstream answer is not a chat completion");
	if ((out = cJSON_CreateObject()) == NULL)
		return fail(cause, "out of memory");
	if ((id = msg_id(get_str(resp, "id"))) == NULL)
		b.oom = 1;
	b_str(&b, out, "id", id != NULL ? id : "");
	free(id);
	b_str(&b, out, "type", "message");
	b_str(&b, out, "role", "assistant");
	b_str(&b, out, "model", model);
	content = b_arr(&b, out, "content");
	if (text != NULL)
		b_text_block(&b, content, text);
	else if (refusal != NULL)
		b_text_block(&b, content, refusal);
	cJSON_ArrayForEach(tc, arr_of(get(msg, "tool_calls"))) {
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
		      parse_arguments(get_str(fn, "arguments")));
	}
	b_str(&b, out, "stop_reason", stop_from_finish(finish_reason));
	b_null(&b, out, "stop_sequence");
	acounts_from_chat(&c, resp);
	b_msg_usage(&b, out, &c);
	return finish(&b, out, len, cause);
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/* The Anthropic error type for an HTTP status. */
const char *
tr_anthropic_error_type(int status)
{
	switch (status) {
	case 400: return "invalid_request_error";
	case 401: return "authentication_error";
	case 403: return "permission_error";
	case 404: return "not_found_error";
	case 413: return "request_too_large";
	case 429: return "rate_limit_error";
	case 529: return "overloaded_error";
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
		{ "rate_limit_error", "rate_limit_error", "rate_limit_exceeded" },
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
error_message(const cJSON *root, const char *body, size_t body_len,
	      int status)
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
static cJSON *
chat_error_body(struct bld *b, const char *atype, const char *message)
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
	cJSON *root = body_len > 0 ? parse_exact(body, body_len) : NULL;
	const char *atype = get_str(get(root, "error"), "type");
	struct bld b = { 0 };
	char *msg = error_message(root, body, body_len, status), *s;
	cJSON *out;

	if (atype == NULL || *atype == '\0')
		atype = tr_anthropic_error_type(status);
	out = chat_error_body(&b, atype, msg != NULL ? msg : "");
	if (msg == NULL)
		b.oom = 1;
	s = finish(&b, out, len, NULL);
	free(msg);
	cJSON_Delete(root);
	return s;
}

/* Builds {"type":"error","error":{"type","message"}}. */
static cJSON *
msg_error_body(struct bld *b, const char *type, const char *message)
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
tr_error_to_messages(int status, const char *body, size_t body_len,
		     size_t *len)
{
	cJSON *root = body_len > 0 ? parse_exact(body, body_len) : NULL;
	struct bld b = { 0 };
	char *msg = error_message(root, body, body_len, status), *s;
	cJSON *out;

	out = msg_error_body(&b, tr_anthropic_error_type(status),
			     msg != NULL ? msg : "");
	if (msg == NULL)
		b.oom = 1;
	s = finish(&b, out, len, NULL);
	free(msg);
	cJSON_Delete(root);
	return s;
}

/* The Anthropic type of an error met inside a chat stream, where no HTTP
 * status tells: from the error's own code or type. */
static const char *
stream_error_type(const cJSON *err)
{
	const char *code = get_str(err, "code");
	const char *type = get_str(err, "type");
	int64_t n;

	if (code != NULL && strcmp(code, "invalid_api_key") == 0)
		return "authentication_error";
	if ((code != NULL && (strstr(code, "rate_limit") != NULL ||
			      strcmp(code, "insufficient_quota") == 0)) ||
	    (type != NULL && (strstr(type, "rate_limit") != NULL ||
			      strcmp(type, "insufficient_quota") == 0)))
		return "rate_limit_error";
	if (code != NULL && (n = strtol(code, NULL, 10)) >= 400 && n < 600)
		return tr_anthropic_error_type((int)n);
	if (get_int(err, "code", &n) > 0 && n >= 400 && n < 600)
		return tr_anthropic_error_type((int)n);
	if (type != NULL && strcmp(type, "invalid_request_error") == 0)
		return "invalid_request_error";
	return "api_error";
}

/* ------------------------------------------------------------------ */
/* Streams                                                             */
/* ------------------------------------------------------------------ */

struct tr_stream {
	enum tr_stream_dir dir;
	char *model;          /* the client's model */
	int include_usage;    /* chat client asked for the usage chunk */
	int64_t created;
	int done;             /* terminal client event written */
	char *id;             /* client-facing id, once known */
	struct acounts ac;    /* usage so far, Anthropic's way */
	/* TR_ANTHROPIC_TO_CHAT: Anthropic block index -> tool call index
	 * (-1: not a tool_use block) */
	int *blk_tool;
	int nblk;
	int ntools;
	/* TR_CHAT_TO_ANTHROPIC */
	int started;          /* message_start written */
	int open_blk;         /* index of the open content block, -1 none */
	int open_text;        /* the open block is text */
	int next_blk;         /* index of the next content block */
	int *tool_blk;        /* OpenAI tool index -> block index, -1 none */
	int ntool_slots;
	const char *stop;     /* stop_reason from finish_reason, or NULL */
};

/* Starts a stream translator. */
struct tr_stream *
tr_stream_new(enum tr_stream_dir dir, const char *model, int include_usage,
	      int64_t created)
{
	struct tr_stream *tr = calloc(1, sizeof(*tr));

	if (tr == NULL)
		return NULL;
	tr->dir = dir;
	tr->include_usage = include_usage;
	tr->created = created;
	tr->open_blk = -1;
	tr->model = memdup0(model, strlen(model));
	if (tr->model == NULL) {
		free(tr);
		return NULL;
	}
	return tr;
}

/* Frees a stream translator. */
void
tr_stream_free(struct tr_stream *tr)
{
	if (tr == NULL)
		return;
	free(tr->model);
	free(tr->id);
	free(tr->blk_tool);
	free(tr->tool_blk);
	free(tr);
}

/* Whether the terminal client event was written. */
int
tr_stream_done(const struct tr_stream *tr)
{
	return tr->done;
}

/* Grows an int map to hold index i (new slots -1); 0, or -1 past cap. */
static int
map_grow(int **map, int *n, int i, int cap)
{
	int *m, k;

	if (i < 0 || i >= cap)
		return -1;
	if (i < *n)
		return 0;
	m = realloc(*map, (size_t)(i + 1) * sizeof(int));
	if (m == NULL)
		return -1;
	for (k = *n; k <= i; k++)
		m[k] = -1;
	*map = m;
	*n = i + 1;
	return 0;
}

/* Prints root (then deletes it) as one SSE event: "event: name\n" when
 * name is not NULL, then "data: JSON\n\n". */
static int
emit(struct bld *b, struct tr_buf *out, const char *name, cJSON *root)
{
	char *s = b->oom ? NULL : cJSON_PrintUnformatted(root);
	int r = -1;

	cJSON_Delete(root);
	if (s == NULL) {
		b->oom = 1;
		return -1;
	}
	if ((name == NULL ||
	     (tr_buf_append(out, "event: ", 7) == 0 &&
	      tr_buf_append(out, name, strlen(name)) == 0 &&
	      tr_buf_append(out, "\n", 1) == 0)) &&
	    tr_buf_append(out, "data: ", 6) == 0 &&
	    tr_buf_append(out, s, strlen(s)) == 0 &&
	    tr_buf_append(out, "\n\n", 2) == 0)
		r = 0;
	free(s);
	if (r < 0)
		b->oom = 1;
	return r;
}

/* A chat.completion.chunk with one choice; *delta receives the choice's
 * delta object. finish is the finish_reason (NULL: null). */
static cJSON *
chunk_new(struct bld *b, const struct tr_stream *tr, cJSON **delta,
	  const char *finish_reason)
{
	cJSON *root = cJSON_CreateObject(), *choice;

	b_str(b, root, "id", tr->id != NULL ? tr->id : "chatcmpl-");
	b_str(b, root, "object", "chat.completion.chunk");
	b_num(b, root, "created", (double)tr->created);
	b_str(b, root, "model", tr->model);
	choice = b_obj(b, b_arr(b, root, "choices"), NULL);
	b_num(b, choice, "index", 0);
	*delta = b_obj(b, choice, "delta");
	b_null(b, choice, "logprobs");
	if (finish_reason != NULL)
		b_str(b, choice, "finish_reason", finish_reason);
	else
		b_null(b, choice, "finish_reason");
	if (tr->include_usage)
		b_null(b, root, "usage");
	return root;
}

/* A tool_calls delta entry for tool call index k. */
static cJSON *
tool_delta(struct bld *b, cJSON *delta, int k)
{
	cJSON *tc = b_obj(b, b_arr(b, delta, "tool_calls"), NULL);

	b_num(b, tc, "index", k);
	return tc;
}

/* Handles one Anthropic event for a chat client. */
static int
a2c_event(struct tr_stream *tr, struct bld *b, const cJSON *ev,
	  const char *type, struct tr_buf *out)
{
	cJSON *root, *delta, *tc, *fn;
	int64_t idx;

	if (strcmp(type, "message_start") == 0) {
		const cJSON *msg = get(ev, "message");
		const char *id = get_str(msg, "id");

		char *old = tr->id;

		tr->id = concat("chatcmpl-", id != NULL ? id : "");
		if (tr->id == NULL) {
			tr->id = old;
			return -1;
		}
		root = chunk_new(b, tr, &delta, NULL);
		b_str(b, delta, "role", "assistant");
		b_str(b, delta, "content", "");
		if (emit(b, out, NULL, root) < 0) {
			free(tr->id);
			tr->id = old;
			return -1;
		}
		free(old);
		acounts_merge(&tr->ac, get(msg, "usage"));
		return 0;
	}
	if (strcmp(type, "content_block_start") == 0) {
		const cJSON *blk = get(ev, "content_block");
		const char *text = get_str(blk, "text");

		if (get_int(ev, "index", &idx) <= 0)
			return -1;
		if (str_is(blk, "type", "text") && text != NULL && *text) {
			root = chunk_new(b, tr, &delta, NULL);
			b_str(b, delta, "content", text);
			return emit(b, out, NULL, root);
		}
		if (!str_is(blk, "type", "tool_use") ||
		    get_str(blk, "id") == NULL || get_str(blk, "name") == NULL)
			return 0;
		if (tr->ntools >= TR_MAX_TOOLS ||
		    map_grow(&tr->blk_tool, &tr->nblk, (int)idx,
			     TR_MAX_BLOCKS) < 0)
			return -1;
		root = chunk_new(b, tr, &delta, NULL);
		tc = tool_delta(b, delta, tr->ntools);
		b_str(b, tc, "id", get_str(blk, "id"));
		b_str(b, tc, "type", "function");
		fn = b_obj(b, tc, "function");
		b_str(b, fn, "name", get_str(blk, "name"));
		b_str(b, fn, "arguments", "");
		if (emit(b, out, NULL, root) < 0)
			return -1;
		tr->blk_tool[idx] = tr->ntools++;
		return 0;
	}
	if (strcmp(type, "content_block_delta") == 0) {
		const cJSON *d = get(ev, "delta");
		const char *s;

		if (get_int(ev, "index", &idx) <= 0)
			return -1;
		if (str_is(d, "type", "text_delta") &&
		    (s = get_str(d, "text")) != NULL) {
			if (*s == '\0')
				return 0;
			root = chunk_new(b, tr, &delta, NULL);
			b_str(b, delta, "content", s);
			return emit(b, out, NULL, root);
		}
		if (str_is(d, "type", "input_json_delta") &&
		    (s = get_str(d, "partial_json")) != NULL && *s != '\0' &&
		    idx < tr->nblk && tr->blk_tool[idx] >= 0) {
			root = chunk_new(b, tr, &delta, NULL);
			tc = tool_delta(b, delta, tr->blk_tool[idx]);
			b_str(b, b_obj(b, tc, "function"), "arguments", s);
			return emit(b, out, NULL, root);
		}
		return 0;
	}
	if (strcmp(type, "message_delta") == 0) {
		const char *stop = get_str(get(ev, "delta"), "stop_reason");

		acounts_merge(&tr->ac, get(ev, "usage"));
		if (stop == NULL)
			return 0;
		root = chunk_new(b, tr, &delta, finish_from_stop(stop));
		return emit(b, out, NULL, root);
	}
	if (strcmp(type, "message_stop") == 0) {
		if (tr->include_usage) {
			root = cJSON_CreateObject();
			b_str(b, root, "id", tr->id != NULL ? tr->id
							    : "chatcmpl-");
			b_str(b, root, "object", "chat.completion.chunk");
			b_num(b, root, "created", (double)tr->created);
			b_str(b, root, "model", tr->model);
			b_arr(b, root, "choices");
			b_chat_usage(b, root, &tr->ac);
			if (emit(b, out, NULL, root) < 0)
				return -1;
		}
		if (tr_buf_append(out, "data: [DONE]\n\n", 14) < 0)
			return -1;
		tr->done = 1;
		return 0;
	}
	if (strcmp(type, "error") == 0) {
		const cJSON *err = get(ev, "error");
		const char *etype = get_str(err, "type");
		const char *m = get_str(err, "message");

		root = chat_error_body(b, etype != NULL ? etype : "api_error",
				       m != NULL ? m : "upstream stream error");
		if (emit(b, out, NULL, root) < 0)
			return -1;
		tr->done = 1;
		return 0;
	}
	return 0;	/* ping, content_block_stop, unknown events */
}

/* Closes the open content block, if any. */
static int
c2a_close_block(struct tr_stream *tr, struct bld *b, struct tr_buf *out)
{
	cJSON *root;

	if (tr->open_blk < 0)
		return 0;
	root = cJSON_CreateObject();
	b_str(b, root, "type", "content_block_stop");
	b_num(b, root, "index", tr->open_blk);
	if (emit(b, out, "content_block_stop", root) < 0)
		return -1;
	tr->open_blk = -1;
	return 0;
}

/* Writes message_start once, with the id of the first chunk. */
static int
c2a_start(struct tr_stream *tr, struct bld *b, const cJSON *chunk,
	  struct tr_buf *out)
{
	cJSON *root, *msg;

	if (tr->started)
		return 0;
	if ((tr->id = msg_id(get_str(chunk, "id"))) == NULL)
		return -1;
	root = cJSON_CreateObject();
	b_str(b, root, "type", "message_start");
	msg = b_obj(b, root, "message");
	b_str(b, msg, "id", tr->id);
	b_str(b, msg, "type", "message");
	b_str(b, msg, "role", "assistant");
	b_str(b, msg, "model", tr->model);
	b_arr(b, msg, "content");
	b_null(b, msg, "stop_reason");
	b_null(b, msg, "stop_sequence");
	b_msg_usage(b, msg, &tr->ac);
	if (emit(b, out, "message_start", root) < 0)
		return -1;
	tr->started = 1;
	return 0;
}

/* Opens a content block: text, or tool_use with id and name. */
static int
c2a_open_block(struct tr_stream *tr, struct bld *b, const char *id,
	       const char *name, struct tr_buf *out)
{
	cJSON *root, *blk;

	if (c2a_close_block(tr, b, out) < 0 || tr->next_blk >= TR_MAX_BLOCKS)
		return -1;
	root = cJSON_CreateObject();
	b_str(b, root, "type", "content_block_start");
	b_num(b, root, "index", tr->next_blk);
	blk = b_obj(b, root, "content_block");
	if (id == NULL) {
		b_str(b, blk, "type", "text");
		b_str(b, blk, "text", "");
	} else {
		b_str(b, blk, "type", "tool_use");
		b_str(b, blk, "id", id);
		b_str(b, blk, "name", name);
		b_obj(b, blk, "input");
	}
	if (emit(b, out, "content_block_start", root) < 0)
		return -1;
	tr->open_blk = tr->next_blk++;
	tr->open_text = id == NULL;
	return 0;
}

/* Writes a content_block_delta of the given delta type and field. */
static int
c2a_delta(struct bld *b, struct tr_buf *out, int blk, const char *dtype,
	  const char *field, const char *s)
{
	cJSON *root = cJSON_CreateObject(), *d;

	b_str(b, root, "type", "content_block_delta");
	b_num(b, root, "index", blk);
	d = b_obj(b, root, "delta");
	b_str(b, d, "type", dtype);
	b_str(b, d, field, s);
	return emit(b, out, "content_block_delta", root);
}

/* Handles the tool_calls of one chunk's delta. */
static int
c2a_tools(struct tr_stream *tr, struct bld *b, const cJSON *calls,
	  struct tr_buf *out)
{
	const cJSON *tc;
	char idbuf[32];

	cJSON_ArrayForEach(tc, calls) {
		const cJSON *fn = get(tc, "function");
		const char *id = get_str(tc, "id");
		const char *name = get_str(fn, "name");
		const char *args = get_str(fn, "arguments");
		int64_t k = 0;

		if (get_int(tc, "index", &k) < 0 ||
		    map_grow(&tr->tool_blk, &tr->ntool_slots, (int)k,
			     TR_MAX_TOOLS) < 0)
			return -1;
		if (tr->tool_blk[k] < 0) {
			if (name == NULL)
				continue;	/* arguments before the name */
			if (id == NULL) {
				snprintf(idbuf, sizeof(idbuf), "toolu_tg_%d",
					 (int)k);
				id = idbuf;
			}
			if (c2a_open_block(tr, b, id, name, out) < 0)
				return -1;
			tr->tool_blk[k] = tr->open_blk;
		}
		/* A late fragment of an earlier call (providers that
		 * interleave calls) still goes to that call's block, which
		 * is where Anthropic's accumulators look. */
		if (args != NULL && *args != '\0' &&
		    c2a_delta(b, out, tr->tool_blk[k], "input_json_delta",
			      "partial_json", args) < 0)
			return -1;
	}
	return 0;
}

/* Writes the closing events: block stop, message_delta, message_stop. */
static int
c2a_end(struct tr_stream *tr, struct bld *b, struct tr_buf *out)
{
	cJSON *root, *d;

	if (c2a_start(tr, b, NULL, out) < 0 ||
	    c2a_close_block(tr, b, out) < 0)
		return -1;
	root = cJSON_CreateObject();
	b_str(b, root, "type", "message_delta");
	d = b_obj(b, root, "delta");
	b_str(b, d, "stop_reason", tr->stop != NULL ? tr->stop : "end_turn");
	b_null(b, d, "stop_sequence");
	b_msg_usage(b, root, &tr->ac);
	if (emit(b, out, "message_delta", root) < 0)
		return -1;
	root = cJSON_CreateObject();
	b_str(b, root, "type", "message_stop");
	if (emit(b, out, "message_stop", root) < 0)
		return -1;
	tr->done = 1;
	return 0;
}

/* Handles one chat chunk for an Anthropic client. */
static int
c2a_chunk(struct tr_stream *tr, struct bld *b, const cJSON *chunk,
	  struct tr_buf *out)
{
	const cJSON *choices = get(chunk, "choices");
	const cJSON *choice = cJSON_IsArray(choices) ?
			      cJSON_GetArrayItem(choices, 0) : NULL;
	const cJSON *delta = get(choice, "delta");
	const char *text = get_str(delta, "content");
	const char *finish_reason = get_str(choice, "finish_reason");
	const cJSON *err = get(chunk, "error"), *tc;
	cJSON *root;
	int64_t k;

	/* Reject before writing anything: a choice that is not an object, a
	 * tool call index that is not a small integer. */
	if (!absent(chunk, "choices") && !cJSON_IsArray(get(chunk, "choices")))
		return -1;
	if (choice != NULL && !cJSON_IsObject(choice))
		return -1;
	cJSON_ArrayForEach(tc, arr_of(get(delta, "tool_calls")))
		if (get_int(tc, "index", &k) < 0 || k >= TR_MAX_TOOLS)
			return -1;
	if (cJSON_IsObject(err)) {
		const char *m = get_str(err, "message");

		root = msg_error_body(b, stream_error_type(err),
				      m != NULL ? m : "upstream stream error");
		if (emit(b, out, "error", root) < 0)
			return -1;
		tr->done = 1;
		return 0;
	}
	acounts_from_chat(&tr->ac, chunk);
	/* Azure's content-filter chunk and the usage chunk carry no choice:
	 * no reason to start the message for them. */
	if (choice == NULL)
		return 0;
	if (c2a_start(tr, b, chunk, out) < 0)
		return -1;
	if (text == NULL)
		text = get_str(delta, "refusal");
	if (text != NULL && *text != '\0') {
		if ((tr->open_blk < 0 || !tr->open_text) &&
		    c2a_open_block(tr, b, NULL, NULL, out) < 0)
			return -1;
		if (c2a_delta(b, out, tr->open_blk, "text_delta", "text",
			      text) < 0)
			return -1;
	}
	if (c2a_tools(tr, b, arr_of(get(delta, "tool_calls")), out) < 0)
		return -1;
	if (finish_reason != NULL)
		tr->stop = stop_from_finish(finish_reason);
	return 0;
}

/* Whether data is the "[DONE]" sentinel, blanks around allowed. */
static int
is_done(const char *data, size_t len)
{
	while (len > 0 && (*data == ' ' || *data == '\t')) {
		data++;
		len--;
	}
	while (len > 0 && (data[len - 1] == ' ' || data[len - 1] == '\t' ||
			   data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	return len == 6 && memcmp(data, "[DONE]", 6) == 0;
}

/* Translates one upstream event. Every check that can reject an event
 * comes before its first output or state change, so a rejected event
 * leaves both as they were; out is cut back to its length on entry in any
 * failure. */
int
tr_stream_event(struct tr_stream *tr, const char *event, const char *data,
		size_t data_len, struct tr_buf *out)
{
	struct bld b = { 0 };
	size_t mark = out->len;
	const char *type;
	cJSON *ev;
	int r;

	if (tr->done || data == NULL)
		return 0;	/* after the end, or an event without data */
	if (tr->dir == TR_CHAT_TO_ANTHROPIC && is_done(data, data_len)) {
		r = c2a_end(tr, &b, out);
	} else {
		ev = parse_exact(data, data_len);
		if (!cJSON_IsObject(ev)) {
			cJSON_Delete(ev);
			return -1;
		}
		if (tr->dir == TR_ANTHROPIC_TO_CHAT) {
			type = get_str(ev, "type");
			if (type == NULL)
				type = event;
			r = type != NULL ? a2c_event(tr, &b, ev, type, out) : 0;
		} else {
			r = c2a_chunk(tr, &b, ev, out);
		}
		cJSON_Delete(ev);
	}
	if (r < 0 || b.oom) {
		out->len = mark;
		if (out->data != NULL)
			out->data[mark] = '\0';
		return -1;
	}
	return 0;
}
