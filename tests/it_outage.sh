#!/bin/bash
# it_outage.sh - the usage ledger through a PostgreSQL outage. With
# on_db_down = serve (the default), a load running while the database stops
# and comes back is answered in full with the keys and quotas already
# loaded, /readyz stays 200 and says the database is down, and once it is
# back the ledger holds every request exactly once. With on_db_down =
# refuse, requests get 503 ledger_unavailable while it is down, /readyz is
# 503, and those refusals reach the ledger too.

. "$(dirname "$0")/lib.sh"

N_LOAD=${N_LOAD:-3000}
LOAD_PAR=${LOAD_PAR:-16}

# Stops a load still running when the script ends early; keeps the exit
# status for tg_cleanup.
load_cleanup() {
	local rc=$?
	tg_load_stop serve
	return "$rc"
}
trap 'load_cleanup; tg_cleanup' EXIT

# Milliseconds on a monotonic-enough clock, for pacing the outage.
now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# chat KEY MODEL [stream] : one chat request, streamed with a third argument.
chat() {
	if [ $# -gt 2 ]; then
		tg_http POST /v1/chat/completions "$1" "$(tg_chat_body "$2" -)"
	else
		tg_http POST /v1/chat/completions "$1" "$(tg_chat_body "$2")"
	fi
}

# quota_set ARGS... : `tollctl quota set ARGS`; QID is the quota's id.
quota_set() {
	local out
	out=$(tg_ctl quota set "$@" 2>&1) || tg_bail "quota set $* failed: $out"
	QID=$(sed -n 's/^\(created\|replaced\) quota \([0-9][0-9]*\) .*/\2/p' \
		<<<"$out" | head -n 1)
	[ -n "$QID" ] || tg_bail "quota set $*: no quota id in '$out'"
}

# Prints "ROWS|DISTINCT_REQUEST_IDS" of TENANT's usage records.
tenant_rows() {
	tg_psql "SELECT count(*) || '|' || count(DISTINCT u.request_id)
		FROM usage_records u JOIN tenants t ON t.id = u.tenant_id
		WHERE t.name = $(tg_sql_quote "$1")"
}

# assert_refused_ledger DESC : the last answer is the refusal of a gateway
# whose ledger is unavailable, in the OpenAI error shape.
assert_refused_ledger() {
	local desc=$1
	assert_eq "$desc: 503" 503 "$TG_STATUS"
	assert_json "$desc: OpenAI error, code ledger_unavailable" \
		'.error.code == "ledger_unavailable" and
		 .error.type == "server_error" and
		 (.error.message | type == "string" and length > 0) and
		 (.error | has("param"))' "$TG_BODY"
	assert_match "$desc: carries x-request-id" '^req_' "$TG_RID"
}

tg_start_pg
tg_start_mock

# Keys and quotas exist before the gateway starts, so they are loaded when
# the database goes away.
KEY=$(tg_issue_key load) || tg_bail "cannot issue a key"
KEY_PLAIN=$(tg_issue_key plain) || tg_bail "cannot issue a key"
KEY_SOFT=$(tg_issue_key softq) || tg_bail "cannot issue a key"
KEY_HARD=$(tg_issue_key hardq) || tg_bail "cannot issue a key"
# Soft and already exceeded: every answer carries the warning, which shows
# the quota is in force.
quota_set --tenant softq --period month --tokens 1 --soft
SOFT_QID=$QID
# Hard, with plenty of room.
quota_set --tenant hardq --period month --tokens 100M

tg_start_gateway

# --- (a) on_db_down = serve (the default).

chat "$KEY_PLAIN" openai-chat
assert_eq "before the outage: a request is served" 200 "$TG_STATUS"
chat "$KEY_SOFT" deepseek-chat
assert_eq "before the outage: soft quota tenant served" 200 "$TG_STATUS"
assert_match "before the outage: the soft quota is in force (warning header)" \
	"^quota $SOFT_QID exceeded" "$(tg_header x-tollgate-quota-warning)"
chat "$KEY_HARD" openai-chat
assert_eq "before the outage: hard quota tenant served" 200 "$TG_STATUS"

# Requests last long enough (upstream latency, paced streams) that the
# load spans the outage.
tg_mock_config '{"latency_ms":20,"chunk_delay_ms":3}' ||
	tg_bail "cannot configure the mock"

tg_load serve "$KEY" "$N_LOAD" "$LOAD_PAR" &
LOAD_PID=$!
tg_wait_load serve $((N_LOAD / 10)) "$LOAD_PID"
[ "$(tg_load_done serve)" -ge $((N_LOAD / 10)) ] ||
	tg_bail "the load did not get going ($(tg_load_done serve) answers)"

tg_stop_pg
DOWN_AT=$(tg_load_done serve)
tg_log "PostgreSQL stopped after $DOWN_AT answers"
down_start=$(now_ms)
ready_codes=()
seen_down=0
during=0
# Down for at least 3 s and until the load has gone well past the middle.
while :; do
	tg_readyz
	ready_codes+=("$TG_READY_STATUS")
	[[ $TG_READY_BODY == *"database: down"* ]] && seen_down=1
	elapsed=$(($(now_ms) - down_start))
	if [ "$during" = 0 ] && { [ "$seen_down" = 1 ] || [ "$elapsed" -ge 2000 ]; }; then
		during=1
		chat "$KEY_PLAIN" openai-chat
		assert_eq "outage: a key loaded before is accepted (status)" \
			200 "$TG_STATUS"
		RID_PLAIN=$TG_RID
		chat "$KEY_PLAIN" deepseek-chat stream
		assert_eq "outage: a streamed request is served" 200 "$TG_STATUS"
		assert_true "outage: the stream is whole" \
			grep -q -F 'data: [DONE]' "$TG_BODY"
		RID_PLAIN_S=$TG_RID
		chat "$KEY_SOFT" openai-chat
		assert_eq "outage: soft quota tenant still served" 200 "$TG_STATUS"
		RID_SOFT=$TG_RID
		chat "$KEY_HARD" openai-chat
		assert_eq "outage: hard quota tenant with room still served" \
			200 "$TG_STATUS"
		RID_HARD=$TG_RID
		chat tg-not-a-key-of-anybody-0000000000000000000 openai-chat
		assert_eq "outage: an unknown key is still refused" 401 "$TG_STATUS"
		elapsed=$(($(now_ms) - down_start))
	fi
	if [ "$during" = 1 ] && [ "$elapsed" -ge 3000 ] &&
		{ [ "$(tg_load_done serve)" -ge $((N_LOAD * 6 / 10)) ] ||
			! kill -0 "$LOAD_PID" 2>/dev/null; }; then
		break
	fi
	[ "$elapsed" -ge 30000 ] && break
	sleep 0.2
done
UP_AT=$(tg_load_done serve)
tg_restart_pg
tg_log "PostgreSQL back after $UP_AT answers, $(($(now_ms) - down_start)) ms down"

not200=$(printf '%s\n' "${ready_codes[@]}" | grep -vc '^200$')
if [ "$not200" = 0 ]; then
	tg_ok "outage: /readyz answered 200 every time (${#ready_codes[@]} asked)"
else
	tg_not_ok "outage: /readyz answered 200 every time" \
		"statuses, every 0.2 s from the stop: ${ready_codes[*]}"
fi
assert_eq "outage: /readyz says 'database: down'" 1 "$seen_down"
assert_true "outage: the load went on while PostgreSQL was down ($((UP_AT - DOWN_AT)) answers)" \
	test $((UP_AT - DOWN_AT)) -gt 0

wait "$LOAD_PID"
LOAD_PID=
tg_mock_reset || tg_bail "cannot reset the mock"
tg_load_summary serve
tg_log "load: $TG_LOAD_N transfers, $TG_LOAD_OK whole 200 answers, statuses $TG_LOAD_CODES"
assert_eq "load: every request answered 200" "200:$N_LOAD" "$TG_LOAD_CODES"
assert_eq "load: every answer whole" "$N_LOAD" "$TG_LOAD_OK"
assert_eq "load: every answer has its own request id" "$N_LOAD" \
	"$(awk '{ print $4 }' "$TG_TMP/serve.out" | sort -u | grep -c '^req_')"

awk '$4 != "" { print $4 }' "$TG_TMP/serve.out" >"$TG_TMP/serve.rids"
tg_rid_table serve_rids "$TG_TMP/serve.rids" ||
	tg_bail "cannot load the request ids into the database"
if tg_wait_rids serve_rids 60; then
	tg_ok "ledger: every request id the clients got is there ($TG_RIDS_FOUND)"
else
	tg_not_ok "ledger: every request id the clients got is there" \
		"found $TG_RIDS_FOUND of $(wc -l <"$TG_TMP/serve.rids") within 60 s" \
		"missing, e.g.: $(tg_psql "SELECT string_agg(rid, ' ') FROM
			(SELECT rid FROM serve_rids s WHERE NOT EXISTS (SELECT 1
			FROM usage_records u WHERE u.request_id = s.rid)
			LIMIT 5) m")"
fi
assert_eq "ledger: one row per request sent, no duplicate request id" \
	"$N_LOAD|$N_LOAD" "$(tenant_rows load)"
assert_eq "ledger: the rows are the load's 200s" "$N_LOAD" \
	"$(tg_psql "SELECT count(*) FROM usage_records u
		JOIN tenants t ON t.id = u.tenant_id
		WHERE t.name = 'load' AND u.status = 200")"
tg_check_row "ledger: the outage's request with a loaded key recorded" \
	"${RID_PLAIN:-none}" status 200
tg_check_row "ledger: the outage's streamed request recorded" \
	"${RID_PLAIN_S:-none}" status 200
tg_check_row "ledger: the outage's soft quota request recorded" \
	"${RID_SOFT:-none}" status 200
tg_check_row "ledger: the outage's hard quota request recorded" \
	"${RID_HARD:-none}" status 200
tg_wait_until -i 0.2 10 '[ "$(tg_metric tollgate_spool_pending_bytes)" = 0 ]'
assert_eq "metrics: tollgate_spool_pending_bytes back to 0 once shipped" \
	0 "$(tg_metric tollgate_spool_pending_bytes)"

tg_stop_gateway
assert_eq "serve gateway exits 0 on SIGTERM" 0 "$TG_STOP_STATUS"
mv "$TG_TMP/gateway.log" "$TG_TMP/gateway-serve.log"

# --- (b) on_db_down = refuse.

KEY_R=$(tg_issue_key refuse) || tg_bail "cannot issue a key"
tg_start_gateway "on_db_down = refuse"

chat "$KEY_R" openai-chat
assert_eq "refuse: served while the database is up" 200 "$TG_STATUS"

tg_stop_pg
tg_wait_readyz 503 15
assert_eq "refuse: /readyz 503 with the database down" 503 "$TG_READY_STATUS"
assert_match "refuse: /readyz says 'database: down'" "database: down" \
	"$TG_READY_BODY"

: >"$TG_TMP/refused.rids"
for req in "openai-chat" "deepseek-chat" "openai-chat stream" \
	"deepseek-chat stream"; do
	# shellcheck disable=SC2086
	chat "$KEY_R" $req
	assert_refused_ledger "refuse: $req while the database is down"
	[ -n "$TG_RID" ] && echo "$TG_RID" >>"$TG_TMP/refused.rids"
done

tg_restart_pg
tg_wait_readyz 200 30
assert_eq "refuse: /readyz 200 once the database is back" 200 "$TG_READY_STATUS"
chat "$KEY_R" deepseek-chat
assert_eq "refuse: served again after the restart" 200 "$TG_STATUS"
RID_AFTER=$TG_RID
chat "$KEY_R" openai-chat stream
assert_eq "refuse: streams served again after the restart" 200 "$TG_STATUS"

tg_rid_table refused_rids "$TG_TMP/refused.rids" ||
	tg_bail "cannot load the request ids into the database"
if tg_wait_rids refused_rids 30; then
	tg_ok "refuse: the refused requests reached the ledger ($TG_RIDS_FOUND)"
else
	tg_not_ok "refuse: the refused requests reached the ledger" \
		"found $TG_RIDS_FOUND of $(wc -l <"$TG_TMP/refused.rids") within 30 s"
fi
assert_eq "refuse: recorded with status 503" "4" \
	"$(tg_psql "SELECT count(*) FROM usage_records u JOIN refused_rids r
		ON r.rid = u.request_id WHERE u.status = 503")"
tg_check_row "refuse: the request after the restart recorded" \
	"$RID_AFTER" status 200

tg_done
