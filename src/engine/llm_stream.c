/*
 * llm_stream.c - an llm call that streams (engine_int.h, "llm_stream.c").
 *
 * The OpenAI-compatible request asks for `stream: true` with
 * `stream_options.include_usage`, the Anthropic one for `stream: true`
 * (its usage comes in message_start and message_delta); the 2xx answer is
 * an event stream that
 * the curl write callback hands to the parser piece by piece, each piece
 * of text going to engine_delta (coalesced there, never stored). An error
 * status answers JSON as usual and is kept for the kind's finish.
 */
#include <stdlib.h>

#include "core/mem.h"
#include "engine/engine_int.h"
#include "engine/sse_parse.h"

typedef struct {
    sse_chat parse;
    bool took;   /* a 2xx body came */
    run *r;
    int node;
} stream_state;

static void on_delta(void *ctx, const char *text, size_t len)
{
    stream_state *st = ctx;
    engine_delta(st->r, st->node, text, len, false);
}

static bool on_body(run *r, int node, long status, const char *p, size_t len, void *state)
{
    stream_state *st = state;
    if (status < 200 || status >= 300)
        return false;
    st->took = true;
    st->r = r;
    st->node = node;
    sse_chat_feed(&st->parse, p, len, on_delta, st);
    return true;
}

static void state_free(void *state)
{
    stream_state *st = state;
    if (st)
        sse_chat_free(&st->parse);
    free(st);
}

void llm_stream_start(call *c, bool anthropic)
{
    stream_state *st = xcalloc(1, sizeof(*st));
    sse_chat_init(&st->parse, ENGINE_HTTP_MAX_RESPONSE);
    st->parse.anthropic = anthropic;
    call_stream(c, on_body, st, state_free);
}

json_t *llm_stream_answer(call *c, bool *streamed)
{
    stream_state *st = call_stream_state(c);
    *streamed = st && st->took;
    if (!*streamed)
        return NULL;
    json_t *v = sse_chat_result(&st->parse, on_delta, st);
    engine_delta(st->r, st->node, "", 0, true); /* what is left goes before node.finished */
    return v;
}
