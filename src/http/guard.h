/*
 * guard.h - what runs between routing and the handler: credentials, rate
 * limit, access rule of the route row (see docs/api.md, "Order of checks").
 */
#ifndef AOP_HTTP_GUARD_H
#define AOP_HTTP_GUARD_H

#include "auth/session.h"
#include "http/routes.h"

/* 1 when the handler may run (id filled for routes with credentials); 0
 * when the guard has answered (401, 403, 429, 503). */
int http_guard_or_reply(http_req *req, const http_route *r, auth_identity *id);

#endif
