#!/bin/bash
# it_crash.sh - the usage ledger when tollgated dies or its disk fails.
# (a) SIGKILL during a load, restart on the same spool: every request a
# client got a whole answer for is in the ledger exactly once, and the
# ledger holds no more than the failed requests besides. (b) A journal
# whose last record was torn (cut mid-line, garbage after it): the other
# records are shipped, the torn one is counted and logged, once. (c) A full
# disk under spool_dir: requests are still served and recorded, /readyz
# says the spool is failing, and recovers when space is back. (d) A second
# tollgated on the same spool_dir refuses to start.

. "$(dirname "$0")/lib.sh"

SPOOL=$TG_TMP/spool
TINY=$TG_TMP/tiny
TINY_MOUNTED=0
GW2_PID=

# Stops what this script started besides lib.sh's processes and unmounts
# the tmpfs (tollgated first: its journal is open there); keeps the exit
# status for tg_cleanup.
crash_cleanup() {
	local rc=$?
	tg_load_stop crashA
	tg_load_stop crashB
	if [ -n "$GW2_PID" ]; then
		kill -KILL "$GW2_PID" 2>/dev/null
		wait "$GW2_PID" 2>/dev/null
	fi
	if [ "$TINY_MOUNTED" = 1 ]; then
		tg_kill_gateway
		umount "$TINY" 2>/dev/null || umount -l "$TINY" 2>/dev/null
	fi
	return "$rc"
}
trap 'crash_cleanup; tg_cleanup' EXIT

# chat KEY MODEL [stream] : one chat request, streamed with a third argument.
chat() {
	if [ $# -gt 2 ]; then
		tg_http POST /v1/chat/completions "$1" "$(tg_chat_body "$2" -)"
	else
		tg_http POST /v1/chat/completions "$1" "$(tg_chat_body "$2")"
	fi
}

# requests TAG KEY N : N requests one after the other, cycling through
# openai-chat and deepseek-chat, JSON and streamed. The request ids of
# those answered 200 go to $TG_TMP/TAG.rids; prints the other statuses.
requests() {
	local tag=$1 key=$2 n=$3 i
	local -a models=(openai-chat deepseek-chat)
	: >"$TG_TMP/$tag.rids"
	for ((i = 0; i < n; i++)); do
		if ((i / 2 % 2)); then
			chat "$key" "${models[i % 2]}" stream 2>/dev/null
		else
			chat "$key" "${models[i % 2]}" 2>/dev/null
		fi
		if [ "$TG_STATUS" = 200 ] && [ -n "$TG_RID" ]; then
			echo "$TG_RID" >>"$TG_TMP/$tag.rids"
		else
			printf 'request %d: %s (curl exit %s) %s\n' "$i" \
				"$TG_STATUS" "$TG_CURL_RC" "$([ "$TG_CURL_RC" = 0 ] &&
					head -c 120 "$TG_BODY" | tr -s '\n' ' ')"
		fi
	done
}

# Prints the number of request ids in the ledger more than once.
duplicates() {
	tg_psql "SELECT count(*) - count(DISTINCT request_id) FROM usage_records"
}

# Prints the last (newest) journal segment of spool directory DIR.
last_segment() {
	find "$1" -maxdepth 1 -name 'usage-*.jnl' | sort | tail -n 1
}

tg_start_pg
tg_start_mock
KEY=$(tg_issue_key crash) || tg_bail "cannot issue a key"
KEY_TORN=$(tg_issue_key torn) || tg_bail "cannot issue a key"
KEY_DISK=$(tg_issue_key disk) || tg_bail "cannot issue a key"
KEY_TWO=$(tg_issue_key two) || tg_bail "cannot issue a key"
# spool_dir is named here too, so the test does not depend on where
# tg_write_config puts its own line (the last one wins).
tg_start_gateway "spool_dir = $SPOOL"

# --- (a) SIGKILL during a load, restart on the same config and spool.

# Requests last long enough (upstream latency, paced streams) that many
# are in flight when the gateway dies.
tg_mock_config '{"latency_ms":20,"chunk_delay_ms":5}' ||
	tg_bail "cannot configure the mock"
tg_load crashA "$KEY" 1200 16 &
LOAD_PID=$!
tg_wait_load crashA 400 "$LOAD_PID"
tg_kill_gateway
tg_log "tollgated killed after $(tg_load_done crashA) answers"
# The rest of the first load fails against the dead gateway, quickly.
wait "$LOAD_PID"
tg_restart_gateway || tg_bail "tollgated did not start again after SIGKILL"
tg_load crashB "$KEY" 800 16
tg_mock_reset || tg_bail "cannot reset the mock"

tg_load_summary crashA
A_OK=$TG_LOAD_OK A_FAILED=$TG_LOAD_FAILED
tg_log "load before the kill: $TG_LOAD_N transfers, $A_OK whole 200 answers, statuses $TG_LOAD_CODES"
assert_true "crash: the kill cut the load ($A_FAILED of 1200 failed)" \
	test "$A_FAILED" -gt 0
tg_load_summary crashB
B_OK=$TG_LOAD_OK B_FAILED=$TG_LOAD_FAILED
tg_log "load after the restart: $TG_LOAD_N transfers, $B_OK whole 200 answers, statuses $TG_LOAD_CODES"
assert_eq "crash: after the restart every request answered 200" "200:800" \
	"$TG_LOAD_CODES"
assert_eq "crash: after the restart every answer whole" 800 "$B_OK"

cat "$TG_TMP/crashA.ok" "$TG_TMP/crashB.ok" >"$TG_TMP/crash.ok"
N_OK=$((A_OK + B_OK))
N_FAILED=$((A_FAILED + B_FAILED))
tg_rid_table crash_ok "$TG_TMP/crash.ok" ||
	tg_bail "cannot load the request ids into the database"
if tg_wait_rids crash_ok 30; then
	tg_ok "crash: every whole answer's request id is in the ledger ($N_OK)"
else
	tg_not_ok "crash: every whole answer's request id is in the ledger" \
		"found $TG_RIDS_FOUND of $N_OK within 30 s"
fi
# SIGTERM ships what is left; the ledger is then final for this tenant.
tg_stop_gateway
assert_eq "crash: the restarted tollgated exits 0 on SIGTERM" 0 \
	"$TG_STOP_STATUS"
assert_eq "crash: exactly one row per whole answer" "$N_OK" \
	"$(tg_psql "SELECT count(*) FROM usage_records u
		JOIN crash_ok c ON c.rid = u.request_id")"
assert_eq "crash: no request id twice in the ledger" 0 "$(duplicates)"
extra=$(tg_psql "SELECT count(*) FROM usage_records u
	JOIN tenants t ON t.id = u.tenant_id
	WHERE t.name = 'crash' AND NOT EXISTS
		(SELECT 1 FROM crash_ok c WHERE c.rid = u.request_id)")
tg_log "crash: $N_OK whole answers, $N_FAILED failed, $extra rows without a whole answer"
if [ "$extra" -le "$N_FAILED" ]; then
	tg_ok "crash: rows without a whole answer ($extra) <= failed requests ($N_FAILED)"
else
	tg_not_ok "crash: rows without a whole answer <= failed requests" \
		"rows without a whole answer: $extra" \
		"failed requests:             $N_FAILED"
fi

# --- (b) A torn journal: records left in the journal (database down),
# SIGKILL, the last record cut mid-line and garbage appended to it.

tg_restart_gateway || tg_bail "tollgated did not start again"
tg_stop_pg
torn_err=$(requests torn "$KEY_TORN" 20)
assert_eq "torn: 20 requests served with the database down" "" "$torn_err"
tg_kill_gateway

SEG=$(last_segment "$SPOOL")
TORN_RID=
if [ -n "$SEG" ] && [ -s "$SEG" ]; then
	last=$(tail -n 1 "$SEG")
	assert_match "torn: a journal line is CRC-32C SP JSON" \
		'^[0-9a-f]{8} \{.*\}$' "$last"
	TORN_RID=$(grep -o 'req_[0-9a-f]*' <<<"$last" | head -n 1)
	assert_eq "torn: the last journal line is the last request's record" \
		"$(tail -n 1 "$TG_TMP/torn.rids")" "$TORN_RID"
	size=$(stat -c %s "$SEG")
	cut=$(((${#last} + 1) / 2))
	truncate -s $((size - cut)) "$SEG"
	printf '\x00\xff#garbage{"request_id":' >>"$SEG"
	tg_log "cut $cut bytes off $(basename "$SEG") and appended garbage"
else
	tg_not_ok "torn: the journal holds the records (a segment in $SPOOL)" \
		"$(ls -la "$SPOOL" 2>&1)"
fi

tg_restart_pg
tg_restart_gateway || tg_bail "tollgated did not start on the torn journal"
grep -v -x -F "${TORN_RID:-none}" "$TG_TMP/torn.rids" >"$TG_TMP/torn19.rids"
tg_rid_table torn_rids "$TG_TMP/torn19.rids" ||
	tg_bail "cannot load the request ids into the database"
if tg_wait_rids torn_rids 30; then
	tg_ok "torn: the $(wc -l <"$TG_TMP/torn19.rids") whole records reach the ledger"
else
	tg_not_ok "torn: the whole records reach the ledger" \
		"found $TG_RIDS_FOUND of $(wc -l <"$TG_TMP/torn19.rids") within 30 s"
fi
tg_rid_table torn_all "$TG_TMP/torn.rids" ||
	tg_bail "cannot load the request ids into the database"
assert_eq "torn: 19 of the 20 requests in the ledger (the cut one is lost)" 19 \
	"$(tg_psql "SELECT count(DISTINCT u.request_id) FROM usage_records u
		JOIN torn_all t ON t.rid = u.request_id")"
assert_true "torn: the log reports the torn record" \
	grep -q -i torn "$TG_TMP/gateway.log"
# The half record and the garbage after it are one unterminated line: one
# torn record.
assert_eq "torn: tollgate_spool_torn_records_total is 1" 1 \
	"$(tg_metric tollgate_spool_torn_records_total)"
# New records go to a new segment, never onto the torn tail.
after_err=$(requests torn_after "$KEY_TORN" 4)
assert_eq "torn: requests served after the recovery" "" "$after_err"
tg_rid_table torn_after "$TG_TMP/torn_after.rids" ||
	tg_bail "cannot load the request ids into the database"
assert_true "torn: records after the recovery reach the ledger" \
	tg_wait_rids torn_after 30
# Once its whole records are shipped the damaged segment is trimmed: a
# restart finds nothing torn and replays nothing twice.
tg_kill_gateway
tg_restart_gateway || tg_bail "tollgated did not start again"
assert_eq "torn: after another restart nothing is torn" 0 \
	"$(tg_metric tollgate_spool_torn_records_total)"
assert_eq "torn: no request id twice in the ledger" 0 "$(duplicates)"

# --- (c) A full disk under spool_dir.

tg_stop_gateway
assert_eq "disk: tollgated exits 0 on SIGTERM" 0 "$TG_STOP_STATUS"
mkdir -p "$TINY"
if mount_err=$(mount -t tmpfs -o size=64k,mode=0755 tmpfs "$TINY" 2>&1); then
	TINY_MOUNTED=1
fi
if [ "$TINY_MOUNTED" = 1 ]; then
	tg_write_config "$TG_TMP/tollgate-tiny.conf" "" "" "" "$TINY"
	tg_restart_gateway "$TG_TMP/tollgate-tiny.conf" ||
		tg_bail "tollgated did not start on the tmpfs spool"
	tg_readyz
	assert_eq "disk: /readyz 200 on the new spool" 200 "$TG_READY_STATUS"
	# Filled before any record is written: the journal holds no page
	# yet, so the first append already finds the disk full (a record
	# appended earlier could leave a page that later ones reuse once
	# the writer has caught up and cut the segment back).
	dd if=/dev/zero of="$TINY/fill" bs=4k >/dev/null 2>&1
	tg_log "spool disk: $(df -k --output=avail "$TINY" | tail -n 1) kB left"
	disk_err=$(requests disk "$KEY_DISK" 20)
	assert_eq "disk: 20 requests served with the spool's disk full" "" \
		"$disk_err"
	if ! kill -0 "$TG_GW_PID" 2>/dev/null; then
		wait "$TG_GW_PID"
		st=$?
		TG_GW_PID=
		tg_not_ok "disk: tollgated survives a full spool disk" \
			"it exited with status $st" \
			"$(tail -n 5 "$TG_TMP/gateway.log")"
	else
		tg_ok "disk: tollgated survives a full spool disk"
	fi
fi
if [ "$TINY_MOUNTED" = 1 ] && [ -n "$TG_GW_PID" ]; then
	tg_readyz
	assert_eq "disk: /readyz 503 while the spool cannot be written" 503 \
		"$TG_READY_STATUS"
	assert_match "disk: /readyz says 'spool: failing: <reason>'" \
		'spool: failing: [^[:space:]]' "$TG_READY_BODY"
	assert_true "disk: tollgate_spool_write_errors_total counts the failures" \
		test "$(tg_metric tollgate_spool_write_errors_total)" -ge 1 2>/dev/null
	assert_true "disk: the log names the reason" \
		grep -q -i 'no space left' "$TG_TMP/gateway.log"
	tg_rid_table disk_rids "$TG_TMP/disk.rids" ||
		tg_bail "cannot load the request ids into the database"
	if tg_wait_rids disk_rids 30; then
		tg_ok "disk: the records reach the ledger (from memory)"
	else
		tg_not_ok "disk: the records reach the ledger (from memory)" \
			"found $TG_RIDS_FOUND of $(wc -l <"$TG_TMP/disk.rids") within 30 s"
	fi
	rm -f "$TINY/fill"
	# No request meanwhile: a load balancer that took the gateway out of
	# rotation on the 503 sends none, and must see it come back.
	if tg_wait_readyz 200 10; then
		tg_ok "disk: /readyz back to 200 once space is free"
	else
		before="$TG_READY_STATUS $(tr '\n' ' ' <<<"$TG_READY_BODY")"
		chat "$KEY_DISK" openai-chat
		tg_readyz
		tg_not_ok "disk: /readyz back to 200 once space is free" \
			"10 s after the space was freed, with no request: $before" \
			"after one more request: $TG_READY_STATUS $(tr '\n' ' ' <<<"$TG_READY_BODY")"
	fi
	chat "$KEY_DISK" deepseek-chat stream
	assert_eq "disk: served once space is free" 200 "$TG_STATUS"
	tg_check_row "disk: recorded once space is free" "$TG_RID" status 200
	tg_stop_gateway
	assert_eq "disk: tollgated on the tmpfs spool exits 0 on SIGTERM" 0 \
		"$TG_STOP_STATUS"
fi
if [ "$TINY_MOUNTED" = 1 ]; then
	tg_kill_gateway
	umount "$TINY" || umount -l "$TINY"
	TINY_MOUNTED=0
else
	tg_ok "disk: full spool disk # SKIP cannot mount a tmpfs: $mount_err"
fi

# --- (d) A second tollgated on the same spool_dir.

tg_restart_gateway || tg_bail "tollgated did not start again"
P2=$(tg_free_port) || tg_bail "no free port"
A2=$(tg_free_port) || tg_bail "no free port"
# Other ports, same spool: only the spool can stop it.
tg_write_config "$TG_TMP/tollgate-second.conf" "" "$P2" "$A2" "$SPOOL"
"$TG_GATEWAY_BIN" -c "$TG_TMP/tollgate-second.conf" \
	>"$TG_TMP/gateway-second.log" 2>&1 &
GW2_PID=$!
if ! tg_wait_until 10 tg_gone "$GW2_PID"; then
	kill -KILL "$GW2_PID" 2>/dev/null
	wait "$GW2_PID" 2>/dev/null
	GW2_PID=
	tg_not_ok "second: a second tollgated on the same spool_dir refuses to start" \
		"still running after 10 s" "$(tail -n 5 "$TG_TMP/gateway-second.log")"
else
	wait "$GW2_PID"
	st=$?
	GW2_PID=
	assert_true "second: a second tollgated on the same spool_dir exits non-zero ($st)" \
		test "$st" != 0
	assert_true "second: its message names the spool directory" \
		grep -q -F "$SPOOL" "$TG_TMP/gateway-second.log"
fi
chat "$KEY_TWO" openai-chat
assert_eq "second: the first tollgated still serves" 200 "$TG_STATUS"
tg_check_row "second: and still records" "$TG_RID" status 200

tg_done
