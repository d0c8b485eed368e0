/*
 * translate.h - OpenAI Chat Completions <-> Anthropic Messages translation.
 *
 * Lets a client written for one wire talk to a provider of the other by
 * changing its route only: requests, whole responses, streams and error
 * bodies are rewritten field by field (src/translate.c says how and what
 * is lost). Pure: no I/O, no libevent; inputs are borrowed, outputs are
 * malloc'd and owned by the caller.
 */
#ifndef TOLLGATE_TRANSLATE_H
#define TOLLGATE_TRANSLATE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "buf.h"

/*
 * Requests. model is the upstream model to write into the body. Each
 * returns the new body (malloc'd, NUL-terminated, its length in *len), or
 * NULL with *cause set to a malloc'd message for a 400 answer to the
 * client (caller frees *cause) when the request cannot be translated:
 * not an object, no messages, a field of the wrong type, or a feature the
 * other wire lacks (n > 1, legacy functions, audio input, server tools).
 * cap, when above 0, is the output cap to send instead of the request's
 * own (the one a hard quota reserved).
 */
char *tr_chat_to_messages(const cJSON *chat_req, const char *model, int64_t cap,
			  size_t *len, char **cause)
	__attribute__((warn_unused_result));
/* include_usage: add "stream_options":{"include_usage":true} to a
 * streamed request (not for providers that reject it). */
char *tr_messages_to_chat(const cJSON *msg_req, const char *model,
			  int include_usage, int64_t cap, size_t *len,
			  char **cause) __attribute__((warn_unused_result));

/*
 * Whole (non-streamed) responses. model is the model the client asked
 * for; created is the "created" time (seconds) of the chat answer. NULL
 * with *cause (malloc'd) when the upstream body is not a response.
 */
char *tr_messages_resp_to_chat(const cJSON *anthropic_resp, const char *model,
			       int64_t created, size_t *len, char **cause)
	__attribute__((warn_unused_result));
char *tr_chat_resp_to_messages(const cJSON *chat_resp, const char *model,
			       size_t *len, char **cause)
	__attribute__((warn_unused_result));

/*
 * Error bodies. body is the upstream's error body as received (any bytes,
 * JSON or not, body_len may be 0); status its HTTP status, which the
 * caller keeps. Always returns a body of the client's shape (NULL only
 * when out of memory):
 *   tr_error_to_chat:     {"error":{"message","type","param":null,"code"}}
 *   tr_error_to_messages: {"type":"error","error":{"type","message"}}
 */
char *tr_error_to_chat(int status, const char *body, size_t body_len,
		       size_t *len);
char *tr_error_to_messages(int status, const char *body, size_t body_len,
			   size_t *len);
/* The Anthropic error type for an HTTP status (400 invalid_request_error,
 * 401 authentication_error, ... 529 overloaded_error), for errors the
 * gateway itself answers on /v1/messages. Never NULL. */
const char *tr_anthropic_error_type(int status);

/*
 * Streams: one translator per response, fed the upstream's SSE events one
 * at a time (sse.h gives the event name and data), appending the client's
 * SSE bytes to out.
 */
enum tr_stream_dir {
	TR_ANTHROPIC_TO_CHAT, /* upstream Anthropic events -> chat chunks */
	TR_CHAT_TO_ANTHROPIC, /* upstream chat chunks -> Anthropic events */
};

struct tr_stream;

/* model: the client's model, written into every chunk or message_start.
 * include_usage (TR_ANTHROPIC_TO_CHAT): the client asked for
 * stream_options.include_usage, so a usage chunk precedes [DONE].
 * created: the chunks' "created". NULL when out of memory. */
struct tr_stream *tr_stream_new(enum tr_stream_dir dir, const char *model,
				int include_usage, int64_t created);
void tr_stream_free(struct tr_stream *tr);

/* TR_CHAT_TO_ANTHROPIC: the prompt's estimated count, which message_start
 * carries as input_tokens when the provider has not counted it yet (OpenAI
 * counts at the end; message_delta then carries the exact count). */
void tr_stream_set_prompt(struct tr_stream *tr, int64_t tokens);

/* Translates one upstream event (event: its "event:" name or NULL; data:
 * its data, data_len bytes; NULL data, as for a comment, is ignored) and
 * appends the result, possibly nothing, to out. Returns 0, or -1 when
 * data is not a JSON event of the expected shape: then nothing was
 * appended and the translator's state is unchanged, so the caller may go
 * on with the next event. -1 also when memory ran out (nothing appended;
 * the stream should end). Events after the terminal one are ignored. */
int tr_stream_event(struct tr_stream *tr, const char *event, const char *data,
		    size_t data_len, struct buf *out)
	__attribute__((warn_unused_result));

/* Whether the terminal client event was written: [DONE] (after a usage
 * chunk when asked for), message_stop, or an upstream error event passed
 * on. A stream cut before that is left open: the translator never invents
 * a clean end, so the client sees the cut. */
int tr_stream_done(const struct tr_stream *tr);

#endif
