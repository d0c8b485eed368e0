#!/usr/bin/env bash
# tests/fuzz/seeds.sh OUTDIR [FIXTURE_DIR...] - writes each fuzz target's
# seed corpus, OUTDIR/NAME/, from the provider fixtures (recorded answers
# and streams), the request fixtures, the sample configuration and the
# BPE test texts, each with the option bytes its target reads first
# (tests/fuzz/fuzz_NAME.c says which). FIXTURE_DIR defaults to
# tests/fixtures/providers and tests/fixtures/extra; more directories of
# the same naming (PROVIDER-*.json, *.sse, *-request.json) may be given.
# The inputs kept in tests/fuzz/regress/NAME/ are seeds too: tests/fuzz/run
# passes them along. Nothing here is committed; the output is rebuilt at
# will.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: seeds.sh OUTDIR [FIXTURE_DIR...]}
shift
dirs=("$@")
[ ${#dirs[@]} -gt 0 ] ||
	dirs=("$top/tests/fixtures/providers" "$top/tests/fixtures/extra")

# byte N : writes the byte N (0-255).
byte() {
	printf "\\$(printf '%03o' "$1")"
}

# seed TARGET NAME BYTES... < FILE : writes OUTDIR/TARGET/NAME, the bytes
# given then the file.
seed() {
	local target=$1 name=$2 b
	shift 2
	mkdir -p "$out/$target"
	{
		for b in "$@"; do byte "$b"; done
		cat
	} >"$out/$target/$name"
}

# The enum wire and enum flavor numbers (include/core/tollgate.h) of a
# fixture, from its name: "WIRE FLAVOR".
wire_flavor() {
	local f flavor
	case $1 in
	anthropic-*) echo "4 2"; return ;;
	openai-completions*) echo "1 0"; return ;;
	openai-embeddings*) echo "2 0"; return ;;
	openai-responses*) echo "3 0"; return ;;
	esac
	f=${1%%-*}
	case $f in
	openai) flavor=0 ;;
	azure) flavor=1 ;;
	zhipu) flavor=3 ;;
	dashscope) flavor=4 ;;
	qianfan) flavor=5 ;;
	baichuan) flavor=6 ;;
	yi) flavor=7 ;;
	moonshot) flavor=8 ;;
	deepseek) flavor=9 ;;
	*) flavor=0 ;;
	esac
	echo "0 $flavor"
}

rm -rf "${out:?}"
mkdir -p "$out"
for dir in "${dirs[@]}"; do
	for path in "$dir"/*.json "$dir"/*.sse; do
		[ -f "$path" ] || continue
		file=${path##*/}
		read -r wire flavor <<<"$(wire_flavor "$file")"
		sel=$((wire + 5 * flavor))
		anthropic=$([ "$wire" = 4 ] && echo 1 || echo 0)
		case $file in
		*-request.json)
			# The client's body: chat -> messages or back, with and
			# without a quota's cap; the body reader with every
			# edit; the prompt estimate.
			seed translate_request "$file" "$anthropic" <"$path"
			seed translate_request "cap-$file" $((anthropic | 2 | 4 | 32)) <"$path"
			seed body "$file" 15 <"$path"
			seed estimate "$file" "$wire" <"$path"
			seed json "$file" 0 <"$path"
			;;
		*.json)
			seed usage "$file" "$sel" <"$path"
			seed translate_response "$file" "$anthropic" <"$path"
			seed estimate "$file" "$wire" <"$path"
			seed json "$file" 0 <"$path"
			;;
		*.sse)
			seed sse "$file" 1 0 <"$path"
			seed sse "small-$file" 7 64 <"$path"
			seed usage "$file" $((sel | 128)) <"$path"
			seed translate_stream "$file" $((anthropic | 2)) <"$path"
			;;
		esac
	done
done
seed config tollgate.conf.sample <"$top/etc/tollgate.conf.sample"
# Requests as clients send them: a request fixture with its head, whole
# and chunked.
for dir in "${dirs[@]}"; do
	for path in "$dir"/*-request.json; do
		[ -f "$path" ] || continue
		n=$(wc -c <"$path")
		printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer tg-x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n' "$n" |
			cat - "$path" | seed http "cl-${path##*/}" 0
		{
			printf 'POST /v1/messages HTTP/1.1\r\nHost: gw\r\nx-api-key: tg-x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n'
			printf '%x;ext=1\r\n' "$n"
			cat "$path"
			printf '\r\n0\r\nTrailer: x\r\n\r\n'
		} | seed http "chunked-${path##*/}" 5
	done
done
for path in "$top"/tests/bpe/corpus/*; do
	seed bpe "${path##*/}" 0 <"$path"
	seed bpe "cl100k-${path##*/}" 1 <"$path"
done
