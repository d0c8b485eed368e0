/*
 * pgwriter.h - ships usage records from the journal to PostgreSQL, in
 * batches, off the request path.
 *
 * A writer thread with its own libpq connection (pgconn.h) reads what the
 * journal holds (spool.h), inserts it in batches through ledger_write()
 * (ON CONFLICT DO NOTHING on the request id, so a batch retried after a
 * lost commit acknowledgement is written once), trims the journal after
 * each commit, and retries with backoff while the database is away. It
 * only reads the journal and writes the ledger: requests hand their
 * records to the journal (spool_submit), never to the writer.
 */
#ifndef TOLLGATE_PGWRITER_H
#define TOLLGATE_PGWRITER_H

#include <stdint.h>

/* Starts the writer thread. 0 or -1. */
int pgwriter_start(const char *conninfo, int batch, int flush_ms)
	__attribute__((warn_unused_result));

/* Ships what the journal holds, waiting at most wait_ms, then stops the
 * thread; what is left stays in the journal. */
void pgwriter_stop(int wait_ms);

int pgwriter_db_ok(void);        /* the last database operation succeeded */
int64_t pgwriter_written(void);  /* records committed since start */
int64_t pgwriter_rejected(void); /* refused by the ledger, set aside */

#endif
