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

/* An API endpoint the gateway serves. */
struct endpoint {
	const char *path; /* client path, e.g. "/v1/chat/completions" */
	const char *name; /* usage_records.endpoint, e.g. "chat/completions" */
	enum wire wire;
};

#endif
