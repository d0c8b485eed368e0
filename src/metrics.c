/*
 * metrics.c - request and token counters.
 */
#include <stdatomic.h>
#include <event2/buffer.h>

#include "keystore.h"
#include "meter.h"
#include "metrics.h"
#include "pgwriter.h"

/* Status classes 1xx..5xx, and one slot for anything else. */
static atomic_llong requests[6];
static atomic_llong streamed;
static atomic_llong aborted;
static atomic_llong tokens_prompt;
static atomic_llong tokens_completion;
static atomic_llong tokens_cached;
static atomic_llong tokens_reasoning;
static atomic_llong unmetered;

/* Counts one finished request. */
void
metrics_count(const struct usage_record *rec)
{
	int cls = rec->status / 100;

	atomic_fetch_add(&requests[cls >= 1 && cls <= 5 ? cls : 0], 1);
	if (rec->streamed)
		atomic_fetch_add(&streamed, 1);
	if (rec->client_aborted)
		atomic_fetch_add(&aborted, 1);
	if (rec->status >= 200 && rec->status < 300 &&
	    rec->source == USAGE_NONE)
		atomic_fetch_add(&unmetered, 1);
	atomic_fetch_add(&tokens_prompt, rec->usage.prompt);
	atomic_fetch_add(&tokens_completion, rec->usage.completion);
	atomic_fetch_add(&tokens_cached, rec->usage.cached);
	atomic_fetch_add(&tokens_reasoning, rec->usage.reasoning);
}

/* Renders every counter. */
void
metrics_render(struct evbuffer *b)
{
	static const char *const cls[] = { "other", "1xx", "2xx", "3xx",
					   "4xx", "5xx" };

	evbuffer_add_printf(b, "# HELP tollgate_requests_total Requests "
			    "finished, by status class.\n"
			    "# TYPE tollgate_requests_total counter\n");
	for (int i = 0; i < 6; i++)
		evbuffer_add_printf(b, "tollgate_requests_total{status=\"%s\"} "
				    "%lld\n", cls[i],
				    (long long)atomic_load(&requests[i]));
	evbuffer_add_printf(b,
		"# HELP tollgate_streamed_requests_total Streamed requests.\n"
		"# TYPE tollgate_streamed_requests_total counter\n"
		"tollgate_streamed_requests_total %lld\n"
		"# HELP tollgate_client_aborted_total Requests the client left.\n"
		"# TYPE tollgate_client_aborted_total counter\n"
		"tollgate_client_aborted_total %lld\n"
		"# HELP tollgate_unmetered_success_total Successful requests "
		"without usage.\n"
		"# TYPE tollgate_unmetered_success_total counter\n"
		"tollgate_unmetered_success_total %lld\n"
		"# HELP tollgate_tokens_total Tokens metered, by class.\n"
		"# TYPE tollgate_tokens_total counter\n"
		"tollgate_tokens_total{class=\"prompt\"} %lld\n"
		"tollgate_tokens_total{class=\"completion\"} %lld\n"
		"tollgate_tokens_total{class=\"cached\"} %lld\n"
		"tollgate_tokens_total{class=\"reasoning\"} %lld\n"
		"# HELP tollgate_usage_queue Usage records waiting for the "
		"database.\n"
		"# TYPE tollgate_usage_queue gauge\n"
		"tollgate_usage_queue %lld\n"
		"# HELP tollgate_usage_written_total Usage records committed.\n"
		"# TYPE tollgate_usage_written_total counter\n"
		"tollgate_usage_written_total %lld\n"
		"# HELP tollgate_database_up Whether the usage writer reaches "
		"PostgreSQL.\n"
		"# TYPE tollgate_database_up gauge\n"
		"tollgate_database_up %d\n"
		"# HELP tollgate_keys Keys in the cache.\n"
		"# TYPE tollgate_keys gauge\n"
		"tollgate_keys %lld\n",
		(long long)atomic_load(&streamed),
		(long long)atomic_load(&aborted),
		(long long)atomic_load(&unmetered),
		(long long)atomic_load(&tokens_prompt),
		(long long)atomic_load(&tokens_completion),
		(long long)atomic_load(&tokens_cached),
		(long long)atomic_load(&tokens_reasoning),
		(long long)pgwriter_queued(), (long long)pgwriter_written(),
		pgwriter_db_ok(), (long long)keystore_count());
}
