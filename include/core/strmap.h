/*
 * strmap.h - a hash table keyed by strings, each entry holding a value of
 * a fixed size.
 *
 * Open addressing with linear probing over FNV-1a, doubled when half full.
 * Keys are owned copies. A value is zeroed when its key is added and lives
 * in the table: a pointer to it holds until the next strmap_add(), which
 * may move every value. No locking; callers that share a table lock it.
 */
#ifndef TOLLGATE_STRMAP_H
#define TOLLGATE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap {
	char **keys;         /* cap slots, NULL when empty */
	unsigned char *vals; /* cap values of vsize bytes */
	size_t vsize, cap, n;
};

/* An empty table whose values are vsize bytes. Allocates nothing. */
void strmap_init(struct strmap *m, size_t vsize);

/* The value of key, or NULL when absent. */
void *strmap_get(const struct strmap *m, const char *key);

/* The value of key, added (zeroed) when absent; its owned key in *owned
 * when owned is not NULL. NULL when out of memory. */
void *strmap_add(struct strmap *m, const char *key, const char **owned);

/* Walks the entries in no particular order: start with *it = 0; each call
 * fills *key and *val (either may be NULL) and returns 1, then 0 at the
 * end. The table must not change during a walk. */
int strmap_next(const struct strmap *m, size_t *it, const char **key,
		void **val);

/* Frees the keys and the table; it is empty and usable again. */
void strmap_free(struct strmap *m);

/* FNV-1a of a string. */
uint64_t strmap_hash(const char *s);

#endif
