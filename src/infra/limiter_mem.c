/*
 * limiter_mem.c - the in-process limiter: fixed windows in a striped hash table.
 *
 * Layout: keys are hashed with SipHash-2-4 under a random per-limiter seed (as
 * Redis does for its dicts), so clients cannot aim many keys at one chain. The
 * top hash bits pick a stripe, the low bits a bucket inside it. Each stripe has
 * its own mutex, its own chained table and its own share of max_keys: 64 stripes
 * once max_keys >= 4096, fewer below so that each stripe holds at least 64 keys
 * (small stripes would fill up unevenly long before the whole table does).
 * Entries live in one array per stripe, linked by index, with keys copied into
 * them (at most LIMITER_KEY_MAX bytes; the port hashes longer ones). The array
 * doubles on demand up to the stripe's share and never beyond, so a stripe's
 * memory is bounded from the start and a known key costs no allocation at all.
 *
 * Reclaiming, lazily, never by a background thread:
 *   - on access: a hit on a key whose window has ended reuses its entry for the
 *     new window, and expired entries met while walking a chain are unlinked;
 *   - on insert into a full stripe: one pass over the stripe frees every
 *     expired entry; if none had expired, the entry whose window ends soonest
 *     is dropped (counted in evictions). That key merely starts a new window on
 *     its next hit, so under a flood of distinct keys the limits of the keys
 *     closest to their reset loosen first. A hit is never refused for room.
 * The pass costs O(max_keys / stripes) and only happens when a stripe is full.
 *
 * Clock: windows end at now + window_ms of the hit that opened them; a window
 * is over when now >= its end. Should the caller's clock step back, a window
 * is cut so that it never ends more than window_ms after now.
 */
#include "core/ids.h"
#include "core/mem.h"
#include "infra/limiter.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES_MAX 64     /* a power of two, at most 64 (six hash bits) */
#define STRIPE_MIN_KEYS 64
#define MAX_KEYS_LIMIT ((size_t)1 << 30)
#define FIRST_SLOTS 16
#define NIL UINT32_MAX

typedef struct {
    uint64_t hash;
    long long end_ms; /* the window is open while now < end_ms */
    long long count;  /* hits in the window, refused ones included */
    uint32_t next;    /* next entry in the bucket's chain or the free list */
    uint8_t len;
    char key[LIMITER_KEY_MAX + 1];
} entry;

typedef struct {
    pthread_mutex_t mu;
    uint32_t *heads;   /* mask + 1 chain heads: entry index or NIL */
    uint32_t mask;
    entry *slots;      /* nslots entries, held or on the free list */
    uint32_t nslots;
    uint32_t cap;      /* this stripe's share of max_keys */
    uint32_t used;     /* entries held */
    uint32_t free_head;
    unsigned long long evictions;
} stripe;

/* Padded so that neighbouring stripes' mutexes rarely share a cache line. */
typedef union {
    stripe s;
    char pad[128];
} padded_stripe;

typedef struct {
    uint64_t seed[2];
    size_t max_keys;
    unsigned nstripes;
    padded_stripe *stripes;
} mem_limiter;

/* ---- SipHash-2-4 (Aumasson and Bernstein), host byte order ---- */

static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static inline void sipround(uint64_t v[4])
{
    v[0] += v[1]; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32);
    v[2] += v[3]; v[3] = rotl(v[3], 16); v[3] ^= v[2];
    v[0] += v[3]; v[3] = rotl(v[3], 21); v[3] ^= v[0];
    v[2] += v[1]; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32);
}

static inline void sipblock(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sipround(v);
    sipround(v);
    v[0] ^= m;
}

static uint64_t siphash(const uint64_t k[2], const char *p, size_t len)
{
    uint64_t v[4] = {0x736f6d6570736575ULL ^ k[0], 0x646f72616e646f6dULL ^ k[1],
                     0x6c7967656e657261ULL ^ k[0], 0x7465646279746573ULL ^ k[1]};
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m;
        memcpy(&m, p + i, 8);
        sipblock(v, m);
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t j = 0; i + j < len; j++)
        last |= (uint64_t)(unsigned char)p[i + j] << (8 * j);
    sipblock(v, last);
    v[2] ^= 0xff;
    for (int r = 0; r < 4; r++)
        sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- one stripe; every function below runs with the stripe's mutex held ---- */

/* Puts entry i on the free list; link is the chain link that pointed to it. */
static void unlink_entry(stripe *st, uint32_t *link, uint32_t i)
{
    *link = st->slots[i].next;
    st->slots[i].next = st->free_head;
    st->free_head = i;
    st->used--;
}

/* The index of key in its chain, or NIL. Unlinks the expired entries it
 * passes on the way (but never the key's own, which the caller renews). */
static uint32_t find(stripe *st, uint64_t hash, const char *key, size_t len, long long now)
{
    uint32_t *link = &st->heads[hash & st->mask];
    while (*link != NIL) {
        uint32_t i = *link;
        entry *e = &st->slots[i];
        if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0)
            return i;
        if (now >= e->end_ms)
            unlink_entry(st, link, i);
        else
            link = &e->next;
    }
    return NIL;
}

/* One pass over the stripe: frees every expired entry; when none had expired,
 * drops the entry whose window ends soonest instead. Frees at least one entry
 * when the stripe holds any. */
static void reclaim(stripe *st, long long now)
{
    uint32_t *soonest = NULL;
    unsigned freed = 0;
    for (uint32_t b = 0; b <= st->mask; b++) {
        uint32_t *link = &st->heads[b];
        while (*link != NIL) {
            entry *e = &st->slots[*link];
            if (now >= e->end_ms) {
                unlink_entry(st, link, *link);
                freed++;
                continue;
            }
            /* Links before an entry we keep are never rewritten later in this pass. */
            if (!soonest || e->end_ms < st->slots[*soonest].end_ms)
                soonest = link;
            link = &e->next;
        }
    }
    if (freed == 0 && soonest) {
        unlink_entry(st, soonest, *soonest);
        st->evictions++;
    }
}

/* Doubles the entry array, up to cap; the new entries go on the free list. */
static void grow(stripe *st)
{
    uint32_t n = st->nslots ? st->nslots * 2 : FIRST_SLOTS;
    if (n > st->cap || n < st->nslots)
        n = st->cap;
    st->slots = xrealloc(st->slots, (size_t)n * sizeof(entry));
    for (uint32_t i = n; i-- > st->nslots;) {
        st->slots[i].next = st->free_head;
        st->free_head = i;
    }
    st->nslots = n;
}

/* A free entry for a new key, making room first when the stripe is full. */
static uint32_t take_slot(stripe *st, long long now)
{
    if (st->used >= st->cap)
        reclaim(st, now);
    if (st->free_head == NIL)
        grow(st);
    uint32_t i = st->free_head;
    st->free_head = st->slots[i].next;
    st->used++;
    return i;
}

static long long add_sat(long long a, long long b)
{
    return a > LLONG_MAX - b ? LLONG_MAX : a + b;
}

static void fill_result(const entry *e, long long max, long long now, limiter_result *out)
{
    long long left_ms = e->end_ms - now; /* >= 1: the window is open */
    out->allowed = e->count <= max;
    out->limit = max;
    out->remaining = e->count < max ? max - e->count : 0;
    out->reset_s = left_ms / 1000 + (left_ms % 1000 != 0);
    out->retry_after_s = out->allowed ? 0 : out->reset_s;
}

/* The vtbl's hit: see limiter.h. key is at most LIMITER_KEY_MAX bytes. */
static aop_err mem_hit(void *h, const char *key, long long max, long long window_ms,
                       long long now, limiter_result *out)
{
    mem_limiter *m = h;
    size_t len = strnlen(key, LIMITER_KEY_MAX + 1);
    if (len > LIMITER_KEY_MAX || max < 0 || window_ms < 1)
        return AOP_ERR_INTERNAL;
    uint64_t hash = siphash(m->seed, key, len);
    stripe *st = &m->stripes[(hash >> 58) & (m->nstripes - 1)].s;

    pthread_mutex_lock(&st->mu);
    uint32_t i = find(st, hash, key, len, now);
    if (i == NIL) {
        i = take_slot(st, now);
        entry *e = &st->slots[i];
        e->hash = hash;
        e->len = (uint8_t)len;
        memcpy(e->key, key, len);
        e->key[len] = '\0';
        e->end_ms = now; /* expired: opened below */
        e->count = 0;
        e->next = st->heads[hash & st->mask];
        st->heads[hash & st->mask] = i;
    }
    entry *e = &st->slots[i];
    long long end = add_sat(now, window_ms);
    if (now >= e->end_ms || e->end_ms > end) { /* over, or the clock stepped back */
        if (now >= e->end_ms)
            e->count = 0;
        e->end_ms = end;
    }
    if (e->count < LLONG_MAX)
        e->count++;
    fill_result(e, max, now, out);
    pthread_mutex_unlock(&st->mu);
    return AOP_OK;
}

/* The vtbl's unhit: one hit less in key's open window; a window left with
 * none ends now. */
static aop_err mem_unhit(void *h, const char *key, long long now)
{
    mem_limiter *m = h;
    size_t len = strnlen(key, LIMITER_KEY_MAX + 1);
    if (len > LIMITER_KEY_MAX)
        return AOP_ERR_INTERNAL;
    uint64_t hash = siphash(m->seed, key, len);
    stripe *st = &m->stripes[(hash >> 58) & (m->nstripes - 1)].s;
    pthread_mutex_lock(&st->mu);
    uint32_t i = find(st, hash, key, len, now);
    if (i != NIL && now < st->slots[i].end_ms && st->slots[i].count > 0 &&
        --st->slots[i].count == 0)
        st->slots[i].end_ms = now;
    pthread_mutex_unlock(&st->mu);
    return AOP_OK;
}

static void mem_close(void *h)
{
    mem_limiter *m = h;
    if (!m)
        return;
    for (unsigned s = 0; s < m->nstripes; s++) {
        stripe *st = &m->stripes[s].s;
        pthread_mutex_destroy(&st->mu);
        free(st->slots);
        free(st->heads);
    }
    free(m->stripes);
    free(m);
}

const limiter_vtbl limiter_mem_vtbl = {
    .name = "memory",
    .hit = mem_hit,
    .unhit = mem_unhit,
    .close = mem_close,
};

/* Sets up an empty stripe that may hold cap entries. */
static void stripe_init(stripe *st, uint32_t cap)
{
    uint32_t nbuckets = 1;
    while (nbuckets < cap)
        nbuckets *= 2;
    if (pthread_mutex_init(&st->mu, NULL) != 0)
        abort();
    st->heads = xmalloc((size_t)nbuckets * sizeof(uint32_t));
    memset(st->heads, 0xff, (size_t)nbuckets * sizeof(uint32_t)); /* all NIL */
    st->mask = nbuckets - 1;
    st->cap = cap;
    st->free_head = NIL;
}

limiter *limiter_mem_new(size_t max_keys)
{
    if (max_keys < 1)
        max_keys = 1;
    if (max_keys > MAX_KEYS_LIMIT)
        max_keys = MAX_KEYS_LIMIT;
    mem_limiter *m = xcalloc(1, sizeof(*m));
    ids_random(m->seed, sizeof(m->seed));
    m->max_keys = max_keys;
    m->nstripes = 1;
    while (m->nstripes < STRIPES_MAX && (size_t)m->nstripes * 2 * STRIPE_MIN_KEYS <= max_keys)
        m->nstripes *= 2;
    m->stripes = xcalloc(m->nstripes, sizeof(padded_stripe));
    for (unsigned s = 0; s < m->nstripes; s++) {
        size_t cap = max_keys / m->nstripes + (s < max_keys % m->nstripes);
        stripe_init(&m->stripes[s].s, (uint32_t)cap);
    }
    limiter *l = xcalloc(1, sizeof(*l));
    l->v = &limiter_mem_vtbl;
    l->h = m;
    return l;
}

void limiter_mem_stats_get(limiter *l, limiter_mem_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!l || l->v != &limiter_mem_vtbl)
        return;
    mem_limiter *m = l->h;
    out->max_keys = m->max_keys;
    for (unsigned s = 0; s < m->nstripes; s++) {
        stripe *st = &m->stripes[s].s;
        pthread_mutex_lock(&st->mu);
        out->entries += st->used;
        out->slots += st->nslots;
        out->evictions += st->evictions;
        pthread_mutex_unlock(&st->mu);
    }
}
