#!/bin/bash
# it_ratelimit.sh - requests per minute, tokens per minute and concurrent
# requests, per tenant and per key, through the real gateway: 429 with
# rate_limit_exceeded and Retry-After, x-ratelimit-* headers on every
# answer, refusals in the ledger, windows that slide (on a clock the test
# moves through the admin address), and changes picked up while running.

. "$(dirname "$0")/lib.sh"

# Moves the gateway's policy clock forward by N seconds.
advance() {
	curl -sS -f -o /dev/null -X POST "$TG_ADMIN_URL/clock/advance?ms=$(($1 * 1000))" ||
		tg_bail "cannot move the clock"
}

# chat MODEL [MAX_TOKENS] : one non-streamed chat request with $KEY.
chat() {
	local body='{"model":"'$1'","messages":[{"role":"user","content":"hi"}]'
	[ -n "${2:-}" ] && body+=',"max_tokens":'$2
	tg_http POST /v1/chat/completions "$KEY" "$body}"
}

# wait_status STATUS MODEL [MAX_TOKENS] : repeats a request until it
# answers STATUS (limits reach the gateway through NOTIFY), for at most 10 s.
wait_status() {
	local want=$1 model=$2 max=${3:-}
	tg_wait_until -i 0.2 10 'chat "$model" "$max"; [ "$TG_STATUS" = "$want" ]'
}

tg_start_pg
tg_start_mock
tg_start_gateway "test_clock = yes"
KEY=$(tg_issue_key rl)

# No limits: no x-ratelimit headers.
chat openai-chat
assert_eq "no limits: served" 200 "$TG_STATUS"
assert_eq "no limits: no x-ratelimit headers" "" \
	"$(tg_header x-ratelimit-limit-requests)"

# Requests per minute, for the tenant.
tg_ctl limit set --tenant rl --rpm 3 >/dev/null || tg_bail "limit set failed"
advance 180
assert_true "rpm limit reaches the running gateway" wait_status 200 zhipu-chat
assert_eq "rpm: x-ratelimit-limit-requests" 3 \
	"$(tg_header x-ratelimit-limit-requests)"
advance 180
for i in 1 2 3; do
	chat zhipu-chat
	assert_eq "rpm: request $i served" 200 "$TG_STATUS"
	assert_eq "rpm: request $i remaining" $((3 - i)) \
		"$(tg_header x-ratelimit-remaining-requests)"
done
chat zhipu-chat
assert_eq "rpm: fourth refused" 429 "$TG_STATUS"
assert_eq "rpm: code" rate_limit_exceeded "$(jq -r .error.code "$TG_BODY")"
assert_eq "rpm: type" requests "$(jq -r .error.type "$TG_BODY")"
assert_match "rpm: Retry-After in seconds" '^[1-9][0-9]*$' \
	"$(tg_header Retry-After)"
assert_eq "rpm: remaining 0" 0 "$(tg_header x-ratelimit-remaining-requests)"
tg_check_row "rpm: refusal recorded with its reason" "$TG_RID" \
	"status, refusal, usage_source, tenant_id IS NOT NULL" \
	"429|rate_limit:requests|none|t"
RETRY=$(tg_header Retry-After)
advance "$RETRY"
chat zhipu-chat
assert_eq "rpm: served again after Retry-After" 200 "$TG_STATUS"
tg_mock_reset
MOCK_BEFORE=$(curl -s "$TG_MOCK_URL/_mock/stats" | jq .requests)
advance 180
for i in 1 2 3 4; do chat zhipu-chat; done
assert_eq "rpm: the refused request never reached the provider" \
	$((MOCK_BEFORE + 3)) "$(curl -s "$TG_MOCK_URL/_mock/stats" | jq .requests)"

# Tokens per minute, for the key: the worst case (prompt + max_tokens)
# is counted at admission, the actual usage at the end.
tg_ctl limit set --tenant rl --rpm 1000 >/dev/null
KEY_ID=$(tg_psql "SELECT id FROM api_keys ORDER BY id DESC LIMIT 1")
tg_ctl limit set --tenant rl --key "$KEY_ID" --tpm 2000 >/dev/null ||
	tg_bail "key limit set failed"
advance 180
# Without max_tokens the worst case is default_output_cap (4096) tokens,
# more than the whole limit: ask for little.
assert_true "tpm limit reaches the running gateway" \
	wait_status 200 zhipu-chat 100
assert_eq "tpm: x-ratelimit-limit-tokens" 2000 \
	"$(tg_header x-ratelimit-limit-tokens)"
advance 180
chat openai-chat 1000
assert_eq "tpm: 1285 tokens served" 200 "$TG_STATUS"
chat openai-chat 1000
assert_eq "tpm: a second worst case of 1000+ refused" 429 "$TG_STATUS"
assert_eq "tpm: type" tokens "$(jq -r .error.type "$TG_BODY")"
tg_check_row "tpm: refusal recorded" "$TG_RID" "refusal" "rate_limit:tokens"
chat zhipu-chat 100
assert_eq "tpm: a small request still fits" 200 "$TG_STATUS"
chat openai-chat 5000
assert_eq "tpm: larger than the limit: refused" 429 "$TG_STATUS"
assert_eq "tpm: larger than the limit: no Retry-After" "" \
	"$(tg_header Retry-After)"
assert_match "tpm: larger than the limit: says so" "Request too large" \
	"$(jq -r .error.message "$TG_BODY")"
# A max_tokens that is not a whole count is not read as some other cap: a
# provider could round it either way. It is refused before any limit.
chat zhipu-chat 100.5
assert_eq "tpm: max_tokens 100.5 refused as invalid" 400 "$TG_STATUS"
assert_eq "tpm: max_tokens 100.5: the member named" max_tokens \
	"$(jq -r .error.param "$TG_BODY")"
# No cap at all: the configured one (4096) counts, more than the limit.
chat zhipu-chat
assert_eq "tpm: no max_tokens: the default cap counted: refused" 429 \
	"$TG_STATUS"
assert_match "tpm: no max_tokens: the default cap counted" \
	"may use 4[0-9]{3} tokens" "$(jq -r .error.message "$TG_BODY")"
advance 180
chat openai-chat 1000
assert_eq "tpm: served once the window slid" 200 "$TG_STATUS"

# Concurrent requests.
tg_ctl limit clear --tenant rl --key "$KEY_ID" >/dev/null
tg_ctl limit set --tenant rl --concurrency 2 >/dev/null
advance 180
assert_true "concurrency limit reaches the running gateway" \
	wait_status 200 zhipu-chat
tg_mock_config '{"latency_ms":1500}'
pids=()
for i in 1 2 3 4 5; do
	curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $KEY" \
		--data-binary '{"model":"zhipu-chat","messages":[]}' \
		"$TG_URL/v1/chat/completions" >"$TG_TMP/conc.$i" &
	pids+=($!)
done
wait "${pids[@]}"
tg_mock_config '{"latency_ms":0}'
assert_eq "concurrency: 2 of 5 parallel requests served" 2 \
	"$(cat "$TG_TMP"/conc.* | grep -c '^200$')"
assert_eq "concurrency: 3 refused" 3 "$(cat "$TG_TMP"/conc.* | grep -c '^429$')"
chat zhipu-chat
assert_eq "concurrency: served when the others are done" 200 "$TG_STATUS"
q="SELECT count(*) FROM usage_records WHERE refusal = 'rate_limit:concurrency'"
tg_wait_until -i 0.2 10 'n=$(tg_psql "$q"); [ "$n" = 3 ]'
assert_eq "concurrency refusals in the ledger" 3 "$n"

# Clearing the limits takes the headers away.
tg_ctl limit clear --tenant rl >/dev/null
assert_true "no limits again" wait_status 200 zhipu-chat
tg_wait_until -i 0.2 10 \
	'chat zhipu-chat; [ -z "$(tg_header x-ratelimit-limit-requests)" ]'
assert_eq "cleared: headers gone" "" "$(tg_header x-ratelimit-limit-tokens)"

tg_done
