# tests/lib.sh - shared setup and assertions for the integration scripts.
# shellcheck shell=bash
#
# Sourced by every tests/it_*.sh. Each script gets a private temporary
# directory; the EXIT trap stops everything the script started (PostgreSQL,
# the mock upstream, tollgated) and removes the directory, whatever way the
# script ends. When a check failed, the tails of the logs are printed first.
#
# Environment (set by `make check`, defaulted for standalone runs from the
# repository root): top_srcdir, top_builddir, FIXTURES, PG_BINDIR.
# TG_KEEP=1 keeps the temporary directory for inspection.

set -u

TG_NAME=$(basename "$0" .sh)

top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
top_builddir=$(cd "${top_builddir:-.}" && pwd)
FIXTURES=${FIXTURES:-$top_srcdir/tests/fixtures/providers}

TG_GATEWAY_BIN=$top_builddir/src/tollgated
TG_CTL_BIN=$top_builddir/src/tollctl
TG_MOCK_BIN=$top_builddir/tests/mock_upstream

# The secret mixed into key hashes; tollctl and tollgated must agree.
export TOLLGATE_KEY_SECRET=${TOLLGATE_KEY_SECRET:-tollgate-test-secret}

# Providers the integration tests route to; each has fixtures named
# PROVIDER-*.json / PROVIDER-*.sse.
TG_PROVIDERS="openai zhipu dashscope qianfan baichuan yi moonshot deepseek"

TG_PASS=0
TG_FAIL=0
TG_CHECK=0
TG_TMP=
TG_PG_DATA=
TG_PG_SOCK=
TG_MOCK_PID=
TG_MOCK_PORT=
TG_MOCK_URL=
TG_MOCK_PROVIDERS=
TG_GW_PID=
TG_GW_PORT=
TG_GW_ADMIN_PORT=
TG_URL=
TG_ADMIN_URL=
TG_ROUTES=()
TG_SEQ=0
TG_GW_NAMED_PIDS=()

# Prints a message to stderr, prefixed with the script's name.
tg_log() {
	printf '# %s: %s\n' "$TG_NAME" "$*" >&2
}

# Finds the PostgreSQL server binaries when PG_BINDIR does not hold them.
tg_find_pg_bindir() {
	local d
	if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then
		return 0
	fi
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null)
		if [ -x "$d/initdb" ]; then
			PG_BINDIR=$d
			return 0
		fi
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ]; then
			PG_BINDIR=$d
			return 0
		fi
	done
	d=$(command -v initdb 2>/dev/null) || return 1
	PG_BINDIR=$(dirname "$d")
}

# Runs a PostgreSQL server command, as the postgres user when we are root.
tg_pg_run() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Prints the last lines of a log file to stderr, if it exists.
tg_tail_log() {
	local what=$1 file=$2
	[ -s "$file" ] || return 0
	printf '# ---- last lines of %s (%s) ----\n' "$what" "$file" >&2
	tail -n "${TG_LOG_LINES:-60}" "$file" | sed 's/^/#   /' >&2
}

# Stops a process we started: SIGTERM, a bounded wait, then SIGKILL. Sets
# TG_STOP_STATUS to its exit status (or 137 when it had to be killed).
tg_stop_pid() {
	local pid=$1
	TG_STOP_STATUS=0
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; TG_STOP_STATUS=$?; return 0; }
	tg_wait_until 10 tg_gone "$pid"
	if kill -0 "$pid" 2>/dev/null; then
		tg_log "pid $pid did not stop on SIGTERM within 10 s; killing it"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		TG_STOP_STATUS=137
		return 0
	fi
	wait "$pid" 2>/dev/null
	TG_STOP_STATUS=$?
}

# EXIT trap: shows logs after a failure, stops everything, removes the
# temporary directory.
tg_cleanup() {
	local rc=$? f pid
	trap - EXIT INT TERM
	if [ "$rc" != 0 ] || [ "$TG_FAIL" != 0 ]; then
		tg_tail_log tollgated "$TG_TMP/gateway.log"
		for f in "$TG_TMP"/gateway-[!0-9]*.log; do
			case $f in
			*-attempt*.log | *-run*.log) ;;
			*) tg_tail_log "tollgated ${f##*/gateway-}" "$f" ;;
			esac
		done
		tg_tail_log mock_upstream "$TG_TMP/mock.log"
		tg_tail_log postgresql "$TG_TMP/pg.log"
	fi
	for pid in "$TG_GW_PID" "${TG_GW_NAMED_PIDS[@]}"; do
		[ -n "$pid" ] || continue
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ -n "$TG_MOCK_PID" ]; then
		kill -KILL "$TG_MOCK_PID" 2>/dev/null
		wait "$TG_MOCK_PID" 2>/dev/null
	fi
	if [ -n "$TG_PG_DATA" ] && [ -f "$TG_PG_DATA/postmaster.pid" ]; then
		tg_pg_run "$PG_BINDIR/pg_ctl" -D "$TG_PG_DATA" -m immediate \
			-w stop >/dev/null 2>&1
	fi
	if [ -n "$TG_TMP" ] && [ -d "$TG_TMP" ]; then
		if [ "${TG_KEEP:-0}" = 1 ]; then
			tg_log "kept $TG_TMP"
		else
			rm -rf "$TG_TMP"
		fi
	fi
	exit "$rc"
}

# Creates the private temporary directory and installs the EXIT trap.
tg_init() {
	TG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tg-$TG_NAME.XXXXXX") ||
		{ echo "cannot create a temporary directory" >&2; exit 99; }
	chmod 755 "$TG_TMP"
	trap tg_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	local b
	for b in "$TG_GATEWAY_BIN" "$TG_CTL_BIN" "$TG_MOCK_BIN"; do
		if [ ! -x "$b" ]; then
			tg_bail "$b is not built (top_builddir=$top_builddir)"
		fi
	done
	command -v jq >/dev/null 2>&1 || tg_bail "jq is not installed"
	command -v curl >/dev/null 2>&1 || tg_bail "curl is not installed"
	[ -d "$FIXTURES" ] || tg_bail "no fixtures at $FIXTURES"
}

# ---------------------------------------------------------------------------
# Checks and output.

# Records one passed check.
tg_ok() {
	TG_CHECK=$((TG_CHECK + 1))
	TG_PASS=$((TG_PASS + 1))
	printf 'ok %d - %s\n' "$TG_CHECK" "$1"
}

# Records one failed check; further arguments are detail lines.
tg_not_ok() {
	local desc=$1 line
	shift
	TG_CHECK=$((TG_CHECK + 1))
	TG_FAIL=$((TG_FAIL + 1))
	printf 'not ok %d - %s\n' "$TG_CHECK" "$desc"
	for line in "$@"; do
		printf '#   %s\n' "$line"
	done
}

# Stops the script at once: a setup step failed and nothing after it can run.
tg_bail() {
	TG_FAIL=$((TG_FAIL + 1))
	printf 'Bail out! %s\n' "$*"
	printf '%d passed, %d failed\n' "$TG_PASS" "$TG_FAIL"
	exit 1
}

# assert_eq DESC EXPECTED ACTUAL
assert_eq() {
	if [ "$2" == "$3" ]; then
		tg_ok "$1"
	else
		tg_not_ok "$1" "expected: '$2'" "got:      '$3'"
	fi
}

# assert_match DESC EXTENDED_REGEX ACTUAL
assert_match() {
	if [[ $3 =~ $2 ]]; then
		tg_ok "$1"
	else
		tg_not_ok "$1" "expected to match: /$2/" "got: '$3'"
	fi
}

# assert_true DESC COMMAND... : passes when the command exits 0.
assert_true() {
	local desc=$1
	shift
	if "$@"; then
		tg_ok "$desc"
	else
		tg_not_ok "$desc" "command failed: $*"
	fi
}

# assert_file_eq DESC EXPECTED_FILE ACTUAL_FILE : byte-for-byte equality.
assert_file_eq() {
	local desc=$1 want=$2 got=$3 where
	if cmp -s "$want" "$got"; then
		tg_ok "$desc"
		return
	fi
	where=$(cmp "$want" "$got" 2>&1 | head -n 1)
	tg_not_ok "$desc" \
		"expected $(wc -c <"$want") bytes ($want)" \
		"got      $(wc -c <"$got" 2>/dev/null || echo 0) bytes ($got)" \
		"$where" \
		"$(diff <(cat -A "$want") <(cat -A "$got") 2>&1 | head -n 12 |
			cut -c 1-200 | sed '2,$s/^/  /')"
}

# assert_json DESC JQ_FILTER FILE : passes when `jq -e FILTER FILE` is true.
assert_json() {
	if jq -e "$2" "$3" >/dev/null 2>&1; then
		tg_ok "$1"
	else
		tg_not_ok "$1" "jq -e '$2' is not true for:" \
			"$(head -c 600 "$3" 2>/dev/null)"
	fi
}

# Shows the count of checks and exits non-zero when any failed. Stops the
# gateway and the mock first and checks they shut down cleanly (exit status
# 0 on SIGTERM, no sanitizer report).
tg_done() {
	if [ -n "$TG_GW_PID" ]; then
		tg_stop_gateway
		assert_eq "tollgated exits 0 on SIGTERM" 0 "$TG_STOP_STATUS"
	fi
	if [ -n "$TG_MOCK_PID" ]; then
		tg_stop_pid "$TG_MOCK_PID"
		TG_MOCK_PID=
	fi
	tg_check_sanitizers
	printf '%d passed, %d failed\n' "$TG_PASS" "$TG_FAIL"
	[ "$TG_FAIL" = 0 ] || exit 1
	exit 0
}

# Fails a check for every sanitizer report in the daemon and mock logs.
tg_check_sanitizers() {
	local f name pat='ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:'
	for f in "$TG_TMP"/gateway*.log "$TG_TMP/mock.log"; do
		[ -f "$f" ] || continue
		name=$(basename "$f")
		if grep -Eq "$pat" "$f"; then
			tg_not_ok "no sanitizer report in $name" \
				"$(grep -E -m 3 -A 12 "$pat" "$f")"
		else
			tg_ok "no sanitizer report in $name"
		fi
	done
}

# ---------------------------------------------------------------------------
# Ports and waiting.

# tg_wait_until [-i STEP] SECONDS COMMAND... : runs COMMAND every STEP
# seconds (0.1 by default) until it succeeds, for SECONDS worth of tries;
# returns 1 when it never did. A single COMMAND argument is shell code,
# evaluated where tg_wait_until is called from (its variables in scope).
tg_wait_until() {
	local _tw_step=0.1 _tw_n _tw_i
	if [ "$1" = -i ]; then
		_tw_step=$2
		shift 2
	fi
	_tw_n=$(awk -v s="$1" -v t="$_tw_step" \
		'BEGIN { n = int(s / t + 0.5); print (n > 0 ? n : 1) }')
	shift
	for ((_tw_i = 0; _tw_i < _tw_n; _tw_i++)); do
		if [ $# -eq 1 ]; then
			eval "$1" && return 0
		else
			"$@" && return 0
		fi
		((_tw_i + 1 < _tw_n)) && sleep "$_tw_step"
	done
	return 1
}

# Whether process PID has ended.
tg_gone() {
	! kill -0 "$1" 2>/dev/null
}

# Prints the HTTP status URL answers (000 when it does not).
tg_http_code() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
		${TG_ADMIN_TOKEN:+-H "Authorization: Bearer $TG_ADMIN_TOKEN"} "$1"
}

# Whether something accepts connections on 127.0.0.1:PORT.
tg_port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints a random free TCP port below the kernel's ephemeral range (so no
# outgoing connection holds it), where nothing listens.
tg_free_port() {
	local p i lo=32768
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null
	[ "${lo:-0}" -gt 12000 ] 2>/dev/null || lo=32768
	for ((i = 0; i < 200; i++)); do
		p=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000)))
		if ! tg_port_busy "$p"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# tg_http_is URL STATUS : whether URL answers STATUS.
tg_http_is() {
	[ "$(tg_http_code "$1")" = "$2" ]
}

# tg_wait_http URL STATUS SECONDS : polls URL until it answers STATUS.
tg_wait_http() {
	tg_wait_until "$3" tg_http_is "$1" "$2"
}

# ---------------------------------------------------------------------------
# PostgreSQL.

# Starts a private PostgreSQL on a unix socket in the temporary directory,
# exports TOLLGATE_DATABASE and applies the migrations.
tg_start_pg() {
	tg_find_pg_bindir || tg_bail "PostgreSQL server binaries not found (set PG_BINDIR)"
	local base=$TG_TMP/pg
	mkdir -p "$base"
	TG_PG_DATA=$base/data
	TG_PG_SOCK=$base/sock
	mkdir -p "$TG_PG_SOCK"
	touch "$TG_TMP/pg.log"
	if [ "$(id -u)" = 0 ]; then
		chown -R postgres: "$base" "$TG_TMP/pg.log"
	fi
	chmod 700 "$base"
	if ! tg_pg_run "$PG_BINDIR/initdb" -D "$TG_PG_DATA" --auth=trust \
		-U postgres -E UTF8 --locale=C --no-sync \
		>>"$TG_TMP/pg.log" 2>&1; then
		TG_PG_DATA=
		tg_bail "initdb failed"
	fi
	if ! tg_pg_run "$PG_BINDIR/pg_ctl" -D "$TG_PG_DATA" -l "$TG_TMP/pg.log" \
		-w -t 60 -o "-c listen_addresses='' -c unix_socket_directories='$TG_PG_SOCK' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >/dev/null 2>&1; then
		tg_bail "PostgreSQL did not start"
	fi
	export TOLLGATE_DATABASE="host=$TG_PG_SOCK user=postgres dbname=postgres"
	local out
	out=$(tg_ctl db migrate 2>&1) || tg_bail "tollctl db migrate failed: $out"
}

# Runs psql on the test database: unaligned, tuples only, NULL shown as
# NULL, stops on the first error.
tg_psql() {
	"$PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -P null=NULL \
		-d "$TOLLGATE_DATABASE" -c "$1"
}

# Quotes a string as an SQL literal.
tg_sql_quote() {
	local s=${1//\'/\'\'}
	printf "'%s'" "$s"
}

# tg_wait_row REQUEST_ID [SECONDS] : polls until the usage record exists.
tg_wait_row() {
	local q
	[ -n "$1" ] || return 1
	q="SELECT count(*) FROM usage_records WHERE request_id = $(tg_sql_quote "$1")"
	tg_wait_until "${2:-10}" '[ "$(tg_psql "$q" 2>/dev/null)" = 1 ]'
}

# tg_row REQUEST_ID COLUMNS : prints the record's columns, '|' separated.
tg_row() {
	tg_psql "SELECT $2 FROM usage_records WHERE request_id = $(tg_sql_quote "$1")"
}

# tg_check_row DESC REQUEST_ID COLUMNS EXPECTED : waits for the record and
# compares the selected columns ('|' separated) with EXPECTED.
tg_check_row() {
	local desc=$1 rid=$2 cols=$3 want=$4
	if ! tg_wait_row "$rid"; then
		tg_not_ok "$desc" "no usage record for request id '$rid' within 10 s"
		return
	fi
	assert_eq "$desc" "$want" "$(tg_row "$rid" "$cols")"
}

# ---------------------------------------------------------------------------
# tollctl.

# tg_tenant_tokens TENANT : the tokens (prompt + completion) of TENANT's
# served requests.
tg_tenant_tokens() {
	tg_psql "SELECT coalesce(sum(u.prompt_tokens + u.completion_tokens), 0)
		FROM usage_records u JOIN tenants t ON t.id = u.tenant_id
		WHERE t.name = $(tg_sql_quote "$1") AND u.status = 200"
}

# tg_tenant_records TENANT STATUS : the count of TENANT's records with
# STATUS.
tg_tenant_records() {
	tg_psql "SELECT count(*)
		FROM usage_records u JOIN tenants t ON t.id = u.tenant_id
		WHERE t.name = $(tg_sql_quote "$1") AND u.status = $2"
}

# tg_unauth_count [SOURCE] : refusals without a key counted for SOURCE
# (default 127.0.0.1) in unauthenticated_refusals so far.
tg_unauth_count() {
	tg_psql "SELECT coalesce(sum(refusals), 0) FROM unauthenticated_refusals
		WHERE source = '${1:-127.0.0.1}'"
}

# tg_check_unauth DESC RID BEFORE : the request RID, refused without a
# key, left no usage record and was counted: the count of refusals from
# 127.0.0.1 grows past BEFORE within 10 s.
tg_check_unauth() {
	local desc=$1 rid=$2 before=$3 n=
	if tg_wait_until 10 'n=$(tg_unauth_count); [ "${n:-0}" -gt "$before" ]'; then
		tg_ok "$desc: counted in unauthenticated_refusals"
	else
		tg_not_ok "$desc: counted in unauthenticated_refusals" \
			"still $n (was $before)"
	fi
	assert_eq "$desc: no usage record" 0 \
		"$(tg_psql "SELECT count(*) FROM usage_records WHERE request_id = '$rid'")"
}

# Runs tollctl against the test database.
tg_ctl() {
	"$TG_CTL_BIN" --database "$TOLLGATE_DATABASE" "$@"
}

# tg_npm_pinned DIR SKIP_VAR : bails out unless node is installed and
# every dependency of DIR/package.json is in DIR/node_modules at the
# version it pins (an alias, "openai6": "npm:openai@6.49.0", pins the
# version after its last @); SKIP_VAR names the variable that skips the
# test.
tg_npm_pinned() {
	local dir=$1 skip=$2 pkg want got
	command -v node >/dev/null 2>&1 ||
		tg_bail "node is not installed (Node.js >= 20 runs this test; $skip=1 skips it)"
	for pkg in $(jq -r '.dependencies | keys[]' "$dir/package.json"); do
		want=$(jq -r --arg p "$pkg" '.dependencies[$p]' "$dir/package.json" |
			sed 's/^npm:.*@//')
		got=$(jq -r .version "$dir/node_modules/$pkg/package.json" 2>/dev/null)
		if [ "$got" != "$want" ]; then
			tg_bail "$pkg $want is not installed in $dir/node_modules" \
				"(found: ${got:-none}); install it with" \
				"'npm ci --prefix tests/$(basename "$dir")' from the" \
				"source tree, or set $skip=1 to skip this test"
		fi
	done
}

# tg_ctl_ok DESC tollctl-args... : runs tollctl, which must succeed.
tg_ctl_ok() {
	local desc=$1 out
	shift
	if out=$(tg_ctl "$@" 2>&1); then
		tg_ok "$desc"
	else
		tg_not_ok "$desc" "tollctl $* failed:" "$out"
	fi
}

# tg_issue_key TENANT [key issue options...] : creates the tenant when
# missing and prints a new key for it.
tg_issue_key() {
	local tenant=$1 before= key
	shift
	if [ "$(tg_psql "SELECT count(*) FROM tenants WHERE name = $(tg_sql_quote "$tenant")")" = 0 ]; then
		tg_ctl tenant add "$tenant" >/dev/null || return 1
	fi
	# With a gateway running, wait (10 s at most) until its key cache,
	# reloaded on NOTIFY, holds one key more: a request sent before
	# would be refused.
	if [ -n "$TG_GW_PID" ] && [ -n "$TG_ADMIN_URL" ]; then
		before=$(tg_metric tollgate_keys)
	fi
	key=$(tg_ctl key issue --tenant "$tenant" "$@" -q) || return 1
	if [ -n "$before" ]; then
		tg_wait_until 10 '[ "$(tg_metric tollgate_keys)" -gt "$before" ]' ||
			tg_log "the gateway's key cache did not grow within 10 s"
	fi
	printf '%s\n' "$key"
}

# ---------------------------------------------------------------------------
# Mock upstream and gateway.

# Whether the mock wrote its port and answers there (or has died).
tg_mock_up_or_gone() {
	if [ -s "$TG_TMP/mock.port" ]; then
		TG_MOCK_PORT=$(tr -dc 0-9 <"$TG_TMP/mock.port")
		if [ -n "$TG_MOCK_PORT" ] &&
			tg_wait_http "http://127.0.0.1:$TG_MOCK_PORT/_mock/stats" 200 2; then
			TG_MOCK_URL=http://127.0.0.1:$TG_MOCK_PORT
			return 0
		fi
	fi
	tg_gone "$TG_MOCK_PID"
}

# Sets TG_MOCK_PROVIDERS to the config sections of an Anthropic and an
# Azure provider served by the mock (after tg_start_mock), and exports the
# credentials the mock checks, TG_ANTHROPIC_SECRET and TG_AZURE_SECRET.
tg_mock_providers() {
	export TG_ANTHROPIC_SECRET="sk-ant-upstream-$$"
	export TG_AZURE_SECRET="azure-upstream-$$"
	TG_MOCK_PROVIDERS="[provider anthropic]
type = anthropic
flavor = anthropic
base_url = $TG_MOCK_URL/anthropic/v1
api_key_env = TG_ANTHROPIC_SECRET
connect_timeout = 5000
timeout = 30000

[provider azure]
type = azure
flavor = azure
base_url = $TG_MOCK_URL/azure
api_version = 2024-10-21
api_key_env = TG_AZURE_SECRET
connect_timeout = 5000
timeout = 30000"
}

# tg_start_mock [PORT] : starts the mock upstream on PORT, or on a port of
# its choosing, with TG_MOCK_ARGS (such as another --fixtures DIR) when set.
tg_start_mock() {
	rm -f "$TG_TMP/mock.port"
	# shellcheck disable=SC2086 # TG_MOCK_ARGS: more options, split
	"$TG_MOCK_BIN" --port "${1:-0}" --port-file "$TG_TMP/mock.port" \
		--fixtures "$FIXTURES" ${TG_MOCK_ARGS:-} --quiet \
		>"$TG_TMP/mock.log" 2>&1 &
	TG_MOCK_PID=$!
	tg_wait_until 10 tg_mock_up_or_gone
	[ -n "$TG_MOCK_URL" ] || tg_bail "mock_upstream did not start"
}

# tg_mock_config JSON : sets the mock's fault and delay knobs.
tg_mock_config() {
	curl -sS -f -o /dev/null --max-time 5 -H 'Content-Type: application/json' \
		--data-binary "$1" "$TG_MOCK_URL/_mock/config"
}

# Resets the mock's knobs and counters.
tg_mock_reset() {
	curl -sS -f -o /dev/null --max-time 5 -X POST "$TG_MOCK_URL/_mock/reset"
}

# Prints the JSON description of the last request the mock received.
tg_mock_last_request() {
	curl -sS -f --max-time 5 "$TG_MOCK_URL/_mock/last_request"
}

# Lists the fixture base names that get a route, one per line.
tg_fixture_routes() {
	local f base prefix
	for f in "$FIXTURES"/*.json "$FIXTURES"/*.sse; do
		base=${f##*/}
		base=${base%.*}
		case $base in
		azure-openai-* | anthropic-* | openai-responses*) continue ;;
		esac
		prefix=${base%%-*}
		case " $TG_PROVIDERS " in
		*" $prefix "*) echo "$base" ;;
		esac
	done | sort -u
}

# tg_write_config FILE [EXTRA_LINES [PORT ADMIN_PORT SPOOL_DIR]] : a
# gateway config for the mock, with EXTRA_LINES added to the [tollgate]
# section and $TG_EXTRA_SECTIONS at the end. The ports and spool default
# to the first gateway's.
tg_write_config() {
	local file=$1 extra=${2:-} port=${3:-$TG_GW_PORT}
	local admin=${4:-$TG_GW_ADMIN_PORT} spool=${5:-$TG_TMP/spool} p r
	{
		echo "[tollgate]"
		echo "listen = 127.0.0.1:$port"
		echo "admin_listen = 127.0.0.1:$admin"
		echo "workers = 2"
		echo "database = $TOLLGATE_DATABASE"
		echo "usage_flush = 50"
		echo "spool_dir = $spool"
		echo "log_level = ${TG_LOG_LEVEL:-info}"
		[ -n "$extra" ] && printf '%s\n' "$extra"
		for p in $TG_PROVIDERS; do
			echo
			echo "[provider $p]"
			if [ "$p" = openai ]; then
				echo "type = openai"
			else
				echo "type = openai-compatible"
			fi
			echo "flavor = $p"
			echo "base_url = $TG_MOCK_URL/$p/v1"
			echo "connect_timeout = 5000"
			echo "timeout = 30000"
			echo "idle_timeout = 10000"
		done
		for r in "${TG_ROUTES[@]}"; do
			echo
			echo "[route $r]"
			echo "target = ${r%%-*}:$r"
		done
		[ -n "${TG_EXTRA_SECTIONS:-}" ] && printf '\n%s\n' "$TG_EXTRA_SECTIONS"
	} >"$file"
}

# tg_ready_or_gone ADMIN_URL : whether the gateway TG_SPAWNED_PID answers
# 200 at ADMIN_URL/readyz, or has died.
tg_ready_or_gone() {
	tg_http_is "$1/readyz" 200 || tg_gone "$TG_SPAWNED_PID"
}

# tg_spawn_gateway CONF LOG ADMIN_URL : starts tollgated on CONF, its
# output in LOG, and waits until ADMIN_URL/readyz answers 200. Returns 0
# (TG_SPAWNED_PID is its pid); 1 when it exited meanwhile (its status is
# logged, TG_SPAWNED_PID empty); 2 when it was not ready within 30 s (it
# still runs).
tg_spawn_gateway() {
	local conf=$1 log=$2 admin=$3 st
	"$TG_GATEWAY_BIN" -c "$conf" >"$log" 2>&1 &
	TG_SPAWNED_PID=$!
	tg_wait_until 30 tg_ready_or_gone "$admin"
	if ! tg_gone "$TG_SPAWNED_PID"; then
		[ "$(tg_http_code "$admin/readyz")" = 200 ] && return 0
		return 2
	fi
	wait "$TG_SPAWNED_PID" 2>/dev/null
	st=$?
	tg_log "tollgated (${conf##*/}) exited with status $st during start"
	TG_SPAWNED_PID=
	return 1
}

# tg_start_gateway [-n NAME] [EXTRA_CONFIG_LINES] : starts tollgated on
# free ports against the mock and waits until /readyz answers 200,
# retrying on fresh ports when the daemon dies early (a port taken
# meanwhile). The first gateway writes tollgate.conf, logs to gateway.log
# and sets TG_GW_PID, TG_GW_PORT, TG_GW_ADMIN_PORT, TG_URL and
# TG_ADMIN_URL. One named NAME (another gateway on the same database and
# mock) writes tollgate-NAME.conf, has a spool of its own, logs to
# gateway-NAME.log and sets TG_NAMED_PID, TG_NAMED_URL and
# TG_NAMED_ADMIN_URL; it is killed at exit if still running.
tg_start_gateway() {
	local name= extra attempt port admin conf log spool rc=1
	if [ "${1:-}" = -n ]; then
		name=$2
		shift 2
	fi
	extra=${1:-}
	[ -n "$TG_MOCK_URL" ] || tg_bail "tg_start_gateway needs tg_start_mock first"
	mapfile -t TG_ROUTES < <(tg_fixture_routes)
	conf=$TG_TMP/tollgate${name:+-$name}.conf
	log=$TG_TMP/gateway${name:+-$name}.log
	spool=$TG_TMP/spool${name:+-$name}
	for ((attempt = 1; attempt <= 3 && rc == 1; attempt++)); do
		port=$(tg_free_port) || tg_bail "no free port"
		admin=$(tg_free_port) || tg_bail "no free port"
		[ "$port" = "$admin" ] && continue
		tg_write_config "$conf" "$extra" "$port" "$admin" "$spool"
		[ -f "$log" ] && mv "$log" "${log%.log}-attempt$attempt.log"
		tg_spawn_gateway "$conf" "$log" "http://127.0.0.1:$admin"
		rc=$?
		[ -n "$TG_SPAWNED_PID" ] && [ -n "$name" ] &&
			TG_GW_NAMED_PIDS+=("$TG_SPAWNED_PID")
		[ -n "$TG_SPAWNED_PID" ] && [ -z "$name" ] &&
			TG_GW_PID=$TG_SPAWNED_PID
	done
	[ "$rc" = 2 ] &&
		tg_bail "tollgated${name:+ $name} not ready (/readyz) within 30 s"
	[ "$rc" = 0 ] || tg_bail "tollgated${name:+ $name} did not start"
	if [ -n "$name" ]; then
		TG_NAMED_PID=$TG_SPAWNED_PID
		TG_NAMED_URL=http://127.0.0.1:$port
		TG_NAMED_ADMIN_URL=http://127.0.0.1:$admin
		return 0
	fi
	TG_GW_PORT=$port
	TG_GW_ADMIN_PORT=$admin
	TG_URL=http://127.0.0.1:$port
	TG_ADMIN_URL=http://127.0.0.1:$admin
}

# Stops the gateway with SIGTERM; TG_STOP_STATUS holds its exit status.
tg_stop_gateway() {
	tg_stop_pid "$TG_GW_PID"
	TG_GW_PID=
}

# ---------------------------------------------------------------------------
# HTTP requests.

# tg_http METHOD PATH KEY [BODY [CURL_ARGS...]] : one request to the data
# plane. KEY empty sends no Authorization header; BODY may be @FILE. Sets
# TG_STATUS, TG_BODY (file), TG_HDRS (file), TG_RID (x-request-id),
# TG_CURL_RC, TG_TTFB and TG_TOTAL (seconds).
tg_http() {
	local method=$1 path=$2 key=$3 body=${4-} out
	local -a args=(-sS -X "$method" --max-time "${TG_HTTP_TIMEOUT:-30}"
		-H 'Expect:')
	shift 3
	[ $# -gt 0 ] && shift
	TG_SEQ=$((TG_SEQ + 1))
	TG_BODY=$TG_TMP/resp.$TG_SEQ.body
	TG_HDRS=$TG_TMP/resp.$TG_SEQ.headers
	[ -n "$key" ] && args+=(-H "Authorization: Bearer $key")
	if [ -n "$body" ]; then
		args+=(-H 'Content-Type: application/json' --data-binary "$body")
	fi
	out=$(curl "${args[@]}" "$@" -D "$TG_HDRS" -o "$TG_BODY" \
		-w '%{http_code} %{time_starttransfer} %{time_total}' \
		"$TG_URL$path")
	TG_CURL_RC=$?
	read -r TG_STATUS TG_TTFB TG_TOTAL <<<"$out"
	touch "$TG_BODY" "$TG_HDRS"
	TG_RID=$(tg_header x-request-id)
}

# Prints the value of a response header of the last tg_http call.
tg_header() {
	awk -v h="$1" 'BEGIN { h = tolower(h) }
		{ sub(/\r$/, "") }
		/^HTTP\// { v = "" }
		{ i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == h) {
			v = substr($0, i + 1); sub(/^[ \t]+/, "", v) } }
		END { print v }' "$TG_HDRS"
}

# tg_chat_body MODEL [STREAM_OPTIONS_JSON] : a chat request body; with a
# second argument the request is streamed ("-" for no stream_options).
tg_chat_body() {
	local model=$1
	local msg='"messages":[{"role":"user","content":"Hello, who are you?"}]'
	if [ $# -lt 2 ]; then
		printf '{"model":"%s",%s}' "$model" "$msg"
	elif [ "$2" = - ]; then
		printf '{"model":"%s",%s,"stream":true}' "$model" "$msg"
	else
		printf '{"model":"%s",%s,"stream":true,"stream_options":%s}' \
			"$model" "$msg" "$2"
	fi
}

# Strips the usage-only event (choices:[] with a usage object) from an SSE
# file, as a client that did not ask for usage receives the stream.
tg_sse_without_usage_event() {
	awk 'BEGIN { RS = ""; ORS = "\n\n" }
		/"choices":\[\]/ && /"usage":\{/ { next }
		{ print }' "$1"
}

tg_init

# ---------------------------------------------------------------------------
# Fault injection: PostgreSQL and tollgated going away, and a load to run
# through it.

# Stops the test PostgreSQL (fast: sessions are cut, as when a database
# server goes down under a gateway). TOLLGATE_DATABASE stays as it was.
tg_stop_pg() {
	tg_pg_run "$PG_BINDIR/pg_ctl" -D "$TG_PG_DATA" -m fast -w -t 60 \
		stop >>"$TG_TMP/pg.log" 2>&1 || tg_bail "PostgreSQL did not stop"
}

# Starts the test PostgreSQL again on the same data directory and socket,
# with the options tg_start_pg uses.
tg_restart_pg() {
	if ! tg_pg_run "$PG_BINDIR/pg_ctl" -D "$TG_PG_DATA" -l "$TG_TMP/pg.log" \
		-w -t 60 -o "-c listen_addresses='' -c unix_socket_directories='$TG_PG_SOCK' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >/dev/null 2>&1; then
		tg_bail "PostgreSQL did not start again"
	fi
}

# Kills tollgated with SIGKILL: no shutdown path runs, as in a crash or an
# OOM kill.
tg_kill_gateway() {
	[ -n "$TG_GW_PID" ] || return 0
	kill -KILL "$TG_GW_PID" 2>/dev/null
	wait "$TG_GW_PID" 2>/dev/null
	TG_GW_PID=
}

# tg_restart_gateway [CONFIG_FILE] : starts tollgated again on an existing
# config file (default: the one tg_start_gateway wrote, so the same ports
# and spool) and waits until /readyz answers 200. The log of the previous
# run is kept as gateway-runN.log; gateway.log is the new run's. Returns 1
# when the daemon exited or was not ready within 30 s (the caller decides
# whether that is fatal).
tg_restart_gateway() {
	local conf=${1:-$TG_TMP/tollgate.conf} n=1 rc
	[ -z "$TG_GW_PID" ] || tg_bail "tg_restart_gateway: tollgated still runs"
	if [ -f "$TG_TMP/gateway.log" ]; then
		while [ -e "$TG_TMP/gateway-run$n.log" ]; do
			n=$((n + 1))
		done
		mv "$TG_TMP/gateway.log" "$TG_TMP/gateway-run$n.log"
	fi
	tg_spawn_gateway "$conf" "$TG_TMP/gateway.log" "$TG_ADMIN_URL"
	rc=$?
	TG_GW_PID=$TG_SPAWNED_PID
	[ "$rc" = 0 ]
}

# tg_readyz : asks /readyz; sets TG_READY_STATUS and TG_READY_BODY.
tg_readyz() {
	local f=$TG_TMP/readyz.body
	TG_READY_STATUS=$(curl -s -o "$f" -w '%{http_code}' --max-time 5 \
		${TG_ADMIN_TOKEN:+-H "Authorization: Bearer $TG_ADMIN_TOKEN"} \
		"$TG_ADMIN_URL/readyz")
	TG_READY_BODY=$(cat "$f" 2>/dev/null)
}

# tg_readyz_is STATUS : asks /readyz and whether it answered STATUS.
tg_readyz_is() {
	tg_readyz
	[ "$TG_READY_STATUS" = "$1" ]
}

# tg_wait_readyz STATUS SECONDS : polls /readyz until it answers STATUS;
# TG_READY_STATUS and TG_READY_BODY hold its last answer.
tg_wait_readyz() {
	tg_wait_until "$2" tg_readyz_is "$1"
}

# tg_chat_is KEY MODEL STATUS : sends a chat request and whether it was
# answered STATUS (tg_http's variables are set).
tg_chat_is() {
	tg_http POST /v1/chat/completions "$1" "$(tg_chat_body "$2")"
	[ "$TG_STATUS" = "$3" ]
}

# tg_wait_chat_status KEY MODEL STATUS [SECONDS] : repeats a chat request
# until it is answered STATUS (a key or limit change reaching the gateway),
# every 0.2 s for 10 s by default.
tg_wait_chat_status() {
	tg_wait_until -i 0.2 "${4:-10}" tg_chat_is "$1" "$2" "$3"
}

# tg_metric NAME : prints the value of a /metrics series NAME, summed over
# its labels; prints nothing when the gateway does not export it.
tg_metric() {
	curl -s --max-time 5 \
		${TG_ADMIN_TOKEN:+-H "Authorization: Bearer $TG_ADMIN_TOKEN"} \
		"$TG_ADMIN_URL/metrics" |
		awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF; f = 1 }
			END { if (f) printf "%.0f\n", s }'
}

# tg_load NAME KEY N [PARALLEL] : sends N chat requests with KEY through
# the gateway, PARALLEL at a time (default 16), with one curl (--parallel).
# Requests cycle through openai-chat and deepseek-chat, non-streamed and
# streamed. Each finished transfer, in the order they finish, adds a line
# "CURL_EXIT HTTP_STATUS BODY_FILE REQUEST_ID" to $TG_TMP/NAME.out (no
# request id when no response came); bodies are NAME.d/I.j (JSON) or
# NAME.d/I.s (stream). Runs in the foreground: start it with & for a load
# in the background and watch its progress with tg_load_done.
tg_load() {
	local name=$1 key=$2 n=$3 par=${4:-16} i kind model
	local dir=$TG_TMP/$name.d conf=$TG_TMP/$name.curlrc
	local -a models=(openai-chat deepseek-chat)
	local wout='%{exitcode} %{http_code} %{filename_effective} %header{x-request-id}\n'
	mkdir -p "$dir"
	for model in "${models[@]}"; do
		tg_chat_body "$model" >"$dir/body.$model.j"
		tg_chat_body "$model" - >"$dir/body.$model.s"
	done
	{
		echo 'parallel'
		echo "parallel-max = $par"
		echo 'parallel-immediate'
		for ((i = 0; i < n; i++)); do
			model=${models[i % 2]}
			kind=j
			((i / 2 % 2)) && kind=s
			echo "url = \"$TG_URL/v1/chat/completions\""
			echo "output = \"$dir/$i.$kind\""
			echo "data-binary = \"@$dir/body.$model.$kind\""
			echo "header = \"Authorization: Bearer $key\""
			echo 'header = "Content-Type: application/json"'
			echo 'header = "Expect:"'
			echo "write-out = \"$wout\""
			echo 'max-time = 60'
			echo 'silent'
			((i + 1 < n)) && echo 'next'
		done
	} >"$conf"
	curl --config "$conf" >"$TG_TMP/$name.out" 2>"$TG_TMP/$name.err" &
	echo $! >"$TG_TMP/$name.pid"
	wait $!
	rm -f "$TG_TMP/$name.pid"
	return 0
}

# tg_load_stop NAME : stops load NAME's curl if it still runs (for EXIT
# traps: a load in the background must not outlive its script).
tg_load_stop() {
	local pid
	pid=$(cat "$TG_TMP/$1.pid" 2>/dev/null) || return 0
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	return 0
}

# tg_load_done NAME : prints how many transfers of load NAME have finished.
tg_load_done() {
	local n
	n=$({ wc -l <"$TG_TMP/$1.out"; } 2>/dev/null) || n=0
	echo "${n:-0}"
}

# tg_wait_load NAME N PID [SECONDS] : waits until load NAME, run in the
# background by PID, has N answers or has ended (30 s by default).
tg_wait_load() {
	local name=$1 n=$2 pid=$3
	tg_wait_until -i 0.05 "${4:-30}" \
		'[ "$(tg_load_done "$name")" -ge "$n" ] || tg_gone "$pid"'
}

# tg_load_summary NAME : reads a finished load. A request counts as
# answered when curl completed the transfer, the status is 200 and the body
# is whole (a stream up to its [DONE], a JSON body with its usage). Writes
# the request ids of those to $TG_TMP/NAME.ok, sets TG_LOAD_N (transfers),
# TG_LOAD_OK (answered), TG_LOAD_FAILED (the others) and TG_LOAD_CODES (a
# "status:count" histogram, 000 when no response came).
tg_load_summary() {
	local name=$1 out=$TG_TMP/$1.out
	local cut=$TG_TMP/$1.cut
	# The bodies that are not whole.
	{
		find "$TG_TMP/$name.d" -name '[0-9]*.s' -print0 |
			xargs -0 -r grep -L -F 'data: [DONE]'
		find "$TG_TMP/$name.d" -name '[0-9]*.j' -print0 |
			xargs -0 -r grep -L -F '"usage"'
	} >"$cut" 2>/dev/null
	awk 'FILENAME == ARGV[1] { cut[$0] = 1; next }
		$1 == 0 && $2 == 200 && $4 != "" && !($3 in cut) { print $4 }' \
		"$cut" "$out" >"$TG_TMP/$name.ok"
	TG_LOAD_N=$(wc -l <"$out")
	TG_LOAD_OK=$(wc -l <"$TG_TMP/$name.ok")
	TG_LOAD_FAILED=$((TG_LOAD_N - TG_LOAD_OK))
	TG_LOAD_CODES=$(awk '{ c[$2]++ } END { for (k in c) printf "%s:%d ", k, c[k] }' \
		"$out" | tr ' ' '\n' | sort | tr '\n' ' ')
	TG_LOAD_CODES=${TG_LOAD_CODES% }
}

# tg_rid_table TABLE FILE : (re)creates TABLE (rid text) in the test
# database holding the request ids of FILE, one a line, to compare with
# usage_records in SQL.
tg_rid_table() {
	tg_psql "SET client_min_messages = warning; DROP TABLE IF EXISTS $1;
		CREATE TABLE $1 (rid text)" &&
		"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$TOLLGATE_DATABASE" \
			-c "\\copy $1 FROM '$2'"
}

# tg_wait_rids TABLE [SECONDS] : polls until every request id of TABLE
# has a usage record (default 60 s). TG_RIDS_FOUND holds the last count.
tg_wait_rids() {
	local t=$1 want
	want=$(tg_psql "SELECT count(DISTINCT rid) FROM $t")
	tg_wait_until -i 0.2 "${2:-60}" 'TG_RIDS_FOUND=$(tg_psql "SELECT
		count(DISTINCT t.rid) FROM $t t JOIN usage_records u
		ON u.request_id = t.rid" 2>/dev/null)
		[ "$TG_RIDS_FOUND" = "$want" ]'
}

# ---------------------------------------------------------------------------
# Helpers for aborted and failed requests.

# Prints the mock's counters (/_mock/stats) as JSON.
tg_mock_stats() {
	curl -sS -f --max-time 5 "$TG_MOCK_URL/_mock/stats"
}

# tg_mock_wait_idle [SECONDS] : polls until the mock has no model request in
# flight; prints its final counters.
tg_mock_wait_idle() {
	local stats rc
	tg_wait_until "${1:-10}" 'stats=$(tg_mock_stats) &&
		[ "$(jq -r .in_flight <<<"$stats")" = 0 ]'
	rc=$?
	printf '%s\n' "$stats"
	return "$rc"
}

# tg_record_count REQUEST_ID : prints how many usage records the id has.
tg_record_count() {
	tg_psql "SELECT count(*) FROM usage_records WHERE request_id = $(tg_sql_quote "$1")"
}

# tg_wait_where SQL_CONDITION [SECONDS] : polls until some usage record
# matches the condition (for requests whose client never saw a request id).
tg_wait_where() {
	local cond=$1
	tg_wait_until "${2:-10}" '[ "$(tg_psql "SELECT count(*) > 0
		FROM usage_records WHERE $cond" 2>/dev/null)" = t ]'
}

# tg_stream_abort PATH KEY BODY EVENTS : sends a streamed request and
# closes the connection as soon as EVENTS "data:" lines have arrived (after
# 15 s at most). Sets TG_BODY, TG_HDRS and TG_RID as tg_http does,
# TG_EVENTS to the data lines received, TG_CURL_RC, and TG_ABORTED to 1
# when the client did close early (0 when the response ended first).
tg_stream_abort() {
	local path=$1 key=$2 body=$3 want=$4 pid
	TG_SEQ=$((TG_SEQ + 1))
	TG_BODY=$TG_TMP/resp.$TG_SEQ.body
	TG_HDRS=$TG_TMP/resp.$TG_SEQ.headers
	: >"$TG_BODY"
	: >"$TG_HDRS"
	curl -sS -N --max-time 30 -H 'Expect:' \
		-H "Authorization: Bearer $key" \
		-H 'Content-Type: application/json' --data-binary "$body" \
		-D "$TG_HDRS" -o "$TG_BODY" "$TG_URL$path" \
		2>"$TG_TMP/resp.$TG_SEQ.err" &
	pid=$!
	TG_ABORTED=0
	tg_wait_until -i 0.05 15 '[ "$(grep -c "^data:" "$TG_BODY")" -ge "$want" ] ||
		tg_gone "$pid"'
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	TG_CURL_RC=$?
	# 128 + SIGTERM: curl was still receiving when it was stopped.
	[ "$TG_CURL_RC" = 143 ] && TG_ABORTED=1
	TG_EVENTS=$(grep -c '^data:' "$TG_BODY")
	TG_RID=$(tg_header x-request-id)
}

# ---------------------------------------------------------------------------
# Helpers for provider wires and fallback.

# tg_mock_tried NAME [FIELD] : prints the mock's counter FIELD (requests,
# served or failed; default requests) for fixture name NAME (body model or
# Azure deployment) since the last reset; 0 when it was never asked for.
tg_mock_tried() {
	tg_mock_stats | jq -r --arg m "$1" --arg f "${2:-requests}" \
		'.by_model[$m][$f] // 0'
}

# tg_sse_first_events FILE N : prints the first N events of an SSE file.
tg_sse_first_events() {
	awk -v n="$2" 'BEGIN { RS = ""; ORS = "\n\n" } NR <= n { print }' "$1"
}
