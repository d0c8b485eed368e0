/*
 * admin.h - the operations endpoints: /healthz, /readyz, /metrics.
 */
#ifndef TOLLGATE_ADMIN_H
#define TOLLGATE_ADMIN_H

struct event_base;
struct evhttp;

/* Starts the admin HTTP server on base at addr ("host:port"). When
 * *test_clock is set (borrowed; outlives the server), POST
 * /clock/advance?ms=N moves the policy clock. Returns the server, or NULL
 * with *cause (caller frees). */
struct evhttp *admin_start(struct event_base *base, const char *addr,
			   const int *test_clock, char **cause);

#endif
