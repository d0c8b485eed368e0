/*
 * body.h - one reading of a request body.
 *
 * The gateway decides on a request (which model, whether it streams, how
 * many tokens it may use) from the members it reads, and then forwards the
 * client's bytes. Both must mean the same thing to every parser on the
 * way: a provider whose parser lets the last of two equal members win, or
 * matches names regardless of case, must not see a model or a cap other
 * than the one the gateway allowed and reserved. body_read() refuses every
 * body that two reasonable parsers could read differently, then reads the
 * members the gateway interprets, once. No I/O.
 */
#ifndef TOLLGATE_BODY_H
#define TOLLGATE_BODY_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

/* The output caps a provider may honour, by member name. */
enum body_cap {
	BODY_MAX_TOKENS,            /* chat, completions, Anthropic */
	BODY_MAX_COMPLETION_TOKENS, /* chat (OpenAI's current name) */
	BODY_MAX_OUTPUT_TOKENS,     /* Responses */
	BODY_CAP__COUNT
};

/* The largest output cap and the most choices a body may ask for. */
#define BODY_CAP_MAX     2147483647
#define BODY_CHOICES_MAX 128

/* What the gateway reads in a body. */
struct body {
	cJSON *json;       /* the parsed body, owned */
	const char *model; /* "model" (in json), NULL when absent */
	int stream;        /* "stream": true */
	int include_usage; /* "stream_options": {"include_usage": true} */
	int64_t caps[BODY_CAP__COUNT]; /* each cap, 0 when absent or null */
	int64_t choices; /* outputs generated: n, or best_of when larger */
};

/* Why a body was refused. */
struct body_error {
	char param[128]; /* the member, as a path: model, messages[1].content */
	char msg[384];
};

/* Names that one case-blind reader (Go's encoding/json: ASCII case, and
 * U+212A KELVIN SIGN and U+017F LONG S as k and s) takes for the same
 * member. Exposed for tests. */
int body_names_fold_equal(const char *a, const char *b);

/* Reads len bytes of a request body into *b: exactly one JSON object
 * (nothing after it), no object anywhere with the same member twice
 * (names compared unescaped), no member at the top level or in
 * stream_options named like one the gateway reads except exactly so, no
 * top-level name with an escaped NUL, and the members the gateway reads
 * of their types: model a string; stream and include_usage booleans;
 * stream_options an object; caps integers from 1 to BODY_CAP_MAX; n from
 * 1 to BODY_CHOICES_MAX and best_of from 1 to 20 (null is absent for all).
 * 0 on success (free b->json with cJSON_Delete); -1 with *e filled. */
int body_read(const char *buf, size_t len, struct body *b,
	      struct body_error *e);

/* The largest cap the body sets, 0 when none. */
int64_t body_cap(const struct body *b);

/* The member name of a cap. */
const char *body_cap_name(enum body_cap c);

#endif
