/*
 * schedules.c - cron schedules and the runs of their due times
 * (docs/api.md, "Triggers").
 *
 * A due time runs at most once: its schedule_runs row, keyed by
 * (schedule_id, scheduled_for), is inserted in the transaction that queues
 * its execution (store_schedule_run_claim), and an instance that finds the
 * row there already does nothing.
 */
#include <string.h>

#include "store/db.h"

#define SCHEDULE_COLUMNS                                                                     \
    "id, workflow_id, cron, timezone, input, overlap, enabled, last_run_at, pending_for, "   \
    "created_at, created_by, updated_at"

static const db_sql q_insert = DB_BOTH(
    "INSERT INTO schedules (" SCHEDULE_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
    "$10, $11, $12)");
static const db_sql q_get = DB_BOTH("SELECT " SCHEDULE_COLUMNS " FROM schedules WHERE id = $1");
static const db_sql q_count = DB_BOTH("SELECT COUNT(*) FROM schedules WHERE workflow_id = $1");
static const db_sql q_page = DB_BOTH(
    "SELECT " SCHEDULE_COLUMNS " FROM schedules WHERE workflow_id = $1 "
    "ORDER BY created_at, id LIMIT $2 OFFSET $3");
static const db_sql q_update = DB_BOTH(
    "UPDATE schedules SET cron = $1, timezone = $2, input = $3, overlap = $4, enabled = $5, "
    "pending_for = CASE WHEN $5 THEN pending_for ELSE NULL END, updated_at = $6 WHERE id = $7");
/* On PostgreSQL the workflow's row is locked until the transaction ends, so
 * the count and the insert that follows of concurrent creations take turns. */
static const db_sql q_lock_workflow = DB_PAIR(
    NULL, "SELECT 1 FROM workflows WHERE id = $1 FOR NO KEY UPDATE");
static const db_sql q_delete = DB_BOTH("DELETE FROM schedules WHERE id = $1");
static const db_sql q_enabled = DB_BOTH(
    "SELECT " SCHEDULE_COLUMNS " FROM schedules WHERE enabled = TRUE AND id > $1 "
    "ORDER BY id LIMIT $2");
static const db_sql q_run_insert = DB_BOTH(
    "INSERT INTO schedule_runs (schedule_id, scheduled_for, execution_id, created_at) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT (schedule_id, scheduled_for) DO NOTHING");
/* Active: queued, running or waiting (the index on (trigger_id, status)). */
static const db_sql q_active = DB_BOTH(
    "SELECT COUNT(*) FROM executions WHERE trigger_id = $1 "
    "AND status IN ('queued', 'running', 'waiting')");
static const db_sql q_mark = DB_BOTH(
    "UPDATE schedules SET last_run_at = CASE WHEN last_run_at IS NULL OR last_run_at < $2 "
    "THEN $2 ELSE last_run_at END, pending_for = $3 WHERE id = $1");
static const db_sql q_pending = DB_BOTH(
    "UPDATE schedules SET pending_for = $2 WHERE id = $1");
static const db_sql q_hold = DB_BOTH(
    "UPDATE schedules SET pending_for = COALESCE(pending_for, $2) WHERE id = $1");
static const db_sql q_runs_prune = DB_BOTH("DELETE FROM schedule_runs WHERE created_at < $1");

#define S(kind, member) DB_COL(kind, store_schedule, member)
static const db_col schedule_cols[] = {
    S(DB_COPY, id), S(DB_COPY, workflow_id), S(DB_COPY, cron), S(DB_COPY, timezone),
    S(DB_DUP, input), S(DB_COPY, overlap), S(DB_BOOL, enabled), S(DB_COPY, last_run_at),
    S(DB_COPY, pending_for), S(DB_COPY, created_at), S(DB_COPY, created_by),
    S(DB_COPY, updated_at),
};
static const db_row schedule_row = DB_ROW(schedule_cols, store_schedule);

aop_err store_schedule_insert(store *s, const store_schedule *sc)
{
    db_op o = db_op_start(s, "schedule_insert");
    return db_op_end(&o, db_exec(&o, &q_insert, NULL, "ttttttbttttt", sc->id, sc->workflow_id,
                                 sc->cron, sc->timezone, sc->input, sc->overlap,
                                 (int)sc->enabled, db_opt(sc->last_run_at),
                                 db_opt(sc->pending_for), sc->created_at, sc->created_by,
                                 sc->updated_at));
}

aop_err store_schedule_get(store *s, const char *id, store_schedule *out, arena *a)
{
    db_op o = db_op_start(s, "schedule_get");
    return db_op_end(&o, db_get(&o, &q_get, &schedule_row, out, a, "t", id));
}

aop_err store_schedule_list(store *s, const char *workflow_id, long long offset, long long limit,
                            store_schedule **out, int *n, long long *total, arena *a)
{
    db_op o = db_op_start(s, "schedule_list");
    db_val v[3] = {DB_TEXT(workflow_id)};
    void *items = NULL;
    aop_err rc = db_page(&o, &q_count, &q_page, v, 1, offset, limit, &schedule_row, &items, n,
                         total, a);
    *out = items;
    return db_op_end(&o, rc);
}

aop_err store_schedule_update(store *s, const store_schedule *sc)
{
    db_op o = db_op_start(s, "schedule_update");
    long long changed = 0;
    aop_err rc = db_exec(&o, &q_update, &changed, "ttttbtt", sc->cron, sc->timezone, sc->input,
                         sc->overlap, (int)sc->enabled, sc->updated_at, sc->id);
    return db_op_end(&o, rc == AOP_OK && !changed ? AOP_ERR_NOT_FOUND : rc);
}

aop_err store_schedule_delete(store *s, const char *id)
{
    db_op o = db_op_start(s, "schedule_delete");
    long long changed = 0;
    aop_err rc = db_exec(&o, &q_delete, &changed, "t", id);
    return db_op_end(&o, rc == AOP_OK && !changed ? AOP_ERR_NOT_FOUND : rc);
}

aop_err store_schedule_enabled(store *s, const char *after, int max, store_schedule **out, int *n,
                               arena *a)
{
    db_op o = db_op_start(s, "schedule_enabled");
    void *items = NULL;
    aop_err rc = db_rows(&o, &q_enabled, &schedule_row, max, &items, n, a, "ti", after,
                         (long long)max);
    *out = items;
    return db_op_end(&o, rc);
}

aop_err store_schedule_run_claim(store *s, const char *id, const char *scheduled_for,
                                 const char *execution_id, const char *now, bool *won)
{
    db_op o = db_op_start(s, "schedule_run_claim");
    long long changed = 0;
    aop_err rc = db_exec(&o, &q_run_insert, &changed, "tttt", id, scheduled_for,
                         db_opt(execution_id), now);
    *won = rc == AOP_OK && changed > 0;
    return db_op_end(&o, rc);
}

aop_err store_schedule_active(store *s, const char *id, long long *n)
{
    db_op o = db_op_start(s, "schedule_active");
    return db_op_end(&o, db_query_int(&o, &q_active, n, "t", id));
}

aop_err store_schedule_mark(store *s, const char *id, const char *last_run_at,
                            const char *pending_for)
{
    db_op o = db_op_start(s, "schedule_mark");
    aop_err rc = last_run_at ? db_exec(&o, &q_mark, NULL, "ttt", id, last_run_at,
                                       db_opt(pending_for))
                             : db_exec(&o, &q_pending, NULL, "tt", id, db_opt(pending_for));
    return db_op_end(&o, rc);
}

aop_err store_schedule_hold(store *s, const char *id, const char *due)
{
    db_op o = db_op_start(s, "schedule_hold");
    return db_op_end(&o, db_exec(&o, &q_hold, NULL, "tt", id, due));
}

aop_err store_schedule_runs_prune(store *s, const char *before, long long *n)
{
    db_op o = db_op_start(s, "schedule_runs_prune");
    return db_op_end(&o, db_exec(&o, &q_runs_prune, n, "t", before));
}

aop_err store_schedule_count(store *s, const char *workflow_id, long long *n)
{
    db_op o = db_op_start(s, "schedule_count");
    *n = 0;
    aop_err rc = db_exec(&o, &q_lock_workflow, NULL, "t", workflow_id);
    if (rc == AOP_OK)
        rc = db_query_int(&o, &q_count, n, "t", workflow_id);
    return db_op_end(&o, rc);
}
