/*
 * keyhash.c - key generation and the HMAC-SHA256 stored for each key.
 */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>

#include "keyhash.h"

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Writes "tg-" and 32 random bytes in unpadded base64url. */
int
keyhash_generate(char out[KEY_LEN + 1])
{
	unsigned char raw[33];
	size_t o = strlen(KEY_PREFIX);

	if (RAND_bytes(raw, 32) != 1)
		return -1;
	raw[32] = 0;
	memcpy(out, KEY_PREFIX, o);
	for (int i = 0; i < 33; i += 3) {
		unsigned v = (unsigned)raw[i] << 16 |
			     (unsigned)raw[i + 1] << 8 | (unsigned)raw[i + 2];
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		if (o < KEY_LEN)
			out[o++] = b64url[v >> 6 & 63];
		if (o < KEY_LEN)
			out[o++] = b64url[v & 63];
	}
	out[KEY_LEN] = '\0';
	OPENSSL_cleanse(raw, sizeof raw);
	return 0;
}

/* Writes the lowercase hex HMAC-SHA256 of key under secret. */
void
keyhash_hash(const char *secret, const char *key, size_t keylen,
	     char out[KEY_HASH_HEXLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	HMAC(EVP_sha256(), secret, (int)strlen(secret),
	     (const unsigned char *)key, keylen, md, &mdlen);
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[KEY_HASH_HEXLEN] = '\0';
}

/* Compares two hex hashes without an early exit. */
int
keyhash_equal(const char *a, const char *b)
{
	return CRYPTO_memcmp(a, b, KEY_HASH_HEXLEN) == 0;
}

/* Whether s has the shape of a tollgate key. */
int
keyhash_well_formed(const char *s, size_t len)
{
	size_t plen = strlen(KEY_PREFIX);

	if (len != KEY_LEN || strncmp(s, KEY_PREFIX, plen) != 0)
		return 0;
	for (size_t i = plen; i < len; i++)
		if (strchr(b64url, s[i]) == NULL || s[i] == '\0')
			return 0;
	return 1;
}
