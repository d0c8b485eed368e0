/*
 * http_parse.h - HTTP/1.1 requests as bytes: where a head ends, what it
 * says, how its body is framed, and chunked bodies decoded.
 *
 * Pure functions over caller-owned bytes, so the server (httpd.c) decides
 * the I/O and the limits, and a fuzzer can drive every line of it. The
 * reading is strict where leniency lets two readers disagree: CRLF line
 * ends only, no folded lines, no space before a colon, one framing
 * (Content-Length values that all agree, or Transfer-Encoding: chunked
 * alone). Each refusal carries its HTTP status and a message fit for the
 * client.
 */
#ifndef TOLLGATE_HTTP_PARSE_H
#define TOLLGATE_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* What a step of parsing came to. */
enum hp_result {
	HP_DONE = 0,   /* complete */
	HP_MORE = 1,   /* needs more bytes */
	HP_ERROR = -1, /* malformed or over a limit: status and message */
};

/* A refusal: the HTTP status to answer and why. */
struct hp_error {
	int status; /* 400, 413, 414, 431, 501, 505 */
	const char *message;
};

/* Finding the end of a head across reads, in one pass over each byte:
 * zero it for each request, feed it every new byte in order. */
struct hp_scan {
	size_t len;      /* bytes of the head seen so far (leading blank
			    lines skipped are not counted) */
	size_t skipped;  /* blank lines' bytes before the request line */
	size_t lines;    /* lines ended so far */
	size_t line_len; /* bytes of the current line */
	int state;       /* where in a line end it is */
};

/* Feeds n bytes. HP_DONE when the head ended: *used is how many of these
 * bytes belong to it (or were skipped before it), the rest is the body or
 * the next request. HP_MORE when all n were used. HP_ERROR (e set) on a
 * bare CR or LF, a head over max_head bytes, a line longer than
 * max_line (414 for the request line, 431 for a header), or more than
 * max_headers header lines. */
enum hp_result hp_scan_feed(struct hp_scan *s, const char *p, size_t n,
			    size_t max_head, size_t max_line,
			    size_t max_headers, size_t *used,
			    struct hp_error *e);

/* A header as it was sent: pointers into the head. */
struct hp_header {
	const char *name;
	size_t name_len;
	const char *value; /* without leading or trailing blanks */
	size_t value_len;
};

/* A request head. Pointers are into the bytes parsed. */
struct hp_head {
	const char *method;
	size_t method_len;
	const char *target; /* as sent: a path and query, or "*" */
	size_t target_len;
	int minor; /* HTTP/1.<minor>: 0 or 1 */
	size_t nheaders;
	int64_t content_length; /* -1 when absent */
	int chunked;            /* Transfer-Encoding: chunked */
	int keep_alive;         /* the client may send another request */
	int expect_continue;    /* Expect: 100-continue */
};

/* Parses a complete head (len bytes, from the request line to the blank
 * line that ends it, as hp_scan_feed found it) into h, its headers into
 * hdrs (room for max_headers). HP_DONE or HP_ERROR with e set. */
enum hp_result hp_parse_head(const char *p, size_t len, struct hp_head *h,
			     struct hp_header *hdrs, size_t max_headers,
			     struct hp_error *e);

/* Whether a header's name is name (ASCII case-insensitive). */
int hp_header_is(const struct hp_header *h, const char *name);

/* A chunked body being decoded: zero it before the first byte. */
struct hp_chunked {
	int state;
	uint64_t left;   /* bytes left of the current chunk */
	size_t overhead; /* bytes of sizes, extensions and trailers */
	int digits;
};

/* Decodes n bytes of a chunked body, appending its data to out. *used is
 * how many bytes were consumed: all n on HP_MORE, up to the end of the
 * last chunk's trailers on HP_DONE. HP_ERROR (e set) when malformed, when
 * out would pass max_body bytes (413), or when sizes, extensions and
 * trailers pass max_overhead bytes. */
enum hp_result hp_chunked_feed(struct hp_chunked *c, const char *p, size_t n,
			       struct buf *out, size_t max_body,
			       size_t max_overhead, size_t *used,
			       struct hp_error *e);

/* The reason phrase the gateway sends with a status. */
const char *hp_reason(int status);

#endif
