/*
 * executions.c - execution history: start, read, cancel, delete, lists and
 * analytics, as JSON for the API.
 */
#include "executions/executions.h"
#include "engine/exec_event.h"
#include "executions/live.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "engine/engine.h"
#include "infra/cache.h"
#include "infra/cache_item.h"

#define ITEM_NS "ex"

/* ---- JSON ---- */

static json_t *time_or_null(const char *t)
{
    return t && t[0] ? json_string(t) : json_null();
}

static json_t *text_json(const char *text)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

static json_t *usage_json(long long prompt, long long completion)
{
    return json_pack("{s:I, s:I, s:I}", "promptTokens", (json_int_t)prompt, "completionTokens",
                     (json_int_t)completion, "totalTokens", (json_int_t)(prompt + completion));
}

/* The execution as a list shows it: without "input", "output" and
 * "nodes", so a page of a list never parses the documents of its items. */
static json_t *execution_json(const store_execution *e)
{
    bool ended = e->finished_at[0] != '\0';
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:f, s:s}", "id",
        e->id, "workflowId", e->workflow_id, "workflowVersion", (json_int_t)e->workflow_version,
        "status", exec_status_name(e->status), "trigger", e->trigger, "triggeredBy",
        e->triggered_by[0] ? json_string(e->triggered_by) : json_null(), "input",
        json_null(), "error", text_json(e->error), "startedAt",
        time_or_null(e->started_at), "finishedAt", time_or_null(e->finished_at), "durationMs",
        ended && e->duration_ms >= 0 ? json_integer(e->duration_ms) : json_null(), "memoryBytes",
        (json_int_t)e->memory_bytes, "usage", usage_json(e->prompt_tokens, e->completion_tokens),
        "costUsd", e->cost_usd, "createdAt", e->created_at);
    if (o && e->trigger_id[0])
        json_object_set_new(o, "triggerId", json_string(e->trigger_id));
    if (o && e->scheduled_for[0])
        json_object_set_new(o, "scheduledFor", json_string(e->scheduled_for));
    if (o) {
        json_object_set_new(o, "parentExecutionId", e->parent_execution_id[0]
                                                        ? json_string(e->parent_execution_id)
                                                        : json_null());
        json_object_set_new(o, "rootExecutionId", e->root_execution_id[0]
                                                      ? json_string(e->root_execution_id)
                                                      : json_null());
        json_object_set_new(o, "depth", json_integer(e->depth));
    }
    json_object_del(o, "input"); /* packed above only to keep the key order */
    return o;
}

static int put_usage(buf *b, long long prompt, long long completion)
{
    int rc = buf_puts(b, ",\"usage\":{");
    rc |= json_put_int(b, "promptTokens", prompt, 1);
    rc |= json_put_int(b, "completionTokens", completion, 0);
    rc |= json_put_int(b, "totalTokens", prompt + completion, 0);
    return rc | buf_puts(b, "}");
}

static int put_time(buf *b, const char *key, const char *t)
{
    return json_put_str(b, key, t[0] ? t : NULL, 0);
}

static int put_node(buf *b, const store_exec_node *n)
{
    int rc = json_put_str(b, "nodeId", n->node_id, 1);
    rc |= json_put_str(b, "type", n->type, 0);
    rc |= json_put_str(b, "status", exec_status_name(n->status), 0);
    rc |= json_put_int(b, "attempts", n->attempts, 0);
    rc |= put_time(b, "startedAt", n->started_at);
    rc |= put_time(b, "finishedAt", n->finished_at);
    rc |= n->duration_ms >= 0 ? json_put_int(b, "durationMs", n->duration_ms, 0)
                              : json_put_raw(b, "durationMs", NULL, 0);
    rc |= put_usage(b, n->prompt_tokens, n->completion_tokens);
    rc |= json_put_real(b, "costUsd", n->cost_usd, 0);
    rc |= json_put_str(b, "model", n->model && n->model[0] ? n->model : NULL, 0);
    rc |= json_put_raw(b, "error", n->error, 0);
    return rc | json_put_raw(b, "output", n->output, 0);
}

/* The whole execution as text, written straight (the keys in the order
 * execution_json has them): the stored
 * documents (input, output, errors, node outputs: jansson's compact text
 * as the engine wrote it) are copied, not parsed and encoded again. */
static int full_text(buf *b, const store_execution *e, const store_exec_node *nodes, int n)
{
    bool ended = e->finished_at[0] != '\0';
    int rc = buf_puts(b, "{");
    rc |= json_put_str(b, "id", e->id, 1);
    rc |= json_put_str(b, "workflowId", e->workflow_id, 0);
    rc |= json_put_int(b, "workflowVersion", e->workflow_version, 0);
    rc |= json_put_str(b, "status", exec_status_name(e->status), 0);
    rc |= json_put_str(b, "trigger", e->trigger, 0);
    rc |= json_put_str(b, "triggeredBy", e->triggered_by[0] ? e->triggered_by : NULL, 0);
    rc |= json_put_raw(b, "input", e->input, 0);
    rc |= json_put_raw(b, "error", e->error, 0);
    rc |= put_time(b, "startedAt", e->started_at);
    rc |= put_time(b, "finishedAt", e->finished_at);
    rc |= ended && e->duration_ms >= 0 ? json_put_int(b, "durationMs", e->duration_ms, 0)
                                       : json_put_raw(b, "durationMs", NULL, 0);
    rc |= json_put_int(b, "memoryBytes", e->memory_bytes, 0);
    rc |= put_usage(b, e->prompt_tokens, e->completion_tokens);
    rc |= json_put_real(b, "costUsd", e->cost_usd, 0);
    rc |= json_put_str(b, "createdAt", e->created_at, 0);
    if (e->trigger_id[0])
        rc |= json_put_str(b, "triggerId", e->trigger_id, 0);
    if (e->scheduled_for[0])
        rc |= json_put_str(b, "scheduledFor", e->scheduled_for, 0);
    rc |= put_time(b, "parentExecutionId", e->parent_execution_id);
    rc |= put_time(b, "rootExecutionId", e->root_execution_id);
    rc |= json_put_int(b, "depth", e->depth, 0);
    rc |= json_put_raw(b, "output", e->output, 0);
    rc |= buf_puts(b, ",\"nodes\":[");
    for (int i = 0; i < n; i++) {
        rc |= buf_puts(b, i ? ",{" : "{");
        rc |= put_node(b, &nodes[i]);
        rc |= buf_puts(b, "}");
    }
    return rc | buf_puts(b, "]}");
}

static char *dump(json_t *v, size_t *len, arena *a)
{
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!s)
        return NULL;
    *len = strlen(s);
    char *out = arena_strndup(a, s, *len);
    free(s);
    return out;
}

/* ---- access ---- */

static aop_err may_reach(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                         bool write, arena *a)
{
    return c->admin ? AOP_OK : workflows_reach(app, c, workflow_id, write, a);
}

static aop_err read_row(const app_ctx *app, const wf_caller *c, const char *id, bool write,
                        store_execution *row, arena *a)
{
    if (!ids_uuid_ok(id))
        return AOP_ERR_NOT_FOUND;
    aop_err rc = store_execution_get(app->store, id, row, a);
    return rc == AOP_OK ? may_reach(app, c, row->workflow_id, write, a) : rc;
}

aop_err executions_check_read(const app_ctx *app, const wf_caller *c, const char *id)
{
    arena a = {0};
    store_execution row;
    aop_err rc = read_row(app, c, id, false, &row, &a);
    arena_free(&a);
    return rc;
}

/* ---- start ---- */

static long long setting(const json_t *settings, const char *key, long long def)
{
    const json_t *v = json_object_get(settings, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : def;
}

/* Member key of the workflow v (parsed alone, a new reference), or NULL. */
static json_t *wf_member(const wf_view *v, const char *key)
{
    const char *p;
    size_t n;
    return json_member_text(v->json, v->len, key, &p, &n) == 0
               ? json_loadb(p, n, JSON_DECODE_ANY, NULL)
               : NULL;
}

/* The queued row of v's current version for user_id. */
static void fill_row(const wf_view *v, const char *user_id, const json_t *input,
                     store_execution *out, arena *a)
{
    json_t *settings = wf_member(v, "settings");
    memset(out, 0, sizeof(*out));
    ids_uuid7(out->id);
    str_copy(out->workflow_id, sizeof(out->workflow_id), v->id);
    out->workflow_version = v->version;
    out->status = EXEC_QUEUED;
    str_copy(out->trigger, sizeof(out->trigger), "api");
    str_copy(out->triggered_by, sizeof(out->triggered_by), user_id);
    out->timeout_ms = setting(settings, "timeoutMs", EXEC_DEFAULT_TIMEOUT_MS);
    out->max_concurrency = setting(settings, "maxConcurrency", 0);
    char *text = input ? json_dumps(input, JSON_COMPACT) : NULL;
    out->input = arena_strdup(a, text ? text : "{}");
    free(text);
    clock_format_rfc3339(clock_now_ms(), out->created_at);
    out->duration_ms = -1;
    json_decref(settings);
}

aop_err executions_prepare(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                           const json_t *input, store_execution *out, arena *a)
{
    wf_view v;
    aop_err rc = workflows_brief(app, c, workflow_id, &v, a);
    if (rc != AOP_OK)
        return rc;
    if (v.access != WF_ACCESS_WRITE)
        return AOP_ERR_FORBIDDEN;
    fill_row(&v, c->id, input, out, a);
    return AOP_OK;
}

aop_err executions_prepare_trigger(const app_ctx *app, const char *user_id,
                                   const char *workflow_id, const json_t *input,
                                   const char *trigger, const char *trigger_id,
                                   store_execution *out, arena *a)
{
    wf_caller c = {.id = user_id, .admin = true};
    wf_view v;
    aop_err rc = workflows_brief(app, &c, workflow_id, &v, a);
    if (rc != AOP_OK)
        return rc;
    json_t *status = wf_member(&v, "status");
    bool active = json_is_string(status) && !strcmp(json_string_value(status), "active");
    json_decref(status);
    if (active)
        fill_row(&v, user_id, input, out, a);
    if (!active)
        return AOP_ERR_WORKFLOW_INACTIVE;
    str_copy(out->trigger, sizeof(out->trigger), trigger);
    str_copy(out->trigger_id, sizeof(out->trigger_id), trigger_id);
    return AOP_OK;
}

typedef struct {
    const store_execution *row;
    long long quota;
} enqueue_ctx;

static aop_err enqueue_tx(store *s, void *p)
{
    const enqueue_ctx *x = p;
    long long active = -1;
    return store_execution_enqueue(s, x->row, x->quota, &active);
}

aop_err executions_start(const app_ctx *app, const store_execution *row, executions_start_fn fn,
                         void *ctx)
{
    long long quota = app->cfg->quota_active_executions;
    if (fn)
        return engine_submit(app->engine, row, quota, fn, ctx) == 0 ? AOP_OK
                                                                    : AOP_ERR_UNAVAILABLE;
    enqueue_ctx x = {row, quota};
    aop_err rc = store_tx(app->store, enqueue_tx, &x);
    if (rc == AOP_OK) { /* execution.queued before a loop can start it */
        engine_queued_event(app->engine, row);
        engine_events_committed(app->engine, row->id, 1, 1);
        engine_queued(app->engine);
    } else if (rc == AOP_ERR_QUOTA_EXCEEDED) {
        engine_refused_quota(app->engine);
    }
    return rc;
}

aop_err executions_start_wait(const app_ctx *app, const store_execution *row,
                              long long timeout_ms, executions_run_fn fn, void *ctx)
{
    return engine_submit_wait(app->engine, row, app->cfg->quota_active_executions, timeout_ms,
                              fn, ctx) == 0
               ? AOP_OK
               : AOP_ERR_UNAVAILABLE;
}

static bool ended(exec_status s)
{
    return s != EXEC_QUEUED && s != EXEC_RUNNING && s != EXEC_WAITING;
}

aop_err executions_wait(const app_ctx *app, const char *id, long long timeout_ms,
                        executions_fn fn, void *ctx)
{
    if (engine_wait(app->engine, id, timeout_ms, fn, ctx) != 0)
        return AOP_ERR_UNAVAILABLE;
    /* It may have ended (or begun to wait for an approval) before the wait
     * was registered. */
    store_execution now;
    arena a = {0};
    if (store_execution_get(app->store, id, &now, &a) != AOP_OK || ended(now.status) ||
        now.status == EXEC_WAITING)
        engine_notify(app->engine, id);
    arena_free(&a);
    return AOP_OK;
}

/* ---- read ---- */

/* Nodes in the order they started; those that did not (pending, skipped)
 * after them, in the order they were first written. */
static int by_start(const void *pa, const void *pb)
{
    const store_exec_node *x = pa, *y = pb;
    bool xs = x->started_at[0] != '\0', ys = y->started_at[0] != '\0';
    if (xs != ys)
        return xs ? -1 : 1;
    int c = xs ? strcmp(x->started_at, y->started_at) : 0;
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static aop_err full_json(const app_ctx *app, const store_execution *row, char **json, size_t *len,
                         arena *a)
{
    store_exec_node *nodes = NULL;
    int n = 0;
    aop_err rc = store_execution_nodes(app->store, row->id, &nodes, &n, a);
    if (rc != AOP_OK)
        return rc;
    if (n > 1)
        qsort(nodes, (size_t)n, sizeof(*nodes), by_start);
    buf b;
    buf_init(&b, 0);
    int bad = full_text(&b, row, nodes, n);
    *json = bad ? NULL : arena_strndup(a, b.data ? b.data : "", b.len);
    *len = b.len;
    buf_free(&b);
    return *json ? AOP_OK : AOP_ERR_INTERNAL;
}

/* The cached item: "<prune generation>\n<workflow id>\n<json>". Retention
 * deletes in bulk without knowing the ids; its generation retires every
 * item cached before. */
static long long prune_gen(const app_ctx *app)
{
    long long g = 0;
    return cache_counter(app->cache, EXEC_PRUNE_KEY, &g) == AOP_OK ? g : -1;
}

static bool cached(const app_ctx *app, const wf_caller *c, const char *id, cache_slot *slot,
                   char **json, size_t *len, arena *a, aop_err *rc)
{
    char *item = NULL;
    size_t n = 0;
    if (cache_item_get(app->cache, ITEM_NS, id, slot, &item, &n) != AOP_OK)
        return false;
    char wf[UUID_STR_LEN];
    long long gen = -1;
    int used = 0;
    bool ok = sscanf(item, "%lld\n%36[0-9a-f-]\n%n", &gen, wf, &used) == 2 && used > 0 &&
              gen >= 0 && gen == prune_gen(app);
    if (ok) {
        *rc = may_reach(app, c, wf, false, a);
        *len = n - (size_t)used;
        *json = arena_strndup(a, item + used, *len);
    }
    free(item);
    return ok;
}

/* row's JSON, cached in slot (from a miss) once it has ended. */
static aop_err row_json(const app_ctx *app, const store_execution *row, cache_slot *slot,
                        char **json, size_t *len, arena *a)
{
    aop_err rc = full_json(app, row, json, len, a);
    long long gen = prune_gen(app);
    if (rc == AOP_OK && ended(row->status) && gen >= 0) {
        buf b;
        buf_init(&b, 0);
        buf_printf(&b, "%lld\n%s\n", gen, row->workflow_id);
        buf_append(&b, *json, *len);
        cache_item_fill(app->cache, slot, b.data, b.len, EXEC_TTL_MS);
        buf_free(&b);
    }
    return rc;
}

aop_err executions_get(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                       size_t *len, arena *a)
{
    if (!ids_uuid_ok(id))
        return AOP_ERR_NOT_FOUND;
    cache_slot slot;
    aop_err rc = AOP_OK;
    if (cached(app, c, id, &slot, json, len, a, &rc))
        return rc;
    store_execution row;
    rc = read_row(app, c, id, false, &row, a);
    return rc == AOP_OK ? row_json(app, &row, &slot, json, len, a) : rc;
}

aop_err executions_result(const app_ctx *app, const wf_caller *c, const char *id,
                          exec_status *status, char **json, size_t *len, arena *a)
{
    store_execution row;
    *json = NULL;
    aop_err rc = store_execution_get(app->store, id, &row, a);
    if (rc != AOP_OK)
        return rc;
    *status = row.status;
    if (!ended(row.status))
        return AOP_OK;
    cache_slot slot;
    if (cached(app, c, id, &slot, json, len, a, &rc))
        return rc;
    rc = may_reach(app, c, row.workflow_id, false, a);
    return rc == AOP_OK ? row_json(app, &row, &slot, json, len, a) : rc;
}

/* ---- cancel and delete ---- */

void executions_changed(const app_ctx *app, const char *workflow_id, const char *id)
{
    long long g = 0;
    if (workflow_id)
        workflows_counted(app, workflow_id); /* its analytics */
    if (id)
        cache_item_changed(app->cache, ITEM_NS, id, EXEC_TTL_MS);
    if (cache_incr(app->cache, EXEC_GEN_KEY, &g) != AOP_OK)
        log_warn("cannot bump the execution analytics generation");
}

void executions_pruned(const app_ctx *app)
{
    long long g = 0;
    if (cache_incr(app->cache, EXEC_PRUNE_KEY, &g) != AOP_OK)
        log_warn("cannot bump the execution retention generation");
    executions_changed(app, NULL, NULL);
}

static void hook_changed(void *app, const char *workflow_id, const char *id)
{
    executions_changed(app, workflow_id, id);
}

static void hook_events(void *app, const char *workflow_id, const char *id,
                        const store_exec_event *ev, int n)
{
    live_events(((const app_ctx *)app)->live, workflow_id, id, ev, n);
}

static void hook_elsewhere(void *app, const char *id, long long first, long long last)
{
    live_elsewhere(((const app_ctx *)app)->live, id, first, last);
}

static void hook_pruned(void *app)
{
    executions_pruned(app);
}

static aop_err cancel_tree(const app_ctx *app, store_execution *row, int depth, arena *a);

/* A child its parent no longer waits for: cancelled with its own children. */
static void hook_cancel(void *app, const char *id)
{
    arena a = {0};
    store_execution row;
    if (store_execution_get(((const app_ctx *)app)->store, id, &row, &a) == AOP_OK && !ended(row.status) &&
        cancel_tree(app, &row, 0, &a) != AOP_OK)
        log_warn("cannot cancel a child execution", LF_S("executionId", id));
    arena_free(&a);
}

engine_hooks executions_hooks(const app_ctx *app)
{
    return (engine_hooks){.ctx = (void *)app,
                          .ended = hook_changed,
                          .changed = hook_changed,
                          .pruned = hook_pruned,
                          .events = hook_events,
                          .events_elsewhere = hook_elsewhere,
                          .cancel = hook_cancel};
}

typedef struct {
    store_execution *row; /* in: its id; out: the row as cancel_tx left it */
    arena *a;             /* the caller's: the row's texts live there */
    bool changed;
    store_exec_event *evs; /* the cancel's events (members malloc'd) */
    int nevs;
    char ts[25];           /* theirs: the cancel's time */
} cancel_ctx;

/* What the nodes that ran spent, and the state they held: the engine
 * writes these totals at the end, which a cancel takes over. */
static aop_err node_totals(store *s, store_execution *e, store_exec_node *nodes, int n)
{
    (void)s;
    e->prompt_tokens = e->completion_tokens = 0;
    e->cost_usd = 0;
    e->memory_bytes = (long long)strlen(e->input ? e->input : "");
    for (int i = 0; i < n; i++) {
        e->prompt_tokens += nodes[i].prompt_tokens;
        e->completion_tokens += nodes[i].completion_tokens;
        e->cost_usd += nodes[i].cost_usd;
        if (nodes[i].status == EXEC_SUCCEEDED && nodes[i].output)
            e->memory_bytes += (long long)strlen(nodes[i].output);
    }
    e->total_tokens = e->prompt_tokens + e->completion_tokens;
    return AOP_OK;
}

static void add_event(cancel_ctx *x, long long *seq, int64_t now, const char *type, json_t *f)
{
    x->evs = xrealloc(x->evs, sizeof(*x->evs) * (size_t)(x->nevs + 1));
    ++*seq;
    (void)now;
    x->evs[x->nevs++] = (store_exec_event){*seq, (char *)type, x->ts, exec_event_members(f)};
    json_decref(f);
}

static void node_cancelled(cancel_ctx *x, long long *seq, int64_t now, const char *node_id,
                           const char *status, json_t *duration, const store_exec_node *n)
{
    add_event(x, seq, now, "node.finished",
              json_pack("{s:s, s:s, s:o, s:o, s:f, s:o}", "nodeId", node_id, "status", status,
                        "durationMs", duration, "usage",
                        exec_event_usage(n ? n->prompt_tokens : 0, n ? n->completion_tokens : 0),
                        "costUsd", n ? n->cost_usd : 0.0, "error",
                        exec_event_error(n ? n->error : NULL)));
}

/* node.finished of each node that had not (running ones end cancelled,
 * the others skipped; a queued execution has no node rows yet, so its
 * definition names them), then execution.finished: after the events the
 * store holds (the row is locked by the finish). */
static aop_err cancel_events(store *s, cancel_ctx *x, const store_exec_node *nodes, int nn,
                             int64_t now)
{
    const store_execution *e = x->row;
    long long seq = 0;
    clock_format_rfc3339(now, x->ts);
    aop_err rc = store_execution_events_last(s, e->id, &seq);
    if (rc != AOP_OK)
        return rc;
    for (int i = 0; i < nn; i++) {
        const store_exec_node *n = &nodes[i];
        int64_t t = 0;
        if (n->status == EXEC_RUNNING || n->status == EXEC_WAITING)
            node_cancelled(x, &seq, now, n->node_id, "cancelled",
                           n->started_at[0] && !clock_parse_rfc3339(n->started_at, 0, &t)
                               ? json_integer(now - t > 0 ? now - t : 0)
                               : json_null(),
                           n);
        else if (n->status == EXEC_PENDING)
            node_cancelled(x, &seq, now, n->node_id, "skipped", json_null(), n);
    }
    char *snap = NULL;
    if (nn == 0 &&
        store_workflow_version_get(s, e->workflow_id, e->workflow_version, &snap, x->a) == AOP_OK) {
        json_t *v = json_loads(snap, 0, NULL);
        json_t *ns = json_object_get(json_object_get(v, "definition"), "nodes"), *node;
        size_t k;
        json_array_foreach(ns, k, node) {
            const char *id = json_string_value(json_object_get(node, "id"));
            if (id)
                node_cancelled(x, &seq, now, id, "skipped", json_null(), NULL);
        }
        json_decref(v);
    }
    add_event(x, &seq, now, "execution.finished",
              json_pack("{s:s, s:s, s:o, s:o, s:f, s:o}", "workflowId", e->workflow_id, "status",
                        "cancelled", "durationMs",
                        e->duration_ms >= 0 ? json_integer(e->duration_ms) : json_null(), "usage",
                        exec_event_usage(e->prompt_tokens, e->completion_tokens), "costUsd",
                        e->cost_usd, "error", exec_event_error(e->error)));
    return store_execution_events_add(s, e->id, x->evs, x->nevs);
}

static void cancel_events_free(cancel_ctx *x)
{
    for (int i = 0; i < x->nevs; i++)
        free(x->evs[i].members);
    free(x->evs);
    x->evs = NULL;
    x->nevs = 0;
}

/* Reads the row again inside the transaction and, unless it ended
 * meanwhile, writes its cancel. */
static aop_err cancel_tx(store *s, void *p)
{
    cancel_ctx *x = p;
    store_execution *e = x->row;
    char id[UUID_STR_LEN];
    str_copy(id, sizeof(id), e->id);
    x->changed = false;
    cancel_events_free(x); /* of an attempt that rolled back */
    aop_err rc = store_execution_get(s, id, e, x->a);
    if (rc != AOP_OK || ended(e->status))
        return rc;
    int64_t now = clock_now_ms(), started = 0;
    bool ran = e->started_at[0] && clock_parse_rfc3339(e->started_at, 0, &started) == 0;
    clock_format_rfc3339(now, e->finished_at);
    e->duration_ms = ran ? now - started : -1; /* never started: no duration */
    e->status = EXEC_CANCELLED;
    e->error = "{\"code\":\"CANCELLED\",\"message\":\"The execution was cancelled\","
               "\"nodeId\":null}";
    e->output = NULL;
    long long n = 0;
    store_exec_node *nodes = NULL;
    int nn = 0;
    rc = store_execution_nodes(s, e->id, &nodes, &nn, x->a);
    if (rc == AOP_OK)
        rc = node_totals(s, e, nodes, nn);
    if (rc == AOP_OK)
        rc = store_execution_finish(s, e);
    if (rc == AOP_OK)
        rc = cancel_events(s, x, nodes, nn, now);
    if (rc == AOP_OK)
        rc = store_execution_nodes_end(s, e->id, EXEC_RUNNING, EXEC_CANCELLED, e->finished_at, &n);
    if (rc == AOP_OK) /* at an approval */
        rc = store_execution_nodes_end(s, e->id, EXEC_WAITING, EXEC_CANCELLED, e->finished_at, &n);
    if (rc == AOP_OK) /* never reached: skipped, without a finish time */
        rc = store_execution_nodes_end(s, e->id, EXEC_PENDING, EXEC_SKIPPED, NULL, &n);
    if (rc == AOP_OK) /* its LLM calls in flight are aborted: what they hold goes back */
        rc = store_budget_release(s, e->id, &n);
    if (rc == AOP_OK)
        rc = store_workflow_analytics_add(s, e->workflow_id, EXEC_CANCELLED, e->duration_ms,
                                          e->total_tokens, e->cost_usd,
                                          ran ? e->started_at : NULL);
    x->changed = rc == AOP_OK;
    return rc;
}

/* Cancels row (not ended) and then its running children, theirs, and so
 * on (a tree is at most WORKFLOW_MAX_DEPTH deep, each level at most
 * CANCEL_CHILDREN_MAX wide per parent). */
#define CANCEL_CHILDREN_MAX 1000
static aop_err cancel_tree(const app_ctx *app, store_execution *row, int depth, arena *a)
{
    char id[UUID_STR_LEN];
    str_copy(id, sizeof(id), row->id);
    cancel_ctx x = {row, a, false, NULL, 0, ""};
    aop_err rc = store_tx(app->store, cancel_tx, &x);
    if (rc == AOP_OK && x.changed && x.nevs) {
        live_events(app->live, row->workflow_id, id, x.evs, x.nevs);
        engine_events_committed(app->engine, id, x.evs[0].seq, x.evs[x.nevs - 1].seq);
    }
    cancel_events_free(&x);
    if (rc != AOP_OK)
        return rc;
    if (x.changed) {
        engine_cancelled(app->engine, id);
        executions_changed(app, row->workflow_id, id);
        engine_wake(app->engine); /* its workflow's limit has room again */
    }
    char **kids = NULL;
    int n = 0;
    if (depth > 64 ||
        store_execution_children_active(app->store, id, CANCEL_CHILDREN_MAX, &kids, &n, a) !=
            AOP_OK)
        return AOP_OK; /* the children end by their root's deadline */
    for (int k = 0; k < n; k++) {
        store_execution kid;
        if (store_execution_get(app->store, kids[k], &kid, a) == AOP_OK && !ended(kid.status))
            cancel_tree(app, &kid, depth + 1, a);
    }
    return AOP_OK;
}

aop_err executions_cancel(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                          size_t *len, arena *a)
{
    store_execution row;
    aop_err rc = read_row(app, c, id, true, &row, a);
    if (rc != AOP_OK)
        return rc;
    if (!ended(row.status)) {
        rc = cancel_tree(app, &row, 0, a);
        if (rc != AOP_OK)
            return rc;
        rc = store_execution_get(app->store, id, &row, a);
        if (rc != AOP_OK)
            return rc;
    }
    return full_json(app, &row, json, len, a);
}

/* ---- approvals ---- */

typedef struct {
    const char *id, *node_id, *decision, *comment, *by;
} decide_ctx;

static aop_err decide_tx(store *s, void *p)
{
    const decide_ctx *x = p;
    int64_t now = clock_now_ms();
    char at[25];
    clock_format_rfc3339(now, at);
    return store_approval_decide(s, x->id, x->node_id, x->decision, x->comment, x->by, at, now);
}

aop_err executions_decide(const app_ctx *app, const wf_caller *c, const char *id,
                          const char *node_id, const char *decision, const char *comment,
                          char **json, size_t *len, arena *a)
{
    store_execution row;
    store_approval ap;
    aop_err rc = read_row(app, c, id, true, &row, a);
    if (rc == AOP_OK)
        rc = store_approval_get(app->store, id, node_id, &ap, a);
    if (rc != AOP_OK)
        return rc;
    decide_ctx x = {id, node_id, decision, comment, c->id};
    rc = store_tx(app->store, decide_tx, &x);
    if (rc != AOP_OK)
        return rc;
    engine_queued(app->engine); /* any instance's loop goes on with it */
    executions_changed(app, row.workflow_id, id);
    rc = store_execution_get(app->store, id, &row, a);
    return rc == AOP_OK ? full_json(app, &row, json, len, a) : rc;
}

static json_t *approval_json(const store_approval *ap)
{
    char expires[25];
    clock_format_rfc3339(ap->expires_at_ms, expires);
    return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:s}", "executionId", ap->execution_id,
                     "workflowId", ap->workflow_id, "workflowName", ap->workflow_name, "nodeId",
                     ap->node_id, "message", ap->message, "createdAt", ap->created_at,
                     "expiresAt", expires);
}

aop_err executions_approvals(const app_ctx *app, const wf_caller *c, long long offset,
                             long long limit, long long page, char **json, size_t *len,
                             arena *a)
{
    store_approval *rows = NULL;
    int n = 0;
    long long total = 0;
    if (c->viewer) /* decides nothing */
        return (*json = dump(json_list_page(json_array(), page, limit, 0), len, a))
                   ? AOP_OK
                   : AOP_ERR_INTERNAL;
    aop_err rc = store_approval_list(app->store, c->id, c->admin, offset, limit, &rows, &n,
                                     &total, a);
    if (rc != AOP_OK)
        return rc;
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, approval_json(&rows[i]));
    *json = dump(json_list_page(data, page, limit, total), len, a);
    return *json ? AOP_OK : AOP_ERR_INTERNAL;
}

/* The row and the reservations of its LLM calls together. */
static aop_err delete_tx(store *s, void *id)
{
    long long n = 0;
    aop_err rc = store_execution_delete(s, id);
    return rc == AOP_OK ? store_budget_release(s, id, &n) : rc;
}

aop_err executions_delete(const app_ctx *app, const char *id)
{
    if (!ids_uuid_ok(id))
        return AOP_ERR_NOT_FOUND;
    arena a = {0};
    store_execution row;
    aop_err rc = store_execution_get(app->store, id, &row, &a);
    if (rc == AOP_OK)
        rc = store_tx(app->store, delete_tx, (void *)id);
    if (rc == AOP_OK) {
        engine_forget(app->engine, id);
        live_deleted(app->live, id);
        executions_changed(app, NULL, id);
        engine_wake(app->engine);
    }
    arena_free(&a);
    return rc;
}

/* ---- lists ---- */

aop_err executions_list(const app_ctx *app, const wf_caller *c, store_exec_query *q,
                        long long page, char **json, size_t *len, arena *a)
{
    q->reader = c->admin ? NULL : c->id;
    store_execution *rows = NULL;
    int n = 0;
    long long total = 0;
    aop_err rc = store_execution_list(app->store, q, &rows, &n, &total, a);
    if (rc != AOP_OK)
        return rc;
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, execution_json(&rows[i]));
    *json = dump(json_list_page(data, page, q->limit, total), len, a);
    return *json ? AOP_OK : AOP_ERR_INTERNAL;
}

/* ---- analytics ---- */

static json_t *by_status_json(const long long *by)
{
    json_t *o = json_object();
    for (int s = 0; s < EXEC_RUN_STATUSES; s++)
        json_object_set_new(o, exec_status_name((exec_status)s), json_integer(by[s]));
    return o;
}

/* The fields stats and summary share. */
static void totals_json(json_t *o, const store_exec_totals *t)
{
    long long done = t->by_status[EXEC_SUCCEEDED] + t->by_status[EXEC_FAILED] +
                     t->by_status[EXEC_CANCELLED] + t->by_status[EXEC_TIMED_OUT];
    json_object_set_new(o, "totalExecutions", json_integer(t->total));
    json_object_set_new(o, "byStatus", by_status_json(t->by_status));
    json_object_set_new(o, "successRate",
                        json_real(done ? (double)t->by_status[EXEC_SUCCEEDED] / (double)done : 0));
    json_object_set_new(o, "durationMs",
                        json_pack("{s:f, s:I, s:I, s:I}", "avg", t->duration_avg, "p50",
                                  (json_int_t)t->duration_p50, "p95",
                                  (json_int_t)t->duration_p95, "max",
                                  (json_int_t)t->duration_max));
    json_object_set_new(o, "usage", usage_json(t->prompt_tokens, t->completion_tokens));
    json_object_set_new(o, "costUsd", json_real(t->cost_usd));
}

/* Cached under key (which holds the current generation) or built by fn. */
typedef aop_err (*build_fn)(const app_ctx *app, const void *arg, json_t **out, arena *a);

static aop_err through_cache(const app_ctx *app, const char *what, const void *arg, build_fn fn,
                             char **json, size_t *len, arena *a)
{
    long long gen = 0;
    char key[256];
    bool keyed = cache_counter(app->cache, EXEC_GEN_KEY, &gen) == AOP_OK;
    snprintf(key, sizeof(key), "exstat:%lld:%s", gen, what);
    char *hit = NULL;
    size_t n = 0;
    if (keyed && cache_get(app->cache, key, &hit, &n) == AOP_OK) {
        *json = arena_strndup(a, hit, n);
        *len = n;
        free(hit);
        return AOP_OK;
    }
    json_t *o = NULL;
    aop_err rc = fn(app, arg, &o, a);
    if (rc != AOP_OK)
        return rc;
    *json = dump(o, len, a);
    if (!*json)
        return AOP_ERR_INTERNAL;
    if (keyed)
        cache_set(app->cache, key, *json, *len, EXEC_STATS_TTL_MS);
    return AOP_OK;
}

static aop_err build_stats(const app_ctx *app, const void *arg, json_t **out, arena *a)
{
    const char *wf = arg;
    store_exec_totals t;
    store_exec_node_stat *nodes = NULL;
    int n = 0;
    aop_err rc = store_execution_stats(app->store, wf, &t, &nodes, &n, a);
    if (rc != AOP_OK)
        return rc;
    json_t *o = json_pack("{s:s}", "workflowId", wf);
    totals_json(o, &t);
    json_object_set_new(o, "lastExecutedAt", time_or_null(t.last_executed_at));
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:s, s:I, s:I, s:f, s:I, s:f}", "nodeId", nodes[i].node_id,
                           "executions", (json_int_t)nodes[i].executions, "failures",
                           (json_int_t)nodes[i].failures, "avgDurationMs",
                           nodes[i].avg_duration_ms, "totalTokens",
                           (json_int_t)nodes[i].total_tokens, "costUsd", nodes[i].cost_usd));
    json_object_set_new(o, "nodes", arr);
    *out = o;
    return AOP_OK;
}

aop_err executions_stats(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                         char **json, size_t *len, arena *a)
{
    wf_view v;
    aop_err rc = workflows_brief(app, c, workflow_id, &v, a);
    if (rc != AOP_OK)
        return rc;
    char what[64];
    snprintf(what, sizeof(what), "wf:%s", v.id);
    return through_cache(app, what, v.id, build_stats, json, len, a);
}

typedef struct {
    const char *from, *to;
} range;

static aop_err build_summary(const app_ctx *app, const void *arg, json_t **out, arena *a)
{
    const range *r = arg;
    store_exec_totals t;
    store_exec_model_stat *models = NULL;
    store_exec_day *days = NULL;
    store_wf_top *top = NULL;
    int nm = 0, nd = 0, nt = 0;
    aop_err rc = store_execution_summary(app->store, r->from, r->to, &t, &models, &nm, &days, &nd,
                                         &top, &nt, a);
    if (rc != AOP_OK)
        return rc;
    json_t *o = json_object();
    totals_json(o, &t);
    json_t *bm = json_array(), *bd = json_array(), *tw = json_array();
    for (int i = 0; i < nm; i++)
        json_array_append_new(bm, json_pack("{s:s, s:I, s:I, s:f}", "model", models[i].model,
                                            "calls", (json_int_t)models[i].calls, "totalTokens",
                                            (json_int_t)models[i].total_tokens, "costUsd",
                                            models[i].cost_usd));
    for (int i = 0; i < nd; i++)
        json_array_append_new(bd, json_pack("{s:s, s:I, s:I, s:f}", "date", days[i].date,
                                            "executions", (json_int_t)days[i].executions,
                                            "failures", (json_int_t)days[i].failures, "costUsd",
                                            days[i].cost_usd));
    for (int i = 0; i < nt; i++)
        json_array_append_new(tw, json_pack("{s:s, s:s, s:I, s:f}", "workflowId", top[i].id,
                                            "name", top[i].name ? top[i].name : "", "executions",
                                            (json_int_t)top[i].executions, "costUsd",
                                            top[i].cost_usd));
    json_object_set_new(o, "byModel", bm);
    json_object_set_new(o, "byDay", bd);
    json_object_set_new(o, "topWorkflows", tw);
    *out = o;
    return AOP_OK;
}

aop_err executions_summary(const app_ctx *app, const char *from, const char *to, char **json,
                           size_t *len, arena *a)
{
    range r = {from, to};
    char what[64];
    snprintf(what, sizeof(what), "sum:%s:%s", from ? from : "", to ? to : "");
    return through_cache(app, what, &r, build_summary, json, len, a);
}
