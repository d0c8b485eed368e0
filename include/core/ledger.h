/*
 * ledger.h - writing usage records to PostgreSQL, priced.
 *
 * Used by the gateway's writer thread and by `tollctl usage import`, over a
 * blocking libpq connection. One call writes a batch in one transaction:
 * the records are inserted idempotently (a request id already present is
 * left alone), and each newly inserted one is priced: its price row
 * (a tenant's contract price beats the list price), the free-token grants
 * that cover it (balances locked, so no number of writers ever takes one
 * below zero), the largest matching discount, and its costs in nano-units.
 */
#ifndef TOLLGATE_LEDGER_H
#define TOLLGATE_LEDGER_H

#include <libpq-fe.h>

#include "meter.h"

/* Writes the first n records of the list at head (linked by next). Fills
 * each new record's cost fields. Returns the number of records newly
 * inserted, or -1 with *cause (malloc'd, caller frees) after rolling back:
 * then nothing was written and no grant was consumed. */
int ledger_write(PGconn *conn, struct usage_record *head, int n, char **cause)
	__attribute__((warn_unused_result));

#endif
