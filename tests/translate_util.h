/*
 * translate_util.h - what the translation tests share: paths into parsed
 * JSON, SSE fixtures split into events, streams run through a translator
 * and reassembled as a client library would (text, tool calls, finish
 * reason, usage chunks), and the mutations the malformed-input cases make.
 */
#ifndef TOLLGATE_TESTS_TRANSLATE_UTIL_H
#define TOLLGATE_TESTS_TRANSLATE_UTIL_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "buf.h"
#include "sse.h"
#include "translate.h"
#include "usage.h"

/* The "created" time translated answers are given. */
#define CREATED 1730000123

struct ev {
	char *name; /* NULL when absent */
	char *data; /* NULL when absent */
	size_t len;
};

struct evs {
	struct ev *v;
	size_t n;
	size_t cap;
};

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
	char finish[32];  /* finish_reason / stop_reason */
	int done;         /* [DONE] / message_stop seen */
	int order_ok;     /* Anthropic: events in protocol order; chat:
			     every chunk well-formed */
	int usage_chunks; /* chat: chunks with a non-null usage */
	int usage_last;   /* chat: the usage chunk came right before
			     [DONE], with "choices":[] */
	int chunks;
	int errors;   /* error events */
	char id[128]; /* the chunks' / message's id */
	int same_id;  /* every chunk had that id */
};

/* Parses a fixture (a path under the fixture directory); aborts when it is
 * missing, since every later check would be meaningless. */
cJSON *load_json(const char *name);

/* Parses a translator's output and frees it; NULL stays NULL. The length
 * is read through a pointer, after the call that sets it. */
cJSON *take(char *s, const size_t *lenp);

/* The value at a path like "choices[0].message.content", or NULL. */
const cJSON *jp(const cJSON *root, const char *path);

/* Whether two strings are equal (NULL equals nothing). */
int str_eq(const char *a, const char *b);

/* The string at path, or NULL. */
const char *js(const cJSON *root, const char *path);

/* The number at path, or -1 when there is none. */
long long ji(const cJSON *root, const char *path);

/* The size of the array or object at path, or -1. */
int jsize(const cJSON *root, const char *path);

/* Whether the JSON text s parses to a value equal to v. */
int json_text_eq(const char *s, const cJSON *v);

/* Whether two JSON texts parse to equal values. */
int json_texts_eq(const char *a, const char *b);

/* Builds a cJSON value from text; aborts on a typo in the test. */
cJSON *J(const char *text);

/* A NUL-terminated copy of n bytes of s; aborts when out of memory. */
char *dup_n(const char *s, size_t n);

/* Records one SSE event (comments skipped). */
int collect_cb(const struct sse_event *e, void *arg);

/* Splits an SSE body into events. */
void parse_sse(const char *buf, size_t len, struct evs *out);

/* Frees the events of a list. */
void evs_free(struct evs *e);

/* Reads and splits an SSE fixture. */
void load_sse(const char *name, struct evs *out);

/* Feeds the first n events of in to a new translator; the client's bytes
 * go to out. Returns the translator (caller frees); *fails counts -1s. */
struct tr_stream *run_stream(enum tr_stream_dir dir, int include_usage,
			     const struct evs *in, size_t n, struct buf *out,
			     int *fails);

/* Metered usage of an event list, as usage.c reads that wire. */
struct usage_stream meter(const struct evs *e, enum wire w, enum flavor f);

/* Frees what a reassembly holds. */
void reasm_free(struct reasm *r);

/* Appends a string to a buffer; aborts when out of memory. */
void must_add(struct buf *b, const char *s);

/* Rebuilds a chat chunk stream, checking each chunk's envelope when
 * envelope is set (translated output: our id, model and created). */
void reasm_chat(const struct evs *e, struct reasm *r, int envelope);

/* Rebuilds an Anthropic event stream, checking the protocol order:
 * message_start first; blocks opened with consecutive indexes, one at a
 * time, deltas only to the open block; message_delta after the last
 * block; message_stop last; each event's name equal to its data type. */
void reasm_anthropic(const struct evs *e, struct reasm *r);

/* Whether the tools of two reassemblies match: ids, names and arguments
 * (as JSON values; an empty argument string reads as {}). */
int tools_eq(const struct reasm *a, const struct reasm *b);

const char *text_of(const struct reasm *r);

/* Roles alternate user/assistant, starting with user. */
int alternates(const cJSON *msgs);

/* Replaces the k-th node (pre-order, root excluded) of root by a copy of
 * with; returns 1 when it was found. *k counts down. */
int replace_nth(cJSON *root, int *k, const cJSON *with);

#endif
