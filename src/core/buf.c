/*
 * buf.c - the growable byte buffer (buf.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define BUF_FIRST 256 /* the first allocation */

/* Makes room for more bytes and the NUL, growing by doubling. */
int
buf_reserve(struct buf *b, size_t more)
{
	size_t need, cap;
	char *d;

	if (b->failed)
		return -1;
	if (more > SIZE_MAX - b->len - 1)
		goto fail;
	need = b->len + more + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap != 0 ? b->cap : BUF_FIRST;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	d = realloc(b->data, cap);
	if (d == NULL)
		goto fail;
	b->data = d;
	b->cap = cap;
	return 0;
fail:
	b->failed = 1;
	return -1;
}

/* Appends n bytes, growing the buffer. */
int
buf_add_grow(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) != 0)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* Appends a string. */
int
buf_str(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

/* Writes an integer in decimal at the end of digits[INT_TEXT_MAX], without
 * the printf machinery; returns where the text starts (not terminated). */
char *
int_text(char digits[INT_TEXT_MAX], int64_t v)
{
	char *d = digits + INT_TEXT_MAX;
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	do
		*--d = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--d = '-';
	return d;
}

/* Writes bytes in lowercase hex. */
void
hex_text(char *out, const void *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Appends an integer in decimal. */
int
buf_int(struct buf *b, int64_t v)
{
	char digits[INT_TEXT_MAX], *d = int_text(digits, v);

	return buf_add(b, d, (size_t)(digits + INT_TEXT_MAX - d));
}

void
ft_add(struct ftext *t, const char *s, size_t n)
{
	if (t->cap == 0)
		return;
	if (n > t->cap - 1 - t->len && t->spill != NULL) {
		t->spill(t->arg, t->p, t->len);
		t->len = 0;
		t->p[0] = '\0';
		if (n > t->cap - 1) {
			t->spill(t->arg, s, n);
			return;
		}
	}
	if (n > t->cap - 1 - t->len)
		n = t->cap - 1 - t->len;
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

void
ft_str(struct ftext *t, const char *s)
{
	ft_add(t, s, strlen(s));
}

void
ft_int(struct ftext *t, int64_t v)
{
	char digits[INT_TEXT_MAX], *d = int_text(digits, v);

	ft_add(t, d, (size_t)(digits + INT_TEXT_MAX - d));
}

/* Appends formatted text, formatting once when it fits. */
int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	if (buf_reserve(b, 64) != 0)
		return -1;
	va_copy(again, ap);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	if (n >= 0 && (size_t)n >= b->cap - b->len) {
		if (buf_reserve(b, (size_t)n) == 0)
			n = vsnprintf(b->data + b->len, b->cap - b->len, fmt,
				      again);
		else
			n = -1;
	}
	va_end(again);
	if (n < 0) {
		b->data[b->len] = '\0';
		b->failed = 1;
		return -1;
	}
	b->len += (size_t)n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

/* Empties the buffer, keeping at most keep bytes of memory. */
void
buf_reset(struct buf *b, size_t keep)
{
	if (keep != 0 && b->cap > keep) {
		buf_free(b);
		return;
	}
	b->len = 0;
	b->failed = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Frees the memory. */
void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}

/* Takes the bytes out. */
char *
buf_detach(struct buf *b, size_t *len)
{
	char *d;

	if (b->failed || buf_reserve(b, 0) != 0) {
		buf_free(b);
		return NULL;
	}
	d = b->data;
	d[b->len] = '\0';
	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return d;
}
