/*
 * ctl_bill.c - tollctl bill: a tenant's monthly bill as a table, CSV, JSON
 * or HTML; tollctl bill close: freezing a month's invoices.
 *
 * Principle: PostgreSQL computes every figure in numeric from tokens
 * summed over the month and rounds each one once, half up, to the
 * currency's minor unit, so a spreadsheet given the same sums and prices
 * finds the same numbers. A line is one (provider, upstream model, price
 * row, token class); with unit the row's price per million tokens of the
 * class and billable the tokens grants did not cover:
 *
 *   list     = round(tokens * unit / 1e6)
 *   discount = round(sum over records of billable * unit * bp / 1e4 / 1e6)
 *   amount   = round(billable * unit / 1e6 - that exact sum)
 *
 * Dividing is done by multiplying by 0.000001, which numeric does exactly.
 * Subtotals add the rounded amounts of a currency; the total converts each
 * subtotal at the month's rate into the tenant's currency and rounds the
 * sum once. Aggregation happens in SQL; C only lays the results out.
 * SQL reads a bill's records once, summing them in integers into a
 * temporary table of groups (groups_sql) that the sections then price.
 *
 * The month runs from midnight to midnight in the tenant's time zone. The
 * bill is built once as a JSON document, the one --format json prints and
 * bill close stores in invoices; every other format renders that document,
 * so a closed month prints from its frozen invoices as it was billed.
 *
 * Late records: a record of a closed month M' ingested after M' was
 * closed stays out of M''s frozen bill and is billed as an adjustment on
 * the month greatest(M' + 1, month of ingested_at), in the tenant's time
 * zone. bill close takes a SHARE lock on usage_records before taking
 * closed_at, so writes in flight are committed first and later ones wait
 * for the close to commit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl_bill.h"

static const char bill_usage[] =
	"usage: tollctl bill --month YYYY-MM [--tenant T]\n"
	"                    [--format text|csv|json|html] [-o FILE]\n"
	"       tollctl bill close --month YYYY-MM\n"
	"\n"
	"The bill of tenant T (default: every tenant with usage) for the\n"
	"month in the tenant's time zone: a line per provider, upstream\n"
	"model, price and token class; estimated usage and adjustments for\n"
	"late records marked; unpriced usage listed, not billed; promotions;\n"
	"subtotals per currency and the total in the tenant's currency at\n"
	"the month's rates (tollctl fx set). A closed month prints its\n"
	"frozen invoices. --json means --format json; -o writes FILE\n"
	"atomically (csv, json, html).\n"
	"\n"
	"bill close freezes the month's invoices, once the month has ended in\n"
	"UTC+14 and every exchange rate it needs is set. Records of a closed\n"
	"month ingested later are billed as adjustments on a later month.\n";

#define NELEM(a) ((int)(sizeof(a) / sizeof(*(a))))

static const char *const format_names[] = { "text", "csv", "json", "html" };

/* The first and the end instant of the month starting on date $3 in time
 * zone $2. */
#define LO "($3::date::timestamp AT TIME ZONE $2::text)"
#define HI "(($3::date + interval '1 month')::timestamp AT TIME ZONE $2::text)"

/*
 * The records billed to tenant $1 (time zone $2) for the month starting on
 * date $3: its records of the month with tokens, less those ingested after
 * the month was closed, plus the late records of earlier closed months
 * that fall on it (orig = their month). The second branch's lower bound on
 * ingested_at only narrows the index scan: a late record was ingested
 * after its month was closed, which bill close allows only once the month
 * has ended in UTC+14, at most 26 hours before it ends in any zone.
 */
#define U_COLS                                                                 \
	"u.request_id, u.ts, u.provider, u.upstream_model, u.price_id,"        \
	" u.currency, u.usage_source, u.unpriced, u.prompt_tokens,"            \
	" u.completion_tokens, u.cached_tokens, u.cache_write_tokens,"         \
	" u.free_input_tokens, u.free_cached_tokens,"                          \
	" u.free_cache_write_tokens, u.free_output_tokens, u.discount_id,"     \
	" u.discount_bp"
#define HAS_TOKENS                                                             \
	" AND u.prompt_tokens + u.completion_tokens + u.cached_tokens"         \
	" + u.cache_write_tokens > 0"
#define BILL_RECORDS                                                           \
	"WITH u AS (SELECT " U_COLS ", NULL::date AS orig"                     \
	" FROM usage_records u"                                                \
	" WHERE u.tenant_id = $1::bigint AND u.ts >= " LO                      \
	" AND u.ts < " HI HAS_TOKENS                                           \
	" AND NOT EXISTS (SELECT 1 FROM closed_months c"                       \
	" WHERE c.month = $3::date AND c.closed_at < u.ingested_at)"           \
	" UNION ALL"                                                           \
	" SELECT " U_COLS ", c.month FROM usage_records u"                     \
	" JOIN closed_months c"                                                \
	" ON c.month = date_trunc('month', u.ts AT TIME ZONE $2::text)::date"  \
	" AND u.ingested_at > c.closed_at"                                     \
	" WHERE u.tenant_id = $1::bigint AND u.ts < " LO HAS_TOKENS            \
	" AND u.ingested_at > " LO " - interval '27 hours'"                    \
	" AND u.ingested_at < " HI                                             \
	" AND greatest(c.month + interval '1 month', date_trunc('month',"      \
	" u.ingested_at AT TIME ZONE $2::text)) = $3::date)"

/*
 * One read of the records per bill. Reading the tenant's month is most of
 * a bill's time (a month partition holds every tenant's records), so
 * groups_sql reads it once into bill_g, a temporary table with a row per
 * group of records that agree on everything a section groups, filters or
 * prices by: original month, day, estimated, provider, upstream model,
 * price row, the records' currency, unpriced, discount and grant. The
 * sections' statements read its few thousand rows and join prices to the
 * groups, not to each record; the sums stay exact, as a unit price is the
 * same for every record of a price row: sum(tokens) * unit is the sum of
 * tokens * unit.
 *
 * Per class (in, ca, cw, out), a group has the records with tokens of the
 * class (q_*), their tokens (n_*), free tokens (f_*), d_* = sum of
 * billable tokens * discount_bp, so that an exact discount is unit * d *
 * 1e-10, and g_* the tokens its grant covered. A record is joined to each
 * of its grants; w marks the one row that carries the record's own sums
 * (that of its lowest promotion, or its only row), so that a record counts
 * once however many grants it has. A group of further grants only has
 * NULL record sums, which sum() skips. OFFSET 0 keeps j a subquery, so
 * that w's subquery runs once per row, not once per aggregate.
 */
#define GROUP_SUMS(c)                                                          \
	" count(*) FILTER (WHERE w AND n_" c " > 0) AS q_" c ","               \
	" sum(n_" c ") FILTER (WHERE w) AS n_" c ","                           \
	" sum(f_" c ") FILTER (WHERE w) AS f_" c ","                           \
	" sum((n_" c " - f_" c ") * discount_bp) FILTER (WHERE w) AS d_" c "," \
	" sum(g_" c ") AS g_" c
#define GROUP_KEYS                                                             \
	" orig, day, est, provider, model, price_id, rec_currency, unpriced,"  \
	" discount_id, discount_bp, promotion_id"

/* clang-format off */
static const char groups_sql[] = "CREATE TEMP TABLE bill_g AS "
	BILL_RECORDS ","
	" j AS (SELECT u.orig, (u.ts AT TIME ZONE $2::text)::date AS day,"
	" u.usage_source = 'estimated' AS est, u.provider,"
	" u.upstream_model AS model, u.price_id, u.currency AS rec_currency,"
	" u.unpriced, u.discount_id, u.discount_bp, gr.promotion_id,"
	" greatest(u.prompt_tokens - u.cached_tokens"
	" - u.cache_write_tokens, 0) AS n_in,"
	" u.cached_tokens AS n_ca, u.cache_write_tokens AS n_cw,"
	" u.completion_tokens AS n_out,"
	" u.free_input_tokens AS f_in, u.free_cached_tokens AS f_ca,"
	" u.free_cache_write_tokens AS f_cw, u.free_output_tokens AS f_out,"
	" gr.input_tokens AS g_in, gr.cached_tokens AS g_ca,"
	" gr.cache_write_tokens AS g_cw, gr.output_tokens AS g_out,"
	" gr.promotion_id IS NULL OR gr.promotion_id = (SELECT"
	" min(o.promotion_id) FROM usage_grants o"
	" WHERE o.request_id = u.request_id AND o.ts = u.ts) AS w"
	" FROM u LEFT JOIN usage_grants gr ON gr.request_id = u.request_id"
	" AND gr.ts = u.ts OFFSET 0)"
	" SELECT" GROUP_KEYS ", count(*) FILTER (WHERE w) AS requests,"
	GROUP_SUMS("in") "," GROUP_SUMS("ca") "," GROUP_SUMS("cw") ","
	GROUP_SUMS("out") " FROM j GROUP BY" GROUP_KEYS;
/* clang-format on */

/*
 * The statements of the sections read bill_g, with $1 the month's first
 * day and $2 the tenant's currency when they need them.
 *
 * r has bill_g's groups with the unit prices (u_*) of each class, the
 * currency (the price row's when the records have none) and unp when
 * unpriced. g sums them per line key; k has one row per line: g's row and
 * a class with tokens.
 */
#define LINE_SUMS(c)                                                           \
	" sum(q_" c ") AS q_" c ", sum(n_" c ") AS n_" c ","                   \
	" sum(f_" c ") AS f_" c ", sum(d_" c ") AS d_" c
/* clang-format off */
#define BILL_GROUPS                                                            \
	"WITH r AS (SELECT b.*,"                                               \
	" coalesce(b.rec_currency, p.currency) AS currency,"                   \
	" (b.unpriced OR p.id IS NULL) AS unp,"                                \
	" p.effective_from AS pfrom, p.tenant_id IS NOT NULL AS contract,"     \
	" p.input AS u_in, coalesce(p.cached_input, p.input) AS u_ca,"         \
	" coalesce(p.cache_write, p.input) AS u_cw, p.output AS u_out"         \
	" FROM bill_g b LEFT JOIN prices p ON p.id = b.price_id),"             \
	" g AS (SELECT orig, est, provider, model, price_id, currency, pfrom," \
	" contract, u_in, u_ca, u_cw, u_out," LINE_SUMS("in") ","              \
	LINE_SUMS("ca") "," LINE_SUMS("cw") "," LINE_SUMS("out")               \
	" FROM r WHERE NOT unp"                                                \
	" GROUP BY orig, est, provider, model, price_id, currency, pfrom,"     \
	" contract, u_in, u_ca, u_cw, u_out),"                                 \
	" k AS (SELECT g.orig, g.est, g.provider, g.model, g.price_id,"        \
	" g.currency, g.pfrom, g.contract, v.*,"                               \
	" round(v.n * v.unit * 0.000001,"                                      \
	" tollgate_minor_digits(g.currency)) AS list,"                         \
	" round(v.d * v.unit * 0.0000000001,"                                  \
	" tollgate_minor_digits(g.currency)) AS disc,"                         \
	" round((v.n - v.f) * v.unit * 0.000001"                               \
	" - v.d * v.unit * 0.0000000001,"                                      \
	" tollgate_minor_digits(g.currency)) AS amount"                        \
	" FROM g CROSS JOIN LATERAL (VALUES"                                   \
	" (1, 'input', g.q_in, g.n_in, g.f_in, g.d_in, g.u_in),"               \
	" (2, 'cached', g.q_ca, g.n_ca, g.f_ca, g.d_ca, g.u_ca),"              \
	" (3, 'cache_write', g.q_cw, g.n_cw, g.f_cw, g.d_cw, g.u_cw),"         \
	" (4, 'output', g.q_out, g.n_out, g.f_out, g.d_out, g.u_out))"         \
	" AS v(ord, cls, q, n, f, d, unit) WHERE v.n > 0) "
/* clang-format on */

/* clang-format off */
static const char lines_sql[] = BILL_GROUPS
	"SELECT CASE WHEN orig IS NOT NULL THEN 'adjustment'"
	" WHEN est THEN 'estimated' ELSE 'line' END,"
	" to_char(orig, 'YYYY-MM'), est, provider, model, price_id, "
	CTL_TS("pfrom") ", contract, cls, q, n, f, n - f,"
	" trim_scale(unit)::text, currency, list, disc, amount FROM k"
	" ORDER BY orig IS NOT NULL, orig, est, currency, provider, model,"
	" pfrom, price_id, ord";
/* clang-format on */

/* JSON member names and types of a query's columns: s string, i integer,
 * b boolean. */
struct col {
	const char *name;
	char type;
};

static const struct col line_cols[] = {
	{ "section", 's' },         { "original_month", 's' },
	{ "estimated", 'b' },       { "provider", 's' },
	{ "model", 's' },           { "price_id", 'i' },
	{ "price_from", 's' },      { "contract", 'b' },
	{ "token_class", 's' },     { "requests", 'i' },
	{ "tokens", 'i' },          { "free_tokens", 'i' },
	{ "billable_tokens", 'i' }, { "unit_price", 's' },
	{ "currency", 's' },        { "list_amount", 's' },
	{ "discount", 's' },        { "amount", 's' },
};

/* Subtotals per currency with the rate into $2, the tenant's currency
 * (1 for the same currency, NULL when missing), and the total, NULL when a
 * rate is missing. */
/* clang-format off */
static const char subtotals_sql[] = BILL_GROUPS
	", s AS (SELECT currency, sum(list) AS list, sum(disc) AS disc,"
	" sum(amount) AS amount FROM k GROUP BY currency),"
	" x AS (SELECT s.*, fx.set_at, CASE WHEN s.currency = $2::text"
	" THEN 1 ELSE fx.rate END AS rate FROM s LEFT JOIN fx_rates fx"
	" ON fx.month = $1::date AND fx.base = s.currency"
	" AND fx.quote = $2::text)"
	" SELECT currency, list::text, disc::text, amount::text,"
	" trim_scale(rate)::text, currency = $2::text, " CTL_TS("set_at") ","
	" CASE WHEN bool_or(rate IS NULL) OVER () THEN NULL"
	" ELSE round(sum(amount * rate) OVER (),"
	" tollgate_minor_digits($2::text))::text END FROM x ORDER BY currency";
/* clang-format on */

enum {
	ST_CUR,
	ST_LIST,
	ST_DISC,
	ST_AMOUNT,
	ST_RATE,
	ST_SAME,
	ST_SET_AT,
	ST_TOTAL
};

/* Usage without a usable price: listed, not billed. */
static const char unpriced_sql[] = BILL_GROUPS
	"SELECT to_char(orig, 'YYYY-MM'), provider, model, sum(requests),"
	" sum(n_in), sum(n_ca), sum(n_cw), sum(n_out) FROM r WHERE unp"
	" GROUP BY orig, provider, model"
	" ORDER BY orig IS NOT NULL, orig, provider, model";

static const struct col unpriced_cols[] = {
	{ "original_month", 's' },
	{ "provider", 's' },
	{ "model", 's' },
	{ "requests", 'i' },
	{ "input_tokens", 'i' },
	{ "cached_tokens", 'i' },
	{ "cache_write_tokens", 'i' },
	{ "output_tokens", 'i' },
};

/* Tokens each free-token grant covered, and their value at list price. */
static const char grants_sql[] = BILL_GROUPS
	"SELECT coalesce(pr.name, '#' || r.promotion_id), r.promotion_id,"
	" r.currency, sum(g_in + g_ca + g_cw + g_out),"
	" round(sum(g_in * u_in + g_ca * u_ca + g_cw * u_cw + g_out * u_out)"
	" * 0.000001, tollgate_minor_digits(r.currency))::text"
	" FROM r LEFT JOIN promotions pr ON pr.id = r.promotion_id"
	" WHERE NOT r.unp AND r.promotion_id IS NOT NULL"
	" GROUP BY r.promotion_id, pr.name, r.currency ORDER BY 1, 3";

static const struct col grant_cols[] = {
	{ "name", 's' },   { "promotion_id", 'i' }, { "currency", 's' },
	{ "tokens", 'i' }, { "value", 's' },
};

/* What each discount took off, rounded once per discount and currency. */
static const char discounts_sql[] = BILL_GROUPS
	"SELECT coalesce(pr.name, '#' || r.discount_id), r.discount_id,"
	" trim_scale(r.discount_bp / 100.0)::text, r.currency,"
	" round(sum(d_in * u_in + d_ca * u_ca + d_cw * u_cw + d_out * u_out)"
	" * 0.0000000001, tollgate_minor_digits(r.currency))::text"
	" FROM r LEFT JOIN promotions pr ON pr.id = r.discount_id"
	" WHERE NOT r.unp AND r.discount_bp > 0"
	" GROUP BY r.discount_id, pr.name, r.discount_bp, r.currency"
	" ORDER BY 1, 4";

static const struct col discount_cols[] = {
	{ "name", 's' },     { "promotion_id", 'i' }, { "percent", 's' },
	{ "currency", 's' }, { "amount", 's' },
};

/* Tokens of the month's own records per day of the month. */
static const char days_sql[] =
	"WITH t AS (SELECT day, sum(n_in + n_ca + n_cw + n_out) AS n"
	" FROM bill_g WHERE orig IS NULL GROUP BY 1)"
	" SELECT to_char(d, 'YYYY-MM-DD'), coalesce(t.n, 0)"
	" FROM generate_series($1::date::timestamp, $1::date"
	" + interval '1 month' - interval '1 day', interval '1 day') AS d"
	" LEFT JOIN t ON t.day = d::date ORDER BY d";

static const struct col day_cols[] = {
	{ "date", 's' },
	{ "tokens", 'i' },
};

/*
 * The tenants to bill for the month starting on date $1: tenant $2 when
 * given, else every tenant with a record near the month (a superset: the
 * bill of a tenant with nothing to bill is dropped). $3 is closed_at when
 * closing, for the issue date.
 */
/* clang-format off */
static const char tenants_sql[] =
	"SELECT t.id, t.name, t.tz, t.currency, "
	CTL_TS("($1::date::timestamp AT TIME ZONE t.tz)") ", "
	CTL_TS("(($1::date + interval '1 month')::timestamp"
	       " AT TIME ZONE t.tz)") ", "
	"round(0, tollgate_minor_digits(t.currency))::text, "
	"to_char(coalesce($3::timestamptz, now()) AT TIME ZONE t.tz,"
	" 'YYYY-MM-DD') FROM tenants t WHERE CASE WHEN $2::text IS NOT NULL"
	" THEN t.name = $2::text ELSE t.id IN ("
	"SELECT u.tenant_id FROM usage_records u"
	" WHERE u.ts >= ($1::date - 1)::timestamp AT TIME ZONE 'UTC'"
	" AND u.ts < ($1::date + interval '1 month 1 day')"
	"::timestamp AT TIME ZONE 'UTC'"
	" UNION SELECT u.tenant_id FROM usage_records u"
	" WHERE u.ingested_at >= ($1::date - 2)::timestamp AT TIME ZONE 'UTC'"
	" AND u.ingested_at < ($1::date + interval '1 month 1 day')"
	"::timestamp AT TIME ZONE 'UTC'"
	" AND u.ts < ($1::date + 1)::timestamp AT TIME ZONE 'UTC') END "
	"ORDER BY t.name";
/* clang-format on */

enum { T_ID, T_NAME, T_TZ, T_CUR, T_FROM, T_UNTIL, T_ZERO, T_ISSUED };

/* A result row as an object whose members are named and typed by cols. */
static cJSON *
row_object(const PGresult *res, int row, const struct col *cols, int ncols)
{
	cJSON *o = cJSON_CreateObject();
	int i;

	for (i = 0; o != NULL && i < ncols; i++) {
		const char *v = ctl_val(res, row, i);

		if (cols[i].type == 'i')
			ctl_json_int(o, cols[i].name, v);
		else if (cols[i].type == 'b')
			ctl_json_bool(o, cols[i].name, v);
		else
			ctl_json_str(o, cols[i].name, v);
	}
	return o;
}

/* Runs a bill query with nparams of params and adds its rows to doc as
 * array name; the number of rows, or -1 after reporting. */
static int
add_rows(struct ctl *ctl, cJSON *doc, const char *name, const char *sql,
	 int nparams, const char *const *params, const struct col *cols,
	 int ncols)
{
	PGresult *res = ctl_query(ctl, "bill", sql, nparams, params);
	cJSON *arr, *o;
	int r, n = -1;

	if (res == NULL)
		return -1;
	if ((arr = cJSON_AddArrayToObject(doc, name)) == NULL)
		goto oom;
	for (r = 0; r < PQntuples(res); r++) {
		if ((o = row_object(res, r, cols, ncols)) == NULL)
			goto oom;
		cJSON_AddItemToArray(arr, o);
	}
	n = r;
	PQclear(res);
	return n;
oom:
	PQclear(res);
	ctl_err("out of memory");
	return -1;
}

/* Adds subtotals, fx, total and missing_rates from subtotals_sql, with
 * params its $1 and $2. */
static int
add_totals(struct ctl *ctl, cJSON *doc, const char *const *params,
	   const char *month, const char *zero)
{
	PGresult *res = ctl_query(ctl, "bill", subtotals_sql, 2, params);
	cJSON *subs, *fx, *missing, *o;
	const char *total = zero;
	char cmd[96];
	int r;

	if (res == NULL)
		return -1;
	subs = cJSON_AddArrayToObject(doc, "subtotals");
	fx = cJSON_AddArrayToObject(doc, "fx");
	missing = cJSON_CreateArray();
	if (subs == NULL || fx == NULL || missing == NULL)
		goto oom;
	for (r = 0; r < PQntuples(res); r++) {
		const char *cur = ctl_val(res, r, ST_CUR);
		const char *rate = ctl_val(res, r, ST_RATE);
		int same = strcmp(PQgetvalue(res, r, ST_SAME), "t") == 0;

		total = ctl_val(res, r, ST_TOTAL);
		if ((o = cJSON_CreateObject()) == NULL)
			goto oom;
		cJSON_AddItemToArray(subs, o);
		ctl_json_str(o, "currency", cur);
		ctl_json_str(o, "list_amount", ctl_val(res, r, ST_LIST));
		ctl_json_str(o, "discount", ctl_val(res, r, ST_DISC));
		ctl_json_str(o, "amount", ctl_val(res, r, ST_AMOUNT));
		ctl_json_str(o, "fx_rate", rate);
		if (same)
			continue;
		if ((o = cJSON_CreateObject()) == NULL)
			goto oom;
		cJSON_AddItemToArray(rate != NULL ? fx : missing, o);
		ctl_json_str(o, "base", cur);
		ctl_json_str(o, "quote", params[1]);
		ctl_json_str(o, "month", month);
		if (rate != NULL) {
			ctl_json_str(o, "rate", rate);
			ctl_json_str(o, "set_at", ctl_val(res, r, ST_SET_AT));
		} else {
			snprintf(cmd, sizeof(cmd),
				 "tollctl fx set --month %s %s %s RATE", month,
				 cur, params[1]);
			ctl_json_str(o, "command", cmd);
		}
	}
	ctl_json_str(doc, "total", total);
	cJSON_AddItemToObject(doc, "missing_rates", missing);
	PQclear(res);
	return 0;
oom:
	cJSON_Delete(missing);
	PQclear(res);
	ctl_err("out of memory");
	return -1;
}

/* Builds the bill document of row of tenants_sql for month ("YYYY-MM"),
 * closed at closed_at (timestamptz text in UTC) or open when NULL. *empty
 * is set when it has neither lines nor unpriced usage. NULL after
 * reporting; the caller cJSON_Delete()s. The temporary table bill_g lives
 * for the call. */
static cJSON *
bill_build(struct ctl *ctl, const PGresult *ten, int row, const char *month,
	   const char *closed_at, int *empty)
{
	char date[16];
	const char *params[3], *sparams[2];
	cJSON *doc = cJSON_CreateObject(), *promos;
	PGresult *res;
	int nlines, nunpriced;

	snprintf(date, sizeof(date), "%s-01", month);
	params[0] = PQgetvalue(ten, row, T_ID);
	params[1] = PQgetvalue(ten, row, T_TZ);
	params[2] = date;
	sparams[0] = date;
	sparams[1] = PQgetvalue(ten, row, T_CUR);
	if (doc == NULL)
		goto oom;
	ctl_json_str(doc, "tenant", PQgetvalue(ten, row, T_NAME));
	ctl_json_int(doc, "tenant_id", params[0]);
	ctl_json_str(doc, "month", month);
	ctl_json_str(doc, "tz", params[1]);
	ctl_json_str(doc, "from", PQgetvalue(ten, row, T_FROM));
	ctl_json_str(doc, "until", PQgetvalue(ten, row, T_UNTIL));
	ctl_json_str(doc, "currency", sparams[1]);
	ctl_json_str(doc, "status", closed_at != NULL ? "closed" : "open");
	ctl_json_str(doc, "closed_at", closed_at);
	ctl_json_str(doc, "issued", PQgetvalue(ten, row, T_ISSUED));
	/* The planner cannot estimate the groups of bill_g (a few thousand)
	 * and expects nearly as many as records, so it would sort the month's
	 * records by eleven columns, spilling to disk; hashing them takes
	 * about half as long. */
	if (ctl_exec(ctl, "SET enable_sort = off") < 0)
		goto fail;
	if ((res = ctl_query(ctl, "bill", groups_sql, 3, params)) == NULL)
		goto fail;
	PQclear(res);
	if (ctl_exec(ctl, "RESET enable_sort") < 0)
		goto fail_table;
	nlines = add_rows(ctl, doc, "lines", lines_sql, 0, NULL, line_cols,
			  NELEM(line_cols));
	if (nlines < 0)
		goto fail_table;
	nunpriced = add_rows(ctl, doc, "unpriced", unpriced_sql, 0, NULL,
			     unpriced_cols, NELEM(unpriced_cols));
	if (nunpriced < 0)
		goto fail_table;
	if ((promos = cJSON_AddObjectToObject(doc, "promotions")) == NULL) {
		ctl_err("out of memory");
		goto fail_table;
	}
	if (add_rows(ctl, promos, "grants", grants_sql, 0, NULL, grant_cols,
		     NELEM(grant_cols)) < 0 ||
	    add_rows(ctl, promos, "discounts", discounts_sql, 0, NULL,
		     discount_cols, NELEM(discount_cols)) < 0 ||
	    add_totals(ctl, doc, sparams, month, PQgetvalue(ten, row, T_ZERO)) <
		    0 ||
	    add_rows(ctl, doc, "days", days_sql, 1, sparams, day_cols,
		     NELEM(day_cols)) < 0)
		goto fail_table;
	if (ctl_exec(ctl, "DROP TABLE bill_g") < 0)
		goto fail;
	*empty = nlines == 0 && nunpriced == 0;
	return doc;
oom:
	ctl_err("out of memory");
	goto fail;
fail_table:
	/* Fails harmlessly in bill close's aborted transaction, which takes
	 * the table with it. */
	PQclear(PQexec(ctl->conn, "DROP TABLE IF EXISTS bill_g"));
fail:
	cJSON_Delete(doc);
	return NULL;
}

/* Renders docs to path atomically (temporary file in the same directory,
 * then rename), or to stdout when path is NULL. 0, or CTL_EXIT_FAIL after
 * reporting. */
static int
write_output(const char *path, enum format fmt, cJSON *docs, int single)
{
	char *tmp = NULL;
	FILE *out = NULL;
	mode_t mask;
	size_t size;
	int fd;

	if (path == NULL) {
		if (ctl_bill_render(stdout, fmt, docs, single) < 0)
			return ctl_oom();
		return 0;
	}
	size = strlen(path) + 8;
	if ((tmp = malloc(size)) == NULL)
		return ctl_oom();
	snprintf(tmp, size, "%s.XXXXXX", path);
	if ((fd = mkstemp(tmp)) < 0) {
		ctl_err("cannot write %s: %s", path, strerror(errno));
		free(tmp);
		return CTL_EXIT_FAIL;
	}
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) < 0 || (out = fdopen(fd, "w")) == NULL) {
		ctl_err("cannot write %s: %s", path, strerror(errno));
		close(fd);
		goto fail;
	}
	if (ctl_bill_render(out, fmt, docs, single) < 0) {
		ctl_err("out of memory");
		fclose(out);
		goto fail;
	}
	if (fflush(out) != 0 || ferror(out) || fsync(fileno(out)) < 0) {
		ctl_err("cannot write %s: %s", path, strerror(errno));
		fclose(out);
		goto fail;
	}
	if (fclose(out) != 0) {
		ctl_err("cannot write %s: %s", path, strerror(errno));
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		ctl_err("cannot rename %s to %s: %s", tmp, path,
			strerror(errno));
		goto fail;
	}
	free(tmp);
	return 0;
fail:
	unlink(tmp);
	free(tmp);
	return CTL_EXIT_FAIL;
}

/* Builds the bills of the month's tenants (one, or all with something to
 * bill) into docs. When closing, closed is closed_at as exact timestamptz
 * text and closed_iso its display form, and each bill is stored in
 * invoices. 0, or -1 after reporting. */
static int
build_all(struct ctl *ctl, const char *month, const char *tenant,
	  const char *closed, const char *closed_iso, cJSON *docs)
{
	char date[16];
	const char *params[4];
	PGresult *ten, *res;
	cJSON *doc;
	char *text;
	int r, empty;

	snprintf(date, sizeof(date), "%s-01", month);
	params[0] = date;
	params[1] = tenant;
	params[2] = closed;
	if ((ten = ctl_query(ctl, "bill", tenants_sql, 3, params)) == NULL)
		return -1;
	if (tenant != NULL && PQntuples(ten) == 0) {
		ctl_err("no tenant named '%s'", tenant);
		goto fail;
	}
	for (r = 0; r < PQntuples(ten); r++) {
		doc = bill_build(ctl, ten, r, month, closed_iso, &empty);
		if (doc == NULL)
			goto fail;
		if (empty && tenant == NULL) {
			cJSON_Delete(doc);
			continue;
		}
		cJSON_AddItemToArray(docs, doc);
		if (closed == NULL)
			continue;
		if ((text = cJSON_PrintUnformatted(doc)) == NULL) {
			ctl_err("out of memory");
			goto fail;
		}
		params[0] = PQgetvalue(ten, r, T_ID);
		params[1] = date;
		params[2] = closed;
		params[3] = text;
		res = ctl_query(ctl, "bill close: storing the invoice",
				"INSERT INTO invoices (tenant_id, month,"
				" closed_at, document) VALUES ($1::bigint,"
				" $2::date, $3::timestamptz, $4::jsonb)",
				4, params);
		cJSON_free(text);
		if (res == NULL)
			goto fail;
		PQclear(res);
	}
	PQclear(ten);
	return 0;
fail:
	PQclear(ten);
	return -1;
}

/* Moves the members of object o named in names to its end in that order,
 * then the others after them. */
static void
order_object(cJSON *o, const char *const *names, int n)
{
	cJSON *c;
	int i, others;

	if (!cJSON_IsObject(o))
		return;
	others = cJSON_GetArraySize(o);
	for (i = 0; i < n; i++) {
		c = cJSON_GetObjectItemCaseSensitive(o, names[i]);
		if (c == NULL)
			continue;
		cJSON_AddItemToArray(o, cJSON_DetachItemViaPointer(o, c));
		others--;
	}
	while (others-- > 0)
		cJSON_AddItemToArray(o,
				     cJSON_DetachItemViaPointer(o, o->child));
}

/* Orders the members of each object in array arr like cols. */
static void
order_rows(cJSON *arr, const struct col *cols, int ncols)
{
	const char *names[32];
	cJSON *e;
	int i;

	for (i = 0; i < ncols && i < 32; i++)
		names[i] = cols[i].name;
	cJSON_ArrayForEach (e, arr)
		order_object(e, names, i);
}

/* Puts a frozen invoice's members back in the order bill_build() writes
 * them (jsonb keeps its own order). */
static void
doc_reorder(cJSON *doc)
{
	static const char *const top[] = {
		"tenant", "tenant_id",     "month",      "tz",        "from",
		"until",  "currency",      "status",     "closed_at", "issued",
		"lines",  "unpriced",      "promotions", "subtotals", "fx",
		"total",  "missing_rates", "days",
	};
	static const char *const promos[] = { "grants", "discounts" };
	static const char *const sub[] = {
		"currency", "list_amount", "discount", "amount", "fx_rate",
	};
	static const char *const fx[] = {
		"base", "quote", "month", "rate", "set_at", "command",
	};
	cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "promotions");
	cJSON *e;

	order_object(doc, top, NELEM(top));
	order_object(p, promos, NELEM(promos));
	order_rows(cJSON_GetObjectItemCaseSensitive(doc, "lines"), line_cols,
		   NELEM(line_cols));
	order_rows(cJSON_GetObjectItemCaseSensitive(doc, "unpriced"),
		   unpriced_cols, NELEM(unpriced_cols));
	order_rows(cJSON_GetObjectItemCaseSensitive(p, "grants"), grant_cols,
		   NELEM(grant_cols));
	order_rows(cJSON_GetObjectItemCaseSensitive(p, "discounts"),
		   discount_cols, NELEM(discount_cols));
	order_rows(cJSON_GetObjectItemCaseSensitive(doc, "days"), day_cols,
		   NELEM(day_cols));
	cJSON_ArrayForEach (e,
			    cJSON_GetObjectItemCaseSensitive(doc, "subtotals"))
		order_object(e, sub, NELEM(sub));
	cJSON_ArrayForEach (e, cJSON_GetObjectItemCaseSensitive(doc, "fx"))
		order_object(e, fx, NELEM(fx));
	cJSON_ArrayForEach (
		e, cJSON_GetObjectItemCaseSensitive(doc, "missing_rates"))
		order_object(e, fx, NELEM(fx));
}

/* Loads the frozen invoices of a closed month into docs. 0, or -1 after
 * reporting. */
static int
load_frozen(struct ctl *ctl, const char *month, const char *tenant,
	    const char *closed_at, cJSON *docs)
{
	char date[16];
	const char *params[2] = { date, tenant };
	const char *name[1] = { tenant };
	PGresult *res;
	cJSON *doc;
	int r;

	snprintf(date, sizeof(date), "%s-01", month);
	res = ctl_query(ctl, "bill",
			"SELECT i.document::text, t.name FROM invoices i"
			" JOIN tenants t ON t.id = i.tenant_id"
			" WHERE i.month = $1::date"
			" AND ($2::text IS NULL OR t.name = $2::text)"
			" ORDER BY t.name",
			2, params);
	if (res == NULL)
		return -1;
	if (tenant != NULL && PQntuples(res) == 0) {
		PQclear(res);
		res = ctl_query(ctl, "bill",
				"SELECT 1 FROM tenants WHERE name = $1", 1,
				name);
		if (res != NULL && PQntuples(res) == 0)
			ctl_err("no tenant named '%s'", tenant);
		else if (res != NULL)
			ctl_err("%s was closed at %s without an invoice for tenant '%s' (no usage)",
				month, closed_at, tenant);
		PQclear(res);
		return -1;
	}
	for (r = 0; r < PQntuples(res); r++) {
		if ((doc = cJSON_Parse(PQgetvalue(res, r, 0))) == NULL) {
			ctl_err("bill: the invoice of '%s' for %s is not valid JSON",
				PQgetvalue(res, r, 1), month);
			PQclear(res);
			return -1;
		}
		doc_reorder(doc);
		cJSON_AddItemToArray(docs, doc);
	}
	PQclear(res);
	return 0;
}

/* tollctl bill --month M [--tenant T] [--format F] [-o FILE] */
static int
bill_show(struct ctl *ctl, const struct ctl_args *a)
{
	const char *month = ctl_arg(a, "month"), *tenant = ctl_arg(a, "tenant");
	const char *path = ctl_arg(a, "output");
	const char *fmt_arg = ctl_arg(a, "format"), *params[1];
	enum format fmt = FMT_TEXT;
	const char *closed_at = NULL;
	PGresult *res = NULL;
	cJSON *docs = NULL, *doc;
	int rc = CTL_EXIT_FAIL;
	size_t i;

	if (!ctl_valid_month(month)) {
		ctl_err("bill: --month '%s' is not YYYY-MM", month);
		return CTL_EXIT_USAGE;
	}
	if (ctl->json)
		fmt = FMT_JSON;
	for (i = 0; fmt_arg != NULL && i < 4; i++)
		if (strcmp(fmt_arg, format_names[i]) == 0)
			break;
	if (fmt_arg != NULL && i == 4) {
		ctl_err("bill: --format '%s': expected text, csv, json or html",
			fmt_arg);
		return CTL_EXIT_USAGE;
	}
	if (fmt_arg != NULL)
		fmt = (enum format)i;
	if (ctl->json && fmt != FMT_JSON) {
		ctl_err("bill: --json conflicts with --format %s", fmt_arg);
		return CTL_EXIT_USAGE;
	}
	if (path != NULL && fmt == FMT_TEXT) {
		ctl_err("bill: -o needs --format csv, json or html");
		return CTL_EXIT_USAGE;
	}
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	if ((docs = cJSON_CreateArray()) == NULL)
		return ctl_oom();
	params[0] = month;
	/* clang-format off */
	res = ctl_query(ctl, "bill", "SELECT " CTL_TS("closed_at")
			" FROM closed_months"
			" WHERE month = to_date($1, 'YYYY-MM')", 1, params);
	/* clang-format on */
	if (res == NULL)
		goto out;
	if (PQntuples(res) > 0) {
		closed_at = PQgetvalue(res, 0, 0);
		if (load_frozen(ctl, month, tenant, closed_at, docs) < 0)
			goto out;
		if (fmt != FMT_TEXT)
			ctl_err("%s is closed (at %s): printing its frozen invoices",
				month, closed_at);
	} else if (build_all(ctl, month, tenant, NULL, NULL, docs) < 0) {
		goto out;
	}
	if (cJSON_GetArraySize(docs) == 0 && fmt == FMT_TEXT) {
		printf("Nothing to bill for %s%s.\n", month,
		       closed_at != NULL ? " (closed)" : "");
		rc = 0;
		goto out;
	}
	rc = write_output(path, fmt, docs,
			  tenant != NULL && cJSON_GetArraySize(docs) == 1);
	if (rc == 0)
		cJSON_ArrayForEach (doc, docs)
			ctl_bill_warn(doc);
out:
	PQclear(res);
	cJSON_Delete(docs);
	return rc;
}

/* Rolls back the transaction of bill close, ignoring errors. */
static void
rollback(struct ctl *ctl)
{
	PQclear(PQexec(ctl->conn, "ROLLBACK"));
}

/* Prints what bill close stored. */
static int
print_closed(struct ctl *ctl, const char *month, const char *closed_at,
	     cJSON *docs)
{
	static const char *const head[] = { "TENANT", "TOTAL", "CURRENCY" };
	struct ctl_table *t;
	cJSON *root, *arr, *o;
	const cJSON *doc;

	if (ctl->json) {
		root = cJSON_CreateObject();
		if (root == NULL)
			return ctl_json_print(NULL);
		ctl_json_str(root, "month", month);
		ctl_json_str(root, "closed_at", closed_at);
		arr = cJSON_AddArrayToObject(root, "invoices");
		cJSON_ArrayForEach (doc, docs) {
			if (arr == NULL || (o = cJSON_CreateObject()) == NULL)
				break;
			ctl_json_str(o, "tenant", ctl_bill_jstr(doc, "tenant"));
			ctl_json_str(o, "total", ctl_bill_jstr(doc, "total"));
			ctl_json_str(o, "currency",
				     ctl_bill_jstr(doc, "currency"));
			cJSON_AddItemToArray(arr, o);
		}
		return ctl_json_print(root);
	}
	printf("Closed %s at %s: %d invoice%s.\n", month, closed_at,
	       cJSON_GetArraySize(docs),
	       cJSON_GetArraySize(docs) == 1 ? "" : "s");
	if (cJSON_GetArraySize(docs) == 0)
		return 0;
	t = ctl_table_new(3, head, "1");
	cJSON_ArrayForEach (doc, docs)
		ROW(t, ctl_bill_jstr(doc, "tenant"),
		    ctl_bill_jstr(doc, "total"),
		    ctl_bill_jstr(doc, "currency"));
	return ctl_table_print(t) < 0 ? ctl_oom() : 0;
}

/* tollctl bill close --month M */
static int
bill_close(struct ctl *ctl, const struct ctl_args *a)
{
	const char *month = ctl_arg(a, "month"), *params[1];
	char closed_at[64], closed_iso[32];
	PGresult *res = NULL;
	cJSON *docs = NULL, *doc;
	int missing = 0, rc;

	if (!ctl_valid_month(month)) {
		ctl_err("bill close: --month '%s' is not YYYY-MM", month);
		return CTL_EXIT_USAGE;
	}
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	if ((docs = cJSON_CreateArray()) == NULL)
		return ctl_oom();
	if (ctl_exec(ctl, "BEGIN") < 0)
		goto fail;
	/* Closers queue here; SHARE ROW EXCLUSIVE conflicts with itself. */
	if (ctl_exec(ctl, "LOCK TABLE closed_months IN SHARE ROW EXCLUSIVE"
			  " MODE") < 0)
		goto fail_tx;
	params[0] = month;
	/* clang-format off */
	res = ctl_query(ctl, "bill close",
		"SELECT " CTL_TS("c.closed_at") ", now() >= e.at, "
		CTL_TS("e.at") " FROM (SELECT ((to_date($1, 'YYYY-MM')"
		" + interval '1 month')::timestamp - interval '14 hours')"
		" AT TIME ZONE 'UTC' AS at) e LEFT JOIN closed_months c"
		" ON c.month = to_date($1, 'YYYY-MM')", 1, params);
	/* clang-format on */
	if (res == NULL)
		goto fail_tx;
	if (!PQgetisnull(res, 0, 0)) {
		ctl_err("%s is already closed (at %s)", month,
			PQgetvalue(res, 0, 0));
		goto fail_tx;
	}
	if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
		ctl_err("%s has not ended everywhere yet: it can be closed from %s (its end in UTC+14)",
			month, PQgetvalue(res, 0, 2));
		goto fail_tx;
	}
	PQclear(res);
	/* Writes in flight commit first; later ones wait for the COMMIT and
	 * so are ingested after closed_at. */
	if (ctl_exec(ctl, "LOCK TABLE usage_records IN SHARE MODE") < 0)
		goto fail_tx;
	/* clang-format off */
	res = ctl_query(ctl, "bill close",
			"INSERT INTO closed_months (month, closed_at)"
			" VALUES (to_date($1, 'YYYY-MM'), clock_timestamp())"
			" RETURNING closed_at::text, " CTL_TS("closed_at"),
			1, params);
	/* clang-format on */
	if (res == NULL)
		goto fail_tx;
	snprintf(closed_at, sizeof(closed_at), "%s", PQgetvalue(res, 0, 0));
	snprintf(closed_iso, sizeof(closed_iso), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	res = NULL;
	if (build_all(ctl, month, NULL, closed_at, closed_iso, docs) < 0)
		goto fail_tx;
	cJSON_ArrayForEach (doc, docs) {
		const cJSON *e;

		cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "missing_rates")) {
			ctl_err("bill close: %s: exchange rate %s to %s for %s is missing (%s)",
				ctl_bill_jstr(doc, "tenant"),
				ctl_bill_jstr(e, "base"),
				ctl_bill_jstr(e, "quote"), month,
				ctl_bill_jstr(e, "command"));
			missing++;
		}
	}
	if (missing > 0) {
		ctl_err("bill close: %s not closed: %d exchange rate%s missing",
			month, missing, missing == 1 ? "" : "s");
		goto fail_tx;
	}
	if (ctl_exec(ctl, "COMMIT") < 0)
		goto fail;
	cJSON_ArrayForEach (doc, docs)
		ctl_bill_warn(doc);
	rc = print_closed(ctl, month, closed_iso, docs);
	cJSON_Delete(docs);
	return rc;
fail_tx:
	rollback(ctl);
fail:
	PQclear(res);
	cJSON_Delete(docs);
	return CTL_EXIT_FAIL;
}

const struct ctl_cmd ctl_bill_cmd = {
	.family = "bill",
	.usage = bill_usage,
	.opts = "m|month!YYYY-MM t|tenant= f|format= o|output=",
	.run = bill_show,
};

const struct ctl_cmd ctl_bill_close_cmd = {
	.family = "bill",
	.name = "close",
	.usage = bill_usage,
	.opts = "m|month!YYYY-MM",
	.run = bill_close,
};
