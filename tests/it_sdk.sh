#!/bin/bash
# it_sdk.sh - tollgated driven by the official SDKs, as an application uses
# it: the openai package (OpenAI and AzureOpenAI clients) and
# @anthropic-ai/sdk, each in two majors (openai 4 and 6, the newest that runs
# on Node 20; @anthropic-ai/sdk 0.x and 1.x), pointed at the gateway with a
# tollgate key. Checks what the SDKs parsed (text, finish reasons, tool
# calls, usage, embeddings in the SDK's default base64, token counts, error
# classes) against the fixtures, and that each call left one usage record
# with the client's endpoint, the provider that served it and the
# provider's counts, for same-format relays and for cross-format
# translation alike. it_sdk_frameworks.sh drives the frameworks.
#
# The SDKs are installed from tests/sdk/package-lock.json with
#   npm ci --prefix tests/sdk
# TG_SKIP_SDK=1 skips this test where they cannot be installed; without it a
# missing install fails the test.

. "$(dirname "$0")/sdk_lib.sh"

# Every check below runs once with openai 4 and @anthropic-ai/sdk 0.x, and
# once with the newest majors that run on Node 20, openai 6 and
# @anthropic-ai/sdk 1.x (suite, called at the end).
suite() {

# ---------------------------------------------------------------------------
# OpenAI SDK, same format.

oai "openai chat" chat "$KEY" model='"openai-chat"'
sdk_eq "openai chat: content" .content "$(jq -c -n --arg t "$OPENAI_TEXT" '$t')"
sdk_eq "openai chat: finish_reason" .finish_reason '"stop"'
sdk_eq "openai chat: usage" '.usage | [.prompt_tokens, .completion_tokens, .total_tokens]' \
	'[1200,85,1285]'
ledger "openai chat" "chat/completions|openai|openai-chat|openai-chat|f|200|1200|85|1024|0|reported"

oai "openai chat stream, include_usage" chat "$KEY" model='"openai-chat"' \
	stream=true include_usage=true
sdk_eq "openai chat stream, include_usage: concatenated deltas" .content \
	"$(jq -c -n --arg t "$OPENAI_STREAM_TEXT" '$t')"
sdk_eq "openai chat stream, include_usage: finish_reason" .finish_reason '"stop"'
sdk_eq "openai chat stream, include_usage: the final chunk has the usage" \
	'[.last_chunk_choices, .usage_chunks, (.last_chunk_usage | .prompt_tokens, .completion_tokens, .total_tokens)]' \
	'[0,1,25,9,34]'
ledger "openai chat stream, include_usage" \
	"chat/completions|openai|openai-chat|openai-chat|t|200|25|9|0|0|reported"

oai "openai chat stream, no stream_options" chat "$KEY" model='"openai-chat"' \
	stream=true
sdk_eq "openai chat stream, no stream_options: concatenated deltas" .content \
	"$(jq -c -n --arg t "$OPENAI_STREAM_TEXT" '$t')"
sdk_eq "openai chat stream, no stream_options: no chunk has usage" .usage_chunks 0
ledger "openai chat stream, no stream_options (usage metered all the same)" \
	"chat/completions|openai|openai-chat|openai-chat|t|200|25|9|0|0|reported"

oai "openai embeddings" embeddings "$KEY" model='"openai-embeddings"' \
	input='["The food was delicious.","The waiter was kind."]'
sdk_eq "openai embeddings: vectors" .embeddings "$EMBEDDINGS"
sdk_eq "openai embeddings: usage" '.usage | [.prompt_tokens, .total_tokens]' '[16,16]'
ledger "openai embeddings" "embeddings|openai|openai-embeddings|openai-embeddings|f|200|16|0|0|0|reported"

# models.list: exactly the configured routes the key's patterns allow.
routes=$(sed -n 's/^\[route \(.*\)\]$/\1/p' "$TG_TMP/tollgate.conf" | grep -vx '\*' | sort)
allowed=$(while IFS= read -r r; do
	case $r in openai-chat* | claude-*) echo "$r" ;; esac
done <<<"$routes")
if [ -n "$allowed" ] && [ "$allowed" != "$routes" ]; then
	tg_ok "${SDK_LABEL}the limited key's patterns allow some routes and not others"
else
	tg_not_ok "${SDK_LABEL}the limited key's patterns allow some routes and not others" \
		"routes: $(tr '\n' ' ' <<<"$routes")" \
		"allowed: $(tr '\n' ' ' <<<"$allowed")"
fi
oai "openai models.list, limited key" models "$LIMITED"
assert_eq "${SDK_LABEL}openai models.list, limited key: the routes the key may use" \
	"$allowed" "$(jq -r '.ids[]?' "$SDK_OUT" | sort)"
oai "openai models.list" models "$KEY"
assert_eq "${SDK_LABEL}openai models.list: every route" "$routes" \
	"$(jq -r '.ids[]?' "$SDK_OUT" | sort)"

# Errors: the SDK's own exception classes, with the gateway's message.
tg_http POST /v1/chat/completions "$BADKEY" "$(tg_chat_body openai-chat)"
gw_msg=$(jq -c '.error.message' "$TG_BODY" 2>/dev/null)
SDK_EXPECT_ERROR=1 oai "openai chat, unknown key" chat "$BADKEY" model='"openai-chat"'
sdk_eq "openai chat, unknown key: AuthenticationError 401" \
	'[.ok, .error.class, .error.status]' '[false,"AuthenticationError",401]'
sdk_eq "openai chat, unknown key: the gateway's message" \
	'.error.body.message | select(type == "string" and length > 0)' "$gw_msg"
tg_check_unauth "${SDK_LABEL}openai chat, unknown key" "$(jq -r '.request_id // empty' "$SDK_OUT")" "$UNAUTH"
UNAUTH=$(tg_unauth_count)

SDK_EXPECT_ERROR=1 oai "openai chat, unknown model" chat "$KEY" model='"no-such-model"'
sdk_eq "openai chat, unknown model: NotFoundError 404" \
	'[.ok, .error.class, .error.status]' '[false,"NotFoundError",404]'
sdk_eq "openai chat, unknown model: a message" \
	'.error.body.message | type == "string" and length > 0' true
ledger "openai chat, unknown model" "chat/completions|f|404|none|0" "$REFUSAL_COLS"

# ---------------------------------------------------------------------------
# OpenAI SDK, Responses API.

oai "openai responses" responses "$KEY" model='"openai-responses"'
sdk_eq "openai responses: output_text" .output_text \
	"$(jq -c -n --arg t "$RESPONSES_TEXT" '$t')"
sdk_eq "openai responses: usage" \
	'.usage | [.input_tokens, .output_tokens, .input_tokens_details.cached_tokens, .output_tokens_details.reasoning_tokens]' \
	'[1320,310,1024,256]'
ledger "openai responses" "responses|openai|openai-responses|openai-responses|f|200|1320|310|1024|0|reported"

oai "openai responses stream" responses "$KEY" model='"openai-responses"' stream=true
sdk_eq "openai responses stream: concatenated deltas" .deltas \
	"$(jq -c -n --arg t "$RESPONSES_STREAM_TEXT" '$t')"
sdk_eq "openai responses stream: response.completed text" .completed_text \
	"$(jq -c -n --arg t "$RESPONSES_STREAM_TEXT" '$t')"
sdk_eq "openai responses stream: response.completed usage" \
	'[.last_event, .usage.input_tokens, .usage.output_tokens]' \
	'["response.completed",37,11]'
ledger "openai responses stream" "responses|openai|openai-responses|openai-responses|t|200|37|11|0|0|reported"

# ---------------------------------------------------------------------------
# AzureOpenAI client: /openai/deployments/{deployment}/...?api-version=,
# the key in the api-key header.

azure() {		# azure DESC KEY [name=json...]
	local desc=$1 key=$2
	shift 2
	sdk "$desc" openai "$(sdk_args azure_chat "" "$key" \
		endpoint="$(jq -n -c --arg u "$TG_URL" '$u')" \
		api_version='"2024-10-21"' deployment='"azure-openai-chat"' "$@")"
}

azure "azure chat" "$KEY"
sdk_eq "azure chat: content" .content "$(jq -c -n --arg t "$AZURE_TEXT" '$t')"
sdk_eq "azure chat: usage" '.usage | [.prompt_tokens, .completion_tokens]' '[48,112]'
ledger "azure chat" "chat/completions|azure|azure-openai-chat|azure-openai-chat|f|200|48|112|0|0|reported"

azure "azure chat stream, include_usage" "$KEY" stream=true include_usage=true
sdk_eq "azure chat stream, include_usage: concatenated deltas" .content \
	"$(jq -c -n --arg t "$AZURE_STREAM_TEXT" '$t')"
sdk_eq "azure chat stream, include_usage: the final chunk has the usage" \
	'[.usage_chunks, (.last_chunk_usage | .prompt_tokens, .completion_tokens)]' '[1,22,8]'
ledger "azure chat stream, include_usage" \
	"chat/completions|azure|azure-openai-chat|azure-openai-chat|t|200|22|8|0|0|reported"

azure "azure chat stream, no stream_options" "$KEY" stream=true
sdk_eq "azure chat stream, no stream_options: concatenated deltas" .content \
	"$(jq -c -n --arg t "$AZURE_STREAM_TEXT" '$t')"
sdk_eq "azure chat stream, no stream_options: no chunk has usage" .usage_chunks 0
ledger "azure chat stream, no stream_options" \
	"chat/completions|azure|azure-openai-chat|azure-openai-chat|t|200|22|8|0|0|reported"

# ---------------------------------------------------------------------------
# Anthropic SDK, same format.

ant "anthropic messages" messages "$KEY" model='"anthropic-messages"'
sdk_eq "anthropic messages: text" .text "$(jq -c -n --arg t "$ANTHROPIC_TEXT" '$t')"
sdk_eq "anthropic messages: stop_reason" .stop_reason '"end_turn"'
sdk_eq "anthropic messages: usage" \
	'.usage | [.input_tokens, .output_tokens, .cache_read_input_tokens, .cache_creation_input_tokens]' \
	'[50,120,2048,0]'
ledger "anthropic messages" "messages|anthropic|anthropic-messages|anthropic-messages|f|200|2098|120|2048|0|reported"

ant "anthropic messages.stream()" messages "$KEY" model='"anthropic-messages"' \
	stream='"helper"'
sdk_eq "anthropic messages.stream(): final message text" .text \
	"$(jq -c -n --arg t "$ANTHROPIC_STREAM_TEXT" '$t')"
sdk_eq "anthropic messages.stream(): text events" .text_events \
	"$(jq -c -n --arg t "$ANTHROPIC_STREAM_TEXT" '$t')"
sdk_eq "anthropic messages.stream(): stop_reason and usage" \
	'[.stop_reason, (.usage | .input_tokens, .output_tokens, .cache_creation_input_tokens)]' \
	'["end_turn",25,42,1500]'
ledger "anthropic messages.stream()" \
	"messages|anthropic|anthropic-messages|anthropic-messages|t|200|1525|42|0|1500|reported"

ant "anthropic create(stream)" messages "$KEY" model='"anthropic-messages"' \
	stream='"raw"'
sdk_eq "anthropic create(stream): events and text" '[.first_event, .last_event, .text]' \
	"$(jq -c -n --arg t "$ANTHROPIC_STREAM_TEXT" '["message_start","message_stop",$t]')"
sdk_eq "anthropic create(stream): message_delta usage" \
	'[.stop_reason, .delta_usage.output_tokens, .start_usage.input_tokens]' '["end_turn",42,25]'
ledger "anthropic create(stream)" \
	"messages|anthropic|anthropic-messages|anthropic-messages|t|200|1525|42|0|1500|reported"

ant "anthropic models.list" models "$KEY"
assert_eq "${SDK_LABEL}anthropic models.list: every route" "$routes" \
	"$(jq -r '.ids[]?' "$SDK_OUT" | sort)"

curl -sS -o "$TG_TMP/ant401.json" --max-time 10 -H "x-api-key: $BADKEY" \
	-H 'anthropic-version: 2023-06-01' -H 'Content-Type: application/json' \
	--data-binary '{"model":"anthropic-messages","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}' \
	"$TG_URL/v1/messages"
gw_msg=$(jq -c '.error.message' "$TG_TMP/ant401.json" 2>/dev/null)
SDK_EXPECT_ERROR=1 ant "anthropic messages, unknown key" messages "$BADKEY" \
	model='"anthropic-messages"'
sdk_eq "anthropic messages, unknown key: AuthenticationError 401, Anthropic's shape" \
	'[.ok, .error.class, .error.status, .error.body.type, .error.body.error.type]' \
	'[false,"AuthenticationError",401,"error","authentication_error"]'
sdk_eq "anthropic messages, unknown key: the gateway's message" \
	'.error.body.error.message | select(type == "string" and length > 0)' "$gw_msg"
tg_check_unauth "${SDK_LABEL}anthropic messages, unknown key" "$(jq -r '.request_id // empty' "$SDK_OUT")" "$UNAUTH"
UNAUTH=$(tg_unauth_count)

SDK_EXPECT_ERROR=1 ant "anthropic messages, unknown model" messages "$KEY" \
	model='"no-such-model"'
sdk_eq "anthropic messages, unknown model: NotFoundError 404, Anthropic's shape" \
	'[.ok, .error.class, .error.status, .error.body.type, .error.body.error.type]' \
	'[false,"NotFoundError",404,"error","not_found_error"]'
ledger "anthropic messages, unknown model" "messages|f|404|none|0" "$REFUSAL_COLS"

# ---------------------------------------------------------------------------
# Across formats: the client's wire is translated, the provider's counts
# are metered.

oai "openai chat to anthropic" chat "$KEY" model='"claude-via-openai"'
sdk_eq "openai chat to anthropic: content" .content \
	"$(jq -c -n --arg t "$ANTHROPIC_TEXT" '$t')"
sdk_eq "openai chat to anthropic: finish_reason" .finish_reason '"stop"'
sdk_eq "openai chat to anthropic: usage (prompt = input + cache read + cache write)" \
	'.usage | [.prompt_tokens, .completion_tokens, .total_tokens]' '[2098,120,2218]'
ledger "openai chat to anthropic" \
	"chat/completions|anthropic|anthropic-messages|claude-via-openai|f|200|2098|120|2048|0|reported"

oai "openai chat stream to anthropic, include_usage" chat "$KEY" \
	model='"claude-via-openai"' stream=true include_usage=true
sdk_eq "openai chat stream to anthropic, include_usage: concatenated deltas" .content \
	"$(jq -c -n --arg t "$ANTHROPIC_STREAM_TEXT" '$t')"
sdk_eq "openai chat stream to anthropic, include_usage: finish_reason" .finish_reason '"stop"'
sdk_eq "openai chat stream to anthropic, include_usage: the final chunk has the usage" \
	'[.usage_chunks, (.last_chunk_usage | .prompt_tokens, .completion_tokens)]' '[1,1525,42]'
ledger "openai chat stream to anthropic, include_usage" \
	"chat/completions|anthropic|anthropic-messages|claude-via-openai|t|200|1525|42|0|1500|reported"

oai "openai chat stream to anthropic, no stream_options" chat "$KEY" \
	model='"claude-via-openai"' stream=true
sdk_eq "openai chat stream to anthropic, no stream_options: concatenated deltas" .content \
	"$(jq -c -n --arg t "$ANTHROPIC_STREAM_TEXT" '$t')"
sdk_eq "openai chat stream to anthropic, no stream_options: no chunk has usage" \
	.usage_chunks 0
ledger "openai chat stream to anthropic, no stream_options" \
	"chat/completions|anthropic|anthropic-messages|claude-via-openai|t|200|1525|42|0|1500|reported"

ant "anthropic messages to openai" messages "$KEY" model='"gpt-via-anthropic"'
sdk_eq "anthropic messages to openai: text" .text "$(jq -c -n --arg t "$OPENAI_TEXT" '$t')"
sdk_eq "anthropic messages to openai: stop_reason" .stop_reason '"end_turn"'
sdk_eq "anthropic messages to openai: usage (output, all input)" \
	'.usage | [.output_tokens, .input_tokens + (.cache_read_input_tokens // 0) + (.cache_creation_input_tokens // 0)]' \
	'[85,1200]'
ledger "anthropic messages to openai" \
	"messages|openai|openai-chat|gpt-via-anthropic|f|200|1200|85|1024|0|reported"

ant "anthropic messages.stream() to openai" messages "$KEY" \
	model='"gpt-via-anthropic"' stream='"helper"'
sdk_eq "anthropic messages.stream() to openai: final message text" .text \
	"$(jq -c -n --arg t "$OPENAI_STREAM_TEXT" '$t')"
sdk_eq "anthropic messages.stream() to openai: stop_reason and output tokens" \
	'[.stop_reason, .usage.output_tokens]' '["end_turn",9]'
ledger "anthropic messages.stream() to openai" \
	"messages|openai|openai-chat|gpt-via-anthropic|t|200|25|9|0|0|reported"

# Tool calls, OpenAI client to an Anthropic provider. The fixtures live in
# tests/fixtures/extra, which the mock searches after the providers' folder.
EXTRA=$FIXTURES/../extra
TOOLS='[{"type":"function","function":{"name":"get_weather","description":"Current weather in a city","parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}}]'

# Prints a fixture's tool calls as the OpenAI client should see them, and its
# text and usage: {"calls":[{id,name,input}],"text","prompt","completion"}.
tools_expected_json() {
	jq -S -c '{calls: [.content[] | select(.type == "tool_use") | {id, name, input}],
		text: ([.content[] | select(.type == "text") | .text] | join("")),
		prompt: (.usage | .input_tokens + (.cache_creation_input_tokens // 0) + (.cache_read_input_tokens // 0)),
		cached: (.usage.cache_read_input_tokens // 0),
		cache_write: (.usage.cache_creation_input_tokens // 0),
		completion: .usage.output_tokens, stop: .stop_reason}' "$1"
}
tools_expected_sse() {
	sse_events "$1" | jq -S -c '. as $ev
		| {calls: [$ev[] | select(.type == "content_block_start" and .content_block.type == "tool_use")
			| .index as $i
			| {id: .content_block.id, name: .content_block.name,
			   input: ([$ev[] | select(.type == "content_block_delta" and .index == $i
				and .delta.type == "input_json_delta") | .delta.partial_json]
				| join("") | if . == "" then {} else fromjson end)}],
		   text: ([$ev[] | select(.type == "content_block_delta") | .delta.text // empty] | join("")),
		   prompt: ([$ev[] | select(.type == "message_start") | .message.usage
			| .input_tokens + (.cache_creation_input_tokens // 0) + (.cache_read_input_tokens // 0)] | last),
		   cached: ([$ev[] | select(.type == "message_start") | .message.usage.cache_read_input_tokens // 0] | last),
		   cache_write: ([$ev[] | select(.type == "message_start") | .message.usage.cache_creation_input_tokens // 0] | last),
		   completion: ([$ev[] | select(.type == "message_delta") | .usage.output_tokens] | last),
		   stop: ([$ev[] | select(.type == "message_delta") | .delta.stop_reason] | last)}'
}
# What the SDK parsed, in the same shape.
TOOLS_GOT='{calls: [.tool_calls[]? | {id, name, input: ((.arguments | fromjson?) // .arguments)}],
	text: (.content // "")}'

# tools_case LABEL EXPECTED_JSON json|stream : the OpenAI client asks with
# tools, non-streamed or streamed with include_usage.
tools_case() {
	local label=$1 want=$2 mode=$3 usage=.usage
	local -a more=()
	if [ "$mode" = stream ]; then
		more=(stream=true include_usage=true)
		usage=.last_chunk_usage
	fi
	oai "$label" chat "$KEY" model='"claude-tools-via-openai"' tools="$TOOLS" "${more[@]}"
	assert_eq "$SDK_LABEL$label: tool calls and text" \
		"$(jq -S -c '{calls, text}' <<<"$want")" \
		"$(jq -S -c "$TOOLS_GOT" "$SDK_OUT" 2>&1)"
	sdk_eq "$label: tool_calls are functions" '[.tool_calls[]?.type] | unique' '["function"]'
	sdk_eq "$label: finish_reason" .finish_reason \
		"$(jq -c 'if .stop == "tool_use" then "tool_calls" else "stop" end' <<<"$want")"
	sdk_eq "$label: usage" "$usage | [.prompt_tokens, .completion_tokens]" \
		"$(jq -c '[.prompt, .completion]' <<<"$want")"
	ledger "$label" "chat/completions|anthropic|anthropic-tools|claude-tools-via-openai|$([ "$mode" = stream ] && echo t || echo f)|200|$(jq -r '"\(.prompt)|\(.completion)|\(.cached)|\(.cache_write)"' <<<"$want")|reported"
}

for f in anthropic-tools.json anthropic-tools-stream.sse; do
	if [ ! -f "$EXTRA/$f" ]; then
		tg_not_ok "${SDK_LABEL}tool-call fixture $f exists" "not found in $EXTRA"
	fi
done
if [ -f "$EXTRA/anthropic-tools.json" ]; then
	tools_case "openai chat with tools to anthropic" \
		"$(tools_expected_json "$EXTRA/anthropic-tools.json")" json
fi
if [ -f "$EXTRA/anthropic-tools-stream.sse" ]; then
	tools_case "openai chat stream with tools to anthropic" \
		"$(tools_expected_sse "$EXTRA/anthropic-tools-stream.sse")" stream
fi

# Tool calls the other way: the Anthropic client to an OpenAI provider.
ATOOLS='[{"name":"get_weather","description":"Current weather in a city","input_schema":{"type":"object","properties":{"location":{"type":"string"},"unit":{"type":"string"}},"required":["location"]}}]'
# An OpenAI answer's tool calls, text and usage as the Anthropic client
# should see them.
openai_tools_expected_json() {
	jq -S -c '.choices[0] as $c | {
		calls: [$c.message.tool_calls[] | {id, name: .function.name,
			input: (.function.arguments | fromjson)}],
		text: ($c.message.content // ""),
		stop: (if $c.finish_reason == "tool_calls" then "tool_use" else "end_turn" end),
		input: .usage.prompt_tokens, output: .usage.completion_tokens}' "$1"
}
openai_tools_expected_sse() {
	sse_events "$1" | jq -S -c '. as $ev
		| ([$ev[] | .choices[]?.delta.tool_calls[]?] ) as $tc
		| {calls: [$tc | group_by(.index)[]
			| {id: (map(.id // empty) | first), name: (map(.function.name // empty) | first),
			   input: (map(.function.arguments // "") | join("") | fromjson)}],
		   text: ([$ev[] | .choices[]?.delta.content // empty] | join("")),
		   stop: ([$ev[] | .choices[]?.finish_reason // empty] | last
			| if . == "tool_calls" then "tool_use" else "end_turn" end),
		   input: ([$ev[] | .usage // empty | .prompt_tokens] | last),
		   output: ([$ev[] | .usage // empty | .completion_tokens] | last)}'
}
ATOOLS_GOT='{calls: [.tool_uses[] | {id, name, input}], text, stop: .stop_reason,
	input: (.usage | .input_tokens + (.cache_read_input_tokens // 0) + (.cache_creation_input_tokens // 0)),
	output: .usage.output_tokens}'
for c in "openai-tools.json|-|f" "openai-tools-stream.sse|helper|t"; do
	IFS='|' read -r f mode streamed <<<"$c"
	label="anthropic messages with tools to openai ($f)"
	if [ ! -f "$EXTRA/$f" ]; then
		tg_not_ok "$SDK_LABEL$label: fixture exists" "not found in $EXTRA"
		continue
	fi
	if [ "$mode" = helper ]; then
		want=$(openai_tools_expected_sse "$EXTRA/$f")
		ant "$label" messages "$KEY" model='"gpt-tools-via-anthropic"' \
			tools="$ATOOLS" stream='"helper"'
	else
		want=$(openai_tools_expected_json "$EXTRA/$f")
		ant "$label" messages "$KEY" model='"gpt-tools-via-anthropic"' \
			tools="$ATOOLS"
	fi
	assert_eq "$SDK_LABEL$label: tool uses, text, stop reason and usage" "$want" \
		"$(jq -S -c "$ATOOLS_GOT" "$SDK_OUT" 2>&1)"
	ledger "$label" "messages|openai|openai-tools|gpt-tools-via-anthropic|$streamed|200|$(
		if [ "$streamed" = t ]; then sse_events "$EXTRA/$f"; else jq -s -c . "$EXTRA/$f"; fi |
		jq -r '[.[] | .usage // empty] | last
			| "\(.prompt_tokens)|\(.completion_tokens)|\(.prompt_tokens_details.cached_tokens // 0)|0"')|reported"
done

# A provider's error crosses formats too: the client gets it in the shape
# of the API it called, with the provider's status, metered as zero.
SDK_EXPECT_ERROR=1 oai "openai chat to an anthropic 429" chat "$KEY" model='"claude-error-429-via-openai"'
sdk_eq "openai chat to an anthropic 429: the SDK raises RateLimitError" \
	'[.ok, .error.class, .error.status]' '[false,"RateLimitError",429]'
sdk_eq "openai chat to an anthropic 429: OpenAI error shape" \
	'.error.body.type // .error.body.error.type' '"rate_limit_error"'
ledger "openai chat to an anthropic 429" \
	"chat/completions|anthropic|anthropic-error-429|claude-error-429-via-openai|f|429|0|0|0|0|none"
SDK_EXPECT_ERROR=1 ant "anthropic messages to an openai 429" messages "$KEY" model='"gpt-error-429-via-anthropic"'
sdk_eq "anthropic messages to an openai 429: the SDK raises RateLimitError" \
	'[.ok, .error.class, .error.status]' '[false,"RateLimitError",429]'
ledger "anthropic messages to an openai 429" \
	"messages|openai|openai-error-429|gpt-error-429-via-anthropic|f|429|0|0|0|0|none"

new_surface
}

# ---------------------------------------------------------------------------
# What the newest clients use: embeddings in the SDK's default encoding
# (base64, decoded by the SDK), Azure OpenAI's v1 paths, the Responses API
# through AzureOpenAI, count_tokens, and the prompt's count a translated
# stream's message_start carries.

new_surface() {
	oai "openai embeddings, the SDK's default encoding" embeddings "$KEY" \
		model='"openai-embeddings"' default_format=true \
		input='["The food was delicious.","The waiter was kind."]'
	assert_eq "${SDK_LABEL}openai embeddings, default encoding: base64 asked" \
		base64 "$(tg_mock_last_request | jq -r '.body | fromjson | .encoding_format')"
	sdk_eq "openai embeddings, default encoding: vectors decoded" \
		.embeddings "$EMBEDDINGS_F32"
	ledger "openai embeddings, default encoding" \
		"embeddings|openai|openai-embeddings|openai-embeddings|f|200|16|0|0|0|reported"

	local q base_saved=$OPENAI_BASE
	for q in null '{"api-version":"2024-10-21"}'; do
		OPENAI_BASE=$TG_URL/openai/v1
		oai "azure v1 chat (api-version $q)" chat "$KEY" \
			model='"azure-openai-chat"' default_query="$q"
		sdk_eq "azure v1 chat (api-version $q): content" .content \
			"$(jq -c -n --arg t "$AZURE_TEXT" '$t')"
		ledger "azure v1 chat (api-version $q)" \
			"chat/completions|azure|azure-openai-chat|azure-openai-chat|f|200|48|112|0|0|reported"
		oai "azure v1 responses (api-version $q)" responses "$KEY" \
			model='"openai-responses"' default_query="$q"
		sdk_eq "azure v1 responses (api-version $q): output_text" .output_text \
			"$(jq -c -n --arg t "$RESPONSES_TEXT" '$t')"
		ledger "azure v1 responses (api-version $q)" \
			"responses|openai|openai-responses|openai-responses|f|200|1320|310|1024|0|reported"
		oai "azure v1 embeddings (api-version $q)" embeddings "$KEY" \
			model='"openai-embeddings"' default_query="$q" \
			default_format=true input='["The food was delicious."]'
		sdk_eq "azure v1 embeddings (api-version $q): vectors" \
			.embeddings "$EMBEDDINGS_F32"
		ledger "azure v1 embeddings (api-version $q)" \
			"embeddings|openai|openai-embeddings|openai-embeddings|f|200|16|0|0|0|reported"
	done
	OPENAI_BASE=$base_saved
	oai "AzureOpenAI responses" responses "$KEY" model='"openai-responses"' \
		endpoint="$(jq -n -c --arg u "$TG_URL" '$u')" \
		api_version='"2025-04-01-preview"'
	sdk_eq "AzureOpenAI responses: output_text" .output_text \
		"$(jq -c -n --arg t "$RESPONSES_TEXT" '$t')"
	ledger "AzureOpenAI responses" \
		"responses|openai|openai-responses|openai-responses|f|200|1320|310|1024|0|reported"

	# count_tokens: counted by the gateway for an OpenAI-format target
	# (the same count a plain HTTP call gets), by the provider for an
	# Anthropic one; recorded at zero tokens.
	local want
	tg_http POST /v1/messages/count_tokens "" \
		'{"model":"gpt-via-anthropic","messages":[{"role":"user","content":"Hello, who are you?"}]}' \
		-H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01'
	want=$(jq -r .input_tokens "$TG_BODY")
	ant "anthropic countTokens, openai target" count_tokens "$KEY" \
		model='"gpt-via-anthropic"'
	sdk_eq "anthropic countTokens, openai target: the gateway's count" \
		'.input_tokens | select(. > 0)' "$want"
	ledger "anthropic countTokens, openai target" \
		"messages/count_tokens|openai|openai-chat|gpt-via-anthropic|f|200|0|0|0|0|none"
	ant "anthropic countTokens, anthropic target" count_tokens "$KEY" \
		model='"anthropic-messages"'
	sdk_eq "anthropic countTokens, anthropic target: the provider's count" \
		.input_tokens "$(fx anthropic-messages.json .usage.input_tokens)"
	ledger "anthropic countTokens, anthropic target" \
		"messages/count_tokens|anthropic|anthropic-messages|anthropic-messages|f|200|0|0|0|0|none"

	ant "anthropic create(stream) to openai" messages "$KEY" \
		model='"gpt-via-anthropic"' stream='"raw"'
	sdk_eq "anthropic create(stream) to openai: message_start carries the prompt's estimate" \
		'.start_usage.input_tokens' "$want"
	sdk_eq "anthropic create(stream) to openai: message_delta the provider's counts" \
		'[.delta_usage.input_tokens, .delta_usage.output_tokens]' '[25,9]'
	ledger "anthropic create(stream) to openai" \
		"messages|openai|openai-chat|gpt-via-anthropic|t|200|25|9|0|0|reported"
}

suite
OAI_PKG=openai6 ANT_PKG=anthropic1 SDK_LABEL="openai 6, anthropic 1.x: " suite

tg_done
