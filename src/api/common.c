#include "api/common.h"
#include "auth/audit.h"
#include "auth/session.h"
#include "core/json.h"
#include "core/buf.h"
#include "core/str.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

void api_problem(json_t *details, const char *field, const char *message)
{
    json_array_append_new(details, json_pack("{s:s, s:s}", "field", field, "message", message));
}

int api_object_or_reply(http_req *req, json_t **out)
{
    json_t *body = http_body(req);
    *out = body;
    if (body && !json_is_object(body)) {
        http_reply_error(req, AOP_ERR_VALIDATION, "The body must be a JSON object", NULL);
        return 0;
    }
    return 1;
}

const char *api_string(json_t *o, const char *field, bool required, size_t min, size_t max,
                       json_t *details)
{
    json_t *v = json_object_get(o, field);
    char msg[96];
    if (!v || (json_is_null(v) && required)) {
        if (required)
            api_problem(details, field, "is required");
        return NULL;
    }
    if (!json_is_string(v)) {
        api_problem(details, field, "must be a string");
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t n = str_utf8_len(s);
    if (strlen(s) != json_string_length(v)) {
        api_problem(details, field, "must not contain NUL characters");
        return NULL;
    }
    if (n < min || n > max) {
        if (min == max)
            snprintf(msg, sizeof(msg), "must be %zu characters", min);
        else if (min == 1 && n == 0)
            snprintf(msg, sizeof(msg), "must not be empty");
        else
            snprintf(msg, sizeof(msg), "must be %zu to %zu characters", min, max);
        api_problem(details, field, msg);
        return NULL;
    }
    return s;
}

int api_valid_or_reply(http_req *req, json_t *details)
{
    if (json_array_size(details) == 0) {
        json_decref(details);
        return 1;
    }
    http_reply_error(req, AOP_ERR_VALIDATION, "The request has invalid fields", details);
    return 0;
}

/* Retry-After of a 503 and of a 429 QUOTA_EXCEEDED: a constant, since when
 * a dependency comes back or one of the user's executions ends is not
 * known, and the server answers a retry cheaply either way. */
#define RETRY_AFTER_S "1"

void api_reply_err(http_req *req, aop_err e, const char *message)
{
    char msg[160];
    if (e == AOP_ERR_UNAVAILABLE || e == AOP_ERR_QUOTA_EXCEEDED)
        http_set_header(req, "Retry-After", RETRY_AFTER_S);
    if (e == AOP_ERR_QUOTA_EXCEEDED && !message) {
        snprintf(msg, sizeof(msg),
                 "You already have %lld queued or running executions, the most one user may "
                 "have; retry once some have ended",
                 http_app(req)->cfg->quota_active_executions);
        message = msg;
    }
    http_reply_error(req, e, message, NULL);
}

/* A positive integer query argument in [1, max], or def when absent. */
static int query_int(http_req *req, const char *name, long long def, long long max,
                     long long *out, json_t *details)
{
    const char *v = http_query(req, name);
    char msg[96];
    if (!v) {
        *out = def;
        return 1;
    }
    if (str_to_ll(v, 1, max, out) != 0) {
        snprintf(msg, sizeof(msg), "must be an integer from 1 to %lld", max);
        api_problem(details, name, msg);
        return 0;
    }
    return 1;
}

int api_page_or_reply(http_req *req, const char *const *fields, bool default_desc,
                      api_page *out)
{
    json_t *details = json_array();
    memset(out, 0, sizeof(*out));
    query_int(req, "page", 1, 1000000000LL, &out->page, details);
    query_int(req, "limit", API_LIMIT_DEFAULT, API_LIMIT_MAX, &out->limit, details);
    out->desc = default_desc;
    const char *sort = fields ? http_query(req, "sort") : NULL;
    if (sort) {
        out->desc = sort[0] == '-';
        const char *name = sort + (sort[0] == '-' || sort[0] == '+');
        int found = -1;
        for (int i = 0; fields[i]; i++)
            if (strcmp(fields[i], name) == 0)
                found = i;
        if (found < 0) {
            buf m;
            buf_init(&m, 512);
            buf_puts(&m, "must be one of");
            for (int i = 0; fields[i]; i++)
                buf_printf(&m, "%s %s, -%s", i ? "," : "", fields[i], fields[i]);
            api_problem(details, "sort", m.data);
            buf_free(&m);
        }
        out->sort = found < 0 ? 0 : found;
    }
    if (!api_valid_or_reply(req, details))
        return 0;
    out->offset = (out->page - 1) * out->limit;
    return 1;
}

json_t *api_list(json_t *data, const api_page *p, long long total)
{
    return json_list_page(data, p->page, p->limit, total);
}

void api_audit(http_req *req, const char *action, const char *actor_id, const char *subject_id,
               json_t *detail)
{
    if (!detail)
        detail = json_object();
    char *text = json_dumps(detail, JSON_COMPACT);
    store_audit e = {.action = action,
                     .actor_id = actor_id,
                     .subject_id = subject_id,
                     .ip = http_client_ip(req),
                     .request_id = http_request_id(req),
                     .detail = text};
    audit_record(http_app(req), &e);
    free(text);
    json_decref(detail);
}

wf_caller api_wf_caller(http_req *req)
{
    const store_user *u = &http_identity(req)->user;
    wf_caller c = {.id = u->id,
                   .admin = strcmp(u->role, "admin") == 0,
                   .viewer = strcmp(u->role, "viewer") == 0};
    return c;
}

void api_reply_result(http_req *req, aop_err rc, int status, const char *json, size_t len,
                      const char *not_found)
{
    if (rc == AOP_OK && status == 204)
        http_reply_empty(req, 204);
    else if (rc == AOP_OK)
        http_reply_bytes(req, status, "application/json", json, len);
    else if (rc == AOP_ERR_NOT_FOUND)
        http_reply_error(req, rc, not_found, NULL);
    else
        api_reply_err(req, rc, NULL);
}
