/*
 * log.c - process logging: one line per message on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>

#include "log.h"

static enum log_level log_level = LOG_INFO;
static int log_json;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* Maps a level name to its value, or -1. */
int
log_level_from_name(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

/* Sets the most verbose level that is written. */
void
log_set_level(enum log_level level)
{
	log_level = level;
}

/* Switches between text lines and JSON lines. */
void
log_set_json(int json)
{
	log_json = json;
}

/* Whether messages of this level are written. */
int
log_enabled(enum log_level level)
{
	return level <= log_level;
}

/* Appends s to buf as the body of a JSON string, escaped. */
static size_t
json_escape(char *buf, size_t size, size_t off, const char *s)
{
	for (; *s != '\0' && off + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[off++] = '\\';
			buf[off++] = (char)c;
		} else if (c < 0x20) {
			off += (size_t)snprintf(buf + off, size - off,
						"\\u%04x", c);
		} else
			buf[off++] = (char)c;
	}
	return off;
}

/* Formats one message and writes it with a single write(2). */
void
log_vmsg(enum log_level level, const char *prefix, const char *fmt,
	 va_list ap)
{
	char msg[2048], line[4608], ts[32];
	struct timeval tv;
	struct tm tm;
	size_t off;

	if (!log_enabled(level))
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_json) {
		off = (size_t)snprintf(line, sizeof line,
				       "{\"ts\":\"%s.%03dZ\",\"level\":\"%s\","
				       "\"msg\":\"", ts, (int)(tv.tv_usec / 1000),
				       level_names[level]);
		if (prefix != NULL)
			off = json_escape(line, sizeof line, off, prefix);
		off = json_escape(line, sizeof line, off, msg);
		off += (size_t)snprintf(line + off, sizeof line - off, "\"}\n");
	} else {
		off = (size_t)snprintf(line, sizeof line, "%s.%03dZ %s %s%s\n",
				       ts, (int)(tv.tv_usec / 1000),
				       level_names[level],
				       prefix != NULL ? prefix : "", msg);
	}
	if (off > sizeof line)
		off = sizeof line;
	if (write(STDERR_FILENO, line, off) < 0) {
		/* Nowhere left to report it. */
	}
}

/* Logs a message at level. */
void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, NULL, fmt, ap);
	va_end(ap);
}

/* Logs an error and exits 1. */
void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
