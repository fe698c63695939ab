/*
 * metrics.h - counters and histograms rendered in Prometheus text format.
 *
 * HTTP: each route of the table owns a metrics_route (requests by method and
 * status, latency histogram); the HTTP layer passes them all to
 * metrics_render(). Database: operations are timed by name. Process metrics
 * (resident memory, CPU seconds, open descriptors, start time) and build
 * info are read when rendering. Observations are lock-free atomics.
 */
#ifndef AOP_INFRA_METRICS_H
#define AOP_INFRA_METRICS_H

#include <stdint.h>

#include "core/buf.h"

#define METRICS_BUCKETS 12
#define METRICS_METHODS 8  /* GET HEAD POST PUT PATCH DELETE OPTIONS other */
#define METRICS_STATUSES 24

typedef struct {
    uint64_t count;
    uint64_t sum_ns;
    uint64_t buckets[METRICS_BUCKETS]; /* cumulative on render, not on observe */
} metrics_hist;

typedef struct {
    const char *pattern; /* the route pattern, e.g. "/api/workflows/:id" */
    uint64_t requests[METRICS_METHODS][METRICS_STATUSES];
    metrics_hist latency;
} metrics_route;

/* Once at start: the version and commit for aop_build_info. */
void metrics_init(const char *version, const char *commit);

void metrics_route_observe(metrics_route *r, const char *method, int status, int64_t duration_ns);

/* op must be a string with static lifetime (e.g. "user_insert"). */
void metrics_db_observe(const char *op, int64_t duration_ns);

/* Appends the whole exposition to out. routes may be NULL when n is 0. */
void metrics_render(buf *out, metrics_route *const *routes, int n);

#endif
