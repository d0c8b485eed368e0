/*
 * fuzz_usage.c - usage extraction (usage.c) for every wire and flavor:
 * whole answers and stream events.
 *
 * Input: a byte that picks the wire, the flavor and whether the rest is a
 * JSON answer or an SSE stream. Usage found is never negative and never
 * found half (usage_from_body() zeroes what it does not return); the
 * stream's flags are the known ones; an event stripped of its usage is
 * JSON with no usage member left, at the top or in a choice. Usage read
 * from an answer's text is the tree's, and json_valid() takes only what
 * cJSON parses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "estimate.h"
#include "fuzz.h"
#include "json.h"
#include "sse.h"
#include "usage.h"

#define WIRES 5 /* enum wire */

/* Checks a usage that was found. */
static void
check_usage(const struct usage *u)
{
	FUZZ_CHECK(u->present, "usage found but not present");
	FUZZ_CHECK(u->prompt >= 0 && u->completion >= 0 && u->cached >= 0 &&
			   u->cache_write >= 0 && u->reasoning >= 0,
		   "negative count: %lld %lld %lld %lld %lld",
		   (long long)u->prompt, (long long)u->completion,
		   (long long)u->cached, (long long)u->cache_write,
		   (long long)u->reasoning);
}

/* Whether obj has a member named usage. */
static int
has_usage(const cJSON *obj)
{
	const cJSON *it;

	cJSON_ArrayForEach (it, obj)
		if (it->string != NULL && strcmp(it->string, "usage") == 0)
			return 1;
	return 0;
}

/* Checks usage_strip() on one event's data. */
static void
check_strip(const char *data, size_t len)
{
	char *out = usage_strip(data, len);
	cJSON *in = json_parse_exact(data, len), *o, *ch, *it;

	if (!cJSON_IsObject(in)) {
		FUZZ_CHECK(out == NULL, "stripped a non-object: %s", out);
		cJSON_Delete(in);
		return;
	}
	cJSON_Delete(in);
	FUZZ_CHECK(out != NULL, "an object not stripped");
	o = json_parse_exact(out, strlen(out));
	FUZZ_CHECK(cJSON_IsObject(o), "stripped text is no object: %s", out);
	FUZZ_CHECK(!has_usage(o), "usage left at the top: %s", out);
	ch = cJSON_GetObjectItemCaseSensitive(o, "choices");
	if (cJSON_IsArray(ch))
		cJSON_ArrayForEach (it, ch)
			FUZZ_CHECK(!cJSON_IsObject(it) || !has_usage(it),
				   "usage left in a choice: %s", out);
	cJSON_Delete(o);
	free(out);
}

/* The stream side: every event through usage_stream_event(). */
struct stream {
	struct usage_stream st;
	int64_t tokens;
};

static int
on_event(const struct sse_event *ev, void *arg)
{
	struct stream *s = arg;
	int flags =
		usage_stream_event(&s->st, ev->event, ev->data, ev->data_len);

	FUZZ_CHECK((flags & ~(USAGE_EV_HAS_USAGE | USAGE_EV_USAGE_ONLY |
			      USAGE_EV_DONE | USAGE_EV_BAD_JSON)) == 0,
		   "unknown flags %#x", (unsigned)flags);
	if (flags & USAGE_EV_HAS_USAGE)
		check_usage(&s->st.last);
	if (flags & USAGE_EV_DONE)
		FUZZ_CHECK(s->st.done, "a terminal event not remembered");
	FUZZ_CHECK(s->st.text_tokens >= s->tokens, "text tokens went down");
	s->tokens = s->st.text_tokens;
	if (ev->data != NULL)
		check_strip(ev->data, ev->data_len);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned sel = fuzz_take(&in);
	enum wire w = (enum wire)(sel % WIRES);
	enum flavor f = (enum flavor)(sel / WIRES % FLAVOR__COUNT);
	const char *s = (const char *)in.p;

	if (sel & 0x80) {
		struct stream st;
		struct sse_parser *p = sse_parser_new(SIZE_MAX, on_event, &st);

		FUZZ_CHECK(p != NULL, "out of memory");
		memset(&st, 0, sizeof(st));
		usage_stream_init(&st.st, w, f);
		FUZZ_CHECK(sse_parser_feed(p, s, in.n) == 0, "feed failed");
		/* The stream ends: the last blank line may be missing. */
		FUZZ_CHECK(sse_parser_feed(p, "\n\n", 2) == 0, "feed failed");
		sse_parser_free(p);
	} else {
		cJSON *body = json_parse_exact(s, in.n);
		struct usage u, t;

		FUZZ_CHECK(!json_valid(s, in.n) || body != NULL,
			   "json_valid() takes what cJSON refuses");
		{
			struct json_span v, name, want;
			size_t pos = 0, i = 0;
			int unsure,
				r = json_valid_member(s, in.n, "usage", &v,
						      &unsure),
				found = 0;

			while (i < in.n && strchr(" \t\r\n", s[i]) != NULL &&
			       s[i] != '\0')
				i++;
			FUZZ_CHECK((r >= 0) == (json_valid(s, in.n) &&
						i < in.n && s[i] == '{'),
				   "json_valid_member() and json_valid() "
				   "disagree");
			while (r >= 0 && !found &&
			       json_member_next(s, in.n, &pos, &name, &want) ==
				       1)
				found = json_name_is(s + name.start,
						     name.end - name.start,
						     "usage");
			FUZZ_CHECK(r < 0 || unsure || r == found,
				   "usage found %d, by stepping %d", r, found);
			FUZZ_CHECK(r != 1 || unsure ||
					   (v.start == want.start &&
					    v.end == want.end),
				   "usage at %zu..%zu, by stepping %zu..%zu",
				   v.start, v.end, want.start, want.end);
		}
		if (usage_from_text(s, in.n, w, &t) == 1) {
			FUZZ_CHECK(usage_from_body(body, w, f, &u) == 1 &&
					   memcmp(&u, &t, sizeof u) == 0,
				   "the text's usage is not the tree's");
		}
		if (usage_from_body(body, w, f, &u) == 1) {
			check_usage(&u);
		} else {
			struct usage zero;

			memset(&zero, 0, sizeof(zero));
			FUZZ_CHECK(memcmp(&u, &zero, sizeof(u)) == 0,
				   "usage not found but not zero");
		}
		if (body != NULL)
			FUZZ_CHECK(estimate_output(body, w,
						   estimate_for(NULL)) >= 0,
				   "negative output estimate");
		cJSON_Delete(body);
	}
	return 0;
}
