#!/bin/bash
# it_audit.sh - what the web console reads, against a real PostgreSQL: the
# audit trail of tollctl's changes (who, which verb, the row before and
# after, never a key's hash), tenants' display names in any script, and
# usage_daily, the ledger's roll-up per tenant and day in the tenant's
# time zone, which must equal the ledger summed the same way after real
# traffic, replayed imports and hand corrections.

. "$(dirname "$0")/lib.sh"

ME="tollctl:$(id -un)"
CONSOLE="console:admin@127.0.0.1"

# ok DESC ARGS... : tollctl ARGS succeeds; its output is in $OUT.
ok() {
	local desc=$1
	shift
	if OUT=$(tg_ctl "$@" 2>&1); then tg_ok "$desc"; else
		tg_not_ok "$desc" "tollctl $* failed:" "$OUT"; fi
}

# audit_row SQL_CONDITION COLUMNS : the newest audit row matching, '|'
# separated.
audit_row() {
	tg_psql "SELECT $2 FROM audit_log WHERE $1 ORDER BY id DESC LIMIT 1"
}

# The usage_daily rows that differ from the ledger summed per tenant,
# day in the tenant's time zone, provider, requested model, price
# currency and refusal, in COLUMNS (each an aggregate over u).
DAILY_KEY="u.tenant_id, (u.ts AT TIME ZONE t.tz)::date,
	CASE WHEN u.refusal IS NULL THEN coalesce(u.provider, '') ELSE '' END,
	CASE WHEN u.refusal IS NULL THEN coalesce(u.requested_model, '')
	ELSE '' END, coalesce(u.currency, ''), coalesce(u.refusal, '')"
SUMS="count(*), count(*) FILTER (WHERE u.status >= 400),
	count(*) FILTER (WHERE u.usage_source = 'estimated'),
	sum(u.prompt_tokens), sum(u.completion_tokens), sum(u.cached_tokens),
	sum(u.cache_write_tokens), sum(u.reasoning_tokens),
	coalesce(sum(u.prompt_tokens + u.completion_tokens)
		FILTER (WHERE u.usage_source = 'estimated'), 0),
	sum(u.list_nanos), sum(u.free_nanos), sum(u.discount_nanos),
	sum(u.billed_nanos), coalesce(sum(u.billed_tenant_nanos), 0),
	count(*) FILTER (WHERE u.currency IS NOT NULL
		AND u.billed_tenant_nanos IS NULL),
	count(*) FILTER (WHERE u.unpriced)"
DAILY_SUMS="d.requests, d.errors, d.estimated_requests, d.prompt_tokens,
	d.completion_tokens, d.cached_tokens, d.cache_write_tokens,
	d.reasoning_tokens, d.estimated_tokens, d.list_nanos, d.free_nanos,
	d.discount_nanos, d.billed_nanos, d.billed_tenant_nanos, d.unconverted,
	d.unpriced"

# daily_diff [last_ts] : the count of rows in which usage_daily and the
# ledger differ (with last_ts: the latest record of each group as well).
daily_diff() {
	local u_last='' d_last=''
	if [ "${1:-}" = last_ts ]; then
		u_last=", max(u.ts)"
		d_last=", d.last_ts"
	fi
	tg_psql "WITH l AS (SELECT $DAILY_KEY, $SUMS $u_last
			FROM usage_records u JOIN tenants t ON t.id = u.tenant_id
			GROUP BY 1, 2, 3, 4, 5, 6),
		d AS (SELECT d.tenant_id, d.day, d.provider, d.model,
			d.currency, d.refusal, $DAILY_SUMS $d_last
			FROM usage_daily d)
		SELECT (SELECT count(*) FROM (TABLE l EXCEPT TABLE d) x)
			+ (SELECT count(*) FROM (TABLE d EXCEPT TABLE l) y)"
}

# The keys whose api_key_last_used is not their latest record.
LAST_USED_DIFF="SELECT count(*) FROM (SELECT key_id, max(ts) AS ts
	FROM usage_records WHERE key_id IS NOT NULL GROUP BY key_id) m
	FULL JOIN api_key_last_used l USING (key_id)
	WHERE l.last_used_at IS DISTINCT FROM m.ts"

tg_start_pg
tg_start_mock
tg_start_gateway

# ---------------------------------------------------------------------------
# Tenants with display names.

ok "tenant add with a Chinese display name" tenant add acme --currency CNY \
	--tz Asia/Shanghai --display-name 北京研发中心
assert_eq "display name stored as given" "北京研发中心" \
	"$(tg_psql "SELECT display_name FROM tenants WHERE name = 'acme'")"
ok "tenant add with a mixed display name" tenant add globex \
	--display-name "Globex 中国 Ltd"
ok "tenant list" tenant list
# Wide characters take two columns: 北京研发中心 is 12 wide, the column 15
# (Globex 中国 Ltd), so three spaces pad it before the two between columns.
assert_match "tenant list aligns CJK display names by their width" \
	'^ *[0-9]+  acme    北京研发中心     CNY       Asia/Shanghai  active' \
	"$(grep acme <<<"$OUT")"
assert_match "tenant list: the header lines up with the rows" \
	'^ID  NAME    DISPLAY NAME     CURRENCY  TZ' "$(head -n 1 <<<"$OUT")"
ok "tenant show --json" --json tenant show acme
assert_eq "tenant show --json: display_name" "北京研发中心" \
	"$(jq -r .display_name <<<"$OUT")"
ok "tenant rename" tenant rename globex --display-name "环球 Globex"
assert_match "tenant rename prints the new display name" \
	'display:     环球 Globex' "$OUT"
out=$(tg_ctl tenant rename globex --display-name "$(printf 'a\tb')" 2>&1)
assert_eq "a display name with a control character is refused (exit 1)" \
	"1|tollctl: invalid --display-name: up to 200 characters, no control characters" \
	"$?|$out"
out=$(tg_ctl tenant rename globex --display-name \
	"$(printf '中%.0s' $(seq 201))" 2>&1)
assert_eq "a display name of 201 characters is refused" 1 "$?"
ok "tenant rename to nothing" --json tenant rename globex --display-name ""
assert_eq "an empty display name removes it" null \
	"$(jq -r .display_name <<<"$OUT")"

assert_eq "tenant add: audited with its actor, verb and display name" \
	"$ME|tenant add|tenants|北京研发中心|t" \
	"$(audit_row "object = 'tenants' AND after->>'name' = 'acme'" \
		"actor, action, object, after->>'display_name',
		before IS NULL")"
assert_eq "tenant rename: before and after" \
	"tenant rename|Globex 中国 Ltd|环球 Globex" \
	"$(audit_row "action = 'tenant rename'
		AND after->>'display_name' IS NOT NULL" \
		"action, before->>'display_name', after->>'display_name'")"

# An update that changes nothing leaves no row.
ok "tenant disable" tenant disable globex
ok "tenant disable again" tenant disable globex
assert_eq "disabling twice: one audit row" 1 \
	"$(tg_psql "SELECT count(*) FROM audit_log
		WHERE action = 'tenant disable'")"
ok "tenant enable" tenant enable globex

# ---------------------------------------------------------------------------
# Keys, quotas, rate limits and promotions, by tollctl and "the console".

KEY=$(TOLLGATE_ACTOR=$CONSOLE tg_issue_key acme --name ci)
assert_match "key issue as the console" '^tg-' "$KEY"
KEY_ID=$(tg_psql "SELECT id FROM api_keys WHERE name = 'ci'")
assert_eq "key issue: actor from TOLLGATE_ACTOR" \
	"$CONSOLE|key issue|api_keys|$KEY_ID|${KEY:0:10}" \
	"$(audit_row "object = 'api_keys' AND before IS NULL" \
		"actor, action, object, object_id, after->>'prefix'")"
ok "key revoke" key revoke "$KEY_ID"
assert_eq "key revoke: revoked_at from null to a time, actor tollctl" \
	"$ME|key revoke|t|t" \
	"$(audit_row "action = 'key revoke'" "actor, action,
		before->'revoked_at' = 'null', after->>'revoked_at' IS NOT NULL")"
KEY=$(tg_issue_key acme --name traffic)
KEY2=$(tg_issue_key acme --name openai-only --models 'openai-*')
GKEY=$(tg_issue_key globex --name traffic)

ok "quota set" quota set --tenant acme --period month --tokens 1M
TOLLGATE_ACTOR=$CONSOLE ok "quota set again, as the console" quota set \
	--tenant acme --period month --tokens 2M
assert_eq "quota replaced: the old and the new token_limit" \
	"$CONSOLE|quota set|quotas|1000000|2000000" \
	"$(audit_row "object = 'quotas' AND before IS NOT NULL" \
		"actor, action, object, before->>'token_limit',
		after->>'token_limit'")"
Q_ID=$(tg_psql "SELECT id FROM quotas")
ok "quota clear" quota clear "$Q_ID"
assert_eq "quota clear: the row before, none after" \
	"quota clear|$Q_ID|2000000|t" \
	"$(audit_row "object = 'quotas'" "action, object_id,
		before->>'token_limit', after IS NULL")"
ok "quota set with a spend limit" quota set --tenant acme --period day \
	--spend 19.99
assert_eq "a spend limit is kept as exact text, its times in UTC" \
	'string|"19.99"|t' \
	"$(audit_row "object = 'quotas'" "jsonb_typeof(after->'spend_limit'),
		after->'spend_limit', after->>'created_at' LIKE '%+00:00'")"
ok "limit set" limit set --tenant acme --rpm 600
ok "limit clear" limit clear --tenant acme
assert_eq "limit set and clear: two rows with the rpm" \
	"limit set||600,limit clear|600|" \
	"$(tg_psql "SELECT string_agg(action || '|' ||
		coalesce(before->>'rpm', '') || '|' ||
		coalesce(after->>'rpm', ''), ',' ORDER BY id)
		FROM audit_log WHERE object = 'rate_limits'")"
ok "promo add" promo add --name spring --free-tokens 1M --tenant acme \
	--from 2026-01-01 --until 2099-01-01
ok "promo end" promo end spring
assert_eq "promo add and end: created, then ended_at set" \
	"promo add|true|promo end|true" \
	"$(tg_psql "SELECT string_agg(action || '|' || CASE action
		WHEN 'promo add' THEN (after->>'ended_at' IS NULL)::text
		ELSE (after->>'ended_at' IS NOT NULL)::text END, '|'
		ORDER BY id) FROM audit_log WHERE object = 'promotions'")"

# A change made in SQL names the database user and the statement's kind.
tg_psql "UPDATE rate_limits SET rpm = 1" >/dev/null
tg_psql "UPDATE tenants SET currency = 'EUR' WHERE name = 'globex'"
assert_eq "a change in SQL: the database user, 'update'" \
	"postgres|update|USD|EUR" \
	"$(audit_row "object = 'tenants'" "actor, action,
		before->>'currency', after->>'currency'")"

# No key hash anywhere in the audit.
assert_eq "no key hash in audit_log" 0 \
	"$(tg_psql "SELECT count(*) FROM audit_log a, api_keys k
		WHERE a.before::text LIKE '%' || k.hash || '%'
		OR a.after::text LIKE '%' || k.hash || '%'
		OR a.before ? 'hash' OR a.after ? 'hash'")"

# tollctl audit.
ok "audit --json" --json audit
printf '%s\n' "$OUT" >"$TG_TMP/audit.json"
assert_json "audit --json: every row, newest first, with its members" \
	"length == $(tg_psql "SELECT count(*) FROM audit_log") and
	 (map(.id) == (map(.id) | sort | reverse)) and
	 all(.[]; has(\"id\") and has(\"at\") and has(\"actor\") and
	     has(\"action\") and has(\"object\") and has(\"object_id\") and
	     has(\"tenant\") and has(\"before\") and has(\"after\"))" \
	"$TG_TMP/audit.json"
assert_json "audit --json: the replaced quota embeds its rows as JSON" \
	"[.[] | select(.action == \"quota set\" and .before != null)][0] |
	 .before.token_limit == 1000000 and .after.token_limit == 2000000
	 and .tenant == \"acme\" and .actor == \"$CONSOLE\"" \
	"$TG_TMP/audit.json"
assert_json "audit --json: times in UTC" \
	'all(.[]; .at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"))' \
	"$TG_TMP/audit.json"
ok "audit --tenant globex --json" --json audit --tenant globex
assert_eq "audit --tenant: only that tenant's rows" \
	"$(tg_psql "SELECT count(*) FROM audit_log a JOIN tenants t
		ON t.id = a.tenant_id WHERE t.name = 'globex'")|true" \
	"$(jq -r 'length, all(.[]; .tenant == "globex")' <<<"$OUT" |
		paste -sd '|')"
ok "audit --limit 3" --json audit --limit 3
assert_eq "audit --limit 3: the three newest" \
	"$(tg_psql "SELECT string_agg(id::text, ',' ORDER BY id DESC)
		FROM (SELECT id FROM audit_log ORDER BY id DESC LIMIT 3) x")" \
	"$(jq -r 'map(.id) | join(",")' <<<"$OUT")"
ok "audit --since a date to come" --json audit --since 2099-01-01
assert_eq "audit --since: nothing after it" 0 "$(jq length <<<"$OUT")"
ok "audit (table)" audit --tenant acme
assert_match "audit table: its columns" \
	'^ID +AT +ACTOR +ACTION +OBJECT +TENANT +CHANGE$' \
	"$(head -n 1 <<<"$OUT")"
assert_true "audit table: a replaced quota shows the change" \
	grep -q 'quota set  *quotas  *acme  *token_limit 1000000 -> 2000000' \
	<<<"$OUT"
for bad in 0 1001 ten; do
	out=$(tg_ctl audit --limit "$bad" 2>&1)
	assert_eq "audit --limit $bad is refused (exit 1)" 1 "$?"
done

# ---------------------------------------------------------------------------
# usage_daily equals the ledger.

MONTH_UTC=$(date -u +%Y-%m)
MONTH_SH=$(TZ=Asia/Shanghai date +%Y-%m)
ok "price set for the traffic" price set --provider openai \
	--model openai-chat --input 2.5 --output 10 --currency USD \
	--from 2020-01-01
for m in $(printf '%s\n' "$MONTH_UTC" "$MONTH_SH" | sort -u); do
	ok "fx set for $m" fx set --month "$m" USD CNY 7.1
done

# Traffic through the gateway: served, priced and unpriced, and refused.
for _ in 1 2 3; do
	for model in openai-chat deepseek-chat; do
		tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body "$model")"
		[ "$TG_STATUS" = 200 ] || tg_not_ok "$model answers 200" \
			"got $TG_STATUS: $(head -c 300 "$TG_BODY")"
	done
	tg_http POST /v1/chat/completions "$GKEY" "$(tg_chat_body openai-chat)"
done
tg_http POST /v1/chat/completions "$KEY2" "$(tg_chat_body deepseek-chat)"
assert_eq "a model the key may not use is refused" 403 "$TG_STATUS"
tg_http POST /v1/chat/completions "$KEY2" "$(tg_chat_body openai-chat - )"
assert_eq "a streamed request" 200 "$TG_STATUS"
assert_true "the traffic reaches the ledger" tg_wait_until 10 \
	'[ "$(tg_psql "SELECT count(*) FROM usage_records")" = 11 ]'

# Imported records near midnight UTC: in Asia/Shanghai (UTC+8) 15:59:59Z
# is 23:59:59 on the 1st and 16:00:00Z midnight of the 2nd.
imp() {
	printf '{"request_id":"%s","ts":"%s","tenant":"%s",' "$1" "$2" "$3"
	printf '"key":"%s","provider":"openai","upstream_model":"openai-chat",' "$4"
	printf '"requested_model":"openai-chat","prompt_tokens":%s,' "$5"
	printf '"completion_tokens":%s,"usage_source":"%s"}\n' "$6" "$7"
}
P=${KEY:0:10}
GP=${GKEY:0:10}
{
	imp mid-1 2026-03-01T15:59:59Z acme "$P" 100 10 reported
	imp mid-2 2026-03-01T16:00:00Z acme "$P" 200 20 estimated
	imp mid-3 2026-03-01T23:59:59Z acme "$P" 300 30 reported
	imp mid-4 2026-03-01T15:59:59Z globex "$GP" 400 40 reported
	imp mid-5 2026-03-02T00:00:00Z globex "$GP" 500 50 estimated
} >"$TG_TMP/mid.jsonl"
ok "usage import: records around midnight" usage import "$TG_TMP/mid.jsonl"
assert_eq "acme's days are Shanghai's: one on the 1st, two on the 2nd" \
	"2026-03-01|1|110|0|2026-03-02|2|550|220" \
	"$(tg_psql "SELECT string_agg(day || '|' || requests || '|' ||
		(prompt_tokens + completion_tokens) || '|' || estimated_tokens,
		'|' ORDER BY day) FROM usage_daily d JOIN tenants t
		ON t.id = d.tenant_id WHERE t.name = 'acme'
		AND day < '2026-04-01'")"
assert_eq "globex's days are UTC's" "2026-03-01|1|2026-03-02|1" \
	"$(tg_psql "SELECT string_agg(day || '|' || requests, '|'
		ORDER BY day) FROM usage_daily d JOIN tenants t
		ON t.id = d.tenant_id WHERE t.name = 'globex'
		AND day < '2026-04-01'")"
assert_eq "usage_daily equals the ledger, latest records included" 0 \
	"$(daily_diff last_ts)"
assert_eq "api_key_last_used is each key's latest record" 0 \
	"$(tg_psql "$LAST_USED_DIFF")"

# The same records again (a replay: the ledger skips what it has), and a
# file with one of them and a new one.
BEFORE=$(tg_psql "SELECT sum(requests), sum(prompt_tokens) FROM usage_daily")
ok "usage import: the same file again" usage import "$TG_TMP/mid.jsonl"
assert_match "the replay inserts nothing" "0 inserted" "$OUT"
assert_eq "the replay adds nothing to usage_daily" "$BEFORE" \
	"$(tg_psql "SELECT sum(requests), sum(prompt_tokens) FROM usage_daily")"
{
	imp mid-1 2026-03-01T15:59:59Z acme "$P" 100 10 reported
	imp mid-6 2026-03-01T16:30:00Z acme "$P" 600 60 reported
} >"$TG_TMP/mid2.jsonl"
ok "usage import: one there and one new" usage import "$TG_TMP/mid2.jsonl"
assert_match "one inserted" "1 inserted, 1 already present" "$OUT"
assert_eq "after the replays usage_daily still equals the ledger" 0 \
	"$(daily_diff last_ts)"
assert_eq "as does api_key_last_used" 0 "$(tg_psql "$LAST_USED_DIFF")"
assert_eq "the roll-up holds served, refused, priced and converted rows" \
	"t|t|t|t|t" \
	"$(tg_psql "SELECT bool_or(refusal = 'model_not_allowed'
		AND errors = 1), bool_or(currency = 'USD'
		AND billed_tenant_nanos > 0), bool_or(unconverted > 0),
		bool_or(currency = '' AND requests > 0),
		bool_or(estimated_requests > 0) FROM usage_daily")"

# Hand corrections in SQL keep the sums exact; so does a new time zone.
tg_psql "UPDATE usage_records SET prompt_tokens = prompt_tokens + 1,
	requested_model = 'corrected' WHERE request_id = 'mid-3'" >/dev/null
tg_psql "DELETE FROM usage_records WHERE request_id = 'mid-5'" >/dev/null
assert_eq "after an update and a delete usage_daily equals the ledger" 0 \
	"$(daily_diff)"
tg_psql "UPDATE tenants SET tz = 'UTC' WHERE name = 'acme'" >/dev/null
assert_eq "acme in UTC: its midnight records move to the 1st" \
	"2026-03-01|4" \
	"$(tg_psql "SELECT string_agg(day || '|' || requests, '|'
		ORDER BY day) FROM (SELECT day, sum(requests) AS requests
		FROM usage_daily d JOIN tenants t ON t.id = d.tenant_id
		WHERE t.name = 'acme' AND day < '2026-04-01' GROUP BY day) x")"
assert_eq "after a time zone change usage_daily equals the ledger" 0 \
	"$(daily_diff last_ts)"

tg_done
