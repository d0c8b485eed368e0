/*
 * keystore.c - the API key cache and its loader thread.
 *
 * Principle: lookups are on every request's path, so they touch only
 * memory: a sorted array of key hashes, replaced whole (copy on reload)
 * and reference counted so a lookup can copy what it needs after the
 * array was swapped. The loader thread owns a blocking libpq connection,
 * LISTENs on tollgate_keys, and reloads on each notification (bursts are
 * coalesced) and every refresh_ms. While the database is away the last
 * cache stays in force and the thread reconnects with backoff (pgconn.c).
 */
#include <fnmatch.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "keyhash.h"
#include "keystore.h"
#include "clock.h"
#include "log.h"
#include "pgconn.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct key_entry {
	char hash[KEY_HASH_HEXLEN + 1];
	int64_t key_id;
	int64_t tenant_id;
	int64_t expires_at; /* seconds since the epoch; 0 = never */
	char *tenant;
	char *client_subject; /* the tenant's bound certificate, or NULL */
	char *models;
	struct rl_limits rl_tenant, rl_key;
	struct quota_ref *quotas;
	int nquotas;
};

struct key_cache {
	int refs;
	size_t n;
	struct key_entry *e;
};

static struct {
	pthread_t thread;
	pthread_mutex_t lock; /* guards cache and refs */
	struct key_cache *cache;
	struct pgconn *db;
	char *secret;
	int refresh_ms;
	int pipe[2]; /* wakes the thread to stop */
	atomic_int ready;
	atomic_llong count;
} ks = { .lock = PTHREAD_MUTEX_INITIALIZER, .pipe = { -1, -1 } };

/* Drops one reference to a cache, freeing it with the last. */
static void
cache_unref(struct key_cache *c)
{
	int last;

	if (c == NULL)
		return;
	pthread_mutex_lock(&ks.lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&ks.lock);
	if (!last)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->e[i].tenant);
		free(c->e[i].client_subject);
		free(c->e[i].models);
		free(c->e[i].quotas);
	}
	free(c->e);
	free(c);
}

/* Orders entries by hash, for bsearch. */
static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct key_entry *)a)->hash,
		      ((const struct key_entry *)b)->hash);
}

/* Frees a cache nobody references. */
static void
cache_free(struct key_cache *c)
{
	c->refs = 1;
	cache_unref(c);
}

/* Gives each key the quotas of its tenant and its own. 0 or -1. */
static int
attach_quotas(PGconn *conn, struct key_cache *c)
{
	PGresult *res =
		PQexec(conn, "SELECT id, tenant_id, coalesce(key_id, 0), "
			     "coalesce(model_pattern, ''), hard, "
			     "spend_limit IS NOT NULL FROM quotas ORDER BY id");
	int n;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("keystore: loading quotas: %s",
			 PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	n = PQntuples(res);
	for (size_t k = 0; k < c->n && n > 0; k++) {
		struct key_entry *e = &c->e[k];
		for (int i = 0; i < n; i++) {
			int64_t tid = strtoll(PQgetvalue(res, i, 1), NULL, 10);
			int64_t kid = strtoll(PQgetvalue(res, i, 2), NULL, 10);
			struct quota_ref *r;
			if (tid != e->tenant_id ||
			    (kid != 0 && kid != e->key_id) ||
			    e->nquotas >= QUOTA_MAX)
				continue;
			if (e->quotas == NULL &&
			    (e->quotas = calloc(QUOTA_MAX,
						sizeof *e->quotas)) == NULL) {
				PQclear(res);
				return -1;
			}
			r = &e->quotas[e->nquotas++];
			r->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
			snprintf(r->model_pattern, sizeof r->model_pattern,
				 "%s", PQgetvalue(res, i, 3));
			r->hard = PQgetvalue(res, i, 4)[0] == 't';
			r->spend = PQgetvalue(res, i, 5)[0] == 't';
		}
	}
	PQclear(res);
	return 0;
}

/* Reads every usable key into a new cache. NULL on error. */
static struct key_cache *
load_keys(PGconn *conn)
{
	static const char sql[] =
		"SELECT k.hash, k.id, k.tenant_id, t.name, "
		"       array_to_string(k.models, ','), "
		"       coalesce(extract(epoch FROM k.expires_at)::bigint, 0), "
		"       coalesce(tl.rpm, 0), coalesce(tl.tpm, 0), "
		"       coalesce(tl.concurrency, 0), coalesce(kl.rpm, 0), "
		"       coalesce(kl.tpm, 0), coalesce(kl.concurrency, 0), "
		"       t.client_subject "
		"FROM api_keys k JOIN tenants t ON t.id = k.tenant_id "
		"LEFT JOIN rate_limits tl ON tl.tenant_id = k.tenant_id "
		"     AND tl.key_id IS NULL "
		"LEFT JOIN rate_limits kl ON kl.key_id = k.id "
		"WHERE k.revoked_at IS NULL AND NOT t.disabled";
	struct key_cache *c;
	PGresult *res = PQexec(conn, sql);
	int n;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("keystore: loading keys: %s",
			 PQresultErrorMessage(res));
		PQclear(res);
		return NULL;
	}
	n = PQntuples(res);
	c = calloc(1, sizeof *c);
	if (c == NULL || (c->e = calloc((size_t)n + 1, sizeof *c->e)) == NULL) {
		free(c);
		PQclear(res);
		return NULL;
	}
	c->refs = 1;
	for (int i = 0; i < n; i++) {
		struct key_entry *e = &c->e[c->n];
		const char *h = PQgetvalue(res, i, 0);
		if (strlen(h) != KEY_HASH_HEXLEN)
			continue;
		memcpy(e->hash, h, KEY_HASH_HEXLEN + 1);
		e->key_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		e->tenant_id = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		e->tenant = strdup(PQgetvalue(res, i, 3));
		e->models = PQgetisnull(res, i, 4)
				    ? NULL
				    : strdup(PQgetvalue(res, i, 4));
		e->expires_at = strtoll(PQgetvalue(res, i, 5), NULL, 10);
		e->rl_tenant.rpm = strtoll(PQgetvalue(res, i, 6), NULL, 10);
		e->rl_tenant.tpm = strtoll(PQgetvalue(res, i, 7), NULL, 10);
		e->rl_tenant.concurrency =
			strtoll(PQgetvalue(res, i, 8), NULL, 10);
		e->rl_key.rpm = strtoll(PQgetvalue(res, i, 9), NULL, 10);
		e->rl_key.tpm = strtoll(PQgetvalue(res, i, 10), NULL, 10);
		e->rl_key.concurrency =
			strtoll(PQgetvalue(res, i, 11), NULL, 10);
		e->client_subject = PQgetisnull(res, i, 12)
					    ? NULL
					    : strdup(PQgetvalue(res, i, 12));
		c->n++;
	}
	PQclear(res);
	if (attach_quotas(conn, c) != 0) {
		cache_free(c);
		return NULL;
	}
	qsort(c->e, c->n, sizeof *c->e, entry_cmp);
	return c;
}

/* Replaces the cache with a fresh load. 0 or -1. */
static int
reload(PGconn *conn)
{
	struct key_cache *c = load_keys(conn), *old;

	if (c == NULL)
		return -1;
	pthread_mutex_lock(&ks.lock);
	old = ks.cache;
	ks.cache = c;
	pthread_mutex_unlock(&ks.lock);
	cache_unref(old);
	atomic_store(&ks.count, (long long)c->n);
	if (!atomic_exchange(&ks.ready, 1))
		log_info("keystore: %zu keys loaded", c->n);
	else
		log_debug("keystore: %zu keys reloaded", c->n);
	return 0;
}

/* A new connection LISTENs, then loads the cache. 0 or -1. */
static int
on_connect(PGconn *conn, void *arg)
{
	PGresult *res = PQexec(conn, "LISTEN tollgate_keys");
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	(void)arg;
	if (!ok)
		log_warn("keystore: LISTEN: %s", PQresultErrorMessage(res));
	PQclear(res);
	return ok ? reload(conn) : -1;
}

/* Waits up to ms for the stop pipe; 1 when asked to stop. */
static int
wait_stop(int ms)
{
	struct pollfd pfd = { .fd = ks.pipe[0], .events = POLLIN };

	return poll(&pfd, 1, ms) > 0;
}

/* Reads what the connection received; 1 when a key or tenant changed,
 * -1 when the connection is lost. */
static int
read_notifications(PGconn *conn)
{
	PGnotify *nf;
	int notified = 0;

	if (!PQconsumeInput(conn))
		return -1;
	while ((nf = PQnotifies(conn)) != NULL) {
		notified = 1;
		PQfreemem(nf);
	}
	return notified;
}

/* The loader thread: connect (which loads), then reload on each
 * notification and every refresh_ms, until asked to stop. */
static void *
keystore_main(void *arg)
{
	PGconn *seen = NULL;
	int64_t next_refresh = 0;

	(void)arg;
	for (;;) {
		PGconn *conn = pgconn_get(ks.db);
		struct pollfd pfd[2];
		int64_t now = clock_mono_ms();
		int notified = 0;

		if (conn == NULL) {
			int ms = pgconn_backoff_ms(ks.db);
			if (wait_stop(ms > 0 ? ms : 100))
				break;
			continue;
		}
		if (conn != seen) {
			/* A new connection loaded the cache already. */
			seen = conn;
			next_refresh = now + ks.refresh_ms;
		}
		pfd[0].fd = ks.pipe[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = PQsocket(conn);
		pfd[1].events = POLLIN;
		if (poll(pfd, 2,
			 next_refresh > now ? (int)(next_refresh - now) : 0) <
		    0)
			continue;
		if (pfd[0].revents)
			break;
		if (pfd[1].revents &&
		    (notified = read_notifications(conn)) < 0) {
			pgconn_fail(ks.db, PQerrorMessage(conn));
			continue;
		}
		if (notified || clock_mono_ms() >= next_refresh) {
			if (reload(conn) != 0) {
				pgconn_fail(ks.db, "loading the keys failed");
				continue;
			}
			pgconn_ok(ks.db);
			next_refresh = clock_mono_ms() + ks.refresh_ms;
		}
	}
	return NULL;
}

/* Starts the loader thread. */
int
keystore_start(const char *conninfo, const char *secret, int refresh_ms)
{
	if (pipe(ks.pipe) != 0)
		return -1;
	ks.db = pgconn_new("keystore", conninfo, BACKOFF_MIN_MS,
			   BACKOFF_MAX_MS);
	ks.secret = strdup(secret != NULL ? secret : "");
	if (ks.db == NULL || ks.secret == NULL)
		return -1;
	pgconn_on_connect(ks.db, on_connect, NULL);
	ks.refresh_ms = refresh_ms;
	if (pthread_create(&ks.thread, NULL, keystore_main, NULL) != 0) {
		log_error("keystore: cannot start its thread");
		return -1;
	}
	return 0;
}

/* Stops the loader thread and frees the cache. */
void
keystore_stop(void)
{
	if (ks.pipe[1] < 0)
		return;
	if (write(ks.pipe[1], "x", 1) != 1)
		log_warn("keystore: cannot wake the loader thread");
	pthread_join(ks.thread, NULL);
	close(ks.pipe[0]);
	close(ks.pipe[1]);
	ks.pipe[0] = ks.pipe[1] = -1;
	cache_unref(ks.cache);
	ks.cache = NULL;
	pgconn_free(ks.db);
	ks.db = NULL;
	free(ks.secret);
}

/* Looks a presented key up in the cache. */
enum key_status
keystore_lookup(const char *key, size_t len, struct key_grant *g)
{
	struct key_entry probe, *e;
	struct key_cache *c;
	enum key_status st = KEY_UNKNOWN;

	memset(g, 0, sizeof *g);
	if (!keyhash_well_formed(key, len))
		return KEY_UNKNOWN;
	keyhash_hash(ks.secret, key, len, probe.hash);
	pthread_mutex_lock(&ks.lock);
	c = ks.cache;
	if (c != NULL)
		c->refs++;
	pthread_mutex_unlock(&ks.lock);
	if (c == NULL)
		return KEY_UNKNOWN;
	e = bsearch(&probe, c->e, c->n, sizeof *c->e, entry_cmp);
	if (e != NULL && keyhash_equal(e->hash, probe.hash)) {
		if (e->expires_at != 0 && e->expires_at <= time(NULL)) {
			st = KEY_EXPIRED;
		} else {
			g->key_id = e->key_id;
			g->tenant_id = e->tenant_id;
			g->tenant = strdup(e->tenant);
			g->client_subject = e->client_subject != NULL
						    ? strdup(e->client_subject)
						    : NULL;
			g->models = e->models ? strdup(e->models) : NULL;
			g->rl_tenant = e->rl_tenant;
			g->rl_key = e->rl_key;
			if (e->nquotas > 0 &&
			    (g->quotas = malloc((size_t)e->nquotas *
						sizeof *g->quotas)) != NULL) {
				memcpy(g->quotas, e->quotas,
				       (size_t)e->nquotas * sizeof *g->quotas);
				g->nquotas = e->nquotas;
			}
			st = KEY_OK;
		}
	}
	cache_unref(c);
	return st;
}

/* Frees what a lookup filled in. */
void
keystore_grant_clear(struct key_grant *g)
{
	free(g->tenant);
	free(g->client_subject);
	free(g->models);
	free(g->quotas);
	memset(g, 0, sizeof *g);
}

/* Whether model matches one of the grant's comma-separated patterns. */
int
keystore_model_allowed(const struct key_grant *g, const char *model)
{
	const char *p;

	if (g->models == NULL || *g->models == '\0')
		return 1;
	p = g->models;
	while (*p != '\0') {
		char pat[256];
		size_t n = strcspn(p, ",");
		if (n < sizeof pat) {
			memcpy(pat, p, n);
			pat[n] = '\0';
			if (fnmatch(pat, model, 0) == 0)
				return 1;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* Whether the cache was loaded at least once. */
int
keystore_ready(void)
{
	return atomic_load(&ks.ready);
}

/* Keys in the cache. */
int64_t
keystore_count(void)
{
	return atomic_load(&ks.count);
}
