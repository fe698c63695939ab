/*
 * inserter.c - group commit for new executions: callers hand rows over and
 * are told when they are committed; one thread commits whatever has
 * gathered, up to INSERT_BATCH rows per transaction. A commit is most of
 * the cost of a small insert, so throughput grows with the load instead of
 * stalling on it.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "engine/engine_int.h"

#define INSERT_BATCH 512

struct pending {
    pending *next;
    store_execution row; /* input malloc'd */
    engine_wait_fn fn;
    void *ctx;
};

int engine_submit(engine *e, const store_execution *row, engine_wait_fn fn, void *ctx)
{
    if (!e)
        return -1;
    pending *p = xcalloc(1, sizeof(*p));
    p->row = *row;
    p->row.input = xstrdup(row->input ? row->input : "{}");
    p->row.output = p->row.error = NULL;
    p->fn = fn;
    p->ctx = ctx;
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

typedef struct {
    pending *list;
    engine *e;
} batch;

static aop_err insert_tx(store *s, void *arg)
{
    for (pending *p = ((batch *)arg)->list; p; p = p->next) {
        aop_err rc = store_execution_insert(s, &p->row);
        if (rc != AOP_OK)
            return rc;
    }
    events_queued(((batch *)arg)->e); /* sent at the commit */
    return AOP_OK;
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

static void commit(engine *e, pending *list)
{
    batch b = {list, e};
    aop_err rc = store_tx(e->st, insert_tx, &b);
    if (rc != AOP_OK)
        log_warn("cannot queue executions", LF_S("error", err_code(rc)));
    else {
        engine_wake(e);
        engine_hook_changed(e, NULL, NULL); /* stats count queued ones */
    }
    while (list) {
        pending *p = list;
        list = p->next;
        p->fn(p->ctx, rc == AOP_OK);
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
