/*
 * estimate.h - token counts estimated from text, for when a provider
 * reports none (stream cut, client gone, provider silent).
 *
 * Not a tokenizer: a fast approximation of OpenAI's cl100k (o200k is about
 * the same for English) that cuts text as byte-level BPE tokenizers do and
 * charges each piece its average cost. English, code and JSON land within
 * a few percent; Chinese, Japanese and Korean count one token per
 * character, cl100k's figure, which runs up to half high for o200k and the
 * Chinese providers' own tokenizers. No I/O, no allocation.
 */
#ifndef TOLLGATE_ESTIMATE_H
#define TOLLGATE_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "tollgate.h"

/* Estimated tokens in len bytes of UTF-8 text; a byte that is not valid
 * UTF-8 counts as one token. */
int64_t estimate_tokens(const char *text, size_t len);

/* Estimated prompt tokens of a request body in wire format w for model
 * (the upstream model; NULL when unknown): the text of its messages (or
 * prompt, or input), earlier tool calls and results, tool and function
 * definitions, response schemas and a predicted output, with 4 tokens per
 * message and 3 for the reply (as OpenAI documents); token ids given as
 * numbers count one each. Media count at their worst: an image what the
 * largest costs for the model (85 at detail "low"), audio by its length,
 * a file by its size. */
int64_t estimate_prompt(const cJSON *request, enum wire w, const char *model);

/* Estimated tokens of the output text in a response body or in one stream
 * event (content, reasoning, refusals, tool calls: name, arguments and a
 * few tokens of framing). Cumulative fields (Yi's top-level "content") and
 * events that repeat the deltas (Responses .done events) are not counted,
 * so a stream's events can be summed. */
int64_t estimate_output(const cJSON *obj, enum wire w);

#endif
