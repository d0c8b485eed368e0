/*
 * console.h - the web console and its JSON API, on the admin address.
 *
 * See doc/console.md for what it serves. The admin server (admin.c)
 * hands it every request that is not /healthz, /readyz, /metrics or
 * /clock/advance, and asks it who a request comes from.
 */
#ifndef TOLLGATE_CONSOLE_H
#define TOLLGATE_CONSOLE_H

#include "console_auth.h"

struct config;
struct event_base;
struct hreq;

/* Starts the console's threads and live figures on base. *cfgp is the
 * admin server's current configuration. 0, or -1 with *cause (static). */
int console_start(struct event_base *base, struct config *const *cfgp,
		  const char **cause);

/* Stops it; requests waiting for it get no answer (their connections
 * are closing). */
void console_stop(void);

/* The role a request proves (a token, the session cookie, or a loopback
 * address when admin_loopback_open), and how. */
enum console_role console_role_of(const struct config *cfg, struct hreq *req,
				  enum console_via *via);

/* Answers a request for the console or its API. */
void console_handle(struct hreq *req, const struct config *cfg);

#endif
