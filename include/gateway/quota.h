/*
 * quota.h - token quotas, reserved centrally in PostgreSQL.
 *
 * A thread with its own connection runs each admitted request's
 * reservation (sql/006_quotas.sql) and, when the request ends, its
 * settlement. The request waits for the answer parked on an event of its
 * worker's loop, so no event loop ever waits on the database.
 */
#ifndef TOLLGATE_QUOTA_H
#define TOLLGATE_QUOTA_H

#include <stdint.h>

#define QUOTA_MAX 16 /* quotas one request is checked against */

struct event;

/* Whether quotas on spend exist for records the ledger prices: the
 * ledger calls tollgate_quota_settle_spend for every batch it writes. */

/* A quota as the key cache knows it. */
struct quota_ref {
	int64_t id;
	char model_pattern[128]; /* "" = every model */
	int hard;
	int spend; /* has a spend limit */
};

/* One reservation, owned by its request until ev fires. */
struct quota_job {
	char request_id[40];
	int64_t ids[QUOTA_MAX];
	int n;
	int64_t tokens;    /* worst case */
	int any_hard;      /* a hard quota is among ids */
	char provider[64]; /* where it goes, to bound its cost */
	char model[128];
	int64_t now_ms;   /* the policy clock */
	struct event *ev; /* activated on the request's loop when done */
	/* Results: */
	int status;                    /* 0 reserved, 1 refused by a hard quota,
					  -1 the quota state could not be reached */
	int64_t quota_id;              /* the quota that refused, or a soft one
					  exceeded (0 = none) */
	int64_t limit, used, reserved; /* tokens, or nano-units if spend */
	int spend; /* the spend limit was the one exceeded */
	int soft_exceeded;
	struct quota_job *next;
};

int quota_start(const char *conninfo) __attribute__((warn_unused_result));
void quota_stop(void);

/* Queues a reservation; job->ev fires when the result is in. */
void quota_reserve(struct quota_job *job);

/* Queues the settlement of a request's reservations with its actual
 * tokens. */
void quota_settle(const char *request_id, int64_t tokens);

/* Admits a request locally against this gateway's leases on the hard
 * token quotas ids: 1 when every one had room (the tokens are taken), 0
 * when not (nothing is taken, and the leases are asked for). */
int quota_lease_take(const int64_t *ids, int n, int64_t tokens, int64_t now_ms);

/* Ends a request admitted by quota_lease_take(): gives back its worst
 * case and counts what it used. */
void quota_lease_return(const int64_t *ids, int n, int64_t tokens,
			int64_t used);

#endif
