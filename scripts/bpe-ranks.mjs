#!/usr/bin/env node
// scripts/bpe-ranks.mjs - rebuilds data/bpe/*.tiktoken from the npm package
// tiktoken (the WASM build of OpenAI's tiktoken, MIT) and checks them
// against the SHA-256 that OpenAI's tiktoken (tiktoken_ext/openai_public.py)
// expects of the files it downloads.
//
//	npm ci --prefix tests/bpe        # tiktoken@1.0.22, pinned
//	node scripts/bpe-ranks.mjs       # writes data/bpe/, fails on a mismatch
//	node scripts/bpe-ranks.mjs --check   # compares, writes nothing
//
// The package ships encoders/<name>.json whose "bpe_ranks" string is a
// compact form of the rank file: lines "! OFFSET TOKEN TOKEN ...", each
// base64 token taking the next rank from OFFSET on (js-tiktoken's loader
// reads it so: split on " ", rank = offset + index). The published form is
// one "TOKEN RANK" line per token, by rank, which is what this writes.
// An optional first argument names another tiktoken package directory.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const EXPECTED = {
	cl100k_base:
		'223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7',
	o200k_base:
		'446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d',
};

const args = process.argv.slice(2);
const check = args.includes('--check');
const pkg =
	args.find((a) => !a.startsWith('--')) ??
	join(ROOT, 'tests/bpe/node_modules/tiktoken');
const version = JSON.parse(readFileSync(join(pkg, 'package.json'))).version;
let failed = 0;

for (const [name, want] of Object.entries(EXPECTED)) {
	const enc = JSON.parse(
		readFileSync(join(pkg, 'encoders', `${name}.json`), 'utf8'),
	);
	const out = [];
	let next = 0;
	for (const line of enc.bpe_ranks.split("\n")) {
		if (line === '') continue;
		const [bang, offset, ...tokens] = line.split(' ');
		if (bang !== '!' || Number(offset) !== next)
			throw new Error(`${name}: unexpected line '${line.slice(0, 40)}'`);
		for (const t of tokens) out.push(`${t} ${next++}\n`);
	}
	const text = out.join('');
	const got = createHash('sha256').update(text).digest('hex');
	const path = join(ROOT, 'data/bpe', `${name}.tiktoken`);
	const ok = got === want;
	console.log(
		`${name}: ${next} ranks, ${text.length} bytes, sha256 ${got} ${ok ? '(as expected)' : `(EXPECTED ${want})`} from tiktoken@${version}`,
	);
	if (!ok) {
		failed++;
		continue;
	}
	if (check) {
		let have = '';
		try {
			have = readFileSync(path, 'utf8');
		} catch {}
		if (have !== text) {
			console.log(`${path}: differs`);
			failed++;
		}
	} else {
		writeFileSync(path, text);
	}
}
process.exit(failed ? 1 : 0);
