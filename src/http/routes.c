#include "http/routes.h"
#include "api/api.h"

/* A row with its own counters (a file-scope compound literal is static). */
#define ROUTE(m, p, h) {m, p, h, &(metrics_route){.pattern = p}}

const http_route http_routes[] = {
    ROUTE("GET", "/health", api_health),
    ROUTE("GET", "/ready", api_ready),
    ROUTE("GET", "/metrics", api_metrics),
};

const int http_routes_len = (int)(sizeof(http_routes) / sizeof(http_routes[0]));

metrics_route http_unmatched_stats = {.pattern = "unmatched"};

void http_routes_metrics(buf *out)
{
    metrics_route *all[sizeof(http_routes) / sizeof(http_routes[0]) + 1];
    for (int i = 0; i < http_routes_len; i++)
        all[i] = http_routes[i].stats;
    all[http_routes_len] = &http_unmatched_stats;
    metrics_render(out, all, http_routes_len + 1);
}
