/*
 * tollgate.h - the types every module shares: the API shapes (wires) the
 * gateway speaks, the providers' flavors, and the endpoints clients call.
 */
#ifndef TOLLGATE_TOLLGATE_H
#define TOLLGATE_TOLLGATE_H

/* The API shape of a request, a response body or a stream. */
enum wire {
	WIRE_OPENAI_CHAT,        /* chat.completion(.chunk) */
	WIRE_OPENAI_COMPLETIONS, /* legacy text_completion */
	WIRE_OPENAI_EMBEDDINGS,
	WIRE_OPENAI_RESPONSES, /* Responses API */
	WIRE_ANTHROPIC,        /* Messages API */
};

/* The provider, for its usage quirks (usage.h). */
enum flavor {
	FLAVOR_OPENAI,
	FLAVOR_AZURE,
	FLAVOR_ANTHROPIC,
	FLAVOR_ZHIPU,
	FLAVOR_DASHSCOPE,
	FLAVOR_QIANFAN,
	FLAVOR_BAICHUAN,
	FLAVOR_YI,
	FLAVOR_MOONSHOT,
	FLAVOR_DEEPSEEK,
	FLAVOR__COUNT
};

/* What a call to an endpoint asks for. */
enum endpoint_op {
	EP_GENERATE,     /* a completion, response or embedding */
	EP_COUNT_TOKENS, /* a prompt's token count (Anthropic's
			    /v1/messages/count_tokens): no tokens used */
};

/* An API endpoint the gateway serves. */
struct endpoint {
	const char *path; /* client path, e.g. "/v1/chat/completions" */
	const char *name; /* usage_records.endpoint, e.g. "chat/completions" */
	enum wire wire;
	enum endpoint_op op;
};

#endif
