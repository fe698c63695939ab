/*
 * router.h - matching a request path against a route pattern.
 *
 * Patterns are literal segments and ":name" parameters, e.g.
 * "/api/workflows/:id/versions/:version". A parameter matches one non-empty
 * segment. A last segment "*" matches the rest of the path, any number of
 * characters (none too) across any number of segments, as the parameter "*"
 * (the console's addresses). No other wildcards, no trailing-slash leniency:
 * "/health/" is not "/health".
 */
#ifndef AOP_HTTP_ROUTER_H
#define AOP_HTTP_ROUTER_H

#include <stddef.h>

#include "core/mem.h"

#define ROUTER_MAX_PARAMS 8

typedef struct {
    const char *name;  /* points into the pattern, not NUL-terminated: name_len */
    size_t name_len;
    const char *value; /* NUL-terminated copy in the arena */
} router_param;

/* 1 when path matches pattern; fills params (values copied into a) and
 * *nparams. 0 otherwise (params untouched beyond *nparams = 0). */
int router_match(const char *pattern, const char *path, router_param *params, int *nparams,
                 arena *a);

#endif
