/*
 * routes.h - the route table: one row per (method, pattern), as data.
 */
#ifndef AOP_HTTP_ROUTES_H
#define AOP_HTTP_ROUTES_H

#include "core/buf.h"
#include "http/http.h"
#include "infra/metrics.h"

typedef struct {
    const char *method;
    const char *pattern;
    http_handler handler;
    metrics_route *stats; /* counters and latency of this row */
} http_route;

extern const http_route http_routes[];
extern const int http_routes_len;
/* Counters for requests that matched no row. */
extern metrics_route http_unmatched_stats;

/* Appends the whole /metrics exposition (routes, database, process, build). */
void http_routes_metrics(buf *out);

#endif
