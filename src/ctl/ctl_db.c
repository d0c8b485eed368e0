/*
 * ctl_db.c - tollctl db migrate: apply sql/NNN_*.sql in numeric order.
 *
 * Principle: each file runs in its own transaction together with the row
 * that records it in schema_migrations, so a file is either applied and
 * recorded or neither. Every transaction first takes one advisory lock and
 * re-reads schema_migrations under it, so two concurrent migrates queue up
 * and the second finds the work done. Files are run with PQexec, which
 * accepts several statements and plpgsql bodies; they must not contain
 * transaction control of their own.
 *
 * After the migrations, the usage partitions for this month and the next
 * are created if missing, so a monthly "db migrate" keeps them ahead.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl.h"

#ifndef TOLLGATE_SQLDIR
#define TOLLGATE_SQLDIR "/usr/local/share/tollgate/sql"
#endif
#ifndef TOLLGATE_SRC_SQLDIR
#define TOLLGATE_SRC_SQLDIR "sql"
#endif

/* "tollgate" in ASCII: the advisory lock all migrates share. */
#define MIGRATE_LOCK "8389754676633104485"

#define MAX_MIGRATIONS 1000

static const char db_usage[] =
	"usage: tollctl db migrate [--sql-dir DIR]\n"
	"\n"
	"Applies the migration files DIR/NNN_*.sql in numeric order, each in\n"
	"its own transaction, and records them in schema_migrations. Running\n"
	"it again applies only new files. DIR is --sql-dir, else\n"
	"$TOLLGATE_SQL_DIR, else the installed " TOLLGATE_SQLDIR ".\n";

struct migration {
	int version;
	char *name; /* file name, owned */
};

static const char sql_lock[] = "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")";

static const char sql_create[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	" version int PRIMARY KEY, name text,"
	" applied_at timestamptz DEFAULT now())";

/* Whether path names an existing directory. */
static int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory holding the migration files. */
static const char *
sql_dir(const char *option)
{
	const char *env = getenv("TOLLGATE_SQL_DIR");

	if (option != NULL)
		return option;
	if (env != NULL && *env != '\0')
		return env;
	if (is_dir(TOLLGATE_SQLDIR))
		return TOLLGATE_SQLDIR;
	return TOLLGATE_SRC_SQLDIR;
}

/* The version of a migration file name "NNN_word.sql", or -1. */
static int
file_version(const char *name)
{
	size_t len = strlen(name);
	const char *p = name;
	long v = 0;

	if (len < 6 || strcmp(name + len - 4, ".sql") != 0)
		return -1;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > 1000000)
			return -1;
	}
	return *p == '_' ? (int)v : -1;
}

/* Orders migrations by version. */
static int
cmp_migration(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

/* Frees the names of the first n migrations. */
static void
free_migrations(struct migration *m, int n)
{
	while (n-- > 0)
		free(m[n].name);
}

/* Lists dir's migration files into m sorted by version; the count, or -1
 * after reporting (unreadable dir, duplicate version, too many files). */
static int
list_migrations(const char *dir, struct migration *m)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0, i, v;

	if (d == NULL) {
		ctl_err("cannot open %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if ((v = file_version(e->d_name)) < 0)
			continue;
		if (n == MAX_MIGRATIONS) {
			ctl_err("%s: too many migration files", dir);
			goto fail;
		}
		m[n].version = v;
		m[n].name = strdup(e->d_name);
		if (m[n].name == NULL) {
			ctl_err("out of memory");
			goto fail;
		}
		n++;
	}
	closedir(d);
	d = NULL;
	qsort(m, n, sizeof(*m), cmp_migration);
	for (i = 1; i < n; i++)
		if (m[i].version == m[i - 1].version) {
			ctl_err("%s: %s and %s have the same number", dir,
				m[i - 1].name, m[i].name);
			goto fail;
		}
	return n;
fail:
	if (d != NULL)
		closedir(d);
	free_migrations(m, n);
	return -1;
}

/* Reads a whole file as a NUL-terminated string; caller frees. NULL after
 * reporting. */
static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *grown;
	size_t len = 0, cap = 0, got;

	if (f == NULL) {
		ctl_err("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			cap = cap == 0 ? 16384 : cap * 2;
			grown = realloc(buf, cap);
			if (grown == NULL) {
				ctl_err("out of memory");
				goto fail;
			}
			buf = grown;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		ctl_err("cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		ctl_err("%s: contains a NUL byte", path);
		goto fail;
	}
	fclose(f);
	return buf;
fail:
	free(buf);
	fclose(f);
	return NULL;
}

/* Starts a transaction holding the migration lock, with the ledger table
 * present. 0, or -1 after reporting (no transaction left open). */
static int
begin_locked(struct ctl *ctl)
{
	if (ctl_exec(ctl, "BEGIN") < 0)
		return -1;
	if (ctl_exec(ctl, sql_lock) < 0 || ctl_exec(ctl, sql_create) < 0) {
		PQclear(PQexec(ctl->conn, "ROLLBACK"));
		return -1;
	}
	return 0;
}

/* Applies m in one locked transaction unless already recorded. 1 when
 * applied, 0 when it already was, -1 after reporting. */
static int
apply_one(struct ctl *ctl, const char *dir, const struct migration *m)
{
	char version[16], *path = NULL, *sql = NULL;
	const char *params[2] = { version, m->name };
	PGresult *res;
	int done;

	snprintf(version, sizeof(version), "%d", m->version);
	if (begin_locked(ctl) < 0)
		return -1;
	res = ctl_query(ctl, "schema_migrations",
			"SELECT 1 FROM schema_migrations WHERE version = $1", 1,
			params);
	if (res == NULL)
		goto fail;
	done = PQntuples(res) > 0;
	PQclear(res);
	if (done) {
		PQclear(PQexec(ctl->conn, "ROLLBACK"));
		return 0;
	}
	path = malloc(strlen(dir) + strlen(m->name) + 2);
	if (path == NULL) {
		ctl_err("out of memory");
		goto fail;
	}
	sprintf(path, "%s/%s", dir, m->name);
	if ((sql = read_file(path)) == NULL)
		goto fail;
	res = PQexec(ctl->conn, sql);
	if (!ctl_result_ok(res)) {
		ctl_err("%s: %s", m->name, ctl_pg_message(res));
		PQclear(res);
		goto fail;
	}
	PQclear(res);
	if (PQtransactionStatus(ctl->conn) != PQTRANS_INTRANS) {
		ctl_err("%s: must not end the transaction itself", m->name);
		goto fail;
	}
	res = ctl_query(ctl, "schema_migrations",
			"INSERT INTO schema_migrations (version, name) "
			"VALUES ($1, $2)",
			2, params);
	if (res == NULL)
		goto fail;
	PQclear(res);
	if (ctl_exec(ctl, "COMMIT") < 0)
		goto fail;
	if (!ctl->json)
		printf("applied %s\n", m->name);
	free(sql);
	free(path);
	return 1;
fail:
	PQclear(PQexec(ctl->conn, "ROLLBACK"));
	free(sql);
	free(path);
	return -1;
}

/* Creates this month's and next month's usage partitions, when the
 * function for it exists. 0, or -1 after reporting. */
static int
ensure_partitions(struct ctl *ctl)
{
	PGresult *res;
	int present;

	res = ctl_query(ctl, "partitions",
			"SELECT to_regprocedure("
			"'tollgate_usage_partition(timestamptz)') IS NOT NULL",
			0, NULL);
	if (res == NULL)
		return -1;
	present = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!present)
		return 0;
	res = ctl_query(ctl, "usage partitions",
			"SELECT tollgate_usage_partition(now()), "
			"tollgate_usage_partition(now() + interval '1 month')",
			0, NULL);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

/* The highest recorded version as text, or NULL after reporting; the
 * caller PQclear()s *res. */
static const char *
current_version(struct ctl *ctl, PGresult **res)
{
	*res = ctl_query(ctl, "schema_migrations",
			 "SELECT coalesce(max(version), 0)::text "
			 "FROM schema_migrations",
			 0, NULL);
	if (*res == NULL)
		return NULL;
	return PQgetvalue(*res, 0, 0);
}

/* Prints what was applied and the resulting version. */
static int
report(struct ctl *ctl, const struct migration *m, const int *applied, int n,
       int napplied)
{
	PGresult *res;
	const char *version;
	cJSON *root, *list, *item;
	int i;

	if ((version = current_version(ctl, &res)) == NULL)
		return CTL_EXIT_FAIL;
	if (!ctl->json) {
		if (napplied == 0)
			printf("nothing to apply: the database is up to date "
			       "(version %s)\n",
			       version);
		else
			printf("the database is at version %s\n", version);
		PQclear(res);
		return 0;
	}
	root = cJSON_CreateObject();
	list = cJSON_AddArrayToObject(root, "applied");
	for (i = 0; i < n && list != NULL; i++) {
		if (!applied[i])
			continue;
		item = cJSON_CreateObject();
		cJSON_AddNumberToObject(item, "version", m[i].version);
		cJSON_AddStringToObject(item, "name", m[i].name);
		cJSON_AddItemToArray(list, item);
	}
	ctl_json_int(root, "version", version);
	PQclear(res);
	return ctl_json_print(root);
}

/* tollctl db migrate [--sql-dir DIR] */
static int
db_migrate(struct ctl *ctl, const struct ctl_args *a)
{
	static struct migration m[MAX_MIGRATIONS];
	static int applied[MAX_MIGRATIONS];
	const char *dir = sql_dir(ctl_arg(a, "sql-dir"));
	int n, i, r, napplied = 0, rc = CTL_EXIT_FAIL;

	if ((n = list_migrations(dir, m)) < 0)
		return CTL_EXIT_FAIL;
	if (n == 0) {
		ctl_err("%s: no migration files (NNN_name.sql)", dir);
		return CTL_EXIT_FAIL;
	}
	if (ctl_connect(ctl) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((r = apply_one(ctl, dir, &m[i])) < 0)
			goto out;
		applied[i] = r;
		napplied += r;
	}
	if (ensure_partitions(ctl) < 0)
		goto out;
	rc = report(ctl, m, applied, n, napplied);
out:
	free_migrations(m, n);
	return rc;
}

const struct ctl_cmd ctl_db_migrate_cmd = {
	.family = "db",
	.name = "migrate",
	.usage = db_usage,
	.opts = "sql-dir=",
	.run = db_migrate,
};
