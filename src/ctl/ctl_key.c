/*
 * ctl_key.c - tollctl key issue | list | revoke.
 *
 * A key is generated here, shown once, and stored only as
 * HMAC-SHA256(key secret, key) with its first KEY_SHOWN_PREFIX characters
 * for listings. The gateway hashes presented keys with its own key secret;
 * both must be the same or every key issued here is refused.
 *
 * --expires is read in the tenant's time zone when it carries none, so
 * "--expires 2027-01-01" ends at the tenant's midnight.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "keyhash.h"

/* Characters of the key kept in api_keys.prefix. */
#define KEY_SHOWN_PREFIX 10

static const char key_usage[] =
	"usage: tollctl key issue --tenant T [--name N] "
	"[--models 'gpt-4o,glm-*']\n"
	"                         [--expires DATE] [-q|--quiet]\n"
	"       tollctl key list [--tenant T]\n"
	"       tollctl key revoke ID|PREFIX|KEY\n"
	"\n"
	"issue: prints the new key once; only its hash is stored. --models\n"
	"  limits the key to these model patterns (default: any model);\n"
	"  --expires takes a date or timestamp, in the tenant's time zone\n"
	"  unless it names one; -q prints only the key.\n"
	"revoke: by numeric id, by the prefix shown in 'key list', or by the\n"
	"  full key.\n"
	"Keys are hashed with the key secret (key_secret_file of the config,\n"
	"else $TOLLGATE_KEY_SECRET); the gateway must use the same secret.\n";

/* Whether a comma-separated model list names at least one pattern. */
static int
models_given(const char *list)
{
	for (; *list != '\0'; list++)
		if (*list != ',' && *list != ' ' && *list != '\t')
			return 1;
	return 0;
}

/* Prints the issued key in the requested form. */
static int
print_issued(struct ctl *ctl, const char *tenant, const char *key,
	     const PGresult *res, int quiet)
{
	cJSON *o, *models;
	const char *expires = ctl_val(res, 0, 2);
	const char *mjson = ctl_val(res, 0, 4);

	if (quiet) {
		printf("%s\n", key);
		return 0;
	}
	if (!ctl->json) {
		printf("Issued key %s for tenant %s (prefix %s, expires %s).\n"
		       "\n    %s\n\n"
		       "Store it now: it cannot be shown again, only its hash "
		       "is kept.\n",
		       PQgetvalue(res, 0, 0), tenant, PQgetvalue(res, 0, 1),
		       expires != NULL ? expires : "never", key);
		return 0;
	}
	o = cJSON_CreateObject();
	if (o == NULL)
		return ctl_json_print(NULL);
	ctl_json_int(o, "id", PQgetvalue(res, 0, 0));
	ctl_json_str(o, "tenant", tenant);
	ctl_json_str(o, "key", key);
	ctl_json_str(o, "prefix", PQgetvalue(res, 0, 1));
	ctl_json_str(o, "name", ctl_val(res, 0, 3));
	models = mjson != NULL ? cJSON_Parse(mjson) : cJSON_CreateNull();
	if (models != NULL)
		cJSON_AddItemToObject(o, "models", models);
	ctl_json_str(o, "expires_at", expires);
	return ctl_json_print(o);
}

/* tollctl key issue --tenant T [--name N] [--models L] [--expires D] [-q] */
static int
key_issue(struct ctl *ctl, const struct ctl_args *a)
{
	const char *tenant = ctl_arg(a, "tenant"), *name = ctl_arg(a, "name");
	const char *models = ctl_arg(a, "models");
	const char *expires = ctl_arg(a, "expires"), *secret, *params[6];
	char key[KEY_LEN + 1], hash[KEY_HASH_HEXLEN + 1];
	char prefix[KEY_SHOWN_PREFIX + 1], tenant_id[24];
	PGresult *res = NULL;
	int quiet = ctl_arg(a, "quiet") != NULL, rc = CTL_EXIT_FAIL;

	if (models != NULL && !models_given(models)) {
		ctl_err("key issue: --models names no model");
		return CTL_EXIT_USAGE;
	}
	if (name != NULL && *name == '\0')
		name = NULL;
	if (ctl_connect(ctl) < 0 || (secret = ctl_secret(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	if (ctl_exec(ctl, "BEGIN") < 0)
		return CTL_EXIT_FAIL;
	params[0] = tenant;
	res = ctl_query_named(
		ctl, "key issue", "tenant",
		"SELECT id, disabled, set_config('TimeZone', tz, true)"
		" FROM tenants WHERE name = $1 FOR SHARE",
		1, params);
	if (res == NULL)
		goto out;
	if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
		ctl_err("tenant '%s' is disabled", tenant);
		goto out;
	}
	snprintf(tenant_id, sizeof(tenant_id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	res = NULL;
	if (keyhash_generate(key) < 0) {
		ctl_err("cannot generate a key: no randomness");
		goto out;
	}
	keyhash_hash(secret, key, strlen(key), hash);
	memcpy(prefix, key, KEY_SHOWN_PREFIX);
	prefix[KEY_SHOWN_PREFIX] = '\0';
	params[0] = tenant_id;
	params[1] = name;
	params[2] = prefix;
	params[3] = hash;
	params[4] = models;
	params[5] = expires;
	/* clang-format off */
	res = ctl_query_raw(ctl,
		"INSERT INTO api_keys (tenant_id, name, prefix, hash, models,"
		" expires_at) VALUES ($1, $2, $3, $4,"
		" CASE WHEN $5::text IS NULL THEN NULL ELSE ARRAY("
		"  SELECT btrim(m) FROM unnest(string_to_array($5, ','))"
		"  WITH ORDINALITY AS u(m, n) WHERE btrim(m) <> '' ORDER BY n)"
		" END, $6::timestamptz) "
		"RETURNING id, prefix, " CTL_TS("expires_at") ", name,"
		" array_to_json(models)::text, expires_at <= now()",
		6, params);
	/* clang-format on */
	if (!ctl_result_ok(res)) {
		if (strncmp(ctl_sqlstate(res), "22", 2) == 0 && expires != NULL)
			ctl_err("invalid --expires '%s': %s", expires,
				ctl_pg_message(res));
		else
			ctl_err("key issue: %s", ctl_pg_message(res));
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 5), "t") == 0) {
		ctl_err("--expires '%s' is in the past", expires);
		goto out;
	}
	if (ctl_exec(ctl, "COMMIT") < 0)
		goto out;
	rc = print_issued(ctl, tenant, key, res, quiet);
out:
	if (rc != 0)
		PQclear(PQexec(ctl->conn, "ROLLBACK"));
	explicit_bzero(key, sizeof(key));
	PQclear(res);
	return rc;
}

/* Key columns for listings, in the order key_view reads them. */
/* clang-format off */
#define KEY_SELECT \
	"SELECT k.id, t.name, k.name, k.prefix," \
	" array_to_string(k.models, ','), array_to_json(k.models)::text, " \
	CTL_TS("k.expires_at") ", " CTL_TS("k.revoked_at") ", " \
	CTL_TS("k.created_at") "," \
	" CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'" \
	" WHEN k.expires_at <= now() THEN 'expired'" \
	" WHEN t.disabled THEN 'tenant disabled'" \
	" ELSE 'active' END " \
	"FROM api_keys k JOIN tenants t ON t.id = k.tenant_id "
/* clang-format on */

/* KEY_SELECT rows as a table or JSON. */
static const struct ctl_view key_view = {
	(const struct ctl_cell[]){
		{ "ID", 0, 1, NULL, NULL },
		{ "TENANT", 1, 0, NULL, NULL },
		{ "NAME", 2, 0, NULL, NULL },
		{ "PREFIX", 3, 0, NULL, NULL },
		{ "MODELS", 4, 0, "any", NULL },
		{ "EXPIRES", 6, 0, "never", NULL },
		{ "STATUS", 9, 0, NULL, NULL },
		{ "CREATED", 8, 0, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL },
	},
	(const struct ctl_member[]){
		{ "id", 0, CTL_INT, NULL },
		{ "tenant", 1, CTL_STR, NULL },
		{ "name", 2, CTL_STR, NULL },
		{ "prefix", 3, CTL_STR, NULL },
		{ "models", 5, CTL_JSON, NULL },
		{ "expires_at", 6, CTL_STR, NULL },
		{ "revoked_at", 7, CTL_STR, NULL },
		{ "created_at", 8, CTL_STR, NULL },
		{ "status", 9, CTL_STR, NULL },
		{ NULL, 0, 0, NULL },
	},
};

/* Whether a tenant called name exists; -1 after reporting. */
static int
tenant_exists(struct ctl *ctl, const char *name)
{
	const char *params[1] = { name };
	PGresult *res;
	int n;

	res = ctl_query(ctl, "tenant", "SELECT 1 FROM tenants WHERE name = $1",
			1, params);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	PQclear(res);
	return n > 0;
}

/* tollctl key list [--tenant T] */
static int
key_list(struct ctl *ctl, const struct ctl_args *a)
{
	const char *tenant = ctl_arg(a, "tenant"), *params[1];
	PGresult *res;
	int rc;

	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	params[0] = tenant;
	res = ctl_query(ctl, "key list",
			KEY_SELECT "WHERE $1::text IS NULL OR t.name = $1 "
				   "ORDER BY k.id",
			1, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	if (PQntuples(res) == 0 && tenant != NULL) {
		rc = tenant_exists(ctl, tenant);
		if (rc <= 0) {
			if (rc == 0)
				ctl_err("no tenant named '%s'", tenant);
			PQclear(res);
			return CTL_EXIT_FAIL;
		}
	}
	rc = ctl_print_rows(ctl, res, &key_view);
	PQclear(res);
	return rc;
}

/* Finds the keys matching an id, a full key or a prefix; NULL after
 * reporting. Caller PQclear()s. */
static PGresult *
find_keys(struct ctl *ctl, const char *arg)
{
	char hash[KEY_HASH_HEXLEN + 1];
	const char *params[1] = { arg }, *secret;

	if (ctl_is_digits(arg))
		return ctl_query(ctl, "key revoke",
				 KEY_SELECT "WHERE k.id = $1::bigint", 1,
				 params);
	if (keyhash_well_formed(arg, strlen(arg))) {
		if ((secret = ctl_secret(ctl)) == NULL)
			return NULL;
		keyhash_hash(secret, arg, strlen(arg), hash);
		params[0] = hash;
		return ctl_query(ctl, "key revoke",
				 KEY_SELECT "WHERE k.hash = $1", 1, params);
	}
	return ctl_query(ctl, "key revoke",
			 KEY_SELECT "WHERE starts_with(k.prefix, $1) "
				    "ORDER BY k.id",
			 1, params);
}

/* tollctl key revoke ID|PREFIX|KEY */
static int
key_revoke(struct ctl *ctl, const struct ctl_args *a)
{
	const char *arg = a->argv[0], *params[1];
	PGresult *res, *upd = NULL;
	cJSON *o;
	int i, rc = CTL_EXIT_FAIL, already;

	if (!ctl_is_digits(arg) && !keyhash_well_formed(arg, strlen(arg)) &&
	    (strlen(arg) < 4 || strlen(arg) > KEY_SHOWN_PREFIX)) {
		ctl_err("key revoke: '%s' is not a key id, a key prefix (4 to %d characters) or a key",
			arg, KEY_SHOWN_PREFIX);
		return CTL_EXIT_USAGE;
	}
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	if ((res = find_keys(ctl, arg)) == NULL)
		return CTL_EXIT_FAIL;
	if (PQntuples(res) == 0) {
		ctl_err("no key matches '%s'", arg);
		goto out;
	}
	if (PQntuples(res) > 1) {
		char ids[128] = "";
		size_t len = 0;

		for (i = 0; i < PQntuples(res) && len < sizeof(ids) - 24; i++)
			len += snprintf(ids + len, sizeof(ids) - len, "%s%s",
					i > 0 ? ", " : "",
					PQgetvalue(res, i, 0));
		ctl_err("'%s' is ambiguous: it matches keys %s%s", arg, ids,
			i < PQntuples(res) ? ", ..." : "");
		goto out;
	}
	already = ctl_val(res, 0, 7) != NULL;
	if (!already) {
		params[0] = PQgetvalue(res, 0, 0);
		/* clang-format off */
		upd = ctl_query(ctl, "key revoke",
				"UPDATE api_keys SET revoked_at = now()"
				" WHERE id = $1 AND revoked_at IS NULL"
				" RETURNING " CTL_TS("revoked_at"), 1, params);
		/* clang-format on */
		if (upd == NULL)
			goto out;
		already = PQntuples(upd) == 0;
	}
	if (ctl->json) {
		o = cJSON_CreateObject();
		if (o != NULL) {
			ctl_json_int(o, "id", PQgetvalue(res, 0, 0));
			ctl_json_str(o, "tenant", PQgetvalue(res, 0, 1));
			ctl_json_str(o, "prefix", PQgetvalue(res, 0, 3));
			ctl_json_str(o, "revoked_at",
				     upd != NULL && PQntuples(upd) > 0
					     ? PQgetvalue(upd, 0, 0)
					     : ctl_val(res, 0, 7));
			cJSON_AddBoolToObject(o, "already_revoked", already);
		}
		rc = ctl_json_print(o);
		goto out;
	}
	printf("%s key %s (%s) of tenant %s\n",
	       already ? "already revoked:" : "revoked", PQgetvalue(res, 0, 0),
	       PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 1));
	rc = 0;
out:
	PQclear(upd);
	PQclear(res);
	return rc;
}

const struct ctl_cmd ctl_key_issue_cmd = {
	.family = "key",
	.name = "issue",
	.usage = key_usage,
	.opts = "t|tenant! n|name= m|models= e|expires= q|quiet",
	.run = key_issue,
};

const struct ctl_cmd ctl_key_list_cmd = {
	.family = "key",
	.name = "list",
	.usage = key_usage,
	.opts = "t|tenant=",
	.run = key_list,
};

const struct ctl_cmd ctl_key_revoke_cmd = {
	.family = "key",
	.name = "revoke",
	.usage = key_usage,
	.min_args = 1,
	.max_args = 1,
	.arg_name = "key id or prefix",
	.run = key_revoke,
};
