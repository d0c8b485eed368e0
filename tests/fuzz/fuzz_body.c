/*
 * fuzz_body.c - the request body reader (body.c) and the edit the
 * gateway makes before forwarding a body (json.c's json_edit_members, as
 * provider.c uses it).
 *
 * Input: a byte of options (which edits), then the client's body. A body
 * admission refuses has a reason; one it accepts is read as cJSON reads
 * it (model, stream, caps, choices), and the body with the upstream model,
 * stream_options and caps written over it is still one JSON object that
 * body_read() accepts, with exactly those values, every other member as
 * it was and no member lost or added but the edited ones.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "buf.h"
#include "fuzz.h"
#include "json.h"

#define MAX_DEPTH 64 /* max_json_depth's default */

/* Whether name is one of the edits. */
static int
edited(const struct json_edit *e, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(e[i].name, name) == 0)
			return 1;
	return 0;
}

/* Checks what body_read() read against the tree. */
static void
check_read(const struct body *b)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(b->json, "model");

	FUZZ_CHECK(cJSON_IsString(m) ? b->model == m->valuestring
				     : b->model == NULL,
		   "model not the tree's");
	FUZZ_CHECK(b->stream == cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
					b->json, "stream")),
		   "stream not the tree's");
	for (int c = 0; c < BODY_CAP__COUNT; c++)
		FUZZ_CHECK(b->caps[c] >= 0 && b->caps[c] <= BODY_CAP_MAX,
			   "cap %lld", (long long)b->caps[c]);
	FUZZ_CHECK(b->choices >= 1 && b->choices <= BODY_CHOICES_MAX,
		   "choices %lld", (long long)b->choices);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned opt = fuzz_take(&in);
	const char *s = (const char *)in.p;
	struct json_edit e[2 + BODY_CAP__COUNT];
	struct buf out = BUF_INIT;
	struct body b, b2;
	struct body_error err;
	const cJSON *it, *o2;
	char cap[24];
	int n = 0, depth = json_depth(s, in.n), members = 0, members2 = 0;

	if (depth < 0 || depth > MAX_DEPTH)
		return 0;
	if (body_read(s, in.n, &b, &err) != 0) {
		FUZZ_CHECK(err.msg[0] != '\0', "refused without a reason");
		return 0;
	}
	check_read(&b);

	e[n++] = (struct json_edit){ .name = "model",
				     .value = "\"up\\\"stream\\u00e9\"" };
	if (opt & 1)
		e[n++] = (struct json_edit){
			.name = "stream_options",
			.value = "{\"include_usage\":true}",
		};
	snprintf(cap, sizeof(cap), "%u", 1 + (opt >> 4) * 1000);
	for (int c = 0; c < BODY_CAP__COUNT; c++)
		if (opt & (2 << c))
			e[n++] = (struct json_edit){ .name = body_cap_name(c),
						     .value = cap };
	FUZZ_CHECK(json_edit_members(s, in.n, e, n, &out) == 0,
		   "an accepted body not edited");
	FUZZ_CHECK(body_read(out.data, out.len, &b2, &err) == 0,
		   "the edited body is refused: %s: %s", err.msg, out.data);
	FUZZ_CHECK(b2.model != NULL &&
			   strcmp(b2.model, "up\"stream\xc3\xa9") == 0,
		   "model not replaced: %s", out.data);
	FUZZ_CHECK(!(opt & 1) || b2.include_usage, "include_usage not set: %s",
		   out.data);
	for (int c = 0; c < BODY_CAP__COUNT; c++)
		FUZZ_CHECK(!(opt & (2 << c)) ||
				   b2.caps[c] ==
					   (int64_t)strtoll(cap, NULL, 10),
			   "%s not replaced: %s", body_cap_name(c), out.data);
	cJSON_ArrayForEach (it, b.json) {
		members++;
		if (edited(e, n, it->string))
			continue;
		o2 = cJSON_GetObjectItemCaseSensitive(b2.json, it->string);
		FUZZ_CHECK(o2 != NULL && fuzz_json_equal(it, o2),
			   "member '%s' changed: %s", it->string, out.data);
	}
	cJSON_ArrayForEach (it, b2.json) {
		members2++;
		if (!edited(e, n, it->string))
			continue;
		/* An edited member that was absent is added. */
		if (cJSON_GetObjectItemCaseSensitive(b.json, it->string) ==
		    NULL)
			members++;
	}
	FUZZ_CHECK(members == members2, "%d members became %d: %s", members,
		   members2, out.data);
	cJSON_Delete(b.json);
	cJSON_Delete(b2.json);
	buf_free(&out);
	return 0;
}
