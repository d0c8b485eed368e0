/*
 * pgwriter.c - batched, asynchronous writes of usage records.
 *
 * Principle: the request path only links a finished record into a queue
 * under a mutex and signals a condition variable. One writer thread owns a
 * blocking libpq connection and hands the queue, at most `batch` records at
 * a time and waiting at most `flush_ms` to fill a batch, to ledger_write(),
 * which inserts and prices them in one transaction. A batch leaves memory
 * only after that transaction committed; on any error the connection is
 * dropped and the same batch is retried with exponential backoff. Each
 * row's key is (request_id, ts) and the insert does nothing on conflict,
 * so a batch replayed after an unknown commit outcome is written, and
 * priced, exactly once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>

#include "clock.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "pgwriter.h"

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

/* Connects, or reports why not. 0 or -1. */
static int
writer_connect(void)
{
	if (w.conn != NULL && PQstatus(w.conn) == CONNECTION_OK)
		return 0;
	if (w.conn != NULL)
		PQfinish(w.conn);
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

/* Writes one batch (the first n records of the list), priced, in one
 * transaction (ledger.c). 0 or -1. */
static int
write_batch(struct usage_record *batch, int n)
{
	char *cause = NULL;

	if (writer_connect() != 0)
		return -1;
	if (ledger_write(w.conn, batch, n, &cause) < 0) {
		log_warn("usage writer: batch of %d records: %s", n,
			 cause != NULL ? cause : "failed");
		free(cause);
		PQfinish(w.conn);
		w.conn = NULL;
		return -1;
	}
	for (struct usage_record *r = batch; n-- > 0 && r != NULL; r = r->next)
		if (r->inserted)
			metrics_spend(r);
	return 0;
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
