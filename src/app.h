/*
 * app.h - what every handler can reach: configuration, ports, start time.
 * Built once by `aop serve` and read-only afterwards (the ports are
 * thread-safe themselves).
 */
#ifndef AOP_APP_H
#define AOP_APP_H

#include <stdint.h>

#include "core/config.h"
#include "infra/cache.h"
#include "infra/limiter.h"
#include "infra/lock.h"
#include "infra/workpool.h"
#include "store/store.h"

typedef struct {
    const config *cfg;
    store *store;
    cache *cache;
    limiter *limiter;
    lock *locks;          /* writers of one resource take turns */
    struct redis_pool *redis; /* REDIS_URL's connections, or NULL (infra/redis.h) */
    workpool *slow;       /* bcrypt and other slow CPU work */
    struct engine *engine; /* runs executions (engine/engine.h) */
    struct vault *vault;   /* seals and opens credentials (credentials/vault.h) */
    struct live *live;     /* streams of execution events (executions/live.h) */
    struct scheduler *scheduler; /* due times of schedules (schedules/scheduler.h) */
    int64_t start_ms;     /* wall clock at start */
    int64_t start_mono_ns;
} app_ctx;

#endif
