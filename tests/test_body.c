/*
 * test_body.c - body_read(): a body is read one way or refused.
 *
 * Each case is a body as a hostile client would write it: the same member
 * twice (plainly, escaped, nested), names that a case-blind reader takes
 * for one the gateway reads, bytes after the object, members of the wrong
 * type. Refusals must name the member; what passes must read as written.
 * And the edits the gateway makes to a forwarded body (json_edit_members)
 * must find members however their names are escaped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "buf.h"
#include "json.h"
#include "tap.h"

struct refused {
	const char *body;
	const char *param; /* the member the refusal names */
};

static const struct refused refused[] = {
	{ "{\"model\":\"a\",\"model\":\"b\"}", "model" },
	{ "{\"model\":\"a\",\"mod\\u0065l\":\"b\"}", "model" },
	{ "{\"\\u006d\\u006f\\u0064\\u0065\\u006c\":\"a\",\"model\":\"b\"}",
	  "model" },
	{ "{ \"model\" : \"a\" ,\n\t\"model\"\r\n:\"b\" }", "model" },
	{ "{\"model\":\"a\",\"stream\":false,\"stream\":true}", "stream" },
	{ "{\"model\":\"a\",\"max_tokens\":5,\"max_tokens\":5000}",
	  "max_tokens" },
	{ "{\"model\":\"a\",\"stream_options\":{\"include_usage\":true,"
	  "\"include_usage\":false}}",
	  "stream_options.include_usage" },
	{ "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
	  "{\"role\":\"user\",\"content\":\"x\",\"content\":\"y\"}]}",
	  "messages[1].content" },
	{ "{\"model\":\"a\",\"metadata\":{\"k\":1,\"k\":2}}", "metadata.k" },
	/* Case-blind readers (Go's encoding/json). */
	{ "{\"model\":\"a\",\"MODEL\":\"b\"}", "MODEL" },
	{ "{\"Model\":\"b\"}", "Model" },
	{ "{\"model\":\"a\",\"Stream\":true}", "Stream" },
	{ "{\"model\":\"a\",\"\xc5\xbftream\":true}", "\xc5\xbftream" },
	{ "{\"model\":\"a\",\"max_to\xe2\x84\xaa"
	  "ens\":9}",
	  "max_to\xe2\x84\xaa"
	  "ens" },
	{ "{\"model\":\"a\",\"Messages\":[]}", "Messages" },
	{ "{\"model\":\"a\",\"stream_options\":{\"Include_Usage\":false}}",
	  "stream_options.Include_Usage" },
	{ "{\"model\":\"a\",\"mod\\u0000el\":\"b\"}", "" },
	/* Types. */
	{ "{\"model\":42}", "model" },
	{ "{\"model\":\"a\",\"stream\":\"true\"}", "stream" },
	{ "{\"model\":\"a\",\"stream\":1}", "stream" },
	{ "{\"model\":\"a\",\"stream_options\":[]}", "stream_options" },
	{ "{\"model\":\"a\",\"stream_options\":{\"include_usage\":\"no\"}}",
	  "stream_options.include_usage" },
	{ "{\"model\":\"a\",\"max_tokens\":\"100\"}", "max_tokens" },
	{ "{\"model\":\"a\",\"max_tokens\":1.5}", "max_tokens" },
	{ "{\"model\":\"a\",\"max_tokens\":0}", "max_tokens" },
	{ "{\"model\":\"a\",\"max_tokens\":-1}", "max_tokens" },
	{ "{\"model\":\"a\",\"max_completion_tokens\":1e300}",
	  "max_completion_tokens" },
	{ "{\"model\":\"a\",\"max_output_tokens\":3000000000}",
	  "max_output_tokens" },
	{ "{\"model\":\"a\",\"n\":0}", "n" },
	{ "{\"model\":\"a\",\"n\":129}", "n" },
	{ "{\"model\":\"a\",\"best_of\":21}", "best_of" },
	/* Not one object. */
	{ "{\"model\":\"a\"} {\"model\":\"b\"}", "" },
	{ "{\"model\":\"a\"}x", "" },
	{ "[{\"model\":\"a\"}]", "" },
	{ "", "" },
};

struct passed {
	const char *body;
	const char *model;
	int stream, include_usage;
	int64_t cap, choices;
};

static const struct passed passed[] = {
	{ "{\"model\":\"a\"}", "a", 0, 0, 0, 1 },
	{ " {\"mod\\u0065l\" : \"a\\u00e9\"}\n", "a\xc3\xa9", 0, 0, 0, 1 },
	{ "{\"model\":\"a\",\"stream\":true,\"stream_options\":"
	  "{\"include_usage\":true}}",
	  "a", 1, 1, 0, 1 },
	{ "{\"model\":\"a\",\"stream\":null,\"max_tokens\":null}", "a", 0, 0, 0,
	  1 },
	{ "{\"model\":\"a\",\"max_tokens\":100,\"max_completion_tokens\":900}",
	  "a", 0, 0, 900, 1 },
	{ "{\"model\":\"a\",\"max_tokens\":1e2}", "a", 0, 0, 100, 1 },
	{ "{\"model\":\"a\",\"n\":5,\"best_of\":7}", "a", 0, 0, 0, 7 },
	/* Names that merely look alike where the gateway reads nothing. */
	{ "{\"model\":\"a\",\"metadata\":{\"model\":\"b\",\"MODEL\":\"c\"}}",
	  "a", 0, 0, 0, 1 },
	{ "{\"model\":\"a\",\"response_format\":{\"json_schema\":{\"properties\":"
	  "{\"id\":{},\"ID\":{}}}}}",
	  "a", 0, 0, 0, 1 },
	{ "{\"model\":\"a\",\"modelx\":\"b\",\"x_model\":1}", "a", 0, 0, 0, 1 },
};

static void
refusals(void)
{
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		const struct refused *c = &refused[i];
		struct body b;
		struct body_error e;
		int rc = body_read(c->body, strlen(c->body), &b, &e);

		ok(rc == -1 && strcmp(e.param, c->param) == 0,
		   "refused, naming '%s': %s", c->param, c->body);
		if (rc == 0)
			cJSON_Delete(b.json);
		else if (strcmp(e.param, c->param) != 0)
			diag("named '%s': %s", e.param, e.msg);
		else if (c->param[0] != '\0' && strstr(e.msg, c->param) == NULL)
			ok(0, "the message quotes the member: %s", e.msg);
	}
}

/* A NUL in a name that only cJSON sees: a raw byte, which cJSON takes,
 * and a \u without hex digits, which cJSON reads as \u0000. It reads the
 * name up to the NUL (max_tokens); json.c and other readers differ. */
static void
nul_names(void)
{
	static const char body[] = "{\"model\":\"a\",\"max_tokens\0x\":9}";
	static const char bad_escape[] =
		"{\"model\":\"a\",\"max_tokens\\uzzzzx\":9}";
	struct body b;
	struct body_error e;

	ok(body_read(body, sizeof(body) - 1, &b, &e) == -1 &&
		   strstr(e.msg, "\\u0000") != NULL,
	   "a raw NUL in a name is refused: %s", e.msg);
	ok(body_read(bad_escape, sizeof(bad_escape) - 1, &b, &e) == -1 &&
		   strstr(e.msg, "\\u0000") != NULL,
	   "a \\u without hex digits in a name is refused: %s", e.msg);
}

static void
passes(void)
{
	for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++) {
		const struct passed *c = &passed[i];
		struct body b;
		struct body_error e;
		int rc = body_read(c->body, strlen(c->body), &b, &e);

		if (!ok(rc == 0, "read: %s", c->body)) {
			diag("refused (%s): %s", e.param, e.msg);
			continue;
		}
		is_str(b.model, c->model, "model of %s", c->body);
		ok(b.stream == c->stream && b.include_usage == c->include_usage,
		   "stream and include_usage of %s", c->body);
		is_int(body_cap(&b), c->cap, "largest cap of %s", c->body);
		is_int(b.choices, c->choices, "choices of %s", c->body);
		cJSON_Delete(b.json);
	}
}

/* A large object's duplicates are found by sorting; a large clean one
 * passes. */
static void
large_objects(void)
{
	struct buf big = BUF_INIT;
	struct body b;
	struct body_error e;

	buf_str(&big, "{\"model\":\"a\",\"metadata\":{");
	for (int i = 0; i < 5000; i++)
		buf_printf(&big, "%s\"k%d\":%d", i ? "," : "", i, i);
	buf_str(&big, "}}");
	ok(body_read(big.data, big.len, &b, &e) == 0,
	   "5,000 distinct members pass");
	cJSON_Delete(b.json);
	big.len -= 2;
	buf_str(&big, ",\"k4321\":0}}");
	ok(body_read(big.data, big.len, &b, &e) == -1 &&
		   strcmp(e.param, "metadata.k4321") == 0,
	   "one duplicate among 5,001 members is found (%s)", e.param);
	buf_free(&big);
}

/* Edits find members by their unescaped names and leave every other
 * byte. */
static void
edits(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "{\"mod\\u0065l\":\"a\",\"x\":1.50}",
		  "{\"mod\\u0065l\":\"B\",\"x\":1.50,\"max_tokens\":7}" },
		{ "{ \"max_tokens\" : 9000 , \"model\":\"a\"}",
		  "{ \"max_tokens\" : 7 , \"model\":\"B\"}" },
		{ "{}", "{\"model\":\"B\",\"max_tokens\":7}" },
		{ "{ \n}", "{ \n\"model\":\"B\",\"max_tokens\":7}" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct json_edit e[2] = {
			{ .name = "model", .value = "\"B\"" },
			{ .name = "max_tokens", .value = "7" },
		};
		struct buf out = BUF_INIT;

		ok(json_edit_members(cases[i].in, strlen(cases[i].in), e, 2,
				     &out) == 0,
		   "edited: %s", cases[i].in);
		is_str(out.data, cases[i].out, "edits of %s", cases[i].in);
		buf_free(&out);
	}
}

int
main(void)
{
	ok(body_names_fold_equal("max_tokens", "MAX_TOKENS"), "ASCII folds");
	ok(body_names_fold_equal("\xe2\x84\xaa", "k"), "Kelvin sign is k");
	ok(!body_names_fold_equal("model", "models"), "lengths differ");
	refusals();
	nul_names();
	passes();
	large_objects();
	edits();
	return done_testing();
}
