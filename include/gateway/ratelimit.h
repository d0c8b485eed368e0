/*
 * ratelimit.h - requests per minute, tokens per minute and concurrent
 * requests, per tenant and per key, shared by every worker of a gateway.
 *
 * Minutes are sliding windows, approximated from the current and the
 * previous fixed minute (the previous one weighted by how much of it the
 * window still covers). Tokens are counted at admission as the request's
 * worst case (estimated prompt plus max_tokens) and corrected to the
 * actual usage when it ends. Time is passed in, so tests can move it.
 */
#ifndef TOLLGATE_RATELIMIT_H
#define TOLLGATE_RATELIMIT_H

#include <stdint.h>

/* Limits of one scope; 0 = no limit of that kind. */
struct rl_limits {
	int64_t rpm;
	int64_t tpm;
	int64_t concurrency;
};

/* What admission took, to be given back by ratelimit_settle(). */
struct rl_ticket {
	int64_t ids[2]; /* tenant and key counted against, 0 = none */
	int64_t tokens; /* tokens counted at admission */
	int64_t minute; /* the minute they were counted in */
};

/* What a response reports in its x-ratelimit-* headers: the tightest of
 * the tenant's and the key's limits. */
struct rl_status {
	int64_t limit_requests, remaining_requests, reset_requests_ms;
	int64_t limit_tokens, remaining_tokens, reset_tokens_ms;
	/* On refusal: */
	const char *refused; /* "requests", "tokens" or "concurrency" */
	const char *scope;   /* "tenant" or "key" */
	int64_t limit, used;
	int64_t retry_after_ms;
};

/* Admits a request of tokens (worst case) at now_ms against the tenant's
 * and the key's limits (either may be NULL). Returns 0 and fills *t, or -1
 * when a limit would be exceeded (nothing is counted then). *st is filled
 * either way. */
int ratelimit_admit(int64_t tenant_id, const struct rl_limits *tl,
		    int64_t key_id, const struct rl_limits *kl, int64_t tokens,
		    int64_t now_ms, struct rl_ticket *t, struct rl_status *st);

/* Ends an admitted request: frees its concurrency slot and replaces the
 * tokens counted at admission with actual (when still in the window). */
void ratelimit_settle(struct rl_ticket *t, int64_t actual, int64_t now_ms);

/* Whether the tenant's and the key's request limits have room for one
 * more request (checked before its body is read): 0, or -1 with st
 * filled as ratelimit_admit does on refusal. Counts nothing. */
int ratelimit_requests_left(int64_t tenant_id, const struct rl_limits *tl,
			    int64_t key_id, const struct rl_limits *kl,
			    int64_t now_ms, struct rl_status *st);

/* Counts a request refused after its key was known (a bad body, an
 * unknown model...) against the request limits, so that refusals cost a
 * tenant as requests do. */
void ratelimit_count_refused(int64_t tenant_id, const struct rl_limits *tl,
			     int64_t key_id, const struct rl_limits *kl,
			     int64_t now_ms);

#endif
