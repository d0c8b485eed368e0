/*
 * ctl.h - shared state and helpers of tollctl, the admin CLI.
 *
 * tollctl.c parses the global options, dispatches to one verb family per
 * file (ctl_db.c, ctl_tenant.c, ctl_key.c, ctl_usage.c with ctl_import.c,
 * ctl_price.c for price and fx, ctl_promo.c, ctl_limit.c for quota and
 * limit, ctl_bill.c with ctl_bill_render.c) and owns what they share: the database connection, the key
 * secret, option parsing that also accepts the global options after the
 * verb, error reporting, aligned tables and JSON output. ctl_args.c holds
 * the argument parsing (times, months, currencies, token counts) and the
 * tenant lookup that the billing verbs share.
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
#define CTL_TS(col) \
	"to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

struct config;

struct ctl {
	const char *database;    /* --database, borrowed from argv */
	const char *config_path; /* -c, borrowed from argv */
	int json;                /* --json */
	struct config *cfg;      /* loaded on demand, owned */
	PGconn *conn;            /* opened on demand, owned */
	char *secret;            /* key secret, resolved on demand, owned */
	/* Merged option table of the verb being parsed. */
	struct option opts[CTL_MAX_OPTS];
	char shortopts[64];
};

/* Prints "tollctl: " and the formatted message on one line to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints help text to stdout and returns 0, for "VERB --help". */
int ctl_help(const char *text);

/* A verb of a family ("tenant add"): its word and what runs it, given
 * argv from the verb word on. */
struct ctl_verb {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv);
};

/* Runs the verb argv[1] names from verbs (ended by a NULL name) with
 * argv[1..]; "--help" prints usage; a missing or unknown verb is a usage
 * error naming the family's verbs. */
int ctl_dispatch(struct ctl *ctl, const char *family,
		 const struct ctl_verb *verbs, const char *usage, int argc,
		 char **argv);

/* getopt_long over argv (argv[0] is the verb word) with the verb's own
 * options plus --json, --database, -c/--config and -h/--help, which it
 * handles itself except for 'h', returned for the caller to print help.
 * Reports unknown options and missing values and returns '?'. Permutes,
 * so options may follow positional arguments; after -1, optind indexes
 * the first positional argument. */
int ctl_getopt(struct ctl *ctl, int argc, char **argv, const char *shortopts,
	       const struct option *longopts);

/* Connects if not yet connected: --database, TOLLGATE_DATABASE, the
 * config file's database, else libpq defaults. 0, or -1 after reporting. */
int ctl_connect(struct ctl *ctl) __attribute__((warn_unused_result));

/* The key secret the gateway hashes keys with (borrowed, owned by ctl),
 * or NULL after reporting an error. */
const char *ctl_secret(struct ctl *ctl);

/* Runs sql with text parameters (NULL for SQL NULL) on the connection and
 * returns the result if its status is PGRES_TUPLES_OK or PGRES_COMMAND_OK;
 * else reports "what: server message" and returns NULL. Caller PQclear()s. */
PGresult *ctl_query(struct ctl *ctl, const char *what, const char *sql,
		    int nparams, const char *const *params);

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
 * are right-aligned as a string of '0'+i characters ("" for none). */
struct ctl_table *ctl_table_new(int ncols, const char *const *headers,
				const char *right);

/* Appends a row; cells are copied; a NULL cell prints as "-". 0 or -1. */
int ctl_table_add(struct ctl_table *t, const char *const *cells)
	__attribute__((warn_unused_result));

/* Writes the table to stdout with columns aligned. */
void ctl_table_print(const struct ctl_table *t);

void ctl_table_free(struct ctl_table *t);

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
int ctl_tenant_lookup(struct ctl *ctl, const char *name, int64_t *id,
		      char *tz, size_t tzsize);

/* Verb families; argv[0] is the family word ("tenant"). Each returns the
 * process exit status. */
int ctl_db_main(struct ctl *ctl, int argc, char **argv);
int ctl_tenant_main(struct ctl *ctl, int argc, char **argv);
int ctl_key_main(struct ctl *ctl, int argc, char **argv);
int ctl_usage_main(struct ctl *ctl, int argc, char **argv);
/* tollctl usage import (ctl_import.c). */
int ctl_usage_import(struct ctl *ctl, int argc, char **argv);
int ctl_price_main(struct ctl *ctl, int argc, char **argv);
int ctl_fx_main(struct ctl *ctl, int argc, char **argv);
int ctl_promo_main(struct ctl *ctl, int argc, char **argv);
int ctl_bill_main(struct ctl *ctl, int argc, char **argv);
/* tollctl quota and tollctl limit (ctl_limit.c). */
int ctl_quota_main(struct ctl *ctl, int argc, char **argv);
int ctl_limit_main(struct ctl *ctl, int argc, char **argv);

#endif
