/*
 * console_db.h - the console's work off the event loop: its reads of
 * PostgreSQL and the tollctl verbs it runs.
 *
 * The admin server (console.c) turns a request into a job and submits
 * it; one of CONSOLE_THREADS threads, each with a blocking connection of
 * its own, does it (or, for a tollctl verb, one of CONSOLE_CTL_THREADS
 * others) and hands it back on the admin server's loop, which answers.
 * Neither the request path nor the usage writer shares anything with
 * these threads but the database.
 */
#ifndef TOLLGATE_CONSOLE_DB_H
#define TOLLGATE_CONSOLE_DB_H

#include "buf.h"

struct config;
struct event_base;

#define CONSOLE_THREADS      2 /* readers, a connection each */
#define CONSOLE_CTL_THREADS  2 /* tollctl verbs */
#define CONSOLE_JOB_MAX_ARGS 24
#define CONSOLE_ACTOR_MAX    160

enum console_op {
	CONSOLE_OVERVIEW, /* param[0]: the month's first day */
	CONSOLE_TENANTS,
	CONSOLE_TENANT, /* param[0]: month, param[1]: tenant */
	CONSOLE_CTL,    /* argv: a tollctl verb */
};

struct console_job {
	enum console_op op;
	struct config *cfg; /* a reference, taken and dropped by console.c */
	char *param[2];     /* owned */
	char *argv[CONSOLE_JOB_MAX_ARGS + 1]; /* owned, NULL-terminated */
	int wrap;           /* CONSOLE_CTL: answer {"ok":true,"result":…} */
	int text;           /* CONSOLE_CTL: the verb prints no JSON */
	const char *ctype;  /* CONSOLE_CTL: the answer's content type */
	char filename[128]; /* set: the answer is a download of that name */
	char actor[CONSOLE_ACTOR_MAX];
	/* Filled by the thread: an HTTP status and the body (JSON, an error
	 * in the data plane's shape when status is not 200). */
	int status;
	struct buf body;
	/* The submitter's. */
	void *owner;
	struct console_job *next;
};

/* Starts the threads, connecting to conninfo; done is called on base's
 * thread with each job finished. 0, or -1. */
int console_db_start(struct event_base *base, const char *conninfo,
		     void (*done)(struct console_job *j));

/* Queues a job (taken until done gives it back). */
void console_db_submit(struct console_job *j);

/* Stops the threads; the jobs not yet done are handed back to done
 * undone, status 0. */
void console_db_stop(void);

/* Writes an error in the data plane's JSON shape into b. */
void console_error_json(struct buf *b, int status, const char *code,
			const char *message);

#endif
