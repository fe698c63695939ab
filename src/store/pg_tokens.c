/*
 * pg_tokens.c - refresh-token families, revocations and API keys on
 * PostgreSQL (twin of sqlite_tokens.c, same answers).
 *
 * Safe with several instances at READ COMMITTED:
 *  - refresh_use is one conditional UPDATE (used_at IS NULL): of two
 *    concurrent uses the second waits for the first's row lock, then finds
 *    the row used and reports *won false (reuse detection).
 *  - family_extend only moves expires_at forward, in one statement.
 *  - access_revoke ignores a jti revoked already (ON CONFLICT DO NOTHING).
 *  - apikey_count, which keys_api.c calls inside the transaction that then
 *    inserts the key (the per-user cap), first locks the user's row: the
 *    creations of one user's keys take turns, and each counts after the
 *    previous one committed (every statement at READ COMMITTED sees what
 *    was committed before it began), so the cap holds across processes.
 */
#include "store/pg_int.h"

#include <string.h>

static const char q_family_insert[] =
    "INSERT INTO token_families (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
static const char q_family_extend[] =
    "UPDATE token_families SET expires_at = $1 WHERE id = $2 AND expires_at < $1";
static const char q_family_revoke[] =
    "UPDATE token_families SET revoked_at = $1, revoked_reason = $2 "
    "WHERE id = $3 AND revoked_at IS NULL";
static const char q_families_revoke_user[] =
    "UPDATE token_families SET revoked_at = $1, revoked_reason = $2 "
    "WHERE user_id = $3 AND revoked_at IS NULL RETURNING id";
static const char q_refresh_insert[] =
    "INSERT INTO refresh_tokens (jti, family_id, user_id, issued_at, expires_at) "
    "VALUES ($1, $2, $3, $4, $5)";
static const char q_refresh_get[] =
    "SELECT r.jti, r.family_id, r.user_id, r.expires_at, r.used_at, f.revoked_at IS NOT NULL "
    "FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id WHERE r.jti = $1";
static const char q_refresh_use[] =
    "UPDATE refresh_tokens SET used_at = $1 WHERE jti = $2 AND used_at IS NULL";
static const char q_access_revoke[] =
    "INSERT INTO revoked_access_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3) "
    "ON CONFLICT (jti) DO NOTHING";
static const char q_token_revoked[] =
    "SELECT (EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) OR "
    "EXISTS (SELECT 1 FROM token_families WHERE id = $2 AND revoked_at IS NOT NULL))::int";
static const char q_prune_access[] = "DELETE FROM revoked_access_tokens WHERE expires_at < $1";
static const char q_prune_refresh[] = "DELETE FROM refresh_tokens WHERE expires_at < $1";
static const char q_prune_families[] = "DELETE FROM token_families WHERE expires_at < $1";

#define KEY_COLUMNS "id, user_id, name, prefix, scopes, created_at, expires_at, last_used_at"
static const char q_key_insert[] =
    "INSERT INTO api_keys (" KEY_COLUMNS ", key_hash) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)";
static const char q_key_lock_user[] = "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE";
static const char q_key_count[] = "SELECT COUNT(*) FROM api_keys WHERE user_id = $1";
static const char q_key_page[] =
    "SELECT " KEY_COLUMNS " FROM api_keys WHERE user_id = $1 "
    "ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3";
static const char q_key_by_hash[] = "SELECT " KEY_COLUMNS " FROM api_keys WHERE key_hash = $1";
static const char q_key_delete[] = "DELETE FROM api_keys WHERE id = $1 AND user_id = $2";
static const char q_key_touch[] = "UPDATE api_keys SET last_used_at = $1 WHERE id = $2";

aop_err pq_family_insert(void *h, const char *id, const char *user_id, const char *created_at,
                         const char *expires_at)
{
    return pq_exec(h, q_family_insert, "family_insert", NULL, "tttt", id, user_id, created_at,
                   expires_at);
}

aop_err pq_family_extend(void *h, const char *id, const char *expires_at)
{
    return pq_exec(h, q_family_extend, "family_extend", NULL, "tt", expires_at, id);
}

aop_err pq_family_revoke(void *h, const char *id, const char *at, const char *reason)
{
    return pq_exec(h, q_family_revoke, "family_revoke", NULL, "ttt", at, reason, id);
}

aop_err pq_families_revoke_user(void *h, const char *user_id, const char *at,
                                const char *reason, store_id **ids, int *n, arena *a)
{
    PGresult *res = NULL;
    *ids = NULL;
    *n = 0;
    aop_err rc = pq_query(h, q_families_revoke_user, "families_revoke_user", &res, "ttt", at,
                          reason, user_id);
    if (rc != AOP_OK)
        return rc;
    int rows = PQntuples(res);
    if (rows > 0) {
        *ids = arena_alloc(a, sizeof(store_id) * (size_t)rows);
        for (int i = 0; i < rows; i++)
            pq_col_copy(res, i, 0, (*ids)[i], sizeof(store_id));
    }
    *n = rows;
    PQclear(res);
    return AOP_OK;
}

aop_err pq_refresh_insert(void *h, const char *jti, const char *family_id, const char *user_id,
                          const char *issued_at, const char *expires_at)
{
    return pq_exec(h, q_refresh_insert, "refresh_insert", NULL, "ttttt", jti, family_id, user_id,
                   issued_at, expires_at);
}

aop_err pq_refresh_get(void *h, const char *jti, store_refresh *out)
{
    PGresult *res = NULL;
    memset(out, 0, sizeof(*out));
    aop_err rc = pq_query_row(h, q_refresh_get, "refresh_get", &res, "t", jti);
    if (rc != AOP_OK)
        return rc;
    pq_col_copy(res, 0, 0, out->jti, sizeof(out->jti));
    pq_col_copy(res, 0, 1, out->family_id, sizeof(out->family_id));
    pq_col_copy(res, 0, 2, out->user_id, sizeof(out->user_id));
    pq_col_copy(res, 0, 3, out->expires_at, sizeof(out->expires_at));
    pq_col_copy(res, 0, 4, out->used_at, sizeof(out->used_at));
    out->family_revoked = pq_col_bool(res, 0, 5);
    PQclear(res);
    return AOP_OK;
}

aop_err pq_refresh_use(void *h, const char *jti, const char *at, bool *won)
{
    long long n = 0;
    aop_err rc = pq_exec(h, q_refresh_use, "refresh_use", &n, "tt", at, jti);
    *won = rc == AOP_OK && n == 1;
    return rc;
}

aop_err pq_access_revoke(void *h, const char *jti, const char *user_id, const char *expires_at)
{
    return pq_exec(h, q_access_revoke, "access_revoke", NULL, "ttt", jti, user_id, expires_at);
}

aop_err pq_token_revoked(void *h, const char *jti, const char *fam, bool *revoked)
{
    long long v = 0;
    aop_err rc = pq_query_int(h, q_token_revoked, "token_revoked", &v, "tt", jti, fam);
    *revoked = v != 0;
    return rc;
}

aop_err pq_tokens_prune(void *h, const char *now, long long *n)
{
    static const char *const qs[] = {q_prune_access, q_prune_refresh, q_prune_families};
    aop_err rc = AOP_OK;
    *n = 0;
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]) && rc == AOP_OK; i++) {
        long long k = 0;
        rc = pq_exec(h, qs[i], "tokens_prune", &k, "t", now);
        *n += k;
    }
    return rc;
}

aop_err pq_apikey_insert(void *h, const store_apikey *k, const char *key_hash)
{
    return pq_exec(h, q_key_insert, "apikey_insert", NULL, "tttttttt", k->id, k->user_id,
                   k->name, k->prefix, k->scopes, k->created_at,
                   k->expires_at[0] ? k->expires_at : NULL, key_hash);
}

/* Locks the user's row first (until the caller's transaction ends; see
 * the top of the file), then counts in a statement of its own, which sees
 * every key committed before the lock was granted. */
aop_err pq_apikey_count(void *h, const char *user_id, long long *n)
{
    long long one = 0;
    *n = 0;
    aop_err rc = pq_query_int(h, q_key_lock_user, "apikey_count", &one, "t", user_id);
    if (rc == AOP_OK)
        rc = pq_query_int(h, q_key_count, "apikey_count", n, "t", user_id);
    return rc;
}

/* Fills *k from row i of a result of KEY_COLUMNS. */
static void key_from_row(const PGresult *res, int i, store_apikey *k, arena *a)
{
    memset(k, 0, sizeof(*k));
    pq_col_copy(res, i, 0, k->id, sizeof(k->id));
    pq_col_copy(res, i, 1, k->user_id, sizeof(k->user_id));
    k->name = pq_col_dup(res, i, 2, a);
    pq_col_copy(res, i, 3, k->prefix, sizeof(k->prefix));
    k->scopes = pq_col_dup(res, i, 4, a);
    pq_col_copy(res, i, 5, k->created_at, sizeof(k->created_at));
    pq_col_copy(res, i, 6, k->expires_at, sizeof(k->expires_at));
    pq_col_copy(res, i, 7, k->last_used_at, sizeof(k->last_used_at));
}

aop_err pq_apikey_list(void *h, const char *user_id, long long offset, long long limit,
                       store_apikey **out, int *n, long long *total, arena *a)
{
    PGresult *res = NULL;
    *out = NULL;
    *n = 0;
    aop_err rc = pq_query_int(h, q_key_count, "apikey_list", total, "t", user_id);
    if (rc != AOP_OK || *total <= offset)
        return rc;
    rc = pq_query(h, q_key_page, "apikey_list", &res, "tii", user_id, limit, offset);
    if (rc != AOP_OK)
        return rc;
    int rows = PQntuples(res);
    if (rows > limit)
        rows = (int)limit;
    *out = arena_alloc(a, sizeof(store_apikey) * (size_t)(rows ? rows : 1));
    for (int i = 0; i < rows; i++)
        key_from_row(res, i, &(*out)[i], a);
    *n = rows;
    PQclear(res);
    return AOP_OK;
}

aop_err pq_apikey_get_by_hash(void *h, const char *key_hash, store_apikey *out, arena *a)
{
    PGresult *res = NULL;
    memset(out, 0, sizeof(*out));
    aop_err rc = pq_query_row(h, q_key_by_hash, "apikey_get_by_hash", &res, "t", key_hash);
    if (rc != AOP_OK)
        return rc;
    key_from_row(res, 0, out, a);
    PQclear(res);
    return AOP_OK;
}

aop_err pq_apikey_delete(void *h, const char *id, const char *user_id, bool *deleted)
{
    long long n = 0;
    aop_err rc = pq_exec(h, q_key_delete, "apikey_delete", &n, "tt", id, user_id);
    *deleted = rc == AOP_OK && n > 0;
    return rc;
}

aop_err pq_apikey_touch(void *h, const char *id, const char *at)
{
    return pq_exec(h, q_key_touch, "apikey_touch", NULL, "tt", at, id);
}
