/*
 * sqlite_workflows.c - workflows, their tags and permissions, and their
 * version history on SQLite.
 *
 * The list query is built from the filters present, so each combination has
 * its own plan and the partial indexes of migration 003 serve it (a single
 * statement with "? IS NULL OR ..." terms would leave SQLite one plan for
 * all). The texts are built once and never freed: the statement cache keys
 * statements by the address of their SQL.
 */
#include "core/buf.h"
#include "core/str.h"
#include "store/sqlite_int.h"

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
    "viewers, version, owner_id, created_by, updated_by, created_at, updated_at, search_name, "
    "search_description) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char q_wf_get[] =
    "SELECT " WF_COLUMNS ", definition FROM workflows WHERE id = ? AND deleted_at IS NULL";
static const char q_wf_update[] =
    "UPDATE workflows SET name = ?, description = ?, tags = ?, status = ?, definition = ?, "
    "settings = ?, editors = ?, viewers = ?, version = ?, updated_by = ?, updated_at = ?, "
    "search_name = ?, search_description = ? WHERE id = ? AND version = ? AND deleted_at IS NULL";
static const char q_wf_live[] =
    "SELECT COUNT(*) FROM workflows WHERE id = ? AND deleted_at IS NULL";
static const char q_wf_delete[] =
    "UPDATE workflows SET deleted_at = ?, deleted_by = ? WHERE id = ? AND deleted_at IS NULL";
static const char q_tags_clear[] = "DELETE FROM workflow_tags WHERE workflow_id = ?";
static const char q_tags_fill[] =
    "INSERT INTO workflow_tags (tag, workflow_id) SELECT value, ? FROM json_each(?)";
static const char q_perms_clear[] = "DELETE FROM workflow_permissions WHERE workflow_id = ?";
static const char q_perms_fill[] =
    "INSERT INTO workflow_permissions (workflow_id, user_id, access) "
    "SELECT ?, value, 'editor' FROM json_each(?) UNION ALL "
    "SELECT ?, value, 'viewer' FROM json_each(?)";
static const char q_version_insert[] =
    "INSERT INTO workflow_versions (workflow_id, version, name, updated_by, created_at, "
    "snapshot) VALUES (?, ?, ?, ?, ?, ?)";
static const char q_version_count[] =
    "SELECT COUNT(*) FROM workflow_versions WHERE workflow_id = ?";
static const char q_version_page[] =
    "SELECT version, name, updated_by, created_at FROM workflow_versions WHERE workflow_id = ? "
    "ORDER BY version DESC LIMIT ? OFFSET ?";
static const char q_version_get[] =
    "SELECT snapshot FROM workflow_versions WHERE workflow_id = ? AND version = ?";
static const char q_summary_counts[] =
    "SELECT COUNT(*), COALESCE(SUM(status = 'draft'), 0), COALESCE(SUM(status = 'active'), 0), "
    "COALESCE(SUM(status = 'archived'), 0), COALESCE(SUM(created_at >= ?), 0) "
    "FROM workflows WHERE deleted_at IS NULL";
static const char q_top_executions[] =
    "SELECT id, name, execution_count, total_cost_usd FROM workflows WHERE deleted_at IS NULL "
    "ORDER BY execution_count DESC, total_cost_usd DESC, id LIMIT ?";
static const char q_top_cost[] =
    "SELECT id, name, execution_count, total_cost_usd FROM workflows WHERE deleted_at IS NULL "
    "ORDER BY total_cost_usd DESC, execution_count DESC, id LIMIT ?";


/* Rewrites the tag and permission rows of w from its JSON members. */
static aop_err write_sets(void *h, const store_workflow *w, bool clear)
{
    aop_err rc = AOP_OK;
    if (clear)
        rc = sq_exec(h, q_tags_clear, "workflow_tags", NULL, "t", w->id);
    if (rc == AOP_OK)
        rc = sq_exec(h, q_tags_fill, "workflow_tags", NULL, "tt", w->id, w->tags);
    if (rc == AOP_OK && clear)
        rc = sq_exec(h, q_perms_clear, "workflow_permissions", NULL, "t", w->id);
    if (rc == AOP_OK)
        rc = sq_exec(h, q_perms_fill, "workflow_permissions", NULL, "tttt", w->id, w->editors,
                     w->id, w->viewers);
    return rc;
}

aop_err sq_workflow_insert(void *h, const store_workflow *w)
{
    arena a = {0};
    aop_err rc = sq_exec(h, q_wf_insert, "workflow_insert", NULL, "ttttttttti" "ttttttt", w->id,
                         w->name, w->description, w->tags, w->status, w->definition,
                         w->settings, w->editors, w->viewers, w->version, w->owner_id,
                         w->created_by, w->updated_by, w->created_at, w->updated_at,
                         str_lower_utf8(w->name, &a), str_lower_utf8(w->description, &a));
    if (rc == AOP_OK)
        rc = write_sets(h, w, false);
    arena_free(&a);
    return rc;
}

/* Fills *w from a row of WF_COLUMNS (and definition after them, when
 * with_definition). */
static void workflow_from_row(sqlite3_stmt *st, store_workflow *w, bool with_definition,
                              arena *a)
{
    memset(w, 0, sizeof(*w));
    sq_col_copy(st, 0, w->id, sizeof(w->id));
    w->name = sq_col_dup(st, 1, a);
    w->description = sq_col_dup(st, 2, a);
    w->tags = sq_col_dup(st, 3, a);
    w->status = sq_col_dup(st, 4, a);
    w->settings = sq_col_dup(st, 5, a);
    w->editors = sq_col_dup(st, 6, a);
    w->viewers = sq_col_dup(st, 7, a);
    w->version = sqlite3_column_int64(st, 8);
    sq_col_copy(st, 9, w->owner_id, sizeof(w->owner_id));
    sq_col_copy(st, 10, w->created_by, sizeof(w->created_by));
    sq_col_copy(st, 11, w->updated_by, sizeof(w->updated_by));
    sq_col_copy(st, 12, w->created_at, sizeof(w->created_at));
    sq_col_copy(st, 13, w->updated_at, sizeof(w->updated_at));
    w->an.execution_count = sqlite3_column_int64(st, 14);
    w->an.success_count = sqlite3_column_int64(st, 15);
    w->an.failure_count = sqlite3_column_int64(st, 16);
    w->an.duration_ms_total = sqlite3_column_int64(st, 17);
    w->an.duration_count = sqlite3_column_int64(st, 18);
    w->an.total_tokens = sqlite3_column_int64(st, 19);
    w->an.total_cost_usd = sqlite3_column_double(st, 20);
    sq_col_copy(st, 21, w->an.last_executed_at, sizeof(w->an.last_executed_at));
    if (with_definition)
        w->definition = sq_col_dup(st, WF_NCOLUMNS, a);
}

aop_err sq_workflow_get(void *h, const char *id, store_workflow *out, arena *a)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    aop_err rc = sq_query_row(h, q_wf_get, "workflow_get", &st, "t", id);
    if (rc != AOP_OK)
        return rc;
    workflow_from_row(st, out, true, a);
    sq_release(st);
    return AOP_OK;
}

aop_err sq_workflow_update(void *h, const store_workflow *w, long long expected)
{
    arena a = {0};
    long long n = 0;
    aop_err rc = sq_exec(h, q_wf_update, "workflow_update", &n, "ttttttttitt" "ttti", w->name,
                         w->description, w->tags, w->status, w->definition, w->settings,
                         w->editors, w->viewers, w->version, w->updated_by, w->updated_at,
                         str_lower_utf8(w->name, &a), str_lower_utf8(w->description, &a), w->id,
                         expected);
    arena_free(&a);
    if (rc == AOP_OK && n == 0) {
        long long live = 0;
        rc = sq_query_int(h, q_wf_live, "workflow_update", &live, "t", w->id);
        if (rc == AOP_OK)
            rc = live ? AOP_ERR_VERSION_CONFLICT : AOP_ERR_NOT_FOUND;
    }
    if (rc == AOP_OK)
        rc = write_sets(h, w, true);
    return rc;
}

aop_err sq_workflow_delete(void *h, const char *id, const char *by, const char *at)
{
    long long n = 0;
    aop_err rc = sq_exec(h, q_wf_delete, "workflow_delete", &n, "ttt", at, by, id);
    return rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc;
}

/* The list statements: one per combination of filters (a bit each), sort
 * and direction, plus one count per combination of filters. */
enum { F_READER = SQ_WF_READER, F_STATUS = SQ_WF_STATUS, F_TAG = SQ_WF_TAG, F_OWNER = SQ_WF_OWNER,
       F_SEARCH = SQ_WF_SEARCH, F_ALL = 32 };

static char *q_list_page[F_ALL][3][2];
static char *q_list_count[F_ALL];
static pthread_once_t list_once = PTHREAD_ONCE_INIT;

static void where_clause(buf *b, int f)
{
    buf_puts(b, " FROM workflows w WHERE w.deleted_at IS NULL");
    if (f & F_READER)
        buf_puts(b, " AND (w.owner_id = ? OR w.id IN (SELECT p.workflow_id FROM "
                    "workflow_permissions p WHERE p.user_id = ?))");
    if (f & F_STATUS)
        buf_puts(b, " AND w.status = ?");
    if (f & F_TAG)
        buf_puts(b, " AND w.id IN (SELECT t.workflow_id FROM workflow_tags t WHERE t.tag = ?)");
    if (f & F_OWNER)
        buf_puts(b, " AND w.owner_id = ?");
    if (f & F_SEARCH)
        buf_puts(b, " AND (instr(w.search_name, ?) > 0 OR instr(w.search_description, ?) > 0)");
}

static void build_list_statements(void)
{
    static const char *const order[3] = {"created_at", "updated_at", "name"};
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
                where_clause(&b, f);
                buf_printf(&b, " ORDER BY w.%s%s, w.id%s LIMIT ? OFFSET ?", order[s],
                           d ? " DESC" : "", d ? " DESC" : "");
                q_list_page[f][s][d] = buf_take(&b, NULL);
            }
        }
    }
}

const char *sq_workflow_list_sql(unsigned filters, store_wf_sort sort, bool desc, bool count)
{
    pthread_once(&list_once, build_list_statements);
    filters &= F_ALL - 1;
    return count ? q_list_count[filters] : q_list_page[filters][sort][desc];
}

/* The filters of q as bits, and their values in bind order. */
static int list_filters(const store_wf_query *q, const char *v[7], const char **search,
                        arena *a)
{
    int f = 0, n = 0;
    if (q->reader) {
        f |= F_READER;
        v[n++] = q->reader;
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
        *search = str_lower_utf8(q->search, a);
        v[n++] = *search;
        v[n++] = *search;
    }
    while (n < 7)
        v[n++] = NULL;
    return f;
}

/* Binds the filter values (in order, as many as the statement has before
 * the paging ones) and, when page, LIMIT and OFFSET. */
static aop_err bind_list(sqlite3_stmt *st, const char *const v[7], int nv, const store_wf_query *q,
                         bool page)
{
    int i = 1;
    for (int k = 0; k < nv; k++, i++)
        if (sqlite3_bind_text(st, i, v[k], -1, SQLITE_STATIC) != SQLITE_OK)
            return AOP_ERR_INTERNAL;
    if (page && (sqlite3_bind_int64(st, i, q->limit) != SQLITE_OK ||
                 sqlite3_bind_int64(st, i + 1, q->offset) != SQLITE_OK))
        return AOP_ERR_INTERNAL;
    return AOP_OK;
}

static int count_values(const char *const v[7])
{
    int n = 0;
    while (n < 7 && v[n])
        n++;
    return n;
}

aop_err sq_workflow_list(void *h, const store_wf_query *q, store_workflow **out, int *n,
                         long long *total, arena *a)
{
    pthread_once(&list_once, build_list_statements);
    const char *v[7], *search = NULL;
    int f = list_filters(q, v, &search, a), nv = count_values(v);
    sqlite3_stmt *st = NULL;
    bool row = false;
    *out = NULL;
    *n = 0;
    *total = 0;
    aop_err rc = sq_prepare(h, q_list_count[f], "workflow_list", &st, "");
    if (rc == AOP_OK)
        rc = bind_list(st, v, nv, q, false);
    if (rc == AOP_OK && (rc = sq_step(st, "workflow_list", &row)) == AOP_OK && row)
        *total = sqlite3_column_int64(st, 0);
    sq_release(st);
    if (rc != AOP_OK || *total <= q->offset)
        return rc;
    *out = arena_alloc(a, sizeof(store_workflow) * (size_t)q->limit);
    rc = sq_prepare(h, q_list_page[f][q->sort][q->desc], "workflow_list", &st, "");
    if (rc == AOP_OK)
        rc = bind_list(st, v, nv, q, true);
    while (rc == AOP_OK && (rc = sq_step(st, "workflow_list", &row)) == AOP_OK && row &&
           *n < q->limit)
        workflow_from_row(st, &(*out)[(*n)++], false, a);
    sq_release(st);
    return rc;
}

aop_err sq_workflow_version_insert(void *h, const char *workflow_id, const store_wf_version *v,
                                   const char *snapshot)
{
    return sq_exec(h, q_version_insert, "workflow_version_insert", NULL, "titttt", workflow_id,
                   v->version, v->name, v->updated_by, v->created_at, snapshot);
}

aop_err sq_workflow_version_list(void *h, const char *workflow_id, long long offset,
                                 long long limit, store_wf_version **out, int *n,
                                 long long *total, arena *a)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    *out = NULL;
    *n = 0;
    aop_err rc = sq_query_int(h, q_version_count, "workflow_version_list", total, "t",
                              workflow_id);
    if (rc != AOP_OK || *total <= offset)
        return rc;
    *out = arena_alloc(a, sizeof(store_wf_version) * (size_t)limit);
    rc = sq_prepare(h, q_version_page, "workflow_version_list", &st, "tii", workflow_id, limit,
                    offset);
    while (rc == AOP_OK && (rc = sq_step(st, "workflow_version_list", &row)) == AOP_OK && row &&
           *n < limit) {
        store_wf_version *v = &(*out)[(*n)++];
        v->version = sqlite3_column_int64(st, 0);
        v->name = sq_col_dup(st, 1, a);
        sq_col_copy(st, 2, v->updated_by, sizeof(v->updated_by));
        sq_col_copy(st, 3, v->created_at, sizeof(v->created_at));
    }
    sq_release(st);
    return rc;
}

aop_err sq_workflow_version_get(void *h, const char *workflow_id, long long version,
                                char **snapshot, arena *a)
{
    sqlite3_stmt *st = NULL;
    aop_err rc = sq_query_row(h, q_version_get, "workflow_version_get", &st, "ti", workflow_id,
                              version);
    if (rc != AOP_OK)
        return rc;
    *snapshot = sq_col_dup(st, 0, a);
    sq_release(st);
    return AOP_OK;
}

/* Up to STORE_WF_TOP rows of a top list. */
static aop_err top_list(void *h, const char *sql, store_wf_top *out, int *n, arena *a)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    *n = 0;
    aop_err rc = sq_prepare(h, sql, "workflow_summary", &st, "i", (long long)STORE_WF_TOP);
    while (rc == AOP_OK && (rc = sq_step(st, "workflow_summary", &row)) == AOP_OK && row &&
           *n < STORE_WF_TOP) {
        store_wf_top *t = &out[(*n)++];
        sq_col_copy(st, 0, t->id, sizeof(t->id));
        t->name = sq_col_dup(st, 1, a);
        t->executions = sqlite3_column_int64(st, 2);
        t->cost_usd = sqlite3_column_double(st, 3);
    }
    sq_release(st);
    return rc;
}

aop_err sq_workflow_summary(void *h, const char *since, store_wf_summary *out, arena *a)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    aop_err rc = sq_query_row(h, q_summary_counts, "workflow_summary", &st, "t", since);
    if (rc != AOP_OK)
        return rc;
    out->total = sqlite3_column_int64(st, 0);
    out->draft = sqlite3_column_int64(st, 1);
    out->active = sqlite3_column_int64(st, 2);
    out->archived = sqlite3_column_int64(st, 3);
    out->created_since = sqlite3_column_int64(st, 4);
    sq_release(st);
    rc = top_list(h, q_top_executions, out->by_executions, &out->n_by_executions, a);
    if (rc == AOP_OK)
        rc = top_list(h, q_top_cost, out->by_cost, &out->n_by_cost, a);
    return rc;
}
