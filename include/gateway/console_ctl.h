/*
 * console_ctl.h - running a tollctl verb for the console.
 *
 * The console's actions and bills are tollctl's verbs, run as tollctl
 * with the daemon's configuration file and --json: one implementation of
 * each (its checks, its transaction, its audit rows), whichever way an
 * operator reaches it. Blocking: called on a console thread only.
 */
#ifndef TOLLGATE_CONSOLE_CTL_H
#define TOLLGATE_CONSOLE_CTL_H

#include <sys/types.h>

#include "buf.h"

struct config;

/* The most a verb may print, and how long it may take. */
#define CONSOLE_CTL_MAX_OUTPUT (64u << 20)
#define CONSOLE_CTL_TIMEOUT_MS 120000

/* The outcome of one run. */
struct console_ctl_result {
	int exit; /* tollctl's exit status; -1 when it did not run or end */
	struct buf out; /* what it printed (caller frees with buf_free) */
	char err[512];  /* its error line without "tollctl: ", or why it
			   could not run */
};

/* Runs tollctl with args (NULL-terminated, the verb's words and options;
 * the configuration is added, and --json when json is set) as actor
 * (TOLLGATE_ACTOR, for the audit rows); *child holds tollctl's pid while
 * it runs (0 otherwise). 0 when tollctl ran and exited 0; -1
 * otherwise, with r->err saying why. r is filled either way. */
int console_ctl_run(const struct config *cfg, const char *actor,
		    const char *const *args, int json, _Atomic pid_t *child,
		    struct console_ctl_result *r);

#endif
