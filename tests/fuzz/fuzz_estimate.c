/*
 * fuzz_estimate.c - prompt and output estimates of any JSON body
 * (estimate.c), for every wire.
 *
 * Input: a byte that picks the wire and a model's estimator, then the
 * body. Estimates are never negative, whatever the shape, and the same
 * twice; a reservation never reserves less than the estimate.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "estimate.h"
#include "fuzz.h"
#include "json.h"

static const char *const models[] = { "gpt-4o-mini", "gpt-4", "claude-3",
				      "unknown" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned opt = fuzz_take(&in);
	enum wire w = (enum wire)(opt % 5);
	const struct estimator *e = estimate_for(models[(opt / 5) % 4]);
	cJSON *body = json_parse_exact((const char *)in.p, in.n);
	int64_t p, o;

	if (body == NULL)
		return 0;
	p = estimate_prompt(body, w, e);
	o = estimate_output(body, w, e);
	FUZZ_CHECK(p >= 0 && o >= 0, "prompt %lld, output %lld", (long long)p,
		   (long long)o);
	FUZZ_CHECK(estimate_prompt(body, w, e) == p &&
			   estimate_output(body, w, e) == o,
		   "two estimates of the same body");
	FUZZ_CHECK(estimate_reserve(e, p) >= p, "reserved below the estimate");
	cJSON_Delete(body);
	return 0;
}
