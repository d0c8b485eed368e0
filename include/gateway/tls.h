/*
 * tls.h - TLS for the data plane: the server context (certificate, key,
 * client CAs for mutual TLS, modern protocol and cipher defaults, session
 * tickets under a rotating key), replaced whole on reload.
 */
#ifndef TOLLGATE_TLS_H
#define TOLLGATE_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct config;

/* Builds the server context from cfg's tls_* keys and makes it the one
 * new connections use; connections already open keep theirs. With no
 * certificate configured there is none. 0, or -1 with *cause (malloc'd):
 * the context in use, if any, stays. */
int tls_configure(const struct config *cfg, char **cause);

/* A new server-side session on the context in use, or NULL when there is
 * none (or out of memory). */
SSL *tls_session_new(void);

/* Writes the subject of the peer's certificate (RFC 2253) into out, or
 * returns -1 when it presented none. */
int tls_peer_subject(SSL *ssl, char *out, size_t size);

/* Frees the context in use. */
void tls_shutdown(void);

#endif
