/*
 * estimate.h - token counts estimated from bodies, for reservations and
 * for when a provider reports none (stream cut, client gone, provider
 * silent).
 *
 * Text is counted with OpenAI's BPE encodings (bpe.h): exactly for OpenAI's
 * models, and for providers whose tokenizer is not public with the closest
 * public encoding, a prompt's count raised by a measured safety factor
 * (estimate.c lists them). No I/O; no allocation beyond bpe.h's.
 */
#ifndef TOLLGATE_ESTIMATE_H
#define TOLLGATE_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "bpe.h"
#include "tollgate.h"

/*
 * Safety factors, in percent of o200k_base's count, by which a prompt is
 * raised when its worst case is reserved, for models whose tokenizer is
 * not public. Measured on the providers' recorded answers in
 * ../shared/fixtures/providers whose text explains their count: reported
 * output tokens over o200k_base's count of the same text, summed over a
 * provider's answers (test_estimate prints each), rounded up to 5%:
 * DashScope 25/20, Moonshot 34/24, Baichuan 26/16, Yi 37/23, Qianfan 11/7.
 * Zhipu, DeepSeek and Anthropic answers do not carry their text's count
 * (reasoning or system prompts are in it): they take the highest. The
 * answers are short, so the figures include framing tokens and run high
 * (OpenAI's own, exact in o200k_base, measure 116% to 200% the same way);
 * high is the safe side for a reservation.
 */
#define DASHSCOPE_PERCENT 125
#define MOONSHOT_PERCENT  145
#define BAICHUAN_PERCENT  165
#define YI_PERCENT        165
#define QIANFAN_PERCENT   160
#define HIGHEST_PERCENT   165

/* How a model's text is counted. */
struct estimator {
	const char *prefix;    /* model names it applies to */
	enum bpe_encoding enc; /* the encoding, or the closest public one */
	int percent;           /* a reserved prompt's count scaled by this */
	int exact;             /* enc is the model's own tokenizer */
	int64_t image_tokens;  /* the most an image in a prompt costs */
};

/* The estimator for a model name (an upstream model); never NULL. */
const struct estimator *estimate_for(const char *model);

/* A prompt's count as its worst case reserves it: scaled by e's
 * percent, rounded up. */
int64_t estimate_reserve(const struct estimator *e, int64_t tokens);

/* Tokens in len bytes of text under e's encoding, unscaled. */
int64_t estimate_text(const struct estimator *e, const char *text, size_t len);

/* Estimated prompt tokens of a request body in wire format w, counted
 * with e (the upstream model's estimator), unscaled: the text of its
 * messages (or prompt, or input), earlier tool calls and results, tool and
 * function definitions, response schemas and a predicted output, with 4
 * tokens per message and 3 for the reply (as OpenAI documents); token ids
 * given as numbers count one each. Media count at their worst: an image
 * e->image_tokens (85 at detail "low"), audio by its length, a file by
 * its size. */
int64_t estimate_prompt(const cJSON *request, enum wire w,
			const struct estimator *e);

/* Estimated tokens of the output text in a response body or in one stream
 * event, counted with e's encoding, unscaled (content, reasoning, refusals,
 * tool calls: name, arguments and a few tokens of framing). Cumulative
 * fields (Yi's top-level "content") and events that repeat the deltas
 * (Responses .done events) are not counted, so a stream's events can be
 * summed. */
int64_t estimate_output(const cJSON *obj, enum wire w,
			const struct estimator *e);

#endif
