/*
 * ctl_bill.h - shared between the bill's builder (ctl_bill.c) and its
 * renderers (ctl_bill_render.c).
 */
#ifndef TOLLGATE_CTL_BILL_H
#define TOLLGATE_CTL_BILL_H

#include <stdio.h>
#include <cjson/cJSON.h>

enum format { FMT_TEXT, FMT_CSV, FMT_JSON, FMT_HTML };

/* Adds a row of cells to table t (ctl_table_add). */
#define ROW(t, ...) ctl_table_add((t), (const char *const[]){ __VA_ARGS__ })

/* A string member of a bill object, or NULL. */
const char *ctl_bill_jstr(const cJSON *o, const char *name);

/* An array member of a bill object, or NULL. */
const cJSON *ctl_bill_jarr(const cJSON *o, const char *name);

/* Prints the bill's warnings (unpriced usage, missing rates) to stderr. */
void ctl_bill_warn(const cJSON *doc);

/* Writes the documents (an array; single when one tenant was asked for)
 * in fmt to out. 0, or -1 on failure. */
int ctl_bill_render(FILE *out, enum format fmt, cJSON *docs, int single);

#endif
