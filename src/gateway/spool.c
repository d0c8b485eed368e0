/*
 * spool.c - the local journal every usage record passes through.
 *
 * Principle: no response ends before its usage record is in the journal.
 * Workers append each finished request's record with one write() of one
 * line, under a mutex, into the page cache: microseconds, never a wait on
 * the disk. A sync thread fdatasyncs the journal every spool_fsync ms
 * (group commit: a power cut takes at most that much; SIGKILL takes
 * nothing, the kernel holds what was written). The usage writer reads the
 * journal back in order, ships a batch to PostgreSQL and, only after the
 * commit, trims: a segment is unlinked once every record in it is in the
 * ledger, and the live segment is truncated whenever the writer has caught
 * up with it. A crash between a commit and its trim replays records the
 * ledger already holds; the insert does nothing for a request id it has.
 *
 * Format: segments dir/usage-<16 hex digits>.jnl, numbered upwards. A
 * process appends only to segments it created, so after a crash a torn
 * record can only be a segment's tail. One record per line:
 *
 *	<CRC-32C of the JSON, 8 lowercase hex digits> SP <JSON> LF
 *
 * (the JSON is meter_record_encode()'s). A line whose checksum or JSON does
 * not hold, and an unterminated tail, are counted, logged and skipped; the
 * rest is read. dir/lock is flock'ed for the life of the process, so two
 * gateways never share a journal.
 *
 * When an append fails (a full disk), the bytes it left are cut off again
 * (or, if that fails too, the next append starts with a newline so they
 * stay a line of their own), the failure is reported by spool_failing()
 * and the record waits in memory: spool_next() hands those out first, so
 * they are shipped directly while the disk is failing. The usage writer
 * waits in spool_wait() until a batch is due.
 *
 * A record journaled as it is (nothing in it cut or mended) is also handed
 * to the writer in memory, with where its line is: the writer takes it
 * from there when that is where it reads next, and reads and decodes the
 * line only when it is behind (a restart, a full hand-over ring).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "spool.h"

#define READ_CHUNK  (1u << 20)  /* journal bytes read at a time */
#define LINE_MAX_SZ (16u << 20) /* longer lines are corrupt */
#define APPEND_MAX  64          /* records appended with one write */
#define AHEAD_MAX   4096        /* journaled records handed over in memory */

/* A journaled record and where its line is. */
struct ahead {
	struct usage_record *rec;
	uint64_t seq;
	int64_t off, len;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake_sync;
	char *dir;
	int dirfd, lockfd;
	int64_t segment_max;
	int fsync_ms;
	pthread_t syncer;
	int syncer_running;

	/* Append side, under lock. */
	uint64_t cur_seq;
	int cur_fd;
	int64_t cur_size;
	uint64_t cur_gen; /* bumped when the live file changes identity or
			     is truncated: what a sync covered */
	int64_t synced_size;
	int need_newline; /* stray bytes of a failed append precede */
	int *retired;     /* rolled segments' fds, synced then closed */
	size_t nretired, cap_retired;
	int dir_dirty;
	int stopping;
	int failing;
	char fail_reason[128];

	/* Read side: the usage writer's thread only. */
	uint64_t *old; /* segments found at start, ascending */
	size_t nold, iold;
	uint64_t first_new; /* first segment this process created */
	uint64_t rseq;
	int rfd;
	int64_t roff, rcommit;
	char *rbuf;
	size_t rcap;

	/* Records the journal could not take (a full disk), oldest first,
	 * and what the writer is waiting for; under lock. */
	struct usage_record *mem, **mem_tail;
	int64_t nmem;
	int64_t unread; /* appended, not yet read back (a hint) */
	int batch;      /* records that make a batch due */
	int woken;      /* spool_wake() since the last spool_wait() */
	pthread_cond_t due;
	int from_mem; /* spool_next's last records came from memory */

	/* Journaled records handed over in memory, in journal order; a
	 * ring, under lock. */
	struct ahead ahead[AHEAD_MAX];
	size_t ahead_first, nahead;

	atomic_llong pending_bytes;
	atomic_llong torn;
	atomic_llong write_errors;
} s = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake_sync = PTHREAD_COND_INITIALIZER,
	.due = PTHREAD_COND_INITIALIZER,
	.mem_tail = &s.mem,
	.batch = 1,
	.dirfd = -1,
	.lockfd = -1,
	.cur_fd = -1,
	.rfd = -1,
};

static uint32_t crc_table[256];
static int crc_hw; /* the CPU has SSE 4.2's crc32 instruction */
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
#if defined(__x86_64__)
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
/* The same with the crc32 instruction, eight bytes at a time. */
__attribute__((target("sse4.2"))) static uint32_t
crc_sse42(uint32_t crc, const unsigned char *b, size_t n)
{
	uint64_t c = crc;

	for (; n >= 8; n -= 8, b += 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	while (n-- > 0)
		c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
	return (uint32_t)c;
}
#endif

/* CRC-32C, reflected polynomial 0x82f63b78: in hardware where the CPU
 * has it, else one table lookup per byte. */
uint32_t
spool_crc32c(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *b = p;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_sse42(crc, b, n);
#endif
	while (n-- > 0)
		crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* dir/usage-<seq>.jnl into buf. */
static void
seg_path(char *buf, size_t size, uint64_t seq)
{
	snprintf(buf, size, "%s/usage-%016" PRIx64 ".jnl", s.dir, seq);
}

/* The sequence number of a segment file name, or 0. */
static uint64_t
seg_seq(const char *name)
{
	uint64_t seq = 0;

	if (strlen(name) != 26 || strncmp(name, "usage-", 6) != 0 ||
	    strcmp(name + 22, ".jnl") != 0)
		return 0;
	for (int i = 6; i < 22; i++) {
		char c = name[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
					       : -1;
		if (d < 0)
			return 0;
		seq = seq << 4 | (uint64_t)d;
	}
	return seq;
}

static int
cmp_seq(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Creates dir and its parents, mode 0700. 0 or -1. */
static int
mkdirs(const char *dir)
{
	char *p = strdup(dir);
	int rc = 0;

	if (p == NULL)
		return -1;
	for (char *q = p + 1; *q != '\0'; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			rc = -1;
		*q = '/';
	}
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

/* Returns a malloc'd message. */
static char *errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *
errmsg(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return strdup(buf);
}

/* Finds the segments an earlier run left; removes empty ones. */
static int
scan_old(char **cause)
{
	DIR *d = opendir(s.dir);
	struct dirent *de;
	size_t cap = 0;
	int64_t bytes = 0;

	if (d == NULL) {
		*cause = errmsg("spool_dir %s: %s", s.dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t seq = seg_seq(de->d_name);
		struct stat st;

		if (seq == 0 || fstatat(s.dirfd, de->d_name, &st, 0) != 0)
			continue;
		if (st.st_size == 0) {
			unlinkat(s.dirfd, de->d_name, 0);
			continue;
		}
		if (s.nold == cap) {
			uint64_t *n;
			cap = cap != 0 ? cap * 2 : 16;
			n = realloc(s.old, cap * sizeof *n);
			if (n == NULL) {
				closedir(d);
				*cause = strdup("out of memory");
				return -1;
			}
			s.old = n;
		}
		s.old[s.nold++] = seq;
		bytes += st.st_size;
	}
	closedir(d);
	if (s.nold > 0)
		qsort(s.old, s.nold, sizeof *s.old, cmp_seq);
	atomic_store(&s.pending_bytes, bytes);
	if (s.nold > 0)
		log_info("spool: %zu segment%s (%" PRId64
			 " bytes) left by an earlier run; shipping them first",
			 s.nold, s.nold == 1 ? "" : "s", bytes);
	return 0;
}

/* Creates segment seq for appending. The fd, or -1 with errno. */
static int
seg_create(uint64_t seq)
{
	char path[4096];

	seg_path(path, sizeof path, seq);
	return open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
		    0600);
}

/* While appends fail, checks now and then whether the directory takes a
 * write again (a probe file, removed at once), so readiness comes back
 * without waiting for traffic. Lock not held. 1 when it does. */
static int
probe(void)
{
	static const char page[4096];
	char path[4096];
	int fd, ok;

	snprintf(path, sizeof path, "%s/.probe", s.dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	ok = write(fd, page, sizeof page) == (ssize_t)sizeof page;
	close(fd);
	unlink(path);
	return ok;
}

/* The sync thread: group commit every fsync_ms. */
static void *
sync_main(void *arg)
{
	int64_t last_probe = 0;

	(void)arg;
	pthread_mutex_lock(&s.lock);
	for (;;) {
		int *retired, fd, dir_dirty, stop = s.stopping;
		size_t nretired;
		int64_t size;
		uint64_t gen;

		if (!stop) {
			if (s.fsync_ms > 0 || s.failing) {
				struct timespec ts = clock_deadline(
					s.fsync_ms > 0 ? s.fsync_ms : 1000);
				pthread_cond_timedwait(&s.wake_sync, &s.lock,
						       &ts);
			} else if (s.cur_size == s.synced_size &&
				   s.nretired == 0 && !s.dir_dirty) {
				pthread_cond_wait(&s.wake_sync, &s.lock);
			}
			stop = s.stopping;
		}
		if (s.failing && clock_mono_ms() - last_probe >= 1000) {
			int ok;
			last_probe = clock_mono_ms();
			pthread_mutex_unlock(&s.lock);
			ok = probe();
			pthread_mutex_lock(&s.lock);
			if (ok && s.failing) {
				log_info("spool: %s takes writes again", s.dir);
				s.failing = 0;
			}
		}
		fd = s.cur_fd;
		size = s.cur_size;
		gen = s.cur_gen;
		retired = s.retired;
		nretired = s.nretired;
		dir_dirty = s.dir_dirty;
		s.retired = NULL;
		s.nretired = s.cap_retired = 0;
		s.dir_dirty = 0;
		if (size == s.synced_size && nretired == 0 && !dir_dirty) {
			free(retired);
			if (stop)
				break;
			continue;
		}
		pthread_mutex_unlock(&s.lock);

		for (size_t i = 0; i < nretired; i++) {
			if (fdatasync(retired[i]) != 0)
				log_error("spool: fdatasync: %s",
					  strerror(errno));
			close(retired[i]);
		}
		free(retired);
		if (fd >= 0 && fdatasync(fd) != 0)
			log_error("spool: fdatasync: %s", strerror(errno));
		if (dir_dirty && fsync(s.dirfd) != 0)
			log_error("spool: fsync of %s: %s", s.dir,
				  strerror(errno));

		pthread_mutex_lock(&s.lock);
		if (gen == s.cur_gen)
			s.synced_size = size;
		if (stop)
			break;
	}
	pthread_mutex_unlock(&s.lock);
	return NULL;
}

/* Forgets the records handed over in memory (lock held). */
static void
ahead_clear(void)
{
	while (s.nahead > 0) {
		meter_record_free(s.ahead[s.ahead_first].rec);
		s.ahead_first = (s.ahead_first + 1) % AHEAD_MAX;
		s.nahead--;
	}
}

/* Forgets everything about the last journal (files already closed). */
static void
reset(void)
{
	s.dir = NULL;
	s.dirfd = s.lockfd = s.cur_fd = s.rfd = -1;
	s.syncer_running = 0;
	s.cur_seq = s.cur_gen = 0;
	s.cur_size = s.synced_size = 0;
	s.need_newline = 0;
	s.retired = NULL;
	s.nretired = s.cap_retired = 0;
	s.dir_dirty = s.stopping = s.failing = 0;
	s.fail_reason[0] = '\0';
	s.old = NULL;
	s.nold = s.iold = 0;
	s.first_new = s.rseq = 0;
	s.roff = s.rcommit = 0;
	s.rbuf = NULL;
	s.rcap = 0;
	s.unread = 0;
	s.woken = s.from_mem = 0;
	atomic_store(&s.pending_bytes, 0);
}

/* Undoes a spool_open that failed half way. */
static int
open_failed(void)
{
	if (s.cur_fd >= 0)
		close(s.cur_fd);
	if (s.dirfd >= 0)
		close(s.dirfd);
	if (s.lockfd >= 0)
		close(s.lockfd);
	free(s.old);
	free(s.rbuf);
	free(s.dir);
	reset();
	return -1;
}

/* Opens the journal. */
int
spool_open(const char *dir, int64_t segment_size, int fsync_ms, char **cause)
{
	char path[4096], pid[32];
	uint64_t last;
	int n;

	*cause = NULL;
	reset();
	s.dir = strdup(dir);
	s.segment_max = segment_size;
	s.fsync_ms = fsync_ms;
	if (s.dir == NULL || mkdirs(dir) != 0) {
		*cause = errmsg("spool_dir %s: cannot create: %s", dir,
				strerror(errno));
		return open_failed();
	}
	s.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.dirfd < 0) {
		*cause = errmsg("spool_dir %s: %s", dir, strerror(errno));
		return open_failed();
	}
	snprintf(path, sizeof path, "%s/lock", dir);
	s.lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s.lockfd < 0) {
		*cause = errmsg("%s: %s", path, strerror(errno));
		return open_failed();
	}
	if (flock(s.lockfd, LOCK_EX | LOCK_NB) != 0) {
		ssize_t r = pread(s.lockfd, pid, sizeof pid - 1, 0);
		pid[r > 0 ? r : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		*cause = errmsg("spool_dir %s is in use by another tollgated "
				"(pid %s); give each instance its own",
				dir, *pid ? pid : "unknown");
		return open_failed();
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(s.lockfd, 0) != 0 ||
	    pwrite(s.lockfd, pid, (size_t)n, 0) != n)
		log_warn("spool: cannot write the pid to %s", path);
	if (scan_old(cause) != 0)
		return open_failed();

	last = s.nold > 0 ? s.old[s.nold - 1] : 0;
	s.cur_seq = s.first_new = last + 1;
	s.cur_fd = seg_create(s.cur_seq);
	if (s.cur_fd < 0) {
		seg_path(path, sizeof path, s.cur_seq);
		*cause = errmsg("%s: cannot create: %s", path, strerror(errno));
		return open_failed();
	}
	s.cur_size = s.synced_size = 0;
	s.dir_dirty = 1;
	s.rseq = s.nold > 0 ? s.old[0] : s.first_new;
	s.iold = 0;
	s.rcap = READ_CHUNK;
	s.rbuf = malloc(s.rcap);
	if (s.rbuf == NULL) {
		*cause = strdup("out of memory");
		return open_failed();
	}
	if (pthread_create(&s.syncer, NULL, sync_main, NULL) != 0) {
		*cause = strdup("cannot start the spool sync thread");
		return open_failed();
	}
	s.syncer_running = 1;
	log_info("spool: journal in %s, fsync every %d ms", dir, fsync_ms);
	return 0;
}

/* Syncs, stops and closes. */
void
spool_close(void)
{
	pthread_mutex_lock(&s.lock);
	s.stopping = 1;
	pthread_cond_signal(&s.wake_sync);
	pthread_mutex_unlock(&s.lock);
	if (s.syncer_running)
		pthread_join(s.syncer, NULL);
	s.syncer_running = 0;
	for (size_t i = 0; i < s.nretired; i++)
		close(s.retired[i]);
	free(s.retired);
	s.retired = NULL;
	s.nretired = s.cap_retired = 0;
	if (s.cur_fd >= 0) {
		struct stat st;
		char path[4096];
		/* A journal with nothing left to ship leaves no file. */
		if (fstat(s.cur_fd, &st) == 0 && st.st_size == 0) {
			seg_path(path, sizeof path, s.cur_seq);
			unlink(path);
		}
		close(s.cur_fd);
	}
	if (s.rfd >= 0)
		close(s.rfd);
	if (s.nmem > 0)
		log_error(
			"spool: %lld usage records neither journaled nor written are lost",
			(long long)s.nmem);
	while (s.mem != NULL) {
		struct usage_record *r = s.mem;
		s.mem = r->next;
		meter_record_free(r);
	}
	s.mem_tail = &s.mem;
	s.nmem = 0;
	ahead_clear();
	if (atomic_load(&s.pending_bytes) > 0)
		log_info(
			"spool: %lld bytes of usage records stay in %s for the next start",
			(long long)atomic_load(&s.pending_bytes), s.dir);
	if (s.dirfd >= 0)
		close(s.dirfd);
	if (s.lockfd >= 0)
		close(s.lockfd); /* releases the flock */
	free(s.old);
	free(s.rbuf);
	free(s.dir);
	reset();
}

/* Frames rec as a journal line into a malloc'd buffer: the record is
 * encoded after room for its checksum, which is then written in front. */
static char *
frame(const struct usage_record *rec, size_t *len, int *mended)
{
	size_t jlen;
	char *line = meter_record_encode_at(rec, 9, &jlen, mended);
	uint32_t crc;

	if (line == NULL)
		return NULL;
	crc = spool_crc32c(0, line + 9, jlen);
	for (int i = 7; i >= 0; i--, crc >>= 4)
		line[i] = "0123456789abcdef"[crc & 0xf];
	line[8] = ' ';
	line[9 + jlen] = '\n'; /* where the encoder's NUL was */
	*len = jlen + 10;
	return line;
}

/* Moves to a new segment (lock held). 0 or -1. */
static int
roll(void)
{
	int fd = seg_create(s.cur_seq + 1);

	if (fd < 0)
		return -1;
	if (s.nretired == s.cap_retired) {
		size_t cap = s.cap_retired ? s.cap_retired * 2 : 4;
		int *n = realloc(s.retired, cap * sizeof *n);
		if (n == NULL) {
			close(fd);
			return -1;
		}
		s.retired = n;
		s.cap_retired = cap;
	}
	s.retired[s.nretired++] = s.cur_fd;
	s.cur_fd = fd;
	s.cur_seq++;
	s.cur_gen++;
	s.cur_size = s.synced_size = 0;
	s.need_newline = 0;
	s.dir_dirty = 1;
	return 0;
}

/* Records a failed append (lock held). */
static void
append_failed(int err)
{
	atomic_fetch_add(&s.write_errors, 1);
	if (!s.failing)
		log_error(
			"spool: cannot append to the journal in %s: %s; usage records are kept in memory until it can",
			s.dir, strerror(err));
	s.failing = 1;
	snprintf(s.fail_reason, sizeof s.fail_reason, "%s", strerror(err));
}

/* Appends the framed lines (lock held): all of them, or, when the write
 * fails, none. 0 or -1. */
static int
append_locked(struct iovec *lines, int nlines, size_t len)
{
	struct iovec iov[APPEND_MAX + 1];
	size_t want;
	ssize_t n;
	int iovcnt = 0, err;

	if (s.cur_fd < 0)
		return -1;
	if (s.cur_size > 0 && s.cur_size + (int64_t)len > s.segment_max &&
	    roll() != 0)
		log_warn("spool: cannot start a new segment: %s",
			 strerror(errno));
	if (s.need_newline) {
		iov[iovcnt].iov_base = (void *)"\n";
		iov[iovcnt++].iov_len = 1;
	}
	memcpy(iov + iovcnt, lines, (size_t)nlines * sizeof *iov);
	iovcnt += nlines;
	want = len + (s.need_newline ? 1 : 0);
	do {
		n = writev(s.cur_fd, iov, iovcnt);
	} while (n < 0 && errno == EINTR);
	if (n == (ssize_t)want) {
		s.cur_size += n;
		s.need_newline = 0;
		atomic_fetch_add(&s.pending_bytes, n);
		if (s.failing)
			log_info("spool: appending to the journal again");
		s.failing = 0;
		if (s.fsync_ms == 0)
			pthread_cond_signal(&s.wake_sync);
		return 0;
	}
	err = errno;
	if (n >= 0) {
		/* A short write: writing the rest tells why. */
		ssize_t m = write(s.cur_fd, lines[0].iov_base, 1);
		err = m < 0 ? errno : ENOSPC;
		if (m > 0)
			n += m;
	}
	if (n > 0) {
		/* Cut the partial lines off; failing that, keep them a line
		 * of their own, which the reader skips as corrupt. */
		if (ftruncate(s.cur_fd, s.cur_size) != 0) {
			s.cur_size += n;
			atomic_fetch_add(&s.pending_bytes, n);
			s.need_newline = 1;
		}
	}
	append_failed(err);
	return -1;
}

/* Appends one record. */
int
spool_append(const struct usage_record *rec)
{
	struct iovec line;
	int rc;

	if ((line.iov_base = frame(rec, &line.iov_len, NULL)) == NULL)
		return -1;
	pthread_mutex_lock(&s.lock);
	rc = append_locked(&line, 1, line.iov_len);
	pthread_mutex_unlock(&s.lock);
	free(line.iov_base);
	return rc;
}

/* Hands recs[0..n) over in memory, their lines just appended and ending
 * the live segment (lock held); those handed over become NULL. */
static void
ahead_put(struct usage_record **recs, const struct iovec *lines,
	  const int *exact, int n)
{
	int64_t off = s.cur_size;

	for (int i = 0; i < n; i++)
		off -= (int64_t)lines[i].iov_len;
	for (int i = 0; i < n; i++) {
		if (exact[i] && s.nahead < AHEAD_MAX) {
			struct ahead *a =
				&s.ahead[(s.ahead_first + s.nahead++) %
					 AHEAD_MAX];
			a->rec = recs[i];
			a->seq = s.cur_seq;
			a->off = off;
			a->len = (int64_t)lines[i].iov_len;
			recs[i] = NULL;
		}
		off += (int64_t)lines[i].iov_len;
	}
}

/* Takes the records handed over in memory whose lines are the next the
 * reader would read, up to max in all; drops those it has read past. */
static void
ahead_take(int max, int *n, struct usage_record ***tail)
{
	pthread_mutex_lock(&s.lock);
	while (s.nahead > 0) {
		struct ahead *a = &s.ahead[s.ahead_first];
		if (a->seq == s.rseq && a->off == s.roff) {
			if (*n >= max)
				break;
			a->rec->next = NULL;
			**tail = a->rec;
			*tail = &a->rec->next;
			s.roff += a->len;
			++*n;
		} else if (a->seq < s.rseq ||
			   (a->seq == s.rseq && a->off < s.roff)) {
			meter_record_free(a->rec);
		} else {
			break;
		}
		s.ahead_first = (s.ahead_first + 1) % AHEAD_MAX;
		s.nahead--;
	}
	pthread_mutex_unlock(&s.lock);
}

/* Takes finished requests' records: journaled with one write, or kept in
 * memory when the journal cannot take them; wakes the writer when a batch
 * is due. */
void
spool_submit(struct usage_record **recs, int n)
{
	struct iovec lines[APPEND_MAX];
	int exact[APPEND_MAX];

	while (n > 0) {
		int k = n < APPEND_MAX ? n : APPEND_MAX, framed = 0;
		size_t len = 0;

		for (int i = 0; i < k; i++) {
			int mended;
			lines[i].iov_base =
				frame(recs[i], &lines[i].iov_len, &mended);
			if (lines[i].iov_base == NULL)
				break;
			exact[i] =
				meter_record_as_decoded(recs[i], mended) == 0;
			len += lines[i].iov_len;
			framed++;
		}
		pthread_mutex_lock(&s.lock);
		if (framed == k && append_locked(lines, k, len) == 0) {
			s.unread += k;
			ahead_put(recs, lines, exact, k);
		} else {
			for (int i = 0; i < k; i++) {
				recs[i]->next = NULL;
				*s.mem_tail = recs[i];
				s.mem_tail = &recs[i]->next;
				recs[i] = NULL;
			}
			s.nmem += k;
		}
		if (s.unread + s.nmem >= s.batch)
			pthread_cond_signal(&s.due);
		pthread_mutex_unlock(&s.lock);
		for (int i = 0; i < k; i++) {
			if (i < framed)
				free(lines[i].iov_base);
			meter_record_free(recs[i]);
			recs[i] = NULL;
		}
		recs += k;
		n -= k;
	}
}

/* Waits until batch records wait, spool_wake(), or ms. */
void
spool_wait(int batch, int ms)
{
	pthread_mutex_lock(&s.lock);
	s.batch = batch > 0 ? batch : 1;
	if (!s.woken && ms > 0 && s.unread + s.nmem < s.batch) {
		struct timespec ts = clock_deadline(ms);
		pthread_cond_timedwait(&s.due, &s.lock, &ts);
	}
	s.woken = 0;
	pthread_mutex_unlock(&s.lock);
}

/* Ends a spool_wait() now, or the next one at once. */
void
spool_wake(void)
{
	pthread_mutex_lock(&s.lock);
	s.woken = 1;
	pthread_cond_signal(&s.due);
	pthread_mutex_unlock(&s.lock);
}

/* Takes up to max records kept in memory. */
static int
next_in_memory(int max, struct usage_record **head)
{
	struct usage_record *r, *last = NULL;
	int n = 0;

	pthread_mutex_lock(&s.lock);
	*head = s.mem;
	for (r = s.mem; r != NULL && n < max; r = r->next) {
		last = r;
		n++;
	}
	if (last != NULL) {
		s.mem = last->next;
		last->next = NULL;
		if (s.mem == NULL)
			s.mem_tail = &s.mem;
	}
	s.nmem -= n;
	pthread_mutex_unlock(&s.lock);
	return n;
}

/* Takes back records spool_next() handed out that were not shipped. */
void
spool_return(struct usage_record *head)
{
	struct usage_record *last, *r;
	int64_t n = 0;

	if (!s.from_mem) {
		/* Journaled: they stay in the journal for the next start. */
		while (head != NULL) {
			r = head->next;
			meter_record_free(head);
			head = r;
		}
		return;
	}
	if (head == NULL)
		return;
	for (last = head, n = 1; last->next != NULL; last = last->next)
		n++;
	pthread_mutex_lock(&s.lock);
	last->next = s.mem;
	if (s.mem == NULL)
		s.mem_tail = &last->next;
	s.mem = head;
	s.nmem += n;
	pthread_mutex_unlock(&s.lock);
}

/* Records waiting in memory. */
int64_t
spool_in_memory(void)
{
	int64_t n;

	pthread_mutex_lock(&s.lock);
	n = s.nmem;
	pthread_mutex_unlock(&s.lock);
	return n;
}

/* Appends a rejected record to dir/rejected.jnl. */
int
spool_reject(const struct usage_record *rec)
{
	char path[4096];
	size_t len;
	char *line = frame(rec, &len, NULL);
	int fd, rc = -1;

	if (line == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/rejected.jnl", s.dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, line, len) == (ssize_t)len && fdatasync(fd) == 0)
			rc = 0;
		close(fd);
	}
	free(line);
	return rc;
}

/* Moves the reader to the segment after rseq. */
static void
next_segment(void)
{
	if (s.rfd >= 0)
		close(s.rfd);
	s.rfd = -1;
	s.roff = s.rcommit = 0;
	if (s.iold < s.nold && s.rseq == s.old[s.iold]) {
		s.iold++;
		s.rseq = s.iold < s.nold ? s.old[s.iold] : s.first_new;
	} else {
		s.rseq++;
	}
}

/* Counts a skipped record. */
static void
skipped(const char *what, int64_t off)
{
	char path[4096];

	atomic_fetch_add(&s.torn, 1);
	seg_path(path, sizeof path, s.rseq);
	log_error("spool: skipped a %s record in %s at byte %" PRId64, what,
		  path, off);
}

/* Decodes one line (without its newline); NULL when corrupt. */
static struct usage_record *
decode_line(const char *p, size_t n)
{
	uint32_t want = 0;

	if (n < 10 || p[8] != ' ')
		return NULL;
	for (int i = 0; i < 8; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
					       : -1;
		if (d < 0)
			return NULL;
		want = want << 4 | (uint32_t)d;
	}
	if (spool_crc32c(0, p + 9, n - 9) != want)
		return NULL;
	return meter_record_decode(p + 9, n - 9);
}

static int read_journal(int max, struct usage_record **head);

/* Reads the next records: those kept in memory first, then the
 * journal's. */
int
spool_next(int max, struct usage_record **head)
{
	int n = next_in_memory(max, head);

	s.from_mem = n > 0;
	if (n > 0)
		return n;
	n = read_journal(max, head);
	pthread_mutex_lock(&s.lock);
	s.unread = s.unread > n ? s.unread - n : 0;
	pthread_mutex_unlock(&s.lock);
	return n;
}

/* Reads the journal's next records. */
static int
read_journal(int max, struct usage_record **head)
{
	struct usage_record **tail = head;
	int n = 0;

	*head = NULL;
	for (;;) {
		int64_t limit;
		int live;
		ssize_t got;
		size_t used = 0;
		char *p, *nl;

		pthread_mutex_lock(&s.lock);
		live = s.rseq == s.cur_seq;
		limit = s.cur_size;
		pthread_mutex_unlock(&s.lock);
		if (s.rfd < 0) {
			char path[4096];
			seg_path(path, sizeof path, s.rseq);
			s.rfd = open(path, O_RDONLY | O_CLOEXEC);
			if (s.rfd < 0) {
				if (live)
					return n;
				log_error("spool: %s: %s", path,
					  strerror(errno));
				next_segment();
				continue;
			}
			s.roff = s.rcommit = 0;
		}
		if (!live) {
			struct stat st;
			limit = fstat(s.rfd, &st) == 0 ? st.st_size : 0;
		}
		if (s.roff >= limit) {
			if (live || n > 0 || s.rcommit < s.roff)
				return n;
			/* A finished segment with everything committed. */
			{
				char path[4096];
				seg_path(path, sizeof path, s.rseq);
				unlink(path);
			}
			next_segment();
			continue;
		}
		if (n >= max)
			return n;
		{
			int before = n;
			ahead_take(max, &n, &tail);
			if (n > before)
				continue;
		}
		{
			size_t want = (size_t)(limit - s.roff);
			if (want > s.rcap)
				want = s.rcap;
			got = pread(s.rfd, s.rbuf, want, s.roff);
		}
		if (got <= 0) {
			log_error("spool: reading segment %016" PRIx64 ": %s",
				  s.rseq,
				  got < 0 ? strerror(errno) : "unexpected end");
			return n;
		}
		p = s.rbuf;
		while (n < max &&
		       (nl = memchr(p, '\n', (size_t)got - used)) != NULL) {
			size_t len = (size_t)(nl - p);
			struct usage_record *rec = decode_line(p, len);
			if (rec != NULL) {
				*tail = rec;
				tail = &rec->next;
				n++;
			} else {
				skipped("corrupt", s.roff + (int64_t)used);
			}
			used += len + 1;
			p = nl + 1;
		}
		if (used == 0) {
			/* No complete line in the chunk. */
			if ((size_t)got == s.rcap && s.rcap < LINE_MAX_SZ) {
				char *nb = realloc(s.rbuf, s.rcap * 2);
				if (nb != NULL) {
					s.rbuf = nb;
					s.rcap *= 2;
					continue;
				}
			}
			/* In the live segment only the stray bytes of a failed
			 * append lack their newline; the next append ends
			 * them, and they are skipped then. */
			if (live && s.roff + got == limit)
				return n;
			skipped(s.roff + got == limit ? "torn" : "oversized",
				s.roff);
			used = (size_t)got;
		}
		s.roff += (int64_t)used;
		if (n == 0) {
			/* Only skipped bytes: nothing to ship for them. */
			atomic_fetch_sub(&s.pending_bytes, s.roff - s.rcommit);
			s.rcommit = s.roff;
		}
	}
}

/* The last records read are in the ledger. */
void
spool_commit(void)
{
	if (s.from_mem)
		return;
	atomic_fetch_sub(&s.pending_bytes, s.roff - s.rcommit);
	s.rcommit = s.roff;
	pthread_mutex_lock(&s.lock);
	if (s.rseq == s.cur_seq && s.rcommit == s.cur_size && s.cur_size > 0 &&
	    !s.need_newline) {
		/* Caught up with the live segment: empty it. */
		if (ftruncate(s.cur_fd, 0) == 0) {
			/* Every line was read: what is still handed over is
			 * stale, and its offsets are about to be reused. */
			ahead_clear();
			s.cur_gen++;
			s.cur_size = s.synced_size = 0;
			s.roff = s.rcommit = 0;
		}
	}
	pthread_mutex_unlock(&s.lock);
}

/* Whether appends fail, and why. */
int
spool_failing(char *buf, size_t size)
{
	int failing;

	pthread_mutex_lock(&s.lock);
	failing = s.failing;
	if (buf != NULL && size > 0)
		snprintf(buf, size, "%s", failing ? s.fail_reason : "");
	pthread_mutex_unlock(&s.lock);
	return failing;
}

int64_t
spool_pending_bytes(void)
{
	return atomic_load(&s.pending_bytes);
}

int64_t
spool_torn(void)
{
	return atomic_load(&s.torn);
}

int64_t
spool_write_errors(void)
{
	return atomic_load(&s.write_errors);
}
