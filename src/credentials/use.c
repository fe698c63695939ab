/*
 * use.c - the credential types and credentials opened for a call (use.h).
 */
#include "credentials/use.h"

#include <openssl/crypto.h>
#include <string.h>

#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/mem.h"

const credentials_type credentials_types[] = {
    {"openai", {"apiKey", NULL}, "apiKey", false, "https://api.openai.com/v1"},
    {"anthropic", {"apiKey", NULL}, "apiKey", false, "https://api.anthropic.com/v1"},
    {"http_bearer", {"token", NULL}, "token", true, NULL},
    {"http_header", {"name", "value", NULL}, "value", true, NULL},
    {"http_basic", {"username", "password", NULL}, "password", true, NULL},
    {NULL, {NULL}, NULL, false, NULL},
};

const credentials_type *credentials_type_find(const char *name)
{
    for (int i = 0; name && credentials_types[i].name; i++)
        if (!strcmp(credentials_types[i].name, name))
            return &credentials_types[i];
    return NULL;
}

void credentials_data_wipe(json_t *v)
{
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (json_is_string(x))
            OPENSSL_cleanse((char *)json_string_value(x), json_string_length(x));
    }
    json_decref(v);
}

void credentials_use_free(credentials_use *u)
{
    if (!u)
        return;
    credentials_data_wipe(u->data);
    json_decref(u->hosts);
    free(u->base_url);
    memset(u, 0, sizeof(*u));
}

const char *credentials_use_value(const credentials_use *u, const char *key)
{
    return json_string_value(json_object_get(u->data, key));
}

static void touch(store *s, const char *id)
{
    char now[25], since[25];
    int64_t ms = clock_now_ms();
    clock_format_rfc3339(ms, now);
    clock_format_rfc3339(ms - CREDENTIALS_TOUCH_MS, since);
    if (store_credential_touch(s, id, now, since) != AOP_OK)
        log_warn("cannot record a credential's use", LF_S("credentialId", id));
}

credentials_use_rc credentials_use_open(store *s, vault *v, const char *id, const char *owner_id,
                                        credentials_use *out)
{
    memset(out, 0, sizeof(*out));
    arena a = {0};
    store_credential c;
    credentials_use_rc rc = CREDENTIALS_USE_MISSING;
    aop_err e = ids_uuid_ok(id) ? store_credential_get(s, id, &c, &a) : AOP_ERR_NOT_FOUND;
    if (e != AOP_OK) {
        rc = e == AOP_ERR_NOT_FOUND ? CREDENTIALS_USE_MISSING : CREDENTIALS_USE_UNAVAILABLE;
        goto out;
    }
    out->type = credentials_type_find(c.type);
    if (!out->type || strcmp(c.owner_id, owner_id ? owner_id : ""))
        goto out;
    size_t len = 0;
    char *plain = vault_open(v, c.id, c.secret, &len, NULL);
    if (!plain) {
        log_error("a credential cannot be decrypted with the configured keys",
                  LF_S("credentialId", c.id), LF_S("keyId", c.key_id));
        rc = CREDENTIALS_USE_UNREADABLE;
        goto out;
    }
    out->data = json_loadb(plain, len, 0, NULL);
    vault_plain_free(plain, len + 1);
    if (!json_is_object(out->data)) {
        rc = CREDENTIALS_USE_UNREADABLE;
        goto out;
    }
    out->hosts = json_loads(c.allowed_hosts, 0, NULL);
    const char *base = c.base_url && *c.base_url ? c.base_url : out->type->base_url;
    out->base_url = base ? xstrdup(base) : NULL;
    touch(s, c.id);
    rc = CREDENTIALS_USE_OK;
out:
    arena_free(&a);
    if (rc != CREDENTIALS_USE_OK)
        credentials_use_free(out);
    return rc;
}
