/*
 * agent.c - the agent kind: a bounded tool-calling loop. Each step calls
 * the model with the tools (OpenAI-compatible tool calling, or the
 * Messages API's tool_use when the credential is anthropic); the tool
 * calls of its answer run in parallel as transfers on the loop's curl
 * multi handle, their results go back to the model, and the loop ends when
 * the model answers without tool calls.
 *
 * Config: what an llm node takes (model, messages, temperature,
 * maxTokens, credentialId, stream; llm.c checks them), plus tools
 * (required, at most TOOLS_MAX): {name (1..64 of A-Z a-z 0-9 _ -, unique),
 * description (a string, at most 4096 characters), parameters (a JSON
 * Schema object of jschema.h's subset, "type": "object"), and either http:
 * {method?, url, headers?, body?, timeoutMs?, credentialId?} (as an http
 * node's config) or workflowId (a workflow id: the tool runs that
 * workflow as a child execution with the arguments as its input, through
 * the workflow kind's child path: its owner's right to execute it is
 * checked on save and at run, WORKFLOW_MAX_DEPTH applies, a crash
 * re-attaches to the child, the child's usage and cost are the tool's)};
 * maxSteps 1..50 (default 8), maxToolCalls 1..TOOL_CALLS_MAX
 * (default 20), maxCostUsd a number above 0. Templates: those of an llm
 * node, and a tool's url, header values and body, where {{args.<path>}}
 * (the model's arguments) may be used too; those strings are rendered
 * when the tool is called.
 *
 * Limits. Before every model call: maxSteps (model calls made),
 * maxCostUsd (spent so far, this call not counted: it is not known), the
 * budgets (engine_budget_reserve); after an answer, maxToolCalls (every
 * call asked for counts, bad ones too, and none of a step that passes it
 * runs). A limit fails the node AGENT_LIMIT, not retried, details {limit,
 * max}, the transcript so far its output. The node's timeoutMs bounds the
 * whole loop from its first attempt (TIMEOUT, not retried).
 *
 * Durability. Every model answer and every tool result is an agent_steps
 * row, committed as it arrives, before anything acts on it. An attempt
 * (the first, a retry after a failed model call, or a resume after a
 * crash) first reads the rows: the counts, the spend and the transcript
 * go on from them, and a tool call with a result is never run again. So
 * node retries apply to model calls, not to the loop, and no retry
 * refills a limit.
 *
 * Bad calls from the model (an unknown tool, arguments that are not a
 * JSON object, or that break the tool's parameters) are answered to it as
 * an error result. A tool's result is {status, headers, body} of its
 * response (or {error} when the request failed), as JSON text cut at
 * RESULT_MAX bytes. The transcript counts against the execution's memory
 * (engine_node_hold) as it grows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"
#include "engine/definition_int.h"
#include "engine/engine_int.h"
#include "engine/jschema.h"
#include "engine/providers/anthropic.h"

#define TOOLS_MAX 32
#define TOOL_NAME_MAX 64
#define TOOL_DESCRIPTION_MAX 4096
#define STEPS_MAX 50
#define STEPS_DEFAULT 8
#define TOOL_CALLS_MAX 200
#define TOOL_CALLS_DEFAULT 20
#define RESULT_MAX 65536      /* bytes of a tool result sent back */
#define EVENT_TEXT_MAX 2048   /* bytes of a call's arguments in its agent.tool_call event */
#define CALL_ID_MAX 128       /* bytes of a provider's tool call id kept */
#define POLL_MIN_MS 50        /* a workflow tool's child is looked at after this, */
#define POLL_MAX_MS 1000      /* then at least this often */

/* ---- config ---- */

static bool tool_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > TOOL_NAME_MAX)
        return false;
    for (size_t k = 0; k < len; k++) {
        char ch = s[k];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static void check_parameters(definition_ctx *c, const json_t *tool)
{
    const json_t *p = definition_need(c, tool, "parameters");
    char why[256];
    if (!p)
        return;
    if (!json_is_object(p)) {
        definition_bad(c, "parameters", "must be a JSON Schema object");
    } else if (!json_is_string(json_object_get(p, "type")) ||
               strcmp(json_string_value(json_object_get(p, "type")), "object")) {
        definition_bad(c, "parameters", "must have \"type\": \"object\"");
    } else if (jschema_check(p, why, sizeof(why)) != 0) {
        char what[300];
        snprintf(what, sizeof(what), "is not a JSON Schema this server checks: %s", why);
        definition_bad(c, "parameters", what);
    }
}

static void check_tool(definition_ctx *c, const json_t *tool, const json_t *tools, size_t at)
{
    if (!json_is_object(tool)) {
        definition_bad(c, NULL, "must be an object");
        return;
    }
    const json_t *name = definition_string(c, tool, "name", true, 1, TOOL_NAME_MAX);
    if (name && !tool_name_ok(json_string_value(name), json_string_length(name)))
        definition_bad(c, "name", "must be 1 to 64 of A-Z a-z 0-9 _ -");
    for (size_t k = 0; name && k < at; k++)
        if (json_equal(json_object_get(json_array_get(tools, k), "name"), name)) {
            definition_bad(c, "name", "is the name of an earlier tool");
            break;
        }
    definition_string(c, tool, "description", true, 0, TOOL_DESCRIPTION_MAX);
    check_parameters(c, tool);
    const json_t *http = json_object_get(tool, "http");
    const json_t *wf = json_object_get(tool, "workflowId");
    if (wf && http) {
        definition_bad(c, NULL, "must have http or workflowId, not both");
        return;
    }
    if (wf) {
        const json_t *id = definition_string(c, tool, "workflowId", true, 1, UUID_STR_LEN - 1);
        if (id && !ids_uuid_ok(json_string_value(id)))
            definition_bad(c, "workflowId", "must be a workflow id");
        return;
    }
    if (!http) {
        definition_bad(c, "http", "is required (or workflowId)");
        return;
    }
    if (!json_is_object(http)) {
        definition_bad(c, "http", "must be an object");
        return;
    }
    size_t mark = definition_key(c, "http");
    kind_http_check(c, http);
    definition_pop(c, mark);
}

void kind_agent_check(definition_ctx *c, const json_t *conf)
{
    kind_llm_check(c, conf);
    definition_int(c, conf, "maxSteps", false, 1, STEPS_MAX);
    definition_int(c, conf, "maxToolCalls", false, 1, TOOL_CALLS_MAX);
    const json_t *cost = json_object_get(conf, "maxCostUsd");
    if (cost && (!json_is_number(cost) || json_number_value(cost) <= 0 ||
                 json_number_value(cost) > 1e9))
        definition_bad(c, "maxCostUsd", "must be a number above 0 and at most 1000000000");
    const json_t *tools = definition_need(c, conf, "tools");
    if (!tools)
        return;
    if (!json_is_array(tools) || json_array_size(tools) > TOOLS_MAX) {
        definition_bad(c, "tools", "must be an array of at most 32 tools");
        return;
    }
    size_t mark = definition_key(c, "tools");
    for (size_t k = 0; k < json_array_size(tools); k++) {
        size_t item = definition_index(c, k);
        check_tool(c, json_array_get(tools, k), tools, k);
        definition_pop(c, item);
    }
    definition_pop(c, mark);
}

void kind_agent_templates(definition_ctx *c, const json_t *conf)
{
    kind_llm_templates(c, conf);
    const json_t *tools = json_object_get(conf, "tools");
    if (!json_is_array(tools))
        return;
    size_t mark = definition_key(c, "tools");
    definition_args(c, true);
    for (size_t k = 0; k < json_array_size(tools); k++) {
        const json_t *http = json_object_get(json_array_get(tools, k), "http");
        if (!json_is_object(http))
            continue;
        size_t item = definition_index(c, k);
        size_t h = definition_key(c, "http");
        kind_http_templates(c, http);
        definition_pop(c, h);
        definition_pop(c, item);
    }
    definition_args(c, false);
    definition_pop(c, mark);
}

/* ---- the loop's state ---- */

typedef struct {
    char *id, *name, *args; /* as the model sent them (malloc'd) */
    int tool;               /* index in config.tools, -1: unknown */
    call *c;                /* the request in flight */
    bool done;              /* its result is committed */
    json_t *result;         /* its tool message, until it joins the transcript */
    char child[UUID_STR_LEN]; /* a workflow tool's child, until it ends */
} tool_call;

struct agent {
    loop *lp;
    run *r;
    int node;
    json_t *conf;           /* the rendered config (owned) */
    json_t *transcript;     /* the messages: the config's, then each added */
    int steps, tool_calls;  /* model calls answered; tool calls asked for */
    long long seq;          /* the last agent_steps row */
    long long pt, ct;
    double cost;
    char model[201];
    json_t *content, *finish; /* the last answer's */
    tool_call *calls;       /* the last answer's tool calls */
    int ncalls, running;
    call *model_call;       /* in flight */
    int64_t deadline;       /* monotonic ms; 0: none */
    long long answer_seq;   /* the row of the answer whose calls run */
    int children;           /* workflow tools' children waited for */
    int64_t waiting_since;  /* monotonic ms, when the first of them began */
};

static void calls_clear(struct agent *ag)
{
    for (int k = 0; k < ag->ncalls; k++) {
        if (ag->calls[k].c)
            call_drop(ag->lp, ag->calls[k].c);
        free(ag->calls[k].id);
        free(ag->calls[k].name);
        free(ag->calls[k].args);
        json_decref(ag->calls[k].result);
    }
    free(ag->calls);
    ag->calls = NULL;
    ag->ncalls = ag->running = 0;
}

static void agent_free(struct agent *ag)
{
    if (!ag)
        return;
    calls_clear(ag);
    if (ag->model_call)
        call_drop(ag->lp, ag->model_call);
    json_decref(ag->conf);
    json_decref(ag->transcript);
    json_decref(ag->content);
    json_decref(ag->finish);
    free(ag);
}

void kind_agent_stop(loop *lp, run *r, int i)
{
    node_state *n = &r->ns[i];
    (void)lp;
    agent_free(n->agent);
    n->agent = NULL;
}

void kind_agent_cancel(loop *lp, run *r, int i)
{
    struct agent *ag = r->ns[i].agent;
    for (int k = 0; ag && k < ag->ncalls; k++)
        if (ag->calls[k].child[0])
            engine_cancel_child(lp->e, ag->calls[k].child);
}

static long long conf_int(const json_t *conf, const char *key, long long def)
{
    const json_t *v = json_object_get(conf, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

/* ---- output and outcomes ---- */

static json_t *output_of(const struct agent *ag)
{
    return json_pack("{s:O, s:i, s:i, s:O, s:O, s:{s:I, s:I, s:I}}", "content",
                     ag->content ? ag->content : json_null(), "steps", ag->steps, "toolCalls",
                     ag->tool_calls, "finishReason", ag->finish ? ag->finish : json_null(),
                     "transcript", ag->transcript, "usage", "promptTokens", (json_int_t)ag->pt,
                     "completionTokens", (json_int_t)ag->ct, "totalTokens",
                     (json_int_t)(ag->pt + ag->ct));
}

/* The loop's spend into o as what the node adds to what it holds: its
 * earlier attempts' outcomes counted their part already. */
static void spend_into(const struct agent *ag, const node_state *n, node_outcome *o)
{
    o->prompt_tokens = ag->pt - n->prompt_tokens;
    o->completion_tokens = ag->ct - n->completion_tokens;
    o->cost_usd = ag->cost - n->cost_usd;
    if (ag->model[0])
        str_copy(o->model, sizeof(o->model), ag->model);
}

/* Ends the attempt with o (filled but for the spend and, unless set, the
 * output): the loop is freed, the node's outcome delivered. */
static void finish_with(struct agent *ag, node_outcome *o)
{
    loop *lp = ag->lp;
    run *r = ag->r;
    int i = ag->node;
    node_state *n = &r->ns[i];
    engine_budget_settle(r, i, 0); /* a reservation left (a call that failed) */
    spend_into(ag, n, o);
    if (!o->output && (o->ok || !o->retryable))
        o->output = output_of(ag);
    if (n->heap_pos)
        heap_remove(lp, n->heap_pos);
    n->timer = TIMER_NONE;
    kind_agent_cancel(lp, r, i); /* children it no longer waits for */
    n->child[0] = '\0';
    n->agent = NULL;
    agent_free(ag);
    loop_node_done(lp, r, i, o);
}

static void limit_reached(struct agent *ag, const char *limit, double max)
{
    node_outcome o = {0};
    outcome_fail(&o, "AGENT_LIMIT", false, "the agent reached its %s (%g)", limit, max);
    o.details = json_pack("{s:s, s:f}", "limit", limit, "max", max);
    finish_with(ag, &o);
}

static void fail_with(struct agent *ag, const char *code, bool retryable, const char *message)
{
    node_outcome o = {0};
    outcome_fail(&o, code, retryable, "%s", message);
    finish_with(ag, &o);
}

/* ---- durable steps ---- */

/* Commits the next agent_steps row: 0, or -1 (the node failed). */
static int commit(struct agent *ag, const char *kind, const char *call_id, const json_t *data,
                  long long pt, long long ct, double cost)
{
    char *text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    store_agent_step st = {.seq = ag->seq + 1, .call_id = (char *)call_id, .data = text,
                           .prompt_tokens = pt, .completion_tokens = ct, .cost_usd = cost};
    str_copy(st.kind, sizeof(st.kind), kind);
    clock_format_rfc3339(clock_now_ms(), st.created_at);
    aop_err rc = text ? store_agent_step_add(ag->lp->e->st, ag->r->row.id,
                                             ag->r->d->nodes[ag->node].id, &st)
                      : AOP_ERR_INTERNAL;
    free(text);
    if (rc == AOP_OK) {
        ag->seq++;
        return 0;
    }
    fail_with(ag, "UNAVAILABLE", rc != AOP_ERR_CONFLICT,
              rc == AOP_ERR_CONFLICT ? "another claim of the execution went on with the agent"
                                     : "the agent's step could not be stored");
    return -1;
}

/* Adds msg (taken) to the transcript, held against the execution's
 * memory: 0, or -1 (the node failed). */
static int add_message(struct agent *ag, json_t *msg)
{
    node_outcome o = {0};
    size_t bytes = json_size_within(msg, SIZE_MAX);
    if (engine_node_hold(ag->lp, ag->r, ag->node, (long long)bytes, &o) != 0) {
        json_decref(msg);
        finish_with(ag, &o);
        return -1;
    }
    json_array_append_new(ag->transcript, msg);
    return 0;
}

/* ---- events ---- */

/* Node event type with the members of m (taken). */
static void event_of(struct agent *ag, const char *type, json_t *m)
{
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (!text)
        return;
    size_t len = strlen(text); /* the members, without the object's braces */
    memmove(text, text + 1, len - 2);
    text[len - 2] = '\0';
    engine_node_event(ag->r, ag->node, type, text);
}

static void event_step(struct agent *ag, long long pt, long long ct, double cost)
{
    json_t *m = json_pack("{s:i, s:O, s:i, s:{s:I, s:I, s:I}, s:f}", "step", ag->steps,
                          "finishReason", ag->finish ? ag->finish : json_null(), "toolCalls",
                          ag->ncalls, "usage", "promptTokens", (json_int_t)pt,
                          "completionTokens", (json_int_t)ct, "totalTokens",
                          (json_int_t)(pt + ct), "costUsd", cost);
    event_of(ag, "agent.step", m);
}

static void event_call(struct agent *ag, const char *type, const tool_call *tc, json_t *extra)
{
    json_t *m = json_pack("{s:i, s:s, s:s}", "step", ag->steps, "toolCallId", tc->id, "name",
                          tc->name);
    if (m && extra)
        json_object_update(m, extra);
    json_decref(extra);
    event_of(ag, type, m);
}

/* ---- the model ---- */

/* OpenAI-compatible messages of the transcript: an assistant's toolCalls
 * become tool_calls, a tool message's toolCallId tool_call_id; contents a
 * placeholder made non-strings are sent as their JSON text. */
static json_t *openai_messages(const json_t *transcript)
{
    json_t *out = json_array();
    size_t k;
    const json_t *m;
    json_array_foreach(transcript, k, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *content = json_object_get(m, "content");
        json_t *copy = json_pack("{s:s}", "role", role ? role : "user");
        if (content && !json_is_string(content) && !json_is_null(content)) {
            char *s = json_dumps(content, JSON_COMPACT | JSON_ENCODE_ANY);
            json_object_set_new(copy, "content", json_string(s ? s : ""));
            free(s);
        } else {
            json_object_set(copy, "content", content ? (json_t *)content : json_null());
        }
        const json_t *calls = json_object_get(m, "toolCalls");
        if (json_array_size(calls)) {
            json_t *tcs = json_array();
            size_t j;
            const json_t *tc;
            json_array_foreach(calls, j, tc) {
                json_array_append_new(
                    tcs, json_pack("{s:O, s:s, s:{s:O, s:O}}", "id", json_object_get(tc, "id"),
                                   "type", "function", "function", "name",
                                   json_object_get(tc, "name"), "arguments",
                                   json_object_get(tc, "arguments")));
            }
            json_object_set_new(copy, "tool_calls", tcs);
        }
        const json_t *tid = json_object_get(m, "toolCallId");
        if (tid)
            json_object_set(copy, "tool_call_id", (json_t *)tid);
        json_array_append_new(out, copy);
    }
    return out;
}

/* The tools as the provider takes them: OpenAI's functions, or the
 * Messages API's {name, description, input_schema}. */
static json_t *provider_tools(const json_t *tools, bool anthropic)
{
    json_t *out = json_array();
    size_t k;
    const json_t *t;
    json_array_foreach(tools, k, t) {
        json_t *fn = json_pack("{s:O, s:O, s:O}", "name", json_object_get(t, "name"),
                               "description", json_object_get(t, "description"),
                               anthropic ? "input_schema" : "parameters",
                               json_object_get(t, "parameters"));
        json_array_append_new(out, anthropic ? fn
                                             : json_pack("{s:s, s:o}", "type", "function",
                                                         "function", fn));
    }
    return out;
}

/* The Messages API's turns of the transcript: system messages apart, an
 * assistant's tool calls as tool_use blocks, consecutive tool results as
 * tool_result blocks of one user turn. */
static json_t *anthropic_turns(const json_t *transcript, buf *system)
{
    json_t *out = json_array();
    json_t *results = NULL; /* the user turn of tool results being filled */
    size_t k;
    const json_t *m;
    json_array_foreach(transcript, k, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *content = json_object_get(m, "content");
        char *owned = NULL;
        const char *text = json_string_value(content);
        if (content && !json_is_string(content) && !json_is_null(content))
            text = owned = json_dumps(content, JSON_COMPACT | JSON_ENCODE_ANY);
        if (role && !strcmp(role, "system")) {
            if (system->len)
                buf_append(system, "\n\n", 2);
            buf_puts(system, text ? text : "");
        } else if (role && !strcmp(role, "tool")) {
            if (!results) {
                results = json_array();
                json_array_append_new(out, json_pack("{s:s, s:o}", "role", "user", "content",
                                                     results));
            }
            json_array_append_new(results, json_pack("{s:s, s:O, s:s}", "type", "tool_result",
                                                     "tool_use_id",
                                                     json_object_get(m, "toolCallId"), "content",
                                                     text ? text : ""));
        } else if (role && !strcmp(role, "assistant") &&
                   json_array_size(json_object_get(m, "toolCalls"))) {
            results = NULL;
            json_t *blocks = json_array();
            if (text && *text)
                json_array_append_new(blocks, json_pack("{s:s, s:s}", "type", "text", "text",
                                                        text));
            size_t j;
            const json_t *tc;
            json_array_foreach(json_object_get(m, "toolCalls"), j, tc) {
                const char *args = json_string_value(json_object_get(tc, "arguments"));
                json_t *input = args ? json_loads(args, 0, NULL) : NULL;
                if (!json_is_object(input)) {
                    json_decref(input);
                    input = json_object();
                }
                json_array_append_new(blocks, json_pack("{s:s, s:O, s:O, s:o}", "type",
                                                        "tool_use", "id", json_object_get(tc, "id"),
                                                        "name", json_object_get(tc, "name"),
                                                        "input", input));
            }
            json_array_append_new(out, json_pack("{s:s, s:o}", "role", "assistant", "content",
                                                 blocks));
        } else {
            results = NULL;
            json_array_append_new(out, json_pack("{s:s, s:s}", "role",
                                                 role && !strcmp(role, "assistant") ? "assistant"
                                                                                    : "user",
                                                 "content", text ? text : ""));
        }
        free(owned);
    }
    return out;
}

/* The body of the next model call (llm_body_fn): the transcript and the
 * tools, once the budgets hold the call's worst case. */
static char *step_body(loop *lp, run *r, int i, const char *model, const json_t *conf,
                       bool anthropic, void *ctx, node_outcome *o)
{
    struct agent *ag = ctx;
    const json_t *tools = json_object_get(conf, "tools");
    json_t *req;
    buf system;
    buf_init(&system, 0);
    if (anthropic) {
        json_t *turns = anthropic_turns(ag->transcript, &system);
        req = json_pack("{s:s, s:o}", "model", model, "messages", turns);
        if (req && json_array_size(tools))
            json_object_set_new(req, "tools", provider_tools(tools, true));
    } else {
        req = json_pack("{s:s, s:o}", "model", model, "messages",
                        openai_messages(ag->transcript));
        if (req && json_array_size(tools))
            json_object_set_new(req, "tools", provider_tools(tools, false));
    }
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    size_t bytes = text ? strlen(text) : 0;
    free(text);
    const json_t *mt = json_object_get(conf, "maxTokens");
    long long max_tokens = json_is_integer(mt) ? (long long)json_integer_value(mt) : 0;
    if (!req || engine_budget_reserve(lp, r, i, model, bytes, &max_tokens, o) != 0) {
        if (!req)
            outcome_fail(o, "INVALID_CONFIG", false, "the request could not be built");
        json_decref(req);
        buf_free(&system);
        return NULL;
    }
    const json_t *t = json_object_get(conf, "temperature");
    if (json_is_number(t))
        json_object_set(req, "temperature", (json_t *)t);
    bool stream = json_is_true(json_object_get(conf, "stream"));
    if (anthropic) {
        long long limit = max_tokens > 0 ? max_tokens : lp->e->cfg->llm_default_max_tokens;
        json_object_set_new(req, "max_tokens", json_integer(limit));
        if (system.len)
            json_object_set_new(req, "system", json_stringn(system.data, system.len));
    } else if (max_tokens > 0) {
        json_object_set_new(req, "max_tokens", json_integer(max_tokens));
    }
    if (stream) /* llm.c has the answer streamed to llm.delta */
        json_object_set_new(req, "stream", json_true());
    if (stream && !anthropic)
        json_object_set_new(req, "stream_options", json_pack("{s:b}", "include_usage", 1));
    buf_free(&system);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body)
        outcome_fail(o, "INVALID_CONFIG", false, "the request could not be built");
    return body;
}

static void model_done(loop *lp, run *r, int i, call *c, node_outcome *o);
static void next_step(struct agent *ag);

/* What is left of the loop's time (0: no timeoutMs). */
static long long time_left(const struct agent *ag)
{
    return ag->deadline ? ag->deadline - engine_mono_ms() : 0;
}

static void call_model(struct agent *ag)
{
    const json_t *conf = ag->conf;
    long long max_steps = conf_int(conf, "maxSteps", STEPS_DEFAULT);
    const json_t *max_cost = json_object_get(conf, "maxCostUsd");
    if (ag->steps >= max_steps) {
        limit_reached(ag, "maxSteps", (double)max_steps);
        return;
    }
    if (json_is_number(max_cost) && ag->cost >= json_number_value(max_cost)) {
        limit_reached(ag, "maxCostUsd", json_number_value(max_cost));
        return;
    }
    node_outcome o = {0};
    long long left = time_left(ag), t = ENGINE_LLM_DEFAULT_TIMEOUT_MS;
    call *c = kind_llm_call(ag->lp, ag->r, ag->node, conf, left > 0 && left < t ? left : t,
                            step_body, ag, &o);
    if (c) {
        call_on_done(c, model_done);
        if (call_start(c, &o) == 0) {
            ag->model_call = c;
            engine_count(&ag->lp->e->stats.llm_calls, 1);
            return;
        }
    }
    finish_with(ag, &o);
}

/* The answer's text content (new: a string or null). */
static json_t *answer_text(const json_t *content)
{
    return json_is_string(content) ? json_incref((json_t *)content) : json_null();
}

/* The assistant message of an answer v: {role, content, toolCalls?}; its
 * finish reason, model and usage through the out-parameters. NULL when v
 * is not an answer of the provider. */
static json_t *read_answer(const json_t *v, bool anthropic, json_t **finish, const char **model,
                           long long *pt, long long *ct)
{
    json_t *calls = json_array(), *msg = NULL;
    char gen[32];
    if (anthropic) {
        llm_answer ans;
        if (anthropic_answer(v, &ans) != 0) {
            json_decref(calls);
            return NULL;
        }
        size_t k;
        const json_t *b;
        json_array_foreach(json_object_get(v, "content"), k, b) {
            const char *type = json_string_value(json_object_get(b, "type"));
            if (!type || strcmp(type, "tool_use"))
                continue;
            const json_t *input = json_object_get(b, "input");
            char *args = input ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            const json_t *id = json_object_get(b, "id"), *name = json_object_get(b, "name");
            snprintf(gen, sizeof(gen), "call_%zu", k + 1);
            json_array_append_new(calls, json_pack("{s:s, s:s, s:s}", "id",
                                                   json_is_string(id) ? json_string_value(id) : gen,
                                                   "name", json_is_string(name)
                                                               ? json_string_value(name) : "",
                                                   "arguments", args ? args : "{}"));
            free(args);
        }
        msg = json_pack("{s:s, s:o}", "role", "assistant", "content", answer_text(ans.content));
        *finish = json_incref(ans.finish);
        *model = ans.model;
        *pt = ans.prompt_tokens;
        *ct = ans.completion_tokens;
        llm_answer_clear(&ans);
    } else {
        const json_t *choice = json_array_get(json_object_get(v, "choices"), 0);
        const json_t *m = json_object_get(choice, "message");
        if (!json_is_object(m)) {
            json_decref(calls);
            return NULL;
        }
        size_t k;
        const json_t *tc;
        json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
            const json_t *fn = json_object_get(tc, "function");
            const json_t *id = json_object_get(tc, "id"), *name = json_object_get(fn, "name");
            const json_t *args = json_object_get(fn, "arguments");
            snprintf(gen, sizeof(gen), "call_%zu", k + 1);
            json_array_append_new(
                calls, json_pack("{s:s, s:s, s:s}", "id",
                                 json_is_string(id) && json_string_length(id) <= CALL_ID_MAX
                                     ? json_string_value(id) : gen,
                                 "name", json_is_string(name) ? json_string_value(name) : "",
                                 "arguments", json_is_string(args) ? json_string_value(args) : ""));
        }
        msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                        answer_text(json_object_get(m, "content")));
        const json_t *f = json_object_get(choice, "finish_reason");
        *finish = f ? json_incref((json_t *)f) : json_null();
        *model = json_string_value(json_object_get(v, "model"));
        const json_t *usage = json_object_get(v, "usage");
        *pt = json_integer_value(json_object_get(usage, "prompt_tokens"));
        *ct = json_integer_value(json_object_get(usage, "completion_tokens"));
    }
    if (msg && json_array_size(calls))
        json_object_set(msg, "toolCalls", calls);
    json_decref(calls);
    *pt = *pt < 0 ? 0 : *pt;
    *ct = *ct < 0 ? 0 : *ct;
    return msg;
}

/* The results of the last answer's tool calls join the transcript, in the
 * order the model asked for them: 0, or -1 (the node failed). */
static int flush_results(struct agent *ag)
{
    for (int k = 0; k < ag->ncalls; k++) {
        json_t *m = ag->calls[k].result;
        ag->calls[k].result = NULL;
        if (m && add_message(ag, m) != 0)
            return -1;
    }
    return 0;
}

/* The loop takes the assistant message msg (taken; committed already or
 * read back): the transcript, the last answer, the tool calls to run. */
static int take_answer(struct agent *ag, json_t *msg, json_t *finish)
{
    if (flush_results(ag) != 0) {
        json_decref(msg);
        json_decref(finish);
        return -1;
    }
    json_decref(ag->content);
    ag->content = json_incref(json_object_get(msg, "content"));
    json_decref(ag->finish);
    ag->finish = finish;
    calls_clear(ag);
    const json_t *calls = json_object_get(msg, "toolCalls");
    ag->ncalls = (int)json_array_size(calls);
    ag->calls = ag->ncalls ? xcalloc((size_t)ag->ncalls, sizeof(*ag->calls)) : NULL;
    const json_t *tools = json_object_get(ag->conf, "tools");
    for (int k = 0; k < ag->ncalls; k++) {
        const json_t *tc = json_array_get(calls, (size_t)k);
        tool_call *t = &ag->calls[k];
        t->id = xstrdup(json_string_value(json_object_get(tc, "id")));
        t->name = xstrdup(json_string_value(json_object_get(tc, "name")));
        t->args = xstrdup(json_string_value(json_object_get(tc, "arguments")));
        t->tool = -1;
        for (size_t j = 0; j < json_array_size(tools); j++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(tools, j), "name")),
                        t->name))
                t->tool = (int)j;
    }
    ag->steps++;
    ag->tool_calls += ag->ncalls;
    return add_message(ag, msg);
}

static void model_done(loop *lp, run *r, int i, call *c, node_outcome *o)
{
    (void)lp;
    struct agent *ag = r->ns[i].agent;
    ag->model_call = NULL;
    json_t *v = o->code ? NULL : kind_llm_response(c, o);
    json_t *finish = NULL;
    const char *answered = NULL;
    long long pt = 0, ct = 0;
    json_t *msg = v ? read_answer(v, kind_llm_anthropic(c), &finish, &answered, &pt, &ct) : NULL;
    if (!msg) {
        node_outcome f = *o;
        if (!f.code)
            outcome_fail(&f, "LLM_BAD_RESPONSE", false,
                         "the LLM provider's answer is not a chat answer");
        json_decref(v);
        finish_with(ag, &f);
        return;
    }
    node_outcome spend = {0};
    const char *model = kind_llm_spend(lp, c, answered, pt, ct, &spend);
    str_copy(ag->model, sizeof(ag->model), model);
    engine_budget_settle(r, i, spend.cost_usd);
    ag->pt += pt;
    ag->ct += ct;
    ag->cost += spend.cost_usd;
    json_t *row = json_pack("{s:O, s:O}", "message", msg, "finishReason", finish);
    int rc = commit(ag, "model", NULL, row, pt, ct, spend.cost_usd);
    json_decref(row);
    json_decref(v);
    if (rc != 0) {
        json_decref(msg);
        json_decref(finish);
        return;
    }
    ag->answer_seq = ag->seq;
    if (take_answer(ag, msg, finish) != 0)
        return;
    event_step(ag, pt, ct, spend.cost_usd);
    next_step(ag);
}

/* ---- tools ---- */

/* The tool message of call t's result text (taken), cut at RESULT_MAX. */
static json_t *result_message(const tool_call *t, char *text)
{
    size_t len = strlen(text);
    len = str_utf8_cut(text, len, RESULT_MAX);
    json_t *m = json_pack("{s:s, s:s, s:s, s:s%}", "role", "tool", "toolCallId", t->id, "name",
                          t->name, "content", text, len);
    free(text);
    return m;
}

static char *error_result(const char *fmt, const char *a, const char *b)
    __attribute__((format(printf, 1, 0)));

static char *error_result(const char *fmt, const char *a, const char *b)
{
    char why[600];
    snprintf(why, sizeof(why), fmt, a, b);
    json_t *v = json_pack("{s:s}", "error", why);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    return text ? text : xstrdup("{\"error\":\"out of memory\"}");
}

static void tools_done(struct agent *ag);

/* Tool call k has its result text (taken), and cost what its child spent:
 * committed, then announced. */
static int result_spent(struct agent *ag, int k, char *text, long long pt, long long ct,
                        double cost)
{
    tool_call *t = &ag->calls[k];
    json_t *msg = result_message(t, text);
    int rc = commit(ag, "tool", t->id, msg, pt, ct, cost);
    if (rc == 0) {
        ag->pt += pt;
        ag->ct += ct;
        ag->cost += cost;
    }
    if (rc != 0) {
        json_decref(msg);
        return rc;
    }
    t->done = true;
    t->result = msg;
    size_t bytes = json_string_length(json_object_get(msg, "content"));
    event_call(ag, "agent.tool_result", t, json_pack("{s:I}", "bytes", (json_int_t)bytes));
    return 0;
}

static int result_of(struct agent *ag, int k, char *text)
{
    return result_spent(ag, k, text, 0, 0, 0);
}

/* ---- workflow tools ---- */

/* Node i's timer while children run: the next look at them, or the
 * loop's deadline when nearer; without children, the deadline alone. */
static void arm(struct agent *ag)
{
    run *r = ag->r;
    node_state *n = &r->ns[ag->node];
    if (n->heap_pos)
        heap_remove(ag->lp, n->heap_pos);
    n->timer = TIMER_NONE;
    n->child[0] = '\0';
    int64_t now = engine_mono_ms(), at = ag->deadline;
    if (ag->children > 0) {
        for (int k = 0; k < ag->ncalls && !n->child[0]; k++)
            if (ag->calls[k].child[0])
                str_copy(n->child, sizeof(n->child), ag->calls[k].child); /* wakes it */
        long long poll = (now - ag->waiting_since) / 2;
        poll = poll < POLL_MIN_MS ? POLL_MIN_MS : poll > POLL_MAX_MS ? POLL_MAX_MS : poll;
        if (!at || now + poll < at)
            at = now + poll;
        engine_node_park(r, ag->node);
    } else {
        engine_node_unpark(r, ag->node);
    }
    if (at) {
        n->timer = TIMER_NODE;
        heap_push(ag->lp, r, ag->node, at);
    }
}

/* Starts (or, after a crash, finds) the child of workflow tool call k
 * with args (borrowed): 0, or -1 with why (an error result for the model). */
static int start_child(struct agent *ag, int k, const char *wf, const json_t *args, char *why,
                       size_t whylen)
{
    loop *lp = ag->lp;
    run *r = ag->r;
    const char *node_id = r->d->nodes[ag->node].id;
    long long key = -(ag->answer_seq * (TOOL_CALLS_MAX + 1) + k + 1);
    arena a = {0};
    store_execution child;
    node_outcome o = {0};
    aop_err rc = store_execution_child(lp->e->st, r->row.id, node_id, key, &child, &a);
    int ret = -1;
    if (rc == AOP_ERR_NOT_FOUND && r->row.depth >= lp->e->cfg->workflow_max_depth) {
        snprintf(why, whylen, "DEPTH_EXCEEDED: the execution is at depth %lld, "
                 "WORKFLOW_MAX_DEPTH: it may not start a child execution", r->row.depth);
        goto out;
    }
    if (rc == AOP_ERR_NOT_FOUND &&
        engine_child_start(lp, r, ag->node, key, wf, args, &child, &a, &o) != 0) {
        snprintf(why, whylen, "%s: %s", o.code, o.message);
        goto out;
    }
    if (rc != AOP_OK && rc != AOP_ERR_NOT_FOUND) {
        snprintf(why, whylen, "UNAVAILABLE: the child execution cannot be read");
        goto out;
    }
    str_copy(ag->calls[k].child, sizeof(ag->calls[k].child), child.id);
    if (ag->children++ == 0)
        ag->waiting_since = engine_mono_ms();
    ag->running++;
    engine_child_watch(lp, r, &child);
    ret = 0;
out:
    json_decref(o.details);
    arena_free(&a);
    return ret;
}

/* The result of call k's child that ended as x: its output, or its end. */
static char *child_result(const store_execution *x)
{
    if (x->status == EXEC_SUCCEEDED)
        return xstrdup(x->output ? x->output : "null");
    json_t *err = x->error ? json_loads(x->error, 0, NULL) : NULL;
    json_t *v = json_pack("{s:s, s:s, s:o}", "executionId", x->id, "status",
                          exec_status_name(x->status), "error", err ? err : json_null());
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    return text ? text : xstrdup("{\"error\":\"the child execution ended\"}");
}

/* Looks at the children still waited for: 0, or -1 (the node ended). */
static int look_at_children(struct agent *ag)
{
    for (int k = 0; k < ag->ncalls; k++) {
        tool_call *t = &ag->calls[k];
        if (!t->child[0])
            continue;
        arena a = {0};
        store_execution x;
        aop_err rc = store_execution_get(ag->lp->e->st, t->child, &x, &a);
        if (rc != AOP_OK && rc != AOP_ERR_NOT_FOUND) {
            arena_free(&a);
            continue; /* the store did not answer: look again */
        }
        if (rc == AOP_OK && engine_child_active(x.status)) {
            arena_free(&a);
            continue;
        }
        char *text = rc == AOP_OK ? child_result(&x)
                                  : error_result("the child execution %s was deleted%s",
                                                 t->child, "");
        long long pt = rc == AOP_OK ? x.prompt_tokens : 0, ct = rc == AOP_OK ? x.completion_tokens : 0;
        double cost = rc == AOP_OK ? x.cost_usd : 0;
        arena_free(&a);
        t->child[0] = '\0';
        ag->children--;
        ag->running--;
        if (result_spent(ag, k, text, pt, ct, cost) != 0)
            return -1;
    }
    return 0;
}

static void tools_done(struct agent *ag);

static void tool_done(loop *lp, run *r, int i, call *c, node_outcome *o)
{
    (void)lp;
    struct agent *ag = r->ns[i].agent;
    int k = 0;
    while (k < ag->ncalls && ag->calls[k].c != c)
        k++;
    if (k == ag->ncalls) /* not one of this step's: cannot happen, calls_clear drops them */
        return;
    ag->calls[k].c = NULL;
    ag->running--;
    char *text;
    if (o->code) {
        text = error_result("%s: %s", o->code, o->message);
    } else {
        json_t *out = kind_http_output(c);
        text = out ? json_dumps(out, JSON_COMPACT) : NULL;
        json_decref(out);
        if (!text)
            text = error_result("%s%s", "the response could not be read", "");
    }
    if (result_of(ag, k, text) != 0)
        return;
    if (ag->running == 0)
        tools_done(ag);
}

/* Starts tool call k, or answers it at once when it is bad: 0, or -1 (the
 * node failed). */
static int start_tool(struct agent *ag, int k)
{
    tool_call *t = &ag->calls[k];
    const json_t *tool = json_array_get(json_object_get(ag->conf, "tools"), (size_t)t->tool);
    event_call(ag, "agent.tool_call", t,
               json_pack("{s:s%}", "arguments", t->args,
                         str_utf8_cut(t->args, strlen(t->args), EVENT_TEXT_MAX)));
    if (t->tool < 0)
        return result_of(ag, k, error_result("unknown tool \"%.100s\"%s", t->name, ""));
    json_error_t jerr;
    json_t *args = json_loads(t->args, JSON_DECODE_ANY, &jerr);
    char why[300];
    if (!json_is_object(args)) {
        json_decref(args);
        return result_of(ag, k, error_result("the arguments are not a JSON object%s%s",
                                             args ? "" : ": ", args ? "" : jerr.text));
    }
    if (jschema_validate(json_object_get(tool, "parameters"), args, why, sizeof(why)) != 0) {
        json_decref(args);
        return result_of(ag, k, error_result("the arguments do not match the tool's "
                                             "parameters: %s%s", why, ""));
    }
    const char *wf = json_string_value(json_object_get(tool, "workflowId"));
    if (wf) {
        char no[600];
        int rc = start_child(ag, k, wf, args, no, sizeof(no));
        json_decref(args);
        if (rc != 0)
            return result_of(ag, k, error_result("%s%s", no, ""));
        arm(ag);
        return 0;
    }
    node_outcome o = {0};
    json_t *http = engine_render_args(ag->lp, ag->r, ag->node, json_object_get(tool, "http"),
                                      args, &o);
    json_decref(args);
    call *c = http ? kind_http_call(ag->lp, ag->r, ag->node, http, time_left(ag), &o) : NULL;
    json_decref(http);
    if (c) {
        call_on_done(c, tool_done);
        if (call_start(c, &o) == 0) {
            t->c = c;
            ag->running++;
            engine_count(&ag->lp->e->stats.http_calls, 1);
            return 0;
        }
    }
    json_decref(o.details);
    json_decref(o.output);
    return result_of(ag, k, error_result("%s: %s", o.code, o.message));
}

/* Every tool call of the step has its result: they join the transcript in
 * the order the model asked for them, and the next step begins. */
static void tools_done(struct agent *ag)
{
    arm(ag); /* no child left: the deadline alone */
    if (flush_results(ag) == 0)
        call_model(ag);
}

static void run_tools(struct agent *ag)
{
    for (int k = 0; k < ag->ncalls; k++) {
        if (ag->calls[k].done || ag->calls[k].c)
            continue;
        if (start_tool(ag, k) != 0)
            return;
    }
    if (ag->running == 0)
        tools_done(ag);
}

/* After an answer (or a resume): its tool calls' results, or the end. */
static void next_step(struct agent *ag)
{
    if (ag->steps == 0) { /* nothing answered yet */
        call_model(ag);
        return;
    }
    if (ag->ncalls == 0) {
        node_outcome o = {.ok = true};
        finish_with(ag, &o);
        return;
    }
    long long max_calls = conf_int(ag->conf, "maxToolCalls", TOOL_CALLS_DEFAULT);
    if (ag->tool_calls > max_calls) {
        limit_reached(ag, "maxToolCalls", (double)max_calls);
        return;
    }
    bool all = true;
    for (int k = 0; k < ag->ncalls; k++)
        all = all && ag->calls[k].done;
    if (!all)
        run_tools(ag);
    else
        tools_done(ag);
}

/* ---- attempts ---- */

/* The committed rows of the loop, replayed: 0, or -1 (the node failed). */
static int replay(struct agent *ag, node_outcome *o)
{
    arena a = {0};
    store_agent_step *rows = NULL;
    int n = 0;
    long long max = conf_int(ag->conf, "maxSteps", STEPS_DEFAULT) +
                    conf_int(ag->conf, "maxToolCalls", TOOL_CALLS_DEFAULT) + TOOL_CALLS_MAX + 1;
    aop_err rc = store_agent_steps(ag->lp->e->st, ag->r->row.id, ag->r->d->nodes[ag->node].id,
                                   (int)max, &rows, &n, &a);
    if (rc != AOP_OK) {
        arena_free(&a);
        outcome_fail(o, "UNAVAILABLE", true, "the agent's steps could not be read");
        return -1;
    }
    for (int k = 0; k < n; k++) {
        json_t *data = json_loads(rows[k].data, JSON_DECODE_ANY, NULL);
        ag->seq = rows[k].seq;
        ag->pt += rows[k].prompt_tokens; /* a workflow tool's are its child's */
        ag->ct += rows[k].completion_tokens;
        ag->cost += rows[k].cost_usd;
        if (!strcmp(rows[k].kind, "model")) {
            ag->answer_seq = rows[k].seq;
            json_t *msg = json_incref(json_object_get(data, "message"));
            json_t *finish = json_incref(json_object_get(data, "finishReason"));
            json_decref(data);
            if (!json_is_object(msg)) {
                json_decref(msg);
                json_decref(finish);
                continue;
            }
            if (take_answer(ag, msg, finish ? finish : json_null()) != 0)
                goto gone;
            continue;
        }
        int c = 0;
        while (c < ag->ncalls && (!rows[k].call_id || strcmp(ag->calls[c].id, rows[k].call_id)))
            c++;
        if (c < ag->ncalls && !ag->calls[c].done && json_is_object(data)) {
            ag->calls[c].done = true;
            ag->calls[c].result = data;
        } else {
            json_decref(data);
        }
    }
    arena_free(&a);
    return 0;
gone: /* add_message failed the node already */
    arena_free(&a);
    return 1;
}

node_step kind_agent_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o)
{
    node_state *n = &r->ns[i];
    struct agent *ag = xcalloc(1, sizeof(*ag));
    ag->lp = lp;
    ag->r = r;
    ag->node = i;
    ag->conf = conf;
    ag->transcript = json_array();
    n->agent = ag;
    n->resumed = 0;
    /* the loop's time runs from its first attempt */
    long long limit = r->d->nodes[i].timeout_ms;
    if (limit > 0) {
        long long spent = clock_now_ms() - (n->started_ms ? n->started_ms : clock_now_ms());
        if (spent >= limit) {
            n->agent = NULL;
            agent_free(ag);
            outcome_fail(o, "TIMEOUT", false, "the agent ran longer than its %lld ms timeout",
                         limit);
            return NODE_DONE;
        }
        ag->deadline = engine_mono_ms() + (limit - spent);
        n->timer = TIMER_NODE;
        heap_push(lp, r, i, ag->deadline);
    }
    const json_t *msgs = json_object_get(conf, "messages");
    size_t k;
    const json_t *m;
    json_array_foreach(msgs, k, m) {
        if (add_message(ag, json_deep_copy(m)) != 0)
            return NODE_STARTED; /* it failed the node */
    }
    int rc = replay(ag, o);
    if (rc < 0) {
        n->agent = NULL;
        if (n->heap_pos)
            heap_remove(lp, n->heap_pos);
        n->timer = TIMER_NONE;
        agent_free(ag);
        return NODE_DONE;
    }
    if (rc == 0)
        next_step(ag);
    return NODE_STARTED;
}

/* The node's timer: a look at the children of workflow tools, or the
 * loop's timeoutMs passed. */
void kind_agent_finish(loop *lp, run *r, int i, call *c, node_outcome *o)
{
    (void)c;
    struct agent *ag = r->ns[i].agent;
    if (ag && !(ag->deadline && engine_mono_ms() >= ag->deadline)) {
        o->pending = true; /* the loop goes on, or ended itself */
        if (look_at_children(ag) != 0)
            return;
        if (ag->running == 0)
            tools_done(ag);
        else
            arm(ag);
        return;
    }
    outcome_fail(o, "TIMEOUT", false, "the agent ran longer than its %lld ms timeout",
                 r->d->nodes[i].timeout_ms);
    if (!ag)
        return;
    kind_agent_cancel(lp, r, i);
    r->ns[i].child[0] = '\0';
    engine_budget_settle(r, i, 0);
    spend_into(ag, &r->ns[i], o);
    o->output = output_of(ag);
    r->ns[i].agent = NULL;
    agent_free(ag);
}
