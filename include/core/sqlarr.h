/*
 * sqlarr.h - PostgreSQL array literals for query parameters.
 *
 * A batch travels as one parameter per column ("{1,2,3}",
 * "{\"a\",NULL}") and is unnested by the statement, so any number of rows
 * costs one round trip and no SQL is ever assembled from values. Text
 * elements are quoted and escaped; NULL is SQL NULL.
 */
#ifndef TOLLGATE_SQLARR_H
#define TOLLGATE_SQLARR_H

#include <stdint.h>

#include "buf.h"

struct sqlarr {
	struct buf b;
	int n; /* elements so far */
};

#define SQLARR_INIT                                                            \
	{                                                                      \
		BUF_INIT, 0                                                    \
	}

/* Adds a text element (quoted), or NULL when v is NULL. */
void sqlarr_text(struct sqlarr *a, const char *v);

/* Adds an integer element. */
void sqlarr_int(struct sqlarr *a, int64_t v);

/* Adds an element written as is: a number or NULL in text form. */
void sqlarr_raw(struct sqlarr *a, const char *v);

/* Closes the literal and returns it (owned by a, good until
 * sqlarr_free), or NULL when memory ran out. */
const char *sqlarr_end(struct sqlarr *a);

/* Closes n literals into params, one each. 0, or -1 when memory ran
 * out. */
int sqlarr_params(struct sqlarr *a, int n, const char **params);

void sqlarr_free(struct sqlarr *a);

#endif
