#!/bin/bash
# it_wire.sh - the Anthropic, Azure OpenAI and Responses wires end to end,
# and fallback across a route's targets.
#
# Each client speaks its own wire to a provider of the same format, so the
# gateway relays the provider's bytes as they are: every success fixture
# must reach the client unchanged and be metered exactly as
# tests/fixtures/providers/README.md lists; every error fixture must reach
# the client unchanged and be metered as zero. Fallback moves to the next
# target only while no byte reached the client.

. "$(dirname "$0")/lib.sh"

tg_start_pg
tg_start_mock
DEAD_PORT=$(tg_free_port) || tg_bail "no free port"

# Routes named after the fixtures they serve; the fb-* routes list their
# targets in the order the gateway must try them.
routes=
for f in "$FIXTURES"/anthropic-*.json; do
	m=$(basename "$f" .json)
	routes+="
[route $m]
target = anthropic:$m
"
done
for f in "$FIXTURES"/azure-openai-*.json; do
	m=$(basename "$f" .json)
	routes+="
[route $m]
target = azure:$m
"
done
tg_mock_providers
TG_EXTRA_SECTIONS="$TG_MOCK_PROVIDERS

[provider azureold]
type = azure
flavor = azure
base_url = $TG_MOCK_URL/azure
api_version = 2024-06-01
api_key_env = TG_AZURE_SECRET

[provider slowfirst]
type = openai
flavor = openai
base_url = $TG_MOCK_URL/openai/v1
timeout = 1000

[provider slowstream]
type = openai
flavor = openai
base_url = $TG_MOCK_URL/openai/v1
idle_timeout = 1000

[provider dead]
type = openai
flavor = openai
base_url = http://127.0.0.1:$DEAD_PORT/v1
connect_timeout = 2000
$routes
[route openai-responses]
target = openai:openai-responses

[route azure-old]
target = azureold:azure-openai-chat

[route fb]
target = openai:openai-chat, deepseek:deepseek-chat

[route fb-slow]
target = slowfirst:openai-chat, deepseek:deepseek-chat

[route fb-slow-stream]
target = slowstream:openai-chat, deepseek:deepseek-chat

[route fb-dead]
target = dead:openai-chat, deepseek:deepseek-chat

[route fb-402]
target = deepseek:deepseek-error-402, openai:openai-chat

[route fb-401]
target = openai:openai-error-401, deepseek:deepseek-chat

[route fb-all]
target = openai:openai-chat, dead:openai-chat, zhipu:zhipu-error-429"
tg_start_gateway
KEY=$(tg_issue_key wire) || tg_bail "cannot issue a key"

USAGE_ON='{"include_usage":true}'
MSG='"messages":[{"role":"user","content":"Hello, who are you?"}]'
ROW="endpoint, provider, upstream_model, streamed, status, prompt_tokens,
	completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
	usage_source"
ZERO="status, usage_source, prompt_tokens + completion_tokens"

# An Anthropic Messages request body for MODEL; streamed with a second
# argument.
anth_body() {
	printf '{"model":"%s","max_tokens":256,%s%s}' "$1" "$MSG" \
		"${2:+,\"stream\":true}"
}

# anth_http BODY [CURL_ARGS...] : POST /v1/messages as an Anthropic SDK
# does: the key in x-api-key, with anthropic-version.
anth_http() {
	local body=$1
	shift
	tg_http POST /v1/messages "" "$body" -H "x-api-key: $KEY" \
		-H 'anthropic-version: 2023-06-01' "$@"
}

# azure_http DEPLOYMENT BODY [CURL_ARGS...] : an Azure OpenAI chat request
# as the Azure SDKs send it: deployment in the path, key in api-key.
azure_http() {
	local dep=$1 body=$2
	shift 2
	tg_http POST "/openai/deployments/$dep/chat/completions?api-version=2024-10-21" \
		"" "$body" -H "api-key: $KEY" "$@"
}

# Prints a field of the last request the mock received (a jq filter).
last() {
	tg_mock_last_request | jq -r "$1"
}

# ---------------------------------------------------------------------------
# Anthropic client -> /v1/messages -> anthropic provider.

anth_http "$(anth_body anthropic-messages)"
assert_eq "anthropic: status" 200 "$TG_STATUS"
assert_file_eq "anthropic: body relayed as is" \
	"$FIXTURES/anthropic-messages.json" "$TG_BODY"
tg_check_row "anthropic: record as the README lists" "$TG_RID" "$ROW" \
	"messages|anthropic|anthropic-messages|f|200|2098|120|2048|0|0|reported"
assert_eq "anthropic: upstream path" /anthropic/v1/messages "$(last .path)"
assert_eq "anthropic: provider credential in x-api-key" \
	"$TG_ANTHROPIC_SECRET" "$(last '.headers["x-api-key"]')"
assert_eq "anthropic: anthropic-version sent" 2023-06-01 \
	"$(last '.headers["anthropic-version"]')"
assert_eq "anthropic: no bearer credential sent" null \
	"$(last '.headers.authorization')"

anth_http "$(anth_body anthropic-messages -)" -N
assert_eq "anthropic stream: status" 200 "$TG_STATUS"
assert_file_eq "anthropic stream: events relayed as is" \
	"$FIXTURES/anthropic-messages-stream.sse" "$TG_BODY"
tg_check_row "anthropic stream: record as the README lists" "$TG_RID" "$ROW" \
	"messages|anthropic|anthropic-messages|t|200|1525|42|0|1500|0|reported"
assert_eq "anthropic stream: no stream_options sent to Anthropic" false \
	"$(last '.body | fromjson | has("stream_options")')"

# A bearer key works on /v1/messages too.
tg_http POST /v1/messages "$KEY" "$(anth_body anthropic-messages)" \
	-H 'anthropic-version: 2023-06-01'
assert_eq "anthropic: Authorization: Bearer accepted" 200 "$TG_STATUS"

# Anthropic's errors pass through in Anthropic's shape, metered as zero;
# a refused credential becomes the gateway's own upstream_auth_error.
for f in "$FIXTURES"/anthropic-error-*.json; do
	m=$(basename "$f" .json)
	want=$(sed -E 's/^anthropic-error-([0-9]{3}).*/\1/' <<<"$m")
	anth_http "$(anth_body "$m")"
	if [ "$want" = 401 ] || [ "$want" = 403 ]; then
		# The gateway's credential refused: the operator's business.
		assert_eq "$m: answered 502" 502 "$TG_STATUS"
		assert_eq "$m: upstream_auth_error in Anthropic's shape" \
			"error api_error" \
			"$(jq -r '.type + " " + .error.type' "$TG_BODY" 2>&1)"
		tg_check_row "$m: recorded as 502, metered as zero" "$TG_RID" \
			"endpoint, $ZERO" "messages|502|none|0"
		continue
	fi
	assert_eq "$m: status passed through" "$want" "$TG_STATUS"
	assert_file_eq "$m: body passed through" "$f" "$TG_BODY"
	tg_check_row "$m: metered as zero" "$TG_RID" "endpoint, $ZERO" \
		"messages|$want|none|0"
done

# The gateway's own refusals on /v1/messages speak Anthropic's shape.
tg_http POST /v1/messages "" "$(anth_body anthropic-messages)" \
	-H 'anthropic-version: 2023-06-01'
assert_eq "anthropic, no key: 401" 401 "$TG_STATUS"
assert_json "anthropic, no key: authentication_error" \
	'.type == "error" and .error.type == "authentication_error" and
	 (.error.message | type == "string")' "$TG_BODY"
tg_http POST /v1/messages "" "$(anth_body anthropic-messages)" \
	-H 'x-api-key: tg-not-a-key' -H 'anthropic-version: 2023-06-01'
assert_eq "anthropic, wrong key: 401" 401 "$TG_STATUS"
assert_json "anthropic, wrong key: authentication_error" \
	'.type == "error" and .error.type == "authentication_error"' "$TG_BODY"
anth_http "$(anth_body no-such-route)"
assert_eq "anthropic, unknown model: 404" 404 "$TG_STATUS"
assert_json "anthropic, unknown model: not_found_error" \
	'.type == "error" and .error.type == "not_found_error"' "$TG_BODY"

# ---------------------------------------------------------------------------
# Azure client -> /openai/deployments/... -> azure provider.

azure_http azure-openai-chat "{$MSG}"
assert_eq "azure: status" 200 "$TG_STATUS"
assert_file_eq "azure: body relayed as is" \
	"$FIXTURES/azure-openai-chat.json" "$TG_BODY"
tg_check_row "azure: record as the README lists" "$TG_RID" \
	"requested_model, $ROW" \
	"azure-openai-chat|chat/completions|azure|azure-openai-chat|f|200|48|112|0|0|0|reported"
assert_eq "azure: upstream path" \
	/azure/openai/deployments/azure-openai-chat/chat/completions \
	"$(last .path)"
assert_eq "azure: the provider's api-version" api-version=2024-10-21 \
	"$(last .query)"
assert_eq "azure: provider credential in api-key" "$TG_AZURE_SECRET" \
	"$(last '.headers["api-key"]')"

azure_http azure-openai-chat "{$MSG,\"stream\":true,\"stream_options\":$USAGE_ON}" -N
assert_eq "azure stream, include_usage: status" 200 "$TG_STATUS"
assert_file_eq "azure stream, include_usage: events relayed as is" \
	"$FIXTURES/azure-openai-chat-stream.sse" "$TG_BODY"
tg_check_row "azure stream: record as the README lists" "$TG_RID" "$ROW" \
	"chat/completions|azure|azure-openai-chat|t|200|22|8|0|0|0|reported"

# Without include_usage the client gets the stream Azure would have sent
# it, while the gateway still meters what Azure reported.
azure_http azure-openai-chat "{$MSG,\"stream\":true}" -N
tg_sse_without_usage_event "$FIXTURES/azure-openai-chat-stream.sse" \
	>"$TG_TMP/azure-nousage.sse"
assert_file_eq "azure stream, no stream_options: no usage event for the client" \
	"$TG_TMP/azure-nousage.sse" "$TG_BODY"
assert_eq "azure stream: the gateway asked Azure for usage" true \
	"$(last '.body | fromjson | .stream_options.include_usage')"
tg_check_row "azure stream, no stream_options: still reported" "$TG_RID" \
	"prompt_tokens, completion_tokens, usage_source" "22|8|reported"

# An OpenAI-shaped client reaches the same Azure deployment by model name.
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body azure-openai-chat)"
assert_file_eq "azure via /v1/chat/completions: body relayed as is" \
	"$FIXTURES/azure-openai-chat.json" "$TG_BODY"

for f in "$FIXTURES"/azure-openai-error-*.json; do
	m=$(basename "$f" .json)
	want=$(sed -E 's/^azure-openai-error-([0-9]{3}).*/\1/' <<<"$m")
	azure_http "$m" "{$MSG}"
	if [ "$want" = 401 ] || [ "$want" = 403 ]; then
		assert_eq "$m: answered 502 upstream_auth_error" \
			"502 upstream_auth_error" \
			"$TG_STATUS $(jq -r .error.code "$TG_BODY" 2>&1)"
		tg_check_row "$m: recorded as 502, metered as zero" "$TG_RID" \
			"$ZERO" "502|none|0"
		continue
	fi
	assert_eq "$m: status passed through" "$want" "$TG_STATUS"
	assert_file_eq "$m: body passed through" "$f" "$TG_BODY"
	tg_check_row "$m: metered as zero" "$TG_RID" "$ZERO" "$want|none|0"
done

# An old api-version does not take stream_options: the gateway sends none
# and estimates the usage Azure then leaves out.
tg_http POST "/openai/deployments/azure-old/chat/completions?api-version=2024-06-01" \
	"" "{$MSG,\"stream\":true}" -H "api-key: $KEY" -N
assert_eq "azure 2024-06-01 stream: status" 200 "$TG_STATUS"
assert_file_eq "azure 2024-06-01 stream: the stream Azure sent" \
	"$TG_TMP/azure-nousage.sse" "$TG_BODY"
assert_eq "azure 2024-06-01 stream: no stream_options sent" false \
	"$(last '.body | fromjson | has("stream_options")')"
assert_eq "azure 2024-06-01 stream: the provider's api-version" \
	api-version=2024-06-01 "$(last .query)"
tg_check_row "azure 2024-06-01 stream: estimated" "$TG_RID" \
	"status, streamed, usage_source, prompt_tokens > 0, completion_tokens > 0" \
	"200|t|estimated|t|t"

# ---------------------------------------------------------------------------
# OpenAI Responses client -> /v1/responses -> openai provider.

tg_http POST /v1/responses "$KEY" \
	'{"model":"openai-responses","input":"Why count reasoning tokens?"}'
assert_eq "responses: status" 200 "$TG_STATUS"
assert_file_eq "responses: body relayed as is" \
	"$FIXTURES/openai-responses.json" "$TG_BODY"
tg_check_row "responses: record as the README lists" "$TG_RID" "$ROW" \
	"responses|openai|openai-responses|f|200|1320|310|1024|0|256|reported"
assert_eq "responses: upstream path" /openai/v1/responses "$(last .path)"

tg_http POST /v1/responses "$KEY" \
	'{"model":"openai-responses","input":"Hi","stream":true}' -N
assert_eq "responses stream: status" 200 "$TG_STATUS"
assert_file_eq "responses stream: events relayed as is" \
	"$FIXTURES/openai-responses-stream.sse" "$TG_BODY"
tg_check_row "responses stream: record as the README lists" "$TG_RID" "$ROW" \
	"responses|openai|openai-responses|t|200|37|11|0|0|0|reported"
assert_eq "responses stream: no stream_options sent" false \
	"$(last '.body | fromjson | has("stream_options")')"

# ---------------------------------------------------------------------------
# Keys in x-api-key and api-key work on every endpoint; /v1/models lists
# what the key may use, in Anthropic's shape when asked the Anthropic way.

tg_http POST /v1/chat/completions "" "$(tg_chat_body openai-chat)" \
	-H "x-api-key: $KEY"
assert_eq "chat completions with x-api-key" 200 "$TG_STATUS"
tg_http POST /v1/chat/completions "" "$(tg_chat_body openai-chat)" \
	-H "api-key: $KEY"
assert_eq "chat completions with api-key" 200 "$TG_STATUS"

KM=$(tg_issue_key wire-limited --models 'anthropic-messages,azure-openai-chat') ||
	tg_bail "cannot issue a limited key"
tg_http GET /v1/models "" "" -H "x-api-key: $KM" \
	-H 'anthropic-version: 2023-06-01'
assert_eq "anthropic models list: status" 200 "$TG_STATUS"
assert_json "anthropic models list: Anthropic's shape" \
	'(.data | type == "array") and .has_more == false and
	 (has("object") | not) and
	 all(.data[]; .type == "model" and (.id | type == "string") and
	     (.display_name | type == "string") and
	     (.created_at | type == "string")) and
	 .first_id == .data[0].id and .last_id == .data[-1].id' "$TG_BODY"
assert_eq "anthropic models list: exactly the key's routes" \
	"anthropic-messages azure-openai-chat" \
	"$(jq -r '[.data[].id] | sort | join(" ")' "$TG_BODY")"
tg_http GET /v1/models "" "" -H "api-key: $KM"
assert_json "models list without anthropic-version: OpenAI's shape" \
	'.object == "list" and all(.data[]; .object == "model")' "$TG_BODY"
assert_eq "models list with api-key: exactly the key's routes" \
	"anthropic-messages azure-openai-chat" \
	"$(jq -r '[.data[].id] | sort | join(" ")' "$TG_BODY")"

# ---------------------------------------------------------------------------
# Fallback: fb tries openai:openai-chat, then deepseek:deepseek-chat.

# fallback_case DESC ROUTE : one request to ROUTE whose first target fails
# (as the mock is configured); the second must serve it.
fallback_case() {
	local desc=$1 route=$2
	tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body "$route")"
	assert_eq "$desc: served" 200 "$TG_STATUS"
	assert_file_eq "$desc: the second target's answer" \
		"$FIXTURES/deepseek-chat.json" "$TG_BODY"
	tg_check_row "$desc: record names the second target, one failed try" \
		"$TG_RID" "requested_model, provider, upstream_model,
		failed_attempts, prompt_tokens, completion_tokens" \
		"$route|deepseek|deepseek-chat|1|1100|50"
	assert_eq "$desc: the second target was asked once" 1 \
		"$(tg_mock_tried deepseek-chat)"
}

tg_mock_reset
tg_mock_config '{"fail":"500","fail_model":"openai-chat"}'
fallback_case "first target 500" fb
assert_eq "first target 500: the first target was asked once" 1 \
	"$(tg_mock_tried openai-chat)"

tg_mock_reset
tg_mock_config '{"fail":"429","fail_model":"openai-chat"}'
fallback_case "first target 429" fb
assert_eq "first target 429: the first target was asked once" 1 \
	"$(tg_mock_tried openai-chat)"

# A provider that refuses the gateway's credential is skipped too.
tg_mock_reset
fallback_case "first target refuses the credential (401)" fb-401

# A provider error that is neither 5xx nor 429 is the answer: fb-402's
# first target answers 402 and the second is never asked.
tg_mock_reset
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body fb-402)"
assert_eq "first target 402: passed through" 402 "$TG_STATUS"
assert_file_eq "first target 402: its body" \
	"$FIXTURES/deepseek-error-402.json" "$TG_BODY"
assert_eq "first target 402: the second target was not asked" 0 \
	"$(tg_mock_tried openai-chat)"
tg_check_row "first target 402: record" "$TG_RID" \
	"provider, failed_attempts, $ZERO" "deepseek|0|402|none|0"

tg_mock_reset
tg_mock_config '{"fail":"hang","fail_model":"openai-chat"}'
fallback_case "first target times out" fb-slow
tg_mock_wait_idle >/dev/null
assert_eq "first target times out: the gateway gave up on it" 1 \
	"$(tg_mock_tried openai-chat failed)"

# A stream whose first target stays silent past its idle_timeout before
# any byte: the second target serves the stream.
tg_mock_reset
tg_mock_config '{"fail":"hang","fail_model":"openai-chat"}'
tg_http POST /v1/chat/completions "$KEY" \
	"$(tg_chat_body fb-slow-stream "$USAGE_ON")" -N
assert_eq "streamed, first target silent: served" 200 "$TG_STATUS"
assert_file_eq "streamed, first target silent: the second target's stream" \
	"$FIXTURES/deepseek-chat-stream.sse" "$TG_BODY"
tg_check_row "streamed, first target silent: record" "$TG_RID" \
	"provider, upstream_model, failed_attempts, prompt_tokens,
	 completion_tokens, usage_source" "deepseek|deepseek-chat|1|11|11|reported"
tg_mock_wait_idle >/dev/null
assert_eq "streamed, first target silent: the gateway gave up on it" 1 \
	"$(tg_mock_tried openai-chat failed)"

tg_mock_reset
fallback_case "first target refuses connections" fb-dead
assert_eq "first target refuses connections: nothing reached the mock for it" 0 \
	"$(tg_mock_tried openai-chat)"

# Every target fails: 500, connection refused, then zhipu's 429. The client
# gets the last failure as that provider sent it.
tg_mock_reset
tg_mock_config '{"fail":"500","fail_model":"openai-chat"}'
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body fb-all)"
assert_eq "every target fails: the last failure's status" 429 "$TG_STATUS"
assert_file_eq "every target fails: the last failure's body" \
	"$FIXTURES/zhipu-error-429.json" "$TG_BODY"
tg_check_row "every target fails: record" "$TG_RID" \
	"provider, upstream_model, failed_attempts, $ZERO" \
	"zhipu|zhipu-error-429|2|429|none|0"
assert_eq "every target fails: each target asked once" "1 1" \
	"$(tg_mock_tried openai-chat) $(tg_mock_tried zhipu-error-429)"

# No fallback after the first byte: the first target cuts its stream after
# two events; the client keeps them and no other provider is asked.
tg_mock_reset
tg_mock_config '{"fail":"cut","cut_after":2,"fail_model":"openai-chat"}'
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body fb "$USAGE_ON")" -N
tg_sse_first_events "$FIXTURES/openai-chat-stream.sse" 2 >"$TG_TMP/two-events"
assert_eq "cut mid-stream: status" 200 "$TG_STATUS"
assert_true "cut mid-stream: the client got the first target's two events" \
	test "$(head -c "$(wc -c <"$TG_TMP/two-events")" "$TG_BODY" |
		cmp - "$TG_TMP/two-events" >/dev/null 2>&1 && echo y)" = y
assert_true "cut mid-stream: nothing from the second target" \
	sh -c "! grep -q 'deepseek' '$TG_BODY'"
tg_mock_wait_idle >/dev/null
assert_eq "cut mid-stream: only the first target was asked" "1 0" \
	"$(tg_mock_tried openai-chat) $(tg_mock_tried deepseek-chat)"
tg_check_row "cut mid-stream: record names the first target" "$TG_RID" \
	"provider, upstream_model, failed_attempts, usage_source" \
	"openai|openai-chat|0|estimated"
tg_mock_reset

tg_done
