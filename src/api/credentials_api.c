/*
 * credentials_api.c - /api/credentials: the credentials vault (docs/api.md,
 * "Credentials"), through the credentials service. The route table admits
 * users and admins to create; the service decides who sees the rest.
 * No handler ever answers with, or logs, a credential's data.
 */
#include "api/api.h"
#include "api/common.h"
#include "core/ids.h"
#include "credentials/credentials.h"

#include <stdio.h>
#include <string.h>

static const char *const sort_fields[] = {"createdAt", "updatedAt", "name", NULL};
static const store_cred_sort sort_of[] = {STORE_CRED_SORT_CREATED, STORE_CRED_SORT_UPDATED,
                                          STORE_CRED_SORT_NAME};

static void reply_err(http_req *req, aop_err rc, json_t *details)
{
    if (rc == AOP_ERR_VALIDATION) {
        api_valid_or_reply(req, details);
        return;
    }
    json_decref(details);
    if (rc == AOP_ERR_NOT_FOUND)
        http_reply_error(req, rc, "No such credential", NULL);
    else if (rc == AOP_ERR_CONFLICT)
        http_reply_error(req, rc, "You have a credential of this name already", NULL);
    else if (rc == AOP_ERR_VERSION_CONFLICT)
        http_reply_error(req, rc, "The credential changed meanwhile; send your change again",
                         NULL);
    else
        api_reply_err(req, rc, NULL);
}

/* An audit event of a change of credential json (its id, name, type). */
static void audit(http_req *req, const char *action, const wf_caller *c, const char *json)
{
    json_t *v = json_loads(json, 0, NULL);
    const char *id = json_string_value(json_object_get(v, "id"));
    api_audit(req, action, c->id, id,
              json_pack("{s:s?, s:O?, s:O?, s:O?}", "credentialId", id, "name",
                        json_object_get(v, "name"), "type", json_object_get(v, "type"),
                        "ownerId", json_object_get(v, "ownerId")));
    json_decref(v);
}

void api_credentials_create(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    wf_caller c = api_wf_caller(req);
    json_t *details = json_array();
    char why[200] = "", *json = NULL;
    size_t len = 0;
    aop_err rc = credentials_create(http_app(req), &c, body, details, why, sizeof(why), &json,
                                    &len, http_arena(req));
    if (rc == AOP_ERR_CONFLICT && why[0]) {
        json_decref(details);
        http_reply_error(req, rc, why, NULL);
        return;
    }
    if (rc != AOP_OK) {
        reply_err(req, rc, details);
        return;
    }
    json_decref(details);
    audit(req, "credential.create", &c, json);
    http_reply_bytes(req, 201, "application/json", json, len);
}

void api_credentials_list(http_req *req)
{
    api_page pg;
    if (!api_page_or_reply(req, sort_fields, false, &pg))
        return;
    json_t *details = json_array();
    const char *owner = http_query(req, "ownerId");
    if (owner && !ids_uuid_ok(owner))
        api_problem(details, "ownerId", "must be a user id");
    if (!api_valid_or_reply(req, details))
        return;
    store_cred_query q = {.owner_id = owner, .sort = sort_of[pg.sort], .desc = pg.desc,
                          .offset = pg.offset, .limit = pg.limit};
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = credentials_list(http_app(req), &c, &q, pg.page, &json, &len, http_arena(req));
    if (rc != AOP_OK)
        reply_err(req, rc, NULL);
    else
        http_reply_bytes(req, 200, "application/json", json, len);
}

void api_credentials_get(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    char *json = NULL;
    size_t len = 0;
    aop_err rc = credentials_get(http_app(req), &c, http_param(req, "id"), &json, &len,
                                 http_arena(req));
    if (rc != AOP_OK)
        reply_err(req, rc, NULL);
    else
        http_reply_bytes(req, 200, "application/json", json, len);
}

void api_credentials_patch(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    wf_caller c = api_wf_caller(req);
    json_t *details = json_array();
    char *json = NULL;
    size_t len = 0;
    aop_err rc = credentials_update(http_app(req), &c, http_param(req, "id"), body, details,
                                    &json, &len, http_arena(req));
    if (rc != AOP_OK) {
        reply_err(req, rc, details);
        return;
    }
    json_decref(details);
    audit(req, "credential.update", &c, json);
    http_reply_bytes(req, 200, "application/json", json, len);
}

void api_credentials_delete(http_req *req)
{
    wf_caller c = api_wf_caller(req);
    const char *id = http_param(req, "id");
    aop_err rc = credentials_delete(http_app(req), &c, id);
    if (rc != AOP_OK) {
        reply_err(req, rc, NULL);
        return;
    }
    api_audit(req, "credential.delete", c.id, id, json_pack("{s:s}", "credentialId", id));
    http_reply_empty(req, 204);
}
