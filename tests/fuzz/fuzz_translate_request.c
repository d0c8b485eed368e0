/*
 * fuzz_translate_request.c - requests translated both ways (translate.c):
 * OpenAI chat -> Anthropic Messages and back.
 *
 * Input: a byte of options (direction, include_usage, whether a hard
 * quota's cap replaces the request's own, which upstream model), then the
 * client's body. As in the gateway, only a body that admission accepts
 * (json_depth within the default limit, body_read) is translated. A
 * translation is NULL with a reason, or a body that admission would read
 * the same way again: one JSON object, no member twice, the upstream
 * model, and the cap when one was imposed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "fuzz.h"
#include "json.h"
#include "translate.h"

#define MAX_DEPTH 64 /* max_json_depth's default */

static const char *const models[] = {
	"claude-3-5-haiku-20241022",
	"gpt-4o-mini",
	"m\"od\\el \xe4\xb8\xad\x01",
	"",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned opt = fuzz_take(&in);
	const char *model = models[(opt >> 3) % 4];
	int64_t cap = (opt & 4) ? 1 + (int64_t)(opt >> 5) * 1000 : 0;
	const char *s = (const char *)in.p;
	struct body b, out_b;
	struct body_error e;
	char *out, *cause = NULL;
	size_t len = 0;
	int depth = json_depth(s, in.n);

	if (depth < 0 || depth > MAX_DEPTH || body_read(s, in.n, &b, &e) != 0)
		return 0;
	if (opt & 1)
		out = tr_messages_to_chat(b.json, model, (opt & 2) != 0, cap,
					  &len, &cause);
	else
		out = tr_chat_to_messages(b.json, model, cap, &len, &cause);
	cJSON_Delete(b.json);
	if (out == NULL) {
		FUZZ_CHECK(cause != NULL && *cause != '\0',
			   "refused without a reason");
		free(cause);
		return 0;
	}
	FUZZ_CHECK(cause == NULL, "a body and a reason: %s", cause);
	FUZZ_CHECK(strlen(out) == len, "length %zu for %zu bytes", len,
		   strlen(out));
	FUZZ_CHECK(body_read(out, len, &out_b, &e) == 0,
		   "the translation is not read back: %s (%s): %s", e.msg,
		   e.param, out);
	FUZZ_CHECK(out_b.model != NULL && strcmp(out_b.model, model) == 0,
		   "model %s, not %s", out_b.model ? out_b.model : "(none)",
		   model);
	FUZZ_CHECK(cap == 0 || body_cap(&out_b) == cap,
		   "cap %lld, not %lld: %s", (long long)body_cap(&out_b),
		   (long long)cap, out);
	cJSON_Delete(out_b.json);
	free(out);
	return 0;
}
