/*
 * lock.h - the lock port: keeps writers of one resource (e.g. the updates of
 * one workflow) from colliding, on one instance or, with Redis, on several.
 *
 * A lock is a key held by one owner at a time, for a time to live:
 *   - lock_acquire() makes a fresh random owner token (LOCK_TOKEN_LEN: 128
 *     random bits in hex) and takes the key if nobody holds it or its
 *     holder's TTL has passed (Redis: SET key token NX PX ttl). It gives the
 *     token back; only that token can release or extend the lock.
 *   - lock_release() frees the key only while it is still held by the given
 *     token (Redis: compare-and-delete in one Lua script). It never frees
 *     someone else's lock: when our TTL ran out and another owner took the
 *     key, our release answers AOP_ERR_NOT_FOUND and leaves their lock be.
 *   - lock_extend() gives the holder a new TTL, counted from now, under the
 *     same check (for leases that must outlive their first TTL).
 *   - Locks are not reentrant: a holder that acquires the same key again
 *     waits for itself like anyone else.
 *
 * What the lock guarantees, and what it does not. While a holder's TTL runs,
 * no other acquire of the key succeeds. But a TTL can run out under a holder
 * that was paused (a GC-less C process still stops: swap, SIGSTOP, a slow
 * disk, a stalled network to Redis), and it then carries on believing it
 * holds the lock while another owner does too. So the lock only keeps
 * writers from colliding in the common case; it is never the guard of
 * correctness. Callers must still make their write conditional, e.g.
 * UPDATE ... WHERE id = ? AND version = ? (DESIGN.md, "Consistency rules"),
 * and treat a lost lock (release or extend answering AOP_ERR_NOT_FOUND,
 * counted in aop_lock_lost_total and logged as a warning) as a sign that the
 * TTL is too short for the work done under it.
 *
 * Waiting. lock_acquire() tries once, then, while another owner holds the
 * key and wait_ms has not passed, waits and tries again:
 *   - with the backend's wait (the memory backend: a condition variable per
 *     stripe), a waiter wakes as soon as the holder releases or its TTL ends;
 *   - with a backend without one, the wrapper polls with a short exponential
 *     backoff (1 ms doubling to LOCK_POLL_MAX_MS, with jitter).
 * A wake-up is not a promise: several waiters may wake for one release and
 * only one of them takes the lock; the others wait again. There is no
 * fairness (no queue): a newcomer can take a lock before an older waiter.
 * The budget is measured on the monotonic clock and is a lower bound: an
 * acquire that gives up has waited at least wait_ms (plus scheduling delay).
 *
 * Keys: 1..LOCK_KEY_MAX bytes, NUL-terminated. TTLs and waits are in
 * milliseconds. Invalid arguments are AOP_ERR_INTERNAL (a bug of the
 * caller); a backend error other than a conflict (AOP_ERR_UNAVAILABLE when
 * Redis cannot be reached) is returned as it is.
 *
 * The memory backend (lock_mem.c): LOCK_MEM_STRIPES stripes chosen by key
 * hash, each a mutex, a condition variable and a chained hash table of
 * key -> {token, expiry}, keys copied in. An entry is removed by its release;
 * an expired entry is replaced by the next acquire of its key, removed by a
 * release or extend that meets it, and swept with every other expired entry
 * of its stripe before the stripe's table grows, so keys that are never
 * released cannot pile up. Expiry uses the monotonic clock (or the clock of
 * lock_mem_opts), so wall-clock steps change no TTL.
 */
#ifndef AOP_INFRA_LOCK_H
#define AOP_INFRA_LOCK_H

#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define LOCK_TOKEN_BYTES 16                        /* random bytes in a token */
#define LOCK_TOKEN_LEN (2 * LOCK_TOKEN_BYTES + 1)  /* hex characters and the NUL */
#define LOCK_KEY_MAX 256                           /* bytes, without the NUL */
#define LOCK_POLL_MAX_MS 5                         /* longest sleep between polls */
#define LOCK_MEM_STRIPES 16

typedef struct lock_vtbl {
    const char *name; /* "memory", "redis" */
    /* Takes key for token (a NUL-terminated string shorter than
     * LOCK_TOKEN_LEN) for ttl_ms (> 0) when no live owner holds it:
     * AOP_OK when taken, AOP_ERR_CONFLICT when a live owner holds it. */
    aop_err (*acquire)(void *h, const char *key, const char *token, long long ttl_ms);
    /* Frees key if a live entry of token holds it: AOP_OK; AOP_ERR_NOT_FOUND
     * when key is free, expired, or held by another token (left as it is). */
    aop_err (*release)(void *h, const char *key, const char *token);
    /* Sets key's TTL to ttl_ms from now if a live entry of token holds it:
     * AOP_OK; otherwise AOP_ERR_NOT_FOUND and nothing changes. */
    aop_err (*extend)(void *h, const char *key, const char *token, long long ttl_ms);
    /* Optional (may be NULL): blocks until no live owner holds key, or until
     * timeout_ms (>= 0) has passed. AOP_OK when the key was seen free (the
     * caller must still acquire it, and may lose the race), or, rarely,
     * early; AOP_ERR_RESOURCE_LOCKED when the time ran out. */
    aop_err (*wait)(void *h, const char *key, long long timeout_ms);
    /* Optional (may be NULL): entries held now, expired ones not yet freed
     * included, or -1 when unknown. For metrics and tests. */
    long long (*entries)(void *h);
    /* Frees the handle and everything it holds. No call may be running. */
    void (*close)(void *h);
} lock_vtbl;

typedef struct lock lock;

/* Wraps a backend: the new lock takes h, and lock_close() calls vt->close(h).
 * vt must outlive the lock (backends use a static table). Never NULL. */
lock *lock_new(const lock_vtbl *vt, void *h);

/* The in-process backend, on the monotonic clock. Never NULL. */
lock *lock_mem_new(void);

typedef struct {
    unsigned stripes;        /* a power of two up to 256; 0 means LOCK_MEM_STRIPES */
    int64_t (*now_ms)(void); /* a monotonic clock in ms for TTLs; NULL means the real one */
} lock_mem_opts;

/* lock_mem_new() with every knob; tests move their own clock to expire
 * locks. The clock only decides expiry: waits are always measured on the
 * real monotonic clock (a waiter notices an expiry on a test clock when it
 * next wakes). Never NULL. */
lock *lock_mem_new_opts(const lock_mem_opts *o);

/* Takes key for ttl_ms (> 0) under a fresh owner token written to token,
 * waiting up to wait_ms (>= 0; 0 = one try) while another owner holds it.
 * AOP_OK: the lock is ours, token holds the token for release/extend.
 * AOP_ERR_RESOURCE_LOCKED: still held by another owner when wait_ms ran out.
 * AOP_ERR_INTERNAL: invalid arguments (NULL key or token, key empty or longer
 * than LOCK_KEY_MAX, ttl_ms <= 0, wait_ms < 0). Any other backend error as
 * it is. On every failure token is set to "" (which releases nothing). */
aop_err lock_acquire(lock *l, const char *key, long long ttl_ms, long long wait_ms,
                     char token[LOCK_TOKEN_LEN]);

/* Releases key if token still holds it: AOP_OK; AOP_ERR_NOT_FOUND when it
 * does not any more (the TTL ran out, and maybe another owner took the key,
 * whose lock stays): counted as lost and logged as a warning. */
aop_err lock_release(lock *l, const char *key, const char *token);

/* Gives token's lock on key a new TTL of ttl_ms (> 0) from now: AOP_OK, or
 * AOP_ERR_NOT_FOUND (counted as lost, logged) when token no longer holds it;
 * the caller must then stop the work the lock was covering. */
aop_err lock_extend(lock *l, const char *key, const char *token, long long ttl_ms);

/* "memory", "redis". */
const char *lock_backend_name(const lock *l);

/* Entries the backend holds now (expired ones not yet freed included), or
 * -1 when it cannot tell. */
long long lock_entries(lock *l);

/* Appends Prometheus text, every sample labelled backend="<name>":
 * counters aop_lock_acquired_total, aop_lock_waited_total (acquired after
 * at least one conflict), aop_lock_timeouts_total, aop_lock_released_total,
 * aop_lock_extended_total, aop_lock_lost_total, aop_lock_errors_total; the
 * histogram aop_lock_wait_seconds (time lock_acquire took to take the lock
 * or give up); and, when the backend can tell, the gauge aop_lock_entries. */
void lock_render_metrics(lock *l, buf *out);

/* Closes the backend and frees the lock. NULL-safe. */
void lock_close(lock *l);

/*
 * The Redis backend (lock_redis.c), shared by every instance through the
 * pool p (infra/redis.h; it must outlive the lock): keys "<prefix>lk:<key>";
 * acquire is SET NX PX, release and extend are compare-and-act Lua scripts;
 * no wait (the wrapper polls); lock_entries() answers -1. While Redis cannot
 * answer, acquires are served by fallback (an in-process lock, e.g.
 * lock_mem_new(); owned from now on and closed with this one), and release
 * and extend of a token it granted go to it: locks then keep apart only this
 * instance's writers, which is enough because every write a lock covers is
 * conditional in the database. Name "redis". Never NULL.
 */
struct redis_pool;
lock *lock_redis_new(struct redis_pool *p, const char *prefix, lock *fallback);

#endif
