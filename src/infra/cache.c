/* The cache port's wrapper: checks arguments, counts outcomes, renders metrics. */
#include "infra/cache.h"
#include "core/mem.h"
#include "core/str.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A linked key ("<key>@<rest>") longer than this is not followed. */
#define LINKED_KEY_MAX 512

struct cache {
    const cache_vtbl *vt;
    void *h;
    uint64_t hits;   /* atomics, relaxed: they are statistics */
    uint64_t misses;
    uint64_t errors;
};

cache *cache_new(const cache_vtbl *vt, void *h)
{
    cache *c = xcalloc(1, sizeof(*c));
    c->vt = vt;
    c->h = h;
    return c;
}

static void count(uint64_t *p)
{
    __atomic_fetch_add(p, 1, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Counts e as an error unless it is AOP_OK or the expected outcome ok2; returns e. */
static aop_err counted(cache *c, aop_err e, aop_err ok2)
{
    if (e != AOP_OK && e != ok2)
        count(&c->errors);
    return e;
}

static int value_ok(const char *key, const void *val, size_t len, long long ttl_ms)
{
    return key && (val || len == 0) && ttl_ms > 0;
}

aop_err cache_get(cache *c, const char *key, char **val, size_t *len)
{
    *val = NULL;
    *len = 0;
    if (!key)
        return counted(c, AOP_ERR_INTERNAL, AOP_OK);
    aop_err e = c->vt->get(c->h, key, val, len);
    if (e == AOP_OK)
        count(&c->hits);
    else if (e == AOP_ERR_NOT_FOUND)
        count(&c->misses);
    else
        count(&c->errors);
    return e;
}

/* get_many for a backend without one: a get per key, and one per link. */
static aop_err get_each(cache *c, cache_read *r, int n, char link)
{
    for (int i = 0; i < n; i++) {
        r[i].rc = c->vt->get(c->h, r[i].key, &r[i].val, &r[i].len);
        if (r[i].rc != AOP_OK || r[i].len < 1 || r[i].val[0] != link)
            continue;
        char *v = r[i].val, linked[LINKED_KEY_MAX];
        size_t rest = r[i].len - 1;
        r[i].val = NULL;
        r[i].len = 0;
        if (rest > CACHE_LINK_MAX ||
            STR_CAT(linked, sizeof(linked), r[i].key, "@", v + 1) >= sizeof(linked)) {
            r[i].rc = AOP_ERR_NOT_FOUND; /* not a link this port made */
        } else {
            memcpy(r[i].at, v + 1, rest + 1);
            r[i].rc = c->vt->get(c->h, linked, &r[i].val, &r[i].len);
        }
        free(v);
    }
    return AOP_OK;
}

aop_err cache_get_many(cache *c, cache_read *r, int n, char link)
{
    return cache_get_many_with(c, r, n, link, NULL);
}

aop_err cache_get_many_with(cache *c, cache_read *r, int n, char link, redis_eval_call *rider)
{
    for (int i = 0; i < n; i++) {
        r[i].rc = AOP_ERR_INTERNAL;
        r[i].val = NULL;
        r[i].len = 0;
        r[i].at[0] = '\0';
    }
    bool bad = n < 0 || n > CACHE_MANY_MAX;
    for (int i = 0; i < n && !bad; i++)
        bad = !r[i].key;
    aop_err e;
    if (rider && !bad && c->vt->get_many_with) {
        e = c->vt->get_many_with(c->h, r, n, link, rider);
    } else {
        if (rider)
            redis_pool_eval_many(rider->pool, rider, 1);
        e = bad               ? AOP_ERR_INTERNAL
            : c->vt->get_many ? c->vt->get_many(c->h, r, n, link)
                              : get_each(c, r, n, link);
    }
    for (int i = 0; i < n; i++) {
        if (e != AOP_OK) {
            free(r[i].val);
            r[i].val = NULL;
            r[i].len = 0;
            r[i].rc = e;
        }
        count(r[i].rc == AOP_OK               ? &c->hits
              : r[i].rc == AOP_ERR_NOT_FOUND ? &c->misses
                                             : &c->errors);
    }
    return e;
}

aop_err cache_set(cache *c, const char *key, const void *val, size_t len, long long ttl_ms)
{
    if (!value_ok(key, val, len, ttl_ms))
        return counted(c, AOP_ERR_INTERNAL, AOP_OK);
    return counted(c, c->vt->set(c->h, key, val ? val : "", len, ttl_ms), AOP_OK);
}

aop_err cache_add(cache *c, const char *key, const void *val, size_t len, long long ttl_ms)
{
    if (!value_ok(key, val, len, ttl_ms))
        return counted(c, AOP_ERR_INTERNAL, AOP_OK);
    return counted(c, c->vt->add(c->h, key, val ? val : "", len, ttl_ms), AOP_ERR_CONFLICT);
}

aop_err cache_del(cache *c, const char *key)
{
    if (!key)
        return counted(c, AOP_ERR_INTERNAL, AOP_OK);
    return counted(c, c->vt->del(c->h, key), AOP_OK);
}

aop_err cache_incr(cache *c, const char *key, long long *out)
{
    if (!key)
        return counted(c, AOP_ERR_INTERNAL, AOP_OK);
    return counted(c, c->vt->incr(c->h, key, out), AOP_OK);
}

aop_err cache_counter(cache *c, const char *key, long long *out)
{
    *out = 0;
    if (!key)
        return counted(c, AOP_ERR_INTERNAL, AOP_OK);
    return counted(c, c->vt->counter(c->h, key, out), AOP_OK);
}

const char *cache_backend_name(const cache *c)
{
    return c->vt->name;
}

aop_err cache_read_stats(cache *c, cache_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!c->vt->stats)
        return AOP_ERR_NOT_FOUND;
    return c->vt->stats(c->h, st);
}

static void render_one(buf *out, const char *name, const char *type, const char *help,
                       const char *backend, long long v)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s{backend=\"%s\"} %lld\n", name, help, name,
               type, name, backend, v);
}

void cache_render_metrics(cache *c, buf *out)
{
    const char *b = c->vt->name;
    render_one(out, "aop_cache_hits_total", "counter", "Cache reads that found a value.", b,
               (long long)load(&c->hits));
    render_one(out, "aop_cache_misses_total", "counter", "Cache reads that found no value.", b,
               (long long)load(&c->misses));
    render_one(out, "aop_cache_errors_total", "counter",
               "Cache operations the backend failed (unreachable, refused).", b,
               (long long)load(&c->errors));
    cache_stats st;
    if (cache_read_stats(c, &st) != AOP_OK)
        return;
    render_one(out, "aop_cache_entries", "gauge", "Values held by the cache (counters excluded).",
               b, st.entries);
    render_one(out, "aop_cache_bytes", "gauge",
               "Bytes charged against the cache budget (keys, values, entry headers).", b,
               st.bytes);
    if (st.budget > 0)
        render_one(out, "aop_cache_budget_bytes", "gauge", "The cache's byte budget.", b,
                   st.budget);
    render_one(out, "aop_cache_counters", "gauge", "Generation counters kept by the cache.", b,
               st.counters);
}

void cache_close(cache *c)
{
    if (!c)
        return;
    if (c->vt->close)
        c->vt->close(c->h);
    free(c);
}
