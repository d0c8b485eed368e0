/*
 * mock_greedy.c - the greedy upstream: a provider that answers every model
 * request with all the output the request allows, for quota tests.
 *
 * Principle: what a hard quota must hold against is a provider that spends
 * every token a request lets it spend, and, with ignore_caps, one that
 * spends more. The text of each choice is "the" followed by " the" as
 * many times as it has words, which is exactly one token a word in
 * cl100k_base and o200k_base, so the usage the mock reports (completion
 * tokens = the words it sent) is also what a tokenizer counts in the text
 * a gateway relayed. The answer is generated whole, in the shape of the
 * endpoint called, and then replayed like a fixture: pacing, injected
 * failures and a client that leaves mid-stream work as they do for
 * fixtures.
 */
#include "mock.h"

/* The most words one answer holds, all choices together. */
#define GREEDY_MAX_WORDS 4000000L

/* The most choices a request may ask for with n. */
#define GREEDY_MAX_N 128

/* The operation a model path asks for. */
enum greedy_op {
	OP_CHAT,        /* .../chat/completions */
	OP_COMPLETIONS, /* .../completions (legacy) */
	OP_EMBEDDINGS,  /* .../embeddings */
	OP_RESPONSES,   /* .../responses */
	OP_MESSAGES,    /* .../messages (Anthropic) */
};

/* What one greedy answer says. */
struct greedy {
	enum greedy_op g_op;
	int g_stream;
	int g_usage;   /* a chat or completions stream reports its usage */
	long g_n;      /* choices */
	long g_words;  /* words per choice */
	long g_prompt; /* prompt tokens reported */
	long g_per;    /* words per stream event */
	char *g_model; /* owned; the model as a JSON string literal */
};

/* Returns whether path ends in suffix. */
static int
ends_with(const char *path, const char *suffix)
{
	size_t n = strlen(path), s = strlen(suffix);

	return n >= s && strcmp(path + n - s, suffix) == 0;
}

/* Returns the operation a model path asks for. */
static enum greedy_op
op_of(const char *path)
{
	if (ends_with(path, "/chat/completions"))
		return OP_CHAT;
	if (ends_with(path, "/completions"))
		return OP_COMPLETIONS;
	if (ends_with(path, "/embeddings"))
		return OP_EMBEDDINGS;
	if (ends_with(path, "/responses"))
		return OP_RESPONSES;
	return OP_MESSAGES;
}

/* Returns a number member as a count: negative as 0, huge as LONG_MAX/2;
 * -1 when the member is absent or not a number. */
static long
count_of(const cJSON *root, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, name);

	if (!cJSON_IsNumber(it))
		return -1;
	if (it->valuedouble <= 0)
		return 0;
	if (it->valuedouble >= (double)(LONG_MAX / 2))
		return LONG_MAX / 2;
	return (long)it->valuedouble;
}

/* Returns the output cap of a request per choice: the first of the cap
 * members its operation honours that is a number, else -1. */
static long
request_cap(const cJSON *root, enum greedy_op op)
{
	static const char *const openai[] = {
		"max_completion_tokens",
		"max_tokens",
		"max_output_tokens",
		NULL,
	};
	static const char *const anthropic[] = { "max_tokens", NULL };
	const char *const *names = op == OP_MESSAGES ? anthropic : openai;
	long v;

	for (; *names != NULL; names++)
		if ((v = count_of(root, *names)) >= 0)
			return v;
	return -1;
}

/* Appends words [from, to) of a choice's text. */
static void
add_words(struct evbuffer *b, long from, long to)
{
	for (long i = from; i < to; i++) {
		if (i == 0)
			evbuffer_add(b, "the", 3);
		else
			evbuffer_add(b, " the", 4);
	}
}

/* Starts an SSE event, named when name is not NULL, up to its data. */
static void
ev_begin(struct evbuffer *b, const char *name)
{
	if (name != NULL)
		evbuffer_add_printf(b, "event: %s\n", name);
	evbuffer_add(b, "data: ", 6);
}

/* Ends an SSE event. */
static void
ev_end(struct evbuffer *b)
{
	evbuffer_add(b, "\n\n", 2);
}

/* Returns the smaller of two counts. */
static long
min_long(long a, long b)
{
	return a < b ? a : b;
}

/* The usage member that ends a chat or legacy completion object (or its
 * usage-only stream chunk), and the object's closing brace. */
static void
add_chat_usage(struct evbuffer *b, const struct greedy *g, long total)
{
	evbuffer_add_printf(b,
			    "\"usage\":{\"prompt_tokens\":%ld,"
			    "\"completion_tokens\":%ld,\"total_tokens\":%ld}}",
			    g->g_prompt, total, g->g_prompt + total);
}

/* A chat completion, streamed or not. */
static void
gen_chat(struct evbuffer *b, const struct greedy *g)
{
	const char *head = "{\"id\":\"chatcmpl-greedy\",\"object\":\"%s\","
			   "\"created\":1728000000,\"model\":%s,";
	long total = g->g_n * g->g_words, c, w;

	if (!g->g_stream) {
		evbuffer_add_printf(b, head, "chat.completion", g->g_model);
		evbuffer_add_printf(b, "\"choices\":[");
		for (c = 0; c < g->g_n; c++) {
			evbuffer_add_printf(b,
					    "%s{\"index\":%ld,\"message\":{"
					    "\"role\":\"assistant\","
					    "\"content\":\"",
					    c > 0 ? "," : "", c);
			add_words(b, 0, g->g_words);
			evbuffer_add_printf(b, "\",\"refusal\":null},"
					       "\"logprobs\":null,"
					       "\"finish_reason\":\"length\"}");
		}
		evbuffer_add_printf(b, "],");
		add_chat_usage(b, g, total);
		return;
	}
	for (c = 0; c < g->g_n; c++) {
		ev_begin(b, NULL);
		evbuffer_add_printf(b, head, "chat.completion.chunk",
				    g->g_model);
		evbuffer_add_printf(
			b,
			"\"choices\":[{\"index\":%ld,\"delta\":{"
			"\"role\":\"assistant\",\"content\":\"\"},"
			"\"logprobs\":null,\"finish_reason\":null}]}",
			c);
		ev_end(b);
		for (w = 0; w < g->g_words; w += g->g_per) {
			ev_begin(b, NULL);
			evbuffer_add_printf(b, head, "chat.completion.chunk",
					    g->g_model);
			evbuffer_add_printf(b,
					    "\"choices\":[{\"index\":%ld,"
					    "\"delta\":{\"content\":\"",
					    c);
			add_words(b, w, min_long(g->g_words, w + g->g_per));
			evbuffer_add_printf(b, "\"},\"logprobs\":null,"
					       "\"finish_reason\":null}]}");
			ev_end(b);
		}
		ev_begin(b, NULL);
		evbuffer_add_printf(b, head, "chat.completion.chunk",
				    g->g_model);
		evbuffer_add_printf(b,
				    "\"choices\":[{\"index\":%ld,\"delta\":{},"
				    "\"logprobs\":null,"
				    "\"finish_reason\":\"length\"}]}",
				    c);
		ev_end(b);
	}
	if (g->g_usage) {
		ev_begin(b, NULL);
		evbuffer_add_printf(b, head, "chat.completion.chunk",
				    g->g_model);
		evbuffer_add_printf(b, "\"choices\":[],");
		add_chat_usage(b, g, total);
		ev_end(b);
	}
	evbuffer_add_printf(b, "data: [DONE]\n\n");
}

/* A legacy text completion, streamed or not. */
static void
gen_completions(struct evbuffer *b, const struct greedy *g)
{
	const char *head = "{\"id\":\"cmpl-greedy\",\"object\":"
			   "\"text_completion\",\"created\":1728000000,"
			   "\"model\":%s,";
	long total = g->g_n * g->g_words, c, w;

	if (!g->g_stream) {
		evbuffer_add_printf(b, head, g->g_model);
		evbuffer_add_printf(b, "\"choices\":[");
		for (c = 0; c < g->g_n; c++) {
			evbuffer_add_printf(b, "%s{\"text\":\"",
					    c > 0 ? "," : "");
			add_words(b, 0, g->g_words);
			evbuffer_add_printf(
				b,
				"\",\"index\":%ld,\"logprobs\":null,"
				"\"finish_reason\":\"length\"}",
				c);
		}
		evbuffer_add_printf(b, "],");
		add_chat_usage(b, g, total);
		return;
	}
	for (c = 0; c < g->g_n; c++) {
		for (w = 0; w < g->g_words; w += g->g_per) {
			ev_begin(b, NULL);
			evbuffer_add_printf(b, head, g->g_model);
			evbuffer_add_printf(b, "\"choices\":[{\"text\":\"");
			add_words(b, w, min_long(g->g_words, w + g->g_per));
			evbuffer_add_printf(
				b,
				"\",\"index\":%ld,\"logprobs\":null,"
				"\"finish_reason\":null}]}",
				c);
			ev_end(b);
		}
		ev_begin(b, NULL);
		evbuffer_add_printf(b, head, g->g_model);
		evbuffer_add_printf(b,
				    "\"choices\":[{\"text\":\"\",\"index\":%ld,"
				    "\"logprobs\":null,"
				    "\"finish_reason\":\"length\"}]}",
				    c);
		ev_end(b);
	}
	if (g->g_usage) {
		ev_begin(b, NULL);
		evbuffer_add_printf(b, head, g->g_model);
		evbuffer_add_printf(b, "\"choices\":[],");
		add_chat_usage(b, g, total);
		ev_end(b);
	}
	evbuffer_add_printf(b, "data: [DONE]\n\n");
}

/* A Responses API response object, complete, with its usage. */
static void
gen_response_object(struct evbuffer *b, const struct greedy *g)
{
	evbuffer_add_printf(b,
			    "{\"id\":\"resp_greedy\",\"object\":\"response\","
			    "\"created_at\":1728000000,\"status\":"
			    "\"completed\",\"error\":null,"
			    "\"incomplete_details\":null,\"model\":%s,"
			    "\"output\":[{\"id\":\"msg_greedy\",\"type\":"
			    "\"message\",\"status\":\"completed\",\"role\":"
			    "\"assistant\",\"content\":[{\"type\":"
			    "\"output_text\",\"text\":\"",
			    g->g_model);
	add_words(b, 0, g->g_words);
	evbuffer_add_printf(b,
			    "\",\"annotations\":[]}]}],\"usage\":{"
			    "\"input_tokens\":%ld,\"input_tokens_details\":{"
			    "\"cached_tokens\":0},\"output_tokens\":%ld,"
			    "\"output_tokens_details\":{"
			    "\"reasoning_tokens\":0},\"total_tokens\":%ld}}",
			    g->g_prompt, g->g_words, g->g_prompt + g->g_words);
}

/* A Responses API answer, streamed or not. */
static void
gen_responses(struct evbuffer *b, const struct greedy *g)
{
	long seq = 0, w;

	if (!g->g_stream) {
		gen_response_object(b, g);
		return;
	}
	ev_begin(b, "response.created");
	evbuffer_add_printf(b,
			    "{\"type\":\"response.created\","
			    "\"sequence_number\":%ld,\"response\":{\"id\":"
			    "\"resp_greedy\",\"object\":\"response\","
			    "\"created_at\":1728000000,\"status\":"
			    "\"in_progress\",\"model\":%s,\"output\":[],"
			    "\"usage\":null}}",
			    seq++, g->g_model);
	ev_end(b);
	ev_begin(b, "response.output_item.added");
	evbuffer_add_printf(b,
			    "{\"type\":\"response.output_item.added\","
			    "\"sequence_number\":%ld,\"output_index\":0,"
			    "\"item\":{\"id\":\"msg_greedy\",\"type\":"
			    "\"message\",\"status\":\"in_progress\",\"role\":"
			    "\"assistant\",\"content\":[]}}",
			    seq++);
	ev_end(b);
	ev_begin(b, "response.content_part.added");
	evbuffer_add_printf(b,
			    "{\"type\":\"response.content_part.added\","
			    "\"sequence_number\":%ld,\"item_id\":"
			    "\"msg_greedy\",\"output_index\":0,"
			    "\"content_index\":0,\"part\":{\"type\":"
			    "\"output_text\",\"text\":\"\","
			    "\"annotations\":[]}}",
			    seq++);
	ev_end(b);
	for (w = 0; w < g->g_words; w += g->g_per) {
		ev_begin(b, "response.output_text.delta");
		evbuffer_add_printf(b,
				    "{\"type\":\"response.output_text.delta\","
				    "\"sequence_number\":%ld,\"item_id\":"
				    "\"msg_greedy\",\"output_index\":0,"
				    "\"content_index\":0,\"delta\":\"",
				    seq++);
		add_words(b, w, min_long(g->g_words, w + g->g_per));
		evbuffer_add_printf(b, "\"}");
		ev_end(b);
	}
	ev_begin(b, "response.completed");
	evbuffer_add_printf(b,
			    "{\"type\":\"response.completed\","
			    "\"sequence_number\":%ld,\"response\":",
			    seq++);
	gen_response_object(b, g);
	evbuffer_add_printf(b, "}");
	ev_end(b);
}

/* An Anthropic message, streamed or not. */
static void
gen_messages(struct evbuffer *b, const struct greedy *g)
{
	long w;

	if (!g->g_stream) {
		evbuffer_add_printf(b,
				    "{\"id\":\"msg_greedy\",\"type\":"
				    "\"message\",\"role\":\"assistant\","
				    "\"model\":%s,\"content\":[{\"type\":"
				    "\"text\",\"text\":\"",
				    g->g_model);
		add_words(b, 0, g->g_words);
		evbuffer_add_printf(b,
				    "\"}],\"stop_reason\":\"max_tokens\","
				    "\"stop_sequence\":null,\"usage\":{"
				    "\"input_tokens\":%ld,"
				    "\"output_tokens\":%ld}}",
				    g->g_prompt, g->g_words);
		return;
	}
	ev_begin(b, "message_start");
	evbuffer_add_printf(b,
			    "{\"type\":\"message_start\",\"message\":{\"id\":"
			    "\"msg_greedy\",\"type\":\"message\",\"role\":"
			    "\"assistant\",\"content\":[],\"model\":%s,"
			    "\"stop_reason\":null,\"stop_sequence\":null,"
			    "\"usage\":{\"input_tokens\":%ld,"
			    "\"output_tokens\":1}}}",
			    g->g_model, g->g_prompt);
	ev_end(b);
	ev_begin(b, "content_block_start");
	evbuffer_add_printf(b, "{\"type\":\"content_block_start\","
			       "\"index\":0,\"content_block\":{\"type\":"
			       "\"text\",\"text\":\"\"}}");
	ev_end(b);
	for (w = 0; w < g->g_words; w += g->g_per) {
		ev_begin(b, "content_block_delta");
		evbuffer_add_printf(b, "{\"type\":\"content_block_delta\","
				       "\"index\":0,\"delta\":{\"type\":"
				       "\"text_delta\",\"text\":\"");
		add_words(b, w, min_long(g->g_words, w + g->g_per));
		evbuffer_add_printf(b, "\"}}");
		ev_end(b);
	}
	ev_begin(b, "content_block_stop");
	evbuffer_add_printf(b, "{\"type\":\"content_block_stop\",\"index\":0}");
	ev_end(b);
	ev_begin(b, "message_delta");
	evbuffer_add_printf(b,
			    "{\"type\":\"message_delta\",\"delta\":{"
			    "\"stop_reason\":\"max_tokens\","
			    "\"stop_sequence\":null},\"usage\":{"
			    "\"output_tokens\":%ld}}",
			    g->g_words);
	ev_end(b);
	ev_begin(b, "message_stop");
	evbuffer_add_printf(b, "{\"type\":\"message_stop\"}");
	ev_end(b);
}

/* Returns the tokens of one embeddings input: the ids it gives when it is
 * an array (of integers), else greedy_prompt_tokens. */
static long
input_tokens(const cJSON *in)
{
	return cJSON_IsArray(in) ? cJSON_GetArraySize(in)
				 : srv.cfg.mc_greedy_prompt_tokens;
}

/* Returns whether an array holds only numbers: one input of token ids. */
static int
token_array(const cJSON *a)
{
	const cJSON *e;

	cJSON_ArrayForEach (e, a)
		if (!cJSON_IsNumber(e))
			return 0;
	return cJSON_GetArraySize(a) > 0;
}

/* An embeddings list, one short vector per input. */
static void
gen_embeddings(struct evbuffer *b, const cJSON *root, const char *model)
{
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "input"), *e;
	long ninputs = 0, tokens = 0, i;

	if (cJSON_IsArray(in) && !token_array(in)) {
		cJSON_ArrayForEach (e, in) {
			ninputs++;
			tokens += input_tokens(e);
		}
	} else if (in != NULL) {
		ninputs = 1;
		tokens = input_tokens(in);
	}
	evbuffer_add_printf(b, "{\"object\":\"list\",\"data\":[");
	for (i = 0; i < ninputs; i++)
		evbuffer_add_printf(b,
				    "%s{\"object\":\"embedding\",\"index\":%ld,"
				    "\"embedding\":[0.0125,-0.0250,0.0375,"
				    "-0.0500]}",
				    i > 0 ? "," : "", i);
	evbuffer_add_printf(b,
			    "],\"model\":%s,\"usage\":{\"prompt_tokens\":%ld,"
			    "\"total_tokens\":%ld}}",
			    model, tokens, tokens);
}

/* Returns a new JSON string literal of s; caller frees. */
static char *
json_literal(const char *s)
{
	cJSON *str = cJSON_CreateString(s);
	char *out = cJSON_PrintUnformatted(str);

	cJSON_Delete(str);
	if (out == NULL)
		abort();
	return out;
}

/* Sets mr's answer to the greedy one for a model request on path whose
 * body root (an object, borrowed) names model m. */
void
greedy_load(struct mock_req *mr, const cJSON *root, const char *path,
	    const char *m)
{
	struct greedy g = { 0 };
	const cJSON *so;
	struct evbuffer *b = evbuffer_new();
	long cap;
	int on_request;

	if (b == NULL)
		abort();
	g.g_op = op_of(path);
	g.g_model = json_literal(m);
	g.g_prompt = srv.cfg.mc_greedy_prompt_tokens;
	g.g_per = srv.cfg.mc_greedy_per_event;
	g.g_n = 1;
	if (g.g_op == OP_EMBEDDINGS) {
		gen_embeddings(b, root, g.g_model);
		goto done;
	}
	g.g_stream =
		cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "stream"));
	cap = srv.cfg.mc_ignore_caps ? -1 : request_cap(root, g.g_op);
	g.g_words = cap >= 0 ? cap : srv.cfg.mc_greedy_uncapped;
	if (g.g_op == OP_CHAT || g.g_op == OP_COMPLETIONS) {
		g.g_n = count_of(root, "n");
		if (g.g_n < 1 || g.g_n > GREEDY_MAX_N)
			g.g_n = 1;
	}
	if (g.g_words > GREEDY_MAX_WORDS / g.g_n)
		g.g_words = GREEDY_MAX_WORDS / g.g_n;
	/* The usage rule of the fixtures: see mock.h. */
	so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
	on_request = mr->mr_wire == WIRE_AZURE ||
		     (mr->mr_wire == WIRE_OPENAI && usage_on_request(m));
	g.g_usage =
		!on_request || (cJSON_IsObject(so) &&
				cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
					so, "include_usage")));
	switch (g.g_op) {
	case OP_CHAT:
		gen_chat(b, &g);
		break;
	case OP_COMPLETIONS:
		gen_completions(b, &g);
		break;
	case OP_RESPONSES:
		gen_responses(b, &g);
		break;
	case OP_MESSAGES:
		gen_messages(b, &g);
		break;
	case OP_EMBEDDINGS:
		break;
	}
done:
	free(g.g_model);
	mr->mr_len = evbuffer_get_length(b);
	mr->mr_body = malloc(mr->mr_len + 1);
	if (mr->mr_body == NULL)
		abort();
	evbuffer_remove(b, mr->mr_body, mr->mr_len);
	mr->mr_body[mr->mr_len] = '\0';
	evbuffer_free(b);
	mr->mr_sse = g.g_stream;
	if (mr->mr_sse)
		mr_split_events(mr);
}
