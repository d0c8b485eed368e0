/*
 * price.h - exact price arithmetic in integer nano-units.
 *
 * A price is an exact decimal per million tokens; it is held as nano-units
 * of its currency per million tokens (2.5 USD/M = 2,500,000,000), which is
 * exact for every price with at most nine decimals. A cost is
 * tokens * price / 1e6 nano-units, computed in 128 bits and rounded once,
 * half up. No I/O.
 */
#ifndef TOLLGATE_PRICE_H
#define TOLLGATE_PRICE_H

#include <stdint.h>

#include "usage.h"

#define PRICE_NANOS 1000000000LL /* nano-units per unit of currency */
#define PRICE_MTOK  1000000LL    /* tokens a price is quoted for */
#define PRICE_MAX   (1000000LL * PRICE_NANOS) /* 1,000,000 a million tokens */

/* The four token classes a price distinguishes. */
enum token_class { TC_INPUT, TC_CACHED, TC_CACHE_WRITE, TC_OUTPUT, TC__COUNT };

struct token_counts {
	int64_t n[TC__COUNT];
};

/* A price row: nano-units per million tokens for each class. */
struct price {
	int64_t id;
	char currency[4];
	int64_t per_mtok[TC__COUNT];
};

/* Parses a non-negative decimal ("2.5", "0.075", "100") with at most nine
 * decimals into nano-units per million tokens. 0, or -1 with *cause set to
 * a static message. */
int price_parse(const char *s, int64_t *nanos, const char **cause)
	__attribute__((warn_unused_result));

/* Formats nano-units as a decimal without trailing zeros into buf. */
void price_format(int64_t nanos, char *buf, size_t size);

/* Splits usage into token classes: input is the uncached prompt (prompt -
 * cached - cache_write, never below 0), output the whole completion. */
void price_classes(const struct usage *u, struct token_counts *t);

/* The cost of counts at p, rounded half up once. 0, or -1 on overflow of
 * 63 bits. */
int price_cost(const struct price *p, const struct token_counts *t,
	       int64_t *nanos) __attribute__((warn_unused_result));

/* The same with each class's amount multiplied by bp/10000 before the one
 * rounding (a discount of bp basis points on those tokens). */
int price_cost_bp(const struct price *p, const struct token_counts *t, int bp,
		  int64_t *nanos) __attribute__((warn_unused_result));

#endif
