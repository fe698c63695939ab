/*
 * pg_workflows.c - workflows and their version history on PostgreSQL: the
 * twin of sqlite_workflows.c (same results, order and errors).
 *
 * Where SQLite keeps workflow_tags and workflow_permissions rows, the jsonb
 * arrays tags, editors and viewers are filtered in place with @> (their GIN
 * indexes are jsonb_path_ops); search_name and search_description are
 * generated columns (lower()) matched with LIKE '%...%' through trigram
 * indexes. jsonb prints arrays with a space after each comma; reads give
 * them back compact, as they were written and as SQLite answers.
 *
 * The list query is built once per combination of filters, sort and
 * direction (never freed: the address of a statement's text is its cache
 * key), so each combination gets a plan of its own.
 */
#include "core/buf.h"
#include "store/pg_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define WF_COLUMNS                                                                        \
    "id, name, description, tags, status, settings, editors, viewers, version, owner_id, " \
    "created_by, updated_by, created_at, updated_at, execution_count, success_count, "    \
    "failure_count, duration_ms_total, duration_count, total_tokens, total_cost_usd, "    \
    "last_executed_at"
#define WF_NCOLUMNS 22

static const char q_wf_insert[] =
    "INSERT INTO workflows (id, name, description, tags, status, definition, settings, editors, "
    "viewers, version, owner_id, created_by, updated_by, created_at, updated_at) VALUES ($1, "
    "$2, $3, $4::jsonb, $5, $6::json, $7::json, $8::jsonb, $9::jsonb, $10, $11, $12, $13, $14, "
    "$15)";
static const char q_wf_get[] =
    "SELECT " WF_COLUMNS ", definition FROM workflows WHERE id = $1 AND deleted_at IS NULL";
static const char q_wf_update[] =
    "UPDATE workflows SET name = $1, description = $2, tags = $3::jsonb, status = $4, "
    "definition = $5::json, settings = $6::json, editors = $7::jsonb, viewers = $8::jsonb, "
    "version = $9, updated_by = $10, updated_at = $11 "
    "WHERE id = $12 AND version = $13 AND deleted_at IS NULL";
static const char q_wf_live[] =
    "SELECT COUNT(*) FROM workflows WHERE id = $1 AND deleted_at IS NULL";
static const char q_wf_delete[] =
    "UPDATE workflows SET deleted_at = $1, deleted_by = $2 WHERE id = $3 AND deleted_at IS NULL";
static const char q_version_insert[] =
    "INSERT INTO workflow_versions (workflow_id, version, name, updated_by, created_at, "
    "snapshot) VALUES ($1, $2, $3, $4, $5, $6::json)";
static const char q_version_count[] =
    "SELECT COUNT(*) FROM workflow_versions WHERE workflow_id = $1";
static const char q_version_page[] =
    "SELECT version, name, updated_by, created_at FROM workflow_versions WHERE workflow_id = $1 "
    "ORDER BY version DESC LIMIT $2 OFFSET $3";
static const char q_version_get[] =
    "SELECT snapshot FROM workflow_versions WHERE workflow_id = $1 AND version = $2";
static const char q_summary_counts[] =
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'draft'), "
    "COUNT(*) FILTER (WHERE status = 'active'), COUNT(*) FILTER (WHERE status = 'archived'), "
    "COUNT(*) FILTER (WHERE created_at >= $1) FROM workflows WHERE deleted_at IS NULL";
static const char q_top_executions[] =
    "SELECT id, name, execution_count, total_cost_usd FROM workflows WHERE deleted_at IS NULL "
    "ORDER BY execution_count DESC, total_cost_usd DESC, id LIMIT $1";
static const char q_top_cost[] =
    "SELECT id, name, execution_count, total_cost_usd FROM workflows WHERE deleted_at IS NULL "
    "ORDER BY total_cost_usd DESC, execution_count DESC, id LIMIT $1";

/* JSON text s without the blanks outside its strings, from a ("" for NULL
 * columns, which NOT NULL leaves none of). */
static char *json_compact(const char *s, arena *a)
{
    char *out = arena_alloc(a, strlen(s) + 1), *o = out;
    bool in_string = false, escaped = false;
    for (; *s; s++) {
        char c = *s;
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            continue;
        }
        *o++ = c;
    }
    *o = '\0';
    return out;
}

aop_err pq_workflow_insert(void *h, const store_workflow *w)
{
    return pq_exec(h, q_wf_insert, "workflow_insert", NULL, "ttttttttti" "ttttt", w->id,
                   w->name, w->description, w->tags, w->status, w->definition, w->settings,
                   w->editors, w->viewers, w->version, w->owner_id, w->created_by,
                   w->updated_by, w->created_at, w->updated_at);
}

/* Fills *w from row r of WF_COLUMNS (and definition after them, when
 * with_definition). */
static void workflow_from_row(const PGresult *res, int r, store_workflow *w,
                              bool with_definition, arena *a)
{
    memset(w, 0, sizeof(*w));
    pq_col_copy(res, r, 0, w->id, sizeof(w->id));
    w->name = pq_col_dup(res, r, 1, a);
    w->description = pq_col_dup(res, r, 2, a);
    w->tags = json_compact(PQgetvalue(res, r, 3), a);
    w->status = pq_col_dup(res, r, 4, a);
    w->settings = pq_col_dup(res, r, 5, a);
    w->editors = json_compact(PQgetvalue(res, r, 6), a);
    w->viewers = json_compact(PQgetvalue(res, r, 7), a);
    w->version = pq_col_int(res, r, 8);
    pq_col_copy(res, r, 9, w->owner_id, sizeof(w->owner_id));
    pq_col_copy(res, r, 10, w->created_by, sizeof(w->created_by));
    pq_col_copy(res, r, 11, w->updated_by, sizeof(w->updated_by));
    pq_col_copy(res, r, 12, w->created_at, sizeof(w->created_at));
    pq_col_copy(res, r, 13, w->updated_at, sizeof(w->updated_at));
    w->an.execution_count = pq_col_int(res, r, 14);
    w->an.success_count = pq_col_int(res, r, 15);
    w->an.failure_count = pq_col_int(res, r, 16);
    w->an.duration_ms_total = pq_col_int(res, r, 17);
    w->an.duration_count = pq_col_int(res, r, 18);
    w->an.total_tokens = pq_col_int(res, r, 19);
    w->an.total_cost_usd = pq_col_double(res, r, 20);
    pq_col_copy(res, r, 21, w->an.last_executed_at, sizeof(w->an.last_executed_at));
    if (with_definition)
        w->definition = pq_col_dup(res, r, WF_NCOLUMNS, a);
}

aop_err pq_workflow_get(void *h, const char *id, store_workflow *out, arena *a)
{
    PGresult *res = NULL;
    memset(out, 0, sizeof(*out));
    aop_err rc = pq_query_row(h, q_wf_get, "workflow_get", &res, "t", id);
    if (rc != AOP_OK)
        return rc;
    workflow_from_row(res, 0, out, true, a);
    PQclear(res);
    return AOP_OK;
}

/* One statement, conditional on the version: of two writers that read the
 * same version, the second finds the row changed and gets the conflict. */
aop_err pq_workflow_update(void *h, const store_workflow *w, long long expected)
{
    long long n = 0;
    aop_err rc = pq_exec(h, q_wf_update, "workflow_update", &n, "ttttttttitt" "ti", w->name,
                         w->description, w->tags, w->status, w->definition, w->settings,
                         w->editors, w->viewers, w->version, w->updated_by, w->updated_at, w->id,
                         expected);
    if (rc == AOP_OK && n == 0) {
        long long live = 0;
        rc = pq_query_int(h, q_wf_live, "workflow_update", &live, "t", w->id);
        if (rc == AOP_OK)
            rc = live ? AOP_ERR_VERSION_CONFLICT : AOP_ERR_NOT_FOUND;
    }
    return rc;
}

aop_err pq_workflow_delete(void *h, const char *id, const char *by, const char *at)
{
    long long n = 0;
    aop_err rc = pq_exec(h, q_wf_delete, "workflow_delete", &n, "ttt", at, by, id);
    return rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc;
}

/* ---- the list ---- */

enum { F_READER = 1, F_STATUS = 2, F_TAG = 4, F_OWNER = 8, F_SEARCH = 16, F_ALL = 32 };
#define LIST_VALUES 5 /* filter values at most: one per filter */

static char *q_list_page[F_ALL][3][2];
static char *q_list_count[F_ALL];
static pthread_once_t list_once = PTHREAD_ONCE_INIT;

/* The conditions of filters f; returns the number of the next parameter.
 * The reader's id and the search pattern are bound once each. */
static int where_clause(buf *b, int f)
{
    int p = 1;
    buf_puts(b, " FROM workflows w WHERE w.deleted_at IS NULL");
    if (f & F_READER) {
        buf_printf(b, " AND (w.owner_id = $%d OR w.editors @> jsonb_build_array($%d::text) "
                      "OR w.viewers @> jsonb_build_array($%d::text))", p, p, p);
        p++;
    }
    if (f & F_STATUS)
        buf_printf(b, " AND w.status = $%d", p++);
    if (f & F_TAG)
        buf_printf(b, " AND w.tags @> jsonb_build_array($%d::text)", p++);
    if (f & F_OWNER)
        buf_printf(b, " AND w.owner_id = $%d", p++);
    if (f & F_SEARCH) {
        buf_printf(b, " AND (w.search_name LIKE lower($%d::text) ESCAPE '\\' OR "
                      "w.search_description LIKE lower($%d::text) ESCAPE '\\')", p, p);
        p++;
    }
    return p;
}

/* Names sort in byte order, as on SQLite (the name indexes are COLLATE "C"). */
static void build_list_statements(void)
{
    static const char *const order[3] = {"created_at", "updated_at", "name COLLATE \"C\""};
    for (int f = 0; f < F_ALL; f++) {
        buf b;
        buf_init(&b, 0);
        buf_puts(&b, "SELECT COUNT(*)");
        where_clause(&b, f);
        q_list_count[f] = buf_take(&b, NULL);
        for (int s = 0; s < 3; s++) {
            for (int d = 0; d < 2; d++) {
                buf_init(&b, 0);
                buf_puts(&b, "SELECT " WF_COLUMNS);
                int p = where_clause(&b, f);
                buf_printf(&b, " ORDER BY w.%s%s, w.id%s LIMIT $%d OFFSET $%d", order[s],
                           d ? " DESC" : "", d ? " DESC" : "", p, p + 1);
                q_list_page[f][s][d] = buf_take(&b, NULL);
            }
        }
    }
}

/* '%' text '%' for LIKE, with text's own %, _ and \ escaped (by \). */
static char *like_pattern(const char *text, arena *a)
{
    char *out = arena_alloc(a, 2 * strlen(text) + 3), *o = out;
    *o++ = '%';
    for (const char *s = text; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\')
            *o++ = '\\';
        *o++ = *s;
    }
    *o++ = '%';
    *o = '\0';
    return out;
}

/* The filters of q as bits, and their values in bind order in v; *nv of
 * them. */
static int list_filters(const store_wf_query *q, const char *v[LIST_VALUES], int *nv, arena *a)
{
    int f = 0, n = 0;
    if (q->reader) {
        f |= F_READER;
        v[n++] = q->reader;
    }
    if (q->status) {
        f |= F_STATUS;
        v[n++] = q->status;
    }
    if (q->tag) {
        f |= F_TAG;
        v[n++] = q->tag;
    }
    if (q->owner_id) {
        f |= F_OWNER;
        v[n++] = q->owner_id;
    }
    if (q->search && *q->search) {
        f |= F_SEARCH;
        v[n++] = like_pattern(q->search, a);
    }
    *nv = n;
    return f;
}

aop_err pq_workflow_list(void *h, const store_wf_query *q, store_workflow **out, int *n,
                         long long *total, arena *a)
{
    pthread_once(&list_once, build_list_statements);
    const char *v[LIST_VALUES];
    int nv = 0, f = list_filters(q, v, &nv, a);
    int sort = (unsigned)q->sort < 3 ? (int)q->sort : STORE_WF_SORT_CREATED;
    PGresult *res = NULL;
    *out = NULL;
    *n = 0;
    *total = 0;
    aop_err rc = pq_query_page(h, q_list_count[f], "workflow_list", &res, nv, v, false, 0, 0);
    if (rc != AOP_OK)
        return rc;
    *total = PQntuples(res) > 0 ? pq_col_int(res, 0, 0) : 0;
    PQclear(res);
    /* PostgreSQL refuses a negative LIMIT or OFFSET; SQLite reads them as
     * none and 0, and no rows are read past a limit below 1. */
    long long offset = q->offset > 0 ? q->offset : 0;
    if (q->limit <= 0 || *total <= offset)
        return AOP_OK;
    *out = arena_alloc(a, sizeof(store_workflow) * (size_t)q->limit);
    rc = pq_query_page(h, q_list_page[f][sort][q->desc ? 1 : 0], "workflow_list", &res, nv, v,
                       true, q->limit, offset);
    if (rc != AOP_OK)
        return rc;
    for (int r = 0; r < PQntuples(res) && *n < q->limit; r++)
        workflow_from_row(res, r, &(*out)[(*n)++], false, a);
    PQclear(res);
    return AOP_OK;
}

/* ---- versions ---- */

aop_err pq_workflow_version_insert(void *h, const char *workflow_id, const store_wf_version *v,
                                   const char *snapshot)
{
    return pq_exec(h, q_version_insert, "workflow_version_insert", NULL, "titttt", workflow_id,
                   v->version, v->name, v->updated_by, v->created_at, snapshot);
}

aop_err pq_workflow_version_list(void *h, const char *workflow_id, long long offset,
                                 long long limit, store_wf_version **out, int *n,
                                 long long *total, arena *a)
{
    PGresult *res = NULL;
    *out = NULL;
    *n = 0;
    aop_err rc = pq_query_int(h, q_version_count, "workflow_version_list", total, "t",
                              workflow_id);
    if (offset < 0) /* as SQLite reads it; PostgreSQL refuses it */
        offset = 0;
    if (rc != AOP_OK || limit <= 0 || *total <= offset)
        return rc;
    *out = arena_alloc(a, sizeof(store_wf_version) * (size_t)limit);
    rc = pq_query(h, q_version_page, "workflow_version_list", &res, "tii", workflow_id, limit,
                  offset);
    if (rc != AOP_OK)
        return rc;
    for (int r = 0; r < PQntuples(res) && *n < limit; r++) {
        store_wf_version *v = &(*out)[(*n)++];
        v->version = pq_col_int(res, r, 0);
        v->name = pq_col_dup(res, r, 1, a);
        pq_col_copy(res, r, 2, v->updated_by, sizeof(v->updated_by));
        pq_col_copy(res, r, 3, v->created_at, sizeof(v->created_at));
    }
    PQclear(res);
    return AOP_OK;
}

aop_err pq_workflow_version_get(void *h, const char *workflow_id, long long version,
                                char **snapshot, arena *a)
{
    PGresult *res = NULL;
    aop_err rc = pq_query_row(h, q_version_get, "workflow_version_get", &res, "ti", workflow_id,
                              version);
    if (rc != AOP_OK)
        return rc;
    *snapshot = pq_col_dup(res, 0, 0, a);
    PQclear(res);
    return AOP_OK;
}

/* ---- summary ---- */

/* Up to STORE_WF_TOP rows of a top list. */
static aop_err top_list(void *h, const char *sql, store_wf_top *out, int *n, arena *a)
{
    PGresult *res = NULL;
    *n = 0;
    aop_err rc = pq_query(h, sql, "workflow_summary", &res, "i", (long long)STORE_WF_TOP);
    if (rc != AOP_OK)
        return rc;
    for (int r = 0; r < PQntuples(res) && *n < STORE_WF_TOP; r++) {
        store_wf_top *t = &out[(*n)++];
        pq_col_copy(res, r, 0, t->id, sizeof(t->id));
        t->name = pq_col_dup(res, r, 1, a);
        t->executions = pq_col_int(res, r, 2);
        t->cost_usd = pq_col_double(res, r, 3);
    }
    PQclear(res);
    return AOP_OK;
}

aop_err pq_workflow_summary(void *h, const char *since, store_wf_summary *out, arena *a)
{
    PGresult *res = NULL;
    memset(out, 0, sizeof(*out));
    aop_err rc = pq_query_row(h, q_summary_counts, "workflow_summary", &res, "t", since);
    if (rc != AOP_OK)
        return rc;
    out->total = pq_col_int(res, 0, 0);
    out->draft = pq_col_int(res, 0, 1);
    out->active = pq_col_int(res, 0, 2);
    out->archived = pq_col_int(res, 0, 3);
    out->created_since = pq_col_int(res, 0, 4);
    PQclear(res);
    rc = top_list(h, q_top_executions, out->by_executions, &out->n_by_executions, a);
    if (rc == AOP_OK)
        rc = top_list(h, q_top_cost, out->by_cost, &out->n_by_cost, a);
    return rc;
}

/* GREATEST ignores NULL: an empty last start leaves the stored one. */
static const char q_analytics_add[] =
    "UPDATE workflows SET execution_count = execution_count + $1::bigint, "
    "success_count = success_count + $2::bigint, failure_count = failure_count + $3::bigint, "
    "duration_ms_total = duration_ms_total + $4::bigint, "
    "duration_count = duration_count + $5::bigint, total_tokens = total_tokens + $6::bigint, "
    "total_cost_usd = total_cost_usd + $7::float8, "
    "last_executed_at = GREATEST(last_executed_at COLLATE \"C\", $8::text) WHERE id = $9";

aop_err pq_workflow_analytics_add(void *h, const char *workflow_id, const store_wf_tally *t)
{
    long long n = 0;
    aop_err rc = pq_exec(h, q_analytics_add, "workflow_analytics_add", &n, "iiiiiidtt",
                         t->executions, t->succeeded, t->failed, t->duration_ms_total,
                         t->duration_count, t->total_tokens, t->cost_usd,
                         t->last_executed_at[0] ? t->last_executed_at : NULL, workflow_id);
    return rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc;
}
