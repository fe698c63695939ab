/*
 * schedules_api.c - /api/workflows/:id/schedules and /api/schedules
 * (docs/api.md, "Triggers"), through the schedules service.
 */
#include "api/api.h"
#include "api/common.h"
#include "schedules/cron.h"
#include "schedules/schedules.h"

#include <string.h>

#define NO_WORKFLOW "No such workflow"
#define NO_SCHEDULE "No such schedule"

/* The body of a create (cron required) or of a change into in; 0 after
 * answering 400. */
static int input_or_reply(http_req *req, bool create, schedule_input *in)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return 0;
    json_t *details = json_array();
    char err[160];
    memset(in, 0, sizeof(*in));
    in->cron = api_string(body, "cron", create, 1, CRON_TEXT_MAX, details);
    cron_expr c;
    if (in->cron && cron_parse(in->cron, &c, err, sizeof(err)) != 0)
        api_problem(details, "cron", err);
    json_t *tz = json_object_get(body, "timezone");
    if (tz && !json_is_null(tz)) {
        in->timezone = api_string(body, "timezone", false, 1, CRON_ZONE_MAX, details);
        if (in->timezone && cron_zone_check(in->timezone, err, sizeof(err)) != 0)
            api_problem(details, "timezone", "must be an IANA time zone name");
    }
    json_t *input = json_object_get(body, "input");
    if (input && !json_is_object(input))
        api_problem(details, "input", "must be an object");
    else
        in->input = input;
    json_t *overlap = json_object_get(body, "overlap");
    if (overlap && !schedules_overlap_ok(json_string_value(overlap)))
        api_problem(details, "overlap", "must be one of skip, allow, buffer_one");
    else
        in->overlap = json_string_value(overlap);
    json_t *enabled = json_object_get(body, "enabled");
    if (enabled && !json_is_boolean(enabled))
        api_problem(details, "enabled", "must be a boolean");
    in->has_enabled = json_is_boolean(enabled);
    in->enabled = json_is_true(enabled);
    return api_valid_or_reply(req, details);
}

void api_schedules_create(http_req *req)
{
    schedule_input in;
    wf_caller c = api_wf_caller(req);
    if (!input_or_reply(req, true, &in))
        return;
    char *json = NULL;
    size_t len = 0;
    aop_err rc = schedules_create(http_app(req), &c, http_param(req, "id"), &in, &json, &len,
                                  http_arena(req));
    if (rc == AOP_ERR_VALIDATION) {
        http_reply_error(req, rc, "The workflow has the most schedules (100) already", NULL);
        return;
    }
    api_reply_result(req, rc, 201, json, len, NO_WORKFLOW);
}

void api_schedules_list(http_req *req)
{
    api_page pg;
    if (!api_page_or_reply(req, NULL, false, &pg))
        return;
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = schedules_list(http_app(req), &c, http_param(req, "id"), pg.page, pg.limit,
                                &json, &len, http_arena(req));
    api_reply_result(req, rc, 200, json, len, NO_WORKFLOW);
}

void api_schedules_get(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = schedules_get(http_app(req), &c, http_param(req, "id"), &json, &len,
                               http_arena(req));
    api_reply_result(req, rc, 200, json, len, NO_SCHEDULE);
}

void api_schedules_patch(http_req *req)
{
    schedule_input in;
    if (!input_or_reply(req, false, &in))
        return;
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = schedules_update(http_app(req), &c, http_param(req, "id"), &in, &json, &len,
                                  http_arena(req));
    api_reply_result(req, rc, 200, json, len, NO_SCHEDULE);
}

void api_schedules_delete(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    aop_err rc = schedules_delete(http_app(req), &c, http_param(req, "id"));
    api_reply_result(req, rc, 204, NULL, 0, NO_SCHEDULE);
}

void api_schedules_trigger(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    store_execution row;
    aop_err rc = schedules_trigger(http_app(req), &c, http_param(req, "id"), &row,
                                   http_arena(req));
    if (rc != AOP_OK)
        api_reply_result(req, rc, 0, NULL, 0, NO_SCHEDULE);
    else
        api_reply_status(req, row.id, row.status);
}
