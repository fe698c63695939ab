/*
 * sqlite_users.c - users and the audit trail on SQLite.
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/str.h"
#include "store/sqlite_int.h"

#include <string.h>

#define USER_COLUMNS                                                                  \
    "id, email, name, password_hash, role, preferences, is_active, created_at, "     \
    "updated_at, last_login_at"

static const char q_user_insert[] =
    "INSERT INTO users (" USER_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char q_user_by_email[] = "SELECT " USER_COLUMNS " FROM users WHERE email = ?";
static const char q_user_by_id[] = "SELECT " USER_COLUMNS " FROM users WHERE id = ?";
static const char q_user_update[] =
    "UPDATE users SET name = ?, password_hash = ?, role = ?, preferences = ?, is_active = ?, "
    "updated_at = ? WHERE id = ?";
static const char q_user_login[] = "UPDATE users SET last_login_at = ? WHERE id = ?";

#define USER_FILTER                                                                   \
    " FROM users WHERE (?1 IS NULL OR role = ?1) AND (?2 IS NULL OR email LIKE ?2 "  \
    "ESCAPE '\\' OR aop_lower(name) LIKE ?2 ESCAPE '\\')"
#define USER_PAGE(order) "SELECT " USER_COLUMNS USER_FILTER " ORDER BY " order " LIMIT ?3 OFFSET ?4"

static const char q_user_count[] = "SELECT COUNT(*)" USER_FILTER;
/* [sort][descending]; the id breaks ties so pages never overlap. */
static const char *const q_user_page[3][2] = {
    [STORE_USER_SORT_CREATED] = {USER_PAGE("created_at, id"), USER_PAGE("created_at DESC, id DESC")},
    [STORE_USER_SORT_EMAIL] = {USER_PAGE("email, id"), USER_PAGE("email DESC, id DESC")},
    [STORE_USER_SORT_NAME] = {USER_PAGE("name, id"), USER_PAGE("name DESC, id DESC")},
};

static const char q_audit_insert[] =
    "INSERT INTO audit_events (id, created_at, action, actor_id, subject_id, ip, request_id, "
    "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

aop_err sq_user_insert(void *h, const store_user *u)
{
    return sq_exec(h, q_user_insert, "user_insert", NULL, "ttttttbttt", u->id, u->email, u->name,
                   u->password_hash, u->role, u->preferences, (int)u->is_active, u->created_at,
                   u->updated_at, u->last_login_at[0] ? u->last_login_at : NULL);
}

/* Fills *u from a row of USER_COLUMNS. */
static void user_from_row(sqlite3_stmt *st, store_user *u, arena *a)
{
    sq_col_copy(st, 0, u->id, sizeof(u->id));
    u->email = sq_col_dup(st, 1, a);
    u->name = sq_col_dup(st, 2, a);
    u->password_hash = sq_col_dup(st, 3, a);
    u->role = sq_col_dup(st, 4, a);
    u->preferences = sq_col_dup(st, 5, a);
    u->is_active = sqlite3_column_int(st, 6) != 0;
    sq_col_copy(st, 7, u->created_at, sizeof(u->created_at));
    sq_col_copy(st, 8, u->updated_at, sizeof(u->updated_at));
    sq_col_copy(st, 9, u->last_login_at, sizeof(u->last_login_at));
}

/* One user by the text value bound to sql's only parameter. */
static aop_err user_get(void *h, const char *sql, const char *op, const char *value,
                        store_user *out, arena *a)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    aop_err rc = sq_query_row(h, sql, op, &st, "t", value);
    if (rc != AOP_OK)
        return rc;
    user_from_row(st, out, a);
    sq_release(st);
    return AOP_OK;
}

aop_err sq_user_get_by_email(void *h, const char *email, store_user *out, arena *a)
{
    return user_get(h, q_user_by_email, "user_get_by_email", email, out, a);
}

aop_err sq_user_get_by_id(void *h, const char *id, store_user *out, arena *a)
{
    return user_get(h, q_user_by_id, "user_get_by_id", id, out, a);
}

aop_err sq_user_update(void *h, const store_user *u)
{
    long long n = 0;
    aop_err rc = sq_exec(h, q_user_update, "user_update", &n, "ttttbtt", u->name,
                         u->password_hash, u->role, u->preferences, (int)u->is_active,
                         u->updated_at, u->id);
    return rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc;
}

aop_err sq_user_set_login(void *h, const char *id, const char *at)
{
    long long n = 0;
    aop_err rc = sq_exec(h, q_user_login, "user_set_login", &n, "tt", at, id);
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

aop_err sq_user_list(void *h, const store_user_query *q, store_user **out, int *n,
                     long long *total, arena *a)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    /* emails are stored lowercased; names are lowered by aop_lower() */
    const char *like =
        q->search && *q->search ? like_pattern(str_lower_utf8(q->search, a), a) : NULL;
    *out = NULL;
    *n = 0;
    *total = 0;
    aop_err rc = sq_query_int(h, q_user_count, "user_list", total, "tt", q->role, like);
    if (rc != AOP_OK || *total <= q->offset)
        return rc;
    *out = arena_alloc(a, sizeof(store_user) * (size_t)q->limit);
    rc = sq_prepare(h, q_user_page[q->sort][q->desc], "user_list", &st, "ttii", q->role, like,
                    q->limit, q->offset);
    while (rc == AOP_OK && (rc = sq_step(st, "user_list", &row)) == AOP_OK && row &&
           *n < q->limit) {
        memset(&(*out)[*n], 0, sizeof(store_user));
        user_from_row(st, &(*out)[(*n)++], a);
    }
    sq_release(st);
    return rc;
}

aop_err sq_audit_insert(void *h, const store_audit *e)
{
    char id[UUID_STR_LEN], now[25];
    ids_uuid7(id);
    clock_format_rfc3339(clock_now_ms(), now);
    return sq_exec(h, q_audit_insert, "audit_insert", NULL, "tttttttt", id, now, e->action,
                   e->actor_id, e->subject_id, e->ip, e->request_id,
                   e->detail ? e->detail : "{}");
}
