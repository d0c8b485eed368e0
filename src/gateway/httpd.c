/*
 * httpd.c - the gateway's HTTP/1.1 server (httpd.h).
 *
 * Principle: a client gets nothing it has not earned. Until a request's
 * head is in, a connection holds at most max_header_size bytes and lives
 * at most header_timeout; the body is read only when the handler asks,
 * up to the size it allows, within body_timeout; bytes pipelined behind a
 * request wait, bounded, until its reply is out. A refusal sent before
 * the body was read closes the connection, after reading and dropping
 * what the client was still sending for a moment (so it sees the answer
 * instead of a reset). Connections are counted per process and per
 * client address at accept, before any allocation but the socket's.
 *
 * A connection runs one request at a time through these states:
 *
 *   HEAD --(head in)--> HANDLER --(body asked)--> BODY --(body in)--+
 *    ^                    |                                          |
 *    |                    +<-----------------------------------------+
 *    |                    | (reply ended)
 *    |                    v
 *    +--(keep-alive)-- FLUSH --(close)--> LINGER or closed
 *
 * IDLE is HEAD before any byte of the next request arrived: its timer is
 * keepalive_timeout instead of header_timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "http_parse.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"

#define ACCEPT_BATCH    64  /* connections taken per wakeup */
#define ACCEPT_PAUSE_MS 100 /* accepting paused when out of fds */
/* After a refusal the client's bytes are read and dropped while it keeps
 * sending (LINGER_IDLE_MS of silence ends it), for LINGER_MAX_MS and
 * LINGER_BYTES at most: closing on unread bytes would send a reset, and
 * the client could lose the answer. */
#define LINGER_IDLE_MS    5000
#define LINGER_MAX_MS     30000
#define LINGER_BYTES      (64 * 1024 * 1024)
#define MAX_LISTENERS     16
#define LISTEN_BACKLOG    4096  /* the kernel caps it at net.core.somaxconn */
#define CHUNK_OVERHEAD    16384 /* chunk sizes, extensions, trailers */
#define REFUSED_ANSWER_MS 2000  /* sending a refused connection its 503 */
#define READ_SIZE         4096  /* bytes a plain socket's read asks for */
#define INPUT_HIGH        65536 /* input a TLS connection holds, at most */

enum conn_state {
	C_IDLE,    /* between requests: nothing of the next one yet */
	C_HEAD,    /* reading a head */
	C_HANDLER, /* the handler has the request */
	C_BODY,    /* reading the body the handler asked for */
	C_FLUSH,   /* the reply ended; writing it out */
	C_LINGER,  /* reading and dropping before closing */
};

struct listener {
	struct httpd *h;
	int fd;
	int tls;
	struct event *ev;
};

struct httpd {
	struct event_base *base;
	const struct config *cfg;
	struct httpd_callbacks cb;
	struct listener listeners[MAX_LISTENERS];
	int nlisteners;
	struct event *resume; /* accepting again after running out of fds */
	int reserve_fd;       /* given up to accept and drop when out of fds */
	struct conn *conns;   /* every open connection */
	int64_t own_max;      /* connections counted here alone, or 0 */
	int64_t own_open;
	int stopping;
};

struct conn {
	struct httpd *h;
	struct conn *next, **prevp;
	struct bufferevent *bev;
	SSL *ssl; /* owned by bev once it exists */
	int fd;
	struct event *timer; /* the state's deadline */
	struct event *peek;  /* a TLS listener's first byte */
	enum conn_state state;
	struct hp_scan scan;
	size_t scanned; /* input bytes already fed to scan */
	struct hreq *req;
	int keep_alive;        /* another request may follow this one */
	int counted;           /* in the connection limits' table */
	int refused;           /* over a limit: answered 503, then closed */
	int handshaken;        /* TLS: the handshake completed */
	uint64_t linger_got;   /* bytes dropped while lingering */
	int64_t linger_end_ms; /* when lingering ends, whatever comes */
	unsigned char addr[16];
	char peer[INET6_ADDRSTRLEN];
	char *subject;       /* the client certificate's, TLS only */
	struct evbuffer *tx; /* a reply's bytes on their way (conn_send) */
	struct event *flush; /* sends tx once the loop's callbacks ran */
	/* A plain socket is read here, into bev's input, rather than by
	 * bev (which asks FIONREAD before every read); bev writes. */
	struct event *rev;
	int reading; /* rev is added */
};

struct hreq {
	struct conn *c;
	char *head; /* the head's bytes, NUL-terminated pieces */
	struct hp_head hp;
	struct hp_error err;
	int bad;
	const char *method, *path, *query;
	struct evkeyvalq in, out;
	int is_head; /* HEAD: no body goes out */
	/* the body */
	struct buf body;
	int body_asked, body_done;
	size_t body_max;
	uint64_t body_left; /* Content-Length still to read */
	struct hp_chunked chunked;
	void (*body_cb)(struct hreq *, const struct hp_error *, void *);
	void *body_arg;
	/* the reply */
	int started, ended, streaming, chunked_out;
	void (*gone)(void *);
	void *gone_arg;
	void (*done)(void *, int);
	void *done_arg;
	void (*drained)(void *);
	void *drained_arg;
};

/*
 * Connection limits, process-wide: a count of all connections and an
 * open-addressing table of counts per address (linear probing, deletion
 * by backward shift), sized for max_connections so it never fills.
 */
struct addr_slot {
	unsigned char addr[16];
	int64_t n; /* 0: empty */
};

static pthread_mutex_t limits_lock = PTHREAD_MUTEX_INITIALIZER;
static struct addr_slot *addr_slots;
static size_t addr_cap;
static int64_t conns_open;

static int64_t refused_total, accept_errors_total, tls_failures_total,
	malformed_total, timeouts_total;

static void conn_close(struct conn *c);
static void conn_input(struct conn *c);
static void conn_read(struct conn *c, int on);
static void start_idle(struct conn *c);

/* The slot of addr in the table (its own or the empty one it would take). */
static size_t
addr_find(const unsigned char addr[16])
{
	uint64_t hv = 1469598103934665603ULL;
	size_t i;

	for (int k = 0; k < 16; k++)
		hv = (hv ^ addr[k]) * 1099511628211ULL;
	i = (size_t)hv & (addr_cap - 1);
	while (addr_slots[i].n != 0 && memcmp(addr_slots[i].addr, addr, 16))
		i = (i + 1) & (addr_cap - 1);
	return i;
}

/* Makes the table big enough for max connections. Under limits_lock. */
static int
addr_fit(int64_t max)
{
	size_t cap = 64, old_cap = addr_cap;
	struct addr_slot *old = addr_slots, *slots;

	while ((int64_t)cap < 2 * max)
		cap *= 2;
	if (cap <= addr_cap)
		return 0;
	slots = calloc(cap, sizeof *slots);
	if (slots == NULL)
		return -1;
	addr_slots = slots;
	addr_cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].n != 0)
			addr_slots[addr_find(old[i].addr)] = old[i];
	free(old);
	return 0;
}

/* Counts a connection from addr: 0, or -1 when a limit is reached. */
static int
limits_take(const struct config *cfg, const unsigned char addr[16])
{
	size_t i;
	int rc = -1;

	pthread_mutex_lock(&limits_lock);
	if (conns_open < cfg->max_connections &&
	    addr_fit(cfg->max_connections) == 0) {
		i = addr_find(addr);
		if (addr_slots[i].n < cfg->max_connections_per_address) {
			memcpy(addr_slots[i].addr, addr, 16);
			addr_slots[i].n++;
			conns_open++;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&limits_lock);
	return rc;
}

/* Gives back a connection from addr. */
static void
limits_give(const unsigned char addr[16])
{
	size_t i, j;

	pthread_mutex_lock(&limits_lock);
	conns_open--;
	i = addr_find(addr);
	if (addr_slots[i].n > 0 && --addr_slots[i].n == 0) {
		/* Backward-shift deletion keeps every probe chain whole. */
		for (j = (i + 1) & (addr_cap - 1); addr_slots[j].n != 0;
		     j = (j + 1) & (addr_cap - 1)) {
			size_t home = addr_find(addr_slots[j].addr);
			if (home == j)
				continue;
			addr_slots[i] = addr_slots[j];
			addr_slots[j].n = 0;
			i = j;
		}
	}
	pthread_mutex_unlock(&limits_lock);
}

/* The readers /metrics calls (metrics_register takes no argument). */
#define READER(fn, var)                                                        \
	static int64_t fn(void)                                                \
	{                                                                      \
		return __atomic_load_n(&var, __ATOMIC_RELAXED);                \
	}
READER(read_open, conns_open)
READER(read_refused, refused_total)
READER(read_accept_errors, accept_errors_total)
READER(read_tls_failures, tls_failures_total)
READER(read_malformed, malformed_total)
READER(read_timeouts, timeouts_total)
#undef READER

void
httpd_init(void)
{
	metrics_register("tollgate_client_connections", "gauge",
			 "Client connections open.", read_open);
	metrics_register(
		"tollgate_client_connections_refused_total", "counter",
		"Client connections refused at max_connections or max_connections_per_address.",
		read_refused);
	metrics_register(
		"tollgate_accept_errors_total", "counter",
		"Failed accept() calls (out of file descriptors and others).",
		read_accept_errors);
	metrics_register("tollgate_tls_handshake_failures_total", "counter",
			 "TLS handshakes that failed.", read_tls_failures);
	metrics_register(
		"tollgate_requests_malformed_total", "counter",
		"Requests refused for their framing: head, body, limits.",
		read_malformed);
	metrics_register(
		"tollgate_client_timeouts_total", "counter",
		"Requests whose head or body missed its deadline, or whose reply was left unread.",
		read_timeouts);
}

static void
count(int64_t *counter)
{
	__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

/* Logs at most once a second per call site: *last holds the time. */
static int
log_due(int64_t *last)
{
	int64_t now = clock_mono_us() / 1000, prev;

	prev = __atomic_load_n(last, __ATOMIC_RELAXED);
	if (now - prev < 1000)
		return 0;
	return __atomic_compare_exchange_n(last, &prev, now, 0,
					   __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/* Arms the connection's deadline ms from now (0: none). */
static void
arm(struct conn *c, int64_t ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (ms <= 0)
		evtimer_del(c->timer);
	else
		evtimer_add(c->timer, &tv);
}

/*
 * Requests.
 */

const struct hp_error *
hreq_error(const struct hreq *r)
{
	return r->bad ? &r->err : NULL;
}

const char *
hreq_method(const struct hreq *r)
{
	return r->method;
}

const char *
hreq_path(const struct hreq *r)
{
	return r->path;
}

const char *
hreq_query(const struct hreq *r)
{
	return r->query;
}

struct evkeyvalq *
hreq_input_headers(struct hreq *r)
{
	return &r->in;
}

struct evkeyvalq *
hreq_output_headers(struct hreq *r)
{
	return &r->out;
}

const char *
hreq_peer(const struct hreq *r)
{
	return r->c->peer;
}

const char *
hreq_client_subject(const struct hreq *r)
{
	return r->c->subject;
}

void
hreq_on_gone(struct hreq *r, void (*gone)(void *), void *arg)
{
	r->gone = gone;
	r->gone_arg = arg;
}

void
hreq_on_done(struct hreq *r, void (*done)(void *, int), void *arg)
{
	r->done = done;
	r->done_arg = arg;
}

void
hreq_on_drained(struct hreq *r, void (*drained)(void *), void *arg)
{
	r->drained = drained;
	r->drained_arg = arg;
}

size_t
hreq_backlog(const struct hreq *r)
{
	return evbuffer_get_length(bufferevent_get_output(r->c->bev)) +
	       (r->c->tx != NULL ? evbuffer_get_length(r->c->tx) : 0);
}

/* Frees a request the connection no longer holds. */
static void
hreq_free(struct hreq *r)
{
	evhttp_clear_headers(&r->in);
	evhttp_clear_headers(&r->out);
	buf_free(&r->body);
	free(r->head);
	free(r);
}

/* A request for c; bad requests get e and empty strings. */
static struct hreq *
hreq_new(struct conn *c)
{
	struct hreq *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->c = c;
	TAILQ_INIT(&r->in);
	TAILQ_INIT(&r->out);
	r->method = r->path = "";
	return r;
}

/* Splits the target into path and query, NUL-terminating both in the
 * head's copy. */
static void
split_target(struct hreq *r, char *target, size_t len)
{
	char *q = memchr(target, '?', len);

	target[len] = '\0';
	if (q != NULL) {
		*q = '\0';
		r->query = q + 1;
	}
	r->path = target;
}

/* Fills r from a parsed head (copied: the input is drained after). */
static int
hreq_fill(struct hreq *r, const char *head, size_t len,
	  const struct hp_header *hdrs)
{
	const struct hp_head *hp = &r->hp;
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return -1;
	memcpy(copy, head, len);
	copy[len] = '\0';
	r->head = copy;
	/* The method and target become C strings in place: each is
	 * followed by a space. */
	copy[hp->method_len] = '\0';
	r->method = copy;
	split_target(r, copy + (hp->target - head), hp->target_len);
	r->is_head = strcmp(r->method, "HEAD") == 0;
	/* So do each field's name (followed by its colon) and value
	 * (followed by CR or a blank). */
	for (size_t i = 0; i < hp->nheaders; i++) {
		char *name = copy + (hdrs[i].name - head);
		char *value = copy + (hdrs[i].value - head);
		name[hdrs[i].name_len] = '\0';
		value[hdrs[i].value_len] = '\0';
		(void)evhttp_add_header(&r->in, name, value);
	}
	return 0;
}

/* Keeps the path of a head refused after its request line was read, for
 * the refusal to take the shape of the API the path belongs to. */
static void
keep_target(struct hreq *r)
{
	const struct hp_head *hp = &r->hp;
	char *copy;

	if (hp->target == NULL || hp->target_len == 0 || hp->target[0] != '/' ||
	    (copy = malloc(hp->target_len + 1)) == NULL)
		return;
	memcpy(copy, hp->target, hp->target_len);
	r->head = copy;
	split_target(r, copy, hp->target_len);
}

/* Hands a request to the handler. */
static void
dispatch(struct conn *c, struct hreq *r)
{
	struct httpd *h = c->h;

	c->req = r;
	c->state = C_HANDLER;
	arm(c, 0);
	h->cb.request(r, h->cb.arg);
}

/* Refuses what the connection sent with status and message: the handler
 * answers it, then the connection closes. */
static void
refuse_head(struct conn *c, int status, const char *message)
{
	struct hreq *r = hreq_new(c);

	if (r == NULL) {
		conn_close(c);
		return;
	}
	r->bad = 1;
	r->err.status = status;
	r->err.message = message;
	c->keep_alive = 0;
	dispatch(c, r);
}

/* A complete head of len bytes is at the front of the input: parse it
 * and hand it over. */
static void
take_head(struct conn *c, size_t len)
{
	const struct config *cfg = c->h->cfg;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct hp_header *hdrs = calloc((size_t)cfg->max_headers, sizeof *hdrs);
	struct hreq *r = hreq_new(c);
	const char *head = (const char *)evbuffer_pullup(in, (ssize_t)len);

	if (hdrs == NULL || r == NULL || head == NULL) {
		free(hdrs);
		if (r != NULL)
			hreq_free(r);
		conn_close(c);
		return;
	}
	if (hp_parse_head(head, len, &r->hp, hdrs, (size_t)cfg->max_headers,
			  &r->err) != HP_DONE) {
		count(&malformed_total);
		r->bad = 1;
		c->keep_alive = 0;
		keep_target(r);
	} else if (hreq_fill(r, head, len, hdrs) != 0) {
		free(hdrs);
		hreq_free(r);
		conn_close(c);
		return;
	} else {
		c->keep_alive =
			r->hp.keep_alive && cfg->keepalive_timeout_ms > 0;
	}
	free(hdrs);
	evbuffer_drain(in, len);
	c->scanned = 0;
	dispatch(c, r);
}

/* Reads a head: feeds the bytes not yet seen to the scanner. */
static void
read_head(struct conn *c)
{
	const struct config *cfg = c->h->cfg;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr pos;
	struct evbuffer_iovec v[8];
	struct hp_error e;
	size_t used;
	int n;

	if (c->state == C_IDLE) {
		if (evbuffer_get_length(in) == 0)
			return;
		c->state = C_HEAD;
		arm(c, cfg->header_timeout_ms);
	}
	while (c->scanned < evbuffer_get_length(in)) {
		if (evbuffer_ptr_set(in, &pos, c->scanned, EVBUFFER_PTR_SET) !=
		    0)
			return;
		n = evbuffer_peek(in, -1, &pos, v, 8);
		for (int i = 0; i < n && i < 8; i++) {
			enum hp_result rc = hp_scan_feed(
				&c->scan, v[i].iov_base, v[i].iov_len,
				(size_t)cfg->max_header_size,
				(size_t)cfg->max_header_size,
				(size_t)cfg->max_headers, &used, &e);
			c->scanned += used;
			if (rc == HP_ERROR) {
				count(&malformed_total);
				refuse_head(c, e.status, e.message);
				return;
			}
			if (rc == HP_DONE) {
				size_t skipped = c->scan.skipped;
				size_t len = c->scan.len - skipped;
				evbuffer_drain(in, skipped);
				memset(&c->scan, 0, sizeof c->scan);
				take_head(c, len);
				return;
			}
		}
	}
}

/* Ends the body: the handler hears of it, err NULL when all is in. */
static void
body_end(struct conn *c, const struct hp_error *err)
{
	struct hreq *r = c->req;

	r->body_done = 1;
	c->state = C_HANDLER;
	arm(c, 0);
	if (err != NULL) {
		r->err = *err;
		c->keep_alive = 0;
		if (err->status == 408)
			count(&timeouts_total);
		else
			count(&malformed_total);
	}
	r->body_cb(r, err != NULL ? &r->err : NULL, r->body_arg);
}

/* Reads the body from the input. */
static void
read_body(struct conn *c)
{
	struct hreq *r = c->req;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct hp_error e;

	if (!r->hp.chunked) {
		size_t n = evbuffer_get_length(in);
		if (n > r->body_left)
			n = (size_t)r->body_left;
		if (n > 0) {
			if (buf_reserve(&r->body, n) != 0) {
				e.status = 500;
				e.message = "Out of memory.";
				body_end(c, &e);
				return;
			}
			evbuffer_remove(in, r->body.data + r->body.len, n);
			r->body.len += n;
			r->body.data[r->body.len] = '\0';
			r->body_left -= n;
		}
		if (r->body_left == 0)
			body_end(c, NULL);
		return;
	}
	while (evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		size_t used = 0;
		enum hp_result rc;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return;
		rc = hp_chunked_feed(&r->chunked, v.iov_base, v.iov_len,
				     &r->body, r->body_max, CHUNK_OVERHEAD,
				     &used, &e);
		evbuffer_drain(in, used);
		if (rc == HP_ERROR) {
			body_end(c, &e);
			return;
		}
		if (rc == HP_DONE) {
			body_end(c, NULL);
			return;
		}
	}
}

void
hreq_read_body(struct hreq *r, size_t max,
	       void (*done)(struct hreq *, const struct hp_error *, void *),
	       void *arg)
{
	struct conn *c = r->c;
	struct hp_error e;

	r->body_asked = 1;
	r->body_cb = done;
	r->body_arg = arg;
	r->body_max = max;
	if (!r->hp.chunked && r->hp.content_length <= 0) {
		r->body_done = 1;
		done(r, NULL, arg);
		return;
	}
	if (!r->hp.chunked && (uint64_t)r->hp.content_length > max) {
		e.status = 413;
		e.message = "Request body is larger than allowed.";
		r->body_left = 0;
		body_end(c, &e);
		return;
	}
	/* Memory is taken as the bytes arrive, not for what a client
	 * announces: a slow client holds what it sent, no more. */
	if (!r->hp.chunked)
		r->body_left = (uint64_t)r->hp.content_length;
	if (r->hp.expect_continue &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
		bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	c->state = C_BODY;
	arm(c, c->h->cfg->body_timeout_ms);
	conn_read(c, 1);
	read_body(c);
}

char *
hreq_body_take(struct hreq *r, size_t *len)
{
	if (r->body.data == NULL && buf_add(&r->body, "", 0) != 0)
		return NULL;
	return buf_detach(&r->body, len);
}

/* Whether a header may go out as it is (no line breaks). */
static int
header_ok(const struct evkeyval *kv)
{
	return strpbrk(kv->key, "\r\n:") == NULL &&
	       strpbrk(kv->value, "\r\n") == NULL;
}

/* The connection's buffer for the bytes of a reply, empty. */
static struct evbuffer *
tx_buffer(struct conn *c)
{
	if (c->tx == NULL)
		c->tx = evbuffer_new();
	return c->tx;
}

/* Sends what tx holds: written to a plain socket at once when nothing is
 * queued before it, the rest (all of it on TLS, or when the socket is
 * full) queued on the connection. Written at once, a reply costs no
 * change of the socket's interest (write on, then off again). */
static void
conn_send(struct conn *c, struct evbuffer *tx)
{
	if (evbuffer_get_length(tx) == 0)
		return;
	if (c->ssl == NULL &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		(void)evbuffer_write(tx, c->fd);
	if (evbuffer_get_length(tx) > 0)
		bufferevent_write_buffer(c->bev, tx);
}

/* Hands bytes of a response head to its buffer. */
static void
head_spill(void *out, const char *s, size_t n)
{
	evbuffer_add(out, s, n);
}

/* Writes the status line and headers into out; len is the body's length,
 * or -1 for a stream. */
static void
write_head(struct hreq *r, int status, int64_t len, struct evbuffer *out)
{
	struct conn *c = r->c;
	struct evkeyval *kv;
	/* Gathered on the stack and added at once; a longer head goes in
	 * pieces. */
	char buf[1024];
	struct ftext h = { buf, 0, sizeof buf, head_spill, out };

	/* An unread body closes the connection: its bytes would be taken
	 * for the next request. */
	if (r->hp.chunked ? !r->body_done
			  : r->hp.content_length > 0 &&
				    (!r->body_asked || r->body_left > 0))
		c->keep_alive = 0;
	if (c->h->stopping)
		c->keep_alive = 0;
	ft_add(&h, "HTTP/1.1 ", 9);
	ft_int(&h, status);
	ft_add(&h, " ", 1);
	ft_str(&h, hp_reason(status));
	ft_add(&h, "\r\n", 2);
	TAILQ_FOREACH(kv, &r->out, next)
	{
		if (header_ok(kv)) {
			ft_str(&h, kv->key);
			ft_add(&h, ": ", 2);
			ft_str(&h, kv->value);
			ft_add(&h, "\r\n", 2);
		}
	}
	if (len >= 0) {
		ft_add(&h, "Content-Length: ", 16);
		ft_int(&h, len);
		ft_add(&h, "\r\n", 2);
	} else if (r->chunked_out) {
		ft_add(&h, "Transfer-Encoding: chunked\r\n", 28);
	}
	if (!c->keep_alive)
		ft_add(&h, "Connection: close\r\n", 19);
	ft_add(&h, "\r\n", 2);
	evbuffer_add(out, h.p, h.len);
	r->started = 1;
}

/* The reply ended: write it out, then go on with the connection. */
static void
reply_ended(struct hreq *r)
{
	struct conn *c = r->c;

	r->ended = 1;
	c->state = C_FLUSH;
	arm(c, 0);
	/* The write callback runs once the output is out. */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

/* The stream's bytes gathered in tx go out. */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct hreq *r = c->req;

	(void)fd;
	(void)what;
	conn_send(c, c->tx);
	/* All of it written at once: no write callback will say the
	 * connection drained, so a paused stream hears it here. */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
	    r != NULL && r->streaming && r->drained != NULL)
		r->drained(r->drained_arg);
}

/* Sends a stream's bytes: its head (status > 0), len bytes of data as
 * one chunk (data not NULL), or its last chunk (status -1), framed as
 * the reply is (chunked or not). They gather in tx until the loop's
 * callbacks ran: the events of one read from upstream (curl hands them
 * over chunk by chunk) leave in one write. The last chunk goes at once,
 * before the reply counts as ended. */
static void
send_bytes(struct conn *c, struct evbuffer *data, size_t len, int status,
	   struct hreq *r)
{
	struct evbuffer *tx = tx_buffer(c);
	struct evbuffer *out = tx != NULL ? tx : bufferevent_get_output(c->bev);

	if (status > 0)
		write_head(r, status, -1, out);
	else if (status < 0)
		evbuffer_add(out, "0\r\n\r\n", 5);
	if (data != NULL) {
		if (r->chunked_out)
			evbuffer_add_printf(out, "%zx\r\n", len);
		evbuffer_add_buffer(out, data);
		if (r->chunked_out)
			evbuffer_add(out, "\r\n", 2);
	}
	if (tx == NULL)
		return;
	if (status < 0)
		conn_send(c, tx);
	else if (c->flush != NULL ||
		 (c->flush = event_new(c->h->base, -1, 0, flush_cb, c)) != NULL)
		event_active(c->flush, 0, 0);
	else
		conn_send(c, tx);
}

void
hreq_send(struct hreq *r, int status, struct evbuffer *body)
{
	struct conn *c = r->c;
	size_t len = body != NULL ? evbuffer_get_length(body) : 0;
	struct evbuffer *tx = tx_buffer(c);

	if (tx == NULL) {
		/* Out of memory: the connection's own buffer takes it. */
		write_head(r, status, (int64_t)len,
			   bufferevent_get_output(c->bev));
		if (body != NULL && !r->is_head)
			bufferevent_write_buffer(c->bev, body);
		reply_ended(r);
		return;
	}
	write_head(r, status, (int64_t)len, tx);
	if (body != NULL && r->is_head)
		evbuffer_drain(body, len);
	else if (body != NULL)
		evbuffer_add_buffer(tx, body);
	conn_send(c, tx);
	reply_ended(r);
}

void
hreq_stream_start(struct hreq *r, int status)
{
	r->streaming = 1;
	r->chunked_out = r->hp.minor == 1;
	if (!r->chunked_out)
		r->c->keep_alive = 0;
	send_bytes(r->c, NULL, 0, status, r);
	/* The head is out and nothing reads the request's headers once a
	 * reply started: a stream that stays open for minutes holds
	 * neither list. */
	evhttp_clear_headers(&r->in);
	evhttp_clear_headers(&r->out);
}

void
hreq_stream_add(struct hreq *r, struct evbuffer *data)
{
	struct conn *c = r->c;
	size_t len = evbuffer_get_length(data);

	if (len == 0)
		return;
	if (r->is_head) {
		evbuffer_drain(data, len);
		return;
	}
	send_bytes(c, data, len, 0, r);
}

void
hreq_stream_end(struct hreq *r)
{
	if (r->chunked_out && !r->is_head)
		send_bytes(r->c, NULL, 0, -1, r);
	else if (r->c->tx != NULL)
		conn_send(r->c, r->c->tx);
	reply_ended(r);
}

/*
 * Connections.
 */

/* Frees the connection's request, telling its owner how it ended. */
static void
drop_request(struct conn *c, int written)
{
	struct hreq *r = c->req;

	if (r == NULL)
		return;
	c->req = NULL;
	if (!r->ended) {
		if (r->gone != NULL)
			r->gone(r->gone_arg);
	} else if (r->done != NULL) {
		r->done(r->done_arg, written);
	}
	hreq_free(r);
}

static void
conn_close(struct conn *c)
{
	drop_request(c, 0);
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	else if (c->fd >= 0)
		close(c->fd);
	if (c->ssl != NULL && c->bev == NULL)
		SSL_free(c->ssl);
	if (c->peek != NULL)
		event_free(c->peek);
	event_free(c->timer);
	if (c->counted && c->h->own_max > 0)
		c->h->own_open--;
	else if (c->counted)
		limits_give(c->addr);
	*c->prevp = c->next;
	if (c->next != NULL)
		c->next->prevp = c->prevp;
	free(c->subject);
	if (c->flush != NULL)
		event_free(c->flush);
	if (c->tx != NULL)
		evbuffer_free(c->tx);
	free(c);
}

/* Reads and drops what the client still sends after a refusal, then
 * closes: on a plain socket the write side is shut first, so the client
 * sees the end of the answer. */
static void
start_linger(struct conn *c)
{
	c->state = C_LINGER;
	if (c->ssl == NULL)
		shutdown(c->fd, SHUT_WR);
	evbuffer_drain(bufferevent_get_input(c->bev),
		       evbuffer_get_length(bufferevent_get_input(c->bev)));
	conn_read(c, 1);
	c->linger_end_ms = clock_mono_us() / 1000 + LINGER_MAX_MS;
	arm(c, LINGER_IDLE_MS);
}

/* Waits for the next request. */
static void
start_idle(struct conn *c)
{
	c->state = C_IDLE;
	c->scanned = 0;
	memset(&c->scan, 0, sizeof c->scan);
	arm(c, c->h->cfg->keepalive_timeout_ms);
	conn_read(c, 1);
	conn_input(c);
}

/* What the input means in the connection's state. */
static void
conn_input(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	int64_t left;

	switch (c->state) {
	case C_IDLE:
	case C_HEAD:
		read_head(c);
		break;
	case C_BODY:
		read_body(c);
		break;
	case C_HANDLER:
	case C_FLUSH:
		/* Pipelined bytes wait for the reply, up to a head's worth;
		 * past that the socket is not read (its closing is then
		 * seen when writing). */
		if (evbuffer_get_length(in) >
		    (size_t)c->h->cfg->max_header_size)
			conn_read(c, 0);
		break;
	case C_LINGER:
		c->linger_got += evbuffer_get_length(in);
		evbuffer_drain(in, evbuffer_get_length(in));
		left = c->linger_end_ms - clock_mono_us() / 1000;
		if (c->linger_got > LINGER_BYTES || left <= 0)
			conn_close(c);
		else
			arm(c, left < LINGER_IDLE_MS ? left : LINGER_IDLE_MS);
		break;
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_input(arg);
}

/* The output was written out. */
static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct hreq *r = c->req;

	(void)bev;
	if (c->state != C_FLUSH) {
		if (r != NULL && r->streaming && r->drained != NULL)
			r->drained(r->drained_arg);
		return;
	}
	drop_request(c, 1);
	if (c->refused || (c->keep_alive == 0 && c->ssl != NULL)) {
		conn_close(c);
		return;
	}
	if (!c->keep_alive) {
		start_linger(c);
		return;
	}
	start_idle(c);
}

/* End of file, an error, or the reply left unread past send_timeout. */
static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* A TLS handshake completed. */
		char subject[512];
		c->handshaken = 1;
		if (c->ssl != NULL &&
		    tls_peer_subject(c->ssl, subject, sizeof subject) == 0)
			c->subject = strdup(subject);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		count(&timeouts_total);
	if ((what & BEV_EVENT_ERROR) && c->ssl != NULL && !c->handshaken)
		count(&tls_failures_total);
	conn_close(c);
}

/* The state's deadline passed. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct hp_error e = { 408, "Request body not received in time." };

	(void)fd;
	(void)what;
	switch (c->state) {
	case C_HEAD:
		count(&timeouts_total);
		if (c->scan.len > 0 && c->bev != NULL) {
			refuse_head(c, 408,
				    "Request headers not received in time.");
			return;
		}
		conn_close(c);
		return;
	case C_BODY:
		body_end(c, &e);
		return;
	default:
		conn_close(c);
		return;
	}
}

/* Turns reading the client on or off. (What the input may hold is
 * bounded by the states: a head's size, a body drained as it comes, a
 * head's worth pipelined behind a request; bev's high watermark stays as
 * a second bound on TLS.) */
static void
conn_read(struct conn *c, int on)
{
	if (c->rev == NULL) {
		if (on)
			bufferevent_enable(c->bev, EV_READ);
		else
			bufferevent_disable(c->bev, EV_READ);
		return;
	}
	if (on == c->reading)
		return;
	if (on ? event_add(c->rev, NULL) : event_del(c->rev))
		return;
	c->reading = on;
}

/* A plain socket is readable: one read into the input, then the input's
 * meaning. The end of the stream or an error is bev's event, as when bev
 * reads. */
static void
plain_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	ssize_t got;
	int n;

	(void)what;
	/* bev keeps its input's end frozen but while it reads; so here. */
	evbuffer_unfreeze(in, 0);
	n = evbuffer_reserve_space(in, READ_SIZE, v, 2);
	if (n <= 0) {
		evbuffer_freeze(in, 0);
		event_cb(c->bev, BEV_EVENT_ERROR | BEV_EVENT_READING, c);
		return;
	}
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	do
		got = readv(fd, iov, n);
	while (got < 0 && errno == EINTR);
	if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		evbuffer_commit_space(in, v, 0);
		evbuffer_freeze(in, 0);
		return;
	}
	if (got <= 0) {
		evbuffer_commit_space(in, v, 0);
		evbuffer_freeze(in, 0);
		event_cb(c->bev,
			 (got == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR) |
				 BEV_EVENT_READING,
			 c);
		return;
	}
	for (int i = 0; i < n; i++) {
		size_t k =
			(size_t)got < v[i].iov_len ? (size_t)got : v[i].iov_len;
		v[i].iov_len = k;
		got -= (ssize_t)k;
	}
	evbuffer_commit_space(in, v, n);
	evbuffer_freeze(in, 0);
	conn_input(c);
}

/* Sets the connection's bufferevent up and starts reading a head. */
static int
conn_start(struct conn *c, struct bufferevent *bev)
{
	const struct config *cfg = c->h->cfg;
	struct timeval send = { cfg->send_timeout_ms / 1000,
				(cfg->send_timeout_ms % 1000) * 1000 };

	if (bev == NULL)
		return -1;
	c->bev = bev;
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
	bufferevent_set_timeouts(bev, NULL, &send);
	bufferevent_setwatermark(bev, EV_READ, 0, INPUT_HIGH);
	if (c->ssl == NULL) {
		c->rev = event_new(c->h->base, c->fd, EV_READ | EV_PERSIST,
				   plain_read_cb, c);
		if (c->rev == NULL)
			return -1;
		bufferevent_enable(bev, EV_WRITE);
		conn_read(c, 1);
	} else {
		bufferevent_enable(bev, EV_READ | EV_WRITE);
	}
	if (c->refused) {
		refuse_head(c, 503,
			    "Too many connections; please try again shortly.");
		return 0;
	}
	c->state = C_HEAD;
	return 0;
}

/* The answer to plain HTTP on a TLS port. */
static const char plain_on_tls[] =
	"HTTP/1.1 400 Bad Request\r\n"
	"Content-Type: application/json\r\n"
	"Connection: close\r\n"
	"Content-Length: 149\r\n"
	"\r\n"
	"{\"error\":{\"message\":\"This port speaks TLS: use https://.\","
	"\"type\":\"invalid_request_error\",\"param\":null,"
	"\"code\":\"plain_http_on_tls_port\"}}\n";

/* A TLS listener's connection has its first byte: a TLS record starts
 * the handshake, anything else is told to use TLS. */
static void
peek_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	unsigned char b;
	ssize_t n;

	(void)what;
	n = recv(fd, &b, 1, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	event_free(c->peek);
	c->peek = NULL;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	if (b != 0x16) {
		count(&tls_failures_total);
		(void)!send(fd, plain_on_tls, sizeof plain_on_tls - 1,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		shutdown(fd, SHUT_WR);
		conn_close(c);
		return;
	}
	c->ssl = tls_session_new();
	if (c->ssl == NULL) {
		conn_close(c);
		return;
	}
	if (conn_start(c, bufferevent_openssl_socket_new(
				  c->h->base, fd, c->ssl,
				  BUFFEREVENT_SSL_ACCEPTING,
				  BEV_OPT_CLOSE_ON_FREE)) != 0) {
		conn_close(c);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
}

/* Reads the address of a peer into c. */
static void
conn_address(struct conn *c, const struct sockaddr_storage *ss)
{
	memset(c->addr, 0, sizeof c->addr);
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		memcpy(c->addr, &s6->sin6_addr, 16);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, c->addr + 12, c->peer,
				  sizeof c->peer);
		else
			inet_ntop(AF_INET6, c->addr, c->peer, sizeof c->peer);
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		c->addr[10] = c->addr[11] = 0xff;
		memcpy(c->addr + 12, &s4->sin_addr, 4);
		inet_ntop(AF_INET, &s4->sin_addr, c->peer, sizeof c->peer);
	} else {
		snprintf(c->peer, sizeof c->peer, "unix");
	}
}

/* Takes an accepted socket. */
static void
conn_new(struct listener *l, int fd, const struct sockaddr_storage *ss)
{
	struct httpd *h = l->h;
	struct conn *c = calloc(1, sizeof *c);
	int one = 1;

	if (c == NULL) {
		close(fd);
		return;
	}
	c->h = h;
	c->fd = fd;
	conn_address(c, ss);
	c->timer = evtimer_new(h->base, timer_cb, c);
	c->next = h->conns;
	if (h->conns != NULL)
		h->conns->prevp = &c->next;
	c->prevp = &h->conns;
	h->conns = c;
	if (c->timer == NULL) {
		conn_close(c);
		return;
	}
	if (h->own_max > 0 ? h->own_open < h->own_max && ++h->own_open
			   : limits_take(h->cfg, c->addr) == 0) {
		c->counted = 1;
	} else {
		count(&refused_total);
		c->refused = 1;
		/* A TLS client is not worth a handshake to refuse. */
		if (l->tls) {
			conn_close(c);
			return;
		}
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	arm(c, c->refused ? REFUSED_ANSWER_MS : h->cfg->header_timeout_ms);
	if (l->tls) {
		/* The connection's timer bounds the wait and the handshake. */
		c->state = C_HEAD;
		c->peek = event_new(h->base, fd, EV_READ | EV_PERSIST, peek_cb,
				    c);
		if (c->peek == NULL || event_add(c->peek, NULL) != 0)
			conn_close(c);
		return;
	}
	if (conn_start(c, bufferevent_socket_new(h->base, fd,
						 BEV_OPT_CLOSE_ON_FREE)) != 0)
		conn_close(c);
}

/* Accepting again after a pause. */
static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpd *h = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < h->nlisteners; i++)
		if (!h->stopping)
			event_add(h->listeners[i].ev, NULL);
}

/* Out of file descriptors: drop the connection waiting (with the spare
 * descriptor, so the client is not left hanging) and pause accepting. */
static void
out_of_fds(struct listener *l, int err)
{
	static int64_t last_log;
	struct httpd *h = l->h;
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
	int fd;

	if (h->reserve_fd >= 0) {
		close(h->reserve_fd);
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			close(fd);
		h->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	for (int i = 0; i < h->nlisteners; i++)
		event_del(h->listeners[i].ev);
	event_add(h->resume, &tv);
	if (log_due(&last_log))
		log_warn(
			"accept: %s; accepting paused for %d ms (%lld connections open)",
			strerror(err), ACCEPT_PAUSE_MS, (long long)read_open());
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	static int64_t last_log;
	struct listener *l = arg;

	(void)what;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_new(l, fd, &ss);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		count(&accept_errors_total);
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			out_of_fds(l, errno);
			return;
		}
		if (log_due(&last_log))
			log_warn("accept: %s", strerror(errno));
		return;
	}
}

/* Splits "host:port" (IPv6 as "[addr]:port"). 0 or -1. */
static int
split_hostport(const char *s, char *host, size_t hsize, char *port,
	       size_t psize)
{
	const char *colon;
	size_t hlen;

	if (*s == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		hlen = (size_t)(end - s - 1);
		s++;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hlen = (size_t)(colon - s);
	}
	if (hlen >= hsize || strlen(colon + 1) >= psize || colon[1] == '\0')
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	snprintf(port, psize, "%s", colon + 1);
	return 0;
}

int
httpd_open_listener(const char *addr, char **cause)
{
	char host[300], port[16], msg[512];
	struct addrinfo hints, *res = NULL;
	int fd = -1, one = 1, rc;

	if (split_hostport(addr, host, sizeof host, port, sizeof port) != 0) {
		snprintf(msg, sizeof msg, "listen %s: expected host:port",
			 addr);
		goto fail;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		snprintf(msg, sizeof msg, "listen %s: %s", addr,
			 gai_strerror(rc));
		goto fail;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(fd, LISTEN_BACKLOG) != 0 ||
	    evutil_make_socket_nonblocking(fd) != 0) {
		snprintf(msg, sizeof msg, "listen %s: %s", addr,
			 strerror(errno));
		goto fail;
	}
	freeaddrinfo(res);
	return fd;
fail:
	if (res != NULL)
		freeaddrinfo(res);
	if (fd >= 0)
		close(fd);
	*cause = strdup(msg);
	return -1;
}

struct httpd *
httpd_new(struct event_base *base, const struct config *cfg,
	  const struct httpd_callbacks *cb)
{
	struct httpd *h = calloc(1, sizeof *h);

	if (h == NULL)
		return NULL;
	h->base = base;
	h->cfg = cfg;
	h->cb = *cb;
	h->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	h->resume = evtimer_new(base, resume_cb, h);
	if (h->resume == NULL) {
		httpd_free(h);
		return NULL;
	}
	return h;
}

int
httpd_listen(struct httpd *h, int fd, int tls)
{
	struct listener *l;

	if (h->nlisteners >= MAX_LISTENERS)
		return -1;
	l = &h->listeners[h->nlisteners];
	l->h = h;
	l->fd = fd;
	l->tls = tls;
	l->ev = event_new(h->base, fd, EV_READ | EV_PERSIST, accept_cb, l);
	if (l->ev == NULL || event_add(l->ev, NULL) != 0) {
		if (l->ev != NULL)
			event_free(l->ev);
		return -1;
	}
	h->nlisteners++;
	return 0;
}

void
httpd_stop_listening(struct httpd *h)
{
	h->stopping = 1;
	for (int i = 0; i < h->nlisteners; i++) {
		event_free(h->listeners[i].ev);
		close(h->listeners[i].fd);
	}
	h->nlisteners = 0;
	if (h->resume != NULL)
		event_del(h->resume);
	/* Idle connections close now; busy ones after their reply. */
	for (struct conn *c = h->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->state == C_IDLE)
			conn_close(c);
	}
}

void
httpd_own_limit(struct httpd *h, int64_t max)
{
	h->own_max = max;
}

void
httpd_set_config(struct httpd *h, const struct config *cfg)
{
	h->cfg = cfg;
}

void
httpd_free(struct httpd *h)
{
	if (h == NULL)
		return;
	httpd_stop_listening(h);
	while (h->conns != NULL)
		conn_close(h->conns);
	if (h->resume != NULL)
		event_free(h->resume);
	if (h->reserve_fd >= 0)
		close(h->reserve_fd);
	free(h);
}
