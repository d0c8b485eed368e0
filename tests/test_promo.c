/*
 * test_promo.c - table tests for promotions: which requests a promotion
 * matches (window, tenant, provider, model pattern), how grants split a
 * request's tokens class by class and burn down in the order given
 * (earliest-ending first, as the ledger sorts them), which discount wins,
 * and the amounts: billed = list - free - discount, never below zero, and
 * covered + paid tokens = tokens used. Ends with a seeded random run
 * checking those invariants on many requests.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "price.h"
#include "promo.h"
#include "tap.h"

/* Per-token prices: 1000, 250, 1250 and 2000 nano-units (1, 0.25, 1.25 and
 * 2 per million tokens). */
static const struct price P = {
	.id = 1,
	.currency = "USD",
	.per_mtok = { 1000000000, 250000000, 1250000000, 2000000000 },
};

/* The cost of counts at P, per token, without rounding (P is exact). */
static int64_t
at_p(int64_t in, int64_t cached, int64_t cw, int64_t out)
{
	return in * 1000 + cached * 250 + cw * 1250 + out * 2000;
}

/* A free-token grant of n tokens, for everyone, from 0 to 10^12 us. */
static struct promotion
grant(int64_t id, int64_t n, int64_t ends_us)
{
	struct promotion p = {
		.id = id,
		.kind = PROMO_FREE_TOKENS,
		.free_tokens = n,
		.starts_us = 0,
		.ends_us = ends_us,
	};
	return p;
}

/* A discount of bp basis points. */
static struct promotion
discount(int64_t id, int bp)
{
	struct promotion p = {
		.id = id,
		.kind = PROMO_DISCOUNT,
		.discount_bp = bp,
		.starts_us = 0,
		.ends_us = 1000000000000LL,
	};
	return p;
}

/* Checks the invariants every result keeps: per class, covered (summed
 * over grants) = free, and free + paid = used; the amounts add up. */
static void
check_invariants(const char *name, const struct token_counts *t,
		 const struct promo_result *r, int64_t paid_expected[TC__COUNT])
{
	int64_t sum[TC__COUNT] = { 0 };
	int classes_ok = 1, paid_ok = 1;

	for (int g = 0; g < r->ngrants; g++)
		for (int c = 0; c < TC__COUNT; c++)
			sum[c] += r->grants[g].covered.n[c];
	for (int c = 0; c < TC__COUNT; c++) {
		if (sum[c] != r->free.n[c] || r->free.n[c] < 0 ||
		    r->free.n[c] > t->n[c])
			classes_ok = 0;
		if (paid_expected != NULL &&
		    t->n[c] - r->free.n[c] != paid_expected[c])
			paid_ok = 0;
	}
	ok(classes_ok, "%s: grants' coverage sums to free, within usage", name);
	if (paid_expected != NULL)
		ok(paid_ok, "%s: covered + paid tokens == tokens used", name);
	is_int(r->billed_nanos,
	       r->list_nanos - r->free_nanos - r->discount_nanos,
	       "%s: billed = list - free - discount", name);
	ok(r->billed_nanos >= 0, "%s: billed not negative", name);
}

/* Window edges: starts inclusive, ends exclusive; tenant, provider and
 * model pattern. */
static void
test_matches(void)
{
	static char glm4[] = "glm-4*", glm4one[] = "glm-4?";
	static char brackets[] = "deepseek-[cr]*", zhipu[] = "zhipu";
	struct promotion p = {
		.id = 1,
		.kind = PROMO_FREE_TOKENS,
		.tenant_id = 7,
		.model_pattern = glm4,
		.provider = zhipu,
		.free_tokens = 100,
		.starts_us = 1000,
		.ends_us = 2000,
	};
	struct promotion any = {
		.id = 2,
		.kind = PROMO_DISCOUNT,
		.discount_bp = 2000,
		.starts_us = 1000,
		.ends_us = 2000,
	};
	static const struct {
		int64_t ts, tenant;
		const char *provider, *model;
		int want, want_any;
		const char *name;
	} cases[] = {
		{ 999, 7, "zhipu", "glm-4", 0, 0, "1 us before starts" },
		{ 1000, 7, "zhipu", "glm-4", 1, 1, "at starts (inclusive)" },
		{ 1500, 7, "zhipu", "glm-4", 1, 1, "inside" },
		{ 1999, 7, "zhipu", "glm-4", 1, 1, "1 us before ends" },
		{ 2000, 7, "zhipu", "glm-4", 0, 0, "at ends (exclusive)" },
		{ 2001, 7, "zhipu", "glm-4", 0, 0, "after ends" },
		{ 1500, 8, "zhipu", "glm-4", 0, 1, "another tenant" },
		{ 1500, 0, "zhipu", "glm-4", 0, 1, "no tenant" },
		{ 1500, 7, "openai", "glm-4", 0, 1, "another provider" },
		{ 1500, 7, NULL, "glm-4", 0, 1, "no provider" },
		{ 1500, 7, "zhipu-cn", "glm-4", 0, 1, "provider prefix only" },
		{ 1500, 7, "zhipu", "glm-4-flash", 1, 1, "pattern glm-4*" },
		{ 1500, 7, "zhipu", "glm-4-0520", 1, 1, "pattern, snapshot" },
		{ 1500, 7, "zhipu", "glm-3-turbo", 0, 1, "pattern mismatch" },
		{ 1500, 7, "zhipu", "GLM-4", 0, 1, "pattern is case-exact" },
		{ 1500, 7, "zhipu", "chatglm-4", 0, 1, "pattern is anchored" },
		{ 1500, 7, "zhipu", NULL, 0, 1, "no model" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		is_int(promo_matches(&p, cases[i].ts, cases[i].tenant,
				     cases[i].provider, cases[i].model),
		       cases[i].want, "scoped promotion, %s", cases[i].name);
		is_int(promo_matches(&any, cases[i].ts, cases[i].tenant,
				     cases[i].provider, cases[i].model),
		       cases[i].want_any, "unscoped promotion, %s",
		       cases[i].name);
	}
	p.model_pattern = glm4one;
	is_int(promo_matches(&p, 1500, 7, "zhipu", "glm-4v"), 1,
	       "pattern ? matches one character");
	is_int(promo_matches(&p, 1500, 7, "zhipu", "glm-4"), 0,
	       "pattern ? needs a character");
	p.model_pattern = brackets;
	is_int(promo_matches(&p, 1500, 7, "zhipu", "deepseek-reasoner"), 1,
	       "pattern bracket expression");
	p.model_pattern = NULL;
	p.provider = NULL;
	is_int(promo_matches(&p, 1500, 7, NULL, NULL), 1,
	       "no pattern, no provider: any model of any provider");
}

/* No grant, no discount: everything billed at list. */
static void
test_plain(void)
{
	struct token_counts t = { { 176, 1024, 0, 85 } };
	int64_t paid[TC__COUNT] = { 176, 1024, 0, 85 };
	struct promo_result r;

	memset(&r, 0x5a, sizeof r);
	is_int(promo_apply(&P, &t, NULL, 0, NULL, 0, &r), 0, "plain: applied");
	is_int(r.list_nanos, at_p(176, 1024, 0, 85), "plain: list");
	is_int(r.free_nanos, 0, "plain: nothing free");
	is_int(r.discount_nanos, 0, "plain: no discount");
	is_int(r.discount_id, 0, "plain: no discount id");
	is_int(r.discount_bp, 0, "plain: no discount bp");
	is_int(r.ngrants, 0, "plain: no grant rows");
	is_int(r.billed_nanos, r.list_nanos, "plain: billed at list");
	check_invariants("plain", &t, &r, paid);
}

/* One grant covering part of a request: classes in order input, cached,
 * cache write, output; the split is exact per class. */
static void
test_partial(void)
{
	struct promotion g = grant(10, 1000, 5000);
	struct grant_balance b = { &g, 7, 0, 0 };
	struct grant_balance *bs[] = { &b };
	struct token_counts t = { { 600, 300, 50, 200 } };
	int64_t paid[TC__COUNT] = { 0, 0, 0, 150 };
	struct promo_result r;

	is_int(promo_apply(&P, &t, bs, 1, NULL, 0, &r), 0, "partial: applied");
	is_int(r.ngrants, 1, "partial: one grant row");
	is_int(r.grants[0].promotion_id, 10, "partial: grant id");
	is_int(r.grants[0].covered.n[TC_INPUT], 600, "partial: input covered");
	is_int(r.grants[0].covered.n[TC_CACHED], 300,
	       "partial: cached covered");
	is_int(r.grants[0].covered.n[TC_CACHE_WRITE], 50,
	       "partial: cache write covered");
	is_int(r.grants[0].covered.n[TC_OUTPUT], 50,
	       "partial: output covered up to the grant");
	is_int(b.used, 1000, "partial: grant used up");
	is_int(b.used_before, 0, "partial: used_before untouched");
	is_int(r.list_nanos, at_p(600, 300, 50, 200), "partial: list");
	is_int(r.free_nanos, at_p(600, 300, 50, 50), "partial: free value");
	is_int(r.billed_nanos, at_p(0, 0, 0, 150), "partial: billed");
	check_invariants("partial", &t, &r, paid);
}

/* A grant that runs out in the middle of a request. */
static void
test_runs_out(void)
{
	struct promotion g = grant(11, 1000, 5000);
	struct grant_balance b = { &g, 7, 700, 700 };
	struct grant_balance *bs[] = { &b };
	struct token_counts t = { { 200, 0, 0, 500 } };
	int64_t paid[TC__COUNT] = { 0, 0, 0, 400 };
	struct promo_result r;

	is_int(promo_apply(&P, &t, bs, 1, NULL, 0, &r), 0, "runs out: applied");
	is_int(r.free.n[TC_INPUT], 200, "runs out: input all free");
	is_int(r.free.n[TC_OUTPUT], 100, "runs out: 100 output free");
	is_int(b.used, 1000, "runs out: balance at its limit");
	is_int(r.free_nanos, at_p(200, 0, 0, 100), "runs out: free value");
	is_int(r.billed_nanos, at_p(0, 0, 0, 400), "runs out: billed");
	check_invariants("runs out", &t, &r, paid);

	/* The next request finds nothing left. */
	is_int(promo_apply(&P, &t, bs, 1, NULL, 0, &r), 0,
	       "after running out: applied");
	is_int(r.ngrants, 0, "after running out: no grant row");
	is_int(r.free_nanos, 0, "after running out: nothing free");
	is_int(b.used, 1000, "after running out: balance unchanged");
	is_int(r.billed_nanos, r.list_nanos, "after running out: all billed");
}

/* Two grants: the first given (earliest-ending) is consumed first, then
 * the next; an exhausted grant is skipped without a row. */
static void
test_two_grants(void)
{
	struct promotion early = grant(21, 100, 3000);
	struct promotion late = grant(20, 1000, 9000);
	struct promotion spent = grant(19, 50, 1000);
	struct grant_balance be = { &early, 7, 0, 0 };
	struct grant_balance bl = { &late, 7, 0, 0 };
	struct grant_balance bs_ = { &spent, 7, 50, 50 };
	struct grant_balance *bs[] = { &bs_, &be, &bl };
	struct token_counts t = { { 150, 0, 0, 100 } };
	int64_t paid[TC__COUNT] = { 0, 0, 0, 0 };
	struct promo_result r;

	is_int(promo_apply(&P, &t, bs, 3, NULL, 0, &r), 0,
	       "two grants: applied");
	is_int(r.ngrants, 2, "two grants: two rows (the spent one has none)");
	is_int(r.grants[0].promotion_id, 21, "two grants: earliest first");
	is_int(r.grants[0].covered.n[TC_INPUT], 100,
	       "two grants: earliest covers 100 input");
	is_int(r.grants[0].covered.n[TC_OUTPUT], 0,
	       "two grants: earliest covers no output");
	is_int(r.grants[1].promotion_id, 20, "two grants: then the next");
	is_int(r.grants[1].covered.n[TC_INPUT], 50,
	       "two grants: next covers the other 50 input");
	is_int(r.grants[1].covered.n[TC_OUTPUT], 100,
	       "two grants: next covers the output");
	is_int(be.used, 100, "two grants: earliest used up");
	is_int(bl.used, 150, "two grants: next used 150");
	is_int(bs_.used, 50, "two grants: spent grant untouched");
	is_int(r.billed_nanos, 0, "two grants: nothing billed");
	is_int(r.free_nanos, r.list_nanos, "two grants: all free");
	check_invariants("two grants", &t, &r, paid);

	/* A balance past its grant (never written so, but read so) is
	 * worth nothing. */
	bs_.used = 80;
	be.used = 0;
	bl.used = 0;
	is_int(promo_apply(&P, &t, bs, 1, NULL, 0, &r), 0,
	       "overdrawn grant: applied");
	is_int(r.ngrants, 0, "overdrawn grant: no row");
	is_int(bs_.used, 80, "overdrawn grant: untouched");
	is_int(r.billed_nanos, r.list_nanos, "overdrawn grant: all billed");
}

/* Competing discounts: the largest wins; ties go to the lower id; the
 * discount takes its share of the paid remainder only. */
static void
test_discounts(void)
{
	struct promotion d10 = discount(31, 1000);
	struct promotion d25 = discount(32, 2500);
	struct promotion d15 = discount(33, 1500);
	struct promotion tie9 = discount(9, 2000);
	struct promotion tie4 = discount(4, 2000);
	const struct promotion *three[] = { &d10, &d25, &d15 };
	const struct promotion *ties[] = { &tie9, &tie4 };
	struct token_counts t = { { 176, 1024, 0, 85 } };
	int64_t list = at_p(176, 1024, 0, 85);
	struct promo_result r;

	is_int(promo_apply(&P, &t, NULL, 0, three, 3, &r), 0,
	       "discounts: applied");
	is_int(r.discount_id, 32, "discounts: the largest wins");
	is_int(r.discount_bp, 2500, "discounts: its basis points");
	is_int(r.discount_nanos, list / 4, "discounts: 25%% of list");
	is_int(r.billed_nanos, list - list / 4, "discounts: billed 75%%");
	check_invariants("discounts", &t, &r, NULL);

	is_int(promo_apply(&P, &t, NULL, 0, ties, 2, &r), 0, "tie: applied");
	is_int(r.discount_id, 4, "tie: the lower id wins");
	is_int(r.discount_nanos, list / 5, "tie: 20%% of list");

	ties[0] = &tie4;
	ties[1] = &tie9;
	is_int(promo_apply(&P, &t, NULL, 0, ties, 2, &r), 0,
	       "tie, other order: applied");
	is_int(r.discount_id, 4, "tie, other order: the lower id wins");
}

/* A grant and a discount together: the discount applies only to what the
 * grant left to pay. */
static void
test_free_and_discount(void)
{
	struct promotion g = grant(40, 500, 5000);
	struct grant_balance b = { &g, 7, 0, 0 };
	struct grant_balance *bs[] = { &b };
	struct promotion d = discount(41, 2000);
	const struct promotion *ds[] = { &d };
	struct token_counts t = { { 400, 0, 0, 300 } };
	int64_t paid[TC__COUNT] = { 0, 0, 0, 200 };
	struct promo_result r;

	is_int(promo_apply(&P, &t, bs, 1, ds, 1, &r), 0,
	       "free + discount: applied");
	is_int(r.free.n[TC_INPUT], 400, "free + discount: input free");
	is_int(r.free.n[TC_OUTPUT], 100, "free + discount: 100 output free");
	is_int(r.list_nanos, at_p(400, 0, 0, 300), "free + discount: list");
	is_int(r.free_nanos, at_p(400, 0, 0, 100), "free + discount: free");
	is_int(r.discount_nanos, at_p(0, 0, 0, 200) / 5,
	       "free + discount: 20%% of the paid 200 output only");
	is_int(r.billed_nanos, at_p(0, 0, 0, 200) * 4 / 5,
	       "free + discount: billed 80%% of the remainder");
	is_int(r.discount_id, 41, "free + discount: discount id");
	check_invariants("free + discount", &t, &r, paid);

	/* Fully covered: the discount takes nothing, but is recorded. */
	b.used = 0;
	t.n[TC_OUTPUT] = 100;
	is_int(promo_apply(&P, &t, bs, 1, ds, 1, &r), 0,
	       "covered + discount: applied");
	is_int(r.discount_nanos, 0, "covered + discount: nothing to discount");
	is_int(r.billed_nanos, 0, "covered + discount: nothing billed");
	is_int(r.discount_id, 41, "covered + discount: discount still named");

	/* A 100% discount leaves nothing to pay. */
	d.discount_bp = 10000;
	b.used = 500;
	t.n[TC_OUTPUT] = 300;
	is_int(promo_apply(&P, &t, bs, 1, ds, 1, &r), 0,
	       "100%% discount: applied");
	is_int(r.billed_nanos, 0, "100%% discount: nothing billed");
	is_int(r.discount_nanos, r.list_nanos, "100%% discount: all of it");
}

/* The list price of all tokens and of the paid ones are rounded once
 * each; the free value is their difference, so list = free + discount +
 * billed to the nano-unit and nothing goes below zero. */
static void
test_never_negative(void)
{
	/* 0.1 nano-unit a token. */
	struct price tiny = { .id = 2,
			      .currency = "CNY",
			      .per_mtok = { 100000, 100000, 100000, 100000 } };
	struct promotion g = grant(50, 5, 5000);
	struct grant_balance b = { &g, 7, 0, 0 };
	struct grant_balance *bs[] = { &b };
	struct promotion d = discount(51, 10000);
	const struct promotion *ds[] = { &d };
	struct token_counts t = { { 5, 0, 0, 5 } };
	struct promo_result r;

	/* 5 free input and 5 paid output: list 1.0 -> 1, paid 0.5 -> 1. */
	is_int(promo_apply(&tiny, &t, bs, 1, ds, 1, &r), 0,
	       "rounding: applied");
	is_int(r.list_nanos, 1, "rounding: list 1.0 -> 1");
	is_int(r.free_nanos, 0, "rounding: free = list - paid 1 = 0");
	is_int(r.discount_nanos, 1, "rounding: discount 0.5 -> 1");
	is_int(r.billed_nanos, 0, "rounding: billed 1 - 1 = 0");
	is_int(r.free_nanos + r.discount_nanos + r.billed_nanos, r.list_nanos,
	       "rounding: the parts add up to the list");

	/* 4 free and 4 paid input: list 0.8 -> 1, paid 0.4 -> 0. */
	b.used = 1;
	t.n[TC_INPUT] = 8;
	t.n[TC_OUTPUT] = 0;
	d.discount_bp = 5000;
	is_int(promo_apply(&tiny, &t, bs, 1, ds, 1, &r), 0,
	       "rounding 2: applied");
	is_int(r.free.n[TC_INPUT], 4, "rounding 2: four free");
	is_int(r.list_nanos, 1, "rounding 2: list 0.8 -> 1");
	is_int(r.free_nanos, 1, "rounding 2: free = list - paid 0 = 1");
	is_int(r.discount_nanos, 0, "rounding 2: discount 0.2 -> 0");
	is_int(r.billed_nanos, 0, "rounding 2: billed 0");
	is_int(r.free_nanos + r.discount_nanos + r.billed_nanos, r.list_nanos,
	       "rounding 2: the parts add up to the list");
}

/* More grants than a result can name: the first PROMO_MAX_GRANTS are
 * consumed, the rest left whole, the tokens still add up. */
static void
test_many_grants(void)
{
	enum { N = PROMO_MAX_GRANTS + 4 };
	struct promotion g[N];
	struct grant_balance b[N];
	struct grant_balance *bs[N];
	struct token_counts t = { { 30, 0, 0, 0 } };
	int64_t paid[TC__COUNT] = { 30 - PROMO_MAX_GRANTS, 0, 0, 0 };
	struct promo_result r;
	int64_t used = 0;

	for (int i = 0; i < N; i++) {
		g[i] = grant(100 + i, 1, 1000 + i);
		b[i] = (struct grant_balance){ &g[i], 7, 0, 0 };
		bs[i] = &b[i];
	}
	is_int(promo_apply(&P, &t, bs, N, NULL, 0, &r), 0,
	       "many grants: applied");
	is_int(r.ngrants, PROMO_MAX_GRANTS, "many grants: rows capped");
	for (int i = 0; i < N; i++)
		used += b[i].used;
	is_int(used, PROMO_MAX_GRANTS, "many grants: only named ones used");
	is_int(b[N - 1].used, 0, "many grants: the last left whole");
	check_invariants("many grants", &t, &r, paid);
}

/* Zero tokens: no grant row, nothing consumed; overflow is reported. */
static void
test_edges(void)
{
	struct promotion g = grant(60, 100, 5000);
	struct grant_balance b = { &g, 7, 0, 0 };
	struct grant_balance *bs[] = { &b };
	struct token_counts zero = { { 0, 0, 0, 0 } };
	struct token_counts huge = { { (int64_t)1 << 62, 0, 0, 0 } };
	struct price max = { .id = 3,
			     .currency = "USD",
			     .per_mtok = { PRICE_MAX, PRICE_MAX, PRICE_MAX,
					   PRICE_MAX } };
	struct promo_result r;

	is_int(promo_apply(&P, &zero, bs, 1, NULL, 0, &r), 0, "zero: applied");
	is_int(r.ngrants, 0, "zero: no grant row");
	is_int(b.used, 0, "zero: nothing consumed");
	is_int(r.list_nanos + r.billed_nanos, 0, "zero: nothing priced");
	is_int(promo_apply(&max, &huge, bs, 1, NULL, 0, &r), -1,
	       "2^62 tokens at the largest price: overflow reported");
}

/* A small deterministic generator, so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* The next pseudo-random number below n. */
static int64_t
rnd(int64_t n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (int64_t)((rng_state >> 33) % (uint64_t)n);
}

/* Many random requests against a few grants and discounts: balances
 * never exceed their grant, coverage adds up, billed is list - free -
 * discount whenever that is not negative, and is never negative. */
static void
test_random(void)
{
	enum { NG = 3, ND = 3, RUNS = 2000 };
	struct promotion g[NG], d[ND];
	struct grant_balance b[NG];
	struct grant_balance *bs[NG];
	const struct promotion *ds[ND];
	struct price p = { .id = 4, .currency = "CNY" };
	int64_t covered_total = 0, used_total = 0, tokens_total = 0;
	int64_t paid_total = 0;
	int bad_bal = 0, bad_sum = 0, bad_billed = 0, bad_disc = 0;

	for (int i = 0; i < NG; i++) {
		g[i] = grant(200 + i, 5000 + 3000 * i, 1000 + i);
		b[i] = (struct grant_balance){ &g[i], 7, 0, 0 };
		bs[i] = &b[i];
	}
	for (int i = 0; i < ND; i++) {
		d[i] = discount(300 + i, (int)(1 + rnd(10000)));
		ds[i] = &d[i];
	}
	for (int run = 0; run < RUNS; run++) {
		struct token_counts t;
		struct promo_result r;
		int64_t want, best = 0;
		int nd = (int)rnd(ND + 1);

		for (int c = 0; c < TC__COUNT; c++) {
			t.n[c] = rnd(4) == 0 ? 0 : rnd(200);
			p.per_mtok[c] = rnd(3) == 0 ? rnd(1000000)
						    : rnd(20 * PRICE_NANOS);
		}
		if (promo_apply(&p, &t, bs, NG, ds, nd, &r) != 0) {
			bad_sum++;
			continue;
		}
		for (int c = 0; c < TC__COUNT; c++) {
			int64_t s = 0;
			for (int k = 0; k < r.ngrants; k++)
				s += r.grants[k].covered.n[c];
			if (s != r.free.n[c])
				bad_sum++;
			covered_total += r.free.n[c];
			paid_total += t.n[c] - r.free.n[c];
			tokens_total += t.n[c];
		}
		want = r.list_nanos - r.free_nanos - r.discount_nanos;
		if (r.billed_nanos < 0 ||
		    r.billed_nanos != (want < 0 ? 0 : want) || want < -1)
			bad_billed++;
		for (int k = 0; k < nd; k++)
			if (ds[k]->discount_bp > best)
				best = ds[k]->discount_bp;
		if (r.discount_bp != best ||
		    (best == 0) != (r.discount_id == 0))
			bad_disc++;
		for (int i = 0; i < NG; i++)
			if (b[i].used < 0 || b[i].used > g[i].free_tokens)
				bad_bal++;
	}
	for (int i = 0; i < NG; i++)
		used_total += b[i].used;
	is_int(bad_bal, 0, "random: balances within their grants");
	is_int(bad_sum, 0, "random: grants' coverage sums to free per class");
	is_int(bad_billed, 0,
	       "random: billed = max(0, list - free - "
	       "discount), off by at most one rounding");
	is_int(bad_disc, 0, "random: the largest discount applied");
	is_int(covered_total, used_total,
	       "random: tokens covered == grant balance used");
	is_int(covered_total + paid_total, tokens_total,
	       "random: covered + paid tokens == tokens used");
	diag("random: %lld tokens, %lld covered by grants, %lld paid",
	     (long long)tokens_total, (long long)covered_total,
	     (long long)paid_total);
}

int
main(void)
{
	test_matches();
	test_plain();
	test_partial();
	test_runs_out();
	test_two_grants();
	test_discounts();
	test_free_and_discount();
	test_never_negative();
	test_many_grants();
	test_edges();
	test_random();
	return done_testing();
}
