/*
 * ctl_usage.c - tollctl usage: a tenant's token totals for one month, and
 * usage import (ctl_import.c).
 *
 * The month runs from midnight on its first day to midnight on the next
 * month's first day, both in the tenant's time zone (tenants.tz). Every
 * recorded request counts, refused ones included (they carry no tokens).
 * Sums are read as decimal text and added as int64, never as doubles.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ledger.h"
#include "meter.h"

static const char usage_usage[] =
	"usage: tollctl usage --tenant T [--month YYYY-MM] "
	"[--by model|day|key]\n"
	"       tollctl usage import FILE|- [--dry-run]\n"
	"\n"
	"Requests and prompt, completion, cached and reasoning tokens of\n"
	"tenant T in the month (default: the current month in UTC), whose\n"
	"boundaries are midnight in the tenant's time zone. Grouped by the\n"
	"requested model (default), by day, or by key, with a total line.\n"
	"'tollctl usage import --help' describes import.\n";

#define NSUMS 5

static const char *const sum_names[NSUMS] = {
	"requests",      "prompt_tokens",    "completion_tokens",
	"cached_tokens", "reasoning_tokens",
};

static const char *const sum_heads[NSUMS] = {
	"REQUESTS", "PROMPT", "COMPLETION", "CACHED", "REASONING",
};

#define SUMS                                                                   \
	"count(*), coalesce(sum(u.prompt_tokens), 0),"                         \
	" coalesce(sum(u.completion_tokens), 0),"                              \
	" coalesce(sum(u.cached_tokens), 0),"                                  \
	" coalesce(sum(u.reasoning_tokens), 0) "

#define RANGE                                                                  \
	"WHERE u.tenant_id = $1 AND u.ts >= $2::timestamptz"                   \
	" AND u.ts < $3::timestamptz "

/* One way of grouping: the label columns and the query producing them
 * followed by the NSUMS sums. $1 tenant id, $2 and $3 the month's bounds,
 * $4 (when nparams is 4) the tenant's time zone. */
struct grouping {
	const char *by;
	int nlabels;
	const char *heads[3]; /* human column titles */
	const char *names[3]; /* JSON member names */
	int nparams;          /* 4 when the query needs the time zone */
	const char *sql;
};

static const struct grouping groupings[] = {
	{ "model",
	  1,
	  { "MODEL" },
	  { "model" },
	  3,
	  "SELECT u.requested_model, " SUMS "FROM usage_records u " RANGE
	  "GROUP BY 1 ORDER BY 1" },
	{ "day",
	  1,
	  { "DAY" },
	  { "day" },
	  4,
	  "SELECT to_char(u.ts AT TIME ZONE $4::text, 'YYYY-MM-DD'), " SUMS
	  "FROM usage_records u " RANGE "GROUP BY 1 ORDER BY 1" },
	{ "key",
	  3,
	  { "KEY", "PREFIX", "NAME" },
	  { "key_id", "prefix", "name" },
	  3,
	  "SELECT u.key_id, k.prefix, k.name, " SUMS
	  "FROM usage_records u LEFT JOIN api_keys k ON k.id = u.key_id " RANGE
	  "GROUP BY u.key_id, k.prefix, k.name ORDER BY u.key_id" },
};

/* Adds the sums of row to totals; -1 on a malformed or overflowing sum. */
static int
add_sums(const PGresult *res, int row, int first, int64_t *totals)
{
	int i;
	char *end;
	long long v;

	for (i = 0; i < NSUMS; i++) {
		v = strtoll(PQgetvalue(res, row, first + i), &end, 10);
		if (*end != '\0' ||
		    __builtin_add_overflow(totals[i], v, &totals[i]))
			return -1;
	}
	return 0;
}

/* Prints the grouped rows and the total as JSON. */
static int
print_json(const struct grouping *g, const PGresult *month, const PGresult *res,
	   const int64_t *totals)
{
	cJSON *root = cJSON_CreateObject(), *rows, *o;
	char num[24];
	int r, i;

	if (root == NULL)
		return ctl_json_print(NULL);
	ctl_json_str(root, "tenant", PQgetvalue(month, 0, 5));
	ctl_json_str(root, "month", PQgetvalue(month, 0, 2));
	ctl_json_str(root, "tz", PQgetvalue(month, 0, 1));
	ctl_json_str(root, "from", PQgetvalue(month, 0, 3));
	ctl_json_str(root, "until", PQgetvalue(month, 0, 4));
	ctl_json_str(root, "by", g->by);
	rows = cJSON_AddArrayToObject(root, "rows");
	for (r = 0; rows != NULL && r < PQntuples(res); r++) {
		if ((o = cJSON_CreateObject()) == NULL)
			break;
		for (i = 0; i < g->nlabels; i++) {
			const char *v = ctl_val(res, r, i);

			if (strcmp(g->names[i], "key_id") == 0)
				ctl_json_int(o, g->names[i], v);
			else
				ctl_json_str(o, g->names[i], v);
		}
		for (i = 0; i < NSUMS; i++)
			ctl_json_int(o, sum_names[i],
				     PQgetvalue(res, r, g->nlabels + i));
		cJSON_AddItemToArray(rows, o);
	}
	o = cJSON_AddObjectToObject(root, "total");
	for (i = 0; o != NULL && i < NSUMS; i++) {
		snprintf(num, sizeof(num), "%" PRId64, totals[i]);
		ctl_json_int(o, sum_names[i], num);
	}
	return ctl_json_print(root);
}

/* Prints the heading, the grouped rows and a TOTAL line as a table. */
static int
print_table(const struct grouping *g, const PGresult *month,
	    const PGresult *res, const int64_t *totals)
{
	const char *head[3 + NSUMS], *row[3 + NSUMS];
	char right[16] = "", nums[NSUMS][24];
	struct ctl_table *t;
	int ncols = g->nlabels + NSUMS, r, i;

	printf("Usage of tenant %s in %s (%s, %s to %s)\n\n",
	       PQgetvalue(month, 0, 5), PQgetvalue(month, 0, 2),
	       PQgetvalue(month, 0, 1), PQgetvalue(month, 0, 3),
	       PQgetvalue(month, 0, 4));
	for (i = 0; i < g->nlabels; i++)
		head[i] = g->heads[i];
	for (i = 0; i < NSUMS; i++) {
		head[g->nlabels + i] = sum_heads[i];
		right[i] = (char)('0' + g->nlabels + i);
	}
	/* The key id is a number too. */
	if (strcmp(g->by, "key") == 0)
		right[NSUMS] = '0';
	t = ctl_table_new(ncols, head, right);
	for (r = 0; r < PQntuples(res); r++) {
		for (i = 0; i < ncols; i++)
			row[i] = ctl_val(res, r, i);
		ctl_table_add(t, row);
	}
	for (i = 0; i < g->nlabels; i++)
		row[i] = i == 0 ? "TOTAL" : "";
	for (i = 0; i < NSUMS; i++) {
		snprintf(nums[i], sizeof(nums[i]), "%" PRId64, totals[i]);
		row[g->nlabels + i] = nums[i];
	}
	ctl_table_add(t, row);
	return ctl_table_print(t) < 0 ? ctl_oom() : 0;
}

/* tollctl usage --tenant T [--month YYYY-MM] [--by model|day|key] */
static int
usage_run(struct ctl *ctl, const struct ctl_args *a)
{
	const struct grouping *g = &groupings[0];
	const char *tenant = ctl_arg(a, "tenant");
	const char *month_arg = ctl_arg(a, "month"), *by = ctl_arg(a, "by");
	const char *params[4];
	PGresult *month = NULL, *res = NULL;
	int64_t totals[NSUMS] = { 0 };
	int r, rc = CTL_EXIT_FAIL;
	size_t i;

	if (by == NULL)
		by = "model";
	if (month_arg != NULL && !ctl_valid_month(month_arg)) {
		ctl_err("usage: --month '%s' is not YYYY-MM", month_arg);
		return CTL_EXIT_USAGE;
	}
	for (i = 0; i < sizeof(groupings) / sizeof(groupings[0]); i++)
		if (strcmp(groupings[i].by, by) == 0)
			break;
	if (i == sizeof(groupings) / sizeof(groupings[0])) {
		ctl_err("usage: --by '%s': expected model, day or key", by);
		return CTL_EXIT_USAGE;
	}
	g = &groupings[i];
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	params[0] = tenant;
	params[1] = month_arg;
	/* id, tz, month, first instant, end instant, name */
	/* clang-format off */
	month = ctl_query(ctl, "usage",
		"SELECT t.id, t.tz, to_char(m.d, 'YYYY-MM'), "
		CTL_TS("m.d::timestamp AT TIME ZONE t.tz") ", "
		CTL_TS("(m.d + interval '1 month')::timestamp"
		       " AT TIME ZONE t.tz") ", t.name, "
		"(m.d::timestamp AT TIME ZONE t.tz)::text, "
		"((m.d + interval '1 month')::timestamp"
		" AT TIME ZONE t.tz)::text "
		"FROM tenants t, (SELECT coalesce(to_date($2, 'YYYY-MM'),"
		" date_trunc('month', now() AT TIME ZONE 'UTC')::date) AS d) m "
		"WHERE t.name = $1", 2, params);
	/* clang-format on */
	if (month == NULL)
		goto out;
	if (PQntuples(month) == 0) {
		ctl_err("no tenant named '%s'", tenant);
		goto out;
	}
	params[0] = PQgetvalue(month, 0, 0);
	params[1] = PQgetvalue(month, 0, 6);
	params[2] = PQgetvalue(month, 0, 7);
	params[3] = PQgetvalue(month, 0, 1);
	if ((res = ctl_query(ctl, "usage", g->sql, g->nparams, params)) == NULL)
		goto out;
	for (r = 0; r < PQntuples(res); r++)
		if (add_sums(res, r, g->nlabels, totals) < 0) {
			ctl_err("usage: totals overflow");
			goto out;
		}
	if (ctl->json)
		rc = print_json(g, month, res, totals);
	else
		rc = print_table(g, month, res, totals);
out:
	PQclear(res);
	PQclear(month);
	return rc;
}

const struct ctl_cmd ctl_usage_cmd = {
	.family = "usage",
	.usage = usage_usage,
	.opts = "t|tenant! m|month= b|by=",
	.run = usage_run,
};
