/*
 * The in-process lock backend: striped chained hash tables of
 * key -> {owner token, expiry}, each stripe with a mutex and a condition
 * variable on which waiters sleep until a release (or the holder's expiry).
 * The semantics are in lock.h.
 *
 * Reclaiming: release frees its entry; an expired entry is reused by the
 * next acquire of its key and freed by a release or extend that meets it.
 * Keys that are taken and never released are freed by a sweep of the stripe
 * that runs whenever the stripe is about to grow its bucket array (count
 * reaches the bucket count): the table only grows when, after the sweep, at
 * least half of that many entries are still live. So a sweep either frees
 * half of the stripe or doubles it, and costs O(1) per insert over time.
 *
 * Waiting: a waiter sleeps on its stripe's condition variable (on
 * CLOCK_MONOTONIC) until the earlier of its deadline and the holder's
 * expiry; a release broadcasts to the stripe when anyone waits there. Other
 * keys' waiters in the same stripe wake too, find their key still held and
 * sleep again.
 */
#include "core/clock.h"
#include "core/hash.h"
#include "core/ids.h"
#include "core/mem.h"
#include "core/str.h"
#include "infra/lock.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INITIAL_BUCKETS 8
#define NS_PER_MS 1000000LL

typedef struct entry {
    struct entry *next; /* next in the bucket's chain */
    uint64_t hash;
    int64_t expires_ms; /* on the backend's clock; free when now >= expires_ms */
    size_t klen;
    char token[LOCK_TOKEN_LEN];
    char key[];         /* klen bytes and a NUL */
} entry;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* broadcast by releases while waiters > 0 */
    entry **buckets;
    size_t nbuckets;    /* a power of two */
    size_t count;
    unsigned waiters;   /* threads asleep on cv */
    char pad[64];       /* keeps neighbouring stripes' locks off one cache line */
} stripe;

typedef struct {
    stripe *stripes;
    unsigned nstripes;
    uint64_t seed;
    int64_t (*now_ms)(void);
} mem;

static void stripe_init(stripe *s)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->mu, NULL);
    s->nbuckets = INITIAL_BUCKETS;
    s->buckets = xcalloc(s->nbuckets, sizeof(*s->buckets));
}

static void stripe_destroy(stripe *s)
{
    for (size_t i = 0; i < s->nbuckets; i++) {
        entry *e = s->buckets[i];
        while (e) {
            entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = NULL;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

/* The link that points at key's entry, or at the NULL ending its chain. */
static entry **find(stripe *s, uint64_t hash, const char *key, size_t klen)
{
    entry **link = &s->buckets[hash & (s->nbuckets - 1)];
    for (; *link; link = &(*link)->next) {
        entry *e = *link;
        if (e->hash == hash && e->klen == klen && memcmp(e->key, key, klen) == 0)
            break;
    }
    return link;
}

static void remove_at(stripe *s, entry **link)
{
    entry *e = *link;
    *link = e->next;
    s->count--;
    free(e);
}

static int expired(const entry *e, int64_t now)
{
    return now >= e->expires_ms;
}

/* Frees every expired entry of the stripe. */
static void sweep(stripe *s, int64_t now)
{
    for (size_t i = 0; i < s->nbuckets; i++) {
        entry **link = &s->buckets[i];
        while (*link) {
            if (expired(*link, now))
                remove_at(s, link);
            else
                link = &(*link)->next;
        }
    }
}

static void grow(stripe *s)
{
    if (s->nbuckets > SIZE_MAX / 2 / sizeof(entry *))
        return;
    size_t n = s->nbuckets * 2;
    entry **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < s->nbuckets; i++) {
        entry *e = s->buckets[i];
        while (e) {
            entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

/* Before an insert: once the stripe holds as many entries as buckets, sweep
 * the expired ones, and double the buckets if half or more are still live. */
static void make_room(stripe *s, int64_t now)
{
    if (s->count < s->nbuckets)
        return;
    sweep(s, now);
    if (s->count >= s->nbuckets / 2)
        grow(s);
}

static int64_t expiry(int64_t now, long long ttl_ms)
{
    return now > 0 && ttl_ms > INT64_MAX - now ? INT64_MAX : now + ttl_ms;
}

/* A key's place: its length (checked), hash and stripe. */
typedef struct {
    size_t klen;
    uint64_t hash;
    stripe *s;
} slot;

/* 0 with *sl filled, or -1 when key is empty or longer than LOCK_KEY_MAX. */
static int locate(mem *m, const char *key, slot *sl)
{
    sl->klen = strnlen(key, LOCK_KEY_MAX + 1);
    if (sl->klen == 0 || sl->klen > LOCK_KEY_MAX)
        return -1;
    sl->hash = hash_seeded(m->seed, key, sl->klen);
    sl->s = &m->stripes[(sl->hash >> 56) & (m->nstripes - 1)];
    return 0;
}

static int token_ok(const char *token)
{
    return strnlen(token, LOCK_TOKEN_LEN) < LOCK_TOKEN_LEN;
}

static aop_err mem_acquire(void *h, const char *key, const char *token, long long ttl_ms)
{
    mem *m = h;
    slot sl;
    if (locate(m, key, &sl) < 0 || !token_ok(token) || ttl_ms <= 0)
        return AOP_ERR_INTERNAL;
    stripe *s = sl.s;
    aop_err rc = AOP_OK;
    pthread_mutex_lock(&s->mu);
    int64_t now = m->now_ms();
    entry *e = *find(s, sl.hash, key, sl.klen);
    if (e && !expired(e, now)) {
        rc = AOP_ERR_CONFLICT;
        goto out;
    }
    if (!e) { /* an expired entry of the key is reused as it is */
        make_room(s, now);
        e = xmalloc(sizeof(entry) + sl.klen + 1);
        e->hash = sl.hash;
        e->klen = sl.klen;
        memcpy(e->key, key, sl.klen);
        e->key[sl.klen] = '\0';
        entry **head = &s->buckets[sl.hash & (s->nbuckets - 1)];
        e->next = *head;
        *head = e;
        s->count++;
    }
    str_copy(e->token, sizeof(e->token), token);
    e->expires_ms = expiry(now, ttl_ms);
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* release (ttl_ms 0) and extend (ttl_ms > 0): acts on key only when a live
 * entry of token holds it. Expired entries met on the way are freed. */
static aop_err checked(mem *m, const char *key, const char *token, long long ttl_ms)
{
    slot sl;
    if (locate(m, key, &sl) < 0 || ttl_ms < 0)
        return AOP_ERR_INTERNAL;
    if (!token_ok(token))
        return AOP_ERR_NOT_FOUND; /* too long to be anyone's token */
    stripe *s = sl.s;
    aop_err rc = AOP_ERR_NOT_FOUND;
    int freed = 0;
    pthread_mutex_lock(&s->mu);
    int64_t now = m->now_ms();
    entry **link = find(s, sl.hash, key, sl.klen);
    entry *e = *link;
    if (!e)
        goto out;
    if (expired(e, now)) {
        remove_at(s, link);
        freed = 1;
        goto out;
    }
    if (strcmp(e->token, token) != 0)
        goto out;
    rc = AOP_OK;
    if (ttl_ms > 0) {
        e->expires_ms = expiry(now, ttl_ms);
    } else {
        remove_at(s, link);
        freed = 1;
    }
out:;
    int wake = freed && s->waiters > 0;
    pthread_mutex_unlock(&s->mu);
    if (wake)
        pthread_cond_broadcast(&s->cv);
    return rc;
}

static aop_err mem_release(void *h, const char *key, const char *token)
{
    return checked(h, key, token, 0);
}

static aop_err mem_extend(void *h, const char *key, const char *token, long long ttl_ms)
{
    if (ttl_ms <= 0)
        return AOP_ERR_INTERNAL;
    return checked(h, key, token, ttl_ms);
}

static struct timespec ts_of_ns(int64_t ns)
{
    return (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
}

/* now_ns + ms (>= 0) in ns, saturating at INT64_MAX. */
static int64_t after_ms(int64_t now_ns, long long ms)
{
    return ms > (INT64_MAX - now_ns) / NS_PER_MS ? INT64_MAX : now_ns + (int64_t)ms * NS_PER_MS;
}

/* Sleeps on the stripe until key is free or timeout_ms (real monotonic time)
 * has passed. Each sleep ends at the deadline or at the holder's expiry,
 * whichever is first; a release wakes it at once. */
static aop_err mem_wait(void *h, const char *key, long long timeout_ms)
{
    mem *m = h;
    slot sl;
    if (locate(m, key, &sl) < 0 || timeout_ms < 0)
        return AOP_ERR_INTERNAL;
    stripe *s = sl.s;
    int64_t deadline = after_ms(clock_mono_ns(), timeout_ms);
    aop_err rc = AOP_ERR_RESOURCE_LOCKED;
    pthread_mutex_lock(&s->mu);
    s->waiters++;
    for (;;) {
        int64_t now = m->now_ms();
        entry *e = *find(s, sl.hash, key, sl.klen);
        if (!e || expired(e, now)) {
            rc = AOP_OK;
            break;
        }
        int64_t now_ns = clock_mono_ns();
        if (now_ns >= deadline)
            break;
        /* the real clock's now is truncated to ms: never before the true expiry */
        int64_t until = after_ms(now_ns, e->expires_ms - now);
        if (until > deadline)
            until = deadline;
        struct timespec ts = ts_of_ns(until);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    s->waiters--;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static long long mem_entries(void *h)
{
    mem *m = h;
    long long n = 0;
    for (unsigned i = 0; i < m->nstripes; i++) {
        stripe *s = &m->stripes[i];
        pthread_mutex_lock(&s->mu);
        n += (long long)s->count;
        pthread_mutex_unlock(&s->mu);
    }
    return n;
}

static void mem_close(void *h)
{
    mem *m = h;
    if (!m)
        return;
    for (unsigned i = 0; i < m->nstripes; i++)
        stripe_destroy(&m->stripes[i]);
    free(m->stripes);
    free(m);
}

static const lock_vtbl mem_vtbl = {
    .name = "memory",
    .acquire = mem_acquire,
    .release = mem_release,
    .extend = mem_extend,
    .wait = mem_wait,
    .entries = mem_entries,
    .close = mem_close,
};

lock *lock_mem_new_opts(const lock_mem_opts *o)
{
    unsigned n = o->stripes ? o->stripes : LOCK_MEM_STRIPES;
    if (n > 256 || (n & (n - 1)) != 0)
        n = LOCK_MEM_STRIPES;
    mem *m = xcalloc(1, sizeof(*m));
    m->nstripes = n;
    m->now_ms = o->now_ms ? o->now_ms : clock_mono_ms;
    ids_random(&m->seed, sizeof(m->seed));
    m->stripes = xcalloc(n, sizeof(*m->stripes));
    for (unsigned i = 0; i < n; i++)
        stripe_init(&m->stripes[i]);
    return lock_new(&mem_vtbl, m);
}

lock *lock_mem_new(void)
{
    lock_mem_opts o = {0};
    return lock_mem_new_opts(&o);
}
