/*
 * spool.h - the local journal every usage record passes through before it
 * reaches PostgreSQL.
 *
 * A request hands its finished record to spool_submit() before the last
 * byte of its response leaves: the journal owns it from then on, on disk
 * or, while the disk fails, in memory. The usage writer waits for a batch
 * (spool_wait), reads records back in order (spool_next), ships them and,
 * once the commit is through, trims the journal (spool_commit). On start,
 * whatever an earlier run left is read first. See spool.c for the format
 * and the guarantees.
 */
#ifndef TOLLGATE_SPOOL_H
#define TOLLGATE_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include "meter.h"

/* Opens the journal in dir (created if missing, locked against a second
 * process), starts the thread that fdatasyncs it every fsync_ms (0: as
 * soon as anything was appended). Segments roll at segment_size bytes.
 * 0, or -1 with *cause (malloc'd). */
int spool_open(const char *dir, int64_t segment_size, int fsync_ms,
	       char **cause) __attribute__((warn_unused_result));

/* Syncs the journal, stops the sync thread, closes and unlocks. What was
 * not shipped stays for the next start. */
void spool_close(void);

/* Takes n finished requests' records (any thread; takes ownership, and
 * sets recs[] to NULL): appended to the journal with one write() for up
 * to 64 of them, or kept in memory when the journal cannot take them.
 * Never waits on the disk beyond that write(), nor on the database. */
void spool_submit(struct usage_record **recs, int n);

/* Appends a record to the journal alone (tests). 0, or -1 when it could
 * not be written: the journal is then failing (spool_failing). */
int spool_append(const struct usage_record *rec);

/* Usage writer only. Waits until batch records are waiting, spool_wake()
 * was called, or ms passed. */
void spool_wait(int batch, int ms);

/* Ends the writer's current or next spool_wait() at once. */
void spool_wake(void);

/* Usage writer only. Takes up to max records into a list at *head (caller
 * frees each with meter_record_free): those kept in memory first, then the
 * journal's, following the last commit. Returns how many; 0 when nothing
 * waits. Call spool_commit once they are in the ledger before reading
 * again. */
int spool_next(int max, struct usage_record **head);

/* Usage writer only: the records spool_next last returned are committed;
 * trims what the journal no longer needs. */
void spool_commit(void);

/* Usage writer only: hands back records spool_next last returned that it
 * could not ship (stopping): journaled ones stay in the journal, the ones
 * from memory are kept again (and counted as lost at spool_close). */
void spool_return(struct usage_record *head);

int64_t spool_in_memory(void); /* records the journal could not take */

/* Appends a record the ledger rejected to dir/rejected.jnl (kept for an
 * operator, never shipped again). 0 or -1. */
int spool_reject(const struct usage_record *rec);

/* Whether appends currently fail; why (e.g. "No space left on device")
 * into buf. */
int spool_failing(char *buf, size_t size);

int64_t spool_pending_bytes(void); /* journal bytes not yet committed */
int64_t spool_torn(void);          /* torn or corrupt records skipped */
int64_t spool_write_errors(void);  /* appends that failed */

/* CRC-32C (Castagnoli) of n bytes, continuing from crc (0 to start). */
uint32_t spool_crc32c(uint32_t crc, const void *p, size_t n);

#endif
