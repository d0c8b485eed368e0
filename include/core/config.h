/*
 * config.h - the INI configuration, read through one declarative table.
 *
 * [tollgate] holds process settings; [provider NAME] and [route NAME]
 * sections repeat. Every key, its type, default and help text live in the
 * tables in config.c, which also drive `tollgated --print-config` and the
 * check that etc/tollgate.conf.sample documents each key.
 */
#ifndef TOLLGATE_CONFIG_H
#define TOLLGATE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "tollgate.h"

#define CONFIG_MAX_LISTEN  8
#define CONFIG_MAX_TARGETS 8

enum provider_type {
	PROVIDER_OPENAI,            /* api.openai.com or a compatible proxy */
	PROVIDER_OPENAI_COMPATIBLE, /* a provider speaking OpenAI's API */
	PROVIDER_AZURE,
	PROVIDER_ANTHROPIC,
};

struct provider_conf {
	char *name;
	enum provider_type type;
	enum flavor flavor;
	char *base_url;     /* no trailing slash */
	char *api_key_env;  /* variable holding the credential */
	char *api_key_file; /* or a file holding it */
	char *api_key;      /* resolved credential; never logged */
	char *proxy;        /* parent proxy for libcurl, or NULL */
	int64_t connect_timeout_ms;
	int64_t timeout_ms;      /* whole non-streamed transfer */
	int64_t idle_timeout_ms; /* no byte from upstream for this long */
	int tls_verify;
	char *ca_file;
	int compression;         /* ask for whole answers compressed */
	char *api_version;       /* azure: api-version */
	char *anthropic_version; /* anthropic: anthropic-version header */
	int no_stream_options;   /* azure before 2024-10-21 */
	struct provider_conf *next;
};

struct route_target {
	struct provider_conf *provider; /* borrowed from the config */
	char *model;                    /* upstream model name */
};

struct route_conf {
	char *name; /* requested model, or "*" */
	int ntargets;
	struct route_target targets[CONFIG_MAX_TARGETS];
	struct route_conf *next;
};

#define CONFIG_TOKEN_DIGEST 32

struct config {
	int refs; /* config_ref/config_unref */
	char *path;
	char *listen[CONFIG_MAX_LISTEN];
	int nlisten;
	char *admin_listen;
	char *admin_token_file;
	char *admin_readonly_token_file;
	int admin_loopback_open; /* loopback clients are admins, no token */
	/* SHA-256 digests of the admin and read-only tokens (the tokens
	 * themselves are not kept); *_set says whether one is configured. */
	unsigned char admin_token_sha[CONFIG_TOKEN_DIGEST];
	unsigned char readonly_token_sha[CONFIG_TOKEN_DIGEST];
	int admin_token_set, readonly_token_set;
	char *tollctl; /* the tollctl the console runs; NULL: found */
	int64_t workers;
	char *database;
	char *key_secret_file;
	char *key_secret;            /* resolved; never logged */
	int allow_open_secret_files; /* secret files others may read */
	int64_t max_body_size;
	int64_t max_json_depth;
	int64_t header_timeout_ms;    /* headers' deadline */
	int64_t body_timeout_ms;      /* body's deadline */
	int64_t keepalive_timeout_ms; /* idle between requests */
	int64_t send_timeout_ms;      /* a reply left unread */
	int64_t max_connections;
	int64_t max_connections_per_address;
	int64_t max_header_size; /* request line and headers */
	int64_t max_headers;
	char *tls_cert_file; /* for listen addresses marked tls */
	char *tls_key_file;
	char *tls_client_ca_file; /* mutual TLS when set */
	int64_t tls_ticket_rotate_ms;
	int64_t keys_refresh_ms;
	int64_t usage_batch;
	int64_t usage_flush_ms;
	int64_t stream_buffer; /* client output bytes before upstream pauses */
	int64_t shutdown_timeout_ms;
	char *spool_dir;
	int64_t spool_fsync_ms;
	int64_t spool_segment_size;
	char *on_db_down;           /* "serve" or "refuse" */
	int db_down_refuse;         /* on_db_down = refuse */
	int64_t default_output_cap; /* worst-case output when max_tokens is
				       absent */
	int test_clock; /* the admin endpoint may move the policy clock */
	char *log_level;
	char *log_format;
	char *pid_file;
	struct provider_conf *providers;
	struct route_conf *routes;
};

/* Reads and validates path. On error returns NULL and sets *cause to a
 * malloc'd "FILE:LINE: message" (caller frees). Resolves provider
 * credentials and the key secret unless flags has CONFIG_NO_SECRETS. */
#define CONFIG_NO_SECRETS 0x1
struct config *config_load(const char *path, int flags, char **cause)
	__attribute__((warn_unused_result));

/* A config with every default and no providers or routes. */
struct config *config_defaults(void);

void config_free(struct config *cfg);

/* A loaded config is shared by reference between the threads and requests
 * that use it (a reload swaps in a new one; requests in flight finish on
 * theirs). config_load and config_defaults return one reference. */
struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

struct provider_conf *config_provider(const struct config *cfg,
				      const char *name);

/* The route for a requested model: an exact match, else "*", else NULL. */
const struct route_conf *config_route(const struct config *cfg,
				      const char *model);

/* Resolves the key secret alone (for tollctl): key_secret_file, else the
 * TOLLGATE_KEY_SECRET variable; neither is an error, and so is a file the
 * group or others may read (unless allow_open_secret_files). Returns 0 or
 * -1 with *cause. */
int config_resolve_secret(struct config *cfg, char **cause);

/* Whether "host:port" names a loopback host (127.0.0.0/8, [::1],
 * localhost). */
int config_is_loopback(const char *addr);

/* Splits a listen entry, "host:port" or "host:port tls": the address
 * into addr (size bytes), *tls set when marked. 0, or -1 when malformed. */
int config_listen_split(const char *entry, char *addr, size_t size, int *tls);

/* Writes every [tollgate] key with its value, or "(default)" docs when
 * defaults is set, to stdout. */
void config_print(const struct config *cfg, int defaults);

#endif
