/*
 * pgconn.c - connect, back off, health and notices for a database
 * thread's connection (pgconn.h).
 *
 * An outage is logged twice: a warning with libpq's reason when the first
 * attempt or statement fails, and a line when a connection works again;
 * the attempts in between are logged at debug level only, so a database
 * down for an hour does not fill the log.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "pgconn.h"

struct pgconn {
	char *name;
	char *conninfo;
	PGconn *conn;
	int (*on_connect)(PGconn *, void *);
	void *on_connect_arg;
	int min_backoff_ms, max_backoff_ms;
	int backoff_ms;      /* the current wait after a failure */
	int64_t next_try_ms; /* monotonic: no attempt before */
	int64_t last_used_ms;
	int outage; /* an outage was logged and has not ended */
	atomic_int up;
};

/* Logs the server's notices and warnings as the connection's. */
static void
notice(void *arg, const PGresult *res)
{
	const struct pgconn *c = arg;
	const char *sev =
		PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (sev != NULL && strcmp(sev, "WARNING") == 0)
		log_warn("%s: database warning: %s", c->name,
			 msg != NULL ? msg : "");
	else
		log_debug("%s: database %s: %s", c->name,
			  sev != NULL ? sev : "notice", msg != NULL ? msg : "");
}

/* A new connection. */
struct pgconn *
pgconn_new(const char *name, const char *conninfo, int min_backoff_ms,
	   int max_backoff_ms)
{
	struct pgconn *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->name = strdup(name);
	c->conninfo = strdup(conninfo != NULL ? conninfo : "");
	if (c->name == NULL || c->conninfo == NULL) {
		pgconn_free(c);
		return NULL;
	}
	c->min_backoff_ms = min_backoff_ms;
	c->max_backoff_ms = max_backoff_ms;
	c->last_used_ms = clock_mono_ms();
	return c;
}

/* Closes and frees. */
void
pgconn_free(struct pgconn *c)
{
	if (c == NULL)
		return;
	if (c->conn != NULL)
		PQfinish(c->conn);
	free(c->name);
	free(c->conninfo);
	free(c);
}

/* Sets what runs on each new connection. */
void
pgconn_on_connect(struct pgconn *c, int (*fn)(PGconn *, void *), void *arg)
{
	c->on_connect = fn;
	c->on_connect_arg = arg;
}

/* Drops the connection, logs an outage's start, and backs off. */
void
pgconn_fail(struct pgconn *c, const char *why)
{
	char reason[512];
	size_t n;

	snprintf(reason, sizeof reason, "%s",
		 why != NULL       ? why
		 : c->conn != NULL ? PQerrorMessage(c->conn)
				   : "failed");
	n = strlen(reason);
	while (n > 0 && (reason[n - 1] == '\n' || reason[n - 1] == ' '))
		reason[--n] = '\0';
	if (c->conn != NULL)
		PQfinish(c->conn);
	c->conn = NULL;
	if (!c->outage)
		log_warn("%s: database: %s", c->name, reason);
	else
		log_debug("%s: database: %s", c->name, reason);
	c->outage = 1;
	atomic_store(&c->up, 0);
	c->backoff_ms =
		c->backoff_ms == 0 ? c->min_backoff_ms : c->backoff_ms * 2;
	if (c->backoff_ms > c->max_backoff_ms)
		c->backoff_ms = c->max_backoff_ms;
	c->next_try_ms = clock_mono_ms() + c->backoff_ms;
}

/* The database answered. */
void
pgconn_ok(struct pgconn *c)
{
	if (c->outage)
		log_info("%s: database is back", c->name);
	c->outage = 0;
	c->backoff_ms = 0;
	c->last_used_ms = clock_mono_ms();
	atomic_store(&c->up, 1);
}

/* The connection, connecting when the backoff allows. */
PGconn *
pgconn_get(struct pgconn *c)
{
	if (c->conn != NULL && PQstatus(c->conn) == CONNECTION_OK)
		return c->conn;
	if (c->conn != NULL) {
		pgconn_fail(c, "connection lost");
		return NULL;
	}
	if (clock_mono_ms() < c->next_try_ms)
		return NULL;
	c->conn = PQconnectdb(c->conninfo);
	if (PQstatus(c->conn) != CONNECTION_OK) {
		pgconn_fail(c, NULL);
		return NULL;
	}
	PQsetNoticeReceiver(c->conn, notice, c);
	if (c->on_connect != NULL &&
	    c->on_connect(c->conn, c->on_connect_arg) != 0) {
		pgconn_fail(c, NULL);
		return NULL;
	}
	if (!c->outage)
		log_info("%s: connected to the database", c->name);
	pgconn_ok(c); /* after an outage: "database is back" */
	return c->conn;
}

/* Milliseconds until the next attempt. */
int
pgconn_backoff_ms(const struct pgconn *c)
{
	int64_t left = c->next_try_ms - clock_mono_ms();

	return c->conn == NULL && left > 0 ? (int)left : 0;
}

/* Whether the database was reachable last time. */
int
pgconn_up(const struct pgconn *c)
{
	return c != NULL && atomic_load(&c->up);
}

/* Notes a use of the connection. */
void
pgconn_touch(struct pgconn *c)
{
	c->last_used_ms = clock_mono_ms();
}

/* Checks an idle connection. */
void
pgconn_ping(struct pgconn *c, int idle_ms)
{
	PGconn *conn;
	PGresult *res;

	if (clock_mono_ms() - c->last_used_ms < idle_ms)
		return;
	c->last_used_ms = clock_mono_ms();
	if ((conn = pgconn_get(c)) == NULL)
		return;
	res = PQexec(conn, "SELECT 1");
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		pgconn_ok(c);
	else
		pgconn_fail(c, PQresultErrorMessage(res));
	PQclear(res);
}
