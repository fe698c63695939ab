/*
 * api.h - the handlers named by the route table (src/http/routes.c).
 * Handlers are thin: parse, check, call a service, answer.
 */
#ifndef AOP_API_API_H
#define AOP_API_API_H

#include "http/http.h"

/* src/api/ops.c */
void api_health(http_req *req);
void api_ready(http_req *req);
void api_metrics(http_req *req);

#endif
