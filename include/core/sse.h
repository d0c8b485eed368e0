/*
 * sse.h - incremental parser for text/event-stream bodies.
 *
 * Bytes are fed in slices cut at arbitrary boundaries; the parser calls back
 * once per complete event with the event's exact raw bytes (so a relay can
 * forward them untouched) and its parsed fields. Lines end in LF, CRLF or
 * CR; an event ends with a blank line. Comment lines (":" first) are kept in
 * the raw bytes but are not fields. No I/O.
 */
#ifndef TOLLGATE_SSE_H
#define TOLLGATE_SSE_H

#include <stddef.h>

struct sse_event {
	const char *raw; /* exact bytes of the event, terminator included */
	size_t raw_len;
	const char *event; /* value of the last "event:" field, or NULL */
	const char *data;  /* "data:" lines joined by '\n', NUL-terminated,
			      or NULL when the event had no data field */
	size_t data_len;
	int comment_only; /* only comment lines (e.g. ": keep-alive") */
};

/* Called for each complete event; the pointers are valid only during the
 * call. A non-zero return stops sse_parser_feed(), which returns it. */
typedef int (*sse_event_cb)(const struct sse_event *ev, void *arg);

struct sse_parser;

/* max_event is the largest event (raw bytes) accepted; larger is an error. */
struct sse_parser *sse_parser_new(size_t max_event, sse_event_cb cb, void *arg);
void sse_parser_free(struct sse_parser *p);

/* Feeds len bytes. Returns 0, the callback's non-zero value, or -1 when an
 * event grows past max_event. */
int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len)
	__attribute__((warn_unused_result));

/* Bytes held of an event not yet terminated (at EOF: a cut stream). The
 * pointer is borrowed until the next feed or free. */
const char *sse_parser_pending(const struct sse_parser *p, size_t *len);

/* Whether an event's data is OpenAI's "data: [DONE]" terminator (blanks
 * around it allowed). */
int sse_is_done(const char *data, size_t len);

#endif
