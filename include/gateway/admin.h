/*
 * admin.h - the operations endpoints: /healthz, /readyz, /metrics.
 */
#ifndef TOLLGATE_ADMIN_H
#define TOLLGATE_ADMIN_H

struct event_base;
struct evhttp;
struct config;

/* Starts the admin HTTP server on base at addr ("host:port"). *cfgp is
 * the current configuration, read on base's thread (which also swaps it
 * on reload); when its test_clock is set, POST /clock/advance?ms=N moves
 * the policy clock. Returns the server, or NULL with *cause (caller
 * frees). */
struct evhttp *admin_start(struct event_base *base, const char *addr,
			   struct config *const *cfgp, char **cause);

#endif
