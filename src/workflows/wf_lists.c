/*
 * wf_lists.c - the workflow service's collection reads: lists, version
 * history, the admin summary. Lists and the summary are cached as response
 * text under keys holding the list generation (see workflows.h).
 */
#include "workflows/wf_int.h"
#include "core/clock.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUMMARY_WINDOW_MS (7LL * 24 * 3600 * 1000)

/* A cached response text under key, copied into the arena; 0 on a miss. */
static int cached_text(const app_ctx *app, const char *key, char **json, size_t *len, arena *a)
{
    char *v = NULL;
    if (cache_get(app->cache, key, &v, len) != AOP_OK)
        return 0;
    *json = arena_strndup(a, v, *len);
    free(v);
    return 1;
}

/* Appends "<length>:<text>|" so that no two filter sets share a key. */
static char *key_part(const char *s, arena *a)
{
    return s ? arena_printf(a, "%zu:%s|", strlen(s), s) : "-|";
}

static char *list_key(long long gen, const store_wf_query *q, long long page, arena *a)
{
    static const char *const sorts[] = {"c", "u", "n"};
    return arena_printf(a, "wfl:%lld:%s:%s%s%s%s%s%s:%lld:%lld", gen,
                        q->reader ? q->reader : "*", key_part(q->status, a), key_part(q->tag, a),
                        key_part(q->owner_id, a), key_part(q->search, a), sorts[q->sort],
                        q->desc ? "-" : "+", page, q->limit);
}

aop_err workflows_list(const app_ctx *app, const wf_caller *c, store_wf_query *q,
                       long long page, char **json, size_t *len, arena *a)
{
    q->reader = c->admin ? NULL : c->id;
    long long gen = wf_generation(app); /* before the store read: see workflows.h */
    char *key = list_key(gen, q, page, a);
    if (cached_text(app, key, json, len, a))
        return AOP_OK;
    store_workflow *rows = NULL;
    int n = 0;
    long long total = 0;
    aop_err rc = store_workflow_list(app->store, q, &rows, &n, &total, a);
    if (rc != AOP_OK)
        return rc;
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, wf_to_json(&rows[i])); /* without definition */
    *json = wf_dump(json_list_page(data, page, q->limit, total), len, a);
    cache_add(app->cache, key, *json, *len, WF_LIST_TTL_MS);
    return AOP_OK;
}

aop_err workflows_versions(const app_ctx *app, const wf_caller *c, const char *id,
                           long long offset, long long limit, store_wf_version **out, int *n,
                           long long *total, arena *a)
{
    wf_view v;
    aop_err rc = workflows_view(app, c, id, &v, a);
    if (rc != AOP_OK)
        return rc;
    return store_workflow_version_list(app->store, id, offset, limit, out, n, total, a);
}

aop_err workflows_version(const app_ctx *app, const wf_caller *c, const char *id,
                          long long version, char **json, size_t *len, arena *a)
{
    wf_view v;
    aop_err rc = workflows_view(app, c, id, &v, a);
    if (rc != AOP_OK)
        return rc;
    if (version == v.version) {
        *json = v.json;
        *len = v.len;
        return AOP_OK;
    }
    if (version < 1 || version > v.version)
        return AOP_ERR_NOT_FOUND;
    rc = store_workflow_version_get(app->store, id, version, json, a);
    if (rc == AOP_OK)
        *len = strlen(*json);
    return rc;
}

static json_t *top_json(const store_wf_top *t, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:f}", "workflowId", t[i].id,
                                             "name", t[i].name, "executions",
                                             (json_int_t)t[i].executions, "costUsd",
                                             t[i].cost_usd));
    return arr;
}

aop_err workflows_summary(const app_ctx *app, char **json, size_t *len, arena *a)
{
    char *key = arena_printf(a, "wfs:%lld", wf_generation(app));
    if (cached_text(app, key, json, len, a))
        return AOP_OK;
    char since[25];
    clock_format_rfc3339(clock_now_ms() - SUMMARY_WINDOW_MS, since);
    store_wf_summary s;
    aop_err rc = store_workflow_summary(app->store, since, &s, a);
    if (rc != AOP_OK)
        return rc;
    json_t *o = json_pack(
        "{s:I, s:{s:I, s:I, s:I}, s:I, s:o, s:o}", "totalWorkflows", (json_int_t)s.total,
        "byStatus", "draft", (json_int_t)s.draft, "active", (json_int_t)s.active, "archived",
        (json_int_t)s.archived, "createdLast7Days", (json_int_t)s.created_since,
        "topByExecutions", top_json(s.by_executions, s.n_by_executions), "topByCost",
        top_json(s.by_cost, s.n_by_cost));
    *json = wf_dump(o, len, a);
    cache_add(app->cache, key, *json, *len, WF_SUMMARY_TTL_MS);
    return AOP_OK;
}
