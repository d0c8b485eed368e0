/*
 * console_auth.h - who is asking the admin address: tokens, the console's
 * session cookie, its CSRF token.
 *
 * Two roles: an admin reads and acts, a read-only client (finance) reads.
 * A client proves its role with a token (Authorization: Bearer, compared
 * by SHA-256 digest in constant time), or with the cookie that logging in
 * with a token gave it, or, when admin_loopback_open is set, by coming
 * from a loopback address. Cookies are signed with a key drawn when the
 * process starts and bound to the digest of the role's token, so a
 * restart or a new token logs every browser out. No I/O: the functions
 * take the request's fields.
 */
#ifndef TOLLGATE_CONSOLE_AUTH_H
#define TOLLGATE_CONSOLE_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct config;

enum console_role {
	CONSOLE_NONE,     /* no or a wrong credential */
	CONSOLE_READONLY, /* reads */
	CONSOLE_ADMIN,    /* reads and acts */
};

/* How the role was proven: it decides whether a change needs CSRF. */
enum console_via {
	CONSOLE_VIA_NONE,
	CONSOLE_VIA_BEARER,   /* Authorization: Bearer */
	CONSOLE_VIA_COOKIE,   /* the session cookie */
	CONSOLE_VIA_LOOPBACK, /* admin_loopback_open */
};

/* The cookie's name, and how long a session lasts. */
#define CONSOLE_COOKIE      "tg_console"
#define CONSOLE_SESSION_S   (12 * 3600)
#define CONSOLE_COOKIE_MAX  96 /* "a.EXPIRY.MAC" and its NUL */
#define CONSOLE_CSRF_HEXLEN 64

/* Draws the key cookies are signed with. Once, before any request. 0, or
 * -1 when there is no randomness. */
int console_auth_init(void) __attribute__((warn_unused_result));

/* The role a token gives (len bytes, not NUL-terminated needed). */
enum console_role console_auth_token(const struct config *cfg,
				     const char *token, size_t len);

/* Writes a session cookie's value for role, valid from now_s (seconds
 * since the epoch) for CONSOLE_SESSION_S, into out. */
void console_auth_cookie(const struct config *cfg, enum console_role role,
			 int64_t now_s, char out[CONSOLE_COOKIE_MAX]);

/* The role a session cookie's value gives at now_s: CONSOLE_NONE when it
 * is malformed, forged, expired, or its role's token changed. */
enum console_role console_auth_session(const struct config *cfg,
				       const char *value, int64_t now_s);

/* The value of cookie name in a Cookie header (copied into out, at most
 * size - 1 bytes), or NULL when absent or too long. */
const char *console_auth_cookie_value(const char *header, const char *name,
				      char *out, size_t size);

/* The CSRF token of a session cookie's value (hex, NUL-terminated). */
void console_auth_csrf(const char *cookie, char out[CONSOLE_CSRF_HEXLEN + 1]);

/* Whether given is the CSRF token of cookie (constant time). */
int console_auth_csrf_ok(const char *cookie, const char *given);

/* Whether addr (an address as text, no port) is a loopback address. */
int console_auth_is_loopback(const char *addr);

/* The role's name, "admin" or "readonly" ("none"). */
const char *console_role_name(enum console_role role);

#endif
