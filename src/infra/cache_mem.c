/*
 * The in-process cache backend: striped hash tables with per-stripe mutexes,
 * per-stripe LRU lists and byte budgets, lazy TTL expiry, and a separate
 * never-evicted table for counters. The choices are explained in cache.h.
 */
#include "infra/cache.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/ids.h"
#include "core/mem.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 16
#define SWEEP_EVERY_MS 1000

/* One cached value, key and value in the same allocation. */
typedef struct entry {
    struct entry *hnext;      /* next in the bucket's chain */
    struct entry *prev, *next; /* LRU list: prev is more recent */
    uint64_t hash;
    int64_t expires_ms;
    size_t klen, vlen;
    char data[];               /* key, NUL, value, NUL */
} entry;

_Static_assert(sizeof(entry) <= CACHE_MEM_ENTRY_OVERHEAD,
               "CACHE_MEM_ENTRY_OVERHEAD must cover the entry header");

/* A chained hash table with its own lock and LRU list. */
typedef struct {
    pthread_mutex_t mu;
    entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    size_t bytes;    /* charged bytes of the entries held */
    entry *head, *tail; /* most and least recently used */
    int64_t next_sweep_ms;
    char pad[64];    /* keeps neighbouring stripes' locks off one cache line */
} stripe;

typedef struct {
    stripe *stripes;
    unsigned nstripes;
    size_t budget;
    size_t share;    /* budget / nstripes: each stripe's budget */
    uint64_t seed;
    int64_t (*now_ms)(void);
    stripe counters; /* values are long long; never evicted, outside the budget */
} mem;

static uint64_t hash_key(uint64_t seed, const char *key, size_t *klen)
{
    *klen = strlen(key);
    return hash_seeded(seed, key, *klen);
}

static void stripe_init(stripe *s)
{
    pthread_mutex_init(&s->mu, NULL);
    s->nbuckets = INITIAL_BUCKETS;
    s->buckets = xcalloc(s->nbuckets, sizeof(*s->buckets));
}

/* Frees every entry and the buckets; the stripe cannot be used afterwards. */
static void stripe_destroy(stripe *s)
{
    entry *e = s->head;
    while (e) {
        entry *next = e->next;
        free(e);
        e = next;
    }
    free(s->buckets);
    s->buckets = NULL;
    pthread_mutex_destroy(&s->mu);
}

/* The link that points at key's entry, or at the NULL ending its chain. */
static entry **find(stripe *s, uint64_t hash, const char *key, size_t klen)
{
    entry **link = &s->buckets[hash & (s->nbuckets - 1)];
    for (; *link; link = &(*link)->hnext) {
        entry *e = *link;
        if (e->hash == hash && e->klen == klen && memcmp(e->data, key, klen) == 0)
            break;
    }
    return link;
}

static void lru_unlink(stripe *s, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(stripe *s, entry *e)
{
    e->prev = NULL;
    e->next = s->head;
    if (s->head)
        s->head->prev = e;
    else
        s->tail = e;
    s->head = e;
}

static size_t charge_of(const entry *e)
{
    return CACHE_MEM_ENTRY_OVERHEAD + e->klen + 1 + e->vlen + 1;
}

/* Unlinks *link's entry from its chain and the LRU list, uncharges and frees it. */
static void remove_at(stripe *s, entry **link)
{
    entry *e = *link;
    *link = e->hnext;
    lru_unlink(s, e);
    s->count--;
    s->bytes -= charge_of(e);
    free(e);
}

static void remove_entry(stripe *s, entry *e)
{
    entry **link = &s->buckets[e->hash & (s->nbuckets - 1)];
    while (*link != e)
        link = &(*link)->hnext;
    remove_at(s, link);
}

/* Doubles the bucket array once chains average more than one entry. */
static void maybe_grow(stripe *s)
{
    if (s->count <= s->nbuckets || s->nbuckets > SIZE_MAX / 2 / sizeof(entry *))
        return;
    size_t n = s->nbuckets * 2;
    entry **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < s->nbuckets; i++) {
        entry *e = s->buckets[i];
        while (e) {
            entry *next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

/* Adds e (not yet in the table) as the most recently used entry. */
static void insert(stripe *s, entry *e)
{
    entry **head = &s->buckets[e->hash & (s->nbuckets - 1)];
    e->hnext = *head;
    *head = e;
    lru_push_front(s, e);
    s->count++;
    s->bytes += charge_of(e);
    maybe_grow(s);
}

static int expired(const entry *e, int64_t now)
{
    return now >= e->expires_ms;
}

/* Frees every expired entry of the stripe. */
static void sweep(stripe *s, int64_t now)
{
    entry *e = s->tail;
    while (e) {
        entry *prev = e->prev;
        if (expired(e, now))
            remove_entry(s, e);
        e = prev;
    }
}

/* Frees entries until need more bytes fit in share: expired ones first (a
 * full sweep at most every SWEEP_EVERY_MS), then the least recently used. */
static void make_room(stripe *s, size_t share, size_t need, int64_t now)
{
    if (s->bytes + need <= share)
        return;
    if (now >= s->next_sweep_ms) {
        sweep(s, now);
        s->next_sweep_ms = now + SWEEP_EVERY_MS;
    }
    while (s->tail && s->bytes + need > share)
        remove_entry(s, s->tail);
}

static stripe *stripe_of(mem *m, uint64_t hash)
{
    return &m->stripes[(hash >> 56) & (m->nstripes - 1)];
}

static int64_t expiry(int64_t now, long long ttl_ms)
{
    return now > 0 && ttl_ms > INT64_MAX - now ? INT64_MAX : now + ttl_ms;
}

/* A new entry holding copies of key and val, or NULL when its charge would
 * exceed share (it could never be stored). */
static entry *entry_new(const char *key, size_t klen, uint64_t hash, const void *val,
                        size_t len, size_t share)
{
    size_t fixed = CACHE_MEM_ENTRY_OVERHEAD + klen + 2;
    if (fixed > share || len > share - fixed)
        return NULL;
    entry *e = xmalloc(sizeof(entry) + klen + 1 + len + 1);
    memset(e, 0, sizeof(*e));
    e->hash = hash;
    e->klen = klen;
    e->vlen = len;
    memcpy(e->data, key, klen + 1);
    if (len)
        memcpy(e->data + klen + 1, val, len);
    e->data[klen + 1 + len] = '\0';
    return e;
}

static aop_err mem_get(void *h, const char *key, char **val, size_t *len)
{
    mem *m = h;
    size_t klen;
    uint64_t hash = hash_key(m->seed, key, &klen);
    stripe *s = stripe_of(m, hash);
    aop_err rc = AOP_ERR_NOT_FOUND;
    int64_t now = m->now_ms();
    pthread_mutex_lock(&s->mu);
    entry **link = find(s, hash, key, klen);
    entry *e = *link;
    if (!e)
        goto out;
    if (expired(e, now)) {
        remove_at(s, link);
        goto out;
    }
    lru_unlink(s, e);
    lru_push_front(s, e);
    *val = xmalloc(e->vlen + 1);
    memcpy(*val, e->data + e->klen + 1, e->vlen + 1);
    *len = e->vlen;
    rc = AOP_OK;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* set (nx = 0) and add (nx = 1). The copy is made before taking the lock. */
static aop_err store(mem *m, const char *key, const void *val, size_t len, long long ttl_ms,
                     int nx)
{
    size_t klen;
    uint64_t hash = hash_key(m->seed, key, &klen);
    stripe *s = stripe_of(m, hash);
    entry *e = entry_new(key, klen, hash, val, len, m->share);
    aop_err rc = AOP_OK;
    int64_t now = m->now_ms();
    pthread_mutex_lock(&s->mu);
    entry **link = find(s, hash, key, klen);
    if (*link && nx && !expired(*link, now)) {
        rc = AOP_ERR_CONFLICT;
        goto out;
    }
    if (*link)
        remove_at(s, link);
    if (!e) /* larger than the stripe's share: not stored, the next get misses */
        goto out;
    e->expires_ms = expiry(now, ttl_ms);
    make_room(s, m->share, charge_of(e), now);
    insert(s, e);
    e = NULL;
out:
    pthread_mutex_unlock(&s->mu);
    free(e);
    return rc;
}

static aop_err mem_set(void *h, const char *key, const void *val, size_t len, long long ttl_ms)
{
    return store(h, key, val, len, ttl_ms, 0);
}

static aop_err mem_add(void *h, const char *key, const void *val, size_t len, long long ttl_ms)
{
    return store(h, key, val, len, ttl_ms, 1);
}

static aop_err mem_del(void *h, const char *key)
{
    mem *m = h;
    size_t klen;
    uint64_t hash = hash_key(m->seed, key, &klen);
    stripe *s = stripe_of(m, hash);
    pthread_mutex_lock(&s->mu);
    entry **link = find(s, hash, key, klen);
    if (*link)
        remove_at(s, link);
    pthread_mutex_unlock(&s->mu);
    return AOP_OK;
}

/* Counters are entries of m->counters whose value is a long long; they never
 * expire and nothing evicts them. */
static aop_err mem_incr(void *h, const char *key, long long *out)
{
    mem *m = h;
    size_t klen;
    uint64_t hash = hash_key(m->seed, key, &klen);
    stripe *s = &m->counters;
    aop_err rc = AOP_OK;
    pthread_mutex_lock(&s->mu);
    entry *e = *find(s, hash, key, klen);
    if (!e) {
        long long zero = 0;
        e = entry_new(key, klen, hash, &zero, sizeof(zero), SIZE_MAX);
        e->expires_ms = INT64_MAX;
        insert(s, e);
    }
    long long v;
    memcpy(&v, e->data + klen + 1, sizeof(v));
    if (v == LLONG_MAX) {
        rc = AOP_ERR_INTERNAL;
        goto out;
    }
    v++;
    memcpy(e->data + klen + 1, &v, sizeof(v));
    *out = v;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static aop_err mem_counter(void *h, const char *key, long long *out)
{
    mem *m = h;
    size_t klen;
    uint64_t hash = hash_key(m->seed, key, &klen);
    stripe *s = &m->counters;
    *out = 0;
    pthread_mutex_lock(&s->mu);
    entry *e = *find(s, hash, key, klen);
    if (e)
        memcpy(out, e->data + klen + 1, sizeof(*out));
    pthread_mutex_unlock(&s->mu);
    return AOP_OK;
}

static aop_err mem_stats(void *h, cache_stats *st)
{
    mem *m = h;
    st->entries = st->bytes = 0;
    for (unsigned i = 0; i < m->nstripes; i++) {
        stripe *s = &m->stripes[i];
        pthread_mutex_lock(&s->mu);
        st->entries += (long long)s->count;
        st->bytes += (long long)s->bytes;
        pthread_mutex_unlock(&s->mu);
    }
    st->budget = m->budget > LLONG_MAX ? LLONG_MAX : (long long)m->budget;
    pthread_mutex_lock(&m->counters.mu);
    st->counters = (long long)m->counters.count;
    pthread_mutex_unlock(&m->counters.mu);
    return AOP_OK;
}

static void mem_close(void *h)
{
    mem *m = h;
    if (!m)
        return;
    for (unsigned i = 0; i < m->nstripes; i++)
        stripe_destroy(&m->stripes[i]);
    stripe_destroy(&m->counters);
    free(m->stripes);
    free(m);
}

static const cache_vtbl mem_vtbl = {
    .name = "memory",
    .get = mem_get,
    .set = mem_set,
    .add = mem_add,
    .del = mem_del,
    .incr = mem_incr,
    .counter = mem_counter,
    .stats = mem_stats,
    .close = mem_close,
};

cache *cache_mem_new_opts(const cache_mem_opts *o)
{
    unsigned n = o->stripes ? o->stripes : CACHE_MEM_STRIPES;
    if (n > 256 || (n & (n - 1)) != 0)
        n = CACHE_MEM_STRIPES;
    mem *m = xcalloc(1, sizeof(*m));
    m->nstripes = n;
    m->budget = o->byte_budget;
    m->share = o->byte_budget / n;
    m->now_ms = o->now_ms ? o->now_ms : clock_mono_ms;
    ids_random(&m->seed, sizeof(m->seed));
    m->stripes = xcalloc(n, sizeof(*m->stripes));
    for (unsigned i = 0; i < n; i++)
        stripe_init(&m->stripes[i]);
    stripe_init(&m->counters);
    return cache_new(&mem_vtbl, m);
}

cache *cache_mem_new(size_t byte_budget)
{
    cache_mem_opts o = {.byte_budget = byte_budget};
    return cache_mem_new_opts(&o);
}
