/*
 * schedules.c - cron schedules as the API shows them, and the starts of
 * their due times (schedules.h).
 */
#include "schedules/schedules.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "engine/engine.h"
#include "executions/executions.h"
#include "schedules/cron.h"
#include "schedules/scheduler.h"

static const char *const overlaps[] = {"skip", "allow", "buffer_one", NULL};

bool schedules_overlap_ok(const char *s)
{
    for (int i = 0; s && overlaps[i]; i++)
        if (!strcmp(overlaps[i], s))
            return true;
    return false;
}

/* ---- JSON ---- */

static json_t *time_json(int64_t ms)
{
    char t[25];
    clock_format_rfc3339(ms, t);
    return json_string(t);
}

static json_t *text_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

/* sc as the API shows it; with_upcoming adds the next due times. */
static json_t *schedule_json(const store_schedule *sc, bool with_upcoming)
{
    cron_expr c;
    int64_t next[SCHEDULES_UPCOMING];
    int n = 0;
    if (cron_parse(sc->cron, &c, NULL, 0) == 0)
        n = cron_next_n(&c, sc->timezone, clock_now_ms(), next, SCHEDULES_UPCOMING);
    json_t *input = json_loads(sc->input, 0, NULL);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:b, s:o, s:o, s:s, s:s}", "id",
                          sc->id, "workflowId", sc->workflow_id, "cron", sc->cron, "timezone",
                          sc->timezone, "input", input ? input : json_object(), "overlap",
                          sc->overlap, "enabled", sc->enabled, "nextRunAt",
                          sc->enabled && n > 0 ? time_json(next[0]) : json_null(), "lastRunAt",
                          text_or_null(sc->last_run_at), "createdAt", sc->created_at,
                          "createdBy", sc->created_by);
    if (o && with_upcoming) {
        json_t *up = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(up, time_json(next[i]));
        json_object_set_new(o, "upcoming", up);
    }
    return o;
}

/* ---- access ---- */

/* Schedule id into *sc when c may reach its workflow. */
static aop_err load(const app_ctx *app, const wf_caller *c, const char *id, bool write,
                    store_schedule *sc, arena *a)
{
    if (!ids_uuid_ok(id))
        return AOP_ERR_NOT_FOUND;
    aop_err rc = store_schedule_get(app->store, id, sc, a);
    return rc == AOP_OK ? workflows_reach(app, c, sc->workflow_id, write, a) : rc;
}

/* Every instance's scheduler learns of the change to schedule id. */
static void changed(const app_ctx *app, const char *id)
{
    scheduler_changed(app->scheduler, id);
    if (store_shared(app->store) && scheduler_publish(app->store, id) != AOP_OK)
        log_warn("cannot tell other instances of a changed schedule", LF_S("scheduleId", id));
}

/* ---- operations ---- */

static void apply(store_schedule *sc, const schedule_input *in, arena *a)
{
    if (in->cron)
        str_copy(sc->cron, sizeof(sc->cron), in->cron);
    if (in->timezone)
        str_copy(sc->timezone, sizeof(sc->timezone), in->timezone);
    if (in->overlap)
        str_copy(sc->overlap, sizeof(sc->overlap), in->overlap);
    if (in->has_enabled)
        sc->enabled = in->enabled;
    if (in->input) {
        char *text = json_dumps(in->input, JSON_COMPACT);
        sc->input = arena_strdup(a, text ? text : "{}");
        free(text);
    }
}

/* The count and the insert in one transaction (store_schedule_count). */
static aop_err insert_tx(store *s, void *p)
{
    const store_schedule *sc = p;
    long long n = 0;
    aop_err rc = store_schedule_count(s, sc->workflow_id, &n);
    if (rc == AOP_OK && n >= SCHEDULES_PER_WORKFLOW_MAX)
        rc = AOP_ERR_VALIDATION;
    return rc == AOP_OK ? store_schedule_insert(s, sc) : rc;
}

aop_err schedules_create(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                         const schedule_input *in, char **json, size_t *len, arena *a)
{
    aop_err rc = workflows_reach(app, c, workflow_id, true, a);
    if (rc != AOP_OK)
        return rc;
    store_schedule sc = {.enabled = true, .input = "{}"};
    ids_uuid7(sc.id);
    str_copy(sc.workflow_id, sizeof(sc.workflow_id), workflow_id);
    str_copy(sc.timezone, sizeof(sc.timezone), "UTC");
    str_copy(sc.overlap, sizeof(sc.overlap), "skip");
    apply(&sc, in, a);
    clock_format_rfc3339(clock_now_ms(), sc.created_at);
    str_copy(sc.updated_at, sizeof(sc.updated_at), sc.created_at);
    str_copy(sc.created_by, sizeof(sc.created_by), c->id);
    if ((rc = store_tx(app->store, insert_tx, &sc)) != AOP_OK)
        return rc;
    changed(app, sc.id);
    return json_dump_arena(schedule_json(&sc, false), json, len, a);
}

aop_err schedules_list(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                       long long page, long long limit, char **json, size_t *len, arena *a)
{
    aop_err rc = workflows_reach(app, c, workflow_id, false, a);
    if (rc != AOP_OK)
        return rc;
    store_schedule *rows = NULL;
    int n = 0;
    long long total = 0;
    rc = store_schedule_list(app->store, workflow_id, (page - 1) * limit, limit, &rows, &n,
                             &total, a);
    if (rc != AOP_OK)
        return rc;
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, schedule_json(&rows[i], false));
    return json_dump_arena(json_list_page(data, page, limit, total), json, len, a);
}

aop_err schedules_get(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                      size_t *len, arena *a)
{
    store_schedule sc;
    aop_err rc = load(app, c, id, false, &sc, a);
    return rc == AOP_OK ? json_dump_arena(schedule_json(&sc, true), json, len, a) : rc;
}

aop_err schedules_update(const app_ctx *app, const wf_caller *c, const char *id,
                         const schedule_input *in, char **json, size_t *len, arena *a)
{
    store_schedule sc;
    aop_err rc = load(app, c, id, true, &sc, a);
    if (rc != AOP_OK)
        return rc;
    apply(&sc, in, a);
    clock_format_rfc3339(clock_now_ms(), sc.updated_at);
    if ((rc = store_schedule_update(app->store, &sc)) != AOP_OK)
        return rc;
    changed(app, sc.id);
    return json_dump_arena(schedule_json(&sc, false), json, len, a);
}

aop_err schedules_delete(const app_ctx *app, const wf_caller *c, const char *id)
{
    arena a = {0};
    store_schedule sc;
    aop_err rc = load(app, c, id, true, &sc, &a);
    if (rc == AOP_OK && (rc = store_schedule_delete(app->store, id)) == AOP_OK)
        changed(app, id);
    arena_free(&a);
    return rc;
}

aop_err schedules_trigger(const app_ctx *app, const wf_caller *c, const char *id,
                          store_execution *row, arena *a)
{
    store_schedule sc;
    aop_err rc = load(app, c, id, true, &sc, a);
    if (rc != AOP_OK)
        return rc;
    json_t *input = json_loads(sc.input, 0, NULL);
    rc = executions_prepare(app, c, sc.workflow_id, input, row, a);
    json_decref(input);
    if (rc != AOP_OK)
        return rc;
    str_copy(row->trigger, sizeof(row->trigger), "schedule");
    str_copy(row->trigger_id, sizeof(row->trigger_id), sc.id);
    str_copy(row->scheduled_for, sizeof(row->scheduled_for), row->created_at);
    if ((rc = executions_start(app, row, NULL, NULL)) == AOP_OK &&
        store_schedule_mark(app->store, sc.id, row->scheduled_for, NULL) != AOP_OK)
        log_warn("cannot record a schedule's run", LF_S("scheduleId", sc.id));
    return rc;
}

/* ---- due times ---- */

typedef struct {
    const app_ctx *app;
    const store_schedule *sc;
    store_execution *row;  /* NULL: no execution (taken, skipped) */
    const char *due;
    bool pending;          /* only start the held due time */
    schedules_outcome out;
} fire_ctx;

/*
 * One transaction: the run record first (the due time is ours, or another
 * process's already), then overlap, then the execution under the quota.
 * The record stays when nothing starts (skip), so a due time is decided
 * once.
 */
static aop_err fire_tx(store *s, void *p)
{
    fire_ctx *x = p;
    char now[25];
    clock_format_rfc3339(clock_now_ms(), now);
    bool won = true;
    aop_err rc = AOP_OK;
    if (!x->pending &&
        ((rc = store_schedule_run_claim(s, x->sc->id, x->due, x->row ? x->row->id : NULL, now,
                                        &won)) != AOP_OK ||
         !won)) {
        x->out = SCHEDULES_TAKEN;
        return rc;
    }
    long long active = 0;
    if (strcmp(x->sc->overlap, "allow") &&
        (rc = store_schedule_active(s, x->sc->id, &active)) != AOP_OK)
        return rc;
    if (active > 0) {
        bool buffer = !strcmp(x->sc->overlap, "buffer_one");
        x->out = buffer ? SCHEDULES_PENDING : SCHEDULES_SKIPPED;
        return buffer && !x->pending ? store_schedule_hold(s, x->sc->id, x->due) : AOP_OK;
    }
    if (!x->row) {
        x->out = SCHEDULES_SKIPPED;
        return store_schedule_mark(s, x->sc->id, x->due, NULL);
    }
    long long quota_active = -1;
    rc = store_execution_enqueue(s, x->row, x->app->cfg->quota_active_executions, &quota_active);
    if (rc == AOP_ERR_QUOTA_EXCEEDED) { /* the due time is decided: not run */
        x->out = SCHEDULES_SKIPPED;
        return store_schedule_mark(s, x->sc->id, x->due, NULL);
    }
    if (rc == AOP_OK && (rc = store_schedule_mark(s, x->sc->id, x->due, NULL)) == AOP_OK)
        x->out = SCHEDULES_STARTED;
    return rc;
}

/* The execution of sc at due; *run false (AOP_OK) when its workflow is not
 * active or gone: the due time is then recorded and skipped. */
static aop_err prepare(const app_ctx *app, const store_schedule *sc, const char *due,
                       store_execution *row, bool *run, arena *a)
{
    json_t *input = json_loads(sc->input, 0, NULL);
    aop_err rc = executions_prepare_trigger(app, sc->created_by, sc->workflow_id, input,
                                            "schedule", sc->id, row, a);
    json_decref(input);
    *run = rc == AOP_OK;
    if (rc == AOP_ERR_NOT_FOUND || rc == AOP_ERR_WORKFLOW_INACTIVE)
        return AOP_OK;
    if (rc == AOP_OK)
        str_copy(row->scheduled_for, sizeof(row->scheduled_for), due);
    return rc;
}

static aop_err fire(const app_ctx *app, const char *id, const char *due, bool pending,
                    schedules_outcome *out)
{
    arena a = {0};
    store_schedule sc;
    store_execution row;
    bool run = false;
    *out = SCHEDULES_GONE;
    aop_err rc = store_schedule_get(app->store, id, &sc, &a);
    if (rc == AOP_ERR_NOT_FOUND || (rc == AOP_OK && !sc.enabled)) {
        arena_free(&a);
        return AOP_OK;
    }
    if (rc == AOP_OK && pending && !sc.pending_for[0]) {
        arena_free(&a);
        return AOP_OK;
    }
    if (rc == AOP_OK)
        rc = prepare(app, &sc, pending ? sc.pending_for : due, &row, &run, &a);
    fire_ctx x = {app, &sc, run ? &row : NULL, pending ? sc.pending_for : due, pending,
                  SCHEDULES_SKIPPED};
    if (rc == AOP_OK)
        rc = store_tx(app->store, fire_tx, &x);
    if (rc == AOP_OK && pending && x.out != SCHEDULES_PENDING)
        rc = store_schedule_mark(app->store, id, NULL, NULL);
    if (rc == AOP_OK && x.out == SCHEDULES_STARTED) {
        engine_queued_event(app->engine, &row);
        engine_events_committed(app->engine, row.id, 1, 1);
        engine_queued(app->engine);
    }
    *out = x.out;
    arena_free(&a);
    return rc;
}

/* One schedule of a batch: its row, its execution, what happened. */
typedef struct {
    store_schedule sc;
    store_execution row;
    fire_ctx x;
    int index; /* in the caller's arrays */
} batch_item;

typedef struct {
    batch_item *items;
    int n;
} batch;

static aop_err batch_tx(store *s, void *p)
{
    batch *b = p;
    aop_err rc = AOP_OK;
    for (int i = 0; rc == AOP_OK && i < b->n; i++)
        rc = fire_tx(s, &b->items[i].x);
    return rc;
}

/* Creators' order first (the quota's locks, store_execution_enqueue),
 * then ids (the run records' locks): every process takes them in turn. */
static int by_creator(const void *pa, const void *pb)
{
    const batch_item *x = pa, *y = pb;
    int c = strcmp(x->sc.created_by, y->sc.created_by);
    return c ? c : strcmp(x->sc.id, y->sc.id);
}

aop_err schedules_fire(const app_ctx *app, const char (*ids)[UUID_STR_LEN], int n,
                       int64_t due_ms, schedules_outcome *out)
{
    char due[25];
    clock_format_rfc3339(due_ms, due);
    arena a = {0};
    batch b = {xcalloc((size_t)(n > 0 ? n : 1), sizeof(batch_item)), 0};
    aop_err rc = AOP_OK;
    for (int i = 0; i < n; i++) {
        out[i] = SCHEDULES_GONE;
        batch_item *it = &b.items[b.n];
        aop_err got = store_schedule_get(app->store, ids[i], &it->sc, &a);
        if (got == AOP_ERR_NOT_FOUND || (got == AOP_OK && !it->sc.enabled))
            continue;
        bool run = false;
        if (got == AOP_OK)
            got = prepare(app, &it->sc, due, &it->row, &run, &a);
        if (got != AOP_OK) {
            rc = got;
            continue;
        }
        it->index = i;
        b.n++;
        it->x = (fire_ctx){app, NULL, run ? &it->row : NULL, NULL, false, SCHEDULES_SKIPPED};
    }
    qsort(b.items, (size_t)b.n, sizeof(*b.items), by_creator);
    for (int i = 0; i < b.n; i++) { /* pointers into the items, once sorted */
        b.items[i].x.sc = &b.items[i].sc;
        if (b.items[i].x.row)
            b.items[i].x.row = &b.items[i].row;
        b.items[i].x.due = due;
    }
    aop_err tx = b.n ? store_tx(app->store, batch_tx, &b) : AOP_OK;
    for (int i = 0; i < b.n; i++) {
        batch_item *it = &b.items[i];
        out[it->index] = tx == AOP_OK ? it->x.out : SCHEDULES_SKIPPED;
        if (tx == AOP_OK && it->x.out == SCHEDULES_STARTED) {
            engine_queued_event(app->engine, &it->row);
            engine_events_committed(app->engine, it->row.id, 1, 1);
        }
    }
    if (tx == AOP_OK && b.n)
        engine_queued(app->engine);
    free(b.items);
    arena_free(&a);
    return tx != AOP_OK ? tx : rc;
}

aop_err schedules_fire_pending(const app_ctx *app, const char *id, bool *still)
{
    schedules_outcome out;
    aop_err rc = fire(app, id, NULL, true, &out);
    *still = rc == AOP_OK && out == SCHEDULES_PENDING;
    return rc;
}
