/*
 * approvals.c - the approvals table (migration 011): one row per approval
 * node an execution waits at, its decision written once.
 *
 * A decision is one conditional UPDATE (decision IS NULL, and the
 * execution still waiting), so of two deciders, on any instances, exactly
 * one changes the row; whoever changed it queues the execution again in
 * the same transaction, its settings.timeoutMs deadline moved on by the
 * time it waited. A timeout is the same decision ("timeout") taken by
 * whichever instance's maintenance finds the row due first.
 */
#include <string.h>

#include "store/db.h"

#define APPROVAL_COLUMNS                                                                    \
    "a.execution_id, a.workflow_id, w.name, a.node_id, a.message, a.on_timeout, "           \
    "a.created_at, a.expires_at, a.decision, a.comment, a.decided_by, a.decided_at"

static const db_sql q_wait = DB_BOTH(
    "UPDATE executions SET status = 'waiting', lease_owner = NULL, lease_until = NULL "
    "WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND claims = $3");
static const db_sql q_put = DB_BOTH(
    "INSERT INTO approvals (execution_id, node_id, workflow_id, message, on_timeout, "
    "created_at, expires_at, left_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
    "ON CONFLICT (execution_id, node_id) DO NOTHING");
static const db_sql q_get = DB_BOTH(
    "SELECT " APPROVAL_COLUMNS " FROM approvals a JOIN workflows w ON w.id = a.workflow_id "
    "WHERE a.execution_id = $1 AND a.node_id = $2");
static const db_sql q_decide = DB_BOTH(
    "UPDATE approvals SET decision = $3, comment = $4, decided_by = $5, decided_at = $6 "
    "WHERE execution_id = $1 AND node_id = $2 AND decision IS NULL AND EXISTS (SELECT 1 "
    "FROM executions x WHERE x.id = $1 AND x.status = 'waiting')");
static const db_sql q_requeue = DB_BOTH(
    "UPDATE executions SET status = 'queued', deadline_ms = $3 + (SELECT left_ms FROM "
    "approvals WHERE execution_id = $1 AND node_id = $2) WHERE id = $1 AND status = 'waiting'");
/* An undecided row whose execution ended otherwise (cancelled, or failed
 * on another branch) is closed, so that it is not found due again. */
static const db_sql q_close = DB_BOTH(
    "UPDATE approvals SET decision = 'timeout', decided_at = $3 WHERE execution_id = $1 "
    "AND node_id = $2 AND decision IS NULL AND NOT EXISTS (SELECT 1 FROM executions x "
    "WHERE x.id = $1 AND x.status IN ('queued', 'running', 'waiting'))");
static const db_sql q_due = DB_BOTH(
    "SELECT a.execution_id, a.node_id FROM approvals a WHERE a.decision IS NULL "
    "AND a.expires_at <= $1 ORDER BY a.expires_at LIMIT $2");
/* What a caller may decide: write access (admin: $1 = 1; owner or editor
 * $2) on the workflow of a waiting execution. SQLite keeps editors as
 * workflow_permissions rows; PostgreSQL as a jsonb array. */
#define DECIDABLE_FROM                                                                      \
    " FROM approvals a JOIN workflows w ON w.id = a.workflow_id AND w.deleted_at IS NULL "   \
    "JOIN executions x ON x.id = a.execution_id AND x.status = 'waiting' "                  \
    "WHERE a.decision IS NULL AND ($1 = 1 OR w.owner_id = $2 OR "
#define DECIDABLE_SQLITE                                                                    \
    DECIDABLE_FROM "EXISTS (SELECT 1 FROM workflow_permissions p WHERE p.workflow_id = w.id " \
    "AND p.user_id = $2 AND p.access = 'editor'))"
#define DECIDABLE_PG DECIDABLE_FROM "w.editors @> jsonb_build_array($2::text))"
#define PAGE_ORDER " ORDER BY a.created_at, a.execution_id, a.node_id LIMIT $3 OFFSET $4"
static const db_sql q_count = DB_PAIR("SELECT COUNT(*)" DECIDABLE_SQLITE,
                                      "SELECT COUNT(*)" DECIDABLE_PG);
static const db_sql q_page = DB_PAIR("SELECT " APPROVAL_COLUMNS DECIDABLE_SQLITE PAGE_ORDER,
                                     "SELECT " APPROVAL_COLUMNS DECIDABLE_PG PAGE_ORDER);

#define A(kind, member) DB_COL(kind, store_approval, member)
static const db_col approval_cols[] = {
    A(DB_COPY, execution_id), A(DB_COPY, workflow_id), A(DB_DUP, workflow_name),
    A(DB_DUP, node_id), A(DB_DUP_OR_NULL, message), A(DB_COPY, on_timeout),
    A(DB_COPY, created_at), A(DB_INT, expires_at_ms), A(DB_COPY, decision),
    A(DB_DUP_OR_NULL, comment), A(DB_DUP_OR_NULL, decided_by), A(DB_COPY, decided_at),
};
static const db_row approval_row = DB_ROW(approval_cols, store_approval);
static const db_col due_cols[] = {A(DB_COPY, execution_id), A(DB_DUP, node_id)};
static const db_row due_row = DB_ROW(due_cols, store_approval);

aop_err store_execution_wait(store *s, const char *id, const char *owner, long long claims)
{
    db_op o = db_op_start(s, "execution_wait");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_wait, &n, "tti", id, owner, claims);
    return db_op_end(&o, rc == AOP_OK && n == 0 ? AOP_ERR_CONFLICT : rc);
}

aop_err store_approval_put(store *s, const store_approval *ap, long long left_ms)
{
    db_op o = db_op_start(s, "approval_put");
    return db_op_end(&o, db_exec(&o, &q_put, NULL, "ttttttii", ap->execution_id, ap->node_id,
                                 ap->workflow_id, db_opt(ap->message), ap->on_timeout,
                                 ap->created_at, ap->expires_at_ms, left_ms));
}

aop_err store_approval_get(store *s, const char *execution_id, const char *node_id,
                           store_approval *out, arena *a)
{
    db_op o = db_op_start(s, "approval_get");
    return db_op_end(&o, db_get(&o, &q_get, &approval_row, out, a, "tt", execution_id, node_id));
}

aop_err store_approval_decide(store *s, const char *execution_id, const char *node_id,
                              const char *decision, const char *comment, const char *by,
                              const char *at, long long now_ms)
{
    db_op o = db_op_start(s, "approval_decide");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_decide, &n, "tttttt", execution_id, node_id, decision,
                         db_opt(comment), db_opt(by), at);
    if (rc == AOP_OK && n == 0)
        rc = AOP_ERR_CONFLICT;
    if (rc == AOP_OK)
        rc = db_exec(&o, &q_requeue, NULL, "tti", execution_id, node_id, now_ms);
    return db_op_end(&o, rc);
}

aop_err store_approval_close(store *s, const char *execution_id, const char *node_id,
                             const char *at, bool *closed)
{
    db_op o = db_op_start(s, "approval_close");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_close, &n, "ttt", execution_id, node_id, at);
    *closed = rc == AOP_OK && n > 0;
    return db_op_end(&o, rc);
}

aop_err store_approval_due(store *s, long long now_ms, int max, store_approval **out, int *n,
                           arena *a)
{
    db_op o = db_op_start(s, "approval_due");
    void *items = NULL;
    aop_err rc = db_rows(&o, &q_due, &due_row, max, &items, n, a, "ii", now_ms, (long long)max);
    *out = items;
    return db_op_end(&o, rc);
}

aop_err store_approval_list(store *s, const char *user_id, bool admin, long long offset,
                            long long limit, store_approval **out, int *n, long long *total,
                            arena *a)
{
    db_op o = db_op_start(s, "approval_list");
    db_val v[4] = {DB_INT(admin ? 1 : 0), DB_TEXT(user_id)};
    void *items = NULL;
    aop_err rc = db_page(&o, &q_count, &q_page, v, 2, offset, limit, &approval_row, &items, n,
                         total, a);
    *out = items;
    return db_op_end(&o, rc);
}
