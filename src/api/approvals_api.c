/*
 * approvals_api.c - decisions of approval nodes: POST
 * /api/executions/:id/approvals/:nodeId and GET /api/approvals.
 */
#include <string.h>

#include "api/api.h"
#include "api/common.h"
#include "executions/executions.h"

#define COMMENT_MAX 2000 /* characters of a decision's comment */
#define NODE_ID_MAX 100

static const char *const decisions[] = {"approve", "reject", NULL};

void api_approvals_decide(http_req *req)
{
    json_t *body = NULL;
    if (!api_object_or_reply(req, &body))
        return;
    json_t *details = json_array();
    const char *decision = api_string(body, "decision", true, 1, 16, details);
    if (decision && strcmp(decision, decisions[0]) && strcmp(decision, decisions[1])) {
        api_problem(details, "decision", "must be approve or reject");
        decision = NULL;
    }
    const char *comment = api_string(body, "comment", false, 0, COMMENT_MAX, details);
    const char *node_id = http_param(req, "nodeId");
    if (!api_valid_or_reply(req, details))
        return;
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    const char *id = http_param(req, "id");
    aop_err rc = strlen(node_id) > NODE_ID_MAX
                     ? AOP_ERR_NOT_FOUND
                     : executions_decide(http_app(req), &c, id, node_id, decision, comment, &json,
                                         &len, http_arena(req));
    switch (rc) {
    case AOP_OK:
        api_audit(req, "approval.decide", c.id, id,
                  json_pack("{s:s, s:s}", "nodeId", node_id, "decision", decision));
        http_reply_bytes(req, 200, "application/json", json, len);
        break;
    case AOP_ERR_NOT_FOUND:
        http_reply_error(req, rc, "No such approval waiting", NULL);
        break;
    case AOP_ERR_FORBIDDEN:
        http_reply_error(req, rc, "You may read this workflow but not decide its approvals",
                         NULL);
        break;
    case AOP_ERR_CONFLICT:
        http_reply_error(req, rc,
                         "The approval was decided already, or its execution no longer waits",
                         NULL);
        break;
    default:
        api_reply_err(req, rc, NULL);
    }
}

void api_approvals_list(http_req *req)
{
    api_page pg;
    if (!api_page_or_reply(req, NULL, false, &pg))
        return;
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = executions_approvals(http_app(req), &c, pg.offset, pg.limit, pg.page, &json, &len,
                                      http_arena(req));
    if (rc != AOP_OK)
        api_reply_err(req, rc, NULL);
    else
        http_reply_bytes(req, 200, "application/json", json, len);
}
