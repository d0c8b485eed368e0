/*
 * ctl_args.c - argument parsing and lookups shared by the billing verbs
 * of tollctl (price, fx, promo, usage import).
 *
 * Everything here is exact: token counts and times are parsed into
 * integers by hand, never through a double. A time is either a date, read
 * as midnight in a given time zone (the tenant's, else UTC), or a full
 * RFC 3339 timestamp, which names its own offset. Only a date in a zone
 * other than UTC needs the database (its tz rules) to resolve.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ctl.h"

/* Reads exactly n decimal digits at s into *v; 0, or -1. */
static int
fixed_digits(const char *s, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

/* Days in month m (1-12) of year y, Gregorian. */
static int
month_days(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30,
				      31, 31, 30, 31, 30, 31 };

	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return days[m - 1];
}

/* Parses "YYYY-MM-DD" at s into y, m, d; 0, or -1 when not a real date. */
static int
parse_date(const char *s, int *y, int *m, int *d)
{
	if (fixed_digits(s, 4, y) < 0 || s[4] != '-' ||
	    fixed_digits(s + 5, 2, m) < 0 || s[7] != '-' ||
	    fixed_digits(s + 8, 2, d) < 0)
		return -1;
	if (*y < 1 || *m < 1 || *m > 12 || *d < 1 || *d > month_days(*y, *m))
		return -1;
	return 0;
}

/* Parses a date or an RFC 3339 timestamp; see ctl.h. */
int
ctl_parse_time(const char *s, int *date_only, int64_t *us)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0, n;
	int64_t frac = 0, t;
	const char *p;

	if (s == NULL || strlen(s) < 10 || parse_date(s, &y, &mo, &d) < 0)
		return -1;
	t = clock_days_from_civil(y, mo, d) * 86400;
	if (s[10] == '\0') {
		*date_only = 1;
		*us = t * 1000000;
		return 0;
	}
	*date_only = 0;
	if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
		return -1;
	if (fixed_digits(s + 11, 2, &h) < 0 || s[13] != ':' ||
	    fixed_digits(s + 14, 2, &mi) < 0 || s[16] != ':' ||
	    fixed_digits(s + 17, 2, &sec) < 0 || h > 23 || mi > 59 || sec > 59)
		return -1;
	p = s + 19;
	if (*p == '.') {
		for (p++, n = 0; *p >= '0' && *p <= '9'; p++, n++) {
			if (n >= 6)
				return -1;
			frac = frac * 10 + (*p - '0');
		}
		if (n == 0)
			return -1;
		for (; n < 6; n++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (fixed_digits(p + 1, 2, &oh) < 0 || p[3] != ':' ||
		    fixed_digits(p + 4, 2, &om) < 0 || oh > 23 || om > 59)
			return -1;
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	t += (int64_t)h * 3600 + mi * 60 + sec;
	t -= (int64_t)sign * (oh * 3600 + om * 60);
	*us = t * 1000000 + frac;
	return 0;
}

/* Checks the syntax of a time option; see ctl.h. */
int
ctl_check_time(const char *opt, const char *arg)
{
	int date_only;
	int64_t us;

	if (ctl_parse_time(arg, &date_only, &us) == 0)
		return 0;
	ctl_err("invalid %s '%s': expected a date YYYY-MM-DD or an RFC 3339 timestamp such as 2026-11-03T10:00:00Z",
		opt, arg);
	return -1;
}

/* Resolves a checked time option in time zone tz; see ctl.h. */
int
ctl_resolve_time(struct ctl *ctl, const char *arg, const char *tz,
		 struct ctl_time *out)
{
	const char *params[2] = { arg, tz };
	int date_only;
	PGresult *res;
	char *end;

	if (ctl_parse_time(arg, &date_only, &out->us) < 0) {
		ctl_err("invalid time '%s'", arg);
		return -1;
	}
	if (date_only && tz != NULL && strcmp(tz, "UTC") != 0) {
		res = ctl_query(
			ctl, "time zone",
			"SELECT (extract(epoch FROM"
			" $1::date::timestamp AT TIME ZONE $2) * 1000000)"
			"::bigint",
			2, params);
		if (res == NULL)
			return -1;
		out->us = strtoll(PQgetvalue(res, 0, 0), &end, 10);
		PQclear(res);
	}
	clock_format(out->us, CLOCK_SQL, out->text);
	return 0;
}

/* Whether s is "YYYY-MM" with a month from 01 to 12. */
int
ctl_valid_month(const char *s)
{
	int y, m;

	return s != NULL && strlen(s) == 7 && fixed_digits(s, 4, &y) == 0 &&
	       y >= 1 && s[4] == '-' && fixed_digits(s + 5, 2, &m) == 0 &&
	       m >= 1 && m <= 12;
}

/* Whether s is three capital letters. */
int
ctl_valid_currency(const char *s)
{
	return s != NULL && strlen(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' &&
	       s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z';
}

/* Parses a token count with an optional k, M or G suffix; see ctl.h. */
int
ctl_parse_count(const char *s, int64_t *n, const char **cause)
{
	int64_t whole = 0, frac = 0, scale = 1, fscale = 1;
	int digits = 0, fdigits = 0;
	const char *p = s;

	*cause = "not a whole number of tokens (e.g. 50M, 200k, 1000000)";
	if (s == NULL)
		return -1;
	for (; *p >= '0' && *p <= '9'; p++, digits++)
		if (__builtin_mul_overflow(whole, 10, &whole) ||
		    __builtin_add_overflow(whole, *p - '0', &whole)) {
			*cause = "too large";
			return -1;
		}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, fdigits++) {
			if (fdigits >= 9) {
				*cause = "too many decimals";
				return -1;
			}
			frac = frac * 10 + (*p - '0');
			fscale *= 10;
		}
		if (fdigits == 0)
			return -1;
	}
	if (digits == 0)
		return -1;
	if (*p == 'k' || *p == 'K')
		scale = 1000;
	else if (*p == 'M')
		scale = 1000000;
	else if (*p == 'G')
		scale = 1000000000;
	else if (*p != '\0')
		return -1;
	if (*p != '\0' && p[1] != '\0')
		return -1;
	if (frac * scale % fscale != 0) {
		*cause = "not a whole number of tokens";
		return -1;
	}
	if (__builtin_mul_overflow(whole, scale, &whole) ||
	    __builtin_add_overflow(whole, frac * scale / fscale, &whole)) {
		*cause = "too large";
		return -1;
	}
	*n = whole;
	return 0;
}

/* Looks up a tenant's id and time zone by name; see ctl.h. */
int
ctl_tenant_lookup(struct ctl *ctl, const char *name, int64_t *id, char *tz,
		  size_t tzsize)
{
	const char *params[1] = { name };
	PGresult *res;

	res = ctl_query_named(ctl, "tenant", "tenant",
			      "SELECT id, tz FROM tenants WHERE name = $1", 1,
			      params);
	if (res == NULL)
		return -1;
	*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (tz != NULL)
		snprintf(tz, tzsize, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

/* Resolves an optional tenant and an optional time; see ctl.h. */
int
ctl_tenant_time(struct ctl *ctl, const char *tenant, const char *time,
		struct ctl_tenant_time *out)
{
	char tz[64] = "UTC";
	int64_t tid;

	out->tenant_id = out->time = NULL;
	if (tenant != NULL) {
		if (ctl_tenant_lookup(ctl, tenant, &tid, tz, sizeof(tz)) < 0)
			return -1;
		snprintf(out->id, sizeof(out->id), "%lld", (long long)tid);
		out->tenant_id = out->id;
	}
	if (time != NULL) {
		if (ctl_resolve_time(ctl, time, tz, &out->when) < 0)
			return -1;
		out->time = out->when.text;
	}
	return 0;
}

/* Whether s is given but empty or only blanks. */
int
ctl_blank(const char *s)
{
	return s != NULL && strspn(s, " \t") == strlen(s);
}

/* Whether s is a numeric id that fits a bigint. */
int
ctl_valid_id(const char *s)
{
	return ctl_is_digits(s) && strlen(s) <= CTL_ID_MAX_DIGITS;
}

/* Parses a positive count option with ctl_parse_count(), at most max, into
 * decimal text in buf. 0, or -1 after reporting. */
int
ctl_parse_positive(const char *opt, const char *arg, int64_t max, char *buf,
		   size_t size)
{
	const char *cause;
	int64_t n;

	if (ctl_parse_count(arg, &n, &cause) < 0) {
		ctl_err("invalid %s '%s': %s", opt, arg, cause);
		return -1;
	}
	if (n == 0) {
		ctl_err("invalid %s '%s': must be above zero", opt, arg);
		return -1;
	}
	if (n > max) {
		ctl_err("invalid %s '%s': at most %lld", opt, arg,
			(long long)max);
		return -1;
	}
	snprintf(buf, size, "%lld", (long long)n);
	return 0;
}
