#!/bin/bash
# it_errors.sh - provider errors pass through unchanged and meter zero,
# but a provider's refusal of the gateway's own credential (401, 403),
# which may quote the provider key, is the operator's to read: the tenant
# gets upstream_auth_error. The gateway's own refusals have OpenAI's error
# shape, an x-request-id and a usage record.

. "$(dirname "$0")/lib.sh"

# fixture | HTTP status the provider answers with
ERRORS='
openai-error-401.json              | 401
openai-error-403-region.json       | 403
openai-error-429.json              | 429
openai-error-429-quota.json        | 429
zhipu-error-401.json               | 401
zhipu-error-429.json               | 429
zhipu-error-429-quota.json         | 429
dashscope-error-400-arrearage.json | 400
dashscope-error-401.json           | 401
dashscope-error-429.json           | 429
qianfan-error-401.json             | 401
qianfan-error-429.json             | 429
baichuan-error-429.json            | 429
baichuan-error-quota.json          | 429
moonshot-error-401.json            | 401
moonshot-error-429.json            | 429
moonshot-error-429-quota.json      | 429
deepseek-error-401.json            | 401
deepseek-error-402.json            | 402
'

# Strips blanks around a table cell.
trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	s=${s%"${s##*[![:space:]]}"}
	printf '%s' "$s"
}

# check_refusal LABEL STATUS CODE TENANT : the last response is the
# gateway's refusal with STATUS, OpenAI's error shape (CODE "-" when any
# code will do), an x-request-id, and a usage record with that status whose
# tenant is set ("set") or not checked ("-"); with no valid key ("null")
# no usage record but a count in unauthenticated_refusals.
UNAUTH=0
check_refusal() {
	local label=$1 status=$2 code=$3 tenant=$4
	assert_eq "$label: status" "$status" "$TG_STATUS"
	assert_json "$label: OpenAI error shape" \
		'(.error.message | type == "string" and length > 0) and
		 (.error.type | type == "string" and length > 0) and
		 (.error | has("param") and has("code"))' "$TG_BODY"
	if [ "$code" != - ]; then
		assert_eq "$label: error code" "$code" \
			"$(jq -r '.error.code' "$TG_BODY" 2>&1)"
	fi
	assert_match "$label: x-request-id present" '^[[:graph:]]+$' "$TG_RID"
	if [ "$tenant" = null ]; then
		tg_check_unauth "$label" "$TG_RID" "$UNAUTH"
		UNAUTH=$(tg_unauth_count)
		return
	fi
	tg_check_row "$label: usage record" "$TG_RID" \
		"status, usage_source, prompt_tokens + completion_tokens" \
		"$status|none|0"
	if [ "$tenant" = set ]; then
		assert_eq "$label: record has the tenant" "t" \
			"$(tg_row "$TG_RID" "tenant_id IS NOT NULL")"
	fi
}

# Prints the id of the newest key.
newest_key_id() {
	tg_psql "SELECT max(id) FROM api_keys"
}

tg_start_pg
tg_start_mock

KEY=$(tg_issue_key errs) || tg_bail "cannot issue a key"
REVOKED=$(tg_issue_key errs --name to-revoke) || tg_bail "cannot issue a key"
REVOKED_ID=$(newest_key_id)
EXPIRED=$(tg_issue_key errs --name to-expire) || tg_bail "cannot issue a key"
EXPIRED_ID=$(newest_key_id)
EXPIRING=$(tg_issue_key errs --name expiring) || tg_bail "cannot issue a key"
EXPIRING_ID=$(newest_key_id)
ZHIPU_ONLY=$(tg_issue_key errs --models 'zhipu-*') || tg_bail "cannot issue a key"

tg_start_gateway "max_body_size = 64k"

# Provider errors: status and bytes unchanged, metered as zero.
while IFS='|' read -r fixture status; do
	fixture=$(trim "$fixture")
	[ -n "$fixture" ] || continue
	status=$(trim "$status")
	model=${fixture%.json}
	tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body "$model")"
	assert_match "$fixture: x-request-id present" '^[[:graph:]]+$' "$TG_RID"
	if [ "$status" = 401 ] || [ "$status" = 403 ]; then
		assert_eq "$fixture: the gateway's credential refused: 502" 502 "$TG_STATUS"
		assert_eq "$fixture: ...as upstream_auth_error" upstream_auth_error \
			"$(jq -r .error.code "$TG_BODY" 2>&1)"
		assert_match "$fixture: ...in the gateway's words, not the provider's" \
			"^The upstream provider '${model%%-*}' refused the gateway's credential" \
			"$(jq -r .error.message "$TG_BODY" 2>&1)"
		assert_true "$fixture: the provider's answer is in the log for the operator" \
			tg_wait_until 5 "grep -q '$TG_RID.*refused the gateway.s credential (HTTP $status)' '$TG_TMP/gateway.log'"
		tg_check_row "$fixture: recorded as 502, metered as zero" "$TG_RID" \
			"status, usage_source, prompt_tokens + completion_tokens" \
			"502|none|0"
		continue
	fi
	assert_eq "$fixture: status passed through" "$status" "$TG_STATUS"
	assert_file_eq "$fixture: body passed through" "$FIXTURES/$fixture" \
		"$TG_BODY"
	tg_check_row "$fixture: metered as zero" "$TG_RID" \
		"status, usage_source, prompt_tokens, completion_tokens,
		 cached_tokens, cache_write_tokens, reasoning_tokens, provider,
		 upstream_model, tenant_id IS NOT NULL" \
		"$status|none|0|0|0|0|0|${model%%-*}|$model|t"
done <<<"$ERRORS"

# The table covers every error fixture of the providers under test.
covered=$(echo "$ERRORS" | awk -F'|' 'NF > 1 { gsub(/ /, "", $1); print $1 }' | sort)
present=$(cd "$FIXTURES" && for f in *-error-*; do
	case " $TG_PROVIDERS " in
	*" ${f%%-*} "*) echo "$f" ;;
	esac
done | sort)
assert_eq "the table lists every error fixture" "$present" "$covered"

# An error answered to a streamed request is passed through too.
tg_http POST /v1/chat/completions "$KEY" \
	"$(tg_chat_body zhipu-error-429 '{"include_usage":true}')" -N
assert_eq "streamed request, provider error: status" 429 "$TG_STATUS"
assert_file_eq "streamed request, provider error: body" \
	"$FIXTURES/zhipu-error-429.json" "$TG_BODY"
tg_check_row "streamed request, provider error: metered as zero" "$TG_RID" \
	"status, usage_source, prompt_tokens + completion_tokens" "429|none|0"

# Authentication refusals.
BODY=$(tg_chat_body openai-chat)
tg_http POST /v1/chat/completions "" "$BODY"
check_refusal "no key" 401 invalid_api_key null

UNKNOWN=tg-$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' | head -c 43)
tg_http POST /v1/chat/completions "$UNKNOWN" "$BODY"
check_refusal "unknown key" 401 invalid_api_key null

tg_http POST /v1/chat/completions "sk-not-a-tollgate-key" "$BODY"
check_refusal "malformed key" 401 invalid_api_key null

tg_http POST /v1/chat/completions "$REVOKED" "$BODY"
assert_eq "key to revoke works before" 200 "$TG_STATUS"
out=$(tg_ctl key revoke "$REVOKED_ID" 2>&1)
assert_eq "tollctl key revoke succeeds" 0 "$?"
assert_true "revoked key refused within 10 s" tg_wait_chat_status "$REVOKED" openai-chat 401
check_refusal "revoked key" 401 invalid_api_key null

tg_http POST /v1/chat/completions "$EXPIRED" "$BODY"
assert_eq "key to expire works before" 200 "$TG_STATUS"
tg_psql "UPDATE api_keys SET expires_at = now() - interval '1 minute'
	 WHERE id = $EXPIRED_ID" >/dev/null
assert_true "expired key refused within 10 s" tg_wait_chat_status "$EXPIRED" openai-chat 401
check_refusal "expired key" 401 invalid_api_key null

# A key that expires while cached, with no change in the database after.
tg_psql "UPDATE api_keys SET expires_at = now() + interval '3 seconds'
	 WHERE id = $EXPIRING_ID" >/dev/null
assert_true "key expiring in 3 s refused within 10 s" \
	tg_wait_chat_status "$EXPIRING" openai-chat 401
check_refusal "key expired while cached" 401 invalid_api_key null

# Model and route refusals.
tg_http POST /v1/chat/completions "$ZHIPU_ONLY" "$(tg_chat_body zhipu-chat)"
assert_eq "key limited to zhipu-*: zhipu-chat allowed" 200 "$TG_STATUS"
tg_http POST /v1/chat/completions "$ZHIPU_ONLY" "$BODY"
check_refusal "key limited to zhipu-*: openai-chat" 403 model_not_allowed set
assert_eq "a model the key may not use is a refusal of its own" \
	model_not_allowed "$(tg_row "$TG_RID" "refusal")"

tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body no-such-model)"
check_refusal "no route" 404 model_not_found set
assert_eq "a model no route serves is a refusal of its own" \
	model_not_found "$(tg_row "$TG_RID" "refusal")"

# Malformed requests.
tg_http POST /v1/chat/completions "$KEY" '{"model":"openai-chat","messages":['
check_refusal "malformed JSON" 400 invalid_request_error set

tg_http POST /v1/chat/completions "$KEY" \
	'{"messages":[{"role":"user","content":"Hi"}]}'
check_refusal "missing model" 400 invalid_request_error set

tg_http POST /v1/chat/completions "$KEY" \
	'{"model":42,"messages":[{"role":"user","content":"Hi"}]}'
check_refusal "model not a string" 400 invalid_request_error set

tg_http POST /v1/chat/completions "$KEY" '["openai-chat"]'
check_refusal "body not an object" 400 invalid_request_error set

deep=$(printf '%0.s[' {1..200})$(printf '%0.s]' {1..200})
tg_http POST /v1/chat/completions "$KEY" "{\"model\":\"openai-chat\",\"x\":$deep}"
check_refusal "JSON nested deeper than max_json_depth" 400 invalid_request_error set

# Body size: 64k allowed (max_body_size = 64k).
make_body() {
	printf '{"model":"openai-chat","messages":[{"role":"user","content":"'
	head -c "$1" /dev/zero | tr '\0' a
	printf '"}]}'
}
make_body 60000 >"$TG_TMP/small.json"
make_body 100000 >"$TG_TMP/big.json"
tg_http POST /v1/chat/completions "$KEY" "@$TG_TMP/small.json"
assert_eq "body under max_body_size accepted" 200 "$TG_STATUS"
tg_http POST /v1/chat/completions "$KEY" "@$TG_TMP/big.json"
check_refusal "body over max_body_size" 413 invalid_request_error -
tg_http POST /v1/chat/completions "$KEY" "@$TG_TMP/big.json" \
	-H 'Transfer-Encoding: chunked'
check_refusal "chunked body over max_body_size" 413 invalid_request_error -

# Method and path: answered in OpenAI's shape with a request id, but not
# metered, since such requests never reach admission (PRODUCT section 4).
UNMETERED=()
check_unmetered() {
	local label=$1 status=$2
	assert_eq "$label: status" "$status" "$TG_STATUS"
	assert_json "$label: OpenAI error shape" \
		'(.error.message | type == "string" and length > 0) and
		 (.error.type | type == "string" and length > 0) and
		 (.error | has("param") and has("code"))' "$TG_BODY"
	assert_match "$label: x-request-id present" '^[[:graph:]]+$' "$TG_RID"
	UNMETERED+=("$label=$TG_RID")
}
tg_http GET /v1/chat/completions "$KEY"
check_unmetered "GET on a POST endpoint" 405
assert_eq "GET on a POST endpoint: Allow header" POST \
	"$(tg_header Allow)"
tg_http POST /v1/no/such/path "$KEY" "$BODY"
check_unmetered "unknown path" 404

# Still healthy.
assert_eq "/healthz after the refusals" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' "$TG_ADMIN_URL/healthz")"
tg_http POST /v1/chat/completions "$KEY" "$BODY"
assert_eq "a good request after the refusals" 200 "$TG_STATUS"
assert_file_eq "a good request after the refusals: body" \
	"$FIXTURES/openai-chat.json" "$TG_BODY"
# Records are written in order of completion: once the good request's row
# is in, a row for the unmetered ones would be too.
tg_wait_row "$TG_RID" >/dev/null
for u in "${UNMETERED[@]}"; do
	assert_eq "${u%%=*}: no usage record" 0 \
		"$(tg_psql "SELECT count(*) FROM usage_records WHERE request_id = '${u#*=}'")"
done

tg_done
