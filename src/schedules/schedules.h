/*
 * schedules.h - the cron schedules service behind /api/workflows/:id/schedules
 * and /api/schedules (docs/api.md, "Triggers"; docs/schedules.md).
 *
 * Access follows the schedule's workflow: reading needs read access on it,
 * changing, deleting and triggering write access; creating needs write
 * access on the workflow. A caller who may not read answers
 * AOP_ERR_NOT_FOUND, one who may read but not write AOP_ERR_FORBIDDEN.
 *
 * Every change is told to the scheduler of each instance at once
 * (scheduler.h), so it applies from the next due time on. The due times
 * themselves are run by schedules_fire, which the scheduler calls.
 * JSON text handed out is from the arena.
 */
#ifndef AOP_SCHEDULES_SCHEDULES_H
#define AOP_SCHEDULES_SCHEDULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "app.h"
#include "workflows/workflows.h"

/* A workflow's schedules at most; another create answers AOP_ERR_VALIDATION. */
#define SCHEDULES_PER_WORKFLOW_MAX 100
/* How many due times GET /api/schedules/:id shows as `upcoming`. */
#define SCHEDULES_UPCOMING 5
/* A due time is still run when found up to this late (docs/api.md). */
#define SCHEDULES_LATE_MS 60000
/* Run records are kept this long (a due time is never older than
 * SCHEDULES_LATE_MS when it runs, so they only need to outlive that). */
#define SCHEDULES_RUNS_KEEP_MS (24LL * 3600 * 1000)

/* A create (cron required) or a change (NULL, has_enabled false: kept). */
typedef struct {
    const char *cron;
    const char *timezone;
    const json_t *input;  /* an object */
    const char *overlap;  /* skip | allow | buffer_one */
    bool has_enabled, enabled;
} schedule_input;

bool schedules_overlap_ok(const char *s);

/* AOP_ERR_VALIDATION when the workflow has SCHEDULES_PER_WORKFLOW_MAX. */
aop_err schedules_create(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                         const schedule_input *in, char **json, size_t *len, arena *a);
/* A page of the workflow's schedules (the list response). */
aop_err schedules_list(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                       long long page, long long limit, char **json, size_t *len, arena *a);
/* The schedule with `upcoming`. */
aop_err schedules_get(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                      size_t *len, arena *a);
aop_err schedules_update(const app_ctx *app, const wf_caller *c, const char *id,
                         const schedule_input *in, char **json, size_t *len, arena *a);
aop_err schedules_delete(const app_ctx *app, const wf_caller *c, const char *id);
/* Starts the schedule's workflow now for c (overlap does not apply):
 * *row is the queued execution. AOP_ERR_QUOTA_EXCEEDED as for execute. */
aop_err schedules_trigger(const app_ctx *app, const wf_caller *c, const char *id,
                          store_execution *row, arena *a);

/* What schedules_fire did with a due time. */
typedef enum {
    SCHEDULES_STARTED,  /* an execution is queued */
    SCHEDULES_TAKEN,    /* another process (or an earlier call) ran it */
    SCHEDULES_SKIPPED,  /* overlap skip, an inactive workflow, the quota */
    SCHEDULES_PENDING,  /* buffer_one: held until the active run ends */
    SCHEDULES_GONE,     /* the schedule is deleted or disabled */
} schedules_outcome;

/* Runs due time due_ms of schedules ids[0..n) (at most SCHEDULES_BATCH_MAX)
 * at most once across processes: their run records and their executions
 * are one transaction; out[i] says what schedule i did. On an error
 * (returned) nothing of the transaction is written. */
#define SCHEDULES_BATCH_MAX 256
aop_err schedules_fire(const app_ctx *app, const char (*ids)[UUID_STR_LEN], int n,
                       int64_t due_ms, schedules_outcome *out);
/* buffer_one: starts the held due time of schedule id once no run of it is
 * active; *still true while it has to wait on. */
aop_err schedules_fire_pending(const app_ctx *app, const char *id, bool *still);

#endif
