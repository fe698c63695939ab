/*
 * scheduler.c - the timer heap of due times (scheduler.h).
 *
 * Entries live in one array; the heap is an array of entry indices ordered
 * by next_ms, and each entry knows its place in it, so a changed schedule
 * moves in O(log n). Changes are queued by id (any thread) and applied by
 * the scheduler's thread, which reads the schedule from the store. A
 * schedule is found by id with one pass over the entries, only when it
 * changes.
 */
#include "schedules/scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "schedules/cron.h"
#include "schedules/schedules.h"

#define LOAD_PAGE 1000
#define PRUNE_EVERY_MS (3600LL * 1000)
/* Changes queued beyond this many read every schedule again instead. */
#define DIRTY_MAX 4096
/* Events of schedules: "S <id>" (the engine's kinds are lowercase). */
#define EVENT_KIND 'S'

typedef struct {
    char id[UUID_STR_LEN];
    cron_expr expr;
    cron_zone *zone;
    int64_t next_ms;  /* the due time it waits for; INT64_MAX: none */
    int pos;          /* index in the heap */
    bool pending;     /* buffer_one holds a start */
} entry;

struct scheduler {
    const app_ctx *app;
    pthread_t thread, listener;
    bool listener_on;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    volatile int stop; /* set atomically: the listener reads it without mu */
    entry *ents;
    int *heap;
    int n, cap;
    int npending; /* entries with pending set */
    char (*dirty)[UUID_STR_LEN];
    int ndirty;
    char batch[SCHEDULES_BATCH_MAX][UUID_STR_LEN]; /* run_due's, the thread's alone */
    schedules_outcome outcomes[SCHEDULES_BATCH_MAX];
    bool reload; /* read every schedule again */
};

/* ---- the heap (s->mu held, or the thread alone) ---- */

static bool before(const scheduler *s, int a, int b)
{
    return s->ents[s->heap[a]].next_ms < s->ents[s->heap[b]].next_ms;
}

static void swap(scheduler *s, int a, int b)
{
    int t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
    s->ents[s->heap[a]].pos = a;
    s->ents[s->heap[b]].pos = b;
}

static void fix(scheduler *s, int i)
{
    while (i > 0 && before(s, i, (i - 1) / 2)) {
        swap(s, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->n && before(s, l, m))
            m = l;
        if (r < s->n && before(s, r, m))
            m = r;
        if (m == i)
            return;
        swap(s, i, m);
        i = m;
    }
}

static int find(const scheduler *s, const char *id)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->ents[i].id, id))
            return i;
    return -1;
}

static void set_pending(scheduler *s, entry *e, bool pending)
{
    s->npending += (int)pending - (int)e->pending;
    e->pending = pending;
}

/* Removes entry k: the last entry takes its index. */
static void drop(scheduler *s, int k)
{
    set_pending(s, &s->ents[k], false);
    cron_zone_close(s->ents[k].zone);
    int pos = s->ents[k].pos, last = s->n - 1;
    swap(s, pos, last); /* heap slot of k goes to the end */
    s->n--;
    if (pos < s->n)
        fix(s, pos);
    if (k != last) { /* the last entry moves into index k */
        s->ents[k] = s->ents[last];
        s->heap[s->ents[k].pos] = k;
    }
}

/* ---- due times ---- */

/* The first due time of e to wait for at now, given the latest run or
 * change of the schedule, last (ms, or -1): the latest due time under
 * SCHEDULES_LATE_MS ago and after last, else the next one. */
static int64_t first_due(const entry *e, int64_t now, int64_t last)
{
    int64_t t = 0, late = -1, from = now - SCHEDULES_LATE_MS;
    if (from < 0)
        from = 0;
    for (int i = 0; cron_zone_next(&e->expr, e->zone, from, &t) == 0 && t <= now; i++) {
        late = t;
        from = t;
        if (i > SCHEDULES_LATE_MS / 1000) /* at most one a second */
            break;
    }
    if (late >= 0 && late > last)
        return late;
    return cron_zone_next(&e->expr, e->zone, now, &t) == 0 ? t : INT64_MAX;
}

/* Puts schedule sc in the heap (or takes it out when disabled). */
static void upsert(scheduler *s, const store_schedule *sc, int64_t now)
{
    int k = find(s, sc->id);
    if (!sc->enabled) {
        if (k >= 0)
            drop(s, k);
        return;
    }
    cron_expr c;
    char err[128];
    if (cron_parse(sc->cron, &c, err, sizeof(err)) != 0)
        return;
    cron_zone *z = cron_zone_open(sc->timezone, err, sizeof(err));
    if (!z)
        return;
    if (k < 0) {
        if (s->n >= SCHEDULER_MAX) {
            cron_zone_close(z);
            log_error("too many schedules for one instance", LF_I("max", SCHEDULER_MAX));
            return;
        }
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 64;
            s->ents = xrealloc(s->ents, (size_t)s->cap * sizeof(*s->ents));
            s->heap = xrealloc(s->heap, (size_t)s->cap * sizeof(*s->heap));
        }
        k = s->n++;
        s->heap[k] = k;
        s->ents[k] = (entry){.pos = k};
        str_copy(s->ents[k].id, sizeof(s->ents[k].id), sc->id);
    } else {
        cron_zone_close(s->ents[k].zone);
    }
    entry *e = &s->ents[k];
    e->expr = c;
    e->zone = z;
    set_pending(s, e, sc->pending_for[0] != '\0');
    /* no due time from before the schedule's latest change or run */
    int64_t last = -1, changed = -1;
    if (sc->last_run_at[0])
        clock_parse_rfc3339(sc->last_run_at, 0, &last);
    if (sc->updated_at[0] && clock_parse_rfc3339(sc->updated_at, 0, &changed) == 0 &&
        changed > last)
        last = changed;
    e->next_ms = first_due(e, now, last);
    fix(s, e->pos);
}

static void clear(scheduler *s)
{
    for (int i = 0; i < s->n; i++)
        cron_zone_close(s->ents[i].zone);
    s->n = 0;
    s->npending = 0;
}

/* Reads every enabled schedule (the thread, s->mu not held). */
static void load_all(scheduler *s)
{
    char after[UUID_STR_LEN] = "";
    int64_t now = clock_now_ms();
    pthread_mutex_lock(&s->mu);
    clear(s);
    pthread_mutex_unlock(&s->mu);
    for (;;) {
        arena a = {0};
        store_schedule *rows = NULL;
        int n = 0;
        if (store_schedule_enabled(s->app->store, after, LOAD_PAGE, &rows, &n, &a) != AOP_OK) {
            log_error("cannot read the schedules");
            arena_free(&a);
            pthread_mutex_lock(&s->mu);
            s->reload = true; /* again, at the next wake */
            pthread_mutex_unlock(&s->mu);
            return;
        }
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < n; i++)
            upsert(s, &rows[i], now);
        pthread_mutex_unlock(&s->mu);
        if (n)
            str_copy(after, sizeof(after), rows[n - 1].id);
        arena_free(&a);
        if (n < LOAD_PAGE)
            return;
    }
}

/* Applies the queued changes (the thread, s->mu held; released around
 * the store's reads). */
static void apply_changes(scheduler *s)
{
    if (s->reload) {
        s->reload = false;
        s->ndirty = 0;
        pthread_mutex_unlock(&s->mu);
        load_all(s);
        pthread_mutex_lock(&s->mu);
        return;
    }
    while (s->ndirty > 0) {
        char id[UUID_STR_LEN];
        memcpy(id, s->dirty[--s->ndirty], sizeof(id));
        pthread_mutex_unlock(&s->mu);
        arena a = {0};
        store_schedule sc;
        aop_err rc = store_schedule_get(s->app->store, id, &sc, &a);
        pthread_mutex_lock(&s->mu);
        if (rc == AOP_OK) {
            upsert(s, &sc, clock_now_ms());
        } else if (rc == AOP_ERR_NOT_FOUND) {
            int k = find(s, id);
            if (k >= 0)
                drop(s, k);
        } else {
            s->reload = true;
        }
        arena_free(&a);
    }
}

/* Runs the due time of the earliest entry, with every other entry due at
 * that same instant (up to SCHEDULES_BATCH_MAX), in one transaction
 * (s->mu held; released around it). */
static void run_due(scheduler *s, int64_t now)
{
    entry *e = &s->ents[s->heap[0]];
    int64_t due = e->next_ms;
    /* stalled past the allowance: the latest due time, or the next */
    if (due < now - SCHEDULES_LATE_MS) {
        e->next_ms = first_due(e, now, due);
        fix(s, e->pos);
        return;
    }
    int n = 0;
    while (n < SCHEDULES_BATCH_MAX && s->n && s->ents[s->heap[0]].next_ms == due) {
        e = &s->ents[s->heap[0]];
        str_copy(s->batch[n++], UUID_STR_LEN, e->id);
        int64_t next = 0;
        e->next_ms = cron_zone_next(&e->expr, e->zone, due, &next) == 0 ? next : INT64_MAX;
        fix(s, e->pos);
    }
    pthread_mutex_unlock(&s->mu);
    aop_err rc = schedules_fire(s->app, (const char (*)[UUID_STR_LEN])s->batch, n, due,
                                s->outcomes);
    if (rc != AOP_OK)
        log_warn("due times of schedules did not start", LF_I("schedules", n),
                 LF_S("error", err_code(rc)));
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < n; i++) {
        int k = s->outcomes[i] == SCHEDULES_PENDING ? find(s, s->batch[i]) : -1;
        if (k >= 0)
            set_pending(s, &s->ents[k], true);
    }
}

/* buffer_one starts held back: each one that may go now goes (a pass over
 * the entries only while some start is held). */
static void run_pending(scheduler *s)
{
    for (int i = 0; i < s->n && s->npending > 0; i++) {
        if (!s->ents[i].pending)
            continue;
        char id[UUID_STR_LEN];
        str_copy(id, sizeof(id), s->ents[i].id);
        pthread_mutex_unlock(&s->mu);
        bool still = true;
        if (schedules_fire_pending(s->app, id, &still) != AOP_OK)
            still = true;
        pthread_mutex_lock(&s->mu);
        int k = find(s, id);
        if (k >= 0)
            set_pending(s, &s->ents[k], still);
    }
}

static void wait_until(scheduler *s, int64_t until_ms)
{
    struct timespec ts;
    int64_t wait = until_ms - clock_now_ms();
    if (wait <= 0)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (wait % 1000) * 1000000;
    ts.tv_sec += (time_t)(wait / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

static void *thread_main(void *arg)
{
    scheduler *s = arg;
    int64_t pruned = 0, pending_at = 0;
    load_all(s);
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        if (s->reload || s->ndirty)
            apply_changes(s);
        int64_t now = clock_now_ms();
        if (now - pruned >= PRUNE_EVERY_MS) {
            pruned = now;
            char before[25];
            long long n = 0;
            clock_format_rfc3339(now - SCHEDULES_RUNS_KEEP_MS, before);
            pthread_mutex_unlock(&s->mu);
            store_schedule_runs_prune(s->app->store, before, &n);
            /* and expired webhook Idempotency-Key answers: the hourly
             * housekeeping of triggers is this thread's */
            store_webhook_keys_prune(s->app->store, now, &n);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (s->n && s->ents[s->heap[0]].next_ms <= now) {
            /* A start buffer_one held back goes before a later due time
             * of its schedule: the run it waited for may have ended since
             * the last pass over the held ones. */
            if (s->ents[s->heap[0]].pending)
                run_pending(s);
            run_due(s, now);
            continue;
        }
        bool pend = s->npending > 0;
        if (pend && now >= pending_at) {
            pending_at = now + SCHEDULER_PENDING_MS;
            run_pending(s);
            continue;
        }
        int64_t until = pruned + PRUNE_EVERY_MS;
        if (s->n && s->ents[s->heap[0]].next_ms < until)
            until = s->ents[s->heap[0]].next_ms;
        if (pend && pending_at < until)
            until = pending_at;
        if (!s->stop && !s->reload && !s->ndirty)
            wait_until(s, until);
    }
    clear(s);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- changes ---- */

void scheduler_changed(scheduler *s, const char *id)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    bool queued = false;
    for (int i = 0; i < s->ndirty && !queued; i++)
        queued = !strcmp(s->dirty[i], id);
    if (!queued && s->ndirty < DIRTY_MAX)
        str_copy(s->dirty[s->ndirty++], UUID_STR_LEN, id);
    else if (!queued)
        s->reload = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

aop_err scheduler_publish(store *st, const char *id)
{
    char payload[8 + UUID_STR_LEN];
    snprintf(payload, sizeof(payload), "%c %s", EVENT_KIND, id);
    return store_publish(st, payload);
}

static void on_event(void *arg, const char *payload)
{
    scheduler *s = arg;
    if (!payload) { /* events may have been missed */
        pthread_mutex_lock(&s->mu);
        s->reload = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (payload[0] == EVENT_KIND && payload[1] == ' ' && strlen(payload + 2) == UUID_STR_LEN - 1)
        scheduler_changed(s, payload + 2);
}

static void *listen_main(void *arg)
{
    scheduler *s = arg;
    aop_err rc = store_listen(s->app->store, on_event, s, &s->stop);
    if (rc != AOP_OK)
        log_error("the scheduler stopped listening to other instances",
                  LF_S("error", err_code(rc)));
    return NULL;
}

scheduler *scheduler_start(const app_ctx *app)
{
    scheduler *s = xcalloc(1, sizeof(*s));
    s->app = app;
    s->dirty = xcalloc(DIRTY_MAX, sizeof(*s->dirty));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (store_shared(app->store)) {
        if (pthread_create(&s->listener, NULL, listen_main, s) != 0)
            goto fail;
        s->listener_on = true;
    }
    if (pthread_create(&s->thread, NULL, thread_main, s) != 0)
        goto fail;
    pthread_setname_np(s->thread, "aop-scheduler"); /* for top -H and the benchmark */
    return s;
fail:
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    if (s->listener_on)
        pthread_join(s->listener, NULL);
    free(s->dirty);
    free(s);
    return NULL;
}

void scheduler_stop(scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    if (s->listener_on)
        pthread_join(s->listener, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->ents);
    free(s->heap);
    free(s->dirty);
    free(s);
}
