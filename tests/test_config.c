/*
 * test_config.c - the INI parser: defaults, sections, routes, and errors
 * that name the file, the line and the key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

/* Writes text to a temporary file and returns its path (static buffer). */
static const char *
write_conf(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	snprintf(path, sizeof path, "/tmp/tg-test-config-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads text as a config; returns it or NULL with *cause. */
static struct config *
load(const char *text, char **cause)
{
	const char *path = write_conf(text);
	struct config *cfg = config_load(path, CONFIG_NO_SECRETS, cause);

	unlink(path);
	return cfg;
}

/* A config that should fail, and the text its error must contain. */
struct bad_case {
	const char *name;
	const char *text;
	const char *want; /* substring of the error, after "FILE:" */
};

static const struct bad_case bad_cases[] = {
	{ "unknown key", "[tollgate]\nlisten = 127.0.0.1:1\nbogus = 1\n",
	  ":3: unknown key 'bogus' in [tollgate]" },
	{ "key outside a section", "workers = 2\n",
	  ":1: workers: key outside of a section" },
	{ "unknown section", "[tollgate]\n[nonsense]\n",
	  ":2: unknown section [nonsense]" },
	{ "bad number", "[tollgate]\nworkers = many\n",
	  ":2: workers: expected a whole number: 'many'" },
	{ "out of range", "[tollgate]\nworkers = 100000\n",
	  ":2: workers: out of range: '100000'" },
	{ "negative size", "[tollgate]\nmax_body_size = -4M\n",
	  ":2: max_body_size: out of range: '-4M'" },
	{ "bad size", "[tollgate]\nmax_body_size = 4X\n",
	  ":2: max_body_size: expected a size (e.g. 4M): '4X'" },
	{ "bad section header", "[tollgate\n", ":1: bad section header" },
	{ "no equals", "[tollgate]\nlisten\n", ":2: expected key = value" },
	{ "unknown provider type",
	  "[provider a]\ntype = telepathy\nbase_url = http://x\n",
	  ":2: type: unknown provider type: 'telepathy'" },
	{ "unknown flavor", "[provider a]\nflavor = nope\n",
	  ":2: flavor: unknown flavor: 'nope'" },
	{ "route to unknown provider", "[route gpt-4o]\ntarget = ghost:m\n",
	  ":2: target: unknown provider" },
	{ "target without model",
	  "[provider a]\nbase_url = http://x\n[route m]\ntarget = a:\n",
	  ":4: target: expected provider:model" },
	{ "provider without base_url", "[provider a]\ntype = openai\n",
	  "provider a: base_url is required" },
	{ "base_url scheme", "[provider a]\nbase_url = ftp://x\n",
	  "provider a: base_url must start with http:// or https://" },
	{ "base_url without a host", "[provider a]\nbase_url = https:///\n",
	  "provider a: base_url has no host" },
	{ "route without target",
	  "[provider a]\nbase_url = http://x\n[route m]\n",
	  "route m: target is required" },
	{ "provider twice", "[provider a]\nbase_url = http://x\n[provider a]\n",
	  ":3: provider a defined twice" },
	{ "bad log level", "[tollgate]\nlog_level = loud\n",
	  "log_level: unknown level 'loud'" },
	{ "bad boolean", "[provider a]\ntls_verify = maybe\n",
	  ":2: tls_verify: expected yes or no: 'maybe'" },
};

/* Every bad config fails with a message naming its line and key. */
static void
test_bad(void)
{
	for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
		char *cause = NULL;
		struct config *cfg = load(bad_cases[i].text, &cause);
		ok(cfg == NULL, "%s: refused", bad_cases[i].name);
		ok(cause != NULL && strstr(cause, bad_cases[i].want) != NULL,
		   "%s: error '%s' contains '%s'", bad_cases[i].name,
		   cause ? cause : "(none)", bad_cases[i].want);
		ok(cause != NULL &&
			   strncmp(cause, "/tmp/tg-test-config-", 20) == 0,
		   "%s: error names the file", bad_cases[i].name);
		free(cause);
		config_free(cfg);
	}
}

/* A full config: values, defaults, providers, routes and comments. */
static void
test_good(void)
{
	char *cause = NULL;
	struct config *cfg = load(
		"; comment\n# another\n[tollgate]\n"
		"listen = 0.0.0.0:8080   ; inline comment\n"
		"listen = [::1]:8081\n"
		"workers = 3\nmax_body_size = 2M\nstream_buffer = 64k\n"
		"database = host=/tmp dbname=x\n\n"
		"[provider zhipu]\ntype = openai-compatible\nflavor = zhipu\n"
		"base_url = https://open.bigmodel.cn/api/paas/v4/\n"
		"proxy = http://egress:3128\ntls_verify = no\n"
		"[provider ds]\nflavor = deepseek\nbase_url = "
		"http://127.0.0.1:9\n"
		"[route gpt-4o]\ntarget = zhipu:glm-4-plus, ds:deepseek-chat\n"
		"[route *]\ntarget = ds:deepseek-chat\n",
		&cause);
	const struct route_conf *r;
	struct provider_conf *p;

	ok(cfg != NULL, "full config loads (%s)", cause ? cause : "ok");
	free(cause);
	if (cfg == NULL)
		return;
	is_int(cfg->nlisten, 2, "two listen addresses");
	is_str(cfg->listen[0], "0.0.0.0:8080", "inline comment stripped");
	is_str(cfg->listen[1], "[::1]:8081", "IPv6 listen");
	is_int(cfg->workers, 3, "workers");
	is_int(cfg->max_body_size, 2 << 20, "size suffix M");
	is_int(cfg->stream_buffer, 64 << 10, "size suffix k");
	is_str(cfg->database, "host=/tmp dbname=x", "value with '='");
	is_int(cfg->header_timeout_ms, 30000, "default header_timeout");
	is_str(cfg->admin_listen, "127.0.0.1:9090", "default admin_listen");
	p = config_provider(cfg, "zhipu");
	ok(p != NULL, "provider zhipu");
	if (p != NULL) {
		is_int(p->type, PROVIDER_OPENAI_COMPATIBLE, "zhipu type");
		is_int(p->flavor, FLAVOR_ZHIPU, "zhipu flavor");
		is_str(p->base_url, "https://open.bigmodel.cn/api/paas/v4",
		       "trailing slash removed");
		is_str(p->proxy, "http://egress:3128", "proxy");
		is_int(p->tls_verify, 0, "tls_verify no");
		is_int(p->connect_timeout_ms, 10000, "default connect_timeout");
	}
	r = config_route(cfg, "gpt-4o");
	ok(r != NULL && r->ntargets == 2, "route with a fallback");
	if (r != NULL && r->ntargets == 2) {
		is_str(r->targets[0].provider->name, "zhipu", "primary");
		is_str(r->targets[0].model, "glm-4-plus", "primary model");
		is_str(r->targets[1].model, "deepseek-chat", "fallback model");
	}
	r = config_route(cfg, "anything-else");
	ok(r != NULL && strcmp(r->name, "*") == 0, "unknown model takes *");
	config_free(cfg);
}

/* An empty file is all defaults; a missing file is an error. */
static void
test_defaults(void)
{
	char *cause = NULL;
	struct config *cfg = load("", &cause);

	ok(cfg != NULL, "empty config loads");
	if (cfg != NULL) {
		is_int(cfg->nlisten, 1, "one default listen");
		is_str(cfg->listen[0], "127.0.0.1:8080", "default listen");
		is_int(cfg->max_body_size, 4 << 20, "default max_body_size");
		ok(config_route(cfg, "gpt-4o") == NULL, "no routes");
	}
	config_free(cfg);
	cfg = config_load("/nonexistent/tollgate.conf", 0, &cause);
	ok(cfg == NULL && cause != NULL &&
		   strstr(cause, "No such file") != NULL,
	   "missing file: %s", cause ? cause : "(none)");
	free(cause);
}

/* A provider credential comes from its variable, and a missing variable
 * is an error naming it. */
static void
test_secrets(void)
{
	const char *text = "[provider a]\nbase_url = http://x\n"
			   "api_key_env = TG_TEST_KEY\n";
	const char *path = write_conf(text);
	char *cause = NULL;
	struct config *cfg;

	unsetenv("TG_TEST_KEY");
	cfg = config_load(path, 0, &cause);
	ok(cfg == NULL && cause != NULL && strstr(cause, "TG_TEST_KEY"),
	   "unset credential variable named: %s", cause ? cause : "(none)");
	free(cause);
	cause = NULL;
	setenv("TG_TEST_KEY", "sk-123", 1);
	setenv("TOLLGATE_KEY_SECRET", "pepper", 1);
	cfg = config_load(path, 0, &cause);
	ok(cfg != NULL, "credential resolved");
	if (cfg != NULL) {
		is_str(config_provider(cfg, "a")->api_key, "sk-123", "api key");
		is_str(cfg->key_secret, "pepper", "key secret from env");
	}
	config_free(cfg);
	unlink(path);
}

int
main(void)
{
	test_bad();
	test_good();
	test_defaults();
	test_secrets();
	return done_testing();
}
