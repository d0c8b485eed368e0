/*
 * test_http_parse.c - the HTTP/1.1 request reader (http_parse.c).
 *
 * Heads are fed whole, byte by byte and in every two-piece split; all must
 * find the same end. Then the readings an attacker would try: conflicting
 * framing, bare CR and LF, folding, control bytes, oversized lines and
 * heads, too many fields, HTTP versions; chunked bodies in every split,
 * with extensions and trailers, and the malformed ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http_parse.h"
#include "tap.h"

#define MAX_HEAD    8192
#define MAX_HEADERS 16

/* Feeds p in pieces of step bytes (0: whole); the scan's result, with the
 * head's length (leading blank lines excluded) in *head_len and its start
 * in *head_off. */
static enum hp_result
scan(const char *p, size_t n, size_t step, size_t *head_off, size_t *head_len,
     struct hp_error *e)
{
	struct hp_scan s;
	size_t off = 0;

	memset(&s, 0, sizeof s);
	while (off < n) {
		size_t take = step == 0 || n - off < step ? n - off : step,
		       used;
		enum hp_result r =
			hp_scan_feed(&s, p + off, take, MAX_HEAD, MAX_HEAD,
				     MAX_HEADERS, &used, e);
		if (r == HP_DONE) {
			*head_off = s.skipped;
			*head_len = s.len - s.skipped;
			return r;
		}
		if (r == HP_ERROR)
			return r;
		off += take;
	}
	return HP_MORE;
}

/* Scans p whole, byte by byte and split in two everywhere: every way must
 * agree. Returns the whole scan's result. */
static enum hp_result
scan_all_ways(const char *name, const char *p, size_t *off, size_t *len,
	      struct hp_error *e)
{
	size_t n = strlen(p), o2, l2;
	enum hp_result whole = scan(p, n, 0, off, len, e), r;
	struct hp_error e2;
	int agree = 1;

	r = scan(p, n, 1, &o2, &l2, &e2);
	agree &= r == whole && (r != HP_DONE || (o2 == *off && l2 == *len));
	for (size_t cut = 1; cut < n && agree; cut++) {
		struct hp_scan s;
		size_t used;
		memset(&s, 0, sizeof s);
		r = hp_scan_feed(&s, p, cut, MAX_HEAD, MAX_HEAD, MAX_HEADERS,
				 &used, &e2);
		if (r == HP_MORE)
			r = hp_scan_feed(&s, p + cut, n - cut, MAX_HEAD,
					 MAX_HEAD, MAX_HEADERS, &used, &e2);
		agree &= r == whole;
	}
	ok(agree, "%s: whole, byte by byte and in two pieces agree", name);
	return whole;
}

/* Parses a complete request head; HP_DONE or HP_ERROR with e. */
static enum hp_result
parse(const char *name, const char *p, struct hp_head *h,
      struct hp_header *hdrs, struct hp_error *e)
{
	size_t off = 0, len = 0;
	enum hp_result r = scan_all_ways(name, p, &off, &len, e);

	if (r != HP_DONE)
		return r;
	return hp_parse_head(p + off, len, h, hdrs, MAX_HEADERS, e);
}

/* A request that must be refused with status, its message containing
 * what. */
static void
refused(const char *name, const char *p, int status, const char *what)
{
	struct hp_head h;
	struct hp_header hdrs[MAX_HEADERS];
	struct hp_error e = { 0, "" };
	enum hp_result r = parse(name, p, &h, hdrs, &e);

	ok(r == HP_ERROR && e.status == status &&
		   strstr(e.message, what) != NULL,
	   "%s: refused %d (%s)", name, status,
	   r == HP_ERROR ? e.message : "accepted");
}

static void
test_heads(void)
{
	struct hp_head h;
	struct hp_header hdrs[MAX_HEADERS];
	struct hp_error e;
	const char *req = "\r\nPOST /v1/chat/completions?x=1 HTTP/1.1\r\n"
			  "Host: gw\r\n"
			  "Content-Length: 42\r\n"
			  "X-Blank:   padded value \t\r\n"
			  "Expect: 100-continue\r\n"
			  "\r\nBODY";
	size_t off, len;

	is_int(scan_all_ways("well-formed", req, &off, &len, &e), HP_DONE,
	       "well-formed: the head ends");
	is_int((long long)off, 2, "a blank line before the request is skipped");
	is_int((long long)(off + len), (long long)strlen(req) - 4,
	       "the head ends before the body");
	is_int(hp_parse_head(req + off, len, &h, hdrs, MAX_HEADERS, &e),
	       HP_DONE, "well-formed: parsed");
	is_mem(h.method, h.method_len, "POST", 4, "method");
	is_mem(h.target, h.target_len, "/v1/chat/completions?x=1", 24,
	       "target");
	is_int(h.minor, 1, "HTTP/1.1");
	is_int(h.content_length, 42, "Content-Length");
	is_int(h.keep_alive, 1, "HTTP/1.1 keeps the connection");
	is_int(h.expect_continue, 1, "Expect: 100-continue");
	is_int((long long)h.nheaders, 4, "four fields");
	is_mem(hdrs[2].value, hdrs[2].value_len, "padded value", 12,
	       "a value loses its surrounding blanks");

	ok(parse("HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", &h, hdrs, &e) ==
			   HP_DONE &&
		   h.keep_alive == 0 && h.content_length == -1,
	   "HTTP/1.0 closes by default, no length");
	ok(parse("keep-alive 1.0",
		 "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h, hdrs,
		 &e) == HP_DONE &&
		   h.keep_alive == 1,
	   "HTTP/1.0 with Connection: keep-alive");
	ok(parse("close", "GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n",
		 &h, hdrs, &e) == HP_DONE &&
		   h.keep_alive == 0,
	   "Connection: close among tokens");
	ok(parse("same lengths",
		 "POST / HTTP/1.1\r\nContent-Length: 5\r\n"
		 "Content-Length: 5, 5\r\n\r\n",
		 &h, hdrs, &e) == HP_DONE &&
		   h.content_length == 5,
	   "repeated Content-Length values that agree are one length");
	ok(parse("chunked",
		 "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", &h,
		 hdrs, &e) == HP_DONE &&
		   h.chunked == 1,
	   "Transfer-Encoding: chunked (any case)");
	ok(parse("options *", "OPTIONS * HTTP/1.1\r\n\r\n", &h, hdrs, &e) ==
			   HP_DONE &&
		   h.target_len == 1,
	   "OPTIONS * is a target");

	refused("two lengths",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		400, "Conflicting Content-Length");
	refused("a list of lengths",
		"POST / HTTP/1.1\r\nContent-Length: 5,6\r\n\r\n", 400,
		"Malformed Content-Length");
	refused("a signed length",
		"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400,
		"Malformed Content-Length");
	refused("a huge length",
		"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
		400, "Malformed Content-Length");
	refused("gzip",
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		400, "Only Transfer-Encoding: chunked");
	refused("two codings",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
		"Transfer-Encoding: chunked\r\n\r\n",
		400, "Only Transfer-Encoding: chunked");
	refused("both framings",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
		"Content-Length: 3\r\n\r\n",
		400, "Both Content-Length and Transfer-Encoding");
	refused("chunked on 1.0",
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
		"needs HTTP/1.1");
	refused("bare LF", "GET / HTTP/1.1\nHost: x\n\n", 400, "Bare LF");
	refused("bare CR", "GET / HTTP/1.1\rHost: x\r\n\r\n", 400, "Bare CR");
	refused("folding", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400,
		"Folded");
	refused("space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400,
		"Malformed header field");
	refused("no colon", "GET / HTTP/1.1\r\nHost x\r\n\r\n", 400,
		"Malformed header field");
	refused("NUL in a value", "GET / HTTP/1.1\r\nX: a\001b\r\n\r\n", 400,
		"Control character");
	refused("DEL in a value", "GET / HTTP/1.1\r\nX: a\177b\r\n\r\n", 400,
		"Control character");
	refused("absolute form", "GET http://x/ HTTP/1.1\r\n\r\n", 400,
		"origin form");
	refused("two spaces", "GET  / HTTP/1.1\r\n\r\n", 400,
		"Malformed request line");
	refused("no version", "GET /\r\n\r\n", 400, "Malformed request line");
	refused("HTTP/2", "PRI * HTTP/2.0\r\n\r\n", 505,
		"HTTP/1.0 and HTTP/1.1");
	refused("HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", 505,
		"HTTP/1.0 and HTTP/1.1");
	refused("lowercase version", "GET / http/1.1\r\n\r\n", 400,
		"Malformed request line");
	refused("non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400,
		"Malformed request line");
	refused("Expect other", "POST / HTTP/1.1\r\nExpect: x\r\n\r\n", 417,
		"100-continue");
}

static void
test_limits(void)
{
	struct hp_scan s;
	struct hp_error e;
	char *big = malloc(MAX_HEAD * 2);
	size_t used, n;
	enum hp_result r;

	/* A request line longer than allowed: 414. */
	n = (size_t)snprintf(big, MAX_HEAD * 2, "GET /%0*d", MAX_HEAD, 0);
	memset(&s, 0, sizeof s);
	r = hp_scan_feed(&s, big, n, MAX_HEAD * 2, 1024, MAX_HEADERS, &used,
			 &e);
	ok(r == HP_ERROR && e.status == 414, "a long request line: 414");

	/* A header field longer than allowed: 431. */
	n = (size_t)snprintf(big, MAX_HEAD * 2, "GET / HTTP/1.1\r\nX: %0*d",
			     2000, 0);
	memset(&s, 0, sizeof s);
	r = hp_scan_feed(&s, big, n, MAX_HEAD * 2, 1024, MAX_HEADERS, &used,
			 &e);
	ok(r == HP_ERROR && e.status == 431, "a long header field: 431");

	/* A head over max_head, fed a byte at a time: 431 at the limit. */
	memset(&s, 0, sizeof s);
	memset(big, 'a', MAX_HEAD * 2);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	r = HP_MORE;
	for (n = 0; n < MAX_HEAD * 2 && r == HP_MORE; n++)
		r = hp_scan_feed(&s, big + n, 1, MAX_HEAD, MAX_HEAD * 2,
				 MAX_HEADERS, &used, &e);
	ok(r == HP_ERROR && e.status == 431 && n == MAX_HEAD + 1,
	   "a head over the limit is refused at its limit (%zu)", n);

	/* Blank lines forever before a request count against the head. */
	memset(&s, 0, sizeof s);
	for (n = 0; n < MAX_HEAD; n += 2)
		memcpy(big + n, "\r\n", 2);
	r = hp_scan_feed(&s, big, MAX_HEAD, MAX_HEAD - 10, MAX_HEAD,
			 MAX_HEADERS, &used, &e);
	ok(r == HP_ERROR && e.status == 431, "endless blank lines: 431");

	/* More fields than allowed: 431, found by the scan. */
	memset(&s, 0, sizeof s);
	n = 0;
	n += (size_t)sprintf(big + n, "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= MAX_HEADERS; i++)
		n += (size_t)sprintf(big + n, "X%d: y\r\n", i);
	r = hp_scan_feed(&s, big, n, MAX_HEAD, MAX_HEAD, MAX_HEADERS, &used,
			 &e);
	ok(r == HP_ERROR && e.status == 431 &&
		   strstr(e.message, "Too many") != NULL,
	   "%d fields: 431", MAX_HEADERS + 1);
	free(big);
}

/* Decodes a chunked body fed in pieces of step bytes (0: whole). */
static enum hp_result
dechunk(const char *p, size_t n, size_t step, struct buf *out, size_t *end,
	struct hp_error *e)
{
	struct hp_chunked c;
	size_t off = 0;

	memset(&c, 0, sizeof c);
	buf_reset(out, 0);
	while (off < n) {
		size_t take = step == 0 || n - off < step ? n - off : step,
		       used;
		enum hp_result r = hp_chunked_feed(&c, p + off, take, out, 1000,
						   200, &used, e);
		if (r == HP_DONE) {
			*end = off + used;
			return r;
		}
		if (r == HP_ERROR)
			return r;
		off += take;
	}
	return HP_MORE;
}

static void
test_chunked(void)
{
	const char *body = "5;ext=1\r\nhello\r\n1\r\n,\r\nA  \r\n0123456789\r\n"
			   "0\r\nTrailer: x\r\n\r\nNEXT";
	struct buf out = BUF_INIT;
	struct hp_error e;
	size_t end = 0, n = strlen(body);
	int same = 1;

	is_int(dechunk(body, n, 0, &out, &end, &e), HP_DONE, "chunked: done");
	is_mem(out.data, out.len, "hello,0123456789", 16, "chunked: the data");
	is_int((long long)end, (long long)n - 4,
	       "chunked: ends before the next request");
	for (size_t step = 1; step < n; step++) {
		size_t end2 = 0;
		same &= dechunk(body, n, step, &out, &end2, &e) == HP_DONE &&
			out.len == 16 &&
			memcmp(out.data, "hello,0123456789", 16) == 0 &&
			end2 == end;
	}
	ok(same, "chunked: every piece size decodes the same");

	ok(dechunk("3\r\nabcd\r\n0\r\n\r\n", 15, 0, &out, &end, &e) == HP_ERROR,
	   "chunked: data longer than its size is refused");
	ok(dechunk("x\r\n", 3, 0, &out, &end, &e) == HP_ERROR,
	   "chunked: a size that is not hex");
	ok(dechunk("3\nabc\r\n", 7, 0, &out, &end, &e) == HP_ERROR,
	   "chunked: a bare LF");
	ok(dechunk("fffffffffffffffff\r\n", 19, 0, &out, &end, &e) ==
			   HP_ERROR &&
		   e.status == 413,
	   "chunked: a size past 15 hex digits: 413");
	ok(dechunk("3e9\r\n", 5, 0, &out, &end, &e) == HP_MORE,
	   "chunked: a large chunk waits for its data");
	{
		char big[1100];
		memset(big, 'a', sizeof big);
		memcpy(big, "44c\r\n", 5);
		ok(dechunk(big, sizeof big, 0, &out, &end, &e) == HP_ERROR &&
			   e.status == 413,
		   "chunked: data past the body limit: 413");
	}
	{
		char ext[300];
		memset(ext, 'x', sizeof ext);
		memcpy(ext, "1;", 2);
		ok(dechunk(ext, sizeof ext, 0, &out, &end, &e) == HP_ERROR &&
			   e.status == 400,
		   "chunked: endless extensions are refused");
	}
	buf_free(&out);
}

int
main(void)
{
	test_heads();
	test_limits();
	test_chunked();
	is_str(hp_reason(431), "Request Header Fields Too Large",
	       "reason phrase of 431");
	return done_testing();
}
