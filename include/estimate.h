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

/* Estimated tokens in UTF-8 text. */
int64_t estimate_tokens(const char *text, size_t len);

#endif
