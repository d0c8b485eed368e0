/*
 * streams.c - many concurrent streamed requests, for bench/run.sh.
 *
 *	streams URL KEY BODY N RAMP_MS
 *
 * Opens N connections to URL (http://host:port/path), starting them
 * evenly over RAMP_MS, and sends each the POST of BODY as HTTP/1.0, so
 * the answer is the raw event stream up to the server's close. It times
 * the first event ("data:" after the head) and the end of each, hashes
 * each body, and prints one line:
 *
 *	STREAMS n=N ok=K failed=F ttft_p50_us=... ttft_p99_us=...
 *	    total_p50_ms=... peak=P bodies=B hash=H
 *
 * ok counts answers with status 200 whose body ends with "[DONE]"; peak
 * is the most connections open at once; bodies is how many distinct
 * bodies the ok answers had (1 when the same events came to everyone), H
 * the hash of the first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

struct stream {
	struct bufferevent *bev;
	int64_t start_us, ttft_us, end_us;
	int status, in_body, done;
	uint64_t hash;
	char tail[8]; /* the body's last bytes */
	size_t ntail;
};

static struct {
	struct event_base *base;
	struct sockaddr_in addr;
	char *request;
	size_t request_len;
	struct stream *s;
	int n, started, open, peak, ramp_ms;
	int64_t t0_us;
	struct event *ramp;
} g;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* FNV-1a over the body's bytes. */
static void
hash_add(struct stream *s, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s->hash = (s->hash ^ p[i]) * 0x100000001b3ULL;
	for (size_t i = 0; i < n; i++) {
		if (s->ntail == sizeof s->tail) {
			memmove(s->tail, s->tail + 1, sizeof s->tail - 1);
			s->ntail--;
		}
		s->tail[s->ntail++] = (char)p[i];
	}
}

static void
finish(struct stream *s)
{
	if (s->bev == NULL)
		return;
	bufferevent_free(s->bev);
	s->bev = NULL;
	s->end_us = now_us();
	s->done = 1;
	if (--g.open == 0 && g.started == g.n)
		event_base_loopexit(g.base, NULL);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct stream *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (!s->in_body) {
		struct evbuffer_ptr end =
			evbuffer_search(in, "\r\n\r\n", 4, NULL);
		char line[64] = "";
		if (end.pos < 0)
			return;
		evbuffer_copyout(in, line, sizeof line - 1);
		if (sscanf(line, "HTTP/1.%*d %d", &s->status) != 1)
			s->status = -1;
		evbuffer_drain(in, (size_t)end.pos + 4);
		s->in_body = 1;
	}
	while (evbuffer_get_length(in) > 0) {
		unsigned char buf[4096];
		int n = evbuffer_remove(in, buf, sizeof buf);
		if (n <= 0)
			break;
		if (s->ttft_us == 0 && memmem(buf, (size_t)n, "data:", 5))
			s->ttft_us = now_us() - s->start_us;
		hash_add(s, buf, (size_t)n);
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct stream *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		s->start_us = now_us();
		bufferevent_write(bev, g.request, g.request_len);
		return;
	}
	read_cb(bev, s);
	finish(s);
}

/* Starts the connections due by now. */
static void
ramp_cb(evutil_socket_t fd, short what, void *arg)
{
	int64_t elapsed = now_us() - g.t0_us;
	int due = g.ramp_ms > 0 ? (int)(elapsed * g.n / (g.ramp_ms * 1000LL))
				: g.n;
	struct timeval tick = { 0, 1000 };

	(void)fd;
	(void)what;
	(void)arg;
	if (due > g.n)
		due = g.n;
	for (; g.started < due; g.started++) {
		struct stream *s = &g.s[g.started];
		s->hash = 0xcbf29ce484222325ULL;
		s->bev = bufferevent_socket_new(g.base, -1,
						BEV_OPT_CLOSE_ON_FREE);
		if (s->bev == NULL) {
			s->done = 1;
			continue;
		}
		bufferevent_setcb(s->bev, read_cb, NULL, event_cb, s);
		bufferevent_enable(s->bev, EV_READ);
		g.open++;
		if (g.open > g.peak)
			g.peak = g.open;
		if (bufferevent_socket_connect(s->bev,
					       (struct sockaddr *)&g.addr,
					       sizeof g.addr) != 0)
			finish(s);
	}
	if (g.started < g.n)
		evtimer_add(g.ramp, &tick);
	else if (g.open == 0)
		event_base_loopexit(g.base, NULL);
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-th quantile of v[0..n) (sorted in place); 0 when empty. */
static int64_t
quantile(int64_t *v, int n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, (size_t)n, sizeof *v, cmp64);
	return v[(int)(q * (n - 1))];
}

int
main(int argc, char **argv)
{
	char host[256], path[1024];
	int port = 80, ok = 0, nttft = 0, bodies = 0;
	int64_t *ttft, *total;
	uint64_t hashes[16], first = 0;

	if (argc != 6 || sscanf(argv[1], "http://%255[^:/]:%d%1023s", host,
				&port, path) != 3) {
		fprintf(stderr, "usage: streams http://HOST:PORT/PATH KEY BODY "
				"N RAMP_MS\n");
		return 2;
	}
	g.n = atoi(argv[4]);
	g.ramp_ms = atoi(argv[5]);
	if (g.n <= 0 || (g.s = calloc((size_t)g.n, sizeof *g.s)) == NULL)
		return 2;
	g.addr.sin_family = AF_INET;
	g.addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &g.addr.sin_addr) != 1) {
		fprintf(stderr, "streams: %s: an IPv4 address is needed\n",
			host);
		return 2;
	}
	g.request_len = strlen(argv[3]) + strlen(argv[2]) + strlen(path) + 256;
	g.request = malloc(g.request_len);
	g.request_len = (size_t)snprintf(
		g.request, g.request_len,
		"POST %s HTTP/1.0\r\nHost: %s:%d\r\n"
		"Authorization: Bearer %s\r\n"
		"Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		path, host, port, argv[2], strlen(argv[3]), argv[3]);
	g.base = event_base_new();
	g.ramp = evtimer_new(g.base, ramp_cb, NULL);
	g.t0_us = now_us();
	ramp_cb(-1, 0, NULL);
	event_base_dispatch(g.base);

	ttft = calloc((size_t)g.n, sizeof *ttft);
	total = calloc((size_t)g.n, sizeof *total);
	for (int i = 0; i < g.n; i++) {
		struct stream *s = &g.s[i];
		int j;
		if (s->status != 200 || s->ntail < 6 ||
		    memmem(s->tail, s->ntail, "[DONE]", 6) == NULL)
			continue;
		if (ok == 0)
			first = s->hash;
		for (j = 0; j < bodies && hashes[j] != s->hash; j++)
			;
		if (j == bodies && bodies < 16)
			hashes[bodies++] = s->hash;
		total[ok++] = (s->end_us - s->start_us) / 1000;
		if (s->ttft_us > 0)
			ttft[nttft++] = s->ttft_us;
	}
	printf("STREAMS n=%d ok=%d failed=%d ttft_p50_us=%lld "
	       "ttft_p99_us=%lld total_p50_ms=%lld peak=%d bodies=%d "
	       "hash=%016llx\n",
	       g.n, ok, g.n - ok, (long long)quantile(ttft, nttft, 0.5),
	       (long long)quantile(ttft, nttft, 0.99),
	       (long long)quantile(total, ok, 0.5), g.peak, bodies,
	       (unsigned long long)first);
	return 0;
}
