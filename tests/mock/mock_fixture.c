/*
 * mock_fixture.c - the mock's fixtures: finding and reading them, the wire
 * a path speaks, error shapes, and the usage events a client did not ask
 * for.
 */
#include "mock.h"

/* Reads dir/name into a new buffer; returns NULL when the file does not
 * exist or cannot be read. Caller frees. */
static char *
fixture_read_in(const char *dir, const char *name, size_t *lenp)
{
	char path[PATH_MAX];
	struct stat st;
	FILE *f;
	char *buf;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return NULL;
	f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > MOCK_MAX_FIXTURE)
		goto fail;
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		goto fail;
	if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		free(buf);
		goto fail;
	}
	buf[st.st_size] = '\0';
	fclose(f);
	*lenp = (size_t)st.st_size;
	return buf;
fail:
	fclose(f);
	return NULL;
}

/* Reads fixture file name from the first fixture directory that has it;
 * returns NULL when none has. Caller frees. */
char *
fixture_read(const char *name, size_t *lenp)
{
	char *buf;
	int i;

	for (i = 0; i < srv.nfixtures; i++) {
		buf = fixture_read_in(srv.fixtures[i], name, lenp);
		if (buf != NULL)
			return buf;
	}
	return NULL;
}

/* Returns a new JSON error body in the shape of the wire's provider, for a
 * refusal or failure of the mock itself; caller frees. The OpenAI shape
 * takes type, param and code (NULL: null); Anthropic's type follows the
 * status as Anthropic's does; Azure names the status in "code". */
char *
wire_error_json(enum mock_wire wire, int status, const char *message,
		const char *type, const char *param, const char *code)
{
	cJSON *root, *err;
	const char *atype;
	char num[16];
	char *out;

	switch (wire) {
	case WIRE_OPENAI:
	case WIRE_RESPONSES:
		break;
	case WIRE_ANTHROPIC:
		switch (status) {
		case 400:
			atype = "invalid_request_error";
			break;
		case 401:
			atype = "authentication_error";
			break;
		case 403:
			atype = "permission_error";
			break;
		case 404:
			atype = "not_found_error";
			break;
		case 413:
			atype = "request_too_large";
			break;
		case 429:
			atype = "rate_limit_error";
			break;
		case 529:
			atype = "overloaded_error";
			break;
		default:
			atype = "api_error";
			break;
		}
		root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "type", "error");
		err = cJSON_AddObjectToObject(root, "error");
		cJSON_AddStringToObject(err, "type", atype);
		cJSON_AddStringToObject(err, "message", message);
		goto print;
	case WIRE_AZURE:
		snprintf(num, sizeof(num), "%d", status);
		root = cJSON_CreateObject();
		err = cJSON_AddObjectToObject(root, "error");
		cJSON_AddStringToObject(err, "code", code != NULL ? code : num);
		cJSON_AddStringToObject(err, "message", message);
		goto print;
	}
	return error_json(message, type, param, code);
print:
	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (out == NULL)
		abort();
	return out;
}

/* Returns a copy of a constant body; caller frees. */
char *
body_dup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

/*
 * Returns the wire a model path speaks. An Azure deployment path also
 * gives its deployment, copied to dep (size bytes); "" otherwise.
 */
enum mock_wire
wire_of(const char *path, char *dep, size_t size)
{
	static const char *const azure_ops[] = {
		"chat/completions",
		"completions",
		"embeddings",
	};
	const char *p = strstr(path, "/openai/deployments/"), *slash = NULL;
	size_t n = strlen(path), i;

	dep[0] = '\0';
	if (p != NULL) {
		p += strlen("/openai/deployments/");
		slash = strchr(p, '/');
	}
	if (slash != NULL && slash > p && (size_t)(slash - p) < size) {
		for (i = 0; i < sizeof(azure_ops) / sizeof(azure_ops[0]); i++) {
			if (strcmp(slash + 1, azure_ops[i]) != 0)
				continue;
			memcpy(dep, p, (size_t)(slash - p));
			dep[slash - p] = '\0';
			return WIRE_AZURE;
		}
	}
	if ((n >= 9 && strcmp(path + n - 9, "/messages") == 0) ||
	    mock_is_count_tokens(path))
		return WIRE_ANTHROPIC;
	if (n >= 10 && strcmp(path + n - 10, "/responses") == 0)
		return WIRE_RESPONSES;
	return WIRE_OPENAI;
}

/* Returns whether a model name is safe to use as a file name. */
int
model_name_ok(const char *m)
{
	size_t n = strlen(m);

	if (n == 0 || n > 200 || m[0] == '.')
		return 0;
	for (; *m != '\0'; m++)
		if (*m == '/' || *m == '\\' || (unsigned char)*m < 0x20)
			return 0;
	return 1;
}

/* Returns the HTTP status of an error fixture name: the first 3-digit number
 * after "-error-", else 429. */
int
error_status(const char *model)
{
	const char *p = strstr(model, "-error-");
	const char *q;
	int v;

	for (p += 7; *p != '\0'; p = q) {
		if (!isdigit((unsigned char)*p)) {
			q = p + 1;
			continue;
		}
		for (q = p; isdigit((unsigned char)*q); q++)
			;
		if (q - p == 3) {
			v = (int)strtol(p, NULL, 10);
			if (v >= 100 && v <= 599)
				return v;
		}
	}
	return 429;
}

/* Returns whether the fixture belongs to a provider that sends stream usage
 * only on request. */
int
usage_on_request(const char *model)
{
	static const char *const prefixes[] = {
		"openai-",
		"azure-openai-",
		"dashscope-",
		"qianfan-",
	};
	size_t i;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(model, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

/* Returns whether the item exists and is not JSON null. */
static int
present(const cJSON *item)
{
	return item != NULL && !cJSON_IsNull(item);
}

/* Appends one event to out with its usage removed as a provider does when
 * include_usage was not asked for; the event may also be dropped. */
static void
strip_event(struct evbuffer *out, const char *ev, size_t len)
{
	const char *line = ev, *end = ev + len, *eol, *payload;
	cJSON *root = NULL, *choices, *c;
	char *printed;
	int changed = 0;

	/* Find the (single) data line of the event. */
	for (;;) {
		eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - line) >= 5 && memcmp(line, "data:", 5) == 0)
			break;
		if (eol == end)
			goto keep;
		line = eol + 1;
	}
	payload = line + 5;
	if (payload < eol && *payload == ' ')
		payload++;
	root = cJSON_ParseWithLength(payload, (size_t)(eol - payload));
	if (!cJSON_IsObject(root))
		goto keep;

	choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
	if (present(cJSON_GetObjectItemCaseSensitive(root, "usage"))) {
		if (cJSON_IsArray(choices) && cJSON_GetArraySize(choices) == 0)
			goto drop;
		cJSON_DeleteItemFromObjectCaseSensitive(root, "usage");
		changed = 1;
	}
	if (cJSON_IsArray(choices)) {
		cJSON_ArrayForEach (c, choices) {
			if (cJSON_IsObject(c) &&
			    present(cJSON_GetObjectItemCaseSensitive(
				    c, "usage"))) {
				cJSON_DeleteItemFromObjectCaseSensitive(
					c, "usage");
				changed = 1;
			}
		}
	}
	if (!changed)
		goto keep;
	printed = cJSON_PrintUnformatted(root);
	if (printed == NULL)
		abort();
	evbuffer_add(out, ev, (size_t)(line - ev));
	evbuffer_add(out, "data: ", 6);
	evbuffer_add(out, printed, strlen(printed));
	evbuffer_add(out, eol, (size_t)(end - eol));
	free(printed);
	cJSON_Delete(root);
	return;
keep:
	evbuffer_add(out, ev, len);
drop:
	cJSON_Delete(root);
}

/* Returns the length of the event starting at p: up to and including its
 * blank line, or the rest of the buffer. */
static size_t
event_len(const char *p, size_t left)
{
	const char *e = memmem(p, left, "\n\n", 2);

	return e == NULL ? left : (size_t)(e + 2 - p);
}

/* Replaces mr's SSE body with the usage-stripped version. */
void
mr_strip_usage(struct mock_req *mr)
{
	struct evbuffer *out = evbuffer_new();
	size_t off, n;

	if (out == NULL)
		abort();
	for (off = 0; off < mr->mr_len; off += n) {
		n = event_len(mr->mr_body + off, mr->mr_len - off);
		strip_event(out, mr->mr_body + off, n);
	}
	free(mr->mr_body);
	mr->mr_len = evbuffer_get_length(out);
	mr->mr_body = malloc(mr->mr_len + 1);
	if (mr->mr_body == NULL)
		abort();
	evbuffer_remove(out, mr->mr_body, mr->mr_len);
	mr->mr_body[mr->mr_len] = '\0';
	evbuffer_free(out);
}

/* Splits mr's SSE body into events. */
void
mr_split_events(struct mock_req *mr)
{
	size_t off, n, cap = 16;

	mr->mr_events = malloc(cap * sizeof(*mr->mr_events));
	if (mr->mr_events == NULL)
		abort();
	for (off = 0; off < mr->mr_len; off += n) {
		n = event_len(mr->mr_body + off, mr->mr_len - off);
		if (mr->mr_nevents == cap) {
			cap *= 2;
			mr->mr_events = realloc(mr->mr_events,
						cap * sizeof(*mr->mr_events));
			if (mr->mr_events == NULL)
				abort();
		}
		mr->mr_events[mr->mr_nevents].sp_off = off;
		mr->mr_events[mr->mr_nevents].sp_len = n;
		mr->mr_nevents++;
	}
}

/* Base64 of n bytes at p (standard alphabet, padded), malloc'd. */
static char *
base64(const unsigned char *p, size_t n)
{
	static const char d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				"qrstuvwxyz0123456789+/";
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

	if (out == NULL)
		abort();
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 |
			     (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		*o++ = d[v >> 18 & 63];
		*o++ = d[v >> 12 & 63];
		*o++ = i + 1 < n ? d[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? d[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* An embeddings answer with each vector as OpenAI sends it when asked for
 * "encoding_format": "base64": the base64 of its values as little-endian
 * float32. The answer's other members are kept; it is printed anew. */
void
mr_embeddings_base64(struct mock_req *mr)
{
	cJSON *root = cJSON_ParseWithLength(mr->mr_body, mr->mr_len), *item;
	char *text;

	if (root == NULL)
		return;
	cJSON_ArrayForEach (item,
			    cJSON_GetObjectItemCaseSensitive(root, "data")) {
		cJSON *vec = cJSON_GetObjectItemCaseSensitive(item,
							      "embedding"),
		      *x;
		int n = cJSON_GetArraySize(vec), i = 0;
		unsigned char *raw;
		char *b64;

		if (!cJSON_IsArray(vec))
			continue;
		raw = malloc((size_t)n * 4 + 1);
		if (raw == NULL)
			abort();
		cJSON_ArrayForEach (x, vec) {
			float f = (float)x->valuedouble;
			uint32_t u;
			memcpy(&u, &f, 4);
			for (int b = 0; b < 4; b++)
				raw[i * 4 + b] = (unsigned char)(u >> (8 * b));
			i++;
		}
		b64 = base64(raw, (size_t)n * 4);
		cJSON_ReplaceItemInObjectCaseSensitive(item, "embedding",
						       cJSON_CreateString(b64));
		free(b64);
		free(raw);
	}
	text = cJSON_Print(root);
	cJSON_Delete(root);
	if (text == NULL)
		abort();
	free(mr->mr_body);
	mr->mr_body = text;
	mr->mr_len = strlen(text);
}
