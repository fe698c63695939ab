/*
 * keys.h - the API key service behind /api/auth/api-keys: a user's keys,
 * created (the key itself is handed out once and never stored), listed
 * and deleted. Key format and hashing: auth/apikey.h.
 */
#ifndef AOP_AUTH_KEYS_H
#define AOP_AUTH_KEYS_H

#include <jansson.h>

#include "app.h"
#include "auth/apikey.h"
#include "store/store.h"

#define KEYS_PER_USER_MAX 50

/* What a new key is: name and scopes (canonical JSON text, e.g.
 * ["read","write"]) borrowed; expires_at RFC 3339 ms, "" for never. */
typedef struct {
    const char *user_id;
    const char *name;
    const char *scopes;
    const char *expires_at;
} auth_keys_new;

/*
 * Creates a key for n->user_id: *out is its row (strings borrowed from n)
 * and key the key itself, to show once and then wipe. The count and the
 * insert share one write transaction, so concurrent creations cannot pass
 * KEYS_PER_USER_MAX together: AOP_ERR_VALIDATION (nothing written) when the
 * user holds that many already. key is wiped on every failure.
 */
aop_err auth_keys_create(const app_ctx *app, const auth_keys_new *n, store_apikey *out,
                         char key[APIKEY_LEN + 1]);

/* A page of the user's keys (from a) and their total. */
aop_err auth_keys_list(const app_ctx *app, const char *user_id, long long offset,
                       long long limit, store_apikey **out, int *n, long long *total, arena *a);

/* Deletes the user's key key_id; AOP_ERR_NOT_FOUND when the user holds no
 * such key (another user's key included). */
aop_err auth_keys_delete(const app_ctx *app, const char *user_id, const char *key_id);

/* The key object of the contract, without the key itself. New reference. */
json_t *auth_keys_to_json(const store_apikey *k);

#endif
