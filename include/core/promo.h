/*
 * promo.h - free-token grants and discounts applied to one request.
 *
 * Pure arithmetic on what the ledger loaded: which promotions match a
 * request, how its tokens split between the grants that cover them
 * (earliest-ending grant first; within a request, classes in the order
 * input, cached, cache write, output) and the paid remainder, and what the
 * largest matching discount takes off. No I/O.
 */
#ifndef TOLLGATE_PROMO_H
#define TOLLGATE_PROMO_H

#include <stdint.h>

#include "price.h"

enum promo_kind { PROMO_FREE_TOKENS, PROMO_DISCOUNT };

struct promotion {
	int64_t id;
	enum promo_kind kind;
	int64_t tenant_id;   /* 0 = every tenant */
	char *model_pattern; /* NULL = any (owned) */
	char *provider;      /* NULL = any (owned) */
	int64_t free_tokens;
	int discount_bp;
	int64_t starts_us, ends_us; /* [starts, ends), ends already cut to
				       ended_at when the promotion was ended */
};

/* One tenant's balance of one grant, as locked for this batch. */
struct grant_balance {
	const struct promotion *promo;
	int64_t tenant_id;
	int64_t used;        /* updated as requests consume it */
	int64_t used_before; /* as read, to write the difference back */
};

/* Whether p applies to a request at ts_us of tenant, provider and model. */
int promo_matches(const struct promotion *p, int64_t ts_us, int64_t tenant_id,
		  const char *provider, const char *model);

/* What grants and the discount did to one request. */
#define PROMO_MAX_GRANTS 16
struct promo_result {
	struct token_counts free; /* covered by grants, per class */
	int ngrants;
	struct {
		int64_t promotion_id;
		struct token_counts covered;
	} grants[PROMO_MAX_GRANTS];
	int64_t discount_id; /* 0 when none */
	int discount_bp;
	int64_t list_nanos, free_nanos, discount_nanos, billed_nanos;
};

/* Applies the balances (those matching, each with tokens left, sorted by
 * the caller earliest-ending first) to counts, consuming them, then the
 * best of the discounts, and prices the result at p. balances may be NULL
 * when n is 0; likewise discounts. 0, or -1 on overflow. */
int promo_apply(const struct price *p, const struct token_counts *counts,
		struct grant_balance **balances, int nbalances,
		const struct promotion *const *discounts, int ndiscounts,
		struct promo_result *out) __attribute__((warn_unused_result));

#endif
