/*
 * sqlite_executions.c - executions, their node rows, the queue the engine
 * takes them from, and the aggregates over them, on SQLite.
 *
 * The queue is the executions table itself: a claim is one UPDATE ...
 * RETURNING, so two workers never take the same row (SQLite writes one
 * statement at a time) and max_concurrency is checked by the statement that
 * starts the runs. As for workflows (sqlite_workflows.c), the list query is
 * built once per combination of filters, so each has a plan of its own.
 *
 * Conventions of store_execution and store_exec_node: "" timestamps and
 * NULL texts are SQL NULL, and a negative duration_ms is NULL (read back
 * as -1).
 */
#include "core/buf.h"
#include "store/sqlite_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every column store_execution has, output apart (lists leave it out). */
#define EXEC_COLUMNS                                                                         \
    "id, workflow_id, workflow_version, status, trigger, triggered_by, created_at, "         \
    "started_at, finished_at, duration_ms, memory_bytes, prompt_tokens, completion_tokens, " \
    "total_tokens, cost_usd, timeout_ms, max_concurrency, deadline_ms, claims, error, input"
#define EXEC_NCOLUMNS 21

/* A bound integer that is NULL when negative. */
#define NULL_IF_NEG "nullif(max(?, -1), -1)"

/* Bounds standing in for an open end of a created_at range: every RFC 3339
 * timestamp sorts at or after "" and before "~". */
#define TS_MIN ""
#define TS_MAX "~"

#define CLAIM_WINDOW "10000" /* queued rows one claim looks at */

static const char q_insert[] =
    "INSERT INTO executions (" EXEC_COLUMNS ", output) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
    NULL_IF_NEG ", ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char q_get[] = "SELECT " EXEC_COLUMNS ", output FROM executions WHERE id = ?";
static const char q_exists[] = "SELECT COUNT(*) FROM executions WHERE id = ?";
static const char q_nodes[] =
    "SELECT node_id, type, status, attempts, started_at, finished_at, duration_ms, "
    "prompt_tokens, completion_tokens, total_tokens, cost_usd, model, error, output, seq "
    "FROM execution_nodes WHERE execution_id = ? ORDER BY seq";

/*
 * The queue, oldest first, limited to what max_concurrency leaves room for:
 * a queued row's rank among its workflow's queued rows, plus the workflow's
 * running ones, must not pass its limit. The ranks are taken before any row
 * changes (the IN list is computed first), so rows claimed together count
 * against each other. The window of CLAIM_WINDOW rows leaves out the
 * workflows already at their limit (computed once from the running rows),
 * so that a backlog of one limited workflow cannot starve the others.
 * INDEXED BY: the planner would otherwise walk the status index and read
 * every queued row from the table.
 */
const char sq_execution_claim_sql[] =
    "UPDATE executions SET status = 'running', lease_owner = ?, lease_until = ?, "
    "claims = claims + 1, started_at = coalesce(started_at, max(?, created_at)), "
    "deadline_ms = CASE WHEN deadline_ms = 0 THEN ? + timeout_ms ELSE deadline_ms END "
    "WHERE id IN (SELECT q.id FROM (SELECT id, created_at, workflow_id, max_concurrency, "
    "row_number() OVER (PARTITION BY workflow_id ORDER BY created_at, id) AS rn "
    "FROM (SELECT id, created_at, workflow_id, max_concurrency "
    "FROM executions INDEXED BY executions_queue_idx WHERE status = 'queued' "
    "AND workflow_id NOT IN (SELECT workflow_id FROM executions WHERE status = 'running' "
    "GROUP BY workflow_id HAVING MIN(max_concurrency) > 0 "
    "AND COUNT(*) >= MAX(max_concurrency)) "
    "ORDER BY created_at, id LIMIT " CLAIM_WINDOW ")) q "
    "WHERE q.max_concurrency = 0 OR q.rn + (SELECT COUNT(*) FROM executions r "
    "WHERE r.workflow_id = q.workflow_id AND r.status = 'running') <= q.max_concurrency "
    "ORDER BY q.created_at, q.id LIMIT ?) "
    "RETURNING " EXEC_COLUMNS ", output";
static const char q_renew[] =
    "UPDATE executions SET lease_until = ? WHERE status = 'running' AND lease_owner = ?";
static const char q_requeue[] =
    "UPDATE executions SET status = 'queued', lease_owner = NULL, lease_until = NULL "
    "WHERE status = 'running' AND lease_until < ?";
static const char q_release[] =
    "UPDATE executions SET status = 'queued', lease_owner = NULL, lease_until = NULL "
    "WHERE status = 'running' AND lease_owner = ?";
static const char q_owned[] =
    "SELECT COUNT(*) FROM executions WHERE id = ? AND status = 'running' AND lease_owner = ? "
    "AND claims = ?";

static const char q_node_put[] =
    "INSERT INTO execution_nodes (execution_id, node_id, type, status, attempts, started_at, "
    "finished_at, duration_ms, prompt_tokens, completion_tokens, total_tokens, cost_usd, model, "
    "error, output, seq) VALUES (?, ?, ?, ?, ?, ?, ?, " NULL_IF_NEG ", ?, ?, ?, ?, ?, ?, ?, "
    "(SELECT COALESCE(MAX(seq) + 1, 0) FROM execution_nodes WHERE execution_id = ?)) "
    "ON CONFLICT (execution_id, node_id) DO UPDATE SET type = excluded.type, "
    "status = excluded.status, attempts = excluded.attempts, started_at = excluded.started_at, "
    "finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, "
    "prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, "
    "total_tokens = excluded.total_tokens, cost_usd = excluded.cost_usd, "
    "model = excluded.model, error = excluded.error, output = excluded.output";
/* julianday() keeps well under a millisecond of precision for these dates. */
static const char q_nodes_end[] =
    "UPDATE execution_nodes SET status = ?, finished_at = ?, duration_ms = CASE "
    "WHEN started_at IS NULL THEN duration_ms "
    "ELSE max(0, CAST(round((julianday(?) - julianday(started_at)) * 86400000.0) AS INTEGER)) "
    "END WHERE execution_id = ? AND status = ?";
static const char q_finish[] =
    "UPDATE executions SET status = ?, output = ?, error = ?, finished_at = ?, "
    "duration_ms = " NULL_IF_NEG ", memory_bytes = ?, prompt_tokens = ?, completion_tokens = ?, "
    "total_tokens = ?, cost_usd = ?, lease_owner = NULL, lease_until = NULL "
    "WHERE id = ? AND status IN ('queued', 'running')";
/* max() of two values is NULL when either is: the first write sets it. */
static const char q_analytics_add[] =
    "UPDATE workflows SET execution_count = execution_count + ?, "
    "success_count = success_count + ?, failure_count = failure_count + ?, "
    "duration_ms_total = duration_ms_total + ?, duration_count = duration_count + ?, "
    "total_tokens = total_tokens + ?, total_cost_usd = total_cost_usd + ?, "
    "last_executed_at = COALESCE(max(last_executed_at, ?), ?, last_executed_at) WHERE id = ?";
/* Node rows go with it (ON DELETE CASCADE, foreign keys are on for every
 * connection): one statement, so never half done. */
static const char q_delete[] = "DELETE FROM executions WHERE id = ?";

/* Aggregates. The same totals over one workflow (?1 a workflow id) or a
 * created_at range (?1, ?2); a percentile's OFFSET comes first (?1) so that
 * the scope's values follow it in both. Durations count executions that
 * started and finished. */
#define TOTALS_SELECT                                                                        \
    "SELECT COUNT(*), COALESCE(SUM(status = 'queued'), 0), "                                 \
    "COALESCE(SUM(status = 'running'), 0), COALESCE(SUM(status = 'succeeded'), 0), "         \
    "COALESCE(SUM(status = 'failed'), 0), COALESCE(SUM(status = 'cancelled'), 0), "          \
    "COALESCE(SUM(status = 'timed_out'), 0), COALESCE(SUM(prompt_tokens), 0), "              \
    "COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(total_tokens), 0), "                  \
    "COALESCE(SUM(cost_usd), 0.0), MAX(started_at) FROM executions WHERE "
#define DURATIONS_SELECT                                                                     \
    "SELECT COUNT(*), COALESCE(AVG(duration_ms), 0.0), COALESCE(MAX(duration_ms), 0) "       \
    "FROM executions WHERE "
#define PERCENTILE_SELECT "SELECT duration_ms FROM executions WHERE "
#define RAN " AND started_at IS NOT NULL AND finished_at IS NOT NULL AND duration_ms IS NOT NULL"
#define PERCENTILE_ORDER " ORDER BY duration_ms LIMIT 1 OFFSET ?1"
#define OF_WORKFLOW "workflow_id = ?"
#define IN_RANGE "created_at >= ? AND created_at < ?"

static const char q_wf_totals[] = TOTALS_SELECT OF_WORKFLOW;
static const char q_wf_durations[] = DURATIONS_SELECT OF_WORKFLOW RAN;
static const char q_wf_percentile[] =
    PERCENTILE_SELECT "workflow_id = ?2" RAN PERCENTILE_ORDER;
static const char q_range_totals[] = TOTALS_SELECT IN_RANGE;
static const char q_range_durations[] = DURATIONS_SELECT IN_RANGE RAN;
static const char q_range_percentile[] =
    PERCENTILE_SELECT "created_at >= ?2 AND created_at < ?3" RAN PERCENTILE_ORDER;

static const char q_stats_nodes[] =
    "SELECT n.node_id, COUNT(*), COALESCE(SUM(n.status IN ('failed', 'timed_out')), 0), "
    "COALESCE(AVG(n.duration_ms), 0.0), COALESCE(SUM(n.total_tokens), 0), "
    "COALESCE(SUM(n.cost_usd), 0.0) FROM executions e "
    "JOIN execution_nodes n ON n.execution_id = e.id "
    "WHERE e.workflow_id = ? AND n.status NOT IN ('skipped', 'pending') GROUP BY n.node_id "
    "ORDER BY n.node_id";
static const char q_summary_models[] =
    "SELECT n.model, COUNT(*) AS calls, COALESCE(SUM(n.total_tokens), 0), "
    "COALESCE(SUM(n.cost_usd), 0.0) FROM executions e "
    "JOIN execution_nodes n ON n.execution_id = e.id "
    "WHERE e.created_at >= ? AND e.created_at < ? AND n.model IS NOT NULL "
    "GROUP BY n.model ORDER BY calls DESC, n.model LIMIT ?";
static const char q_summary_days[] =
    "SELECT day, runs, failures, cost FROM (SELECT substr(created_at, 1, 10) AS day, "
    "COUNT(*) AS runs, COALESCE(SUM(status IN ('failed', 'timed_out')), 0) AS failures, "
    "COALESCE(SUM(cost_usd), 0.0) AS cost FROM executions WHERE " IN_RANGE
    " GROUP BY day ORDER BY day DESC LIMIT ?) ORDER BY day";
static const char q_summary_top[] =
    "SELECT t.workflow_id, COALESCE(w.name, ''), t.runs, t.cost FROM (SELECT workflow_id, "
    "COUNT(*) AS runs, COALESCE(SUM(cost_usd), 0.0) AS cost FROM executions WHERE " IN_RANGE
    " GROUP BY workflow_id ORDER BY runs DESC, cost DESC, workflow_id LIMIT ?) t "
    "LEFT JOIN workflows w ON w.id = t.workflow_id ORDER BY t.runs DESC, t.cost DESC, "
    "t.workflow_id";

/* Pruning: ended rows, newest first, for the keep cap; then the oldest
 * below a (created_at, id) bound. NOT IN matches executions_ended_idx. */
static const char q_prune_keep[] =
    "SELECT created_at, id FROM executions WHERE status NOT IN ('queued', 'running') "
    "ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?";
const char sq_execution_prune_sql[] =
    "DELETE FROM executions WHERE id IN (SELECT id FROM executions "
    "WHERE status NOT IN ('queued', 'running') AND (created_at, id) < (?, ?) "
    "ORDER BY created_at, id LIMIT ?)";

/* Only to reach the calling thread's connection (see sq_reclaim). */
static const char q_reclaim_conn[] = "SELECT 1";

/* ---- rows ---- */

/* s when it holds something, else NULL (bound as SQL NULL). */
static const char *opt(const char *s)
{
    return s && *s ? s : NULL;
}

/* Column i as an arena string, or NULL when it is SQL NULL. */
static char *col_text_or_null(sqlite3_stmt *st, int i, arena *a)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    return sq_col_dup(st, i, a);
}

/* Column i as an integer, -1 when it is SQL NULL. */
static long long col_int_or_neg(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

static exec_status col_status(sqlite3_stmt *st, int i)
{
    int s = exec_status_of((const char *)sqlite3_column_text(st, i));
    return s >= 0 ? (exec_status)s : EXEC_FAILED; /* unreachable: the CHECK constraints */
}

/* Fills *e from a row of EXEC_COLUMNS, followed by output when with_output
 * (else e->output is NULL). */
static void execution_from_row(sqlite3_stmt *st, store_execution *e, bool with_output, arena *a)
{
    memset(e, 0, sizeof(*e));
    sq_col_copy(st, 0, e->id, sizeof(e->id));
    sq_col_copy(st, 1, e->workflow_id, sizeof(e->workflow_id));
    e->workflow_version = sqlite3_column_int64(st, 2);
    e->status = col_status(st, 3);
    sq_col_copy(st, 4, e->trigger, sizeof(e->trigger));
    sq_col_copy(st, 5, e->triggered_by, sizeof(e->triggered_by));
    sq_col_copy(st, 6, e->created_at, sizeof(e->created_at));
    sq_col_copy(st, 7, e->started_at, sizeof(e->started_at));
    sq_col_copy(st, 8, e->finished_at, sizeof(e->finished_at));
    e->duration_ms = col_int_or_neg(st, 9);
    e->memory_bytes = sqlite3_column_int64(st, 10);
    e->prompt_tokens = sqlite3_column_int64(st, 11);
    e->completion_tokens = sqlite3_column_int64(st, 12);
    e->total_tokens = sqlite3_column_int64(st, 13);
    e->cost_usd = sqlite3_column_double(st, 14);
    e->timeout_ms = sqlite3_column_int64(st, 15);
    e->max_concurrency = sqlite3_column_int64(st, 16);
    e->deadline_ms = sqlite3_column_int64(st, 17);
    e->claims = sqlite3_column_int64(st, 18);
    e->error = col_text_or_null(st, 19, a);
    e->input = sq_col_dup(st, 20, a);
    e->output = with_output ? col_text_or_null(st, EXEC_NCOLUMNS, a) : NULL;
}

/* Fills a store_exec_node from a row of q_nodes. */
static void node_from_row(sqlite3_stmt *st, void *item, arena *a)
{
    store_exec_node *n = item;
    n->node_id = sq_col_dup(st, 0, a);
    n->type = sq_col_dup(st, 1, a);
    n->status = col_status(st, 2);
    n->attempts = sqlite3_column_int64(st, 3);
    sq_col_copy(st, 4, n->started_at, sizeof(n->started_at));
    sq_col_copy(st, 5, n->finished_at, sizeof(n->finished_at));
    n->duration_ms = col_int_or_neg(st, 6);
    n->prompt_tokens = sqlite3_column_int64(st, 7);
    n->completion_tokens = sqlite3_column_int64(st, 8);
    n->total_tokens = sqlite3_column_int64(st, 9);
    n->cost_usd = sqlite3_column_double(st, 10);
    n->model = col_text_or_null(st, 11, a);
    n->error = col_text_or_null(st, 12, a);
    n->output = col_text_or_null(st, 13, a);
    n->seq = sqlite3_column_int64(st, 14);
}

typedef void (*row_fn)(sqlite3_stmt *st, void *item, arena *a);

/*
 * Steps the prepared st to its end, filling one item of size bytes per row
 * with fn into an array from a (doubled as it fills; the smaller copies stay
 * in the arena until it is freed), then releases st. *items and *n: the
 * array (NULL when empty) and its length.
 */
static aop_err rows_collect(sqlite3_stmt *st, const char *op, size_t size, row_fn fn,
                            void **items, int *n, arena *a)
{
    bool row = false;
    int cap = 0;
    aop_err rc;
    *items = NULL;
    *n = 0;
    while ((rc = sq_step(st, op, &row)) == AOP_OK && row) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            void *bigger = arena_alloc(a, size * (size_t)cap);
            if (*n)
                memcpy(bigger, *items, size * (size_t)*n);
            *items = bigger;
        }
        fn(st, (char *)*items + size * (size_t)(*n)++, a);
    }
    sq_release(st);
    return rc;
}

/* ---- one execution ---- */

aop_err sq_execution_insert(void *h, const store_execution *e)
{
    return sq_exec(h, q_insert, "execution_insert", NULL, "ttitttttt" "iiiiidiiii" "ttt", e->id,
                   e->workflow_id, e->workflow_version, exec_status_name(e->status), e->trigger,
                   opt(e->triggered_by), e->created_at, opt(e->started_at), opt(e->finished_at),
                   e->duration_ms, e->memory_bytes, e->prompt_tokens, e->completion_tokens,
                   e->total_tokens, e->cost_usd, e->timeout_ms, e->max_concurrency,
                   e->deadline_ms, e->claims, e->error, e->input, e->output);
}

aop_err sq_execution_get(void *h, const char *id, store_execution *out, arena *a)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    aop_err rc = sq_query_row(h, q_get, "execution_get", &st, "t", id);
    if (rc != AOP_OK)
        return rc;
    execution_from_row(st, out, true, a);
    sq_release(st);
    return AOP_OK;
}

aop_err sq_execution_nodes(void *h, const char *id, store_exec_node **out, int *n, arena *a)
{
    sqlite3_stmt *st = NULL;
    void *items = NULL;
    *out = NULL;
    *n = 0;
    aop_err rc = sq_prepare(h, q_nodes, "execution_nodes", &st, "t", id);
    if (rc == AOP_OK)
        rc = rows_collect(st, "execution_nodes", sizeof(store_exec_node), node_from_row, &items,
                          n, a);
    *out = items;
    return rc;
}

/* After an update that changed nothing: AOP_ERR_CONFLICT when the row
 * exists (it was not in the state the update wanted), else not found. */
static aop_err conflict_or_absent(void *h, const char *id, const char *op)
{
    long long found = 0;
    aop_err rc = sq_query_int(h, q_exists, op, &found, "t", id);
    if (rc != AOP_OK)
        return rc;
    return found ? AOP_ERR_CONFLICT : AOP_ERR_NOT_FOUND;
}

aop_err sq_execution_finish(void *h, const store_execution *e)
{
    long long n = 0;
    aop_err rc = sq_exec(h, q_finish, "execution_finish", &n, "ttttiiiiidt",
                         exec_status_name(e->status), e->output, e->error, opt(e->finished_at),
                         e->duration_ms, e->memory_bytes, e->prompt_tokens, e->completion_tokens,
                         e->total_tokens, e->cost_usd, e->id);
    if (rc == AOP_OK && n == 0)
        rc = conflict_or_absent(h, e->id, "execution_finish");
    return rc;
}

aop_err sq_execution_delete(void *h, const char *id)
{
    long long n = 0;
    aop_err rc = sq_exec(h, q_delete, "execution_delete", &n, "t", id);
    return rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc;
}

/* AOP_ERR_NOT_FOUND when there is no such workflow row (deleted or not). */
aop_err sq_workflow_analytics_add(void *h, const char *workflow_id, const store_wf_tally *t)
{
    long long n = 0;
    aop_err rc = sq_exec(h, q_analytics_add, "workflow_analytics_add", &n, "iiiiiidttt",
                         t->executions, t->succeeded, t->failed, t->duration_ms_total,
                         t->duration_count, t->total_tokens, t->cost_usd,
                         opt(t->last_executed_at), opt(t->last_executed_at), workflow_id);
    return rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc;
}

/* ---- nodes ---- */

aop_err sq_execution_node_put(void *h, const char *execution_id, const store_exec_node *n)
{
    return sq_exec(h, q_node_put, "execution_node_put", NULL, "ttttittiiiidtttt", execution_id,
                   n->node_id, n->type, exec_status_name(n->status), n->attempts,
                   opt(n->started_at), opt(n->finished_at), n->duration_ms, n->prompt_tokens,
                   n->completion_tokens, n->total_tokens, n->cost_usd, n->model, n->error,
                   n->output, execution_id);
}

aop_err sq_execution_nodes_end(void *h, const char *id, exec_status from, exec_status to,
                               const char *at, long long *n)
{
    return sq_exec(h, q_nodes_end, "execution_nodes_end", n, "ttttt", exec_status_name(to), at,
                   at, id, exec_status_name(from));
}

/* ---- the queue ---- */

/* Claimed rows in queue order: created_at, then id. */
static int by_queue_order(const void *x, const void *y)
{
    const store_execution *a = x, *b = y;
    int c = strcmp(a->created_at, b->created_at);
    return c ? c : strcmp(a->id, b->id);
}

/* RETURNING hands the rows back in no promised order, hence the sort. */
aop_err sq_execution_claim(void *h, const char *owner, long long now_ms, const char *now,
                           long long lease_until_ms, int limit, store_execution **out, int *n,
                           arena *a)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    *out = NULL;
    *n = 0;
    if (limit <= 0)
        return AOP_OK;
    *out = arena_alloc(a, sizeof(store_execution) * (size_t)limit);
    aop_err rc = sq_prepare(h, sq_execution_claim_sql, "execution_claim", &st, "titii", owner,
                            lease_until_ms, now, now_ms, (long long)limit);
    while (rc == AOP_OK && (rc = sq_step(st, "execution_claim", &row)) == AOP_OK && row)
        if (*n < limit)
            execution_from_row(st, &(*out)[(*n)++], true, a);
    sq_release(st);
    if (rc == AOP_OK)
        qsort(*out, (size_t)*n, sizeof(store_execution), by_queue_order);
    return rc;
}

aop_err sq_execution_renew(void *h, const char *owner, long long lease_until_ms, long long *n)
{
    return sq_exec(h, q_renew, "execution_renew", n, "it", lease_until_ms, owner);
}

aop_err sq_execution_requeue(void *h, long long before_ms, long long *n)
{
    return sq_exec(h, q_requeue, "execution_requeue", n, "i", before_ms);
}

aop_err sq_execution_release(void *h, const char *owner, long long *n)
{
    return sq_exec(h, q_release, "execution_release", n, "t", owner);
}

aop_err sq_execution_owned(void *h, const char *id, const char *owner, long long claims)
{
    long long owned = 0;
    aop_err rc = sq_query_int(h, q_owned, "execution_owned", &owned, "tti", id, owner,
                              claims);
    if (rc != AOP_OK)
        return rc;
    return owned ? AOP_OK : AOP_ERR_CONFLICT;
}

/* ---- the list ---- */

enum { F_READER = SQ_EXEC_READER, F_WORKFLOW = SQ_EXEC_WORKFLOW, F_STATUS = SQ_EXEC_STATUS,
       F_RANGE = SQ_EXEC_RANGE, F_ALL = 16 };
#define LIST_SORTS 4
#define LIST_VALUES 6 /* filter values at most: reader twice, workflow, status, from, to */

static char *q_list_page[F_ALL][LIST_SORTS][2];
static char *q_list_count[F_ALL];
static pthread_once_t list_once = PTHREAD_ONCE_INIT;

/* Appends one condition, the first after WHERE and the others after AND. */
static void where_term(buf *b, int *terms, const char *cond)
{
    buf_puts(b, (*terms)++ ? " AND " : " WHERE ");
    buf_puts(b, cond);
}

static void where_clause(buf *b, int f)
{
    int terms = 0;
    buf_puts(b, " FROM executions e");
    if (f & F_READER)
        where_term(b, &terms, "e.workflow_id IN (SELECT w.id FROM workflows w WHERE "
                              "w.deleted_at IS NULL AND (w.owner_id = ? OR w.id IN (SELECT "
                              "p.workflow_id FROM workflow_permissions p WHERE p.user_id = ?)))");
    if (f & F_WORKFLOW)
        where_term(b, &terms, "e.workflow_id = ?");
    /* With a workflow, its index bounds the rows read; the unary + keeps
     * SQLite from walking every row of the status instead (it would, for
     * the created_at order that index also gives). */
    if (f & F_STATUS)
        where_term(b, &terms, f & F_WORKFLOW ? "+e.status = ?" : "e.status = ?");
    if (f & F_RANGE)
        where_term(b, &terms, "e.created_at >= ? AND e.created_at < ?");
}

/* NULLS LAST both ways: unstarted or unfinished executions at the end
 * whatever the direction (SQLite still walks the sort's index). */
static void build_list_statements(void)
{
    static const char *const order[LIST_SORTS] = {"created_at", "started_at", "finished_at",
                                                  "duration_ms"};
    for (int f = 0; f < F_ALL; f++) {
        buf b;
        buf_init(&b, 0);
        buf_puts(&b, "SELECT COUNT(*)");
        where_clause(&b, f);
        q_list_count[f] = buf_take(&b, NULL);
        for (int s = 0; s < LIST_SORTS; s++) {
            for (int d = 0; d < 2; d++) {
                buf_init(&b, 0);
                buf_puts(&b, "SELECT " EXEC_COLUMNS);
                where_clause(&b, f);
                buf_printf(&b, " ORDER BY e.%s%s%s, e.id%s LIMIT ? OFFSET ?", order[s],
                           d ? " DESC" : "", s ? " NULLS LAST" : "", d ? " DESC" : "");
                q_list_page[f][s][d] = buf_take(&b, NULL);
            }
        }
    }
}

const char *sq_execution_list_sql(unsigned filters, store_exec_sort sort, bool desc, bool count)
{
    pthread_once(&list_once, build_list_statements);
    filters &= F_ALL - 1;
    if ((unsigned)sort >= LIST_SORTS)
        sort = STORE_EXEC_SORT_CREATED;
    return count ? q_list_count[filters] : q_list_page[filters][sort][desc];
}

/* The filters of q as bits, and their values in bind order in v; *nv of
 * them. An open end of the range binds its stand-in bound. */
static int list_filters(const store_exec_query *q, const char *v[LIST_VALUES], int *nv)
{
    int f = 0, n = 0;
    if (q->reader) {
        f |= F_READER;
        v[n++] = q->reader;
        v[n++] = q->reader;
    }
    if (q->workflow_id) {
        f |= F_WORKFLOW;
        v[n++] = q->workflow_id;
    }
    if (q->status >= 0 && q->status < EXEC_RUN_STATUSES) {
        f |= F_STATUS;
        v[n++] = exec_status_name((exec_status)q->status);
    }
    if (q->from || q->to) {
        f |= F_RANGE;
        v[n++] = q->from ? q->from : TS_MIN;
        v[n++] = q->to ? q->to : TS_MAX;
    }
    *nv = n;
    return f;
}

/* Binds the filter values and, when page, LIMIT and OFFSET after them. */
static aop_err bind_list(sqlite3_stmt *st, const char *const v[LIST_VALUES], int nv,
                         long long limit, long long offset, bool page)
{
    int i = 1, s = SQLITE_OK;
    for (int k = 0; k < nv && s == SQLITE_OK; k++, i++)
        s = sqlite3_bind_text(st, i, v[k], -1, SQLITE_STATIC);
    if (page && s == SQLITE_OK)
        s = sqlite3_bind_int64(st, i, limit);
    if (page && s == SQLITE_OK)
        s = sqlite3_bind_int64(st, i + 1, offset);
    return s == SQLITE_OK ? AOP_OK
                          : sq_error(s, "execution_list", sqlite3_errmsg(sqlite3_db_handle(st)));
}

/* The number of executions q matches. */
static aop_err list_count(void *h, int f, const char *const v[LIST_VALUES], int nv,
                          long long *total)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    *total = 0;
    aop_err rc = sq_prepare(h, q_list_count[f], "execution_list", &st, "");
    if (rc == AOP_OK)
        rc = bind_list(st, v, nv, 0, 0, false);
    if (rc == AOP_OK && (rc = sq_step(st, "execution_list", &row)) == AOP_OK && row)
        *total = sqlite3_column_int64(st, 0);
    sq_release(st);
    return rc;
}

aop_err sq_execution_list(void *h, const store_exec_query *q, store_execution **out, int *n,
                          long long *total, arena *a)
{
    pthread_once(&list_once, build_list_statements);
    const char *v[LIST_VALUES];
    int nv = 0, f = list_filters(q, v, &nv);
    sqlite3_stmt *st = NULL;
    bool row = false;
    *out = NULL;
    *n = 0;
    aop_err rc = list_count(h, f, v, nv, total);
    if (rc != AOP_OK || q->limit <= 0 || *total <= q->offset)
        return rc;
    long long room = *total - q->offset < q->limit ? *total - q->offset : q->limit;
    *out = arena_alloc(a, sizeof(store_execution) * (size_t)room);
    rc = sq_prepare(h, sq_execution_list_sql((unsigned)f, q->sort, q->desc, false),
                    "execution_list", &st, "");
    if (rc == AOP_OK)
        rc = bind_list(st, v, nv, q->limit, q->offset, true);
    while (rc == AOP_OK && *n < room && (rc = sq_step(st, "execution_list", &row)) == AOP_OK &&
           row)
        execution_from_row(st, &(*out)[(*n)++], false, a);
    sq_release(st);
    return rc;
}

/* ---- aggregates ---- */

/* Which executions a set of totals covers: its statements, and their
 * values (a workflow id, or a range's two bounds). */
typedef struct {
    const char *totals, *durations, *percentile;
    const char *fmt, *percentile_fmt;
    const char *v1, *v2;
} agg_scope;

/* The nearest-rank p-th percentile of the scope's n durations: the
 * ceil(p * n / 100)-th smallest. */
static aop_err percentile(void *h, const agg_scope *sc, const char *op, long long n, int p,
                          long long *out)
{
    long long offset = (p * n + 99) / 100 - 1;
    return sq_query_int(h, sc->percentile, op, out, sc->percentile_fmt, offset, sc->v1, sc->v2);
}

static aop_err durations_read(void *h, const agg_scope *sc, const char *op, store_exec_totals *t)
{
    sqlite3_stmt *st = NULL;
    aop_err rc = sq_query_row(h, sc->durations, op, &st, sc->fmt, sc->v1, sc->v2);
    if (rc != AOP_OK)
        return rc;
    long long n = sqlite3_column_int64(st, 0);
    t->duration_avg = sqlite3_column_double(st, 1);
    t->duration_max = sqlite3_column_int64(st, 2);
    sq_release(st);
    if (n == 0)
        return AOP_OK;
    rc = percentile(h, sc, op, n, 50, &t->duration_p50);
    if (rc == AOP_OK)
        rc = percentile(h, sc, op, n, 95, &t->duration_p95);
    return rc;
}

/* Fills *t over the scope's executions. */
static aop_err totals_read(void *h, const agg_scope *sc, const char *op, store_exec_totals *t)
{
    sqlite3_stmt *st = NULL;
    memset(t, 0, sizeof(*t));
    aop_err rc = sq_query_row(h, sc->totals, op, &st, sc->fmt, sc->v1, sc->v2);
    if (rc != AOP_OK)
        return rc;
    t->total = sqlite3_column_int64(st, 0);
    for (int i = 0; i < EXEC_RUN_STATUSES; i++)
        t->by_status[i] = sqlite3_column_int64(st, 1 + i);
    t->prompt_tokens = sqlite3_column_int64(st, 7);
    t->completion_tokens = sqlite3_column_int64(st, 8);
    t->total_tokens = sqlite3_column_int64(st, 9);
    t->cost_usd = sqlite3_column_double(st, 10);
    sq_col_copy(st, 11, t->last_executed_at, sizeof(t->last_executed_at));
    sq_release(st);
    return durations_read(h, sc, op, t);
}

static void node_stat_from_row(sqlite3_stmt *st, void *item, arena *a)
{
    store_exec_node_stat *s = item;
    s->node_id = sq_col_dup(st, 0, a);
    s->executions = sqlite3_column_int64(st, 1);
    s->failures = sqlite3_column_int64(st, 2);
    s->avg_duration_ms = sqlite3_column_double(st, 3);
    s->total_tokens = sqlite3_column_int64(st, 4);
    s->cost_usd = sqlite3_column_double(st, 5);
}

aop_err sq_execution_stats(void *h, const char *workflow_id, store_exec_totals *t,
                           store_exec_node_stat **nodes, int *n, arena *a)
{
    const agg_scope sc = {q_wf_totals, q_wf_durations, q_wf_percentile, "t", "it",
                          workflow_id, NULL};
    sqlite3_stmt *st = NULL;
    void *items = NULL;
    *nodes = NULL;
    *n = 0;
    aop_err rc = totals_read(h, &sc, "execution_stats", t);
    if (rc == AOP_OK)
        rc = sq_prepare(h, q_stats_nodes, "execution_stats", &st, "t", workflow_id);
    if (rc == AOP_OK)
        rc = rows_collect(st, "execution_stats", sizeof(store_exec_node_stat), node_stat_from_row,
                          &items, n, a);
    *nodes = items;
    return rc;
}

static void model_from_row(sqlite3_stmt *st, void *item, arena *a)
{
    store_exec_model_stat *m = item;
    m->model = sq_col_dup(st, 0, a);
    m->calls = sqlite3_column_int64(st, 1);
    m->total_tokens = sqlite3_column_int64(st, 2);
    m->cost_usd = sqlite3_column_double(st, 3);
}

static void day_from_row(sqlite3_stmt *st, void *item, arena *a)
{
    store_exec_day *d = item;
    (void)a;
    sq_col_copy(st, 0, d->date, sizeof(d->date));
    d->executions = sqlite3_column_int64(st, 1);
    d->failures = sqlite3_column_int64(st, 2);
    d->cost_usd = sqlite3_column_double(st, 3);
}

static void top_from_row(sqlite3_stmt *st, void *item, arena *a)
{
    store_wf_top *t = item;
    sq_col_copy(st, 0, t->id, sizeof(t->id));
    t->name = sq_col_dup(st, 1, a);
    t->executions = sqlite3_column_int64(st, 2);
    t->cost_usd = sqlite3_column_double(st, 3);
}

/* Runs one of the summary's lists over [from, to) with its row limit. */
static aop_err range_list(void *h, const char *sql, const char *from, const char *to, int max,
                          size_t size, row_fn fn, void **items, int *n, arena *a)
{
    sqlite3_stmt *st = NULL;
    *items = NULL;
    *n = 0;
    aop_err rc = sq_prepare(h, sql, "execution_summary", &st, "tti", from, to, (long long)max);
    if (rc == AOP_OK)
        rc = rows_collect(st, "execution_summary", size, fn, items, n, a);
    return rc;
}

aop_err sq_execution_summary(void *h, const char *from, const char *to, store_exec_totals *t,
                             store_exec_model_stat **models, int *nmodels, store_exec_day **days,
                             int *ndays, store_wf_top **top, int *ntop, arena *a)
{
    const char *lo = from ? from : TS_MIN, *hi = to ? to : TS_MAX;
    const agg_scope sc = {q_range_totals, q_range_durations, q_range_percentile, "tt", "itt",
                          lo, hi};
    void *m = NULL, *d = NULL, *w = NULL;
    *nmodels = *ndays = *ntop = 0;
    aop_err rc = totals_read(h, &sc, "execution_summary", t);
    if (rc == AOP_OK)
        rc = range_list(h, q_summary_models, lo, hi, STORE_EXEC_MAX_MODELS,
                        sizeof(store_exec_model_stat), model_from_row, &m, nmodels, a);
    if (rc == AOP_OK)
        rc = range_list(h, q_summary_days, lo, hi, STORE_EXEC_MAX_DAYS, sizeof(store_exec_day),
                        day_from_row, &d, ndays, a);
    if (rc == AOP_OK)
        rc = range_list(h, q_summary_top, lo, hi, STORE_WF_TOP, sizeof(store_wf_top),
                        top_from_row, &w, ntop, a);
    *models = m;
    *days = d;
    *top = w;
    return rc;
}

/* ---- retention ---- */

/*
 * Which ended rows go: those before a (created_at, id) bound, the larger of
 * (before, "") (every row created before `before`) and the keep-th newest
 * ended row (every row older than it). Ordering by (created_at, id) keeps
 * exactly keep rows even when several share a created_at.
 */
aop_err sq_execution_prune(void *h, const char *before, long long keep, int batch,
                           long long *n)
{
    char keep_at[32] = "", keep_id[UUID_STR_LEN] = "";
    const char *bound_at = before, *bound_id = "";
    sqlite3_stmt *st = NULL;
    *n = 0;
    if (batch <= 0)
        return AOP_OK;
    if (keep > 0) {
        aop_err rc = sq_query_row(h, q_prune_keep, "execution_prune", &st, "i", keep - 1);
        if (rc == AOP_ERR_NOT_FOUND) /* keep or fewer ended rows: the cap takes none */
            rc = AOP_OK;
        else if (rc == AOP_OK) {
            sq_col_copy(st, 0, keep_at, sizeof(keep_at));
            sq_col_copy(st, 1, keep_id, sizeof(keep_id));
            sq_release(st);
        }
        if (rc != AOP_OK)
            return rc;
    }
    if (keep_at[0] && (!bound_at || strcmp(keep_at, bound_at) >= 0)) {
        bound_at = keep_at;
        bound_id = keep_id;
    }
    if (!bound_at)
        return AOP_OK;
    return sq_exec(h, sq_execution_prune_sql, "execution_prune", n, "tti", bound_at, bound_id,
                   (long long)batch);
}

/*
 * PRAGMA incremental_vacuum takes no bound values, so the page count (an
 * integer, never text from outside) is written into the SQL, and the
 * statement is prepared apart from the cache, whose keys are the addresses
 * of static SQL texts. The pragma frees pages as it is stepped.
 */
aop_err sq_reclaim(void *h, long long pages)
{
    sqlite3_stmt *st = NULL;
    char sql[64];
    aop_err rc = sq_prepare(h, q_reclaim_conn, "reclaim", &st, "");
    if (rc != AOP_OK)
        return rc;
    sqlite3 *db = sqlite3_db_handle(st);
    sq_release(st);
    snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%lld)", pages > 0 ? pages : 0);
    int s = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    while (s == SQLITE_OK && (s = sqlite3_step(st)) == SQLITE_ROW)
        s = SQLITE_OK;
    if (s != SQLITE_DONE)
        rc = sq_error(s, "reclaim", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}
