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
 * and the request is refused (503) if a hard quota applies; reservations
 * of a gateway that died are released after an hour.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "clock.h"
#include "log.h"
#include "quota.h"

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
	char *conninfo;
	PGconn *conn;
	int started;
} q = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

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
		log_error("quota: out of memory; request %s stays reserved "
			  "until it expires", request_id);
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

/* Connects if needed. 0 or -1. */
static int
ensure_conn(void)
{
	if (q.conn != NULL && PQstatus(q.conn) == CONNECTION_OK)
		return 0;
	if (q.conn != NULL)
		PQfinish(q.conn);
	q.conn = PQconnectdb(q.conninfo);
	if (PQstatus(q.conn) != CONNECTION_OK) {
		log_warn("quota: database: %s", PQerrorMessage(q.conn));
		PQfinish(q.conn);
		q.conn = NULL;
		return -1;
	}
	return 0;
}

/* Formats milliseconds since the epoch as a UTC timestamp literal. */
static void
format_ms(int64_t ms, char *buf, size_t size)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03d+00", (int)(ms % 1000));
}

/* Runs one reservation; fills the job's results. */
static void
run_reserve(struct quota_job *job)
{
	char ids[QUOTA_MAX * 24 + 4], tokens[24], now[48];
	const char *params[4] = { job->request_id, ids, tokens, now };
	size_t off = 0;
	PGresult *res;

	off += (size_t)snprintf(ids, sizeof ids, "{");
	for (int i = 0; i < job->n; i++)
		off += (size_t)snprintf(ids + off, sizeof ids - off, "%s%lld",
					i ? "," : "", (long long)job->ids[i]);
	snprintf(ids + off, sizeof ids - off, "}");
	snprintf(tokens, sizeof tokens, "%lld", (long long)job->tokens);
	format_ms(job->now_ms, now, sizeof now);
	job->status = -1;
	if (ensure_conn() != 0)
		return;
	res = PQexecParams(q.conn, "SELECT quota_id, fits, coalesce(token_limit, 0), "
			   "used, reserved, hard FROM tollgate_quota_reserve("
			   "$1, $2::bigint[], $3::bigint, $4::timestamptz)",
			   4, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("quota: reserve: %s", PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(q.conn);
		q.conn = NULL;
		return;
	}
	job->status = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		int fits = PQgetvalue(res, i, 1)[0] == 't';
		int hard = PQgetvalue(res, i, 5)[0] == 't';
		if (fits || (job->status == 1))
			continue;
		if (!hard && job->soft_exceeded)
			continue;
		job->quota_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		job->limit = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		job->used = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		job->reserved = strtoll(PQgetvalue(res, i, 4), NULL, 10);
		if (hard)
			job->status = 1;
		else
			job->soft_exceeded = 1;
	}
	PQclear(res);
}

/* Runs one settlement. 0, or -1 when it must be retried. */
static int
run_settle(const struct settle *s)
{
	char tokens[24];
	const char *params[2] = { s->request_id, tokens };
	PGresult *res;
	int ok;

	snprintf(tokens, sizeof tokens, "%lld", (long long)s->tokens);
	if (ensure_conn() != 0)
		return -1;
	res = PQexecParams(q.conn, "SELECT tollgate_quota_settle($1, $2::bigint)",
			   2, NULL, params, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok) {
		log_warn("quota: settle %s: %s", s->request_id,
			 PQresultErrorMessage(res));
		PQfinish(q.conn);
		q.conn = NULL;
	}
	PQclear(res);
	return ok ? 0 : -1;
}

/* Releases reservations of gateways that died. */
static void
run_expire(void)
{
	PGresult *res;

	if (ensure_conn() != 0)
		return;
	res = PQexec(q.conn, "SELECT tollgate_quota_expire('1 hour')");
	if (PQresultStatus(res) == PGRES_TUPLES_OK &&
	    atoi(PQgetvalue(res, 0, 0)) > 0)
		log_warn("quota: released %s reservations older than an hour",
			 PQgetvalue(res, 0, 0));
	PQclear(res);
}

/* The quota thread. */
static void *
quota_main(void *arg)
{
	int64_t next_expire = clock_mono_ms() + EXPIRE_EVERY_MS;

	pthread_mutex_lock(&q.lock);
	for (;;) {
		struct quota_job *job;
		struct settle *s;

		if (q.jobs == NULL && q.settles == NULL && !q.stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&q.cond, &q.lock, &ts);
		}
		if ((job = q.jobs) != NULL) {
			q.jobs = job->next;
			if (q.jobs == NULL)
				q.jtail = &q.jobs;
			pthread_mutex_unlock(&q.lock);
			run_reserve(job);
			/* The request may be freed as soon as this fires. */
			event_active(job->ev, EV_READ, 0);
			pthread_mutex_lock(&q.lock);
			continue;
		}
		if ((s = q.settles) != NULL) {
			int rc;
			pthread_mutex_unlock(&q.lock);
			rc = run_settle(s);
			pthread_mutex_lock(&q.lock);
			if (rc == 0 || q.stop) {
				q.settles = s->next;
				if (q.settles == NULL)
					q.stail = &q.settles;
				free(s);
			} else {
				/* Keep it; back off a little before retrying. */
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 200 * 1000000L;
				ts.tv_sec += ts.tv_nsec / 1000000000L;
				ts.tv_nsec %= 1000000000L;
				pthread_cond_timedwait(&q.cond, &q.lock, &ts);
			}
			continue;
		}
		if (q.stop)
			break;
		if (clock_mono_ms() >= next_expire) {
			pthread_mutex_unlock(&q.lock);
			run_expire();
			next_expire = clock_mono_ms() + EXPIRE_EVERY_MS;
			pthread_mutex_lock(&q.lock);
		}
	}
	pthread_mutex_unlock(&q.lock);
	if (q.conn != NULL)
		PQfinish(q.conn);
	q.conn = NULL;
	return NULL;
}

/* Starts the quota thread. */
int
quota_start(const char *conninfo)
{
	q.jtail = &q.jobs;
	q.stail = &q.settles;
	q.conninfo = strdup(conninfo != NULL ? conninfo : "");
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
	free(q.conninfo);
	q.conninfo = NULL;
}
