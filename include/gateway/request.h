/*
 * request.h - one client request's life, from admission to usage record.
 *
 * States (driven only by request.c):
 *   REQ_ADMISSION  headers and body are in; authenticate, parse, route,
 *                  rate limits
 *   REQ_QUOTA      parked while the quota thread reserves the worst case;
 *                  it cannot be freed until the answer arrives
 *   REQ_UPSTREAM   the upstream transfer runs; nothing sent to the client
 *   REQ_RELAYING   a streamed reply has started; events are relayed as they
 *                  arrive, with backpressure from the client connection
 *   REQ_CLOSED     request_close() ran: reply finished or abandoned, usage
 *                  record handed to the writer, memory freed
 * Every path out goes through request_close(req, reason).
 */
#ifndef TOLLGATE_REQUEST_H
#define TOLLGATE_REQUEST_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "keystore.h"
#include "meter.h"
#include "quota.h"
#include "ratelimit.h"
#include "translate.h"
#include "usage.h"

struct worker;
struct evhttp_request;
struct evbuffer;
struct sse_parser;
struct route_target;
struct route_conf;
struct tr_stream;

enum request_state {
	REQ_ADMISSION, REQ_QUOTA, REQ_UPSTREAM, REQ_RELAYING, REQ_CLOSED
};

/* An API endpoint the gateway serves. */
struct endpoint {
	const char *path;      /* client path, e.g. "/v1/chat/completions" */
	const char *upath;     /* path appended to a provider's base_url */
	const char *name;      /* usage_records.endpoint */
	enum wire wire;
};

struct request {
	struct worker *rq_worker;
	struct config *rq_cfg;            /* a reference: the configuration
	                                     the request started on */
	struct request *rq_next, **rq_prevp; /* the worker's w_requests */
	struct evhttp_request *rq_http;   /* NULL once the client is gone */
	const struct endpoint *rq_ep;
	enum request_state rq_state;
	char rq_id[40];
	int64_t rq_start_us;
	int64_t rq_start_mono_us;

	struct key_grant rq_grant;
	int rq_authed;

	char *rq_body;                    /* the client's body, NUL-terminated */
	size_t rq_body_len;
	cJSON *rq_json;
	const char *rq_model;             /* borrowed from rq_json */
	int rq_stream;                    /* the client asked for a stream */
	int rq_client_usage;              /* ...with include_usage */
	int rq_injected_usage;            /* the gateway added include_usage */

	char *rq_path_model;              /* model named by the path (Azure) */
	const struct route_conf *rq_route;
	int rq_tidx;                      /* the target being tried */
	const struct route_target *rq_target;
	enum wire rq_uwire;               /* the wire upstream speaks */
	struct tr_stream *rq_tr;          /* translating a stream */
	struct buf rq_trout;              /* its output, one event at a time */
	char *rq_tr_cause;                /* why the request cannot be
	                                     translated */
	CURL *rq_easy;
	struct curl_slist *rq_hdrs;
	char *rq_upbody;                  /* body sent upstream */
	char rq_errbuf[CURL_ERROR_SIZE];
	long rq_status;                   /* upstream HTTP status */
	char *rq_ctype;                   /* upstream Content-Type */
	char *rq_retry_after;
	int rq_sent;                      /* the upstream transfer started */
	size_t rq_uplen;                  /* bytes of rq_upbody */
	int rq_delivered;                 /* the provider got the request */
	int rq_hold;                      /* terminal event seen: hold the
	                                     rest until the record is on
	                                     record */
	int rq_reply_status;              /* a prepared reply in rq_resp */
	struct event *rq_watch;           /* the client's socket, for EOF */
	int rq_client_gone;               /* seen by rq_watch */
	struct event *rq_idle;            /* the stream's idle timer */
	int64_t rq_last_rx_us;            /* last byte from upstream */
	int rq_relay;                     /* streaming relay chosen */
	int rq_paused;                    /* upstream paused for backpressure */
	struct evbuffer *rq_resp;         /* non-streamed body, or pending out */
	struct sse_parser *rq_sse;
	struct usage_stream rq_ust;
	int64_t rq_ttfb_us;
	size_t rq_resp_max;

	int64_t rq_worst;                 /* worst-case tokens at admission */
	struct rl_ticket rq_rl;           /* what the rate limits counted */
	int rq_rl_held;
	struct quota_job rq_qjob;         /* the quota reservation */
	int rq_quota_held;                /* reserved: settle at close */
	int rq_lease_held;                /* admitted on this gateway's leases */
	int rq_close_pending;             /* closed while parked */
	char *rq_close_reason;

	struct usage_record *rq_rec;      /* filled as the request goes */
};

/* Handles a request for a known endpoint (called by http_server.c). */
void request_start(struct worker *w, struct evhttp_request *http,
		   const struct endpoint *ep, const char *path_model);

/* A finished upstream transfer (called by upstream.c). */
void request_upstream_done(struct request *req, CURLcode result);

/* Finishes a request: replies if nothing was sent yet (status and message
 * are used only then), settles metering, hands the usage record to the
 * writer and frees everything. reason is NULL on success. */
void request_close(struct request *req, const char *reason);

/* Closes every request of the worker not parked on the quota thread. */
void request_cut_all(struct worker *w, const char *reason);

/* Sends an OpenAI-shaped error and closes the request with that reason. */
void request_refuse(struct request *req, int status, const char *type,
		    const char *code, const char *param, const char *message);

/* Logs a line for this request: request id and tenant first. */
void rlog(const struct request *req, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
