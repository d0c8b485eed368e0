/*
 * refusals.h - requests refused before a key was known, counted per
 * source address and minute rather than recorded one by one, and the
 * rate at which refusals are logged.
 */
#ifndef TOLLGATE_REFUSALS_H
#define TOLLGATE_REFUSALS_H

#include <libpq-fe.h>

/* Counts a refusal of a request from address peer (text) that had no
 * valid key. Any thread. */
void refusals_note(const char *peer);

/* Writes the counts gathered so far to unauthenticated_refusals, adding
 * to the rows already there. 0 (nothing left to write), or -1 with *cause
 * (malloc'd): the counts are kept for the next try. The usage writer's
 * thread. */
int refusals_flush(PGconn *conn, char **cause);

/* Whether a refusal may be logged now: at most a few a second in all,
 * the rest counted and reported in the next line that is. *suppressed is
 * set to the refusals not logged since the last one that was. */
int refusals_log_due(long long *suppressed);

/* Registers the figures for /metrics. */
void refusals_init(void);

#endif
