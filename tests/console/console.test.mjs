// console.test.mjs - drives the console (doc/console.md) of a live
// tollgated in headless Chromium with puppeteer-core, for
// tests/it_console.sh, which starts the gateway, seeds the ledger and
// computes what the pages must show.
//
//   node console.test.mjs ARGS.json
//
// ARGS.json: console (the page's URL), gateway (the data plane's URL),
// admin_token, readonly_token, shots (where screenshots go), downloads
// (where the browser saves files), chromium (its path), months {past,
// current}, expected {MONTH: {TENANT: {requests, refused, tokens, spend
// [{currency, list, free, discount, billed}], billed_tenant, currency,
// display_name, …}}}, tenant (the one acted on), tenant_tz and
// tenant_tz_offset (its zone, which has no daylight saving time),
// tenant_model (a model its keys may use), cn_name, en_name, acme_key and
// acme_model (traffic for the live page), past_bill_total (tollctl's
// total of the tenant's past month), browser_tz, slow (sanitizer build:
// longer waits).
//
// Prints one JSON line per check, {"ok", "desc", "detail": [...]}, and
// last {"done": true, "result": {key_id, key_prefix, quota_id,
// refused_request_id, csv_file}} for the checks the shell makes.
// The page is driven by its data-testid attributes (data/console/console.js
// lists them).

import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const T = cfg.slow ? 40000 : 20000; // a wait for the page
const ACTOR = 'console:admin@127.0.0.1';
const result = {};

// A stop for everything, should the browser hang.
const watchdog = setTimeout(() => {
	check('the browser script finished within 200 s', false);
	process.exit(3);
}, 200000);

// ---------------------------------------------------------------------------
// Checks.

function emit(o) {
	process.stdout.write(JSON.stringify(o) + '\n');
}

function check(desc, ok, ...detail) {
	emit({ ok: !!ok, desc, detail: ok ? [] : detail.map(String) });
	return !!ok;
}

function eq(desc, want, got) {
	const w = JSON.stringify(want), g = JSON.stringify(got);
	return check(desc, w === g, `expected: ${w}`, `got:      ${g}`);
}

function slug(s) {
	return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);
}

let page; // the admin's page

async function shot(name, p = page, full = true) {
	const file = path.join(cfg.shots, name + '.png');
	if (full)
		await p.evaluate(() => window.scrollTo(0, 0));
	await p.screenshot({ path: file, fullPage: full });
	return file;
}

// Closes a dialog left open (an action that failed), so that the next
// part can use the page.
async function closeDialogs(p) {
	await p.evaluate(() => {
		for (const d of document.querySelectorAll('dialog'))
			d.close();
	});
}

// Runs one part; an exception is a failed check (with a screenshot of
// where it stopped), and the next part runs.
async function step(name, fn) {
	try {
		await fn();
	} catch (e) {
		check(`${name}: ran to its end`, false, String((e && e.stack) || e).split('\n').slice(0, 5).join(' | '));
		try {
			await shot('failed-' + slug(name));
			await closeDialogs(page);
		} catch (e2) {
			/* no screenshot either */
		}
	}
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Exact money, independently of the page's own code.

// "1234.565000000" as shown to the cent, half up: "1,234.57".
function cents(str) {
	const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(str);
	if (!m)
		return null;
	const frac = (m[3] || '').padEnd(9, '0');
	let v = BigInt(m[2] + frac.slice(0, 9));
	v = (v + 5000000n) / 10000000n;
	const d = v.toString().padStart(3, '0');
	const int = d.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
	return (m[1] && v !== 0n ? '-' : '') + int + '.' + d.slice(-2);
}

// The wall clock of an instant in a time zone: "YYYY-MM-DD HH:MM".
function wallClock(ms, tz) {
	const f = new Intl.DateTimeFormat('en-CA', {
		timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit',
		hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
	}).formatToParts(new Date(ms));
	const p = Object.fromEntries(f.map(x => [x.type, x.value]));
	return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

// ---------------------------------------------------------------------------
// The data plane, from here.

async function chat(key, model) {
	const res = await fetch(cfg.gateway + '/v1/chat/completions', {
		method: 'POST',
		headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
		body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello, who are you?' }] }),
	});
	let body = null;
	try {
		body = await res.json();
	} catch (e) {
		/* not JSON */
	}
	return { status: res.status, body, rid: res.headers.get('x-request-id') };
}

// Repeats a request until its status is want (a change reaching the
// gateway through NOTIFY), for at most ms; the last answer and how long.
async function chatUntil(key, model, want, ms) {
	const t0 = Date.now();
	let r;
	for (;;) {
		r = await chat(key, model);
		if (r.status === want || Date.now() - t0 > ms)
			return { ...r, after: Date.now() - t0 };
		await sleep(200);
	}
}

// ---------------------------------------------------------------------------
// The page.

const sel = id => `[data-testid="${id}"]`;

async function waitFor(p, fn, ...args) {
	return p.waitForFunction(fn, { timeout: T, polling: 100 }, ...args);
}

async function text(p, selector) {
	return p.$eval(selector, e => e.textContent.trim());
}

// Goes to a route (the part after #) and waits until ready(…args) holds
// in the page.
async function go(p, hash, ready, ...args) {
	await p.evaluate(h => {
		location.hash = h;
	}, hash);
	await waitFor(p, ready, ...args);
}

// Whether the view shows a month's overview.
function overviewReady(m) {
	const i = document.querySelector('[data-testid="month"]');
	return !!(i && i.value === m && !document.getElementById('view').hasAttribute('aria-busy') &&
		document.querySelector('[data-testid="tenant-row"]'));
}

// Whether the view shows a tenant's month, its bill loaded.
function tenantReady(name, m) {
	const i = document.querySelector('[data-testid="month"]');
	const row = document.querySelector('[data-testid="section-keys"]');
	const bill = document.querySelector('[data-testid="bill-total"], [data-testid="bill-error"]');
	return !!(i && i.value === m && row && bill && !document.getElementById('view').hasAttribute('aria-busy') &&
		location.hash.startsWith('#/tenant/' + encodeURIComponent(name)));
}

// What the pages fetched from anywhere but the console, and what the
// browser refused under the page's Content-Security-Policy.
const foreign = [], refused = [];
const origin = new URL(cfg.console).origin;

async function newPage(context) {
	const p = await context.newPage();
	await p.emulateTimezone(cfg.browser_tz);
	p.setDefaultTimeout(T);
	p.on('pageerror', e => check('no script error on the page', false, e.message));
	p.on('request', r => {
		const u = r.url();
		if (!u.startsWith(origin + '/') && !u.startsWith('data:'))
			foreign.push(u);
	});
	p.on('console', m => {
		if (m.type() === 'error' && /Content Security Policy/i.test(m.text()))
			refused.push(m.text());
	});
	return p;
}

async function login(p, token) {
	await p.goto(cfg.console, { waitUntil: 'load' });
	await p.waitForSelector(sel('login-form'), { visible: true });
	await p.$eval(sel('login-token'), e => {
		e.value = '';
	});
	await p.type(sel('login-token'), token);
	await p.click(sel('login-submit'));
	await waitFor(p, () => {
		const r = document.querySelector('[data-testid="role"]');
		return r && r.textContent.trim() !== '' && document.querySelector('[data-testid="page-title"]');
	});
}

// Answers a dialog: fields {testid: value} (select or text), then Confirm.
async function confirmDialog(p, fields = {}) {
	await p.waitForSelector(sel('dialog'), { visible: true });
	for (const [id, v] of Object.entries(fields)) {
		const tag = await p.$eval(sel(id), e => e.tagName);
		if (tag === 'SELECT')
			await p.select(sel(id), v);
		else
			await p.type(sel(id), v);
	}
	const summary = await text(p, sel('dialog-summary'));
	await p.click(sel('dialog-confirm'));
	return summary;
}

// Waits for the dialog's action to end: the next view of the dialog (then
// on success), its closing, or its error, which is thrown.
async function dialogDone(p, then = null) {
	await waitFor(p, t => {
		const d = document.querySelector('[data-testid="dialog"]');
		const e = document.querySelector('[data-testid="dialog-error"]');
		return !d || (e && !e.hidden) || (t && document.querySelector(`[data-testid="${t}"]`));
	}, then);
	const err = await p.$eval(sel('dialog-error'), e => (e.hidden ? null : e.textContent)).catch(() => null);
	if (err) {
		await shot('failed-dialog', p, false);
		await closeDialogs(p);
		throw new Error(`the action answered an error: ${err}`);
	}
}

// ---------------------------------------------------------------------------

const args = ['--disable-dev-shm-usage', '--disable-gpu', '--font-render-hinting=none',
	'--hide-scrollbars', '--lang=en-US', '--no-first-run', '--no-default-browser-check'];
const launch = extra => puppeteer.launch({
	executablePath: cfg.chromium,
	headless: true,
	args: args.concat(extra),
	env: { ...process.env, TZ: cfg.browser_tz, LANG: 'en_US.UTF-8' },
	defaultViewport: { width: 1360, height: 900 },
	protocolTimeout: 2 * T,
});
let browser;
try {
	browser = await launch(process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : []);
} catch (e) {
	// Without user namespaces (some containers) the sandbox cannot start.
	process.stderr.write(`chromium did not start sandboxed (${e.message}); without the sandbox\n`);
	browser = await launch(['--no-sandbox']);
}
check(`Chromium started (${await browser.version()})`, true);

page = await newPage(browser.defaultBrowserContext());
const expectedOf = m => cfg.expected[m];
const T1 = cfg.tenant;

// --- logging in -------------------------------------------------------------

await step('log in', async () => {
	await page.goto(cfg.console, { waitUntil: 'load' });
	eq('the browser runs in ' + cfg.browser_tz, cfg.browser_tz,
		await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone));
	await page.waitForSelector(sel('login-form'), { visible: true });
	check('the console opens on the login form', true);
	eq('no cookie before logging in', '', await page.evaluate(() => document.cookie));

	await page.type(sel('login-token'), 'not-the-token');
	await page.click(sel('login-submit'));
	await page.waitForSelector(sel('login-error'), { visible: true });
	check('a wrong token is refused on the form, with a message',
		(await text(page, sel('login-error'))).length > 0, await text(page, sel('login-error')));

	await login(page, cfg.admin_token);
	eq('logged in with the admin token: the role shown', 'admin', await text(page, sel('role')));
	eq('...and the actor', ACTOR, await text(page, sel('actor')));
	const cookies = await page.cookies();
	const c = cookies.find(x => x.name === 'tg_console');
	check('the session cookie tg_console is set', !!c, JSON.stringify(cookies.map(x => x.name)));
	if (c) {
		eq('...HttpOnly', true, c.httpOnly);
		eq('...SameSite=Strict', 'Strict', c.sameSite);
		eq('...Path=/', '/', c.path);
	}
	const dc = await page.evaluate(() => document.cookie);
	check('document.cookie does not show the session cookie', !dc.includes('tg_console'), `document.cookie: ${dc}`);
});

// --- the overview -------------------------------------------------------------

// Reads the overview's tenant rows and total row.
async function readOverview() {
	return page.evaluate(() => {
		const money = cell => [...cell.querySelectorAll('span.money')].map(s => ({
			value: s.dataset.value, currency: s.dataset.currency, text: s.textContent.trim(),
		}));
		const cells = row => {
			const c = id => row.querySelector(`[data-testid="${id}"]`);
			const o = {};
			for (const k of ['requests', 'refused', 'tokens'])
				o[k] = c('cell-' + k) ? Number(c('cell-' + k).dataset.value) : null;
			for (const k of ['list', 'free', 'discount', 'billed', 'billed-tenant'])
				o[k] = c('cell-' + k) ? money(c('cell-' + k)) : null;
			return o;
		};
		const rows = {};
		for (const r of document.querySelectorAll('[data-testid="tenant-row"]')) {
			const a = r.querySelector('td a');
			const sub = r.querySelector('td .sub');
			rows[r.dataset.tenant] = {
				...cells(r), label: a ? a.textContent : null, sub: sub ? sub.textContent : null,
				visible: !!(a && a.getBoundingClientRect().width > 0),
			};
		}
		const total = document.querySelector('[data-testid="total-row"]');
		return { rows, total: total ? cells(total) : null };
	});
}

// The overview of month m shows what the ledger says.
async function checkOverview(m) {
	const want = expectedOf(m);
	await go(page, '#/?month=' + m, overviewReady, m);
	const got = await readOverview();
	eq(`overview ${m}: one row per tenant`, Object.keys(want).sort(), Object.keys(got.rows).sort());
	let sumReq = 0, sumTok = 0;
	for (const [name, w] of Object.entries(want)) {
		const g = got.rows[name];
		if (!g)
			continue;
		sumReq += w.requests;
		sumTok += w.tokens;
		const counts = g2 => ({ requests: g2.requests, refused: g2.refused, tokens: g2.tokens });
		eq(`overview ${m}, ${name}: requests, refused and tokens are the ledger's`, counts(w), counts(g));
		const exact = [];
		const shown = [];
		for (const k of ['list', 'free', 'discount', 'billed']) {
			exact.push(...w.spend.map(x => `${k} ${x[k]} ${x.currency}`));
			shown.push(...w.spend.map(x => `${k} ${cents(x[k])} ${x.currency}`));
		}
		exact.push(`billed-tenant ${w.billed_tenant} ${w.currency}`);
		shown.push(`billed-tenant ${cents(w.billed_tenant)} ${w.currency}`);
		const gotExact = [], gotShown = [];
		for (const k of ['list', 'free', 'discount', 'billed', 'billed-tenant']) {
			gotExact.push(...(g[k] || []).map(x => `${k} ${x.value} ${x.currency}`));
			gotShown.push(...(g[k] || []).map(x => `${k} ${x.text}`));
		}
		eq(`overview ${m}, ${name}: list, free, discount, billed amounts per currency and billed in ${w.currency} are the ledger's exact strings`,
			exact, gotExact);
		eq(`overview ${m}, ${name}: ...shown to the cent, rounded half up, with their currency`, shown, gotShown);
		eq(`overview ${m}, ${name}: the name shown`, w.display_name || name, g.label);
		check(`overview ${m}, ${name}: the name is visible`, g.visible);
	}
	if (got.total) {
		eq(`overview ${m}: the total row's requests`, sumReq, got.total.requests);
		eq(`overview ${m}: the total row's tokens`, sumTok, got.total.tokens);
	} else {
		check(`overview ${m}: a total row`, false);
	}
	return got;
}

// The fonts Chromium drew an element's text with.
async function fontsOf(p, selector) {
	const cdp = await p.createCDPSession();
	try {
		await cdp.send('DOM.enable');
		await cdp.send('CSS.enable');
		const { root } = await cdp.send('DOM.getDocument', { depth: -1 });
		const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector });
		const { fonts } = await cdp.send('CSS.getPlatformFontsForNode', { nodeId });
		return fonts;
	} finally {
		await cdp.detach();
	}
}

await step('overview, past month', async () => {
	const m = cfg.months.past;
	const got = await checkOverview(m);
	const cn = got.rows[T1] || {};
	eq(`overview: the Chinese display name is the text of ${T1}'s row`, cfg.cn_name, cn.label);
	eq(`overview: ${T1}'s identifier under it`, T1, cn.sub);
	eq('overview: the English display name', cfg.en_name, (got.rows.acme || {}).label);
	// Drawn with glyphs of a CJK font, not as missing-glyph boxes.
	const fonts = await fontsOf(page, `tr[data-tenant="${T1}"] td a`);
	const cjk = fonts.filter(f => /CJK|Hei|Song|Ming|Han|WenQuanYi|Droid Sans Fallback|Noto Sans SC|Noto Serif SC/i.test(f.familyName));
	const glyphs = cjk.reduce((a, f) => a + f.glyphCount, 0);
	check(`overview: ${cfg.cn_name} is drawn with a CJK font (fonts-noto-cjk)`, glyphs >= [...cfg.cn_name].length,
		`fonts used: ${JSON.stringify(fonts)}`);
	await page.waitForSelector(sel('daily-chart') + ' svg rect.bar');
	const bars = await page.$$eval(sel('daily-chart') + ' rect.bar', r => r.filter(x => Number(x.getAttribute('height')) > 0).length);
	check(`overview ${m}: the daily chart has a bar for most days`, bars >= 20, `bars: ${bars}`);
	await shot('overview');
});

await step('overview, current month', async () => {
	await checkOverview(cfg.months.current);
	await shot('overview-current');
});

// --- the tenant page: a key, a quota, a revocation ------------------------------

// The tenant's current month by its own calendar.
const tenantMonth = wallClock(Date.now(), cfg.tenant_tz).slice(0, 7);

await step('tenant page', async () => {
	await go(page, '#/?month=' + tenantMonth, overviewReady, tenantMonth);
	await page.click(`tr[data-tenant="${T1}"] td a`);
	await waitFor(page, tenantReady, T1, tenantMonth);
	eq('tenant page: the title is the Chinese display name', cfg.cn_name, await text(page, sel('tenant-title')));
	const sub = await page.$eval('.head .sub', e => e.textContent);
	check('tenant page: its identifier, currency and zone under the title',
		sub.includes(T1) && sub.includes('CNY') && sub.includes(cfg.tenant_tz), sub);
	// Times: the API's, in the tenant's zone, not converted to the
	// browser's (America/Los_Angeles).
	const times = await page.$$eval(sel('section-keys') + ' time', ts => ts.map(t => ({ dt: t.getAttribute('datetime'), text: t.textContent })));
	check('tenant page: the keys have times', times.length >= 2, JSON.stringify(times));
	for (const t of times) {
		const want = wallClock(Date.parse(t.dt), cfg.tenant_tz) + ' ' + cfg.tenant_tz_offset;
		check(`tenant page: key time ${t.dt} is in the tenant's zone`, t.dt.endsWith(cfg.tenant_tz_offset), JSON.stringify(t));
		eq(`tenant page: key time ${t.dt} shown as the tenant's wall clock`, want, t.text);
	}
	check('tenant page: the admin sees Issue key', !!(await page.$(sel('issue-key'))));
});

await step('issue a key', async () => {
	await page.click(sel('issue-key'));
	const summary = await confirmDialog(page, { 'field-name': 'console-e2e' });
	check('issue key: the dialog says what it does', summary.includes(T1) && summary.includes('console-e2e'), summary);
	await dialogDone(page, 'issued-key');
	await page.waitForSelector(sel('issued-key'), { visible: true });
	const key = await text(page, sel('issued-key'));
	check('issue key: the new key is shown once', /^tg-[A-Za-z0-9_-]{20,}$/.test(key), key);
	await shot('tenant-key-issued', page, false);
	await page.click(sel('dialog-done'));
	await dialogDone(page);
	await waitFor(page, k => [...document.querySelectorAll('[data-testid="key-row"]')].some(r => k.startsWith(r.dataset.prefix)), key);
	const row = await page.$$eval(sel('key-row'), (rs, k) => {
		const r = rs.find(x => k.startsWith(x.dataset.prefix));
		return { id: Number(r.dataset.id), prefix: r.dataset.prefix, text: r.textContent };
	}, key);
	check('issue key: its row is listed, named, active', row.text.includes('console-e2e') && row.text.includes('active'), row.text);
	check('issue key: the page shows only the prefix, not the key', !(await page.evaluate(k => document.body.innerText.includes(k), key)));
	result.key_id = row.id;
	result.key_prefix = row.prefix;
	result.key = key;

	const r = await chatUntil(key, cfg.tenant_model, 200, 15000);
	eq('the key issued in the console is served by the gateway', 200, r.status);
});

await step('set a quota', async () => {
	if (!result.key)
		throw new Error('no key issued');
	await page.click(sel('set-quota'));
	const summary = await confirmDialog(page, {
		'field-key': result.key_prefix, 'field-period': 'month', 'field-tokens': '200',
	});
	check('set quota: the dialog says a hard quota of 200 tokens a month on the key',
		summary.includes('hard') && summary.includes('200 tokens') && summary.includes(result.key_prefix), summary);
	await dialogDone(page);
	await page.waitForSelector(sel('quota-row'));
	const q = await page.$$eval(sel('quota-row'), rs => rs.map(r => ({
		id: Number(r.dataset.id), text: r.textContent,
		since: (r.querySelector('time') || {}).textContent || null,
	})));
	eq('set quota: one quota row', 1, q.length);
	const row = q[0] || {};
	result.quota_id = row.id;
	check('set quota: the row shows the key, hard, 200 tokens', row.text.includes(result.key_prefix) &&
		row.text.includes('hard') && row.text.includes('of 200 tokens'), row.text);
	eq('set quota: its period starts at midnight of the month in the tenant\'s zone',
		`${tenantMonth}-01 00:00 ${cfg.tenant_tz_offset}`, row.since);

	// Requests until the quota refuses.
	const t0 = Date.now();
	let r, served = 0;
	for (let i = 0; i < 60 && Date.now() - t0 < 20000; i++) {
		r = await chat(result.key, cfg.tenant_model);
		if (r.status !== 200)
			break;
		served++;
	}
	eq(`set quota: the gateway refuses the key with 429 (after ${served} served)`, 429, r && r.status);
	eq('set quota: ...with the quota\'s error', 'insufficient_quota', r && r.body && r.body.error && r.body.error.code);
	check('set quota: ...naming the quota', r && r.body && r.body.error &&
		new RegExp(`(^|[^0-9])${result.quota_id}([^0-9]|$)`).test(r.body.error.message || ''), JSON.stringify(r && r.body));
	result.refused_request_id = r && r.rid;

	// The refusal on the page once the ledger has it.
	const t1 = Date.now();
	let refusal = null;
	while (Date.now() - t1 < 15000) {
		await page.reload({ waitUntil: 'load' });
		await waitFor(page, tenantReady, T1, tenantMonth);
		refusal = await page.$(sel('refusal-row') + '[data-reason="quota"]');
		if (refusal)
			break;
		await sleep(500);
	}
	check('tenant page: the quota refusal is listed', !!refusal);
	await shot('tenant');
});

await step('revoke the key', async () => {
	if (!result.key_id)
		throw new Error('no key issued');
	await page.click(`${sel('key-row')}[data-id="${result.key_id}"] ${sel('revoke-key')}`);
	const summary = await confirmDialog(page);
	check('revoke key: the dialog names the key', summary.includes(result.key_prefix), summary);
	await dialogDone(page);
	await waitFor(page, id => {
		const r = document.querySelector(`[data-testid="key-row"][data-id="${id}"]`);
		return r && r.textContent.includes('revoked') && !r.querySelector('[data-testid="revoke-key"]');
	}, result.key_id);
	check('revoke key: the row says revoked, without a Revoke button', true);
	const r = await chatUntil(result.key, cfg.tenant_model, 401, 10000);
	eq(`revoke key: the gateway refuses the key with 401 within 10 s (after ${r.after} ms)`, 401, r.status);
	await shot('tenant-revoked');
});

// --- the bill ---------------------------------------------------------------------

await step('download the CSV bill', async () => {
	const m = cfg.months.past;
	await go(page, `#/tenant/${encodeURIComponent(T1)}?month=${m}`, tenantReady, T1, m);
	const total = await page.$eval(sel('bill-total') + ' span.money', e => e.dataset.value);
	eq(`bill ${m}: the total is tollctl's`, cfg.past_bill_total, total);
	fs.mkdirSync(cfg.downloads, { recursive: true });
	const cdp = await browser.target().createCDPSession();
	await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: cfg.downloads, eventsEnabled: true });
	let name = null;
	cdp.on('Browser.downloadWillBegin', e => {
		name = e.suggestedFilename;
	});
	const done = new Promise((resolve, reject) => {
		const t = setTimeout(() => reject(new Error('no download completed')), T);
		cdp.on('Browser.downloadProgress', e => {
			if (e.state === 'completed' || e.state === 'canceled') {
				clearTimeout(t);
				resolve(e.state);
			}
		});
	});
	await page.click(sel('bill-csv'));
	eq('bill: the CSV download completes', 'completed', await done);
	result.csv_file = path.join(cfg.downloads, name || '');
	check('bill: the CSV file is saved', name && fs.existsSync(result.csv_file), `name: ${name}`);
	await shot('tenant-bill');
	await cdp.detach();
});

// --- live -------------------------------------------------------------------------

await step('live page', async () => {
	await page.click(sel('nav-live'));
	await page.waitForSelector(sel('live-rps'));
	const total = async () => Number((await text(page, sel('live-requests-total'))).replace(/[^0-9]/g, ''));
	await page.evaluate(() => {
		window.__notReloaded = true;
	});
	const before = await total();
	// Traffic while the page is open.
	for (let i = 0; i < 12; i += 3)
		await Promise.all([0, 1, 2].map(() => chat(cfg.acme_key, cfg.acme_model)));
	let after = before;
	const t0 = Date.now();
	while (Date.now() - t0 < 12000 && after < before + 12) {
		await sleep(250);
		after = await total();
	}
	check(`live: the request count goes up by itself (${before} → ${after})`, after >= before + 12);
	eq('live: without reloading the page', true, await page.evaluate(() => window.__notReloaded === true));
	const rps = Number((await text(page, sel('live-rps'))).replace(/[^0-9.]/g, ''));
	check(`live: requests/s after traffic (${rps})`, rps > 0);
	const row = await page.waitForSelector(`${sel('live-provider-row')}[data-provider="openai"]`);
	// The cells under the headings p50 and p99.
	const q = await row.evaluate(r => {
		const heads = [...r.closest('table').querySelectorAll('thead th')].map(th => th.textContent.trim());
		const cells = [...r.children].map(td => td.textContent.trim());
		return { heads, cells, p50: cells[heads.indexOf('p50')], p99: cells[heads.indexOf('p99')] };
	});
	check('live: openai has a p50 and a p99', /^\d[\d,]* ms$/.test(q.p50 || '') && /^\d[\d,]* ms$/.test(q.p99 || ''), JSON.stringify(q));
	await shot('live');
});

// --- audit ------------------------------------------------------------------------

await step('audit page', async () => {
	await page.click(sel('nav-audit'));
	await page.waitForSelector(sel('audit-row'));
	const rows = await page.$$eval(sel('audit-row'), rs => rs.map(r => [...r.children].map(c => c.textContent.trim())));
	const has = (action, object) => rows.some(c => c[1] === 'console:admin@127.0.0.1' && c[2] === action && c[3] === object);
	check(`audit: the key issue by ${ACTOR}`, has('key issue', `api_keys #${result.key_id}`), JSON.stringify(rows.slice(0, 6)));
	check(`audit: the quota set by ${ACTOR}`, has('quota set', `quotas #${result.quota_id}`), JSON.stringify(rows.slice(0, 6)));
	check(`audit: the key revoke by ${ACTOR}`, has('key revoke', `api_keys #${result.key_id}`), JSON.stringify(rows.slice(0, 6)));
	await shot('audit');
	// The rows shown now are marked, to wait for the filtered ones.
	await page.$eval(sel('audit'), t => {
		t.dataset.old = '1';
	});
	await page.select(sel('audit-tenant'), T1);
	await waitFor(page, () => {
		const t = document.querySelector('[data-testid="audit"]');
		return t && !t.dataset.old && t.querySelector('[data-testid="audit-row"]') &&
			!document.getElementById('view').hasAttribute('aria-busy');
	});
	const tenants = await page.$$eval(sel('audit-row'), rs => [...new Set(rs.map(r => r.children[4].textContent.trim()))]);
	eq(`audit: filtered to ${T1}, only its rows`, [T1], tenants);
});

// --- read-only --------------------------------------------------------------------

await step('read-only', async () => {
	const ctx = await browser.createBrowserContext();
	const ro = await newPage(ctx);
	await login(ro, cfg.readonly_token);
	eq('read-only: the role shown', 'read-only', await text(ro, sel('role')));
	await waitFor(ro, overviewReady, await ro.$eval(sel('month'), e => e.value));
	check('read-only: the overview is shown', true);
	await go(ro, `#/tenant/${encodeURIComponent(T1)}?month=${tenantMonth}`, tenantReady, T1, tenantMonth);
	const actions = ['issue-key', 'set-quota', 'set-limit', 'add-promo', 'revoke-key', 'clear-quota', 'clear-limit', 'end-promo'];
	const shown = await ro.evaluate(ids => ids.filter(id => document.querySelector(`[data-testid="${id}"]`)), actions);
	eq('read-only: no action button on the tenant page', [], shown);
	await shot('tenant-readonly', ro);
	const r = await ro.evaluate(async t => {
		const s = await (await fetch('api/session')).json();
		const res = await fetch('api/keys', {
			method: 'POST',
			headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf },
			body: JSON.stringify({ tenant: t, name: 'from-read-only' }),
		});
		return { role: s.role, status: res.status, body: await res.json().catch(() => null) };
	}, T1);
	eq('read-only: /api/session says readonly', 'readonly', r.role);
	eq('read-only: POST /api/keys with its cookie and CSRF token answers 403', 403, r.status);
	eq('read-only: ...read_only', 'read_only', r.body && r.body.error && r.body.error.code);
	await ro.click(sel('logout'));
	await ro.waitForSelector(sel('login-form'), { visible: true });
	eq('read-only: after logging out the API answers 401', 401, await ro.evaluate(async () => (await fetch('api/session')).status));
	await ctx.close();
});

eq('the pages loaded nothing from anywhere else', [], foreign);
eq('the browser refused nothing under the Content-Security-Policy', [], refused);

await browser.close();
clearTimeout(watchdog);
delete result.key;
emit({ done: true, result });
