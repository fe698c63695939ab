/*
 * tokens.c - refresh-token families, revocations and API keys, safe with
 * several PostgreSQL instances at READ COMMITTED (and SQLite's one writer):
 * refresh_use is one conditional UPDATE (used_at IS NULL), so of two
 * concurrent uses the second waits for the first's row lock, finds the row
 * used and reports *won false (reuse detection); family_extend only moves
 * expires_at forward; access_revoke ignores a jti revoked already. See
 * apikey_count for the per-user cap.
 */
#include "store/db.h"

static const db_sql q_family_insert = DB_BOTH(
    "INSERT INTO token_families (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)");
static const db_sql q_family_extend = DB_BOTH(
    "UPDATE token_families SET expires_at = $1 WHERE id = $2 AND expires_at < $1");
static const db_sql q_family_revoke = DB_BOTH(
    "UPDATE token_families SET revoked_at = $1, revoked_reason = $2 "
    "WHERE id = $3 AND revoked_at IS NULL");
static const db_sql q_families_revoke_user = DB_BOTH(
    "UPDATE token_families SET revoked_at = $1, revoked_reason = $2 "
    "WHERE user_id = $3 AND revoked_at IS NULL RETURNING id");
static const db_sql q_refresh_insert = DB_BOTH(
    "INSERT INTO refresh_tokens (jti, family_id, user_id, issued_at, expires_at) "
    "VALUES ($1, $2, $3, $4, $5)");
static const db_sql q_refresh_get = DB_BOTH(
    "SELECT r.jti, r.family_id, r.user_id, r.expires_at, r.used_at, f.revoked_at IS NOT NULL "
    "FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id WHERE r.jti = $1");
static const db_sql q_refresh_use = DB_BOTH(
    "UPDATE refresh_tokens SET used_at = $1 WHERE jti = $2 AND used_at IS NULL");
static const db_sql q_access_revoke = DB_BOTH(
    "INSERT INTO revoked_access_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3) "
    "ON CONFLICT (jti) DO NOTHING");
static const db_sql q_token_revoked = DB_BOTH(
    "SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) OR "
    "EXISTS (SELECT 1 FROM token_families WHERE id = $2 AND revoked_at IS NOT NULL)");
static const db_sql q_prune[] = {
    DB_BOTH("DELETE FROM revoked_access_tokens WHERE expires_at < $1"),
    DB_BOTH("DELETE FROM refresh_tokens WHERE expires_at < $1"),
    DB_BOTH("DELETE FROM token_families WHERE expires_at < $1"),
};

#define KEY_COLUMNS "id, user_id, name, prefix, scopes, created_at, expires_at, last_used_at"
static const db_sql q_key_insert = DB_BOTH(
    "INSERT INTO api_keys (" KEY_COLUMNS ", key_hash) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)");
static const db_sql q_key_lock_user = DB_PAIR(
    NULL, "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE");
static const db_sql q_key_count = DB_BOTH("SELECT COUNT(*) FROM api_keys WHERE user_id = $1");
static const db_sql q_key_page = DB_BOTH(
    "SELECT " KEY_COLUMNS " FROM api_keys WHERE user_id = $1 "
    "ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3");
static const db_sql q_key_by_hash = DB_BOTH(
    "SELECT " KEY_COLUMNS " FROM api_keys WHERE key_hash = $1");
static const db_sql q_key_delete = DB_BOTH("DELETE FROM api_keys WHERE id = $1 AND user_id = $2");
static const db_sql q_key_touch = DB_BOTH("UPDATE api_keys SET last_used_at = $1 WHERE id = $2");

aop_err store_family_insert(store *s, const char *id, const char *user_id, const char *created_at,
                            const char *expires_at)
{
    db_op o = db_op_start(s, "family_insert");
    return db_op_end(&o, db_exec(&o, &q_family_insert, NULL, "tttt", id, user_id, created_at,
                                 expires_at));
}

aop_err store_family_extend(store *s, const char *id, const char *expires_at)
{
    db_op o = db_op_start(s, "family_extend");
    return db_op_end(&o, db_exec(&o, &q_family_extend, NULL, "tt", expires_at, id));
}

aop_err store_family_revoke(store *s, const char *id, const char *at, const char *reason)
{
    db_op o = db_op_start(s, "family_revoke");
    return db_op_end(&o, db_exec(&o, &q_family_revoke, NULL, "ttt", at, reason, id));
}

static const db_col id_cols[] = {{DB_COPY, 0, sizeof(store_id)}};
static const db_row id_row = DB_ROW(id_cols, store_id);

aop_err store_families_revoke_user(store *s, const char *user_id, const char *at,
                                   const char *reason, store_id **ids, int *n, arena *a)
{
    db_op o = db_op_start(s, "families_revoke_user");
    void *items = NULL;
    aop_err rc = db_rows(&o, &q_families_revoke_user, &id_row, INT32_MAX, &items, n, a, "ttt", at,
                         reason, user_id);
    *ids = items;
    return db_op_end(&o, rc);
}

aop_err store_refresh_insert(store *s, const char *jti, const char *family_id,
                             const char *user_id, const char *issued_at, const char *expires_at)
{
    db_op o = db_op_start(s, "refresh_insert");
    return db_op_end(&o, db_exec(&o, &q_refresh_insert, NULL, "ttttt", jti, family_id, user_id,
                                 issued_at, expires_at));
}

#define R(kind, member) DB_COL(kind, store_refresh, member)
static const db_col refresh_cols[] = {
    R(DB_COPY, jti), R(DB_COPY, family_id), R(DB_COPY, user_id), R(DB_COPY, expires_at),
    R(DB_COPY, used_at), R(DB_BOOL, family_revoked),
};
static const db_row refresh_row = DB_ROW(refresh_cols, store_refresh);

aop_err store_refresh_get(store *s, const char *jti, store_refresh *out)
{
    db_op o = db_op_start(s, "refresh_get");
    return db_op_end(&o, db_get(&o, &q_refresh_get, &refresh_row, out, NULL, "t", jti));
}

aop_err store_refresh_use(store *s, const char *jti, const char *at, bool *won)
{
    db_op o = db_op_start(s, "refresh_use");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_refresh_use, &n, "tt", at, jti);
    *won = rc == AOP_OK && n == 1;
    return db_op_end(&o, rc);
}

aop_err store_access_revoke(store *s, const char *jti, const char *user_id,
                            const char *expires_at)
{
    db_op o = db_op_start(s, "access_revoke");
    return db_op_end(&o, db_exec(&o, &q_access_revoke, NULL, "ttt", jti, user_id, expires_at));
}

aop_err store_token_revoked(store *s, const char *jti, const char *fam, bool *revoked)
{
    db_op o = db_op_start(s, "token_revoked");
    long long v = 0;
    aop_err rc = db_query_int(&o, &q_token_revoked, &v, "tt", jti, fam);
    *revoked = v != 0;
    return db_op_end(&o, rc);
}

aop_err store_tokens_prune(store *s, const char *now, long long *n)
{
    db_op o = db_op_start(s, "tokens_prune");
    aop_err rc = AOP_OK;
    *n = 0;
    for (size_t i = 0; i < sizeof(q_prune) / sizeof(q_prune[0]) && rc == AOP_OK; i++) {
        long long k = 0;
        rc = db_exec(&o, &q_prune[i], &k, "t", now);
        *n += k;
    }
    return db_op_end(&o, rc);
}

aop_err store_apikey_insert(store *s, const store_apikey *k, const char *key_hash)
{
    db_op o = db_op_start(s, "apikey_insert");
    return db_op_end(&o, db_exec(&o, &q_key_insert, NULL, "tttttttt", k->id, k->user_id, k->name,
                                 k->prefix, k->scopes, k->created_at, db_opt(k->expires_at),
                                 key_hash));
}

/* keys_api.c calls it inside the transaction that then inserts the key
 * (the per-user cap). On PostgreSQL it first locks the user's row until
 * that transaction ends, so one user's key creations take turns; the count
 * that follows, a statement of its own, sees every key committed before the
 * lock was granted, so the cap holds across processes. */
aop_err store_apikey_count(store *s, const char *user_id, long long *n)
{
    db_op o = db_op_start(s, "apikey_count");
    *n = 0;
    aop_err rc = db_exec(&o, &q_key_lock_user, NULL, "t", user_id);
    if (rc == AOP_OK)
        rc = db_query_int(&o, &q_key_count, n, "t", user_id);
    return db_op_end(&o, rc);
}

/* A store_apikey from KEY_COLUMNS. */
#define K(kind, member) DB_COL(kind, store_apikey, member)
static const db_col key_cols[] = {
    K(DB_COPY, id), K(DB_COPY, user_id), K(DB_DUP, name), K(DB_COPY, prefix), K(DB_DUP, scopes),
    K(DB_COPY, created_at), K(DB_COPY, expires_at), K(DB_COPY, last_used_at),
};
static const db_row key_row = DB_ROW(key_cols, store_apikey);

aop_err store_apikey_list(store *s, const char *user_id, long long offset, long long limit,
                          store_apikey **out, int *n, long long *total, arena *a)
{
    db_op o = db_op_start(s, "apikey_list");
    db_val v[3] = {DB_TEXT(user_id)};
    void *items = NULL;
    aop_err rc = db_page(&o, &q_key_count, &q_key_page, v, 1, offset, limit, &key_row, &items, n,
                         total, a);
    *out = items;
    return db_op_end(&o, rc);
}

aop_err store_apikey_get_by_hash(store *s, const char *key_hash, store_apikey *out, arena *a)
{
    db_op o = db_op_start(s, "apikey_get_by_hash");
    return db_op_end(&o, db_get(&o, &q_key_by_hash, &key_row, out, a, "t", key_hash));
}

aop_err store_apikey_delete(store *s, const char *id, const char *user_id, bool *deleted)
{
    db_op o = db_op_start(s, "apikey_delete");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_key_delete, &n, "tt", id, user_id);
    *deleted = rc == AOP_OK && n > 0;
    return db_op_end(&o, rc);
}

aop_err store_apikey_touch(store *s, const char *id, const char *at)
{
    db_op o = db_op_start(s, "apikey_touch");
    return db_op_end(&o, db_exec(&o, &q_key_touch, NULL, "tt", at, id));
}
