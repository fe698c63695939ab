/* Unit tests of the limiter port and its in-process backend (fixed windows). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "infra/limiter.h"
#include "unit.h"

#define T0 1000000LL /* a synthetic "now" in ms; any value works */

static void allows_exactly_max_then_refuses(void)
{
    limiter *l = limiter_mem_new(100);
    limiter_result r;
    for (int i = 1; i <= 5; i++) {
        CHECK_INT(limiter_hit_at(l, "k", 5, 60000, T0 + i, &r), AOP_OK);
        CHECK(r.allowed);
        CHECK_INT(r.limit, 5);
        CHECK_INT(r.remaining, 5 - i);
        CHECK_INT(r.retry_after_s, 0);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_INT(limiter_hit_at(l, "k", 5, 60000, T0 + 10, &r), AOP_OK);
        CHECK(!r.allowed);
        CHECK_INT(r.remaining, 0);
        CHECK_INT(r.limit, 5);
    }
    limiter_close(l);
}

static void max_zero_refuses_everything(void)
{
    limiter *l = limiter_mem_new(10);
    limiter_result r;
    CHECK_INT(limiter_hit_at(l, "k", 0, 1000, T0, &r), AOP_OK);
    CHECK(!r.allowed);
    CHECK_INT(r.remaining, 0);
    CHECK_INT(r.retry_after_s, 1);
    limiter_close(l);
}

/* Window of 2.5 s opened at T0: reset rounds the time left up to whole seconds. */
static void reset_and_retry_after_round_up(void)
{
    limiter *l = limiter_mem_new(10);
    limiter_result r;
    CHECK_INT(limiter_hit_at(l, "k", 2, 2500, T0, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(r.reset_s, 3); /* 2500 ms left */
    CHECK_INT(r.retry_after_s, 0);
    CHECK_INT(limiter_hit_at(l, "k", 2, 2500, T0 + 500, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(r.reset_s, 2); /* exactly 2000 ms left */
    CHECK_INT(limiter_hit_at(l, "k", 2, 2500, T0 + 501, &r), AOP_OK);
    CHECK(!r.allowed);
    CHECK_INT(r.reset_s, 2); /* 1999 ms */
    CHECK_INT(r.retry_after_s, 2);
    CHECK_INT(limiter_hit_at(l, "k", 2, 2500, T0 + 1600, &r), AOP_OK);
    CHECK_INT(r.reset_s, 1); /* 900 ms */
    CHECK_INT(r.retry_after_s, 1);
    CHECK_INT(limiter_hit_at(l, "k", 2, 2500, T0 + 2499, &r), AOP_OK);
    CHECK(!r.allowed);
    CHECK_INT(r.reset_s, 1); /* 1 ms */
    CHECK_INT(r.retry_after_s, 1);
    limiter_close(l);
}

static void new_window_after_window_ms(void)
{
    limiter *l = limiter_mem_new(10);
    limiter_result r;
    for (int i = 0; i < 4; i++)
        CHECK_INT(limiter_hit_at(l, "k", 3, 1000, T0 + i, &r), AOP_OK);
    CHECK(!r.allowed);
    /* The window opened at T0 ends at T0 + 1000: that instant is a new window. */
    CHECK_INT(limiter_hit_at(l, "k", 3, 1000, T0 + 999, &r), AOP_OK);
    CHECK(!r.allowed);
    CHECK_INT(limiter_hit_at(l, "k", 3, 1000, T0 + 1000, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(r.remaining, 2);
    CHECK_INT(r.reset_s, 1);
    /* The new window runs from its own first hit: T0 + 1000 .. T0 + 2000. */
    CHECK_INT(limiter_hit_at(l, "k", 3, 1000, T0 + 1999, &r), AOP_OK);
    CHECK_INT(r.remaining, 1);
    CHECK_INT(limiter_hit_at(l, "k", 3, 1000, T0 + 2000, &r), AOP_OK);
    CHECK_INT(r.remaining, 2);
    limiter_close(l);
}

static void distinct_keys_are_independent(void)
{
    limiter *l = limiter_mem_new(100);
    limiter_result r;
    for (int i = 0; i < 3; i++)
        CHECK_INT(limiter_hit_at(l, "login:1.2.3.4", 2, 60000, T0, &r), AOP_OK);
    CHECK(!r.allowed);
    CHECK_INT(limiter_hit_at(l, "login:1.2.3.5", 2, 60000, T0, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(r.remaining, 1);
    CHECK_INT(limiter_hit_at(l, "api:1.2.3.4", 2, 60000, T0, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(r.remaining, 1);
    limiter_close(l);
}

/* Keys over LIMITER_KEY_MAX are hashed, not truncated: a shared prefix is not a
 * shared counter, and the same long key always finds its own counter. */
static void long_keys_are_hashed_not_truncated(void)
{
    limiter *l = limiter_mem_new(100);
    limiter_result r;
    char a[300], b[300];
    memset(a, 'x', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memcpy(b, a, sizeof(b));
    b[sizeof(b) - 2] = 'y';
    CHECK_INT(limiter_hit_at(l, a, 1, 60000, T0, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(limiter_hit_at(l, b, 1, 60000, T0, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(limiter_hit_at(l, a, 1, 60000, T0, &r), AOP_OK);
    CHECK(!r.allowed);
    char edge[LIMITER_KEY_MAX + 1];
    memset(edge, 'x', LIMITER_KEY_MAX);
    edge[LIMITER_KEY_MAX] = '\0';
    CHECK_INT(limiter_hit_at(l, edge, 1, 60000, T0, &r), AOP_OK); /* kept as is */
    CHECK(r.allowed);
    limiter_close(l);
}

static void invalid_arguments_are_refused(void)
{
    limiter *l = limiter_mem_new(10);
    limiter_result r;
    r.allowed = true;
    CHECK_INT(limiter_hit_at(l, NULL, 1, 1000, T0, &r), AOP_ERR_INTERNAL);
    CHECK(!r.allowed);
    CHECK_INT(limiter_hit_at(l, "k", -1, 1000, T0, &r), AOP_ERR_INTERNAL);
    CHECK_INT(limiter_hit_at(l, "k", 1, 0, T0, &r), AOP_ERR_INTERNAL);
    CHECK_INT(limiter_hit_at(l, "k", 1, 1000, T0, NULL), AOP_ERR_INTERNAL);
    CHECK_INT(limiter_hit_at(NULL, "k", 1, 1000, T0, &r), AOP_ERR_INTERNAL);
    limiter_close(l);
    limiter_close(NULL);
}

/* 10,000 live keys into a 1,000-key limiter: never above the bound, and a
 * fresh key still gets a correct answer. */
static void max_keys_bound_holds(void)
{
    limiter *l = limiter_mem_new(1000);
    limiter_result r;
    limiter_mem_stats st;
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "ip:%d", i);
        CHECK_INT(limiter_hit_at(l, key, 3, 3600000, T0 + i, &r), AOP_OK);
        CHECK(r.allowed);
        CHECK_INT(r.remaining, 2);
        if (i % 500 == 0) {
            limiter_mem_stats_get(l, &st);
            CHECK(st.entries <= 1000);
        }
    }
    limiter_mem_stats_get(l, &st);
    CHECK_INT(st.max_keys, 1000);
    CHECK(st.entries <= 1000);
    CHECK(st.slots <= 1000);
    CHECK(st.entries >= 900); /* the stripes did fill up */
    CHECK(st.evictions >= 9000);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(limiter_hit_at(l, "fresh", 3, 3600000, T0 + 20000, &r), AOP_OK);
        CHECK(r.allowed);
        CHECK_INT(r.remaining, 2 - i);
    }
    CHECK_INT(limiter_hit_at(l, "fresh", 3, 3600000, T0 + 20000, &r), AOP_OK);
    CHECK(!r.allowed);
    limiter_close(l);
}

/* A 3-key limiter (one stripe): a full table first frees expired entries and
 * only when none has expired drops the window that ends soonest. */
static void full_table_evicts_soonest_ending(void)
{
    limiter *l = limiter_mem_new(3);
    limiter_result r;
    limiter_mem_stats st;
    CHECK_INT(limiter_hit_at(l, "a", 9, 1000, T0, &r), AOP_OK); /* ends T0 + 1000 */
    CHECK_INT(limiter_hit_at(l, "b", 9, 5000, T0, &r), AOP_OK); /* ends T0 + 5000 */
    CHECK_INT(limiter_hit_at(l, "c", 9, 3000, T0, &r), AOP_OK); /* ends T0 + 3000 */
    CHECK_INT(limiter_hit_at(l, "d", 9, 1000, T0 + 100, &r), AOP_OK); /* drops a */
    limiter_mem_stats_get(l, &st);
    CHECK_INT(st.entries, 3);
    CHECK_INT(st.evictions, 1);
    CHECK_INT(limiter_hit_at(l, "b", 9, 5000, T0 + 200, &r), AOP_OK);
    CHECK_INT(r.remaining, 7); /* kept its count */
    CHECK_INT(limiter_hit_at(l, "c", 9, 3000, T0 + 200, &r), AOP_OK);
    CHECK_INT(r.remaining, 7);
    CHECK_INT(limiter_hit_at(l, "a", 9, 1000, T0 + 200, &r), AOP_OK); /* drops d */
    CHECK_INT(r.remaining, 8); /* starts afresh */
    CHECK_INT(limiter_hit_at(l, "d", 9, 1000, T0 + 300, &r), AOP_OK); /* drops a again */
    CHECK_INT(r.remaining, 8);
    CHECK_INT(limiter_hit_at(l, "c", 9, 3000, T0 + 300, &r), AOP_OK);
    CHECK_INT(r.remaining, 6);
    /* At T0 + 4000 the windows of c and d are over: room without evicting b. */
    CHECK_INT(limiter_hit_at(l, "e", 9, 1000, T0 + 4000, &r), AOP_OK);
    CHECK_INT(limiter_hit_at(l, "f", 9, 1000, T0 + 4000, &r), AOP_OK);
    limiter_mem_stats_get(l, &st);
    CHECK_INT(st.evictions, 3);
    CHECK_INT(st.entries, 3);
    CHECK_INT(limiter_hit_at(l, "b", 9, 5000, T0 + 4000, &r), AOP_OK);
    CHECK_INT(r.remaining, 6);
    limiter_close(l);
}

/* Windows run on the caller's clock; if it steps back, a window is cut to end
 * no more than window_ms ahead and keeps its count. */
static void clock_stepping_back_caps_the_window(void)
{
    limiter *l = limiter_mem_new(10);
    limiter_result r;
    CHECK_INT(limiter_hit_at(l, "k", 5, 10000, T0, &r), AOP_OK);
    CHECK_INT(limiter_hit_at(l, "k", 5, 10000, T0 - 60000, &r), AOP_OK);
    CHECK_INT(r.remaining, 3);
    CHECK_INT(r.reset_s, 10);
    limiter_close(l);
}

typedef struct {
    limiter *l;
    const char *key;
    long long max;
    int hits;
    int allowed;
    int errors;
} hammer_arg;

static void *hammer(void *p)
{
    hammer_arg *a = p;
    limiter_result r;
    for (int i = 0; i < a->hits; i++) {
        if (limiter_hit(a->l, a->key, a->max, 3600000, &r) != AOP_OK)
            a->errors++;
        else if (r.allowed)
            a->allowed++;
    }
    return NULL;
}

/* Runs n threads of hits on keys[i]; returns the total allowed, -1 on error. */
static int run_threads(limiter *l, const char *const *keys, int n, long long max, int hits)
{
    pthread_t t[8];
    hammer_arg a[8];
    int total = 0, started = 0;
    for (; started < n; started++) {
        a[started] = (hammer_arg){.l = l, .key = keys[started], .max = max, .hits = hits};
        if (pthread_create(&t[started], NULL, hammer, &a[started]) != 0) {
            total = -1;
            break;
        }
    }
    for (int i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
        if (a[i].errors)
            total = -1;
        if (total >= 0)
            total += a[i].allowed;
    }
    return total;
}

static void threads_on_one_key_allow_exactly_max(void)
{
    limiter *l = limiter_mem_new(10000);
    const char *const keys[] = {"shared", "shared", "shared", "shared"};
    CHECK_INT(run_threads(l, keys, 4, 25000, 10000), 25000);
    limiter_result r;
    CHECK_INT(limiter_hit(l, "shared", 25000, 3600000, &r), AOP_OK);
    CHECK(!r.allowed);
    CHECK(r.retry_after_s >= 1);
    limiter_close(l);
}

static void threads_on_own_keys_do_not_interfere(void)
{
    limiter *l = limiter_mem_new(10000);
    const char *const keys[] = {"t0", "t1", "t2", "t3"};
    CHECK_INT(run_threads(l, keys, 4, 3000, 5000), 4 * 3000);
    limiter_close(l);
}

/* ASan's leak check at exit fails the run if close leaves anything behind. */
static void close_with_many_keys_frees_everything(void)
{
    limiter *l = limiter_mem_new(5000);
    limiter_result r;
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "user:%d", i);
        CHECK_INT(limiter_hit_at(l, key, 10, 1000 + i % 5000, T0 + i / 4, &r), AOP_OK);
    }
    limiter_mem_stats st;
    limiter_mem_stats_get(l, &st);
    CHECK(st.entries > 0 && st.entries <= 5000);
    limiter_close(l);
}

static void stats_of_other_backends_are_zero(void)
{
    limiter_mem_stats st;
    memset(&st, 0xff, sizeof(st));
    limiter_mem_stats_get(NULL, &st);
    CHECK_INT(st.entries, 0);
    CHECK_INT(st.max_keys, 0);
    limiter *l = limiter_mem_new(0); /* treated as 1 */
    limiter_mem_stats_get(l, &st);
    CHECK_INT(st.max_keys, 1);
    CHECK_STR(l->v->name, "memory");
    limiter_close(l);
}

static void unhit_takes_a_hit_back(void)
{
    limiter *l = limiter_mem_new(10);
    limiter_result r;
    CHECK_INT(limiter_hit_at(l, "k", 2, 60000, T0, &r), AOP_OK);
    CHECK_INT(limiter_hit_at(l, "k", 2, 60000, T0 + 1, &r), AOP_OK);
    CHECK_INT(l->v->unhit(l->h, "k", T0 + 2), AOP_OK);
    CHECK_INT(limiter_hit_at(l, "k", 2, 60000, T0 + 3, &r), AOP_OK);
    CHECK(r.allowed);
    CHECK_INT(r.remaining, 0);
    CHECK_INT(r.reset_s, 60); /* the same window */
    CHECK_INT(limiter_hit_at(l, "k", 2, 60000, T0 + 4, &r), AOP_OK);
    CHECK(!r.allowed);
    /* the only hit of a window: it closes, and the next hit opens a new one */
    CHECK_INT(limiter_hit_at(l, "solo", 2, 60000, T0, &r), AOP_OK);
    CHECK_INT(l->v->unhit(l->h, "solo", T0 + 30000), AOP_OK);
    CHECK_INT(limiter_hit_at(l, "solo", 2, 60000, T0 + 30000, &r), AOP_OK);
    CHECK_INT(r.remaining, 1);
    CHECK_INT(r.reset_s, 60);
    /* nothing to take back, or a window already over: no effect */
    CHECK_INT(limiter_unhit(l, "none"), AOP_OK);
    CHECK_INT(l->v->unhit(l->h, "k", T0 + 60000), AOP_OK);
    CHECK_INT(limiter_hit_at(l, "k", 2, 60000, T0 + 60000, &r), AOP_OK);
    CHECK_INT(r.remaining, 1);
    CHECK_INT(limiter_unhit(l, NULL), AOP_ERR_INTERNAL);
    limiter_ride ride;
    CHECK(!limiter_ride_begin(l, "k", 2, 60000, &ride)); /* counts its hits alone */
    limiter_close(l);
}

const unit_test limiter_tests[] = {
    TEST(allows_exactly_max_then_refuses),
    TEST(max_zero_refuses_everything),
    TEST(reset_and_retry_after_round_up),
    TEST(new_window_after_window_ms),
    TEST(distinct_keys_are_independent),
    TEST(long_keys_are_hashed_not_truncated),
    TEST(invalid_arguments_are_refused),
    TEST(max_keys_bound_holds),
    TEST(full_table_evicts_soonest_ending),
    TEST(clock_stepping_back_caps_the_window),
    TEST(threads_on_one_key_allow_exactly_max),
    TEST(threads_on_own_keys_do_not_interfere),
    TEST(close_with_many_keys_frees_everything),
    TEST(stats_of_other_backends_are_zero),
    TEST(unhit_takes_a_hit_back),
    {NULL, NULL},
};
