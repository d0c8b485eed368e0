/*
 * utf8.h - where bytes stop being UTF-8, for the text the gateway writes
 * out of what clients sent (log lines, metric labels).
 */
#ifndef TOLLGATE_UTF8_H
#define TOLLGATE_UTF8_H

#include <stddef.h>

/* The length (1 to 4) of the valid UTF-8 sequence that starts at s, a
 * NUL-terminated string, or 0 when the bytes there are not one: a stray
 * continuation byte, an overlong form, a surrogate, past U+10FFFF, or cut
 * short by the end of the string. */
size_t utf8_len(const char *s);

#endif
