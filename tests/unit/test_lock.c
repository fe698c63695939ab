/* Unit tests of the lock port, its in-process backend, and the wrapper's
 * polling for backends without a wait. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/str.h"
#include "infra/lock.h"
#include "unit.h"

#define LONG_TTL 60000

/* A clock the tests move by hand, for exact expiry. */
static int64_t fake_now_ms;

static int64_t fake_clock(void)
{
    return __atomic_load_n(&fake_now_ms, __ATOMIC_RELAXED);
}

static void advance(int64_t ms)
{
    __atomic_fetch_add(&fake_now_ms, ms, __ATOMIC_RELAXED);
}

static lock *fake_clock_lock(unsigned stripes)
{
    fake_now_ms = 1000;
    lock_mem_opts o = {.stripes = stripes, .now_ms = fake_clock};
    return lock_mem_new_opts(&o);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long long elapsed_ms(int64_t start_ns)
{
    return (clock_mono_ns() - start_ns) / 1000000;
}

/* The value of a sample "name{backend=\"...\"} N" in Prometheus text, or -1. */
static long long metric(lock *l, const char *name)
{
    buf out;
    buf_init(&out, 0);
    lock_render_metrics(l, &out);
    char pat[128];
    snprintf(pat, sizeof(pat), "\n%s{backend=\"%s\"} ", name, lock_backend_name(l));
    const char *p = strstr(out.data, pat);
    long long v = p ? strtoll(p + strlen(pat), NULL, 10) : -1;
    buf_free(&out);
    return v;
}

static void exclusive_until_released(void)
{
    lock *l = lock_mem_new();
    char a[LOCK_TOKEN_LEN], b[LOCK_TOKEN_LEN];
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 0, a), AOP_OK);
    CHECK_INT(strlen(a), LOCK_TOKEN_LEN - 1);
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 0, b), AOP_ERR_RESOURCE_LOCKED);
    CHECK_STR(b, "");
    /* Another key is another lock. */
    CHECK_INT(lock_acquire(l, "wf:2", LONG_TTL, 0, b), AOP_OK);
    CHECK(strcmp(a, b) != 0);
    CHECK_INT(lock_entries(l), 2);
    CHECK_INT(lock_release(l, "wf:1", a), AOP_OK);
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 0, a), AOP_OK);
    CHECK_INT(lock_release(l, "wf:1", a), AOP_OK);
    CHECK_INT(lock_release(l, "wf:2", b), AOP_OK);
    CHECK_INT(lock_entries(l), 0);
    CHECK_STR(lock_backend_name(l), "memory");
    lock_close(l);
}

static void wrong_token_refused_and_lock_kept(void)
{
    lock *l = lock_mem_new();
    char a[LOCK_TOKEN_LEN], b[LOCK_TOKEN_LEN];
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 0, a), AOP_OK);
    CHECK_INT(lock_release(l, "wf:1", "0123456789abcdef0123456789abcdef"), AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_release(l, "wf:1", "a-token-far-too-long-to-be-anyones-token-at-all"),
              AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_extend(l, "wf:1", "0123456789abcdef0123456789abcdef", LONG_TTL),
              AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 0, b), AOP_ERR_RESOURCE_LOCKED);
    /* The token of that failed acquire ("") releases nothing and is no loss. */
    CHECK_INT(lock_release(l, "wf:1", b), AOP_ERR_NOT_FOUND);
    CHECK_INT(metric(l, "aop_lock_lost_total"), 3);
    CHECK_INT(lock_release(l, "wf:1", a), AOP_OK);
    /* Released once; a second release finds nothing. */
    CHECK_INT(lock_release(l, "wf:1", a), AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_entries(l), 0);
    lock_close(l);
}

static void expired_lock_goes_to_next_owner(void)
{
    lock *l = fake_clock_lock(0);
    char a[LOCK_TOKEN_LEN], b[LOCK_TOKEN_LEN], c[LOCK_TOKEN_LEN];
    CHECK_INT(lock_acquire(l, "wf:1", 100, 0, a), AOP_OK);
    advance(99);
    CHECK_INT(lock_acquire(l, "wf:1", 100, 0, b), AOP_ERR_RESOURCE_LOCKED);
    advance(1);
    CHECK_INT(lock_acquire(l, "wf:1", 100, 0, b), AOP_OK);
    /* The first owner's TTL ran out: its release and extend are refused and
     * leave the second owner's lock as it is. */
    CHECK_INT(lock_release(l, "wf:1", a), AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_extend(l, "wf:1", a, 100), AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_acquire(l, "wf:1", 100, 0, c), AOP_ERR_RESOURCE_LOCKED);
    CHECK_INT(metric(l, "aop_lock_lost_total"), 2);
    CHECK_INT(lock_release(l, "wf:1", b), AOP_OK);
    CHECK_INT(lock_entries(l), 0);
    /* An expired entry nobody released is freed by the release that meets it. */
    CHECK_INT(lock_acquire(l, "wf:2", 10, 0, a), AOP_OK);
    advance(10);
    CHECK_INT(lock_entries(l), 1);
    CHECK_INT(lock_release(l, "wf:2", a), AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_entries(l), 0);
    lock_close(l);
}

static void extend_keeps_lock_past_ttl(void)
{
    lock *l = fake_clock_lock(0);
    char a[LOCK_TOKEN_LEN], b[LOCK_TOKEN_LEN];
    CHECK_INT(lock_acquire(l, "lease:1", 100, 0, a), AOP_OK);
    advance(80);
    CHECK_INT(lock_extend(l, "lease:1", a, 100), AOP_OK); /* now ends at +180 */
    CHECK_INT(lock_extend(l, "lease:1", "not-the-token", 1000), AOP_ERR_NOT_FOUND);
    advance(80); /* +160: past the first TTL */
    CHECK_INT(lock_acquire(l, "lease:1", 100, 0, b), AOP_ERR_RESOURCE_LOCKED);
    advance(20); /* +180: the extension is over */
    CHECK_INT(lock_extend(l, "lease:1", a, 100), AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_acquire(l, "lease:1", 100, 0, b), AOP_OK);
    CHECK_INT(metric(l, "aop_lock_extended_total"), 1);
    CHECK_INT(lock_release(l, "lease:1", b), AOP_OK);
    lock_close(l);
}

static void invalid_arguments(void)
{
    lock *l = lock_mem_new();
    char t[LOCK_TOKEN_LEN];
    char key[LOCK_KEY_MAX + 2];
    memset(key, 'k', sizeof(key));
    key[LOCK_KEY_MAX + 1] = '\0'; /* one byte too long */
    CHECK_INT(lock_acquire(l, NULL, 100, 0, t), AOP_ERR_INTERNAL);
    CHECK_INT(lock_acquire(l, "", 100, 0, t), AOP_ERR_INTERNAL);
    CHECK_INT(lock_acquire(l, key, 100, 0, t), AOP_ERR_INTERNAL);
    CHECK_INT(lock_acquire(l, "k", 0, 0, t), AOP_ERR_INTERNAL);
    CHECK_INT(lock_acquire(l, "k", 100, -1, t), AOP_ERR_INTERNAL);
    CHECK_INT(lock_acquire(l, "k", 100, 0, NULL), AOP_ERR_INTERNAL);
    CHECK_INT(lock_release(l, NULL, "x"), AOP_ERR_INTERNAL);
    CHECK_INT(lock_release(l, "k", NULL), AOP_ERR_INTERNAL);
    CHECK_INT(lock_extend(l, "k", "x", 0), AOP_ERR_INTERNAL);
    CHECK_INT(metric(l, "aop_lock_errors_total"), 9);
    CHECK_INT(lock_entries(l), 0);
    key[LOCK_KEY_MAX] = '\0'; /* exactly LOCK_KEY_MAX bytes */
    CHECK_INT(lock_acquire(l, key, 100, 0, t), AOP_OK);
    CHECK_INT(lock_release(l, key, t), AOP_OK);
    lock_close(l);
}

static void zero_wait_fails_at_once(void)
{
    lock *l = lock_mem_new();
    char a[LOCK_TOKEN_LEN], b[LOCK_TOKEN_LEN];
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 0, a), AOP_OK);
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 0, b), AOP_ERR_RESOURCE_LOCKED);
    CHECK_INT(metric(l, "aop_lock_timeouts_total"), 1);
    CHECK_INT(metric(l, "aop_lock_acquired_total"), 1);
    CHECK_INT(lock_release(l, "wf:1", a), AOP_OK);
    lock_close(l);
}

static void bounded_wait_times_out(void)
{
    lock *l = lock_mem_new();
    char a[LOCK_TOKEN_LEN], b[LOCK_TOKEN_LEN];
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 0, a), AOP_OK);
    int64_t t0 = clock_mono_ns();
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 50, b), AOP_ERR_RESOURCE_LOCKED);
    CHECK(elapsed_ms(t0) >= 50); /* never early; no upper bound (busy machines) */
    CHECK_STR(b, "");
    CHECK_INT(metric(l, "aop_lock_timeouts_total"), 1);
    CHECK_INT(lock_release(l, "wf:1", a), AOP_OK);
    lock_close(l);
}

typedef struct {
    lock *l;
    const char *key;
    char token[LOCK_TOKEN_LEN];
    long hold_ms;
    aop_err rc;
} holder;

/* Holds h->key (already taken under h->token) for hold_ms, then releases. */
static void *release_later(void *arg)
{
    holder *h = arg;
    sleep_ms(h->hold_ms);
    h->rc = lock_release(h->l, h->key, h->token);
    return NULL;
}

/* Takes key, lets a thread release it after 30 ms, and waits for it with a
 * budget of 2 s: the waiter must get it. */
static int waiter_gets_released_lock(lock *l, const char *key)
{
    holder h = {.l = l, .key = key, .hold_ms = 30, .rc = AOP_ERR_INTERNAL};
    if (lock_acquire(l, key, LONG_TTL, 0, h.token) != AOP_OK)
        return 0;
    pthread_t th;
    pthread_create(&th, NULL, release_later, &h);
    char t[LOCK_TOKEN_LEN];
    aop_err e = lock_acquire(l, key, LONG_TTL, 2000, t);
    pthread_join(th, NULL);
    int ok = e == AOP_OK && h.rc == AOP_OK;
    if (e == AOP_OK)
        ok = ok && lock_release(l, key, t) == AOP_OK;
    return ok;
}

static void waiter_woken_by_release(void)
{
    lock *l = lock_mem_new();
    CHECK(waiter_gets_released_lock(l, "wf:1"));
    CHECK_INT(metric(l, "aop_lock_waited_total"), 1);
    CHECK_INT(metric(l, "aop_lock_acquired_total"), 2);
    CHECK_INT(metric(l, "aop_lock_released_total"), 2);
    CHECK_INT(lock_entries(l), 0);
    lock_close(l);
}

static void waiter_woken_by_expiry(void)
{
    lock *l = lock_mem_new();
    char a[LOCK_TOKEN_LEN], b[LOCK_TOKEN_LEN];
    CHECK_INT(lock_acquire(l, "wf:1", 30, 0, a), AOP_OK); /* never released */
    int64_t t0 = clock_mono_ns();
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 2000, b), AOP_OK);
    CHECK(elapsed_ms(t0) >= 20); /* waited for the TTL (ms clocks: not exactly 30) */
    CHECK_INT(lock_release(l, "wf:1", a), AOP_ERR_NOT_FOUND);
    CHECK_INT(lock_release(l, "wf:1", b), AOP_OK);
    lock_close(l);
}

#define THREADS 8
#define ROUNDS 200

typedef struct {
    lock *l;
    long *counter;
    int failures;
} worker_arg;

static void *increment_under_lock(void *arg)
{
    worker_arg *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        char t[LOCK_TOKEN_LEN];
        if (lock_acquire(w->l, "counter", LONG_TTL, 10000, t) != AOP_OK) {
            w->failures++;
            continue;
        }
        long v = *w->counter; /* a plain read-modify-write: racy without the lock */
        sched_yield();
        *w->counter = v + 1;
        if (lock_release(w->l, "counter", t) != AOP_OK)
            w->failures++;
    }
    return NULL;
}

static void threads_lose_no_increment(void)
{
    lock *l = lock_mem_new();
    long counter = 0;
    pthread_t th[THREADS];
    worker_arg w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_arg){.l = l, .counter = &counter};
        pthread_create(&th[i], NULL, increment_under_lock, &w[i]);
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
    }
    CHECK_INT(failures, 0);
    CHECK_INT(counter, THREADS * ROUNDS);
    CHECK_INT(metric(l, "aop_lock_acquired_total"), THREADS * ROUNDS);
    CHECK_INT(metric(l, "aop_lock_released_total"), THREADS * ROUNDS);
    CHECK_INT(metric(l, "aop_lock_lost_total"), 0);
    CHECK_INT(lock_entries(l), 0);
    lock_close(l);
}

static void distinct_keys_leave_no_entries(void)
{
    lock *l = lock_mem_new();
    enum { N = 5000 };
    static char tokens[N][LOCK_TOKEN_LEN];
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "wf:%d", i);
        CHECK_INT(lock_acquire(l, key, LONG_TTL, 0, tokens[i]), AOP_OK);
    }
    CHECK_INT(lock_entries(l), N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "wf:%d", i);
        CHECK_INT(lock_release(l, key, tokens[i]), AOP_OK);
    }
    CHECK_INT(lock_entries(l), 0);
    lock_close(l);
}

/* Keys taken and never released, each round's expired before the next
 * round: the sweeps keep the table near one round's size. */
static void unreleased_expired_keys_are_swept(void)
{
    lock *l = fake_clock_lock(1);
    enum { ROUND_KEYS = 1000, SWEEP_ROUNDS = 20 };
    char key[32], t[LOCK_TOKEN_LEN];
    for (int r = 0; r < SWEEP_ROUNDS; r++) {
        for (int i = 0; i < ROUND_KEYS; i++) {
            snprintf(key, sizeof(key), "job:%d:%d", r, i);
            CHECK_INT(lock_acquire(l, key, 10, 0, t), AOP_OK);
        }
        advance(10);
    }
    CHECK(lock_entries(l) <= 2 * ROUND_KEYS);
    lock_close(l);
}

static void metrics_text_has_counters(void)
{
    lock *l = lock_mem_new();
    char a[LOCK_TOKEN_LEN], b[LOCK_TOKEN_LEN];
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 0, a), AOP_OK);
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 0, b), AOP_ERR_RESOURCE_LOCKED);
    buf out;
    buf_init(&out, 0);
    lock_render_metrics(l, &out);
    static const char *const want[] = {
        "# TYPE aop_lock_acquired_total counter\n",
        "aop_lock_acquired_total{backend=\"memory\"} 1\n",
        "aop_lock_waited_total{backend=\"memory\"} 0\n",
        "aop_lock_timeouts_total{backend=\"memory\"} 1\n",
        "aop_lock_released_total{backend=\"memory\"} 0\n",
        "aop_lock_extended_total{backend=\"memory\"} 0\n",
        "aop_lock_lost_total{backend=\"memory\"} 0\n",
        "aop_lock_errors_total{backend=\"memory\"} 0\n",
        "# HELP aop_lock_lost_total ",
        "# TYPE aop_lock_wait_seconds histogram\n",
        "aop_lock_wait_seconds_bucket{backend=\"memory\",le=\"+Inf\"} 2\n",
        "aop_lock_wait_seconds_count{backend=\"memory\"} 2\n",
        "aop_lock_wait_seconds_sum{backend=\"memory\"} ",
        "# TYPE aop_lock_entries gauge\n",
        "aop_lock_entries{backend=\"memory\"} 1\n",
    };
    const char *missing = NULL;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]) && !missing; i++)
        if (!strstr(out.data, want[i]))
            missing = want[i];
    buf_free(&out);
    CHECK_STR(missing ? missing : "", "");
    CHECK_INT(lock_release(l, "wf:1", a), AOP_OK);
    lock_close(l);
}

/* A backend without wait (and without TTLs): the wrapper must poll. It can
 * also be told to fail, like an unreachable Redis. */
#define POLL_SLOTS 4

typedef struct {
    pthread_mutex_t mu;
    char keys[POLL_SLOTS][32];
    char tokens[POLL_SLOTS][LOCK_TOKEN_LEN];
    int down;
} poll_backend;

static int poll_find(poll_backend *p, const char *key)
{
    for (int i = 0; i < POLL_SLOTS; i++)
        if (p->keys[i][0] && strcmp(p->keys[i], key) == 0)
            return i;
    return -1;
}

static aop_err poll_acquire(void *h, const char *key, const char *token, long long ttl_ms)
{
    (void)ttl_ms;
    poll_backend *p = h;
    aop_err rc = AOP_ERR_CONFLICT;
    pthread_mutex_lock(&p->mu);
    if (p->down) {
        rc = AOP_ERR_UNAVAILABLE;
    } else if (poll_find(p, key) < 0) {
        for (int i = 0; i < POLL_SLOTS && rc != AOP_OK; i++) {
            if (!p->keys[i][0]) {
                str_copy(p->keys[i], sizeof(p->keys[i]), key);
                str_copy(p->tokens[i], sizeof(p->tokens[i]), token);
                rc = AOP_OK;
            }
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

static aop_err poll_release(void *h, const char *key, const char *token)
{
    poll_backend *p = h;
    aop_err rc = AOP_ERR_NOT_FOUND;
    pthread_mutex_lock(&p->mu);
    int i = poll_find(p, key);
    if (p->down) {
        rc = AOP_ERR_UNAVAILABLE;
    } else if (i >= 0 && strcmp(p->tokens[i], token) == 0) {
        p->keys[i][0] = '\0';
        rc = AOP_OK;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

static aop_err poll_extend(void *h, const char *key, const char *token, long long ttl_ms)
{
    (void)ttl_ms;
    poll_backend *p = h;
    pthread_mutex_lock(&p->mu);
    int i = poll_find(p, key);
    aop_err rc = i >= 0 && strcmp(p->tokens[i], token) == 0 ? AOP_OK : AOP_ERR_NOT_FOUND;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

static void poll_close(void *h)
{
    poll_backend *p = h;
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static const lock_vtbl poll_vtbl = {
    .name = "polltest",
    .acquire = poll_acquire,
    .release = poll_release,
    .extend = poll_extend,
    .close = poll_close,
};

static lock *poll_lock(poll_backend **out)
{
    poll_backend *p = calloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    *out = p;
    return lock_new(&poll_vtbl, p);
}

static void polling_backend_waiter_gets_lock(void)
{
    poll_backend *p;
    lock *l = poll_lock(&p);
    CHECK(waiter_gets_released_lock(l, "wf:1"));
    CHECK_INT(metric(l, "aop_lock_waited_total"), 1);
    CHECK_INT(lock_entries(l), -1);
    /* Without an entries count there is no gauge. */
    buf out;
    buf_init(&out, 0);
    lock_render_metrics(l, &out);
    int has_gauge = strstr(out.data, "aop_lock_entries") != NULL;
    int labelled = strstr(out.data, "aop_lock_acquired_total{backend=\"polltest\"} 2\n") != NULL;
    buf_free(&out);
    CHECK(!has_gauge);
    CHECK(labelled);
    lock_close(l);
}

static void polling_backend_times_out(void)
{
    poll_backend *p;
    lock *l = poll_lock(&p);
    char a[LOCK_TOKEN_LEN], b[LOCK_TOKEN_LEN];
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 0, a), AOP_OK);
    int64_t t0 = clock_mono_ns();
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 50, b), AOP_ERR_RESOURCE_LOCKED);
    CHECK(elapsed_ms(t0) >= 50);
    CHECK_INT(lock_release(l, "wf:1", a), AOP_OK);
    lock_close(l);
}

static void backend_errors_returned_as_they_are(void)
{
    poll_backend *p;
    lock *l = poll_lock(&p);
    char a[LOCK_TOKEN_LEN], b[LOCK_TOKEN_LEN];
    CHECK_INT(lock_acquire(l, "wf:1", LONG_TTL, 0, a), AOP_OK);
    pthread_mutex_lock(&p->mu);
    p->down = 1;
    pthread_mutex_unlock(&p->mu);
    CHECK_INT(lock_acquire(l, "wf:2", LONG_TTL, 1000, b), AOP_ERR_UNAVAILABLE);
    CHECK_STR(b, "");
    CHECK_INT(lock_release(l, "wf:1", a), AOP_ERR_UNAVAILABLE);
    CHECK_INT(metric(l, "aop_lock_errors_total"), 2);
    CHECK_INT(metric(l, "aop_lock_lost_total"), 0);
    CHECK_INT(metric(l, "aop_lock_timeouts_total"), 0);
    pthread_mutex_lock(&p->mu);
    p->down = 0;
    pthread_mutex_unlock(&p->mu);
    CHECK_INT(lock_release(l, "wf:1", a), AOP_OK);
    lock_close(l);
}

const unit_test lock_tests[] = {
    TEST(exclusive_until_released),
    TEST(wrong_token_refused_and_lock_kept),
    TEST(expired_lock_goes_to_next_owner),
    TEST(extend_keeps_lock_past_ttl),
    TEST(invalid_arguments),
    TEST(zero_wait_fails_at_once),
    TEST(bounded_wait_times_out),
    TEST(waiter_woken_by_release),
    TEST(waiter_woken_by_expiry),
    TEST(threads_lose_no_increment),
    TEST(distinct_keys_leave_no_entries),
    TEST(unreleased_expired_keys_are_swept),
    TEST(metrics_text_has_counters),
    TEST(polling_backend_waiter_gets_lock),
    TEST(polling_backend_times_out),
    TEST(backend_errors_returned_as_they_are),
    {NULL, NULL},
};
