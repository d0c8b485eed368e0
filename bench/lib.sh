# bench/lib.sh - the helpers bench/run.sh and bench/console.sh share: a
# private PostgreSQL (unix socket only), the mock upstream and tollgated
# on free ports in a temporary directory, wrk runs through bench/post.lua,
# medians, failed checks, and the EXIT trap that stops all they started.
# shellcheck shell=bash
#
# Sourced once ROOT (the repository) is set. The scripts set what the
# helpers read: DURATION (find_tools turns it into SECS), THREADS,
# CONNECTIONS and KEY (run_wrk), WORKERS and MAX_CONNS (write_config),
# and where they differ, AUTH, GW_SETTINGS and GW_SECTIONS below.

FIXTURES=$ROOT/tests/fixtures/providers
LUA=$ROOT/bench/post.lua
# Seconds wrk keeps running after the last request was started, for the
# requests in flight to finish.
DRAIN=2

# What the helpers started, for cleanup to stop; FAILED counts the failed
# checks.
TMP=
PG_DATA=
MOCK_PID=
GW_PID=
WRK_PID=
FAILED=0
# curl arguments that authenticate to the gateway's admin address (asked
# for /readyz), lines added to its [tollgate] section and sections after
# its openai-chat route (write_config): none unless the script sets them.
AUTH=()
GW_SETTINGS=
GW_SECTIONS=

# Prints a progress message to stderr.
say() {
	printf '# %s\n' "$*" >&2
}

# Prints an error and exits with status 2.
die() {
	printf 'bench: %s\n' "$*" >&2
	exit 2
}

# Records a failed check and prints it loudly.
fail() {
	FAILED=$((FAILED + 1))
	printf '\n!!! FAIL: %s\n' "$*"
}

# Exits with status 1, saying how many, when a check failed.
exit_if_failed() {
	if [ "$FAILED" != 0 ]; then
		printf '\n!!! %d check(s) FAILED (see above)\n' "$FAILED"
		exit 1
	fi
}

# Prints the last lines of a log file to stderr, if it has any.
tail_log() {
	[ -s "$2" ] || return 0
	printf '# ---- last lines of %s ----\n' "$1" >&2
	tail -n 30 "$2" | sed 's/^/#   /' >&2
}

# defaults NAME=VALUE... : sets each NAME that is unset or empty (in the
# environment) to its VALUE.
defaults() {
	local a n
	for a in "$@"; do
		n=${a%%=*}
		[ -n "${!n:-}" ] || printf -v "$n" '%s' "${a#*=}"
	done
}

# Runs a PostgreSQL server command, as the postgres user when we are root.
pg_run() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Stops a process we started: SIGTERM, a bounded wait, then SIGKILL. Sets
# STOP_STATUS to its exit status (137 when it had to be killed).
stop_pid() {
	local pid=$1 i
	STOP_STATUS=0
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -KILL "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null
		STOP_STATUS=137
		return 0
	fi
	wait "$pid" 2>/dev/null
	STOP_STATUS=$?
}

# cleanup [NAME...] : the EXIT trap (make_tmp sets it). Shows the logs'
# tails when the set-up failed; stops wrk, the processes whose pids the
# variables NAME... hold, the gateway, the mock and PostgreSQL; removes
# the temporary directory.
cleanup() {
	local rc=$? name
	trap - EXIT INT TERM
	if [ "$rc" = 2 ] && [ -n "$TMP" ]; then
		tail_log tollgated "$TMP/gateway.log"
		tail_log mock_upstream "$TMP/mock.log"
		tail_log postgresql "$TMP/pg.log"
	fi
	stop_pid "$WRK_PID"
	for name in "$@"; do
		stop_pid "${!name}"
	done
	stop_pid "$GW_PID"
	stop_pid "$MOCK_PID"
	if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
		pg_run "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m fast -w stop \
			>/dev/null 2>&1
	fi
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		if [ "${KEEP:-0}" = 1 ]; then
			say "kept $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	exit "$rc"
}

# make_tmp PREFIX [NAME...] : creates the temporary directory TMP
# (PREFIX.XXXXXX) and sets the traps: on exit, cleanup (which stops the
# processes in the variables NAME... too); on SIGINT and SIGTERM, exit.
make_tmp() {
	local prefix=$1
	shift
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/$prefix.XXXXXX") ||
		die "cannot create a temporary directory"
	chmod 755 "$TMP"
	# shellcheck disable=SC2064 # the names, expanded now
	trap "cleanup $*" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# Prints the build directory: $BUILD, else the first of build, build-bench
# and build-dev that holds src/tollgated.
find_build() {
	local d
	if [ -n "${BUILD:-}" ]; then
		(cd "$BUILD" 2>/dev/null && pwd) || return 1
		return 0
	fi
	for d in build build-bench build-dev; do
		if [ -x "$ROOT/$d/src/tollgated" ]; then
			echo "$ROOT/$d"
			return 0
		fi
	done
	return 1
}

# Finds the PostgreSQL server binaries when PG_BINDIR does not hold them.
find_pg_bindir() {
	local d
	[ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ] && return 0
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null)
		[ -x "$d/initdb" ] && { PG_BINDIR=$d; return 0; }
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[ -x "$d/initdb" ] && { PG_BINDIR=$d; return 0; }
	done
	return 1
}

# Converts DURATION (N, Ns or Nm) to whole seconds.
duration_seconds() {
	case $1 in
	*[!0-9smh]* | "" | s | m) return 1 ;;
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}

# Sets SECS from DURATION; BUILD, GATEWAY, CTL and MOCK from the build;
# PG_BINDIR. Dies when one is wrong or missing, or when wrk, curl or jq is
# not installed.
find_tools() {
	local b
	SECS=$(duration_seconds "$DURATION") && [ "$SECS" -gt 0 ] ||
		die "DURATION must be N, Ns or Nm (got '$DURATION')"
	for b in wrk curl jq; do
		command -v "$b" >/dev/null 2>&1 || die "$b is not installed"
	done
	BUILD=$(find_build) ||
		die "no build with src/tollgated (set BUILD, or build into build/)"
	GATEWAY=$BUILD/src/tollgated
	CTL=$BUILD/src/tollctl
	MOCK=$BUILD/tests/mock_upstream
	for b in "$GATEWAY" "$CTL" "$MOCK"; do
		[ -x "$b" ] || die "$b is not built (make, then make check TESTS=)"
	done
	find_pg_bindir || die "PostgreSQL server binaries not found (set PG_BINDIR)"
}

# Whether something accepts connections on 127.0.0.1:PORT.
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints a TCP port in 20000-32767 that nothing listens on: below the
# ephemeral range, where the runs' many client connections leave ports in
# TIME_WAIT.
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
		port_busy "$p" || { echo "$p"; return 0; }
	done
	return 1
}

# http_code URL [CURL_ARGS...] : prints the HTTP status of a request.
http_code() {
	local url=$1
	shift
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url"
}

# wait_http URL PID TENTHS [CURL_ARGS...] : 0 once URL answers 200; 1 when
# PID exits first or TENTHS tenths of a second pass.
wait_http() {
	local url=$1 pid=$2 tenths=$3 i
	shift 3
	for ((i = 0; i < tenths; i++)); do
		[ "$(http_code "$url" "$@")" = 200 ] && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# Runs a query on the bench database and prints the bare result.
psql_q() {
	"$PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$DB" -c "$1"
}

# start_pg [OPTION...] : starts PostgreSQL on a unix socket in the
# temporary directory, with the server options OPTION... (-c NAME=VALUE)
# after the benches' own, and applies the migrations. Sets DB.
start_pg() {
	local base=$TMP/pg
	mkdir -p "$base"
	touch "$TMP/pg.log"
	[ "$(id -u)" = 0 ] && chown -R postgres: "$base" "$TMP/pg.log"
	chmod 700 "$base"
	PG_DATA=$base/data
	pg_run "$PG_BINDIR/initdb" -D "$PG_DATA" --auth=trust -U postgres \
		-E UTF8 --locale=C --no-sync >>"$TMP/pg.log" 2>&1 ||
		{ PG_DATA=; die "initdb failed"; }
	local opts="-c listen_addresses='' -c unix_socket_directories='$base'"
	opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	opts+=${*:+ $*}
	pg_run "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$TMP/pg.log" -w -t 60 \
		-o "$opts" start >/dev/null 2>&1 || die "PostgreSQL did not start"
	DB="host=$base user=postgres dbname=postgres"
	"$CTL" --database "$DB" db migrate --sql-dir "$ROOT/sql" \
		>>"$TMP/ctl.log" 2>&1 || die "tollctl db migrate failed (see $TMP/ctl.log)"
}

# Starts the mock upstream on a port of its choosing; sets MOCK_URL.
start_mock() {
	local i port
	"$MOCK" --port 0 --port-file "$TMP/mock.port" --fixtures "$FIXTURES" \
		--quiet >"$TMP/mock.log" 2>&1 &
	MOCK_PID=$!
	for ((i = 0; i < 100; i++)); do
		port=
		[ -s "$TMP/mock.port" ] && port=$(tr -dc 0-9 <"$TMP/mock.port")
		if [ -n "$port" ] &&
			[ "$(http_code "http://127.0.0.1:$port/_mock/stats")" = 200 ]; then
			MOCK_URL=http://127.0.0.1:$port
			return 0
		fi
		kill -0 "$MOCK_PID" 2>/dev/null || break
		sleep 0.1
	done
	die "mock_upstream did not start"
}

# Writes the gateway configuration for GW_PORT and ADMIN_PORT: the openai
# provider on the mock and its openai-chat route, with GW_SETTINGS at the
# end of the [tollgate] section and GW_SECTIONS at the end.
write_config() {
	{
		cat <<EOF
[tollgate]
listen = 127.0.0.1:$GW_PORT
admin_listen = 127.0.0.1:$ADMIN_PORT
workers = $WORKERS
database = $DB
spool_dir = $TMP/spool
log_level = ${LOG_LEVEL:-info}
; wrk's connections all come from one address
max_connections = $MAX_CONNS
max_connections_per_address = $MAX_CONNS
EOF
		[ -n "$GW_SETTINGS" ] && printf '%s\n' "$GW_SETTINGS"
		cat <<EOF

[provider openai]
type = openai
flavor = openai
base_url = $MOCK_URL/openai/v1

[route openai-chat]
target = openai:openai-chat
EOF
		if [ -n "$GW_SECTIONS" ]; then
			printf '\n%s\n' "$GW_SECTIONS"
		fi
	} >"$TMP/tollgate.conf"
}

# Starts tollgated on free ports and waits until /readyz answers 200;
# tries fresh ports when it dies early (a port taken meanwhile). Sets
# GW_URL and ADMIN_URL.
start_gateway() {
	local attempt
	for ((attempt = 1; attempt <= 3; attempt++)); do
		GW_PORT=$(free_port) || die "no free port"
		ADMIN_PORT=$(free_port) || die "no free port"
		[ "$GW_PORT" = "$ADMIN_PORT" ] && continue
		write_config
		"$GATEWAY" -c "$TMP/tollgate.conf" >>"$TMP/gateway.log" 2>&1 &
		GW_PID=$!
		GW_URL=http://127.0.0.1:$GW_PORT
		ADMIN_URL=http://127.0.0.1:$ADMIN_PORT
		wait_http "$ADMIN_URL/readyz" "$GW_PID" 300 "${AUTH[@]}" &&
			return 0
		kill -0 "$GW_PID" 2>/dev/null && die "tollgated not ready within 30 s"
		wait "$GW_PID" 2>/dev/null
		GW_PID=
	done
	die "tollgated did not start"
}

# Stops the gateway at the end: a failed check unless it exits 0 on
# SIGTERM; shows the first warnings or errors it logged.
stop_gateway() {
	local n
	stop_pid "$GW_PID"
	GW_PID=
	[ "$STOP_STATUS" = 0 ] ||
		fail "tollgated exited with status $STOP_STATUS on SIGTERM"
	n=$(grep -Ec '^[^ ]+ (warn|error) ' "$TMP/gateway.log")
	if [ "$n" != 0 ]; then
		say "tollgated logged $n warnings or errors, the first ones:"
		grep -E -m 5 '^[^ ]+ (warn|error) ' "$TMP/gateway.log" >&2
	fi
}

# Prints the value of NAME in the BENCH line of a wrk output file.
bench_field() {
	sed -n 's/^BENCH .*\<'"$2"'=\([0-9]*\).*/\1/p' "$1" | head -n 1
}

# run_wrk NAME URL BODY : one wrk run; sets R_REQ, R_RPS, R_P50, R_P99 (ms)
# and records a failure when a response was not 200 or a socket failed.
run_wrk() {
	local name=$1 url=$2 body=$3 out=$TMP/wrk-$1.txt e n
	BENCH_ACTIVE_MS=$((SECS * 1000)) BENCH_BODY=$body BENCH_KEY=$KEY \
		wrk -t "$THREADS" -c "$CONNECTIONS" -d "$((SECS + DRAIN))s" \
		--timeout 10s --latency -s "$LUA" "$url" >"$out" 2>&1 &
	WRK_PID=$!
	wait "$WRK_PID" || { WRK_PID=; cat "$out" >&2; die "wrk failed ($name)"; }
	WRK_PID=
	grep -q '^BENCH ' "$out" || { cat "$out" >&2; die "no result from wrk ($name)"; }
	R_REQ=$(bench_field "$out" requests)
	R_RPS=$(awk -v n="$R_REQ" -v s="$SECS" 'BEGIN { printf "%.0f", n / s }')
	R_P50=$(awk -v u="$(bench_field "$out" p50_us)" 'BEGIN { printf "%.2f", u / 1000 }')
	R_P99=$(awk -v u="$(bench_field "$out" p99_us)" 'BEGIN { printf "%.2f", u / 1000 }')
	if grep -q 'Non-2xx' "$out"; then
		fail "$name: $(grep 'Non-2xx' "$out" | sed 's/^ *//')"
	fi
	for e in connect read write status timeout; do
		n=$(bench_field "$out" "$e")
		[ "${n:-0}" = 0 ] || fail "$name: wrk reports $n $e errors"
	done
	[ "$R_REQ" -gt 0 ] || fail "$name: no request completed"
	say "$name: $R_REQ requests, $R_RPS req/s, p50 $R_P50 ms, p99 $R_P99 ms"
}

# The median of numbers (the lower middle one of an even count).
median() {
	printf '%s\n' "$@" | median_in
}

# The median of the numbers on stdin, one a line (nothing when none).
median_in() {
	sort -g | awk 'NF { v[++n] = $1 } END { if (n) print v[int((n + 1) / 2)] }'
}
