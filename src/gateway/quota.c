/*
 * quota.c - the quota thread: reservations and settlements in PostgreSQL.
 *
 * Principle: a hard quota must hold across any number of gateways, so its
 * state lives in one place, quota_counters, and every admission reserves
 * its worst case there in a short transaction that locks the counters it
 * needs in quota id order (tollgate_quota_reserve). The guarantee: a quota
 * is exceeded only by requests that used more than their reserved worst
 * case (a prompt larger than estimated), by that difference, however many
 * gateways and concurrent requests there are. Workers hand jobs to this
 * thread and park the request on an event; the thread answers by
 * activating it. When PostgreSQL cannot be reached the job fails at once
 * and the request is refused (503) if a hard quota applies (soft ones only
 * warn, so those requests are served); leases already held keep admitting
 * what they hold. Reservations of a gateway that died are released after
 * an hour.
 *
 * Leases make the common case cheap: for hard token quotas with room, the
 * thread reserves a slice of what is left (an eighth, renewed every
 * LEASE_EVERY_MS with the tokens used meanwhile) and workers admit against
 * it under a mutex, without parking. A lease is reserved in the counter
 * before any of it is handed out, so the bound above is unchanged. Leases
 * vanish in a quota's last tenth, or when smaller than four requests' worst
 * case, where each request is reserved on its own again.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <openssl/rand.h>

#include "clock.h"
#include "log.h"
#include "pgconn.h"
#include "quota.h"
#include "sqlarr.h"

#define EXPIRE_EVERY_MS 60000

/* A settlement waiting for the thread. */
struct settle {
	char request_id[40];
	int64_t tokens;
	struct settle *next;
};

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct quota_job *jobs, **jtail;
	struct settle *settles, **stail;
	int stop;
	struct pgconn *db;
	int started;
} q = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* This gateway's leases (sql/006_quotas.sql), shared by the
 * workers, which admit against them, and the quota thread, which renews
 * them. avail = leased - inflight - pending. */
struct lease {
	int64_t quota_id;
	int64_t end_ms;    /* the period's end on the policy clock */
	int64_t leased;    /* tokens the lease holds in the counter */
	int64_t inflight;  /* worst cases of requests admitted on it */
	int64_t pending;   /* tokens used, not yet reported */
	int64_t last_ms;   /* last admission asked of it */
	int64_t max_worst; /* the largest worst case asked of it */
	int want;          /* asked for, or must keep being renewed */
};

#define LEASE_MAX      1024
#define LEASE_EVERY_MS 200     /* renewal period */
#define LEASE_IDLE_MS  30000   /* an unused lease is given back */
#define LEASE_FRACTION "0.125" /* of what a quota has left, per gateway */

static struct {
	pthread_mutex_t lock;
	struct lease l[LEASE_MAX];
	int n;
	char gateway[32];
} lt = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Finds a quota's lease; adds it when add is set. Caller holds lt.lock. */
static struct lease *
do_lease(int64_t quota_id, int add)
{
	for (int i = 0; i < lt.n; i++)
		if (lt.l[i].quota_id == quota_id)
			return &lt.l[i];
	if (!add || lt.n == LEASE_MAX)
		return NULL;
	memset(&lt.l[lt.n], 0, sizeof lt.l[lt.n]);
	lt.l[lt.n].quota_id = quota_id;
	return &lt.l[lt.n++];
}

/* Admits locally when every quota's lease has room. */
int
quota_lease_take(const int64_t *ids, int n, int64_t tokens, int64_t now_ms)
{
	struct lease *ls[QUOTA_MAX];
	int ok = 1, ask = 0;

	pthread_mutex_lock(&lt.lock);
	for (int i = 0; i < n; i++) {
		struct lease *l = do_lease(ids[i], 1);
		ls[i] = l;
		if (l == NULL) {
			ok = 0;
			continue;
		}
		l->last_ms = now_ms;
		if (tokens > l->max_worst)
			l->max_worst = tokens;
		if (!l->want) {
			l->want = 1;
			ask = 1;
		}
		if (now_ms >= l->end_ms ||
		    l->leased - l->inflight - l->pending < tokens)
			ok = 0;
	}
	if (ok)
		for (int i = 0; i < n; i++)
			ls[i]->inflight += tokens;
	pthread_mutex_unlock(&lt.lock);
	if (ask) {
		pthread_mutex_lock(&q.lock);
		pthread_cond_signal(&q.cond);
		pthread_mutex_unlock(&q.lock);
	}
	return ok;
}

/* Gives back a request's worst case and counts what it used. */
void
quota_lease_return(const int64_t *ids, int n, int64_t tokens, int64_t used)
{
	pthread_mutex_lock(&lt.lock);
	for (int i = 0; i < n; i++) {
		struct lease *l = do_lease(ids[i], 0);
		if (l == NULL)
			continue;
		l->inflight -= tokens;
		l->pending += used;
	}
	pthread_mutex_unlock(&lt.lock);
}

/* Queues a reservation. */
void
quota_reserve(struct quota_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&q.lock);
	*q.jtail = job;
	q.jtail = &job->next;
	pthread_cond_signal(&q.cond);
	pthread_mutex_unlock(&q.lock);
}

/* Queues a settlement. */
void
quota_settle(const char *request_id, int64_t tokens)
{
	struct settle *s = calloc(1, sizeof *s);

	if (s == NULL) {
		log_error(
			"quota: out of memory; request %s stays reserved until it expires",
			request_id);
		return;
	}
	snprintf(s->request_id, sizeof s->request_id, "%s", request_id);
	s->tokens = tokens;
	pthread_mutex_lock(&q.lock);
	*q.stail = s;
	q.stail = &s->next;
	pthread_cond_signal(&q.cond);
	pthread_mutex_unlock(&q.lock);
}

/* Reads the reservation rows of a batch into its jobs. */
static void
reserve_results(struct quota_job **jobs, int njobs, PGresult *res)
{
	for (int i = 0; i < njobs; i++)
		jobs[i]->status = 0;
	for (int r = 0; r < PQntuples(res); r++) {
		int i = atoi(PQgetvalue(res, r, 0)) - 1;
		int fits = PQgetvalue(res, r, 2)[0] == 't';
		int hard = PQgetvalue(res, r, 6)[0] == 't';
		struct quota_job *job;
		if (i < 0 || i >= njobs)
			continue;
		job = jobs[i];
		if (fits || job->status == 1 || (!hard && job->soft_exceeded))
			continue;
		job->quota_id = strtoll(PQgetvalue(res, r, 1), NULL, 10);
		job->limit = strtoll(PQgetvalue(res, r, 3), NULL, 10);
		job->used = strtoll(PQgetvalue(res, r, 4), NULL, 10);
		job->reserved = strtoll(PQgetvalue(res, r, 5), NULL, 10);
		/* Over on spend rather than tokens: report that. */
		if (!PQgetisnull(res, r, 7) &&
		    (job->limit == 0 ||
		     job->used + job->reserved + job->tokens <= job->limit)) {
			job->spend = 1;
			job->limit = strtoll(PQgetvalue(res, r, 7), NULL, 10);
			job->used = strtoll(PQgetvalue(res, r, 8), NULL, 10);
			job->reserved =
				strtoll(PQgetvalue(res, r, 9), NULL, 10);
		}
		if (hard)
			job->status = 1;
		else
			job->soft_exceeded = 1;
	}
}

/* Runs a batch: every queued reservation in one statement (one
 * transaction) and every queued settlement in another, pipelined into one
 * round trip. Fills the jobs; returns 0, or -1 when the settlements must
 * be retried (jobs then carry status -1 when their statement failed). */
static int
run_batch(struct quota_job **jobs, int njobs, struct settle **settles,
	  int nsettles)
{
	static const char reserve_sql[] =
		"SELECT idx, quota_id, fits, coalesce(token_limit, 0), used, "
		"reserved, hard, spend_limit_nanos, used_nanos, reserved_nanos "
		"FROM tollgate_quota_reserve($1::text[], $2::text[], "
		"$3::bigint[], $4::text[], $5::text[], $6::timestamptz)";
	static const char settle_sql[] =
		"SELECT tollgate_quota_settle($1::text[], $2::bigint[])";
	struct sqlarr a[7];
	const char *params[6];
	char now[CLOCK_TEXT_MAX];
	int nstmt = 0, rc = 0, failed = 0;
	PGconn *conn = pgconn_get(q.db);

	memset(a, 0, sizeof a);
	for (int i = 0; i < njobs; i++)
		jobs[i]->status = -1;
	if (conn == NULL)
		return -1;
	if (PQenterPipelineMode(conn) != 1) {
		pgconn_fail(q.db, NULL);
		return -1;
	}
	if (njobs > 0) {
		for (int i = 0; i < njobs; i++) {
			const struct quota_job *job = jobs[i];
			struct sqlarr ids = SQLARR_INIT;
			for (int k = 0; k < job->n; k++)
				sqlarr_int(&ids, job->ids[k]);
			sqlarr_text(&a[0], job->request_id);
			sqlarr_text(&a[1], sqlarr_end(&ids));
			sqlarr_int(&a[2], job->tokens);
			sqlarr_text(&a[5], job->provider);
			sqlarr_text(&a[6], job->model);
			sqlarr_free(&ids);
		}
		clock_format(jobs[0]->now_ms * 1000, CLOCK_SQL, now);
		params[0] = sqlarr_end(&a[0]);
		params[1] = sqlarr_end(&a[1]);
		params[2] = sqlarr_end(&a[2]);
		params[3] = sqlarr_end(&a[5]);
		params[4] = sqlarr_end(&a[6]);
		params[5] = now;
		if (params[0] == NULL || params[1] == NULL ||
		    params[2] == NULL || params[3] == NULL ||
		    params[4] == NULL ||
		    !PQsendQueryParams(conn, reserve_sql, 6, NULL, params, NULL,
				       NULL, 0) ||
		    PQpipelineSync(conn) != 1)
			goto broken;
		nstmt++;
	}
	if (nsettles > 0) {
		for (int i = 0; i < nsettles; i++) {
			sqlarr_text(&a[3], settles[i]->request_id);
			sqlarr_int(&a[4], settles[i]->tokens);
		}
		params[0] = sqlarr_end(&a[3]);
		params[1] = sqlarr_end(&a[4]);
		if (params[0] == NULL || params[1] == NULL ||
		    !PQsendQueryParams(conn, settle_sql, 2, NULL, params, NULL,
				       NULL, 0) ||
		    PQpipelineSync(conn) != 1)
			goto broken;
		nstmt++;
	}
	for (int s = 0; s < nstmt; s++) {
		int reserving = s == 0 && njobs > 0;
		PGresult *res;
		/* The statement's result, its NULL end, then the sync. */
		while ((res = PQgetResult(conn)) != NULL) {
			if (PQresultStatus(res) == PGRES_TUPLES_OK) {
				if (reserving)
					reserve_results(jobs, njobs, res);
			} else {
				log_warn("quota: %s: %s",
					 reserving ? "reserve" : "settle",
					 PQresultErrorMessage(res));
				if (!reserving)
					rc = -1;
			}
			PQclear(res);
		}
		res = PQgetResult(conn);
		if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
			PQclear(res);
			goto broken;
		}
		PQclear(res);
	}
	if (PQexitPipelineMode(conn) != 1)
		goto broken;
	pgconn_ok(q.db);
	goto out;
broken:
	for (int i = 0; i < njobs; i++)
		jobs[i]->status = -1;
	pgconn_fail(q.db, NULL);
	failed = 1;
out:
	for (int k = 0; k < 7; k++)
		sqlarr_free(&a[k]);
	return failed ? -1 : rc;
}

/* What the database answered for a lease. */
enum lease_answer { LEASE_UNREACHABLE, LEASE_REFUSED, LEASE_NONE, LEASE_OK };

/* Reports the tokens a lease's requests used and asks for its renewal
 * (fraction of what its quota has left, "0" to give it back, min the
 * least worth holding); fills *end_ms and *leased on LEASE_OK. */
static enum lease_answer
lease_call(int64_t quota_id, int64_t used, const char *fraction, int64_t min,
	   int64_t now, int64_t *end_ms, int64_t *leased)
{
	char qid[24], u[24], name[64], at[CLOCK_TEXT_MAX], m[24];
	const char *params[6] = { name, qid, u, fraction, m, at };
	PGconn *conn = pgconn_get(q.db);
	enum lease_answer ans;
	PGresult *res;

	if (conn == NULL)
		return LEASE_UNREACHABLE;
	snprintf(name, sizeof name, "lease:%s:%lld", lt.gateway,
		 (long long)quota_id);
	snprintf(qid, sizeof qid, "%lld", (long long)quota_id);
	snprintf(u, sizeof u, "%lld", (long long)used);
	snprintf(m, sizeof m, "%lld", (long long)min);
	clock_format(now * 1000, CLOCK_SQL, at);
	res = PQexecParams(conn,
			   "SELECT CASE WHEN period_end = 'infinity' "
			   "THEN 9223372036854775807 ELSE "
			   "(extract(epoch FROM period_end) * 1000)"
			   "::bigint END, leased FROM "
			   "tollgate_quota_lease($1, $2::bigint, $3::bigint, "
			   "$4::numeric, $5::bigint, $6::timestamptz)",
			   6, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ans = PQstatus(conn) == CONNECTION_OK ? LEASE_REFUSED
						      : LEASE_UNREACHABLE;
		log_warn("quota: lease %s: %s", name,
			 PQresultErrorMessage(res));
		pgconn_fail(q.db, PQresultErrorMessage(res));
	} else if (PQntuples(res) == 0) {
		pgconn_ok(q.db);
		ans = LEASE_NONE;
	} else {
		pgconn_ok(q.db);
		*end_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		*leased = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		ans = LEASE_OK;
	}
	PQclear(res);
	return ans;
}

/* Reports and renews every lease that is wanted or holds tokens; gives
 * back those idle for LEASE_IDLE_MS (all of them when stopping). */
static void
renew_leases(int stopping)
{
	int64_t now = clock_policy_ms();

	for (int i = 0;; i++) {
		int64_t pending, quota_id, min, end_ms = 0, leased = 0;
		enum lease_answer ans;
		int give_back;

		pthread_mutex_lock(&lt.lock);
		if (i >= lt.n) {
			pthread_mutex_unlock(&lt.lock);
			break;
		}
		if (!lt.l[i].want && lt.l[i].leased == 0 &&
		    lt.l[i].pending == 0) {
			pthread_mutex_unlock(&lt.lock);
			continue;
		}
		quota_id = lt.l[i].quota_id;
		pending = lt.l[i].pending;
		lt.l[i].pending = 0;
		give_back = stopping || now - lt.l[i].last_ms > LEASE_IDLE_MS;
		/* A lease is worth holding when it admits a few requests. */
		min = 4 * lt.l[i].max_worst;
		pthread_mutex_unlock(&lt.lock);

		ans = lease_call(quota_id, pending,
				 give_back ? "0" : LEASE_FRACTION, min, now,
				 &end_ms, &leased);
		pthread_mutex_lock(&lt.lock);
		switch (ans) {
		case LEASE_REFUSED:
			/* A lease the database refused is dropped. */
			lt.l[i].end_ms = 0;
			/* FALLTHROUGH */
		case LEASE_UNREACHABLE:
			/* Keep what was used for the next report. While the
			 * database is away the lease, reserved in the counter
			 * already, goes on admitting what it holds. */
			lt.l[i].pending += pending;
			break;
		case LEASE_NONE:
			lt.l[i].leased = 0;
			lt.l[i].end_ms = 0;
			lt.l[i].want = 0;
			break;
		case LEASE_OK:
			lt.l[i].end_ms = end_ms;
			lt.l[i].leased = leased;
			if (give_back)
				lt.l[i].want = 0;
			break;
		}
		pthread_mutex_unlock(&lt.lock);
	}
}

/* Releases reservations of gateways that died. */
static void
run_expire(void)
{
	PGconn *conn = pgconn_get(q.db);
	PGresult *res;

	if (conn == NULL)
		return;
	res = PQexec(conn, "SELECT tollgate_quota_expire('1 hour')");
	if (PQresultStatus(res) == PGRES_TUPLES_OK &&
	    atoi(PQgetvalue(res, 0, 0)) > 0)
		log_warn("quota: released %s reservations older than an hour",
			 PQgetvalue(res, 0, 0));
	PQclear(res);
}

#define BATCH_MAX 256

/* The quota thread: takes what is queued, at most BATCH_MAX of each, and
 * runs it as one pipelined batch. */
static void *
quota_main(void *arg)
{
	int64_t next_expire = clock_mono_ms() + EXPIRE_EVERY_MS;
	int64_t next_renew = 0;
	struct quota_job *jobs[BATCH_MAX];
	struct settle *settles[BATCH_MAX];

	pthread_mutex_lock(&q.lock);
	for (;;) {
		int nj = 0, ns = 0, rc;

		if (q.jobs == NULL && q.settles == NULL && !q.stop) {
			struct timespec ts = clock_deadline(LEASE_EVERY_MS);
			pthread_cond_timedwait(&q.cond, &q.lock, &ts);
		}
		if (clock_mono_ms() >= next_renew) {
			pthread_mutex_unlock(&q.lock);
			renew_leases(0);
			next_renew = clock_mono_ms() + LEASE_EVERY_MS;
			pthread_mutex_lock(&q.lock);
		}
		while (q.jobs != NULL && nj < BATCH_MAX) {
			jobs[nj++] = q.jobs;
			q.jobs = q.jobs->next;
		}
		if (q.jobs == NULL)
			q.jtail = &q.jobs;
		for (struct settle *s = q.settles; s != NULL && ns < BATCH_MAX;
		     s = s->next)
			settles[ns++] = s;
		if (nj == 0 && ns == 0) {
			if (q.stop)
				break;
			if (clock_mono_ms() >= next_expire) {
				pthread_mutex_unlock(&q.lock);
				run_expire();
				next_expire = clock_mono_ms() + EXPIRE_EVERY_MS;
				pthread_mutex_lock(&q.lock);
			}
			continue;
		}
		pthread_mutex_unlock(&q.lock);
		rc = run_batch(jobs, nj, settles, ns);
		/* Each request may be freed as soon as its event fires. */
		for (int i = 0; i < nj; i++)
			event_active(jobs[i]->ev, EV_READ, 0);
		pthread_mutex_lock(&q.lock);
		if (rc == 0 || q.stop) {
			/* Settlements are only ever appended: the first ns
			 * are the ones just run. */
			for (int i = 0; i < ns; i++) {
				struct settle *s = q.settles;
				q.settles = s->next;
				free(s);
			}
			if (q.settles == NULL)
				q.stail = &q.settles;
		} else if (ns > 0) {
			/* Retry the settlements after a pause. */
			struct timespec ts = clock_deadline(200);
			pthread_cond_timedwait(&q.cond, &q.lock, &ts);
		}
	}
	pthread_mutex_unlock(&q.lock);
	renew_leases(1);
	return NULL;
}

/* Starts the quota thread. */
int
quota_start(const char *conninfo)
{
	unsigned char raw[8];

	q.jtail = &q.jobs;
	q.stail = &q.settles;
	if (RAND_bytes(raw, sizeof raw) != 1)
		memset(raw, 0, sizeof raw);
	for (size_t i = 0; i < sizeof raw; i++)
		snprintf(lt.gateway + 2 * i, 3, "%02x", raw[i]);
	/* No backoff: each batch tries, and fails fast while the database
	 * is away, so requests under a hard quota are refused at once. */
	q.db = pgconn_new("quota", conninfo, 0, 0);
	if (q.db == NULL)
		return -1;
	if (pthread_create(&q.thread, NULL, quota_main, NULL) != 0)
		return -1;
	q.started = 1;
	return 0;
}

/* Settles what is queued (one try each) and stops the thread. */
void
quota_stop(void)
{
	if (!q.started)
		return;
	pthread_mutex_lock(&q.lock);
	q.stop = 1;
	pthread_cond_signal(&q.cond);
	pthread_mutex_unlock(&q.lock);
	pthread_join(q.thread, NULL);
	q.started = 0;
	pgconn_free(q.db);
	q.db = NULL;
}
