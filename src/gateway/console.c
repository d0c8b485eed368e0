/*
 * console.c - the web console and its JSON API on the admin address.
 *
 * Principle: the loop of the admin server never waits. What needs the
 * database or tollctl becomes a job for the console's threads
 * (console_db.c) and is answered when it comes back; the page and its
 * script are in the binary; the live figures are read from memory. So the
 * console is as cheap for the gateway as /metrics, whatever it is asked.
 *
 * Who may do what is decided here, once per request, before any body is
 * read (console_auth.c checks the credentials): reads need the read-only
 * or the admin role, actions the admin role. An action proven by the
 * session cookie must also carry the session's CSRF token, a JSON body,
 * and, when the browser names an Origin, the console's own: no form or
 * script of another site can produce all three. Each action is the
 * tollctl verb of the same name, run with the actor's name for the audit
 * rows its statements leave.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "console.h"
#include "console_assets.h"
#include "console_db.h"
#include "console_live.h"
#include "httpd.h"
#include "log.h"

#define MAX_ACTION_BODY 65536
#define MAX_VALUE       1024
#define MONTH_MAX       16 /* "YYYY-MM-01" */

static struct {
	struct config *const *cfgp;
	int started;
	int stopping;
} con;

/* An action: the API's path (one '*' for an id or a name), the tollctl
 * verb, the JSON members passed as its options (a member "free_tokens" is
 * "--free-tokens"), the boolean ones passed as flags, and what the '*'
 * is: 'i' a numeric id, 'n' a name, given as the verb's argument. */
struct action {
	const char *path;
	const char *family, *verb;
	const char *members;
	const char *flags;
	char param;
	int all_without_tenant; /* no tenant: --all */
};

static const struct action actions[] = {
	{ "/api/keys", "key", "issue", "tenant name models expires", "", 0, 0 },
	{ "/api/keys/*/revoke", "key", "revoke", "", "", 'i', 0 },
	{ "/api/quotas", "quota", "set", "tenant key model period tokens spend",
	  "soft", 0, 0 },
	{ "/api/quotas/*/clear", "quota", "clear", "", "", 'i', 0 },
	{ "/api/limits", "limit", "set", "tenant key rpm tpm concurrency", "",
	  0, 0 },
	{ "/api/limits/clear", "limit", "clear", "tenant key", "", 0, 0 },
	{ "/api/promotions", "promo", "add",
	  "name free_tokens discount tenant model provider from until", "", 0,
	  1 },
	{ "/api/promotions/*/end", "promo", "end", "at", "", 'n', 0 },
};

/* A request on its way: who asked, and the job it waits for. */
struct creq {
	struct hreq *req; /* NULL once the client left */
	enum console_role role;
	enum console_via via;
	const struct action *action;
	char param[256]; /* the path's '*' */
	struct console_job *job;
};

/* Adds the headers every answer of the console carries. */
static void
common_headers(struct hreq *req, const char *ctype)
{
	struct evkeyvalq *h = hreq_output_headers(req);

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

/* Sends bytes as the answer. */
static void
send_bytes(struct hreq *req, int status, const char *ctype, const char *data,
	   size_t len)
{
	struct evbuffer *b = evbuffer_new();

	common_headers(req, ctype);
	if (b != NULL && len > 0)
		evbuffer_add(b, data, len);
	hreq_send(req, status, b);
	if (b != NULL)
		evbuffer_free(b);
}

/* Sends a JSON answer that no cache keeps. */
static void
send_json(struct hreq *req, int status, const struct buf *body)
{
	evhttp_add_header(hreq_output_headers(req), "Cache-Control",
			  "no-store");
	send_bytes(req, status, "application/json; charset=utf-8",
		   body->data != NULL ? body->data : "", body->len);
}

/* Sends an error in the data plane's shape. */
static void
send_error(struct hreq *req, int status, const char *code, const char *msg)
{
	struct buf b = BUF_INIT;

	console_error_json(&b, status, code, msg);
	if (status == 401)
		evhttp_add_header(hreq_output_headers(req), "WWW-Authenticate",
				  "Bearer realm=\"tollgate admin\"");
	send_json(req, status, &b);
	buf_free(&b);
}

/* The role a request proves. */
enum console_role
console_role_of(const struct config *cfg, struct hreq *req,
		enum console_via *via)
{
	struct evkeyvalq *h = hreq_input_headers(req);
	const char *auth = evhttp_find_header(h, "Authorization");
	const char *cookie = evhttp_find_header(h, "Cookie");
	char value[CONSOLE_COOKIE_MAX];
	enum console_role role;

	*via = CONSOLE_VIA_NONE;
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
		auth += 7;
		while (*auth == ' ')
			auth++;
		role = console_auth_token(cfg, auth, strlen(auth));
		if (role != CONSOLE_NONE)
			*via = CONSOLE_VIA_BEARER;
		return role; /* a wrong token is not made good otherwise */
	}
	if (cookie != NULL &&
	    console_auth_cookie_value(cookie, CONSOLE_COOKIE, value,
				      sizeof value) != NULL) {
		role = console_auth_session(cfg, value, (int64_t)time(NULL));
		if (role != CONSOLE_NONE) {
			*via = CONSOLE_VIA_COOKIE;
			return role;
		}
	}
	if (cfg->admin_loopback_open &&
	    console_auth_is_loopback(hreq_peer(req))) {
		*via = CONSOLE_VIA_LOOPBACK;
		return CONSOLE_ADMIN;
	}
	return CONSOLE_NONE;
}

/* The name the audit rows give the actor. */
static void
actor_of(struct hreq *req, enum console_role role, enum console_via via,
	 char *out, size_t size)
{
	snprintf(out, size, "%s:%s@%s",
		 via == CONSOLE_VIA_BEARER     ? "api"
		 : via == CONSOLE_VIA_LOOPBACK ? "loopback"
					       : "console",
		 console_role_name(role), hreq_peer(req));
}

/* What a request's CSRF token is derived from: its session cookie's
 * value, or for a loopback client without one, "loopback". NULL when it
 * has no session (a bearer token needs no CSRF token). */
static const char *
session_id(struct hreq *req, enum console_via via,
	   char value[CONSOLE_COOKIE_MAX])
{
	const char *cookie =
		evhttp_find_header(hreq_input_headers(req), "Cookie");

	if (via == CONSOLE_VIA_LOOPBACK)
		return "loopback";
	if (via != CONSOLE_VIA_COOKIE || cookie == NULL)
		return NULL;
	return console_auth_cookie_value(cookie, CONSOLE_COOKIE, value,
					 CONSOLE_COOKIE_MAX);
}

/* Whether Host names a loopback address: a page reached through another
 * name (DNS rebinding) gets no loopback session. */
static int
host_is_loopback(struct hreq *req)
{
	const char *host = evhttp_find_header(hreq_input_headers(req), "Host");

	return host != NULL && (strncmp(host, "127.", 4) == 0 ||
				strncmp(host, "[::1]", 5) == 0 ||
				strncmp(host, "localhost", 9) == 0);
}

/* The checks of a change: a JSON body and, from a browser, the session's
 * CSRF token and the console's own origin. NULL, or why not. */
static const char *
change_refused(struct hreq *req, enum console_via via)
{
	struct evkeyvalq *h = hreq_input_headers(req);
	const char *ctype = evhttp_find_header(h, "Content-Type");
	const char *origin = evhttp_find_header(h, "Origin");
	const char *host = evhttp_find_header(h, "Host");
	char value[CONSOLE_COOKIE_MAX];
	const char *id;

	if (ctype == NULL || strncasecmp(ctype, "application/json", 16) != 0 ||
	    (ctype[16] != '\0' && ctype[16] != ';' && ctype[16] != ' '))
		return "A change needs a JSON body (Content-Type: application/json).";
	if (via == CONSOLE_VIA_BEARER)
		return NULL;
	if (origin != NULL) {
		const char *o = origin;
		if (strncmp(o, "http://", 7) == 0)
			o += 7;
		else if (strncmp(o, "https://", 8) == 0)
			o += 8;
		if (host == NULL || strcmp(o, host) != 0)
			return "The request comes from another site (Origin).";
	}
	if (via == CONSOLE_VIA_LOOPBACK && !host_is_loopback(req))
		return "A loopback session needs a loopback Host.";
	id = session_id(req, via, value);
	if (id == NULL ||
	    !console_auth_csrf_ok(id, evhttp_find_header(h, "X-CSRF-Token")))
		return "Missing or wrong X-CSRF-Token (GET /api/session gives it).";
	return NULL;
}

/* Serves a compiled-in file. */
static void
serve_asset(struct hreq *req, const struct console_asset *a)
{
	struct evkeyvalq *h = hreq_output_headers(req);
	const char *inm =
		evhttp_find_header(hreq_input_headers(req), "If-None-Match");

	evhttp_add_header(h, "ETag", a->etag);
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(
		h, "Content-Security-Policy",
		"default-src 'none'; script-src 'self'; style-src 'self'; "
		"img-src 'self' data:; connect-src 'self'; "
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
	if (inm != NULL && strcmp(inm, a->etag) == 0) {
		common_headers(req, a->type);
		hreq_send(req, 304, NULL);
		return;
	}
	send_bytes(req, 200, a->type, a->data,
		   strcmp(hreq_method(req), "HEAD") == 0 ? 0 : a->len);
}

/* Frees a job and what it owns. */
static void
job_free(struct console_job *j)
{
	if (j == NULL)
		return;
	for (int i = 0; i < 2; i++)
		free(j->param[i]);
	for (int i = 0; j->argv[i] != NULL; i++)
		free(j->argv[i]);
	if (j->cfg != NULL)
		config_unref(j->cfg);
	buf_free(&j->body);
	free(j);
}

/* A new job for cr, on the current configuration. */
static struct console_job *
job_new(struct creq *cr, enum console_op op)
{
	struct console_job *j = calloc(1, sizeof *j);

	if (j == NULL)
		return NULL;
	j->op = op;
	j->cfg = config_ref(*con.cfgp);
	j->owner = cr;
	actor_of(cr->req, cr->role, cr->via, j->actor, sizeof j->actor);
	cr->job = j;
	return j;
}

/* Appends an argument to a job's tollctl command line. 0, or -1. */
static int
job_arg(struct console_job *j, const char *a, const char *b)
{
	int n = 0;
	size_t len = strlen(a) + (b != NULL ? strlen(b) : 0) + 1;
	char *s;

	while (j->argv[n] != NULL)
		n++;
	if (n >= CONSOLE_JOB_MAX_ARGS || (s = malloc(len)) == NULL)
		return -1;
	snprintf(s, len, "%s%s", a, b != NULL ? b : "");
	j->argv[n] = s;
	return 0;
}

/* The client left while its job ran: the answer is dropped. */
static void
creq_gone(void *arg)
{
	struct creq *cr = arg;

	cr->req = NULL;
	if (cr->job == NULL) /* still reading its body */
		free(cr);
}

/* A job is back (on the admin loop): answer it, if its client waits. */
static void
job_done(struct console_job *j)
{
	struct creq *cr = j->owner;

	if (cr->req != NULL)
		hreq_on_gone(cr->req, NULL, NULL);
	if (cr->req != NULL && !con.stopping) {
		struct hreq *req = cr->req;
		if (j->status == 200 && j->filename[0] != '\0') {
			char disp[200];
			snprintf(disp, sizeof disp,
				 "attachment; filename=\"%s\"", j->filename);
			evhttp_add_header(hreq_output_headers(req),
					  "Content-Disposition", disp);
		}
		if (j->status == 200 && j->ctype != NULL) {
			evhttp_add_header(hreq_output_headers(req),
					  "Cache-Control", "no-store");
			send_bytes(req, 200, j->ctype, j->body.data,
				   j->body.len);
		} else {
			send_json(req, j->status, &j->body);
		}
	}
	free(cr);
	job_free(j);
}

/* Hands a job over, keeping its client's request until it is back. */
static void
submit(struct creq *cr)
{
	hreq_on_gone(cr->req, creq_gone, cr);
	console_db_submit(cr->job);
}

/* "YYYY-MM" of ?month=, or the current month (UTC), as its first day
 * "YYYY-MM-01" in out. 0, or -1 when malformed. */
static int
month_param(const struct evkeyvalq *q, char out[MONTH_MAX])
{
	const char *m = q != NULL ? evhttp_find_header(q, "month") : NULL;

	if (m == NULL || *m == '\0') {
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		snprintf(out, MONTH_MAX, "%04d-%02d-01",
			 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100);
		return 0;
	}
	if (strlen(m) != 7 || !isdigit((unsigned char)m[0]) ||
	    !isdigit((unsigned char)m[1]) || !isdigit((unsigned char)m[2]) ||
	    !isdigit((unsigned char)m[3]) || m[4] != '-' ||
	    !isdigit((unsigned char)m[5]) || !isdigit((unsigned char)m[6]) ||
	    atoi(m + 5) < 1 || atoi(m + 5) > 12 || atoi(m) < 1970)
		return -1;
	snprintf(out, MONTH_MAX, "%.7s-01", m);
	return 0;
}

/* Whether s is a tenant name as tollctl accepts one. */
static int
valid_tenant(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || !isalnum((unsigned char)s[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

/* Whether s is text an option may carry: no control characters. */
static int
valid_text(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_VALUE)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* Matches path against pattern (at most one '*', standing for one
 * non-empty segment, copied into star). */
static int
path_match(const char *pattern, const char *path, char *star, size_t size)
{
	const char *st = strchr(pattern, '*');
	size_t pre, suf, plen = strlen(path), mid;
	char *dec;

	if (st == NULL)
		return strcmp(pattern, path) == 0;
	pre = (size_t)(st - pattern);
	suf = strlen(st + 1);
	if (plen <= pre + suf || strncmp(pattern, path, pre) != 0 ||
	    strcmp(path + plen - suf, st + 1) != 0)
		return 0;
	mid = plen - pre - suf;
	if (memchr(path + pre, '/', mid) != NULL || mid >= size)
		return 0;
	memcpy(star, path + pre, mid);
	star[mid] = '\0';
	dec = evhttp_uridecode(star, 0, NULL);
	if (dec == NULL)
		return 0;
	snprintf(star, size, "%s", dec);
	free(dec);
	return 1;
}

/* Whether the word list ws ("a b c") holds w. */
static int
in_list(const char *ws, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = ws; (p = strstr(p, w)) != NULL; p += n)
		if ((p == ws || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

/* Builds an action's tollctl command line from its JSON body. NULL, or
 * what is wrong with the body (msg holds it). */
static const char *
action_args(struct creq *cr, const char *body, size_t len, char *msg,
	    size_t size)
{
	const struct action *a = cr->action;
	struct console_job *j = cr->job;
	cJSON *root = cJSON_ParseWithLength(body, len), *m;
	int tenant_given = 0;

	if (root == NULL || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return len == 0 && a->members[0] == '\0' && a->flags[0] == '\0'
			       ? NULL
			       : "The body must be a JSON object.";
	}
	if (job_arg(j, a->family, NULL) != 0 || job_arg(j, a->verb, NULL) != 0)
		goto oom;
	cJSON_ArrayForEach (m, root) {
		char opt[64], num[32];
		const char *v = NULL;

		if (in_list(a->flags, m->string)) {
			if (!cJSON_IsBool(m)) {
				snprintf(msg, size,
					 "'%s' must be true or false.",
					 m->string);
				goto bad;
			}
			snprintf(opt, sizeof opt, "--%s", m->string);
			if (cJSON_IsTrue(m) && job_arg(j, opt, NULL) != 0)
				goto oom;
			continue;
		}
		if (!in_list(a->members, m->string)) {
			snprintf(msg, size, "Unknown member '%s'.", m->string);
			goto bad;
		}
		if (cJSON_IsNull(m))
			continue;
		if (cJSON_IsString(m)) {
			v = m->valuestring;
		} else if (cJSON_IsNumber(m) && m->valuedouble >= 0 &&
			   m->valuedouble <= 9007199254740991.0 &&
			   (double)(long long)m->valuedouble ==
				   m->valuedouble) {
			snprintf(num, sizeof num, "%lld",
				 (long long)m->valuedouble);
			v = num;
		} else {
			snprintf(msg, size, "'%s' must be a string.",
				 m->string);
			goto bad;
		}
		if (*v == '\0')
			continue;
		if (!valid_text(v)) {
			snprintf(
				msg, size,
				"'%s' is too long or holds control characters.",
				m->string);
			goto bad;
		}
		snprintf(opt, sizeof opt, "--%s=", m->string);
		for (char *p = opt; *p != '\0'; p++)
			if (*p == '_')
				*p = '-';
		if (job_arg(j, opt, v) != 0)
			goto oom;
		if (strcmp(m->string, "tenant") == 0)
			tenant_given = 1;
	}
	if (a->all_without_tenant && !tenant_given &&
	    job_arg(j, "--all", NULL) != 0)
		goto oom;
	if (a->param != 0 &&
	    (job_arg(j, "--", NULL) != 0 || job_arg(j, cr->param, NULL) != 0))
		goto oom;
	cJSON_Delete(root);
	return NULL;
oom:
	snprintf(msg, size, "Out of memory.");
bad:
	cJSON_Delete(root);
	return msg;
}

/* Answers an action's request with an error, before any job ran, and
 * frees what it held. */
static void
action_fail(struct creq *cr, struct hreq *req, int status, const char *code,
	    const char *msg)
{
	hreq_on_gone(req, NULL, NULL);
	send_error(req, status, code, msg);
	job_free(cr->job);
	free(cr);
}

/* The body of an action is in: run it. */
static void
action_body(struct hreq *req, const struct hp_error *err, void *arg)
{
	struct creq *cr = arg;
	char msg[256];
	const char *why;
	char *body;
	size_t len = 0;

	if (err != NULL) {
		action_fail(cr, req, err->status, "invalid_body", err->message);
		return;
	}
	body = hreq_body_take(req, &len);
	if (job_new(cr, CONSOLE_CTL) == NULL || body == NULL) {
		free(body);
		action_fail(cr, req, 500, "server_error", "Out of memory.");
		return;
	}
	cr->job->wrap = 1;
	why = action_args(cr, body, len, msg, sizeof msg);
	free(body);
	if (why != NULL) {
		action_fail(cr, req, 400, "invalid_request", why);
		return;
	}
	log_info("console: %s runs %s %s", cr->job->actor, cr->action->family,
		 cr->action->verb);
	submit(cr);
}

/* POST /api/login {"token": …}: the session cookie. */
static void
login_body(struct hreq *req, const struct hp_error *err, void *arg)
{
	const struct config *cfg = *con.cfgp;
	struct creq *cr = arg;
	cJSON *root = NULL, *tok;
	enum console_role role = CONSOLE_NONE;
	char cookie[CONSOLE_COOKIE_MAX], header[CONSOLE_COOKIE_MAX + 96];
	struct buf out = BUF_INIT;
	size_t len = 0;
	char *body;

	hreq_on_gone(req, NULL, NULL);
	free(cr);
	if (err != NULL) {
		send_error(req, err->status, "invalid_body", err->message);
		return;
	}
	body = hreq_body_take(req, &len);
	if (body != NULL)
		root = cJSON_ParseWithLength(body, len);
	tok = cJSON_GetObjectItemCaseSensitive(root, "token");
	if (cJSON_IsString(tok)) {
		size_t n = strlen(tok->valuestring);
		role = console_auth_token(cfg, tok->valuestring, n);
		explicit_bzero(tok->valuestring, n);
	}
	if (body != NULL)
		explicit_bzero(body, len);
	free(body);
	cJSON_Delete(root);
	if (role == CONSOLE_NONE) {
		log_warn("console: a login from %s with a wrong token",
			 hreq_peer(req));
		send_error(
			req, 401, "invalid_admin_token",
			"Wrong token: give the admin or the read-only token.");
		return;
	}
	console_auth_cookie(cfg, role, (int64_t)time(NULL), cookie);
	snprintf(header, sizeof header,
		 CONSOLE_COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; "
				"SameSite=Strict",
		 cookie, CONSOLE_SESSION_S);
	evhttp_add_header(hreq_output_headers(req), "Set-Cookie", header);
	log_info("console: %s logged in from %s", console_role_name(role),
		 hreq_peer(req));
	buf_printf(&out, "{\"role\":\"%s\"}\n", console_role_name(role));
	send_json(req, 200, &out);
	buf_free(&out);
}

/* A request's state for the console, on behalf of role (proven via);
 * NULL after answering 500 when memory ran out. */
static struct creq *
creq_new(struct hreq *req, enum console_role role, enum console_via via)
{
	struct creq *cr = calloc(1, sizeof *cr);

	if (cr == NULL) {
		send_error(req, 500, "server_error", "Out of memory.");
		return NULL;
	}
	cr->req = req;
	cr->role = role;
	cr->via = via;
	return cr;
}

/* Reads a POST's body, then calls done. */
static void
read_body(struct hreq *req, enum console_role role, enum console_via via,
	  const struct action *a, const char *param,
	  void (*done)(struct hreq *, const struct hp_error *, void *))
{
	struct creq *cr = creq_new(req, role, via);

	if (cr == NULL)
		return;
	cr->action = a;
	if (param != NULL)
		snprintf(cr->param, sizeof cr->param, "%s", param);
	hreq_on_gone(req, creq_gone, cr);
	hreq_read_body(req, MAX_ACTION_BODY, done, cr);
}

/* GET /api/session. */
static void
session(struct hreq *req, enum console_role role, enum console_via via)
{
	char actor[CONSOLE_ACTOR_MAX], csrf[CONSOLE_CSRF_HEXLEN + 1] = "";
	char value[CONSOLE_COOKIE_MAX];
	const char *id = session_id(req, via, value);
	struct buf out = BUF_INIT;

	actor_of(req, role, via, actor, sizeof actor);
	if (id != NULL)
		console_auth_csrf(id, csrf);
	/* The actor is built from the role's name and an address: no byte
	 * that JSON would need escaped. */
	buf_printf(&out, "{\"role\":\"%s\",\"actor\":\"%s\",\"csrf\":\"%s\"}\n",
		   console_role_name(role), actor, csrf);
	send_json(req, 200, &out);
	buf_free(&out);
}

/* A read: a job for the database, or tollctl. */
static void
read_job(struct hreq *req, enum console_role role, enum console_via via,
	 enum console_op op, const char *tenant)
{
	const char *query = hreq_query(req);
	struct evkeyvalq q;
	int parsed = query != NULL && evhttp_parse_query_str(query, &q) == 0;
	struct creq *cr = creq_new(req, role, via);
	struct console_job *j;
	char month[MONTH_MAX];

	if (cr == NULL)
		goto out;
	if (month_param(parsed ? &q : NULL, month) != 0) {
		send_error(req, 400, "invalid_month", "month must be YYYY-MM.");
		free(cr);
		goto out;
	}
	if ((j = job_new(cr, op)) == NULL) {
		send_error(req, 500, "server_error", "Out of memory.");
		free(cr);
		goto out;
	}
	j->param[0] = strdup(month);
	j->param[1] = tenant != NULL ? strdup(tenant) : NULL;
	submit(cr);
out:
	if (parsed)
		evhttp_clear_headers(&q);
}

/* GET /api/tenants/NAME/bill (tenant set) and GET /api/audit: what
 * tollctl prints. */
static void
ctl_read(struct hreq *req, enum console_role role, enum console_via via,
	 const char *tenant)
{
	const char *query = hreq_query(req), *fmt = NULL, *v;
	struct evkeyvalq q;
	int parsed = query != NULL && evhttp_parse_query_str(query, &q) == 0;
	struct creq *cr = creq_new(req, role, via);
	struct console_job *j;
	char month[MONTH_MAX];
	int rc = 0;

	if (cr == NULL)
		goto out;
	if ((j = job_new(cr, CONSOLE_CTL)) == NULL) {
		send_error(req, 500, "server_error", "Out of memory.");
		free(cr);
		goto out;
	}
	if (tenant != NULL) {
		fmt = parsed ? evhttp_find_header(&q, "format") : NULL;
		if (fmt == NULL)
			fmt = "json";
		if (month_param(parsed ? &q : NULL, month) != 0 ||
		    (strcmp(fmt, "json") != 0 && strcmp(fmt, "csv") != 0 &&
		     strcmp(fmt, "html") != 0)) {
			send_error(
				req, 400, "invalid_request",
				"Expected month=YYYY-MM and format=json, csv or html.");
			goto drop;
		}
		month[7] = '\0';
		rc |= job_arg(j, "bill", NULL);
		rc |= job_arg(j, "--month=", month);
		rc |= job_arg(j, "--tenant=", tenant);
		rc |= job_arg(j, "--format=", fmt);
		j->text = 1; /* --format says it */
		j->ctype = strcmp(fmt, "csv") == 0 ? "text/csv; charset=utf-8"
			   : strcmp(fmt, "html") == 0
				   ? "text/html; charset=utf-8"
				   : "application/json; charset=utf-8";
		if (strcmp(fmt, "json") != 0 ||
		    (parsed && evhttp_find_header(&q, "download") != NULL))
			snprintf(j->filename, sizeof j->filename, "%s-%s.%s",
				 tenant, month, fmt);
	} else {
		rc |= job_arg(j, "audit", NULL);
		v = parsed ? evhttp_find_header(&q, "tenant") : NULL;
		if (v != NULL && *v != '\0') {
			if (!valid_tenant(v)) {
				send_error(req, 400, "invalid_request",
					   "No such tenant name.");
				goto drop;
			}
			rc |= job_arg(j, "--tenant=", v);
		}
		v = parsed ? evhttp_find_header(&q, "limit") : NULL;
		if (v != NULL && *v != '\0') {
			if (strspn(v, "0123456789") != strlen(v) ||
			    strlen(v) > 4) {
				send_error(req, 400, "invalid_request",
					   "limit must be a count.");
				goto drop;
			}
			rc |= job_arg(j, "--limit=", v);
		}
		j->ctype = "application/json; charset=utf-8";
	}
	if (rc != 0) {
		send_error(req, 500, "server_error", "Out of memory.");
		goto drop;
	}
	submit(cr);
	goto out;
drop:
	job_free(cr->job);
	free(cr);
out:
	if (parsed)
		evhttp_clear_headers(&q);
}

/* Answers a request for the console or its API. */
void
console_handle(struct hreq *req, const struct config *cfg)
{
	const char *path = hreq_path(req), *method = hreq_method(req);
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	int post = strcmp(method, "POST") == 0;
	const struct console_asset *asset = console_asset_find(path);
	enum console_via via;
	enum console_role role;
	char name[256];
	const char *why;

	if (asset != NULL) { /* the page: no data, no token */
		if (!get) {
			evhttp_add_header(hreq_output_headers(req), "Allow",
					  "GET, HEAD");
			send_error(req, 405, "method_not_allowed",
				   "Only GET and HEAD are allowed here.");
			return;
		}
		serve_asset(req, asset);
		return;
	}
	if (strncmp(path, "/api/", 5) != 0) {
		send_error(req, 404, "unknown_url", "Unknown admin URL.");
		return;
	}
	if (strcmp(path, "/api/login") == 0 ||
	    strcmp(path, "/api/logout") == 0) {
		if (!post) {
			evhttp_add_header(hreq_output_headers(req), "Allow",
					  "POST");
			send_error(req, 405, "method_not_allowed",
				   "Only POST is allowed here.");
			return;
		}
		if ((why = change_refused(req, CONSOLE_VIA_BEARER)) != NULL) {
			send_error(req, 400, "invalid_request", why);
			return;
		}
		if (strcmp(path, "/api/login") == 0) {
			read_body(req, CONSOLE_NONE, CONSOLE_VIA_NONE, NULL,
				  NULL, login_body);
		} else {
			struct buf out = BUF_INIT;
			evhttp_add_header(
				hreq_output_headers(req), "Set-Cookie",
				CONSOLE_COOKIE "=; Path=/; Max-Age=0; "
					       "HttpOnly; SameSite=Strict");
			buf_str(&out, "{\"ok\":true}\n");
			send_json(req, 200, &out);
			buf_free(&out);
		}
		return;
	}
	role = console_role_of(cfg, req, &via);
	if (role == CONSOLE_NONE) {
		send_error(
			req, 401, "invalid_admin_token",
			cfg->admin_token_set || cfg->readonly_token_set
				? "Log in with the admin or read-only token, or send Authorization: Bearer with one."
				: "The console needs admin_token_file (or admin_loopback_open = yes) in the gateway's configuration.");
		return;
	}
	if (post) {
		for (size_t i = 0; i < sizeof actions / sizeof *actions; i++) {
			const struct action *a = &actions[i];
			if (!path_match(a->path, path, name, sizeof name))
				continue;
			if (role != CONSOLE_ADMIN) {
				send_error(
					req, 403, "read_only",
					"The read-only token cannot change anything.");
				return;
			}
			if ((why = change_refused(req, via)) != NULL) {
				send_error(req, 403, "csrf_refused", why);
				return;
			}
			if ((a->param == 'i' &&
			     (strspn(name, "0123456789") != strlen(name) ||
			      strlen(name) > 18)) ||
			    (a->param == 'n' && !valid_text(name))) {
				send_error(req, 404, "not_found",
					   "No such id or name.");
				return;
			}
			read_body(req, role, via, a, name, action_body);
			return;
		}
	}
	if (!get) {
		evhttp_add_header(hreq_output_headers(req), "Allow",
				  "GET, HEAD");
		send_error(req, post ? 404 : 405,
			   post ? "unknown_url" : "method_not_allowed",
			   post ? "Unknown admin URL."
				: "Only GET and HEAD are allowed here.");
		return;
	}
	if (strcmp(path, "/api/session") == 0) {
		session(req, role, via);
	} else if (strcmp(path, "/api/live") == 0) {
		struct buf out = BUF_INIT;
		console_live_json(&out);
		send_json(req, out.failed ? 500 : 200, &out);
		buf_free(&out);
	} else if (strcmp(path, "/api/overview") == 0) {
		read_job(req, role, via, CONSOLE_OVERVIEW, NULL);
	} else if (strcmp(path, "/api/tenants") == 0) {
		read_job(req, role, via, CONSOLE_TENANTS, NULL);
	} else if (strcmp(path, "/api/audit") == 0) {
		ctl_read(req, role, via, NULL);
	} else if (path_match("/api/tenants/*/bill", path, name, sizeof name)) {
		if (!valid_tenant(name))
			send_error(req, 404, "unknown_tenant",
				   "No such tenant.");
		else
			ctl_read(req, role, via, name);
	} else if (path_match("/api/tenants/*", path, name, sizeof name)) {
		if (!valid_tenant(name))
			send_error(req, 404, "unknown_tenant",
				   "No such tenant.");
		else
			read_job(req, role, via, CONSOLE_TENANT, name);
	} else {
		send_error(req, 404, "unknown_url", "Unknown admin URL.");
	}
}

/* Starts the console. */
int
console_start(struct event_base *base, struct config *const *cfgp,
	      const char **cause)
{
	con.cfgp = cfgp;
	if (console_auth_init() != 0) {
		*cause = "console: no randomness for its session key";
		return -1;
	}
	if (console_db_start(base, (*cfgp)->database, job_done) != 0 ||
	    console_live_start(base) != 0) {
		*cause = "console: cannot start its threads";
		return -1;
	}
	con.started = 1;
	return 0;
}

/* Stops the console. */
void
console_stop(void)
{
	if (!con.started)
		return;
	con.stopping = 1;
	console_db_stop();
	console_live_stop();
	con.started = 0;
}
