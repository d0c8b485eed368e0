/*
 * ctl_limit.c - tollctl limit set | list | clear.
 *
 * A rate limit is one row per tenant or key and is replaced as a whole:
 * kinds not given become NULL (no limit of that kind), never the old
 * value. Rates are exact integers from ctl_parse_count() to PostgreSQL and
 * back. Running gateways reload the table through the triggers of the
 * migration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char limit_usage[] =
	"usage: tollctl limit set --tenant T [--key K] [--rpm N] [--tpm N]\n"
	"                         [--concurrency N]\n"
	"       tollctl limit list [--tenant T]\n"
	"       tollctl limit clear --tenant T [--key K]\n"
	"\n"
	"set: requests per minute, tokens per minute and concurrent requests\n"
	"  of tenant T, or of one of its keys with --key. At least one of\n"
	"  the three; N is above zero and may carry a k, M or G suffix\n"
	"  (200k). The rate limits of the tenant or key are replaced by\n"
	"  exactly what is given: a kind not given has no limit afterwards,\n"
	"  whatever it had before.\n"
	"list: '-' as KEY is the whole tenant, as RPM, TPM or CONCURRENCY no\n"
	"  limit of that kind.\n"
	"clear: removes the rate limits of the tenant, or of the key.\n"
	"K is a key id, the key prefix shown in 'key list', or the key; it\n"
	"must be a key of T.\n";

/* Rate limit columns in LC_* order, over an alias l. */
/* clang-format off */
#define LIMIT_COLS \
	"l.id, t.name, l.key_id, k.prefix, l.rpm, l.tpm, l.concurrency, " \
	CTL_TS("l.created_at") ", " CTL_TS("l.updated_at")
/* clang-format on */

enum {
	LC_ID,
	LC_TENANT,
	LC_KEY_ID,
	LC_KEY,
	LC_RPM,
	LC_TPM,
	LC_CONC,
	LC_CREATED,
	LC_UPDATED,
	LC__COUNT
};

/* The rate limits of $1 tenant id and $2 key id. */
#define LIMIT_SCOPE                                                            \
	"tenant_id = $1::bigint AND key_id IS NOT DISTINCT FROM $2::bigint"

/* Describes a rate limit's scope: "tenant acme, key tg-AbCdEfG". */
static void
limit_scope_text(const PGresult *res, int row, char *buf, size_t size)
{
	buf[0] = '\0';
	ctl_append(buf, size, "tenant %s", PQgetvalue(res, row, LC_TENANT));
	if (ctl_val(res, row, LC_KEY) != NULL)
		ctl_append(buf, size, ", key %s", PQgetvalue(res, row, LC_KEY));
}

/* Describes rate limits from columns rpm, tpm and concurrency at col:
 * "600 rpm, 200000 tpm, 20 concurrent"; kinds without a limit are left
 * out. */
static void
limit_values_text(const PGresult *res, int row, int col, char *buf, size_t size)
{
	static const char *const units[3] = {
		"rpm",
		"tpm",
		"concurrent",
	};
	int i;

	buf[0] = '\0';
	for (i = 0; i < 3; i++)
		if (ctl_val(res, row, col + i) != NULL)
			ctl_append(buf, size, "%s%s %s",
				   buf[0] != '\0' ? ", " : "",
				   PQgetvalue(res, row, col + i), units[i]);
}

/* A rate limit row as JSON. */
static const struct ctl_member limit_members[] = {
	{ "id", LC_ID, CTL_INT, NULL },
	{ "tenant", LC_TENANT, CTL_STR, NULL },
	{ "key_id", LC_KEY_ID, CTL_INT, NULL },
	{ "key", LC_KEY, CTL_STR, NULL },
	{ "rpm", LC_RPM, CTL_INT, NULL },
	{ "tpm", LC_TPM, CTL_INT, NULL },
	{ "concurrency", LC_CONC, CTL_INT, NULL },
	{ "created_at", LC_CREATED, CTL_STR, NULL },
	{ "updated_at", LC_UPDATED, CTL_STR, NULL },
	{ NULL, 0, 0, NULL },
};

/* limit list: a table, or JSON. */
static const struct ctl_view limit_view = {
	(const struct ctl_cell[]){
		{ "TENANT", LC_TENANT, 0, NULL, NULL },
		{ "KEY", LC_KEY, 0, NULL, NULL },
		{ "RPM", LC_RPM, 1, NULL, NULL },
		{ "TPM", LC_TPM, 1, NULL, NULL },
		{ "CONCURRENCY", LC_CONC, 1, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL },
	},
	limit_members,
};

/* Prints what limit set did: the row, and the limits it replaced. */
static int
print_limit_set(struct ctl *ctl, const PGresult *res)
{
	const char *replaced = PQgetvalue(res, 0, LC__COUNT);
	char scope[256], now[160], was[160];
	cJSON *o, *prev;

	if (!ctl->json) {
		limit_scope_text(res, 0, scope, sizeof(scope));
		limit_values_text(res, 0, LC_RPM, now, sizeof(now));
		if (strcmp(replaced, "t") == 0) {
			limit_values_text(res, 0, LC__COUNT + 1, was,
					  sizeof(was));
			printf("replaced rate limits (%s): %s (was: %s)\n",
			       scope, now, was);
		} else {
			printf("created rate limits (%s): %s\n", scope, now);
		}
		return 0;
	}
	if ((o = ctl_row_json(res, 0, limit_members)) == NULL)
		return ctl_json_print(NULL);
	if ((prev = ctl_set_json(o, replaced)) != NULL) {
		ctl_json_int(prev, "rpm", ctl_val(res, 0, LC__COUNT + 1));
		ctl_json_int(prev, "tpm", ctl_val(res, 0, LC__COUNT + 2));
		ctl_json_int(prev, "concurrency",
			     ctl_val(res, 0, LC__COUNT + 3));
	}
	return ctl_json_print(o);
}

/* tollctl limit set --tenant T [--key K] [--rpm N] [--tpm N]
 * [--concurrency N] */
static int
limit_set(struct ctl *ctl, const struct ctl_args *a)
{
	const char *tenant = ctl_arg(a, "tenant"), *key = ctl_arg(a, "key");
	const char *rpm = ctl_arg(a, "rpm"), *tpm = ctl_arg(a, "tpm");
	const char *conc = ctl_arg(a, "concurrency"), *params[5];
	char rpm_s[24], tpm_s[24], conc_s[24];
	struct ctl_scope s;
	PGresult *res;
	int rc;

	if (ctl_check_key_arg(key) < 0)
		return CTL_EXIT_USAGE;
	if (rpm == NULL && tpm == NULL && conc == NULL) {
		ctl_err("limit set: give at least one of --rpm, --tpm and --concurrency");
		return CTL_EXIT_USAGE;
	}
	if ((rpm != NULL && ctl_parse_positive("--rpm", rpm, INT32_MAX, rpm_s,
					       sizeof(rpm_s)) < 0) ||
	    (tpm != NULL && ctl_parse_positive("--tpm", tpm, INT64_MAX, tpm_s,
					       sizeof(tpm_s)) < 0) ||
	    (conc != NULL &&
	     ctl_parse_positive("--concurrency", conc, INT32_MAX, conc_s,
				sizeof(conc_s)) < 0))
		return CTL_EXIT_USAGE;
	if (ctl_connect(ctl) < 0 || ctl_scope_find(ctl, tenant, key, &s) < 0)
		return CTL_EXIT_FAIL;
	params[0] = s.tenant_id;
	params[1] = ctl_scope_key(&s);
	params[2] = rpm != NULL ? rpm_s : NULL;
	params[3] = tpm != NULL ? tpm_s : NULL;
	params[4] = conc != NULL ? conc_s : NULL;
	/* One statement: old sees the row as it was before the upsert. */
	/* clang-format off */
	res = ctl_query(ctl, "limit set",
		"WITH old AS (SELECT rpm, tpm, concurrency FROM rate_limits"
		" WHERE " LIMIT_SCOPE "),"
		" up AS (INSERT INTO rate_limits (tenant_id, key_id, rpm, tpm,"
		" concurrency) VALUES ($1::bigint, $2::bigint, $3::integer,"
		" $4::bigint, $5::integer) ON CONFLICT (tenant_id, key_id)"
		" DO UPDATE SET rpm = EXCLUDED.rpm, tpm = EXCLUDED.tpm,"
		" concurrency = EXCLUDED.concurrency, updated_at = now()"
		" RETURNING *) SELECT " LIMIT_COLS ", EXISTS (SELECT FROM old),"
		" (SELECT rpm FROM old), (SELECT tpm FROM old),"
		" (SELECT concurrency FROM old)" SCOPE_FROM("up", "l"),
		5, params);
	/* clang-format on */
	if (res == NULL)
		return CTL_EXIT_FAIL;
	rc = print_limit_set(ctl, res);
	PQclear(res);
	return rc;
}

/* tollctl limit list [--tenant T] */
static int
limit_list(struct ctl *ctl, const struct ctl_args *a)
{
	const char *params[1];
	struct ctl_scope s;

	if (ctl_scope_filter(ctl, ctl_arg(a, "tenant"), &s, &params[0]) < 0)
		return CTL_EXIT_FAIL;
	/* clang-format off */
	return ctl_list(ctl, "limit list",
		"SELECT " LIMIT_COLS SCOPE_FROM("rate_limits", "l")
		" WHERE $1::bigint IS NULL OR l.tenant_id = $1::bigint"
		" ORDER BY t.name, l.key_id NULLS FIRST", 1, params,
		&limit_view);
	/* clang-format on */
}

/* tollctl limit clear --tenant T [--key K] */
static int
limit_clear(struct ctl *ctl, const struct ctl_args *a)
{
	const char *tenant = ctl_arg(a, "tenant"), *key = ctl_arg(a, "key");
	const char *params[2];
	char scope[256], was[160];
	struct ctl_scope s;
	PGresult *res;
	int rc = CTL_EXIT_FAIL;

	if (ctl_check_key_arg(key) < 0)
		return CTL_EXIT_USAGE;
	if (ctl_connect(ctl) < 0 || ctl_scope_find(ctl, tenant, key, &s) < 0)
		return CTL_EXIT_FAIL;
	params[0] = s.tenant_id;
	params[1] = ctl_scope_key(&s);
	/* clang-format off */
	res = ctl_query(ctl, "limit clear",
		"WITH up AS (DELETE FROM rate_limits WHERE " LIMIT_SCOPE
		" RETURNING *) SELECT " LIMIT_COLS SCOPE_FROM("up", "l"),
		2, params);
	/* clang-format on */
	if (res == NULL)
		return CTL_EXIT_FAIL;
	if (PQntuples(res) == 0) {
		ctl_err("no rate limits for tenant '%s'%s%s", tenant,
			key != NULL ? ", key " : "", s.prefix);
		goto out;
	}
	if (ctl->json) {
		rc = ctl_json_print(ctl_row_json(res, 0, limit_members));
		goto out;
	}
	limit_scope_text(res, 0, scope, sizeof(scope));
	limit_values_text(res, 0, LC_RPM, was, sizeof(was));
	printf("cleared rate limits (%s): %s\n", scope, was);
	rc = 0;
out:
	PQclear(res);
	return rc;
}

const struct ctl_cmd ctl_limit_set_cmd = {
	.family = "limit",
	.name = "set",
	.usage = limit_usage,
	.opts = "tenant! key= rpm= tpm= concurrency=",
	.run = limit_set,
};

const struct ctl_cmd ctl_limit_list_cmd = {
	.family = "limit",
	.name = "list",
	.usage = limit_usage,
	.opts = "tenant=",
	.run = limit_list,
};

const struct ctl_cmd ctl_limit_clear_cmd = {
	.family = "limit",
	.name = "clear",
	.usage = limit_usage,
	.opts = "tenant! key=",
	.run = limit_clear,
};
