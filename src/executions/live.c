/*
 * live.c - the streams that follow executions (live.h).
 *
 * Locks: the hub's mu guards its lists; a sub's mu guards what the sub
 * holds. Taken in that order (the hub's first), and never across a store
 * call: the HTTP thread that pulls a sub reads the store with no lock held.
 * Streams of an execution hang in a bucket by a hash of its id, so an event
 * costs a look at the few streams that might follow it.
 */
#include "executions/live.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "engine/exec_event.h"
#include "executions/executions.h"

#define BUCKETS 1024
/* Events one catch-up read takes from the store. */
#define PAGE 256
/* The comment a stream sends when it has been quiet for SSE_PING_MS. */
#define PING ": ping\n\n"

struct live_sub {
    live *hub;
    live_sub *prev, *next;   /* in the hub's list of all subs */
    live_sub *bnext;         /* in its bucket (execution streams) */
    pthread_mutex_t mu;
    char user[UUID_STR_LEN];
    bool admin, viewer;
    bool global;
    char id[UUID_STR_LEN];   /* execution streams: the execution */
    char filter[UUID_STR_LEN]; /* global: "" or the workflow */
    /* execution streams: the next seq to send; catch-up from the store is
     * due; missed counts live events passed over meanwhile */
    long long next_seq;
    bool catchup;
    unsigned missed;
    buf out;                 /* frames to send, from out_off on */
    size_t out_off;
    buf pending;             /* global: "workflowId\0frame\0" records to check */
    bool ended;              /* end once out is sent */
    bool dropped;            /* close the connection */
    bool ping;
    int64_t quiet_since;     /* mono ms of the last bytes sent */
    void (*wake)(void *w);
    void *w;
};

struct live {
    const app_ctx *app;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    live_sub *all;
    live_sub *buckets[BUCKETS];
    long n;
    long long dropped; /* readers dropped for SSE_BUFFER_BYTES */
    bool stopping;
    pthread_t pinger;
};

static unsigned bucket_of(const char *id)
{
    return (unsigned)(hash_seeded(0, id, strlen(id)) % BUCKETS);
}

/* ---- frames ---- */

/* Appends the frame of one event to b: "id:" (durable only), "event:",
 * "data:". -1 when b's bound does not take it. */
static int frame(buf *b, long long seq, const char *type, const char *data)
{
    char head[96];
    int n = seq >= 0 ? snprintf(head, sizeof(head), "id: %lld\nevent: %s\ndata: ", seq, type)
                     : snprintf(head, sizeof(head), "event: %s\ndata: ", type);
    size_t len = strlen(data);
    if (n < 0 || (size_t)n >= sizeof(head) || b->len + (size_t)n + len + 2 > b->max)
        return -1;
    buf_append(b, head, (size_t)n);
    buf_append(b, data, len);
    buf_append(b, "\n\n", 2);
    return 0;
}

static bool is_execution_type(const char *type)
{
    return !strncmp(type, "execution.", 10);
}

/* ---- the hub ---- */

static void wake(live_sub *s)
{
    if (s->wake)
        s->wake(s->w);
}

/* Marks every stream for a ping that has been quiet for SSE_PING_MS. */
static void *pinger_main(void *arg)
{
    live *l = arg;
    long long every = l->app->cfg->sse_ping_ms;
    long long tick = every / 4 < 1000 ? every / 4 : 1000;
    pthread_mutex_lock(&l->mu);
    while (!l->stopping) {
        struct timespec ts;
        clock_deadline_after(tick, &ts);
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        int64_t now = clock_mono_ms();
        for (live_sub *s = l->all; s && !l->stopping; s = s->next) {
            pthread_mutex_lock(&s->mu);
            bool due = !s->ping && now - s->quiet_since >= every;
            s->ping = s->ping || due;
            pthread_mutex_unlock(&s->mu);
            if (due)
                wake(s);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

live *live_new(const app_ctx *app)
{
    live *l = xcalloc(1, sizeof(*l));
    l->app = app;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (pthread_create(&l->pinger, NULL, pinger_main, l) != 0) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    return l;
}

void live_shutdown(live *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    bool was = l->stopping;
    l->stopping = true;
    pthread_cond_broadcast(&l->cv);
    for (live_sub *s = l->all; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        s->ended = true;
        pthread_mutex_unlock(&s->mu);
        wake(s);
    }
    pthread_mutex_unlock(&l->mu);
    if (!was)
        pthread_join(l->pinger, NULL);
}

void live_free(live *l)
{
    if (!l)
        return;
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void live_read_stats(live *l, long *open, long long *dropped)
{
    *open = l ? __atomic_load_n(&l->n, __ATOMIC_RELAXED) : 0;
    *dropped = l ? __atomic_load_n(&l->dropped, __ATOMIC_RELAXED) : 0;
}

/* s falls SSE_BUFFER_BYTES behind (under its lock): its connection closes. */
static void drop_locked(live_sub *s)
{
    if (!s->dropped)
        __atomic_add_fetch(&s->hub->dropped, 1, __ATOMIC_RELAXED);
    s->dropped = true;
    buf_free(&s->out);
    buf_free(&s->pending);
    s->out_off = 0;
}

/* A new sub for c, registered, unless c's user has SSE_MAX_STREAMS. */
static aop_err open_sub(live *l, const wf_caller *c, live_sub **out)
{
    const config *cfg = l->app->cfg;
    live_sub *s = xcalloc(1, sizeof(*s));
    s->hub = l;
    pthread_mutex_init(&s->mu, NULL);
    str_copy(s->user, sizeof(s->user), c->id);
    s->admin = c->admin;
    s->viewer = c->viewer;
    buf_init(&s->out, (size_t)cfg->sse_buffer_bytes);
    buf_init(&s->pending, (size_t)cfg->sse_buffer_bytes);
    s->quiet_since = clock_mono_ms();
    pthread_mutex_lock(&l->mu);
    long mine = 0;
    for (live_sub *t = l->all; t; t = t->next)
        mine += !strcmp(t->user, s->user);
    if (l->stopping || mine >= cfg->sse_max_streams) {
        bool stopping = l->stopping;
        pthread_mutex_unlock(&l->mu);
        buf_free(&s->out);
        buf_free(&s->pending);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return stopping ? AOP_ERR_UNAVAILABLE : AOP_ERR_RATE_LIMITED;
    }
    *out = s;
    return AOP_OK;
}

/* Links s (from open_sub, whose lock on the hub is still held). */
static void link_sub(live *l, live_sub *s)
{
    s->next = l->all;
    if (l->all)
        l->all->prev = s;
    l->all = s;
    if (!s->global) {
        unsigned b = bucket_of(s->id);
        s->bnext = l->buckets[b];
        l->buckets[b] = s;
    }
    __atomic_add_fetch(&l->n, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&l->mu);
}

aop_err live_open_execution(const app_ctx *app, const wf_caller *c, const char *id,
                            long long after, live_sub **out)
{
    aop_err rc = executions_check_read(app, c, id);
    if (rc != AOP_OK)
        return rc;
    live_sub *s = NULL;
    if ((rc = open_sub(app->live, c, &s)) != AOP_OK)
        return rc;
    str_copy(s->id, sizeof(s->id), id);
    s->next_seq = after + 1;
    s->catchup = true;
    link_sub(app->live, s);
    *out = s;
    return AOP_OK;
}

aop_err live_open_all(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                      live_sub **out)
{
    live_sub *s = NULL;
    aop_err rc = open_sub(app->live, c, &s);
    if (rc != AOP_OK)
        return rc;
    s->global = true;
    str_copy(s->filter, sizeof(s->filter), workflow_id ? workflow_id : "");
    link_sub(app->live, s);
    *out = s;
    return AOP_OK;
}

void live_attach(live_sub *s, void (*w)(void *), void *arg)
{
    pthread_mutex_lock(&s->hub->mu);
    s->wake = w;
    s->w = arg;
    pthread_mutex_unlock(&s->hub->mu);
}

void live_done(void *arg)
{
    live_sub *s = arg;
    live *l = s->hub;
    pthread_mutex_lock(&l->mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        l->all = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (!s->global) {
        live_sub **p = &l->buckets[bucket_of(s->id)];
        while (*p && *p != s)
            p = &(*p)->bnext;
        if (*p)
            *p = s->bnext;
    }
    __atomic_sub_fetch(&l->n, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&l->mu);
    buf_free(&s->out);
    buf_free(&s->pending);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- events in ---- */

/* One event for an execution stream (under its lock): sent when it is the
 * next, passed over when sent already, and a gap makes a catch-up due.
 * Live-only events go out unless a catch-up is due (they would come before
 * older durable ones). */
static void to_execution_locked(live_sub *s, const store_exec_event *ev, const char *text)
{
    if (s->ended || s->dropped)
        return;
    if (s->catchup) {
        s->missed++;
        return;
    }
    if (ev->seq >= 0 && ev->seq < s->next_seq)
        return;
    if (ev->seq > s->next_seq) {
        s->catchup = true;
        s->missed++;
        return;
    }
    if (frame(&s->out, ev->seq, ev->type, text) != 0) {
        drop_locked(s); /* the reader fell SSE_BUFFER_BYTES behind */
        return;
    }
    if (ev->seq < 0)
        return;
    s->next_seq++;
    if (!strcmp(ev->type, "execution.finished"))
        s->ended = true;
}

/* One execution event for a global stream (under its lock): queued with
 * its workflow, whose access live_read checks as it sends it. */
static void to_global_locked(live_sub *s, const char *workflow_id, const store_exec_event *ev,
                             const char *text)
{
    if (s->dropped || s->ended || (s->filter[0] && strcmp(s->filter, workflow_id)))
        return;
    size_t before = s->pending.len;
    if (buf_append(&s->pending, workflow_id, strlen(workflow_id) + 1) != 0 ||
        frame(&s->pending, -1, ev->type, text) != 0 ||
        buf_append(&s->pending, "", 1) != 0) {
        s->pending.len = before;
        drop_locked(s);
    }
}

/* The data lines of ev[0..n) (malloc'd), made when a stream first needs
 * them: an event nobody follows costs nothing here. */
static char **texts_of(char **texts, const char *execution_id, const store_exec_event *ev, int n)
{
    if (texts)
        return texts;
    texts = xcalloc((size_t)n, sizeof(*texts));
    for (int k = 0; k < n; k++)
        texts[k] = exec_event_text(execution_id, &ev[k]);
    return texts;
}

void live_events(live *l, const char *workflow_id, const char *execution_id,
                 const store_exec_event *ev, int n)
{
    if (!l)
        return;
    bool lifecycle = false;
    for (int k = 0; k < n; k++)
        lifecycle = lifecycle || is_execution_type(ev[k].type);
    char **texts = NULL;
    pthread_mutex_lock(&l->mu);
    for (live_sub *s = l->buckets[bucket_of(execution_id)]; s; s = s->bnext) {
        if (strcmp(s->id, execution_id))
            continue;
        texts = texts_of(texts, execution_id, ev, n);
        pthread_mutex_lock(&s->mu);
        for (int k = 0; k < n; k++)
            to_execution_locked(s, &ev[k], texts[k]);
        pthread_mutex_unlock(&s->mu);
        wake(s);
    }
    for (live_sub *s = lifecycle ? l->all : NULL; s; s = s->next) {
        if (!s->global)
            continue;
        texts = texts_of(texts, execution_id, ev, n);
        pthread_mutex_lock(&s->mu);
        for (int k = 0; k < n; k++)
            if (is_execution_type(ev[k].type))
                to_global_locked(s, workflow_id, &ev[k], texts[k]);
        pthread_mutex_unlock(&s->mu);
        wake(s);
    }
    pthread_mutex_unlock(&l->mu);
    for (int k = 0; texts && k < n; k++)
        free(texts[k]);
    free(texts);
}

static bool has_global(live *l)
{
    bool any = false;
    pthread_mutex_lock(&l->mu);
    for (live_sub *s = l->all; s && !any; s = s->next)
        any = s->global;
    pthread_mutex_unlock(&l->mu);
    return any;
}

/* Global streams get another instance's lifecycle events from the store
 * (their text names the workflow). */
static void elsewhere_global(live *l, const char *execution_id, long long first, long long last)
{
    arena a = {0};
    store_exec_event *ev = NULL;
    int n = 0;
    long long max = last - first + 1;
    if (store_execution_events(l->app->store, execution_id, first - 1,
                               (int)(max < PAGE ? max : PAGE), &ev, &n, &a) != AOP_OK)
        n = 0;
    for (int k = 0; k < n; k++) {
        if (!is_execution_type(ev[k].type))
            continue;
        const char *at = strstr(ev[k].members, "\"workflowId\":\"");
        char wf[UUID_STR_LEN];
        if (!at || strlen(at + 14) < UUID_STR_LEN - 1)
            continue;
        memcpy(wf, at + 14, UUID_STR_LEN - 1);
        wf[UUID_STR_LEN - 1] = '\0';
        live_events(l, wf, execution_id, &ev[k], 1);
    }
    arena_free(&a);
}

/* For each stream of execution_id: mark(s) under its lock, then a wake. */
static void each_follower(live *l, const char *execution_id, void (*mark)(live_sub *s))
{
    pthread_mutex_lock(&l->mu);
    for (live_sub *s = l->buckets[bucket_of(execution_id)]; s; s = s->bnext) {
        if (strcmp(s->id, execution_id))
            continue;
        pthread_mutex_lock(&s->mu);
        mark(s);
        pthread_mutex_unlock(&s->mu);
        wake(s);
    }
    pthread_mutex_unlock(&l->mu);
}

static void mark_catchup(live_sub *s)
{
    s->catchup = true;
    s->missed++;
}

static void mark_ended(live_sub *s)
{
    s->ended = true;
}

void live_elsewhere(live *l, const char *execution_id, long long first, long long last)
{
    if (!l)
        return;
    each_follower(l, execution_id, mark_catchup);
    if (first > 0 && last >= first && has_global(l))
        elsewhere_global(l, execution_id, first, last);
}

void live_deleted(live *l, const char *execution_id)
{
    if (l)
        each_follower(l, execution_id, mark_ended);
}

/* ---- frames out ---- */

static bool ended_status(exec_status st)
{
    return st != EXEC_QUEUED && st != EXEC_RUNNING && st != EXEC_WAITING;
}

/*
 * Reads the store for an execution stream whose catch-up is due, a page at
 * a time while its buffer has room for more. The status is read before the
 * events: when it had ended, every event was committed before that read,
 * so a short page means the stream has sent all there is and ends. A live
 * event passed over during a read (missed moved) keeps the catch-up due.
 */
static void catch_up(live_sub *s)
{
    live *l = s->hub;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool due = s->catchup && !s->ended && !s->dropped && s->out.len < s->out.max / 2;
        long long after = s->next_seq - 1;
        unsigned gen = s->missed;
        pthread_mutex_unlock(&s->mu);
        if (!due)
            return;
        arena a = {0};
        store_exec_event *ev = NULL;
        int n = 0;
        exec_status st = EXEC_QUEUED;
        aop_err rc = store_execution_status(l->app->store, s->id, &st);
        bool gone = rc == AOP_ERR_NOT_FOUND;
        if (rc == AOP_OK)
            rc = store_execution_events(l->app->store, s->id, after, PAGE, &ev, &n, &a);
        pthread_mutex_lock(&s->mu);
        int k = 0;
        for (; k < n && s->out.len < s->out.max / 2; k++) {
            char *text = ev[k].seq == s->next_seq ? exec_event_text(s->id, &ev[k]) : NULL;
            int bad = !text || frame(&s->out, ev[k].seq, ev[k].type, text);
            free(text);
            if (bad)
                break;
            s->next_seq++;
        }
        bool all = rc == AOP_OK && k == n && n < PAGE;
        if (gone || (all && ended_status(st)))
            s->ended = true;
        else if (rc != AOP_OK)
            s->dropped = true; /* the client reconnects and resumes */
        else if (all && s->missed == gen)
            s->catchup = false;
        bool more = rc == AOP_OK && !all;
        pthread_mutex_unlock(&s->mu);
        arena_free(&a);
        if (!more)
            return;
    }
}

/* Moves the pending lifecycle events of a global stream that its caller
 * may read now into out (access checked as they are sent). */
static void check_pending(live_sub *s)
{
    live *l = s->hub;
    pthread_mutex_lock(&s->mu);
    buf in = s->pending;
    buf_init(&s->pending, s->pending.max);
    pthread_mutex_unlock(&s->mu);
    wf_caller c = {s->user, s->admin, s->viewer};
    char last[UUID_STR_LEN] = "";
    bool last_ok = false;
    for (size_t off = 0; off < in.len;) {
        const char *wf = in.data + off;
        const char *fr = wf + strlen(wf) + 1;
        off = (size_t)(fr - in.data) + strlen(fr) + 1;
        if (strcmp(wf, last)) {
            arena a = {0};
            wf_view v;
            last_ok = c.admin || workflows_view(l->app, &c, wf, &v, &a) == AOP_OK;
            arena_free(&a);
            str_copy(last, sizeof(last), wf);
        }
        if (!last_ok)
            continue;
        pthread_mutex_lock(&s->mu);
        if (!s->dropped && buf_append(&s->out, fr, strlen(fr)) != 0)
            drop_locked(s);
        pthread_mutex_unlock(&s->mu);
    }
    buf_free(&in);
}

/* Up to max bytes of out (under the sub's lock); 0 when it is empty. */
static long take_locked(live_sub *s, char *out, size_t max)
{
    size_t left = s->out.len - s->out_off;
    if (!left)
        return 0;
    size_t n = left < max ? left : max;
    memcpy(out, s->out.data + s->out_off, n);
    s->out_off += n;
    if (s->out_off == s->out.len) {
        buf_reset(&s->out);
        s->out_off = 0;
    }
    s->ping = false;
    s->quiet_since = clock_mono_ms();
    return (long)n;
}

long live_read(void *arg, char *out, size_t max)
{
    live_sub *s = arg;
    pthread_mutex_lock(&s->mu);
    bool dropped = s->dropped;
    long n = dropped ? 0 : take_locked(s, out, max);
    bool pending = s->pending.len > 0;
    pthread_mutex_unlock(&s->mu);
    if (dropped)
        return -2; /* HTTP_STREAM_ABORT */
    if (n)
        return n;
    if (s->global && pending)
        check_pending(s);
    else if (!s->global)
        catch_up(s);
    pthread_mutex_lock(&s->mu);
    n = s->dropped ? -2 : take_locked(s, out, max);
    if (!n && s->ended)
        n = -1; /* HTTP_STREAM_END */
    if (!n && s->ping && max >= sizeof(PING) - 1) {
        memcpy(out, PING, sizeof(PING) - 1);
        n = (long)sizeof(PING) - 1;
        s->ping = false;
        s->quiet_since = clock_mono_ms();
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}
