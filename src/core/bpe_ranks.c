/*
 * bpe_ranks.c - the rank tables of cl100k_base and o200k_base, compiled
 * in. src/core/bpe_ranks.inc is generated in the build directory from the
 * rank files in data/bpe/ by bpe_gen (see bpe_gen.c and Makefile.am); the
 * build directory's -I. finds it, as it is not in the source tree.
 */
#include <stdint.h>

#include "bpe_int.h"

#include "src/core/bpe_ranks.inc"
