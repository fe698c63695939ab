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
    } else if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
        v = &store_pg_vtbl;
        h = store_pg_open(url, err, errlen);
    } else {
        snprintf(err, errlen, "DATABASE_URL: must be sqlite://PATH or postgres://...");
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

/* Indexed by exec_status. */
static const char *const exec_status_names[EXEC_STATUS_COUNT] = {
    "queued", "running", "succeeded", "failed", "cancelled", "timed_out", "pending", "skipped",
};

const char *exec_status_name(exec_status s)
{
    return (unsigned)s < EXEC_STATUS_COUNT ? exec_status_names[s] : "unknown";
}

int exec_status_of(const char *name)
{
    for (int i = 0; name && i < EXEC_STATUS_COUNT; i++)
        if (strcmp(name, exec_status_names[i]) == 0)
            return i;
    return -1;
}

aop_err store_execution_insert(store *s, const store_execution *e)
{
    TIMED("execution_insert", s->v->execution_insert(s->h, e));
}

aop_err store_execution_get(store *s, const char *id, store_execution *out, arena *a)
{
    TIMED("execution_get", s->v->execution_get(s->h, id, out, a));
}

aop_err store_execution_nodes(store *s, const char *id, store_exec_node **out, int *n, arena *a)
{
    TIMED("execution_nodes", s->v->execution_nodes(s->h, id, out, n, a));
}

aop_err store_execution_list(store *s, const store_exec_query *q, store_execution **out, int *n,
                             long long *total, arena *a)
{
    TIMED("execution_list", s->v->execution_list(s->h, q, out, n, total, a));
}

aop_err store_execution_claim(store *s, const char *owner, long long now_ms, const char *now,
                              long long lease_until_ms, int limit, store_execution **out, int *n,
                              arena *a)
{
    TIMED("execution_claim",
          s->v->execution_claim(s->h, owner, now_ms, now, lease_until_ms, limit, out, n, a));
}

aop_err store_execution_renew(store *s, const char *owner, long long lease_until_ms, long long *n)
{
    TIMED("execution_renew", s->v->execution_renew(s->h, owner, lease_until_ms, n));
}

aop_err store_execution_requeue(store *s, long long before_ms, long long *n)
{
    TIMED("execution_requeue", s->v->execution_requeue(s->h, before_ms, n));
}

aop_err store_execution_release(store *s, const char *owner, long long *n)
{
    TIMED("execution_release", s->v->execution_release(s->h, owner, n));
}

aop_err store_execution_owned(store *s, const char *id, const char *owner, long long claims)
{
    TIMED("execution_owned", s->v->execution_owned(s->h, id, owner, claims));
}

aop_err store_execution_node_put(store *s, const char *execution_id, const store_exec_node *n)
{
    TIMED("execution_node_put", s->v->execution_node_put(s->h, execution_id, n));
}

aop_err store_execution_nodes_end(store *s, const char *id, exec_status from, exec_status to,
                                  const char *at, long long *n)
{
    TIMED("execution_nodes_end", s->v->execution_nodes_end(s->h, id, from, to, at, n));
}

aop_err store_execution_finish(store *s, const store_execution *e)
{
    TIMED("execution_finish", s->v->execution_finish(s->h, e));
}

void store_wf_tally_add(store_wf_tally *t, exec_status status, long long duration_ms,
                        long long total_tokens, double cost_usd, const char *at)
{
    t->executions++;
    t->succeeded += status == EXEC_SUCCEEDED;
    t->failed += status == EXEC_FAILED || status == EXEC_TIMED_OUT;
    if (duration_ms >= 0) {
        t->duration_ms_total += duration_ms;
        t->duration_count++;
    }
    t->total_tokens += total_tokens;
    t->cost_usd += cost_usd;
    if (at && strcmp(at, t->last_executed_at) > 0)
        snprintf(t->last_executed_at, sizeof(t->last_executed_at), "%s", at);
}

aop_err store_workflow_analytics_add(store *s, const char *workflow_id, exec_status status,
                                     long long duration_ms, long long total_tokens,
                                     double cost_usd, const char *at)
{
    store_wf_tally t = {0};
    store_wf_tally_add(&t, status, duration_ms, total_tokens, cost_usd, at);
    return store_workflow_analytics_tally(s, workflow_id, &t);
}

aop_err store_workflow_analytics_tally(store *s, const char *workflow_id, const store_wf_tally *t)
{
    TIMED("workflow_analytics_add", s->v->workflow_analytics_add(s->h, workflow_id, t));
}

aop_err store_execution_delete(store *s, const char *id)
{
    TIMED("execution_delete", s->v->execution_delete(s->h, id));
}

aop_err store_execution_stats(store *s, const char *workflow_id, store_exec_totals *t,
                              store_exec_node_stat **nodes, int *n, arena *a)
{
    TIMED("execution_stats", s->v->execution_stats(s->h, workflow_id, t, nodes, n, a));
}

aop_err store_execution_summary(store *s, const char *from, const char *to, store_exec_totals *t,
                                store_exec_model_stat **models, int *nmodels,
                                store_exec_day **days, int *ndays, store_wf_top **top, int *ntop,
                                arena *a)
{
    TIMED("execution_summary", s->v->execution_summary(s->h, from, to, t, models, nmodels, days,
                                                        ndays, top, ntop, a));
}

aop_err store_execution_prune(store *s, const char *before, long long keep, int batch,
                              long long *n)
{
    TIMED("execution_prune", s->v->execution_prune(s->h, before, keep, batch, n));
}

aop_err store_reclaim(store *s, long long pages)
{
    if (!s->v->reclaim)
        return AOP_OK;
    TIMED("reclaim", s->v->reclaim(s->h, pages));
}

bool store_shared(const store *s)
{
    return s->v->publish != NULL;
}

aop_err store_publish(store *s, const char *payload)
{
    if (!s->v->publish)
        return AOP_OK;
    TIMED("publish", s->v->publish(s->h, payload));
}

aop_err store_listen(store *s, void (*fn)(void *arg, const char *payload), void *arg,
                     const volatile int *stop)
{
    if (!s->v->listen)
        return AOP_ERR_NOT_FOUND;
    return s->v->listen(s->h, fn, arg, stop);
}
