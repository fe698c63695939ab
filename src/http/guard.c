#include "http/guard.h"
#include "core/log.h"
#include "core/str.h"
#include "infra/limiter.h"

#include <stdio.h>
#include <string.h>

/* Counts the request in the route's bucket and sets the RateLimit-* headers;
 * lim: a hit already counted against the bearer token's user (with its
 * reads), or NULL. 0 after answering 429. */
static int limit_or_reply(http_req *req, http_bucket bucket, const auth_identity *id,
                          const auth_limit *lim)
{
    const app_ctx *app = http_app(req);
    const config *cfg = app->cfg;
    char key[96];
    long long max, window;
    if (bucket == BUCKET_AUTH) {
        STR_CAT(key, sizeof(key), "auth:", http_client_ip(req));
        max = cfg->auth_rate_limit_max;
        window = cfg->auth_rate_limit_window_ms;
    } else if (bucket == BUCKET_HOOK) {
        const char *hook = http_param(req, "id");
        snprintf(key, sizeof(key), "hook:%.40s", hook ? hook : "");
        max = cfg->rate_limit_max;
        window = cfg->rate_limit_window_ms;
    } else {
        /* A key counts against its owner: one budget per user, however
         * many keys the user makes. */
        if (id->via == AUTH_VIA_BEARER || id->via == AUTH_VIA_APIKEY)
            STR_CAT(key, sizeof(key), "user:", id->user.id);
        else
            STR_CAT(key, sizeof(key), "ip:", http_client_ip(req));
        max = cfg->rate_limit_max;
        window = cfg->rate_limit_window_ms;
    }
    limiter_result res;
    aop_err rc;
    if (lim && lim->counted && id->via == AUTH_VIA_BEARER) {
        res = lim->res;
        rc = lim->rc;
    } else {
        /* A hit counted against a token found revoked (or its user gone)
         * belongs to the client's IP, as an unauthenticated request */
        if (lim && lim->counted)
            limiter_unhit(app->limiter, lim->key);
        rc = limiter_hit(app->limiter, key, max, window, &res);
    }
    if (rc != AOP_OK) {
        log_warn("rate limiter unavailable; request let through", LF_S("path", http_path(req)));
        return 1;
    }
    char v[STR_LL_MAX];
    str_from_ll(v, res.limit);
    http_set_header(req, "RateLimit-Limit", v);
    str_from_ll(v, res.remaining);
    http_set_header(req, "RateLimit-Remaining", v);
    str_from_ll(v, res.reset_s);
    http_set_header(req, "RateLimit-Reset", v);
    if (res.allowed)
        return 1;
    str_from_ll(v, res.retry_after_s);
    http_set_header(req, "Retry-After", v);
    http_reply_error(req, AOP_ERR_RATE_LIMITED, "Too many requests; retry later", NULL);
    return 0;
}

static int is_read_method(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

int http_guard_limit_or_reply(http_req *req, const http_route *row, http_bucket bucket,
                              auth_identity *id, http_guard *g)
{
    memset(id, 0, sizeof(*id));
    g->rc = AOP_OK;
    g->why = NULL;
    auth_limit lim, *lp = NULL;
    if (row && row->access != ACCESS_PUBLIC && row->access != ACCESS_HOOK) {
        /* counted with a token's reads when the limiter can (Redis) */
        if (bucket == BUCKET_GENERAL && limiter_rides(http_app(req)->limiter)) {
            const config *cfg = http_app(req)->cfg;
            lim = (auth_limit){.prefix = "user:", .max = cfg->rate_limit_max,
                               .window_ms = cfg->rate_limit_window_ms};
            lp = &lim;
        }
        g->rc = auth_authenticate(http_app(req), http_header(req, "Authorization"),
                                  http_header(req, "X-API-Key"), id, &g->why, http_arena(req),
                                  lp);
    }
    return bucket == BUCKET_NONE || limit_or_reply(req, bucket, id, lp);
}

int http_guard_access_or_reply(http_req *req, const http_route *r, const auth_identity *id,
                               const http_guard *g)
{
    if (r->access == ACCESS_PUBLIC || r->access == ACCESS_HOOK)
        return 1;
    if (g->rc != AOP_OK) {
        if (g->rc == AOP_ERR_UNAUTHORIZED || g->rc == AOP_ERR_TOKEN_EXPIRED)
            http_set_header(req, "WWW-Authenticate", "Bearer");
        if (g->rc == AOP_ERR_UNAVAILABLE)
            http_set_header(req, "Retry-After", "1");
        http_reply_error(req, g->rc, g->why, NULL);
        return 0;
    }
    if (r->access == ACCESS_BEARER && id->via != AUTH_VIA_BEARER) {
        http_reply_error(req, AOP_ERR_FORBIDDEN, "This route needs a bearer token, not an API key",
                         NULL);
        return 0;
    }
    if (id->via == AUTH_VIA_APIKEY &&
        !(is_read_method(http_method(req)) ? id->can_read || id->can_write : id->can_write)) {
        http_reply_error(req, AOP_ERR_FORBIDDEN, "The API key's scopes do not allow this", NULL);
        return 0;
    }
    if (!(http_role_bit(id->user.role) & r->roles)) {
        http_reply_error(req, AOP_ERR_FORBIDDEN, "Your role does not allow this", NULL);
        return 0;
    }
    return 1;
}
