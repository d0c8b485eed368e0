/*
 * translate_util.c - helpers of the translation tests (translate_util.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "translate_util.h"

/* Parses a fixture (a path under the fixture directory); aborts when it is
 * missing, since every later check would be meaningless. */
cJSON *
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
cJSON *
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
const cJSON *
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
			cur = cJSON_IsArray(cur)
				      ? cJSON_GetArrayItem(cur, atoi(p + 1))
				      : NULL;
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
		cur = cJSON_IsObject(cur)
			      ? cJSON_GetObjectItemCaseSensitive(cur, key)
			      : NULL;
	}
	return cur;
}

/* Whether two strings are equal (NULL equals nothing). */
int
str_eq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* The string at path, or NULL. */
const char *
js(const cJSON *root, const char *path)
{
	const cJSON *v = jp(root, path);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The number at path, or -1 when there is none. */
long long
ji(const cJSON *root, const char *path)
{
	const cJSON *v = jp(root, path);

	return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

/* The size of the array or object at path, or -1. */
int
jsize(const cJSON *root, const char *path)
{
	const cJSON *v = jp(root, path);

	return cJSON_IsArray(v) || cJSON_IsObject(v) ? cJSON_GetArraySize(v)
						     : -1;
}

/* Whether the JSON text s parses to a value equal to v. */
int
json_text_eq(const char *s, const cJSON *v)
{
	cJSON *p = s != NULL ? cJSON_Parse(s) : NULL;
	int eq = p != NULL && v != NULL && cJSON_Compare(p, v, 1);

	cJSON_Delete(p);
	return eq;
}

/* Whether two JSON texts parse to equal values. */
int
json_texts_eq(const char *a, const char *b)
{
	cJSON *pb = b != NULL ? cJSON_Parse(b) : NULL;
	int eq = json_text_eq(a, pb);

	cJSON_Delete(pb);
	return eq;
}

/* Builds a cJSON value from text; aborts on a typo in the test. */
cJSON *
J(const char *text)
{
	cJSON *v = cJSON_Parse(text);

	if (v == NULL) {
		printf("Bail out! bad JSON in test: %s\n", text);
		exit(1);
	}
	return v;
}

/* A NUL-terminated copy of n bytes of s; aborts when out of memory. */
char *
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
int
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
void
parse_sse(const char *buf, size_t len, struct evs *out)
{
	struct sse_parser *p = sse_parser_new(1 << 24, collect_cb, out);

	memset(out, 0, sizeof(*out));
	if (p == NULL || sse_parser_feed(p, buf, len) != 0)
		abort();
	sse_parser_free(p);
}

/* Frees the events of a list. */
void
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
void
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
struct tr_stream *
run_stream(enum tr_stream_dir dir, int include_usage, const struct evs *in,
	   size_t n, struct buf *out, int *fails)
{
	struct tr_stream *tr =
		tr_stream_new(dir, "client-model", include_usage, CREATED);

	*fails = 0;
	for (size_t i = 0; i < n && i < in->n; i++)
		if (tr_stream_event(tr, in->v[i].name, in->v[i].data,
				    in->v[i].len, out) < 0)
			(*fails)++;
	return tr;
}

/* Metered usage of an event list, as usage.c reads that wire. */
struct usage_stream
meter(const struct evs *e, enum wire w, enum flavor f)
{
	struct usage_stream st;

	usage_stream_init(&st, w, f);
	for (size_t i = 0; i < e->n; i++)
		(void)usage_stream_event(&st, e->v[i].name, e->v[i].data,
					 e->v[i].len);
	return st;
}

/* Frees what a reassembly holds. */
void
reasm_free(struct reasm *r)
{
	buf_free(&r->text);
	for (int i = 0; i < MAX_TOOLS; i++)
		buf_free(&r->tools[i].args);
}

/* Appends a string to a buffer; aborts when out of memory. */
void
must_add(struct buf *b, const char *s)
{
	if (buf_str(b, s) < 0)
		abort();
}

/* Rebuilds a chat chunk stream, checking each chunk's envelope when
 * envelope is set (translated output: our id, model and created). */
void
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
			r->order_ok = 0; /* nothing after [DONE] */
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
		cJSON_ArrayForEach (tc, jp(delta, "tool_calls")) {
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
				must_add(&t->args,
					 js(tc, "function.arguments"));
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
void
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
int
tools_eq(const struct reasm *a, const struct reasm *b)
{
	if (a->ntools != b->ntools)
		return 0;
	for (int i = 0; i < a->ntools; i++) {
		const char *x =
			a->tools[i].args.data ? a->tools[i].args.data : "{}";
		const char *y =
			b->tools[i].args.data ? b->tools[i].args.data : "{}";
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

const char *
text_of(const struct reasm *r)
{
	return r->text.data ? r->text.data : "";
}

/* Roles alternate user/assistant, starting with user. */
int
alternates(const cJSON *msgs)
{
	const cJSON *m;
	int i = 0;

	cJSON_ArrayForEach (m, msgs) {
		const char *role = js(m, "role");

		if (role == NULL || strcmp(role, i % 2 ? "assistant" : "user"))
			return 0;
		i++;
	}
	return i > 0;
}

/* Replaces the k-th node (pre-order, root excluded) of root by a copy of
 * with; returns 1 when it was found. *k counts down. */
int
replace_nth(cJSON *root, int *k, const cJSON *with)
{
	cJSON *c;

	for (c = root->child; c != NULL; c = c->next) {
		if ((*k)-- == 0)
			return cJSON_ReplaceItemViaPointer(
				root, c, cJSON_Duplicate(with, 1));
		if (replace_nth(c, k, with))
			return 1;
	}
	return 0;
}
