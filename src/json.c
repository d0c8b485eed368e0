/*
 * json.c - locating top-level members in raw JSON bytes.
 */
#include <string.h>

#include "json.h"

/* Skips white space from i. */
static size_t
skip_ws(const char *b, size_t len, size_t i)
{
	while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' ||
			   b[i] == '\r'))
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
json_member_span(const char *buf, size_t len, const char *key,
		 size_t *vstart, size_t *vend)
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
