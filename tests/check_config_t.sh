#!/usr/bin/env bash
# tollgated -t checks what a start checks: the key secret is present,
# secret files exist, are readable and are not open to the group or
# others (unless allow_open_secret_files), provider credentials' variables
# are set, the TLS certificate and key load, and the admin address off
# loopback has a token. No database needed.
set -u
top_builddir=${top_builddir:-.}
tollgated=$top_builddir/src/tollgated
dir=$(mktemp -d "${TMPDIR:-/tmp}/tg-check-t.XXXXXX")
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0

# t_check DESC WANT(ok|fail) PATTERN [CONFIG_LINES] : runs tollgated -t on
# a config with CONFIG_LINES; it must succeed or fail as WANT says, its
# output matching PATTERN.
t_check() {
	local desc=$1 want=$2 pat=$3 lines=${4:-} out rc
	printf '[tollgate]\nlisten = 127.0.0.1:1\nspool_dir = %s\n%s\n' \
		"$dir/spool" "$lines" >"$dir/t.conf"
	out=$("$tollgated" -t -c "$dir/t.conf" 2>&1)
	rc=$?
	if { [ "$want" = ok ] && [ $rc = 0 ]; } ||
		{ [ "$want" = fail ] && [ $rc != 0 ]; } &&
		grep -Eq -- "$pat" <<<"$out"; then
		pass=$((pass + 1))
		echo "ok - $desc"
	else
		fail=$((fail + 1))
		echo "not ok - $desc"
		echo "#   exit $rc: $out"
	fi
}

unset TOLLGATE_KEY_SECRET
printf 'secret-one\n' >"$dir/secret"
chmod 600 "$dir/secret"
printf 'sk-provider\n' >"$dir/provider.key"
chmod 600 "$dir/provider.key"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$dir/tls.key" -out "$dir/tls.pem" -days 2 -subj /CN=t \
	2>/dev/null
chmod 600 "$dir/tls.key"

t_check "no key secret: refused" fail "no key secret: set key_secret_file or TOLLGATE_KEY_SECRET"
TOLLGATE_KEY_SECRET=from-env t_check "the secret from the environment: OK" ok "configuration OK"
t_check "a key secret file: OK" ok "configuration OK" "key_secret_file = $dir/secret"
t_check "a missing key secret file: refused" fail "$dir/nope: No such file" \
	"key_secret_file = $dir/nope"
: >"$dir/empty"
chmod 600 "$dir/empty"
t_check "an empty key secret file: refused" fail "the file is empty" \
	"key_secret_file = $dir/empty"
chmod 644 "$dir/secret"
t_check "a key secret file others can read: refused" fail \
	"$dir/secret: mode 0644 lets others read this secret; chmod 600" \
	"key_secret_file = $dir/secret"
t_check "...unless allow_open_secret_files" ok "configuration OK" \
	"key_secret_file = $dir/secret
allow_open_secret_files = yes"
chmod 600 "$dir/secret"
S="key_secret_file = $dir/secret"

t_check "a provider key file: OK" ok "configuration OK" "$S
[provider p]
base_url = http://127.0.0.1:1/v1
api_key_file = $dir/provider.key"
chmod 640 "$dir/provider.key"
t_check "a provider key file the group can read: refused" fail \
	"provider p: $dir/provider.key: mode 0640" "$S
[provider p]
base_url = http://127.0.0.1:1/v1
api_key_file = $dir/provider.key"
t_check "a provider key variable not set: refused" fail \
	"provider p: environment variable TG_CHECK_UNSET_KEY is not set" "$S
[provider p]
base_url = http://127.0.0.1:1/v1
api_key_env = TG_CHECK_UNSET_KEY"

t_check "a TLS listener with its certificate: OK" ok "configuration OK" "$S
listen = 127.0.0.1:2 tls
tls_cert_file = $dir/tls.pem
tls_key_file = $dir/tls.key"
t_check "a TLS certificate that is missing: refused" fail "tls: $dir/missing.pem" "$S
listen = 127.0.0.1:2 tls
tls_cert_file = $dir/missing.pem
tls_key_file = $dir/tls.key"
t_check "a TLS key that does not match: refused" fail "tls: $dir/provider.key" "$S
listen = 127.0.0.1:2 tls
tls_cert_file = $dir/tls.pem
tls_key_file = $dir/provider.key
allow_open_secret_files = yes"
t_check "tls without a certificate: refused" fail "tls needs tls_cert_file and tls_key_file" "$S
listen = 127.0.0.1:2 tls"

t_check "admin_listen off loopback without a token: refused" fail \
	"admin_listen 0.0.0.0:9 is not a loopback address: set admin_token_file" "$S
admin_listen = 0.0.0.0:9"
printf 'tok\n' >"$dir/admin.token"
chmod 600 "$dir/admin.token"
t_check "...with a token: OK" ok "configuration OK" "$S
admin_listen = 0.0.0.0:9
admin_token_file = $dir/admin.token"
chmod 604 "$dir/admin.token"
t_check "...with a token file others can read: refused" fail \
	"$dir/admin.token: mode 0604" "$S
admin_listen = 0.0.0.0:9
admin_token_file = $dir/admin.token"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
