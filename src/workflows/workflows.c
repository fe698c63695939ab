/*
 * workflows.c - access rules, cached single reads, and the writes of the
 * workflow service (see workflows.h for the rules).
 */
#include "workflows/wf_int.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/str.h"
#include "credentials/credentials.h"
#include "engine/engine.h"
#include "infra/cache_item.h"
#include "infra/lock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEM_NS "wf"
#define BRIEF_NS "wb" /* workflows_brief: changes of the analytics leave it */
#define ITEM_MAGIC "W1"
#define ITEM_FIELDS 5 /* version, owner, editors, viewers, json */
#define EMPTY_DEFINITION "{\"nodes\":[],\"edges\":[]}"
#define COPY_SUFFIX " (copy)"
#define NAME_MAX_CHARS 200

/* ---- JSON ---- */

/* The JSON value of trusted text from the store, or fallback's. */
static json_t *parse_stored(const char *text, const char *fallback)
{
    json_t *v = json_loads(text && *text ? text : fallback, JSON_DECODE_ANY, NULL);
    return v ? v : json_loads(fallback, JSON_DECODE_ANY, NULL);
}

static json_t *analytics_json(const store_wf_analytics *an)
{
    long long avg = an->duration_count
                        ? llround((double)an->duration_ms_total / (double)an->duration_count)
                        : 0;
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:f, s:s?}", "executionCount",
                     (json_int_t)an->execution_count, "successCount",
                     (json_int_t)an->success_count, "failureCount",
                     (json_int_t)an->failure_count, "avgDurationMs", (json_int_t)avg,
                     "totalTokens", (json_int_t)an->total_tokens, "totalCostUsd",
                     an->total_cost_usd, "lastExecutedAt",
                     an->last_executed_at[0] ? an->last_executed_at : NULL);
}

json_t *wf_to_json(const store_workflow *w)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:s}", "id", w->id, "name", w->name,
                          "description", w->description, "tags", parse_stored(w->tags, "[]"),
                          "status", w->status);
    if (w->definition)
        json_object_set_new(o, "definition", parse_stored(w->definition, EMPTY_DEFINITION));
    json_object_set_new(o, "settings", parse_stored(w->settings, "{}"));
    json_object_set_new(o, "version", json_integer(w->version));
    json_object_set_new(o, "ownerId", json_string(w->owner_id));
    json_object_set_new(o, "permissions",
                        json_pack("{s:o, s:o}", "editors", parse_stored(w->editors, "[]"),
                                  "viewers", parse_stored(w->viewers, "[]")));
    json_object_set_new(o, "analytics", analytics_json(&w->an));
    json_object_set_new(o, "createdAt", json_string(w->created_at));
    json_object_set_new(o, "updatedAt", json_string(w->updated_at));
    json_object_set_new(o, "createdBy", json_string(w->created_by));
    json_object_set_new(o, "updatedBy", json_string(w->updated_by));
    return o;
}

char *wf_dump(json_t *v, size_t *len, arena *a)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (!t)
        abort(); /* jansson fails only when out of memory; see mem.h */
    size_t n = strlen(t);
    char *out = arena_strndup(a, t, n);
    free(t);
    if (len)
        *len = n;
    return out;
}

long long wf_generation(const app_ctx *app)
{
    long long g = 0;
    cache_counter(app->cache, WF_GEN_KEY, &g);
    return g;
}

/* ---- access ---- */

/* Is the user id in the JSON array text of ids? Ids are UUIDs, so the quoted
 * id cannot match anything but a whole element. */
static bool listed(const char *ids, const char *id)
{
    char quoted[UUID_STR_LEN + 2];
    snprintf(quoted, sizeof(quoted), "\"%s\"", id);
    return ids && strstr(ids, quoted) != NULL;
}

static wf_access access_of(const wf_caller *c, const char *owner, const char *editors,
                           const char *viewers, bool *may_share)
{
    bool owns = strcmp(owner, c->id) == 0;
    *may_share = c->admin || (owns && !c->viewer);
    if (c->admin)
        return WF_ACCESS_WRITE;
    if (owns || listed(editors, c->id))
        return c->viewer ? WF_ACCESS_READ : WF_ACCESS_WRITE;
    return listed(viewers, c->id) ? WF_ACCESS_READ : WF_ACCESS_NONE;
}

/* Who may send an update (sharing: one with permissions). */
static aop_err update_rule(wf_access acc, bool may_share, bool sharing)
{
    if (acc == WF_ACCESS_NONE)
        return AOP_ERR_NOT_FOUND;
    if (acc != WF_ACCESS_WRITE || (sharing && !may_share))
        return AOP_ERR_FORBIDDEN;
    return AOP_OK;
}

aop_err workflows_may_update(const wf_view *v, bool sharing)
{
    return update_rule(v->access, v->may_share, sharing);
}

/* ---- the cached item: ITEM_MAGIC, then the fields, each ending in NUL ---- */

static void encode(const wf_view *v, const char *editors, const char *viewers, buf *b)
{
    char version[24];
    snprintf(version, sizeof(version), "%lld", v->version);
    const char *f[ITEM_FIELDS] = {version, v->owner_id, editors, viewers, v->json};
    buf_append(b, ITEM_MAGIC, sizeof(ITEM_MAGIC));
    for (int i = 0; i < ITEM_FIELDS; i++)
        buf_append(b, f[i], strlen(f[i]) + 1);
}

/* 0 when p[0..len) is a whole item; strings are copied into a. */
static int decode(const char *p, size_t len, wf_view *v, char **editors, char **viewers,
                  arena *a)
{
    const char *f[ITEM_FIELDS], *end = p + len;
    if (len < sizeof(ITEM_MAGIC) || memcmp(p, ITEM_MAGIC, sizeof(ITEM_MAGIC)) != 0)
        return -1;
    p += sizeof(ITEM_MAGIC);
    for (int i = 0; i < ITEM_FIELDS; i++) {
        const char *nul = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
        if (!nul)
            return -1;
        f[i] = p;
        p = nul + 1;
    }
    memset(v, 0, sizeof(*v));
    if (str_to_ll(f[0], 1, INT64_MAX, &v->version) != 0)
        return -1;
    str_copy(v->owner_id, sizeof(v->owner_id), f[1]);
    *editors = arena_strdup(a, f[2]);
    *viewers = arena_strdup(a, f[3]);
    v->json = arena_strdup(a, f[4]);
    v->len = strlen(v->json);
    return 0;
}

/* Fills the parts of *v that do not depend on the caller. */
static void view_of(const store_workflow *w, wf_view *v, arena *a)
{
    memset(v, 0, sizeof(*v));
    v->json = wf_dump(wf_to_json(w), &v->len, a);
    v->version = w->version;
    str_copy(v->owner_id, sizeof(v->owner_id), w->owner_id);
}

/* The brief view's JSON: what starting an execution reads. */
static void brief_of(const store_workflow *w, wf_view *v, arena *a)
{
    memset(v, 0, sizeof(*v));
    v->json = wf_dump(json_pack("{s:s, s:o}", "status", w->status, "settings",
                                parse_stored(w->settings, "{}")),
                      &v->len, a);
    v->version = w->version;
    str_copy(v->owner_id, sizeof(v->owner_id), w->owner_id);
}

/* workflows_view (full) or workflows_brief, each its own cached item. */
static aop_err view_item(const app_ctx *app, const wf_caller *c, const char *id, bool full,
                         wf_view *out, arena *a)
{
    cache_slot slot;
    char *item = NULL, *editors = NULL, *viewers = NULL;
    size_t len = 0;
    if (!ids_uuid_ok(id))
        return AOP_ERR_NOT_FOUND;
    const char *ns = full ? ITEM_NS : BRIEF_NS;
    int hit = cache_item_get(app->cache, ns, id, &slot, &item, &len) == AOP_OK &&
              decode(item, len, out, &editors, &viewers, a) == 0;
    free(item);
    if (!hit) {
        store_workflow w;
        aop_err rc = store_workflow_get(app->store, id, &w, a);
        if (rc != AOP_OK)
            return rc;
        if (full)
            view_of(&w, out, a);
        else
            brief_of(&w, out, a);
        editors = w.editors;
        viewers = w.viewers;
        buf b;
        buf_init(&b, 0);
        encode(out, editors, viewers, &b);
        cache_item_fill(app->cache, &slot, b.data, b.len, WF_TTL_MS);
        buf_free(&b);
    }
    str_copy(out->id, sizeof(out->id), id);
    out->access = access_of(c, out->owner_id, editors, viewers, &out->may_share);
    return out->access == WF_ACCESS_NONE ? AOP_ERR_NOT_FOUND : AOP_OK;
}

aop_err workflows_view(const app_ctx *app, const wf_caller *c, const char *id, wf_view *out,
                       arena *a)
{
    return view_item(app, c, id, true, out, a);
}

aop_err workflows_brief(const app_ctx *app, const wf_caller *c, const char *id, wf_view *out,
                        arena *a)
{
    return view_item(app, c, id, false, out, a);
}

aop_err workflows_reach(const app_ctx *app, const wf_caller *c, const char *id, bool write,
                        arena *a)
{
    wf_view v;
    aop_err rc = workflows_brief(app, c, id, &v, a);
    if (rc != AOP_OK)
        return rc;
    return write && v.access != WF_ACCESS_WRITE ? AOP_ERR_FORBIDDEN : AOP_OK;
}

/* ---- writes ---- */

typedef struct {
    const app_ctx *app;
    const wf_caller *c;
    const char *id;
    const wf_input *in;
    store_workflow w;   /* the state written */
    char *json;         /* its JSON text */
    size_t len;
    arena *a;
} write_ctx;

/* The compact text of a borrowed JSON value, or keep when v is NULL. */
static char *text_or(const json_t *v, char *keep, arena *a)
{
    return v ? wf_dump(json_incref((json_t *)v), NULL, a) : keep;
}

static void apply(store_workflow *w, const wf_input *in, arena *a)
{
    if (in->name)
        w->name = arena_strdup(a, in->name);
    if (in->description)
        w->description = arena_strdup(a, in->description);
    if (in->status)
        w->status = arena_strdup(a, in->status);
    w->tags = text_or(in->tags, w->tags, a);
    w->definition = text_or(in->definition, w->definition, a);
    w->settings = text_or(in->settings, w->settings, a);
    w->editors = text_or(in->editors, w->editors, a);
    w->viewers = text_or(in->viewers, w->viewers, a);
}

/* Appends w's state to its history; its JSON text lands in x. */
static aop_err append_version(store *s, write_ctx *x)
{
    store_workflow *w = &x->w;
    x->json = wf_dump(wf_to_json(w), &x->len, x->a);
    store_wf_version v = {.version = w->version, .name = w->name};
    str_copy(v.updated_by, sizeof(v.updated_by), w->updated_by);
    str_copy(v.created_at, sizeof(v.created_at), w->updated_at);
    return store_workflow_version_insert(s, w->id, &v, x->json);
}

static aop_err insert_tx(store *s, void *p)
{
    write_ctx *x = p;
    aop_err rc = store_workflow_insert(s, &x->w);
    return rc == AOP_OK ? append_version(s, x) : rc;
}

/* Whether conf.workflowId (a workflow node's, an agent tool's) names a
 * workflow owner_id may execute; a problem at field in details if not. */
static aop_err check_child(store *s, const char *owner_id, const json_t *conf, const char *field,
                           json_t *details, arena *a)
{
    const char *id = json_string_value(json_object_get(conf, "workflowId"));
    if (!id || !ids_uuid_ok(id))
        return AOP_OK; /* the definition's own checks report it */
    store_workflow w;
    aop_err e = store_workflow_get(s, id, &w, a);
    if (e != AOP_OK && e != AOP_ERR_NOT_FOUND)
        return e;
    if (e == AOP_OK && engine_may_execute(s, owner_id, &w))
        return AOP_OK;
    json_array_append_new(details, json_pack("{s:s, s:s}", "field", field, "message",
                                             "names no workflow the workflow's owner may execute"));
    return AOP_OK;
}

/* The workflow nodes and the agents' workflow tools of definition name
 * workflows that owner_id may execute; else a problem each in details and
 * AOP_ERR_VALIDATION. */
static aop_err check_children(store *s, const char *owner_id, const json_t *definition,
                              json_t *details)
{
    json_t *own = details ? NULL : json_array();
    details = details ? details : own;
    const json_t *nodes = json_object_get(definition, "nodes"), *node;
    size_t i, before = json_array_size(details);
    arena a = {0};
    aop_err rc = AOP_OK;
    char field[96];
    json_array_foreach(nodes, i, node) {
        const char *kind = json_string_value(json_object_get(node, "type"));
        const json_t *conf = json_object_get(node, "config");
        if (kind && !strcmp(kind, "workflow")) {
            snprintf(field, sizeof(field), "definition.nodes[%zu].config.workflowId", i);
            rc = check_child(s, owner_id, conf, field, details, &a);
        }
        const json_t *tools = kind && !strcmp(kind, "agent") ? json_object_get(conf, "tools") : NULL;
        for (size_t k = 0; rc == AOP_OK && k < json_array_size(tools); k++) {
            snprintf(field, sizeof(field), "definition.nodes[%zu].config.tools[%zu].workflowId", i,
                     k);
            rc = check_child(s, owner_id, json_array_get(tools, k), field, details, &a);
        }
        if (rc != AOP_OK)
            break;
    }
    arena_free(&a);
    if (rc == AOP_OK && json_array_size(details) > before)
        rc = AOP_ERR_VALIDATION;
    json_decref(own);
    return rc;
}

static aop_err update_tx(store *s, void *p)
{
    write_ctx *x = p;
    store_workflow *w = &x->w;
    bool may_share = false;
    aop_err rc = store_workflow_get(s, x->id, w, x->a);
    if (rc != AOP_OK)
        return rc;
    wf_access acc = access_of(x->c, w->owner_id, w->editors, w->viewers, &may_share);
    rc = update_rule(acc, may_share, x->in->editors || x->in->viewers);
    if (rc != AOP_OK)
        return rc;
    if (x->in->has_version && x->in->version != w->version)
        return AOP_ERR_VERSION_CONFLICT;
    if (x->in->definition && (rc = credentials_check_definition(x->app, w->owner_id,
                                                                x->in->definition,
                                                                x->in->problems)) != AOP_OK)
        return rc;
    if (x->in->definition &&
        (rc = check_children(s, w->owner_id, x->in->definition, x->in->problems)) != AOP_OK)
        return rc;
    long long read = w->version;
    apply(w, x->in, x->a);
    w->version = read + 1;
    str_copy(w->updated_by, sizeof(w->updated_by), x->c->id);
    clock_format_rfc3339(clock_now_ms(), w->updated_at);
    rc = store_workflow_update(s, w, read);
    return rc == AOP_OK ? append_version(s, x) : rc;
}

/* After a committed write of id: no cached copy of it or of any list may be
 * read again. */
void workflows_counted(const app_ctx *app, const char *id)
{
    long long g = 0;
    cache_item_changed(app->cache, ITEM_NS, id, WF_TTL_MS);
    if (cache_incr(app->cache, WF_GEN_KEY, &g) != AOP_OK)
        log_warn("cannot bump the workflow list generation", LF_S("workflowId", id));
}

void workflows_changed(const app_ctx *app, const char *id)
{
    cache_item_changed(app->cache, BRIEF_NS, id, WF_TTL_MS);
    workflows_counted(app, id);
}

/* The view of what x wrote, for its author. */
static void written_view(const write_ctx *x, wf_view *out)
{
    memset(out, 0, sizeof(*out));
    out->json = x->json;
    out->len = x->len;
    out->version = x->w.version;
    str_copy(out->id, sizeof(out->id), x->w.id);
    str_copy(out->owner_id, sizeof(out->owner_id), x->w.owner_id);
    out->access = access_of(x->c, x->w.owner_id, x->w.editors, x->w.viewers, &out->may_share);
}

/* Inserts x->w (a new workflow, version 1) with its first history entry. */
static aop_err insert_new(const app_ctx *app, write_ctx *x, wf_view *out)
{
    store_workflow *w = &x->w;
    ids_uuid7(w->id);
    w->version = 1;
    str_copy(w->owner_id, sizeof(w->owner_id), x->c->id);
    str_copy(w->created_by, sizeof(w->created_by), x->c->id);
    str_copy(w->updated_by, sizeof(w->updated_by), x->c->id);
    clock_format_rfc3339(clock_now_ms(), w->created_at);
    str_copy(w->updated_at, sizeof(w->updated_at), w->created_at);
    memset(&w->an, 0, sizeof(w->an));
    aop_err rc = store_tx(app->store, insert_tx, x);
    if (rc != AOP_OK)
        return rc;
    workflows_changed(app, w->id);
    written_view(x, out);
    return AOP_OK;
}

aop_err workflows_create(const app_ctx *app, const wf_caller *c, const wf_input *in,
                         wf_view *out, arena *a)
{
    write_ctx x = {.c = c, .in = in, .a = a};
    store_workflow *w = &x.w;
    w->name = "";
    w->description = "";
    w->status = "draft";
    w->tags = "[]";
    w->definition = EMPTY_DEFINITION;
    w->settings = "{}";
    if (in->definition) {
        aop_err rc = credentials_check_definition(app, c->id, in->definition, in->problems);
        if (rc == AOP_OK)
            rc = check_children(app->store, c->id, in->definition, in->problems);
        if (rc != AOP_OK)
            return rc;
    }
    apply(w, in, a);
    w->editors = "[]"; /* permissions are set by an update */
    w->viewers = "[]";
    return insert_new(app, &x, out);
}

/* Runs fn inside a transaction while holding id's lock; on success the
 * caches learn of the change before the lock goes. */
static aop_err under_lock(const app_ctx *app, const char *id, store_tx_fn fn, void *ctx)
{
    char key[64], token[LOCK_TOKEN_LEN];
    snprintf(key, sizeof(key), "wf:%s", id);
    aop_err rc = lock_acquire(app->locks, key, WF_LOCK_TTL_MS, app->cfg->lock_wait_ms, token);
    if (rc != AOP_OK)
        return rc;
    rc = store_tx(app->store, fn, ctx);
    if (rc == AOP_OK)
        workflows_changed(app, id);
    lock_release(app->locks, key, token);
    return rc;
}

aop_err workflows_update(const app_ctx *app, const wf_caller *c, const char *id,
                         const wf_input *in, wf_view *out, arena *a)
{
    if (!ids_uuid_ok(id))
        return AOP_ERR_NOT_FOUND;
    write_ctx x = {.app = app, .c = c, .id = id, .in = in, .a = a};
    aop_err rc = under_lock(app, id, update_tx, &x);
    if (rc == AOP_OK)
        written_view(&x, out);
    return rc;
}

typedef struct {
    const char *id, *by;
} delete_ctx;

static aop_err delete_tx(store *s, void *p)
{
    delete_ctx *d = p;
    char now[25];
    clock_format_rfc3339(clock_now_ms(), now);
    return store_workflow_delete(s, d->id, d->by, now);
}

aop_err workflows_delete(const app_ctx *app, const wf_caller *c, const char *id)
{
    if (!ids_uuid_ok(id))
        return AOP_ERR_NOT_FOUND;
    delete_ctx d = {.id = id, .by = c->id};
    return under_lock(app, id, delete_tx, &d);
}

/* "<name> (copy)", the name cut so the whole fits NAME_MAX_CHARS. */
static char *copy_name(const char *name, arena *a)
{
    size_t keep = str_utf8_prefix(name, NAME_MAX_CHARS - (sizeof(COPY_SUFFIX) - 1));
    return arena_printf(a, "%.*s%s", (int)keep, name, COPY_SUFFIX);
}

aop_err workflows_duplicate(const app_ctx *app, const wf_caller *c, const wf_view *src,
                            const char *name, json_t *problems, wf_view *out, arena *a)
{
    wf_input none = {0};
    write_ctx x = {.c = c, .in = &none, .a = a};
    aop_err rc = store_workflow_get(app->store, src->id, &x.w, a); /* every field */
    json_t *def = rc == AOP_OK ? json_loads(x.w.definition, 0, NULL) : NULL;
    if (def)
        rc = credentials_check_definition(app, c->id, def, problems);
    json_decref(def);
    if (rc != AOP_OK)
        return rc;
    x.w.name = name ? arena_strdup(a, name) : copy_name(x.w.name, a);
    x.w.editors = "[]";
    x.w.viewers = "[]";
    return insert_new(app, &x, out);
}
