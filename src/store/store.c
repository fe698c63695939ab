#include "store/store.h"
#include "core/clock.h"
#include "core/log.h"
#include "infra/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

store *store_open(const char *url, long long slow_ms, char *err, size_t errlen)
{
    const store_vtbl *v = NULL;
    void *h = NULL;
    if (strncmp(url, "sqlite://", 9) == 0) {
        v = &store_sqlite_vtbl;
        h = store_sqlite_open(url + 9, err, errlen);
    } else {
        snprintf(err, errlen, "DATABASE_URL: this build supports sqlite:// only");
        return NULL;
    }
    if (!h)
        return NULL;
    store *s = xcalloc(1, sizeof(*s));
    s->v = v;
    s->h = h;
    s->slow_ms = slow_ms;
    return s;
}

void store_close(store *s)
{
    if (!s)
        return;
    s->v->close(s->h);
    free(s);
}

/* Records one operation's duration and logs it when slower than slow_ms. */
static void observe(store *s, const char *op, int64_t start_ns, aop_err rc)
{
    int64_t ns = clock_mono_ns() - start_ns;
    metrics_db_observe(op, ns);
    if (ns / 1000000 >= s->slow_ms)
        log_warn("slow database operation", LF_S("op", op), LF_D("durationMs", ns / 1e6),
                 LF_S("result", err_code(rc)));
}

#define TIMED(op, call)                         \
    do {                                        \
        int64_t t0_ = clock_mono_ns();          \
        aop_err rc_ = (call);                   \
        observe(s, (op), t0_, rc_);             \
        return rc_;                             \
    } while (0)

aop_err store_ping(store *s)
{
    TIMED("ping", s->v->ping(s->h));
}

aop_err store_migrate(store *s, int *applied)
{
    TIMED("migrate", s->v->migrate(s->h, applied));
}

aop_err store_claim(store *s, char *why, size_t whylen)
{
    return s->v->claim(s->h, why, whylen);
}

aop_err store_user_insert(store *s, const store_user *u)
{
    TIMED("user_insert", s->v->user_insert(s->h, u));
}

aop_err store_user_get_by_email(store *s, const char *email, store_user *out, arena *a)
{
    TIMED("user_get_by_email", s->v->user_get_by_email(s->h, email, out, a));
}

aop_err store_user_get_by_id(store *s, const char *id, store_user *out, arena *a)
{
    TIMED("user_get_by_id", s->v->user_get_by_id(s->h, id, out, a));
}

aop_err store_user_update(store *s, const store_user *u)
{
    TIMED("user_update", s->v->user_update(s->h, u));
}

aop_err store_user_set_login(store *s, const char *id, const char *at)
{
    TIMED("user_set_login", s->v->user_set_login(s->h, id, at));
}

aop_err store_user_list(store *s, const store_user_query *q, store_user **out, int *n,
                        long long *total, arena *a)
{
    TIMED("user_list", s->v->user_list(s->h, q, out, n, total, a));
}

aop_err store_family_insert(store *s, const char *id, const char *user_id, const char *created_at,
                            const char *expires_at)
{
    TIMED("family_insert", s->v->family_insert(s->h, id, user_id, created_at, expires_at));
}

aop_err store_family_extend(store *s, const char *id, const char *expires_at)
{
    TIMED("family_extend", s->v->family_extend(s->h, id, expires_at));
}

aop_err store_family_revoke(store *s, const char *id, const char *at, const char *reason)
{
    TIMED("family_revoke", s->v->family_revoke(s->h, id, at, reason));
}

aop_err store_families_revoke_user(store *s, const char *user_id, const char *at,
                                   const char *reason, store_id **ids, int *n, arena *a)
{
    TIMED("families_revoke_user",
          s->v->families_revoke_user(s->h, user_id, at, reason, ids, n, a));
}

aop_err store_refresh_insert(store *s, const char *jti, const char *family_id,
                             const char *user_id, const char *issued_at, const char *expires_at)
{
    TIMED("refresh_insert",
          s->v->refresh_insert(s->h, jti, family_id, user_id, issued_at, expires_at));
}

aop_err store_refresh_get(store *s, const char *jti, store_refresh *out)
{
    TIMED("refresh_get", s->v->refresh_get(s->h, jti, out));
}

aop_err store_refresh_use(store *s, const char *jti, const char *at, bool *won)
{
    TIMED("refresh_use", s->v->refresh_use(s->h, jti, at, won));
}

aop_err store_access_revoke(store *s, const char *jti, const char *user_id,
                            const char *expires_at)
{
    TIMED("access_revoke", s->v->access_revoke(s->h, jti, user_id, expires_at));
}

aop_err store_token_revoked(store *s, const char *jti, const char *fam, bool *revoked)
{
    TIMED("token_revoked", s->v->token_revoked(s->h, jti, fam, revoked));
}

aop_err store_tokens_prune(store *s, const char *now, long long *n)
{
    TIMED("tokens_prune", s->v->tokens_prune(s->h, now, n));
}

aop_err store_apikey_insert(store *s, const store_apikey *k, const char *key_hash)
{
    TIMED("apikey_insert", s->v->apikey_insert(s->h, k, key_hash));
}

aop_err store_apikey_count(store *s, const char *user_id, long long *n)
{
    TIMED("apikey_count", s->v->apikey_count(s->h, user_id, n));
}

aop_err store_apikey_list(store *s, const char *user_id, long long offset, long long limit,
                          store_apikey **out, int *n, long long *total, arena *a)
{
    TIMED("apikey_list", s->v->apikey_list(s->h, user_id, offset, limit, out, n, total, a));
}

aop_err store_apikey_get_by_hash(store *s, const char *key_hash, store_apikey *out, arena *a)
{
    TIMED("apikey_get_by_hash", s->v->apikey_get_by_hash(s->h, key_hash, out, a));
}

aop_err store_apikey_delete(store *s, const char *id, const char *user_id, bool *deleted)
{
    TIMED("apikey_delete", s->v->apikey_delete(s->h, id, user_id, deleted));
}

aop_err store_apikey_touch(store *s, const char *id, const char *at)
{
    TIMED("apikey_touch", s->v->apikey_touch(s->h, id, at));
}

aop_err store_audit_insert(store *s, const store_audit *e)
{
    TIMED("audit_insert", s->v->audit_insert(s->h, e));
}

aop_err store_tx(store *s, store_tx_fn fn, void *ctx)
{
    int64_t t0 = clock_mono_ns();
    aop_err rc = s->v->begin(s->h);
    if (rc == AOP_OK) {
        rc = fn(s, ctx);
        if (rc == AOP_OK)
            rc = s->v->commit(s->h);
        if (rc != AOP_OK)
            s->v->rollback(s->h);
    }
    observe(s, "transaction", t0, rc);
    return rc;
}

aop_err store_workflow_insert(store *s, const store_workflow *w)
{
    TIMED("workflow_insert", s->v->workflow_insert(s->h, w));
}

aop_err store_workflow_get(store *s, const char *id, store_workflow *out, arena *a)
{
    TIMED("workflow_get", s->v->workflow_get(s->h, id, out, a));
}

aop_err store_workflow_update(store *s, const store_workflow *w, long long expected)
{
    TIMED("workflow_update", s->v->workflow_update(s->h, w, expected));
}

aop_err store_workflow_delete(store *s, const char *id, const char *by, const char *at)
{
    TIMED("workflow_delete", s->v->workflow_delete(s->h, id, by, at));
}

aop_err store_workflow_list(store *s, const store_wf_query *q, store_workflow **out, int *n,
                            long long *total, arena *a)
{
    TIMED("workflow_list", s->v->workflow_list(s->h, q, out, n, total, a));
}

aop_err store_workflow_version_insert(store *s, const char *workflow_id,
                                      const store_wf_version *v, const char *snapshot)
{
    TIMED("workflow_version_insert",
          s->v->workflow_version_insert(s->h, workflow_id, v, snapshot));
}

aop_err store_workflow_version_list(store *s, const char *workflow_id, long long offset,
                                    long long limit, store_wf_version **out, int *n,
                                    long long *total, arena *a)
{
    TIMED("workflow_version_list",
          s->v->workflow_version_list(s->h, workflow_id, offset, limit, out, n, total, a));
}

aop_err store_workflow_version_get(store *s, const char *workflow_id, long long version,
                                   char **snapshot, arena *a)
{
    TIMED("workflow_version_get",
          s->v->workflow_version_get(s->h, workflow_id, version, snapshot, a));
}

aop_err store_workflow_summary(store *s, const char *since, store_wf_summary *out, arena *a)
{
    TIMED("workflow_summary", s->v->workflow_summary(s->h, since, out, a));
}
