#!/bin/bash
# it_tollctl.sh - the admin CLI against a real PostgreSQL: migrations,
# tenants, keys, and usage reports over records written by the gateway.

. "$(dirname "$0")/lib.sh"

# run NAME ARGS... : runs tollctl, keeping stdout, stderr and the exit
# status in $TG_TMP/NAME.{out,err} and RC.
run() {
	local name=$1
	shift
	tg_ctl "$@" >"$TG_TMP/$name.out" 2>"$TG_TMP/$name.err"
	RC=$?
	OUT=$TG_TMP/$name.out
	ERR=$TG_TMP/$name.err
}

# expect_ok LABEL : the last run exited 0 and wrote nothing to stderr.
expect_ok() {
	if [ "$RC" = 0 ]; then
		tg_ok "$1: exits 0"
	else
		tg_not_ok "$1: exits 0" "exit status $RC" "$(head -n 5 "$ERR")"
	fi
}

# expect_fail LABEL : the last run exited non-zero with a one-line reason
# on stderr.
expect_fail() {
	local lines
	lines=$(grep -c . "$ERR")
	if [ "$RC" != 0 ] && [ "$lines" = 1 ]; then
		tg_ok "$1: fails with one line ($(head -c 100 "$ERR"))"
	else
		tg_not_ok "$1: fails with a one-line reason" \
			"exit status $RC, $lines lines on stderr:" \
			"$(head -n 5 "$ERR")"
	fi
}

# wait_rows N TENANT : polls until TENANT has N usage records (10 s).
wait_rows() {
	local n=$1 q="SELECT count(*) FROM usage_records u JOIN tenants t
		ON t.id = u.tenant_id WHERE t.name = '$2'"
	tg_wait_until 10 '[ "$(tg_psql "$q")" = "$n" ]'
}

tg_start_pg

# Migrations: tg_start_pg applied them once; twice more changes nothing.
before=$(tg_psql "SELECT count(*) FROM schema_migrations")
run migrate2 db migrate
expect_ok "db migrate, second time"
run migrate3 db migrate
expect_ok "db migrate, third time"
assert_eq "db migrate is idempotent" "$before" \
	"$(tg_psql "SELECT count(*) FROM schema_migrations")"
assert_eq "schema is in place" "t|t|t" \
	"$(tg_psql "SELECT to_regclass('tenants') IS NOT NULL,
		to_regclass('api_keys') IS NOT NULL,
		to_regclass('usage_records') IS NOT NULL")"

# Tenants.
run tadd tenant add acme --currency CNY --tz Asia/Shanghai
expect_ok "tenant add acme --currency CNY --tz Asia/Shanghai"
run tadd2 tenant add globex
expect_ok "tenant add globex"
assert_eq "tenants stored" "acme|CNY|Asia/Shanghai|f
globex|USD|UTC|f" \
	"$(tg_psql "SELECT name, currency, tz, disabled FROM tenants ORDER BY name")"
run tdup tenant add acme
expect_fail "duplicate tenant add"
run tbad tenant add 'no spaces allowed'
expect_fail "tenant add with an invalid name"
run tcur tenant add initech --currency yen
expect_fail "tenant add with an invalid currency"
run tlist tenant list
expect_ok "tenant list"
assert_true "tenant list shows both names" \
	sh -c "grep -q acme '$OUT' && grep -q globex '$OUT'"
run tlistj --json tenant list
expect_ok "tenant list --json"
assert_json "tenant list --json parses and has acme in CNY" \
	'[.. | objects | select(.name? == "acme")] | length == 1 and
	 .[0].currency == "CNY"' "$OUT"
run tshow tenant show acme
expect_ok "tenant show acme"
assert_true "tenant show acme shows its currency and time zone" \
	sh -c "grep -q CNY '$OUT' && grep -q Asia/Shanghai '$OUT'"
run tshowj --json tenant show acme
expect_ok "tenant show --json"
assert_json "tenant show --json parses" \
	'[.. | objects | select(.name? == "acme")] | length >= 1' "$OUT"
run tmissing tenant show no-such-tenant
expect_fail "tenant show of a missing tenant"

# Keys.
run kissue key issue --tenant acme --name ci -q
expect_ok "key issue -q"
KEY=$(cat "$OUT")
assert_match "key issue -q prints only the key" '^tg-[A-Za-z0-9_-]{43}$' "$KEY"
assert_eq "key issue -q prints one line" 1 "$(grep -c . "$OUT")"
assert_eq "only the key's hash is stored" "1|0" \
	"$(tg_psql "SELECT count(*), count(*) FILTER (WHERE
		hash = '$KEY' OR prefix = '$KEY' OR name = '$KEY')
		FROM api_keys WHERE name = 'ci'")"
assert_match "stored hash is 64 hex digits" '^[0-9a-f]{64}$' \
	"$(tg_psql "SELECT hash FROM api_keys WHERE name = 'ci'")"
run kissue2 key issue --tenant acme --name limited --models 'zhipu-*,deepseek-chat' \
	--expires 2099-12-31 -q
expect_ok "key issue --models --expires"
assert_eq "--models and --expires stored" '{zhipu-*,deepseek-chat}|2099' \
	"$(tg_psql "SELECT models, extract(year FROM expires_at)
		FROM api_keys WHERE name = 'limited'")"
run kissue3 key issue --tenant no-such-tenant -q
expect_fail "key issue for a missing tenant"
run klist key list --tenant acme
expect_ok "key list --tenant acme"
PREFIX=$(tg_psql "SELECT prefix FROM api_keys WHERE name = 'ci'")
assert_true "key list shows the key's prefix" grep -qF "$PREFIX" "$OUT"
assert_true "key list never shows the key" sh -c "! grep -qF '$KEY' '$OUT'"
run klistj --json key list
expect_ok "key list --json"
assert_json "key list --json parses and has both keys" \
	'[.. | objects | select(.name? == "ci" or .name? == "limited")] |
	 length == 2' "$OUT"
run krevoke key revoke "$PREFIX"
expect_ok "key revoke PREFIX"
assert_eq "revoked_at set" t \
	"$(tg_psql "SELECT revoked_at IS NOT NULL FROM api_keys WHERE name = 'ci'")"
LIMITED_ID=$(tg_psql "SELECT id FROM api_keys WHERE name = 'limited'")
run krevoke2 key revoke "$LIMITED_ID"
expect_ok "key revoke ID"
assert_eq "revoked_at set by id" t \
	"$(tg_psql "SELECT revoked_at IS NOT NULL FROM api_keys WHERE name = 'limited'")"
run krevoke3 key revoke 999999
expect_fail "key revoke of a missing key"

# Tenant disable.
run tdisable tenant disable globex
expect_ok "tenant disable globex"
assert_eq "globex disabled" t \
	"$(tg_psql "SELECT disabled FROM tenants WHERE name = 'globex'")"

# Usage report over records the gateway wrote.
tg_start_mock
tg_start_gateway
UKEY=$(tg_issue_key usage-co) || tg_bail "cannot issue a key"
# model | stream | count | prompt | completion | cached each
REQS='zhipu-chat|-|2|16|44|0 deepseek-chat|-|1|1100|50|1024 zhipu-chat|s|1|16|38|0 openai-embeddings|e|3|16|0|0'
total=0
for r in $REQS; do
	IFS='|' read -r model mode n p c k <<<"$r"
	for ((i = 0; i < n; i++)); do
		case $mode in
		s) tg_http POST /v1/chat/completions "$UKEY" \
			"$(tg_chat_body "$model" '{"include_usage":true}')" -N ;;
		e) tg_http POST /v1/embeddings "$UKEY" \
			"{\"model\":\"$model\",\"input\":\"hello\"}" ;;
		*) tg_http POST /v1/chat/completions "$UKEY" \
			"$(tg_chat_body "$model")" ;;
		esac
		[ "$TG_STATUS" = 200 ] || tg_not_ok "usage request $model: status 200" "got $TG_STATUS"
		total=$((total + 1))
	done
done
assert_true "$total usage records written within 10 s" wait_rows "$total" usage-co

# Expected per model: requests, prompt, completion, cached.
# zhipu-chat: 3 requests, 16*3 = 48 prompt, 44*2+38 = 126 completion.
# deepseek-chat: 1, 1100, 50, 1024. openai-embeddings: 3, 48, 0, 0.
run usage usage --tenant usage-co
expect_ok "usage --tenant"
assert_true "usage shows zhipu-chat with 48 prompt and 126 completion" \
	sh -c "grep zhipu-chat '$OUT' | grep -w 48 | grep -qw 126"
assert_true "usage shows deepseek-chat with 1100 and 50" \
	sh -c "grep deepseek-chat '$OUT' | grep -w 1100 | grep -qw 50"
run usagem usage --tenant usage-co --by model --month "$(date -u +%Y-%m)"
expect_ok "usage --by model --month this month"
assert_true "usage --by model shows zhipu-chat totals" \
	sh -c "grep zhipu-chat '$OUT' | grep -w 48 | grep -qw 126"
run usagej --json usage --tenant usage-co --by model
expect_ok "usage --json --by model"
assert_json "usage --json: total of $total requests, 1196 prompt, 176 completion" \
	".total.requests == $total and .total.prompt_tokens == 1196 and
	 .total.completion_tokens == 176 and .total.cached_tokens == 1024" "$OUT"
for r in 'zhipu-chat|3|48|126|0' 'deepseek-chat|1|1100|50|1024' \
	'openai-embeddings|3|48|0|0'; do
	IFS='|' read -r model n p c k <<<"$r"
	assert_json "usage --json: $model has $n requests, $p prompt, $c completion, $k cached" \
		"[.rows[] | select(.model == \"$model\")] | length == 1 and
		 (.[0] | .requests == $n and .prompt_tokens == $p and
		  .completion_tokens == $c and .cached_tokens == $k and
		  .reasoning_tokens == 0)" "$OUT"
done
run usaged usage --tenant usage-co --by day
expect_ok "usage --by day"
assert_true "usage --by day shows today" grep -q "$(date -u +%Y-%m-%d)" "$OUT"
run usagek --json usage --tenant usage-co --by key
expect_ok "usage --json --by key"
assert_json "usage --json --by key: one key with all $total requests" \
	".rows | length == 1 and .[0].requests == $total" "$OUT"
run usagen usage --tenant usage-co --month 2001-01
expect_ok "usage of an empty month"
run usagex usage --tenant no-such-tenant
expect_fail "usage of a missing tenant"

tg_done
