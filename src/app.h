/*
 * app.h - what every handler can reach: configuration, ports, start time.
 * Built once by `aop serve` and read-only afterwards.
 */
#ifndef AOP_APP_H
#define AOP_APP_H

#include <stdint.h>

#include "core/config.h"
#include "store/store.h"

typedef struct {
    const config *cfg;
    store *store;
    int64_t start_ms;     /* wall clock at start */
    int64_t start_mono_ns;
} app_ctx;

#endif
