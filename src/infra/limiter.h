/*
 * limiter.h - the rate-limiter port: fixed windows counted per key.
 *
 * Algorithm (every backend): a key's window opens at its first hit and lasts
 * window_ms; each hit adds one to the window's count, and the hit is allowed
 * while count <= max. Refused hits count too (simple, and harmless for fixed
 * windows: the count only decides allowed or not until the window ends). The
 * first hit at or after the window's end opens a new window. max and
 * window_ms come with every call; the end is fixed when the window opens.
 *
 * A limiter is a table of operations (limiter_vtbl) plus an opaque handle, so
 * the in-process table (limiter_mem.c) and a shared Redis one (atomic
 * INCR + PEXPIRE in one Lua script) answer the same calls the same way.
 *
 * Keys: at most LIMITER_KEY_MAX bytes reach a backend. limiter_hit() replaces
 * a longer key by "#sha256:" and the hex SHA-256 of the whole key, so two long
 * keys never share a counter (truncating them would merge keys with a common
 * prefix).
 *
 * Errors: invalid arguments (NULL key or out, max < 0, window_ms < 1) give
 * AOP_ERR_INTERNAL; a backend that cannot answer gives AOP_ERR_UNAVAILABLE.
 * On any error *out is zeroed, and the caller decides whether to fail open.
 */
#ifndef AOP_INFRA_LIMITER_H
#define AOP_INFRA_LIMITER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "infra/redis.h"

#define LIMITER_KEY_MAX 128 /* bytes, without the NUL */

typedef struct {
    bool allowed;
    long long limit;         /* max */
    long long remaining;     /* max - count, never below 0 */
    long long reset_s;       /* whole seconds until the window ends, rounded up; >= 1 */
    long long retry_after_s; /* when !allowed: reset_s; else 0 */
} limiter_result;

/*
 * A hit that rides in another port's round trip (cache_get_many_with), so
 * that a request's rate limit and its cache reads cost one round trip when
 * both live in one Redis. limiter_ride_begin() prepares it, the other port
 * sends ride.call with its own, and limiter_ride_end() reads the answer: the
 * same count and the same results as limiter_hit(), fallback included.
 */
typedef struct limiter_ride {
    struct limiter *l;
    long long max;
    long long window_ms;
    redis_eval_call call;         /* what to send; rc and reply filled by the sender */
    char key[LIMITER_KEY_MAX + 1];/* the key as counted (a long one shortened) */
    char rkey[LIMITER_KEY_MAX + 64 + 1]; /* the backend's own key */
    char win[24];
    const char *argv[2];
    size_t lens[2];
} limiter_ride;

typedef struct limiter_vtbl {
    const char *name; /* "memory", "redis" */
    /* Counts one hit on key (at most LIMITER_KEY_MAX bytes) in a window of
     * window_ms allowing max; now_ms is the caller's clock, in milliseconds,
     * the same clock on every call. Fills *out. */
    aop_err (*hit)(void *h, const char *key, long long max, long long window_ms, long long now_ms,
                   limiter_result *out);
    /* Takes back one hit of key's open window (see limiter_unhit). */
    aop_err (*unhit)(void *h, const char *key, long long now_ms);
    /* Optional (NULL: hits are counted alone): fills r->call for key (r->key,
     * r->max and r->window_ms are set), then, once it was sent, reads it into
     * *out as hit does. */
    void (*ride_begin)(void *h, limiter_ride *r);
    aop_err (*ride_end)(void *h, limiter_ride *r, long long now_ms, limiter_result *out);
    /* Frees the handle and everything in it. */
    void (*close)(void *h);
} limiter_vtbl;

typedef struct limiter {
    const limiter_vtbl *v;
    void *h;
} limiter;

/* Counts one hit now (clock_now_ms(), wall clock). See the top of this file. */
aop_err limiter_hit(limiter *l, const char *key, long long max, long long window_ms,
                    limiter_result *out);
/* The same at a time the caller chooses (tests, or a caller with its own clock). */
aop_err limiter_hit_at(limiter *l, const char *key, long long max, long long window_ms,
                       long long now_ms, limiter_result *out);
/* Takes back one hit counted on key in its open window, for a hit that
 * turned out to belong to another key (a bearer token counted against its
 * user, then found revoked: the request counts against the client's IP).
 * When the window holds no other hit it is closed, as if never opened.
 * AOP_OK, or an error as for limiter_hit (nothing taken back). */
aop_err limiter_unhit(limiter *l, const char *key);

/* true when l can count a hit in another port's round trip (Redis). */
bool limiter_rides(const limiter *l);

/* Prepares a hit to ride in another port's round trip (limiter_ride above):
 * true with *r ready when this limiter can count it so; false when it
 * counts hits alone (the memory backend): then call limiter_hit. */
bool limiter_ride_begin(limiter *l, const char *key, long long max, long long window_ms,
                        limiter_ride *r);
/* After r->call was sent (its rc and reply filled): the hit's result, as
 * limiter_hit answers. Frees the reply. */
aop_err limiter_ride_end(limiter_ride *r, limiter_result *out);

/* Closes the backend and frees l. NULL-safe. */
void limiter_close(limiter *l);

/*
 * The in-process backend (limiter_mem.c). Thread-safe. Holds at most max_keys
 * keys (at least 1): expired ones are reclaimed lazily, and when the table is
 * full of open windows the one that ends soonest is dropped (its key starts
 * afresh on its next hit). A request is never refused because the table is
 * full. Never returns NULL (out of memory aborts, see core/mem.h).
 */
limiter *limiter_mem_new(size_t max_keys);

typedef struct {
    size_t max_keys;              /* the bound given to limiter_mem_new (at least 1) */
    size_t entries;               /* keys held now, expired or not */
    size_t slots;                 /* entries allocated; never above max_keys */
    unsigned long long evictions; /* open windows dropped to make room */
} limiter_mem_stats;

/* Counts for metrics and tests; all zero when l is not a memory limiter. */
void limiter_mem_stats_get(limiter *l, limiter_mem_stats *out);

extern const limiter_vtbl limiter_mem_vtbl;

/*
 * The Redis backend (limiter_redis.c), shared by every instance through the
 * pool p (infra/redis.h; it must outlive the limiter): keys
 * "<prefix>rl:<key>", each hit one atomic Lua script (INCR, PEXPIRE when
 * the window opens, PTTL), so windows are timed by Redis' clock and the
 * callers' now_ms is not used. While Redis cannot answer, hits are counted
 * by fallback (an in-process limiter, e.g. limiter_mem_new(); owned from now
 * on and closed with this one) and a warning is logged once per outage:
 * limits then hold per instance. A hit can ride in the cache's round trip
 * (limiter_ride_begin). prefix: at most LIMITER_REDIS_PREFIX_MAX bytes are
 * used. Name "redis". Never NULL.
 */
#define LIMITER_REDIS_PREFIX_MAX 60
limiter *limiter_redis_new(struct redis_pool *p, const char *prefix, limiter *fallback);

#endif
