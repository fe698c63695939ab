/*
 * sse_parse.c - a streamed chat completion, parsed as it arrives
 * (sse_parse.h).
 */
#include "engine/sse_parse.h"
#include "core/str.h"

#include <stdlib.h>
#include <string.h>

void sse_chat_init(sse_chat *p, size_t content_max)
{
    memset(p, 0, sizeof(*p));
    buf_init(&p->line, SSE_PARSE_LINE_MAX);
    buf_init(&p->data, SSE_PARSE_LINE_MAX);
    buf_init(&p->content, content_max ? content_max : 1);
}

void sse_chat_free(sse_chat *p)
{
    json_decref(p->tools);
    p->tools = NULL;
    buf_free(&p->line);
    buf_free(&p->data);
    buf_free(&p->content);
}

/* Text the answer grows by: kept, and sent to delta. */
static int grow(sse_chat *p, const json_t *text, sse_chat_delta delta, void *ctx)
{
    size_t n = json_string_length(text);
    p->has_content = true;
    int rc = buf_append(&p->content, json_string_value(text), n);
    if (rc == 0 && n && delta)
        delta(ctx, json_string_value(text), n);
    return rc;
}

/* Tool call at position index (OpenAI's index; for Anthropic a new one
 * per tool_use block): found or made; NULL past the bound. */
static json_t *tool_at(sse_chat *p, size_t index)
{
    if (!p->tools)
        p->tools = json_array();
    if (index >= SSE_PARSE_TOOLS_MAX)
        return NULL;
    while (json_array_size(p->tools) <= index)
        json_array_append_new(p->tools, json_pack("{s:s, s:s, s:s}", "id", "", "name", "",
                                                  "arguments", ""));
    return json_array_get(p->tools, index);
}

/* Sets member key of tool t to s, or appends s to it (a fragment): 0, or
 * -1 past the content bound. */
static int tool_text(sse_chat *p, json_t *t, const char *key, const json_t *s, bool append)
{
    if (!json_is_string(s))
        return 0;
    size_t n = json_string_length(s);
    if (p->tool_bytes + n > p->content.max)
        return -1;
    p->tool_bytes += n;
    const json_t *had = json_object_get(t, key);
    if (!append || !json_string_length(had))
        return json_object_set(t, key, (json_t *)s);
    size_t m = json_string_length(had);
    char *joined = malloc(m + n + 1);
    if (!joined)
        return -1;
    memcpy(joined, json_string_value(had), m);
    memcpy(joined + m, json_string_value(s), n);
    int rc = json_object_set_new(t, key, json_stringn(joined, m + n));
    free(joined);
    return rc;
}

static void keep_model(sse_chat *p, const json_t *v)
{
    const char *model = json_string_value(json_object_get(v, "model"));
    if (model && strlen(model) < sizeof(p->model))
        str_copy(p->model, sizeof(p->model), model);
}

/* One of Anthropic's events (sse_parse.h). */
static int anthropic_event(sse_chat *p, const json_t *v, sse_chat_delta delta, void *ctx)
{
    const char *type = json_string_value(json_object_get(v, "type"));
    if (!type)
        return -1;
    if (!strcmp(type, "error"))
        return -1;
    if (!strcmp(type, "message_stop")) {
        p->done = true;
        return 0;
    }
    const json_t *u = NULL;
    if (!strcmp(type, "message_start")) {
        const json_t *m = json_object_get(v, "message");
        keep_model(p, m);
        u = json_object_get(m, "usage");
        const json_t *in = json_object_get(u, "input_tokens");
        if (json_is_integer(in))
            p->prompt_tokens = (long long)json_integer_value(in);
    } else if (!strcmp(type, "content_block_start")) {
        const json_t *b = json_object_get(v, "content_block");
        const char *bt = json_string_value(json_object_get(b, "type"));
        json_t *t = bt && !strcmp(bt, "tool_use")
                        ? tool_at(p, p->tools ? json_array_size(p->tools) : 0) : NULL;
        if (bt && !strcmp(bt, "tool_use") && !t)
            return -1;
        if (t) {
            json_object_set(t, "block", json_object_get(v, "index"));
            return tool_text(p, t, "id", json_object_get(b, "id"), false) ||
                   tool_text(p, t, "name", json_object_get(b, "name"), false) ? -1 : 0;
        }
    } else if (!strcmp(type, "content_block_delta")) {
        const json_t *d = json_object_get(v, "delta");
        const char *dt = json_string_value(json_object_get(d, "type"));
        const json_t *text = json_object_get(d, "text");
        if (dt && !strcmp(dt, "text_delta") && json_is_string(text))
            return grow(p, text, delta, ctx);
        if (dt && !strcmp(dt, "input_json_delta")) {
            size_t k;
            json_t *t;
            json_array_foreach(p->tools, k, t) {
                if (json_equal(json_object_get(t, "block"), json_object_get(v, "index")))
                    return tool_text(p, t, "arguments", json_object_get(d, "partial_json"), true);
            }
        }
    } else if (!strcmp(type, "message_delta")) {
        const char *stop = json_string_value(json_object_get(json_object_get(v, "delta"),
                                                             "stop_reason"));
        if (stop && strlen(stop) < sizeof(p->finish))
            str_copy(p->finish, sizeof(p->finish), stop);
        u = json_object_get(v, "usage");
    }
    const json_t *out = json_object_get(u, "output_tokens");
    if (json_is_object(u))
        p->has_usage = true;
    if (json_is_integer(out)) /* a running total: the last one counts */
        p->completion_tokens = (long long)json_integer_value(out);
    return 0;
}

/* One chunk's JSON: its content goes to the answer (and to delta), the
 * rest is kept. */
static int chunk(sse_chat *p, const char *text, size_t len, sse_chat_delta delta, void *ctx)
{
    if (!p->anthropic && len == 6 && !memcmp(text, "[DONE]", 6)) {
        p->done = true;
        return 0;
    }
    json_t *v = json_loadb(text, len, 0, NULL);
    if (!json_is_object(v)) {
        json_decref(v);
        return -1;
    }
    if (p->anthropic) {
        int arc = anthropic_event(p, v, delta, ctx);
        json_decref(v);
        return arc;
    }
    keep_model(p, v);
    const json_t *choice = json_array_get(json_object_get(v, "choices"), 0);
    const json_t *c = json_object_get(json_object_get(choice, "delta"), "content");
    int rc = json_is_string(c) ? grow(p, c, delta, ctx) : 0;
    size_t k;
    const json_t *piece;
    json_array_foreach(json_object_get(json_object_get(choice, "delta"), "tool_calls"), k, piece) {
        const json_t *ix = json_object_get(piece, "index");
        const json_t *fn = json_object_get(piece, "function");
        json_t *t = rc == 0 ? tool_at(p, json_is_integer(ix) && json_integer_value(ix) >= 0
                                             ? (size_t)json_integer_value(ix) : k)
                            : NULL;
        if (!t || tool_text(p, t, "id", json_object_get(piece, "id"), false) ||
            tool_text(p, t, "name", json_object_get(fn, "name"), true) ||
            tool_text(p, t, "arguments", json_object_get(fn, "arguments"), true))
            rc = -1;
    }
    const char *fin = json_string_value(json_object_get(choice, "finish_reason"));
    if (fin && strlen(fin) < sizeof(p->finish))
        str_copy(p->finish, sizeof(p->finish), fin);
    const json_t *u = json_object_get(v, "usage");
    if (json_is_object(u)) {
        p->has_usage = true;
        p->prompt_tokens = (long long)json_integer_value(json_object_get(u, "prompt_tokens"));
        p->completion_tokens = (long long)json_integer_value(json_object_get(u, "completion_tokens"));
    }
    json_decref(v);
    return rc;
}

/* The line read (without its end): a field of the event, or its end. */
static int line(sse_chat *p, sse_chat_delta delta, void *ctx)
{
    const char *s = p->line.data ? p->line.data : "";
    size_t n = p->line.len;
    int rc = 0;
    if (n == 0) { /* the event ends */
        if (p->has_data)
            rc = chunk(p, p->data.data, p->data.len, delta, ctx);
        buf_reset(&p->data);
        p->has_data = false;
    } else if (n >= 5 && !memcmp(s, "data:", 5)) {
        size_t skip = n > 5 && s[5] == ' ' ? 6 : 5;
        if (p->has_data)
            rc = buf_append(&p->data, "\n", 1);
        if (rc == 0)
            rc = buf_append(&p->data, s + skip, n - skip);
        p->has_data = true;
    }
    buf_reset(&p->line);
    return rc;
}

int sse_chat_feed(sse_chat *p, const char *bytes, size_t len, sse_chat_delta delta, void *ctx)
{
    for (size_t i = 0; i < len && !p->failed;) {
        char ch = bytes[i];
        if (ch == '\n' && p->cr) { /* the second half of "\r\n" */
            p->cr = false;
            i++;
            continue;
        }
        p->cr = ch == '\r';
        if (ch == '\r' || ch == '\n') {
            p->failed = line(p, delta, ctx) != 0;
            i++;
            continue;
        }
        size_t end = i;
        while (end < len && bytes[end] != '\r' && bytes[end] != '\n')
            end++;
        p->failed = buf_append(&p->line, bytes + i, end - i) != 0;
        i = end;
    }
    return p->failed ? -1 : 0;
}

/* The Messages API's answer (sse_parse.h). */
static json_t *anthropic_result(const sse_chat *p)
{
    json_t *blocks = json_array();
    if (p->has_content)
        json_array_append_new(blocks, json_pack("{s:s, s:s%}", "type", "text", "text",
                                                p->content.data ? p->content.data : "",
                                                p->content.len));
    size_t k;
    const json_t *t;
    json_array_foreach(p->tools, k, t) {
        const char *args = json_string_value(json_object_get(t, "arguments"));
        json_t *input = args && *args ? json_loads(args, 0, NULL) : json_object();
        json_array_append_new(blocks, json_pack("{s:s, s:O, s:O, s:o}", "type", "tool_use", "id",
                                                json_object_get(t, "id"), "name",
                                                json_object_get(t, "name"), "input",
                                                input ? input : json_object()));
    }
    json_t *v = json_pack("{s:s, s:o, s:o}", "model", p->model, "content", blocks, "stop_reason",
                          p->finish[0] ? json_string(p->finish) : json_null());
    if (v && p->has_usage)
        json_object_set_new(v, "usage",
                            json_pack("{s:I, s:I}", "input_tokens", (json_int_t)p->prompt_tokens,
                                      "output_tokens", (json_int_t)p->completion_tokens));
    return v;
}

json_t *sse_chat_result(sse_chat *p, sse_chat_delta delta, void *ctx)
{
    if (!p->failed && p->line.len)
        p->failed = line(p, delta, ctx) != 0;
    if (!p->failed && p->has_data) { /* a last event without its blank line */
        buf_reset(&p->line);
        p->failed = line(p, delta, ctx) != 0;
    }
    if (p->failed)
        return NULL;
    if (p->anthropic)
        return anthropic_result(p);
    json_t *content = p->has_content ? json_stringn(p->content.data, p->content.len) : json_null();
    json_t *v = json_pack("{s:s, s:[{s:i, s:{s:s, s:o}, s:o}]}", "model", p->model, "choices",
                          "index", 0, "message", "role", "assistant", "content", content,
                          "finish_reason", p->finish[0] ? json_string(p->finish) : json_null());
    json_t *msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
    if (msg && json_array_size(p->tools)) {
        json_t *calls = json_array();
        size_t k;
        const json_t *t;
        json_array_foreach(p->tools, k, t) {
            json_array_append_new(calls, json_pack("{s:O, s:s, s:{s:O, s:O}}", "id",
                                                   json_object_get(t, "id"), "type", "function",
                                                   "function", "name", json_object_get(t, "name"),
                                                   "arguments", json_object_get(t, "arguments")));
        }
        json_object_set_new(msg, "tool_calls", calls);
    }
    if (v && p->has_usage)
        json_object_set_new(v, "usage",
                            json_pack("{s:I, s:I, s:I}", "prompt_tokens",
                                      (json_int_t)p->prompt_tokens, "completion_tokens",
                                      (json_int_t)p->completion_tokens, "total_tokens",
                                      (json_int_t)(p->prompt_tokens + p->completion_tokens)));
    return v;
}
