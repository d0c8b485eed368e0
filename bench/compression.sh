#!/bin/bash
# bench/compression.sh - what asking providers for compressed answers costs
# and saves: for each answer, its size on the wire plain and gzip'd, and
# the gateway's CPU time per request and throughput when the mock upstream
# sends it plain or compressed (the gateway decodes it before metering and
# relaying). The answers: the chat, Responses and Anthropic fixtures, and a
# realistic embeddings answer (16 vectors of 1536 floats, generated).
#
# Runs on the test harness (tests/lib.sh: private PostgreSQL, mock, gateway
# on free ports) from a build directory: BUILD (default build/). wrk drives
# each case for SECS seconds (5) over CONNECTIONS connections (8). Figures
# are printed, never judged.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SECS=${SECS:-5}
CONNECTIONS=${CONNECTIONS:-8}
command -v wrk >/dev/null || { echo "compression: wrk is needed" >&2; exit 2; }

top_builddir=$BUILD
TG_NAME=compression
TG_LOG_LEVEL=warn
# shellcheck source=../tests/lib.sh
. "$ROOT/tests/lib.sh" >/dev/null

# A generated embeddings answer in OpenAI's shape: 16 vectors of 1536
# floats with OpenAI's printing (up to 10 significant digits).
FX=$TG_TMP/fx
mkdir -p "$FX"
awk 'BEGIN { srand(7); printf "{\n  \"object\": \"list\",\n  \"data\": [\n";
	for (v = 0; v < 16; v++) {
		printf "    {\n      \"object\": \"embedding\",\n      \"index\": %d,\n      \"embedding\": [\n", v;
		for (i = 0; i < 1536; i++)
			printf "        %.10g%s\n", (rand() - 0.5) / 8, i < 1535 ? "," : "";
		printf "      ]\n    }%s\n", v < 15 ? "," : "";
	}
	printf "  ],\n  \"model\": \"text-embedding-3-small\",\n  \"usage\": {\n    \"prompt_tokens\": 160,\n    \"total_tokens\": 160\n  }\n}\n" }' \
	>"$FX/embeddings-1536x16.json"

TG_MOCK_ARGS="--fixtures $FX"
tg_start_pg >/dev/null
tg_start_mock
tg_mock_providers
TG_EXTRA_SECTIONS="$TG_MOCK_PROVIDERS

[route emb]
target = openai:embeddings-1536x16

[route openai-responses]
target = openai:openai-responses

[route claude]
target = anthropic:anthropic-messages"
tg_start_gateway
KEY=$(tg_issue_key bench) || tg_bail "cannot issue a key"

# The gateway's CPU time so far, in clock ticks.
gw_ticks() {
	awk '{ print $14 + $15 }' "/proc/$TG_GW_PID/stat"
}

# wire_bytes PATH BODY ENCODING : bytes of the mock's answer on the wire.
wire_bytes() {
	curl -s -o /dev/null -w '%{size_download}' -H "Accept-Encoding: $3" \
		-H 'Content-Type: application/json' -H 'x-api-key: x' \
		-H 'anthropic-version: 2023-06-01' --data-binary "$2" \
		"$TG_MOCK_URL$1"
}

# run MODE PATH BODY : SECS of wrk through the gateway, the mock in gzip
# mode MODE; prints requests/s and gateway CPU microseconds per request.
run() {
	local mode=$1 path=$2 body=$3 t0 t1 out n hz
	tg_mock_config "{\"gzip\":\"$mode\"}"
	hz=$(getconf CLK_TCK)
	t0=$(gw_ticks)
	out=$(BENCH_ACTIVE_MS=$((SECS * 1000)) BENCH_BODY=$body BENCH_KEY=$KEY \
		wrk -t1 -c"$CONNECTIONS" -d"$((SECS + 1))s" -s "$ROOT/bench/post.lua" \
		"$TG_URL$path" 2>&1)
	t1=$(gw_ticks)
	n=$(sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p' <<<"$out")
	[ "${n:-0}" -gt 0 ] || { echo "$out" >&2; tg_bail "no result from wrk"; }
	grep -q '^BENCH .* status=0 ' <<<"$out" ||
		{ echo "$out" >&2; tg_bail "answers that are not 200 through the gateway ($path)"; }
	printf '%8d %9d' "$((n / SECS))" \
		"$(( (t1 - t0) * 1000000 / hz / n ))"
}

printf '\n%-22s %9s %9s %6s | %8s %9s | %8s %9s\n' answer plain gzip ratio \
	"req/s" "cpu_us" "req/s" "cpu_us"
printf '%-22s %9s %9s %6s | %18s | %18s\n' "" bytes bytes "" \
	"plain upstream" "gzip upstream"
for c in "openai-chat|/v1/chat/completions|/openai/v1/chat/completions" \
	"openai-responses|/v1/responses|/openai/v1/responses" \
	"anthropic-messages|/v1/messages|/anthropic/v1/messages" \
	"embeddings-1536x16|/v1/embeddings|/openai/v1/embeddings"; do
	IFS='|' read -r fx path upath <<<"$c"
	case $fx in
	openai-chat) body='{"model":"openai-chat","messages":[{"role":"user","content":"Hello"}]}' ;;
	openai-responses) body='{"model":"openai-responses","input":"Hello"}' ;;
	anthropic-messages) body='{"model":"claude","max_tokens":256,"messages":[{"role":"user","content":"Hello"}]}' ;;
	*) body='{"model":"emb","input":["Hello"]}' ;;
	esac
	ubody=${body/\"claude\"/\"anthropic-messages\"}
	ubody=${ubody/\"emb\"/\"embeddings-1536x16\"}
	tg_mock_config '{"gzip":"asked"}'
	plain=$(wire_bytes "$upath" "$ubody" identity)
	gz=$(wire_bytes "$upath" "$ubody" gzip)
	printf '%-22s %9d %9d %5d%% | %s | %s\n' "$fx" "$plain" "$gz" \
		"$((gz * 100 / plain))" "$(run off "$path" "$body")" \
		"$(run asked "$path" "$body")"
done
printf '\ncpu_us: tollgated CPU time per request (user + system), all threads.\n'
tg_done >/dev/null
