/*
 * workflows_api.c - the workflow routes: read the input with every problem
 * collected, ask the workflow service, answer. Roles are checked by the
 * route table; workflow permissions by the service (404 when the caller may
 * not read the workflow, 403 when it may read but not change it), and
 * before the body is judged, so nothing about a hidden workflow leaks.
 */
#include "api/api.h"
#include "api/common.h"
#include "auth/session.h"
#include "auth/user_cache.h"
#include "core/buf.h"
#include "core/ids.h"
#include "core/str.h"
#include "engine/definition.h"
#include "workflows/workflows.h"

#include <stdio.h>
#include <string.h>

#define TAGS_MAX 20
#define TAG_MAX_CHARS 50
#define SEARCH_MAX 200
#define SHARE_MAX 100 /* user ids per permission list */
#define SETTINGS_TIMEOUT_MAX 86400000LL
#define SETTINGS_CONCURRENCY_MAX 1000

static const char *const statuses[] = {"draft", "active", "archived", NULL};
static const char *const sort_fields[] = {"createdAt", "updatedAt", "name", NULL};
static const store_wf_sort sort_of[] = {STORE_WF_SORT_CREATED, STORE_WF_SORT_UPDATED,
                                        STORE_WF_SORT_NAME};

static bool one_of(const char *s, const char *const *set)
{
    for (int i = 0; s && set[i]; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

/* Answers a service error with the workflow wording. */
static void reply_err(http_req *req, aop_err rc)
{
    switch (rc) {
    case AOP_ERR_NOT_FOUND:
        http_reply_error(req, rc, "No such workflow", NULL);
        break;
    case AOP_ERR_FORBIDDEN:
        http_reply_error(req, rc, "You may read this workflow but not change it", NULL);
        break;
    case AOP_ERR_VERSION_CONFLICT:
        http_reply_error(req, rc,
                         "The workflow has changed since the version you edited; fetch it "
                         "and apply your change again",
                         NULL);
        break;
    case AOP_ERR_RESOURCE_LOCKED:
        http_set_header(req, "Retry-After", "1");
        http_reply_error(req, rc, "Another change of this workflow is in progress; try again",
                         NULL);
        break;
    default:
        api_reply_err(req, rc, NULL);
    }
}

/* Answers a failed write: its credential problems (taken) as a 400, or
 * the service error. */
static void reply_write_err(http_req *req, aop_err rc, json_t *problems)
{
    if (rc == AOP_ERR_VALIDATION && json_array_size(problems) > 0) {
        api_valid_or_reply(req, problems);
        return;
    }
    json_decref(problems);
    reply_err(req, rc);
}

static void reply_text(http_req *req, int status, const char *json, size_t len)
{
    http_reply_bytes(req, status, "application/json", json, len);
}

/* ---- input ---- */

static void read_status(json_t *body, json_t *details, wf_input *in)
{
    in->status = api_string(body, "status", false, 1, 16, details);
    if (in->status && !one_of(in->status, statuses)) {
        api_problem(details, "status", "must be one of draft, active, archived");
        in->status = NULL;
    }
}

static void read_tags(json_t *body, json_t *details, wf_input *in)
{
    json_t *tags = json_object_get(body, "tags");
    char field[32];
    if (!tags)
        return;
    if (!json_is_array(tags) || json_array_size(tags) > TAGS_MAX) {
        api_problem(details, "tags", "must be an array of at most 20 tags");
        return;
    }
    size_t before = json_array_size(details);
    for (size_t i = 0; i < json_array_size(tags); i++) {
        json_t *t = json_array_get(tags, i);
        snprintf(field, sizeof(field), "tags[%zu]", i);
        if (!json_is_string(t) || strlen(json_string_value(t)) != json_string_length(t)) {
            api_problem(details, field, "must be a string");
            continue;
        }
        size_t n = str_utf8_len(json_string_value(t));
        if (n < 1 || n > TAG_MAX_CHARS)
            api_problem(details, field, "must be 1 to 50 characters");
        for (size_t j = 0; j < i; j++)
            if (json_equal(t, json_array_get(tags, j)))
                api_problem(details, field, "repeats an earlier tag");
    }
    if (json_array_size(details) == before)
        in->tags = tags;
}

/* An optional integer member of o in [min, max]; false after a problem. */
static bool read_int(json_t *o, const char *key, const char *field, long long min,
                     long long max, json_t *details)
{
    json_t *v = json_object_get(o, key);
    char msg[96];
    if (!v || (json_is_integer(v) && json_integer_value(v) >= min &&
               json_integer_value(v) <= max))
        return true;
    snprintf(msg, sizeof(msg), "must be an integer from %lld to %lld", min, max);
    api_problem(details, field, msg);
    return false;
}

static void read_settings(json_t *body, json_t *details, wf_input *in)
{
    json_t *s = json_object_get(body, "settings");
    if (!s)
        return;
    if (!json_is_object(s)) {
        api_problem(details, "settings", "must be an object");
        return;
    }
    bool ok = read_int(s, "timeoutMs", "settings.timeoutMs", 1, SETTINGS_TIMEOUT_MAX, details);
    ok &= read_int(s, "maxConcurrency", "settings.maxConcurrency", 1, SETTINGS_CONCURRENCY_MAX,
                   details);
    if (ok)
        in->settings = s;
}

static void read_definition(json_t *body, json_t *details, wf_input *in)
{
    json_t *d = json_object_get(body, "definition");
    if (d && definition_validate(d, details) == 0)
        in->definition = d;
}

/* The fields a create and an update share. */
static void read_input(json_t *body, bool create, json_t *details, wf_input *in)
{
    memset(in, 0, sizeof(*in));
    in->name = api_string(body, "name", create, 1, 200, details);
    in->description = api_string(body, "description", false, 0, 5000, details);
    read_status(body, details, in);
    read_tags(body, details, in);
    read_definition(body, details, in);
    read_settings(body, details, in);
}

/* One permission list: existing users' ids, each once, not the owner. */
static const json_t *read_ids(http_req *req, json_t *perms, const char *key, const char *owner,
                              json_t *details)
{
    json_t *ids = json_object_get(perms, key);
    char field[64];
    store_user u;
    if (!ids)
        return NULL;
    snprintf(field, sizeof(field), "permissions.%s", key);
    if (!json_is_array(ids) || json_array_size(ids) > SHARE_MAX) {
        api_problem(details, field, "must be an array of at most 100 user ids");
        return NULL;
    }
    size_t before = json_array_size(details);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        json_t *v = json_array_get(ids, i);
        const char *id = json_string_value(v);
        snprintf(field, sizeof(field), "permissions.%s[%zu]", key, i);
        if (!ids_uuid_ok(id)) {
            api_problem(details, field, "must be a user id");
            continue;
        }
        if (strcmp(id, owner) == 0)
            api_problem(details, field, "is the owner, who always has access");
        for (size_t j = 0; j < i; j++)
            if (json_equal(v, json_array_get(ids, j)))
                api_problem(details, field, "repeats an earlier id");
        aop_err rc = user_cache_get(http_app(req), id, &u, http_arena(req));
        if (rc == AOP_ERR_NOT_FOUND)
            api_problem(details, field, "no such user");
        else if (rc != AOP_OK)
            api_problem(details, field, "cannot be checked now; try again");
    }
    return json_array_size(details) == before ? ids : NULL;
}

static void read_permissions(http_req *req, json_t *body, const wf_view *v, json_t *details,
                             wf_input *in)
{
    json_t *perms = json_object_get(body, "permissions");
    if (!perms)
        return;
    if (!json_is_object(perms)) {
        api_problem(details, "permissions", "must be an object with editors and viewers");
        return;
    }
    in->editors = read_ids(req, perms, "editors", v->owner_id, details);
    in->viewers = read_ids(req, perms, "viewers", v->owner_id, details);
    for (size_t i = 0; in->editors && in->viewers && i < json_array_size(in->editors); i++)
        for (size_t j = 0; j < json_array_size(in->viewers); j++)
            if (json_equal(json_array_get(in->editors, i), json_array_get(in->viewers, j)))
                api_problem(details, "permissions",
                            "a user is either an editor or a viewer, not both");
}

static void read_version(json_t *body, json_t *details, wf_input *in)
{
    json_t *v = json_object_get(body, "version");
    if (!v)
        return;
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        api_problem(details, "version", "must be a positive integer");
        return;
    }
    in->has_version = true;
    in->version = json_integer_value(v);
}

/* ---- handlers ---- */

void api_workflows_list(http_req *req)
{
    api_page pg;
    if (!api_page_or_reply(req, sort_fields, true, &pg))
        return;
    json_t *details = json_array();
    store_wf_query q = {.status = http_query(req, "status"),
                        .tag = http_query(req, "tag"),
                        .owner_id = http_query(req, "ownerId"),
                        .search = http_query(req, "search"),
                        .sort = sort_of[pg.sort],
                        .desc = pg.desc,
                        .offset = pg.offset,
                        .limit = pg.limit};
    if (q.status && !one_of(q.status, statuses))
        api_problem(details, "status", "must be one of draft, active, archived");
    if (q.tag && (str_utf8_len(q.tag) < 1 || str_utf8_len(q.tag) > TAG_MAX_CHARS))
        api_problem(details, "tag", "must be 1 to 50 characters");
    if (q.owner_id && !ids_uuid_ok(q.owner_id))
        api_problem(details, "ownerId", "must be a user id");
    if (q.search && str_utf8_len(q.search) > SEARCH_MAX)
        api_problem(details, "search", "must be at most 200 characters");
    if (!api_valid_or_reply(req, details))
        return;
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = workflows_list(http_app(req), &c, &q, pg.page, &json, &len, http_arena(req));
    if (rc != AOP_OK) {
        reply_err(req, rc);
        return;
    }
    reply_text(req, 200, json, len);
}

void api_workflows_get(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    wf_view v;
    aop_err rc = workflows_view(http_app(req), &c, http_param(req, "id"), &v, http_arena(req));
    if (rc != AOP_OK) {
        reply_err(req, rc);
        return;
    }
    reply_text(req, 200, v.json, v.len);
}

void api_workflows_create(http_req *req)
{
    json_t *body;
    wf_input in;
    if (!api_object_or_reply(req, &body))
        return;
    json_t *details = json_array();
    read_input(body, true, details, &in);
    if (!api_valid_or_reply(req, details))
        return;
    wf_caller c = api_wf_caller(req);
    wf_view v;
    in.problems = json_array();
    aop_err rc = workflows_create(http_app(req), &c, &in, &v, http_arena(req));
    if (rc != AOP_OK) {
        reply_write_err(req, rc, in.problems);
        return;
    }
    json_decref(in.problems);
    reply_text(req, 201, v.json, v.len);
}

void api_workflows_update(http_req *req)
{
    json_t *body;
    wf_input in;
    if (!api_object_or_reply(req, &body))
        return;
    const app_ctx *app = http_app(req);
    const char *id = http_param(req, "id");
    wf_caller c = api_wf_caller(req);
    wf_view v;
    aop_err rc = workflows_view(app, &c, id, &v, http_arena(req));
    if (rc == AOP_OK)
        rc = workflows_may_update(&v, json_object_get(body, "permissions") != NULL);
    if (rc != AOP_OK) {
        reply_err(req, rc);
        return;
    }
    json_t *details = json_array();
    read_input(body, false, details, &in);
    read_permissions(req, body, &v, details, &in);
    read_version(body, details, &in);
    if (!api_valid_or_reply(req, details))
        return;
    in.problems = json_array();
    rc = workflows_update(app, &c, id, &in, &v, http_arena(req));
    if (rc != AOP_OK) {
        reply_write_err(req, rc, in.problems);
        return;
    }
    json_decref(in.problems);
    if (in.editors || in.viewers)
        api_audit(req, "workflow.permissions_change", c.id, id,
                  json_pack("{s:O?, s:O?}", "editors", in.editors, "viewers", in.viewers));
    reply_text(req, 200, v.json, v.len);
}

void api_workflows_delete(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    const char *id = http_param(req, "id");
    aop_err rc = workflows_delete(http_app(req), &c, id);
    if (rc != AOP_OK) {
        reply_err(req, rc);
        return;
    }
    api_audit(req, "workflow.delete", c.id, id, NULL);
    http_reply_empty(req, 204);
}

void api_workflows_duplicate(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    const app_ctx *app = http_app(req);
    const char *id = http_param(req, "id");
    wf_caller c = api_wf_caller(req);
    wf_view src, copy;
    aop_err rc = workflows_view(app, &c, id, &src, http_arena(req)); /* 404 before 400 */
    if (rc != AOP_OK) {
        reply_err(req, rc);
        return;
    }
    json_t *details = json_array();
    const char *name = api_string(body, "name", false, 1, 200, details);
    if (!api_valid_or_reply(req, details))
        return;
    json_t *problems = json_array();
    rc = workflows_duplicate(app, &c, &src, name, problems, &copy, http_arena(req));
    if (rc != AOP_OK) {
        reply_write_err(req, rc, problems);
        return;
    }
    json_decref(problems);
    reply_text(req, 201, copy.json, copy.len);
}

void api_workflows_versions(http_req *req)
{
    api_page pg;
    if (!api_page_or_reply(req, NULL, true, &pg))
        return;
    wf_caller c = api_wf_caller(req);
    store_wf_version *rows = NULL;
    int n = 0;
    long long total = 0;
    aop_err rc = workflows_versions(http_app(req), &c, http_param(req, "id"), pg.offset,
                                    pg.limit, &rows, &n, &total, http_arena(req));
    if (rc != AOP_OK) {
        reply_err(req, rc);
        return;
    }
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, json_pack("{s:I, s:s, s:s, s:s}", "version",
                                              (json_int_t)rows[i].version, "name", rows[i].name,
                                              "updatedBy", rows[i].updated_by, "createdAt",
                                              rows[i].created_at));
    http_reply_json(req, 200, api_list(data, &pg, total));
}

void api_workflows_version(http_req *req)
{
    long long version = 0;
    if (str_to_ll(http_param(req, "version"), 1, INT64_MAX, &version) != 0) {
        json_t *details = json_array();
        api_problem(details, "version", "must be a positive integer");
        api_valid_or_reply(req, details);
        return;
    }
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = workflows_version(http_app(req), &c, http_param(req, "id"), version, &json,
                                   &len, http_arena(req));
    if (rc == AOP_ERR_NOT_FOUND) {
        http_reply_error(req, rc, "No such workflow or version", NULL);
        return;
    }
    if (rc != AOP_OK) {
        reply_err(req, rc);
        return;
    }
    reply_text(req, 200, json, len);
}

void api_workflows_summary(http_req *req)
{
    char *json = NULL;
    size_t len = 0;
    aop_err rc = workflows_summary(http_app(req), &json, &len, http_arena(req));
    if (rc != AOP_OK) {
        reply_err(req, rc);
        return;
    }
    reply_text(req, 200, json, len);
}
