/*
 * test_keyhash.c - keys: their shape, their hash, and which header a
 * request's key is found in when a client sends several credentials
 * (Authorization Bearer, x-api-key, api-key, a Zhipu SDK's signed JWT).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyhash.h"
#include "tap.h"

#define KEY   "tg-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define OTHER "tg-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

/* Unpadded base64url of s, into out. */
static void
b64url(const char *s, char *out)
{
	static const char d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
				"tuvwxyz0123456789-_";
	size_t n = strlen(s), o = 0;
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)u[i] << 16 |
			     (i + 1 < n ? (unsigned)u[i + 1] << 8 : 0) |
			     (i + 2 < n ? u[i + 2] : 0);
		out[o++] = d[v >> 18 & 63];
		out[o++] = d[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = d[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = d[v & 63];
	}
	out[o] = '\0';
}

/* A JWT of the given payload, as Zhipu's SDKs sign one (the signature is
 * not checked, any will do). */
static char *
jwt(const char *payload)
{
	char h[128], p[1024];
	static char out[2048];

	b64url("{\"alg\":\"HS256\",\"sign_type\":\"SIGN\"}", h);
	b64url(payload, p);
	snprintf(out, sizeof out, "%s.%s.c2lnbmF0dXJl", h, p);
	return out;
}

struct find_case {
	const char *name;
	const char *authorization, *x_api_key, *api_key;
	const char *want; /* NULL: no credential */
};

int
main(void)
{
	char key[KEY_LEN + 1], out[KEY_FIND_MAX + 1], zhipu[2048],
		zhipu_other[2048], zhipu_bearer[2100], long_cred[600];
	char h1[KEY_HASH_HEXLEN + 1], h2[KEY_HASH_HEXLEN + 1];

	ok(keyhash_generate(key) == 0, "a key is generated");
	ok(keyhash_well_formed(key, strlen(key)), "it is well formed: %s", key);
	ok(!keyhash_well_formed(key, strlen(key) - 1), "one shorter is not");
	keyhash_hash("secret", key, strlen(key), h1);
	keyhash_hash("secret", key, strlen(key), h2);
	ok(keyhash_equal(h1, h2), "the same key hashes the same");
	keyhash_hash("other secret", key, strlen(key), h2);
	ok(!keyhash_equal(h1, h2), "another secret, another hash");
	/* Known answers (openssl dgst -sha256 -hmac SECRET), the secret
	 * switching back and forth on one thread. */
	for (int i = 0; i < 2; i++) {
		keyhash_hash("secret", "tg-abc", 6, h1);
		ok(strcmp(h1, "4a39865891f9691a6a6159d337fd8637"
			      "865eabe7b6c445d0cc182419bd54c5aa") == 0,
		   "HMAC-SHA256 under \"secret\" (%d): %s", i, h1);
		keyhash_hash("other secret", "tg-abc", 6, h2);
		ok(strcmp(h2, "704d3e505b3b53ab029d507c2fecbbed"
			      "e689636ffcf8a8762a57fc3bb142b108") == 0,
		   "HMAC-SHA256 under \"other secret\" (%d): %s", i, h2);
	}

	snprintf(zhipu, sizeof zhipu, "%s",
		 jwt("{\"api_key\":\"" KEY "\",\"exp\":1700000180000000,"
		     "\"timestamp\":1700000000000000}"));
	snprintf(zhipu_other, sizeof zhipu_other, "%s",
		 jwt("{\"api_key\":\"0123abcd\",\"exp\":1}"));
	snprintf(zhipu_bearer, sizeof zhipu_bearer, "Bearer %s", zhipu);
	memset(long_cred, 'x', sizeof long_cred - 1);
	long_cred[sizeof long_cred - 1] = '\0';
	{
		const struct find_case cases[] = {
			{ "Bearer", "Bearer " KEY, NULL, NULL, KEY },
			{ "bearer, any case, blanks around",
			  "bearer   " KEY " ", NULL, NULL, KEY },
			{ "x-api-key", NULL, KEY, NULL, KEY },
			{ "api-key", NULL, NULL, " " KEY, KEY },
			{ "Basic beside x-api-key", "Basic dXNlcjpwYXNz", KEY,
			  NULL, KEY },
			{ "Basic beside api-key", "Basic dXNlcjpwYXNz", NULL,
			  KEY, KEY },
			{ "a provider's Bearer beside x-api-key",
			  "Bearer sk-provider", KEY, NULL, KEY },
			{ "Bearer first of two keys", "Bearer " KEY, OTHER,
			  OTHER, KEY },
			{ "x-api-key before api-key", NULL, KEY, OTHER, KEY },
			{ "Zhipu JWT, no Bearer", zhipu, NULL, NULL, KEY },
			{ "Zhipu JWT with Bearer", zhipu_bearer, NULL, NULL,
			  KEY },
			{ "Zhipu JWT of another key beside x-api-key",
			  zhipu_other, KEY, NULL, KEY },
			{ "Zhipu JWT of another key alone", zhipu_other, NULL,
			  NULL, "0123abcd" },
			{ "no tollgate key: the first credential",
			  "Bearer sk-wrong", "sk-other", NULL, "sk-wrong" },
			{ "no tollgate key, Basic: x-api-key", "Basic abc",
			  "sk-other", NULL, "sk-other" },
			{ "Basic alone is no credential", "Basic abc", NULL,
			  NULL, NULL },
			{ "bare key without Bearer is no credential", KEY, NULL,
			  NULL, NULL },
			{ "empty Bearer", "Bearer   ", NULL, NULL, NULL },
			{ "empty headers", "", "", " ", NULL },
			{ "none", NULL, NULL, NULL, NULL },
			{ "not a JWT: dots, no base64url", "a.b!c.d", NULL,
			  NULL, NULL },
			{ "JWT whose payload is not JSON", "e30.bm90IGpzb24.x",
			  NULL, NULL, NULL },
		};
		for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
			const struct find_case *c = &cases[i];
			struct key_headers kh = { c->authorization,
						  c->x_api_key, c->api_key };
			size_t n = keyhash_find(&kh, out);
			if (c->want == NULL)
				is_int(n, 0, "%s: no key", c->name);
			else
				is_str(n > 0 ? out : "(none)", c->want, "%s",
				       c->name);
		}
	}
	{
		struct key_headers kh = { NULL, long_cred, NULL };
		size_t n = keyhash_find(&kh, out);
		is_int(n, KEY_FIND_MAX, "a long credential is cut to %d bytes",
		       KEY_FIND_MAX);
	}
	return done_testing();
}
