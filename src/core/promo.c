/*
 * promo.c - grants and discounts applied to one request.
 *
 * Principle: free tokens are consumed before paid ones and never below a
 * grant's balance: the caller hands in the balances it locked, already in
 * the order they burn (earliest-ending first), and this code takes from
 * each what it still holds, class by class. Only then is the paid
 * remainder priced and discounted, by the single largest matching
 * discount (no stacking). The list price of all tokens and of the paid
 * ones are each rounded once, half up; the free value is their difference.
 */
#include <fnmatch.h>
#include <string.h>

#include "promo.h"

/* Whether a promotion applies to a request. */
int
promo_matches(const struct promotion *p, int64_t ts_us, int64_t tenant_id,
	      const char *provider, const char *model)
{
	if (ts_us < p->starts_us || ts_us >= p->ends_us)
		return 0;
	if (p->tenant_id != 0 && p->tenant_id != tenant_id)
		return 0;
	if (p->provider != NULL &&
	    (provider == NULL || strcmp(p->provider, provider) != 0))
		return 0;
	if (p->model_pattern != NULL &&
	    (model == NULL || fnmatch(p->model_pattern, model, 0) != 0))
		return 0;
	return 1;
}

/* Applies grants, then the best discount, and prices the request. */
int
promo_apply(const struct price *p, const struct token_counts *counts,
	    struct grant_balance **balances, int nbalances,
	    const struct promotion *const *discounts, int ndiscounts,
	    struct promo_result *out)
{
	struct token_counts paid = *counts;
	const struct promotion *best = NULL;
	int64_t paid_nanos;

	memset(out, 0, sizeof *out);
	for (int i = 0; i < nbalances && out->ngrants < PROMO_MAX_GRANTS; i++) {
		struct grant_balance *b = balances[i];
		int64_t left = b->promo->free_tokens - b->used;
		int slot = -1;

		for (int c = 0; c < TC__COUNT && left > 0; c++) {
			int64_t take = paid.n[c] < left ? paid.n[c] : left;
			if (take == 0)
				continue;
			if (slot < 0) {
				slot = out->ngrants++;
				out->grants[slot].promotion_id = b->promo->id;
			}
			out->grants[slot].covered.n[c] += take;
			out->free.n[c] += take;
			paid.n[c] -= take;
			b->used += take;
			left -= take;
		}
	}
	for (int i = 0; i < ndiscounts; i++)
		if (best == NULL ||
		    discounts[i]->discount_bp > best->discount_bp ||
		    (discounts[i]->discount_bp == best->discount_bp &&
		     discounts[i]->id < best->id))
			best = discounts[i];
	/* The free value is what the grants took off the list price, so
	 * list = free + discount + billed holds to the nano-unit; rounding
	 * is monotonic, so neither difference can go below zero. */
	if (price_cost(p, counts, &out->list_nanos) != 0 ||
	    price_cost(p, &paid, &paid_nanos) != 0)
		return -1;
	out->free_nanos = out->list_nanos - paid_nanos;
	if (best != NULL) {
		out->discount_id = best->id;
		out->discount_bp = best->discount_bp;
		if (price_cost_bp(p, &paid, best->discount_bp,
				  &out->discount_nanos) != 0)
			return -1;
	}
	out->billed_nanos = paid_nanos - out->discount_nanos;
	return 0;
}
