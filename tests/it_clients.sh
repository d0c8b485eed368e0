#!/bin/bash
# it_clients.sh - what the clients people use send, answered as they
# expect: Anthropic's count_tokens, Azure OpenAI's v1 paths, the prompt's
# count in a translated message_start, a tollgate key found beside a
# client's own credentials (a Zhipu SDK's JWT among them), answers a
# provider or a CDN compressed, and every refusal in the caller's shape
# whatever the path.

. "$(dirname "$0")/lib.sh"

# Besides these routes, every fixture has its own (deepseek-chat...).

tg_start_pg
tg_start_mock
tg_mock_providers
TG_EXTRA_SECTIONS="$TG_MOCK_PROVIDERS

[provider plain]
type = openai
flavor = openai
base_url = $TG_MOCK_URL/plain/v1
compression = no

[route gpt-4o]
target = openai:gpt-4o

[route gpt-4]
target = openai:gpt-4

[route oa-chat]
target = openai:openai-chat

[route plain-chat]
target = plain:openai-chat

[route claude]
target = anthropic:anthropic-messages

[route azure-chat]
target = azure:azure-openai-chat

[route oa-emb]
target = openai:openai-embeddings

[route oa-resp]
target = openai:openai-responses"
tg_start_gateway
KEY=$(tg_issue_key clients) || tg_bail "cannot issue a key"

ROW="endpoint, provider, requested_model, streamed, status, prompt_tokens,
	completion_tokens, usage_source"
AV='anthropic-version: 2023-06-01'

# anth POST_PATH BODY [CURL_ARGS...] : as the Anthropic SDKs send it.
anth() {
	local path=$1 body=$2
	shift 2
	tg_http POST "$path" "" "$body" -H "x-api-key: $KEY" -H "$AV" "$@"
}

# Prints a field of the last request the mock received (a jq filter).
last() {
	tg_mock_last_request | jq -r "$1"
}

# The mock's count of model requests so far.
mock_requests() {
	curl -sS --max-time 5 "$TG_MOCK_URL/_mock/stats" | jq -r .requests
}

# Whether the last answer is an error in Anthropic's shape with TYPE.
is_anthropic_error() {
	jq -e --arg t "$1" '.type == "error" and .error.type == $t and
		(.error.message | type == "string")' "$TG_BODY" >/dev/null 2>&1
}

# Whether the last answer is an error in OpenAI's (and Azure's) shape with
# CODE.
is_openai_error() {
	jq -e --arg c "$1" '(.error | has("message") and has("type") and
		has("param")) and .error.code == $c and (has("type") | not)' \
		"$TG_BODY" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------
# count_tokens. The reference counts are js-tiktoken 1.0.21's (OpenAI's own
# rank files) for the texts, plus the framing OpenAI documents: 4 tokens a
# message and 3 priming the reply. B1's text is 6 tokens in both encodings;
# B2's system, three messages are 6, 10, 3 and 7 tokens in o200k_base (the
# Chinese one 14 in cl100k_base).

B1='{"model":"%s","messages":[{"role":"user","content":"Hello, who are you?"}]}'
B2='{"model":"%s","system":"You are a terse assistant.","messages":[
 {"role":"user","content":"Translate to French: the gateway counts every token."},
 {"role":"assistant","content":[{"type":"text","text":"Bien sûr."}]},
 {"role":"user","content":"你好，今天的天气怎么样？"}]}'
# shellcheck disable=SC2059
body() { printf "$1" "$2"; }

before=$(mock_requests)
anth /v1/messages/count_tokens "$(body "$B1" gpt-4o)"
assert_eq "count_tokens, gpt-4o: 200" 200 "$TG_STATUS"
assert_eq "count_tokens, gpt-4o: one message counted as OpenAI does" \
	'{"input_tokens":13}' "$(cat "$TG_BODY")"
assert_eq "count_tokens, gpt-4o: the count is exact" exact \
	"$(tg_header x-tollgate-token-count)"
tg_check_row "count_tokens: recorded, no tokens" "$TG_RID" "$ROW" \
	"messages/count_tokens|openai|gpt-4o|f|200|0|0|none"
assert_eq "count_tokens, gpt-4o: answered without the provider" "$before" \
	"$(mock_requests)"

anth /v1/messages/count_tokens "$(body "$B2" gpt-4o)"
assert_eq "count_tokens, system and three turns, o200k_base" \
	'{"input_tokens":45}' "$(cat "$TG_BODY")"
anth /v1/messages/count_tokens "$(body "$B2" gpt-4)"
assert_eq "count_tokens, system and three turns, cl100k_base" \
	'{"input_tokens":52}' "$(cat "$TG_BODY")"

# DeepSeek's tokenizer is not public: o200k_base's 45, raised by the 165%
# safety factor (estimate.h), rounded up, so a context budget is not run
# past.
anth /v1/messages/count_tokens "$(body "$B2" deepseek-chat)"
assert_eq "count_tokens, deepseek: o200k_base's count raised by 165%" \
	'{"input_tokens":75}' "$(cat "$TG_BODY")"
assert_eq "count_tokens, deepseek: marked estimated" estimated \
	"$(tg_header x-tollgate-token-count)"
tg_check_row "count_tokens, deepseek: recorded, no tokens" "$TG_RID" "$ROW" \
	"messages/count_tokens|deepseek|deepseek-chat|f|200|0|0|none"

tools='{"model":"gpt-4o","messages":[{"role":"user","content":"Hello, who are you?"}],
 "tools":[{"name":"get_weather","description":"The weather in a city.",
 "input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]}'
anth /v1/messages/count_tokens "$tools"
assert_true "count_tokens: tool definitions are counted" \
	jq -e '.input_tokens > 13' "$TG_BODY"

# An Anthropic target counts for itself.
anth /v1/messages/count_tokens "$(body "$B2" claude)" \
	-H 'anthropic-beta: token-counting-2024-11-01'
assert_eq "count_tokens, anthropic: 200" 200 "$TG_STATUS"
assert_eq "count_tokens, anthropic: the provider's count" \
	'{"input_tokens":50}' "$(cat "$TG_BODY")"
assert_eq "count_tokens, anthropic: sent to the provider's count_tokens" \
	/anthropic/v1/messages/count_tokens "$(last .path)"
assert_eq "count_tokens, anthropic: the provider's model and credential" \
	"anthropic-messages $TG_ANTHROPIC_SECRET token-counting-2024-11-01" \
	"$(last '(.body | fromjson | .model) + " " + .headers["x-api-key"] +
		" " + .headers["anthropic-beta"]')"
tg_check_row "count_tokens, anthropic: recorded, no tokens" "$TG_RID" "$ROW" \
	"messages/count_tokens|anthropic|claude|f|200|0|0|none"

anth /v1/messages/count_tokens "$(body "$B1" no-such-model)"
assert_eq "count_tokens, unknown model: 404" 404 "$TG_STATUS"
assert_true "count_tokens, unknown model: Anthropic's not_found_error" \
	is_anthropic_error not_found_error
tg_http POST /v1/messages/count_tokens "" "$(body "$B1" gpt-4o)" -H "$AV"
assert_eq "count_tokens, no key: 401" 401 "$TG_STATUS"
assert_true "count_tokens, no key: Anthropic's authentication_error" \
	is_anthropic_error authentication_error
tg_http GET /v1/messages/count_tokens "" "" -H "x-api-key: $KEY" -H "$AV"
assert_eq "count_tokens, GET: 405" 405 "$TG_STATUS"
assert_true "count_tokens, GET: in Anthropic's shape" \
	is_anthropic_error invalid_request_error
anth /v1/messages/count_tokens '{"model":"gpt-4o","messages":'
assert_eq "count_tokens, broken JSON: 400" 400 "$TG_STATUS"
assert_true "count_tokens, broken JSON: in Anthropic's shape" \
	is_anthropic_error invalid_request_error

# ---------------------------------------------------------------------------
# message_start of a translated stream carries the prompt's estimate; the
# exact count comes in message_delta and is what the record holds.

msgs='"messages":[{"role":"user","content":"Hello, who are you?"}]'
anth /v1/messages "{\"model\":\"oa-chat\",\"max_tokens\":64,$msgs,\"stream\":true}" -N
assert_eq "translated stream: 200" 200 "$TG_STATUS"
start=$(awk '/^data: / && /"message_start"/ { sub(/^data: /, ""); print; exit }' "$TG_BODY")
delta=$(awk '/^data: / && /"message_delta"/ { sub(/^data: /, ""); print }' "$TG_BODY" | tail -n 1)
stream_rid=$TG_RID
anth /v1/messages/count_tokens "{\"model\":\"oa-chat\",$msgs}"
assert_eq "translated stream: message_start carries the prompt's count" \
	"$(jq -r .input_tokens "$TG_BODY")" \
	"$(jq -r .message.usage.input_tokens <<<"$start" 2>&1)"
assert_true "translated stream: the estimate is not 0" \
	[ "$(jq -r .message.usage.input_tokens <<<"$start" 2>/dev/null || echo 0)" -gt 0 ]
assert_eq "translated stream: message_delta carries the provider's counts" \
	"25 9" "$(jq -r '"\(.usage.input_tokens) \(.usage.output_tokens)"' <<<"$delta" 2>&1)"
tg_check_row "translated stream: recorded as the provider counted" \
	"$stream_rid" "$ROW" "messages|openai|oa-chat|t|200|25|9|reported"

# ---------------------------------------------------------------------------
# Azure OpenAI's v1 paths: the model is the body's, api-version optional.

for q in "" "?api-version=2024-10-21" "?api-version=preview"; do
	tg_http POST "/openai/v1/chat/completions$q" "" "$(tg_chat_body azure-chat)" \
		-H "api-key: $KEY"
	assert_eq "azure v1 chat${q:+ $q}: 200" 200 "$TG_STATUS"
	assert_file_eq "azure v1 chat${q:+ $q}: the provider's answer" \
		"$FIXTURES/azure-openai-chat.json" "$TG_BODY"
	tg_check_row "azure v1 chat${q:+ $q}: recorded" "$TG_RID" "$ROW" \
		"chat/completions|azure|azure-chat|f|200|48|112|reported"
done
tg_http POST /openai/v1/chat/completions "$KEY" "$(tg_chat_body azure-chat)"
assert_eq "azure v1 chat, Bearer key: 200" 200 "$TG_STATUS"
tg_http POST /openai/v1/embeddings "" '{"model":"oa-emb","input":["a","b"]}' \
	-H "api-key: $KEY"
assert_eq "azure v1 embeddings: 200" 200 "$TG_STATUS"
tg_check_row "azure v1 embeddings: recorded" "$TG_RID" "$ROW" \
	"embeddings|openai|oa-emb|f|200|16|0|reported"
for p in /openai/v1/responses "/openai/responses?api-version=2025-04-01-preview"; do
	tg_http POST "$p" "" '{"model":"oa-resp","input":"Hello"}' -H "api-key: $KEY"
	assert_eq "azure $p: 200" 200 "$TG_STATUS"
	assert_file_eq "azure $p: the provider's answer" \
		"$FIXTURES/openai-responses.json" "$TG_BODY"
	tg_check_row "azure $p: recorded" "$TG_RID" "$ROW" \
		"responses|openai|oa-resp|f|200|1320|310|reported"
done
tg_http POST "/openai/v1/chat/completions" "" "$(tg_chat_body azure-chat -)" \
	-H "api-key: $KEY" -N
assert_eq "azure v1 chat stream: 200" 200 "$TG_STATUS"
tg_check_row "azure v1 chat stream: recorded" "$TG_RID" "$ROW" \
	"chat/completions|azure|azure-chat|t|200|22|8|reported"
tg_http GET /openai/v1/models "" "" -H "api-key: $KEY"
assert_eq "azure v1 models: 200" 200 "$TG_STATUS"
assert_json "azure v1 models: the routes, in OpenAI's list" \
	'.object == "list" and ([.data[].id] | index("azure-chat") != null)' "$TG_BODY"

# One model, as openai's models.retrieve and Anthropic's models.retrieve
# ask for it.
tg_http GET /v1/models/oa-chat "$KEY"
assert_eq "models/{id}: 200" 200 "$TG_STATUS"
assert_json "models/{id}: OpenAI's model object" \
	'.id == "oa-chat" and .object == "model" and .owned_by == "openai"' "$TG_BODY"
tg_http GET /v1/models/claude "" "" -H "x-api-key: $KEY" -H "$AV"
assert_json "models/{id}, Anthropic client: Anthropic's model object" \
	'.id == "claude" and .type == "model" and (.display_name | type == "string")' "$TG_BODY"
tg_http GET /openai/v1/models/azure-chat "" "" -H "api-key: $KEY"
assert_json "models/{id} on Azure's v1 path" '.id == "azure-chat"' "$TG_BODY"
tg_http GET /v1/models/no-such-model "$KEY"
assert_eq "models/{id}, unknown: 404" 404 "$TG_STATUS"
assert_true "models/{id}, unknown: model_not_found" is_openai_error model_not_found
tg_http GET /v1/models/no-such-model "" "" -H "x-api-key: $KEY" -H "$AV"
assert_true "models/{id}, unknown, Anthropic client: not_found_error" \
	is_anthropic_error not_found_error
tg_http GET /v1/models/oa-chat ""
assert_eq "models/{id}, no key: 401" 401 "$TG_STATUS"

# ---------------------------------------------------------------------------
# The key: the first header holding a tollgate key.

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
# A JWT as the Zhipu SDK signs one, its api_key claim $1 (the signature is
# not checked: it is made with the part of the SDK's key after the dot).
zhipu_jwt() {
	printf '%s.%s.c2ln' \
		"$(printf '{"alg":"HS256","sign_type":"SIGN"}' | b64url)" \
		"$(printf '{"api_key":"%s","exp":%s000000,"timestamp":%s000000}' \
			"$1" "$(date +%s)" "$(date +%s)" | b64url)"
}

tg_http POST /v1/chat/completions "" "$(tg_chat_body oa-chat)" \
	-H 'Authorization: Basic dXNlcjpwYXNz' -H "x-api-key: $KEY"
assert_eq "key: Basic Authorization beside x-api-key: 200" 200 "$TG_STATUS"
tg_check_row "key: Basic beside x-api-key: the key's tenant" "$TG_RID" \
	"status, (SELECT name FROM tenants WHERE id = tenant_id)" "200|clients"
tg_http POST /v1/chat/completions "" "$(tg_chat_body oa-chat)" \
	-H 'Authorization: Bearer sk-the-apps-own' -H "api-key: $KEY"
assert_eq "key: a foreign Bearer beside api-key: 200" 200 "$TG_STATUS"
tg_http POST /v1/chat/completions "" "$(tg_chat_body oa-chat)" \
	-H "Authorization: $(zhipu_jwt "$KEY")"
assert_eq "key: a Zhipu SDK's JWT carrying the key: 200" 200 "$TG_STATUS"
tg_check_row "key: Zhipu JWT: the key's tenant" "$TG_RID" \
	"status, (SELECT name FROM tenants WHERE id = tenant_id)" "200|clients"
tg_http POST /v1/chat/completions "" "$(tg_chat_body oa-chat)" \
	-H "Authorization: Bearer $(zhipu_jwt "$KEY")"
assert_eq "key: a Zhipu JWT with Bearer: 200" 200 "$TG_STATUS"
tg_http POST /v1/chat/completions "" "$(tg_chat_body oa-chat)" \
	-H "Authorization: $(zhipu_jwt 0123abcd)"
assert_eq "key: a JWT of a foreign key: 401" 401 "$TG_STATUS"
assert_json "key: a JWT of a foreign key: the key is wrong, not missing" \
	'.error.message == "Incorrect API key provided."' "$TG_BODY"
tg_http POST /v1/chat/completions "" "$(tg_chat_body oa-chat)" \
	-H 'Authorization: Basic dXNlcjpwYXNz'
assert_eq "key: Basic alone: 401" 401 "$TG_STATUS"
assert_json "key: Basic alone: says how to send the key" \
	'.error.message | test("Authorization: Bearer tg-")' "$TG_BODY"

# ---------------------------------------------------------------------------
# Compressed answers are decoded before they are metered and relayed.

tg_mock_config '{"gzip":"always"}'
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body oa-chat)" \
	-H 'Accept-Encoding: identity'
assert_eq "gzip: 200" 200 "$TG_STATUS"
assert_file_eq "gzip: the client gets the answer decoded" \
	"$FIXTURES/openai-chat.json" "$TG_BODY"
assert_eq "gzip: no Content-Encoding passed on" "" \
	"$(tg_header content-encoding)"
tg_check_row "gzip: metered from the provider's usage" "$TG_RID" "$ROW" \
	"chat/completions|openai|oa-chat|f|200|1200|85|reported"
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body oa-chat '{"include_usage":true}')" -N
assert_file_eq "gzip stream: the events decoded, as the provider sent them" \
	"$FIXTURES/openai-chat-stream.sse" "$TG_BODY"
tg_check_row "gzip stream: metered from the provider's usage" "$TG_RID" "$ROW" \
	"chat/completions|openai|oa-chat|t|200|25|9|reported"
anth /v1/messages '{"model":"claude","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi"}]}' -N
assert_file_eq "gzip, Anthropic stream: decoded" \
	"$FIXTURES/anthropic-messages-stream.sse" "$TG_BODY"
tg_check_row "gzip, Anthropic stream: metered" "$TG_RID" "$ROW" \
	"messages|anthropic|claude|t|200|1525|42|reported"
anth /v1/messages '{"model":"oa-chat","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]}'
assert_eq "gzip, translated answer: 200" 200 "$TG_STATUS"
assert_json "gzip, translated answer: Anthropic's message with the usage" \
	'.type == "message" and .usage.output_tokens == 85' "$TG_BODY"

tg_mock_config '{"gzip":"asked"}'
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body oa-chat)"
assert_match "gzip asked: a whole answer is asked compressed" gzip \
	"$(last '.headers["accept-encoding"]')"
assert_file_eq "gzip asked: decoded" "$FIXTURES/openai-chat.json" "$TG_BODY"
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body oa-chat '{"include_usage":true}')" -N
assert_eq "gzip asked: a stream is asked plain" identity \
	"$(last '.headers["accept-encoding"]')"
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body plain-chat)"
assert_eq "gzip asked: compression = no asks plain" identity \
	"$(last '.headers["accept-encoding"]')"
assert_file_eq "compression = no: the answer" "$FIXTURES/openai-chat.json" "$TG_BODY"
tg_mock_config '{"gzip":"off"}'

# ---------------------------------------------------------------------------
# Every refusal in the caller's shape, whatever the path.

# refusal DESC SHAPE CODE_OR_TYPE STATUS METHOD PATH [CURL_ARGS...]
refusal() {
	local desc=$1 shape=$2 what=$3 status=$4 method=$5 path=$6
	shift 6
	tg_http "$method" "$path" "" "" "$@"
	assert_eq "$desc: $status" "$status" "$TG_STATUS"
	if [ "$shape" = anthropic ]; then
		assert_true "$desc: Anthropic's shape ($what)" is_anthropic_error "$what"
	else
		assert_true "$desc: OpenAI's shape ($what)" is_openai_error "$what"
	fi
	assert_true "$desc: x-request-id" [ -n "$TG_RID" ]
}

refusal "unknown path under /v1/messages/" anthropic not_found_error 404 \
	POST /v1/messages/batches -H "x-api-key: $KEY" -H "$AV"
refusal "unknown path under /v1/messages/, no headers" anthropic \
	not_found_error 404 GET /v1/messages/x/y
refusal "unknown /v1 path from an Anthropic client" anthropic \
	not_found_error 404 GET /v1/files -H "$AV"
refusal "unknown /v1 path" openai unknown_url 404 GET /v1/files
refusal "unknown Azure v1 path" openai unknown_url 404 POST /openai/v1/files \
	-H "api-key: $KEY"
refusal "unknown Azure deployment path" openai unknown_url 404 \
	POST "/openai/deployments/d/images/generations?api-version=2024-10-21" \
	-H "api-key: $KEY"
refusal "unknown Azure path, anthropic-version sent" openai unknown_url 404 \
	GET /openai/v1/nothing -H "$AV"
refusal "Azure v1 chat, GET" openai method_not_allowed 405 \
	GET /openai/v1/chat/completions
refusal "Azure v1 models, POST" openai method_not_allowed 405 \
	POST /openai/v1/models
refusal "/v1/models, POST, Anthropic client" anthropic invalid_request_error \
	405 POST /v1/models -H "$AV"
refusal "Azure v1 chat, no key" openai invalid_api_key 401 \
	POST /openai/v1/chat/completions --data-binary "$(tg_chat_body azure-chat)"
refusal "Azure v1 chat, broken JSON" openai invalid_request_error 400 \
	POST /openai/v1/chat/completions -H "api-key: $KEY" --data-binary '{"model":'
refusal "Azure v1 chat, unknown model" openai model_not_found 404 \
	POST /openai/v1/chat/completions -H "api-key: $KEY" \
	--data-binary "$(tg_chat_body no-such-model)"
refusal "Azure deployment, unknown model" openai model_not_found 404 \
	POST "/openai/deployments/nope/chat/completions?api-version=2024-10-21" \
	-H "api-key: $KEY" --data-binary "$(tg_chat_body x)"
refusal "messages, unknown model" anthropic not_found_error 404 \
	POST /v1/messages -H "x-api-key: $KEY" -H "$AV" \
	--data-binary '{"model":"nope","max_tokens":5,"messages":[]}'
refusal "messages, no key" anthropic authentication_error 401 \
	POST /v1/messages --data-binary '{"model":"claude"}'
refusal "malformed request line under /v1/messages" anthropic \
	invalid_request_error 400 POST '/v1/messages/%zz' -H "$AV" \
	-H 'Content-Length: 1' -H 'Content-Length: 2'

# A compressed request body is refused before it is read, not misread.
printf '%s' "$(tg_chat_body oa-chat)" | gzip -c >"$TG_TMP/body.gz"
tg_http POST /v1/chat/completions "$KEY" "@$TG_TMP/body.gz" \
	-H 'Content-Encoding: gzip'
assert_eq "a gzip'd request body: 415" 415 "$TG_STATUS"
assert_true "a gzip'd request body: says so" \
	is_openai_error unsupported_content_encoding
tg_check_row "a gzip'd request body: recorded as refused" "$TG_RID" \
	"status, refusal" "415|invalid_request"

tg_done
