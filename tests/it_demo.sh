#!/bin/bash
# it_demo.sh - scripts/demo, the README's first command, as a newcomer runs
# it: the gateway comes up on its private PostgreSQL and the mock upstream,
# the key it prints works, and it shows a real bill: list prices, the
# welcome grant's free tokens and what is billed, as `tollctl bill` says.
# Run on what this build holds (DEMO_NO_BUILD=1), in a directory of its
# own (DEMO_DIR), on free ports.

. "$(dirname "$0")/lib.sh"

tg_find_pg_bindir || tg_bail "PostgreSQL server binaries not found (set PG_BINDIR)"
port=$(tg_free_port) || tg_bail "no free port"
admin=$(tg_free_port) || tg_bail "no free port"
[ "$port" != "$admin" ] || tg_bail "no two free ports"
DEMO=$TG_TMP/demo
OUT=$TG_TMP/demo.out

DEMO_DIR=$DEMO BUILD_DIR=$top_builddir DEMO_NO_BUILD=1 PG_BINDIR=$PG_BINDIR \
	PORT=$port ADMIN_PORT=$admin OPENAI_API_KEY= \
	"$top_srcdir/scripts/demo" >"$OUT" 2>&1 &
DEMO_PID=$!

# Stops the demo (SIGTERM, which it handles as Ctrl-C: a background job
# ignores SIGINT), then kills it if it did not stop.
stop_demo() {
	[ -n "$DEMO_PID" ] || return 0
	kill -TERM "$DEMO_PID" 2>/dev/null
	tg_wait_until 60 '! kill -0 "$DEMO_PID" 2>/dev/null'
	kill -KILL "$DEMO_PID" 2>/dev/null
	wait "$DEMO_PID" 2>/dev/null
	DEMO_PID=
}
# On exit: the demo's output when a check failed, the demo stopped, then
# the usual cleanup with the test's status.
demo_cleanup() {
	local rc=$?
	if [ "$rc" != 0 ] || [ "$TG_FAIL" != 0 ]; then
		tg_tail_log demo "$OUT"
		tg_tail_log "demo tollgated" "$DEMO/tollgated.log"
	fi
	stop_demo
	# What a demo killed could not stop: its processes name $DEMO.
	pkill -KILL -f "$DEMO/" 2>/dev/null
	(exit "$rc")
	tg_cleanup
}
trap demo_cleanup EXIT

if ! tg_wait_until 120 'grep -q "tollgate is running" "$OUT" || ! kill -0 "$DEMO_PID" 2>/dev/null'; then
	tg_bail "the demo did not come up within 120 s: $(tail -n 20 "$OUT")"
fi
grep -q "tollgate is running" "$OUT" ||
	tg_bail "the demo stopped: $(tail -n 30 "$OUT")"
tg_ok "the demo is up"

KEY=$(sed -n 's/^ *API key *//p' "$OUT" | head -n 1)
assert_match "it prints a key" '^tg-' "$KEY"
code=$(curl -s -o "$TG_TMP/chat.json" -w '%{http_code}' --max-time 30 \
	"http://127.0.0.1:$port/v1/chat/completions" \
	-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	-d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}')
assert_eq "the printed key works on the printed base URL" 200 "$code"
assert_file_eq "the mock's recorded answer" "$FIXTURES/openai-chat.json" \
	"$TG_TMP/chat.json"

# The bill it printed, before the request above.
assert_match "it sends sample requests" "10 sample requests sent" "$(cat "$OUT")"
bill=$(sed -n '/sample requests sent/,/^ *TOTAL /p' "$OUT")
assert_match "the bill prices the demo's model at gpt-4o's list price" \
	'line +demo +openai-chat +2024-01-01 +input +1760 +[0-9]+ +[0-9]+ +2\.5 ' "$bill"
assert_match "the bill shows the welcome grant" \
	'demo-welcome +2000 ' "$bill"
assert_match "the bill has a total" 'TOTAL [0-9]+\.[0-9]{2} USD' "$bill"

# tollctl says the same (the request above now counts too).
CTL=("$TG_CTL_BIN" -c "$DEMO/tollgate.conf")
month=$(date -u +%Y-%m)
json=$("${CTL[@]}" --json bill --month "$month" --tenant demo 2>&1)
assert_true "tollctl bill --json reads the demo's ledger" \
	jq -e . <<<"$json" >/dev/null
free=$(jq '[.. | objects | select(has("free_tokens")) | .free_tokens
	| numbers] | add // 0' <<<"$json")
assert_eq "2,000 tokens were free" 2000 "$free"
assert_true "something is billed" \
	jq -e '[.. | objects | .total? | strings | tonumber] | any(. > 0)' \
	<<<"$json" >/dev/null
assert_match "the promotion is listed" 'demo-welcome' \
	"$("${CTL[@]}" promo list --tenant demo 2>&1)"

# The console it prints: its URL and token log in, and its overview
# counts the demo's requests as the ledger does.
ADMIN_URL=$(sed -n 's/^ *Console *//p' "$OUT" | head -n 1)
TOKEN=$(sed -n 's/^ *Token *\([^ ]*\).*/\1/p' "$OUT" | head -n 1)
assert_eq "it prints the console's URL" "http://127.0.0.1:$admin/" "$ADMIN_URL"
assert_eq "the token is the demo's admin token" "$(cat "$DEMO/admin.token")" "$TOKEN"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$ADMIN_URL")
assert_eq "the console's page loads" 200 "$code"
role=$(curl -s --max-time 10 -H 'Content-Type: application/json' \
	-d "{\"token\":\"$TOKEN\"}" "${ADMIN_URL}api/login" | jq -r .role)
assert_eq "the printed token logs in as the admin" admin "$role"
db=$(sed -n 's/^database = //p' "$DEMO/tollgate.conf")
# The demo's month in the ledger, and in the overview: equal once the
# test's own request above is written (the usage writer ships it shortly).
ledger_and_overview() {
	ledger=$("$PG_BINDIR/psql" -X -A -t -q -d "$db" -c "SELECT count(*) FROM usage_records u JOIN tenants t ON t.id = u.tenant_id WHERE t.name = 'demo' AND date_trunc('month', u.ts AT TIME ZONE t.tz) = date_trunc('month', now() AT TIME ZONE t.tz)")
	shown=$(curl -s --max-time 10 -H "Authorization: Bearer $TOKEN" \
		"${ADMIN_URL}api/overview" |
		jq -r '.tenants[] | select(.name == "demo") | .requests')
	[ "$ledger" -ge 11 ] && [ "$ledger" = "$shown" ]
}
tg_wait_until 10 ledger_and_overview
assert_eq "the overview counts the demo's requests as the ledger does" \
	"$ledger" "$shown"

stop_demo
tg_ok "the demo stops"
assert_true "tollgated, the mock and PostgreSQL stopped" \
	tg_wait_until 30 '! pgrep -f "$DEMO/tollgate.conf" >/dev/null && ! pgrep -f "$DEMO/pg/data" >/dev/null && ! pgrep -f "$DEMO/mock.port" >/dev/null'

tg_done
