/*
 * tollctl.c - the admin CLI: global options, dispatch, connection and the
 * output helpers the verb files share.
 *
 * Every statement goes through PQexecParams with its values as parameters;
 * no SQL is ever assembled from user input. The session runs in UTC and
 * timestamps are printed as ISO 8601 UTC text (see CTL_TS), so output does
 * not depend on the server's or the client's time zone. The session also
 * names who runs which verb (tollgate.actor, tollgate.action), for the
 * audit rows the database's triggers write (sql/011_console.sql).
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "utf8.h"

enum {
	OPT_JSON = 0x100,
	OPT_DATABASE,
	OPT_VERB = 0x200, /* a verb's long options without a short name */
};

static const char usage_text[] =
	"usage: tollctl [--database CONNINFO] [-c CONFIG] [--json] VERB ...\n"
	"\n"
	"  db migrate [--sql-dir DIR]      apply the sql/NNN_*.sql migrations\n"
	"  tenant add NAME [--currency C] [--tz ZONE]\n"
	"             [--display-name TEXT]\n"
	"  tenant list | show NAME | disable NAME | enable NAME\n"
	"  tenant rename NAME --display-name TEXT\n"
	"  key issue --tenant T [--name N] [--models 'gpt-4o,glm-*']\n"
	"            [--expires DATE] [-q|--quiet]\n"
	"  key list [--tenant T]\n"
	"  key revoke ID|PREFIX|KEY\n"
	"  usage --tenant T [--month YYYY-MM] [--by model|day|key]\n"
	"  usage import FILE|- [--dry-run]\n"
	"  price set --provider P --model M --input X --output Y\n"
	"            [--cached X] [--cache-write X] --currency C --from DATE\n"
	"            [--tenant T] [--source TEXT]\n"
	"  price list [--provider P] [--model M] [--tenant T] [--at TIME]\n"
	"  fx set --month YYYY-MM BASE QUOTE RATE | fx list [--month M]\n"
	"  promo add --name N (--free-tokens 50M | --discount 20%)\n"
	"            [--tenant T | --all] [--model PAT] [--provider P]\n"
	"            --from TIME --until TIME\n"
	"  promo list [--tenant T] [--active] | promo end NAME [--at TIME]\n"
	"  quota set --tenant T [--key K] [--model PAT] --period P\n"
	"            [--tokens N] [--spend X] [--soft|--hard]\n"
	"  quota list [--tenant T] | quota clear ID|--tenant T ... --period P\n"
	"  limit set --tenant T [--key K] [--rpm N] [--tpm N] [--concurrency "
	"N]\n"
	"  limit list [--tenant T] | limit clear --tenant T [--key K]\n"
	"  bill --month YYYY-MM [--tenant T] [--format text|csv|json|html]\n"
	"       [-o FILE] | bill close --month YYYY-MM\n"
	"  audit [--tenant T] [--since TIME] [--limit N]\n"
	"\n"
	"Options (also accepted after the verb):\n"
	"  --database CONNINFO  libpq connection string or URI; else\n"
	"                       $TOLLGATE_DATABASE, else the config's\n"
	"                       database\n"
	"  -c, --config FILE    tollgate.conf (else $TOLLGATE_CONFIG), for\n"
	"                       the database and key_secret_file\n"
	"  --json               print JSON instead of tables\n"
	"  -h, --help           this text; 'tollctl VERB --help' for a verb\n"
	"\n"
	"Changes are recorded in the audit log as made by $TOLLGATE_ACTOR,\n"
	"else tollctl:USER.\n"
	"\n"
	"Exit status: 0 success, 1 bad command line, 2 database or runtime "
	"error.\n";

static const struct option common_opts[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "database", required_argument, NULL, OPT_DATABASE },
	{ "config", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
};

#define NCOMMON ((int)(sizeof(common_opts) / sizeof(common_opts[0])))

/* Prints "tollctl: " and the formatted message on one line to stderr. */
void
ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("tollctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Reports that memory ran out. */
int
ctl_oom(void)
{
	ctl_err("out of memory");
	return CTL_EXIT_FAIL;
}

/* Prints help text to stdout and returns 0, for "VERB --help". */
int
ctl_help(const char *text)
{
	fputs(text, stdout);
	return 0;
}

/* Builds ctl's merged option table from the verb's and the common ones. */
static int
merge_opts(struct ctl *ctl, const char *shortopts,
	   const struct option *longopts)
{
	int n = 0, i;

	const char *order = "";

	/* A leading '+' (stop at the first non-option) must come first. */
	if (*shortopts == '+') {
		order = "+";
		shortopts++;
	}
	if (snprintf(ctl->shortopts, sizeof(ctl->shortopts), "%s:%sc:h", order,
		     shortopts) >= (int)sizeof(ctl->shortopts))
		return -1;
	for (i = 0; longopts != NULL && longopts[i].name != NULL; i++) {
		if (n >= CTL_MAX_OPTS - NCOMMON - 1)
			return -1;
		ctl->opts[n++] = longopts[i];
	}
	for (i = 0; i < NCOMMON; i++)
		ctl->opts[n++] = common_opts[i];
	memset(&ctl->opts[n], 0, sizeof(ctl->opts[n]));
	return 0;
}

/* Reports the option getopt_long refused: a flag given a value
 * ("--soft=x"), a letter no option has, or a name no option has. */
static void
unknown_opt(const struct ctl *ctl, const char *arg)
{
	size_t len = strcspn(arg, "=");
	const char *flag = NULL;
	int matches = 0;

	/* getopt_long takes a unique prefix of a name, so do we. */
	for (int i = 0; arg[len] == '=' && ctl->opts[i].name != NULL; i++)
		if (strncmp(arg, "--", 2) == 0 &&
		    strncmp(ctl->opts[i].name, arg + 2, len - 2) == 0) {
			flag = ctl->opts[i].name;
			matches++;
		}
	if (matches == 1) {
		ctl_err("option '--%s' takes no value", flag);
		return;
	}
	if (optopt != 0 && optopt < 0x100)
		ctl_err("unknown option '-%c'", optopt);
	else
		ctl_err("unknown option '%s'", arg);
}

/* getopt_long with the verb's options plus the common ones; see ctl.h. */
int
ctl_getopt(struct ctl *ctl, int argc, char **argv, const char *shortopts,
	   const struct option *longopts)
{
	int c;

	if (ctl->opts[0].name == NULL) {
		if (merge_opts(ctl, shortopts, longopts) < 0) {
			ctl_err("internal error: option table too large");
			return '?';
		}
		optind = 0;
		opterr = 0;
	}
	for (;;) {
		c = getopt_long(argc, argv, ctl->shortopts, ctl->opts, NULL);
		switch (c) {
		case OPT_JSON:
			ctl->json = 1;
			continue;
		case OPT_DATABASE:
			ctl->database = optarg;
			continue;
		case 'c':
			ctl->config_path = optarg;
			continue;
		case ':':
			ctl_err("option '%s' needs a value", argv[optind - 1]);
			return '?';
		case '?':
			unknown_opt(ctl, argv[optind - 1]);
			return '?';
		case -1:
			/* Next verb starts from a fresh table. */
			ctl->opts[0].name = NULL;
			return -1;
		default:
			return c;
		}
	}
}

/* Replaces newlines and tabs by spaces, squeezes runs and trims, in place. */
static char *
oneline(char *s)
{
	char *r = s, *w = s;
	int space = 1;

	for (; *r != '\0'; r++) {
		if (isspace((unsigned char)*r)) {
			if (!space)
				*w++ = ' ';
			space = 1;
		} else {
			*w++ = *r;
			space = 0;
		}
	}
	while (w > s && w[-1] == ' ')
		w--;
	*w = '\0';
	return s;
}

/* Silences server notices such as "relation already exists, skipping". */
static void
quiet_notice(void *arg, const char *message)
{
}

/* Loads the config file named by -c or TOLLGATE_CONFIG, if any. */
static int
load_config(struct ctl *ctl)
{
	const char *path = ctl->config_path;
	char *cause = NULL;

	if (ctl->cfg != NULL)
		return 0;
	if (path == NULL || *path == '\0')
		path = getenv("TOLLGATE_CONFIG");
	if (path == NULL || *path == '\0')
		return 0;
	ctl->cfg = config_load(path, CONFIG_NO_SECRETS, &cause);
	if (ctl->cfg == NULL) {
		ctl_err("%s", cause != NULL ? oneline(cause) : path);
		free(cause);
		return -1;
	}
	return 0;
}

/* Who runs tollctl, for the audit: $TOLLGATE_ACTOR, else "tollctl:" and
 * the login name (in buf). */
static const char *
actor(char *buf, size_t size)
{
	const char *env = getenv("TOLLGATE_ACTOR");
	const struct passwd *pw;

	if (env != NULL && *env != '\0')
		return env;
	pw = getpwuid(geteuid());
	if (pw != NULL && pw->pw_name != NULL && *pw->pw_name != '\0')
		snprintf(buf, size, "tollctl:%s", pw->pw_name);
	else
		snprintf(buf, size, "tollctl");
	return buf;
}

/* Sets up a new session: UTC, and the actor and action of the audit. 0,
 * or -1 after reporting. */
static int
session_setup(struct ctl *ctl)
{
	char buf[256];
	const char *params[2] = { actor(buf, sizeof(buf)), ctl->action };
	PGresult *res;
	int rc = 0;

	res = ctl_query_raw(ctl,
			    "SELECT set_config('TimeZone', 'UTC', false),"
			    " set_config('tollgate.actor', $1, false),"
			    " set_config('tollgate.action', $2, false)",
			    2, params);
	if (!ctl_result_ok(res)) {
		ctl_err("cannot set up the session: %s", ctl_pg_message(res));
		rc = -1;
	}
	PQclear(res);
	return rc;
}

/* Connects if not yet connected; see ctl.h for the order of sources. */
int
ctl_connect(struct ctl *ctl)
{
	const char *keys[] = { "dbname", "fallback_application_name", NULL };
	const char *vals[] = { NULL, "tollctl", NULL };
	const char *conninfo = ctl->database;
	char msg[512];

	if (ctl->conn != NULL)
		return 0;
	if (load_config(ctl) < 0)
		return -1;
	if (conninfo == NULL || *conninfo == '\0')
		conninfo = getenv("TOLLGATE_DATABASE");
	if ((conninfo == NULL || *conninfo == '\0') && ctl->cfg != NULL)
		conninfo = ctl->cfg->database;
	vals[0] = conninfo != NULL ? conninfo : "";
	ctl->conn = PQconnectdbParams(keys, vals, 1);
	if (ctl->conn == NULL) {
		ctl_err("cannot connect to the database: out of memory");
		return -1;
	}
	if (PQstatus(ctl->conn) != CONNECTION_OK) {
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(ctl->conn));
		ctl_err("cannot connect to the database: %s", oneline(msg));
		PQfinish(ctl->conn);
		ctl->conn = NULL;
		return -1;
	}
	PQsetNoticeProcessor(ctl->conn, quiet_notice, NULL);
	return session_setup(ctl);
}

/* The key secret: the config's key_secret_file when a config is given,
 * else TOLLGATE_KEY_SECRET, else "" (config_resolve_secret's order). */
const char *
ctl_secret(struct ctl *ctl)
{
	struct config *cfg;
	char *cause = NULL;

	if (ctl->secret != NULL)
		return ctl->secret;
	if (load_config(ctl) < 0)
		return NULL;
	cfg = ctl->cfg != NULL ? ctl->cfg : config_defaults();
	if (cfg == NULL) {
		ctl_err("out of memory");
		return NULL;
	}
	if (config_resolve_secret(cfg, &cause) < 0) {
		ctl_err("key secret: %s",
			cause != NULL ? oneline(cause) : "cannot be read");
		free(cause);
		goto fail;
	}
	ctl->secret = strdup(cfg->key_secret != NULL ? cfg->key_secret : "");
	if (ctl->secret == NULL)
		ctl_err("out of memory");
fail:
	if (cfg != ctl->cfg)
		config_free(cfg);
	return ctl->secret;
}

/* Runs sql with text parameters and returns whatever result came back. */
PGresult *
ctl_query_raw(struct ctl *ctl, const char *sql, int nparams,
	      const char *const *params)
{
	return PQexecParams(ctl->conn, sql, nparams, NULL, params, NULL, NULL,
			    0);
}

/* Whether res is non-NULL and succeeded (tuples or command). */
int
ctl_result_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	return res != NULL && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK);
}

/* Runs sql; on failure reports "what: server message" and returns NULL. */
PGresult *
ctl_query(struct ctl *ctl, const char *what, const char *sql, int nparams,
	  const char *const *params)
{
	PGresult *res = ctl_query_raw(ctl, sql, nparams, params);

	if (ctl_result_ok(res))
		return res;
	ctl_err("%s: %s", what, ctl_pg_message(res));
	PQclear(res);
	return NULL;
}

/* ctl_query that reports a missing row; see ctl.h. */
PGresult *
ctl_query_named(struct ctl *ctl, const char *what, const char *noun,
		const char *sql, int nparams, const char *const *params)
{
	PGresult *res = ctl_query(ctl, what, sql, nparams, params);

	if (res != NULL && PQntuples(res) == 0) {
		ctl_err("no %s named '%s'", noun, params[0]);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Runs a parameterless command; 0, or -1 after reporting. */
int
ctl_exec(struct ctl *ctl, const char *sql)
{
	PGresult *res = ctl_query(ctl, sql, sql, 0, NULL);

	PQclear(res);
	return res != NULL ? 0 : -1;
}

/* The SQLSTATE of a failed result, or "". */
const char *
ctl_sqlstate(const PGresult *res)
{
	const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return s != NULL ? s : "";
}

/* The primary error message of res on one line, in a static buffer. */
const char *
ctl_pg_message(const PGresult *res)
{
	static char buf[512];
	const char *m = NULL;

	if (res != NULL)
		m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (m == NULL && res != NULL)
		m = PQresultErrorMessage(res);
	if (m == NULL || *m == '\0')
		m = res == NULL ? "out of memory" : "unknown error";
	snprintf(buf, sizeof(buf), "%s", m);
	return oneline(buf);
}

/* Column value or NULL for SQL NULL. */
const char *
ctl_val(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}

/* Whether s is a non-empty string of decimal digits. */
int
ctl_is_digits(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

struct ctl_table {
	int ncols;
	int nrows;
	int cap;
	int failed; /* a row could not be stored */
	char right[16];
	char **cells; /* (nrows + 1) * ncols, row 0 is the header */
};

/* Frees the table and its cells; NULL is allowed. */
static void
ctl_table_free(struct ctl_table *t)
{
	int i;

	if (t == NULL)
		return;
	for (i = 0; i < (t->nrows + 1) * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

/* Creates a table; see ctl.h. */
struct ctl_table *
ctl_table_new(int ncols, const char *const *headers, const char *right)
{
	struct ctl_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->ncols = ncols;
	snprintf(t->right, sizeof(t->right), "%s", right != NULL ? right : "");
	t->nrows = -1;
	ctl_table_add(t, headers);
	return t;
}

/* Appends a copy of cells as a row, or fails the table. */
void
ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	int i, base;
	char **grown;

	if (t == NULL || t->failed)
		return;
	if (t->nrows + 1 >= t->cap) {
		int cap = t->cap == 0 ? 16 : t->cap * 2;

		grown = realloc(t->cells,
				(size_t)cap * t->ncols * sizeof(*grown));
		if (grown == NULL) {
			t->failed = 1;
			return;
		}
		t->cells = grown;
		t->cap = cap;
	}
	base = (t->nrows + 1) * t->ncols;
	for (i = 0; i < t->ncols; i++) {
		t->cells[base + i] = strdup(cells[i] != NULL ? cells[i] : "-");
		if (t->cells[base + i] == NULL) {
			while (i-- > 0)
				free(t->cells[base + i]);
			t->failed = 1;
			return;
		}
	}
	t->nrows++;
}

/* Writes the table to stdout, columns separated by two spaces, and frees
 * it. */
int
ctl_table_print(struct ctl_table *t)
{
	int widths[32] = { 0 };
	int r, c, w;

	if (t == NULL || t->failed || t->ncols > 32) {
		ctl_table_free(t);
		return -1;
	}
	for (r = 0; r <= t->nrows; r++)
		for (c = 0; c < t->ncols; c++) {
			w = (int)utf8_width(t->cells[r * t->ncols + c]);
			if (w > widths[c])
				widths[c] = w;
		}
	for (r = 0; r <= t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			int pad = widths[c] - (int)utf8_width(cell);
			int last = c == t->ncols - 1;

			if (c > 0)
				fputs("  ", stdout);
			if (strchr(t->right, '0' + c) != NULL) {
				printf("%*s%s", pad, "", cell);
			} else {
				fputs(cell, stdout);
				if (!last)
					printf("%*s", pad, "");
			}
		}
		fputc('\n', stdout);
	}
	ctl_table_free(t);
	return 0;
}

/* Adds a string member, or null. */
void
ctl_json_str(cJSON *obj, const char *name, const char *s)
{
	if (s == NULL)
		cJSON_AddNullToObject(obj, name);
	else
		cJSON_AddStringToObject(obj, name, s);
}

/* Adds an integer member from decimal text without a double round trip. */
void
ctl_json_int(cJSON *obj, const char *name, const char *digits)
{
	const char *d = digits;

	if (d != NULL && *d == '-')
		d++;
	if (digits == NULL || !ctl_is_digits(d))
		cJSON_AddNullToObject(obj, name);
	else
		cJSON_AddRawToObject(obj, name, digits);
}

/* Adds a boolean member from "t"/"f". */
void
ctl_json_bool(cJSON *obj, const char *name, const char *pgbool)
{
	if (pgbool == NULL)
		cJSON_AddNullToObject(obj, name);
	else
		cJSON_AddBoolToObject(obj, name, strcmp(pgbool, "t") == 0);
}

/* Prints root formatted with a newline and frees it. */
int
ctl_json_print(cJSON *root)
{
	char *text;

	if (root == NULL)
		return ctl_oom();
	text = cJSON_Print(root);
	cJSON_Delete(root);
	if (text == NULL)
		return ctl_oom();
	puts(text);
	cJSON_free(text);
	return 0;
}

/* One row as a JSON object of the members. */
cJSON *
ctl_row_json(const PGresult *res, int row, const struct ctl_member *m)
{
	cJSON *o = cJSON_CreateObject();
	char buf[128];

	for (; o != NULL && m->name != NULL; m++) {
		const char *v = m->fmt != NULL ? m->fmt(res, row, m->col, buf,
							sizeof(buf))
					       : ctl_val(res, row, m->col);
		cJSON *j;

		switch (m->kind) {
		case CTL_STR:
			ctl_json_str(o, m->name, v);
			break;
		case CTL_INT:
			ctl_json_int(o, m->name, v);
			break;
		case CTL_BOOL:
			ctl_json_bool(o, m->name, v);
			break;
		case CTL_JSON:
			j = v != NULL ? cJSON_Parse(v) : cJSON_CreateNull();
			if (j != NULL)
				cJSON_AddItemToObject(o, m->name, j);
			break;
		}
	}
	return o;
}

/* Prints the rows as a table. 0, or -1 when out of memory. */
static int
print_table(const PGresult *res, const struct ctl_cell *cells)
{
	const char *head[32], *row[32];
	char right[33] = "", bufs[32][128];
	struct ctl_table *t;
	int n = 0;

	for (; cells[n].head != NULL && n < 32; n++) {
		head[n] = cells[n].head;
		if (cells[n].right)
			right[strlen(right)] = (char)('0' + n);
	}
	t = ctl_table_new(n, head, right);
	for (int r = 0; r < PQntuples(res); r++) {
		for (int i = 0; i < n; i++) {
			const struct ctl_cell *c = &cells[i];
			row[i] = c->fmt != NULL
					 ? c->fmt(res, r, c->col, bufs[i],
						  sizeof(bufs[i]))
					 : ctl_val(res, r, c->col);
			if (row[i] == NULL && c->null != NULL)
				row[i] = c->null;
		}
		ctl_table_add(t, row);
	}
	return ctl_table_print(t);
}

/* Prints every row: a table, or a JSON array. */
int
ctl_print_rows(struct ctl *ctl, const PGresult *res, const struct ctl_view *v)
{
	cJSON *arr;

	if (ctl->json) {
		arr = cJSON_CreateArray();
		for (int i = 0; arr != NULL && i < PQntuples(res); i++)
			cJSON_AddItemToArray(arr,
					     ctl_row_json(res, i, v->members));
		return ctl_json_print(arr);
	}
	return print_table(res, v->cells) < 0 ? ctl_oom() : 0;
}

/* Runs a list verb's query and prints its rows. */
int
ctl_list(struct ctl *ctl, const char *what, const char *sql, int nparams,
	 const char *const *params, const struct ctl_view *v)
{
	PGresult *res;
	int rc;

	if (ctl_connect(ctl) < 0)
		return CTL_EXIT_FAIL;
	res = ctl_query(ctl, what, sql, nparams, params);
	if (res == NULL)
		return CTL_EXIT_FAIL;
	rc = ctl_print_rows(ctl, res, v);
	PQclear(res);
	return rc;
}

/* Every verb, by family in the order the usage text lists them. */
static const struct ctl_cmd *const commands[] = {
	&ctl_db_migrate_cmd,    &ctl_tenant_add_cmd,     &ctl_tenant_list_cmd,
	&ctl_tenant_show_cmd,   &ctl_tenant_disable_cmd, &ctl_tenant_enable_cmd,
	&ctl_tenant_rename_cmd, &ctl_tenant_bind_cmd,    &ctl_tenant_unbind_cmd,
	&ctl_key_issue_cmd,     &ctl_key_list_cmd,       &ctl_key_revoke_cmd,
	&ctl_usage_cmd,         &ctl_usage_import_cmd,   &ctl_price_set_cmd,
	&ctl_price_list_cmd,    &ctl_fx_set_cmd,         &ctl_fx_list_cmd,
	&ctl_promo_add_cmd,     &ctl_promo_list_cmd,     &ctl_promo_end_cmd,
	&ctl_bill_cmd,          &ctl_bill_close_cmd,     &ctl_quota_set_cmd,
	&ctl_quota_list_cmd,    &ctl_quota_clear_cmd,    &ctl_limit_set_cmd,
	&ctl_limit_list_cmd,    &ctl_limit_clear_cmd,    &ctl_audit_cmd,
};

#define NCOMMANDS ((int)(sizeof(commands) / sizeof(commands[0])))

/* One word of a verb's option string (ctl.h). */
struct opt_word {
	char name[32];
	int alias;        /* its one letter, or 0 */
	int has_arg;      /* no_argument or required_argument */
	int required;     /* "name!" */
	const char *meta; /* what its value is, metalen bytes */
	int metalen;
};

/* Reads the next word of *spec into w and moves *spec past it. 1, or 0
 * at the end. */
static int
next_opt(const char **spec, struct opt_word *w)
{
	const char *s = *spec + strspn(*spec, " ");
	size_t len = strcspn(s, " "), n;

	if (len == 0)
		return 0;
	*spec = s + len;
	memset(w, 0, sizeof(*w));
	if (len > 2 && s[1] == '|') {
		w->alias = (unsigned char)s[0];
		s += 2;
		len -= 2;
	}
	for (n = 0; n < len && s[n] != '=' && s[n] != '!'; n++)
		;
	snprintf(w->name, sizeof(w->name), "%.*s", (int)n, s);
	if (n < len) {
		w->has_arg = required_argument;
		w->required = s[n] == '!';
		w->meta = s + n + 1;
		w->metalen = (int)(len - n - 1);
	}
	return 1;
}

/* The value of a verb's option, or NULL. */
const char *
ctl_arg(const struct ctl_args *a, const char *name)
{
	const char *spec = a->cmd->opts != NULL ? a->cmd->opts : "";
	struct opt_word w;

	for (int i = 0; next_opt(&spec, &w); i++)
		if (strcmp(w.name, name) == 0)
			return a->val[i];
	return NULL;
}

/* The verb as messages name it. */
const char *
ctl_verb(const struct ctl_args *a)
{
	static char buf[64];

	if (a->cmd->name == NULL)
		return a->cmd->family;
	snprintf(buf, sizeof(buf), "%s %s", a->cmd->family, a->cmd->name);
	return buf;
}

/* Checks the positional arguments and the required options. 0, or
 * CTL_EXIT_USAGE after reporting. */
static int
check_args(const struct ctl_args *a)
{
	const struct ctl_cmd *cmd = a->cmd;
	const char *spec = cmd->opts != NULL ? cmd->opts : "";
	struct opt_word w;

	if ((a->argc < cmd->min_args || a->argc > cmd->max_args) &&
	    cmd->arg_error != NULL) {
		ctl_err("%s: %s", ctl_verb(a), cmd->arg_error);
		return CTL_EXIT_USAGE;
	}
	if (a->argc < cmd->min_args) {
		ctl_err("%s: missing %s", ctl_verb(a), cmd->arg_name);
		return CTL_EXIT_USAGE;
	}
	if (a->argc > cmd->max_args) {
		ctl_err("%s: unexpected argument '%s'", ctl_verb(a),
			a->argv[cmd->max_args]);
		return CTL_EXIT_USAGE;
	}
	for (int i = 0; next_opt(&spec, &w); i++)
		if (w.required && a->val[i] == NULL) {
			ctl_err("%s: --%s%s%.*s is required", ctl_verb(a),
				w.name, w.metalen > 0 ? " " : "", w.metalen,
				w.meta);
			return CTL_EXIT_USAGE;
		}
	return 0;
}

/* Parses a verb's command line (argv[0] is its last word) and runs it. */
static int
run_cmd(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	const char *spec = cmd->opts != NULL ? cmd->opts : "";
	struct opt_word w[CTL_MAX_OPTS];
	struct option longopts[CTL_MAX_OPTS];
	char shortopts[CTL_MAX_OPTS * 2 + 1], *sp = shortopts;
	struct ctl_args a;
	int n = 0, c;

	memset(&a, 0, sizeof(a));
	a.cmd = cmd;
	for (; n < CTL_MAX_OPTS - 1 && next_opt(&spec, &w[n]); n++) {
		longopts[n] = (struct option){ w[n].name, w[n].has_arg, NULL,
					       w[n].alias != 0 ? w[n].alias
							       : OPT_VERB + n };
		if (w[n].alias != 0) {
			*sp++ = (char)w[n].alias;
			if (w[n].has_arg == required_argument)
				*sp++ = ':';
		}
	}
	memset(&longopts[n], 0, sizeof(longopts[n]));
	*sp = '\0';
	while ((c = ctl_getopt(ctl, argc, argv, shortopts, longopts)) != -1) {
		int i;
		if (c == 'h')
			return ctl_help(cmd->usage);
		for (i = 0; i < n && longopts[i].val != c; i++)
			;
		if (i == n)
			return CTL_EXIT_USAGE;
		a.val[i] =
			longopts[i].has_arg == required_argument ? optarg : "";
	}
	a.argc = argc - optind;
	a.argv = argv + optind;
	if ((c = check_args(&a)) != 0)
		return c;
	snprintf(ctl->action, sizeof(ctl->action), "%s", ctl_verb(&a));
	return cmd->run(ctl, &a);
}

/* Lists the verbs of a family, "set, list, clear", into buf. */
static void
family_verbs(const char *family, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->family, family) == 0 &&
		    commands[i]->name != NULL)
			len += (size_t)snprintf(buf + len, size - len, "%s%s",
						len > 0 ? ", " : "",
						commands[i]->name);
}

/* Runs the verb of a family that argv[1] names, or the family's own verb
 * when it has one and argv[1] names none. */
static int
dispatch(struct ctl *ctl, int argc, char **argv)
{
	const char *family = argv[0], *verb = argc > 1 ? argv[1] : NULL;
	const struct ctl_cmd *own = NULL, *any = NULL;
	char names[256];

	for (int i = 0; i < NCOMMANDS; i++) {
		const struct ctl_cmd *cmd = commands[i];
		if (strcmp(cmd->family, family) != 0)
			continue;
		any = cmd;
		if (cmd->name == NULL)
			own = cmd;
		else if (verb != NULL && strcmp(verb, cmd->name) == 0)
			return run_cmd(ctl, cmd, argc - 1, argv + 1);
	}
	if (any == NULL) {
		if (strcmp(family, "help") == 0)
			return ctl_help(usage_text);
		ctl_err("unknown verb '%s' (try 'tollctl --help')", family);
		return CTL_EXIT_USAGE;
	}
	if (own != NULL)
		return run_cmd(ctl, own, argc, argv);
	if (verb != NULL &&
	    (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0))
		return ctl_help(any->usage);
	family_verbs(family, names, sizeof(names));
	if (verb == NULL)
		ctl_err("%s: missing verb (%s)", family, names);
	else
		ctl_err("%s: unknown verb '%s' (%s)", family, verb, names);
	return CTL_EXIT_USAGE;
}

/* Parses the global options and runs the verb. */
int
main(int argc, char **argv)
{
	static const struct option none[] = { { NULL, 0, NULL, 0 } };
	struct ctl ctl;
	int c, rc;

	memset(&ctl, 0, sizeof(ctl));
	/* "+": the first non-option is the verb; its options are its own. */
	while ((c = ctl_getopt(&ctl, argc, argv, "+", none)) != -1) {
		if (c == 'h')
			return ctl_help(usage_text);
		return CTL_EXIT_USAGE;
	}
	if (optind >= argc) {
		ctl_err("no verb given (try 'tollctl --help')");
		return CTL_EXIT_USAGE;
	}
	rc = dispatch(&ctl, argc - optind, argv + optind);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_err("cannot write output: %s", strerror(errno));
		rc = CTL_EXIT_FAIL;
	}
	if (ctl.conn != NULL)
		PQfinish(ctl.conn);
	if (ctl.secret != NULL) {
		explicit_bzero(ctl.secret, strlen(ctl.secret));
		free(ctl.secret);
	}
	if (ctl.cfg != NULL)
		config_free(ctl.cfg);
	return rc;
}
