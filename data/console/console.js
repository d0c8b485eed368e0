/*
 * console.js - the tollgate console: hash routes over the JSON API of
 * doc/console.md, tables and inline SVG charts, and the admin's actions
 * behind a confirmation dialog. Plain ES2020, no build step, nothing
 * loaded from elsewhere; data goes into the page as text only.
 *
 * Money stays an exact decimal string (BigInt where it is added or
 * compared); times are shown as the API gives them, never converted.
 *
 * data-testid attributes, for browser tests:
 *   top bar   nav-overview nav-live nav-audit role actor logout
 *   login     login-form login-token login-submit login-error
 *   any page  page-title page-error month month-prev month-next
 *   overview  tenant-row (data-tenant=NAME), total-row; in each, cells
 *             cell-requests cell-refused cell-tokens cell-list cell-free
 *             cell-discount cell-billed cell-billed-tenant; daily-chart
 *             metric-tokens metric-requests top-models top-providers
 *             estimated-share
 *   money     span.money, data-value = the API's exact string,
 *             data-currency; class approx when the text is rounded
 *   tenant    tenant-title section-usage section-quotas section-limits
 *             section-refusals section-promotions section-keys
 *             section-bill; rows usage-model-row (data-model), quota-row
 *             (data-id), limit-row (data-key, "" = whole tenant),
 *             refusal-row (data-reason), promo-row (data-name), key-row
 *             (data-id, data-prefix)
 *   actions   issue-key set-quota set-limit add-promo (section heads),
 *             revoke-key clear-quota clear-limit end-promo (rows); for
 *             an admin only
 *   dialog    dialog, field-NAME per input (name models expires key model
 *             period tokens spend soft rpm tpm concurrency kind amount
 *             scope provider from until at), dialog-summary dialog-error
 *             dialog-confirm dialog-cancel; a new key: issued-key
 *             copy-key dialog-done
 *   bill      bill-csv bill-json bill-html bill-status bill-total
 *             bill-line bill-subtotal bill-error
 *   live      live-rps live-in-flight live-streams live-requests-total
 *             live-uptime live-db live-journal live-sparkline
 *             live-provider-row (data-provider) live-error
 *   audit     audit-tenant (select), audit-row (data-id), audit-diff
 */
'use strict';

(() => {
	const view = document.getElementById('view');
	const nav = document.getElementById('nav');
	const who = document.getElementById('who');
	/* Currencies whose minor unit is not the cent. */
	const MINOR = { JPY: 0, KRW: 0, VND: 0, CLP: 0, ISK: 0, BHD: 3, JOD: 3, KWD: 3, OMR: 3, TND: 3 };
	const PERIOD = { day: 'per day', week: 'per week', month: 'per month', total: 'in total' };

	let session = null; /* api/session: role, actor, csrf */
	let gen = 0; /* bumped by each route: a load of an older one is dropped */
	let liveTimer = 0;
	let shownPath = null; /* the route on screen, kept while it reloads */
	let chartMetric = 'tokens';
	const samples = []; /* live requests/s as {t: ms, v}, 10 minutes */

	/* An error of the API, with its HTTP status (0: no answer). */
	class ApiError extends Error {
		constructor(status, message) {
			super(message);
			this.status = status;
		}
	}

	/* Sets attributes: null and false are skipped, on* functions become
	 * listeners, value and checked are set as properties. */
	function attrs(e, a) {
		for (const [k, v] of Object.entries(a || {})) {
			if (v == null || v === false)
				continue;
			if (k.startsWith('on'))
				e.addEventListener(k.slice(2), v);
			else if (k === 'value' || k === 'checked')
				e[k] = v;
			else
				e.setAttribute(k, v === true ? '' : v);
		}
	}

	/* Appends nodes, text, numbers and arrays of them; skips null and
	 * false. */
	function add(e, kids) {
		for (const k of kids) {
			if (Array.isArray(k))
				add(e, k);
			else if (k != null && k !== false)
				e.append(k instanceof Node ? k : String(k));
		}
		return e;
	}

	/* An HTML element: h('td.n', {title: …}, child, …). */
	function h(tag, a, ...kids) {
		const [name, ...cls] = tag.split('.');
		const e = document.createElement(name);
		if (cls.length)
			e.className = cls.join(' ');
		attrs(e, a);
		return add(e, kids);
	}

	/* An SVG element. */
	function s(tag, a, ...kids) {
		const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
		attrs(e, a);
		return add(e, kids);
	}

	/* A button. */
	function btn(text, testid, onclick, cls = '') {
		return h('button.btn' + cls, { type: 'button', 'data-testid': testid, onclick }, text);
	}

	/* A grey dash, or grey text, for what is not there. */
	function none(text = '–') {
		return h('span.muted', null, text);
	}

	/* An integer (number or digit string) with thousands separators. */
	function fmtInt(n) {
		return n == null ? '–' : String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
	}

	/* A count in a few characters for chart axes: 1.5k, 20M, 3G. */
	function fmtShort(n) {
		for (const [v, u] of [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']])
			if (n >= v)
				return +(n / v).toFixed(1) + u;
		return String(n);
	}

	/* Bytes as B, KiB, MiB or GiB. */
	function fmtBytes(n) {
		let u = 0;
		for (; n >= 1024 && u < 3; u++)
			n /= 1024;
		return (u ? n.toFixed(1) : n) + ' ' + ['B', 'KiB', 'MiB', 'GiB'][u];
	}

	/* Seconds as "2 d 3 h", "3 h 4 min", "4 min" or "42 s". */
	function fmtDuration(sec) {
		const d = Math.floor(sec / 86400), hr = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60);
		return d ? `${d} d ${hr} h` : hr ? `${hr} h ${m} min` : m ? `${m} min` : `${sec} s`;
	}

	/* "2026-12-04T18:00:00+08:00" as "2026-12-04 18:00 +08:00", by string
	 * surgery: the API already gives the tenant's zone. */
	function fmtTime(t) {
		const m = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d)(?::\d\d(?:\.\d+)?)?\s*(Z|[+-]\d\d(?::?\d\d)?)?$/i.exec(t || '');
		if (!m)
			return t || '–';
		return `${m[1]} ${m[2]}` + (m[3] ? (/z/i.test(m[3]) ? ' UTC' : ' ' + m[3]) : '');
	}

	/* A <time> showing fmtTime(t), the API's text as its title. */
	function time(t) {
		return t ? h('time', { datetime: t, title: t }, fmtTime(t)) : none();
	}

	/* A decimal string's sign, integer and fraction digits, or null. */
	function decParts(str) {
		const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(String(str == null ? '' : str).trim());
		if (!m || (m[2] === '' && !m[3]))
			return null;
		return { neg: m[1] === '-', int: m[2].replace(/^0+(?=\d)/, '') || '0', frac: m[3] || '' };
	}

	/* A decimal string as a BigInt in units of 10^-scale (callers pick a
	 * scale that holds every digit). */
	function scaled(str, scale) {
		const p = decParts(str);
		if (!p)
			return 0n;
		const v = BigInt(p.int + p.frac.padEnd(scale, '0').slice(0, scale));
		return p.neg ? -v : v;
	}

	/* A BigInt in units of 10^-scale as a decimal string. */
	function unscaled(v, scale) {
		const d = (v < 0n ? -v : v).toString().padStart(scale + 1, '0'), cut = d.length - scale;
		return (v < 0n ? '-' : '') + d.slice(0, cut) + (scale ? '.' + d.slice(cut) : '');
	}

	/* The number of fraction digits that holds every one of strs. */
	function scaleOf(strs) {
		return Math.max(0, ...strs.map(x => (decParts(x) || { frac: '' }).frac.length));
	}

	/* The exact sum of decimal strings. */
	function decSum(strs) {
		const sc = scaleOf(strs);
		return unscaled(strs.reduce((a, x) => a + scaled(x, sc), 0n), sc);
	}

	/* part / whole of two decimal strings in [0, 1], on scaled BigInts
	 * (to 1e-4, for the width of a bar). */
	function decRatio(part, whole) {
		const sc = scaleOf([part, whole]), w = scaled(whole, sc);
		if (w <= 0n)
			return 1;
		const r = scaled(part, sc) * 10000n / w;
		return Number(r < 0n ? 0n : r > 10000n ? 10000n : r) / 10000;
	}

	/* A decimal string for display: thousands grouped, at least min and at
	 * most max decimals, digits past max rounded half up (away from zero)
	 * on the digits themselves; exact tells whether nothing but zeros was
	 * dropped. */
	function fmtDec(str, min, max) {
		const p = decParts(str);
		if (!p)
			return { text: str == null ? '–' : String(str), exact: true };
		let int = p.int, frac = p.frac.replace(/0+$/, '');
		const exact = frac.length <= max;
		if (!exact) {
			const d = (BigInt(int + frac.slice(0, max)) + (frac[max] >= '5' ? 1n : 0n)).toString().padStart(max + 1, '0');
			int = d.slice(0, d.length - max);
			frac = d.slice(d.length - max);
		}
		frac = frac.padEnd(min, '0');
		const neg = p.neg && /[1-9]/.test(int + frac);
		return { text: (neg ? '-' : '') + fmtInt(int) + (frac ? '.' + frac : ''), exact };
	}

	/* A money amount to the currency's minor unit (marked approx when
	 * rounded), the exact value in its title and data-value. */
	function money(str, cur, withCode) {
		if (str == null)
			return none();
		const minor = cur in MINOR ? MINOR[cur] : 2, f = fmtDec(str, minor, minor), code = cur ? ' ' + cur : '';
		return h('span.money' + (f.exact ? '' : '.approx'),
			{ 'data-value': str, 'data-currency': cur, title: fmtDec(str, 0, Infinity).text + code },
			f.text + (withCode ? code : ''));
	}

	/* A number cell holding a money amount. */
	function tdMoney(str, cur, withCode) {
		return h('td.n', null, money(str, cur, withCode));
	}

	/* Amounts of one member in several currencies, one a line. */
	function monies(list, member) {
		const items = (list || []).filter(x => x[member] != null);
		return items.length ? items.map(x => h('div', null, money(x[member], x.currency, true))) : none();
	}

	/* The sums of one member per currency over lists of {currency,
	 * member}, as such a list in currency order. */
	function sumByCurrency(lists, member) {
		const by = new Map();
		for (const x of lists.flat())
			if (x && x.currency && x[member] != null)
				by.set(x.currency, (by.get(x.currency) || []).concat(x[member]));
		return [...by.keys()].sort().map(c => ({ currency: c, [member]: decSum(by.get(c)) }));
	}

	/* part / whole as a percentage with two decimals, rounded half up in
	 * integers; "<0.01%" for a sliver. */
	function pct(part, whole) {
		if (!whole)
			return '–';
		const bp = (BigInt(Math.trunc(part)) * 20000n / BigInt(Math.trunc(whole)) + 1n) / 2n;
		return bp === 0n && part > 0 ? '<0.01%' : unscaled(bp, 2) + '%';
	}

	/* The sum of one member over a list. */
	function total(list, member) {
		return list.reduce((a, x) => a + (x[member] || 0), 0);
	}

	/* A month "YYYY-MM" moved by some months. */
	function shiftMonth(month, by) {
		const [y, m] = month.split('-').map(Number), n = y * 12 + m - 1 + by;
		return `${Math.floor(n / 12)}-${String(n % 12 + 1).padStart(2, '0')}`;
	}

	/* "?month=M" when M is a month, else nothing. */
	function monthQuery(m) {
		return /^\d{4}-\d\d$/.test(m || '') ? '?month=' + m : '';
	}

	/* The route of a tenant's page, for a month. */
	function tenantHref(name, month) {
		return '#/tenant/' + encodeURIComponent(name) + monthQuery(month);
	}

	/* Calls the API (a POST when body is given, with the CSRF token) and
	 * returns its JSON. A 401, but for a login, shows the login form. */
	async function api(path, body) {
		const opt = { credentials: 'same-origin', headers: { Accept: 'application/json' } };
		if (body !== undefined) {
			opt.method = 'POST';
			opt.headers['Content-Type'] = 'application/json';
			if (session && session.csrf)
				opt.headers['X-CSRF-Token'] = session.csrf;
			opt.body = JSON.stringify(body);
		}
		let res, data = null;
		try {
			res = await fetch(path, opt);
		} catch (e) {
			throw new ApiError(0, `The gateway did not answer (${e.message}).`);
		}
		try {
			data = await res.json();
		} catch (e) {
			/* not JSON: the status says what happened */
		}
		if (res.status === 401 && path !== 'api/login')
			showLogin(session ? 'Your session has ended. Log in again.' : '');
		if (!res.ok)
			throw new ApiError(res.status, (data && data.error && data.error.message) || `${res.status} ${res.statusText}`);
		return data;
	}

	/* A small coloured label. */
	function badge(text, kind) {
		return h('span.badge' + (kind ? '.' + kind : ''), null, text);
	}

	/* The badge of a key's or a promotion's status. */
	function statusBadge(st) {
		return badge(st || '–', { active: 'ok', upcoming: 'info', revoked: 'bad' }[st] || 'muted');
	}

	/* A table; cols are headings, [heading] for numbers, or false (left
	 * out). Without rows, a line saying so. */
	function table(cols, rows, { empty = 'None.', testid, foot } = {}) {
		if (!rows.length)
			return h('p.empty', { 'data-testid': testid }, empty);
		const head = cols.filter(c => c !== false).map(c => (Array.isArray(c) ? h('th.n', { scope: 'col' }, c[0]) : h('th', { scope: 'col' }, c)));
		return h('div.tw', null, h('table', { 'data-testid': testid },
			h('thead', null, h('tr', null, head)), h('tbody', null, rows), foot && h('tfoot', null, foot)));
	}

	/* A table cell. */
	function td(...kids) {
		return h('td', null, kids);
	}

	/* A number cell: a count grouped, with the count in data-value. */
	function tdn(v, testid, title) {
		const count = typeof v === 'number';
		return h('td.n', { 'data-testid': testid, 'data-value': count ? v : null, title }, count ? fmtInt(v) : v == null ? '–' : v);
	}

	/* A panel with a heading, actions beside it, and a body. */
	function section(title, testid, actions, ...body) {
		return h('section.panel', { 'data-testid': testid },
			h('div.ph', null, h('h2', null, title), actions && h('div.acts', null, actions)), body);
	}

	/* The page's heading, a line under it, controls on the right. */
	function pageHead(title, sub, right, testid) {
		return h('div.head', null,
			h('div', null, h('h1', { 'data-testid': 'page-title' }, h('span', { 'data-testid': testid }, title)), sub && h('p.sub', null, sub)),
			right);
	}

	/* A figure with a label and a line under it. */
	function card(label, value, sub, testid) {
		return h('div.card', null, h('div.cl', null, label), h('div.cv', { 'data-testid': testid }, value), sub && h('div.cs', null, sub));
	}

	/* Previous month, the month input, next month; each goes to
	 * base?month=M. */
	function monthPicker(month, base) {
		const link = (by, testid, label, text) => h('a.btn.icon', { href: base + '?month=' + shiftMonth(month, by), 'data-testid': testid, 'aria-label': label, title: label }, text);
		return month && h('div.month', null, link(-1, 'month-prev', 'Previous month', '‹'),
			h('input', {
				type: 'month', value: month, 'aria-label': 'Month', 'data-testid': 'month',
				onchange: e => {
					if (/^\d{4}-\d\d$/.test(e.target.value))
						location.hash = base + '?month=' + e.target.value;
				},
			}),
			link(1, 'month-next', 'Next month', '›'));
	}

	/* A bar of two parts, fractions of the whole: used, then reserved. */
	function meter(used, reserved, label) {
		const u = Math.min(1, Math.max(0, used)), r = Math.min(1 - u, Math.max(0, reserved));
		const part = (cls, f) => {
			const e = h('span.' + cls);
			e.style.width = (f * 100).toFixed(2) + '%';
			return e;
		};
		return h('div.meter' + (used + reserved >= 1 ? '.full' : ''), { role: 'img', 'aria-label': label, title: label }, part('used', u), part('res', r));
	}

	/* A round step (1, 2 or 5 × 10^k, at least 1) not below x. */
	function niceStep(x) {
		if (x <= 1)
			return 1;
		const mag = 10 ** Math.floor(Math.log10(x));
		return [1, 2, 5, 10].map(f => f * mag).find(v => v >= x);
	}

	/* An SVG bar chart of [day, value] points: a y axis in round steps,
	 * day numbers under the bars, each bar's value as its tooltip. */
	function bars(points, unit) {
		const W = 760, H = 210, L = 50, R = 6, T = 10, ph = H - T - 24;
		const max = Math.max(0, ...points.map(p => p[1]));
		const step = niceStep(max / 4), ticks = Math.max(1, Math.ceil(max / step)), bw = (W - L - R) / Math.max(points.length, 1);
		const parts = [];
		for (let i = 0; i <= ticks; i++) {
			const y = T + ph - i * ph / ticks;
			parts.push(s('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }), s('text', { x: L - 6, y: y + 3.5, 'text-anchor': 'end' }, fmtShort(step * i)));
		}
		points.forEach(([day, v], i) => {
			const bh = v > 0 ? Math.max(1, v / (step * ticks) * ph) : 0, x = L + i * bw;
			parts.push(s('g', null, s('title', null, `${day}: ${fmtInt(v)} ${unit}`), s('rect', { class: 'hit', x, y: T, width: bw, height: ph }),
				s('rect', { class: 'bar', x: x + bw * 0.15, y: T + ph - bh, width: bw * 0.7, height: bh })));
			if (i === 0 || (i + 1) % 5 === 0)
				parts.push(s('text', { x: x + bw / 2, y: H - 7, 'text-anchor': 'middle' }, +day.slice(8) || day));
		});
		parts.push(s('line', { class: 'axis', x1: L, x2: W - R, y1: T + ph, y2: T + ph }));
		return s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${unit} per day` }, parts);
	}

	/* The month's daily bars from rows {day, requests, tokens} (rows of a
	 * day add up), with a switch between tokens and requests. */
	function dailyChart(month, rows) {
		const per = new Map(), metrics = ['tokens', 'requests'];
		for (const r of rows) {
			const p = per.get(r.day) || { requests: 0, tokens: 0 };
			p.requests += r.requests || 0;
			p.tokens += r.tokens || 0;
			per.set(r.day, p);
		}
		let days = [...per.keys()].sort();
		if (/^\d{4}-\d\d$/.test(month || '')) {
			const n = new Date(Date.UTC(+month.slice(0, 4), +month.slice(5), 0)).getUTCDate();
			days = Array.from({ length: n }, (_, i) => `${month}-${String(i + 1).padStart(2, '0')}`);
		}
		const box = h('div.chart');
		const draw = () => {
			box.replaceChildren(bars(days.map(d => [d, (per.get(d) || {})[chartMetric] || 0]), chartMetric));
			seg.forEach((b, i) => b.setAttribute('aria-pressed', metrics[i] === chartMetric));
		};
		const seg = metrics.map(m => btn(m[0].toUpperCase() + m.slice(1), 'metric-' + m, () => {
			chartMetric = m;
			draw();
		}, '.seg'));
		draw();
		return h('figure.daily', { 'data-testid': 'daily-chart' },
			h('figcaption', null, 'Per day', h('span.segs', { role: 'group', 'aria-label': 'Chart shows' }, seg)), box);
	}

	/* Shows a page's content, if it is still the page asked for. */
	function show(g, ...nodes) {
		if (g !== gen)
			return false;
		view.replaceChildren();
		add(view, nodes);
		view.removeAttribute('aria-busy');
		return true;
	}

	/* An error in place of a page, with a button to try again. */
	function failed(message, retry) {
		return h('div.panel.failed', { 'data-testid': 'page-error', role: 'alert' }, h('p', null, message), btn('Try again', null, retry));
	}

	/* Shows the page the location's hash names. */
	function route() {
		clearTimeout(liveTimer);
		if (!session)
			return;
		const g = ++gen;
		const [path, query = ''] = location.hash.slice(1).split('?');
		const q = new URLSearchParams(query), p = path.split('/').filter(Boolean);
		const page = p[0] === 'tenant' && p[1] ? 'tenant' : p[0] === 'live' || p[0] === 'audit' ? p[0] : 'overview';
		for (const a of nav.querySelectorAll('a')) {
			if (a.dataset.route === (page === 'tenant' ? 'overview' : page))
				a.setAttribute('aria-current', 'page');
			else
				a.removeAttribute('aria-current');
		}
		if (path !== shownPath) {
			view.replaceChildren(h('p.loading', null, 'Loading…'));
			shownPath = path;
		} else {
			view.setAttribute('aria-busy', 'true');
		}
		const run = page === 'tenant' ? tenantPage(g, unescapeName(p[1]), q.get('month'))
			: page === 'live' ? livePage(g)
				: page === 'audit' ? auditPage(g, q.get('tenant'))
					: overviewPage(g, q.get('month'));
		run.catch(e => e.status !== 401 && show(g, failed(e.message, route)));
	}

	/* A name from the route, percent-decoded when it decodes. */
	function unescapeName(x) {
		try {
			return decodeURIComponent(x);
		} catch (e) {
			return x;
		}
	}

	/* The overview: every tenant's month, daily usage, top models and
	 * providers, the share of estimated usage. */
	async function overviewPage(g, month) {
		const d = await api('api/overview' + monthQuery(month));
		const ts = d.tenants || [], est = d.estimated || {};
		const requests = total(ts, 'requests'), refused = total(ts, 'refused'), tokens = total(ts, 'tokens');
		show(g,
			pageHead('Overview', `${ts.length} tenant${ts.length === 1 ? '' : 's'}, each by its own calendar`, monthPicker(d.month, '#/')),
			h('div.cards', null,
				card('Requests', fmtInt(requests), `${fmtInt(refused)} refused (${pct(refused, requests)})`),
				card('Tokens', fmtInt(tokens)),
				card('Estimated usage', pct(est.tokens || 0, est.of_tokens),
					h('span', { 'data-testid': 'estimated-share', title: 'Usage the provider did not report, counted by the gateway' },
						`${fmtInt(est.tokens || 0)} of ${fmtInt(est.of_tokens || 0)} tokens; ${fmtInt(est.requests || 0)} of ${fmtInt(est.of_requests || 0)} requests (${pct(est.requests || 0, est.of_requests)})`))),
			section('Tenants', 'section-tenants', null, tenantsTable(d)),
			section('Daily usage', 'section-daily', null, dailyChart(d.month, d.daily || [])),
			h('div.cols', null,
				section('Top models', 'section-models', null, topTable(d.models || [], 'model', 'Model', tokens, 'top-models')),
				section('Top providers', 'section-providers', null, topTable(d.providers || [], 'provider', 'Provider', tokens, 'top-providers'))));
	}

	/* The overview's tenants with their month, and a total line. */
	function tenantsTable(d) {
		const ts = d.tenants || [], kinds = ['list', 'free', 'discount', 'billed'];
		const rows = ts.map(t => h('tr.link', {
			'data-testid': 'tenant-row', 'data-tenant': t.name,
			onclick: e => {
				if (!e.target.closest('a') && !String(getSelection()))
					location.hash = tenantHref(t.name, d.month);
			},
		},
		h('td.name', null, h('a', { href: tenantHref(t.name, d.month) }, t.display_name || t.name),
			t.display_name && h('div.sub', null, t.name), t.disabled && [' ', badge('disabled')]),
		tdn(t.requests, 'cell-requests'), tdn(t.refused, 'cell-refused'),
		tdn(t.tokens, 'cell-tokens', `prompt ${fmtInt(t.prompt_tokens)}, completion ${fmtInt(t.completion_tokens)}, cached ${fmtInt(t.cached_tokens)}, estimated ${fmtInt(t.estimated_tokens)}`),
		kinds.map(k => h('td.n', { 'data-testid': 'cell-' + k }, monies(t.spend, k))),
		h('td.n', { 'data-testid': 'cell-billed-tenant' }, money(t.billed_tenant, t.currency, true),
			t.unconverted > 0 && h('div.warnline', { title: 'Priced requests no exchange rate converts yet, not in this amount' }, `${fmtInt(t.unconverted)} not converted`))));
		const foot = h('tr', { 'data-testid': 'total-row' }, h('th', { scope: 'row' }, 'Total'),
			tdn(total(ts, 'requests'), 'cell-requests'), tdn(total(ts, 'refused'), 'cell-refused'), tdn(total(ts, 'tokens'), 'cell-tokens'),
			kinds.map(k => h('td.n', { 'data-testid': 'cell-' + k }, monies(sumByCurrency(ts.map(t => t.spend || []), k), k))),
			h('td.n', { 'data-testid': 'cell-billed-tenant' },
				monies(sumByCurrency(ts.map(t => ({ currency: t.currency, billed: t.billed_tenant })), 'billed'), 'billed')));
		return table(['Tenant', ['Requests'], ['Refused'], ['Tokens'], ['List'], ['Free'], ['Discount'], ['Billed'], ['Billed, tenant currency']],
			rows, { empty: 'No tenants.', testid: 'tenants', foot });
	}

	/* Models or providers by tokens, with their share of all tokens. */
	function topTable(list, key, heading, all, testid) {
		const rows = [...list].sort((a, b) => b.tokens - a.tokens).map(x => h('tr', { 'data-testid': testid + '-row', 'data-name': x[key] },
			td(x[key]), tdn(x.requests), tdn(x.tokens),
			h('td.share', null, meter(all ? x.tokens / all : 0, 0, pct(x.tokens, all)), h('span', null, pct(x.tokens, all)))));
		return table([heading, ['Requests'], ['Tokens'], 'Share of tokens'], rows, { empty: 'No usage.', testid });
	}

	/* One tenant's month: usage, quotas, limits, refusals, promotions,
	 * keys; then the bill, fetched once the page is on screen. */
	async function tenantPage(g, name, month) {
		const d = await api('api/tenants/' + encodeURIComponent(name) + monthQuery(month));
		const t = d.tenant, admin = session.role === 'admin';
		const billBox = h('div', null, h('p.loading', null, 'Loading the bill…'));
		const shown = show(g,
			h('a.crumb', { href: '#/' + monthQuery(d.month) }, '← Overview'),
			pageHead(t.display_name || t.name,
				[t.display_name && [h('span.code', null, t.name), ' · '], `billed in ${t.currency} · ${t.tz}`, t.disabled && [' ', badge('disabled', 'bad')]],
				monthPicker(d.month, '#/tenant/' + encodeURIComponent(t.name)), 'tenant-title'),
			usageSection(d),
			quotasSection(d, admin),
			h('div.cols', null, limitsSection(d, admin), refusalsSection(d)),
			promotionsSection(d, admin),
			keysSection(d, admin),
			section('Bill', 'section-bill', ['csv', 'json', 'html'].map(f => h('a.btn.sm', { href: billUrl(t.name, d.month, f), 'data-testid': 'bill-' + f }, f.toUpperCase())), billBox));
		if (shown)
			loadBill(g, t.name, d.month, billBox);
	}

	/* The URL of a tenant's bill in a format. */
	function billUrl(name, month, format) {
		return `api/tenants/${encodeURIComponent(name)}/bill?month=${encodeURIComponent(month || '')}&format=${format}`;
	}

	/* The month's usage: totals, daily chart, by model, by day and model. */
	function usageSection(d) {
		const models = d.models || [], daily = d.daily || [];
		return section('Usage', 'section-usage', null,
			h('div.cards', null,
				card('Requests', fmtInt(total(models, 'requests')), null, 'usage-requests'),
				card('Tokens', fmtInt(total(models, 'tokens')), null, 'usage-tokens'),
				card('Billed', monies(sumByCurrency([models], 'billed'), 'billed'), 'by price currency, after promotions', 'usage-billed')),
			dailyChart(d.month, daily),
			table(['Model', ['Requests'], ['Tokens'], ['Billed']], models.map(m => h('tr', { 'data-testid': 'usage-model-row', 'data-model': m.model },
				td(m.model), tdn(m.requests), tdn(m.tokens), m.currency ? tdMoney(m.billed, m.currency, true) : tdn(none('no price')))),
			{ empty: 'No usage this month.', testid: 'usage-models' }),
			daily.length > 0 && h('details', null, h('summary', null, `By day and model (${daily.length} rows)`),
				table(['Day', 'Model', 'Provider', ['Requests'], ['Prompt'], ['Completion'], ['Tokens'], ['Billed']],
					daily.map(r => h('tr', null, td(r.day), td(r.model), td(r.provider), tdn(r.requests), tdn(r.prompt_tokens),
						tdn(r.completion_tokens), tdn(r.tokens), r.currency ? tdMoney(r.billed, r.currency, true) : tdn(none('no price')))),
					{ testid: 'usage-daily' })));
	}

	/* A quota's scope in words. */
	function quotaScope(q) {
		return `${q.key ? 'key ' + q.key : 'whole tenant'}, ${q.model ? 'models ' + q.model : 'all models'}`;
	}

	/* A quota's tokens: a bar, used (+ reserved) of the limit, what is
	 * left. */
	function quotaTokens(q) {
		const lim = q.token_limit, f = x => (lim > 0 ? x / lim : 1);
		if (lim == null)
			return none('no token limit');
		return h('div.quota', null,
			meter(f(q.used_tokens), f(q.reserved_tokens), `${fmtInt(q.used_tokens)} used, ${fmtInt(q.reserved_tokens)} reserved, ${fmtInt(q.remaining_tokens)} left of ${fmtInt(lim)} tokens`),
			h('div', null, fmtInt(q.used_tokens), q.reserved_tokens > 0 && ` + ${fmtInt(q.reserved_tokens)} reserved`, ` of ${fmtInt(lim)} tokens`),
			h('div.sub', null, `${fmtInt(q.remaining_tokens)} left`));
	}

	/* A quota's spend, likewise, the ratios on scaled BigInts. */
	function quotaSpend(q) {
		const c = q.currency, lim = q.spend_limit;
		if (lim == null)
			return none('no spend limit');
		return h('div.quota', null,
			meter(decRatio(q.used_spend, lim), decRatio(q.reserved_spend, lim), `${q.used_spend} used, ${q.reserved_spend} reserved, ${q.remaining_spend} left of ${lim} ${c}`),
			h('div', null, money(q.used_spend, c), scaled(q.reserved_spend, 9) !== 0n && [' + ', money(q.reserved_spend, c), ' reserved'], ' of ', money(lim, c, true)),
			h('div.sub', null, money(q.remaining_spend, c, true), ' left'));
	}

	/* The tenant's quotas. */
	function quotasSection(d, admin) {
		return section('Quotas', 'section-quotas', admin && btn('Set quota', 'set-quota', () => setQuota(d), '.sm'),
			table(['Scope', 'Period', 'Tokens', 'Spend', admin && ''], (d.quotas || []).map(q => h('tr', { 'data-testid': 'quota-row', 'data-id': q.id },
				td(h('div', null, q.key ? h('span.code', null, q.key) : 'Whole tenant'), h('div.sub', null, q.model ? 'models ' + q.model : 'all models')),
				td(PERIOD[q.period] || q.period, ' ', badge(q.hard ? 'hard' : 'soft', q.hard ? '' : 'info'),
					q.period !== 'total' && h('div.sub', null, 'since ', time(q.period_start))),
				h('td.wide', null, quotaTokens(q)), h('td.wide', null, quotaSpend(q)),
				admin && h('td.act', null, btn('Clear', 'clear-quota', () => clearQuota(d.tenant, q), '.sm.danger')))),
			{ empty: 'No quotas: usage is not capped.', testid: 'quotas' }));
	}

	/* The tenant's rate limits. */
	function limitsSection(d, admin) {
		const cell = v => (v == null ? tdn(none('no limit')) : tdn(v));
		return section('Rate limits', 'section-limits', admin && btn('Set limit', 'set-limit', () => setLimit(d), '.sm'),
			table(['Scope', ['Requests/min'], ['Tokens/min'], ['Concurrent'], admin && ''], (d.rate_limits || []).map(l => h('tr', { 'data-testid': 'limit-row', 'data-key': l.key || '' },
				td(l.key ? h('span.code', null, l.key) : 'Whole tenant'), cell(l.rpm), cell(l.tpm), cell(l.concurrency),
				admin && h('td.act', null, btn('Clear', 'clear-limit', () => clearLimit(d.tenant, l), '.sm.danger')))),
			{ empty: 'No rate limits.', testid: 'limits' }));
	}

	/* What the gateway refused this month, by reason. */
	function refusalsSection(d) {
		const rs = [...(d.refusals || [])].sort((a, b) => b.count - a.count);
		return section('Refusals', 'section-refusals', null,
			table(['Reason', 'Detail', ['Count']], rs.map(r => h('tr', { 'data-testid': 'refusal-row', 'data-reason': r.reason },
				td(r.reason.replace(/_/g, ' ')), td(r.detail ? h('span.code', null, r.detail) : none()), tdn(r.count))),
			{ empty: 'Nothing refused this month.', testid: 'refusals' }));
	}

	/* A promotion's amount in words. */
	function promoAmount(p) {
		return p.kind === 'free_tokens' ? `${fmtInt(p.free_tokens)} free tokens` : `${String(p.discount).replace(/%?$/, '%')} off`;
	}

	/* The promotions that apply to the tenant. */
	function promotionsSection(d, admin) {
		const rows = (d.promotions || []).map(p => h('tr', { 'data-testid': 'promo-row', 'data-name': p.name },
			td(h('div.code', null, p.name), h('div.sub', null, p.scope === 'all' ? 'all tenants' : 'this tenant')),
			td(promoAmount(p), h('div.sub', null, [p.model && 'models ' + p.model, p.provider && 'provider ' + p.provider].filter(Boolean).join(', ') || 'any model')),
			h('td.wide', null, p.kind === 'free_tokens' ? h('div.quota', null,
				meter(p.free_tokens ? p.used / p.free_tokens : 1, 0, `${fmtInt(p.used)} used, ${fmtInt(p.remaining)} left`),
				h('div', null, `${fmtInt(p.used)} used`), h('div.sub', null, `${fmtInt(p.remaining)} left`)) : none()),
			td(time(p.starts), h('div.sub', null, 'until ', time(p.ends)), p.ended_at && h('div.sub', null, 'ended ', time(p.ended_at))),
			td(statusBadge(p.status)),
			admin && h('td.act', null, (p.status === 'active' || p.status === 'upcoming') && btn('End', 'end-promo', () => endPromo(d.tenant, p), '.sm.danger'))));
		return section('Promotions', 'section-promotions', admin && btn('Add promotion', 'add-promo', () => addPromo(d), '.sm'),
			table(['Promotion', 'Amount', 'Grant balance', 'Valid', 'Status', admin && ''], rows, { empty: 'No promotions apply.', testid: 'promotions' }));
	}

	/* The tenant's API keys. */
	function keysSection(d, admin) {
		const rows = (d.keys || []).map(k => h('tr' + (k.status === 'active' ? '' : '.off'), { 'data-testid': 'key-row', 'data-id': k.id, 'data-prefix': k.prefix },
			td(h('span.code', null, k.prefix + '…')), td(k.name || none()),
			td(k.models && k.models.length ? k.models.join(', ') : none('any model')),
			td(time(k.created_at)), td(k.revoked_at ? ['revoked ', time(k.revoked_at)] : time(k.expires_at)), td(time(k.last_used_at)),
			td(statusBadge(k.status)),
			admin && h('td.act', null, k.status === 'active' && btn('Revoke', 'revoke-key', () => revokeKey(d.tenant, k), '.sm.danger'))));
		return section('Keys', 'section-keys', admin && btn('Issue key', 'issue-key', () => issueKey(d.tenant), '.sm'),
			table(['Prefix', 'Name', 'Models', 'Created', 'Expires', 'Last used', 'Status', admin && ''], rows, { empty: 'No keys.', testid: 'keys' }));
	}

	/* Fetches the month's bill (tollctl bill --format json) into box. */
	async function loadBill(g, name, month, box) {
		try {
			const doc = await api(billUrl(name, month, 'json'));
			if (g === gen)
				box.replaceChildren(...[].concat(doc).map(billView));
		} catch (e) {
			if (g === gen && e.status !== 401)
				box.replaceChildren(h('p.warn', { 'data-testid': 'bill-error' }, e.message));
		}
	}

	/* One bill document: status, total, lines, unpriced usage,
	 * promotions, subtotals and the exchange rates used. */
	function billView(b) {
		const lines = b.lines || [], unpriced = b.unpriced || [], subs = b.subtotals || [];
		const pr = b.promotions || {}, grants = pr.grants || [], discounts = pr.discounts || [];
		return h('div.bill', null,
			h('div.billhead', null,
				h('p', { 'data-testid': 'bill-status' }, b.closed_at
					? [badge('closed', 'ok'), ` Frozen invoice, closed ${fmtTime(b.closed_at)}, issued ${b.issued}.`]
					: [badge('draft', 'warn'), ` ${b.month} is not closed and may still change; as of ${b.issued}.`]),
				h('div.total', { 'data-testid': 'bill-total' }, 'Total ', b.total != null ? money(b.total, b.currency, true) : none('not computed'))),
			(b.missing_rates || []).map(m => h('p.warn', null, `No total: the exchange rate ${m.base} to ${m.quote} for ${m.month} is missing. Set it with `, h('code', null, m.command), '.')),
			table(['Section', 'Provider', 'Model', 'Price from', 'Class', ['Requests'], ['Tokens'], ['Free'], ['Billable'], ['Unit / 1M'], ['List'], ['Discount'], ['Amount'], 'Cur.'],
				lines.map(l => h('tr' + (l.estimated ? '.est' : ''), { 'data-testid': 'bill-line' },
					td(l.original_month ? 'adjustment ' + l.original_month : l.section, l.original_month && l.estimated && [' ', badge('estimated', 'warn')]),
					td(l.provider), td(l.model), td((l.price_from || '').slice(0, 10), l.contract && [' ', badge('contract', 'info')]), td(l.token_class),
					tdn(l.requests), tdn(l.tokens), tdn(l.free_tokens), tdn(l.billable_tokens), tdn(fmtDec(l.unit_price, 0, Infinity).text),
					tdMoney(l.list_amount, l.currency), tdMoney(l.discount, l.currency), tdMoney(l.amount, l.currency), td(l.currency))),
				{ empty: 'No billable usage.', testid: 'bill-lines' }),
			unpriced.length > 0 && [h('h3', null, 'Usage without a price'),
				h('p.warn', null, 'Not billed: no price was set for these models when the requests were made.'),
				table(['Month', 'Provider', 'Model', ['Requests'], ['Input'], ['Cached'], ['Cache write'], ['Output']],
					unpriced.map(u => h('tr', null, td(u.original_month || b.month), td(u.provider), td(u.model), tdn(u.requests),
						tdn(u.input_tokens), tdn(u.cached_tokens), tdn(u.cache_write_tokens), tdn(u.output_tokens))))],
			grants.length + discounts.length > 0 && [h('h3', null, 'Promotions'),
				table(['Promotion', 'Kind', ['Tokens covered'], ['Percent'], ['Value'], 'Cur.'], [
					...grants.map(x => h('tr', null, td(x.name), td('free tokens, at list price'), tdn(x.tokens), tdn(''), tdMoney(x.value, x.currency), td(x.currency))),
					...discounts.map(x => h('tr', null, td(x.name), td('discount'), tdn(''), tdn(x.percent + '%'), tdMoney(x.amount, x.currency), td(x.currency)))])],
			subs.length > 0 && [h('h3', null, 'Subtotals'),
				table(['Currency', ['List'], ['Discount'], ['Amount'], [`Rate to ${b.currency}`]],
					subs.map(x => h('tr', { 'data-testid': 'bill-subtotal', 'data-currency': x.currency }, td(x.currency),
						tdMoney(x.list_amount, x.currency), tdMoney(x.discount, x.currency), tdMoney(x.amount, x.currency),
						tdn(x.fx_rate == null ? 'missing' : x.fx_rate))))],
			h('ul.notes', null,
				(b.fx || []).map(x => h('li', null, `Exchange rate for ${x.month}: 1 ${x.base} = ${x.rate} ${x.quote}`, x.set_at && ` (set ${fmtTime(x.set_at)})`, '.')),
				h('li', null, `Period ${fmtTime(b.from)} to ${fmtTime(b.until)} (${b.tz}). Each amount is rounded once, half up, to the currency's minor unit.`)));
	}

	/* The live page: the gateway's own figures every 2 seconds, until
	 * another page is shown. */
	async function livePage(g) {
		const err = h('p.warn', { 'data-testid': 'live-error', role: 'status', hidden: true });
		const body = h('div', null, h('p.loading', null, 'Loading…'));
		show(g, pageHead('Live', 'The gateway\'s own figures over the last minute, refreshed every 2 seconds'), err, body);
		const tick = async () => {
			try {
				const d = await api('api/live');
				if (g !== gen)
					return;
				samples.push({ t: Date.parse(d.at) || Date.now(), v: Number(d.requests_per_s) || 0 });
				while (samples[0].t < samples[samples.length - 1].t - 600000)
					samples.shift();
				body.replaceChildren(liveView(d));
				err.hidden = true;
			} catch (e) {
				if (g !== gen || e.status === 401)
					return;
				err.textContent = 'Not updating: ' + e.message;
				err.hidden = false;
			}
			liveTimer = setTimeout(tick, 2000);
		};
		await tick();
	}

	/* The figures of one answer of api/live. */
	function liveView(d) {
		const db = d.database || {}, j = d.journal || {}, up = x => badge(x ? 'up' : 'down', x ? 'ok' : 'bad');
		const ms = v => (v == null ? null : fmtInt(v) + ' ms');
		return h('div', null,
			h('div.cards', null,
				card('Requests/s', fmtDec(d.requests_per_s, 1, 3).text, h('span', { 'data-testid': 'live-requests-total' }, `${fmtInt(d.requests_total)} since start`), 'live-rps'),
				card('In flight', fmtInt(d.in_flight), null, 'live-in-flight'),
				card('Streams', fmtInt(d.streams), null, 'live-streams'),
				card('Uptime', fmtDuration(d.uptime_s || 0), `as of ${fmtTime(d.at)}`, 'live-uptime'),
				card('Database', up(db.up), `${fmtInt(d.usage_written_total)} usage records written, ${fmtInt(d.usage_rejected_total)} rejected`, 'live-db'),
				card('Journal', up(j.up), `${fmtBytes(j.pending_bytes || 0)} pending, ${fmtInt(j.in_memory || 0)} in memory` + (j.write_errors ? `, ${fmtInt(j.write_errors)} write errors` : ''), 'live-journal'),
				card('Keys', fmtInt(d.keys), 'loaded by the gateway')),
			sparkline(),
			section('Providers', 'section-providers', null,
				table(['Provider', [`Requests, last ${d.window_s || 60} s`], ['Since start'], ['p50'], ['p99']], (d.providers || []).map(p => h('tr', { 'data-testid': 'live-provider-row', 'data-provider': p.provider },
					td(p.provider), tdn(p.requests), tdn(p.requests_total), tdn(ms(p.p50_ms)), tdn(ms(p.p99_ms)))),
				{ empty: 'No provider has answered yet.', testid: 'live-providers' })));
	}

	/* Requests/s over the samples of the last minutes (1 to 5, as many as
	 * there are), as a line; a gap in the samples is a gap in the line. */
	function sparkline() {
		const W = 600, H = 70, end = samples[samples.length - 1].t;
		const span = Math.min(300000, Math.max(60000, end - samples[0].t)), pts = samples.filter(p => p.t >= end - span);
		const max = Math.max(1, ...pts.map(p => p.v)), peak = Math.max(...pts.map(p => p.v));
		const xy = p => [((p.t - end + span) / span * W).toFixed(1), (H - 3 - p.v / max * (H - 8)).toFixed(1)];
		const path = pts.map((p, i) => (i && p.t - pts[i - 1].t < 6000 ? 'L' : 'M') + xy(p).join(' ')).join('');
		const [cx, cy] = xy(pts[pts.length - 1]);
		return section('Requests per second', 'section-sparkline', h('span.sub', null, `peak ${+peak.toFixed(2)}/s`),
			s('svg', { class: 'spark', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'Requests per second, recent minutes', 'data-testid': 'live-sparkline' },
				s('line', { class: 'grid', x1: 0, x2: W, y1: H - 3, y2: H - 3 }), s('path', { d: path, 'vector-effect': 'non-scaling-stroke' }), s('circle', { cx, cy, r: 3 })),
			h('div.axis', null, h('span', null, `${Math.round(span / 60000)} min ago`), h('span', null, 'now')));
	}

	/* The audit page: the newest 200 changes, of one tenant or all. */
	async function auditPage(g, tenant) {
		const [rows, list] = await Promise.all([
			api('api/audit?limit=200' + (tenant ? '&tenant=' + encodeURIComponent(tenant) : '')),
			api('api/tenants').catch(() => ({})),
		]);
		const names = (list.tenants || []).map(t => t.name);
		if (tenant && !names.includes(tenant))
			names.push(tenant);
		const filter = h('label.filter', null, 'Tenant ', h('select', {
			'data-testid': 'audit-tenant',
			onchange: e => {
				location.hash = '#/audit' + (e.target.value ? '?tenant=' + encodeURIComponent(e.target.value) : '');
			},
		}, h('option', { value: '' }, 'All tenants'), names.map(n => h('option', { value: n, selected: n === tenant }, n))));
		show(g, pageHead('Audit', `The newest ${rows.length} changes made with tollctl or the console`, filter),
			h('section.panel', null, table(['At', 'Actor', 'Action', 'Object', 'Tenant', 'Change'], rows.map(r => h('tr', { 'data-testid': 'audit-row', 'data-id': r.id },
				td(time(r.at)), td(h('span.code', null, r.actor)), td(r.action), td(r.object, r.object_id != null && ' #' + r.object_id),
				td(r.tenant ? h('a', { href: tenantHref(r.tenant) }, r.tenant) : none()),
				h('td.diff', { 'data-testid': 'audit-diff' }, diffView(r.before, r.after)))),
			{ empty: 'No changes recorded.', testid: 'audit' })));
	}

	/* A value of an audit row as short text. */
	function valueText(v) {
		return typeof v === 'string' ? v : JSON.stringify(v);
	}

	/* What an audit row changed: "name: old → new" for each member that
	 * differs; a created or deleted row lists its non-null members. */
	function diffView(before, after) {
		const obj = x => x !== null && typeof x === 'object' && !Array.isArray(x);
		const old = v => h('del', null, valueText(v)), neu = v => h('ins', null, valueText(v)), key = k => h('span.k', null, k + ': ');
		if (!obj(before) && !obj(after))
			return before == null && after == null ? none() : h('div', null, old(before), ' → ', neu(after));
		if (!obj(before) || !obj(after)) {
			const row = obj(after) ? after : before, mark = obj(after) ? neu : old;
			return [obj(after) ? badge('created', 'ok') : badge('deleted', 'bad'), ' ',
				Object.keys(row).filter(k => row[k] != null).map(k => h('span.kv', null, key(k), mark(row[k])))];
		}
		return Object.keys(Object.assign({}, before, after)).filter(k => valueText(before[k]) !== valueText(after[k])).map(k => h('div', null, key(k),
			!(k in after) ? old(before[k]) : !(k in before) ? neu(after[k]) : [old(before[k]), ' → ', neu(after[k])]));
	}

	/* Opens the modal of one action: its fields, a statement of exactly
	 * what Confirm will do (rewritten as the fields change), the verb's
	 * error when it fails. Success closes it, unless then(result, dialog,
	 * form) takes over; once the action is done, closing reloads the page. */
	function ask({ title, fields = [], say, verb, act, then, danger, change }) {
		const inputs = {};
		const values = () => Object.fromEntries(Object.entries(inputs).map(([k, e]) => [k, e.type === 'checkbox' ? e.checked : e.value.trim()]));
		const summary = h('div.summary', { 'data-testid': 'dialog-summary', 'aria-live': 'polite' });
		const error = h('p.error', { 'data-testid': 'dialog-error', role: 'alert', hidden: true });
		const cancel = btn('Cancel', 'dialog-cancel', () => dlg.close());
		const confirm = h('button.btn.' + (danger ? 'dangerous' : 'primary'), { type: 'submit', 'data-testid': 'dialog-confirm' }, verb);
		const update = () => summary.replaceChildren(...[].concat(say(values())));
		const field = f => {
			const id = 'f-' + f.name, hint = f.hint && h('p.hint', { id: id + '-hint' }, f.hint);
			const e = inputs[f.name] = f.options
				? h('select', { id }, f.options.map(([v, text]) => h('option', { value: v, selected: v === f.value }, text)))
				: h('input', { id, type: f.type || 'text', value: f.value, placeholder: f.placeholder, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': hint && id + '-hint' });
			e.setAttribute('data-testid', 'field-' + f.name);
			const label = h('label', { for: id }, f.label);
			return f.type === 'checkbox' ? h('div.field.check', null, e, label, hint) : h('div.field', null, label, e, hint);
		};
		let busy = false, acted = false;
		const form = h('form', {
			method: 'dialog',
			oninput: e => {
				if (change)
					change(e.target, inputs);
				update();
			},
			onsubmit: async e => {
				e.preventDefault();
				if (busy)
					return;
				busy = confirm.disabled = true;
				error.hidden = true;
				try {
					const r = await act(values());
					acted = true;
					if (then)
						then(r, dlg, form);
					else
						dlg.close();
				} catch (x) {
					error.textContent = x.message;
					error.hidden = false;
				}
				busy = confirm.disabled = false;
			},
		}, h('h2', null, title), h('div.fields', null, fields.map(field)), summary, error, h('div.actions', null, cancel, confirm));
		const dlg = h('dialog', {
			'data-testid': 'dialog', 'aria-label': title,
			onclose: () => {
				dlg.remove();
				if (acted && session)
					route();
			},
		}, form);
		document.body.append(dlg);
		update();
		dlg.showModal();
		(fields.length ? inputs[fields[0].name] : cancel).focus();
	}

	/* The options of a key select: the whole tenant, its active keys. */
	function keyOptions(d) {
		return [['', 'Whole tenant']].concat((d.keys || []).filter(k => k.status === 'active').map(k => [k.prefix, `${k.prefix}…${k.name ? ' (' + k.name + ')' : ''}`]));
	}

	/* A comma-separated list of model patterns without stray blanks. */
	function models(list) {
		return list.split(',').map(x => x.trim()).filter(Boolean).join(',');
	}

	/* Issue key: the dialog, then the new key shown once, with a copy
	 * button. */
	function issueKey(t) {
		ask({
			title: `Issue a key for ${t.display_name || t.name}`,
			verb: 'Issue key',
			fields: [
				{ name: 'name', label: 'Name', placeholder: 'ci' },
				{ name: 'models', label: 'Allowed models', placeholder: 'gpt-4o, glm-4*', hint: 'Comma-separated patterns; empty allows any model.' },
				{ name: 'expires', label: 'Expires', placeholder: 'YYYY-MM-DD', hint: `A date (midnight, ${t.tz}) or an RFC 3339 time; empty never expires.` },
			],
			say: v => `Issues a new API key for tenant ${t.name}${v.name ? ` named “${v.name}”` : ''}, allowed ${v.models ? 'only the models matching ' + models(v.models) : 'any model'}, ${v.expires ? 'expiring ' + v.expires : 'never expiring'}. The key is shown once, now; only its hash is kept.`,
			act: v => api('api/keys', { tenant: t.name, name: v.name, models: models(v.models), expires: v.expires }),
			then: (r, dlg, form) => {
				const code = h('code.key', { 'data-testid': 'issued-key' }, (r && r.result && r.result.key) || '(the answer held no key)');
				const copy = btn('Copy', 'copy-key', async () => {
					try {
						await navigator.clipboard.writeText(code.textContent);
						copy.textContent = 'Copied';
					} catch (e) {
						getSelection().selectAllChildren(code);
						copy.textContent = document.execCommand('copy') ? 'Copied' : 'Selected: press Ctrl+C';
					}
				});
				dlg.addEventListener('cancel', e => e.preventDefault());
				form.replaceChildren(h('h2', null, 'Key issued'),
					h('p', null, `Copy the key of ${t.name} now and hand it over safely. Only its hash is kept: it cannot be shown again.`),
					h('div.keybox', null, code, copy), h('div.actions', null, btn('Done', 'dialog-done', () => dlg.close(), '.primary')));
				copy.focus();
			},
		});
	}

	/* Revoke key. */
	function revokeKey(t, k) {
		ask({
			title: `Revoke key ${k.prefix}…`,
			verb: 'Revoke key',
			danger: true,
			say: () => `Revokes key ${k.prefix}…${k.name ? ` (“${k.name}”)` : ''} of tenant ${t.name}. Every request made with it is refused from now on; a revoked key cannot be restored.`,
			act: () => api(`api/keys/${encodeURIComponent(k.id)}/revoke`, {}),
		});
	}

	/* Set quota. */
	function setQuota(d) {
		const t = d.tenant;
		const per = { day: `per calendar day in ${t.tz}`, week: `per week from Monday in ${t.tz}`, month: `per calendar month in ${t.tz}`, total: 'in total, never reset' };
		ask({
			title: `Set a quota for ${t.display_name || t.name}`,
			verb: 'Set quota',
			fields: [
				{ name: 'key', label: 'Key', options: keyOptions(d) },
				{ name: 'model', label: 'Model pattern', placeholder: 'all models', hint: 'A shell glob on the model the client asks for, such as glm-4*.' },
				{ name: 'period', label: 'Period', options: [['day', 'Day'], ['week', 'Week'], ['month', 'Month'], ['total', 'Total']], value: 'month' },
				{ name: 'tokens', label: 'Token limit', placeholder: '50M', hint: 'A count such as 50M, 200k or 1500000.' },
				{ name: 'spend', label: `Spend limit (${t.currency})`, placeholder: '2000', hint: `In ${t.currency}, after promotions.` },
				{ name: 'soft', label: 'Soft: serve over the limit, with a warning header, a log line and a count', type: 'checkbox' },
			],
			say: v => {
				const caps = [v.tokens && `${v.tokens} tokens`, v.spend && `${v.spend} ${t.currency}`].filter(Boolean).join(' and ');
				return caps ? `Sets a ${v.soft ? 'soft' : 'hard'} quota on tenant ${t.name} (${v.key ? 'key ' + v.key : 'whole tenant'}, ${v.model ? 'models matching ' + v.model : 'all models'}): at most ${caps} ${per[v.period]}. ` +
					(v.soft ? 'Requests over it are still served, with a warning.' : 'Requests that would not fit are refused.') +
					' A quota of the same key, pattern and period is replaced whole.' : 'Give a token limit, a spend limit or both.';
			},
			act: v => api('api/quotas', { tenant: t.name, key: v.key, model: v.model, period: v.period, tokens: v.tokens, spend: v.spend, soft: v.soft }),
		});
	}

	/* Clear quota. */
	function clearQuota(t, q) {
		const caps = [q.token_limit != null && `${fmtInt(q.token_limit)} tokens`, q.spend_limit != null && `${q.spend_limit} ${q.currency}`].filter(Boolean).join(' and ');
		ask({
			title: `Clear quota #${q.id}`,
			verb: 'Clear quota',
			danger: true,
			say: () => `Removes the ${q.hard ? 'hard' : 'soft'} quota #${q.id} of tenant ${t.name} (${quotaScope(q)}): ${caps} ${PERIOD[q.period] || q.period}. Requests are no longer checked against it.`,
			act: () => api(`api/quotas/${encodeURIComponent(q.id)}/clear`, {}),
		});
	}

	/* The limits of a rate limit row in words. */
	function limitText(l) {
		return [l.rpm != null && `${fmtInt(l.rpm)} requests/min`, l.tpm != null && `${fmtInt(l.tpm)} tokens/min`, l.concurrency != null && `${fmtInt(l.concurrency)} concurrent`].filter(Boolean).join(', ') || 'no limits';
	}

	/* Set rate limit; the fields start from the chosen scope's limits. */
	function setLimit(d) {
		const t = d.tenant, kinds = ['rpm', 'tpm', 'concurrency'];
		const of = key => (d.rate_limits || []).find(l => (l.key || '') === key) || {};
		const start = k => (of('')[k] == null ? '' : String(of('')[k]));
		ask({
			title: `Set rate limits for ${t.display_name || t.name}`,
			verb: 'Set limits',
			fields: [
				{ name: 'key', label: 'Key', options: keyOptions(d) },
				{ name: 'rpm', label: 'Requests per minute', value: start('rpm'), placeholder: 'no limit' },
				{ name: 'tpm', label: 'Tokens per minute', value: start('tpm'), placeholder: 'no limit', hint: 'Counts may carry k, M or G: 200k.' },
				{ name: 'concurrency', label: 'Concurrent requests', value: start('concurrency'), placeholder: 'no limit' },
			],
			change: (target, f) => {
				if (target === f.key)
					for (const k of kinds)
						f[k].value = of(f.key.value)[k] == null ? '' : of(f.key.value)[k];
			},
			say: v => {
				if (!v.rpm && !v.tpm && !v.concurrency)
					return 'Give at least one limit. To remove them all, use Clear on their line.';
				const part = (x, what) => (x ? `${x} ${what}` : `no limit on ${what}`);
				return `Replaces the rate limits of ${v.key ? 'key ' + v.key + ' of ' : ''}tenant ${t.name} with: ${part(v.rpm, 'requests per minute')}, ${part(v.tpm, 'tokens per minute')}, ${part(v.concurrency, 'concurrent requests')}. A kind left empty has no limit afterwards.`;
			},
			act: v => api('api/limits', { tenant: t.name, key: v.key, rpm: v.rpm, tpm: v.tpm, concurrency: v.concurrency }),
		});
	}

	/* Clear rate limit. */
	function clearLimit(t, l) {
		ask({
			title: 'Clear rate limits',
			verb: 'Clear limits',
			danger: true,
			say: () => `Removes the rate limits of ${l.key ? 'key ' + l.key + ' of ' : ''}tenant ${t.name} (${limitText(l)}).` + (l.key ? ' The tenant\'s own limits still apply to the key.' : ''),
			act: () => api('api/limits/clear', { tenant: t.name, key: l.key || '' }),
		});
	}

	/* Add promotion: free tokens or a discount, for this tenant or all. */
	function addPromo(d) {
		const t = d.tenant;
		ask({
			title: 'Add a promotion',
			verb: 'Add promotion',
			fields: [
				{ name: 'name', label: 'Name', placeholder: 'zhipu-migration', hint: 'Letters, digits, ".", "_" and "-"; unique.' },
				{ name: 'kind', label: 'Kind', options: [['free_tokens', 'Free tokens'], ['discount', 'Discount']] },
				{ name: 'amount', label: 'Amount', placeholder: '50M or 20%', hint: 'Free tokens: a count such as 50M. Discount: a percentage such as 20%.' },
				{ name: 'scope', label: 'For', options: [['tenant', `This tenant (${t.name})`], ['all', 'All tenants']] },
				{ name: 'model', label: 'Model pattern', placeholder: 'all models', hint: 'A shell glob on the upstream model, such as glm-4*.' },
				{ name: 'provider', label: 'Provider', placeholder: 'any provider' },
				{ name: 'from', label: 'From', placeholder: 'YYYY-MM-DD' },
				{ name: 'until', label: 'Until', placeholder: 'YYYY-MM-DD', hint: `A date is midnight in ${t.tz} (in UTC for all tenants), or give an RFC 3339 time; the window ends before it.` },
			],
			say: v => {
				const free = v.kind === 'free_tokens';
				return `Adds promotion “${v.name || '…'}”: ${free ? `a grant of ${v.amount || '…'} free tokens` : `a discount of ${v.amount ? v.amount.replace(/%?$/, '%') : '…'} off the list price`} ` +
					`for ${v.scope === 'all' ? 'every tenant' + (free ? ', each with a grant of its own' : '') : 'tenant ' + t.name}, on ${v.model ? 'models matching ' + v.model : 'all models'}` +
					`${v.provider ? ' of provider ' + v.provider : ''}, valid from ${v.from || '…'} until ${v.until || '…'}.`;
			},
			act: v => api('api/promotions', Object.assign({ name: v.name, model: v.model, provider: v.provider, from: v.from, until: v.until },
				v.kind === 'discount' ? { discount: v.amount } : { free_tokens: v.amount }, v.scope === 'all' ? {} : { tenant: t.name })),
		});
	}

	/* End promotion. */
	function endPromo(t, p) {
		ask({
			title: `End promotion ${p.name}`,
			verb: 'End promotion',
			danger: true,
			fields: [{ name: 'at', label: 'At', placeholder: 'now', hint: `Empty: now. A date or an RFC 3339 time, read in ${p.scope === 'all' ? 'UTC' : t.tz}.` }],
			say: v => `Ends promotion “${p.name}” (${promoAmount(p)}) ${v.at ? 'at ' + v.at : 'now'}${p.scope === 'all' ? ', for every tenant, not only ' + t.name : ''}. Usage before then keeps it${p.kind === 'free_tokens' ? '; tokens left in its grants can no longer be used' : ''}.`,
			act: v => api(`api/promotions/${encodeURIComponent(p.name)}/end`, { at: v.at }),
		});
	}

	/* The login form; msg says why it is shown. */
	function showLogin(msg) {
		session = null;
		gen++;
		clearTimeout(liveTimer);
		shownPath = null;
		for (const d of document.querySelectorAll('dialog'))
			d.close();
		nav.hidden = who.hidden = true;
		view.removeAttribute('aria-busy');
		const input = h('input', { id: 'token', type: 'password', required: true, autocomplete: 'off', 'data-testid': 'login-token', 'aria-describedby': 'token-hint' });
		const note = h('p.note', { role: 'alert', 'data-testid': 'login-error', hidden: !msg }, msg);
		const submit = h('button.btn.primary', { type: 'submit', 'data-testid': 'login-submit' }, 'Log in');
		view.replaceChildren(h('form.login.panel', {
			'data-testid': 'login-form',
			onsubmit: async e => {
				e.preventDefault();
				submit.disabled = true;
				try {
					await api('api/login', { token: input.value.trim() });
					await start();
				} catch (x) {
					note.className = 'error';
					note.textContent = x.message;
					note.hidden = submit.disabled = false;
					input.select();
				}
			},
		}, h('h1', null, 'Log in'),
		h('div.field', null, h('label', { for: 'token' }, 'Token'), input, h('p.hint', { id: 'token-hint' }, 'The admin or the read-only token of this gateway.')),
		note, h('div.actions', null, submit)));
		input.focus();
	}

	/* Asks who we are: the pages when logged in, the login form on 401. */
	async function start() {
		try {
			session = await api('api/session');
		} catch (e) {
			if (e.status !== 401)
				view.replaceChildren(failed(e.message, start));
			return;
		}
		const role = document.getElementById('role'), admin = session.role === 'admin';
		role.textContent = admin ? 'admin' : 'read-only';
		role.className = 'badge ' + (admin ? 'info' : 'muted');
		document.getElementById('actor').textContent = session.actor || '';
		nav.hidden = who.hidden = false;
		route();
	}

	document.getElementById('logout').addEventListener('click', async () => {
		try {
			await api('api/logout', {});
		} catch (e) {
			/* logged out on this side whatever the answer */
		}
		showLogin('You have logged out.');
	});
	window.addEventListener('hashchange', route);
	start();
})();
