// vercel.mjs - drives tollgated with the Vercel AI SDK (ai 6) as an
// application would: generateText, streamText, embedMany, tools, through
// its OpenAI provider (Responses API by default, chat with .chat()), its
// OpenAI-compatible provider and its Anthropic provider, each pointed at
// the gateway with a tollgate key.
//
// Argument (JSON): {"op": OP, "provider": P, "base": URL, "key": K, ...}
//   P: "openai" (createOpenAI, Responses), "openai-chat" (createOpenAI,
//      .chat()), "compatible" (createOpenAICompatible, [include_usage]),
//      "anthropic" (createAnthropic)
//   text        model, [stream], [tools]
//   embed       model, values (strings)
// Prints one JSON line (see common.mjs): what the SDK parsed, the last
// x-request-id the gateway sent and how many requests the call made.

import { embedMany, generateText, jsonSchema, streamText, tool } from 'ai';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { emit, run, spyFetch } from './common.mjs';

// The SDK's warnings go to stdout, where the driver's one line goes.
globalThis.AI_SDK_LOG_WARNINGS = false;

const seen = [];

function model(a, kind) {
	const fetch = spyFetch(seen);
	switch (a.provider) {
	case 'openai':
	case 'openai-chat': {
		const p = createOpenAI({ baseURL: a.base, apiKey: a.key, fetch });
		if (kind === 'embed')
			return p.embedding(a.model);
		return a.provider === 'openai' ? p(a.model) : p.chat(a.model);
	}
	case 'compatible': {
		const p = createOpenAICompatible({
			name: 'tollgate', baseURL: a.base, apiKey: a.key, fetch,
			includeUsage: a.include_usage ?? false,
		});
		return kind === 'embed' ? p.textEmbeddingModel(a.model)
					: p.chatModel(a.model);
	}
	case 'anthropic':
		return createAnthropic({ baseURL: a.base, apiKey: a.key,
					 fetch })(a.model);
	}
	throw new Error(`unknown provider ${a.provider}`);
}

const TOOLS = {
	get_weather: tool({
		description: 'Current weather in a city',
		inputSchema: jsonSchema({
			type: 'object',
			properties: { location: { type: 'string' },
				      unit: { type: 'string' } },
			required: ['location'],
		}),
	}),
};

function outcome(extra) {
	return { ok: true, request_id: seen.at(-1) ?? null,
		 requests: seen.length, ...extra };
}

async function text(a) {
	const params = { model: model(a, 'text'), maxRetries: 0,
			 maxOutputTokens: 1024, prompt: 'Hello, who are you?' };
	if (a.tools)
		params.tools = TOOLS;
	if (!a.stream) {
		const r = await generateText(params);
		return outcome({
			text: r.text,
			finish_reason: r.finishReason,
			tool_calls: r.toolCalls.map((c) => ({
				id: c.toolCallId, name: c.toolName,
				input: c.input })),
			usage: r.usage,
		});
	}
	let error = null;
	const r = streamText({ ...params, onError: ({ error: e }) => {
		error = e;
	} });
	let t = '';
	for await (const d of r.textStream)
		t += d;
	if (error)
		throw error;
	const calls = await r.toolCalls;
	return outcome({
		text: t,
		finish_reason: await r.finishReason,
		tool_calls: calls.map((c) => ({ id: c.toolCallId,
						name: c.toolName,
						input: c.input })),
		usage: await r.usage,
	});
}

async function embed(a) {
	const r = await embedMany({ model: model(a, 'embed'), values: a.values,
				    maxRetries: 0 });
	return outcome({ embeddings: r.embeddings, usage: r.usage });
}

run(async (a) => {
	try {
		switch (a.op) {
		case 'text':
			return await text(a);
		case 'embed':
			return await embed(a);
		}
		throw new Error(`unknown op ${a.op}`);
	} catch (e) {
		// The AI SDK's APICallError: its status and the body it read.
		emit({
			ok: false,
			request_id: seen.at(-1) ?? null,
			requests: seen.length,
			error: {
				class: e?.constructor?.name ?? typeof e,
				status: e?.statusCode ?? null,
				body: (() => {
					try {
						return JSON.parse(e?.responseBody);
					} catch {
						return e?.responseBody ?? null;
					}
				})(),
				message: String(e?.message ?? e),
			},
		});
	}
});
