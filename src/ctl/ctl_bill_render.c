/*
 * ctl_bill_render.c - a bill document (the JSON tollctl bill builds) as
 * text tables, CSV or an HTML page with an inline SVG chart of daily
 * usage. Every format is drawn from the same document, so a closed month
 * renders from its frozen invoice exactly as it was billed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_bill.h"
#include "json.h"

#define NELEM(a) ((int)(sizeof(a) / sizeof(*(a))))

/* A member's string value, or NULL. */
const char *
ctl_bill_jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A member's integer value as decimal text: raw text as built, or a
 * count read back from a frozen invoice (json_count: exact, else NULL);
 * NULL when absent. */
static const char *
jint(const cJSON *o, const char *name, char *buf, size_t size)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	int64_t n;

	if (cJSON_IsRaw(v))
		return v->valuestring;
	if (json_count(o, name, &n) != 1)
		return NULL;
	snprintf(buf, size, "%" PRId64, n);
	return buf;
}

/* A member's integer value, 0 when absent. */
static int64_t
jint64(const cJSON *o, const char *name)
{
	char buf[32];
	const char *s = jint(o, name, buf, sizeof(buf));

	return s != NULL ? strtoll(s, NULL, 10) : 0;
}

/* Whether a member is true. */
static int
jtrue(const cJSON *o, const char *name)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, name));
}

/* Whether line e belongs to section s. */
static int
in_section(const cJSON *e, const char *s)
{
	const char *v = ctl_bill_jstr(e, "section");

	return v != NULL && strcmp(v, s) == 0;
}

/* A member array (possibly empty), or NULL. */
const cJSON *
ctl_bill_jarr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsArray(v) ? v : NULL;
}

/* The number of elements of member array name (0 when absent). */
static int
jcount(const cJSON *o, const char *name)
{
	return cJSON_GetArraySize(ctl_bill_jarr(o, name));
}

/* "YYYY-MM-DD" of an ISO 8601 timestamp, in buf. */
static const char *
date_part(const char *ts, char *buf, size_t size)
{
	snprintf(buf, size, "%.10s", ts != NULL ? ts : "");
	return buf;
}

/* Warns on stderr about what a bill leaves out or cannot total. */
void
ctl_bill_warn(const cJSON *doc)
{
	const cJSON *e;
	int64_t n = 0;
	const char *t = ctl_bill_jstr(doc, "tenant"),
		   *m = ctl_bill_jstr(doc, "month");

	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "unpriced"))
		n += jint64(e, "requests");
	if (n > 0)
		ctl_err("warning: %s %s: %" PRId64
			" request%s without a price, not billed",
			t, m, n, n == 1 ? "" : "s");
	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "missing_rates"))
		ctl_err("warning: %s %s: no total, exchange rate %s to %s missing (%s)",
			t, m, ctl_bill_jstr(e, "base"),
			ctl_bill_jstr(e, "quote"), ctl_bill_jstr(e, "command"));
}

/* Section label of a line for tables: "line", "estimated" or
 * "adjustment 2026-10" (", estimated"). */
static const char *
line_label(const cJSON *l, char *buf, size_t size)
{
	const char *orig = ctl_bill_jstr(l, "original_month");

	if (orig == NULL)
		return ctl_bill_jstr(l, "section");
	snprintf(buf, size, "adjustment %s%s", orig,
		 jtrue(l, "estimated") ? ", estimated" : "");
	return buf;
}

/* Prints the doc's text summary status line. */
static void
text_status(const cJSON *doc)
{
	const char *closed = ctl_bill_jstr(doc, "closed_at");

	if (closed != NULL)
		printf("Closed at %s: frozen invoice, issued %s.\n", closed,
		       ctl_bill_jstr(doc, "issued"));
	else
		printf("Draft: %s is not closed (tollctl bill close "
		       "--month %s); as of %s.\n",
		       ctl_bill_jstr(doc, "month"), ctl_bill_jstr(doc, "month"),
		       ctl_bill_jstr(doc, "issued"));
}

/* The bill's lines, with a note on contract prices. 0 or -1. */
static int
text_lines(const cJSON *doc)
{
	static const char *const lh[] = {
		"SECTION",  "PROVIDER", "MODEL",    "PRICE FROM", "CLASS",
		"TOKENS",   "FREE",     "BILLABLE", "UNIT/1M",    "LIST",
		"DISCOUNT", "AMOUNT",   "CUR",
	};
	struct ctl_table *t;
	const cJSON *e;
	char b[3][32], label[48], from[16];
	int contract = 0;

	t = ctl_table_new(13, lh, "56789:;");
	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "lines")) {
		date_part(ctl_bill_jstr(e, "price_from"), from, sizeof(from));
		if (jtrue(e, "contract")) {
			strcat(from, "*");
			contract = 1;
		}
		ROW(t, line_label(e, label, sizeof(label)),
		    ctl_bill_jstr(e, "provider"), ctl_bill_jstr(e, "model"),
		    from, ctl_bill_jstr(e, "token_class"),
		    jint(e, "tokens", b[0], 32),
		    jint(e, "free_tokens", b[1], 32),
		    jint(e, "billable_tokens", b[2], 32),
		    ctl_bill_jstr(e, "unit_price"),
		    ctl_bill_jstr(e, "list_amount"),
		    ctl_bill_jstr(e, "discount"), ctl_bill_jstr(e, "amount"),
		    ctl_bill_jstr(e, "currency"));
	}
	if (ctl_table_print(t) < 0)
		return -1;
	if (contract)
		puts("* contract price");
	return 0;
}

/* Usage without a price, which is not billed. 0 or -1. */
static int
text_unpriced(const cJSON *doc)
{
	static const char *const uh[] = {
		"ORIG",  "PROVIDER", "MODEL",       "REQUESTS",
		"INPUT", "CACHED",   "CACHE_WRITE", "OUTPUT",
	};
	struct ctl_table *t;
	const cJSON *e;
	char b[5][32];

	puts("\nWARNING: usage without a price, NOT BILLED:");
	t = ctl_table_new(8, uh, "34567");
	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "unpriced"))
		ROW(t, ctl_bill_jstr(e, "original_month"),
		    ctl_bill_jstr(e, "provider"), ctl_bill_jstr(e, "model"),
		    jint(e, "requests", b[0], 32),
		    jint(e, "input_tokens", b[1], 32),
		    jint(e, "cached_tokens", b[2], 32),
		    jint(e, "cache_write_tokens", b[3], 32),
		    jint(e, "output_tokens", b[4], 32));
	return ctl_table_print(t);
}

/* What the free-token grants and the discounts took off. 0 or -1. */
static int
text_promotions(const cJSON *promos)
{
	static const char *const gh[] = { "FREE-TOKEN GRANT", "TOKENS", "VALUE",
					  "CUR" };
	static const char *const dh[] = { "DISCOUNT", "PERCENT", "AMOUNT",
					  "CUR" };
	struct ctl_table *t;
	const cJSON *e;
	char b[32];

	if (jcount(promos, "grants") > 0) {
		putchar('\n');
		t = ctl_table_new(4, gh, "12");
		cJSON_ArrayForEach (e, ctl_bill_jarr(promos, "grants"))
			ROW(t, ctl_bill_jstr(e, "name"),
			    jint(e, "tokens", b, 32), ctl_bill_jstr(e, "value"),
			    ctl_bill_jstr(e, "currency"));
		if (ctl_table_print(t) < 0)
			return -1;
	}
	if (jcount(promos, "discounts") > 0) {
		putchar('\n');
		t = ctl_table_new(4, dh, "12");
		cJSON_ArrayForEach (e, ctl_bill_jarr(promos, "discounts")) {
			snprintf(b, sizeof(b), "%s%%",
				 ctl_bill_jstr(e, "percent"));
			ROW(t, ctl_bill_jstr(e, "name"), b,
			    ctl_bill_jstr(e, "amount"),
			    ctl_bill_jstr(e, "currency"));
		}
		return ctl_table_print(t);
	}
	return 0;
}

/* The subtotal of each currency, with the rate that converts it. 0 or
 * -1. */
static int
text_subtotals(const cJSON *doc)
{
	static const char *const sh[] = { "SUBTOTAL", "LIST", "DISCOUNT",
					  "AMOUNT", "RATE" };
	struct ctl_table *t;
	const cJSON *e;

	putchar('\n');
	t = ctl_table_new(5, sh, "1234");
	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "subtotals"))
		ROW(t, ctl_bill_jstr(e, "currency"),
		    ctl_bill_jstr(e, "list_amount"),
		    ctl_bill_jstr(e, "discount"), ctl_bill_jstr(e, "amount"),
		    ctl_bill_jstr(e, "fx_rate"));
	return ctl_table_print(t);
}

/* Prints one bill as tables on stdout. 0, or -1 when out of memory. */
static int
text_bill(const cJSON *doc)
{
	const char *total = ctl_bill_jstr(doc, "total");
	const cJSON *e;

	printf("Bill of %s for %s (%s, %s to %s), in %s\n",
	       ctl_bill_jstr(doc, "tenant"), ctl_bill_jstr(doc, "month"),
	       ctl_bill_jstr(doc, "tz"), ctl_bill_jstr(doc, "from"),
	       ctl_bill_jstr(doc, "until"), ctl_bill_jstr(doc, "currency"));
	text_status(doc);
	putchar('\n');
	if (jcount(doc, "lines") == 0)
		puts("No billable usage.");
	else if (text_lines(doc) < 0)
		return -1;
	if (jcount(doc, "unpriced") > 0 && text_unpriced(doc) < 0)
		return -1;
	if (text_promotions(
		    cJSON_GetObjectItemCaseSensitive(doc, "promotions")) < 0)
		return -1;
	if (jcount(doc, "subtotals") > 0 && text_subtotals(doc) < 0)
		return -1;
	putchar('\n');
	if (total != NULL)
		printf("TOTAL %s %s\n", total, ctl_bill_jstr(doc, "currency"));
	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "missing_rates"))
		printf("WARNING: no total: exchange rate %s to %s for %s is "
		       "missing; set it with: %s\n",
		       ctl_bill_jstr(e, "base"), ctl_bill_jstr(e, "quote"),
		       ctl_bill_jstr(e, "month"), ctl_bill_jstr(e, "command"));
	return 0;
}

/* CSV columns; each row fills those that apply to its section. */
enum {
	C_TENANT,
	C_MONTH,
	C_SECTION,
	C_ORIG,
	C_PROVIDER,
	C_MODEL,
	C_PRICE_ID,
	C_PRICE_FROM,
	C_CLASS,
	C_REQUESTS,
	C_TOKENS,
	C_FREE,
	C_BILLABLE,
	C_UNIT,
	C_LIST,
	C_DISCOUNT,
	C_AMOUNT,
	C_CUR,
	C_PROMO,
	C_PERCENT,
	C_RATE,
	C_NOTE,
	C__COUNT
};

static const char *const csv_head[C__COUNT] = {
	"tenant",          "month",      "section",     "original_month",
	"provider",        "model",      "price_id",    "price_from",
	"token_class",     "requests",   "tokens",      "free_tokens",
	"billable_tokens", "unit_price", "list_amount", "discount",
	"amount",          "currency",   "promotion",   "percent",
	"fx_rate",         "note",
};

/* Writes one RFC 4180 record: fields quoted when they hold a comma, a
 * quote, CR or LF, quotes doubled, CRLF at the end; NULL is empty. */
static void
csv_row(FILE *out, const char *const *cells)
{
	int i;

	for (i = 0; i < C__COUNT; i++) {
		const char *s = cells[i] != NULL ? cells[i] : "";

		if (i > 0)
			fputc(',', out);
		if (strpbrk(s, ",\"\r\n") == NULL) {
			fputs(s, out);
			continue;
		}
		fputc('"', out);
		for (; *s != '\0'; s++) {
			if (*s == '"')
				fputc('"', out);
			fputc(*s, out);
		}
		fputc('"', out);
	}
	fputs("\r\n", out);
}

/* Writes one bill's CSV rows (no header). */
static void
csv_bill(FILE *out, const cJSON *doc)
{
	const char *c[C__COUNT];
	const cJSON *e, *promos;
	char b[8][32], note[160];

#define CSV_START(section)                                                     \
	do {                                                                   \
		memset(c, 0, sizeof(c));                                       \
		c[C_TENANT] = ctl_bill_jstr(doc, "tenant");                    \
		c[C_MONTH] = ctl_bill_jstr(doc, "month");                      \
		c[C_SECTION] = (section);                                      \
	} while (0)

	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "lines")) {
		CSV_START(ctl_bill_jstr(e, "section"));
		c[C_ORIG] = ctl_bill_jstr(e, "original_month");
		c[C_PROVIDER] = ctl_bill_jstr(e, "provider");
		c[C_MODEL] = ctl_bill_jstr(e, "model");
		c[C_PRICE_ID] = jint(e, "price_id", b[0], 32);
		c[C_PRICE_FROM] = ctl_bill_jstr(e, "price_from");
		c[C_CLASS] = ctl_bill_jstr(e, "token_class");
		c[C_REQUESTS] = jint(e, "requests", b[1], 32);
		c[C_TOKENS] = jint(e, "tokens", b[2], 32);
		c[C_FREE] = jint(e, "free_tokens", b[3], 32);
		c[C_BILLABLE] = jint(e, "billable_tokens", b[4], 32);
		c[C_UNIT] = ctl_bill_jstr(e, "unit_price");
		c[C_LIST] = ctl_bill_jstr(e, "list_amount");
		c[C_DISCOUNT] = ctl_bill_jstr(e, "discount");
		c[C_AMOUNT] = ctl_bill_jstr(e, "amount");
		c[C_CUR] = ctl_bill_jstr(e, "currency");
		snprintf(note, sizeof(note), "%s%s%s",
			 jtrue(e, "contract") ? "contract price" : "",
			 jtrue(e, "contract") && c[C_ORIG] != NULL &&
					 jtrue(e, "estimated")
				 ? "; "
				 : "",
			 c[C_ORIG] != NULL && jtrue(e, "estimated")
				 ? "estimated"
				 : "");
		c[C_NOTE] = note;
		csv_row(out, c);
	}
	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "unpriced")) {
		static const char *const cls[4][2] = {
			{ "input", "input_tokens" },
			{ "cached", "cached_tokens" },
			{ "cache_write", "cache_write_tokens" },
			{ "output", "output_tokens" },
		};

		for (int i = 0; i < 4; i++) {
			if (jint64(e, cls[i][1]) == 0)
				continue;
			CSV_START("unpriced");
			c[C_ORIG] = ctl_bill_jstr(e, "original_month");
			c[C_PROVIDER] = ctl_bill_jstr(e, "provider");
			c[C_MODEL] = ctl_bill_jstr(e, "model");
			c[C_CLASS] = cls[i][0];
			c[C_REQUESTS] = jint(e, "requests", b[0], 32);
			c[C_TOKENS] = jint(e, cls[i][1], b[1], 32);
			c[C_NOTE] = "WARNING: no price, not billed";
			csv_row(out, c);
		}
	}
	promos = cJSON_GetObjectItemCaseSensitive(doc, "promotions");
	cJSON_ArrayForEach (e, ctl_bill_jarr(promos, "grants")) {
		CSV_START("promotion");
		c[C_PROMO] = ctl_bill_jstr(e, "name");
		c[C_TOKENS] = jint(e, "tokens", b[0], 32);
		c[C_LIST] = ctl_bill_jstr(e, "value");
		c[C_CUR] = ctl_bill_jstr(e, "currency");
		c[C_NOTE] = "free tokens, value at list price";
		csv_row(out, c);
	}
	cJSON_ArrayForEach (e, ctl_bill_jarr(promos, "discounts")) {
		CSV_START("promotion");
		c[C_PROMO] = ctl_bill_jstr(e, "name");
		c[C_PERCENT] = ctl_bill_jstr(e, "percent");
		c[C_DISCOUNT] = ctl_bill_jstr(e, "amount");
		c[C_CUR] = ctl_bill_jstr(e, "currency");
		c[C_NOTE] = "discount";
		csv_row(out, c);
	}
	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "subtotals")) {
		CSV_START("subtotal");
		c[C_LIST] = ctl_bill_jstr(e, "list_amount");
		c[C_DISCOUNT] = ctl_bill_jstr(e, "discount");
		c[C_AMOUNT] = ctl_bill_jstr(e, "amount");
		c[C_CUR] = ctl_bill_jstr(e, "currency");
		c[C_RATE] = ctl_bill_jstr(e, "fx_rate");
		csv_row(out, c);
	}
	CSV_START("total");
	c[C_AMOUNT] = ctl_bill_jstr(doc, "total");
	c[C_CUR] = ctl_bill_jstr(doc, "currency");
	note[0] = '\0';
	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "missing_rates"))
		snprintf(note + strlen(note), sizeof(note) - strlen(note),
			 "%sno total: rate %s to %s missing (%s)",
			 note[0] != '\0' ? "; " : "", ctl_bill_jstr(e, "base"),
			 ctl_bill_jstr(e, "quote"),
			 ctl_bill_jstr(e, "command"));
	if (note[0] == '\0' && ctl_bill_jstr(doc, "closed_at") != NULL)
		snprintf(note, sizeof(note), "closed at %s",
			 ctl_bill_jstr(doc, "closed_at"));
	else if (note[0] == '\0')
		snprintf(note, sizeof(note), "draft: month not closed");
	c[C_NOTE] = note;
	csv_row(out, c);
#undef CSV_START
}

/* Writes s with &, <, >, " and ' escaped for HTML text and attributes. */
static void
html_esc(FILE *out, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", out);
			break;
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		case '\'':
			fputs("&#39;", out);
			break;
		default:
			fputc(*s, out);
		}
	}
}

/* Decimal digits (optionally signed) with thousands separators, in buf. */
static const char *
group3(const char *digits, char *buf, size_t size)
{
	size_t n, i, w = 0;

	if (digits == NULL)
		return "-";
	n = strlen(digits);
	for (i = 0; i < n && w + 2 < size; i++) {
		buf[w++] = digits[i];
		if (digits[i] != '-' && (n - i - 1) % 3 == 0 && i + 1 < n)
			buf[w++] = ',';
	}
	buf[w] = '\0';
	return buf;
}

/* A token count shortened for an axis label: 0, 250, 1.5K, 20M, 2B. */
static void
short_count(int64_t v, char *buf, size_t size)
{
	static const struct {
		int64_t div;
		char unit;
	} units[] = { { 1000000000, 'B' }, { 1000000, 'M' }, { 1000, 'K' } };
	int i;

	for (i = 0; i < NELEM(units); i++) {
		int64_t d = units[i].div;

		if (v < d)
			continue;
		if (v % d == 0)
			snprintf(buf, size, "%" PRId64 "%c", v / d,
				 units[i].unit);
		else
			snprintf(buf, size, "%" PRId64 ".%" PRId64 "%c", v / d,
				 v % d * 10 / d, units[i].unit);
		return;
	}
	snprintf(buf, size, "%" PRId64, v);
}

/* The smallest of 1, 2, 5 times a power of ten that is at least max/4. */
static int64_t
nice_step(int64_t max)
{
	int64_t raw = (max + 3) / 4, mag = 1;

	if (raw < 1)
		return 1;
	while (mag <= raw / 10)
		mag *= 10;
	if (mag >= raw)
		return mag;
	if (2 * mag >= raw)
		return 2 * mag;
	if (5 * mag >= raw)
		return 5 * mag;
	return 10 * mag;
}

/* Writes the tokens-per-day bar chart as inline SVG. */
static void
html_chart(FILE *out, const cJSON *doc)
{
	enum {
		LEFT = 52,
		TOP = 10,
		BAR = 22,
		PH = 170,
		BOTTOM = 26,
		RIGHT = 8
	};
	const cJSON *days = ctl_bill_jarr(doc, "days"), *d;
	int n = cJSON_GetArraySize(days), i, w, ticks;
	int64_t max = 0, step, ymax, v;
	char lab[32], num[40];

	cJSON_ArrayForEach (d, days)
		if ((v = jint64(d, "tokens")) > max)
			max = v;
	step = nice_step(max);
	ticks = (int)((max + step - 1) / step);
	if (ticks < 1)
		ticks = 1;
	ymax = step * ticks;
	w = LEFT + n * BAR + RIGHT;
	fprintf(out,
		"<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\""
		" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"Tokens per "
		"day\">\n",
		w, TOP + PH + BOTTOM);
	for (i = 0; i <= ticks; i++) {
		int y = TOP + PH - (int)((int64_t)i * PH / ticks);

		short_count(step * i, lab, sizeof(lab));
		fprintf(out,
			"<line class=\"grid\" x1=\"%d\" y1=\"%d\" "
			"x2=\"%d\" y2=\"%d\"/><text x=\"%d\" y=\"%d\" "
			"text-anchor=\"end\">%s</text>\n",
			LEFT, y, w - RIGHT, y, LEFT - 6, y + 4, lab);
	}
	i = 0;
	cJSON_ArrayForEach (d, days) {
		int h, x = LEFT + i * BAR;

		v = jint64(d, "tokens");
		h = (int)(v * PH / ymax);
		if (v > 0 && h == 0)
			h = 1;
		fprintf(out,
			"<rect x=\"%d\" y=\"%d\" width=\"%d\" "
			"height=\"%d\"><title>",
			x + 3, TOP + PH - h, BAR - 6, h);
		html_esc(out, ctl_bill_jstr(d, "date"));
		snprintf(lab, sizeof(lab), "%" PRId64, v);
		fprintf(out, ": %s tokens</title></rect>\n",
			group3(lab, num, sizeof(num)));
		if (i == 0 || (i + 1) % 5 == 0)
			fprintf(out,
				"<text x=\"%d\" y=\"%d\" "
				"text-anchor=\"middle\">%d</text>\n",
				x + BAR / 2, TOP + PH + 16, i + 1);
		i++;
	}
	fprintf(out,
		"<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
		"y2=\"%d\"/>\n</svg>\n",
		LEFT, TOP + PH, w - RIGHT, TOP + PH);
}

static const char html_style[] =
	"<style>\n"
	"body{margin:0;background:#eef0f3;color:#1f2933;"
	"font:14px/1.45 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif}\n"
	".bill{max-width:1040px;margin:28px auto;background:#fff;"
	"padding:40px 48px;border-radius:6px;"
	"box-shadow:0 1px 4px rgba(0,0,0,.08)}\n"
	"header{display:flex;justify-content:space-between;"
	"align-items:flex-start;border-bottom:2px solid #1f2933;"
	"padding-bottom:16px;margin-bottom:8px}\n"
	"h1{margin:0;font-size:26px;letter-spacing:.5px}\n"
	"h2{font-size:15px;margin:28px 0 8px;text-transform:uppercase;"
	"letter-spacing:.6px;color:#52606d}\n"
	".sub{color:#52606d;margin-top:4px}\n"
	"dl{display:grid;grid-template-columns:auto auto;gap:2px 14px;"
	"margin:0;font-size:13px}\n"
	"dt{color:#7b8794;text-align:right}dd{margin:0}\n"
	"table{border-collapse:collapse;width:100%;font-size:12.5px}\n"
	"th{text-align:left;font-weight:600;color:#52606d;"
	"border-bottom:1px solid #cbd2d9;padding:6px 8px;white-space:nowrap}\n"
	"td{border-bottom:1px solid #e4e7eb;padding:5px 8px}\n"
	"td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;"
	"white-space:nowrap}\n"
	"tr.est td{background:#fffbea}\n"
	".tag{display:inline-block;font-size:11px;padding:0 6px;"
	"border-radius:8px;background:#e4e7eb;color:#3e4c59}\n"
	".tag.est{background:#fce588;color:#513c06}\n"
	".total{margin-top:18px;text-align:right;font-size:20px;"
	"font-weight:700}\n"
	".warn{background:#fff3e0;border-left:4px solid #e8590c;"
	"padding:10px 14px;margin:14px 0;border-radius:3px}\n"
	".draft{color:#c05621;font-weight:600}\n"
	".chart{width:100%;height:auto;max-height:240px}\n"
	".chart rect{fill:#3e7cb1}.chart text{font-size:10px;fill:#616e7c}\n"
	".chart .grid{stroke:#e4e7eb}.chart .axis{stroke:#9aa5b1}\n"
	".notes{font-size:12.5px;color:#52606d}\n"
	"@media print{body{background:#fff}.bill{box-shadow:none;"
	"margin:0;max-width:none}.bill+.bill{break-before:page}}\n"
	"</style>\n";

/* Writes "<td class=n>" with the escaped value, grouped when a count. */
static void
td_num(FILE *out, const char *v, int count)
{
	char buf[48];

	fputs("<td class=\"n\">", out);
	html_esc(out, count       ? group3(v, buf, sizeof(buf))
		      : v != NULL ? v
				  : "-");
	fputs("</td>", out);
}

/* Writes "<td>" with the escaped value, "-" for NULL. */
static void
td(FILE *out, const char *v)
{
	fputs("<td>", out);
	html_esc(out, v != NULL ? v : "-");
	fputs("</td>", out);
}

/* Writes the lines of one section ("line", "estimated", "adjustment") as a
 * table under heading, if there are any. */
static void
html_lines(FILE *out, const cJSON *doc, const char *section,
	   const char *heading, const char *intro)
{
	const cJSON *e;
	char b[4][32], from[16];
	int n = 0, adj = strcmp(section, "adjustment") == 0;

	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "lines"))
		n += in_section(e, section);
	if (n == 0)
		return;
	fputs("<h2>", out);
	html_esc(out, heading);
	fputs("</h2>\n", out);
	if (intro != NULL)
		fprintf(out, "<p class=\"notes\">%s</p>\n", intro);
	fprintf(out,
		"<table>\n<tr>%s<th>Provider</th><th>Model</th>"
		"<th>Price from</th><th>Class</th><th class=\"n\">"
		"Tokens</th><th class=\"n\">Free</th><th class=\"n\">"
		"Billable</th><th class=\"n\">Unit / 1M</th><th class=\"n\">"
		"List</th><th class=\"n\">Discount</th><th class=\"n\">"
		"Amount</th><th>Cur.</th></tr>\n",
		adj ? "<th>Month</th>" : "");
	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "lines")) {
		if (!in_section(e, section))
			continue;
		fputs(jtrue(e, "estimated") ? "<tr class=\"est\">" : "<tr>",
		      out);
		if (adj)
			td(out, ctl_bill_jstr(e, "original_month"));
		td(out, ctl_bill_jstr(e, "provider"));
		fputs("<td>", out);
		html_esc(out, ctl_bill_jstr(e, "model"));
		if (adj && jtrue(e, "estimated"))
			fputs(" <span class=\"tag est\">estimated</span>", out);
		fputs("</td><td>", out);
		html_esc(out, date_part(ctl_bill_jstr(e, "price_from"), from,
					sizeof(from)));
		if (jtrue(e, "contract"))
			fputs(" <span class=\"tag\">contract</span>", out);
		fputs("</td>", out);
		td(out, ctl_bill_jstr(e, "token_class"));
		td_num(out, jint(e, "tokens", b[0], 32), 1);
		td_num(out, jint(e, "free_tokens", b[1], 32), 1);
		td_num(out, jint(e, "billable_tokens", b[2], 32), 1);
		td_num(out, ctl_bill_jstr(e, "unit_price"), 0);
		td_num(out, ctl_bill_jstr(e, "list_amount"), 0);
		td_num(out, ctl_bill_jstr(e, "discount"), 0);
		td_num(out, ctl_bill_jstr(e, "amount"), 0);
		td(out, ctl_bill_jstr(e, "currency"));
		fputs("</tr>\n", out);
	}
	fputs("</table>\n", out);
}

/* Writes the unpriced usage warning and table. */
static void
html_unpriced(FILE *out, const cJSON *doc)
{
	const cJSON *e;
	char b[5][32];

	if (jcount(doc, "unpriced") == 0)
		return;
	fputs("<h2>Usage without a price</h2>\n<div class=\"warn\"><strong>"
	      "Not billed.</strong> No price was set for these models when "
	      "the requests were made; they are not included in any amount "
	      "on this invoice.</div>\n<table>\n<tr><th>Month</th>"
	      "<th>Provider</th><th>Model</th><th class=\"n\">Requests</th>"
	      "<th class=\"n\">Input</th><th class=\"n\">Cached</th>"
	      "<th class=\"n\">Cache write</th><th class=\"n\">Output</th>"
	      "</tr>\n",
	      out);
	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "unpriced")) {
		fputs("<tr>", out);
		td(out, ctl_bill_jstr(e, "original_month") != NULL
				? ctl_bill_jstr(e, "original_month")
				: ctl_bill_jstr(doc, "month"));
		td(out, ctl_bill_jstr(e, "provider"));
		td(out, ctl_bill_jstr(e, "model"));
		td_num(out, jint(e, "requests", b[0], 32), 1);
		td_num(out, jint(e, "input_tokens", b[1], 32), 1);
		td_num(out, jint(e, "cached_tokens", b[2], 32), 1);
		td_num(out, jint(e, "cache_write_tokens", b[3], 32), 1);
		td_num(out, jint(e, "output_tokens", b[4], 32), 1);
		fputs("</tr>\n", out);
	}
	fputs("</table>\n", out);
}

/* Writes the promotions: grants and discounts. */
static void
html_promotions(FILE *out, const cJSON *doc)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "promotions");
	const cJSON *e;
	char b[32];

	if (jcount(p, "grants") == 0 && jcount(p, "discounts") == 0)
		return;
	fputs("<h2>Promotions</h2>\n<table>\n<tr><th>Promotion</th>"
	      "<th>Kind</th><th class=\"n\">Tokens covered</th>"
	      "<th class=\"n\">Percent</th><th class=\"n\">Value</th>"
	      "<th>Cur.</th></tr>\n",
	      out);
	cJSON_ArrayForEach (e, ctl_bill_jarr(p, "grants")) {
		fputs("<tr>", out);
		td(out, ctl_bill_jstr(e, "name"));
		td(out, "free tokens (value at list price)");
		td_num(out, jint(e, "tokens", b, sizeof(b)), 1);
		td_num(out, "", 0);
		td_num(out, ctl_bill_jstr(e, "value"), 0);
		td(out, ctl_bill_jstr(e, "currency"));
		fputs("</tr>\n", out);
	}
	cJSON_ArrayForEach (e, ctl_bill_jarr(p, "discounts")) {
		fputs("<tr>", out);
		td(out, ctl_bill_jstr(e, "name"));
		td(out, "discount");
		td_num(out, "", 0);
		snprintf(b, sizeof(b), "%s%%", ctl_bill_jstr(e, "percent"));
		td_num(out, b, 0);
		td_num(out, ctl_bill_jstr(e, "amount"), 0);
		td(out, ctl_bill_jstr(e, "currency"));
		fputs("</tr>\n", out);
	}
	fputs("</table>\n", out);
}

/* Writes the subtotals, the exchange rates and the total. */
static void
html_totals(FILE *out, const cJSON *doc)
{
	const cJSON *e;
	const char *total = ctl_bill_jstr(doc, "total");

	fputs("<h2>Summary</h2>\n", out);
	if (jcount(doc, "subtotals") > 0) {
		fputs("<table>\n<tr><th>Currency</th><th class=\"n\">List"
		      "</th><th class=\"n\">Discount</th><th class=\"n\">"
		      "Amount</th><th class=\"n\">Rate to ",
		      out);
		html_esc(out, ctl_bill_jstr(doc, "currency"));
		fputs("</th></tr>\n", out);
		cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "subtotals")) {
			fputs("<tr>", out);
			td(out, ctl_bill_jstr(e, "currency"));
			td_num(out, ctl_bill_jstr(e, "list_amount"), 0);
			td_num(out, ctl_bill_jstr(e, "discount"), 0);
			td_num(out, ctl_bill_jstr(e, "amount"), 0);
			td_num(out,
			       ctl_bill_jstr(e, "fx_rate") != NULL
				       ? ctl_bill_jstr(e, "fx_rate")
				       : "missing",
			       0);
			fputs("</tr>\n", out);
		}
		fputs("</table>\n", out);
	}
	fputs("<div class=\"total\">Total: ", out);
	if (total != NULL) {
		html_esc(out, total);
		fputc(' ', out);
		html_esc(out, ctl_bill_jstr(doc, "currency"));
	} else {
		fputs("not computed", out);
	}
	fputs("</div>\n", out);
	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "missing_rates")) {
		fputs("<div class=\"warn\">The exchange rate ", out);
		html_esc(out, ctl_bill_jstr(e, "base"));
		fputs(" to ", out);
		html_esc(out, ctl_bill_jstr(e, "quote"));
		fputs(" for ", out);
		html_esc(out, ctl_bill_jstr(e, "month"));
		fputs(" is missing, so the total is not computed. Set it "
		      "with <code>",
		      out);
		html_esc(out, ctl_bill_jstr(e, "command"));
		fputs("</code>.</div>\n", out);
	}
}

/* Writes the notes: rates used, estimated usage, what amounts mean. */
static void
html_notes(FILE *out, const cJSON *doc)
{
	const cJSON *e;
	int est = 0;

	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "lines"))
		est |= jtrue(e, "estimated");
	fputs("<h2>Notes</h2>\n<ul class=\"notes\">\n", out);
	fputs("<li>Prices are per million tokens. Each amount is computed "
	      "from the line's summed tokens and rounded once, half up, to "
	      "the currency's minor unit; the amount is the billable "
	      "(not free) tokens at the unit price less the discount.</li>\n",
	      out);
	cJSON_ArrayForEach (e, ctl_bill_jarr(doc, "fx")) {
		fputs("<li>Exchange rate for ", out);
		html_esc(out, ctl_bill_jstr(e, "month"));
		fputs(": 1 ", out);
		html_esc(out, ctl_bill_jstr(e, "base"));
		fputs(" = ", out);
		html_esc(out, ctl_bill_jstr(e, "rate"));
		fputc(' ', out);
		html_esc(out, ctl_bill_jstr(e, "quote"));
		fputs(".</li>\n", out);
	}
	if (est)
		fputs("<li>Estimated usage: the provider reported no token "
		      "counts for these requests, so the gateway counted them "
		      "itself.</li>\n",
		      out);
	if (jcount(doc, "unpriced") > 0)
		fputs("<li>Usage without a price is listed but not billed."
		      "</li>\n",
		      out);
	fputs("</ul>\n", out);
}

/* Writes one bill as an HTML section. */
static void
html_bill(FILE *out, const cJSON *doc)
{
	int closed = ctl_bill_jstr(doc, "closed_at") != NULL;

	fputs("<section class=\"bill\">\n<header><div><h1>", out);
	fputs(closed ? "Invoice" : "Statement", out);
	fputs("</h1><div class=\"sub\">", out);
	html_esc(out, ctl_bill_jstr(doc, "tenant"));
	fputs(" &middot; ", out);
	html_esc(out, ctl_bill_jstr(doc, "month"));
	fputs("</div>", out);
	if (!closed)
		fputs("<div class=\"draft\">Draft: the month is not closed "
		      "and may still change.</div>",
		      out);
	fputs("</div>\n<dl><dt>Customer</dt><dd>", out);
	html_esc(out, ctl_bill_jstr(doc, "tenant"));
	fputs("</dd><dt>Period</dt><dd>", out);
	html_esc(out, ctl_bill_jstr(doc, "month"));
	fputs(" (", out);
	html_esc(out, ctl_bill_jstr(doc, "tz"));
	fputs(")</dd><dt>Issued</dt><dd>", out);
	html_esc(out, ctl_bill_jstr(doc, "issued"));
	fputs("</dd><dt>Currency</dt><dd>", out);
	html_esc(out, ctl_bill_jstr(doc, "currency"));
	fputs("</dd></dl></header>\n", out);
	fputs("<h2>Tokens per day</h2>\n", out);
	html_chart(out, doc);
	if (jcount(doc, "lines") == 0)
		fputs("<p>No billable usage this month.</p>\n", out);
	html_lines(out, doc, "line", "Charges", NULL);
	html_lines(out, doc, "estimated", "Charges for estimated usage",
		   "The provider reported no token counts for these "
		   "requests; the gateway estimated them.");
	html_lines(out, doc, "adjustment", "Adjustments for earlier months",
		   "Usage of an already invoiced month that reached the "
		   "ledger after that month's invoice was issued.");
	html_unpriced(out, doc);
	html_promotions(out, doc);
	html_totals(out, doc);
	html_notes(out, doc);
	fputs("</section>\n", out);
}

/* Writes the docs (an array) in format to out; 0, or -1 on failure. */
int
ctl_bill_render(FILE *out, enum format fmt, cJSON *docs, int single)
{
	const cJSON *doc;
	char *text;

	switch (fmt) {
	case FMT_JSON:
		text = cJSON_Print(single ? cJSON_GetArrayItem(docs, 0) : docs);
		if (text == NULL)
			return -1;
		fputs(text, out);
		fputc('\n', out);
		cJSON_free(text);
		return 0;
	case FMT_CSV:
		csv_row(out, csv_head);
		cJSON_ArrayForEach (doc, docs)
			csv_bill(out, doc);
		return 0;
	case FMT_HTML:
		fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
		      "<meta charset=\"utf-8\">\n<title>",
		      out);
		doc = cJSON_GetArrayItem(docs, 0);
		fputs(single ? "Invoice " : "Invoices ", out);
		if (single) {
			html_esc(out, ctl_bill_jstr(doc, "tenant"));
			fputc(' ', out);
		}
		html_esc(out, doc != NULL ? ctl_bill_jstr(doc, "month") : "");
		fputs("</title>\n", out);
		fputs(html_style, out);
		fputs("</head>\n<body>\n", out);
		cJSON_ArrayForEach (doc, docs)
			html_bill(out, doc);
		if (docs->child == NULL)
			fputs("<p>Nothing to bill.</p>\n", out);
		fputs("</body>\n</html>\n", out);
		return 0;
	case FMT_TEXT:
		cJSON_ArrayForEach (doc, docs) {
			if (doc != docs->child)
				puts("\n");
			if (text_bill(doc) < 0)
				return -1;
		}
		return 0;
	}
	return -1;
}
