#!/bin/bash
# it_billing.sh - prices, grants, discounts and bills through the real
# gateway and PostgreSQL: every usage record's cost columns are checked to
# the nano-unit against amounts computed here in integer arithmetic; grants
# split requests exactly and burn earliest-ending first, never below zero
# under concurrent requests; expired grants are worth nothing; the largest
# discount wins; a contract price beats the list price; a month with a price
# change bills two lines; a closed month's late usage becomes an adjustment
# on the next bill; a model without a price is served and billed as
# unpriced. Ends with a bill of 30,000 imported records, timed.

. "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------------------
# Exact arithmetic (bash 64-bit integers; no floats anywhere).

# Prints a decimal price ("2.5", "0.123456789") in nano-units.
nanos() {
	local whole=${1%%.*} frac=
	[[ $1 == *.* ]] && frac=${1#*.}
	frac=${frac}000000000
	frac=${frac:0:9}
	echo $((10#${whole:-0} * 1000000000 + 10#$frac))
}

# cost IN CACHED CACHE_WRITE OUT P_IN P_CACHED P_CW P_OUT : the cost in
# nano-units of token counts at prices per million (decimal text), summed
# over classes and rounded once, half up.
cost() {
	local sum=$(($1 * $(nanos "$5") + $2 * $(nanos "$6") +
		$3 * $(nanos "$7") + $4 * $(nanos "$8")))
	echo $(((sum + 500000) / 1000000))
}

# Prints nano-units scaled by BP basis points, rounded half up: the same as
# price_cost_bp when the cost was exact in nano-units.
bp_of() {
	echo $((($1 * $2 + 5000) / 10000))
}

# Prints a decimal price with at most six decimals in micro-units, for
# invoice lines: tokens * micro-units stays far below 2^63 / 10^4.
micros() {
	local whole=${1%%.*} frac=
	[[ $1 == *.* ]] && frac=${1#*.}
	if [ ${#frac} -gt 6 ]; then
		echo "micros: $1 has more than six decimals" >&2
		return 1
	fi
	frac=${frac}000000
	frac=${frac:0:6}
	echo $((10#${whole:-0} * 1000000 + 10#$frac))
}

# Prints cents as a decimal with two digits ("3.99", "0.40").
money() {
	printf '%d.%02d' $(($1 / 100)) $(($1 % 100))
}

# line_cents TOKENS PRICE [BP] : an invoice line in cents, each rounded once
# half up from the exact value: "list discount amount", where the discount
# takes BP basis points of the list (all tokens billable).
line_cents() {
	local x=$(($1 * $(micros "$2"))) bp=${3:-0}
	# x is in 10^-12 of the currency: cents are x / 10^10; the discount
	# x * bp / 10^14 and the amount x * (10^4 - bp) / 10^14.
	echo "$(((x + 5000000000) / 10000000000))" \
		"$(((x * bp + 50000000000000) / 100000000000000))" \
		"$(((x * (10000 - bp) + 50000000000000) / 100000000000000))"
}

# imp RID TS TENANT MODEL PROMPT COMPLETION : one JSON line for usage
# import, for provider zhipu.
imp() {
	printf '{"request_id":"%s","ts":"%s","tenant":"%s",' "$1" "$2" "$3"
	printf '"provider":"zhipu",'
	printf '"upstream_model":"%s","requested_model":"%s",' "$4" "$4"
	printf '"prompt_tokens":%s,"completion_tokens":%s}\n' "$5" "$6"
}

# ---------------------------------------------------------------------------
# Helpers.

# Prints a date relative to today (UTC), as `date -d` understands it.
day() {
	date -u -d "$1" +%Y-%m-%d
}

# chat KEY MODEL : one non-streamed chat request; RID holds its request id.
chat() {
	tg_http POST /v1/chat/completions "$1" "$(tg_chat_body "$2")"
	RID=$TG_RID
	if [ "$TG_STATUS" != 200 ]; then
		tg_not_ok "$2 request for the billing checks answers 200" \
			"got $TG_STATUS: $(head -c 300 "$TG_BODY")"
	fi
	tg_wait_row "$RID" || tg_not_ok "usage record of $RID within 10 s"
}

# Prints one column of the newest price row id matching a filter.
price_id() {
	tg_psql "SELECT max(id) FROM prices WHERE $1"
}

# Prints the id of a promotion by name.
promo_id() {
	tg_psql "SELECT id FROM promotions WHERE name = $(tg_sql_quote "$1")"
}


COST_COLS="price_id, currency, unpriced, free_input_tokens,
	free_cached_tokens, free_cache_write_tokens, free_output_tokens,
	coalesce(discount_id, 0), discount_bp, list_nanos, free_nanos,
	discount_nanos, billed_nanos"

tg_start_pg
tg_start_mock

YESTERDAY=$(day yesterday)
IN_30_DAYS=$(day '+30 days')
IN_1_YEAR=$(day '+1 year')
IN_2_YEARS=$(day '+2 years')

# Tenants, one per scenario, so no promotion reaches another's requests.
for t in t-list t-contract t-grant t-two t-disc t-both t-cny t-ended \
	t-conc t-unpriced t-exp t-month t-close t-perf t-race; do
	case $t in
	t-cny | t-month | t-close | t-perf)
		tg_ctl tenant add "$t" --currency CNY >/dev/null ;;
	*) tg_ctl tenant add "$t" >/dev/null ;;
	esac || tg_bail "cannot add tenant $t"
done
declare -A KEY
for t in t-list t-contract t-grant t-two t-disc t-both t-cny t-ended \
	t-conc t-unpriced; do
	KEY[$t]=$(tg_issue_key "$t") || tg_bail "cannot issue a key for $t"
done

# ---------------------------------------------------------------------------
# Prices. zhipu-chat: an old list price, the list price in force (later),
# and an older contract price for t-contract that beats it. openai-chat:
# input, cached and output. deepseek-chat: USD and CNY rows from the same
# day, later than the seeded 2024-08-02 rows they replace.

tg_ctl_ok "price set: zhipu-chat old list price" price set --provider zhipu \
	--model zhipu-chat --input 9 --output 9 --currency CNY --from 2020-01-01
tg_ctl_ok "price set: zhipu-chat list price" price set --provider zhipu \
	--model zhipu-chat --input 0.123456789 --output 0.987654321 \
	--currency CNY --from 2024-01-01
tg_ctl_ok "price set: zhipu-chat contract price" price set --provider zhipu \
	--model zhipu-chat --input 0.3 --output 0.6 --currency CNY \
	--from 2020-01-01 --tenant t-contract
tg_ctl_ok "price set: openai-chat" price set --provider openai \
	--model openai-chat --input 2.5 --cached 1.25 --output 10 \
	--currency USD --from 2020-01-01
tg_ctl_ok "price set: deepseek-chat USD" price set --provider deepseek \
	--model deepseek-chat --input 0.27 --cached 0.07 --output 1.1 \
	--currency USD --from 2025-06-01
tg_ctl_ok "price set: deepseek-chat CNY" price set --provider deepseek \
	--model deepseek-chat --input 2 --cached 0.5 --output 8 \
	--currency CNY --from 2025-06-01

ZHIPU_CHAT="provider = 'zhipu' AND model = 'zhipu-chat'"
P_ZHIPU_LIST=$(price_id "$ZHIPU_CHAT AND tenant_id IS NULL")
P_ZHIPU_CONTRACT=$(price_id "$ZHIPU_CHAT AND tenant_id IS NOT NULL")
P_OPENAI=$(price_id "provider = 'openai' AND model = 'openai-chat'")
P_DS_USD=$(price_id "model = 'deepseek-chat' AND currency = 'USD'")
P_DS_CNY=$(price_id "model = 'deepseek-chat' AND currency = 'CNY'")

# Prices of the fixtures' token classes (input, cached, cache write,
# output) and their counts.
ZP=(0.123456789 0.123456789 0.123456789 0.987654321) # zhipu-chat list
ZC=(0.3 0.3 0.3 0.6)                                 # zhipu-chat contract
OP=(2.5 1.25 2.5 10)                                 # openai-chat
DU=(0.27 0.07 0.27 1.1)                              # deepseek-chat USD
DC=(2 0.5 2 8)                                       # deepseek-chat CNY
ZT=(16 0 0 44)       # zhipu-chat: 16 prompt, 44 completion
OT=(176 1024 0 85)   # openai-chat: 1200 prompt incl. 1024 cached, 85
DT=(76 1024 0 50)    # deepseek-chat: 1100 prompt incl. 1024 cached, 50

# ---------------------------------------------------------------------------
# Promotions (before the gateway starts, so it sees them at once).

tg_ctl_ok "promo add: grant that runs out mid-request" promo add \
	--name g-mid --free-tokens 30 --tenant t-grant --model 'zhipu-*' \
	--provider zhipu --from "$YESTERDAY" --until "$IN_1_YEAR"
# Created first (lower id) but ending later: burns second.
tg_ctl_ok "promo add: later-ending grant" promo add --name g-late \
	--free-tokens 1000 --tenant t-two --model 'openai-*' \
	--from "$YESTERDAY" --until "$IN_2_YEARS"
tg_ctl_ok "promo add: earlier-ending grant" promo add --name g-early \
	--free-tokens 50 --tenant t-two --model 'openai-*' \
	--from "$YESTERDAY" --until "$IN_30_DAYS"
tg_ctl_ok "promo add: 10% discount" promo add --name d10 --discount 10% \
	--tenant t-disc --model 'deepseek-*' --from "$YESTERDAY" \
	--until "$IN_1_YEAR"
tg_ctl_ok "promo add: 25% discount" promo add --name d25 --discount 25% \
	--tenant t-disc --model deepseek-chat --from "$YESTERDAY" \
	--until "$IN_1_YEAR"
tg_ctl_ok "promo add: 15% discount" promo add --name d15 --discount 15% \
	--tenant t-disc --from "$YESTERDAY" --until "$IN_1_YEAR"
tg_ctl_ok "promo add: 40% discount for another model" promo add --name d40z \
	--discount 40% --tenant t-disc --model 'zhipu-*' \
	--from "$YESTERDAY" --until "$IN_1_YEAR"
tg_ctl_ok "promo add: 40% discount of another provider" promo add \
	--name d40p --discount 40% --tenant t-disc --provider zhipu \
	--from "$YESTERDAY" --until "$IN_1_YEAR"
tg_ctl_ok "promo add: grant with a discount" promo add --name g-both \
	--free-tokens 100 --tenant t-both --model 'deepseek-*' \
	--from "$YESTERDAY" --until "$IN_1_YEAR"
tg_ctl_ok "promo add: discount with a grant" promo add --name d-both \
	--discount 20% --tenant t-both --from "$YESTERDAY" --until "$IN_1_YEAR"
tg_ctl_ok "promo add: grant to be ended" promo add --name g-ended \
	--free-tokens 1000 --tenant t-ended --from "$YESTERDAY" \
	--until "$IN_1_YEAR"
tg_ctl_ok "promo add: small grant for concurrent requests" promo add \
	--name g-conc --free-tokens 500 --tenant t-conc --model 'zhipu-*' \
	--from "$YESTERDAY" --until "$IN_1_YEAR"

tg_start_gateway

# ---------------------------------------------------------------------------
# List prices, currencies, the contract price.

chat "${KEY[t-list]}" zhipu-chat
LIST=$(cost "${ZT[@]}" "${ZP[@]}")
assert_eq "zhipu-chat at the list price in force (latest effective_from)" \
	"$P_ZHIPU_LIST|CNY|f|0|0|0|0|0|0|$LIST|0|0|$LIST" \
	"$(tg_row "$RID" "$COST_COLS")"
assert_eq "zhipu-chat list cost is rounded once: 45432.098748 -> 45432" \
	45432 "$(tg_row "$RID" list_nanos)"

chat "${KEY[t-contract]}" zhipu-chat
LIST=$(cost "${ZT[@]}" "${ZC[@]}")
assert_eq "contract price beats the later list price" \
	"$P_ZHIPU_CONTRACT|CNY|f|0|0|0|0|0|0|$LIST|0|0|$LIST" \
	"$(tg_row "$RID" "$COST_COLS")"

chat "${KEY[t-list]}" openai-chat
assert_eq "openai-chat: input, cached and output classes" \
	"$P_OPENAI|USD|f|0|0|0|0|0|0|2570000|0|0|2570000" \
	"$(tg_row "$RID" "$COST_COLS")"
assert_eq "openai-chat cost computed here agrees" 2570000 \
	"$(cost "${OT[@]}" "${OP[@]}")"

chat "${KEY[t-list]}" deepseek-chat
assert_eq "deepseek-chat: the tenant's currency among rows of one day" \
	"$P_DS_USD|USD|f|0|0|0|0|0|0|147200|0|0|147200" \
	"$(tg_row "$RID" "$COST_COLS")"
assert_eq "deepseek-chat USD cost computed here agrees" 147200 \
	"$(cost "${DT[@]}" "${DU[@]}")"

chat "${KEY[t-cny]}" deepseek-chat
assert_eq "deepseek-chat for a CNY tenant: the CNY row" \
	"$P_DS_CNY|CNY|f|0|0|0|0|0|0|1064000|0|0|1064000" \
	"$(tg_row "$RID" "$COST_COLS")"
assert_eq "deepseek-chat CNY cost computed here agrees" 1064000 \
	"$(cost "${DT[@]}" "${DC[@]}")"

# ---------------------------------------------------------------------------
# A grant of 30 tokens runs out in the middle of a 16 + 44 token request:
# all 16 input tokens and 14 output tokens are free, 30 output are paid.

G_MID=$(promo_id g-mid)
chat "${KEY[t-grant]}" zhipu-chat
LIST=$(cost "${ZT[@]}" "${ZP[@]}")
FREE=$(cost 16 0 0 14 "${ZP[@]}")
assert_eq "grant runs out mid-request: exact split and amounts" \
	"$P_ZHIPU_LIST|CNY|f|16|0|0|14|0|0|$LIST|$FREE|0|$((LIST - FREE))" \
	"$(tg_row "$RID" "$COST_COLS")"
assert_eq "grant runs out mid-request: usage_grants row" "$G_MID|16|0|0|14" \
	"$(tg_psql "SELECT promotion_id, input_tokens, cached_tokens,
		cache_write_tokens, output_tokens FROM usage_grants
		WHERE request_id = $(tg_sql_quote "$RID")")"
assert_eq "grant runs out mid-request: balance used up" 30 \
	"$(tg_psql "SELECT used FROM grant_balances
		WHERE promotion_id = $G_MID")"
chat "${KEY[t-grant]}" zhipu-chat
assert_eq "after the grant ran out: everything billed" \
	"$P_ZHIPU_LIST|CNY|f|0|0|0|0|0|0|$LIST|0|0|$LIST" \
	"$(tg_row "$RID" "$COST_COLS")"
assert_eq "after the grant ran out: no usage_grants row" 0 \
	"$(tg_psql "SELECT count(*) FROM usage_grants
		WHERE request_id = $(tg_sql_quote "$RID")")"

# ---------------------------------------------------------------------------
# Two overlapping grants: the earlier-ending (50 tokens) burns first, then
# the later one (1000), though it was created first; the 1285 tokens of
# openai-chat leave 150 cached and 85 output tokens to pay. The second
# request finds both spent.

G_EARLY=$(promo_id g-early)
G_LATE=$(promo_id g-late)
chat "${KEY[t-two]}" openai-chat
LIST=$(cost "${OT[@]}" "${OP[@]}")
FREE=$(cost 176 874 0 0 "${OP[@]}")
assert_eq "two grants, first request: split and amounts" \
	"$P_OPENAI|USD|f|176|874|0|0|0|0|$LIST|$FREE|0|$((LIST - FREE))" \
	"$(tg_row "$RID" "$COST_COLS")"
assert_eq "two grants, first request: earliest-ending first, then the next" \
	"$G_EARLY|50|0|0|0 $G_LATE|126|874|0|0" \
	"$(tg_psql "SELECT promotion_id, input_tokens, cached_tokens,
		cache_write_tokens, output_tokens FROM usage_grants
		WHERE request_id = $(tg_sql_quote "$RID")
		ORDER BY input_tokens < 100 DESC" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "two grants, first request: billed = the paid remainder at list" \
	"$(cost 0 150 0 85 "${OP[@]}")" "$(tg_row "$RID" billed_nanos)"
chat "${KEY[t-two]}" openai-chat
assert_eq "two grants, second request: both spent, all billed" \
	"$P_OPENAI|USD|f|0|0|0|0|0|0|$LIST|0|0|$LIST" \
	"$(tg_row "$RID" "$COST_COLS")"
assert_eq "two grants: balances" "$G_LATE|1000 $G_EARLY|50" \
	"$(tg_psql "SELECT promotion_id, used FROM grant_balances
		WHERE promotion_id IN ($G_EARLY, $G_LATE)
		ORDER BY used DESC" | tr '\n' ' ' | sed 's/ $//')"

# ---------------------------------------------------------------------------
# Competing discounts: 10% (deepseek-*), 25% (deepseek-chat), 15% (any
# model); 40% ones for zhipu models and the zhipu provider do not match.

D25=$(promo_id d25)
chat "${KEY[t-disc]}" deepseek-chat
LIST=$(cost "${DT[@]}" "${DU[@]}")
DISC=$(bp_of "$LIST" 2500)
assert_eq "competing discounts: the largest matching one wins" \
	"$P_DS_USD|USD|f|0|0|0|0|$D25|2500|$LIST|0|$DISC|$((LIST - DISC))" \
	"$(tg_row "$RID" "$COST_COLS")"

# A grant of 100 tokens and a 20% discount: 76 input and 24 cached tokens
# free; the discount takes 20% of the paid 1000 cached and 50 output.
D_BOTH=$(promo_id d-both)
chat "${KEY[t-both]}" deepseek-chat
FREE=$(cost 76 24 0 0 "${DU[@]}")
DISC=$(bp_of "$(cost 0 1000 0 50 "${DU[@]}")" 2000)
BILLED=$((LIST - FREE - DISC))
assert_eq "grant and discount: the discount only on the paid remainder" \
	"$P_DS_USD|USD|f|76|24|0|0|$D_BOTH|2000|$LIST|$FREE|$DISC|$BILLED" \
	"$(tg_row "$RID" "$COST_COLS")"
assert_eq "grant and discount: billed 80% of 125,000 nano-units" 100000 \
	"$(tg_row "$RID" billed_nanos)"

# ---------------------------------------------------------------------------
# A grant ended with `promo end` is worth nothing afterwards.

chat "${KEY[t-ended]}" zhipu-chat
assert_eq "grant before promo end: the whole request free" "16|44|0" \
	"$(tg_row "$RID" "free_input_tokens, free_output_tokens, billed_nanos")"
tg_ctl_ok "promo end" promo end g-ended
chat "${KEY[t-ended]}" zhipu-chat
LIST=$(cost "${ZT[@]}" "${ZP[@]}")
assert_eq "grant after promo end: nothing free (940 tokens were left)" \
	"0|0|$LIST" \
	"$(tg_row "$RID" "free_input_tokens, free_output_tokens, billed_nanos")"

# ---------------------------------------------------------------------------
# 40 concurrent requests against one grant of 500 tokens: the balance never
# goes below zero and every token is either covered or billed.

N_CONC=40
mkdir -p "$TG_TMP/conc"
CONC_PIDS=()
for ((i = 0; i < N_CONC; i++)); do
	curl -sS -o /dev/null -D "$TG_TMP/conc/$i.h" --max-time 30 \
		-w '%{http_code}\n' -H "Authorization: Bearer ${KEY[t-conc]}" \
		-H 'Content-Type: application/json' \
		--data-binary "$(tg_chat_body zhipu-chat)" \
		"$TG_URL/v1/chat/completions" >"$TG_TMP/conc/$i.code" 2>&1 &
	CONC_PIDS+=($!)
done
wait "${CONC_PIDS[@]}"
CONC_OK=0
CONC_RIDS=()
for ((i = 0; i < N_CONC; i++)); do
	[ "$(cat "$TG_TMP/conc/$i.code")" = 200 ] && CONC_OK=$((CONC_OK + 1))
	CONC_RIDS+=("$(TG_HDRS=$TG_TMP/conc/$i.h tg_header x-request-id)")
done
assert_eq "concurrent requests: all answered 200" "$N_CONC" "$CONC_OK"
for rid in "${CONC_RIDS[@]}"; do
	tg_wait_row "$rid" 20 || tg_not_ok "concurrent request $rid recorded"
done
G_CONC=$(promo_id g-conc)
T_CONC=$(tg_psql "SELECT id FROM tenants WHERE name = 't-conc'")
assert_eq "concurrent requests: all recorded and priced" "$N_CONC|$N_CONC" \
	"$(tg_psql "SELECT count(*), count(price_id) FROM usage_records
		WHERE tenant_id = $T_CONC")"
assert_eq "concurrent requests: the grant fully used, never beyond" \
	"500|t" \
	"$(tg_psql "SELECT used, used <= 500 FROM grant_balances
		WHERE promotion_id = $G_CONC")"
assert_eq "concurrent requests: covered tokens == usage_grants" \
	"500|500" \
	"$(tg_psql "SELECT
		(SELECT sum(free_input_tokens + free_cached_tokens +
			free_cache_write_tokens + free_output_tokens)
		 FROM usage_records WHERE tenant_id = $T_CONC),
		(SELECT sum(input_tokens + cached_tokens + cache_write_tokens +
			output_tokens) FROM usage_grants
		 WHERE promotion_id = $G_CONC)")"
# Σ covered + Σ billed (uncovered) tokens == Σ tokens used.
read -r COVERED USED <<<"$(tg_psql "SELECT
	sum(free_input_tokens + free_cached_tokens + free_cache_write_tokens +
	    free_output_tokens),
	sum(prompt_tokens + completion_tokens)
	FROM usage_records WHERE tenant_id = $T_CONC" | tr '|' ' ')"
PAID_IN=$(tg_psql "SELECT sum(prompt_tokens - cached_tokens - cache_write_tokens
	- free_input_tokens) FROM usage_records WHERE tenant_id = $T_CONC")
PAID_OUT=$(tg_psql "SELECT sum(completion_tokens - free_output_tokens)
	FROM usage_records WHERE tenant_id = $T_CONC")
assert_eq "concurrent requests: covered + billed tokens == tokens used" \
	"$((N_CONC * 60))" "$((COVERED + PAID_IN + PAID_OUT))"
assert_eq "concurrent requests: tokens used" "$((N_CONC * 60))" "$USED"
# Each record's billed amount is its list less the value of what the grant
# covered; summed, they are the list of the paid tokens to within one
# rounding per record.
assert_eq "concurrent requests: billed = list - free per record" 0 \
	"$(tg_psql "SELECT count(*) FROM usage_records WHERE tenant_id = $T_CONC
		AND billed_nanos <> list_nanos - free_nanos")"
assert_eq "concurrent requests: no record has a negative amount" 0 \
	"$(tg_psql "SELECT count(*) FROM usage_records WHERE tenant_id = $T_CONC
		AND least(list_nanos, free_nanos, billed_nanos) < 0")"
FREE_SUM=$(tg_psql "SELECT sum(free_nanos) FROM usage_records
	WHERE tenant_id = $T_CONC")
FREE_EXACT=$(tg_psql "SELECT sum(free_input_tokens) * $(nanos "${ZP[0]}") +
	sum(free_output_tokens) * $(nanos "${ZP[3]}") FROM usage_records
	WHERE tenant_id = $T_CONC")
assert_true "concurrent requests: free amounts within rounding of exact" \
	[ $((FREE_SUM * 1000000 - FREE_EXACT)) -le $((N_CONC * 500000)) -a \
	  $((FREE_EXACT - FREE_SUM * 1000000)) -le $((N_CONC * 500000)) ]

# ---------------------------------------------------------------------------
# A model without a price: served, recorded as unpriced, nothing billed.

chat "${KEY[t-unpriced]}" yi-chat
assert_eq "no price: served" 200 "$TG_STATUS"
assert_eq "no price: unpriced record" "NULL|NULL|t|0|0|0|0|0|0|0|0|0|0" \
	"$(tg_row "$RID" "$COST_COLS")"

# ---------------------------------------------------------------------------
# Imported records with chosen past timestamps, priced by the same ledger.

# Prices of the imported models (zhipu, CNY): glm-4-air changes price on
# 2025-03-15; the others are flat.
tg_ctl_ok "price set: glm-4-air until 2025-03-15" price set --provider zhipu \
	--model glm-4-air --input 1.234 --output 5.678 --currency CNY \
	--from 2025-01-01
tg_ctl_ok "price set: glm-4-air from 2025-03-15" price set --provider zhipu \
	--model glm-4-air --input 0.987 --output 4.321 --currency CNY \
	--from 2025-03-15
tg_ctl_ok "price set: glm-4-long" price set --provider zhipu \
	--model glm-4-long --input 0.5 --output 1.5 --currency CNY \
	--from 2025-01-01
tg_ctl_ok "price set: glm-4-plus" price set --provider zhipu \
	--model glm-4-plus --input 2 --output 4 --currency CNY --from 2025-01-01
tg_ctl_ok "price set: glm-4-0520" price set --provider zhipu \
	--model glm-4-0520 --input 0.75 --output 2.25 --currency CNY \
	--from 2025-01-01
P_AIR1=$(price_id "model = 'glm-4-air' AND effective_from < '2025-03-15'")
P_AIR2=$(price_id "model = 'glm-4-air' AND effective_from = '2025-03-15'")

# An expiring grant: 1000 tokens in [2025-05-01, 2025-05-15). A record just
# before its end is covered; at the end, after it and before its start
# nothing is, though 850 tokens are left.
tg_ctl_ok "promo add: grant that expires" promo add --name g-exp \
	--free-tokens 1000 --tenant t-exp --model glm-4-long \
	--from 2025-05-01T00:00:00Z --until 2025-05-15T00:00:00Z
{
	imp exp-before 2025-04-30T23:59:59Z t-exp glm-4-long 100 50
	imp exp-inside 2025-05-14T23:59:59Z t-exp glm-4-long 100 50
	imp exp-at-end 2025-05-15T00:00:00Z t-exp glm-4-long 100 50
	imp exp-after 2025-05-20T12:00:00Z t-exp glm-4-long 100 50
} >"$TG_TMP/exp.jsonl"
tg_ctl_ok "usage import: records around the grant's window" usage import \
	"$TG_TMP/exp.jsonl"
G_EXP=$(promo_id g-exp)
LP=(0.5 0.5 0.5 1.5)
LIST=$(cost 100 0 0 50 "${LP[@]}")
for rid in exp-before exp-inside exp-at-end exp-after; do
	case $rid in
	exp-inside) want="100|50|0" ;;
	*) want="0|0|$LIST" ;;
	esac
	assert_eq "expiring grant: $rid" "$want" \
		"$(tg_row "$rid" "free_input_tokens, free_output_tokens,
			billed_nanos")"
done
assert_eq "expiring grant: only the record inside the window used it" \
	"150|exp-inside" \
	"$(tg_psql "SELECT b.used, string_agg(g.request_id, ',')
		FROM grant_balances b JOIN usage_grants g
		ON g.promotion_id = b.promotion_id
		WHERE b.promotion_id = $G_EXP GROUP BY b.used")"

# Importing the same records again changes nothing: no grant is consumed
# twice.
tg_ctl_ok "usage import: the same file again" usage import "$TG_TMP/exp.jsonl"
assert_eq "import again: balance and coverage unchanged" "150|1|0|0|$LIST" \
	"$(tg_psql "SELECT (SELECT used FROM grant_balances
		WHERE promotion_id = $G_EXP), (SELECT count(*)
		FROM usage_grants WHERE promotion_id = $G_EXP),
		free_input_tokens, free_output_tokens, billed_nanos
		FROM usage_records WHERE request_id = 'exp-after'")"

# A file that holds a record already in the ledger and a new one, earlier
# in the grant's window: the new one alone is priced and covered, and the
# one there keeps its cost and coverage.
{
	imp exp-inside 2025-05-14T23:59:59Z t-exp glm-4-long 100 50
	imp exp-early 2025-05-10T00:00:00Z t-exp glm-4-long 100 50
} >"$TG_TMP/exp2.jsonl"
out=$(tg_ctl usage import "$TG_TMP/exp2.jsonl" 2>&1)
assert_match "import, one there and one new: one inserted" \
	"2 records: 1 inserted, 1 already present" "$out"
assert_eq "import, one there and one new: each covered once" \
	"300|exp-early:100:50,exp-inside:100:50" \
	"$(tg_psql "SELECT b.used, string_agg(g.request_id || ':' ||
		g.input_tokens || ':' || g.output_tokens, ','
		ORDER BY g.request_id)
		FROM grant_balances b JOIN usage_grants g
		ON g.promotion_id = b.promotion_id
		WHERE b.promotion_id = $G_EXP GROUP BY b.used")"
assert_eq "import, one there and one new: both records free" "0|0" \
	"$(tg_psql "SELECT sum(billed_nanos), sum(list_nanos - free_nanos)
		FROM usage_records
		WHERE request_id IN ('exp-inside', 'exp-early')")"

# A grant to all tenants gives each its own balance of 100 tokens.
tg_ctl_ok "price set: glm-4-flashx" price set --provider zhipu \
	--model glm-4-flashx --input 0.1 --output 0.1 --currency CNY \
	--from 2025-01-01
tg_ctl_ok "promo add: grant to all tenants" promo add --name g-all \
	--free-tokens 100 --all --model glm-4-flashx \
	--from 2025-07-01 --until 2025-08-01
{
	imp all-exp-1 2025-07-02T00:00:00Z t-exp glm-4-flashx 50 30
	imp all-exp-2 2025-07-03T00:00:00Z t-exp glm-4-flashx 50 30
	imp all-month-1 2025-07-02T00:00:00Z t-month glm-4-flashx 50 30
	imp all-month-2 2025-07-03T00:00:00Z t-month glm-4-flashx 50 30
} >"$TG_TMP/all.jsonl"
tg_ctl_ok "usage import: two tenants under one grant" usage import \
	"$TG_TMP/all.jsonl"
assert_eq "grant to all tenants: each tenant's own balance" \
	"t-exp|100 t-month|100" \
	"$(tg_psql "SELECT t.name, b.used FROM grant_balances b
		JOIN tenants t ON t.id = b.tenant_id
		WHERE b.promotion_id = $(promo_id g-all) ORDER BY t.name" |
		tr '\n' ' ' | sed 's/ $//')"
assert_eq "grant to all tenants: 80 then 20 tokens covered for each" \
	"all-exp-1|50|30 all-exp-2|20|0 all-month-1|50|30 all-month-2|20|0" \
	"$(tg_psql "SELECT request_id, free_input_tokens, free_output_tokens
		FROM usage_records WHERE request_id LIKE 'all-%'
		ORDER BY request_id" | tr '\n' ' ' | sed 's/ $//')"

# race_imports PREFIX DAY : four `usage import` processes at once, 50
# records each of 16 + 44 tokens for t-race on glm-4-flashx on DAY of
# August 2025; prints how many failed.
race_imports() {
	local prefix=$1 dd=$2 k i failed=0 pids=()
	for ((k = 0; k < 4; k++)); do
		for ((i = 0; i < 50; i++)); do
			imp "$prefix-$k-$i" \
				"2025-08-${dd}T10:$(printf %02d $i):0${k}Z" \
				t-race glm-4-flashx 16 44
		done >"$TG_TMP/$prefix-$k.jsonl"
	done
	for ((k = 0; k < 4; k++)); do
		tg_ctl usage import "$TG_TMP/$prefix-$k.jsonl" \
			>"$TG_TMP/$prefix-$k.out" 2>&1 &
		pids+=($!)
	done
	for ((k = 0; k < 4; k++)); do
		if ! wait "${pids[$k]}"; then
			failed=$((failed + 1))
			tg_log "$prefix-$k: $(cat "$TG_TMP/$prefix-$k.out")"
		fi
	done
	echo "$failed"
}

# Four imports at once into a month that has no partition yet: each
# creates it, and none may fail for that.
assert_eq "concurrent imports into a new month: all succeed" 0 \
	"$(race_imports part 10)"

# Four imports at once, each one transaction, against one grant of 500
# tokens: the writers serialize on the balance, which ends at exactly 500,
# and every token is covered or billed.
tg_ctl_ok "promo add: grant raced by concurrent imports" promo add \
	--name g-race --free-tokens 500 --tenant t-race --model glm-4-flashx \
	--from 2025-08-15 --until 2025-09-01
assert_eq "concurrent imports against one grant: all succeed" 0 \
	"$(race_imports race 20)"
assert_eq "concurrent imports: balance exactly the grant" "500" \
	"$(tg_psql "SELECT used FROM grant_balances
		WHERE promotion_id = $(promo_id g-race)")"
assert_eq "concurrent imports: covered == 500, covered + paid == used" \
	"200|500|12000|12000" \
	"$(tg_psql "SELECT count(*), sum(free_input_tokens +
		free_output_tokens), sum(prompt_tokens + completion_tokens),
		sum(free_input_tokens + free_output_tokens +
		(prompt_tokens - free_input_tokens) +
		(completion_tokens - free_output_tokens))
		FROM usage_records WHERE request_id LIKE 'race-%'")"
assert_eq "concurrent imports: usage_grants agree" 500 \
	"$(tg_psql "SELECT sum(input_tokens + output_tokens) FROM usage_grants
		WHERE promotion_id = $(promo_id g-race)")"

# A month with a price change on its 15th: records on the 10th and the 20th
# of March 2025, and a 10% discount from the 18th. The bill has a line per
# price and token class, each rounded once from the summed tokens.
tg_ctl_ok "promo add: discount late in the month" promo add --name d-march \
	--discount 10% --tenant t-month --model 'glm-4-*' \
	--from 2025-03-18 --until 2025-04-01
{
	imp m-10a 2025-03-10T08:00:00Z t-month glm-4-air 1234567 345678
	imp m-10b 2025-03-10T09:00:00Z t-month glm-4-air 2000001 1
	imp m-10c 2025-03-10T23:59:59Z t-month glm-4-air 5 999999
	imp m-20a 2025-03-20T00:00:00Z t-month glm-4-air 4444444 555555
	imp m-20b 2025-03-20T17:30:00Z t-month glm-4-air 1 2
} >"$TG_TMP/march.jsonl"
tg_ctl_ok "usage import: March 2025" usage import "$TG_TMP/march.jsonl"
A1=(1.234 1.234 1.234 5.678)
A2=(0.987 0.987 0.987 4.321)
D_MARCH=$(promo_id d-march)
LIST=$(cost 1234567 0 0 345678 "${A1[@]}")
assert_eq "price change: a record of the 10th at the old price" \
	"$P_AIR1|CNY|f|0|0|0|0|0|0|$LIST|0|0|$LIST" \
	"$(tg_row m-10a "$COST_COLS")"
LIST=$(cost 4444444 0 0 555555 "${A2[@]}")
DISC=$(bp_of "$LIST" 1000)
assert_eq "price change: a record of the 20th at the new price, discounted" \
	"$P_AIR2|CNY|f|0|0|0|0|$D_MARCH|1000|$LIST|0|$DISC|$((LIST - DISC))" \
	"$(tg_row m-20a "$COST_COLS")"

BILL=$TG_TMP/march.json
if tg_ctl bill --month 2025-03 --tenant t-month --format json >"$BILL" \
	2>"$TG_TMP/bill.err"; then
	tg_ok "bill --format json for March 2025"
else
	tg_not_ok "bill --format json for March 2025" \
		"$(cat "$TG_TMP/bill.err")"
fi
# Expected lines: price, class, requests, tokens, free, billable, unit,
# list, discount, amount (cents from the summed tokens).
read -r L1 _ A1C <<<"$(line_cents 3234573 1.234)"
read -r L2 _ A2C <<<"$(line_cents 1345678 5.678)"
read -r L3 D3 A3C <<<"$(line_cents 4444445 0.987 1000)"
read -r L4 D4 A4C <<<"$(line_cents 555557 4.321 1000)"
WANT_LINES="\
$P_AIR1|input|3|3234573|0|3234573|1.234|$(money "$L1")|0.00|$(money "$A1C")
$P_AIR1|output|3|1345678|0|1345678|5.678|$(money "$L2")|0.00|$(money "$A2C")
$P_AIR2|input|2|4444445|0|4444445|0.987|$(money "$L3")|$(money "$D3")|\
$(money "$A3C")
$P_AIR2|output|2|555557|0|555557|4.321|$(money "$L4")|$(money "$D4")|\
$(money "$A4C")"
assert_eq "bill json: a line per price and class, amounts from summed tokens" \
	"$WANT_LINES" \
	"$(jq -r '.lines[] | [.price_id, .token_class, .requests, .tokens,
		.free_tokens, .billable_tokens, .unit_price, .list_amount,
		.discount, .amount] | map(tostring) | join("|")' "$BILL" 2>&1)"
assert_eq "bill json: the computed amounts (3.99 7.64 4.39-0.44 2.40-0.24)" \
	"3.99|7.64|3.95|2.16" \
	"$(money "$A1C")|$(money "$A2C")|$(money "$A3C")|$(money "$A4C")"
assert_eq "bill json: the line sections, currency and model" \
	"line|CNY|zhipu|glm-4-air|false" \
	"$(jq -r '[.lines[] | [.section, .currency, .provider, .model,
		(.contract | tostring)] | join("|")] | unique | join(" ")' \
		"$BILL" 2>&1)"
SUB=$((A1C + A2C + A3C + A4C))
assert_eq "bill json: subtotal and total add the rounded lines" \
	"CNY|$(money $((L1 + L2 + L3 + L4)))|$(money $((D3 + D4)))|\
$(money $SUB)|$(money $SUB)" \
	"$(jq -r '[.subtotals[0].currency, .subtotals[0].list_amount,
		.subtotals[0].discount, .subtotals[0].amount, .total]
		| join("|")' "$BILL" 2>&1)"
# The discount's total in 10^-12 CNY, times 1000 bp, in cents.
X=$(($(micros 0.987) * 4444445 + $(micros 4.321) * 555557))
assert_eq "bill json: the discount, rounded once over its records" \
	"d-march|10|CNY|$(money $(((X * 1000 + 50000000000000) / \
		100000000000000)))" \
	"$(jq -r '.promotions.discounts[] | [.name, .percent, .currency,
		.amount] | join("|")' "$BILL" 2>&1)"
assert_eq "bill json: tokens per day on the 10th and the 20th" \
	"2025-03-10=4580251 2025-03-20=5000002 days=31" \
	"$(jq -r '([.days[] | select(.tokens > 0) | "\(.date)=\(.tokens)"]
		| join(" ")) + " days=\(.days | length)"' "$BILL" 2>&1)"

# The CSV has the same lines.
CSV=$TG_TMP/march.csv
tg_ctl_ok "bill --format csv for March 2025" bill --month 2025-03 \
	--tenant t-month --format csv -o "$CSV"
assert_eq "bill csv: header" \
	"tenant,month,section,original_month,provider,model,price_id,\
price_from,token_class,requests,tokens,free_tokens,billable_tokens,\
unit_price,list_amount,discount,amount,currency,promotion,percent,fx_rate,\
note" \
	"$(head -n 1 "$CSV" | tr -d '\r')"
assert_eq "bill csv: the same lines as the json" "$WANT_LINES" \
	"$(tr -d '\r' <"$CSV" | awk -F, '$3 == "line" {
		print $7 "|" $9 "|" $10 "|" $11 "|" $12 "|" $13 "|" $14 "|" \
			$15 "|" $16 "|" $17 }')"
assert_eq "bill csv: the total" "total,$(money $SUB),CNY" \
	"$(tr -d '\r' <"$CSV" |
		awk -F, '$3 == "total" { print $3 "," $17 "," $18 }')"

# The HTML parses and holds a chart.
HTML=$TG_TMP/march.html
tg_ctl_ok "bill --format html for March 2025" bill --month 2025-03 \
	--tenant t-month --format html -o "$HTML"
if command -v xmllint >/dev/null 2>&1; then
	assert_true "bill html: parses (xmllint --html)" \
		xmllint --html --noout "$HTML"
else
	tg_log "xmllint not installed (libxml2-utils): HTML not parsed"
fi
assert_match "bill html: contains an <svg> chart" '<svg[ >]' "$(cat "$HTML")"
assert_match "bill html: shows both unit prices" \
	'1\.234.*0\.987|0\.987.*1\.234' \
	"$(tr -d '\n' <"$HTML")"
assert_match "bill html: shows the total" "$(money $SUB)" "$(cat "$HTML")"

# Unpriced usage: listed, not billed.
CUR_MONTH=$(date -u +%Y-%m)
BILL=$TG_TMP/unpriced.json
tg_ctl bill --month "$CUR_MONTH" --tenant t-unpriced --format json \
	>"$BILL" 2>"$TG_TMP/bill.err"
assert_eq "bill json: unpriced usage listed (yi-chat, 14 + 31 tokens)" \
	"yi|yi-chat|1|14|0|0|31" \
	"$(jq -r '.unpriced[] | [.provider, .model, .requests, .input_tokens,
		.cached_tokens, .cache_write_tokens, .output_tokens]
		| map(tostring) | join("|")' "$BILL" 2>&1)"
assert_eq "bill json: unpriced usage not billed" "0|0.00" \
	"$(jq -r '"\(.lines | length)|\(.total)"' "$BILL" 2>&1)"
assert_match "bill csv: unpriced usage marked" \
	'unpriced,,yi,yi-chat,,,input,1,14,' \
	"$(tg_ctl bill --month "$CUR_MONTH" --tenant t-unpriced --format csv)"

# The contract price is marked on its line.
BILL=$TG_TMP/contract.json
tg_ctl bill --month "$CUR_MONTH" --tenant t-contract --format json \
	>"$BILL" 2>"$TG_TMP/bill.err"
assert_eq "bill json: contract price lines" \
	"$P_ZHIPU_CONTRACT|input|true|0.3 $P_ZHIPU_CONTRACT|output|true|0.6" \
	"$(jq -r '[.lines[] | [.price_id, .token_class, .contract, .unit_price]
		| map(tostring) | join("|")] | join(" ")' "$BILL" 2>&1)"

# ---------------------------------------------------------------------------
# A closed month receiving late usage: the last month is closed, a record of
# it imported afterwards is an adjustment on this month's bill, and the
# closed bill does not change.

PREV_MONTH=$(date -u -d "$(date -u +%Y-%m-01) -1 month" +%Y-%m)
{
	imp close-1 "${PREV_MONTH}-05T10:00:00Z" t-close glm-4-plus 100000 20000
	imp close-2 "${PREV_MONTH}-20T10:00:00Z" t-close glm-4-plus 50000 5000
} >"$TG_TMP/close.jsonl"
tg_ctl_ok "usage import: last month" usage import "$TG_TMP/close.jsonl"
tg_ctl bill --month "$PREV_MONTH" --tenant t-close --format json \
	>"$TG_TMP/close-draft.json" 2>"$TG_TMP/bill.err"
tg_ctl bill --month "$PREV_MONTH" --tenant t-close --format csv \
	>"$TG_TMP/close-draft.csv" 2>"$TG_TMP/bill.err"
tg_ctl_ok "bill close $PREV_MONTH" bill close --month "$PREV_MONTH"
# Read back from the frozen invoice, its rows are the draft's to the
# digit; only the total's note (its last field) tells them apart.
tg_ctl bill --month "$PREV_MONTH" --tenant t-close --format csv \
	>"$TG_TMP/close-frozen.csv" 2>"$TG_TMP/bill.err"
assert_eq "closed bill: its CSV rows are the draft's" \
	"$(sed '$ s/,[^,]*$//' "$TG_TMP/close-draft.csv")" \
	"$(sed '$ s/,[^,]*$//' "$TG_TMP/close-frozen.csv")"
assert_match "closed bill: its CSV total says closed" ",closed at [0-9-]+T" \
	"$(tail -n 1 "$TG_TMP/close-frozen.csv")"
tg_ctl bill --month "$PREV_MONTH" --tenant t-close --format json \
	>"$TG_TMP/close-before.json" 2>"$TG_TMP/bill.err"
assert_eq "closed bill: status closed, the draft's lines and total" \
	"closed|$(jq -c '[.lines, .total]' "$TG_TMP/close-draft.json")" \
	"$(jq -r '.status' "$TG_TMP/close-before.json")|\
$(jq -c '[.lines, .total]' "$TG_TMP/close-before.json")"
read -r L1 _ _ <<<"$(line_cents 150000 2)"
read -r L2 _ _ <<<"$(line_cents 25000 4)"
assert_eq "closed bill: total from the month's tokens" \
	"$(money $((L1 + L2)))" "$(jq -r .total "$TG_TMP/close-before.json")"
imp close-late "${PREV_MONTH}-28T10:00:00Z" t-close glm-4-plus 300000 50000 \
	>"$TG_TMP/late.jsonl"
tg_ctl_ok "usage import: a late record of the closed month" usage import \
	"$TG_TMP/late.jsonl"
tg_ctl bill --month "$PREV_MONTH" --tenant t-close --format json \
	>"$TG_TMP/close-after.json" 2>"$TG_TMP/bill.err"
assert_file_eq "closed bill unchanged by the late record" \
	"$TG_TMP/close-before.json" "$TG_TMP/close-after.json"
tg_ctl bill --month "$CUR_MONTH" --tenant t-close --format json \
	>"$TG_TMP/next.json" 2>"$TG_TMP/bill.err"
read -r L1 _ _ <<<"$(line_cents 300000 2)"
read -r L2 _ _ <<<"$(line_cents 50000 4)"
assert_eq "next month's bill: the late record as an adjustment" \
	"adjustment|$PREV_MONTH|input|1|300000|$(money "$L1") \
adjustment|$PREV_MONTH|output|1|50000|$(money "$L2")" \
	"$(jq -r '[.lines[] | [.section, .original_month, .token_class,
		.requests, .tokens, .amount] | map(tostring) | join("|")]
		| join(" ")' "$TG_TMP/next.json" 2>&1)"
assert_eq "next month's bill: total is the adjustment" \
	"$(money $((L1 + L2)))" "$(jq -r .total "$TG_TMP/next.json" 2>&1)"
assert_match "next month's bill csv: adjustment rows" \
	"adjustment,$PREV_MONTH,zhipu,glm-4-plus" \
	"$(tg_ctl bill --month "$CUR_MONTH" --tenant t-close --format csv)"

# ---------------------------------------------------------------------------
# Performance: 30,000 records in June 2025, then the month's bill, timed.

N_PERF=30000
SUM_IN=0
SUM_OUT=0
for ((i = 0; i < N_PERF; i++)); do
	p=$((100 + i % 900))
	c=$((10 + i % 90))
	SUM_IN=$((SUM_IN + p))
	SUM_OUT=$((SUM_OUT + c))
	printf -v ts '2025-06-%02dT%02d:%02d:%02dZ' $((1 + i % 30)) \
		$((i % 24)) $((i / 24 % 60)) $((i / 1440 % 60))
	imp "perf-$i" "$ts" t-perf glm-4-0520 "$p" "$c"
done >"$TG_TMP/perf.jsonl"
T0=$(date +%s%N)
tg_ctl_ok "usage import: $N_PERF records" usage import "$TG_TMP/perf.jsonl"
T1=$(date +%s%N)
tg_log "usage import of $N_PERF records: $(((T1 - T0) / 1000000)) ms"
assert_eq "performance: every record imported and priced" \
	"$N_PERF|$N_PERF" \
	"$(tg_psql "SELECT count(*), count(price_id) FROM usage_records
		WHERE request_id LIKE 'perf-%'")"
T0=$(date +%s%N)
tg_ctl bill --month 2025-06 --tenant t-perf --format json \
	>"$TG_TMP/perf.json" 2>"$TG_TMP/perf.err"
RC=$?
T1=$(date +%s%N)
tg_log "bill of $N_PERF records (json): $(((T1 - T0) / 1000000)) ms"
assert_eq "performance: bill succeeds" 0 "$RC"
read -r L1 _ _ <<<"$(line_cents "$SUM_IN" 0.75)"
read -r L2 _ _ <<<"$(line_cents "$SUM_OUT" 2.25)"
assert_eq "performance: lines from the summed tokens" \
	"input|$N_PERF|$SUM_IN|$(money "$L1") \
output|$N_PERF|$SUM_OUT|$(money "$L2")" \
	"$(jq -r '[.lines[] | [.token_class, .requests, .tokens, .amount]
		| map(tostring) | join("|")] | join(" ")' \
		"$TG_TMP/perf.json" 2>&1)"
assert_eq "performance: total" "$(money $((L1 + L2)))" \
	"$(jq -r .total "$TG_TMP/perf.json" 2>&1)"
T0=$(date +%s%N)
tg_ctl bill --month 2025-06 --format html -o "$TG_TMP/perf.html"
T1=$(date +%s%N)
tg_log "bill of every tenant for 2025-06 (html): $(((T1 - T0) / 1000000)) ms"

tg_done
