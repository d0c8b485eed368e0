#!/bin/bash
# it_console.sh - the web console (doc/console.md) in a real browser:
# headless Chromium (Debian's chromium), driven by puppeteer-core from
# tests/console/console.test.mjs, against a real tollgated, the mock
# upstream and PostgreSQL. Seeds three tenants (an English, a Chinese and
# a plain name, in three time zones and two currencies), prices, exchange
# rates, a past month of imported usage and a current month of requests
# through the gateway; then, in the browser: logs in with the admin token
# (an HttpOnly cookie), checks that the overview's requests, tokens and
# billed amounts are the ledger's (money as exact strings) and that the
# Chinese name is drawn with a CJK font, issues a key on the tenant page
# and uses it through the gateway, sets a hard token quota there until
# the gateway refuses with 429, revokes the key until the gateway answers
# 401, downloads the CSV bill, watches the live page refresh itself, finds
# those actions on the audit page, and logs in with the read-only token
# (no actions shown, a change refused with 403). The browser runs in
# America/Los_Angeles, so that times shown in the tenants' own zones prove
# the page does not convert them. From the shell: the CSV bill equals
# `tollctl bill --format csv` byte for byte, `tollctl audit --json` lists
# the console's actions, a change without the CSRF token is refused.
#
# Screenshots of each page (overview.png, tenant.png, live.png, audit.png
# and more) are written to $top_builddir/tests/console-screenshots (or
# TG_CONSOLE_SHOTS); with UPDATE_SCREENSHOTS=1 overview.png is also copied
# to doc/console-overview.png, the README's.
#
# puppeteer-core is installed from tests/console/package-lock.json with
#   npm ci --prefix tests/console
# (scripts/test does it). Without Debian's chromium the test is skipped,
# unless CI=true, where it fails; TG_SKIP_CONSOLE=1 skips it.

CONSOLE_DIR=$(cd "$(dirname "$0")" && pwd)/console
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ "${TG_SKIP_CONSOLE:-0}" = 1 ]; then
	echo "# it_console: skipped (TG_SKIP_CONSOLE=1)"
	exit 77
fi
if [ ! -x "$CHROMIUM" ]; then
	if [ "${CI:-}" = true ]; then
		echo "Bail out! $CHROMIUM is not installed: the console test needs Debian's chromium and fonts-noto-cjk (apt-get install chromium fonts-noto-cjk; .ci/run installs them)"
		exit 1
	fi
	echo "# it_console: skipped: no browser at $CHROMIUM (apt-get install chromium fonts-noto-cjk, or set CHROMIUM); under CI=true this fails"
	exit 77
fi

. "$(dirname "$0")/lib.sh"

# puppeteer-core must be installed, at the version package.json pins.
tg_npm_pinned "$CONSOLE_DIR" TG_SKIP_CONSOLE

SHOTS=${TG_CONSOLE_SHOTS:-$top_builddir/tests/console-screenshots}
mkdir -p "$SHOTS" || tg_bail "cannot create $SHOTS"
rm -f "$SHOTS"/*.png

# ---------------------------------------------------------------------------
# Helpers.


# tenant_add NAME CURRENCY TZ [DISPLAY_NAME] : a tenant, with its display
# name set by tollctl.
tenant_add() {
	local name=$1 cur=$2 tz=$3 dn=${4:-} out
	local -a args=(tenant add "$name" --currency "$cur" --tz "$tz")
	[ -n "$dn" ] && args+=(--display-name "$dn")
	out=$(tg_ctl "${args[@]}" 2>&1) ||
		tg_bail "tollctl ${args[*]} failed: $out"
	tg_ok "tollctl tenant add $name${dn:+ --display-name $dn}"
}

# An amount of nano-units summed in SQL, as the API writes money: the
# exact decimal with nine decimals.
money_sql() {
	echo "((coalesce($1, 0)::numeric / 1000000000)::numeric(40,9))::text"
}

# expected MONTH : the ledger's figures of every tenant for MONTH, each by
# its own calendar, as a JSON object by tenant name: requests, refused,
# tokens, spend per price currency (list, free, discount, billed),
# billed_tenant, and the tenant's currency, tz and display_name.
expected() {
	local m=$1
	tg_psql "WITH r AS (
		SELECT t.id AS tid, u.*
		FROM tenants t JOIN usage_records u ON u.tenant_id = t.id
		WHERE u.ts >= ('$m-01'::timestamp AT TIME ZONE coalesce(t.tz, 'UTC'))
		  AND u.ts < (('$m-01'::timestamp + interval '1 month')
			      AT TIME ZONE coalesce(t.tz, 'UTC'))),
	c AS (
		SELECT tid, currency, json_build_object('currency', currency,
			'list', $(money_sql 'sum(list_nanos)'),
			'free', $(money_sql 'sum(free_nanos)'),
			'discount', $(money_sql 'sum(discount_nanos)'),
			'billed', $(money_sql 'sum(billed_nanos)')) AS o
		FROM r WHERE currency IS NOT NULL GROUP BY tid, currency),
	sp AS (
		SELECT tid, json_agg(o ORDER BY currency) AS spend
		FROM c GROUP BY tid),
	tot AS (
		SELECT tid, count(*) AS requests,
			count(*) FILTER (WHERE refusal IS NOT NULL) AS refused,
			sum(prompt_tokens + completion_tokens) AS tokens,
			sum(billed_tenant_nanos) AS billed_tenant,
			count(*) FILTER (WHERE currency IS NOT NULL
					 AND billed_tenant_nanos IS NULL) AS unconverted
		FROM r GROUP BY tid)
	SELECT json_object_agg(t.name, json_build_object(
		'display_name', t.display_name, 'currency', t.currency,
		'tz', t.tz,
		'requests', coalesce(tot.requests, 0),
		'refused', coalesce(tot.refused, 0),
		'tokens', coalesce(tot.tokens, 0),
		'spend', coalesce(sp.spend, '[]'),
		'billed_tenant', $(money_sql tot.billed_tenant),
		'unconverted', coalesce(tot.unconverted, 0)) ORDER BY t.name)
	FROM tenants t LEFT JOIN tot ON tot.tid = t.id
	LEFT JOIN sp ON sp.tid = t.id"
}

# The API as a script calls it: GET PATH with a bearer token (default the
# admin's); the body goes to $TG_TMP/api.json, the status is printed.
api_get() {
	curl -sS -o "$TG_TMP/api.json" -w '%{http_code}' --max-time 30 \
		-H "Authorization: Bearer ${2:-$ADMIN_TOKEN}" "$TG_ADMIN_URL$1"
}

# chat KEY MODEL DESC : one chat request that must be served.
chat() {
	tg_http POST /v1/chat/completions "$1" "$(tg_chat_body "$2")"
	[ "$TG_STATUS" = 200 ] || tg_not_ok "$3: 200" \
		"got $TG_STATUS: $(head -c 300 "$TG_BODY")"
	printf '%s\n' "$TG_RID" >>"$TG_TMP/rids"
}

# ---------------------------------------------------------------------------
# PostgreSQL, the mock and a gateway with an admin and a read-only token.

tg_start_pg
tg_start_mock

ADMIN_TOKEN=tg-admin-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
RO_TOKEN=tg-finance-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
printf '%s\n' "$ADMIN_TOKEN" >"$TG_TMP/admin.token"
# The read-only token as its digest: the server need not hold it.
printf 'sha256:%s\n' "$(printf %s "$RO_TOKEN" | sha256sum | cut -d' ' -f1)" \
	>"$TG_TMP/readonly.token"
chmod 600 "$TG_TMP/admin.token" "$TG_TMP/readonly.token"
# lib.sh's /readyz and /metrics calls send it.
TG_ADMIN_TOKEN=$ADMIN_TOKEN

tg_start_gateway "admin_token_file = $TG_TMP/admin.token
admin_readonly_token_file = $TG_TMP/readonly.token"

# ---------------------------------------------------------------------------
# Tenants, prices, exchange rates.

CUR=$(date -u +%Y-%m)
PAST=$(date -u -d "$CUR-01 -1 month" +%Y-%m)
NEXT=$(date -u -d "$CUR-01 +1 month" +%Y-%m)
PRICES_FROM=$(date -u -d "$CUR-01 -2 month" +%Y-%m-%d)
PAST_DAYS=$(date -u -d "$CUR-01 -1 day" +%d)
CN_NAME=北京研发中心
EN_NAME='Acme Corporation'

tenant_add acme USD Europe/Berlin "$EN_NAME"
tenant_add bj-rd CNY Asia/Shanghai "$CN_NAME"
tenant_add labs USD UTC

tg_ctl_ok "list price of openai-chat (USD)" price set --provider openai \
	--model openai-chat --input 2.5 --cached 1.25 --output 10 \
	--currency USD --from "$PRICES_FROM"
tg_ctl_ok "list price of zhipu-chat (CNY)" price set --provider zhipu \
	--model zhipu-chat --input 5 --output 5 --currency CNY \
	--from "$PRICES_FROM"
tg_ctl_ok "list price of deepseek-chat (CNY)" price set --provider deepseek \
	--model deepseek-chat --input 2 --cached 0.5 --output 8 \
	--currency CNY --from "$PRICES_FROM"
for m in "$PAST" "$CUR" "$NEXT"; do
	tg_ctl_ok "exchange rates for $m" fx set --month "$m" USD CNY 7.1234
	tg_ctl fx set --month "$m" CNY USD 0.140381 >/dev/null ||
		tg_not_ok "fx set --month $m CNY USD"
done

# ---------------------------------------------------------------------------
# The past month: imported records on every day, a working week's shape.

awk -v m="$PAST" -v days="$PAST_DAYS" '
function rec(id, ts, tenant, prov, model, p, c, cached) {
	printf "{\"request_id\":\"%s\",\"ts\":\"%s\",\"tenant\":\"%s\",", id, ts, tenant
	printf "\"provider\":\"%s\",\"upstream_model\":\"%s\",", prov, model
	printf "\"requested_model\":\"%s\",\"prompt_tokens\":%d,", model, p
	printf "\"completion_tokens\":%d,\"cached_tokens\":%d,", c, cached
	printf "\"latency_ms\":%d}\n", 300 + (p % 700)
}
BEGIN {
	for (d = 1; d <= days; d++) {
		# 1 and 7 are Sunday and Saturday: quieter.
		cmd = sprintf("date -u -d %s-%02d +%%u", m, d)
		cmd | getline wd
		close(cmd)
		quiet = wd >= 6
		n = quiet ? 2 + d % 3 : 9 + (d * 5) % 7
		for (i = 0; i < n; i++) {
			ts = sprintf("%s-%02dT%02d:%02d:00Z", m, d, 1 + i % 9, (i * 7) % 60)
			rec(sprintf("imp-bj-%02d-%02d", d, i), ts, "bj-rd", "zhipu",
				"zhipu-chat", 24000 + (d * 131 + i * 57) % 9000,
				2600 + (d * 17 + i * 29) % 2400, 0)
			if (i % 3 == 0)
				rec(sprintf("imp-bj-oa-%02d-%02d", d, i), ts, "bj-rd",
					"openai", "openai-chat", 18000 + (d * 97) % 6000,
					1400 + (i * 31) % 900, 8192)
		}
		n = quiet ? 1 + d % 2 : 6 + (d * 3) % 5
		for (i = 0; i < n; i++) {
			ts = sprintf("%s-%02dT%02d:%02d:30Z", m, d, 2 + i % 8, (i * 11) % 60)
			rec(sprintf("imp-acme-%02d-%02d", d, i), ts, "acme", "openai",
				"openai-chat", 36000 + (d * 211 + i * 83) % 20000,
				3000 + (d * 41 + i * 13) % 4000, 16384 * (i % 2))
		}
		n = quiet ? 0 : 1 + d % 3
		for (i = 0; i < n; i++) {
			ts = sprintf("%s-%02dT%02d:15:00Z", m, d, 3 + i)
			rec(sprintf("imp-labs-%02d-%02d", d, i), ts, "labs", "deepseek",
				"deepseek-chat", 12000 + (d * 53) % 6000, 1500 + (d * 7) % 800,
				4096)
		}
	}
}' >"$TG_TMP/past.jsonl"
tg_ctl_ok "usage import of $(wc -l <"$TG_TMP/past.jsonl") records for $PAST" \
	usage import "$TG_TMP/past.jsonl"

# ---------------------------------------------------------------------------
# The current month: requests through the gateway.

ACME_KEY=$(tg_issue_key acme --name app --models 'openai-*') ||
	tg_bail "cannot issue a key for acme"
BJ_KEY=$(tg_issue_key bj-rd --name backend) ||
	tg_bail "cannot issue a key for bj-rd"
LABS_KEY=$(tg_issue_key labs) || tg_bail "cannot issue a key for labs"
: >"$TG_TMP/rids"
for i in 1 2 3 4 5 6; do
	chat "$ACME_KEY" openai-chat "acme request $i"
done
for i in 1 2 3 4; do
	chat "$BJ_KEY" zhipu-chat "bj-rd request $i"
done
chat "$BJ_KEY" openai-chat "bj-rd openai request 1"
chat "$BJ_KEY" openai-chat "bj-rd openai request 2"
chat "$LABS_KEY" deepseek-chat "labs request 1"
chat "$LABS_KEY" deepseek-chat "labs request 2"
# A refusal: acme's key may use openai-* only.
tg_http POST /v1/chat/completions "$ACME_KEY" "$(tg_chat_body zhipu-chat)"
assert_eq "acme's key is refused a model it may not use" 403 "$TG_STATUS"
printf '%s\n' "$TG_RID" >>"$TG_TMP/rids"
tg_rid_table console_rids "$TG_TMP/rids" || tg_bail "cannot load the request ids"
tg_wait_rids console_rids 30 ||
	tg_not_ok "the current month's requests are in the ledger within 30 s" \
		"$TG_RIDS_FOUND of $(wc -l <"$TG_TMP/rids")"

EXP_PAST=$(expected "$PAST")
[ -n "$EXP_PAST" ] || tg_bail "cannot compute the ledger's figures for $PAST"
EXP_CUR=$(expected "$CUR")
[ -n "$EXP_CUR" ] || tg_bail "cannot compute the ledger's figures for $CUR"
printf '%s\n' "$EXP_PAST" >"$TG_TMP/expected-past.json"
assert_json "the ledger has billed usage of every tenant in $PAST" \
	'[.[] | .requests > 0 and (.spend | length) > 0] | all' \
	"$TG_TMP/expected-past.json"

# ---------------------------------------------------------------------------
# The API as a script uses it: the same numbers, the access rules.

# api_overview_matches MONTH EXPECTED_JSON : /api/overview's tenants have
# the ledger's figures, money as exact strings.
api_overview_matches() {
	local m=$1 want=$2 st
	st=$(api_get "/api/overview?month=$m")
	assert_eq "GET /api/overview?month=$m with the admin token: 200" 200 "$st"
	assert_eq "/api/overview?month=$m: every tenant's figures are the ledger's" \
		"$(jq -S -c . <<<"$want")" \
		"$(jq -S -c '[.tenants[] | {key: .name, value: {display_name,
			currency, tz, requests, refused, tokens, unconverted,
			billed_tenant, spend: [.spend[] | {currency, list, free,
			discount, billed}]}}] | from_entries' "$TG_TMP/api.json" 2>&1)"
}
api_overview_matches "$PAST" "$EXP_PAST"
api_overview_matches "$CUR" "$EXP_CUR"

assert_eq "GET /api/overview without a token: 401" 401 \
	"$(curl -sS -o /dev/null -w '%{http_code}' "$TG_ADMIN_URL/api/overview")"
assert_eq "GET /api/overview with a wrong token: 401" 401 "$(api_get /api/overview wrong-token)"
assert_eq "GET /api/overview with the read-only token: 200" 200 "$(api_get /api/overview "$RO_TOKEN")"
st=$(curl -sS -o "$TG_TMP/api.json" -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $RO_TOKEN" -H 'Content-Type: application/json' \
	--data '{"tenant":"labs","name":"nope"}' "$TG_ADMIN_URL/api/keys")
assert_eq "POST /api/keys with the read-only token: 403" 403 "$st"
assert_eq "...code read_only" read_only "$(jq -r .error.code "$TG_TMP/api.json" 2>&1)"

# ---------------------------------------------------------------------------
# The browser.

# The bill totals the tenant page shows, as tollctl computes them.
PAST_BILL_TOTAL=$(tg_ctl bill --month "$PAST" --tenant bj-rd --format json |
	jq -r .total)

# A gateway built with the sanitizers answers slower: longer waits.
SLOW=false
grep -q -a -m 1 __asan_init "$TG_GATEWAY_BIN" && SLOW=true
jq -n \
	--arg console "$TG_ADMIN_URL/" --arg gateway "$TG_URL" \
	--arg admin "$ADMIN_TOKEN" --arg readonly "$RO_TOKEN" \
	--arg shots "$SHOTS" --arg downloads "$TG_TMP/downloads" \
	--arg chromium "$CHROMIUM" --arg past "$PAST" --arg cur "$CUR" \
	--arg acme_key "$ACME_KEY" --arg bill_total "$PAST_BILL_TOTAL" \
	--arg cn_name "$CN_NAME" --arg en_name "$EN_NAME" \
	--argjson exp_past "$EXP_PAST" --argjson exp_cur "$EXP_CUR" \
	--argjson slow "$SLOW" \
	'{console: $console, gateway: $gateway, admin_token: $admin,
	  readonly_token: $readonly, shots: $shots, downloads: $downloads,
	  chromium: $chromium, months: {past: $past, current: $cur},
	  expected: {($past): $exp_past, ($cur): $exp_cur},
	  tenant: "bj-rd", tenant_tz: "Asia/Shanghai", tenant_tz_offset: "+08:00",
	  tenant_model: "zhipu-chat",
	  cn_name: $cn_name, en_name: $en_name, acme_key: $acme_key,
	  acme_model: "openai-chat", past_bill_total: $bill_total,
	  browser_tz: "America/Los_Angeles", slow: $slow}' \
	>"$TG_TMP/console.json" || tg_bail "cannot write the browser's arguments"

mkdir -p "$TG_TMP/downloads"
tg_log "driving Chromium (screenshots in $SHOTS)"
START=$SECONDS
timeout 240 node "$CONSOLE_DIR/console.test.mjs" "$TG_TMP/console.json" \
	>"$TG_TMP/browser.out" 2>"$TG_TMP/browser.err"
rc=$?
tg_log "the browser's part took $((SECONDS - START)) s"

# Each line the driver printed is a check: {"ok", "desc", "detail"}; the
# last one {"done": true, "result": {…}}.
while IFS= read -r line; do
	desc=$(jq -r '.desc // empty' <<<"$line" 2>/dev/null)
	[ -n "$desc" ] || continue
	if [ "$(jq -r .ok <<<"$line")" = true ]; then
		tg_ok "browser: $desc"
	else
		mapfile -t detail < <(jq -r '.detail[]? | tostring' <<<"$line" | cut -c 1-400)
		tg_not_ok "browser: $desc" "${detail[@]}"
	fi
done <"$TG_TMP/browser.out"
RESULT=$(jq -c 'select(.done) | .result' "$TG_TMP/browser.out" 2>/dev/null | tail -n 1)
if [ "$rc" = 0 ] && [ -n "$RESULT" ]; then
	tg_ok "the browser's script ran to its end"
else
	tg_not_ok "the browser's script ran to its end" "node exited $rc" \
		"$(tail -n 15 "$TG_TMP/browser.err")"
	RESULT='{}'
fi
res() { jq -r "$1 // empty" <<<"$RESULT"; }

# The README's screenshot, when asked for.
if [ "${UPDATE_SCREENSHOTS:-0}" = 1 ]; then
	if [ -s "$SHOTS/overview.png" ] &&
		cp "$SHOTS/overview.png" "$top_srcdir/doc/console-overview.png"; then
		tg_log "updated $top_srcdir/doc/console-overview.png"
	else
		tg_not_ok "UPDATE_SCREENSHOTS=1: doc/console-overview.png updated" \
			"no $SHOTS/overview.png"
	fi
fi

# ---------------------------------------------------------------------------
# What the browser did, seen from the shell.

KEY_ID=$(res .key_id)
KEY_PREFIX=$(res .key_prefix)
QUOTA_ID=$(res .quota_id)
REFUSED_RID=$(res .refused_request_id)

if [ -n "$REFUSED_RID" ] && [ -n "$QUOTA_ID" ]; then
	tg_check_row "the request the console's quota refused is recorded as refused by it" \
		"$REFUSED_RID" "status, refusal" "429|quota:$QUOTA_ID"
else
	tg_not_ok "the request the console's quota refused is recorded as refused by it" \
		"no request id or quota id from the browser: $RESULT"
fi
assert_eq "the key issued in the browser is revoked in the database" t \
	"$(tg_psql "SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = ${KEY_ID:-0}
		AND prefix = $(tg_sql_quote "$KEY_PREFIX")")"

# The CSV bill the browser downloaded is tollctl's, byte for byte.
tg_ctl bill --month "$PAST" --tenant bj-rd --format csv >"$TG_TMP/bill.csv" ||
	tg_not_ok "tollctl bill --month $PAST --tenant bj-rd --format csv"
got=$(res .csv_file)
if [ -n "$got" ] && [ -f "$got" ]; then
	assert_eq "the downloaded bill is named for its tenant and month" \
		"bj-rd-$PAST.csv" "${got##*/}"
	assert_file_eq "the CSV bill downloaded from the tenant page is tollctl bill --format csv" \
		"$TG_TMP/bill.csv" "$got"
else
	tg_not_ok "the CSV bill downloaded from the tenant page is tollctl bill --format csv" \
		"no downloaded file (${got:-none}): $(ls "$TG_TMP/downloads" 2>&1)"
fi

# tollctl audit lists what the console did, as the console's admin.
if tg_ctl audit --json >"$TG_TMP/audit.json" 2>"$TG_TMP/audit.err"; then
	tg_ok "tollctl audit --json"
else
	tg_not_ok "tollctl audit --json" "$(head -n 5 "$TG_TMP/audit.err")"
fi
ACTOR=console:admin@127.0.0.1
for what in "key issue|api_keys|${KEY_ID:-0}" "quota set|quotas|${QUOTA_ID:-0}" \
	"key revoke|api_keys|${KEY_ID:-0}"; do
	IFS='|' read -r action object id <<<"$what"
	assert_eq "tollctl audit lists the console's $action (#$id) by $ACTOR" 1 \
		"$(jq --arg a "$action" --arg o "$object" --argjson i "$id" \
			--arg who "$ACTOR" '[.[] | select(.action == $a and
			.object == $o and .object_id == $i and .actor == $who)]
			| length' "$TG_TMP/audit.json" 2>&1)"
done

# ---------------------------------------------------------------------------
# The session cookie and CSRF, with curl.

JAR=$TG_TMP/cookies
st=$(curl -sS -o "$TG_TMP/api.json" -D "$TG_TMP/login.hdr" -w '%{http_code}' \
	-c "$JAR" -H 'Content-Type: application/json' \
	--data "$(jq -n -c --arg t "$ADMIN_TOKEN" '{token: $t}')" \
	"$TG_ADMIN_URL/api/login")
assert_eq "POST /api/login with the admin token: 200" 200 "$st"
cookie=$(grep -i '^set-cookie: tg_console=' "$TG_TMP/login.hdr" | tr -d '\r')
for attr in HttpOnly SameSite=Strict Path=/; do
	assert_match "the session cookie is $attr" "; *$attr(;|$)" "$cookie"
done
st=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
	--data '{"token":"not-the-token"}' "$TG_ADMIN_URL/api/login")
assert_eq "POST /api/login with a wrong token: 401" 401 "$st"

curl -sS -o "$TG_TMP/session.json" -b "$JAR" "$TG_ADMIN_URL/api/session"
CSRF=$(jq -r .csrf "$TG_TMP/session.json" 2>/dev/null)
assert_eq "/api/session with the cookie: the admin, from the loopback address" \
	"admin $ACTOR" "$(jq -r '"\(.role) \(.actor)"' "$TG_TMP/session.json" 2>&1)"

# post_keys DESC STATUS [CURL_ARGS...] : POST /api/keys with the cookie.
post_keys() {
	local desc=$1 want=$2 st
	shift 2
	st=$(curl -sS -o "$TG_TMP/api.json" -w '%{http_code}' -b "$JAR" "$@" \
		"$TG_ADMIN_URL/api/keys")
	assert_eq "$desc: $want" "$want" "$st"
}
KEYS_BEFORE=$(tg_psql "SELECT count(*) FROM api_keys")
post_keys "POST /api/keys with the admin cookie and no X-CSRF-Token" 403 \
	-H 'Content-Type: application/json' --data '{"tenant":"labs","name":"csrf"}'
assert_eq "...code csrf_refused" csrf_refused "$(jq -r .error.code "$TG_TMP/api.json" 2>&1)"
post_keys "POST /api/keys with the admin cookie and a wrong X-CSRF-Token" 403 \
	-H 'Content-Type: application/json' -H 'X-CSRF-Token: 0123456789abcdef' \
	--data '{"tenant":"labs","name":"csrf"}'
post_keys "POST /api/keys with the cookie and the CSRF token from another Origin" 403 \
	-H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" \
	-H 'Origin: http://evil.example' --data '{"tenant":"labs","name":"csrf"}'
post_keys "POST /api/keys as a form (text/plain) with the cookie and the CSRF token" 403 \
	-H 'Content-Type: text/plain' -H "X-CSRF-Token: $CSRF" \
	--data '{"tenant":"labs","name":"csrf"}'
assert_eq "...none of them issued a key" "$KEYS_BEFORE" \
	"$(tg_psql "SELECT count(*) FROM api_keys")"
post_keys "POST /api/keys with the cookie and its X-CSRF-Token" 200 \
	-H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" \
	-H "Origin: $TG_ADMIN_URL" --data '{"tenant":"labs","name":"csrf-ok"}'
assert_json "...answers the new key" '.ok == true and (.result.key | startswith("tg-"))' \
	"$TG_TMP/api.json"

tg_done
