/*
 * pgwriter.h - ships usage records to PostgreSQL, in batches, off the
 * request path.
 *
 * Workers hand finished records to pgwriter_submit(), which only links them
 * into a queue; a writer thread with its own libpq connection inserts them
 * in batches (ON CONFLICT DO NOTHING on the request id, so a batch retried
 * after a lost commit acknowledgement is written once) and retries with
 * backoff while the database is away. The local spool slots in front of
 * this queue.
 */
#ifndef TOLLGATE_PGWRITER_H
#define TOLLGATE_PGWRITER_H

#include <stdint.h>
#include "meter.h"

/* Starts the writer thread. 0 or -1. */
int pgwriter_start(const char *conninfo, int batch, int flush_ms)
	__attribute__((warn_unused_result));

/* Queues a record; takes ownership. Never blocks on the database. */
void pgwriter_submit(struct usage_record *rec);

/* Writes what is queued, waiting at most wait_ms, then stops the thread.
 * Returns the number of records that could not be written. */
int64_t pgwriter_stop(int wait_ms);

int pgwriter_db_ok(void);       /* the last database operation succeeded */
int64_t pgwriter_queued(void);  /* records waiting */
int64_t pgwriter_written(void); /* records committed since start */

#endif
