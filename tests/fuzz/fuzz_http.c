/*
 * fuzz_http.c - the HTTP/1.1 request reader (http_parse.c) on any bytes.
 *
 * Input: one byte choosing the size of the pieces the head is scanned in
 * (1 to 17), then the bytes a client sent. The scan must end where a
 * scan of the whole ends, however it is cut; a head it finds is parsed
 * (a head, or a refusal with an HTTP status and a message); what follows
 * the head is decoded as a chunked body, in pieces too, which must agree
 * with one decoding of the whole.
 */
#include "buf.h"
#include "fuzz.h"
#include "http_parse.h"

#define MAX_HEAD    4096
#define MAX_LINE    2048
#define MAX_HEADERS 32
#define MAX_BODY    65536

/* Scans p in pieces of step bytes: the result; on HP_DONE *end is the
 * bytes up to the end of the head (blank lines skipped included). */
static enum hp_result
scan(const uint8_t *p, size_t n, size_t step, struct hp_scan *s, size_t *end)
{
	struct hp_error e;
	size_t off = 0;

	memset(s, 0, sizeof *s);
	while (off < n) {
		size_t take = n - off < step ? n - off : step, used = 0;
		enum hp_result r =
			hp_scan_feed(s, (const char *)p + off, take, MAX_HEAD,
				     MAX_LINE, MAX_HEADERS, &used, &e);
		if (r == HP_ERROR) {
			FUZZ_CHECK(e.status >= 400 && e.message != NULL,
				   "a refusal without a status");
			return r;
		}
		FUZZ_CHECK(used <= take, "used %zu of %zu", used, take);
		if (r == HP_DONE) {
			*end = off + used;
			return r;
		}
		off += take;
	}
	return HP_MORE;
}

/* Decodes p as a chunked body in pieces of step bytes into out. */
static enum hp_result
dechunk(const uint8_t *p, size_t n, size_t step, struct buf *out, size_t *end)
{
	struct hp_chunked c;
	struct hp_error e;
	size_t off = 0;

	memset(&c, 0, sizeof c);
	buf_reset(out, 0);
	while (off < n) {
		size_t take = n - off < step ? n - off : step, used = 0;
		enum hp_result r =
			hp_chunked_feed(&c, (const char *)p + off, take, out,
					MAX_BODY, 4096, &used, &e);
		FUZZ_CHECK(used <= take, "used %zu of %zu", used, take);
		FUZZ_CHECK(out->len <= MAX_BODY, "a body past its limit");
		if (r == HP_ERROR)
			return r;
		if (r == HP_DONE) {
			*end = off + used;
			return r;
		}
		off += take;
	}
	return HP_MORE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	size_t step = fuzz_take(&in) % 17 + 1, end = 0, end2 = 0, head_end;
	struct hp_scan whole, pieces;
	struct hp_head h;
	struct hp_header hdrs[MAX_HEADERS];
	struct hp_error e;
	struct buf a = BUF_INIT, b = BUF_INIT;
	enum hp_result r, r2;

	r = scan(in.p, in.n, in.n > 0 ? in.n : 1, &whole, &end);
	r2 = scan(in.p, in.n, step, &pieces, &end2);
	FUZZ_CHECK(r == r2 && (r != HP_DONE || end == end2),
		   "cut in pieces of %zu the head reads otherwise", step);
	if (r != HP_DONE)
		return 0;
	FUZZ_CHECK(whole.skipped <= whole.len && whole.len <= end,
		   "a head past its end");
	if (hp_parse_head((const char *)in.p + whole.skipped,
			  whole.len - whole.skipped, &h, hdrs, MAX_HEADERS,
			  &e) == HP_DONE) {
		FUZZ_CHECK(h.method_len > 0 && h.target_len > 0 &&
				   h.nheaders <= MAX_HEADERS,
			   "a head without a method or a target");
		FUZZ_CHECK(!(h.chunked && h.content_length >= 0),
			   "both framings accepted");
		for (size_t i = 0; i < h.nheaders; i++)
			FUZZ_CHECK(hdrs[i].name_len > 0, "an empty field name");
	} else {
		FUZZ_CHECK(e.status >= 400 && e.status <= 599 &&
				   e.message != NULL,
			   "a refusal without a status");
	}
	head_end = end;
	r = dechunk(in.p + head_end, in.n - head_end, in.n - head_end + 1, &a,
		    &end);
	r2 = dechunk(in.p + head_end, in.n - head_end, step, &b, &end2);
	FUZZ_CHECK(r == r2 &&
			   (r == HP_ERROR ||
			    fuzz_same(a.data, a.len, b.data, b.len)) &&
			   (r != HP_DONE || end == end2),
		   "a chunked body decodes otherwise in pieces of %zu", step);
	buf_free(&a);
	buf_free(&b);
	return 0;
}
