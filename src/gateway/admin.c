/*
 * admin.c - /healthz, /readyz and /metrics on the admin address.
 *
 * Runs on the main thread's event loop, apart from the data plane, so a
 * busy gateway still answers its health checks. It is also where the
 * figures of the journal, the usage writer and the key cache are
 * registered with /metrics, so none of those modules depends on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin.h"
#include "clock.h"
#include "keystore.h"
#include "metrics.h"
#include "config.h"
#include "pgwriter.h"
#include "spool.h"

/* POST /clock/advance?ms=N: moves the policy clock (test_clock only). */
static int
advance_clock(struct evhttp_request *req, struct evbuffer *buf)
{
	const char *q =
		evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq params;
	const char *ms;
	char *end;
	long long n;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evbuffer_add_printf(buf, "POST only\n");
		return 405;
	}
	if (q == NULL || evhttp_parse_query_str(q, &params) != 0) {
		evbuffer_add_printf(buf, "expected ?ms=N\n");
		return 400;
	}
	ms = evhttp_find_header(&params, "ms");
	n = ms != NULL ? strtoll(ms, &end, 10) : 0;
	if (ms == NULL || *end != '\0' || n <= 0) {
		evhttp_clear_headers(&params);
		evbuffer_add_printf(buf, "expected ?ms=N with N > 0\n");
		return 400;
	}
	evhttp_clear_headers(&params);
	clock_advance_ms(n);
	evbuffer_add_printf(buf, "%lld\n", (long long)clock_policy_ms());
	return 200;
}

/* Answers one admin request. */
static void
admin_cb(struct evhttp_request *req, void *arg)
{
	struct config *const *cfgp = arg;
	const struct config *cfg = *cfgp;
	const char *path =
		evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evbuffer *buf = evbuffer_new();
	int status = 200;
	const char *ctype = "text/plain; charset=utf-8";

	if (path == NULL)
		path = "";
	if (strcmp(path, "/healthz") == 0) {
		evbuffer_add_printf(buf, "ok\n");
	} else if (strcmp(path, "/readyz") == 0) {
		int keys = keystore_ready(), db = pgwriter_db_ok();
		char why[128];
		int spool_bad = spool_failing(why, sizeof why);
		/* Serving through a database outage is the point of the
		 * spool; a journal that takes nothing is not. */
		if (!keys || spool_bad || (!db && cfg->db_down_refuse))
			status = 503;
		evbuffer_add_printf(
			buf, "%s\nkeys: %s\ndatabase: %s%s\nspool: %s%s\n",
			status == 200 ? "ready" : "not ready",
			keys ? "loaded" : "not loaded", db ? "up" : "down",
			db                    ? ""
			: cfg->db_down_refuse ? " (on_db_down = refuse)"
					      : " (serving; usage waits in the "
						"spool)",
			spool_bad ? "failing: " : "ok", spool_bad ? why : "");
	} else if (strcmp(path, "/clock/advance") == 0 && cfg->test_clock) {
		status = advance_clock(req, buf);
	} else if (strcmp(path, "/metrics") == 0) {
		ctype = "text/plain; version=0.0.4";
		metrics_render(buf);
	} else {
		status = 404;
		evbuffer_add_printf(buf, "not found\n");
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", ctype);
	evhttp_send_reply(req, status, NULL, buf);
	evbuffer_free(buf);
}

/* Whether the journal takes appends, as a figure. */
static int64_t
spool_up(void)
{
	return !spool_failing(NULL, 0);
}

/* Whether the usage writer reaches PostgreSQL, as a figure. */
static int64_t
database_up(void)
{
	return pgwriter_db_ok();
}

/* The figures of the other modules that /metrics shows. */
static const struct {
	const char *name, *type, *help;
	int64_t (*read)(void);
} figures[] = {
	{ "tollgate_spool_pending_bytes", "gauge",
	  "Journal bytes not yet in the database.", spool_pending_bytes },
	{ "tollgate_spool_torn_records_total", "counter",
	  "Torn or corrupt journal records skipped.", spool_torn },
	{ "tollgate_spool_write_errors_total", "counter",
	  "Journal appends that failed.", spool_write_errors },
	{ "tollgate_spool_up", "gauge", "Whether the journal takes appends.",
	  spool_up },
	{ "tollgate_usage_in_memory", "gauge",
	  "Usage records the journal could not take, waiting in memory.",
	  spool_in_memory },
	{ "tollgate_usage_rejected_total", "counter",
	  "Usage records the ledger refused, kept in rejected.jnl.",
	  pgwriter_rejected },
	{ "tollgate_usage_written_total", "counter", "Usage records committed.",
	  pgwriter_written },
	{ "tollgate_database_up", "gauge",
	  "Whether the usage writer reaches PostgreSQL.", database_up },
	{ "tollgate_keys", "gauge", "Keys in the cache.", keystore_count },
};

/* Starts the admin server. */
struct evhttp *
admin_start(struct event_base *base, const char *addr,
	    struct config *const *cfgp, char **cause)
{
	struct evhttp *http = evhttp_new(base);
	char host[256], msg[512];
	const char *colon = strrchr(addr, ':');
	int port;

	if (http == NULL || colon == NULL ||
	    (size_t)(colon - addr) >= sizeof host) {
		snprintf(msg, sizeof msg, "admin_listen %s: expected host:port",
			 addr);
		goto fail;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	port = atoi(colon + 1);
	if (port <= 0 || port > 65535 ||
	    evhttp_bind_socket(http, host, (unsigned short)port) != 0) {
		snprintf(msg, sizeof msg, "admin_listen %s: cannot listen",
			 addr);
		goto fail;
	}
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
						 EVHTTP_REQ_POST);
	evhttp_set_gencb(http, admin_cb, (void *)cfgp);
	for (size_t i = 0; i < sizeof figures / sizeof *figures; i++)
		metrics_register(figures[i].name, figures[i].type,
				 figures[i].help, figures[i].read);
	return http;
fail:
	if (http != NULL)
		evhttp_free(http);
	*cause = strdup(msg);
	return NULL;
}
