/*
 * ratelimit.c - RPM, TPM and concurrency limits shared by the workers.
 *
 * Principle: one counter per tenant and per key, in a table under one
 * mutex; admission checks every applicable limit and counts only when all
 * pass, so a refused request costs no quota. A minute's count is
 * cur + prev * (time left of the previous minute in the window) / 60 s,
 * which never lets a burst straddling two minutes through at twice the
 * rate, as fixed windows do. The state is this process's: with several
 * gateways each enforces the limits on its own traffic.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define MINUTE_MS 60000

struct rl_slot {
	int64_t kind; /* 0 empty, 1 tenant, 2 key */
	int64_t id;
	int64_t minute; /* the current fixed minute (ms / 60000) */
	int64_t cur_req, prev_req;
	int64_t cur_tok, prev_tok;
	int64_t inflight;
};

static struct {
	pthread_mutex_t lock;
	struct rl_slot *slots;
	size_t cap, n;
} rl = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Finds or adds the counters of (kind, id). Caller holds the lock. */
static struct rl_slot *
do_slot(int64_t kind, int64_t id)
{
	size_t i;

	if (rl.n * 2 >= rl.cap) {
		size_t ncap = rl.cap ? rl.cap * 2 : 256;
		struct rl_slot *ns = calloc(ncap, sizeof *ns);
		if (ns == NULL)
			return NULL;
		for (size_t k = 0; k < rl.cap; k++) {
			struct rl_slot *s = &rl.slots[k];
			if (s->kind == 0)
				continue;
			i = (size_t)(s->id * 31 + s->kind) & (ncap - 1);
			while (ns[i].kind != 0)
				i = (i + 1) & (ncap - 1);
			ns[i] = *s;
		}
		free(rl.slots);
		rl.slots = ns;
		rl.cap = ncap;
	}
	i = (size_t)(id * 31 + kind) & (rl.cap - 1);
	while (rl.slots[i].kind != 0) {
		if (rl.slots[i].kind == kind && rl.slots[i].id == id)
			return &rl.slots[i];
		i = (i + 1) & (rl.cap - 1);
	}
	rl.slots[i].kind = kind;
	rl.slots[i].id = id;
	rl.n++;
	return &rl.slots[i];
}

/* Moves a slot's fixed minutes forward to now. */
static void
roll(struct rl_slot *s, int64_t now_ms)
{
	int64_t m = now_ms / MINUTE_MS;

	if (m == s->minute)
		return;
	if (m == s->minute + 1) {
		s->prev_req = s->cur_req;
		s->prev_tok = s->cur_tok;
	} else {
		s->prev_req = s->prev_tok = 0;
	}
	s->cur_req = s->cur_tok = 0;
	s->minute = m;
}

/* The sliding-minute count from a current and a previous bucket. */
static int64_t
window(int64_t cur, int64_t prev, int64_t now_ms)
{
	int64_t into = now_ms % MINUTE_MS;

	return cur + (prev * (MINUTE_MS - into) + MINUTE_MS - 1) / MINUTE_MS;
}

/* Milliseconds until adding add to the count fits under limit, found by
 * stepping the window forward a second at a time (two minutes at most). */
static int64_t
wait_ms(const struct rl_slot *s, int req, int64_t add, int64_t limit,
	int64_t now_ms)
{
	for (int64_t t = 1000; t <= 2 * MINUTE_MS; t += 1000) {
		struct rl_slot f = *s;
		roll(&f, now_ms + t);
		if (window(req ? f.cur_req : f.cur_tok,
			   req ? f.prev_req : f.prev_tok, now_ms + t) +
			    add <=
		    limit)
			return t;
	}
	return 2 * MINUTE_MS;
}

/* Tightens the reported status with one scope's numbers. Reset times are
 * until the window is back to its initial state, as OpenAI reports them. */
static void
report(struct rl_status *st, const struct rl_limits *l, const struct rl_slot *s,
       int64_t now_ms)
{
	if (l->rpm > 0) {
		int64_t used = window(s->cur_req, s->prev_req, now_ms);
		int64_t left = l->rpm > used ? l->rpm - used : 0;
		if (st->limit_requests == 0 || left < st->remaining_requests) {
			st->limit_requests = l->rpm;
			st->remaining_requests = left;
			st->reset_requests_ms =
				used == 0 ? 0 : wait_ms(s, 1, 0, 0, now_ms);
		}
	}
	if (l->tpm > 0) {
		int64_t used = window(s->cur_tok, s->prev_tok, now_ms);
		int64_t left = l->tpm > used ? l->tpm - used : 0;
		if (st->limit_tokens == 0 || left < st->remaining_tokens) {
			st->limit_tokens = l->tpm;
			st->remaining_tokens = left;
			st->reset_tokens_ms =
				used == 0 ? 0 : wait_ms(s, 0, 0, 0, now_ms);
		}
	}
}

/* Checks one scope; on refusal fills st and returns -1. */
static int
check(const struct rl_limits *l, const struct rl_slot *s, int64_t tokens,
      int64_t now_ms, const char *scope, struct rl_status *st)
{
	if (l->concurrency > 0 && s->inflight >= l->concurrency) {
		st->refused = "concurrency";
		st->limit = l->concurrency;
		st->used = s->inflight;
		st->retry_after_ms = 1000;
	} else if (l->rpm > 0 &&
		   window(s->cur_req, s->prev_req, now_ms) + 1 > l->rpm) {
		st->refused = "requests";
		st->limit = l->rpm;
		st->used = window(s->cur_req, s->prev_req, now_ms);
		st->retry_after_ms = wait_ms(s, 1, 1, l->rpm, now_ms);
	} else if (l->tpm > 0 &&
		   window(s->cur_tok, s->prev_tok, now_ms) + tokens > l->tpm) {
		st->refused = "tokens";
		st->limit = l->tpm;
		st->used = window(s->cur_tok, s->prev_tok, now_ms);
		/* A request larger than the whole limit never fits. */
		st->retry_after_ms =
			tokens > l->tpm ? 0
					: wait_ms(s, 0, tokens, l->tpm, now_ms);
	} else {
		return 0;
	}
	st->scope = scope;
	return -1;
}

/* Admits a request against the tenant's and the key's limits. */
int
ratelimit_admit(int64_t tenant_id, const struct rl_limits *tl, int64_t key_id,
		const struct rl_limits *kl, int64_t tokens, int64_t now_ms,
		struct rl_ticket *t, struct rl_status *st)
{
	const struct rl_limits *lims[2] = { tl, kl };
	static const char *const scopes[2] = { "tenant", "key" };
	struct rl_slot *s[2] = { NULL, NULL };
	int rc = 0;

	memset(t, 0, sizeof *t);
	memset(st, 0, sizeof *st);
	pthread_mutex_lock(&rl.lock);
	for (int i = 0; i < 2; i++) {
		const struct rl_limits *l = lims[i];
		if (l == NULL ||
		    (l->rpm == 0 && l->tpm == 0 && l->concurrency == 0))
			continue;
		s[i] = do_slot(i + 1, i == 0 ? tenant_id : key_id);
		if (s[i] == NULL)
			continue;
		roll(s[i], now_ms);
		if (rc == 0 &&
		    check(l, s[i], tokens, now_ms, scopes[i], st) != 0)
			rc = -1;
	}
	if (rc == 0) {
		for (int i = 0; i < 2; i++) {
			if (s[i] == NULL)
				continue;
			s[i]->cur_req++;
			s[i]->cur_tok += tokens;
			s[i]->inflight++;
			t->ids[i] = s[i]->id;
		}
		t->tokens = tokens;
		t->minute = now_ms / MINUTE_MS;
	}
	for (int i = 0; i < 2; i++)
		if (s[i] != NULL)
			report(st, lims[i], s[i], now_ms);
	pthread_mutex_unlock(&rl.lock);
	return rc;
}

/* Gives back the concurrency slot and corrects the tokens counted. The
 * ticket names its counters by id: the table may have grown since. */
void
ratelimit_settle(struct rl_ticket *t, int64_t actual, int64_t now_ms)
{
	pthread_mutex_lock(&rl.lock);
	for (int i = 0; i < 2; i++) {
		struct rl_slot *s;
		if (t->ids[i] == 0)
			continue;
		s = do_slot(i + 1, t->ids[i]);
		t->ids[i] = 0;
		if (s == NULL)
			continue;
		roll(s, now_ms);
		s->inflight--;
		if (t->minute == s->minute)
			s->cur_tok += actual - t->tokens;
		else if (t->minute == s->minute - 1)
			s->prev_tok += actual - t->tokens;
		if (s->cur_tok < 0)
			s->cur_tok = 0;
		if (s->prev_tok < 0)
			s->prev_tok = 0;
	}
	pthread_mutex_unlock(&rl.lock);
}

/* Runs one step on the counters of each scope with a request limit, under
 * the lock: check returns -1 to stop (refused). */
static int
each_rpm_scope(int64_t tenant_id, const struct rl_limits *tl, int64_t key_id,
	       const struct rl_limits *kl, int64_t now_ms, int count,
	       struct rl_status *st)
{
	const struct rl_limits *lims[2] = { tl, kl };
	static const char *const scopes[2] = { "tenant", "key" };
	int rc = 0;

	pthread_mutex_lock(&rl.lock);
	for (int i = 0; i < 2 && rc == 0; i++) {
		struct rl_slot *s;
		if (lims[i] == NULL || lims[i]->rpm == 0)
			continue;
		s = do_slot(i + 1, i == 0 ? tenant_id : key_id);
		if (s == NULL)
			continue;
		roll(s, now_ms);
		if (count) {
			s->cur_req++;
		} else if (window(s->cur_req, s->prev_req, now_ms) >=
			   lims[i]->rpm) {
			st->refused = "requests";
			st->scope = scopes[i];
			st->limit = lims[i]->rpm;
			st->used = window(s->cur_req, s->prev_req, now_ms);
			st->retry_after_ms =
				wait_ms(s, 1, 1, lims[i]->rpm, now_ms);
			report(st, lims[i], s, now_ms);
			rc = -1;
		}
	}
	pthread_mutex_unlock(&rl.lock);
	return rc;
}

/* Whether a request may be tried at all: 0 when both scopes' request
 * limits have room for one more, else -1 with st filled. Counts
 * nothing. */
int
ratelimit_requests_left(int64_t tenant_id, const struct rl_limits *tl,
			int64_t key_id, const struct rl_limits *kl,
			int64_t now_ms, struct rl_status *st)
{
	memset(st, 0, sizeof *st);
	return each_rpm_scope(tenant_id, tl, key_id, kl, now_ms, 0, st);
}

/* Counts a refused request against both scopes' request limits. */
void
ratelimit_count_refused(int64_t tenant_id, const struct rl_limits *tl,
			int64_t key_id, const struct rl_limits *kl,
			int64_t now_ms)
{
	struct rl_status st;

	(void)each_rpm_scope(tenant_id, tl, key_id, kl, now_ms, 1, &st);
}
