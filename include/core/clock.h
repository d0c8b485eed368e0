/*
 * clock.h - the two clocks: monotonic for durations and timeouts, wall
 * for timestamps that are stored; and the one formatter of timestamps and
 * civil dates, exact integer arithmetic in UTC.
 */
#ifndef TOLLGATE_CLOCK_H
#define TOLLGATE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Microseconds on the monotonic clock. */
static inline int64_t
clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Milliseconds on the monotonic clock. */
static inline int64_t
clock_mono_ms(void)
{
	return clock_mono_us() / 1000;
}

/* Microseconds since the epoch on the wall clock. */
static inline int64_t
clock_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The wall-clock time ms from now, for pthread_cond_timedwait. */
static inline struct timespec
clock_deadline(int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* The gateway's policy clock (rate-limit minutes, quota periods), in
 * milliseconds since the epoch: the wall clock plus an offset that only a
 * gateway started with test_clock = yes lets its admin endpoint move. */
int64_t clock_policy_ms(void);
void clock_advance_ms(int64_t ms);

/* How clock_format() writes a time. */
enum clock_style {
	CLOCK_SQL, /* "2026-11-03 10:00:00.000000+00", a timestamptz literal */
	CLOCK_ISO_MS, /* "2026-11-03T10:00:00.123Z", for logs */
	CLOCK_ISO,    /* "2026-11-03T10:00:00Z" */
};

#define CLOCK_TEXT_MAX 40

/* Writes microseconds since the epoch (negative too) as UTC text into buf
 * (at least CLOCK_TEXT_MAX bytes). Returns the length. */
size_t clock_format(int64_t us, enum clock_style style, char *buf);

/* Days from 1970-01-01 to y-m-d, and back (proleptic Gregorian). */
int64_t clock_days_from_civil(int y, int m, int d);
void clock_civil_from_days(int64_t days, int *y, int *m, int *d);

#endif
