// expected.mjs - writes tests/bpe/expected.h, the counts that
// tests/test_bpe.c holds bpe_count() to, taken from OpenAI's tiktoken (the
// npm package's WASM build): encode_ordinary(text).length for cl100k_base
// and o200k_base. The texts are listed here; run it after changing them:
//
//	npm ci --prefix tests/bpe
//	node tests/bpe/expected.mjs           # rewrites tests/bpe/expected.h
//	node tests/bpe/expected.mjs --check   # fails if it would change it
//
// Three tables: short texts (edge cases), the files in tests/bpe/corpus/,
// and long runs that the test generates (a letter repeated, or letters
// drawn by a xorshift32 generator that test_bpe.c repeats).

import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(HERE, 'package.json'));
const { get_encoding } = require('tiktoken');
const version = JSON.parse(readFileSync(
	join(HERE, 'node_modules/tiktoken/package.json'), 'utf8')).version;

// [text, what it tests]
const CASES = [
	['', 'empty'],
	['Hello', 'one word'],
	['Hello, world!', 'greeting'],
	['The quick brown fox jumps over the lazy dog.', 'pangram'],
	["I'm sorry, but I can't help with that request.", 'refusal'],
	// Whitespace: \s+(?!\S) leaves the last blank to the next word,
	// \s*[\r\n] ends at the last newline.
	[' ', 'one space'],
	['   ', 'spaces alone'],
	['\t', 'tab alone'],
	['\n', 'newline alone'],
	['\n\n  \n', 'blank lines'],
	['trailing   ', 'trailing spaces'],
	['   leading', 'leading spaces'],
	['a  b', 'two spaces between words'],
	['a   b', 'three spaces between words'],
	['a \n b', 'space newline space'],
	['\t\tindented', 'tabs before a word'],
	['  \t1', 'blanks before a digit'],
	['line\r\nline\r\n', 'CRLF lines'],
	['\r\r\n\n', 'carriage returns and newlines'],
	['x\u00a0y', 'no-break space'],
	['x\u3000\u3000y', 'ideographic spaces'],
	['end \n', 'space before the final newline'],
	['\u2028\u2029\u0085', 'line and paragraph separators, NEL'],
	['\u000b\u000c', 'vertical tab, form feed'],
	['    return x;\n', 'indented statement'],
	['\n    \n    x', 'indented blank line'],
	// Contractions: (?i) and 'ſ (long s folds to s).
	["don't", "don't"],
	["I'LL", "I'LL"],
	["'s", "'s alone"],
	["'S", "'S alone"],
	["they'll've", 'two contractions'],
	["It'S", "It'S"],
	["rock'n'roll", 'apostrophes inside a word'],
	["'", 'apostrophe alone'],
	["''", 'two apostrophes'],
	["O'Neil's", "O'Neil's"],
	[" I'\u017f", "' and long s (o200k: \" I'\" and \"\u017f\")"],
	["we're you've I'd Ma'am", 'more contractions'],
	["\u2019s it\u2019s", 'curly apostrophe: no contraction'],
	// Numbers: groups of up to three.
	['1234567', 'seven digits'],
	[' 1234567', 'space and seven digits'],
	['12.5 3.14159 1,000,000', 'decimals and thousands'],
	['2024-03-14T15:09:26Z', 'timestamp'],
	['\u0663\u0664\u0665 \u00bd\u00b2\u216b', 'other digits and numbers'],
	['0xDEADBEEF v1.2.3', 'hex and versions'],
	// Case: o200k cuts words at capitals.
	['HTTPServer', 'capitals then a word'],
	['iPhone McDonald camelCaseWord', 'camel case'],
	['SCREAMING_SNAKE_CASE', 'all capitals'],
	['HELLO\u02b0WORLD', 'modifier letter inside capitals'],
	['\u01c5emal \u01c8udevit', 'title case letters'],
	// Marks: not \p{L}; in o200k's word classes.
	['e\u0301', 'e and a combining acute'],
	['\u0301ABC', 'a mark before capitals'],
	['!!\u0301', 'a mark after punctuation'],
	[' \u0301', 'a mark after a space'],
	['a\u0301b\u0301c\u0301', 'marks inside a word'],
	['\u0915\u094d\u0937\u0924\u094d\u0930\u093f\u092f', 'Devanagari'],
	// Punctuation: o200k takes slashes after newlines.
	['!\n/\n', 'punctuation, newline, slash'],
	['a/\n/b', 'slash newline slash'],
	['... !!! ?! ":{"', 'punctuation runs'],
	['https://example.com/a/b?c=d#e', 'URL'],
	['<|endoftext|> <|im_start|>', 'special tokens as text'],
	// Emoji and symbols.
	['\u{1f600}', 'emoji'],
	['\u{1f44d}\u{1f3fd}', 'emoji with skin tone'],
	['\u{1f468}\u200d\u{1f469}\u200d\u{1f467}\u200d\u{1f466}', 'family (ZWJ sequence)'],
	['\u{1f1eb}\u{1f1f7}', 'flag'],
	['I \u2764\ufe0f you', 'heart with variation selector'],
	['\u2200x \u2208 \u211d: x\u00b2 \u2265 0', 'math symbols'],
	// CJK and other scripts.
	['\u4f60\u597d\uff0c\u4e16\u754c\uff01', 'Chinese greeting'],
	['\u6211\u662f\u4e00\u4e2a\u4eba\u5de5\u667a\u80fd\u52a9\u624b\uff0c\u5f88\u9ad8\u5174\u4e3a\u4f60\u670d\u52a1\u3002', 'Chinese sentence'],
	['\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8', 'Japanese'],
	['\ud55c\uad6d\uc5b4 \ubb38\uc7a5', 'Korean'],
	['\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440', 'Russian'],
	['\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1', 'Greek'],
	['\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627', 'Hebrew and Arabic'],
	['\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35', 'Thai'],
	['GPT-4o \u548c GLM-4 \u7684\u4ef7\u683c', 'mixed Latin and Chinese'],
	// Code and JSON.
	['def f(x):\n    return x + 1\n', 'Python'],
	['for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}\n', 'C'],
	['{"a": [1, 2, 3], "b": null, "c": "d\\n"}', 'JSON'],
	// Unicode versions: U+1C89 is a letter since 16.0, U+A7CE since 17.0
	// (not yet to tiktoken).
	['x\u1c89y \ua7ce', 'letters new in Unicode 16.0 and 17.0'],
	['a\u0000b', 'NUL'],
	['\ufffd\ue000\u0378', 'replacement, private use, unassigned'],
];

// [file in tests/bpe/corpus]
const FILES = ['english.txt', 'chinese.txt', 'code_c.txt', 'code_py.txt',
	'data.json', 'mixed.txt'];

// [unit repeated, or null; alphabet to draw from, or null; length in
// characters; xorshift32 seed]
const RUNS = [
	['a', null, 20000, 0],
	[' ', null, 20000, 0],
	['\n', null, 5000, 0],
	['.', null, 5000, 0],
	['7', null, 5000, 0],
	['\u4e00', null, 5000, 0],
	[null, 'abcdefghijklmnopqrstuvwxyz', 20000, 1],
	[null, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 20000, 2],
	[null, 'etaoin shrdlu', 20000, 3],
	[null, ' \t\n', 5000, 4],
	[null, '!"#$%&()*+,-./:;<=>?@[]^_`{|}~', 5000, 5],
];

// The same generator as test_bpe.c's run_text().
function runText(unit, alphabet, len, seed) {
	if (unit !== null) return unit.repeat(len);
	const a = Array.from(alphabet);
	let x = seed >>> 0;
	let s = '';
	for (let i = 0; i < len; i++) {
		x ^= x << 13;
		x >>>= 0;
		x ^= x >>> 17;
		x ^= x << 5;
		x >>>= 0;
		s += a[x % a.length];
	}
	return s;
}

const cl = get_encoding('cl100k_base');
const o2 = get_encoding('o200k_base');
const counts = (t) =>
	[cl.encode_ordinary(t).length, o2.encode_ordinary(t).length];

// A C string literal of t's UTF-8: visible characters as they are,
// controls, marks and invisible ones as octal escapes.
function cString(t) {
	let out = '';
	for (const ch of t) {
		const c = ch.codePointAt(0);
		if (ch === '"' || ch === '\\') out += `\\${ch}`;
		else if (ch === '?') out += '\\?';
		else if (ch === '\n') out += '\\n';
		else if (ch === '\t') out += '\\t';
		else if (ch === '\r') out += '\\r';
		else if ((c >= 0x20 && c < 0x7f) ||
			 (c >= 0xa0 && /[\p{L}\p{N}\p{P}\p{S}]/u.test(ch) &&
			  !/\p{M}/u.test(ch)))
			out += ch;
		else
			for (const b of Buffer.from(ch, 'utf8'))
				out += `\\${b.toString(8).padStart(3, '0')}`;
	}
	return `"${out}"`;
}

const lines = [];
lines.push(`/*
 * expected.h - token counts from OpenAI's tiktoken ${version} (npm, the WASM
 * build): encode_ordinary(text).length for cl100k_base and o200k_base.
 * Generated by tests/bpe/expected.mjs, which lists the texts; do not edit.
 * Included by tests/test_bpe.c, which defines the structures.
 */
/* clang-format off */
static const struct text_case text_cases[] = {`);
for (const [t, what] of CASES) {
	const [a, b] = counts(t);
	lines.push(`\t{ ${cString(t)}, ${Buffer.byteLength(t)}, ${a}, ${b}, ${cString(what)} },`);
}
lines.push('};\n\nstatic const struct file_case file_cases[] = {');
for (const f of FILES) {
	const t = readFileSync(join(HERE, 'corpus', f), 'utf8');
	const [a, b] = counts(t);
	lines.push(`\t{ "${f}", ${Buffer.byteLength(t)}, ${a}, ${b} },`);
}
lines.push('};\n\nstatic const struct run_case run_cases[] = {');
for (const [unit, alphabet, len, seed] of RUNS) {
	const t = runText(unit, alphabet, len, seed);
	const [a, b] = counts(t);
	lines.push(`\t{ ${unit === null ? 'NULL' : cString(unit)}, ${alphabet === null ? 'NULL' : cString(alphabet)}, ${len}, ${seed}, ${Buffer.byteLength(t)}, ${a}, ${b} },`);
}
lines.push('};\n/* clang-format on */\n');

const text = lines.join('\n');
const path = join(HERE, 'expected.h');
if (process.argv.includes('--check')) {
	let have = '';
	try {
		have = readFileSync(path, 'utf8');
	} catch {}
	if (have !== text) {
		console.error(`${path} is out of date: run node tests/bpe/expected.mjs`);
		process.exit(1);
	}
	console.log(`${path}: up to date`);
} else {
	writeFileSync(path, text);
	console.log(`${path}: ${CASES.length} texts, ${FILES.length} files, ${RUNS.length} runs`);
}
