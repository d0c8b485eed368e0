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

/* The request headers a key may be presented in, each NULL when absent. */
struct key_headers {
	const char *authorization; /* "Bearer KEY", or a JWT (below) */
	const char *x_api_key;     /* Anthropic's */
	const char *api_key;       /* Azure's */
};

#define KEY_FIND_MAX 256 /* longer credentials are cut (and unknown) */

/*
 * Finds the key a request presents: the first of Authorization, x-api-key
 * and api-key that holds a tollgate key ("tg-..."), so that a client's own
 * credential in one header (a Basic Authorization, a provider's key) does
 * not hide the tollgate key in another. Authorization holds one as its
 * Bearer token, or as the api_key claim of a JWT, with or without
 * "Bearer": Zhipu's SDKs sign their key ("id.secret") into such a token,
 * so the key "tg-....x" given to them arrives as its claim. When no header
 * holds a tollgate key, the first credential presented is returned, for
 * its refusal to say that it is wrong rather than missing. Copies the key
 * into out and returns its length; 0 when no credential was presented.
 */
size_t keyhash_find(const struct key_headers *h, char out[KEY_FIND_MAX + 1]);

#endif
