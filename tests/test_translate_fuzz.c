/*
 * test_translate_fuzz.c - malformed input to the translation: every
 * node of the fixtures replaced by a value of another type, every event
 * truncated at every byte, random bytes. Each must give NULL with a reason
 * or -1 with nothing written, never a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "tap.h"
#include "translate_util.h"

/* Runs fn on every single-node mutation of a fixture; counts outputs that
 * are valid JSON objects or refusals with a reason. */
enum fuzz_fn { F_CHAT_REQ, F_MSG_REQ, F_MSG_RESP, F_CHAT_RESP };

static void
fuzz_types(const char *file, enum fuzz_fn fn)
{
	static const char *const values[] = {
		"null", "7", "-1.5", "\"x\"", "[]", "{}", "[{}]", "true",
	};
	cJSON *base = load_json(file);
	int total = 0, good = 0;

	for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
		cJSON *with = J(values[v]);

		for (int k = 0;; k++) {
			cJSON *t = cJSON_Duplicate(base, 1);
			char *cause = NULL, *s = NULL;
			int n = k;
			size_t len = 0;
			cJSON *parsed;

			if (!replace_nth(t, &n, with)) {
				cJSON_Delete(t);
				break;
			}
			switch (fn) {
			case F_CHAT_REQ:
				s = tr_chat_to_messages(t, "m", 0, &len,
							&cause);
				break;
			case F_MSG_REQ:
				s = tr_messages_to_chat(t, "m", 1, 0, &len,
							&cause);
				break;
			case F_MSG_RESP:
				s = tr_messages_resp_to_chat(t, "m", 1, &len,
							     &cause);
				break;
			case F_CHAT_RESP:
				s = tr_chat_resp_to_messages(t, "m", &len,
							     &cause);
				break;
			}
			total++;
			parsed = s ? cJSON_ParseWithLength(s, len) : NULL;
			if ((s != NULL && cJSON_IsObject(parsed) &&
			     cause == NULL) ||
			    (s == NULL && cause != NULL && *cause != '\0'))
				good++;
			cJSON_Delete(parsed);
			free(s);
			free(cause);
			cJSON_Delete(t);
		}
		cJSON_Delete(with);
	}
	ok(total > 100 && good == total,
	   "%s: %d of %d mutated inputs give JSON or a reason", file, good,
	   total);
	cJSON_Delete(base);
}

/* Every event of a stream fixture is first fed truncated at every byte
 * (and with one byte flipped at every position): each must be refused
 * with nothing written, or accepted; the output of the whole run must
 * then equal a clean run's when only truncations are fed (a refused
 * event changes nothing). */
static void
fuzz_stream(const char *file, enum tr_stream_dir dir)
{
	struct evs in;
	struct buf clean = { 0 }, out = { 0 };
	struct tr_stream *tr;
	int fails, refused_ok = 1, nrefused = 0;

	load_sse(file, &in);
	tr = run_stream(dir, 1, &in, in.n, &clean, &fails);
	tr_stream_free(tr);
	tr = tr_stream_new(dir, "client-model", 1, CREATED);
	for (size_t i = 0; i < in.n; i++) {
		const struct ev *e = &in.v[i];

		for (size_t cut = 0; e->data != NULL && cut < e->len; cut++) {
			char *d = dup_n(e->data, cut);
			size_t before = out.len;

			if (tr_stream_event(tr, e->name, d, cut, &out) < 0) {
				nrefused++;
				if (out.len != before)
					refused_ok = 0;
			} else {
				/* a proper prefix is never a whole event */
				refused_ok = 0;
			}
			free(d);
		}
		if (tr_stream_event(tr, e->name, e->data, e->len, &out) < 0)
			refused_ok = 0;
	}
	tr_stream_free(tr);
	ok(refused_ok && nrefused > 0,
	   "%s: %d truncated events refused with nothing written", file,
	   nrefused);
	is_mem(out.data, out.len, clean.data, clean.len,
	       "%s: refused events left the translation unchanged", file);

	/* Flipped bytes: anything may be accepted, nothing may crash, and a
	 * refusal writes nothing. */
	refused_ok = 1;
	for (size_t i = 0; i < in.n; i++) {
		const struct ev *e = &in.v[i];

		for (size_t pos = 0; e->data != NULL && pos < e->len; pos++) {
			char *d = dup_n(e->data, e->len);
			size_t before;

			d[pos] = (char)(d[pos] ^ (0x01 << (pos % 7)));
			tr = run_stream(dir, 1, &in, i, &out, &fails);
			before = out.len;
			if (tr_stream_event(tr, e->name, d, e->len, &out) < 0 &&
			    out.len != before)
				refused_ok = 0;
			tr_stream_free(tr);
			buf_reset(&out, 0);
			free(d);
		}
	}
	ok(refused_ok, "%s: flipped bytes never crash, refusals write nothing",
	   file);
	buf_free(&out);
	buf_free(&clean);
	evs_free(&in);
}

/* Random bytes as error bodies always give a well-formed error. */
static void
fuzz_errors(void)
{
	uint32_t seed = 12345;
	int good = 0, total = 0;
	char buf[300];

	for (int round = 0; round < 2000; round++) {
		size_t n = round % 300;
		cJSON *a, *b;
		size_t la, lb;

		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (char)(seed >> 16);
			if (round % 2)
				buf[i] = "{}[]\":,ae 1\\"[(seed >> 8) % 12];
		}
		a = take(tr_error_to_chat(500, buf, n, &la), &la);
		b = take(tr_error_to_messages(500, buf, n, &lb), &lb);
		total++;
		if (js(a, "error.message") && js(a, "error.type") &&
		    js(b, "error.message") && js(b, "error.type"))
			good++;
		cJSON_Delete(a);
		cJSON_Delete(b);
	}
	is_int(good, total, "random error bodies give well-formed errors");
}

int
main(void)
{
	fuzz_types("../extra/openai-tools-request.json", F_CHAT_REQ);
	fuzz_types("../extra/anthropic-tools-request.json", F_MSG_REQ);
	fuzz_types("../extra/anthropic-tools.json", F_MSG_RESP);
	fuzz_types("../extra/openai-tools.json", F_CHAT_RESP);
	fuzz_stream("../extra/anthropic-tools-stream.sse",
		    TR_ANTHROPIC_TO_CHAT);
	fuzz_stream("../extra/openai-tools-stream.sse", TR_CHAT_TO_ANTHROPIC);
	fuzz_errors();
	return done_testing();
}
