/*
 * anthropic.c - requests to and answers of the Anthropic Messages API
 * (anthropic.h).
 */
#include "engine/providers/anthropic.h"

#include <stdbool.h>
#include <string.h>

#include "core/buf.h"

json_t *anthropic_request(const char *model, json_t *msgs, const json_t *temperature,
                          long long max_tokens)
{
    json_t *turns = json_array();
    buf system;
    buf_init(&system, 0);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *content = json_object_get(m, "content");
        if (role && !strcmp(role, "system")) {
            if (system.len)
                buf_append(&system, "\n\n", 2);
            buf_append(&system, json_string_value(content), json_string_length(content));
        } else {
            json_array_append_new(turns, json_pack("{s:s, s:O}", "role", role ? role : "user",
                                                   "content", content));
        }
    }
    json_t *req = json_pack("{s:s, s:I, s:o}", "model", model, "max_tokens",
                            (json_int_t)max_tokens, "messages", turns);
    if (req && system.len)
        json_object_set_new(req, "system", json_stringn(system.data, system.len));
    if (req && temperature)
        json_object_set(req, "temperature", (json_t *)temperature);
    buf_free(&system);
    json_decref(msgs);
    return req;
}

int anthropic_answer(const json_t *v, llm_answer *out)
{
    const json_t *blocks = json_object_get(v, "content");
    memset(out, 0, sizeof(*out));
    if (!json_is_array(blocks))
        return -1;
    buf text;
    buf_init(&text, 0);
    bool any = false;
    size_t i;
    const json_t *b;
    json_array_foreach(blocks, i, b) {
        const json_t *t = json_object_get(b, "text");
        const char *type = json_string_value(json_object_get(b, "type"));
        if (json_is_string(t) && type && !strcmp(type, "text")) {
            buf_append(&text, json_string_value(t), json_string_length(t));
            any = true;
        }
    }
    out->content = any ? json_stringn(text.data ? text.data : "", text.len) : json_null();
    buf_free(&text);
    const json_t *stop = json_object_get(v, "stop_reason");
    out->finish = json_is_string(stop) ? json_incref((json_t *)stop) : json_null();
    out->model = json_string_value(json_object_get(v, "model"));
    const json_t *usage = json_object_get(v, "usage");
    out->prompt_tokens = json_integer_value(json_object_get(usage, "input_tokens"));
    out->completion_tokens = json_integer_value(json_object_get(usage, "output_tokens"));
    return 0;
}

void llm_answer_clear(llm_answer *out)
{
    json_decref(out->content);
    json_decref(out->finish);
    out->content = out->finish = NULL;
}
