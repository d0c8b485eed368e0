#!/bin/bash
# it_limits_ctl.sh - tollctl quota and limit against a real PostgreSQL:
# set, replace, list, clear, --json, and the errors with their exit
# statuses (1 for a bad command line, 2 for what the database refutes).

. "$(dirname "$0")/lib.sh"

# run NAME ARGS... : runs tollctl, keeping stdout, stderr and the exit
# status in $TG_TMP/NAME.{out,err} and RC.
run() {
	local name=$1
	shift
	tg_ctl "$@" >"$TG_TMP/$name.out" 2>"$TG_TMP/$name.err"
	RC=$?
	OUT=$TG_TMP/$name.out
	ERR=$TG_TMP/$name.err
}

# expect_ok LABEL : the last run exited 0 and wrote nothing to stderr.
expect_ok() {
	if [ "$RC" = 0 ] && [ ! -s "$ERR" ]; then
		tg_ok "$1: exits 0"
	else
		tg_not_ok "$1: exits 0, stderr empty" "exit status $RC" \
			"$(head -n 5 "$ERR")"
	fi
}

# expect_fail STATUS LABEL [PATTERN] : the last run exited STATUS with one
# line on stderr starting with "tollctl: " (and matching PATTERN, an
# extended regex, when given) and nothing on stdout.
expect_fail() {
	local want=$1 label=$2 pat=${3:-} lines
	lines=$(grep -c . "$ERR")
	if [ "$RC" = "$want" ] && [ "$lines" = 1 ] && [ ! -s "$OUT" ] &&
		grep -q '^tollctl: ' "$ERR" &&
		{ [ -z "$pat" ] || grep -Eq -e "$pat" "$ERR"; }; then
		tg_ok "$label: exit $want ($(head -c 100 "$ERR"))"
	else
		tg_not_ok "$label: exit $want with a one-line reason${pat:+ /$pat/}" \
			"exit status $RC, $lines lines on stderr:" \
			"$(head -n 5 "$ERR")" "stdout: $(head -c 200 "$OUT")"
	fi
}

# aligned LABEL : every line of the last table has the same width (its
# last column is fixed-width or right-aligned) and there is a header.
aligned() {
	local widths
	widths=$(awk '{ print length }' "$OUT" | sort -u | wc -l)
	if [ "$widths" = 1 ] && [ "$(wc -l <"$OUT")" -ge 2 ]; then
		tg_ok "$1: table aligned"
	else
		tg_not_ok "$1: table aligned" "$(cat "$OUT")"
	fi
}

# quota_row SCOPE_SQL : the quota's limits as token|spend|hard.
quota_row() {
	tg_psql "SELECT q.token_limit, q.spend_limit, q.hard FROM quotas q
		JOIN tenants t ON t.id = q.tenant_id WHERE $1"
}

tg_start_pg

run t1 tenant add acme --currency CNY --tz Asia/Shanghai
run t2 tenant add globex --currency JPY
run t3 tenant add initech
run k1 key issue --tenant acme --name a1 -q
AKEY=$(cat "$OUT")
run k2 key issue --tenant acme --name a2 -q
run k3 key issue --tenant globex --name g1 -q
GKEY=$(cat "$OUT")
[ "$RC" = 0 ] || tg_bail "cannot issue keys: $(cat "$ERR")"
A1_ID=$(tg_psql "SELECT id FROM api_keys WHERE name = 'a1'")
A1_PREFIX=$(tg_psql "SELECT prefix FROM api_keys WHERE name = 'a1'")
A2_ID=$(tg_psql "SELECT id FROM api_keys WHERE name = 'a2'")
G1_ID=$(tg_psql "SELECT id FROM api_keys WHERE name = 'g1'")
G1_PREFIX=$(tg_psql "SELECT prefix FROM api_keys WHERE name = 'g1'")

# --- quota set: create, then replace on the same scope.

run qs1 quota set --tenant acme --period month --tokens 50M --spend 2000
expect_ok "quota set --tokens 50M --spend 2000"
assert_match "quota set says it created the quota" \
	'^created quota [0-9]+ \(tenant acme, per month\): 50000000 tokens, 2000\.00 CNY, hard$' \
	"$(cat "$OUT")"
assert_eq "quota stored: 50M tokens, 2000 spend, hard" "50000000|2000|t" \
	"$(quota_row "t.name = 'acme' AND q.key_id IS NULL AND period = 'month'")"
Q1=$(tg_psql "SELECT id FROM quotas WHERE period = 'month'")

run qs2 quota set --tenant acme --period month --tokens 60M --soft
expect_ok "quota set again on the same scope"
assert_eq "quota set says what it replaced" \
	"replaced quota $Q1 (tenant acme, per month): 60000000 tokens, soft (was:\
 50000000 tokens, 2000.00 CNY, hard)" "$(cat "$OUT")"
assert_eq "the row is replaced whole: spend gone, soft" "60000000|NULL|f" \
	"$(quota_row "q.id = $Q1")"
assert_eq "still one month quota for acme" 1 \
	"$(tg_psql "SELECT count(*) FROM quotas WHERE period = 'month'")"
assert_eq "updated_at moved, created_at kept" t \
	"$(tg_psql "SELECT updated_at > created_at FROM quotas WHERE id = $Q1")"

# Key by prefix, id and full key; the model pattern is part of the scope.
run qs3 quota set --tenant acme --key "$A1_PREFIX" --model 'glm-*' --period day --spend 19.9
expect_ok "quota set --key PREFIX --model 'glm-*' --spend 19.9"
Q3=$(tg_psql "SELECT id FROM quotas WHERE model_pattern = 'glm-*'")
assert_eq "key and model named in the output" \
	"created quota $Q3 (tenant acme, key $A1_PREFIX, model glm-*, per day):\
 19.90 CNY, hard" "$(cat "$OUT")"
run qs4 quota set --tenant acme --key "$A1_ID" --model 'glm-*' --period day --spend 25 --tokens 1.5M
expect_ok "quota set --key ID on the same key and model"
assert_match "key by id replaces the key-and-model quota" '^replaced quota ' "$(cat "$OUT")"
run qs5 quota set --tenant acme --key "$AKEY" --model 'glm-*' --period day --spend 30 --tokens 1.5M
expect_ok "quota set --key with the full key"
assert_match "full key replaces the same quota" '^replaced quota ' "$(cat "$OUT")"
assert_eq "one quota per (tenant, key, model, period)" 1 \
	"$(tg_psql "SELECT count(*) FROM quotas WHERE key_id = $A1_ID")"
run qs6 quota set --tenant acme --key "$A1_ID" --period day --tokens 1M
expect_ok "quota set for the key without a model is another quota"
run qs7 quota set --tenant acme --period day --tokens 2M
expect_ok "quota set for the tenant per day is another quota"
assert_eq "acme has four quotas" 4 \
	"$(tg_psql "SELECT count(*) FROM quotas q JOIN tenants t ON t.id = q.tenant_id
		WHERE t.name = 'acme'")"

# --json, exact integers and the decimal spend as a string.
run qs8 --json quota set --tenant globex --key "$G1_PREFIX" --period total \
	--tokens 9007199254740993 --spend 5000000
expect_ok "quota set --json (created)"
assert_json "--json: created, no previous, exact fields" \
	'.replaced == false and .previous == null and .tenant == "globex" and
	 .key_id == '"$G1_ID"' and .period == "total" and .spend == "5000000" and
	 .currency == "JPY" and .hard == true and .model == null' "$OUT"
assert_true "--json keeps tokens exact (2^53 + 1)" \
	grep -Eq '"tokens":[[:space:]]*9007199254740993,' "$OUT"
run qs9 --json quota set --tenant globex --key "$G1_ID" --period total --tokens 7 --soft
expect_ok "quota set --json (replaced)"
assert_json "--json: replaced, with the previous limits" \
	'.replaced == true and .tokens == 7 and .spend == null and .hard == false
	 and .previous.spend == "5000000" and .previous.hard == true' "$OUT"
assert_true "--json previous keeps tokens exact" \
	grep -Eq '"tokens":[[:space:]]*9007199254740993,' "$OUT"

# --- quota list.

run ql1 quota list
expect_ok "quota list"
aligned "quota list"
assert_eq "quota list: header" \
	"ID TENANT KEY MODEL PERIOD TOKENS SPEND MODE USED RESERVED SPENT" \
	"$(head -n 1 "$OUT" | tr -s ' ')"
assert_eq "quota list: a line per quota" 5 "$(($(wc -l <"$OUT") - 1))"
assert_true "quota list: tenant month quota with '-' key, model and spend" \
	grep -Eq "^ *$Q1 +acme +- +- +month +60000000 +- +soft +0 +0 +-$" "$OUT"
assert_true "quota list: spend with its currency" \
	grep -Eq "acme +$A1_PREFIX +glm-\\* +day +1500000 +30\\.00 CNY +hard +0 +0 +0\\.00 CNY$" "$OUT"
# This period's use, from the quota's counter (the gateway keeps it).
tg_psql "INSERT INTO quota_counters (quota_id, period_start, used_tokens,
	reserved_tokens, used_nanos) SELECT id, tollgate_period_start(period,
	now(), 'Asia/Shanghai'), 1234, 56, 7890000000 FROM quotas WHERE id = $Q1" >/dev/null
run ql1b quota list --json
expect_ok "quota list --json with a counter"
assert_eq "quota list --json: this period's use" "1234|56|7.89" \
	"$(jq -r ".[] | select(.id == $Q1) | \"\\(.used_tokens)|\\(.reserved_tokens)|\\(.spent)\"" "$OUT")"
run ql2 quota list --tenant acme
expect_ok "quota list --tenant acme"
assert_true "quota list --tenant acme leaves globex out" \
	sh -c "! grep -q globex '$OUT'"
run ql3 --json quota list --tenant acme
expect_ok "quota list --json"
assert_json "quota list --json: acme's four, tenant first, ordered" \
	'length == 4 and .[0].key == null and .[0].model == null and
	 .[0].period == "day" and .[0].tokens == 2000000 and
	 .[1].period == "month" and .[1].spend == null and .[1].hard == false and
	 ([.[] | select(.model == "glm-*")][0] | .spend == "30.00" and
	  .tokens == 1500000 and .key_id == '"$A1_ID"')' "$OUT"
run ql4 quota list --tenant nobody
expect_fail 2 "quota list of an unknown tenant" "no tenant named 'nobody'"
run ql5 quota list --tenant initech
expect_ok "quota list of a tenant without quotas"
assert_eq "an empty list is only the header" 1 "$(wc -l <"$OUT")"

# --- quota set errors.

run qe1 quota set --tenant nobody --period day --tokens 1
expect_fail 2 "quota set for an unknown tenant" "no tenant named"
run qe2 quota set --tenant acme --key "$G1_PREFIX" --period day --tokens 1
expect_fail 2 "quota set with a key of another tenant" "belongs to tenant 'globex'"
run qe3 quota set --tenant acme --key "$G1_ID" --period day --tokens 1
expect_fail 2 "quota set with another tenant's key id" "belongs to tenant 'globex'"
run qe3k quota set --tenant acme --key "$GKEY" --period day --tokens 1
expect_fail 2 "quota set with another tenant's full key" "belongs to tenant 'globex'"
assert_true "the full key is not echoed in the message" \
	sh -c "! grep -qF -- '$GKEY' '$ERR'"
run qe4 quota set --tenant acme --key 999999 --period day --tokens 1
expect_fail 2 "quota set with an unknown key" "no key matches"
tg_psql "INSERT INTO api_keys (tenant_id, prefix, hash)
	SELECT id, 'tg-ambig0' || n, repeat(n::text, 64) FROM tenants,
	generate_series(1, 2) n WHERE name = 'acme'" >/dev/null
run qe5 quota set --tenant acme --key tg-ambig --period day --tokens 1
expect_fail 2 "quota set with a prefix matching two keys" "ambiguous"
run qe6 quota set --tenant acme --period year --tokens 1
expect_fail 1 "quota set with a bad period" "--period 'year'"
run qe7 quota set --tenant acme --tokens 1
expect_fail 1 "quota set without --period" "--period is required"
run qe8 quota set --period day --tokens 1
expect_fail 1 "quota set without --tenant" "--tenant is required"
run qe9 quota set --tenant acme --period day
expect_fail 1 "quota set without --tokens or --spend" "--tokens, --spend"
run qe10 quota set --tenant acme --period day --tokens 0
expect_fail 1 "quota set --tokens 0" "above zero"
run qe11 quota set --tenant acme --period day --tokens -5
expect_fail 1 "quota set --tokens -5"
run qe12 quota set --tenant acme --period day --tokens 1.5
expect_fail 1 "quota set --tokens 1.5 (not whole)"
run qe13 quota set --tenant acme --period day --spend 0
expect_fail 1 "quota set --spend 0" "above zero"
run qe14 quota set --tenant acme --period day --spend -10
expect_fail 1 "quota set --spend -10" "above zero"
run qe15 quota set --tenant acme --period day --spend 1.234
expect_fail 1 "quota set --spend with more decimals than CNY has" "at most 2 decimals in CNY"
run qe16 quota set --tenant globex --period day --spend 1.5
expect_fail 1 "quota set --spend with decimals in JPY" "JPY has no decimals"
run qe17 quota set --tenant acme --period day --spend 1e3
expect_fail 1 "quota set --spend 1e3" "not a decimal"
run qe18 quota set --tenant acme --period day --tokens 5 --soft --hard
expect_fail 1 "quota set --soft --hard" "exclude each other"
run qe19 quota set --tenant acme --period day --tokens 5 --model ''
expect_fail 1 "quota set --model ''" "cannot be empty"
run qe20 quota set --tenant acme --period day --tokens 5 --key tg
expect_fail 1 "quota set --key too short" "invalid --key"
run qe21 quota set --tenant acme --period day --tokens 5 stray
expect_fail 1 "quota set with a stray argument" "unexpected argument"
run qe22 quota set --tenant acme --period day --tokens 5 --bogus
expect_fail 1 "quota set with an unknown option" "unknown option"
run qe22a quota set --tenant acme --period day --tokens 5 --soft=yes
expect_fail 1 "quota set --soft=yes (a flag given a value)" \
	"option '--soft' takes no value"
run qe22b quota set --period day --tokens 5 --tenant
expect_fail 1 "quota set --tenant without its value" \
	"option '--tenant' needs a value"
run qe23 quota set --tenant acme --period day --spend 12.50
expect_ok "quota set --spend 12.50 (trailing zero within CNY's decimals)"
assert_eq "nothing was written by the failed sets" 5 \
	"$(tg_psql "SELECT count(*) FROM quotas")"
assert_eq "spend 12.50 replaced the day quota's limits" "NULL|12.5|t" \
	"$(quota_row "t.name = 'acme' AND q.key_id IS NULL AND period = 'day'")"

# --- quota clear.

run qc1 quota clear "$Q1"
expect_ok "quota clear ID"
assert_match "quota clear prints what it removed" \
	"^cleared quota $Q1 \\(tenant acme, per month\\): 60000000 tokens, soft$" "$(cat "$OUT")"
assert_eq "the quota is gone" 0 "$(tg_psql "SELECT count(*) FROM quotas WHERE id = $Q1")"
run qc2 quota clear "$Q1"
expect_fail 2 "quota clear of a removed id" "no quota with id $Q1"
run qc3 --json quota clear --tenant acme --key "$A1_PREFIX" --model 'glm-*' --period day
expect_ok "quota clear by scope --json"
assert_json "quota clear --json prints the removed quota" \
	'.key_id == '"$A1_ID"' and .model == "glm-*" and .spend == "30.00"' "$OUT"
run qc4 quota clear --tenant acme --key "$A1_PREFIX" --model 'glm-*' --period day
expect_fail 2 "quota clear of a scope without a quota" "no day quota"
run qc5 quota clear --tenant acme --key "$A2_ID" --period day
expect_fail 2 "quota clear for a key without that quota" "no day quota"
run qc6 quota clear --tenant acme --key "$G1_PREFIX" --period total
expect_fail 2 "quota clear with a key of another tenant" "belongs to tenant"
run qc7 quota clear --tenant nobody --period day
expect_fail 2 "quota clear for an unknown tenant" "no tenant named"
run qc8 quota clear
expect_fail 1 "quota clear without anything" "give a quota ID"
run qc9 quota clear --tenant acme
expect_fail 1 "quota clear without --period" "give a quota ID"
run qc10 quota clear 5 --tenant acme --period day
expect_fail 1 "quota clear with both an ID and a scope" "not both"
run qc11 quota clear five
expect_fail 1 "quota clear with a bad ID" "not a quota id"
run qc12 quota clear --tenant acme --period fortnight
expect_fail 1 "quota clear with a bad period" "--period 'fortnight'"
run qc13 quota clear --tenant acme --key "$A1_ID" --period day
expect_ok "quota clear of the key's own day quota"
assert_eq "the tenant's day quota is kept" 1 \
	"$(tg_psql "SELECT count(*) FROM quotas q JOIN tenants t ON t.id = q.tenant_id
		WHERE t.name = 'acme' AND q.key_id IS NULL AND period = 'day'")"

# --- limit set / list / clear.

run ls1 limit set --tenant acme --rpm 600 --tpm 200k --concurrency 20
expect_ok "limit set --rpm 600 --tpm 200k --concurrency 20"
assert_eq "limit set says it created them" \
	"created rate limits (tenant acme): 600 rpm, 200000 tpm, 20 concurrent" "$(cat "$OUT")"
assert_eq "rate limits stored" "600|200000|20" \
	"$(tg_psql "SELECT rpm, tpm, concurrency FROM rate_limits WHERE key_id IS NULL")"
run ls2 limit set --tenant acme --rpm 100
expect_ok "limit set again with only --rpm"
assert_eq "limit set says what it replaced" \
	"replaced rate limits (tenant acme): 100 rpm (was: 600 rpm, 200000 tpm, 20 concurrent)" \
	"$(cat "$OUT")"
assert_eq "the row is replaced whole: tpm and concurrency gone" "100|NULL|NULL|1" \
	"$(tg_psql "SELECT rpm, tpm, concurrency, (SELECT count(*) FROM rate_limits)
		FROM rate_limits WHERE key_id IS NULL")"
run ls3 limit set --tenant acme --key "$A1_PREFIX" --tpm 1.5M
expect_ok "limit set --key PREFIX --tpm 1.5M"
assert_eq "key limits are their own row" "$A1_ID|NULL|1500000|NULL" \
	"$(tg_psql "SELECT key_id, rpm, tpm, concurrency FROM rate_limits
		WHERE key_id IS NOT NULL")"
run ls4 --json limit set --tenant acme --key "$A1_ID" --concurrency 3 \
	--tpm 9007199254740993
expect_ok "limit set --json (replaced)"
assert_json "limit set --json: replaced, previous, exact fields" \
	'.replaced == true and .key_id == '"$A1_ID"' and .key == "'"$A1_PREFIX"'" and
	 .rpm == null and .concurrency == 3 and .previous.tpm == 1500000 and
	 .previous.rpm == null' "$OUT"
assert_true "limit set --json keeps tpm exact" \
	grep -Eq '"tpm":[[:space:]]*9007199254740993,' "$OUT"
run ls5 --json limit set --tenant globex --concurrency 5
expect_ok "limit set --json (created)"
assert_json "limit set --json: created, no previous" \
	'.replaced == false and .previous == null and .tenant == "globex"' "$OUT"

run ll1 limit list
expect_ok "limit list"
aligned "limit list"
assert_eq "limit list: header" "TENANT KEY RPM TPM CONCURRENCY" \
	"$(head -n 1 "$OUT" | tr -s ' ')"
assert_eq "limit list: rows in order with '-' for no limit" \
	"acme - 100 - -
acme $A1_PREFIX - 9007199254740993 3
globex - - - 5" "$(tail -n +2 "$OUT" | tr -s ' ')"
run ll2 --json limit list --tenant acme
expect_ok "limit list --json --tenant acme"
assert_json "limit list --json: acme's two rows" \
	'length == 2 and .[0].key == null and .[0].rpm == 100 and
	 .[0].tpm == null and .[1].key_id == '"$A1_ID"' and .[1].concurrency == 3' "$OUT"
run ll3 limit list --tenant nobody
expect_fail 2 "limit list of an unknown tenant" "no tenant named"

run le1 limit set --tenant acme
expect_fail 1 "limit set without a limit" "at least one"
run le2 limit set --rpm 5
expect_fail 1 "limit set without --tenant" "--tenant is required"
run le3 limit set --tenant acme --rpm 0
expect_fail 1 "limit set --rpm 0" "above zero"
run le4 limit set --tenant acme --concurrency -1
expect_fail 1 "limit set --concurrency -1"
run le5 limit set --tenant acme --rpm 3G
expect_fail 1 "limit set --rpm beyond an integer" "at most 2147483647"
run le6 limit set --tenant acme --tpm 10x
expect_fail 1 "limit set --tpm 10x"
run le7 limit set --tenant nobody --rpm 5
expect_fail 2 "limit set for an unknown tenant" "no tenant named"
run le8 limit set --tenant acme --key "$G1_PREFIX" --rpm 5
expect_fail 2 "limit set with a key of another tenant" "belongs to tenant 'globex'"
run le9 limit set --tenant acme --key 999999 --rpm 5
expect_fail 2 "limit set with an unknown key" "no key matches"
assert_eq "nothing was written by the failed sets" 3 \
	"$(tg_psql "SELECT count(*) FROM rate_limits")"

run lc1 limit clear --tenant acme --key "$A1_ID"
expect_ok "limit clear --key"
assert_eq "limit clear prints what it removed" \
	"cleared rate limits (tenant acme, key $A1_PREFIX): 9007199254740993 tpm, 3 concurrent" \
	"$(cat "$OUT")"
run lc2 limit clear --tenant acme --key "$A1_ID"
expect_fail 2 "limit clear of a key without limits" "no rate limits"
run lc3 --json limit clear --tenant globex
expect_ok "limit clear --json"
assert_json "limit clear --json prints the removed row" \
	'.tenant == "globex" and .concurrency == 5 and .key == null' "$OUT"
run lc4 limit clear --tenant initech
expect_fail 2 "limit clear of a tenant without limits" "no rate limits"
run lc5 limit clear --tenant nobody
expect_fail 2 "limit clear for an unknown tenant" "no tenant named"
run lc6 limit clear
expect_fail 1 "limit clear without --tenant" "--tenant is required"
assert_eq "only acme's tenant limits are left" "acme|NULL|100" \
	"$(tg_psql "SELECT t.name, l.key_id, l.rpm FROM rate_limits l
		JOIN tenants t ON t.id = l.tenant_id")"

# --- dispatch and help.

run d1 quota
expect_fail 1 "quota without a verb" "missing verb"
run d2 limit frob
expect_fail 1 "limit with an unknown verb" "unknown verb 'frob'"
run d3 quota set --help
expect_ok "quota set --help"
assert_true "quota set --help shows the usage" grep -q '^usage: tollctl quota set' "$OUT"
run d4 limit --help
expect_ok "limit --help"
assert_true "limit --help says kinds not given are cleared" \
	grep -q 'a kind not given has no limit' "$OUT"

tg_done
