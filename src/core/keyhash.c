/*
 * keyhash.c - key generation, the HMAC-SHA256 stored for each key, and
 * finding the key among a request's headers.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>

#include "buf.h"
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

/* A thread's HMAC context, keyed with the secret it was made for: keying
 * one costs five times what hashing a key with it does. */
struct mac {
	EVP_MAC_CTX *ctx;
	char *secret;
};

static pthread_key_t mac_key;
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static int mac_key_ok;

static void
mac_free(void *p)
{
	struct mac *m = p;

	EVP_MAC_CTX_free(m->ctx);
	if (m->secret != NULL)
		OPENSSL_clear_free(m->secret, strlen(m->secret));
	free(m);
}

static void
mac_init(void)
{
	mac_key_ok = pthread_key_create(&mac_key, mac_free) == 0;
}

/* This thread's context keyed with secret, or NULL. */
static EVP_MAC_CTX *
thread_mac(const char *secret)
{
	struct mac *m;
	EVP_MAC *mac;
	OSSL_PARAM params[2];

	pthread_once(&mac_once, mac_init);
	if (!mac_key_ok)
		return NULL;
	m = pthread_getspecific(mac_key);
	if (m != NULL && strcmp(m->secret, secret) == 0)
		return EVP_MAC_init(m->ctx, NULL, 0, NULL) == 1 ? m->ctx : NULL;
	if (m == NULL) {
		if ((m = calloc(1, sizeof *m)) == NULL)
			return NULL;
		if (pthread_setspecific(mac_key, m) != 0) {
			free(m);
			return NULL;
		}
	}
	if (m->secret != NULL)
		OPENSSL_clear_free(m->secret, strlen(m->secret));
	EVP_MAC_CTX_free(m->ctx);
	m->ctx = NULL;
	m->secret = strdup(secret);
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac != NULL)
		m->ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (m->secret == NULL || m->ctx == NULL ||
	    EVP_MAC_init(m->ctx, (const unsigned char *)secret, strlen(secret),
			 params) != 1) {
		pthread_setspecific(mac_key, NULL);
		mac_free(m);
		return NULL;
	}
	return m->ctx;
}

/* Writes the lowercase hex HMAC-SHA256 of key under secret. */
void
keyhash_hash(const char *secret, const char *key, size_t keylen,
	     char out[KEY_HASH_HEXLEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t outlen = 0;
	EVP_MAC_CTX *ctx = thread_mac(secret);

	if (ctx == NULL ||
	    EVP_MAC_update(ctx, (const unsigned char *)key, keylen) != 1 ||
	    EVP_MAC_final(ctx, md, &outlen, sizeof md) != 1 || outlen != 32)
		HMAC(EVP_sha256(), secret, (int)strlen(secret),
		     (const unsigned char *)key, keylen, md, &mdlen);
	hex_text(out, md, KEY_HASH_HEXLEN / 2);
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

/* Decodes unpadded base64url s[0..len) into out (room for max bytes):
 * the length, or -1 when s is not base64url or does not fit. */
static long
b64url_decode(const char *s, size_t len, unsigned char *out, size_t max)
{
	unsigned v = 0;
	int bits = 0;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		const char *d = s[i] != '\0' ? strchr(b64url, s[i]) : NULL;
		if (d == NULL)
			return -1;
		v = (v << 6 | (unsigned)(d - b64url)) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == max)
				return -1;
			out[n++] = (unsigned char)(v >> bits);
		}
	}
	return (long)n;
}

/* The api_key claim of a JWT ("header.payload.signature"), or NULL. The
 * signature is not checked: it is signed with the part of the client's
 * key after the dot, which the gateway does not know, and the claim is
 * the bearer credential itself. Borrowed from *json, which the caller
 * deletes. */
static const char *
jwt_api_key(const char *tok, size_t len, cJSON **json)
{
	unsigned char payload[1024];
	const char *dot1 = memchr(tok, '.', len), *dot2;
	const cJSON *claim;
	long n;

	*json = NULL;
	if (dot1 == NULL)
		return NULL;
	dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok));
	if (dot2 == NULL)
		return NULL;
	n = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload,
			  sizeof payload);
	if (n <= 0)
		return NULL;
	*json = cJSON_ParseWithLength((const char *)payload, (size_t)n);
	claim = cJSON_GetObjectItemCaseSensitive(*json, "api_key");
	return cJSON_IsString(claim) ? claim->valuestring : NULL;
}

/* A credential without surrounding blanks: its start, *len its length. */
static const char *
trim(const char *v, size_t *len)
{
	while (*v == ' ' || *v == '\t')
		v++;
	*len = strlen(v);
	while (*len > 0 && (v[*len - 1] == ' ' || v[*len - 1] == '\t'))
		(*len)--;
	return v;
}

/* Copies a credential into out, cut to KEY_FIND_MAX: its length. */
static size_t
take(const char *v, size_t len, char out[KEY_FIND_MAX + 1])
{
	if (len > KEY_FIND_MAX)
		len = KEY_FIND_MAX;
	memcpy(out, v, len);
	out[len] = '\0';
	return len;
}

size_t
keyhash_find(const struct key_headers *h, char out[KEY_FIND_MAX + 1])
{
	const char *rest[2] = { h->x_api_key, h->api_key }, *v;
	size_t fallback = 0, len, plen = strlen(KEY_PREFIX);

	/* out holds the first credential presented (fallback bytes of it)
	 * until a tollgate key is found. */
	if (h->authorization != NULL) {
		int bearer = strncasecmp(h->authorization, "Bearer ", 7) == 0;
		cJSON *json;
		const char *claim;

		v = trim(h->authorization + (bearer ? 7 : 0), &len);
		if (bearer && len >= plen && strncmp(v, KEY_PREFIX, plen) == 0)
			return take(v, len, out);
		claim = jwt_api_key(v, len, &json);
		if (claim != NULL && *claim != '\0')
			fallback = take(claim, strlen(claim), out);
		else if (bearer && len > 0)
			fallback = take(v, len, out);
		cJSON_Delete(json);
		if (fallback > 0 && strncmp(out, KEY_PREFIX, plen) == 0)
			return fallback;
	}
	for (int i = 0; i < 2; i++) {
		if (rest[i] == NULL)
			continue;
		v = trim(rest[i], &len);
		if (len >= plen && strncmp(v, KEY_PREFIX, plen) == 0)
			return take(v, len, out);
		if (fallback == 0 && len > 0)
			fallback = take(v, len, out);
	}
	return fallback;
}
