/*
 * utf8.c - one UTF-8 sequence at a time (utf8.h), by the table of RFC 3629
 * section 4: each lead byte narrows what its second byte may be.
 */
#include "utf8.h"

size_t
utf8_len(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	/* A NUL ends the string: it fails these tests before anything past
	 * it is read. */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* Code points whose width is not one: East Asian Wide and Fullwidth (two
 * columns, Unicode's EastAsianWidth.txt, emoji blocks taken whole), and
 * what takes none (controls, the combining marks of the common blocks,
 * zero-width and format characters, variation selectors). Sorted, so a
 * binary search finds a code point's range. */
static const struct width_range {
	unsigned lo, hi;
	unsigned char width;
} width_ranges[] = {
	{ 0x0000, 0x001f, 0 },   { 0x007f, 0x009f, 0 },
	{ 0x00ad, 0x00ad, 0 },   { 0x0300, 0x036f, 0 },
	{ 0x0483, 0x0489, 0 },   { 0x0591, 0x05bd, 0 },
	{ 0x0610, 0x061a, 0 },   { 0x064b, 0x065f, 0 },
	{ 0x1100, 0x115f, 2 },   { 0x1160, 0x11ff, 0 },
	{ 0x1ab0, 0x1aff, 0 },   { 0x1dc0, 0x1dff, 0 },
	{ 0x200b, 0x200f, 0 },   { 0x2028, 0x202e, 0 },
	{ 0x2060, 0x2064, 0 },   { 0x20d0, 0x20ff, 0 },
	{ 0x231a, 0x231b, 2 },   { 0x2329, 0x232a, 2 },
	{ 0x23e9, 0x23ec, 2 },   { 0x23f0, 0x23f0, 2 },
	{ 0x23f3, 0x23f3, 2 },   { 0x25fd, 0x25fe, 2 },
	{ 0x2614, 0x2615, 2 },   { 0x2648, 0x2653, 2 },
	{ 0x267f, 0x267f, 2 },   { 0x2693, 0x2693, 2 },
	{ 0x26a1, 0x26a1, 2 },   { 0x26aa, 0x26ab, 2 },
	{ 0x26bd, 0x26be, 2 },   { 0x26c4, 0x26c5, 2 },
	{ 0x26ce, 0x26ce, 2 },   { 0x26d4, 0x26d4, 2 },
	{ 0x26ea, 0x26ea, 2 },   { 0x26f2, 0x26f3, 2 },
	{ 0x26f5, 0x26f5, 2 },   { 0x26fa, 0x26fa, 2 },
	{ 0x26fd, 0x26fd, 2 },   { 0x2705, 0x2705, 2 },
	{ 0x270a, 0x270b, 2 },   { 0x2728, 0x2728, 2 },
	{ 0x274c, 0x274c, 2 },   { 0x274e, 0x274e, 2 },
	{ 0x2753, 0x2755, 2 },   { 0x2757, 0x2757, 2 },
	{ 0x2795, 0x2797, 2 },   { 0x27b0, 0x27b0, 2 },
	{ 0x27bf, 0x27bf, 2 },   { 0x2b1b, 0x2b1c, 2 },
	{ 0x2b50, 0x2b50, 2 },   { 0x2b55, 0x2b55, 2 },
	{ 0x2e80, 0x303e, 2 },   { 0x3041, 0x3098, 2 },
	{ 0x3099, 0x309a, 0 },   { 0x309b, 0x3247, 2 },
	{ 0x3250, 0x4dbf, 2 },   { 0x4e00, 0xa4cf, 2 },
	{ 0xa960, 0xa97f, 2 },   { 0xac00, 0xd7a3, 2 },
	{ 0xf900, 0xfaff, 2 },   { 0xfe00, 0xfe0f, 0 },
	{ 0xfe10, 0xfe19, 2 },   { 0xfe20, 0xfe2f, 0 },
	{ 0xfe30, 0xfe6f, 2 },   { 0xfeff, 0xfeff, 0 },
	{ 0xff00, 0xff60, 2 },   { 0xffe0, 0xffe6, 2 },
	{ 0x16fe0, 0x16ff1, 2 }, { 0x17000, 0x18d08, 2 },
	{ 0x1aff0, 0x1b2ff, 2 }, { 0x1f004, 0x1f004, 2 },
	{ 0x1f0cf, 0x1f0cf, 2 }, { 0x1f18e, 0x1f18e, 2 },
	{ 0x1f191, 0x1f19a, 2 }, { 0x1f200, 0x1f202, 2 },
	{ 0x1f210, 0x1f23b, 2 }, { 0x1f240, 0x1f248, 2 },
	{ 0x1f250, 0x1f251, 2 }, { 0x1f260, 0x1f265, 2 },
	{ 0x1f300, 0x1f64f, 2 }, { 0x1f680, 0x1f6ff, 2 },
	{ 0x1f7e0, 0x1f7eb, 2 }, { 0x1f90c, 0x1f9ff, 2 },
	{ 0x1fa70, 0x1faff, 2 }, { 0x20000, 0x2fffd, 2 },
	{ 0x30000, 0x3fffd, 2 }, { 0xe0000, 0xe007f, 0 },
	{ 0xe0100, 0xe01ef, 0 },
};

/* The code point of the valid n-byte sequence at s. */
static unsigned
decode(const unsigned char *s, size_t n)
{
	static const unsigned char lead_mask[5] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	unsigned cp = s[0] & lead_mask[n];

	for (size_t i = 1; i < n; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	return cp;
}

/* The columns of code point cp. */
static size_t
cp_width(unsigned cp)
{
	size_t lo = 0, hi = sizeof width_ranges / sizeof *width_ranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cp < width_ranges[mid].lo)
			hi = mid;
		else if (cp > width_ranges[mid].hi)
			lo = mid + 1;
		else
			return width_ranges[mid].width;
	}
	return 1;
}

size_t
utf8_width(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t w = 0, n;

	while (*s != '\0') {
		n = utf8_len((const char *)s);
		if (n == 0) {
			w++;
			s++;
			continue;
		}
		w += cp_width(decode(s, n));
		s += n;
	}
	return w;
}
