/*
 * lock_redis.c - the lock port on Redis, shared by every instance: a lock is
 * the key "<prefix>lk:<key>" holding the owner's token with a TTL.
 *   acquire: SET key token NX PX ttl;
 *   release: compare-and-delete in one Lua script;
 *   extend:  compare-and-PEXPIRE in one Lua script.
 * There is no wait: the port's wrapper polls with backoff (lock.c).
 *
 * Degradation: when Redis cannot answer an acquire, the in-process fallback
 * lock takes it (a warning once per outage). That keeps this instance's
 * writers apart; instances no longer see each other's locks, which is
 * acceptable because a lock is only a collision guard: every write it
 * covers is conditional in the database (lock.h, DESIGN.md).
 *
 * Which backend granted a token: the fallback is a whole lock (its own
 * wrapper makes its own tokens), so each grant it makes is recorded here as
 * {key, our token, its token, expiry} in a small table (at most
 * FALLBACK_MAX live grants: while Redis is away, acquires beyond that answer
 * AOP_ERR_UNAVAILABLE). Release and extend look there first: a recorded
 * token goes to the fallback, any other to Redis. The table is empty while
 * Redis works, so the lookup costs nothing then. When Redis cannot be asked
 * about a token it granted, the answer is AOP_ERR_UNAVAILABLE (not "lost":
 * we cannot tell). And while a grant of the outage is live, a Redis acquire
 * of the same key is undone and answers AOP_ERR_CONFLICT, so this
 * instance's writers stay apart across Redis' return.
 */
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "infra/lock.h"
#include "infra/redis.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FALLBACK_MAX 4096

/* A lock the fallback granted while Redis was away. */
typedef struct {
    char *key;
    char token[LOCK_TOKEN_LEN];  /* ours (the caller's) */
    char ftoken[LOCK_TOKEN_LEN]; /* the fallback's */
    int64_t expires_ms;          /* monotonic; the grant is forgotten after */
} grant;

typedef struct {
    redis_pool *p;
    lock *fallback; /* owned */
    pthread_mutex_t gmu; /* guards grants */
    grant *grants;       /* ngrants live entries, in no order */
    size_t ngrants, cap;
    char *prefix;   /* "<prefix>lk:" */
    size_t prefix_len;
    redis_script release, extend;
    int degraded; /* atomic: 1 from a fallback acquire until the next Redis one */
} rlock;

static const char release_src[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

static const char extend_src[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "end\n"
    "return 0\n";

/* The Redis key of key, in out (LOCK_KEY_MAX + room for the prefix). */
typedef struct {
    char *s;
    size_t n;
    char small[LOCK_KEY_MAX + 64 + 1];
} rkey;

static void rkey_make(rkey *k, const rlock *l, const char *key)
{
    size_t kl = strlen(key);
    k->n = l->prefix_len + kl;
    k->s = k->n < sizeof(k->small) ? k->small : xmalloc(k->n + 1);
    memcpy(k->s, l->prefix, l->prefix_len);
    memcpy(k->s + l->prefix_len, key, kl + 1);
}

static void rkey_free(rkey *k)
{
    if (k->s != k->small)
        free(k->s);
}

/* SET key token NX PX ttl: AOP_OK, AOP_ERR_CONFLICT or an error. */
static aop_err redis_acquire_once(rlock *l, const char *key, const char *token, long long ttl_ms)
{
    rkey k;
    char ttl[24];
    rkey_make(&k, l, key);
    snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
    const char *argv[] = {"SET", k.s, token, "NX", "PX", ttl};
    size_t lens[] = {3, k.n, strlen(token), 2, 2, strlen(ttl)};
    redisReply *r;
    aop_err rc = redis_pool_command(l->p, 6, argv, lens, &r);
    rkey_free(&k);
    if (rc != AOP_OK)
        return rc;
    if (r->type == REDIS_REPLY_STATUS)
        rc = AOP_OK;
    else if (r->type == REDIS_REPLY_NIL)
        rc = AOP_ERR_CONFLICT;
    else
        rc = AOP_ERR_INTERNAL;
    if (rc == AOP_ERR_INTERNAL)
        log_warn("Redis refused a lock acquire",
                 LF_S("error", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply"));
    freeReplyObject(r);
    return rc;
}

/* ---- grants of the fallback ---- */

static int64_t expiry(long long ttl_ms)
{
    int64_t now = clock_mono_ms();
    return ttl_ms > INT64_MAX - now ? INT64_MAX : now + ttl_ms;
}

/* With gmu held: the grant of key to token, or NULL. Forgets the expired
 * grants it passes. */
static grant *find_grant_locked(rlock *l, const char *key, const char *token)
{
    int64_t now = clock_mono_ms();
    for (size_t i = 0; i < l->ngrants;) {
        grant *g = &l->grants[i];
        if (strcmp(g->token, token) == 0 && strcmp(g->key, key) == 0)
            return g;
        if (now >= g->expires_ms) {
            free(g->key);
            *g = l->grants[--l->ngrants];
            continue;
        }
        i++;
    }
    return NULL;
}

static void drop_grant_locked(rlock *l, grant *g)
{
    free(g->key);
    *g = l->grants[--l->ngrants];
}

/* Takes key on the fallback for token and records the grant. */
static aop_err fallback_acquire(rlock *l, const char *key, const char *token, long long ttl_ms)
{
    char ftoken[LOCK_TOKEN_LEN];
    pthread_mutex_lock(&l->gmu);
    find_grant_locked(l, "", ""); /* no grant has an empty token: forgets the expired */
    aop_err rc = AOP_ERR_UNAVAILABLE;
    if (l->ngrants >= FALLBACK_MAX)
        goto out;
    rc = lock_acquire(l->fallback, key, ttl_ms, 0, ftoken);
    if (rc == AOP_ERR_RESOURCE_LOCKED)
        rc = AOP_ERR_CONFLICT; /* the port's wrapper waits and tries again */
    if (rc != AOP_OK)
        goto out;
    if (l->ngrants == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->grants = xrealloc(l->grants, l->cap * sizeof(grant));
    }
    grant *g = &l->grants[l->ngrants++];
    g->key = xstrdup(key);
    str_copy(g->token, sizeof(g->token), token);
    str_copy(g->ftoken, sizeof(g->ftoken), ftoken);
    g->expires_ms = expiry(ttl_ms);
out:
    pthread_mutex_unlock(&l->gmu);
    return rc;
}

/* Release (ttl_ms 0) or extend of a grant of the fallback: 1 with the
 * answer in *rc when token's grant is recorded, 0 when it is not ours. */
static int fallback_checked(rlock *l, const char *key, const char *token, long long ttl_ms,
                            aop_err *rc)
{
    pthread_mutex_lock(&l->gmu);
    grant *g = l->ngrants ? find_grant_locked(l, key, token) : NULL;
    if (g) {
        *rc = ttl_ms > 0 ? lock_extend(l->fallback, key, g->ftoken, ttl_ms)
                         : lock_release(l->fallback, key, g->ftoken);
        if (*rc == AOP_OK && ttl_ms > 0)
            g->expires_ms = expiry(ttl_ms);
        else
            drop_grant_locked(l, g);
    }
    pthread_mutex_unlock(&l->gmu);
    return g != NULL;
}

/* 1 when the fallback granted key to someone and the grant is live: taken
 * while Redis was away and not yet released. */
static int held_on_fallback(rlock *l, const char *key)
{
    int held = 0;
    pthread_mutex_lock(&l->gmu);
    int64_t now = clock_mono_ms();
    for (size_t i = 0; i < l->ngrants && !held; i++) /* empty while Redis works */
        held = now < l->grants[i].expires_ms && strcmp(l->grants[i].key, key) == 0;
    pthread_mutex_unlock(&l->gmu);
    return held;
}

static aop_err redis_checked(rlock *l, const redis_script *s, const char *key,
                             const char *token, const char *ttl);

static aop_err redis_acquire(void *h, const char *key, const char *token, long long ttl_ms)
{
    rlock *l = h;
    aop_err rc = redis_acquire_once(l, key, token, ttl_ms);
    /* Redis is back while a holder of the outage still has the key here:
     * this instance's writers stay apart until it lets go. */
    if (rc == AOP_OK && held_on_fallback(l, key)) {
        redis_checked(l, &l->release, key, token, "");
        rc = AOP_ERR_CONFLICT;
    }
    if (rc == AOP_OK || rc == AOP_ERR_CONFLICT) {
        if (__atomic_exchange_n(&l->degraded, 0, __ATOMIC_RELAXED))
            log_info("locks are taken in Redis again");
        return rc;
    }
    if (!__atomic_exchange_n(&l->degraded, 1, __ATOMIC_RELAXED))
        log_warn("locks are taken per instance while Redis is unreachable",
                 LF_S("error", err_code(rc)));
    return fallback_acquire(l, key, token, ttl_ms);
}

/* Runs the compare-and-act script s on key for token (ttl: "" for none):
 * AOP_OK when it acted, AOP_ERR_NOT_FOUND when token does not hold key. */
static aop_err redis_checked(rlock *l, const redis_script *s, const char *key,
                             const char *token, const char *ttl)
{
    rkey k;
    rkey_make(&k, l, key);
    const char *argv[] = {k.s, token, ttl};
    size_t lens[] = {k.n, strlen(token), strlen(ttl)};
    redisReply *r;
    aop_err rc = redis_pool_eval(l->p, s, 1, ttl[0] ? 3 : 2, argv, lens, &r);
    rkey_free(&k);
    if (rc != AOP_OK)
        return rc;
    if (r->type == REDIS_REPLY_INTEGER) {
        rc = r->integer == 1 ? AOP_OK : AOP_ERR_NOT_FOUND;
    } else {
        log_warn("Redis refused a lock release or extend",
                 LF_S("error", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply"));
        rc = AOP_ERR_INTERNAL;
    }
    freeReplyObject(r);
    return rc;
}

static aop_err redis_release(void *h, const char *key, const char *token)
{
    rlock *l = h;
    aop_err rc;
    if (fallback_checked(l, key, token, 0, &rc))
        return rc;
    return redis_checked(l, &l->release, key, token, "");
}

static aop_err redis_extend(void *h, const char *key, const char *token, long long ttl_ms)
{
    rlock *l = h;
    aop_err rc;
    if (fallback_checked(l, key, token, ttl_ms, &rc))
        return rc;
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
    return redis_checked(l, &l->extend, key, token, ttl);
}

static void redis_close(void *h)
{
    rlock *l = h;
    if (!l)
        return;
    lock_close(l->fallback);
    for (size_t i = 0; i < l->ngrants; i++)
        free(l->grants[i].key);
    free(l->grants);
    pthread_mutex_destroy(&l->gmu);
    free(l->prefix);
    free(l);
}

static const lock_vtbl redis_vtbl = {
    .name = "redis",
    .acquire = redis_acquire,
    .release = redis_release,
    .extend = redis_extend,
    .wait = NULL,
    .entries = NULL,
    .close = redis_close,
};

lock *lock_redis_new(struct redis_pool *p, const char *prefix, lock *fallback)
{
    rlock *l = xcalloc(1, sizeof(*l));
    size_t pl = strlen(prefix);
    l->p = p;
    l->fallback = fallback;
    pthread_mutex_init(&l->gmu, NULL);
    l->prefix = xmalloc(pl + 4);
    memcpy(l->prefix, prefix, pl);
    memcpy(l->prefix + pl, "lk:", 4);
    l->prefix_len = pl + 3;
    redis_script_init(&l->release, release_src);
    redis_script_init(&l->extend, extend_src);
    return lock_new(&redis_vtbl, l);
}
