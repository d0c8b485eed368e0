#!/bin/bash
# it_signals.sh - signals an operator sends a running gateway. SIGTERM stops
# accepting at once, lets the streams in flight finish (within
# shutdown_timeout, past which they are cut and billed as estimated) and
# exits 0 with every record shipped. SIGHUP re-reads the configuration under
# load: new requests take the new routes, requests in flight keep the ones
# they started with, no request fails, a broken file is rejected whole and a
# change that needs a restart is said to need one.

. "$(dirname "$0")/lib.sh"

# Streams of test 1: model | stream_options | fixture | prompt | completion.
# Each sends its usage, so each record is 'reported' with these counts.
STREAMS=(
	"openai-chat|{\"include_usage\":true}|openai-chat-stream.sse|25|9"
	"zhipu-chat|-|zhipu-chat-stream.sse|16|38"
	"dashscope-chat|{\"include_usage\":true}|dashscope-chat-stream.sse|26|13"
	"qianfan-chat|{\"include_usage\":true}|qianfan-chat-stream.sse|3|11"
	"baichuan-chat|-|baichuan-chat-stream.sse|9|12"
	"yi-chat|-|yi-chat-stream.sse|17|6"
	"moonshot-chat|-|moonshot-chat-stream.sse|19|13"
	"deepseek-chat|-|deepseek-chat-stream.sse|11|11"
)
N_TERM=${N_TERM:-10}
N_LOADERS=${N_LOADERS:-2}
# sort and join must agree on the order.
export LC_ALL=C

# start_stream DIR NAME MODEL OPTS : one streamed chat request in the
# background; DIR/NAME.{body,headers,status,rc} hold what the client got.
# Sets STREAM_PID.
start_stream() {
	local dir=$1 name=$2 model=$3 opts=$4
	(
		curl -sS -N --max-time 60 -H 'Content-Type: application/json' \
			-H "Authorization: Bearer $KEY" \
			--data-binary "$(tg_chat_body "$model" "$opts")" \
			-D "$dir/$name.headers" -o "$dir/$name.body" \
			-w '%{http_code}' "$TG_URL/v1/chat/completions" \
			>"$dir/$name.status" 2>"$dir/$name.err"
		echo $? >"$dir/$name.rc"
	) &
	STREAM_PID=$!
}

# Whether every file given is non-empty.
all_nonempty() {
	local f
	for f in "$@"; do
		[ -s "$f" ] || return 1
	done
}

# wait_first_bytes SECONDS FILE... : waits until every file is non-empty.
wait_first_bytes() {
	local secs=$1
	shift
	tg_wait_until -i 0.05 "$secs" all_nonempty "$@"
}

# Whether any of the given pids has ended.
any_ended() {
	local p
	for p in "$@"; do
		kill -0 "$p" 2>/dev/null || return 0
	done
	return 1
}

# Whether any of the given pids still runs.
any_alive() {
	local p
	for p in "$@"; do
		kill -0 "$p" 2>/dev/null && return 0
	done
	return 1
}

# wait_exit PID SECONDS : waits for a process told to stop, without
# signalling it again. TG_STOP_STATUS is its exit status, or 137 when it
# still ran after SECONDS and was killed.
wait_exit() {
	local pid=$1 secs=$2
	if ! tg_wait_until "$secs" tg_gone "$pid"; then
		tg_log "pid $pid still runs ${secs} s after the signal; killing it"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		TG_STOP_STATUS=137
		return 1
	fi
	wait "$pid" 2>/dev/null
	TG_STOP_STATUS=$?
}

# Prints how many lines of the gateway log contain the fixed string.
log_count() {
	grep -c -F -- "$1" "$TG_TMP/gateway.log" 2>/dev/null
}

# wait_log STRING COUNT SECONDS : waits until more than COUNT lines of the
# gateway log contain STRING.
wait_log() {
	local s=$1 count=$2
	tg_wait_until -i 0.05 "$3" '[ "$(log_count "$s")" -gt "$count" ]'
}

# Prints the request ids of the header files given, one per line.
ids_of() {
	local h
	for h in "$@"; do
		TG_HDRS=$h
		tg_header x-request-id
	done
}

# Quotes request ids (one per line on stdin) as an SQL list.
sql_id_list() {
	local l
	l=$(grep . | sed "s/'/''/g; s/.*/'&'/" | paste -sd,)
	echo "${l:-''}"
}

# wait_rows ID_LIST COUNT SECONDS : polls until COUNT records of the ids
# exist; prints the last count.
wait_rows() {
	local ids=$1 want=$2 n=0
	tg_wait_until "$3" 'n=$(tg_psql "SELECT count(*) FROM usage_records
		WHERE request_id IN ($ids)"); [ "$n" = "$want" ]'
	echo "$n"
}

# Joins the load's answers ($LOAD/all), the fixture each body came from
# ($LOAD/labels) and the usage records, one line per request in
# $LOAD/joined: rid name kind start end rc status label provider
# upstream_model (the last two missing while its record is not in).
join_records() {
	tg_psql "SELECT request_id, provider, upstream_model FROM usage_records
		 WHERE requested_model = 'alias-chat'" | sort >"$LOAD/records"
	join -1 1 -2 1 <(sort "$LOAD/all") "$LOAD/labels" |
		awk '{ print $7, $1, $2, $3, $4, $5, $6, $8 }' | sort |
		join -a 1 -1 1 -2 1 - <(tr '|' ' ' <"$LOAD/records") \
			>"$LOAD/joined"
}

# Whether every request of the load has its record in $LOAD/joined.
all_joined() {
	[ "$(awk 'NF == 10' "$LOAD/joined" | grep -c .)" = "$total" ]
}

# Whether nothing accepts connections on 127.0.0.1:PORT.
port_free() {
	! tg_port_busy "$1"
}

# Whether FILE is a strict, non-empty prefix of FIXTURE.
strict_prefix() {
	local n
	n=$(wc -c <"$1")
	[ "$n" -gt 0 ] && [ "$n" -lt "$(wc -c <"$2")" ] &&
		head -c "$n" "$2" | cmp -s - "$1"
}

tg_start_pg
tg_start_mock
tg_start_gateway
KEY=$(tg_issue_key signals) || tg_bail "cannot issue a key"

# ---------------------------------------------------------------------------
# 1. SIGTERM with streams in flight: they all finish whole, the listener is
# closed at once, the daemon exits 0, every stream is billed once, as
# reported by the provider.

T1=$TG_TMP/term
mkdir -p "$T1"
# 800 ms between events: each stream runs for 2.4 s or more.
tg_mock_config '{"chunk_delay_ms":800}' || tg_bail "mock config failed"
pids=()
for ((i = 0; i < N_TERM; i++)); do
	IFS='|' read -r model opts fixture p c <<<"${STREAMS[i % ${#STREAMS[@]}]}"
	start_stream "$T1" "$i" "$model" "$opts"
	pids+=("$STREAM_PID")
done
bodies=()
for ((i = 0; i < N_TERM; i++)); do
	bodies+=("$T1/$i.body")
done
wait_first_bytes 15 "${bodies[@]}" ||
	tg_bail "SIGTERM: the $N_TERM streams did not all start within 15 s"
tg_mock_reset || tg_bail "mock reset failed"

kill -TERM "$TG_GW_PID"
# Probe the data-plane port until a connection is refused. Closing the
# listeners takes the daemon moments, the streams take seconds more: the
# refusal must come before any stream ended, and last.
tg_wait_until -i 0.05 60 \
	'! tg_port_busy "$TG_GW_PORT" || any_ended "${pids[@]}"'
if ! any_ended "${pids[@]}" && ! tg_port_busy "$TG_GW_PORT"; then
	tg_ok "SIGTERM: new connections refused before any stream in flight ended"
else
	tg_not_ok "SIGTERM: new connections refused before any stream in flight ended" \
		"127.0.0.1:$TG_GW_PORT still accepted when the first stream ended"
fi
accepted=0
probes=0
while any_alive "${pids[@]}"; do
	probes=$((probes + 1))
	tg_port_busy "$TG_GW_PORT" && accepted=$((accepted + 1))
	sleep 0.05
done
assert_eq "SIGTERM: no connection accepted after that while streams drain ($probes probes)" \
	0 "$accepted"
for pid in "${pids[@]}"; do
	wait "$pid"
done
wait_exit "$TG_GW_PID" 20
TG_GW_PID=
assert_eq "SIGTERM with $N_TERM streams in flight: tollgated exits 0" \
	0 "$TG_STOP_STATUS"

bad=()
: >"$T1/expected"
for ((i = 0; i < N_TERM; i++)); do
	IFS='|' read -r model opts fixture p c <<<"${STREAMS[i % ${#STREAMS[@]}]}"
	status=$(cat "$T1/$i.status" 2>/dev/null)
	rc=$(cat "$T1/$i.rc" 2>/dev/null)
	if [ "$status" != 200 ] || [ "$rc" != 0 ] ||
		! cmp -s "$FIXTURES/$fixture" "$T1/$i.body"; then
		bad+=("#$i $model status=$status curl rc=$rc $(cmp "$FIXTURES/$fixture" "$T1/$i.body" 2>&1 | head -n 1) $(head -c 120 "$T1/$i.err")")
	fi
	echo "$(ids_of "$T1/$i.headers")|1|$p|$c|reported" >>"$T1/expected"
done
if [ ${#bad[@]} = 0 ]; then
	tg_ok "SIGTERM: all $N_TERM streams in flight finish with their whole fixture"
else
	tg_not_ok "SIGTERM: all $N_TERM streams in flight finish with their whole fixture" \
		"${bad[@]}"
fi
# The daemon has exited: what it shipped is all there is until the next start.
term_ids=$(cut -d'|' -f1 "$T1/expected" | sql_id_list)
tg_psql "SELECT request_id, count(*) OVER (PARTITION BY request_id),
		prompt_tokens, completion_tokens, usage_source
	 FROM usage_records WHERE request_id IN ($term_ids)" |
	sort >"$T1/actual"
sort "$T1/expected" >"$T1/expected.sorted"
if cmp -s "$T1/expected.sorted" "$T1/actual"; then
	tg_ok "SIGTERM: after exit each stream has one record, reported, its fixture's counts"
else
	tg_not_ok "SIGTERM: after exit each stream has one record, reported, its fixture's counts" \
		"$(diff "$T1/expected.sorted" "$T1/actual" | head -n 14)"
fi

# ---------------------------------------------------------------------------
# 2. SIGTERM past shutdown_timeout: streams that would run for seconds more
# are cut, the daemon exits 0, and each is billed as estimated with the
# reason "shutdown".

mv "$TG_TMP/gateway.log" "$TG_TMP/gateway-term.log"
tg_start_gateway "shutdown_timeout = 1000"
T2=$TG_TMP/bound
mkdir -p "$T2"
# 1.5 s between events: 5 or 6 events take 6 s or more.
BOUNDED=(
	"openai-chat|{\"include_usage\":true}|openai-chat-stream.sse"
	"deepseek-chat|-|deepseek-chat-stream.sse"
	"zhipu-chat|-|zhipu-chat-stream.sse"
	"moonshot-chat|-|moonshot-chat-stream.sse"
)
tg_mock_config '{"chunk_delay_ms":1500}' || tg_bail "mock config failed"
pids=()
bodies=()
for ((i = 0; i < ${#BOUNDED[@]}; i++)); do
	IFS='|' read -r model opts fixture <<<"${BOUNDED[i]}"
	start_stream "$T2" "$i" "$model" "$opts"
	pids+=("$STREAM_PID")
	bodies+=("$T2/$i.body")
done
wait_first_bytes 15 "${bodies[@]}" ||
	tg_bail "bounded SIGTERM: the streams did not all start within 15 s"
tg_mock_reset || tg_bail "mock reset failed"
t0=$EPOCHREALTIME
kill -TERM "$TG_GW_PID"
wait_exit "$TG_GW_PID" 20
t1=$EPOCHREALTIME
TG_GW_PID=
assert_eq "SIGTERM, shutdown_timeout = 1000: tollgated exits 0" \
	0 "$TG_STOP_STATUS"
tg_log "bounded SIGTERM: exited $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s after the signal"
for pid in "${pids[@]}"; do
	wait "$pid"
done
bad=()
for ((i = 0; i < ${#BOUNDED[@]}; i++)); do
	IFS='|' read -r model opts fixture <<<"${BOUNDED[i]}"
	strict_prefix "$T2/$i.body" "$FIXTURES/$fixture" ||
		bad+=("#$i $model: got $(wc -c <"$T2/$i.body") of $(wc -c <"$FIXTURES/$fixture") bytes, curl rc $(cat "$T2/$i.rc")")
done
if [ ${#bad[@]} = 0 ]; then
	tg_ok "shutdown_timeout: the slow streams were cut, not waited for"
else
	tg_not_ok "shutdown_timeout: the slow streams were cut, not waited for" \
		"each client should hold a strict prefix of its fixture" "${bad[@]}"
fi
ids_of "$T2"/*.headers >"$T2/ids"
bound_ids=$(sql_id_list <"$T2/ids")
tg_psql "SELECT request_id, count(*) OVER (PARTITION BY request_id),
		usage_source, streamed, error ~* 'shutdown', prompt_tokens > 0
	 FROM usage_records WHERE request_id IN ($bound_ids)" |
	sort >"$T2/actual"
sed 's/$/|1|estimated|t|t|t/' "$T2/ids" | sort >"$T2/expected"
if [ "$(grep -c . "$T2/ids")" = ${#BOUNDED[@]} ] &&
	cmp -s "$T2/expected" "$T2/actual"; then
	tg_ok "shutdown_timeout: each cut stream has one record, estimated, error 'shutdown'"
else
	tg_not_ok "shutdown_timeout: each cut stream has one record, estimated, error 'shutdown'" \
		"$(diff "$T2/expected" "$T2/actual" | head -n 12)" \
		"errors written: $(tg_psql "SELECT string_agg(DISTINCT coalesce(error, 'NULL'), '; ') FROM usage_records WHERE request_id IN ($bound_ids)")"
fi

# ---------------------------------------------------------------------------
# 3. SIGHUP under load: an alias moves from openai to deepseek.

mv "$TG_TMP/gateway.log" "$TG_TMP/gateway-bound.log"
ROUTE_OPENAI="[route alias-chat]
target = openai:openai-chat"
ROUTE_DEEPSEEK="[route alias-chat]
target = deepseek:deepseek-chat"
TG_EXTRA_SECTIONS=$ROUTE_OPENAI
tg_start_gateway
CONF=$TG_TMP/tollgate.conf

# Nothing is left over from the stops above: the start shipped any journal,
# and no record came twice.
n=$(wait_rows "$term_ids" "$N_TERM" 5)
dups=$(tg_psql "SELECT count(*) FROM (SELECT request_id FROM usage_records
		WHERE request_id IN ($term_ids) GROUP BY 1 HAVING count(*) > 1) d")
assert_eq "after a restart the SIGTERM streams still have one record each" \
	"$N_TERM|0" "$n|$dups"

# rewrite_config EXTRA_SECTIONS [LISTEN] : replaces the config file at once
# (rename), on the same ports unless LISTEN is given.
rewrite_config() {
	local port=$TG_GW_PORT
	TG_EXTRA_SECTIONS=$1
	[ -n "${2:-}" ] && TG_GW_PORT=$2
	tg_write_config "$CONF.new"
	TG_GW_PORT=$port
	mv -f "$CONF.new" "$CONF"
}

# loader N : requests alias-chat, streamed and not in turn, until
# $LOAD/stop exists; one line per request in $LOAD/N.log:
# name kind start end curl_rc http_status request_id.
loader() {
	local n=$1 i kind body t0 t1 out rc
	local bs bj
	bs=$(tg_chat_body alias-chat '{"include_usage":true}')
	bj=$(tg_chat_body alias-chat)
	for ((i = 0; i < 1000; i++)); do
		[ -e "$LOAD/stop" ] && break
		if (((i + n) % 2)); then
			kind=s body=$bs
		else
			kind=j body=$bj
		fi
		t0=$EPOCHREALTIME
		out=$(curl -sS -N --max-time 20 -H 'Content-Type: application/json' \
			-H "Authorization: Bearer $KEY" --data-binary "$body" \
			-o "$LOAD/$n.$i.body" \
			-w '%{http_code} %header{x-request-id}' \
			"$TG_URL/v1/chat/completions" 2>>"$LOAD/$n.err")
		rc=$?
		t1=$EPOCHREALTIME
		echo "$n.$i $kind $t0 $t1 $rc $out" >>"$LOAD/$n.log"
	done
}

LOAD=$TG_TMP/load
mkdir -p "$LOAD"
# A slow stream that is in flight across the reload.
tg_mock_config '{"chunk_delay_ms":600}' || tg_bail "mock config failed"
start_stream "$LOAD" inflight alias-chat '{"include_usage":true}'
inflight_pid=$STREAM_PID
wait_first_bytes 10 "$LOAD/inflight.body" ||
	tg_bail "SIGHUP: the slow stream did not start within 10 s"
tg_mock_reset || tg_bail "mock reset failed"

lpids=()
for ((n = 0; n < N_LOADERS; n++)); do
	loader "$n" &
	lpids+=($!)
done
sleep 1
rewrite_config "$ROUTE_DEEPSEEK"
reloaded_before=$(log_count "configuration reloaded")
kill -0 "$inflight_pid" 2>/dev/null
inflight_alive=$?
t_hup=$EPOCHREALTIME
kill -HUP "$TG_GW_PID"
if wait_log "configuration reloaded" "$reloaded_before" 5; then
	tg_ok "SIGHUP: the log says \"configuration reloaded\""
else
	tg_not_ok "SIGHUP: the log says \"configuration reloaded\"" \
		"$(grep -i -E 'hup|reload|config' "$TG_TMP/gateway.log" | tail -n 3)"
fi
t_reloaded=$EPOCHREALTIME
sleep 1.5
touch "$LOAD/stop"
for pid in "${lpids[@]}"; do
	wait "$pid"
done
wait "$inflight_pid"
[ "$inflight_alive" = 0 ] ||
	tg_not_ok "SIGHUP: the slow stream was still in flight when the signal went" \
		"it ended before; the in-flight check below proves nothing"

# Which provider's bytes each request got: labels by content.
declare -A label
for f in openai-chat.json openai-chat-stream.sse deepseek-chat.json \
	deepseek-chat-stream.sse; do
	label[$(md5sum <"$FIXTURES/$f" | cut -c 1-32)]=${f%%-*}
done
cat "$LOAD"/[0-9]*.log >"$LOAD/all"
total=$(grep -c . "$LOAD/all")
(cd "$LOAD" && md5sum -- [0-9]*.body) | while read -r sum file; do
	echo "${file%.body} ${label[$sum]:-other}"
done | sort >"$LOAD/labels"

failed=$(awk '$5 != 0 || $6 != 200' "$LOAD/all")
if [ "$total" -gt 0 ] && [ -z "$failed" ]; then
	tg_ok "SIGHUP under load: all $total requests answered 200, none dropped"
else
	tg_not_ok "SIGHUP under load: all $total requests answered 200, none dropped" \
		"$(echo "$failed" | head -n 8)" "$(cat "$LOAD"/*.err | sort | uniq -c | head -n 5)"
fi

join_records
# joined: rid name kind start end rc status label provider upstream_model
before=$(awk -v t="$t_hup" '$5 < t' "$LOAD/joined")
after=$(awk -v t="$t_reloaded" '$4 > t' "$LOAD/joined")
n_before=$(grep -c . <<<"$before")
n_after=$(grep -c . <<<"$after")
wrong=$(awk '!($8 == "openai" && $9 == "openai" && $10 == "openai-chat")' <<<"$before" | grep .)
if [ "$n_before" -gt 0 ] && [ -z "$wrong" ]; then
	tg_ok "SIGHUP: the $n_before requests done before it went to openai (bytes and record)"
else
	tg_not_ok "SIGHUP: the requests done before it went to openai (bytes and record)" \
		"$n_before requests finished before the signal" "$(head -n 6 <<<"$wrong")"
fi
wrong=$(awk '!($8 == "deepseek" && $9 == "deepseek" && $10 == "deepseek-chat")' <<<"$after" | grep .)
if [ "$n_after" -gt 0 ] && [ -z "$wrong" ]; then
	tg_ok "SIGHUP: the $n_after requests begun after the reload went to deepseek (bytes and record)"
else
	tg_not_ok "SIGHUP: the requests begun after the reload went to deepseek (bytes and record)" \
		"$n_after requests started after the reload was logged" "$(head -n 6 <<<"$wrong")"
fi
# Around the reload either route may apply, but each record names the
# provider whose bytes the client got (records may still be in flight).
tg_wait_until -i 0.2 10 'all_joined || { join_records; false; }'
wrong=$(awk 'NF != 10 || $8 != $9 || $10 != $9 "-chat"' "$LOAD/joined")
if [ -z "$wrong" ]; then
	tg_ok "SIGHUP: each of the $total requests has a record naming the provider that served it"
else
	tg_not_ok "SIGHUP: each of the $total requests has a record naming the provider that served it" \
		"rid name kind start end rc status got provider upstream_model" \
		"$(head -n 8 <<<"$wrong")"
fi
tg_log "SIGHUP load: $total requests, $n_before before the signal, $n_after after the reload"

assert_file_eq "SIGHUP: the stream in flight across the reload kept openai's bytes" \
	"$FIXTURES/openai-chat-stream.sse" "$LOAD/inflight.body"
tg_check_row "SIGHUP: the stream in flight across the reload is billed to openai" \
	"$(ids_of "$LOAD/inflight.headers")" \
	"provider, upstream_model, usage_source, prompt_tokens, completion_tokens" \
	"openai|openai-chat|reported|25|9"

# A broken file is rejected whole: the alias stays on deepseek although the
# broken file moves it back to openai.
rewrite_config "$ROUTE_OPENAI

[route broken-chat]
target = no-such-provider:broken-chat"
"$TG_GATEWAY_BIN" -t -c "$CONF" >"$TG_TMP/broken.check" 2>&1 &&
	tg_bail "the broken config passes tollgated -t; the test needs a broken one"
failed_before=$(log_count "reload failed")
kill -HUP "$TG_GW_PID"
if wait_log "reload failed" "$failed_before" 5; then
	tg_ok "SIGHUP with a broken config: the log says \"reload failed\""
else
	tg_not_ok "SIGHUP with a broken config: the log says \"reload failed\"" \
		"tollgated -t says: $(head -n 2 "$TG_TMP/broken.check")" \
		"$(tail -n 3 "$TG_TMP/gateway.log")"
fi
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body alias-chat)"
assert_eq "broken config: the gateway still serves (status)" 200 "$TG_STATUS"
assert_file_eq "broken config: the alias keeps the previous route (deepseek's bytes)" \
	"$FIXTURES/deepseek-chat.json" "$TG_BODY"
tg_check_row "broken config: the record names the previous route" "$TG_RID" \
	"provider, upstream_model" "deepseek|deepseek-chat"

# A change of listen needs a restart: said so, and the old socket serves on.
NEW_PORT=$(tg_free_port) || tg_bail "no free port"
rewrite_config "$ROUTE_DEEPSEEK" "$NEW_PORT"
restart_before=$(grep -c -i 'restart' "$TG_TMP/gateway.log")
kill -HUP "$TG_GW_PID"
tg_wait_until -i 0.05 5 \
	'[ "$(grep -c -i restart "$TG_TMP/gateway.log")" -gt "$restart_before" ]'
line=$(grep -i 'restart' "$TG_TMP/gateway.log" | tail -n +$((restart_before + 1)) | head -n 1)
assert_match "SIGHUP with a new listen: logged as needing a restart" \
	'listen.*restart|restart.*listen' "$line"
tg_http POST /v1/chat/completions "$KEY" "$(tg_chat_body alias-chat)"
assert_eq "new listen: the gateway still serves on the old address" \
	"200 0" "$TG_STATUS $TG_CURL_RC"
assert_true "new listen: nothing listens on the new address yet" \
	port_free "$NEW_PORT"

tg_done
