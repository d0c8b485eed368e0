/*
 * meter.c - usage record allocation.
 */
#include <stdlib.h>

#include "meter.h"

/* Allocates a zeroed record. */
struct usage_record *
meter_record_new(void)
{
	struct usage_record *rec = calloc(1, sizeof *rec);

	if (rec != NULL)
		rec->ttfb_ms = -1;
	return rec;
}

/* Frees a record and the strings it owns. */
void
meter_record_free(struct usage_record *rec)
{
	if (rec == NULL)
		return;
	free(rec->tenant);
	free(rec->requested_model);
	free(rec->provider);
	free(rec->upstream_model);
	free(rec->error);
	free(rec);
}

/* The name stored in usage_records.usage_source. */
const char *
meter_source_name(enum usage_source s)
{
	switch (s) {
	case USAGE_REPORTED: return "reported";
	case USAGE_ESTIMATED: return "estimated";
	default: return "none";
	}
}
