#!/bin/bash
# it_upstream.sh - the way out: provider credentials, the parent proxy,
# upstream failures before any byte reached the client (502, 504), and
# provider errors passed through.

. "$(dirname "$0")/lib.sh"

tg_start_pg
tg_start_mock
DEAD_PORT=$(tg_free_port) || tg_bail "no free port"
export TG_UPSTREAM_SECRET="sk-upstream-$$"
TG_EXTRA_SECTIONS="[provider viaproxy]
type = openai
flavor = openai
base_url = http://provider.invalid/openai/v1
proxy = $TG_MOCK_URL
api_key_env = TG_UPSTREAM_SECRET

[provider dead]
type = openai
base_url = http://127.0.0.1:$DEAD_PORT/v1
connect_timeout = 2000

[provider slow]
type = openai
base_url = $TG_MOCK_URL/openai/v1
timeout = 1000

[route proxied]
target = viaproxy:openai-chat

[route refused]
target = dead:openai-chat

[route slow]
target = slow:openai-chat

[route *]
target = viaproxy:*"
tg_start_gateway
KEY=$(tg_issue_key up)
tg_ctl price set --provider viaproxy --model openai-chat --input 2.5 \
	--cached 1.25 --output 10 --currency USD --from 2020-01-01 >/dev/null ||
	tg_bail "price set failed"

# Through the parent proxy: the provider's host does not resolve, so only
# the proxy can have answered; it received the provider's credential, never
# the tollgate key.
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body proxied)"
assert_eq "via proxy: status" 200 "$TG_STATUS"
assert_file_eq "via proxy: body" "$FIXTURES/openai-chat.json" "$TG_BODY"
last=$(tg_mock_last_request)
assert_eq "via proxy: the provider's path" /openai/v1/chat/completions \
	"$(jq -r '.path' <<<"$last")"
assert_eq "via proxy: the provider's host" provider.invalid \
	"$(jq -r '.headers.host' <<<"$last")"
assert_eq "via proxy: provider credential sent" "Bearer $TG_UPSTREAM_SECRET" \
	"$(jq -r '.headers.authorization' <<<"$last")"
assert_match "via proxy: the gateway's user agent" '^tollgate/[0-9]' \
	"$(jq -r '.headers["user-agent"]' <<<"$last")"
assert_eq "via proxy: upstream model" openai-chat \
	"$(jq -r '.body | fromjson | .model' <<<"$last")"
tg_check_row "via proxy: metered" "$TG_RID" \
	"provider, upstream_model, requested_model, prompt_tokens, completion_tokens" \
	"viaproxy|openai-chat|proxied|1200|85"
# /metrics: the request by tenant, model and status, its tokens, its cost
# once the ledger priced it (176 input at 2.5, 1024 cached at 1.25, 85
# output at 10 per million: 2,570,000 nano-USD), and its latency.
# Spend is counted just after the ledger's commit: poll briefly.
billed='kind="billed"} 2570000'
tg_wait_until 5 'metrics=$(curl -sS "$TG_ADMIN_URL/metrics")
	[[ $metrics == *"$billed"* ]]'
assert_match "metrics: requests by tenant, model, status" \
	'tollgate_requests_total\{tenant="up",model="proxied",status="200"\} 1' \
	"$metrics"
assert_match "metrics: prompt tokens" \
	'tollgate_tokens_total\{tenant="up",model="proxied",status="200",class="prompt"\} 1200' \
	"$metrics"
assert_match "metrics: cached tokens" \
	'tollgate_tokens_total\{tenant="up",model="proxied",status="200",class="cached"\} 1024' \
	"$metrics"
assert_match "metrics: spend, billed" \
	'tollgate_spend_nanos_total\{tenant="up",currency="USD",kind="billed"\} 2570000' \
	"$metrics"
assert_match "metrics: latency histogram of the provider" \
	'tollgate_request_duration_ms_count\{provider="viaproxy"\} 1' "$metrics"
assert_eq "metrics: the record's cost matches" 2570000 \
	"$(tg_row "$TG_RID" billed_nanos)"
if grep -q "$TG_UPSTREAM_SECRET" "$TG_TMP/gateway.log"; then
	tg_not_ok "provider credential never logged"
else
	tg_ok "provider credential never logged"
fi

# [route *] with target model "*": an unrouted name reaches the provider
# unchanged (the mock has no such fixture and says so with a 404, which is
# passed through).
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body no-such-model-x)"
assert_eq "pass-through: provider's 404 passed through" 404 "$TG_STATUS"
assert_eq "pass-through: upstream got the requested name" no-such-model-x \
	"$(tg_mock_last_request | jq -r '.body | fromjson | .model')"
tg_check_row "pass-through: record names both" "$TG_RID" \
	"requested_model, upstream_model, provider" \
	"no-such-model-x|no-such-model-x|viaproxy"

# Connection refused: 502 upstream_error, nothing reached the provider,
# metered as zero.
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body refused)"
assert_eq "connection refused: status" 502 "$TG_STATUS"
assert_eq "connection refused: code" upstream_error \
	"$(jq -r .error.code "$TG_BODY")"
tg_check_row "connection refused: record" "$TG_RID" \
	"status, usage_source, prompt_tokens + completion_tokens, error IS NOT NULL" \
	"502|none|0|t"

# The provider takes longer than the provider's timeout: 504.
tg_mock_config '{"latency_ms":3000}'
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body slow)"
assert_eq "upstream timeout: status" 504 "$TG_STATUS"
assert_eq "upstream timeout: code" upstream_timeout \
	"$(jq -r .error.code "$TG_BODY")"
tg_check_row "upstream timeout: record" "$TG_RID" "status" "504"
tg_mock_config '{"latency_ms":0}'

# A provider's own 500 and a dropped connection before any byte.
tg_mock_config '{"fail":"500","fail_times":1}'
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body openai-chat)"
assert_eq "provider 500 passed through: status" 500 "$TG_STATUS"
assert_eq "provider 500 passed through: body" "mock: injected failure" \
	"$(jq -r .error.message "$TG_BODY")"
tg_check_row "provider 500: metered as zero" "$TG_RID" \
	"status, usage_source, prompt_tokens + completion_tokens" "500|none|0"
# libcurl retries once, on a fresh connection, a request whose reused
# connection closed before any response byte: close both.
tg_mock_config '{"fail":"close","fail_times":2}'
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body openai-chat)"
assert_eq "provider closed without answering: 502" 502 "$TG_STATUS"
tg_check_row "provider closed: metered as zero" "$TG_RID" \
	"status, usage_source" "502|none"

# Still serving (the second injected close may not have been used).
tg_mock_config '{"fail":"none"}'
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body openai-chat)"
assert_eq "serving after the failures" 200 "$TG_STATUS"

# The provider restarts: the connections the gateway keeps open to it for
# the next calls are closed under it. The gateway lets them go without
# spinning on them (its CPU time over a second stays far below the 100
# ticks of a busy thread), and the next call opens a new connection.
gw_ticks() {
	awk '{ print $14 + $15 }' "/proc/$TG_GW_PID/stat"
}
port=$TG_MOCK_PORT
kill -KILL "$TG_MOCK_PID"
wait "$TG_MOCK_PID" 2>/dev/null
t0=$(gw_ticks)
sleep 1
t1=$(gw_ticks)
assert_true "provider gone: the gateway idles ($((t1 - t0)) ticks)" \
	[ $((t1 - t0)) -le 30 ]
tg_start_mock "$port"
assert_eq "provider back on its port" "$port" "$TG_MOCK_PORT"
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body openai-chat)"
assert_eq "provider back: served on a new connection" 200 "$TG_STATUS"

# A provider without a proxy of its own goes through the environment's
# (http_proxy for an http base URL), except for the hosts no_proxy names.
# Neither host resolves: only the proxy can answer.
TG_EXTRA_SECTIONS="[provider envproxied]
type = openai
base_url = http://env-provider.invalid/openai/v1

[provider excluded]
type = openai
base_url = http://excluded.invalid/openai/v1

[route viaenv]
target = envproxied:openai-chat

[route noproxy]
target = excluded:openai-chat"
# (127.0.0.1 for the test's own calls to the gateway while it starts.)
http_proxy=$TG_MOCK_URL no_proxy=excluded.invalid,127.0.0.1 \
	tg_start_gateway -n envproxy
TG_URL=$TG_NAMED_URL
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body viaenv)"
assert_eq "http_proxy: status" 200 "$TG_STATUS"
assert_file_eq "http_proxy: body" "$FIXTURES/openai-chat.json" "$TG_BODY"
assert_eq "http_proxy: the provider's host, through the proxy" \
	env-provider.invalid "$(tg_mock_last_request | jq -r '.headers.host')"
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body viaenv)"
assert_eq "http_proxy: again, on the kept connection" 200 "$TG_STATUS"
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body noproxy)"
assert_eq "no_proxy: the host is tried directly, and does not resolve" \
	502 "$TG_STATUS"

tg_done
