/*
 * fuzz_json.c - json.c's byte-level helpers against cJSON, on any bytes.
 *
 * Input: a byte of options (which text to read as an integer), then the
 * text. json_depth() is the nesting cJSON finds in whatever it parses; on
 * an object
 * cJSON parses exactly, json_member_next() steps through the same members
 * in the same order, each name matched by json_name_is() (ASCII names
 * without an escaped NUL)
 * and each value span parsing to the same value, and json_object_end()
 * finds the closing brace. json_parse_int() reads what strtoll() reads,
 * from the digits alone.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"

/* The nesting of a parsed value. */
static int
tree_depth(const cJSON *v)
{
	const cJSON *it;
	int max = 0, d;

	if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
		return 0;
	cJSON_ArrayForEach (it, v)
		if ((d = tree_depth(it)) > max)
			max = d;
	return max + 1;
}

/* Whether a name is printable ASCII, which json_name_is() matches. */
static int
ascii_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* Whether c is one of JSON's blanks. */
static int
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Whether the text has a byte below 0x20 outside strings other than
 * JSON's four blanks: cJSON skips them as blanks, json.c refuses the
 * text (body.c then refuses the body). */
static int
control_outside_strings(const char *s, size_t len)
{
	int in_string = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
		} else if (c == '"') {
			in_string = 1;
		} else if (c < 0x20 && !blank(c)) {
			return 1;
		}
	}
	return 0;
}

/* Checks the member walk over an object. */
static void
check_members(const char *s, size_t len, const cJSON *obj)
{
	struct json_span name, value;
	const cJSON *it = obj->child;
	size_t pos = 0;
	long end;
	int rc;

	while ((rc = json_member_next(s, len, &pos, &name, &value)) == 1) {
		cJSON *v;

		FUZZ_CHECK(it != NULL, "more members than cJSON finds");
		FUZZ_CHECK(name.start <= name.end && name.end < len &&
				   value.start < value.end && value.end <= len,
			   "spans out of the text");
		/* cJSON's copy of a name ends at an escaped NUL. */
		if (ascii_name(it->string) &&
		    !json_name_has_nul(s + name.start, name.end - name.start))
			FUZZ_CHECK(json_name_is(s + name.start,
						name.end - name.start,
						it->string),
				   "name '%s' not matched", it->string);
		v = json_parse_exact(s + value.start, value.end - value.start);
		FUZZ_CHECK(v != NULL && fuzz_json_equal(v, it),
			   "the value of '%s' is another: %.*s", it->string,
			   (int)(value.end - value.start), s + value.start);
		cJSON_Delete(v);
		it = it->next;
	}
	FUZZ_CHECK(rc == 0, "the walk failed on an object");
	FUZZ_CHECK(it == NULL, "fewer members than cJSON finds");
	end = json_object_end(s, len);
	FUZZ_CHECK(end >= 0 && s[end] == '}', "no closing brace");
	for (size_t i = (size_t)end + 1; i < len; i++)
		FUZZ_CHECK(blank(s[i]), "text after the closing brace");
}

/* Checks json_parse_int() against strtoll(). */
static void
check_int(const char *s, size_t n)
{
	char text[32], *end;
	int64_t v = 0;
	long long want;
	int rc = json_parse_int(s, n, &v), digits = 1;

	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= '0' && s[i] <= '9') && !(i == 0 && s[i] == '-'))
			digits = 0;
	if (n == 0 || (n == 1 && s[0] == '-') || !digits) {
		FUZZ_CHECK(rc == -1, "'%.*s' read as an integer", (int)n, s);
		return;
	}
	memcpy(text, s, n);
	text[n] = '\0';
	errno = 0;
	want = strtoll(text, &end, 10);
	if (errno == ERANGE) {
		FUZZ_CHECK(rc == -2, "'%s' fits", text);
		return;
	}
	FUZZ_CHECK(rc == 0 && v == want, "'%s' read as %lld (%d)", text,
		   (long long)v, rc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned opt = fuzz_take(&in);
	const char *s = (const char *)in.p;
	int depth = json_depth(s, in.n);
	cJSON *v = json_parse_exact(s, in.n);

	if (v != NULL) {
		FUZZ_CHECK(depth == tree_depth(v), "depth %d, cJSON finds %d",
			   depth, tree_depth(v));
		if (cJSON_IsObject(v) && !control_outside_strings(s, in.n))
			check_members(s, in.n, v);
	}
	cJSON_Delete(v);
	/* At most 23 bytes: text[] holds them. */
	check_int(s, in.n < opt % 24 ? in.n : opt % 24);
	return 0;
}
