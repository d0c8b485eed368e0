/*
 * ctl_import_parse.h - reading one line of tollctl usage import: the
 * record it holds, checked, without the database (ctl_import.c resolves
 * the tenant and key it names, then writes the records).
 */
#ifndef TOLLGATE_CTL_IMPORT_PARSE_H
#define TOLLGATE_CTL_IMPORT_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "meter.h"
#include "strmap.h"

/* A checked record waiting to be written; strings other than error are
 * interned in the import's string set. */
struct import_rec {
	char request_id[40];
	int64_t ts_us;
	int64_t tenant_id; /* 0: none */
	int64_t key_id;    /* 0: none */
	const char *endpoint;
	const char *requested_model, *provider, *upstream_model;
	char *error; /* owned */
	int streamed, status, client_aborted, duplicate;
	struct usage usage;
	enum usage_source source;
	int64_t latency_ms, ttfb_ms;
	long line;
};

/* What a line names that only the database resolves; the strings are
 * borrowed from the parsed line. */
struct import_owner {
	const char *tenant; /* a tenant name, or NULL */
	const char *key;    /* a key prefix, or NULL */
	int64_t key_id;     /* 0: none */
};

/* What ctl_import_parse() found in a line. */
enum import_parsed {
	IMPORT_BLANK,  /* only blanks: no record, no error */
	IMPORT_RECORD, /* a record */
	IMPORT_BAD,    /* a bad line */
	IMPORT_NOMEM,  /* memory ran out */
};

/* Reads one input line: len bytes at line (line[len] is '\0'), its line
 * ending cut in place. IMPORT_RECORD: *r is filled but for its line, key
 * and tenant ids (r->error is owned), *owner names the key and tenant to
 * resolve, and *obj holds the parsed line, which owner borrows from (the
 * caller deletes it with cJSON_Delete). IMPORT_BAD: why holds the reason
 * (whysize bytes, cut). Strings other than the error are interned in
 * strings. Integers are read from their digits, never through a double.
 * No I/O. */
enum import_parsed
ctl_import_parse(char *line, size_t len, struct strmap *strings,
		 struct import_rec *r, cJSON **obj, struct import_owner *owner,
		 char *why, size_t whysize) __attribute__((warn_unused_result));

#endif
