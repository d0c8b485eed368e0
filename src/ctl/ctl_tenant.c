/*
 * ctl_tenant.c - tollctl tenant add | list | show | disable | enable |
 * rename | bind | unbind.
 *
 * Names, display names and currencies are checked by the schema's CHECK
 * constraints; a violation is translated into a message naming the rule.
 * Time zones are checked against pg_timezone_names, so a tenant's month
 * boundaries can always be computed. The name is the tenant's ASCII
 * identifier; the display name is free text in any script.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char tenant_usage[] =
	"usage: tollctl tenant add NAME [--currency CUR] [--tz ZONE]\n"
	"                              [--display-name TEXT]\n"
	"       tollctl tenant list\n"
	"       tollctl tenant show NAME\n"
	"       tollctl tenant disable NAME\n"
	"       tollctl tenant enable NAME\n"
	"       tollctl tenant rename NAME --display-name TEXT\n"
	"       tollctl tenant bind NAME SUBJECT\n"
	"       tollctl tenant unbind NAME\n"
	"\n"
	"NAME: letters, digits, '.', '_' and '-', up to 64 characters.\n"
	"--currency: ISO 4217 code for billing (default USD).\n"
	"--tz: IANA time zone of the tenant's billing months (default UTC).\n"
	"--display-name: the name people read, any script (e.g. a Chinese\n"
	"  name), up to 200 characters, no control characters; rename sets\n"
	"  it, and an empty TEXT removes it.\n"
	"A disabled tenant's keys are refused by the gateway.\n"
	"bind: the tenant's keys are served only over TLS with a client\n"
	"certificate whose subject (RFC 2253, e.g. 'O=Example,CN=app') is\n"
	"SUBJECT; unbind lifts that.\n";

/* Tenant columns in COL_* order; a WHERE or ORDER BY may follow. */
/* clang-format off */
#define TENANT_SELECT \
	"SELECT t.id, t.name, t.currency, t.tz, t.disabled, " \
	CTL_TS("t.created_at") ", " \
	"(SELECT count(*) FROM api_keys k WHERE k.tenant_id = t.id" \
	" AND k.revoked_at IS NULL" \
	" AND (k.expires_at IS NULL OR k.expires_at > now())), " \
	"(SELECT count(*) FROM api_keys k WHERE k.tenant_id = t.id), " \
	"t.client_subject, t.display_name " \
	"FROM tenants t "
/* clang-format on */

enum {
	COL_ID,
	COL_NAME,
	COL_CUR,
	COL_TZ,
	COL_DISABLED,
	COL_CREATED,
	COL_ACTIVE_KEYS,
	COL_KEYS,
	COL_SUBJECT,
	COL_DISPLAY
};

/* "disabled" or "active" from the disabled column. */
static const char *
tenant_status(const PGresult *res, int row, int col, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return strcmp(PQgetvalue(res, row, col), "t") == 0 ? "disabled"
							   : "active";
}

/* A tenant row as JSON. */
static const struct ctl_member tenant_members[] = {
	{ "id", COL_ID, CTL_INT, NULL },
	{ "name", COL_NAME, CTL_STR, NULL },
	{ "display_name", COL_DISPLAY, CTL_STR, NULL },
	{ "currency", COL_CUR, CTL_STR, NULL },
	{ "tz", COL_TZ, CTL_STR, NULL },
	{ "disabled", COL_DISABLED, CTL_BOOL, NULL },
	{ "created_at", COL_CREATED, CTL_STR, NULL },
	{ "active_keys", COL_ACTIVE_KEYS, CTL_INT, NULL },
	{ "keys", COL_KEYS, CTL_INT, NULL },
	{ "client_subject", COL_SUBJECT, CTL_STR, NULL },
	{ NULL, 0, 0, NULL },
};

/* tenant list: a table, or JSON. */
static const struct ctl_view tenant_view = {
	(const struct ctl_cell[]){
		{ "ID", COL_ID, 1, NULL, NULL },
		{ "NAME", COL_NAME, 0, NULL, NULL },
		{ "DISPLAY NAME", COL_DISPLAY, 0, NULL, NULL },
		{ "CURRENCY", COL_CUR, 0, NULL, NULL },
		{ "TZ", COL_TZ, 0, NULL, NULL },
		{ "STATUS", COL_DISABLED, 0, NULL, tenant_status },
		{ "KEYS", COL_ACTIVE_KEYS, 1, NULL, NULL },
		{ "CREATED", COL_CREATED, 0, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL },
	},
	tenant_members,
};

/* Reports a failed INSERT into or UPDATE of tenants (by verb) in terms of
 * the rule it broke; returns the exit status (a broken CHECK is a bad
 * command line). */
static int
tenant_error(const PGresult *res, const char *verb, const char *name,
	     const char *currency)
{
	const char *state = ctl_sqlstate(res);
	const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

	if (strcmp(state, "23505") == 0) {
		ctl_err("tenant '%s' already exists", name);
		return CTL_EXIT_FAIL;
	}
	if (strcmp(state, "23514") == 0 && cons != NULL &&
	    strcmp(cons, "tenants_display_name_check") == 0) {
		ctl_err("invalid --display-name: up to 200 characters, no control characters");
		return CTL_EXIT_USAGE;
	}
	if (strcmp(state, "23514") == 0 && cons != NULL &&
	    strstr(cons, "currency") != NULL) {
		ctl_err("invalid currency '%s': three capital letters, e.g. USD",
			currency);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(state, "23514") == 0 && cons != NULL &&
	    strstr(cons, "name") != NULL) {
		ctl_err("invalid tenant name '%s': letters, digits, '.', '_' and '-', starting with a letter or digit, up to 64",
			name);
		return CTL_EXIT_USAGE;
	}
	ctl_err("%s: %s", verb, ctl_pg_message(res));
	return CTL_EXIT_FAIL;
}

/* The display name as a query parameter: NULL for none (not given, empty
 * or blank). */
static const char *
display_param(const char *display)
{
	return display == NULL || ctl_blank(display) ? NULL : display;
}

/* Prints one tenant, vertically or as JSON. */
static int
print_one(struct ctl *ctl, const PGresult *res)
{
	if (ctl->json)
		return ctl_json_print(ctl_row_json(res, 0, tenant_members));
	printf("id:          %s\n", PQgetvalue(res, 0, COL_ID));
	printf("name:        %s\n", PQgetvalue(res, 0, COL_NAME));
	if (!PQgetisnull(res, 0, COL_DISPLAY))
		printf("display:     %s\n", PQgetvalue(res, 0, COL_DISPLAY));
	printf("currency:    %s\n", PQgetvalue(res, 0, COL_CUR));
	printf("tz:          %s\n", PQgetvalue(res, 0, COL_TZ));
	printf("status:      %s\n",
	       tenant_status(res, 0, COL_DISABLED, NULL, 0));
	printf("created:     %s\n", PQgetvalue(res, 0, COL_CREATED));
	printf("keys:        %s active, %s in all\n",
	       PQgetvalue(res, 0, COL_ACTIVE_KEYS),
	       PQgetvalue(res, 0, COL_KEYS));
	if (!PQgetisnull(res, 0, COL_SUBJECT))
		printf("client cert: %s\n", PQgetvalue(res, 0, COL_SUBJECT));
	return 0;
}

/* Fetches and prints the tenant called name. */
static int
show_by_name(struct ctl *ctl, const char *name)
{
	const char *params[1] = { name };
	PGresult *res;
	int rc;

	res = ctl_query_named(ctl, "tenant show", "tenant",
			      TENANT_SELECT "WHERE t.name = $1", 1, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	rc = print_one(ctl, res);
	PQclear(res);
	return rc;
}

/* tollctl tenant add NAME [--currency CUR] [--tz ZONE]
 * [--display-name TEXT] */
static int
tenant_add(struct ctl *ctl, const struct ctl_args *a)
{
	const char *name = a->argv[0], *params[4];
	const char *currency = ctl_arg(a, "currency");
	const char *tz = ctl_arg(a, "tz");
	PGresult *res;
	int known, rc;

	if (currency == NULL)
		currency = "USD";
	if (tz == NULL)
		tz = "UTC";
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	params[0] = tz;
	res = ctl_query(ctl, "time zone",
			"SELECT EXISTS (SELECT 1 FROM pg_timezone_names"
			" WHERE name = $1)",
			1, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	known = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!known) {
		ctl_err("unknown time zone '%s' (an IANA name such as Asia/Shanghai)",
			tz);
		return CTL_EXIT_USAGE;
	}
	params[0] = name;
	params[1] = currency;
	params[2] = tz;
	params[3] = display_param(ctl_arg(a, "display-name"));
	res = ctl_query_raw(ctl,
			    "INSERT INTO tenants (name, currency, tz, "
			    "display_name) VALUES ($1, $2, $3, $4)",
			    4, params);
	if (!ctl_result_ok(res)) {
		rc = tenant_error(res, "tenant add", name, currency);
		PQclear(res);
		return rc;
	}
	PQclear(res);
	return show_by_name(ctl, name);
}

/* tollctl tenant list */
static int
tenant_list(struct ctl *ctl, const struct ctl_args *a)
{
	(void)a;
	return ctl_list(ctl, "tenant list", TENANT_SELECT "ORDER BY t.name", 0,
			NULL, &tenant_view);
}

/* tollctl tenant show NAME */
static int
tenant_show(struct ctl *ctl, const struct ctl_args *a)
{
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	return show_by_name(ctl, a->argv[0]);
}

/* tollctl tenant disable|enable NAME: sets the disabled flag. */
static int
tenant_set_disabled(struct ctl *ctl, const char *name, const char *disabled)
{
	const char *params[2] = { NULL, disabled };
	PGresult *res;
	int changed;

	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	params[0] = name;
	/* The old value comes from the row as it was before the update. */
	res = ctl_query_named(
		ctl, "tenant disable", "tenant",
		"UPDATE tenants t SET disabled = $2::boolean"
		" FROM tenants o WHERE t.id = o.id AND t.name = $1"
		" RETURNING o.disabled <> $2::boolean",
		2, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	changed = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!ctl->json) {
		printf("tenant %s %s%s\n", name, changed ? "" : "was already ",
		       strcmp(disabled, "t") == 0 ? "disabled" : "enabled");
		return 0;
	}
	return show_by_name(ctl, name);
}

/* tollctl tenant disable NAME */
static int
tenant_disable(struct ctl *ctl, const struct ctl_args *a)
{
	return tenant_set_disabled(ctl, a->argv[0], "t");
}

/* tollctl tenant enable NAME */
static int
tenant_enable(struct ctl *ctl, const struct ctl_args *a)
{
	return tenant_set_disabled(ctl, a->argv[0], "f");
}

/* Runs sql, an UPDATE of the tenant called name ($1) to value ($2) that
 * returns a row, for verb; then prints the tenant. */
static int
tenant_update(struct ctl *ctl, const char *verb, const char *sql,
	      const char *name, const char *value)
{
	const char *params[2] = { name, value };
	PGresult *res;
	int found;

	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	res = ctl_query_raw(ctl, sql, 2, params);
	if (!ctl_result_ok(res)) {
		int rc = tenant_error(res, verb, name, NULL);
		PQclear(res);
		return rc;
	}
	found = PQntuples(res) > 0;
	PQclear(res);
	if (!found) {
		ctl_err("no tenant named '%s'", name);
		return CTL_EXIT_FAIL;
	}
	return show_by_name(ctl, name);
}

/* tollctl tenant rename NAME --display-name TEXT */
static int
tenant_rename(struct ctl *ctl, const struct ctl_args *a)
{
	return tenant_update(ctl, "tenant rename",
			     "UPDATE tenants SET display_name = $2"
			     " WHERE name = $1 RETURNING id",
			     a->argv[0],
			     display_param(ctl_arg(a, "display-name")));
}

/* tollctl tenant bind NAME SUBJECT, unbind NAME: the client certificate
 * subject the tenant's keys are served to (NULL: any). */
static int
tenant_set_subject(struct ctl *ctl, const char *name, const char *subject)
{
	return tenant_update(ctl, "tenant bind",
			     "UPDATE tenants SET client_subject = $2"
			     " WHERE name = $1 RETURNING id",
			     name, subject);
}

/* tollctl tenant bind NAME SUBJECT */
static int
tenant_bind(struct ctl *ctl, const struct ctl_args *a)
{
	if (a->argv[1][0] == '\0') {
		ctl_err("tenant bind: an empty subject (use tenant unbind)");
		return CTL_EXIT_USAGE;
	}
	return tenant_set_subject(ctl, a->argv[0], a->argv[1]);
}

/* tollctl tenant unbind NAME */
static int
tenant_unbind(struct ctl *ctl, const struct ctl_args *a)
{
	return tenant_set_subject(ctl, a->argv[0], NULL);
}

/* The tenant verbs: each takes one NAME but list (and bind's SUBJECT). */
#define TENANT_CMD(verb, fn, opts_, nargs)                                     \
	{                                                                      \
		.family = "tenant", .name = verb, .usage = tenant_usage,       \
		.opts = opts_, .min_args = nargs, .max_args = nargs,           \
		.arg_name = "tenant name", .run = fn                           \
	}

const struct ctl_cmd ctl_tenant_add_cmd =
	TENANT_CMD("add", tenant_add, "currency= tz= display-name=", 1);
const struct ctl_cmd ctl_tenant_list_cmd =
	TENANT_CMD("list", tenant_list, NULL, 0);
const struct ctl_cmd ctl_tenant_show_cmd =
	TENANT_CMD("show", tenant_show, NULL, 1);
const struct ctl_cmd ctl_tenant_disable_cmd =
	TENANT_CMD("disable", tenant_disable, NULL, 1);
const struct ctl_cmd ctl_tenant_enable_cmd =
	TENANT_CMD("enable", tenant_enable, NULL, 1);
const struct ctl_cmd ctl_tenant_rename_cmd =
	TENANT_CMD("rename", tenant_rename, "display-name!TEXT", 1);
const struct ctl_cmd ctl_tenant_bind_cmd =
	TENANT_CMD("bind", tenant_bind, NULL, 2);
const struct ctl_cmd ctl_tenant_unbind_cmd =
	TENANT_CMD("unbind", tenant_unbind, NULL, 1);
