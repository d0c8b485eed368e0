/*
 * utf8.h - where bytes stop being UTF-8, for the text the gateway writes
 * out of what clients sent (log lines, metric labels); how wide text is on
 * a terminal, for tollctl's tables.
 */
#ifndef TOLLGATE_UTF8_H
#define TOLLGATE_UTF8_H

#include <stddef.h>

/* The length (1 to 4) of the valid UTF-8 sequence that starts at s, a
 * NUL-terminated string, or 0 when the bytes there are not one: a stray
 * continuation byte, an overlong form, a surrogate, past U+10FFFF, or cut
 * short by the end of the string. */
size_t utf8_len(const char *s);

/* The columns a terminal gives the NUL-terminated string s: two for each
 * wide or fullwidth character (CJK ideographs, Hangul syllables, kana,
 * fullwidth forms, emoji), none for a combining mark, a zero-width or
 * control character, one for any other character and for each byte that
 * is not UTF-8. */
size_t utf8_width(const char *s);

#endif
