/*
 * ctl_scope.c - where a quota or a rate limit applies: a tenant, maybe one
 * of its keys, found from --tenant and --key; and what quota and limit set
 * share in their output.
 *
 * --key takes what key revoke takes (an id, a prefix of at least
 * CTL_KEY_MIN_PREFIX characters, or the key itself) and must be a key of
 * the tenant: a prefix is looked for among the tenant's keys first, and
 * one matching several of them is refused, naming them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "keyhash.h"

/* Finds key arg among the keys of the scope's tenant and fills in its id
 * and prefix. 0, or -1 after reporting: no such key, a key of another
 * tenant, or a prefix matching several keys of the tenant. */
static int
find_key(struct ctl *ctl, const char *arg, struct ctl_scope *s)
{
	char hash[KEY_HASH_HEXLEN + 1], ids[128] = "", masked[24];
	const char *params[2] = { arg, s->tenant_id }, *secret, *where;
	const char *shown = arg;
	size_t len = 0;
	PGresult *res;
	char sql[512];
	int i, own = 0, rc = -1;

	if (ctl_valid_id(arg)) {
		where = "k.id = $1::bigint";
	} else if (keyhash_well_formed(arg, strlen(arg))) {
		/* A key is a secret: messages show its first characters. */
		snprintf(masked, sizeof(masked), "%.10s...", arg);
		shown = masked;
		if ((secret = ctl_secret(ctl)) == NULL)
			return -1;
		keyhash_hash(secret, arg, strlen(arg), hash);
		params[0] = hash;
		where = "k.hash = $1";
	} else {
		where = "starts_with(k.prefix, $1)";
	}
	/* The tenant's own keys first. */
	snprintf(sql, sizeof(sql),
		 "SELECT k.id, k.prefix, k.tenant_id = $2::bigint, t.name"
		 " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
		 " WHERE %s ORDER BY 3 DESC, k.id",
		 where);
	res = ctl_query(ctl, "key", sql, 2, params);
	if (res == NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 2), "t") == 0)
			own++;
	if (PQntuples(res) == 0) {
		ctl_err("no key matches '%s'", shown);
	} else if (own == 0) {
		ctl_err("key '%s' belongs to tenant '%s', not '%s'", shown,
			PQgetvalue(res, 0, 3), s->tenant);
	} else if (own > 1) {
		for (i = 0; i < own && len < sizeof(ids) - 24; i++)
			len += snprintf(ids + len, sizeof(ids) - len, "%s%s",
					i > 0 ? ", " : "",
					PQgetvalue(res, i, 0));
		ctl_err("'%s' is ambiguous: it matches keys %s%s of tenant '%s'",
			arg, ids, i < own ? ", ..." : "", s->tenant);
	} else {
		snprintf(s->key_id, sizeof(s->key_id), "%s",
			 PQgetvalue(res, 0, 0));
		snprintf(s->prefix, sizeof(s->prefix), "%s",
			 PQgetvalue(res, 0, 1));
		rc = 0;
	}
	PQclear(res);
	return rc;
}

/* Resolves --tenant and --key (NULL for the whole tenant) into s; the
 * connection must be open. 0, or -1 after reporting. */
int
ctl_scope_find(struct ctl *ctl, const char *tenant, const char *key,
	       struct ctl_scope *s)
{
	int64_t tid;

	memset(s, 0, sizeof(*s));
	s->tenant = tenant;
	if (ctl_tenant_lookup(ctl, tenant, &tid, NULL, 0) < 0)
		return -1;
	snprintf(s->tenant_id, sizeof(s->tenant_id), "%lld", (long long)tid);
	return key != NULL ? find_key(ctl, key, s) : 0;
}

/* Connects and resolves an optional --tenant filter. */
int
ctl_scope_filter(struct ctl *ctl, const char *tenant, struct ctl_scope *s,
		 const char **param)
{
	*param = NULL;
	if (ctl_connect(ctl) < 0)
		return -1;
	if (tenant == NULL)
		return 0;
	if (ctl_scope_find(ctl, tenant, NULL, s) < 0)
		return -1;
	*param = s->tenant_id;
	return 0;
}

/* The scope's key id as a query parameter: NULL for the whole tenant. */
const char *
ctl_scope_key(const struct ctl_scope *s)
{
	return s->key_id[0] != '\0' ? s->key_id : NULL;
}

/* Checks the syntax of --key: an id, a well-formed key or a prefix of at
 * least CTL_KEY_MIN_PREFIX characters. 0, or -1 after reporting. */
int
ctl_check_key_arg(const char *key)
{
	if (key == NULL || ctl_valid_id(key) ||
	    keyhash_well_formed(key, strlen(key)) ||
	    (strlen(key) >= CTL_KEY_MIN_PREFIX && strspn(key, " \t") == 0))
		return 0;
	ctl_err("invalid --key '%s': a key id, a key prefix (at least %d characters) or a key",
		key, CTL_KEY_MIN_PREFIX);
	return -1;
}

/* Appends printf-formatted text to the string in buf of size bytes. */
void
ctl_append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* Adds "replaced" (the row existed) to a set verb's JSON object, and
 * "previous": null when nothing was replaced. Returns the object to fill
 * with the replaced limits, or NULL when nothing was replaced or memory
 * ran out. */
cJSON *
ctl_set_json(cJSON *o, const char *replaced)
{
	ctl_json_bool(o, "replaced", replaced);
	if (strcmp(replaced, "t") != 0) {
		cJSON_AddNullToObject(o, "previous");
		return NULL;
	}
	return cJSON_AddObjectToObject(o, "previous");
}
