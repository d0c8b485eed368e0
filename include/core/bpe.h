/*
 * bpe.h - exact token counts for OpenAI's byte-level BPE encodings:
 * cl100k_base (GPT-3.5, GPT-4) and o200k_base (GPT-4o, GPT-4.1, o1, o3).
 *
 * The count is the length of what OpenAI's tiktoken encode_ordinary()
 * returns for the same text: special tokens ("<|endoftext|>") are plain
 * text. The rank tables are compiled in (no file is read); they take
 * 2.3 MB of read-only data and 4.4 MB of tables built on first use.
 */
#ifndef TOLLGATE_BPE_H
#define TOLLGATE_BPE_H

#include <stddef.h>

enum bpe_encoding {
	BPE_CL100K, /* cl100k_base */
	BPE_O200K,  /* o200k_base */
};

/* Builds the tables of both encodings, once per process (later calls
 * return at once); bpe_count() builds an encoding's on its first call
 * otherwise, so a daemon calls this at start to keep that off a request.
 * Thread-safe. Returns 0, or -1 when a table is inconsistent (a broken
 * build; bpe_count() then answers len). */
int bpe_init(void);

/* Number of tokens in len bytes of text under encoding e. Any bytes: a
 * byte that does not belong to valid UTF-8 counts as a punctuation
 * character of its own (bpe.c says why), so the count is at most len.
 * Thread-safe, no I/O. No allocation but a scratch buffer per thread for
 * the pieces (runs of letters, blanks, punctuation) of more than 64 bytes:
 * 24 bytes per byte of the longest, grown when a longer one comes, kept
 * up to 1 MiB and freed when the thread exits. Should the allocation fail,
 * or a single piece pass 64 MiB, that piece counts a token per byte. */
size_t bpe_count(enum bpe_encoding e, const char *text, size_t len);

#endif
