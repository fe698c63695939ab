/* Unit tests of the cache port and its in-process backend. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "infra/cache.h"
#include "infra/cache_item.h"
#include "unit.h"

/* A clock the tests move by hand, for exact expiry. */
static int64_t fake_now_ms;

static int64_t fake_clock(void)
{
    return __atomic_load_n(&fake_now_ms, __ATOMIC_RELAXED);
}

static cache *fake_clock_cache(size_t budget, unsigned stripes)
{
    fake_now_ms = 1000;
    cache_mem_opts o = {.byte_budget = budget, .stripes = stripes, .now_ms = fake_clock};
    return cache_mem_new_opts(&o);
}

/* What one entry is charged (see cache.h). */
static size_t charge(size_t klen, size_t vlen)
{
    return CACHE_MEM_ENTRY_OVERHEAD + klen + 1 + vlen + 1;
}

/* 1 when key is there (the hit is counted, and the key becomes the most recent). */
static int present(cache *c, const char *key)
{
    char *v = NULL;
    size_t n = 0;
    aop_err e = cache_get(c, key, &v, &n);
    free(v);
    return e == AOP_OK;
}

static long long stat_bytes(cache *c)
{
    cache_stats st;
    return cache_read_stats(c, &st) == AOP_OK ? st.bytes : -1;
}

static long long stat_entries(cache *c)
{
    cache_stats st;
    return cache_read_stats(c, &st) == AOP_OK ? st.entries : -1;
}

static void set_get_round_trip_binary(void)
{
    cache *c = cache_mem_new(1 << 20);
    const char bin[] = {'a', '\0', 'b', '\0', '\xff', 'c'};
    CHECK_INT(cache_set(c, "k", bin, sizeof(bin), 60000), AOP_OK);
    char *v = NULL;
    size_t n = 0;
    CHECK_INT(cache_get(c, "k", &v, &n), AOP_OK);
    int same = n == sizeof(bin) && memcmp(v, bin, n) == 0 && v[n] == '\0';
    free(v);
    CHECK(same);
    /* A second set replaces the value; an empty value is a value. */
    CHECK_INT(cache_set(c, "k", "", 0, 60000), AOP_OK);
    CHECK_INT(cache_get(c, "k", &v, &n), AOP_OK);
    same = n == 0 && v && v[0] == '\0';
    free(v);
    CHECK(same);
    CHECK_INT(stat_entries(c), 1);
    CHECK_STR(cache_backend_name(c), "memory");
    cache_close(c);
}

static void get_misses_absent_key(void)
{
    cache *c = cache_mem_new(1 << 20);
    CHECK_INT(cache_set(c, "present", "x", 1, 60000), AOP_OK);
    char *v = (char *)"untouched";
    size_t n = 99;
    CHECK_INT(cache_get(c, "absent", &v, &n), AOP_ERR_NOT_FOUND);
    CHECK(v == NULL);
    CHECK_INT(n, 0);
    CHECK(!present(c, "presen"));
    CHECK(!present(c, "present2"));
    cache_close(c);
}

static void ttl_expires_on_real_clock(void)
{
    cache *c = cache_mem_new(1 << 20);
    int64_t t0 = clock_mono_ns();
    CHECK_INT(cache_set(c, "short", "v", 1, 30), AOP_OK);
    CHECK_INT(cache_set(c, "long", "v", 1, 60000), AOP_OK);
    int hit = present(c, "short");
    if (clock_mono_ns() - t0 < 25 * 1000000LL) /* unless a loaded machine paused us */
        CHECK(hit);
    nanosleep(&(struct timespec){.tv_nsec = 60 * 1000000L}, NULL);
    CHECK(!present(c, "short"));
    CHECK(present(c, "long"));
    CHECK_INT(stat_entries(c), 1); /* the expired entry was reclaimed by the get */
    cache_close(c);
}

static void ttl_expires_at_the_exact_ms(void)
{
    cache *c = fake_clock_cache(1 << 20, 0);
    CHECK_INT(cache_set(c, "k", "v", 1, 100), AOP_OK);
    fake_now_ms += 99;
    CHECK(present(c, "k"));
    fake_now_ms += 1;
    CHECK(!present(c, "k"));
    /* A huge TTL does not overflow into the past. */
    CHECK_INT(cache_set(c, "forever", "v", 1, 0x7fffffffffffffffLL), AOP_OK);
    fake_now_ms += 1000000000;
    CHECK(present(c, "forever"));
    cache_close(c);
}

static void del_removes_value(void)
{
    cache *c = cache_mem_new(1 << 20);
    CHECK_INT(cache_set(c, "a", "1", 1, 60000), AOP_OK);
    CHECK_INT(cache_set(c, "b", "2", 1, 60000), AOP_OK);
    CHECK_INT(cache_del(c, "a"), AOP_OK);
    CHECK(!present(c, "a"));
    CHECK(present(c, "b"));
    CHECK_INT(cache_del(c, "a"), AOP_OK); /* absent: still fine */
    CHECK_INT(stat_entries(c), 1);
    CHECK_INT(stat_bytes(c), (long long)charge(1, 1));
    cache_close(c);
}

static void add_only_when_absent_or_expired(void)
{
    cache *c = fake_clock_cache(1 << 20, 0);
    CHECK_INT(cache_add(c, "k", "first", 5, 100), AOP_OK);
    CHECK_INT(cache_add(c, "k", "second", 6, 100), AOP_ERR_CONFLICT);
    char *v = NULL;
    size_t n = 0;
    CHECK_INT(cache_get(c, "k", &v, &n), AOP_OK);
    int kept = n == 5 && memcmp(v, "first", 5) == 0;
    free(v);
    CHECK(kept);
    fake_now_ms += 100; /* expired but not reclaimed yet: add must not see it */
    CHECK_INT(cache_add(c, "k", "third", 5, 100), AOP_OK);
    CHECK_INT(cache_get(c, "k", &v, &n), AOP_OK);
    kept = n == 5 && memcmp(v, "third", 5) == 0;
    free(v);
    CHECK(kept);
    CHECK_INT(cache_del(c, "k"), AOP_OK);
    CHECK_INT(cache_add(c, "k", "fourth", 6, 100), AOP_OK);
    CHECK_INT(stat_entries(c), 1);
    cache_close(c);
}

static void incr_starts_from_absent(void)
{
    cache *c = cache_mem_new(1 << 20);
    long long v = 0;
    CHECK_INT(cache_incr(c, "gen:a", &v), AOP_OK);
    CHECK_INT(v, 1);
    CHECK_INT(cache_incr(c, "gen:a", &v), AOP_OK);
    CHECK_INT(v, 2);
    CHECK_INT(cache_incr(c, "gen:b", &v), AOP_OK);
    CHECK_INT(v, 1);
    CHECK_INT(cache_counter(c, "gen:a", &v), AOP_OK);
    CHECK_INT(v, 2);
    CHECK_INT(cache_counter(c, "gen:none", &v), AOP_OK);
    CHECK_INT(v, 0);
    cache_stats st;
    CHECK_INT(cache_read_stats(c, &st), AOP_OK);
    CHECK_INT(st.counters, 2);
    CHECK_INT(st.entries, 0);
    cache_close(c);
}

/* A generation counter must not restart from 0 when values crowd the cache,
 * nor when time passes (counters have no TTL). */
static void incr_survives_eviction_and_time(void)
{
    cache *c = fake_clock_cache(4096, 1);
    long long v = 0;
    for (int i = 0; i < 5; i++)
        CHECK_INT(cache_incr(c, "gen:workflows", &v), AOP_OK);
    char key[32], val[200] = {0};
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "filler:%d", i);
        CHECK_INT(cache_set(c, key, val, sizeof(val), 1000), AOP_OK);
    }
    fake_now_ms += 365LL * 24 * 3600 * 1000;
    CHECK_INT(cache_incr(c, "gen:workflows", &v), AOP_OK);
    CHECK_INT(v, 6);
    cache_close(c);
}

#define INCR_THREADS 4
#define INCR_EACH 10000

typedef struct {
    cache *c;
    long long *seen; /* INCR_EACH values this thread got */
    int failures;
} incr_job;

static void *incr_worker(void *arg)
{
    incr_job *j = arg;
    for (int i = 0; i < INCR_EACH; i++)
        if (cache_incr(j->c, "gen:shared", &j->seen[i]) != AOP_OK)
            j->failures++;
    return NULL;
}

static void incr_concurrent_is_exact(void)
{
    cache *c = cache_mem_new(1 << 20);
    pthread_t t[INCR_THREADS];
    incr_job jobs[INCR_THREADS];
    long long *seen = calloc(INCR_THREADS * INCR_EACH, sizeof(*seen));
    unsigned char *hit = calloc(INCR_THREADS * INCR_EACH + 1, 1);
    CHECK(seen && hit);
    for (int i = 0; i < INCR_THREADS; i++) {
        jobs[i] = (incr_job){.c = c, .seen = seen + (size_t)i * INCR_EACH};
        CHECK_INT(pthread_create(&t[i], NULL, incr_worker, &jobs[i]), 0);
    }
    int failures = 0, dup_or_range = 0, not_increasing = 0;
    for (int i = 0; i < INCR_THREADS; i++) {
        pthread_join(t[i], NULL);
        failures += jobs[i].failures;
        for (int k = 0; k < INCR_EACH; k++) {
            long long x = jobs[i].seen[k];
            if (x < 1 || x > INCR_THREADS * INCR_EACH || hit[x]++)
                dup_or_range++;
            if (k && x <= jobs[i].seen[k - 1])
                not_increasing++;
        }
    }
    free(seen);
    free(hit);
    long long last = 0;
    aop_err e = cache_incr(c, "gen:shared", &last);
    cache_close(c);
    CHECK_INT(failures, 0);
    CHECK_INT(dup_or_range, 0); /* every value 1..40000 handed out exactly once */
    CHECK_INT(not_increasing, 0);
    CHECK_INT(e, AOP_OK);
    CHECK_INT(last, INCR_THREADS * INCR_EACH + 1);
}

/* Far more than the budget through the default 16 stripes: the charged bytes
 * never pass the budget, the newest keys stay, the oldest are gone. */
static void budget_holds_and_keeps_newest(void)
{
    const size_t budget = 64 * 1024;
    cache *c = cache_mem_new(budget);
    char key[32], val[100];
    memset(val, 'v', sizeof(val));
    const int total = 5000; /* about 27 times what fits */
    long long max_bytes = 0;
    for (int i = 0; i < total; i++) {
        snprintf(key, sizeof(key), "item:%05d", i);
        CHECK_INT(cache_set(c, key, val, sizeof(val), 60000), AOP_OK);
        long long b = stat_bytes(c);
        if (b > max_bytes)
            max_bytes = b;
    }
    CHECK(max_bytes <= (long long)budget);
    CHECK(max_bytes >= (long long)budget / 2); /* the budget is used, not wasted */
    int fits = (int)(budget / charge(10, sizeof(val)));
    CHECK(stat_entries(c) <= fits);
    int newest_missing = 0, oldest_present = 0;
    for (int i = total - 40; i < total; i++) {
        snprintf(key, sizeof(key), "item:%05d", i);
        newest_missing += !present(c, key);
    }
    /* Stripes fill unevenly, so "oldest" means older than four cachefuls. */
    for (int i = 0; i < total - 4 * fits; i++) {
        snprintf(key, sizeof(key), "item:%05d", i);
        oldest_present += present(c, key);
    }
    CHECK_INT(newest_missing, 0);
    CHECK_INT(oldest_present, 0);
    cache_close(c);
}

/* One stripe, room for exactly ten entries: a get makes a key the most recent. */
static void lru_get_keeps_key(void)
{
    const size_t one = charge(2, 8); /* keys "k0".."k9", 8-byte values */
    cache *c = fake_clock_cache(10 * one, 1);
    char key[16];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        CHECK_INT(cache_set(c, key, "12345678", 8, 60000), AOP_OK);
    }
    CHECK_INT(stat_entries(c), 10);
    CHECK(present(c, "k0")); /* k0 is now the most recent; k1 the least */
    CHECK_INT(cache_set(c, "ka", "12345678", 8, 60000), AOP_OK);
    CHECK_INT(stat_entries(c), 10);
    CHECK(!present(c, "k1"));
    CHECK(present(c, "k0"));
    CHECK(present(c, "ka"));
    /* Order now (least first): k2..k9, k0, ka. A set refreshes too. */
    CHECK_INT(cache_set(c, "k2", "87654321", 8, 60000), AOP_OK);
    CHECK_INT(cache_set(c, "kb", "12345678", 8, 60000), AOP_OK);
    CHECK(!present(c, "k3"));
    CHECK(present(c, "k2"));
    CHECK_INT(stat_bytes(c), (long long)(10 * one));
    cache_close(c);
}

/* When room is needed, expired entries go before live ones, however recent. */
static void eviction_drops_expired_first(void)
{
    const size_t one = charge(2, 8);
    cache *c = fake_clock_cache(4 * one, 1);
    CHECK_INT(cache_set(c, "k0", "12345678", 8, 60000), AOP_OK);
    CHECK_INT(cache_set(c, "k1", "12345678", 8, 60000), AOP_OK);
    CHECK_INT(cache_set(c, "k2", "12345678", 8, 10), AOP_OK);
    CHECK_INT(cache_set(c, "k3", "12345678", 8, 60000), AOP_OK);
    fake_now_ms += 10;
    CHECK_INT(cache_set(c, "k4", "12345678", 8, 60000), AOP_OK);
    CHECK_INT(stat_entries(c), 4);
    CHECK(present(c, "k0"));
    CHECK(present(c, "k1"));
    CHECK(present(c, "k3"));
    CHECK(present(c, "k4"));
    cache_close(c);
}

/* A value larger than a stripe's share is not stored (and replaces nothing). */
static void oversized_value_is_not_stored(void)
{
    cache *c = cache_mem_new(16 * 1024); /* 16 stripes of 1 KiB */
    char *big = calloc(1, 2000);
    CHECK(big);
    CHECK_INT(cache_set(c, "k", "small", 5, 60000), AOP_OK);
    aop_err e = cache_set(c, "k", big, 2000, 60000);
    aop_err e2 = cache_add(c, "other", big, 2000, 60000);
    free(big);
    CHECK_INT(e, AOP_OK);
    CHECK_INT(e2, AOP_OK);
    CHECK(!present(c, "k"));
    CHECK(!present(c, "other"));
    CHECK_INT(stat_bytes(c), 0);
    cache_close(c);

    c = cache_mem_new(0); /* a zero budget stores nothing */
    CHECK_INT(cache_set(c, "k", "v", 1, 60000), AOP_OK);
    CHECK(!present(c, "k"));
    cache_close(c);
}

static void bad_arguments_are_refused(void)
{
    cache *c = cache_mem_new(1 << 20);
    CHECK_INT(cache_set(c, "k", "v", 1, 0), AOP_ERR_INTERNAL);
    CHECK_INT(cache_add(c, "k", "v", 1, -5), AOP_ERR_INTERNAL);
    CHECK_INT(cache_set(c, NULL, "v", 1, 100), AOP_ERR_INTERNAL);
    CHECK_INT(cache_set(c, "k", NULL, 3, 100), AOP_ERR_INTERNAL);
    CHECK_INT(cache_set(c, "k", NULL, 0, 100), AOP_OK);
    CHECK(present(c, "k"));
    CHECK_INT(stat_entries(c), 1);
    buf out;
    buf_init(&out, 0);
    cache_render_metrics(c, &out);
    int counted = strstr(out.data, "aop_cache_errors_total{backend=\"memory\"} 4\n") != NULL;
    buf_free(&out);
    cache_close(c);
    CHECK(counted);
}

static void metrics_count_hits_and_misses(void)
{
    cache *c = cache_mem_new(1 << 20);
    CHECK_INT(cache_set(c, "k", "value", 5, 60000), AOP_OK);
    CHECK(present(c, "k"));
    CHECK(present(c, "k"));
    CHECK(!present(c, "x"));
    CHECK(!present(c, "y"));
    CHECK(!present(c, "z"));
    long long v;
    CHECK_INT(cache_incr(c, "gen", &v), AOP_OK);
    CHECK_INT(cache_add(c, "k", "v", 1, 100), AOP_ERR_CONFLICT); /* not an error */
    buf out;
    buf_init(&out, 0);
    cache_render_metrics(c, &out);
    char bytes_line[96];
    snprintf(bytes_line, sizeof(bytes_line), "\naop_cache_bytes{backend=\"memory\"} %zu\n",
             charge(1, 5));
    const char *want[] = {
        "# HELP aop_cache_hits_total ",
        "\n# TYPE aop_cache_hits_total counter\naop_cache_hits_total{backend=\"memory\"} 2\n",
        "# HELP aop_cache_misses_total ",
        "\n# TYPE aop_cache_misses_total counter\naop_cache_misses_total{backend=\"memory\"} 3\n",
        "\naop_cache_errors_total{backend=\"memory\"} 0\n",
        "\n# TYPE aop_cache_entries gauge\naop_cache_entries{backend=\"memory\"} 1\n",
        "\n# TYPE aop_cache_bytes gauge\n",
        bytes_line,
        "\naop_cache_budget_bytes{backend=\"memory\"} 1048576\n",
        "\naop_cache_counters{backend=\"memory\"} 1\n",
    };
    int missing = -1;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]) && missing < 0; i++)
        if (!out.data || !strstr(out.data, want[i]))
            missing = (int)i;
    if (missing >= 0)
        printf("  missing metrics text: %s\n  in:\n%s", want[missing], out.data);
    buf_free(&out);
    cache_close(c);
    CHECK_INT(missing, -1);
}

#define MIX_THREADS 4

typedef struct {
    cache *c;
    int id;
    size_t budget;
    int bad;
} mix_job;

/* Sets, gets, adds and dels over a small key space that overflows the budget. */
static void *mix_worker(void *arg)
{
    mix_job *j = arg;
    char key[32], val[300];
    unsigned r = (unsigned)j->id * 2654435761u + 1;
    for (int i = 0; i < 20000; i++) {
        r = r * 1103515245u + 12345u;
        snprintf(key, sizeof(key), "mix:%u", (r >> 8) % 2000);
        size_t len = (r >> 4) % sizeof(val);
        memset(val, 'a' + (int)(len % 26), len);
        char *got = NULL;
        size_t n = 0;
        switch (r % 4) {
        case 0:
        case 1:
            if (cache_get(j->c, key, &got, &n) == AOP_OK &&
                (got[n] != '\0' || (n && (size_t)(got[0] - 'a') != n % 26)))
                j->bad++;
            free(got);
            break;
        case 2:
            j->bad += cache_set(j->c, key, val, len, 50 + (r % 100)) != AOP_OK;
            break;
        default:
            if (r & 0x100)
                j->bad += cache_del(j->c, key) != AOP_OK;
            else
                cache_add(j->c, key, val, len, 100);
        }
        if (i % 1000 == 0) {
            cache_stats st;
            if (cache_read_stats(j->c, &st) != AOP_OK || st.bytes > (long long)j->budget)
                j->bad++;
        }
    }
    return NULL;
}

/* Several threads at once: values are never torn, the budget holds. */
static void concurrent_mixed_use_is_consistent(void)
{
    const size_t budget = 128 * 1024;
    cache *c = cache_mem_new(budget);
    pthread_t t[MIX_THREADS];
    mix_job jobs[MIX_THREADS];
    for (int i = 0; i < MIX_THREADS; i++) {
        jobs[i] = (mix_job){.c = c, .id = i, .budget = budget};
        CHECK_INT(pthread_create(&t[i], NULL, mix_worker, &jobs[i]), 0);
    }
    int bad = 0;
    for (int i = 0; i < MIX_THREADS; i++) {
        pthread_join(t[i], NULL);
        bad += jobs[i].bad;
    }
    long long bytes = stat_bytes(c);
    cache_close(c);
    CHECK_INT(bad, 0);
    CHECK(bytes >= 0 && bytes <= (long long)budget);
}

/* Closing a full cache frees everything (ASan's leak check runs at exit). */
static void close_frees_many_entries(void)
{
    cache *c = cache_mem_new(64 << 20);
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "entry:%d", i);
        CHECK_INT(cache_set(c, key, key, strlen(key), 60000), AOP_OK);
        if (i % 100 == 0) {
            long long v;
            CHECK_INT(cache_incr(c, key, &v), AOP_OK);
        }
    }
    CHECK_INT(stat_entries(c), 20000);
    cache_close(c);
    cache_close(NULL);
}

/* cache_item: a fill made from a read that began before a change lands
 * under a key nobody reads any more; the next read after the change misses
 * and the one after that hits the new value. */
static void item_fill_before_change_is_never_read(void)
{
    cache *c = cache_mem_new(1 << 20);
    cache_slot early, slot;
    char *v = NULL;
    size_t len = 0;
    CHECK_INT(cache_item_get(c, "wf", "id1", &slot, &v, &len), AOP_ERR_NOT_FOUND);
    CHECK_STR(slot.key, "wf:id1");
    cache_item_fill(c, &slot, "v1", 2, 60000);
    CHECK_INT(cache_item_get(c, "wf", "id1", &slot, &v, &len), AOP_OK);
    CHECK_INT(len, 2);
    CHECK(memcmp(v, "v1", 3) == 0); /* NUL-terminated */
    free(v);

    /* a reader starts: it misses on a changed key and will fill late */
    cache_item_changed(c, "wf", "id1", 60000);
    CHECK_INT(cache_item_get(c, "wf", "id1", &early, &v, &len), AOP_ERR_NOT_FOUND);
    CHECK(strncmp(early.key, "wf:id1@", 7) == 0);
    /* a writer commits meanwhile, then the reader fills what it read before */
    cache_item_changed(c, "wf", "id1", 60000);
    cache_item_fill(c, &early, "stale", 5, 60000);
    CHECK_INT(cache_item_get(c, "wf", "id1", &slot, &v, &len), AOP_ERR_NOT_FOUND);
    CHECK(strcmp(slot.key, early.key) != 0);
    cache_item_fill(c, &slot, "v2", 2, 60000);
    CHECK_INT(cache_item_get(c, "wf", "id1", &slot, &v, &len), AOP_OK);
    CHECK(memcmp(v, "v2", 3) == 0);
    free(v);
    /* a fill never replaces a value already there */
    cache_item_fill(c, &slot, "v3", 2, 60000);
    CHECK_INT(cache_item_get(c, "wf", "id1", &slot, &v, &len), AOP_OK);
    CHECK(memcmp(v, "v2", 3) == 0);
    free(v);
    /* an empty value is an item, not a miss */
    CHECK_INT(cache_item_get(c, "wf", "id2", &slot, &v, &len), AOP_ERR_NOT_FOUND);
    cache_item_fill(c, &slot, "", 0, 60000);
    CHECK_INT(cache_item_get(c, "wf", "id2", &slot, &v, &len), AOP_OK);
    CHECK_INT(len, 0);
    free(v);
    cache_close(c);
}

/* The value of the sample of metric name in Prometheus text, or -1. */
static long long metric_value(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == '{') {
            const char *v = strstr(p, "} ");
            return v ? strtoll(v + 2, NULL, 10) : -1;
        }
    return -1;
}

/* cache_get_many on any backend (the Redis tests run it too): plain keys,
 * links followed in the same read, a link too long to be one, a link to
 * nothing, the counts, and the items read through it. */
void check_cache_get_many(cache *c)
{
    char long_link[CACHE_LINK_MAX + 3];
    memset(long_link, 'x', sizeof(long_link) - 1);
    long_link[0] = 'L';
    long_link[sizeof(long_link) - 1] = '\0';
    CHECK_INT(cache_set(c, "plain", "p", 1, 60000), AOP_OK);
    CHECK_INT(cache_set(c, "linked", "Ls1", 3, 60000), AOP_OK);
    CHECK_INT(cache_set(c, "linked@s1", "target", 6, 60000), AOP_OK);
    CHECK_INT(cache_set(c, "dangling", "Lgone", 5, 60000), AOP_OK);
    CHECK_INT(cache_set(c, "too-long", long_link, strlen(long_link), 60000), AOP_OK);
    CHECK_INT(cache_set(c, "empty", "", 0, 60000), AOP_OK);
    buf m;
    buf_init(&m, 0);
    cache_render_metrics(c, &m);
    long long hits0 = metric_value(m.data, "aop_cache_hits_total"),
              misses0 = metric_value(m.data, "aop_cache_misses_total");
    buf_free(&m);
    cache_read r[6] = {{.key = "plain"},  {.key = "linked"},   {.key = "absent"},
                       {.key = "dangling"}, {.key = "too-long"}, {.key = "empty"}};
    CHECK_INT(cache_get_many(c, r, 6, 'L'), AOP_OK);
    CHECK_INT(r[0].rc, AOP_OK);
    CHECK_STR(r[0].val, "p");
    CHECK_STR(r[0].at, "");
    CHECK_INT(r[1].rc, AOP_OK);
    CHECK_STR(r[1].val, "target");
    CHECK_INT(r[1].len, 6);
    CHECK_STR(r[1].at, "s1");
    CHECK_INT(r[2].rc, AOP_ERR_NOT_FOUND);
    CHECK(r[2].val == NULL);
    CHECK_INT(r[3].rc, AOP_ERR_NOT_FOUND);
    CHECK_STR(r[3].at, "gone");
    CHECK_INT(r[4].rc, AOP_ERR_NOT_FOUND);
    CHECK_STR(r[4].at, "");
    CHECK_INT(r[5].rc, AOP_OK);
    CHECK_INT(r[5].len, 0);
    for (int i = 0; i < 6; i++)
        free(r[i].val);
    buf_init(&m, 0);
    cache_render_metrics(c, &m);
    CHECK_INT(metric_value(m.data, "aop_cache_hits_total") - hits0, 3);
    CHECK_INT(metric_value(m.data, "aop_cache_misses_total") - misses0, 3);
    buf_free(&m);
    /* more keys than one batch takes: refused, each read says so */
    cache_read many[CACHE_MANY_MAX + 1];
    for (int i = 0; i <= CACHE_MANY_MAX; i++)
        many[i].key = "plain";
    CHECK_INT(cache_get_many(c, many, CACHE_MANY_MAX + 1, 'L'), AOP_ERR_INTERNAL);
    CHECK_INT(many[0].rc, AOP_ERR_INTERNAL);
    CHECK(many[0].val == NULL);
    /* an item that changed is read in one batch with other keys */
    cache_slot slot;
    char *v = NULL;
    size_t len = 0;
    CHECK_INT(cache_item_get(c, "wf", "many", &slot, &v, &len), AOP_ERR_NOT_FOUND);
    cache_item_fill(c, &slot, "v1", 2, 60000);
    cache_item_changed(c, "wf", "many", 60000);
    CHECK_INT(cache_item_get(c, "wf", "many", &slot, &v, &len), AOP_ERR_NOT_FOUND);
    cache_item_fill(c, &slot, "v2", 2, 60000);
    cache_read ir[2] = {{.key = "plain"}};
    cache_item_read(&ir[1], &slot, "wf", "many");
    CHECK_INT(cache_get_many(c, ir, 2, CACHE_ITEM_LINK), AOP_OK);
    CHECK_STR(ir[0].val, "p");
    free(ir[0].val);
    CHECK_INT(cache_item_took(&ir[1], &slot, &v, &len), AOP_OK);
    CHECK_STR(v, "v2");
    CHECK(ir[1].val == NULL);
    free(v);
}

static void get_many_follows_links(void)
{
    cache *c = cache_mem_new(1 << 20);
    check_cache_get_many(c);
    cache_close(c);
}

const unit_test cache_tests[] = {
    TEST(set_get_round_trip_binary),
    TEST(get_misses_absent_key),
    TEST(ttl_expires_on_real_clock),
    TEST(ttl_expires_at_the_exact_ms),
    TEST(del_removes_value),
    TEST(add_only_when_absent_or_expired),
    TEST(incr_starts_from_absent),
    TEST(incr_survives_eviction_and_time),
    TEST(incr_concurrent_is_exact),
    TEST(budget_holds_and_keeps_newest),
    TEST(lru_get_keeps_key),
    TEST(eviction_drops_expired_first),
    TEST(oversized_value_is_not_stored),
    TEST(bad_arguments_are_refused),
    TEST(metrics_count_hits_and_misses),
    TEST(concurrent_mixed_use_is_consistent),
    TEST(close_frees_many_entries),
    TEST(item_fill_before_change_is_never_read),
    TEST(get_many_follows_links),
    {NULL, NULL},
};
