# sdk_lib.sh - what it_sdk.sh and it_sdk_frameworks.sh share: the check
# that the pinned clients are installed, running a driver (tests/sdk/*.mjs,
# one JSON argument in, one JSON line out) and comparing what it parsed,
# the ledger check, the fixtures' texts, and the setup: PostgreSQL, the
# mock, a gateway with the Anthropic and Azure providers and routes across
# formats, and the keys (KEY, LIMITED, BADKEY). Sourced after the test's
# header comment.

SDK_DIR=$(cd "$(dirname "$0")" && pwd)/sdk

if [ "${TG_SKIP_SDK:-0}" = 1 ]; then
	echo "# it_sdk: skipped (TG_SKIP_SDK=1)"
	exit 77
fi

. "$(dirname "$0")/lib.sh"

# The SDKs must be installed, at the versions package.json pins.
tg_npm_pinned "$SDK_DIR" TG_SKIP_SDK

# ---------------------------------------------------------------------------
# Running the drivers.

SDK_N=0

# sdk DESC DRIVER JSON_ARGS : runs tests/sdk/DRIVER.mjs with the arguments
# and keeps its one JSON line in $SDK_OUT. A driver that did not print one
# JSON object is a failed check; so is an SDK exception unless the caller
# expects one (SDK_EXPECT_ERROR=1).
sdk() {
	local desc=$SDK_LABEL$1 driver=$2 args=$3 rc
	SDK_N=$((SDK_N + 1))
	SDK_OUT=$TG_TMP/sdk.$SDK_N.json
	node "$SDK_DIR/$driver.mjs" "$args" >"$SDK_OUT" 2>"$TG_TMP/sdk.$SDK_N.err"
	rc=$?
	if [ "$rc" != 0 ] || [ "$(wc -l <"$SDK_OUT")" != 1 ] ||
		! jq -e 'type == "object"' "$SDK_OUT" >/dev/null 2>&1; then
		tg_not_ok "$desc: the SDK call ran" "node exited $rc; args: $args" \
			"stdout: $(head -c 600 "$SDK_OUT")" \
			"stderr: $(head -c 600 "$TG_TMP/sdk.$SDK_N.err")"
		echo '{}' >"$SDK_OUT"
		return 1
	fi
	if [ "${SDK_EXPECT_ERROR:-0}" != 1 ] &&
		[ "$(jq -r .ok "$SDK_OUT")" != true ]; then
		tg_not_ok "$desc: the SDK call succeeded" \
			"$(jq -c .error "$SDK_OUT" | cut -c 1-600)"
		return 1
	fi
	if [ "${SDK_EXPECT_ERROR:-0}" = 1 ]; then
		tg_ok "$desc: the SDK call ran"
	else
		tg_ok "$desc: the SDK call succeeded"
	fi
}

# sdk_eq DESC JQ_FILTER EXPECTED : compares `jq -c FILTER` of the last
# driver output with EXPECTED.
sdk_eq() {
	assert_eq "$SDK_LABEL$1" "$3" "$(jq -c "$2" "$SDK_OUT" 2>&1)"
}

# The JSON argument of a driver: the op, the gateway, the key and more
# "name=json value" pairs.
sdk_args() {
	local op=$1 base=$2 key=$3 kv
	local -a a=(--arg op "$op" --arg base "$base" --arg key "$key")
	local f='{op: $op, base: $base, key: $key}'
	shift 3
	for kv in "$@"; do
		a+=(--argjson "${kv%%=*}" "${kv#*=}")
		f="$f + {${kv%%=*}: \$${kv%%=*}}"
	done
	jq -n -c "${a[@]}" "$f"
}

OPENAI_BASE=			# set once the gateway runs
ANTHROPIC_BASE=

# The packages the drivers load (package.json's names or aliases) and the
# label of the checks run with them.
OAI_PKG=openai
ANT_PKG=@anthropic-ai/sdk
SDK_LABEL=

oai() {			# oai DESC OP KEY [name=json...]
	local desc=$1 op=$2 key=$3
	shift 3
	sdk "$desc" openai "$(sdk_args "$op" "$OPENAI_BASE" "$key" \
		pkg="\"$OAI_PKG\"" "$@")"
}

ant() {			# ant DESC OP KEY [name=json...]
	local desc=$1 op=$2 key=$3
	shift 3
	sdk "$desc" anthropic "$(sdk_args "$op" "$ANTHROPIC_BASE" "$key" \
		pkg="\"$ANT_PKG\"" "$@")"
}

# ---------------------------------------------------------------------------
# The ledger.

LEDGER_COLS="endpoint, provider, upstream_model, requested_model, streamed,
	status, prompt_tokens, completion_tokens, cached_tokens,
	cache_write_tokens, usage_source"

# A refusal's record: no provider served it, nothing is metered.
REFUSAL_COLS="endpoint, streamed, status, usage_source,
	prompt_tokens + completion_tokens"

# ledger DESC EXPECTED [COLUMNS] : the request id the SDK saw has exactly one
# usage record, whose COLUMNS (default LEDGER_COLS) are EXPECTED ('|'
# separated).
ledger() {
	local desc=$SDK_LABEL$1 want=$2 cols=${3:-$LEDGER_COLS} rid i n=0
	rid=$(jq -r '.request_id // empty' "$SDK_OUT")
	if [ -z "$rid" ]; then
		tg_not_ok "$desc: usage record" "the SDK saw no x-request-id"
		return
	fi
	tg_wait_until 10 'n=$(tg_record_count "$rid" 2>/dev/null)
		[ "${n:-0}" -ge 1 ]'
	assert_eq "$desc: one usage record" 1 "$n"
	[ "$n" = 1 ] || return
	assert_eq "$desc: usage record" "$want" "$(tg_row "$rid" "$cols")"
}

# ---------------------------------------------------------------------------
# What the fixtures say.

# The data lines of an SSE fixture as a JSON array ([DONE] left out).
sse_events() {
	sed -n 's/^data: //p' "$1" | grep -v '^\[DONE\]$' | jq -s -c .
}

# The text of an OpenAI chat stream fixture.
openai_stream_text() {
	sse_events "$1" | jq -r '[.[].choices[]?.delta.content // empty] | join("")'
}

fx() {			# fx FILE FILTER : jq -r on a provider fixture
	jq -r "$2" "$FIXTURES/$1"
}

OPENAI_TEXT=$(fx openai-chat.json '.choices[0].message.content')
OPENAI_STREAM_TEXT=$(openai_stream_text "$FIXTURES/openai-chat-stream.sse")
AZURE_TEXT=$(fx azure-openai-chat.json '.choices[0].message.content')
AZURE_STREAM_TEXT=$(openai_stream_text "$FIXTURES/azure-openai-chat-stream.sse")
ANTHROPIC_TEXT=$(fx anthropic-messages.json '[.content[] | select(.type == "text") | .text] | join("")')
ANTHROPIC_STREAM_TEXT=$(sse_events "$FIXTURES/anthropic-messages-stream.sse" |
	jq -r '[.[] | select(.type == "content_block_delta") | .delta.text // empty] | join("")')
RESPONSES_TEXT=$(fx openai-responses.json '[.output[] | select(.type == "message") | .content[] | select(.type == "output_text") | .text] | join("")')
RESPONSES_STREAM_TEXT=$(sse_events "$FIXTURES/openai-responses-stream.sse" |
	jq -r '[.[] | select(.type == "response.output_text.delta") | .delta] | join("")')
EMBEDDINGS=$(fx openai-embeddings.json '[.data[].embedding]' | jq -c .)
# The same as float32, what a client asking for base64 decodes.
EMBEDDINGS_F32=$(node -e 'console.log(JSON.stringify(JSON.parse(process.argv[1]).map((v) => v.map(Math.fround))))' "$EMBEDDINGS")

for v in OPENAI_TEXT OPENAI_STREAM_TEXT AZURE_TEXT AZURE_STREAM_TEXT \
	ANTHROPIC_TEXT ANTHROPIC_STREAM_TEXT RESPONSES_TEXT RESPONSES_STREAM_TEXT; do
	[ -n "${!v}" ] || tg_bail "no text found in the fixture for $v"
done

# ---------------------------------------------------------------------------
# Setup: the Anthropic and Azure providers, and routes across formats.

tg_start_pg
tg_start_mock

# The mock refuses Anthropic and Azure requests without their key header.
export TG_SDK_UPSTREAM_KEY=sk-upstream-test-key
provider_limits='api_key_env = TG_SDK_UPSTREAM_KEY
connect_timeout = 5000
timeout = 30000
idle_timeout = 10000'
TG_EXTRA_SECTIONS="[provider anthropic]
type = anthropic
base_url = $TG_MOCK_URL/anthropic/v1
$provider_limits

[provider azure]
type = azure
base_url = $TG_MOCK_URL/azure
api_version = 2024-10-21
$provider_limits

[route openai-responses]
target = openai:openai-responses

[route anthropic-messages]
target = anthropic:anthropic-messages

[route azure-openai-chat]
target = azure:azure-openai-chat

[route claude-via-openai]
target = anthropic:anthropic-messages

[route claude-tools-via-openai]
target = anthropic:anthropic-tools

[route gpt-via-anthropic]
target = openai:openai-chat

[route gpt-tools-via-anthropic]
target = openai:openai-tools

[route openai-tools]
target = openai:openai-tools

[route anthropic-tools]
target = anthropic:anthropic-tools

[route claude-error-429-via-openai]
target = anthropic:anthropic-error-429

[route gpt-error-429-via-anthropic]
target = openai:openai-error-429"
tg_start_gateway

OPENAI_BASE=$TG_URL/v1
ANTHROPIC_BASE=$TG_URL

KEY=$(tg_issue_key sdk) || tg_bail "cannot issue a key"
LIMITED=$(tg_issue_key sdk --models 'openai-chat*,claude-*') ||
	tg_bail "cannot issue a key limited to some models"
# A key of the right shape that the gateway never issued.
if [ "${KEY: -1}" = A ]; then BADKEY=${KEY%?}B; else BADKEY=${KEY%?}A; fi
UNAUTH=$(tg_unauth_count)

