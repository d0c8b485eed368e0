/*
 * tap.h - a tiny Test Anything Protocol helper for C table tests.
 *
 *	ok(n == 3, "three events from %s", name);
 *	is_int(u.prompt, 1200, "openai-chat prompt");
 *	is_str(ev.event, "message_start", "event name");
 *	is_mem(got, got_len, want, want_len, "raw bytes");
 *	return done_testing();
 *
 * Each check prints "ok N - name" or "not ok N - name" followed by "#"
 * diagnostics; done_testing() prints the plan "1..N" and returns the exit
 * status: 0 when every check passed, 1 otherwise. Header-only: include it
 * in one test program.
 */
#ifndef TOLLGATE_TAP_H
#define TOLLGATE_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count;
static int tap_failed;

/* Prints "# " and a message, for context between checks. */
static inline void __attribute__((format(printf, 1, 2)))
diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* Records one check; returns pass so callers can add detail on failure. */
static inline int __attribute__((format(printf, 4, 0)))
tap_vcheck(int pass, const char *file, int line, const char *fmt, va_list ap)
{
	tap_count++;
	printf("%sok %d - ", pass ? "" : "not ", tap_count);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	if (!pass) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return pass;
}

/* Records one check from a condition. */
static inline int __attribute__((format(printf, 4, 5)))
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pass = tap_vcheck(pass, file, line, fmt, ap);
	va_end(ap);
	return pass;
}

/* Records an integer comparison, showing both values on failure. */
static inline int __attribute__((format(printf, 5, 6)))
tap_is_int(long long got, long long want, const char *file, int line,
	   const char *fmt, ...)
{
	va_list ap;
	int pass;

	va_start(ap, fmt);
	pass = tap_vcheck(got == want, file, line, fmt, ap);
	va_end(ap);
	if (!pass)
		printf("#   got %lld, want %lld\n", got, want);
	return pass;
}

/* Records a string comparison (NULL equals only NULL). */
static inline int __attribute__((format(printf, 5, 6)))
tap_is_str(const char *got, const char *want, const char *file, int line,
	   const char *fmt, ...)
{
	va_list ap;
	int pass;

	pass = (got == NULL || want == NULL) ? got == want
					     : strcmp(got, want) == 0;
	va_start(ap, fmt);
	pass = tap_vcheck(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass)
		printf("#   got \"%s\", want \"%s\"\n", got ? got : "(null)",
		       want ? want : "(null)");
	return pass;
}

/* Records a byte comparison, showing lengths and the first difference. */
static inline int __attribute__((format(printf, 7, 8)))
tap_is_mem(const void *got, size_t glen, const void *want, size_t wlen,
	   const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	size_t i;
	int pass;

	pass = glen == wlen && (glen == 0 || memcmp(got, want, glen) == 0);
	va_start(ap, fmt);
	pass = tap_vcheck(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		for (i = 0; i < glen && i < wlen; i++)
			if (((const char *)got)[i] != ((const char *)want)[i])
				break;
		printf("#   got %zu bytes, want %zu; first difference at %zu\n",
		       glen, wlen, i);
	}
	return pass;
}

/* Prints the plan; returns the process exit status. */
static inline int
done_testing(void)
{
	printf("1..%d\n", tap_count);
	if (tap_failed)
		printf("# failed %d of %d\n", tap_failed, tap_count);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)                                                 \
	tap_is_int((long long)(got), (long long)(want), __FILE__, __LINE__,    \
		   __VA_ARGS__)
#define is_str(got, want, ...)                                                 \
	tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)
#define is_mem(got, glen, want, wlen, ...)                                     \
	tap_is_mem((got), (glen), (want), (wlen), __FILE__, __LINE__,          \
		   __VA_ARGS__)

#endif
