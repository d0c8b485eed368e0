/*
 * test_meter.c - table tests for the metering decision: when a finished
 * request bills the provider's counts, an estimate, or nothing, and what
 * status its record keeps.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "meter.h"
#include "tap.h"

struct settle_case {
	const char *name;
	int status;  /* set before settling (a refusal), 0 = none */
	int aborted; /* the client left */
	struct meter_end end;
	int want_status;
	enum usage_source want_source;
	int64_t want_prompt, want_completion;
};

#define REPORTED(p, c)                                                         \
	{                                                                      \
		(p), (c), 0, 0, 0, 1                                           \
	}

static const struct settle_case cases[] = {
	{ "reported usage is billed as reported",
	  0,
	  0,
	  { REPORTED(120, 30), 9, 100, 1, 1, 200 },
	  200,
	  USAGE_REPORTED,
	  120,
	  30 },
	{ "reported usage wins over a client that left",
	  0,
	  1,
	  { REPORTED(120, 30), 9, 100, 1, 1, 0 },
	  0,
	  USAGE_REPORTED,
	  120,
	  30 },
	{ "a silent provider's success is estimated",
	  0,
	  0,
	  { { 0 }, 9, 100, 1, 1, 200 },
	  200,
	  USAGE_ESTIMATED,
	  100,
	  9 },
	{ "a client that left while the provider worked is estimated",
	  0,
	  1,
	  { { 0 }, 4, 100, 1, 1, 0 },
	  0,
	  USAGE_ESTIMATED,
	  100,
	  4 },
	{ "no answer and no client gone: nothing",
	  0,
	  0,
	  { { 0 }, 0, 100, 1, 1, 0 },
	  0,
	  USAGE_NONE,
	  0,
	  0 },
	{ "a provider's error bills nothing",
	  0,
	  0,
	  { { 0 }, 0, 100, 1, 1, 500 },
	  500,
	  USAGE_NONE,
	  0,
	  0 },
	{ "a provider's error with a client gone bills nothing",
	  0,
	  1,
	  { { 0 }, 0, 100, 1, 1, 429 },
	  429,
	  USAGE_NONE,
	  0,
	  0 },
	{ "a request the provider never fully got bills nothing",
	  0,
	  1,
	  { { 0 }, 0, 100, 1, 0, 0 },
	  0,
	  USAGE_NONE,
	  0,
	  0 },
	{ "a body never read bills nothing",
	  0,
	  0,
	  { { 0 }, 0, 0, 0, 1, 200 },
	  200,
	  USAGE_NONE,
	  0,
	  0 },
	{ "a refusal keeps its status",
	  429,
	  0,
	  { { 0 }, 0, 100, 1, 0, 0 },
	  429,
	  USAGE_NONE,
	  0,
	  0 },
	{ "a gateway error keeps its status over the provider's",
	  502,
	  0,
	  { { 0 }, 0, 100, 1, 1, 200 },
	  502,
	  USAGE_ESTIMATED,
	  100,
	  0 },
};

int
main(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct settle_case *c = &cases[i];
		struct usage_record *rec = meter_record_new();

		if (rec == NULL)
			return 1;
		rec->status = c->status;
		rec->client_aborted = c->aborted;
		meter_settle(rec, &c->end);
		is_int(rec->status, c->want_status, "%s: status", c->name);
		is_str(meter_source_name(rec->source),
		       meter_source_name(c->want_source), "%s: source",
		       c->name);
		is_int(rec->usage.prompt, c->want_prompt, "%s: prompt",
		       c->name);
		is_int(rec->usage.completion, c->want_completion,
		       "%s: completion", c->name);
		meter_record_free(rec);
	}
	return done_testing();
}
