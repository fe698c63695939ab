/*
 * budgets.c - LLM spend budgets as the API shows them (budgets.h).
 */
#include "budgets/budgets.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/str.h"

static const char *const scopes[] = {"global", "user", "workflow", NULL};
static const char *const periods[] = {"day", "month", "total", NULL};

static bool one_of(const char *const *list, const char *s)
{
    for (int i = 0; s && list[i]; i++)
        if (!strcmp(list[i], s))
            return true;
    return false;
}

bool budgets_scope_ok(const char *s)
{
    return one_of(scopes, s);
}

bool budgets_period_ok(const char *s)
{
    return one_of(periods, s);
}

/* ---- JSON ---- */

static json_t *usd(long long nano)
{
    return json_real((double)nano / STORE_NANO_PER_USD);
}

/* b as it stands at ck: an ended period shows the current one, unspent. */
static json_t *budget_json(const store_budget *b, const store_budget_clock *ck)
{
    char start[25], end[25];
    long long spent = b->spent_nano;
    str_copy(start, sizeof(start), b->period_start);
    str_copy(end, sizeof(end), b->resets_at);
    if (end[0] && strcmp(end, ck->now) <= 0) {
        store_budget_period(ck, b->period, b->period_start, start, end);
        spent = 0;
    }
    long long left = b->limit_nano - spent - b->reserved_nano;
    json_t *scope = json_pack("{s:s, s:o}", "type", b->scope_type, "id",
                              b->scope_id[0] ? json_string(b->scope_id) : json_null());
    return json_pack("{s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:s, s:o, s:s, s:s, s:s}", "id", b->id,
                     "scope", scope, "limitUsd", usd(b->limit_nano), "period", b->period,
                     "spentUsd", usd(spent), "reservedUsd", usd(b->reserved_nano),
                     "remainingUsd", usd(left > 0 ? left : 0), "periodStart", start, "resetsAt",
                     end[0] ? json_string(end) : json_null(), "createdAt", b->created_at,
                     "updatedAt", b->updated_at, "createdBy", b->created_by);
}

static aop_err reply(const store_budget *b, char **json, size_t *len, arena *a)
{
    store_budget_clock ck;
    store_budget_clock_at(clock_now_ms(), &ck);
    return json_dump_arena(budget_json(b, &ck), json, len, a);
}

/* ---- access ---- */

/* AOP_OK when c may see b, else AOP_ERR_NOT_FOUND (or the store's error). */
static aop_err may_see(const app_ctx *app, const wf_caller *c, const store_budget *b, arena *a)
{
    if (c->admin || !strcmp(b->scope_type, "global"))
        return AOP_OK;
    if (!strcmp(b->scope_type, "user"))
        return !strcmp(b->scope_id, c->id) ? AOP_OK : AOP_ERR_NOT_FOUND;
    wf_view v;
    return workflows_view(app, c, b->scope_id, &v, a);
}

/* The user or live workflow the scope names exists. */
static aop_err scope_exists(const app_ctx *app, const budget_input *in, arena *a)
{
    if (!strcmp(in->scope_type, "global"))
        return AOP_OK;
    if (!in->scope_id || !ids_uuid_ok(in->scope_id))
        return AOP_ERR_NOT_FOUND;
    if (!strcmp(in->scope_type, "user")) {
        store_user u;
        return store_user_get_by_id(app->store, in->scope_id, &u, a);
    }
    store_workflow w;
    return store_workflow_get(app->store, in->scope_id, &w, a);
}

/* ---- operations ---- */

aop_err budgets_create(const app_ctx *app, const wf_caller *c, const budget_input *in,
                       char **json, size_t *len, arena *a)
{
    aop_err rc = scope_exists(app, in, a);
    if (rc != AOP_OK)
        return rc;
    store_budget b = {.limit_nano = store_usd_nano(in->limit_usd)};
    store_budget_clock ck;
    store_budget_clock_at(clock_now_ms(), &ck);
    ids_uuid7(b.id);
    str_copy(b.scope_type, sizeof(b.scope_type), in->scope_type);
    str_copy(b.scope_id, sizeof(b.scope_id), in->scope_id ? in->scope_id : "");
    str_copy(b.period, sizeof(b.period), in->period);
    store_budget_period(&ck, in->period, ck.now, b.period_start, b.resets_at);
    str_copy(b.created_at, sizeof(b.created_at), ck.now);
    str_copy(b.updated_at, sizeof(b.updated_at), ck.now);
    str_copy(b.created_by, sizeof(b.created_by), c->id);
    rc = store_budget_insert(app->store, &b);
    return rc == AOP_OK ? reply(&b, json, len, a) : rc;
}

/* Budget id into *b; AOP_ERR_NOT_FOUND also for what is not an id. */
static aop_err load(const app_ctx *app, const char *id, store_budget *b)
{
    return ids_uuid_ok(id) ? store_budget_get(app->store, id, b) : AOP_ERR_NOT_FOUND;
}

aop_err budgets_get(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                    size_t *len, arena *a)
{
    store_budget b;
    aop_err rc = load(app, id, &b);
    if (rc == AOP_OK)
        rc = may_see(app, c, &b, a);
    return rc == AOP_OK ? reply(&b, json, len, a) : rc;
}

aop_err budgets_list(const app_ctx *app, const wf_caller *c, store_budget_query *q,
                     long long page, char **json, size_t *len, arena *a)
{
    store_budget *rows = NULL;
    int n = 0;
    long long total = 0;
    q->reader = c->admin ? NULL : c->id;
    aop_err rc = store_budget_list(app->store, q, &rows, &n, &total, a);
    if (rc != AOP_OK)
        return rc;
    store_budget_clock ck;
    store_budget_clock_at(clock_now_ms(), &ck);
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, budget_json(&rows[i], &ck));
    return json_dump_arena(json_list_page(data, page, q->limit, total), json, len, a);
}

aop_err budgets_update(const app_ctx *app, const char *id, const budget_input *in, char **json,
                       size_t *len, arena *a)
{
    store_budget b;
    aop_err rc = load(app, id, &b);
    if (rc != AOP_OK)
        return rc;
    /* the period it has already: nothing starts again */
    const char *period = in->period && strcmp(in->period, b.period) ? in->period : NULL;
    store_budget_clock ck;
    store_budget_clock_at(clock_now_ms(), &ck);
    long long limit = in->limit_usd > 0 ? store_usd_nano(in->limit_usd) : 0;
    rc = store_budget_update(app->store, id, limit, period, &ck, ck.now, &b);
    return rc == AOP_OK ? reply(&b, json, len, a) : rc;
}

aop_err budgets_delete(const app_ctx *app, const char *id)
{
    return ids_uuid_ok(id) ? store_budget_delete(app->store, id) : AOP_ERR_NOT_FOUND;
}
