/*
 * workflows.c - workflows, their version history, their analytics
 * counters and the summary over them.
 *
 * SQLite keeps tags and permissions as workflow_tags and
 * workflow_permissions rows too, written with the workflow (steps
 * PostgreSQL has not: it filters the jsonb arrays with @>). search_name
 * and search_description hold the lowered name and description (aop_lower()
 * on SQLite, generated columns on PostgreSQL), matched with LIKE '%...%'.
 */
#include "store/db.h"

#define WF_COLUMNS                                                                        \
    "id, name, description, tags, status, settings, editors, viewers, version, owner_id, " \
    "created_by, updated_by, created_at, updated_at, execution_count, success_count, "    \
    "failure_count, duration_ms_total, duration_count, total_tokens, total_cost_usd, "    \
    "last_executed_at"
#define WF_NCOLUMNS 22

#define WF_INSERT(search_columns, search_values)                                          \
    "INSERT INTO workflows (id, name, description, tags, status, definition, settings, "   \
    "editors, viewers, version, owner_id, created_by, updated_by, created_at, updated_at"  \
    search_columns ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, " \
    "$15" search_values ")"
#define WF_UPDATE(search)                                                                 \
    "UPDATE workflows SET name = $1, description = $2, tags = $3, status = $4, "          \
    "definition = $5, settings = $6, editors = $7, viewers = $8, version = $9, "          \
    "updated_by = $10, updated_at = $11" search " WHERE id = $12 AND version = $13 "      \
    "AND deleted_at IS NULL"

static const db_sql q_wf_insert = DB_PAIR(
    WF_INSERT(", search_name, search_description", ", aop_lower($2), aop_lower($3)"),
    WF_INSERT("", ""));
static const db_sql q_wf_get = DB_BOTH(
    "SELECT " WF_COLUMNS ", definition FROM workflows WHERE id = $1 AND deleted_at IS NULL");
static const db_sql q_wf_update = DB_PAIR(
    WF_UPDATE(", search_name = aop_lower($1), search_description = aop_lower($2)"),
    WF_UPDATE(""));
static const db_sql q_wf_live = DB_BOTH(
    "SELECT COUNT(*) FROM workflows WHERE id = $1 AND deleted_at IS NULL");
static const db_sql q_wf_delete = DB_BOTH(
    "UPDATE workflows SET deleted_at = $1, deleted_by = $2 WHERE id = $3 AND deleted_at IS NULL");
static const db_sql q_tags_clear =
    DB_PAIR("DELETE FROM workflow_tags WHERE workflow_id = $1", NULL);
static const db_sql q_tags_fill = DB_PAIR(
    "INSERT INTO workflow_tags (tag, workflow_id) SELECT value, $1 FROM json_each($2)", NULL);
static const db_sql q_perms_clear = DB_PAIR(
    "DELETE FROM workflow_permissions WHERE workflow_id = $1", NULL);
static const db_sql q_perms_fill = DB_PAIR(
    "INSERT INTO workflow_permissions (workflow_id, user_id, access) "
    "SELECT $1, value, 'editor' FROM json_each($2) UNION ALL "
    "SELECT $1, value, 'viewer' FROM json_each($3)", NULL);
static const db_sql q_version_insert = DB_BOTH(
    "INSERT INTO workflow_versions (workflow_id, version, name, updated_by, created_at, "
    "snapshot) VALUES ($1, $2, $3, $4, $5, $6)");
static const db_sql q_version_count = DB_BOTH(
    "SELECT COUNT(*) FROM workflow_versions WHERE workflow_id = $1");
static const db_sql q_version_page = DB_BOTH(
    "SELECT version, name, updated_by, created_at FROM workflow_versions WHERE workflow_id = $1 "
    "ORDER BY version DESC LIMIT $2 OFFSET $3");
static const db_sql q_version_get = DB_BOTH(
    "SELECT snapshot FROM workflow_versions WHERE workflow_id = $1 AND version = $2");
static const db_sql q_summary_counts = DB_BOTH(
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'draft'), "
    "COUNT(*) FILTER (WHERE status = 'active'), COUNT(*) FILTER (WHERE status = 'archived'), "
    "COUNT(*) FILTER (WHERE created_at >= $1) FROM workflows WHERE deleted_at IS NULL");
static const db_sql q_top_executions = DB_BOTH(
    "SELECT id, name, execution_count, total_cost_usd FROM workflows WHERE deleted_at IS NULL "
    "ORDER BY execution_count DESC, total_cost_usd DESC, id LIMIT $1");
static const db_sql q_top_cost = DB_BOTH(
    "SELECT id, name, execution_count, total_cost_usd FROM workflows WHERE deleted_at IS NULL "
    "ORDER BY total_cost_usd DESC, execution_count DESC, id LIMIT $1");
/* An empty last start leaves the stored one: SQLite's max() of two values
 * is NULL when either is, PostgreSQL's GREATEST ignores NULL. */
#define ANALYTICS_ADD(last)                                                                  \
    "UPDATE workflows SET execution_count = execution_count + $1, "                          \
    "success_count = success_count + $2, failure_count = failure_count + $3, "               \
    "duration_ms_total = duration_ms_total + $4, duration_count = duration_count + $5, "     \
    "total_tokens = total_tokens + $6, total_cost_usd = total_cost_usd + $7, "               \
    "last_executed_at = " last " WHERE id = $9"
static const db_sql q_analytics_add = DB_PAIR(
    ANALYTICS_ADD("COALESCE(max(last_executed_at, $8), $8, last_executed_at)"),
    ANALYTICS_ADD("GREATEST(last_executed_at COLLATE \"C\", $8::text)"));

/* Rewrites SQLite's tag and permission rows of w from its JSON members. */
static aop_err write_sets(db_op *o, const store_workflow *w, bool clear)
{
    aop_err rc = AOP_OK;
    if (clear)
        rc = db_exec(o, &q_tags_clear, NULL, "t", w->id);
    if (rc == AOP_OK)
        rc = db_exec(o, &q_tags_fill, NULL, "tt", w->id, w->tags);
    if (rc == AOP_OK && clear)
        rc = db_exec(o, &q_perms_clear, NULL, "t", w->id);
    if (rc == AOP_OK)
        rc = db_exec(o, &q_perms_fill, NULL, "ttt", w->id, w->editors, w->viewers);
    return rc;
}

aop_err store_workflow_insert(store *s, const store_workflow *w)
{
    db_op o = db_op_start(s, "workflow_insert");
    aop_err rc = db_exec(&o, &q_wf_insert, NULL, "ttttttttti" "ttttt", w->id, w->name,
                         w->description, w->tags, w->status, w->definition, w->settings,
                         w->editors, w->viewers, w->version, w->owner_id, w->created_by,
                         w->updated_by, w->created_at, w->updated_at);
    if (rc == AOP_OK)
        rc = write_sets(&o, w, false);
    return db_op_end(&o, rc);
}

/* A store_workflow from WF_COLUMNS and definition; lists read the columns
 * before definition alone. */
#define W(kind, member) DB_COL(kind, store_workflow, member)
static const db_col wf_cols[] = {
    W(DB_COPY, id), W(DB_DUP, name), W(DB_DUP, description), W(DB_DUP, tags),
    W(DB_DUP, status), W(DB_DUP, settings), W(DB_DUP, editors), W(DB_DUP, viewers),
    W(DB_INT, version), W(DB_COPY, owner_id), W(DB_COPY, created_by), W(DB_COPY, updated_by),
    W(DB_COPY, created_at), W(DB_COPY, updated_at), W(DB_INT, an.execution_count),
    W(DB_INT, an.success_count), W(DB_INT, an.failure_count), W(DB_INT, an.duration_ms_total),
    W(DB_INT, an.duration_count), W(DB_INT, an.total_tokens), W(DB_DOUBLE, an.total_cost_usd),
    W(DB_COPY, an.last_executed_at), W(DB_DUP, definition),
};
static const db_row wf_row = DB_ROW(wf_cols, store_workflow),
                    wf_list_row = {wf_cols, WF_NCOLUMNS, sizeof(store_workflow)};

aop_err store_workflow_get(store *s, const char *id, store_workflow *out, arena *a)
{
    db_op o = db_op_start(s, "workflow_get");
    return db_op_end(&o, db_get(&o, &q_wf_get, &wf_row, out, a, "t", id));
}

/* One statement, conditional on the version: of two writers that read the
 * same version, the second finds the row changed and gets the conflict. */
aop_err store_workflow_update(store *s, const store_workflow *w, long long expected)
{
    db_op o = db_op_start(s, "workflow_update");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_wf_update, &n, "ttttttttitt" "ti", w->name, w->description,
                         w->tags, w->status, w->definition, w->settings, w->editors, w->viewers,
                         w->version, w->updated_by, w->updated_at, w->id, expected);
    if (rc == AOP_OK && n == 0) {
        long long live = 0;
        rc = db_query_int(&o, &q_wf_live, &live, "t", w->id);
        if (rc == AOP_OK)
            rc = live ? AOP_ERR_VERSION_CONFLICT : AOP_ERR_NOT_FOUND;
    }
    if (rc == AOP_OK)
        rc = write_sets(&o, w, true);
    return db_op_end(&o, rc);
}

aop_err store_workflow_delete(store *s, const char *id, const char *by, const char *at)
{
    db_op o = db_op_start(s, "workflow_delete");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_wf_delete, &n, "ttt", at, by, id);
    return db_op_end(&o, rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc);
}

/* ---- the list ---- */

#define NFILTERS 5 /* reader, status, tag, owner, search: STORE_WF_F_* bits */
#define NSORTS 3

static const db_sql list_terms[NFILTERS] = {
    DB_PAIR("(w.owner_id = $1 OR w.id IN (SELECT p.workflow_id FROM workflow_permissions p "
     "WHERE p.user_id = $1))",
     "(w.owner_id = $1 OR w.editors @> jsonb_build_array($1::text) "
     "OR w.viewers @> jsonb_build_array($1::text))"),
    DB_BOTH("w.status = $1"),
    DB_PAIR("w.id IN (SELECT t.workflow_id FROM workflow_tags t WHERE t.tag = $1)",
     "w.tags @> jsonb_build_array($1::text)"),
    DB_BOTH("w.owner_id = $1"),
    DB_PAIR("(w.search_name LIKE aop_lower($1) ESCAPE '\\' OR "
     "w.search_description LIKE aop_lower($1) ESCAPE '\\')",
     "(w.search_name LIKE lower($1::text) ESCAPE '\\' OR "
     "w.search_description LIKE lower($1::text) ESCAPE '\\')"),
};
/* Names sort in byte order on both (PostgreSQL's name indexes are COLLATE "C"). */
static const db_sql list_orders[NSORTS] = {
    DB_BOTH("w.created_at%s, w.id%s"),
    DB_BOTH("w.updated_at%s, w.id%s"),
    DB_PAIR("w.name%s, w.id%s", "w.name COLLATE \"C\"%s, w.id%s"),
};
static db_sql list_count[1 << NFILTERS], list_page[(1 << NFILTERS) * NSORTS * 2];

db_list store_wf_list = {.columns = WF_COLUMNS, .from = " FROM workflows w",
                        .where = "w.deleted_at IS NULL", .terms = list_terms,
                        .nfilters = NFILTERS, .nsorts = NSORTS, .order = list_orders,
                        .count = list_count, .page = list_page};

aop_err store_workflow_list(store *s, const store_wf_query *q, store_workflow **out, int *n,
                            long long *total, arena *a)
{
    db_op o = db_op_start(s, "workflow_list");
    const char *search = q->search && *q->search ? db_like_pattern(q->search, a) : NULL;
    const char *values[NFILTERS] = {q->reader, q->status, q->tag, q->owner_id, search};
    void *items = NULL;
    aop_err rc = db_list_page(&o, &store_wf_list, values, (int)q->sort, q->desc, q->offset,
                              q->limit, &wf_list_row, &items, n, total, a);
    *out = items;
    return db_op_end(&o, rc);
}

/* ---- versions ---- */

aop_err store_workflow_version_insert(store *s, const char *workflow_id,
                                      const store_wf_version *v, const char *snapshot)
{
    db_op o = db_op_start(s, "workflow_version_insert");
    return db_op_end(&o, db_exec(&o, &q_version_insert, NULL, "titttt", workflow_id, v->version,
                                 v->name, v->updated_by, v->created_at, snapshot));
}

#define V(kind, member) DB_COL(kind, store_wf_version, member)
static const db_col version_cols[] = {
    V(DB_INT, version), V(DB_DUP, name), V(DB_COPY, updated_by), V(DB_COPY, created_at),
};
static const db_row version_row = DB_ROW(version_cols, store_wf_version);

aop_err store_workflow_version_list(store *s, const char *workflow_id, long long offset,
                                    long long limit, store_wf_version **out, int *n,
                                    long long *total, arena *a)
{
    db_op o = db_op_start(s, "workflow_version_list");
    db_val v[3] = {DB_TEXT(workflow_id)};
    void *items = NULL;
    aop_err rc = db_page(&o, &q_version_count, &q_version_page, v, 1, offset, limit,
                         &version_row, &items, n, total, a);
    *out = items;
    return db_op_end(&o, rc);
}

static const db_col text_cols[] = {{DB_DUP, 0, sizeof(char *)}};
static const db_row text_row = DB_ROW(text_cols, char *);

aop_err store_workflow_version_get(store *s, const char *workflow_id, long long version,
                                   char **snapshot, arena *a)
{
    db_op o = db_op_start(s, "workflow_version_get");
    return db_op_end(&o, db_get(&o, &q_version_get, &text_row, snapshot, a, "ti",
                                workflow_id, version));
}

/* ---- summary and analytics ---- */

#define T(kind, member) DB_COL(kind, store_wf_top, member)
static const db_col top_cols[] = {
    T(DB_COPY, id), T(DB_DUP, name), T(DB_INT, executions), T(DB_DOUBLE, cost_usd),
};
const db_row store_wf_top_row = DB_ROW(top_cols, store_wf_top);

/* Up to STORE_WF_TOP rows of a top list into out. */
static aop_err top_list(db_op *o, const db_sql *sql, store_wf_top *out, int *n, arena *a)
{
    void *items = out;
    return db_rows(o, sql, &store_wf_top_row, STORE_WF_TOP, &items, n, a, "i",
                   (long long)STORE_WF_TOP);
}

#define S(member) DB_COL(DB_INT, store_wf_summary, member)
static const db_col counts_cols[] = {S(total), S(draft), S(active), S(archived), S(created_since)};
static const db_row counts_row = DB_ROW(counts_cols, store_wf_summary);

aop_err store_workflow_summary(store *s, const char *since, store_wf_summary *out, arena *a)
{
    db_op o = db_op_start(s, "workflow_summary");
    aop_err rc = db_get(&o, &q_summary_counts, &counts_row, out, a, "t", since);
    if (rc == AOP_OK)
        rc = top_list(&o, &q_top_executions, out->by_executions, &out->n_by_executions, a);
    if (rc == AOP_OK)
        rc = top_list(&o, &q_top_cost, out->by_cost, &out->n_by_cost, a);
    return db_op_end(&o, rc);
}

/* AOP_ERR_NOT_FOUND when there is no such workflow row (deleted or not). */
aop_err store_workflow_analytics_tally(store *s, const char *workflow_id, const store_wf_tally *t)
{
    db_op o = db_op_start(s, "workflow_analytics_add");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_analytics_add, &n, "iiiiiidtt", t->executions, t->succeeded,
                         t->failed, t->duration_ms_total, t->duration_count, t->total_tokens,
                         t->cost_usd, db_opt(t->last_executed_at), workflow_id);
    return db_op_end(&o, rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc);
}
