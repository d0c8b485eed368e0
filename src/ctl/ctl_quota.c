/*
 * ctl_quota.c - tollctl quota set | list | clear.
 *
 * A quota is one row per scope: tenant, optionally one of its keys,
 * optionally a model pattern, and a period (see sql/005_limits.sql). Setting
 * a quota for a scope that has one replaces its limits in one statement
 * (INSERT ... ON CONFLICT on the NULLS NOT DISTINCT unique constraint), and
 * the output names the limits it replaced.
 *
 * Token counts are exact integers from ctl_parse_count() to PostgreSQL and
 * back; a spend limit is a decimal checked here and sent as canonical text,
 * with no more decimals than the tenant's currency has
 * (tollgate_minor_digits()). Running gateways reload the table through the
 * triggers of the migration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Whole digits of a spend limit, far above any real budget. */
#define SPEND_MAX_DIGITS 15

static const char quota_usage[] =
	"usage: tollctl quota set --tenant T [--key K] [--model PATTERN]\n"
	"                         --period day|week|month|total\n"
	"                         [--tokens COUNT] [--spend AMOUNT] "
	"[--soft|--hard]\n"
	"       tollctl quota list [--tenant T]\n"
	"       tollctl quota clear ID\n"
	"       tollctl quota clear --tenant T [--key K] [--model PATTERN] "
	"--period P\n"
	"\n"
	"set: caps the tokens and/or the spend of tenant T in each period\n"
	"  (day, week from Monday, month, by the calendar in the tenant's\n"
	"  time zone; total never resets). --key narrows it to one key of T,\n"
	"  --model to the models matching PATTERN, a shell glob on the model\n"
	"  the client asked for ('glm-4*'). At least one of --tokens and\n"
	"  --spend. COUNT is a token count such as 50M, 200k or 1500000 (k,\n"
	"  M, G = 1e3, 1e6, 1e9). AMOUNT is a decimal in the tenant's billing\n"
	"  currency, after promotions, with no more decimals than the\n"
	"  currency has (2000, 19.99). A hard quota (default) refuses what\n"
	"  would not fit; --soft serves, warns and counts. Setting a quota\n"
	"  for the same tenant, key, pattern and period replaces it whole\n"
	"  and says what it replaced.\n"
	"list: '-' as KEY is the whole tenant, as MODEL every model, as\n"
	"  TOKENS or SPEND no limit of that kind.\n"
	"clear: by the ID shown in 'quota list', or by its scope.\n"
	"K is a key id, the key prefix shown in 'key list', or the key; it\n"
	"must be a key of T.\n";

/* Quota columns in QC_* order, over an alias q of a quotas row set. */
/* clang-format off */
#define QUOTA_COLS \
	"q.id, t.name, q.key_id, k.prefix, q.model_pattern, q.period," \
	" q.token_limit, round(q.spend_limit," \
	" tollgate_minor_digits(t.currency))::text, t.currency, q.hard, " \
	CTL_TS("q.created_at") ", " CTL_TS("q.updated_at")
/* clang-format on */

enum {
	QC_ID,
	QC_TENANT,
	QC_KEY_ID,
	QC_KEY,
	QC_MODEL,
	QC_PERIOD,
	QC_TOKENS,
	QC_SPEND,
	QC_CUR,
	QC_HARD,
	QC_CREATED,
	QC_UPDATED,
	QC__COUNT
};

/* The quota of $1 tenant id, $2 key id, $3 model pattern, $4 period. */
#define QUOTA_SCOPE                                                            \
	"tenant_id = $1::bigint AND key_id IS NOT DISTINCT FROM $2::bigint"    \
	" AND model_pattern IS NOT DISTINCT FROM $3::text AND period = $4"

/* Whether period is one of the quota periods. */
static int
valid_period(const char *period)
{
	static const char *const periods[] = {
		"day",
		"week",
		"month",
		"total",
	};
	size_t i;

	for (i = 0; i < sizeof(periods) / sizeof(periods[0]); i++)
		if (strcmp(period, periods[i]) == 0)
			return 1;
	return 0;
}

/* Parses a spend amount, a positive decimal with at most nine decimals,
 * into canonical text (no leading zeros, no trailing decimal zeros) in buf
 * and its count of decimals into *decimals. 0, or -1 with *cause set. */
static int
parse_spend(const char *s, char *buf, size_t size, int *decimals,
	    const char **cause)
{
	const char *p = s, *whole, *frac = "";
	size_t nwhole, nfrac = 0;

	*cause = "not a decimal amount (e.g. 2000 or 19.99)";
	if (*p == '-') {
		*cause = "must be above zero";
		return -1;
	}
	p += strspn(p, "0");
	whole = p;
	nwhole = strspn(p, "0123456789");
	p += nwhole;
	if (*p == '.') {
		frac = ++p;
		nfrac = strspn(p, "0123456789");
		p += nfrac;
		if (nfrac == 0)
			return -1;
	} else if (p == s) {
		return -1;
	}
	if (*p != '\0')
		return -1;
	while (nfrac > 0 && frac[nfrac - 1] == '0')
		nfrac--;
	if (nfrac > 9) {
		*cause = "more than nine decimals";
		return -1;
	}
	if (nwhole > SPEND_MAX_DIGITS) {
		*cause = "too large";
		return -1;
	}
	if (nwhole == 0 && nfrac == 0) {
		*cause = "must be above zero";
		return -1;
	}
	snprintf(buf, size, "%s%.*s%s%.*s", nwhole == 0 ? "0" : "", (int)nwhole,
		 whole, nfrac > 0 ? "." : "", (int)nfrac, frac);
	*decimals = (int)nfrac;
	return 0;
}

/* Looks up the tenant id's currency and its minor digits. 0, or -1 after
 * reporting. */
static int
tenant_currency(struct ctl *ctl, const char *tenant_id, char *cur, size_t size,
		int *minor)
{
	const char *params[1] = { tenant_id };
	PGresult *res;

	res = ctl_query(ctl, "tenant",
			"SELECT currency,"
			" tollgate_minor_digits(currency) FROM tenants"
			" WHERE id = $1::bigint",
			1, params);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		ctl_err("tenant %s no longer exists", tenant_id);
		PQclear(res);
		return -1;
	}
	snprintf(cur, size, "%s", PQgetvalue(res, 0, 0));
	*minor = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

/* Describes a quota's scope: "tenant acme, key tg-AbCdEfG, model glm-*,
 * per month". */
static void
quota_scope_text(const PGresult *res, int row, char *buf, size_t size)
{
	const char *period = PQgetvalue(res, row, QC_PERIOD);

	buf[0] = '\0';
	ctl_append(buf, size, "tenant %s", PQgetvalue(res, row, QC_TENANT));
	if (ctl_val(res, row, QC_KEY) != NULL)
		ctl_append(buf, size, ", key %s", PQgetvalue(res, row, QC_KEY));
	if (ctl_val(res, row, QC_MODEL) != NULL)
		ctl_append(buf, size, ", model %s",
			   PQgetvalue(res, row, QC_MODEL));
	if (strcmp(period, "total") == 0)
		ctl_append(buf, size, ", in total");
	else
		ctl_append(buf, size, ", per %s", period);
}

/* Describes quota limits: "50000000 tokens, 2000.00 CNY, hard". */
static void
quota_limits_text(const char *tokens, const char *spend, const char *cur,
		  const char *hard, char *buf, size_t size)
{
	buf[0] = '\0';
	if (tokens != NULL)
		ctl_append(buf, size, "%s token%s, ", tokens,
			   strcmp(tokens, "1") == 0 ? "" : "s");
	if (spend != NULL)
		ctl_append(buf, size, "%s %s, ", spend, cur);
	ctl_append(buf, size, "%s", strcmp(hard, "t") == 0 ? "hard" : "soft");
}

/* A quota row's own members; spend is a decimal string. */
#define QUOTA_MEMBERS                                                          \
	{ "id", QC_ID, CTL_INT, NULL },                                        \
		{ "tenant", QC_TENANT, CTL_STR, NULL },                        \
		{ "key_id", QC_KEY_ID, CTL_INT, NULL },                        \
		{ "key", QC_KEY, CTL_STR, NULL },                              \
		{ "model", QC_MODEL, CTL_STR, NULL },                          \
		{ "period", QC_PERIOD, CTL_STR, NULL },                        \
		{ "tokens", QC_TOKENS, CTL_INT, NULL },                        \
		{ "spend", QC_SPEND, CTL_STR, NULL },                          \
		{ "currency", QC_CUR, CTL_STR, NULL },                         \
		{ "hard", QC_HARD, CTL_BOOL, NULL },                           \
		{ "created_at", QC_CREATED, CTL_STR, NULL },                   \
	{                                                                      \
		"updated_at", QC_UPDATED, CTL_STR, NULL                        \
	}

static const struct ctl_member quota_members[] = {
	QUOTA_MEMBERS,
	{ NULL, 0, 0, NULL },
};

/* "hard" or "soft". */
static const char *
quota_mode(const PGresult *res, int row, int col, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return strcmp(PQgetvalue(res, row, col), "t") == 0 ? "hard" : "soft";
}

/* An amount in the tenant's currency ("30.00 CNY"), or NULL when the
 * quota has no spend limit. */
static const char *
quota_money(const PGresult *res, int row, int col, char *buf, size_t size)
{
	if (ctl_val(res, row, QC_SPEND) == NULL)
		return NULL;
	snprintf(buf, size, "%s %s", PQgetvalue(res, row, col),
		 PQgetvalue(res, row, QC_CUR));
	return buf;
}

/* quota list: the quotas with this period's counters after their own
 * columns (tokens used and reserved; spend after promotions). */
static const struct ctl_view quota_view = {
	(const struct ctl_cell[]){
		{ "ID", QC_ID, 1, NULL, NULL },
		{ "TENANT", QC_TENANT, 0, NULL, NULL },
		{ "KEY", QC_KEY, 0, NULL, NULL },
		{ "MODEL", QC_MODEL, 0, NULL, NULL },
		{ "PERIOD", QC_PERIOD, 0, NULL, NULL },
		{ "TOKENS", QC_TOKENS, 1, NULL, NULL },
		{ "SPEND", QC_SPEND, 1, NULL, quota_money },
		{ "MODE", QC_HARD, 0, NULL, quota_mode },
		{ "USED", QC__COUNT, 1, NULL, NULL },
		{ "RESERVED", QC__COUNT + 1, 1, NULL, NULL },
		{ "SPENT", QC__COUNT + 2, 1, NULL, quota_money },
		{ NULL, 0, 0, NULL, NULL },
	},
	(const struct ctl_member[]){
		QUOTA_MEMBERS,
		{ "used_tokens", QC__COUNT, CTL_INT, NULL },
		{ "reserved_tokens", QC__COUNT + 1, CTL_INT, NULL },
		{ "spent", QC__COUNT + 2, CTL_STR, NULL },
		{ NULL, 0, 0, NULL },
	},
};

/* Prints what quota set did: the row, and the limits it replaced. */
static int
print_quota_set(struct ctl *ctl, const PGresult *res)
{
	const char *replaced = PQgetvalue(res, 0, QC__COUNT);
	const char *cur = PQgetvalue(res, 0, QC_CUR);
	char scope[512], now[160], was[160];
	cJSON *o, *prev;

	quota_limits_text(ctl_val(res, 0, QC_TOKENS), ctl_val(res, 0, QC_SPEND),
			  cur, PQgetvalue(res, 0, QC_HARD), now, sizeof(now));
	if (strcmp(replaced, "t") == 0)
		quota_limits_text(ctl_val(res, 0, QC__COUNT + 1),
				  ctl_val(res, 0, QC__COUNT + 2), cur,
				  PQgetvalue(res, 0, QC__COUNT + 3), was,
				  sizeof(was));
	if (!ctl->json) {
		quota_scope_text(res, 0, scope, sizeof(scope));
		if (strcmp(replaced, "t") == 0)
			printf("replaced quota %s (%s): %s (was: %s)\n",
			       PQgetvalue(res, 0, QC_ID), scope, now, was);
		else
			printf("created quota %s (%s): %s\n",
			       PQgetvalue(res, 0, QC_ID), scope, now);
		return 0;
	}
	if ((o = ctl_row_json(res, 0, quota_members)) == NULL)
		return ctl_json_print(NULL);
	if ((prev = ctl_set_json(o, replaced)) != NULL) {
		ctl_json_int(prev, "tokens", ctl_val(res, 0, QC__COUNT + 1));
		ctl_json_str(prev, "spend", ctl_val(res, 0, QC__COUNT + 2));
		ctl_json_bool(prev, "hard", ctl_val(res, 0, QC__COUNT + 3));
	}
	return ctl_json_print(o);
}

/* tollctl quota set --tenant T [--key K] [--model P] --period P ... */
static int
quota_set(struct ctl *ctl, const struct ctl_args *a)
{
	const char *tenant = ctl_arg(a, "tenant"), *key = ctl_arg(a, "key");
	const char *model = ctl_arg(a, "model");
	const char *period = ctl_arg(a, "period");
	const char *tokens = ctl_arg(a, "tokens"), *spend = ctl_arg(a, "spend");
	const char *params[7], *cause;
	char tokens_s[24], spend_s[48], cur[8];
	int hard = ctl_arg(a, "soft") == NULL, decimals = 0, minor, rc;
	struct ctl_scope s;
	PGresult *res;

	if (ctl_arg(a, "soft") != NULL && ctl_arg(a, "hard") != NULL) {
		ctl_err("quota set: --soft and --hard exclude each other");
		return CTL_EXIT_USAGE;
	}
	if (!valid_period(period)) {
		ctl_err("invalid --period '%s': day, week, month or total",
			period);
		return CTL_EXIT_USAGE;
	}
	if (ctl_blank(model)) {
		ctl_err("quota set: --model cannot be empty");
		return CTL_EXIT_USAGE;
	}
	if (ctl_check_key_arg(key) < 0)
		return CTL_EXIT_USAGE;
	if (tokens == NULL && spend == NULL) {
		ctl_err("quota set: give --tokens, --spend or both");
		return CTL_EXIT_USAGE;
	}
	if (tokens != NULL &&
	    ctl_parse_positive("--tokens", tokens, INT64_MAX, tokens_s,
			       sizeof(tokens_s)) < 0)
		return CTL_EXIT_USAGE;
	if (spend != NULL && parse_spend(spend, spend_s, sizeof(spend_s),
					 &decimals, &cause) < 0) {
		ctl_err("invalid --spend '%s': %s", spend, cause);
		return CTL_EXIT_USAGE;
	}
	if (ctl_connect(ctl) < 0 || ctl_scope_find(ctl, tenant, key, &s) < 0)
		return CTL_EXIT_FAIL;
	if (spend != NULL) {
		if (tenant_currency(ctl, s.tenant_id, cur, sizeof(cur),
				    &minor) < 0)
			return CTL_EXIT_FAIL;
		if (decimals > minor) {
			if (minor == 0)
				ctl_err("invalid --spend '%s': %s has no decimals",
					spend, cur);
			else
				ctl_err("invalid --spend '%s': at most %d decimals in %s",
					spend, minor, cur);
			return CTL_EXIT_USAGE;
		}
	}
	params[0] = s.tenant_id;
	params[1] = ctl_scope_key(&s);
	params[2] = model;
	params[3] = period;
	params[4] = tokens != NULL ? tokens_s : NULL;
	params[5] = spend != NULL ? spend_s : NULL;
	params[6] = hard ? "t" : "f";
	/* One statement: old sees the row as it was before the upsert. */
	/* clang-format off */
	res = ctl_query(ctl, "quota set",
		"WITH old AS (SELECT token_limit, spend_limit, hard"
		" FROM quotas WHERE " QUOTA_SCOPE "),"
		" up AS (INSERT INTO quotas (tenant_id, key_id, model_pattern,"
		" period, token_limit, spend_limit, hard) VALUES ($1::bigint,"
		" $2::bigint, $3::text, $4, $5::bigint, $6::numeric,"
		" $7::boolean) ON CONFLICT (tenant_id, key_id, model_pattern,"
		" period) DO UPDATE SET token_limit = EXCLUDED.token_limit,"
		" spend_limit = EXCLUDED.spend_limit, hard = EXCLUDED.hard,"
		" updated_at = now() RETURNING *) "
		"SELECT " QUOTA_COLS ", EXISTS (SELECT FROM old),"
		" (SELECT token_limit FROM old), (SELECT round(spend_limit,"
		" tollgate_minor_digits(t.currency))::text FROM old),"
		" (SELECT hard FROM old)" SCOPE_FROM("up", "q"), 7, params);
	/* clang-format on */
	if (res == NULL)
		return CTL_EXIT_FAIL;
	rc = print_quota_set(ctl, res);
	PQclear(res);
	return rc;
}

/* tollctl quota list [--tenant T] */
static int
quota_list(struct ctl *ctl, const struct ctl_args *a)
{
	const char *params[1];
	struct ctl_scope s;

	if (ctl_scope_filter(ctl, ctl_arg(a, "tenant"), &s, &params[0]) < 0)
		return CTL_EXIT_FAIL;
	/* After the quota's own columns: this period's counter, which starts
	 * with the period's first request. */
	/* clang-format off */
	return ctl_list(ctl, "quota list",
		"SELECT " QUOTA_COLS ", coalesce(qc.used_tokens, 0),"
		" coalesce(qc.reserved_tokens, 0),"
		" round(coalesce(qc.used_nanos, 0) / 1e9,"
		" tollgate_minor_digits(t.currency))::text"
		SCOPE_FROM("quotas", "q")
		" LEFT JOIN quota_counters qc ON qc.quota_id = q.id"
		" AND qc.period_start = tollgate_period_start(q.period, now(),"
		" t.tz) WHERE $1::bigint IS NULL OR q.tenant_id = $1::bigint"
		" ORDER BY t.name, q.key_id NULLS FIRST,"
		" q.model_pattern NULLS FIRST, array_position("
		"ARRAY['day', 'week', 'month', 'total'], q.period)",
		1, params, &quota_view);
	/* clang-format on */
}

/* tollctl quota clear ID | --tenant T [--key K] [--model P] --period P */
static int
quota_clear(struct ctl *ctl, const struct ctl_args *a)
{
	const char *tenant = ctl_arg(a, "tenant"), *key = ctl_arg(a, "key");
	const char *model = ctl_arg(a, "model");
	const char *period = ctl_arg(a, "period");
	const char *id = a->argc > 0 ? a->argv[0] : NULL, *params[4];
	char scope_text[512], limits[160];
	struct ctl_scope s;
	PGresult *res;
	int rc = CTL_EXIT_FAIL;

	if (id != NULL && (tenant != NULL || key != NULL || model != NULL ||
			   period != NULL)) {
		ctl_err("quota clear: give a quota ID or --tenant and --period, not both");
		return CTL_EXIT_USAGE;
	}
	if (id != NULL && !ctl_valid_id(id)) {
		ctl_err("quota clear: '%s' is not a quota id", id);
		return CTL_EXIT_USAGE;
	}
	if (id == NULL && (tenant == NULL || period == NULL)) {
		ctl_err("quota clear: give a quota ID, or --tenant and --period");
		return CTL_EXIT_USAGE;
	}
	if (period != NULL && !valid_period(period)) {
		ctl_err("invalid --period '%s': day, week, month or total",
			period);
		return CTL_EXIT_USAGE;
	}
	if (ctl_blank(model)) {
		ctl_err("quota clear: --model cannot be empty");
		return CTL_EXIT_USAGE;
	}
	if (ctl_check_key_arg(key) < 0)
		return CTL_EXIT_USAGE;
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	if (id != NULL) {
		params[0] = id;
		/* clang-format off */
		res = ctl_query(ctl, "quota clear",
			"WITH up AS (DELETE FROM quotas WHERE id = $1::bigint"
			" RETURNING *) SELECT " QUOTA_COLS
			SCOPE_FROM("up", "q"), 1, params);
		/* clang-format on */
	} else {
		if (ctl_scope_find(ctl, tenant, key, &s) < 0)
			return CTL_EXIT_FAIL;
		params[0] = s.tenant_id;
		params[1] = ctl_scope_key(&s);
		params[2] = model;
		params[3] = period;
		/* clang-format off */
		res = ctl_query(ctl, "quota clear",
			"WITH up AS (DELETE FROM quotas WHERE " QUOTA_SCOPE
			" RETURNING *) SELECT " QUOTA_COLS
			SCOPE_FROM("up", "q"), 4, params);
		/* clang-format on */
	}
	if (res == NULL)
		return CTL_EXIT_FAIL;
	if (PQntuples(res) == 0) {
		if (id != NULL)
			ctl_err("no quota with id %s", id);
		else
			ctl_err("no %s quota for tenant '%s'%s%s%s%s%s", period,
				tenant, key != NULL ? ", key " : "",
				key != NULL ? s.prefix : "",
				model != NULL ? ", model '" : "",
				model != NULL ? model : "",
				model != NULL ? "'" : "");
		goto out;
	}
	if (ctl->json) {
		rc = ctl_json_print(ctl_row_json(res, 0, quota_members));
		goto out;
	}
	quota_scope_text(res, 0, scope_text, sizeof(scope_text));
	quota_limits_text(ctl_val(res, 0, QC_TOKENS), ctl_val(res, 0, QC_SPEND),
			  PQgetvalue(res, 0, QC_CUR),
			  PQgetvalue(res, 0, QC_HARD), limits, sizeof(limits));
	printf("cleared quota %s (%s): %s\n", PQgetvalue(res, 0, QC_ID),
	       scope_text, limits);
	rc = 0;
out:
	PQclear(res);
	return rc;
}

const struct ctl_cmd ctl_quota_set_cmd = {
	.family = "quota",
	.name = "set",
	.usage = quota_usage,
	.opts = "tenant! key= model= period! tokens= spend= soft hard",
	.run = quota_set,
};

const struct ctl_cmd ctl_quota_list_cmd = {
	.family = "quota",
	.name = "list",
	.usage = quota_usage,
	.opts = "tenant=",
	.run = quota_list,
};

const struct ctl_cmd ctl_quota_clear_cmd = {
	.family = "quota",
	.name = "clear",
	.usage = quota_usage,
	.opts = "tenant= key= model= period=",
	.max_args = 1,
	.run = quota_clear,
};
