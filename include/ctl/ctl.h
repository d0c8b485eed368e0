/*
 * ctl.h - shared state and helpers of tollctl, the admin CLI.
 *
 * Every verb is declared once, beside its handler, as a struct ctl_cmd:
 * its family and name, usage text, options, required options and
 * positional arguments (tmux declares its commands the same way).
 * tollctl.c lists them, dispatches, parses each command line generically
 * and runs the handler with the parsed arguments; it also owns what the
 * verbs share: the database connection, the key secret, error reporting,
 * aligned tables and JSON output, and list verbs described as a query and
 * a view (the columns of the table and the members of the JSON).
 * ctl_args.c parses times, months, currencies and counts; ctl_scope.c
 * resolves a tenant and one of its keys for quotas and rate limits. The
 * verb families live one per file: ctl_db.c, ctl_tenant.c, ctl_key.c,
 * ctl_usage.c with ctl_import.c, ctl_price.c (price and fx),
 * ctl_promo.c, ctl_quota.c, ctl_limit.c, ctl_bill.c with
 * ctl_bill_render.c, ctl_audit.c.
 *
 * Errors are one line "tollctl: reason" on stderr. A verb returns its exit
 * status: 0, CTL_EXIT_USAGE for a bad command line, CTL_EXIT_FAIL for a
 * database or runtime failure.
 */
#ifndef TOLLGATE_CTL_H
#define TOLLGATE_CTL_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <cjson/cJSON.h>

#include "clock.h"

#define CTL_EXIT_USAGE 1
#define CTL_EXIT_FAIL  2

#define CTL_MAX_OPTS 24

/* A timestamptz column as ISO 8601 text in UTC, for SELECT lists. */
#define CTL_TS(col)                                                            \
	"to_char(" col " AT TIME ZONE 'UTC', "                                 \
	"'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

struct config;

struct ctl {
	const char *database;    /* --database, borrowed from argv */
	const char *config_path; /* -c, borrowed from argv */
	int json;                /* --json */
	struct config *cfg;      /* loaded on demand, owned */
	PGconn *conn;            /* opened on demand, owned */
	char *secret;            /* key secret, resolved on demand, owned */
	char action[64];         /* the verb run (ctl_verb), for the audit */
	/* Merged option table of the verb being parsed. */
	struct option opts[CTL_MAX_OPTS];
	char shortopts[64];
};

/* Prints "tollctl: " and the formatted message on one line to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports that memory ran out; returns CTL_EXIT_FAIL. */
int ctl_oom(void);

/* Prints help text to stdout and returns 0, for "VERB --help". */
int ctl_help(const char *text);

struct ctl_cmd;

/* What the command line gave a verb: each option's value ("" for a flag
 * given, NULL for an option not given) in the order of its command's
 * opts, then the positional arguments. */
struct ctl_args {
	const struct ctl_cmd *cmd;
	const char *val[CTL_MAX_OPTS];
	int argc;
	char **argv;
};

/* A verb, declared once beside its handler and listed in the table of
 * tollctl.c, as tmux declares its commands. Parsing is generic: the
 * options (and the common ones), "--help" printing usage, then the count
 * of positional arguments (too many: "VERB: unexpected argument 'X'";
 * too few: "VERB: missing ARG_NAME", or ARG_ERROR for any wrong count),
 * then the required options, in the order listed ("VERB: --OPT is
 * required"). The handler runs only on a command line that passed.
 *
 * opts lists the options in one string, as getopt's does, a word each:
 * "tenant" is a flag, "tenant=" takes a value, "tenant!" takes a value
 * and is required, maybe followed by what the value is ("month!YYYY-MM"
 * is reported as "--month YYYY-MM is required"); "t|tenant=" also answers
 * to -t. */
struct ctl_cmd {
	const char *family;     /* "quota" */
	const char *name;       /* "set"; NULL: the family's own verb
				   ("tollctl usage --tenant T") */
	const char *usage;      /* what --help prints */
	const char *opts;       /* the options, see above; NULL: none */
	int min_args, max_args; /* positional arguments */
	const char *arg_name;   /* what a missing argument is called */
	const char *arg_error;  /* a wrong count's message, if any */
	int (*run)(struct ctl *ctl, const struct ctl_args *a);
};

/* The value of a verb's option (borrowed from argv, "" for a flag), or
 * NULL when not given. */
const char *ctl_arg(const struct ctl_args *a, const char *name);

/* The verb as messages name it: "quota set", or "usage". */
const char *ctl_verb(const struct ctl_args *a);

/* How a list verb shows its rows (ctl_print_rows). A table cell and a
 * JSON member each read one result column; fmt, when set, turns the row
 * into the text shown (returning buf, or NULL for none). */
struct ctl_cell {
	const char *head; /* column header; NULL ends a list */
	int col;
	int right;        /* right-aligned */
	const char *null; /* shown for SQL NULL; NULL: "-" */
	const char *(*fmt)(const PGresult *res, int row, int col, char *buf,
			   size_t size);
};

enum ctl_kind {
	CTL_STR,  /* a string (fmt may rewrite it) */
	CTL_INT,  /* an integer, from its digits */
	CTL_BOOL, /* from "t"/"f" */
	CTL_JSON, /* JSON text, embedded as is */
};

struct ctl_member {
	const char *name; /* JSON member; NULL ends a list */
	int col;
	enum ctl_kind kind;
	const char *(*fmt)(const PGresult *res, int row, int col, char *buf,
			   size_t size);
};

struct ctl_view {
	const struct ctl_cell *cells;     /* the table */
	const struct ctl_member *members; /* each row's JSON object */
};

/* One row as a JSON object of the members; NULL when out of memory. */
cJSON *ctl_row_json(const PGresult *res, int row,
		    const struct ctl_member *members);

/* Prints every row of res: an aligned table, or with --json an array of
 * objects. 0, or CTL_EXIT_FAIL after reporting. */
int ctl_print_rows(struct ctl *ctl, const PGresult *res,
		   const struct ctl_view *v);

/* A list verb's body: runs sql with params (what names it in errors) and
 * prints the rows. 0 or CTL_EXIT_FAIL. */
int ctl_list(struct ctl *ctl, const char *what, const char *sql, int nparams,
	     const char *const *params, const struct ctl_view *v);

/* getopt_long over argv (argv[0] is the verb word) with the verb's own
 * options plus --json, --database, -c/--config and -h/--help, which it
 * handles itself except for 'h', returned for the caller to print help.
 * Reports unknown options and missing values and returns '?'. Permutes,
 * so options may follow positional arguments; after -1, optind indexes
 * the first positional argument. */
int ctl_getopt(struct ctl *ctl, int argc, char **argv, const char *shortopts,
	       const struct option *longopts);

/* Connects if not yet connected: --database, TOLLGATE_DATABASE, the
 * config file's database, else libpq defaults. The session runs in UTC
 * and names the actor ($TOLLGATE_ACTOR, else "tollctl:" and the login
 * name) and the verb run (tollgate.actor and tollgate.action, which the
 * audit triggers record). 0, or -1 after reporting. */
int ctl_connect(struct ctl *ctl) __attribute__((warn_unused_result));

/* The key secret the gateway hashes keys with (borrowed, owned by ctl),
 * or NULL after reporting an error. */
const char *ctl_secret(struct ctl *ctl);

/* Runs sql with text parameters (NULL for SQL NULL) on the connection and
 * returns the result if its status is PGRES_TUPLES_OK or PGRES_COMMAND_OK;
 * else reports "what: server message" and returns NULL. Caller PQclear()s. */
PGresult *ctl_query(struct ctl *ctl, const char *what, const char *sql,
		    int nparams, const char *const *params);

/* ctl_query for a statement about the thing named by params[0]: when it
 * returns no row, reports "no NOUN named 'NAME'" and returns NULL. */
PGresult *ctl_query_named(struct ctl *ctl, const char *what, const char *noun,
			  const char *sql, int nparams,
			  const char *const *params);

/* Runs a parameterless command such as BEGIN; 0, or -1 after reporting. */
int ctl_exec(struct ctl *ctl, const char *sql);

/* The SQLSTATE of a failed result, or "" (borrowed from res). */
const char *ctl_sqlstate(const PGresult *res);

/* The result's primary error message on one line, in a static buffer. */
const char *ctl_pg_message(const PGresult *res);

/* Like ctl_query() but unreported: returns failed results too, for
 * callers that map a SQLSTATE to a message. NULL only when out of memory.
 * Caller PQclear()s. */
PGresult *ctl_query_raw(struct ctl *ctl, const char *sql, int nparams,
			const char *const *params);

/* Whether res is non-NULL and succeeded (tuples or command). */
int ctl_result_ok(const PGresult *res);

/* Column value or NULL for SQL NULL (borrowed from res). */
const char *ctl_val(const PGresult *res, int row, int col);

/* Whether s is a non-empty string of decimal digits. */
int ctl_is_digits(const char *s);

/* An aligned text table: headers, then rows of cells, then print. */
struct ctl_table;

/* Creates a table with ncols columns; right lists the 0-based columns that
 * are right-aligned as a string of '0'+i characters ("" for none). NULL
 * when memory ran out, which ctl_table_add and ctl_table_print take. */
struct ctl_table *ctl_table_new(int ncols, const char *const *headers,
				const char *right);

/* Appends a row; cells are copied; a NULL cell prints as "-". A row that
 * cannot be stored (memory ran out, or t is NULL) fails the table, and
 * ctl_table_print then returns -1: callers add rows without checking. */
void ctl_table_add(struct ctl_table *t, const char *const *cells);

/* Writes the table to stdout with columns aligned and frees it. 0, or -1
 * with nothing printed when a row could not be stored. */
int ctl_table_print(struct ctl_table *t);

/* Adds a string member, or JSON null when s is NULL. */
void ctl_json_str(cJSON *obj, const char *name, const char *s);

/* Adds an integer member from PostgreSQL's decimal text exactly (no
 * double round trip), or JSON null when digits is NULL. */
void ctl_json_int(cJSON *obj, const char *name, const char *digits);

/* Adds a boolean member from PostgreSQL's "t"/"f". */
void ctl_json_bool(cJSON *obj, const char *name, const char *pgbool);

/* Prints root formatted with a newline and frees it. 0, or CTL_EXIT_FAIL
 * when root is NULL or printing fails (out of memory). */
int ctl_json_print(cJSON *root);

/* Argument parsing and lookups of the billing verbs (ctl_args.c). */

/* A resolved time: microseconds since the epoch, and the same as
 * timestamptz text in UTC for query parameters. */
struct ctl_time {
	int64_t us;
	char text[CLOCK_TEXT_MAX];
};

/* Parses "YYYY-MM-DD" (*date_only = 1, *us its midnight in UTC) or an RFC
 * 3339 timestamp "YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)" (at most
 * six decimals). 0, or -1 when s is neither or not a real date. */
int ctl_parse_time(const char *s, int *date_only, int64_t *us);

/* Checks arg with ctl_parse_time(); 0, or -1 after reporting an invalid
 * option opt ("--from"). Needs no database. */
int ctl_check_time(const char *opt, const char *arg);

/* Resolves a checked time: a date is midnight in time zone tz (NULL or
 * "UTC" for UTC; another zone asks the database). 0, or -1 after
 * reporting. */
int ctl_resolve_time(struct ctl *ctl, const char *arg, const char *tz,
		     struct ctl_time *out);

/* Whether s is "YYYY-MM" with a month from 01 to 12. */
int ctl_valid_month(const char *s);

/* Whether s is three capital letters, the form of a currency code. */
int ctl_valid_currency(const char *s);

/* Parses a positive or zero token count, "50M", "200k", "1.5M", "7",
 * exactly: k, M and G multiply by 1e3, 1e6 and 1e9, and a decimal is
 * accepted only when the result is whole. 0, or -1 with *cause set to a
 * static message. */
int ctl_parse_count(const char *s, int64_t *n, const char **cause);

/* Looks up a tenant by name: its id and, when tz is not NULL, its time
 * zone. 0, or -1 after reporting (also when there is no such tenant). */
int ctl_tenant_lookup(struct ctl *ctl, const char *name, int64_t *id, char *tz,
		      size_t tzsize);

/* An optional --tenant and an optional time, resolved as query
 * parameters. */
struct ctl_tenant_time {
	const char *tenant_id; /* the tenant's id (id), or NULL for none */
	const char *time;      /* the time (when.text), or NULL for none */
	char id[24];
	struct ctl_time when;
};

/* Looks up tenant (NULL: none) and resolves time (NULL: none), checked
 * with ctl_check_time(): a date is midnight in the tenant's time zone,
 * else in UTC. The connection must be open. 0, or -1 after reporting. */
int ctl_tenant_time(struct ctl *ctl, const char *tenant, const char *time,
		    struct ctl_tenant_time *out);

/* Whether s is given but empty or only blanks. */
int ctl_blank(const char *s);

/* Longest numeric id accepted (fits a bigint). */
#define CTL_ID_MAX_DIGITS 18

/* Whether s is a numeric id that fits a bigint. */
int ctl_valid_id(const char *s);

/* Parses a count option (ctl_parse_count) above zero and at most max into
 * decimal text in buf. 0, or -1 after reporting "invalid OPT 'ARG'". */
int ctl_parse_positive(const char *opt, const char *arg, int64_t max, char *buf,
		       size_t size);

/* Where a quota or rate limit applies (ctl_scope.c): a tenant, maybe one
 * of its keys. */
struct ctl_scope {
	const char *tenant; /* name, borrowed from argv */
	char tenant_id[24];
	char key_id[24]; /* "" for the whole tenant */
	char prefix[24]; /* the key's prefix, "" for the tenant */
};

/* Shortest key prefix accepted as --key (as key revoke accepts). */
#define CTL_KEY_MIN_PREFIX 4

/* The joins a quota or rate limit row set src (as alias) needs for its
 * tenant (t) and key (k). */
#define SCOPE_FROM(src, alias)                                                 \
	" FROM " src " " alias " JOIN tenants t ON t.id = " alias              \
	".tenant_id LEFT JOIN api_keys k ON k.id = " alias ".key_id"

/* Resolves --tenant and --key (NULL for the whole tenant) into s; the
 * connection must be open. 0, or -1 after reporting. */
int ctl_scope_find(struct ctl *ctl, const char *tenant, const char *key,
		   struct ctl_scope *s);

/* Connects and resolves an optional --tenant filter of a list: *param is
 * the tenant id as a query parameter, or NULL for every tenant. 0, or -1
 * after reporting. */
int ctl_scope_filter(struct ctl *ctl, const char *tenant, struct ctl_scope *s,
		     const char **param);

/* The scope's key id as a query parameter: NULL for the whole tenant. */
const char *ctl_scope_key(const struct ctl_scope *s);

/* Checks the syntax of --key: an id, a well-formed key or a prefix of at
 * least CTL_KEY_MIN_PREFIX characters. 0, or -1 after reporting. */
int ctl_check_key_arg(const char *key);

/* Appends printf-formatted text to the string in buf of size bytes. */
void ctl_append(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Adds "replaced" (whether the row existed) to a set verb's JSON object,
 * and "previous": null when nothing was replaced. Returns the object to
 * fill with the replaced values, or NULL when nothing was replaced or
 * memory ran out. */
cJSON *ctl_set_json(cJSON *o, const char *replaced);

/* The verbs (tollctl.c lists them). */
extern const struct ctl_cmd ctl_db_migrate_cmd;
extern const struct ctl_cmd ctl_tenant_add_cmd, ctl_tenant_list_cmd,
	ctl_tenant_show_cmd, ctl_tenant_disable_cmd, ctl_tenant_enable_cmd,
	ctl_tenant_bind_cmd, ctl_tenant_unbind_cmd, ctl_tenant_rename_cmd;
extern const struct ctl_cmd ctl_key_issue_cmd, ctl_key_list_cmd,
	ctl_key_revoke_cmd;
extern const struct ctl_cmd ctl_usage_cmd, ctl_usage_import_cmd;
extern const struct ctl_cmd ctl_price_set_cmd, ctl_price_list_cmd;
extern const struct ctl_cmd ctl_fx_set_cmd, ctl_fx_list_cmd;
extern const struct ctl_cmd ctl_promo_add_cmd, ctl_promo_list_cmd,
	ctl_promo_end_cmd;
extern const struct ctl_cmd ctl_bill_cmd, ctl_bill_close_cmd;
extern const struct ctl_cmd ctl_quota_set_cmd, ctl_quota_list_cmd,
	ctl_quota_clear_cmd;
extern const struct ctl_cmd ctl_limit_set_cmd, ctl_limit_list_cmd,
	ctl_limit_clear_cmd;
extern const struct ctl_cmd ctl_audit_cmd;

#endif
