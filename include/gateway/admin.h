/*
 * admin.h - the admin address: /healthz, /readyz, /metrics and the web
 * console (console.h).
 */
#ifndef TOLLGATE_ADMIN_H
#define TOLLGATE_ADMIN_H

struct event_base;
struct httpd;
struct config;

/* Starts the admin HTTP server on base at addr ("host:port"). *cfgp is
 * the current configuration, read on base's thread (which also swaps it
 * on reload); when its test_clock is set, POST /clock/advance?ms=N moves
 * the policy clock. Returns the server, or NULL with *cause (caller
 * frees). */
struct httpd *admin_start(struct event_base *base, const char *addr,
			  struct config *const *cfgp, char **cause);

/* Hands the admin server the configuration a reload made (its limits),
 * before the old one is released. */
void admin_set_config(struct httpd *admin, const struct config *cfg);

/* Stops the admin server and the console (NULL: nothing). */
void admin_stop(struct httpd *admin);

#endif
