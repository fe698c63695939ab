/*
 * executions.h - the execution history and analytics service behind
 * /api/executions and POST /api/workflows/:id/execute.
 *
 * Access follows the execution's workflow: reading needs read access on it,
 * cancelling write access; an admin may read any execution, also of a
 * deleted workflow. A caller who may not read answers AOP_ERR_NOT_FOUND,
 * one who may read but not write AOP_ERR_FORBIDDEN.
 *
 * Caching: a finished execution (it no longer changes) 5 minutes; a
 * workflow's stats and the summary 1 hour, under a key holding a
 * generation that every execution's end, cancel and delete bumps, so no
 * reader ever sees figures older than the last end.
 */
#ifndef AOP_EXECUTIONS_EXECUTIONS_H
#define AOP_EXECUTIONS_EXECUTIONS_H

#include <jansson.h>

#include "app.h"
#include "workflows/workflows.h"

#define EXEC_TTL_MS (5LL * 60 * 1000)
#define EXEC_STATS_TTL_MS (60LL * 60 * 1000)
#define EXEC_DEFAULT_TIMEOUT_MS 300000
#define EXEC_GEN_KEY "exec:gen"
#define EXEC_PRUNE_KEY "exec:pruned"

/* The queued execution row of the workflow's current version with input
 * (an object; NULL: {}), checking the caller's write access; nothing is
 * written. */
aop_err executions_prepare(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                           const json_t *input, store_execution *out, arena *a);

/* The execution as the API shows it (JSON text from a). */
aop_err executions_get(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                       size_t *len, arena *a);

/* Cancels a queued or running execution (an ended one is left as it is);
 * *json is the execution afterwards. */
aop_err executions_cancel(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                          size_t *len, arena *a);

/* Deletes it with its nodes (admin). */
aop_err executions_delete(const app_ctx *app, const char *id);

/* A page of the caller's readable executions (items without output and
 * nodes). */
aop_err executions_list(const app_ctx *app, const wf_caller *c, store_exec_query *q,
                        long long page, char **json, size_t *len, arena *a);

/* GET /api/executions/workflow/:workflowId/stats */
aop_err executions_stats(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                         char **json, size_t *len, arena *a);

/* GET /api/executions/analytics/summary (admin); from/to RFC 3339 ms or NULL. */
aop_err executions_summary(const app_ctx *app, const char *from, const char *to, char **json,
                           size_t *len, arena *a);

/* To call after an execution of workflow_id ended or went away (either
 * may be NULL). */
void executions_changed(const app_ctx *app, const char *workflow_id, const char *id);
/* To call after retention deleted executions. */
void executions_pruned(const app_ctx *app);

#endif
