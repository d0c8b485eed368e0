/*
 * translate_stream.c - SSE streams between the chat and messages wires,
 * one upstream event at a time (the principle is at the top of
 * translate.c).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate.h"
#include "translate_int.h"

/* Caps on stream bookkeeping, far above any real answer. */
#define TR_MAX_BLOCKS 4096
#define TR_MAX_TOOLS  1024

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
	if (json_count(err, "code", &n) > 0 && n >= 400 && n < 600)
		return tr_anthropic_error_type((int)n);
	if (type != NULL && strcmp(type, "invalid_request_error") == 0)
		return "invalid_request_error";
	return "api_error";
}

struct tr_stream {
	enum tr_stream_dir dir;
	char *model;       /* the client's model */
	int include_usage; /* chat client asked for the usage chunk */
	int64_t created;
	int done;            /* terminal client event written */
	char *id;            /* client-facing id, once known */
	struct tr_counts ac; /* usage so far, Anthropic's way */
	/* TR_ANTHROPIC_TO_CHAT: Anthropic block index -> tool call index
	 * (-1: not a tool_use block) */
	int *blk_tool;
	int nblk;
	int ntools;
	/* TR_CHAT_TO_ANTHROPIC */
	int started;   /* message_start written */
	int open_blk;  /* index of the open content block, -1 none */
	int open_text; /* the open block is text */
	int next_blk;  /* index of the next content block */
	int *tool_blk; /* OpenAI tool index -> block index, -1 none */
	int ntool_slots;
	const char *stop;        /* stop_reason from finish_reason, or NULL */
	int64_t prompt_estimate; /* message_start's input_tokens until the
				    provider's count arrives */
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

void
tr_stream_set_prompt(struct tr_stream *tr, int64_t tokens)
{
	tr->prompt_estimate = tokens;
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

/* Grows an int map to hold index i (new slots -1), doubling so that
 * indexes met one by one cost no more than their number; 0, or -1 past
 * cap. */
static int
map_grow(int **map, int *n, int i, int cap)
{
	int *m, k, size;

	if (i < 0 || i >= cap)
		return -1;
	if (i < *n)
		return 0;
	size = *n > cap / 2 ? cap : *n * 2;
	if (size <= i)
		size = i + 1;
	m = realloc(*map, (size_t)size * sizeof(int));
	if (m == NULL)
		return -1;
	for (k = *n; k < size; k++)
		m[k] = -1;
	*map = m;
	*n = size;
	return 0;
}

/* Prints root (then deletes it) as one SSE event: "event: name\n" when
 * name is not NULL, then "data: JSON\n\n". */
static int
emit(struct bld *b, struct buf *out, const char *name, cJSON *root)
{
	char *s = b->oom ? NULL : cJSON_PrintUnformatted(root);
	int r = -1;

	cJSON_Delete(root);
	if (s == NULL) {
		b->oom = 1;
		return -1;
	}
	if ((name == NULL || (buf_add(out, "event: ", 7) == 0 &&
			      buf_add(out, name, strlen(name)) == 0 &&
			      buf_add(out, "\n", 1) == 0)) &&
	    buf_add(out, "data: ", 6) == 0 && buf_add(out, s, strlen(s)) == 0 &&
	    buf_add(out, "\n\n", 2) == 0)
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

/* message_start: the id, and the first chunk with the role. */
static int
a2c_message_start(struct tr_stream *tr, struct bld *b, const cJSON *ev,
		  struct buf *out)
{
	const cJSON *msg = get(ev, "message");
	const char *id = get_str(msg, "id");
	char *old = tr->id;
	cJSON *root, *delta;

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
	tr_counts_merge(&tr->ac, get(msg, "usage"));
	return 0;
}

/* content_block_start: a text block's first text, or a tool call's id
 * and name. */
static int
a2c_block_start(struct tr_stream *tr, struct bld *b, const cJSON *ev,
		struct buf *out)
{
	const cJSON *blk = get(ev, "content_block");
	const char *text = get_str(blk, "text");
	cJSON *root, *delta, *tc, *fn;
	int64_t idx;

	if (json_count(ev, "index", &idx) <= 0)
		return -1;
	if (str_is(blk, "type", "text") && text != NULL && *text) {
		root = chunk_new(b, tr, &delta, NULL);
		b_str(b, delta, "content", text);
		return emit(b, out, NULL, root);
	}
	if (!str_is(blk, "type", "tool_use") || get_str(blk, "id") == NULL ||
	    get_str(blk, "name") == NULL)
		return 0;
	if (tr->ntools >= TR_MAX_TOOLS ||
	    map_grow(&tr->blk_tool, &tr->nblk, (int)idx, TR_MAX_BLOCKS) < 0)
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

/* content_block_delta: text, or a tool call's arguments. */
static int
a2c_block_delta(struct tr_stream *tr, struct bld *b, const cJSON *ev,
		struct buf *out)
{
	const cJSON *d = get(ev, "delta");
	cJSON *root, *delta, *tc;
	const char *s;
	int64_t idx;

	if (json_count(ev, "index", &idx) <= 0)
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

/* message_delta: the usage so far, and the finish reason. */
static int
a2c_message_delta(struct tr_stream *tr, struct bld *b, const cJSON *ev,
		  struct buf *out)
{
	const char *stop = get_str(get(ev, "delta"), "stop_reason");
	cJSON *root, *delta;

	tr_counts_merge(&tr->ac, get(ev, "usage"));
	if (stop == NULL)
		return 0;
	root = chunk_new(b, tr, &delta, tr_finish_reason(stop));
	return emit(b, out, NULL, root);
}

/* message_stop: the usage chunk when the client asked, then [DONE]. */
static int
a2c_message_stop(struct tr_stream *tr, struct bld *b, const cJSON *ev,
		 struct buf *out)
{
	cJSON *root;

	(void)ev;
	if (tr->include_usage) {
		root = cJSON_CreateObject();
		b_str(b, root, "id", tr->id != NULL ? tr->id : "chatcmpl-");
		b_str(b, root, "object", "chat.completion.chunk");
		b_num(b, root, "created", (double)tr->created);
		b_str(b, root, "model", tr->model);
		b_arr(b, root, "choices");
		tr_chat_usage(b, root, &tr->ac);
		if (emit(b, out, NULL, root) < 0)
			return -1;
	}
	if (buf_add(out, "data: [DONE]\n\n", 14) < 0)
		return -1;
	tr->done = 1;
	return 0;
}

/* error: OpenAI's mid-stream error object, which ends the stream. */
static int
a2c_error(struct tr_stream *tr, struct bld *b, const cJSON *ev, struct buf *out)
{
	const cJSON *err = get(ev, "error");
	const char *etype = get_str(err, "type");
	const char *m = get_str(err, "message");

	if (etype == NULL)
		etype = "api_error";
	if (m == NULL)
		m = "upstream stream error";
	if (emit(b, out, NULL, tr_chat_error_body(b, etype, m)) < 0)
		return -1;
	tr->done = 1;
	return 0;
}

/* Handles one Anthropic event for a chat client. */
static int
a2c_event(struct tr_stream *tr, struct bld *b, const cJSON *ev,
	  const char *type, struct buf *out)
{
	static const struct {
		const char *type;
		int (*fn)(struct tr_stream *, struct bld *, const cJSON *,
			  struct buf *);
	} events[] = {
		{ "message_start", a2c_message_start },
		{ "content_block_start", a2c_block_start },
		{ "content_block_delta", a2c_block_delta },
		{ "message_delta", a2c_message_delta },
		{ "message_stop", a2c_message_stop },
		{ "error", a2c_error },
	};

	for (size_t i = 0; i < sizeof events / sizeof *events; i++)
		if (strcmp(type, events[i].type) == 0)
			return events[i].fn(tr, b, ev, out);
	return 0; /* ping, content_block_stop, unknown events */
}

/* Closes the open content block, if any. */
static int
c2a_close_block(struct tr_stream *tr, struct bld *b, struct buf *out)
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
	  struct buf *out)
{
	cJSON *root, *msg;

	if (tr->started)
		return 0;
	if ((tr->id = tr_msg_id(get_str(chunk, "id"))) == NULL)
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
	if (tr->ac.input == 0 && tr->ac.cache_read == 0 &&
	    tr->ac.cache_write == 0) {
		/* OpenAI's API counts only at the end; clients that read
		 * the prompt's count from message_start alone get the
		 * gateway's estimate, and message_delta the exact count. */
		struct tr_counts est = tr->ac;
		est.input = tr->prompt_estimate;
		tr_msg_usage(b, msg, &est);
	} else {
		tr_msg_usage(b, msg, &tr->ac);
	}
	if (emit(b, out, "message_start", root) < 0)
		return -1;
	tr->started = 1;
	return 0;
}

/* Opens a content block: text, or tool_use with id and name. */
static int
c2a_open_block(struct tr_stream *tr, struct bld *b, const char *id,
	       const char *name, struct buf *out)
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
c2a_delta(struct bld *b, struct buf *out, int blk, const char *dtype,
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
	  struct buf *out)
{
	const cJSON *tc;
	char idbuf[32];

	cJSON_ArrayForEach (tc, calls) {
		const cJSON *fn = get(tc, "function");
		const char *id = get_str(tc, "id");
		const char *name = get_str(fn, "name");
		const char *args = get_str(fn, "arguments");
		int64_t k = 0;

		if (json_count(tc, "index", &k) < 0 ||
		    map_grow(&tr->tool_blk, &tr->ntool_slots, (int)k,
			     TR_MAX_TOOLS) < 0)
			return -1;
		if (tr->tool_blk[k] < 0) {
			if (name == NULL)
				continue; /* arguments before the name */
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
c2a_end(struct tr_stream *tr, struct bld *b, struct buf *out)
{
	cJSON *root, *d;

	if (c2a_start(tr, b, NULL, out) < 0 || c2a_close_block(tr, b, out) < 0)
		return -1;
	root = cJSON_CreateObject();
	b_str(b, root, "type", "message_delta");
	d = b_obj(b, root, "delta");
	b_str(b, d, "stop_reason", tr->stop != NULL ? tr->stop : "end_turn");
	b_null(b, d, "stop_sequence");
	tr_msg_usage(b, root, &tr->ac);
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
	  struct buf *out)
{
	const cJSON *choices = get(chunk, "choices");
	const cJSON *choice =
		cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
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
	cJSON_ArrayForEach (tc, arr_of(get(delta, "tool_calls")))
		if (json_count(tc, "index", &k) < 0 || k >= TR_MAX_TOOLS)
			return -1;
	if (cJSON_IsObject(err)) {
		const char *m = get_str(err, "message");

		root = tr_msg_error_body(b, stream_error_type(err),
					 m != NULL ? m
						   : "upstream stream error");
		if (emit(b, out, "error", root) < 0)
			return -1;
		tr->done = 1;
		return 0;
	}
	tr_counts_from_chat(&tr->ac, chunk);
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
		tr->stop = tr_stop_reason(finish_reason);
	return 0;
}

/* Translates one upstream event. Every check that can reject an event
 * comes before its first output or state change, so a rejected event
 * leaves both as they were; out is cut back to its length on entry in any
 * failure. */
int
tr_stream_event(struct tr_stream *tr, const char *event, const char *data,
		size_t data_len, struct buf *out)
{
	struct bld b = { 0 };
	size_t mark = out->len;
	const char *type;
	cJSON *ev;
	int r;

	if (tr->done || data == NULL)
		return 0; /* after the end, or an event without data */
	if (tr->dir == TR_CHAT_TO_ANTHROPIC && sse_is_done(data, data_len)) {
		r = c2a_end(tr, &b, out);
	} else {
		ev = json_parse_exact(data, data_len);
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
