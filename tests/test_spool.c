/*
 * test_spool.c - the usage-record journal against real files: the record's
 * line form, append and read-back, segment roll and trim, replay after a
 * restart or a crash, torn and corrupt lines, the directory lock, a failing
 * disk, and appends racing the reader.
 *
 * The spool is a singleton that a process opens once, as tollgated does, so
 * every scenario runs in a process of its own (run()), on a directory of
 * its own under one mkdtemp() root that is removed at the end. The child
 * numbers its checks on from the parent's count and hands its totals back
 * through a pipe; a child that dies counts as a failure.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "meter.h"
#include "spool.h"
#include "tap.h"

#define MAX_SEGS 256

static char root[] = "/tmp/test_spool.XXXXXX";

/* Whether two strings are equal, NULL equal only to NULL. */
static int
str_eq(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* A record with every field set, varying with i (NULL strings and a
 * missing ttfb on some). Ids are "req-%08d" of i. */
static struct usage_record *
sample(int i)
{
	static const char *const models[] = {
		"gpt-4o-mini",
		"glm-4 \"plus\" \\ edition",
		/* 通义千问-max, then an emoji */
		"\xe9\x80\x9a\xe4\xb9\x89\xe5\x8d\x83\xe9\x97\xae-max",
		"claude \xf0\x9f\x98\x80 3.5",
		"tab\there\nnewline\x01\x1f\x7f",
	};
	struct usage_record *r = meter_record_new();
	char buf[64];

	snprintf(r->request_id, sizeof r->request_id, "req-%08d", i);
	r->ts_us = INT64_C(1764340000000000) + (int64_t)i * 1000;
	r->tenant_id = 1 + i % 5;
	r->key_id = 10 + i % 11;
	snprintf(buf, sizeof buf, "tenant-%d", i % 5);
	r->tenant = strdup(buf);
	r->endpoint = i % 3 == 0   ? "chat/completions"
		      : i % 3 == 1 ? "messages"
				   : NULL;
	r->requested_model = i % 4 == 3 ? NULL : strdup(models[i % 5]);
	r->provider = i % 4 == 3 ? NULL : strdup("zhipu");
	r->upstream_model = strdup(models[(i + 1) % 5]);
	r->streamed = i % 2;
	r->status = i % 9 == 0 ? 429 : 200;
	r->usage.prompt = 1000 + i;
	r->usage.completion = 2 * i;
	r->usage.cached = i % 100;
	r->usage.cache_write = i % 7;
	r->usage.reasoning = i % 13;
	r->usage.present = 1;
	r->source = (enum usage_source)(i % 3);
	r->client_aborted = i % 10 == 0;
	r->latency_ms = 50 + i;
	r->ttfb_ms = i % 6 == 0 ? -1 : 20 + i;
	r->error = i % 9 == 0 ? strdup("rate limited: \"rpm\" "
				       "\xe8\xb6\x85\xe8\xbf\x87 \\ 60")
			      : NULL;
	snprintf(r->refusal, sizeof r->refusal, "%s",
		 i % 9 == 0 ? "rate_limit:requests" : "");
	return r;
}

/* The first field in which the journal fields of a and b differ, or
 * NULL. */
static const char *
rec_diff(const struct usage_record *a, const struct usage_record *b)
{
#define D_INT(f)                                                               \
	do {                                                                   \
		if (a->f != b->f)                                              \
			return #f;                                             \
	} while (0)
#define D_STR(f)                                                               \
	do {                                                                   \
		if (!str_eq(a->f, b->f))                                       \
			return #f;                                             \
	} while (0)
	D_STR(request_id);
	D_INT(ts_us);
	D_INT(tenant_id);
	D_INT(key_id);
	D_STR(tenant);
	D_STR(endpoint);
	D_STR(requested_model);
	D_STR(provider);
	D_STR(upstream_model);
	D_INT(streamed);
	D_INT(status);
	D_INT(usage.prompt);
	D_INT(usage.completion);
	D_INT(usage.cached);
	D_INT(usage.cache_write);
	D_INT(usage.reasoning);
	D_INT(usage.present);
	D_INT(source);
	D_INT(client_aborted);
	D_INT(latency_ms);
	D_INT(ttfb_ms);
	D_STR(error);
	D_STR(refusal);
	return NULL;
#undef D_INT
#undef D_STR
}

/* The bytes rec takes in the journal: checksum, space, JSON, newline. */
static int64_t
line_len(const struct usage_record *rec)
{
	size_t n = 0;
	char *json = meter_record_encode(rec, &n);

	free(json);
	return (int64_t)n + 10;
}

/* line_len of sample(i) for each i in [from, to). */
static int64_t
samples_len(int from, int to)
{
	int64_t sum = 0;

	for (int i = from; i < to; i++) {
		struct usage_record *r = sample(i);
		sum += line_len(r);
		meter_record_free(r);
	}
	return sum;
}

/* Size of a file, -1 when it does not exist. */
static int64_t
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* The path of segment seq in dir. */
static void
seg_name(char *buf, size_t size, const char *dir, uint64_t seq)
{
	snprintf(buf, size, "%s/usage-%016" PRIx64 ".jnl", dir, seq);
}

/* The segment files in dir, ascending, with their sizes. How many. */
static int
list_segs(const char *dir, uint64_t *seq, int64_t *size)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < MAX_SEGS) {
		uint64_t v;
		char path[512];
		if (strncmp(de->d_name, "usage-", 6) != 0 ||
		    sscanf(de->d_name, "usage-%16" SCNx64 ".jnl", &v) != 1)
			continue;
		seq[n] = v;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		size[n++] = file_size(path);
	}
	closedir(d);
	for (int i = 1; i < n; i++) /* insertion sort, by number */
		for (int j = i; j > 0 && seq[j - 1] > seq[j]; j--) {
			uint64_t t = seq[j];
			int64_t z = size[j];
			seq[j] = seq[j - 1];
			size[j] = size[j - 1];
			seq[j - 1] = t;
			size[j - 1] = z;
		}
	return n;
}

/* The sum of n sizes. */
static int64_t
sum_sizes(const int64_t *size, int n)
{
	int64_t sum = 0;

	for (int i = 0; i < n; i++)
		sum += size[i];
	return sum;
}

/* Opens the spool or fails the check with the cause. 0 or -1. */
static int
open_spool(const char *dir, int64_t segment_size, int fsync_ms)
{
	char *cause = NULL;
	int rc = spool_open(dir, segment_size, fsync_ms, &cause);

	if (!ok(rc == 0, "spool_open %s", dir))
		diag("cause: %s", cause != NULL ? cause : "(none)");
	free(cause);
	return rc;
}

/* spool_append of sample(i): 0 or -1. */
static int
append_one(int i)
{
	struct usage_record *r = sample(i);
	int rc = spool_append(r);

	meter_record_free(r);
	return rc;
}

/* Appends sample(i) for i in [from, to); how many appends failed. */
static int
append_samples(int from, int to)
{
	int bad = 0;

	for (int i = from; i < to; i++) {
		struct usage_record *r = sample(i);
		bad += spool_append(r) != 0;
		meter_record_free(r);
	}
	return bad;
}

/* Reads the journal to its end in batches of at most max, committing
 * each, and checks that it gives back sample(ids[0]) .. sample(ids[n-1])
 * in that order with equal fields. Batch sizes go to sizes (when not
 * NULL, up to nsizes). How many batches. */
static int
drain(const char *what, int max, const int *ids, int n, int *sizes, int nsizes)
{
	int got = 0, equal = 0, batches = 0, oversized = 0, k;
	struct usage_record *head, *r;
	const char *field = NULL;
	int bad_at = -1;

	while ((k = spool_next(max, &head)) > 0) {
		int in_list = 0;
		if (sizes != NULL && batches < nsizes)
			sizes[batches] = k;
		batches++;
		oversized += k > max;
		while ((r = head) != NULL) {
			head = r->next;
			in_list++;
			if (got < n && bad_at < 0) {
				struct usage_record *want = sample(ids[got]);
				const char *f = rec_diff(r, want);
				if (f == NULL)
					equal++;
				else
					bad_at = got, field = f;
				meter_record_free(want);
			}
			got++;
			meter_record_free(r);
		}
		if (in_list != k)
			oversized++; /* count and list disagree */
		spool_commit();
		if (batches > 100000)
			break; /* a reader that never gets to the end */
	}
	ok(head == NULL, "%s: spool_next leaves the list empty at the end",
	   what);
	is_int(got, n, "%s: every record came back", what);
	if (!ok(equal == n, "%s: in order, every field equal", what) &&
	    bad_at >= 0)
		diag("record %d (want id %d): %s differs", bad_at, ids[bad_at],
		     field);
	is_int(oversized, 0, "%s: batches hold at most %d, as counted", what,
	       max);
	return batches;
}

/* ids[i] = from + i for i < n. */
static int *
id_range(int from, int n)
{
	int *ids = calloc((size_t)n + 1, sizeof *ids);

	for (int i = 0; i < n; i++)
		ids[i] = from + i;
	return ids;
}

/* Runs one scenario in a child process on dir root/name. */
static void
run(const char *name, void (*fn)(const char *dir))
{
	char dir[512];
	int fd[2], st = 0, totals[2] = { 0, 0 };
	size_t got = 0;
	pid_t pid;

	snprintf(dir, sizeof dir, "%s/%s", root, name);
	diag("--- %s", name);
	if (pipe(fd) != 0) {
		ok(0, "%s: pipe: %s", name, strerror(errno));
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		ok(0, "%s: fork: %s", name, strerror(errno));
		return;
	}
	if (pid == 0) {
		close(fd[0]);
		fn(dir);
		totals[0] = tap_count;
		totals[1] = tap_failed;
		fflush(stdout);
		_exit(write(fd[1], totals, sizeof totals) ==
				      (ssize_t)sizeof totals
			      ? 0
			      : 1);
	}
	close(fd[1]);
	while (got < sizeof totals) {
		ssize_t n =
			read(fd[0], (char *)totals + got, sizeof totals - got);
		if (n <= 0 && !(n < 0 && errno == EINTR))
			break;
		if (n > 0)
			got += (size_t)n;
	}
	close(fd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (got == sizeof totals) {
		tap_count = totals[0];
		tap_failed = totals[1];
	}
	if (!ok(got == sizeof totals && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		"%s: the scenario ran to its end", name)) {
		if (WIFSIGNALED(st))
			diag("killed by signal %d (%s); its checks are not "
			     "counted",
			     WTERMSIG(st), strsignal(WTERMSIG(st)));
	}
}

/* ------------------------------------------------------------------ */

/* CRC-32C: the check value of the Castagnoli polynomial, and continuing
 * from a previous result. */
static void
test_crc(void)
{
	is_int(spool_crc32c(0, "123456789", 9), 0xE3069283u,
	       "crc32c(\"123456789\") is the CRC-32C check value");
	is_int(spool_crc32c(spool_crc32c(0, "1234", 4), "56789", 5),
	       0xE3069283u, "crc32c continues from a previous result");
	is_int(spool_crc32c(0, "", 0), 0, "crc32c of nothing is 0");

	/* Every length and alignment against the polynomial bit by bit
	 * (the CPU's crc32 instruction takes eight bytes at a time). */
	{
		unsigned char data[300];
		int same = 0, tried = 0;
		uint32_t seed = 12345;

		for (size_t i = 0; i < sizeof data; i++) {
			seed = seed * 1103515245u + 12345u;
			data[i] = (unsigned char)(seed >> 16);
		}
		for (size_t off = 0; off < 8; off++) {
			for (size_t n = 0; n + off <= sizeof data; n += 7) {
				uint32_t c = ~0u;
				for (size_t i = 0; i < n; i++) {
					c ^= data[off + i];
					for (int k = 0; k < 8; k++)
						c = c & 1 ? (c >> 1) ^
								    0x82f63b78u
							  : c >> 1;
				}
				same += spool_crc32c(0, data + off, n) == ~c;
				tried++;
			}
		}
		is_int(same, tried,
		       "crc32c agrees with the bitwise definition at every "
		       "length and offset");
	}
}

/* A record survives encode and decode with every field; the text is one
 * line. */
static void
test_roundtrip(void)
{
	static const struct {
		const char *name;
		int i;
	} cases[] = {
		{ "every field set, quotes and backslashes, 429", 0 },
		{ "messages, control characters in a model", 4 },
		{ "no endpoint, CJK model", 2 },
		{ "NULL model and provider", 3 },
		{ "emoji model", 8 },
		{ "ttfb -1 (no byte reached the client)", 6 },
		{ "estimated, aborted", 20 },
	};
	struct usage_record *r, *d;
	char *json;
	size_t len = 0;

	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const char *f;
		r = sample(cases[c].i);
		json = meter_record_encode(r, &len);
		ok(json != NULL && len > 2 && json[0] == '{' &&
			   json[len - 1] == '}' &&
			   memchr(json, '\n', len) == NULL &&
			   memchr(json, '\0', len) == NULL,
		   "encode %s: one line of JSON", cases[c].name);
		d = json != NULL ? meter_record_decode(json, len) : NULL;
		f = d != NULL ? rec_diff(d, r) : "(not decoded)";
		if (!ok(f == NULL, "round trip: %s", cases[c].name))
			diag("%s differs; json: %.*s", f, (int)len,
			     json != NULL ? json : "");
		meter_record_free(d);
		meter_record_free(r);
		free(json);
	}

	/* NULL strings stay NULL, "" stays "", ttfb -1 stays -1. */
	r = meter_record_new();
	snprintf(r->request_id, sizeof r->request_id, "%s",
		 "0193f7a2-5c1e-7d4b-9a61-2f8e4c3b1a00");
	r->ts_us = 1;
	r->status = 401;
	json = meter_record_encode(r, &len);
	d = json != NULL ? meter_record_decode(json, len) : NULL;
	ok(d != NULL && rec_diff(d, r) == NULL,
	   "round trip of a refused request with every string NULL");
	if (d != NULL) {
		ok(d->tenant == NULL && d->endpoint == NULL &&
			   d->requested_model == NULL && d->provider == NULL &&
			   d->upstream_model == NULL && d->error == NULL,
		   "NULL strings come back NULL, not \"\"");
		is_str(d->refusal, "", "empty refusal comes back empty");
		is_int(d->ttfb_ms, -1, "ttfb -1 comes back -1");
		is_int(d->source, USAGE_NONE, "source none");
		is_str(d->request_id, r->request_id, "a 36-character id");
	}
	meter_record_free(d);
	meter_record_free(r);
	free(json);
}

/* Invalid UTF-8 comes back valid, one U+FFFD per invalid byte. */
static void
test_utf8(void)
{
#define FFFD "\xef\xbf\xbd"
	static const struct {
		const char *name, *in, *want;
	} cases[] = {
		{ "a stray 0xff",
		  "a\xff"
		  "b",
		  "a" FFFD "b" },
		{ "a sequence cut by the end", "ab\xc3", "ab" FFFD },
		{ "a sequence cut by ASCII", "\xe4\xb8x", FFFD FFFD "x" },
		{ "an overlong '/'", "\xc0\xaf", FFFD FFFD },
		{ "a UTF-16 surrogate", "\xed\xa0\x80", FFFD FFFD FFFD },
		{ "above U+10FFFF", "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD },
		{ "a lone continuation byte", "x\x80y", "x" FFFD "y" },
		{ "valid 2-, 3- and 4-byte sequences stay",
		  "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80" FFFD,
		  "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80" FFFD },
	};
#undef FFFD

	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct usage_record *r = meter_record_new(), *d;
		size_t len = 0;
		char *json;

		snprintf(r->request_id, sizeof r->request_id, "u%zu", c);
		r->ts_us = 1;
		r->requested_model = strdup(cases[c].in);
		r->error = strdup(cases[c].in);
		json = meter_record_encode(r, &len);
		d = json != NULL ? meter_record_decode(json, len) : NULL;
		ok(d != NULL, "invalid UTF-8 (%s): the record decodes",
		   cases[c].name);
		if (d != NULL) {
			is_str(d->requested_model, cases[c].want,
			       "%s: model comes back valid", cases[c].name);
			is_str(d->error, cases[c].want,
			       "%s: error comes back valid", cases[c].name);
		}
		meter_record_free(d);
		meter_record_free(r);
		free(json);
	}
}

/* A 5000-byte string is cut to at most METER_STR_MAX bytes, at a
 * character boundary, keeping every whole character that fits. */
static void
test_cut(void)
{
	static const struct {
		const char *name, *unit; /* repeated to 5000 bytes */
		const char *lead;        /* once, first */
		const char *out_unit;    /* what a unit becomes */
		size_t want;             /* expected length */
	} cases[] = {
		{ "ASCII", "m", "", "m", 1024 },
		{ "quotes (escaped in JSON, counted once)", "\"", "", "\"",
		  1024 },
		{ "3-byte CJK", "\xe4\xb8\xad", "", "\xe4\xb8\xad", 1023 },
		{ "4-byte emoji", "\xf0\x9f\x98\x80", "", "\xf0\x9f\x98\x80",
		  1024 },
		{ "one ASCII byte, then emoji", "\xf0\x9f\x98\x80", "a",
		  "\xf0\x9f\x98\x80", 1021 },
		{ "invalid bytes (each one U+FFFD)", "\xff", "", "\xef\xbf\xbd",
		  1023 },
	};

	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		size_t ul = strlen(cases[c].unit), ll = strlen(cases[c].lead);
		size_t ol = strlen(cases[c].out_unit), o = 0, len = 0, got;
		char *in = malloc(5001), *json;
		struct usage_record *r = meter_record_new(), *d;
		int prefix = 0;

		memcpy(in, cases[c].lead, ll);
		o = ll;
		while (o + ul <= 5000) {
			memcpy(in + o, cases[c].unit, ul);
			o += ul;
		}
		in[o] = '\0';
		snprintf(r->request_id, sizeof r->request_id, "cut%zu", c);
		r->ts_us = 1;
		r->requested_model = in;
		json = meter_record_encode(r, &len);
		d = json != NULL ? meter_record_decode(json, len) : NULL;
		got = d != NULL && d->requested_model != NULL
			      ? strlen(d->requested_model)
			      : 0;
		if (d != NULL && got >= ll &&
		    memcmp(d->requested_model, cases[c].lead, ll) == 0 &&
		    (got - ll) % ol == 0) {
			prefix = 1;
			for (size_t k = ll; k < got; k += ol)
				if (memcmp(d->requested_model + k,
					   cases[c].out_unit, ol) != 0)
					prefix = 0;
		}
		ok(d != NULL && got <= METER_STR_MAX,
		   "%zu-byte %s model: cut to at most %d bytes (got %zu)", o,
		   cases[c].name, METER_STR_MAX, got);
		ok(prefix, "%s: the cut falls between whole characters",
		   cases[c].name);
		is_int(got, cases[c].want,
		       "%s: every whole character that fits is kept",
		       cases[c].name);
		meter_record_free(d);
		meter_record_free(r);
		free(json);
	}
}

/* decode refuses what is not a record meter_record_encode() could have
 * written. */
/* What decode takes that its encoder does not write: any member order,
 * escaped names, the first of repeated members, unknown members with any
 * value, every JSON string escape. */
static void
test_decode_accepts(void)
{
	static const char text[] =
		" { \"ts\" : 1764340000000000, \"extra\": {\"a\":[1,{\"b\":\"}\"}]},"
		"\"mod\\u0065l\":\"gpt\\u00e9\\ud83d\\ude00\\n\\/\\\"x\","
		"\"model\":\"second\",\"id\":\"r9\",\"v\":1,"
		"\"prompt\":null,\"status\":200,\"ttfb_ms\":7} \n";
	struct usage_record *d = meter_record_decode(text, strlen(text));

	ok(d != NULL, "decode takes members in any order, escaped names, "
		      "unknown members");
	if (d == NULL)
		return;
	is_str(d->request_id, "r9", "any order: id");
	is_int(d->ts_us, 1764340000000000, "any order: ts");
	is_str(d->requested_model, "gpt\xc3\xa9\xf0\x9f\x98\x80\n/\"x",
	       "escapes and a surrogate pair unescape; the first model wins");
	is_int(d->usage.prompt, 0, "null is absent");
	is_int(d->status, 200, "status");
	is_int(d->ttfb_ms, 7, "ttfb");
	meter_record_free(d);
}

static void
test_decode_rejects(void)
{
#define BASE "\"v\":1,\"id\":\"r1\",\"ts\":1764340000000000"
	static const struct {
		const char *name, *text;
	} cases[] = {
		{ "not JSON", "not json" },
		{ "empty", "" },
		{ "cut JSON", "{" BASE },
		{ "an array", "[1,2]" },
		{ "a string", "\"" BASE "\"" },
		{ "JSON null", "null" },
		{ "no id", "{\"v\":1,\"ts\":1}" },
		{ "empty id", "{\"v\":1,\"id\":\"\",\"ts\":1}" },
		{ "id of 40 characters",
		  "{\"v\":1,\"ts\":1,"
		  "\"id\":\"0123456789012345678901234567890123456789\"}" },
		{ "no v", "{\"id\":\"r1\",\"ts\":1}" },
		{ "v 2", "{\"v\":2,\"id\":\"r1\",\"ts\":1}" },
		{ "v 0", "{\"v\":0,\"id\":\"r1\",\"ts\":1}" },
		{ "v a string", "{\"v\":\"1\",\"id\":\"r1\",\"ts\":1}" },
		{ "no ts", "{\"v\":1,\"id\":\"r1\"}" },
		{ "ts 0", "{\"v\":1,\"id\":\"r1\",\"ts\":0}" },
		{ "ts negative", "{\"v\":1,\"id\":\"r1\",\"ts\":-5}" },
		{ "id a number", "{\"v\":1,\"id\":5,\"ts\":1}" },
		{ "ts a string", "{\"v\":1,\"id\":\"r1\",\"ts\":\"1\"}" },
		{ "tenant a number", "{" BASE ",\"tenant\":5}" },
		{ "model an array", "{" BASE ",\"model\":[]}" },
		{ "error an object", "{" BASE ",\"error\":{}}" },
		{ "endpoint a number", "{" BASE ",\"endpoint\":7}" },
		{ "endpoint of 32 characters",
		  "{" BASE ",\"endpoint\":"
		  "\"0123456789abcdef0123456789abcdef\"}" },
		{ "stream a string", "{" BASE ",\"stream\":\"yes\"}" },
		{ "status a boolean", "{" BASE ",\"status\":true}" },
		{ "prompt a string", "{" BASE ",\"prompt\":\"10\"}" },
		{ "prompt a fraction", "{" BASE ",\"prompt\":1.5}" },
		{ "prompt beyond 2^53", "{" BASE ",\"prompt\":1e300}" },
		{ "latency a string", "{" BASE ",\"latency_ms\":\"5\"}" },
		{ "refusal a number", "{" BASE ",\"refusal\":1}" },
		{ "negative prompt tokens", "{" BASE ",\"prompt\":-1}" },
		{ "negative completion tokens",
		  "{" BASE ",\"completion\":-1}" },
		{ "negative cached tokens", "{" BASE ",\"cached\":-1}" },
		{ "negative cache-write tokens",
		  "{" BASE ",\"cache_write\":-1}" },
		{ "negative reasoning tokens", "{" BASE ",\"reasoning\":-1}" },
		{ "bytes after the object", "{" BASE "} x" },
		{ "a second object after it", "{" BASE "}{}" },
		{ "an unknown escape", "{" BASE ",\"model\":\"a\\qb\"}" },
		{ "a cut \\u escape", "{" BASE ",\"model\":\"a\\u12\"}" },
		{ "a lone low surrogate", "{" BASE ",\"model\":\"\\udc00\"}" },
		{ "a high surrogate alone",
		  "{" BASE ",\"model\":\"\\ud83dx\"}" },
		{ "an unterminated string", "{" BASE ",\"model\":\"abc}" },
		{ "a member without a value", "{" BASE ",\"model\":}" },
	};
	static const char good[] = "{" BASE "}";
	struct usage_record *d = meter_record_decode(good, strlen(good));

	/* The base the cases change is itself a record. */
	ok(d != NULL, "decode accepts the minimal record %s", good);
	if (d != NULL) {
		is_str(d->request_id, "r1", "minimal record: id");
		is_int(d->ttfb_ms, -1, "minimal record: ttfb absent is -1");
	}
	meter_record_free(d);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		d = meter_record_decode(cases[c].text, strlen(cases[c].text));
		ok(d == NULL, "decode rejects %s", cases[c].name);
		meter_record_free(d);
	}
#undef BASE
}

/* ------------------------------------------------------------------ */

/* Append, read back in batches, commit, trim: on a new directory. */
static void
sc_basic(const char *base)
{
	enum { N = 50, MAX = 7 };
	char dir[512], seg[600], line[8192], want_line[8192];
	int sizes[16] = { 0 }, batches, *ids;
	int64_t total = samples_len(0, N);
	struct usage_record *head, *r;
	uint64_t seqs[MAX_SEGS];
	int64_t ssz[MAX_SEGS];
	FILE *f;

	/* Parents are created too. */
	snprintf(dir, sizeof dir, "%s/a/b/spool", base);
	if (open_spool(dir, 16 << 20, 20) != 0)
		return;
	seg_name(seg, sizeof seg, dir, 1);
	is_int(file_size(seg), 0, "a new journal starts with segment 1, empty");
	is_int(spool_pending_bytes(), 0, "nothing pending at first");
	is_int(spool_next(MAX, &head), 0, "nothing to read at first");
	ok(head == NULL, "and the list is empty");

	is_int(append_samples(0, N), 0, "%d appends succeed", N);
	is_int(spool_pending_bytes(), total,
	       "pending bytes are the %d lines' bytes", N);
	is_int(file_size(seg), total, "segment 1 holds them all");

	/* The line format, as an operator would salvage it. */
	f = fopen(seg, "r");
	r = sample(0);
	{
		size_t n = 0;
		char *json = meter_record_encode(r, &n);
		snprintf(want_line, sizeof want_line, "%08" PRIx32 " %.*s\n",
			 spool_crc32c(0, json, n), (int)n, json);
		free(json);
	}
	ok(f != NULL && fgets(line, sizeof line, f) != NULL &&
		   strcmp(line, want_line) == 0,
	   "first line is \"<crc32c, 8 lowercase hex> <json>\\n\"");
	if (f != NULL)
		fclose(f);
	meter_record_free(r);

	ids = id_range(0, N);
	batches = drain("basic", MAX, ids, N, sizes, 16);
	is_int(batches, 8, "50 records in batches of 7: 8 batches");
	ok(sizes[0] == 7 && sizes[6] == 7 && sizes[7] == 1,
	   "batch sizes 7, ..., 7, 1 (got %d, %d, %d)", sizes[0], sizes[6],
	   sizes[7]);
	is_int(spool_pending_bytes(), 0, "nothing pending after the commits");
	is_int(file_size(seg), 0,
	       "caught up: the live segment is truncated to 0 bytes");
	is_int(list_segs(dir, seqs, ssz), 1, "and it is the only segment");

	/* After the truncation, appends land at offset 0 and are read. */
	is_int(append_samples(N, N + 3), 0, "3 more appends");
	is_int(file_size(seg), samples_len(N, N + 3),
	       "they start the emptied segment again");
	free(ids);
	ids = id_range(N, 3);
	drain("after the truncation", MAX, ids, 3, NULL, 0);
	is_int(file_size(seg), 0, "caught up again: 0 bytes");
	free(ids);

	is_int(spool_torn(), 0, "nothing torn");
	is_int(spool_write_errors(), 0, "no write errors");
	is_int(spool_failing(NULL, 0), 0, "not failing");
	spool_close();
	is_int(list_segs(dir, seqs, ssz), 0,
	       "spool_close leaves no empty segment behind");
}

/* Segments roll at segment_size; the finished ones go once read. */
static void
sc_roll(const char *dir)
{
	enum { N = 200, MAX = 16 };
	uint64_t seqs[MAX_SEGS];
	int64_t ssz[MAX_SEGS];
	int n, over = 0, gaps = 0, *ids;

	if (open_spool(dir, 4096, 20) != 0)
		return;
	is_int(append_samples(0, N), 0, "%d appends", N);
	n = list_segs(dir, seqs, ssz);
	ok(n >= 3, "several segments at 4096 bytes each (%d)", n);
	for (int i = 0; i < n; i++) {
		over += ssz[i] > 4096 || ssz[i] <= 0;
		gaps += seqs[i] != (uint64_t)i + 1;
	}
	is_int(over, 0, "every segment holds 1..4096 bytes");
	is_int(gaps, 0, "numbered 1, 2, 3, ... without gaps");
	is_int(sum_sizes(ssz, n), samples_len(0, N),
	       "the segments hold every line");
	is_int(spool_pending_bytes(), samples_len(0, N),
	       "pending bytes across segments");

	ids = id_range(0, N);
	drain("roll", MAX, ids, N, NULL, 0);
	free(ids);
	is_int(spool_pending_bytes(), 0, "nothing pending after reading");
	is_int(list_segs(dir, seqs, ssz), 1,
	       "the finished segments are removed, the live one stays");
	ok(seqs[0] == (uint64_t)n && ssz[0] == 0,
	   "the live one is segment %d, emptied (%" PRIu64 ", %" PRId64
	   " bytes)",
	   n, seqs[0], ssz[0]);
	is_int(spool_torn(), 0, "nothing torn");
	spool_close();
}

/* What a run left is read first on the next; the new run appends to new
 * segments only. */
static void
sc_replay(const char *dir)
{
	enum { N = 30, M = 5 };
	uint64_t seqs[MAX_SEGS], seqs2[MAX_SEGS];
	int64_t ssz[MAX_SEGS], ssz2[MAX_SEGS];
	int n, n2, same = 1, *ids;

	if (open_spool(dir, 4096, 20) != 0)
		return;
	is_int(append_samples(0, N), 0, "first run: %d appends", N);
	spool_close();
	n = list_segs(dir, seqs, ssz);
	ok(n >= 2, "first run leaves %d segments", n);
	is_int(sum_sizes(ssz, n), samples_len(0, N), "holding every record");

	/* The second open in this process: see the report on state kept
	 * across spool_close(). */
	if (open_spool(dir, 4096, 20) != 0)
		return;
	is_int(spool_pending_bytes(), samples_len(0, N),
	       "second run: the earlier run's bytes are pending");
	is_int(append_samples(N, N + M), 0, "second run: %d appends", M);
	n2 = list_segs(dir, seqs2, ssz2);
	is_int(n2, n + 1, "one new segment");
	for (int i = 0; i < n && i < n2; i++)
		same &= seqs2[i] == seqs[i] && ssz2[i] == ssz[i];
	ok(same, "the earlier run's segments are not appended to");
	ok(n2 == n + 1 && seqs2[n] == seqs[n - 1] + 1 &&
		   ssz2[n] == samples_len(N, N + M),
	   "the new records go to segment %" PRIu64 ", numbered above them",
	   seqs[n - 1] + 1);

	ids = id_range(0, N + M);
	drain("replay", 8, ids, N + M, NULL, 0);
	free(ids);
	is_int(spool_pending_bytes(), 0, "nothing pending");
	n2 = list_segs(dir, seqs2, ssz2);
	ok(n2 == 1 && seqs2[0] == seqs[n - 1] + 1 && ssz2[0] == 0,
	   "the earlier run's segments are gone once shipped");
	is_int(spool_torn(), 0, "nothing torn");
	spool_close();
}

/* A process killed after appending loses nothing: the next one reads it
 * all, and the lock dies with the process. */
static void
sc_crash(const char *dir)
{
	enum { N = 10 };
	int st = 0, *ids;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		char *cause = NULL;
		if (spool_open(dir, 1 << 20, 1000, &cause) != 0 ||
		    append_samples(0, N) != 0)
			_exit(1);
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	waitpid(pid, &st, 0);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	   "a process appends %d records and is SIGKILLed", N);
	if (open_spool(dir, 1 << 20, 20) != 0)
		return;
	is_int(spool_pending_bytes(), samples_len(0, N),
	       "the next process finds every byte");
	ids = id_range(0, N);
	drain("after SIGKILL", 4, ids, N, NULL, 0);
	free(ids);
	is_int(spool_torn(), 0, "nothing torn");
	spool_close();
}

/* Writes one framed line of rec to f: flip alters the checksum, cut
 * leaves bytes off the end (the newline first). */
static void
put_line(FILE *f, const struct usage_record *rec, uint32_t flip, size_t cut)
{
	size_t n = 0;
	char *json = meter_record_encode(rec, &n), *line = malloc(n + 16);

	/* The JSON comes with its length, not a NUL. */
	snprintf(line, n + 16, "%08" PRIx32 " %.*s\n",
		 spool_crc32c(0, json, n) ^ flip, (int)n, json);
	fwrite(line, 1, n + 10 - cut, f);
	free(line);
	free(json);
}

/* Torn tails and corrupt lines are counted and skipped; the rest is
 * read. */
static void
sc_torn(const char *dir)
{
	static const char garbage[] = "\x00\xff\x13 garbage, never a newline";
	static const char not_record[] = "{\"v\":2,\"id\":\"r9\",\"ts\":1}";
	char path[600];
	struct usage_record *r;
	uint64_t seqs[MAX_SEGS];
	int64_t ssz[MAX_SEGS], files = 0;
	int ids[] = { 0, 1 }, ids3[] = { 2 };
	FILE *f;

	mkdir(dir, 0700);

	/* Segment 1: good, wrong checksum, checksum not hex, good, torn. */
	seg_name(path, sizeof path, dir, 1);
	f = fopen(path, "w");
	r = sample(0);
	put_line(f, r, 0, 0);
	meter_record_free(r);
	r = sample(90);
	put_line(f, r, 0x10, 0);
	meter_record_free(r);
	r = sample(91);
	{
		size_t n = 0;
		char *json = meter_record_encode(r, &n);
		fprintf(f, "zzzzzzzz %.*s\n", (int)n, json);
		free(json);
	}
	meter_record_free(r);
	r = sample(1);
	put_line(f, r, 0, 0);
	meter_record_free(r);
	r = sample(92);
	put_line(f, r, 0, (size_t)line_len(r) / 2);
	meter_record_free(r);
	fclose(f);
	files += file_size(path);

	/* Segment 2: nothing but a tail of garbage. */
	seg_name(path, sizeof path, dir, 2);
	f = fopen(path, "w");
	fwrite(garbage, 1, sizeof garbage - 1, f);
	fclose(f);
	files += file_size(path);

	/* Segment 7 (numbers need not be contiguous): a line whose
	 * checksum holds but whose JSON is not a record, then a good one. */
	seg_name(path, sizeof path, dir, 7);
	f = fopen(path, "w");
	fprintf(f, "%08" PRIx32 " %s\n",
		spool_crc32c(0, not_record, strlen(not_record)), not_record);
	r = sample(2);
	put_line(f, r, 0, 0);
	meter_record_free(r);
	fclose(f);
	files += file_size(path);

	if (open_spool(dir, 1 << 20, 20) != 0)
		return;
	is_int(spool_pending_bytes(), files, "pending: the three files");
	is_int(spool_torn(), 0, "nothing counted before reading");
	{
		struct usage_record *head, *x;
		int k = spool_next(100, &head), i = 0, eq = 0;

		while ((x = head) != NULL) {
			head = x->next;
			if (i < 2) {
				struct usage_record *w = sample(ids[i]);
				eq += rec_diff(x, w) == NULL;
				meter_record_free(w);
			}
			i++;
			meter_record_free(x);
		}
		is_int(k, 2, "segment 1 gives two records");
		is_int(eq, 2, "its two good ones, in order, fields equal");
		spool_commit();
	}
	is_int(spool_torn(), 3,
	       "wrong checksum, checksum not hex, torn tail: 3 counted");
	drain("past the garbage", 100, ids3, 1, NULL, 0);
	is_int(spool_torn(), 5,
	       "a tail of garbage bytes counts one, a line "
	       "with a good checksum but no record one more");
	is_int(spool_pending_bytes(), 0, "skipped bytes are not left pending");
	is_int(list_segs(dir, seqs, ssz), 1,
	       "the three read segments are removed");
	ok(seqs[0] == 8 && ssz[0] == 0, "the live segment is number 8, empty");
	spool_close();
}

/* A second process on the same directory is refused, by name. */
static void
sc_lock(const char *dir)
{
	char cause[600] = "", lockf[600], pidstr[32], buf[32] = "";
	int fd[2], st = 0, *ids;
	size_t got = 0;
	pid_t pid;

	if (open_spool(dir, 1 << 20, 20) != 0)
		return;
	is_int(append_samples(0, 1), 0, "the holder appends a record");
	snprintf(lockf, sizeof lockf, "%s/lock", dir);
	snprintf(pidstr, sizeof pidstr, "%ld", (long)getpid());
	{
		FILE *f = fopen(lockf, "r");
		if (f != NULL) {
			if (fgets(buf, sizeof buf, f) == NULL)
				buf[0] = '\0';
			fclose(f);
		}
		buf[strcspn(buf, "\n")] = '\0';
	}
	is_str(buf, pidstr, "dir/lock names the holder's pid");

	if (pipe(fd) != 0) {
		ok(0, "pipe");
		spool_close();
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* The child has a copy of the holder's spool state: it must
		 * not spool_close() it (that would remove the holder's
		 * segment). It only tries to open. */
		char *c = NULL;
		int rc = spool_open(dir, 1 << 20, 20, &c);
		const char *msg = c != NULL ? c : "";
		close(fd[0]);
		if (write(fd[1], msg, strlen(msg)) < 0)
			_exit(3);
		_exit(rc == -1 ? 0 : 1);
	}
	close(fd[1]);
	for (;;) {
		ssize_t n = read(fd[0], cause + got, sizeof cause - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	cause[got] = '\0';
	close(fd[0]);
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "a second process cannot open the same spool_dir (exit %d)",
	   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	diag("its cause: %s", cause);
	ok(strstr(cause, dir) != NULL, "the refusal names the directory");
	ok(strstr(cause, pidstr) != NULL, "and the holder's pid %s", pidstr);

	ids = id_range(0, 1);
	drain("the holder, after the refusal", 10, ids, 1, NULL, 0);
	free(ids);
	spool_close();

	/* Closed: the lock is free again. */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		char *c = NULL;
		if (spool_open(dir, 1 << 20, 20, &c) != 0)
			_exit(1);
		spool_close();
		_exit(0);
	}
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "after spool_close another process opens it");
}

static int saved_stderr = -1, log_pipe[2] = { -1, -1 };

/* While the file size limit is low, log lines go to a pipe: a test log
 * file past the limit would refuse them. */
static void
hold_stderr(void)
{
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	if (saved_stderr >= 0 && pipe(log_pipe) == 0) {
		fcntl(log_pipe[0], F_SETFL, O_NONBLOCK);
		dup2(log_pipe[1], STDERR_FILENO);
	}
}

/* Puts stderr back and copies what was logged meanwhile. */
static void
release_stderr(void)
{
	char buf[4096];
	ssize_t n;

	if (saved_stderr < 0)
		return;
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	if (log_pipe[1] >= 0)
		close(log_pipe[1]);
	while (log_pipe[0] >= 0 && (n = read(log_pipe[0], buf, sizeof buf)) > 0)
		if (write(STDERR_FILENO, buf, (size_t)n) < 0)
			break;
	if (log_pipe[0] >= 0)
		close(log_pipe[0]);
}

/* Appends fail past a file size limit (RLIMIT_FSIZE holds for root too):
 * the caller is told, the journal says why, and what went in stays
 * whole. */
static void
sc_full(const char *dir)
{
	struct rlimit saved, rl;
	char seg[600], reason_short[128] = "", reason_efbig[128] = "";
	char reason_after[128] = "";
	int rc[8], fail_short, fail_efbig, fail_after, ids[] = { 0, 1, 2, 6 };
	int64_t three = samples_len(0, 3), size_short, size_efbig, errs_short;
	int64_t errs_efbig;

	signal(SIGXFSZ, SIG_IGN);
	if (getrlimit(RLIMIT_FSIZE, &saved) != 0) {
		ok(0, "getrlimit: %s", strerror(errno));
		return;
	}
	if (open_spool(dir, 16 << 20, 20) != 0)
		return;
	seg_name(seg, sizeof seg, dir, 1);

	/* Nothing is printed while the limit is low. The limit stays under
	 * the 4096 bytes the spool's recovery probe writes, so the probe
	 * cannot clear the failure behind the checks' back. */
	hold_stderr();
	rl.rlim_cur = (rlim_t)(three + samples_len(3, 4) / 2);
	rl.rlim_max = saved.rlim_max;
	setrlimit(RLIMIT_FSIZE, &rl);
	for (int i = 0; i < 3; i++)
		rc[i] = append_one(i);
	rc[3] = append_one(3); /* a short write: half a line fits */
	fail_short = spool_failing(reason_short, sizeof reason_short);
	size_short = file_size(seg);
	errs_short = spool_write_errors();
	rc[4] = append_one(4);
	/* A limit right at the end of the file: write() fails outright. */
	rl.rlim_cur = (rlim_t)three;
	setrlimit(RLIMIT_FSIZE, &rl);
	rc[5] = append_one(5);
	fail_efbig = spool_failing(reason_efbig, sizeof reason_efbig);
	size_efbig = file_size(seg);
	errs_efbig = spool_write_errors();
	setrlimit(RLIMIT_FSIZE, &saved);
	release_stderr();

	ok(rc[0] == 0 && rc[1] == 0 && rc[2] == 0,
	   "3 appends below the limit succeed");
	is_int(rc[3], -1, "the append that crosses the limit fails");
	is_int(fail_short, 1, "spool_failing() says so");
	ok(reason_short[0] != '\0', "with a reason (\"%s\")", reason_short);
	is_int(size_short, three, "the half line it wrote is cut off again");
	is_int(errs_short, 1, "spool_write_errors() counts it");
	is_int(rc[4], -1, "the next append fails too");
	is_int(rc[5], -1, "an append at the limit fails");
	is_int(fail_efbig, 1, "still failing");
	is_str(reason_efbig, strerror(EFBIG), "the reason is the error");
	is_int(size_efbig, three, "the segment still holds 3 whole lines");
	is_int(errs_efbig, 3, "3 failed appends counted");
	is_int(spool_pending_bytes(), three,
	       "failed appends add nothing pending");

	/* The limit is gone: appends work again. */
	rc[6] = append_one(6);
	fail_after = spool_failing(reason_after, sizeof reason_after);
	is_int(rc[6], 0, "with the limit lifted the next append succeeds");
	is_int(fail_after, 0, "and spool_failing() clears");
	is_str(reason_after, "", "with no reason");
	drain("after the failures", 10, ids, 4, NULL, 0);
	is_int(spool_torn(), 0,
	       "the failed appends left nothing torn or corrupt");
	is_int(spool_pending_bytes(), 0, "nothing pending");
	spool_close();
}

/* Appenders on several threads while the writer reads (segments of 4096
 * bytes, so rolls, trims and truncations race the appends): each record
 * comes back once, each thread's in its order. */
enum { THREADS = 4, PER_THREAD = 2000, STRIDE = 100000 };

static atomic_int appenders_done;

/* Appends sample(t * STRIDE) .. sample(t * STRIDE + PER_THREAD - 1);
 * returns how many failed. */
static void *
appender(void *arg)
{
	int t = (int)(intptr_t)arg;
	intptr_t bad = append_samples(t * STRIDE, t * STRIDE + PER_THREAD);

	atomic_fetch_add(&appenders_done, 1);
	return (void *)bad;
}

/* Submitted records reach the reader as the journal holds them, from
 * memory while it keeps up and from the file when it is behind. */
static void
sc_handover(const char *dir)
{
	enum { N = 5000, M = 40 };
	struct usage_record **recs = calloc(N, sizeof *recs), *head, *r;
	char seg[600], *err = malloc(METER_STR_MAX + 100);
	int *ids, fd, intact = 0, got = 0, equal = 0;

	if (open_spool(dir, 64 << 20, 20) != 0)
		return;
	seg_name(seg, sizeof seg, dir, 1);

	/* More than a reader lets wait in memory, in batches. */
	for (int i = 0; i < N; i += 100) {
		for (int j = 0; j < 100; j++)
			recs[j] = sample(i + j);
		spool_submit(recs, 100);
	}
	ids = id_range(0, N);
	drain("5000 submitted", 64, ids, N, NULL, 0);
	free(ids);

	/* A record is read as the journal gives it back: flags 0 or 1, a
	 * string cut and an invalid byte mended. */
	memset(err, 'e', METER_STR_MAX + 99);
	err[METER_STR_MAX + 99] = '\0';
	err[3] = '\xff';
	for (int i = 0; i < M; i++) {
		recs[i] = sample(i);
		recs[i]->streamed = recs[i]->streamed ? 7 : 0;
		if (i % 4 == 1) {
			free(recs[i]->error);
			recs[i]->error = strdup(err);
		}
	}
	{
		struct usage_record *want[M];
		for (int i = 0; i < M; i++) {
			size_t n;
			char *json = meter_record_encode(recs[i], &n);
			want[i] = meter_record_decode(json, n);
			free(json);
		}
		spool_submit(recs, M);
		while (spool_next(7, &head) > 0) {
			while ((r = head) != NULL) {
				head = r->next;
				if (got < M && rec_diff(r, want[got]) == NULL)
					equal++;
				got++;
				meter_record_free(r);
			}
			spool_commit();
		}
		for (int i = 0; i < M; i++)
			meter_record_free(want[i]);
	}
	is_int(got, M, "every record of the batch came back");
	is_int(equal, M,
	       "each as decoding its line gives it (flags, cut, mended)");

	/* While the reader keeps up, a record comes from memory: a line
	 * spoiled on disk after its append still reads as submitted. */
	recs[0] = sample(77);
	spool_submit(recs, 1);
	fd = open(seg, O_WRONLY);
	ok(fd >= 0 && pwrite(fd, "0000", 4, 0) == 4, "spoil the line's crc");
	if (fd >= 0)
		close(fd);
	if (spool_next(10, &head) == 1) {
		struct usage_record *want = sample(77);
		intact = rec_diff(head, want) == NULL;
		meter_record_free(want);
		meter_record_free(head);
	}
	ok(intact, "the reader took it from memory, as submitted");
	spool_commit();
	is_int(spool_torn(), 0, "nothing read from disk was torn");

	/* After a restart the journal is all there is. */
	for (int i = 0; i < 20; i++)
		recs[i] = sample(100 + i);
	spool_submit(recs, 20);
	spool_close();
	if (open_spool(dir, 64 << 20, 20) != 0)
		return;
	ids = id_range(100, 20);
	drain("after a restart", 8, ids, 20, NULL, 0);
	free(ids);
	spool_close();
	free(recs);
	free(err);
}

/* Starts the appenders and reads until they are through and the journal
 * is empty. */
static void
sc_concurrent(const char *dir)
{
	pthread_t th[THREADS];
	int next[THREADS] = { 0 }, got = 0, out_of_order = 0, unequal = 0;
	int started = 0, idle = 0, done = 0;
	intptr_t bad = 0;
	uint64_t seqs[MAX_SEGS];
	int64_t ssz[MAX_SEGS];

	if (open_spool(dir, 4096, 0) != 0)
		return;
	for (int t = 0; t < THREADS; t++)
		started += pthread_create(&th[t], NULL, appender,
					  (void *)(intptr_t)t) == 0;
	if (!is_int(started, THREADS, "%d appender threads", THREADS)) {
		spool_close();
		return;
	}
	/* Read until every record is in and nothing is left. */
	while (!done || idle < 2) {
		struct usage_record *head, *r;
		int k = spool_next(32, &head);

		while ((r = head) != NULL) {
			int id = atoi(r->request_id + 4), t = id / STRIDE;
			struct usage_record *w = sample(id);
			head = r->next;
			if (t < 0 || t >= THREADS || id % STRIDE != next[t])
				out_of_order++;
			else
				next[t]++;
			unequal += rec_diff(r, w) != NULL;
			meter_record_free(w);
			meter_record_free(r);
			got++;
		}
		spool_commit();
		/* Once the appenders are through, two empty reads in a row
		 * (the second after the join) mean the end. */
		if (k == 0 && !done &&
		    atomic_load(&appenders_done) == THREADS) {
			for (int t = 0; t < THREADS; t++) {
				void *rv;
				pthread_join(th[t], &rv);
				bad += (intptr_t)rv;
			}
			done = 1;
		}
		idle = k == 0 ? idle + 1 : 0;
		if (k == 0 && !done)
			sched_yield();
	}
	is_int(bad, 0, "every append succeeded");
	is_int(got, THREADS * PER_THREAD, "every record read once");
	is_int(out_of_order, 0, "each thread's records in its order");
	is_int(unequal, 0, "every field equal");
	is_int(spool_torn(), 0, "nothing torn");
	is_int(spool_pending_bytes(), 0, "nothing pending");
	ok(list_segs(dir, seqs, ssz) == 1 && ssz[0] == 0,
	   "one live segment left, empty");
	spool_close();
}

/* Removes one entry of the temporary tree. */
static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Records handed over together: one write for up to 64, all of them or
 * none; a batch the disk refuses waits whole in memory, in order. */
static void
sc_submit(const char *dir)
{
	enum { N = 150 };
	struct usage_record *recs[N];
	struct rlimit saved, rl;
	char seg[600];
	int *ids;
	int64_t size_full;

	signal(SIGXFSZ, SIG_IGN);
	if (getrlimit(RLIMIT_FSIZE, &saved) != 0 ||
	    open_spool(dir, 16 << 20, 20) != 0)
		return;
	seg_name(seg, sizeof seg, dir, 1);
	for (int i = 0; i < N; i++)
		recs[i] = sample(i);
	spool_submit(recs, N);
	ok(recs[0] == NULL && recs[N - 1] == NULL,
	   "spool_submit takes the %d records", N);
	is_int(file_size(seg), samples_len(0, N),
	       "the journal holds the %d lines", N);
	is_int(spool_in_memory(), 0, "none waits in memory");
	ids = id_range(0, N);
	drain("submitted together", 1000, ids, N, NULL, 0);
	free(ids);

	/* Room for 10 more lines and a half: the batch of 20 fails whole. */
	hold_stderr();
	rl.rlim_cur = (rlim_t)(samples_len(0, 10) + samples_len(10, 11) / 2);
	rl.rlim_max = saved.rlim_max;
	setrlimit(RLIMIT_FSIZE, &rl);
	for (int i = 0; i < 20; i++)
		recs[i] = sample(i);
	spool_submit(recs, 20);
	size_full = file_size(seg);
	setrlimit(RLIMIT_FSIZE, &saved);
	release_stderr();
	is_int(size_full, 0, "a batch the disk cannot take leaves no line");
	is_int(spool_in_memory(), 20, "its 20 records wait in memory");
	ids = id_range(0, 20);
	drain("kept in memory", 1000, ids, 20, NULL, 0);
	free(ids);
	is_int(spool_in_memory(), 0, "and are handed out");
	spool_close();
}

int
main(void)
{
	if (mkdtemp(root) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	diag("spool directories under %s", root);

	test_crc();
	test_roundtrip();
	test_utf8();
	test_cut();
	test_decode_rejects();
	test_decode_accepts();

	run("basic", sc_basic);
	run("roll", sc_roll);
	run("replay", sc_replay);
	run("crash", sc_crash);
	run("torn", sc_torn);
	run("lock", sc_lock);
	run("full", sc_full);
	run("submit", sc_submit);
	run("handover", sc_handover);
	run("concurrent", sc_concurrent);

	ok(nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 &&
		   access(root, F_OK) != 0,
	   "the temporary directory is removed");
	return done_testing();
}
