#!/bin/bash
# it_tls.sh - the data plane over TLS: curl and the official SDKs with the
# gateway's CA, a client that does not trust it, old protocol versions,
# plain HTTP sent to the TLS port, session resumption, an expired
# certificate, a certificate replaced on SIGHUP without dropping a stream,
# one that fails to load, and mutual TLS.

. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null 2>&1 || tg_bail "openssl is needed"
command -v node >/dev/null 2>&1 || tg_bail "node is needed"

PKI=$TG_TMP/pki
mkdir -p "$PKI"

# ca NAME : a self-signed CA, NAME.key and NAME.pem.
ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$PKI/$1.key" -out "$PKI/$1.pem" -days 30 \
		-subj "/CN=tollgate test $1" 2>/dev/null
}

# cert NAME CA SUBJECT [START END] : a certificate NAME.pem (key NAME.key)
# signed by CA, for 127.0.0.1 and localhost, valid from START to END
# (YYYYMMDDHHMMSSZ) or for 30 days from now.
cert() {
	local name=$1 ca=$2 subj=$3 start=${4:-} end=${5:-}
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "$subj" \
		2>/dev/null
	printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\n' >"$PKI/$name.ext"
	if [ -z "$start" ]; then
		openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.pem" \
			-CAkey "$PKI/$ca.key" -CAcreateserial -days 30 \
			-extfile "$PKI/$name.ext" -out "$PKI/$name.pem" 2>/dev/null
		return
	fi
	# openssl ca is the one that takes explicit dates.
	mkdir -p "$PKI/db.$name"
	: >"$PKI/db.$name/index.txt"
	cat >"$PKI/$name.cnf" <<-EOF
		[ca]
		default_ca = c
		[c]
		database = $PKI/db.$name/index.txt
		new_certs_dir = $PKI/db.$name
		serial = $PKI/db.$name/serial
		default_md = sha256
		policy = p
		copy_extensions = none
		x509_extensions = e
		[p]
		commonName = supplied
		[e]
		subjectAltName = IP:127.0.0.1, DNS:localhost
	EOF
	echo 1000 >"$PKI/db.$name/serial"
	openssl ca -batch -config "$PKI/$name.cnf" -cert "$PKI/$ca.pem" \
		-keyfile "$PKI/$ca.key" -in "$PKI/$name.csr" -startdate "$start" \
		-enddate "$end" -out "$PKI/$name.pem" 2>/dev/null
}

ca ca
ca other
ca clients
cert server ca "/CN=gateway one"
cert server2 ca "/CN=gateway two"
cert expired ca "/CN=gateway expired" 20200101000000Z 20210101000000Z
cert client clients "/CN=app-billing/O=Example"
cert stranger other "/CN=app-stranger"
for f in server server2 expired client stranger; do
	[ -s "$PKI/$f.pem" ] || tg_bail "could not make the $f certificate"
done
chmod 600 "$PKI"/*.key
cp "$PKI/server.pem" "$PKI/live.pem"
cp "$PKI/server.key" "$PKI/live.key"

tg_start_pg
tg_start_mock
tg_mock_providers
tg_ctl tenant add tls >/dev/null || tg_bail "tenant add failed"
KEY=$(tg_issue_key tls)

TLS_PORT=$(tg_free_port) || tg_bail "no free port"
TG_EXTRA_SECTIONS="$TG_MOCK_PROVIDERS

[route anthropic-messages]
target = anthropic:anthropic-messages"
tg_start_gateway "listen = 127.0.0.1:$TLS_PORT tls
tls_cert_file = $PKI/live.pem
tls_key_file = $PKI/live.key"
HTTPS=https://127.0.0.1:$TLS_PORT
BODY=$(tg_chat_body openai-chat)

# tls_curl ARGS... : a chat request over TLS; sets TG_STATUS, TG_BODY,
# TG_CURL_RC and CURL_ERR (curl's error text).
tls_curl() {
	TG_SEQ=$((TG_SEQ + 1))
	TG_BODY=$TG_TMP/tls.$TG_SEQ.body
	TG_STATUS=$(curl -sS --max-time 10 -o "$TG_BODY" -w '%{http_code}' \
		-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
		--data-binary "$BODY" "$@" "$HTTPS/v1/chat/completions" \
		2>"$TG_TMP/tls.err")
	TG_CURL_RC=$?
	CURL_ERR=$(cat "$TG_TMP/tls.err")
}

# served_subject : the subject of the certificate a new connection gets.
served_subject() {
	openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername localhost \
		</dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null
}

# -- curl ----------------------------------------------------------------
tls_curl --cacert "$PKI/ca.pem"
assert_eq "curl over TLS: 200" 200 "$TG_STATUS"
assert_file_eq "curl over TLS: the provider's answer" \
	"$FIXTURES/openai-chat.json" "$TG_BODY"

tls_curl
assert_eq "a client that does not trust the CA: curl refuses (60)" 60 "$TG_CURL_RC"

tls_curl --cacert "$PKI/ca.pem" --tlsv1.2 --tls-max 1.2
assert_eq "TLS 1.2: 200" 200 "$TG_STATUS"
tls_curl --cacert "$PKI/ca.pem" --tlsv1.3
assert_eq "TLS 1.3: 200" 200 "$TG_STATUS"
tls_curl --cacert "$PKI/ca.pem" --tlsv1.1 --tls-max 1.1 --ciphers 'DEFAULT:@SECLEVEL=0'
assert_true "TLS 1.1: refused (curl $TG_CURL_RC)" [ "$TG_CURL_RC" != 0 ]

CIPHER=$(openssl s_client -connect "127.0.0.1:$TLS_PORT" -tls1_2 \
	-cipher 'AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA' \
	</dev/null 2>&1 | grep -c 'Cipher is (NONE)\|handshake failure\|no cipher')
assert_true "TLS 1.2 without AEAD suites: refused" [ "$CIPHER" -ge 1 ]

# -- plain HTTP to the TLS port ------------------------------------------
TG_STATUS=$(curl -sS --max-time 5 -o "$TG_TMP/plain.body" -w '%{http_code}' \
	"http://127.0.0.1:$TLS_PORT/v1/models")
assert_eq "plain HTTP to the TLS port: 400" 400 "$TG_STATUS"
assert_eq "plain HTTP to the TLS port: says so, in JSON" plain_http_on_tls_port \
	"$(jq -r .error.code "$TG_TMP/plain.body")"

# -- the official SDKs ------------------------------------------------------
SDK=$top_srcdir/tests/sdk
if [ -d "$SDK/node_modules/openai" ]; then
	NODE_EXTRA_CA_CERTS=$PKI/ca.pem node "$SDK/openai.mjs" \
		"$(jq -n -c --arg base "$HTTPS/v1" --arg key "$KEY" \
			'{op: "chat", base: $base, key: $key, model: "openai-chat"}')" \
		>"$TG_TMP/sdk1.json" 2>"$TG_TMP/sdk1.err"
	assert_eq "openai SDK over TLS: chat succeeds" true \
		"$(jq -r .ok "$TG_TMP/sdk1.json" 2>&1)"
	assert_eq "openai SDK over TLS: reads the usage" 85 \
		"$(jq -r .usage.completion_tokens "$TG_TMP/sdk1.json" 2>&1)"
	NODE_EXTRA_CA_CERTS=$PKI/ca.pem node "$SDK/anthropic.mjs" \
		"$(jq -n -c --arg base "$HTTPS" --arg key "$KEY" \
			'{op: "messages", base: $base, key: $key, model: "anthropic-messages"}')" \
		>"$TG_TMP/sdk2.json" 2>"$TG_TMP/sdk2.err"
	assert_eq "anthropic SDK over TLS: messages succeed" true \
		"$(jq -r .ok "$TG_TMP/sdk2.json" 2>&1)"
	node "$SDK/openai.mjs" \
		"$(jq -n -c --arg base "$HTTPS/v1" --arg key "$KEY" \
			'{op: "chat", base: $base, key: $key, model: "openai-chat"}')" \
		>"$TG_TMP/sdk3.json" 2>"$TG_TMP/sdk3.err"
	assert_eq "openai SDK without the CA: a connection error" APIConnectionError \
		"$(jq -r .error.class "$TG_TMP/sdk3.json" 2>&1)"
else
	tg_not_ok "the SDKs are installed in tests/sdk (scripts/test installs them)"
fi

# -- session resumption -----------------------------------------------------
REUSED=$(openssl s_client -connect "127.0.0.1:$TLS_PORT" -tls1_2 -reconnect \
	</dev/null 2>/dev/null | grep -c '^Reused')
assert_true "TLS 1.2 sessions resume from a ticket ($REUSED of 5 reconnections)" \
	[ "$REUSED" -ge 5 ]

# -- a new certificate on SIGHUP, a stream on the old one goes on ----------
tg_mock_config '{"chunk_delay_ms": 300}'
curl -sS -N --max-time 30 --cacert "$PKI/ca.pem" -o "$TG_TMP/stream.out" \
	-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	--data-binary "$(tg_chat_body openai-chat -)" \
	"$HTTPS/v1/chat/completions" &
STREAM=$!
sleep 1
cp "$PKI/server2.pem" "$PKI/live.pem"
cp "$PKI/server2.key" "$PKI/live.key"
kill -HUP "$TG_GW_PID"
assert_true "after SIGHUP: new connections get the new certificate" \
	tg_wait_until 5 'served_subject | grep -q "gateway two"'
wait "$STREAM"
assert_eq "a stream begun before the reload ends whole" 0 $?
assert_true "...with its [DONE]" grep -q 'data: \[DONE\]' "$TG_TMP/stream.out"
tg_mock_reset

# -- a certificate that fails to load leaves the one in use ----------------
echo garbage >"$PKI/live.pem"
kill -HUP "$TG_GW_PID"
assert_true "a broken certificate on SIGHUP: an error naming the file" \
	tg_wait_until 5 "grep -q 'SIGHUP: tls: $PKI/live.pem' '$TG_TMP/gateway.log'"
assert_match "...and the one in use stays" "gateway two" "$(served_subject)"

# -- an expired certificate ---------------------------------------------
cp "$PKI/expired.pem" "$PKI/live.pem"
cp "$PKI/expired.key" "$PKI/live.key"
kill -HUP "$TG_GW_PID"
tg_wait_until 5 'served_subject | grep -q "gateway expired"'
assert_true "an expired certificate is logged as such" \
	grep -q 'expired' "$TG_TMP/gateway.log"
tls_curl --cacert "$PKI/ca.pem"
assert_eq "an expired certificate: curl refuses (60)" 60 "$TG_CURL_RC"
assert_match "...because it expired" "expired" "$CURL_ERR"
tg_stop_gateway

# -- mutual TLS ------------------------------------------------------------
cp "$PKI/server.pem" "$PKI/live.pem"
cp "$PKI/server.key" "$PKI/live.key"
tg_start_gateway "listen = 127.0.0.1:$TLS_PORT tls
tls_cert_file = $PKI/live.pem
tls_key_file = $PKI/live.key
tls_client_ca_file = $PKI/clients.pem"
tls_curl --cacert "$PKI/ca.pem"
assert_true "mutual TLS, no client certificate: the handshake fails (curl $TG_CURL_RC)" \
	[ "$TG_CURL_RC" != 0 ]
tls_curl --cacert "$PKI/ca.pem" --cert "$PKI/stranger.pem" --key "$PKI/stranger.key"
assert_true "mutual TLS, a certificate of another CA: fails (curl $TG_CURL_RC)" \
	[ "$TG_CURL_RC" != 0 ]
tls_curl --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client.key"
assert_eq "mutual TLS, the client's certificate: 200" 200 "$TG_STATUS"
tg_http POST /v1/chat/completions "$KEY" "$BODY"
assert_eq "the plain listener beside it still serves" 200 "$TG_STATUS"

# A tenant bound to its client certificate's subject.
tg_ctl tenant add bound >/dev/null || tg_bail "tenant add failed"
BOUND=$(tg_issue_key bound)
tg_ctl tenant bind bound "O=Example,CN=app-billing" >"$TG_TMP/bind.out"
assert_match "tenant bind: shown" "client cert: O=Example,CN=app-billing" \
	"$(cat "$TG_TMP/bind.out")"
KEY_SAVED=$KEY
KEY=$BOUND
assert_true "a bound tenant, its certificate: 200" \
	tg_wait_until 10 'tls_curl --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client.key"; [ "$TG_STATUS" = 200 ]'
tg_http POST /v1/chat/completions "$BOUND" "$BODY"
assert_eq "a bound tenant without a certificate: 403" 403 "$TG_STATUS"
assert_eq "...code client_certificate" client_certificate \
	"$(jq -r .error.code "$TG_BODY")"
tg_check_row "...recorded as the tenant's refusal" "$TG_RID" \
	"status, (SELECT name FROM tenants WHERE id = tenant_id)" "403|bound"
tg_ctl tenant bind bound "O=Example,CN=someone-else" >/dev/null
assert_true "bound to another subject: the certificate is refused (403)" \
	tg_wait_until 10 'tls_curl --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client.key"; [ "$TG_STATUS" = 403 ]'
tg_ctl tenant unbind bound >/dev/null
assert_true "unbound: served without a certificate again" \
	tg_wait_until 10 'tg_http POST /v1/chat/completions "$BOUND" "$BODY"; [ "$TG_STATUS" = 200 ]'
KEY=$KEY_SAVED
assert_true "failed handshakes are counted in /metrics" \
	[ "$(tg_metric tollgate_tls_handshake_failures_total)" -ge 2 ]

tg_done
