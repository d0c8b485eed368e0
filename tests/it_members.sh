#!/bin/bash
# it_members.sh - the gateway reads a request exactly one way (PRODUCT
# section 10, issue 11): what it checked, routed, reserved and billed is
# what the provider receives.
#
# The mock reads bodies as a permissive provider does (last_member_wins:
# of two members with one name the last counts; fold_names: top-level and
# stream_options names matched Go-style, case-insensitively, with U+212A
# for k and U+017F for s), and answers every model request greedily, so it
# serves whatever model it reads. Against it:
#   - a member twice in any object (names compared after unescaping) is
#     refused with 400 invalid_request_error, error.param naming it by
#     path, before any upstream call, and recorded with refusal
#     'invalid_request'; so are two names equal under folding at the top
#     level or in stream_options, and a top-level spelling of an
#     interpreted member that only folding makes equal to it;
#   - bytes after the body's object, and interpreted members of the wrong
#     type, are refused with 400 invalid_request_error;
#   - nested members that only share a name with interpreted ones,
#     whitespace, escapes in values and member order change nothing;
#   - a property test: a few hundred bodies mutated from valid ones on
#     every endpoint that forwards the client's bytes, sent with a key
#     allowed only the cheap models. Each is refused before the provider
#     (400 invalid_request_error, or 403) or served by the model the
#     gateway billed, which the key is allowed, as a stream exactly when
#     the gateway recorded one, with the provider's usage.
# TG_MEMBERS_SEED and TG_MEMBERS_COUNT change the generator's seed (default
# 11) and how many bodies it makes (default 300).

. "$(dirname "$0")/lib.sh"

MEMBERS_DIR=$top_srcdir/tests/members
SEED=${TG_MEMBERS_SEED:-11}
COUNT=${TG_MEMBERS_COUNT:-300}
# What the key may use; the -dear models are what an attack wants.
ALLOWED="'openai-cheap', 'anthropic-cheap'"

command -v node >/dev/null 2>&1 ||
	tg_bail "node is not installed (Node.js >= 18 runs the property test's generator)"

tg_start_pg
tg_start_mock
tg_mock_providers
TG_EXTRA_SECTIONS=$TG_MOCK_PROVIDERS
for m in openai-cheap openai-dear anthropic-cheap anthropic-dear; do
	TG_EXTRA_SECTIONS+="

[route $m]
target = ${m%%-*}:$m"
done
KEY=$(tg_issue_key members --models 'openai-cheap,anthropic-cheap') ||
	tg_bail "cannot issue a key"
tg_start_gateway
tg_mock_config '{"greedy":true,"greedy_uncapped":8,"last_member_wins":true,
	"fold_names":true}' || tg_bail "cannot configure the mock"

MSG='"messages":[{"role":"user","content":"Say hello."}]'
# The start of a valid chat body for the cheap model.
CHEAP="\"model\":\"openai-cheap\",$MSG"
AZURE="/openai/deployments/openai-cheap/chat/completions?api-version=2024-10-21"

# Prints the count of model requests the mock has received.
mock_requests() {
	tg_mock_stats | jq .requests
}

# post PATH BODY : one request with the key, as the endpoint's SDK sends
# it (Anthropic's with anthropic-version).
post() {
	case $1 in
	/v1/messages)
		tg_http POST "$1" "$KEY" "$2" -H 'anthropic-version: 2023-06-01'
		;;
	*) tg_http POST "$1" "$KEY" "$2" ;;
	esac
}

# refused DESC PARAM REFUSAL BODY [PATH] : the body is refused with 400
# invalid_request_error before any upstream call, and recorded with status
# 400. PARAM is an extended regular expression error.param must match in
# full ("-": not checked; Anthropic's errors have no param), path
# separators written "\.". REFUSAL is the record's refusal tag ("-": not
# checked); when it is given, the message must also quote the member (the
# last name of PARAM's path, in any quotes).
refused() {
	local desc=$1 param=$2 refusal=$3 body=$4 path=${5:-/v1/chat/completions}
	local before got want leaf
	before=$(mock_requests)
	post "$path" "$body"
	got="$TG_STATUS $(jq -r .error.type "$TG_BODY" 2>/dev/null)"
	want="400 invalid_request_error"
	if [ "$param" != - ]; then
		got+=" $(jq -r .error.param "$TG_BODY" 2>/dev/null)"
		want+=" ($param)"
	fi
	assert_match "$desc: 400 invalid_request_error" "^$want\$" "$got"
	assert_eq "$desc: no upstream call" "$before" "$(mock_requests)"
	if [ "$refusal" = - ]; then
		tg_check_row "$desc: recorded" "$TG_RID" "status" 400
		return
	fi
	tg_check_row "$desc: recorded as refused" "$TG_RID" \
		"status, refusal" "400|$refusal"
	if [ "$param" != - ]; then
		leaf=${param##*\\.}
		assert_match "$desc: the message quotes the member" \
			"[\"'\`]([^\"'\`]*[.])?($leaf)[\"'\`]" \
			"$(jq -r .error.message "$TG_BODY" 2>/dev/null)"
	fi
}

# served DESC MODEL BODY [PATH] : the body is answered 200 by the mock's
# MODEL, once, and billed as MODEL.
served() {
	local desc=$1 model=$2 body=$3 path=${4:-/v1/chat/completions} before
	before=$(tg_mock_tried "$model")
	post "$path" "$body"
	assert_eq "$desc: 200" 200 "$TG_STATUS"
	assert_eq "$desc: the provider served $model" $((before + 1)) \
		"$(tg_mock_tried "$model")"
	tg_check_row "$desc: billed as $model" "$TG_RID" \
		"requested_model, upstream_model" "$model|$model"
}

# ---------------------------------------------------------------------------
# The attack itself, first without the fix's help: a key allowed only the
# cheap model asks for the dear one in a second member.

served "control: the cheap model" openai-cheap "{$CHEAP}"
post /v1/chat/completions "{\"model\":\"openai-dear\",$MSG}"
assert_eq "control: the dear model is not allowed" 403 "$TG_STATUS"

# ---------------------------------------------------------------------------
# A member twice, names compared after unescaping.

IR=invalid_request
refused "model twice" model $IR \
	"{$CHEAP,\"model\":\"openai-dear\"}"
refused "model twice, the dear one first" model $IR \
	"{\"model\":\"openai-dear\",$MSG,\"model\":\"openai-cheap\"}"
refused "model twice, the same value" model $IR \
	"{\"model\":\"openai-cheap\",\"model\":\"openai-cheap\",$MSG}"
refused "model and mod\\u0065l" model $IR \
	"{$CHEAP,\"mod\\u0065l\":\"openai-dear\"}"
refused "model and a model spelled in escapes" model $IR \
	"{\"\\u006d\\u006F\\u0064\\u0065\\u006c\":\"openai-cheap\",$MSG,\"model\":\"openai-dear\"}"
refused "stream twice" stream $IR \
	"{$CHEAP,\"stream\":false,\"stream\":true}"
refused "stream_options twice" stream_options $IR \
	"{$CHEAP,\"stream\":true,\"stream_options\":{\"include_usage\":true},\"stream_options\":{\"include_usage\":false}}"
refused "include_usage twice" 'stream_options\.include_usage' $IR \
	"{$CHEAP,\"stream\":true,\"stream_options\":{\"include_usage\":true,\"include_usage\":false}}"
refused "max_tokens twice" max_tokens $IR \
	"{$CHEAP,\"max_tokens\":5,\"max_tokens\":4000}"
refused "n twice" n $IR \
	"{$CHEAP,\"n\":1,\"n\":50}"
refused "content twice in the second message" 'messages\[1\]\.content' $IR \
	'{"model":"openai-cheap","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi.","content":"Bye."}]}'
refused "a member twice in metadata" 'metadata\.tag' $IR \
	"{$CHEAP,\"metadata\":{\"tag\":\"a\",\"tag\":\"b\"}}"
refused "completions: model twice" model $IR \
	'{"model":"openai-cheap","prompt":"Hi","model":"openai-dear"}' /v1/completions
refused "embeddings: model twice" model $IR \
	'{"model":"openai-cheap","input":"Hi","mod\u0065l":"openai-dear"}' /v1/embeddings
refused "responses: model twice" model $IR \
	'{"model":"openai-cheap","input":"Hi","model":"openai-dear"}' /v1/responses
refused "messages (Anthropic): model twice" - $IR \
	"{\"model\":\"anthropic-cheap\",\"max_tokens\":5,$MSG,\"model\":\"anthropic-dear\"}" /v1/messages
refused "Azure: model twice in the body" model $IR \
	"{$CHEAP,\"model\":\"openai-dear\"}" "$AZURE"

# ---------------------------------------------------------------------------
# Names equal under Go-style folding, at the top level and in
# stream_options; and a lone spelling of an interpreted member that only
# folding makes equal to it.

refused "model and MODEL" 'model|MODEL' $IR \
	"{$CHEAP,\"MODEL\":\"openai-dear\"}"
refused "stream and Stream" 'stream|Stream' $IR \
	"{$CHEAP,\"stream\":true,\"Stream\":false}"
refused "max_tokens and max_to<KELVIN SIGN>ens" 'max_tokens|max_to.+ens' $IR \
	"{$CHEAP,\"max_tokens\":5,\"max_to\\u212Aens\":4000}"
refused "include_usage and Include_Usage" \
	'stream_options\.(include_usage|Include_Usage)' $IR \
	"{$CHEAP,\"stream\":true,\"stream_options\":{\"include_usage\":true,\"Include_Usage\":false}}"
refused "a lone Stream" Stream $IR \
	"{$CHEAP,\"Stream\":true}"
refused "a lone max_Tokens" max_Tokens $IR \
	"{$CHEAP,\"max_Tokens\":5}"
refused "a lone <LONG S>tream (raw UTF-8)" 'ſtream' $IR \
	"{$CHEAP,\"ſtream\":true}"
refused "a lone \\u017ftream" 'ſtream' $IR \
	"{$CHEAP,\"\\u017ftream\":true}"
refused "a lone Stream_Options" Stream_Options $IR \
	"{$CHEAP,\"stream\":true,\"Stream_Options\":{\"include_usage\":true}}"
refused "a lone MODEL" 'MODEL|model' $IR "{\"MODEL\":\"openai-cheap\",$MSG}"
refused "messages (Anthropic): MODEL" - $IR \
	"{\"model\":\"anthropic-cheap\",\"max_tokens\":5,$MSG,\"MODEL\":\"anthropic-dear\"}" /v1/messages

# ---------------------------------------------------------------------------
# Bytes after the object.

refused "a second object after the body" - - \
	"{$CHEAP} {\"model\":\"openai-dear\"}"
refused "a letter after the body" - - "{$CHEAP}x"
refused "a brace after the body" - - "{$CHEAP}}"

# ---------------------------------------------------------------------------
# Interpreted members of the wrong type.

refused "model 42" model - "{\"model\":42,$MSG}"
refused "stream \"true\"" stream - "{$CHEAP,\"stream\":\"true\"}"
refused "stream 1" stream - "{$CHEAP,\"stream\":1}"
refused "stream_options a string" stream_options - \
	"{$CHEAP,\"stream\":true,\"stream_options\":\"yes\"}"
refused "include_usage a string" 'stream_options\.include_usage' - \
	"{$CHEAP,\"stream\":true,\"stream_options\":{\"include_usage\":\"yes\"}}"
refused "max_tokens \"100\"" max_tokens - \
	"{$CHEAP,\"max_tokens\":\"100\"}"
refused "max_tokens 1.5" max_tokens - "{$CHEAP,\"max_tokens\":1.5}"
refused "max_tokens 0" max_tokens - "{$CHEAP,\"max_tokens\":0}"
refused "max_completion_tokens -3" max_completion_tokens - \
	"{$CHEAP,\"max_completion_tokens\":-3}"
refused "n 0" n - "{$CHEAP,\"n\":0}"
refused "n 129" n - "{$CHEAP,\"n\":129}"
refused "n \"2\"" n - "{$CHEAP,\"n\":\"2\"}"
refused "completions: best_of 0" best_of - \
	'{"model":"openai-cheap","prompt":"Hi","best_of":0}' /v1/completions
refused "completions: best_of 21" best_of - \
	'{"model":"openai-cheap","prompt":"Hi","best_of":21}' /v1/completions
refused "responses: max_output_tokens \"5\"" max_output_tokens - \
	'{"model":"openai-cheap","input":"Hi","max_output_tokens":"5"}' /v1/responses
refused "messages (Anthropic): max_tokens true" - - \
	"{\"model\":\"anthropic-cheap\",\"max_tokens\":true,$MSG}" /v1/messages

# ---------------------------------------------------------------------------
# What must still be served, by the cheap model.

served "nulls where null is allowed" openai-cheap \
	"{$CHEAP,\"stream\":null,\"stream_options\":null,\"max_tokens\":null}"
served "include_usage null" openai-cheap \
	"{$CHEAP,\"stream\":true,\"stream_options\":{\"include_usage\":null}}"
served "n 128" openai-cheap "{$CHEAP,\"n\":128,\"max_tokens\":1}"
served "completions: best_of 20" openai-cheap \
	'{"model":"openai-cheap","prompt":"Hi","best_of":20,"max_tokens":1}' /v1/completions
served "model in metadata" openai-cheap \
	"{$CHEAP,\"metadata\":{\"model\":\"openai-dear\"}}"
served "MODEL and Stream in metadata" openai-cheap \
	"{$CHEAP,\"metadata\":{\"MODEL\":\"openai-dear\",\"Stream\":\"x\"}}"
SCHEMA='{"type":"object","properties":{"model":{"type":"string"},'
SCHEMA+='"MODEL":{"type":"string"}}}'
served "a tool schema with properties model and MODEL" openai-cheap \
	"{$CHEAP,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"pick\",\"parameters\":$SCHEMA}}]}"
served "whitespace everywhere" openai-cheap \
	"$(printf ' \n{\n\t"model"\r\n :\t"openai-cheap" ,\n "messages" : [ { "role" : "user" , "content" : "Hi" } ] ,\n"stream"\t:\ttrue\n}\n\t ')"
served "an escaped model value" openai-cheap \
	"{\"model\":\"openai-\\u0063he\\u0061p\",$MSG}"
served "a model name spelled in escapes, once" openai-cheap \
	"{\"\\u006d\\u006f\\u0064\\u0065\\u006c\":\"openai-cheap\",$MSG}"
served "model last" openai-cheap "{$MSG,\"max_tokens\":3,\"model\":\"openai-cheap\"}"
served "Azure: the deployment, no model in the body" openai-cheap "{$MSG}" "$AZURE"
served "Azure: a body model does not override the deployment" openai-cheap \
	"{\"model\":\"openai-dear\",$MSG}" "$AZURE"
before=$(mock_requests)
post "$AZURE" "{$MSG,\"MODEL\":\"openai-dear\"}"
if [ "$TG_STATUS" = 400 ] && [ "$(mock_requests)" = "$before" ]; then
	tg_ok "Azure: a body MODEL does not override the deployment (refused)"
else
	assert_eq "Azure: a body MODEL does not override the deployment: 200" \
		200 "$TG_STATUS"
	assert_eq "Azure: a body MODEL does not override the deployment: served by the deployment" \
		"1 0" "$(($(mock_requests) - before)) $(tg_mock_tried openai-dear)"
fi
served "messages (Anthropic): model in metadata" anthropic-cheap \
	"{\"model\":\"anthropic-cheap\",\"max_tokens\":5,$MSG,\"metadata\":{\"model\":\"anthropic-dear\"}}" /v1/messages

# ---------------------------------------------------------------------------
# The property: mutated bodies on every endpoint. Every answer is a
# refusal before the provider, or the model the key is allowed, served and
# billed as one.

OUT=$TG_TMP/fuzz.jsonl
tg_mock_reset
tg_mock_config '{"greedy":true,"greedy_uncapped":8,"last_member_wins":true,
	"fold_names":true}' || tg_bail "cannot configure the mock"
node "$MEMBERS_DIR/fuzz.mjs" "$(jq -nc --arg gw "$TG_URL" --arg mock "$TG_MOCK_URL" \
	--arg key "$KEY" --argjson seed "$SEED" --argjson count "$COUNT" \
	--arg out "$OUT" '{gw: $gw, mock: $mock, key: $key, seed: $seed,
	count: $count, out: $out}')" 2>"$TG_TMP/fuzz.err" ||
	tg_bail "the generator failed: $(head -c 600 "$TG_TMP/fuzz.err")"
assert_eq "property: every body was sent" "$COUNT" "$(wc -l <"$OUT")"

N200=$(jq -s '[.[] | select(.status == 200)] | length' "$OUT")
N400=$(jq -s '[.[] | select(.status == 400)] | length' "$OUT")
N403=$(jq -s '[.[] | select(.status == 403)] | length' "$OUT")
tg_log "property: $COUNT bodies (seed $SEED): $N200 served, $N400 refused (400), $N403 refused (403)"

# fuzz_bad DESC JQ_SELECT : a check that no line matches the selection;
# the first offenders are shown with their bodies.
fuzz_bad() {
	local desc=$1 sel=$2 n
	local -a bad
	mapfile -t bad < <(jq -c "select($sel) | {i, ep, muts, status, etype,
		mreq, served, mstream, path, body}" "$OUT" | head -n 5 |
		cut -c 1-700)
	if [ ${#bad[@]} = 0 ]; then
		tg_ok "property: $desc"
		return
	fi
	n=$(jq -s "map(select($sel)) | length" "$OUT")
	tg_not_ok "property: $desc" "$n of $COUNT bodies; the first:" "${bad[@]}"
}
fuzz_bad "every answer is 200, 400 or 403" \
	'.status != 200 and .status != 400 and .status != 403'
fuzz_bad "every 400 is invalid_request_error" \
	'.status == 400 and .etype != "invalid_request_error"'
fuzz_bad "no 400 reached the provider" '.status == 400 and .mreq != 0'
fuzz_bad "no 403 reached the provider" '.status == 403 and .mreq != 0'
fuzz_bad "every 200 was one upstream call" '.status == 200 and .mreq != 1'
fuzz_bad "every 200 was served by a model the key is allowed" \
	'.status == 200 and (.served | IN("openai-cheap", "anthropic-cheap") | not)'
fuzz_bad "every answer has a request id" '(.rid // "") == ""'
assert_true "property: some bodies served ($N200)" test "$N200" -gt 0
assert_true "property: some bodies refused with 400 ($N400)" test "$N400" -gt 0

# What the mock served against what the gateway recorded.
jq -r 'select((.rid // "") != "") | [.rid, (.status | tostring),
	(.served // "\\N"),
	(if .mstream == null then "\\N" else (.mstream | tostring) end)] |
	join("\t")' \
	"$OUT" >"$TG_TMP/fuzz.tsv"
tg_psql "SET client_min_messages = warning; DROP TABLE IF EXISTS fuzz;
	CREATE TABLE fuzz (rid text, status int, served text, mstream boolean)" ||
	tg_bail "cannot create the fuzz table"
"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$TOLLGATE_DATABASE" \
	-c "\\copy fuzz FROM '$TG_TMP/fuzz.tsv'" || tg_bail "cannot load fuzz.tsv"
WANT=$(tg_psql "SELECT count(*) FROM fuzz")
tg_wait_until -i 0.2 30 '[ "$(tg_psql "SELECT count(*) FROM fuzz f
	JOIN usage_records u ON u.request_id = f.rid")" = "$WANT" ]'
assert_eq "property: every request has its usage record" "$WANT" \
	"$(tg_psql "SELECT count(*) FROM fuzz f JOIN usage_records u ON u.request_id = f.rid")"

# fuzz_sql DESC CONDITION : no record of the run matches CONDITION (f is
# the run's line, u its usage record).
fuzz_sql() {
	local desc=$1 cond=$2 n
	local -a first
	n=$(tg_psql "SELECT count(*) FROM fuzz f JOIN usage_records u
		ON u.request_id = f.rid WHERE $cond")
	if [ "$n" = 0 ]; then
		tg_ok "property: $desc"
		return
	fi
	mapfile -t first < <(tg_psql "SELECT f.rid, f.status, f.served,
		f.mstream, u.status, u.requested_model, u.upstream_model,
		u.streamed, u.usage_source FROM fuzz f
		JOIN usage_records u ON u.request_id = f.rid WHERE $cond LIMIT 5")
	tg_not_ok "property: $desc" "$n records; the first (request id," \
		"status, model and stream the provider served; status," \
		"requested and upstream model, streamed, usage source recorded):" \
		"${first[@]}"
}
fuzz_sql "each answer is recorded with its status" 'u.status <> f.status'
fuzz_sql "the model served is the model billed" \
	"f.status = 200 AND u.upstream_model IS DISTINCT FROM f.served"
fuzz_sql "the model billed is one the key is allowed" \
	"f.status = 200 AND (u.requested_model NOT IN ($ALLOWED)
	 OR u.upstream_model NOT IN ($ALLOWED))"
fuzz_sql "a stream was served exactly when the gateway recorded one" \
	"f.status = 200 AND u.streamed IS DISTINCT FROM f.mstream"
fuzz_sql "every served request is billed on the provider's usage" \
	"f.status = 200 AND u.usage_source <> 'reported'"

tg_done
