// zhipu.mjs - drives tollgated with Zhipu's Node SDK
// (zhipuai-sdk-nodejs-v4) as an application would: baseUrl = gateway/v1.
// The SDK signs its key ("id.secret") into a JWT it sends as the whole
// Authorization header; the gateway reads the tollgate key from the
// token's api_key claim, so the SDK is given the key "tg-....x". Or it is
// given any key and sends the tollgate key in x-api-key (customHeaders).
//
// Argument (JSON): {"op": "chat", "base": URL, "key": K, "model": M,
//   [stream], [via: "jwt" (the default) | "header"]}
// Prints one JSON line (see common.mjs).

import { ZhipuAI } from 'zhipuai-sdk-nodejs-v4';
import { run } from './common.mjs';

// The events of an SSE body: the JSON of each data line but [DONE].
function events(body) {
	return body.split('\n').filter((l) => l.startsWith('data:'))
		.map((l) => l.slice(5).trim()).filter((d) => d !== '[DONE]')
		.map((d) => JSON.parse(d));
}

async function chat(a) {
	const header = a.via === 'header';
	const ai = new ZhipuAI({
		apiKey: header ? 'someid.somesecret' : `${a.key}.x`,
		baseUrl: a.base,
		cacheToken: false,
		customHeaders: header ? { 'x-api-key': a.key } : undefined,
	});
	const seen = [];
	ai.request.request.interceptors.response.use((res) => {
		seen.push(res.headers['x-request-id'] ?? null);
		return res;
	});
	const messages = [{ role: 'user', content: 'Hello, who are you?' }];
	const data = await ai.createCompletions({ model: a.model, messages,
						  stream: a.stream ?? false });
	if (!a.stream)
		return {
			ok: true, request_id: seen.at(-1) ?? null,
			requests: seen.length,
			content: data.choices?.[0]?.message?.content ?? null,
			usage: data.usage ?? null,
		};
	let body = '';
	for await (const chunk of data)
		body += chunk.toString();
	const evs = events(body);
	return {
		ok: true, request_id: seen.at(-1) ?? null,
		requests: seen.length,
		content: evs.map((e) => e.choices?.[0]?.delta?.content ?? '')
			.join(''),
		usage: evs.map((e) => e.usage).filter(Boolean).at(-1) ?? null,
	};
}

run(async (a) => {
	if (a.op === 'chat')
		return chat(a);
	throw new Error(`unknown op ${a.op}`);
});
