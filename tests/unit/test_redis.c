/*
 * Unit tests of the Redis pool and the Redis backends of the cache, limiter
 * and lock ports, against a real server: AOP_TEST_REDIS_URL (redis://HOST:PORT,
 * no database; `make test` sets it). Each test uses its own database number
 * (the test server runs with `databases 10000`) and empties it first. The
 * outage tests start their own redis-server on a free port in a temporary
 * directory and stop it by its pid. Without AOP_TEST_REDIS_URL (or, for the
 * outage tests, without redis-server) the tests are skipped; under
 * AOP_TEST_REQUIRE_SERVICES=1, as make test runs them, they fail.
 */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "infra/cache.h"
#include "infra/limiter.h"
#include "infra/lock.h"
#include "infra/redis.h"
#include "unit.h"

#define PREFIX "aoptest:"

/* The test server's URL, or NULL with the running test marked skipped. */
static const char *base_url(void)
{
    const char *u = getenv("AOP_TEST_REDIS_URL");
    if (u && *u)
        return u;
    unit_skip_service("AOP_TEST_REDIS_URL is not set");
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L};
    nanosleep(&ts, NULL);
}

static long long elapsed_ms(int64_t start_ns)
{
    return (clock_mono_ns() - start_ns) / 1000000;
}

/* A pool on database db of the test server, emptied; NULL when the test is
 * skipped or failed (recorded). */
static redis_pool *pool_on(int db, int flush)
{
    const char *base = base_url();
    if (!base)
        return NULL;
    char url[512], err[256];
    snprintf(url, sizeof(url), "%s/%d", base, db);
    redis_pool *p = redis_pool_open(url, 4, 2000, err, sizeof(err));
    if (!p) {
        unit_fail(__FILE__, __LINE__, err);
        return NULL;
    }
    if (flush) {
        const char *argv[] = {"FLUSHDB"};
        redisReply *r;
        if (redis_pool_command(p, 1, argv, NULL, &r) == AOP_OK)
            freeReplyObject(r);
    }
    return p;
}

/* Two pools on db (two "instances"; the first flushes it): false, with
 * nothing open, when either cannot be opened. */
static bool two_pools(int db, redis_pool **pa, redis_pool **pb)
{
    *pa = pool_on(db, 1);
    *pb = pool_on(db, 0);
    if (*pa && *pb)
        return true;
    redis_pool_close(*pa);
    redis_pool_close(*pb);
    return false;
}

/* A port on 127.0.0.1 where nothing listens (free a moment ago). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int value_is(cache *c, const char *key, const char *want)
{
    char *v = NULL;
    size_t n = 0;
    aop_err e = cache_get(c, key, &v, &n);
    int same = e == AOP_OK && n == strlen(want) && memcmp(v, want, n) == 0;
    free(v);
    return same;
}

static aop_err get_err(cache *c, const char *key)
{
    char *v = NULL;
    size_t n = 0;
    aop_err e = cache_get(c, key, &v, &n);
    free(v);
    return e;
}

static long long counter_of(cache *c, const char *key)
{
    long long v = -1;
    return cache_counter(c, key, &v) == AOP_OK ? v : -1;
}

/* ---- the pool ---- */

static void pool_refuses_malformed_urls(void)
{
    static const char *bad[] = {
        "http://h",        "redis://",         "redis://h:0",      "redis://h:99999",
        "redis://h:x",     "redis://h/x",      "redis://h/1x",     "redis://pass@h",
        "redis://:%zz@h",  "redis://[::1",     "redis://h?x=1",    "rediss://h",
        NULL,
    };
    char err[256];
    for (int i = 0; bad[i]; i++) {
        err[0] = '\0';
        redis_pool *p = redis_pool_open(bad[i], 2, 100, err, sizeof(err));
        if (p)
            printf("  accepted %s\n", bad[i]);
        redis_pool_close(p);
        CHECK(p == NULL);
        CHECK(strncmp(err, "REDIS_URL: ", 11) == 0);
    }
    CHECK(redis_pool_open("rediss://h", 2, 100, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "TLS") != NULL);
}

static void pool_down_at_start_answers_fast(void)
{
    char url[64], err[256];
    snprintf(url, sizeof(url), "redis://:secret%%40x@127.0.0.1:%d/3", free_port());
    redis_pool *p = redis_pool_open(url, 2, 1000, err, sizeof(err));
    CHECK(p != NULL);
    CHECK(!redis_pool_up(p));
    int64_t t0 = clock_mono_ns();
    for (int i = 0; i < 200; i++) {
        if (redis_pool_ping(p) != AOP_ERR_UNAVAILABLE) {
            redis_pool_close(p);
            CHECK(!"ping answered");
        }
    }
    long long ms = elapsed_ms(t0);
    buf m;
    buf_init(&m, 0);
    redis_pool_render_metrics(p, &m);
    int has = strstr(m.data, "aop_redis_up 0\n") && strstr(m.data, "aop_redis_errors_total ") &&
              strstr(m.data, "aop_redis_reconnects_total 0\n");
    buf_free(&m);
    redis_pool_close(p);
    CHECK(ms < 1000);
    CHECK(has);
}

static void pool_ping_and_binary_command(void)
{
    redis_pool *p = pool_on(11, 1);
    if (!p)
        return;
    CHECK(redis_pool_up(p));
    CHECK_INT(redis_pool_ping(p), AOP_OK);
    const char *argv[] = {"SET", "bin", "a\0b"};
    size_t lens[] = {3, 3, 3};
    redisReply *r = NULL;
    aop_err e = redis_pool_command(p, 3, argv, lens, &r);
    if (r)
        freeReplyObject(r);
    const char *get[] = {"STRLEN", "bin"};
    r = NULL;
    aop_err e2 = redis_pool_command(p, 2, get, NULL, &r);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    const char *bad[] = {"NOSUCHCOMMAND"};
    r = NULL;
    aop_err e3 = redis_pool_command(p, 1, bad, NULL, &r);
    int is_err = r && r->type == REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    redis_pool_close(p);
    CHECK_INT(e, AOP_OK);
    CHECK_INT(e2, AOP_OK);
    CHECK_INT(n, 3);
    CHECK_INT(e3, AOP_OK);
    CHECK(is_err);
}

/* ---- the cache ---- */

static void cache_round_trip(void)
{
    redis_pool *p = pool_on(12, 1);
    if (!p)
        return;
    cache *c = cache_redis_new(p, PREFIX);
    CHECK_STR(cache_backend_name(c), "redis");
    CHECK_INT(get_err(c, "absent"), AOP_ERR_NOT_FOUND);
    CHECK_INT(cache_set(c, "k", "v1", 2, 60000), AOP_OK);
    CHECK(value_is(c, "k", "v1"));
    CHECK_INT(cache_set(c, "k", "v2", 2, 60000), AOP_OK);
    CHECK(value_is(c, "k", "v2"));
    CHECK_INT(cache_add(c, "k", "v3", 2, 60000), AOP_ERR_CONFLICT);
    CHECK(value_is(c, "k", "v2"));
    CHECK_INT(cache_add(c, "fresh", "a", 1, 60000), AOP_OK);
    CHECK(value_is(c, "fresh", "a"));
    CHECK_INT(cache_del(c, "k"), AOP_OK);
    CHECK_INT(cache_del(c, "k"), AOP_OK); /* absent: still OK */
    CHECK_INT(get_err(c, "k"), AOP_ERR_NOT_FOUND);
    /* an empty value is a value */
    CHECK_INT(cache_set(c, "empty", "", 0, 60000), AOP_OK);
    CHECK(value_is(c, "empty", ""));
    /* counters */
    CHECK_INT(counter_of(c, "gen"), 0);
    long long v = 0;
    CHECK_INT(cache_incr(c, "gen", &v), AOP_OK);
    CHECK_INT(v, 1);
    CHECK_INT(cache_incr(c, "gen", &v), AOP_OK);
    CHECK_INT(v, 2);
    CHECK_INT(counter_of(c, "gen"), 2);
    /* a counter and a value of the same name do not meet */
    CHECK_INT(get_err(c, "gen"), AOP_ERR_NOT_FOUND);
    cache_stats st;
    CHECK_INT(cache_read_stats(c, &st), AOP_OK);
    CHECK(st.entries >= 2);
    CHECK_INT(st.counters, 1);
    CHECK(st.bytes > 0);
    buf m;
    buf_init(&m, 0);
    cache_render_metrics(c, &m);
    int has = strstr(m.data, "aop_cache_hits_total{backend=\"redis\"}") != NULL &&
              strstr(m.data, "aop_cache_counters{backend=\"redis\"} 1\n") != NULL;
    buf_free(&m);
    CHECK(has);
    cache_close(c);
    redis_pool_close(p);
}

/* The batch read: one script for every key and link. */
static void cache_get_many_in_one_script(void)
{
    redis_pool *p = pool_on(22, 1);
    if (!p)
        return;
    cache *c = cache_redis_new(p, PREFIX);
    check_cache_get_many(c);
    cache_close(c);
    redis_pool_close(p);
}

static void cache_binary_values(void)
{
    redis_pool *p = pool_on(13, 1);
    if (!p)
        return;
    cache *c = cache_redis_new(p, PREFIX);
    const char bin[] = {'a', '\0', 'b', '\0', '\xff', '\r', '\n', 'c'};
    CHECK_INT(cache_set(c, "bin", bin, sizeof(bin), 60000), AOP_OK);
    char *v = NULL;
    size_t n = 0;
    CHECK_INT(cache_get(c, "bin", &v, &n), AOP_OK);
    int same = n == sizeof(bin) && memcmp(v, bin, n) == 0 && v[n] == '\0';
    free(v);
    CHECK(same);
    /* keys with spaces and glob characters are plain keys */
    CHECK_INT(cache_set(c, "a key*[x]?", "1", 1, 60000), AOP_OK);
    CHECK(value_is(c, "a key*[x]?", "1"));
    CHECK_INT(get_err(c, "a key"), AOP_ERR_NOT_FOUND);
    cache_close(c);
    redis_pool_close(p);
}

static void cache_ttl_expires(void)
{
    redis_pool *p = pool_on(14, 1);
    if (!p)
        return;
    cache *c = cache_redis_new(p, PREFIX);
    int64_t t0 = clock_mono_ns();
    CHECK_INT(cache_set(c, "short", "v", 1, 80), AOP_OK);
    CHECK_INT(cache_add(c, "short-add", "v", 1, 80), AOP_OK);
    CHECK_INT(cache_set(c, "long", "v", 1, 60000), AOP_OK);
    int hit = value_is(c, "short", "v");
    if (elapsed_ms(t0) < 60) /* unless a loaded machine paused us */
        CHECK(hit);
    sleep_ms(150);
    CHECK_INT(get_err(c, "short"), AOP_ERR_NOT_FOUND);
    CHECK_INT(get_err(c, "short-add"), AOP_ERR_NOT_FOUND);
    CHECK(value_is(c, "long", "v"));
    /* an expired value no longer blocks an add */
    CHECK_INT(cache_add(c, "short", "w", 1, 60000), AOP_OK);
    CHECK(value_is(c, "short", "w"));
    cache_close(c);
    redis_pool_close(p);
}

static void cache_two_instances_share(void)
{
    redis_pool *pa, *pb;
    if (!two_pools(15, &pa, &pb))
        return;
    cache *a = cache_redis_new(pa, PREFIX), *b = cache_redis_new(pb, PREFIX);
    CHECK_INT(cache_set(a, "item", "from-a", 6, 60000), AOP_OK);
    CHECK(value_is(b, "item", "from-a"));
    CHECK_INT(cache_add(b, "item", "from-b", 6, 60000), AOP_ERR_CONFLICT);
    CHECK_INT(cache_del(b, "item"), AOP_OK);
    CHECK_INT(get_err(a, "item"), AOP_ERR_NOT_FOUND);
    long long v;
    CHECK_INT(cache_incr(a, "gen", &v), AOP_OK);
    CHECK_INT(cache_incr(b, "gen", &v), AOP_OK);
    CHECK_INT(v, 2);
    CHECK_INT(counter_of(a, "gen"), 2);
    /* another prefix is another namespace */
    cache *other = cache_redis_new(pb, "other:");
    CHECK_INT(counter_of(other, "gen"), 0);
    cache_close(other);
    cache_close(a);
    cache_close(b);
    redis_pool_close(pa);
    redis_pool_close(pb);
}

typedef struct {
    cache *c;
    int n;
    int errors;
} incr_job;

static void *incr_many(void *arg)
{
    incr_job *j = arg;
    for (int i = 0; i < j->n; i++) {
        long long v;
        if (cache_incr(j->c, "hot", &v) != AOP_OK)
            j->errors++;
    }
    return NULL;
}

static void cache_threads_lose_no_increment(void)
{
    redis_pool *pa, *pb;
    if (!two_pools(16, &pa, &pb))
        return;
    cache *a = cache_redis_new(pa, PREFIX), *b = cache_redis_new(pb, PREFIX);
    enum { THREADS = 8, EACH = 150 };
    pthread_t t[THREADS];
    incr_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (incr_job){.c = i % 2 ? a : b, .n = EACH};
        pthread_create(&t[i], NULL, incr_many, &jobs[i]);
    }
    int errors = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        errors += jobs[i].errors;
    }
    CHECK_INT(errors, 0);
    CHECK_INT(counter_of(a, "hot"), THREADS * EACH);
    cache_close(a);
    cache_close(b);
    redis_pool_close(pa);
    redis_pool_close(pb);
}

/* ---- the limiter ---- */

static void limiter_counts_exactly(void)
{
    redis_pool *p = pool_on(17, 1);
    if (!p)
        return;
    limiter *l = limiter_redis_new(p, PREFIX, limiter_mem_new(100));
    limiter_result r;
    for (int i = 1; i <= 3; i++) {
        CHECK_INT(limiter_hit(l, "k", 3, 60000, &r), AOP_OK);
        CHECK(r.allowed);
        CHECK_INT(r.limit, 3);
        CHECK_INT(r.remaining, 3 - i);
        CHECK_INT(r.reset_s, 60);
        CHECK_INT(r.retry_after_s, 0);
    }
    CHECK_INT(limiter_hit(l, "k", 3, 60000, &r), AOP_OK);
    CHECK(!r.allowed);
    CHECK_INT(r.remaining, 0);
    CHECK_INT(r.retry_after_s, r.reset_s);
    CHECK(r.reset_s >= 59 && r.reset_s <= 60);
    /* other keys are independent; max 0 refuses everything */
    CHECK_INT(limiter_hit(l, "other", 3, 60000, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(limiter_hit(l, "zero", 0, 60000, &r), AOP_OK);
    CHECK(!r.allowed);
    /* rounding up: 2.5 s left is 3 */
    CHECK_INT(limiter_hit(l, "round", 5, 2500, &r), AOP_OK);
    CHECK_INT(r.reset_s, 3);
    /* long keys are hashed by the port, still counted */
    char longkey[300];
    memset(longkey, 'x', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    CHECK_INT(limiter_hit(l, longkey, 1, 60000, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(limiter_hit(l, longkey, 1, 60000, &r), AOP_OK);
    CHECK(!r.allowed);
    limiter_close(l);
    redis_pool_close(p);
}

static void limiter_shared_by_two_instances(void)
{
    redis_pool *pa, *pb;
    if (!two_pools(18, &pa, &pb))
        return;
    limiter *a = limiter_redis_new(pa, PREFIX, limiter_mem_new(100));
    limiter *b = limiter_redis_new(pb, PREFIX, limiter_mem_new(100));
    limiter_result r;
    /* the callers' clocks disagree by an hour: Redis' clock decides */
    CHECK_INT(limiter_hit_at(a, "ip", 3, 60000, 1000, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(limiter_hit_at(b, "ip", 3, 60000, 3600000, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(r.remaining, 1);
    CHECK_INT(limiter_hit_at(a, "ip", 3, 60000, 2000, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(limiter_hit_at(b, "ip", 3, 60000, 3601000, &r), AOP_OK);
    CHECK(!r.allowed);
    limiter_close(a);
    limiter_close(b);
    redis_pool_close(pa);
    redis_pool_close(pb);
}

/* EXISTS of one of our keys (prefixed here): 1, 0, or -1 on an error. */
static long long key_exists(redis_pool *p, const char *key)
{
    char k[128];
    snprintf(k, sizeof(k), PREFIX "%s", key);
    const char *argv[] = {"EXISTS", k};
    redisReply *r;
    if (redis_pool_command(p, 2, argv, NULL, &r) != AOP_OK)
        return -1;
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/* One rider through cache_get_many_with: the hit's result, the reads' in r. */
static aop_err ride_once(limiter *l, cache *c, const char *key, long long max,
                         cache_read *r, int n, limiter_result *res, aop_err *read_rc)
{
    limiter_ride ride;
    if (!limiter_ride_begin(l, key, max, 60000, &ride))
        return AOP_ERR_INTERNAL;
    *read_rc = cache_get_many_with(c, r, n, '\x01', &ride.call);
    return limiter_ride_end(&ride, res);
}

static void limiter_rides_in_the_cache_round_trip(void)
{
    redis_pool *p = pool_on(30, 1);
    if (!p)
        return;
    cache *c = cache_redis_new(p, PREFIX);
    limiter *l = limiter_redis_new(p, PREFIX, limiter_mem_new(100));
    CHECK_INT(cache_set(c, "a", "va", 2, 60000), AOP_OK);
    for (int i = 1; i <= 3; i++) {
        cache_read r[2] = {{.key = "a"}, {.key = "b"}};
        limiter_result res;
        aop_err read_rc;
        CHECK_INT(ride_once(l, c, "user:1", 2, r, 2, &res, &read_rc), AOP_OK);
        CHECK_INT(read_rc, AOP_OK);
        CHECK_INT(r[0].rc, AOP_OK);
        CHECK_STR(r[0].val ? r[0].val : "", "va");
        CHECK_INT(r[1].rc, AOP_ERR_NOT_FOUND);
        CHECK_INT(res.allowed, i <= 2);
        CHECK_INT(res.limit, 2);
        CHECK_INT(res.remaining, i < 2 ? 2 - i : 0);
        CHECK_INT(res.reset_s, 60);
        CHECK_INT(res.retry_after_s, i <= 2 ? 0 : 60);
        free(r[0].val);
        free(r[1].val);
    }
    /* the very counter limiter_hit counts in */
    limiter_result res;
    CHECK_INT(limiter_hit(l, "user:1", 4, 60000, &res), AOP_OK);
    CHECK(res.allowed);
    CHECK_INT(res.remaining, 0);
    /* a cache that is not on the rider's pool (here: in memory) sends it alone */
    cache *m = cache_mem_new(1 << 20);
    cache_read r = {.key = "a"};
    aop_err read_rc;
    CHECK_INT(ride_once(l, m, "user:2", 5, &r, 1, &res, &read_rc), AOP_OK);
    CHECK_INT(read_rc, AOP_OK);
    CHECK_INT(r.rc, AOP_ERR_NOT_FOUND);
    CHECK_INT(res.remaining, 4);
    CHECK_INT(key_exists(p, "rl:user:2"), 1);
    /* an invalid batch still sends the rider */
    cache_read bad = {.key = NULL};
    CHECK_INT(ride_once(l, c, "user:2", 5, &bad, 1, &res, &read_rc), AOP_OK);
    CHECK_INT(read_rc, AOP_ERR_INTERNAL);
    CHECK_INT(res.remaining, 3);
    /* the memory limiter never rides: its hits cost no round trip to share */
    limiter *ml = limiter_mem_new(10);
    limiter_ride ride;
    CHECK(!limiter_ride_begin(ml, "k", 1, 1000, &ride));
    limiter_close(ml);
    cache_close(m);
    limiter_close(l);
    cache_close(c);
    redis_pool_close(p);
}

static void limiter_unhit_takes_a_hit_back(void)
{
    redis_pool *p = pool_on(31, 1);
    if (!p)
        return;
    limiter *l = limiter_redis_new(p, PREFIX, limiter_mem_new(100));
    limiter_result r;
    CHECK_INT(limiter_hit(l, "k", 2, 60000, &r), AOP_OK);
    CHECK_INT(limiter_hit(l, "k", 2, 60000, &r), AOP_OK);
    CHECK_INT(limiter_unhit(l, "k"), AOP_OK);
    CHECK_INT(limiter_hit(l, "k", 2, 60000, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(r.remaining, 0);
    CHECK_INT(limiter_hit(l, "k", 2, 60000, &r), AOP_OK);
    CHECK(!r.allowed);
    /* the only hit of a window: the window goes too, as if never opened */
    CHECK_INT(limiter_hit(l, "solo", 2, 60000, &r), AOP_OK);
    CHECK_INT(key_exists(p, "rl:solo"), 1);
    CHECK_INT(limiter_unhit(l, "solo"), AOP_OK);
    CHECK_INT(key_exists(p, "rl:solo"), 0);
    /* nothing to take back: no counter is made, none goes below zero */
    CHECK_INT(limiter_unhit(l, "none"), AOP_OK);
    CHECK_INT(key_exists(p, "rl:none"), 0);
    CHECK_INT(limiter_hit(l, "none", 1, 60000, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(r.remaining, 0);
    limiter_close(l);
    redis_pool_close(p);
}

static void limiter_rides_fall_back_when_unreachable(void)
{
    char url[64], err[256];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", free_port());
    redis_pool *p = redis_pool_open(url, 2, 1000, err, sizeof(err));
    CHECK(p != NULL);
    cache *c = cache_redis_new(p, PREFIX);
    limiter *l = limiter_redis_new(p, PREFIX, limiter_mem_new(100));
    int allowed = 0, ok = 1, unavailable = 1;
    for (int i = 0; i < 4; i++) {
        cache_read r = {.key = "a"};
        limiter_result res;
        aop_err read_rc;
        ok &= ride_once(l, c, "user:1", 2, &r, 1, &res, &read_rc) == AOP_OK;
        unavailable &= read_rc == AOP_ERR_UNAVAILABLE && r.rc == AOP_ERR_UNAVAILABLE;
        allowed += res.allowed;
        if (i == 1) /* taken back from the fallback, where it was counted */
            ok &= limiter_unhit(l, "user:1") == AOP_OK;
    }
    limiter_close(l);
    cache_close(c);
    redis_pool_close(p);
    CHECK(ok);
    CHECK(unavailable);
    CHECK_INT(allowed, 3);
}

static void limiter_window_resets(void)
{
    redis_pool *p = pool_on(19, 1);
    if (!p)
        return;
    limiter *l = limiter_redis_new(p, PREFIX, limiter_mem_new(100));
    limiter_result r;
    CHECK_INT(limiter_hit(l, "w", 1, 150, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(r.reset_s, 1);
    CHECK_INT(limiter_hit(l, "w", 1, 150, &r), AOP_OK);
    CHECK(!r.allowed);
    CHECK_INT(r.retry_after_s, 1);
    sleep_ms(250);
    CHECK_INT(limiter_hit(l, "w", 1, 150, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(r.remaining, 0);
    /* the end is fixed when the window opens: refused hits do not move it */
    limiter_close(l);
    redis_pool_close(p);
}

/* ---- the lock ---- */

static void lock_exclusion_between_instances(void)
{
    redis_pool *pa, *pb;
    if (!two_pools(20, &pa, &pb))
        return;
    lock *a = lock_redis_new(pa, PREFIX, lock_mem_new());
    lock *b = lock_redis_new(pb, PREFIX, lock_mem_new());
    char ta[LOCK_TOKEN_LEN], tb[LOCK_TOKEN_LEN];
    CHECK_STR(lock_backend_name(a), "redis");
    CHECK_INT(lock_entries(a), -1);
    CHECK_INT(lock_acquire(a, "wf:1", 60000, 0, ta), AOP_OK);
    CHECK_INT(lock_acquire(b, "wf:1", 60000, 0, tb), AOP_ERR_RESOURCE_LOCKED);
    CHECK_STR(tb, "");
    int64_t t0 = clock_mono_ns();
    CHECK_INT(lock_acquire(b, "wf:1", 60000, 50, tb), AOP_ERR_RESOURCE_LOCKED);
    CHECK(elapsed_ms(t0) >= 50);
    /* a token that does not hold the lock can neither release nor extend it */
    CHECK_INT(lock_release(b, "wf:1", "0123456789abcdef0123456789abcdef"), AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_extend(b, "wf:1", "0123456789abcdef0123456789abcdef", 1000),
              AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_acquire(b, "wf:1", 60000, 0, tb), AOP_ERR_RESOURCE_LOCKED);
    /* other keys are free */
    CHECK_INT(lock_acquire(b, "wf:2", 60000, 0, tb), AOP_OK);
    CHECK_INT(lock_release(b, "wf:2", tb), AOP_OK);
    CHECK_INT(lock_extend(a, "wf:1", ta, 60000), AOP_OK);
    CHECK_INT(lock_release(a, "wf:1", ta), AOP_OK);
    CHECK_INT(lock_release(a, "wf:1", ta), AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_acquire(b, "wf:1", 60000, 0, tb), AOP_OK);
    CHECK_INT(lock_release(b, "wf:1", tb), AOP_OK);
    lock_close(a);
    lock_close(b);
    redis_pool_close(pa);
    redis_pool_close(pb);
}

static void lock_expiry_and_stale_token(void)
{
    redis_pool *pa, *pb;
    if (!two_pools(21, &pa, &pb))
        return;
    lock *a = lock_redis_new(pa, PREFIX, lock_mem_new());
    lock *b = lock_redis_new(pb, PREFIX, lock_mem_new());
    char ta[LOCK_TOKEN_LEN], tb[LOCK_TOKEN_LEN];
    CHECK_INT(lock_acquire(a, "k", 100, 0, ta), AOP_OK);
    /* b waits (the wrapper polls) until a's TTL ends */
    int64_t t0 = clock_mono_ns();
    CHECK_INT(lock_acquire(b, "k", 60000, 2000, tb), AOP_OK);
    CHECK(elapsed_ms(t0) >= 50);
    /* a's stale token cannot release or extend b's lock */
    CHECK_INT(lock_release(a, "k", ta), AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_extend(a, "k", ta, 60000), AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_acquire(a, "k", 60000, 0, ta), AOP_ERR_RESOURCE_LOCKED);
    /* extend keeps the lock past its first TTL */
    CHECK_INT(lock_extend(b, "k", tb, 300), AOP_OK);
    sleep_ms(150);
    CHECK_INT(lock_extend(b, "k", tb, 300), AOP_OK);
    sleep_ms(150);
    CHECK_INT(lock_acquire(a, "k", 60000, 0, ta), AOP_ERR_RESOURCE_LOCKED);
    CHECK_INT(lock_release(b, "k", tb), AOP_OK);
    lock_close(a);
    lock_close(b);
    redis_pool_close(pa);
    redis_pool_close(pb);
}

/* ---- degradation: nothing listens ---- */

static void backends_degrade_when_unreachable(void)
{
    char url[64], err[256];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", free_port());
    redis_pool *p = redis_pool_open(url, 4, 1000, err, sizeof(err));
    CHECK(p != NULL);
    cache *c = cache_redis_new(p, PREFIX);
    limiter *l = limiter_redis_new(p, PREFIX, limiter_mem_new(100));
    lock *k = lock_redis_new(p, PREFIX, lock_mem_new());
    int64_t t0 = clock_mono_ns();
    aop_err eg = get_err(c, "x");
    long long get_ms = elapsed_ms(t0);
    aop_err es = cache_set(c, "x", "1", 1, 1000);
    aop_err ea = cache_add(c, "x", "1", 1, 1000);
    long long v = 7;
    aop_err ec = cache_counter(c, "g", &v);
    /* the limiter falls back and still limits */
    limiter_result r;
    int allowed = 0, hits_ok = 1;
    for (int i = 0; i < 5; i++) {
        hits_ok &= limiter_hit(l, "ip", 2, 60000, &r) == AOP_OK;
        allowed += r.allowed;
    }
    /* the lock falls back and still excludes */
    char t1[LOCK_TOKEN_LEN], t2[LOCK_TOKEN_LEN];
    aop_err l1 = lock_acquire(k, "wf", 60000, 0, t1);
    aop_err l2 = lock_acquire(k, "wf", 60000, 20, t2);
    aop_err l3 = lock_extend(k, "wf", t1, 60000);
    aop_err l4 = lock_release(k, "wf", t1);
    aop_err l5 = lock_acquire(k, "wf", 60000, 0, t2);
    aop_err l6 = lock_release(k, "wf", t2);
    aop_err l7 = lock_release(k, "wf", "0123456789abcdef0123456789abcdef");
    long long all_ms = elapsed_ms(t0);
    lock_close(k);
    limiter_close(l);
    cache_close(c);
    redis_pool_close(p);
    CHECK_INT(eg, AOP_ERR_UNAVAILABLE);
    CHECK(get_ms < 1000);
    CHECK_INT(es, AOP_ERR_UNAVAILABLE);
    CHECK_INT(ea, AOP_ERR_UNAVAILABLE);
    CHECK_INT(ec, AOP_ERR_UNAVAILABLE);
    CHECK_INT(v, 0);
    CHECK(hits_ok);
    CHECK_INT(allowed, 2);
    CHECK_INT(l1, AOP_OK);
    CHECK_INT(l2, AOP_ERR_RESOURCE_LOCKED);
    CHECK_INT(l3, AOP_OK);
    CHECK_INT(l4, AOP_OK);
    CHECK_INT(l5, AOP_OK);
    CHECK_INT(l6, AOP_OK);
    CHECK_INT(l7, AOP_ERR_UNAVAILABLE); /* Redis's token or nobody's: cannot tell */
    CHECK(all_ms < 1000);
}

/* ---- an outage of a server of our own ---- */

typedef struct {
    char dir[64];
    char pidfile[128];
    int port;
    char url[64];
} own_server;

/* Starts redis-server on own->port (chosen when 0) in own->dir with the
 * extra options opts (e.g. --requirepass); 0 when it answers (through a pool
 * on url_auth when given). */
static int own_start_opts(own_server *s, const char *opts, const char *url_auth)
{
    if (!s->dir[0]) {
        snprintf(s->dir, sizeof(s->dir), "/tmp/aop-redis-test-XXXXXX");
        if (!mkdtemp(s->dir))
            return -1;
        snprintf(s->pidfile, sizeof(s->pidfile), "%s/redis.pid", s->dir);
    }
    if (!s->port)
        s->port = free_port();
    snprintf(s->url, sizeof(s->url), "redis://127.0.0.1:%d", s->port);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "redis-server --port %d --bind 127.0.0.1 --save '' --daemonize yes "
             "--pidfile %s --dir %s --logfile %s/redis.log %s >/dev/null 2>&1",
             s->port, s->pidfile, s->dir, s->dir, opts);
    if (system(cmd) != 0)
        return -1;
    char err[128];
    redis_pool *p = redis_pool_open(url_auth ? url_auth : s->url, 1, 500, err, sizeof(err));
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        ok = redis_pool_ping(p) == AOP_OK;
        if (!ok)
            sleep_ms(50);
    }
    redis_pool_close(p);
    return ok ? 0 : -1;
}

static int own_start(own_server *s)
{
    return own_start_opts(s, "", NULL);
}

static pid_t own_pid(const own_server *s)
{
    FILE *f = fopen(s->pidfile, "r");
    long pid = -1;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = -1;
        fclose(f);
    }
    return (pid_t)pid;
}

/* Stops the server: saving its data first when save (SHUTDOWN SAVE), so a
 * restart finds it again; waits until the process is gone. */
static void own_stop(own_server *s, int save)
{
    pid_t pid = own_pid(s);
    if (save) {
        char err[128];
        redis_pool *p = redis_pool_open(s->url, 1, 2000, err, sizeof(err));
        const char *argv[] = {"SHUTDOWN", "SAVE"};
        redisReply *r;
        if (p && redis_pool_command(p, 2, argv, NULL, &r) == AOP_OK)
            freeReplyObject(r);
        redis_pool_close(p);
    } else if (pid > 0) {
        kill(pid, SIGTERM);
    }
    for (int i = 0; pid > 0 && i < 200 && kill(pid, 0) == 0; i++)
        sleep_ms(25);
}

static void own_cleanup(own_server *s)
{
    pid_t pid = own_pid(s);
    if (pid > 0 && kill(pid, 0) == 0)
        own_stop(s, 0);
    if (s->dir[0]) {
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            printf("  cannot remove %s\n", s->dir);
    }
}

/* After a restart, a pool's first command may meet a connection the old
 * server closed (it answers AOP_ERR_UNAVAILABLE once and drops every older
 * connection): pings until the pool answers, as the next request would. */
static void warm(redis_pool *p)
{
    for (int i = 0; i < 40 && redis_pool_ping(p) != AOP_OK; i++)
        sleep_ms(REDIS_POOL_RETRY_MS / 5);
}

/* true when the outage tests can start servers of their own; else the
 * running test is marked skipped. */
static bool redis_server_available(void)
{
    if (!base_url())
        return false;
    if (system("redis-server --version >/dev/null 2>&1") == 0)
        return true;
    unit_skip_service("redis-server is not installed");
    return false;
}

/* The password (percent-encoded in the URL) is sent with AUTH and the
 * database chosen with SELECT on every connection; a wrong password leaves
 * the pool down. */
static void pool_auth_and_select(void)
{
    if (!redis_server_available())
        return;
    own_server s = {.port = free_port()};
    char good[128], bad[128], db0[128], err[128];
    snprintf(good, sizeof(good), "redis://:p%%40ss%%20w@127.0.0.1:%d/2", s.port);
    snprintf(bad, sizeof(bad), "redis://:wrong@127.0.0.1:%d/2", s.port);
    snprintf(db0, sizeof(db0), "redis://default:p%%40ss%%20w@127.0.0.1:%d", s.port);
    if (own_start_opts(&s, "--requirepass 'p@ss w'", good) < 0) {
        own_cleanup(&s);
        CHECK(!"cannot start redis-server");
    }
    redis_pool *pg = redis_pool_open(good, 2, 500, err, sizeof(err));
    redis_pool *pb = redis_pool_open(bad, 2, 500, err, sizeof(err));
    redis_pool *p0 = redis_pool_open(db0, 2, 500, err, sizeof(err));
    cache *cg = cache_redis_new(pg, PREFIX), *c0 = cache_redis_new(p0, PREFIX);
    aop_err set = cache_set(cg, "k", "v", 1, 60000);
    int seen_in_2 = value_is(cg, "k", "v");
    aop_err in_0 = get_err(c0, "k");
    int bad_up = redis_pool_up(pb);
    aop_err bad_ping = redis_pool_ping(pb);
    cache_close(cg);
    cache_close(c0);
    redis_pool_close(pg);
    redis_pool_close(pb);
    redis_pool_close(p0);
    own_cleanup(&s);
    CHECK_INT(set, AOP_OK);
    CHECK(seen_in_2);
    CHECK_INT(in_0, AOP_ERR_NOT_FOUND);
    CHECK(!bad_up);
    CHECK_INT(bad_ping, AOP_ERR_UNAVAILABLE);
}

/* Journaled deletes and increments are replayed when Redis is back; the
 * limiter and the lock fall back meanwhile and return afterwards. */
static void outage_replays_the_journal(void)
{
    if (!redis_server_available())
        return;
    own_server s = {0};
    if (own_start(&s) < 0) {
        own_cleanup(&s);
        CHECK(!"cannot start redis-server");
    }
    char err[128];
    redis_pool *pa = redis_pool_open(s.url, 4, 500, err, sizeof(err));
    redis_pool *pb = redis_pool_open(s.url, 4, 500, err, sizeof(err));
    cache *a = cache_redis_new(pa, PREFIX), *b = cache_redis_new(pb, PREFIX);
    limiter *l = limiter_redis_new(pa, PREFIX, limiter_mem_new(100));
    lock *k = lock_redis_new(pa, PREFIX, lock_mem_new());
    long long v;
    aop_err e1 = cache_set(a, "item", "old", 3, 600000);
    aop_err e2 = cache_set(a, "keep", "yes", 3, 600000);
    aop_err e3 = cache_incr(a, "gen", &v);
    own_stop(&s, 1);

    /* Redis is away */
    int64_t t0 = clock_mono_ns();
    aop_err d1 = cache_del(a, "item");
    aop_err d2 = cache_incr(a, "gen", &v);
    aop_err d3 = cache_set(a, "rv:a:jti", "1", 1, 600000);
    aop_err d4 = get_err(a, "keep");
    long long down_ms = elapsed_ms(t0);
    limiter_result r;
    int allowed = 0;
    for (int i = 0; i < 3; i++) {
        limiter_hit(l, "ip", 1, 60000, &r);
        allowed += r.allowed;
    }
    char tk[LOCK_TOKEN_LEN], tk2[LOCK_TOKEN_LEN];
    aop_err k1 = lock_acquire(k, "wf", 60000, 0, tk);
    int was_up = redis_pool_up(pa);

    /* Redis is back with its data; b never missed it */
    int started = own_start(&s) == 0;
    sleep_ms(REDIS_POOL_RETRY_MS + 50);
    /* any command on a's pool replays a's journal (the reconnect hook) */
    aop_err p1 = redis_pool_ping(pa);
    if (p1 != AOP_OK) /* the connection the old server closed */
        p1 = redis_pool_ping(pa);
    warm(pb);
    int item_gone = get_err(b, "item") == AOP_ERR_NOT_FOUND;
    long long gen = counter_of(b, "gen");
    int revoked = value_is(b, "rv:a:jti", "1");
    int keep = value_is(a, "keep", "yes");
    int up = redis_pool_up(pa);
    /* the fallback's lock is still held on this instance, and released there */
    aop_err k2 = lock_acquire(k, "wf", 60000, 0, tk2);
    aop_err k3 = lock_release(k, "wf", tk);
    aop_err k4 = lock_acquire(k, "wf", 60000, 0, tk2);
    aop_err k5 = lock_release(k, "wf", tk2);
    aop_err l1 = limiter_hit(l, "ip2", 1, 60000, &r);
    buf m;
    buf_init(&m, 0);
    redis_pool_render_metrics(pa, &m);
    int metrics_ok = strstr(m.data, "aop_redis_up 1\n") &&
                     !strstr(m.data, "aop_redis_reconnects_total 0\n");
    buf_free(&m);

    lock_close(k);
    limiter_close(l);
    cache_close(a);
    cache_close(b);
    redis_pool_close(pa);
    redis_pool_close(pb);
    own_cleanup(&s);

    CHECK_INT(e1, AOP_OK);
    CHECK_INT(e2, AOP_OK);
    CHECK_INT(e3, AOP_OK);
    CHECK_INT(d1, AOP_ERR_UNAVAILABLE);
    CHECK_INT(d2, AOP_ERR_UNAVAILABLE);
    CHECK_INT(d3, AOP_ERR_UNAVAILABLE);
    CHECK_INT(d4, AOP_ERR_UNAVAILABLE);
    CHECK(down_ms < 1000);
    CHECK_INT(allowed, 1);
    CHECK_INT(k1, AOP_OK);
    CHECK(!was_up);
    CHECK(started);
    CHECK_INT(p1, AOP_OK);
    CHECK(up);
    CHECK(item_gone);
    CHECK_INT(gen, 2);
    CHECK(revoked);
    CHECK(keep);
    CHECK_INT(k2, AOP_ERR_RESOURCE_LOCKED);
    CHECK_INT(k3, AOP_OK);
    CHECK_INT(k4, AOP_OK);
    CHECK_INT(k5, AOP_OK);
    CHECK_INT(l1, AOP_OK);
    CHECK(metrics_ok);
}

/* When more writes fail than the journal keeps, everything cached under the
 * prefix is deleted and every counter goes up once Redis is back. */
static void outage_overflow_invalidates_everything(void)
{
    if (!redis_server_available())
        return;
    own_server s = {0};
    if (own_start(&s) < 0) {
        own_cleanup(&s);
        CHECK(!"cannot start redis-server");
    }
    char err[128];
    redis_pool *pa = redis_pool_open(s.url, 2, 500, err, sizeof(err));
    redis_pool *pb = redis_pool_open(s.url, 2, 500, err, sizeof(err));
    cache *a = cache_redis_new(pa, PREFIX), *b = cache_redis_new(pb, PREFIX);
    cache *foreign = cache_redis_new(pb, "foreign:");
    long long v;
    int setup = 1;
    for (int i = 0; i < 1200; i++) { /* more than one SCAN step */
        char key[32];
        snprintf(key, sizeof(key), "k%d", i);
        setup &= cache_set(b, key, "v", 1, 600000) == AOP_OK;
    }
    setup &= cache_incr(b, "g1", &v) == AOP_OK && cache_incr(b, "g2", &v) == AOP_OK &&
             cache_incr(b, "g2", &v) == AOP_OK;
    setup &= cache_set(foreign, "k1", "theirs", 6, 600000) == AOP_OK;
    own_stop(&s, 1);

    int64_t t0 = clock_mono_ns();
    int journaled = 1;
    for (int i = 0; i < CACHE_REDIS_JOURNAL_MAX + 5; i++) {
        char key[32];
        snprintf(key, sizeof(key), "x%d", i);
        journaled &= cache_del(a, key) == AOP_ERR_UNAVAILABLE;
    }
    long long down_ms = elapsed_ms(t0);

    int started = own_start(&s) == 0;
    sleep_ms(REDIS_POOL_RETRY_MS + 50);
    warm(pb);
    aop_err g = get_err(a, "k1"); /* replays first: the recovery */
    int gone = get_err(b, "k1") == AOP_ERR_NOT_FOUND && get_err(b, "k1199") == AOP_ERR_NOT_FOUND;
    long long g1 = counter_of(b, "g1"), g2 = counter_of(b, "g2");
    int theirs = value_is(foreign, "k1", "theirs");

    cache_close(foreign);
    cache_close(a);
    cache_close(b);
    redis_pool_close(pa);
    redis_pool_close(pb);
    own_cleanup(&s);
    CHECK(setup);
    CHECK(journaled);
    CHECK(down_ms < 5000);
    CHECK(started);
    CHECK_INT(g, AOP_ERR_NOT_FOUND);
    CHECK(gone);
    CHECK_INT(g1, 2);
    CHECK_INT(g2, 3);
    CHECK(theirs);
}

const unit_test redis_tests[] = {
    TEST(pool_refuses_malformed_urls),
    TEST(pool_down_at_start_answers_fast),
    TEST(pool_ping_and_binary_command),
    TEST(cache_round_trip),
    TEST(cache_binary_values),
    TEST(cache_get_many_in_one_script),
    TEST(cache_ttl_expires),
    TEST(cache_two_instances_share),
    TEST(cache_threads_lose_no_increment),
    TEST(limiter_counts_exactly),
    TEST(limiter_shared_by_two_instances),
    TEST(limiter_window_resets),
    TEST(limiter_rides_in_the_cache_round_trip),
    TEST(limiter_unhit_takes_a_hit_back),
    TEST(limiter_rides_fall_back_when_unreachable),
    TEST(lock_exclusion_between_instances),
    TEST(lock_expiry_and_stale_token),
    TEST(backends_degrade_when_unreachable),
    TEST(pool_auth_and_select),
    TEST(outage_replays_the_journal),
    TEST(outage_overflow_invalidates_everything),
    {NULL, NULL},
};
