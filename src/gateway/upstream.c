/*
 * upstream.c - libcurl's multi interface driven by a worker's event loop.
 *
 * curl's socket callback tells which descriptors to watch; each gets one
 * persistent libevent event that calls curl_multi_socket_action() when it
 * fires. A connection's socket is opened and closed through callbacks
 * here, so its event lives as long as the socket: when a call ends and
 * curl keeps the connection for the next one, the event stays registered
 * for reading, and the next call on it changes nothing in epoll. (An
 * idle connection that becomes readable, the provider closing it, has
 * its event removed until curl uses or closes it.) curl's timer callback
 * arms one timer event. After every action,
 * finished transfers are read with curl_multi_info_read(), detached from
 * the multi handle and their caller told (CURLOPT_PRIVATE points back to
 * the call). A detached easy handle is kept for the loop's next call, up
 * to EASY_POOL of them: a new one costs a 5 KB zeroed allocation and its
 * buffers again. A kept handle keeps its options too: those that are the
 * same for every call are set once, when it is made, and every other one
 * is set by each call (a handle that was given a CA file is reset first,
 * as curl has no way back to its default bundle).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "upstream.h"

/* curl's receive buffer for a stream (its default is 16 KB, its least
 * 1 KB): events are small, and a gateway holds one buffer per open
 * stream. */
#define STREAM_BUFFER 1024L

#define EASY_POOL 64 /* idle easy handles kept by a loop */

/* One event loop's calls: curl's multi handle, its timer, and the easy
 * handles of ended calls, ready for the next ones, and the sockets it
 * watches by descriptor. */
struct upstream {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	CURL *pool[EASY_POOL]; /* idle handles, their options those of
				  easy_new() and of the last call */
	int npool;
	struct sock_ctx **socks; /* by descriptor */
	int nsocks;
};

/* A socket curl watches, or a connection's socket curl keeps. */
struct sock_ctx {
	struct event *ev;
	short kind;  /* the event's interest; 0 = not registered */
	int owned;   /* opened here: curl closes it through close_cb() */
	int watched; /* curl watches it (between its callback's first call
			and CURL_POLL_REMOVE) */
};

/* Notes what the call tells about delivery: the provider answered, or
 * the body went out in full. A finished call's status is read first; a
 * cancelled one keeps what the caller saw of it. */
static void
note_delivery(struct upstream_call *c, int finished)
{
	if (finished && c->status == 0)
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->status);
	if (c->status != 0 || upstream_body_sent(c))
		c->sent_all = 1;
}

/* Whether the whole body of a running call went out. */
int
upstream_body_sent(struct upstream_call *c)
{
	curl_off_t up = 0;

	return c->easy != NULL &&
	       curl_easy_getinfo(c->easy, CURLINFO_SIZE_UPLOAD_T, &up) ==
		       CURLE_OK &&
	       up >= (curl_off_t)c->body_len;
}

static void easy_constants(struct upstream *u, CURL *easy);

/* Detaches a call's easy handle from the multi handle; keeps it for the
 * next call, or frees it when the pool is full. */
static void
detach(struct upstream_call *c, int finished)
{
	struct upstream *u = c->u;

	note_delivery(c, finished);
	curl_multi_remove_handle(u->multi, c->easy);
	if (u->npool < EASY_POOL) {
		if (c->reset_after) {
			curl_easy_reset(c->easy);
			easy_constants(u, c->easy);
		}
		u->pool[u->npool++] = c->easy;
	} else {
		curl_easy_cleanup(c->easy);
	}
	c->easy = NULL;
}

/* Hands every finished transfer back to its caller. */
static void
check_multi_info(struct upstream *u)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(u->multi, &left)) != NULL) {
		struct upstream_call *c = NULL;
		CURLcode res = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
				  (char **)&c);
		if (c == NULL) {
			curl_multi_remove_handle(u->multi, msg->easy_handle);
			continue;
		}
		detach(c, 1);
		c->on_done(c->arg, res);
	}
}

/* A socket's event fired: curl's, or an idle connection's. */
static void
event_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct upstream *u = arg;
	struct sock_ctx *ctx = fd < u->nsocks ? u->socks[fd] : NULL;
	int action = (kind & EV_READ ? CURL_CSELECT_IN : 0) |
		     (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;

	if (ctx != NULL && !ctx->watched) {
		/* Idle, and readable: the provider closed it, most likely.
		 * curl finds out when it next looks at the connection. */
		event_del(ctx->ev);
		ctx->kind = 0;
		return;
	}
	curl_multi_socket_action(u->multi, fd, action, &running);
	check_multi_info(u);
}

/* curl's timer expired. */
static void
timer_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct upstream *u = arg;
	int running;

	curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info(u);
}

/* curl asks for a new timeout: arm, or disarm when negative. */
static int
multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct upstream *u = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(u->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(u->timer, &tv);
	return 0;
}

/* The record of socket fd, made if missing; NULL when out of memory. */
static struct sock_ctx *
sock_get(struct upstream *u, curl_socket_t fd)
{
	struct sock_ctx *ctx;

	if (fd >= u->nsocks) {
		int n = u->nsocks > 0 ? u->nsocks : 64;
		struct sock_ctx **t;
		while (n <= fd)
			n *= 2;
		t = realloc(u->socks, (size_t)n * sizeof *t);
		if (t == NULL)
			return NULL;
		memset(t + u->nsocks, 0, (size_t)(n - u->nsocks) * sizeof *t);
		u->socks = t;
		u->nsocks = n;
	}
	if (u->socks[fd] != NULL)
		return u->socks[fd];
	ctx = calloc(1, sizeof *ctx);
	if (ctx == NULL)
		return NULL;
	ctx->ev = event_new(u->base, fd, 0, event_cb, u);
	if (ctx->ev == NULL) {
		free(ctx);
		return NULL;
	}
	u->socks[fd] = ctx;
	return ctx;
}

/* Forgets socket fd's record, its event removed. */
static void
sock_drop(struct upstream *u, curl_socket_t fd)
{
	struct sock_ctx *ctx = fd < u->nsocks ? u->socks[fd] : NULL;

	if (ctx == NULL)
		return;
	event_free(ctx->ev);
	free(ctx);
	u->socks[fd] = NULL;
}

/* Sets a socket's event to interest kind (0: removed). */
static int
sock_watch(struct upstream *u, curl_socket_t fd, struct sock_ctx *ctx,
	   short kind)
{
	if (ctx->kind == kind)
		return 0;
	if (ctx->kind != 0)
		event_del(ctx->ev);
	ctx->kind = 0;
	if (kind == 0)
		return 0;
	event_assign(ctx->ev, u->base, fd, kind | EV_PERSIST, event_cb, u);
	if (event_add(ctx->ev, NULL) != 0)
		return -1;
	ctx->kind = kind;
	return 0;
}

/* curl asks to watch, change or forget a socket. curl calls only when
 * its interest changes: on a kept connection, from reading back to
 * reading when a call starts, which costs nothing here. */
static int
multi_sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct upstream *u = userp;
	struct sock_ctx *ctx;

	(void)easy;
	(void)sockp;
	if (what == CURL_POLL_REMOVE) {
		ctx = s < u->nsocks ? u->socks[s] : NULL;
		if (ctx == NULL)
			return 0;
		if (!ctx->owned) {
			/* Not a connection of ours (a resolver's): curl
			 * may close it without telling. */
			sock_drop(u, s);
			return 0;
		}
		/* A connection between calls: its event stays, for
		 * reading, until curl closes it (close_cb). */
		ctx->watched = 0;
		return sock_watch(u, s, ctx, EV_READ);
	}
	ctx = sock_get(u, s);
	if (ctx == NULL)
		return -1;
	ctx->watched = 1;
	return sock_watch(u, s, ctx,
			  (short)((what & CURL_POLL_IN ? EV_READ : 0) |
				  (what & CURL_POLL_OUT ? EV_WRITE : 0)));
}

/* curl opens a connection's socket. */
static curl_socket_t
open_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct upstream *u = arg;
	struct sock_ctx *ctx;
	curl_socket_t fd;

	(void)purpose;
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd == CURL_SOCKET_BAD)
		return fd;
	ctx = sock_get(u, fd);
	if (ctx == NULL) {
		close(fd);
		return CURL_SOCKET_BAD;
	}
	ctx->owned = 1;
	return fd;
}

/* curl closes a connection's socket. */
static int
close_cb(void *arg, curl_socket_t fd)
{
	sock_drop(arg, fd);
	return close(fd);
}

/* Creates a loop's multi handle and its timer. */
struct upstream *
upstream_new(struct event_base *base, long max_idle)
{
	struct upstream *u = calloc(1, sizeof *u);

	if (u == NULL)
		return NULL;
	u->base = base;
	u->multi = curl_multi_init();
	u->timer = evtimer_new(base, timer_cb, u);
	if (u->multi == NULL || u->timer == NULL) {
		upstream_free(u);
		return NULL;
	}
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, multi_sock_cb);
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
	/* Idle connections kept for reuse: as many as calls may run, or
	 * past it each call's connection would be closed and the next call
	 * would open a new one. */
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, max_idle);
	return u;
}

/* Frees the multi handle; every call must have ended. */
void
upstream_free(struct upstream *u)
{
	if (u == NULL)
		return;
	while (u->npool > 0)
		curl_easy_cleanup(u->pool[--u->npool]);
	if (u->multi != NULL)
		curl_multi_cleanup(u->multi);
	for (int fd = 0; fd < u->nsocks; fd++)
		sock_drop(u, fd);
	free(u->socks);
	if (u->timer != NULL)
		event_free(u->timer);
	free(u);
}

/* curl delivers response body bytes. */
static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct upstream_call *c = arg;

	return c->on_data(c->arg, data, size * nmemb);
}

/* curl delivers one response header line. */
static size_t
header_cb(char *line, size_t size, size_t nmemb, void *arg)
{
	struct upstream_call *c = arg;

	return c->on_header(c->arg, line, size * nmemb);
}

/* The proxy settings libcurl would look up in the environment on every
 * transfer, looked up once (nothing changes the gateway's environment)
 * the way libcurl does: <scheme>_proxy (for https also HTTPS_PROXY; for
 * http only the lower case), else all_proxy or ALL_PROXY; an empty value
 * means none. no_proxy or NO_PROXY lists the hosts reached directly. */
static struct {
	pthread_once_t once;
	const char *http, *https, *no_proxy;
} env_proxy = { .once = PTHREAD_ONCE_INIT };

static const char *
env_either(const char *lower, const char *upper)
{
	const char *v = getenv(lower);

	return v != NULL || upper == NULL ? v : getenv(upper);
}

static void
env_proxy_read(void)
{
	const char *all = env_either("all_proxy", "ALL_PROXY");

	env_proxy.http = env_either("http_proxy", NULL);
	if (env_proxy.http == NULL)
		env_proxy.http = all;
	env_proxy.https = env_either("https_proxy", "HTTPS_PROXY");
	if (env_proxy.https == NULL)
		env_proxy.https = all;
	env_proxy.no_proxy = env_either("no_proxy", "NO_PROXY");
}

/* The provider's proxy: its own, else the environment's for its scheme;
 * "" for none. The environment is read on the first call. */
static const char *
proxy_for(const struct provider_conf *p)
{
	const char *v;

	pthread_once(&env_proxy.once, env_proxy_read);
	if (p->proxy != NULL)
		return p->proxy;
	v = strncmp(p->base_url, "https:", 6) == 0 ? env_proxy.https
						   : env_proxy.http;
	return v != NULL ? v : "";
}

/* Applies the provider's timeouts, proxy and TLS settings: each of them,
 * whatever the handle's last call set. */
static void
provider_opts(struct upstream_call *c, CURL *easy,
	      const struct provider_conf *p, int stream)
{
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)p->connect_timeout_ms);
	/* A stream has no overall bound; relay.c ends one that stays silent
	 * for idle_timeout. */
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
			 stream ? 0L : (long)p->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_BUFFERSIZE,
			 stream ? STREAM_BUFFER : (long)CURL_MAX_WRITE_SIZE);
	/* Set even when none, so that libcurl does not read the
	 * environment again for each transfer. */
	curl_easy_setopt(easy, CURLOPT_PROXY, proxy_for(p));
	curl_easy_setopt(easy, CURLOPT_NOPROXY,
			 env_proxy.no_proxy != NULL ? env_proxy.no_proxy : "");
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, p->tls_verify ? 1L : 0L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, p->tls_verify ? 2L : 0L);
	if (p->ca_file != NULL) {
		curl_easy_setopt(easy, CURLOPT_CAINFO, p->ca_file);
		c->reset_after = 1;
	}
	/* Answers are decoded (gzip, deflate, br, zstd) before the relay
	 * meters and forwards them, whether the gateway asked for the
	 * encoding or a proxy on the way chose it: curl decodes whenever
	 * this is set. A whole answer is asked in every encoding curl
	 * decodes, unless the provider says compression = no; a stream is
	 * asked plain (each event should leave as soon as it arrives). */
	curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING,
			 stream || !p->compression ? "identity" : "");
}

/* Sets what is the same for every call of the loop. */
static void
easy_constants(struct upstream *u, CURL *easy)
{
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_cb);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, u);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, u);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
}

/* A new handle with the loop's constant options. */
static CURL *
easy_new(struct upstream *u)
{
	CURL *easy = curl_easy_init();

	if (easy != NULL)
		easy_constants(u, easy);
	return easy;
}

/* Starts a call. */
int
upstream_start(struct upstream *u, struct upstream_call *c,
	       const struct provider_conf *p, const char *url,
	       const struct curl_slist *headers, const char *body,
	       size_t body_len, int stream)
{
	CURL *easy = u->npool > 0 ? u->pool[--u->npool] : easy_new(u);
	CURLMcode rc;

	c->status = 0;
	c->sent_all = 0;
	c->reset_after = 0;
	c->errbuf[0] = '\0';
	if (easy == NULL)
		return -1;
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)body_len);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, c);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, c->errbuf);
	provider_opts(c, easy, p, stream);
	rc = curl_multi_add_handle(u->multi, easy);
	if (rc != CURLM_OK) {
		log_error("curl_multi_add_handle: %s", curl_multi_strerror(rc));
		curl_easy_cleanup(easy);
		return -1;
	}
	c->easy = easy;
	c->u = u;
	c->body_len = body_len;
	return 0;
}

/* Stops a running call without telling its caller. */
void
upstream_cancel(struct upstream_call *c)
{
	if (c->easy != NULL)
		detach(c, 0);
}

/* Lets a paused call deliver again; curl schedules the held bytes through
 * its timer. */
void
upstream_resume(struct upstream_call *c)
{
	if (c->easy != NULL)
		curl_easy_pause(c->easy, CURLPAUSE_CONT);
}

/* The response's status. */
long
upstream_status(struct upstream_call *c)
{
	if (c->status == 0 && c->easy != NULL)
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->status);
	return c->status;
}

/* Why a call failed. */
const char *
upstream_strerror(const struct upstream_call *c, CURLcode result)
{
	return c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(result);
}
