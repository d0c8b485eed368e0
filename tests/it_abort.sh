#!/bin/bash
# it_abort.sh - aborted and failed requests are billed for what reached the
# client, and only that: a client leaving mid-stream cancels the upstream
# transfer and is billed the relayed part (estimated, client-aborted); an
# upstream that cuts, stalls or errs mid-stream bills what was relayed; a
# request that never reached the provider bills zero. Every request gets
# exactly one usage record.

. "$(dirname "$0")/lib.sh"

CHAT=/v1/chat/completions
FIXTURE=$FIXTURES/openai-chat-stream.sse
USAGE_ON='{"include_usage":true}'

# Prints the first N events of an SSE file.
first_events() {
	awk -v n="$2" 'BEGIN { RS = ""; ORS = "\n\n" } NR <= n { print }' "$1"
}

# Whether file $2 begins with the bytes of file $1.
starts_with() {
	[ -s "$1" ] && head -c "$(wc -c <"$1")" "$2" | cmp -s - "$1"
}

# check_one_record LABEL REQUEST_ID : exactly one usage record has the id.
check_one_record() {
	if [ -z "$2" ]; then
		tg_not_ok "$1: exactly one usage record" "no x-request-id header"
		return
	fi
	tg_wait_row "$2" >/dev/null
	assert_eq "$1: exactly one usage record" 1 "$(tg_record_count "$2")"
}

# check_range LABEL VALUE LOW HIGH : LOW <= VALUE <= HIGH, integers.
check_range() {
	if [[ $2 =~ ^[0-9]+$ && $3 =~ ^[0-9]+$ && $4 =~ ^[0-9]+$ ]] &&
		[ "$2" -ge "$3" ] && [ "$2" -le "$4" ]; then
		tg_ok "$1 ($2 in $3..$4)"
	else
		tg_not_ok "$1" "expected an integer in $3..$4" "got: '$2'"
	fi
}

# check_upstream_left LABEL STATS REASON_REGEX : the mock saw its peer (the
# gateway) leave before the response ended, with the last request ending
# for a reason matching REASON_REGEX; nothing was served whole.
check_upstream_left() {
	local label=$1 stats=$2 re=$3 got
	got=$(jq -r '"served=\(.served) client_left=\(.client_left) in_flight=\(.in_flight) end=\(.last.end // "-") events=\(.last.events_sent // "-")/\(.last.events_total // "-")"' \
		<<<"$stats" 2>/dev/null)
	assert_match "$label" \
		"^served=0 client_left=1 in_flight=0 end=($re) " "$got"
}

tg_start_pg
tg_start_mock
DEAD_PORT=$(tg_free_port) || tg_bail "no free port"
BLACKHOLE_PORT=$(curl -sS -f --max-time 5 -X POST \
	"$TG_MOCK_URL/_mock/blackhole" | jq -r .port)
[[ $BLACKHOLE_PORT =~ ^[0-9]+$ ]] || tg_bail "mock blackhole port unavailable"
# stalls: a provider that gives up on a silent stream after 1 s.
# dead: nothing listens. blackhole: the connection attempt never completes
# (the gateway would wait 20 s).
TG_EXTRA_SECTIONS="[provider stalls]
type = openai
base_url = $TG_MOCK_URL/openai/v1
idle_timeout = 1000

[provider dead]
type = openai
base_url = http://127.0.0.1:$DEAD_PORT/v1
connect_timeout = 2000

[provider blackhole]
type = openai
base_url = http://127.0.0.1:$BLACKHOLE_PORT/v1
connect_timeout = 20000

[route stalled]
target = stalls:openai-chat

[route refused]
target = dead:openai-chat

[route unreachable]
target = blackhole:openai-chat

[route slow-json]
target = openai:openai-chat"
tg_start_gateway
KEY=$(tg_issue_key aborts) || tg_bail "cannot issue a key"

# Reference: the provider sends every content event (4 of 6), then drops
# the connection before the usage event. The estimate of the whole text
# bounds every partial one below; the prompt estimate is the same for
# every request with this body.
tg_mock_reset || tg_bail "mock reset failed"
tg_mock_config '{"fail":"cut","cut_after":4,"fail_times":1}' ||
	tg_bail "mock config failed"
tg_http POST "$CHAT" "$KEY" "$(tg_chat_body openai-chat "$USAGE_ON")" -N
first_events "$FIXTURE" 4 >"$TG_TMP/four-events"
assert_true "whole text, then cut: the client got the four events" \
	starts_with "$TG_TMP/four-events" "$TG_BODY"
tg_check_row "whole text, then cut: estimated, text billed" "$TG_RID" \
	"status, usage_source, client_aborted, prompt_tokens > 0,
	 completion_tokens > 0" "200|estimated|f|t|t"
IFS='|' read -r REF_PROMPT FULL_COMPLETION <<<"$(tg_row "$TG_RID" \
	"prompt_tokens, completion_tokens")"
tg_log "estimates of this request: prompt ${REF_PROMPT:-?}, whole text ${FULL_COMPLETION:-?}"

# 1. The client leaves after two events of a slow stream: the gateway
# cancels the upstream transfer (the mock sees its peer leave before the
# end and never serves the stream whole), and bills the relayed part.
tg_mock_reset || tg_bail "mock reset failed"
tg_mock_config '{"chunk_delay_ms":400}' || tg_bail "mock config failed"
tg_stream_abort "$CHAT" "$KEY" "$(tg_chat_body openai-chat "$USAGE_ON")" 2
assert_match "client abort: the client left mid-stream (after 2 events)" \
	'^1 [2-5]$' "$TG_ABORTED $TG_EVENTS"
assert_true "client abort: what the client got is the stream's beginning" \
	starts_with "$TG_BODY" "$FIXTURE"
stats=$(tg_mock_wait_idle 10)
check_upstream_left \
	"client abort: the gateway cancelled the upstream transfer" \
	"$stats" "client closed the connection"
assert_json "client abort: upstream stopped before its last event" \
	'.last.events_sent < .last.events_total' <(printf '%s' "$stats")
check_one_record "client abort" "$TG_RID"
tg_check_row "client abort: record" "$TG_RID" \
	"status, streamed, usage_source, client_aborted" "200|t|estimated|t"
IFS='|' read -r p c <<<"$(tg_row "$TG_RID" "prompt_tokens, completion_tokens")"
check_range "client abort: prompt estimated from the request" "$p" 1 \
	"${REF_PROMPT:-0}"
assert_eq "client abort: the same prompt estimate as the reference" \
	"${REF_PROMPT:-?}" "$p"
check_range "client abort: completion billed, at most the whole text" \
	"$c" 1 "${FULL_COMPLETION:-0}"

# 2. The provider cuts the stream after two events: the client keeps them,
# is not told the stream completed, and the record is estimated.
tg_mock_reset || tg_bail "mock reset failed"
tg_mock_config '{"fail":"cut","cut_after":2,"fail_times":1}' ||
	tg_bail "mock config failed"
tg_http POST "$CHAT" "$KEY" "$(tg_chat_body openai-chat "$USAGE_ON")" -N
first_events "$FIXTURE" 2 >"$TG_TMP/two-events"
assert_eq "upstream cut: status" 200 "$TG_STATUS"
assert_true "upstream cut: the client got the two relayed events" \
	starts_with "$TG_TMP/two-events" "$TG_BODY"
assert_true "upstream cut: no [DONE] invented" \
	sh -c "! grep -q 'data: \[DONE\]' '$TG_BODY'"
check_one_record "upstream cut" "$TG_RID"
tg_check_row "upstream cut: record" "$TG_RID" \
	"status, usage_source, client_aborted, prompt_tokens" \
	"200|estimated|f|${REF_PROMPT:-?}"
check_range "upstream cut: completion billed, at most the whole text" \
	"$(tg_row "$TG_RID" completion_tokens)" 1 "${FULL_COMPLETION:-0}"
assert_match "upstream cut: the error names the upstream failure" \
	'[Uu]pstream.*([Ff]ail|[Cc]losed|[Cc]ut)' \
	"$(tg_row "$TG_RID" "coalesce(error, '')")"

# 3. The provider sends two events, then nothing, with the connection
# open: the provider's idle_timeout (1 s) ends the stream.
tg_mock_reset || tg_bail "mock reset failed"
tg_mock_config '{"fail":"stall","cut_after":2,"fail_times":1}' ||
	tg_bail "mock config failed"
tg_http POST "$CHAT" "$KEY" "$(tg_chat_body stalled "$USAGE_ON")" -N
assert_eq "upstream stall: status" 200 "$TG_STATUS"
assert_true "upstream stall: the client got the two relayed events" \
	starts_with "$TG_TMP/two-events" "$TG_BODY"
check_upstream_left "upstream stall: the gateway closed the silent upstream" \
	"$(tg_mock_wait_idle 10)" "stalled until the client left"
check_one_record "upstream stall" "$TG_RID"
tg_check_row "upstream stall: record" "$TG_RID" \
	"status, usage_source, client_aborted, prompt_tokens,
	 completion_tokens > 0" "200|estimated|f|${REF_PROMPT:-?}|t"
assert_match "upstream stall: the error names the timeout" \
	'[Ii]dle|[Tt]ime[d ]?out' "$(tg_row "$TG_RID" "coalesce(error, '')")"

# 4. "500 mid-stream": two events of a 200 stream, then OpenAI's error
# event, and the response ends without [DONE]. The client gets the error
# event as the provider sent it.
tg_mock_reset || tg_bail "mock reset failed"
tg_mock_config '{"fail":"error","cut_after":2,"fail_times":1}' ||
	tg_bail "mock config failed"
tg_http POST "$CHAT" "$KEY" "$(tg_chat_body openai-chat "$USAGE_ON")" -N
{
	cat "$TG_TMP/two-events"
	printf 'data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}\n\n'
} >"$TG_TMP/error-stream"
assert_eq "error event: status" 200 "$TG_STATUS"
assert_file_eq "error event: relayed as sent" "$TG_TMP/error-stream" \
	"$TG_BODY"
check_one_record "error event" "$TG_RID"
tg_check_row "error event: record" "$TG_RID" \
	"status, usage_source, client_aborted, prompt_tokens,
	 completion_tokens > 0" "200|estimated|f|${REF_PROMPT:-?}|t"
assert_match "error event: the record names the provider's error" \
	"error mid-stream: .*The server had an error" \
	"$(tg_row "$TG_RID" "coalesce(error, 'NULL')")"

# 5a. Nothing listens at the provider's address: 502, billed zero.
tg_mock_reset || tg_bail "mock reset failed"
tg_http POST "$CHAT" "$KEY" "$(tg_chat_body refused "$USAGE_ON")" -N
assert_eq "connection refused: status" 502 "$TG_STATUS"
check_one_record "connection refused" "$TG_RID"
tg_check_row "connection refused: billed zero" "$TG_RID" \
	"status, usage_source, prompt_tokens, completion_tokens, client_aborted" \
	"502|none|0|0|f"

# 5b. The provider answers 500 before any other byte: passed through,
# billed zero.
tg_mock_config '{"fail":"500","fail_times":1}' || tg_bail "mock config failed"
tg_http POST "$CHAT" "$KEY" "$(tg_chat_body openai-chat "$USAGE_ON")" -N
assert_eq "provider 500: status passed through" 500 "$TG_STATUS"
assert_eq "provider 500: body passed through" "mock: injected failure" \
	"$(jq -r .error.message "$TG_BODY" 2>/dev/null)"
check_one_record "provider 500" "$TG_RID"
tg_check_row "provider 500: billed zero" "$TG_RID" \
	"status, usage_source, prompt_tokens, completion_tokens" "500|none|0|0"

# 5c. The client leaves (after 1 s) while the gateway is still connecting
# to a provider that does not answer the connection attempt. The client
# never got a request id: the record is found by its route's name.
TG_HTTP_TIMEOUT=1 tg_http POST "$CHAT" "$KEY" \
	"$(tg_chat_body unreachable "$USAGE_ON")" -N
assert_eq "left while connecting: the client gave up (curl rc 28)" \
	"28 000" "$TG_CURL_RC $TG_STATUS"
W="requested_model = 'unreachable'"
if tg_wait_where "$W" 10; then
	tg_ok "left while connecting: recorded within 10 s"
else
	tg_not_ok "left while connecting: recorded within 10 s" \
		"no record with $W (the gateway's connect timeout is 20 s)"
fi
assert_eq "left while connecting: exactly one usage record" 1 \
	"$(tg_psql "SELECT count(*) FROM usage_records WHERE $W")"
assert_eq "left while connecting: client-aborted, billed zero" "t|0|0" \
	"$(tg_psql "SELECT client_aborted, prompt_tokens, completion_tokens
		FROM usage_records WHERE $W")"
tg_log "left while connecting: status, usage_source, error = $(tg_psql "SELECT status, usage_source, coalesce(error, 'NULL') FROM usage_records WHERE $W")"

# 6. Not streamed: the provider takes 3 s to answer, the client leaves
# after 1 s. The gateway cancels the upstream request (the mock sees it
# leave before answering); no completion can be billed, the prompt at
# most.
tg_mock_reset || tg_bail "mock reset failed"
tg_mock_config '{"latency_ms":3000}' || tg_bail "mock config failed"
TG_HTTP_TIMEOUT=1 tg_http POST "$CHAT" "$KEY" "$(tg_chat_body slow-json)"
assert_eq "json, client left: the client gave up (curl rc 28)" \
	"28 000" "$TG_CURL_RC $TG_STATUS"
check_upstream_left "json, client left: the gateway cancelled upstream" \
	"$(tg_mock_wait_idle 10)" "client left before the response started"
W="requested_model = 'slow-json'"
tg_wait_where "$W" 10
assert_eq "json, client left: exactly one usage record" 1 \
	"$(tg_psql "SELECT count(*) FROM usage_records WHERE $W")"
assert_eq "json, client left: client-aborted, not streamed, no completion" \
	"t|f|0" "$(tg_psql "SELECT client_aborted, streamed, completion_tokens
		FROM usage_records WHERE $W")"
check_range "json, client left: prompt at most the estimate" \
	"$(tg_psql "SELECT prompt_tokens FROM usage_records WHERE $W")" 0 \
	"${REF_PROMPT:-0}"
assert_eq "json, client left: usage_source fits the prompt billed" t \
	"$(tg_psql "SELECT usage_source = CASE WHEN prompt_tokens > 0
		THEN 'estimated' ELSE 'none' END FROM usage_records WHERE $W")"
tg_log "json, client left: status, usage_source, prompt, error = $(tg_psql "SELECT status, usage_source, prompt_tokens, coalesce(error, 'NULL') FROM usage_records WHERE $W")"

# After all that: a whole stream, nothing left in flight upstream.
tg_mock_reset || tg_bail "mock reset failed"
tg_http POST "$CHAT" "$KEY" "$(tg_chat_body openai-chat "$USAGE_ON")" -N
assert_file_eq "a stream afterwards is whole" "$FIXTURE" "$TG_BODY"
tg_check_row "a stream afterwards: reported usage" "$TG_RID" \
	"usage_source, prompt_tokens, completion_tokens, client_aborted" \
	"reported|25|9|f"
assert_eq "nothing left in flight at the provider" 0 \
	"$(tg_mock_wait_idle 10 | jq -r .in_flight)"

# Every reply the gateway finished was written out or lost with its
# client: none keeps a draining worker waiting.
tg_stop_gateway
assert_eq "stop: exit 0" 0 "$TG_STOP_STATUS"
assert_eq "stop: no reply left unwritten after all those clients" "" \
	"$(grep 'unwritten replies left' "$TG_TMP/gateway.log")"

tg_done
