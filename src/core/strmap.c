/*
 * strmap.c - the string-keyed hash table (strmap.h).
 */
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

#define STRMAP_FIRST 64 /* slots of the first allocation */

/* FNV-1a of s. */
uint64_t
strmap_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* An empty table. */
void
strmap_init(struct strmap *m, size_t vsize)
{
	memset(m, 0, sizeof *m);
	m->vsize = vsize;
}

/* The slot of key: where it is, or the empty slot it would go to. The
 * table has slots. */
static size_t
slot(const struct strmap *m, const char *key)
{
	size_t i = (size_t)strmap_hash(key) & (m->cap - 1);

	while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

/* Doubles the table. 0, or -1 when out of memory. */
static int
grow(struct strmap *m)
{
	struct strmap g = *m;

	g.cap = m->cap != 0 ? m->cap * 2 : STRMAP_FIRST;
	g.keys = calloc(g.cap, sizeof *g.keys);
	g.vals = calloc(g.cap, m->vsize != 0 ? m->vsize : 1);
	if (g.keys == NULL || g.vals == NULL) {
		free(g.keys);
		free(g.vals);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t k;
		if (m->keys[i] == NULL)
			continue;
		k = slot(&g, m->keys[i]);
		g.keys[k] = m->keys[i];
		memcpy(g.vals + k * m->vsize, m->vals + i * m->vsize, m->vsize);
	}
	free(m->keys);
	free(m->vals);
	*m = g;
	return 0;
}

/* The value of key, or NULL. */
void *
strmap_get(const struct strmap *m, const char *key)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	i = slot(m, key);
	return m->keys[i] != NULL ? m->vals + i * m->vsize : NULL;
}

/* The value of key, added when absent. */
void *
strmap_add(struct strmap *m, const char *key, const char **owned)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap && grow(m) != 0)
		return NULL;
	i = slot(m, key);
	if (m->keys[i] == NULL) {
		if ((m->keys[i] = strdup(key)) == NULL)
			return NULL;
		memset(m->vals + i * m->vsize, 0, m->vsize);
		m->n++;
	}
	if (owned != NULL)
		*owned = m->keys[i];
	return m->vals + i * m->vsize;
}

/* The next entry of a walk. */
int
strmap_next(const struct strmap *m, size_t *it, const char **key, void **val)
{
	for (; *it < m->cap; (*it)++) {
		if (m->keys[*it] == NULL)
			continue;
		if (key != NULL)
			*key = m->keys[*it];
		if (val != NULL)
			*val = m->vals + *it * m->vsize;
		(*it)++;
		return 1;
	}
	return 0;
}

/* Frees the table. */
void
strmap_free(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	strmap_init(m, m->vsize);
}
