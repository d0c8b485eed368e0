// tests/members/fuzz.mjs - the bodies of it_members.sh's property test,
// and the driver that sends them.
//
// Usage: node fuzz.mjs '{"gw":URL,"mock":URL,"key":KEY,"seed":N,
//                        "count":N,"out":FILE}'
//        node fuzz.mjs '{"seed":N,"count":N,"dry":true}'  (bodies only)
//
// From a seeded generator (the same seed gives the same bodies), builds
// COUNT request bodies by mutating valid ones for every endpoint that
// forwards the client's bytes: duplicate members (model, stream,
// stream_options, caps, n), escaped names, names equal under Go-style case
// folding, whitespace, nesting, reordering, wrong types and bytes after the
// object. Each one is sent to the gateway, one at a time, and the mock's
// counters are read after it, so the model the mock was asked for is this
// request's. One JSON line per body goes to OUT:
//   {i, ep, muts, path, body, status, rid, etype, mreq, served, mstream}
// mreq is how many model requests reached the mock, served the fixture
// name it was asked for (null when none), mstream whether it answered a
// stream. it_members.sh checks the lines; this file decides nothing.

import { writeFileSync, appendFileSync } from 'node:fs';

const args = JSON.parse(process.argv[2]);

// mulberry32: small, seeded, good enough to pick mutations.
let state = args.seed >>> 0;
function rnd() {
	state = (state + 0x6d2b79f5) >>> 0;
	let t = state;
	t = Math.imul(t ^ (t >>> 15), t | 1);
	t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
	return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const chance = (p) => rnd() < p;
const q = (s) => JSON.stringify(s);

const MODELS = {
	openai: { cheap: 'openai-cheap', dear: 'openai-dear' },
	anthropic: { cheap: 'anthropic-cheap', dear: 'anthropic-dear' },
};
const MSGS = '[{"role":"user","content":"Say hello, please."}]';
const AZURE_Q = '?api-version=2024-10-21';

// A member: the key as written (raw JSON text between the quotes), its
// name, and its value as JSON text.
const mem = (name, value, key = name) => ({ name, key, value });

// What each endpoint's valid body holds; model is added by base().
const EPS = {
	chat: {
		path: '/v1/chat/completions', fam: 'openai', auth: 'bearer',
		stream: true, n: true, cap: 'max_tokens', usage: true,
		rest: () => [mem('messages', MSGS)],
	},
	completions: {
		path: '/v1/completions', fam: 'openai', auth: 'bearer',
		stream: true, n: true, cap: 'max_tokens', usage: true,
		rest: () => [mem('prompt', q('Say hello.'))],
	},
	embeddings: {
		path: '/v1/embeddings', fam: 'openai', auth: 'bearer',
		stream: false, n: false, cap: null, usage: false,
		rest: () => [mem('input', pick([q('hello'), '[1,2,3]', '["a","b"]']))],
	},
	responses: {
		path: '/v1/responses', fam: 'openai', auth: 'bearer',
		stream: true, n: false, cap: 'max_output_tokens', usage: false,
		rest: () => [mem('input', q('Say hello.'))],
	},
	messages: {
		path: '/v1/messages', fam: 'anthropic', auth: 'anthropic',
		stream: true, n: false, cap: 'max_tokens', usage: false,
		rest: () => [mem('messages', MSGS)],
	},
	azure: {
		path: '/openai/deployments/openai-cheap/chat/completions' + AZURE_Q,
		fam: 'openai', auth: 'azure', azure: true,
		stream: true, n: true, cap: 'max_tokens', usage: true,
		rest: () => [mem('messages', MSGS)],
	},
};

// Escapes a member name: every character, or one of them, as \uXXXX.
function escapeName(name) {
	const esc = (c) => {
		const h = c.charCodeAt(0).toString(16).padStart(4, '0');
		return '\\u' + (chance(0.5) ? h : h.toUpperCase());
	};
	const chars = [...name];
	if (chance(0.5))
		return chars.map(esc).join('');
	const i = Math.floor(rnd() * chars.length);
	return chars.map((c, j) => (j === i ? esc(c) : c)).join('');
}

// Returns a spelling of name different from it but equal under Go's
// folding: case changes, U+017F for s, U+212A for k, raw or escaped.
function foldVariant(name) {
	let out;
	for (let tries = 0; tries < 8; tries++) {
		const kind = pick(['upper', 'title', 'random', 'longs', 'kelvin']);
		if (kind === 'upper')
			out = name.toUpperCase();
		else if (kind === 'title')
			out = name[0].toUpperCase() + name.slice(1);
		else if (kind === 'random')
			out = [...name].map((c) => (chance(0.5) ? c.toUpperCase() : c)).join('');
		else if (kind === 'longs' && name.includes('s'))
			out = name.replace('s', chance(0.5) ? '\u017f' : '\\u017f');
		else if (kind === 'kelvin' && name.includes('k'))
			out = name.replace('k', chance(0.5) ? '\u212a' : '\\u212A');
		else
			out = name.toUpperCase();
		if (out !== name)
			return out;
	}
	return name.toUpperCase();
}

// A body in construction: members, whitespace, what follows the object.
class Body {
	constructor(ep, model) {
		this.ep = ep;
		this.members = [];
		if (!ep.azure || chance(0.3))
			this.members.push(mem('model', q(model)));
		this.members.push(...ep.rest());
		if (ep.cap && chance(0.7))
			this.members.push(mem(ep.cap, String(pick([4, 6, 8]))));
		this.ws = false;
		this.trailer = '';
	}
	has(name) {
		return this.members.some((m) => m.name === name);
	}
	insert(m) {
		const i = Math.floor(rnd() * (this.members.length + 1));
		this.members.splice(i, 0, m);
	}
	append(m) {
		this.members.push(m);
	}
	space() {
		if (!this.ws)
			return '';
		return pick(['', ' ', '\n', '\t', '\r\n', '  \n ']);
	}
	text() {
		const parts = this.members.map((m) =>
			this.space() + '"' + m.key + '"' + this.space() + ':' +
			this.space() + m.value + this.space());
		return this.space() + '{' + parts.join(',') + '}' + this.space() +
			this.trailer;
	}
}

// The mutations: each takes a body and the endpoint's models.
const MUTATIONS = {
	// The attack: the model twice, the other one first or last.
	'dup-model': (b, m) => {
		const other = chance(0.5) ? m.dear : m.cheap;
		if (chance(0.5))
			b.append(mem('model', q(other)));
		else
			b.members.unshift(mem('model', q(other)));
	},
	'escaped-dup-model': (b, m) =>
		b.append(mem('model', q(m.dear), escapeName('model'))),
	'escaped-name': (b) => {
		const ms = b.members.filter((x) => x.key === x.name);
		if (ms.length > 0) {
			const x = pick(ms);
			x.key = escapeName(x.name);
		}
	},
	'fold-dup': (b, m) => {
		const name = pick(['model', 'stream', b.ep.cap || 'model']);
		const value = name === 'model' ? q(m.dear)
			: name === 'stream' ? pick(['true', 'false']) : '64';
		b.append(mem(name, value, foldVariant(name)));
	},
	'fold-only': (b) => {
		const ms = b.members.filter((x) => x.key === x.name &&
			['model', 'stream', 'max_tokens', 'max_output_tokens',
				'stream_options', 'n'].includes(x.name));
		if (ms.length > 0) {
			const x = pick(ms);
			x.key = foldVariant(x.name);
		}
	},
	'dup-stream': (b) => {
		if (!b.ep.stream)
			return;
		const v = chance(0.5);
		b.insert(mem('stream', String(v)));
		b.insert(mem('stream', String(!v)));
	},
	'dup-stream-options': (b) => {
		if (!b.ep.stream)
			return;
		if (!b.has('stream'))
			b.append(mem('stream', 'true'));
		if (chance(0.5)) {
			b.append(mem('stream_options', '{"include_usage":true}'));
			b.append(mem('stream_options', '{"include_usage":false}'));
		} else {
			b.append(mem('stream_options', pick([
				'{"include_usage":true,"include_usage":false}',
				'{"include_usage":false,"include_usage":true}',
				'{"include_usage":true,"INCLUDE_USAGE":false}',
				'{"include_usage":true,"include_u\\u0073age":false}',
			])));
		}
	},
	'dup-cap': (b) => {
		const cap = b.ep.cap || 'max_tokens';
		b.append(mem(cap, String(pick([1, 2, 40, 64]))));
		if (chance(0.5))
			b.insert(mem(cap, String(pick([3, 5]))));
	},
	'dup-n': (b) => {
		if (!b.ep.n)
			return;
		b.insert(mem('n', '1'));
		b.insert(mem('n', String(pick([2, 3]))));
	},
	'nested-model': (b, m) => {
		b.append(mem('metadata', pick([
			`{"model":${q(m.dear)}}`,
			`{"MODEL":${q(m.dear)},"model":${q(m.dear)}}`,
			`{"stream":"x","max_tokens":"y","Stream":"z"}`,
		])));
	},
	'nested-dup': (b, m) => {
		b.append(mem('metadata', pick([
			`{"model":"a","model":${q(m.dear)}}`,
			`{"tag":"a","t\\u0061g":"b"}`,
		])));
	},
	'schema-model': (b) => {
		if (b.ep !== EPS.chat && b.ep !== EPS.azure)
			return;
		b.append(mem('tools', '[{"type":"function","function":{"name":"pick",' +
			'"parameters":{"type":"object","properties":{' +
			'"model":{"type":"string"},"MODEL":{"type":"string"},' +
			'"stream":{"type":"boolean"}}}}}]'));
	},
	'content-dup': (b) => {
		const i = b.members.findIndex((x) => x.name === 'messages');
		if (i >= 0)
			b.members[i].value = '[{"role":"user","content":"Say hello.",' +
				'"content":"Say goodbye."}]';
	},
	'reorder': (b) => {
		for (let i = b.members.length - 1; i > 0; i--) {
			const j = Math.floor(rnd() * (i + 1));
			[b.members[i], b.members[j]] = [b.members[j], b.members[i]];
		}
	},
	'whitespace': (b) => {
		b.ws = true;
	},
	'value-escape': (b) => {
		const x = b.members.find((y) => y.name === 'model');
		if (x)
			x.value = '"' + JSON.parse(x.value).replace(/[a-z]/, (c) =>
				'\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')) +
				'"';
	},
	'trailing': (b, m) => {
		b.trailer = pick([` {"model":${q(m.dear)}}`, 'x', ',', ']', '}',
			`{"model":${q(m.dear)}}`, '\u0000']);
	},
	'trailing-space': (b) => {
		b.trailer = pick(['\n', ' \r\n\t', '  ']);
	},
	'wrong-type': (b) => {
		const opts = [['max_tokens', '"5"'], ['max_tokens', '1.5'],
			['max_tokens', '0']];
		if (b.ep.stream)
			opts.push(['stream', '"true"'], ['stream', '1']);
		if (b.ep.n)
			opts.push(['n', '0'], ['n', '"2"']);
		const [k, v] = pick(opts);
		b.members = b.members.filter((x) => x.name !== k);
		b.insert(mem(k, v));
	},
	'dear': (b, m) => {
		for (const x of b.members)
			if (x.name === 'model')
				x.value = q(m.dear);
		if (b.ep.azure)
			b.path = b.ep.path.replace('openai-cheap', 'openai-dear');
	},
	'stream': (b) => {
		if (!b.ep.stream || b.has('stream'))
			return;
		b.insert(mem('stream', 'true'));
		if (b.ep.usage && chance(0.5))
			b.insert(mem('stream_options', '{"include_usage":true}'));
	},
};
const NAMES = Object.keys(MUTATIONS);
// The mutations after which a body is still one valid reading.
const BENIGN = ['escaped-name', 'nested-model', 'schema-model', 'reorder',
	'whitespace', 'value-escape', 'trailing-space', 'stream'];

// Builds body i.
function build(i) {
	const epName = pick(['chat', 'chat', 'completions', 'embeddings',
		'responses', 'messages', 'azure']);
	const ep = EPS[epName];
	const m = MODELS[ep.fam];
	const b = new Body(ep, m.cheap);
	const muts = [];
	b.path = ep.path;
	if (chance(0.4)) {
		MUTATIONS.stream(b, m);
		muts.push('stream');
	}
	// Every fifth body is the plain attack, so each endpoint sees it;
	// of the others, some are mutated only in ways that keep them valid.
	const n = i % 5 === 0 ? 1 : 1 + Math.floor(rnd() * 3);
	const pool = i % 5 !== 0 && chance(0.4) ? BENIGN : NAMES;
	for (let k = 0; k < n; k++) {
		const name = i % 5 === 0 && k === 0
			? pick(['dup-model', 'escaped-dup-model', 'fold-dup'])
			: pick(pool);
		MUTATIONS[name](b, m);
		muts.push(name);
	}
	return { ep: epName, muts, path: b.path, body: b.text() };
}

// The headers that carry the key on an endpoint.
function headers(ep) {
	const h = { 'content-type': 'application/json' };
	if (EPS[ep].auth === 'anthropic') {
		h['x-api-key'] = args.key;
		h['anthropic-version'] = '2023-06-01';
	} else if (EPS[ep].auth === 'azure') {
		h['api-key'] = args.key;
	} else {
		h.authorization = 'Bearer ' + args.key;
	}
	return h;
}

async function mockStats() {
	const r = await fetch(args.mock + '/_mock/stats');
	return r.json();
}

if (args.dry) {
	// Only print the bodies (for a look at what the generator makes).
	for (let i = 0; i < args.count; i++)
		console.log(JSON.stringify(build(i)));
	process.exit(0);
}
writeFileSync(args.out, '');
let before = await mockStats();
for (let i = 0; i < args.count; i++) {
	const c = build(i);
	const line = { i, ...c };
	try {
		const r = await fetch(args.gw + c.path, {
			method: 'POST', headers: headers(c.ep), body: c.body,
			signal: AbortSignal.timeout(30000),
		});
		const text = await r.text();
		line.status = r.status;
		line.rid = r.headers.get('x-request-id');
		try {
			const j = JSON.parse(text);
			line.etype = j?.error?.type ?? null;
			line.eparam = j?.error?.param ?? null;
		} catch {
			line.etype = null;
		}
	} catch (e) {
		line.status = 0;
		line.error = String(e);
	}
	const after = await mockStats();
	line.mreq = after.requests - before.requests;
	line.served = null;
	for (const [name, s] of Object.entries(after.by_model)) {
		const was = before.by_model[name]?.requests ?? 0;
		if (s.requests > was)
			line.served = name;
	}
	line.mstream = line.mreq > 0 && after.last
		? / stream$/.test(after.last.what) : null;
	before = after;
	appendFileSync(args.out, JSON.stringify(line) + '\n');
}
