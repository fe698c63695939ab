/*
 * wait.c - synchronous waits for an execution's end (execute with
 * wait: true; sync webhooks reuse it). The connection is parked, holding no
 * HTTP thread, until the execution ends or the wait is over, and never
 * longer than WAIT_MAX_MS: libmicrohttpd does not time a suspended
 * connection out, and each one counts against HTTP_MAX_CONNECTIONS_PER_IP
 * until it is resumed, so an uncapped wait let a few requests lock their
 * client out for as long as a workflow's timeout.
 */
#include "api/common.h"
#include "core/str.h"
#include "executions/executions.h"

/* Past the execution's own timeout, so that its end (timed_out) is seen. */
#define WAIT_SLACK_MS 250

typedef struct {
    http_req *req;
    char id[UUID_STR_LEN];
    wf_caller caller;
    api_ended_fn ended;
    void *ctx;
    aop_err rc; /* the start's refusal (api_start_wait) */
} wait_ctx;

void api_reply_status(http_req *req, const char *execution_id, exec_status status)
{
    http_reply_json(req, 202, json_pack("{s:s, s:s}", "executionId", execution_id, "status",
                                        exec_status_name(status)));
}

static void on_wait_done(void *ctx, bool ended)
{
    (void)ended;
    http_unpark(((wait_ctx *)ctx)->req);
}

/* Back on an HTTP thread: the execution as it is now. */
static void answer(http_req *req, void *ctx)
{
    wait_ctx *w = ctx;
    if (w->rc == AOP_ERR_NOT_FOUND) { /* the workflow went meanwhile */
        http_reply_error(req, w->rc, "No such workflow", NULL);
        return;
    }
    if (w->rc != AOP_OK) {
        api_reply_err(req, w->rc, NULL);
        return;
    }
    exec_status st = EXEC_QUEUED;
    char *json = NULL;
    size_t len = 0;
    aop_err rc = executions_result(http_app(req), &w->caller, w->id, &st, &json, &len,
                                   http_arena(req));
    if (rc == AOP_ERR_NOT_FOUND)
        http_reply_error(req, rc, "No such execution", NULL);
    else if (rc != AOP_OK)
        api_reply_err(req, rc, NULL);
    else if (!json)
        api_reply_status(req, w->id, st);
    else
        w->ended(req, json, len, w->ctx);
}

static void on_run_done(void *ctx, aop_err rc, bool ended)
{
    (void)ended;
    wait_ctx *w = ctx;
    w->rc = rc;
    http_unpark(w->req);
}

/* How long to wait for an execution with this timeout. */
static long long wait_ms(http_req *req, long long timeout_ms)
{
    long long cap = http_app(req)->cfg->wait_max_ms;
    return timeout_ms < cap - WAIT_SLACK_MS ? timeout_ms + WAIT_SLACK_MS : cap;
}

static wait_ctx *new_wait(http_req *req, const wf_caller *c, const char *execution_id,
                          api_ended_fn ended, void *ctx)
{
    wait_ctx *w = arena_alloc(http_arena(req), sizeof(*w));
    *w = (wait_ctx){.req = req, .caller = *c, .ended = ended, .ctx = ctx, .rc = AOP_OK};
    str_copy(w->id, sizeof(w->id), execution_id);
    return w;
}

void api_wait_end(http_req *req, const wf_caller *c, const char *execution_id,
                  exec_status status, long long timeout_ms, api_ended_fn ended, void *ctx)
{
    wait_ctx *w = new_wait(req, c, execution_id, ended, ctx);
    /* The park comes first, so that no end can slip in between. */
    if (http_park(req, answer, w) != 0) {
        api_reply_status(req, execution_id, status);
        return;
    }
    if (executions_wait(http_app(req), w->id, wait_ms(req, timeout_ms), on_wait_done, w) !=
        AOP_OK)
        http_unpark(req);
}

void api_start_wait(http_req *req, const wf_caller *c, const store_execution *row,
                    api_ended_fn ended, void *ctx)
{
    wait_ctx *w = new_wait(req, c, row->id, ended, ctx);
    if (http_park(req, answer, w) != 0) {
        api_reply_err(req, AOP_ERR_INTERNAL, NULL);
        return;
    }
    aop_err rc = executions_start_wait(http_app(req), row, wait_ms(req, row->timeout_ms),
                                       on_run_done, w);
    if (rc != AOP_OK) { /* stopping */
        w->rc = rc;
        http_unpark(req);
    }
}
