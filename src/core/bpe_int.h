/*
 * bpe_int.h - what bpe.c shares with its generated tables: the Unicode
 * classes (bpe_unicode.c, from scripts/gen-bpe-unicode.mjs) and the rank
 * tables (bpe_ranks.c, from data/bpe/ by bpe_gen at build time). Not for
 * other modules: they see bpe.h.
 */
#ifndef TOLLGATE_BPE_INT_H
#define TOLLGATE_BPE_INT_H

#include <stddef.h>
#include <stdint.h>

/* A character's class, as the pre-tokenizers' patterns see it. Disjoint;
 * bpe_unicode.c assigns each code point one. */
enum bpe_uclass {
	BPE_OTHER,   /* punctuation, symbols, controls, unassigned, bad UTF-8 */
	BPE_SPACE,   /* White_Space (\s) other than \r and \n */
	BPE_NEWLINE, /* \r, \n */
	BPE_UPPER,   /* Lu, Lt */
	BPE_LOWER,   /* Ll */
	BPE_LETTER,  /* Lm, Lo: neither case */
	BPE_MARK,    /* Mn, Mc, Me: not \p{L}, but in o200k's word classes */
	BPE_NUMBER,  /* Nd, Nl, No */
};

/* Two stage class table: the class of code point cp is
 * bpe_uclass_blocks[bpe_uclass_index[cp >> 7] << 7 | (cp & 127)], and
 * block 0 is ASCII's, so bpe_uclass_blocks[c] is the class of an ASCII c. */
#define BPE_UCLASS_SHIFT 7
extern const uint8_t bpe_uclass_index[0x110000 >> BPE_UCLASS_SHIFT];
extern const uint8_t bpe_uclass_blocks[];

/* The class (enum bpe_uclass) of code point cp, at most 0x10ffff. */
static inline unsigned
bpe_uclass_of(uint32_t cp)
{
	uint32_t block = bpe_uclass_index[cp >> BPE_UCLASS_SHIFT];

	return bpe_uclass_blocks[block << BPE_UCLASS_SHIFT |
				 (cp & ((1u << BPE_UCLASS_SHIFT) - 1))];
}

/* Tokens are at most this long (both encodings: 128). */
#define BPE_MAX_TOKEN 255

/* One encoding's ranks. bpe_ranks.c (generated) fills in the constant
 * part and provides zeroed storage for the rest, which bpe.c fills once. */
struct bpe_table {
	const char *name;
	const unsigned char *bytes; /* every token's bytes, by rank */
	const unsigned char *lens;  /* each token's length */
	uint32_t ntokens;
	uint32_t *offs;  /* ntokens + 1: where each token starts in bytes */
	uint32_t *slots; /* hash of the tokens: tag << 18 | rank + 1, 0 free */
	uint32_t mask;   /* number of slots - 1 (a power of two) */
};

extern struct bpe_table bpe_cl100k_base;
extern struct bpe_table bpe_o200k_base;

#endif
