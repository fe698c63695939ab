/*
 * pg_executions.c - executions, their node rows, the queue the engine takes
 * them from, and the aggregates over them, on PostgreSQL: the twin of
 * sqlite_executions.c (same results, order and errors).
 *
 * Several processes share the database at READ COMMITTED, so where SQLite
 * relies on its single writer this file locks:
 *  - a claim (the engine claims outside any transaction; it must not be
 *    called inside store_tx) takes the queued rows of limited workflows
 *    (max_concurrency > 0) in a transaction of its own under a
 *    transaction-level advisory lock (CLAIM_LOCK): those claims of every
 *    process take turns, and each sees the running rows the previous one
 *    committed, so max_concurrency holds exactly. It then takes rows of
 *    unlimited workflows in one statement without the lock: there is no
 *    count to keep, only rows to share out. Either part locks the rows it
 *    takes FOR UPDATE SKIP LOCKED, so a row another transaction holds
 *    (being cancelled, deleted, claimed by another process) is passed over
 *    instead of waited for.
 *  - execution_owned locks the row it checks (FOR NO KEY UPDATE) until the
 *    caller's transaction ends: the engine's writes of a run (node rows,
 *    finish) then happen under the lease they checked, as on SQLite, and
 *    writes of one execution's node rows take turns, which keeps seq
 *    (MAX + 1 at the first write) unique.
 *  - renew, requeue and prune pass over rows other transactions hold.
 *
 * As in sqlite_executions.c, "" timestamps and NULL texts are SQL NULL, a
 * negative duration_ms is NULL (read back as -1), and the list statements
 * are built once per combination of filters, sort and direction (never
 * freed: the address of a statement's text is its cache key).
 */
#include "core/buf.h"
#include "store/pg_int.h"

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

/* Bound integer $n that is NULL when negative. */
#define NULL_IF_NEG(n) "NULLIF(GREATEST(" n "::bigint, -1), -1)"

/* Bounds standing in for an open end of a created_at range: every RFC 3339
 * timestamp sorts at or after "" and before "9999" in any collation (unlike
 * SQLite's "~", which a linguistic collation orders first). */
#define TS_MIN ""
#define TS_MAX "9999"

#define CLAIM_WINDOW "10000" /* queued limited rows one claim looks at */
/* Candidates beyond the limit, in case some are held by other transactions
 * (cancelled or deleted meanwhile): a claim takes fewer than it could only
 * when more than this many of its first candidates are held. */
#define CLAIM_SLACK "64"
/* Key of the advisory lock claims take turns under ("AOPClaim"). */
#define CLAIM_LOCK "4706068386136811885"

static const char q_insert[] =
    "INSERT INTO executions (" EXEC_COLUMNS ", output) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
    "$9, " NULL_IF_NEG("$10") ", $11, $12, $13, $14, $15, $16, $17, $18, $19, $20::json, "
    "$21::json, $22::json)";
static const char q_get[] = "SELECT " EXEC_COLUMNS ", output FROM executions WHERE id = $1";
static const char q_exists[] = "SELECT COUNT(*) FROM executions WHERE id = $1";
static const char q_nodes[] =
    "SELECT node_id, type, status, attempts, started_at, finished_at, duration_ms, "
    "prompt_tokens, completion_tokens, total_tokens, cost_usd, model, error, output, seq "
    "FROM execution_nodes WHERE execution_id = $1 ORDER BY seq";

/* What a claim writes, the same for both parts: $1 owner, $2 lease_until,
 * $3 now (text), $4 now (ms); the start never before the creation (a row
 * committed after the claimer read its clock is younger). */
#define CLAIM_SET                                                                            \
    "UPDATE executions x SET status = 'running', lease_owner = $1, "                          \
    "lease_until = $2::bigint, claims = x.claims + 1, "                                      \
    "started_at = COALESCE(x.started_at, GREATEST($3::text, x.created_at COLLATE \"C\")), "   \
    "deadline_ms = CASE WHEN x.deadline_ms = 0 THEN $4::bigint + x.timeout_ms "              \
    "ELSE x.deadline_ms END "

/*
 * The queue is taken in two parts (pq_execution_claim), each oldest first
 * within its class: rows of limited workflows (max_concurrency > 0), then
 * rows of unlimited ones (0). The first alone needs to see what every
 * other claim committed; the second, almost all of a busy queue, is a plain
 * SKIP LOCKED take that any number of claimers can run at once.
 *
 * q_claim_limited, under q_claim_lock: sq_execution_claim_sql restricted
 * to limited rows. Oldest first, limited to what max_concurrency leaves
 * room for (a queued row's rank among its workflow's queued limited rows,
 * plus the workflow's running ones of any owner, must not pass its limit),
 * within a window of CLAIM_WINDOW rows that leaves out the workflows
 * already at their limit. The window is read from
 * executions_queue_limited_idx, so the statement costs next to nothing
 * while few limited rows are queued, however long the unlimited backlog.
 * The running counts are taken once per workflow (a join), the ranks in
 * byte order (COLLATE "C": the order of these fixed-form texts whatever
 * the database's collation, and a cheaper sort). Of the first limit +
 * CLAIM_SLACK candidates (an array: the rows are then read by key), the
 * oldest limit that no other transaction holds are locked (SKIP LOCKED
 * under the LIMIT: a skipped row does not count) and taken; e.status is
 * checked again on the locked row, so that one that changed since the
 * statement began is judged by its new version.
 */
static const char q_claim_limited[] =
    CLAIM_SET
    "FROM (SELECT e.id AS claimed_id FROM executions e WHERE e.id = ANY (ARRAY("
    "SELECT q.id FROM (SELECT id, created_at, workflow_id, max_concurrency, "
    "row_number() OVER (PARTITION BY workflow_id COLLATE \"C\" "
    "ORDER BY created_at COLLATE \"C\", id COLLATE \"C\") AS rn "
    "FROM (SELECT id, created_at, workflow_id, max_concurrency FROM executions "
    "WHERE status = 'queued' AND max_concurrency > 0 "
    "AND workflow_id NOT IN (SELECT workflow_id FROM executions "
    "WHERE status = 'running' GROUP BY workflow_id HAVING MIN(max_concurrency) > 0 "
    "AND COUNT(*) >= MAX(max_concurrency)) "
    "ORDER BY created_at, id LIMIT " CLAIM_WINDOW ") w) q "
    "LEFT JOIN (SELECT workflow_id, COUNT(*) AS running FROM executions "
    "WHERE status = 'running' GROUP BY workflow_id) r ON r.workflow_id = q.workflow_id "
    "WHERE q.rn + COALESCE(r.running, 0) <= q.max_concurrency "
    "ORDER BY q.created_at COLLATE \"C\", q.id COLLATE \"C\" "
    "LIMIT $5::bigint + " CLAIM_SLACK ")) AND e.status = 'queued' "
    "ORDER BY e.created_at, e.id LIMIT $5 FOR UPDATE OF e SKIP LOCKED) c "
    "WHERE x.id = c.claimed_id "
    "RETURNING " EXEC_COLUMNS ", output";
/*
 * q_claim_unlimited, without the lock, a statement committed by itself:
 * the oldest $5 queued rows of unlimited workflows that no other
 * transaction holds, read from executions_queue_idx (max_concurrency is
 * one of its columns, checked in the index), locked, then updated. A row
 * another claimer is taking at the same moment is locked, hence skipped:
 * it is not ours. One that another claimer took (or that was cancelled)
 * since this statement began is locked in its new version, whose status
 * is checked again (READ COMMITTED), so it is passed over too and the
 * LIMIT reads on: no row is taken twice. The ids are an array (as in
 * q_claim_limited) so that the rows are updated by key: joined to a
 * subquery instead, the planner, which cannot tell how few rows LIMIT $5
 * leaves, hashes them against a scan of the whole table.
 */
static const char q_claim_unlimited[] =
    CLAIM_SET
    "WHERE x.id = ANY (ARRAY(SELECT id FROM executions "
    "WHERE status = 'queued' AND max_concurrency = 0 "
    "ORDER BY created_at, id LIMIT $5 FOR UPDATE SKIP LOCKED)) "
    "RETURNING " EXEC_COLUMNS ", output";
static const char q_claim_lock[] = "SELECT pg_advisory_xact_lock(" CLAIM_LOCK ")";
/* Renew and requeue pass over rows another transaction holds (a run's
 * writes, under execution_owned's lock; a cancel) rather than wait: locking
 * many rows in their own order while those take theirs one by one could
 * deadlock. A row passed over is renewed or requeued by the next round. */
static const char q_renew[] =
    "UPDATE executions x SET lease_until = $1::bigint FROM (SELECT id FROM executions "
    "WHERE status = 'running' AND lease_owner = $2 FOR NO KEY UPDATE SKIP LOCKED) r "
    "WHERE x.id = r.id";
static const char q_requeue[] =
    "UPDATE executions x SET status = 'queued', lease_owner = NULL, lease_until = NULL "
    "FROM (SELECT id FROM executions WHERE status = 'running' AND lease_until < $1::bigint "
    "FOR NO KEY UPDATE SKIP LOCKED) r WHERE x.id = r.id";
static const char q_release[] =
    "UPDATE executions SET status = 'queued', lease_owner = NULL, lease_until = NULL "
    "WHERE status = 'running' AND lease_owner = $1";
static const char q_owned[] =
    "SELECT 1 FROM executions WHERE id = $1 AND status = 'running' AND lease_owner = $2 "
    "AND claims = $3::bigint FOR NO KEY UPDATE";

/* seq: MAX + 1 over the execution's rows, taken at the first write. */
static const char q_node_put[] =
    "INSERT INTO execution_nodes AS n (execution_id, node_id, type, status, attempts, "
    "started_at, finished_at, duration_ms, prompt_tokens, completion_tokens, total_tokens, "
    "cost_usd, model, error, output, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, "
    NULL_IF_NEG("$8") ", $9, $10, $11, $12, $13, $14::json, $15::json, "
    "(SELECT COALESCE(MAX(s.seq) + 1, 0) FROM execution_nodes s WHERE s.execution_id = $1)) "
    "ON CONFLICT (execution_id, node_id) DO UPDATE SET type = excluded.type, "
    "status = excluded.status, attempts = excluded.attempts, started_at = excluded.started_at, "
    "finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, "
    "prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, "
    "total_tokens = excluded.total_tokens, cost_usd = excluded.cost_usd, "
    "model = excluded.model, error = excluded.error, output = excluded.output";
/* Whole milliseconds between the two instants, rounded; a NULL end (a
 * node skipped) leaves no duration, as SQLite's max(0, NULL). */
static const char q_nodes_end[] =
    "UPDATE execution_nodes SET status = $1, finished_at = $2::text, duration_ms = CASE "
    "WHEN started_at IS NULL THEN duration_ms WHEN $2::text IS NULL THEN NULL "
    "ELSE GREATEST(0, round(EXTRACT(EPOCH FROM ($2::text::timestamptz - "
    "started_at::timestamptz)) * 1000))::bigint END "
    "WHERE execution_id = $3 AND status = $4";
static const char q_finish[] =
    "UPDATE executions SET status = $1, output = $2::json, error = $3::json, finished_at = $4, "
    "duration_ms = " NULL_IF_NEG("$5") ", memory_bytes = $6, prompt_tokens = $7, "
    "completion_tokens = $8, total_tokens = $9, cost_usd = $10, lease_owner = NULL, "
    "lease_until = NULL WHERE id = $11 AND status IN ('queued', 'running')";
/* Node rows go with it (ON DELETE CASCADE). */
static const char q_delete[] = "DELETE FROM executions WHERE id = $1";

/* Aggregates: the same totals over one workflow ($1) or a created_at range
 * ($1, $2). Durations count executions that started and finished; the
 * nearest-rank p-th percentile of n of them is the ceil(p * n / 100)-th
 * smallest, computed in integers as sq_execution_stats does. */
#define TOTALS_SELECT                                                                        \
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'queued'), "                           \
    "COUNT(*) FILTER (WHERE status = 'running'), "                                           \
    "COUNT(*) FILTER (WHERE status = 'succeeded'), "                                         \
    "COUNT(*) FILTER (WHERE status = 'failed'), "                                            \
    "COUNT(*) FILTER (WHERE status = 'cancelled'), "                                         \
    "COUNT(*) FILTER (WHERE status = 'timed_out'), COALESCE(SUM(prompt_tokens), 0), "        \
    "COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(total_tokens), 0), "                  \
    "COALESCE(SUM(cost_usd), 0), MAX(started_at) FROM executions WHERE "
#define DURATIONS_SELECT                                                                     \
    "SELECT COUNT(*), COALESCE(AVG(duration_ms), 0)::float8, COALESCE(MAX(duration_ms), 0), " \
    "COALESCE(MAX(duration_ms) FILTER (WHERE rn = (50 * n + 99) / 100), 0), "                 \
    "COALESCE(MAX(duration_ms) FILTER (WHERE rn = (95 * n + 99) / 100), 0) "                  \
    "FROM (SELECT duration_ms, row_number() OVER (ORDER BY duration_ms) AS rn, "             \
    "COUNT(*) OVER () AS n FROM executions WHERE "
#define RAN " AND started_at IS NOT NULL AND finished_at IS NOT NULL AND duration_ms IS NOT NULL"
#define OF_WORKFLOW "workflow_id = $1"
#define IN_RANGE "created_at >= $1 AND created_at < $2"

static const char q_wf_totals[] = TOTALS_SELECT OF_WORKFLOW;
static const char q_wf_durations[] = DURATIONS_SELECT OF_WORKFLOW RAN ") d";
static const char q_range_totals[] = TOTALS_SELECT IN_RANGE;
static const char q_range_durations[] = DURATIONS_SELECT IN_RANGE RAN ") d";

static const char q_stats_nodes[] =
    "SELECT n.node_id, COUNT(*), COUNT(*) FILTER (WHERE n.status IN ('failed', 'timed_out')), "
    "COALESCE(AVG(n.duration_ms), 0)::float8, COALESCE(SUM(n.total_tokens), 0), "
    "COALESCE(SUM(n.cost_usd), 0) FROM executions e "
    "JOIN execution_nodes n ON n.execution_id = e.id "
    "WHERE e.workflow_id = $1 AND n.status NOT IN ('skipped', 'pending') GROUP BY n.node_id "
    "ORDER BY n.node_id COLLATE \"C\"";
static const char q_summary_models[] =
    "SELECT n.model, COUNT(*) AS calls, COALESCE(SUM(n.total_tokens), 0), "
    "COALESCE(SUM(n.cost_usd), 0) FROM executions e "
    "JOIN execution_nodes n ON n.execution_id = e.id "
    "WHERE e.created_at >= $1 AND e.created_at < $2 AND n.model IS NOT NULL "
    "GROUP BY n.model ORDER BY calls DESC, n.model COLLATE \"C\" LIMIT $3";
static const char q_summary_days[] =
    "SELECT day, runs, failures, cost FROM (SELECT substr(created_at, 1, 10) AS day, "
    "COUNT(*) AS runs, COUNT(*) FILTER (WHERE status IN ('failed', 'timed_out')) AS failures, "
    "COALESCE(SUM(cost_usd), 0) AS cost FROM executions WHERE " IN_RANGE
    " GROUP BY day ORDER BY day DESC LIMIT $3) d ORDER BY day";
static const char q_summary_top[] =
    "SELECT t.workflow_id, COALESCE(w.name, ''), t.runs, t.cost FROM (SELECT workflow_id, "
    "COUNT(*) AS runs, COALESCE(SUM(cost_usd), 0) AS cost FROM executions WHERE " IN_RANGE
    " GROUP BY workflow_id ORDER BY runs DESC, cost DESC, workflow_id LIMIT $3) t "
    "LEFT JOIN workflows w ON w.id = t.workflow_id ORDER BY t.runs DESC, t.cost DESC, "
    "t.workflow_id";

/* Pruning: ended rows, newest first, for the keep cap; then the oldest
 * below a (created_at, id) bound (on executions_ended_idx), deleted by key
 * (an array, so that the delete never scans the table). A row another
 * pruner is deleting is skipped, not waited for. */
static const char q_prune_keep[] =
    "SELECT created_at, id FROM executions WHERE status NOT IN ('queued', 'running') "
    "ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $1";
static const char q_prune[] =
    "DELETE FROM executions WHERE id = ANY (ARRAY(SELECT id FROM executions "
    "WHERE status NOT IN ('queued', 'running') AND (created_at, id) < ($1, $2) "
    "ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED))";

/* ---- rows ---- */

/* s when it holds something, else NULL (bound as SQL NULL). */
static const char *opt(const char *s)
{
    return s && *s ? s : NULL;
}

/* Column i as an arena string, or NULL when it is SQL NULL. */
static char *col_text_or_null(const PGresult *res, int row, int i, arena *a)
{
    return pq_col_null(res, row, i) ? NULL : pq_col_dup(res, row, i, a);
}

/* Column i as an integer, -1 when it is SQL NULL. */
static long long col_int_or_neg(const PGresult *res, int row, int i)
{
    return pq_col_null(res, row, i) ? -1 : pq_col_int(res, row, i);
}

static exec_status col_status(const PGresult *res, int row, int i)
{
    int s = exec_status_of(PQgetvalue(res, row, i));
    return s >= 0 ? (exec_status)s : EXEC_FAILED; /* unreachable: the CHECK constraints */
}

/* Fills *e from row r of EXEC_COLUMNS, followed by output when with_output
 * (else e->output is NULL). */
static void execution_from_row(const PGresult *res, int r, store_execution *e, bool with_output,
                               arena *a)
{
    memset(e, 0, sizeof(*e));
    pq_col_copy(res, r, 0, e->id, sizeof(e->id));
    pq_col_copy(res, r, 1, e->workflow_id, sizeof(e->workflow_id));
    e->workflow_version = pq_col_int(res, r, 2);
    e->status = col_status(res, r, 3);
    pq_col_copy(res, r, 4, e->trigger, sizeof(e->trigger));
    pq_col_copy(res, r, 5, e->triggered_by, sizeof(e->triggered_by));
    pq_col_copy(res, r, 6, e->created_at, sizeof(e->created_at));
    pq_col_copy(res, r, 7, e->started_at, sizeof(e->started_at));
    pq_col_copy(res, r, 8, e->finished_at, sizeof(e->finished_at));
    e->duration_ms = col_int_or_neg(res, r, 9);
    e->memory_bytes = pq_col_int(res, r, 10);
    e->prompt_tokens = pq_col_int(res, r, 11);
    e->completion_tokens = pq_col_int(res, r, 12);
    e->total_tokens = pq_col_int(res, r, 13);
    e->cost_usd = pq_col_double(res, r, 14);
    e->timeout_ms = pq_col_int(res, r, 15);
    e->max_concurrency = pq_col_int(res, r, 16);
    e->deadline_ms = pq_col_int(res, r, 17);
    e->claims = pq_col_int(res, r, 18);
    e->error = col_text_or_null(res, r, 19, a);
    e->input = pq_col_dup(res, r, 20, a);
    e->output = with_output ? col_text_or_null(res, r, EXEC_NCOLUMNS, a) : NULL;
}

/* Fills a store_exec_node from row r of q_nodes. */
static void node_from_row(const PGresult *res, int r, void *item, arena *a)
{
    store_exec_node *n = item;
    n->node_id = pq_col_dup(res, r, 0, a);
    n->type = pq_col_dup(res, r, 1, a);
    n->status = col_status(res, r, 2);
    n->attempts = pq_col_int(res, r, 3);
    pq_col_copy(res, r, 4, n->started_at, sizeof(n->started_at));
    pq_col_copy(res, r, 5, n->finished_at, sizeof(n->finished_at));
    n->duration_ms = col_int_or_neg(res, r, 6);
    n->prompt_tokens = pq_col_int(res, r, 7);
    n->completion_tokens = pq_col_int(res, r, 8);
    n->total_tokens = pq_col_int(res, r, 9);
    n->cost_usd = pq_col_double(res, r, 10);
    n->model = col_text_or_null(res, r, 11, a);
    n->error = col_text_or_null(res, r, 12, a);
    n->output = col_text_or_null(res, r, 13, a);
    n->seq = pq_col_int(res, r, 14);
}

typedef void (*row_fn)(const PGresult *res, int r, void *item, arena *a);

/*
 * Reads every row of res with fn into an array of items of size bytes from
 * a, then clears res. *items and *n: the array (NULL when empty) and its
 * length.
 */
static void rows_collect(PGresult *res, size_t size, row_fn fn, void **items, int *n, arena *a)
{
    int rows = PQntuples(res);
    *items = rows > 0 ? arena_alloc(a, size * (size_t)rows) : NULL;
    for (int r = 0; r < rows; r++)
        fn(res, r, (char *)*items + size * (size_t)r, a);
    *n = rows;
    PQclear(res);
}

/* ---- one execution ---- */

aop_err pq_execution_insert(void *h, const store_execution *e)
{
    return pq_exec(h, q_insert, "execution_insert", NULL, "ttitttttt" "iiiiidiiii" "ttt", e->id,
                   e->workflow_id, e->workflow_version, exec_status_name(e->status), e->trigger,
                   opt(e->triggered_by), e->created_at, opt(e->started_at), opt(e->finished_at),
                   e->duration_ms, e->memory_bytes, e->prompt_tokens, e->completion_tokens,
                   e->total_tokens, e->cost_usd, e->timeout_ms, e->max_concurrency,
                   e->deadline_ms, e->claims, e->error, e->input, e->output);
}

aop_err pq_execution_get(void *h, const char *id, store_execution *out, arena *a)
{
    PGresult *res = NULL;
    memset(out, 0, sizeof(*out));
    aop_err rc = pq_query_row(h, q_get, "execution_get", &res, "t", id);
    if (rc != AOP_OK)
        return rc;
    execution_from_row(res, 0, out, true, a);
    PQclear(res);
    return AOP_OK;
}

aop_err pq_execution_nodes(void *h, const char *id, store_exec_node **out, int *n, arena *a)
{
    PGresult *res = NULL;
    void *items = NULL;
    *out = NULL;
    *n = 0;
    aop_err rc = pq_query(h, q_nodes, "execution_nodes", &res, "t", id);
    if (rc != AOP_OK)
        return rc;
    rows_collect(res, sizeof(store_exec_node), node_from_row, &items, n, a);
    *out = items;
    return AOP_OK;
}

/* After an update that changed nothing: AOP_ERR_CONFLICT when the row
 * exists (it was not in the state the update wanted), else not found. */
static aop_err conflict_or_absent(void *h, const char *id, const char *op)
{
    long long found = 0;
    aop_err rc = pq_query_int(h, q_exists, op, &found, "t", id);
    if (rc != AOP_OK)
        return rc;
    return found ? AOP_ERR_CONFLICT : AOP_ERR_NOT_FOUND;
}

aop_err pq_execution_finish(void *h, const store_execution *e)
{
    long long n = 0;
    aop_err rc = pq_exec(h, q_finish, "execution_finish", &n, "ttttiiiiidt",
                         exec_status_name(e->status), e->output, e->error, opt(e->finished_at),
                         e->duration_ms, e->memory_bytes, e->prompt_tokens, e->completion_tokens,
                         e->total_tokens, e->cost_usd, e->id);
    if (rc == AOP_OK && n == 0)
        rc = conflict_or_absent(h, e->id, "execution_finish");
    return rc;
}

aop_err pq_execution_delete(void *h, const char *id)
{
    long long n = 0;
    aop_err rc = pq_exec(h, q_delete, "execution_delete", &n, "t", id);
    return rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc;
}

/* ---- nodes ---- */

aop_err pq_execution_node_put(void *h, const char *execution_id, const store_exec_node *n)
{
    return pq_exec(h, q_node_put, "execution_node_put", NULL, "ttttittiiiidttt", execution_id,
                   n->node_id, n->type, exec_status_name(n->status), n->attempts,
                   opt(n->started_at), opt(n->finished_at), n->duration_ms, n->prompt_tokens,
                   n->completion_tokens, n->total_tokens, n->cost_usd, n->model, n->error,
                   n->output);
}

aop_err pq_execution_nodes_end(void *h, const char *id, exec_status from, exec_status to,
                               const char *at, long long *n)
{
    return pq_exec(h, q_nodes_end, "execution_nodes_end", n, "tttt", exec_status_name(to),
                   opt(at), id, exec_status_name(from));
}

/* ---- the queue ---- */

/* Claimed rows in queue order: created_at, then id. */
static int by_queue_order(const void *x, const void *y)
{
    const store_execution *a = x, *b = y;
    int c = strcmp(a->created_at, b->created_at);
    return c ? c : strcmp(a->id, b->id);
}

/* Runs one claim statement for up to limit - *n rows, appending them to
 * out. */
static aop_err claim_rows(void *h, const char *sql, const char *owner, long long now_ms,
                          const char *now, long long lease_until_ms, int limit,
                          store_execution *out, int *n, arena *a)
{
    PGresult *res = NULL;
    aop_err rc = pq_query(h, sql, "execution_claim", &res, "titii", owner, lease_until_ms, now,
                          now_ms, (long long)(limit - *n));
    if (rc != AOP_OK)
        return rc;
    for (int r = 0; r < PQntuples(res) && *n < limit; r++)
        execution_from_row(res, r, &out[(*n)++], true, a);
    PQclear(res);
    return AOP_OK;
}

/*
 * Called outside any transaction (the engine claims outside one). First
 * the limited workflows, in a short transaction of their own: BEGIN, the
 * advisory lock, q_claim_limited, COMMIT (the lock goes with it; rolled
 * back on any error). Then, for what room is left, the unlimited ones:
 * q_claim_unlimited alone, committed by itself, without the lock, so that
 * the bulk of a backlog is claimed by any number of processes at once and
 * the serialized part stays short. Each part is oldest first within its
 * class, not across them: the limited rows a claim may take come first,
 * even younger ones (no more than their limits leave room for). A
 * workflow whose limit was set while rows of it were queued has rows of
 * both classes: its unlimited ones, claimed without the lock, count
 * against the limit once committed. When the second part fails after the
 * first committed, the rows of the first are handed back (they run under
 * owner's lease already; the error is logged and the next claim tries
 * again). RETURNING hands the rows back in no promised order, hence the
 * sort into queue order (created_at, id).
 */
aop_err pq_execution_claim(void *h, const char *owner, long long now_ms, const char *now,
                           long long lease_until_ms, int limit, store_execution **out, int *n,
                           arena *a)
{
    *out = NULL;
    *n = 0;
    if (limit <= 0)
        return AOP_OK;
    *out = arena_alloc(a, sizeof(store_execution) * (size_t)limit);
    aop_err rc = pq_begin(h);
    if (rc == AOP_OK)
        rc = pq_exec(h, q_claim_lock, "execution_claim", NULL, "");
    if (rc == AOP_OK)
        rc = claim_rows(h, q_claim_limited, owner, now_ms, now, lease_until_ms, limit, *out, n,
                        a);
    if (rc == AOP_OK)
        rc = pq_commit(h);
    if (rc != AOP_OK) {
        pq_rollback(h);
        *n = 0;
        return rc;
    }
    if (*n < limit) {
        int limited = *n;
        rc = claim_rows(h, q_claim_unlimited, owner, now_ms, now, lease_until_ms, limit, *out, n,
                        a);
        if (rc != AOP_OK && limited == 0)
            return rc;
    }
    qsort(*out, (size_t)*n, sizeof(store_execution), by_queue_order);
    return AOP_OK;
}

aop_err pq_execution_renew(void *h, const char *owner, long long lease_until_ms, long long *n)
{
    return pq_exec(h, q_renew, "execution_renew", n, "it", lease_until_ms, owner);
}

aop_err pq_execution_requeue(void *h, long long before_ms, long long *n)
{
    return pq_exec(h, q_requeue, "execution_requeue", n, "i", before_ms);
}

aop_err pq_execution_release(void *h, const char *owner, long long *n)
{
    return pq_exec(h, q_release, "execution_release", n, "t", owner);
}

/* Locks the row until the caller's transaction ends (see the top). */
aop_err pq_execution_owned(void *h, const char *id, const char *owner, long long claims)
{
    PGresult *res = NULL;
    aop_err rc = pq_query_row(h, q_owned, "execution_owned", &res, "tti", id, owner, claims);
    if (rc == AOP_ERR_NOT_FOUND)
        return AOP_ERR_CONFLICT;
    if (rc == AOP_OK)
        PQclear(res);
    return rc;
}

/* ---- the list ---- */

enum { F_READER = 1, F_WORKFLOW = 2, F_STATUS = 4, F_RANGE = 8, F_ALL = 16 };
#define LIST_SORTS 4
#define LIST_VALUES 5 /* filter values at most: reader, workflow, status, from, to */

static char *q_list_page[F_ALL][LIST_SORTS][2];
static char *q_list_count[F_ALL];
static pthread_once_t list_once = PTHREAD_ONCE_INIT;

/* Appends one condition, the first after WHERE and the others after AND;
 * cond's "%d"s are the number of the next parameter (one per %d). */
static void where_term(buf *b, int *terms, int *param, const char *cond, int nparams)
{
    buf_puts(b, (*terms)++ ? " AND " : " WHERE ");
    if (nparams == 1)
        buf_printf(b, cond, *param);
    else
        buf_printf(b, cond, *param, *param + 1);
    *param += nparams;
}

/* The reader's id is bound once and used three times. */
static int where_clause(buf *b, int f)
{
    int terms = 0, param = 1;
    buf_puts(b, " FROM executions e");
    if (f & F_READER) {
        buf_puts(b, " WHERE e.workflow_id IN (SELECT w.id FROM workflows w WHERE "
                    "w.deleted_at IS NULL AND ");
        buf_printf(b, "(w.owner_id = $%d OR w.editors @> jsonb_build_array($%d::text) OR "
                      "w.viewers @> jsonb_build_array($%d::text)))", param, param, param);
        terms++;
        param++;
    }
    if (f & F_WORKFLOW)
        where_term(b, &terms, &param, "e.workflow_id = $%d", 1);
    if (f & F_STATUS)
        where_term(b, &terms, &param, "e.status = $%d", 1);
    if (f & F_RANGE)
        where_term(b, &terms, &param, "e.created_at >= $%d AND e.created_at < $%d", 2);
    return param;
}

/* NULLS LAST both ways: unstarted or unfinished executions at the end
 * whatever the direction. */
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
                int p = where_clause(&b, f);
                buf_printf(&b, " ORDER BY e.%s%s%s, e.id%s LIMIT $%d OFFSET $%d", order[s],
                           d ? " DESC" : "", s ? " NULLS LAST" : "", d ? " DESC" : "", p, p + 1);
                q_list_page[f][s][d] = buf_take(&b, NULL);
            }
        }
    }
}

/* The filters of q as bits, and their values in bind order in v; *nv of
 * them. An open end of the range binds its stand-in bound. */
static int list_filters(const store_exec_query *q, const char *v[LIST_VALUES], int *nv)
{
    int f = 0, n = 0;
    if (q->reader) {
        f |= F_READER;
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

aop_err pq_execution_list(void *h, const store_exec_query *q, store_execution **out, int *n,
                          long long *total, arena *a)
{
    pthread_once(&list_once, build_list_statements);
    const char *v[LIST_VALUES];
    int nv = 0, f = list_filters(q, v, &nv);
    int sort = (unsigned)q->sort < LIST_SORTS ? (int)q->sort : STORE_EXEC_SORT_CREATED;
    PGresult *res = NULL;
    *out = NULL;
    *n = 0;
    *total = 0;
    aop_err rc = pq_query_page(h, q_list_count[f], "execution_list", &res, nv, v, false, 0, 0);
    if (rc != AOP_OK)
        return rc;
    *total = PQntuples(res) > 0 ? pq_col_int(res, 0, 0) : 0;
    PQclear(res);
    long long offset = q->offset > 0 ? q->offset : 0; /* as SQLite reads it */
    if (q->limit <= 0 || *total <= offset)
        return AOP_OK;
    rc = pq_query_page(h, q_list_page[f][sort][q->desc ? 1 : 0], "execution_list", &res, nv, v,
                       true, q->limit, offset);
    if (rc != AOP_OK)
        return rc;
    int rows = PQntuples(res) < q->limit ? PQntuples(res) : (int)q->limit;
    if (rows > 0)
        *out = arena_alloc(a, sizeof(store_execution) * (size_t)rows);
    for (int r = 0; r < rows; r++)
        execution_from_row(res, r, &(*out)[(*n)++], false, a);
    PQclear(res);
    return AOP_OK;
}

/* ---- aggregates ---- */

/* Which executions a set of totals covers: its statements, and their
 * values (a workflow id, or a range's two bounds). */
typedef struct {
    const char *totals, *durations;
    const char *fmt;
    const char *v1, *v2;
} agg_scope;

static aop_err durations_read(void *h, const agg_scope *sc, const char *op, store_exec_totals *t)
{
    PGresult *res = NULL;
    aop_err rc = pq_query_row(h, sc->durations, op, &res, sc->fmt, sc->v1, sc->v2);
    if (rc != AOP_OK)
        return rc;
    t->duration_avg = pq_col_double(res, 0, 1);
    t->duration_max = pq_col_int(res, 0, 2);
    t->duration_p50 = pq_col_int(res, 0, 3);
    t->duration_p95 = pq_col_int(res, 0, 4);
    PQclear(res);
    return AOP_OK;
}

/* Fills *t over the scope's executions. */
static aop_err totals_read(void *h, const agg_scope *sc, const char *op, store_exec_totals *t)
{
    PGresult *res = NULL;
    memset(t, 0, sizeof(*t));
    aop_err rc = pq_query_row(h, sc->totals, op, &res, sc->fmt, sc->v1, sc->v2);
    if (rc != AOP_OK)
        return rc;
    t->total = pq_col_int(res, 0, 0);
    for (int i = 0; i < EXEC_RUN_STATUSES; i++)
        t->by_status[i] = pq_col_int(res, 0, 1 + i);
    t->prompt_tokens = pq_col_int(res, 0, 7);
    t->completion_tokens = pq_col_int(res, 0, 8);
    t->total_tokens = pq_col_int(res, 0, 9);
    t->cost_usd = pq_col_double(res, 0, 10);
    pq_col_copy(res, 0, 11, t->last_executed_at, sizeof(t->last_executed_at));
    PQclear(res);
    return durations_read(h, sc, op, t);
}

static void node_stat_from_row(const PGresult *res, int r, void *item, arena *a)
{
    store_exec_node_stat *s = item;
    s->node_id = pq_col_dup(res, r, 0, a);
    s->executions = pq_col_int(res, r, 1);
    s->failures = pq_col_int(res, r, 2);
    s->avg_duration_ms = pq_col_double(res, r, 3);
    s->total_tokens = pq_col_int(res, r, 4);
    s->cost_usd = pq_col_double(res, r, 5);
}

aop_err pq_execution_stats(void *h, const char *workflow_id, store_exec_totals *t,
                           store_exec_node_stat **nodes, int *n, arena *a)
{
    const agg_scope sc = {q_wf_totals, q_wf_durations, "t", workflow_id, NULL};
    PGresult *res = NULL;
    void *items = NULL;
    *nodes = NULL;
    *n = 0;
    aop_err rc = totals_read(h, &sc, "execution_stats", t);
    if (rc == AOP_OK)
        rc = pq_query(h, q_stats_nodes, "execution_stats", &res, "t", workflow_id);
    if (rc != AOP_OK)
        return rc;
    rows_collect(res, sizeof(store_exec_node_stat), node_stat_from_row, &items, n, a);
    *nodes = items;
    return AOP_OK;
}

static void model_from_row(const PGresult *res, int r, void *item, arena *a)
{
    store_exec_model_stat *m = item;
    m->model = pq_col_dup(res, r, 0, a);
    m->calls = pq_col_int(res, r, 1);
    m->total_tokens = pq_col_int(res, r, 2);
    m->cost_usd = pq_col_double(res, r, 3);
}

static void day_from_row(const PGresult *res, int r, void *item, arena *a)
{
    store_exec_day *d = item;
    (void)a;
    pq_col_copy(res, r, 0, d->date, sizeof(d->date));
    d->executions = pq_col_int(res, r, 1);
    d->failures = pq_col_int(res, r, 2);
    d->cost_usd = pq_col_double(res, r, 3);
}

static void top_from_row(const PGresult *res, int r, void *item, arena *a)
{
    store_wf_top *t = item;
    pq_col_copy(res, r, 0, t->id, sizeof(t->id));
    t->name = pq_col_dup(res, r, 1, a);
    t->executions = pq_col_int(res, r, 2);
    t->cost_usd = pq_col_double(res, r, 3);
}

/* Runs one of the summary's lists over [from, to) with its row limit. */
static aop_err range_list(void *h, const char *sql, const char *from, const char *to, int max,
                          size_t size, row_fn fn, void **items, int *n, arena *a)
{
    PGresult *res = NULL;
    *items = NULL;
    *n = 0;
    aop_err rc = pq_query(h, sql, "execution_summary", &res, "tti", from, to, (long long)max);
    if (rc == AOP_OK)
        rows_collect(res, size, fn, items, n, a);
    return rc;
}

aop_err pq_execution_summary(void *h, const char *from, const char *to, store_exec_totals *t,
                             store_exec_model_stat **models, int *nmodels, store_exec_day **days,
                             int *ndays, store_wf_top **top, int *ntop, arena *a)
{
    const char *lo = from ? from : TS_MIN, *hi = to ? to : TS_MAX;
    const agg_scope sc = {q_range_totals, q_range_durations, "tt", lo, hi};
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
 * Which ended rows go, as sq_execution_prune: those before a (created_at,
 * id) bound, the larger of (before, "") and the keep-th newest ended row.
 */
aop_err pq_execution_prune(void *h, const char *before, long long keep, int batch,
                           long long *n)
{
    char keep_at[32] = "", keep_id[UUID_STR_LEN] = "";
    const char *bound_at = before, *bound_id = "";
    PGresult *res = NULL;
    *n = 0;
    if (batch <= 0)
        return AOP_OK;
    if (keep > 0) {
        aop_err rc = pq_query_row(h, q_prune_keep, "execution_prune", &res, "i", keep - 1);
        if (rc == AOP_ERR_NOT_FOUND) /* keep or fewer ended rows: the cap takes none */
            rc = AOP_OK;
        else if (rc == AOP_OK) {
            pq_col_copy(res, 0, 0, keep_at, sizeof(keep_at));
            pq_col_copy(res, 0, 1, keep_id, sizeof(keep_id));
            PQclear(res);
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
    return pq_exec(h, q_prune, "execution_prune", n, "tti", bound_at, bound_id,
                   (long long)batch);
}
