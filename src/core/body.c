/*
 * body.c - one reading of a request body.
 *
 * Principle: what the gateway checks, routes, meters and reserves must be
 * what the provider serves. JSON lets readers disagree in a few places,
 * and each is closed here rather than guessed at:
 *
 *  - the same member twice: cJSON takes the first, most providers the
 *    last. Refused in every object, names compared unescaped ("mod\u0065l"
 *    is "model"), so nested members the estimate reads cannot hide either;
 *  - names that differ only in case: Go's encoding/json matches them
 *    regardless of case (and takes U+212A and U+017F for k and s). At the
 *    top level and in stream_options, where the gateway reads members, a
 *    name that folds to one of those it reads must be spelled exactly so;
 *  - a NUL in a name, where cJSON's copy of the name ends: escaped, a
 *    raw byte (cJSON takes control bytes in strings) or a \u escape
 *    without four hex digits (which cJSON reads as a NUL);
 *  - bytes after the object, which some readers ignore and others refuse;
 *  - a member of the wrong type, which a lenient reader coerces ("stream":
 *    "true", "max_tokens": "100"): the members the gateway reads must
 *    have their documented types.
 *
 * What passes has one meaning for every reader, so the client's bytes can
 * go upstream as written, with only the gateway's own edits (provider.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "json.h"

/* Top-level members the gateway reads: routing and metering (model,
 * stream), the worst case (caps, choices) and the prompt estimate. */
static const char *const read_members[] = {
	"model",
	"stream",
	"stream_options",
	"max_tokens",
	"max_completion_tokens",
	"max_output_tokens",
	"n",
	"best_of",
	"messages",
	"prompt",
	"input",
	"system",
	"instructions",
	"tools",
	"functions",
	"response_format",
	"prediction",
	"suffix",
	"text",
	NULL,
};

/* Members of stream_options the gateway reads. */
static const char *const stream_option_members[] = { "include_usage", NULL };

/* Objects with more members than this are checked for duplicates by
 * sorting their names rather than comparing each pair. */
#define SMALL_OBJECT 16

/* Where in the body the walk is: a member path, kept as text. */
struct path {
	char text[128];
	size_t len;
};

/* Appends ".name" (or "name" at the start), or "[index]" when name is
 * NULL, to the path; what does not fit is left out. */
static size_t
path_push(struct path *p, const char *name, int index)
{
	size_t was = p->len;
	struct ftext t = { p->text, p->len, sizeof p->text, NULL, NULL };

	if (name != NULL) {
		if (p->len > 0)
			ft_add(&t, ".", 1);
		ft_str(&t, name);
	} else {
		ft_add(&t, "[", 1);
		ft_int(&t, index);
		ft_add(&t, "]", 1);
	}
	p->len = t.len;
	return was;
}

static void
path_pop(struct path *p, size_t was)
{
	p->len = was;
	p->text[was] = '\0';
}

/* Fills the error; returns -1. */
static int __attribute__((format(printf, 3, 4)))
fail(struct body_error *e, const char *param, const char *fmt, ...)
{
	va_list ap;

	snprintf(e->param, sizeof e->param, "%s", param);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* Refuses a member named twice in the object at path p. */
static int
duplicate(struct path *p, const char *name, struct body_error *e)
{
	size_t was = path_push(p, name, 0);
	int rc = fail(
		e, p->text,
		"The request body has the member '%.100s' more than once (at %s); send each member once.",
		name, p->text);

	path_pop(p, was);
	return rc;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Finds a name the object has twice; NULL when none. *oom on failure. */
static const char *
twice(const cJSON *obj, int n, int *oom)
{
	const char *small[SMALL_OBJECT], **names = small, *found = NULL;
	const cJSON *c;
	int i = 0;

	if (n > SMALL_OBJECT) {
		names = malloc((size_t)n * sizeof *names);
		if (names == NULL) {
			*oom = 1;
			return NULL;
		}
	}
	cJSON_ArrayForEach (c, obj)
		names[i++] = c->string != NULL ? c->string : "";
	if (n <= SMALL_OBJECT) {
		for (i = 0; i < n && found == NULL; i++)
			for (int j = i + 1; j < n; j++)
				if (strcmp(names[i], names[j]) == 0) {
					found = names[i];
					break;
				}
		return found;
	}
	qsort(names, (size_t)n, sizeof *names, cmp_names);
	for (i = 1; i < n && found == NULL; i++)
		if (strcmp(names[i - 1], names[i]) == 0)
			found = names[i];
	free(names);
	return found;
}

/* Refuses any object under v that names a member twice. */
static int
no_duplicates(const cJSON *v, struct path *p, struct body_error *e)
{
	const cJSON *c;
	const char *dup;
	int n = 0, oom = 0, i = 0;

	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return 0;
	cJSON_ArrayForEach (c, v)
		n++;
	if (cJSON_IsObject(v) && n > 1) {
		dup = twice(v, n, &oom);
		if (oom)
			return fail(e, "", "Out of memory.");
		if (dup != NULL)
			return duplicate(p, dup, e);
	}
	cJSON_ArrayForEach (c, v) {
		size_t was;
		int rc;

		if (!cJSON_IsObject(c) && !cJSON_IsArray(c)) {
			i++;
			continue;
		}
		if (cJSON_IsObject(v))
			was = path_push(p, c->string != NULL ? c->string : "",
					0);
		else
			was = path_push(p, NULL, i);
		rc = no_duplicates(c, p, e);
		path_pop(p, was);
		if (rc != 0)
			return rc;
		i++;
	}
	return 0;
}

/* Folds one character of s as Go's encoding/json compares names: ASCII
 * letters to lower case, U+212A KELVIN SIGN to k, U+017F LONG S to s.
 * Returns the folded character (other bytes as they are) and advances. */
static int
fold_next(const unsigned char **s)
{
	const unsigned char *p = *s;

	if (p[0] == 0xe2 && p[1] == 0x84 && p[2] == 0xaa) {
		*s += 3;
		return 'k';
	}
	if (p[0] == 0xc5 && p[1] == 0xbf) {
		*s += 2;
		return 's';
	}
	*s += 1;
	return p[0] >= 'A' && p[0] <= 'Z' ? p[0] - 'A' + 'a' : p[0];
}

/* Whether a and b are the same name to a case-blind reader. */
int
body_names_fold_equal(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a;
	const unsigned char *y = (const unsigned char *)b;

	while (*x != '\0' && *y != '\0')
		if (fold_next(&x) != fold_next(&y))
			return 0;
	return *x == '\0' && *y == '\0';
}

/* Refuses a member of obj named, to a case-blind reader, like one of
 * names but not exactly so. */
static int
no_lookalikes(const cJSON *obj, const char *const *names, const char *where,
	      struct body_error *e)
{
	const cJSON *c;
	char param[sizeof e->param];

	cJSON_ArrayForEach (c, obj) {
		for (int i = 0; names[i] != NULL; i++) {
			if (c->string == NULL ||
			    strcmp(c->string, names[i]) == 0 ||
			    !body_names_fold_equal(c->string, names[i]))
				continue;
			snprintf(param, sizeof param, "%s%s%s", where,
				 where[0] != '\0' ? "." : "", c->string);
			return fail(
				e, param,
				"The request body has a member '%.120s'; the member is spelled '%s'.",
				param, names[i]);
		}
	}
	return 0;
}

/* Refuses a top-level name written with a NUL. */
static int
no_nul_names(const char *buf, size_t len, struct body_error *e)
{
	struct json_span n, v;
	size_t pos = 0;
	int rc;

	while ((rc = json_member_next(buf, len, &pos, &n, &v)) == 1)
		if (json_name_has_nul(buf + n.start, n.end - n.start))
			return fail(
				e, "",
				"A member name in the request body contains \\u0000, which is not allowed.");
	return rc == 0 ? 0
		       : fail(e, "",
			      "We could not parse the JSON body of your request.");
}

/* Reads a boolean member: 0 or 1 into *out (0 when absent or null). */
static int
read_bool(const cJSON *obj, const char *name, const char *param, int *out,
	  struct body_error *e)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

	*out = cJSON_IsTrue(it);
	if (it == NULL || cJSON_IsNull(it) || cJSON_IsBool(it))
		return 0;
	return fail(e, param, "'%s' must be a boolean (true or false).", param);
}

/* Reads an integer member from lo to hi into *out (0 when absent). */
static int
read_int(const cJSON *obj, const char *name, int64_t lo, int64_t hi,
	 int64_t *out, struct body_error *e)
{
	int rc = json_count(obj, name, out);

	if (rc == 0) {
		*out = 0;
		return 0;
	}
	if (rc == 1 && *out >= lo && *out <= hi)
		return 0;
	return fail(e, name, "'%s' must be an integer from %lld to %lld.", name,
		    (long long)lo, (long long)hi);
}

/* Reads the members the gateway interprets. */
static int
read_members_of(struct body *b, struct body_error *e)
{
	const cJSON *j = b->json, *model, *so;
	int64_t n, best_of;

	model = cJSON_GetObjectItemCaseSensitive(j, "model");
	if (model != NULL && !cJSON_IsNull(model) && !cJSON_IsString(model))
		return fail(e, "model", "'model' must be a string.");
	b->model = cJSON_IsString(model) ? model->valuestring : NULL;
	if (read_bool(j, "stream", "stream", &b->stream, e) != 0)
		return -1;
	so = cJSON_GetObjectItemCaseSensitive(j, "stream_options");
	if (so != NULL && !cJSON_IsNull(so) && !cJSON_IsObject(so))
		return fail(e, "stream_options",
			    "'stream_options' must be an object.");
	if (read_bool(so, "include_usage", "stream_options.include_usage",
		      &b->include_usage, e) != 0)
		return -1;
	for (int c = 0; c < BODY_CAP__COUNT; c++)
		if (read_int(j, body_cap_name(c), 1, BODY_CAP_MAX, &b->caps[c],
			     e) != 0)
			return -1;
	if (read_int(j, "n", 1, BODY_CHOICES_MAX, &n, e) != 0 ||
	    read_int(j, "best_of", 1, 20, &best_of, e) != 0)
		return -1;
	b->choices = n > best_of ? n : best_of;
	if (b->choices == 0)
		b->choices = 1;
	return 0;
}

/* Reads a body once. */
int
body_read(const char *buf, size_t len, struct body *b, struct body_error *e)
{
	struct path p = { .len = 0 };
	const cJSON *so;

	memset(b, 0, sizeof *b);
	b->json = json_parse_exact(buf, len);
	if (!cJSON_IsObject(b->json))
		goto fail_parse;
	if (no_nul_names(buf, len, e) != 0 ||
	    no_duplicates(b->json, &p, e) != 0 ||
	    no_lookalikes(b->json, read_members, "", e) != 0)
		goto fail;
	so = cJSON_GetObjectItemCaseSensitive(b->json, "stream_options");
	if (cJSON_IsObject(so) &&
	    no_lookalikes(so, stream_option_members, "stream_options", e) != 0)
		goto fail;
	if (read_members_of(b, e) != 0)
		goto fail;
	return 0;
fail_parse:
	fail(e, "",
	     "We could not parse the JSON body of your request. The body must be a JSON object.");
fail:
	cJSON_Delete(b->json);
	memset(b, 0, sizeof *b);
	return -1;
}

/* The largest cap the body sets. */
int64_t
body_cap(const struct body *b)
{
	int64_t max = 0;

	for (int c = 0; c < BODY_CAP__COUNT; c++)
		if (b->caps[c] > max)
			max = b->caps[c];
	return max;
}

/* The member name of a cap. */
const char *
body_cap_name(enum body_cap c)
{
	static const char *const names[BODY_CAP__COUNT] = {
		[BODY_MAX_TOKENS] = "max_tokens",
		[BODY_MAX_COMPLETION_TOKENS] = "max_completion_tokens",
		[BODY_MAX_OUTPUT_TOKENS] = "max_output_tokens",
	};
	return names[c];
}
