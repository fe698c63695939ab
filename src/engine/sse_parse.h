/*
 * sse_parse.h - a chat completion answered as a stream (`stream: true`),
 * OpenAI-compatible or Anthropic's Messages API: the Server-Sent Events of
 * the response parsed as they arrive, in pieces cut anywhere (a curl write
 * callback's), into the text deltas and, at the end, the same answer a
 * non-streaming call to that API returns.
 *
 * The event stream: lines ending in "\n", "\r\n" or "\r"; "data:" lines
 * (one optional space after the colon) joined by "\n" make an event's
 * data; a blank line ends the event; comments (":...") and other fields
 * are ignored. Each data is a chat.completion.chunk JSON object (its
 * choices[0].delta.content appended to the answer, choices[0].finish_reason
 * and model kept, usage, sent in the last chunk under
 * stream_options.include_usage, kept), or "[DONE]". For Anthropic
 * (anthropic set after sse_chat_init), each data is an event object by its
 * "type": message_start (model, usage.input_tokens), content_block_delta
 * (a text_delta's text appended), message_delta (delta.stop_reason,
 * usage.output_tokens, a running total), message_stop; error fails the
 * parse; the others (ping, content_block_start/stop) are ignored.
 *
 * Bounds: a line (and an event's data) of SSE_PARSE_LINE_MAX bytes, and
 * the answer's content of the max given to sse_chat_init; past either the
 * parse fails (sse_chat_feed returns -1 and takes nothing more).
 *
 * Tool calls (an agent's model call): OpenAI's choices[0].delta.tool_calls
 * pieces ({index, id?, function: {name?, arguments?}}, the arguments in
 * fragments) and Anthropic's tool_use blocks (content_block_start, then
 * input_json_delta fragments) are joined into the answer too, their text
 * counted in the content bound; at most SSE_PARSE_TOOLS_MAX calls.
 */
#ifndef AOP_ENGINE_SSE_PARSE_H
#define AOP_ENGINE_SSE_PARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define SSE_PARSE_LINE_MAX (256 * 1024)
#define SSE_PARSE_TOOLS_MAX 256

typedef struct {
    buf line;     /* the line being read */
    bool cr;      /* the last byte was "\r": a "\n" right after it is the same end */
    buf data;     /* the event's data so far */
    bool has_data;
    buf content;  /* the answer's text */
    bool has_content;
    char model[201];
    char finish[64];
    long long prompt_tokens, completion_tokens;
    bool has_usage;
    bool anthropic; /* Anthropic's events, not OpenAI's chunks */
    json_t *tools;  /* the tool calls so far: [{id, name, arguments, block}] */
    size_t tool_bytes;
    bool done;    /* "[DONE]" (or message_stop) came */
    bool failed;  /* a bound was passed or a chunk was not JSON */
} sse_chat;

/* Text the answer grew by (borrowed for the call). */
typedef void (*sse_chat_delta)(void *ctx, const char *text, size_t len);

/* content_max: the answer's content at most. */
void sse_chat_init(sse_chat *p, size_t content_max);
void sse_chat_free(sse_chat *p);
/* Takes len more bytes of the response; each piece of content they
 * complete goes to delta (may be NULL). 0, or -1 once the parse failed. */
int sse_chat_feed(sse_chat *p, const char *bytes, size_t len, sse_chat_delta delta, void *ctx);
/* The answer as a non-streaming call returns it (new): {"model",
 * "choices": [{"index": 0, "message": {"role": "assistant", "content"},
 * "finish_reason"}], "usage" (when a chunk carried it)}; for Anthropic
 * {"model", "content": [{"type": "text", "text"}] (empty without text),
 * "stop_reason", "usage": {"input_tokens", "output_tokens"} (when an event
 * carried it)}; tool calls as the non-streaming answers carry them
 * (message.tool_calls; tool_use blocks after the text). A last event not ended by a blank line counts. NULL when
 * the parse failed. */
json_t *sse_chat_result(sse_chat *p, sse_chat_delta delta, void *ctx);

#endif
