/*
 * keystore.h - the in-memory cache of API keys, loaded from PostgreSQL.
 *
 * A thread holds its own libpq connection, LISTENs on tollgate_keys and
 * reloads the whole cache when tollctl changes a tenant or a key (and
 * every keys_refresh ms as a safety net). The cache is an immutable sorted
 * array swapped in under a lock, so lookups never wait on the database and
 * keys already loaded keep working while it is away.
 */
#ifndef TOLLGATE_KEYSTORE_H
#define TOLLGATE_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "quota.h"
#include "ratelimit.h"

/* What a valid key grants; strings are owned by the caller after lookup. */
struct key_grant {
	int64_t key_id;
	int64_t tenant_id;
	char *tenant;         /* tenant name */
	char *client_subject; /* the client certificate subject the tenant is
				 bound to (tollctl tenant bind), or NULL */
	char *models; /* allowed patterns, comma separated; NULL = any */
	struct rl_limits rl_tenant; /* the tenant's rate limits */
	struct rl_limits rl_key;    /* the key's own */
	struct quota_ref *quotas;   /* the tenant's and the key's quotas */
	int nquotas;
};

enum key_status { KEY_OK, KEY_UNKNOWN, KEY_EXPIRED };

int keystore_start(const char *conninfo, const char *secret, int refresh_ms)
	__attribute__((warn_unused_result));
void keystore_stop(void);

/* Looks a presented key up. On KEY_OK fills *g (free with
 * keystore_grant_clear). */
enum key_status keystore_lookup(const char *key, size_t len,
				struct key_grant *g);
void keystore_grant_clear(struct key_grant *g);

/* Whether a model name is allowed by a grant's patterns. */
int keystore_model_allowed(const struct key_grant *g, const char *model);

int keystore_ready(void);     /* loaded at least once */
int64_t keystore_count(void); /* keys in the cache */

#endif
