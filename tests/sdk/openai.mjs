// openai.mjs - drives tollgated with the official openai package, as an
// application would: OpenAI's client with baseURL = gateway/v1 (or
// gateway/openai/v1, Azure's v1 surface), or the AzureOpenAI client with
// endpoint = gateway.
//
// Argument (JSON): {"op": OP, "key": K, [pkg], ...}
//   chat        base, model, [stream], [include_usage true|false], [tools]
//   azure_chat  endpoint, api_version, deployment, [stream], [include_usage]
//   embeddings  base, model, input (strings), [default_format: the SDK's
//               own encoding_format (base64, decoded by the SDK), else
//               "float"]
//   models      base
//   responses   base, model, [stream]
// pkg: the package to drive, "openai" (v4, the default) or "openai6" (v6,
// installed under that alias). base with default_query: query parameters
// on every request (Azure's api-version). endpoint and api_version on
// chat or responses: the AzureOpenAI client.
// Prints one JSON line (see common.mjs).

import { header, readArgs, run } from './common.mjs';

const { default: OpenAI, AzureOpenAI } =
	await import(readArgs().pkg ?? 'openai');

const MESSAGES = [{ role: 'user', content: 'Hello, who are you?' }];

function client(a) {
	const opts = { apiKey: a.key, maxRetries: 0, timeout: 30000 };
	if (a.endpoint)
		return new AzureOpenAI({
			...opts,
			endpoint: a.endpoint,
			apiVersion: a.api_version,
			deployment: a.deployment,
		});
	if (a.default_query)
		opts.defaultQuery = a.default_query;
	return new OpenAI({ ...opts, baseURL: a.base });
}

// Merges streamed tool-call deltas by index, as an application does.
function addToolDeltas(calls, deltas) {
	for (const d of deltas ?? []) {
		const c = calls[d.index] ??= { id: null, type: null, name: '',
					       arguments: '' };
		if (d.id)
			c.id = d.id;
		if (d.type)
			c.type = d.type;
		if (d.function?.name)
			c.name += d.function.name;
		if (d.function?.arguments)
			c.arguments += d.function.arguments;
	}
}

async function chat(a) {
	const c = client(a);
	const params = { model: a.model ?? a.deployment, messages: MESSAGES };
	if (a.tools)
		params.tools = a.tools;
	if (!a.stream) {
		const { data, response } = await c.chat.completions
			.create(params).withResponse();
		const ch = data.choices?.[0];
		return {
			ok: true,
			request_id: header(response.headers, 'x-request-id'),
			object: data.object,
			content: ch?.message?.content ?? null,
			finish_reason: ch?.finish_reason ?? null,
			tool_calls: (ch?.message?.tool_calls ?? []).map((t) => ({
				id: t.id, type: t.type, name: t.function?.name,
				arguments: t.function?.arguments,
			})),
			usage: data.usage ?? null,
		};
	}
	params.stream = true;
	if (a.include_usage !== undefined)
		params.stream_options = { include_usage: a.include_usage };
	const { data: stream, response } = await c.chat.completions
		.create(params).withResponse();
	let content = '', finish = null, chunks = 0, usageChunks = 0;
	let last = null;
	const calls = [];
	for await (const chunk of stream) {
		chunks++;
		last = chunk;
		if (chunk.usage != null)
			usageChunks++;
		for (const ch of chunk.choices ?? []) {
			if (typeof ch.delta?.content === 'string')
				content += ch.delta.content;
			addToolDeltas(calls, ch.delta?.tool_calls);
			if (ch.finish_reason)
				finish = ch.finish_reason;
		}
	}
	return {
		ok: true,
		request_id: header(response.headers, 'x-request-id'),
		content,
		finish_reason: finish,
		tool_calls: calls.filter(Boolean),
		chunks,
		usage_chunks: usageChunks,
		last_chunk_usage: last?.usage ?? null,
		last_chunk_choices: last?.choices?.length ?? null,
	};
}

async function embeddings(a) {
	// encoding_format "float" unless the SDK's default is asked for:
	// then the SDK asks for base64 and decodes the answer itself.
	const params = { model: a.model, input: a.input };
	if (!a.default_format)
		params.encoding_format = 'float';
	const { data, response } = await client(a).embeddings
		.create(params).withResponse();
	return {
		ok: true,
		request_id: header(response.headers, 'x-request-id'),
		object: data.object,
		embeddings: data.data.map((d) => Array.from(d.embedding)),
		usage: data.usage ?? null,
	};
}

async function models(a) {
	const ids = [];
	for await (const m of client(a).models.list())
		ids.push(m.id);
	return { ok: true, ids };
}

async function responses(a) {
	const c = client(a);
	const params = { model: a.model, input: 'Say hello.' };
	if (!a.stream) {
		const { data, response } = await c.responses.create(params)
			.withResponse();
		return {
			ok: true,
			request_id: header(response.headers, 'x-request-id'),
			status: data.status,
			output_text: data.output_text,
			usage: data.usage ?? null,
		};
	}
	const { data: stream, response } = await c.responses
		.create({ ...params, stream: true }).withResponse();
	let deltas = '', completed = null;
	const types = [];
	for await (const ev of stream) {
		types.push(ev.type);
		if (ev.type === 'response.output_text.delta')
			deltas += ev.delta;
		if (ev.type === 'response.completed')
			completed = ev.response;
	}
	const text = (completed?.output ?? [])
		.filter((o) => o.type === 'message')
		.flatMap((o) => o.content ?? [])
		.filter((p) => p.type === 'output_text')
		.map((p) => p.text).join('');
	return {
		ok: true,
		request_id: header(response.headers, 'x-request-id'),
		deltas,
		completed_text: completed ? text : null,
		last_event: types.at(-1) ?? null,
		usage: completed?.usage ?? null,
	};
}

run(async (a) => {
	switch (a.op) {
	case 'chat':
	case 'azure_chat':
		return chat(a);
	case 'embeddings':
		return embeddings(a);
	case 'models':
		return models(a);
	case 'responses':
		return responses(a);
	default:
		throw new Error(`unknown op ${a.op}`);
	}
});
