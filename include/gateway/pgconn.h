/*
 * pgconn.h - a database thread's connection to PostgreSQL.
 *
 * The gateway's three database threads (the usage writer, the quota
 * thread, the key cache) each own one blocking libpq connection. This
 * module does for all three what each would otherwise do by hand:
 * connect, run a thread's own set-up on every new connection (LISTEN),
 * back off while the database is away (doubling up to a bound), keep
 * the state others read (/readyz, on_db_down), log an outage once when
 * it starts and once when it ends, and route the server's notices and
 * warnings into the log. Never shared between threads, except for
 * pgconn_up(), which any thread may call.
 */
#ifndef TOLLGATE_PGCONN_H
#define TOLLGATE_PGCONN_H

#include <libpq-fe.h>

struct pgconn;

/* A connection named for the log ("usage writer"), to conninfo, that
 * waits between failed attempts from min_backoff_ms, doubling up to
 * max_backoff_ms (0 and 0: every call may try). NULL when out of memory. */
struct pgconn *pgconn_new(const char *name, const char *conninfo,
			  int min_backoff_ms, int max_backoff_ms);
void pgconn_free(struct pgconn *c);

/* Runs fn(conn, arg) on each new connection before it is handed out; a
 * non-zero return fails the connection. */
void pgconn_on_connect(struct pgconn *c, int (*fn)(PGconn *, void *),
		       void *arg);

/* The connection, connected first when there is none and the backoff
 * allows an attempt; NULL when the database cannot be reached now. */
PGconn *pgconn_get(struct pgconn *c);

/* The connection failed (a lost link, a statement that could not run):
 * drops it, logs why when an outage starts, and backs off. */
void pgconn_fail(struct pgconn *c, const char *why);

/* An operation on the connection succeeded: the database is up. */
void pgconn_ok(struct pgconn *c);

/* Milliseconds until the backoff allows the next attempt (0: now). */
int pgconn_backoff_ms(const struct pgconn *c);

/* Whether the last attempt or operation succeeded (any thread). */
int pgconn_up(const struct pgconn *c);

/* Checks an idle connection with SELECT 1 once idle_ms passed since it
 * was last used, so the state follows the database without traffic. */
void pgconn_ping(struct pgconn *c, int idle_ms);

/* Notes that the connection was used now (for pgconn_ping). */
void pgconn_touch(struct pgconn *c);

#endif
