/*
 * fuzz_bpe.c - token counts of any bytes (bpe.c, estimate_text()).
 *
 * Input: a byte that picks a model's estimator, then the text. In both
 * encodings a count is at most one token per byte, at least one for text
 * that is not empty, the same twice; the model's estimate is its
 * encoding's count, and a reservation never reserves less than it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "estimate.h"
#include "fuzz.h"

static const char *const models[] = { "gpt-4o-mini", "gpt-4",   "claude-3",
				      "qwen-max",    "glm-4",   "unknown",
				      NULL,          "yi-large" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	const struct estimator *e = estimate_for(models[fuzz_take(&in) % 8]);
	const char *s = (const char *)in.p;
	size_t n[2];
	int64_t t;

	for (int enc = 0; enc < 2; enc++) {
		n[enc] = bpe_count((enum bpe_encoding)enc, s, in.n);
		FUZZ_CHECK(n[enc] <= in.n, "%zu tokens in %zu bytes", n[enc],
			   in.n);
		FUZZ_CHECK(in.n == 0 || n[enc] > 0, "no token in %zu bytes",
			   in.n);
		FUZZ_CHECK(bpe_count((enum bpe_encoding)enc, s, in.n) == n[enc],
			   "two counts of the same text");
	}
	t = estimate_text(e, s, in.n);
	FUZZ_CHECK(t == (int64_t)n[e->enc], "estimate %lld, count %zu",
		   (long long)t, n[e->enc]);
	FUZZ_CHECK(estimate_reserve(e, t) >= t, "reserved below the count");
	return 0;
}
