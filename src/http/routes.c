#include "http/routes.h"
#include "api/api.h"

#include <string.h>

/* A row with its own counters (a file-scope compound literal is static). */
#define ROUTE(m, p, h, access, roles, bucket) \
    {m, p, h, access, roles, bucket, &(metrics_route){.pattern = p}}

#define NOT_VIEWER (ROLE_ADMIN | ROLE_USER)

const http_route http_routes[] = {
    ROUTE("GET", "/health", api_health, ACCESS_PUBLIC, ROLES_ANY, BUCKET_NONE),
    ROUTE("GET", "/ready", api_ready, ACCESS_PUBLIC, ROLES_ANY, BUCKET_NONE),
    ROUTE("GET", "/metrics", api_metrics, ACCESS_PUBLIC, ROLES_ANY, BUCKET_NONE),
    ROUTE("GET", "/openapi.json", api_openapi, ACCESS_PUBLIC, ROLES_ANY, BUCKET_NONE),
    /* the web console: its page for any of its addresses, its files (api/console.c) */
    ROUTE("GET", "/", api_console, ACCESS_PUBLIC, ROLES_ANY, BUCKET_NONE),
    ROUTE("GET", "/console", api_console, ACCESS_PUBLIC, ROLES_ANY, BUCKET_NONE),
    ROUTE("GET", "/console/*", api_console, ACCESS_PUBLIC, ROLES_ANY, BUCKET_NONE),

    ROUTE("POST", "/api/auth/register", api_register, ACCESS_PUBLIC, ROLES_ANY, BUCKET_AUTH),
    ROUTE("POST", "/api/auth/login", api_login, ACCESS_PUBLIC, ROLES_ANY, BUCKET_AUTH),
    ROUTE("POST", "/api/auth/refresh", api_refresh, ACCESS_PUBLIC, ROLES_ANY, BUCKET_AUTH),
    ROUTE("POST", "/api/auth/logout", api_logout, ACCESS_BEARER, ROLES_ANY, BUCKET_GENERAL),
    ROUTE("GET", "/api/auth/me", api_me_get, ACCESS_AUTH, ROLES_ANY, BUCKET_GENERAL),
    ROUTE("PATCH", "/api/auth/me", api_me_patch, ACCESS_AUTH, ROLES_ANY, BUCKET_GENERAL),
    ROUTE("POST", "/api/auth/me/password", api_me_password, ACCESS_BEARER, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("POST", "/api/auth/api-keys", api_keys_create, ACCESS_BEARER, NOT_VIEWER,
          BUCKET_GENERAL),
    ROUTE("GET", "/api/auth/api-keys", api_keys_list, ACCESS_BEARER, ROLES_ANY, BUCKET_GENERAL),
    ROUTE("DELETE", "/api/auth/api-keys/:id", api_keys_delete, ACCESS_BEARER, ROLES_ANY,
          BUCKET_GENERAL),

    ROUTE("GET", "/api/users", api_users_list, ACCESS_AUTH, ROLE_ADMIN, BUCKET_GENERAL),
    ROUTE("PATCH", "/api/users/:id", api_users_patch, ACCESS_AUTH, ROLE_ADMIN, BUCKET_GENERAL),

    /* the literal path before "/api/workflows/:id" patterns of its length */
    ROUTE("GET", "/api/workflows/analytics/summary", api_workflows_summary, ACCESS_AUTH,
          ROLE_ADMIN, BUCKET_GENERAL),
    ROUTE("GET", "/api/workflows", api_workflows_list, ACCESS_AUTH, ROLES_ANY, BUCKET_GENERAL),
    ROUTE("POST", "/api/workflows", api_workflows_create, ACCESS_AUTH, NOT_VIEWER,
          BUCKET_GENERAL),
    ROUTE("GET", "/api/workflows/:id", api_workflows_get, ACCESS_AUTH, ROLES_ANY, BUCKET_GENERAL),
    /* "write": a viewer-role caller gets 404 or 403 from the workflow's rules */
    ROUTE("PUT", "/api/workflows/:id", api_workflows_update, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("DELETE", "/api/workflows/:id", api_workflows_delete, ACCESS_AUTH, ROLE_ADMIN,
          BUCKET_GENERAL),
    ROUTE("POST", "/api/workflows/:id/duplicate", api_workflows_duplicate, ACCESS_AUTH,
          NOT_VIEWER, BUCKET_GENERAL),
    ROUTE("GET", "/api/workflows/:id/versions", api_workflows_versions, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("GET", "/api/workflows/:id/versions/:version", api_workflows_version, ACCESS_AUTH,
          ROLES_ANY, BUCKET_GENERAL),
    /* "write" on the workflow: 404 or 403 from the workflow's rules */
    ROUTE("POST", "/api/workflows/:id/execute", api_workflows_execute, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),

    /* the literal paths before "/api/executions/:id/..." patterns of their length */
    ROUTE("GET", "/api/executions/analytics/summary", api_executions_summary, ACCESS_AUTH,
          ROLE_ADMIN, BUCKET_GENERAL),
    ROUTE("GET", "/api/executions/workflow/:workflowId/stats", api_executions_stats, ACCESS_AUTH,
          ROLES_ANY, BUCKET_GENERAL),
    ROUTE("GET", "/api/executions", api_executions_list, ACCESS_AUTH, ROLES_ANY, BUCKET_GENERAL),
    ROUTE("GET", "/api/executions/:id", api_executions_get, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("GET", "/api/executions/:id/events", api_execution_events, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("GET", "/api/events", api_events, ACCESS_AUTH, ROLES_ANY, BUCKET_GENERAL),
    ROUTE("POST", "/api/executions/:id/cancel", api_executions_cancel, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("POST", "/api/executions/:id/approvals/:nodeId", api_approvals_decide, ACCESS_AUTH,
          ROLES_ANY, BUCKET_GENERAL),
    ROUTE("GET", "/api/approvals", api_approvals_list, ACCESS_AUTH, ROLES_ANY, BUCKET_GENERAL),
    ROUTE("DELETE", "/api/executions/:id", api_executions_delete, ACCESS_AUTH, ROLE_ADMIN,
          BUCKET_GENERAL),

    /* read or write on the schedule's workflow: the service answers 404 or 403 */
    ROUTE("POST", "/api/workflows/:id/schedules", api_schedules_create, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("GET", "/api/workflows/:id/schedules", api_schedules_list, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("GET", "/api/schedules/:id", api_schedules_get, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("PATCH", "/api/schedules/:id", api_schedules_patch, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("DELETE", "/api/schedules/:id", api_schedules_delete, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("POST", "/api/schedules/:id/trigger", api_schedules_trigger, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),

    /* write (read to list) on the webhook's workflow: the service answers 404 or 403 */
    ROUTE("POST", "/api/workflows/:id/webhooks", api_webhooks_create, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("GET", "/api/workflows/:id/webhooks", api_webhooks_list, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("DELETE", "/api/webhooks/:id", api_webhooks_delete, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("POST", "/api/webhooks/:id/rotate", api_webhooks_rotate, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    /* the webhook's own auth, in its handler; limited per webhook */
    ROUTE("POST", "/hooks/:id", api_hooks_call, ACCESS_HOOK, ROLES_ANY, BUCKET_HOOK),

    ROUTE("GET", "/api/budgets", api_budgets_list, ACCESS_AUTH, ROLES_ANY, BUCKET_GENERAL),
    ROUTE("POST", "/api/budgets", api_budgets_create, ACCESS_AUTH, ROLE_ADMIN, BUCKET_GENERAL),
    ROUTE("GET", "/api/budgets/:id", api_budgets_get, ACCESS_AUTH, ROLES_ANY, BUCKET_GENERAL),
    ROUTE("PATCH", "/api/budgets/:id", api_budgets_patch, ACCESS_AUTH, ROLE_ADMIN,
          BUCKET_GENERAL),
    ROUTE("DELETE", "/api/budgets/:id", api_budgets_delete, ACCESS_AUTH, ROLE_ADMIN,
          BUCKET_GENERAL),

    /* owner or admin for one credential: the service answers 404 to others */
    ROUTE("GET", "/api/credentials", api_credentials_list, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("POST", "/api/credentials", api_credentials_create, ACCESS_AUTH, NOT_VIEWER,
          BUCKET_GENERAL),
    ROUTE("GET", "/api/credentials/:id", api_credentials_get, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("PATCH", "/api/credentials/:id", api_credentials_patch, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
    ROUTE("DELETE", "/api/credentials/:id", api_credentials_delete, ACCESS_AUTH, ROLES_ANY,
          BUCKET_GENERAL),
};

const int http_routes_len = (int)(sizeof(http_routes) / sizeof(http_routes[0]));

metrics_route http_unmatched_stats = {.pattern = "unmatched"};

unsigned http_role_bit(const char *role)
{
    if (!role)
        return 0;
    if (strcmp(role, "admin") == 0)
        return ROLE_ADMIN;
    if (strcmp(role, "user") == 0)
        return ROLE_USER;
    if (strcmp(role, "viewer") == 0)
        return ROLE_VIEWER;
    return 0;
}

void http_routes_metrics(buf *out)
{
    metrics_route *all[sizeof(http_routes) / sizeof(http_routes[0]) + 1];
    for (int i = 0; i < http_routes_len; i++)
        all[i] = http_routes[i].stats;
    all[http_routes_len] = &http_unmatched_stats;
    metrics_render(out, all, http_routes_len + 1);
}
