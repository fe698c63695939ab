/*
 * events.c - what the engines of processes sharing one database tell each
 * other (store_publish / store_listen; PostgreSQL: NOTIFY on one channel).
 *
 * A payload is "<kind> <owner> [ids...]", owner being the publishing
 * engine's lease owner (its own events come back to it and are skipped):
 *   q   executions were queued: a loop claims.
 *   e   these executions ended: their waiters are told (a `wait: true`
 *       request on one instance for an execution another one ran).
 *   c   this execution was cancelled or deleted: the loop running it drops
 *       it, its waiters are told, and a loop claims (its workflow's limit
 *       has room again).
 *   v   durable events were committed: "id:first:last" for each
 *       execution, so that streams here that follow it read them.
 * Queued and cancel events are sent once per commit; end events carry as
 * many ids as fit in STORE_EVENT_MAX bytes, one per flush of a loop.
 *
 * Delivery is at most once: after the listener lost its connection (a
 * database restart) every loop claims once, and waits not told of an end
 * run to their deadline. Loops also claim every second on their own, so no
 * queued execution depends on an event.
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "engine/engine_int.h"

#define ID_LEN (UUID_STR_LEN - 1)

static aop_err publish(engine *e, char kind, const char *ids)
{
    char payload[STORE_EVENT_MAX + 1];
    int n = snprintf(payload, sizeof(payload), "%c %s%s%s", kind, e->owner, ids ? " " : "",
                     ids ? ids : "");
    if (n < 0 || (size_t)n >= sizeof(payload))
        return AOP_ERR_INTERNAL;
    return store_publish(e->st, payload);
}

void events_queued(engine *e)
{
    if (store_shared(e->st) && publish(e, 'q', NULL) != AOP_OK)
        log_warn("cannot tell other instances of queued executions");
}

void events_cancelled(engine *e, const char *execution_id)
{
    if (store_shared(e->st) && publish(e, 'c', execution_id) != AOP_OK)
        log_warn("cannot tell other instances of a cancelled execution",
                 LF_S("executionId", execution_id));
}

aop_err events_ended(engine *e, run *list)
{
    if (!store_shared(e->st))
        return AOP_OK;
    char ids[STORE_EVENT_MAX - 64];
    size_t len = 0;
    for (run *r = list; r; r = r->touched_next) {
        if (!r->ending || r->lost)
            continue;
        if (len + 1 + ID_LEN >= sizeof(ids)) {
            aop_err rc = publish(e, 'e', ids);
            if (rc != AOP_OK)
                return rc;
            len = 0;
        }
        if (len)
            ids[len++] = ' ';
        memcpy(ids + len, r->row.id, ID_LEN);
        len += ID_LEN;
        ids[len] = '\0';
    }
    return len ? publish(e, 'e', ids) : AOP_OK;
}

void events_acc_add(engine *e, events_acc *a, const char *id, long long first, long long last)
{
    char tok[UUID_STR_LEN + 48];
    int n = snprintf(tok, sizeof(tok), "%s:%lld:%lld", id, first, last);
    if (n < 0 || (size_t)n >= sizeof(tok) || a->rc != AOP_OK)
        return;
    if (a->len + 1 + (size_t)n >= sizeof(a->ids)) {
        a->rc = publish(e, 'v', a->ids);
        a->len = 0;
    }
    if (a->len)
        a->ids[a->len++] = ' ';
    memcpy(a->ids + a->len, tok, (size_t)n + 1);
    a->len += (size_t)n;
}

aop_err events_acc_end(engine *e, events_acc *a)
{
    if (a->rc == AOP_OK && a->len)
        a->rc = publish(e, 'v', a->ids);
    a->len = 0;
    return a->rc;
}

aop_err events_written(engine *e, run *list)
{
    if (!store_shared(e->st))
        return AOP_OK;
    events_acc a = {.rc = AOP_OK};
    for (run *r = list; r; r = r->touched_next)
        if (r->nevs && !r->lost)
            events_acc_add(e, &a, r->row.id, r->evs[0].seq, r->evs[r->nevs - 1].seq);
    return events_acc_end(e, &a);
}

void engine_events_committed(engine *e, const char *execution_id, long long first,
                             long long last)
{
    char tok[UUID_STR_LEN + 48];
    snprintf(tok, sizeof(tok), "%s:%lld:%lld", execution_id, first, last);
    if (store_shared(e->st) && publish(e, 'v', tok) != AOP_OK)
        log_warn("cannot tell other instances of execution events",
                 LF_S("executionId", execution_id));
}

/* Tells the events_elsewhere hook of each "id:first:last" of list. */
static void told_events(engine *e, const char *list)
{
    if (!e->hooks.events_elsewhere)
        return;
    while (*list) {
        while (*list == ' ')
            list++;
        size_t n = strcspn(list, " ");
        char tok[UUID_STR_LEN + 48], id[UUID_STR_LEN];
        long long first = 0, last = 0;
        if (n > ID_LEN && n < sizeof(tok) && list[ID_LEN] == ':') {
            memcpy(tok, list, n);
            tok[n] = '\0';
            memcpy(id, tok, ID_LEN);
            id[ID_LEN] = '\0';
            if (sscanf(tok + ID_LEN, ":%lld:%lld", &first, &last) == 2)
                e->hooks.events_elsewhere(e->hooks.ctx, id, first, last);
        }
        list += n;
    }
}

static void told_cancelled(engine *e, const char *id)
{
    engine_forget_local(e, id);
    if (e->hooks.events_elsewhere)
        e->hooks.events_elsewhere(e->hooks.ctx, id, 0, 0);
}

/* Calls fn(e, id) for each id of the list "id id ...". */
static void each_id(engine *e, const char *ids, void (*fn)(engine *, const char *))
{
    while (*ids) {
        while (*ids == ' ')
            ids++;
        size_t n = strcspn(ids, " ");
        if (n == ID_LEN) {
            char id[UUID_STR_LEN];
            memcpy(id, ids, ID_LEN);
            id[ID_LEN] = '\0';
            fn(e, id);
        }
        ids += n;
    }
}

static void told_ended(engine *e, const char *id)
{
    waits_notify(e, id, true);
}

static void on_event(void *arg, const char *payload)
{
    engine *e = arg;
    if (!payload) {
        for (int k = 0; k < e->nloops; k++)
            engine_wake(e);
        return;
    }
    size_t olen = strlen(e->owner);
    if (strlen(payload) < 3 + olen || payload[1] != ' ')
        return;
    if (!strncmp(payload + 2, e->owner, olen) && (payload[2 + olen] == ' ' || !payload[2 + olen]))
        return; /* our own */
    const char *ids = strchr(payload + 2, ' ');
    ids = ids ? ids + 1 : "";
    switch (payload[0]) {
    case 'q':
        engine_wake(e);
        break;
    case 'e':
        if (__atomic_load_n(&e->waiters, __ATOMIC_RELAXED))
            each_id(e, ids, told_ended);
        break;
    case 'c':
        each_id(e, ids, told_cancelled);
        engine_wake(e);
        break;
    case 'v':
        told_events(e, ids);
        break;
    default:
        break;
    }
}

static void *listen_main(void *arg)
{
    engine *e = arg;
    aop_err rc = store_listen(e->st, on_event, e, &e->stopping);
    if (rc != AOP_OK)
        log_error("the engine stopped listening to other instances",
                  LF_S("error", err_code(rc)));
    return NULL;
}

int events_start(engine *e)
{
    if (!store_shared(e->st))
        return 0;
    if (pthread_create(&e->listener, NULL, listen_main, e) != 0)
        return -1;
    e->listener_on = true;
    return 0;
}

void events_stop(engine *e)
{
    if (e->listener_on)
        pthread_join(e->listener, NULL);
    e->listener_on = false;
}
