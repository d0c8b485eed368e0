/*
 * pgwriter.c - ships usage records from the spool to PostgreSQL.
 *
 * Principle: a record leaves the journal only after the transaction that
 * inserted it committed. The request path appends the finished record to
 * the spool (spool.c) and, at most, signals a condition variable. One
 * writer thread owns a blocking libpq connection; it waits until a batch
 * is due (usage_batch records pending, or usage_flush ms), reads the batch
 * back from the journal and hands it to ledger_write(), which inserts and
 * prices it in one transaction, then trims the journal. On a lost
 * connection the same batch is retried with exponential backoff while the
 * journal grows; each row's key is (request_id, ts) and the insert does
 * nothing on conflict, so a batch replayed after an unknown commit outcome,
 * or after a crash between commit and trim, is written, and priced, once.
 *
 * A batch the server refuses for its data (SQLSTATE class 22 or 23: a value
 * out of range, a constraint) would block the queue forever; it is retried
 * one record at a time and the record that still fails goes to the spool's
 * rejected.jnl, logged by request id. Records the journal could not take
 * (a full disk) wait in memory and are shipped first.
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
#include "spool.h"

#define PING_IDLE_MS 1000 /* an idle writer checks the database this often */

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct usage_record *mem, **mem_tail; /* not journaled: disk failing */
	int64_t nmem;
	int64_t pending;          /* appended, not yet read back (a hint) */
	int stopping;
	int64_t stop_deadline_ms;
	char *conninfo;
	int batch;
	int flush_ms;
	PGconn *conn;
	int64_t last_contact_ms;
	atomic_int db_ok;
	atomic_llong written;
	atomic_llong rejected;
} w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* Journals a finished record, or keeps it in memory when the journal
 * cannot take it; takes ownership. Never waits on the database. */
void
pgwriter_submit(struct usage_record *rec)
{
	int journaled = spool_append(rec) == 0;

	pthread_mutex_lock(&w.lock);
	if (journaled) {
		w.pending++;
	} else {
		rec->next = NULL;
		*w.mem_tail = rec;
		w.mem_tail = &rec->next;
		w.nmem++;
		rec = NULL;
	}
	if (w.pending + w.nmem >= w.batch)
		pthread_cond_signal(&w.cond);
	pthread_mutex_unlock(&w.lock);
	meter_record_free(rec);
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
		if (atomic_load(&w.db_ok))
			log_warn("usage writer: database: %s",
				 PQerrorMessage(w.conn));
		PQfinish(w.conn);
		w.conn = NULL;
		return -1;
	}
	log_info("usage writer: connected to the database");
	return 0;
}

/* Drops the connection after a failure. */
static void
writer_disconnect(void)
{
	if (w.conn != NULL)
		PQfinish(w.conn);
	w.conn = NULL;
}

/* Whether a ledger failure is about the records themselves (SQLSTATE
 * class 22 data exception or 23 integrity violation) on a live
 * connection, rather than about the database being away. */
static int
data_error(const char *cause)
{
	const char *st = cause != NULL ? strstr(cause, "[SQLSTATE ") : NULL;

	if (w.conn == NULL || PQstatus(w.conn) != CONNECTION_OK || st == NULL)
		return 0;
	st += 10;
	return strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0;
}

/* Writes one record alone; a data error sends it to rejected.jnl. 0, or
 * -1 when the database failed. */
static int
write_one(struct usage_record *r)
{
	struct usage_record *next = r->next;
	char *cause = NULL;
	int rc;

	r->next = NULL;
	rc = ledger_write(w.conn, r, 1, &cause);
	r->next = next;
	if (rc >= 0) {
		if (r->inserted)
			metrics_spend(r);
		free(cause);
		return 0;
	}
	if (!data_error(cause)) {
		log_warn("usage writer: %s", cause ? cause : "failed");
		free(cause);
		writer_disconnect();
		return -1;
	}
	atomic_fetch_add(&w.rejected, 1);
	log_error("usage writer: the ledger rejects record %s (%s); kept in "
		  "the spool's rejected.jnl%s", r->request_id, cause,
		  spool_reject(r) == 0 ? "" : " (and that failed too)");
	free(cause);
	return 0;
}

/* Writes one batch, priced, in one transaction (ledger.c). 0 or -1. */
static int
write_batch(struct usage_record *batch, int n)
{
	char *cause = NULL;

	if (writer_connect() != 0)
		return -1;
	w.last_contact_ms = clock_mono_ms();
	if (ledger_write(w.conn, batch, n, &cause) < 0) {
		if (data_error(cause)) {
			log_warn("usage writer: batch of %d records: %s; "
				 "writing them one by one", n, cause);
			free(cause);
			for (struct usage_record *r = batch; n-- > 0 && r;
			     r = r->next)
				if (write_one(r) != 0)
					return -1;
			return 0;
		}
		log_warn("usage writer: batch of %d records: %s", n,
			 cause != NULL ? cause : "failed");
		free(cause);
		writer_disconnect();
		return -1;
	}
	for (struct usage_record *r = batch; n-- > 0 && r != NULL; r = r->next)
		if (r->inserted)
			metrics_spend(r);
	return 0;
}

/* An idle writer checks now and then that the database is there, so
 * /readyz and on_db_down follow it without traffic. */
static void
ping(void)
{
	PGresult *res;

	if (clock_mono_ms() - w.last_contact_ms < PING_IDLE_MS)
		return;
	w.last_contact_ms = clock_mono_ms();
	if (writer_connect() != 0) {
		atomic_store(&w.db_ok, 0);
		return;
	}
	res = PQexec(w.conn, "SELECT 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		atomic_store(&w.db_ok, 0);
		writer_disconnect();
	} else {
		if (!atomic_load(&w.db_ok))
			log_info("usage writer: database is back");
		atomic_store(&w.db_ok, 1);
	}
	PQclear(res);
}

/* Takes up to a batch of in-memory records. */
static int
take_memory(struct usage_record **head)
{
	struct usage_record *r, *last = NULL;
	int n = 0;

	pthread_mutex_lock(&w.lock);
	*head = w.mem;
	for (r = w.mem; r != NULL && n < w.batch; r = r->next) {
		last = r;
		n++;
	}
	if (last != NULL) {
		w.mem = last->next;
		last->next = NULL;
		if (w.mem == NULL)
			w.mem_tail = &w.mem;
	}
	w.nmem -= n;
	pthread_mutex_unlock(&w.lock);
	return n;
}

static void
free_list(struct usage_record *r)
{
	while (r != NULL) {
		struct usage_record *next = r->next;
		meter_record_free(r);
		r = next;
	}
}

/* Waits for a batch to be due, a stop, or ms. Returns stopping. */
static int
wait_due(int ms)
{
	int stop;

	pthread_mutex_lock(&w.lock);
	if (!w.stopping && ms > 0 && w.pending + w.nmem < w.batch) {
		struct timespec ts = clock_deadline(ms);
		pthread_cond_timedwait(&w.cond, &w.lock, &ts);
	}
	stop = w.stopping;
	pthread_mutex_unlock(&w.lock);
	return stop;
}

/* The writer thread. */
static void *
writer_main(void *arg)
{
	struct usage_record *hand = NULL;
	int n = 0, from_spool = 0, backoff = 0, more = 0;

	(void)arg;
	if (writer_connect() == 0)
		atomic_store(&w.db_ok, 1);
	w.last_contact_ms = clock_mono_ms();
	for (;;) {
		int stop = wait_due(backoff > 0 ? backoff
				    : hand != NULL || more ? 0 : w.flush_ms);

		if (hand == NULL) {
			n = take_memory(&hand);
			from_spool = n == 0;
			if (from_spool) {
				n = spool_next(w.batch, &hand);
				pthread_mutex_lock(&w.lock);
				w.pending = w.pending > n ? w.pending - n : 0;
				pthread_mutex_unlock(&w.lock);
				more = n == w.batch;
			}
		}
		if (hand == NULL) {
			if (stop)
				break;
			ping();
			continue;
		}
		if (stop && clock_mono_ms() > w.stop_deadline_ms)
			break;
		if (write_batch(hand, n) != 0) {
			if (atomic_exchange(&w.db_ok, 0))
				log_warn("usage writer: database unreachable; "
					 "usage records wait in the spool");
			backoff = backoff == 0 ? 100 : backoff * 2;
			if (backoff > 5000)
				backoff = 5000;
			if (stop) {
				/* Stopping: retry until the deadline. */
				struct timespec ts = { 0, 100000000L };
				nanosleep(&ts, NULL);
			}
			continue;
		}
		if (!atomic_exchange(&w.db_ok, 1))
			log_info("usage writer: database is back; shipping "
				 "the spool");
		backoff = 0;
		atomic_fetch_add(&w.written, n);
		if (from_spool)
			spool_commit();
		free_list(hand);
		hand = NULL;
	}
	if (hand != NULL && !from_spool) {
		/* Not journaled and not shipped: put back, counted as lost
		 * by pgwriter_stop(). */
		pthread_mutex_lock(&w.lock);
		struct usage_record *last = hand;
		while (last->next != NULL)
			last = last->next;
		last->next = w.mem;
		if (w.mem == NULL)
			w.mem_tail = &last->next;
		w.mem = hand;
		w.nmem += n;
		pthread_mutex_unlock(&w.lock);
		hand = NULL;
	}
	free_list(hand);
	writer_disconnect();
	return NULL;
}

/* Starts the writer thread. */
int
pgwriter_start(const char *conninfo, int batch, int flush_ms)
{
	w.mem = NULL;
	w.mem_tail = &w.mem;
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

/* Ships what it can within wait_ms and stops the thread. */
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
	/* Journaled records stay in the spool; these were never journaled. */
	while (w.mem != NULL) {
		struct usage_record *r = w.mem;
		w.mem = r->next;
		meter_record_free(r);
		lost++;
	}
	w.mem_tail = &w.mem;
	w.nmem = 0;
	free(w.conninfo);
	w.conninfo = NULL;
	if (lost > 0)
		log_error("usage writer: %lld records neither journaled nor "
			  "written are lost", (long long)lost);
	return lost;
}

/* Whether the last database operation succeeded. */
int
pgwriter_db_ok(void)
{
	return atomic_load(&w.db_ok);
}

/* Records waiting in memory because the journal could not take them. */
int64_t
pgwriter_in_memory(void)
{
	int64_t n;

	pthread_mutex_lock(&w.lock);
	n = w.nmem;
	pthread_mutex_unlock(&w.lock);
	return n;
}

/* Records committed since start. */
int64_t
pgwriter_written(void)
{
	return atomic_load(&w.written);
}

/* Records the ledger refused, kept in rejected.jnl. */
int64_t
pgwriter_rejected(void)
{
	return atomic_load(&w.rejected);
}
