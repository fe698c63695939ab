/*
 * llm.c - the llm kind: one OpenAI-compatible chat completion, posted to
 * {LLM_BASE_URL}/chat/completions as a transfer on the loop's curl multi
 * handle (calls.c). It only ever calls LLM_BASE_URL, and LLM_API_KEY is
 * redacted from whatever comes back (call_secrets.h). Its output is
 * {content, model, finishReason, usage}; usage is priced (pricing.h) by
 * the model asked for, else by the model that answered. Every attempt
 * first reserves its worst case against the budgets that apply
 * (engine_budget_reserve), which also decides whether the request
 * carries max_tokens: when the node sets maxTokens or a budget applies.
 *
 * Config: model (required) a string of 1..200 characters. messages
 * (required) an array of 1..MESSAGES_MAX objects {role: system | user |
 * assistant, content: string}. temperature optional number 0..2 (integer
 * or real). maxTokens optional, 1..1000000. stream optional boolean: the
 * provider streams its answer, sent on as llm.delta events (llm_stream.c);
 * the output is the same. Templates: model and every message's content.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "engine/call_secrets.h"
#include "engine/definition_int.h"
#include "engine/engine_int.h"

#define MESSAGES_MAX 100
#define MODEL_MAX 200 /* bytes of a model name the node sends */
#define PROVIDER_TEXT_MAX 300 /* bytes of a provider's error message kept */

static const char *const roles[] = {"system", "user", "assistant", NULL};

/* ---- config ---- */

static void check_message(definition_ctx *c, const json_t *m)
{
    if (!json_is_object(m)) {
        definition_bad(c, NULL, "must be an object");
        return;
    }
    definition_enum(c, m, "role", true, roles);
    definition_string(c, m, "content", true, 0, SIZE_MAX);
}

static void check_messages(definition_ctx *c, const json_t *conf)
{
    const json_t *list = definition_need(c, conf, "messages");
    if (!list)
        return;
    if (!json_is_array(list)) {
        definition_bad(c, "messages", "must be an array");
        return;
    }
    if (json_array_size(list) == 0 || json_array_size(list) > MESSAGES_MAX) {
        definition_bad(c, "messages", "must hold 1 to 100 messages");
        return;
    }
    size_t mark = definition_key(c, "messages");
    for (size_t i = 0; i < json_array_size(list); i++) {
        size_t item = definition_index(c, i);
        check_message(c, json_array_get(list, i));
        definition_pop(c, item);
    }
    definition_pop(c, mark);
}

void kind_llm_check(definition_ctx *c, const json_t *conf)
{
    const json_t *t = json_object_get(conf, "temperature");
    definition_string(c, conf, "model", true, 1, 200);
    check_messages(c, conf);
    if (t && (!json_is_number(t) || json_number_value(t) < 0 || json_number_value(t) > 2))
        definition_bad(c, "temperature", "must be a number from 0 to 2");
    definition_int(c, conf, "maxTokens", false, 1, 1000000);
    const json_t *st = json_object_get(conf, "stream");
    if (st && !json_is_boolean(st))
        definition_bad(c, "stream", "must be true or false");
}

void kind_llm_templates(definition_ctx *c, const json_t *conf)
{
    const json_t *list = json_object_get(conf, "messages");
    definition_walk_string(c, conf, "model");
    if (!json_is_array(list))
        return;
    size_t mark = definition_key(c, "messages");
    for (size_t i = 0; i < json_array_size(list); i++) {
        size_t item = definition_index(c, i);
        const json_t *m = json_array_get(list, i);
        if (json_is_object(m))
            definition_walk_string(c, m, "content");
        definition_pop(c, item);
    }
    definition_pop(c, mark);
}

/* ---- the request ---- */

/* Message contents that a whole placeholder made non-strings are sent as
 * their JSON text: providers take strings. */
static json_t *llm_messages(const json_t *msgs)
{
    json_t *out = json_array();
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *copy = json_deep_copy(m);
        const json_t *content = json_object_get(copy, "content");
        if (content && !json_is_string(content)) {
            char *s = json_dumps(content, JSON_COMPACT | JSON_ENCODE_ANY);
            json_object_set_new(copy, "content", json_string(s ? s : ""));
            free(s);
        }
        json_array_append_new(out, copy);
    }
    return out;
}

/* The request body of the rendered config (malloc'd), once the budgets
 * hold the call's worst case; NULL with o failed. */
static char *request_body(loop *lp, run *r, int i, const char *model, const json_t *conf,
                          node_outcome *o)
{
    json_t *msgs = llm_messages(json_object_get(conf, "messages"));
    char *text = json_dumps(msgs, JSON_COMPACT);
    size_t bytes = text ? strlen(text) : 0;
    free(text);
    const json_t *mt = json_object_get(conf, "maxTokens");
    long long max_tokens = json_is_integer(mt) ? (long long)json_integer_value(mt) : 0;
    if (engine_budget_reserve(lp, r, i, model, bytes, &max_tokens, o) != 0) {
        json_decref(msgs);
        return NULL;
    }
    json_t *req = json_pack("{s:s, s:o}", "model", model, "messages", msgs);
    const json_t *t = json_object_get(conf, "temperature");
    if (req && json_is_number(t))
        json_object_set(req, "temperature", (json_t *)t);
    if (req && max_tokens > 0)
        json_object_set_new(req, "max_tokens", json_integer(max_tokens));
    if (req && json_is_true(json_object_get(conf, "stream"))) {
        json_object_set_new(req, "stream", json_true());
        json_object_set_new(req, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        outcome_fail(o, "INVALID_CONFIG", false, "the request could not be built");
    return body;
}

/* The request of the rendered config; 0, or -1 with o failed. The model
 * asked for stays with the call for pricing. */
static int build(call *c, loop *lp, run *r, int i, const json_t *conf, node_outcome *o)
{
    const config *cfg = lp->e->cfg;
    if (!cfg->llm_base_url) {
        outcome_fail(o, "LLM_NOT_CONFIGURED", false, "LLM_BASE_URL is not set on the server");
        return -1;
    }
    const char *model = json_string_value(json_object_get(conf, "model"));
    if (!model || !*model || strlen(model) > MODEL_MAX) {
        outcome_fail(o, "INVALID_CONFIG", false, "config.model must be a string of 1..200 bytes");
        return -1;
    }
    call_set_data(c, xstrdup(model));
    char *body = request_body(lp, r, i, model, conf, o);
    if (!body)
        return -1;
    size_t blen = strlen(cfg->llm_base_url);
    while (blen > 0 && cfg->llm_base_url[blen - 1] == '/')
        blen--;
    char url[4096];
    if (snprintf(url, sizeof(url), "%.*s/chat/completions", (int)blen, cfg->llm_base_url) >=
        (int)sizeof(url)) {
        free(body);
        outcome_fail(o, "LLM_NOT_CONFIGURED", false, "LLM_BASE_URL is too long");
        return -1;
    }
    bool stream = json_is_true(json_object_get(conf, "stream"));
    call_header(c, "Content-Type", "application/json");
    call_header(c, "Accept", stream ? "text/event-stream" : "application/json");
    if (stream)
        llm_stream_start(c);
    if (cfg->llm_api_key && call_secret(c, cfg->llm_api_key) != 0) {
        free(body);
        outcome_fail(o, "INVALID_CONFIG", false, "the request carries too many secrets");
        return -1;
    }
    if (cfg->llm_api_key) {
        char auth[2048];
        snprintf(auth, sizeof(auth), "Bearer %s", cfg->llm_api_key);
        call_header(c, "Authorization", auth);
    }
    call_url(c, url);
    call_body(c, body);
    return 0;
}

/* The node's timeoutMs, else the default. */
static long long timeout_of(const run *r, int i)
{
    long long t = r->d->nodes[i].timeout_ms;
    return t > 0 ? t : ENGINE_LLM_DEFAULT_TIMEOUT_MS;
}

node_step kind_llm_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o)
{
    call *c = call_new(lp, r, i, timeout_of(r, i), "LLM_ERROR", o);
    if (c && build(c, lp, r, i, conf, o) != 0) {
        call_free(c);
        c = NULL;
    }
    json_decref(conf);
    if (!c || call_start(c, o) != 0)
        return NODE_DONE;
    engine_count(&lp->e->stats.llm_calls, 1);
    return NODE_STARTED;
}

/* ---- the answer ---- */

void kind_llm_finish(loop *lp, run *r, int i, call *c, node_outcome *o)
{
    (void)r, (void)i;
    long status = call_status(c);
    size_t len = 0;
    const char *text = call_response(c, &len);
    bool streamed = false;
    json_t *v = llm_stream_answer(c, &streamed);
    if (!streamed)
        v = json_loadb(text, len, 0, NULL);
    if (status >= 400) {
        /* the provider's text (already without the key: calls.c), cut at
         * PROVIDER_TEXT_MAX bytes on a character boundary */
        const json_t *jm = json_object_get(json_object_get(v, "error"), "message");
        const char *m = json_string_value(jm);
        int mlen = m ? (int)str_utf8_cut(m, json_string_length(jm), PROVIDER_TEXT_MAX) : 0;
        outcome_fail(o, "LLM_ERROR", status == 429 || status >= 500,
                     "the LLM provider answered %ld%s%.*s", status, m ? ": " : "", mlen, m ? m : "");
        json_decref(v);
        return;
    }
    const json_t *choice = json_array_get(json_object_get(v, "choices"), 0);
    const json_t *msg = json_object_get(choice, "message");
    const json_t *content = json_object_get(msg, "content");
    if (!json_is_object(msg) || !(json_is_string(content) || json_is_null(content))) {
        outcome_fail(o, "LLM_BAD_RESPONSE", false,
                     "the LLM provider's answer has no choices[0].message.content");
        json_decref(v);
        return;
    }
    const json_t *usage = json_object_get(v, "usage");
    json_int_t pt = json_integer_value(json_object_get(usage, "prompt_tokens"));
    json_int_t ct = json_integer_value(json_object_get(usage, "completion_tokens"));
    pt = pt < 0 ? 0 : pt;
    ct = ct < 0 ? 0 : ct;
    const char *asked = call_data(c);
    const char *model = json_string_value(json_object_get(v, "model"));
    if (!model || !*model || strlen(model) >= sizeof(o->model))
        model = asked;
    const pricing *p = lp->e->prices;
    if (!pricing_cost(p, asked, pt, ct, &o->cost_usd))
        pricing_cost(p, model, pt, ct, &o->cost_usd);
    str_copy(o->model, sizeof(o->model), model);
    o->prompt_tokens = pt;
    o->completion_tokens = ct;
    const json_t *finish = json_object_get(choice, "finish_reason");
    o->output = json_pack("{s:O, s:s, s:O, s:{s:I, s:I, s:I}}", "content", content, "model",
                          model, "finishReason", finish ? finish : json_null(), "usage",
                          "promptTokens", pt, "completionTokens", ct, "totalTokens", pt + ct);
    o->ok = o->output != NULL;
    if (!o->ok)
        outcome_fail(o, "LLM_BAD_RESPONSE", false, "the LLM provider's answer cannot be read");
    json_decref(v);
}
