/*
 * fuzz_translate_response.c - whole answers and error bodies translated
 * both ways (translate_resp.c).
 *
 * Input: a byte of options (direction, the HTTP status of an error), then
 * the upstream's body. An answer becomes a JSON object or NULL with a
 * reason, and the counts a client reads from it (prompt, completion,
 * cached) are the upstream's whenever usage.c read those exactly. Any
 * bytes as an error body become an error of the client's shape.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"
#include "translate.h"
#include "usage.h"

static const int statuses[] = { 400, 401, 403, 404, 413, 429, 500, 529,
				402, 422, 503, 0,   200, 302, 600, -1 };

/* A string member, or NULL. */
static const char *
str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Checks an error body of the client's shape. */
static void
check_error(const char *out, size_t len, int to_chat)
{
	cJSON *o, *e;

	FUZZ_CHECK(out != NULL, "no error body");
	FUZZ_CHECK(strlen(out) == len, "length %zu for %zu bytes", len,
		   strlen(out));
	o = json_parse_exact(out, len);
	e = cJSON_GetObjectItemCaseSensitive(o, "error");
	FUZZ_CHECK(cJSON_IsObject(e), "no error object: %s", out);
	FUZZ_CHECK(str(e, "message") != NULL && str(e, "type") != NULL,
		   "no message or type: %s", out);
	if (!to_chat)
		FUZZ_CHECK(str(o, "type") != NULL &&
				   strcmp(str(o, "type"), "error") == 0,
			   "not of type error: %s", out);
	cJSON_Delete(o);
}

/* Whether a usage's counts are ones a translation carries exactly. */
static int
carried(const struct usage *u)
{
	return u->prompt + u->completion < (int64_t)1 << 53 &&
	       u->cached + u->cache_write <= u->prompt;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned opt = fuzz_take(&in);
	int to_chat = opt & 1, status = statuses[(opt >> 1) % 16];
	const char *s = (const char *)in.p;
	cJSON *resp = json_parse_exact(s, in.n), *o;
	char *out, *cause = NULL;
	size_t len = 0;
	struct usage before, after;

	if (resp != NULL) {
		if (to_chat)
			out = tr_messages_resp_to_chat(resp, "m", 1700000000,
						       &len, &cause);
		else
			out = tr_chat_resp_to_messages(resp, "m", &len, &cause);
		if (out == NULL) {
			FUZZ_CHECK(cause != NULL && *cause != '\0',
				   "refused without a reason");
		} else {
			FUZZ_CHECK(cause == NULL, "a body and a reason");
			FUZZ_CHECK(strlen(out) == len, "length %zu for %zu",
				   len, strlen(out));
			o = json_parse_exact(out, len);
			FUZZ_CHECK(cJSON_IsObject(o), "not an object: %s", out);
			if (usage_from_body(
				    resp,
				    to_chat ? WIRE_ANTHROPIC : WIRE_OPENAI_CHAT,
				    to_chat ? FLAVOR_ANTHROPIC : FLAVOR_OPENAI,
				    &before) &&
			    carried(&before)) {
				FUZZ_CHECK(usage_from_body(
						   o,
						   to_chat ? WIRE_OPENAI_CHAT
							   : WIRE_ANTHROPIC,
						   to_chat ? FLAVOR_OPENAI
							   : FLAVOR_ANTHROPIC,
						   &after),
					   "usage lost: %s", out);
				FUZZ_CHECK(before.prompt == after.prompt &&
						   before.completion ==
							   after.completion &&
						   before.cached ==
							   after.cached,
					   "usage %lld/%lld/%lld became "
					   "%lld/%lld/%lld: %s",
					   (long long)before.prompt,
					   (long long)before.completion,
					   (long long)before.cached,
					   (long long)after.prompt,
					   (long long)after.completion,
					   (long long)after.cached, out);
			}
			cJSON_Delete(o);
		}
		free(out);
		free(cause);
		cJSON_Delete(resp);
	}
	out = to_chat ? tr_error_to_chat(status, s, in.n, &len)
		      : tr_error_to_messages(status, s, in.n, &len);
	check_error(out, len, to_chat);
	free(out);
	return 0;
}
