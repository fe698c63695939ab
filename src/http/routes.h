/*
 * routes.h - the route table: one row per (method, pattern), as data.
 *
 * A row says who may call it (access and roles) and which rate-limit bucket
 * counts it; the server's guard enforces both before the handler runs, so
 * handlers never repeat role checks.
 */
#ifndef AOP_HTTP_ROUTES_H
#define AOP_HTTP_ROUTES_H

#include "core/buf.h"
#include "http/http.h"
#include "infra/metrics.h"

typedef enum {
    ACCESS_PUBLIC,  /* no credentials read */
    ACCESS_AUTH,    /* a bearer token or an API key */
    ACCESS_BEARER,  /* a bearer token only: an API key answers 403 */
    ACCESS_HOOK,    /* a webhook's own auth (its handler): no credentials read,
                       any body, kept raw (http_body_raw) and not parsed */
} http_access;

/* Roles a row admits (a bit set); ROLES_ANY admits every role. */
#define ROLE_ADMIN 1u
#define ROLE_USER 2u
#define ROLE_VIEWER 4u
#define ROLES_ANY (ROLE_ADMIN | ROLE_USER | ROLE_VIEWER)

typedef enum {
    BUCKET_NONE,    /* not rate limited (/health, /ready, /metrics) */
    BUCKET_GENERAL, /* RATE_LIMIT_*, per user (its API keys too) or client IP */
    BUCKET_AUTH,    /* AUTH_RATE_LIMIT_*, per client IP */
    BUCKET_HOOK,    /* RATE_LIMIT_*, per webhook (the route's :id) */
} http_bucket;

typedef struct {
    const char *method;
    const char *pattern;
    http_handler handler;
    http_access access;
    unsigned roles;
    http_bucket bucket;
    metrics_route *stats; /* counters and latency of this row */
} http_route;

extern const http_route http_routes[];
extern const int http_routes_len;
/* Counters for requests that matched no row. */
extern metrics_route http_unmatched_stats;

/* The bit of a role name (0 for an unknown one). */
unsigned http_role_bit(const char *role);

/* Appends the whole /metrics exposition (routes, database, process, build). */
void http_routes_metrics(buf *out);

#endif
