/*
 * translate_int.h - what translate.c, translate_resp.c and
 * translate_stream.c share: small JSON reading and building helpers, the
 * usage counts, and the functions one file lends the others. Not for
 * other modules, which include translate.h.
 */
#ifndef TOLLGATE_TRANSLATE_INT_H
#define TOLLGATE_TRANSLATE_INT_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "json.h"
#include "sse.h"

/* A tree under construction: any failed allocation sets oom, checked once
 * before the tree is printed. */
struct bld {
	int oom;
};

/* Sets *cause to a malloc'd formatted message (when cause is not NULL);
 * returns NULL for the caller to return. */
static inline void *__attribute__((format(printf, 2, 3)))
fail(char **cause, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	if (cause == NULL)
		return NULL;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	*cause = NULL;
	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	*cause = s;
	return NULL;
}

/* obj[key], or NULL when obj is not an object or has no such member. */
static inline const cJSON *
get(const cJSON *obj, const char *key)
{
	if (!cJSON_IsObject(obj))
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* obj[key] as a string, or NULL. */
static inline const char *
get_str(const cJSON *obj, const char *key)
{
	const cJSON *it = get(obj, key);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Whether obj[key] is absent or null. */
static inline int
absent(const cJSON *obj, const char *key)
{
	const cJSON *it = get(obj, key);

	return it == NULL || cJSON_IsNull(it);
}

/* Whether s equals the string member obj[key]. */
static inline int
str_is(const cJSON *obj, const char *key, const char *s)
{
	const char *v = get_str(obj, key);

	return v != NULL && strcmp(v, s) == 0;
}

/* Adds item to parent: as member key of an object, or appended to an
 * array when key is NULL. Takes ownership of item (NULL: out of memory). */
static inline cJSON *
b_add(struct bld *b, cJSON *parent, const char *key, cJSON *item)
{
	if (item == NULL || parent == NULL) {
		b->oom = 1;
		cJSON_Delete(item);
		return NULL;
	}
	if (key != NULL ? !cJSON_AddItemToObject(parent, key, item)
			: !cJSON_AddItemToArray(parent, item)) {
		b->oom = 1;
		cJSON_Delete(item);
		return NULL;
	}
	return item;
}

static inline cJSON *
b_obj(struct bld *b, cJSON *parent, const char *key)
{
	return b_add(b, parent, key, cJSON_CreateObject());
}

static inline cJSON *
b_arr(struct bld *b, cJSON *parent, const char *key)
{
	return b_add(b, parent, key, cJSON_CreateArray());
}

static inline void
b_str(struct bld *b, cJSON *parent, const char *key, const char *s)
{
	b_add(b, parent, key, cJSON_CreateString(s));
}

static inline void
b_num(struct bld *b, cJSON *parent, const char *key, double v)
{
	b_add(b, parent, key, cJSON_CreateNumber(v));
}

/* A count, printed with its exact digits. */
static inline void
b_int(struct bld *b, cJSON *parent, const char *key, int64_t v)
{
	b_add(b, parent, key, json_int_item(v));
}

static inline void
b_null(struct bld *b, cJSON *parent, const char *key)
{
	b_add(b, parent, key, cJSON_CreateNull());
}

static inline void
b_bool(struct bld *b, cJSON *parent, const char *key, int v)
{
	b_add(b, parent, key, cJSON_CreateBool(v));
}

/* Adds a deep copy of src. */
static inline cJSON *
b_dup(struct bld *b, cJSON *parent, const char *key, const cJSON *src)
{
	return b_add(b, parent, key, cJSON_Duplicate(src, 1));
}

/* Replaces member key of obj by item (takes ownership). */
static inline void
b_replace(struct bld *b, cJSON *obj, const char *key, cJSON *item)
{
	if (item == NULL || obj == NULL ||
	    !cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item)) {
		b->oom = 1;
		cJSON_Delete(item);
	}
}

/* Whether v is an array with an item, found without counting them all
 * (cJSON_GetArraySize walks the whole list). */
static inline int
has_items(const cJSON *v)
{
	return cJSON_IsArray(v) && v->child != NULL;
}

/* v when it is an array, else NULL (for loops over optional arrays). */
static inline const cJSON *
arr_of(const cJSON *v)
{
	return cJSON_IsArray(v) ? v : NULL;
}

/* A malloc'd copy of the n bytes at s, NUL-terminated; NULL on failure. */
static inline char *
memdup0(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d == NULL)
		return NULL;
	if (n > 0)
		memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* A malloc'd "a" + "b"; NULL on failure. */
static inline char *
concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *d = malloc(la + lb + 1);

	if (d == NULL)
		return NULL;
	memcpy(d, a, la);
	memcpy(d + la, b, lb + 1);
	return d;
}

/* Anthropic's counts as sent (input excludes both cache counts). */
struct tr_counts {
	int64_t input, cache_write, cache_read, output;
};

/* translate.c */

/* Prints and deletes root unless the build failed; NULL with *cause. */
char *tr_print(struct bld *b, cJSON *root, size_t *len, char **cause);
/* Adds a text block (skipped when s is empty). */
void tr_text_block(struct bld *b, cJSON *arr, const char *s);
/* A tool call's arguments string as an object ({} when it is not one). */
cJSON *tr_parse_arguments(const char *args);

/* translate_resp.c */

/* Anthropic stop_reason -> OpenAI finish_reason, and back. */
const char *tr_finish_reason(const char *stop);
const char *tr_stop_reason(const char *finish);
/* Overrides the counts present in an Anthropic usage object. */
void tr_counts_merge(struct tr_counts *c, const cJSON *u);
/* Reads an OpenAI usage (top level or in a choice); 1 when found. */
int tr_counts_from_chat(struct tr_counts *c, const cJSON *root);
/* Adds "usage" in OpenAI's or Anthropic's shape. */
void tr_chat_usage(struct bld *b, cJSON *parent, const struct tr_counts *c);
void tr_msg_usage(struct bld *b, cJSON *parent, const struct tr_counts *c);
/* "msg_" + a chat id without its "chatcmpl-" (malloc'd). */
char *tr_msg_id(const char *id);
/* Error bodies of each wire; the chat one maps the Anthropic type. */
cJSON *tr_chat_error_body(struct bld *b, const char *atype,
			  const char *message);
cJSON *tr_msg_error_body(struct bld *b, const char *type, const char *message);

#endif
