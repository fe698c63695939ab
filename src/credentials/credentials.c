/*
 * credentials.c - the credentials service (credentials.h).
 */
#include "credentials/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "credentials/hosts.h"
#include "credentials/use.h"

#define CANARY_TEXT "aop credentials canary v1"
#define CANARY_AD "canary"
#define HINT_CHARS 4
#define HINT_MIN_CHARS 8 /* a shorter secret gets a hint of "…" alone */
#define KEY_FILE_SUFFIX ".credentials-key"

/* ---- JSON ---- */

static json_t *parse_or(const char *text, const char *fallback)
{
    json_t *v = text && *text ? json_loads(text, 0, NULL) : NULL;
    return v ? v : json_loads(fallback, 0, NULL);
}

static json_t *cred_json(const store_credential *c)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:s, s:o}", "id", c->id,
                     "name", c->name, "type", c->type, "ownerId", c->owner_id, "description",
                     c->description ? c->description : "", "baseUrl",
                     c->base_url && *c->base_url ? json_string(c->base_url) : json_null(),
                     "allowedHosts", parse_or(c->allowed_hosts, "[]"), "fields",
                     parse_or(c->fields, "[]"), "hint", c->hint, "createdAt", c->created_at,
                     "updatedAt", c->updated_at, "lastUsedAt",
                     c->last_used_at[0] ? json_string(c->last_used_at) : json_null());
}

/* ---- validation ---- */

static void problem(json_t *details, const char *field, const char *message)
{
    json_array_append_new(details, json_pack("{s:s, s:s}", "field", field, "message", message));
}

/* A string member of o of min..max characters; NULL when absent (with a
 * problem when required) or bad. */
static const char *text_field(const json_t *o, const char *key, bool required, size_t min,
                              size_t max, json_t *details)
{
    const json_t *v = json_object_get(o, key);
    char msg[96];
    if (!v || json_is_null(v)) {
        if (required)
            problem(details, key, "is required");
        return NULL;
    }
    size_t n = json_is_string(v) ? str_utf8_len(json_string_value(v)) : 0;
    if (!json_is_string(v) || n < min || n > max) {
        snprintf(msg, sizeof(msg), "must be a string of %zu to %zu characters", min, max);
        problem(details, key, msg);
        return NULL;
    }
    return json_string_value(v);
}

/* A data value: a string of 1..CREDENTIALS_VALUE_MAX bytes that can stand
 * in a header (no CR, LF, NUL). */
static void check_value(const char *key, const json_t *v, json_t *details)
{
    char field[64];
    snprintf(field, sizeof(field), "data.%s", key);
    if (!json_is_string(v) || json_string_length(v) < 1 ||
        json_string_length(v) > CREDENTIALS_VALUE_MAX) {
        problem(details, field, "must be a string of 1 to 8192 bytes");
        return;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || strpbrk(s, "\r\n"))
        problem(details, field, "must not contain CR, LF or NUL");
    else if (!strcmp(key, "name") && !str_is_token(s))
        problem(details, field, "must be an HTTP header name (token characters only)");
}

static bool type_has(const credentials_type *t, const char *key)
{
    for (int i = 0; t->keys[i]; i++)
        if (!strcmp(t->keys[i], key))
            return true;
    return false;
}

/* data (sent; NULL on a change that sends none) merged over held (NULL on
 * a create): a new object, or NULL after problems. */
static json_t *merge_data(const credentials_type *t, const json_t *data, const json_t *held,
                          json_t *details)
{
    size_t before = json_array_size(details);
    if (data && !json_is_object(data)) {
        problem(details, "data", "must be an object");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)data, k, v) {
        if (!type_has(t, k)) {
            char msg[128];
            snprintf(msg, sizeof(msg), "is not a key of %s credentials", t->name);
            char field[80];
            snprintf(field, sizeof(field), "data.%.60s", k);
            problem(details, field, msg);
        } else {
            check_value(k, v, details);
        }
    }
    json_t *out = held ? json_deep_copy(held) : json_object();
    json_object_update(out, (json_t *)data);
    for (int i = 0; t->keys[i]; i++)
        if (!json_object_get(out, t->keys[i])) {
            char field[64];
            snprintf(field, sizeof(field), "data.%s", t->keys[i]);
            problem(details, field, "is required");
        }
    if (json_array_size(details) != before) {
        credentials_data_wipe(out);
        return NULL;
    }
    return out;
}

static void check_base_url(const credentials_type *t, const json_t *v, json_t *details)
{
    const char *s = json_string_value(v);
    if (!v || json_is_null(v))
        return;
    if (t && t->http)
        problem(details, "baseUrl", "is only for openai and anthropic credentials");
    else if (!s || json_string_length(v) > CREDENTIALS_URL_MAX || strpbrk(s, " \t\r\n") ||
             !(strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0) ||
             !s[strncasecmp(s, "https://", 8) == 0 ? 8 : 7])
        problem(details, "baseUrl", "must be an http:// or https:// URL of at most 2048 bytes");
}

/* allowedHosts: an array of CREDENTIALS_HOSTS_MAX entries at most;
 * required (and not empty) for the http types. */
static void check_hosts(const credentials_type *t, const json_t *v, bool required,
                        json_t *details)
{
    if (!v || json_is_null(v)) {
        if (required && t && t->http)
            problem(details, "allowedHosts", "is required for http_* credentials");
        return;
    }
    if (!json_is_array(v) || json_array_size(v) > CREDENTIALS_HOSTS_MAX) {
        problem(details, "allowedHosts", "must be an array of at most 50 host names");
        return;
    }
    if (t && t->http && json_array_size(v) == 0)
        problem(details, "allowedHosts", "must name at least one host for http_* credentials");
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) {
        if (!credentials_host_entry_ok(json_string_value(e))) {
            char field[48];
            snprintf(field, sizeof(field), "allowedHosts[%zu]", i);
            problem(details, field,
                    "must be a host name, *.domain, or either with :port (at most 261 bytes)");
        }
    }
}

/* "…" and the last HINT_CHARS characters of the main secret. */
static void make_hint(const credentials_type *t, const json_t *data, char out[32])
{
    const char *s = json_string_value(json_object_get(data, t->secret));
    size_t n = s ? str_utf8_len(s) : 0;
    str_copy(out, 32, "\xe2\x80\xa6");
    if (n < HINT_MIN_CHARS)
        return;
    size_t skip = str_utf8_prefix(s, n - HINT_CHARS);
    size_t tail = strlen(s + skip);
    if (tail < 32 - 4)
        memcpy(out + 3, s + skip, tail + 1);
}

static int by_name(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The data keys held, sorted, as a JSON array text. */
static char *fields_of(const json_t *data, arena *a)
{
    const char *names[CREDENTIALS_KEYS_MAX], *k;
    size_t n = 0;
    json_t *v;
    json_object_foreach((json_t *)data, k, v) {
        if (n < CREDENTIALS_KEYS_MAX)
            names[n++] = k;
    }
    qsort(names, n, sizeof(names[0]), by_name);
    json_t *keys = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(keys, json_string(names[i]));
    char *t = json_dumps(keys, JSON_COMPACT);
    json_decref(keys);
    char *out = arena_strdup(a, t ? t : "[]");
    free(t);
    return out;
}

static char *dump_hosts(const json_t *v, arena *a)
{
    char *t = v && json_is_array(v) ? json_dumps(v, JSON_COMPACT) : NULL;
    char *out = arena_strdup(a, t ? t : "[]");
    free(t);
    return out;
}

/* Seals data (wiped and dropped) into c: secret, key_id, fields, hint. */
static aop_err seal_into(const app_ctx *app, const credentials_type *t, json_t *data,
                         store_credential *c, arena *a)
{
    char *plain = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
    c->fields = fields_of(data, a);
    make_hint(t, data, c->hint);
    credentials_data_wipe(data);
    if (!plain)
        return AOP_ERR_INTERNAL;
    size_t n = strlen(plain);
    char *blob = vault_seal(app->vault, c->id, plain, n);
    vault_plain_free(plain, n);
    if (!blob)
        return AOP_ERR_INTERNAL;
    c->secret = arena_strdup(a, blob);
    free(blob);
    str_copy(c->key_id, sizeof(c->key_id), vault_kid(app->vault));
    return AOP_OK;
}

/* ---- operations ---- */

aop_err credentials_create(const app_ctx *app, const wf_caller *c, const json_t *body,
                           json_t *details, char *why, size_t whylen, char **json, size_t *len,
                           arena *a)
{
    store_credential cr = {0};
    const char *type = json_string_value(json_object_get(body, "type"));
    const credentials_type *t = credentials_type_find(type);
    const char *name = text_field(body, "name", true, 1, CREDENTIALS_NAME_MAX, details);
    const char *desc = text_field(body, "description", false, 0, CREDENTIALS_DESCRIPTION_MAX,
                                  details);
    if (!t)
        problem(details, "type",
                "must be one of openai, anthropic, http_bearer, http_header, http_basic");
    check_base_url(t, json_object_get(body, "baseUrl"), details);
    check_hosts(t, json_object_get(body, "allowedHosts"), true, details);
    json_t *data = NULL;
    if (!json_object_get(body, "data"))
        problem(details, "data", "is required");
    else if (t)
        data = merge_data(t, json_object_get(body, "data"), NULL, details);
    if (json_array_size(details) > 0) {
        credentials_data_wipe(data);
        return AOP_ERR_VALIDATION;
    }
    long long held = 0;
    aop_err rc = store_credential_count(app->store, c->id, &held);
    if (rc == AOP_OK && held >= app->cfg->credentials_max_per_user) {
        snprintf(why, whylen,
                 "You have %lld credentials, the most one user may have "
                 "(CREDENTIALS_MAX_PER_USER); delete one first",
                 held);
        rc = AOP_ERR_CONFLICT;
    }
    if (rc != AOP_OK) {
        credentials_data_wipe(data);
        return rc;
    }
    ids_uuid7(cr.id);
    str_copy(cr.owner_id, sizeof(cr.owner_id), c->id);
    cr.name = (char *)name;
    str_copy(cr.type, sizeof(cr.type), t->name);
    cr.description = (char *)(desc ? desc : "");
    cr.base_url = (char *)json_string_value(json_object_get(body, "baseUrl"));
    cr.allowed_hosts = dump_hosts(json_object_get(body, "allowedHosts"), a);
    clock_format_rfc3339(clock_now_ms(), cr.created_at);
    str_copy(cr.updated_at, sizeof(cr.updated_at), cr.created_at);
    if ((rc = seal_into(app, t, data, &cr, a)) != AOP_OK)
        return rc;
    rc = store_credential_insert(app->store, &cr);
    return rc == AOP_OK ? json_dump_arena(cred_json(&cr), json, len, a) : rc;
}

/* Credential id as c may see it; AOP_ERR_NOT_FOUND otherwise. */
static aop_err load(const app_ctx *app, const wf_caller *c, const char *id, store_credential *cr,
                    arena *a)
{
    aop_err rc = ids_uuid_ok(id) ? store_credential_get(app->store, id, cr, a) : AOP_ERR_NOT_FOUND;
    if (rc == AOP_OK && !c->admin && strcmp(cr->owner_id, c->id))
        rc = AOP_ERR_NOT_FOUND;
    return rc;
}

aop_err credentials_get(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                        size_t *len, arena *a)
{
    store_credential cr;
    aop_err rc = load(app, c, id, &cr, a);
    return rc == AOP_OK ? json_dump_arena(cred_json(&cr), json, len, a) : rc;
}

aop_err credentials_list(const app_ctx *app, const wf_caller *c, store_cred_query *q,
                         long long page, char **json, size_t *len, arena *a)
{
    store_credential *rows = NULL;
    int n = 0;
    long long total = 0;
    q->reader = c->admin ? NULL : c->id;
    aop_err rc = store_credential_list(app->store, q, &rows, &n, &total, a);
    if (rc != AOP_OK)
        return rc;
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, cred_json(&rows[i]));
    return json_dump_arena(json_list_page(data, page, q->limit, total), json, len, a);
}

/* The data held by cr, opened; NULL when no key opens it. */
static json_t *open_data(const app_ctx *app, const store_credential *cr)
{
    size_t n = 0;
    char *plain = vault_open(app->vault, cr->id, cr->secret, &n, NULL);
    if (!plain) {
        log_error("a credential cannot be decrypted with the configured keys",
                  LF_S("credentialId", cr->id), LF_S("keyId", cr->key_id));
        return NULL;
    }
    json_t *v = json_loadb(plain, n, 0, NULL);
    vault_plain_free(plain, n + 1);
    return v;
}

aop_err credentials_update(const app_ctx *app, const wf_caller *c, const char *id,
                           const json_t *body, json_t *details, char **json, size_t *len,
                           arena *a)
{
    store_credential cr;
    aop_err rc = load(app, c, id, &cr, a);
    if (rc != AOP_OK)
        return rc;
    const credentials_type *t = credentials_type_find(cr.type);
    const char *name = text_field(body, "name", false, 1, CREDENTIALS_NAME_MAX, details);
    const char *desc = text_field(body, "description", false, 0, CREDENTIALS_DESCRIPTION_MAX,
                                  details);
    const json_t *base = json_object_get(body, "baseUrl");
    const json_t *hosts = json_object_get(body, "allowedHosts");
    const json_t *data = json_object_get(body, "data");
    if (json_object_get(body, "type"))
        problem(details, "type", "cannot be changed; create another credential");
    check_base_url(t, base, details);
    check_hosts(t, hosts, false, details);
    if (t && t->http && hosts && json_is_null(hosts))
        problem(details, "allowedHosts", "is required for http_* credentials");
    json_t *held = NULL, *merged = NULL;
    if (data && json_array_size(details) == 0) {
        if (!(held = open_data(app, &cr)))
            return AOP_ERR_INTERNAL;
        merged = merge_data(t, data, held, details);
        credentials_data_wipe(held);
    }
    if (json_array_size(details) > 0) {
        credentials_data_wipe(merged);
        return AOP_ERR_VALIDATION;
    }
    const char *was = cr.secret;
    if (name)
        cr.name = (char *)name;
    if (desc)
        cr.description = (char *)desc;
    if (base)
        cr.base_url = (char *)(json_is_null(base) ? "" : json_string_value(base));
    if (hosts)
        cr.allowed_hosts = dump_hosts(hosts, a);
    if (merged && (rc = seal_into(app, t, merged, &cr, a)) != AOP_OK)
        return rc;
    clock_format_rfc3339(clock_now_ms(), cr.updated_at);
    rc = store_credential_update(app->store, &cr, was);
    return rc == AOP_OK ? json_dump_arena(cred_json(&cr), json, len, a) : rc;
}

aop_err credentials_delete(const app_ctx *app, const wf_caller *c, const char *id)
{
    arena a = {0};
    store_credential cr;
    aop_err rc = load(app, c, id, &cr, &a);
    arena_free(&a);
    return rc == AOP_OK ? store_credential_delete(app->store, id) : rc;
}

/* ---- definitions ---- */

/* Whether a node of kind (its type) can send a credential of type t. */
static bool kind_takes(const char *kind, const credentials_type *t)
{
    if (!strcmp(kind, "http"))
        return t->http;
    return !strcmp(kind, "llm") || !strcmp(kind, "agent") ? !t->http : false;
}

/* The credential ref (a node's config.credentialId, at field) names one of
 * owner_id's that a node of kind sends; else a problem in details. */
static aop_err check_ref(const app_ctx *app, const char *owner_id, const json_t *ref,
                         const char *kind, const char *field, json_t *details, arena *a)
{
    store_credential cr;
    aop_err e = ids_uuid_ok(json_string_value(ref))
                    ? store_credential_get(app->store, json_string_value(ref), &cr, a)
                    : AOP_ERR_NOT_FOUND;
    if (e == AOP_OK && strcmp(cr.owner_id, owner_id))
        e = AOP_ERR_NOT_FOUND;
    if (e == AOP_ERR_NOT_FOUND)
        problem(details, field, "names no credential of the workflow's owner");
    else if (e != AOP_OK)
        return e;
    else if (!kind || !kind_takes(kind, credentials_type_find(cr.type)))
        problem(details, field,
                !kind || strcmp(kind, "http")
                    ? "must name an openai or anthropic credential for this node type"
                    : "must name an http_bearer, http_header or http_basic credential");
    return AOP_OK;
}

aop_err credentials_check_definition(const app_ctx *app, const char *owner_id,
                                     const json_t *definition, json_t *details)
{
    json_t *own = details ? NULL : json_array();
    details = details ? details : own;
    const json_t *nodes = json_object_get(definition, "nodes");
    size_t i, before = json_array_size(details);
    const json_t *node;
    arena a = {0};
    aop_err rc = AOP_OK;
    char field[96];
    json_array_foreach(nodes, i, node) {
        const json_t *conf = json_object_get(node, "config");
        const char *kind = json_string_value(json_object_get(node, "type"));
        const json_t *ref = json_object_get(conf, "credentialId");
        snprintf(field, sizeof(field), "definition.nodes[%zu].config.credentialId", i);
        if (ref)
            rc = check_ref(app, owner_id, ref, kind, field, details, &a);
        /* an agent's http tools send theirs as http nodes do */
        const json_t *tools = kind && !strcmp(kind, "agent") ? json_object_get(conf, "tools") : NULL;
        for (size_t k = 0; rc == AOP_OK && k < json_array_size(tools); k++) {
            const json_t *http = json_object_get(json_array_get(tools, k), "http");
            const json_t *tref = json_object_get(http, "credentialId");
            snprintf(field, sizeof(field),
                     "definition.nodes[%zu].config.tools[%zu].http.credentialId", i, k);
            if (tref)
                rc = check_ref(app, owner_id, tref, "http", field, details, &a);
        }
        if (rc != AOP_OK)
            break;
    }
    arena_free(&a);
    if (rc == AOP_OK && json_array_size(details) > before)
        rc = AOP_ERR_VALIDATION;
    json_decref(own);
    return rc;
}

/* ---- the key at start ---- */

/* DATABASE_URL's SQLite file with KEY_FILE_SUFFIX, or NULL. */
static char *key_file_path(const config *cfg)
{
    const char *u = cfg->database_url;
    if (strncmp(u, "sqlite://", 9))
        return NULL;
    size_t n = strcspn(u + 9, "?");
    buf b;
    buf_init(&b, 0);
    buf_printf(&b, "%.*s%s", (int)n, u + 9, KEY_FILE_SUFFIX);
    return b.data;
}

/* The key in path, created (mode 0600, written whole or not at all) when
 * the file does not exist; out: 45 bytes. 0, or -1 with a message. */
static int key_file(const char *path, char out[45], char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, out, 44);
        close(fd);
        out[n > 0 ? n : 0] = '\0';
        if (n == 44)
            return 0;
        snprintf(err, errlen, "CREDENTIALS_KEY: %s does not hold a key", path);
        return -1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    vault_key_generate(out);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, out, 44) == 44 && fsync(fd) == 0;
    ok = (fd < 0 || close(fd) == 0) && ok;
    /* link, not rename: a second process generating at the same time
     * does not replace the first one's key */
    if (ok && link(tmp, path) != 0) {
        unlink(tmp);
        return key_file(path, out, err, errlen);
    }
    unlink(tmp);
    if (!ok) {
        snprintf(err, errlen, "CREDENTIALS_KEY: unset, and %s cannot be written: %s", path,
                 strerror(errno));
        return -1;
    }
    log_info("generated the credentials key", LF_S("file", path));
    return 0;
}

/* The canary: created when missing, then opened. */
static int check_canary(store *s, vault *v, bool *config_error, char *err, size_t errlen)
{
    arena a = {0};
    char *blob = NULL, now[25];
    int rc = -1;
    aop_err e = store_credential_canary_get(s, &blob, &a);
    if (e == AOP_ERR_NOT_FOUND) {
        char *fresh = vault_seal(v, CANARY_AD, CANARY_TEXT, sizeof(CANARY_TEXT) - 1);
        clock_format_rfc3339(clock_now_ms(), now);
        e = store_credential_canary_put(s, fresh, vault_kid(v), now, false);
        free(fresh);
        if (e == AOP_OK) /* this one, or another instance's that came first */
            e = store_credential_canary_get(s, &blob, &a);
    }
    if (e != AOP_OK) {
        snprintf(err, errlen, "cannot read the credentials canary: %s", err_code(e));
        goto out;
    }
    size_t n = 0;
    char *plain = vault_open(v, CANARY_AD, blob, &n, NULL);
    if (!plain || n != sizeof(CANARY_TEXT) - 1 || memcmp(plain, CANARY_TEXT, n)) {
        *config_error = true;
        snprintf(err, errlen,
                 "CREDENTIALS_KEY: neither it nor a key of CREDENTIALS_OLD_KEYS opens the "
                 "stored credentials");
    } else {
        rc = 0;
    }
    vault_plain_free(plain, n + 1);
out:
    arena_free(&a);
    return rc;
}

vault *credentials_vault_open(const config *cfg, store *s, bool *config_error, char *err,
                              size_t errlen)
{
    char generated[45] = "";
    const char *key = cfg->credentials_key;
    *config_error = true;
    if (!key && (cfg->app_env == APP_ENV_PRODUCTION || store_shared(s))) {
        snprintf(err, errlen,
                 "CREDENTIALS_KEY: required in production and with PostgreSQL (base64 of 32 "
                 "bytes, the same on every instance)");
        return NULL;
    }
    if (!key) {
        char *path = key_file_path(cfg);
        int rc = path ? key_file(path, generated, err, errlen)
                      : (snprintf(err, errlen, "CREDENTIALS_KEY: required"), -1);
        free(path);
        if (rc != 0)
            return NULL;
        key = generated;
    }
    vault *v = vault_new(key, cfg->credentials_old_keys, err, errlen);
    OPENSSL_cleanse(generated, sizeof(generated));
    if (!v)
        return NULL;
    *config_error = false;
    if (check_canary(s, v, config_error, err, errlen) != 0) {
        vault_free(v);
        return NULL;
    }
    return v;
}

/* ---- rotation ---- */

typedef struct {
    vault *v;
    store_credential *rows;
    int n;
    credentials_rotation *out;
} batch;

static aop_err reseal_batch(store *s, void *p)
{
    batch *b = p;
    aop_err rc = AOP_OK;
    for (int i = 0; rc == AOP_OK && i < b->n; i++) {
        const store_credential *c = &b->rows[i];
        size_t n = 0;
        char *plain = vault_open(b->v, c->id, c->secret, &n, NULL);
        if (!plain) {
            log_error("a credential cannot be decrypted with the configured keys",
                      LF_S("credentialId", c->id), LF_S("keyId", c->key_id));
            b->out->failed++;
            continue;
        }
        char *blob = vault_seal(b->v, c->id, plain, n);
        vault_plain_free(plain, n + 1);
        bool done = false;
        rc = blob ? store_credential_reseal(s, c->id, c->secret, blob, vault_kid(b->v), &done)
                  : AOP_ERR_INTERNAL;
        free(blob);
        b->out->rotated += done;
    }
    return rc;
}

/* A sealed value of row ad opened and sealed again under v's current key:
 * a new blob (free it), or NULL (counted in out->failed when no key opens
 * it). sealed NULL: NULL, nothing counted. */
static char *reseal_one(vault *v, const char *ad, const char *sealed, const char *what,
                        credentials_rotation *out)
{
    if (!sealed)
        return NULL;
    size_t n = 0;
    char *plain = vault_open(v, ad, sealed, &n, NULL);
    if (!plain) {
        log_error("a secret cannot be decrypted with the configured keys", LF_S("what", what),
                  LF_S("id", ad));
        out->failed++;
        return NULL;
    }
    char *blob = vault_seal(v, ad, plain, n);
    vault_plain_free(plain, n + 1);
    return blob;
}

typedef struct {
    vault *v;
    store_webhook *rows;
    int n;
    credentials_rotation *out;
} hook_batch;

/* Webhook secrets are sealed by the same vault (webhooks.h): both the
 * current one and one still in its rotation grace. */
static aop_err reseal_hooks(store *s, void *p)
{
    hook_batch *b = p;
    aop_err rc = AOP_OK;
    for (int i = 0; rc == AOP_OK && i < b->n; i++) {
        const store_webhook *w = &b->rows[i];
        long long failed = b->out->failed;
        char *cur = reseal_one(b->v, w->id, w->secret, "webhook", b->out);
        char *old = reseal_one(b->v, w->id, w->old_secret, "webhook", b->out);
        bool done = false;
        if (b->out->failed == failed && cur)
            rc = store_webhook_reseal(s, w->id, w->secret, cur, w->old_secret, old,
                                      vault_kid(b->v), &done);
        b->out->rotated += done;
        free(cur);
        free(old);
    }
    return rc;
}

static aop_err rotate_hooks(store *s, vault *v, credentials_rotation *out)
{
    char after[UUID_STR_LEN] = "";
    aop_err rc = AOP_OK;
    for (;;) {
        arena a = {0};
        hook_batch b = {v, NULL, 0, out};
        rc = store_webhook_stale(s, vault_kid(v), after, CREDENTIALS_ROTATE_BATCH, &b.rows, &b.n,
                                 &a);
        if (rc == AOP_OK && b.n > 0) {
            rc = store_tx(s, reseal_hooks, &b);
            str_copy(after, sizeof(after), b.rows[b.n - 1].id);
        }
        int n = b.n;
        arena_free(&a);
        if (rc != AOP_OK || n < CREDENTIALS_ROTATE_BATCH)
            return rc;
    }
}

aop_err credentials_rotate(store *s, vault *v, credentials_rotation *out)
{
    char after[UUID_STR_LEN] = "", now[25];
    aop_err rc = AOP_OK;
    memset(out, 0, sizeof(*out));
    for (;;) {
        arena a = {0};
        batch b = {v, NULL, 0, out};
        rc = store_credential_stale(s, vault_kid(v), after, CREDENTIALS_ROTATE_BATCH, &b.rows,
                                    &b.n, &a);
        if (rc == AOP_OK && b.n > 0) {
            rc = store_tx(s, reseal_batch, &b);
            str_copy(after, sizeof(after), b.rows[b.n - 1].id);
        }
        int n = b.n;
        arena_free(&a);
        if (rc != AOP_OK || n < CREDENTIALS_ROTATE_BATCH)
            break;
    }
    if (rc == AOP_OK)
        rc = rotate_hooks(s, v, out);
    if (rc == AOP_OK && out->failed == 0) {
        char *fresh = vault_seal(v, CANARY_AD, CANARY_TEXT, sizeof(CANARY_TEXT) - 1);
        clock_format_rfc3339(clock_now_ms(), now);
        rc = store_credential_canary_put(s, fresh, vault_kid(v), now, true);
        free(fresh);
    }
    return rc;
}
