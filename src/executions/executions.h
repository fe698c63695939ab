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
#include <stdbool.h>

#include "app.h"
#include "engine/engine.h"
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

/* The queued execution row of a trigger (trigger "schedule" or "webhook",
 * trigger_id its id) of workflow_id for user_id, the trigger's creator,
 * whose access is not checked again (the trigger was made by someone
 * allowed to run the workflow): AOP_ERR_WORKFLOW_INACTIVE unless the
 * workflow is active, AOP_ERR_NOT_FOUND when it is gone. */
aop_err executions_prepare_trigger(const app_ctx *app, const char *user_id,
                                   const char *workflow_id, const json_t *input,
                                   const char *trigger, const char *trigger_id,
                                   store_execution *out, arena *a);

/* Told once whether a wait saw the end. */
typedef void (*executions_fn)(void *ctx, bool ok);
/* Told once how a start went: AOP_OK (committed), AOP_ERR_QUOTA_EXCEEDED,
 * or the store's error. */
typedef void (*executions_start_fn)(void *ctx, aop_err rc);

/*
 * Starts row (a queued execution from executions_prepare; borrowed) unless
 * its user (triggered_by) already has QUOTA_ACTIVE_EXECUTIONS queued or
 * running executions: then AOP_ERR_QUOTA_EXCEEDED and nothing is queued.
 * The count and the insert are one transaction, safe against concurrent
 * starts on every instance (store_execution_enqueue).
 * fn NULL: the row is committed before this returns and a loop is woken
 * (here and in the other processes sharing the database).
 * fn set: the row joins the engine's group commit and this returns at once;
 * fn(ctx, rc) runs once, on an engine thread, after that commit.
 * AOP_ERR_UNAVAILABLE (fn never called) when the engine is stopping; other
 * errors are the store's (fn never called).
 */
aop_err executions_start(const app_ctx *app, const store_execution *row, executions_start_fn fn,
                         void *ctx);

/*
 * executions_start with fn set, and executions_wait, in one: row joins the
 * engine's group commit and fn(ctx, rc, ended) is called once, on an
 * engine thread: with the start's refusal (AOP_ERR_QUOTA_EXCEEDED or the
 * store's error), or with AOP_OK and ended as executions_wait tells it,
 * timeout_ms counted from no sooner than the commit. AOP_ERR_UNAVAILABLE
 * (fn never called) when the engine is stopping.
 */
typedef void (*executions_run_fn)(void *ctx, aop_err rc, bool ended);
aop_err executions_start_wait(const app_ctx *app, const store_execution *row,
                              long long timeout_ms, executions_run_fn fn, void *ctx);

/* Calls fn(ctx, ended) once: ended true when execution id ended or went
 * away (also before this call: it checks the row after registering), false
 * when timeout_ms passed first or the engine stopped. fn runs on an engine
 * thread, or on this one when the end came first. AOP_ERR_UNAVAILABLE (fn
 * never called) when the engine is stopping. */
aop_err executions_wait(const app_ctx *app, const char *id, long long timeout_ms,
                        executions_fn fn, void *ctx);

/* The status of execution id (one the caller started: no access check for
 * it) in *status; once it has ended also the execution as executions_get
 * gives it in *json, else *json is NULL. */
aop_err executions_result(const app_ctx *app, const wf_caller *c, const char *id,
                          exec_status *status, char **json, size_t *len, arena *a);

/* The execution as the API shows it (JSON text from a). */
aop_err executions_get(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                       size_t *len, arena *a);

/* The decision ("approve" or "reject"; comment may be NULL) of the
 * caller (write access on the workflow) on approval node_id of waiting
 * execution id; the execution is queued again to go on. *json is the
 * execution afterwards. AOP_ERR_NOT_FOUND: no such execution, or no such
 * node waiting there; AOP_ERR_CONFLICT: decided already (the first
 * decision wins) or the execution no longer waits. */
aop_err executions_decide(const app_ctx *app, const wf_caller *c, const char *id,
                          const char *node_id, const char *decision, const char *comment,
                          char **json, size_t *len, arena *a);

/* A page of the approvals the caller may decide (api.md, GET
 * /api/approvals): a list's JSON text from a. */
aop_err executions_approvals(const app_ctx *app, const wf_caller *c, long long offset,
                             long long limit, long long page, char **json, size_t *len,
                             arena *a);

/* Cancels a queued or running execution (an ended one is left as it is);
 * *json is the execution afterwards. */
aop_err executions_cancel(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                          size_t *len, arena *a);

/* AOP_OK when c may read execution id, else AOP_ERR_NOT_FOUND (or the
 * store's error). */
aop_err executions_check_read(const app_ctx *app, const wf_caller *c, const char *id);

/* Deletes it with its nodes (admin). */
aop_err executions_delete(const app_ctx *app, const char *id);

/* A page of the caller's readable executions (items without input, output
 * and nodes). */
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

/* The engine's hooks for app (which must outlive the engine): ends,
 * starts and retention mark the cached executions and figures stale
 * through the two functions above. */
engine_hooks executions_hooks(const app_ctx *app);

#endif
