/*
 * bpe.c - exact token counts for cl100k_base and o200k_base.
 *
 * Principle: give the number that OpenAI's tiktoken gives, byte for byte,
 * without making the tokens. tiktoken encodes in two steps, and so does
 * this:
 *
 *  1. A regular expression cuts the text into pieces, and no token ever
 *     crosses a piece's edge. The two patterns (above cl100k_next() and
 *     o200k_next()) are matched here by hand, as tiktoken's backtracking
 *     engine (fancy-regex) matches them: at each position the first
 *     alternative that matches wins, with the match its greedy loops give
 *     after whatever backtracking it needed, and the next search starts
 *     where it ended. Every character starts some alternative, so the
 *     pieces tile the text. Character classes are Unicode 16.0's, the
 *     version of the tables in tiktoken's regex crate (bpe_unicode.c).
 *
 *  2. Each piece whose bytes are a token is one token; the others are
 *     merged: of all adjacent pairs of parts whose concatenation is a
 *     token, the one of lowest rank (the leftmost of equals) becomes one
 *     part, until no pair is a token; what is left are the tokens.
 *     tiktoken rescans every part after each merge, which is quadratic: a
 *     megabyte of one letter would take it minutes. Pieces up to
 *     SMALL_PIECE bytes are merged the same way on the stack here; longer
 *     ones keep their pairs in a binary heap ordered by (rank, position),
 *     which makes the same choices in O(n log n).
 *
 * Text is bytes. A byte that does not begin a valid UTF-8 sequence (a
 * stray continuation byte, an overlong form, a surrogate, a code point
 * past U+10FFFF, a sequence cut short) is a character of its own, of class
 * OTHER, like punctuation; the byte itself goes to the merge, and every
 * single byte is a token. The pieces are those tiktoken would cut with
 * U+FFFD in the byte's place; the merge sees the byte, not U+FFFD's three.
 * tiktoken cannot be given such text (it takes a str), so this is a
 * choice: it keeps every count at most one token per byte, and no read
 * goes past len.
 *
 * The ranks are compiled in (bpe_ranks.c, generated from data/bpe/ at build
 * time). On first use an encoding's offsets and an open-addressing hash of
 * its tokens are built into static storage, once (pthread_once); after
 * that everything is read-only and any thread may count. Merging long
 * pieces needs scratch memory, kept per thread (see bpe.h).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "bpe_int.h"

/* Pieces up to this long merge on the stack by rescanning (tiktoken's
 * way, fastest for short pieces); longer ones through the heap. */
#define SMALL_PIECE 64
/* A thread keeps at most this much scratch between calls. */
#define SCRATCH_KEEP (1u << 20)
/* Pieces longer than this are counted at one token per byte, an upper
 * bound, rather than merged (their scratch would pass 1 GiB). */
#define HUGE_PIECE (1u << 26)

#define NO_RANK   UINT32_MAX
#define RANK_BITS 18
#define RANK_MASK ((1u << RANK_BITS) - 1)

/* Sets of classes, as bit masks of 1 << enum bpe_uclass. */
#define CL(c) (1u << (c))
/* \p{L} */
#define SET_L (CL(BPE_UPPER) | CL(BPE_LOWER) | CL(BPE_LETTER))
/* \s */
#define SET_S (CL(BPE_SPACE) | CL(BPE_NEWLINE))
/* [^\r\n\p{L}\p{N}]: the one character allowed before a word */
#define SET_P (CL(BPE_OTHER) | CL(BPE_SPACE) | CL(BPE_MARK))
/* [^\s\p{L}\p{N}]: punctuation and symbols */
#define SET_O (CL(BPE_OTHER) | CL(BPE_MARK))
/* o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]: a word's capitals */
#define SET_U (CL(BPE_UPPER) | CL(BPE_LETTER) | CL(BPE_MARK))
/* o200k's [\p{Ll}\p{Lm}\p{Lo}\p{M}]: a word's small letters */
#define SET_W (CL(BPE_LOWER) | CL(BPE_LETTER) | CL(BPE_MARK))

/*
 * Characters.
 */

/* The class of a character that does not start with an ASCII byte, and
 * in *len its length: 1 for a byte that does not start valid UTF-8. */
static unsigned
wide_class(const unsigned char *s, size_t n, size_t i, size_t *len)
{
	unsigned c = s[i], lo = 0x80, hi = 0xbf, need;
	uint32_t cp;

	*len = 1;
	if (c < 0xc2 || c > 0xf4)
		return BPE_OTHER;
	if (c < 0xe0) {
		need = 1;
		cp = c & 0x1f;
	} else if (c < 0xf0) {
		need = 2;
		cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else {
		need = 3;
		cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	}
	if (n - i <= need || s[i + 1] < lo || s[i + 1] > hi)
		return BPE_OTHER;
	for (unsigned k = 1; k <= need; k++) {
		if ((s[i + k] & 0xc0) != 0x80)
			return BPE_OTHER;
		cp = cp << 6 | (s[i + k] & 0x3f);
	}
	*len = need + 1;
	return bpe_uclass_of(cp);
}

/* The class of the character at s[i] (i < n); its length in *len. */
static inline unsigned
char_class(const unsigned char *s, size_t n, size_t i, size_t *len)
{
	if (s[i] < 0x80) {
		*len = 1;
		return bpe_uclass_blocks[s[i]];
	}
	return wide_class(s, n, i, len);
}

/* Whether the character at s[i] is in set; 0 at the end. */
static inline int
is_in(const unsigned char *s, size_t n, size_t i, unsigned set)
{
	size_t len;

	return i < n && (CL(char_class(s, n, i, &len)) & set) != 0;
}

/* End of the run of characters in set that starts at s[i]. */
static inline size_t
run(const unsigned char *s, size_t n, size_t i, unsigned set)
{
	size_t len;

	while (i < n && (CL(char_class(s, n, i, &len)) & set))
		i += len;
	return i;
}

/*
 * Pre-tokenization.
 */

/* Length of the contraction at s[i], 0 if none: an apostrophe and s, t,
 * re, ve, m, ll or d in any case (both patterns say (?i)), where s may be
 * U+017F, long s, which folds to it; no other letter folds into these
 * (scripts/gen-bpe-unicode.mjs checks). */
static size_t
contraction(const unsigned char *s, size_t n, size_t i)
{
	unsigned a, b;

	if (n - i < 2 || s[i] != '\'')
		return 0;
	a = s[i + 1] | 0x20; /* ASCII letters to lower case */
	if (a == 's' || a == 't' || a == 'm' || a == 'd')
		return 2;
	if (n - i < 3)
		return 0;
	if (s[i + 1] == 0xc5 && s[i + 2] == 0xbf)
		return 3;
	b = s[i + 2] | 0x20;
	if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
	    (a == 'l' && b == 'l'))
		return 3;
	return 0;
}

/* End of a run of up to three numbers (\p{N}{1,3}) at s[i]. */
static size_t
digits(const unsigned char *s, size_t n, size_t i)
{
	size_t len;

	for (int k = 0; k < 3 && i < n; k++) {
		if (char_class(s, n, i, &len) != BPE_NUMBER)
			break;
		i += len;
	}
	return i;
}

/* End of the piece that whitespace at s[i] starts, the same in both
 * patterns: \s*[\r\n]+ (or \s*[\r\n]) ends after the run's last newline;
 * otherwise \s+(?!\S) takes the run less its last character when
 * something follows (which then joins the next word) and the whole run at
 * the end of the text; \s+ takes a single blank before a non-blank. */
static size_t
space_end(const unsigned char *s, size_t n, size_t i)
{
	size_t j = i, last = i, newline_end = 0, len;
	unsigned c;

	while (j < n && (CL(c = char_class(s, n, j, &len)) & SET_S)) {
		if (c == BPE_NEWLINE)
			newline_end = j + 1;
		last = j;
		j += len;
	}
	if (newline_end > 0)
		return newline_end;
	if (j == n || last == i)
		return j;
	return last;
}

/*
 * cl100k_base:
 *   '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}|
 *    ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+
 * as tiktoken spells it now; the npm package 1.0.22 has the older
 * (?i:'s|'t|'re|'ve|'m|'ll|'d), \s*[\r\n]+ and no possessive quantifiers,
 * which match the same. Returns the end of the piece that starts at s[i].
 */
static size_t
cl100k_next(const unsigned char *s, size_t n, size_t i)
{
	size_t len, k, j;
	unsigned c = char_class(s, n, i, &len);

	if ((k = contraction(s, n, i)) > 0)
		return i + k;
	if (CL(c) & SET_L)
		return run(s, n, i, SET_L);
	if ((CL(c) & SET_P) && is_in(s, n, i + len, SET_L))
		return run(s, n, i + len, SET_L);
	if (c == BPE_NUMBER)
		return digits(s, n, i);
	j = s[i] == ' ' && is_in(s, n, i + 1, SET_O) ? i + 1 : i;
	if (is_in(s, n, j, SET_O)) {
		j = run(s, n, j, SET_O);
		while (j < n && (s[j] == '\r' || s[j] == '\n'))
			j++;
		return j;
	}
	return space_end(s, n, i);
}

/* o200k's [U]*[W]+ at s[j] as a backtracking engine matches it (U the
 * capitals' class, W the small letters'; letters of neither case and
 * marks are in both): the run of U, then the run of W after it if one
 * follows; else the run of U gives back characters up to its last one in
 * W, which is then the match's last. Returns the end, 0 for no match. */
static size_t
o200k_lower_word(const unsigned char *s, size_t n, size_t j)
{
	size_t last_w = 0, len;
	unsigned c;

	while (j < n && (CL(c = char_class(s, n, j, &len)) & SET_U)) {
		j += len;
		if (CL(c) & SET_W)
			last_w = j;
	}
	if (is_in(s, n, j, SET_W))
		return run(s, n, j, SET_W);
	return last_w;
}

/*
 * o200k_base:
 *   [^\r\n\p{L}\p{N}]?[U]*[W]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
 *   [^\r\n\p{L}\p{N}]?[U]+[W]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
 *   \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * with U = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], W = [\p{Ll}\p{Lm}\p{Lo}\p{M}].
 * The first two are tried with the optional character, then without it
 * (which matters when it is a mark, itself in U and W). Returns the end
 * of the piece that starts at s[i].
 */
static size_t
o200k_next(const unsigned char *s, size_t n, size_t i)
{
	size_t len, j = 0;
	unsigned c = char_class(s, n, i, &len);
	int prefix = (CL(c) & SET_P) && i + len < n;

	if (prefix)
		j = o200k_lower_word(s, n, i + len);
	if (j == 0 && (CL(c) & (SET_U | SET_W)))
		j = o200k_lower_word(s, n, i);
	if (j == 0 && prefix && is_in(s, n, i + len, SET_U))
		j = run(s, n, run(s, n, i + len, SET_U), SET_W);
	if (j == 0 && (CL(c) & SET_U))
		j = run(s, n, run(s, n, i, SET_U), SET_W);
	if (j > 0)
		return j + contraction(s, n, j);
	if (c == BPE_NUMBER)
		return digits(s, n, i);
	j = s[i] == ' ' && is_in(s, n, i + 1, SET_O) ? i + 1 : i;
	if (is_in(s, n, j, SET_O)) {
		j = run(s, n, j, SET_O);
		while (j < n && (s[j] == '\r' || s[j] == '\n' || s[j] == '/'))
			j++;
		return j;
	}
	return space_end(s, n, i);
}

/*
 * Ranks.
 */

/* len (1 to 8) bytes at p as a number, the same bytes always the same
 * number for a given len (two overlapping words, or three bytes). */
static inline uint64_t
load_short(const unsigned char *p, size_t len)
{
	uint32_t a, b;

	if (len < 4)
		return (uint64_t)p[0] << 16 | (uint64_t)p[len >> 1] << 8 |
		       p[len - 1];
	memcpy(&a, p, 4);
	memcpy(&b, p + len - 4, 4);
	return (uint64_t)a << 32 | b;
}

/* Mixes the bits of x (a multiply-xorshift round). */
static inline uint64_t
mix(uint64_t x)
{
	x *= 0x9e3779b97f4a7c15u;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93u;
	return x ^ x >> 32;
}

/* Hash of len (at least 1) bytes at p. */
static inline uint64_t
hash_bytes(const unsigned char *p, size_t len)
{
	uint64_t h = len, w;

	for (; len > 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = mix(h ^ w);
	}
	return mix(h ^ load_short(p, len));
}

/* A hash slot's tag: 14 bits of the hash that did not pick the slot. */
static inline uint32_t
hash_tag(uint64_t h)
{
	return (uint32_t)(h >> (64 - (32 - RANK_BITS)));
}

/* Rank of the token whose bytes are p[0..len), NO_RANK if none. */
static inline uint32_t
rank_of(const struct bpe_table *t, const unsigned char *p, size_t len)
{
	uint64_t h = hash_bytes(p, len);
	uint32_t tag = hash_tag(h);

	for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
		uint32_t v = t->slots[i], r;

		if (v == 0)
			return NO_RANK;
		if (v >> RANK_BITS != tag)
			continue;
		r = (v & RANK_MASK) - 1;
		if (t->offs[r + 1] - t->offs[r] == len &&
		    memcmp(t->bytes + t->offs[r], p, len) == 0)
			return r;
	}
}

/* Rank of the bytes p[a..b) if they can be a token. */
static inline uint32_t
span_rank(const struct bpe_table *t, const unsigned char *p, size_t a, size_t b)
{
	return b - a <= BPE_MAX_TOKEN ? rank_of(t, p + a, b - a) : NO_RANK;
}

/* Builds t's offsets and hash; 0, or -1 when a token is empty, too long
 * or there twice (the generator checks; this is for a broken build). */
static int
table_build(struct bpe_table *t)
{
	uint32_t off = 0;

	if (t->ntokens >= RANK_MASK)
		return -1;
	for (uint32_t r = 0; r < t->ntokens; r++) {
		const unsigned char *p = t->bytes + off;
		size_t len = t->lens[r];
		uint64_t h;
		uint32_t tag, i;

		if (len == 0 || len > BPE_MAX_TOKEN)
			return -1;
		h = hash_bytes(p, len);
		tag = hash_tag(h);
		i = (uint32_t)h & t->mask;
		t->offs[r] = off;
		t->offs[r + 1] = off + (uint32_t)len;
		off += (uint32_t)len;
		for (; t->slots[i] != 0; i = (i + 1) & t->mask) {
			uint32_t v = t->slots[i], o;

			if (v >> RANK_BITS != tag)
				continue;
			o = t->offs[(v & RANK_MASK) - 1];
			if (t->offs[v & RANK_MASK] - o == len &&
			    memcmp(t->bytes + o, p, len) == 0)
				return -1;
		}
		t->slots[i] = tag << RANK_BITS | (r + 1);
	}
	return 0;
}

/*
 * Merging.
 */

/* Tokens of a piece of n (2 to SMALL_PIECE) bytes, merged as tiktoken's
 * _byte_pair_merge does: parts[k] starts a part and holds the rank of the
 * pair it starts; parts[m] marks the end. */
static size_t
merge_small(const struct bpe_table *t, const unsigned char *p, size_t n)
{
	struct {
		uint32_t start, rank;
	} parts[SMALL_PIECE + 1];
	size_t m = n;

	for (size_t k = 0; k < n; k++) {
		parts[k].start = (uint32_t)k;
		parts[k].rank = k + 1 < n ? rank_of(t, p + k, 2) : NO_RANK;
	}
	parts[n].start = (uint32_t)n;
	parts[n].rank = NO_RANK;
	for (;;) {
		uint32_t best = NO_RANK;
		size_t k = 0;

		for (size_t i = 0; i + 1 < m; i++) {
			if (parts[i].rank < best) {
				best = parts[i].rank;
				k = i;
			}
		}
		if (best == NO_RANK)
			break;
		/* Part k takes in part k + 1. */
		memmove(&parts[k + 1], &parts[k + 2],
			(m - k - 1) * sizeof parts[0]);
		m--;
		parts[k].rank = k + 1 < m ? span_rank(t, p, parts[k].start,
						      parts[k + 2].start)
					  : NO_RANK;
		if (k > 0)
			parts[k - 1].rank = span_rank(t, p, parts[k - 1].start,
						      parts[k + 1].start);
	}
	return m;
}

/* Scratch for merge_heap, per thread. */
struct scratch {
	void *mem;
	size_t size;
};

static _Thread_local struct scratch scratch;
static pthread_key_t scratch_key;
static int scratch_key_ok;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

/* Frees a thread's scratch when the thread exits. */
static void
scratch_free(void *mem)
{
	free(mem);
}

static void
scratch_key_init(void)
{
	scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

/* The thread's scratch, of at least size bytes; NULL when out of
 * memory. */
static void *
scratch_get(size_t size)
{
	void *mem;

	if (scratch.size >= size)
		return scratch.mem;
	if (size < 16384)
		size = 16384;
	if (size < scratch.size * 2)
		size = scratch.size * 2;
	mem = realloc(scratch.mem, size);
	if (mem == NULL)
		return NULL;
	scratch.mem = mem;
	scratch.size = size;
	pthread_once(&scratch_once, scratch_key_init);
	if (scratch_key_ok)
		pthread_setspecific(scratch_key, mem);
	return mem;
}

/* Gives back a scratch too big to keep. */
static void
scratch_trim(void)
{
	if (scratch.size <= SCRATCH_KEEP)
		return;
	if (scratch_key_ok)
		pthread_setspecific(scratch_key, NULL);
	free(scratch.mem);
	scratch.mem = NULL;
	scratch.size = 0;
}

/* A part of a long piece, known by the offset where it starts. */
struct part {
	uint32_t next; /* start of the next part; n after the last */
	uint32_t prev; /* start of the previous part */
	uint32_t rank; /* rank of the pair it starts, or NO_RANK */
	uint32_t pos;  /* its index in the heap, while it has a rank */
};

/* The parts of a long piece, and a binary heap of the pairs that are
 * tokens, keyed rank << 32 | start: least rank first, leftmost of
 * equals. */
struct merge {
	struct part *part;
	uint64_t *heap;
	uint32_t size;
};

static inline void
heap_put(struct merge *m, uint32_t k, uint64_t key)
{
	m->heap[k] = key;
	m->part[(uint32_t)key].pos = k;
}

static void
sift_up(struct merge *m, uint32_t k)
{
	uint64_t key = m->heap[k];

	while (k > 0 && key < m->heap[(k - 1) / 2]) {
		heap_put(m, k, m->heap[(k - 1) / 2]);
		k = (k - 1) / 2;
	}
	heap_put(m, k, key);
}

static void
sift_down(struct merge *m, uint32_t k)
{
	uint64_t key = m->heap[k];

	for (;;) {
		uint32_t c = 2 * k + 1;

		if (c >= m->size)
			break;
		if (c + 1 < m->size && m->heap[c + 1] < m->heap[c])
			c++;
		if (key < m->heap[c])
			break;
		heap_put(m, k, m->heap[c]);
		k = c;
	}
	heap_put(m, k, key);
}

/* Sets the rank of the pair that the part at start begins, entering it
 * into the heap, moving it or taking it out. */
static void
set_rank(struct merge *m, uint32_t start, uint32_t rank)
{
	struct part *pt = &m->part[start];
	uint32_t k = pt->pos;
	uint64_t last;

	if (pt->rank == NO_RANK) {
		if (rank == NO_RANK)
			return;
		pt->rank = rank;
		m->heap[m->size++] = (uint64_t)rank << 32 | start;
		sift_up(m, m->size - 1);
		return;
	}
	pt->rank = rank;
	if (rank != NO_RANK) {
		m->heap[k] = (uint64_t)rank << 32 | start;
		sift_up(m, k);
		sift_down(m, pt->pos);
		return;
	}
	last = m->heap[--m->size];
	if (k < m->size) {
		m->heap[k] = last;
		sift_up(m, k);
		sift_down(m, m->part[(uint32_t)last].pos);
	}
}

/* Whether any two adjacent bytes of the piece are a token: when none
 * are, no merge can start, and the piece is n tokens without the n * 24
 * bytes of scratch (a long run of bytes that are no UTF-8, say). */
static int
any_pair(const struct bpe_table *t, const unsigned char *p, size_t n)
{
	for (size_t k = 0; k + 1 < n; k++)
		if (rank_of(t, p + k, 2) != NO_RANK)
			return 1;
	return 0;
}

/* Tokens of a piece of n (more than SMALL_PIECE) bytes: the merges of
 * merge_small() in the same order, the least pair found in O(log n). */
static size_t
merge_heap(const struct bpe_table *t, const unsigned char *p, size_t n)
{
	struct merge m = { 0 };
	size_t merges = 0;
	void *mem;

	if (n > HUGE_PIECE || !any_pair(t, p, n))
		return n;
	mem = scratch_get(n * (sizeof *m.heap + sizeof *m.part));
	if (mem == NULL)
		return n;
	m.heap = mem;
	m.part = (struct part *)(m.heap + n);
	for (uint32_t k = 0; k < n; k++) {
		struct part *pt = &m.part[k];

		pt->next = k + 1;
		pt->prev = k - 1;
		pt->rank = k + 1 < n ? rank_of(t, p + k, 2) : NO_RANK;
		if (pt->rank != NO_RANK)
			heap_put(&m, m.size++, (uint64_t)pt->rank << 32 | k);
	}
	for (uint32_t k = m.size / 2; k-- > 0;)
		sift_down(&m, k);
	while (m.size > 0) {
		uint32_t a = (uint32_t)m.heap[0];
		uint32_t b = m.part[a].next, c = m.part[b].next;

		/* Part a takes in part b, and the pairs around change. */
		set_rank(&m, b, NO_RANK);
		m.part[a].next = c;
		if (c < n)
			m.part[c].prev = a;
		merges++;
		set_rank(&m, a,
			 c < n ? span_rank(t, p, a, m.part[c].next) : NO_RANK);
		if (a > 0)
			set_rank(&m, m.part[a].prev,
				 span_rank(t, p, m.part[a].prev, c));
	}
	return n - merges;
}

/* Tokens of one piece of n (at least 1) bytes. */
static inline size_t
piece_tokens(const struct bpe_table *t, const unsigned char *p, size_t n)
{
	if (n == 1)
		return 1;
	if (n <= BPE_MAX_TOKEN && rank_of(t, p, n) != NO_RANK)
		return 1;
	if (n <= SMALL_PIECE)
		return merge_small(t, p, n);
	return merge_heap(t, p, n);
}

/*
 * Loading and counting.
 */

static pthread_once_t cl100k_once = PTHREAD_ONCE_INIT;
static pthread_once_t o200k_once = PTHREAD_ONCE_INIT;
static int cl100k_state, o200k_state; /* 1 built, -1 broken */

static void
cl100k_load(void)
{
	cl100k_state = table_build(&bpe_cl100k_base) == 0 ? 1 : -1;
}

static void
o200k_load(void)
{
	o200k_state = table_build(&bpe_o200k_base) == 0 ? 1 : -1;
}

int
bpe_init(void)
{
	pthread_once(&cl100k_once, cl100k_load);
	pthread_once(&o200k_once, o200k_load);
	return cl100k_state == 1 && o200k_state == 1 ? 0 : -1;
}

size_t
bpe_count(enum bpe_encoding e, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	const struct bpe_table *t;
	size_t i = 0, total = 0;

	if (len == 0)
		return 0;
	if (e == BPE_O200K) {
		pthread_once(&o200k_once, o200k_load);
		if (o200k_state != 1)
			return len;
		t = &bpe_o200k_base;
		while (i < len) {
			size_t j = o200k_next(s, len, i);

			total += piece_tokens(t, s + i, j - i);
			i = j;
		}
	} else {
		pthread_once(&cl100k_once, cl100k_load);
		if (cl100k_state != 1)
			return len;
		t = &bpe_cl100k_base;
		while (i < len) {
			size_t j = cl100k_next(s, len, i);

			total += piece_tokens(t, s + i, j - i);
			i = j;
		}
	}
	scratch_trim();
	return total;
}
