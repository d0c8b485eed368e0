/*
 * ctl_promo.c - tollctl promo add | list | end.
 *
 * A promotion is a free-token grant or a discount, valid in [from, until),
 * for one tenant or all of them, optionally only for a model pattern and a
 * provider (see sql/002_billing.sql). Records are priced when they are
 * ingested, so adding a promotion with a start in the past, or ending one
 * at a past time, does not re-price what was already ingested; both are
 * allowed (late records are priced by the promotion as it then stands),
 * and add says so when it happens.
 *
 * Token amounts are exact integers from first to last: parsed by
 * ctl_parse_count(), summed by PostgreSQL, printed from its decimal text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ctl.h"

static const char promo_usage[] =
	"usage: tollctl promo add --name N (--free-tokens COUNT | "
	"--discount PCT)\n"
	"                         [--tenant T | --all] [--model PATTERN] "
	"[--provider P]\n"
	"                         --from TIME --until TIME\n"
	"       tollctl promo list [--tenant T] [--active]\n"
	"       tollctl promo end NAME [--at TIME]\n"
	"\n"
	"add: N is letters, digits, '.', '_' and '-', unique. COUNT is a\n"
	"  token count such as 50M, 200k or 1500000 (k, M, G = 1e3, 1e6,\n"
	"  1e9; whole tokens only); every tenant in scope gets its own\n"
	"  grant of COUNT. PCT is a percentage with at most two decimals\n"
	"  (20%, 12.5%), above 0 and at most 100. Without --tenant the\n"
	"  promotion applies to all tenants (--all says so explicitly).\n"
	"  PATTERN is a shell glob on the upstream model ('glm-4*'). TIME is\n"
	"  a date (midnight in the tenant's time zone with --tenant, else\n"
	"  UTC) or an RFC 3339 timestamp; the window is [from, until).\n"
	"list: AMOUNT is the grant per tenant or the discount; USED and\n"
	"  REMAINING are per tenant. A grant to all tenants shows one line\n"
	"  per tenant that has a balance, then an 'all' line whose USED is\n"
	"  the total used by all tenants and whose REMAINING is what each\n"
	"  other tenant still has. With --tenant, only what applies to T.\n"
	"  Status: upcoming, active, expired or ended; tokens left in an\n"
	"  expired or ended grant can no longer be used.\n"
	"end: cuts the promotion short at TIME (default now); usage before\n"
	"  TIME keeps it. TIME is read in the tenant's time zone when the\n"
	"  promotion is for one tenant, else UTC.\n";

/* Promotion columns in QCOL_* order. $1 tenant id (only what applies to
 * it, and its own balance), $2 name, $3 whether only active ones. */
/* clang-format off */
#define PROMO_SELECT \
	"SELECT id, name, kind, tenant, model_pattern, provider, starts," \
	" until, free_tokens, discount_bp, ended_at, ends, status, used," \
	" remaining FROM (" \
	"SELECT p.id, p.name, p.kind, t.name AS tenant, p.model_pattern," \
	" p.provider, " CTL_TS("p.starts") " AS starts, " \
	CTL_TS("least(p.ends, p.ended_at)") " AS until, p.free_tokens," \
	" p.discount_bp, " CTL_TS("p.ended_at") " AS ended_at, " \
	CTL_TS("p.ends") " AS ends," \
	" CASE WHEN p.ended_at IS NOT NULL AND p.ended_at <= now()" \
	" AND p.ended_at < p.ends THEN 'ended'" \
	" WHEN now() < p.starts THEN 'upcoming'" \
	" WHEN now() >= p.ends THEN 'expired' ELSE 'active' END AS status," \
	" u.used, CASE WHEN p.tenant_id IS NULL AND $1::bigint IS NULL" \
	" THEN p.free_tokens ELSE p.free_tokens - u.used END AS remaining," \
	" p.starts AS s" \
	" FROM promotions p LEFT JOIN tenants t ON t.id = p.tenant_id" \
	" CROSS JOIN LATERAL (SELECT CASE WHEN p.kind = 'free_tokens'" \
	" THEN coalesce(sum(b.used), 0) END AS used FROM grant_balances b" \
	" WHERE b.promotion_id = p.id" \
	" AND b.tenant_id = coalesce($1::bigint, p.tenant_id, b.tenant_id)" \
	") u" \
	" WHERE ($1::bigint IS NULL OR p.tenant_id IS NULL" \
	" OR p.tenant_id = $1) AND ($2::text IS NULL OR p.name = $2)) x" \
	" WHERE NOT $3::boolean OR status = 'active'" \
	" ORDER BY s, name"
/* clang-format on */

enum {
	QCOL_ID,
	QCOL_NAME,
	QCOL_KIND,
	QCOL_TENANT,
	QCOL_MODEL,
	QCOL_PROVIDER,
	QCOL_STARTS,
	QCOL_UNTIL,
	QCOL_FREE,
	QCOL_BP,
	QCOL_ENDED,
	QCOL_ENDS,
	QCOL_STATUS,
	QCOL_USED,
	QCOL_REMAINING
};

/* Per-tenant balances of grants to all tenants, in BCOL_* order. */
#define BALANCE_SELECT                                                         \
	"SELECT b.promotion_id, t.name, b.used, p.free_tokens - b.used"        \
	" FROM grant_balances b JOIN tenants t ON t.id = b.tenant_id"          \
	" JOIN promotions p ON p.id = b.promotion_id"                          \
	" WHERE p.tenant_id IS NULL ORDER BY b.promotion_id, t.name"

enum { BCOL_PROMO, BCOL_TENANT, BCOL_USED, BCOL_REMAINING };

/* Whether s is a valid promotion name (the tenant name rule). */
static int
valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];
		int alnum = (ch >= 'a' && ch <= 'z') ||
			    (ch >= 'A' && ch <= 'Z') ||
			    (ch >= '0' && ch <= '9');

		if (!alnum && (i == 0 || strchr("._-", ch) == NULL))
			return 0;
	}
	return 1;
}

/* Parses a percentage with at most two decimals ("20%", "12.5") into
 * basis points, above 0 and at most 10000. 0, or -1. */
static int
parse_discount(const char *s, int *bp)
{
	int whole = 0, frac = 0, fdigits = 0, digits = 0;

	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		whole = whole * 10 + (*s - '0');
		if (whole > 100)
			return -1;
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, fdigits++) {
			if (fdigits == 2)
				return -1;
			frac = frac * 10 + (*s - '0');
		}
		if (fdigits == 0)
			return -1;
	}
	if (fdigits == 1)
		frac *= 10;
	if (*s == '%')
		s++;
	if (digits == 0 || *s != '\0')
		return -1;
	*bp = whole * 100 + frac;
	return *bp > 0 && *bp <= 10000 ? 0 : -1;
}

/* Basis points as a percentage without trailing zeros ("12.5%"). */
static void
format_percent(const char *bp_text, char *buf, size_t size)
{
	int bp = atoi(bp_text);

	if (bp % 100 == 0)
		snprintf(buf, size, "%d%%", bp / 100);
	else if (bp % 10 == 0)
		snprintf(buf, size, "%d.%d%%", bp / 100, bp % 100 / 10);
	else
		snprintf(buf, size, "%d.%02d%%", bp / 100, bp % 100);
}

/* Whether the promotion row is a grant to all tenants listed without a
 * tenant filter (so it has per-tenant lines). */
static int
per_tenant_lines(const PGresult *res, int row, int filtered)
{
	return !filtered &&
	       strcmp(PQgetvalue(res, row, QCOL_KIND), "free_tokens") == 0 &&
	       ctl_val(res, row, QCOL_TENANT) == NULL;
}

/* A promotion row, with its per-tenant balances, as a JSON object. */
static cJSON *
promo_json(const PGresult *res, int row, const PGresult *bal,
	   const char *filter_tenant)
{
	cJSON *o = cJSON_CreateObject(), *arr, *b;
	const char *bp = ctl_val(res, row, QCOL_BP);
	const char *id = PQgetvalue(res, row, QCOL_ID);
	char pct[16];
	int i;

	if (o == NULL)
		return NULL;
	ctl_json_int(o, "id", id);
	ctl_json_str(o, "name", ctl_val(res, row, QCOL_NAME));
	ctl_json_str(o, "kind", ctl_val(res, row, QCOL_KIND));
	ctl_json_str(o, "scope",
		     ctl_val(res, row, QCOL_TENANT) != NULL ? "tenant" : "all");
	ctl_json_str(o, "tenant",
		     ctl_val(res, row, QCOL_TENANT) != NULL
			     ? ctl_val(res, row, QCOL_TENANT)
			     : filter_tenant);
	ctl_json_str(o, "model", ctl_val(res, row, QCOL_MODEL));
	ctl_json_str(o, "provider", ctl_val(res, row, QCOL_PROVIDER));
	ctl_json_str(o, "starts", ctl_val(res, row, QCOL_STARTS));
	ctl_json_str(o, "ends", ctl_val(res, row, QCOL_ENDS));
	ctl_json_str(o, "ended_at", ctl_val(res, row, QCOL_ENDED));
	ctl_json_str(o, "until", ctl_val(res, row, QCOL_UNTIL));
	ctl_json_str(o, "status", ctl_val(res, row, QCOL_STATUS));
	ctl_json_int(o, "free_tokens", ctl_val(res, row, QCOL_FREE));
	ctl_json_int(o, "discount_bp", bp);
	if (bp != NULL) {
		format_percent(bp, pct, sizeof(pct));
		pct[strlen(pct) - 1] = '\0';
	}
	ctl_json_str(o, "discount_percent", bp != NULL ? pct : NULL);
	ctl_json_int(o, "used", ctl_val(res, row, QCOL_USED));
	ctl_json_int(o, "remaining", ctl_val(res, row, QCOL_REMAINING));
	if (bal == NULL || !per_tenant_lines(res, row, filter_tenant != NULL))
		return o;
	arr = cJSON_AddArrayToObject(o, "tenants");
	for (i = 0; arr != NULL && i < PQntuples(bal); i++) {
		if (strcmp(PQgetvalue(bal, i, BCOL_PROMO), id) != 0)
			continue;
		if ((b = cJSON_CreateObject()) == NULL)
			break;
		ctl_json_str(b, "tenant", ctl_val(bal, i, BCOL_TENANT));
		ctl_json_int(b, "used", ctl_val(bal, i, BCOL_USED));
		ctl_json_int(b, "remaining", ctl_val(bal, i, BCOL_REMAINING));
		cJSON_AddItemToArray(arr, b);
	}
	return o;
}

/* Adds the table line(s) of one promotion row: for a grant to all
 * tenants listed without a tenant filter, one per tenant balance first. */
static void
promo_rows(struct ctl_table *t, const PGresult *res, int row,
	   const PGresult *bal, const char *filter_tenant)
{
	const char *bp = ctl_val(res, row, QCOL_BP);
	const char *tenant = ctl_val(res, row, QCOL_TENANT);
	const char *id = PQgetvalue(res, row, QCOL_ID);
	char window[96], amount[32], scope[96];
	const char *cells[10];
	int i;

	snprintf(window, sizeof(window), "%s/%s",
		 PQgetvalue(res, row, QCOL_STARTS),
		 PQgetvalue(res, row, QCOL_UNTIL));
	if (bp != NULL)
		format_percent(bp, amount, sizeof(amount));
	else
		snprintf(amount, sizeof(amount), "%s",
			 PQgetvalue(res, row, QCOL_FREE));
	cells[0] = PQgetvalue(res, row, QCOL_NAME);
	cells[1] = PQgetvalue(res, row, QCOL_KIND);
	cells[2] = scope;
	cells[3] = ctl_val(res, row, QCOL_MODEL);
	cells[4] = ctl_val(res, row, QCOL_PROVIDER);
	cells[5] = window;
	cells[6] = amount;
	cells[9] = PQgetvalue(res, row, QCOL_STATUS);
	for (i = 0; bal != NULL && i < PQntuples(bal) &&
		    per_tenant_lines(res, row, filter_tenant != NULL);
	     i++) {
		if (strcmp(PQgetvalue(bal, i, BCOL_PROMO), id) != 0)
			continue;
		snprintf(scope, sizeof(scope), "all: %s",
			 PQgetvalue(bal, i, BCOL_TENANT));
		cells[7] = PQgetvalue(bal, i, BCOL_USED);
		cells[8] = PQgetvalue(bal, i, BCOL_REMAINING);
		ctl_table_add(t, cells);
	}
	if (tenant != NULL)
		snprintf(scope, sizeof(scope), "%s", tenant);
	else if (filter_tenant != NULL)
		snprintf(scope, sizeof(scope), "all: %s", filter_tenant);
	else
		snprintf(scope, sizeof(scope), "all");
	cells[7] = ctl_val(res, row, QCOL_USED);
	cells[8] = ctl_val(res, row, QCOL_REMAINING);
	ctl_table_add(t, cells);
}

/* Fetches and prints promotions; tenant_id and tenant filter (both NULL
 * for all), name selects one, active keeps the active ones. */
static int
show_promos(struct ctl *ctl, const char *tenant_id, const char *tenant,
	    const char *name, int active)
{
	static const char *const head[] = {
		"NAME",   "KIND",   "SCOPE", "MODEL",     "PROVIDER",
		"WINDOW", "AMOUNT", "USED",  "REMAINING", "STATUS",
	};
	const char *params[3] = { tenant_id, name, active ? "t" : "f" };
	PGresult *res = NULL, *bal = NULL;
	struct ctl_table *t;
	cJSON *arr;
	int i, rc = CTL_EXIT_FAIL;

	res = ctl_query(ctl, "promo list", PROMO_SELECT, 3, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	if (tenant_id == NULL &&
	    (bal = ctl_query(ctl, "promo list", BALANCE_SELECT, 0, NULL)) ==
		    NULL)
		goto out;
	if (ctl->json) {
		arr = cJSON_CreateArray();
		for (i = 0; arr != NULL && i < PQntuples(res); i++)
			cJSON_AddItemToArray(arr,
					     promo_json(res, i, bal, tenant));
		rc = ctl_json_print(arr);
		goto out;
	}
	t = ctl_table_new(10, head, "678");
	for (i = 0; i < PQntuples(res); i++)
		promo_rows(t, res, i, bal, tenant);
	rc = ctl_table_print(t) < 0 ? ctl_oom() : 0;
out:
	PQclear(bal);
	PQclear(res);
	return rc;
}

/* tollctl promo add ... */
static int
promo_add(struct ctl *ctl, const struct ctl_args *a)
{
	const char *name = ctl_arg(a, "name");
	const char *free_arg = ctl_arg(a, "free-tokens");
	const char *discount = ctl_arg(a, "discount");
	const char *tenant = ctl_arg(a, "tenant");
	const char *model = ctl_arg(a, "model");
	const char *provider = ctl_arg(a, "provider");
	const char *from = ctl_arg(a, "from"), *until = ctl_arg(a, "until");
	const char *params[9], *cause;
	char tenant_id[24], tz[64] = "UTC", amount[24];
	struct ctl_time starts, ends;
	int64_t tid, tokens;
	int all = ctl_arg(a, "all") != NULL, bp, rc;
	PGresult *res;

	if (!valid_name(name)) {
		ctl_err("invalid --name '%s': letters, digits, '.', '_' and '-', starting with a letter or digit, up to 64",
			name);
		return CTL_EXIT_USAGE;
	}
	if ((free_arg == NULL) == (discount == NULL)) {
		ctl_err("promo add: give exactly one of --free-tokens and --discount");
		return CTL_EXIT_USAGE;
	}
	if (free_arg != NULL) {
		if (ctl_parse_count(free_arg, &tokens, &cause) < 0) {
			ctl_err("invalid --free-tokens '%s': %s", free_arg,
				cause);
			return CTL_EXIT_USAGE;
		}
		if (tokens == 0) {
			ctl_err("invalid --free-tokens '%s': must be above zero",
				free_arg);
			return CTL_EXIT_USAGE;
		}
		snprintf(amount, sizeof(amount), "%lld", (long long)tokens);
	} else {
		if (parse_discount(discount, &bp) < 0) {
			ctl_err("invalid --discount '%s': a percentage above 0 and at most 100, with at most two decimals (e.g. 20%% or 12.5%%)",
				discount);
			return CTL_EXIT_USAGE;
		}
		snprintf(amount, sizeof(amount), "%d", bp);
	}
	if (tenant != NULL && all) {
		ctl_err("promo add: --tenant and --all exclude each other");
		return CTL_EXIT_USAGE;
	}
	if ((tenant != NULL && *tenant == '\0') ||
	    (model != NULL && *model == '\0') ||
	    (provider != NULL && *provider == '\0')) {
		ctl_err("promo add: --tenant, --model and --provider cannot be empty");
		return CTL_EXIT_USAGE;
	}
	if (ctl_check_time("--from", from) < 0 ||
	    ctl_check_time("--until", until) < 0)
		return CTL_EXIT_USAGE;
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	if (tenant != NULL) {
		if (ctl_tenant_lookup(ctl, tenant, &tid, tz, sizeof(tz)) < 0)
			return CTL_EXIT_FAIL;
		snprintf(tenant_id, sizeof(tenant_id), "%lld", (long long)tid);
	}
	if (ctl_resolve_time(ctl, from, tz, &starts) < 0 ||
	    ctl_resolve_time(ctl, until, tz, &ends) < 0)
		return CTL_EXIT_FAIL;
	if (ends.us <= starts.us) {
		ctl_err("promo add: --until '%s' is not after --from '%s'",
			until, from);
		return CTL_EXIT_USAGE;
	}
	params[0] = name;
	params[1] = free_arg != NULL ? "free_tokens" : "discount";
	params[2] = tenant != NULL ? tenant_id : NULL;
	params[3] = model;
	params[4] = provider;
	params[5] = free_arg != NULL ? amount : NULL;
	params[6] = free_arg != NULL ? NULL : amount;
	params[7] = starts.text;
	params[8] = ends.text;
	res = ctl_query_raw(
		ctl,
		"INSERT INTO promotions (name, kind, tenant_id, model_pattern,"
		" provider, free_tokens, discount_bp, starts, ends)"
		" VALUES ($1, $2, $3::bigint, $4, $5, $6::bigint,"
		" $7::integer, $8::timestamptz, $9::timestamptz)"
		" RETURNING starts < now()",
		9, params);
	if (!ctl_result_ok(res)) {
		if (strcmp(ctl_sqlstate(res), "23505") == 0)
			ctl_err("promo add: a promotion named '%s' already exists",
				name);
		else
			ctl_err("promo add: %s", ctl_pg_message(res));
		PQclear(res);
		return CTL_EXIT_FAIL;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		ctl_err("note: '%s' starts in the past; usage already ingested keeps its prices",
			name);
	PQclear(res);
	rc = show_promos(ctl, tenant != NULL ? tenant_id : NULL, tenant, name,
			 0);
	return rc;
}

/* tollctl promo list [--tenant T] [--active] */
static int
promo_list(struct ctl *ctl, const struct ctl_args *a)
{
	const char *tenant = ctl_arg(a, "tenant");
	int active = ctl_arg(a, "active") != NULL;
	char tenant_id[24];
	int64_t tid;

	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	if (tenant != NULL) {
		if (ctl_tenant_lookup(ctl, tenant, &tid, NULL, 0) < 0)
			return CTL_EXIT_FAIL;
		snprintf(tenant_id, sizeof(tenant_id), "%lld", (long long)tid);
	}
	return show_promos(ctl, tenant != NULL ? tenant_id : NULL, tenant, NULL,
			   active);
}

/* tollctl promo end NAME [--at TIME]: sets ended_at, or brings forward
 * an end set for later; ending an ended promotion again without --at is
 * a no-op. */
static int
promo_end(struct ctl *ctl, const struct ctl_args *a)
{
	const char *name = a->argv[0], *at = ctl_arg(a, "at"), *params[2];
	char id[24], ended[40], ends[40];
	struct ctl_time when;
	int64_t now_us, ends_us, ended_us = 0;
	int was_ended, rc = CTL_EXIT_FAIL;
	PGresult *res = NULL;

	if (at != NULL && ctl_check_time("--at", at) < 0)
		return CTL_EXIT_USAGE;
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	if (ctl_exec(ctl, "BEGIN") < 0)
		return CTL_EXIT_FAIL;
	params[0] = name;
	/* id, time zone, ended_at, now, ends and ended_at in microseconds,
	 * ends */
	/* clang-format off */
	res = ctl_query_named(ctl, "promo end", "promotion",
		"SELECT p.id, coalesce(t.tz, 'UTC'), " CTL_TS("p.ended_at")
		", (extract(epoch FROM now()) * 1000000)::bigint,"
		" (extract(epoch FROM p.ends) * 1000000)::bigint,"
		" (extract(epoch FROM p.ended_at) * 1000000)::bigint, "
		CTL_TS("p.ends") " FROM promotions p"
		" LEFT JOIN tenants t ON t.id = p.tenant_id"
		" WHERE p.name = $1 FOR UPDATE OF p", 1, params);
	/* clang-format on */
	if (res == NULL)
		goto out;
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	was_ended = ctl_val(res, 0, 2) != NULL;
	snprintf(ended, sizeof(ended), "%s",
		 was_ended ? PQgetvalue(res, 0, 2) : "");
	snprintf(ends, sizeof(ends), "%s", PQgetvalue(res, 0, 6));
	now_us = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	ends_us = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
	if (was_ended)
		ended_us = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	if (at != NULL &&
	    ctl_resolve_time(ctl, at, PQgetvalue(res, 0, 1), &when) < 0)
		goto out;
	if (at == NULL) {
		when.us = now_us;
		clock_format(now_us, CLOCK_SQL, when.text);
	}
	PQclear(res);
	res = NULL;
	if (was_ended && (ended_us <= now_us || when.us >= ended_us)) {
		if (at != NULL) {
			ctl_err("promotion '%s' already %s at %s (an end can only be brought forward)",
				name, ended_us <= now_us ? "ended" : "ends",
				ended);
			goto out;
		}
		if (ctl_exec(ctl, "ROLLBACK") < 0)
			goto out;
		if (ctl->json)
			return show_promos(ctl, NULL, NULL, name, 0);
		printf("promotion %s was already ended at %s\n", name, ended);
		return 0;
	}
	if (when.us >= ends_us) {
		if (ends_us <= now_us)
			ctl_err("promotion '%s' already expired at %s", name,
				ends);
		else
			ctl_err("promotion '%s' ends at %s, before --at %s",
				name, ends, at);
		goto out;
	}
	params[0] = id;
	params[1] = when.text;
	/* clang-format off */
	res = ctl_query(ctl, "promo end",
		"UPDATE promotions SET ended_at = $2::timestamptz"
		" WHERE id = $1 RETURNING " CTL_TS("ended_at"), 2, params);
	/* clang-format on */
	if (res == NULL || ctl_exec(ctl, "COMMIT") < 0)
		goto out;
	rc = 0;
	if (ctl->json)
		rc = show_promos(ctl, NULL, NULL, name, 0);
	else
		printf("promotion %s %s at %s\n", name,
		       when.us <= now_us ? "ended" : "ends",
		       PQgetvalue(res, 0, 0));
out:
	if (rc != 0 && PQtransactionStatus(ctl->conn) != PQTRANS_IDLE)
		PQclear(PQexec(ctl->conn, "ROLLBACK"));
	PQclear(res);
	return rc;
}

const struct ctl_cmd ctl_promo_add_cmd = {
	.family = "promo",
	.name = "add",
	.usage = promo_usage,
	.opts = "name! free-tokens= discount= tenant= all model= provider= "
		"from! until!",
	.run = promo_add,
};

const struct ctl_cmd ctl_promo_list_cmd = {
	.family = "promo",
	.name = "list",
	.usage = promo_usage,
	.opts = "tenant= active",
	.run = promo_list,
};

const struct ctl_cmd ctl_promo_end_cmd = {
	.family = "promo",
	.name = "end",
	.usage = promo_usage,
	.opts = "at=",
	.min_args = 1,
	.max_args = 1,
	.arg_name = "promotion name",
	.run = promo_end,
};
