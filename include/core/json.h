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

/* The deepest nesting of arrays and objects in buf, or -1 when brackets do
 * not balance. Strings are skipped. */
int json_depth(const char *buf, size_t len);

/* Finds the top-level member named key in an object. On success sets
 * *vstart and *vend to the value's bytes [vstart, vend) and returns 0;
 * -1 when absent or buf is not an object. */
int json_member_span(const char *buf, size_t len, const char *key,
		     size_t *vstart, size_t *vend);

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

/* Parses exactly one JSON value filling buf (blanks around it allowed);
 * NULL when buf holds anything else, trailing bytes included. */
cJSON *json_parse_exact(const char *buf, size_t len);

#endif
