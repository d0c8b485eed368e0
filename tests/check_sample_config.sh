#!/usr/bin/env bash
# Every configuration key tollgated knows (its key table, printed by
# --print-defaults) is documented in etc/tollgate.conf.sample and in
# tollgate.conf(5), and the sample itself loads.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
tollgated=$top_builddir/src/tollgated
sample=$top_srcdir/etc/tollgate.conf.sample
man=$top_srcdir/doc/tollgate.conf.5
pass=0 fail=0

check() {
	if eval "$2"; then
		pass=$((pass + 1)); echo "ok - $1"
	else
		fail=$((fail + 1)); echo "not ok - $1"
	fi
}

keys=$("$tollgated" --print-defaults | sed -n 's/^\([a-z_]*\) = .*/\1/p' | sort -u)
check "the key table lists keys" '[ -n "$keys" ]'
for k in $keys; do
	check "sample documents '$k'" "grep -Eq '^;? ?$k =' '$sample'"
	check "tollgate.conf(5) documents '$k'" "grep -q '^\\.B $k\$' '$man'"
done
check "sample loads with tollgated -t (with a key secret)" \
	"TOLLGATE_KEY_SECRET=sample-check '$tollgated' -t -c '$sample' >/dev/null"
check "a bad key is refused with file and line" \
	"printf '[tollgate]\nlisten = 127.0.0.1:1\nlisten_typo = 1\n' > \"\${TMPDIR:-/tmp}/tg-bad.$$.conf\" &&
	 ! '$tollgated' -t -c \"\${TMPDIR:-/tmp}/tg-bad.$$.conf\" 2>\"\${TMPDIR:-/tmp}/tg-bad.$$.err\" &&
	 grep -q 'tg-bad.$$.conf:3: unknown key .listen_typo.' \"\${TMPDIR:-/tmp}/tg-bad.$$.err\""
rm -f "${TMPDIR:-/tmp}/tg-bad.$$.conf" "${TMPDIR:-/tmp}/tg-bad.$$.err"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
