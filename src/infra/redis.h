/*
 * redis.h - a fixed pool of connections to one Redis server, shared by the
 * Redis backends of the cache, limiter and lock ports (cache_redis.c,
 * limiter_redis.c, lock_redis.c). Only those files include hiredis.
 *
 * URL: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], PORT 6379 and DB 0 by
 * default; USER and PASSWORD may be percent-encoded; HOST may be an IPv6
 * address in brackets. rediss:// is refused: hiredis 0.14 has no TLS.
 *
 * Connections: `size` slots, each connected lazily (one at open) with the
 * connect and command timeout timeout_ms, then AUTH and SELECT when the URL
 * asks for them. A thread borrows a slot for one command and gives it back
 * (mutex + condition variable); when every slot is busy it waits up to
 * timeout_ms, then answers AOP_ERR_UNAVAILABLE.
 *
 * Failures and degradation: a connection whose command fails (I/O error,
 * timeout, closed by the server) is freed, and so, lazily, is every
 * connection made before the failure (they most likely point at the same
 * dead server). A failed connect opens a circuit for REDIS_POOL_RETRY_MS:
 * meanwhile no connect is tried and calls answer AOP_ERR_UNAVAILABLE at once;
 * while Redis is down only one thread at a time tries to connect, the others
 * answer at once too. So a dead Redis costs callers microseconds, not
 * timeouts. The pool is "down" from a failure until the next successful
 * command: a warning is logged when it goes down, an info line when it is
 * back (the address only, never the password), and the reconnect hooks run
 * then, on the thread whose command succeeded, after its connection is back
 * in the pool. Error replies that mean "not now" (LOADING, BUSY, MASTERDOWN,
 * TRYAGAIN) answer AOP_ERR_UNAVAILABLE as well, but keep the connection.
 * A failed command is never retried (it may have run: an INCR or SET NX
 * must not run twice), so after a Redis restart the first command of each
 * pool meets a connection the old server closed and answers
 * AOP_ERR_UNAVAILABLE once; the failure drops the other old connections.
 *
 * Thread-safe. Out of memory aborts (core/mem.h).
 */
#ifndef AOP_INFRA_REDIS_H
#define AOP_INFRA_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

#define REDIS_POOL_RETRY_MS 250 /* no connect is tried this long after a failed one */
#define REDIS_POOL_HOOKS_MAX 8

typedef struct redis_pool redis_pool;
struct redisReply; /* hiredis; only the backends include <hiredis/hiredis.h> */

/* Parses url and opens a pool of size (>= 1) connections with the connect
 * and command timeout timeout_ms (>= 1; smaller values mean 1000). Tries to
 * connect once; when Redis is not reachable the pool still opens (down) and
 * connects later. NULL, with a message in err, only when url is malformed or
 * unsupported. The caller closes the pool with redis_pool_close(). */
redis_pool *redis_pool_open(const char *url, int size, long long timeout_ms, char *err,
                            size_t errlen);

/* Frees every connection and the pool. No call may be running. NULL-safe. */
void redis_pool_close(redis_pool *p);

/* false from a failure until the next successful command. */
bool redis_pool_up(redis_pool *p);

/* PING: AOP_OK, or AOP_ERR_UNAVAILABLE (fast while the circuit is open). */
aop_err redis_pool_ping(redis_pool *p);

/* Sends one command (binary-safe: argc arguments argv[i] of argvlen[i]
 * bytes). AOP_OK with the reply in *out (never NULL; the caller frees it with
 * freeReplyObject and checks its type: it may be an error reply), or
 * AOP_ERR_UNAVAILABLE with *out NULL when Redis cannot answer now. */
aop_err redis_pool_command(redis_pool *p, int argc, const char **argv, const size_t *argvlen,
                           struct redisReply **out);

/* A Lua script and its SHA-1, for redis_pool_eval. */
typedef struct {
    const char *src;
    char sha[41];
} redis_script;

/* Fills s for src (a string with static lifetime). */
void redis_script_init(redis_script *s, const char *src);

/* EVALSHA s with numkeys keys followed by other arguments (argc in all, in
 * argv/argvlen as for redis_pool_command), and EVAL when the server does not
 * know the script (after a restart). Same results as redis_pool_command; an
 * error the script raised comes back as an error reply. argc <= 16. */
aop_err redis_pool_eval(redis_pool *p, const redis_script *s, int numkeys, int argc,
                        const char **argv, const size_t *argvlen, struct redisReply **out);

/* One script call of a pipeline (redis_pool_eval_many). pool names the pool
 * the call is meant for, so that another port can send it along with its
 * own (cache_get_many_with). */
#define REDIS_PIPELINE_MAX 4
typedef struct redis_eval_call {
    redis_pool *pool;
    const redis_script *s;
    int numkeys, argc; /* as for redis_pool_eval */
    const char **argv;
    const size_t *argvlen;
    aop_err rc;                /* out: what redis_pool_eval would answer */
    struct redisReply *reply;  /* out: when rc is AOP_OK; the caller frees it */
} redis_eval_call;

/* Sends n (1..REDIS_PIPELINE_MAX) calls on one connection in one write and
 * reads their n replies: one round trip, plus one for the calls whose script
 * the server did not know (sent again with EVAL: they had not run). Each
 * call gets its rc and reply: a failure mid-way keeps the replies that came
 * before it. AOP_OK when every call got a reply; AOP_ERR_UNAVAILABLE when
 * one did not; AOP_ERR_INTERNAL for bad arguments (no call was sent). The
 * pool fields of calls are not read. */
aop_err redis_pool_eval_many(redis_pool *p, redis_eval_call *calls, int n);

/* 1 when r is an error reply whose text starts with the word code (e.g.
 * "NOSCRIPT"). */
int redis_reply_error_is(const struct redisReply *r, const char *code);

/* fn(arg) runs after the first successful command that follows a failure
 * (see the top of this file). Register before the pool is shared between
 * threads. -1 when REDIS_POOL_HOOKS_MAX hooks are registered. */
typedef void (*redis_pool_hook)(void *arg);
int redis_pool_on_reconnect(redis_pool *p, redis_pool_hook fn, void *arg);
/* Removes a hook registered with the same fn and arg (before arg goes away). */
void redis_pool_off_reconnect(redis_pool *p, redis_pool_hook fn, void *arg);

/* Appends Prometheus text: the gauge aop_redis_up, the counters
 * aop_redis_errors_total (failed connects, failed commands, error replies)
 * and aop_redis_reconnects_total (connections made after one was lost). */
void redis_pool_render_metrics(redis_pool *p, buf *out);

#endif
