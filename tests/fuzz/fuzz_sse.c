/*
 * fuzz_sse.c - the SSE parser (sse.c) fed in random slices.
 *
 * Input: a byte that seeds where the stream is cut, a byte that picks the
 * largest event (0: unlimited), then the stream. The stream is parsed in
 * one feed and again cut at random points (empty feeds included); both
 * must report the same events, hold the same unterminated bytes and fail
 * (an event past max_event) at the same event. Every byte belongs to one
 * event: the raw bytes of the events and the bytes held concatenate back
 * to the stream. A third run stops from the callback at some event.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "sse.h"

/* What one run reported: every event serialized, and the raw bytes. */
struct run {
	struct buf events;
	struct buf raw;
	int n;
	int stop_at; /* the callback returns 7 at this event (0: never) */
};

/* Appends a length-prefixed string, or a marker for NULL. */
static void
put(struct buf *b, const char *s, size_t n)
{
	uint64_t len = s != NULL ? (uint64_t)n : UINT64_MAX;

	buf_add(b, &len, sizeof(len));
	if (s != NULL)
		buf_add(b, s, n);
}

/* Records one event and checks what sse.h says of it. */
static int
on_event(const struct sse_event *ev, void *arg)
{
	struct run *r = arg;
	char last;

	FUZZ_CHECK(ev->raw_len > 0, "an event with no bytes");
	last = ev->raw[ev->raw_len - 1];
	FUZZ_CHECK(last == '\n' || last == '\r', "event ends in 0x%02x",
		   (unsigned char)last);
	FUZZ_CHECK(ev->data != NULL || ev->data_len == 0, "no data, length %zu",
		   ev->data_len);
	FUZZ_CHECK(ev->data == NULL || ev->data[ev->data_len] == '\0',
		   "data not NUL-terminated");
	FUZZ_CHECK(!ev->comment_only || (ev->data == NULL && ev->event == NULL),
		   "a comment-only event with fields");
	put(&r->events, ev->raw, ev->raw_len);
	put(&r->events, ev->event, ev->event != NULL ? strlen(ev->event) : 0);
	put(&r->events, ev->data, ev->data_len);
	buf_add(&r->events, &ev->comment_only, sizeof(ev->comment_only));
	buf_add(&r->raw, ev->raw, ev->raw_len);
	FUZZ_CHECK(!r->events.failed && !r->raw.failed, "out of memory");
	return ++r->n == r->stop_at ? 7 : 0;
}

/* Parses s in slices: one when seed is 0, else cut at random points.
 * Returns the first failure of a feed (-1), else 0; *pending gets the bytes
 * held at the end. */
static int
parse(const char *s, size_t len, uint32_t seed, size_t max_event, struct run *r,
      struct buf *pending)
{
	struct sse_parser *p = sse_parser_new(max_event, on_event, r);
	size_t off = 0, plen;
	const char *pb;
	int rc = 0;

	FUZZ_CHECK(p != NULL, "out of memory");
	while (rc == 0 && (off < len || seed == 0)) {
		size_t n = len - off;
		char *slice;

		if (seed != 0 && n > 0)
			n = fuzz_rand(&seed) % (n < 64 ? n + 1 : 65);
		/* An exact copy: a read past the slice is caught. */
		slice = malloc(n > 0 ? n : 1);
		FUZZ_CHECK(slice != NULL, "out of memory");
		memcpy(slice, s + off, n);
		rc = sse_parser_feed(p, slice, n);
		free(slice);
		off += n;
		if (rc == 7 && r->stop_at != 0)
			rc = 0; /* stopped by the callback: go on afresh */
		if (seed == 0)
			break;
	}
	FUZZ_CHECK(rc == 0 || rc == -1, "feed returned %d", rc);
	pb = sse_parser_pending(p, &plen);
	buf_add(pending, pb, plen);
	sse_parser_free(p);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint32_t seed = fuzz_take(&in) | 0x100;
	unsigned sel = fuzz_take(&in);
	size_t max_event = sel == 0 ? SIZE_MAX : sel * 4;
	const char *s = (const char *)in.p;
	struct run one = { BUF_INIT, BUF_INIT, 0, 0 };
	struct run cut = { BUF_INIT, BUF_INIT, 0, 0 };
	struct run stop = { BUF_INIT, BUF_INIT, 0, 0 };
	struct buf p1 = BUF_INIT, p2 = BUF_INIT, p3 = BUF_INIT;
	int rc1, rc2;

	rc1 = parse(s, in.n, 0, max_event, &one, &p1);
	rc2 = parse(s, in.n, seed, max_event, &cut, &p2);
	FUZZ_CHECK(rc1 == rc2, "one feed gives %d, slices give %d", rc1, rc2);
	FUZZ_CHECK(one.n == cut.n, "one feed gives %d events, slices %d", one.n,
		   cut.n);
	FUZZ_CHECK(fuzz_same(one.events.data, one.events.len, cut.events.data,
			     cut.events.len),
		   "the events differ when the stream is cut");
	if (rc1 == 0) {
		FUZZ_CHECK(fuzz_same(p1.data, p1.len, p2.data, p2.len),
			   "the held bytes differ when the stream is cut");
		buf_add(&one.raw, p1.data, p1.len);
		FUZZ_CHECK(fuzz_same(one.raw.data, one.raw.len, s, in.n),
			   "events and held bytes are not the stream");
	}
	/* Stopping from the callback: any event, then on afresh. */
	stop.stop_at = 1 + (int)(seed % 4);
	(void)parse(s, in.n, seed, max_event, &stop, &p3);

	buf_free(&one.events);
	buf_free(&one.raw);
	buf_free(&cut.events);
	buf_free(&cut.raw);
	buf_free(&stop.events);
	buf_free(&stop.raw);
	buf_free(&p1);
	buf_free(&p2);
	buf_free(&p3);
	return 0;
}
