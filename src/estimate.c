/*
 * estimate.c - token estimation from text.
 */
#include "estimate.h"

/* Decodes one UTF-8 sequence at s; returns its length (1 on bad bytes). */
static size_t
utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0 && len >= 2) {
		*cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
		return 2;
	}
	if ((s[0] & 0xf0) == 0xe0 && len >= 3) {
		*cp = (uint32_t)(s[0] & 0x0f) << 12 |
		      (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		return 3;
	}
	if ((s[0] & 0xf8) == 0xf0 && len >= 4) {
		*cp = (uint32_t)(s[0] & 0x07) << 18 |
		      (uint32_t)(s[1] & 0x3f) << 12 |
		      (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
		return 4;
	}
	*cp = 0xfffd;
	return 1;
}

/* Whether a code point is a CJK ideograph, kana, hangul or full-width
 * form: about one token each. */
static int
is_cjk(uint32_t cp)
{
	return (cp >= 0x2e80 && cp <= 0x9fff) || (cp >= 0xac00 && cp <= 0xd7af) ||
	       (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xff00 && cp <= 0xffef) ||
	       (cp >= 0x20000 && cp <= 0x2fa1f);
}

/* Estimates tokens: words by length, punctuation and CJK one each. */
int64_t
estimate_tokens(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	int64_t tokens = 0, word = 0;
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = utf8_next(s + i, len - i, &cp);
		int alnum = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
			    (cp >= '0' && cp <= '9') ||
			    (cp >= 0x80 && !is_cjk(cp));

		i += n;
		if (alnum) {
			word++;
			continue;
		}
		if (word > 0) {
			tokens += (word + 3) / 4;
			word = 0;
		}
		if (is_cjk(cp))
			tokens++;
		else if (cp != ' ' && cp != '\n' && cp != '\t' && cp != '\r')
			tokens++;
	}
	if (word > 0)
		tokens += (word + 3) / 4;
	return tokens;
}
