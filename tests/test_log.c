/*
 * test_log.c - what a client's bytes look like in the log: every line the
 * process writes, text or JSON, is one line of valid UTF-8 whatever a
 * message holds; control characters and invalid bytes are escaped so a
 * client cannot forge a line, and the text reads back unambiguously.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "log.h"
#include "tap.h"
#include "utf8.h"

/* What a message holds and how its line must show it. */
struct esc_case {
	const char *name;
	const char *in;
	const char *want;
};

static const struct esc_case esc_cases[] = {
	{ "CR LF (a forged line)", "gpt\r\n2026-01-01 forged line",
	  "gpt\\r\\n2026-01-01 forged line" },
	{ "tab", "a\tb", "a\\tb" },
	{ "terminal escape", "\x1b[31mred", "\\x1b[31mred" },
	{ "other C0", "\x01\x07\x08\x0b\x0c\x1f",
	  "\\x01\\x07\\x08\\x0b\\x0c\\x1f" },
	{ "DEL", "a\x7f", "a\\x7f" },
	{ "backslash", "C:\\dir\\n", "C:\\\\dir\\\\n" },
	{ "invalid bytes", "\xff\xfe", "\\xff\\xfe" },
	{ "overlong slash", "a\xc0\xaf", "a\\xc0\\xaf" },
	{ "cut sequence", "\xe2\x82", "\\xe2\\x82" },
	{ "surrogate", "\xed\xa0\x80", "\\xed\\xa0\\x80" },
	{ "past U+10FFFF", "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80" },
	{ "C1 control (CSI)",
	  "\xc2\x9b"
	  "2J",
	  "\\xc2\\x9b"
	  "2J" },
	{ "next line (U+0085)",
	  "a\xc2\x85"
	  "b",
	  "a\\xc2\\x85"
	  "b" },
	{ "line separator",
	  "a\xe2\x80\xa8"
	  "b",
	  "a\\xe2\\x80\\xa8"
	  "b" },
	{ "valid UTF-8 as it is", "caf\xc3\xa9 \xe4\xb8\x96 \xf0\x9f\x98\x80",
	  "caf\xc3\xa9 \xe4\xb8\x96 \xf0\x9f\x98\x80" },
	{ "quotes as they are", "say \"hi\"", "say \"hi\"" },
};

static FILE *capture;
static int saved_stderr = -1;

/* Sends stderr to an empty capture file. */
static void
capture_start(void)
{
	fflush(stderr);
	if (ftruncate(fileno(capture), 0) != 0 || fseek(capture, 0, SEEK_SET))
		abort();
	saved_stderr = dup(STDERR_FILENO);
	dup2(fileno(capture), STDERR_FILENO);
}

/* Restores stderr; returns what was written meanwhile (caller frees). */
static char *
capture_end(size_t *len)
{
	long n;
	char *out;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	n = lseek(fileno(capture), 0, SEEK_END);
	out = malloc((size_t)n + 1);
	if (out == NULL || pread(fileno(capture), out, (size_t)n, 0) != n)
		abort();
	out[n] = '\0';
	*len = (size_t)n;
	return out;
}

/* Whether text (len bytes) is one line of valid UTF-8: no control
 * character but the newline that ends it. */
static int
one_clean_line(const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;

	if (len == 0 || text[len - 1] != '\n')
		return 0;
	for (size_t i = 0; i + 1 < len;) {
		size_t k = utf8_len((const char *)p + i);
		if (k == 0 || p[i] < 0x20 || p[i] == 0x7f)
			return 0;
		i += k;
	}
	return 1;
}

/* Logs "msg=" and the case's text in the current format; returns the
 * line (caller frees). */
static char *
log_case(const char *in, size_t *len)
{
	capture_start();
	log_msg(LOG_INFO, "msg=%s", in);
	return capture_end(len);
}

/* The message a line shows: after "TS info " in text, the msg member in
 * JSON, or "(none)" (static). */
static const char *
shown(const char *line, size_t len, int json)
{
	static char out[512];
	const char *body = strstr(line, " info ");
	cJSON *j;
	const cJSON *msg;

	if (!json) {
		snprintf(out, sizeof out, "%s",
			 body != NULL ? body + 6 : "(none)");
		return out;
	}
	j = cJSON_ParseWithLength(line, len);
	msg = cJSON_GetObjectItemCaseSensitive(j, "msg");
	snprintf(out, sizeof out, "%s\n",
		 cJSON_IsString(msg) ? msg->valuestring : "(none)");
	cJSON_Delete(j);
	return out;
}

/* Text lines are "TS info msg=..." with the message escaped; JSON lines
 * one object a line, its msg the same text as a text line. */
static void
test_cases(void)
{
	for (int json = 0; json <= 1; json++) {
		log_set_json(json);
		for (size_t i = 0; i < sizeof esc_cases / sizeof *esc_cases;
		     i++) {
			const struct esc_case *c = &esc_cases[i];
			const char *fmt = json ? "json" : "text";
			size_t len;
			char *line = log_case(c->in, &len), want[256];

			snprintf(want, sizeof want, "msg=%s\n", c->want);
			ok(one_clean_line(line, len), "%s, %s: one clean line",
			   fmt, c->name);
			is_str(shown(line, len, json), want, "%s, %s: shown",
			       fmt, c->name);
			free(line);
		}
	}
	log_set_json(0);
}

/* A request's prefix (its tenant) is escaped like the message. */
static void
test_request_prefix(void)
{
	size_t len;
	char *line;

	capture_start();
	log_request(LOG_INFO, "rid-1", "evil\n2026-01-01 tenant=x", "m=%s",
		    "a\rb");
	line = capture_end(&len);
	ok(one_clean_line(line, len), "request line: one clean line");
	ok(strstr(line, " info rid-1 tenant=evil\\n2026-01-01 tenant=x "
			"m=a\\rb\n") != NULL,
	   "request line: tenant and message escaped (%s)", line);
	free(line);
}

/* The longest message of the worst bytes still makes one whole line. */
static void
test_long(void)
{
	char in[2100];
	size_t len;
	char *line;
	cJSON *j;

	memset(in, 0xff, sizeof in - 1);
	in[sizeof in - 1] = '\0';
	for (int json = 0; json <= 1; json++) {
		log_set_json(json);
		line = log_case(in, &len);
		ok(one_clean_line(line, len),
		   "%s: 2 kB of invalid bytes, one "
		   "clean line",
		   json ? "json" : "text");
		ok(strstr(line, json ? "\\\\xff\\\\xff" : "\\xff\\xff") != NULL,
		   "%s: escaped", json ? "json" : "text");
		if (json) {
			j = cJSON_ParseWithLength(line, len);
			ok(j != NULL, "json: the cut line is still an object");
			cJSON_Delete(j);
		}
		free(line);
	}
	log_set_json(0);
}

int
main(void)
{
	capture = tmpfile();
	if (capture == NULL)
		return 99;
	test_cases();
	test_request_prefix();
	test_long();
	fclose(capture);
	return done_testing();
}
