/*
 * pgwriter.c - batched, asynchronous writes of usage records.
 *
 * Principle: the request path only links a finished record into a queue
 * under a mutex and signals a condition variable. One writer thread owns a
 * blocking libpq connection and turns the queue into multi-row INSERTs of
 * at most `batch` records, waiting at most `flush_ms` to fill a batch. A
 * batch leaves memory only after its transaction committed; on any error
 * the connection is dropped and the same batch is retried with exponential
 * backoff. Each row's key is (request_id, ts) and the insert does nothing
 * on conflict, so a batch replayed after an unknown commit outcome is
 * written exactly once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>

#include "clock.h"
#include "log.h"
#include "pgwriter.h"

#define NCOLS 20

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct usage_record *head, **tail;
	int64_t nqueued;
	int stopping;
	int64_t stop_deadline_ms;
	char *conninfo;
	int batch;
	int flush_ms;
	PGconn *conn;
	int months[8];           /* partitions known to exist, as YYYYMM */
	atomic_int db_ok;
	atomic_llong written;
	atomic_llong queued;
} w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* Queues a record for the writer; takes ownership. */
void
pgwriter_submit(struct usage_record *rec)
{
	rec->next = NULL;
	pthread_mutex_lock(&w.lock);
	*w.tail = rec;
	w.tail = &rec->next;
	w.nqueued++;
	atomic_store(&w.queued, w.nqueued);
	if (w.nqueued >= w.batch)
		pthread_cond_signal(&w.cond);
	pthread_mutex_unlock(&w.lock);
}

/* Formats microseconds since the epoch as a UTC timestamp literal. */
static void
format_ts(int64_t us, char *buf, size_t size)
{
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%06d+00", (int)(us % 1000000));
}

/* The month of a timestamp, as YYYYMM. */
static int
month_of(int64_t us)
{
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	return (tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
}

/* Makes sure the month partition of ts exists. 0 or -1. */
static int
ensure_partition(int64_t us)
{
	int m = month_of(us), slot = -1;
	char ts[64];
	const char *params[1] = { ts };
	PGresult *res;
	int ok;

	for (int i = 0; i < 8; i++) {
		if (w.months[i] == m)
			return 0;
		if (w.months[i] == 0 && slot < 0)
			slot = i;
	}
	format_ts(us, ts, sizeof ts);
	res = PQexecParams(w.conn, "SELECT tollgate_usage_partition($1)", 1,
			   NULL, params, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		log_warn("usage partition for %d: %s", m,
			 PQresultErrorMessage(res));
	PQclear(res);
	if (ok)
		w.months[slot >= 0 ? slot : m % 8] = m;
	return ok ? 0 : -1;
}

/* Formats a number into a parameter buffer and returns it. */
static const char *
num(char *buf, long long v)
{
	snprintf(buf, 32, "%lld", v);
	return buf;
}

/* Inserts a batch of records in one statement. 0 or -1. */
static int
insert_batch(struct usage_record *batch, int n)
{
	static const char cols[] =
		"request_id, ts, tenant_id, key_id, endpoint, requested_model, "
		"provider, upstream_model, streamed, status, prompt_tokens, "
		"completion_tokens, cached_tokens, cache_write_tokens, "
		"reasoning_tokens, usage_source, client_aborted, latency_ms, "
		"ttfb_ms, error";
	size_t sqlcap = sizeof cols + 128 + (size_t)n * NCOLS * 8;
	char *sql = malloc(sqlcap);
	char (*bufs)[NCOLS][32] = malloc((size_t)n * sizeof *bufs);
	const char **params = calloc((size_t)n * NCOLS, sizeof *params);
	struct usage_record *r = batch;
	size_t off;
	int p = 0, rc = -1;
	PGresult *res;

	if (sql == NULL || bufs == NULL || params == NULL)
		goto out;
	off = (size_t)snprintf(sql, sqlcap, "INSERT INTO usage_records (%s) "
			       "VALUES ", cols);
	for (int i = 0; i < n; i++, r = r->next) {
		char (*b)[32] = bufs[i];
		int first = p;

		format_ts(r->ts_us, b[1], sizeof b[1]);
		params[p++] = r->request_id;
		params[p++] = b[1];
		params[p++] = r->tenant_id ? num(b[2], r->tenant_id) : NULL;
		params[p++] = r->key_id ? num(b[3], r->key_id) : NULL;
		params[p++] = r->endpoint;
		params[p++] = r->requested_model;
		params[p++] = r->provider;
		params[p++] = r->upstream_model;
		params[p++] = r->streamed ? "t" : "f";
		params[p++] = num(b[9], r->status);
		params[p++] = num(b[10], r->usage.prompt);
		params[p++] = num(b[11], r->usage.completion);
		params[p++] = num(b[12], r->usage.cached);
		params[p++] = num(b[13], r->usage.cache_write);
		params[p++] = num(b[14], r->usage.reasoning);
		params[p++] = meter_source_name(r->source);
		params[p++] = r->client_aborted ? "t" : "f";
		params[p++] = num(b[17], r->latency_ms);
		params[p++] = r->ttfb_ms >= 0 ? num(b[18], r->ttfb_ms) : NULL;
		params[p++] = r->error;
		off += (size_t)snprintf(sql + off, sqlcap - off, "%s(",
					i > 0 ? "," : "");
		for (int c = first; c < p; c++)
			off += (size_t)snprintf(sql + off, sqlcap - off,
						"%s$%d", c > first ? "," : "",
						c + 1);
		off += (size_t)snprintf(sql + off, sqlcap - off, ")");
	}
	snprintf(sql + off, sqlcap - off, " ON CONFLICT DO NOTHING");
	res = PQexecParams(w.conn, sql, p, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_COMMAND_OK)
		rc = 0;
	else
		log_warn("usage insert of %d records failed: %s", n,
			 PQresultErrorMessage(res));
	PQclear(res);
out:
	free(sql);
	free(bufs);
	free(params);
	return rc;
}

/* Connects, or reports why not. 0 or -1. */
static int
writer_connect(void)
{
	if (w.conn != NULL && PQstatus(w.conn) == CONNECTION_OK)
		return 0;
	if (w.conn != NULL)
		PQfinish(w.conn);
	memset(w.months, 0, sizeof w.months);
	w.conn = PQconnectdb(w.conninfo);
	if (PQstatus(w.conn) != CONNECTION_OK) {
		log_warn("usage writer: database: %s",
			 PQerrorMessage(w.conn));
		PQfinish(w.conn);
		w.conn = NULL;
		return -1;
	}
	log_info("usage writer: connected to the database");
	return 0;
}

/* Writes one batch (the first n records of the list) in a transaction,
 * creating missing month partitions first. 0 or -1. */
static int
write_batch(struct usage_record *batch, int n)
{
	struct usage_record *r = batch;

	if (writer_connect() != 0)
		return -1;
	for (int i = 0; i < n; i++, r = r->next)
		if (ensure_partition(r->ts_us) != 0)
			goto fail;
	if (insert_batch(batch, n) != 0)
		goto fail;
	return 0;
fail:
	PQfinish(w.conn);
	w.conn = NULL;
	return -1;
}

/* The writer thread: take up to a batch, write it, retry with backoff. */
static void *
writer_main(void *arg)
{
	int backoff = 0;

	if (writer_connect() == 0)
		atomic_store(&w.db_ok, 1);
	for (;;) {
		struct usage_record *batch, *r, *rest;
		int n = 0;

		pthread_mutex_lock(&w.lock);
		if (w.nqueued < w.batch && !w.stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)(backoff > 0 ? backoff
							 : w.flush_ms) * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&w.cond, &w.lock, &ts);
		}
		if (w.head == NULL) {
			int stop = w.stopping;
			pthread_mutex_unlock(&w.lock);
			if (stop)
				break;
			continue;
		}
		if (w.stopping && clock_mono_ms() > w.stop_deadline_ms) {
			pthread_mutex_unlock(&w.lock);
			break;
		}
		/* Take the batch off the queue's head; the rest stays. */
		batch = w.head;
		for (r = batch; r != NULL && n < w.batch; r = r->next)
			n++;
		pthread_mutex_unlock(&w.lock);

		if (write_batch(batch, n) != 0) {
			atomic_store(&w.db_ok, 0);
			backoff = backoff == 0 ? 100 : backoff * 2;
			if (backoff > 5000)
				backoff = 5000;
			continue;
		}
		atomic_store(&w.db_ok, 1);
		backoff = 0;
		atomic_fetch_add(&w.written, n);

		pthread_mutex_lock(&w.lock);
		r = w.head;
		for (int i = 0; i < n; i++) {
			rest = r->next;
			if (i == n - 1) {
				w.head = rest;
				if (rest == NULL)
					w.tail = &w.head;
			}
			meter_record_free(r);
			r = rest;
		}
		w.nqueued -= n;
		atomic_store(&w.queued, w.nqueued);
		pthread_mutex_unlock(&w.lock);
	}
	if (w.conn != NULL)
		PQfinish(w.conn);
	w.conn = NULL;
	return NULL;
}

/* Starts the writer thread. */
int
pgwriter_start(const char *conninfo, int batch, int flush_ms)
{
	w.head = NULL;
	w.tail = &w.head;
	w.conninfo = strdup(conninfo != NULL ? conninfo : "");
	w.batch = batch;
	w.flush_ms = flush_ms;
	w.stopping = 0;
	if (pthread_create(&w.thread, NULL, writer_main, NULL) != 0) {
		log_error("usage writer: cannot start its thread");
		return -1;
	}
	return 0;
}

/* Flushes what it can within wait_ms and stops the thread. */
int64_t
pgwriter_stop(int wait_ms)
{
	int64_t lost = 0;

	pthread_mutex_lock(&w.lock);
	w.stopping = 1;
	w.stop_deadline_ms = clock_mono_ms() + wait_ms;
	pthread_cond_signal(&w.cond);
	pthread_mutex_unlock(&w.lock);
	pthread_join(w.thread, NULL);
	while (w.head != NULL) {
		struct usage_record *r = w.head;
		w.head = r->next;
		meter_record_free(r);
		lost++;
	}
	w.tail = &w.head;
	w.nqueued = 0;
	free(w.conninfo);
	w.conninfo = NULL;
	if (lost > 0)
		log_error("usage writer: %lld records could not be written",
			  (long long)lost);
	return lost;
}

/* Whether the last database operation succeeded. */
int
pgwriter_db_ok(void)
{
	return atomic_load(&w.db_ok);
}

/* Records waiting to be written. */
int64_t
pgwriter_queued(void)
{
	return atomic_load(&w.queued);
}

/* Records committed since start. */
int64_t
pgwriter_written(void)
{
	return atomic_load(&w.written);
}
