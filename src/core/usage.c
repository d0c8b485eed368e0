/*
 * usage.c - token usage extraction from provider responses.
 *
 * Principle: a count is metered only when it was read exactly. cJSON keeps
 * numbers as doubles, so a count is accepted only when it is an integral,
 * non-negative number below 2^53 (where every integer is exact); a usage
 * object holding any other value in a count is rejected whole, and the
 * request falls back to estimation rather than billing a guess.
 *
 * Where the counts sit (shared docs/wire-formats.md):
 * - OpenAI-shaped chat, completions and embeddings: a top-level "usage", or
 *   "choices[i].usage" (Moonshot streams). prompt_tokens already includes
 *   cached tokens, completion_tokens already includes reasoning tokens.
 *   Cached reads come from prompt_tokens_details.cached_tokens, else
 *   DeepSeek's prompt_cache_hit_tokens, else a top-level cached_tokens
 *   (newer Moonshot).
 * - Responses: "usage" in the body, "response.usage" in stream events, with
 *   input/output_tokens and their *_details.
 * - Anthropic: input_tokens excludes cache reads and writes, so the prompt is
 *   the sum of the three. In a stream, message_start carries the first
 *   counts and each message_delta carries cumulative, possibly partial ones:
 *   every field present replaces the one held, nothing is added up.
 *
 * A stream keeps the last usage seen; a null or missing usage never clears
 * it.
 */
#include <stdlib.h>
#include <string.h>

#include "estimate.h"
#include "json.h"
#include "sse.h"
#include "usage.h"

/* Per-flavor facts, indexed by enum flavor. */
static const struct {
	const char *name;
	int needs_include_usage;
} flavors[FLAVOR__COUNT] = {
	[FLAVOR_OPENAI] = { "openai", 1 },
	[FLAVOR_AZURE] = { "azure", 1 },
	[FLAVOR_ANTHROPIC] = { "anthropic", 0 },
	[FLAVOR_ZHIPU] = { "zhipu", 0 },
	[FLAVOR_DASHSCOPE] = { "dashscope", 1 },
	[FLAVOR_QIANFAN] = { "qianfan", 1 },
	[FLAVOR_BAICHUAN] = { "baichuan", 0 },
	[FLAVOR_YI] = { "yi", 0 },
	[FLAVOR_MOONSHOT] = { "moonshot", 0 },
	[FLAVOR_DEEPSEEK] = { "deepseek", 0 },
};

/* Maps a configured flavor name to its enum; -1 when unknown. */
int
flavor_from_name(const char *name)
{
	int i;

	if (name == NULL)
		return -1;
	for (i = 0; i < FLAVOR__COUNT; i++)
		if (strcmp(name, flavors[i].name) == 0)
			return i;
	return -1;
}

/* Returns the configuration name of f, or "unknown". */
const char *
flavor_name(enum flavor f)
{
	if ((unsigned)f >= FLAVOR__COUNT)
		return "unknown";
	return flavors[f].name;
}

/* Whether f sends stream usage only when include_usage is requested. */
int
flavor_needs_include_usage(enum flavor f)
{
	if ((unsigned)f >= FLAVOR__COUNT)
		return 0;
	return flavors[f].needs_include_usage;
}

/* Returns obj[key] when it is an object, else NULL. */
static const cJSON *
get_object(const cJSON *obj, const char *key)
{
	const cJSON *it;

	it = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsObject(it) ? it : NULL;
}

/* A usage object as read: a cJSON tree, or an object's text (checked by
 * json_valid()). Reading the text sets *unsure where it would have to
 * guess how cJSON reads it: the caller then builds the tree. */
struct uobj {
	const cJSON *tree;
	const char *text; /* '{' to '}' */
	size_t len;
	int *unsure;
	struct text_index *ix; /* the text's members, once stepped over */
};

/* The members of an object's text, stepped over once for all the names
 * looked up in it (a usage object is asked for up to seven). */
#define TEXT_INDEX_MAX 32
struct text_index {
	int built;
	int n;   /* members; -1 when more than fit */
	int nul; /* index of the first name holding a NUL, or n */
	struct json_span name[TEXT_INDEX_MAX], value[TEXT_INDEX_MAX];
};

#define TREE(o) ((struct uobj){ .tree = (o) })

/* Whether o is an object. */
static int
uobj_is(struct uobj o)
{
	return o.tree != NULL || o.text != NULL;
}

/* The value of the first member of text object o named key (as cJSON
 * finds it): 1, or 0 when there is none. */
static int
text_member(struct uobj o, const char *key, struct json_span *v)
{
	struct json_span n;
	size_t pos = 0;
	struct text_index *ix = o.ix;

	if (ix != NULL && !ix->built) {
		ix->built = 1;
		ix->n = 0;
		ix->nul = -1;
		while (json_member_next(o.text, o.len, &pos, &n, v) == 1) {
			if (ix->n == TEXT_INDEX_MAX) {
				ix->n = -1;
				break;
			}
			if (ix->nul < 0 && json_name_has_nul(o.text + n.start,
							     n.end - n.start))
				ix->nul = ix->n;
			ix->name[ix->n] = n;
			ix->value[ix->n++] = *v;
		}
		if (ix->n >= 0 && ix->nul < 0)
			ix->nul = ix->n;
		pos = 0;
	}
	if (ix != NULL && ix->n >= 0) {
		for (int i = 0; i < ix->n; i++) {
			if (i == ix->nul) {
				/* cJSON's copy of this name ends at the NUL. */
				*o.unsure = 1;
				return 0;
			}
			if (json_name_is(o.text + ix->name[i].start,
					 ix->name[i].end - ix->name[i].start,
					 key)) {
				*v = ix->value[i];
				return 1;
			}
		}
		return 0;
	}

	while (json_member_next(o.text, o.len, &pos, &n, v) == 1) {
		const char *name = o.text + n.start;
		size_t len = n.end - n.start;
		if (json_name_has_nul(name, len)) {
			/* cJSON's copy of this name ends at the NUL. */
			*o.unsure = 1;
			return 0;
		}
		if (json_name_is(name, len, key))
			return 1;
	}
	return 0;
}

/* o[key] when it is an object, else no object. */
static struct uobj
uobj_get(struct uobj o, const char *key)
{
	struct uobj r = { .unsure = o.unsure };
	struct json_span v;

	if (o.text == NULL)
		r.tree = o.tree != NULL ? get_object(o.tree, key) : NULL;
	else if (text_member(o, key, &v) && o.text[v.start] == '{') {
		r.text = o.text + v.start;
		r.len = v.end - v.start;
	}
	return r;
}

/* json_count() of o[key]. From the text, only plain digits below 10^15
 * are read; another number is cJSON's to read. */
static int
uobj_count(struct uobj o, const char *key, int64_t *out)
{
	struct json_span v;
	const char *s;
	size_t n;
	int64_t x = 0;

	if (o.text == NULL)
		return json_count(o.tree, key, out);
	if (!text_member(o, key, &v))
		return 0;
	s = o.text + v.start;
	n = v.end - v.start;
	if (n == 4 && memcmp(s, "null", 4) == 0)
		return 0;
	if (*s != '-' && (*s < '0' || *s > '9'))
		return -1; /* no number */
	for (size_t i = 0; i < n; i++) {
		if (n > 15 || s[i] < '0' || s[i] > '9') {
			*o.unsure = 1;
			return 0;
		}
		x = x * 10 + (s[i] - '0');
	}
	*out = x;
	return 1;
}

/* Reads an OpenAI-shaped usage object (chat, completions, embeddings and
 * the providers that copy it); 1 when found, 0 when empty, -1 when bad. */
static int
parse_openai(struct uobj o, struct usage *u)
{
	struct uobj pd, cd;
	int rp, rc, r;

	memset(u, 0, sizeof(*u));
	rp = uobj_count(o, "prompt_tokens", &u->prompt);
	rc = uobj_count(o, "completion_tokens", &u->completion);
	if (rp < 0 || rc < 0)
		return -1;
	if (rp == 0 && rc == 0)
		return 0;
	pd = uobj_get(o, "prompt_tokens_details");
	r = uobj_count(pd, "cached_tokens", &u->cached);
	if (r == 0)
		r = uobj_count(o, "prompt_cache_hit_tokens", &u->cached);
	if (r == 0)
		r = uobj_count(o, "cached_tokens", &u->cached);
	if (r < 0)
		return -1;
	cd = uobj_get(o, "completion_tokens_details");
	if (uobj_count(cd, "reasoning_tokens", &u->reasoning) < 0)
		return -1;
	u->present = 1;
	return 1;
}

/* Reads a Responses usage object; 1, 0 or -1 as parse_openai(). */
static int
parse_responses(struct uobj o, struct usage *u)
{
	struct uobj id, od;
	int ri, ro;

	memset(u, 0, sizeof(*u));
	ri = uobj_count(o, "input_tokens", &u->prompt);
	ro = uobj_count(o, "output_tokens", &u->completion);
	if (ri < 0 || ro < 0)
		return -1;
	if (ri == 0 && ro == 0)
		return 0;
	id = uobj_get(o, "input_tokens_details");
	od = uobj_get(o, "output_tokens_details");
	if (uobj_count(id, "cached_tokens", &u->cached) < 0 ||
	    uobj_count(id, "cache_write_tokens", &u->cache_write) < 0 ||
	    uobj_count(od, "reasoning_tokens", &u->reasoning) < 0)
		return -1;
	u->present = 1;
	return 1;
}

/* Anthropic's counts as sent: input_tokens excludes both cache counts. */
struct anthropic_counts {
	int64_t input;
	int64_t cache_write;
	int64_t cache_read;
	int64_t output;
	int seen; /* how many of the four were present */
};

/* Overrides the counts present in o; 0, or -1 when one is bad. */
static int
anthropic_merge(struct uobj o, struct anthropic_counts *c)
{
	int r[4], i;

	r[0] = uobj_count(o, "input_tokens", &c->input);
	r[1] = uobj_count(o, "cache_creation_input_tokens", &c->cache_write);
	r[2] = uobj_count(o, "cache_read_input_tokens", &c->cache_read);
	r[3] = uobj_count(o, "output_tokens", &c->output);
	for (i = 0; i < 4; i++) {
		if (r[i] < 0)
			return -1;
		c->seen += r[i];
	}
	return 0;
}

/* Normalises Anthropic counts into u. */
static void
anthropic_to_usage(const struct anthropic_counts *c, struct usage *u)
{
	memset(u, 0, sizeof(*u));
	u->prompt = c->input + c->cache_write + c->cache_read;
	u->cached = c->cache_read;
	u->cache_write = c->cache_write;
	u->completion = c->output;
	u->present = 1;
}

/* Splits a normalised Anthropic usage back into the counts as sent. */
static void
anthropic_from_usage(const struct usage *u, struct anthropic_counts *c)
{
	memset(c, 0, sizeof(*c));
	if (!u->present)
		return;
	c->input = u->prompt - u->cached - u->cache_write;
	c->cache_write = u->cache_write;
	c->cache_read = u->cached;
	c->output = u->completion;
}

/* Reads an Anthropic usage object; 1, 0 or -1 as parse_openai(). */
static int
parse_anthropic(struct uobj o, struct usage *u)
{
	struct anthropic_counts c;

	memset(&c, 0, sizeof(c));
	memset(u, 0, sizeof(*u));
	if (anthropic_merge(o, &c) < 0)
		return -1;
	if (c.seen == 0)
		return 0;
	anthropic_to_usage(&c, u);
	return 1;
}

/* Finds the usage object of an OpenAI-shaped body or chunk: the top-level
 * "usage", else the first "choices[i].usage"; NULL when there is none. */
static const cJSON *
find_chat_usage(const cJSON *root)
{
	const cJSON *o, *ch, *it;

	o = get_object(root, "usage");
	if (o != NULL)
		return o;
	ch = cJSON_GetObjectItemCaseSensitive(root, "choices");
	if (!cJSON_IsArray(ch))
		return NULL;
	cJSON_ArrayForEach (it, ch) {
		o = get_object(it, "usage");
		if (o != NULL)
			return o;
	}
	return NULL;
}

/* Reads a usage object o of wire w; 1 when it holds counts, else 0 with
 * *u zeroed. */
static int
usage_from_object(struct uobj o, enum wire w, struct usage *u)
{
	int r = 0;

	memset(u, 0, sizeof(*u));
	if (uobj_is(o) && w == WIRE_ANTHROPIC)
		r = parse_anthropic(o, u);
	else if (uobj_is(o) && w == WIRE_OPENAI_RESPONSES)
		r = parse_responses(o, u);
	else if (uobj_is(o))
		r = parse_openai(o, u);
	if (r != 1) {
		memset(u, 0, sizeof(*u));
		return 0;
	}
	return 1;
}

/* Reads the usage of a whole response body; 1 when found, else 0. */
int
usage_from_body(const cJSON *body, enum wire w, enum flavor f, struct usage *u)
{
	(void)f;
	memset(u, 0, sizeof(*u));
	if (!cJSON_IsObject(body))
		return 0;
	return usage_from_object(
		TREE(w == WIRE_ANTHROPIC || w == WIRE_OPENAI_RESPONSES
			     ? get_object(body, "usage")
			     : find_chat_usage(body)),
		w, u);
}

/* Reads the usage of a whole response body from its text, its top-level
 * "usage" member read in place (an answer's tree costs more to build than
 * the rest of its way through the gateway). */
int
usage_from_text(const char *buf, size_t len, enum wire w, struct usage *u)
{
	int unsure = 0;
	struct json_span v;
	struct text_index ix;
	struct uobj o = { .unsure = &unsure, .ix = &ix };

	memset(u, 0, sizeof(*u));
	if (len == 0 || buf[0] != '{' ||
	    json_valid_member(buf, len, "usage", &v, &unsure) != 1 || unsure ||
	    buf[v.start] != '{')
		return 0;
	o.text = buf + v.start;
	o.len = v.end - v.start;
	ix.built = 0;
	if (!usage_from_object(o, w, u) || unsure) {
		memset(u, 0, sizeof(*u));
		return 0;
	}
	return 1;
}

/* Starts the usage state of one stream. */
void
usage_stream_init(struct usage_stream *st, enum wire w, enum flavor f)
{
	memset(st, 0, sizeof(*st));
	st->wire = w;
	st->flavor = f;
	st->est = estimate_for(NULL);
}

/* Returns the event type: the data's "type" member, else the SSE name. */
static const char *
event_type(const cJSON *root, const char *event)
{
	const cJSON *t;

	t = cJSON_GetObjectItemCaseSensitive(root, "type");
	if (cJSON_IsString(t))
		return t->valuestring;
	return event;
}

/* Handles one Anthropic stream event; returns USAGE_EV_* flags. */
static int
anthropic_event(struct usage_stream *st, const cJSON *root, const char *event)
{
	const char *type = event_type(root, event);
	struct anthropic_counts c;
	const cJSON *o = NULL;
	int flags = 0;

	if (type != NULL && strcmp(type, "message_start") == 0)
		o = get_object(get_object(root, "message"), "usage");
	else if (type != NULL && strcmp(type, "message_delta") == 0)
		o = get_object(root, "usage");
	else if (type != NULL && strcmp(type, "message_stop") == 0)
		flags |= USAGE_EV_DONE;
	if (o != NULL) {
		anthropic_from_usage(&st->last, &c);
		c.seen = 0;
		if (anthropic_merge(TREE(o), &c) == 0 && c.seen > 0) {
			anthropic_to_usage(&c, &st->last);
			flags |= USAGE_EV_HAS_USAGE;
		}
	}
	return flags;
}

/* Handles one Responses stream event; returns USAGE_EV_* flags. */
static int
responses_event(struct usage_stream *st, const cJSON *root, const char *event)
{
	const char *type = event_type(root, event);
	struct usage u;
	const cJSON *o;
	int flags = 0;

	if (type != NULL && (strcmp(type, "response.completed") == 0 ||
			     strcmp(type, "response.incomplete") == 0 ||
			     strcmp(type, "response.failed") == 0))
		flags |= USAGE_EV_DONE;
	o = get_object(get_object(root, "response"), "usage");
	if (o != NULL && parse_responses(TREE(o), &u) == 1) {
		st->last = u;
		flags |= USAGE_EV_HAS_USAGE;
	}
	return flags;
}

/* Handles one OpenAI-shaped stream chunk; returns USAGE_EV_* flags. */
static int
chat_event(struct usage_stream *st, const cJSON *root)
{
	const cJSON *o, *ch;
	struct usage u;
	int flags = 0;

	o = find_chat_usage(root);
	if (o == NULL)
		return 0;
	if (parse_openai(TREE(o), &u) == 1) {
		st->last = u;
		flags |= USAGE_EV_HAS_USAGE;
	}
	ch = cJSON_GetObjectItemCaseSensitive(root, "choices");
	if (cJSON_IsArray(ch) && cJSON_GetArraySize(ch) == 0 &&
	    get_object(root, "usage") != NULL)
		flags |= USAGE_EV_USAGE_ONLY;
	return flags;
}

/* Feeds one SSE event; returns a mask of USAGE_EV_* flags. */
int
usage_stream_event(struct usage_stream *st, const char *event, const char *data,
		   size_t data_len)
{
	cJSON *root;
	int flags;

	if (data == NULL || data_len == 0)
		return 0;
	if (sse_is_done(data, data_len)) {
		st->done = 1;
		return USAGE_EV_DONE;
	}
	root = json_parse_exact(data, data_len);
	if (root == NULL)
		return USAGE_EV_BAD_JSON;
	switch (st->wire) {
	case WIRE_ANTHROPIC:
		flags = anthropic_event(st, root, event);
		break;
	case WIRE_OPENAI_RESPONSES:
		flags = responses_event(st, root, event);
		break;
	case WIRE_OPENAI_CHAT:
	case WIRE_OPENAI_COMPLETIONS:
	case WIRE_OPENAI_EMBEDDINGS:
	default:
		flags = chat_event(st, root);
		break;
	}
	st->text_tokens += estimate_output(root, st->wire, st->est);
	cJSON_Delete(root);
	if (flags & USAGE_EV_DONE)
		st->done = 1;
	return flags;
}

/* Deletes every member named usage of obj: a chunk may repeat one, and
 * cJSON deletes the first of a name. */
static void
delete_usage(cJSON *obj)
{
	while (cJSON_GetObjectItemCaseSensitive(obj, "usage") != NULL)
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "usage");
}

/* Returns data reprinted without its usage members (malloc'd, caller frees
 * with free()), or NULL when data is not a JSON object or memory ran out. */
char *
usage_strip(const char *data, size_t data_len)
{
	cJSON *root, *ch, *it;
	char *out;

	if (data == NULL)
		return NULL;
	root = json_parse_exact(data, data_len);
	if (root == NULL)
		return NULL;
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return NULL;
	}
	delete_usage(root);
	ch = cJSON_GetObjectItemCaseSensitive(root, "choices");
	if (cJSON_IsArray(ch))
		cJSON_ArrayForEach (it, ch)
			if (cJSON_IsObject(it))
				delete_usage(it);
	/* cJSON allocates with malloc unless hooks are installed; none are. */
	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return out;
}
