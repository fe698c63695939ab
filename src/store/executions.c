/*
 * executions.c - executions, their node rows, the queue the engine takes
 * them from, and the aggregates over them.
 *
 * The queue is the executions table itself. SQLite claims with one UPDATE
 * ... RETURNING (it writes one statement at a time). PostgreSQL processes
 * share the database at READ COMMITTED: the claim comes in two parts under
 * an advisory lock and SKIP LOCKED (claim_pg); execution_owned locks the
 * row it checks until the caller's transaction ends, so a run's writes
 * happen under the lease they checked and one execution's node rows are
 * written in turn (seq stays unique); renew, requeue and prune pass over
 * rows other transactions hold. The engine's flush checks, writes and ends
 * all its runs with one statement of each kind (the batched forms, below).
 *
 * "" timestamps and NULL texts are SQL NULL, and a negative duration_ms is
 * NULL (read back as -1).
 */
#include "store/db.h"
#include "core/buf.h"
#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every column store_execution has, output apart (lists leave it out). */
#define EXEC_COLUMNS                                                                         \
    "id, workflow_id, workflow_version, status, trigger, triggered_by, created_at, "         \
    "started_at, finished_at, duration_ms, memory_bytes, prompt_tokens, completion_tokens, " \
    "total_tokens, cost_usd, timeout_ms, max_concurrency, deadline_ms, claims, trigger_id, "     \
    "scheduled_for, parent_execution_id, root_execution_id, depth, parent_node_id, "            \
    "parent_attempt, error, input"
#define EXEC_NCOLUMNS 28

/* Bound integer $n that is NULL when negative. */
#define NULL_IF_NEG(n) "CASE WHEN " n " < 0 THEN NULL ELSE " n " END"

/* Bounds standing in for an open end of a created_at range: every RFC 3339
 * timestamp sorts at or after "" and before "9999" in any collation. */
#define TS_MIN ""
#define TS_MAX "9999"

/* Candidates beyond the limit, in case some are held by other transactions
 * (other claimers, a cancel) or turn out to be past their workflow's limit:
 * a claim takes fewer than it could only when more than this many of its
 * first candidates are (the next claim takes them). */
#define CLAIM_SLACK "64"
#define CLAIM_SLACK_N 64
/* PostgreSQL claims (fair_pick, then taking what it picked) at most this
 * many times in one call while the picks are taken by others. */
#define CLAIM_ROUNDS 3
/* Key of the advisory lock claims take turns under ("AOPClaim"). */
#define CLAIM_LOCK "4706068386136811885"
/* The statuses that count against QUOTA_ACTIVE_EXECUTIONS: an execution
 * holds its place in the quota from its queueing to its end, waiting for
 * an approval included. */
#define EXEC_ACTIVE "'queued', 'running', 'waiting'"
/*
 * A status test PostgreSQL's planner cannot turn into an index condition,
 * for statements that find their rows by key (a claim's picked ids, a
 * flush's executions) and only check the status of each. What the planner
 * knows of status is from the table's last ANALYZE: a backlog of thousands
 * queued since then looks like a row or two, and it would walk all of them
 * in executions_status_idx, testing each against the keys (150 ms for a
 * claim of 256 rows under a backlog of 10,000), instead of looking the keys
 * up in the primary key (1 ms). So these statements also name their keys as
 * an array (id = ANY (...)), which the primary key answers, beside the join
 * that orders them.
 */
#define STATUS_BY_KEY(test) "(" test ") IS TRUE"
/* Not EXEC_ACTIVE, written as executions_ended_idx's condition is (014). */
#define EXEC_ENDED "status <> 'queued' AND status <> 'running' AND status <> 'waiting'"
/* Class of the advisory locks of the quota, keyed by a hash of the user
 * ("AOPq"); the two-key space is apart from the one-key space above. */
#define QUOTA_LOCK "1095716977"

static const db_sql q_insert = DB_BOTH(
    "INSERT INTO executions (" EXEC_COLUMNS ", output, lease_owner, lease_until) VALUES ($1, $2, "
    "$3, $4, $5, $6, $7, $8, $9, " NULL_IF_NEG("$10") ", $11, $12, $13, $14, $15, $16, $17, $18, "
    "$19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, " NULL_IF_NEG("$31") ")");
static const db_sql q_any_queued = DB_BOTH(
    "SELECT EXISTS (SELECT 1 FROM executions WHERE status = 'queued')");
static const db_sql q_get = DB_BOTH(
    "SELECT " EXEC_COLUMNS ", output FROM executions WHERE id = $1");
static const db_sql q_exists = DB_BOTH("SELECT COUNT(*) FROM executions WHERE id = $1");
static const db_sql q_nodes = DB_BOTH(
    "SELECT node_id, type, status, attempts, started_at, finished_at, duration_ms, "
    "prompt_tokens, completion_tokens, total_tokens, cost_usd, model, error, output, seq "
    "FROM execution_nodes WHERE execution_id = $1 ORDER BY seq");
static const db_sql q_quota_lock = DB_PAIR(
    NULL, "SELECT pg_advisory_xact_lock(" QUOTA_LOCK ", hashtext($1))");
const db_sql store_exec_active_sql = DB_BOTH(
    "SELECT COUNT(*) FROM (SELECT 1 FROM executions WHERE status IN (" EXEC_ACTIVE ") "
    "AND triggered_by = $1 LIMIT $2) a");

/*
 * The fair queue: the queued rows a claim may take, round-robin across the
 * users who triggered them. Users are taken in id order starting after the
 * one the claimer served last (LIM: the claim's limit; AFTER: that user),
 * each user's rows oldest first: a row's place is (ur, its user's turn),
 * ur its rank among its user's queued rows. So each user's next row comes
 * before any user's second, and one user's backlog delays another's next
 * row by one round at most, whatever its length.
 *
 * It never reads a whole backlog: u walks the distinct users of the queue
 * (one index step each); a claim of LIM rows (its limit plus CLAIM_SLACK)
 * takes at most LIM - n + 1 rows
 * of one user when n users queue (each other user's next row comes before
 * its second: k), and c reads that many of each user's rows, oldest first
 * (executions_fair_idx). Workflows at their max_concurrency (run.at_limit, from
 * the running rows) are left out before, so that a backlog held by one
 * workflow's limit delays neither its user's other rows nor anyone else's.
 * In f, wr: the row's rank among its workflow's candidates, in queue order,
 * for the limit check, where rows claimed together count against each
 * other. C makes PostgreSQL compare users in byte order, as the sort of
 * claimed rows does (by_round).
 *
 * c per dialect: PostgreSQL reads each user's rows by LATERAL ... LIMIT
 * (the user as a range of one and first in the ORDER BY: only
 * executions_fair_idx gives that order, so the planner never prefers
 * executions_created_idx, which would walk the running rows older than a
 * backlog when one user holds most of the table);
 * SQLite, which has no LATERAL, finds the created_at of the last row it
 * needs of each user (hi, in b), then each user's rows up to it (ties on
 * created_at may add a few). INDEXED BY: SQLite's planner would otherwise
 * walk the status index.
 */
#define FAIR_USERS(IDX, LIM)                                                                 \
    "WITH RECURSIVE u(t) AS (SELECT (SELECT triggered_by FROM executions" IDX " "            \
    "WHERE status = 'queued' AND triggered_by >= '' ORDER BY triggered_by LIMIT 1) "         \
    "UNION ALL SELECT (SELECT triggered_by FROM executions" IDX " WHERE status = 'queued' "   \
    "AND triggered_by > u.t ORDER BY triggered_by LIMIT 1) FROM u WHERE u.t IS NOT NULL), "  \
    "run(w, n, at_limit) AS (SELECT workflow_id, COUNT(*), MIN(max_concurrency) > 0 "            \
    "AND COUNT(*) >= MAX(max_concurrency) FROM executions WHERE status = 'running' "         \
    "GROUP BY workflow_id), "                                                                \
    "k(n) AS (SELECT CASE WHEN COUNT(*) < " LIM " THEN " LIM " + 1 - COUNT(*) ELSE 1 END "   \
    "FROM u WHERE t IS NOT NULL), "
#define FAIR_HEADS_SQLITE                                                                    \
    "b(t, hi) AS (SELECT t, COALESCE((SELECT created_at FROM executions"                     \
    " INDEXED BY executions_fair_idx WHERE status = 'queued' AND triggered_by = u.t "        \
    "AND workflow_id NOT IN (SELECT w FROM run WHERE at_limit) ORDER BY created_at, id LIMIT 1 "  \
    "OFFSET (SELECT n FROM k) - 1), '9999') FROM u WHERE t IS NOT NULL), "                   \
    "c AS (SELECT e.id, e.triggered_by AS t, e.created_at, e.workflow_id, "                  \
    "e.max_concurrency, row_number() OVER (PARTITION BY e.triggered_by "                     \
    "ORDER BY e.created_at, e.id) AS ur FROM b JOIN executions e"                            \
    " INDEXED BY executions_fair_idx ON e.status = 'queued' AND e.triggered_by = b.t "       \
    "AND e.created_at <= b.hi AND e.workflow_id NOT IN (SELECT w FROM run WHERE at_limit)), "
#define FAIR_HEADS_PG                                                                        \
    "c AS (SELECT e.id, u.t, e.created_at, e.workflow_id, e.max_concurrency, "               \
    "row_number() OVER (PARTITION BY u.t ORDER BY e.created_at, e.id) AS ur FROM u "         \
    "CROSS JOIN LATERAL (SELECT id, created_at, workflow_id, max_concurrency "               \
    "FROM executions WHERE status = 'queued' AND triggered_by >= u.t AND triggered_by <= u.t " \
    "AND workflow_id NOT IN (SELECT w FROM run WHERE at_limit) "                                 \
    "ORDER BY triggered_by, created_at, id "                                                 \
    "LIMIT (SELECT n FROM k)) e WHERE u.t IS NOT NULL), "
#define FAIR_RANKS(AFTER, C)                                                                 \
    "f AS (SELECT c.*, t" C " <= " AFTER " AS wrapped, row_number() OVER ("                  \
    "PARTITION BY workflow_id ORDER BY ur, t" C " <= " AFTER ", t" C ", created_at, id) "    \
    "AS wr FROM c) "
/* The candidates of f within their workflow's limit (running rows of any
 * owner counted, once per workflow: run), and their round-robin order. */
#define FAIR_ELIGIBLE                                                                        \
    "FROM f LEFT JOIN run ON run.w = f.workflow_id WHERE f.max_concurrency = 0 "             \
    "OR f.wr + COALESCE(run.n, 0) <= f.max_concurrency"
#define FAIR_ORDER(C) "ur, wrapped, t" C ", created_at, id"
#define PG_C " COLLATE \"C\""

/* SQLite's claim: one statement ($5 rows at most, $6 the user served
 * last), the first of the fair queue. */
const db_sql store_exec_claim_sql = DB_PAIR(
    FAIR_USERS(" INDEXED BY executions_fair_idx", "($5 + " CLAIM_SLACK ")") FAIR_HEADS_SQLITE
    FAIR_RANKS("$6", "")
    "UPDATE executions SET status = 'running', lease_owner = $1, lease_until = $2, "
    "claims = claims + 1, started_at = coalesce(started_at, max($3, created_at)), "
    "deadline_ms = CASE WHEN deadline_ms = 0 THEN $4 + timeout_ms ELSE deadline_ms END "
    "WHERE id IN (SELECT id " FAIR_ELIGIBLE " ORDER BY " FAIR_ORDER("")
    " LIMIT $5) RETURNING " EXEC_COLUMNS ", output", NULL);

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
 * PostgreSQL picks first, then takes (claim_pg). store_exec_pick_sql reads
 * the first $1 + CLAIM_SLACK rows of the fair queue ($2 the user served
 * last), locking nothing: the ids of limited workflows among the first $1,
 * and of the others, each as an array in queue order, and how many it read.
 */
const db_sql store_exec_pick_sql = DB_PAIR(
    NULL, FAIR_USERS("", "($1 + " CLAIM_SLACK ")") FAIR_HEADS_PG FAIR_RANKS("$2", PG_C)
    ", p AS (SELECT id, max_concurrency, row_number() OVER (ORDER BY " FAIR_ORDER(PG_C) ") "
    "AS pos " FAIR_ELIGIBLE ") "
    "SELECT COALESCE(array_agg(id ORDER BY pos) FILTER (WHERE max_concurrency > 0 "
    "AND pos <= $1), '{}')::text, COALESCE(array_agg(id ORDER BY pos) "
    "FILTER (WHERE max_concurrency = 0), '{}')::text, COUNT(*) FROM p "
    "WHERE pos <= $1 + " CLAIM_SLACK);
/*
 * q_claim_limited, under q_claim_lock (so that no other claimer starts a
 * limited row meanwhile): of the picked rows of limited workflows ($6, in
 * queue order), those whose rank among the picked rows of their workflow,
 * plus the workflow's running rows of any owner (counted once per
 * workflow), stays within its limit, read again now; locked (SKIP LOCKED under the LIMIT: a skipped row does
 * not count), e.status checked again on the locked row (one that changed
 * since the statement began is judged by its new version), and taken.
 */
static const db_sql q_claim_limited = DB_PAIR(
    NULL, CLAIM_SET
    "WHERE x.id = ANY (ARRAY(SELECT e.id FROM (SELECT q.id, q.ord FROM (SELECT c.id, c.ord, "
    "y.workflow_id, y.max_concurrency, row_number() OVER (PARTITION BY y.workflow_id "
    "ORDER BY c.ord) AS wr FROM unnest($6::text[]) WITH ORDINALITY c(id, ord) "
    "JOIN executions y ON y.id = c.id WHERE y.id = ANY ($6::text[]) AND "
    STATUS_BY_KEY("y.status = 'queued'") ") q "
    "LEFT JOIN (SELECT workflow_id, COUNT(*) AS n FROM executions WHERE status = 'running' "
    "AND workflow_id IN (SELECT workflow_id FROM executions WHERE id = ANY ($6::text[])) "
    "GROUP BY workflow_id) r ON r.workflow_id = q.workflow_id "
    "WHERE q.wr + COALESCE(r.n, 0) <= q.max_concurrency) p JOIN executions e ON e.id = p.id "
    "WHERE e.id = ANY ($6::text[]) AND " STATUS_BY_KEY("e.status = 'queued'")
    " ORDER BY p.ord LIMIT $5 "
    "FOR UPDATE OF e SKIP LOCKED)) RETURNING " EXEC_COLUMNS ", output");
/*
 * q_claim_picked, without the lock, committed by itself: the first $5 of
 * the picked rows of unlimited workflows ($6, in queue order) that no other
 * transaction holds, locked, then updated. A row another claimer takes at
 * the same moment is locked, hence skipped; one taken or cancelled since
 * the statement began is locked in its new version, whose status is
 * checked again (READ COMMITTED), so the LIMIT reads on: no row is taken
 * twice. Rows are found by key (the array), never by a scan.
 */
static const db_sql q_claim_picked = DB_PAIR(
    NULL, CLAIM_SET
    "WHERE x.id = ANY (ARRAY(SELECT e.id FROM unnest($6::text[]) WITH ORDINALITY c(id, ord) "
    "JOIN executions e ON e.id = c.id WHERE e.id = ANY ($6::text[]) AND "
    STATUS_BY_KEY("e.status = 'queued'") " ORDER BY c.ord LIMIT $5 "
    "FOR UPDATE OF e SKIP LOCKED)) RETURNING " EXEC_COLUMNS ", output");
static const db_sql q_claim_lock = DB_PAIR(NULL, "SELECT pg_advisory_xact_lock(" CLAIM_LOCK ")");
/* On PostgreSQL renew and requeue pass over rows another transaction holds
 * (a run's writes, under execution_owned's lock; a cancel) rather than wait:
 * locking many rows in their own order while those take theirs one by one
 * could deadlock. A row passed over is renewed or requeued by the next
 * round. */
static const db_sql q_renew = DB_PAIR(
    "UPDATE executions SET lease_until = $1 WHERE status = 'running' AND lease_owner = $2",
    "UPDATE executions x SET lease_until = $1::bigint FROM (SELECT id FROM executions "
    "WHERE status = 'running' AND lease_owner = $2 FOR NO KEY UPDATE SKIP LOCKED) r "
    "WHERE x.id = r.id");
static const db_sql q_requeue = DB_PAIR(
    "UPDATE executions SET status = 'queued', lease_owner = NULL, lease_until = NULL "
    "WHERE status = 'running' AND lease_until < $1",
    "UPDATE executions x SET status = 'queued', lease_owner = NULL, lease_until = NULL "
    "FROM (SELECT id FROM executions WHERE status = 'running' AND lease_until < $1::bigint "
    "FOR NO KEY UPDATE SKIP LOCKED) r WHERE x.id = r.id");
static const db_sql q_release = DB_BOTH(
    "UPDATE executions SET status = 'queued', lease_owner = NULL, lease_until = NULL "
    "WHERE status = 'running' AND lease_owner = $1");
#define OWNED "SELECT 1 FROM executions WHERE id = $1 AND status = 'running' " \
              "AND lease_owner = $2 AND claims = $3"
static const db_sql q_owned = DB_PAIR(OWNED, OWNED " FOR NO KEY UPDATE");

/* seq: MAX + 1 over the execution's rows, taken at the first write. */
#define NODE_INSERT                                                                          \
    "INSERT INTO execution_nodes (execution_id, node_id, type, status, attempts, started_at, " \
    "finished_at, duration_ms, prompt_tokens, completion_tokens, total_tokens, cost_usd, "   \
    "model, error, output, seq) "
#define NODE_UPSERT                                                                          \
    "ON CONFLICT (execution_id, node_id) DO UPDATE SET type = excluded.type, "                \
    "status = excluded.status, attempts = excluded.attempts, started_at = excluded.started_at, " \
    "finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, "                \
    "prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, " \
    "total_tokens = excluded.total_tokens, cost_usd = excluded.cost_usd, "                    \
    "model = excluded.model, error = excluded.error, output = excluded.output"
static const db_sql q_node_put = DB_BOTH(
    NODE_INSERT "VALUES ($1, $2, $3, $4, $5, $6, $7, " NULL_IF_NEG("$8") ", $9, $10, "
    "$11, $12, $13, $14, $15, "
    "(SELECT COALESCE(MAX(s.seq) + 1, 0) FROM execution_nodes s WHERE s.execution_id = $1)) "
    NODE_UPSERT);
/* Whole milliseconds between the two instants, rounded (julianday() keeps
 * well under a millisecond of precision for these dates); a NULL end (a
 * node skipped) leaves no duration. */
static const db_sql q_nodes_end = DB_PAIR(
    "UPDATE execution_nodes SET status = $1, finished_at = $2, duration_ms = CASE "
    "WHEN started_at IS NULL THEN duration_ms "
    "ELSE max(0, CAST(round((julianday($2) - julianday(started_at)) * 86400000.0) AS INTEGER)) "
    "END WHERE execution_id = $3 AND status = $4",
    "UPDATE execution_nodes SET status = $1, finished_at = $2::text, duration_ms = CASE "
    "WHEN started_at IS NULL THEN duration_ms WHEN $2::text IS NULL THEN NULL "
    "ELSE GREATEST(0, round(EXTRACT(EPOCH FROM ($2::text::timestamptz - "
    "started_at::timestamptz)) * 1000))::bigint END "
    "WHERE execution_id = $3 AND status = $4");
static const db_sql q_finish = DB_BOTH(
    "UPDATE executions SET status = $1, output = $2, error = $3, finished_at = $4, "
    "duration_ms = " NULL_IF_NEG("$5") ", memory_bytes = $6, prompt_tokens = $7, "
    "completion_tokens = $8, total_tokens = $9, cost_usd = $10, lease_owner = NULL, "
    "lease_until = NULL WHERE id = $11 AND (status = 'queued' OR status = 'running' "
    "OR status = 'waiting')");
/* Node rows go with it (ON DELETE CASCADE; SQLite has foreign keys on for
 * every connection): one statement, so never half done. */
static const db_sql q_delete = DB_BOTH("DELETE FROM executions WHERE id = $1");
/* SQLite: one row (a prepared statement is a function call there, cheaper
 * than building and parsing JSON). PostgreSQL: $1, a JSON array of rows
 * [execution_id, seq, last_seq, ts, data], in one round trip. */
static const db_sql q_events_put = DB_PAIR(
    "INSERT INTO execution_events (execution_id, seq, last_seq, ts, data) "
    "VALUES ($1, $2, $3, $4, $5)",
    "INSERT INTO execution_events (execution_id, seq, last_seq, ts, data) "
    "SELECT e->>0, (e->>1)::bigint, (e->>2)::bigint, e->>3, e->>4 "
    "FROM json_array_elements($1::json) e");
/* execution.queued from the executions row (STORE_QUEUED_MEMBERS), then
 * the rows that hold events after $2. */
static const db_sql q_events = DB_BOTH(
    "SELECT 1, 1, created_at, 'execution.queued \"workflowId\":\"' || workflow_id || "
    "'\",\"status\":\"queued\"' FROM executions WHERE id = $1 AND $2 < 1 "
    "UNION ALL SELECT seq, last_seq, ts, data FROM execution_events "
    "WHERE execution_id = $1 AND last_seq > $2 ORDER BY 1 LIMIT $3");
static const db_sql q_status = DB_BOTH("SELECT status FROM executions WHERE id = $1");
static const db_sql q_child = DB_BOTH(
    "SELECT " EXEC_COLUMNS ", output FROM executions WHERE parent_execution_id = $1 "
    "AND parent_node_id = $2 AND parent_attempt = $3");
static const db_sql q_agent_step_add = DB_BOTH(
    "INSERT INTO agent_steps (execution_id, node_id, seq, kind, call_id, data, prompt_tokens, "
    "completion_tokens, cost_usd, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
static const db_sql q_agent_steps = DB_BOTH(
    "SELECT seq, kind, call_id, data, prompt_tokens, completion_tokens, cost_usd, created_at "
    "FROM agent_steps WHERE execution_id = $1 AND node_id = $2 ORDER BY seq LIMIT $3");
static const db_sql q_children_active = DB_BOTH(
    "SELECT id FROM executions WHERE parent_execution_id = $1 "
    "AND status IN (" EXEC_ACTIVE ") ORDER BY id LIMIT $2");
static const db_sql q_events_last = DB_BOTH(
    "SELECT COALESCE(MAX(last_seq), 1) FROM execution_events WHERE execution_id = $1");

/* Aggregates: the same totals over one workflow ($1) or a created_at range
 * ($1, $2). Durations count executions that started and finished; the
 * nearest-rank p-th percentile of n of them is the ceil(p * n / 100)-th
 * smallest, computed in integers. */
#define TOTALS_COUNTS                                                                        \
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'queued'), "                           \
    "COUNT(*) FILTER (WHERE status = 'running'), "                                           \
    "COUNT(*) FILTER (WHERE status = 'succeeded'), "                                         \
    "COUNT(*) FILTER (WHERE status = 'failed'), "                                            \
    "COUNT(*) FILTER (WHERE status = 'cancelled'), "                                         \
    "COUNT(*) FILTER (WHERE status = 'timed_out'), "                                         \
    "COUNT(*) FILTER (WHERE status = 'waiting'), "
#define TOTALS_SELECT                                                                        \
    TOTALS_COUNTS "COALESCE(SUM(prompt_tokens), 0), "                                         \
    "COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(total_tokens), 0), "                  \
    "COALESCE(SUM(cost_usd), 0), MAX(started_at) FROM executions WHERE "
/* Over every workflow, a child execution's spend is already its parent's
 * (workflow nodes roll it up): only roots' spend is summed, so that each
 * LLM call counts once. */
#define ROOT(col) "COALESCE(SUM(" col ") FILTER (WHERE parent_execution_id IS NULL), 0)"
#define ROOT_TOTALS_SELECT                                                                   \
    TOTALS_COUNTS ROOT("prompt_tokens") ", " ROOT("completion_tokens") ", "                  \
    ROOT("total_tokens") ", " ROOT("cost_usd") ", MAX(started_at) FROM executions WHERE "
#define DURATIONS_SELECT                                                                     \
    "SELECT CAST(COALESCE(AVG(duration_ms), 0) AS DOUBLE PRECISION), "                       \
    "COALESCE(MAX(duration_ms), 0), "                                                        \
    "COALESCE(MAX(duration_ms) FILTER (WHERE rn = (50 * n + 99) / 100), 0), "                \
    "COALESCE(MAX(duration_ms) FILTER (WHERE rn = (95 * n + 99) / 100), 0) "                 \
    "FROM (SELECT duration_ms, row_number() OVER (ORDER BY duration_ms) AS rn, "             \
    "COUNT(*) OVER () AS n FROM executions WHERE "
#define RAN " AND started_at IS NOT NULL AND finished_at IS NOT NULL AND duration_ms IS NOT NULL"
#define OF_WORKFLOW "workflow_id = $1"
#define IN_RANGE "created_at >= $1 AND created_at < $2"

static const db_sql q_wf_totals = DB_BOTH(TOTALS_SELECT OF_WORKFLOW);
static const db_sql q_wf_durations = DB_BOTH(DURATIONS_SELECT OF_WORKFLOW RAN ") d");
static const db_sql q_range_totals = DB_BOTH(ROOT_TOTALS_SELECT IN_RANGE);
static const db_sql q_range_durations = DB_BOTH(DURATIONS_SELECT IN_RANGE RAN ") d");

/* Names sort in byte order on both. */
#define STATS_NODES(order)                                                                   \
    "SELECT n.node_id, COUNT(*), COUNT(*) FILTER (WHERE n.status IN ('failed', 'timed_out')), " \
    "CAST(COALESCE(AVG(n.duration_ms), 0) AS DOUBLE PRECISION), "                            \
    "COALESCE(SUM(n.total_tokens), 0), COALESCE(SUM(n.cost_usd), 0) FROM executions e "       \
    "JOIN execution_nodes n ON n.execution_id = e.id "                                        \
    "WHERE e.workflow_id = $1 AND n.status NOT IN ('skipped', 'pending') GROUP BY n.node_id " \
    "ORDER BY " order
static const db_sql q_stats_nodes = DB_PAIR(STATS_NODES("n.node_id"),
                                     STATS_NODES("n.node_id COLLATE \"C\""));
#define SUMMARY_MODELS(order)                                                                \
    "SELECT n.model, COUNT(*) AS calls, COALESCE(SUM(n.total_tokens), 0), "                  \
    "COALESCE(SUM(n.cost_usd), 0) FROM executions e "                                         \
    "JOIN execution_nodes n ON n.execution_id = e.id "                                        \
    "WHERE e.created_at >= $1 AND e.created_at < $2 AND n.model IS NOT NULL "                 \
    "GROUP BY n.model ORDER BY calls DESC, " order " LIMIT $3"
static const db_sql q_summary_models = DB_PAIR(SUMMARY_MODELS("n.model"),
                                        SUMMARY_MODELS("n.model COLLATE \"C\""));
static const db_sql q_summary_days = DB_BOTH(
    "SELECT day, runs, failures, cost FROM (SELECT substr(created_at, 1, 10) AS day, "
    "COUNT(*) AS runs, COUNT(*) FILTER (WHERE status IN ('failed', 'timed_out')) AS failures, "
    ROOT("cost_usd") " AS cost FROM executions WHERE " IN_RANGE
    " GROUP BY day ORDER BY day DESC LIMIT $3) d ORDER BY day");
static const db_sql q_summary_top = DB_BOTH(
    "SELECT t.workflow_id, COALESCE(w.name, ''), t.runs, t.cost FROM (SELECT workflow_id, "
    "COUNT(*) AS runs, COALESCE(SUM(cost_usd), 0) AS cost FROM executions WHERE " IN_RANGE
    " GROUP BY workflow_id ORDER BY runs DESC, cost DESC, workflow_id LIMIT $3) t "
    "LEFT JOIN workflows w ON w.id = t.workflow_id ORDER BY t.runs DESC, t.cost DESC, "
    "t.workflow_id");

/* Pruning: ended rows, newest first, for the keep cap; then the oldest
 * below a (created_at, id) bound (EXEC_ENDED: executions_ended_idx). On
 * PostgreSQL they are deleted by key (an array, so that the delete never
 * scans the table), and a row another pruner is deleting is skipped, not
 * waited for. */
static const db_sql q_prune_keep = DB_BOTH(
    "SELECT created_at, id FROM executions WHERE " EXEC_ENDED " "
    "ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $1");
#define PRUNE_ROWS                                                                           \
    "SELECT id FROM executions WHERE " EXEC_ENDED " "                   \
    "AND (created_at, id) < ($1, $2) ORDER BY created_at, id LIMIT $3"
const db_sql store_exec_prune_sql = DB_PAIR(
    "DELETE FROM executions WHERE id IN (" PRUNE_ROWS ")",
    "DELETE FROM executions WHERE id = ANY (ARRAY(" PRUNE_ROWS " FOR UPDATE SKIP LOCKED))");

/* ---- rows ---- */

/* A store_execution from EXEC_COLUMNS and output; lists read the columns
 * before output alone. */
#define E(kind, member) DB_COL(kind, store_execution, member)
static const db_col exec_cols[] = {
    E(DB_COPY, id), E(DB_COPY, workflow_id), E(DB_INT, workflow_version), E(DB_STATUS, status),
    E(DB_COPY, trigger), E(DB_COPY, triggered_by), E(DB_COPY, created_at),
    E(DB_COPY, started_at), E(DB_COPY, finished_at), E(DB_INT_OR_NEG, duration_ms),
    E(DB_INT, memory_bytes), E(DB_INT, prompt_tokens), E(DB_INT, completion_tokens),
    E(DB_INT, total_tokens), E(DB_DOUBLE, cost_usd), E(DB_INT, timeout_ms),
    E(DB_INT, max_concurrency), E(DB_INT, deadline_ms), E(DB_INT, claims),
    E(DB_COPY, trigger_id), E(DB_COPY, scheduled_for), E(DB_COPY, parent_execution_id),
    E(DB_COPY, root_execution_id), E(DB_INT, depth), E(DB_COPY, parent_node_id),
    E(DB_INT, parent_attempt), E(DB_DUP_OR_NULL, error), E(DB_DUP, input), E(DB_DUP_OR_NULL, output),
};
static const db_row exec_row = DB_ROW(exec_cols, store_execution),
                    exec_list_row = {exec_cols, EXEC_NCOLUMNS, sizeof(store_execution)};

/* A store_exec_node from a row of q_nodes. */
#define N(kind, member) DB_COL(kind, store_exec_node, member)
static const db_col node_cols[] = {
    N(DB_DUP, node_id), N(DB_DUP, type), N(DB_STATUS, status), N(DB_INT, attempts),
    N(DB_COPY, started_at), N(DB_COPY, finished_at), N(DB_INT_OR_NEG, duration_ms),
    N(DB_INT, prompt_tokens), N(DB_INT, completion_tokens), N(DB_INT, total_tokens),
    N(DB_DOUBLE, cost_usd), N(DB_DUP_OR_NULL, model), N(DB_DUP_OR_NULL, error),
    N(DB_DUP_OR_NULL, output), N(DB_INT, seq),
};
static const db_row node_row = DB_ROW(node_cols, store_exec_node);

/* A row of execution_events: events seq..last_seq of one time, as
 * "<type> <members>" lines. */
typedef struct {
    long long seq, last_seq;
    char *ts;
    char *lines;
} event_rows;
#define V(kind, member) DB_COL(kind, event_rows, member)
static const db_col event_cols[] = {V(DB_INT, seq), V(DB_INT, last_seq), V(DB_DUP, ts),
                                    V(DB_DUP, lines)};
static const db_row event_row = DB_ROW(event_cols, event_rows);

/* ---- one execution ---- */

/* triggered_by is '' when there is no user, never NULL (see migration 5).
 * Owned by owner until lease_until_ms (NULL and -1: by nobody). sent: by
 * db_send (nothing in the transaction waits on it). */
#define INSERT_VALUES(e, owner, lease)                                                       \
    "ttitttttt" "iiiiidiiii" "tt" "ttiti" "ttt" "ti", (e)->id,                              \
        (e)->workflow_id, (e)->workflow_version, exec_status_name((e)->status), (e)->trigger, \
        (e)->triggered_by, (e)->created_at, db_opt((e)->started_at),                         \
        db_opt((e)->finished_at), (e)->duration_ms, (e)->memory_bytes, (e)->prompt_tokens,   \
        (e)->completion_tokens, (e)->total_tokens, (e)->cost_usd, (e)->timeout_ms,           \
        (e)->max_concurrency, (e)->deadline_ms, (e)->claims, db_opt((e)->trigger_id),        \
        db_opt((e)->scheduled_for), db_opt((e)->parent_execution_id),                        \
        db_opt((e)->root_execution_id), (e)->depth, db_opt((e)->parent_node_id),             \
        (e)->parent_attempt, (e)->error, (e)->input, (e)->output, (owner), (lease)
static aop_err insert_owned(db_op *o, const store_execution *e, const char *owner,
                            long long lease_until_ms, bool sent)
{
    return sent ? db_send(o, &q_insert, INSERT_VALUES(e, owner, lease_until_ms))
                : db_exec(o, &q_insert, NULL, INSERT_VALUES(e, owner, lease_until_ms));
}

static aop_err insert(db_op *o, const store_execution *e, bool sent)
{
    return insert_owned(o, e, NULL, -1, sent);
}

/* Its errors come back at once: a second child of one node's attempt is a
 * conflict its caller handles. */
aop_err store_execution_insert(store *s, const store_execution *e)
{
    db_op o = db_op_start(s, "execution_insert");
    return db_op_end(&o, insert(&o, e, false));
}

/*
 * The quota: on PostgreSQL the first call of a transaction for a user takes
 * that user's advisory lock until the transaction ends, so the counts and
 * inserts of concurrent transactions of one user (on any instance) take
 * turns, and the count, a statement that starts after the lock is granted,
 * sees every row committed before (READ COMMITTED). SQLite has one writer.
 * The count stops at quota rows (store_exec_active_sql reads
 * executions_active_idx alone); later rows of the transaction add to it.
 */
static aop_err enqueue(store *s, const store_execution *e, long long quota, long long *active,
                       const char *owner, long long lease_until_ms)
{
    db_op o = db_op_start(s, "execution_enqueue");
    aop_err rc = AOP_OK;
    if (*active < 0 && (rc = db_send(&o, &q_quota_lock, "t", e->triggered_by)) == AOP_OK)
        rc = db_query_int(&o, &store_exec_active_sql, active, "ti", e->triggered_by, quota);
    if (rc == AOP_OK && *active >= quota)
        rc = AOP_ERR_QUOTA_EXCEEDED;
    if (rc == AOP_OK && (rc = insert_owned(&o, e, owner, lease_until_ms, true)) == AOP_OK)
        *active += 1;
    return db_op_end(&o, rc);
}

aop_err store_execution_enqueue(store *s, const store_execution *e, long long quota,
                                long long *active)
{
    return enqueue(s, e, quota, active, NULL, -1);
}

aop_err store_execution_enqueue_owned(store *s, const store_execution *e, long long quota,
                                      long long *active, const char *owner,
                                      long long lease_until_ms)
{
    return enqueue(s, e, quota, active, owner, lease_until_ms);
}

aop_err store_execution_any_queued(store *s, bool *any)
{
    db_op o = db_op_start(s, "execution_any_queued");
    long long n = 0;
    aop_err rc = db_query_int(&o, &q_any_queued, &n, "");
    *any = n != 0;
    return db_op_end(&o, rc);
}

aop_err store_execution_get(store *s, const char *id, store_execution *out, arena *a)
{
    db_op o = db_op_start(s, "execution_get");
    return db_op_end(&o, db_get(&o, &q_get, &exec_row, out, a, "t", id));
}

aop_err store_execution_nodes(store *s, const char *id, store_exec_node **out, int *n, arena *a)
{
    db_op o = db_op_start(s, "execution_nodes");
    void *items = NULL;
    aop_err rc = db_rows(&o, &q_nodes, &node_row, INT32_MAX, &items, n, a, "t", id);
    *out = items;
    return db_op_end(&o, rc);
}

/* Why the end of id changed nothing: it had ended already (a conflict),
 * or is absent. */
static aop_err not_finished(db_op *o, const char *id)
{
    long long found = 0;
    aop_err rc = db_query_int(o, &q_exists, &found, "t", id);
    return rc != AOP_OK ? rc : found ? AOP_ERR_CONFLICT : AOP_ERR_NOT_FOUND;
}

static aop_err finish(db_op *o, const store_execution *e)
{
    long long n = 0;
    aop_err rc = db_exec(o, &q_finish, &n, "ttttiiiiidt", exec_status_name(e->status),
                         e->output, e->error, db_opt(e->finished_at), e->duration_ms,
                         e->memory_bytes, e->prompt_tokens, e->completion_tokens,
                         e->total_tokens, e->cost_usd, e->id);
    return rc == AOP_OK && n == 0 ? not_finished(o, e->id) : rc;
}

aop_err store_execution_finish(store *s, const store_execution *e)
{
    db_op o = db_op_start(s, "execution_finish");
    return db_op_end(&o, finish(&o, e));
}

aop_err store_execution_delete(store *s, const char *id)
{
    db_op o = db_op_start(s, "execution_delete");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_delete, &n, "t", id);
    return db_op_end(&o, rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc);
}

/* ---- events ---- */

/* The data of a row: its events as "<type> <members>" lines, into b. */
static void event_lines(buf *b, const store_exec_events *r)
{
    for (int k = 0; k < r->n; k++) {
        if (k)
            buf_puts(b, "\n");
        buf_puts(b, r->ev[k].type);
        buf_puts(b, " ");
        buf_puts(b, r->ev[k].members);
    }
}

/* rows as the JSON array PostgreSQL's q_events_put takes, into b. */
static void events_json(buf *b, const store_exec_events *rows, int n)
{
    buf_puts(b, "[");
    for (int i = 0; i < n; i++) {
        const store_exec_events *r = &rows[i];
        buf_printf(b, "%s[\"%s\",%lld,%lld,\"%s\",\"", i ? "," : "", r->execution_id,
                   r->ev[0].seq, r->ev[r->n - 1].seq, r->ev[0].ts);
        for (int k = 0; k < r->n; k++) {
            if (k)
                buf_puts(b, "\\n");
            buf_json_escape(b, r->ev[k].type, strlen(r->ev[k].type));
            buf_puts(b, " ");
            buf_json_escape(b, r->ev[k].members, strlen(r->ev[k].members));
        }
        buf_puts(b, "\"]");
    }
    buf_puts(b, "]");
}

aop_err store_execution_events_put(store *s, const store_exec_events *rows, int n)
{
    db_op o = db_op_start(s, "execution_events_put");
    aop_err rc = AOP_OK;
    buf b;
    buf_init(&b, 0);
    if (n && s->v->dialect == DB_PG) {
        events_json(&b, rows, n);
        rc = db_send(&o, &q_events_put, "t", b.data);
    } else {
        for (int i = 0; i < n && rc == AOP_OK; i++) {
            const store_exec_events *r = &rows[i];
            buf_reset(&b);
            event_lines(&b, r);
            rc = db_exec(&o, &q_events_put, NULL, "tiitt", r->execution_id, r->ev[0].seq,
                         r->ev[r->n - 1].seq, r->ev[0].ts, b.data);
        }
    }
    buf_free(&b);
    return db_op_end(&o, rc);
}

aop_err store_execution_events_add(store *s, const char *id, const store_exec_event *ev, int n)
{
    store_exec_events row = {id, ev, n};
    return n ? store_execution_events_put(s, &row, 1) : AOP_OK;
}

/* The events of rows[0..nrows) after seq after, at most max, into out
 * (texts in the rows' memory, cut in place). */
static int split_rows(event_rows *rows, int nrows, long long after, int max, store_exec_event *out)
{
    int n = 0;
    for (int i = 0; i < nrows && n < max; i++) {
        char *line = rows[i].lines;
        for (long long seq = rows[i].seq; seq <= rows[i].last_seq && line && n < max; seq++) {
            char *end = strchr(line, '\n'), *sp = strchr(line, ' ');
            if (end)
                *end = '\0';
            if (sp && seq > after) {
                *sp = '\0';
                out[n++] = (store_exec_event){seq, line, rows[i].ts, sp + 1};
            }
            line = end ? end + 1 : NULL;
        }
    }
    return n;
}

aop_err store_execution_events(store *s, const char *id, long long after, int max,
                               store_exec_event **out, int *n, arena *a)
{
    db_op o = db_op_start(s, "execution_events");
    void *items = NULL;
    int nrows = 0;
    *out = NULL;
    *n = 0;
    aop_err rc = db_rows(&o, &q_events, &event_row, max, &items, &nrows, a, "tii", id, after,
                         (long long)max);
    if (rc == AOP_OK && nrows > 0) {
        *out = arena_alloc(a, sizeof(store_exec_event) * (size_t)max);
        *n = split_rows(items, nrows, after, max, *out);
    }
    return db_op_end(&o, rc);
}

aop_err store_execution_child(store *s, const char *parent, const char *node_id,
                              long long attempt, store_execution *out, arena *a)
{
    db_op o = db_op_start(s, "execution_child");
    return db_op_end(&o, db_get(&o, &q_child, &exec_row, out, a, "tti", parent, node_id,
                                attempt));
}

typedef struct {
    char *id;
} child_id;

aop_err store_execution_children_active(store *s, const char *parent, int max, char ***ids,
                                        int *n, arena *a)
{
    static const db_col cols[] = {DB_COL(DB_DUP, child_id, id)};
    static const db_row row = DB_ROW(cols, child_id);
    db_op o = db_op_start(s, "execution_children");
    void *items = NULL;
    *ids = NULL;
    aop_err rc = db_rows(&o, &q_children_active, &row, max, &items, n, a, "ti", parent,
                         (long long)max);
    if (rc == AOP_OK && *n > 0) {
        child_id *c = items;
        *ids = arena_alloc(a, sizeof(char *) * (size_t)*n);
        for (int k = 0; k < *n; k++)
            (*ids)[k] = c[k].id;
    }
    return db_op_end(&o, rc);
}

#define A(kind, member) DB_COL(kind, store_agent_step, member)
static const db_col agent_step_cols[] = {
    A(DB_INT, seq), A(DB_COPY, kind), A(DB_DUP_OR_NULL, call_id), A(DB_DUP, data),
    A(DB_INT, prompt_tokens), A(DB_INT, completion_tokens), A(DB_DOUBLE, cost_usd),
    A(DB_COPY, created_at),
};
static const db_row agent_step_row = DB_ROW(agent_step_cols, store_agent_step);

aop_err store_agent_step_add(store *s, const char *id, const char *node_id,
                             const store_agent_step *st)
{
    db_op o = db_op_start(s, "agent_step_add");
    return db_op_end(&o, db_exec(&o, &q_agent_step_add, NULL, "ttittt" "iidt", id, node_id,
                                 st->seq, st->kind, st->call_id, st->data, st->prompt_tokens,
                                 st->completion_tokens, st->cost_usd, st->created_at));
}

aop_err store_agent_steps(store *s, const char *id, const char *node_id, int max,
                          store_agent_step **out, int *n, arena *a)
{
    db_op o = db_op_start(s, "agent_steps");
    void *items = NULL;
    aop_err rc = db_rows(&o, &q_agent_steps, &agent_step_row, max, &items, n, a, "tti", id,
                         node_id, (long long)max);
    *out = items;
    return db_op_end(&o, rc);
}

aop_err store_execution_status(store *s, const char *id, exec_status *status)
{
    db_op o = db_op_start(s, "execution_status");
    struct {
        exec_status status;
    } row;
    static const db_col cols[] = {{DB_STATUS, 0, sizeof(exec_status)}};
    static const db_row r = {cols, 1, sizeof(row)};
    aop_err rc = db_get(&o, &q_status, &r, &row, NULL, "t", id);
    *status = row.status;
    return db_op_end(&o, rc);
}

aop_err store_execution_events_last(store *s, const char *id, long long *seq)
{
    db_op o = db_op_start(s, "execution_events_last");
    return db_op_end(&o, db_query_int(&o, &q_events_last, seq, "t", id));
}

/* ---- nodes ---- */

static aop_err node_put(db_op *o, const char *execution_id, const store_exec_node *n)
{
    return db_exec(o, &q_node_put, NULL, "ttttittiiiidttt", execution_id, n->node_id, n->type,
                   exec_status_name(n->status), n->attempts, db_opt(n->started_at),
                   db_opt(n->finished_at), n->duration_ms, n->prompt_tokens,
                   n->completion_tokens, n->total_tokens, n->cost_usd, n->model, n->error,
                   n->output);
}

aop_err store_execution_node_put(store *s, const char *execution_id, const store_exec_node *n)
{
    db_op o = db_op_start(s, "execution_node_put");
    return db_op_end(&o, node_put(&o, execution_id, n));
}

aop_err store_execution_nodes_end(store *s, const char *id, exec_status from, exec_status to,
                                  const char *at, long long *n)
{
    db_op o = db_op_start(s, "execution_nodes_end");
    return db_op_end(&o, db_exec(&o, &q_nodes_end, n, "tttt", exec_status_name(to), db_opt(at),
                                 id, exec_status_name(from)));
}

/* ---- the queue ---- */

/* What a claim asks for. */
typedef struct {
    const char *owner, *after;
    store_clock clock;
    long long lease_ms;
    char now[25];          /* read by claim_now */
    long long now_ms, lease_until_ms;
    int limit, n;          /* rows claimed so far, in out */
    store_execution *out;  /* room for limit */
    const char *ids;       /* PostgreSQL: the picked rows to take, a text[] */
    arena *a;
} claim_req;

/* Reads the claim's clock: right before the statement that takes rows,
 * after the lock that orders it (see store_execution_claim). */
static void claim_now(claim_req *r)
{
    r->now_ms = r->clock();
    clock_format_rfc3339(r->now_ms, r->now);
    r->lease_until_ms = r->now_ms + r->lease_ms;
}

/* Runs one claim statement for up to limit - n rows (of r->ids on
 * PostgreSQL, r->after on SQLite), appending them to out. */
static aop_err claim_rows(db_op *o, const db_sql *sql, claim_req *r)
{
    void *items = r->out + r->n;
    int got = 0, room = r->limit - r->n;
    aop_err rc = db_rows(o, sql, &exec_row, room, &items, &got, r->a, "titiit", r->owner,
                         r->lease_until_ms, r->now, r->now_ms, (long long)room,
                         o->s->v->dialect == DB_PG ? r->ids : r->after);
    r->n += got;
    return rc;
}

/* Under the claim lock (PostgreSQL) or the write lock (SQLite). */
static aop_err claim_locked(db_op *o, void *p)
{
    claim_req *r = p;
    claim_now(r);
    return claim_rows(o, o->s->v->dialect == DB_PG ? &q_claim_limited : &store_exec_claim_sql, r);
}

/* What store_exec_pick_sql picked. */
typedef struct {
    char *limited, *unlimited; /* text[] */
    long long n;               /* rows read */
} fair_pick;
static const db_col pick_cols[] = {
    DB_COL(DB_DUP, fair_pick, limited), DB_COL(DB_DUP, fair_pick, unlimited),
    DB_COL(DB_INT, fair_pick, n),
};
static const db_row pick_row = DB_ROW(pick_cols, fair_pick);

/* One round of PostgreSQL's claim: picks, then takes the limited rows
 * picked in a short transaction of their own (BEGIN, the advisory lock,
 * q_claim_limited, COMMIT, which releases the lock), then, for the room
 * left, the other rows picked without the lock, so the bulk of a backlog
 * is claimed by any number of processes at once. *more: the pick was cut
 * at its size, so another round may find more. */
static aop_err claim_round(db_op *o, claim_req *r, bool *more)
{
    fair_pick p;
    int room = r->limit - r->n;
    *more = false;
    aop_err rc = db_get(o, &store_exec_pick_sql, &pick_row, &p, r->a, "it", (long long)room,
                        r->after);
    if (rc != AOP_OK || p.n == 0)
        return rc;
    if (strcmp(p.limited, "{}") != 0) {
        int before = r->n;
        r->ids = p.limited;
        if ((rc = db_tx(o, &q_claim_lock, claim_locked, r)) != AOP_OK)
            r->n = before; /* rolled back */
    }
    if (rc == AOP_OK && r->n < r->limit && strcmp(p.unlimited, "{}") != 0) {
        r->ids = p.unlimited;
        claim_now(r);
        rc = claim_rows(o, &q_claim_picked, r);
    }
    *more = p.n == room + CLAIM_SLACK_N;
    return rc;
}

/*
 * PostgreSQL's claim (the engine claims outside any transaction): rounds
 * while another claimer took what this one picked, CLAIM_ROUNDS at most. A
 * workflow whose limit was set while rows of it were queued has rows of
 * both classes: its unlimited ones count against the limit once committed.
 * When a part fails after others committed, the rows committed are handed
 * back (they run under the owner's lease; the next claim tries again).
 */
static aop_err claim_pg(db_op *o, claim_req *r)
{
    aop_err rc = AOP_OK;
    bool more = true;
    for (int i = 0; i < CLAIM_ROUNDS && more && rc == AOP_OK && r->n < r->limit; i++) {
        int before = r->n;
        rc = claim_round(o, r, &more);
        more = more && r->n - before < r->limit - before;
    }
    return r->n > 0 ? AOP_OK : rc;
}

/* A claimed row and its place in the round-robin order. */
typedef struct {
    int rank;       /* among the claimed rows of its user, from 1 */
    bool wrapped;   /* its user comes at or before the one served last */
    store_execution *e;
} claimed;

/* By user, then queue order (created_at, id). */
static int by_user(const void *x, const void *y)
{
    const claimed *a = x, *b = y;
    int c = strcmp(a->e->triggered_by, b->e->triggered_by);
    if (!c)
        c = strcmp(a->e->created_at, b->e->created_at);
    return c ? c : strcmp(a->e->id, b->e->id);
}

/* Round-robin order: rank, then the users' turns after the one served
 * last, as the fair queue orders them. */
static int by_round(const void *x, const void *y)
{
    const claimed *a = x, *b = y;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    if (a->wrapped != b->wrapped)
        return a->wrapped ? 1 : -1;
    return by_user(x, y);
}

/* The claimed rows out[0..n) in round-robin order: a copy from a. */
static store_execution *in_rounds(store_execution *out, int n, const char *after, arena *a)
{
    claimed *k = arena_alloc(a, sizeof(*k) * (size_t)n);
    for (int i = 0; i < n; i++)
        k[i] = (claimed){0, strcmp(out[i].triggered_by, after) <= 0, &out[i]};
    qsort(k, (size_t)n, sizeof(*k), by_user);
    for (int i = 0; i < n; i++)
        k[i].rank = i && !strcmp(k[i].e->triggered_by, k[i - 1].e->triggered_by) ? k[i - 1].rank + 1
                                                                                : 1;
    qsort(k, (size_t)n, sizeof(*k), by_round);
    store_execution *sorted = arena_alloc(a, sizeof(*sorted) * (size_t)n);
    for (int i = 0; i < n; i++)
        sorted[i] = *k[i].e;
    return sorted;
}

/* RETURNING hands the rows back in no promised order, hence the sort. */
aop_err store_execution_claim(store *s, const char *owner, store_clock now, long long lease_ms,
                              int limit, const char *after, store_execution **out, int *n,
                              arena *a)
{
    db_op o = db_op_start(s, "execution_claim");
    claim_req r = {.owner = owner, .after = after ? after : "", .clock = now,
                   .lease_ms = lease_ms, .limit = limit, .a = a};
    aop_err rc = AOP_OK;
    if (limit > 0) {
        r.out = arena_alloc(a, sizeof(store_execution) * (size_t)limit);
        if (s->v->dialect == DB_PG) {
            rc = claim_pg(&o, &r);
        } else if ((rc = db_tx(&o, NULL, claim_locked, &r)) != AOP_OK) {
            r.n = 0; /* rolled back */
        }
    }
    if (rc == AOP_OK && r.n > 1)
        r.out = in_rounds(r.out, r.n, r.after, a);
    *out = r.out;
    *n = r.n;
    return db_op_end(&o, rc);
}

aop_err store_execution_renew(store *s, const char *owner, long long lease_until_ms, long long *n)
{
    db_op o = db_op_start(s, "execution_renew");
    return db_op_end(&o, db_exec(&o, &q_renew, n, "it", lease_until_ms, owner));
}

aop_err store_execution_requeue(store *s, long long before_ms, long long *n)
{
    db_op o = db_op_start(s, "execution_requeue");
    return db_op_end(&o, db_exec(&o, &q_requeue, n, "i", before_ms));
}

aop_err store_execution_release(store *s, const char *owner, long long *n)
{
    db_op o = db_op_start(s, "execution_release");
    return db_op_end(&o, db_exec(&o, &q_release, n, "t", owner));
}

/* On PostgreSQL the row stays locked until the caller's transaction ends
 * (see the top). */
aop_err store_execution_owned(store *s, const char *id, const char *owner, long long claims)
{
    db_op o = db_op_start(s, "execution_owned");
    long long owned = 0;
    aop_err rc = db_query_int(&o, &q_owned, &owned, "tti", id, owner, claims);
    return db_op_end(&o, rc == AOP_OK && !owned ? AOP_ERR_CONFLICT : rc);
}

/* ---- a flush's writes, several executions at once ----
 *
 * The engine writes what its runs did in one transaction per flush: under
 * load a few hundred executions, each with its lease check, node rows and
 * end. On PostgreSQL every statement is a round trip to the server, so each
 * kind goes as one statement for all the rows (at most BATCH_ROWS, or
 * about BATCH_BYTES of values, per statement): the rows travel as one JSON
 * array of objects, read back by json_to_recordset in their order (ord).
 * SQLite runs the single-row statements in turn: a prepared statement is a
 * function call there, cheaper than building and parsing the JSON.
 */
#define BATCH_ROWS 256
#define BATCH_BYTES (1 << 20)
/* Columns of json_to_recordset, then ord, the row's place in the array. */
#define BATCH_FROM(cols, names) \
    "ROWS FROM (json_to_recordset($1::json) AS (" cols ")) WITH ORDINALITY r(" names ", ord)"
/* The batch's executions, found by key whatever the planner believes of the
 * table (see STATUS_BY_KEY): joined on id alone, it may scan the table. */
#define BATCH_KEYS "x.id = ANY (ARRAY(SELECT j ->> 'id' FROM json_array_elements($1::json) j))"

static const db_sql q_owned_batch = DB_PAIR(
    NULL, "SELECT r.ord FROM " BATCH_FROM("id text, c bigint", "id, c") " JOIN executions x "
    "ON x.id = r.id WHERE " BATCH_KEYS " AND " STATUS_BY_KEY("x.status = 'running'")
    " AND x.lease_owner = $2 AND x.claims = r.c ORDER BY x.id FOR NO KEY UPDATE OF x");
/* seq as q_node_put's: the rows new to an execution (not old) numbered in
 * their order after its existing ones. LATERAL: the execution's rows are
 * looked up by key for each row (an EXISTS here would be planned as a
 * hash of the whole table). */
static const db_sql q_node_put_batch = DB_PAIR(
    NULL, NODE_INSERT "SELECT r.x, r.n, r.t, r.s, r.a, r.sa, r.fa, " NULL_IF_NEG("r.d") ", "
    "r.pt, r.ct, r.tt, r.c, r.m, r.e::json, r.o::json, COALESCE(m.next, 0) + row_number() "
    "OVER (PARTITION BY r.x, m.old ORDER BY r.ord) - 1 FROM " BATCH_FROM(
        "x text, n text, t text, s text, a bigint, sa text, fa text, d bigint, pt bigint, "
        "ct bigint, tt bigint, c float8, m text, e text, o text",
        "x, n, t, s, a, sa, fa, d, pt, ct, tt, c, m, e, o")
    " CROSS JOIN LATERAL (SELECT MAX(q.seq) + 1 AS next, COALESCE(bool_or(q.node_id = r.n), "
    "false) AS old FROM execution_nodes q WHERE q.execution_id = r.x) m " NODE_UPSERT);
static const db_sql q_finish_batch = DB_PAIR(
    NULL, "UPDATE executions x SET status = r.s, output = r.o::json, error = r.e::json, "
    "finished_at = r.f, duration_ms = " NULL_IF_NEG("r.d") ", memory_bytes = r.mb, "
    "prompt_tokens = r.pt, completion_tokens = r.ct, total_tokens = r.tt, cost_usd = r.c, "
    "lease_owner = NULL, lease_until = NULL FROM " BATCH_FROM(
        "id text, s text, o text, e text, f text, d bigint, mb bigint, pt bigint, ct bigint, "
        "tt bigint, c float8", "id, s, o, e, f, d, mb, pt, ct, tt, c")
    " WHERE x.id = r.id AND " BATCH_KEYS " AND " STATUS_BY_KEY("x.status IN (" EXEC_ACTIVE ")")
    " RETURNING r.ord");

/* A member "key":value of a batch row (batch_run opens and closes it). */
static void member(buf *b, const char *key)
{
    buf_puts(b, b->data[b->len - 1] == '{' ? "\"" : ",\"");
    buf_puts(b, key);
    buf_puts(b, "\":");
}

/* A text member; NULL (and "" when empty_null) is null. */
static void member_text(buf *b, const char *key, const char *v, bool empty_null)
{
    member(b, key);
    if (!v || (empty_null && !*v)) {
        buf_puts(b, "null");
        return;
    }
    buf_puts(b, "\"");
    buf_json_escape(b, v, strlen(v));
    buf_puts(b, "\"");
}

static void member_int(buf *b, const char *key, long long v)
{
    member(b, key);
    buf_printf(b, "%lld", v);
}

static void member_real(buf *b, const char *key, double v)
{
    member(b, key);
    buf_printf(b, "%.17g", v);
}

/* A batch: row(b, i, ctx) writes the members of row i; sent(o, b, first,
 * n, ctx) runs a statement over rows [first, first + n), whose JSON array
 * is b. Every row is sent once, in order. */
typedef struct {
    void (*row)(buf *b, int i, const void *ctx);
    aop_err (*sent)(db_op *o, const char *json, int first, int n, void *ctx);
} batch_kind;

static aop_err batch_run(db_op *o, const batch_kind *k, int n, void *ctx)
{
    buf b;
    buf_init(&b, 0);
    aop_err rc = AOP_OK;
    for (int first = 0, i = 0; rc == AOP_OK && i < n; first = i) {
        buf_reset(&b);
        buf_puts(&b, "[");
        for (; i < n && i - first < BATCH_ROWS && b.len < BATCH_BYTES; i++) {
            buf_puts(&b, i > first ? ",{" : "{");
            k->row(&b, i, ctx);
            buf_puts(&b, "}");
        }
        buf_puts(&b, "]");
        rc = k->sent(o, b.data, first, i - first, ctx);
    }
    buf_free(&b);
    return rc;
}

/* ords (1-based places in a statement's rows): what it returned. */
static aop_err batch_ords(db_op *o, const db_sql *sql, const char *json, const char *owner,
                          int n, long long *ords, int *got)
{
    static const db_col cols[] = {{DB_INT, 0, sizeof(long long)}};
    static const db_row row = {cols, 1, sizeof(long long)};
    void *items = ords;
    return owner ? db_rows(o, sql, &row, n, &items, got, NULL, "tt", json, owner)
                 : db_rows(o, sql, &row, n, &items, got, NULL, "t", json);
}

typedef struct {
    const store_exec_lease *runs;
    const char *owner;
    bool *owned;
} owned_batch;

static void owned_row(buf *b, int i, const void *ctx)
{
    const owned_batch *c = ctx;
    member_text(b, "id", c->runs[i].id, false);
    member_int(b, "c", c->runs[i].claims);
}

static aop_err owned_sent(db_op *o, const char *json, int first, int n, void *ctx)
{
    owned_batch *c = ctx;
    long long ords[BATCH_ROWS];
    int got = 0;
    aop_err rc = batch_ords(o, &q_owned_batch, json, c->owner, n, ords, &got);
    for (int k = 0; rc == AOP_OK && k < got; k++)
        if (ords[k] >= 1 && ords[k] <= n)
            c->owned[first + ords[k] - 1] = true;
    return rc;
}

aop_err store_execution_owned_batch(store *s, const char *owner, const store_exec_lease *runs,
                                    int n, bool *owned)
{
    db_op o = db_op_start(s, "execution_owned_batch");
    aop_err rc = AOP_OK;
    for (int i = 0; i < n; i++)
        owned[i] = false;
    if (s->v->dialect == DB_PG) {
        static const batch_kind k = {owned_row, owned_sent};
        owned_batch c = {runs, owner, owned};
        rc = batch_run(&o, &k, n, &c);
    } else {
        for (int i = 0; rc == AOP_OK && i < n; i++) {
            long long one = 0;
            rc = db_query_int(&o, &q_owned, &one, "tti", runs[i].id, owner, runs[i].claims);
            owned[i] = one != 0;
        }
    }
    return db_op_end(&o, rc);
}

static void node_row_json(buf *b, int i, const void *ctx)
{
    const store_exec_node_row *r = &((const store_exec_node_row *)ctx)[i];
    const store_exec_node *n = &r->node;
    member_text(b, "x", r->execution_id, false);
    member_text(b, "n", n->node_id, false);
    member_text(b, "t", n->type, false);
    member_text(b, "s", exec_status_name(n->status), false);
    member_int(b, "a", n->attempts);
    member_text(b, "sa", n->started_at, true);
    member_text(b, "fa", n->finished_at, true);
    member_int(b, "d", n->duration_ms);
    member_int(b, "pt", n->prompt_tokens);
    member_int(b, "ct", n->completion_tokens);
    member_int(b, "tt", n->total_tokens);
    member_real(b, "c", n->cost_usd);
    member_text(b, "m", n->model, false);
    member_text(b, "e", n->error, false);
    member_text(b, "o", n->output, false);
}

static aop_err nodes_sent(db_op *o, const char *json, int first, int n, void *ctx)
{
    (void)first, (void)n, (void)ctx;
    return db_send(o, &q_node_put_batch, "t", json);
}

aop_err store_execution_nodes_put(store *s, const store_exec_node_row *rows, int n)
{
    db_op o = db_op_start(s, "execution_nodes_put");
    aop_err rc = AOP_OK;
    if (s->v->dialect == DB_PG) {
        static const batch_kind k = {node_row_json, nodes_sent};
        rc = batch_run(&o, &k, n, (void *)rows);
    } else {
        for (int i = 0; rc == AOP_OK && i < n; i++)
            rc = node_put(&o, rows[i].execution_id, &rows[i].node);
    }
    return db_op_end(&o, rc);
}

typedef struct {
    const store_execution *ends;
    aop_err *each;
} finish_batch;

static void finish_row(buf *b, int i, const void *ctx)
{
    const store_execution *e = &((const finish_batch *)ctx)->ends[i];
    member_text(b, "id", e->id, false);
    member_text(b, "s", exec_status_name(e->status), false);
    member_text(b, "o", e->output, false);
    member_text(b, "e", e->error, false);
    member_text(b, "f", e->finished_at, true);
    member_int(b, "d", e->duration_ms);
    member_int(b, "mb", e->memory_bytes);
    member_int(b, "pt", e->prompt_tokens);
    member_int(b, "ct", e->completion_tokens);
    member_int(b, "tt", e->total_tokens);
    member_real(b, "c", e->cost_usd);
}

/* Rows the statement did not return changed nothing: each says why. */
static aop_err finish_sent(db_op *o, const char *json, int first, int n, void *ctx)
{
    finish_batch *c = ctx;
    long long ords[BATCH_ROWS];
    bool done[BATCH_ROWS] = {0};
    int got = 0;
    aop_err rc = batch_ords(o, &q_finish_batch, json, NULL, n, ords, &got);
    for (int k = 0; rc == AOP_OK && k < got; k++)
        if (ords[k] >= 1 && ords[k] <= n)
            done[ords[k] - 1] = true;
    for (int k = 0; rc == AOP_OK && k < n; k++) {
        c->each[first + k] = AOP_OK;
        if (!done[k]) {
            aop_err why = not_finished(o, c->ends[first + k].id);
            if (why == AOP_ERR_CONFLICT || why == AOP_ERR_NOT_FOUND)
                c->each[first + k] = why;
            else
                rc = why;
        }
    }
    return rc;
}

aop_err store_execution_finish_batch(store *s, const store_execution *ends, int n, aop_err *each)
{
    db_op o = db_op_start(s, "execution_finish_batch");
    aop_err rc = AOP_OK;
    if (s->v->dialect == DB_PG) {
        static const batch_kind k = {finish_row, finish_sent};
        finish_batch c = {ends, each};
        rc = batch_run(&o, &k, n, &c);
    } else {
        for (int i = 0; rc == AOP_OK && i < n; i++) {
            each[i] = finish(&o, &ends[i]);
            if (each[i] != AOP_ERR_CONFLICT && each[i] != AOP_ERR_NOT_FOUND)
                rc = each[i];
        }
    }
    return db_op_end(&o, rc);
}

/* ---- the list ---- */

#define NFILTERS 5 /* reader, workflow, status, range, trigger: STORE_EXEC_F_* bits */
#define NSORTS 4

static const db_sql list_terms[NFILTERS] = {
    DB_PAIR("e.workflow_id IN (SELECT w.id FROM workflows w WHERE w.deleted_at IS NULL AND "
     "(w.owner_id = $1 OR w.id IN (SELECT p.workflow_id FROM workflow_permissions p "
     "WHERE p.user_id = $1)))",
     "e.workflow_id IN (SELECT w.id FROM workflows w WHERE w.deleted_at IS NULL AND "
     "(w.owner_id = $1 OR w.editors @> jsonb_build_array($1::text) OR "
     "w.viewers @> jsonb_build_array($1::text)))"),
    DB_BOTH("e.workflow_id = $1"),
    DB_BOTH("e.status = $1"),
    DB_BOTH("e.created_at >= $1 AND e.created_at < $2"),
    DB_BOTH("e.trigger = $1"),
};
/* With a workflow, its index bounds the rows read; the unary + keeps
 * SQLite from walking every row of the status instead (it would, for the
 * created_at order that index also gives). */
static const db_sql status_of_workflow = DB_PAIR("+e.status = $1", "e.status = $1");
/* NULLS LAST both ways: unstarted or unfinished executions at the end
 * whatever the direction (SQLite still walks the sort's index). */
static const db_sql list_orders[NSORTS] = {
    DB_BOTH("e.created_at%s, e.id%s"),
    DB_BOTH("e.started_at%s NULLS LAST, e.id%s"),
    DB_BOTH("e.finished_at%s NULLS LAST, e.id%s"),
    DB_BOTH("e.duration_ms%s NULLS LAST, e.id%s"),
};
static db_sql list_count[1 << NFILTERS], list_page[(1 << NFILTERS) * NSORTS * 2];

static const db_sql *list_term(unsigned filters, int k)
{
    if (!(filters & (1u << k)))
        return NULL;
    if (1u << k == STORE_EXEC_F_STATUS && (filters & STORE_EXEC_F_WORKFLOW))
        return &status_of_workflow;
    return &list_terms[k];
}

db_list store_exec_list = {.columns = EXEC_COLUMNS, .from = " FROM executions e",
                          .term = list_term, .nfilters = NFILTERS, .nsorts = NSORTS,
                          .order = list_orders, .count = list_count, .page = list_page};

/* An open end of the range binds its stand-in bound. */
aop_err store_execution_list(store *s, const store_exec_query *q, store_execution **out, int *n,
                             long long *total, arena *a)
{
    db_op o = db_op_start(s, "execution_list");
    db_val v[NFILTERS + 3];
    unsigned f = 0;
    int nv = 0;
    if (q->reader) {
        f |= STORE_EXEC_F_READER;
        v[nv++] = DB_TEXT(q->reader);
    }
    if (q->workflow_id) {
        f |= STORE_EXEC_F_WORKFLOW;
        v[nv++] = DB_TEXT(q->workflow_id);
    }
    if (q->status >= 0 && q->status < EXEC_RUN_STATUSES) {
        f |= STORE_EXEC_F_STATUS;
        v[nv++] = DB_TEXT(exec_status_name((exec_status)q->status));
    }
    if (q->from || q->to) {
        f |= STORE_EXEC_F_RANGE;
        v[nv++] = DB_TEXT(q->from ? q->from : TS_MIN);
        v[nv++] = DB_TEXT(q->to ? q->to : TS_MAX);
    }
    if (q->trigger) {
        f |= STORE_EXEC_F_TRIGGER;
        v[nv++] = DB_TEXT(q->trigger);
    }
    void *items = NULL;
    aop_err rc = db_page(&o, db_list_sql(&store_exec_list, f, 0, false, true),
                         db_list_sql(&store_exec_list, f, (int)q->sort, q->desc, false), v, nv,
                         q->offset, q->limit, &exec_list_row, &items, n, total, a);
    *out = items;
    return db_op_end(&o, rc);
}

/* ---- aggregates ---- */

/* The totals from TOTALS_SELECT, the durations from DURATIONS_SELECT. */
#define X(kind, member) DB_COL(kind, store_exec_totals, member)
static const db_col totals_cols[] = {
    X(DB_INT, total), X(DB_INT, by_status[0]), X(DB_INT, by_status[1]), X(DB_INT, by_status[2]),
    X(DB_INT, by_status[3]), X(DB_INT, by_status[4]), X(DB_INT, by_status[5]),
    X(DB_INT, by_status[6]),
    X(DB_INT, prompt_tokens), X(DB_INT, completion_tokens), X(DB_INT, total_tokens),
    X(DB_DOUBLE, cost_usd), X(DB_COPY, last_executed_at),
};
static const db_col durations_cols[] = {
    X(DB_DOUBLE, duration_avg), X(DB_INT, duration_max), X(DB_INT, duration_p50),
    X(DB_INT, duration_p95),
};
/* durations_row fills the rest of the totals: it clears nothing. */
static const db_row totals_row = DB_ROW(totals_cols, store_exec_totals),
                    durations_row = {durations_cols, 4, 0};

/* Fills *t over one scope: its totals and durations statements, run with
 * the scope's values (a workflow id, or a range's two bounds: fmt). */
static aop_err totals_read(db_op *o, const db_sql *totals, const db_sql *durations,
                           const char *fmt, const char *v1, const char *v2, store_exec_totals *t)
{
    aop_err rc = db_get(o, totals, &totals_row, t, NULL, fmt, v1, v2);
    return rc == AOP_OK ? db_get(o, durations, &durations_row, t, NULL, fmt, v1, v2) : rc;
}

#define NS(kind, member) DB_COL(kind, store_exec_node_stat, member)
static const db_col node_stat_cols[] = {
    NS(DB_DUP, node_id), NS(DB_INT, executions), NS(DB_INT, failures),
    NS(DB_DOUBLE, avg_duration_ms), NS(DB_INT, total_tokens), NS(DB_DOUBLE, cost_usd),
};
static const db_row node_stat_row = DB_ROW(node_stat_cols, store_exec_node_stat);

aop_err store_execution_stats(store *s, const char *workflow_id, store_exec_totals *t,
                              store_exec_node_stat **nodes, int *n, arena *a)
{
    db_op o = db_op_start(s, "execution_stats");
    void *items = NULL;
    *n = 0;
    aop_err rc = totals_read(&o, &q_wf_totals, &q_wf_durations, "t", workflow_id, NULL, t);
    if (rc == AOP_OK)
        rc = db_rows(&o, &q_stats_nodes, &node_stat_row, INT32_MAX, &items, n, a, "t",
                     workflow_id);
    *nodes = items;
    return db_op_end(&o, rc);
}

#define M(kind, member) DB_COL(kind, store_exec_model_stat, member)
static const db_col model_cols[] = {
    M(DB_DUP, model), M(DB_INT, calls), M(DB_INT, total_tokens), M(DB_DOUBLE, cost_usd),
};
#define D(kind, member) DB_COL(kind, store_exec_day, member)
static const db_col day_cols[] = {
    D(DB_COPY, date), D(DB_INT, executions), D(DB_INT, failures), D(DB_DOUBLE, cost_usd),
};
static const db_row model_row = DB_ROW(model_cols, store_exec_model_stat),
                    day_row = DB_ROW(day_cols, store_exec_day);

/* One of the summary's lists over [lo, hi), at most max rows. */
static aop_err range_list(db_op *o, const db_sql *sql, const char *lo, const char *hi, int max,
                          const db_row *row, void **items, int *n, arena *a)
{
    return db_rows(o, sql, row, max, items, n, a, "tti", lo, hi, (long long)max);
}

aop_err store_execution_summary(store *s, const char *from, const char *to, store_exec_totals *t,
                                store_exec_model_stat **models, int *nmodels,
                                store_exec_day **days, int *ndays, store_wf_top **top, int *ntop,
                                arena *a)
{
    db_op o = db_op_start(s, "execution_summary");
    const char *lo = from ? from : TS_MIN, *hi = to ? to : TS_MAX;
    void *m = NULL, *d = NULL, *w = NULL;
    *nmodels = *ndays = *ntop = 0;
    aop_err rc = totals_read(&o, &q_range_totals, &q_range_durations, "tt", lo, hi, t);
    if (rc == AOP_OK)
        rc = range_list(&o, &q_summary_models, lo, hi, STORE_EXEC_MAX_MODELS, &model_row, &m,
                        nmodels, a);
    if (rc == AOP_OK)
        rc = range_list(&o, &q_summary_days, lo, hi, STORE_EXEC_MAX_DAYS, &day_row, &d, ndays, a);
    if (rc == AOP_OK)
        rc = range_list(&o, &q_summary_top, lo, hi, STORE_WF_TOP, &store_wf_top_row, &w, ntop, a);
    *models = m;
    *days = d;
    *top = w;
    return db_op_end(&o, rc);
}

/* ---- retention ---- */

/* A (created_at, id) bound. */
typedef struct {
    char at[32], id[UUID_STR_LEN];
} prune_bound;
static const db_col bound_cols[] = {
    DB_COL(DB_COPY, prune_bound, at), DB_COL(DB_COPY, prune_bound, id),
};
static const db_row bound_row = DB_ROW(bound_cols, prune_bound);

/*
 * Which ended rows go: those before a (created_at, id) bound, the larger of
 * (before, "") (every row created before `before`) and the keep-th newest
 * ended row (every row older than it). Ordering by (created_at, id) keeps
 * exactly keep rows even when several share a created_at.
 */
aop_err store_execution_prune(store *s, const char *before, long long keep, int batch,
                              long long *n)
{
    db_op o = db_op_start(s, "execution_prune");
    prune_bound keep_at = {"", ""};
    const char *bound_at = before, *bound_id = "";
    aop_err rc = AOP_OK;
    *n = 0;
    if (batch > 0 && keep > 0) {
        rc = db_get(&o, &q_prune_keep, &bound_row, &keep_at, NULL, "i", keep - 1);
        if (rc == AOP_ERR_NOT_FOUND) /* keep or fewer ended rows: the cap takes none */
            rc = AOP_OK;
    }
    if (keep_at.at[0] && (!bound_at || strcmp(keep_at.at, bound_at) >= 0)) {
        bound_at = keep_at.at;
        bound_id = keep_at.id;
    }
    if (rc == AOP_OK && batch > 0 && bound_at)
        rc = db_exec(&o, &store_exec_prune_sql, n, "tti", bound_at, bound_id, (long long)batch);
    return db_op_end(&o, rc);
}
