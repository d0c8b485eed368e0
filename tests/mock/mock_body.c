/*
 * mock_body.c - how the mock reads a request body: as cJSON does, or as a
 * permissive provider does when told to.
 *
 * Principle: cJSON keeps every member of an object, and its lookups find
 * the first of two members with the same name. Many providers' parsers
 * (Go's encoding/json, Python's json, most JavaScript) keep the last one
 * instead, and Go's also matches member names to the fields it knows
 * without regard to case. A gateway that reads a body one way and forwards
 * it to a provider that reads it the other way checks one request and
 * sends another; the knobs last_member_wins and fold_names make the mock
 * that other reader. The body is parsed by cJSON as always, then the tree
 * is rewritten so that its lookups find what the permissive reader would:
 * the earlier members of a name are removed (and, with folding, names are
 * replaced by their folded spelling). Names are compared after unescaping,
 * as cJSON stores them.
 */
#include "mock.h"

/* Where a member sits: what fold_names applies to. */
enum body_level {
	LEVEL_TOP,            /* the members of the body's object */
	LEVEL_STREAM_OPTIONS, /* the members of the top-level stream_options */
	LEVEL_NESTED,         /* anywhere else */
};

/*
 * Returns a new copy of a member name folded as Go's encoding/json matches
 * names to the fields it knows: ASCII letters in lower case, U+212A KELVIN
 * SIGN as 'k' and U+017F LATIN SMALL LETTER LONG S as 's' (the two
 * non-ASCII runes whose simple case folding reaches an ASCII letter), every
 * other byte as it is. Caller frees with cJSON_free.
 */
static char *
fold_name(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, o = 0;
	char *out = cJSON_malloc(n + 1);

	if (out == NULL)
		abort();
	while (i < n) {
		if (p[i] == 0xe2 && p[i + 1] == 0x84 && p[i + 2] == 0xaa) {
			out[o++] = 'k';
			i += 3;
		} else if (p[i] == 0xc5 && p[i + 1] == 0xbf) {
			out[o++] = 's';
			i += 2;
		} else if (p[i] >= 'A' && p[i] <= 'Z') {
			out[o++] = (char)(p[i++] - 'A' + 'a');
		} else {
			out[o++] = (char)p[i++];
		}
	}
	out[o] = '\0';
	return out;
}

/* Returns whether member b has the name of member a, whose name is already
 * folded when fold is set. */
static int
same_name(const cJSON *a, const cJSON *b, int fold)
{
	char *f;
	int eq;

	if (!fold)
		return strcmp(a->string, b->string) == 0;
	f = fold_name(b->string);
	eq = strcmp(a->string, f) == 0;
	cJSON_free(f);
	return eq;
}

/*
 * Rewrites v, found at level, as the permissive reader sees it: in each
 * object where names are compared (everywhere with last_member_wins; at
 * the top level and in stream_options with fold_names, which also renames
 * those members to their folded spelling), only the last member of a name
 * stays.
 */
static void
normalize(cJSON *v, enum body_level level)
{
	int fold = srv.cfg.mc_fold_names && level != LEVEL_NESTED;
	enum body_level below;
	cJSON *c, *next, *d;
	char *f;

	if (cJSON_IsArray(v)) {
		cJSON_ArrayForEach (c, v)
			normalize(c, LEVEL_NESTED);
		return;
	}
	if (!cJSON_IsObject(v))
		return;
	if (fold || srv.cfg.mc_last_member_wins) {
		for (c = v->child; c != NULL; c = next) {
			next = c->next;
			if (c->string == NULL)
				continue;
			if (fold && !(c->type & cJSON_StringIsConst)) {
				f = fold_name(c->string);
				cJSON_free(c->string);
				c->string = f;
			}
			for (d = c->next; d != NULL; d = d->next)
				if (d->string != NULL && same_name(c, d, fold))
					break;
			if (d != NULL)
				cJSON_Delete(cJSON_DetachItemViaPointer(v, c));
		}
	}
	cJSON_ArrayForEach (c, v) {
		below = LEVEL_NESTED;
		if (level == LEVEL_TOP && c->string != NULL &&
		    strcmp(c->string, "stream_options") == 0)
			below = LEVEL_STREAM_OPTIONS;
		normalize(c, below);
	}
}

/* Parses a model request's body the way the knobs say the provider reads
 * it; NULL when it is not JSON. Caller deletes. */
cJSON *
body_parse(const char *body, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(body, len);

	if (root != NULL &&
	    (srv.cfg.mc_last_member_wins || srv.cfg.mc_fold_names))
		normalize(root, LEVEL_TOP);
	return root;
}
