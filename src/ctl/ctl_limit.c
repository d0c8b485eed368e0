/*
 * ctl_limit.c - tollctl quota set | list | clear and limit set | list |
 * clear.
 *
 * A quota is one row per scope: tenant, optionally one of its keys,
 * optionally a model pattern, and a period (see sql/005_limits.sql). Setting
 * a quota for a scope that has one replaces its limits in one statement
 * (INSERT ... ON CONFLICT on the NULLS NOT DISTINCT unique constraint), and
 * the output names the limits it replaced. A rate limit is one row per
 * tenant or key and is likewise replaced as a whole: kinds not given
 * become NULL (no limit of that kind), never the old value.
 *
 * Token counts and rates are exact integers from ctl_parse_count() to
 * PostgreSQL and back; a spend limit is a decimal checked here and sent as
 * canonical text, with no more decimals than the tenant's currency has
 * (tollgate_minor_digits()). Running gateways reload both tables through
 * the triggers of the migration.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "keyhash.h"

/* Shortest key prefix accepted as --key (as key revoke accepts). */
#define KEY_MIN_PREFIX 4

/* Longest numeric id accepted (fits a bigint). */
#define ID_MAX_DIGITS 18

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

/* Where a quota or rate limit applies: a tenant, maybe one of its keys. */
struct scope {
	const char *tenant;     /* name, borrowed from argv */
	char tenant_id[24];
	char key_id[24];        /* "" for the whole tenant */
	char prefix[24];        /* the key's prefix, "" for the tenant */
};

/* Quota columns in QC_* order, over an alias q of a quotas row set. */
#define QUOTA_COLS \
	"q.id, t.name, q.key_id, k.prefix, q.model_pattern, q.period," \
	" q.token_limit, round(q.spend_limit," \
	" tollgate_minor_digits(t.currency))::text, t.currency, q.hard, " \
	CTL_TS("q.created_at") ", " CTL_TS("q.updated_at")

/* The joins QUOTA_COLS and LIMIT_COLS need, over the row set src. */
#define SCOPE_FROM(src, alias) \
	" FROM " src " " alias " JOIN tenants t ON t.id = " alias \
	".tenant_id LEFT JOIN api_keys k ON k.id = " alias ".key_id"

enum { QC_ID, QC_TENANT, QC_KEY_ID, QC_KEY, QC_MODEL, QC_PERIOD,
       QC_TOKENS, QC_SPEND, QC_CUR, QC_HARD, QC_CREATED, QC_UPDATED,
       QC__COUNT };

/* The quota of $1 tenant id, $2 key id, $3 model pattern, $4 period. */
#define QUOTA_SCOPE \
	"tenant_id = $1::bigint AND key_id IS NOT DISTINCT FROM $2::bigint" \
	" AND model_pattern IS NOT DISTINCT FROM $3::text AND period = $4"

/* Rate limit columns in LC_* order, over an alias l. */
#define LIMIT_COLS \
	"l.id, t.name, l.key_id, k.prefix, l.rpm, l.tpm, l.concurrency, " \
	CTL_TS("l.created_at") ", " CTL_TS("l.updated_at")

enum { LC_ID, LC_TENANT, LC_KEY_ID, LC_KEY, LC_RPM, LC_TPM, LC_CONC,
       LC_CREATED, LC_UPDATED, LC__COUNT };

/* The rate limits of $1 tenant id and $2 key id. */
#define LIMIT_SCOPE \
	"tenant_id = $1::bigint AND key_id IS NOT DISTINCT FROM $2::bigint"

/* Whether period is one of the quota periods. */
static int valid_period(const char *period)
{
	static const char *const periods[] = {
		"day", "week", "month", "total",
	};
	size_t i;

	for (i = 0; i < sizeof(periods) / sizeof(periods[0]); i++)
		if (strcmp(period, periods[i]) == 0)
			return 1;
	return 0;
}

/* Whether s is given but empty or only blanks. */
static int blank(const char *s)
{
	return s != NULL && strspn(s, " \t") == strlen(s);
}

/* Whether s is a numeric id that fits a bigint. */
static int valid_id(const char *s)
{
	return ctl_is_digits(s) && strlen(s) <= ID_MAX_DIGITS;
}

/* Checks the syntax of --key: an id, a well-formed key or a prefix of at
 * least KEY_MIN_PREFIX characters. 0, or -1 after reporting. */
static int check_key_arg(const char *key)
{
	if (key == NULL || valid_id(key) ||
	    keyhash_well_formed(key, strlen(key)) ||
	    (strlen(key) >= KEY_MIN_PREFIX && strspn(key, " \t") == 0))
		return 0;
	ctl_err("invalid --key '%s': a key id, a key prefix (at least %d "
		"characters) or a key", key, KEY_MIN_PREFIX);
	return -1;
}

/* Parses a positive count option with ctl_parse_count(), at most max, into
 * decimal text in buf. 0, or -1 after reporting. */
static int parse_positive(const char *opt, const char *arg, int64_t max,
			  char *buf, size_t size)
{
	const char *cause;
	int64_t n;

	if (ctl_parse_count(arg, &n, &cause) < 0) {
		ctl_err("invalid %s '%s': %s", opt, arg, cause);
		return -1;
	}
	if (n == 0) {
		ctl_err("invalid %s '%s': must be above zero", opt, arg);
		return -1;
	}
	if (n > max) {
		ctl_err("invalid %s '%s': at most %lld", opt, arg,
			(long long)max);
		return -1;
	}
	snprintf(buf, size, "%lld", (long long)n);
	return 0;
}

/* Parses a spend amount, a positive decimal with at most nine decimals,
 * into canonical text (no leading zeros, no trailing decimal zeros) in buf
 * and its count of decimals into *decimals. 0, or -1 with *cause set. */
static int parse_spend(const char *s, char *buf, size_t size, int *decimals,
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
	snprintf(buf, size, "%s%.*s%s%.*s", nwhole == 0 ? "0" : "",
		 (int)nwhole, whole, nfrac > 0 ? "." : "", (int)nfrac, frac);
	*decimals = (int)nfrac;
	return 0;
}

/* Finds key arg among the keys of the scope's tenant and fills in its id
 * and prefix. 0, or -1 after reporting: no such key, a key of another
 * tenant, or a prefix matching several keys of the tenant. */
static int find_key(struct ctl *ctl, const char *arg, struct scope *s)
{
	char hash[KEY_HASH_HEXLEN + 1], ids[128] = "", masked[24];
	const char *params[2] = { arg, s->tenant_id }, *secret, *where;
	const char *shown = arg;
	size_t len = 0;
	PGresult *res;
	char sql[512];
	int i, own = 0, rc = -1;

	if (valid_id(arg)) {
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
		 " WHERE %s ORDER BY 3 DESC, k.id", where);
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
		ctl_err("'%s' is ambiguous: it matches keys %s%s of tenant "
			"'%s'", arg, ids, i < own ? ", ..." : "", s->tenant);
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
static int find_scope(struct ctl *ctl, const char *tenant, const char *key,
		      struct scope *s)
{
	int64_t tid;

	memset(s, 0, sizeof(*s));
	s->tenant = tenant;
	if (ctl_tenant_lookup(ctl, tenant, &tid, NULL, 0) < 0)
		return -1;
	snprintf(s->tenant_id, sizeof(s->tenant_id), "%lld", (long long)tid);
	return key != NULL ? find_key(ctl, key, s) : 0;
}

/* The scope's key id as a query parameter: NULL for the whole tenant. */
static const char *key_param(const struct scope *s)
{
	return s->key_id[0] != '\0' ? s->key_id : NULL;
}

/* Looks up the tenant id's currency and its minor digits. 0, or -1 after
 * reporting. */
static int tenant_currency(struct ctl *ctl, const char *tenant_id,
			   char *cur, size_t size, int *minor)
{
	const char *params[1] = { tenant_id };
	PGresult *res;

	res = ctl_query(ctl, "tenant", "SELECT currency,"
			" tollgate_minor_digits(currency) FROM tenants"
			" WHERE id = $1::bigint", 1, params);
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

/* Appends printf-formatted text to the string in buf of size bytes. */
static void __attribute__((format(printf, 3, 4)))
append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* Describes a quota's scope: "tenant acme, key tg-AbCdEfG, model glm-*,
 * per month". */
static void quota_scope_text(const PGresult *res, int row, char *buf,
			     size_t size)
{
	const char *period = PQgetvalue(res, row, QC_PERIOD);

	buf[0] = '\0';
	append(buf, size, "tenant %s", PQgetvalue(res, row, QC_TENANT));
	if (ctl_val(res, row, QC_KEY) != NULL)
		append(buf, size, ", key %s", PQgetvalue(res, row, QC_KEY));
	if (ctl_val(res, row, QC_MODEL) != NULL)
		append(buf, size, ", model %s",
		       PQgetvalue(res, row, QC_MODEL));
	if (strcmp(period, "total") == 0)
		append(buf, size, ", in total");
	else
		append(buf, size, ", per %s", period);
}

/* Describes quota limits: "50000000 tokens, 2000.00 CNY, hard". */
static void quota_limits_text(const char *tokens, const char *spend,
			      const char *cur, const char *hard, char *buf,
			      size_t size)
{
	buf[0] = '\0';
	if (tokens != NULL)
		append(buf, size, "%s token%s, ", tokens,
		       strcmp(tokens, "1") == 0 ? "" : "s");
	if (spend != NULL)
		append(buf, size, "%s %s, ", spend, cur);
	append(buf, size, "%s", strcmp(hard, "t") == 0 ? "hard" : "soft");
}

/* A quota row as a JSON object; spend is a decimal string. */
static cJSON *quota_json(const PGresult *res, int row)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return NULL;
	ctl_json_int(o, "id", ctl_val(res, row, QC_ID));
	ctl_json_str(o, "tenant", ctl_val(res, row, QC_TENANT));
	ctl_json_int(o, "key_id", ctl_val(res, row, QC_KEY_ID));
	ctl_json_str(o, "key", ctl_val(res, row, QC_KEY));
	ctl_json_str(o, "model", ctl_val(res, row, QC_MODEL));
	ctl_json_str(o, "period", ctl_val(res, row, QC_PERIOD));
	ctl_json_int(o, "tokens", ctl_val(res, row, QC_TOKENS));
	ctl_json_str(o, "spend", ctl_val(res, row, QC_SPEND));
	ctl_json_str(o, "currency", ctl_val(res, row, QC_CUR));
	ctl_json_bool(o, "hard", ctl_val(res, row, QC_HARD));
	ctl_json_str(o, "created_at", ctl_val(res, row, QC_CREATED));
	ctl_json_str(o, "updated_at", ctl_val(res, row, QC_UPDATED));
	return o;
}

/* Reads the value of a --soft or --hard option into *hard; both given is
 * a usage error. 0, or -1 after reporting. */
static int set_hardness(int *hard, int value)
{
	if (*hard != -1 && *hard != value) {
		ctl_err("quota set: --soft and --hard exclude each other");
		return -1;
	}
	*hard = value;
	return 0;
}

/* Adds "replaced" (the row existed) to a set verb's JSON object, and
 * "previous": null when nothing was replaced. Returns the object to fill
 * with the replaced limits, or NULL when nothing was replaced or memory
 * ran out. */
static cJSON *
print_set_json(cJSON *o, const char *replaced)
{
	ctl_json_bool(o, "replaced", replaced);
	if (strcmp(replaced, "t") != 0) {
		cJSON_AddNullToObject(o, "previous");
		return NULL;
	}
	return cJSON_AddObjectToObject(o, "previous");
}

/* Prints what quota set did: the row, and the limits it replaced. */
static int print_quota_set(struct ctl *ctl, const PGresult *res)
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
	if ((o = quota_json(res, 0)) == NULL)
		return ctl_json_print(NULL);
	if ((prev = print_set_json(o, replaced)) != NULL) {
		ctl_json_int(prev, "tokens", ctl_val(res, 0, QC__COUNT + 1));
		ctl_json_str(prev, "spend", ctl_val(res, 0, QC__COUNT + 2));
		ctl_json_bool(prev, "hard", ctl_val(res, 0, QC__COUNT + 3));
	}
	return ctl_json_print(o);
}

/* tollctl quota set --tenant T [--key K] [--model P] --period P ... */
static int quota_set(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "key", required_argument, NULL, 'k' },
		{ "model", required_argument, NULL, 'm' },
		{ "period", required_argument, NULL, 'p' },
		{ "tokens", required_argument, NULL, 'T' },
		{ "spend", required_argument, NULL, 's' },
		{ "soft", no_argument, NULL, 'S' },
		{ "hard", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *key = NULL, *model = NULL;
	const char *period = NULL, *tokens = NULL, *spend = NULL;
	const char *params[7], *cause;
	char tokens_s[24], spend_s[48], cur[8];
	int c, hard = -1, decimals = 0, minor, rc;
	struct scope s;
	PGresult *res;

	while ((c = ctl_getopt(ctl, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 't':
			tenant = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'm':
			model = optarg;
			break;
		case 'p':
			period = optarg;
			break;
		case 'T':
			tokens = optarg;
			break;
		case 's':
			spend = optarg;
			break;
		case 'S':
		case 'H':
			if (set_hardness(&hard, c == 'H') < 0)
				return CTL_EXIT_USAGE;
			break;
		case 'h':
			return ctl_help(quota_usage);
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		ctl_err("quota set: unexpected argument '%s'", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (tenant == NULL || period == NULL) {
		ctl_err("quota set: %s is required",
			tenant == NULL ? "--tenant" : "--period");
		return CTL_EXIT_USAGE;
	}
	if (!valid_period(period)) {
		ctl_err("invalid --period '%s': day, week, month or total",
			period);
		return CTL_EXIT_USAGE;
	}
	if (blank(model)) {
		ctl_err("quota set: --model cannot be empty");
		return CTL_EXIT_USAGE;
	}
	if (check_key_arg(key) < 0)
		return CTL_EXIT_USAGE;
	if (tokens == NULL && spend == NULL) {
		ctl_err("quota set: give --tokens, --spend or both");
		return CTL_EXIT_USAGE;
	}
	if (tokens != NULL && parse_positive("--tokens", tokens, INT64_MAX,
					     tokens_s, sizeof(tokens_s)) < 0)
		return CTL_EXIT_USAGE;
	if (spend != NULL && parse_spend(spend, spend_s, sizeof(spend_s),
					 &decimals, &cause) < 0) {
		ctl_err("invalid --spend '%s': %s", spend, cause);
		return CTL_EXIT_USAGE;
	}
	if (ctl_connect(ctl) < 0 || find_scope(ctl, tenant, key, &s) < 0)
		return CTL_EXIT_FAIL;
	if (spend != NULL) {
		if (tenant_currency(ctl, s.tenant_id, cur, sizeof(cur),
				    &minor) < 0)
			return CTL_EXIT_FAIL;
		if (decimals > minor) {
			if (minor == 0)
				ctl_err("invalid --spend '%s': %s has no "
					"decimals", spend, cur);
			else
				ctl_err("invalid --spend '%s': at most %d "
					"decimals in %s", spend, minor, cur);
			return CTL_EXIT_USAGE;
		}
	}
	params[0] = s.tenant_id;
	params[1] = key_param(&s);
	params[2] = model;
	params[3] = period;
	params[4] = tokens != NULL ? tokens_s : NULL;
	params[5] = spend != NULL ? spend_s : NULL;
	params[6] = hard == 0 ? "f" : "t";
	/* One statement: old sees the row as it was before the upsert. */
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
	if (res == NULL)
		return CTL_EXIT_FAIL;
	rc = print_quota_set(ctl, res);
	PQclear(res);
	return rc;
}

/* Prints quota rows as a table or a JSON array. */
static int print_quotas(struct ctl *ctl, const PGresult *res)
{
	static const char *const head[] = {
		"ID", "TENANT", "KEY", "MODEL", "PERIOD", "TOKENS", "SPEND",
		"MODE", "USED", "RESERVED", "SPENT",
	};
	struct ctl_table *t;
	char spend[64], spent[64];
	cJSON *arr;
	int i;

	if (ctl->json) {
		arr = cJSON_CreateArray();
		for (i = 0; arr != NULL && i < PQntuples(res); i++) {
			cJSON *o = quota_json(res, i);
			/* This period so far (tokens; spend after promotions). */
			ctl_json_int(o, "used_tokens", ctl_val(res, i, QC__COUNT));
			ctl_json_int(o, "reserved_tokens",
				     ctl_val(res, i, QC__COUNT + 1));
			ctl_json_str(o, "spent", ctl_val(res, i, QC__COUNT + 2));
			cJSON_AddItemToArray(arr, o);
		}
		return ctl_json_print(arr);
	}
	if ((t = ctl_table_new(11, head, "05689:")) == NULL)
		goto oom;
	for (i = 0; i < PQntuples(res); i++) {
		const char *row[11] = {
			ctl_val(res, i, QC_ID), ctl_val(res, i, QC_TENANT),
			ctl_val(res, i, QC_KEY), ctl_val(res, i, QC_MODEL),
			ctl_val(res, i, QC_PERIOD), ctl_val(res, i, QC_TOKENS),
			NULL, strcmp(PQgetvalue(res, i, QC_HARD), "t") == 0 ?
			"hard" : "soft",
			ctl_val(res, i, QC__COUNT), ctl_val(res, i, QC__COUNT + 1),
			NULL,
		};

		if (ctl_val(res, i, QC_SPEND) != NULL) {
			snprintf(spend, sizeof(spend), "%s %s",
				 PQgetvalue(res, i, QC_SPEND),
				 PQgetvalue(res, i, QC_CUR));
			row[6] = spend;
			snprintf(spent, sizeof(spent), "%s %s",
				 PQgetvalue(res, i, QC__COUNT + 2),
				 PQgetvalue(res, i, QC_CUR));
			row[10] = spent;
		}
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

/* Reads "list [--tenant T]" of a family into *tenant. Returns -1 to go on,
 * else the exit status. */
static int list_args(struct ctl *ctl, int argc, char **argv,
		     const char *what, const char *usage, const char **tenant)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = ctl_getopt(ctl, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 't':
			*tenant = optarg;
			break;
		case 'h':
			return ctl_help(usage);
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		ctl_err("%s: unexpected argument '%s'", what, argv[optind]);
		return CTL_EXIT_USAGE;
	}
	return -1;
}

/* tollctl quota list [--tenant T] */
static int quota_list(struct ctl *ctl, int argc, char **argv)
{
	const char *tenant = NULL, *params[1] = { NULL };
	struct scope s;
	PGresult *res;
	int rc;

	rc = list_args(ctl, argc, argv, "quota list", quota_usage, &tenant);
	if (rc >= 0)
		return rc;
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	if (tenant != NULL) {
		if (find_scope(ctl, tenant, NULL, &s) < 0)
			return CTL_EXIT_FAIL;
		params[0] = s.tenant_id;
	}
	/* After the quota's own columns: this period's counter, which starts
	 * with the period's first request. */
	res = ctl_query(ctl, "quota list",
		"SELECT " QUOTA_COLS ", coalesce(qc.used_tokens, 0),"
		" coalesce(qc.reserved_tokens, 0),"
		" round(coalesce(qc.used_nanos, 0) / 1e9,"
		" tollgate_minor_digits(t.currency))::text"
		SCOPE_FROM("quotas", "q")
		" LEFT JOIN quota_counters qc ON qc.quota_id = q.id"
		" AND qc.period_start = tollgate_period_start(q.period, now(),"
		" t.tz)"
		" WHERE $1::bigint IS NULL OR q.tenant_id = $1::bigint"
		" ORDER BY t.name, q.key_id NULLS FIRST,"
		" q.model_pattern NULLS FIRST, array_position("
		"ARRAY['day', 'week', 'month', 'total'], q.period)",
		1, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	rc = print_quotas(ctl, res);
	PQclear(res);
	return rc;
}

/* tollctl quota clear ID | --tenant T [--key K] [--model P] --period P */
static int quota_clear(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "key", required_argument, NULL, 'k' },
		{ "model", required_argument, NULL, 'm' },
		{ "period", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *key = NULL, *model = NULL;
	const char *period = NULL, *id = NULL, *params[4];
	char scope_text[512], limits[160];
	struct scope s;
	PGresult *res;
	int c, rc = CTL_EXIT_FAIL;

	while ((c = ctl_getopt(ctl, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 't':
			tenant = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'm':
			model = optarg;
			break;
		case 'p':
			period = optarg;
			break;
		case 'h':
			return ctl_help(quota_usage);
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		id = argv[optind++];
	if (optind < argc) {
		ctl_err("quota clear: unexpected argument '%s'", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (id != NULL && (tenant != NULL || key != NULL || model != NULL ||
			   period != NULL)) {
		ctl_err("quota clear: give a quota ID or --tenant and "
			"--period, not both");
		return CTL_EXIT_USAGE;
	}
	if (id != NULL && !valid_id(id)) {
		ctl_err("quota clear: '%s' is not a quota id", id);
		return CTL_EXIT_USAGE;
	}
	if (id == NULL && (tenant == NULL || period == NULL)) {
		ctl_err("quota clear: give a quota ID, or --tenant and "
			"--period");
		return CTL_EXIT_USAGE;
	}
	if (period != NULL && !valid_period(period)) {
		ctl_err("invalid --period '%s': day, week, month or total",
			period);
		return CTL_EXIT_USAGE;
	}
	if (blank(model)) {
		ctl_err("quota clear: --model cannot be empty");
		return CTL_EXIT_USAGE;
	}
	if (check_key_arg(key) < 0)
		return CTL_EXIT_USAGE;
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	if (id != NULL) {
		params[0] = id;
		res = ctl_query(ctl, "quota clear",
			"WITH up AS (DELETE FROM quotas WHERE id = $1::bigint"
			" RETURNING *) SELECT " QUOTA_COLS
			SCOPE_FROM("up", "q"), 1, params);
	} else {
		if (find_scope(ctl, tenant, key, &s) < 0)
			return CTL_EXIT_FAIL;
		params[0] = s.tenant_id;
		params[1] = key_param(&s);
		params[2] = model;
		params[3] = period;
		res = ctl_query(ctl, "quota clear",
			"WITH up AS (DELETE FROM quotas WHERE " QUOTA_SCOPE
			" RETURNING *) SELECT " QUOTA_COLS
			SCOPE_FROM("up", "q"), 4, params);
	}
	if (res == NULL)
		return CTL_EXIT_FAIL;
	if (PQntuples(res) == 0) {
		if (id != NULL)
			ctl_err("no quota with id %s", id);
		else
			ctl_err("no %s quota for tenant '%s'%s%s%s%s%s",
				period, tenant, key != NULL ? ", key " : "",
				key != NULL ? s.prefix : "",
				model != NULL ? ", model '" : "",
				model != NULL ? model : "",
				model != NULL ? "'" : "");
		goto out;
	}
	if (ctl->json) {
		rc = ctl_json_print(quota_json(res, 0));
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

/* tollctl quota VERB ... */
int ctl_quota_main(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_verb verbs[] = {
		{ "set", quota_set },
		{ "list", quota_list },
		{ "clear", quota_clear },
		{ NULL, NULL }
	};

	return ctl_dispatch(ctl, "quota", verbs, quota_usage, argc, argv);
}

/* Describes a rate limit's scope: "tenant acme, key tg-AbCdEfG". */
static void limit_scope_text(const PGresult *res, int row, char *buf,
			     size_t size)
{
	buf[0] = '\0';
	append(buf, size, "tenant %s", PQgetvalue(res, row, LC_TENANT));
	if (ctl_val(res, row, LC_KEY) != NULL)
		append(buf, size, ", key %s", PQgetvalue(res, row, LC_KEY));
}

/* Describes rate limits from columns rpm, tpm and concurrency at col:
 * "600 rpm, 200000 tpm, 20 concurrent"; kinds without a limit are left
 * out. */
static void limit_values_text(const PGresult *res, int row, int col,
			      char *buf, size_t size)
{
	static const char *const units[3] = {
		"rpm", "tpm", "concurrent",
	};
	int i;

	buf[0] = '\0';
	for (i = 0; i < 3; i++)
		if (ctl_val(res, row, col + i) != NULL)
			append(buf, size, "%s%s %s", buf[0] != '\0' ? ", " : "",
			       PQgetvalue(res, row, col + i), units[i]);
}

/* A rate limit row as a JSON object. */
static cJSON *limit_json(const PGresult *res, int row)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return NULL;
	ctl_json_int(o, "id", ctl_val(res, row, LC_ID));
	ctl_json_str(o, "tenant", ctl_val(res, row, LC_TENANT));
	ctl_json_int(o, "key_id", ctl_val(res, row, LC_KEY_ID));
	ctl_json_str(o, "key", ctl_val(res, row, LC_KEY));
	ctl_json_int(o, "rpm", ctl_val(res, row, LC_RPM));
	ctl_json_int(o, "tpm", ctl_val(res, row, LC_TPM));
	ctl_json_int(o, "concurrency", ctl_val(res, row, LC_CONC));
	ctl_json_str(o, "created_at", ctl_val(res, row, LC_CREATED));
	ctl_json_str(o, "updated_at", ctl_val(res, row, LC_UPDATED));
	return o;
}

/* Prints what limit set did: the row, and the limits it replaced. */
static int print_limit_set(struct ctl *ctl, const PGresult *res)
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
	if ((o = limit_json(res, 0)) == NULL)
		return ctl_json_print(NULL);
	if ((prev = print_set_json(o, replaced)) != NULL) {
		ctl_json_int(prev, "rpm", ctl_val(res, 0, LC__COUNT + 1));
		ctl_json_int(prev, "tpm", ctl_val(res, 0, LC__COUNT + 2));
		ctl_json_int(prev, "concurrency",
			     ctl_val(res, 0, LC__COUNT + 3));
	}
	return ctl_json_print(o);
}

/* tollctl limit set --tenant T [--key K] [--rpm N] [--tpm N]
 * [--concurrency N] */
static int limit_set(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "key", required_argument, NULL, 'k' },
		{ "rpm", required_argument, NULL, 'r' },
		{ "tpm", required_argument, NULL, 'T' },
		{ "concurrency", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *key = NULL, *rpm = NULL, *tpm = NULL;
	const char *conc = NULL, *params[5];
	char rpm_s[24], tpm_s[24], conc_s[24];
	struct scope s;
	PGresult *res;
	int c, rc;

	while ((c = ctl_getopt(ctl, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 't':
			tenant = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'r':
			rpm = optarg;
			break;
		case 'T':
			tpm = optarg;
			break;
		case 'C':
			conc = optarg;
			break;
		case 'h':
			return ctl_help(limit_usage);
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		ctl_err("limit set: unexpected argument '%s'", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (tenant == NULL) {
		ctl_err("limit set: --tenant is required");
		return CTL_EXIT_USAGE;
	}
	if (check_key_arg(key) < 0)
		return CTL_EXIT_USAGE;
	if (rpm == NULL && tpm == NULL && conc == NULL) {
		ctl_err("limit set: give at least one of --rpm, --tpm and "
			"--concurrency");
		return CTL_EXIT_USAGE;
	}
	if ((rpm != NULL && parse_positive("--rpm", rpm, INT32_MAX, rpm_s,
					   sizeof(rpm_s)) < 0) ||
	    (tpm != NULL && parse_positive("--tpm", tpm, INT64_MAX, tpm_s,
					   sizeof(tpm_s)) < 0) ||
	    (conc != NULL && parse_positive("--concurrency", conc, INT32_MAX,
					    conc_s, sizeof(conc_s)) < 0))
		return CTL_EXIT_USAGE;
	if (ctl_connect(ctl) < 0 || find_scope(ctl, tenant, key, &s) < 0)
		return CTL_EXIT_FAIL;
	params[0] = s.tenant_id;
	params[1] = key_param(&s);
	params[2] = rpm != NULL ? rpm_s : NULL;
	params[3] = tpm != NULL ? tpm_s : NULL;
	params[4] = conc != NULL ? conc_s : NULL;
	/* One statement: old sees the row as it was before the upsert. */
	res = ctl_query(ctl, "limit set",
		"WITH old AS (SELECT rpm, tpm, concurrency FROM rate_limits"
		" WHERE " LIMIT_SCOPE "),"
		" up AS (INSERT INTO rate_limits (tenant_id, key_id, rpm, tpm,"
		" concurrency) VALUES ($1::bigint, $2::bigint, $3::integer,"
		" $4::bigint, $5::integer) ON CONFLICT (tenant_id, key_id)"
		" DO UPDATE SET rpm = EXCLUDED.rpm, tpm = EXCLUDED.tpm,"
		" concurrency = EXCLUDED.concurrency, updated_at = now()"
		" RETURNING *) "
		"SELECT " LIMIT_COLS ", EXISTS (SELECT FROM old),"
		" (SELECT rpm FROM old), (SELECT tpm FROM old),"
		" (SELECT concurrency FROM old)" SCOPE_FROM("up", "l"),
		5, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	rc = print_limit_set(ctl, res);
	PQclear(res);
	return rc;
}

/* Prints rate limit rows as a table or a JSON array. */
static int print_limits(struct ctl *ctl, const PGresult *res)
{
	static const char *const head[] = {
		"TENANT", "KEY", "RPM", "TPM", "CONCURRENCY",
	};
	struct ctl_table *t;
	cJSON *arr;
	int i;

	if (ctl->json) {
		arr = cJSON_CreateArray();
		for (i = 0; arr != NULL && i < PQntuples(res); i++)
			cJSON_AddItemToArray(arr, limit_json(res, i));
		return ctl_json_print(arr);
	}
	if ((t = ctl_table_new(5, head, "234")) == NULL)
		goto oom;
	for (i = 0; i < PQntuples(res); i++) {
		const char *row[5] = {
			ctl_val(res, i, LC_TENANT), ctl_val(res, i, LC_KEY),
			ctl_val(res, i, LC_RPM), ctl_val(res, i, LC_TPM),
			ctl_val(res, i, LC_CONC),
		};

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

/* tollctl limit list [--tenant T] */
static int limit_list(struct ctl *ctl, int argc, char **argv)
{
	const char *tenant = NULL, *params[1] = { NULL };
	struct scope s;
	PGresult *res;
	int rc;

	rc = list_args(ctl, argc, argv, "limit list", limit_usage, &tenant);
	if (rc >= 0)
		return rc;
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	if (tenant != NULL) {
		if (find_scope(ctl, tenant, NULL, &s) < 0)
			return CTL_EXIT_FAIL;
		params[0] = s.tenant_id;
	}
	res = ctl_query(ctl, "limit list",
		"SELECT " LIMIT_COLS SCOPE_FROM("rate_limits", "l")
		" WHERE $1::bigint IS NULL OR l.tenant_id = $1::bigint"
		" ORDER BY t.name, l.key_id NULLS FIRST", 1, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	rc = print_limits(ctl, res);
	PQclear(res);
	return rc;
}

/* tollctl limit clear --tenant T [--key K] */
static int limit_clear(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "key", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tenant = NULL, *key = NULL, *params[2];
	char scope[256], was[160];
	struct scope s;
	PGresult *res;
	int c, rc = CTL_EXIT_FAIL;

	while ((c = ctl_getopt(ctl, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 't':
			tenant = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'h':
			return ctl_help(limit_usage);
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		ctl_err("limit clear: unexpected argument '%s'", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (tenant == NULL) {
		ctl_err("limit clear: --tenant is required");
		return CTL_EXIT_USAGE;
	}
	if (check_key_arg(key) < 0)
		return CTL_EXIT_USAGE;
	if (ctl_connect(ctl) < 0 || find_scope(ctl, tenant, key, &s) < 0)
		return CTL_EXIT_FAIL;
	params[0] = s.tenant_id;
	params[1] = key_param(&s);
	res = ctl_query(ctl, "limit clear",
		"WITH up AS (DELETE FROM rate_limits WHERE " LIMIT_SCOPE
		" RETURNING *) SELECT " LIMIT_COLS SCOPE_FROM("up", "l"),
		2, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	if (PQntuples(res) == 0) {
		ctl_err("no rate limits for tenant '%s'%s%s", tenant,
			key != NULL ? ", key " : "", s.prefix);
		goto out;
	}
	if (ctl->json) {
		rc = ctl_json_print(limit_json(res, 0));
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

/* tollctl limit VERB ... */
int ctl_limit_main(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_verb verbs[] = {
		{ "set", limit_set },
		{ "list", limit_list },
		{ "clear", limit_clear },
		{ NULL, NULL }
	};

	return ctl_dispatch(ctl, "limit", verbs, limit_usage, argc, argv);
}
