/*
 * json.h - byte-level helpers for request bodies.
 *
 * The gateway forwards a client's body as the client wrote it, changing only
 * what routing and metering need. These helpers locate top-level members in
 * the raw bytes (after cJSON validated them) so a value can be replaced or
 * a member appended without reprinting the rest. No I/O.
 */
#ifndef TOLLGATE_JSON_H
#define TOLLGATE_JSON_H

#include <stddef.h>

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

#endif
