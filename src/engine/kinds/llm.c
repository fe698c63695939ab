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
 * or real). maxTokens optional, 1..1000000. credentialId optional: an
 * openai credential (an OpenAI-compatible server at its baseUrl) or an
 * anthropic one (the Messages API, providers/anthropic.c) of the
 * workflow's owner, opened for each attempt; its key is a secret of the
 * call. stream optional boolean: the provider (OpenAI-compatible or
 * Anthropic) streams its answer, sent on as llm.delta events
 * (llm_stream.c); the output is the same. Templates: model and every
 * message's content.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"
#include "credentials/use.h"
#include "engine/call_secrets.h"
#include "engine/definition_int.h"
#include "engine/engine_int.h"
#include "engine/providers/anthropic.h"

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
    definition_credential(c, conf);
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

/* What an attempt keeps for its finish: the provider and the model asked
 * for (priced by it). */
typedef struct {
    bool anthropic;
    char model[];
} llm_call;

static llm_call *llm_call_new(bool anthropic, const char *model)
{
    size_t n = strlen(model) + 1;
    llm_call *lc = xmalloc(sizeof(*lc) + n);
    lc->anthropic = anthropic;
    memcpy(lc->model, model, n);
    return lc;
}

/* The request body of the rendered config (malloc'd), once the budgets
 * hold the call's worst case; NULL with o failed. The Messages API always
 * takes max_tokens. */
static char *request_body(loop *lp, run *r, int i, const char *model, const json_t *conf,
                          bool anthropic, void *ctx, node_outcome *o)
{
    (void)ctx;
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
    const json_t *t = json_object_get(conf, "temperature");
    if (anthropic) {
        long long limit = max_tokens > 0 ? max_tokens : lp->e->cfg->llm_default_max_tokens;
        json_t *areq = anthropic_request(model, msgs, json_is_number(t) ? t : NULL, limit);
        if (areq && json_is_true(json_object_get(conf, "stream")))
            json_object_set_new(areq, "stream", json_true());
        char *abody = areq ? json_dumps(areq, JSON_COMPACT) : NULL;
        json_decref(areq);
        if (!abody)
            outcome_fail(o, "INVALID_CONFIG", false, "the request could not be built");
        return abody;
    }
    json_t *req = json_pack("{s:s, s:o}", "model", model, "messages", msgs);
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

/* The key's headers: Anthropic's, or a bearer token. */
static void key_headers(call *c, bool anthropic, const char *key)
{
    char auth[CREDENTIALS_VALUE_MAX + 16];
    if (anthropic) {
        call_header(c, "x-api-key", key);
        call_header(c, "anthropic-version", ANTHROPIC_VERSION);
    } else if (key) {
        snprintf(auth, sizeof(auth), "Bearer %s", key);
        call_header(c, "Authorization", auth);
        explicit_bzero(auth, sizeof(auth));
    }
}

/* The request of the rendered config, to LLM_BASE_URL with LLM_API_KEY or
 * with credential u; 0, or -1 with o failed. The model asked for stays
 * with the call for pricing. */
static int build_with(call *c, loop *lp, run *r, int i, const json_t *conf,
                      const credentials_use *u, llm_body_fn body_fn, void *ctx,
                      node_outcome *o)
{
    const config *cfg = lp->e->cfg;
    bool anthropic = u->type && !strcmp(u->type->name, "anthropic");
    const char *base = u->type ? u->base_url : cfg->llm_base_url;
    const char *key = u->type ? credentials_use_value(u, "apiKey") : cfg->llm_api_key;
    if (u->type && u->type->http) {
        outcome_fail(o, "INVALID_CONFIG", false,
                     "config.credentialId must name an openai or anthropic credential");
        return -1;
    }
    if (!base) {
        outcome_fail(o, "LLM_NOT_CONFIGURED", false, "LLM_BASE_URL is not set on the server");
        return -1;
    }
    const char *model = json_string_value(json_object_get(conf, "model"));
    if (!model || !*model || strlen(model) > MODEL_MAX) {
        outcome_fail(o, "INVALID_CONFIG", false, "config.model must be a string of 1..200 bytes");
        return -1;
    }
    call_set_data(c, llm_call_new(anthropic, model));
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    char url[4096];
    if (snprintf(url, sizeof(url), "%.*s%s", (int)blen, base,
                 anthropic ? "/messages" : "/chat/completions") >= (int)sizeof(url)) {
        outcome_fail(o, "LLM_NOT_CONFIGURED", false, "the base URL is too long");
        return -1;
    }
    if (key && call_secret(c, key) != 0) {
        outcome_fail(o, "INVALID_CONFIG", false, "the request carries too many secrets");
        return -1;
    }
    char *body = body_fn(lp, r, i, model, conf, anthropic, ctx, o);
    if (!body)
        return -1;
    bool stream = json_is_true(json_object_get(conf, "stream"));
    call_header(c, "Content-Type", "application/json");
    call_header(c, "Accept", stream ? "text/event-stream" : "application/json");
    if (stream)
        llm_stream_start(c, anthropic);
    key_headers(c, anthropic, key);
    if (u->type && !cfg->http_node_allow_private)
        call_guard(c); /* a user's baseUrl is checked as an http node's URL */
    call_url(c, url);
    call_body(c, body);
    return 0;
}

call *kind_llm_call(loop *lp, run *r, int i, const json_t *conf, long long timeout_ms,
                    llm_body_fn body_fn, void *ctx, node_outcome *o)
{
    credentials_use u;
    if (engine_credential(lp, r, conf, &u, o) != 0)
        return NULL;
    call *c = call_new(lp, r, i, timeout_ms, "LLM_ERROR", o);
    if (c && build_with(c, lp, r, i, conf, &u, body_fn ? body_fn : request_body, ctx, o) != 0) {
        call_free(c);
        c = NULL;
    }
    credentials_use_free(&u);
    return c;
}

/* The node's timeoutMs, else the default. */
static long long timeout_of(const run *r, int i)
{
    long long t = r->d->nodes[i].timeout_ms;
    return t > 0 ? t : ENGINE_LLM_DEFAULT_TIMEOUT_MS;
}

node_step kind_llm_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o)
{
    call *c = kind_llm_call(lp, r, i, conf, timeout_of(r, i), NULL, NULL, o);
    json_decref(conf);
    if (!c || call_start(c, o) != 0)
        return NODE_DONE;
    engine_count(&lp->e->stats.llm_calls, 1);
    return NODE_STARTED;
}

/* ---- the answer ---- */

/* An OpenAI-compatible chat completion read into *out; -1 without
 * choices[0].message.content. */
static int openai_answer(const json_t *v, llm_answer *out)
{
    const json_t *choice = json_array_get(json_object_get(v, "choices"), 0);
    const json_t *msg = json_object_get(choice, "message");
    const json_t *content = json_object_get(msg, "content");
    memset(out, 0, sizeof(*out));
    if (!json_is_object(msg) || !(json_is_string(content) || json_is_null(content)))
        return -1;
    const json_t *usage = json_object_get(v, "usage");
    const json_t *finish = json_object_get(choice, "finish_reason");
    out->content = json_incref((json_t *)content);
    out->finish = finish ? json_incref((json_t *)finish) : json_null();
    out->model = json_string_value(json_object_get(v, "model"));
    out->prompt_tokens = json_integer_value(json_object_get(usage, "prompt_tokens"));
    out->completion_tokens = json_integer_value(json_object_get(usage, "completion_tokens"));
    return 0;
}

json_t *kind_llm_response(call *c, node_outcome *o)
{
    long status = call_status(c);
    size_t len = 0;
    const char *text = call_response(c, &len);
    bool streamed = false;
    json_t *v = llm_stream_answer(c, &streamed);
    if (!streamed)
        v = json_loadb(text, len, 0, NULL);
    if (status < 400)
        return v;
    /* the provider's text (already without the key: calls.c), cut at
     * PROVIDER_TEXT_MAX bytes on a character boundary */
    const json_t *jm = json_object_get(json_object_get(v, "error"), "message");
    const char *m = json_string_value(jm);
    int mlen = m ? (int)str_utf8_cut(m, json_string_length(jm), PROVIDER_TEXT_MAX) : 0;
    outcome_fail(o, "LLM_ERROR", status == 429 || status >= 500,
                 "the LLM provider answered %ld%s%.*s", status, m ? ": " : "", mlen, m ? m : "");
    json_decref(v);
    return NULL;
}

bool kind_llm_anthropic(const call *c)
{
    const llm_call *lc = call_data(c);
    return lc && lc->anthropic;
}

const char *kind_llm_spend(loop *lp, const call *c, const char *answered, long long pt,
                           long long ct, node_outcome *o)
{
    const llm_call *lc = call_data(c);
    const char *asked = lc->model;
    const char *model = answered;
    if (!model || !*model || strlen(model) >= sizeof(o->model))
        model = asked;
    const pricing *p = lp->e->prices;
    o->cost_usd = 0;
    if (!pricing_cost(p, asked, pt, ct, &o->cost_usd))
        pricing_cost(p, model, pt, ct, &o->cost_usd);
    str_copy(o->model, sizeof(o->model), model);
    o->prompt_tokens = pt;
    o->completion_tokens = ct;
    return model;
}

void kind_llm_finish(loop *lp, run *r, int i, call *c, node_outcome *o)
{
    (void)r, (void)i;
    json_t *v = kind_llm_response(c, o);
    if (!v && o->code)
        return;
    const llm_call *lc = call_data(c);
    llm_answer ans;
    if ((lc->anthropic ? anthropic_answer(v, &ans) : openai_answer(v, &ans)) != 0) {
        outcome_fail(o, "LLM_BAD_RESPONSE", false,
                     lc->anthropic ? "the LLM provider's answer has no content"
                                   : "the LLM provider's answer has no choices[0].message.content");
        json_decref(v);
        return;
    }
    json_int_t pt = ans.prompt_tokens < 0 ? 0 : ans.prompt_tokens;
    json_int_t ct = ans.completion_tokens < 0 ? 0 : ans.completion_tokens;
    const char *model = kind_llm_spend(lp, c, ans.model, pt, ct, o);
    o->output = json_pack("{s:O, s:s, s:O, s:{s:I, s:I, s:I}}", "content", ans.content, "model",
                          model, "finishReason", ans.finish, "usage", "promptTokens", pt,
                          "completionTokens", ct, "totalTokens", pt + ct);
    llm_answer_clear(&ans);
    o->ok = o->output != NULL;
    if (!o->ok)
        outcome_fail(o, "LLM_BAD_RESPONSE", false, "the LLM provider's answer cannot be read");
    json_decref(v);
}
