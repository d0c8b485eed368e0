/*
 * json.h - byte-level helpers for request bodies.
 *
 * The gateway forwards a client's body as the client wrote it, changing only
 * what routing and metering need. These helpers locate top-level members in
 * the raw bytes (after cJSON validated them) so a value can be replaced or
 * a member appended without reprinting the rest. Integers are read from
 * their digits, never through cJSON's double. No I/O.
 */
#ifndef TOLLGATE_JSON_H
#define TOLLGATE_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "buf.h"

/* The deepest nesting of arrays and objects in buf, or -1 when brackets do
 * not balance. Strings are skipped. */
int json_depth(const char *buf, size_t len);

/* Bytes [start, end) of a body. */
struct json_span {
	size_t start, end;
};

/* Steps through the members of the top-level object of buf: *pos starts
 * at 0. Sets *name to the name's bytes inside its quotes, as written
 * (escapes included), and *value to the value's bytes. 1 while there is a
 * member, 0 after the last (*pos then just past the closing brace), -1
 * when buf is no object or a member is malformed. Values are skipped,
 * not validated: a caller that needs a valid document has cJSON
 * validate it first. */
int json_member_next(const char *buf, size_t len, size_t *pos,
		     struct json_span *name, struct json_span *value);

/* Reads four hex digits (of a \u escape) into *v. 0 or -1. */
int json_hex4(const char *s, uint32_t *v);

/* Whether a name as written (n bytes inside its quotes) unescapes to the
 * ASCII text key: "mod\u0065l" is "model". */
int json_name_is(const char *raw, size_t n, const char *key);

/* Whether a name as written holds a NUL, where cJSON's copy of the name
 * ends: a raw byte (cJSON takes control bytes in strings), \u0000, or a
 * \u without four hex digits (which cJSON reads as \u0000). */
int json_name_has_nul(const char *raw, size_t n);

/* Finds the top-level member named key (compared unescaped) in an object. On
 * success sets *vstart and *vend to the value's bytes [vstart, vend) and
 * returns 0; -1 when absent or buf is not an object. */
int json_member_span(const char *buf, size_t len, const char *key,
		     size_t *vstart, size_t *vend);

/* An edit of a top-level member: its value becomes the JSON text value,
 * or the member is added when the body lacks it. */
struct json_edit {
	const char *name;  /* ASCII, needing no escape */
	const char *value; /* JSON text */
	/* Set by json_edit_members(): */
	int present;
	struct json_span span;
};

/* Appends to out the object buf with the n edits applied: values replaced
 * where they stand, missing members added at the end; every other byte as
 * it was. Reorders e. 0, or -1 when buf is no object or memory ran out. */
int json_edit_members(const char *buf, size_t len, struct json_edit *e, int n,
		      struct buf *out);

/* Offset of the top-level object's closing brace, or -1. */
long json_object_end(const char *buf, size_t len);

/* Reads the integer text s[0..n) (an optional minus, then digits; no
 * fraction, exponent or blank) into *v exactly: 0, -1 when it is not such
 * text, -2 when it does not fit in 64 bits. Never through a double. */
int json_parse_int(const char *s, size_t n, int64_t *v);

/* Reads the top-level member key of an object from its digits: 1 with *v
 * set, 0 when absent or null, -1 when not an integer that fits. */
int json_member_int(const char *buf, size_t len, const char *key, int64_t *v);

/* 2^53: every integer below it is exact in cJSON's double. */
#define JSON_EXACT_LIMIT 9007199254740992.0

/* Reads obj[key] of a parsed tree as a count (tokens, an index): 1 with
 * *out set, 0 when obj is not an object or the member is absent or null,
 * -1 when it is not an exact non-negative integer below 2^53. */
int json_count(const cJSON *obj, const char *key, int64_t *out);

/* A number item that prints v's exact digits (cJSON prints a double
 * with 15 significant digits when that reads back within an epsilon,
 * which loses counts above 2^52). NULL when out of memory. */
cJSON *json_int_item(int64_t v);

/* Whether buf is exactly one JSON value (blanks around it allowed) as RFC
 * 8259 writes it, without building anything: what it accepts, cJSON
 * parses too (it refuses a lone \u surrogate, which cJSON does not take,
 * and nesting deeper than 256). */
int json_valid(const char *buf, size_t len);

/* json_valid() of an object, finding its first top-level member named key
 * on the way: 1 with *value its value's bytes, 0 when there is none, -1
 * when buf is not a valid object. *unsure is set when a name before it
 * holds a NUL (where cJSON would cut the name). */
int json_valid_member(const char *buf, size_t len, const char *key,
		      struct json_span *value, int *unsure);

/* Parses exactly one JSON value filling buf (blanks around it allowed);
 * NULL when buf holds anything else, trailing bytes included. */
cJSON *json_parse_exact(const char *buf, size_t len);

#endif
