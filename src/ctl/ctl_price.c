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
	"usage: tollctl price set --provider P --model M --input X "
	"--output Y\n"
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

enum { PCOL_ID, PCOL_PROVIDER, PCOL_MODEL, PCOL_TENANT, PCOL_CUR,
       PCOL_INPUT, PCOL_CACHED, PCOL_CACHE_WRITE, PCOL_OUTPUT, PCOL_FROM,
       PCOL_UNTIL, PCOL_SOURCE, PCOL_CREATED };

/* A stored price as canonical decimal text ("5.0" -> "5") in buf, or
 * NULL for SQL NULL. */
static const char *canon_price(const char *v, char *buf, size_t size)
{
	const char *cause;
	int64_t nanos;

	if (v == NULL)
		return NULL;
	if (price_parse(v, &nanos, &cause) < 0)
		return v;
	price_format(nanos, buf, size);
	return buf;
}

/* A price row as a JSON object; prices are decimal strings. */
static cJSON *price_json(const PGresult *res, int row)
{
	static const char *const names[4] = {
		"input", "cached_input", "cache_write", "output",
	};
	cJSON *o = cJSON_CreateObject();
	char buf[32];
	int i;

	if (o == NULL)
		return NULL;
	ctl_json_int(o, "id", ctl_val(res, row, PCOL_ID));
	ctl_json_str(o, "provider", ctl_val(res, row, PCOL_PROVIDER));
	ctl_json_str(o, "model", ctl_val(res, row, PCOL_MODEL));
	ctl_json_str(o, "tenant", ctl_val(res, row, PCOL_TENANT));
	ctl_json_str(o, "currency", ctl_val(res, row, PCOL_CUR));
	for (i = 0; i < 4; i++)
		ctl_json_str(o, names[i],
			     canon_price(ctl_val(res, row, PCOL_INPUT + i),
					 buf, sizeof(buf)));
	ctl_json_str(o, "effective_from", ctl_val(res, row, PCOL_FROM));
	ctl_json_str(o, "effective_until", ctl_val(res, row, PCOL_UNTIL));
	ctl_json_str(o, "source", ctl_val(res, row, PCOL_SOURCE));
	ctl_json_str(o, "created_at", ctl_val(res, row, PCOL_CREATED));
	return o;
}

/* Prints price rows as a table or a JSON array. */
static int print_prices(struct ctl *ctl, const PGresult *res)
{
	static const char *const head[] = {
		"ID", "PROVIDER", "MODEL", "TENANT", "CUR", "INPUT", "CACHED",
		"CACHE_WRITE", "OUTPUT", "FROM", "UNTIL",
	};
	struct ctl_table *t;
	char bufs[4][32];
	cJSON *arr;
	int i, k;

	if (ctl->json) {
		arr = cJSON_CreateArray();
		for (i = 0; arr != NULL && i < PQntuples(res); i++)
			cJSON_AddItemToArray(arr, price_json(res, i));
		return ctl_json_print(arr);
	}
	if ((t = ctl_table_new(11, head, "05678")) == NULL)
		goto oom;
	for (i = 0; i < PQntuples(res); i++) {
		const char *row[11];

		for (k = 0; k < 11; k++)
			row[k] = ctl_val(res, i, k);
		for (k = 0; k < 4; k++)
			row[PCOL_INPUT + k] = canon_price(row[PCOL_INPUT + k],
							  bufs[k],
							  sizeof(bufs[k]));
		if (ctl_table_add(t, row) < 0)
			goto oom;
	}
	ctl_table_print(t);
	ctl_table_free(t);
	return 0;
oom:
	ctl_table_free(t);
	ctl_err("out of memory");
	return CTL_EXIT_FAIL;
}

/* Parses a price option into canonical text; 0, or -1 after reporting. */
static int parse_price_opt(const char *opt, const char *arg, char *buf,
			   size_t size)
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

/* Whether s is given but empty or only blanks. */
static int blank(const char *s)
{
	return s != NULL && strspn(s, " \t") == strlen(s);
}

/* tollctl price set ... */
static int price_set(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "provider", required_argument, NULL, 'P' },
		{ "model", required_argument, NULL, 'm' },
		{ "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "cached", required_argument, NULL, 'k' },
		{ "cache-write", required_argument, NULL, 'w' },
		{ "currency", required_argument, NULL, 'C' },
		{ "from", required_argument, NULL, 'f' },
		{ "tenant", required_argument, NULL, 't' },
		{ "source", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *provider = NULL, *model = NULL, *input = NULL;
	const char *output = NULL, *cached = NULL, *cache_write = NULL;
	const char *currency = NULL, *from = NULL, *tenant = NULL;
	const char *source = NULL, *params[10], *missing = NULL;
	char in_s[32], out_s[32], cached_s[32], cw_s[32];
	char tenant_id[24], id[24], tz[64] = "UTC";
	struct ctl_time when;
	int64_t tid;
	PGresult *res;
	int c, rc = CTL_EXIT_FAIL;

	while ((c = ctl_getopt(ctl, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'P':
			provider = optarg;
			break;
		case 'm':
			model = optarg;
			break;
		case 'i':
			input = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'k':
			cached = optarg;
			break;
		case 'w':
			cache_write = optarg;
			break;
		case 'C':
			currency = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 't':
			tenant = optarg;
			break;
		case 's':
			source = optarg;
			break;
		case 'h':
			return ctl_help(price_usage);
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		ctl_err("price set: unexpected argument '%s'", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (provider == NULL)
		missing = "--provider";
	else if (model == NULL)
		missing = "--model";
	else if (input == NULL)
		missing = "--input";
	else if (output == NULL)
		missing = "--output";
	else if (currency == NULL)
		missing = "--currency";
	else if (from == NULL)
		missing = "--from";
	if (missing != NULL) {
		ctl_err("price set: %s is required", missing);
		return CTL_EXIT_USAGE;
	}
	if (blank(provider) || blank(model) || blank(tenant)) {
		ctl_err("price set: --provider, --model and --tenant cannot "
			"be empty");
		return CTL_EXIT_USAGE;
	}
	if (parse_price_opt("--input", input, in_s, sizeof(in_s)) < 0 ||
	    parse_price_opt("--output", output, out_s, sizeof(out_s)) < 0 ||
	    parse_price_opt("--cached", cached, cached_s,
			    sizeof(cached_s)) < 0 ||
	    parse_price_opt("--cache-write", cache_write, cw_s,
			    sizeof(cw_s)) < 0)
		return CTL_EXIT_USAGE;
	if (!ctl_valid_currency(currency)) {
		ctl_err("invalid --currency '%s': three capital letters, "
			"e.g. USD", currency);
		return CTL_EXIT_USAGE;
	}
	if (ctl_check_time("--from", from) < 0)
		return CTL_EXIT_USAGE;
	if (source != NULL && *source == '\0')
		source = NULL;
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	if (tenant != NULL) {
		if (ctl_tenant_lookup(ctl, tenant, &tid, tz, sizeof(tz)) < 0)
			return CTL_EXIT_FAIL;
		snprintf(tenant_id, sizeof(tenant_id), "%lld",
			 (long long)tid);
	}
	if (ctl_resolve_time(ctl, from, tz, &when) < 0)
		return CTL_EXIT_FAIL;
	params[0] = provider;
	params[1] = model;
	params[2] = tenant != NULL ? tenant_id : NULL;
	params[3] = currency;
	params[4] = in_s;
	params[5] = cached != NULL ? cached_s : NULL;
	params[6] = cache_write != NULL ? cw_s : NULL;
	params[7] = out_s;
	params[8] = when.text;
	params[9] = source;
	res = ctl_query_raw(ctl,
		"INSERT INTO prices (provider, model, tenant_id, currency,"
		" input, cached_input, cache_write, output, effective_from,"
		" source) VALUES ($1, $2, $3::bigint, $4, $5::numeric,"
		" $6::numeric, $7::numeric, $8::numeric, $9::timestamptz, $10)"
		" RETURNING id", 10, params);
	if (!ctl_result_ok(res)) {
		if (strcmp(ctl_sqlstate(res), "23505") == 0)
			ctl_err("price set: %s %s%s%s in %s from %s already "
				"has a price; a price cannot be changed, set "
				"a new one with a later --from", provider,
				model, tenant != NULL ? " for tenant " : "",
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
	rc = print_prices(ctl, res);
	PQclear(res);
	return rc;
}

/* tollctl price list [--provider P] [--model M] [--tenant T] [--at TIME] */
static int price_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "provider", required_argument, NULL, 'P' },
		{ "model", required_argument, NULL, 'm' },
		{ "tenant", required_argument, NULL, 't' },
		{ "at", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *at = NULL, *params[5] = { NULL };
	char tenant_id[24], tz[64] = "UTC";
	struct ctl_time when;
	int64_t tid;
	PGresult *res;
	int c, rc;

	while ((c = ctl_getopt(ctl, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'P':
			params[0] = optarg;
			break;
		case 'm':
			params[1] = optarg;
			break;
		case 't':
			tenant = optarg;
			break;
		case 'a':
			at = optarg;
			break;
		case 'h':
			return ctl_help(price_usage);
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		ctl_err("price list: unexpected argument '%s'", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (at != NULL && ctl_check_time("--at", at) < 0)
		return CTL_EXIT_USAGE;
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	if (tenant != NULL) {
		if (ctl_tenant_lookup(ctl, tenant, &tid, tz, sizeof(tz)) < 0)
			return CTL_EXIT_FAIL;
		snprintf(tenant_id, sizeof(tenant_id), "%lld",
			 (long long)tid);
		params[2] = tenant_id;
	}
	if (at != NULL) {
		if (ctl_resolve_time(ctl, at, tz, &when) < 0)
			return CTL_EXIT_FAIL;
		params[3] = when.text;
	}
	res = ctl_query(ctl, "price list", PRICE_SELECT, 5, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	rc = print_prices(ctl, res);
	PQclear(res);
	return rc;
}

/* tollctl price VERB ... */
int ctl_price_main(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_verb verbs[] = {
		{ "set", price_set },
		{ "list", price_list },
		{ NULL, NULL }
	};

	return ctl_dispatch(ctl, "price", verbs, price_usage, argc, argv);
}

/* "YYYY-MM" to the first day "YYYY-MM-01" in buf. */
static void month_start(const char *month, char *buf, size_t size)
{
	snprintf(buf, size, "%s-01", month);
}

/* tollctl fx set --month YYYY-MM BASE QUOTE RATE */
static int fx_set(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "month", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *month = NULL, *base, *quote, *params[4];
	const char *cause = "must be above zero";
	const char *previous = NULL;
	char first[16], rate[32], prev[64];
	int64_t nanos = 0;
	PGresult *res;
	cJSON *o;
	int c;

	while ((c = ctl_getopt(ctl, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'm':
			month = optarg;
			break;
		case 'h':
			return ctl_help(fx_usage);
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (argc - optind != 3) {
		ctl_err("fx set: expected BASE QUOTE RATE (e.g. USD CNY 7.12)");
		return CTL_EXIT_USAGE;
	}
	base = argv[optind];
	quote = argv[optind + 1];
	if (month == NULL) {
		ctl_err("fx set: --month is required");
		return CTL_EXIT_USAGE;
	}
	if (!ctl_valid_month(month)) {
		ctl_err("invalid --month '%s': expected YYYY-MM", month);
		return CTL_EXIT_USAGE;
	}
	if (!ctl_valid_currency(base) || !ctl_valid_currency(quote)) {
		ctl_err("fx set: invalid currency '%s': three capital "
			"letters, e.g. USD",
			ctl_valid_currency(base) ? quote : base);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(base, quote) == 0) {
		ctl_err("fx set: base and quote are both %s", base);
		return CTL_EXIT_USAGE;
	}
	if (price_parse(argv[optind + 2], &nanos, &cause) < 0 || nanos == 0) {
		ctl_err("invalid rate '%s': %s", argv[optind + 2], cause);
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
	res = ctl_query(ctl, "fx set",
		"WITH old AS (SELECT rate FROM fx_rates WHERE month = $1::date"
		" AND base = $2 AND quote = $3) "
		"INSERT INTO fx_rates (month, base, quote, rate)"
		" VALUES ($1::date, $2, $3, $4::numeric)"
		" ON CONFLICT (month, base, quote) DO UPDATE"
		" SET rate = EXCLUDED.rate, set_at = now()"
		" WHERE fx_rates.rate <> EXCLUDED.rate"
		" RETURNING (SELECT rate::text FROM old)", 4, params);
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
		       c == 0 ? "unchanged" : previous != NULL ?
		       "replaced " : "new", previous != NULL ? previous : "");
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

/* tollctl fx list [--month YYYY-MM] */
static int fx_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "month", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const head[] = {
		"MONTH", "BASE", "QUOTE", "RATE", "SET_AT",
	};
	static const char *const names[] = {
		"month", "base", "quote", "rate", "set_at",
	};
	const char *month = NULL, *params[1] = { NULL };
	struct ctl_table *t = NULL;
	char first[16];
	PGresult *res;
	cJSON *arr, *o;
	int c, i, k, rc = CTL_EXIT_FAIL;

	while ((c = ctl_getopt(ctl, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'm':
			month = optarg;
			break;
		case 'h':
			return ctl_help(fx_usage);
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		ctl_err("fx list: unexpected argument '%s'", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (month != NULL && !ctl_valid_month(month)) {
		ctl_err("invalid --month '%s': expected YYYY-MM", month);
		return CTL_EXIT_USAGE;
	}
	if (month != NULL) {
		month_start(month, first, sizeof(first));
		params[0] = first;
	}
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	res = ctl_query(ctl, "fx list",
		"SELECT to_char(month, 'YYYY-MM'), base, quote, rate::text, "
		CTL_TS("set_at") " FROM fx_rates"
		" WHERE $1::date IS NULL OR month = $1::date"
		" ORDER BY month, base, quote", 1, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		arr = cJSON_CreateArray();
		for (i = 0; arr != NULL && i < PQntuples(res); i++) {
			if ((o = cJSON_CreateObject()) == NULL)
				break;
			for (k = 0; k < 5; k++)
				ctl_json_str(o, names[k], ctl_val(res, i, k));
			cJSON_AddItemToArray(arr, o);
		}
		rc = ctl_json_print(arr);
		goto out;
	}
	if ((t = ctl_table_new(5, head, "3")) == NULL)
		goto oom;
	for (i = 0; i < PQntuples(res); i++) {
		const char *row[5];

		for (k = 0; k < 5; k++)
			row[k] = ctl_val(res, i, k);
		if (ctl_table_add(t, row) < 0)
			goto oom;
	}
	ctl_table_print(t);
	rc = 0;
	goto out;
oom:
	ctl_err("out of memory");
out:
	ctl_table_free(t);
	PQclear(res);
	return rc;
}

/* tollctl fx VERB ... */
int ctl_fx_main(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_verb verbs[] = {
		{ "set", fx_set },
		{ "list", fx_list },
		{ NULL, NULL }
	};

	return ctl_dispatch(ctl, "fx", verbs, fx_usage, argc, argv);
}
