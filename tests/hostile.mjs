// hostile.mjs - a client that behaves as an attacker would, for
// it_hostile.sh: many connections, huge or endless heads, bodies without a
// key, bytes trickled one at a time, floods. Prints one JSON summary line.
//
//   node hostile.mjs MODE --port N [--host H] [--local ADDR] [options]
//
//   bodies  --conns N --size BYTES    POST without a key, a body of BYTES
//   headers --conns N --count K       a head with K tiny header fields
//   trickle --conns N --interval MS --for MS
//                                     a request line, a byte every MS
//   hold    --conns N --for MS        connect, send nothing, count who stays
//   flood   --conns N --for MS [--key K] [--model M] [--unique 1]
//                                     keep-alive requests as fast as answered
//                                     (--unique: a new model name each time;
//                                     --count N: stop after N requests)
//   raw     --data BASE64             send bytes, print the whole answer
//
// Each answer's status line is read; statuses are counted in the summary.
import net from 'node:net';

const args = process.argv.slice(2);
const mode = args.shift();
const opt = {};
for (let i = 0; i < args.length; i += 2)
	opt[args[i].replace(/^--/, '')] = args[i + 1];
const host = opt.host || '127.0.0.1';
const port = Number(opt.port);
const conns = Number(opt.conns || 1);

function connect() {
	const o = { host, port };
	if (opt.local)
		o.localAddress = opt.local;
	const s = net.connect(o);
	s.setNoDelay(true);
	s.on('error', () => {});
	return s;
}

// Collects a connection's answer; resolves at close with the status of
// the first answer (0 when none) and when the close came.
function answer(s, t0) {
	let got = Buffer.alloc(0);
	s.on('data', (d) => {
		if (got.length < 65536)
			got = Buffer.concat([got, d]);
	});
	return new Promise((resolve) => {
		s.on('close', () => {
			const m = /^HTTP\/1\.[01] (\d{3})/.exec(got.toString('latin1'));
			resolve({
				status: m ? Number(m[1]) : 0,
				ms: Date.now() - t0,
				text: got.toString('latin1'),
			});
		});
	});
}

function tally(results) {
	const statuses = {};
	for (const r of results)
		statuses[r.status] = (statuses[r.status] || 0) + 1;
	return statuses;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Connection i waits its turn: 200 every 20 ms, as fast as an attacker
// goes without overflowing the server's listen queue (a connection the
// kernel drops there is the network's doing, not the gateway's).
const ramp = (i) => sleep(Math.floor(i / 200) * 20);

// Writes buf in pieces, waiting for the socket to drain; stops quietly
// when the peer closes.
async function pump(s, size) {
	const chunk = Buffer.alloc(65536, 0x61);
	let left = size;
	while (left > 0 && !s.destroyed && s.writable) {
		const n = Math.min(left, chunk.length);
		left -= n;
		if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
			await new Promise((r) => {
				s.once('drain', r);
				s.once('close', r);
			});
	}
}

async function bodies() {
	const size = Number(opt.size);
	const path = opt.path || '/v1/chat/completions';
	const t0 = Date.now();
	const results = await Promise.all(
		Array.from({ length: conns }, async (_, i) => {
			await ramp(i);
			const s = connect();
			const done = answer(s, t0);
			await new Promise((r) => s.once('connect', r));
			s.write(`POST ${path} HTTP/1.1\r\nHost: gw\r\n` +
				`Content-Type: application/json\r\n` +
				`Content-Length: ${size}\r\n\r\n`);
			await pump(s, size);
			s.end();
			return done;
		}));
	return { statuses: tally(results), ms: Date.now() - t0,
		sample: results[0] && results[0].text.slice(0, 600) };
}

async function headers() {
	const count = Number(opt.count);
	const head = Buffer.from('GET /v1/models HTTP/1.1\r\nHost: gw\r\n' +
		'X-a: b\r\n'.repeat(count) + '\r\n');
	const t0 = Date.now();
	const results = await Promise.all(
		Array.from({ length: conns }, async (_, i) => {
			await ramp(i);
			const s = connect();
			const done = answer(s, t0);
			await new Promise((r) => s.once('connect', r));
			let off = 0;
			while (off < head.length && !s.destroyed) {
				const piece = head.subarray(off, off + 65536);
				off += piece.length;
				if (!s.write(piece))
					await new Promise((r) => {
						s.once('drain', r);
						s.once('close', r);
					});
			}
			s.end();
			return done;
		}));
	return { statuses: tally(results), ms: Date.now() - t0,
		sample: results[0] && results[0].text.slice(0, 600) };
}

async function trickle() {
	const interval = Number(opt.interval);
	const until = Number(opt.for);
	const line = 'POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nX-pad: ' +
		'a'.repeat(4096);
	const t0 = Date.now();
	const results = await Promise.all(
		Array.from({ length: conns }, async (_, i) => {
			await ramp(i);
			const s = connect();
			const born = Date.now();
			const done = answer(s, born);
			let closed = false;
			s.on('close', () => { closed = true; });
			await new Promise((r) => s.once('connect', r));
			for (let i = 0; i < line.length && !closed &&
			     Date.now() - t0 < until; i++) {
				s.write(line[i]);
				await sleep(interval);
			}
			if (!closed)
				s.destroy();
			const r = await done;
			r.by_server = closed;
			return r;
		}));
	const byServer = results.filter((r) => r.by_server);
	return {
		statuses: tally(results),
		closed_by_server: byServer.length,
		// The longest a connection lived, from its own start.
		max_close_ms: Math.max(0, ...byServer.map((r) => r.ms)),
		ms: Date.now() - t0,
	};
}

async function hold() {
	const until = Number(opt.for);
	const t0 = Date.now();
	const socks = [];
	for (let i = 0; i < conns; i++) {
		if (i > 0 && i % 200 === 0)
			await sleep(20);
		const s = connect();
		const r = { s, done: answer(s, t0), closed: false };
		s.on('close', () => { r.closed = true; });
		socks.push(r);
	}
	await sleep(until);
	const open = socks.filter((r) => !r.closed).length;
	for (const r of socks)
		r.s.destroy();
	const results = await Promise.all(socks.map((r) => r.done));
	return { open, statuses: tally(results), ms: Date.now() - t0 };
}

async function flood() {
	const until = Number(opt.for);
	const limit = opt.count ? Number(opt.count) : Infinity;
	const auth = opt.key ? `Authorization: Bearer ${opt.key}\r\n` : '';
	let nth = 0;
	function request() {
		const model = (opt.model || 'gpt-4o-mini') +
			(opt.unique ? `-${nth++}` : '');
		const body = JSON.stringify({ model,
			messages: [{ role: 'user', content: 'hi' }] });
		return `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n` +
			`${auth}Content-Type: application/json\r\n` +
			`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
	}
	const statuses = {};
	let sent = 0;
	const t0 = Date.now();
	// Each worker sends a request, reads its answer (up to the end of a
	// Content-Length body), and sends the next, reconnecting on close.
	async function worker() {
		while (Date.now() - t0 < until && sent < limit) {
			const s = connect();
			await new Promise((r) => {
				s.once('connect', r);
				s.once('close', r);
			});
			let buf = Buffer.alloc(0);
			let open = !s.destroyed;
			let wake = null;
			s.on('data', (d) => {
				buf = Buffer.concat([buf, d]);
				if (wake)
					wake();
			});
			s.on('close', () => {
				open = false;
				if (wake)
					wake();
			});
			while (open && Date.now() - t0 < until &&
			       sent < limit) {
				s.write(request());
				sent++;
				let status = 0;
				for (;;) {
					const text = buf.toString('latin1');
					const end = text.indexOf('\r\n\r\n');
					if (end >= 0) {
						const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
						const cl = /\r\ncontent-length: *(\d+)/i.exec(
							text.slice(0, end));
						const total = end + 4 + (cl ? Number(cl[1]) : 0);
						if (buf.length >= total) {
							status = m ? Number(m[1]) : 0;
							buf = buf.subarray(total);
							break;
						}
					}
					if (!open)
						break;
					await new Promise((r) => { wake = r; });
					wake = null;
				}
				if (status === 0) {
					// Closed before answering: the request
					// was never read.
					sent--;
					break;
				}
				statuses[status] = (statuses[status] || 0) + 1;
			}
			s.destroy();
		}
	}
	await Promise.all(Array.from({ length: conns }, worker));
	return { statuses, sent, ms: Date.now() - t0 };
}

async function raw() {
	const s = connect();
	const done = answer(s, Date.now());
	await new Promise((r) => s.once('connect', r));
	s.write(Buffer.from(opt.data, 'base64'));
	const wait = setTimeout(() => s.destroy(), Number(opt.for || 5000));
	const r = await done;
	clearTimeout(wait);
	return { status: r.status, text: r.text };
}

const modes = { bodies, headers, trickle, hold, flood, raw };
if (!modes[mode]) {
	console.error(`hostile.mjs: unknown mode ${mode}`);
	process.exit(2);
}
console.log(JSON.stringify(await modes[mode]()));
