/*
 * json.c - locating top-level members in raw JSON bytes, and reading
 * integers from their digits.
 *
 * cJSON keeps numbers as doubles; where an integer must be exact whatever
 * its size (counts, times, anything that becomes money), it is read from
 * the digits here instead.
 */
#include <string.h>

#include "json.h"

/* Skips white space from i. */
static size_t
skip_ws(const char *b, size_t len, size_t i)
{
	while (i < len &&
	       (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
		i++;
	return i;
}

/* Skips a string starting at its opening quote; returns the index after
 * the closing quote, or len when unterminated. */
static size_t
skip_string(const char *b, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		const char *q = memchr(b + i, '"', len - i);
		if (q == NULL)
			return len;
		i = (size_t)(q - b);
		/* The quote ends the string unless an odd run of backslashes
		 * escapes it. */
		size_t k = i;
		while (k > 0 && b[k - 1] == '\\')
			k--;
		if ((i - k) % 2 == 0)
			return i + 1;
	}
	return len;
}

/* Bytes skip_value() has to look at outside strings. */
static const unsigned char skip_stop[256] = {
	['"'] = 1, ['{'] = 1, ['['] = 1,  ['}'] = 1,  [']'] = 1,
	[','] = 1, [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1,
};

/* Skips one value of any kind; returns the index after it. */
static size_t
skip_value(const char *b, size_t len, size_t i)
{
	int depth = 0;

	if (i < len && b[i] == '"')
		return skip_string(b, len, i);
	for (; i < len; i++) {
		char c;
		while (i < len && !skip_stop[(unsigned char)b[i]])
			i++;
		if (i >= len)
			break;
		c = b[i];
		if (c == '"') {
			i = skip_string(b, len, i) - 1;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return i;
			if (--depth == 0)
				return i + 1;
		} else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' ||
					  c == '\n' || c == '\r')) {
			return i;
		}
	}
	return len;
}

/* The deepest nesting in buf, or -1 when unbalanced. */
int
json_depth(const char *buf, size_t len)
{
	int depth = 0, max = 0;

	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (c == '"') {
			i = skip_string(buf, len, i) - 1;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
		} else if (c == '}' || c == ']') {
			if (--depth < 0)
				return -1;
		}
	}
	return depth == 0 ? max : -1;
}

/* Reads four hex digits. 0 or -1. */
int
json_hex4(const char *s, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (d < 0)
			return -1;
		*v = *v << 4 | (uint32_t)d;
	}
	return 0;
}

/* Whether the raw name (between its quotes) unescapes to key. */
int
json_name_is(const char *raw, size_t n, const char *key)
{
	size_t i = 0;

	for (; i < n; key++) {
		unsigned char c = (unsigned char)raw[i++];
		if (c == '\\') {
			uint32_t u;
			if (i >= n)
				return 0;
			switch (raw[i++]) {
			case 'u':
				/* Names the gateway looks for are ASCII: any
				 * other escape cannot match. */
				if (i + 4 > n || json_hex4(raw + i, &u) != 0 ||
				    u == 0 || u > 0x7f)
					return 0;
				c = (unsigned char)u;
				i += 4;
				break;
			case '"':
				c = '"';
				break;
			case '\\':
				c = '\\';
				break;
			case '/':
				c = '/';
				break;
			default: /* \b \f \n \r \t: control characters */
				return 0;
			}
		}
		if (*key == '\0' || (unsigned char)*key != c)
			return 0;
	}
	return *key == '\0';
}

/* Whether the raw name holds a NUL, which cJSON's names end at: a raw
 * byte, \u0000, or a \u not followed by four hex digits (cJSON reads
 * the code point of such an escape as 0). */
int
json_name_has_nul(const char *raw, size_t n)
{
	uint32_t u;

	for (size_t i = 0; i < n; i++) {
		if (raw[i] == '\0')
			return 1;
		if (raw[i] != '\\' || i + 1 == n)
			continue;
		if (raw[i + 1] == 'u' &&
		    (i + 6 > n || json_hex4(raw + i + 2, &u) != 0 || u == 0))
			return 1;
		i++; /* the escaped character */
	}
	return 0;
}

/* Steps to the next top-level member. */
int
json_member_next(const char *buf, size_t len, size_t *pos,
		 struct json_span *name, struct json_span *value)
{
	size_t i = *pos;

	if (i == 0) {
		i = skip_ws(buf, len, 0);
		if (i >= len || buf[i] != '{')
			return -1;
		i = skip_ws(buf, len, i + 1);
		if (i < len && buf[i] == '}') {
			*pos = i + 1;
			return 0;
		}
	} else {
		i = skip_ws(buf, len, i);
		if (i < len && buf[i] == '}') {
			*pos = i + 1;
			return 0;
		}
		if (i >= len || buf[i] != ',')
			return -1;
		i = skip_ws(buf, len, i + 1);
	}
	if (i >= len || buf[i] != '"')
		return -1;
	name->start = i + 1;
	i = skip_string(buf, len, i);
	if (i > len || i == name->start)
		return -1;
	name->end = i - 1;
	i = skip_ws(buf, len, i);
	if (i >= len || buf[i] != ':')
		return -1;
	value->start = skip_ws(buf, len, i + 1);
	value->end = skip_value(buf, len, value->start);
	if (value->end <= value->start)
		return -1;
	*pos = value->end;
	return 1;
}

/* Finds a top-level member's value span. */
int
json_member_span(const char *buf, size_t len, const char *key, size_t *vstart,
		 size_t *vend)
{
	struct json_span n, v;
	size_t pos = 0;

	while (json_member_next(buf, len, &pos, &n, &v) == 1) {
		if (json_name_is(buf + n.start, n.end - n.start, key)) {
			*vstart = v.start;
			*vend = v.end;
			return 0;
		}
	}
	return -1;
}

/* Offset of the closing brace of the top-level object, or -1. */
long
json_object_end(const char *buf, size_t len)
{
	size_t i = skip_ws(buf, len, 0), end;

	if (i >= len || buf[i] != '{')
		return -1;
	end = skip_value(buf, len, i);
	if (end == 0 || end > len || buf[end - 1] != '}')
		return -1;
	return (long)(end - 1);
}

/* Parses the integer text s[0..n) (an optional minus, then digits only). */
int
json_parse_int(const char *s, size_t n, int64_t *v)
{
	int neg = n > 0 && s[0] == '-';
	int64_t x = 0;

	if (n == (size_t)neg)
		return -1;
	/* Text first: a long number with a letter is no integer (-1). */
	for (size_t i = (size_t)neg; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	/* A negative number is summed negatively, so -2^63 fits. */
	for (size_t i = (size_t)neg; i < n; i++) {
		int d = neg ? '0' - s[i] : s[i] - '0';

		if (__builtin_mul_overflow(x, 10, &x) ||
		    __builtin_add_overflow(x, d, &x))
			return -2;
	}
	*v = x;
	return 0;
}

/* Reads a top-level integer member from its digits. */
int
json_member_int(const char *buf, size_t len, const char *key, int64_t *v)
{
	size_t vs, ve;

	if (json_member_span(buf, len, key, &vs, &ve) != 0)
		return 0;
	if (ve - vs == 4 && memcmp(buf + vs, "null", 4) == 0)
		return 0;
	return json_parse_int(buf + vs, ve - vs, v) == 0 ? 1 : -1;
}

/* Parses exactly one JSON value. */
cJSON *
json_parse_exact(const char *buf, size_t len)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);

	if (root == NULL)
		return NULL;
	while (end < buf + len &&
	       (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (end != buf + len) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* Reads obj[key] as a count from a parsed tree. */
int
json_count(const cJSON *obj, const char *key, int64_t *out)
{
	const cJSON *it;
	double d;

	if (!cJSON_IsObject(obj))
		return 0;
	it = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (it == NULL || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsNumber(it))
		return -1;
	/* Below 2^53 every integer is exact in cJSON's double; anything
	 * else (a fraction, a huge number) is refused, not rounded. */
	d = it->valuedouble;
	if (!(d >= 0.0 && d < JSON_EXACT_LIMIT) || (double)(int64_t)d != d)
		return -1;
	*out = (int64_t)d;
	return 1;
}

cJSON *
json_int_item(int64_t v)
{
	char digits[INT_TEXT_MAX + 1], *d;

	digits[INT_TEXT_MAX] = '\0';
	d = int_text(digits, v);
	return cJSON_CreateRaw(d);
}

/* Copies the body with its edits applied. */
int
json_edit_members(const char *buf, size_t len, struct json_edit *e, int n,
		  struct buf *out)
{
	struct json_span name, value;
	size_t pos = 0, first;
	long end = json_object_end(buf, len);
	int empty;

	if (end < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		e[i].present =
			json_member_span(buf, len, e[i].name, &e[i].span.start,
					 &e[i].span.end) == 0;
		if (!e[i].present)
			e[i].span.start = e[i].span.end = (size_t)end;
	}
	/* Replacements in the order they appear, then additions in the
	 * order given (a stable insertion sort: there are a handful). */
	for (int i = 1; i < n; i++) {
		struct json_edit t = e[i];
		int j = i;
		for (; j > 0 && e[j - 1].span.start > t.span.start; j--)
			e[j] = e[j - 1];
		e[j] = t;
	}
	for (int i = 0; i < n; i++) {
		if (!e[i].present)
			continue;
		buf_add(out, buf + pos, e[i].span.start - pos);
		buf_str(out, e[i].value);
		pos = e[i].span.end;
	}
	buf_add(out, buf + pos, (size_t)end - pos);
	first = 0;
	empty = json_member_next(buf, len, &first, &name, &value) == 0;
	for (int i = 0; i < n; i++) {
		if (e[i].present)
			continue;
		if (!empty)
			buf_add(out, ",", 1);
		empty = 0;
		buf_printf(out, "\"%s\":%s", e[i].name, e[i].value);
	}
	buf_add(out, buf + end, len - (size_t)end);
	return out->failed ? -1 : 0;
}

/* Deepest nesting json_valid() follows; deeper text is left to cJSON. */
#define VALID_DEPTH 256

static size_t valid_value(const char *b, size_t len, size_t i, int depth);

/* What json_valid_member() looks for among the top-level members. */
struct valid_want {
	const char *key;
	struct json_span *value;
	int found;
	int *unsure;
};

/* Bytes a string holds as they are: not a quote, a backslash or a control
 * byte. */
static const unsigned char plain_byte[256] = {
	[0x20 ... 0x21] = 1, /* '"' is 0x22 */
	[0x23 ... 0x5b] = 1, /* '\\' is 0x5c */
	[0x5d ... 0xff] = 1,
};

/* Checks a string from its opening quote: the index after its closing
 * quote, or 0. No control byte, escapes as RFC 8259 writes them, and a
 * \u surrogate only as a high and low pair (cJSON refuses a lone one). */
static size_t
valid_string(const char *b, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		unsigned char c;
		uint32_t u, lo;

		while (i < len && plain_byte[(unsigned char)b[i]])
			i++;
		if (i >= len)
			return 0;
		c = (unsigned char)b[i];
		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (c != '\\')
			continue;
		if (++i >= len)
			return 0;
		if (strchr("\"\\/bfnrt", b[i]) != NULL && b[i] != '\0')
			continue;
		if (b[i] != 'u' || i + 4 >= len ||
		    json_hex4(b + i + 1, &u) != 0)
			return 0;
		i += 4;
		if (u >= 0xdc00 && u <= 0xdfff)
			return 0;
		if (u >= 0xd800 && u <= 0xdbff) {
			if (i + 6 >= len || b[i + 1] != '\\' ||
			    b[i + 2] != 'u' || json_hex4(b + i + 3, &lo) != 0 ||
			    lo < 0xdc00 || lo > 0xdfff)
				return 0;
			i += 6;
		}
	}
	return 0;
}

/* Checks a number: the index after it, or 0. */
static size_t
valid_number(const char *b, size_t len, size_t i)
{
	size_t d, start = i;

	if (i < len && b[i] == '-')
		i++;
	if (i < len && b[i] == '0')
		i++;
	else if (i < len && b[i] >= '1' && b[i] <= '9')
		while (i < len && b[i] >= '0' && b[i] <= '9')
			i++;
	else
		return 0;
	if (i < len && b[i] == '.') {
		for (d = ++i; i < len && b[i] >= '0' && b[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	if (i < len && (b[i] == 'e' || b[i] == 'E')) {
		if (++i < len && (b[i] == '+' || b[i] == '-'))
			i++;
		for (d = i; i < len && b[i] >= '0' && b[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	/* cJSON reads at most 63 bytes of a number. */
	return i - start <= 63 ? i : 0;
}

/* Checks the members of an object or the elements of an array from its
 * opening bracket: the index after its closing one, or 0. */
static size_t
valid_container(const char *b, size_t len, size_t i, int depth,
		struct valid_want *w)
{
	char close = b[i] == '{' ? '}' : ']';
	size_t name = 0, name_end = 0;

	if (depth >= VALID_DEPTH)
		return 0;
	i = skip_ws(b, len, i + 1);
	if (i < len && b[i] == close)
		return i + 1;
	for (;;) {
		if (close == '}') {
			name = i + 1;
			if (i >= len || b[i] != '"' ||
			    (i = valid_string(b, len, i)) == 0)
				return 0;
			name_end = i - 1;
			i = skip_ws(b, len, i);
			if (i >= len || b[i] != ':')
				return 0;
			i = skip_ws(b, len, i + 1);
		}
		if (w != NULL && !w->found && close == '}') {
			/* cJSON's copy of a name ends at a NUL. */
			if (json_name_has_nul(b + name, name_end - name))
				*w->unsure = 1;
			else if (json_name_is(b + name, name_end - name,
					      w->key)) {
				w->found = 1;
				w->value->start = i;
			}
		}
		if ((i = valid_value(b, len, i, depth + 1)) == 0)
			return 0;
		if (w != NULL && w->found == 1) {
			w->value->end = i;
			w->found = 2;
		}
		i = skip_ws(b, len, i);
		if (i < len && b[i] == close)
			return i + 1;
		if (i >= len || b[i] != ',')
			return 0;
		i = skip_ws(b, len, i + 1);
	}
}

/* Checks one value at i: the index after it, or 0. */
static size_t
valid_value(const char *b, size_t len, size_t i, int depth)
{
	static const char *const words[] = { "true", "false", "null" };

	if (i >= len)
		return 0;
	switch (b[i]) {
	case '{':
	case '[':
		return valid_container(b, len, i, depth, NULL);
	case '"':
		return valid_string(b, len, i);
	case 't':
	case 'f':
	case 'n':
		for (int w = 0; w < 3; w++) {
			size_t n = strlen(words[w]);
			if (n <= len - i && memcmp(b + i, words[w], n) == 0)
				return i + n;
		}
		return 0;
	default:
		return valid_number(b, len, i);
	}
}

int
json_valid_member(const char *buf, size_t len, const char *key,
		  struct json_span *value, int *unsure)
{
	struct valid_want w = { key, value, 0, unsure };
	size_t i = skip_ws(buf, len, 0);

	*unsure = 0;
	if (i >= len || buf[i] != '{')
		return -1;
	i = valid_container(buf, len, i, 0, &w);
	if (i == 0 || skip_ws(buf, len, i) != len)
		return -1;
	return w.found != 0;
}

/* Whether buf is one JSON value, blanks around it allowed. */
int
json_valid(const char *buf, size_t len)
{
	size_t i = valid_value(buf, len, skip_ws(buf, len, 0), 0);

	return i != 0 && skip_ws(buf, len, i) == len;
}
