/*
 * test_sse.c - table tests for the incremental SSE parser.
 *
 * Every provider .sse fixture is fed whole, byte by byte and in random
 * slices (fixed seed); all three must give the same events, and the raw
 * bytes of the events must concatenate back to the input. The same holds
 * after the fixtures are rewritten with CRLF and lone-CR line endings.
 * Then hand-written cases: splits inside CRLF, comments, multi-line data,
 * a 1 MB data line, max_event, pending bytes and callback stops.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"
#include "fixture.h"
#include "tap.h"

/* One event as reported, copied out of the callback. */
struct rec_event {
	char *raw;
	size_t raw_len;
	char *event; /* NULL when absent */
	char *data;  /* NULL when absent */
	size_t data_len;
	int comment_only;
};

/* The events of one run. */
struct rec {
	struct rec_event *ev;
	size_t n;
	size_t cap;
	int stop_at; /* callback returns 7 on this event number (1-based) */
};

/* Copies n bytes into a new NUL-terminated string; aborts on failure. */
static char *
xmemdup(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d == NULL)
		abort();
	if (n > 0)
		memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* Callback that records each event into a struct rec. */
static int
record_cb(const struct sse_event *ev, void *arg)
{
	struct rec *r = arg;
	struct rec_event *e;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->ev = realloc(r->ev, r->cap * sizeof(*r->ev));
		if (r->ev == NULL)
			abort();
	}
	e = &r->ev[r->n++];
	e->raw = xmemdup(ev->raw, ev->raw_len);
	e->raw_len = ev->raw_len;
	e->event = ev->event ? xmemdup(ev->event, strlen(ev->event)) : NULL;
	e->data = ev->data ? xmemdup(ev->data, ev->data_len) : NULL;
	e->data_len = ev->data_len;
	e->comment_only = ev->comment_only;
	if (ev->data != NULL && ev->data[ev->data_len] != '\0')
		e->comment_only = -1; /* flags a missing NUL terminator */
	return (int)r->n == r->stop_at ? 7 : 0;
}

/* Frees the recorded events. */
static void
rec_free(struct rec *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->ev[i].raw);
		free(r->ev[i].event);
		free(r->ev[i].data);
	}
	free(r->ev);
	memset(r, 0, sizeof(*r));
}

/* A small deterministic generator (xorshift64). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

/* Returns the next pseudo-random number. */
static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

enum slicing { WHOLE, BYTES, RANDOM };

/* Feeds buf to a new parser cut as mode says; records events into r and
 * returns the first non-zero feed result, or 0. *pending gets the bytes
 * held at the end (copied, caller frees). */
static int
run(const char *buf, size_t len, enum slicing mode, size_t max, struct rec *r,
    char **pending, size_t *pending_len)
{
	struct sse_parser *p;
	const char *pb;
	size_t off = 0, n;
	int rc = 0;

	p = sse_parser_new(max, record_cb, r);
	if (p == NULL)
		abort();
	while (off < len) {
		if (mode == WHOLE)
			n = len;
		else if (mode == BYTES)
			n = 1;
		else
			n = 1 + rng() % 97;
		if (n > len - off)
			n = len - off;
		rc = sse_parser_feed(p, buf + off, n);
		if (rc != 0)
			break;
		off += n;
	}
	if (pending != NULL) {
		pb = sse_parser_pending(p, &n);
		*pending = xmemdup(pb, n);
		*pending_len = n;
	}
	sse_parser_free(p);
	return rc;
}

/* Returns the index of the first event that differs between a and b, or
 * (size_t)-1 when they are identical. */
static size_t
first_difference(const struct rec *a, const struct rec *b)
{
	const struct rec_event *x, *y;
	size_t i;

	for (i = 0; i < a->n && i < b->n; i++) {
		x = &a->ev[i];
		y = &b->ev[i];
		if (x->raw_len != y->raw_len ||
		    memcmp(x->raw, y->raw, x->raw_len) != 0 ||
		    (x->event == NULL) != (y->event == NULL) ||
		    (x->event && strcmp(x->event, y->event) != 0) ||
		    (x->data == NULL) != (y->data == NULL) ||
		    x->data_len != y->data_len ||
		    (x->data && memcmp(x->data, y->data, x->data_len) != 0) ||
		    x->comment_only != y->comment_only)
			return i;
	}
	return a->n == b->n ? (size_t)-1 : i;
}

/* Compares two recordings event by event; one TAP check. */
static int
same_events(const struct rec *a, const struct rec *b, const char *what)
{
	size_t i = first_difference(a, b);

	if (i != (size_t)-1)
		return ok(0, "%s: event %zu differs (%zu events, want %zu)",
			  what, i, a->n, b->n);
	return ok(1, "%s: %zu identical events", what, a->n);
}

/* Checks that the raw bytes of r concatenate to buf; one TAP check. */
static int
concat_is(const struct rec *r, const char *buf, size_t len, const char *what)
{
	size_t i, off = 0;

	for (i = 0; i < r->n; i++) {
		if (off + r->ev[i].raw_len > len ||
		    memcmp(buf + off, r->ev[i].raw, r->ev[i].raw_len) != 0)
			return ok(0,
				  "%s: raw of event %zu is not the input "
				  "at %zu",
				  what, i, off);
		off += r->ev[i].raw_len;
	}
	return is_int(off, len, "%s: raw bytes concatenate to the input", what);
}

/* Rewrites every LF of s as eol (malloc'd, caller frees). */
static char *
convert_eol(const char *s, size_t len, const char *eol, size_t *out_len)
{
	size_t i, o = 0, el = strlen(eol);
	char *d = malloc(len * el + 1);

	if (d == NULL)
		abort();
	for (i = 0; i < len; i++) {
		if (s[i] == '\n') {
			memcpy(d + o, eol, el);
			o += el;
		} else {
			d[o++] = s[i];
		}
	}
	d[o] = '\0';
	*out_len = o;
	return d;
}

/* Reference field extraction for an LF-only event: returns the joined data
 * (malloc'd) or NULL, and the comment-only flag. */
static char *
naive_data(const char *raw, size_t len, int *comment_only)
{
	char *out = NULL;
	size_t outlen = 0, ll;
	const char *line = raw, *end = raw + len, *nl, *v;
	int fields = 0, comments = 0, have = 0;

	while (line < end && (nl = memchr(line, '\n', (size_t)(end - line)))) {
		ll = (size_t)(nl - line);
		if (ll > 0 && line[0] == ':') {
			comments++;
		} else if (ll > 0) {
			fields++;
			if (ll >= 5 && memcmp(line, "data:", 5) == 0) {
				v = line + 5;
				if (v < nl && *v == ' ')
					v++;
				out = realloc(out,
					      outlen + (size_t)(nl - v) + 2);
				if (out == NULL)
					abort();
				if (have)
					out[outlen++] = '\n';
				have = 1;
				memcpy(out + outlen, v, (size_t)(nl - v));
				outlen += (size_t)(nl - v);
				out[outlen] = '\0';
			}
		}
		line = nl + 1;
	}
	*comment_only = comments > 0 && fields == 0;
	return out;
}

/* Counts the blank lines of an LF-only text with no blank-line runs. */
static size_t
count_terminators(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 1; i < len; i++)
		if (s[i] == '\n' && s[i - 1] == '\n')
			n++;
	return n;
}

/* Runs the whole/bytes/random comparison on one input; returns the whole
 * run's recording in *whole (caller frees). held says how many bytes at the
 * end stay pending (a lone-CR stream's last event). */
static void
check_slicings(const char *name, const char *buf, size_t len, size_t held,
	       struct rec *whole)
{
	struct rec bytes = { 0 }, random = { 0 };
	char what[256], *pend;
	size_t plen;
	int seed;

	is_int(run(buf, len, WHOLE, 1 << 20, whole, &pend, &plen), 0,
	       "%s: whole feed succeeds", name);
	is_mem(pend, plen, buf + len - held, held,
	       "%s: pending bytes after the whole feed", name);
	free(pend);
	snprintf(what, sizeof(what), "%s whole", name);
	concat_is(whole, buf, len - held, what);

	is_int(run(buf, len, BYTES, 1 << 20, &bytes, NULL, NULL), 0,
	       "%s: byte-by-byte feed succeeds", name);
	snprintf(what, sizeof(what), "%s byte by byte", name);
	same_events(&bytes, whole, what);
	rec_free(&bytes);

	for (seed = 0; seed < 5; seed++) {
		is_int(run(buf, len, RANDOM, 1 << 20, &random, NULL, NULL), 0,
		       "%s: random slices (round %d) succeed", name, seed);
		snprintf(what, sizeof(what), "%s random slices %d", name, seed);
		same_events(&random, whole, what);
		rec_free(&random);
	}
}

/* Checks the whole run of an LF fixture against the reference parse. */
static void
check_reference(const char *name, const char *buf, size_t len,
		const struct rec *whole)
{
	size_t i;
	char *want;
	int co, good = 1;

	is_int(whole->n, count_terminators(buf, len),
	       "%s: one event per blank line", name);
	for (i = 0; i < whole->n; i++) {
		want = naive_data(whole->ev[i].raw, whole->ev[i].raw_len, &co);
		if ((want == NULL) != (whole->ev[i].data == NULL) ||
		    (want && strcmp(want, whole->ev[i].data) != 0) ||
		    (want && strlen(want) != whole->ev[i].data_len) ||
		    co != whole->ev[i].comment_only) {
			diag("%s: event %zu: got data \"%s\", want \"%s\"",
			     name, i,
			     whole->ev[i].data ? whole->ev[i].data : "(null)",
			     want ? want : "(null)");
			good = 0;
		}
		free(want);
	}
	ok(good, "%s: data and comment flags match the reference", name);
}

/* Checks a fixture rewritten with other line endings: same fields, raw
 * bytes equal to the rewritten raw of the LF run. */
static void
check_eol(const char *name, const char *buf, size_t len, const struct rec *lf,
	  const char *eol, const char *tag)
{
	struct rec conv = { 0 }, want = { 0 };
	char what[256], *cbuf;
	size_t clen, i, held;

	/* A lone-CR stream holds its last event until a next byte shows the
	 * CR is not half of a CRLF. */
	cbuf = convert_eol(buf, len, eol, &clen);
	held = 0;
	if (strcmp(eol, "\r") == 0 && lf->n > 0)
		held = lf->ev[lf->n - 1].raw_len;
	snprintf(what, sizeof(what), "%s %s", name, tag);
	check_slicings(what, cbuf, clen, held, &conv);
	want = *lf;
	want.ev = malloc((lf->n ? lf->n : 1) * sizeof(*want.ev));
	if (want.ev == NULL)
		abort();
	for (i = 0; i < lf->n; i++) {
		want.ev[i] = lf->ev[i];
		want.ev[i].raw = convert_eol(lf->ev[i].raw, lf->ev[i].raw_len,
					     eol, &want.ev[i].raw_len);
	}
	if (strcmp(eol, "\r") == 0 && want.n > 0)
		want.n--;
	snprintf(what, sizeof(what), "%s %s vs LF", name, tag);
	same_events(&conv, &want, what);
	for (i = 0; i < lf->n; i++)
		free(want.ev[i].raw);
	free(want.ev);
	rec_free(&conv);
	free(cbuf);
}

/* Compares name suffixes for the directory scan. */
static int
has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && strcmp(s + a - b, suf) == 0;
}

/* qsort comparator for file names. */
static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every .sse fixture through the slicing and line-ending checks. */
static void
test_fixtures(void)
{
	struct rec whole = { 0 };
	struct dirent *de;
	char *names[256], *buf;
	size_t n = 0, i, len = 0;
	DIR *d;

	d = opendir(fixture_dir());
	if (!ok(d != NULL, "fixture directory %s opens", fixture_dir()))
		return;
	while ((de = readdir(d)) != NULL && n < 256)
		if (has_suffix(de->d_name, ".sse"))
			names[n++] = xmemdup(de->d_name, strlen(de->d_name));
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_names);
	ok(n >= 13, "found %zu .sse fixtures", n);
	for (i = 0; i < n; i++) {
		buf = read_fixture(names[i], &len);
		if (!ok(buf != NULL, "%s reads", names[i]))
			continue;
		check_slicings(names[i], buf, len, 0, &whole);
		check_reference(names[i], buf, len, &whole);
		check_eol(names[i], buf, len, &whole, "\r\n", "CRLF");
		check_eol(names[i], buf, len, &whole, "\r", "CR");
		if (strcmp(names[i], "deepseek-chat-stream.sse") == 0) {
			ok(whole.n > 0 && whole.ev[0].comment_only == 1 &&
				   whole.ev[0].data == NULL,
			   "deepseek: the keep-alive is a comment-only event");
		}
		if (strcmp(names[i], "anthropic-messages-stream.sse") == 0) {
			is_int(whole.n, 8, "anthropic: 8 events");
			if (whole.n == 8) {
				is_str(whole.ev[0].event, "message_start",
				       "anthropic: first event name");
				is_str(whole.ev[1].data, "{\"type\": \"ping\"}",
				       "anthropic: ping data");
				is_str(whole.ev[7].event, "message_stop",
				       "anthropic: last event name");
			}
		}
		if (strcmp(names[i], "openai-chat-stream.sse") == 0 &&
		    whole.n > 0) {
			is_str(whole.ev[whole.n - 1].data, "[DONE]",
			       "openai: last data is [DONE]");
			ok(whole.ev[0].event == NULL, "openai: no event name");
		}
		rec_free(&whole);
		free(buf);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
}

/* Feeds the slices in order to one parser into r; returns the last rc. */
static int
feed_slices(struct sse_parser *p, const char *const *slices)
{
	int rc = 0;

	for (; *slices != NULL && rc == 0; slices++)
		rc = sse_parser_feed(p, *slices, strlen(*slices));
	return rc;
}

/* One hand-written case: slices fed in order, then the expected events. */
struct case_event {
	const char *raw;
	const char *event;
	const char *data;
	int comment_only;
};

struct sse_case {
	const char *name;
	const char *slices[6];
	const char *pending;
	struct case_event ev[4];
	size_t nev;
};

static const struct sse_case cases[] = {
	{ "CRLF split between CR and LF of the blank line",
	  { "data: a\r\n\r", "\n", NULL },
	  "",
	  { { "data: a\r\n\r\n", NULL, "a", 0 } },
	  1 },
	{ "CRLF split after a field line's CR",
	  { "data: a\r", "\n\r\n", NULL },
	  "",
	  { { "data: a\r\n\r\n", NULL, "a", 0 } },
	  1 },
	{ "held CR event waits for the next byte",
	  { "data: a\r\n\r", NULL },
	  "data: a\r\n\r",
	  { { NULL, NULL, NULL, 0 } },
	  0 },
	{ "lone CR endings across slices",
	  { "data: a\r", "data: b\r\r", "x", NULL },
	  "x",
	  { { "data: a\rdata: b\r\r", NULL, "a\nb", 0 } },
	  1 },
	{ "lone CR line then CRLF blank line",
	  { "data: a\r", "data: b\r\r\n", NULL },
	  "",
	  { { "data: a\rdata: b\r\r\n", NULL, "a\nb", 0 } },
	  1 },
	{ "mixed endings in one event",
	  { "event: e\r\ndata: 1\rdata: 2\n\n", NULL },
	  "",
	  { { "event: e\r\ndata: 1\rdata: 2\n\n", "e", "1\n2", 0 } },
	  1 },
	{ "comment-only keep-alive",
	  { ": keep-alive\n\n", NULL },
	  "",
	  { { ": keep-alive\n\n", NULL, NULL, 1 } },
	  1 },
	{ "comment plus data is not comment-only",
	  { ": note\ndata: x\n\n", NULL },
	  "",
	  { { ": note\ndata: x\n\n", NULL, "x", 0 } },
	  1 },
	{ "multi-line data and field rules",
	  { "data: a\ndata:b\ndata:  c\ndata\nid: 7\nretry: 10\n"
	    "foo: bar\nevent: one\nevent: two\n\n",
	    NULL },
	  "",
	  { { "data: a\ndata:b\ndata:  c\ndata\nid: 7\nretry: 10\n"
	      "foo: bar\nevent: one\nevent: two\n\n",
	      "two", "a\nb\n c\n", 0 } },
	  1 },
	{ "empty data field and empty event name",
	  { "event:\ndata:\n\n", NULL },
	  "",
	  { { "event:\ndata:\n\n", "", "", 0 } },
	  1 },
	{ "stray blank lines are events without fields",
	  { "\n\ndata: x\n\n\r\n", NULL },
	  "",
	  { { "\n", NULL, NULL, 0 },
	    { "\n", NULL, NULL, 0 },
	    { "data: x\n\n", NULL, "x", 0 },
	    { "\r\n", NULL, NULL, 0 } },
	  4 },
	{ "leading BOM is skipped",
	  { "\xEF\xBB",
	    "\xBF"
	    "data: x\n\n",
	    NULL },
	  "",
	  { { "\xEF\xBB\xBF"
	      "data: x\n\n",
	      NULL, "x", 0 } },
	  1 },
	{ "data containing colons and CR-free JSON",
	  { "data: {\"a\":\"b:c\"}\n\n", NULL },
	  "",
	  { { "data: {\"a\":\"b:c\"}\n\n", NULL, "{\"a\":\"b:c\"}", 0 } },
	  1 },
	{ "pending bytes of a cut stream",
	  { "data: a\n\ndata: par", "tial\n", NULL },
	  "data: partial\n",
	  { { "data: a\n\n", NULL, "a", 0 } },
	  1 },
	{ "partial line inside an event started in an earlier slice",
	  { "event: e\nda", "ta: x", "y\n", "\n", NULL },
	  "",
	  { { "event: e\ndata: xy\n\n", "e", "xy", 0 } },
	  1 },
};

/* Runs the hand-written cases. */
static void
test_cases(void)
{
	const struct sse_case *c;
	struct sse_parser *p;
	struct rec r = { 0 };
	const char *pb;
	size_t i, j, plen;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = &cases[i];
		p = sse_parser_new(1 << 16, record_cb, &r);
		is_int(feed_slices(p, c->slices), 0, "%s: feeds", c->name);
		pb = sse_parser_pending(p, &plen);
		is_mem(pb, plen, c->pending, strlen(c->pending),
		       "%s: pending bytes", c->name);
		if (is_int(r.n, c->nev, "%s: event count", c->name)) {
			for (j = 0; j < c->nev; j++) {
				is_mem(r.ev[j].raw, r.ev[j].raw_len,
				       c->ev[j].raw, strlen(c->ev[j].raw),
				       "%s: event %zu raw", c->name, j);
				is_str(r.ev[j].event, c->ev[j].event,
				       "%s: event %zu name", c->name, j);
				is_str(r.ev[j].data, c->ev[j].data,
				       "%s: event %zu data", c->name, j);
				is_int(r.ev[j].comment_only,
				       c->ev[j].comment_only,
				       "%s: event %zu comment_only", c->name,
				       j);
			}
		}
		sse_parser_free(p);
		rec_free(&r);
	}
}

/* A 1 MB data line, whole, in 1000-byte slices and byte by byte. */
static void
test_long_line(void)
{
	const size_t n = 1 << 20;
	struct rec whole = { 0 }, sliced = { 0 };
	struct sse_parser *p;
	size_t len, off, i;
	char *buf;
	int rc = 0, good;

	buf = malloc(n + 32);
	if (buf == NULL)
		abort();
	memcpy(buf, "data: ", 6);
	for (i = 0; i < n; i++)
		buf[6 + i] = (char)('a' + i % 26);
	memcpy(buf + 6 + n, "\r\n\r\ndata: 2\n\n", 13);
	len = 6 + n + 13;

	is_int(run(buf, len, WHOLE, 2 * n, &whole, NULL, NULL), 0,
	       "1 MB line: whole feed");
	if (is_int(whole.n, 2, "1 MB line: two events")) {
		is_int(whole.ev[0].data_len, n, "1 MB line: data length");
		ok(memcmp(whole.ev[0].data, buf + 6, n) == 0,
		   "1 MB line: data bytes");
		is_int(whole.ev[0].raw_len, 6 + n + 4, "1 MB line: raw length");
		is_str(whole.ev[1].data, "2", "1 MB line: next event");
	}
	p = sse_parser_new(2 * n, record_cb, &sliced);
	for (off = 0; off < len && rc == 0; off += 1000)
		rc = sse_parser_feed(p, buf + off,
				     len - off < 1000 ? len - off : 1000);
	is_int(rc, 0, "1 MB line: 1000-byte slices");
	sse_parser_free(p);
	same_events(&sliced, &whole, "1 MB line 1000-byte slices");
	rec_free(&sliced);

	is_int(run(buf, len, BYTES, 2 * n, &sliced, NULL, NULL), 0,
	       "1 MB line: byte by byte");
	same_events(&sliced, &whole, "1 MB line byte by byte");
	rec_free(&sliced);

	/* A line past max_event fails even when fed in small slices. */
	p = sse_parser_new(n / 2, record_cb, &sliced);
	rc = 0;
	for (off = 0; off < len && rc == 0; off += 4096)
		rc = sse_parser_feed(p, buf + off,
				     len - off < 4096 ? len - off : 4096);
	is_int(rc, -1, "1 MB line over a 512 KB max_event fails");
	good = sliced.n == 0;
	ok(good, "1 MB line over max_event reports no event");
	sse_parser_free(p);
	rec_free(&sliced);
	rec_free(&whole);
	free(buf);
}

/* Many small events in one slice are all reported, in order. */
static void
test_many_events(void)
{
	const size_t count = 100000;
	struct rec r = { 0 };
	char *buf, line[64];
	size_t i, len = 0, bad = 0;

	buf = malloc(count * 32);
	if (buf == NULL)
		abort();
	for (i = 0; i < count; i++)
		len += (size_t)sprintf(buf + len, "data: %zu\n\n", i);
	is_int(run(buf, len, WHOLE, 64, &r, NULL, NULL), 0,
	       "100000 events in one slice");
	is_int(r.n, count, "100000 events reported");
	for (i = 0; i < r.n; i++) {
		snprintf(line, sizeof(line), "%zu", i);
		if (strcmp(r.ev[i].data, line) != 0)
			bad++;
	}
	is_int(bad, 0, "100000 events in order");
	rec_free(&r);
	free(buf);
}

/* max_event bounds an event, whole or accumulated, and is sticky. */
static void
test_max_event(void)
{
	struct rec r = { 0 };
	struct sse_parser *p;
	char big[128];

	memset(big, 'x', sizeof(big));
	memcpy(big, "data: ", 6);

	p = sse_parser_new(64, record_cb, &r);
	is_int(sse_parser_feed(p, big, 100), -1,
	       "unterminated 100 bytes over max_event 64 fail");
	is_int(sse_parser_feed(p, "data: a\n\n", 9), -1,
	       "the parser stays failed");
	is_int(r.n, 0, "no event reported");
	sse_parser_free(p);

	p = sse_parser_new(64, record_cb, &r);
	memcpy(big + 98, "\n\n", 2);
	is_int(sse_parser_feed(p, big, 100), -1,
	       "a complete 100-byte event over max_event 64 fails");
	is_int(r.n, 0, "no event reported");
	sse_parser_free(p);

	p = sse_parser_new(64, record_cb, &r);
	is_int(sse_parser_feed(p, big, 40), 0, "40 bytes fit");
	is_int(sse_parser_feed(p, big + 40, 40), -1,
	       "80 accumulated bytes over max_event 64 fail");
	sse_parser_free(p);

	p = sse_parser_new(64, record_cb, &r);
	memcpy(big + 62, "\n\n", 2);
	is_int(sse_parser_feed(p, big, 64), 0,
	       "an event of exactly max_event bytes is accepted");
	is_int(r.n, 1, "and reported");
	sse_parser_free(p);

	/* One byte over, the last being the LF of a CRLF in the next read:
	 * the same failure as in one read. */
	p = sse_parser_new(64, record_cb, &r);
	memcpy(big + 62, "\n\r\n", 3);
	is_int(sse_parser_feed(p, big, 64), 0, "64 bytes up to a CR fit");
	is_int(sse_parser_feed(p, big + 64, 1), -1,
	       "the LF that makes the event 65 bytes fails");
	is_int(r.n, 1, "no event reported");
	sse_parser_free(p);
	rec_free(&r);
}

/* A non-zero callback return stops the feed and is returned. */
static void
test_stop(void)
{
	static const char in[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
	struct rec r = { 0 };
	struct sse_parser *p;

	r.stop_at = 2;
	p = sse_parser_new(1024, record_cb, &r);
	is_int(sse_parser_feed(p, in, sizeof(in) - 1), 7,
	       "callback value is returned");
	is_int(r.n, 2, "no event after the stop");
	is_int(sse_parser_feed(p, "data: 4\n\n", 9), 0,
	       "the parser continues with the next feed");
	if (is_int(r.n, 3, "next event reported"))
		is_str(r.ev[2].data, "4", "next event data");
	sse_parser_free(p);
	rec_free(&r);
}

/* Random streams over a small alphabet rich in line endings and colons:
 * every slicing gives the same events, and the raw bytes plus the pending
 * bytes are the input. */
static void
test_random_streams(void)
{
	static const char alphabet[] = "\r\n\r\n:: dataevntx\xEF";
	struct rec whole = { 0 }, other = { 0 };
	char buf[400], *pend, *pend2;
	size_t len, plen, plen2, i, off;
	int round, good = 1, mode;

	for (round = 0; round < 2000 && good; round++) {
		len = rng() % sizeof(buf);
		for (i = 0; i < len; i++)
			buf[i] = alphabet[rng() % (sizeof(alphabet) - 1)];
		run(buf, len, WHOLE, 1 << 16, &whole, &pend, &plen);
		off = 0;
		for (i = 0; i < whole.n; i++) {
			if (memcmp(buf + off, whole.ev[i].raw,
				   whole.ev[i].raw_len) != 0)
				good = 0;
			off += whole.ev[i].raw_len;
		}
		if (off + plen != len || memcmp(buf + off, pend, plen) != 0)
			good = 0;
		for (mode = BYTES; mode <= RANDOM && good; mode++) {
			run(buf, len, (enum slicing)mode, 1 << 16, &other,
			    &pend2, &plen2);
			if (plen2 != plen || memcmp(pend, pend2, plen) != 0)
				good = 0;
			if (first_difference(&other, &whole) != (size_t)-1)
				good = 0;
			free(pend2);
			rec_free(&other);
		}
		if (!good)
			diag("random stream %d differs", round);
		free(pend);
		rec_free(&whole);
	}
	ok(good, "2000 random streams agree across slicings");
}

/* Runs all SSE tests. */
int
main(void)
{
	test_fixtures();
	test_cases();
	test_long_line();
	test_many_events();
	test_max_event();
	test_stop();
	test_random_streams();
	return done_testing();
}
