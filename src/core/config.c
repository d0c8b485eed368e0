/*
 * config.c - the INI configuration, driven by declarative key tables.
 *
 * Each section kind has a table of keys (name, type, offset of the target
 * field, default, help). One parser fills a struct from it, so defaults,
 * validation, `tollgated --print-config` and the sample-config check all
 * read the same table. Errors name the file, the line and the key.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/sha.h>

#include "config.h"
#include "log.h"
#include "usage.h"

enum key_type {
	KT_STRING, /* char *, NULL when empty */
	KT_LIST,   /* repeatable string (listen) */
	KT_INT,    /* plain count */
	KT_MS,     /* duration in milliseconds */
	KT_SIZE,   /* bytes, k/M/G suffixes */
	KT_BOOL,   /* yes/no/true/false/on/off/1/0 */
	KT_PTYPE,  /* provider type */
	KT_FLAVOR, /* provider flavor */
};

struct key_def {
	const char *name;
	enum key_type type;
	size_t off;
	const char *def;
	int64_t min, max;
	const char *help;
};

#define GOFF(f) offsetof(struct config, f)
#define POFF(f) offsetof(struct provider_conf, f)

static const struct key_def global_keys[] = {
	{ "listen", KT_LIST, GOFF(listen), "127.0.0.1:8080", 0, 0,
	  "address:port of the data plane; repeatable" },
	{ "admin_listen", KT_STRING, GOFF(admin_listen), "127.0.0.1:9090", 0, 0,
	  "address:port of /healthz, /readyz, /metrics; empty disables" },
	{ "admin_token_file", KT_STRING, GOFF(admin_token_file), "", 0, 0,
	  "file holding the admin token (or sha256: and its SHA-256 in hex) that the admin address and the console require; required when admin_listen is not loopback" },
	{ "admin_readonly_token_file", KT_STRING,
	  GOFF(admin_readonly_token_file), "", 0, 0,
	  "file holding the read-only token (or sha256: and its SHA-256 in hex): the console and its API without actions, /metrics, /readyz" },
	{ "admin_loopback_open", KT_BOOL, GOFF(admin_loopback_open), "no", 0, 0,
	  "let clients on a loopback address use the console and its API as admins without a token" },
	{ "tollctl", KT_STRING, GOFF(tollctl), "", 0, 0,
	  "the tollctl the console runs for its actions and bills; empty: the one beside tollgated, else the installed one" },
	{ "workers", KT_INT, GOFF(workers), "0", 0, 256,
	  "event-loop threads; 0 = one per core" },
	{ "database", KT_STRING, GOFF(database), "dbname=tollgate", 0, 0,
	  "libpq connection string" },
	{ "key_secret_file", KT_STRING, GOFF(key_secret_file), "", 0, 0,
	  "file holding the key-hash secret (else TOLLGATE_KEY_SECRET)" },
	{ "allow_open_secret_files", KT_BOOL, GOFF(allow_open_secret_files),
	  "no", 0, 0,
	  "accept secret files (key secret, provider keys, admin token) that the group or others may read" },
	{ "max_body_size", KT_SIZE, GOFF(max_body_size), "4M", 1024,
	  INT64_C(1) << 30, "largest request body" },
	{ "max_json_depth", KT_INT, GOFF(max_json_depth), "64", 2, 1000,
	  "deepest JSON nesting in a request" },
	{ "header_timeout", KT_MS, GOFF(header_timeout_ms), "30000", 100,
	  3600000,
	  "deadline for a request's headers, from the connection or the previous reply (ms)" },
	{ "body_timeout", KT_MS, GOFF(body_timeout_ms), "60000", 100, 3600000,
	  "deadline for a request's body, once its headers are in (ms)" },
	{ "keepalive_timeout", KT_MS, GOFF(keepalive_timeout_ms), "60000", 0,
	  3600000,
	  "idle time a client connection is kept between requests (ms); 0 closes after each reply" },
	{ "send_timeout", KT_MS, GOFF(send_timeout_ms), "60000", 100, 3600000,
	  "longest a client may leave a reply unread (ms)" },
	{ "max_connections", KT_INT, GOFF(max_connections), "4096", 1, 1000000,
	  "client connections the gateway holds at once" },
	{ "max_connections_per_address", KT_INT,
	  GOFF(max_connections_per_address), "256", 1, 1000000,
	  "client connections from one address at once" },
	{ "max_header_size", KT_SIZE, GOFF(max_header_size), "32k", 1024,
	  1048576, "request line and headers of one request, in bytes" },
	{ "max_headers", KT_INT, GOFF(max_headers), "100", 8, 10000,
	  "header fields in one request" },
	{ "tls_cert_file", KT_STRING, GOFF(tls_cert_file), "", 0, 0,
	  "PEM certificate chain for listen addresses marked tls" },
	{ "tls_key_file", KT_STRING, GOFF(tls_key_file), "", 0, 0,
	  "PEM private key of tls_cert_file" },
	{ "tls_client_ca_file", KT_STRING, GOFF(tls_client_ca_file), "", 0, 0,
	  "PEM CAs whose client certificates are required on tls listeners (mutual TLS); empty: none asked" },
	{ "tls_ticket_rotate", KT_MS, GOFF(tls_ticket_rotate_ms), "3600000", 0,
	  86400000,
	  "how often the session-ticket key is replaced (ms); tickets of the previous key still resume; 0 disables tickets" },
	{ "keys_refresh", KT_MS, GOFF(keys_refresh_ms), "60000", 100, 86400000,
	  "periodic key cache reload besides NOTIFY (ms)" },
	{ "usage_batch", KT_INT, GOFF(usage_batch), "500", 1, 5000,
	  "usage records per database batch" },
	{ "usage_flush", KT_MS, GOFF(usage_flush_ms), "200", 1, 60000,
	  "longest wait before a partial batch is written (ms)" },
	{ "stream_buffer", KT_SIZE, GOFF(stream_buffer), "256k", 4096,
	  INT64_C(1) << 30, "client output bytes before upstream pauses" },
	{ "shutdown_timeout", KT_MS, GOFF(shutdown_timeout_ms), "30000", 0,
	  3600000, "time in-flight requests get to finish on SIGTERM (ms)" },
	{ "spool_dir", KT_STRING, GOFF(spool_dir), "/var/lib/tollgate/spool", 0,
	  0, "local journal of usage records; one per gateway process" },
	{ "spool_fsync", KT_MS, GOFF(spool_fsync_ms), "20", 0, 10000,
	  "group-commit interval of the journal's fdatasync (ms); 0 syncs "
	  "as soon as anything was appended" },
	{ "spool_segment_size", KT_SIZE, GOFF(spool_segment_size), "16M", 65536,
	  INT64_C(1) << 32, "journal segment size before a new one starts" },
	{ "on_db_down", KT_STRING, GOFF(on_db_down), "serve", 0, 0,
	  "serve (keep serving, usage waits in the spool) or refuse (503 while the database is unreachable)" },
	{ "default_output_cap", KT_INT, GOFF(default_output_cap), "4096", 1,
	  10000000,
	  "output tokens a request may use when it sets no max_tokens, for rate limits and quotas" },
	{ "test_clock", KT_BOOL, GOFF(test_clock), "no", 0, 0,
	  "let POST /clock/advance on the admin address move the policy clock (tests only)" },
	{ "log_level", KT_STRING, GOFF(log_level), "info", 0, 0,
	  "error, warn, info or debug" },
	{ "log_format", KT_STRING, GOFF(log_format), "text", 0, 0,
	  "text or json" },
	{ "pid_file", KT_STRING, GOFF(pid_file), "", 0, 0,
	  "file to write the process id to" },
	{ NULL, 0, 0, NULL, 0, 0, NULL }
};

static const struct key_def provider_keys[] = {
	{ "type", KT_PTYPE, POFF(type), "openai-compatible", 0, 0,
	  "openai, openai-compatible, azure or anthropic" },
	{ "flavor", KT_FLAVOR, POFF(flavor), "openai", 0, 0,
	  "usage quirks: openai, azure, anthropic, zhipu, dashscope, "
	  "qianfan, baichuan, yi, moonshot, deepseek" },
	{ "base_url", KT_STRING, POFF(base_url), "", 0, 0,
	  "API base URL, e.g. https://api.openai.com/v1" },
	{ "api_key_env", KT_STRING, POFF(api_key_env), "", 0, 0,
	  "environment variable holding the credential" },
	{ "api_key_file", KT_STRING, POFF(api_key_file), "", 0, 0,
	  "file holding the credential" },
	{ "proxy", KT_STRING, POFF(proxy), "", 0, 0,
	  "outbound HTTP proxy URL" },
	{ "connect_timeout", KT_MS, POFF(connect_timeout_ms), "10000", 1,
	  600000, "upstream connect timeout (ms)" },
	{ "timeout", KT_MS, POFF(timeout_ms), "600000", 1, 86400000,
	  "whole non-streamed transfer (ms)" },
	{ "idle_timeout", KT_MS, POFF(idle_timeout_ms), "120000", 1, 86400000,
	  "longest silence inside a stream (ms)" },
	{ "tls_verify", KT_BOOL, POFF(tls_verify), "yes", 0, 0,
	  "verify the provider's certificate" },
	{ "ca_file", KT_STRING, POFF(ca_file), "", 0, 0,
	  "CA bundle for tls_verify" },
	{ "compression", KT_BOOL, POFF(compression), "yes", 0, 0,
	  "ask for whole answers compressed (streams are asked plain)" },
	{ "api_version", KT_STRING, POFF(api_version), "2024-10-21", 0, 0,
	  "type azure: the api-version query parameter" },
	{ "anthropic_version", KT_STRING, POFF(anthropic_version), "2023-06-01",
	  0, 0, "type anthropic: the anthropic-version header" },
	{ NULL, 0, 0, NULL, 0, 0, NULL }
};

static const char *const ptype_names[] = { "openai", "openai-compatible",
					   "azure", "anthropic", NULL };

/* Formats a "FILE:LINE: message" into a new string. */
static char *
errorf(const char *file, int line, const char *fmt, ...)
{
	char msg[512], *out;
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (line > 0)
		n = snprintf(NULL, 0, "%s:%d: %s", file, line, msg);
	else
		n = snprintf(NULL, 0, "%s: %s", file, msg);
	out = malloc((size_t)n + 1);
	if (out == NULL)
		return NULL;
	if (line > 0)
		snprintf(out, (size_t)n + 1, "%s:%d: %s", file, line, msg);
	else
		snprintf(out, (size_t)n + 1, "%s: %s", file, msg);
	return out;
}

/* Removes leading and trailing white space in place. */
static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Parses a whole number with an optional k/M/G suffix (sizes only). */
static int
parse_int(const char *v, int sizes, int64_t *out)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || end == v)
		return -1;
	if (sizes && *end != '\0') {
		int shift = 0;
		switch (*end) {
		case 'k':
		case 'K':
			shift = 10;
			break;
		case 'm':
		case 'M':
			shift = 20;
			break;
		case 'g':
		case 'G':
			shift = 30;
			break;
		default:
			return -1;
		}
		end++;
		/* A multiplication: shifting a negative number is undefined. */
		if (__builtin_mul_overflow(n, 1LL << shift, &n))
			return -1;
	}
	if (*end != '\0')
		return -1;
	*out = n;
	return 0;
}

/* Parses a boolean word. */
static int
parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };

	for (int i = 0; yes[i] != NULL; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* Stores one value into the struct at base per def. Returns an error
 * message (static) or NULL. */
static const char *
set_key(void *base, const struct key_def *def, const char *v, int *nlist)
{
	char *p = (char *)base + def->off;
	int64_t n;
	int b;

	switch (def->type) {
	case KT_STRING:
		free(*(char **)p);
		*(char **)p = *v != '\0' ? strdup(v) : NULL;
		return NULL;
	case KT_LIST:
		if (*nlist >= CONFIG_MAX_LISTEN)
			return "too many values";
		((char **)p)[(*nlist)++] = strdup(v);
		return NULL;
	case KT_INT:
	case KT_MS:
	case KT_SIZE:
		if (parse_int(v, def->type == KT_SIZE, &n) != 0)
			return def->type == KT_SIZE
				       ? "expected a size (e.g. 4M)"
				       : "expected a whole number";
		if (n < def->min || n > def->max)
			return "out of range";
		*(int64_t *)p = n;
		return NULL;
	case KT_BOOL:
		if (parse_bool(v, &b) != 0)
			return "expected yes or no";
		*(int *)p = b;
		return NULL;
	case KT_PTYPE:
		for (int i = 0; ptype_names[i] != NULL; i++) {
			if (strcmp(v, ptype_names[i]) == 0) {
				*(enum provider_type *)p =
					(enum provider_type)i;
				return NULL;
			}
		}
		return "unknown provider type";
	case KT_FLAVOR:
		b = flavor_from_name(v);
		if (b < 0)
			return "unknown flavor";
		*(enum flavor *)p = (enum flavor)b;
		return NULL;
	}
	return "bad key type";
}

/* Applies every default of a table. */
static void
set_defaults(void *base, const struct key_def *keys)
{
	for (const struct key_def *d = keys; d->name != NULL; d++) {
		int n = 0;
		if (d->type == KT_LIST) {
			char **l = (char **)((char *)base + d->off);
			if (l[0] == NULL && *d->def != '\0')
				l[0] = strdup(d->def);
			continue;
		}
		(void)set_key(base, d, d->def, &n);
	}
}

/* Finds a key in a table. */
static const struct key_def *
find_key(const struct key_def *keys, const char *name)
{
	for (const struct key_def *d = keys; d->name != NULL; d++)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

/* Returns a config holding every default. */
struct config *
config_defaults(void)
{
	struct config *cfg = calloc(1, sizeof *cfg);

	if (cfg == NULL)
		return NULL;
	cfg->refs = 1;
	set_defaults(cfg, global_keys);
	cfg->nlisten = cfg->listen[0] != NULL ? 1 : 0;
	return cfg;
}

/* Reads a secret from a file, trimmed, refusing (as ssh does) a file the
 * group or others may read unless allow_open. NULL with *why (static
 * text, or strerror's) when it cannot be used. */
static char *
read_secret_file(const char *path, int allow_open, const char **why)
{
	static char mode_msg[160];
	char buf[4096];
	struct stat st;
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		*why = strerror(errno);
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0) {
		*why = strerror(errno);
		fclose(f);
		return NULL;
	}
	if (!allow_open && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(mode_msg, sizeof mode_msg,
			 "mode %04o lets others read this secret; chmod 600 it "
			 "(or set allow_open_secret_files = yes)",
			 (unsigned)(st.st_mode & 07777));
		*why = mode_msg;
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (*trim(buf) == '\0') {
		*why = "the file is empty";
		return NULL;
	}
	return strdup(trim(buf));
}

/* Reads a token file (when path is set) into its SHA-256 digest: the
 * file holds the token, or "sha256:" and the digest in hex, so that the
 * token itself need not be on the server. The token is not kept. 0, or
 * -1 with *cause. */
static int
read_token(const char *path, int allow_open, unsigned char *digest, int *set,
	   char **cause)
{
	static const char pre[] = "sha256:";
	const char *why = NULL;
	char *t;
	size_t n;

	*set = 0;
	if (path == NULL)
		return 0;
	if ((t = read_secret_file(path, allow_open, &why)) == NULL) {
		*cause = errorf(path, 0, "%s", why);
		return -1;
	}
	n = strlen(t);
	if (strncmp(t, pre, sizeof pre - 1) == 0) {
		const char *hex = t + sizeof pre - 1;
		int ok = strlen(hex) == 2 * CONFIG_TOKEN_DIGEST;
		for (size_t i = 0; ok && i < CONFIG_TOKEN_DIGEST; i++) {
			unsigned v = 0;
			ok = isxdigit((unsigned char)hex[2 * i]) &&
			     isxdigit((unsigned char)hex[2 * i + 1]) &&
			     sscanf(hex + 2 * i, "%2x", &v) == 1;
			digest[i] = (unsigned char)v;
		}
		if (!ok) {
			*cause = errorf(
				path, 0,
				"sha256: must be followed by the 64 hex digits of the token's SHA-256");
			free(t);
			return -1;
		}
	} else {
		SHA256((const unsigned char *)t, n, digest);
	}
	explicit_bzero(t, n);
	free(t);
	*set = 1;
	return 0;
}

/* Resolves the key secret: key_secret_file, else TOLLGATE_KEY_SECRET;
 * there must be one. */
int
config_resolve_secret(struct config *cfg, char **cause)
{
	const char *env, *why = NULL;

	free(cfg->key_secret);
	cfg->key_secret = NULL;
	if (cfg->key_secret_file != NULL) {
		cfg->key_secret =
			read_secret_file(cfg->key_secret_file,
					 cfg->allow_open_secret_files, &why);
		if (cfg->key_secret == NULL) {
			*cause = errorf(cfg->key_secret_file, 0, "%s", why);
			return -1;
		}
	} else if ((env = getenv("TOLLGATE_KEY_SECRET")) != NULL &&
		   *env != '\0') {
		cfg->key_secret = strdup(env);
	} else {
		*cause = errorf(
			cfg->path != NULL ? cfg->path : "key secret", 0,
			"no key secret: set key_secret_file or TOLLGATE_KEY_SECRET (the gateway and tollctl must use the same)");
		return -1;
	}
	return 0;
}

/* Reads a provider's credential from its variable or file. */
static int
resolve_provider_key(const char *path, struct provider_conf *p, int allow_open,
		     char **cause)
{
	if (p->api_key_env != NULL) {
		const char *v = getenv(p->api_key_env);
		if (v == NULL || *v == '\0') {
			*cause = errorf(
				path, 0,
				"provider %s: environment variable %s is not set",
				p->name, p->api_key_env);
			return -1;
		}
		p->api_key = strdup(v);
	} else if (p->api_key_file != NULL) {
		const char *why = NULL;
		p->api_key =
			read_secret_file(p->api_key_file, allow_open, &why);
		if (p->api_key == NULL) {
			*cause = errorf(path, 0, "provider %s: %s: %s", p->name,
					p->api_key_file, why);
			return -1;
		}
	}
	return 0;
}

/* Parses "a:m1, b:m2" into a route's targets, resolving providers. */
static const char *
parse_targets(struct config *cfg, struct route_conf *r, char *v)
{
	char *save = NULL;

	for (char *t = strtok_r(v, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		char *colon;
		struct provider_conf *p;

		t = trim(t);
		colon = strchr(t, ':');
		if (colon == NULL || colon == t || colon[1] == '\0')
			return "expected provider:model";
		*colon = '\0';
		p = config_provider(cfg, t);
		if (p == NULL)
			return "unknown provider (define its [provider] "
			       "section first)";
		if (r->ntargets >= CONFIG_MAX_TARGETS)
			return "too many targets";
		r->targets[r->ntargets].provider = p;
		r->targets[r->ntargets].model = strdup(trim(colon + 1));
		r->ntargets++;
	}
	return r->ntargets > 0 ? NULL : "no targets";
}

/* Splits a listen entry, "host:port" or "host:port tls": the address
 * into addr, *tls set when marked. 0, or -1 when malformed. */
int
config_listen_split(const char *entry, char *addr, size_t size, int *tls)
{
	const char *sp = strchr(entry, ' ');
	size_t n = sp != NULL ? (size_t)(sp - entry) : strlen(entry);

	*tls = 0;
	if (sp != NULL) {
		while (*sp == ' ')
			sp++;
		if (strcmp(sp, "tls") != 0)
			return -1;
		*tls = 1;
	}
	if (n == 0 || n >= size || memchr(entry, ':', n) == NULL)
		return -1;
	memcpy(addr, entry, n);
	addr[n] = '\0';
	return 0;
}

/* Whether "host:port" names a loopback host: 127.0.0.0/8, [::1] or
 * localhost. */
int
config_is_loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 ||
	       strncmp(addr, "[::1]:", 6) == 0 ||
	       strncmp(addr, "localhost:", 10) == 0;
}

/* Checks what no single key can: required keys and cross-key rules. */
static int
validate(struct config *cfg, const char *path, char **cause)
{
	if (cfg->log_level == NULL || log_level_from_name(cfg->log_level) < 0) {
		*cause = errorf(path, 0, "log_level: unknown level '%s'",
				cfg->log_level);
		return -1;
	}
	if (cfg->log_format == NULL || (strcmp(cfg->log_format, "text") != 0 &&
					strcmp(cfg->log_format, "json") != 0)) {
		*cause = errorf(path, 0, "log_format: expected text or json");
		return -1;
	}
	if (cfg->on_db_down == NULL ||
	    (strcmp(cfg->on_db_down, "serve") != 0 &&
	     strcmp(cfg->on_db_down, "refuse") != 0)) {
		*cause =
			errorf(path, 0, "on_db_down: expected serve or refuse");
		return -1;
	}
	cfg->db_down_refuse = strcmp(cfg->on_db_down, "refuse") == 0;
	for (int i = 0; i < cfg->nlisten; i++) {
		char addr[300];
		int tls;
		if (config_listen_split(cfg->listen[i], addr, sizeof addr,
					&tls) != 0) {
			*cause = errorf(
				path, 0,
				"listen %s: expected host:port, optionally followed by tls",
				cfg->listen[i]);
			return -1;
		}
		if (tls &&
		    (cfg->tls_cert_file == NULL || cfg->tls_key_file == NULL)) {
			*cause = errorf(
				path, 0,
				"listen %s: tls needs tls_cert_file and tls_key_file",
				cfg->listen[i]);
			return -1;
		}
	}
	if (cfg->admin_listen != NULL &&
	    !config_is_loopback(cfg->admin_listen) &&
	    cfg->admin_token_file == NULL &&
	    cfg->admin_readonly_token_file == NULL) {
		*cause = errorf(
			path, 0,
			"admin_listen %s is not a loopback address: set admin_token_file, or the spend of every tenant is open to the network",
			cfg->admin_listen);
		return -1;
	}
	if (cfg->tls_client_ca_file != NULL && cfg->tls_cert_file == NULL) {
		*cause = errorf(path, 0,
				"tls_client_ca_file: needs tls_cert_file");
		return -1;
	}
	if (cfg->spool_dir == NULL) {
		*cause = errorf(path, 0, "spool_dir: a directory is required");
		return -1;
	}
	for (struct provider_conf *p = cfg->providers; p; p = p->next) {
		size_t n, scheme;
		if (p->base_url == NULL) {
			*cause = errorf(path, 0,
					"provider %s: base_url is required",
					p->name);
			return -1;
		}
		scheme = strncmp(p->base_url, "http://", 7) == 0    ? 7
			 : strncmp(p->base_url, "https://", 8) == 0 ? 8
								    : 0;
		if (scheme == 0) {
			*cause = errorf(
				path, 0,
				"provider %s: base_url must start with http:// or https://",
				p->name);
			return -1;
		}
		n = strlen(p->base_url);
		while (n > scheme && p->base_url[n - 1] == '/')
			p->base_url[--n] = '\0';
		if (n == scheme) {
			*cause = errorf(path, 0,
					"provider %s: base_url has no host",
					p->name);
			return -1;
		}
		/* The type decides the usage quirks of the two that have a
		 * wire or an endpoint of their own. */
		if (p->type == PROVIDER_ANTHROPIC)
			p->flavor = FLAVOR_ANTHROPIC;
		else if (p->type == PROVIDER_AZURE)
			p->flavor = FLAVOR_AZURE;
		else if (p->flavor == FLAVOR_ANTHROPIC) {
			*cause = errorf(
				path, 0,
				"provider %s: flavor anthropic needs type = anthropic",
				p->name);
			return -1;
		}
		if (p->type == PROVIDER_AZURE &&
		    (p->api_version == NULL || strlen(p->api_version) < 10)) {
			*cause = errorf(
				path, 0,
				"provider %s: api_version must look like 2024-10-21",
				p->name);
			return -1;
		}
		/* Azure api-versions before 2024-10-21 reject
		 * stream_options: their streams are metered by estimate. */
		p->no_stream_options =
			p->type == PROVIDER_AZURE &&
			strncmp(p->api_version, "2024-10-21", 10) < 0;
	}
	for (struct route_conf *r = cfg->routes; r; r = r->next) {
		if (r->ntargets == 0) {
			*cause = errorf(path, 0, "route %s: target is required",
					r->name);
			return -1;
		}
	}
	return 0;
}

/* A configuration file being read. */
struct parse {
	const char *path;
	int lineno;
	struct config *cfg;
	enum { SEC_NONE, SEC_GLOBAL, SEC_PROVIDER, SEC_ROUTE } sec;
	struct provider_conf *prov, **ptail;
	struct route_conf *route, **rtail;
	int nlisten;
	char *cause;
};

/* Fails the parse at the current line; returns -1. */
static int __attribute__((format(printf, 2, 3)))
parse_error(struct parse *ps, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ps->cause = errorf(ps->path, ps->lineno, "%s", msg);
	return -1;
}

/* Starts a [provider NAME] section. 0 or -1. */
static int
begin_provider(struct parse *ps, const char *name)
{
	struct provider_conf *prov;

	if (config_provider(ps->cfg, name) != NULL)
		return parse_error(ps, "provider %s defined twice", name);
	prov = calloc(1, sizeof *prov);
	if (prov == NULL || (prov->name = strdup(name)) == NULL) {
		free(prov);
		return parse_error(ps, "out of memory");
	}
	set_defaults(prov, provider_keys);
	*ps->ptail = prov;
	ps->ptail = &prov->next;
	ps->prov = prov;
	ps->sec = SEC_PROVIDER;
	return 0;
}

/* Starts a [route NAME] section. 0 or -1. */
static int
begin_route(struct parse *ps, const char *name)
{
	struct route_conf *route;

	for (route = ps->cfg->routes; route; route = route->next)
		if (strcmp(route->name, name) == 0)
			return parse_error(ps, "route %s defined twice", name);
	route = calloc(1, sizeof *route);
	if (route == NULL || (route->name = strdup(name)) == NULL) {
		free(route);
		return parse_error(ps, "out of memory");
	}
	*ps->rtail = route;
	ps->rtail = &route->next;
	ps->route = route;
	ps->sec = SEC_ROUTE;
	return 0;
}

/* A section header line, "[tollgate]", "[provider NAME]" or
 * "[route NAME]". 0 or -1. */
static int
parse_section(struct parse *ps, char *s)
{
	char *end = strchr(s, ']'), *name;

	if (end == NULL || *trim(end + 1) != '\0')
		return parse_error(ps, "bad section header: %s", s);
	*end = '\0';
	s = trim(s + 1);
	name = strchr(s, ' ');
	if (name != NULL) {
		*name++ = '\0';
		name = trim(name);
	}
	if (strcmp(s, "tollgate") == 0 && name == NULL) {
		ps->sec = SEC_GLOBAL;
		return 0;
	}
	if (strcmp(s, "provider") == 0 && name != NULL && *name != '\0')
		return begin_provider(ps, name);
	if (strcmp(s, "route") == 0 && name != NULL && *name != '\0')
		return begin_route(ps, name);
	return parse_error(ps, "unknown section [%s%s%s]", s, name ? " " : "",
			   name ? name : "");
}

/* A [tollgate] key. The error, or NULL. */
static const char *
set_global(struct parse *ps, const struct key_def *def, const char *val)
{
	if (def->type == KT_LIST && ps->nlisten == 0) {
		/* The first value replaces the default. */
		for (int i = 0; i < CONFIG_MAX_LISTEN; i++) {
			free(ps->cfg->listen[i]);
			ps->cfg->listen[i] = NULL;
		}
	}
	if (def->type == KT_LIST && *val == '\0')
		return NULL;
	return set_key(ps->cfg, def, val, &ps->nlisten);
}

/* A "key = value" line in the current section. 0 or -1. */
static int
parse_key(struct parse *ps, char *s)
{
	char *eq = strchr(s, '='), *key, *val, *c;
	const struct key_def *def;
	const char *err;

	if (eq == NULL)
		return parse_error(ps, "expected key = value: %s", s);
	*eq = '\0';
	key = trim(s);
	val = eq + 1;
	/* An inline comment starts at " ;" or " #". */
	for (c = val; *c != '\0'; c++) {
		if ((*c == ';' || *c == '#') &&
		    (c == val || isspace((unsigned char)c[-1]))) {
			*c = '\0';
			break;
		}
	}
	val = trim(val);
	switch (ps->sec) {
	case SEC_GLOBAL:
		if ((def = find_key(global_keys, key)) == NULL)
			return parse_error(ps, "unknown key '%s' in [tollgate]",
					   key);
		err = set_global(ps, def, val);
		break;
	case SEC_PROVIDER:
		if ((def = find_key(provider_keys, key)) == NULL)
			return parse_error(ps,
					   "unknown key '%s' in [provider %s]",
					   key, ps->prov->name);
		err = set_key(ps->prov, def, val, &ps->nlisten);
		break;
	case SEC_ROUTE:
		if (strcmp(key, "target") != 0)
			return parse_error(ps, "unknown key '%s' in [route %s]",
					   key, ps->route->name);
		if (ps->route->ntargets > 0)
			return parse_error(ps, "target: given twice");
		err = parse_targets(ps->cfg, ps->route, val);
		break;
	default:
		return parse_error(ps, "%s: key outside of a section", key);
	}
	if (err != NULL)
		return parse_error(ps, "%s: %s: '%s'", key, err, val);
	return 0;
}

/* Reads every line of f into ps->cfg. 0 or -1. */
static int
parse_file(struct parse *ps, FILE *f)
{
	char line[4096];

	while (fgets(line, sizeof line, f) != NULL) {
		char *s;

		ps->lineno++;
		if (strchr(line, '\n') == NULL && !feof(f))
			return parse_error(ps, "line too long");
		s = trim(line);
		if (*s == '\0' || *s == ';' || *s == '#')
			continue;
		if ((*s == '[' ? parse_section(ps, s) : parse_key(ps, s)) != 0)
			return -1;
	}
	return 0;
}

/* Reads and validates a configuration file. */
struct config *
config_load(const char *path, int flags, char **cause)
{
	struct parse ps = { .path = path };
	struct config *cfg;
	FILE *f;
	int rc;

	*cause = NULL;
	f = fopen(path, "r");
	if (f == NULL) {
		*cause = errorf(path, 0, "%s", strerror(errno));
		return NULL;
	}
	cfg = calloc(1, sizeof *cfg);
	if (cfg == NULL || (cfg->path = strdup(path)) == NULL) {
		free(cfg);
		fclose(f);
		*cause = errorf(path, 0, "out of memory");
		return NULL;
	}
	cfg->refs = 1;
	set_defaults(cfg, global_keys);
	ps.cfg = cfg;
	ps.ptail = &cfg->providers;
	ps.rtail = &cfg->routes;
	rc = parse_file(&ps, f);
	fclose(f);
	if (rc != 0) {
		*cause = ps.cause;
		goto fail;
	}
	cfg->nlisten = ps.nlisten;
	if (cfg->nlisten == 0 && cfg->listen[0] != NULL)
		cfg->nlisten = 1;
	if (validate(cfg, path, cause) != 0)
		goto fail;
	if (!(flags & CONFIG_NO_SECRETS)) {
		for (struct provider_conf *p = cfg->providers; p; p = p->next)
			if (resolve_provider_key(path, p,
						 cfg->allow_open_secret_files,
						 cause) != 0)
				goto fail;
		if (config_resolve_secret(cfg, cause) != 0)
			goto fail;
		if (read_token(cfg->admin_token_file,
			       cfg->allow_open_secret_files,
			       cfg->admin_token_sha, &cfg->admin_token_set,
			       cause) != 0 ||
		    read_token(cfg->admin_readonly_token_file,
			       cfg->allow_open_secret_files,
			       cfg->readonly_token_sha,
			       &cfg->readonly_token_set, cause) != 0)
			goto fail;
		if (cfg->admin_token_set && cfg->readonly_token_set &&
		    memcmp(cfg->admin_token_sha, cfg->readonly_token_sha,
			   CONFIG_TOKEN_DIGEST) == 0) {
			*cause = errorf(
				path, 0,
				"admin_readonly_token_file holds the admin token: the read-only role needs a token of its own");
			goto fail;
		}
	}
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}

/* Frees a provider list. */
static void
providers_free(struct provider_conf *p)
{
	while (p != NULL) {
		struct provider_conf *next = p->next;
		free(p->name);
		free(p->base_url);
		free(p->api_key_env);
		free(p->api_key_file);
		free(p->proxy);
		free(p->ca_file);
		free(p->api_version);
		free(p->anthropic_version);
		if (p->api_key != NULL) {
			memset(p->api_key, 0, strlen(p->api_key));
			free(p->api_key);
		}
		free(p);
		p = next;
	}
}

/* Frees a configuration and everything it owns. */
void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (struct route_conf *r = cfg->routes, *next; r; r = next) {
		next = r->next;
		for (int i = 0; i < r->ntargets; i++)
			free(r->targets[i].model);
		free(r->name);
		free(r);
	}
	providers_free(cfg->providers);
	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		free(cfg->listen[i]);
	free(cfg->path);
	free(cfg->admin_listen);
	free(cfg->database);
	free(cfg->key_secret_file);
	free(cfg->admin_token_file);
	free(cfg->admin_readonly_token_file);
	free(cfg->tollctl);
	free(cfg->tls_cert_file);
	free(cfg->tls_key_file);
	free(cfg->tls_client_ca_file);
	if (cfg->key_secret != NULL) {
		memset(cfg->key_secret, 0, strlen(cfg->key_secret));
		free(cfg->key_secret);
	}
	free(cfg->log_level);
	free(cfg->log_format);
	free(cfg->pid_file);
	free(cfg->spool_dir);
	free(cfg->on_db_down);
	free(cfg);
}

/* Takes a reference. */
struct config *
config_ref(struct config *cfg)
{
	__atomic_add_fetch(&cfg->refs, 1, __ATOMIC_RELAXED);
	return cfg;
}

/* Drops a reference; the last one frees. */
void
config_unref(struct config *cfg)
{
	if (cfg != NULL &&
	    __atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(cfg);
}

/* Finds a provider by section name. */
struct provider_conf *
config_provider(const struct config *cfg, const char *name)
{
	for (struct provider_conf *p = cfg->providers; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

/* Finds the route for a requested model: exact, else "*". */
const struct route_conf *
config_route(const struct config *cfg, const char *model)
{
	const struct route_conf *star = NULL;

	for (const struct route_conf *r = cfg->routes; r; r = r->next) {
		if (strcmp(r->name, model) == 0)
			return r;
		if (strcmp(r->name, "*") == 0)
			star = r;
	}
	return star;
}

/* Prints one table's keys as INI lines. */
static void
print_keys(const void *base, const struct key_def *keys, int defaults)
{
	for (const struct key_def *d = keys; d->name != NULL; d++) {
		const char *p = (const char *)base + d->off;
		printf("; %s\n", d->help);
		if (defaults || base == NULL) {
			printf("%s = %s\n", d->name, d->def);
			continue;
		}
		switch (d->type) {
		case KT_STRING:
			printf("%s = %s\n", d->name,
			       *(char *const *)p ? *(char *const *)p : "");
			break;
		case KT_LIST:
			for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
				if (((char *const *)p)[i] != NULL)
					printf("%s = %s\n", d->name,
					       ((char *const *)p)[i]);
			break;
		case KT_INT:
		case KT_MS:
		case KT_SIZE:
			printf("%s = %lld\n", d->name,
			       (long long)*(const int64_t *)p);
			break;
		case KT_BOOL:
			printf("%s = %s\n", d->name,
			       *(const int *)p ? "yes" : "no");
			break;
		case KT_PTYPE:
			printf("%s = %s\n", d->name,
			       ptype_names[*(const enum provider_type *)p]);
			break;
		case KT_FLAVOR:
			printf("%s = %s\n", d->name,
			       flavor_name(*(const enum flavor *)p));
			break;
		}
	}
}

/* Prints the configuration (or the defaults) as an INI file. Secrets are
 * never printed: only where they come from. */
void
config_print(const struct config *cfg, int defaults)
{
	printf("[tollgate]\n");
	print_keys(cfg, global_keys, defaults);
	if (defaults) {
		printf("\n[provider NAME]\n");
		print_keys(NULL, provider_keys, 1);
		printf("\n[route MODEL]\n; provider:model, fallbacks after "
		       "commas\ntarget =\n");
		return;
	}
	for (const struct provider_conf *p = cfg->providers; p; p = p->next) {
		printf("\n[provider %s]\n", p->name);
		print_keys(p, provider_keys, 0);
	}
	for (const struct route_conf *r = cfg->routes; r; r = r->next) {
		printf("\n[route %s]\ntarget = ", r->name);
		for (int i = 0; i < r->ntargets; i++)
			printf("%s%s:%s", i ? ", " : "",
			       r->targets[i].provider->name,
			       r->targets[i].model);
		printf("\n");
	}
}
