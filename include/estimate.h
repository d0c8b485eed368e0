/*
 * estimate.h - token counts estimated from text, for when a provider
 * reports none (stream cut, client gone, provider silent).
 *
 * Not a tokenizer: a fast approximation that is close for English (about
 * four characters of a word per token, punctuation apart) and for Chinese
 * (about one token per CJK character). No I/O.
 */
#ifndef TOLLGATE_ESTIMATE_H
#define TOLLGATE_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "usage.h"

/* Estimated tokens in UTF-8 text. */
int64_t estimate_tokens(const char *text, size_t len);

/* Estimated prompt tokens of a request body in wire format w: the text of
 * its messages (or prompt, or input) with a small overhead per message. */
int64_t estimate_prompt(const cJSON *request, enum wire w);

/* Estimated tokens of the output text in a response body or in one stream
 * event (content, reasoning, refusals, tool-call arguments). Cumulative
 * fields (Yi's top-level "content") are not counted. */
int64_t estimate_output(const cJSON *obj, enum wire w);

#endif
