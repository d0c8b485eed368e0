// langchain.mjs - drives tollgated with LangChain JS as an application
// would: ChatOpenAI (chat completions, or the Responses API), ChatAnthropic
// and OpenAIEmbeddings, pointed at the gateway with a tollgate key;
// invoke(), stream(), bindTools(), embedDocuments().
//
// Argument (JSON): {"op": OP, "base": URL, "key": K, ...}
//   chat        class "openai" | "anthropic", model, [stream],
//               [responses: ChatOpenAI on the Responses API], [tools]
//   embed       model, values (strings)
// Prints one JSON line (see common.mjs): what LangChain parsed (text, tool
// calls, usage_metadata), the last x-request-id and the request count.

import { ChatAnthropic } from '@langchain/anthropic';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { run, spyFetch } from './common.mjs';

const seen = [];

const WEATHER = {
	name: 'get_weather',
	description: 'Current weather in a city',
	schema: {
		type: 'object',
		properties: { location: { type: 'string' },
			      unit: { type: 'string' } },
		required: ['location'],
	},
};

function chatModel(a) {
	const fetch = spyFetch(seen);
	if (a.class === 'anthropic')
		return new ChatAnthropic({
			model: a.model, apiKey: a.key, maxRetries: 0,
			maxTokens: 1024, anthropicApiUrl: a.base,
			clientOptions: { fetch },
		});
	return new ChatOpenAI({
		model: a.model, apiKey: a.key, maxRetries: 0,
		useResponsesApi: a.responses ?? false,
		streamUsage: a.stream_usage ?? true,
		configuration: { baseURL: a.base, fetch },
	});
}

function text(content) {
	if (typeof content === 'string')
		return content;
	return (content ?? []).filter((p) => p.type === 'text')
		.map((p) => p.text).join('');
}

function outcome(msg, extra) {
	return {
		ok: true,
		request_id: seen.at(-1) ?? null,
		requests: seen.length,
		text: text(msg?.content),
		tool_calls: (msg?.tool_calls ?? []).map((c) => ({
			id: c.id, name: c.name, input: c.args })),
		usage: msg?.usage_metadata ?? null,
		...extra,
	};
}

async function chat(a) {
	let m = chatModel(a);
	if (a.tools)
		m = m.bindTools([WEATHER]);
	const input = [['human', 'Hello, who are you?']];
	if (!a.stream)
		return outcome(await m.invoke(input));
	let full = null, chunks = 0;
	for await (const c of await m.stream(input)) {
		chunks++;
		full = full === null ? c : full.concat(c);
	}
	return outcome(full, { chunks });
}

async function embed(a) {
	const e = new OpenAIEmbeddings({
		model: a.model, apiKey: a.key, maxRetries: 0,
		configuration: { baseURL: a.base, fetch: spyFetch(seen) },
	});
	const vectors = await e.embedDocuments(a.values);
	return { ok: true, request_id: seen.at(-1) ?? null,
		 requests: seen.length, embeddings: vectors };
}

run(async (a) => {
	switch (a.op) {
	case 'chat':
		return chat(a);
	case 'embed':
		return embed(a);
	}
	throw new Error(`unknown op ${a.op}`);
});
