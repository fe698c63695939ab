/*
 * sse_parse.c - a streamed chat completion, parsed as it arrives
 * (sse_parse.h).
 */
#include "engine/sse_parse.h"
#include "core/str.h"

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
    buf_free(&p->line);
    buf_free(&p->data);
    buf_free(&p->content);
}

/* One chunk's JSON: its content goes to the answer (and to delta), the
 * rest is kept. */
static int chunk(sse_chat *p, const char *text, size_t len, sse_chat_delta delta, void *ctx)
{
    if (len == 6 && !memcmp(text, "[DONE]", 6)) {
        p->done = true;
        return 0;
    }
    json_t *v = json_loadb(text, len, 0, NULL);
    if (!json_is_object(v)) {
        json_decref(v);
        return -1;
    }
    const char *model = json_string_value(json_object_get(v, "model"));
    if (model && strlen(model) < sizeof(p->model))
        str_copy(p->model, sizeof(p->model), model);
    const json_t *choice = json_array_get(json_object_get(v, "choices"), 0);
    const json_t *c = json_object_get(json_object_get(choice, "delta"), "content");
    int rc = 0;
    if (json_is_string(c)) {
        size_t n = json_string_length(c);
        p->has_content = true;
        rc = buf_append(&p->content, json_string_value(c), n);
        if (rc == 0 && n && delta)
            delta(ctx, json_string_value(c), n);
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
    json_t *content = p->has_content ? json_stringn(p->content.data, p->content.len) : json_null();
    json_t *v = json_pack("{s:s, s:[{s:i, s:{s:s, s:o}, s:o}]}", "model", p->model, "choices",
                          "index", 0, "message", "role", "assistant", "content", content,
                          "finish_reason", p->finish[0] ? json_string(p->finish) : json_null());
    if (v && p->has_usage)
        json_object_set_new(v, "usage",
                            json_pack("{s:I, s:I, s:I}", "prompt_tokens",
                                      (json_int_t)p->prompt_tokens, "completion_tokens",
                                      (json_int_t)p->completion_tokens, "total_tokens",
                                      (json_int_t)(p->prompt_tokens + p->completion_tokens)));
    return v;
}
