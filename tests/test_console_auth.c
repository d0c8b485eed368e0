/*
 * test_console_auth.c - who the console lets in: tokens by digest (and
 * the "sha256:" form of a token file), session cookies (forged, expired,
 * of a changed token, of the other role), CSRF tokens, the Cookie header,
 * and the live page's latency percentiles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/sha.h>

#include "config.h"
#include "console_auth.h"
#include "console_live.h"
#include "tap.h"

#define NOW 1800000000LL

/* A config whose admin and read-only tokens are given. */
static void
set_tokens(struct config *cfg, const char *admin, const char *ro)
{
	cfg->admin_token_set = admin != NULL;
	cfg->readonly_token_set = ro != NULL;
	if (admin != NULL)
		SHA256((const unsigned char *)admin, strlen(admin),
		       cfg->admin_token_sha);
	if (ro != NULL)
		SHA256((const unsigned char *)ro, strlen(ro),
		       cfg->readonly_token_sha);
}

/* Tokens are told apart by digest. */
static void
test_tokens(void)
{
	struct config *cfg = config_defaults();

	set_tokens(cfg, "admin-secret", "finance-secret");
	is_int(console_auth_token(cfg, "admin-secret", 12), CONSOLE_ADMIN,
	       "the admin token is the admin");
	is_int(console_auth_token(cfg, "finance-secret", 14), CONSOLE_READONLY,
	       "the read-only token reads");
	is_int(console_auth_token(cfg, "admin-secre", 11), CONSOLE_NONE,
	       "a prefix of the token is nothing");
	is_int(console_auth_token(cfg, "admin-secretX", 13), CONSOLE_NONE,
	       "a longer token is nothing");
	is_int(console_auth_token(cfg, "", 0), CONSOLE_NONE,
	       "an empty token is nothing");
	set_tokens(cfg, NULL, NULL);
	is_int(console_auth_token(cfg, "admin-secret", 12), CONSOLE_NONE,
	       "without tokens configured no token is good");
	config_unref(cfg);
}

/* Writes text into the token file path, then checks that the config at
 * conf is refused with a reason holding why. */
static void
refused(const char *conf, const char *path, const char *text, const char *why,
	const char *what)
{
	char *cause = NULL;
	struct config *cfg;
	FILE *f = fopen(path, "w");

	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
	cfg = config_load(conf, 0, &cause);
	ok(cfg == NULL && cause != NULL && strstr(cause, why) != NULL,
	   "%s is refused: %s", what, cause != NULL ? cause : "(none)");
	config_unref(cfg);
	free(cause);
}

/* Token files: the token, or sha256: and its digest. */
static void
test_token_files(void)
{
	char dir[] = "/tmp/test_console_auth.XXXXXX", conf[256], tok[256],
	     ro[256], *cause = NULL;
	unsigned char d[SHA256_DIGEST_LENGTH];
	struct config *cfg;
	FILE *f;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(conf, sizeof conf, "%s/t.conf", dir);
	snprintf(tok, sizeof tok, "%s/admin.token", dir);
	snprintf(ro, sizeof ro, "%s/ro.token", dir);
	f = fopen(tok, "w");
	fputs("plain-admin-token\n", f);
	fclose(f);
	f = fopen(ro, "w");
	SHA256((const unsigned char *)"ro-token", 8, d);
	fputs("sha256:", f);
	for (size_t i = 0; i < sizeof d; i++)
		fprintf(f, "%02X", d[i]); /* upper case is accepted too */
	fputs("\n", f);
	fclose(f);
	chmod(tok, 0600);
	chmod(ro, 0600);
	f = fopen(conf, "w");
	fprintf(f,
		"[tollgate]\nspool_dir = %s\nadmin_token_file = %s\n"
		"admin_readonly_token_file = %s\n",
		dir, tok, ro);
	fclose(f);
	setenv("TOLLGATE_KEY_SECRET", "test-secret", 1);
	cfg = config_load(conf, 0, &cause);
	ok(cfg != NULL, "a config with both token files loads (%s)",
	   cause != NULL ? cause : "ok");
	if (cfg != NULL) {
		is_int(console_auth_token(cfg, "plain-admin-token", 17),
		       CONSOLE_ADMIN,
		       "a token file holding the token, trimmed");
		is_int(console_auth_token(cfg, "ro-token", 8), CONSOLE_READONLY,
		       "a token file holding sha256:DIGEST");
		config_unref(cfg);
	}
	free(cause);
	refused(conf, ro, "sha256:abcd\n", "64 hex", "a short digest");
	refused(conf, ro, "plain-admin-token\n", "own",
		"the same token for both roles");
	unlink(conf);
	unlink(tok);
	unlink(ro);
	rmdir(dir);
}

/* Session cookies. */
static void
test_cookies(void)
{
	struct config *cfg = config_defaults();
	char c[CONSOLE_COOKIE_MAX], forged[CONSOLE_COOKIE_MAX];

	set_tokens(cfg, "admin-secret", "finance-secret");
	console_auth_cookie(cfg, CONSOLE_ADMIN, NOW, c);
	is_int(console_auth_session(cfg, c, NOW), CONSOLE_ADMIN,
	       "a fresh admin cookie is the admin");
	is_int(console_auth_session(cfg, c, NOW + CONSOLE_SESSION_S - 1),
	       CONSOLE_ADMIN, "still good a second before it expires");
	is_int(console_auth_session(cfg, c, NOW + CONSOLE_SESSION_S),
	       CONSOLE_NONE, "expired after CONSOLE_SESSION_S");
	/* The role letter changed: the MAC no longer matches. */
	snprintf(forged, sizeof forged, "%s", c);
	forged[0] = 'r';
	is_int(console_auth_session(cfg, forged, NOW), CONSOLE_NONE,
	       "a cookie whose role was edited is refused");
	/* The expiry pushed out, within the allowed window. */
	snprintf(forged, sizeof forged, "%s", c);
	forged[3] = forged[3] == '9' ? '8' : '9';
	is_int(console_auth_session(cfg, forged, NOW), CONSOLE_NONE,
	       "a cookie whose expiry was edited is refused");
	snprintf(forged, sizeof forged, "%s", c);
	forged[strlen(forged) - 1] ^= 1;
	is_int(console_auth_session(cfg, forged, NOW), CONSOLE_NONE,
	       "a cookie with a wrong MAC is refused");
	is_int(console_auth_session(cfg, "a.1.x", NOW), CONSOLE_NONE,
	       "a malformed cookie is refused");
	is_int(console_auth_session(cfg, "", NOW), CONSOLE_NONE,
	       "an empty cookie is refused");
	console_auth_cookie(cfg, CONSOLE_READONLY, NOW, c);
	is_int(console_auth_session(cfg, c, NOW), CONSOLE_READONLY,
	       "a read-only cookie reads");
	set_tokens(cfg, "admin-secret", "new-finance-secret");
	is_int(console_auth_session(cfg, c, NOW), CONSOLE_NONE,
	       "a new read-only token ends the read-only sessions");
	console_auth_cookie(cfg, CONSOLE_ADMIN, NOW, c);
	set_tokens(cfg, "admin-secret", NULL);
	is_int(console_auth_session(cfg, c, NOW), CONSOLE_ADMIN,
	       "the admin's session survives a change of the other token");
	config_unref(cfg);
}

/* CSRF tokens and the Cookie header. */
static void
test_csrf(void)
{
	char a[CONSOLE_CSRF_HEXLEN + 1], b[CONSOLE_CSRF_HEXLEN + 1], v[96];

	console_auth_csrf("a.1.abc", a);
	console_auth_csrf("a.1.abd", b);
	is_int(strlen(a), CONSOLE_CSRF_HEXLEN, "a CSRF token is 64 hex digits");
	ok(strcmp(a, b) != 0, "each session has its own CSRF token");
	ok(console_auth_csrf_ok("a.1.abc", a), "the session's token passes");
	ok(!console_auth_csrf_ok("a.1.abd", a), "another session's does not");
	ok(!console_auth_csrf_ok("a.1.abc", NULL), "none does not");
	ok(!console_auth_csrf_ok("a.1.abc", ""), "empty does not");

	is_str(console_auth_cookie_value("x=1; tg_console=a.5.ff; y=2",
					 "tg_console", v, sizeof v),
	       "a.5.ff", "the cookie among others");
	is_str(console_auth_cookie_value("tg_console=abc", "tg_console", v,
					 sizeof v),
	       "abc", "the only cookie");
	ok(console_auth_cookie_value("xtg_console=abc", "tg_console", v,
				     sizeof v) == NULL,
	   "a cookie whose name ends with it is another");
	ok(console_auth_cookie_value("tg_consolex=abc", "tg_console", v,
				     sizeof v) == NULL,
	   "a cookie whose name starts with it is another");
	ok(console_auth_cookie_value("tg_console=0123456789", "tg_console", v,
				     8) == NULL,
	   "a value too long is none");
	ok(console_auth_is_loopback("127.0.0.1") &&
		   console_auth_is_loopback("::1") &&
		   !console_auth_is_loopback("10.0.0.1") &&
		   !console_auth_is_loopback("::ffff:10.0.0.1"),
	   "loopback addresses");
}

/* Percentiles from a histogram, as histogram_quantile estimates them. */
static void
test_quantiles(void)
{
	static const int64_t bounds[] = { 50, 100, 250, 500 };
	int64_t empty[5] = { 0 };
	int64_t one[5] = { 0, 1, 0, 0, 0 };
	int64_t spread[5] = { 50, 40, 9, 1, 0 };
	int64_t slow[5] = { 0, 0, 0, 0, 10 };

	is_int(console_live_quantile(empty, bounds, 4, 500), -1,
	       "an empty histogram has no median");
	is_int(console_live_quantile(one, bounds, 4, 500), 100,
	       "one request in (50, 100]: its bucket's upper bound");
	is_int(console_live_quantile(spread, bounds, 4, 500), 50,
	       "the 50th of 100 is the top of the first bucket");
	is_int(console_live_quantile(spread, bounds, 4, 900), 100,
	       "the 90th is the top of the second");
	is_int(console_live_quantile(spread, bounds, 4, 950), 183,
	       "the 95th is interpolated within (100, 250]");
	is_int(console_live_quantile(spread, bounds, 4, 990), 250, "the 99th");
	is_int(console_live_quantile(slow, bounds, 4, 500), 500,
	       "beyond the last bound: the last bound");
}

int
main(void)
{
	test_tokens();
	test_token_files();
	test_cookies();
	test_csrf();
	test_quantiles();
	return done_testing();
}
