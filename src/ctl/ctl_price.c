/*
 * ctl_price.c - tollctl price set | list and fx set | list.
 *
 * Prices are exact decimals per million tokens. Each is parsed by
 * price_parse() into integer nano-units, so a value with more than nine
 * decimals or a negative one is refused before anything is sent, and the
 * database receives the canonical decimal text of price_format(), never a
 * double. A price row is never changed once set: usage records point at
 * the row they were priced with, so a new price is a new row with a later
 * --from. An exchange rate is per month and may be replaced; records
 * already ingested keep the rate they were converted with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "price.h"

static const char price_usage[] =
	"usage: tollctl price set --provider P --model M --input X --output Y\n"
	"                         [--cached X] [--cache-write X] "
	"--currency CUR\n"
	"                         --from TIME [--tenant T] [--source TEXT]\n"
	"       tollctl price list [--provider P] [--model M] [--tenant T]\n"
	"                          [--at TIME]\n"
	"\n"
	"Prices are per million tokens, exact decimals with at most nine\n"
	"decimals, in CUR (three capital letters). P is the gateway's\n"
	"[provider NAME], M the upstream model. --cached and --cache-write\n"
	"default to the input price; reasoning tokens bill as output.\n"
	"--tenant makes a contract price for that tenant, which beats the\n"
	"list price. TIME is a date (midnight in the tenant's time zone with\n"
	"--tenant, else UTC) or an RFC 3339 timestamp. A price row cannot be\n"
	"changed: set a new one with a later --from.\n"
	"list: list prices and every contract price (with --tenant, the list\n"
	"prices and that tenant's); '-' as TENANT is a list price, as CACHED\n"
	"or CACHE_WRITE the input price. --at keeps the row in force at TIME\n"
	"for each provider, model, tenant and currency.\n";

static const char fx_usage[] =
	"usage: tollctl fx set --month YYYY-MM BASE QUOTE RATE\n"
	"       tollctl fx list [--month YYYY-MM]\n"
	"\n"
	"set: 1 BASE = RATE QUOTE for the month (e.g. fx set --month 2026-11\n"
	"  USD CNY 7.12). RATE is a positive exact decimal with at most nine\n"
	"  decimals. Setting it again replaces it; records already ingested\n"
	"  keep the rate they were converted with.\n";

/* Price columns in PCOL_* order; the filters are $1 provider, $2 model,
 * $3 tenant id (list prices are always kept), $4 time in force, $5 id. */
/* clang-format off */
#define PRICE_SELECT \
	"SELECT id, provider, model, tenant, currency, input, cached_input," \
	" cache_write, output, " CTL_TS("f") ", " CTL_TS("u") ", source, " \
	CTL_TS("created_at") " FROM (" \
	"SELECT p.id, p.provider, p.model, t.name AS tenant, p.currency," \
	" p.input::text AS input, p.cached_input::text AS cached_input," \
	" p.cache_write::text AS cache_write, p.output::text AS output," \
	" p.effective_from AS f, lead(p.effective_from) OVER (PARTITION BY" \
	" p.provider, p.model, p.tenant_id, p.currency" \
	" ORDER BY p.effective_from) AS u, p.source, p.created_at" \
	" FROM prices p LEFT JOIN tenants t ON t.id = p.tenant_id" \
	" WHERE ($1::text IS NULL OR p.provider = $1)" \
	" AND ($2::text IS NULL OR p.model = $2)" \
	" AND ($3::bigint IS NULL OR p.tenant_id IS NULL" \
	" OR p.tenant_id = $3)) s" \
	" WHERE ($4::timestamptz IS NULL OR (f <= $4 AND" \
	" (u IS NULL OR u > $4)))" \
	" AND ($5::bigint IS NULL OR id = $5)" \
	" ORDER BY provider, model, tenant NULLS FIRST, currency, f"
/* clang-format on */

enum {
	PCOL_ID,
	PCOL_PROVIDER,
	PCOL_MODEL,
	PCOL_TENANT,
	PCOL_CUR,
	PCOL_INPUT,
	PCOL_CACHED,
	PCOL_CACHE_WRITE,
	PCOL_OUTPUT,
	PCOL_FROM,
	PCOL_UNTIL,
	PCOL_SOURCE,
	PCOL_CREATED
};

/* A stored price as canonical decimal text ("5.0" -> "5") in buf, or
 * NULL for SQL NULL. */
static const char *
canon_price(const PGresult *res, int row, int col, char *buf, size_t size)
{
	const char *v = ctl_val(res, row, col), *cause;
	int64_t nanos;

	if (v == NULL)
		return NULL;
	if (price_parse(v, &nanos, &cause) < 0)
		return v;
	price_format(nanos, buf, size);
	return buf;
}

/* Price rows as a table or JSON; prices are decimal strings. */
static const struct ctl_view price_view = {
	(const struct ctl_cell[]){
		{ "ID", PCOL_ID, 1, NULL, NULL },
		{ "PROVIDER", PCOL_PROVIDER, 0, NULL, NULL },
		{ "MODEL", PCOL_MODEL, 0, NULL, NULL },
		{ "TENANT", PCOL_TENANT, 0, NULL, NULL },
		{ "CUR", PCOL_CUR, 0, NULL, NULL },
		{ "INPUT", PCOL_INPUT, 1, NULL, canon_price },
		{ "CACHED", PCOL_CACHED, 1, NULL, canon_price },
		{ "CACHE_WRITE", PCOL_CACHE_WRITE, 1, NULL, canon_price },
		{ "OUTPUT", PCOL_OUTPUT, 1, NULL, canon_price },
		{ "FROM", PCOL_FROM, 0, NULL, NULL },
		{ "UNTIL", PCOL_UNTIL, 0, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL },
	},
	(const struct ctl_member[]){
		{ "id", PCOL_ID, CTL_INT, NULL },
		{ "provider", PCOL_PROVIDER, CTL_STR, NULL },
		{ "model", PCOL_MODEL, CTL_STR, NULL },
		{ "tenant", PCOL_TENANT, CTL_STR, NULL },
		{ "currency", PCOL_CUR, CTL_STR, NULL },
		{ "input", PCOL_INPUT, CTL_STR, canon_price },
		{ "cached_input", PCOL_CACHED, CTL_STR, canon_price },
		{ "cache_write", PCOL_CACHE_WRITE, CTL_STR, canon_price },
		{ "output", PCOL_OUTPUT, CTL_STR, canon_price },
		{ "effective_from", PCOL_FROM, CTL_STR, NULL },
		{ "effective_until", PCOL_UNTIL, CTL_STR, NULL },
		{ "source", PCOL_SOURCE, CTL_STR, NULL },
		{ "created_at", PCOL_CREATED, CTL_STR, NULL },
		{ NULL, 0, 0, NULL },
	},
};

/* Parses a price option into canonical text; 0, or -1 after reporting. */
static int
parse_price_opt(const char *opt, const char *arg, char *buf, size_t size)
{
	const char *cause;
	int64_t nanos;

	if (arg == NULL) {
		buf[0] = '\0';
		return 0;
	}
	if (price_parse(arg, &nanos, &cause) < 0) {
		ctl_err("invalid %s '%s': %s", opt, arg, cause);
		return -1;
	}
	price_format(nanos, buf, size);
	return 0;
}

/* tollctl price set ... */
static int
price_set(struct ctl *ctl, const struct ctl_args *a)
{
	const char *provider = ctl_arg(a, "provider");
	const char *model = ctl_arg(a, "model");
	const char *input = ctl_arg(a, "input");
	const char *output = ctl_arg(a, "output");
	const char *cached = ctl_arg(a, "cached");
	const char *cache_write = ctl_arg(a, "cache-write");
	const char *currency = ctl_arg(a, "currency");
	const char *from = ctl_arg(a, "from");
	const char *tenant = ctl_arg(a, "tenant");
	const char *source = ctl_arg(a, "source"), *params[10];
	char in_s[32], out_s[32], cached_s[32], cw_s[32];
	char id[24];
	struct ctl_tenant_time tt;
	PGresult *res;
	int rc = CTL_EXIT_FAIL;

	if (ctl_blank(provider) || ctl_blank(model) || ctl_blank(tenant)) {
		ctl_err("price set: --provider, --model and --tenant cannot be empty");
		return CTL_EXIT_USAGE;
	}
	if (parse_price_opt("--input", input, in_s, sizeof(in_s)) < 0 ||
	    parse_price_opt("--output", output, out_s, sizeof(out_s)) < 0 ||
	    parse_price_opt("--cached", cached, cached_s, sizeof(cached_s)) <
		    0 ||
	    parse_price_opt("--cache-write", cache_write, cw_s, sizeof(cw_s)) <
		    0)
		return CTL_EXIT_USAGE;
	if (!ctl_valid_currency(currency)) {
		ctl_err("invalid --currency '%s': three capital letters, e.g. USD",
			currency);
		return CTL_EXIT_USAGE;
	}
	if (ctl_check_time("--from", from) < 0)
		return CTL_EXIT_USAGE;
	if (source != NULL && *source == '\0')
		source = NULL;
	if (ctl_connect(ctl) < 0 || ctl_tenant_time(ctl, tenant, from, &tt) < 0)
		return CTL_EXIT_FAIL;
	params[0] = provider;
	params[1] = model;
	params[2] = tt.tenant_id;
	params[3] = currency;
	params[4] = in_s;
	params[5] = cached != NULL ? cached_s : NULL;
	params[6] = cache_write != NULL ? cw_s : NULL;
	params[7] = out_s;
	params[8] = tt.time;
	params[9] = source;
	res = ctl_query_raw(
		ctl,
		"INSERT INTO prices (provider, model, tenant_id, currency,"
		" input, cached_input, cache_write, output, effective_from,"
		" source) VALUES ($1, $2, $3::bigint, $4, $5::numeric,"
		" $6::numeric, $7::numeric, $8::numeric, $9::timestamptz, $10)"
		" RETURNING id",
		10, params);
	if (!ctl_result_ok(res)) {
		if (strcmp(ctl_sqlstate(res), "23505") == 0)
			ctl_err("price set: %s %s%s%s in %s from %s already has a price; a price cannot be changed, set a new one with a later --from",
				provider, model,
				tenant != NULL ? " for tenant " : "",
				tenant != NULL ? tenant : "", currency, from);
		else
			ctl_err("price set: %s", ctl_pg_message(res));
		PQclear(res);
		return CTL_EXIT_FAIL;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	memset(params, 0, sizeof(params));
	params[4] = id;
	res = ctl_query(ctl, "price set", PRICE_SELECT, 5, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	rc = ctl_print_rows(ctl, res, &price_view);
	PQclear(res);
	return rc;
}

/* tollctl price list [--provider P] [--model M] [--tenant T] [--at TIME] */
static int
price_list(struct ctl *ctl, const struct ctl_args *a)
{
	const char *tenant = ctl_arg(a, "tenant"), *at = ctl_arg(a, "at");
	const char *params[5] = { ctl_arg(a, "provider"), ctl_arg(a, "model") };
	struct ctl_tenant_time tt;

	if (at != NULL && ctl_check_time("--at", at) < 0)
		return CTL_EXIT_USAGE;
	if (ctl_connect(ctl) < 0 || ctl_tenant_time(ctl, tenant, at, &tt) < 0)
		return CTL_EXIT_FAIL;
	params[2] = tt.tenant_id;
	params[3] = tt.time;
	return ctl_list(ctl, "price list", PRICE_SELECT, 5, params,
			&price_view);
}

/* "YYYY-MM" to the first day "YYYY-MM-01" in buf. */
static void
month_start(const char *month, char *buf, size_t size)
{
	snprintf(buf, size, "%s-01", month);
}

/* tollctl fx set --month YYYY-MM BASE QUOTE RATE */
static int
fx_set(struct ctl *ctl, const struct ctl_args *a)
{
	const char *month = ctl_arg(a, "month");
	const char *base = a->argv[0], *quote = a->argv[1], *params[4];
	const char *cause = "must be above zero";
	const char *previous = NULL;
	char first[16], rate[32], prev[64];
	int64_t nanos = 0;
	PGresult *res;
	cJSON *o;
	int c;

	if (!ctl_valid_month(month)) {
		ctl_err("invalid --month '%s': expected YYYY-MM", month);
		return CTL_EXIT_USAGE;
	}
	if (!ctl_valid_currency(base) || !ctl_valid_currency(quote)) {
		ctl_err("fx set: invalid currency '%s': three capital letters, e.g. USD",
			ctl_valid_currency(base) ? quote : base);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(base, quote) == 0) {
		ctl_err("fx set: base and quote are both %s", base);
		return CTL_EXIT_USAGE;
	}
	if (price_parse(a->argv[2], &nanos, &cause) < 0 || nanos == 0) {
		ctl_err("invalid rate '%s': %s", a->argv[2], cause);
		return CTL_EXIT_USAGE;
	}
	price_format(nanos, rate, sizeof(rate));
	month_start(month, first, sizeof(first));
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	params[0] = first;
	params[1] = base;
	params[2] = quote;
	params[3] = rate;
	/* No row comes back when the rate was already this one. */
	res = ctl_query(
		ctl, "fx set",
		"WITH old AS (SELECT rate FROM fx_rates WHERE month = $1::date"
		" AND base = $2 AND quote = $3) "
		"INSERT INTO fx_rates (month, base, quote, rate)"
		" VALUES ($1::date, $2, $3, $4::numeric)"
		" ON CONFLICT (month, base, quote) DO UPDATE"
		" SET rate = EXCLUDED.rate, set_at = now()"
		" WHERE fx_rates.rate <> EXCLUDED.rate"
		" RETURNING (SELECT rate::text FROM old)",
		4, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	if (PQntuples(res) > 0 && ctl_val(res, 0, 0) != NULL) {
		snprintf(prev, sizeof(prev), "%s", PQgetvalue(res, 0, 0));
		previous = prev;
	}
	c = PQntuples(res);
	PQclear(res);
	if (!ctl->json) {
		printf("%s: 1 %s = %s %s (%s%s)\n", month, base, rate, quote,
		       c == 0             ? "unchanged"
		       : previous != NULL ? "replaced "
					  : "new",
		       previous != NULL ? previous : "");
		return 0;
	}
	if ((o = cJSON_CreateObject()) == NULL)
		return ctl_json_print(NULL);
	ctl_json_str(o, "month", month);
	ctl_json_str(o, "base", base);
	ctl_json_str(o, "quote", quote);
	ctl_json_str(o, "rate", rate);
	ctl_json_str(o, "previous", c == 0 ? rate : previous);
	cJSON_AddBoolToObject(o, "changed", c > 0);
	return ctl_json_print(o);
}

/* Exchange rates as a table or JSON. */
static const struct ctl_view fx_view = {
	(const struct ctl_cell[]){
		{ "MONTH", 0, 0, NULL, NULL },
		{ "BASE", 1, 0, NULL, NULL },
		{ "QUOTE", 2, 0, NULL, NULL },
		{ "RATE", 3, 1, NULL, NULL },
		{ "SET_AT", 4, 0, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL },
	},
	(const struct ctl_member[]){
		{ "month", 0, CTL_STR, NULL },
		{ "base", 1, CTL_STR, NULL },
		{ "quote", 2, CTL_STR, NULL },
		{ "rate", 3, CTL_STR, NULL },
		{ "set_at", 4, CTL_STR, NULL },
		{ NULL, 0, 0, NULL },
	},
};

/* tollctl fx list [--month YYYY-MM] */
static int
fx_list(struct ctl *ctl, const struct ctl_args *a)
{
	const char *month = ctl_arg(a, "month"), *params[1] = { NULL };
	char first[16];

	if (month != NULL && !ctl_valid_month(month)) {
		ctl_err("invalid --month '%s': expected YYYY-MM", month);
		return CTL_EXIT_USAGE;
	}
	if (month != NULL) {
		month_start(month, first, sizeof(first));
		params[0] = first;
	}
	/* clang-format off */
	return ctl_list(ctl, "fx list",
		"SELECT to_char(month, 'YYYY-MM'), base, quote, rate::text, "
		CTL_TS("set_at") " FROM fx_rates"
		" WHERE $1::date IS NULL OR month = $1::date"
		" ORDER BY month, base, quote", 1, params, &fx_view);
	/* clang-format on */
}

const struct ctl_cmd ctl_price_set_cmd = {
	.family = "price",
	.name = "set",
	.usage = price_usage,
	.opts = "provider! model! input! output! cached= cache-write= "
		"currency! from! tenant= source=",
	.run = price_set,
};

const struct ctl_cmd ctl_price_list_cmd = {
	.family = "price",
	.name = "list",
	.usage = price_usage,
	.opts = "provider= model= tenant= at=",
	.run = price_list,
};

const struct ctl_cmd ctl_fx_set_cmd = {
	.family = "fx",
	.name = "set",
	.usage = fx_usage,
	.opts = "month!",
	.min_args = 3,
	.max_args = 3,
	.arg_error = "expected BASE QUOTE RATE (e.g. USD CNY 7.12)",
	.run = fx_set,
};

const struct ctl_cmd ctl_fx_list_cmd = {
	.family = "fx",
	.name = "list",
	.usage = fx_usage,
	.opts = "month=",
	.run = fx_list,
};
