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

/* Counts the hit in Redis: AOP_OK with *out filled, or an error. */
static aop_err redis_hit_once(rlimiter *l, const char *key, long long max, long long window_ms,
                              limiter_result *out)
{
    size_t kl = strlen(key);
    char k[LIMITER_KEY_MAX + 64 + 1], *kp = k;
    if (l->prefix_len + kl >= sizeof(k))
        kp = xmalloc(l->prefix_len + kl + 1);
    memcpy(kp, l->prefix, l->prefix_len);
    memcpy(kp + l->prefix_len, key, kl + 1);
    char win[24];
    snprintf(win, sizeof(win), "%lld", window_ms < WINDOW_MAX_MS ? window_ms : WINDOW_MAX_MS);
    const char *argv[] = {kp, win};
    size_t lens[] = {l->prefix_len + kl, strlen(win)};
    redisReply *r;
    aop_err rc = redis_pool_eval(l->p, &l->hit, 1, 2, argv, lens, &r);
    if (kp != k)
        free(kp);
    if (rc != AOP_OK)
        return rc;
    long long count, left;
    if (parse_hit(r, &count, &left) == 0) {
        fill_result(count, left, max, out);
    } else {
        log_warn("Redis refused a rate-limit hit",
                 LF_S("error", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply"));
        rc = AOP_ERR_INTERNAL;
    }
    freeReplyObject(r);
    return rc;
}

static aop_err redis_hit(void *h, const char *key, long long max, long long window_ms,
                         long long now_ms, limiter_result *out)
{
    rlimiter *l = h;
    aop_err rc = redis_hit_once(l, key, max, window_ms, out);
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
    .close = redis_close,
};

limiter *limiter_redis_new(struct redis_pool *p, const char *prefix, limiter *fallback)
{
    rlimiter *r = xcalloc(1, sizeof(*r));
    size_t pl = strlen(prefix);
    r->p = p;
    r->fallback = fallback;
    r->prefix = xmalloc(pl + 4);
    memcpy(r->prefix, prefix, pl);
    memcpy(r->prefix + pl, "rl:", 4);
    r->prefix_len = pl + 3;
    redis_script_init(&r->hit, hit_src);
    limiter *l = xmalloc(sizeof(*l));
    l->v = &redis_vtbl;
    l->h = r;
    return l;
}
