/*
 * usage.h - token usage extraction from provider responses.
 *
 * Knows where each wire format and provider flavor puts its counts (see
 * shared docs/wire-formats.md) and normalises them: prompt includes cached
 * and cache-write tokens, completion includes reasoning tokens. Streams keep
 * the last non-null usage seen, never a sum. No I/O.
 */
#ifndef TOLLGATE_USAGE_H
#define TOLLGATE_USAGE_H

#include <stdint.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "tollgate.h"

struct estimator;

struct usage {
	int64_t prompt; /* all input tokens, cached and cache-write included */
	int64_t completion;  /* all output tokens, reasoning included */
	int64_t cached;      /* cache reads, part of prompt */
	int64_t cache_write; /* cache writes, part of prompt */
	int64_t reasoning;   /* part of completion */
	int present;         /* non-zero once any usage was found */
};

/* "zhipu" -> FLAVOR_ZHIPU; -1 when unknown. */
int flavor_from_name(const char *name);
const char *flavor_name(enum flavor f);

/* Whether the flavor reports stream usage only when the request carries
 * stream_options.include_usage (OpenAI, Azure, DashScope, Qianfan). */
int flavor_needs_include_usage(enum flavor f);

/* Reads the usage of a whole (non-streamed) response body. Returns 1 and
 * fills *u when usage was found, 0 when there is none (error bodies). */
int usage_from_body(const cJSON *body, enum wire w, enum flavor f,
		    struct usage *u);

/* The same from the body's text, when its top-level "usage" member holds
 * the counts: 1 and *u filled as usage_from_body() would; 0 otherwise
 * (no such member, other counts, or text cJSON might read otherwise),
 * when the caller parses the body. Builds no tree of the body. */
int usage_from_text(const char *buf, size_t len, enum wire w, struct usage *u);

/* Per-stream state: the last usage seen, merged per field for Anthropic
 * (whose message_delta counts are cumulative and partial). */
struct usage_stream {
	enum wire wire;
	enum flavor flavor;
	struct usage last;
	int done;            /* a terminal event was seen */
	int64_t text_tokens; /* estimated tokens of the output text seen, for
				when no usage arrives (estimate.h) */
	const struct estimator *est; /* how the text is counted: the
					model's (usage_stream_init() sets
					estimate_for(NULL)) */
};

void usage_stream_init(struct usage_stream *st, enum wire w, enum flavor f);

/* What usage_stream_event() learned about one event. */
#define USAGE_EV_HAS_USAGE 0x1 /* carried a non-null usage */
#define USAGE_EV_USAGE_ONLY                                                    \
	0x2 /* carried only usage: "choices":[] with a                         \
	       non-null usage (the include_usage chunk) */
#define USAGE_EV_DONE                                                          \
	0x4                   /* terminal: [DONE], message_stop,               \
				 response.completed/incomplete/failed */
#define USAGE_EV_BAD_JSON 0x8 /* data was not JSON (and not [DONE]) */

/* Feeds one SSE event (its "event:" name or NULL, and its data). Returns
 * a mask of USAGE_EV_* flags. */
int usage_stream_event(struct usage_stream *st, const char *event,
		       const char *data, size_t data_len);

/* For an event that carries content and usage together when the client did
 * not ask for usage: returns a new malloc'd data string with every usage
 * member removed (top level and inside choices), printed unformatted, or
 * NULL on error. Caller frees. */
char *usage_strip(const char *data, size_t data_len);

#endif
