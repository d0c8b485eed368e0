/*
 * upstream.h - libcurl's multi interface on a worker's event loop.
 *
 * Follows curl's hiperfifo example: curl tells us which sockets to watch
 * and when to time out; libevent events call curl_multi_socket_action();
 * finished transfers are collected after every action and handed back to
 * their request through CURLOPT_PRIVATE.
 */
#ifndef TOLLGATE_UPSTREAM_H
#define TOLLGATE_UPSTREAM_H

#include <curl/curl.h>

struct worker;

/* Sets up the worker's multi handle and its timer. 0 or -1. */
int upstream_init(struct worker *w) __attribute__((warn_unused_result));
void upstream_free(struct worker *w);

/* Starts a transfer; its CURLOPT_PRIVATE must be the owning request. */
int upstream_add(struct worker *w, CURL *easy)
	__attribute__((warn_unused_result));

/* Removes a transfer before it finished (client gone, shutdown). */
void upstream_remove(struct worker *w, CURL *easy);

#endif
