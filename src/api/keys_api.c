/*
 * keys_api.c - the caller's API keys: create (the key is shown once), list,
 * delete, through the keys service (auth/keys.h).
 */
#include "api/api.h"
#include "api/common.h"
#include "auth/keys.h"
#include "auth/session.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/str.h"

#include <string.h>

#define KEY_NAME_MAX 100

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

void api_keys_create(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    const auth_identity *id = http_identity(req);
    json_t *details = json_array();
    char expires_at[25];
    auth_keys_new n = {.user_id = id->user.id, .expires_at = expires_at};
    n.name = api_string(body, "name", true, 1, KEY_NAME_MAX, details);
    n.scopes = scopes_field(body, details);
    expiry_field(body, expires_at, details);
    if (!api_valid_or_reply(req, details))
        return;
    store_apikey k;
    char key[APIKEY_LEN + 1];
    aop_err rc = auth_keys_create(http_app(req), &n, &k, key);
    if (rc == AOP_ERR_VALIDATION) {
        json_t *d = json_array();
        api_problem(d, "name", "at most 50 API keys per user; delete one first");
        http_reply_error(req, AOP_ERR_VALIDATION, "Too many API keys", d);
        return;
    }
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    api_audit(req, "apikey.create", id->user.id, id->user.id,
              json_pack("{s:s, s:s}", "keyId", k.id, "prefix", k.prefix));
    json_t *out = auth_keys_to_json(&k);
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
    aop_err rc = auth_keys_list(http_app(req), http_identity(req)->user.id, pg.offset, pg.limit,
                                &keys, &n, &total, http_arena(req));
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, auth_keys_to_json(&keys[i]));
    http_reply_json(req, 200, api_list(data, &pg, total));
}

void api_keys_delete(http_req *req)
{
    const auth_identity *id = http_identity(req);
    const char *key_id = http_param(req, "id");
    aop_err rc = auth_keys_delete(http_app(req), id->user.id, key_id);
    if (rc == AOP_ERR_NOT_FOUND) {
        http_reply_error(req, AOP_ERR_NOT_FOUND, "No such API key", NULL);
        return;
    }
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    api_audit(req, "apikey.revoke", id->user.id, id->user.id, json_pack("{s:s}", "keyId", key_id));
    http_reply_empty(req, 204);
}
