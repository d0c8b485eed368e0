/*
 * ctl_import.c - tollctl usage import: usage records from JSON lines into
 * the ledger.
 *
 * Import reads and checks the whole input before writing anything: a file
 * with a bad line writes nothing, and every bad line is reported. Each
 * line is read by ctl_import_parse() (no database: names, types, exact
 * integers, the time), then the tenant and key it names are looked up
 * here. The records are then written by ledger_write(), which prices
 * them, in batches of IMPORT_BATCH, one transaction each. A request id
 * already in the ledger (same id and time) is left alone, so importing the
 * same file again, or again after a failure halfway, writes nothing twice.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_import_parse.h"
#include "ledger.h"
#include "meter.h"
#include "strmap.h"

static const char import_usage[] =
	"usage: tollctl usage import FILE|- [--dry-run]\n"
	"\n"
	"Writes usage records, one JSON object a line, to the ledger, priced\n"
	"as the gateway prices them. Members: request_id and ts (RFC 3339)\n"
	"required; tenant (name), key_id or key (prefix), endpoint (default\n"
	"chat/completions), requested_model, provider, upstream_model,\n"
	"streamed, status (default 200), prompt_tokens, completion_tokens,\n"
	"cached_tokens, cache_write_tokens, reasoning_tokens (default 0),\n"
	"usage_source (reported, estimated or none; default reported when\n"
	"there are tokens), client_aborted, latency_ms, ttfb_ms, error.\n"
	"Integers must be written as integers. The whole input is checked\n"
	"first; if any line is bad, every bad line is reported and nothing is\n"
	"written. Then records are written in batches of 500, one\n"
	"transaction each; records already in the ledger are skipped, so an\n"
	"import can be repeated safely. --dry-run checks without writing.\n";

/* Records per ledger_write() call, and so per transaction. */
#define IMPORT_BATCH 500

/* Bad lines printed before the rest are only counted. */
#define IMPORT_MAX_SHOWN 20

struct import {
	struct ctl *ctl;
	struct strmap strings; /* interned strings */
	struct strmap tenants; /* name -> id (-1 unknown) */
	struct strmap keys;    /* "#id" or prefix -> key id, tenant id */
	struct import_rec *recs;
	size_t n, cap;
	long lines, errors, duplicates;
	int failed; /* a database error or out of memory */
};

/* Reports a bad line; only the first IMPORT_MAX_SHOWN are printed. */
static void bad_line(struct import *im, long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
bad_line(struct import *im, long line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (im->errors++ >= IMPORT_MAX_SHOWN)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_err("usage import: line %ld: %s", line, msg);
}

/* The id of tenant name, from the cache or the database; 0 when there is
 * no such tenant, -1 on a database error (reported). */
static int64_t
lookup_tenant(struct import *im, const char *name)
{
	const char *params[1] = { name };
	int64_t *v = strmap_get(&im->tenants, name);
	PGresult *res;

	if (v != NULL)
		return v[0];
	res = ctl_query(im->ctl, "usage import",
			"SELECT id FROM tenants WHERE name = $1", 1, params);
	if (res == NULL || (v = strmap_add(&im->tenants, name, NULL)) == NULL) {
		PQclear(res);
		return -1;
	}
	v[0] = PQntuples(res) == 0 ? 0
				   : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v[0];
}

/* Looks a key up by "#ID" or prefix; fills v with the key id and tenant
 * id (0 when unknown, -1 when the prefix is ambiguous). 0, or -1 on a
 * database error (reported). */
static int
key_lookup(struct import *im, const char *what, int64_t out[2])
{
	const char *params[1];
	int64_t *v = strmap_get(&im->keys, what);
	char idtext[24];
	PGresult *res;

	if (v == NULL) {
		if (what[0] == '#') {
			snprintf(idtext, sizeof(idtext), "%s", what + 1);
			params[0] = idtext;
			res = ctl_query(im->ctl, "usage import",
					"SELECT id, tenant_id FROM api_keys"
					" WHERE id = $1::bigint",
					1, params);
		} else {
			params[0] = what;
			res = ctl_query(im->ctl, "usage import",
					"SELECT id, tenant_id FROM api_keys"
					" WHERE prefix = $1 LIMIT 2",
					1, params);
		}
		if (res == NULL ||
		    (v = strmap_add(&im->keys, what, NULL)) == NULL) {
			PQclear(res);
			return -1;
		}
		v[0] = v[1] = 0;
		if (PQntuples(res) > 1)
			v[0] = -1;
		else if (PQntuples(res) == 1) {
			v[0] = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			v[1] = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		}
		PQclear(res);
	}
	out[0] = v[0];
	out[1] = v[1];
	return 0;
}

/* Resolves the record's key and tenant. 0, -1 for a bad line (reported),
 * -2 on a database error. */
static int
resolve_owner(struct import *im, struct import_rec *r, const char *tenant,
	      const char *key, int64_t key_id)
{
	char what[32];
	int64_t k[2] = { 0, 0 }, kp[2];

	if (key_id != 0) {
		snprintf(what, sizeof(what), "#%" PRId64, key_id);
		if (key_lookup(im, what, k) < 0)
			return -2;
		if (k[0] == 0) {
			bad_line(im, r->line, "no key with id %" PRId64,
				 key_id);
			return -1;
		}
	}
	if (key != NULL) {
		if (key_lookup(im, key, kp) < 0)
			return -2;
		if (kp[0] <= 0) {
			bad_line(im, r->line,
				 kp[0] < 0 ? "ambiguous key prefix '%s'"
					   : "no key with prefix '%s'",
				 key);
			return -1;
		}
		if (k[0] != 0 && k[0] != kp[0]) {
			bad_line(im, r->line,
				 "key_id %" PRId64 " is not key '%s'", key_id,
				 key);
			return -1;
		}
		k[0] = kp[0];
		k[1] = kp[1];
	}
	r->key_id = k[0];
	r->tenant_id = k[1];
	if (tenant == NULL)
		return 0;
	r->tenant_id = lookup_tenant(im, tenant);
	if (r->tenant_id < 0)
		return -2;
	if (r->tenant_id == 0) {
		bad_line(im, r->line, "no tenant named '%s'", tenant);
		return -1;
	}
	if (k[0] != 0 && k[1] != r->tenant_id) {
		bad_line(im, r->line,
			 "the key belongs to another tenant than '%s'", tenant);
		return -1;
	}
	return 0;
}

/* Checks one line and appends its record. 0 (also for a bad or blank
 * line), or -1 on a database error or out of memory. */
static int
import_line(struct import *im, char *line, size_t len)
{
	struct import_rec rec, *grown;
	struct import_owner owner;
	char why[256];
	cJSON *obj;
	int rc;

	switch (ctl_import_parse(line, len, &im->strings, &rec, &obj, &owner,
				 why, sizeof(why))) {
	case IMPORT_BLANK:
		return 0;
	case IMPORT_BAD:
		bad_line(im, im->lines, "%s", why);
		return 0;
	case IMPORT_NOMEM:
		im->failed = 1;
		return -1;
	case IMPORT_RECORD:
		break;
	}
	rec.line = im->lines;
	rc = resolve_owner(im, &rec, owner.tenant, owner.key, owner.key_id);
	cJSON_Delete(obj);
	if (rc == 0 && im->n == im->cap) {
		size_t cap = im->cap == 0 ? 1024 : im->cap * 2;

		grown = realloc(im->recs, cap * sizeof(*grown));
		if (grown == NULL) {
			im->failed = 1;
			rc = -2;
		} else {
			im->recs = grown;
			im->cap = cap;
		}
	}
	if (rc == 0) {
		im->recs[im->n++] = rec;
		return 0;
	}
	free(rec.error);
	return rc == -1 ? 0 : -1;
}

/* Orders record pointers by request id, then time, then line. */
static int
by_key(const void *a, const void *b)
{
	const struct import_rec *x = *(const struct import_rec *const *)a;
	const struct import_rec *y = *(const struct import_rec *const *)b;
	int c = strcmp(x->request_id, y->request_id);

	if (c != 0)
		return c;
	if (x->ts_us != y->ts_us)
		return x->ts_us < y->ts_us ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Marks repeated (request id, ts) pairs as duplicates and reports a
 * request id given with two times. 0, or -1 when out of memory. */
static int
find_duplicates(struct import *im)
{
	struct import_rec **v;
	size_t i;

	if (im->n < 2)
		return 0;
	if ((v = malloc(im->n * sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < im->n; i++)
		v[i] = &im->recs[i];
	qsort(v, im->n, sizeof(*v), by_key);
	for (i = 1; i < im->n; i++) {
		if (strcmp(v[i]->request_id, v[i - 1]->request_id) != 0)
			continue;
		if (v[i]->ts_us == v[i - 1]->ts_us) {
			v[i]->duplicate = 1;
			im->duplicates++;
		} else {
			bad_line(
				im, v[i]->line,
				"request id '%s' is also on line %ld with another ts",
				v[i]->request_id, v[i - 1]->line);
		}
	}
	free(v);
	return 0;
}

/* A meter record with r's contents (strings copied). NULL when out of
 * memory. */
static struct usage_record *
to_meter(const struct import_rec *r)
{
	struct usage_record *u = meter_record_new();

	if (u == NULL)
		return NULL;
	memcpy(u->request_id, r->request_id, sizeof(u->request_id));
	u->ts_us = r->ts_us;
	u->tenant_id = r->tenant_id;
	u->key_id = r->key_id;
	u->endpoint = r->endpoint;
	u->streamed = r->streamed;
	u->status = r->status;
	u->usage = r->usage;
	u->source = r->source;
	u->client_aborted = r->client_aborted;
	u->latency_ms = r->latency_ms;
	u->ttfb_ms = r->ttfb_ms;
	if ((r->requested_model != NULL &&
	     (u->requested_model = strdup(r->requested_model)) == NULL) ||
	    (r->provider != NULL &&
	     (u->provider = strdup(r->provider)) == NULL) ||
	    (r->upstream_model != NULL &&
	     (u->upstream_model = strdup(r->upstream_model)) == NULL) ||
	    (r->error != NULL && (u->error = strdup(r->error)) == NULL)) {
		meter_record_free(u);
		return NULL;
	}
	return u;
}

/* Totals of the write phase. */
struct import_totals {
	long records, inserted, replays, unpriced;
};

/* Frees a list of meter records. */
static void
free_meter_list(struct usage_record *head)
{
	struct usage_record *next;

	for (; head != NULL; head = next) {
		next = head->next;
		meter_record_free(head);
	}
}

/* Joins the lines of a multi-line message, in place, for a one-line
 * error. */
static char *
join_lines(char *s)
{
	char *r, *w;

	for (r = w = s; *r != '\0'; r++) {
		if (*r == '\n' || *r == '\r' || *r == '\t') {
			if (w > s && w[-1] != ' ')
				*w++ = ' ';
			continue;
		}
		if (*r == ' ' && w > s && w[-1] == ' ')
			continue;
		*w++ = *r;
	}
	while (w > s && w[-1] == ' ')
		w--;
	*w = '\0';
	return s;
}

/* Writes the checked records in batches. 0, or -1 after reporting. */
static int
import_write(struct import *im, struct import_totals *tot)
{
	struct usage_record *head, **tail, *u;
	size_t i = 0;
	long first;
	char *cause = NULL;
	int n, added;

	while (i < im->n) {
		head = NULL;
		tail = &head;
		first = im->recs[i].line;
		for (n = 0; i < im->n && n < IMPORT_BATCH; i++) {
			if (im->recs[i].duplicate)
				continue;
			if ((u = to_meter(&im->recs[i])) == NULL) {
				free_meter_list(head);
				ctl_err("usage import: out of memory");
				return -1;
			}
			*tail = u;
			tail = &u->next;
			n++;
		}
		if (n == 0)
			break;
		added = ledger_write(im->ctl->conn, head, n, &cause);
		if (added < 0) {
			ctl_err("usage import: batch of lines %ld to %ld: %s; %ld records before it were written (%ld new); importing again is safe",
				first, im->recs[i - 1].line,
				cause != NULL ? join_lines(cause) : "failed",
				tot->records, tot->inserted);
			free(cause);
			free_meter_list(head);
			return -1;
		}
		tot->records += n;
		tot->inserted += added;
		tot->replays += n - added;
		for (u = head; u != NULL; u = u->next)
			tot->unpriced += u->inserted && u->unpriced;
		free_meter_list(head);
	}
	return 0;
}

/* Prints the import's totals. */
static int
print_import(struct ctl *ctl, const struct import *im,
	     const struct import_totals *tot, int dry_run)
{
	cJSON *o;
	char num[24];
	const struct {
		const char *name;
		long v;
	} f[] = {
		{ "lines", im->lines },
		{ "records", (long)im->n },
		{ "duplicates_in_input", im->duplicates },
		{ "inserted", tot->inserted },
		{ "already_present", tot->replays },
		{ "unpriced", tot->unpriced },
	};
	size_t i;

	if (!ctl->json) {
		if (dry_run)
			printf("usage import: %ld lines, %zu records checked (%ld repeated in the input); nothing written "
			       "(--dry-run)\n",
			       im->lines, im->n, im->duplicates);
		else
			printf("usage import: %ld lines, %zu records: %ld inserted, %ld already present, %ld repeated "
			       "in the input; %ld inserted without a price\n",
			       im->lines, im->n, tot->inserted, tot->replays,
			       im->duplicates, tot->unpriced);
		return 0;
	}
	if ((o = cJSON_CreateObject()) == NULL)
		return ctl_json_print(NULL);
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		snprintf(num, sizeof(num), "%ld", f[i].v);
		ctl_json_int(o, f[i].name, num);
	}
	cJSON_AddBoolToObject(o, "dry_run", dry_run);
	return ctl_json_print(o);
}

/* Frees what the import holds. */
static void
import_free(struct import *im)
{
	size_t i;

	for (i = 0; i < im->n; i++)
		free(im->recs[i].error);
	free(im->recs);
	strmap_free(&im->strings);
	strmap_free(&im->tenants);
	strmap_free(&im->keys);
}

/* tollctl usage import FILE|- [--dry-run] */
static int
usage_import(struct ctl *ctl, const struct ctl_args *a)
{
	struct import im;
	struct import_totals tot = { 0, 0, 0, 0 };
	const char *path = a->argv[0];
	int dry_run = ctl_arg(a, "dry-run") != NULL, rc = CTL_EXIT_FAIL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;

	if (strcmp(path, "-") == 0) {
		f = stdin;
	} else if ((f = fopen(path, "r")) == NULL) {
		ctl_err("usage import: %s: %s", path, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	memset(&im, 0, sizeof(im));
	strmap_init(&im.strings, 0);
	strmap_init(&im.tenants, 2 * sizeof(int64_t));
	strmap_init(&im.keys, 2 * sizeof(int64_t));
	im.ctl = ctl;
	if (ctl_connect(ctl) < 0)
		goto out;
	while ((len = getline(&line, &cap, f)) >= 0) {
		im.lines++;
		if (import_line(&im, line, (size_t)len) < 0) {
			if (im.failed)
				ctl_err("usage import: out of memory");
			goto out;
		}
	}
	if (ferror(f)) {
		ctl_err("usage import: %s: %s", path, strerror(errno));
		goto out;
	}
	if (find_duplicates(&im) < 0) {
		ctl_err("usage import: out of memory");
		goto out;
	}
	if (im.errors > 0) {
		if (im.errors > IMPORT_MAX_SHOWN)
			ctl_err("usage import: %ld more bad lines not shown",
				im.errors - IMPORT_MAX_SHOWN);
		ctl_err("usage import: %ld bad line%s in %s; nothing written",
			im.errors, im.errors == 1 ? "" : "s", path);
		goto out;
	}
	if (!dry_run && import_write(&im, &tot) < 0)
		goto out;
	rc = print_import(ctl, &im, &tot, dry_run);
out:
	free(line);
	if (f != stdin)
		fclose(f);
	import_free(&im);
	return rc;
}

const struct ctl_cmd ctl_usage_import_cmd = {
	.family = "usage",
	.name = "import",
	.usage = import_usage,
	.opts = "n|dry-run",
	.min_args = 1,
	.max_args = 1,
	.arg_error = "expected one FILE, or - for the standard input",
	.run = usage_import,
};
