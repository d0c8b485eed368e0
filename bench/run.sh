#!/bin/bash
# bench/run.sh - throughput and added latency of tollgated against the mock
# upstream, and a check that every request through it left one usage record.
#
# Starts a private PostgreSQL (unix socket only), the mock upstream and
# tollgated on free ports in a temporary directory, drives the same wrk load
# (bench/post.lua) at the mock directly and through the gateway for three
# scenarios, prints a table, then compares the usage records in PostgreSQL
# with the requests wrk completed through the gateway. Everything it started
# is stopped by the EXIT trap.
#
# Environment: DURATION (10s; N, Ns or Nm), CONNECTIONS (32), THREADS (2),
# WORKERS (gateway event-loop threads, 2), BUILD (build directory; default
# build/, else build-bench/, else build-dev/, the first holding
# src/tollgated), PG_BINDIR (PostgreSQL server binaries, found when unset),
# LOG_LEVEL (of tollgated, info: a line per request), ROUNDS (3: each
# scenario runs direct, nginx and gateway in turn this many times, and the
# table shows the medians and the median of the rounds' ratios, so that a
# noisy moment on a shared machine weighs on one round only), KEEP=1 keeps
# the temporary directory.
#
# Exit status: 0 when every response was 200 and the usage records match,
# 1 when a check failed, 2 when the set-up failed. Timings are reported,
# never judged.

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"

defaults DURATION=10s CONNECTIONS=32 THREADS=2 WORKERS=2 STREAMS=10000 \
	ROUNDS=3 "ONLY=chat stream stream-5ms-chunks chat-via-anthropic chat-admission scale streams"
MAX_CONNS=8192
# Longest wait for the usage writer to store a scenario's records.
ROWS_WAIT=30
# nginx, the reference proxy (start_nginx).
NGINX_PID=
NGINX_URL=

# Starts nginx as a plain reverse proxy in front of the mock, the reference
# a lean C proxy sets: as many workers as the gateway, keepalive
# connections to the upstream, no access log, no buffering of answers
# (streams go through as they come). Sets NGINX_URL; leaves it empty when
# nginx is not installed (Debian: nginx-light).
start_nginx() {
	local port user=
	NGINX_URL=
	command -v nginx >/dev/null 2>&1 || {
		say "nginx is not installed (apt-get install nginx-light): no reference row"
		return 0
	}
	port=$(free_port) || die "no free port"
	mkdir -p "$TMP/nginx/logs"
	[ "$(id -u)" = 0 ] && user="user root;"
	cat >"$TMP/nginx.conf" <<EOF
$user
daemon off;
worker_processes $WORKERS;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 8192; }
http {
	access_log off;
	client_body_temp_path $TMP/nginx/body;
	proxy_temp_path $TMP/nginx/proxy;
	upstream mock {
		server ${MOCK_URL#http://};
		keepalive 256;
	}
	server {
		listen 127.0.0.1:$port backlog=4096;
		location / {
			proxy_pass http://mock;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_buffering off;
		}
	}
}
EOF
	nginx -p "$TMP/nginx" -c "$TMP/nginx.conf" >>"$TMP/nginx.log" 2>&1 &
	NGINX_PID=$!
	wait_http "http://127.0.0.1:$port/_mock/stats" "$NGINX_PID" 100 ||
		die "nginx did not start (see $TMP/nginx/error.log)"
	NGINX_URL=http://127.0.0.1:$port
}

# mock_post PATH [JSON] : a control request to the mock.
mock_post() {
	curl -sS -f -o /dev/null --max-time 5 -X POST \
		-H 'Content-Type: application/json' --data-binary "${2:-}" \
		"$MOCK_URL$1" || die "mock control $1 failed"
}

# Prints a field of the mock's counters.
mock_stat() {
	curl -sS -f --max-time 5 "$MOCK_URL/_mock/stats" | jq -r ".$1"
}

# wait_rows SINCE WANT : waits (bounded) until the usage records with ts >=
# SINCE number WANT and stay so for a moment; prints the last count.
wait_rows() {
	local since=$1 want=$2 n=0 i
	local q="SELECT count(*) FROM usage_records WHERE ts >= '$since'"
	for ((i = 0; i < ROWS_WAIT * 5; i++)); do
		n=$(psql_q "$q") || n=0
		if [ "$n" -ge "$want" ]; then
			sleep 0.5
			n=$(psql_q "$q") || n=0
			break
		fi
		sleep 0.2
	done
	echo "$n"
}

# scenario NAME MODEL STREAM CHUNK_DELAY_MS PROMPT COMPLETION [GW_MODEL] :
# measures the mock directly, through nginx and through the gateway (asking
# for GW_MODEL there, MODEL by default), ROUNDS times in turn, then checks
# the usage records of each gateway run: one per request, each 200 with
# the fixture's tokens as reported by the provider.
scenario() {
	local name=$1 model=$2 stream=$3 delay=$4 prompt=$5 completion=$6
	local gw_model=${7:-$2} body gw_body since rows bad n r
	local -a d_rps=() d_p50=() d_p99=() n_rps=() n_p50=() n_p99=()
	local -a g_rps=() g_p50=() g_p99=() r_dir=() r_ngx=() a_ngx=() a_gw=()
	local g_req=0 g_rows=0 g_bad=0
	body='{"model":"'$model'","messages":[{"role":"user","content":"Hello, who are you?"}]'
	[ "$stream" = 1 ] &&
		body+=',"stream":true,"stream_options":{"include_usage":true}'
	body+='}'
	gw_body=${body/\"$model\"/\"$gw_model\"}

	for ((r = 1; r <= ROUNDS; r++)); do
		mock_post /_mock/reset
		mock_post /_mock/config '{"latency_ms":0,"chunk_delay_ms":'"$delay"'}'
		run_wrk "$name-direct" "$MOCK_URL/openai/v1/chat/completions" "$body"
		d_rps+=("$R_RPS") d_p50+=("$R_P50") d_p99+=("$R_P99")
		n=$(mock_stat failed)
		[ "$n" = 0 ] || fail "$name-direct: the mock counted $n failed requests"
		if [ -n "$NGINX_URL" ]; then
			mock_post /_mock/reset
			mock_post /_mock/config '{"latency_ms":0,"chunk_delay_ms":'"$delay"'}'
			run_wrk "$name-nginx" "$NGINX_URL/openai/v1/chat/completions" "$body"
			n_rps+=("$R_RPS") n_p50+=("$R_P50") n_p99+=("$R_P99")
		fi

		mock_post /_mock/reset
		mock_post /_mock/config '{"latency_ms":0,"chunk_delay_ms":'"$delay"'}'
		since=$(psql_q "SELECT now()")
		run_wrk "$name-gateway" "$GW_URL/v1/chat/completions" "$gw_body"
		g_rps+=("$R_RPS") g_p50+=("$R_P50") g_p99+=("$R_P99")
		n=$(mock_stat requests)
		[ "$n" = "$R_REQ" ] ||
			fail "$name: the mock received $n requests from the gateway, wrk completed $R_REQ"
		rows=$(wait_rows "$since" "$R_REQ")
		bad=$(psql_q "SELECT count(*) FROM usage_records WHERE ts >= '$since'
			AND NOT (status = 200 AND usage_source = 'reported'
			AND NOT client_aborted AND prompt_tokens = $prompt
			AND completion_tokens = $completion
			AND streamed = $([ "$stream" = 1 ] && echo true || echo false))")
		[ "$rows" = "$R_REQ" ] ||
			fail "$name: $rows usage records for $R_REQ requests completed through the gateway"
		g_req=$((g_req + R_REQ)) g_rows=$((g_rows + rows))
		g_bad=$((g_bad + bad))
		# This round's ratios and added p50s.
		r_dir+=("$(awk -v g="$R_RPS" -v d="${d_rps[-1]}" 'BEGIN { printf "%.2f", d ? g / d : 0 }')")
		a_gw+=("$(awk -v g="$R_P50" -v d="${d_p50[-1]}" 'BEGIN { printf "%+.2f", g - d }')")
		if [ -n "$NGINX_URL" ]; then
			r_ngx+=("$(awk -v g="$R_RPS" -v n="${n_rps[-1]}" 'BEGIN { printf "%.2f", n ? g / n : 0 }')")
			a_ngx+=("$(awk -v n="${n_p50[-1]}" -v d="${d_p50[-1]}" 'BEGIN { printf "%+.2f", n - d }')")
		fi
	done
	[ -n "$NGINX_URL" ] || { n_rps=(-) n_p50=(-) n_p99=(-) r_ngx=(-) a_ngx=(-); }
	printf '%-20s %8s %8s %8s %6s %6s %6s/%-6s %6s/%-6s %6s/%-6s %7s %7s\n' "$name" \
		"$(median "${d_rps[@]}")" "$(median "${n_rps[@]}")" \
		"$(median "${g_rps[@]}")" "$(median "${r_dir[@]}")" \
		"$(median "${r_ngx[@]}")" \
		"$(median "${d_p50[@]}")" "$(median "${d_p99[@]}")" \
		"$(median "${n_p50[@]}")" "$(median "${n_p99[@]}")" \
		"$(median "${g_p50[@]}")" "$(median "${g_p99[@]}")" \
		"$(median "${a_ngx[@]}")" "$(median "${a_gw[@]}")" \
		>>"$TMP/table"
	if [ "$ROUNDS" -gt 1 ]; then
		printf '%-20s gw/nginx %s; gateway adds %s ms\n' "$name" \
			"${r_ngx[*]}" "${a_gw[*]}" >>"$TMP/rounds"
	fi
	printf '%-22s %10s %10s %8s\n' "$name" "$g_req" "$g_rows" "$g_bad" \
		>>"$TMP/usage"
	TOTAL_REQ=$((TOTAL_REQ + g_req))
	TOTAL_ROWS=$((TOTAL_ROWS + g_rows))
	[ "$g_bad" = 0 ] ||
		fail "$name: $g_bad usage records are not 200 with the fixture's reported tokens"
}

# The gateway's resident memory now and at its peak, in MB: "RSS PEAK".
gw_rss() {
	awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 }
		END { printf "%.0f %.0f", r / 1024, h / 1024 }' "/proc/$GW_PID/status"
}

# scale WORKERS CONNECTIONS... : non-streamed chat through a gateway with
# WORKERS workers at each number of connections: a row each of req/s,
# p50/p99 and the gateway's RSS after the run and at its peak.
scale() {
	local workers=$1 c saved_c=$CONNECTIONS saved_w=$WORKERS
	local body='{"model":"openai-chat","messages":[{"role":"user","content":"Hello, who are you?"}]}'
	shift
	if [ "$workers" != "$WORKERS" ]; then
		stop_pid "$GW_PID"
		WORKERS=$workers
		start_gateway
	fi
	for c in "$@"; do
		CONNECTIONS=$c
		run_wrk "scale-w$workers-c$c" "$GW_URL/v1/chat/completions" "$body"
		printf '%-8s %6s %9s %8s / %-8s %s\n' "$workers" "$c" "$R_RPS" \
			"$R_P50" "$R_P99" "$(gw_rss | awk '{ print $1 " / " $2 }')" \
			>>"$TMP/scale"
	done
	CONNECTIONS=$saved_c
	WORKERS=$saved_w
}

# The admission path on: the tenant under a monthly token quota and the
# tenant and its key under rate limits, all too high to refuse anything,
# so every request pays for the checks, a reservation and a settlement in
# PostgreSQL, and the x-ratelimit-* headers. They are cleared after.
admission() {
	local n
	"$CTL" --database "$DB" quota set --tenant bench --period month \
		--tokens 1000000000000 >>"$TMP/ctl.log" 2>&1 ||
		die "tollctl quota set failed"
	"$CTL" --database "$DB" limit set --tenant bench --rpm 2000000000 \
		--tpm 1000000000000 --concurrency 100000 >>"$TMP/ctl.log" 2>&1 ||
		die "tollctl limit set failed"
	"$CTL" --database "$DB" limit set --tenant bench --key "${KEY:0:10}" \
		--rpm 2000000000 --tpm 1000000000000 >>"$TMP/ctl.log" 2>&1 ||
		die "tollctl limit set --key failed"
	for ((n = 0; n < 100; n++)); do
		curl -s -D - -o /dev/null -H "Authorization: Bearer $KEY" \
			-d '{"model":"openai-chat","messages":[]}' \
			"$GW_URL/v1/chat/completions" | grep -qi '^x-ratelimit-limit-requests' &&
			break
		sleep 0.1
	done
	[ "$n" -lt 100 ] || die "the rate limits did not reach the gateway"
	scenario chat-admission openai-chat 0 0 1200 85
	"$CTL" --database "$DB" quota clear --tenant bench --period month \
		>>"$TMP/ctl.log" 2>&1 || die "tollctl quota clear failed"
	"$CTL" --database "$DB" limit clear --tenant bench --key "${KEY:0:10}" \
		>>"$TMP/ctl.log" 2>&1 || die "tollctl limit clear --key failed"
	"$CTL" --database "$DB" limit clear --tenant bench \
		>>"$TMP/ctl.log" 2>&1 || die "tollctl limit clear failed"
	# Until the gateway has the change, the scaling runs would pay for it.
	for ((n = 0; n < 100; n++)); do
		curl -s -D - -o /dev/null -H "Authorization: Bearer $KEY" \
			-d '{"model":"openai-chat","messages":[]}' \
			"$GW_URL/v1/chat/completions" | grep -qi '^x-ratelimit-limit-requests' ||
			break
		sleep 0.1
	done
	[ "$n" -lt 100 ] || die "the cleared rate limits did not reach the gateway"
}

# part NAME : whether NAME is among the parts ONLY asks for.
part() {
	[[ " $ONLY " == *" $1 "* ]]
}

# streams_run NAME URL KEY BODY N RAMP_MS : N concurrent streams
# (bench/streams); sets S_OK S_TTFT50 S_TTFT99 S_BODIES S_HASH, and S_RSS
# with the gateway's peak RSS in MB when the run went through it.
streams_run() {
	local out
	out=$("$STREAMS_BIN" "$2" "$3" "$4" "$5" "$6" 2>&1) ||
		fail "$1: bench/streams failed: $out"
	echo "$out" >"$TMP/streams.$1"
	S_OK=$(sed -n 's/^STREAMS .*\<ok=\([0-9]*\).*/\1/p' <<<"$out")
	S_TTFT50=$(sed -n 's/^STREAMS .*ttft_p50_us=\([0-9]*\).*/\1/p' <<<"$out")
	S_TTFT99=$(sed -n 's/^STREAMS .*ttft_p99_us=\([0-9]*\).*/\1/p' <<<"$out")
	S_BODIES=$(sed -n 's/^STREAMS .*bodies=\([0-9]*\).*/\1/p' <<<"$out")
	S_HASH=$(sed -n 's/^STREAMS .*hash=\([0-9a-f]*\).*/\1/p' <<<"$out")
	[ "$S_OK" = "$5" ] || fail "$1: $S_OK of $5 streams answered 200 to the end"
}

# streams_case NAME N RAMP_MS : N streams of one event a second, straight
# to the mock and then through a freshly started gateway (its RSS peak is
# theirs); a row of the streams table; every stream must have its record,
# and the gateway's events must be the mock's, byte for byte.
streams_case() {
	local name=$1 n=$2 ramp=$3 since rows d50 d99 dh body gw_body
	body='{"model":"openai-chat-stream","messages":[{"role":"user","content":"Hello, who are you?"}],"stream":true,"stream_options":{"include_usage":true}}'
	gw_body=$body
	mock_post /_mock/reset
	mock_post /_mock/config '{"latency_ms":0,"chunk_delay_ms":1000}'
	streams_run "$name-direct" "$MOCK_URL/openai/v1/chat/completions" x "$body" "$n" "$ramp"
	d50=$S_TTFT50 d99=$S_TTFT99 dh=$S_HASH
	stop_pid "$GW_PID"
	start_gateway
	since=$(psql_q "SELECT now()")
	streams_run "$name-gateway" "$GW_URL/v1/chat/completions" "$KEY" "$gw_body" "$n" "$ramp"
	[ "$S_BODIES" = 1 ] && [ "$S_HASH" = "$dh" ] ||
		fail "$name: the events through the gateway differ from the mock's"
	rows=$(wait_rows "$since" "$n")
	[ "$rows" = "$n" ] || fail "$name: $rows usage records for $n streams"
	TOTAL_REQ=$((TOTAL_REQ + n))
	TOTAL_ROWS=$((TOTAL_ROWS + rows))
	printf '%-22s %10s %10s %8s\n' "$name" "$n" "$rows" 0 >>"$TMP/usage"
	printf '%-10s %7s %7s %13s %13s %9s %s\n' "$name" "$n" "$S_OK" \
		"$(awk -v a="$d50" -v b="$d99" 'BEGIN { printf "%.2f/%.2f", a / 1000, b / 1000 }')" \
		"$(awk -v a="$S_TTFT50" -v b="$S_TTFT99" 'BEGIN { printf "%.2f/%.2f", a / 1000, b / 1000 }')" \
		"$(awk -v g="$S_TTFT50" -v d="$d50" 'BEGIN { printf "%+.2f", (g - d) / 1000 }')" \
		"$(gw_rss | awk '{ print $2 }')" >>"$TMP/streams"
}

main() {
	local n
	find_tools
	STREAMS_BIN=$BUILD/bench/streams
	if part streams; then
		make -C "$BUILD" bench/streams >/dev/null ||
			die "cannot build bench/streams"
	fi
	# A connection is a descriptor: wrk's, the mock's and the gateway's
	# (two a stream: its client and its upstream) are raised as far as
	# allowed.
	ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
	n=$((($(ulimit -n) - 200) / 2))
	[ "$STREAMS" -le "$n" ] || {
		say "streams: $STREAMS need $((2 * STREAMS + 200)) descriptors in the gateway; the limit here is $(ulimit -n): $n streams"
		STREAMS=$n
	}
	[ "$STREAMS" -gt "$MAX_CONNS" ] && MAX_CONNS=$((STREAMS + 100))

	make_tmp tollgate-bench NGINX_PID

	export TOLLGATE_KEY_SECRET BENCH_UPSTREAM_KEY=bench-upstream-key
	TOLLGATE_KEY_SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	say "build $BUILD, PostgreSQL $PG_BINDIR, work directory $TMP"
	start_pg
	"$CTL" --database "$DB" tenant add bench >>"$TMP/ctl.log" 2>&1 ||
		die "tollctl tenant add failed"
	KEY=$("$CTL" --database "$DB" key issue --tenant bench -q 2>>"$TMP/ctl.log") &&
		[ -n "$KEY" ] || die "tollctl key issue failed"
	start_mock
	# The stream's route, and an OpenAI chat route to an Anthropic model.
	GW_SECTIONS="[route openai-chat-stream]
target = openai:openai-chat-stream

[provider anthropic]
type = anthropic
base_url = $MOCK_URL/anthropic/v1
api_key_env = BENCH_UPSTREAM_KEY

[route claude-via-openai]
target = anthropic:anthropic-messages"
	start_nginx
	start_gateway
	[ "$(http_code "$GW_URL/v1/chat/completions" -H "Authorization: Bearer $KEY" \
		-H 'Content-Type: application/json' \
		-d '{"model":"openai-chat","messages":[]}')" = 200 ] ||
		die "a request through the gateway did not answer 200"
	say "gateway $GW_URL (workers $WORKERS), mock $MOCK_URL; wrk: $THREADS threads, $CONNECTIONS connections, ${SECS}s per run"

	TOTAL_REQ=0
	TOTAL_ROWS=0
	: >"$TMP/table"
	: >"$TMP/rounds"
	: >"$TMP/usage"
	part chat && scenario chat openai-chat 0 0 1200 85
	part stream && scenario stream openai-chat-stream 1 0 25 9
	part stream-5ms-chunks && scenario stream-5ms-chunks openai-chat-stream 1 5 25 9
	# An OpenAI chat request routed to an Anthropic model: the request,
	# the answer and the usage translated (direct: the same request to the
	# mock's OpenAI endpoint).
	part chat-via-anthropic && scenario chat-via-anthropic openai-chat 0 0 2098 120 claude-via-openai
	part chat-admission && admission

	# How throughput, latency and memory grow with connections and
	# workers.
	: >"$TMP/scale"
	if part scale; then
		scale "$WORKERS" 32 256 1024
		scale 1 32 256 1024
	fi
	# Streams: the time to the first event a gateway adds, and how many
	# slow streams it holds at once in how much memory.
	: >"$TMP/streams"
	if part streams; then
		streams_case ttft 200 1000
		streams_case many "$STREAMS" 5000
	fi

	stop_gateway

	printf '\n%s, %s workers; wrk %s threads, %s connections, %ss per run; %s CPUs\n\n' \
		"$("$GATEWAY" -V 2>/dev/null | head -n 1)" "$WORKERS" "$THREADS" \
		"$CONNECTIONS" "$SECS" "$(nproc 2>/dev/null || echo '?')"
	if [ -s "$TMP/table" ]; then
		printf '%-20s %8s %8s %8s %6s %6s %13s %13s %13s %7s %7s\n' scenario \
			direct nginx gateway "gw/" "gw/" "direct" "nginx" "gateway" \
			"nginx" "gateway"
		printf '%-20s %8s %8s %8s %6s %6s %13s %13s %13s %7s %7s\n' "" \
			"req/s" "req/s" "req/s" direct nginx "p50/p99 ms" "p50/p99 ms" \
			"p50/p99 ms" "adds" "adds"
		cat "$TMP/table"
		if [ -s "$TMP/rounds" ]; then
			printf '\nthe %s rounds, in the order they ran (the table shows medians):\n' "$ROUNDS"
			cat "$TMP/rounds"
		fi
	fi
	if [ -s "$TMP/scale" ]; then
		printf '\n%-8s %6s %9s %19s %s\n' workers conns "req/s" \
			"p50 / p99 ms" "RSS / peak MB"
		cat "$TMP/scale"
	fi
	if [ -s "$TMP/streams" ]; then
		printf '\n%-10s %7s %7s %13s %13s %9s %s\n' streams count ok \
			"direct TTFT" "gateway TTFT" "TTFT" "gateway"
		printf '%-10s %7s %7s %13s %13s %9s %s\n' "" "" "" \
			"p50/p99 ms" "p50/p99 ms" "adds" "peak MB"
		cat "$TMP/streams"
	fi
	printf '\n%-22s %10s %10s %8s\n' "usage check" "requests" "records" "wrong"
	cat "$TMP/usage"
	printf '%-22s %10s %10s\n' total "$TOTAL_REQ" "$TOTAL_ROWS"
	awk '$1 == "chat" { off = $4 } $1 == "chat-admission" { on = $4 }
		END { if (off && on) printf "\nadmission checks on / off (gateway req/s): %.2f\n", on / off }' \
		"$TMP/table"
	if [ "$TOTAL_REQ" != "$TOTAL_ROWS" ]; then
		fail "usage records ($TOTAL_ROWS) do not match the requests wrk completed through the gateway ($TOTAL_REQ)"
	fi
	exit_if_failed
	printf '\nall responses 200; usage records match the requests (%s)\n' \
		"$TOTAL_REQ"
}

main "$@"
