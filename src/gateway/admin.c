/*
 * admin.c - /healthz, /readyz and /metrics on the admin address, and the
 * door to the console (console.c), which answers every other path.
 *
 * Runs on the main thread's event loop, apart from the data plane, on a
 * server (httpd.c) whose connections are counted apart from the data
 * plane's, so a busy or attacked gateway still answers its health checks. It is
 * also where the figures of the journal, the usage writer and the key cache are
 * registered with /metrics, so none of those modules depends on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin.h"
#include "clock.h"
#include "console.h"
#include "httpd.h"
#include "keystore.h"
#include "metrics.h"
#include "config.h"
#include "pgwriter.h"
#include "reply.h"
#include "spool.h"

#define ADMIN_MAX_CONNECTIONS 64

/* POST /clock/advance?ms=N: moves the policy clock (test_clock only). */
static int
advance_clock(struct hreq *req, struct evbuffer *buf)
{
	const char *q = hreq_query(req);
	struct evkeyvalq params;
	const char *ms;
	char *end;
	long long n;

	if (strcmp(hreq_method(req), "POST") != 0) {
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

/* Answers an error as JSON, in OpenAI's shape like the data plane's. */
static void
admin_error(struct hreq *req, int status, const char *code, const char *message)
{
	struct reply_error err = { status,
				   status >= 500 ? "server_error"
						 : "invalid_request_error",
				   code, NULL, message };

	reply_error(req, WIRE_OPENAI_CHAT, &err);
}

/* Whether the request may read the operations endpoints: with a token
 * (or a console session, or from loopback with admin_loopback_open) when
 * any token is configured; anyone on a listener that needs none (only a
 * loopback one may, config.c). admin: it must be the admin. */
static int
authorized(const struct config *cfg, struct hreq *req, int admin)
{
	enum console_via via;
	enum console_role role;

	if (!cfg->admin_token_set && !cfg->readonly_token_set)
		return 1;
	role = console_role_of(cfg, req, &via);
	return admin ? role == CONSOLE_ADMIN : role != CONSOLE_NONE;
}

/* Answers one admin request. */
static void
admin_cb(struct hreq *req, void *arg)
{
	struct config *const *cfgp = arg;
	const struct config *cfg = *cfgp;
	const char *path = hreq_path(req), *method = hreq_method(req);
	const struct hp_error *bad = hreq_error(req);
	struct evbuffer *buf;
	int status = 200;
	const char *ctype = "text/plain; charset=utf-8";

	if (bad != NULL) {
		struct reply_error err = reply_from_server(bad);
		reply_error(req, WIRE_OPENAI_CHAT, &err);
		return;
	}
	if (strcmp(path, "/healthz") != 0 && strcmp(path, "/readyz") != 0 &&
	    strcmp(path, "/metrics") != 0 &&
	    strcmp(path, "/clock/advance") != 0) {
		console_handle(req, cfg);
		return;
	}
	/* /healthz says only that the process runs: probes need no token. */
	if (strcmp(path, "/healthz") != 0 &&
	    !authorized(cfg, req, strcmp(path, "/clock/advance") == 0)) {
		evhttp_add_header(hreq_output_headers(req), "WWW-Authenticate",
				  "Bearer realm=\"tollgate admin\"");
		admin_error(
			req, 401, "invalid_admin_token",
			"The admin address needs Authorization: Bearer with the token of admin_token_file (or admin_readonly_token_file).");
		return;
	}
	if (strcmp(path, "/clock/advance") != 0 && strcmp(method, "GET") != 0 &&
	    strcmp(method, "HEAD") != 0) {
		evhttp_add_header(hreq_output_headers(req), "Allow",
				  "GET, HEAD");
		admin_error(req, 405, "method_not_allowed",
			    "Only GET and HEAD are allowed here.");
		return;
	}
	buf = evbuffer_new();
	if (buf == NULL) {
		admin_error(req, 500, "server_error", "Out of memory.");
		return;
	}
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
		evbuffer_free(buf);
		admin_error(req, 404, "unknown_url", "Unknown admin URL.");
		return;
	}
	evhttp_add_header(hreq_output_headers(req), "Content-Type", ctype);
	hreq_send(req, status, buf);
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
struct httpd *
admin_start(struct event_base *base, const char *addr,
	    struct config *const *cfgp, char **cause)
{
	struct httpd_callbacks cb = { admin_cb, (void *)cfgp };
	struct httpd *h;
	int fd = httpd_open_listener(addr, cause);

	if (fd < 0)
		return NULL;
	h = httpd_new(base, *cfgp, &cb);
	if (h == NULL || httpd_listen(h, fd, 0) != 0) {
		httpd_free(h);
		close(fd);
		*cause = strdup("admin server: out of memory");
		return NULL;
	}
	httpd_own_limit(h, ADMIN_MAX_CONNECTIONS);
	{
		const char *why;
		if (console_start(base, cfgp, &why) != 0) {
			httpd_free(h);
			*cause = strdup(why);
			return NULL;
		}
	}
	for (size_t i = 0; i < sizeof figures / sizeof *figures; i++)
		metrics_register(figures[i].name, figures[i].type,
				 figures[i].help, figures[i].read);
	return h;
}

/* The admin server's limits follow a reload. */
void
admin_set_config(struct httpd *admin, const struct config *cfg)
{
	httpd_set_config(admin, cfg);
}

/* Stops the admin server, then the console: requests still waiting for
 * the console are dropped with their connections first. */
void
admin_stop(struct httpd *admin)
{
	if (admin == NULL)
		return;
	httpd_free(admin);
	console_stop();
}
