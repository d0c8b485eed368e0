// common.mjs - shared by the SDK drivers of tests/it_sdk.sh.
//
// Each driver takes one JSON argument (what to do and against which
// gateway), makes one SDK call and prints one JSON line of what the SDK
// parsed: {"ok":true,"request_id":...,...} or, when the SDK threw,
// {"ok":false,"error":{"class","status","body","message"},"request_id"}.
// The bash side compares those values with the fixtures and the ledger.
// Retries are off (maxRetries 0) so that one call is one HTTP request and
// one usage record.

// Reads the single JSON argument; exits 2 when it is missing or malformed.
export function readArgs() {
	if (process.argv.length !== 3) {
		console.error(`usage: node ${process.argv[1]} '{"op":...}'`);
		process.exit(2);
	}
	try {
		return JSON.parse(process.argv[2]);
	} catch (e) {
		console.error(`bad JSON argument: ${e.message}`);
		process.exit(2);
	}
}

// A header of a fetch Headers object or of a plain object (openai v4 gives
// the latter on errors).
export function header(headers, name) {
	if (headers == null)
		return null;
	if (typeof headers.get === 'function')
		return headers.get(name);
	for (const k of Object.keys(headers))
		if (k.toLowerCase() === name)
			return headers[k];
	return null;
}

// Prints the outcome line and ends the process.
export function emit(obj) {
	process.stdout.write(JSON.stringify(obj) + '\n');
	process.exit(0);
}

// Describes an exception the SDK threw: its class (AuthenticationError,
// NotFoundError, APIConnectionError ...), the HTTP status, and the error
// body as the SDK parsed it.
export function emitError(e) {
	emit({
		ok: false,
		request_id: header(e?.headers, 'x-request-id'),
		error: {
			class: e?.constructor?.name ?? typeof e,
			status: e?.status ?? null,
			body: e?.error ?? null,
			message: String(e?.message ?? e),
		},
	});
}

// Runs the driver's main function, turning any exception into an error line.
export function run(main) {
	main(readArgs()).then(emit, emitError);
}

// A fetch that notes each response's x-request-id in seen, for clients
// that do not hand their responses' headers to the application (the
// frameworks): the driver reports the last one, and how many requests the
// call made.
export function spyFetch(seen) {
	return async (...args) => {
		const res = await fetch(...args);
		seen.push(res.headers.get('x-request-id'));
		return res;
	};
}
