#!/bin/bash
# it_sdk_frameworks.sh - tollgated driven by the frameworks applications are
# built on, as they use it: the Vercel AI SDK (ai with @ai-sdk/openai,
# @ai-sdk/openai-compatible and @ai-sdk/anthropic), LangChain JS
# (@langchain/openai, @langchain/anthropic) and Zhipu's Node SDK, at the
# versions tests/sdk/package.json pins. Checks what each parsed against the
# fixtures, and that each call made one request whose usage record has the
# provider's exact counts.
#
# Installed and skipped as it_sdk.sh says (tests/sdk_lib.sh).

. "$(dirname "$0")/sdk_lib.sh"

EXTRA=$FIXTURES/../extra

# vercel DESC PROVIDER OP [name=json...] : the AI SDK through one of its
# providers, at the base URL that provider takes.
vercel() {
	local desc=$1 provider=$2 op=$3 base
	shift 3
	case $provider in
	anthropic) base=$TG_URL/v1 ;;
	*) base=$OPENAI_BASE ;;
	esac
	sdk "$desc" vercel "$(sdk_args "$op" "$base" "${VKEY:-$KEY}" \
		provider="\"$provider\"" "$@")"
}

# one_request DESC : the call made exactly one HTTP request.
one_request() {
	sdk_eq "$1: one request" .requests 1
}

str() { jq -c -n --arg t "$1" '$t'; }

# ---------------------------------------------------------------------------
# Vercel AI SDK.

# vtext DESC PROVIDER MODEL STREAM TEXT USAGE RECORD : generateText (or
# streamText when STREAM is "stream") through PROVIDER: the text the
# fixture holds, the usage the SDK reports ([inputTokens, outputTokens]),
# one request, and its record (LEDGER_COLS after the endpoint's).
vtext() {
	local desc=$1 provider=$2 model=$3 stream=$4 text=$5 usage=$6 row=$7
	local -a more=()
	[ "$stream" = stream ] && more=(stream=true)
	vercel "$desc" "$provider" text model="\"$model\"" "${more[@]}"
	sdk_eq "$desc: text" .text "$(str "$text")"
	sdk_eq "$desc: usage" '.usage | [.inputTokens, .outputTokens]' "$usage"
	one_request "$desc"
	ledger "$desc" "$row"
}

vtext "vercel openai (Responses)" openai openai-responses - "$RESPONSES_TEXT" \
	'[1320,310]' "responses|openai|openai-responses|openai-responses|f|200|1320|310|1024|0|reported"
vtext "vercel openai (Responses) stream" openai openai-responses stream \
	"$RESPONSES_STREAM_TEXT" '[37,11]' \
	"responses|openai|openai-responses|openai-responses|t|200|37|11|0|0|reported"
vtext "vercel openai chat" openai-chat openai-chat - "$OPENAI_TEXT" '[1200,85]' \
	"chat/completions|openai|openai-chat|openai-chat|f|200|1200|85|1024|0|reported"
sdk_eq "vercel openai chat: finish" .finish_reason '"stop"'
vtext "vercel openai chat stream" openai-chat openai-chat stream \
	"$OPENAI_STREAM_TEXT" '[25,9]' \
	"chat/completions|openai|openai-chat|openai-chat|t|200|25|9|0|0|reported"


for u in true false; do
	vercel "vercel openai-compatible stream, includeUsage $u" compatible text \
		model='"openai-chat"' stream=true include_usage=$u
	sdk_eq "vercel openai-compatible stream, includeUsage $u: text" .text \
		"$(str "$OPENAI_STREAM_TEXT")"
	if [ $u = true ]; then want='[25,9]'; else want='[null,null]'; fi
	sdk_eq "vercel openai-compatible stream, includeUsage $u: usage as asked" \
		'.usage | [.inputTokens, .outputTokens]' "$want"
	ledger "vercel openai-compatible stream, includeUsage $u: metered all the same" \
		"chat/completions|openai|openai-chat|openai-chat|t|200|25|9|0|0|reported"
done
vercel "vercel openai-compatible" compatible text model='"deepseek-chat"'
sdk_eq "vercel openai-compatible: text" .text \
	"$(str "$(fx deepseek-chat.json '.choices[0].message.content')")"
ledger "vercel openai-compatible" \
	"chat/completions|deepseek|deepseek-chat|deepseek-chat|f|200|1100|50|1024|0|reported"

# Tools: the calls the provider made, as the fixtures hold them.
OPENAI_TOOL_CALLS=$(jq -c '[.choices[0].message.tool_calls[] |
	{id, name: .function.name, input: (.function.arguments | fromjson)}]' \
	"$EXTRA/openai-tools.json")
ANTHROPIC_TOOL_CALLS=$(jq -c '[.content[] | select(.type == "tool_use") |
	{id, name, input}]' "$EXTRA/anthropic-tools.json")
vercel "vercel openai chat, tools" openai-chat text model='"openai-tools"' tools=true
sdk_eq "vercel openai chat, tools: the tool calls" .tool_calls "$OPENAI_TOOL_CALLS"
sdk_eq "vercel openai chat, tools: finish" .finish_reason '"tool-calls"'
ledger "vercel openai chat, tools" \
	"chat/completions|openai|openai-tools|openai-tools|f|200|$(jq -r '.usage | "\(.prompt_tokens)|\(.completion_tokens)|\(.prompt_tokens_details.cached_tokens // 0)"' "$EXTRA/openai-tools.json")|0|reported"
vercel "vercel anthropic, tools" anthropic text model='"anthropic-tools"' tools=true
sdk_eq "vercel anthropic, tools: the tool calls" .tool_calls "$ANTHROPIC_TOOL_CALLS"
sdk_eq "vercel anthropic, tools: finish" .finish_reason '"tool-calls"'
ledger "vercel anthropic, tools" \
	"messages|anthropic|anthropic-tools|anthropic-tools|f|200|$(jq -r '.usage | "\(.input_tokens + (.cache_creation_input_tokens // 0) + (.cache_read_input_tokens // 0))|\(.output_tokens)|\(.cache_read_input_tokens // 0)|\(.cache_creation_input_tokens // 0)"' "$EXTRA/anthropic-tools.json")|reported"


# Anthropic's provider reports all input, the cache's included.
vtext "vercel anthropic" anthropic anthropic-messages - "$ANTHROPIC_TEXT" \
	'[2098,120]' "messages|anthropic|anthropic-messages|anthropic-messages|f|200|2098|120|2048|0|reported"
sdk_eq "vercel anthropic: finish and cached input" \
	'[.finish_reason, .usage.cachedInputTokens]' '["stop",2048]'
vtext "vercel anthropic stream" anthropic anthropic-messages stream \
	"$ANTHROPIC_STREAM_TEXT" '[1525,42]' \
	"messages|anthropic|anthropic-messages|anthropic-messages|t|200|1525|42|0|1500|reported"

# Across formats.
vtext "vercel anthropic to openai" anthropic gpt-via-anthropic - "$OPENAI_TEXT" \
	'[1200,85]' "messages|openai|openai-chat|gpt-via-anthropic|f|200|1200|85|1024|0|reported"
vtext "vercel anthropic stream to openai" anthropic gpt-via-anthropic stream \
	"$OPENAI_STREAM_TEXT" '[25,9]' \
	"messages|openai|openai-chat|gpt-via-anthropic|t|200|25|9|0|0|reported"
vtext "vercel openai chat to anthropic" openai-chat claude-via-openai - \
	"$ANTHROPIC_TEXT" '[2098,120]' \
	"chat/completions|anthropic|anthropic-messages|claude-via-openai|f|200|2098|120|2048|0|reported"

# Embeddings.
for p in openai compatible; do
	vercel "vercel $p embedMany" "$p" embed model='"openai-embeddings"' \
		values='["The food was delicious.","The waiter was kind."]'
	sdk_eq "vercel $p embedMany: vectors" .embeddings "$EMBEDDINGS"
	sdk_eq "vercel $p embedMany: usage" .usage.tokens 16
	ledger "vercel $p embedMany" \
		"embeddings|openai|openai-embeddings|openai-embeddings|f|200|16|0|0|0|reported"
done

# Errors.
SDK_EXPECT_ERROR=1 vercel "vercel openai chat, unknown model" openai-chat text \
	model='"no-such-model"'
sdk_eq "vercel openai chat, unknown model: APICallError 404 with the gateway's code" \
	'[.ok, .error.class, .error.status, .error.body.error.code]' \
	'[false,"APICallError",404,"model_not_found"]'
ledger "vercel openai chat, unknown model" "chat/completions|f|404|none|0" "$REFUSAL_COLS"
SDK_EXPECT_ERROR=1 VKEY=$BADKEY vercel "vercel anthropic, unknown key" anthropic \
	text model='"anthropic-messages"'
sdk_eq "vercel anthropic, unknown key: 401 in Anthropic's shape" \
	'[.ok, .error.status, .error.body.error.type]' \
	'[false,401,"authentication_error"]'

# ---------------------------------------------------------------------------
# LangChain JS.

# lc DESC OP [name=json...] : LangChain, with the base URL its class takes.
lc() {
	local desc=$1 op=$2 base=$OPENAI_BASE
	shift 2
	case " $* " in *'class="anthropic"'*) base=$TG_URL ;; esac
	sdk "$desc" langchain "$(sdk_args "$op" "$base" "$KEY" "$@")"
}

lc "langchain ChatOpenAI" chat class='"openai"' model='"openai-chat"'
sdk_eq "langchain ChatOpenAI: text" .text "$(str "$OPENAI_TEXT")"
sdk_eq "langchain ChatOpenAI: usage_metadata" \
	'.usage | [.input_tokens, .output_tokens, .total_tokens]' '[1200,85,1285]'
one_request "langchain ChatOpenAI"
ledger "langchain ChatOpenAI" \
	"chat/completions|openai|openai-chat|openai-chat|f|200|1200|85|1024|0|reported"
for u in true false; do
	lc "langchain ChatOpenAI stream, streamUsage $u" chat class='"openai"' \
		model='"openai-chat"' stream=true stream_usage=$u
	sdk_eq "langchain ChatOpenAI stream, streamUsage $u: text" .text \
		"$(str "$OPENAI_STREAM_TEXT")"
	if [ $u = true ]; then want='[25,9]'; else want='[null,null]'; fi
	sdk_eq "langchain ChatOpenAI stream, streamUsage $u: usage as asked" \
		'[.usage.input_tokens, .usage.output_tokens]' "$want"
	ledger "langchain ChatOpenAI stream, streamUsage $u: metered all the same" \
		"chat/completions|openai|openai-chat|openai-chat|t|200|25|9|0|0|reported"
done
lc "langchain ChatOpenAI, Responses API" chat class='"openai"' \
	model='"openai-responses"' responses=true
sdk_eq "langchain ChatOpenAI, Responses API: text" .text "$(str "$RESPONSES_TEXT")"
sdk_eq "langchain ChatOpenAI, Responses API: usage_metadata" \
	'.usage | [.input_tokens, .output_tokens]' '[1320,310]'
ledger "langchain ChatOpenAI, Responses API" \
	"responses|openai|openai-responses|openai-responses|f|200|1320|310|1024|0|reported"
lc "langchain ChatOpenAI, tools" chat class='"openai"' model='"openai-tools"' \
	tools=true
sdk_eq "langchain ChatOpenAI, tools: the tool calls" .tool_calls "$OPENAI_TOOL_CALLS"

lc "langchain ChatAnthropic" chat class='"anthropic"' model='"anthropic-messages"'
sdk_eq "langchain ChatAnthropic: text" .text "$(str "$ANTHROPIC_TEXT")"
sdk_eq "langchain ChatAnthropic: usage_metadata (input with the cache)" \
	'.usage | [.input_tokens, .output_tokens]' '[2098,120]'
ledger "langchain ChatAnthropic" \
	"messages|anthropic|anthropic-messages|anthropic-messages|f|200|2098|120|2048|0|reported"
lc "langchain ChatAnthropic stream" chat class='"anthropic"' \
	model='"anthropic-messages"' stream=true
sdk_eq "langchain ChatAnthropic stream: text" .text "$(str "$ANTHROPIC_STREAM_TEXT")"
# LangChain adds message_start's output_tokens (1) to message_delta's,
# which Anthropic's API makes cumulative (42): its 43 is its own sum of
# the events the provider sent, relayed unchanged; the record has 42.
sdk_eq "langchain ChatAnthropic stream: usage_metadata" \
	'.usage | [.input_tokens, .output_tokens]' '[1525,43]'
ledger "langchain ChatAnthropic stream" \
	"messages|anthropic|anthropic-messages|anthropic-messages|t|200|1525|42|0|1500|reported"
lc "langchain ChatAnthropic, tools" chat class='"anthropic"' \
	model='"anthropic-tools"' tools=true
sdk_eq "langchain ChatAnthropic, tools: the tool calls" .tool_calls \
	"$ANTHROPIC_TOOL_CALLS"

# ChatAnthropic reads a stream's input tokens from message_start alone: on
# a route to an OpenAI-style provider, which counts only at the end, that
# is the gateway's estimate of the prompt (its count_tokens answer); the
# record has the provider's exact count.
tg_http POST /v1/messages/count_tokens "" \
	'{"model":"gpt-via-anthropic","messages":[{"role":"user","content":"Hello, who are you?"}]}' \
	-H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01'
estimate=$(jq -r .input_tokens "$TG_BODY")
lc "langchain ChatAnthropic stream to openai" chat class='"anthropic"' \
	model='"gpt-via-anthropic"' stream=true
sdk_eq "langchain ChatAnthropic stream to openai: text" .text \
	"$(str "$OPENAI_STREAM_TEXT")"
sdk_eq "langchain ChatAnthropic stream to openai: input tokens, the gateway's estimate" \
	'.usage.input_tokens | select(. > 0)' "$estimate"
sdk_eq "langchain ChatAnthropic stream to openai: output tokens" \
	.usage.output_tokens 9
ledger "langchain ChatAnthropic stream to openai: the provider's counts" \
	"messages|openai|openai-chat|gpt-via-anthropic|t|200|25|9|0|0|reported"

lc "langchain OpenAIEmbeddings" embed model='"openai-embeddings"' \
	values='["The food was delicious.","The waiter was kind."]'
assert_eq "langchain OpenAIEmbeddings: its default, base64, asked" base64 \
	"$(tg_mock_last_request | jq -r '.body | fromjson | .encoding_format')"
sdk_eq "langchain OpenAIEmbeddings: vectors decoded" .embeddings "$EMBEDDINGS_F32"
ledger "langchain OpenAIEmbeddings" \
	"embeddings|openai|openai-embeddings|openai-embeddings|f|200|16|0|0|0|reported"

# ---------------------------------------------------------------------------
# Zhipu's SDK: it signs its own Authorization (a JWT).

ZHIPU_TEXT=$(fx zhipu-chat.json '.choices[0].message.content')
ZHIPU_STREAM_TEXT=$(openai_stream_text "$FIXTURES/zhipu-chat-stream.sse")
for via in jwt header; do
	sdk "zhipu SDK, key via $via" zhipu "$(sdk_args chat "$OPENAI_BASE" \
		"$KEY" model='"zhipu-chat"' via="\"$via\"")"
	sdk_eq "zhipu SDK, key via $via: content" .content "$(str "$ZHIPU_TEXT")"
	sdk_eq "zhipu SDK, key via $via: usage" \
		'.usage | [.prompt_tokens, .completion_tokens]' '[16,44]'
	ledger "zhipu SDK, key via $via" \
		"chat/completions|zhipu|zhipu-chat|zhipu-chat|f|200|16|44|0|0|reported"
	sdk "zhipu SDK stream, key via $via" zhipu "$(sdk_args chat "$OPENAI_BASE" \
		"$KEY" model='"zhipu-chat"' stream=true via="\"$via\"")"
	sdk_eq "zhipu SDK stream, key via $via: content" .content \
		"$(str "$ZHIPU_STREAM_TEXT")"
	sdk_eq "zhipu SDK stream, key via $via: usage" \
		'.usage | [.prompt_tokens, .completion_tokens]' '[16,38]'
	ledger "zhipu SDK stream, key via $via" \
		"chat/completions|zhipu|zhipu-chat|zhipu-chat|t|200|16|38|0|0|reported"
done

tg_done
