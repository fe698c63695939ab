/*
 * users_api.c - user management for admins: list and change role or active
 * flag. The route table admits admins only.
 */
#include "api/api.h"
#include "api/common.h"
#include "auth/session.h"
#include "auth/users.h"

#include <string.h>

#define SEARCH_MAX 200

static const char *const sort_fields[] = {"createdAt", "email", "name", NULL};
static const store_user_sort sort_of[] = {STORE_USER_SORT_CREATED, STORE_USER_SORT_EMAIL,
                                          STORE_USER_SORT_NAME};

void api_users_list(http_req *req)
{
    api_page pg;
    if (!api_page_or_reply(req, sort_fields, false, &pg))
        return;
    json_t *details = json_array();
    const char *role = http_query(req, "role");
    const char *search = http_query(req, "search");
    if (role && !users_role_ok(role))
        api_problem(details, "role", "must be one of admin, user, viewer");
    if (search && strlen(search) > SEARCH_MAX)
        api_problem(details, "search", "must be at most 200 characters");
    if (!api_valid_or_reply(req, details))
        return;
    store_user_query q = {.search = search, .role = role, .sort = sort_of[pg.sort],
                          .desc = pg.desc, .offset = pg.offset, .limit = pg.limit};
    store_user *users = NULL;
    int n = 0;
    long long total = 0;
    aop_err rc = users_list(http_app(req), &q, &users, &n, &total, http_arena(req));
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, users_to_json(&users[i]));
    http_reply_json(req, 200, api_list(data, &pg, total));
}

/* Records what changed. */
static void audit_changes(http_req *req, const store_user *before, const store_user *after)
{
    const char *actor = http_identity(req)->user.id;
    if (strcmp(before->role, after->role) != 0)
        api_audit(req, "user.role_change", actor, after->id,
                  json_pack("{s:s, s:s}", "from", before->role, "to", after->role));
    if (before->is_active != after->is_active)
        api_audit(req, "user.active_change", actor, after->id,
                  json_pack("{s:b, s:b}", "from", before->is_active, "to", after->is_active));
}

void api_users_patch(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    const app_ctx *app = http_app(req);
    const char *target = http_param(req, "id");
    bool self = strcmp(target, http_identity(req)->user.id) == 0;
    json_t *details = json_array();
    json_t *rv = json_object_get(body, "role");
    const char *role = json_string_value(rv);
    if (rv && !users_role_ok(role)) {
        api_problem(details, "role", "must be one of admin, user, viewer");
        role = NULL;
    }
    json_t *active = json_object_get(body, "isActive");
    if (active && !json_is_boolean(active))
        api_problem(details, "isActive", "must be a boolean");
    int act = json_is_boolean(active) ? json_is_true(active) : -1;
    if (self && role && strcmp(role, "admin") != 0)
        api_problem(details, "role", "you cannot change your own role");
    if (self && act == 0)
        api_problem(details, "isActive", "you cannot deactivate yourself");
    if (!api_valid_or_reply(req, details))
        return;
    store_user before, after;
    aop_err rc = users_update_admin(app, target, role, act, &before, &after,
                                    http_arena(req));
    if (rc == AOP_ERR_NOT_FOUND) {
        http_reply_error(req, rc, "No such user", NULL);
        return;
    }
    if (rc == AOP_OK && before.is_active && !after.is_active)
        rc = auth_revoke_user(app, target, "deactivated", http_arena(req));
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    audit_changes(req, &before, &after);
    http_reply_json(req, 200, users_to_json(&after));
}
