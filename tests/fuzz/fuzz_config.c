/*
 * fuzz_config.c - the configuration file reader (config.c).
 *
 * Input: a configuration file, read by config_load() without resolving
 * secrets (no credential file or variable is read). It is refused with a
 * "FILE:LINE: message" reason, or loaded with what validation promises:
 * every provider with an http(s) base URL without a trailing slash, every
 * route with targets that name a defined provider, and the lookups work.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

/* The file the input is written to: an in-memory file, opened once. */
static int fd = -1;
static char path[64];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg;
	char *cause = NULL;

	if (fd < 0) {
		fd = memfd_create("tollgate.conf", 0);
		FUZZ_CHECK(fd >= 0, "memfd_create failed");
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	FUZZ_CHECK(ftruncate(fd, 0) == 0 &&
			   (size == 0 ||
			    pwrite(fd, data, size, 0) == (ssize_t)size),
		   "cannot write the file");
	cfg = config_load(path, CONFIG_NO_SECRETS, &cause);
	if (cfg == NULL) {
		FUZZ_CHECK(cause != NULL &&
				   strncmp(cause, path, strlen(path)) == 0,
			   "refused without a reason: %s",
			   cause ? cause : "(null)");
		free(cause);
		return 0;
	}
	FUZZ_CHECK(cause == NULL, "loaded with a reason: %s", cause);
	FUZZ_CHECK(cfg->nlisten >= 0 && cfg->nlisten <= CONFIG_MAX_LISTEN,
		   "%d listeners", cfg->nlisten);
	for (const struct provider_conf *p = cfg->providers; p; p = p->next) {
		size_t n = strlen(p->base_url);

		FUZZ_CHECK(strncmp(p->base_url, "http://", 7) == 0 ||
				   strncmp(p->base_url, "https://", 8) == 0,
			   "base_url %s", p->base_url);
		FUZZ_CHECK(p->base_url[n - 1] != '/', "base_url %s ends in /",
			   p->base_url);
		FUZZ_CHECK(config_provider(cfg, p->name) != NULL,
			   "provider %s not found", p->name);
	}
	for (const struct route_conf *r = cfg->routes; r; r = r->next) {
		FUZZ_CHECK(r->ntargets > 0 && r->ntargets <= CONFIG_MAX_TARGETS,
			   "route %s: %d targets", r->name, r->ntargets);
		for (int i = 0; i < r->ntargets; i++)
			FUZZ_CHECK(r->targets[i].provider != NULL &&
					   r->targets[i].model != NULL,
				   "route %s: target %d", r->name, i);
		FUZZ_CHECK(config_route(cfg, r->name) != NULL,
			   "route %s not found", r->name);
	}
	config_unref(cfg);
	return 0;
}
