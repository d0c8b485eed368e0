/*
 * buf.h - a growable byte buffer, the one every module builds text in.
 *
 * The bytes are NUL-terminated once anything was added (the NUL is not
 * counted in len), so a buffer of text can be used as a C string. A failed
 * allocation makes the buffer failed: every later call does nothing and
 * returns -1, so a caller can build a whole text and check once at the end.
 * Reallocation is visible where it happens: b->data may move on any add.
 */
#ifndef TOLLGATE_BUF_H
#define TOLLGATE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
	char *data; /* owned; NULL until something was added */
	size_t len; /* bytes, the terminating NUL not counted */
	size_t cap; /* bytes allocated */
	int failed; /* an allocation failed: the content is incomplete */
};

#define BUF_INIT                                                               \
	{                                                                      \
		NULL, 0, 0, 0                                                  \
	}

/* Makes room for more bytes and a NUL. 0, or -1 (and failed). */
int buf_reserve(struct buf *b, size_t more);

/* Appends n bytes; 0 or -1. Inline while they fit. */
int buf_add_grow(struct buf *b, const void *p, size_t n);

static inline int
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->failed || n >= b->cap - b->len)
		return buf_add_grow(b, p, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* Appends a NUL-terminated string; 0 or -1. */
int buf_str(struct buf *b, const char *s);

/* Writes v in decimal at the end of digits; returns its start. The text
 * runs to digits + INT_TEXT_MAX and is not NUL-terminated. */
#define INT_TEXT_MAX 20
char *int_text(char digits[INT_TEXT_MAX], int64_t v);

/* Appends an integer in decimal; 0 or -1. */
int buf_int(struct buf *b, int64_t v);

/* Writes n bytes as 2n lowercase hex digits into out, and a NUL. */
void hex_text(char *out, const void *p, size_t n);

/* Text built in storage of a fixed size (a log line on the stack), the
 * text NUL-terminated. What does not fit is cut, or, with a spill
 * function, handed to it with what the storage held (a response head
 * going into its buffer). No allocation, no printf machinery. */
struct ftext {
	char *p;
	size_t len, cap; /* cap counts the NUL's byte */
	void (*spill)(void *arg, const char *s, size_t n);
	void *arg;
};

#define FTEXT(array)                                                           \
	{                                                                      \
		(array), 0, sizeof(array), NULL, NULL                          \
	}

void ft_add(struct ftext *t, const char *s, size_t n);
void ft_str(struct ftext *t, const char *s);
void ft_int(struct ftext *t, int64_t v);

/* Appends formatted text; 0 or -1. */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Empties the buffer and clears failed, keeping its memory unless it grew
 * beyond keep bytes (0: always keep). */
void buf_reset(struct buf *b, size_t keep);

/* Frees the memory; the buffer is empty and usable again. */
void buf_free(struct buf *b);

/* Takes the bytes out: returns them (malloc'd, NUL-terminated, length in
 * *len when len is not NULL; the caller frees) and leaves the buffer empty.
 * NULL when the buffer failed (its memory is freed) or is out of memory. */
char *buf_detach(struct buf *b, size_t *len)
	__attribute__((warn_unused_result));

#endif
