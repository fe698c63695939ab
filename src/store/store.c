/*
 * store.c - the port's entry: opening a backend, transactions, and the
 * driver entry points the port hands through (each timed, as every
 * operation is: see db.h).
 */
#include "store/store.h"
#include "store/db.h"

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

aop_err store_ping(store *s)
{
    db_op o = db_op_start(s, "ping");
    return db_op_end(&o, s->v->ping(s->h));
}

/* Many instances share a PostgreSQL database: nothing to claim there. */
aop_err store_claim(store *s, char *why, size_t whylen)
{
    if (s->v->claim)
        return s->v->claim(s->h, why, whylen);
    if (whylen)
        why[0] = '\0';
    return AOP_OK;
}

typedef struct {
    store_tx_fn fn;
    void *ctx;
} tx_call;

static aop_err tx_run(db_op *o, void *p)
{
    tx_call *c = p;
    return c->fn(o->s, c->ctx);
}

aop_err store_tx(store *s, store_tx_fn fn, void *ctx)
{
    db_op o = db_op_start(s, "transaction");
    tx_call c = {fn, ctx};
    return db_op_end(&o, db_tx(&o, NULL, tx_run, &c));
}

aop_err store_reclaim(store *s, long long pages)
{
    if (!s->v->reclaim)
        return AOP_OK;
    db_op o = db_op_start(s, "reclaim");
    return db_op_end(&o, s->v->reclaim(s->h, pages));
}

bool store_shared(const store *s)
{
    return s->v->publish != NULL;
}

aop_err store_publish(store *s, const char *payload)
{
    if (!s->v->publish)
        return AOP_OK;
    db_op o = db_op_start(s, "publish");
    return db_op_end(&o, s->v->publish(s->h, payload));
}

aop_err store_listen(store *s, void (*fn)(void *arg, const char *payload), void *arg,
                     const volatile int *stop)
{
    if (!s->v->listen)
        return AOP_ERR_NOT_FOUND;
    return s->v->listen(s->h, fn, arg, stop);
}

/* Indexed by exec_status. */
static const char *const exec_status_names[EXEC_STATUS_COUNT] = {
    "queued", "running", "succeeded", "failed", "cancelled", "timed_out", "waiting", "pending",
    "skipped",
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
