/* The lock port's wrapper: checks arguments, makes owner tokens, waits for a
 * held lock (the backend's wait or polling), counts outcomes, renders metrics.
 * The semantics are in lock.h. */
#include "infra/lock.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_MS 1000000LL

/* The counters, in the order they are rendered. */
enum { C_ACQUIRED, C_WAITED, C_TIMEOUTS, C_RELEASED, C_EXTENDED, C_LOST, C_ERRORS, C__COUNT };

static const struct {
    const char *name;
    const char *help;
} counter_info[C__COUNT] = {
    [C_ACQUIRED] = {"aop_lock_acquired_total", "Locks taken."},
    [C_WAITED] = {"aop_lock_waited_total",
                  "Locks taken after waiting for another owner to let go."},
    [C_TIMEOUTS] = {"aop_lock_timeouts_total",
                    "Acquires that gave up: another owner held the lock for the whole wait."},
    [C_RELEASED] = {"aop_lock_released_total", "Locks released by their owner."},
    [C_EXTENDED] = {"aop_lock_extended_total", "Lock TTLs extended by their owner."},
    [C_LOST] = {"aop_lock_lost_total",
                "Releases and extends that found the lock no longer theirs (TTL ran out)."},
    [C_ERRORS] = {"aop_lock_errors_total",
                  "Lock operations that failed: invalid arguments or backend errors."},
};

/* Upper bounds of the wait histogram, in ns; +Inf follows the last. */
#define WAIT_BUCKETS 12
static const int64_t wait_le_ns[WAIT_BUCKETS] = {
    1 * NS_PER_MS,    5 * NS_PER_MS,    10 * NS_PER_MS,   25 * NS_PER_MS,
    50 * NS_PER_MS,   100 * NS_PER_MS,  250 * NS_PER_MS,  500 * NS_PER_MS,
    1000 * NS_PER_MS, 2500 * NS_PER_MS, 5000 * NS_PER_MS, 10000 * NS_PER_MS,
};

struct lock {
    const lock_vtbl *vt;
    void *h;
    uint64_t counts[C__COUNT];               /* atomics, relaxed: statistics */
    uint64_t wait_buckets[WAIT_BUCKETS + 1]; /* not cumulative; the last is +Inf */
    uint64_t wait_sum_ns;
};

lock *lock_new(const lock_vtbl *vt, void *h)
{
    lock *l = xcalloc(1, sizeof(*l));
    l->vt = vt;
    l->h = h;
    return l;
}

static void add(uint64_t *p, uint64_t v)
{
    __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void count(lock *l, int c)
{
    add(&l->counts[c], 1);
}

static void observe_wait(lock *l, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    int i = 0;
    while (i < WAIT_BUCKETS && ns > wait_le_ns[i])
        i++;
    add(&l->wait_buckets[i], 1);
    add(&l->wait_sum_ns, (uint64_t)ns);
}

static int key_ok(const char *key)
{
    return key && key[0] && strnlen(key, LOCK_KEY_MAX + 1) <= LOCK_KEY_MAX;
}

/* now + ms in ns, saturating at INT64_MAX. */
static int64_t deadline_after(int64_t now_ns, long long ms)
{
    if (ms > (INT64_MAX - now_ns) / NS_PER_MS)
        return INT64_MAX;
    return now_ns + (int64_t)ms * NS_PER_MS;
}

/* Polling state for backends without a wait: the next sleep's ceiling and a
 * small generator for the jitter (seeded from the random token). */
typedef struct {
    int64_t sleep_ns;
    uint64_t rng;
} backoff;

static uint64_t next_rand(backoff *b)
{
    /* xorshift64*: enough to spread pollers apart; not for secrets */
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return b->rng * 0x2545F4914F6CDD1DULL;
}

static void backoff_init(backoff *b, const char *token)
{
    b->sleep_ns = NS_PER_MS;
    b->rng = 0x9e3779b97f4a7c15ULL;
    for (const char *p = token; *p; p++)
        b->rng = (b->rng ^ (unsigned char)*p) * 0x100000001b3ULL;
    if (!b->rng)
        b->rng = 1;
}

/* Sleeps a random time in [ceiling/2, ceiling], never past left_ns, then
 * doubles the ceiling up to LOCK_POLL_MAX_MS. */
static void backoff_sleep(backoff *b, int64_t left_ns)
{
    int64_t half = b->sleep_ns / 2;
    int64_t ns = half + (int64_t)(next_rand(b) % (uint64_t)(half + 1));
    if (ns > left_ns)
        ns = left_ns;
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    nanosleep(&ts, NULL);
    b->sleep_ns *= 2;
    if (b->sleep_ns > LOCK_POLL_MAX_MS * NS_PER_MS)
        b->sleep_ns = LOCK_POLL_MAX_MS * NS_PER_MS;
}

/* Waits up to left_ns (> 0) for key to come free: the backend's wait, given
 * the time rounded up to whole ms so that it never gives up early, or one
 * polling sleep. AOP_OK or AOP_ERR_RESOURCE_LOCKED: try again; anything else
 * is a backend error. */
static aop_err pause_for(lock *l, const char *key, int64_t left_ns, backoff *b)
{
    if (l->vt->wait)
        return l->vt->wait(l->h, key, left_ns / NS_PER_MS + (left_ns % NS_PER_MS != 0));
    backoff_sleep(b, left_ns);
    return AOP_OK;
}

/* Counts the end of an acquire that began at start_ns; clears the token on
 * failure. Returns e. */
static aop_err acquire_done(lock *l, aop_err e, int waited, int64_t start_ns, char *token)
{
    if (e == AOP_OK) {
        count(l, C_ACQUIRED);
        if (waited)
            count(l, C_WAITED);
        observe_wait(l, clock_mono_ns() - start_ns);
        return e;
    }
    token[0] = '\0';
    if (e == AOP_ERR_RESOURCE_LOCKED) {
        count(l, C_TIMEOUTS);
        observe_wait(l, clock_mono_ns() - start_ns);
    } else {
        count(l, C_ERRORS);
    }
    return e;
}

aop_err lock_acquire(lock *l, const char *key, long long ttl_ms, long long wait_ms,
                     char token[LOCK_TOKEN_LEN])
{
    if (token)
        token[0] = '\0';
    if (!token || !key_ok(key) || ttl_ms <= 0 || wait_ms < 0) {
        count(l, C_ERRORS);
        return AOP_ERR_INTERNAL;
    }
    ids_random_hex(token, LOCK_TOKEN_BYTES);
    int64_t start = clock_mono_ns();
    int64_t deadline = deadline_after(start, wait_ms);
    backoff b;
    backoff_init(&b, token);
    int waited = 0;
    aop_err e;
    for (;;) {
        e = l->vt->acquire(l->h, key, token, ttl_ms);
        if (e != AOP_ERR_CONFLICT)
            break;
        waited = 1;
        int64_t left = deadline - clock_mono_ns();
        if (left <= 0) {
            e = AOP_ERR_RESOURCE_LOCKED;
            break;
        }
        e = pause_for(l, key, left, &b);
        if (e != AOP_OK && e != AOP_ERR_RESOURCE_LOCKED)
            break;
    }
    return acquire_done(l, e, waited, start, token);
}

/* Counts the answer of a token-checked release or extend (op) of key. */
static aop_err checked_done(lock *l, aop_err e, int ok_counter, const char *op, const char *key)
{
    if (e == AOP_OK) {
        count(l, ok_counter);
    } else if (e == AOP_ERR_NOT_FOUND) {
        count(l, C_LOST);
        log_warn("lock lost: its TTL ran out while held", LF_S("key", key), LF_S("op", op),
                 LF_S("backend", l->vt->name));
    } else {
        count(l, C_ERRORS);
    }
    return e;
}

aop_err lock_release(lock *l, const char *key, const char *token)
{
    if (!key_ok(key) || !token) {
        count(l, C_ERRORS);
        return AOP_ERR_INTERNAL;
    }
    if (!token[0]) /* the token of a failed acquire: nothing to release */
        return AOP_ERR_NOT_FOUND;
    return checked_done(l, l->vt->release(l->h, key, token), C_RELEASED, "release", key);
}

aop_err lock_extend(lock *l, const char *key, const char *token, long long ttl_ms)
{
    if (!key_ok(key) || !token || ttl_ms <= 0) {
        count(l, C_ERRORS);
        return AOP_ERR_INTERNAL;
    }
    if (!token[0])
        return AOP_ERR_NOT_FOUND;
    return checked_done(l, l->vt->extend(l->h, key, token, ttl_ms), C_EXTENDED, "extend", key);
}

const char *lock_backend_name(const lock *l)
{
    return l->vt->name;
}

long long lock_entries(lock *l)
{
    return l->vt->entries ? l->vt->entries(l->h) : -1;
}

static void render_header(buf *out, const char *name, const char *type, const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_wait_hist(lock *l, buf *out)
{
    const char *name = "aop_lock_wait_seconds", *b = l->vt->name;
    render_header(out, name, "histogram",
                  "Time lock_acquire took to take a lock or give up.");
    uint64_t cum = 0;
    for (int i = 0; i < WAIT_BUCKETS; i++) {
        cum += load(&l->wait_buckets[i]);
        buf_printf(out, "%s_bucket{backend=\"%s\",le=\"%g\"} %llu\n", name, b,
                   (double)wait_le_ns[i] / 1e9, (unsigned long long)cum);
    }
    cum += load(&l->wait_buckets[WAIT_BUCKETS]);
    buf_printf(out, "%s_bucket{backend=\"%s\",le=\"+Inf\"} %llu\n", name, b,
               (unsigned long long)cum);
    buf_printf(out, "%s_sum{backend=\"%s\"} %.9f\n", name, b,
               (double)load(&l->wait_sum_ns) / 1e9);
    buf_printf(out, "%s_count{backend=\"%s\"} %llu\n", name, b, (unsigned long long)cum);
}

void lock_render_metrics(lock *l, buf *out)
{
    const char *b = l->vt->name;
    for (int i = 0; i < C__COUNT; i++) {
        render_header(out, counter_info[i].name, "counter", counter_info[i].help);
        buf_printf(out, "%s{backend=\"%s\"} %llu\n", counter_info[i].name, b,
                   (unsigned long long)load(&l->counts[i]));
    }
    render_wait_hist(l, out);
    long long n = lock_entries(l);
    if (n >= 0) {
        render_header(out, "aop_lock_entries", "gauge",
                      "Locks the backend holds now, expired ones not yet freed included.");
        buf_printf(out, "aop_lock_entries{backend=\"%s\"} %lld\n", b, n);
    }
}

void lock_close(lock *l)
{
    if (!l)
        return;
    if (l->vt->close)
        l->vt->close(l->h);
    free(l);
}
