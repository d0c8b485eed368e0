/*
 * ledger.c - one batch of usage records into PostgreSQL, priced.
 *
 * Principle: a record's cost is decided once, by the transaction that
 * first inserts it. The batch is priced, then inserted with its costs and
 * ON CONFLICT DO NOTHING; when the insert RETURNs fewer rows than it was
 * given, some were there already (a batch replayed after a lost
 * acknowledgement), and the transaction is rolled back and run again
 * without them. So a replay changes nothing and no grant is consumed
 * twice, and a row is written once, not inserted and then updated.
 * Grant balances are locked (SELECT ... FOR UPDATE, always in key order so
 * writers on several gateways cannot deadlock) before any is read for
 * consumption; requests consume them in time order, earliest-ending grant
 * first, and the new balances are written in the same transaction. Every
 * amount is computed by price.c and promo.c in integer nano-units.
 *
 * The insert also brings usage_daily and api_key_last_used up to date,
 * in the same transaction: the statement trigger of sql/011_console.sql
 * sums the rows it inserted (never those ON CONFLICT skipped), so the
 * roll-up follows the ledger through every retry and replay here.
 *
 * ingested_at is the clock when the insert ran, not when its transaction
 * began: `tollctl bill close` holds a SHARE lock on usage_records while it
 * takes closed_at, so an insert that waited for it is stamped after the
 * close and billed as a late adjustment rather than lost between the two.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ledger.h"
#include "price.h"
#include "promo.h"
#include "sqlarr.h"

/* Frees the array literals. */
static void
arrs_free(struct sqlarr *a, int n)
{
	for (int i = 0; i < n; i++)
		sqlarr_free(&a[i]);
}

/* Formats a cause. */
static char *
fail_msg(const char *what, PGconn *conn, PGresult *res)
{
	const char *err =
		res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(conn);
	const char *state =
		res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	size_t n = strlen(what) + strlen(err) + 32;
	char *s = malloc(n);
	size_t len;

	if (s != NULL) {
		snprintf(s, n, "%s: %s", what, err);
		/* libpq messages end in a newline. */
		len = strlen(s);
		while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
			s[--len] = '\0';
		/* The writer tells bad records from a database away by it. */
		if (state != NULL)
			snprintf(s + len, n - len, " [SQLSTATE %s]", state);
	}
	return s;
}

/* Runs a statement expecting status ok; on failure sets *cause. */
static PGresult *
exec(PGconn *conn, const char *what, const char *sql, int nparams,
     const char *const *params, ExecStatusType ok, char **cause)
{
	PGresult *res =
		PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != ok) {
		*cause = fail_msg(what, conn, res);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Runs a statement for its side effect. 0 or -1. */
static int
run(PGconn *conn, const char *what, const char *sql, int nparams,
    const char *const *params, char **cause)
{
	PGresult *res =
		exec(conn, what, sql, nparams, params, PGRES_COMMAND_OK, cause);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* Creates the month partitions the batch needs. 0 or -1. */
static int
ensure_partitions(PGconn *conn, struct usage_record **recs, int n, char **cause)
{
	int months[64], nmonths = 0;

	for (int i = 0; i < n; i++) {
		int64_t secs = recs[i]->ts_us / 1000000;
		int y, mo, d, m, seen = 0;
		char ts[CLOCK_TEXT_MAX];
		const char *params[1] = { ts };
		PGresult *res;

		clock_civil_from_days((secs - (secs % 86400 + 86400) % 86400) /
					      86400,
				      &y, &mo, &d);
		m = y * 100 + mo;
		for (int k = 0; k < nmonths && !seen; k++)
			seen = months[k] == m;
		if (seen)
			continue;
		if (nmonths < 64)
			months[nmonths++] = m;
		clock_format(recs[i]->ts_us, CLOCK_SQL, ts);
		res = exec(conn, "usage partition",
			   "SELECT tollgate_usage_partition($1)", 1, params,
			   PGRES_TUPLES_OK, cause);
		if (res == NULL)
			return -1;
		PQclear(res);
	}
	return 0;
}

/* Orders records by their key, (request id, time), for lookups of the
 * rows an insert returns. */
static int
by_key(const void *a, const void *b)
{
	const struct usage_record *x = *(struct usage_record *const *)a;
	const struct usage_record *y = *(struct usage_record *const *)b;
	int c = strcmp(x->request_id, y->request_id);

	if (c != 0)
		return c;
	return x->ts_us < y->ts_us ? -1 : x->ts_us > y->ts_us;
}

/* Orders records by time, then id: the order grants are consumed in. */
static int
by_time(const void *a, const void *b)
{
	const struct usage_record *x = *(struct usage_record *const *)a;
	const struct usage_record *y = *(struct usage_record *const *)b;

	if (x->ts_us != y->ts_us)
		return x->ts_us < y->ts_us ? -1 : 1;
	return strcmp(x->request_id, y->request_id);
}

/* The cost columns a record is inserted with when it was not priced:
 * the columns' defaults. */
static const struct promo_result no_cost;

/* The insert of a batch's records: unnested from one array per column,
 * costs converted to the tenant's currency with the month's rate. */
#define INSERT_RECORDS                                                         \
	"INSERT INTO usage_records (request_id, ts, tenant_id, "               \
	"key_id, endpoint, requested_model, provider, upstream_model, "        \
	"streamed, status, prompt_tokens, completion_tokens, "                 \
	"cached_tokens, cache_write_tokens, reasoning_tokens, "                \
	"usage_source, client_aborted, latency_ms, ttfb_ms, error, "           \
	"refusal, failed_attempts, price_id, currency, unpriced, "             \
	"free_input_tokens, free_cached_tokens, "                              \
	"free_cache_write_tokens, free_output_tokens, discount_id, "           \
	"discount_bp, list_nanos, free_nanos, discount_nanos, "                \
	"billed_nanos, fx_rate, billed_tenant_nanos, ingested_at) "            \
	"SELECT v.*, "                                                         \
	"CASE WHEN v.currency = t.currency THEN NULL ELSE fx.rate END, "       \
	"CASE WHEN v.currency IS NULL THEN NULL "                              \
	"WHEN v.currency = t.currency THEN v.bn "                              \
	"ELSE round(v.bn * fx.rate)::bigint END, clock_timestamp() "           \
	"FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], "            \
	"$4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], "       \
	"$9::boolean[], $10::integer[], $11::bigint[], $12::bigint[], "        \
	"$13::bigint[], $14::bigint[], $15::bigint[], $16::text[], "           \
	"$17::boolean[], $18::integer[], $19::integer[], $20::text[], "        \
	"$21::text[], $22::integer[], $23::bigint[], $24::text[], "            \
	"$25::boolean[], $26::bigint[], $27::bigint[], $28::bigint[], "        \
	"$29::bigint[], $30::bigint[], $31::integer[], $32::bigint[], "        \
	"$33::bigint[], $34::bigint[], $35::bigint[]) AS v(rid, ts, "          \
	"tid, kid, endpoint, rmodel, provider, umodel, streamed, "             \
	"status, pt, ct, kt, wt, rt, source, aborted, latency, ttfb, "         \
	"error, refusal, failed, price_id, currency, unpriced, fi, fc, "       \
	"fw, fo, did, dbp, ln, fn, dn, bn) "                                   \
	"LEFT JOIN tenants t ON t.id = v.tid "                                 \
	"LEFT JOIN fx_rates fx ON fx.base = v.currency "                       \
	"AND fx.quote = t.currency AND fx.month = "                            \
	"date_trunc('month', v.ts AT TIME ZONE t.tz)::date "

/* Inserts the batch's candidates (inserted set) with their costs, the
 * price's currency converted to the tenant's with the month's rate.
 * Assumed new (fresh), they go in with a plain INSERT, and -2 says one
 * was there already (the transaction is then aborted); else the insert
 * skips those there and clears their inserted. Returns how many it added,
 * -2, or -1. */
static int
insert_records(PGconn *conn, struct usage_record **recs, int n, int fresh,
	       char **cause)
{
	enum { NC = 35 };
	static const char sql_fresh[] = INSERT_RECORDS;
	static const char sql[] =
		INSERT_RECORDS "ON CONFLICT DO NOTHING RETURNING request_id, "
			       "(extract(epoch FROM ts) * 1000000)::bigint";
	struct sqlarr a[NC];
	const char *params[NC];
	PGresult *res;
	int added = -1;

	memset(a, 0, sizeof a);
	for (int i = 0; i < n; i++) {
		struct usage_record *r = recs[i];
		const struct promo_result *cost =
			r->cost != NULL && r->price_id ? r->cost : &no_cost;
		char ts[48];

		if (!r->inserted)
			continue;
		clock_format(r->ts_us, CLOCK_SQL, ts);
		sqlarr_text(&a[0], r->request_id);
		sqlarr_text(&a[1], ts);
		if (r->tenant_id)
			sqlarr_int(&a[2], r->tenant_id);
		else
			sqlarr_raw(&a[2], NULL);
		if (r->key_id)
			sqlarr_int(&a[3], r->key_id);
		else
			sqlarr_raw(&a[3], NULL);
		sqlarr_text(&a[4], r->endpoint);
		sqlarr_text(&a[5], r->requested_model);
		sqlarr_text(&a[6], r->provider);
		sqlarr_text(&a[7], r->upstream_model);
		sqlarr_raw(&a[8], r->streamed ? "t" : "f");
		sqlarr_int(&a[9], r->status);
		sqlarr_int(&a[10], r->usage.prompt);
		sqlarr_int(&a[11], r->usage.completion);
		sqlarr_int(&a[12], r->usage.cached);
		sqlarr_int(&a[13], r->usage.cache_write);
		sqlarr_int(&a[14], r->usage.reasoning);
		sqlarr_text(&a[15], meter_source_name(r->source));
		sqlarr_raw(&a[16], r->client_aborted ? "t" : "f");
		sqlarr_int(&a[17], r->latency_ms);
		if (r->ttfb_ms >= 0)
			sqlarr_int(&a[18], r->ttfb_ms);
		else
			sqlarr_raw(&a[18], NULL);
		sqlarr_text(&a[19], r->error);
		sqlarr_text(&a[20], r->refusal[0] != '\0' ? r->refusal : NULL);
		sqlarr_int(&a[21], r->failed_attempts);
		if (r->price_id)
			sqlarr_int(&a[22], r->price_id);
		else
			sqlarr_raw(&a[22], NULL);
		sqlarr_text(&a[23], r->price_id ? r->currency : NULL);
		sqlarr_raw(&a[24], r->unpriced ? "t" : "f");
		for (int c = 0; c < TC__COUNT; c++)
			sqlarr_int(&a[25 + c], cost->free.n[c]);
		if (cost->discount_id)
			sqlarr_int(&a[29], cost->discount_id);
		else
			sqlarr_raw(&a[29], NULL);
		sqlarr_int(&a[30], cost->discount_bp);
		sqlarr_int(&a[31], cost->list_nanos);
		sqlarr_int(&a[32], cost->free_nanos);
		sqlarr_int(&a[33], cost->discount_nanos);
		sqlarr_int(&a[34], cost->billed_nanos);
	}
	if (sqlarr_params(a, NC, params) < 0) {
		*cause = strdup("out of memory");
		goto out;
	}
	if (fresh) {
		const char *state;
		res = PQexecParams(conn, sql_fresh, NC, NULL, params, NULL,
				   NULL, 0);
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			added = atoi(PQcmdTuples(res));
		else if (state != NULL && strcmp(state, "23505") == 0)
			added = -2; /* unique_violation: one is there */
		else
			*cause = fail_msg("usage insert", conn, res);
		PQclear(res);
		goto out;
	}
	res = exec(conn, "usage insert", sql, NC, params, PGRES_TUPLES_OK,
		   cause);
	if (res == NULL)
		goto out;
	qsort(recs, (size_t)n, sizeof *recs, by_key);
	for (int i = 0; i < n; i++)
		recs[i]->inserted = -recs[i]->inserted;
	added = PQntuples(res);
	for (int i = 0; i < added; i++) {
		struct usage_record probe, *pp = &probe, **hit;
		snprintf(probe.request_id, sizeof probe.request_id, "%s",
			 PQgetvalue(res, i, 0));
		probe.ts_us = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		hit = bsearch(&pp, recs, (size_t)n, sizeof *recs, by_key);
		if (hit != NULL)
			(*hit)->inserted = 1;
	}
	for (int i = 0; i < n; i++)
		if (recs[i]->inserted < 0)
			recs[i]->inserted = 0;
	PQclear(res);
out:
	arrs_free(a, NC);
	return added;
}

/* Everything loaded to price one batch. */
struct pricing {
	struct price *prices;
	int64_t *price_from;   /* effective_from, microseconds */
	int64_t *price_tenant; /* 0 = list price */
	char (*price_provider)[128];
	char (*price_model)[128];
	int nprices;
	struct promotion *promos;
	int npromos;
	int64_t *tenant_ids;
	char (*tenant_currency)[4];
	int ntenants;
	struct grant_balance *balances;
	int nbalances;
};

/* Frees what load_pricing() took. */
static void
pricing_free(struct pricing *pr)
{
	for (int i = 0; i < pr->npromos; i++) {
		free(pr->promos[i].model_pattern);
		free(pr->promos[i].provider);
	}
	free(pr->prices);
	free(pr->price_from);
	free(pr->price_tenant);
	free(pr->price_provider);
	free(pr->price_model);
	free(pr->promos);
	free(pr->tenant_ids);
	free(pr->tenant_currency);
	free(pr->balances);
}

/* Whether a record has anything to price. */
static int
priceable(const struct usage_record *r)
{
	return r->inserted && r->tenant_id != 0 && r->provider != NULL &&
	       r->upstream_model != NULL &&
	       (r->usage.prompt > 0 || r->usage.completion > 0);
}

/* Reads the currencies of the batch's tenants ($1 their ids). 0 or -1. */
static int
load_tenants(PGconn *conn, const char *ids, struct pricing *pr, char **cause)
{
	const char *params[1] = { ids };
	PGresult *res = exec(conn, "tenants",
			     "SELECT id, currency FROM tenants "
			     "WHERE id = ANY($1::bigint[])",
			     1, params, PGRES_TUPLES_OK, cause);

	if (res == NULL)
		return -1;
	pr->ntenants = PQntuples(res);
	pr->tenant_ids =
		calloc((size_t)pr->ntenants + 1, sizeof *pr->tenant_ids);
	pr->tenant_currency =
		calloc((size_t)pr->ntenants + 1, sizeof *pr->tenant_currency);
	if (pr->tenant_ids == NULL || pr->tenant_currency == NULL) {
		PQclear(res);
		*cause = strdup("out of memory");
		return -1;
	}
	for (int i = 0; i < pr->ntenants; i++) {
		pr->tenant_ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		snprintf(pr->tenant_currency[i], 4, "%s",
			 PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return 0;
}

/* Reads one price row of res into pr's row i. 0, or -1 with *cause. */
static int
read_price(const PGresult *res, int i, struct pricing *pr, char **cause)
{
	struct price *p = &pr->prices[i];
	const char *why = NULL;

	p->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	snprintf(pr->price_provider[i], 128, "%s", PQgetvalue(res, i, 1));
	snprintf(pr->price_model[i], 128, "%s", PQgetvalue(res, i, 2));
	pr->price_tenant[i] = strtoll(PQgetvalue(res, i, 3), NULL, 10);
	snprintf(p->currency, sizeof p->currency, "%s", PQgetvalue(res, i, 4));
	for (int c = 0; c < TC__COUNT; c++) {
		if (price_parse(PQgetvalue(res, i, 5 + c), &p->per_mtok[c],
				&why) != 0) {
			char msg[256];
			snprintf(msg, sizeof msg, "price %lld: %s",
				 (long long)p->id, why);
			*cause = strdup(msg);
			return -1;
		}
	}
	pr->price_from[i] = strtoll(PQgetvalue(res, i, 9), NULL, 10);
	return 0;
}

/* Reads the price rows of the batch's providers ($1), models ($2) and
 * tenants ($3): list prices and contract prices. 0 or -1. */
static int
load_prices(PGconn *conn, const char *const *params, struct pricing *pr,
	    char **cause)
{
	PGresult *res =
		exec(conn, "prices",
		     "SELECT id, provider, model, "
		     "coalesce(tenant_id, 0), currency, input::text, "
		     "coalesce(cached_input, input)::text, "
		     "coalesce(cache_write, input)::text, "
		     "output::text, (extract(epoch FROM effective_from) "
		     "* 1000000)::bigint FROM prices "
		     "WHERE provider = ANY($1::text[]) "
		     "AND model = ANY($2::text[]) AND (tenant_id IS NULL OR "
		     "tenant_id = ANY($3::bigint[]))",
		     3, params, PGRES_TUPLES_OK, cause);
	size_t n;
	int rc = 0;

	if (res == NULL)
		return -1;
	pr->nprices = PQntuples(res);
	n = (size_t)pr->nprices + 1;
	pr->prices = calloc(n, sizeof *pr->prices);
	pr->price_from = calloc(n, sizeof *pr->price_from);
	pr->price_tenant = calloc(n, sizeof *pr->price_tenant);
	pr->price_provider = calloc(n, sizeof *pr->price_provider);
	pr->price_model = calloc(n, sizeof *pr->price_model);
	if (pr->prices == NULL || pr->price_from == NULL ||
	    pr->price_tenant == NULL || pr->price_provider == NULL ||
	    pr->price_model == NULL) {
		*cause = strdup("out of memory");
		rc = -1;
	}
	for (int i = 0; rc == 0 && i < pr->nprices; i++)
		rc = read_price(res, i, pr, cause);
	PQclear(res);
	return rc;
}

/* Reads the promotions in force between the batch's first and last
 * record ($1, $2) for its tenants ($3) or all. 0 or -1. */
static int
load_promotions(PGconn *conn, const char *const *params, struct pricing *pr,
		char **cause)
{
	PGresult *res =
		exec(conn, "promotions",
		     "SELECT id, kind, coalesce(tenant_id, 0), "
		     "model_pattern, provider, coalesce(free_tokens, 0), "
		     "coalesce(discount_bp, 0), "
		     "(extract(epoch FROM starts) * 1000000)::bigint, "
		     "(extract(epoch FROM least(ends, coalesce(ended_at, "
		     "ends))) * 1000000)::bigint FROM promotions "
		     "WHERE starts <= $2 AND least(ends, "
		     "coalesce(ended_at, ends)) > $1 AND (tenant_id IS NULL OR "
		     "tenant_id = ANY($3::bigint[])) ORDER BY id",
		     3, params, PGRES_TUPLES_OK, cause);

	if (res == NULL)
		return -1;
	pr->npromos = PQntuples(res);
	pr->promos = calloc((size_t)pr->npromos + 1, sizeof *pr->promos);
	if (pr->promos == NULL) {
		PQclear(res);
		*cause = strdup("out of memory");
		return -1;
	}
	for (int i = 0; i < pr->npromos; i++) {
		struct promotion *p = &pr->promos[i];
		p->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		p->kind = strcmp(PQgetvalue(res, i, 1), "discount") == 0
				  ? PROMO_DISCOUNT
				  : PROMO_FREE_TOKENS;
		p->tenant_id = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		p->model_pattern = PQgetisnull(res, i, 3)
					   ? NULL
					   : strdup(PQgetvalue(res, i, 3));
		p->provider = PQgetisnull(res, i, 4)
				      ? NULL
				      : strdup(PQgetvalue(res, i, 4));
		p->free_tokens = strtoll(PQgetvalue(res, i, 5), NULL, 10);
		p->discount_bp = atoi(PQgetvalue(res, i, 6));
		p->starts_us = strtoll(PQgetvalue(res, i, 7), NULL, 10);
		p->ends_us = strtoll(PQgetvalue(res, i, 8), NULL, 10);
	}
	PQclear(res);
	return 0;
}

/* Loads tenants' currencies, candidate prices and promotions. 0 or -1. */
static int
load_pricing(PGconn *conn, struct usage_record **recs, int n,
	     struct pricing *pr, char **cause)
{
	struct sqlarr a[3];
	const char *ids, *prices[3], *promos[3];
	int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;
	char tmin[CLOCK_TEXT_MAX], tmax[CLOCK_TEXT_MAX];
	int rc = -1;

	memset(a, 0, sizeof a);
	for (int i = 0; i < n; i++) {
		if (!priceable(recs[i]))
			continue;
		sqlarr_int(&a[0], recs[i]->tenant_id);
		sqlarr_text(&a[1], recs[i]->provider);
		sqlarr_text(&a[2], recs[i]->upstream_model);
		if (recs[i]->ts_us < min_ts)
			min_ts = recs[i]->ts_us;
		if (recs[i]->ts_us > max_ts)
			max_ts = recs[i]->ts_us;
	}
	ids = sqlarr_end(&a[0]);
	prices[0] = sqlarr_end(&a[1]);
	prices[1] = sqlarr_end(&a[2]);
	prices[2] = ids;
	clock_format(min_ts == INT64_MAX ? 0 : min_ts, CLOCK_SQL, tmin);
	clock_format(max_ts == INT64_MIN ? 0 : max_ts, CLOCK_SQL, tmax);
	promos[0] = tmin;
	promos[1] = tmax;
	promos[2] = ids;
	if (ids == NULL || prices[0] == NULL || prices[1] == NULL)
		*cause = strdup("out of memory");
	else if (load_tenants(conn, ids, pr, cause) == 0 &&
		 load_prices(conn, prices, pr, cause) == 0 &&
		 load_promotions(conn, promos, pr, cause) == 0)
		rc = 0;
	arrs_free(a, 3);
	return rc;
}

/* The currency a tenant is billed in, or "". */
static const char *
tenant_currency(const struct pricing *pr, int64_t tenant_id)
{
	for (int i = 0; i < pr->ntenants; i++)
		if (pr->tenant_ids[i] == tenant_id)
			return pr->tenant_currency[i];
	return "";
}

/* The price in force for a record: a contract price beats the list
 * price, then the latest effective_from, then the tenant's currency, then
 * the oldest row. NULL when there is none. */
static const struct price *
choose_price(const struct pricing *pr, const struct usage_record *r)
{
	const char *cur = tenant_currency(pr, r->tenant_id);
	int best = -1;

	for (int i = 0; i < pr->nprices; i++) {
		int better;
		if (strcmp(pr->price_provider[i], r->provider) != 0 ||
		    strcmp(pr->price_model[i], r->upstream_model) != 0 ||
		    pr->price_from[i] > r->ts_us ||
		    (pr->price_tenant[i] != 0 &&
		     pr->price_tenant[i] != r->tenant_id))
			continue;
		if (best < 0) {
			best = i;
			continue;
		}
		if ((pr->price_tenant[i] != 0) != (pr->price_tenant[best] != 0))
			better = pr->price_tenant[i] != 0;
		else if (pr->price_from[i] != pr->price_from[best])
			better = pr->price_from[i] > pr->price_from[best];
		else if ((strcmp(pr->prices[i].currency, cur) == 0) !=
			 (strcmp(pr->prices[best].currency, cur) == 0))
			better = strcmp(pr->prices[i].currency, cur) == 0;
		else
			better = pr->prices[i].id < pr->prices[best].id;
		if (better)
			best = i;
	}
	return best >= 0 ? &pr->prices[best] : NULL;
}

/* Orders balances by (promotion, tenant): the lock order. */
static int
by_balance_key(const void *a, const void *b)
{
	const struct grant_balance *x = a, *y = b;

	if (x->promo->id != y->promo->id)
		return x->promo->id < y->promo->id ? -1 : 1;
	return x->tenant_id < y->tenant_id ? -1 : x->tenant_id > y->tenant_id;
}

/* Creates and locks the balance of every grant the batch may consume, in
 * key order, and reads what each tenant has used. 0 or -1. */
static int
lock_balances(PGconn *conn, struct usage_record **recs, int n,
	      struct pricing *pr, char **cause)
{
	struct sqlarr a[2];
	const char *params[2];
	PGresult *res = NULL;
	int rc = -1, cap = 16, k = 0;

	pr->balances = calloc((size_t)cap, sizeof *pr->balances);
	if (pr->balances == NULL)
		goto nomem;
	for (int i = 0; i < n; i++) {
		struct usage_record *r = recs[i];
		if (!priceable(r))
			continue;
		for (int j = 0; j < pr->npromos; j++) {
			struct promotion *p = &pr->promos[j];
			struct grant_balance key = { .promo = p,
						     .tenant_id =
							     r->tenant_id };
			int seen = 0;
			if (p->kind != PROMO_FREE_TOKENS ||
			    !promo_matches(p, r->ts_us, r->tenant_id,
					   r->provider, r->upstream_model))
				continue;
			for (int m = 0; m < pr->nbalances && !seen; m++)
				seen = by_balance_key(&pr->balances[m], &key) ==
				       0;
			if (seen)
				continue;
			if (pr->nbalances == cap) {
				struct grant_balance *nb;
				cap *= 2;
				nb = realloc(pr->balances,
					     (size_t)cap * sizeof *nb);
				if (nb == NULL)
					goto nomem;
				pr->balances = nb;
			}
			pr->balances[pr->nbalances++] = key;
		}
	}
	if (pr->nbalances == 0)
		return 0;
	qsort(pr->balances, (size_t)pr->nbalances, sizeof *pr->balances,
	      by_balance_key);
	memset(a, 0, sizeof a);
	for (int i = 0; i < pr->nbalances; i++) {
		sqlarr_int(&a[0], pr->balances[i].promo->id);
		sqlarr_int(&a[1], pr->balances[i].tenant_id);
	}
	params[0] = sqlarr_end(&a[0]);
	params[1] = sqlarr_end(&a[1]);
	if (params[0] == NULL || params[1] == NULL)
		goto nomem_arr;
	if (run(conn, "grant balances",
		"INSERT INTO grant_balances (promotion_id, tenant_id) "
		"SELECT * FROM unnest($1::bigint[], $2::bigint[]) "
		"ORDER BY 1, 2 ON CONFLICT DO NOTHING",
		2, params, cause) != 0)
		goto out;
	res = exec(conn, "grant balances",
		   "SELECT promotion_id, tenant_id, used FROM grant_balances "
		   "WHERE (promotion_id, tenant_id) IN (SELECT * FROM "
		   "unnest($1::bigint[], $2::bigint[])) "
		   "ORDER BY promotion_id, tenant_id FOR UPDATE",
		   2, params, PGRES_TUPLES_OK, cause);
	if (res == NULL)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t pid = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		int64_t tid = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		/* Both lists are in key order. */
		while (k < pr->nbalances && (pr->balances[k].promo->id != pid ||
					     pr->balances[k].tenant_id != tid))
			k++;
		if (k == pr->nbalances)
			break;
		pr->balances[k].used = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		pr->balances[k].used_before = pr->balances[k].used;
	}
	rc = 0;
	goto out;
nomem_arr:
	*cause = strdup("out of memory");
out:
	PQclear(res);
	arrs_free(a, 2);
	return rc;
nomem:
	*cause = strdup("out of memory");
	return -1;
}

/* Orders matching balances: earliest-ending grant first, then oldest. */
static int
by_expiry(const void *a, const void *b)
{
	const struct grant_balance *x = *(struct grant_balance *const *)a;
	const struct grant_balance *y = *(struct grant_balance *const *)b;

	if (x->promo->ends_us != y->promo->ends_us)
		return x->promo->ends_us < y->promo->ends_us ? -1 : 1;
	return x->promo->id < y->promo->id ? -1 : x->promo->id > y->promo->id;
}

/* Prices one record against what was loaded and locked. 0 or -1. */
static int
price_record(struct pricing *pr, struct usage_record *r, char **cause)
{
	struct grant_balance *mine[PROMO_MAX_GRANTS];
	const struct promotion *disc[32];
	const struct price *p = choose_price(pr, r);
	struct token_counts t;
	int nmine = 0, ndisc = 0;

	if (p == NULL) {
		r->unpriced = 1;
		return 0;
	}
	for (int i = 0; i < pr->nbalances && nmine < PROMO_MAX_GRANTS; i++) {
		struct grant_balance *b = &pr->balances[i];
		if (b->tenant_id == r->tenant_id &&
		    b->used < b->promo->free_tokens &&
		    promo_matches(b->promo, r->ts_us, r->tenant_id, r->provider,
				  r->upstream_model))
			mine[nmine++] = b;
	}
	qsort(mine, (size_t)nmine, sizeof *mine, by_expiry);
	for (int i = 0; i < pr->npromos && ndisc < 32; i++)
		if (pr->promos[i].kind == PROMO_DISCOUNT &&
		    promo_matches(&pr->promos[i], r->ts_us, r->tenant_id,
				  r->provider, r->upstream_model))
			disc[ndisc++] = &pr->promos[i];
	price_classes(&r->usage, &t);
	if (r->cost == NULL && (r->cost = calloc(1, sizeof *r->cost)) == NULL) {
		*cause = strdup("out of memory");
		return -1;
	}
	if (promo_apply(p, &t, mine, nmine, disc, ndisc, r->cost) != 0) {
		*cause = strdup(
			"cost overflows 63 bits of nano-units [SQLSTATE 22003]");
		return -1;
	}
	r->price_id = p->id;
	memcpy(r->currency, p->currency, sizeof r->currency);
	return 0;
}

/* Writes back the grant balances the batch used. 0 or -1. */
static int
store_balances(PGconn *conn, const struct pricing *pr, char **cause)
{
	struct sqlarr b[3];
	const char *bp[3];
	int rc = 0;

	memset(b, 0, sizeof b);
	for (int i = 0; i < pr->nbalances; i++) {
		if (pr->balances[i].used == pr->balances[i].used_before)
			continue;
		sqlarr_int(&b[0], pr->balances[i].promo->id);
		sqlarr_int(&b[1], pr->balances[i].tenant_id);
		sqlarr_int(&b[2], pr->balances[i].used);
	}
	if (b[0].n > 0 && sqlarr_params(b, 3, bp) < 0) {
		*cause = strdup("out of memory");
		rc = -1;
	} else if (b[0].n > 0) {
		rc = run(conn, "grant balances",
			 "UPDATE grant_balances g SET used = v.used FROM "
			 "unnest($1::bigint[], $2::bigint[], $3::bigint[]) "
			 "AS v(pid, tid, used) WHERE g.promotion_id = v.pid "
			 "AND g.tenant_id = v.tid",
			 3, bp, cause);
	}
	arrs_free(b, 3);
	return rc;
}

/* Writes which grant covered what and the balances back. 0 or -1. */
static int
store_grants(PGconn *conn, struct usage_record **recs, int n,
	     struct pricing *pr, char **cause)
{
	struct sqlarr g[8];
	const char *gp[8];
	int rc = -1;

	memset(g, 0, sizeof g);
	for (int i = 0; i < n; i++) {
		struct usage_record *r = recs[i];
		char ts[48];
		if (!priceable(r) || r->cost == NULL || r->cost->ngrants == 0)
			continue;
		clock_format(r->ts_us, CLOCK_SQL, ts);
		for (int k = 0; k < r->cost->ngrants; k++) {
			sqlarr_text(&g[0], r->request_id);
			sqlarr_text(&g[1], ts);
			sqlarr_int(&g[2], r->cost->grants[k].promotion_id);
			sqlarr_int(&g[3], r->tenant_id);
			for (int c = 0; c < TC__COUNT; c++)
				sqlarr_int(&g[4 + c],
					   r->cost->grants[k].covered.n[c]);
		}
	}
	if (g[0].n > 0) {
		if (sqlarr_params(g, 8, gp) < 0) {
			*cause = strdup("out of memory");
			goto out;
		}
		if (run(conn, "usage grants",
			"INSERT INTO usage_grants (request_id, ts, "
			"promotion_id, tenant_id, input_tokens, cached_tokens, "
			"cache_write_tokens, output_tokens) SELECT * FROM "
			"unnest($1::text[], $2::timestamptz[], $3::bigint[], "
			"$4::bigint[], $5::bigint[], $6::bigint[], "
			"$7::bigint[], $8::bigint[])",
			8, gp, cause) != 0)
			goto out;
	}
	rc = store_balances(conn, pr, cause);
out:
	arrs_free(g, 8);
	return rc;
}

/* Replaces the spend reservations of the new records by what they cost
 * (sql/006_quotas.sql), in the transaction that priced them. */
static int
settle_spend(PGconn *conn, struct usage_record **recs, int n, char **cause)
{
	struct sqlarr a[2];
	const char *params[2];
	int rc = -1;

	memset(a, 0, sizeof a);
	for (int i = 0; i < n; i++) {
		char ts[48];
		if (!recs[i]->inserted || recs[i]->tenant_id == 0)
			continue;
		clock_format(recs[i]->ts_us, CLOCK_SQL, ts);
		sqlarr_text(&a[0], recs[i]->request_id);
		sqlarr_text(&a[1], ts);
	}
	if (a[0].n == 0)
		return 0;
	params[0] = sqlarr_end(&a[0]);
	params[1] = sqlarr_end(&a[1]);
	if (params[0] == NULL || params[1] == NULL)
		*cause = strdup("out of memory");
	else {
		PGresult *res = exec(conn, "quota spend",
				     "SELECT tollgate_quota_settle_spend("
				     "$1::text[], $2::timestamptz[])",
				     2, params, PGRES_TUPLES_OK, cause);
		rc = res != NULL ? 0 : -1;
		PQclear(res);
	}
	arrs_free(a, 2);
	return rc;
}

/* Resets what pricing filled in a record. */
static void
unprice(struct usage_record *r)
{
	r->price_id = 0;
	r->unpriced = 0;
	if (r->cost != NULL)
		memset(r->cost, 0, sizeof *r->cost);
}

/* One attempt at the batch's candidates (inserted set): priced, inserted
 * with their costs, grants and spend settled, committed. Returns how many
 * it added; 0 with *again set when a candidate turned out to be there
 * already (it is then no longer a candidate, and the transaction was
 * rolled back: pricing took it into account); -1 on failure, rolled back.
 * Pricing first spares every row a second version, and the first attempt
 * (*fresh) inserts without ON CONFLICT and RETURNING, which cost each row
 * about a third more: the common batch is all new, and a replayed one is
 * rare (an acknowledgement lost with the connection, a crash between
 * commit and trim). Once one was there, *fresh is cleared and the next
 * attempts skip what is there. */
static int
write_candidates(PGconn *conn, struct usage_record **recs, int n, int *again,
		 int *fresh, char **cause)
{
	struct pricing pr;
	int ncand = 0, npriced = 0, added = -1;
	PGresult *res;

	memset(&pr, 0, sizeof pr);
	*again = 0;
	for (int i = 0; i < n; i++) {
		unprice(recs[i]);
		ncand += recs[i]->inserted;
		npriced += priceable(recs[i]);
	}
	if (ncand == 0)
		return 0;
	if (run(conn, "begin", "BEGIN", 0, NULL, cause) != 0)
		return -1;
	if (ensure_partitions(conn, recs, n, cause) != 0)
		goto rollback;
	qsort(recs, (size_t)n, sizeof *recs, by_time);
	if (npriced > 0) {
		if (load_pricing(conn, recs, n, &pr, cause) != 0 ||
		    lock_balances(conn, recs, n, &pr, cause) != 0)
			goto rollback;
		for (int i = 0; i < n; i++)
			if (priceable(recs[i]) &&
			    price_record(&pr, recs[i], cause) != 0)
				goto rollback;
	}
	added = insert_records(conn, recs, n, *fresh, cause);
	if (added == -2) {
		/* Not all new after all: again, skipping those there. */
		*fresh = 0;
		*again = 1;
		added = 0;
		goto rollback;
	}
	if (added < 0)
		goto rollback;
	if (added < ncand) {
		*again = 1;
		added = 0;
		goto rollback;
	}
	if ((npriced > 0 && store_grants(conn, recs, n, &pr, cause) != 0) ||
	    settle_spend(conn, recs, n, cause) != 0 ||
	    run(conn, "commit", "COMMIT", 0, NULL, cause) != 0) {
		added = -1;
		goto rollback;
	}
	pricing_free(&pr);
	return added;
rollback:
	res = PQexec(conn, "ROLLBACK");
	PQclear(res);
	pricing_free(&pr);
	return added < 0 ? -1 : 0;
}

/* Writes and prices one batch in one transaction. */
int
ledger_write(PGconn *conn, struct usage_record *head, int n, char **cause)
{
	struct usage_record **recs = calloc((size_t)n + 1, sizeof *recs);
	int added = 0, again = 1, fresh = 1;

	*cause = NULL;
	if (recs == NULL) {
		*cause = strdup("out of memory");
		return -1;
	}
	for (int i = 0; i < n && head != NULL; i++, head = head->next) {
		recs[i] = head;
		head->inserted = 1;
	}
	/* Each round that finds a record there already drops it, so this
	 * ends. */
	while (again && added >= 0)
		added = write_candidates(conn, recs, n, &again, &fresh, cause);
	if (added < 0)
		for (int i = 0; i < n; i++) {
			recs[i]->inserted = 0;
			unprice(recs[i]);
		}
	free(recs);
	return added;
}
