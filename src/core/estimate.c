/*
 * estimate.c - token counts estimated from request and response bodies.
 *
 * Principle: count what a provider counts, with the provider's tokenizer
 * where it is public, and never less where it is not. Text is counted with
 * OpenAI's BPE encodings (bpe.c), exactly: o200k_base for GPT-4o, GPT-4.1,
 * GPT-5 and the o-series, cl100k_base for GPT-4, GPT-3.5 and the
 * embeddings models. The other providers do not publish theirs; their
 * text is counted with o200k_base, whose vocabulary is closest for Chinese,
 * and a prompt's count is raised by a safety factor measured on their
 * recorded answers (tokenizers below), so a reservation covers what they
 * will charge. Counts that are billed (a provider that reported none)
 * are never scaled.
 *
 * Around the text, the framing the providers document: 4 tokens per chat
 * message and 3 priming the reply, a name's extra token, a tool call's
 * markers. Media count at their worst, as the body does not tell their
 * size: an image what the largest costs, audio by its length, a file by its
 * bytes. Costs are kept in hundredths of a token and rounded once per call,
 * and a non-empty text is at least one token.
 */
#include <stdio.h>
#include <string.h>

#include "bpe.h"
#include "estimate.h"

/* Costs in hundredths of a token. */
#define TOKEN 100

/* Tokens a chat message costs beyond its text: OpenAI documents 3 for the
 * framing of each message, and the role is a fourth. A name costs one
 * more than its text. */
#define MESSAGE_OVERHEAD 4
#define NAME_OVERHEAD    1
/* Tokens that prime every chat reply. */
#define REPLY_PRIMING 3
/* Tokens that frame a tool call in the model's output (call and end
 * markers), beyond its name and arguments. */
#define TOOL_CALL_OVERHEAD 3
/* An image in a prompt costs what the provider charges for the largest one
 * it takes, as the request text does not tell its size: OpenAI's gpt-4o
 * family 85 + 170 per 512-pixel tile, 8 tiles at most (768 x 2048), so
 * 1445; Anthropic about width x height / 750 after scaling to 1.15
 * megapixels, so 1600 at most; 85 for any image asked at detail "low".
 * Models whose images cost more per tile say so in tokenizers[]. */
#define IMAGE_TOKENS     1600
#define IMAGE_LOW_TOKENS 85
/* Audio in a prompt: OpenAI charges about 10 tokens a second, and the
 * leanest audio it takes (8 kbit/s) holds a second in 1,000 bytes. */
#define AUDIO_BYTES_PER_TOKEN 100
/* A file in a prompt (a PDF): its text and an image of each page. Given
 * inline, one token per 4 bytes of it; named by id, a flat figure. */
#define FILE_BYTES_PER_TOKEN 4
#define FILE_ID_TOKENS       8192

/*
 * Tokenizers by model name prefix, first match wins. percent scales a
 * prompt's count when its worst case is reserved, for providers whose
 * tokenizer is not public (estimate.h has the figures and how they were
 * measured); the count billed when a provider reports none is not scaled.
 * A model not listed is counted with o200k_base, unscaled.
 */
static const struct estimator tokenizers[] = {
	/* OpenAI's mini models charge images by a multiple of their size:
	 * 85 + 170 per tile times 33.3, or 1536 patches times 2.46, 1.72
	 * and 1.62. */
	{ "gpt-4o-mini", BPE_O200K, 100, 1, 2833 + 5667 * 8 },
	{ "gpt-4.1-nano", BPE_O200K, 100, 1, 3779 },
	{ "gpt-4.1-mini", BPE_O200K, 100, 1, 2488 },
	{ "o4-mini", BPE_O200K, 100, 1, 2642 },
	{ "gpt-4o", BPE_O200K, 100, 1, IMAGE_TOKENS },
	{ "chatgpt-4o", BPE_O200K, 100, 1, IMAGE_TOKENS },
	{ "gpt-4.1", BPE_O200K, 100, 1, IMAGE_TOKENS },
	{ "gpt-4.5", BPE_O200K, 100, 1, IMAGE_TOKENS },
	{ "gpt-5", BPE_O200K, 100, 1, IMAGE_TOKENS },
	{ "gpt-oss", BPE_O200K, 100, 1, IMAGE_TOKENS },
	{ "o1", BPE_O200K, 100, 1, IMAGE_TOKENS },
	{ "o3", BPE_O200K, 100, 1, IMAGE_TOKENS },
	{ "o4", BPE_O200K, 100, 1, IMAGE_TOKENS },
	{ "gpt-4", BPE_CL100K, 100, 1, IMAGE_TOKENS },
	{ "gpt-3.5", BPE_CL100K, 100, 1, IMAGE_TOKENS },
	{ "text-embedding-", BPE_CL100K, 100, 1, IMAGE_TOKENS },
	{ "davinci", BPE_CL100K, 100, 1, IMAGE_TOKENS },
	{ "babbage", BPE_CL100K, 100, 1, IMAGE_TOKENS },
	{ "claude", BPE_O200K, HIGHEST_PERCENT, 0, IMAGE_TOKENS },
	{ "glm", BPE_O200K, HIGHEST_PERCENT, 0, IMAGE_TOKENS },
	{ "chatglm", BPE_O200K, HIGHEST_PERCENT, 0, IMAGE_TOKENS },
	{ "qwen", BPE_O200K, DASHSCOPE_PERCENT, 0, IMAGE_TOKENS },
	{ "qwq", BPE_O200K, DASHSCOPE_PERCENT, 0, IMAGE_TOKENS },
	{ "ernie", BPE_O200K, QIANFAN_PERCENT, 0, IMAGE_TOKENS },
	{ "moonshot", BPE_O200K, MOONSHOT_PERCENT, 0, IMAGE_TOKENS },
	{ "kimi", BPE_O200K, MOONSHOT_PERCENT, 0, IMAGE_TOKENS },
	{ "deepseek", BPE_O200K, HIGHEST_PERCENT, 0, IMAGE_TOKENS },
	{ "baichuan", BPE_O200K, BAICHUAN_PERCENT, 0, IMAGE_TOKENS },
	{ "yi-", BPE_O200K, YI_PERCENT, 0, IMAGE_TOKENS },
};

static const struct estimator default_tokenizer = { "", BPE_O200K, 100, 0,
						    IMAGE_TOKENS };

/* The tokenizer of a model. */
const struct estimator *
estimate_for(const char *model)
{
	for (size_t i = 0;
	     model != NULL && i < sizeof tokenizers / sizeof tokenizers[0]; i++)
		if (strncmp(model, tokenizers[i].prefix,
			    strlen(tokenizers[i].prefix)) == 0)
			return &tokenizers[i];
	return &default_tokenizer;
}

/* What a count is for: the tokenizer, and what an image costs. */
struct count {
	enum bpe_encoding enc;
	int64_t image_tokens;
};

/* Cost of len bytes of text. */
static int64_t
text_cost(const struct count *k, const char *text, size_t len)
{
	return len == 0 ? 0 : (int64_t)bpe_count(k->enc, text, len) * TOKEN;
}

/* Whole tokens of a cost: rounded, and at least one for any cost. */
static int64_t
round_cost(int64_t cost)
{
	if (cost <= 0)
		return 0;
	return cost < TOKEN ? 1 : (cost + TOKEN / 2) / TOKEN;
}

/* A prompt's count as a reservation reserves it. */
int64_t
estimate_reserve(const struct estimator *e, int64_t tokens)
{
	return (tokens * e->percent + 99) / 100;
}

/* Counts text with a model's tokenizer, unscaled. */
int64_t
estimate_text(const struct estimator *e, const char *text, size_t len)
{
	return (int64_t)bpe_count(e->enc, text, len);
}

/* A member of an object; NULL when o is no object or lacks it. */
static const cJSON *
field(const cJSON *o, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* Whether an object's "type" is t. */
static int
has_type(const cJSON *o, const char *t)
{
	const cJSON *type = field(o, "type");

	return cJSON_IsString(type) && strcmp(type->valuestring, t) == 0;
}

/* Cost of a string item, 0 for anything else. */
static int64_t
str_cost(const struct count *k, const cJSON *item)
{
	if (!cJSON_IsString(item) || item->valuestring == NULL)
		return 0;
	return text_cost(k, item->valuestring, strlen(item->valuestring));
}

/* Cost of a JSON value as a model writes it (tool arguments given as an
 * object): strings and keys by their text, numbers by their digits, about
 * one token per separator ("{\"", "\":", ",\"", "}"). */
static int64_t
json_cost(const struct count *k, const cJSON *v, int depth)
{
	const cJSON *c;
	int64_t n;
	char num[32];
	int len;

	if (v == NULL || depth > 32)
		return 0;
	if (cJSON_IsString(v))
		return str_cost(k, v);
	if (cJSON_IsNumber(v)) {
		len = snprintf(num, sizeof(num), "%.15g", v->valuedouble);
		if (len < 0 || (size_t)len >= sizeof(num))
			return TOKEN;
		return text_cost(k, num, (size_t)len);
	}
	if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
		return TOKEN; /* true, false, null */
	n = TOKEN;
	cJSON_ArrayForEach (c, v) {
		if (c->string != NULL)
			n += text_cost(k, c->string, strlen(c->string)) + TOKEN;
		n += json_cost(k, c, depth + 1) + TOKEN;
	}
	return n;
}

static int64_t content_cost(const struct count *k, const cJSON *content,
			    int depth);

/* Bytes that a base64 text of n characters decodes to. */
static int64_t
base64_bytes(const cJSON *data)
{
	return cJSON_IsString(data) ? (int64_t)strlen(data->valuestring) / 4 * 3
				    : 0;
}

/* Cost of a media part: an image, audio or a file; -1 for any other
 * part. */
static int64_t
media_cost(const struct count *k, const cJSON *part, const char *type)
{
	const cJSON *v, *file, *src;
	int64_t n;

	if (strstr(type, "image") != NULL) {
		v = field(part, "image_url");
		v = cJSON_IsObject(v) ? field(v, "detail")
				      : field(part, "detail");
		if (cJSON_IsString(v) && strcmp(v->valuestring, "low") == 0)
			return IMAGE_LOW_TOKENS * TOKEN;
		return k->image_tokens * TOKEN;
	}
	if (strstr(type, "audio") != NULL) {
		v = field(part, "input_audio");
		n = base64_bytes(field(cJSON_IsObject(v) ? v : part, "data"));
		return (n / AUDIO_BYTES_PER_TOKEN + 1) * TOKEN;
	}
	if (strcmp(type, "file") == 0 || strcmp(type, "input_file") == 0 ||
	    strcmp(type, "document") == 0) {
		file = field(part, "file");
		if (!cJSON_IsObject(file))
			file = part;
		src = field(part, "source"); /* Anthropic's document */
		if (cJSON_IsObject(src) && has_type(src, "text"))
			return str_cost(k, field(src, "data"));
		n = base64_bytes(field(file, "file_data")) +
		    base64_bytes(field(src, "data"));
		if (n > 0)
			return (n / FILE_BYTES_PER_TOKEN + 1) * TOKEN;
		return FILE_ID_TOKENS * TOKEN;
	}
	return -1;
}

/* Cost of one part of a content array: its text in whichever member the
 * part type keeps it (text, thinking, refusal, tool input and results,
 * function arguments and outputs), or a media part's cost; a number is a
 * token id (a prompt given as tokens). */
static int64_t
part_cost(const struct count *k, const cJSON *part, int depth)
{
	static const char *const strs[] = { "text",      "thinking", "refusal",
					    "arguments", "output",   "name",
					    NULL };
	const cJSON *type, *input;
	int64_t n = 0;

	if (cJSON_IsString(part))
		return str_cost(k, part);
	if (cJSON_IsNumber(part))
		return TOKEN;
	if (cJSON_IsArray(part) && depth < 8)
		return content_cost(k, part, depth + 1);
	if (!cJSON_IsObject(part) || depth > 8)
		return 0;
	type = field(part, "type");
	if (cJSON_IsString(type) &&
	    (n = media_cost(k, part, type->valuestring)) >= 0)
		return n;
	n = 0;
	for (int i = 0; strs[i] != NULL; i++)
		n += str_cost(k, field(part, strs[i]));
	input = field(part, "input");
	if (cJSON_IsObject(input))
		n += json_cost(k, input, 0);
	return n + content_cost(k, field(part, "content"), depth + 1);
}

/* Cost of a content value: a string, or an array of parts. */
static int64_t
content_cost(const struct count *k, const cJSON *content, int depth)
{
	const cJSON *part;
	int64_t n = 0;

	if (cJSON_IsString(content))
		return str_cost(k, content);
	if (!cJSON_IsArray(content))
		return 0;
	cJSON_ArrayForEach (part, content)
		n += part_cost(k, part, depth);
	return n;
}

/* Cost of a function call ({name, arguments}); its framing counts where
 * its name appears (the first delta of a streamed call). */
static int64_t
call_cost(const struct count *k, const cJSON *fn)
{
	const cJSON *name = field(fn, "name");
	int64_t n = str_cost(k, field(fn, "arguments"));

	if (cJSON_IsString(name))
		n += TOOL_CALL_OVERHEAD * TOKEN + str_cost(k, name);
	return n;
}

/* Cost of the function calls of a chat message or delta, the legacy
 * function_call included. */
static int64_t
calls_cost(const struct count *k, const cJSON *m)
{
	const cJSON *call;
	int64_t n = 0;

	cJSON_ArrayForEach (call, field(m, "tool_calls"))
		n += call_cost(k, field(call, "function"));
	return n + call_cost(k, field(m, "function_call"));
}

/* Cost of a list of chat messages (or Responses input items), with the
 * framing of each and the priming of the reply. */
static int64_t
messages_cost(const struct count *k, const cJSON *msgs)
{
	const cJSON *m, *name, *type;
	int64_t n = 0, media;

	if (!cJSON_IsArray(msgs))
		return content_cost(k, msgs, 0);
	cJSON_ArrayForEach (m, msgs) {
		n += MESSAGE_OVERHEAD * TOKEN;
		if (!cJSON_IsObject(m)) {
			n += content_cost(k, m, 0);
			continue;
		}
		n += content_cost(k, field(m, "content"), 0);
		name = field(m, "name");
		if (cJSON_IsString(name))
			n += NAME_OVERHEAD * TOKEN + str_cost(k, name);
		n += calls_cost(k, m);
		/* Responses items: function_call, function_call_output, and
		 * media given as an item of their own. */
		n += str_cost(k, field(m, "arguments"));
		n += str_cost(k, field(m, "output"));
		type = field(m, "type");
		if (cJSON_IsString(type) &&
		    (media = media_cost(k, m, type->valuestring)) > 0)
			n += media;
	}
	return n + REPLY_PRIMING * TOKEN;
}

/* Cost of what a request sends the model besides its messages: tool and
 * function definitions, response schemas, a predicted output, tool
 * choice; all reach the model as text. */
static int64_t
definitions_cost(const struct count *k, const cJSON *req)
{
	static const char *const members[] = {
		"tools", "functions",   "response_format", "prediction",
		"text",  "tool_choice", "function_call",   NULL,
	};
	const cJSON *v;
	int64_t n = 0;

	for (int i = 0; members[i] != NULL; i++)
		if ((v = field(req, members[i])) != NULL &&
		    (cJSON_IsArray(v) || cJSON_IsObject(v)))
			n += json_cost(k, v, 0);
	return n;
}

/* Estimates the prompt of a request body. */
int64_t
estimate_prompt(const cJSON *req, enum wire w, const struct estimator *e)
{
	const struct count count = { e->enc, e->image_tokens };
	const struct count *k = &count;
	int64_t n = 0;

	switch (w) {
	case WIRE_OPENAI_CHAT:
		n = messages_cost(k, field(req, "messages")) +
		    definitions_cost(k, req);
		break;
	case WIRE_ANTHROPIC:
		n = content_cost(k, field(req, "system"), 0) +
		    messages_cost(k, field(req, "messages")) +
		    definitions_cost(k, req);
		break;
	case WIRE_OPENAI_RESPONSES:
		n = str_cost(k, field(req, "instructions")) +
		    messages_cost(k, field(req, "input")) +
		    definitions_cost(k, req);
		break;
	case WIRE_OPENAI_COMPLETIONS:
		n = content_cost(k, field(req, "prompt"), 0) +
		    str_cost(k, field(req, "suffix"));
		break;
	case WIRE_OPENAI_EMBEDDINGS:
		n = content_cost(k, field(req, "input"), 0);
		break;
	}
	return round_cost(n);
}

/* Cost of the text members of a chat message or delta: content, reasoning
 * (DeepSeek's and Qwen's reasoning_content, or reasoning where a router
 * sends only that), refusal and calls. */
static int64_t
message_output(const struct count *k, const cJSON *m)
{
	const cJSON *rc = field(m, "reasoning_content");
	int64_t n = 0;

	if (!cJSON_IsObject(m))
		return 0;
	n += content_cost(k, field(m, "content"), 0);
	n += str_cost(k, cJSON_IsString(rc) ? rc : field(m, "reasoning"));
	n += str_cost(k, field(m, "refusal"));
	return n + calls_cost(k, m);
}

/* Cost of an Anthropic content block (a body's content item, or the
 * content_block that starts a streamed block): text, thinking, and a tool
 * call's framing, name and input. */
static int64_t
anthropic_block(const struct count *k, const cJSON *b)
{
	const cJSON *in = field(b, "input");
	int64_t n = 0;

	if (!cJSON_IsObject(b))
		return 0;
	n += str_cost(k, field(b, "text"));
	n += str_cost(k, field(b, "thinking"));
	if (has_type(b, "tool_use") || has_type(b, "server_tool_use")) {
		n += TOOL_CALL_OVERHEAD * TOKEN + str_cost(k, field(b, "name"));
		/* A streamed block starts with an empty input. */
		if (cJSON_IsObject(in) && in->child != NULL)
			n += json_cost(k, in, 0);
	}
	return n;
}

/* Cost of a Responses API output item: message parts, a function call,
 * reasoning summaries and text. */
static int64_t
responses_item(const struct count *k, const cJSON *item)
{
	int64_t n = 0;

	if (!cJSON_IsObject(item))
		return 0;
	if (has_type(item, "function_call"))
		n += call_cost(k, item);
	n += content_cost(k, field(item, "content"), 0);
	n += content_cost(k, field(item, "summary"), 0);
	return n;
}

/* Cost of the output of a Responses API body or stream event. In a stream
 * only the deltas count (text, refusal, function arguments, reasoning),
 * plus a function call's framing and name when its item is added; the
 * .done events and response.completed repeat what the deltas carried. */
static int64_t
responses_output(const struct count *k, const cJSON *obj)
{
	const cJSON *item;
	int64_t n = 0;

	/* Audio deltas are base64, not text. */
	if (has_type(obj, "response.audio.delta"))
		return 0;
	if (has_type(obj, "response.output_item.added")) {
		item = field(obj, "item");
		return has_type(item, "function_call") ? call_cost(k, item) : 0;
	}
	n += str_cost(k, field(obj, "delta"));
	cJSON_ArrayForEach (item, field(obj, "output"))
		n += responses_item(k, item);
	return n;
}

/* Cost of the output of an Anthropic body or stream event: a stream's
 * content_block_start and content_block_delta, or a body's content. */
static int64_t
anthropic_output(const struct count *k, const cJSON *obj)
{
	const cJSON *delta = field(obj, "delta"), *item;
	int64_t n = 0;

	if (cJSON_IsObject(delta)) {
		n += str_cost(k, field(delta, "text"));
		n += str_cost(k, field(delta, "partial_json"));
		n += str_cost(k, field(delta, "thinking"));
	}
	n += anthropic_block(k, field(obj, "content_block"));
	cJSON_ArrayForEach (item, field(obj, "content"))
		n += anthropic_block(k, item);
	return n;
}

/* Estimates the output text of a body or stream event. */
int64_t
estimate_output(const cJSON *obj, enum wire w, const struct estimator *e)
{
	const struct count count = { e->enc, IMAGE_TOKENS };
	const struct count *k = &count;
	const cJSON *c;
	int64_t n = 0;

	if (!cJSON_IsObject(obj))
		return 0;
	switch (w) {
	case WIRE_OPENAI_CHAT:
	case WIRE_OPENAI_COMPLETIONS:
		cJSON_ArrayForEach (c, field(obj, "choices")) {
			n += str_cost(k, field(c, "text"));
			n += message_output(k, field(c, "delta"));
			n += message_output(k, field(c, "message"));
		}
		break;
	case WIRE_ANTHROPIC:
		n = anthropic_output(k, obj);
		break;
	case WIRE_OPENAI_RESPONSES:
		n = responses_output(k, obj);
		break;
	case WIRE_OPENAI_EMBEDDINGS:
		break;
	}
	return round_cost(n);
}
