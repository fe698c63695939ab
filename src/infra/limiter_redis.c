/*
 * limiter_redis.c - the limiter port on Redis: one fixed-window counter per
 * key under "<prefix>rl:<key>", shared by every instance.
 *
 * A hit is one Lua script, so it is atomic: INCR the key; when it has no TTL
 * (the first hit of a window: the key was absent or expired) give it
 * window_ms with PEXPIRE; answer the count and the PTTL. The window's end is
 * thus on Redis' clock, not the caller's now_ms, so instances whose clocks
 * disagree still share one window. Redis frees the key when the window ends,
 * and the next hit opens a new one: the algorithm of limiter.h.
 *
 * Degradation: when Redis cannot answer (or refuses the script), the hit is
 * counted by the in-process fallback limiter instead, and a warning says so
 * once per outage. Limits then hold per instance (each instance allows max),
 * which is looser than shared limits but never unlimited.
 */
#include "core/log.h"
#include "core/mem.h"
#include "infra/limiter.h"
#include "infra/redis.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longer windows are cut to this (Redis refuses expiries past its range). */
#define WINDOW_MAX_MS (10LL * 366 * 24 * 3600 * 1000)

typedef struct {
    redis_pool *p;
    limiter *fallback; /* owned */
    char *prefix;      /* "<prefix>rl:" */
    size_t prefix_len;
    redis_script hit;
    redis_script unhit;
    int degraded; /* atomic: 1 from a fallback hit until the next Redis hit */
} rlimiter;

static const char hit_src[] =
    "local c = redis.call('INCR', KEYS[1])\n"
    "local t = redis.call('PTTL', KEYS[1])\n"
    "if t < 0 then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[1])\n"
    "  t = tonumber(ARGV[1])\n"
    "end\n"
    "return {c, t}\n";

static const char unhit_src[] =
    "local c = tonumber(redis.call('GET', KEYS[1]))\n"
    "if c == 1 then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "elseif c and c > 1 then\n"
    "  redis.call('DECR', KEYS[1])\n"
    "end\n"
    "return 0\n";

/* The script's answer {count, ms left}: 0 and both filled, or -1. */
static int parse_hit(const redisReply *r, long long *count, long long *left_ms)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER || r->element[0]->integer < 1 ||
        r->element[1]->integer < 0)
        return -1;
    *count = r->element[0]->integer;
    *left_ms = r->element[1]->integer;
    return 0;
}

static void fill_result(long long count, long long left_ms, long long max, limiter_result *out)
{
    out->allowed = count <= max;
    out->limit = max;
    out->remaining = count < max ? max - count : 0;
    out->reset_s = left_ms / 1000 + (left_ms % 1000 != 0);
    if (out->reset_s < 1) /* PTTL 0: the window ends within this millisecond */
        out->reset_s = 1;
    out->retry_after_s = out->allowed ? 0 : out->reset_s;
}

/* The script call for r's hit (r->key, r->max, r->window_ms set): the
 * prefixed key and the window live in r. */
static void ride_prepare(void *h, limiter_ride *r)
{
    rlimiter *l = h;
    size_t kl = strlen(r->key);
    memcpy(r->rkey, l->prefix, l->prefix_len);
    memcpy(r->rkey + l->prefix_len, r->key, kl + 1);
    long long w = r->window_ms < WINDOW_MAX_MS ? r->window_ms : WINDOW_MAX_MS;
    r->argv[0] = r->rkey;
    r->lens[0] = l->prefix_len + kl;
    r->argv[1] = r->win;
    r->lens[1] = (size_t)snprintf(r->win, sizeof(r->win), "%lld", w);
    r->call = (redis_eval_call){.pool = l->p, .s = &l->hit, .numkeys = 1, .argc = 2,
                                .argv = r->argv, .argvlen = r->lens};
}

/* The answer to r's call: AOP_OK with *out filled, or an error. Frees the
 * reply. */
static aop_err ride_parse(limiter_ride *r, limiter_result *out)
{
    if (r->call.rc != AOP_OK)
        return r->call.rc;
    redisReply *rep = r->call.reply;
    r->call.reply = NULL;
    long long count, left;
    aop_err rc = AOP_OK;
    if (parse_hit(rep, &count, &left) == 0) {
        fill_result(count, left, r->max, out);
    } else {
        log_warn("Redis refused a rate-limit hit",
                 LF_S("error", rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply"));
        rc = AOP_ERR_INTERNAL;
    }
    freeReplyObject(rep);
    return rc;
}

/* After a hit's round trip (rc its result): on a failure, the fallback
 * counts it, and the first failure of an outage is logged. */
static aop_err settle_hit(rlimiter *l, aop_err rc, const char *key, long long max,
                          long long window_ms, long long now_ms, limiter_result *out)
{
    if (rc == AOP_OK) {
        if (__atomic_exchange_n(&l->degraded, 0, __ATOMIC_RELAXED))
            log_info("rate limits are counted in Redis again");
        return AOP_OK;
    }
    if (!__atomic_exchange_n(&l->degraded, 1, __ATOMIC_RELAXED))
        log_warn("rate limits are counted per instance while Redis is unreachable",
                 LF_S("error", err_code(rc)));
    memset(out, 0, sizeof(*out));
    return l->fallback->v->hit(l->fallback->h, key, max, window_ms, now_ms, out);
}

static aop_err ride_end(void *h, limiter_ride *r, long long now_ms, limiter_result *out)
{
    aop_err rc = ride_parse(r, out);
    return settle_hit(h, rc, r->key, r->max, r->window_ms, now_ms, out);
}

static aop_err redis_hit(void *h, const char *key, long long max, long long window_ms,
                         long long now_ms, limiter_result *out)
{
    rlimiter *l = h;
    limiter_ride r = {.max = max, .window_ms = window_ms};
    memcpy(r.key, key, strlen(key) + 1); /* at most LIMITER_KEY_MAX bytes (limiter.c) */
    ride_prepare(h, &r);
    redis_pool_eval_many(l->p, &r.call, 1);
    return ride_end(h, &r, now_ms, out);
}

/* Takes back a hit: one less in the window, and a window left with none is
 * deleted, as if never opened. Like a hit, the fallback's while Redis is
 * away (the hit was most likely counted there). */
static aop_err redis_unhit(void *h, const char *key, long long now_ms)
{
    rlimiter *l = h;
    limiter_ride r = {0};
    memcpy(r.key, key, strlen(key) + 1);
    ride_prepare(h, &r);
    redisReply *rep;
    aop_err rc = redis_pool_eval(l->p, &l->unhit, 1, 1, r.argv, r.lens, &rep);
    if (rc == AOP_OK) {
        if (rep->type == REDIS_REPLY_ERROR) {
            log_warn("Redis refused to take back a rate-limit hit", LF_S("error", rep->str));
            rc = AOP_ERR_INTERNAL;
        }
        freeReplyObject(rep);
        return rc;
    }
    return l->fallback->v->unhit(l->fallback->h, key, now_ms);
}

static void redis_close(void *h)
{
    rlimiter *l = h;
    if (!l)
        return;
    limiter_close(l->fallback);
    free(l->prefix);
    free(l);
}

static const limiter_vtbl redis_vtbl = {
    .name = "redis",
    .hit = redis_hit,
    .unhit = redis_unhit,
    .ride_begin = ride_prepare,
    .ride_end = ride_end,
    .close = redis_close,
};

limiter *limiter_redis_new(struct redis_pool *p, const char *prefix, limiter *fallback)
{
    rlimiter *r = xcalloc(1, sizeof(*r));
    size_t pl = strnlen(prefix, LIMITER_REDIS_PREFIX_MAX);
    r->p = p;
    r->fallback = fallback;
    r->prefix = xmalloc(pl + 4);
    memcpy(r->prefix, prefix, pl);
    memcpy(r->prefix + pl, "rl:", 4);
    r->prefix_len = pl + 3;
    redis_script_init(&r->hit, hit_src);
    redis_script_init(&r->unhit, unhit_src);
    limiter *l = xmalloc(sizeof(*l));
    l->v = &redis_vtbl;
    l->h = r;
    return l;
}
