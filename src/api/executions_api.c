/*
 * executions_api.c - POST /api/workflows/:id/execute and /api/executions.
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/common.h"
#include "auth/session.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/str.h"
#include "executions/executions.h"

static const char *const sort_fields[] = {"createdAt", "startedAt", "finishedAt", "durationMs",
                                          NULL};
static const store_exec_sort sort_of[] = {STORE_EXEC_SORT_CREATED, STORE_EXEC_SORT_STARTED,
                                          STORE_EXEC_SORT_FINISHED, STORE_EXEC_SORT_DURATION};

static void reply_err(http_req *req, aop_err rc, const char *what)
{
    char msg[96];
    switch (rc) {
    case AOP_ERR_NOT_FOUND:
        snprintf(msg, sizeof(msg), "No such %s", what);
        http_reply_error(req, rc, msg, NULL);
        break;
    case AOP_ERR_FORBIDDEN:
        http_reply_error(req, rc, "You may read this workflow but not run or change it", NULL);
        break;
    default:
        api_reply_err(req, rc, NULL);
    }
}

static void reply_text(http_req *req, int status, const char *json, size_t len)
{
    http_reply_bytes(req, status, "application/json", json, len);
}

/* A service's answer: its JSON text, or its error about `what`. */
static void reply_result(http_req *req, aop_err rc, const char *what, const char *json,
                         size_t len)
{
    if (rc != AOP_OK)
        reply_err(req, rc, what);
    else
        reply_text(req, 200, json, len);
}

/* A from/to query argument as RFC 3339 ms into out; false (with a problem)
 * when malformed. */
static bool read_time(http_req *req, const char *name, char out[25], const char **set,
                      json_t *details)
{
    const char *v = http_query(req, name);
    int64_t ms = 0;
    *set = NULL;
    if (!v)
        return true;
    if (strlen(v) > 64 || clock_parse_rfc3339(v, 1, &ms) != 0) {
        api_problem(details, name, "must be an RFC 3339 date-time or a YYYY-MM-DD date");
        return false;
    }
    clock_format_rfc3339(ms, out);
    *set = out;
    return true;
}

static bool read_range(http_req *req, char from[25], char to[25], const char **f, const char **t,
                       json_t *details)
{
    bool ok = read_time(req, "from", from, f, details);
    ok = read_time(req, "to", to, t, details) && ok;
    return ok;
}

/* ---- execute ---- */

typedef struct {
    http_req *req;
    char id[UUID_STR_LEN];
    aop_err rc;
} submit_ctx;

static void on_committed(void *ctx, aop_err rc)
{
    submit_ctx *x = ctx;
    x->rc = rc;
    http_unpark(x->req);
}

static void answer_submitted(http_req *req, void *ctx)
{
    submit_ctx *x = ctx;
    if (x->rc == AOP_OK)
        api_reply_status(req, x->id, EXEC_QUEUED);
    else
        reply_err(req, x->rc == AOP_ERR_QUOTA_EXCEEDED ? x->rc : AOP_ERR_UNAVAILABLE, NULL);
}

/* The row goes to the engine's group commit; the connection waits parked,
 * so that the HTTP threads take more requests meanwhile. */
static void submit(http_req *req, const store_execution *row)
{
    submit_ctx *x = arena_alloc(http_arena(req), sizeof(*x));
    x->req = req;
    x->rc = AOP_ERR_UNAVAILABLE;
    str_copy(x->id, sizeof(x->id), row->id);
    if (http_park(req, answer_submitted, x) != 0) {
        api_reply_err(req, AOP_ERR_INTERNAL, NULL);
        return;
    }
    if (executions_start(http_app(req), row, on_committed, x) != AOP_OK)
        http_unpark(req); /* stopping: answered 503 */
}

/* wait: true, ended in time: the execution. */
static void answer_ended(http_req *req, const char *json, size_t len, void *ctx)
{
    (void)ctx;
    reply_text(req, 200, json, len);
}

void api_workflows_execute(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    json_t *details = json_array();
    const json_t *input = json_object_get(body, "input");
    const json_t *wait = json_object_get(body, "wait");
    if (input && !json_is_object(input)) {
        api_problem(details, "input", "must be an object");
        input = NULL;
    }
    if (wait && !json_is_boolean(wait))
        api_problem(details, "wait", "must be a boolean");
    /* Who may run the workflow is settled before what was sent (404, 403, then 400). */
    wf_caller c = api_wf_caller(req);
    store_execution row;
    aop_err rc = executions_prepare(http_app(req), &c, http_param(req, "id"), input, &row,
                                    http_arena(req));
    if (rc != AOP_OK) {
        json_decref(details);
        reply_err(req, rc, "workflow");
        return;
    }
    if (!api_valid_or_reply(req, details))
        return;
    if (!json_is_true(wait)) {
        submit(req, &row);
        return;
    }
    api_start_wait(req, &c, &row, answer_ended, NULL);
}

/* ---- history ---- */

void api_executions_list(http_req *req)
{
    api_page pg;
    if (!api_page_or_reply(req, sort_fields, true, &pg))
        return;
    json_t *details = json_array();
    char from[25], to[25];
    store_exec_query q = {.workflow_id = http_query(req, "workflowId"),
                          .status = -1,
                          .sort = sort_of[pg.sort],
                          .desc = pg.desc,
                          .offset = pg.offset,
                          .limit = pg.limit};
    const char *status = http_query(req, "status");
    if (q.workflow_id && !ids_uuid_ok(q.workflow_id))
        api_problem(details, "workflowId", "must be a workflow id");
    if (status) {
        q.status = exec_status_of(status);
        if (q.status < 0 || q.status >= EXEC_RUN_STATUSES)
            api_problem(details, "status",
                        "must be one of queued, running, succeeded, failed, cancelled, "
                        "timed_out, waiting");
    }
    read_range(req, from, to, &q.from, &q.to, details);
    q.trigger = http_query(req, "trigger");
    if (q.trigger && strcmp(q.trigger, "api") && strcmp(q.trigger, "schedule") &&
        strcmp(q.trigger, "webhook") && strcmp(q.trigger, "workflow"))
        api_problem(details, "trigger", "must be one of api, schedule, webhook, workflow");
    if (!api_valid_or_reply(req, details))
        return;
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = executions_list(http_app(req), &c, &q, pg.page, &json, &len, http_arena(req));
    reply_result(req, rc, "execution", json, len);
}

void api_executions_get(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = executions_get(http_app(req), &c, http_param(req, "id"), &json, &len,
                                http_arena(req));
    reply_result(req, rc, "execution", json, len);
}

void api_executions_cancel(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = executions_cancel(http_app(req), &c, http_param(req, "id"), &json, &len,
                                   http_arena(req));
    reply_result(req, rc, "execution", json, len);
}

void api_executions_delete(http_req *req)
{
    aop_err rc = executions_delete(http_app(req), http_param(req, "id"));
    if (rc != AOP_OK) {
        reply_err(req, rc, "execution");
        return;
    }
    const store_user *u = &http_identity(req)->user;
    api_audit(req, "execution.delete", u->id, http_param(req, "id"), NULL);
    http_reply_empty(req, 204);
}

/* ---- analytics ---- */

void api_executions_stats(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = executions_stats(http_app(req), &c, http_param(req, "workflowId"), &json, &len,
                                  http_arena(req));
    reply_result(req, rc, "workflow", json, len);
}

void api_executions_summary(http_req *req)
{
    json_t *details = json_array();
    char from[25], to[25];
    const char *f = NULL, *t = NULL;
    read_range(req, from, to, &f, &t, details);
    if (!api_valid_or_reply(req, details))
        return;
    char *json = NULL;
    size_t len = 0;
    aop_err rc = executions_summary(http_app(req), f, t, &json, &len, http_arena(req));
    reply_result(req, rc, "execution", json, len);
}
