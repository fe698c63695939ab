/*
 * keys.c - a user's API keys on the store. Only the key's SHA-256 is
 * stored; the key lives in the caller's buffer until it is shown.
 */
#include "auth/keys.h"

#include <string.h>

#include "core/clock.h"
#include "core/ids.h"
#include "core/str.h"

typedef struct {
    const store_apikey *k;
    const char *hash;
    bool full;
} insert_ctx;

/* Counts and inserts in one write transaction. */
static aop_err insert_tx(store *s, void *p)
{
    insert_ctx *x = p;
    long long held = 0;
    aop_err rc = store_apikey_count(s, x->k->user_id, &held);
    if (rc != AOP_OK)
        return rc;
    x->full = held >= KEYS_PER_USER_MAX;
    return x->full ? AOP_OK : store_apikey_insert(s, x->k, x->hash);
}

aop_err auth_keys_create(const app_ctx *app, const auth_keys_new *n, store_apikey *out,
                         char key[APIKEY_LEN + 1])
{
    char prefix[APIKEY_PREFIX_LEN + 1], hash[APIKEY_HASH_LEN + 1];
    auth_apikey_new(key, prefix, hash);
    memset(out, 0, sizeof(*out));
    ids_uuid7(out->id);
    str_copy(out->user_id, sizeof(out->user_id), n->user_id);
    out->name = (char *)n->name;
    str_copy(out->prefix, sizeof(out->prefix), prefix);
    out->scopes = (char *)n->scopes;
    str_copy(out->expires_at, sizeof(out->expires_at), n->expires_at);
    clock_format_rfc3339(clock_now_ms(), out->created_at);
    insert_ctx x = {.k = out, .hash = hash};
    aop_err rc = store_tx(app->store, insert_tx, &x);
    if (rc == AOP_OK && x.full)
        rc = AOP_ERR_VALIDATION;
    if (rc != AOP_OK)
        explicit_bzero(key, APIKEY_LEN + 1);
    return rc;
}

aop_err auth_keys_list(const app_ctx *app, const char *user_id, long long offset,
                       long long limit, store_apikey **out, int *n, long long *total, arena *a)
{
    return store_apikey_list(app->store, user_id, offset, limit, out, n, total, a);
}

aop_err auth_keys_delete(const app_ctx *app, const char *user_id, const char *key_id)
{
    bool deleted = false;
    aop_err rc = store_apikey_delete(app->store, key_id, user_id, &deleted);
    return rc == AOP_OK && !deleted ? AOP_ERR_NOT_FOUND : rc;
}

json_t *auth_keys_to_json(const store_apikey *k)
{
    json_error_t e;
    json_t *scopes = json_loads(k->scopes ? k->scopes : "[]", 0, &e);
    if (!json_is_array(scopes)) {
        json_decref(scopes);
        scopes = json_array();
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s?, s:s?}", "id", k->id, "name", k->name,
                     "prefix", k->prefix, "scopes", scopes, "createdAt", k->created_at,
                     "expiresAt", k->expires_at[0] ? k->expires_at : NULL, "lastUsedAt",
                     k->last_used_at[0] ? k->last_used_at : NULL);
}
