/*
 * log.h - process logging.
 *
 * One line per message on stderr, written with a single write(2) so lines
 * from several threads never interleave, or queued for a logger thread
 * (log_start_async) so that no event loop waits on stderr. A request's
 * lines go through log_request(), which puts its id and tenant first.
 */
#ifndef TOLLGATE_LOG_H
#define TOLLGATE_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int log_level_from_name(const char *name);
void log_set_level(enum log_level level);
void log_set_json(int json);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *prefix, const char *fmt,
	      va_list ap);

/* Logs a line about a request: its id and tenant ("-" when NULL) first. */
void log_request(enum log_level level, const char *request_id,
		 const char *tenant, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The same for a text already built (the line every request ends with,
 * built without printf). */
void log_request_text(enum log_level level, const char *request_id,
		      const char *tenant, const char *msg);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
	do {                                                                   \
		if (log_enabled(LOG_DEBUG))                                    \
			log_msg(LOG_DEBUG, __VA_ARGS__);                       \
	} while (0)

/* Hands writing to a logger thread, so that callers never wait on
 * stderr; log_stop_async() writes what is queued and stops it. */
int log_start_async(void) __attribute__((warn_unused_result));
void log_stop_async(void);

/* Logs and exits 1. */
void fatalx(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif
