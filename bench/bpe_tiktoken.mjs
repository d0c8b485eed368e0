// bench/bpe_tiktoken.mjs - the baseline of bench/bpe.c: OpenAI's tiktoken
// (npm, the WASM build, from tests/bpe/node_modules) counting the same
// corpus. Prints "ENCODING TOKENS MB_PER_S" for cl100k_base and o200k_base.
//
//	node bench/bpe_tiktoken.mjs FILE [SECONDS]

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { get_encoding } =
	createRequire(join(ROOT, 'tests/bpe/package.json'))('tiktoken');
const text = readFileSync(process.argv[2], 'utf8');
const bytes = Buffer.byteLength(text);
const seconds = Number(process.argv[3] ?? 1);

for (const name of ['cl100k_base', 'o200k_base']) {
	const enc = get_encoding(name);
	let tokens = enc.encode_ordinary(text).length; // warm up
	let runs = 0;
	const t0 = process.hrtime.bigint();
	let elapsed = 0;
	do {
		tokens = enc.encode_ordinary(text).length;
		runs++;
		elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
	} while (elapsed < seconds);
	console.log(`${name} ${tokens} ${(bytes * runs / elapsed / 1e6).toFixed(2)}`);
	enc.free();
}
