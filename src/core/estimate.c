/*
 * estimate.c - token estimation from text.
 *
 * Principle: cut text the way byte-level BPE tokenizers (OpenAI's cl100k
 * and o200k) cut it before merging, and charge each piece what such a piece
 * costs on average. The costs were measured with cl100k on English prose,
 * Markdown, C, Python, JSON and Chinese, Japanese and Korean text (about
 * 44,000 tokens; English and code land within 4% of cl100k, JSON 5%, and
 * tests/test_estimate.c holds sentences and fixtures to it):
 *
 *  - A run of letters is a piece; one space, or one punctuation mark, right
 *    before it belongs to it. After a space, words of up to six letters are
 *    one token and longer ones a little more; at a line start or after a
 *    mark (identifiers, paths) they split sooner; capitals split sooner
 *    still, and a camelCase hump starts a new piece.
 *  - Digits go in groups of up to three, and the space before a number is a
 *    token of its own.
 *  - A run of punctuation is a piece: one token for up to two marks
 *    (".", ");"), a little more for longer runs ("://", "\":{\""), and the
 *    newlines right after it come free.
 *  - Whitespace: the newlines of a run are one token, and the blanks before
 *    a word other than the last one (indentation) one more; blanks at the
 *    end of the text or before a number are a token.
 *  - CJK ideographs, kana, hangul and CJK punctuation are one token each.
 *    That is cl100k's figure for Chinese prose; o200k and the Chinese
 *    providers' own tokenizers (Qwen, GLM, DeepSeek) need 0.6 to 0.8 per
 *    character, so for them the estimate runs high by up to half.
 *  - Other letters (accented Latin, Cyrillic, Greek, Arabic, Indic) cost by
 *    their UTF-8 length; an emoji about two tokens; a byte of invalid UTF-8
 *    one.
 *
 * Costs are kept in hundredths of a token and rounded once per call, and a
 * non-empty text is at least one token, so a sum of calls over stream
 * chunks (about one token each) stays close to the count for the whole.
 * No allocation, one pass, no look-back.
 */
#include <stdio.h>
#include <string.h>

#include "estimate.h"

/* Costs in hundredths of a token. */
#define TOKEN         100
#define CJK_COST      100 /* one Han, kana or hangul character */
#define SYMBOL_COST   100 /* a symbol from the BMP: arrow, dingbat */
#define EMOJI_COST    200 /* a character beyond the BMP: emoji */
#define JOINER_COST   50  /* zero-width joiner, variation selector */
#define XLETTER2_COST 45  /* a two-byte letter: é, ж, λ */
#define XLETTER3_COST 80  /* a three-byte letter: Devanagari, Thai */

/* Tokens a chat message costs beyond its text: OpenAI documents 3 for the
 * framing of each message, and the role is a fourth. A name costs one
 * more than its text. */
#define MESSAGE_OVERHEAD 4
#define NAME_OVERHEAD    1
/* Tokens that prime every chat reply. */
#define REPLY_PRIMING 3
/* Tokens that frame a tool call in the model's output (call and end
 * markers), beyond its name and arguments. */
#define TOOL_CALL_OVERHEAD 3
/* An image in a prompt costs what the provider charges for the largest one
 * it takes, as the request text does not tell its size: OpenAI's gpt-4o
 * family 85 + 170 per 512-pixel tile, 8 tiles at most (768 x 2048), so
 * 1445; Anthropic about width x height / 750 after scaling to 1.15
 * megapixels, so 1600 at most; 85 for any image asked at detail "low".
 * Models whose images cost more per tile are listed in image_costs. */
#define IMAGE_TOKENS     1600
#define IMAGE_LOW_TOKENS 85
/* Audio in a prompt: OpenAI charges about 10 tokens a second, and the
 * leanest audio it takes (8 kbit/s) holds a second in 1,000 bytes. */
#define AUDIO_BYTES_PER_TOKEN 100
/* A file in a prompt (a PDF): its text and an image of each page. Given
 * inline, one token per 4 bytes of it; named by id, a flat figure. */
#define FILE_BYTES_PER_TOKEN 4
#define FILE_ID_TOKENS       8192

/* The prompt's context: what an image costs for the model. */
struct prompt {
	int64_t image_tokens;
};

/* Character classes, as the tokenizers' pre-splitting sees them. */
enum cclass {
	CC_MARK,    /* punctuation: ASCII, Latin-1, general punctuation */
	CC_SPACE,   /* space, tab, no-break space */
	CC_NEWLINE, /* \n, \r */
	CC_LETTER,  /* ASCII letter */
	CC_XLETTER, /* other letter outside CJK */
	CC_DIGIT,   /* ASCII digit */
	CC_CJK,     /* ideograph, kana, hangul, CJK punctuation, full width */
	CC_SYMBOL,  /* anything else: a cost of its own per character */
};

/* What a word piece starts with. */
enum prefix {
	PFX_NONE,  /* line start, after digits or a run of marks */
	PFX_SPACE, /* a space (the usual word) */
	PFX_MARK,  /* one punctuation mark: ".c", "(x", "_id" */
};

/* One decoded character. */
struct uchar {
	uint32_t cp;
	unsigned len; /* bytes */
	enum cclass cls;
	int cost; /* CC_SYMBOL and CC_XLETTER: hundredths */
};

/* Decodes one UTF-8 sequence at s, rejecting bad continuation bytes,
 * overlong forms, surrogates and code points past U+10FFFF. Returns its
 * length, or 0 for a byte that starts no valid sequence. */
static unsigned
utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned n, i;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, c = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Whether a code point is a CJK ideograph, kana, hangul, CJK punctuation
 * or a full-width form: about one token each. */
static int
is_cjk(uint32_t cp)
{
	return (cp >= 0x2e80 && cp <= 0x9fff) || /* radicals .. ideographs */
	       (cp >= 0xa960 && cp <= 0xa97f) || /* hangul jamo ext-A */
	       (cp >= 0xac00 && cp <= 0xd7ff) || /* hangul syllables */
	       (cp >= 0xf900 && cp <= 0xfaff) || /* compatibility ideographs */
	       (cp >= 0xfe30 && cp <= 0xfe4f) || /* compatibility forms */
	       (cp >= 0xff00 && cp <= 0xffef) || /* full and half width */
	       (cp >= 0x20000 && cp <= 0x3ffff); /* ideographs ext B .. */
}

/* Classes of the ASCII characters; the rest are marks (CC_MARK is 0). */
static const unsigned char ascii_class[128] = {
	['\t'] = CC_SPACE,         ['\v'] = CC_SPACE,
	['\f'] = CC_SPACE,         [' '] = CC_SPACE,
	['\n'] = CC_NEWLINE,       ['\r'] = CC_NEWLINE,
	['0' ... '9'] = CC_DIGIT,  ['A' ... 'Z'] = CC_LETTER,
	['a' ... 'z'] = CC_LETTER,
};

/* Classifies the character at s (len > 0 bytes left). */
static void
next_char(const unsigned char *s, size_t len, struct uchar *u)
{
	uint32_t cp = 0;

	u->cost = 0;
	if (s[0] < 0x80) {
		u->cp = s[0];
		u->len = 1;
		u->cls = (enum cclass)ascii_class[s[0]];
		return;
	}
	u->len = utf8_decode(s, len, &cp);
	u->cp = cp;
	if (u->len == 0) {
		/* A stray byte: byte-level BPE spends a token on it. */
		u->len = 1;
		u->cls = CC_SYMBOL;
		u->cost = TOKEN;
		return;
	}
	if (cp == 0xa0) {
		u->cls = CC_SPACE;
	} else if (cp < 0xc0 || cp == 0xd7 || cp == 0xf7) {
		u->cls = CC_MARK; /* Latin-1 signs, ×, ÷ */
	} else if (cp < 0x2000) {
		u->cls = CC_XLETTER;
		u->cost = u->len == 2 ? XLETTER2_COST : XLETTER3_COST;
	} else if (cp == 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f)) {
		u->cls = CC_SYMBOL;
		u->cost = JOINER_COST;
	} else if (cp < 0x2070) {
		u->cls = CC_MARK; /* dashes, curly quotes, ellipsis */
	} else if (is_cjk(cp)) {
		u->cls = CC_CJK;
	} else if (cp < 0x2e80 || (cp >= 0xe000 && cp <= 0xf8ff) ||
		   cp == 0xfeff || cp >= 0xfff0) {
		/* Arrows, math, dingbats, private use; past the BMP emoji
		 * and historic scripts. */
		u->cls = CC_SYMBOL;
		u->cost = cp >= 0x10000 ? EMOJI_COST : SYMBOL_COST;
	} else {
		u->cls = CC_XLETTER; /* Yi, Vai, presentation forms, ... */
		u->cost = XLETTER3_COST;
	}
}

/* Cost of a piece of n ASCII letters (n >= 1) after prefix p; caps when
 * all of at least two letters are capitals. */
static int64_t
letters_cost(int64_t n, enum prefix p, int caps)
{
	if (caps)
		return n <= 3 ? TOKEN : TOKEN + (n - 3) * 25;
	switch (p) {
	case PFX_SPACE:
		return n <= 6 ? TOKEN : TOKEN + (n - 6) * 7;
	case PFX_MARK:
		if (n <= 1)
			return TOKEN;
		return n <= 7 ? TOKEN + 20 + (n - 2) * 4
			      : TOKEN + 40 + (n - 7) * 25;
	case PFX_NONE:
		break;
	}
	return n <= 4 ? TOKEN : TOKEN + (n - 4) * 12;
}

/* Cost of a word piece: its ascii letters (upper of them capitals) by
 * length, its other letters (extra) by their bytes; one token at least. */
static int64_t
word_cost(int64_t ascii, int64_t upper, int64_t extra, enum prefix p)
{
	if (ascii > 0)
		extra += letters_cost(ascii, p, upper == ascii && ascii > 1);
	return extra > TOKEN ? extra : TOKEN;
}

/* Cost of a run of n punctuation marks (n >= 1). */
static int64_t
marks_cost(int64_t n)
{
	static const int64_t cost[] = { 0, 100, 100, 110, 125, 165 };

	return n <= 5 ? cost[n] : cost[5] + (n - 5) * 45;
}

/* A walk over UTF-8 text, cut into the pieces a BPE tokenizer makes. */
struct scan {
	const unsigned char *s;
	size_t len;
	size_t i;        /* where the current character starts */
	struct uchar u;  /* the current character */
	int ahead;       /* u holds the character at i already */
	enum prefix pfx; /* what the last piece leaves for a next word */
};

/* Moves past the current character and reads the next: 1 when there is
 * one, 0 at the end. */
static inline int
advance(struct scan *sc)
{
	sc->i += sc->u.len;
	if (sc->i >= sc->len)
		return 0;
	next_char(sc->s + sc->i, sc->len - sc->i, &sc->u);
	return 1;
}

/* A run of blanks: the newlines (with the blanks before them) are one
 * token; of the blanks after the last newline, the last joins a
 * following word or mark. */
static int64_t
blanks_cost(struct scan *sc)
{
	int64_t cost = 0, tail = 0;
	int nl = 0, more;

	do {
		if (sc->u.cls == CC_NEWLINE)
			nl = 1, tail = 0;
		else
			tail++;
		more = advance(sc);
	} while (more && (sc->u.cls == CC_SPACE || sc->u.cls == CC_NEWLINE));
	sc->ahead = more;
	if (nl)
		cost += TOKEN;
	sc->pfx = PFX_NONE;
	if (tail == 0)
		return cost;
	if (!more || sc->u.cls == CC_DIGIT) {
		cost += TOKEN;
	} else {
		if (tail > 1)
			cost += TOKEN;
		sc->pfx = PFX_SPACE;
	}
	return cost;
}

/* A word, cut at camelCase humps. */
static int64_t
word_run_cost(struct scan *sc)
{
	int64_t cost = 0, ascii = 0, upper = 0, extra = 0;
	int lower_last = 0, more;

	do {
		if (sc->u.cls == CC_LETTER) {
			int up = sc->u.cp <= 'Z';

			if (up && lower_last) {
				cost += word_cost(ascii, upper, extra, sc->pfx);
				ascii = upper = extra = 0;
				sc->pfx = PFX_NONE;
			}
			ascii++;
			upper += up;
			lower_last = !up;
		} else {
			extra += sc->u.cost;
			lower_last = 0;
		}
		more = advance(sc);
	} while (more && (sc->u.cls == CC_LETTER || sc->u.cls == CC_XLETTER));
	sc->ahead = more;
	cost += word_cost(ascii, upper, extra, sc->pfx);
	sc->pfx = PFX_NONE;
	return cost;
}

/* A run of digits: one token per three. */
static int64_t
digits_cost(struct scan *sc)
{
	int64_t n = 0;

	while (sc->i < sc->len && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9')
		sc->i++, n++;
	sc->pfx = PFX_NONE;
	return (n + 2) / 3 * TOKEN;
}

/* A run of marks: one mark before a word joins it, unless a space came
 * first; else the run is a piece of its own that takes the newlines
 * after it. */
static int64_t
marks_run_cost(struct scan *sc)
{
	int64_t n = 0, cost;
	int more;

	do {
		n++;
		more = advance(sc);
	} while (more && sc->u.cls == CC_MARK);
	sc->ahead = more;
	if (n == 1 && more && sc->pfx != PFX_SPACE &&
	    (sc->u.cls == CC_LETTER || sc->u.cls == CC_XLETTER)) {
		sc->pfx = PFX_MARK;
		return 0;
	}
	cost = marks_cost(n);
	if (more && sc->u.cls == CC_NEWLINE) {
		while (sc->i < sc->len &&
		       (sc->s[sc->i] == '\n' || sc->s[sc->i] == '\r'))
			sc->i++;
		sc->ahead = 0;
	}
	sc->pfx = PFX_NONE;
	return cost;
}

/* Cost, in hundredths of a token, of UTF-8 text. */
static int64_t
text_cost(const char *text, size_t len)
{
	struct scan sc = { .s = (const unsigned char *)text, .len = len };
	int64_t cost = 0;

	if (text == NULL)
		return 0;
	while (sc.i < sc.len) {
		if (!sc.ahead)
			next_char(sc.s + sc.i, sc.len - sc.i, &sc.u);
		sc.ahead = 0;
		switch (sc.u.cls) {
		case CC_SPACE:
		case CC_NEWLINE:
			cost += blanks_cost(&sc);
			break;
		case CC_LETTER:
		case CC_XLETTER:
			cost += word_run_cost(&sc);
			break;
		case CC_DIGIT:
			cost += digits_cost(&sc);
			break;
		case CC_MARK:
			cost += marks_run_cost(&sc);
			break;
		case CC_CJK:
			cost += CJK_COST;
			sc.i += sc.u.len;
			sc.pfx = PFX_NONE;
			break;
		case CC_SYMBOL:
			cost += sc.u.cost;
			sc.i += sc.u.len;
			sc.pfx = PFX_NONE;
			break;
		}
	}
	return cost;
}

/* Whole tokens of a cost: rounded, and at least one for any cost. */
static int64_t
round_cost(int64_t cost)
{
	if (cost <= 0)
		return 0;
	return cost < TOKEN ? 1 : (cost + TOKEN / 2) / TOKEN;
}

/* Estimates tokens of UTF-8 text. */
int64_t
estimate_tokens(const char *text, size_t len)
{
	return round_cost(text_cost(text, len));
}

/* A member of an object; NULL when o is no object or lacks it. */
static const cJSON *
field(const cJSON *o, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* Whether an object's "type" is t. */
static int
has_type(const cJSON *o, const char *t)
{
	const cJSON *type = field(o, "type");

	return cJSON_IsString(type) && strcmp(type->valuestring, t) == 0;
}

/* Cost of a string item, 0 for anything else. */
static int64_t
str_cost(const cJSON *item)
{
	if (!cJSON_IsString(item) || item->valuestring == NULL)
		return 0;
	return text_cost(item->valuestring, strlen(item->valuestring));
}

/* Cost of a JSON value as a model writes it (tool arguments given as an
 * object): strings and keys by their text, numbers by their digits, about
 * one token per separator ("{\"", "\":", ",\"", "}"). */
static int64_t
json_cost(const cJSON *v, int depth)
{
	const cJSON *c;
	int64_t n;
	char num[32];
	int k;

	if (v == NULL || depth > 32)
		return 0;
	if (cJSON_IsString(v))
		return str_cost(v);
	if (cJSON_IsNumber(v)) {
		k = snprintf(num, sizeof(num), "%.15g", v->valuedouble);
		if (k < 0 || (size_t)k >= sizeof(num))
			return TOKEN;
		return text_cost(num, (size_t)k);
	}
	if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
		return TOKEN; /* true, false, null */
	n = TOKEN;
	cJSON_ArrayForEach (c, v) {
		if (c->string != NULL)
			n += text_cost(c->string, strlen(c->string)) + TOKEN;
		n += json_cost(c, depth + 1) + TOKEN;
	}
	return n;
}

static int64_t content_cost(const cJSON *content, int depth,
			    const struct prompt *pr);

/* Bytes that a base64 text of n characters decodes to. */
static int64_t
base64_bytes(const cJSON *data)
{
	return cJSON_IsString(data) ? (int64_t)strlen(data->valuestring) / 4 * 3
				    : 0;
}

/* Cost of a media part: an image, audio or a file; -1 for any other
 * part. */
static int64_t
media_cost(const cJSON *part, const char *type, const struct prompt *pr)
{
	const cJSON *v, *file, *src;
	int64_t n;

	if (strstr(type, "image") != NULL) {
		v = field(part, "image_url");
		v = cJSON_IsObject(v) ? field(v, "detail")
				      : field(part, "detail");
		if (cJSON_IsString(v) && strcmp(v->valuestring, "low") == 0)
			return IMAGE_LOW_TOKENS * TOKEN;
		return (pr != NULL ? pr->image_tokens : IMAGE_TOKENS) * TOKEN;
	}
	if (strstr(type, "audio") != NULL) {
		v = field(part, "input_audio");
		n = base64_bytes(field(cJSON_IsObject(v) ? v : part, "data"));
		return (n / AUDIO_BYTES_PER_TOKEN + 1) * TOKEN;
	}
	if (strcmp(type, "file") == 0 || strcmp(type, "input_file") == 0 ||
	    strcmp(type, "document") == 0) {
		file = field(part, "file");
		if (!cJSON_IsObject(file))
			file = part;
		src = field(part, "source"); /* Anthropic's document */
		if (cJSON_IsObject(src) && has_type(src, "text"))
			return str_cost(field(src, "data"));
		n = base64_bytes(field(file, "file_data")) +
		    base64_bytes(field(src, "data"));
		if (n > 0)
			return (n / FILE_BYTES_PER_TOKEN + 1) * TOKEN;
		return FILE_ID_TOKENS * TOKEN;
	}
	return -1;
}

/* Cost of one part of a content array: its text in whichever member the
 * part type keeps it (text, thinking, refusal, tool input and results,
 * function arguments and outputs), or a media part's cost; a number is a
 * token id (a prompt given as tokens). */
static int64_t
part_cost(const cJSON *part, int depth, const struct prompt *pr)
{
	static const char *const strs[] = { "text",      "thinking", "refusal",
					    "arguments", "output",   "name",
					    NULL };
	const cJSON *type, *input;
	int64_t n = 0;

	if (cJSON_IsString(part))
		return str_cost(part);
	if (cJSON_IsNumber(part))
		return TOKEN;
	if (cJSON_IsArray(part) && depth < 8)
		return content_cost(part, depth + 1, pr);
	if (!cJSON_IsObject(part) || depth > 8)
		return 0;
	type = field(part, "type");
	if (cJSON_IsString(type) &&
	    (n = media_cost(part, type->valuestring, pr)) >= 0)
		return n;
	n = 0;
	for (int i = 0; strs[i] != NULL; i++)
		n += str_cost(field(part, strs[i]));
	input = field(part, "input");
	if (cJSON_IsObject(input))
		n += json_cost(input, 0);
	return n + content_cost(field(part, "content"), depth + 1, pr);
}

/* Cost of a content value: a string, or an array of parts. */
static int64_t
content_cost(const cJSON *content, int depth, const struct prompt *pr)
{
	const cJSON *part;
	int64_t n = 0;

	if (cJSON_IsString(content))
		return str_cost(content);
	if (!cJSON_IsArray(content))
		return 0;
	cJSON_ArrayForEach (part, content)
		n += part_cost(part, depth, pr);
	return n;
}

/* Cost of a function call ({name, arguments}); its framing counts where
 * its name appears (the first delta of a streamed call). */
static int64_t
call_cost(const cJSON *fn)
{
	const cJSON *name = field(fn, "name");
	int64_t n = str_cost(field(fn, "arguments"));

	if (cJSON_IsString(name))
		n += TOOL_CALL_OVERHEAD * TOKEN + str_cost(name);
	return n;
}

/* Cost of the function calls of a chat message or delta, the legacy
 * function_call included. */
static int64_t
calls_cost(const cJSON *m)
{
	const cJSON *call;
	int64_t n = 0;

	cJSON_ArrayForEach (call, field(m, "tool_calls"))
		n += call_cost(field(call, "function"));
	return n + call_cost(field(m, "function_call"));
}

/* Cost of a list of chat messages (or Responses input items), with the
 * framing of each and the priming of the reply. */
static int64_t
messages_cost(const cJSON *msgs, const struct prompt *pr)
{
	const cJSON *m, *name, *type;
	int64_t n = 0, media;

	if (!cJSON_IsArray(msgs))
		return content_cost(msgs, 0, pr);
	cJSON_ArrayForEach (m, msgs) {
		n += MESSAGE_OVERHEAD * TOKEN;
		if (!cJSON_IsObject(m)) {
			n += content_cost(m, 0, pr);
			continue;
		}
		n += content_cost(field(m, "content"), 0, pr);
		name = field(m, "name");
		if (cJSON_IsString(name))
			n += NAME_OVERHEAD * TOKEN + str_cost(name);
		n += calls_cost(m);
		/* Responses items: function_call, function_call_output, and
		 * media given as an item of their own. */
		n += str_cost(field(m, "arguments"));
		n += str_cost(field(m, "output"));
		type = field(m, "type");
		if (cJSON_IsString(type) &&
		    (media = media_cost(m, type->valuestring, pr)) > 0)
			n += media;
	}
	return n + REPLY_PRIMING * TOKEN;
}

/* Cost of what a request sends the model besides its messages: tool and
 * function definitions, response schemas, a predicted output, tool
 * choice; all reach the model as text. */
static int64_t
definitions_cost(const cJSON *req)
{
	static const char *const members[] = {
		"tools", "functions",   "response_format", "prediction",
		"text",  "tool_choice", "function_call",   NULL,
	};
	const cJSON *v;
	int64_t n = 0;

	for (int i = 0; members[i] != NULL; i++)
		if ((v = field(req, members[i])) != NULL &&
		    (cJSON_IsArray(v) || cJSON_IsObject(v)))
			n += json_cost(v, 0);
	return n;
}

/* Worst image costs above IMAGE_TOKENS, by model name prefix: OpenAI's
 * mini models charge images by a multiple of their size. */
static const struct {
	const char *prefix;
	int64_t tokens;
} image_costs[] = {
	{ "gpt-4o-mini", 2833 + 5667 * 8 }, /* 85 + 170 per tile, x33.3 */
	{ "gpt-4.1-nano", 3779 },           /* 1536 patches x 2.46 */
	{ "o4-mini", 2642 },                /* 1536 patches x 1.72 */
	{ "gpt-4.1-mini", 2488 },           /* 1536 patches x 1.62 */
};

/* The worst cost of an image for a model. */
static int64_t
image_tokens(const char *model)
{
	for (size_t i = 0;
	     model != NULL && i < sizeof image_costs / sizeof image_costs[0];
	     i++)
		if (strncmp(model, image_costs[i].prefix,
			    strlen(image_costs[i].prefix)) == 0)
			return image_costs[i].tokens;
	return IMAGE_TOKENS;
}

/* Estimates the prompt of a request body. */
int64_t
estimate_prompt(const cJSON *req, enum wire w, const char *model)
{
	const struct prompt pr = { image_tokens(model) };
	int64_t n = 0;

	switch (w) {
	case WIRE_OPENAI_CHAT:
		n = messages_cost(field(req, "messages"), &pr) +
		    definitions_cost(req);
		break;
	case WIRE_ANTHROPIC:
		n = content_cost(field(req, "system"), 0, &pr) +
		    messages_cost(field(req, "messages"), &pr) +
		    definitions_cost(req);
		break;
	case WIRE_OPENAI_RESPONSES:
		n = str_cost(field(req, "instructions")) +
		    messages_cost(field(req, "input"), &pr) +
		    definitions_cost(req);
		break;
	case WIRE_OPENAI_COMPLETIONS:
		n = content_cost(field(req, "prompt"), 0, &pr) +
		    str_cost(field(req, "suffix"));
		break;
	case WIRE_OPENAI_EMBEDDINGS:
		n = content_cost(field(req, "input"), 0, &pr);
		break;
	}
	return round_cost(n);
}

/* Cost of the text members of a chat message or delta: content, reasoning
 * (DeepSeek's and Qwen's reasoning_content, or reasoning where a router
 * sends only that), refusal and calls. */
static int64_t
message_output(const cJSON *m)
{
	const cJSON *rc = field(m, "reasoning_content");
	int64_t n = 0;

	if (!cJSON_IsObject(m))
		return 0;
	n += content_cost(field(m, "content"), 0, NULL);
	n += str_cost(cJSON_IsString(rc) ? rc : field(m, "reasoning"));
	n += str_cost(field(m, "refusal"));
	return n + calls_cost(m);
}

/* Cost of an Anthropic content block (a body's content item, or the
 * content_block that starts a streamed block): text, thinking, and a tool
 * call's framing, name and input. */
static int64_t
anthropic_block(const cJSON *b)
{
	const cJSON *in = field(b, "input");
	int64_t n = 0;

	if (!cJSON_IsObject(b))
		return 0;
	n += str_cost(field(b, "text"));
	n += str_cost(field(b, "thinking"));
	if (has_type(b, "tool_use") || has_type(b, "server_tool_use")) {
		n += TOOL_CALL_OVERHEAD * TOKEN + str_cost(field(b, "name"));
		/* A streamed block starts with an empty input. */
		if (cJSON_IsObject(in) && in->child != NULL)
			n += json_cost(in, 0);
	}
	return n;
}

/* Cost of a Responses API output item: message parts, a function call,
 * reasoning summaries and text. */
static int64_t
responses_item(const cJSON *item)
{
	int64_t n = 0;

	if (!cJSON_IsObject(item))
		return 0;
	if (has_type(item, "function_call"))
		n += call_cost(item);
	n += content_cost(field(item, "content"), 0, NULL);
	n += content_cost(field(item, "summary"), 0, NULL);
	return n;
}

/* Cost of the output of a Responses API body or stream event. In a stream
 * only the deltas count (text, refusal, function arguments, reasoning),
 * plus a function call's framing and name when its item is added; the
 * .done events and response.completed repeat what the deltas carried. */
static int64_t
responses_output(const cJSON *obj)
{
	const cJSON *item;
	int64_t n = 0;

	/* Audio deltas are base64, not text. */
	if (has_type(obj, "response.audio.delta"))
		return 0;
	if (has_type(obj, "response.output_item.added")) {
		item = field(obj, "item");
		return has_type(item, "function_call") ? call_cost(item) : 0;
	}
	n += str_cost(field(obj, "delta"));
	cJSON_ArrayForEach (item, field(obj, "output"))
		n += responses_item(item);
	return n;
}

/* Cost of the output of an Anthropic body or stream event: a stream's
 * content_block_start and content_block_delta, or a body's content. */
static int64_t
anthropic_output(const cJSON *obj)
{
	const cJSON *delta = field(obj, "delta"), *item;
	int64_t n = 0;

	if (cJSON_IsObject(delta)) {
		n += str_cost(field(delta, "text"));
		n += str_cost(field(delta, "partial_json"));
		n += str_cost(field(delta, "thinking"));
	}
	n += anthropic_block(field(obj, "content_block"));
	cJSON_ArrayForEach (item, field(obj, "content"))
		n += anthropic_block(item);
	return n;
}

/* Estimates the output text of a body or stream event. */
int64_t
estimate_output(const cJSON *obj, enum wire w)
{
	const cJSON *c;
	int64_t n = 0;

	if (!cJSON_IsObject(obj))
		return 0;
	switch (w) {
	case WIRE_OPENAI_CHAT:
	case WIRE_OPENAI_COMPLETIONS:
		cJSON_ArrayForEach (c, field(obj, "choices")) {
			n += str_cost(field(c, "text"));
			n += message_output(field(c, "delta"));
			n += message_output(field(c, "message"));
		}
		break;
	case WIRE_ANTHROPIC:
		n = anthropic_output(obj);
		break;
	case WIRE_OPENAI_RESPONSES:
		n = responses_output(obj);
		break;
	case WIRE_OPENAI_EMBEDDINGS:
		break;
	}
	return round_cost(n);
}
