/*
 * guard.h - what runs between routing and the handler: credentials, rate
 * limit, access rule of the route row (see docs/api.md, "Order of checks").
 */
#ifndef AOP_HTTP_GUARD_H
#define AOP_HTTP_GUARD_H

#include "auth/session.h"
#include "http/routes.h"

/* What the first step learnt about the caller's credentials. */
typedef struct {
    aop_err rc;      /* AOP_OK when id is a verified caller */
    const char *why; /* the client message when rc is not AOP_OK */
} http_guard;

/*
 * Step one, before the body checks: reads the credentials when row (the
 * route, or the row whose path matched for a 405; NULL for an unknown path)
 * asks for them, then counts the request in bucket. 0 after answering 429.
 */
int http_guard_limit_or_reply(http_req *req, const http_route *row, http_bucket bucket,
                              auth_identity *id, http_guard *g);

/* Step two, just before the handler: the row's access rule (401, 403, 503).
 * 1 when the handler may run. */
int http_guard_access_or_reply(http_req *req, const http_route *r, const auth_identity *id,
                               const http_guard *g);

#endif
