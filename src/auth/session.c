#include "auth/session.h"
#include "auth/apikey.h"
#include "auth/user_cache.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOT_REVOKED_TTL_MS 60000  /* how long "not revoked" may be believed */
#define KEY_TOUCH_MS 60000        /* lastUsedAt is written at most this often */
#define REVOKED_TTL_MAX_MS (7LL * 24 * 3600 * 1000)

/* ---- revocation mirror ---- */

static void mirror_key(char *out, size_t n, char kind, const char *id)
{
    const char k[2] = {kind, '\0'};
    STR_CAT(out, n, "rv:", k, ":", id);
}

/* Marks id revoked in the cache until ttl_ms from now (bounded). */
static void mirror_revoked(const app_ctx *app, char kind, const char *id, long long ttl_ms)
{
    char key[64];
    mirror_key(key, sizeof(key), kind, id);
    if (ttl_ms < 1000)
        ttl_ms = 1000;
    if (ttl_ms > REVOKED_TTL_MAX_MS)
        ttl_ms = REVOKED_TTL_MAX_MS;
    if (cache_set(app->cache, key, "1", 1, ttl_ms) != AOP_OK)
        log_warn("cannot mirror a revocation in the cache", LF_S("key", key));
}

/* What a mirror read says: 1 revoked, 0 not revoked, -1 unknown (a miss
 * or an error). Frees what r holds. */
static int mirror_state(cache_read *r)
{
    int state = r->rc != AOP_OK || r->len != 1 ? -1
                : r->val[0] == '1'                 ? 1
                : r->val[0] == '0'                 ? 0
                                                   : -1;
    free(r->val);
    r->val = NULL;
    return state;
}

static void mirror_not_revoked(const app_ctx *app, char kind, const char *id)
{
    char key[64];
    mirror_key(key, sizeof(key), kind, id);
    cache_add(app->cache, key, "0", 1, NOT_REVOKED_TTL_MS); /* a "1" already there wins */
}

/* Is the access token (jti, fam) revoked? The cache answers when it knows
 * both (a and f: mirror_state of each); otherwise the store does, and the
 * cache learns. */
static aop_err token_revoked(const app_ctx *app, const auth_claims *c, int a, int f,
                             bool *revoked)
{
    if (a == 1 || f == 1) {
        *revoked = true;
        return AOP_OK;
    }
    if (a == 0 && f == 0) {
        *revoked = false;
        return AOP_OK;
    }
    aop_err rc = store_token_revoked(app->store, c->jti, c->fam, revoked);
    if (rc != AOP_OK)
        return rc;
    if (*revoked) {
        mirror_revoked(app, 'a', c->jti, (c->exp - clock_now_ms() / 1000) * 1000);
    } else {
        mirror_not_revoked(app, 'a', c->jti);
        mirror_not_revoked(app, 'f', c->fam);
    }
    return AOP_OK;
}

/* ---- verified-token memo ----
 *
 * Verifying an access token (base64, two JSON parses, HMAC) costs more than
 * the rest of a small request. A token's claims never change and the secret
 * is fixed for the life of the process, so each thread remembers the last
 * tokens it verified (direct-mapped by a hash of the whole token, compared
 * byte for byte). Expiry is still checked on every use, and revocation is
 * never memoised here.
 */

#define MEMO_SLOTS 64

typedef struct {
    char *token; /* malloc'd copy; NULL when the slot is empty */
    size_t len;
    auth_claims claims;
} memo_slot;

static pthread_key_t memo_key;
static pthread_once_t memo_once = PTHREAD_ONCE_INIT;

static void memo_free(void *p)
{
    memo_slot *slots = p;
    for (int i = 0; i < MEMO_SLOTS; i++)
        free(slots[i].token);
    free(slots);
}

static void memo_init(void)
{
    if (pthread_key_create(&memo_key, memo_free) != 0)
        log_warn("no thread key for the token memo; tokens are verified every time");
}

static memo_slot *memo_slot_for(const char *token, size_t len)
{
    pthread_once(&memo_once, memo_init);
    memo_slot *slots = pthread_getspecific(memo_key);
    if (!slots) {
        slots = xcalloc(MEMO_SLOTS, sizeof(memo_slot));
        if (pthread_setspecific(memo_key, slots) != 0) {
            free(slots);
            return NULL;
        }
    }
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the signature end */
    for (size_t i = len > 32 ? len - 32 : 0; i < len; i++)
        h = (h ^ (unsigned char)token[i]) * 1099511628211ULL;
    return &slots[h % MEMO_SLOTS];
}

/* auth_jwt_verify for access tokens, through the memo. */
static aop_err verify_access(const char *token, const char *secret, long long now,
                             auth_claims *out)
{
    size_t len = strnlen(token, AUTH_TOKEN_MAX + 1);
    memo_slot *m = len <= AUTH_TOKEN_MAX ? memo_slot_for(token, len) : NULL;
    if (m && m->token && m->len == len && memcmp(m->token, token, len) == 0) {
        *out = m->claims;
        return out->exp > now ? AOP_OK : AOP_ERR_TOKEN_EXPIRED;
    }
    aop_err rc = auth_jwt_verify(token, AUTH_TOKEN_ACCESS, secret, now, out);
    if (m && (rc == AOP_OK || rc == AOP_ERR_TOKEN_EXPIRED)) {
        free(m->token);
        m->token = xstrndup(token, len);
        m->len = len;
        m->claims = *out;
    }
    return rc;
}

/* ---- signing up and in ---- */

aop_err auth_register(const app_ctx *app, const store_user *u)
{
    return store_user_insert(app->store, u);
}

aop_err auth_login_user(const app_ctx *app, const char *email, store_user *out, arena *a)
{
    char *lower = str_lower_utf8(email, a);
    aop_err rc = store_user_get_by_email(app->store, lower, out, a);
    if (rc == AOP_ERR_NOT_FOUND) {
        memset(out, 0, sizeof(*out));
        out->email = lower;
    }
    return rc;
}

aop_err auth_password_held(const app_ctx *app, const char *user_id, const char **hash,
                           arena *a)
{
    store_user u;
    aop_err rc = store_user_get_by_id(app->store, user_id, &u, a);
    *hash = rc == AOP_OK ? u.password_hash : NULL;
    return rc;
}

/* ---- authentication ---- */

/* rc of reading user u: unauthorized when it is gone or disabled. */
static aop_err active_or_why(aop_err rc, const store_user *u, const char **why)
{
    if (rc == AOP_ERR_NOT_FOUND || (rc == AOP_OK && !u->is_active)) {
        *why = "account is disabled or no longer exists";
        return AOP_ERR_UNAUTHORIZED;
    }
    return rc;
}

static aop_err load_active_user(const app_ctx *app, const char *id, store_user *u,
                                const char **why, arena *a)
{
    return active_or_why(user_cache_get(app, id, u, a), u, why);
}

/* Prepares lim's hit against the token's user; false when the limiter
 * counts hits alone (then the caller counts it after). */
static bool limit_begin(const app_ctx *app, const char *sub, auth_limit *lim, limiter_ride *ride)
{
    if (!lim || STR_CAT(lim->key, sizeof(lim->key), lim->prefix, sub) >= sizeof(lim->key))
        return false;
    return limiter_ride_begin(app->limiter, lim->key, lim->max, lim->window_ms, ride);
}

static aop_err by_bearer(const app_ctx *app, const char *token, auth_identity *out,
                         const char **why, arena *a, auth_limit *lim)
{
    long long now = clock_now_ms() / 1000;
    aop_err rc = verify_access(token, app->cfg->jwt_access_secret, now, &out->claims);
    if (rc == AOP_ERR_TOKEN_EXPIRED) {
        *why = "access token expired";
        return rc;
    }
    if (rc != AOP_OK) {
        *why = "invalid access token";
        return AOP_ERR_UNAUTHORIZED;
    }
    /* One round trip to the cache for both revocation mirrors and the user,
     * and for the rate-limit hit when it rides along */
    char ka[64], kf[64];
    cache_read r[3];
    cache_slot slot;
    limiter_ride ride;
    mirror_key(ka, sizeof(ka), 'a', out->claims.jti);
    mirror_key(kf, sizeof(kf), 'f', out->claims.fam);
    r[0].key = ka;
    r[1].key = kf;
    user_cache_read(out->claims.sub, &r[2], &slot);
    bool rides = limit_begin(app, out->claims.sub, lim, &ride);
    cache_get_many_with(app->cache, r, 3, CACHE_ITEM_LINK, rides ? &ride.call : NULL);
    if (rides) {
        lim->rc = limiter_ride_end(&ride, &lim->res);
        lim->counted = true;
    }
    int ma = mirror_state(&r[0]), mf = mirror_state(&r[1]);
    bool revoked = false;
    if ((rc = token_revoked(app, &out->claims, ma, mf, &revoked)) == AOP_OK && revoked) {
        *why = "access token revoked";
        rc = AOP_ERR_UNAUTHORIZED;
    }
    if (rc == AOP_OK) {
        rc = user_cache_got(app, out->claims.sub, &r[2], &slot, &out->user, a);
        rc = active_or_why(rc, &out->user, why);
    }
    free(r[2].val); /* when user_cache_got did not run */
    if (rc != AOP_OK)
        return rc;
    out->via = AUTH_VIA_BEARER;
    out->can_read = out->can_write = true;
    return AOP_OK;
}

/* Reads the scopes array text of a key into the identity. */
static void key_scopes(const char *scopes, auth_identity *out)
{
    json_error_t e;
    json_t *arr = json_loads(scopes, 0, &e);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (s && strcmp(s, "read") == 0)
            out->can_read = true;
        else if (s && strcmp(s, "write") == 0)
            out->can_write = true;
    }
    json_decref(arr);
}

/* Writes lastUsedAt unless this instance did so for the key within a minute. */
static void key_touch(const app_ctx *app, const char *id)
{
    char key[64], now[25];
    snprintf(key, sizeof(key), "ku:%s", id);
    if (cache_add(app->cache, key, "1", 1, KEY_TOUCH_MS) != AOP_OK)
        return;
    clock_format_rfc3339(clock_now_ms(), now);
    if (store_apikey_touch(app->store, id, now) != AOP_OK)
        log_warn("cannot record an API key's last use", LF_S("keyId", id));
}

static aop_err by_api_key(const app_ctx *app, const char *key, auth_identity *out,
                          const char **why, arena *a)
{
    char hash[APIKEY_HASH_LEN + 1], now[25];
    store_apikey k;
    *why = "invalid API key";
    if (auth_apikey_hash(key, hash) != 0)
        return AOP_ERR_UNAUTHORIZED;
    aop_err rc = store_apikey_get_by_hash(app->store, hash, &k, a);
    if (rc == AOP_ERR_NOT_FOUND)
        return AOP_ERR_UNAUTHORIZED;
    if (rc != AOP_OK)
        return rc;
    clock_format_rfc3339(clock_now_ms(), now);
    if (k.expires_at[0] && strcmp(k.expires_at, now) <= 0) {
        *why = "API key expired";
        return AOP_ERR_UNAUTHORIZED;
    }
    if ((rc = load_active_user(app, k.user_id, &out->user, why, a)) != AOP_OK)
        return rc;
    out->via = AUTH_VIA_APIKEY;
    str_copy(out->key_id, sizeof(out->key_id), k.id);
    key_scopes(k.scopes, out);
    key_touch(app, k.id);
    return AOP_OK;
}

aop_err auth_authenticate(const app_ctx *app, const char *authorization, const char *api_key,
                          auth_identity *out, const char **why, arena *a, auth_limit *lim)
{
    memset(out, 0, sizeof(*out));
    if (lim)
        lim->counted = false;
    if (authorization) {
        if (strncasecmp(authorization, "Bearer ", 7) != 0) {
            *why = "Authorization must be a Bearer token";
            return AOP_ERR_UNAUTHORIZED;
        }
        const char *t = authorization + 7;
        while (*t == ' ')
            t++;
        aop_err rc = by_bearer(app, t, out, why, a, lim);
        if (rc != AOP_OK)
            memset(out, 0, sizeof(*out));
        return rc;
    }
    if (api_key) {
        aop_err rc = by_api_key(app, api_key, out, why, a);
        if (rc != AOP_OK)
            memset(out, 0, sizeof(*out));
        return rc;
    }
    *why = "authentication required";
    return AOP_ERR_UNAUTHORIZED;
}

/* ---- issuing ---- */

/* Signs the pair for user u in family fam; jti is the refresh token's id. */
static aop_err sign_pair(const app_ctx *app, const store_user *u, const char *fam,
                         const char *refresh_jti, long long now, auth_pair *out, arena *a)
{
    const config *cfg = app->cfg;
    auth_claims c = {.type = AUTH_TOKEN_ACCESS, .iat = now, .exp = now + cfg->access_token_ttl};
    str_copy(c.sub, sizeof(c.sub), u->id);
    str_copy(c.fam, sizeof(c.fam), fam);
    str_copy(c.role, sizeof(c.role), u->role);
    ids_uuid7(c.jti);
    char *access = auth_jwt_sign(&c, cfg->jwt_access_secret);
    c.type = AUTH_TOKEN_REFRESH;
    c.role[0] = '\0';
    c.exp = now + cfg->refresh_token_ttl;
    str_copy(c.jti, sizeof(c.jti), refresh_jti);
    char *refresh = auth_jwt_sign(&c, cfg->jwt_refresh_secret);
    aop_err rc = AOP_ERR_INTERNAL;
    if (access && refresh) {
        out->access = arena_strdup(a, access);
        out->refresh = arena_strdup(a, refresh);
        out->expires_in = cfg->access_token_ttl;
        rc = AOP_OK;
    }
    free(access);
    free(refresh);
    return rc;
}

/* The latest moment any token issued now can be used. */
static void family_expiry(const config *cfg, long long now, char out[25])
{
    long long ttl = cfg->access_token_ttl > cfg->refresh_token_ttl ? cfg->access_token_ttl
                                                                   : cfg->refresh_token_ttl;
    clock_format_rfc3339((now + ttl) * 1000, out);
}

typedef struct {
    const app_ctx *app;
    const store_user *u;
    char fam[UUID_STR_LEN];
    char jti[UUID_STR_LEN];
    long long now;
} start_ctx;

static aop_err start_tx(store *s, void *p)
{
    start_ctx *x = p;
    char now[25], exp[25], fexp[25];
    clock_format_rfc3339(x->now * 1000, now);
    clock_format_rfc3339((x->now + x->app->cfg->refresh_token_ttl) * 1000, exp);
    family_expiry(x->app->cfg, x->now, fexp);
    aop_err rc = store_family_insert(s, x->fam, x->u->id, now, fexp);
    if (rc == AOP_OK)
        rc = store_refresh_insert(s, x->jti, x->fam, x->u->id, now, exp);
    return rc;
}

aop_err auth_session_start(const app_ctx *app, const store_user *u, auth_pair *out, arena *a)
{
    start_ctx x = {.app = app, .u = u, .now = clock_now_ms() / 1000};
    ids_uuid7(x.fam);
    ids_uuid7(x.jti);
    aop_err rc = store_tx(app->store, start_tx, &x);
    if (rc != AOP_OK)
        return rc;
    return sign_pair(app, u, x.fam, x.jti, x.now, out, a);
}

aop_err auth_refresh_claims(const app_ctx *app, const char *refresh_token, auth_claims *out)
{
    return auth_jwt_verify(refresh_token, AUTH_TOKEN_REFRESH, app->cfg->jwt_refresh_secret,
                           clock_now_ms() / 1000, out) == AOP_OK
               ? AOP_OK
               : AOP_ERR_UNAUTHORIZED;
}

typedef struct {
    const app_ctx *app;
    const auth_claims *c;
    store_user *u;
    arena *a;
    char next_jti[UUID_STR_LEN];
    long long now;
    bool reused;    /* a spent token: the family was revoked, commit that */
    bool refused;   /* unknown token, revoked family, inactive user */
} refresh_ctx;

static aop_err refresh_tx(store *s, void *p)
{
    refresh_ctx *x = p;
    store_refresh r;
    char now[25], exp[25], fexp[25];
    bool won = false;
    clock_format_rfc3339(x->now * 1000, now);
    aop_err rc = store_refresh_get(s, x->c->jti, &r);
    if (rc == AOP_ERR_NOT_FOUND || (rc == AOP_OK && (r.family_revoked ||
                                                     strcmp(r.family_id, x->c->fam) != 0 ||
                                                     strcmp(r.user_id, x->c->sub) != 0))) {
        x->refused = true;
        return AOP_OK;
    }
    if (rc == AOP_OK)
        rc = store_user_get_by_id(s, r.user_id, x->u, x->a);
    if (rc == AOP_OK && !r.used_at[0])
        rc = store_refresh_use(s, r.jti, now, &won);
    if (rc != AOP_OK)
        return rc;
    if (!won) {
        x->reused = true;
        return store_family_revoke(s, r.family_id, now, "refresh token reused");
    }
    if (!x->u->is_active) {
        x->refused = true;
        return AOP_OK;
    }
    clock_format_rfc3339((x->now + x->app->cfg->refresh_token_ttl) * 1000, exp);
    family_expiry(x->app->cfg, x->now, fexp);
    rc = store_refresh_insert(s, x->next_jti, r.family_id, r.user_id, now, exp);
    if (rc == AOP_OK)
        rc = store_family_extend(s, r.family_id, fexp);
    return rc;
}

aop_err auth_session_refresh(const app_ctx *app, const char *refresh_token, auth_pair *out,
                             store_user *u, bool *reused, arena *a)
{
    auth_claims c;
    *reused = false;
    memset(u, 0, sizeof(*u));
    if (auth_refresh_claims(app, refresh_token, &c) != AOP_OK)
        return AOP_ERR_UNAUTHORIZED;
    refresh_ctx x = {.app = app, .c = &c, .u = u, .a = a, .now = clock_now_ms() / 1000};
    ids_uuid7(x.next_jti);
    aop_err rc = store_tx(app->store, refresh_tx, &x);
    if (rc != AOP_OK)
        return rc;
    if (x.reused) {
        *reused = true;
        mirror_revoked(app, 'f', c.fam, app->cfg->refresh_token_ttl * 1000);
        return AOP_ERR_UNAUTHORIZED;
    }
    if (x.refused)
        return AOP_ERR_UNAUTHORIZED;
    return sign_pair(app, u, c.fam, x.next_jti, x.now, out, a);
}

/* ---- revoking ---- */

aop_err auth_revoke_access(const app_ctx *app, const auth_claims *c)
{
    char exp[25];
    clock_format_rfc3339(c->exp * 1000, exp);
    aop_err rc = store_access_revoke(app->store, c->jti, c->sub, exp);
    if (rc == AOP_OK)
        mirror_revoked(app, 'a', c->jti, (c->exp - clock_now_ms() / 1000) * 1000);
    return rc;
}

aop_err auth_revoke_family(const app_ctx *app, const char *fam, const char *reason)
{
    char now[25];
    clock_format_rfc3339(clock_now_ms(), now);
    aop_err rc = store_family_revoke(app->store, fam, now, reason);
    if (rc == AOP_OK)
        mirror_revoked(app, 'f', fam, app->cfg->refresh_token_ttl * 1000);
    return rc;
}

aop_err auth_revoke_user(const app_ctx *app, const char *user_id, const char *reason, arena *a)
{
    char now[25];
    store_id *ids = NULL;
    int n = 0;
    clock_format_rfc3339(clock_now_ms(), now);
    aop_err rc = store_families_revoke_user(app->store, user_id, now, reason, &ids, &n, a);
    for (int i = 0; rc == AOP_OK && i < n; i++)
        mirror_revoked(app, 'f', ids[i], app->cfg->refresh_token_ttl * 1000);
    return rc;
}

void auth_prune(const app_ctx *app)
{
    char now[25];
    long long n = 0;
    clock_format_rfc3339(clock_now_ms(), now);
    if (store_tokens_prune(app->store, now, &n) == AOP_OK && n > 0)
        log_info("expired tokens and revocations pruned", LF_I("rows", n));
}
