#!/bin/bash
# it_metering.sh - every success fixture through the gateway: the client gets
# the provider's exact bytes, and the usage record holds the exact counts of
# tests/fixtures/providers/README.md.

. "$(dirname "$0")/lib.sh"

# fixture | endpoint | model | prompt | completion | cached | cache_write |
# reasoning. Streamed fixtures (.sse) are asked for with the non-stream
# model name and "stream":true, and with stream_options.include_usage true.
EXPECTED='
openai-chat.json               | chat        | openai-chat            | 1200 | 85  | 1024 | 0 | 0
openai-chat-reasoning.json     | chat        | openai-chat-reasoning  | 30   | 210 | 0    | 0 | 192
openai-chat-stream.sse         | chat        | openai-chat            | 25   | 9   | 0    | 0 | 0
openai-completions.json        | completions | openai-completions     | 5    | 7   | 0    | 0 | 0
openai-completions-stream.sse  | completions | openai-completions     | 6    | 7   | 0    | 0 | 0
openai-embeddings.json         | embeddings  | openai-embeddings      | 16   | 0   | 0    | 0 | 0
zhipu-chat.json                | chat        | zhipu-chat             | 16   | 44  | 0    | 0 | 0
zhipu-chat-stream.sse          | chat        | zhipu-chat             | 16   | 38  | 0    | 0 | 0
dashscope-chat.json            | chat        | dashscope-chat         | 30   | 12  | 0    | 0 | 0
dashscope-chat-stream.sse      | chat        | dashscope-chat         | 26   | 13  | 0    | 0 | 0
qianfan-chat.json              | chat        | qianfan-chat           | 8    | 21  | 0    | 0 | 0
qianfan-chat-stream.sse        | chat        | qianfan-chat           | 3    | 11  | 0    | 0 | 0
baichuan-chat.json             | chat        | baichuan-chat          | 9    | 14  | 0    | 0 | 0
baichuan-chat-stream.sse       | chat        | baichuan-chat          | 9    | 12  | 0    | 0 | 0
yi-chat.json                   | chat        | yi-chat                | 14   | 31  | 0    | 0 | 0
yi-chat-stream.sse             | chat        | yi-chat                | 17   | 6   | 0    | 0 | 0
moonshot-chat.json             | chat        | moonshot-chat          | 19   | 21  | 0    | 0 | 0
moonshot-chat-stream.sse       | chat        | moonshot-chat          | 19   | 13  | 0    | 0 | 0
deepseek-chat.json             | chat        | deepseek-chat          | 1100 | 50  | 1024 | 0 | 0
deepseek-reasoner-chat.json    | chat        | deepseek-reasoner-chat | 18   | 230 | 0    | 0 | 205
deepseek-chat-stream.sse       | chat        | deepseek-chat          | 11   | 11  | 0    | 0 | 0
'

# Streams whose provider sends usage only when asked: the gateway asks, and
# hides the usage-only event from a client that did not.
# fixture | endpoint | model | prompt | completion
INJECTED='
openai-chat-stream.sse         | chat        | openai-chat        | 25 | 9
openai-completions-stream.sse  | completions | openai-completions | 6  | 7
dashscope-chat-stream.sse      | chat        | dashscope-chat     | 26 | 13
'

ROW_COLS="prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,
	reasoning_tokens, usage_source, status, provider, upstream_model,
	requested_model, streamed, client_aborted"

# Prints the request body for ENDPOINT and MODEL; STREAM_OPTIONS as in
# tg_chat_body (absent: not streamed, "-": streamed without options).
request_body() {
	local endpoint=$1 model=$2 s
	shift 2
	case $endpoint in
	chat)
		tg_chat_body "$model" "$@"
		;;
	completions)
		s=
		if [ $# -gt 0 ]; then
			s=',"stream":true'
			[ "$1" != - ] && s="$s,\"stream_options\":$1"
		fi
		printf '{"model":"%s","prompt":"Say this is a test","max_tokens":7,"temperature":0%s}' \
			"$model" "$s"
		;;
	embeddings)
		printf '{"model":"%s","input":"The food was delicious and the waiter was kind."}' \
			"$model"
		;;
	esac
}

# Prints the data-plane path of an endpoint.
endpoint_path() {
	case $1 in
	chat) echo /v1/chat/completions ;;
	completions) echo /v1/completions ;;
	embeddings) echo /v1/embeddings ;;
	esac
}

# Strips blanks around a table cell.
trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	s=${s%"${s##*[![:space:]]}"}
	printf '%s' "$s"
}

tg_start_pg
tg_start_mock
tg_start_gateway

KEY=$(tg_issue_key metering) || tg_bail "cannot issue a key"
TENANT_ID=$(tg_psql "SELECT id FROM tenants WHERE name = 'metering'")
KEY_ID=$(tg_psql "SELECT id FROM api_keys WHERE tenant_id = $TENANT_ID")

# The table covers every success fixture of the providers under test.
covered=$(echo "$EXPECTED" | awk -F'|' 'NF > 1 { gsub(/ /, "", $1); print $1 }' | sort)
present=$(cd "$FIXTURES" && for f in *.json *.sse; do
	case $f in
	*-error-* | openai-responses* | openai-chat-stream-no-usage.sse) continue ;;
	esac
	case " $TG_PROVIDERS " in
	*" ${f%%-*} "*) echo "$f" ;;
	esac
done | sort)
assert_eq "the table lists every success fixture" "$present" "$covered"

while IFS='|' read -r fixture endpoint model prompt completion cached cwrite reasoning; do
	fixture=$(trim "$fixture")
	[ -n "$fixture" ] || continue
	endpoint=$(trim "$endpoint")
	model=$(trim "$model")
	provider=${model%%-*}
	want="$(trim "$prompt")|$(trim "$completion")|$(trim "$cached")|$(trim "$cwrite")|$(trim "$reasoning")"
	case $fixture in
	*.sse)
		streamed=t
		body=$(request_body "$endpoint" "$model" '{"include_usage":true}')
		;;
	*)
		streamed=f
		body=$(request_body "$endpoint" "$model")
		;;
	esac
	tg_http POST "$(endpoint_path "$endpoint")" "$KEY" "$body" -N
	assert_eq "$fixture: status" 200 "$TG_STATUS"
	assert_file_eq "$fixture: body is the fixture's bytes" \
		"$FIXTURES/$fixture" "$TG_BODY"
	assert_match "$fixture: x-request-id present" '^[[:graph:]]+$' "$TG_RID"
	if [ $streamed = t ]; then
		assert_match "$fixture: content-type is an event stream" \
			'^text/event-stream' "$(tg_header content-type)"
	fi
	tg_check_row "$fixture: usage record" "$TG_RID" "$ROW_COLS" \
		"$want|reported|200|$provider|$model|$model|$streamed|f"
	assert_eq "$fixture: record's tenant and key" "t" \
		"$(tg_row "$TG_RID" "tenant_id = $TENANT_ID AND key_id = $KEY_ID")"
	assert_match "$fixture: record's endpoint" \
		"^(/?v1/)?$(endpoint_path "$endpoint" | sed 's|^/v1/||')\$" \
		"$(tg_row "$TG_RID" endpoint)"
done <<<"$EXPECTED"

# What reached the upstream for a plain request: the right path, the same
# JSON, and never the client's tollgate key.
body=$(request_body chat openai-chat)
tg_http POST /v1/chat/completions "$KEY" "$body"
tg_mock_last_request >"$TG_TMP/last.json"
assert_json "upstream path is the provider's base_url + /chat/completions" \
	'.path == "/openai/v1/chat/completions" and .method == "POST"' \
	"$TG_TMP/last.json"
assert_eq "upstream body is the client's JSON" "$(jq -S . <<<"$body")" \
	"$(jq -r .body "$TG_TMP/last.json" | jq -S . 2>&1)"
if [ -s "$TG_TMP/last.json" ] && ! grep -qF "$KEY" "$TG_TMP/last.json"; then
	tg_ok "the client's tollgate key is not sent upstream"
else
	tg_not_ok "the client's tollgate key is not sent upstream" \
		"$(head -c 800 "$TG_TMP/last.json")"
fi

# Usage injection: a client that did not ask for usage (no stream_options,
# or include_usage false) gets the stream without the usage-only event, and
# the record still has the provider's counts.
while IFS='|' read -r fixture endpoint model prompt completion; do
	fixture=$(trim "$fixture")
	[ -n "$fixture" ] || continue
	endpoint=$(trim "$endpoint")
	model=$(trim "$model")
	provider=${model%%-*}
	want="$(trim "$prompt")|$(trim "$completion")|0|0|0"
	tg_sse_without_usage_event "$FIXTURES/$fixture" >"$TG_TMP/$fixture.nousage"
	for opts in - '{"include_usage":false}'; do
		label="$fixture, client stream_options ${opts/-/absent}"
		body=$(request_body "$endpoint" "$model" "$opts")
		tg_http POST "$(endpoint_path "$endpoint")" "$KEY" "$body" -N
		assert_eq "$label: status" 200 "$TG_STATUS"
		assert_file_eq "$label: body is the fixture without its usage event" \
			"$TG_TMP/$fixture.nousage" "$TG_BODY"
		tg_mock_last_request >"$TG_TMP/last.json"
		assert_eq "$label: include_usage true sent upstream" true \
			"$(jq -r '.body | fromjson | .stream_options.include_usage' \
				"$TG_TMP/last.json" 2>&1)"
		assert_eq "$label: rest of the body unchanged upstream" \
			"$(jq -S 'del(.stream_options)' <<<"$body")" \
			"$(jq -r .body "$TG_TMP/last.json" |
				jq -S 'del(.stream_options)' 2>&1)"
		tg_check_row "$label: usage record" "$TG_RID" "$ROW_COLS" \
			"$want|reported|200|$provider|$model|$model|t|f"
	done
done <<<"$INJECTED"

# A provider that sends no usage even when asked: the client gets the bytes
# unchanged and the record is estimated from the request and the text.
fixture=openai-chat-stream-no-usage.sse
body=$(request_body chat openai-chat-stream-no-usage '{"include_usage":true}')
tg_http POST /v1/chat/completions "$KEY" "$body" -N
assert_eq "$fixture: status" 200 "$TG_STATUS"
assert_file_eq "$fixture: body is the fixture's bytes" "$FIXTURES/$fixture" \
	"$TG_BODY"
tg_check_row "$fixture: usage estimated" "$TG_RID" \
	"usage_source, status, streamed, prompt_tokens > 0, completion_tokens > 0" \
	"estimated|200|t|t|t"

tg_done
