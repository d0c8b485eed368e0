/*
 * refusals.c - refusals without a key, aggregated (refusals.h).
 *
 * Principle: what an unauthenticated client costs the gateway is bounded
 * and small. Its refusal is a count in a table of (minute, address) under
 * a mutex, and a row per address and minute in PostgreSQL, written by the
 * usage writer now and then; never a usage record, never a log line each.
 * The table holds at most TABLE_MAX addresses between two writes; past
 * that, refusals are pooled under ::/0 for their minute.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "buf.h"
#include "clock.h"
#include "metrics.h"
#include "refusals.h"
#include "sqlarr.h"
#include "strmap.h"

#define TABLE_CAP 8192 /* slots; a power of two */
#define TABLE_MAX (TABLE_CAP / 2)
#define POOLED    "::/0"
#define LOG_PER_S 5 /* refusal lines logged per second */
#define LOG_BURST 20

struct slot {
	int64_t minute; /* minutes since the epoch */
	char peer[48];  /* "" when empty */
	int64_t n;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *table; /* TABLE_CAP slots, or NULL when empty */
static size_t used;
static int64_t total;

/* The slot for (minute, peer): its own or the empty one to take. */
static struct slot *
find(struct slot *t, int64_t minute, const char *peer)
{
	size_t i = (size_t)(strmap_hash(peer) ^
			    (uint64_t)minute * 0x9e3779b97f4a7c15ULL) &
		   (TABLE_CAP - 1);
	while (t[i].peer[0] != '\0' &&
	       (t[i].minute != minute || strcmp(t[i].peer, peer) != 0))
		i = (i + 1) & (TABLE_CAP - 1);
	return &t[i];
}

/* Adds n refusals of (minute, peer). Under lock. */
static void
add(int64_t minute, const char *peer, int64_t n)
{
	struct slot *s;

	if (table == NULL && (table = calloc(TABLE_CAP, sizeof *table)) == NULL)
		return;
	s = find(table, minute, peer);
	if (s->peer[0] == '\0' && used >= TABLE_MAX)
		s = find(table, minute, POOLED);
	if (s->peer[0] == '\0') {
		if (used >= TABLE_MAX + 64)
			return; /* pooled rows of many minutes: drop */
		snprintf(s->peer, sizeof s->peer, "%s", peer);
		s->minute = minute;
		used++;
	}
	s->n += n;
}

void
refusals_note(const char *peer)
{
	pthread_mutex_lock(&lock);
	add(clock_wall_us() / 60000000, peer != NULL && *peer ? peer : POOLED,
	    1);
	total++;
	pthread_mutex_unlock(&lock);
}

/* Takes the table for writing. */
static struct slot *
take(void)
{
	struct slot *t;

	pthread_mutex_lock(&lock);
	t = table;
	table = NULL;
	used = 0;
	pthread_mutex_unlock(&lock);
	return t;
}

/* Puts back counts that could not be written. */
static void
put_back(const struct slot *t)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < TABLE_CAP; i++)
		if (t[i].peer[0] != '\0')
			add(t[i].minute, t[i].peer, t[i].n);
	pthread_mutex_unlock(&lock);
}

int
refusals_flush(PGconn *conn, char **cause)
{
	struct slot *t = take();
	struct sqlarr a[3] = { SQLARR_INIT, SQLARR_INIT, SQLARR_INIT };
	const char *params[3];
	PGresult *res;
	int rc = 0;

	if (t == NULL)
		return 0;
	for (size_t i = 0; i < TABLE_CAP; i++) {
		if (t[i].peer[0] == '\0')
			continue;
		sqlarr_int(&a[0], t[i].minute * 60);
		sqlarr_text(&a[1], t[i].peer);
		sqlarr_int(&a[2], t[i].n);
	}
	if (sqlarr_params(a, 3, params) != 0) {
		*cause = strdup("out of memory");
		rc = -1;
	} else {
		res = PQexecParams(
			conn,
			"INSERT INTO unauthenticated_refusals AS r "
			"(minute, source, refusals) "
			"SELECT to_timestamp(m), s::inet, n "
			"FROM unnest($1::bigint[], $2::text[], $3::bigint[]) "
			"AS x(m, s, n) "
			"ON CONFLICT (minute, source) DO UPDATE "
			"SET refusals = r.refusals + EXCLUDED.refusals",
			3, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			char msg[512];
			snprintf(msg, sizeof msg,
				 "unauthenticated_refusals: %s",
				 PQerrorMessage(conn));
			*cause = strdup(msg);
			rc = -1;
		}
		PQclear(res);
	}
	for (int i = 0; i < 3; i++)
		sqlarr_free(&a[i]);
	if (rc != 0)
		put_back(t);
	free(t);
	return rc;
}

int
refusals_log_due(long long *suppressed)
{
	/* A token bucket in thousandths of a line. */
	static int64_t credit, last_ms, skipped;
	int64_t now = clock_mono_us() / 1000;
	int due = 0;

	pthread_mutex_lock(&lock);
	credit += (now - last_ms) * LOG_PER_S;
	last_ms = now;
	if (credit > LOG_BURST * 1000)
		credit = LOG_BURST * 1000;
	if (credit >= 1000) {
		credit -= 1000;
		due = 1;
		*suppressed = skipped;
		skipped = 0;
	} else {
		skipped++;
	}
	pthread_mutex_unlock(&lock);
	return due;
}

static int64_t
read_total(void)
{
	int64_t n;

	pthread_mutex_lock(&lock);
	n = total;
	pthread_mutex_unlock(&lock);
	return n;
}

void
refusals_init(void)
{
	metrics_register(
		"tollgate_unauthenticated_refusals_total", "counter",
		"Requests refused before a valid key was known (aggregated in unauthenticated_refusals).",
		read_total);
}
