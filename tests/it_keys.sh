#!/bin/bash
# it_keys.sh - key and tenant changes made with tollctl reach a running
# gateway within seconds; /v1/models lists what a key may use.

. "$(dirname "$0")/lib.sh"

# Prints the model ids of the last /v1/models answer, sorted, one a line.
model_ids() {
	jq -r '.data[].id' "$TG_BODY" 2>/dev/null | sort
}

# Prints the routes matching any of the comma-separated glob patterns.
routes_matching() {
	local pats=$1 r p
	local -a list
	IFS=, read -r -a list <<<"$pats"
	for r in "${TG_ROUTES[@]}"; do
		for p in "${list[@]}"; do
			# shellcheck disable=SC2053
			if [[ $r == $p ]]; then
				echo "$r"
				break
			fi
		done
	done | sort
}

tg_start_pg
tg_start_mock
tg_ctl tenant add keys-a >/dev/null || tg_bail "tenant add failed"
tg_ctl tenant add keys-b >/dev/null || tg_bail "tenant add failed"
tg_start_gateway

# A key issued while the gateway runs.
K1=$(tg_issue_key keys-a --name live)
assert_match "key issue -q prints only the key" '^tg-[A-Za-z0-9_-]{43}$' "$K1"
assert_true "new key accepted within 10 s" tg_wait_chat_status "$K1" zhipu-chat 200
assert_file_eq "new key: response body" "$FIXTURES/zhipu-chat.json" "$TG_BODY"
tg_check_row "new key: record has its tenant and key" "$TG_RID" \
	"tenant_id = (SELECT id FROM tenants WHERE name = 'keys-a'),
	 key_id = (SELECT id FROM api_keys WHERE name = 'live')" "t|t"

# Revocation by id.
K1_ID=$(tg_psql "SELECT id FROM api_keys WHERE name = 'live'")
out=$(tg_ctl key revoke "$K1_ID" 2>&1)
assert_eq "key revoke by id exits 0" 0 "$?"
assert_true "revoked key refused within 10 s" tg_wait_chat_status "$K1" zhipu-chat 401
assert_eq "revoked key: invalid_api_key" invalid_api_key \
	"$(jq -r .error.code "$TG_BODY" 2>&1)"

# Revocation by prefix.
K2=$(tg_issue_key keys-a --name by-prefix)
assert_true "second key accepted within 10 s" tg_wait_chat_status "$K2" zhipu-chat 200
K2_PREFIX=$(tg_psql "SELECT prefix FROM api_keys WHERE name = 'by-prefix'")
assert_true "stored prefix is the key's start" \
	test -n "$K2_PREFIX" -a "${K2:0:${#K2_PREFIX}}" = "$K2_PREFIX"
out=$(tg_ctl key revoke "$K2_PREFIX" 2>&1)
assert_eq "key revoke by prefix exits 0" 0 "$?"
assert_true "key revoked by prefix refused within 10 s" tg_wait_chat_status "$K2" zhipu-chat 401

# Disabling a tenant stops all its keys, and only its keys.
KA1=$(tg_issue_key keys-a)
KA2=$(tg_issue_key keys-a)
KB=$(tg_issue_key keys-b)
assert_true "tenant A key 1 accepted" tg_wait_chat_status "$KA1" zhipu-chat 200
assert_true "tenant A key 2 accepted" tg_wait_chat_status "$KA2" zhipu-chat 200
assert_true "tenant B key accepted" tg_wait_chat_status "$KB" zhipu-chat 200
out=$(tg_ctl tenant disable keys-a 2>&1)
assert_eq "tenant disable exits 0" 0 "$?"
assert_true "disabled tenant's key 1 refused within 10 s" tg_wait_chat_status "$KA1" zhipu-chat 401
assert_true "disabled tenant's key 2 refused within 10 s" tg_wait_chat_status "$KA2" zhipu-chat 401
tg_http POST /v1/chat/completions "$KB" "$(tg_chat_body zhipu-chat)"
assert_eq "other tenant's key still accepted" 200 "$TG_STATUS"

# /v1/models: every route for a key without --models, the matching routes
# for a key with patterns.
tg_http GET /v1/models "$KB"
assert_eq "/v1/models: status" 200 "$TG_STATUS"
assert_json "/v1/models: OpenAI list shape" \
	'.object == "list" and (.data | type == "array") and
	 all(.data[]; .object == "model" and (.id | type == "string"))' "$TG_BODY"
assert_eq "/v1/models: unrestricted key sees every route" \
	"$(printf '%s\n' "${TG_ROUTES[@]}" | sort)" "$(model_ids)"

PATS='zhipu-*,openai-chat,deepseek-*-chat'
KM=$(tg_issue_key keys-b --models "$PATS")
assert_true "restricted key accepted within 10 s" tg_wait_chat_status "$KM" zhipu-chat 200
tg_http GET /v1/models "$KM"
assert_eq "/v1/models with --models '$PATS': status" 200 "$TG_STATUS"
assert_eq "/v1/models with --models '$PATS': matching routes only" \
	"$(routes_matching "$PATS")" "$(model_ids)"
tg_http POST /v1/chat/completions "$KM" "$(tg_chat_body deepseek-reasoner-chat)"
assert_eq "restricted key: deepseek-reasoner-chat allowed" 200 "$TG_STATUS"
tg_http POST /v1/chat/completions "$KM" "$(tg_chat_body openai-chat-reasoning)"
assert_eq "restricted key: openai-chat-reasoning refused" 403 "$TG_STATUS"

tg_http GET /v1/models ""
assert_eq "/v1/models without a key" 401 "$TG_STATUS"

tg_done
