#!/bin/bash
# it_stream.sh - streams are relayed event by event as they arrive, many
# streams at once keep their bytes and their records apart, and a client
# that goes away mid-stream is billed for what it got.

. "$(dirname "$0")/lib.sh"

N_PARALLEL=${N_PARALLEL:-50}

# stamped_stream BODY RAW STAMPS [CURL_ARGS...] : streams a chat request,
# keeping the raw bytes in RAW and each line with its arrival time (seconds,
# microsecond precision) in STAMPS.
stamped_stream() {
	local body=$1 raw=$2 stamps=$3
	shift 3
	curl -sS -N --max-time 30 -H 'Content-Type: application/json' \
		-H "Authorization: Bearer $KEY" --data-binary "$body" "$@" \
		"$TG_URL/v1/chat/completions" |
		tee "$raw" |
		while IFS= read -r line; do
			printf '%s %s\n' "$EPOCHREALTIME" "$line"
		done >"$stamps"
}

# Prints the seconds between the first and the last data line of STAMPS.
first_to_last() {
	awk '$2 == "data:" { if (first == "") first = $1; last = $1 }
		END { if (first == "") print -1; else printf "%.3f\n", last - first }' "$1"
}

# Whether a >= b, for decimal numbers.
num_ge() {
	awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'
}

tg_start_pg
tg_start_mock
tg_start_gateway
KEY=$(tg_issue_key streams) || tg_bail "cannot issue a key"

# Incremental relay: with 300 ms between upstream events, the first event
# reaches the client long before the last one.
tg_mock_config '{"chunk_delay_ms":300}' || tg_bail "mock config failed"
for c in "openai-chat|{\"include_usage\":true}|openai-chat-stream.sse" \
	"openai-chat|-|openai-chat-stream.sse.nousage" \
	"deepseek-chat|{\"include_usage\":true}|deepseek-chat-stream.sse" \
	"zhipu-chat|-|zhipu-chat-stream.sse"; do
	IFS='|' read -r model opts fixture <<<"$c"
	label="$model stream, stream_options ${opts/-/absent}"
	case $fixture in
	*.nousage)
		tg_sse_without_usage_event "$FIXTURES/${fixture%.nousage}" \
			>"$TG_TMP/$fixture"
		want=$TG_TMP/$fixture
		;;
	*)
		want=$FIXTURES/$fixture
		;;
	esac
	stamped_stream "$(tg_chat_body "$model" "$opts")" "$TG_TMP/raw" \
		"$TG_TMP/stamps"
	assert_file_eq "$label, 300 ms apart: bytes" "$want" "$TG_TMP/raw"
	spread=$(first_to_last "$TG_TMP/stamps")
	if num_ge "$spread" 0.6; then
		tg_ok "$label: first event arrives ${spread}s before the last"
	else
		tg_not_ok "$label: first event arrives well before the last" \
			"first to last data line: ${spread}s (upstream spreads them over >= 0.9 s)" \
			"$(head -n 8 "$TG_TMP/stamps" | cut -c 1-100)"
	fi
done

# curl's own view: the first byte arrives well before the end.
tg_http POST /v1/chat/completions "$KEY" \
	"$(tg_chat_body openai-chat '{"include_usage":true}')" -N
if num_ge "$(awk -v t="$TG_TOTAL" -v f="$TG_TTFB" 'BEGIN { print t - f }')" 0.6; then
	tg_ok "time to first byte ${TG_TTFB}s, total ${TG_TOTAL}s"
else
	tg_not_ok "time to first byte well before the total" \
		"time_starttransfer ${TG_TTFB}s, time_total ${TG_TOTAL}s"
fi
tg_mock_reset || tg_bail "mock reset failed"

# Many streams at once: each client gets its own exact bytes, and each
# request gets its own record with its own counts.
# model | stream_options | expected body | prompt | completion
STREAMS=(
	"openai-chat|{\"include_usage\":true}|openai-chat-stream.sse|25|9"
	"openai-chat|-|openai-chat-stream.sse.nousage|25|9"
	"zhipu-chat|-|zhipu-chat-stream.sse|16|38"
	"dashscope-chat|{\"include_usage\":true}|dashscope-chat-stream.sse|26|13"
	"qianfan-chat|{\"include_usage\":true}|qianfan-chat-stream.sse|3|11"
	"baichuan-chat|-|baichuan-chat-stream.sse|9|12"
	"yi-chat|-|yi-chat-stream.sse|17|6"
	"moonshot-chat|-|moonshot-chat-stream.sse|19|13"
	"deepseek-chat|-|deepseek-chat-stream.sse|11|11"
)
tg_mock_config '{"chunk_delay_ms":50}' || tg_bail "mock config failed"
mkdir -p "$TG_TMP/par"
pids=()
for ((i = 0; i < N_PARALLEL; i++)); do
	IFS='|' read -r model opts fixture p c <<<"${STREAMS[i % ${#STREAMS[@]}]}"
	curl -sS -N --max-time 60 -H 'Content-Type: application/json' \
		-H "Authorization: Bearer $KEY" \
		--data-binary "$(tg_chat_body "$model" "$opts")" \
		-D "$TG_TMP/par/$i.headers" -o "$TG_TMP/par/$i.body" \
		-w '%{http_code}' "$TG_URL/v1/chat/completions" \
		>"$TG_TMP/par/$i.status" 2>"$TG_TMP/par/$i.err" &
	pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do
	wait "$pid" || failed=$((failed + 1))
done
assert_eq "$N_PARALLEL parallel streams: every curl succeeded" 0 "$failed"

bad=()
: >"$TG_TMP/par/expected"
for ((i = 0; i < N_PARALLEL; i++)); do
	IFS='|' read -r model opts fixture p c <<<"${STREAMS[i % ${#STREAMS[@]}]}"
	if [ -f "$TG_TMP/$fixture" ]; then
		want=$TG_TMP/$fixture
	else
		want=$FIXTURES/$fixture
	fi
	status=$(cat "$TG_TMP/par/$i.status" 2>/dev/null)
	if [ "$status" != 200 ] || ! cmp -s "$want" "$TG_TMP/par/$i.body"; then
		bad+=("#$i $model status=$status $(cmp "$want" "$TG_TMP/par/$i.body" 2>&1 | head -n 1)")
	fi
	TG_HDRS=$TG_TMP/par/$i.headers
	rid=$(tg_header x-request-id)
	echo "$rid|$p|$c|reported|200|t" >>"$TG_TMP/par/expected"
done
if [ ${#bad[@]} = 0 ]; then
	tg_ok "$N_PARALLEL parallel streams: every body exact"
else
	tg_not_ok "$N_PARALLEL parallel streams: every body exact" "${bad[@]:0:10}"
fi
ids=$(cut -d'|' -f1 "$TG_TMP/par/expected" | grep -c .)
uniq_ids=$(cut -d'|' -f1 "$TG_TMP/par/expected" | grep . | sort -u | wc -l)
assert_eq "$N_PARALLEL parallel streams: distinct request ids" \
	"$N_PARALLEL|$N_PARALLEL" "$ids|$uniq_ids"

id_list=$(cut -d'|' -f1 "$TG_TMP/par/expected" | grep . |
	sed "s/'/''/g; s/.*/'&'/" | paste -sd,)
[ -n "$id_list" ] || id_list="''"
rows=0
tg_wait_until 10 'rows=$(tg_psql "SELECT count(*) FROM usage_records
	WHERE request_id IN ($id_list)"); [ "$rows" = "$N_PARALLEL" ]'
assert_eq "$N_PARALLEL parallel streams: $N_PARALLEL records within 10 s" \
	"$N_PARALLEL" "$rows"
tg_psql "SELECT request_id, prompt_tokens, completion_tokens, usage_source,
		status, streamed
	 FROM usage_records WHERE request_id IN ($id_list)" |
	sort >"$TG_TMP/par/actual"
sort "$TG_TMP/par/expected" >"$TG_TMP/par/expected.sorted"
if cmp -s "$TG_TMP/par/expected.sorted" "$TG_TMP/par/actual"; then
	tg_ok "$N_PARALLEL parallel streams: each record has its own counts"
else
	tg_not_ok "$N_PARALLEL parallel streams: each record has its own counts" \
		"$(diff "$TG_TMP/par/expected.sorted" "$TG_TMP/par/actual" | head -n 12)"
fi
tg_mock_reset || tg_bail "mock reset failed"

# A client that goes away mid-stream: the record is flagged client-aborted
# and billed for the relayed part, estimated.
tg_mock_config '{"chunk_delay_ms":500}' || tg_bail "mock config failed"
TG_HTTP_TIMEOUT=1.3 tg_http POST /v1/chat/completions "$KEY" \
	"$(tg_chat_body openai-chat '{"include_usage":true}')" -N
assert_eq "aborted client: curl timed out mid-stream (rc 28)" 28 "$TG_CURL_RC"
assert_true "aborted client: got a prefix of the stream" \
	test "$(head -c "$(wc -c <"$TG_BODY")" "$FIXTURES/openai-chat-stream.sse" | cmp - "$TG_BODY" >/dev/null 2>&1 && echo y)" = y
tg_check_row "aborted client: record flagged and estimated" "$TG_RID" \
	"client_aborted, usage_source, streamed, prompt_tokens > 0" "t|estimated|t|t"
tg_mock_reset || tg_bail "mock reset failed"

# The provider cuts the stream after two events, before any usage: the
# client keeps what was relayed and the record is estimated.
tg_mock_config '{"fail":"cut","cut_after":2,"fail_times":1}' ||
	tg_bail "mock config failed"
tg_http POST /v1/chat/completions "$KEY" \
	"$(tg_chat_body openai-chat '{"include_usage":true}')" -N
awk 'BEGIN { RS = ""; ORS = "\n\n" } NR <= 2 { print }' \
	"$FIXTURES/openai-chat-stream.sse" >"$TG_TMP/two-events"
assert_true "upstream cut: the client got the two relayed events first" \
	test "$(head -c "$(wc -c <"$TG_TMP/two-events")" "$TG_BODY" | cmp - "$TG_TMP/two-events" >/dev/null 2>&1 && echo y)" = y
assert_true "upstream cut: the client did not get the usage event" \
	sh -c "! grep -q '\"usage\":{' '$TG_BODY'"
tg_check_row "upstream cut: record estimated" "$TG_RID" \
	"usage_source, streamed, client_aborted, prompt_tokens > 0,
	 completion_tokens > 0" "estimated|t|f|t|t"
tg_mock_reset || tg_bail "mock reset failed"

tg_http POST /v1/chat/completions "$KEY" \
	"$(tg_chat_body openai-chat '{"include_usage":true}')" -N
assert_file_eq "a stream after the abort is whole" \
	"$FIXTURES/openai-chat-stream.sse" "$TG_BODY"
assert_eq "/healthz at the end" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' "$TG_ADMIN_URL/healthz")"

tg_done
