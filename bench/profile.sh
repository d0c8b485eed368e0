#!/bin/bash
# bench/profile.sh - what one request costs tollgated: system calls by
# name, allocations (malloc and free) and CPU time per request, for a
# non-streamed chat request and a stream, with the default configuration
# (metering, journal, ledger, a log line per request).
#
# Runs on the test harness (tests/lib.sh: private PostgreSQL, mock, gateway
# on free ports) from a build directory: BUILD (default build/). For each
# scenario wrk sends requests for SECS seconds (3) over CONNECTIONS
# connections (32) three times: under `strace -c -f` (system calls), under
# `perf stat` on uprobes of libc's malloc and free (allocations; needs
# root, skipped otherwise), and bare (CPU time per request from
# /proc/PID/stat). The first two slow the gateway down; the counts per
# request are what they are for. Needs wrk, strace and perf (Debian:
# linux-perf).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SECS=${SECS:-3}
CONNECTIONS=${CONNECTIONS:-32}
LIBC=$(ldconfig -p 2>/dev/null | awk '/libc\.so\.6 .*x86-64/ { print $NF; exit }')
for b in wrk strace; do
	command -v "$b" >/dev/null || { echo "profile: $b is needed" >&2; exit 2; }
done

top_builddir=$BUILD
TG_NAME=profile
# shellcheck source=../tests/lib.sh
. "$ROOT/tests/lib.sh" >/dev/null

tg_start_pg >/dev/null
tg_start_mock
tg_start_gateway
KEY=$(tg_issue_key bench) || tg_bail "cannot issue a key"
PROBES=0
if [ "$(id -u)" = 0 ] && command -v perf >/dev/null && [ -n "$LIBC" ]; then
	perf probe -q -x "$LIBC" malloc 2>/dev/null
	perf probe -q -x "$LIBC" free 2>/dev/null
	perf probe -l 2>/dev/null | grep -q 'probe_libc:malloc' && PROBES=1
fi

# load URL BODY : wrk for SECS seconds; prints the requests it completed.
load() {
	local out
	out=$(BENCH_ACTIVE_MS=$((SECS * 1000)) BENCH_BODY=$2 BENCH_KEY=$KEY \
		wrk -t1 -c"$CONNECTIONS" -d"$((SECS + 1))s" -s "$ROOT/bench/post.lua" \
		"$1" 2>&1)
	grep -q '^BENCH .* status=0 ' <<<"$out" ||
		{ echo "$out" >&2; tg_bail "answers that are not 200"; }
	sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p' <<<"$out"
}

# The gateway's CPU time so far, in clock ticks.
ticks() {
	awk '{ print $14 + $15 }' "/proc/$TG_GW_PID/stat"
}

# profile NAME BODY
profile() {
	local name=$1 body=$2 url=$TG_URL/v1/chat/completions n pid t0 t1
	load "$url" "$body" >/dev/null # warm: connections, caches
	strace -c -f -q -p "$TG_GW_PID" -o "$TG_TMP/strace.$name" &
	pid=$!
	sleep 0.5
	n=$(load "$url" "$body")
	kill -INT "$pid"
	wait "$pid" 2>/dev/null
	printf '\n%s: system calls per request (%d requests under strace)\n' "$name" "$n"
	awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
		calls = $4; sc = $NF
		if (calls / n >= 0.05) printf "  %-14s %7.2f\n", sc, calls / n
		total += calls }
		END { printf "  %-14s %7.2f\n", "total", total / n }' \
		"$TG_TMP/strace.$name" | sort -k2 -n -r
	if [ "$PROBES" = 1 ]; then
		perf stat -e probe_libc:malloc,probe_libc:free -p "$TG_GW_PID" \
			-x, -o "$TG_TMP/perf.$name" &
		pid=$!
		sleep 0.5
		n=$(load "$url" "$body")
		kill -INT "$pid"
		wait "$pid" 2>/dev/null
		awk -F, -v n="$n" -v name="$name" '$3 ~ /probe_libc/ {
			sub(/probe_libc:/, "", $3)
			printf "%s: %s per request: %.1f\n", name, $3, $1 / n }' \
			"$TG_TMP/perf.$name"
	fi
	t0=$(ticks)
	n=$(load "$url" "$body")
	t1=$(ticks)
	printf '%s: CPU per request: %d us (%d requests/s)\n' "$name" \
		"$(( (t1 - t0) * 1000000 / $(getconf CLK_TCK) / n ))" "$((n / SECS))"
}

MSG='"messages":[{"role":"user","content":"Hello, who are you?"}]'
profile chat "{\"model\":\"openai-chat\",$MSG}"
profile stream "{\"model\":\"openai-chat\",$MSG,\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
tg_done >/dev/null
