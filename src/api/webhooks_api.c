/*
 * webhooks_api.c - /api/workflows/:id/webhooks, /api/webhooks and the
 * calls themselves, POST /hooks/:id (docs/api.md, "Triggers"), through
 * the webhooks service.
 *
 * A call: the webhook's own auth first (one lookup; 404, 401), then its
 * input, the workflow (409 WORKFLOW_INACTIVE), and the start: async calls
 * join the engine's group commit as execute does; sync ones wait through
 * api_wait_end (WAIT_MAX_MS); a call with Idempotency-Key starts in one
 * transaction with the key's answer.
 */
#include "api/api.h"
#include "api/common.h"
#include "core/json.h"
#include "core/str.h"
#include "executions/executions.h"
#include "webhooks/webhooks.h"

#include <ctype.h>
#include <string.h>

#define NO_WORKFLOW "No such workflow"
#define NO_WEBHOOK "No such webhook"

void api_webhooks_create(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    json_t *details = json_array();
    const char *name = api_string(body, "name", false, 1, WEBHOOKS_NAME_MAX, details);
    const char *auth = json_string_value(json_object_get(body, "auth"));
    const char *response = json_string_value(json_object_get(body, "response"));
    if (json_object_get(body, "auth") && !webhooks_auth_ok(auth))
        api_problem(details, "auth", "must be one of none, token, hmac");
    if (json_object_get(body, "response") && !webhooks_response_ok(response))
        api_problem(details, "response", "must be one of async, sync");
    if (!api_valid_or_reply(req, details))
        return;
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = webhooks_create(http_app(req), &c, http_param(req, "id"), name, auth, response,
                                 &json, &len, http_arena(req));
    if (rc == AOP_ERR_VALIDATION) {
        http_reply_error(req, rc, "The workflow has the most webhooks (100) already", NULL);
        return;
    }
    api_reply_result(req, rc, 201, json, len, NO_WORKFLOW);
}

void api_webhooks_list(http_req *req)
{
    api_page pg;
    if (!api_page_or_reply(req, NULL, false, &pg))
        return;
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = webhooks_list(http_app(req), &c, http_param(req, "id"), pg.page, pg.limit, &json,
                               &len, http_arena(req));
    api_reply_result(req, rc, 200, json, len, NO_WORKFLOW);
}

void api_webhooks_delete(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    aop_err rc = webhooks_delete(http_app(req), &c, http_param(req, "id"));
    api_reply_result(req, rc, 204, NULL, 0, NO_WEBHOOK);
}

void api_webhooks_rotate(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = webhooks_rotate(http_app(req), &c, http_param(req, "id"), &json, &len,
                                 http_arena(req));
    api_reply_result(req, rc, 200, json, len, NO_WEBHOOK);
}

/* ---- calls ---- */

/* Header or query pairs into an object of strings, names lowercased for
 * headers, repeats joined with ", ". */
typedef struct {
    json_t *obj;
    bool headers;
} pairs;

static const char *const hidden[] = {"authorization", "cookie", "x-aop-signature",
                                     "x-aop-timestamp", NULL};

static void add_pair(void *p, const char *name, const char *value)
{
    pairs *x = p;
    char key[256];
    str_copy(key, sizeof(key), name);
    if (x->headers) {
        for (char *k = key; *k; k++)
            *k = (char)tolower((unsigned char)*k);
        for (int i = 0; hidden[i]; i++)
            if (!strcmp(key, hidden[i]))
                return;
    }
    json_t *v = json_string(value);
    if (!v) /* not UTF-8 */
        v = json_string("");
    const char *had = json_string_value(json_object_get(x->obj, key));
    if (had) {
        size_t n = strlen(had) + 2 + strlen(json_string_value(v)) + 1;
        char *joined = malloc(n);
        if (joined) {
            snprintf(joined, n, "%s, %s", had, json_string_value(v));
            json_object_set_new(x->obj, key, json_string(joined));
            free(joined);
        }
        json_decref(v);
        return;
    }
    json_object_set_new(x->obj, key, v);
}

/* {body, headers, query}; NULL when the body is neither JSON nor UTF-8. */
static json_t *call_input(http_req *req, const char *body, size_t len)
{
    json_t *b = NULL;
    char why[64];
    if (len && json_parse_body(body, len, &b, why, sizeof(why)) != AOP_OK)
        b = NULL;
    if (!b)
        b = json_stringn(body, len);
    if (!b)
        return NULL;
    pairs h = {json_object(), true}, q = {json_object(), false};
    http_headers_each(req, add_pair, &h);
    http_query_each(req, add_pair, &q);
    return json_pack("{s:o, s:o, s:o}", "body", b, "headers", h.obj, "query", q.obj);
}

typedef struct {
    http_req *req;
    char id[UUID_STR_LEN];
    aop_err rc;
    store_webhook w;
    const char *key; /* Idempotency-Key or NULL */
} call_ctx;

static void on_committed(void *ctx, aop_err rc)
{
    call_ctx *x = ctx;
    x->rc = rc;
    http_unpark(x->req);
}

static void answer_submitted(http_req *req, void *ctx)
{
    call_ctx *x = ctx;
    if (x->rc == AOP_OK)
        api_reply_status(req, x->id, EXEC_QUEUED);
    else
        api_reply_err(req, x->rc == AOP_ERR_QUOTA_EXCEEDED ? x->rc : AOP_ERR_UNAVAILABLE, NULL);
}

/* sync, ended in time: {executionId, status, output}. */
static void answer_ended(http_req *req, const char *json, size_t len, void *ctx)
{
    call_ctx *x = ctx;
    json_t *e = json_loadb(json, len, 0, NULL);
    json_t *out = json_pack("{s:s, s:O, s:O}", "executionId", x->id, "status",
                            json_object_get(e, "status"), "output",
                            json_object_get(e, "output") ? json_object_get(e, "output")
                                                         : json_null());
    json_decref(e);
    if (x->key)
        webhooks_key_answered(http_app(req), &x->w, x->key, 200);
    http_reply_json(req, 200, out);
}

/* A repeat of an Idempotency-Key: the first call's execution and code. */
static void answer_repeat(http_req *req, const char *first_id, long long status_code)
{
    exec_status st = EXEC_QUEUED;
    if (webhooks_execution_status(http_app(req), first_id, &st) != AOP_OK)
        st = EXEC_QUEUED;
    http_reply_json(req, status_code == 200 ? 200 : 202,
                    json_pack("{s:s, s:s}", "executionId", first_id, "status",
                              exec_status_name(st)));
}

void api_hooks_call(http_req *req)
{
    const app_ctx *app = http_app(req);
    call_ctx *x = arena_alloc(http_arena(req), sizeof(*x));
    memset(x, 0, sizeof(*x));
    x->req = req;
    webhook_auth in = {.authorization = http_header(req, "Authorization"),
                       .timestamp = http_header(req, "X-AOP-Timestamp"),
                       .signature = http_header(req, "X-AOP-Signature")};
    in.body = http_body_raw(req, &in.body_len);
    const char *why = NULL;
    aop_err rc = webhooks_check(app, http_param(req, "id"), &in, &x->w, &why, http_arena(req));
    if (rc == AOP_ERR_UNAUTHORIZED) {
        http_reply_error(req, rc, why, NULL);
        return;
    }
    if (rc != AOP_OK) {
        api_reply_result(req, rc, 0, NULL, 0, NO_WEBHOOK);
        return;
    }
    x->key = http_header(req, "Idempotency-Key");
    if (x->key && (!x->key[0] || strlen(x->key) > WEBHOOKS_KEY_MAX)) {
        json_t *d = json_array();
        api_problem(d, "Idempotency-Key", "must be 1 to 255 bytes");
        http_reply_error(req, AOP_ERR_VALIDATION, NULL, d);
        return;
    }
    json_t *input = call_input(req, in.body, in.body_len);
    if (!input) {
        json_t *d = json_array();
        api_problem(d, "body", "must be JSON or UTF-8 text");
        http_reply_error(req, AOP_ERR_VALIDATION, NULL, d);
        return;
    }
    store_execution row;
    rc = webhooks_prepare(app, &x->w, input, &row, http_arena(req));
    json_decref(input);
    if (rc != AOP_OK) {
        api_reply_result(req, rc, 0, NULL, 0, NO_WORKFLOW);
        return;
    }
    str_copy(x->id, sizeof(x->id), row.id);
    bool sync = !strcmp(x->w.response, "sync");
    if (x->key) {
        bool repeat = false;
        char first[UUID_STR_LEN];
        long long code = 0;
        rc = webhooks_start_keyed(app, &x->w, x->key, &row, 202, &repeat, first, &code);
        if (rc != AOP_OK)
            api_reply_err(req, rc, NULL);
        else if (repeat)
            answer_repeat(req, first, code);
        else if (!sync)
            api_reply_status(req, row.id, row.status);
        else
            api_wait_end(req, &(wf_caller){.id = x->w.created_by, .admin = true}, row.id,
                         row.status, row.timeout_ms, answer_ended, x);
        return;
    }
    if (sync) {
        api_start_wait(req, &(wf_caller){.id = x->w.created_by, .admin = true}, &row,
                       answer_ended, x);
        return;
    }
    x->rc = AOP_ERR_UNAVAILABLE;
    if (http_park(req, answer_submitted, x) != 0) {
        api_reply_err(req, AOP_ERR_INTERNAL, NULL);
        return;
    }
    if (executions_start(app, &row, on_committed, x) != AOP_OK)
        http_unpark(req); /* stopping: answered 503 */
}
