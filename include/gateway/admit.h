/*
 * admit.h - admission: whether a request may go upstream, and what it
 * holds if so.
 *
 * Authentication (the key, its tenant and grants), the body (size, depth,
 * JSON, the model), routing (a target that takes this endpoint), the
 * worst case it may use, the rate limits and the quotas that apply. Each
 * step either lets the request through or returns a refusal: the status
 * and error to answer, with the tag its usage record keeps. Admission adds
 * the headers its decisions carry (x-ratelimit-*, Retry-After, a soft
 * quota's warning); request.c sends the answer.
 */
#ifndef TOLLGATE_ADMIT_H
#define TOLLGATE_ADMIT_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "body.h"
#include "keyhash.h"
#include "keystore.h"
#include "quota.h"
#include "ratelimit.h"
#include "reply.h"
#include "tollgate.h"

struct config;
struct estimator;
struct hreq;
struct route_conf;
struct usage_record;

/* Why a request was refused: the error to answer (its headers, such as
 * Retry-After, are already on the reply). */
struct refusal {
	struct reply_error err; /* message points into msg, param (when
				   set) into param */
	char msg[512];
	char param[128];
};

/* What admission found and holds for a request it let through, or
 * partly filled for one it refused. Zero it before admit_request(); free
 * with admit_free(). */
struct admission {
	struct key_grant grant; /* the key's tenant, limits and quotas */
	char *body;             /* the client's body, NUL-terminated */
	size_t body_len;
	cJSON *json;       /* body parsed; NULL when it was not read, or
			      once dropped (admit_drop_body) */
	int body_read;     /* the body was read and parsed */
	char *model_copy;  /* model, owned, once the body was dropped */
	const char *model; /* the requested model (json's, or the
			      path's for Azure) */
	char *path_model;  /* the model a path named, owned */
	int stream;        /* the client asked for a stream */
	int client_usage;  /* ...with stream_options.include_usage */
	int64_t caps[BODY_CAP__COUNT]; /* the output caps the body set */
	int64_t choices;               /* outputs it asks for (n, best_of) */
	const struct route_conf *route;
	int target;                  /* the first route target that takes the
					endpoint */
	const struct estimator *est; /* how the first target's model counts */
	int64_t prompt_tokens;       /* the prompt estimated, once */
	int64_t prompt_reserved;     /* ...as its worst case reserves it (raised
					for providers whose tokenizer is not
					public, estimate.h) */
	int64_t out_cap;             /* output reserved per choice */
	int64_t worst; /* prompt_reserved plus choices times out_cap */
	int clamp;     /* a hard quota applies: the provider is sent
			  out_cap as the request's cap */
	int clamps;    /* times out_cap was shrunk to fit */
	struct rl_ticket ticket; /* what the rate limits counted */
	struct quota_job *qjob;  /* the quotas that apply; allocated when
				    the key has any */
	unsigned holds;          /* ADMIT_HOLDS_* still to give back */
};

#define ADMIT_HOLDS_RATE  0x1 /* a rate-limit ticket */
#define ADMIT_HOLDS_LEASE 0x2 /* tokens of this gateway's quota leases */
#define ADMIT_HOLDS_QUOTA 0x4 /* a reservation in the database */

/* Copies the API key the client presented into key (keyhash_find()):
 * its length, 0 when none was. */
size_t admit_api_key(struct hreq *http, char key[KEY_FIND_MAX + 1]);

/* Looks the presented key up into *g (free with keystore_grant_clear):
 * KEY_OK, or why not (KEY_UNKNOWN also when no key was presented). */
enum key_status admit_key(struct hreq *http, struct key_grant *g);

/* Authenticates from the head alone, before any of the body is read:
 * the key, and whether the gateway serves at all (on_db_down). Fills
 * rec's tenant and key. 0 when the body may be read, or -1 with *r
 * filled. */
int admit_auth(const struct config *cfg, struct hreq *http,
	       const struct endpoint *ep, struct admission *a,
	       struct usage_record *rec, struct refusal *r)
	__attribute__((warn_unused_result));

/* Admits an authenticated request whose body was read: the body, the
 * model (path_model: the one a path named, Azure, or NULL), the route,
 * the worst case and the rate limits. Fills rec's model, stream flag,
 * provider and refusal tag as it learns them. 0 when the request may go
 * on, or -1 with *r filled. */
int admit_request(const struct config *cfg, struct hreq *http,
		  const struct endpoint *ep, const char *path_model,
		  struct admission *a, struct usage_record *rec,
		  struct refusal *r) __attribute__((warn_unused_result));

/* Whether an admitted count_tokens request (EP_COUNT_TOKENS) is
 * answered by the gateway (admit_count_tokens) rather than passed to its
 * target: when the target is not Anthropic's. */
int admit_counts_locally(const struct admission *a);

/* Counts the prompt of an admitted count_tokens request as its target
 * would: *tokens, *exact when counted with the model's own tokenizer
 * (else raised by its safety factor, estimate.h). 0, or -1 with *r. */
int admit_count_tokens(const struct admission *a,
		       const struct usage_record *rec, int64_t *tokens,
		       int *exact, struct refusal *r)
	__attribute__((warn_unused_result));

/* What admit_quotas() decided. */
enum admit_quota {
	ADMIT_QUOTA_NONE,    /* no quota applies, or the leases admitted it */
	ADMIT_QUOTA_RESERVE, /* a->qjob must be reserved by the quota thread */
	ADMIT_QUOTA_FAILED   /* out of memory: refuse */
};

/* Checks the grant's quotas that apply to the admitted request: against
 * this gateway's leases when it can, else prepares the reservation in
 * a->qjob (its ev is the caller's to set). */
enum admit_quota admit_quotas(struct admission *a,
			      const struct usage_record *rec);

/* Takes note of the quota thread's answer to a->qjob: a reservation it
 * made is held from now on (until admit_release), whatever becomes of the
 * request. */
void admit_quota_reserved(struct admission *a);

/* Reads the quota thread's answer to a->qjob: 0 to go on (a soft quota
 * exceeded adds its warning header to out and logs), 1 when a hard token
 * quota refused the worst case but has room for a smaller output, which
 * a->qjob now asks for (reserve it again), or -1 with *r. */
int admit_quota_answer(struct admission *a, struct usage_record *rec,
		       struct evkeyvalq *out, struct refusal *r);

/* Gives back what admission holds, settled to the tokens the request
 * used. */
void admit_release(struct admission *a, const char *request_id, int64_t used);

/* Counts a refused request whose key was known against its tenant's and
 * key's request limits (unless a rate limit refused it, or admission
 * counted it already), so that refusals cost as requests do. */
void admit_count_refusal(const struct admission *a,
			 const struct usage_record *rec);

/* Frees the client's body and its parse once nothing can need them again
 * (a stream relaying: no other target will be tried), keeping a copy of
 * the model. A held prompt is most of what a slow stream costs. */
void admit_drop_body(struct admission *a);

/* Frees what admission owns; releases nothing (see admit_release). */
void admit_free(struct admission *a);

#endif
