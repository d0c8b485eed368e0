/*
 * ctl_tenant.c - tollctl tenant add | list | show | disable | enable.
 *
 * Names and currencies are checked by the schema's CHECK constraints; a
 * violation is translated into a message naming the rule. Time zones are
 * checked against pg_timezone_names, so a tenant's month boundaries can
 * always be computed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char tenant_usage[] =
	"usage: tollctl tenant add NAME [--currency CUR] [--tz ZONE]\n"
	"       tollctl tenant list\n"
	"       tollctl tenant show NAME\n"
	"       tollctl tenant disable NAME\n"
	"       tollctl tenant enable NAME\n"
	"\n"
	"NAME: letters, digits, '.', '_' and '-', up to 64 characters.\n"
	"--currency: ISO 4217 code for billing (default USD).\n"
	"--tz: IANA time zone of the tenant's billing months (default UTC).\n"
	"A disabled tenant's keys are refused by the gateway.\n";

/* Tenant columns in COL_* order; a WHERE or ORDER BY may follow. */
#define TENANT_SELECT \
	"SELECT t.id, t.name, t.currency, t.tz, t.disabled, " \
	CTL_TS("t.created_at") ", " \
	"(SELECT count(*) FROM api_keys k WHERE k.tenant_id = t.id" \
	" AND k.revoked_at IS NULL" \
	" AND (k.expires_at IS NULL OR k.expires_at > now())), " \
	"(SELECT count(*) FROM api_keys k WHERE k.tenant_id = t.id) " \
	"FROM tenants t "

enum { COL_ID, COL_NAME, COL_CUR, COL_TZ, COL_DISABLED, COL_CREATED,
       COL_ACTIVE_KEYS, COL_KEYS };

/* A tenant row as a JSON object. */
static cJSON *tenant_json(const PGresult *res, int row)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return NULL;
	ctl_json_int(o, "id", ctl_val(res, row, COL_ID));
	ctl_json_str(o, "name", ctl_val(res, row, COL_NAME));
	ctl_json_str(o, "currency", ctl_val(res, row, COL_CUR));
	ctl_json_str(o, "tz", ctl_val(res, row, COL_TZ));
	ctl_json_bool(o, "disabled", ctl_val(res, row, COL_DISABLED));
	ctl_json_str(o, "created_at", ctl_val(res, row, COL_CREATED));
	ctl_json_int(o, "active_keys", ctl_val(res, row, COL_ACTIVE_KEYS));
	ctl_json_int(o, "keys", ctl_val(res, row, COL_KEYS));
	return o;
}

/* "disabled" or "active" from the disabled column. */
static const char *tenant_status(const PGresult *res, int row)
{
	return strcmp(PQgetvalue(res, row, COL_DISABLED), "t") == 0 ?
		"disabled" : "active";
}

/* Parses "VERB NAME" with no options beyond the common ones; the name,
 * or NULL after reporting (*rc set; 0 when help was printed). */
static const char *parse_name(struct ctl *ctl, int argc, char **argv,
			      int *rc)
{
	static const struct option none[] = { { NULL, 0, NULL, 0 } };
	int c;

	while ((c = ctl_getopt(ctl, argc, argv, "", none)) != -1) {
		*rc = c == 'h' ? ctl_help(tenant_usage) : CTL_EXIT_USAGE;
		return NULL;
	}
	*rc = CTL_EXIT_USAGE;
	if (optind >= argc) {
		ctl_err("tenant %s: missing tenant name", argv[0]);
		return NULL;
	}
	if (optind + 1 < argc) {
		ctl_err("tenant %s: unexpected argument '%s'", argv[0],
			argv[optind + 1]);
		return NULL;
	}
	return argv[optind];
}

/* Reports a failed INSERT into tenants in terms of the rule it broke;
 * returns the exit status (a broken CHECK is a bad command line). */
static int add_error(const PGresult *res, const char *name,
		      const char *currency)
{
	const char *state = ctl_sqlstate(res);
	const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

	if (strcmp(state, "23505") == 0) {
		ctl_err("tenant '%s' already exists", name);
		return CTL_EXIT_FAIL;
	}
	if (strcmp(state, "23514") == 0 && cons != NULL &&
	    strstr(cons, "currency") != NULL) {
		ctl_err("invalid currency '%s': three capital letters, "
			"e.g. USD", currency);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(state, "23514") == 0 && cons != NULL &&
	    strstr(cons, "name") != NULL) {
		ctl_err("invalid tenant name '%s': letters, digits, '.', '_' "
			"and '-', starting with a letter or digit, up to 64",
			name);
		return CTL_EXIT_USAGE;
	}
	ctl_err("tenant add: %s", ctl_pg_message(res));
	return CTL_EXIT_FAIL;
}

/* Prints one tenant, vertically or as JSON. */
static int print_one(struct ctl *ctl, const PGresult *res)
{
	if (ctl->json)
		return ctl_json_print(tenant_json(res, 0));
	printf("id:          %s\n", PQgetvalue(res, 0, COL_ID));
	printf("name:        %s\n", PQgetvalue(res, 0, COL_NAME));
	printf("currency:    %s\n", PQgetvalue(res, 0, COL_CUR));
	printf("tz:          %s\n", PQgetvalue(res, 0, COL_TZ));
	printf("status:      %s\n", tenant_status(res, 0));
	printf("created:     %s\n", PQgetvalue(res, 0, COL_CREATED));
	printf("keys:        %s active, %s in all\n",
	       PQgetvalue(res, 0, COL_ACTIVE_KEYS),
	       PQgetvalue(res, 0, COL_KEYS));
	return 0;
}

/* Fetches and prints the tenant called name. */
static int show_by_name(struct ctl *ctl, const char *name)
{
	const char *params[1] = { name };
	PGresult *res;
	int rc;

	res = ctl_query(ctl, "tenant show",
			TENANT_SELECT "WHERE t.name = $1", 1, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	if (PQntuples(res) == 0) {
		ctl_err("no tenant named '%s'", name);
		PQclear(res);
		return CTL_EXIT_FAIL;
	}
	rc = print_one(ctl, res);
	PQclear(res);
	return rc;
}

/* tollctl tenant add NAME [--currency CUR] [--tz ZONE] */
static int tenant_add(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "currency", required_argument, NULL, 'C' },
		{ "tz", required_argument, NULL, 'z' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name, *currency = "USD", *tz = "UTC";
	const char *params[3];
	PGresult *res;
	int c, known, rc;

	while ((c = ctl_getopt(ctl, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'C':
			currency = optarg;
			break;
		case 'z':
			tz = optarg;
			break;
		case 'h':
			return ctl_help(tenant_usage);
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		ctl_err("tenant add: missing tenant name");
		return CTL_EXIT_USAGE;
	}
	if (optind + 1 < argc) {
		ctl_err("tenant add: unexpected argument '%s'",
			argv[optind + 1]);
		return CTL_EXIT_USAGE;
	}
	name = argv[optind];
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	params[0] = tz;
	res = ctl_query(ctl, "time zone",
			"SELECT EXISTS (SELECT 1 FROM pg_timezone_names"
			" WHERE name = $1)", 1, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	known = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!known) {
		ctl_err("unknown time zone '%s' (an IANA name such as "
			"Asia/Shanghai)", tz);
		return CTL_EXIT_USAGE;
	}
	params[0] = name;
	params[1] = currency;
	params[2] = tz;
	res = ctl_query_raw(ctl, "INSERT INTO tenants (name, currency, tz) "
			    "VALUES ($1, $2, $3)", 3, params);
	if (!ctl_result_ok(res)) {
		rc = add_error(res, name, currency);
		PQclear(res);
		return rc;
	}
	PQclear(res);
	return show_by_name(ctl, name);
}

/* tollctl tenant list */
static int tenant_list(struct ctl *ctl, int argc, char **argv)
{
	static const char *const head[] = {
		"ID", "NAME", "CURRENCY", "TZ", "STATUS", "KEYS", "CREATED",
	};
	static const struct option none[] = { { NULL, 0, NULL, 0 } };
	struct ctl_table *t = NULL;
	PGresult *res;
	cJSON *arr;
	int c, i, rc = CTL_EXIT_FAIL;

	while ((c = ctl_getopt(ctl, argc, argv, "", none)) != -1)
		return c == 'h' ? ctl_help(tenant_usage) : CTL_EXIT_USAGE;
	if (optind < argc) {
		ctl_err("tenant list: unexpected argument '%s'", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	res = ctl_query(ctl, "tenant list",
			TENANT_SELECT "ORDER BY t.name", 0, NULL);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		arr = cJSON_CreateArray();
		for (i = 0; arr != NULL && i < PQntuples(res); i++)
			cJSON_AddItemToArray(arr, tenant_json(res, i));
		rc = ctl_json_print(arr);
		goto out;
	}
	if ((t = ctl_table_new(7, head, "05")) == NULL)
		goto oom;
	for (i = 0; i < PQntuples(res); i++) {
		const char *row[7] = {
			PQgetvalue(res, i, COL_ID),
			PQgetvalue(res, i, COL_NAME),
			PQgetvalue(res, i, COL_CUR),
			PQgetvalue(res, i, COL_TZ),
			tenant_status(res, i),
			PQgetvalue(res, i, COL_ACTIVE_KEYS),
			PQgetvalue(res, i, COL_CREATED),
		};

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

/* tollctl tenant show NAME */
static int tenant_show(struct ctl *ctl, int argc, char **argv)
{
	const char *name;
	int rc;

	if ((name = parse_name(ctl, argc, argv, &rc)) == NULL)
		return rc;
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	return show_by_name(ctl, name);
}

/* tollctl tenant disable|enable NAME: sets the disabled flag. */
static int tenant_set_disabled(struct ctl *ctl, int argc, char **argv,
			       const char *disabled)
{
	const char *params[2] = { NULL, disabled };
	const char *name;
	PGresult *res;
	int rc, changed;

	if ((name = parse_name(ctl, argc, argv, &rc)) == NULL)
		return rc;
	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	params[0] = name;
	/* The old value comes from the row as it was before the update. */
	res = ctl_query(ctl, "tenant disable",
			"UPDATE tenants t SET disabled = $2::boolean"
			" FROM tenants o WHERE t.id = o.id AND t.name = $1"
			" RETURNING o.disabled <> $2::boolean", 2, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	if (PQntuples(res) == 0) {
		ctl_err("no tenant named '%s'", name);
		PQclear(res);
		return CTL_EXIT_FAIL;
	}
	changed = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!ctl->json) {
		printf("tenant %s %s%s\n", name,
		       changed ? "" : "was already ",
		       strcmp(disabled, "t") == 0 ? "disabled" : "enabled");
		return 0;
	}
	return show_by_name(ctl, name);
}

/* tollctl tenant disable NAME */
static int
tenant_disable(struct ctl *ctl, int argc, char **argv)
{
	return tenant_set_disabled(ctl, argc, argv, "t");
}

/* tollctl tenant enable NAME */
static int
tenant_enable(struct ctl *ctl, int argc, char **argv)
{
	return tenant_set_disabled(ctl, argc, argv, "f");
}

/* tollctl tenant VERB ... */
int ctl_tenant_main(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_verb verbs[] = {
		{ "add", tenant_add },
		{ "list", tenant_list },
		{ "show", tenant_show },
		{ "disable", tenant_disable },
		{ "enable", tenant_enable },
		{ NULL, NULL }
	};

	return ctl_dispatch(ctl, "tenant", verbs, tenant_usage, argc, argv);
}
