/*
 * ctl_audit.c - tollctl audit: the audit log, newest first.
 *
 * The rows are written by the database's triggers (sql/011_console.sql),
 * one per row a statement inserted, changed or deleted in tenants,
 * api_keys, quotas, rate_limits or promotions, whoever wrote it, with the
 * row before and after (a key without its hash). tollctl, and the console
 * that runs it, name the actor and the verb in the session; this verb
 * only reads them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Rows shown by default, and at most. */
#define AUDIT_LIMIT     "100"
#define AUDIT_MAX_LIMIT 1000

static const char audit_usage[] =
	"usage: tollctl audit [--tenant T] [--since TIME] [--limit N]\n"
	"\n"
	"The audit log, newest first: when, who (ACTOR: $TOLLGATE_ACTOR or\n"
	"tollctl:USER of the tollctl that made the change, else the database\n"
	"user), what (ACTION: the tollctl verb, else insert, update or\n"
	"delete), which table (OBJECT), whose (TENANT) and what changed\n"
	"(CHANGE: created, deleted, or the columns changed, with the old and\n"
	"new values when they are short). --json adds the row's id and the\n"
	"whole row before and after.\n"
	"--tenant: only the rows of tenant T. --since: from TIME on, a date\n"
	"(midnight in T's time zone, else UTC) or an RFC 3339 timestamp.\n"
	"--limit: at most N rows (default " AUDIT_LIMIT ", at most 1000).\n";

/* The changed columns of an update and their values when short, or
 * "created" and "deleted" (a.before and a.after are jsonb). */
#define AUDIT_CHANGE                                                           \
	"CASE WHEN a.before IS NULL THEN 'created'"                            \
	" WHEN a.after IS NULL THEN 'deleted'"                                 \
	" ELSE coalesce((SELECT string_agg(c.k || CASE WHEN length(c.o) <= 24" \
	" AND length(c.n) <= 24 THEN ' ' || c.o || ' -> ' || c.n ELSE '' END," \
	" ', ' ORDER BY c.k) FROM (SELECT n.key AS k,"                         \
	" coalesce(a.before -> n.key #>> '{}', 'null') AS o,"                  \
	" coalesce(n.value #>> '{}', 'null') AS n"                             \
	" FROM jsonb_each(a.after) n"                                          \
	" WHERE n.value IS DISTINCT FROM a.before -> n.key"                    \
	" AND n.key <> 'updated_at') c), 'updated_at') END"

/* clang-format off */
#define AUDIT_SELECT \
	"SELECT a.id, " CTL_TS("a.at") ", a.actor, a.action, a.object," \
	" a.object_id, t.name, a.before::text, a.after::text, " \
	AUDIT_CHANGE \
	" FROM audit_log a LEFT JOIN tenants t ON t.id = a.tenant_id" \
	" WHERE ($1::bigint IS NULL OR a.tenant_id = $1::bigint)" \
	" AND ($2::timestamptz IS NULL OR a.at >= $2::timestamptz)" \
	" ORDER BY a.at DESC, a.id DESC LIMIT $3::integer"
/* clang-format on */

enum {
	AC_ID,
	AC_AT,
	AC_ACTOR,
	AC_ACTION,
	AC_OBJECT,
	AC_OBJECT_ID,
	AC_TENANT,
	AC_BEFORE,
	AC_AFTER,
	AC_CHANGE
};

/* audit: a table, or JSON. */
static const struct ctl_view audit_view = {
	(const struct ctl_cell[]){
		{ "ID", AC_ID, 1, NULL, NULL },
		{ "AT", AC_AT, 0, NULL, NULL },
		{ "ACTOR", AC_ACTOR, 0, NULL, NULL },
		{ "ACTION", AC_ACTION, 0, NULL, NULL },
		{ "OBJECT", AC_OBJECT, 0, NULL, NULL },
		{ "TENANT", AC_TENANT, 0, NULL, NULL },
		{ "CHANGE", AC_CHANGE, 0, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL },
	},
	(const struct ctl_member[]){
		{ "id", AC_ID, CTL_INT, NULL },
		{ "at", AC_AT, CTL_STR, NULL },
		{ "actor", AC_ACTOR, CTL_STR, NULL },
		{ "action", AC_ACTION, CTL_STR, NULL },
		{ "object", AC_OBJECT, CTL_STR, NULL },
		{ "object_id", AC_OBJECT_ID, CTL_INT, NULL },
		{ "tenant", AC_TENANT, CTL_STR, NULL },
		{ "before", AC_BEFORE, CTL_JSON, NULL },
		{ "after", AC_AFTER, CTL_JSON, NULL },
		{ NULL, 0, 0, NULL },
	},
};

/* Checks --limit: a whole number from 1 to AUDIT_MAX_LIMIT. 0, or -1
 * after reporting. */
static int
check_limit(const char *arg)
{
	long n = 0;

	if (ctl_is_digits(arg) && strlen(arg) <= 4)
		n = strtol(arg, NULL, 10);
	if (n >= 1 && n <= AUDIT_MAX_LIMIT)
		return 0;
	ctl_err("invalid --limit '%s': a whole number from 1 to %d", arg,
		AUDIT_MAX_LIMIT);
	return -1;
}

/* tollctl audit [--tenant T] [--since TIME] [--limit N] */
static int
audit(struct ctl *ctl, const struct ctl_args *a)
{
	const char *tenant = ctl_arg(a, "tenant"), *since = ctl_arg(a, "since");
	const char *limit = ctl_arg(a, "limit"), *params[3];
	struct ctl_tenant_time tt;

	if (limit == NULL)
		limit = AUDIT_LIMIT;
	if (check_limit(limit) < 0 ||
	    (since != NULL && ctl_check_time("--since", since) < 0))
		return CTL_EXIT_USAGE;
	if (ctl_connect(ctl) < 0 ||
	    ctl_tenant_time(ctl, tenant, since, &tt) < 0)
		return CTL_EXIT_FAIL;
	params[0] = tt.tenant_id;
	params[1] = tt.time;
	params[2] = limit;
	return ctl_list(ctl, "audit", AUDIT_SELECT, 3, params, &audit_view);
}

const struct ctl_cmd ctl_audit_cmd = {
	.family = "audit",
	.usage = audit_usage,
	.opts = "t|tenant= s|since=TIME l|limit=N",
	.run = audit,
};
