/*
 * redis.c - the pool of Redis connections: URL parsing, lazy connects with
 * AUTH and SELECT, borrow/give back, failure tracking (up/down, circuit,
 * reconnect hooks), scripts, metrics. The behaviour is described in redis.h.
 */
#include "infra/redis.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PORT 6379
#define DEFAULT_TIMEOUT_MS 1000
#define WHY_MAX 160
#define EVAL_ARGS_MAX 16

/* One connection place. */
typedef struct {
    redisContext *ctx; /* NULL: not connected */
    uint64_t epoch;    /* the pool's epoch when connected */
    bool ever;         /* connected once already: the next connect is a reconnect */
} slot;

typedef struct {
    redis_pool_hook fn;
    void *arg;
} hook;

struct redis_pool {
    char *host;
    int port;
    char *user;     /* NULL: AUTH with the password only */
    char *password; /* NULL: no AUTH */
    long long db;
    char addr[320]; /* "host:port" (for logs; never the password) */
    long long timeout_ms;
    struct timeval tv;

    /* mu guards everything below but the atomics. One rule for it: a
     * function that locks mu unlocks it before returning, on every path; a
     * function named *_locked is called with mu held and returns with it
     * held. Dialling and freeing a connection happen without it. */
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* signalled when a slot is given back */
    slot *slots;
    int size;
    int *idle; /* indices of the slots not borrowed */
    int nidle;
    uint64_t epoch;   /* bumped by every failure: older connections are dropped */
    int64_t retry_ms; /* monotonic: no connect is tried before */
    int up;           /* atomic for readers; written under mu */
    bool probing;     /* a connect is being tried while down */
    hook hooks[REDIS_POOL_HOOKS_MAX];
    int nhooks;

    uint64_t errors; /* atomics, relaxed: statistics */
    uint64_t reconnects;
    int64_t busy_logged_ms; /* atomic: the last "every connection busy" warning */
};

static void count(uint64_t *c)
{
    __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

/* ---- URL ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A malloc'd percent-decoded copy of s[0..n), or NULL when an escape is
 * invalid or decodes to a NUL byte. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *o = '\0';
    return out;
}

static int url_fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "REDIS_URL: %s", why);
    return -1;
}

/* Splits "[USER]:PASSWORD" (n bytes) into p->user and p->password. */
static int parse_userinfo(redis_pool *p, const char *s, size_t n, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return url_fail(err, errlen, "put the password after a colon: redis://:PASSWORD@HOST");
    size_t ulen = (size_t)(colon - s);
    if (ulen) {
        p->user = pct_decode(s, ulen);
        if (!p->user)
            return url_fail(err, errlen, "invalid percent-escape in the user name");
    }
    p->password = pct_decode(colon + 1, n - ulen - 1);
    if (!p->password)
        return url_fail(err, errlen, "invalid percent-escape in the password");
    if (!p->password[0]) {
        free(p->password);
        p->password = NULL;
    }
    return 0;
}

/* Parses HOST[:PORT][/DB] into p. */
static int parse_hostpart(redis_pool *p, const char *s, char *err, size_t errlen)
{
    const char *end;
    if (*s == '[') {
        end = strchr(s, ']');
        if (!end)
            return url_fail(err, errlen, "unclosed '[' in the host");
        p->host = xstrndup(s + 1, (size_t)(end - s - 1));
        end++;
    } else {
        end = s + strcspn(s, ":/?#");
        p->host = xstrndup(s, (size_t)(end - s));
    }
    if (!p->host[0])
        return url_fail(err, errlen, "the host is missing");
    p->port = DEFAULT_PORT;
    if (*end == ':') {
        size_t n = strcspn(end + 1, "/");
        char digits[8];
        long long port;
        if (n == 0 || n >= sizeof(digits))
            return url_fail(err, errlen, "the port must be 1-65535");
        memcpy(digits, end + 1, n);
        digits[n] = '\0';
        if (str_to_ll(digits, 1, 65535, &port) != 0)
            return url_fail(err, errlen, "the port must be 1-65535");
        p->port = (int)port;
        end += 1 + n;
    }
    if (*end == '/') {
        if (end[1] && str_to_ll(end + 1, 0, INT_MAX, &p->db) != 0)
            return url_fail(err, errlen, "the database must be a number: redis://HOST:PORT/DB");
        return 0;
    }
    if (*end)
        return url_fail(err, errlen, "must be redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]");
    return 0;
}

static int parse_url(redis_pool *p, const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "rediss://", 9) == 0)
        return url_fail(err, errlen,
                        "rediss:// (TLS) is not supported: this build's hiredis 0.14 has no "
                        "TLS; use redis:// on a private network or a TLS tunnel");
    if (strncmp(url, "redis://", 8) != 0)
        return url_fail(err, errlen, "must start with redis://");
    const char *rest = url + 8;
    const char *at = strrchr(rest, '@'); /* the last one: passwords may hold '@' */
    if (at) {
        if (parse_userinfo(p, rest, (size_t)(at - rest), err, errlen) < 0)
            return -1;
        rest = at + 1;
    }
    if (parse_hostpart(p, rest, err, errlen) < 0)
        return -1;
    snprintf(p->addr, sizeof(p->addr), "%s:%d", p->host, p->port);
    return 0;
}

/* ---- connections ---- */

/* Runs a setup command (AUTH, SELECT) on a new connection: 0 when Redis
 * answers +OK, -1 with the reason in why. */
static int setup_cmd(redisContext *c, int argc, const char **argv, const char *what, char *why,
                     size_t n)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    int rc = -1;
    if (!r)
        snprintf(why, n, "%s: %s", what, c->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(why, n, "%s refused: %.80s", what, r->str ? r->str : "");
    else if (r->type != REDIS_REPLY_STATUS)
        snprintf(why, n, "%s: unexpected reply", what);
    else
        rc = 0;
    if (r)
        freeReplyObject(r);
    return rc;
}

/* A new connection, authenticated and on the URL's database, or NULL with
 * the reason in why. Runs without the pool's mutex. */
static redisContext *dial(redis_pool *p, char *why, size_t n)
{
    redisContext *c = redisConnectWithTimeout(p->host, p->port, p->tv);
    if (!c || c->err) {
        snprintf(why, n, "connect: %s", c ? c->errstr : "cannot allocate a context");
        if (c)
            redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, p->tv) != REDIS_OK) {
        snprintf(why, n, "cannot set the command timeout");
        goto fail;
    }
    redisEnableKeepAlive(c);
    if (p->password) {
        const char *auth_user[] = {"AUTH", p->user, p->password};
        const char *auth_pass[] = {"AUTH", p->password};
        if (p->user ? setup_cmd(c, 3, auth_user, "AUTH", why, n)
                    : setup_cmd(c, 2, auth_pass, "AUTH", why, n))
            goto fail;
    }
    if (p->db) {
        char db[24];
        snprintf(db, sizeof(db), "%lld", p->db);
        const char *sel[] = {"SELECT", db};
        if (setup_cmd(c, 2, sel, "SELECT", why, n))
            goto fail;
    }
    return c;
fail:
    redisFree(c);
    return NULL;
}

/* With mu held: notes a failure (older connections are dropped from now
 * on). true when the pool was up until now. */
static bool mark_down_locked(redis_pool *p)
{
    p->epoch++;
    bool was_up = p->up;
    __atomic_store_n(&p->up, 0, __ATOMIC_RELAXED);
    return was_up;
}

static void give_back_locked(redis_pool *p, int i)
{
    p->idle[p->nidle++] = i;
    pthread_cond_signal(&p->cv);
}

static void warn_down(redis_pool *p, const char *why)
{
    log_warn("Redis is unreachable; the cache is bypassed, limits and locks are kept "
             "per instance until it is back",
             LF_S("addr", p->addr), LF_S("error", why));
}

/* With mu held: takes an idle slot, one with a live current connection when
 * there is one. */
static int take_idle_locked(redis_pool *p)
{
    int k = p->nidle - 1;
    for (int j = p->nidle - 1; j >= 0; j--) {
        const slot *s = &p->slots[p->idle[j]];
        if (s->ctx && s->epoch == p->epoch) {
            k = j;
            break;
        }
    }
    int i = p->idle[k];
    p->idle[k] = p->idle[--p->nidle];
    return i;
}

/* With mu held, and still held on return whatever happens (the wait gives
 * it up only while blocked): waits up to timeout_ms for an idle slot and
 * takes it into *out. -1 when none came free. */
static int wait_idle_locked(redis_pool *p, int *out)
{
    struct timespec dl;
    clock_deadline_after(p->timeout_ms, &dl);
    while (p->nidle == 0)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT && p->nidle == 0)
            return -1;
    *out = take_idle_locked(p);
    return 0;
}

/* Counts a borrow that found every connection busy; logs it at most once a
 * second. */
static void note_busy(redis_pool *p)
{
    count(&p->errors);
    int64_t now = clock_mono_ms();
    int64_t last = __atomic_load_n(&p->busy_logged_ms, __ATOMIC_RELAXED);
    if (now - last >= 1000 &&
        __atomic_compare_exchange_n(&p->busy_logged_ms, &last, now, false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
        log_warn("every Redis connection stayed busy (logged at most once a second)",
                 LF_S("addr", p->addr), LF_I("connections", p->size),
                 LF_I("timeoutMs", p->timeout_ms));
}

/* Connects borrowed slot i, dialling without mu: AOP_OK with the slot
 * connected, or AOP_ERR_UNAVAILABLE with the slot given back, the pool marked
 * down and no retry before REDIS_POOL_RETRY_MS. probe: this thread was let
 * through to try a server that is down (p->probing is cleared either way). */
static aop_err connect_slot(redis_pool *p, int i, bool probe)
{
    char why[WHY_MAX];
    redisContext *c = dial(p, why, sizeof(why));
    bool went_down = false;
    pthread_mutex_lock(&p->mu);
    if (probe)
        p->probing = false;
    if (c) {
        slot *s = &p->slots[i];
        s->ctx = c;
        s->epoch = p->epoch;
        if (s->ever)
            count(&p->reconnects);
        s->ever = true;
    } else {
        p->retry_ms = clock_mono_ms() + REDIS_POOL_RETRY_MS;
        went_down = mark_down_locked(p);
        give_back_locked(p, i);
    }
    pthread_mutex_unlock(&p->mu);
    if (c)
        return AOP_OK;
    count(&p->errors);
    if (went_down)
        warn_down(p, why);
    return AOP_ERR_UNAVAILABLE;
}

/* Borrows a slot with a usable connection into *out, connecting it when
 * needed: AOP_OK, or AOP_ERR_UNAVAILABLE (every slot busy for timeout_ms,
 * the circuit open, another thread probing a down server, or the connect
 * failed). The slot is the caller's until redis_pool_command gives it back.
 * Takes and releases mu (the rule is at struct redis_pool). */
static aop_err borrow(redis_pool *p, int *out)
{
    int i;
    pthread_mutex_lock(&p->mu);
    if (wait_idle_locked(p, &i) < 0) {
        pthread_mutex_unlock(&p->mu);
        note_busy(p);
        return AOP_ERR_UNAVAILABLE;
    }
    slot *s = &p->slots[i];
    redisContext *stale = NULL;
    if (s->ctx && s->epoch != p->epoch) { /* made before a failure: dropped */
        stale = s->ctx;
        s->ctx = NULL;
    }
    bool ready = s->ctx != NULL;
    bool refused = !ready && (clock_mono_ms() < p->retry_ms || (!p->up && p->probing));
    bool probe = !ready && !refused && !p->up;
    if (refused)
        give_back_locked(p, i);
    p->probing |= probe;
    pthread_mutex_unlock(&p->mu);
    if (stale)
        redisFree(stale);
    if (refused || (!ready && connect_slot(p, i, probe) != AOP_OK))
        return AOP_ERR_UNAVAILABLE;
    *out = i;
    return AOP_OK;
}

/* Error replies that mean "not now": the server is loading its data, busy
 * with a script, or cut off from its master. */
static int transient(const redisReply *r)
{
    return redis_reply_error_is(r, "LOADING") || redis_reply_error_is(r, "BUSY") ||
           redis_reply_error_is(r, "MASTERDOWN") || redis_reply_error_is(r, "TRYAGAIN");
}

int redis_reply_error_is(const redisReply *r, const char *code)
{
    size_t n = strlen(code);
    return r && r->type == REDIS_REPLY_ERROR && r->str && r->len >= n &&
           memcmp(r->str, code, n) == 0 && (r->len == n || r->str[n] == ' ');
}

/* One command of an exchange. */
typedef struct {
    int argc;
    const char **argv;
    const size_t *argvlen;
} cmd;

/* Sends the n commands on one borrowed connection in one write and reads
 * their replies in order into out[0..n): one round trip. out[k] is NULL
 * where Redis could not answer (no connection, an I/O error, a timeout, a
 * "not now" error reply); the other replies are the caller's, error replies
 * included. A failure mid-way keeps the replies that came before it (their
 * commands ran). */
static void exchange(redis_pool *p, int n, const cmd *cmds, redisReply **out)
{
    for (int k = 0; k < n; k++)
        out[k] = NULL;
    int i;
    if (borrow(p, &i) != AOP_OK)
        return;
    redisContext *c = p->slots[i].ctx;
    bool failed = false;
    for (int k = 0; k < n && !failed; k++)
        failed = redisAppendCommandArgv(c, cmds[k].argc, cmds[k].argv, cmds[k].argvlen) !=
                 REDIS_OK;
    for (int k = 0; k < n && !failed; k++) {
        void *r;
        failed = redisGetReply(c, &r) != REDIS_OK;
        out[k] = failed ? NULL : r;
    }
    char why[WHY_MAX] = "";
    if (failed) { /* I/O error, timeout or closed: the context is unusable */
        snprintf(why, sizeof(why), "%s", c->errstr[0] ? c->errstr : "cannot queue a command");
        redisFree(c);
    }
    bool answered = false;
    for (int k = 0; k < n; k++)
        answered |= out[k] && !transient(out[k]);
    hook run[REDIS_POOL_HOOKS_MAX];
    int nrun = 0;
    bool went_down = false, back = false;
    pthread_mutex_lock(&p->mu);
    if (failed) {
        p->slots[i].ctx = NULL;
        went_down = mark_down_locked(p);
    } else if (!p->up && answered) {
        __atomic_store_n(&p->up, 1, __ATOMIC_RELAXED);
        back = true;
        nrun = p->nhooks;
        memcpy(run, p->hooks, sizeof(hook) * (size_t)nrun);
    }
    give_back_locked(p, i);
    pthread_mutex_unlock(&p->mu);

    if (failed) {
        count(&p->errors);
        if (went_down)
            warn_down(p, why);
    }
    if (back) {
        log_info("Redis is reachable again", LF_S("addr", p->addr));
        for (int k = 0; k < nrun; k++)
            run[k].fn(run[k].arg);
    }
    for (int k = 0; k < n; k++) {
        if (out[k] && out[k]->type == REDIS_REPLY_ERROR &&
            !redis_reply_error_is(out[k], "NOSCRIPT"))
            count(&p->errors);
        if (out[k] && transient(out[k])) {
            freeReplyObject(out[k]);
            out[k] = NULL;
        }
    }
}

aop_err redis_pool_command(redis_pool *p, int argc, const char **argv, const size_t *argvlen,
                           redisReply **out)
{
    cmd c = {argc, argv, argvlen};
    exchange(p, 1, &c, out);
    return *out ? AOP_OK : AOP_ERR_UNAVAILABLE;
}

aop_err redis_pool_ping(redis_pool *p)
{
    const char *argv[] = {"PING"};
    redisReply *r;
    if (redis_pool_command(p, 1, argv, NULL, &r) != AOP_OK)
        return AOP_ERR_UNAVAILABLE;
    aop_err rc = r->type == REDIS_REPLY_STATUS && r->str && strcmp(r->str, "PONG") == 0
                     ? AOP_OK
                     : AOP_ERR_UNAVAILABLE;
    freeReplyObject(r);
    return rc;
}

bool redis_pool_up(redis_pool *p)
{
    return __atomic_load_n(&p->up, __ATOMIC_RELAXED) != 0;
}

/* ---- scripts ---- */

void redis_script_init(redis_script *s, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)src, strlen(src), d);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++) {
        s->sha[2 * i] = hex[d[i] >> 4];
        s->sha[2 * i + 1] = hex[d[i] & 15];
    }
    s->sha[40] = '\0';
    s->src = src;
}

/* The arguments of one EVALSHA (or EVAL) call. */
typedef struct {
    const char *av[EVAL_ARGS_MAX + 3];
    size_t al[EVAL_ARGS_MAX + 3];
    char nk[16];
} eval_args;

static void eval_args_fill(eval_args *e, const redis_eval_call *call)
{
    snprintf(e->nk, sizeof(e->nk), "%d", call->numkeys);
    e->av[0] = "EVALSHA";
    e->al[0] = 7;
    e->av[1] = call->s->sha;
    e->al[1] = 40;
    e->av[2] = e->nk;
    e->al[2] = strlen(e->nk);
    for (int i = 0; i < call->argc; i++) {
        e->av[3 + i] = call->argv[i];
        e->al[3 + i] = call->argvlen ? call->argvlen[i] : strlen(call->argv[i]);
    }
}

aop_err redis_pool_eval_many(redis_pool *p, redis_eval_call *calls, int n)
{
    if (n < 1 || n > REDIS_PIPELINE_MAX)
        return AOP_ERR_INTERNAL;
    eval_args e[REDIS_PIPELINE_MAX];
    cmd cmds[REDIS_PIPELINE_MAX];
    redisReply *out[REDIS_PIPELINE_MAX];
    bool bad = false;
    for (int k = 0; k < n; k++) {
        redis_eval_call *c = &calls[k];
        c->rc = AOP_ERR_INTERNAL;
        c->reply = NULL;
        bad |= c->argc < 0 || c->argc > EVAL_ARGS_MAX || c->numkeys < 0 || c->numkeys > c->argc;
    }
    if (bad)
        return AOP_ERR_INTERNAL;
    for (int k = 0; k < n; k++) {
        eval_args_fill(&e[k], &calls[k]);
        cmds[k] = (cmd){calls[k].argc + 3, e[k].av, e[k].al};
    }
    exchange(p, n, cmds, out);
    aop_err rc = AOP_OK;
    for (int k = 0; k < n; k++) {
        if (redis_reply_error_is(out[k], "NOSCRIPT")) {
            /* not cached yet (a restart, SCRIPT FLUSH): it did not run; send it whole */
            freeReplyObject(out[k]);
            e[k].av[0] = "EVAL";
            e[k].al[0] = 4;
            e[k].av[1] = calls[k].s->src;
            e[k].al[1] = strlen(calls[k].s->src);
            exchange(p, 1, &cmds[k], &out[k]);
        }
        calls[k].reply = out[k];
        calls[k].rc = out[k] ? AOP_OK : AOP_ERR_UNAVAILABLE;
        if (!out[k])
            rc = AOP_ERR_UNAVAILABLE;
    }
    return rc;
}

aop_err redis_pool_eval(redis_pool *p, const redis_script *s, int numkeys, int argc,
                        const char **argv, const size_t *argvlen, redisReply **out)
{
    redis_eval_call call = {.pool = p, .s = s, .numkeys = numkeys, .argc = argc,
                            .argv = argv, .argvlen = argvlen};
    aop_err rc = redis_pool_eval_many(p, &call, 1);
    *out = call.reply;
    return rc == AOP_OK ? call.rc : rc;
}

/* ---- hooks, metrics, open, close ---- */

int redis_pool_on_reconnect(redis_pool *p, redis_pool_hook fn, void *arg)
{
    int rc = -1;
    pthread_mutex_lock(&p->mu);
    if (p->nhooks < REDIS_POOL_HOOKS_MAX) {
        p->hooks[p->nhooks++] = (hook){fn, arg};
        rc = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void redis_pool_off_reconnect(redis_pool *p, redis_pool_hook fn, void *arg)
{
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nhooks; i++) {
        if (p->hooks[i].fn == fn && p->hooks[i].arg == arg) {
            memmove(&p->hooks[i], &p->hooks[i + 1], sizeof(hook) * (size_t)(p->nhooks - i - 1));
            p->nhooks--;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
}

void redis_pool_render_metrics(redis_pool *p, buf *out)
{
    buf_printf(out,
               "# HELP aop_redis_up 1 while Redis answers, 0 from a failure until the next "
               "successful command.\n# TYPE aop_redis_up gauge\naop_redis_up %d\n",
               redis_pool_up(p) ? 1 : 0);
    buf_printf(out,
               "# HELP aop_redis_errors_total Redis connects and commands that failed, and "
               "error replies.\n# TYPE aop_redis_errors_total counter\n"
               "aop_redis_errors_total %llu\n",
               (unsigned long long)__atomic_load_n(&p->errors, __ATOMIC_RELAXED));
    buf_printf(out,
               "# HELP aop_redis_reconnects_total Redis connections made again after one "
               "was lost.\n# TYPE aop_redis_reconnects_total counter\n"
               "aop_redis_reconnects_total %llu\n",
               (unsigned long long)__atomic_load_n(&p->reconnects, __ATOMIC_RELAXED));
}

static void free_strings(redis_pool *p)
{
    if (p->password) {
        explicit_bzero(p->password, strlen(p->password));
        free(p->password);
    }
    free(p->user);
    free(p->host);
}

redis_pool *redis_pool_open(const char *url, int size, long long timeout_ms, char *err,
                            size_t errlen)
{
    redis_pool *p = xcalloc(1, sizeof(*p));
    if (!url || parse_url(p, url, err, errlen) < 0) {
        if (!url)
            snprintf(err, errlen, "REDIS_URL: missing");
        free_strings(p);
        free(p);
        return NULL;
    }
    p->size = size < 1 ? 1 : size;
    p->busy_logged_ms = INT64_MIN / 2;
    p->timeout_ms = timeout_ms < 1 ? DEFAULT_TIMEOUT_MS : timeout_ms;
    p->tv.tv_sec = (time_t)(p->timeout_ms / 1000);
    p->tv.tv_usec = (suseconds_t)(p->timeout_ms % 1000 * 1000);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->slots = xcalloc((size_t)p->size, sizeof(slot));
    p->idle = xcalloc((size_t)p->size, sizeof(int));
    for (int i = p->size - 1; i >= 0; i--)
        p->idle[p->nidle++] = i;

    char why[WHY_MAX];
    redisContext *c = dial(p, why, sizeof(why));
    if (c) {
        p->slots[0].ctx = c;
        p->slots[0].ever = true;
        p->up = 1;
        log_info("Redis connected", LF_S("addr", p->addr), LF_I("db", p->db),
                 LF_I("connections", p->size));
    } else {
        p->retry_ms = clock_mono_ms() + REDIS_POOL_RETRY_MS;
        count(&p->errors);
        warn_down(p, why);
    }
    return p;
}

void redis_pool_close(redis_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++)
        if (p->slots[i].ctx)
            redisFree(p->slots[i].ctx);
    free(p->slots);
    free(p->idle);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free_strings(p);
    free(p);
}
