#!/bin/bash
# bench/console.sh - the web console on a month of many usage records: how
# long its API takes to answer, what PostgreSQL spends on its queries, and
# that neither the data plane nor the ledger's writer waits for it.
#
# Starts a private PostgreSQL (unix socket only), the mock upstream and
# tollgated (with admin_token_file) on free ports in a temporary directory,
# seeds RECORDS usage records over the current month (UTC) through the
# partitioned parent usage_records, in batches of one INSERT ... SELECT
# generate_series each, so that the roll-up trigger keeps usage_daily as
# the ledger's writer does, then measures:
#
#  1. each console call over HTTP with curl (Authorization: Bearer), as
#     the median and p95 of REQUESTS calls after WARMUP, and as a ratio to
#     GET /api/live, which is answered from memory (the baseline); whether
#     each call of the page's load is under 200 ms. The bill (tollctl bill,
#     which reads usage_records) is loaded by the page on demand: reported
#     apart, with the durations of its statements, and the time of an
#     overview sent while two bills are in flight;
#  2. PostgreSQL's own time for the console's overview and tenant queries
#     (EXPLAIN (ANALYZE, BUFFERS) of the statements of
#     src/gateway/console_db.c, compiled out of it), and the overview's
#     on 1, 2 and 4 copies of usage_daily (as if 2 and 4 times the
#     tenants);
#  3. chat throughput through the gateway with wrk, alone and while
#     HAMMER connections ask /api/overview and /api/tenants/NAME without a
#     pause, ROUNDS times in turn: the ratio with / alone;
#  4. the roll-up trigger's cost to the ledger: a 500-row INSERT into
#     usage_records with the trigger and with the table's triggers
#     disabled, in transactions rolled back (the ledger and usage_daily are
#     left as they were), as µs per row.
#
# Environment: RECORDS (10000000), BATCH (500000 rows a seeding INSERT),
# TENANTS (50), REQUESTS (30 timed calls an endpoint), WARMUP (3),
# BILL_REQUESTS (5) and BILL_WARMUP (1) for the bill (seconds each),
# DURATION (5s of wrk load per run), ROUNDS (3), CONNECTIONS (32), THREADS
# (2), WORKERS (2), HAMMER (4 console connections), TRIGGER_BATCHES (15 of
# each kind), TRIGGER_ROWS (500), PG_SHARED_BUFFERS (1GB), BUILD (build
# directory, as bench/run.sh finds it), PG_BINDIR, LOG_LEVEL (info),
# PLANS=1 prints the full EXPLAIN plans, KEEP=1 keeps the temporary
# directory.
#
# Exit status: 0 when every response was 200, 1 when a check failed, 2 when
# the set-up failed. Timings are reported, never judged: the 200 ms column
# only says which side of the console's aim each call falls.

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"

defaults RECORDS=10000000 BATCH=500000 TENANTS=50 REQUESTS=30 WARMUP=3 \
	BILL_REQUESTS=5 BILL_WARMUP=1 DURATION=5s ROUNDS=3 CONNECTIONS=32 \
	THREADS=2 WORKERS=2 HAMMER=4 TRIGGER_BATCHES=15 TRIGGER_ROWS=500 \
	PG_SHARED_BUFFERS=1GB
MAX_CONNS=4096
AIM_MS=200
# The console's load (hammer_start).
HAMMER_PID=

# Runs an SQL file on the bench database (psql variables after it).
psql_f() {
	local f=$1
	shift
	"$PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$DB" "$@" -f "$f"
}

# Runs tollctl on the bench database.
ctl() {
	"$CTL" --database "$DB" "$@"
}

# Seconds since the epoch, with fractions.
now_s() {
	date +%s.%N
}

# elapsed SINCE : seconds since SINCE, one decimal.
elapsed() {
	awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'
}

# Nearest-rank percentile P of numbers.
percentile() {
	local p=$1
	shift
	printf '%s\n' "$@" | sort -g | awk -v p="$p" '{ v[NR] = $1 }
		END { r = int(p / 100 * NR + 0.999999); if (r < 1) r = 1; print v[r] }'
}

# ---------------------------------------------------------------------------
# Seeding.

# The tenants, their keys, prices, rates and promotions of the month; the
# helper tables bench_tenants and bench_models the seeding joins.
seed_setup() {
	local k name tz cur
	local has_display=0
	ctl tenant add --help 2>&1 | grep -q -- '--display-name' && has_display=1
	: >"$TMP/tenants.tsv"
	for ((k = 1; k <= TENANTS; k++)); do
		name=$(printf 'tenant-%02d' "$k")
		tz=UTC cur=USD
		# A few tenants bill in Shanghai's calendar, in yuan.
		if ((k % 10 == 2)); then
			tz=Asia/Shanghai cur=CNY
		fi
		local -a extra=()
		if ((k == 2)) && ((has_display)); then
			extra=(--display-name '北京研发中心')
		fi
		ctl tenant add "$name" --currency "$cur" --tz "$tz" "${extra[@]}" \
			>>"$TMP/ctl.log" 2>&1 || die "tollctl tenant add $name failed"
		ctl key issue --tenant "$name" -q >>"$TMP/ctl.log" 2>&1 ||
			die "tollctl key issue failed"
	done
	if ! ((has_display)); then
		psql_q "UPDATE tenants SET display_name = '北京研发中心'
			WHERE name = 'tenant-02'" ||
			die "cannot set a display name"
		DISPLAY_NOTE="(display name set in SQL: tollctl tenant add has no --display-name)"
	else
		DISPLAY_NOTE="(display name set by tollctl tenant add --display-name)"
	fi
	cat >"$TMP/setup.sql" <<'EOF'
-- Prices per million tokens (input, cached input, output), list prices
-- from the month before.
CREATE TABLE bench_models (m int PRIMARY KEY, provider text, model text,
	currency text, input numeric, cached numeric, output numeric,
	weight numeric, price_id bigint);
INSERT INTO bench_models (m, provider, model, currency, input, cached, output, weight) VALUES
	(1, 'openai', 'gpt-4o', 'USD', 2.5, 1.25, 10, 25),
	(2, 'openai', 'gpt-4o-mini', 'USD', 0.15, 0.075, 0.6, 20),
	(3, 'anthropic', 'claude-sonnet-4', 'USD', 3, 0.3, 15, 10),
	(4, 'deepseek', 'deepseek-chat', 'CNY', 2, 0.5, 8, 15),
	(5, 'zhipu', 'glm-4-plus', 'CNY', 5, 5, 5, 10),
	(6, 'dashscope', 'qwen-max', 'CNY', 2.4, 2.4, 9.6, 10),
	(7, 'moonshot', 'moonshot-v1-32k', 'CNY', 24, 24, 24, 5),
	(8, 'deepseek', 'deepseek-reasoner', 'CNY', 4, 1, 16, 5);
INSERT INTO prices (provider, model, currency, input, cached_input, output,
	effective_from, source)
SELECT provider, model, currency, input, cached, output,
	date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month', 'bench'
FROM bench_models;
UPDATE bench_models b SET price_id = p.id FROM prices p
WHERE p.provider = b.provider AND p.model = b.model AND p.tenant_id IS NULL;
-- The month's rates (and the next month's: Shanghai's last hours of the
-- UTC month are its next month).
INSERT INTO fx_rates (month, base, quote, rate)
SELECT m, b, q, r FROM (VALUES ('USD', 'CNY', 7.2), ('CNY', 'USD', 0.1389)) v(b, q, r),
	(VALUES (date_trunc('month', now() AT TIME ZONE 'UTC')::date),
	        ((date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')::date)) x(m);
-- Free GLM tokens for every tenant; a 10% discount for every fifth one.
INSERT INTO promotions (name, kind, model_pattern, free_tokens, starts, ends)
VALUES ('bench-glm-free', 'free_tokens', 'glm-4*', 1000000000000,
	date_trunc('month', now()) - interval '1 month',
	date_trunc('month', now()) + interval '2 months');
INSERT INTO promotions (name, kind, tenant_id, discount_bp, starts, ends)
SELECT 'bench-discount-' || t.name, 'discount', t.id, 1000,
	date_trunc('month', now()) - interval '1 month',
	date_trunc('month', now()) + interval '2 months'
FROM tenants t WHERE t.name ~ '^tenant-[0-9]+$'
	AND substr(t.name, 8)::int % 5 = 0;
CREATE TABLE bench_tenants (k int PRIMARY KEY, tenant_id bigint,
	key_id bigint, currency text, tz text, discount_id bigint,
	discount_bp int, quota_id int);
INSERT INTO bench_tenants
SELECT substr(t.name, 8)::int, t.id,
	(SELECT min(k.id) FROM api_keys k WHERE k.tenant_id = t.id),
	t.currency, t.tz, p.id, coalesce(p.discount_bp, 0),
	100 + substr(t.name, 8)::int
FROM tenants t LEFT JOIN promotions p ON p.tenant_id = t.id
WHERE t.name ~ '^tenant-[0-9]+$';
ANALYZE bench_models;
ANALYZE bench_tenants;
EOF
	psql_f "$TMP/setup.sql" >>"$TMP/seed.log" 2>&1 ||
		die "the seeding's set-up failed (see $TMP/seed.log)"
	# Cumulative model weights, for width_bucket().
	MODEL_BOUNDS=$(psql_q "SELECT string_agg(c::text, ',' ORDER BY m)
		FROM (SELECT m, sum(weight) OVER (ORDER BY m)
		/ sum(weight) OVER () AS c FROM bench_models) x")
	# The last bound (1) is left out: width_bucket then gives 0..7.
	MODEL_BOUNDS=${MODEL_BOUNDS%,*}
}

# rows_sql LO HI TS_EXPR PREFIX : the SELECT of usage_records rows LO..HI
# (generate_series' i); TS_EXPR gives each row's time from i. Tenants are
# skewed (the first has about 14%), models weighted; 2% refused (rate
# limits, quota, model not allowed), 1% failed upstream (502), 3%
# estimated, the rest reported; costs priced as the ledger prices them
# (free GLM tokens for half of those, a tenant's discount, the tenant's
# currency converted with the month's rate).
rows_sql() {
	local lo=$1 hi=$2 ts=$3 prefix=$4
	cat <<EOF
SELECT c.rid, c.ts, c.tenant_id, c.key_id, 'chat/completions', c.model,
	c.provider, c.umodel, c.streamed, c.status, c.pt, c.ct, c.kt, 0::bigint,
	c.rt, c.source, c.aborted, c.latency, c.ttfb, c.error, c.refusal, 0,
	c.price_id, c.currency, false, c.fi, c.fc, 0::bigint, c.fo, c.did,
	c.dbp, c.ln, c.fn, c.dn, c.ln - c.fn - c.dn,
	CASE WHEN c.currency = c.tcur THEN NULL ELSE fx.rate END,
	CASE WHEN c.currency IS NULL THEN NULL
		WHEN c.currency = c.tcur THEN c.ln - c.fn - c.dn
		ELSE round((c.ln - c.fn - c.dn) * fx.rate)::bigint END,
	c.ts + make_interval(secs => c.latency / 1000.0 + 0.05)
FROM (
	SELECT b.*,
		CASE WHEN b.free THEN b.ln ELSE 0 END AS fn,
		CASE WHEN b.free THEN 0 ELSE b.ln * b.tdbp / 10000 END AS dn,
		CASE WHEN b.free OR b.tdbp = 0 THEN NULL ELSE b.tdid END AS did,
		CASE WHEN b.free THEN 0 ELSE b.tdbp END AS dbp,
		CASE WHEN b.free THEN b.pt - b.kt ELSE 0 END AS fi,
		CASE WHEN b.free THEN b.kt ELSE 0 END AS fc,
		CASE WHEN b.free THEN b.ct ELSE 0 END AS fo
	FROM (
		SELECT a.*,
			CASE WHEN a.priced THEN round((a.pt - a.kt) * a.p_in * 1000
				+ a.kt * a.p_ca * 1000 + a.ct * a.p_out * 1000)::bigint
				ELSE 0 END AS ln,
			a.served AND a.model LIKE 'glm-4%' AND a.r6 >= 0.5 AS free
		FROM (
			SELECT s.*,
				CASE WHEN s.served THEN 100 + floor(s.r4 * s.r4 * 8000)::bigint
					ELSE 0 END AS pt,
				CASE WHEN s.served THEN 10 + floor(s.r5 * 1200)::bigint
					ELSE 0 END AS ct,
				CASE WHEN s.served AND s.r6 < 0.3
					THEN (100 + floor(s.r4 * s.r4 * 8000)::bigint) / 2
					ELSE 0 END AS kt,
				CASE WHEN s.served AND s.model = 'deepseek-reasoner'
					THEN (10 + floor(s.r5 * 1200)::bigint) / 2
					ELSE 0 END AS rt
			FROM (
				SELECT g.*, '$prefix' || g.i AS rid, $ts AS ts,
					t.tenant_id, t.key_id, t.currency AS tcur, t.tz,
					t.discount_id AS tdid, t.discount_bp AS tdbp,
					m.model,
					CASE WHEN g.r3 >= 0.02 THEN m.provider END AS provider,
					CASE WHEN g.r3 >= 0.02 THEN m.model END AS umodel,
					g.r7 < 0.6 AS streamed,
					CASE WHEN g.r3 < 0.02 THEN
						CASE WHEN g.r4 < 0.9 THEN 429 ELSE 403 END
						WHEN g.r3 < 0.03 THEN 502 ELSE 200 END AS status,
					g.r3 >= 0.03 AS served,
					CASE WHEN g.r3 < 0.03 THEN 'none'
						WHEN g.r3 < 0.06 THEN 'estimated'
						ELSE 'reported' END AS source,
					g.r3 >= 0.03 AND g.r3 < 0.045 AS aborted,
					CASE WHEN g.r3 < 0.02 THEN 1 + floor(g.r5 * 3)::int
						ELSE 300 + floor(g.r5 * g.r5 * 20000)::int END AS latency,
					CASE WHEN g.r3 >= 0.03 AND g.r7 < 0.6
						THEN 150 + floor(g.r5 * 900)::int END AS ttfb,
					CASE WHEN g.r3 < 0.02 THEN 'refused'
						WHEN g.r3 < 0.03 THEN 'upstream answered 502' END AS error,
					CASE WHEN g.r3 < 0.02 THEN
						CASE WHEN g.r4 < 0.5 THEN 'rate_limit:requests'
							WHEN g.r4 < 0.7 THEN 'rate_limit:tokens'
							WHEN g.r4 < 0.9 THEN 'quota:' || t.quota_id
							ELSE 'model_not_allowed' END END AS refusal,
					g.r3 >= 0.02 AS priced,
					CASE WHEN g.r3 >= 0.02 THEN m.price_id END AS price_id,
					CASE WHEN g.r3 >= 0.02 THEN m.currency END AS currency,
					m.input AS p_in, m.cached AS p_ca, m.output AS p_out
				FROM (SELECT i, random() AS r1, random() AS r2, random() AS r3,
						random() AS r4, random() AS r5, random() AS r6,
						random() AS r7
					FROM generate_series($lo::bigint, $hi::bigint) AS i) g
				JOIN bench_tenants t ON t.k = 1 + floor(g.r1 * g.r1 * $TENANTS)::int
				JOIN bench_models m ON m.m = 1 + width_bucket(g.r2,
					'{$MODEL_BOUNDS}'::float8[])
			) s
		) a
	) b
) c
LEFT JOIN fx_rates fx ON fx.base = c.currency AND fx.quote = c.tcur
	AND fx.month = date_trunc('month', c.ts AT TIME ZONE c.tz)::date
EOF
}

# The columns rows_sql gives, in its order.
INSERT_COLS="request_id, ts, tenant_id, key_id, endpoint, requested_model,
	provider, upstream_model, streamed, status, prompt_tokens,
	completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
	usage_source, client_aborted, latency_ms, ttfb_ms, error, refusal,
	failed_attempts, price_id, currency, unpriced, free_input_tokens,
	free_cached_tokens, free_cache_write_tokens, free_output_tokens,
	discount_id, discount_bp, list_nanos, free_nanos, discount_nanos,
	billed_nanos, fx_rate, billed_tenant_nanos, ingested_at"

# Seeds RECORDS records spread evenly over the month, BATCH a statement.
seed() {
	local lo hi n=0 nb t0 tb ts
	nb=$(((RECORDS + BATCH - 1) / BATCH))
	ts="'$MONTH_START'::timestamptz + ((g.i - 1)::float8 / $RECORDS)
		* ('$MONTH_END'::timestamptz - '$MONTH_START'::timestamptz)"
	t0=$(now_s)
	for ((lo = 1; lo <= RECORDS; lo += BATCH)); do
		hi=$((lo + BATCH - 1))
		((hi > RECORDS)) && hi=$RECORDS
		n=$((n + 1))
		tb=$(now_s)
		{
			echo "INSERT INTO usage_records ($INSERT_COLS)"
			rows_sql "$lo" "$hi" "$ts" "seed-"
			echo ";"
		} >"$TMP/seed-batch.sql"
		psql_f "$TMP/seed-batch.sql" >>"$TMP/seed.log" 2>&1 ||
			die "seeding batch $n failed (see $TMP/seed.log)"
		say "seeding: batch $n/$nb ($((hi - lo + 1)) rows) in $(elapsed "$tb") s; $hi rows in $(elapsed "$t0") s"
	done
	SEED_S=$(elapsed "$t0")
	t0=$(now_s)
	say "VACUUM (ANALYZE) of usage_records and usage_daily (autovacuum's work, done before measuring)"
	psql_q "VACUUM (ANALYZE) usage_records" >>"$TMP/seed.log" 2>&1 ||
		die "VACUUM ANALYZE usage_records failed"
	psql_q "VACUUM (ANALYZE) usage_daily" >>"$TMP/seed.log" 2>&1 ||
		die "VACUUM ANALYZE usage_daily failed"
	VACUUM_S=$(elapsed "$t0")
}

# ---------------------------------------------------------------------------
# HTTP latency of the console.

# measure LABEL PATH N KIND [WARM] : N timed calls of PATH after WARM
# (WARMUP) untimed ones. KIND is base (the baseline), page (part of the
# page's load), apart (reported, not part of the load). A row of the
# latency table.
measure() {
	local label=$1 path=$2 n=$3 kind=$4 warm=${5:-$WARMUP}
	local i out code t bytes med p95 ratio aim
	local -a ms=()
	for ((i = 0; i < warm + n; i++)); do
		out=$(curl -s -o "$TMP/resp.body" --max-time 300 "${AUTH[@]}" \
			-w '%{http_code} %{time_total} %{size_download}' \
			"$ADMIN_URL$path")
		read -r code t bytes <<<"$out"
		if [ "$code" != 200 ]; then
			fail "$label: HTTP $code ($(head -c 200 "$TMP/resp.body"))"
			return
		fi
		((i < warm)) && continue
		ms+=("$(awk -v t="$t" 'BEGIN { printf "%.3f", t * 1000 }')")
	done
	med=$(median "${ms[@]}")
	p95=$(percentile 95 "${ms[@]}")
	if [ "$kind" = base ]; then
		BASE_MS=$med
		ratio=1.00
	else
		ratio=$(awk -v a="$med" -v b="$BASE_MS" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
	fi
	case $kind in
	page) aim=$(awk -v m="$med" -v p="$p95" -v a="$AIM_MS" \
		'BEGIN { print (p < a ? "yes" : (m < a ? "median only" : "NO")) }') ;;
	*) aim=- ;;
	esac
	printf '%-44s %4s %10.2f %9.2f %9s %9s %s\n' "$label" "$n" "$med" \
		"$p95" "$ratio" "$bytes" "$aim" >>"$TMP/latency"
	MED[$path]=$med
}

# overview_behind_bills : the time of one GET /api/overview sent while
# CONSOLE_THREADS (2) bills of the largest tenant are in flight: the
# console runs its reads and its tollctl verbs on the same threads.
overview_behind_bills() {
	local i out code t
	local -a pids=()
	for ((i = 0; i < 2; i++)); do
		curl -s -o /dev/null --max-time 300 "${AUTH[@]}" \
			"$ADMIN_URL/api/tenants/$BIG/bill?format=json" &
		pids+=($!)
	done
	sleep 1
	out=$(curl -s -o /dev/null --max-time 300 "${AUTH[@]}" \
		-w '%{http_code} %{time_total}' "$ADMIN_URL/api/overview")
	read -r code t <<<"$out"
	wait "${pids[@]}"
	[ "$code" = 200 ] || fail "overview behind bills: HTTP $code"
	BEHIND_MS=$(awk -v t="$t" 'BEGIN { printf "%.0f", t * 1000 }')
}

# ---------------------------------------------------------------------------
# PostgreSQL's own time for the console's queries.

# Compiles the statements out of src/gateway/console_db.c: from the money
# macro to the end of tenant_sql, with a main() that prints one.
extract_sql() {
	local src=$ROOT/src/gateway/console_db.c
	awk '/^#define MONEY\(/ { on = 1 } on { print } on && /"\)::text FROM t";/ { exit }' \
		"$src" >"$TMP/console_sql.h"
	grep -q 'overview_sql\[\]' "$TMP/console_sql.h" &&
		grep -q 'tenant_sql' "$TMP/console_sql.h" || return 1
	{
		echo '#include <stdio.h>'
		echo '#include <string.h>'
		echo '#include "console_sql.h"'
		echo 'int main(int argc, char **argv) {'
		echo '	(void)argc;'
		echo '	fputs(strcmp(argv[1], "overview") == 0 ? overview_sql : tenant_sql, stdout);'
		echo '	return 0;'
		echo '}'
	} >"$TMP/console_sql.c"
	${CC:-cc} -w -o "$TMP/console_sql" "$TMP/console_sql.c" -I"$TMP" \
		>>"$TMP/ctl.log" 2>&1 || return 1
	"$TMP/console_sql" overview >"$TMP/overview.sql" &&
		"$TMP/console_sql" tenant >"$TMP/tenant.sql"
}

# explain NAME TENANT : EXPLAIN (ANALYZE, BUFFERS) of statement NAME five
# times in one session (the tenant's, in its time zone, when TENANT is
# set); a row of the table with the median execution and planning time
# and the top node's buffers. The last plan is kept as NAME.plan.
explain() {
	local name=$1 tenant=$2 i args exec plan buf
	args="'$MONTH_DAY'"
	if [ -n "$tenant" ]; then
		args+=", '$tenant'"
	fi
	{
		echo "BEGIN READ ONLY;"
		[ -n "$tenant" ] &&
			echo "SELECT set_config('TimeZone', tz, true) FROM tenants WHERE name = '$tenant' \\g /dev/null"
		echo "PREPARE q AS"
		cat "$TMP/$name.sql"
		echo ";"
		for ((i = 0; i < 5; i++)); do
			printf '\\echo ---- run %d\n' "$i"
			echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE q($args);"
		done
		echo "COMMIT;"
	} >"$TMP/explain-$name.sql"
	psql_f "$TMP/explain-$name.sql" >"$TMP/explain-$name.out" 2>&1 || {
		fail "EXPLAIN of the $name query failed: $(tail -n 3 "$TMP/explain-$name.out")"
		return
	}
	exec=$(sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p' "$TMP/explain-$name.out" | median_in)
	plan=$(sed -n 's/^Planning Time: \([0-9.]*\) ms$/\1/p' "$TMP/explain-$name.out" | median_in)
	awk '/^---- run 4/ { on = 1; next } on' "$TMP/explain-$name.out" >"$TMP/$name.plan"
	buf=$(sed -n '2,$s/^ *Buffers: \(.*\)$/\1/p' "$TMP/$name.plan" | head -n 1)
	printf '%-10s %12s %12s   %s\n' "$name" "$exec" "$plan" "${buf:--}" >>"$TMP/explain"
}

# overview_scaled K : the overview's statement (EXECUTE, no EXPLAIN) on K
# copies of usage_daily (tenant ids shifted: as if K times the tenants),
# in a temporary table that hides the real one for this session; a row of
# the scaling table with its month's rows and the median of 5 runs.
overview_scaled() {
	local k=$1 i rows ms
	{
		echo "CREATE TEMP TABLE usage_daily AS SELECT * FROM public.usage_daily WHERE false;"
		echo "INSERT INTO usage_daily SELECT d.tenant_id + 1000000 * g, d.day,"
		echo "  d.provider, d.model, d.currency, d.refusal, d.requests, d.errors,"
		echo "  d.estimated_requests, d.prompt_tokens, d.completion_tokens,"
		echo "  d.cached_tokens, d.cache_write_tokens, d.reasoning_tokens,"
		echo "  d.estimated_tokens, d.list_nanos, d.free_nanos, d.discount_nanos,"
		echo "  d.billed_nanos, d.billed_tenant_nanos, d.unconverted, d.unpriced,"
		echo "  d.last_ts FROM public.usage_daily d, generate_series(0, $k - 1) g;"
		echo "ANALYZE usage_daily;"
		echo "SELECT 'ROWS', count(*) FROM usage_daily WHERE day >= '$MONTH_DAY'::date"
		echo "  AND day < ('$MONTH_DAY'::date + interval '1 month')::date;"
		echo "PREPARE q AS"
		cat "$TMP/overview.sql"
		echo ";"
		echo "\\timing on"
		for ((i = 0; i < 6; i++)); do
			echo "EXECUTE q('$MONTH_DAY') \\g /dev/null"
		done
	} >"$TMP/scaled-$k.sql"
	psql_f "$TMP/scaled-$k.sql" -F ' ' >"$TMP/scaled-$k.out" 2>&1 || {
		fail "the overview on $k copies of usage_daily failed: $(tail -n 3 "$TMP/scaled-$k.out")"
		return
	}
	rows=$(sed -n 's/^ROWS \([0-9]*\)$/\1/p' "$TMP/scaled-$k.out")
	# The first run is left out (a new temporary table's caches).
	ms=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$TMP/scaled-$k.out" | tail -n 5 | median_in)
	printf '%-10s %12s %12s %12s\n' "${k}x" "$((TENANTS * k))" "$rows" "$ms" >>"$TMP/scaled"
}

# bill_statements : runs the bill verb the console runs once more, with
# its session's statements logged with their durations, and lists them.
bill_statements() {
	local mark n
	mark=$(wc -l <"$TMP/pg.log")
	PGOPTIONS="-c log_min_duration_statement=0" \
		ctl bill --month="$MONTH" --tenant="$BIG" --format=json \
		>/dev/null 2>>"$TMP/ctl.log" || {
		fail "tollctl bill failed"
		return
	}
	tail -n +"$((mark + 1))" "$TMP/pg.log" |
		sed -n 's/.*duration: \([0-9.]*\) ms  execute [^:]*: \(.\{0,60\}\).*/\1 \2/p' \
			>"$TMP/bill-statements"
	n=$(wc -l <"$TMP/bill-statements")
	BILL_STMTS=$(awk '$1 >= 1 { printf "%s%.0f", s, $1; s = " + " }
		END { if (s == "") printf "none over 1" }' "$TMP/bill-statements")
	BILL_STMTS+=" ms ($n statements in all, $(awk '{ t += $1 } END { printf "%.0f", t }' \
		"$TMP/bill-statements") ms)"
}

# ---------------------------------------------------------------------------
# The data plane alone and with the console asked without a pause.

# cpu_ticks PID... : the CPU time (user + system, clock ticks) the
# processes have used so far (their threads included).
cpu_ticks() {
	local pid sum=0 t
	for pid in "$@"; do
		t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null)
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}

# The pids of the PostgreSQL backends of the console's connections (run
# as root or as the server's user: /proc of others is readable).
console_backends() {
	psql_q "SELECT pid FROM pg_stat_activity
		WHERE application_name = 'tollgated console'" | tr '\n' ' '
}

# cores TICKS SECONDS : CPU ticks as a count of cores busy.
cores() {
	awk -v t="$1" -v s="$2" -v hz="$HZ" 'BEGIN { printf "%.2f", (s > 0 ? t / hz / s : 0) }'
}

# The console's load: HAMMER connections asking the overview and the
# largest tenant's page in turn, without a pause, until stopped.
write_hammer_lua() {
	cat >"$TMP/hammer.lua" <<EOF
local paths = { "/api/overview", "/api/tenants/$BIG" }
local n = 0
wrk.headers["Authorization"] = "Bearer $TOKEN"
function request()
	n = n + 1
	return wrk.format("GET", paths[n % 2 + 1])
end
function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("HAMMER requests=%d p50_us=%d p99_us=%d status=%d errors=%d\n",
	    summary.requests, latency:percentile(50), latency:percentile(99),
	    e.status, e.connect + e.read + e.write + e.timeout))
end
EOF
}

hammer_start() {
	wrk -t 1 -c "$HAMMER" -d 1h --timeout 30s -s "$TMP/hammer.lua" \
		"$ADMIN_URL" >"$TMP/hammer-$1.txt" 2>&1 &
	HAMMER_PID=$!
	sleep 1 # its first answers are in before the chat load starts
}

# hammer_stop : stops the console's load (wrk prints its summary on
# SIGINT); sets H_REQ, H_P50 (ms).
hammer_stop() {
	local out=$TMP/hammer-$1.txt i n
	kill -INT "$HAMMER_PID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$HAMMER_PID" 2>/dev/null || break
		sleep 0.1
	done
	stop_pid "$HAMMER_PID"
	HAMMER_PID=
	H_REQ=$(sed -n 's/^HAMMER .*requests=\([0-9]*\).*/\1/p' "$out")
	H_P50=$(sed -n 's/^HAMMER .*p50_us=\([0-9]*\).*/\1/p' "$out")
	H_P50=$(awk -v u="${H_P50:-0}" 'BEGIN { printf "%.1f", u / 1000 }')
	n=$(sed -n 's/^HAMMER .*status=\([0-9]*\).*/\1/p' "$out")
	[ "${n:-0}" = 0 ] || fail "console load: $n answers were not 2xx"
	n=$(sed -n 's/^HAMMER .*errors=\([0-9]*\).*/\1/p' "$out")
	[ "${n:-0}" = 0 ] || fail "console load: $n socket errors"
	[ -n "$H_REQ" ] || fail "console load: no summary from wrk"
}

dataplane() {
	local r t0 th g0 c0 backends
	local -a a_rps=() w_rps=() a_p50=() w_p50=() ratio=() h_rate=() h_p50=()
	local -a a_gw=() w_gw=() w_con=()
	write_hammer_lua
	HZ=$(getconf CLK_TCK)
	for ((r = 1; r <= ROUNDS; r++)); do
		g0=$(cpu_ticks "$GW_PID")
		t0=$(now_s)
		run_wrk "chat-alone-$r" "$GW_URL/v1/chat/completions" "$CHAT_BODY"
		a_gw+=("$(cores $(($(cpu_ticks "$GW_PID") - g0)) "$(elapsed "$t0")")")
		a_rps+=("$R_RPS") a_p50+=("$R_P50")
		t0=$(now_s)
		hammer_start "$r"
		# shellcheck disable=SC2207 # pids, split
		backends=($(console_backends))
		g0=$(cpu_ticks "$GW_PID")
		c0=$(cpu_ticks "${backends[@]}")
		th=$(now_s)
		run_wrk "chat-with-console-$r" "$GW_URL/v1/chat/completions" \
			"$CHAT_BODY"
		w_gw+=("$(cores $(($(cpu_ticks "$GW_PID") - g0)) "$(elapsed "$th")")")
		w_con+=("$(cores $(($(cpu_ticks "${backends[@]}") - c0)) "$(elapsed "$th")")")
		hammer_stop "$r"
		th=$(elapsed "$t0")
		w_rps+=("$R_RPS") w_p50+=("$R_P50")
		ratio+=("$(awk -v w="$R_RPS" -v a="${a_rps[-1]}" 'BEGIN { printf "%.2f", (a ? w / a : 0) }')")
		h_rate+=("$(awk -v n="${H_REQ:-0}" -v s="$th" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }')")
		h_p50+=("$H_P50")
		say "round $r: with / alone ${ratio[-1]}; the console answered ${H_REQ:-0} calls (${h_rate[-1]}/s, p50 $H_P50 ms); cores busy: tollgated ${a_gw[-1]} alone, ${w_gw[-1]} with; the console's PostgreSQL backends ${w_con[-1]}"
	done
	{
		printf '%-22s %8s %8s %6s %11s %11s %13s %8s %8s %8s\n' "" "alone" "with" "with/" \
			"alone p50" "with p50" "console" "gateway" "gateway" "console"
		printf '%-22s %8s %8s %6s %11s %11s %13s %8s %8s %8s\n' "" "req/s" "req/s" \
			"alone" "ms" "ms" "calls/s (p50)" "alone" "with" "backends"
		printf '%-22s %8s %8s %6s %11s %11s %13s %8s %8s %8s\n' \
			"chat c=$CONNECTIONS, ${SECS}s" \
			"$(median "${a_rps[@]}")" "$(median "${w_rps[@]}")" \
			"$(median "${ratio[@]}")" "$(median "${a_p50[@]}")" \
			"$(median "${w_p50[@]}")" \
			"$(median "${h_rate[@]}") ($(median "${h_p50[@]}"))" \
			"$(median "${a_gw[@]}")" "$(median "${w_gw[@]}")" \
			"$(median "${w_con[@]}")"
		printf '(the last three: CPU cores busy during the chat run, of %s; console p50 in ms)\n' \
			"$(nproc 2>/dev/null || echo '?')"
		printf 'the %s rounds (with / alone): %s\n' "$ROUNDS" "${ratio[*]}"
	} >"$TMP/dataplane"
}

# ---------------------------------------------------------------------------
# The roll-up trigger's cost to the ledger.

trigger_cost() {
	local i kind prefix
	local ts="now() - random() * interval '10 seconds'"
	{
		echo "\\set QUIET on"
		for ((i = 0; i < 2 + TRIGGER_BATCHES; i++)); do
			for kind in with without; do
				prefix="trig-$kind-$i-"
				echo "BEGIN;"
				[ "$kind" = without ] &&
					echo "ALTER TABLE usage_records DISABLE TRIGGER USER;"
				echo "DO \$bench\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN"
				echo "INSERT INTO usage_records ($INSERT_COLS)"
				rows_sql 1 "$TRIGGER_ROWS" "$ts" "$prefix"
				echo ";"
				echo "RAISE NOTICE 'TRIGGER $kind $i %', extract(epoch FROM clock_timestamp() - t0) * 1000000;"
				echo "END \$bench\$;"
				echo "ROLLBACK;"
			done
		done
	} >"$TMP/trigger.sql"
	psql_f "$TMP/trigger.sql" >"$TMP/trigger.out" 2>&1 || {
		fail "the trigger's measure failed: $(tail -n 3 "$TMP/trigger.out")"
		return
	}
	# The first two of each are warm-ups (plans, caches).
	sed -n 's/.*NOTICE: *TRIGGER \(with\|without\) \([0-9]*\) \([0-9.]*\)$/\1 \2 \3/p' \
		"$TMP/trigger.out" >"$TMP/trigger.times"
	T_WITH=$(awk '$1 == "with" && $2 >= 2 { print $3 }' "$TMP/trigger.times" | median_in)
	T_WITHOUT=$(awk '$1 == "without" && $2 >= 2 { print $3 }' "$TMP/trigger.times" | median_in)
	T_WITH_ALL=$(awk '$1 == "with" && $2 >= 2 { printf "%s%.1f", s, $3 / n; s = " " }' \
		n="$TRIGGER_ROWS" "$TMP/trigger.times")
	T_WITHOUT_ALL=$(awk '$1 == "without" && $2 >= 2 { printf "%s%.1f", s, $3 / n; s = " " }' \
		n="$TRIGGER_ROWS" "$TMP/trigger.times")
	# The triggers are enabled again (each ALTER was rolled back).
	[ "$(psql_q "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'usage_records'::regclass
		AND NOT tgisinternal AND tgenabled = 'D'")" = 0 ] ||
		fail "a trigger of usage_records is still disabled"
}

main() {
	local b n rows big_n
	[ "$RECORDS" -gt 0 ] && [ "$BATCH" -gt 0 ] && [ "$TENANTS" -ge 2 ] &&
		[ "$TENANTS" -le 99 ] || die "RECORDS, BATCH > 0 and TENANTS 2..99 wanted"
	find_tools

	make_tmp tollgate-bench-console HAMMER_PID

	export TOLLGATE_KEY_SECRET
	TOLLGATE_KEY_SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
	printf '%s\n' "$TOKEN" >"$TMP/admin.token"
	chmod 600 "$TMP/admin.token"
	AUTH=(-H "Authorization: Bearer $TOKEN")
	GW_SETTINGS="admin_token_file = $TMP/admin.token"
	LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
	say "build $BUILD, PostgreSQL $PG_BINDIR, work directory $TMP; load average $LOAD_START"
	# As the other benches, plus a production-like buffer pool and WAL room
	# for the bulk seeding.
	start_pg -c "shared_buffers=$PG_SHARED_BUFFERS" -c max_wal_size=8GB \
		-c checkpoint_timeout=30min
	MONTH_START=$(psql_q "SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")
	MONTH_END=$(psql_q "SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'")
	MONTH_DAY=$(psql_q "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-01')")
	MONTH=${MONTH_DAY%-01}

	say "seeding $RECORDS records over $MONTH (UTC), $TENANTS tenants, batches of $BATCH"
	seed_setup
	seed
	rows=$(psql_q "SELECT count(*) FROM usage_records")
	[ "$rows" = "$RECORDS" ] || fail "usage_records holds $rows rows, $RECORDS seeded"
	DAILY_ROWS=$(psql_q "SELECT count(*) FROM usage_daily")
	DAILY_MONTH=$(psql_q "SELECT count(*) FROM usage_daily
		WHERE day >= '$MONTH_DAY'::date AND day < ('$MONTH_DAY'::date + interval '1 month')::date")
	read -r BIG big_n <<<"$(psql_q "SELECT t.name || ' ' || sum(d.requests)
		FROM usage_daily d JOIN tenants t ON t.id = d.tenant_id
		GROUP BY t.name ORDER BY sum(d.requests) DESC LIMIT 1")"
	BIG_DAILY=$(psql_q "SELECT count(*) FROM usage_daily d JOIN tenants t ON t.id = d.tenant_id
		WHERE t.name = '$BIG' AND day >= '$MONTH_DAY'::date
		AND day < ('$MONTH_DAY'::date + interval '1 month')::date")
	# The roll-up must hold what the ledger holds.
	n=$(psql_q "SELECT (SELECT count(*) FROM usage_records WHERE tenant_id IS NOT NULL)
		- (SELECT coalesce(sum(requests), 0) FROM usage_daily)")
	[ "$n" = 0 ] || fail "usage_daily counts $n requests fewer than usage_records"
	SIZES=$(psql_q "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid)))
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'usage_records'::regclass")
	SIZES+=" (usage_records with indexes), $(psql_q "SELECT pg_size_pretty(pg_total_relation_size('usage_daily'))") (usage_daily)"
	say "seeded in $SEED_S s; usage_daily $DAILY_ROWS rows ($DAILY_MONTH this month); largest tenant $BIG ($big_n records, $BIG_DAILY usage_daily rows)"

	KEY=$(ctl key issue --tenant tenant-01 -q 2>>"$TMP/ctl.log") &&
		[ -n "$KEY" ] || die "tollctl key issue failed"
	start_mock
	start_gateway
	CHAT_BODY='{"model":"openai-chat","messages":[{"role":"user","content":"Hello, who are you?"}]}'
	[ "$(http_code "$GW_URL/v1/chat/completions" -H "Authorization: Bearer $KEY" \
		-H 'Content-Type: application/json' -d "$CHAT_BODY")" = 200 ] ||
		die "a request through the gateway did not answer 200"
	say "gateway $GW_URL, admin $ADMIN_URL (workers $WORKERS), mock $MOCK_URL"
	LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	say "load average before measuring: $LOAD_BEFORE"

	say "console calls: $REQUESTS timed after $WARMUP each"
	declare -gA MED=()
	: >"$TMP/latency"
	measure "GET /api/live (baseline, from memory)" /api/live "$REQUESTS" base
	measure "GET / (the page)" / "$REQUESTS" page
	measure "GET /console.js" /console.js "$REQUESTS" page
	measure "GET /console.css" /console.css "$REQUESTS" page
	measure "GET /api/session" /api/session "$REQUESTS" page
	measure "GET /api/overview" /api/overview "$REQUESTS" page
	measure "GET /api/tenants" /api/tenants "$REQUESTS" page
	measure "GET /api/tenants/$BIG" "/api/tenants/$BIG" "$REQUESTS" page
	# What a page's load asks, one call after the other: the page, its
	# style and script, the session, then the view's data.
	awk -v a="${MED[/]}" -v b="${MED[/console.css]}" -v c="${MED[/console.js]}" \
		-v d="${MED[/api/session]}" -v o="${MED[/api/overview]}" \
		-v t="${MED[/api/tenants/$BIG]}" -v aim="$AIM_MS" 'BEGIN {
		s = a + b + c + d
		printf "%-44s %4s %10.2f %9s %9s %9s %s\n", "the overview page: all of its calls", "",
			s + o, "", "", "", (s + o < aim ? "yes" : "NO")
		printf "%-44s %4s %10.2f %9s %9s %9s %s\n", "a tenant'"'"'s page: all of its calls", "",
			s + t, "", "", "", (s + t < aim ? "yes" : "NO") }' >>"$TMP/latency"
	measure "GET /api/tenants/$BIG/bill?format=json" \
		"/api/tenants/$BIG/bill?format=json" "$BILL_REQUESTS" apart \
		"$BILL_WARMUP"

	say "GET /api/overview while two bills are in flight"
	BEHIND_MS=
	overview_behind_bills

	say "EXPLAIN (ANALYZE, BUFFERS) of the console's queries"
	: >"$TMP/explain"
	: >"$TMP/scaled"
	if extract_sql; then
		explain overview ""
		explain tenant "$BIG"
		say "the overview on 1, 2 and 4 copies of usage_daily"
		overview_scaled 1
		overview_scaled 2
		overview_scaled 4
	else
		say "could not compile the statements out of src/gateway/console_db.c: no EXPLAIN"
	fi

	say "tollctl bill's statements, one run with their durations logged"
	BILL_STMTS=
	bill_statements

	say "the data plane alone and with the console asked ($HAMMER connections), $ROUNDS rounds"
	dataplane

	say "the roll-up trigger's cost: $TRIGGER_BATCHES batches of $TRIGGER_ROWS rows each way (after 2 warm-ups), rolled back"
	trigger_cost

	stop_gateway

	printf '\n%s, %s workers; PostgreSQL %s (shared_buffers %s); %s CPUs\n' \
		"$("$GATEWAY" -V 2>/dev/null | head -n 1)" "$WORKERS" \
		"$(psql_q "SHOW server_version" | cut -d' ' -f1)" \
		"$PG_SHARED_BUFFERS" "$(nproc 2>/dev/null || echo '?')"
	printf '\nseeded %s records over %s in %s s (%s rows/s, roll-up trigger on), VACUUM ANALYZE %s s\n' \
		"$RECORDS" "$MONTH" "$SEED_S" \
		"$(awk -v n="$RECORDS" -v s="$SEED_S" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')" \
		"$VACUUM_S"
	printf 'usage_daily: %s rows (%s of this month); %s tenants, the largest %s with %s records (%s usage_daily rows) %s\n' \
		"$DAILY_ROWS" "$DAILY_MONTH" "$TENANTS" "$BIG" "$big_n" "$BIG_DAILY" "$DISPLAY_NOTE"
	printf 'on disk: %s\n' "$SIZES"
	printf 'load average: %s at the start, %s before measuring, %s at the end\n' \
		"$LOAD_START" "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"

	printf '\n%-44s %4s %10s %9s %9s %9s %s\n' "console call (curl, bearer token)" n \
		"median ms" "p95 ms" "x live" bytes "< ${AIM_MS} ms"
	cat "$TMP/latency"
	printf '(the bill is loaded on demand, not with the page: it runs tollctl bill, which reads usage_records)\n'
	[ -n "$BEHIND_MS" ] &&
		printf 'GET /api/overview sent while two bills of %s run (the console'"'"'s 2 threads): %s ms\n' \
			"$BIG" "$BEHIND_MS"
	[ -n "$BILL_STMTS" ] &&
		printf 'tollctl bill --tenant %s, its statements over 1 ms: %s\n' "$BIG" "$BILL_STMTS"

	if [ -s "$TMP/explain" ]; then
		printf '\n%-10s %12s %12s   %s\n' "query" "execution ms" "planning ms" \
			"buffers (top node)"
		cat "$TMP/explain"
		printf '(EXPLAIN (ANALYZE, BUFFERS), median of 5 in one session; %s = %s, tenant %s in its time zone)\n' \
			'$1' "$MONTH_DAY" "$BIG"
		if [ -s "$TMP/scaled" ]; then
			printf '\nthe overview query on copies of usage_daily (a temporary table hiding it):\n'
			printf '%-10s %12s %12s %12s\n' copies "as tenants" "month rows" "median ms"
			cat "$TMP/scaled"
		fi
		if [ "${PLANS:-0}" = 1 ]; then
			for b in overview tenant; do
				[ -s "$TMP/$b.plan" ] || continue
				printf '\n%s plan:\n' "$b"
				cat "$TMP/$b.plan"
			done
		fi
	fi

	printf '\ndata plane (wrk, medians of %s rounds) alone and while %s connections ask /api/overview and /api/tenants/%s without a pause:\n' \
		"$ROUNDS" "$HAMMER" "$BIG"
	cat "$TMP/dataplane"

	if [ -n "${T_WITH:-}" ] && [ -n "${T_WITHOUT:-}" ]; then
		printf '\n%-34s %12s %12s %12s %8s\n' "ledger insert, $TRIGGER_ROWS rows" \
			"trigger µs" "no trigger" "trigger adds" "ratio"
		printf '%-34s %12s %12s %12s %8s\n' "" "a row" "µs a row" "µs a row" ""
		awk -v w="$T_WITH" -v o="$T_WITHOUT" -v n="$TRIGGER_ROWS" -v b="$TRIGGER_BATCHES" \
			'BEGIN { printf "%-34s %12.1f %12.1f %12.1f %8.2f\n",
				"median of " b " batches each", w / n, o / n, (w - o) / n, (o > 0 ? w / o : 0) }'
		printf 'µs a row, batch by batch: with %s; without %s\n' \
			"$T_WITH_ALL" "$T_WITHOUT_ALL"
	fi

	exit_if_failed
	printf '\nall console calls and chat requests answered 200; usage_daily holds what usage_records holds\n'
}

main "$@"
