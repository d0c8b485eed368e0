/*
 * tls.c - the data plane's TLS server context (tls.h).
 *
 * One context for every worker, swapped whole on reload under a lock:
 * each connection takes a session on the context in use when it arrives,
 * and that session holds its own reference, so a reload never disturbs a
 * connection. Defaults follow current practice: TLS 1.2 and 1.3 only,
 * forward-secret AEAD suites for 1.2 in the server's order, no
 * renegotiation, no compression. Session tickets are sealed with a key
 * this process makes and replaces every tls_ticket_rotate; tickets sealed
 * with the previous key still resume (and are renewed), older ones start
 * a full handshake.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "tls.h"

#define CIPHERS_TLS12                                                          \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* A session-ticket key: its name on the wire, the cipher and MAC keys. */
struct ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
	int64_t made_ms; /* 0: none */
};

static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *tls_ctx;          /* in use; under tls_lock */
static struct ticket_key keys[2]; /* current, previous; under tls_lock */
static int64_t rotate_ms;         /* under tls_lock */

/* The first error on OpenSSL's queue, for a message. */
static const char *
ssl_error(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, size, "unknown error");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

/* Makes a fresh current ticket key when it is due, keeping the last one
 * as previous. Under tls_lock. 0, or -1 when no randomness. */
static int
rotate_keys(int64_t now_ms)
{
	struct ticket_key k;

	if (keys[0].made_ms != 0 && now_ms - keys[0].made_ms < rotate_ms)
		return 0;
	if (RAND_bytes(k.name, sizeof k.name) != 1 ||
	    RAND_bytes(k.aes, sizeof k.aes) != 1 ||
	    RAND_bytes(k.hmac, sizeof k.hmac) != 1)
		return -1;
	k.made_ms = now_ms;
	keys[1] = keys[0];
	keys[0] = k;
	OPENSSL_cleanse(&k, sizeof k);
	return 0;
}

/* Sets up the ticket's cipher and MAC with key k. 0 or -1. */
static int
ticket_crypto(const struct ticket_key *k, unsigned char *iv,
	      EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(
			OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof k->hmac),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	if (EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv, enc) !=
		    1 ||
	    EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	return 0;
}

/* OpenSSL's ticket callback: seal with the current key; open with the
 * current (1) or the previous one (2: renew the ticket). */
static int
ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
	  EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct ticket_key k;
	int rc = 0;

	(void)ssl;
	pthread_mutex_lock(&tls_lock);
	if (rotate_keys(clock_mono_us() / 1000) != 0) {
		pthread_mutex_unlock(&tls_lock);
		return enc ? -1 : 0;
	}
	if (enc) {
		k = keys[0];
		rc = 1;
	} else {
		for (int i = 0; i < 2 && rc == 0; i++)
			if (keys[i].made_ms != 0 &&
			    memcmp(keys[i].name, name, 16) == 0) {
				k = keys[i];
				rc = i + 1;
			}
	}
	pthread_mutex_unlock(&tls_lock);
	if (rc == 0)
		return 0;
	if (enc) {
		memcpy(name, k.name, 16);
		if (RAND_bytes(iv, EVP_CIPHER_iv_length(EVP_aes_256_cbc())) !=
		    1)
			rc = -1;
	}
	if (rc > 0 && ticket_crypto(&k, iv, cctx, hctx, enc) != 0)
		rc = enc ? -1 : 0;
	OPENSSL_cleanse(&k, sizeof k);
	return rc;
}

/* Builds a context from cfg. NULL with *cause. */
static SSL_CTX *
build(const struct config *cfg, char **cause)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char err[256], msg[600];
	const char *what = "cannot create a TLS context";

	if (ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, CIPHERS_TLS12) != 1) {
		what = "cipher list";
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
		what = cfg->tls_cert_file;
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file,
					SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		what = cfg->tls_key_file;
		goto fail;
	}
	if (cfg->tls_client_ca_file != NULL) {
		STACK_OF(X509_NAME) *names =
			SSL_load_client_CA_file(cfg->tls_client_ca_file);
		if (names == NULL ||
		    SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca_file,
						  NULL) != 1) {
			if (names != NULL)
				sk_X509_NAME_pop_free(names, X509_NAME_free);
			what = cfg->tls_client_ca_file;
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(
			ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			NULL);
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (cfg->tls_ticket_rotate_ms > 0)
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
	else
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, cfg->tls_ticket_rotate_ms > 0 ? 1 : 0);
	return ctx;
fail:
	snprintf(msg, sizeof msg, "tls: %s: %s", what,
		 ssl_error(err, sizeof err));
	*cause = strdup(msg);
	SSL_CTX_free(ctx);
	return NULL;
}

int
tls_configure(const struct config *cfg, char **cause)
{
	SSL_CTX *ctx = NULL, *old;

	if (cfg->tls_cert_file != NULL && (ctx = build(cfg, cause)) == NULL)
		return -1;
	if (ctx != NULL) {
		X509 *cert = SSL_CTX_get0_certificate(ctx);
		if (cert != NULL &&
		    X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
			log_warn(
				"tls: %s: the certificate has expired; clients will refuse it",
				cfg->tls_cert_file);
		else if (cert != NULL &&
			 X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
			log_warn("tls: %s: the certificate is not valid yet",
				 cfg->tls_cert_file);
	}
	pthread_mutex_lock(&tls_lock);
	old = tls_ctx;
	tls_ctx = ctx;
	rotate_ms = cfg->tls_ticket_rotate_ms;
	pthread_mutex_unlock(&tls_lock);
	SSL_CTX_free(old);
	return 0;
}

SSL *
tls_session_new(void)
{
	SSL *ssl = NULL;

	pthread_mutex_lock(&tls_lock);
	if (tls_ctx != NULL)
		ssl = SSL_new(tls_ctx);
	pthread_mutex_unlock(&tls_lock);
	return ssl;
}

int
tls_peer_subject(SSL *ssl, char *out, size_t size)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	BIO *bio;
	int n;

	if (cert == NULL)
		return -1;
	bio = BIO_new(BIO_s_mem());
	n = bio != NULL ? X509_NAME_print_ex(bio, X509_get_subject_name(cert),
					     0, XN_FLAG_RFC2253)
			: -1;
	if (n >= 0) {
		n = BIO_read(bio, out, (int)size - 1);
		out[n > 0 ? n : 0] = '\0';
	}
	BIO_free(bio);
	X509_free(cert);
	return n >= 0 ? 0 : -1;
}

void
tls_shutdown(void)
{
	pthread_mutex_lock(&tls_lock);
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
	OPENSSL_cleanse(keys, sizeof keys);
	pthread_mutex_unlock(&tls_lock);
}
