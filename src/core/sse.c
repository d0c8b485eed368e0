/*
 * sse.c - incremental parser for text/event-stream bodies.
 *
 * Principle: the relay forwards what the upstream sent, byte for byte, so
 * every byte fed belongs to exactly one reported event and the raw bytes of
 * all events concatenate back to the input. Fields follow the WHATWG
 * EventSource rules ("data" lines joined by '\n', one space after the colon
 * stripped, last "event" wins, ":" lines are comments, other fields are
 * ignored, a leading UTF-8 BOM is skipped).
 *
 * Only the new bytes of each feed are scanned. Complete events that lie
 * inside one slice are reported straight from the caller's buffer; only an
 * event that straddles slices is copied into the parser's raw buffer. The
 * raw, data and event buffers are reused from event to event and shrink back
 * after an unusually large event.
 *
 * A line ending in CR at the very end of a slice may be the first half of a
 * CRLF. Its line is processed at once, and a leading LF in the next slice is
 * taken as the rest of its terminator. When that line is the blank line that
 * ends an event, the event is held until the next byte arrives so that its
 * raw bytes include the whole terminator.
 *
 * A blank line with nothing before it (stray line endings between events)
 * is reported as an event with no fields, data NULL and comment_only 0, so
 * that its bytes are still forwarded.
 *
 * When the callback returns non-zero, the rest of that slice is discarded
 * and the parser starts afresh at the next feed.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "sse.h"

/* Buffers larger than this are released after the event that grew them. */
#define SSE_KEEP_CAP (64 * 1024)

struct sse_parser {
	size_t max_event;
	sse_event_cb cb;
	void *arg;
	struct buf raw;   /* current event bytes from earlier feeds */
	struct buf data;  /* joined data lines, NUL-terminated */
	struct buf event; /* last event name, NUL-terminated */
	size_t line_off;  /* start of the partial line in raw */
	int line_in_raw;  /* a partial line begins in raw */
	int has_data;
	int has_event;
	int nfields;         /* non-comment lines in the current event */
	int ncomments;       /* comment lines in the current event */
	int skip_lf;         /* last byte fed was a CR ending a line */
	int dispatch_held;   /* that CR ended the event: report it next feed */
	int seen_first_line; /* the BOM check is done */
	int failed;          /* an event outgrew max_event or memory ran out */
};

/* Creates a parser; NULL when out of memory. */
struct sse_parser *
sse_parser_new(size_t max_event, sse_event_cb cb, void *arg)
{
	struct sse_parser *p;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->max_event = max_event;
	p->cb = cb;
	p->arg = arg;
	return p;
}

/* Frees the parser and its buffers. */
void
sse_parser_free(struct sse_parser *p)
{
	if (p == NULL)
		return;
	buf_free(&p->raw);
	buf_free(&p->data);
	buf_free(&p->event);
	free(p);
}

/* Returns the unterminated bytes held, borrowed until the next feed. */
const char *
sse_parser_pending(const struct sse_parser *p, size_t *len)
{
	*len = p->raw.len;
	return p->raw.len ? p->raw.data : "";
}

/* Forgets the fields and raw bytes of the current event. */
static void
event_reset(struct sse_parser *p)
{
	buf_reset(&p->raw, SSE_KEEP_CAP);
	buf_reset(&p->data, SSE_KEEP_CAP);
	buf_reset(&p->event, SSE_KEEP_CAP);
	p->line_off = 0;
	p->line_in_raw = 0;
	p->has_data = 0;
	p->has_event = 0;
	p->nfields = 0;
	p->ncomments = 0;
	p->skip_lf = 0;
	p->dispatch_held = 0;
}

/* Applies one complete non-blank line to the current event; 0 or -1. */
static int
process_line(struct sse_parser *p, const char *s, size_t n)
{
	const char *colon, *val;
	size_t nlen, vlen;

	if (!p->seen_first_line) {
		p->seen_first_line = 1;
		if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3;
			n -= 3;
			if (n == 0)
				return 0;
		}
	}
	if (s[0] == ':') {
		p->ncomments++;
		return 0;
	}
	p->nfields++;
	colon = memchr(s, ':', n);
	nlen = colon ? (size_t)(colon - s) : n;
	val = colon ? colon + 1 : s + n;
	vlen = (size_t)(s + n - val);
	if (vlen > 0 && val[0] == ' ') {
		val++;
		vlen--;
	}
	if (nlen == 4 && memcmp(s, "data", 4) == 0) {
		if (p->has_data && buf_add(&p->data, "\n", 1) < 0)
			return -1;
		if (buf_add(&p->data, val, vlen) < 0)
			return -1;
		p->has_data = 1;
	} else if (nlen == 5 && memcmp(s, "event", 5) == 0) {
		p->event.len = 0;
		if (buf_add(&p->event, val, vlen) < 0)
			return -1;
		p->has_event = 1;
	}
	return 0;
}

/* Reports the event whose last bytes are in [from, to) of the current slice
 * (after any bytes already in raw), then resets; returns the callback's
 * value or -1. */
static int
dispatch(struct sse_parser *p, const char *from, const char *to)
{
	struct sse_event ev;
	int rc;

	if (p->raw.len > 0) {
		if (buf_add(&p->raw, from, (size_t)(to - from)) < 0)
			return -1;
		ev.raw = p->raw.data;
		ev.raw_len = p->raw.len;
	} else {
		ev.raw = from;
		ev.raw_len = (size_t)(to - from);
	}
	ev.event = p->has_event ? p->event.data : NULL;
	ev.data = p->has_data ? p->data.data : NULL;
	ev.data_len = p->has_data ? p->data.len : 0;
	ev.comment_only = p->ncomments > 0 && p->nfields == 0;
	p->seen_first_line = 1;
	rc = p->cb(&ev, p->arg);
	event_reset(p);
	return rc;
}

/* Finds the next CR or LF in [cur, end), or NULL. *cr and *lf cache the
 * last memchr results (NULL: not searched yet, end: none left), so each byte
 * of the slice is searched at most once for each character. */
static const char *
next_eol(const char *cur, const char *end, const char **cr, const char **lf)
{
	if (*cr == NULL || (*cr != end && *cr < cur)) {
		*cr = memchr(cur, '\r', (size_t)(end - cur));
		if (*cr == NULL)
			*cr = end;
	}
	if (*lf == NULL || (*lf != end && *lf < cur)) {
		*lf = memchr(cur, '\n', (size_t)(end - cur));
		if (*lf == NULL)
			*lf = end;
	}
	if (*cr == end && *lf == end)
		return NULL;
	return *cr < *lf ? *cr : *lf;
}

/* Feeds len bytes; returns 0, the callback's non-zero value, or -1. */
int
sse_parser_feed(struct sse_parser *p, const char *buf, size_t len)
{
	const char *cur = buf, *end = buf + len;
	const char *ev = buf; /* slice bytes of the event not yet in raw */
	const char *line;     /* line start in the slice; NULL: in raw */
	const char *cr = NULL, *lf = NULL;
	const char *eol, *next, *ls;
	size_t ln;
	int rc, held;

	if (p->failed)
		return -1;
	if (len == 0)
		return 0;
	line = p->line_in_raw ? NULL : buf;
	if (p->skip_lf) {
		p->skip_lf = 0;
		if (*cur == '\n') {
			cur++;
			line = cur;
		}
		if (p->dispatch_held) {
			/* The LF that ends the held event counts too. */
			if (p->raw.len + (size_t)(cur - ev) > p->max_event)
				goto fail;
			rc = dispatch(p, ev, cur);
			ev = cur;
			if (rc != 0)
				goto stop;
		}
	}
	while (cur < end) {
		eol = next_eol(cur, end, &cr, &lf);
		if (eol == NULL)
			break;
		next = eol + 1;
		held = 0;
		if (*eol == '\r') {
			if (next < end && *next == '\n')
				next++;
			else if (next == end)
				held = 1;
		}
		if (p->raw.len + (size_t)(next - ev) > p->max_event)
			goto fail;
		if (line == NULL) {
			/* The line began in an earlier slice: make it whole. */
			if (buf_add(&p->raw, ev, (size_t)(eol - ev)) < 0)
				goto fail;
			ev = eol;
			ls = p->raw.data + p->line_off;
			ln = p->raw.len - p->line_off;
		} else {
			ls = line;
			ln = (size_t)(eol - line);
		}
		if (ln > 0 && process_line(p, ls, ln) < 0)
			goto fail;
		cur = next;
		line = next;
		p->line_in_raw = 0;
		if (held)
			p->skip_lf = 1;
		if (ln > 0)
			continue;
		if (held) {
			p->dispatch_held = 1;
			break;
		}
		rc = dispatch(p, ev, next);
		ev = next;
		if (rc != 0)
			goto stop;
	}
	/* Keep the unterminated rest of the event for the next feed. */
	if (ev < end) {
		if (p->raw.len + (size_t)(end - ev) > p->max_event)
			goto fail;
		if (line != NULL && line < end) {
			p->line_off = p->raw.len + (size_t)(line - ev);
			p->line_in_raw = 1;
		}
		if (buf_add(&p->raw, ev, (size_t)(end - ev)) < 0)
			goto fail;
	} else if (!p->has_data && !p->has_event) {
		/* Between events: a slow stream waits for its next one
		 * holding no memory. */
		buf_free(&p->raw);
		buf_free(&p->data);
		buf_free(&p->event);
	}
	return 0;
stop:
	event_reset(p);
	return rc;
fail:
	p->failed = 1;
	return -1;
}

/* Whether data is the "[DONE]" sentinel, blanks around allowed. */
int
sse_is_done(const char *data, size_t len)
{
	while (len > 0 && (data[0] == ' ' || data[0] == '\t')) {
		data++;
		len--;
	}
	while (len > 0 && (data[len - 1] == ' ' || data[len - 1] == '\t' ||
			   data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	return len == 6 && memcmp(data, "[DONE]", 6) == 0;
}
