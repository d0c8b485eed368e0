/*
 * keyhash.h - tollgate API keys: generation and the stored hash.
 *
 * A key is "tg-" followed by 43 base64url characters (32 random bytes).
 * Only HMAC-SHA256(server secret, key) is stored, as 64 lowercase hex
 * characters; lookups compare hashes in constant time.
 */
#ifndef TOLLGATE_KEYHASH_H
#define TOLLGATE_KEYHASH_H

#include <stddef.h>

#define KEY_PREFIX      "tg-"
#define KEY_LEN         46 /* "tg-" + 43 */
#define KEY_HASH_HEXLEN 64

/* Writes a new random key (KEY_LEN chars + NUL) into out. 0 or -1. */
int keyhash_generate(char out[KEY_LEN + 1]) __attribute__((warn_unused_result));

/* Writes the hex hash of key under secret into out (65 bytes). */
void keyhash_hash(const char *secret, const char *key, size_t keylen,
		  char out[KEY_HASH_HEXLEN + 1]);

/* Constant-time comparison of two hex hashes. 1 when equal. */
int keyhash_equal(const char *a, const char *b);

/* Whether s looks like a tollgate key (prefix and length). */
int keyhash_well_formed(const char *s, size_t len);

#endif
