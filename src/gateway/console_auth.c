/*
 * console_auth.c - tokens, session cookies and CSRF tokens of the admin
 * address.
 *
 * Principle: the daemon holds no token, only each token's SHA-256 digest
 * (config.c), and compares digests, so a comparison takes the same time
 * whatever the token presented. A session cookie is "R.EXPIRY.MAC": the
 * role's letter, its expiry in seconds since the epoch, and
 * HMAC-SHA256(session key, "R.EXPIRY" and the digest of that role's
 * token). The session key is drawn when the process starts and never
 * leaves it; binding the MAC to the token's digest ends every session of a
 * role when its token changes (SIGHUP). The CSRF token is
 * HMAC-SHA256(session key, "csrf:" and the cookie): a page of the console
 * reads it from /api/session, another site can neither read it nor the
 * cookie.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "buf.h"
#include "config.h"
#include "console_auth.h"

#define SESSION_KEY_LEN 32

static unsigned char session_key[SESSION_KEY_LEN];

/* Draws the session key. */
int
console_auth_init(void)
{
	return RAND_bytes(session_key, sizeof session_key) == 1 ? 0 : -1;
}

/* The role a token gives. */
enum console_role
console_auth_token(const struct config *cfg, const char *token, size_t len)
{
	unsigned char d[CONFIG_TOKEN_DIGEST];
	int admin, ro;

	if (len == 0)
		return CONSOLE_NONE;
	SHA256((const unsigned char *)token, len, d);
	/* Both compared, always, in constant time. */
	admin = cfg->admin_token_set &&
		CRYPTO_memcmp(d, cfg->admin_token_sha, sizeof d) == 0;
	ro = cfg->readonly_token_set &&
	     CRYPTO_memcmp(d, cfg->readonly_token_sha, sizeof d) == 0;
	return admin ? CONSOLE_ADMIN : ro ? CONSOLE_READONLY : CONSOLE_NONE;
}

/* HMAC-SHA256 under the session key of a, then b (b may be NULL), as
 * hex. */
static void
mac(const char *a, size_t alen, const unsigned char *b, size_t blen,
    char out[2 * SHA256_DIGEST_LENGTH + 1])
{
	unsigned char msg[128], md[SHA256_DIGEST_LENGTH];
	unsigned int mdlen = 0;

	if (alen + blen > sizeof msg) /* callers pass short inputs */
		alen = blen = 0;
	memcpy(msg, a, alen);
	if (blen > 0)
		memcpy(msg + alen, b, blen);
	HMAC(EVP_sha256(), session_key, sizeof session_key, msg, alen + blen,
	     md, &mdlen);
	hex_text(out, md, sizeof md);
}

/* The digest a role's cookie is bound to; NULL when the role has no
 * token configured. */
static const unsigned char *
role_digest(const struct config *cfg, enum console_role role)
{
	if (role == CONSOLE_ADMIN)
		return cfg->admin_token_set ? cfg->admin_token_sha : NULL;
	if (role == CONSOLE_READONLY)
		return cfg->readonly_token_set ? cfg->readonly_token_sha : NULL;
	return NULL;
}

/* Writes a session cookie's value. */
void
console_auth_cookie(const struct config *cfg, enum console_role role,
		    int64_t now_s, char out[CONSOLE_COOKIE_MAX])
{
	const unsigned char *d = role_digest(cfg, role);
	char head[24], m[2 * SHA256_DIGEST_LENGTH + 1];
	int n;

	n = snprintf(head, sizeof head, "%c.%lld",
		     role == CONSOLE_ADMIN ? 'a' : 'r',
		     (long long)(now_s + CONSOLE_SESSION_S));
	mac(head, (size_t)n, d, d != NULL ? CONFIG_TOKEN_DIGEST : 0, m);
	snprintf(out, CONSOLE_COOKIE_MAX, "%s.%s", head, m);
}

/* The role a session cookie's value gives at now_s. */
enum console_role
console_auth_session(const struct config *cfg, const char *value, int64_t now_s)
{
	enum console_role role;
	const unsigned char *d;
	const char *dot;
	char m[2 * SHA256_DIGEST_LENGTH + 1], *end;
	long long expiry;

	if (value == NULL || (value[0] != 'a' && value[0] != 'r') ||
	    value[1] != '.')
		return CONSOLE_NONE;
	role = value[0] == 'a' ? CONSOLE_ADMIN : CONSOLE_READONLY;
	if ((d = role_digest(cfg, role)) == NULL)
		return CONSOLE_NONE;
	expiry = strtoll(value + 2, &end, 10);
	if (end == value + 2 || *end != '.' || end - value > 24 ||
	    expiry <= now_s || expiry > now_s + CONSOLE_SESSION_S)
		return CONSOLE_NONE;
	dot = end;
	if (strlen(dot + 1) != 2 * SHA256_DIGEST_LENGTH)
		return CONSOLE_NONE;
	mac(value, (size_t)(dot - value), d, CONFIG_TOKEN_DIGEST, m);
	return CRYPTO_memcmp(m, dot + 1, sizeof m - 1) == 0 ? role
							    : CONSOLE_NONE;
}

/* Finds cookie name in a Cookie header ("a=1; name=value; b=2"). */
const char *
console_auth_cookie_value(const char *header, const char *name, char *out,
			  size_t size)
{
	size_t nlen = strlen(name);
	const char *p = header;

	while (p != NULL && *p != '\0') {
		const char *end;
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = strchr(p, ';');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len > nlen && strncmp(p, name, nlen) == 0 &&
		    p[nlen] == '=') {
			len -= nlen + 1;
			while (len > 0 && (p[nlen + 1 + len - 1] == ' ' ||
					   p[nlen + 1 + len - 1] == '\t'))
				len--;
			if (len >= size)
				return NULL;
			memcpy(out, p + nlen + 1, len);
			out[len] = '\0';
			return out;
		}
		p = end;
	}
	return NULL;
}

/* The CSRF token of a cookie. */
void
console_auth_csrf(const char *cookie, char out[CONSOLE_CSRF_HEXLEN + 1])
{
	char msg[CONSOLE_COOKIE_MAX + 8];
	int n = snprintf(msg, sizeof msg, "csrf:%s", cookie);

	if (n < 0 || (size_t)n >= sizeof msg)
		n = 0;
	mac(msg, (size_t)n, NULL, 0, out);
}

/* Whether given is the cookie's CSRF token. */
int
console_auth_csrf_ok(const char *cookie, const char *given)
{
	char want[CONSOLE_CSRF_HEXLEN + 1];

	if (cookie == NULL || given == NULL ||
	    strlen(given) != CONSOLE_CSRF_HEXLEN)
		return 0;
	console_auth_csrf(cookie, want);
	return CRYPTO_memcmp(want, given, CONSOLE_CSRF_HEXLEN) == 0;
}

/* Whether addr is a loopback address. */
int
console_auth_is_loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0;
}

/* The role's name. */
const char *
console_role_name(enum console_role role)
{
	return role == CONSOLE_ADMIN      ? "admin"
	       : role == CONSOLE_READONLY ? "readonly"
					  : "none";
}
