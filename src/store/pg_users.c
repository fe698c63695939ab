/*
 * pg_users.c - users and the audit trail on PostgreSQL (twin of
 * sqlite_users.c, same answers).
 *
 * Several instances write at READ COMMITTED, with no process-wide write
 * lock as on SQLite: a user read inside a transaction (users.c's update_tx,
 * session.c's refresh_tx) takes the row's lock (FOR NO KEY UPDATE, which
 * still lets other rows reference the user), so two read-modify-writes of
 * one user (a profile edit and a deactivation, say) follow each other
 * instead of one silently undoing the other.
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/str.h"
#include "store/pg_int.h"

#include <string.h>

#define USER_COLUMNS                                                                  \
    "id, email, name, password_hash, role, preferences, is_active, created_at, "     \
    "updated_at, last_login_at"

static const char q_user_insert[] =
    "INSERT INTO users (" USER_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
static const char q_user_by_email[] = "SELECT " USER_COLUMNS " FROM users WHERE email = $1";
static const char q_user_by_id[] = "SELECT " USER_COLUMNS " FROM users WHERE id = $1";
static const char q_user_by_id_lock[] =
    "SELECT " USER_COLUMNS " FROM users WHERE id = $1 FOR NO KEY UPDATE";
static const char q_user_update[] =
    "UPDATE users SET name = $1, password_hash = $2, role = $3, preferences = $4, "
    "is_active = $5, updated_at = $6 WHERE id = $7";
static const char q_user_login[] = "UPDATE users SET last_login_at = $1 WHERE id = $2";

/* Emails are stored lowercased; names are lowered by lower(), which folds
 * Unicode in a UTF8 database. Names and emails sort in byte order, as on
 * SQLite. */
#define USER_FILTER                                                                   \
    " FROM users WHERE ($1::text IS NULL OR role = $1) AND ($2::text IS NULL OR "    \
    "email LIKE $2 ESCAPE '\\' OR lower(name) LIKE $2 ESCAPE '\\')"
#define USER_PAGE(order) "SELECT " USER_COLUMNS USER_FILTER " ORDER BY " order " LIMIT $3 OFFSET $4"

static const char q_user_count[] = "SELECT COUNT(*)" USER_FILTER;
/* [sort][descending]; the id breaks ties so pages never overlap. */
static const char *const q_user_page[3][2] = {
    [STORE_USER_SORT_CREATED] = {USER_PAGE("created_at, id"),
                                 USER_PAGE("created_at DESC, id DESC")},
    [STORE_USER_SORT_EMAIL] = {USER_PAGE("email COLLATE \"C\", id"),
                               USER_PAGE("email COLLATE \"C\" DESC, id DESC")},
    [STORE_USER_SORT_NAME] = {USER_PAGE("name COLLATE \"C\", id"),
                              USER_PAGE("name COLLATE \"C\" DESC, id DESC")},
};

static const char q_audit_insert[] =
    "INSERT INTO audit_events (id, created_at, action, actor_id, subject_id, ip, request_id, "
    "detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

aop_err pq_user_insert(void *h, const store_user *u)
{
    return pq_exec(h, q_user_insert, "user_insert", NULL, "ttttttbttt", u->id, u->email, u->name,
                   u->password_hash, u->role, u->preferences, (int)u->is_active, u->created_at,
                   u->updated_at, u->last_login_at[0] ? u->last_login_at : NULL);
}

/* Fills *u from row i of a result of USER_COLUMNS. */
static void user_from_row(const PGresult *res, int i, store_user *u, arena *a)
{
    memset(u, 0, sizeof(*u));
    pq_col_copy(res, i, 0, u->id, sizeof(u->id));
    u->email = pq_col_dup(res, i, 1, a);
    u->name = pq_col_dup(res, i, 2, a);
    u->password_hash = pq_col_dup(res, i, 3, a);
    u->role = pq_col_dup(res, i, 4, a);
    u->preferences = pq_col_dup(res, i, 5, a);
    u->is_active = pq_col_bool(res, i, 6);
    pq_col_copy(res, i, 7, u->created_at, sizeof(u->created_at));
    pq_col_copy(res, i, 8, u->updated_at, sizeof(u->updated_at));
    pq_col_copy(res, i, 9, u->last_login_at, sizeof(u->last_login_at));
}

/* One user by the text value bound to sql's only parameter. */
static aop_err user_get(void *h, const char *sql, const char *op, const char *value,
                        store_user *out, arena *a)
{
    PGresult *res = NULL;
    memset(out, 0, sizeof(*out));
    aop_err rc = pq_query_row(h, sql, op, &res, "t", value);
    if (rc != AOP_OK)
        return rc;
    user_from_row(res, 0, out, a);
    PQclear(res);
    return AOP_OK;
}

aop_err pq_user_get_by_email(void *h, const char *email, store_user *out, arena *a)
{
    return user_get(h, q_user_by_email, "user_get_by_email", email, out, a);
}

/* Inside a transaction the row stays locked until its end (see above). */
aop_err pq_user_get_by_id(void *h, const char *id, store_user *out, arena *a)
{
    return user_get(h, pq_in_tx(h) ? q_user_by_id_lock : q_user_by_id, "user_get_by_id", id,
                    out, a);
}

aop_err pq_user_update(void *h, const store_user *u)
{
    long long n = 0;
    aop_err rc = pq_exec(h, q_user_update, "user_update", &n, "ttttbtt", u->name,
                         u->password_hash, u->role, u->preferences, (int)u->is_active,
                         u->updated_at, u->id);
    return rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc;
}

aop_err pq_user_set_login(void *h, const char *id, const char *at)
{
    long long n = 0;
    aop_err rc = pq_exec(h, q_user_login, "user_set_login", &n, "tt", at, id);
    return rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc;
}

/* "%text%" with LIKE's wildcards and the escape character escaped. */
static char *like_pattern(const char *text, arena *a)
{
    size_t n = strlen(text);
    char *p = arena_alloc(a, 2 * n + 3), *o = p;
    *o++ = '%';
    for (const char *s = text; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\')
            *o++ = '\\';
        *o++ = *s;
    }
    *o++ = '%';
    *o = '\0';
    return p;
}

aop_err pq_user_list(void *h, const store_user_query *q, store_user **out, int *n,
                     long long *total, arena *a)
{
    PGresult *res = NULL;
    const char *like =
        q->search && *q->search ? like_pattern(str_lower_utf8(q->search, a), a) : NULL;
    *out = NULL;
    *n = 0;
    *total = 0;
    aop_err rc = pq_query_int(h, q_user_count, "user_list", total, "tt", q->role, like);
    if (rc != AOP_OK || *total <= q->offset)
        return rc;
    rc = pq_query(h, q_user_page[q->sort][q->desc], "user_list", &res, "ttii", q->role, like,
                  q->limit, q->offset);
    if (rc != AOP_OK)
        return rc;
    int rows = PQntuples(res);
    if (rows > q->limit)
        rows = (int)q->limit;
    *out = arena_alloc(a, sizeof(store_user) * (size_t)(rows ? rows : 1));
    for (int i = 0; i < rows; i++)
        user_from_row(res, i, &(*out)[i], a);
    *n = rows;
    PQclear(res);
    return AOP_OK;
}

aop_err pq_audit_insert(void *h, const store_audit *e)
{
    char id[UUID_STR_LEN], now[25];
    ids_uuid7(id);
    clock_format_rfc3339(clock_now_ms(), now);
    return pq_exec(h, q_audit_insert, "audit_insert", NULL, "tttttttt", id, now, e->action,
                   e->actor_id, e->subject_id, e->ip, e->request_id,
                   e->detail ? e->detail : "{}");
}
