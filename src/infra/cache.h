/*
 * cache.h - the cache port: short-lived copies of data, shared by the threads
 * (and, with Redis, by the instances) of the program.
 *
 * A cache is a table of operations (cache_vtbl) plus an opaque handle, chosen
 * once at start from REDIS_URL. Callers use the cache_* functions below,
 * which count hits, misses and backend errors for /metrics and never expose
 * which backend answers. Keys are NUL-terminated strings; values are opaque
 * byte strings (they may hold NUL bytes); TTLs are in milliseconds and must
 * be > 0. A cache is a copy, never the truth: callers treat any error from
 * cache_get() like a miss and read the store (a Redis backend answers
 * AOP_ERR_UNAVAILABLE when it cannot reach the server).
 *
 * Generation counters (DESIGN.md, "Cache"): a write deletes the item's key
 * and cache_incr()s a counter whose value list keys include. A counter must
 * never go backwards, or an old list key would become valid again, so:
 *   - a key given to cache_incr() is only ever given to cache_incr() and
 *     cache_counter() (never set, added, deleted or read with cache_get);
 *   - backends never evict counters: the memory backend keeps them in their
 *     own table outside the byte budget; Redis runs with a volatile-* eviction
 *     policy, which only evicts keys that have a TTL, and counters have none.
 *
 * The memory backend (cache_mem.c):
 *   - Concurrency: the table is split into CACHE_MEM_STRIPES stripes by key
 *     hash, each a chained hash table with its own mutex and its own LRU
 *     list, so HTTP threads working on different keys rarely wait for each
 *     other. Measured on the 2-core build machine (-O2, 4 threads, 90% get /
 *     10% set of 300-500 byte values over 10,000 keys): 16 stripes did 5.5
 *     million operations a second, one mutex 2.4 million; with one thread
 *     both did 4.4 million, so the stripes cost nothing when idle.
 *   - Budget: byte_budget counts, per entry, key + value + a fixed header
 *     (CACHE_MEM_ENTRY_OVERHEAD, plus the two NUL terminators); the bucket
 *     arrays are not counted. Each stripe owns budget / stripes bytes and,
 *     when a set would exceed its share, first drops its expired entries (a
 *     full sweep at most once a second per stripe), then evicts its least
 *     recently used entries (get and set make an entry the most recent). So
 *     the LRU order is exact within a stripe and approximate across them.
 *   - A value whose entry is larger than the stripe's share is not stored:
 *     set returns AOP_OK (as if stored, then evicted at once), any previous
 *     value of the key is removed, and the next get misses.
 *   - Expiry: an expired entry is never returned; it is freed when a get,
 *     set or add meets it, when its stripe sweeps for room, or at close.
 *     Time is the monotonic clock, so wall-clock steps change no TTL.
 *   - Counters live in a separate mutex-guarded table that is never evicted
 *     and not counted in the budget: callers keep one counter per cached
 *     collection (not per item), so it stays small; aop_cache_counters
 *     shows its size.
 *   - Values are copied in and copied out; the caller owns what get returns.
 */
#ifndef AOP_INFRA_CACHE_H
#define AOP_INFRA_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "infra/redis.h"

/* What a backend can tell about its size, for /metrics. */
typedef struct {
    long long entries;  /* values held, expired ones not yet freed included; no counters */
    long long bytes;    /* bytes charged against the budget */
    long long budget;   /* the budget, 0 when the backend has none it knows */
    long long counters; /* counters kept by incr */
} cache_stats;

/*
 * One key of a batch read (cache_get_many). A value that starts with the
 * batch's link byte is a link: the rest of it (at most CACHE_LINK_MAX bytes)
 * names where the value now lives, "<key>@<rest>", and the batch reads that
 * too, in the same round trip: then at holds the rest and val what the
 * linked key holds. cache_item.h makes its change markers such links.
 */
#define CACHE_LINK_MAX 64
#define CACHE_MANY_MAX 8 /* keys of one batch at most */
typedef struct {
    const char *key;            /* in */
    aop_err rc;                 /* out: AOP_OK, AOP_ERR_NOT_FOUND, or another error */
    char *val;                  /* out: malloc'd and NUL-terminated when rc is AOP_OK */
    size_t len;
    char at[CACHE_LINK_MAX + 1]; /* out: a link's rest, "" when the key held no link */
} cache_read;

typedef struct cache_vtbl {
    const char *name; /* "memory", "redis" */
    /* AOP_OK with a malloc'd copy in *val (caller frees; NUL-terminated for
     * convenience, *len excludes the NUL), or AOP_ERR_NOT_FOUND (*val NULL). */
    aop_err (*get)(void *h, const char *key, char **val, size_t *len);
    /* Stores a copy of val[0..len) for ttl_ms (> 0), replacing any value. */
    aop_err (*set)(void *h, const char *key, const void *val, size_t len, long long ttl_ms);
    /* Stores only when no live value is there (Redis SET NX PX): AOP_OK when
     * stored, AOP_ERR_CONFLICT when a live value was already there. */
    aop_err (*add)(void *h, const char *key, const void *val, size_t len, long long ttl_ms);
    /* Removes the value; AOP_OK whether or not there was one. */
    aop_err (*del)(void *h, const char *key);
    /* Atomically adds 1 to the counter key (absent = 0), which never expires,
     * and puts the new value in *out. */
    aop_err (*incr)(void *h, const char *key, long long *out);
    /* The counter's value in *out (0 when absent), without changing it. */
    aop_err (*counter)(void *h, const char *key, long long *out);
    /* Optional (may be NULL: the wrapper calls get for each key and link):
     * reads r[0..n) as cache_read says, in one round trip; AOP_OK when each
     * r[i].rc says how its read went, or an error for the whole batch. */
    aop_err (*get_many)(void *h, cache_read *r, int n, char link);
    /* Optional (may be NULL: the wrapper sends rider alone, then reads):
     * get_many, with the script call rider (not NULL) sent in the same round
     * trip when it is meant for this backend's pool, alone otherwise; either
     * way rider->rc and rider->reply are filled when it returns. */
    aop_err (*get_many_with)(void *h, cache_read *r, int n, char link, redis_eval_call *rider);
    /* Optional (may be NULL): fills *st; AOP_OK, or an error when unknown. */
    aop_err (*stats)(void *h, cache_stats *st);
    /* Frees the handle and everything it holds. */
    void (*close)(void *h);
} cache_vtbl;

typedef struct cache cache;

/* Wraps a backend: the new cache takes h, and cache_close() calls
 * vt->close(h). vt must outlive the cache (backends use a static table).
 * Never NULL. */
cache *cache_new(const cache_vtbl *vt, void *h);

#define CACHE_MEM_STRIPES 16
#define CACHE_MEM_ENTRY_OVERHEAD 64 /* bytes charged per entry besides key and value */

/* The in-process backend with a budget of byte_budget bytes (0 stores
 * nothing). Never NULL. */
cache *cache_mem_new(size_t byte_budget);

typedef struct {
    size_t byte_budget;
    unsigned stripes;        /* a power of two up to 256; 0 means CACHE_MEM_STRIPES */
    int64_t (*now_ms)(void); /* a monotonic clock in ms; NULL means the real one */
} cache_mem_opts;

/* cache_mem_new() with every knob; tests use one stripe for an exact LRU
 * order and their own clock for expiry. Never NULL. */
cache *cache_mem_new_opts(const cache_mem_opts *o);

/* The operations of cache_vtbl through the counting wrapper. cache_get
 * counts a hit (AOP_OK) or a miss (AOP_ERR_NOT_FOUND); every operation
 * counts as an error any other result, except add's AOP_ERR_CONFLICT.
 * Invalid arguments (NULL key, ttl_ms <= 0, NULL val with len > 0) are
 * AOP_ERR_INTERNAL, a bug of the caller; nothing is stored. */
aop_err cache_get(cache *c, const char *key, char **val, size_t *len);
aop_err cache_set(cache *c, const char *key, const void *val, size_t len, long long ttl_ms);
aop_err cache_add(cache *c, const char *key, const void *val, size_t len, long long ttl_ms);
aop_err cache_del(cache *c, const char *key);
aop_err cache_incr(cache *c, const char *key, long long *out);
/* Reads r[0..n) (n <= CACHE_MANY_MAX) following links that start with the
 * byte link, each counted as cache_get counts (a link and what it names,
 * once). Every r[i] gets its rc (an error of the batch goes to each); the
 * caller frees each r[i].val. Returns AOP_OK, or the batch's error. */
aop_err cache_get_many(cache *c, cache_read *r, int n, char link);
/* cache_get_many, with one more Redis script call (rider; NULL: none) sent
 * along: in the same round trip when the cache is Redis on rider->pool
 * (limiter_ride in limiter.h: a request's rate-limit hit), alone before the
 * batch otherwise. rider->rc and rider->reply are filled in any case, even
 * when the batch's arguments are invalid. */
aop_err cache_get_many_with(cache *c, cache_read *r, int n, char link, redis_eval_call *rider);
/* Reads a counter kept by cache_incr (0 when absent; 0 too on an error). */
aop_err cache_counter(cache *c, const char *key, long long *out);

/* "memory", "redis". */
const char *cache_backend_name(const cache *c);

/* Fills *st from the backend; AOP_ERR_NOT_FOUND when it cannot tell. */
aop_err cache_read_stats(cache *c, cache_stats *st);

/* Appends Prometheus text: aop_cache_hits_total, aop_cache_misses_total and
 * aop_cache_errors_total counters, and, when the backend can tell,
 * aop_cache_entries, aop_cache_bytes, aop_cache_budget_bytes and
 * aop_cache_counters gauges; every sample is labelled backend="<name>". */
void cache_render_metrics(cache *c, buf *out);

/* Closes the backend and frees the cache. NULL-safe. */
void cache_close(cache *c);

/*
 * The Redis backend (cache_redis.c), shared by every instance through the
 * pool p (infra/redis.h; it must outlive the cache). Values live under
 * "<prefix>v:<key>", counters are the fields of the hash "<prefix>c" (no
 * TTL: never evicted by a volatile-* policy). While Redis cannot be reached,
 * get, add and counter answer AOP_ERR_UNAVAILABLE, and a set, del or incr
 * answers it too but is kept in an in-process journal of at most
 * CACHE_REDIS_JOURNAL_MAX writes (a set's value of more than
 * CACHE_REDIS_JOURNAL_VALUE_MAX bytes is kept as a del), replayed in order
 * before anything else once Redis answers again; until then every call
 * answers AOP_ERR_UNAVAILABLE. After an overflow, the replay deletes every
 * value under the prefix and increments every counter. stats: entries is
 * Redis' DBSIZE, bytes its used_memory, budget its maxmemory. The reasons
 * are at the top of cache_redis.c. Never NULL.
 */
#define CACHE_REDIS_JOURNAL_MAX 10000
#define CACHE_REDIS_JOURNAL_VALUE_MAX 256
struct redis_pool;
cache *cache_redis_new(struct redis_pool *p, const char *prefix);

#endif
