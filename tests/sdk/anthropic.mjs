// anthropic.mjs - drives tollgated with the official @anthropic-ai/sdk, as
// an application would: baseURL = the gateway's URL without /v1 (the SDK
// adds /v1/messages), apiKey = a tollgate key (sent as x-api-key).
//
// Argument (JSON): {"op": OP, "base": URL, "key": K, ...}
//   messages  model, [stream "helper" (messages.stream()) | "raw"
//             (messages.create({stream: true}))], [tools (Anthropic's
//             tool definitions)]
//   models
//   count_tokens  model, [system]
// pkg: the package to drive, "@anthropic-ai/sdk" (0.x, the default) or
// "anthropic1" (1.x, installed under that alias).
// Prints one JSON line (see common.mjs).

import { header, readArgs, run } from './common.mjs';

const { default: Anthropic } =
	await import(readArgs().pkg ?? '@anthropic-ai/sdk');

function client(a) {
	return new Anthropic({ apiKey: a.key, baseURL: a.base, maxRetries: 0,
			       timeout: 30000 });
}

// What an application reads off a finished message.
function describe(msg) {
	const blocks = msg?.content ?? [];
	return {
		id: msg?.id ?? null,
		role: msg?.role ?? null,
		text: blocks.filter((b) => b.type === 'text')
			.map((b) => b.text).join(''),
		content_types: blocks.map((b) => b.type),
		tool_uses: blocks.filter((b) => b.type === 'tool_use')
			.map((b) => ({ id: b.id, name: b.name, input: b.input })),
		stop_reason: msg?.stop_reason ?? null,
		usage: msg?.usage ?? null,
	};
}

async function messages(a) {
	const c = client(a);
	const params = {
		model: a.model,
		max_tokens: 1024,
		messages: [{ role: 'user', content: 'Hello, who are you?' }],
	};
	if (a.tools)
		params.tools = a.tools;
	if (a.stream === 'helper') {
		// The SDK's own accumulator: it checks the order of the events
		// and builds the final message from them.
		const stream = c.messages.stream(params);
		let texts = '';
		stream.on('text', (t) => { texts += t; });
		const { response } = await stream.withResponse();
		const final = await stream.finalMessage();
		return {
			ok: true,
			request_id: header(response.headers, 'x-request-id'),
			...describe(final),
			text_events: texts,
		};
	}
	if (a.stream === 'raw') {
		const { data: stream, response } = await c.messages
			.create({ ...params, stream: true }).withResponse();
		const types = [];
		let text = '', start = null, delta = null, stop = null;
		for await (const ev of stream) {
			types.push(ev.type);
			if (ev.type === 'message_start')
				start = ev.message?.usage ?? null;
			if (ev.type === 'content_block_delta' &&
			    ev.delta?.type === 'text_delta')
				text += ev.delta.text;
			if (ev.type === 'message_delta') {
				delta = ev.usage ?? null;
				stop = ev.delta?.stop_reason ?? stop;
			}
		}
		return {
			ok: true,
			request_id: header(response.headers, 'x-request-id'),
			first_event: types[0] ?? null,
			last_event: types.at(-1) ?? null,
			text,
			stop_reason: stop,
			start_usage: start,
			delta_usage: delta,
		};
	}
	const { data, response } = await c.messages.create(params)
		.withResponse();
	return {
		ok: true,
		request_id: header(response.headers, 'x-request-id'),
		type: data.type,
		...describe(data),
	};
}

async function countTokens(a) {
	const params = {
		model: a.model,
		messages: [{ role: 'user', content: 'Hello, who are you?' }],
	};
	if (a.system)
		params.system = a.system;
	const { data, response } = await client(a).messages
		.countTokens(params).withResponse();
	return {
		ok: true,
		request_id: header(response.headers, 'x-request-id'),
		input_tokens: data.input_tokens,
	};
}

async function models(a) {
	const ids = [];
	for await (const m of client(a).models.list())
		ids.push(m.id);
	return { ok: true, ids };
}

run(async (a) => {
	switch (a.op) {
	case 'messages':
		return messages(a);
	case 'models':
		return models(a);
	case 'count_tokens':
		return countTokens(a);
	default:
		throw new Error(`unknown op ${a.op}`);
	}
});
