// crosscheck.mjs - compares bpe_count() with tiktoken on many texts: random
// mixes of scripts, blanks, punctuation, digits, contractions and long runs,
// every code point in a few telling contexts, and the provider fixtures.
// Not part of make check (it needs node and tiktoken); run it after
// changing src/core/bpe.c or its tables:
//
//	npm ci --prefix tests/bpe
//	node tests/bpe/crosscheck.mjs BUILD/tests/test_bpe [N] [SEED]
//
// N random texts (default 10000) from SEED (default 1). The texts go to
// test_bpe --count as length-prefixed records; it prints each one's
// cl100k_base and o200k_base counts, which must equal tiktoken's
// encode_ordinary() lengths. Exit status 1 on any difference, the first
// ones printed. Options: --no-codepoints skips the code point sweep.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const { get_encoding } = createRequire(join(HERE, 'package.json'))('tiktoken');

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const sweep = !process.argv.includes('--no-codepoints');
const bin = args[0];
const N = Number(args[1] ?? 10000);
let seed = Number(args[2] ?? 1) >>> 0;
if (!bin) {
	console.error('usage: node crosscheck.mjs PATH/TO/test_bpe [N] [SEED]');
	process.exit(2);
}

// xorshift32: the same texts for the same seed.
function rnd() {
	seed ^= seed << 13;
	seed >>>= 0;
	seed ^= seed >>> 17;
	seed ^= seed << 5;
	seed >>>= 0;
	return seed / 4294967296;
}
const int = (n) => Math.floor(rnd() * n);
const pick = (a) => a[int(a.length)];
const chars = (s) => Array.from(s);

// Alphabets, each a list of characters to draw from.
const cp = (a, b) => {
	const r = [];
	for (let c = a; c <= b; c++) r.push(String.fromCodePoint(c));
	return r;
};
const ALPHABETS = {
	lower: chars('abcdefghijklmnopqrstuvwxyz'),
	upper: chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ'),
	digit: chars('0123456789'),
	punct: chars('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'),
	blank: [' ', ' ', ' ', ' ', '\t', '\n', '\r\n', '\r', '\u00a0', '\u3000',
		'\u2028', '\u0085', '\u000b', '\u000c', '\u2003', '\u202f'],
	latin1: cp(0xa1, 0xff),
	latinx: cp(0x100, 0x24f),
	greek: cp(0x391, 0x3c9),
	cyrillic: cp(0x410, 0x44f),
	hebrew: cp(0x5d0, 0x5ea),
	arabic: [...cp(0x621, 0x64a), ...cp(0x660, 0x669)],
	devanagari: cp(0x900, 0x97f),
	thai: cp(0xe01, 0xe5b),
	cjk: cp(0x4e00, 0x4fff),
	cjkpunct: chars('，。、！？：；“”‘’（）《》【】…—'),
	kana: [...cp(0x3041, 0x3096), ...cp(0x30a1, 0x30fa), 'ー'],
	hangul: cp(0xac00, 0xacff),
	emoji: ['😀', '👍', '👍🏽', '👨‍👩‍👧', '🇫🇷', '❤️', '✅', '🚀', '🤖', '\u200d',
		'\ufe0f'],
	marks: [...cp(0x300, 0x36f), '\u0903', '\u20dd', '\u093f'],
	odd: ['ǅ', 'ǈ', 'ʰ', 'ˆ', 'ſ', 'ß', 'ﬁ', 'İ', 'ı', 'K', 'Å', '²', '½', 'Ⅻ',
		'٣', '𝟘', '\u200b', '\ufeff', '\u00ad', '\ue000', '\u0378',
		'\u1c89', '\ua7cb', '\u{10d50}', '\u{2ebf0}', '\ua7ce', '\u{1e030}',
		'\ufffd', '\u{10ffff}', '\u{1f600}', 'ǲ', 'ᾈ', '\u{16e40}'],
	contraction: ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T",
		"'RE", "'Ve", "'M", "'LL", "'D", "'ſ", "'", "''", "'x", "’s"],
	word: ['the', ' the', 'The', ' of', 'and', 'function', 'return', ' ',
		'  ', 'null', 'true', 'don', 'I', 'we', 'HTTP', 'JSONParser',
		'camelCase', 'snake_case', 'e.g.', 'http://', '://', '//', '/*',
		'*/', '=>', '!=', '==', '...', '—', '"', '",', '":', '{"', '"}',
		'\n\n', '\n    ', '\t\t', '中文', '日本語', '한국어', 'Ärger',
		'naïve', 'résumé', 'ZÜRICH', 'İstanbul', 'ΣΊΣΥΦΟΣ', 'straße'],
};
const NAMES = Object.keys(ALPHABETS);

// A random text: runs drawn from a few alphabets, now and then a long one
// (the merge heap takes pieces over 64 bytes).
function randomText() {
	const favourites = [];
	const k = 1 + int(4);
	for (let i = 0; i < k; i++) favourites.push(pick(NAMES));
	let s = '';
	const runs = 1 + int(12);
	for (let r = 0; r < runs; r++) {
		const a = ALPHABETS[pick(favourites)];
		let len = 1 + int(8);
		const roll = rnd();
		if (roll < 0.03) len = 60 + int(400);
		else if (roll < 0.04) len = 400 + int(3000);
		const same = rnd() < 0.3 ? pick(a) : null;
		for (let i = 0; i < len; i++) s += same ?? pick(a);
	}
	return s;
}

// Random code points of any plane (no surrogates: tiktoken takes UTF-8).
function randomCodePoints() {
	let s = '';
	const n = 1 + int(20);
	for (let i = 0; i < n; i++) {
		let c = rnd() < 0.5 ? int(0x3000) : int(0x110000);
		if (c >= 0xd800 && c < 0xe000) c = 0x41;
		s += String.fromCodePoint(c);
	}
	return s;
}

const texts = [];
for (let i = 0; i < N; i++) texts.push(rnd() < 0.85 ? randomText() : randomCodePoints());

// Each code point in contexts that tell its class apart: after a letter,
// a space, a digit, punctuation, a capital; before a contraction, a
// capital, a small letter, a newline and a slash; doubled and alone.
if (sweep) {
	let batch = '';
	for (let c = 0; c < 0x110000; c++) {
		if (c >= 0xd800 && c < 0xe000) continue;
		const x = String.fromCodePoint(c);
		batch += `a${x}'s ${x}A ${x}b 1${x}! !${x}x A${x}${x}c\n${x}/ ${x}\n`;
		if (batch.length > 4000) {
			texts.push(batch);
			batch = '';
		}
	}
	if (batch) texts.push(batch);
}

// The provider fixtures, whole.
const FIXTURES = process.env.FIXTURES ?? join(HERE, '..', 'fixtures', 'providers');
let fixtures = 0;
for (const dir of [FIXTURES, join(HERE, 'corpus')]) {
	let names = [];
	try {
		names = readdirSync(dir);
	} catch {}
	for (const f of names.sort()) {
		texts.push(readFileSync(join(dir, f), 'utf8'));
		fixtures++;
	}
}

const cl = get_encoding('cl100k_base');
const o2 = get_encoding('o200k_base');
const records = [];
let bytes = 0;
for (const t of texts) {
	const b = Buffer.from(t, 'utf8');
	const h = Buffer.alloc(4);
	h.writeUInt32LE(b.length);
	records.push(h, b);
	bytes += b.length;
}
const file = join(tmpdir(), `bpe-crosscheck-${process.pid}.bin`);
writeFileSync(file, Buffer.concat(records));
let out;
try {
	out = execFileSync(bin, ['--count', file], { maxBuffer: 1 << 30 })
		.toString().trim().split('\n');
} finally {
	rmSync(file, { force: true });
}
let bad = 0;
let tokens = 0;
for (let i = 0; i < texts.length; i++) {
	const want = [cl.encode_ordinary(texts[i]).length,
		o2.encode_ordinary(texts[i]).length];
	const got = (out[i] ?? '').split(' ').map(Number);
	tokens += want[0] + want[1];
	if (got[0] !== want[0] || got[1] !== want[1]) {
		if (bad++ < 10)
			console.log(`mismatch: tiktoken ${want.join(' ')}, bpe ${got.join(' ')}: ${JSON.stringify(texts[i]).slice(0, 300)}`);
	}
}
console.log(`${texts.length} texts (${N} random, ${sweep ? 'every code point, ' : ''}${fixtures} fixtures and corpus files), ${bytes} bytes, ${tokens} tokens: ${bad} mismatches`);
process.exit(bad ? 1 : 0);
