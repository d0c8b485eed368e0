/*
 * test_metrics.c - /metrics' labelled series, and what happens once their
 * number reaches its bound: new label sets are counted in an overflow
 * series that keeps the family's label names and its bounded values, so
 * spend in different currencies is never added together.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "metrics.h"
#include "tap.h"

/* Series the gateway keeps before overflowing (MAX_SERIES in metrics.c). */
#define BOUND 20000

static char *text;
static size_t text_len;

/* Renders /metrics into text. */
static void
render(void)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;

	metrics_render(b);
	n = evbuffer_get_length(b);
	free(text);
	text = malloc(n + 1);
	evbuffer_remove(b, text, n);
	text[n] = '\0';
	text_len = n;
	evbuffer_free(b);
}

/* The value of the series written exactly as name{labels}, or "absent".
 * Lines are found with memchr over the text's length: the text is large,
 * and a string function would read to its end at every line under
 * ASan's strict_string_checks. */
static const char *
value(const char *series)
{
	static char v[32];
	size_t len = strlen(series);
	const char *end = text + text_len;

	for (const char *p = text; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - p) > len && memcmp(p, series, len) == 0 &&
		    p[len] == ' ') {
			snprintf(v, sizeof v, "%.*s", (int)(eol - p - len - 1),
				 p + len + 1);
			return v;
		}
		p = eol + 1;
	}
	return "absent";
}

/* Counts one request of tenant for model, without a provider. */
static void
request(const char *tenant, const char *model, int status, int64_t prompt)
{
	struct metrics_request r = { .tenant = tenant,
				     .model = model,
				     .status = status,
				     .prompt = prompt,
				     .ttfb_ms = -1 };
	metrics_request(&r);
}

int
main(void)
{
	char tenant[32];

	/* Below the bound every label set has its own series. */
	metrics_spend("acme", "USD", 1000, 1500);
	metrics_spend("acme", "CNY", 7000, 9000);
	metrics_spend("acme", "USD", 10, 15);
	request("acme", "gpt-4o", 200, 1200);
	render();
	is_str(value("tollgate_spend_nanos_total{tenant=\"acme\","
		     "currency=\"USD\",kind=\"billed\"}"),
	       "1010", "USD spend of acme, billed");
	is_str(value("tollgate_spend_nanos_total{tenant=\"acme\","
		     "currency=\"CNY\",kind=\"list\"}"),
	       "9000", "CNY spend of acme, at list price");
	is_str(value("tollgate_tokens_total{tenant=\"acme\",model=\"gpt-4o\","
		     "status=\"200\",class=\"prompt\"}"),
	       "1200", "prompt tokens of acme");

	/* Fill the table up to its bound: 3 series so far. */
	for (int i = 0; i < BOUND - 3; i++) {
		snprintf(tenant, sizeof tenant, "t%d", i);
		request(tenant, "m", 200, 1);
	}
	render();
	is_str(value("tollgate_requests_total{tenant=\"t15996\",model=\"m\","
		     "status=\"200\"}"),
	       "1", "the last series below the bound has its own");

	/* Past the bound: known series keep counting, new ones overflow. */
	metrics_spend("late-1", "USD", 5, 7);
	metrics_spend("late-2", "USD", 11, 13);
	metrics_spend("late-3", "CNY", 17, 19);
	metrics_spend("acme", "USD", 1, 2);
	request("late-4", "model-from-a-client", 429, 30);
	request("late-5", "another-model", 429, 40);
	request("late-6", "m", 200, 50);
	{
		struct metrics_request r = { .tenant = "acme",
					     .model = "gpt-4o",
					     .provider = "new-provider",
					     .status = 200,
					     .latency_ms = 70,
					     .ttfb_ms = 5 };
		metrics_request(&r);
	}
	render();
	is_str(value("tollgate_spend_nanos_total{tenant=\"other\","
		     "currency=\"USD\",kind=\"billed\"}"),
	       "16", "overflow USD spend keeps its currency (billed)");
	is_str(value("tollgate_spend_nanos_total{tenant=\"other\","
		     "currency=\"USD\",kind=\"list\"}"),
	       "20", "overflow USD spend keeps its currency (list)");
	is_str(value("tollgate_spend_nanos_total{tenant=\"other\","
		     "currency=\"CNY\",kind=\"billed\"}"),
	       "17", "overflow CNY spend is apart from USD");
	ok(strstr(text, "tollgate_spend_nanos_total{tenant=\"other\",kind") ==
		   NULL,
	   "no spend series without a currency");
	is_str(value("tollgate_spend_nanos_total{tenant=\"acme\","
		     "currency=\"USD\",kind=\"billed\"}"),
	       "1011", "a known series still counts past the bound");
	is_str(value("tollgate_requests_total{tenant=\"other\","
		     "model=\"other\",status=\"429\"}"),
	       "2", "overflow requests keep their status");
	is_str(value("tollgate_tokens_total{tenant=\"other\","
		     "model=\"other\",status=\"200\",class=\"prompt\"}"),
	       "50", "overflow tokens by status");
	ok(strstr(text, "model-from-a-client") == NULL,
	   "a new client-sent model past the bound is not a label");
	is_str(value("tollgate_request_duration_ms_count{provider=\"other\"}"),
	       "1", "overflow latency keeps the provider label name");
	ok(strstr(text, "tollgate_request_duration_ms_count{tenant") == NULL,
	   "no latency series labelled by tenant");
	free(text);
	return done_testing();
}
