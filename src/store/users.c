/*
 * users.c - users and the audit trail. Without SQLite's one writer, a user
 * read inside a transaction (auth/users.c's update_tx, session.c's
 * refresh_tx) locks the row on PostgreSQL (lock_in_tx: FOR NO KEY UPDATE,
 * which still lets other rows reference the user), so two read-modify-writes
 * of one user follow each other instead of one silently undoing the other.
 */
#include "core/clock.h"
#include "core/str.h"
#include "store/db.h"

#define USER_COLUMNS                                                                  \
    "id, email, name, password_hash, role, preferences, is_active, created_at, "     \
    "updated_at, last_login_at"
#define USER_BY(column) "SELECT " USER_COLUMNS " FROM users WHERE " column " = $1"

static const db_sql q_user_insert = DB_BOTH(
    "INSERT INTO users (" USER_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
static const db_sql q_user_by_email = DB_BOTH(USER_BY("email"));
static const db_sql q_user_by_id = {USER_BY("id"), USER_BY("id"), .lock_in_tx = true};
static const db_sql q_user_update = DB_BOTH(
    "UPDATE users SET name = $1, password_hash = $2, role = $3, preferences = $4, "
    "is_active = $5, updated_at = $6 WHERE id = $7");
static const db_sql q_user_login = DB_BOTH("UPDATE users SET last_login_at = $1 WHERE id = $2");

/* Emails are stored lowercased; names are lowered in SQL: aop_lower() on
 * SQLite, lower() on PostgreSQL (which folds Unicode in a UTF8 database).
 * Names and emails sort in byte order on both. */
#define USER_FILTER(cast, lower)                                                          \
    " FROM users WHERE ($1" cast " IS NULL OR role = $1) AND ($2" cast " IS NULL OR "    \
    "email LIKE $2 ESCAPE '\\' OR " lower "(name) LIKE $2 ESCAPE '\\')"
#define SQ_FILTER USER_FILTER("", "aop_lower")
#define PG_FILTER USER_FILTER("::text", "lower")
#define PAGE(filter, order) "SELECT " USER_COLUMNS filter " ORDER BY " order " LIMIT $3 OFFSET $4"
#define PAGES(sq, pg)                                                                     \
    {DB_PAIR(PAGE(SQ_FILTER, sq ", id"), PAGE(PG_FILTER, pg ", id")),                   \
     DB_PAIR(PAGE(SQ_FILTER, sq " DESC, id DESC"), PAGE(PG_FILTER, pg " DESC, id DESC"))}

static const db_sql q_user_count =
    DB_PAIR("SELECT COUNT(*)" SQ_FILTER, "SELECT COUNT(*)" PG_FILTER);
/* [sort][descending]; the id breaks ties so pages never overlap. */
static const db_sql q_user_page[3][2] = {
    [STORE_USER_SORT_CREATED] = PAGES("created_at", "created_at"),
    [STORE_USER_SORT_EMAIL] = PAGES("email", "email COLLATE \"C\""),
    [STORE_USER_SORT_NAME] = PAGES("name", "name COLLATE \"C\""),
};

static const db_sql q_audit_insert = DB_BOTH(
    "INSERT INTO audit_events (id, created_at, action, actor_id, subject_id, ip, request_id, "
    "detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");

aop_err store_user_insert(store *s, const store_user *u)
{
    db_op o = db_op_start(s, "user_insert");
    return db_op_end(&o, db_exec(&o, &q_user_insert, NULL, "ttttttbttt", u->id, u->email,
                                 u->name, u->password_hash, u->role, u->preferences,
                                 (int)u->is_active, u->created_at, u->updated_at,
                                 db_opt(u->last_login_at)));
}

/* A store_user from USER_COLUMNS. */
#define U(kind, member) DB_COL(kind, store_user, member)
static const db_col user_cols[] = {
    U(DB_COPY, id), U(DB_DUP, email), U(DB_DUP, name), U(DB_DUP, password_hash),
    U(DB_DUP, role), U(DB_DUP, preferences), U(DB_BOOL, is_active), U(DB_COPY, created_at),
    U(DB_COPY, updated_at), U(DB_COPY, last_login_at),
};
static const db_row user_row = DB_ROW(user_cols, store_user);

/* The operation op: one user by the value of sql's only parameter. */
static aop_err user_get(store *s, const char *op, const db_sql *sql, const char *value,
                        store_user *out, arena *a)
{
    db_op o = db_op_start(s, op);
    return db_op_end(&o, db_get(&o, sql, &user_row, out, a, "t", value));
}

aop_err store_user_get_by_email(store *s, const char *email, store_user *out, arena *a)
{
    return user_get(s, "user_get_by_email", &q_user_by_email, email, out, a);
}

aop_err store_user_get_by_id(store *s, const char *id, store_user *out, arena *a)
{
    return user_get(s, "user_get_by_id", &q_user_by_id, id, out, a);
}

aop_err store_user_update(store *s, const store_user *u)
{
    db_op o = db_op_start(s, "user_update");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_user_update, &n, "ttttbtt", u->name, u->password_hash, u->role,
                         u->preferences, (int)u->is_active, u->updated_at, u->id);
    return db_op_end(&o, rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc);
}

aop_err store_user_set_login(store *s, const char *id, const char *at)
{
    db_op o = db_op_start(s, "user_set_login");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_user_login, &n, "tt", at, id);
    return db_op_end(&o, rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc);
}

aop_err store_user_list(store *s, const store_user_query *q, store_user **out, int *n,
                        long long *total, arena *a)
{
    db_op o = db_op_start(s, "user_list");
    const char *like =
        q->search && *q->search ? db_like_pattern(str_lower_utf8(q->search, a), a) : NULL;
    db_val v[4] = {DB_TEXT(q->role), DB_TEXT(like)};
    void *items = NULL;
    aop_err rc = db_page(&o, &q_user_count, &q_user_page[q->sort][q->desc], v, 2, q->offset,
                         q->limit, &user_row, &items, n, total, a);
    *out = items;
    return db_op_end(&o, rc);
}

aop_err store_audit_insert(store *s, const store_audit *e)
{
    db_op o = db_op_start(s, "audit_insert");
    char id[UUID_STR_LEN], now[25];
    ids_uuid7(id);
    clock_format_rfc3339(clock_now_ms(), now);
    return db_op_end(&o, db_exec(&o, &q_audit_insert, NULL, "tttttttt", id, now, e->action,
                                 e->actor_id, e->subject_id, e->ip, e->request_id,
                                 e->detail ? e->detail : "{}"));
}
