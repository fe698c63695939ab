/*
 * inserter.c - group commit for new executions: callers hand rows over and
 * are told when they are committed; one thread commits whatever has
 * gathered, up to INSERT_BATCH rows per transaction. A commit is most of
 * the cost of a small insert, so throughput grows with the load instead of
 * stalling on it.
 *
 * Each row is checked against its user's quota of active executions in the
 * transaction that inserts it (store_execution_enqueue), the batch's own
 * earlier rows counted: a row over the quota is left out and told so, the
 * rest of the batch goes on. The batch is inserted in user order, the
 * order the quota's locks must be taken in.
 */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "engine/engine_int.h"

#define INSERT_BATCH 512

struct pending {
    pending *next;
    store_execution row; /* input malloc'd */
    long long quota;
    engine_submit_fn fn; /* or NULL and w */
    void *ctx;
    waiter *w; /* held (engine_submit_wait) */
    loop *lp;  /* the loop promised to run it from its insert on, or NULL */
    bool started; /* inserted running, owned by this engine (for lp) */
    aop_err rc; /* the row's own outcome: AOP_OK or AOP_ERR_QUOTA_EXCEEDED */
};

static int queue(engine *e, pending *p)
{
    pthread_mutex_lock(&e->ins_mu);
    if (e->ins_stop) {
        pthread_mutex_unlock(&e->ins_mu);
        free(p->row.input);
        free(p);
        return -1;
    }
    *e->ins_tail = p;
    e->ins_tail = &p->next;
    pthread_cond_signal(&e->ins_cv);
    pthread_mutex_unlock(&e->ins_mu);
    return 0;
}

static pending *new_pending(const store_execution *row, long long quota)
{
    pending *p = xcalloc(1, sizeof(*p));
    p->row = *row;
    p->row.input = xstrdup(row->input ? row->input : "{}");
    p->row.output = p->row.error = NULL;
    p->quota = quota;
    return p;
}

int engine_submit(engine *e, const store_execution *row, long long quota, engine_submit_fn fn,
                  void *ctx)
{
    if (!e)
        return -1;
    pending *p = new_pending(row, quota);
    p->fn = fn;
    p->ctx = ctx;
    return queue(e, p);
}

int engine_submit_wait(engine *e, const store_execution *row, long long quota,
                       long long timeout_ms, engine_run_fn fn, void *ctx)
{
    if (!e)
        return -1;
    waiter *w = waits_hold(e, row->id, timeout_ms, fn, ctx);
    if (!w)
        return -1;
    pending *p = new_pending(row, quota);
    p->w = w;
    if (queue(e, p) == 0)
        return 0;
    waits_drop(e, w);
    return -1;
}

typedef struct {
    pending **rows; /* in user order */
    int n, inserted, queued;
    bool placed; /* some row has a loop's place */
    engine *e;
} batch;

/* p's row as it is written: queued, or (start) running as a claim at now
 * would leave it. Set again on each try of the transaction. */
static void set_start(pending *p, bool start, long long now)
{
    p->started = start;
    p->row.status = start ? EXEC_RUNNING : EXEC_QUEUED;
    p->row.claims = start;
    p->row.deadline_ms = start ? now + p->row.timeout_ms : 0;
    if (start)
        clock_format_rfc3339(now, p->row.started_at);
    else
        p->row.started_at[0] = '\0';
}

/*
 * A row with a place in a loop starts at once, owned by this engine, when
 * no execution is queued: it would have been the next one claimed anyway,
 * and the claim's transaction and the wake-up it waits for are saved.
 * Behind a queue it queues too, so that the claims' round-robin across
 * users decides its turn. The clock is read once the transaction holds
 * the database, as a claim reads it.
 */
static aop_err insert_tx(store *s, void *arg)
{
    batch *b = arg;
    long long active = -1;
    events_acc acc = {.rc = AOP_OK};
    bool start = false;
    aop_err rc;
    if (b->placed && (rc = store_execution_any_queued(s, &start)) != AOP_OK)
        return rc;
    start = b->placed && !start;
    long long now = clock_now_ms(), lease = now + b->e->cfg->execution_lease_ms;
    b->inserted = b->queued = 0;
    for (int i = 0; i < b->n; i++) {
        pending *p = b->rows[i];
        if (i && strcmp(p->row.triggered_by, b->rows[i - 1]->row.triggered_by) != 0)
            active = -1; /* the next user: count again */
        set_start(p, start && p->lp, now);
        p->rc = p->started ? store_execution_enqueue_owned(s, &p->row, p->quota, &active,
                                                           b->e->owner, lease)
                           : store_execution_enqueue(s, &p->row, p->quota, &active);
        if (p->rc == AOP_ERR_QUOTA_EXCEEDED)
            continue;
        if (p->rc != AOP_OK)
            return p->rc;
        b->inserted++;
        b->queued += !p->started;
        if (store_shared(s))
            events_acc_add(b->e, &acc, p->row.id, 1, 1);
    }
    if (b->queued)
        events_queued(b->e); /* sent at the commit */
    return store_shared(s) ? events_acc_end(b->e, &acc) : AOP_OK;
}

/* By user, then by id (UUIDv7: about the order they were made). */
static int by_user(const void *x, const void *y)
{
    const pending *a = *(pending *const *)x, *b = *(pending *const *)y;
    int c = strcmp(a->row.triggered_by, b->row.triggered_by);
    return c ? c : strcmp(a->row.id, b->row.id);
}

/* Takes up to INSERT_BATCH rows off the queue (under ins_mu). */
static pending *take(engine *e)
{
    pending *list = e->ins_head, *last = NULL;
    int n = 0;
    for (pending *p = list; p && n < INSERT_BATCH; p = p->next, n++)
        last = p;
    if (!last)
        return NULL;
    e->ins_head = last->next;
    if (!e->ins_head)
        e->ins_tail = &e->ins_head;
    last->next = NULL;
    return list;
}

void engine_refused_quota(engine *e)
{
    if (e)
        engine_count(&e->stats.quota_refusals, 1);
}

static void commit(engine *e, pending *list)
{
    pending *rows[INSERT_BATCH];
    batch b = {.rows = rows, .e = e};
    for (pending *p = list; p; p = p->next) {
        rows[b.n++] = p;
        /* a workflow with a limit waits for the claim, which counts it */
        if (p->row.max_concurrency == 0 && (p->lp = engine_place(e)))
            b.placed = true;
    }
    qsort(rows, (size_t)b.n, sizeof(rows[0]), by_user);
    aop_err rc = store_tx(e->st, insert_tx, &b);
    /* execution.queued goes out before a loop can start one of them */
    for (int i = 0; rc == AOP_OK && i < b.n; i++)
        if (rows[i]->rc == AOP_OK)
            engine_queued_event(e, &rows[i]->row);
    const char *served = NULL; /* the user of the last row started, in user order */
    for (int i = 0; i < b.n; i++) {
        pending *p = rows[i];
        if (rc == AOP_OK && p->rc == AOP_OK && p->started) {
            served = p->row.triggered_by;
            engine_hand_over(p->lp, &p->row);
        } else if (p->lp) {
            engine_unplace(p->lp);
        }
    }
    if (served) { /* as after a claim: the next one resumes the round after this user */
        pthread_mutex_lock(&e->turn_mu);
        str_copy(e->turn, sizeof(e->turn), served);
        pthread_mutex_unlock(&e->turn_mu);
    }
    if (rc != AOP_OK)
        log_warn("cannot queue executions", LF_S("error", err_code(rc)));
    else if (b.inserted) {
        if (b.queued)
            engine_wake(e);
        engine_hook_changed(e, NULL, NULL); /* stats count queued ones */
    }
    while (list) {
        pending *p = list;
        list = p->next;
        if (rc == AOP_OK && p->rc == AOP_ERR_QUOTA_EXCEEDED)
            engine_refused_quota(e);
        if (p->w)
            waits_release(e, p->w, rc == AOP_OK ? p->rc : rc);
        else
            p->fn(p->ctx, rc == AOP_OK ? p->rc : rc);
        free(p->row.input);
        free(p);
    }
}

static void *inserter_main(void *arg)
{
    engine *e = arg;
    pthread_mutex_lock(&e->ins_mu);
    for (;;) {
        while (!e->ins_head && !e->ins_stop)
            pthread_cond_wait(&e->ins_cv, &e->ins_mu);
        pending *list = take(e);
        if (!list && e->ins_stop)
            break;
        pthread_mutex_unlock(&e->ins_mu);
        commit(e, list);
        pthread_mutex_lock(&e->ins_mu);
    }
    pthread_mutex_unlock(&e->ins_mu);
    return NULL;
}

int inserter_start(engine *e)
{
    if (pthread_create(&e->ins_thread, NULL, inserter_main, e) != 0)
        return -1;
    e->ins_on = true;
    return 0;
}

/* Commits what is queued, then stops; later submissions are refused. */
void inserter_stop(engine *e)
{
    pthread_mutex_lock(&e->ins_mu);
    e->ins_stop = true;
    pthread_cond_signal(&e->ins_cv);
    pthread_mutex_unlock(&e->ins_mu);
    if (e->ins_on)
        pthread_join(e->ins_thread, NULL);
    e->ins_on = false;
}
