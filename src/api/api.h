/*
 * api.h - the handlers named by the route table (src/http/routes.c).
 * Handlers are thin: parse, check, call a service, answer. Who may call a
 * handler is decided by its route row before it runs.
 */
#ifndef AOP_API_API_H
#define AOP_API_API_H

#include "http/http.h"

/* src/api/ops.c */
void api_health(http_req *req);
void api_ready(http_req *req);
void api_metrics(http_req *req);
void api_openapi(http_req *req);

/* src/api/console.c */
void api_console(http_req *req);

/* src/api/auth_api.c */
void api_register(http_req *req);
void api_login(http_req *req);
void api_refresh(http_req *req);
void api_logout(http_req *req);
void api_me_get(http_req *req);
void api_me_patch(http_req *req);
void api_me_password(http_req *req);

/* src/api/keys_api.c */
void api_keys_create(http_req *req);
void api_keys_list(http_req *req);
void api_keys_delete(http_req *req);

/* src/api/users_api.c */
void api_users_list(http_req *req);
void api_users_patch(http_req *req);

/* src/api/workflows_api.c */
void api_workflows_list(http_req *req);
void api_workflows_get(http_req *req);
void api_workflows_create(http_req *req);
void api_workflows_update(http_req *req);
void api_workflows_delete(http_req *req);
void api_workflows_duplicate(http_req *req);
void api_workflows_versions(http_req *req);
void api_workflows_version(http_req *req);
void api_workflows_summary(http_req *req);
void api_workflows_execute(http_req *req);

/* events_api.c */
void api_execution_events(http_req *req);
void api_events(http_req *req);

/* executions_api.c */
void api_executions_list(http_req *req);
void api_executions_get(http_req *req);
void api_executions_cancel(http_req *req);
void api_approvals_decide(http_req *req);
void api_approvals_list(http_req *req);
void api_executions_delete(http_req *req);
void api_executions_stats(http_req *req);
void api_executions_summary(http_req *req);

/* schedules_api.c */
void api_schedules_create(http_req *req);
void api_schedules_list(http_req *req);
void api_schedules_get(http_req *req);
void api_schedules_patch(http_req *req);
void api_schedules_delete(http_req *req);
void api_schedules_trigger(http_req *req);

/* webhooks_api.c */
void api_webhooks_create(http_req *req);
void api_webhooks_list(http_req *req);
void api_webhooks_delete(http_req *req);
void api_webhooks_rotate(http_req *req);
void api_hooks_call(http_req *req);

/* budgets_api.c */
void api_budgets_list(http_req *req);
void api_budgets_create(http_req *req);
void api_budgets_get(http_req *req);
void api_budgets_patch(http_req *req);
void api_budgets_delete(http_req *req);

/* credentials_api.c */
void api_credentials_list(http_req *req);
void api_credentials_create(http_req *req);
void api_credentials_get(http_req *req);
void api_credentials_patch(http_req *req);
void api_credentials_delete(http_req *req);

#endif
