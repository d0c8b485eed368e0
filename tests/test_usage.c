/*
 * test_usage.c - table tests for usage extraction.
 *
 * Every success fixture of tests/fixtures/providers/README.md must give
 * exactly the counts that README lists (copied into the table below); json
 * fixtures go through usage_from_body(), sse fixtures through sse_parser
 * and usage_stream_event(). Every error fixture gives no usage. Then the
 * per-event flags, usage_strip() and hand-written edge cases.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "sse.h"
#include "usage.h"
#include "fixture.h"
#include "tap.h"

/* Bit for event number i of a stream (all fixtures have under 64). */
#define EV(i) (UINT64_C(1) << (i))

/* One success fixture and the README's numbers for it. */
struct success_case {
	const char *file;
	enum wire wire;
	enum flavor flavor;
	int64_t prompt, completion, cached, cache_write, reasoning, total;
	/* streams: which events carry each flag */
	uint64_t has_usage, usage_only, done;
};

static const struct success_case successes[] = {
	{ "openai-chat.json", WIRE_OPENAI_CHAT, FLAVOR_OPENAI, 1200, 85, 1024,
	  0, 0, 1285, 0, 0, 0 },
	{ "openai-chat-reasoning.json", WIRE_OPENAI_CHAT, FLAVOR_OPENAI, 30,
	  210, 0, 0, 192, 240, 0, 0, 0 },
	{ "openai-chat-stream.sse", WIRE_OPENAI_CHAT, FLAVOR_OPENAI, 25, 9, 0,
	  0, 0, 34, EV(4), EV(4), EV(5) },
	{ "openai-completions.json", WIRE_OPENAI_COMPLETIONS, FLAVOR_OPENAI, 5,
	  7, 0, 0, 0, 12, 0, 0, 0 },
	{ "openai-completions-stream.sse", WIRE_OPENAI_COMPLETIONS,
	  FLAVOR_OPENAI, 6, 7, 0, 0, 0, 13, EV(3), EV(3), EV(4) },
	{ "openai-embeddings.json", WIRE_OPENAI_EMBEDDINGS, FLAVOR_OPENAI, 16,
	  0, 0, 0, 0, 16, 0, 0, 0 },
	{ "openai-responses.json", WIRE_OPENAI_RESPONSES, FLAVOR_OPENAI, 1320,
	  310, 1024, 0, 256, 1630, 0, 0, 0 },
	{ "openai-responses-stream.sse", WIRE_OPENAI_RESPONSES, FLAVOR_OPENAI,
	  37, 11, 0, 0, 0, 48, EV(9), 0, EV(9) },
	{ "azure-openai-chat.json", WIRE_OPENAI_CHAT, FLAVOR_AZURE, 48, 112, 0,
	  0, 0, 160, 0, 0, 0 },
	{ "azure-openai-chat-stream.sse", WIRE_OPENAI_CHAT, FLAVOR_AZURE, 22, 8,
	  0, 0, 0, 30, EV(5), EV(5), EV(6) },
	{ "anthropic-messages.json", WIRE_ANTHROPIC, FLAVOR_ANTHROPIC, 2098,
	  120, 2048, 0, 0, 2218, 0, 0, 0 },
	{ "anthropic-messages-stream.sse", WIRE_ANTHROPIC, FLAVOR_ANTHROPIC,
	  1525, 42, 0, 1500, 0, 1567, EV(0) | EV(6), 0, EV(7) },
	{ "zhipu-chat.json", WIRE_OPENAI_CHAT, FLAVOR_ZHIPU, 16, 44, 0, 0, 0,
	  60, 0, 0, 0 },
	{ "zhipu-chat-stream.sse", WIRE_OPENAI_CHAT, FLAVOR_ZHIPU, 16, 38, 0, 0,
	  0, 54, EV(3), 0, EV(4) },
	{ "dashscope-chat.json", WIRE_OPENAI_CHAT, FLAVOR_DASHSCOPE, 30, 12, 0,
	  0, 0, 42, 0, 0, 0 },
	{ "dashscope-chat-stream.sse", WIRE_OPENAI_CHAT, FLAVOR_DASHSCOPE, 26,
	  13, 0, 0, 0, 39, EV(4), EV(4), EV(5) },
	{ "qianfan-chat.json", WIRE_OPENAI_CHAT, FLAVOR_QIANFAN, 8, 21, 0, 0, 0,
	  29, 0, 0, 0 },
	{ "qianfan-chat-stream.sse", WIRE_OPENAI_CHAT, FLAVOR_QIANFAN, 3, 11, 0,
	  0, 0, 14, EV(2), 0, EV(3) },
	{ "baichuan-chat.json", WIRE_OPENAI_CHAT, FLAVOR_BAICHUAN, 9, 14, 0, 0,
	  0, 23, 0, 0, 0 },
	{ "baichuan-chat-stream.sse", WIRE_OPENAI_CHAT, FLAVOR_BAICHUAN, 9, 12,
	  0, 0, 0, 21, EV(2), 0, EV(3) },
	{ "yi-chat.json", WIRE_OPENAI_CHAT, FLAVOR_YI, 14, 31, 0, 0, 0, 45, 0,
	  0, 0 },
	{ "yi-chat-stream.sse", WIRE_OPENAI_CHAT, FLAVOR_YI, 17, 6, 0, 0, 0, 23,
	  EV(3), 0, EV(4) },
	{ "moonshot-chat.json", WIRE_OPENAI_CHAT, FLAVOR_MOONSHOT, 19, 21, 0, 0,
	  0, 40, 0, 0, 0 },
	{ "moonshot-chat-stream.sse", WIRE_OPENAI_CHAT, FLAVOR_MOONSHOT, 19, 13,
	  0, 0, 0, 32, EV(3), 0, EV(4) },
	{ "deepseek-chat.json", WIRE_OPENAI_CHAT, FLAVOR_DEEPSEEK, 1100, 50,
	  1024, 0, 0, 1150, 0, 0, 0 },
	{ "deepseek-reasoner-chat.json", WIRE_OPENAI_CHAT, FLAVOR_DEEPSEEK, 18,
	  230, 0, 0, 205, 248, 0, 0, 0 },
	{ "deepseek-chat-stream.sse", WIRE_OPENAI_CHAT, FLAVOR_DEEPSEEK, 11, 11,
	  0, 0, 0, 22, EV(4), 0, EV(5) },
};

/* One error fixture: no usage whatever the wire. */
struct error_case {
	const char *file;
	enum wire wire;
	enum flavor flavor;
};

static const struct error_case errors[] = {
	{ "openai-error-401.json", WIRE_OPENAI_CHAT, FLAVOR_OPENAI },
	{ "openai-error-429.json", WIRE_OPENAI_CHAT, FLAVOR_OPENAI },
	{ "openai-error-429-quota.json", WIRE_OPENAI_CHAT, FLAVOR_OPENAI },
	{ "openai-error-403-region.json", WIRE_OPENAI_RESPONSES,
	  FLAVOR_OPENAI },
	{ "azure-openai-error-401.json", WIRE_OPENAI_CHAT, FLAVOR_AZURE },
	{ "azure-openai-error-429.json", WIRE_OPENAI_CHAT, FLAVOR_AZURE },
	{ "anthropic-error-401.json", WIRE_ANTHROPIC, FLAVOR_ANTHROPIC },
	{ "anthropic-error-429.json", WIRE_ANTHROPIC, FLAVOR_ANTHROPIC },
	{ "anthropic-error-400-credit.json", WIRE_ANTHROPIC, FLAVOR_ANTHROPIC },
	{ "anthropic-error-529.json", WIRE_ANTHROPIC, FLAVOR_ANTHROPIC },
	{ "zhipu-error-401.json", WIRE_OPENAI_CHAT, FLAVOR_ZHIPU },
	{ "zhipu-error-429.json", WIRE_OPENAI_CHAT, FLAVOR_ZHIPU },
	{ "zhipu-error-429-quota.json", WIRE_OPENAI_CHAT, FLAVOR_ZHIPU },
	{ "dashscope-error-401.json", WIRE_OPENAI_CHAT, FLAVOR_DASHSCOPE },
	{ "dashscope-error-429.json", WIRE_OPENAI_CHAT, FLAVOR_DASHSCOPE },
	{ "dashscope-error-400-arrearage.json", WIRE_OPENAI_CHAT,
	  FLAVOR_DASHSCOPE },
	{ "qianfan-error-401.json", WIRE_OPENAI_CHAT, FLAVOR_QIANFAN },
	{ "qianfan-error-429.json", WIRE_OPENAI_CHAT, FLAVOR_QIANFAN },
	{ "baichuan-error-429.json", WIRE_OPENAI_CHAT, FLAVOR_BAICHUAN },
	{ "baichuan-error-quota.json", WIRE_OPENAI_CHAT, FLAVOR_BAICHUAN },
	{ "moonshot-error-401.json", WIRE_OPENAI_CHAT, FLAVOR_MOONSHOT },
	{ "moonshot-error-429.json", WIRE_OPENAI_CHAT, FLAVOR_MOONSHOT },
	{ "moonshot-error-429-quota.json", WIRE_OPENAI_CHAT, FLAVOR_MOONSHOT },
	{ "deepseek-error-401.json", WIRE_OPENAI_CHAT, FLAVOR_DEEPSEEK },
	{ "deepseek-error-402.json", WIRE_OPENAI_CHAT, FLAVOR_DEEPSEEK },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* State of one stream run: the usage state plus per-event flag masks and
 * a copy of the data of every event, for later checks. */
struct stream_run {
	struct usage_stream st;
	uint64_t has_usage, usage_only, done, bad_json;
	int nev;
	char *data[64];
};

/* sse_parser callback that feeds usage_stream_event() and records flags. */
static int
stream_cb(const struct sse_event *ev, void *arg)
{
	struct stream_run *r = arg;
	int fl;

	fl = usage_stream_event(&r->st, ev->event, ev->data, ev->data_len);
	if (r->nev < 64) {
		if (fl & USAGE_EV_HAS_USAGE)
			r->has_usage |= EV(r->nev);
		if (fl & USAGE_EV_USAGE_ONLY)
			r->usage_only |= EV(r->nev);
		if (fl & USAGE_EV_DONE)
			r->done |= EV(r->nev);
		if (fl & USAGE_EV_BAD_JSON)
			r->bad_json |= EV(r->nev);
		r->data[r->nev] = ev->data ? strdup(ev->data) : NULL;
	}
	r->nev++;
	return 0;
}

/* Runs a .sse fixture through the parser into r; 0 or -1. */
static int
run_stream(const char *file, enum wire w, enum flavor f, struct stream_run *r)
{
	struct sse_parser *p;
	size_t len, plen;
	char *buf;
	int rc;

	memset(r, 0, sizeof(*r));
	usage_stream_init(&r->st, w, f);
	buf = read_fixture(file, &len);
	if (buf == NULL)
		return -1;
	p = sse_parser_new(1 << 20, stream_cb, r);
	if (p == NULL)
		abort();
	rc = sse_parser_feed(p, buf, len);
	(void)sse_parser_pending(p, &plen);
	sse_parser_free(p);
	free(buf);
	return rc == 0 && plen == 0 ? 0 : -1;
}

/* Frees the data copies of a stream run. */
static void
stream_run_free(struct stream_run *r)
{
	int i;

	for (i = 0; i < r->nev && i < 64; i++)
		free(r->data[i]);
}

/* Checks u against the expected numbers of one case. */
static void
check_counts(const char *file, const struct usage *u,
	     const struct success_case *c)
{
	ok(u->present, "%s: usage present", file);
	is_int(u->prompt, c->prompt, "%s: prompt", file);
	is_int(u->completion, c->completion, "%s: completion", file);
	is_int(u->cached, c->cached, "%s: cached", file);
	is_int(u->cache_write, c->cache_write, "%s: cache_write", file);
	is_int(u->reasoning, c->reasoning, "%s: reasoning", file);
	is_int(u->prompt + u->completion, c->total, "%s: total", file);
}

/* Every success fixture gives the README's numbers. */
static void
test_successes(void)
{
	const struct success_case *c;
	struct stream_run r;
	struct usage u;
	char *buf;
	size_t i, len, n;
	cJSON *body;

	for (i = 0; i < NELEM(successes); i++) {
		c = &successes[i];
		n = strlen(c->file);
		if (n > 4 && strcmp(c->file + n - 4, ".sse") == 0) {
			if (!is_int(run_stream(c->file, c->wire, c->flavor, &r),
				    0, "%s: stream parses", c->file))
				continue;
			check_counts(c->file, &r.st.last, c);
			ok(r.st.done, "%s: stream done", c->file);
			is_int(r.has_usage, c->has_usage,
			       "%s: events with usage", c->file);
			is_int(r.usage_only, c->usage_only,
			       "%s: usage-only events", c->file);
			is_int(r.done, c->done, "%s: terminal events", c->file);
			is_int(r.bad_json, 0, "%s: all data is JSON", c->file);
			stream_run_free(&r);
			continue;
		}
		buf = read_fixture(c->file, &len);
		if (!ok(buf != NULL, "%s: reads", c->file))
			continue;
		body = cJSON_ParseWithLength(buf, len);
		if (is_int(usage_from_text(buf, len, c->wire, &u), 1,
			   "%s: usage found in the text", c->file))
			check_counts(c->file, &u, c);
		free(buf);
		if (!ok(body != NULL, "%s: parses", c->file))
			continue;
		is_int(usage_from_body(body, c->wire, c->flavor, &u), 1,
		       "%s: usage found", c->file);
		check_counts(c->file, &u, c);
		cJSON_Delete(body);
	}
}

/* Every error fixture gives no usage. */
static void
test_errors(void)
{
	const struct error_case *c;
	struct usage u;
	cJSON *body;
	char *buf;
	size_t i, len;

	for (i = 0; i < NELEM(errors); i++) {
		c = &errors[i];
		buf = read_fixture(c->file, &len);
		if (!ok(buf != NULL, "%s: reads", c->file))
			continue;
		body = cJSON_ParseWithLength(buf, len);
		memset(&u, 0xff, sizeof(u));
		is_int(usage_from_text(buf, len, c->wire, &u), 0,
		       "%s: no usage in the text", c->file);
		ok(!u.present && u.prompt == 0, "%s: text usage cleared",
		   c->file);
		free(buf);
		if (!ok(body != NULL, "%s: parses", c->file))
			continue;
		memset(&u, 0xff, sizeof(u));
		is_int(usage_from_body(body, c->wire, c->flavor, &u), 0,
		       "%s: no usage", c->file);
		ok(!u.present && u.prompt == 0 && u.completion == 0,
		   "%s: usage cleared", c->file);
		cJSON_Delete(body);
	}
}

/* usage_from_text() reads what usage_from_body() reads, or leaves the
 * body to it. */
static void
test_text_cases(void)
{
	static const struct {
		const char *text;
		int found;   /* by usage_from_text() */
		int64_t sum; /* prompt + completion when found */
		const char *what;
	} cases[] = {
		{ "{\"id\":\"x\",\"usage\":{\"prompt_tokens\":3,"
		  "\"completion_tokens\":4}}",
		  1, 7, "top-level usage" },
		{ "{\"us\\u0061ge\":{\"prompt_tokens\":3,"
		  "\"completion_tokens\":4}}",
		  1, 7, "an escaped name" },
		{ "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4},"
		  "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":9}}",
		  1, 7, "the first of two, as cJSON takes it" },
		{ "{\"choices\":[{\"usage\":{\"prompt_tokens\":3,"
		  "\"completion_tokens\":4}}]}",
		  0, 0, "usage in a choice: left to the tree" },
		{ "{\"usage\":null,\"choices\":[{\"usage\":{"
		  "\"prompt_tokens\":3,\"completion_tokens\":4}}]}",
		  0, 0, "null usage: left to the tree" },
		{ "{\"usage\\u0000\":{\"prompt_tokens\":1,"
		  "\"completion_tokens\":1},\"usage\":{\"prompt_tokens\":3,"
		  "\"completion_tokens\":4}}",
		  0, 0, "a name with a NUL before it: left to the tree" },
		{ "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4},"
		  "\"x\\u0000\":1}",
		  1, 7, "a name with a NUL after it" },
		{ "{\"s\":\"a\\\"b\\\\c \xc3\xa9 \x7f\",\"usage\":{"
		  "\"prompt_tokens\":3,\"completion_tokens\":4}}",
		  1, 7, "escapes, UTF-8 and DEL in a string before it" },
		{ "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}} x",
		  0, 0, "trailing bytes" },
		{ "{\"s\":\"\\udc00\",\"usage\":{\"prompt_tokens\":3,"
		  "\"completion_tokens\":4}}",
		  0, 0, "a lone low surrogate (cJSON refuses it)" },
		{ "{\"s\":\"\\ud83d\\ude00\",\"n\":-1.5e+3,\"a\":[true,false,"
		  "null,{}],\"usage\":{\"prompt_tokens\":3,"
		  "\"completion_tokens\":4}}",
		  1, 7, "a pair, numbers, literals" },
		{ "{\"n\":01,\"usage\":{\"prompt_tokens\":3}}", 0, 0,
		  "a leading zero" },
		{ "{\"s\":\"a\tb\",\"usage\":{\"prompt_tokens\":3}}", 0, 0,
		  "a raw control byte in a string" },
		{ "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,"
		  "\"prompt_tokens_details\":{\"cached_tokens\":2},"
		  "\"completion_tokens_details\":{\"reasoning_tokens\":1}}}",
		  1, 7, "details" },
		{ "{\"usage\":{\"prompt_tokens\":1e3,\"completion_tokens\":4}}",
		  0, 0, "an exponent: cJSON's to read" },
		{ "{\"usage\":{\"prompt_tokens\":1234567890123456,"
		  "\"completion_tokens\":4}}",
		  0, 0, "sixteen digits: cJSON's to read" },
		{ "{\"usage\":{\"prompt_tokens\":\"3\",\"completion_tokens\":4}}",
		  0, 0, "a count in a string" },
		{ "", 0, 0, "nothing" },
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		const char *t = cases[i].text;
		cJSON *body = json_parse_exact(t, strlen(t));
		struct usage u, b;
		int found = usage_from_text(t, strlen(t), WIRE_OPENAI_CHAT, &u);

		is_int(found, cases[i].found, "text: %s", cases[i].what);
		if (found) {
			is_int(u.prompt + u.completion, cases[i].sum,
			       "text: %s: the counts", cases[i].what);
			usage_from_body(body, WIRE_OPENAI_CHAT, FLAVOR_OPENAI,
					&b);
			ok(memcmp(&u, &b, sizeof u) == 0,
			   "text: %s: as the tree reads it", cases[i].what);
		}
		cJSON_Delete(body);
	}
}

/* The stream without stream_options carries no usage. */
static void
test_no_usage_stream(void)
{
	struct stream_run r;

	if (!is_int(run_stream("openai-chat-stream-no-usage.sse",
			       WIRE_OPENAI_CHAT, FLAVOR_OPENAI, &r),
		    0, "no-usage stream parses"))
		return;
	ok(!r.st.last.present, "no-usage stream: no usage");
	is_int(r.st.last.prompt + r.st.last.completion, 0,
	       "no-usage stream: zero counts");
	is_int(r.has_usage | r.usage_only, 0,
	       "no-usage stream: no usage flags");
	is_int(r.done, EV(3), "no-usage stream: [DONE] is terminal");
	stream_run_free(&r);
}

/* Looks up obj.choices[0].<key>. */
static const cJSON *
choice0(const cJSON *root, const char *key)
{
	const cJSON *ch = cJSON_GetObjectItemCaseSensitive(root, "choices");

	return cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ch, 0), key);
}

/* usage_strip on a fixture's final chunk keeps content, drops usage. */
static void
check_strip(const char *file, enum flavor f, int idx, const char *content)
{
	struct stream_run r;
	struct usage_stream st;
	const cJSON *delta;
	cJSON *root, *orig, *it;
	char *out;

	if (run_stream(file, WIRE_OPENAI_CHAT, f, &r) != 0 || r.nev <= idx ||
	    r.data[idx] == NULL) {
		ok(0, "%s: final chunk found", file);
		return;
	}
	out = usage_strip(r.data[idx], strlen(r.data[idx]));
	if (!ok(out != NULL, "%s: strip succeeds", file))
		goto done;
	ok(strstr(out, "usage") == NULL, "%s: no usage left: %s", file, out);
	ok(strchr(out, '\n') == NULL, "%s: printed unformatted", file);
	/* The expected result: the original with its usage members deleted. */
	orig = cJSON_Parse(r.data[idx]);
	cJSON_DeleteItemFromObjectCaseSensitive(orig, "usage");
	cJSON_ArrayForEach (it,
			    cJSON_GetObjectItemCaseSensitive(orig, "choices"))
		cJSON_DeleteItemFromObjectCaseSensitive(it, "usage");
	root = cJSON_Parse(out);
	if (ok(root != NULL, "%s: stripped chunk is JSON", file)) {
		delta = choice0(root, "delta");
		is_str(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			       delta, "content")),
		       content, "%s: content kept", file);
		is_str(cJSON_GetStringValue(choice0(root, "finish_reason")),
		       "stop", "%s: finish_reason kept", file);
		ok(cJSON_Compare(root, orig, 1), "%s: everything else kept",
		   file);
		cJSON_Delete(root);
	}
	cJSON_Delete(orig);
	usage_stream_init(&st, WIRE_OPENAI_CHAT, f);
	is_int(usage_stream_event(&st, NULL, out, strlen(out)) &
		       (USAGE_EV_HAS_USAGE | USAGE_EV_USAGE_ONLY),
	       0, "%s: stripped chunk has no usage", file);
	free(out);
done:
	stream_run_free(&r);
}

/* usage_strip on the chunks that carry content and usage together. */
static void
test_strip(void)
{
	static const struct {
		const char *in, *want, *name;
	} cases[] = {
		{ "{\"a\": 1, \"usage\": {\"x\": 2}, "
		  "\"choices\": [{\"usage\": null, \"b\": 2}, 3]}",
		  "{\"a\":1,\"choices\":[{\"b\":2},3]}",
		  "every usage member removed, unformatted" },
		{ "{\"usage\": {\"x\": 2}, \"usage\": null, "
		  "\"choices\": [{\"usage\": 1, \"usage\": 2}]}",
		  "{\"choices\":[{}]}", "a repeated usage removed too" },
	};
	char *out;

	check_strip("baichuan-chat-stream.sse", FLAVOR_BAICHUAN, 2,
		    "\xE5\xA4\xA7\xE6\xA8\xA1\xE5\x9E\x8B\xE3\x80\x82");
	check_strip("qianfan-chat-stream.sse", FLAVOR_QIANFAN, 2, "");
	check_strip("moonshot-chat-stream.sse", FLAVOR_MOONSHOT, 3, NULL);
	check_strip("zhipu-chat-stream.sse", FLAVOR_ZHIPU, 3, "");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = usage_strip(cases[i].in, strlen(cases[i].in));
		is_str(out, cases[i].want, "strip: %s", cases[i].name);
		free(out);
	}
	out = usage_strip("{\"usage\":{}}   xyz", 12);
	is_str(out, "{}", "strip: data_len bounds the input");
	free(out);
	ok(usage_strip("not json", 8) == NULL, "strip: not JSON gives NULL");
	ok(usage_strip("[1,2]", 5) == NULL, "strip: not an object gives NULL");
	ok(usage_strip("{} {}", 5) == NULL, "strip: trailing data gives NULL");
}

/* One body edge case. */
struct body_case {
	const char *name;
	enum wire wire;
	const char *json;
	int found;
	int64_t prompt, completion, cached, cache_write, reasoning;
};

static const struct body_case body_cases[] = {
	{ "non-integral prompt", WIRE_OPENAI_CHAT,
	  "{\"usage\":{\"prompt_tokens\":1.5,\"completion_tokens\":2}}", 0, 0,
	  0, 0, 0, 0 },
	{ "negative completion", WIRE_OPENAI_CHAT,
	  "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":-2}}", 0, 0, 0,
	  0, 0, 0 },
	{ "string count", WIRE_OPENAI_CHAT,
	  "{\"usage\":{\"prompt_tokens\":\"12\",\"completion_tokens\":2}}", 0,
	  0, 0, 0, 0, 0 },
	{ "non-integral cached", WIRE_OPENAI_CHAT,
	  "{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,"
	  "\"prompt_tokens_details\":{\"cached_tokens\":2.5}}}",
	  0, 0, 0, 0, 0, 0 },
	{ "negative reasoning", WIRE_OPENAI_CHAT,
	  "{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,"
	  "\"completion_tokens_details\":{\"reasoning_tokens\":-1}}}",
	  0, 0, 0, 0, 0, 0 },
	{ "beyond 2^53", WIRE_OPENAI_CHAT,
	  "{\"usage\":{\"prompt_tokens\":9007199254740993,"
	  "\"completion_tokens\":1}}",
	  0, 0, 0, 0, 0, 0 },
	{ "huge counts 2^40 exact", WIRE_OPENAI_CHAT,
	  "{\"usage\":{\"prompt_tokens\":1099511627776,"
	  "\"completion_tokens\":1099511627777,"
	  "\"prompt_tokens_details\":{\"cached_tokens\":1099511627775}}}",
	  1, INT64_C(1099511627776), INT64_C(1099511627777),
	  INT64_C(1099511627775), 0, 0 },
	{ "largest exact count", WIRE_OPENAI_CHAT,
	  "{\"usage\":{\"prompt_tokens\":9007199254740991,"
	  "\"completion_tokens\":0}}",
	  1, INT64_C(9007199254740991), 0, 0, 0, 0 },
	{ "integral forms 12.0 and 1e2", WIRE_OPENAI_CHAT,
	  "{\"usage\":{\"prompt_tokens\":12.0,\"completion_tokens\":1e2}}", 1,
	  12, 100, 0, 0, 0 },
	{ "null usage", WIRE_OPENAI_CHAT, "{\"usage\":null}", 0, 0, 0, 0, 0,
	  0 },
	{ "empty usage", WIRE_OPENAI_CHAT, "{\"usage\":{}}", 0, 0, 0, 0, 0, 0 },
	{ "usage not an object", WIRE_OPENAI_CHAT, "{\"usage\":42}", 0, 0, 0, 0,
	  0, 0 },
	{ "body not an object", WIRE_OPENAI_CHAT, "[1]", 0, 0, 0, 0, 0, 0 },
	{ "deepseek cache hit without details", WIRE_OPENAI_CHAT,
	  "{\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":1,"
	  "\"prompt_cache_hit_tokens\":64,\"prompt_cache_miss_tokens\":36}}",
	  1, 100, 1, 64, 0, 0 },
	{ "details win over the deepseek count", WIRE_OPENAI_CHAT,
	  "{\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":1,"
	  "\"prompt_tokens_details\":{\"cached_tokens\":32},"
	  "\"prompt_cache_hit_tokens\":64}}",
	  1, 100, 1, 32, 0, 0 },
	{ "moonshot top-level cached_tokens", WIRE_OPENAI_CHAT,
	  "{\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":1,"
	  "\"cached_tokens\":80}}",
	  1, 100, 1, 80, 0, 0 },
	{ "usage inside choices", WIRE_OPENAI_CHAT,
	  "{\"choices\":[{\"usage\":{\"prompt_tokens\":3,"
	  "\"completion_tokens\":4}}]}",
	  1, 3, 4, 0, 0, 0 },
	{ "anthropic negative cache read", WIRE_ANTHROPIC,
	  "{\"usage\":{\"input_tokens\":1,\"cache_read_input_tokens\":-5,"
	  "\"output_tokens\":1}}",
	  0, 0, 0, 0, 0, 0 },
	{ "anthropic huge", WIRE_ANTHROPIC,
	  "{\"usage\":{\"input_tokens\":1099511627776,"
	  "\"cache_creation_input_tokens\":2,"
	  "\"cache_read_input_tokens\":3,\"output_tokens\":4}}",
	  1, INT64_C(1099511627781), 4, 3, 2, 0 },
	{ "responses cache writes", WIRE_OPENAI_RESPONSES,
	  "{\"usage\":{\"input_tokens\":500,\"input_tokens_details\":"
	  "{\"cached_tokens\":100,\"cache_write_tokens\":300},"
	  "\"output_tokens\":20,\"output_tokens_details\":"
	  "{\"reasoning_tokens\":5}}}",
	  1, 500, 20, 100, 300, 5 },
	{ "responses fractional output", WIRE_OPENAI_RESPONSES,
	  "{\"usage\":{\"input_tokens\":5,\"output_tokens\":0.5}}", 0, 0, 0, 0,
	  0, 0 },
};

/* Runs the body edge cases. */
static void
test_body_cases(void)
{
	const struct body_case *c;
	struct usage u;
	cJSON *body;
	size_t i;

	for (i = 0; i < NELEM(body_cases); i++) {
		c = &body_cases[i];
		body = cJSON_Parse(c->json);
		if (!ok(body != NULL, "%s: test JSON parses", c->name))
			continue;
		is_int(usage_from_body(body, c->wire, FLAVOR_OPENAI, &u),
		       c->found, "%s: found", c->name);
		is_int(u.present, c->found, "%s: present", c->name);
		is_int(u.prompt, c->prompt, "%s: prompt", c->name);
		is_int(u.completion, c->completion, "%s: completion", c->name);
		is_int(u.cached, c->cached, "%s: cached", c->name);
		is_int(u.cache_write, c->cache_write, "%s: cache_write",
		       c->name);
		is_int(u.reasoning, c->reasoning, "%s: reasoning", c->name);
		cJSON_Delete(body);
	}
}

/* Feeds one data string; returns the flags. */
static int
feed(struct usage_stream *st, const char *event, const char *data)
{
	return usage_stream_event(st, event, data, data ? strlen(data) : 0);
}

/* Stream edge cases: merging, replacing, terminal events, bad data. */
static void
test_stream_cases(void)
{
	struct usage_stream st;
	const struct usage *u = &st.last;

	/* Anthropic: latest value per field, never a sum. */
	usage_stream_init(&st, WIRE_ANTHROPIC, FLAVOR_ANTHROPIC);
	is_int(feed(&st, "message_start",
		    "{\"type\":\"message_start\","
		    "\"message\":{\"usage\":{\"input_tokens\":10,"
		    "\"cache_creation_input_tokens\":5,"
		    "\"cache_read_input_tokens\":3,\"output_tokens\":1}}}"),
	       USAGE_EV_HAS_USAGE, "anthropic: message_start has usage");
	is_int(feed(&st, "message_delta",
		    "{\"type\":\"message_delta\","
		    "\"usage\":{\"output_tokens\":7}}"),
	       USAGE_EV_HAS_USAGE, "anthropic: delta has usage");
	is_int(u->completion, 7, "anthropic: output replaced, not added");
	is_int(u->prompt, 18, "anthropic: input kept across the delta");
	is_int(feed(&st, "message_delta",
		    "{\"type\":\"message_delta\","
		    "\"usage\":{\"input_tokens\":12,\"output_tokens\":9}}"),
	       USAGE_EV_HAS_USAGE, "anthropic: second delta");
	is_int(u->prompt, 20, "anthropic: cumulative input replaces");
	is_int(u->cached, 3, "anthropic: cache read kept");
	is_int(u->cache_write, 5, "anthropic: cache write kept");
	is_int(u->completion, 9, "anthropic: latest output");
	is_int(feed(&st, "message_delta",
		    "{\"type\":\"message_delta\","
		    "\"usage\":{\"output_tokens\":9.5}}"),
	       0, "anthropic: a bad delta is not usage");
	is_int(u->completion, 9, "anthropic: a bad delta changes nothing");
	is_int(feed(&st, "ping", "{\"type\":\"ping\"}"), 0, "anthropic: ping");
	is_int(feed(&st, "error",
		    "{\"type\":\"error\",\"error\":"
		    "{\"type\":\"overloaded_error\"}}"),
	       0, "anthropic: error event carries nothing");
	ok(!st.done, "anthropic: not done before message_stop");
	is_int(feed(&st, "message_stop", "{\"type\":\"message_stop\"}"),
	       USAGE_EV_DONE, "anthropic: message_stop is terminal");
	ok(st.done, "anthropic: done");

	/* Chat: the last usage replaces; null never clears. */
	usage_stream_init(&st, WIRE_OPENAI_CHAT, FLAVOR_ZHIPU);
	feed(&st, NULL,
	     "{\"choices\":[{}],\"usage\":{\"prompt_tokens\":10,"
	     "\"completion_tokens\":2}}");
	feed(&st, NULL,
	     "{\"choices\":[{}],\"usage\":{\"prompt_tokens\":10,"
	     "\"completion_tokens\":5}}");
	is_int(u->completion, 5, "chat: last usage wins, no sum");
	is_int(feed(&st, NULL, "{\"choices\":[{}],\"usage\":null}"), 0,
	       "chat: null usage is no usage");
	ok(u->present && u->prompt == 10 && u->completion == 5,
	   "chat: null usage keeps the last one");
	is_int(feed(&st, NULL,
		    "{\"choices\":[],\"usage\":{\"prompt_tokens\":"
		    "1,\"completion_tokens\":1.5}}"),
	       USAGE_EV_USAGE_ONLY,
	       "chat: bad usage chunk is usage-only but not usage");
	is_int(u->completion, 5, "chat: bad usage keeps the last one");
	is_int(feed(&st, NULL, "{\"choices\":[],\"prompt_filter_results\":[]}"),
	       0, "chat: empty choices without usage is nothing");
	is_int(feed(&st, NULL, "{\"choices\":[],\"usage\":null}"), 0,
	       "chat: empty choices with null usage is nothing");
	is_int(feed(&st, NULL,
		    "{\"choices\":[{\"index\":0,\"usage\":"
		    "{\"prompt_tokens\":4,\"completion_tokens\":3}}]}"),
	       USAGE_EV_HAS_USAGE, "chat: usage inside choices");
	is_int(u->prompt, 4, "chat: choices usage read");
	is_int(feed(&st, NULL, "{oops"), USAGE_EV_BAD_JSON,
	       "chat: broken JSON flagged");
	is_int(feed(&st, NULL, "{} {}"), USAGE_EV_BAD_JSON,
	       "chat: trailing data flagged");
	is_int(feed(&st, NULL, NULL), 0, "chat: no data is nothing");
	ok(!st.done, "chat: not done before [DONE]");
	is_int(feed(&st, NULL, "[DONE]"), USAGE_EV_DONE, "chat: [DONE]");
	ok(st.done, "chat: done");
	is_int(u->prompt, 4, "chat: [DONE] keeps usage");
	usage_stream_init(&st, WIRE_OPENAI_CHAT, FLAVOR_OPENAI);
	is_int(feed(&st, NULL, " [DONE] "), USAGE_EV_DONE,
	       "chat: [DONE] with blanks");
	is_int(usage_stream_event(&st, NULL, "[DONE]xyz", 6), USAGE_EV_DONE,
	       "chat: data_len bounds the data");

	/* Responses: terminal events and response.usage. */
	usage_stream_init(&st, WIRE_OPENAI_RESPONSES, FLAVOR_OPENAI);
	is_int(feed(&st, "response.created",
		    "{\"type\":\"response.created\","
		    "\"response\":{\"usage\":null}}"),
	       0, "responses: created has no usage");
	is_int(feed(&st, "response.incomplete",
		    "{\"type\":\"response.incomplete\",\"response\":{\"usage\":"
		    "{\"input_tokens\":9,\"output_tokens\":4,"
		    "\"output_tokens_details\":{\"reasoning_tokens\":2}}}}"),
	       USAGE_EV_DONE | USAGE_EV_HAS_USAGE,
	       "responses: incomplete is terminal with usage");
	ok(u->prompt == 9 && u->completion == 4 && u->reasoning == 2,
	   "responses: incomplete usage read");
	usage_stream_init(&st, WIRE_OPENAI_RESPONSES, FLAVOR_OPENAI);
	is_int(feed(&st, "response.failed",
		    "{\"type\":\"response.failed\","
		    "\"response\":{\"usage\":null}}"),
	       USAGE_EV_DONE, "responses: failed is terminal");
	usage_stream_init(&st, WIRE_OPENAI_RESPONSES, FLAVOR_OPENAI);
	is_int(feed(&st, "response.completed",
		    "{\"response\":{\"usage\":"
		    "{\"input_tokens\":1,\"output_tokens\":2}}}"),
	       USAGE_EV_DONE | USAGE_EV_HAS_USAGE,
	       "responses: event name used when data has no type");
}

/* Flavor names and include_usage needs. */
static void
test_flavors(void)
{
	static const char *const needs[] = { "openai", "azure", "dashscope",
					     "qianfan" };
	static const char *const names[] = {
		"openai",  "azure",    "anthropic", "zhipu",    "dashscope",
		"qianfan", "baichuan", "yi",        "moonshot", "deepseek"
	};
	size_t i, j;
	int f, want;

	is_int(NELEM(names), FLAVOR__COUNT, "every flavor named");
	for (i = 0; i < NELEM(names); i++) {
		f = flavor_from_name(names[i]);
		is_int(f, (int)i, "flavor_from_name(%s)", names[i]);
		is_str(flavor_name((enum flavor)i), names[i],
		       "flavor_name(%zu)", i);
		want = 0;
		for (j = 0; j < NELEM(needs); j++)
			if (strcmp(needs[j], names[i]) == 0)
				want = 1;
		is_int(flavor_needs_include_usage((enum flavor)i), want,
		       "%s needs include_usage: %d", names[i], want);
	}
	is_int(flavor_from_name("gemini"), -1, "unknown flavor");
	is_int(flavor_from_name(""), -1, "empty flavor");
	is_int(flavor_from_name(NULL), -1, "NULL flavor");
	is_str(flavor_name(FLAVOR__COUNT), "unknown", "out-of-range name");
}

/* Runs all usage tests. */
int
main(void)
{
	test_successes();
	test_errors();
	test_text_cases();
	test_no_usage_stream();
	test_strip();
	test_body_cases();
	test_stream_cases();
	test_flavors();
	return done_testing();
}
