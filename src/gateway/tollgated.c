/*
 * tollgated.c - the gateway daemon: arguments, signals, threads.
 *
 * The main thread runs the admin server and signal handling on its own
 * event base; workers (worker.c) run the data plane; the key cache
 * (keystore.c), the usage writer (pgwriter.c) and the quota reservations
 * (quota.c) each own a thread and a database connection. SIGTERM and
 * SIGINT stop accepting on every worker at once, let in-flight requests
 * finish within shutdown_timeout (then cut and record what is left), ship
 * what the spool holds within a bound and exit 0; the rest of the spool
 * waits for the next start. SIGHUP re-reads the configuration: requests
 * started from then on use the new one, those in flight finish on theirs,
 * no connection is dropped; a file with errors changes nothing.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "admin.h"
#include "bpe.h"
#include "config.h"
#include "httpd.h"
#include "keystore.h"
#include "log.h"
#include "pgwriter.h"
#include "quota.h"
#include "refusals.h"
#include "spool.h"
#include "tls.h"
#include "worker.h"

#define MAX_WORKERS     256
#define SHIP_AT_STOP_MS 5000 /* shipping the spool at exit; the rest waits */

/* Prints usage to f. */
static void
usage(FILE *f)
{
	fprintf(f, "usage: tollgated [-c FILE] [-t] [--print-defaults] [-V]\n"
		   "  -c, --config FILE   configuration (default "
		   "/etc/tollgate/tollgate.conf)\n"
		   "  -t, --test          check the configuration and exit\n"
		   "      --print-config  print the effective configuration\n"
		   "      --print-defaults print every key with its default\n"
		   "  -V, --version       print the version\n");
}

/* What the signal handlers work on: the main loop's state. */
struct daemon {
	struct event_base *base;
	const char *path;
	struct config *cfg;  /* current; admin reads it on this thread */
	struct httpd *admin; /* the admin server, or NULL */
	struct worker **workers;
	int nworkers;
};

/* Stops the main loop on SIGTERM or SIGINT. */
static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	log_info("signal %d: shutting down", (int)sig);
	event_base_loopbreak(d->base);
}

/* Whether two optional strings differ. */
static int
differs(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") != 0;
}

/* Logs the settings a reload cannot apply, which stay as they were. */
static void
warn_restart_only(const struct config *old, const struct config *new)
{
	int listen = old->nlisten != new->nlisten;

	for (int i = 0; !listen && i < old->nlisten; i++)
		listen = differs(old->listen[i], new->listen[i]);
	if (listen)
		log_warn(
			"reload: listen changed; it needs a restart (still listening on the old addresses)");
#define RESTART_ONLY(field, name)                                              \
	if (old->field != new->field)                                          \
	log_warn("reload: " name " changed; it needs a restart")
#define RESTART_ONLY_STR(field, name)                                          \
	if (differs(old->field, new->field))                                   \
	log_warn("reload: " name " changed; it needs a restart")
	RESTART_ONLY_STR(admin_listen, "admin_listen");
	RESTART_ONLY(workers, "workers");
	RESTART_ONLY_STR(database, "database");
	RESTART_ONLY_STR(key_secret, "the key secret");
	RESTART_ONLY(keys_refresh_ms, "keys_refresh");
	RESTART_ONLY(usage_batch, "usage_batch");
	RESTART_ONLY(usage_flush_ms, "usage_flush");
	RESTART_ONLY_STR(spool_dir, "spool_dir");
	RESTART_ONLY(spool_fsync_ms, "spool_fsync");
	RESTART_ONLY(spool_segment_size, "spool_segment_size");
	RESTART_ONLY_STR(pid_file, "pid_file");
#undef RESTART_ONLY
#undef RESTART_ONLY_STR
}

/* Re-reads the configuration on SIGHUP. */
static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct config *cfg, *old = d->cfg;
	char *cause = NULL;
	int nroutes = 0, nproviders = 0;

	(void)sig;
	(void)what;
	cfg = config_load(d->path, 0, &cause);
	if (cfg == NULL) {
		log_error(
			"SIGHUP: reload failed: %s; the running configuration stays",
			cause ? cause : d->path);
		free(cause);
		return;
	}
	warn_restart_only(old, cfg);
	if (tls_configure(cfg, &cause) != 0) {
		log_error("SIGHUP: %s; the certificate in use stays", cause);
		free(cause);
	}
	log_set_level((enum log_level)log_level_from_name(cfg->log_level));
	log_set_json(strcmp(cfg->log_format, "json") == 0);
	for (int i = 0; i < d->nworkers; i++)
		worker_set_config(d->workers[i], cfg);
	if (d->admin != NULL)
		admin_set_config(d->admin, cfg);
	d->cfg = cfg;
	config_unref(old);
	for (const struct route_conf *r = cfg->routes; r; r = r->next)
		nroutes++;
	for (const struct provider_conf *p = cfg->providers; p; p = p->next)
		nproviders++;
	log_info(
		"SIGHUP: configuration reloaded from %s (%d providers, %d routes)",
		d->path, nproviders, nroutes);
}

/* Routes libevent's messages into the log. */
static void
libevent_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_ERR)
		log_error("libevent: %s", msg);
	else if (severity == EVENT_LOG_WARN)
		log_warn("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

/* What the command line asks for. */
enum mode { MODE_RUN, MODE_TEST, MODE_PRINT };

/* Parses the command line: 0 to go on (*path and *mode set), else the
 * exit status plus one. */
static int
parse_args(int argc, char **argv, const char **path, enum mode *mode)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "print-config", no_argument, NULL, 'P' },
		{ "print-defaults", no_argument, NULL, 'D' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct config *defaults;
	int c;

	while ((c = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			*path = optarg;
			break;
		case 't':
			*mode = MODE_TEST;
			break;
		case 'P':
			*mode = MODE_PRINT;
			break;
		case 'D':
			defaults = config_defaults();
			config_print(defaults, 1);
			config_free(defaults);
			return 1;
		case 'V':
			printf("tollgated %s\n", PACKAGE_VERSION);
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return 3;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 3;
	}
	return 0;
}

/* Raises the open-file limit to its ceiling: every client connection
 * holds a descriptor, and max_connections counts on them. */
static void
raise_fd_limit(const struct config *cfg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)cfg->max_connections + 256 > rl.rlim_cur)
		log_warn(
			"max_connections = %lld is close to the open-file limit (%llu): past it, accepting pauses",
			(long long)cfg->max_connections,
			(unsigned long long)rl.rlim_cur);
}

/* Starts the journal, the database threads, the admin server and the
 * workers; exits on failure. */
static void
start(struct daemon *d, struct config *cfg)
{
	char *cause = NULL;
	int n = cfg->workers > 0 ? (int)cfg->workers
				 : (int)sysconf(_SC_NPROCESSORS_ONLN);

	raise_fd_limit(cfg);
	httpd_init();
	refusals_init();
	if (tls_configure(cfg, &cause) != 0)
		fatalx("%s", cause);
	if (spool_open(cfg->spool_dir, cfg->spool_segment_size,
		       (int)cfg->spool_fsync_ms, &cause) != 0)
		fatalx("%s", cause);
	if (keystore_start(cfg->database, cfg->key_secret,
			   (int)cfg->keys_refresh_ms) != 0 ||
	    pgwriter_start(cfg->database, (int)cfg->usage_batch,
			   (int)cfg->usage_flush_ms) != 0 ||
	    quota_start(cfg->database) != 0)
		fatalx("cannot start the database threads");
	if (cfg->admin_listen != NULL) {
		d->admin = admin_start(d->base, cfg->admin_listen, &d->cfg,
				       &cause);
		if (d->admin == NULL)
			fatalx("%s", cause);
	}
	n = n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : n;
	for (int i = 0; i < n; i++) {
		d->workers[i] = worker_start(i, cfg, &cause);
		if (d->workers[i] == NULL)
			fatalx("%s", cause);
		d->nworkers++;
	}
	for (int i = 0; i < cfg->nlisten; i++)
		log_info("listening on %s (%d workers)", cfg->listen[i], n);
	if (cfg->admin_listen != NULL)
		log_info("admin on %s", cfg->admin_listen);
	if (cfg->test_clock)
		log_warn(
			"test_clock is on: POST /clock/advance moves the policy clock; never in production");
}

/* Stops everything start() started, in the order that loses nothing:
 * stop accepting, drain the workers, settle quotas, ship the journal. */
static void
stop(struct daemon *d)
{
	/* Every worker stops accepting at once, then all drain together. */
	for (int i = 0; i < d->nworkers; i++)
		worker_drain(d->workers[i], (int)d->cfg->shutdown_timeout_ms);
	for (int i = 0; i < d->nworkers; i++)
		worker_join(d->workers[i]);
	admin_stop(d->admin);
	/* The quota thread goes before the workers' event bases: it may
	 * still answer a request left parked at the end of the bound. */
	quota_stop();
	for (int i = 0; i < d->nworkers; i++)
		worker_free(d->workers[i]);
	pgwriter_stop(SHIP_AT_STOP_MS);
	spool_close();
	keystore_stop();
	tls_shutdown();
}

/* Writes the pid file; exits on failure. */
static char *
write_pid(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		fatalx("pid_file %s: cannot write", path);
	fprintf(f, "%ld\n", (long)getpid());
	fclose(f);
	return strdup(path);
}

int
main(int argc, char **argv)
{
	const char *path = "/etc/tollgate/tollgate.conf";
	struct worker *workers[MAX_WORKERS];
	struct event *sigs[3];
	enum mode mode = MODE_RUN;
	struct config *cfg;
	struct daemon d;
	char *cause = NULL, *pid_file = NULL;
	int rc;

	if ((rc = parse_args(argc, argv, &path, &mode)) != 0)
		return rc - 1;
	/* -t checks what a start does: secrets, files, the certificate. */
	cfg = config_load(path, mode == MODE_PRINT ? CONFIG_NO_SECRETS : 0,
			  &cause);
	if (cfg != NULL && mode == MODE_TEST &&
	    tls_configure(cfg, &cause) != 0) {
		config_free(cfg);
		cfg = NULL;
	}
	if (cfg == NULL) {
		fprintf(stderr, "tollgated: %s\n", cause ? cause : path);
		free(cause);
		return 1;
	}
	if (mode != MODE_RUN) {
		if (mode == MODE_PRINT)
			config_print(cfg, 0);
		else
			printf("tollgated: %s: configuration OK\n", path);
		tls_shutdown();
		config_free(cfg);
		return 0;
	}
	log_set_level((enum log_level)log_level_from_name(cfg->log_level));
	log_set_json(strcmp(cfg->log_format, "json") == 0);

	signal(SIGPIPE, SIG_IGN);
	if (log_start_async() != 0)
		fatalx("cannot start the logger thread");
	event_set_log_callback(libevent_log);
	if (evthread_use_pthreads() != 0)
		fatalx("libevent: no thread support");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("curl_global_init failed");
	/* The tokenizer's tables, built now rather than on a request. */
	if (bpe_init() != 0)
		fatalx("the BPE rank tables are inconsistent (a broken build)");
	memset(&d, 0, sizeof d);
	d.base = event_base_new();
	if (d.base == NULL)
		fatalx("event_base_new failed");
	d.path = path;
	d.cfg = cfg;
	d.workers = workers;
	start(&d, cfg);
	sigs[0] = evsignal_new(d.base, SIGTERM, on_stop, &d);
	sigs[1] = evsignal_new(d.base, SIGINT, on_stop, &d);
	sigs[2] = evsignal_new(d.base, SIGHUP, on_hup, &d);
	for (int i = 0; i < 3; i++)
		event_add(sigs[i], NULL);
	if (cfg->pid_file != NULL)
		pid_file = write_pid(cfg->pid_file);

	event_base_dispatch(d.base);

	stop(&d);
	for (int i = 0; i < 3; i++)
		event_free(sigs[i]);
	if (pid_file != NULL)
		unlink(pid_file);
	free(pid_file);
	config_unref(d.cfg);
	event_base_free(d.base);
	curl_global_cleanup();
	libevent_global_shutdown();
	log_info("stopped");
	log_stop_async();
	return 0;
}
