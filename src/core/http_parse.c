/*
 * http_parse.c - HTTP/1.1 request heads and chunked bodies (http_parse.h).
 *
 * Principle: one reading, the strict one. A proxy in front of the gateway
 * and the gateway itself must never disagree on where a request ends, so
 * everything RFC 9112 lets a recipient "handle leniently" is refused
 * instead: bare CR or LF, folded lines, blanks before a colon, control
 * bytes, conflicting or malformed lengths, any transfer coding but chunked.
 * Every loop advances by a byte it never revisits, so an attacker's bytes
 * cost linear time however they are split.
 */
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "http_parse.h"

/* Fails a step with status and message. */
static enum hp_result
fail(struct hp_error *e, int status, const char *message)
{
	e->status = status;
	e->message = message;
	return HP_ERROR;
}

enum { SCAN_LINE, SCAN_CR };

enum hp_result
hp_scan_feed(struct hp_scan *s, const char *p, size_t n, size_t max_head,
	     size_t max_line, size_t max_headers, size_t *used,
	     struct hp_error *e)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (++s->len > max_head)
			return fail(e, 431,
				    "Request headers are larger than allowed.");
		if (s->state == SCAN_CR) {
			if (c != '\n')
				return fail(e, 400,
					    "Bare CR in the request head.");
			s->state = SCAN_LINE;
			if (s->line_len == 0 && s->lines == 0) {
				/* A blank line before the request line. */
				s->skipped = s->len;
				continue;
			}
			if (s->line_len == 0) {
				*used = i + 1;
				return HP_DONE;
			}
			if (++s->lines > max_headers + 1)
				return fail(e, 431,
					    "Too many request header fields.");
			s->line_len = 0;
			continue;
		}
		if (c == '\r') {
			s->state = SCAN_CR;
			continue;
		}
		if (c == '\n')
			return fail(e, 400, "Bare LF in the request head.");
		if (++s->line_len > max_line)
			return s->lines == 0
				       ? fail(e, 414, "Request line too long.")
				       : fail(e, 431,
					      "Request header field too long.");
	}
	*used = n;
	return HP_MORE;
}

/* RFC 9110's tchar: what a method or a field name is made of. */
static const unsigned char tchar[256] = {
	['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['!'] = 1,
	['#'] = 1,         ['$'] = 1,         ['%'] = 1,         ['&'] = 1,
	['\''] = 1,        ['*'] = 1,         ['+'] = 1,         ['-'] = 1,
	['.'] = 1,         ['^'] = 1,         ['_'] = 1,         ['`'] = 1,
	['|'] = 1,         ['~'] = 1,
};

static inline int
is_tchar(unsigned char c)
{
	return tchar[c];
}

/* Whether a byte may appear in a field value (blanks aside). */
static int
is_field_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

int
hp_header_is(const struct hp_header *h, const char *name)
{
	return strlen(name) == h->name_len &&
	       strncasecmp(h->name, name, h->name_len) == 0;
}

/* Whether value (len bytes) is word, ASCII case-insensitive. */
static int
value_is(const char *value, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(value, word, len) == 0;
}

/* Reads a Content-Length value: a list of decimal lengths that must all
 * agree ("42" or "42, 42"). The length, or -1. */
static int64_t
content_length(const char *v, size_t len)
{
	int64_t out = -1;
	size_t i = 0;

	for (;;) {
		int64_t n = 0;
		size_t digits = 0;
		while (i < len && v[i] >= '0' && v[i] <= '9') {
			if (++digits > 18)
				return -1;
			n = n * 10 + (v[i++] - '0');
		}
		if (digits == 0 || (out >= 0 && n != out))
			return -1;
		out = n;
		while (i < len && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (i == len)
			return out;
		if (v[i++] != ',')
			return -1;
		while (i < len && (v[i] == ' ' || v[i] == '\t'))
			i++;
	}
}

/* Notes what a Connection header's tokens say. */
static void
connection_tokens(const char *v, size_t len, int *close, int *keep)
{
	size_t i = 0;

	while (i < len) {
		size_t start, end;
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (value_is(v + start, end - start, "close"))
			*close = 1;
		else if (value_is(v + start, end - start, "keep-alive"))
			*keep = 1;
	}
}

/* Parses the request line "METHOD SP target SP HTTP/1.x" (len bytes,
 * without its CRLF). */
static enum hp_result
request_line(const char *p, size_t len, struct hp_head *h, struct hp_error *e)
{
	const char *end = p + len, *s = p;

	while (s < end && is_tchar((unsigned char)*s))
		s++;
	if (s == p || s == end || *s != ' ')
		return fail(e, 400, "Malformed request line.");
	h->method = p;
	h->method_len = (size_t)(s - p);
	h->target = ++s;
	while (s < end && (unsigned char)*s > 0x20 && (unsigned char)*s < 0x7f)
		s++;
	h->target_len = (size_t)(s - h->target);
	if (h->target_len == 0 || s == end || *s != ' ')
		return fail(e, 400, "Malformed request line.");
	if (h->target[0] != '/' && !(h->target_len == 1 && h->target[0] == '*'))
		return fail(e, 400,
			    "The request target must be a path (origin form).");
	s++;
	if ((size_t)(end - s) != 8 || memcmp(s, "HTTP/", 5) != 0 ||
	    s[5] < '0' || s[5] > '9' || s[6] != '.' || s[7] < '0' || s[7] > '9')
		return fail(e, 400, "Malformed request line.");
	if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
		return fail(e, 505, "Only HTTP/1.0 and HTTP/1.1 are served.");
	h->minor = s[7] - '0';
	return HP_DONE;
}

/* Parses one header line (len bytes, without its CRLF) into hd. */
static enum hp_result
header_line(const char *p, size_t len, struct hp_header *hd, struct hp_error *e)
{
	const char *end = p + len, *s = p, *v;

	while (s < end && is_tchar((unsigned char)*s))
		s++;
	if (s == p)
		return fail(e, 400,
			    *p == ' ' || *p == '\t'
				    ? "Folded header lines are not accepted."
				    : "Malformed header field name.");
	if (s == end || *s != ':')
		return fail(e, 400, "Malformed header field.");
	hd->name = p;
	hd->name_len = (size_t)(s - p);
	s++;
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	v = s;
	for (; s < end; s++)
		if (!is_field_byte((unsigned char)*s))
			return fail(e, 400,
				    "Control character in a header field.");
	while (s > v && (s[-1] == ' ' || s[-1] == '\t'))
		s--;
	hd->value = v;
	hd->value_len = (size_t)(s - v);
	return HP_DONE;
}

/* Applies what a header says about framing and the connection. */
static enum hp_result
framing(const struct hp_header *hd, struct hp_head *h, int *close, int *keep,
	int *te_seen, struct hp_error *e)
{
	if (hp_header_is(hd, "Content-Length")) {
		int64_t n = content_length(hd->value, hd->value_len);
		if (n < 0 || (h->content_length >= 0 && n != h->content_length))
			return fail(
				e, 400,
				n < 0 ? "Malformed Content-Length."
				      : "Conflicting Content-Length headers.");
		h->content_length = n;
	} else if (hp_header_is(hd, "Transfer-Encoding")) {
		if (*te_seen || !value_is(hd->value, hd->value_len, "chunked"))
			return fail(
				e, 400,
				"Only Transfer-Encoding: chunked is accepted.");
		*te_seen = 1;
		h->chunked = 1;
	} else if (hp_header_is(hd, "Connection")) {
		connection_tokens(hd->value, hd->value_len, close, keep);
	} else if (hp_header_is(hd, "Expect")) {
		if (!value_is(hd->value, hd->value_len, "100-continue"))
			return fail(e, 417,
				    "Only Expect: 100-continue is understood.");
		h->expect_continue = 1;
	}
	return HP_DONE;
}

enum hp_result
hp_parse_head(const char *p, size_t len, struct hp_head *h,
	      struct hp_header *hdrs, size_t max_headers, struct hp_error *e)
{
	const char *end = p + len, *line = p;
	int close = 0, keep = 0, te_seen = 0, first = 1;

	memset(h, 0, sizeof *h);
	h->content_length = -1;
	for (;;) {
		const char *eol = line;
		enum hp_result r;

		while (eol < end && *eol != '\r' && *eol != '\n')
			eol++;
		if (eol + 1 >= end || eol[0] != '\r' || eol[1] != '\n')
			return fail(e, 400, "Malformed request head.");
		if (eol == line) {
			if (first)
				return fail(e, 400, "Malformed request line.");
			break;
		}
		if (first) {
			r = request_line(line, (size_t)(eol - line), h, e);
			first = 0;
		} else if (h->nheaders >= max_headers) {
			return fail(e, 431, "Too many request header fields.");
		} else {
			struct hp_header *hd = &hdrs[h->nheaders++];
			r = header_line(line, (size_t)(eol - line), hd, e);
			if (r == HP_DONE)
				r = framing(hd, h, &close, &keep, &te_seen, e);
		}
		if (r != HP_DONE)
			return r;
		line = eol + 2;
	}
	if (line + 2 != end)
		return fail(e, 400, "Malformed request head.");
	if (h->chunked && (h->content_length >= 0 || h->minor == 0))
		return fail(
			e, 400,
			h->minor == 0
				? "Transfer-Encoding needs HTTP/1.1."
				: "Both Content-Length and Transfer-Encoding were sent.");
	h->keep_alive = h->minor == 1 ? !close : keep && !close;
	return HP_DONE;
}

enum {
	CH_SIZE,       /* hex digits of a chunk's size */
	CH_SIZE_BLANK, /* blanks after the size */
	CH_EXT,        /* a chunk extension, up to CR */
	CH_SIZE_LF,    /* the LF ending a size line */
	CH_DATA,       /* the chunk's bytes */
	CH_DATA_CR,    /* the CRLF after them */
	CH_DATA_LF,
	CH_TRAILER_START, /* start of a trailer line, or the final CRLF */
	CH_TRAILER,       /* a trailer line, up to CR */
	CH_TRAILER_LF,
	CH_END_LF, /* the last LF */
};

/* The value of a hex digit, or -1. */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum hp_result
hp_chunked_feed(struct hp_chunked *c, const char *p, size_t n, struct buf *out,
		size_t max_body, size_t max_overhead, size_t *used,
		struct hp_error *e)
{
	size_t i = 0;

	while (i < n) {
		char ch = p[i];
		int d;

		if (c->state == CH_DATA) {
			size_t take = n - i;
			if (take > c->left)
				take = (size_t)c->left;
			if (out->len + take > max_body)
				return fail(
					e, 413,
					"Request body is larger than allowed.");
			if (buf_add(out, p + i, take) != 0)
				return fail(e, 500, "Out of memory.");
			i += take;
			c->left -= take;
			if (c->left == 0)
				c->state = CH_DATA_CR;
			continue;
		}
		if (++c->overhead > max_overhead)
			return fail(e, 400, "Chunk framing is too large.");
		i++;
		switch (c->state) {
		case CH_SIZE:
			d = hexval(ch);
			if (d >= 0) {
				if (++c->digits > 15)
					return fail(e, 413,
						    "Chunk size is too large.");
				c->left = c->left * 16 + (uint64_t)d;
				break;
			}
			if (c->digits == 0)
				return fail(e, 400, "Malformed chunk size.");
			if (ch == ' ' || ch == '\t')
				c->state = CH_SIZE_BLANK;
			else if (ch == ';')
				c->state = CH_EXT;
			else if (ch == '\r')
				c->state = CH_SIZE_LF;
			else
				return fail(e, 400, "Malformed chunk size.");
			break;
		case CH_SIZE_BLANK:
			if (ch == ';')
				c->state = CH_EXT;
			else if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (ch != ' ' && ch != '\t')
				return fail(e, 400, "Malformed chunk size.");
			break;
		case CH_EXT:
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (!is_field_byte((unsigned char)ch))
				return fail(e, 400,
					    "Malformed chunk extension.");
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return fail(e, 400,
					    "Bare CR in chunk framing.");
			c->digits = 0;
			c->state = c->left > 0 ? CH_DATA : CH_TRAILER_START;
			break;
		case CH_DATA_CR:
			if (ch != '\r')
				return fail(e, 400,
					    "Chunk data longer than its size.");
			c->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return fail(e, 400,
					    "Bare CR in chunk framing.");
			c->state = CH_SIZE;
			break;
		case CH_TRAILER_START:
			if (ch == '\r') {
				c->state = CH_END_LF;
				break;
			}
			if (!is_tchar((unsigned char)ch))
				return fail(e, 400, "Malformed trailer field.");
			c->state = CH_TRAILER;
			break;
		case CH_TRAILER:
			if (ch == '\r')
				c->state = CH_TRAILER_LF;
			else if (!is_field_byte((unsigned char)ch))
				return fail(e, 400, "Malformed trailer field.");
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return fail(e, 400,
					    "Bare CR in chunk framing.");
			c->state = CH_TRAILER_START;
			break;
		case CH_END_LF:
			if (ch != '\n')
				return fail(e, 400,
					    "Bare CR in chunk framing.");
			*used = i;
			return HP_DONE;
		}
	}
	*used = n;
	return HP_MORE;
}

/* The reason phrases the gateway sends. */
static const struct {
	int status;
	const char *reason;
} reasons[] = {
	{ 100, "Continue" },
	{ 200, "OK" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 402, "Payment Required" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 408, "Request Timeout" },
	{ 409, "Conflict" },
	{ 413, "Payload Too Large" },
	{ 414, "URI Too Long" },
	{ 417, "Expectation Failed" },
	{ 422, "Unprocessable Entity" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" },
	{ 529, "Overloaded" },
};

const char *
hp_reason(int status)
{
	for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	if (status < 300)
		return "OK";
	return status < 500 ? "Client Error" : "Server Error";
}
