/*
 * pgwriter.c - ships usage records from the journal to PostgreSQL.
 *
 * Principle: a record leaves the journal only after the transaction that
 * inserted it committed. Requests hand their finished records to the
 * journal (spool.c), which wakes this thread when a batch is due. The
 * thread owns a blocking libpq connection; it waits until a batch is due
 * (usage_batch records, or usage_flush ms), reads the batch back and hands
 * it to ledger_write(), which inserts and prices it in one transaction,
 * then trims the journal. On a lost connection the same batch is retried
 * with exponential backoff (pgconn.c) while the journal grows; each row's
 * key is (request_id, ts) and the insert does nothing on conflict, so a
 * batch replayed after an unknown commit outcome, or after a crash between
 * commit and trim, is written, and priced, once.
 *
 * A batch the server refuses for its data (SQLSTATE class 22 or 23: a value
 * out of range, a constraint) would block the queue forever; it is retried
 * one record at a time and the record that still fails goes to the spool's
 * rejected.jnl, logged by request id.
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
#include "pgconn.h"
#include "pgwriter.h"
#include "refusals.h"
#include "spool.h"

#define PING_IDLE_MS   1000 /* an idle writer checks the database this often */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define REFUSALS_MS    1000 /* refusals without a key are written this often */

static struct {
	pthread_t thread;
	struct pgconn *db;
	int batch;
	int flush_ms;
	atomic_int stopping;
	int64_t stop_deadline_ms;
	atomic_llong written;
	atomic_llong rejected;
} w;

/* Counts the cost of the records the ledger newly priced. */
static void
count_spend(const struct usage_record *r, int n)
{
	for (; n-- > 0 && r != NULL; r = r->next)
		if (r->inserted && r->price_id != 0 && r->cost != NULL)
			metrics_spend(r->tenant, r->currency,
				      r->cost->billed_nanos,
				      r->cost->list_nanos);
}

/* Whether a ledger failure is about the records themselves (SQLSTATE
 * class 22 data exception or 23 integrity violation) on a live
 * connection, rather than about the database being away. */
static int
data_error(PGconn *conn, const char *cause)
{
	const char *st = cause != NULL ? strstr(cause, "[SQLSTATE ") : NULL;

	if (PQstatus(conn) != CONNECTION_OK || st == NULL)
		return 0;
	st += 10;
	return strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0;
}

/* Writes one record alone; a data error sends it to rejected.jnl. 0, or
 * -1 when the database failed. */
static int
write_one(PGconn *conn, struct usage_record *r)
{
	struct usage_record *next = r->next;
	char *cause = NULL;
	int rc;

	r->next = NULL;
	rc = ledger_write(conn, r, 1, &cause);
	r->next = next;
	if (rc >= 0) {
		count_spend(r, 1);
		free(cause);
		return 0;
	}
	if (!data_error(conn, cause)) {
		pgconn_fail(w.db, cause != NULL ? cause : "failed");
		free(cause);
		return -1;
	}
	atomic_fetch_add(&w.rejected, 1);
	log_error(
		"usage writer: the ledger rejects record %s (%s); kept in the spool's rejected.jnl%s",
		r->request_id, cause,
		spool_reject(r) == 0 ? "" : " (and that failed too)");
	free(cause);
	return 0;
}

/* Writes one batch, priced, in one transaction (ledger.c). 0 or -1. */
static int
write_batch(struct usage_record *batch, int n)
{
	PGconn *conn = pgconn_get(w.db);
	char *cause = NULL;

	if (conn == NULL)
		return -1;
	pgconn_touch(w.db);
	if (ledger_write(conn, batch, n, &cause) >= 0) {
		count_spend(batch, n);
		pgconn_ok(w.db);
		return 0;
	}
	if (!data_error(conn, cause)) {
		log_warn("usage writer: batch of %d records: %s", n,
			 cause != NULL ? cause : "failed");
		pgconn_fail(w.db, cause);
		free(cause);
		return -1;
	}
	log_warn(
		"usage writer: batch of %d records: %s; writing them one by one",
		n, cause);
	free(cause);
	for (struct usage_record *r = batch; n-- > 0 && r; r = r->next)
		if (write_one(conn, r) != 0)
			return -1;
	pgconn_ok(w.db);
	return 0;
}

/* Frees a list of records. */
static void
free_list(struct usage_record *r)
{
	while (r != NULL) {
		struct usage_record *next = r->next;
		meter_record_free(r);
		r = next;
	}
}

/* Writes the counts of refusals without a key (refusals.c), at most
 * every REFUSALS_MS unless forced. A failure keeps them for the next
 * time; it is logged once a minute at most. */
static void
ship_refusals(int force)
{
	static int64_t last_ms, logged_ms;
	int64_t now = clock_mono_ms();
	PGconn *conn;
	char *cause = NULL;

	if (!force && now - last_ms < REFUSALS_MS)
		return;
	last_ms = now;
	conn = pgconn_get(w.db);
	if (conn == NULL || refusals_flush(conn, &cause) == 0)
		return;
	if (PQstatus(conn) != CONNECTION_OK)
		pgconn_fail(w.db, cause);
	else if (now - logged_ms >= 60000 || logged_ms == 0) {
		logged_ms = now;
		log_warn("usage writer: %s", cause);
	}
	free(cause);
}

/* The writer thread: wait for a batch, read it, ship it, trim. A batch
 * that failed is kept in hand and retried after the backoff. */
static void *
writer_main(void *arg)
{
	struct usage_record *hand = NULL;
	int n = 0, more = 0;

	(void)arg;
	if (pgconn_get(w.db) != NULL)
		pgconn_touch(w.db);
	for (;;) {
		int backoff = pgconn_backoff_ms(w.db);
		int stop = atomic_load(&w.stopping);

		if (!stop)
			spool_wait(w.batch, backoff > 0 ? backoff
					    : hand != NULL || more
						    ? 0
						    : w.flush_ms);
		stop = atomic_load(&w.stopping);
		if (hand == NULL) {
			n = spool_next(w.batch, &hand);
			more = n == w.batch;
		}
		if (hand == NULL) {
			ship_refusals(stop);
			if (stop)
				break;
			pgconn_ping(w.db, PING_IDLE_MS);
			continue;
		}
		if (stop && clock_mono_ms() > w.stop_deadline_ms)
			break;
		if (write_batch(hand, n) != 0) {
			if (stop) {
				/* Stopping: retry until the deadline. */
				struct timespec ts = { 0, 100000000L };
				nanosleep(&ts, NULL);
			}
			continue;
		}
		atomic_fetch_add(&w.written, n);
		spool_commit();
		free_list(hand);
		hand = NULL;
		ship_refusals(0);
	}
	spool_return(hand);
	return NULL;
}

/* Starts the writer thread. */
int
pgwriter_start(const char *conninfo, int batch, int flush_ms)
{
	w.db = pgconn_new("usage writer", conninfo, BACKOFF_MIN_MS,
			  BACKOFF_MAX_MS);
	if (w.db == NULL)
		return -1;
	w.batch = batch;
	w.flush_ms = flush_ms;
	atomic_store(&w.stopping, 0);
	if (pthread_create(&w.thread, NULL, writer_main, NULL) != 0) {
		log_error("usage writer: cannot start its thread");
		return -1;
	}
	return 0;
}

/* Ships what it can within wait_ms and stops the thread. */
void
pgwriter_stop(int wait_ms)
{
	w.stop_deadline_ms = clock_mono_ms() + wait_ms;
	atomic_store(&w.stopping, 1);
	spool_wake();
	pthread_join(w.thread, NULL);
	pgconn_free(w.db);
	w.db = NULL;
}

/* Whether the last database operation succeeded. */
int
pgwriter_db_ok(void)
{
	return pgconn_up(w.db);
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
