/*
 * pgwriter.h - ships usage records to PostgreSQL, in batches, off the
 * request path.
 *
 * Workers hand finished records to pgwriter_submit(), which appends them
 * to the spool (spool.h); a writer thread with its own libpq connection
 * reads them back and inserts them in batches (ON CONFLICT DO NOTHING on
 * the request id, so a batch retried after a lost commit acknowledgement
 * is written once), trims the spool after each commit, and retries with
 * backoff while the database is away.
 */
#ifndef TOLLGATE_PGWRITER_H
#define TOLLGATE_PGWRITER_H

#include <stdint.h>
#include "meter.h"

/* Starts the writer thread. 0 or -1. */
int pgwriter_start(const char *conninfo, int batch, int flush_ms)
	__attribute__((warn_unused_result));

/* Journals a record (in memory when the spool fails); takes ownership.
 * Never blocks on the database. */
void pgwriter_submit(struct usage_record *rec);

/* Ships what the spool holds, waiting at most wait_ms, then stops the
 * thread; what is left stays in the spool. Returns the number of records
 * lost: neither journaled nor written. */
int64_t pgwriter_stop(int wait_ms);

int pgwriter_db_ok(void);       /* the last database operation succeeded */
int64_t pgwriter_in_memory(void); /* not journaled (spool failing) */
int64_t pgwriter_written(void);   /* records committed since start */
int64_t pgwriter_rejected(void);  /* refused by the ledger, set aside */

#endif
