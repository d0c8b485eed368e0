/*
 * provider.h - what differs between providers on the way out: the URL,
 * the credential header, and the body rewrite (model name, and
 * stream_options.include_usage where the flavor only reports stream usage
 * when asked).
 */
#ifndef TOLLGATE_PROVIDER_H
#define TOLLGATE_PROVIDER_H

#include <stddef.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>

struct provider_conf;
struct endpoint;

/* The body to send upstream: the client's bytes with the model's value
 * replaced by model and, for a stream to a flavor that needs it,
 * include_usage switched on. *injected tells whether the gateway asked for
 * usage the client had not. Returns a malloc'd string (length in *outlen)
 * or NULL. json is the parsed body, for reading only. */
char *provider_rewrite_body(const struct provider_conf *p, const char *body,
			    size_t len, const cJSON *json, const char *model,
			    int *injected, size_t *outlen);

/* The full upstream URL for an endpoint. malloc'd. */
char *provider_url(const struct provider_conf *p, const struct endpoint *ep);

/* Request headers for the provider (credential, content type). */
struct curl_slist *provider_headers(const struct provider_conf *p);

/* Applies the provider's connection settings (timeouts, proxy, TLS) to an
 * easy handle. stream selects the idle timeout instead of the total one. */
void provider_setopt(const struct provider_conf *p, CURL *easy, int stream);

#endif
