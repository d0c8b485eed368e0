#!/bin/bash
# it_hostile.sh - the gateway on a network where anyone can reach it:
# bodies and heads without a key, slow and idle connections, floods,
# running out of file descriptors, and framing meant to confuse. Each
# attack's figures are asserted: answers, peak and settled memory,
# connections held, time taken, CPU used.
#
# Memory figures are not asserted under AddressSanitizer, whose shadow
# memory and quarantine make RSS meaningless; everything else is.

. "$(dirname "$0")/lib.sh"

command -v node >/dev/null 2>&1 || tg_bail "node is needed (tests/hostile.mjs)"
HOSTILE=$top_srcdir/tests/hostile.mjs

# Whether tollgated was built with AddressSanitizer.
if ldd "$TG_GATEWAY_BIN" 2>/dev/null | grep -q libasan; then
	SANITIZED=1
else
	SANITIZED=0
fi

# hostile MODE ARGS... : runs the attack client against the gateway; its
# JSON summary goes to $TG_TMP/hostile.json and stdout.
hostile() {
	local mode=$1
	shift
	node "$HOSTILE" "$mode" --port "$TG_GW_PORT" "$@" >"$TG_TMP/hostile.json"
	cat "$TG_TMP/hostile.json"
}

# jqh FILTER : reads the last attack's summary.
jqh() {
	jq -r "$1" "$TG_TMP/hostile.json"
}

# rss_kb [FIELD] : the gateway's VmRSS (or FIELD, e.g. VmHWM) in kB.
rss_kb() {
	awk -v f="${1:-VmRSS}:" '$1 == f { print $2 }' "/proc/$TG_GW_PID/status"
}

# Resets the gateway's peak RSS (VmHWM) to its current RSS.
reset_peak() {
	echo 5 >"/proc/$TG_GW_PID/clear_refs" 2>/dev/null || true
}

# cpu_ticks : user+system clock ticks the gateway used so far.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$TG_GW_PID/stat"
}

# settles_to LIMIT_KB : whether RSS comes down to LIMIT_KB within 10 s.
settles_to() {
	tg_wait_until -i 0.5 10 "[ \"\$(rss_kb)\" -le $1 ]"
}

# check_memory NAME BASE_KB PEAK_MAX_MB SETTLE_MAX_MB : the peak during the
# attack stayed under BASE + PEAK_MAX_MB, and RSS settles back to BASE +
# SETTLE_MAX_MB.
check_memory() {
	local name=$1 base=$2 peak_max=$3 settle_max=$4 peak
	peak=$(rss_kb VmHWM)
	tg_log "$name: RSS $((base / 1024)) MB before, peak $((peak / 1024)) MB, now $(($(rss_kb) / 1024)) MB"
	if [ "$SANITIZED" = 1 ]; then
		tg_ok "$name: memory figures not asserted under AddressSanitizer"
		return
	fi
	assert_true "$name: peak RSS under $((base / 1024)) + $peak_max MB (was $((peak / 1024)) MB)" \
		[ "$peak" -le $((base + peak_max * 1024)) ]
	assert_true "$name: RSS back under $((base / 1024)) + $settle_max MB" \
		settles_to $((base + settle_max * 1024))
}

tg_start_pg
tg_start_mock
tg_ctl tenant add hostile >/dev/null || tg_bail "tenant add failed"
KEY=$(tg_issue_key hostile --name main)
tg_ctl tenant add limited >/dev/null || tg_bail "tenant add failed"
tg_ctl limit set --tenant limited --rpm 5 >/dev/null || tg_bail "limit set failed"
LIMITED=$(tg_issue_key limited --name main)

LIMITS="max_body_size = 8M
header_timeout = 2000
body_timeout = 3000"
tg_start_gateway "$LIMITS
max_connections_per_address = 2000"

# Warm up: a request of every kind, so the baseline includes what serving
# normally allocates.
for i in 1 2 3; do
	tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body openai-chat)"
done
assert_eq "a keyed request is served" 200 "$TG_STATUS"
sleep 1
BASE=$(rss_kb)

# -- 200 connections, each an 8 MB body without a key -----------------------
reset_peak
hostile bodies --conns 200 --size 8388608 >/dev/null
assert_eq "no key, 8 MB bodies: all 200 answered 401" 200 "$(jqh '.statuses["401"] // 0')"
assert_match "no key, 8 MB bodies: the 401 is JSON with x-request-id" \
	'x-request-id: req_[0-9a-f]{24}.*"code":"invalid_api_key"' \
	"$(jqh '.sample' | tr -d '\r' | tr '\n' ' ')"
tg_log "no key, 8 MB bodies: $(jqh .ms) ms"
check_memory "no key, 8 MB bodies" "$BASE" 48 16

# -- 1,000 connections, each 12,500 tiny header fields -----------------------
reset_peak
hostile headers --conns 1000 --count 12500 >/dev/null
assert_eq "12,500 header fields: all 1,000 answered 431" 1000 "$(jqh '.statuses["431"] // 0')"
assert_match "12,500 header fields: the 431 is JSON" \
	'"message":"Too many request header fields."' "$(jqh '.sample')"
check_memory "12,500 header fields" "$BASE" 64 16

# -- a byte every 500 ms: header_timeout is a deadline -----------------------
# 5,000 of them from one address: max_connections_per_address (2,000
# here) holds some, the rest are refused at once; none outlives the
# deadline however it trickles.
# The attack client needs a descriptor per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
TRICKLE=5000
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 6000 ]; then
	TRICKLE=$(($(ulimit -n) - 1000))
	tg_log "open-file limit $(ulimit -n): $TRICKLE trickling connections"
fi
HELD=$((TRICKLE < 2000 ? TRICKLE : 2000))
# The connections of the attacks before are gone (they count per address).
tg_wait_until 15 '[ "$(tg_metric tollgate_client_connections)" = 0 ]' ||
	tg_log "connections still open before trickling: $(tg_metric tollgate_client_connections)"
hostile trickle --conns "$TRICKLE" --interval 500 --for 8000 >/dev/null
N408=$(jqh '.statuses["408"] // 0')
N503=$(jqh '.statuses["503"] // 0')
tg_log "trickling: $N408 answered 408, $N503 answered 503, last closed at $(jqh .max_close_ms) ms"
assert_eq "trickling: the server closed all $TRICKLE" "$TRICKLE" "$(jqh .closed_by_server)"
assert_eq "trickling: each answered, 408 at the deadline or 503 at once" \
	"$TRICKLE" $((N408 + N503))
# A slot freed by a deadline may take a later connection, so at least
# HELD of them reached their deadline.
assert_true "trickling: at least $HELD held until the deadline ($N408)" [ "$N408" -ge "$HELD" ]
assert_true "trickling: none lived past header_timeout + 1.5 s (longest $(jqh .max_close_ms) ms)" \
	[ "$(jqh .max_close_ms)" -le 3500 ]
assert_true "trickling: no connection left open" \
	tg_wait_until 5 '[ "$(tg_metric tollgate_client_connections)" = 0 ]'

# -- connections held: per address and in all --------------------------------
# The per-address limit comes down by a reload.
tg_write_config "$TG_TMP/tollgate.conf" "$LIMITS
max_connections_per_address = 100"
kill -HUP "$TG_GW_PID"
assert_true "reload with max_connections_per_address = 100" \
	tg_wait_until 5 "grep -q 'configuration reloaded' '$TG_TMP/gateway.log'"
node "$HOSTILE" hold --port "$TG_GW_PORT" --conns 250 --for 1500 >"$TG_TMP/hostile.json" &
HOLD=$!
sleep 1
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body openai-chat)" \
	--interface 127.0.0.2
assert_eq "while one address holds its 100: another is served" 200 "$TG_STATUS"
assert_true "while one address holds its 100: /readyz answers" tg_readyz_is 200
wait "$HOLD"
assert_eq "250 idle connections from one address: 100 held" 100 "$(jqh .open)"
assert_eq "...the other 150 answered 503" 150 "$(jqh '.statuses["503"] // 0')"

# -- a flood without a key: counted, not recorded one by one ----------------
ROWS0=$(tg_psql "SELECT count(*) FROM usage_records")
LINES0=$(grep -c 'status=401' "$TG_TMP/gateway.log")
UNAUTH0=$(tg_unauth_count)
hostile flood --conns 8 --for 5000 >/dev/null
N401=$(jqh '.statuses["401"] // 0')
tg_log "flood without a key: $N401 answered 401 in $(jqh .ms) ms"
assert_true "flood without a key: thousands answered 401 ($N401)" [ "$N401" -ge 2000 ]
assert_eq "flood without a key: nothing else" "$N401" "$(jqh .sent)"
assert_true "flood without a key: every refusal counted in unauthenticated_refusals" \
	tg_wait_until 10 '[ "$(tg_unauth_count)" -eq $((UNAUTH0 + N401)) ]'
assert_true "flood without a key: one row per source and minute ($(tg_psql "SELECT count(*) FROM unauthenticated_refusals"))" \
	[ "$(tg_psql "SELECT count(*) FROM unauthenticated_refusals WHERE source = '127.0.0.1'")" -le 3 ]
assert_eq "flood without a key: no usage record" "$ROWS0" \
	"$(tg_psql "SELECT count(*) FROM usage_records")"
assert_true "flood without a key: counted in /metrics" \
	[ "$(tg_metric tollgate_unauthenticated_refusals_total)" -ge "$N401" ]
LINES=$(($(grep -c 'status=401' "$TG_TMP/gateway.log") - LINES0))
assert_true "flood without a key: refusals logged at a bounded rate ($LINES lines)" \
	[ "$LINES" -le 60 ]

# -- a tenant's refusals count against its request limit ---------------------
ROWS0=$(tg_psql "SELECT count(*) FROM usage_records")
hostile flood --conns 4 --for 3000 --key "$LIMITED" --model no-such-model >/dev/null
tg_log "5 rpm tenant, unknown model: $(jq -c .statuses "$TG_TMP/hostile.json")"
# A refusal counts when it ends, so requests already past the check (at
# most one per connection, 4 here) may add to the 5.
N404=$(jqh '.statuses["404"] // 0')
assert_true "5 rpm, unknown model: 5 answered 404, 8 at most ($N404)" \
	[ "$N404" -ge 5 -a "$N404" -le 8 ]
assert_eq "5 rpm, unknown model: the rest 429 before their body is read" \
	$(($(jqh .sent) - N404)) "$(jqh '.statuses["429"] // 0')"

# -- /metrics labels what the operator configured, not what clients send ----
hostile flood --conns 4 --for 60000 --count 5000 --key "$KEY" --model made-up --unique 1 >/dev/null
N404=$(jqh '.statuses["404"] // 0')
tg_log "distinct unknown models: $N404 answered 404 in $(jqh .ms) ms"
assert_eq "5,000 distinct unknown models: all answered 404" 5000 "$N404"
curl -s "$TG_ADMIN_URL/metrics" >"$TG_TMP/metrics.txt"
assert_eq "distinct unknown models: none is a label" 0 \
	"$(grep -c 'model="made-up' "$TG_TMP/metrics.txt")"
assert_true "distinct unknown models: counted under model=\"other\"" \
	[ "$(grep '^tollgate_requests_total{tenant="hostile",model="other",status="404"}' "$TG_TMP/metrics.txt" | awk '{ print $2 }')" -ge "$N404" ]
assert_true "the exposition stays small ($(wc -l <"$TG_TMP/metrics.txt") lines)" \
	[ "$(wc -l <"$TG_TMP/metrics.txt")" -le 600 ]
assert_true "the exposition is valid UTF-8" \
	iconv -f UTF-8 -t UTF-8 -o /dev/null "$TG_TMP/metrics.txt"
tg_ctl tenant add latecomer >/dev/null || tg_bail "tenant add failed"
LATE=$(tg_issue_key latecomer)
assert_true "a tenant added afterwards is served" \
	tg_wait_chat_status "$LATE" openai-chat 200
assert_match "...and shows in /metrics" \
	'tollgate_requests_total\{tenant="latecomer",model="openai-chat",status="200"\} 1' \
	"$(curl -s "$TG_ADMIN_URL/metrics")"

# -- out of file descriptors -------------------------------------------------
# The open-file limit is lowered under the running gateway, below what
# the connections it is offered need: accept() fails with EMFILE. It must
# pause instead of spinning, and log at most about once a second.
tg_write_config "$TG_TMP/tollgate.conf" "$LIMITS
max_connections_per_address = 2000"
kill -HUP "$TG_GW_PID"
sleep 1
prlimit --pid "$TG_GW_PID" --nofile=128:128 ||
	tg_bail "prlimit could not lower the gateway's open-file limit"
LOG_BEFORE=$(grep -c 'accept: ' "$TG_TMP/gateway.log")
T0=$(cpu_ticks)
hostile hold --conns 400 --for 6000 >/dev/null
T1=$(cpu_ticks)
LOG_AFTER=$(grep -c 'accept: ' "$TG_TMP/gateway.log")
HZ=$(getconf CLK_TCK)
tg_log "out of fds: $(jqh .open) of 400 held, CPU $(((T1 - T0) * 1000 / HZ)) ms in 6 s, $((LOG_AFTER - LOG_BEFORE)) accept log lines"
assert_true "out of fds: some connections held, not all ($(jqh .open))" \
	[ "$(jqh .open)" -gt 0 -a "$(jqh .open)" -lt 400 ]
assert_true "out of fds: the gateway used under 1.5 s of CPU in 6 s (not a tight loop)" \
	[ $(((T1 - T0) * 1000 / HZ)) -lt 1500 ]
assert_true "out of fds: accept errors logged at most ~once a second ($((LOG_AFTER - LOG_BEFORE)) lines)" \
	[ $((LOG_AFTER - LOG_BEFORE)) -ge 1 -a $((LOG_AFTER - LOG_BEFORE)) -le 8 ]
prlimit --pid "$TG_GW_PID" --nofile=65536:65536 ||
	prlimit --pid "$TG_GW_PID" --nofile=1024:1024
assert_true "out of fds: once they are gone, requests are served" \
	tg_wait_chat_status "$KEY" openai-chat 200
assert_true "out of fds: /readyz answers" tg_readyz_is 200

# After all of the above, memory is back where it started.
if [ "$SANITIZED" = 1 ]; then
	tg_ok "after every attack: memory not asserted under AddressSanitizer"
else
	assert_true "after every attack: RSS back under $((BASE / 1024)) + 16 MB (now $(($(rss_kb) / 1024)) MB)" \
		settles_to $((BASE + 16 * 1024))
fi

# -- framing meant to confuse ------------------------------------------------
# raw NAME BYTES STATUS PATTERN : sends BYTES (printf format) on one
# connection; the first answer has STATUS and its text matches PATTERN.
raw() {
	local name=$1 data=$2 status=$3 pat=$4 text
	node "$HOSTILE" raw --port "$TG_GW_PORT" --for 3000 \
		--data "$(printf "$data" | base64 -w0)" >"$TG_TMP/hostile.json"
	assert_eq "$name: $status" "$status" "$(jqh .status)"
	text=$(jqh .text | tr -d '\r' | tr '\n' ' ')
	assert_match "$name: answer" "$pat" "$text"
}
CHAT='POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n'
JSON_ERR='x-request-id: req_[0-9a-f]{24}.*Content-Type: application/json.*\{"error":\{"message":'
raw "two different Content-Length" "${CHAT}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" \
	400 "$JSON_ERR\"Conflicting Content-Length headers"
raw "Content-Length list that disagrees" "${CHAT}Content-Length: 5, 6\r\n\r\nhello!" \
	400 "$JSON_ERR\"Malformed Content-Length"
raw "Transfer-Encoding gzip" "${CHAT}Transfer-Encoding: gzip\r\n\r\n" \
	400 "$JSON_ERR\"Only Transfer-Encoding: chunked"
raw "Transfer-Encoding chunked beside Content-Length" \
	"${CHAT}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" \
	400 "$JSON_ERR\"Both Content-Length and Transfer-Encoding"
raw "Transfer-Encoding twice" \
	"${CHAT}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" \
	400 "$JSON_ERR\"Only Transfer-Encoding: chunked"
raw "bare LF line ends" 'GET /v1/models HTTP/1.1\nHost: gw\n\n' \
	400 "$JSON_ERR\"Bare LF"
raw "a folded header line" "${CHAT}X-a: b\r\n c\r\n\r\n" \
	400 "$JSON_ERR\"Folded header lines"
raw "a space before the colon" "${CHAT}Content-Length : 5\r\n\r\nhello" \
	400 "$JSON_ERR\"Malformed header field"
raw "a malformed request line" 'HELLO\r\n\r\n' \
	400 "$JSON_ERR\"Malformed request line"
raw "an absolute URL as target" 'GET http://evil/v1/models HTTP/1.1\r\nHost: gw\r\n\r\n' \
	400 "$JSON_ERR\"The request target must be a path"
raw "HTTP/2 prior knowledge" 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' \
	505 "$JSON_ERR\"Only HTTP/1.0 and HTTP/1.1"
raw "a NUL in a header value" "${CHAT}X-a: b\0c\r\n\r\n" \
	400 "$JSON_ERR\"Control character"
raw "HEAD on an endpoint" 'HEAD /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n\r\n' \
	405 'x-request-id: req_[0-9a-f]{24}.*Allow: POST.*Content-Type: application/json.*Content-Length: [1-9][0-9]* *$'
raw "OPTIONS on an endpoint" 'OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n\r\n' \
	405 "$JSON_ERR\"Only POST is allowed here"
raw "OPTIONS *" 'OPTIONS * HTTP/1.1\r\nHost: gw\r\n\r\n' \
	404 "$JSON_ERR\"Unknown request URL"
raw "Expect other than 100-continue" "${CHAT}Expect: magic\r\nContent-Length: 2\r\n\r\n{}" \
	417 "$JSON_ERR\"Only Expect: 100-continue"
raw "an Anthropic path answers in Anthropic's shape" \
	'GET /v1/messages/nope HTTP/1.1\r\nHost: gw\r\n\r\n' \
	404 '\{"type":"error","error":\{"type":"not_found_error"'
raw "a body over max_body_size is refused before it is read" \
	"POST /v1/messages HTTP/1.1\r\nHost: gw\r\nx-api-key: $KEY\r\nContent-Length: 99999999\r\n\r\n" \
	413 '\{"type":"error","error":\{"type":"request_too_large","message":"Request body exceeds the limit of 8388608 bytes."'

# A client's line breaks and bytes that are not UTF-8 cannot forge log lines.
sleep 1 # lines about refusals are rate-limited: let the allowance refill
printf '{"model":"gpt-forge\\r\\n2026-01-01T00:00:00.000Z info req_forged tenant=admin forged line \\u0007","messages":[{"role":"user","content":"hi"}]}' \
	>"$TG_TMP/forge.json"
tg_http POST /v1/chat/completions "$KEY" "@$TG_TMP/forge.json"
assert_eq "a model with CR/LF: refused 404" 404 "$TG_STATUS"
printf '{"model":"gpt-\xff\xfe-bytes","messages":[{"role":"user","content":"hi"}]}' \
	>"$TG_TMP/bytes.json"
tg_http POST /v1/chat/completions "$KEY" "@$TG_TMP/bytes.json"
assert_true "the model with CR/LF is logged on one line, escaped" \
	tg_wait_until 5 "grep -q 'model=gpt-forge\\\\r\\\\n2026-01-01T00:00:00.000Z info req_forged' '$TG_TMP/gateway.log'"
assert_eq "no forged line in the log" 0 \
	"$(grep -c '^2026-01-01T00:00:00.000Z info req_forged' "$TG_TMP/gateway.log")"
assert_true "the log is valid UTF-8" \
	iconv -f UTF-8 -t UTF-8 -o /dev/null "$TG_TMP/gateway.log"

# The admin address answers its errors in JSON too.
node "$HOSTILE" raw --port "$TG_GW_ADMIN_PORT" --for 3000 \
	--data "$(printf 'HELLO\r\n\r\n' | base64 -w0)" >"$TG_TMP/hostile.json"
assert_eq "admin, a malformed request line: 400" 400 "$(jqh .status)"
assert_match "admin, a malformed request line: JSON" '\{"error":\{"message":"Malformed request line."' \
	"$(jqh .text)"
assert_eq "admin, an unknown path: 404 in JSON" "404 unknown_url" \
	"$(curl -s -o "$TG_TMP/a.json" -w '%{http_code}' "$TG_ADMIN_URL/nope") $(jq -r .error.code "$TG_TMP/a.json")"

# The admin address with a token: required everywhere but /healthz; and
# required at all off loopback.
printf 'admin-token-%s\n' "$$" >"$TG_TMP/admin.token"
chmod 600 "$TG_TMP/admin.token"
tg_write_config "$TG_TMP/tollgate.conf" "$LIMITS
max_connections_per_address = 2000
admin_token_file = $TG_TMP/admin.token"
kill -HUP "$TG_GW_PID"
assert_true "admin token: once reloaded, /metrics without it is 401" \
	tg_wait_until 5 '[ "$(tg_http_code "$TG_ADMIN_URL/metrics")" = 401 ]'
curl -s -D "$TG_TMP/a.hdr" -o "$TG_TMP/a.json" "$TG_ADMIN_URL/readyz"
assert_eq "admin token: the 401 is JSON with WWW-Authenticate" \
	"invalid_admin_token 1" \
	"$(jq -r .error.code "$TG_TMP/a.json") $(grep -ci '^WWW-Authenticate: Bearer' "$TG_TMP/a.hdr")"
assert_eq "admin token: a wrong one is 401" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "$TG_ADMIN_URL/metrics")"
TG_ADMIN_TOKEN=admin-token-$$
assert_true "admin token: with it, /metrics is 200" tg_http_is "$TG_ADMIN_URL/metrics" 200
assert_eq "admin token: /healthz needs none" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' "$TG_ADMIN_URL/healthz")"
printf '[tollgate]\nadmin_listen = 0.0.0.0:1\ndatabase = x\nspool_dir = /tmp\n' >"$TG_TMP/open-admin.conf"
"$TG_GATEWAY_BIN" -t -c "$TG_TMP/open-admin.conf" >"$TG_TMP/t.out" 2>&1
assert_eq "admin_listen off loopback without a token: tollgated -t fails" 1 $?
assert_match "...saying why" "admin_listen 0.0.0.0:1 is not a loopback address: set admin_token_file" \
	"$(cat "$TG_TMP/t.out")"

# tollctl will not hash keys without the key secret.
OUT=$(env -u TOLLGATE_KEY_SECRET "$TG_CTL_BIN" --database "$TOLLGATE_DATABASE" \
	key issue --tenant hostile 2>&1)
RC=$?
assert_true "tollctl key issue without a key secret: fails ($RC)" [ "$RC" -ne 0 ]
assert_match "...saying why" "no key secret: set key_secret_file or TOLLGATE_KEY_SECRET" "$OUT"

# Two requests in one write are answered in order on one connection.
BODY=$(tg_chat_body openai-chat)
ONE="POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer $KEY\r\nContent-Type: application/json\r\nContent-Length: ${#BODY}\r\n\r\n$BODY"
node "$HOSTILE" raw --port "$TG_GW_PORT" --for 3000 \
	--data "$(printf "$ONE$ONE" | base64 -w0)" >"$TG_TMP/hostile.json"
assert_eq "pipelined: two answers on one connection" 2 \
	"$(jqh .text | grep -c '^HTTP/1.1 200 OK')"

# HTTP/1.0 clients: a whole answer, and a stream delimited by the close.
tg_http POST /v1/chat/completions "$KEY" "$BODY" --http1.0
assert_eq "HTTP/1.0: served" 200 "$TG_STATUS"
assert_file_eq "HTTP/1.0: the answer" "$FIXTURES/openai-chat.json" "$TG_BODY"
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body openai-chat -)" --http1.0
assert_eq "HTTP/1.0 stream: served" 200 "$TG_STATUS"
assert_true "HTTP/1.0 stream: ends with [DONE]" grep -q 'data: \[DONE\]' "$TG_BODY"

# Chunked request bodies are read.
tg_http POST /v1/chat/completions "$KEY" "$BODY" -H 'Transfer-Encoding: chunked'
assert_eq "a chunked request body is served" 200 "$TG_STATUS"

tg_done
