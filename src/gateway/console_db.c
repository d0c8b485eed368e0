/*
 * console_db.c - the console's threads: its reads of PostgreSQL and the
 * tollctl verbs it runs.
 *
 * Principle: a page of the console must cost the database little however
 * large the ledger grows, and must never hold up the gateway. So every
 * read here is of the roll-up usage_daily (one row per tenant, local day,
 * provider, model, currency and refusal, kept by the ledger's insert) and
 * of small tables (tenants, keys, quotas, promotions), and PostgreSQL
 * builds the answer's JSON itself, money as exact decimal text. The
 * reading threads own their connections (pgconn.c backs off while the
 * database is away) and run one statement at a time under
 * statement_timeout. tollctl's verbs (actions, bills, the audit) have
 * threads and a queue of their own: a long bill never holds up a page.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "console_ctl.h"
#include "console_db.h"
#include "log.h"
#include "pgconn.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* Jobs waiting for a thread of one kind. */
struct jobq {
	pthread_cond_t more;
	struct console_job *head, **tail;
};

/* A console thread: a reader has a connection; a verb runner runs
 * tollctl, whose pid it shows while it runs (0 otherwise), so that a
 * stop need not wait for a long bill. */
struct worker {
	pthread_t thread;
	struct pgconn *pc; /* a reader's */
	_Atomic pid_t child;
};

static struct {
	pthread_mutex_t lock;
	struct jobq reads, verbs; /* reads never wait behind a verb */
	struct console_job *done; /* finished, for the loop */
	struct event *done_ev;
	void (*done_cb)(struct console_job *j);
	struct worker workers[CONSOLE_THREADS + CONSOLE_CTL_THREADS];
	int nworkers;
	int stopping;
} q = { .lock = PTHREAD_MUTEX_INITIALIZER,
	.reads = { PTHREAD_COND_INITIALIZER, NULL, &q.reads.head },
	.verbs = { PTHREAD_COND_INITIALIZER, NULL, &q.verbs.head } };

/* clang-format off */
/* Money: nano-units (integer or numeric) as exact decimal text. */
#define MONEY(x) "((" x ")::numeric / 1000000000)::numeric(40, 9)::text"
/* A time in the session's time zone (the tenant's), RFC 3339. */
#define LOCAL_TS(x) "to_char(" x ", 'YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM')"
/* The month's rows of the roll-up; $1 is the month's first day. */
#define MONTH_ROWS \
	"day >= $1::date AND day < ($1::date + interval '1 month')::date"
/* The sums every view shows, over rows of usage_daily d. */
#define SUMS \
	"sum(d.requests) AS requests," \
	" sum(d.requests) FILTER (WHERE d.refusal <> '') AS refused," \
	" sum(d.estimated_requests) AS estimated_requests," \
	" sum(d.prompt_tokens) AS prompt_tokens," \
	" sum(d.completion_tokens) AS completion_tokens," \
	" sum(d.cached_tokens) AS cached_tokens," \
	" sum(d.prompt_tokens + d.completion_tokens) AS tokens," \
	" sum(d.estimated_tokens) AS estimated_tokens"

/* GET /api/overview: every tenant's month, the days, the top models and
 * providers, the estimated share. */
static const char overview_sql[] =
	"WITH d AS MATERIALIZED (SELECT * FROM usage_daily WHERE " MONTH_ROWS "),"
	" a AS (SELECT d.tenant_id, " SUMS ","
	"  sum(d.billed_tenant_nanos) AS btn, sum(d.unconverted) AS unconv"
	"  FROM d GROUP BY d.tenant_id),"
	" s AS (SELECT tenant_id, json_agg(json_build_object("
	"  'currency', currency, 'list', " MONEY("l") ","
	"  'free', " MONEY("f") ", 'discount', " MONEY("dn") ","
	"  'billed', " MONEY("b") ") ORDER BY currency) AS spend"
	"  FROM (SELECT tenant_id, currency, sum(list_nanos) l,"
	"   sum(free_nanos) f, sum(discount_nanos) dn, sum(billed_nanos) b"
	"   FROM d WHERE currency <> '' GROUP BY 1, 2) x GROUP BY tenant_id),"
	" days AS (SELECT day, sum(requests) AS requests,"
	"  sum(prompt_tokens + completion_tokens) AS tokens FROM d GROUP BY day),"
	" dayspend AS (SELECT day, json_agg(json_build_object("
	"  'currency', currency, 'billed', " MONEY("b") ") ORDER BY currency)"
	"  AS spend FROM (SELECT day, currency, sum(billed_nanos) b FROM d"
	"  WHERE currency <> '' GROUP BY 1, 2) x GROUP BY day),"
	" tot AS (SELECT " SUMS " FROM d) "
	"SELECT json_build_object("
	" 'month', to_char($1::date, 'YYYY-MM'),"
	" 'tenants', coalesce((SELECT json_agg(json_build_object("
	"  'name', t.name, 'display_name', t.display_name,"
	"  'currency', t.currency, 'tz', t.tz, 'disabled', t.disabled,"
	"  'requests', coalesce(a.requests, 0),"
	"  'refused', coalesce(a.refused, 0),"
	"  'estimated_requests', coalesce(a.estimated_requests, 0),"
	"  'prompt_tokens', coalesce(a.prompt_tokens, 0),"
	"  'completion_tokens', coalesce(a.completion_tokens, 0),"
	"  'cached_tokens', coalesce(a.cached_tokens, 0),"
	"  'tokens', coalesce(a.tokens, 0),"
	"  'estimated_tokens', coalesce(a.estimated_tokens, 0),"
	"  'spend', coalesce(s.spend, '[]'::json),"
	"  'billed_tenant', " MONEY("coalesce(a.btn, 0)") ","
	"  'unconverted', coalesce(a.unconv, 0)) ORDER BY t.name)"
	"  FROM tenants t LEFT JOIN a ON a.tenant_id = t.id"
	"  LEFT JOIN s ON s.tenant_id = t.id), '[]'::json),"
	" 'daily', coalesce((SELECT json_agg(json_build_object("
	"  'day', days.day, 'requests', days.requests, 'tokens', days.tokens,"
	"  'spend', coalesce(dayspend.spend, '[]'::json)) ORDER BY days.day)"
	"  FROM days LEFT JOIN dayspend USING (day)), '[]'::json),"
	" 'models', coalesce((SELECT json_agg(m ORDER BY m.tokens DESC, m.model)"
	"  FROM (SELECT model, sum(requests) AS requests,"
	"   sum(prompt_tokens + completion_tokens) AS tokens FROM d"
	"   WHERE model <> '' GROUP BY model ORDER BY 3 DESC, 1 LIMIT 10) m),"
	"  '[]'::json),"
	" 'providers', coalesce((SELECT json_agg(p ORDER BY p.tokens DESC,"
	"  p.provider) FROM (SELECT provider, sum(requests) AS requests,"
	"   sum(prompt_tokens + completion_tokens) AS tokens FROM d"
	"   WHERE provider <> '' GROUP BY provider ORDER BY 3 DESC, 1 LIMIT 10) p),"
	"  '[]'::json),"
	" 'estimated', (SELECT json_build_object("
	"  'requests', coalesce(estimated_requests, 0),"
	"  'tokens', coalesce(estimated_tokens, 0),"
	"  'of_requests', coalesce(requests, 0),"
	"  'of_tokens', coalesce(tokens, 0)) FROM tot))::text";

/* GET /api/tenants. */
static const char tenants_sql[] =
	"SELECT json_build_object('tenants', coalesce(json_agg("
	" json_build_object('name', name, 'display_name', display_name,"
	" 'currency', currency, 'tz', tz, 'disabled', disabled,"
	" 'created_at', " LOCAL_TS("created_at") ") ORDER BY name),"
	" '[]'::json))::text FROM tenants";

/* Sets the transaction's time zone to the tenant's ($1); no row when
 * there is no such tenant. */
static const char tenant_tz_sql[] =
	"SELECT set_config('TimeZone', tz, true) FROM tenants WHERE name = $1";

/* GET /api/tenants/NAME: $1 the month's first day, $2 the name; the
 * session's time zone is the tenant's. Usage by day and model is of the
 * requests served or failed (refusals have no model in the roll-up; they
 * are counted by refusal), a model's unpriced failures under its price's
 * currency when it has one (cur). */
static const char tenant_sql[] =
	"WITH t AS (SELECT * FROM tenants WHERE name = $2),"
	" r AS MATERIALIZED (SELECT d.* FROM usage_daily d, t"
	"  WHERE d.tenant_id = t.id AND " MONTH_ROWS "),"
	" one AS (SELECT model, min(currency) AS c FROM r WHERE currency <> ''"
	"  GROUP BY model HAVING count(DISTINCT currency) = 1),"
	" d AS (SELECT r.*, coalesce(nullif(r.currency, ''), one.c, '') AS cur"
	"  FROM r LEFT JOIN one USING (model)) "
	"SELECT json_build_object("
	" 'tenant', json_build_object('name', t.name,"
	"  'display_name', t.display_name, 'currency', t.currency, 'tz', t.tz,"
	"  'disabled', t.disabled),"
	" 'month', to_char($1::date, 'YYYY-MM'),"
	" 'from', " LOCAL_TS("$1::date::timestamp AT TIME ZONE t.tz") ","
	" 'until', " LOCAL_TS("($1::date + interval '1 month')::timestamp"
			      " AT TIME ZONE t.tz") ","
	/* usage by day and model */
	" 'daily', coalesce((SELECT json_agg(x ORDER BY x.day, x.model,"
	"  x.provider, x.currency) FROM (SELECT day, model, provider,"
	"  nullif(cur, '') AS currency, sum(requests) AS requests,"
	"  sum(prompt_tokens) AS prompt_tokens,"
	"  sum(completion_tokens) AS completion_tokens,"
	"  sum(prompt_tokens + completion_tokens) AS tokens,"
	"  " MONEY("sum(billed_nanos)") " AS billed FROM d WHERE refusal = ''"
	"  GROUP BY day, model, provider, cur) x), '[]'::json),"
	" 'models', coalesce((SELECT json_agg(x ORDER BY x.tokens DESC,"
	"  x.model, x.currency) FROM (SELECT model,"
	"  nullif(cur, '') AS currency, sum(requests) AS requests,"
	"  sum(prompt_tokens + completion_tokens) AS tokens,"
	"  " MONEY("sum(billed_nanos)") " AS billed FROM d WHERE refusal = ''"
	"  GROUP BY model, cur) x), '[]'::json),"
	/* quotas, in their current period */
	" 'quotas', coalesce((SELECT json_agg(json_build_object("
	"  'id', q.id, 'key', k.prefix, 'model', q.model_pattern,"
	"  'period', q.period, 'hard', q.hard,"
	"  'period_start', " LOCAL_TS("p.ps") ","
	"  'token_limit', q.token_limit,"
	"  'used_tokens', coalesce(c.used_tokens, 0),"
	"  'reserved_tokens', coalesce(c.reserved_tokens, 0),"
	"  'remaining_tokens', CASE WHEN q.token_limit IS NOT NULL THEN"
	"   greatest(q.token_limit - coalesce(c.used_tokens, 0)"
	"   - coalesce(c.reserved_tokens, 0), 0) END,"
	"  'spend_limit', q.spend_limit::text,"
	"  'used_spend', " MONEY("coalesce(c.used_nanos, 0)") ","
	"  'reserved_spend', " MONEY("coalesce(c.reserved_nanos, 0)") ","
	"  'remaining_spend', CASE WHEN q.spend_limit IS NOT NULL THEN "
	    MONEY("greatest(q.spend_limit * 1000000000"
		  " - coalesce(c.used_nanos, 0)"
		  " - coalesce(c.reserved_nanos, 0), 0)") " END,"
	"  'currency', t.currency) ORDER BY q.id)"
	"  FROM quotas q CROSS JOIN LATERAL (SELECT"
	"   tollgate_period_start(q.period, now(), t.tz) AS ps) p"
	"  LEFT JOIN api_keys k ON k.id = q.key_id"
	"  LEFT JOIN quota_counters c ON c.quota_id = q.id"
	"   AND c.period_start = p.ps"
	"  WHERE q.tenant_id = t.id), '[]'::json),"
	" 'rate_limits', coalesce((SELECT json_agg(json_build_object("
	"  'id', r.id, 'key', k.prefix, 'rpm', r.rpm, 'tpm', r.tpm,"
	"  'concurrency', r.concurrency) ORDER BY r.id) FROM rate_limits r"
	"  LEFT JOIN api_keys k ON k.id = r.key_id"
	"  WHERE r.tenant_id = t.id), '[]'::json),"
	/* promotions that apply to the tenant, with its grant's balance */
	" 'promotions', coalesce((SELECT json_agg(json_build_object("
	"  'id', p.id, 'name', p.name, 'kind', p.kind,"
	"  'scope', CASE WHEN p.tenant_id IS NULL THEN 'all' ELSE 'tenant' END,"
	"  'model', p.model_pattern, 'provider', p.provider,"
	"  'free_tokens', p.free_tokens, 'used', coalesce(g.used, 0),"
	"  'remaining', CASE WHEN p.free_tokens IS NOT NULL THEN"
	"   p.free_tokens - coalesce(g.used, 0) END,"
	"  'discount', CASE WHEN p.discount_bp IS NOT NULL THEN"
	"   trim_scale(p.discount_bp / 100.0)::text || '%' END,"
	"  'starts', " LOCAL_TS("p.starts") ", 'ends', " LOCAL_TS("p.ends") ","
	"  'ended_at', " LOCAL_TS("p.ended_at") ","
	"  'status', CASE WHEN p.ended_at IS NOT NULL AND p.ended_at <= now()"
	"   AND p.ended_at < p.ends THEN 'ended'"
	"   WHEN now() < p.starts THEN 'upcoming'"
	"   WHEN now() >= p.ends THEN 'expired' ELSE 'active' END)"
	"  ORDER BY p.starts, p.id) FROM promotions p"
	"  LEFT JOIN grant_balances g ON g.promotion_id = p.id"
	"   AND g.tenant_id = t.id"
	"  WHERE p.tenant_id = t.id OR p.tenant_id IS NULL), '[]'::json),"
	" 'keys', coalesce((SELECT json_agg(json_build_object("
	"  'id', k.id, 'name', k.name, 'prefix', k.prefix,"
	"  'models', array_to_json(k.models),"
	"  'expires_at', " LOCAL_TS("k.expires_at") ","
	"  'revoked_at', " LOCAL_TS("k.revoked_at") ","
	"  'last_used_at', " LOCAL_TS("l.last_used_at") ","
	"  'created_at', " LOCAL_TS("k.created_at") ","
	"  'status', CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'"
	"   WHEN k.expires_at <= now() THEN 'expired' ELSE 'active' END)"
	"  ORDER BY k.id) FROM api_keys k"
	"  LEFT JOIN api_key_last_used l ON l.key_id = k.id"
	"  WHERE k.tenant_id = t.id), '[]'::json),"
	" 'refusals', coalesce((SELECT json_agg(x ORDER BY x.count DESC,"
	"  x.detail) FROM (SELECT split_part(refusal, ':', 1) AS reason,"
	"  refusal AS detail, sum(requests) AS count FROM d"
	"  WHERE refusal <> '' GROUP BY refusal) x), '[]'::json)"
	")::text FROM t";
/* clang-format on */

/* Writes an error in the data plane's JSON shape. */
void
console_error_json(struct buf *b, int status, const char *code,
		   const char *message)
{
	cJSON *o = cJSON_CreateObject(),
	      *e = cJSON_AddObjectToObject(o, "error");
	char *text;

	buf_reset(b, 0);
	cJSON_AddStringToObject(e, "message", message);
	cJSON_AddStringToObject(e, "type",
				status >= 500   ? "server_error"
				: status == 401 ? "authentication_error"
				: status == 403 ? "permission_error"
						: "invalid_request_error");
	cJSON_AddStringToObject(e, "code", code);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (text == NULL) {
		buf_str(b, "{\"error\":{\"message\":\"Out of memory.\"}}");
		return;
	}
	buf_str(b, text);
	buf_str(b, "\n");
	free(text);
}

/* Ends a job with an error. */
static void
job_error(struct console_job *j, int status, const char *code,
	  const char *message)
{
	j->status = status;
	console_error_json(&j->body, status, code, message);
}

/* Runs one statement returning one JSON text (or no row: 404 for what),
 * within a transaction set to the tenant's time zone when tenant is set. */
static void
run_read(PGconn *conn, struct pgconn *pc, struct console_job *j,
	 const char *sql, int nparams, const char *tenant)
{
	const char *params[2] = { j->param[0], j->param[1] };
	PGresult *res = NULL;
	int ok = 0;

	res = PQexec(conn, "BEGIN READ ONLY");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		goto db_fail;
	PQclear(res);
	if (tenant != NULL) {
		res = PQexecParams(conn, tenant_tz_sql, 1, NULL, &tenant, NULL,
				   NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			goto db_fail;
		if (PQntuples(res) == 0) {
			job_error(j, 404, "unknown_tenant", "No such tenant.");
			goto end;
		}
		PQclear(res);
	}
	res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		goto db_fail;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		job_error(j, 404, "not_found", "Nothing found.");
		goto end;
	}
	buf_reset(&j->body, 0);
	buf_add(&j->body, PQgetvalue(res, 0, 0),
		(size_t)PQgetlength(res, 0, 0));
	buf_str(&j->body, "\n");
	j->status = j->body.failed ? 500 : 200;
	ok = 1;
	goto end;
db_fail:
	if (PQstatus(conn) != CONNECTION_OK) {
		pgconn_fail(pc, PQerrorMessage(conn));
		job_error(j, 503, "database_unavailable",
			  "The database cannot be reached now.");
	} else {
		log_warn("console: %s", PQresultErrorMessage(res));
		job_error(
			j, 500, "database_error",
			"The database refused the console's query; the gateway's log says why.");
	}
end:
	PQclear(res);
	if (PQstatus(conn) == CONNECTION_OK) {
		PQclear(PQexec(conn, ok ? "COMMIT" : "ROLLBACK"));
		pgconn_ok(pc);
	}
}

/* Runs a tollctl verb: its JSON, wrapped for an action, or its output as
 * is for a download. */
static void
run_ctl(struct worker *w, struct console_job *j)
{
	struct console_ctl_result r;

	if (console_ctl_run(j->cfg, j->actor, (const char *const *)j->argv,
			    !j->text, &w->child, &r) != 0) {
		job_error(j,
			  r.exit == 1   ? 400
			  : r.exit == 2 ? 409
					: 500,
			  r.exit == 1 || r.exit == 2 ? "tollctl_refused"
						     : "tollctl_failed",
			  r.err);
		buf_free(&r.out);
		return;
	}
	buf_reset(&j->body, 0);
	if (j->wrap) {
		size_t n = r.out.len;
		while (n > 0 && (r.out.data[n - 1] == '\n'))
			n--;
		buf_str(&j->body, "{\"ok\":true,\"result\":");
		buf_add(&j->body, n > 0 ? r.out.data : "null", n > 0 ? n : 4);
		buf_str(&j->body, "}\n");
		buf_free(&r.out);
	} else {
		buf_free(&j->body);
		j->body = r.out;
	}
	j->status = j->body.failed ? 500 : 200;
}

/* Does one job. */
static void
run(struct worker *w, struct console_job *j)
{
	struct pgconn *pc = w->pc;
	PGconn *conn;

	if (j->op == CONSOLE_CTL) {
		run_ctl(w, j);
		return;
	}
	if ((conn = pgconn_get(pc)) == NULL) {
		job_error(j, 503, "database_unavailable",
			  "The database cannot be reached now.");
		return;
	}
	switch (j->op) {
	case CONSOLE_OVERVIEW:
		run_read(conn, pc, j, overview_sql, 1, NULL);
		break;
	case CONSOLE_TENANTS:
		run_read(conn, pc, j, tenants_sql, 0, NULL);
		break;
	case CONSOLE_TENANT:
		run_read(conn, pc, j, tenant_sql, 2, j->param[1]);
		break;
	case CONSOLE_CTL:
		break;
	}
}

/* Sets a new connection up: a bound on every statement. */
static int
on_connect(PGconn *conn, void *arg)
{
	PGresult *res = PQexec(conn, "SET statement_timeout = '30s'; "
				     "SET application_name = 'tollgated "
				     "console'");
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	(void)arg;
	PQclear(res);
	return ok ? 0 : -1;
}

/* A console thread: takes jobs of its kind until stopped. */
static void *
console_main(void *arg)
{
	struct worker *w = arg;
	struct jobq *jq = w->pc != NULL ? &q.reads : &q.verbs;

	for (;;) {
		struct console_job *j;

		pthread_mutex_lock(&q.lock);
		while (jq->head == NULL && !q.stopping)
			pthread_cond_wait(&jq->more, &q.lock);
		if (q.stopping) {
			pthread_mutex_unlock(&q.lock);
			break;
		}
		j = jq->head;
		if ((jq->head = j->next) == NULL)
			jq->tail = &jq->head;
		pthread_mutex_unlock(&q.lock);

		run(w, j);

		pthread_mutex_lock(&q.lock);
		j->next = q.done;
		q.done = j;
		pthread_mutex_unlock(&q.lock);
		event_active(q.done_ev, EV_READ, 0);
	}
	return NULL;
}

/* On the loop: hands the finished jobs back, oldest first. */
static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct console_job *list, *rev = NULL;

	(void)fd;
	(void)what;
	(void)arg;
	pthread_mutex_lock(&q.lock);
	list = q.done;
	q.done = NULL;
	pthread_mutex_unlock(&q.lock);
	while (list != NULL) {
		struct console_job *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev != NULL) {
		struct console_job *next = rev->next;
		q.done_cb(rev);
		rev = next;
	}
}

/* Starts the threads. */
int
console_db_start(struct event_base *base, const char *conninfo,
		 void (*done)(struct console_job *j))
{
	q.done_cb = done;
	q.done_ev = event_new(base, -1, 0, done_cb, NULL);
	if (q.done_ev == NULL)
		return -1;
	for (int i = 0; i < CONSOLE_THREADS + CONSOLE_CTL_THREADS; i++) {
		struct worker *w = &q.workers[i];

		if (i < CONSOLE_THREADS) {
			w->pc = pgconn_new("console", conninfo, BACKOFF_MIN_MS,
					   BACKOFF_MAX_MS);
			if (w->pc == NULL)
				return -1;
			pgconn_on_connect(w->pc, on_connect, NULL);
		}
		if (pthread_create(&w->thread, NULL, console_main, w) != 0) {
			pgconn_free(w->pc);
			w->pc = NULL;
			return -1;
		}
		q.nworkers++;
	}
	return 0;
}

/* Queues a job for its kind of thread. */
void
console_db_submit(struct console_job *j)
{
	struct jobq *jq = j->op == CONSOLE_CTL ? &q.verbs : &q.reads;

	j->next = NULL;
	pthread_mutex_lock(&q.lock);
	*jq->tail = j;
	jq->tail = &j->next;
	pthread_cond_signal(&jq->more);
	pthread_mutex_unlock(&q.lock);
}

/* Hands a queue's jobs back undone (status 0), to be freed. */
static void
drop_queued(struct jobq *jq)
{
	while (jq->head != NULL) {
		struct console_job *j = jq->head;
		jq->head = j->next;
		j->status = 0;
		j->next = q.done;
		q.done = j;
	}
	jq->tail = &jq->head;
}

/* Stops the threads: a tollctl still running is told to stop. */
void
console_db_stop(void)
{
	pthread_mutex_lock(&q.lock);
	q.stopping = 1;
	pthread_cond_broadcast(&q.reads.more);
	pthread_cond_broadcast(&q.verbs.more);
	pthread_mutex_unlock(&q.lock);
	for (int i = 0; i < q.nworkers; i++) {
		pid_t child = atomic_load(&q.workers[i].child);
		if (child > 0)
			kill(child, SIGTERM);
	}
	for (int i = 0; i < q.nworkers; i++) {
		pthread_join(q.workers[i].thread, NULL);
		pgconn_free(q.workers[i].pc);
		q.workers[i].pc = NULL;
	}
	q.nworkers = 0;
	drop_queued(&q.reads);
	drop_queued(&q.verbs);
	if (q.done_cb != NULL)
		done_cb(-1, 0, NULL);
	if (q.done_ev != NULL) {
		event_free(q.done_ev);
		q.done_ev = NULL;
	}
}
