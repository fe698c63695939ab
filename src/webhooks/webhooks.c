/*
 * webhooks.c - webhooks, their secrets and the checks of their calls
 * (webhooks.h).
 */
#include "webhooks/webhooks.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/secure.h"
#include "core/str.h"
#include "credentials/vault.h"
#include "engine/engine.h"
#include "executions/executions.h"

#define SECRET_BYTES 32
#define SECRET_HEX (2 * SECRET_BYTES)
#define SIG_PREFIX "sha256="

static const char *const auths[] = {"none", "token", "hmac", NULL};
static const char *const responses[] = {"async", "sync", NULL};

static bool one_of(const char *const *list, const char *s)
{
    for (int i = 0; s && list[i]; i++)
        if (!strcmp(list[i], s))
            return true;
    return false;
}

bool webhooks_auth_ok(const char *s)
{
    return one_of(auths, s);
}

bool webhooks_response_ok(const char *s)
{
    return one_of(responses, s);
}

/* ---- JSON ---- */

static json_t *webhook_json(const store_webhook *w, const char *secret)
{
    char url[64];
    snprintf(url, sizeof(url), "/hooks/%s", w->id);
    json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:o}", "id", w->id,
                          "workflowId", w->workflow_id, "name",
                          w->name && w->name[0] ? json_string(w->name) : json_null(), "auth",
                          w->auth, "response", w->response, "url", url, "createdAt",
                          w->created_at, "createdBy", w->created_by, "lastCalledAt",
                          w->last_called_at[0] ? json_string(w->last_called_at) : json_null());
    if (o && secret)
        json_object_set_new(o, "secret", json_string(secret));
    return o;
}

/* ---- access ---- */

static aop_err load(const app_ctx *app, const wf_caller *c, const char *id, store_webhook *w,
                    arena *a)
{
    if (!ids_uuid_ok(id))
        return AOP_ERR_NOT_FOUND;
    aop_err rc = store_webhook_get(app->store, id, w, a);
    return rc == AOP_OK ? workflows_reach(app, c, w->workflow_id, true, a) : rc;
}

/* A new secret in plain (SECRET_HEX + 1 bytes) and sealed for webhook id
 * into *sealed (from a). */
static aop_err new_secret(const app_ctx *app, const char *id, char plain[SECRET_HEX + 1],
                          char **sealed, arena *a)
{
    ids_random_hex(plain, SECRET_BYTES);
    char *blob = vault_seal(app->vault, id, plain, SECRET_HEX);
    if (!blob)
        return AOP_ERR_INTERNAL;
    *sealed = arena_strdup(a, blob);
    free(blob);
    return AOP_OK;
}

/* ---- management ---- */

/* The count and the insert in one transaction (store_webhook_count). */
static aop_err insert_tx(store *s, void *p)
{
    const store_webhook *w = p;
    long long n = 0;
    aop_err rc = store_webhook_count(s, w->workflow_id, &n);
    if (rc == AOP_OK && n >= WEBHOOKS_PER_WORKFLOW_MAX)
        rc = AOP_ERR_VALIDATION;
    return rc == AOP_OK ? store_webhook_insert(s, w) : rc;
}

aop_err webhooks_create(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                        const char *name, const char *auth, const char *response, char **json,
                        size_t *len, arena *a)
{
    aop_err rc = workflows_reach(app, c, workflow_id, true, a);
    if (rc != AOP_OK)
        return rc;
    store_webhook w = {.name = (char *)(name ? name : "")};
    char plain[SECRET_HEX + 1];
    ids_uuid7(w.id);
    str_copy(w.workflow_id, sizeof(w.workflow_id), workflow_id);
    str_copy(w.auth, sizeof(w.auth), auth ? auth : "hmac");
    str_copy(w.response, sizeof(w.response), response ? response : "async");
    if ((rc = new_secret(app, w.id, plain, &w.secret, a)) != AOP_OK)
        return rc;
    str_copy(w.key_id, sizeof(w.key_id), vault_kid(app->vault));
    clock_format_rfc3339(clock_now_ms(), w.created_at);
    str_copy(w.created_by, sizeof(w.created_by), c->id);
    rc = store_tx(app->store, insert_tx, &w);
    if (rc == AOP_OK)
        rc = json_dump_arena(webhook_json(&w, plain), json, len, a);
    OPENSSL_cleanse(plain, sizeof(plain));
    return rc;
}

aop_err webhooks_list(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                      long long page, long long limit, char **json, size_t *len, arena *a)
{
    aop_err rc = workflows_reach(app, c, workflow_id, false, a);
    if (rc != AOP_OK)
        return rc;
    store_webhook *rows = NULL;
    int n = 0;
    long long total = 0;
    rc = store_webhook_list(app->store, workflow_id, (page - 1) * limit, limit, &rows, &n, &total,
                            a);
    if (rc != AOP_OK)
        return rc;
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, webhook_json(&rows[i], NULL));
    return json_dump_arena(json_list_page(data, page, limit, total), json, len, a);
}

aop_err webhooks_delete(const app_ctx *app, const wf_caller *c, const char *id)
{
    arena a = {0};
    store_webhook w;
    aop_err rc = load(app, c, id, &w, &a);
    if (rc == AOP_OK)
        rc = store_webhook_delete(app->store, id);
    arena_free(&a);
    return rc;
}

aop_err webhooks_rotate(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                        size_t *len, arena *a)
{
    store_webhook w;
    aop_err rc = load(app, c, id, &w, a);
    if (rc != AOP_OK)
        return rc;
    char plain[SECRET_HEX + 1];
    char *sealed = NULL;
    if ((rc = new_secret(app, w.id, plain, &sealed, a)) != AOP_OK)
        return rc;
    long long until = clock_now_ms() + app->cfg->webhook_secret_grace_s * 1000;
    rc = store_webhook_rotate(app->store, w.id, w.secret, sealed, vault_kid(app->vault), until);
    if (rc == AOP_OK)
        rc = json_dump_arena(webhook_json(&w, plain), json, len, a);
    OPENSSL_cleanse(plain, sizeof(plain));
    return rc;
}

/* ---- calls ---- */

/* Opens sealed (of webhook id) and calls ok = fn(plain, ctx). */
static bool with_secret(const app_ctx *app, const char *id, const char *sealed,
                        bool (*fn)(const char *plain, const void *ctx), const void *ctx)
{
    size_t n = 0;
    char *plain = sealed ? vault_open(app->vault, id, sealed, &n, NULL) : NULL;
    if (!plain)
        return false;
    bool ok = fn(plain, ctx);
    vault_plain_free(plain, n + 1);
    return ok;
}

static bool token_matches(const char *plain, const void *ctx)
{
    return secure_str_eq(plain, ctx) == 1;
}

typedef struct {
    const char *ts;
    const webhook_auth *in;
    const unsigned char *sig; /* SHA256 bytes sent */
} hmac_ctx;

/* HMAC-SHA256, fetched once for the process; each thread keeps a context
 * with the digest set, so a call only sets its key. */
static EVP_MAC *hmac_alg;
static pthread_key_t hmac_key; /* the thread's EVP_MAC_CTX, freed as it exits */
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_ctx_free(void *h)
{
    EVP_MAC_CTX_free(h);
}

static void hmac_fetch(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (pthread_key_create(&hmac_key, hmac_ctx_free) != 0) {
        EVP_MAC_free(hmac_alg);
        hmac_alg = NULL;
    }
}

static EVP_MAC_CTX *thread_hmac(void)
{
    pthread_once(&hmac_once, hmac_fetch);
    if (!hmac_alg)
        return NULL;
    EVP_MAC_CTX *h = pthread_getspecific(hmac_key);
    if (h)
        return h;
    h = EVP_MAC_CTX_new(hmac_alg);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (h && EVP_MAC_CTX_set_params(h, params) != 1) {
        EVP_MAC_CTX_free(h);
        h = NULL;
    }
    if (h && pthread_setspecific(hmac_key, h) != 0) {
        EVP_MAC_CTX_free(h);
        h = NULL;
    }
    return h;
}

static bool hmac_matches(const char *plain, const void *p)
{
    const hmac_ctx *x = p;
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    EVP_MAC_CTX *h = thread_hmac();
    bool ok = h && EVP_MAC_init(h, (const unsigned char *)plain, strlen(plain), NULL) == 1 &&
              EVP_MAC_update(h, (const unsigned char *)x->ts, strlen(x->ts)) == 1 &&
              EVP_MAC_update(h, (const unsigned char *)".", 1) == 1 &&
              EVP_MAC_update(h, (const unsigned char *)x->in->body, x->in->body_len) == 1 &&
              EVP_MAC_final(h, mac, &maclen, sizeof(mac)) == 1 && maclen == 32;
    bool match = ok && CRYPTO_memcmp(mac, x->sig, 32) == 0;
    OPENSSL_cleanse(mac, sizeof(mac));
    return match;
}

static int hexval(int c)
{
    c = tolower(c);
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "sha256=<64 hex>" into out; false when it is not that. */
static bool signature_bytes(const char *s, unsigned char out[32])
{
    size_t p = strlen(SIG_PREFIX);
    if (!s || strncmp(s, SIG_PREFIX, p) || strlen(s + p) != 64)
        return false;
    for (int i = 0; i < 32; i++) {
        int hi = hexval((unsigned char)s[p + 2 * i]), lo = hexval((unsigned char)s[p + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* Unix seconds, digits only, within WEBHOOKS_WINDOW_S of now. */
static bool timestamp_ok(const char *ts)
{
    if (!ts || !ts[0] || strlen(ts) > 12)
        return false;
    long long t = 0;
    for (const char *p = ts; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        t = t * 10 + (*p - '0');
    }
    long long now = clock_now_ms() / 1000;
    return t >= now - WEBHOOKS_WINDOW_S && t <= now + WEBHOOKS_WINDOW_S;
}

/* Tries the current secret, then the one before while its grace lasts. */
static bool any_secret(const app_ctx *app, const store_webhook *w,
                       bool (*fn)(const char *plain, const void *ctx), const void *ctx)
{
    bool ok = with_secret(app, w->id, w->secret, fn, ctx);
    if (!ok && w->old_secret && w->old_until_ms > clock_now_ms())
        ok = with_secret(app, w->id, w->old_secret, fn, ctx);
    return ok;
}

aop_err webhooks_check(const app_ctx *app, const char *id, const webhook_auth *in,
                       store_webhook *w, const char **why, arena *a)
{
    *why = NULL;
    if (!ids_uuid_ok(id))
        return AOP_ERR_NOT_FOUND;
    aop_err rc = store_webhook_get(app->store, id, w, a);
    if (rc != AOP_OK)
        return rc;
    if (!strcmp(w->auth, "token")) {
        const char *h = in->authorization;
        if (!h || strncasecmp(h, "Bearer ", 7) ||
            !any_secret(app, w, token_matches, h + 7)) {
            *why = "The webhook's token is missing or wrong";
            return AOP_ERR_UNAUTHORIZED;
        }
    } else if (!strcmp(w->auth, "hmac")) {
        unsigned char sig[32];
        if (!timestamp_ok(in->timestamp)) {
            *why = "X-AOP-Timestamp is missing or not within 300 s of now";
            return AOP_ERR_UNAUTHORIZED;
        }
        hmac_ctx x = {in->timestamp, in, sig};
        if (!signature_bytes(in->signature, sig) || !any_secret(app, w, hmac_matches, &x)) {
            *why = "X-AOP-Signature is missing or wrong";
            return AOP_ERR_UNAUTHORIZED;
        }
    }
    return AOP_OK;
}

aop_err webhooks_prepare(const app_ctx *app, const store_webhook *w, const json_t *input,
                         store_execution *row, arena *a)
{
    aop_err rc = executions_prepare_trigger(app, w->created_by, w->workflow_id, input, "webhook",
                                            w->id, row, a);
    if (rc != AOP_OK)
        return rc;
    int64_t last = 0, now = clock_now_ms();
    if (!w->last_called_at[0] || clock_parse_rfc3339(w->last_called_at, 0, &last) != 0 ||
        now - last >= WEBHOOKS_TOUCH_MS)
        if (store_webhook_touch(app->store, w->id, row->created_at) != AOP_OK)
            log_warn("cannot note a webhook's call", LF_S("webhookId", w->id));
    return AOP_OK;
}

typedef struct {
    const app_ctx *app;
    const store_webhook *w;
    const char *key;
    const store_execution *row;
    long long status_code;
    bool won;
    char first_id[UUID_STR_LEN];
    long long first_status;
} keyed_ctx;

static aop_err keyed_tx(store *s, void *p)
{
    keyed_ctx *x = p;
    long long now = clock_now_ms();
    aop_err rc = store_webhook_key_claim(s, x->w->id, x->key, x->row->id, x->status_code, now,
                                         now + WEBHOOKS_KEY_TTL_MS, &x->won, x->first_id,
                                         &x->first_status);
    if (rc != AOP_OK || !x->won)
        return rc;
    long long active = -1;
    return store_execution_enqueue(s, x->row, x->app->cfg->quota_active_executions, &active);
}

aop_err webhooks_start_keyed(const app_ctx *app, const store_webhook *w, const char *key,
                             const store_execution *row, long long status_code, bool *repeat,
                             char first_id[UUID_STR_LEN], long long *first_status)
{
    keyed_ctx x = {.app = app, .w = w, .key = key, .row = row, .status_code = status_code};
    aop_err rc = store_tx(app->store, keyed_tx, &x);
    *repeat = rc == AOP_OK && !x.won;
    if (rc == AOP_OK && x.won) {
        engine_queued_event(app->engine, row);
        engine_events_committed(app->engine, row->id, 1, 1);
        engine_queued(app->engine);
    } else if (*repeat) {
        memcpy(first_id, x.first_id, UUID_STR_LEN);
        *first_status = x.first_status;
    } else if (rc == AOP_ERR_QUOTA_EXCEEDED) {
        engine_refused_quota(app->engine);
    }
    return rc;
}

void webhooks_key_answered(const app_ctx *app, const store_webhook *w, const char *key,
                           long long status_code)
{
    if (store_webhook_key_status(app->store, w->id, key, status_code) != AOP_OK)
        log_warn("cannot keep a webhook call's answer", LF_S("webhookId", w->id));
}

aop_err webhooks_execution_status(const app_ctx *app, const char *execution_id,
                                  exec_status *status)
{
    return store_execution_status(app->store, execution_id, status);
}
