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
		if (b[i] == '\\')
			i++;
		else if (b[i] == '"')
			return i + 1;
	}
	return len;
}

/* Skips one value of any kind; returns the index after it. */
static size_t
skip_value(const char *b, size_t len, size_t i)
{
	int depth = 0;

	if (i < len && b[i] == '"')
		return skip_string(b, len, i);
	for (; i < len; i++) {
		char c = b[i];
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

/* Finds a top-level member's value span. */
int
json_member_span(const char *buf, size_t len, const char *key, size_t *vstart,
		 size_t *vend)
{
	size_t klen = strlen(key), i = skip_ws(buf, len, 0);

	if (i >= len || buf[i] != '{')
		return -1;
	i++;
	for (;;) {
		size_t ks, ke;
		i = skip_ws(buf, len, i);
		if (i >= len || buf[i] != '"')
			return -1;
		ks = i + 1;
		i = skip_string(buf, len, i);
		ke = i - 1;
		i = skip_ws(buf, len, i);
		if (i >= len || buf[i] != ':')
			return -1;
		i = skip_ws(buf, len, i + 1);
		if (ke - ks == klen && memcmp(buf + ks, key, klen) == 0) {
			*vstart = i;
			*vend = skip_value(buf, len, i);
			return 0;
		}
		i = skip_ws(buf, len, skip_value(buf, len, i));
		if (i >= len || buf[i] != ',')
			return -1;
		i++;
	}
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
	for (size_t i = (size_t)neg; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (__builtin_mul_overflow(x, 10, &x) ||
		    __builtin_add_overflow(x, s[i] - '0', &x))
			return -2;
	}
	*v = neg ? -x : x;
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
