/*
 * keys_api.c - the caller's API keys: create (the key is shown once), list,
 * delete. Only the key's SHA-256 is stored.
 */
#include "api/api.h"
#include "api/common.h"
#include "auth/apikey.h"
#include "auth/session.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/str.h"

#include <string.h>

#define KEY_NAME_MAX 100
#define KEYS_PER_USER_MAX 50

/* The key object of the contract (without the key itself). New reference. */
static json_t *key_to_json(const store_apikey *k)
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

/* Reads scopes into the canonical JSON text ["read","write"] order. */
static const char *scopes_field(json_t *body, json_t *details)
{
    json_t *v = json_object_get(body, "scopes");
    if (!v || json_is_null(v))
        return "[\"read\",\"write\"]";
    bool read = false, write = false, bad = !json_is_array(v) || json_array_size(v) == 0;
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        const char *t = json_string_value(s);
        if (t && strcmp(t, "read") == 0 && !read)
            read = true;
        else if (t && strcmp(t, "write") == 0 && !write)
            write = true;
        else
            bad = true;
    }
    if (bad) {
        api_problem(details, "scopes", "must be a non-empty array of distinct \"read\", \"write\"");
        return NULL;
    }
    return read && write ? "[\"read\",\"write\"]" : read ? "[\"read\"]" : "[\"write\"]";
}

/* expiresAt: absent or null (never), else RFC 3339 in the future, written
 * back normalised into out ("" for never). 0 on a problem. */
static int expiry_field(json_t *body, char out[25], json_t *details)
{
    json_t *v = json_object_get(body, "expiresAt");
    int64_t ms;
    out[0] = '\0';
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_string(v) || clock_parse_rfc3339(json_string_value(v), 0, &ms) != 0) {
        api_problem(details, "expiresAt", "must be an RFC 3339 date-time or null");
        return 0;
    }
    if (ms <= clock_now_ms()) {
        api_problem(details, "expiresAt", "must be in the future");
        return 0;
    }
    if (ms >= 253402300800000LL) { /* year 10000 */
        api_problem(details, "expiresAt", "must be before the year 10000");
        return 0;
    }
    clock_format_rfc3339(ms, out);
    return 1;
}

typedef struct {
    const store_apikey *k;
    const char *hash;
    bool full;
} insert_ctx;

/* Counts and inserts in one write transaction, so concurrent creations
 * cannot pass the cap together. */
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

void api_keys_create(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    const app_ctx *app = http_app(req);
    const auth_identity *id = http_identity(req);
    json_t *details = json_array();
    store_apikey k;
    memset(&k, 0, sizeof(k));
    const char *name = api_string(body, "name", true, 1, KEY_NAME_MAX, details);
    const char *scopes = scopes_field(body, details);
    expiry_field(body, k.expires_at, details);
    if (!api_valid_or_reply(req, details))
        return;
    char key[APIKEY_LEN + 1], prefix[APIKEY_PREFIX_LEN + 1], hash[APIKEY_HASH_LEN + 1];
    auth_apikey_new(key, prefix, hash);
    ids_uuid7(k.id);
    str_copy(k.user_id, sizeof(k.user_id), id->user.id);
    k.name = (char *)name;
    str_copy(k.prefix, sizeof(k.prefix), prefix);
    k.scopes = (char *)scopes;
    clock_format_rfc3339(clock_now_ms(), k.created_at);
    insert_ctx x = {.k = &k, .hash = hash};
    aop_err rc = store_tx(app->store, insert_tx, &x);
    if (rc == AOP_OK && x.full) {
        explicit_bzero(key, sizeof(key));
        json_t *d = json_array();
        api_problem(d, "name", "at most 50 API keys per user; delete one first");
        http_reply_error(req, AOP_ERR_VALIDATION, "Too many API keys", d);
        return;
    }
    if (rc != AOP_OK) {
        explicit_bzero(key, sizeof(key));
        api_reply_err(req, rc, NULL);
        return;
    }
    api_audit(req, "apikey.create", id->user.id, id->user.id,
              json_pack("{s:s, s:s}", "keyId", k.id, "prefix", k.prefix));
    json_t *out = key_to_json(&k);
    json_object_set_new(out, "key", json_string(key));
    explicit_bzero(key, sizeof(key));
    http_reply_json(req, 201, out);
}

void api_keys_list(http_req *req)
{
    api_page pg;
    if (!api_page_or_reply(req, NULL, true, &pg))
        return;
    store_apikey *keys = NULL;
    int n = 0;
    long long total = 0;
    aop_err rc = store_apikey_list(http_app(req)->store, http_identity(req)->user.id, pg.offset,
                                   pg.limit, &keys, &n, &total, http_arena(req));
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, key_to_json(&keys[i]));
    http_reply_json(req, 200, api_list(data, &pg, total));
}

void api_keys_delete(http_req *req)
{
    const auth_identity *id = http_identity(req);
    const char *key_id = http_param(req, "id");
    bool deleted = false;
    aop_err rc = store_apikey_delete(http_app(req)->store, key_id, id->user.id, &deleted);
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    if (!deleted) {
        http_reply_error(req, AOP_ERR_NOT_FOUND, "No such API key", NULL);
        return;
    }
    api_audit(req, "apikey.revoke", id->user.id, id->user.id, json_pack("{s:s}", "keyId", key_id));
    http_reply_empty(req, 204);
}
