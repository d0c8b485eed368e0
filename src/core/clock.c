/*
 * clock.c - the policy clock (wall time plus a test offset), and the one
 * timestamp formatter.
 *
 * Dates are computed from day counts with integer arithmetic (Howard
 * Hinnant's civil-from-days), never through gmtime/strftime: no locale,
 * no time zone state, nothing to lock, and the same answer for any year.
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

/* Days from 1970-01-01 to y-m-d. */
int64_t
clock_days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The civil date of a day count from 1970-01-01. */
void
clock_civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Writes v as exactly width decimal digits at p; returns p past them. */
static char *
digits(char *p, int64_t v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

/* Formats a time in one of the styles. */
size_t
clock_format(int64_t us, enum clock_style style, char *buf)
{
	int64_t secs = us / 1000000, frac = us % 1000000, days, rem;
	int y, mo, d;
	char *p = buf;

	if (frac < 0) {
		frac += 1000000;
		secs--;
	}
	days = secs / 86400;
	rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	clock_civil_from_days(days, &y, &mo, &d);
	if (y < 0 || y > 9999)
		y = y < 0 ? 0 : 9999; /* outside what any caller stores */
	p = digits(p, y, 4);
	*p++ = '-';
	p = digits(p, mo, 2);
	*p++ = '-';
	p = digits(p, d, 2);
	*p++ = style == CLOCK_SQL ? ' ' : 'T';
	p = digits(p, rem / 3600, 2);
	*p++ = ':';
	p = digits(p, rem / 60 % 60, 2);
	*p++ = ':';
	p = digits(p, rem % 60, 2);
	switch (style) {
	case CLOCK_SQL:
		*p++ = '.';
		p = digits(p, frac, 6);
		*p++ = '+';
		*p++ = '0';
		*p++ = '0';
		break;
	case CLOCK_ISO_MS:
		*p++ = '.';
		p = digits(p, frac / 1000, 3);
		*p++ = 'Z';
		break;
	case CLOCK_ISO:
		*p++ = 'Z';
		break;
	}
	*p = '\0';
	return (size_t)(p - buf);
}
