/* limiter.c - the limiter port: argument checks and key shortening shared by
 * every backend, then one call through the vtbl. */
#include "infra/limiter.h"
#include "core/clock.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define LONG_KEY_PREFIX "#sha256:"

/* Writes "#sha256:<64 hex>" for key into out (LIMITER_KEY_MAX + 1 bytes). */
static void long_key_digest(const char *key, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, len, d);
    size_t n = sizeof(LONG_KEY_PREFIX) - 1;
    memcpy(out, LONG_KEY_PREFIX, n);
    for (size_t i = 0; i < sizeof(d); i++) {
        out[n++] = hex[d[i] >> 4];
        out[n++] = hex[d[i] & 15];
    }
    out[n] = '\0';
}

/* key, or its digest in digest (LIMITER_KEY_MAX + 1 bytes) when longer. */
static const char *short_key(const char *key, char *digest)
{
    size_t len = strnlen(key, LIMITER_KEY_MAX + 1);
    if (len <= LIMITER_KEY_MAX)
        return key;
    long_key_digest(key, strlen(key), digest);
    return digest;
}

aop_err limiter_hit_at(limiter *l, const char *key, long long max, long long window_ms,
                       long long now_ms, limiter_result *out)
{
    if (!out)
        return AOP_ERR_INTERNAL;
    memset(out, 0, sizeof(*out));
    if (!l || !key || max < 0 || window_ms < 1)
        return AOP_ERR_INTERNAL;
    char digest[LIMITER_KEY_MAX + 1];
    key = short_key(key, digest);
    aop_err rc = l->v->hit(l->h, key, max, window_ms, now_ms, out);
    if (rc != AOP_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

aop_err limiter_hit(limiter *l, const char *key, long long max, long long window_ms,
                    limiter_result *out)
{
    return limiter_hit_at(l, key, max, window_ms, (long long)clock_now_ms(), out);
}

aop_err limiter_unhit(limiter *l, const char *key)
{
    if (!l || !key)
        return AOP_ERR_INTERNAL;
    char digest[LIMITER_KEY_MAX + 1];
    return l->v->unhit(l->h, short_key(key, digest), (long long)clock_now_ms());
}

bool limiter_rides(const limiter *l)
{
    return l && l->v->ride_begin;
}

bool limiter_ride_begin(limiter *l, const char *key, long long max, long long window_ms,
                        limiter_ride *r)
{
    if (!limiter_rides(l) || !key || max < 0 || window_ms < 1)
        return false;
    char digest[LIMITER_KEY_MAX + 1];
    const char *k = short_key(key, digest);
    memcpy(r->key, k, strlen(k) + 1);
    r->l = l;
    r->max = max;
    r->window_ms = window_ms;
    l->v->ride_begin(l->h, r);
    return true;
}

aop_err limiter_ride_end(limiter_ride *r, limiter_result *out)
{
    memset(out, 0, sizeof(*out));
    aop_err rc = r->l->v->ride_end(r->l->h, r, (long long)clock_now_ms(), out);
    if (rc != AOP_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

void limiter_close(limiter *l)
{
    if (!l)
        return;
    l->v->close(l->h);
    free(l);
}
