/*
 * webhooks.h - the webhooks service behind /api/workflows/:id/webhooks,
 * /api/webhooks and POST /hooks/:id (docs/api.md, "Triggers"; signing in
 * docs/webhooks.md).
 *
 * Managing a webhook follows its workflow's access (read to list, write to
 * create, delete and rotate; NOT_FOUND to a caller who may not read,
 * FORBIDDEN to one who may read but not write).
 *
 * Secrets: 32 random bytes as 64 hex digits, shown only by create and
 * rotate, sealed at rest by the credentials vault (bound to the webhook's
 * id), because HMAC verification needs the secret itself. After a rotation
 * the secret before it still verifies for WEBHOOK_SECRET_GRACE_S. Every
 * comparison is in constant time.
 *
 * A call costs one lookup by primary key before its check (webhooks_check);
 * a call that fails it writes nothing and starts nothing.
 */
#ifndef AOP_WEBHOOKS_WEBHOOKS_H
#define AOP_WEBHOOKS_WEBHOOKS_H

#include <jansson.h>
#include <stdbool.h>

#include "app.h"
#include "workflows/workflows.h"

/* A workflow's webhooks at most; another create answers AOP_ERR_VALIDATION. */
#define WEBHOOKS_PER_WORKFLOW_MAX 100
/* An hmac call's X-AOP-Timestamp is at most this far from now. */
#define WEBHOOKS_WINDOW_S 300
/* An Idempotency-Key's answer is kept this long. */
#define WEBHOOKS_KEY_TTL_MS (24LL * 3600 * 1000)
/* The longest Idempotency-Key taken, in bytes. */
#define WEBHOOKS_KEY_MAX 255
/* The longest name taken, in characters. */
#define WEBHOOKS_NAME_MAX 200
/* lastCalledAt is written at most this often per webhook. */
#define WEBHOOKS_TOUCH_MS 1000

bool webhooks_auth_ok(const char *s);
bool webhooks_response_ok(const char *s);

/* auth and response NULL: the defaults (hmac, async). *json: the webhook
 * with its secret. AOP_ERR_VALIDATION when the workflow has
 * WEBHOOKS_PER_WORKFLOW_MAX. */
aop_err webhooks_create(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                        const char *name, const char *auth, const char *response, char **json,
                        size_t *len, arena *a);
aop_err webhooks_list(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                      long long page, long long limit, char **json, size_t *len, arena *a);
aop_err webhooks_delete(const app_ctx *app, const wf_caller *c, const char *id);
/* A new secret; the one before works on for WEBHOOK_SECRET_GRACE_S. */
aop_err webhooks_rotate(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                        size_t *len, arena *a);

/* What a call brings for its check (borrowed). */
typedef struct {
    const char *authorization; /* token: "Bearer <secret>" */
    const char *timestamp;     /* hmac: X-AOP-Timestamp */
    const char *signature;     /* hmac: X-AOP-Signature, "sha256=<hex>" */
    const char *body;
    size_t body_len;
} webhook_auth;

/* Webhook id into *w (one lookup) when the call passes its auth:
 * AOP_ERR_NOT_FOUND (no such webhook, also for what is not an id),
 * AOP_ERR_UNAUTHORIZED (a failed check; *why says which part). */
aop_err webhooks_check(const app_ctx *app, const char *id, const webhook_auth *in,
                       store_webhook *w, const char **why, arena *a);

/* The queued execution of w's workflow with input (borrowed):
 * AOP_ERR_WORKFLOW_INACTIVE unless the workflow is active, NOT_FOUND when
 * it is gone. Also notes the call in lastCalledAt. */
aop_err webhooks_prepare(const app_ctx *app, const store_webhook *w, const json_t *input,
                         store_execution *row, arena *a);

/* Starts row under Idempotency-Key key (one transaction with the key's
 * answer, status_code): *repeat false, or true when the key already
 * answered, with that answer's execution in first_id and its status code
 * in *first_status (nothing started). AOP_ERR_QUOTA_EXCEEDED as for
 * execute (the key is then not kept). */
aop_err webhooks_start_keyed(const app_ctx *app, const store_webhook *w, const char *key,
                             const store_execution *row, long long status_code, bool *repeat,
                             char first_id[UUID_STR_LEN], long long *first_status);
/* A sync call's final status code for its key. */
void webhooks_key_answered(const app_ctx *app, const store_webhook *w, const char *key,
                           long long status_code);
/* The current status of an execution a webhook started (a repeat's). */
aop_err webhooks_execution_status(const app_ctx *app, const char *execution_id,
                                  exec_status *status);

#endif
