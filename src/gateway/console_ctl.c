/*
 * console_ctl.c - runs a tollctl verb and collects what it says.
 *
 * tollctl runs with posix_spawn, no descriptor of the daemon but its own
 * stdout and stderr pipes (and /dev/null as stdin), the daemon's
 * environment plus TOLLGATE_ACTOR. Both pipes are read with poll() until
 * they close, within CONSOLE_CTL_TIMEOUT_MS and CONSOLE_CTL_MAX_OUTPUT;
 * past either the child is killed. Its exit status is collected with
 * waitpid(): the daemon leaves SIGCHLD at its default.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "clock.h"
#include "config.h"
#include "console_ctl.h"

extern char **environ;

#define MAX_ARGS 40
#define MAX_ENV  512

/* Where tollctl is: the configured one, else the one beside this
 * executable (a build tree, or an install), else the installed one. */
static void
tollctl_path(const struct config *cfg, char *out, size_t size)
{
	char self[PATH_MAX];
	ssize_t n;

	if (cfg->tollctl != NULL) {
		snprintf(out, size, "%s", cfg->tollctl);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		char *slash;
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			int w = snprintf(out, size, "%s/tollctl", self);
			if (w > 0 && (size_t)w < size && access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, size, "%s/tollctl", TOLLGATE_BINDIR);
}

/* The environment of the child: ours, with TOLLGATE_ACTOR replaced. */
static int
child_env(const char *actor_var, char **env)
{
	int n = 0;

	for (char **e = environ; *e != NULL && n < MAX_ENV - 2; e++)
		if (strncmp(*e, "TOLLGATE_ACTOR=", 15) != 0)
			env[n++] = *e;
	env[n++] = (char *)actor_var;
	env[n] = NULL;
	return n;
}

/* Keeps the first line of what tollctl wrote to stderr, without its
 * "tollctl: ". */
static void
first_line(const char *s, size_t len, char *out, size_t size)
{
	const char *nl = memchr(s, '\n', len);
	size_t n = nl != NULL ? (size_t)(nl - s) : len;

	if (n >= 9 && strncmp(s, "tollctl: ", 9) == 0) {
		s += 9;
		n -= 9;
	}
	if (n >= size)
		n = size - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

/* Reads both pipes until they close, the deadline passes or the output
 * grows too large. 0, or -1 with why. */
static int
collect(int outfd, int errfd, struct buf *out, struct buf *err,
	const char **why)
{
	int64_t deadline = clock_mono_us() + CONSOLE_CTL_TIMEOUT_MS * 1000LL;
	struct pollfd p[2] = { { outfd, POLLIN, 0 }, { errfd, POLLIN, 0 } };
	char chunk[65536];

	while (p[0].fd >= 0 || p[1].fd >= 0) {
		int64_t left = (deadline - clock_mono_us()) / 1000;
		int rc;

		if (left <= 0) {
			*why = "tollctl did not finish in time";
			return -1;
		}
		rc = poll(p, 2, (int)(left > INT_MAX ? INT_MAX : left));
		if (rc < 0 && errno != EINTR) {
			*why = "poll failed";
			return -1;
		}
		for (int i = 0; rc > 0 && i < 2; i++) {
			struct buf *b = i == 0 ? out : err;
			ssize_t n;

			if (p[i].fd < 0 || p[i].revents == 0)
				continue;
			n = read(p[i].fd, chunk, sizeof chunk);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				p[i].fd = -1;
				continue;
			}
			if (b->len + (size_t)n > CONSOLE_CTL_MAX_OUTPUT) {
				*why = "tollctl printed too much";
				return -1;
			}
			if (buf_add(b, chunk, (size_t)n) != 0) {
				*why = "out of memory";
				return -1;
			}
		}
	}
	return 0;
}

/* Runs tollctl. */
int
console_ctl_run(const struct config *cfg, const char *actor,
		const char *const *args, int json, _Atomic pid_t *child,
		struct console_ctl_result *r)
{
	char path[PATH_MAX], actor_var[320], *argv[MAX_ARGS], *env[MAX_ENV];
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, argc = 0, st, e,
	    rc = -1;
	posix_spawn_file_actions_t fa;
	struct buf err = BUF_INIT;
	const char *why = NULL;
	pid_t pid = -1;

	memset(r, 0, sizeof *r);
	r->exit = -1;
	tollctl_path(cfg, path, sizeof path);
	argv[argc++] = path;
	/* The common options go before the verb: its own arguments may end
	 * with "--" and a name. */
	if (json)
		argv[argc++] = "--json";
	if (cfg->path != NULL) {
		argv[argc++] = "-c";
		argv[argc++] = cfg->path;
	} else {
		argv[argc++] = "--database";
		argv[argc++] = cfg->database;
	}
	for (int i = 0; args[i] != NULL && argc < MAX_ARGS - 1; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;
	snprintf(actor_var, sizeof actor_var, "TOLLGATE_ACTOR=%s", actor);
	child_env(actor_var, env);

	if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
		why = "cannot create a pipe";
		goto out;
	}
	if (posix_spawn_file_actions_init(&fa) != 0) {
		why = "out of memory";
		goto out;
	}
	/* Each returns its error number (none sets errno). */
	if ((e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY,
						  0)) != 0 ||
	    (e = posix_spawn_file_actions_adddup2(&fa, outp[1], 1)) != 0 ||
	    (e = posix_spawn_file_actions_adddup2(&fa, errp[1], 2)) != 0 ||
	    (e = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0 ||
	    (e = posix_spawn(&pid, path, &fa, NULL, argv, env)) != 0) {
		if (snprintf(r->err, sizeof r->err, "cannot run %s: %s", path,
			     strerror(e)) < 0)
			r->err[0] = '\0';
		posix_spawn_file_actions_destroy(&fa);
		goto out;
	}
	posix_spawn_file_actions_destroy(&fa);
	atomic_store(child, pid);
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	if (collect(outp[0], errp[0], &r->out, &err, &why) != 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	atomic_store(child, 0);
	if (why == NULL) {
		if (WIFEXITED(st))
			r->exit = WEXITSTATUS(st);
		if (r->exit == 0)
			rc = 0;
		else if (err.len > 0)
			first_line(err.data, err.len, r->err, sizeof r->err);
		else
			snprintf(
				r->err, sizeof r->err, "tollctl failed (%s %d)",
				WIFEXITED(st) ? "exit status" : "signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	}
out:
	if (why != NULL && r->err[0] == '\0')
		snprintf(r->err, sizeof r->err, "%s", why);
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	buf_free(&err);
	return rc;
}
