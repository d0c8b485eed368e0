#!/bin/bash
# it_hardquota.sh - a hard quota holds against a greedy upstream (PRODUCT
# section 10, issue 11): no request shape takes a tenant past its hard
# token quota by more than one request's prompt misestimate.
#
# The mock answers greedily: every request gets all the output it allows
# (its cap, times n; 17000 words a choice when it sets none; with
# ignore_caps, 17000 whatever it says), one token a word, with 10 prompt
# tokens reported. The prompts are some 40 words, so the gateway's
# estimate is never under the 10 reported. The gateway reserves the
# estimated prompt plus n times the output cap, and under a hard quota it
# clamps: the cap it reserved is what it sends upstream, in the field the
# provider honours (chat: max_completion_tokens, or max_tokens when the
# client used max_tokens; legacy completions and the Chinese providers:
# max_tokens; Responses: max_output_tokens; Anthropic: max_tokens), also
# when the client's cap is larger than what is left. A stream that still
# runs past its reservation (ignore_caps) is cut there with a terminal
# error event and recorded with status 200 and an error.
#
#   1. concurrent bursts of 24 requests (no cap, stream and not; max_tokens
#      1000; n=5 with max_tokens 500; max_completion_tokens 100000), a
#      fresh tenant with a 5000-token quota each: the tokens used stay
#      within 5000 plus one request's prompt, some are served and some
#      refused with 429 insufficient_quota;
#   2. the clamp is visible upstream: with the quota nearly used up, a
#      request without a cap (or with a larger one) is served, and the
#      body the mock received carries the cap within what was left, in
#      the field of its wire;
#   3. the same burst over two gateways sharing the database;
#   4. Responses, Anthropic and chat streams from a provider that ignores
#      caps are cut at the reservation with the wire's error event;
#   5. embeddings with token-array input: 30 concurrent calls of 40 ids
#      each against 100 tokens serve at most 2.

. "$(dirname "$0")/lib.sh"

N=5000
PROMPT="Please write a long story about the sea and the ships that sail on it,"
PROMPT+=" with many details about the sailors, their families, the storms they"
PROMPT+=" face and the ports they visit on their long way back home."

tg_start_pg
tg_start_mock
tg_mock_providers
TG_EXTRA_SECTIONS="$TG_MOCK_PROVIDERS"
for m in openai-greedy zhipu-greedy anthropic-greedy azure-greedy \
	openai-embed; do
	TG_EXTRA_SECTIONS+="

[route $m]
target = ${m%%-*}:$m"
done

declare -A KEY QID

# quota_tenant NAME TOKENS : a tenant with a key (KEY[NAME]) and a hard
# total quota of TOKENS (QID[NAME]).
quota_tenant() {
	local out
	KEY[$1]=$(tg_issue_key "$1") || tg_bail "key issue for $1 failed"
	out=$(tg_ctl quota set --tenant "$1" --period total --tokens "$2" 2>&1) ||
		tg_bail "quota set for $1 failed: $out"
	QID[$1]=$(sed -n 's/^\(created\|replaced\) quota \([0-9][0-9]*\) .*/\2/p' \
		<<<"$out" | head -n 1)
	[ -n "${QID[$1]}" ] || tg_bail "quota set for $1: no quota id in '$out'"
}

# Every tenant exists before the gateways start.
for t in nocap max1000 n5 mct two cut; do
	quota_tenant "$t" "$N"
done
CLAMPS="chat chat-max-tokens chat-n2 zhipu completions responses anthropic azure"
for t in $CLAMPS; do
	quota_tenant "clamp-$t" "$N"
done
quota_tenant embed 100

tg_start_gateway
# Latency makes a burst's requests all admitted before any ends.
tg_mock_config '{"greedy":true,"greedy_prompt_tokens":10,"latency_ms":200}' ||
	tg_bail "cannot configure the mock"

# Prints the largest prompt of TENANT's served requests: the slack a hard
# quota allows (one request's prompt misestimate).
tenant_slack() {
	tg_psql "SELECT coalesce(max(u.prompt_tokens), 0)
		FROM usage_records u JOIN tenants t ON t.id = u.tenant_id
		WHERE t.name = $(tg_sql_quote "$1") AND u.status = 200"
}

# chat_body MODEL EXTRA_MEMBERS [stream] : a chat request with the long
# prompt; EXTRA_MEMBERS (",..." or "") go in as they are.
chat_body() {
	printf '{"model":"%s","messages":[{"role":"user","content":"%s"}]%s%s}' \
		"$1" "$PROMPT" "$2" "${3:+,\"stream\":true}"
}

# The requests of the next burst: REQ_PATH[i] and REQ_BODY[i].
REQ_PATH=()
REQ_BODY=()

# add_req PATH BODY : adds a request to the next burst.
add_req() {
	REQ_PATH+=("$1")
	REQ_BODY+=("$2")
}

# burst TAG KEY URL... : sends the requests of REQ_PATH/REQ_BODY all at
# once, to the URLs in turn, then forgets them. Request I's status and
# request id are in $TG_TMP/TAG.I.out, its body in $TG_TMP/TAG.I.body;
# TAG.n holds how many there were.
burst() {
	local tag=$1 key=$2 i
	shift 2
	local -a urls=("$@") pids=()
	for ((i = 0; i < ${#REQ_BODY[@]}; i++)); do
		curl -s -N -o "$TG_TMP/$tag.$i.body" --max-time 60 \
			-w '%{http_code} %header{x-request-id}' \
			-H "Authorization: Bearer $key" \
			-H 'anthropic-version: 2023-06-01' \
			-H 'Content-Type: application/json' -H 'Expect:' \
			--data-binary "${REQ_BODY[i]}" \
			"${urls[i % ${#urls[@]}]}${REQ_PATH[i]}" \
			>"$TG_TMP/$tag.$i.out" &
		pids+=($!)
	done
	wait "${pids[@]}"
	echo "${#REQ_BODY[@]}" >"$TG_TMP/$tag.n"
	REQ_PATH=()
	REQ_BODY=()
}

# check_burst DESC TAG TENANT LIMIT : every request of burst TAG was
# answered 200 or 429 (insufficient_quota), some of each; once the ledger
# holds them all, TENANT's tokens are within LIMIT plus one request's
# prompt. Sets N200 and N429.
check_burst() {
	local desc=$1 tag=$2 tenant=$3 limit=$4 i n code body nquota=0
	local -a other=()
	n=$(cat "$TG_TMP/$tag.n")
	N200=0
	N429=0
	for ((i = 0; i < n; i++)); do
		read -r code _ <"$TG_TMP/$tag.$i.out"
		body=$TG_TMP/$tag.$i.body
		case $code in
		200) N200=$((N200 + 1)) ;;
		429)
			N429=$((N429 + 1))
			# Anthropic's shape has no code: its message says it.
			if jq -e '.error.code == "insufficient_quota" or
				(.type == "error" and (.error.message | test("quota")))' \
				"$body" >/dev/null 2>&1; then
				nquota=$((nquota + 1))
			fi
			;;
		*) other+=("request $i: '$code' $(head -c 200 "$body" 2>/dev/null)") ;;
		esac
	done
	tg_log "$desc: $N200 served, $N429 refused"
	if [ ${#other[@]} = 0 ]; then
		tg_ok "$desc: every request answered 200 or 429"
	else
		tg_not_ok "$desc: every request answered 200 or 429" "${other[@]:0:5}"
	fi
	assert_true "$desc: some served ($N200)" test "$N200" -gt 0
	assert_true "$desc: some refused once the quota is used ($N429)" \
		test "$N429" -gt 0
	assert_eq "$desc: every 429 is the quota's" "$N429" "$nquota"
	tg_wait_until -i 0.2 20 '[ "$(tg_tenant_records "$tenant" 200)" = "$N200" ] &&
		[ "$(tg_tenant_records "$tenant" 429)" = "$N429" ]'
	assert_eq "$desc: the ledger holds every answer" "$N200 $N429" \
		"$(tg_tenant_records "$tenant" 200) $(tg_tenant_records "$tenant" 429)"
	check_used "$desc" "$tenant" "$limit"
}

# check_used DESC TENANT LIMIT : TENANT's served tokens are within LIMIT
# plus one request's prompt.
check_used() {
	local desc=$1 tenant=$2 limit=$3 used slack
	used=$(tg_tenant_tokens "$tenant")
	slack=$(tenant_slack "$tenant")
	if [ "$used" -le $((limit + slack)) ]; then
		tg_ok "$desc: tokens used $used <= $limit + $slack"
	else
		tg_not_ok "$desc: tokens used <= $limit + one prompt ($slack)" \
			"expected: <= $((limit + slack))" "got:      $used"
	fi
}

CHAT=/v1/chat/completions

# ---------------------------------------------------------------------------
# 1. Bursts of 24 against 5000 tokens, one tenant each.

for ((i = 0; i < 24; i++)); do
	if ((i % 2)); then
		add_req $CHAT "$(chat_body openai-greedy '' 1)"
	else
		add_req $CHAT "$(chat_body openai-greedy '')"
	fi
done
burst nocap "${KEY[nocap]}" "$TG_URL"
check_burst "no cap" nocap nocap "$N"

for ((i = 0; i < 24; i++)); do
	if ((i % 2)); then
		add_req $CHAT "$(chat_body openai-greedy ',"max_tokens":1000' 1)"
	else
		add_req $CHAT "$(chat_body openai-greedy ',"max_tokens":1000')"
	fi
done
burst max1000 "${KEY[max1000]}" "$TG_URL"
check_burst "max_tokens 1000" max1000 max1000 "$N"

for ((i = 0; i < 24; i++)); do
	if ((i % 2)); then
		add_req $CHAT "$(chat_body openai-greedy ',"n":5,"max_tokens":500' 1)"
	else
		add_req $CHAT "$(chat_body openai-greedy ',"n":5,"max_tokens":500')"
	fi
done
burst n5 "${KEY[n5]}" "$TG_URL"
check_burst "n=5, max_tokens 500" n5 n5 "$N"

for ((i = 0; i < 24; i++)); do
	if ((i % 2)); then
		add_req $CHAT "$(chat_body openai-greedy ',"max_completion_tokens":100000' 1)"
	else
		add_req $CHAT "$(chat_body openai-greedy ',"max_completion_tokens":100000')"
	fi
done
burst mct "${KEY[mct]}" "$TG_URL"
check_burst "max_completion_tokens 100000" mct mct "$N"

# ---------------------------------------------------------------------------
# 2. The clamp, seen upstream. Each tenant first uses all but about 400 of
# its 5000 tokens; then a request that leaves its output open (or asks for
# more than is left) is served, and the body sent upstream caps it, in the
# wire's field, within what was left (divided by n).

tg_mock_config '{"latency_ms":0}' || tg_bail "cannot configure the mock"

# clamp DESC TENANT PATH BODY FIELD DIVISOR : after the tenant's big
# request, BODY is served and the upstream body's FIELD is at least 1 and
# at most what was left / DIVISOR.
clamp() {
	local desc=$1 tenant=clamp-$2 path=$3 body=$4 field=$5 div=$6
	local key=${KEY[clamp-$2]} used left sent before
	tg_http POST $CHAT "$key" "$(chat_body openai-greedy ',"max_tokens":4600')"
	assert_eq "$desc: the first request served" 200 "$TG_STATUS"
	tg_wait_row "$TG_RID" || tg_bail "$desc: the first request has no record"
	used=$(tg_tenant_tokens "$tenant")
	left=$((N - used))
	before=$(tg_mock_stats | jq .requests)
	tg_http POST "$path" "$key" "$body" -H 'anthropic-version: 2023-06-01'
	assert_eq "$desc: served with $left tokens left" 200 "$TG_STATUS"
	if [ "$(tg_mock_stats | jq .requests)" = "$before" ]; then
		sent="no upstream request"
	else
		sent=$(tg_mock_last_request | jq -r --arg f "$field" \
			'.body | fromjson | .[$f] // "none"')
	fi
	if [[ $sent =~ ^[0-9]+$ ]] && [ "$sent" -ge 1 ] &&
		[ "$sent" -le $((left / div)) ]; then
		tg_ok "$desc: upstream $field $sent <= $left / $div"
	else
		tg_not_ok "$desc: upstream $field within what was left" \
			"expected: 1 to $((left / div))" "got:      $sent" \
			"last upstream body: $(tg_mock_last_request | jq -r .body |
				cut -c 1-300)"
	fi
	tg_wait_row "$TG_RID" >/dev/null
	check_used "$desc" "$tenant" "$N"
}

clamp "clamp, chat without a cap" chat $CHAT \
	"$(chat_body openai-greedy '')" max_completion_tokens 1
clamp "clamp, chat with max_tokens 100000" chat-max-tokens $CHAT \
	"$(chat_body openai-greedy ',"max_tokens":100000')" max_tokens 1
assert_eq "clamp, chat with max_tokens 100000: no max_completion_tokens added" \
	null "$(tg_mock_last_request | jq -r '.body | fromjson | .max_completion_tokens')"
clamp "clamp, chat n=2 without a cap" chat-n2 $CHAT \
	"$(chat_body openai-greedy ',"n":2' 1)" max_completion_tokens 2
clamp "clamp, zhipu chat without a cap" zhipu $CHAT \
	"$(chat_body zhipu-greedy '')" max_tokens 1
clamp "clamp, completions without a cap" completions /v1/completions \
	"{\"model\":\"openai-greedy\",\"prompt\":\"$PROMPT\"}" max_tokens 1
clamp "clamp, responses without a cap" responses /v1/responses \
	"{\"model\":\"openai-greedy\",\"input\":\"$PROMPT\",\"stream\":true}" \
	max_output_tokens 1
clamp "clamp, anthropic with max_tokens 100000" anthropic /v1/messages \
	"{\"model\":\"anthropic-greedy\",\"max_tokens\":100000,\"messages\":[{\"role\":\"user\",\"content\":\"$PROMPT\"}]}" \
	max_tokens 1
clamp "clamp, azure chat without a cap" azure $CHAT \
	"$(chat_body azure-greedy '')" max_completion_tokens 1

# ---------------------------------------------------------------------------
# 3. Two gateways on one database: no cap and n=5, split between them.

tg_start_gateway -n 2
GW2_PID=$TG_NAMED_PID
tg_mock_config '{"latency_ms":200}' || tg_bail "cannot configure the mock"
for ((i = 0; i < 48; i++)); do
	case $((i % 4)) in
	0) add_req $CHAT "$(chat_body openai-greedy '')" ;;
	1) add_req $CHAT "$(chat_body openai-greedy '' 1)" ;;
	2) add_req $CHAT "$(chat_body openai-greedy ',"n":5,"max_tokens":500')" ;;
	3) add_req $CHAT "$(chat_body openai-greedy ',"n":5,"max_tokens":500' 1)" ;;
	esac
done
burst two "${KEY[two]}" "$TG_URL" "$TG_NAMED_URL"
check_burst "two gateways" two two "$N"
tg_stop_pid "$GW2_PID"
assert_eq "second tollgated exits 0 on SIGTERM" 0 "$TG_STOP_STATUS"

# ---------------------------------------------------------------------------
# 4. A provider that ignores caps: every stream runs past its reservation
# and must be cut there, with the wire's terminal error event.

tg_mock_config '{"ignore_caps":true,"latency_ms":200}' ||
	tg_bail "cannot configure the mock"
ANTH_MSG="\"messages\":[{\"role\":\"user\",\"content\":\"$PROMPT\"}]"
for ((i = 0; i < 24; i++)); do
	case $((i % 4)) in
	0) add_req /v1/responses "{\"model\":\"openai-greedy\",\"input\":\"$PROMPT\",\"stream\":true}" ;;
	1) add_req /v1/responses "{\"model\":\"openai-greedy\",\"input\":\"$PROMPT\",\"max_output_tokens\":300,\"stream\":true}" ;;
	2) add_req /v1/messages "{\"model\":\"anthropic-greedy\",\"max_tokens\":300,$ANTH_MSG,\"stream\":true}" ;;
	3) add_req $CHAT "$(chat_body openai-greedy ',"max_tokens":300' 1)" ;;
	esac
done
burst cut "${KEY[cut]}" "$TG_URL"
check_burst "caps ignored" cut cut "$N"

# Each served stream ended with the wire's error event and is recorded
# with status 200 and an error.
KINDS=(responses responses anthropic chat)
bad=()
for ((i = 0; i < 24; i++)); do
	read -r code rid <"$TG_TMP/cut.$i.out"
	[ "$code" = 200 ] || continue
	f=$TG_TMP/cut.$i.body
	case $((i % 4)) in
	0 | 1)
		grep -q '^event: error' "$f" && grep -q insufficient_quota "$f" &&
			! grep -q '^event: response.completed' "$f"
		;;
	2)
		grep -q '^event: error' "$f" && ! grep -q '^event: message_stop' "$f"
		;;
	3)
		grep -q '^data: {"error".*insufficient_quota' "$f" &&
			! grep -q '^data: \[DONE\]' "$f"
		;;
	esac || bad+=("request $i (${KINDS[i % 4]}): $(tail -c 200 "$f" | tr '\n' ' ')")
	[ "$(tg_row "$rid" "status, error IS NOT NULL")" = "200|t" ] ||
		bad+=("request $i: record '$(tg_row "$rid" "status, error")'")
done
if [ ${#bad[@]} = 0 ]; then
	tg_ok "caps ignored: every served stream was cut with an error event and recorded"
else
	tg_not_ok "caps ignored: every served stream was cut with an error event and recorded" \
		"${bad[@]:0:6}"
fi
tg_mock_config '{"ignore_caps":false}' || tg_bail "cannot configure the mock"

# ---------------------------------------------------------------------------
# 5. Embeddings given as token ids count those ids: 30 calls of 40 ids
# against 100 tokens.

IDS=$(seq -s, 1 40)
for ((i = 0; i < 30; i++)); do
	add_req /v1/embeddings "{\"model\":\"openai-embed\",\"input\":[$IDS]}"
done
burst embed "${KEY[embed]}" "$TG_URL"
check_burst "embeddings of 40 token ids" embed embed 100
assert_true "embeddings of 40 token ids: at most 2 served ($N200)" \
	test "$N200" -le 2

tg_done
