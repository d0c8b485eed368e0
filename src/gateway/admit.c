/*
 * admit.c - admission: authentication, the body, routing, rate limits and
 * quotas, each step a pass or a refusal.
 *
 * Principle: a request spends nothing upstream until every policy that
 * applies to it has said yes, and whatever it was refused for is what its
 * usage record says (the refusal tag) and what its client reads (the
 * error, in the shape of the API it called). The order is fixed: the key
 * first (nothing about a request without one is worth reading), then the
 * ledger's state when the gateway refuses while it is away, the body,
 * routing, the worst case the request may use, the rate limits, and last
 * the quotas, which may need a round trip to PostgreSQL (request.c parks
 * the request meanwhile) unless this gateway's leases admit it locally.
 *
 * The prompt is estimated once, here; the worst case and, when no usage
 * is reported, the bill (meter.c) both use that estimate.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "admit.h"
#include "httpd.h"
#include "body.h"
#include "clock.h"
#include "config.h"
#include "estimate.h"
#include "json.h"
#include "keyhash.h"
#include "log.h"
#include "meter.h"
#include "metrics.h"
#include "pgwriter.h"
#include "price.h"
#include "provider.h"
#include "translate.h"

/* Times a request's output is shrunk to what a hard quota has left. */
#define CLAMP_TRIES 3

/* Fills a refusal; the message is formatted into it. Returns -1, what a
 * refusing step returns. */
static int __attribute__((format(printf, 6, 7)))
refuse(struct refusal *r, int status, const char *type, const char *code,
       const char *param, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
	r->err.status = status;
	r->err.type = type;
	r->err.code = code;
	r->err.param = param;
	r->err.message = r->msg;
	return -1;
}

/* Finds the presented API key in the request headers (keyhash.h). */
size_t
admit_api_key(struct hreq *http, char key[KEY_FIND_MAX + 1])
{
	struct evkeyvalq *h = hreq_input_headers(http);
	struct key_headers kh = {
		evhttp_find_header(h, "Authorization"),
		evhttp_find_header(h, "x-api-key"),
		evhttp_find_header(h, "api-key"),
	};

	return keyhash_find(&kh, key);
}

/* Looks the presented key up. */
enum key_status
admit_key(struct hreq *http, struct key_grant *g)
{
	char key[KEY_FIND_MAX + 1];
	size_t len = admit_api_key(http, key);
	enum key_status st;

	memset(g, 0, sizeof *g);
	st = len > 0 ? keystore_lookup(key, len, g) : KEY_UNKNOWN;
	OPENSSL_cleanse(key, sizeof key);
	return st;
}

/* The key: present, known, not expired. */
static int
admit_key_known(struct hreq *http, const struct endpoint *ep,
		struct admission *a, struct usage_record *rec,
		struct refusal *r)
{
	char key[KEY_FIND_MAX + 1];
	size_t len = admit_api_key(http, key);
	enum key_status st;

	if (len == 0)
		return refuse(
			r, 401, "invalid_request_error", "invalid_api_key",
			NULL, "%s",
			ep->wire == WIRE_ANTHROPIC
				? "You didn't provide an API key. Send it as 'x-api-key: tg-...'."
				: "You didn't provide an API key. Send it as 'Authorization: Bearer tg-...'.");
	st = keystore_lookup(key, len, &a->grant);
	OPENSSL_cleanse(key, sizeof key);
	switch (st) {
	case KEY_OK:
		break;
	case KEY_EXPIRED:
		return refuse(r, 401, "invalid_request_error",
			      "invalid_api_key", NULL,
			      "The API key has expired.");
	default:
		return refuse(r, 401, "invalid_request_error",
			      "invalid_api_key", NULL,
			      "Incorrect API key provided.");
	}
	rec->tenant_id = a->grant.tenant_id;
	rec->key_id = a->grant.key_id;
	rec->tenant = strdup(a->grant.tenant);
	if (a->grant.client_subject != NULL) {
		const char *subject = hreq_client_subject(http);
		if (subject == NULL ||
		    strcmp(subject, a->grant.client_subject) != 0) {
			snprintf(rec->refusal, sizeof rec->refusal,
				 "client_certificate");
			return refuse(
				r, 403, "permission_denied",
				"client_certificate", NULL,
				"This key's tenant is served only to its bound client certificate%s.",
				subject == NULL ? " (none was presented)" : "");
		}
	}
	return 0;
}

/* The body: within max_body_size and max_json_depth, one JSON object
 * that every reader reads the same way (body.h). */
static int
admit_body(const struct config *cfg, struct hreq *http, struct admission *a,
	   struct usage_record *rec, struct refusal *r)
{
	struct body b;
	struct body_error e;
	int depth;

	a->body = hreq_body_take(http, &a->body_len);
	if (a->body == NULL)
		return refuse(r, 500, "server_error", NULL, NULL,
			      "Out of memory.");
	depth = json_depth(a->body, a->body_len);
	if (depth > cfg->max_json_depth)
		return refuse(r, 400, "invalid_request_error",
			      "invalid_request_error", NULL,
			      "Request body nests deeper than %lld levels.",
			      (long long)cfg->max_json_depth);
	if (depth < 0 || body_read(a->body, a->body_len, &b, &e) != 0) {
		snprintf(rec->refusal, sizeof rec->refusal, "invalid_request");
		refuse(r, 400, "invalid_request_error", "invalid_request_error",
		       NULL, "%s",
		       depth < 0
			       ? "We could not parse the JSON body of your request. The body must be a JSON object."
			       : e.msg);
		if (depth >= 0 && e.param[0] != '\0') {
			snprintf(r->param, sizeof r->param, "%s", e.param);
			r->err.param = r->param;
		}
		return -1;
	}
	a->json = b.json;
	a->body_read = 1;
	a->model = b.model;
	a->stream = b.stream;
	a->client_usage = b.include_usage;
	memcpy(a->caps, b.caps, sizeof a->caps);
	a->choices = b.choices;
	return 0;
}

/* The model: the body's, or the path's for Azure. */
static int
admit_model(const char *path_model, struct admission *a,
	    struct usage_record *rec, struct refusal *r)
{
	if (path_model != NULL) {
		/* Azure's shape: the deployment in the path is the model. */
		a->path_model = strdup(path_model);
		if (a->path_model == NULL)
			return refuse(r, 500, "server_error", NULL, NULL,
				      "Out of memory.");
		a->model = a->path_model;
	} else if (a->model == NULL || *a->model == '\0') {
		return refuse(r, 400, "invalid_request_error",
			      "invalid_request_error", "model",
			      "You must provide a model parameter.");
	}
	rec->requested_model = strdup(a->model);
	rec->streamed = a->stream;
	return 0;
}

/* The route: the key may use the model, a route serves it, and one of its
 * targets takes this endpoint (recorded as the provider). */
static int
admit_route(const struct config *cfg, const struct endpoint *ep,
	    struct admission *a, struct usage_record *rec, struct refusal *r)
{
	const struct route_conf *route;
	const struct route_target *t;

	if (!keystore_model_allowed(&a->grant, a->model)) {
		snprintf(rec->refusal, sizeof rec->refusal,
			 "model_not_allowed");
		return refuse(
			r, 403, "invalid_request_error", "model_not_allowed",
			"model",
			"This API key is not allowed to use the model '%.200s'.",
			a->model);
	}
	route = config_route(cfg, a->model);
	if (route == NULL) {
		snprintf(rec->refusal, sizeof rec->refusal, "model_not_found");
		return refuse(
			r, 404, "invalid_request_error", "model_not_found",
			"model",
			"The model '%.200s' does not exist or you do not have access to it.",
			a->model);
	}
	a->route = route;
	a->target = provider_first_target(route, 0, ep->wire);
	if (a->target < 0) {
		snprintf(rec->refusal, sizeof rec->refusal,
			 "unsupported_endpoint");
		return refuse(
			r, 400, "invalid_request_error", "unsupported_endpoint",
			"model",
			"The model '%.200s' is served by provider '%s', which does not take %s requests.",
			a->model, route->targets[0].provider->name, ep->path);
	}
	t = &route->targets[a->target];
	rec->provider = strdup(t->provider->name);
	rec->upstream_model = strdup(provider_target_model(t, a->model));
	return 0;
}

/* The most tokens a request can use: its estimated prompt plus, for each
 * output it asks for (n, best_of), the largest output cap it sets, or the
 * configured one when it sets none. */
static void
worst_case(const struct config *cfg, const struct endpoint *ep,
	   struct admission *a, const struct usage_record *rec)
{
	int64_t cap = 0;

	for (int c = 0; c < BODY_CAP__COUNT; c++)
		if (a->caps[c] > cap)
			cap = a->caps[c];
	a->out_cap = cap > 0 ? cap : cfg->default_output_cap;
	if (ep->wire == WIRE_OPENAI_EMBEDDINGS || ep->op == EP_COUNT_TOKENS)
		a->out_cap = 0;
	a->est = estimate_for(rec->upstream_model);
	a->prompt_tokens = estimate_prompt(a->json, ep->wire, a->est);
	a->prompt_reserved = estimate_reserve(a->est, a->prompt_tokens);
	/* Counting a prompt uses no tokens. */
	a->worst = ep->op == EP_COUNT_TOKENS
			   ? 0
			   : a->prompt_reserved + a->choices * a->out_cap;
}

/* Refuses a request over a rate limit, st telling which. */
static int
refuse_rate(struct evkeyvalq *out, const struct admission *a,
	    struct usage_record *rec, struct refusal *r,
	    const struct rl_status *pst)
{
	struct rl_status st = *pst;
	char v[32];
	int64_t retry_s;
	int tokens;

	reply_ratelimit_headers(out, &st);
	tokens = strcmp(st.refused, "tokens") == 0;
	if (tokens && st.retry_after_ms == 0) {
		snprintf(rec->refusal, sizeof rec->refusal,
			 "rate_limit:tokens");
		return refuse(
			r, 429, "tokens", "rate_limit_exceeded", NULL,
			"Request too large: it may use %lld tokens, more than the %s's limit of %lld tokens per minute. Lower max_tokens or the prompt.",
			(long long)a->worst, st.scope, (long long)st.limit);
	}
	retry_s = (st.retry_after_ms + 999) / 1000;
	snprintf(v, sizeof v, "%lld", (long long)(retry_s > 0 ? retry_s : 1));
	evhttp_add_header(out, "Retry-After", v);
	if (strcmp(st.refused, "concurrency") == 0) {
		snprintf(rec->refusal, sizeof rec->refusal,
			 "rate_limit:concurrency");
		return refuse(
			r, 429, st.refused, "rate_limit_exceeded", NULL,
			"Too many concurrent requests for this %s: limit %lld, in flight %lld. Please try again shortly.",
			st.scope, (long long)st.limit, (long long)st.used);
	}
	snprintf(rec->refusal, sizeof rec->refusal, "%s",
		 tokens ? "rate_limit:tokens" : "rate_limit:requests");
	return refuse(
		r, 429, st.refused, "rate_limit_exceeded", NULL,
		"Rate limit reached for %s per minute (%s) of this %s: Limit %lld, Used %lld, Requested %lld. Please try again in %llds.",
		st.refused, tokens ? "TPM" : "RPM", st.scope,
		(long long)st.limit, (long long)st.used,
		(long long)(tokens ? a->worst : 1), (long long)retry_s);
}

/* The tenant's and the key's rate limits; what does not fit is refused
 * with 429 and Retry-After. Every answer carries x-ratelimit-*. */
static int
admit_rate_limits(struct hreq *http, struct admission *a,
		  struct usage_record *rec, struct refusal *r)
{
	struct evkeyvalq *out = hreq_output_headers(http);
	const struct key_grant *g = &a->grant;
	struct rl_status st;

	if (ratelimit_admit(g->tenant_id, &g->rl_tenant, g->key_id, &g->rl_key,
			    a->worst, clock_policy_ms(), &a->ticket,
			    &st) == 0) {
		a->holds |= ADMIT_HOLDS_RATE;
		reply_ratelimit_headers(out, &st);
		return 0;
	}
	return refuse_rate(out, a, rec, r, &st);
}

/* The body comes as it is: a compressed one could not be read, routed or
 * metered, and no client SDK sends one. */
static int
admit_encoding(struct hreq *http, struct usage_record *rec, struct refusal *r)
{
	const char *v = evhttp_find_header(hreq_input_headers(http),
					   "Content-Encoding");

	if (v == NULL || *v == '\0' || strcasecmp(v, "identity") == 0)
		return 0;
	snprintf(rec->refusal, sizeof rec->refusal, "invalid_request");
	return refuse(
		r, 415, "invalid_request_error", "unsupported_content_encoding",
		NULL,
		"Request bodies with Content-Encoding '%.40s' are not accepted; send the body uncompressed.",
		v);
}

int
admit_auth(const struct config *cfg, struct hreq *http,
	   const struct endpoint *ep, struct admission *a,
	   struct usage_record *rec, struct refusal *r)
{
	struct rl_status st;

	if (admit_key_known(http, ep, a, rec, r) != 0)
		return -1;
	if (ratelimit_requests_left(a->grant.tenant_id, &a->grant.rl_tenant,
				    a->grant.key_id, &a->grant.rl_key,
				    clock_policy_ms(), &st) != 0)
		return refuse_rate(hreq_output_headers(http), a, rec, r, &st);
	if (admit_encoding(http, rec, r) != 0)
		return -1;
	if (cfg->db_down_refuse && !pgwriter_db_ok()) {
		snprintf(rec->refusal, sizeof rec->refusal, "ledger");
		return refuse(
			r, 503, "server_error", "ledger_unavailable", NULL,
			"The usage ledger is unreachable and this gateway is set to refuse requests meanwhile (on_db_down = refuse). Please try again shortly.");
	}
	return 0;
}

/* Runs every step after the key up to the quotas. */
int
admit_request(const struct config *cfg, struct hreq *http,
	      const struct endpoint *ep, const char *path_model,
	      struct admission *a, struct usage_record *rec, struct refusal *r)
{
	if (admit_body(cfg, http, a, rec, r) != 0 ||
	    admit_model(path_model, a, rec, r) != 0 ||
	    admit_route(cfg, ep, a, rec, r) != 0)
		return -1;
	worst_case(cfg, ep, a, rec);
	return admit_rate_limits(http, a, rec, r);
}

/* Whether a count_tokens request is answered by the gateway: when its
 * target does not count Anthropic's way itself (only Anthropic's API has
 * the endpoint). */
int
admit_counts_locally(const struct admission *a)
{
	return a->route->targets[a->target].provider->type !=
	       PROVIDER_ANTHROPIC;
}

/* The prompt of a count_tokens request as its target counts it: sent in
 * the target's API (translated, as the request itself would be), counted
 * with the target model's tokenizer, exactly where that is public (then
 * *exact is 1) and else raised by the model's safety factor, so that a
 * client budgeting its context does not run past it. -1 with a refusal
 * when the request cannot be sent there. */
int
admit_count_tokens(const struct admission *a, const struct usage_record *rec,
		   int64_t *tokens, int *exact, struct refusal *r)
{
	char *cause = NULL, *text;
	size_t len = 0;
	cJSON *chat;

	text = tr_messages_to_chat(a->json, rec->upstream_model, 0, 0, &len,
				   &cause);
	if (text == NULL) {
		refuse(r, 400, "invalid_request_error", "invalid_request_error",
		       NULL,
		       "The request cannot be counted for provider '%s': %s",
		       rec->provider, cause != NULL ? cause : "out of memory");
		free(cause);
		return -1;
	}
	chat = cJSON_ParseWithLength(text, len);
	free(text);
	if (chat == NULL)
		return refuse(r, 500, "server_error", NULL, NULL,
			      "Out of memory.");
	*tokens = estimate_prompt(chat, WIRE_OPENAI_CHAT, a->est);
	cJSON_Delete(chat);
	*exact = a->est->exact;
	if (!*exact)
		*tokens = estimate_reserve(a->est, *tokens);
	return 0;
}

/* Checks the quotas that apply: on the leases, or to be reserved. */
enum admit_quota
admit_quotas(struct admission *a, const struct usage_record *rec)
{
	const struct key_grant *g = &a->grant;
	struct quota_job *job = a->qjob;
	int leasable = 1;

	if (g->nquotas == 0)
		return ADMIT_QUOTA_NONE;
	if (job == NULL && (job = a->qjob = malloc(sizeof *job)) == NULL)
		return ADMIT_QUOTA_FAILED;
	memset(job, 0, sizeof *job);
	for (int i = 0; i < g->nquotas && job->n < QUOTA_MAX; i++) {
		const struct quota_ref *q = &g->quotas[i];
		if (q->model_pattern[0] != '\0' &&
		    fnmatch(q->model_pattern, a->model, 0) != 0)
			continue;
		job->ids[job->n++] = q->id;
		/* Soft quotas warn and spend is settled by the ledger: those
		 * are reserved per request. */
		if (!q->hard || q->spend)
			leasable = 0;
		if (q->hard)
			job->any_hard = 1;
	}
	if (job->n == 0)
		return ADMIT_QUOTA_NONE;
	/* Under a hard quota the provider is told the cap reserved, so it
	 * cannot spend more (relay.c, provider.c). */
	a->clamp = job->any_hard && a->out_cap > 0;
	job->tokens = a->worst;
	if (leasable && quota_lease_take(job->ids, job->n, job->tokens,
					 clock_policy_ms())) {
		a->holds |= ADMIT_HOLDS_LEASE;
		return ADMIT_QUOTA_NONE;
	}
	memcpy(job->request_id, rec->request_id, sizeof job->request_id);
	snprintf(job->provider, sizeof job->provider, "%s", rec->provider);
	snprintf(job->model, sizeof job->model, "%s", rec->upstream_model);
	job->now_ms = clock_policy_ms();
	return ADMIT_QUOTA_RESERVE;
}

/* Takes note of a reservation the quota thread made. */
void
admit_quota_reserved(struct admission *a)
{
	if (a->qjob->status == 0)
		a->holds |= ADMIT_HOLDS_QUOTA;
}

/* Shrinks the output a hard token quota refused to what it has left, when
 * that leaves at least a token for each output: the request is asked for
 * again with the smaller worst case. At most CLAMP_TRIES times (another
 * quota may refuse the smaller one). */
static int
clamp_to_left(struct admission *a)
{
	struct quota_job *job = a->qjob;
	int64_t left = job->limit - job->used - job->reserved, out;

	if (job->spend || a->clamps >= CLAMP_TRIES || a->out_cap == 0 ||
	    left <= a->prompt_reserved)
		return 0;
	out = (left - a->prompt_reserved) / a->choices;
	if (out < 1 || out >= a->out_cap)
		return 0;
	a->clamps++;
	a->clamp = 1;
	a->out_cap = out;
	a->worst = a->prompt_reserved + a->choices * out;
	job->tokens = a->worst;
	job->status = 0;
	job->quota_id = 0;
	job->soft_exceeded = 0;
	return 1;
}

/* Reads the quota thread's answer. */
int
admit_quota_answer(struct admission *a, struct usage_record *rec,
		   struct evkeyvalq *out, struct refusal *r)
{
	const struct quota_job *job = a->qjob;
	char used[32], lim[32], v[160];

	if (job->status == 1 && clamp_to_left(a)) {
		log_request(LOG_DEBUG, rec->request_id, rec->tenant,
			    "quota %lld: output clamped to %lld tokens",
			    (long long)job->quota_id, (long long)a->out_cap);
		return 1;
	}
	if (job->status == 1) {
		snprintf(rec->refusal, sizeof rec->refusal, "quota:%lld",
			 (long long)job->quota_id);
		if (!job->spend)
			return refuse(
				r, 429, "insufficient_quota",
				"insufficient_quota", NULL,
				"You exceeded quota %lld: %lld of %lld tokens used or reserved in this period, and this request may use %lld.",
				(long long)job->quota_id,
				(long long)(job->used + job->reserved),
				(long long)job->limit, (long long)job->tokens);
		price_format(job->used + job->reserved, used, sizeof used);
		price_format(job->limit, lim, sizeof lim);
		return refuse(
			r, 429, "insufficient_quota", "insufficient_quota",
			NULL,
			"You exceeded quota %lld: %s of its spend limit of %s (in your billing currency) used or reserved in this period.",
			(long long)job->quota_id, used, lim);
	}
	if (job->status < 0 && !job->any_hard) {
		/* Soft quotas only warn: serve while their state is away. */
		log_request(LOG_WARN, rec->request_id, rec->tenant,
			    "quota state unreachable; soft quotas not checked "
			    "for this request");
	} else if (job->status < 0) {
		snprintf(rec->refusal, sizeof rec->refusal,
			 "quota:unavailable");
		return refuse(
			r, 503, "server_error", "quota_unavailable", NULL,
			"The quota state cannot be reached; please try again shortly.");
	}
	if (job->soft_exceeded) {
		snprintf(
			v, sizeof v,
			"quota %lld exceeded: %lld of %lld tokens used or reserved",
			(long long)job->quota_id,
			(long long)(job->used + job->reserved + job->tokens),
			(long long)job->limit);
		evhttp_add_header(out, "x-tollgate-quota-warning", v);
		log_request(LOG_WARN, rec->request_id, rec->tenant, "soft %s",
			    v);
		metrics_add(METRIC_SOFT_QUOTA, 1);
	}
	return 0;
}

/* Gives back what admission holds. */
void
admit_release(struct admission *a, const char *request_id, int64_t used)
{
	if (a->holds & ADMIT_HOLDS_LEASE)
		quota_lease_return(a->qjob->ids, a->qjob->n, a->qjob->tokens,
				   used);
	if (a->holds & ADMIT_HOLDS_QUOTA)
		quota_settle(request_id, used);
	if (a->holds & ADMIT_HOLDS_RATE)
		ratelimit_settle(&a->ticket, used, clock_policy_ms());
	a->holds = 0;
}

/* Counts a refusal of a request whose key was known against its request
 * limits, unless a rate limit refused it or it was counted at admission. */
void
admit_count_refusal(const struct admission *a, const struct usage_record *rec)
{
	const struct key_grant *g = &a->grant;

	if (g->tenant_id == 0 || (a->holds & ADMIT_HOLDS_RATE) ||
	    strncmp(rec->refusal, "rate_limit", 10) == 0)
		return;
	ratelimit_count_refused(g->tenant_id, &g->rl_tenant, g->key_id,
				&g->rl_key, clock_policy_ms());
}

void
admit_drop_body(struct admission *a)
{
	if (a->json == NULL)
		return;
	if (a->model != NULL && a->model != a->path_model) {
		if ((a->model_copy = strdup(a->model)) == NULL)
			return; /* kept, then */
		a->model = a->model_copy;
	}
	cJSON_Delete(a->json);
	free(a->body);
	a->json = NULL;
	a->body = NULL;
	a->body_len = 0;
}

/* Frees what admission owns. */
void
admit_free(struct admission *a)
{
	keystore_grant_clear(&a->grant);
	cJSON_Delete(a->json);
	free(a->body);
	free(a->path_model);
	free(a->model_copy);
	free(a->qjob);
	a->qjob = NULL;
	a->model_copy = NULL;
	a->json = NULL;
	a->body = NULL;
	a->path_model = NULL;
}
