/*
 * sqlite_tokens.c - refresh-token families, revocations and API keys on SQLite.
 */
#include "store/sqlite_int.h"

#include <string.h>

static const char q_family_insert[] =
    "INSERT INTO token_families (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)";
static const char q_family_extend[] =
    "UPDATE token_families SET expires_at = ?1 WHERE id = ?2 AND expires_at < ?1";
static const char q_family_revoke[] =
    "UPDATE token_families SET revoked_at = ?, revoked_reason = ? "
    "WHERE id = ? AND revoked_at IS NULL";
static const char q_families_revoke_user[] =
    "UPDATE token_families SET revoked_at = ?, revoked_reason = ? "
    "WHERE user_id = ? AND revoked_at IS NULL RETURNING id";
static const char q_refresh_insert[] =
    "INSERT INTO refresh_tokens (jti, family_id, user_id, issued_at, expires_at) "
    "VALUES (?, ?, ?, ?, ?)";
static const char q_refresh_get[] =
    "SELECT r.jti, r.family_id, r.user_id, r.expires_at, r.used_at, f.revoked_at IS NOT NULL "
    "FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id WHERE r.jti = ?";
static const char q_refresh_use[] =
    "UPDATE refresh_tokens SET used_at = ? WHERE jti = ? AND used_at IS NULL";
static const char q_access_revoke[] =
    "INSERT OR IGNORE INTO revoked_access_tokens (jti, user_id, expires_at) VALUES (?, ?, ?)";
static const char q_token_revoked[] =
    "SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = ?1) OR "
    "EXISTS (SELECT 1 FROM token_families WHERE id = ?2 AND revoked_at IS NOT NULL)";
static const char q_prune_access[] = "DELETE FROM revoked_access_tokens WHERE expires_at < ?";
static const char q_prune_refresh[] = "DELETE FROM refresh_tokens WHERE expires_at < ?";
static const char q_prune_families[] = "DELETE FROM token_families WHERE expires_at < ?";

#define KEY_COLUMNS "id, user_id, name, prefix, scopes, created_at, expires_at, last_used_at"
static const char q_key_insert[] =
    "INSERT INTO api_keys (" KEY_COLUMNS ", key_hash) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)";
static const char q_key_count[] = "SELECT COUNT(*) FROM api_keys WHERE user_id = ?";
static const char q_key_page[] =
    "SELECT " KEY_COLUMNS " FROM api_keys WHERE user_id = ? "
    "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?";
static const char q_key_by_hash[] = "SELECT " KEY_COLUMNS " FROM api_keys WHERE key_hash = ?";
static const char q_key_delete[] = "DELETE FROM api_keys WHERE id = ? AND user_id = ?";
static const char q_key_touch[] = "UPDATE api_keys SET last_used_at = ? WHERE id = ?";

aop_err sq_family_insert(void *h, const char *id, const char *user_id, const char *created_at,
                         const char *expires_at)
{
    return sq_exec(h, q_family_insert, "family_insert", NULL, "tttt", id, user_id, created_at,
                   expires_at);
}

aop_err sq_family_extend(void *h, const char *id, const char *expires_at)
{
    return sq_exec(h, q_family_extend, "family_extend", NULL, "tt", expires_at, id);
}

aop_err sq_family_revoke(void *h, const char *id, const char *at, const char *reason)
{
    return sq_exec(h, q_family_revoke, "family_revoke", NULL, "ttt", at, reason, id);
}

aop_err sq_families_revoke_user(void *h, const char *user_id, const char *at,
                                const char *reason, store_id **ids, int *n, arena *a)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    int cap = 0;
    *ids = NULL;
    *n = 0;
    aop_err rc = sq_prepare(h, q_families_revoke_user, "families_revoke_user", &st, "ttt", at,
                            reason, user_id);
    while (rc == AOP_OK && (rc = sq_step(st, "families_revoke_user", &row)) == AOP_OK && row) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            store_id *grown = arena_alloc(a, sizeof(store_id) * (size_t)cap);
            if (*n)
                memcpy(grown, *ids, sizeof(store_id) * (size_t)*n);
            *ids = grown;
        }
        sq_col_copy(st, 0, (*ids)[(*n)++], sizeof(store_id));
    }
    sq_release(st);
    return rc;
}

aop_err sq_refresh_insert(void *h, const char *jti, const char *family_id, const char *user_id,
                          const char *issued_at, const char *expires_at)
{
    return sq_exec(h, q_refresh_insert, "refresh_insert", NULL, "ttttt", jti, family_id, user_id,
                   issued_at, expires_at);
}

aop_err sq_refresh_get(void *h, const char *jti, store_refresh *out)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    aop_err rc = sq_query_row(h, q_refresh_get, "refresh_get", &st, "t", jti);
    if (rc != AOP_OK)
        return rc;
    sq_col_copy(st, 0, out->jti, sizeof(out->jti));
    sq_col_copy(st, 1, out->family_id, sizeof(out->family_id));
    sq_col_copy(st, 2, out->user_id, sizeof(out->user_id));
    sq_col_copy(st, 3, out->expires_at, sizeof(out->expires_at));
    sq_col_copy(st, 4, out->used_at, sizeof(out->used_at));
    out->family_revoked = sqlite3_column_int(st, 5) != 0;
    sq_release(st);
    return AOP_OK;
}

aop_err sq_refresh_use(void *h, const char *jti, const char *at, bool *won)
{
    long long n = 0;
    aop_err rc = sq_exec(h, q_refresh_use, "refresh_use", &n, "tt", at, jti);
    *won = rc == AOP_OK && n == 1;
    return rc;
}

aop_err sq_access_revoke(void *h, const char *jti, const char *user_id, const char *expires_at)
{
    return sq_exec(h, q_access_revoke, "access_revoke", NULL, "ttt", jti, user_id, expires_at);
}

aop_err sq_token_revoked(void *h, const char *jti, const char *fam, bool *revoked)
{
    long long v = 0;
    aop_err rc = sq_query_int(h, q_token_revoked, "token_revoked", &v, "tt", jti, fam);
    *revoked = v != 0;
    return rc;
}

aop_err sq_tokens_prune(void *h, const char *now, long long *n)
{
    static const char *const qs[] = {q_prune_access, q_prune_refresh, q_prune_families};
    aop_err rc = AOP_OK;
    *n = 0;
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]) && rc == AOP_OK; i++) {
        long long k = 0;
        rc = sq_exec(h, qs[i], "tokens_prune", &k, "t", now);
        *n += k;
    }
    return rc;
}

aop_err sq_apikey_insert(void *h, const store_apikey *k, const char *key_hash)
{
    return sq_exec(h, q_key_insert, "apikey_insert", NULL, "tttttttt", k->id, k->user_id, k->name,
                   k->prefix, k->scopes, k->created_at, k->expires_at[0] ? k->expires_at : NULL,
                   key_hash);
}

aop_err sq_apikey_count(void *h, const char *user_id, long long *n)
{
    return sq_query_int(h, q_key_count, "apikey_count", n, "t", user_id);
}

/* Fills *k from a row of KEY_COLUMNS. */
static void key_from_row(sqlite3_stmt *st, store_apikey *k, arena *a)
{
    memset(k, 0, sizeof(*k));
    sq_col_copy(st, 0, k->id, sizeof(k->id));
    sq_col_copy(st, 1, k->user_id, sizeof(k->user_id));
    k->name = sq_col_dup(st, 2, a);
    sq_col_copy(st, 3, k->prefix, sizeof(k->prefix));
    k->scopes = sq_col_dup(st, 4, a);
    sq_col_copy(st, 5, k->created_at, sizeof(k->created_at));
    sq_col_copy(st, 6, k->expires_at, sizeof(k->expires_at));
    sq_col_copy(st, 7, k->last_used_at, sizeof(k->last_used_at));
}

aop_err sq_apikey_list(void *h, const char *user_id, long long offset, long long limit,
                       store_apikey **out, int *n, long long *total, arena *a)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    *out = NULL;
    *n = 0;
    aop_err rc = sq_apikey_count(h, user_id, total);
    if (rc != AOP_OK || *total <= offset)
        return rc;
    *out = arena_alloc(a, sizeof(store_apikey) * (size_t)limit);
    rc = sq_prepare(h, q_key_page, "apikey_list", &st, "tii", user_id, limit, offset);
    while (rc == AOP_OK && (rc = sq_step(st, "apikey_list", &row)) == AOP_OK && row && *n < limit)
        key_from_row(st, &(*out)[(*n)++], a);
    sq_release(st);
    return rc;
}

aop_err sq_apikey_get_by_hash(void *h, const char *key_hash, store_apikey *out, arena *a)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    aop_err rc = sq_query_row(h, q_key_by_hash, "apikey_get_by_hash", &st, "t", key_hash);
    if (rc != AOP_OK)
        return rc;
    key_from_row(st, out, a);
    sq_release(st);
    return AOP_OK;
}

aop_err sq_apikey_delete(void *h, const char *id, const char *user_id, bool *deleted)
{
    long long n = 0;
    aop_err rc = sq_exec(h, q_key_delete, "apikey_delete", &n, "tt", id, user_id);
    *deleted = rc == AOP_OK && n > 0;
    return rc;
}

aop_err sq_apikey_touch(void *h, const char *id, const char *at)
{
    return sq_exec(h, q_key_touch, "apikey_touch", NULL, "tt", at, id);
}
