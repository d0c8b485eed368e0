/*
 * estimate.c - token estimation from text.
 */
#include <string.h>

#include "estimate.h"

/* Tokens a chat message costs beyond its text (role, separators). */
#define MESSAGE_OVERHEAD 4
/* Tokens that prime every chat reply. */
#define REPLY_PRIMING 3

/* Decodes one UTF-8 sequence at s; returns its length (1 on bad bytes). */
static size_t
utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0 && len >= 2) {
		*cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
		return 2;
	}
	if ((s[0] & 0xf0) == 0xe0 && len >= 3) {
		*cp = (uint32_t)(s[0] & 0x0f) << 12 |
		      (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		return 3;
	}
	if ((s[0] & 0xf8) == 0xf0 && len >= 4) {
		*cp = (uint32_t)(s[0] & 0x07) << 18 |
		      (uint32_t)(s[1] & 0x3f) << 12 |
		      (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
		return 4;
	}
	*cp = 0xfffd;
	return 1;
}

/* Whether a code point is a CJK ideograph, kana, hangul or full-width
 * form: about one token each. */
static int
is_cjk(uint32_t cp)
{
	return (cp >= 0x2e80 && cp <= 0x9fff) || (cp >= 0xac00 && cp <= 0xd7af) ||
	       (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xff00 && cp <= 0xffef) ||
	       (cp >= 0x20000 && cp <= 0x2fa1f);
}

/* Tokens of a word of n letters: common words are one token, longer ones
 * about one more per four letters. */
static int64_t
word_tokens(int64_t n)
{
	return n <= 6 ? 1 : 1 + (n - 3) / 4;
}

/* Estimates tokens: words by length, punctuation and CJK one each. */
int64_t
estimate_tokens(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	int64_t tokens = 0, word = 0;
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = utf8_next(s + i, len - i, &cp);
		int alnum = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
			    (cp >= '0' && cp <= '9') ||
			    (cp >= 0x80 && !is_cjk(cp));

		i += n;
		if (alnum) {
			word++;
			continue;
		}
		if (word > 0) {
			tokens += word_tokens(word);
			word = 0;
		}
		if (is_cjk(cp))
			tokens++;
		else if (cp != ' ' && cp != '\n' && cp != '\t' && cp != '\r')
			tokens++;
	}
	if (word > 0)
		tokens += word_tokens(word);
	return tokens;
}

/* Tokens of a string item, 0 for anything else. */
static int64_t
str_tokens(const cJSON *item)
{
	if (!cJSON_IsString(item) || item->valuestring == NULL)
		return 0;
	return estimate_tokens(item->valuestring, strlen(item->valuestring));
}

/* Tokens of a content value: a string, or an array of parts whose "text"
 * (or string items) count. */
static int64_t
content_tokens(const cJSON *content)
{
	const cJSON *part;
	int64_t n = 0;

	if (cJSON_IsString(content))
		return str_tokens(content);
	if (!cJSON_IsArray(content))
		return 0;
	cJSON_ArrayForEach(part, content) {
		if (cJSON_IsString(part))
			n += str_tokens(part);
		else
			n += str_tokens(cJSON_GetObjectItemCaseSensitive(part,
									 "text"));
	}
	return n;
}

/* Tokens of a list of chat messages. */
static int64_t
messages_tokens(const cJSON *msgs)
{
	const cJSON *m;
	int64_t n = 0;

	if (!cJSON_IsArray(msgs))
		return content_tokens(msgs);
	cJSON_ArrayForEach(m, msgs) {
		n += MESSAGE_OVERHEAD;
		n += content_tokens(cJSON_GetObjectItemCaseSensitive(m,
								     "content"));
		n += str_tokens(cJSON_GetObjectItemCaseSensitive(m, "name"));
	}
	return n + REPLY_PRIMING;
}

/* Estimates the prompt of a request body. */
int64_t
estimate_prompt(const cJSON *req, enum wire w)
{
	switch (w) {
	case WIRE_OPENAI_CHAT:
		return messages_tokens(
			cJSON_GetObjectItemCaseSensitive(req, "messages"));
	case WIRE_ANTHROPIC:
		return content_tokens(cJSON_GetObjectItemCaseSensitive(req,
								       "system")) +
		       messages_tokens(
			       cJSON_GetObjectItemCaseSensitive(req, "messages"));
	case WIRE_OPENAI_RESPONSES:
		return str_tokens(cJSON_GetObjectItemCaseSensitive(
			       req, "instructions")) +
		       messages_tokens(
			       cJSON_GetObjectItemCaseSensitive(req, "input"));
	case WIRE_OPENAI_COMPLETIONS:
		return content_tokens(
			cJSON_GetObjectItemCaseSensitive(req, "prompt"));
	case WIRE_OPENAI_EMBEDDINGS:
		return content_tokens(
			cJSON_GetObjectItemCaseSensitive(req, "input"));
	}
	return 0;
}

/* Tokens of the text members of a chat message or delta. */
static int64_t
message_output(const cJSON *m)
{
	static const char *const fields[] = { "content", "reasoning_content",
					      "refusal", NULL };
	const cJSON *calls, *call;
	int64_t n = 0;

	if (!cJSON_IsObject(m))
		return 0;
	for (int i = 0; fields[i] != NULL; i++)
		n += content_tokens(cJSON_GetObjectItemCaseSensitive(m,
								     fields[i]));
	calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
	cJSON_ArrayForEach(call, calls) {
		const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call,
								   "function");
		n += str_tokens(cJSON_GetObjectItemCaseSensitive(fn, "name"));
		n += str_tokens(cJSON_GetObjectItemCaseSensitive(fn,
								 "arguments"));
	}
	return n;
}

/* Estimates the output text of a body or stream event. */
int64_t
estimate_output(const cJSON *obj, enum wire w)
{
	const cJSON *choices, *c, *delta, *out, *item;
	int64_t n = 0;

	switch (w) {
	case WIRE_OPENAI_CHAT:
	case WIRE_OPENAI_COMPLETIONS:
		choices = cJSON_GetObjectItemCaseSensitive(obj, "choices");
		cJSON_ArrayForEach(c, choices) {
			n += str_tokens(cJSON_GetObjectItemCaseSensitive(c,
									 "text"));
			n += message_output(cJSON_GetObjectItemCaseSensitive(
				c, "delta"));
			n += message_output(cJSON_GetObjectItemCaseSensitive(
				c, "message"));
		}
		return n;
	case WIRE_ANTHROPIC:
		/* A stream's content_block_delta, or a body's content. */
		delta = cJSON_GetObjectItemCaseSensitive(obj, "delta");
		if (cJSON_IsObject(delta)) {
			n += str_tokens(cJSON_GetObjectItemCaseSensitive(delta,
									 "text"));
			n += str_tokens(cJSON_GetObjectItemCaseSensitive(
				delta, "partial_json"));
			n += str_tokens(cJSON_GetObjectItemCaseSensitive(
				delta, "thinking"));
		}
		cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(
					       obj, "content"))
			n += str_tokens(cJSON_GetObjectItemCaseSensitive(item,
									 "text"));
		return n;
	case WIRE_OPENAI_RESPONSES:
		/* response.output_text.delta events carry a string delta. */
		n += str_tokens(cJSON_GetObjectItemCaseSensitive(obj, "delta"));
		out = cJSON_GetObjectItemCaseSensitive(obj, "output");
		cJSON_ArrayForEach(item, out)
			n += content_tokens(cJSON_GetObjectItemCaseSensitive(
				item, "content"));
		return n;
	case WIRE_OPENAI_EMBEDDINGS:
		return 0;
	}
	return 0;
}
