/*
 * fuzz_translate_stream.c - streams translated both ways
 * (translate_stream.c), one upstream SSE event at a time.
 *
 * Input: a byte of options (direction, include_usage), then the upstream's
 * SSE stream. An event the translator refuses (-1) appends nothing; one it
 * takes appends whole SSE events whose data is a JSON object (or [DONE]
 * towards a chat client); once the terminal event is written nothing more
 * is appended.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "json.h"
#include "sse.h"
#include "translate.h"

struct run {
	struct tr_stream *tr;
	int to_chat;
	struct buf out;
};

/* Checks one event the translator wrote. */
static int
on_client_event(const struct sse_event *ev, void *arg)
{
	const struct run *r = arg;
	cJSON *o;

	FUZZ_CHECK(ev->data != NULL, "an event without data: %.*s",
		   (int)ev->raw_len, ev->raw);
	if (r->to_chat && sse_is_done(ev->data, ev->data_len))
		return 0;
	o = json_parse_exact(ev->data, ev->data_len);
	FUZZ_CHECK(cJSON_IsObject(o), "data is not a JSON object: %s",
		   ev->data);
	cJSON_Delete(o);
	return 0;
}

/* Translates one upstream event and checks what it appended. */
static int
on_event(const struct sse_event *ev, void *arg)
{
	struct run *r = arg;
	size_t before = r->out.len, held;
	int done = tr_stream_done(r->tr), rc;
	struct sse_parser *p;

	rc = tr_stream_event(r->tr, ev->event, ev->data, ev->data_len, &r->out);
	FUZZ_CHECK(rc == 0 || rc == -1, "returned %d", rc);
	FUZZ_CHECK(!r->out.failed, "out of memory");
	if (rc < 0 || done) {
		FUZZ_CHECK(r->out.len == before, "%zu bytes appended %s",
			   r->out.len - before,
			   done ? "after the end" : "for a refused event");
		return 0;
	}
	if (r->out.len == before)
		return 0;
	p = sse_parser_new(SIZE_MAX, on_client_event, r);
	FUZZ_CHECK(p != NULL, "out of memory");
	FUZZ_CHECK(sse_parser_feed(p, r->out.data + before,
				   r->out.len - before) == 0,
		   "feed failed");
	sse_parser_pending(p, &held);
	FUZZ_CHECK(held == 0, "an unterminated event: %s",
		   r->out.data + before);
	sse_parser_free(p);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned opt = fuzz_take(&in);
	struct run r = { NULL, opt & 1, BUF_INIT };
	struct sse_parser *p;

	r.tr = tr_stream_new(r.to_chat ? TR_ANTHROPIC_TO_CHAT
				       : TR_CHAT_TO_ANTHROPIC,
			     "m", (opt & 2) != 0, 1700000000);
	FUZZ_CHECK(r.tr != NULL, "out of memory");
	p = sse_parser_new(SIZE_MAX, on_event, &r);
	FUZZ_CHECK(p != NULL, "out of memory");
	FUZZ_CHECK(sse_parser_feed(p, (const char *)in.p, in.n) == 0,
		   "feed failed");
	FUZZ_CHECK(sse_parser_feed(p, "\n\n", 2) == 0, "feed failed");
	sse_parser_free(p);
	tr_stream_free(r.tr);
	buf_free(&r.out);
	return 0;
}
