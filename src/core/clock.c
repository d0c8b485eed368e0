/*
 * clock.c - the policy clock: wall time plus a test offset.
 */
#include <stdatomic.h>

#include "clock.h"

static atomic_llong offset_ms;

/* Wall-clock milliseconds plus the offset tests have set. */
int64_t
clock_policy_ms(void)
{
	return clock_wall_us() / 1000 + atomic_load(&offset_ms);
}

/* Moves the policy clock forward (tests only). */
void
clock_advance_ms(int64_t ms)
{
	atomic_fetch_add(&offset_ms, ms);
}
