/*
 * log.c - process logging: one line per message on stderr.
 *
 * The gateway logs a line per request from its event loops, which must
 * never wait for a slow stderr (a pipe to a busy journal). Once
 * log_start_async() ran, lines go to a bounded in-memory queue that a
 * thread of its own writes out, many lines a write: a line waits up to
 * ASYNC_GATHER_MS for those that follow it. When the queue is full the
 * line is dropped and the drop counted and reported, rather than blocking
 * a request.
 *
 * What a client sent reaches log lines (a model name, a header), so every
 * message is escaped here, where no caller can forget it: control bytes,
 * backslashes and bytes that are not UTF-8 become \n, \\, \xNN..., and a
 * line is always one line of valid UTF-8.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "utf8.h"

static enum log_level log_level = LOG_INFO;
static int log_json;

#define ASYNC_GATHER_MS 10         /* a line waits at most this for others */
#define ASYNC_HIGH      (64 << 10) /* queued bytes written without waiting */

/* The queue of the logger thread, when one runs (log_start_async). */
static struct {
	atomic_int on;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char buf[1 << 20];
	size_t len;
	long long dropped;
	int stop;
} async = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .cond = PTHREAD_COND_INITIALIZER };

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

/* Whether the UTF-8 sequence at p (n bytes) is a character some terminal
 * or log viewer acts on: a C1 control (U+0080 to U+009F, e.g. CSI or
 * NEL) or the line and paragraph separators U+2028, U+2029. Escaped byte
 * by byte like invalid UTF-8. */
static int
breaks_lines(const unsigned char *p, size_t n)
{
	return (n == 2 && p[0] == 0xc2 && p[1] <= 0x9f) ||
	       (n == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
		(p[2] == 0xa8 || p[2] == 0xa9));
}

/* Appends s to buf from off, escaped for a text line (json 0) or the
 * body of a JSON string (json 1): quotes and backslashes, control bytes
 * and bytes that are not UTF-8. Returns the new offset; stops short when
 * buf is full. */
static size_t
escape(char *buf, size_t size, size_t off, const char *s, int json)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0' && off + 12 < size) {
		unsigned char c = *p;
		size_t n;

		/* Printable ASCII goes as it is, a run at a time. */
		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
			const unsigned char *run = p;
			while (run[1] >= 0x20 && run[1] < 0x7f &&
			       run[1] != '\\' && run[1] != '"' &&
			       off + (size_t)(run + 1 - p) + 12 < size)
				run++;
			n = (size_t)(run + 1 - p);
			memcpy(buf + off, p, n);
			off += n;
			p += n;
			continue;
		}
		n = utf8_len((const char *)p);
		/* Text escapes are the same in both formats; in JSON their
		 * backslash is escaped once more, so the decoded message
		 * reads as the text line does. */
		const char *bs = json ? "\\\\" : "\\";
		if (c == '\n' || c == '\r' || c == '\t') {
			off += (size_t)snprintf(buf + off, size - off, "%s%c",
						bs,
						c == '\n'   ? 'n'
						: c == '\r' ? 'r'
							    : 't');
		} else if (c == '\\') {
			off += (size_t)snprintf(buf + off, size - off, "%s%s",
						bs, bs);
		} else if (json && c == '"') {
			buf[off++] = '\\';
			buf[off++] = '"';
		} else if (c < 0x20 || c == 0x7f || n == 0 ||
			   breaks_lines(p, n)) {
			off += (size_t)snprintf(buf + off, size - off,
						"%sx%02x", bs, c);
			n = 1;
		} else {
			memcpy(buf + off, p, n);
			off += n;
			p += n;
			continue;
		}
		p++;
	}
	return off;
}

/* Writes a buffer to stderr whole, retrying short writes. */
static void
write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			return; /* nowhere left to report it */
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Queues a formatted line for the logger thread; never waits. A full
 * queue drops the line and counts it. The thread is woken by the line
 * that starts a queue, and by the one that fills it past ASYNC_HIGH; the
 * lines between join it without a wake-up each. */
static void
async_put(const char *line, size_t n)
{
	pthread_mutex_lock(&async.lock);
	if (async.len + n > sizeof async.buf) {
		async.dropped++;
	} else {
		size_t was = async.len;
		memcpy(async.buf + async.len, line, n);
		async.len += n;
		if (was == 0 || (was < ASYNC_HIGH && async.len >= ASYNC_HIGH))
			pthread_cond_signal(&async.cond);
	}
	pthread_mutex_unlock(&async.lock);
}

/* The logger thread: swaps the queue out and writes it, until stopped. */
static void *
async_main(void *arg)
{
	static char out[sizeof async.buf];

	pthread_mutex_lock(&async.lock);
	for (;;) {
		size_t n;
		long long dropped;

		while (async.len == 0 && async.dropped == 0 && !async.stop)
			pthread_cond_wait(&async.cond, &async.lock);
		if (async.len == 0 && async.dropped == 0 && async.stop)
			break;
		if (!async.stop && async.len < ASYNC_HIGH) {
			/* Lines come in bursts: gather the burst's lines
			 * into one write. */
			struct timespec ts = clock_deadline(ASYNC_GATHER_MS);
			pthread_cond_timedwait(&async.cond, &async.lock, &ts);
		}
		n = async.len;
		memcpy(out, async.buf, n);
		async.len = 0;
		dropped = async.dropped;
		async.dropped = 0;
		pthread_mutex_unlock(&async.lock);
		write_all(out, n);
		if (dropped > 0) {
			char note[96];
			int k = snprintf(
				note, sizeof note,
				"log: %lld lines dropped (stderr too slow)\n",
				dropped);
			write_all(note, (size_t)k);
		}
		pthread_mutex_lock(&async.lock);
	}
	pthread_mutex_unlock(&async.lock);
	return NULL;
}

/* From now on, lines are queued and written by a thread of their own. */
int
log_start_async(void)
{
	async.stop = 0;
	if (pthread_create(&async.thread, NULL, async_main, NULL) != 0)
		return -1;
	atomic_store(&async.on, 1);
	return 0;
}

/* Writes what is queued and goes back to writing directly. */
void
log_stop_async(void)
{
	if (!atomic_exchange(&async.on, 0))
		return;
	pthread_mutex_lock(&async.lock);
	async.stop = 1;
	pthread_cond_signal(&async.cond);
	pthread_mutex_unlock(&async.lock);
	pthread_join(async.thread, NULL);
}

/* Writes one line of prefix and msg with one write(2), or queues it. */
static void
emit(enum log_level level, const char *prefix, const char *msg)
{
	char line[4608], ts[CLOCK_TEXT_MAX];
	struct ftext t = FTEXT(line);
	size_t off;

	clock_format(clock_wall_us(), CLOCK_ISO_MS, ts);
	if (log_json) {
		ft_add(&t, "{\"ts\":\"", 7);
		ft_str(&t, ts);
		ft_add(&t, "\",\"level\":\"", 11);
		ft_str(&t, level_names[level]);
		ft_add(&t, "\",\"msg\":\"", 9);
		off = t.len;
		if (prefix != NULL)
			off = escape(line, sizeof line, off, prefix, 1);
		off = escape(line, sizeof line, off, msg, 1);
		memcpy(line + off, "\"}\n", 3);
		off += 3;
	} else {
		ft_str(&t, ts);
		ft_add(&t, " ", 1);
		ft_str(&t, level_names[level]);
		ft_add(&t, " ", 1);
		off = t.len;
		if (prefix != NULL)
			off = escape(line, sizeof line, off, prefix, 0);
		off = escape(line, sizeof line, off, msg, 0);
		line[off++] = '\n';
	}
	if (atomic_load(&async.on))
		async_put(line, off);
	else
		write_all(line, off);
}

/* Formats one message; writes it with one write(2), or queues it. */
void
log_vmsg(enum log_level level, const char *prefix, const char *fmt, va_list ap)
{
	char msg[2048];

	if (!log_enabled(level))
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	emit(level, prefix, msg);
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

/* A request's prefix: its id and tenant. */
static void
request_prefix(char *buf, size_t size, const char *request_id,
	       const char *tenant)
{
	struct ftext t = { buf, 0, size, NULL, NULL };

	ft_str(&t, request_id);
	ft_add(&t, " tenant=", 8);
	ft_str(&t, tenant != NULL ? tenant : "-");
	ft_add(&t, " ", 1);
}

/* Logs a line about a request. */
void
log_request(enum log_level level, const char *request_id, const char *tenant,
	    const char *fmt, ...)
{
	char prefix[160];
	va_list ap;

	if (!log_enabled(level))
		return;
	request_prefix(prefix, sizeof prefix, request_id, tenant);
	va_start(ap, fmt);
	log_vmsg(level, prefix, fmt, ap);
	va_end(ap);
}

/* Logs a line about a request, its text already built. */
void
log_request_text(enum log_level level, const char *request_id,
		 const char *tenant, const char *msg)
{
	char prefix[160];

	if (!log_enabled(level))
		return;
	request_prefix(prefix, sizeof prefix, request_id, tenant);
	emit(level, prefix, msg);
}

/* Logs an error and exits 1. */
void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, NULL, fmt, ap);
	va_end(ap);
	log_stop_async();
	exit(1);
}
