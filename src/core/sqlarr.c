/*
 * sqlarr.c - PostgreSQL array literals (sqlarr.h).
 */
#include <string.h>

#include "sqlarr.h"

/* Opens the literal or separates the next element. */
static void
next(struct sqlarr *a)
{
	buf_add(&a->b, a->n++ == 0 ? "{" : ",", 1);
}

/* Adds a quoted text element, or NULL. */
void
sqlarr_text(struct sqlarr *a, const char *v)
{
	next(a);
	if (v == NULL) {
		buf_str(&a->b, "NULL");
		return;
	}
	buf_add(&a->b, "\"", 1);
	for (;;) {
		size_t run = strcspn(v, "\"\\");
		buf_add(&a->b, v, run);
		if (v[run] == '\0')
			break;
		buf_add(&a->b, "\\", 1);
		buf_add(&a->b, v + run, 1);
		v += run + 1;
	}
	buf_add(&a->b, "\"", 1);
}

/* Adds an integer element. */
void
sqlarr_int(struct sqlarr *a, int64_t v)
{
	next(a);
	buf_int(&a->b, v);
}

/* Adds an element as written. */
void
sqlarr_raw(struct sqlarr *a, const char *v)
{
	next(a);
	buf_str(&a->b, v != NULL ? v : "NULL");
}

/* Closes the literal. */
const char *
sqlarr_end(struct sqlarr *a)
{
	buf_str(&a->b, a->n == 0 ? "{}" : "}");
	return a->b.failed ? NULL : a->b.data;
}

/* Closes n literals into params. */
int
sqlarr_params(struct sqlarr *a, int n, const char **params)
{
	int rc = 0;

	for (int i = 0; i < n; i++)
		if ((params[i] = sqlarr_end(&a[i])) == NULL)
			rc = -1;
	return rc;
}

void
sqlarr_free(struct sqlarr *a)
{
	buf_free(&a->b);
	a->n = 0;
}
