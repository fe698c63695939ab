/*
 * cache_redis.c - the cache port on Redis, shared by every instance.
 *
 * Keys: values live under "<prefix>v:<key>" with a TTL (SET ... PX); the
 * generation counters are the fields of one hash "<prefix>c" without a TTL
 * (HINCRBY, HGET), so Redis' volatile-* eviction never takes them, /metrics
 * counts them with HLEN, and the recovery below can bump them all at once.
 *
 * Degradation. While Redis cannot be reached, get, add and counter answer
 * AOP_ERR_UNAVAILABLE (callers read the store instead). A set, del or incr
 * that fails for that reason is kept in a journal of at most
 * CACHE_REDIS_JOURNAL_MAX writes, in order, and returns AOP_ERR_UNAVAILABLE
 * too. Before any command, a handle with a journal replays it (under a
 * mutex, so in order and once), and as long as the journal cannot be
 * replayed every command answers AOP_ERR_UNAVAILABLE: Redis is never read
 * while a write this instance made is missing from it. The pool's reconnect
 * hook replays it as well, so it does not wait for the next cache call.
 *
 * Why replay at all: deleting a key or bumping a generation is how a write
 * tells every instance that what is cached is stale (DESIGN.md, "Cache"); a
 * lost one would let other instances (and this one) serve stale items and
 * lists after Redis is back until their TTLs end. A generation counter must
 * never go backwards, so lost increments are not acceptable either. And a
 * revocation mirror "1" that could not be written must not be lost while a
 * "not revoked" ("0") entry may still be in Redis.
 *
 * A journaled set is replayed with what is left of its TTL (a delete when
 * nothing is left), and one whose value is larger than
 * CACHE_REDIS_JOURNAL_VALUE_MAX is journaled as a delete of its key: a
 * delete is always safe for a cache, the next reader reads the store.
 *
 * When the journal overflowed (or a key was too long to keep), the writes it
 * lost are unknown, and the recovery invalidates everything this program
 * caches: every value key (SCAN with our prefix, DEL in batches; never
 * KEYS), then every generation counter is incremented (one Lua script over
 * the counters' hash). Deleting first and bumping after also makes stale a
 * list another instance filled from the store while the scan ran. This is
 * safe for revocations: they are in the database too, the "0" (not revoked)
 * mirror entries are deleted with the rest (they live at most 60 s anyway),
 * so the next check reads the database.
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "infra/cache.h"
#include "infra/redis.h"

#include <hiredis/hiredis.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOURNAL_KEY_MAX 1024  /* a longer key overflows the journal */
#define SCAN_COUNT "500"
#define DEL_BATCH 100
#define CURSOR_MAX 32

typedef enum { J_SET, J_DEL, J_INCR } jop;

/* One write that could not reach Redis. */
typedef struct {
    jop op;
    char *key;          /* the caller's key, without our prefix */
    char *val;          /* J_SET: the value (len bytes) */
    size_t len;
    int64_t expires_ms; /* J_SET: monotonic end of its TTL */
} jentry;

typedef struct {
    redis_pool *p;
    char *vpre; /* "<prefix>v:" */
    size_t vpre_len;
    char *ckey; /* "<prefix>c": the counters' hash */
    redis_script incr_all;
    redis_script get_many;

    pthread_mutex_t jmu; /* guards the journal; held while replaying */
    jentry *ring;        /* CACHE_REDIS_JOURNAL_MAX entries, allocated on first use */
    size_t head, n;
    bool overflowed;
    int pending; /* atomic: n > 0 || overflowed */
    int64_t journaled_since_ms;
} rcache;

static const char incr_all_src[] =
    "local f = redis.call('HKEYS', KEYS[1])\n"
    "for i = 1, #f do redis.call('HINCRBY', KEYS[1], f[i], 1) end\n"
    "return #f\n";

/* get_many: KEYS the keys, ARGV[1] the link byte, ARGV[2] CACHE_LINK_MAX;
 * for each key {rest of its link or false, its value or false}. A value
 * that starts with the link byte but is longer than a link reads as none,
 * as get_each in cache.c does. The linked keys are not in KEYS: this cache
 * runs on one Redis server, never on a cluster. */
static const char get_many_src[] =
    "local out = {}\n"
    "for i = 1, #KEYS do\n"
    "  local v = redis.call('GET', KEYS[i])\n"
    "  local at = false\n"
    "  if v and string.sub(v, 1, 1) == ARGV[1] then\n"
    "    if #v - 1 <= tonumber(ARGV[2]) then\n"
    "      at = string.sub(v, 2)\n"
    "      v = redis.call('GET', KEYS[i] .. '@' .. at)\n"
    "    else\n"
    "      v = false\n"
    "    end\n"
    "  end\n"
    "  out[2 * i - 1] = at\n"
    "  out[2 * i] = v\n"
    "end\n"
    "return out\n";

/* ---- keys ---- */

/* A prefixed key, on the stack when short. */
typedef struct {
    char *s;
    size_t n;
    char small[256];
} rkey;

static void rkey_make(rkey *k, const char *pre, size_t prelen, const char *key)
{
    size_t kl = strlen(key);
    k->n = prelen + kl;
    k->s = k->n < sizeof(k->small) ? k->small : xmalloc(k->n + 1);
    memcpy(k->s, pre, prelen);
    memcpy(k->s + prelen, key, kl + 1);
}

static void rkey_free(rkey *k)
{
    if (k->s != k->small)
        free(k->s);
}

/* ---- single commands (no journal) ---- */

/* Runs one command; AOP_OK with the reply in *r, which is not an error reply
 * (AOP_ERR_INTERNAL then, logged), or AOP_ERR_UNAVAILABLE. */
static aop_err run(rcache *c, int argc, const char **argv, const size_t *argvlen,
                   redisReply **r)
{
    aop_err rc = redis_pool_command(c->p, argc, argv, argvlen, r);
    if (rc != AOP_OK)
        return rc;
    if ((*r)->type == REDIS_REPLY_ERROR) {
        log_warn("Redis refused a cache command", LF_S("command", argv[0]),
                 LF_S("error", (*r)->str));
        freeReplyObject(*r);
        *r = NULL;
        return AOP_ERR_INTERNAL;
    }
    return AOP_OK;
}

/* SET key val PX ttl [NX]: AOP_OK, AOP_ERR_CONFLICT (NX and a live value). */
static aop_err do_set(rcache *c, const char *key, const void *val, size_t len,
                      long long ttl_ms, bool nx)
{
    rkey k;
    char ttl[24];
    rkey_make(&k, c->vpre, c->vpre_len, key);
    snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
    const char *argv[] = {"SET", k.s, (const char *)val, "PX", ttl, "NX"};
    size_t lens[] = {3, k.n, len, 2, strlen(ttl), 2};
    redisReply *r;
    aop_err rc = run(c, nx ? 6 : 5, argv, lens, &r);
    rkey_free(&k);
    if (rc != AOP_OK)
        return rc;
    if (r->type == REDIS_REPLY_STATUS)
        rc = AOP_OK;
    else if (nx && r->type == REDIS_REPLY_NIL)
        rc = AOP_ERR_CONFLICT;
    else
        rc = AOP_ERR_INTERNAL;
    freeReplyObject(r);
    return rc;
}

static aop_err do_del(rcache *c, const char *key)
{
    rkey k;
    rkey_make(&k, c->vpre, c->vpre_len, key);
    const char *argv[] = {"DEL", k.s};
    size_t lens[] = {3, k.n};
    redisReply *r;
    aop_err rc = run(c, 2, argv, lens, &r);
    rkey_free(&k);
    if (rc != AOP_OK)
        return rc;
    rc = r->type == REDIS_REPLY_INTEGER ? AOP_OK : AOP_ERR_INTERNAL;
    freeReplyObject(r);
    return rc;
}

static aop_err do_incr(rcache *c, const char *key, long long *out)
{
    const char *argv[] = {"HINCRBY", c->ckey, key, "1"};
    redisReply *r;
    aop_err rc = run(c, 4, argv, NULL, &r);
    if (rc != AOP_OK)
        return rc;
    rc = r->type == REDIS_REPLY_INTEGER ? AOP_OK : AOP_ERR_INTERNAL;
    if (rc == AOP_OK)
        *out = r->integer;
    freeReplyObject(r);
    return rc;
}

/* ---- the journal ---- */

static void jentry_free(jentry *e)
{
    free(e->key);
    free(e->val);
    memset(e, 0, sizeof(*e));
}

/* With jmu held: forgets every entry. */
static void journal_clear_locked(rcache *c)
{
    for (; c->n; c->n--, c->head = (c->head + 1) % CACHE_REDIS_JOURNAL_MAX)
        jentry_free(&c->ring[c->head]);
    c->head = 0;
}

static void set_pending_locked(rcache *c)
{
    __atomic_store_n(&c->pending, c->n > 0 || c->overflowed, __ATOMIC_RELEASE);
}

/* Keeps a write that could not reach Redis (see the top of this file). */
static void journal(rcache *c, jop op, const char *key, const void *val, size_t len,
                    long long ttl_ms)
{
    pthread_mutex_lock(&c->jmu);
    if (!c->n && !c->overflowed)
        c->journaled_since_ms = clock_mono_ms();
    if (c->overflowed)
        goto out; /* the recovery invalidates everything anyway */
    if (c->n == CACHE_REDIS_JOURNAL_MAX || strlen(key) > JOURNAL_KEY_MAX) {
        log_warn("the Redis cache journal overflowed; everything cached will be invalidated "
                 "when Redis is back",
                 LF_I("entries", (long long)c->n));
        journal_clear_locked(c);
        c->overflowed = true;
        goto out;
    }
    if (!c->ring)
        c->ring = xcalloc(CACHE_REDIS_JOURNAL_MAX, sizeof(jentry));
    if (op == J_SET && len > CACHE_REDIS_JOURNAL_VALUE_MAX)
        op = J_DEL;
    jentry *e = &c->ring[(c->head + c->n) % CACHE_REDIS_JOURNAL_MAX];
    e->op = op;
    e->key = xstrdup(key);
    if (op == J_SET) {
        e->val = xmalloc(len + 1);
        memcpy(e->val, val, len);
        e->len = len;
        int64_t now = clock_mono_ms();
        e->expires_ms = ttl_ms > INT64_MAX - now ? INT64_MAX : now + ttl_ms;
    }
    c->n++;
out:
    set_pending_locked(c);
    pthread_mutex_unlock(&c->jmu);
}

/* Applies one journal entry: AOP_ERR_UNAVAILABLE when Redis is still away. */
static aop_err apply(rcache *c, const jentry *e)
{
    long long ignored;
    switch (e->op) {
    case J_SET: {
        int64_t left = e->expires_ms - clock_mono_ms();
        if (left <= 0)
            return do_del(c, e->key);
        return do_set(c, e->key, e->val, e->len, left, false);
    }
    case J_DEL:
        return do_del(c, e->key);
    case J_INCR:
        return do_incr(c, e->key, &ignored);
    }
    return AOP_ERR_INTERNAL;
}

/* DEL of up to DEL_BATCH keys given as string replies. */
static aop_err del_batch(rcache *c, redisReply **keys, size_t n)
{
    const char *argv[DEL_BATCH + 1];
    size_t lens[DEL_BATCH + 1];
    int argc = 1;
    argv[0] = "DEL";
    lens[0] = 3;
    for (size_t i = 0; i < n; i++) {
        if (keys[i]->type != REDIS_REPLY_STRING)
            continue;
        argv[argc] = keys[i]->str;
        lens[argc++] = keys[i]->len;
    }
    if (argc == 1)
        return AOP_OK;
    redisReply *r;
    aop_err rc = run(c, argc, argv, lens, &r);
    if (rc == AOP_OK)
        freeReplyObject(r);
    return rc;
}

/* One SCAN step from cursor (updated in place) and the DEL of what it found. */
static aop_err scan_step(rcache *c, const char *pattern, char cursor[CURSOR_MAX])
{
    const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT};
    redisReply *r;
    aop_err rc = run(c, 6, argv, NULL, &r);
    if (rc != AOP_OK)
        return rc;
    rc = AOP_ERR_INTERNAL;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= CURSOR_MAX ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
        goto out;
    redisReply *keys = r->element[1];
    rc = AOP_OK;
    for (size_t i = 0; i < keys->elements && rc == AOP_OK; i += DEL_BATCH) {
        size_t n = keys->elements - i < DEL_BATCH ? keys->elements - i : DEL_BATCH;
        rc = del_batch(c, keys->element + i, n);
    }
    if (rc == AOP_OK)
        memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
out:
    freeReplyObject(r);
    return rc;
}

/* The recovery after an overflow: deletes every value key, then bumps every
 * counter (see the top of this file). */
static aop_err invalidate_all(rcache *c)
{
    buf pat;
    buf_init(&pat, 0);
    for (const char *s = c->vpre; *s; s++) { /* glob characters match themselves */
        if (strchr("*?[]\\", *s))
            buf_append(&pat, "\\", 1);
        buf_append(&pat, s, 1);
    }
    buf_append(&pat, "*", 1);
    char cursor[CURSOR_MAX] = "0";
    aop_err rc;
    do
        rc = scan_step(c, pat.data, cursor);
    while (rc == AOP_OK && strcmp(cursor, "0") != 0);
    buf_free(&pat);
    if (rc != AOP_OK)
        return rc;
    const char *argv[] = {c->ckey};
    redisReply *r;
    rc = redis_pool_eval(c->p, &c->incr_all, 1, 1, argv, NULL, &r);
    if (rc != AOP_OK)
        return rc;
    rc = r->type == REDIS_REPLY_INTEGER ? AOP_OK : AOP_ERR_INTERNAL;
    if (rc == AOP_OK)
        log_info("Redis cache invalidated after the journal overflowed",
                 LF_I("counters", r->integer));
    freeReplyObject(r);
    return rc;
}

/* With jmu held: replays the journal in order, stopping at the first write
 * Redis still cannot take. A write Redis refuses is dropped (logged). */
static void replay_locked(rcache *c)
{
    size_t done = 0;
    if (c->overflowed) {
        aop_err rc = invalidate_all(c);
        if (rc == AOP_ERR_UNAVAILABLE)
            goto out;
        if (rc != AOP_OK)
            log_error("cannot invalidate the Redis cache after an overflow; retrying later");
        else
            c->overflowed = false;
        goto out;
    }
    while (c->n) {
        jentry *e = &c->ring[c->head];
        aop_err rc = apply(c, e);
        if (rc == AOP_ERR_UNAVAILABLE)
            break;
        if (rc != AOP_OK)
            log_warn("Redis refused a journaled cache write; dropped", LF_S("key", e->key));
        jentry_free(e);
        c->head = (c->head + 1) % CACHE_REDIS_JOURNAL_MAX;
        c->n--;
        done++;
    }
    if (done && !c->n)
        log_info("Redis cache journal replayed", LF_I("writes", (long long)done),
                 LF_I("afterMs", clock_mono_ms() - c->journaled_since_ms));
out:
    set_pending_locked(c);
}

/* Replays the journal when one is pending. true when nothing is pending
 * afterwards, so Redis may be used. */
static bool settle(rcache *c)
{
    if (!__atomic_load_n(&c->pending, __ATOMIC_ACQUIRE))
        return true;
    pthread_mutex_lock(&c->jmu);
    replay_locked(c);
    bool clear = !c->pending;
    pthread_mutex_unlock(&c->jmu);
    return clear;
}

/* The pool's reconnect hook. A thread already replaying (maybe this one,
 * whose replay's first command succeeded) holds jmu: then nothing to do. */
static void on_reconnect(void *arg)
{
    rcache *c = arg;
    if (!__atomic_load_n(&c->pending, __ATOMIC_ACQUIRE))
        return;
    if (pthread_mutex_trylock(&c->jmu) != 0)
        return;
    replay_locked(c);
    pthread_mutex_unlock(&c->jmu);
}

/* ---- the vtbl ---- */

static aop_err redis_get(void *h, const char *key, char **val, size_t *len)
{
    rcache *c = h;
    if (!settle(c))
        return AOP_ERR_UNAVAILABLE;
    rkey k;
    rkey_make(&k, c->vpre, c->vpre_len, key);
    const char *argv[] = {"GET", k.s};
    size_t lens[] = {3, k.n};
    redisReply *r;
    aop_err rc = run(c, 2, argv, lens, &r);
    rkey_free(&k);
    if (rc != AOP_OK)
        return rc;
    if (r->type == REDIS_REPLY_NIL) {
        rc = AOP_ERR_NOT_FOUND;
    } else if (r->type == REDIS_REPLY_STRING) {
        *val = xmalloc(r->len + 1);
        memcpy(*val, r->str, r->len);
        (*val)[r->len] = '\0';
        *len = r->len;
    } else {
        rc = AOP_ERR_INTERNAL;
    }
    freeReplyObject(r);
    return rc;
}

static bool bulk_or_nil(const redisReply *e)
{
    return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_NIL;
}

/* The get_many script's arguments for r[0..n): the prefixed keys, the link
 * byte and CACHE_LINK_MAX. */
typedef struct {
    rkey k[CACHE_MANY_MAX];
    const char *argv[CACHE_MANY_MAX + 2];
    size_t lens[CACHE_MANY_MAX + 2];
    char link;
    char max[16];
    int n;
} many_args;

static void many_args_make(rcache *c, many_args *a, const cache_read *r, int n, char link)
{
    for (int i = 0; i < n; i++) {
        rkey_make(&a->k[i], c->vpre, c->vpre_len, r[i].key);
        a->argv[i] = a->k[i].s;
        a->lens[i] = a->k[i].n;
    }
    a->link = link;
    a->argv[n] = &a->link;
    a->lens[n] = 1;
    a->lens[n + 1] = (size_t)snprintf(a->max, sizeof(a->max), "%d", CACHE_LINK_MAX);
    a->argv[n + 1] = a->max;
    a->n = n;
}

static void many_args_free(many_args *a)
{
    for (int i = 0; i < a->n; i++)
        rkey_free(&a->k[i]);
}

/* Fills r[0..n) from the script's answer rep, which it frees. */
static aop_err many_parse(redisReply *rep, cache_read *r, int n)
{
    bool ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == (size_t)n * 2;
    for (size_t i = 0; ok && i < rep->elements; i++)
        ok = bulk_or_nil(rep->element[i]);
    for (int i = 0; ok && i < n; i++)
        ok = rep->element[2 * i]->type == REDIS_REPLY_NIL ||
             rep->element[2 * i]->len <= CACHE_LINK_MAX;
    if (!ok) {
        log_warn("Redis answered a batch read oddly",
                 LF_S("error", rep->type == REDIS_REPLY_ERROR ? rep->str : NULL));
        freeReplyObject(rep);
        return AOP_ERR_INTERNAL;
    }
    for (int i = 0; i < n; i++) {
        const redisReply *at = rep->element[2 * i], *v = rep->element[2 * i + 1];
        if (at->type == REDIS_REPLY_STRING) {
            memcpy(r[i].at, at->str, at->len);
            r[i].at[at->len] = '\0';
        }
        r[i].rc = v->type == REDIS_REPLY_NIL ? AOP_ERR_NOT_FOUND : AOP_OK;
        if (r[i].rc == AOP_OK) {
            r[i].val = xmalloc(v->len + 1);
            memcpy(r[i].val, v->str, v->len);
            r[i].val[v->len] = '\0';
            r[i].len = v->len;
        }
    }
    freeReplyObject(rep);
    return AOP_OK;
}

/* One script: every key, and every link's target, in one round trip; and
 * the rider's call (NULL: none) in the same one when it is for our pool. */
static aop_err redis_get_many_with(void *h, cache_read *r, int n, char link,
                                   redis_eval_call *rider)
{
    rcache *c = h;
    if (!settle(c)) {
        if (rider)
            redis_pool_eval_many(rider->pool, rider, 1);
        return AOP_ERR_UNAVAILABLE;
    }
    if (rider && rider->pool != c->p) {
        redis_pool_eval_many(rider->pool, rider, 1);
        rider = NULL;
    }
    many_args a;
    many_args_make(c, &a, r, n, link);
    redis_eval_call calls[2];
    int mine = rider ? 1 : 0;
    if (rider)
        calls[0] = *rider;
    calls[mine] = (redis_eval_call){.pool = c->p, .s = &c->get_many, .numkeys = n,
                                    .argc = n + 2, .argv = a.argv, .argvlen = a.lens};
    aop_err rc = redis_pool_eval_many(c->p, calls, mine + 1);
    many_args_free(&a);
    if (rider) {
        rider->rc = calls[0].rc;
        rider->reply = calls[0].reply;
        if (rc == AOP_ERR_INTERNAL) /* nothing was sent */
            redis_pool_eval_many(rider->pool, rider, 1);
    }
    if (calls[mine].rc != AOP_OK)
        return calls[mine].rc;
    return many_parse(calls[mine].reply, r, n);
}

static aop_err redis_get_many(void *h, cache_read *r, int n, char link)
{
    return redis_get_many_with(h, r, n, link, NULL);
}

/* set, del and incr: straight to Redis when nothing is pending, otherwise (or
 * when Redis is away) into the journal. */
static aop_err write_op(rcache *c, jop op, const char *key, const void *val, size_t len,
                        long long ttl_ms, long long *out)
{
    aop_err rc = AOP_ERR_UNAVAILABLE;
    if (settle(c)) {
        switch (op) {
        case J_SET:
            rc = do_set(c, key, val, len, ttl_ms, false);
            break;
        case J_DEL:
            rc = do_del(c, key);
            break;
        case J_INCR:
            rc = do_incr(c, key, out);
            break;
        }
    }
    if (rc == AOP_ERR_UNAVAILABLE)
        journal(c, op, key, val, len, ttl_ms);
    return rc;
}

static aop_err redis_set(void *h, const char *key, const void *val, size_t len, long long ttl_ms)
{
    return write_op(h, J_SET, key, val, len, ttl_ms, NULL);
}

static aop_err redis_add(void *h, const char *key, const void *val, size_t len, long long ttl_ms)
{
    rcache *c = h;
    if (!settle(c))
        return AOP_ERR_UNAVAILABLE;
    return do_set(c, key, val, len, ttl_ms, true);
}

static aop_err redis_del(void *h, const char *key)
{
    return write_op(h, J_DEL, key, NULL, 0, 0, NULL);
}

static aop_err redis_incr(void *h, const char *key, long long *out)
{
    *out = 0;
    return write_op(h, J_INCR, key, NULL, 0, 0, out);
}

static aop_err redis_counter(void *h, const char *key, long long *out)
{
    rcache *c = h;
    *out = 0;
    if (!settle(c))
        return AOP_ERR_UNAVAILABLE;
    const char *argv[] = {"HGET", c->ckey, key};
    redisReply *r;
    aop_err rc = run(c, 3, argv, NULL, &r);
    if (rc != AOP_OK)
        return rc;
    if (r->type == REDIS_REPLY_STRING)
        rc = str_to_ll(r->str, LLONG_MIN, LLONG_MAX, out) == 0 ? AOP_OK : AOP_ERR_INTERNAL;
    else if (r->type == REDIS_REPLY_INTEGER)
        *out = r->integer;
    else if (r->type != REDIS_REPLY_NIL)
        rc = AOP_ERR_INTERNAL;
    freeReplyObject(r);
    return rc;
}

/* The value of "name:<digits>" in INFO text (s, n bytes), or -1. */
static long long info_field(const char *s, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = s, *end = s + n; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t ll = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (ll > nl && memcmp(p, name, nl) == 0 && p[nl] == ':') {
            long long v = 0;
            for (size_t i = nl + 1; i < ll && p[i] >= '0' && p[i] <= '9' && v < LLONG_MAX / 10;
                 i++)
                v = v * 10 + (p[i] - '0');
            return v;
        }
        p += ll + 1;
    }
    return -1;
}

/* One command whose integer reply goes to *out. */
static aop_err integer_of(rcache *c, int argc, const char **argv, long long *out)
{
    redisReply *r;
    aop_err rc = run(c, argc, argv, NULL, &r);
    if (rc != AOP_OK)
        return rc;
    rc = r->type == REDIS_REPLY_INTEGER ? AOP_OK : AOP_ERR_INTERNAL;
    *out = r->integer;
    freeReplyObject(r);
    return rc;
}

/* entries: DBSIZE (every key of the database: the limiter's and the locks'
 * too); bytes: Redis' used_memory; budget: its maxmemory (0: none);
 * counters: the fields of the counters' hash. */
static aop_err redis_stats(void *h, cache_stats *st)
{
    rcache *c = h;
    const char *dbsize[] = {"DBSIZE"}, *hlen[] = {"HLEN", c->ckey},
               *info[] = {"INFO", "memory"};
    aop_err rc = integer_of(c, 1, dbsize, &st->entries);
    if (rc == AOP_OK)
        rc = integer_of(c, 2, hlen, &st->counters);
    if (rc != AOP_OK)
        return rc;
    redisReply *r;
    rc = run(c, 2, info, NULL, &r);
    if (rc != AOP_OK)
        return rc;
    if (r->type == REDIS_REPLY_STRING) {
        long long used = info_field(r->str, r->len, "used_memory");
        long long max = info_field(r->str, r->len, "maxmemory");
        st->bytes = used > 0 ? used : 0;
        st->budget = max > 0 ? max : 0;
    }
    freeReplyObject(r);
    return AOP_OK;
}

static void redis_close(void *h)
{
    rcache *c = h;
    if (!c)
        return;
    redis_pool_off_reconnect(c->p, on_reconnect, c);
    if (c->ring)
        journal_clear_locked(c);
    free(c->ring);
    pthread_mutex_destroy(&c->jmu);
    free(c->vpre);
    free(c->ckey);
    free(c);
}

static const cache_vtbl redis_vtbl = {
    .name = "redis",
    .get = redis_get,
    .set = redis_set,
    .add = redis_add,
    .del = redis_del,
    .incr = redis_incr,
    .counter = redis_counter,
    .get_many = redis_get_many,
    .get_many_with = redis_get_many_with,
    .stats = redis_stats,
    .close = redis_close,
};

cache *cache_redis_new(redis_pool *p, const char *prefix)
{
    rcache *c = xcalloc(1, sizeof(*c));
    size_t pl = strlen(prefix);
    c->p = p;
    c->vpre = xmalloc(pl + 3);
    memcpy(c->vpre, prefix, pl);
    memcpy(c->vpre + pl, "v:", 3);
    c->vpre_len = pl + 2;
    c->ckey = xmalloc(pl + 2);
    memcpy(c->ckey, prefix, pl);
    memcpy(c->ckey + pl, "c", 2);
    redis_script_init(&c->incr_all, incr_all_src);
    redis_script_init(&c->get_many, get_many_src);
    pthread_mutex_init(&c->jmu, NULL);
    if (redis_pool_on_reconnect(p, on_reconnect, c) < 0)
        log_warn("too many Redis reconnect hooks; the cache journal waits for the next call");
    return cache_new(&redis_vtbl, c);
}
