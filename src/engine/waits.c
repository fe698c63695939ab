/*
 * waits.c - callers waiting for an execution's end, and the maintenance
 * thread: leases, lapsed leases, retention, waits that ran out of time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "engine/engine_int.h"

#define TICK_MS 100
#define REQUEUE_EVERY_MS 1000
/* How often the approvals past their timeout are looked for, and at most
 * how many one look decides. */
#define APPROVALS_EVERY_MS 250
#define APPROVALS_BATCH 100
#define PRUNE_BATCHES_PER_TICK 20

/*
 * A waiter is held while the row it waits for is still being committed
 * (engine_submit_wait): nothing but the inserter takes it off the list
 * then, so the inserter may keep a pointer to it. An end heard meanwhile
 * is kept in `heard` and told when the inserter lets it go.
 */
struct waiter {
    waiter *next, **pprev; /* pprev: the link that points here */
    char id[UUID_STR_LEN];
    int64_t deadline; /* monotonic ms */
    engine_wait_fn fn;
    engine_run_fn run_fn; /* instead of fn, for engine_submit_wait */
    void *ctx;
    bool held;
    int heard; /* while held: 0 nothing, 1 told "not ended", 2 told "ended" */
};

/* Links are written atomically, since one of them is the head that
 * on_event (events.c) reads without the lock. Under e->mu. */
static void link_waiter(engine *e, waiter *w)
{
    w->next = e->waiters;
    w->pprev = &e->waiters;
    if (w->next)
        w->next->pprev = &w->next;
    __atomic_store_n(&e->waiters, w, __ATOMIC_RELAXED);
}

static void unlink_waiter(waiter *w)
{
    if (w->next)
        w->next->pprev = w->pprev;
    __atomic_store_n(w->pprev, w->next, __ATOMIC_RELAXED);
}

static waiter *new_waiter(const char *execution_id, long long timeout_ms, void *ctx)
{
    waiter *w = xcalloc(1, sizeof(*w));
    str_copy(w->id, sizeof(w->id), execution_id);
    w->deadline = engine_mono_ms() + timeout_ms;
    w->ctx = ctx;
    return w;
}

/* Lists w unless the engine is stopping (then frees it): 0 or -1. */
static int add_waiter(engine *e, waiter *w)
{
    pthread_mutex_lock(&e->mu);
    if (__atomic_load_n(&e->stopping, __ATOMIC_SEQ_CST)) {
        pthread_mutex_unlock(&e->mu);
        free(w);
        return -1;
    }
    link_waiter(e, w);
    if (w->deadline < engine_mono_ms() + TICK_MS) /* sooner than the next tick */
        pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return 0;
}

int engine_wait(engine *e, const char *execution_id, long long timeout_ms, engine_wait_fn fn,
                void *ctx)
{
    if (!e)
        return -1;
    waiter *w = new_waiter(execution_id, timeout_ms, ctx);
    w->fn = fn;
    return add_waiter(e, w);
}

waiter *waits_hold(engine *e, const char *execution_id, long long timeout_ms, engine_run_fn fn,
                   void *ctx)
{
    waiter *w = new_waiter(execution_id, timeout_ms, ctx);
    w->run_fn = fn;
    w->held = true;
    return add_waiter(e, w) == 0 ? w : NULL;
}

/* Takes the waiters `match` selects off the list (under e->mu). */
static waiter *take(engine *e, bool (*match)(waiter *, const void *), const void *arg)
{
    waiter *out = NULL, *next;
    for (waiter *w = e->waiters; w; w = next) {
        next = w->next;
        if (match(w, arg)) {
            unlink_waiter(w);
            w->next = out;
            out = w;
        }
    }
    return out;
}

static void tell_one(waiter *w, aop_err rc, bool ended)
{
    if (w->run_fn)
        w->run_fn(w->ctx, rc, ended);
    else
        w->fn(w->ctx, ended);
    free(w);
}

static void tell(waiter *list, bool ended)
{
    while (list) {
        waiter *w = list;
        list = w->next;
        tell_one(w, AOP_OK, ended);
    }
}

typedef struct {
    const char *id;
    bool ended;
} heard_ctx;

/* A held waiter keeps what it heard for waits_release. */
static bool same_id(waiter *w, const void *arg)
{
    const heard_ctx *h = arg;
    if (strcmp(w->id, h->id) != 0)
        return false;
    if (!w->held)
        return true;
    int heard = h->ended ? 2 : 1;
    if (heard > w->heard)
        w->heard = heard;
    return false;
}

static bool any(waiter *w, const void *unused)
{
    (void)w;
    (void)unused;
    return true;
}

static bool due(waiter *w, const void *now)
{
    return !w->held && w->deadline <= *(const int64_t *)now;
}

void waits_notify(engine *e, const char *execution_id, bool ended)
{
    heard_ctx h = {execution_id, ended};
    pthread_mutex_lock(&e->mu);
    waiter *list = e->waiters ? take(e, same_id, &h) : NULL;
    pthread_mutex_unlock(&e->mu);
    tell(list, ended);
}

void waits_release(engine *e, waiter *w, aop_err rc)
{
    pthread_mutex_lock(&e->mu);
    w->held = false;
    bool told = rc != AOP_OK || w->heard;
    if (told)
        unlink_waiter(w);
    else if (w->deadline <= engine_mono_ms())
        pthread_cond_broadcast(&e->cv); /* past its time already */
    pthread_mutex_unlock(&e->mu);
    if (told)
        tell_one(w, rc, rc == AOP_OK && w->heard == 2);
}

void waits_drop(engine *e, waiter *w)
{
    pthread_mutex_lock(&e->mu);
    unlink_waiter(w);
    pthread_mutex_unlock(&e->mu);
    free(w);
}

void engine_notify(engine *e, const char *execution_id)
{
    if (e)
        waits_notify(e, execution_id, true);
}

void waits_end_all(engine *e)
{
    pthread_mutex_lock(&e->mu);
    waiter *list = take(e, any, NULL);
    pthread_mutex_unlock(&e->mu);
    tell(list, false);
}

/* Ends the waits that ran out of time; *next becomes the nearest deadline
 * left (unchanged when there is none nearer). */
void waits_expire(engine *e, int64_t now, int64_t *next)
{
    pthread_mutex_lock(&e->mu);
    waiter *list = take(e, due, &now);
    for (waiter *w = e->waiters; w; w = w->next)
        if (!w->held && w->deadline < *next)
            *next = w->deadline;
    pthread_mutex_unlock(&e->mu);
    tell(list, false);
}

/* ---- maintenance ---- */

static void renew(engine *e)
{
    long long n = 0;
    aop_err rc = store_execution_renew(e->st, e->owner, clock_now_ms() + e->cfg->execution_lease_ms,
                                       &n);
    if (rc != AOP_OK)
        log_warn("cannot renew execution leases", LF_S("error", err_code(rc)));
}

static void requeue(engine *e)
{
    long long n = 0;
    aop_err rc = store_execution_requeue(e->st, clock_now_ms(), &n);
    if (rc != AOP_OK) {
        log_warn("cannot re-queue executions with lapsed leases", LF_S("error", err_code(rc)));
        return;
    }
    if (n > 0) {
        log_warn("re-queued executions whose lease lapsed", LF_I("executions", n));
        engine_count(&e->stats.requeued, n);
        engine_wake(e);
    }
}

/* Deletes history past EXECUTION_RETENTION_DAYS / _MAX a batch per
 * transaction, so that running work waits for one small batch at most,
 * then gives the pages back. */
static void prune(engine *e)
{
    const config *cfg = e->cfg;
    if (cfg->execution_retention_days <= 0 && cfg->execution_retention_max <= 0)
        return;
    char before[25];
    if (cfg->execution_retention_days > 0)
        clock_format_rfc3339(clock_now_ms() - cfg->execution_retention_days * 86400000LL, before);
    long long total = 0, n = ENGINE_PRUNE_BATCH;
    for (int k = 0; k < PRUNE_BATCHES_PER_TICK && n == ENGINE_PRUNE_BATCH; k++) {
        aop_err rc = store_execution_prune(e->st, cfg->execution_retention_days > 0 ? before : NULL,
                                           cfg->execution_retention_max, ENGINE_PRUNE_BATCH, &n);
        if (rc != AOP_OK) {
            log_warn("cannot prune execution history", LF_S("error", err_code(rc)));
            break;
        }
        total += n;
    }
    if (total == 0)
        return;
    engine_count(&e->stats.pruned, total);
    engine_hook_pruned(e);
    if (store_reclaim(e->st, 0) != AOP_OK)
        log_warn("cannot give pruned pages back to the file system");
    log_info("pruned execution history", LF_I("executions", total));
}

typedef struct {
    const store_approval *ap;
    int64_t now;
} expire_ctx;

static aop_err expire_tx(store *s, void *p)
{
    expire_ctx *x = p;
    char at[25];
    clock_format_rfc3339(x->now, at);
    return store_approval_decide(s, x->ap->execution_id, x->ap->node_id, "timeout", NULL, NULL,
                                 at, x->now);
}

void approvals_expire(engine *e)
{
    arena a = {0};
    store_approval *due = NULL;
    int n = 0, queued = 0;
    int64_t now = clock_now_ms();
    aop_err rc = store_approval_due(e->st, now, APPROVALS_BATCH, &due, &n, &a);
    if (rc != AOP_OK)
        log_warn("cannot read the approvals past their timeout", LF_S("error", err_code(rc)));
    for (int k = 0; rc == AOP_OK && k < n; k++) {
        expire_ctx x = {&due[k], now};
        aop_err one = store_tx(e->st, expire_tx, &x);
        if (one == AOP_OK) { /* ours: another instance's decision answers CONFLICT */
            queued++;
            engine_hook_changed(e, NULL, due[k].execution_id);
        } else if (one == AOP_ERR_CONFLICT) {
            /* Decided elsewhere, running again (it is due again once it
             * parks), or ended without it: then it is closed for good. */
            char at[25];
            bool closed = false;
            clock_format_rfc3339(now, at);
            if (store_approval_close(e->st, due[k].execution_id, due[k].node_id, at, &closed) !=
                AOP_OK)
                log_warn("cannot close the approval of an ended execution");
        } else {
            log_warn("cannot time an approval out", LF_S("error", err_code(one)));
        }
    }
    arena_free(&a);
    if (queued > 0)
        engine_queued(e);
}

static void *maint_main(void *arg)
{
    engine *e = arg;
    int64_t now = engine_mono_ms();
    int64_t next_renew = now, next_requeue = now + REQUEUE_EVERY_MS, next_prune = now;
    int64_t next_approvals = now;
    long long renew_every = e->cfg->execution_lease_ms / 3;
    while (!__atomic_load_n(&e->stopping, __ATOMIC_SEQ_CST)) {
        now = engine_mono_ms();
        int64_t wake = now + TICK_MS;
        waits_expire(e, now, &wake);
        if (now >= next_renew) {
            renew(e);
            next_renew = now + renew_every;
        }
        if (now >= next_requeue) {
            requeue(e);
            next_requeue = now + REQUEUE_EVERY_MS;
        }
        if (now >= next_approvals) {
            approvals_expire(e);
            next_approvals = now + APPROVALS_EVERY_MS;
        }
        if (now >= next_prune) {
            prune(e);
            next_prune = now + ENGINE_PRUNE_EVERY_MS;
        }
        pthread_mutex_lock(&e->mu);
        if (!__atomic_load_n(&e->stopping, __ATOMIC_SEQ_CST)) {
            long long ms = wake - engine_mono_ms();
            if (ms > 0) {
                struct timespec ts;
                clock_deadline_after(ms, &ts);
                pthread_cond_timedwait(&e->cv, &e->mu, &ts);
            }
        }
        pthread_mutex_unlock(&e->mu);
    }
    return NULL;
}

int maint_start(engine *e)
{
    return pthread_create(&e->maint, NULL, maint_main, e) == 0 ? 0 : -1;
}
