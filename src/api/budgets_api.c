/*
 * budgets_api.c - /api/budgets: LLM spend budgets (docs/api.md,
 * "Budgets"), through the budgets service. The route table admits admins
 * only to POST, PATCH and DELETE; reads are filtered by the service.
 */
#include "api/api.h"
#include "api/common.h"
#include "budgets/budgets.h"
#include "core/ids.h"

#include <stdio.h>
#include <string.h>

#define MIN_USD 0.000000001 /* one nano-dollar: the unit budgets count in */

static const char *const sort_fields[] = {"createdAt", "updatedAt", NULL};
static const store_budget_sort sort_of[] = {STORE_BUDGET_SORT_CREATED, STORE_BUDGET_SORT_UPDATED};

static void reply_err(http_req *req, aop_err rc)
{
    if (rc == AOP_ERR_NOT_FOUND)
        http_reply_error(req, rc, "No such budget", NULL);
    else if (rc == AOP_ERR_CONFLICT)
        http_reply_error(req, rc, "This scope has a budget of this period already", NULL);
    else
        api_reply_err(req, rc, NULL);
}

static void reply_result(http_req *req, aop_err rc, int status, const char *json, size_t len)
{
    if (rc != AOP_OK)
        reply_err(req, rc);
    else
        http_reply_bytes(req, status, "application/json", json, len);
}

/* limitUsd: a number from one nano-dollar to BUDGETS_MAX_USD, in USD. */
static void limit_field(json_t *body, bool required, double *out, json_t *details)
{
    json_t *v = json_object_get(body, "limitUsd");
    if (!v || json_is_null(v)) {
        if (required)
            api_problem(details, "limitUsd", "is required");
        return;
    }
    double x = json_is_number(v) ? json_number_value(v) : -1;
    if (!(x >= MIN_USD && x <= BUDGETS_MAX_USD)) {
        api_problem(details, "limitUsd",
                    "must be a number greater than 0 (at least 0.000000001) and at most "
                    "1000000000");
        return;
    }
    *out = x;
}

static const char *period_field(json_t *body, bool required, json_t *details)
{
    json_t *v = json_object_get(body, "period");
    if (!v || json_is_null(v)) {
        if (required)
            api_problem(details, "period", "is required");
        return NULL;
    }
    if (!budgets_period_ok(json_string_value(v))) {
        api_problem(details, "period", "must be one of day, month, total");
        return NULL;
    }
    return json_string_value(v);
}

/* scope: {type, id}; id null (or absent) for global, a user's or a
 * workflow's id otherwise. */
static void scope_field(json_t *body, budget_input *in, json_t *details)
{
    json_t *scope = json_object_get(body, "scope");
    if (!scope || json_is_null(scope)) {
        api_problem(details, "scope", "is required");
        return;
    }
    if (!json_is_object(scope)) {
        api_problem(details, "scope", "must be an object {type, id}");
        return;
    }
    const char *type = json_string_value(json_object_get(scope, "type"));
    json_t *id = json_object_get(scope, "id");
    if (!budgets_scope_ok(type)) {
        api_problem(details, "scope.type", "must be one of global, user, workflow");
        return;
    }
    in->scope_type = type;
    if (!strcmp(type, "global")) {
        if (id && !json_is_null(id))
            api_problem(details, "scope.id", "must be null for the global scope");
        return;
    }
    in->scope_id = json_string_value(id);
    if (!in->scope_id || !ids_uuid_ok(in->scope_id))
        api_problem(details, "scope.id",
                    !strcmp(type, "user") ? "must be a user id" : "must be a workflow id");
}

/* The body of a create (every field required) or of a change (scope
 * refused) into in; 0 after answering 400. */
static int input_or_reply(http_req *req, bool create, budget_input *in)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return 0;
    json_t *details = json_array();
    memset(in, 0, sizeof(*in));
    if (create)
        scope_field(body, in, details);
    else if (json_object_get(body, "scope"))
        api_problem(details, "scope", "cannot be changed; create a budget for the other scope");
    limit_field(body, create, &in->limit_usd, details);
    in->period = period_field(body, create, details);
    return api_valid_or_reply(req, details);
}

void api_budgets_create(http_req *req)
{
    budget_input in;
    if (!input_or_reply(req, true, &in))
        return;
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = budgets_create(http_app(req), &c, &in, &json, &len, http_arena(req));
    if (rc == AOP_ERR_NOT_FOUND) {
        json_t *d = json_array();
        api_problem(d, "scope.id", !strcmp(in.scope_type, "user") ? "no such user"
                                                                  : "no such workflow");
        http_reply_error(req, AOP_ERR_VALIDATION, "The budget's scope does not exist", d);
        return;
    }
    reply_result(req, rc, 201, json, len);
}

void api_budgets_list(http_req *req)
{
    api_page pg;
    if (!api_page_or_reply(req, sort_fields, false, &pg))
        return;
    json_t *details = json_array();
    const char *type = http_query(req, "scopeType"), *id = http_query(req, "scopeId");
    if (type && !budgets_scope_ok(type))
        api_problem(details, "scopeType", "must be one of global, user, workflow");
    if (id && !ids_uuid_ok(id))
        api_problem(details, "scopeId", "must be a user or workflow id");
    if (!api_valid_or_reply(req, details))
        return;
    store_budget_query q = {.scope_type = type, .scope_id = id, .sort = sort_of[pg.sort],
                            .desc = pg.desc, .offset = pg.offset, .limit = pg.limit};
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = budgets_list(http_app(req), &c, &q, pg.page, &json, &len, http_arena(req));
    reply_result(req, rc, 200, json, len);
}

void api_budgets_get(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = budgets_get(http_app(req), &c, http_param(req, "id"), &json, &len,
                             http_arena(req));
    reply_result(req, rc, 200, json, len);
}

void api_budgets_patch(http_req *req)
{
    budget_input in;
    if (!input_or_reply(req, false, &in))
        return;
    char *json = NULL;
    size_t len = 0;
    aop_err rc = budgets_update(http_app(req), http_param(req, "id"), &in, &json, &len,
                                http_arena(req));
    reply_result(req, rc, 200, json, len);
}

void api_budgets_delete(http_req *req)
{
    aop_err rc = budgets_delete(http_app(req), http_param(req, "id"));
    if (rc != AOP_OK)
        reply_err(req, rc);
    else
        http_reply_empty(req, 204);
}
