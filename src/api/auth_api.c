/*
 * auth_api.c - accounts and sessions: register, login, refresh, logout, me,
 * password change. bcrypt runs on the slow-work pool (http_defer); the rest
 * on the HTTP thread.
 */
#include "api/api.h"
#include "api/common.h"
#include "auth/password.h"
#include "auth/session.h"
#include "auth/users.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"

#include <string.h>

static const char bad_login[] = "Invalid email or password";

static void reply_busy(http_req *req)
{
    http_set_header(req, "Retry-After", "1");
    http_reply_error(req, AOP_ERR_UNAVAILABLE, "The server is busy; retry shortly", NULL);
}

/* {user, accessToken, refreshToken, expiresIn} */
static void reply_session(http_req *req, int status, const store_user *u, const auth_pair *p)
{
    http_reply_json(req, status,
                    json_pack("{s:o, s:s, s:s, s:I}", "user", users_to_json(u), "accessToken",
                              p->access, "refreshToken", p->refresh, "expiresIn",
                              (json_int_t)p->expires_in));
}

/* Starts a family for u, records action and answers status with the pair. */
static void start_session_or_reply(http_req *req, const store_user *u, int status,
                                   const char *action)
{
    auth_pair pair;
    aop_err rc = auth_session_start(http_app(req), u, &pair, http_arena(req));
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    api_audit(req, action, u->id, u->id, NULL);
    reply_session(req, status, u, &pair);
}

/* A password member: a string (length is checked by the caller). */
static const char *password_field(json_t *body, const char *field, json_t *details)
{
    json_t *v = json_object_get(body, field);
    if (!v || json_is_null(v)) {
        api_problem(details, field, "is required");
        return NULL;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        api_problem(details, field, "must be a string");
        return NULL;
    }
    return json_string_value(v);
}

static int password_length_ok(const char *pw, const char *field, json_t *details)
{
    size_t n = strlen(pw);
    if (n >= USER_PASSWORD_MIN && n <= USER_PASSWORD_MAX)
        return 1;
    api_problem(details, field, "must be 8 to 72 bytes");
    return 0;
}

/* ---- register ---- */

typedef struct {
    int cost;
    char *password; /* arena copy, wiped after hashing */
    char hash[PASSWORD_HASH_MAX];
    aop_err rc;
    store_user user;
} register_ctx;

static void register_work(void *p)
{
    register_ctx *x = p;
    x->rc = auth_password_hash(x->password, x->cost, x->hash);
    explicit_bzero(x->password, strlen(x->password));
}

static void register_done(http_req *req, void *p)
{
    register_ctx *x = p;
    const app_ctx *app = http_app(req);
    if (x->rc != AOP_OK) {
        api_reply_err(req, x->rc, NULL);
        return;
    }
    x->user.password_hash = arena_strdup(http_arena(req), x->hash);
    explicit_bzero(x->hash, sizeof(x->hash));
    aop_err rc = auth_register(app, &x->user);
    if (rc == AOP_ERR_CONFLICT) {
        json_t *d = json_array();
        api_problem(d, "email", "is already registered");
        http_reply_error(req, AOP_ERR_CONFLICT, "This email is already registered", d);
        return;
    }
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    start_session_or_reply(req, &x->user, 201, "auth.register");
}

void api_register(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    json_t *details = json_array();
    register_ctx *x = arena_alloc(http_arena(req), sizeof(*x));
    users_new n = {.role = "user"};
    n.email = api_string(body, "email", true, 1, 254, details);
    n.name = api_string(body, "name", true, 1, USER_NAME_MAX, details);
    n.password = password_field(body, "password", details);
    if (n.password)
        password_length_ok(n.password, "password", details);
    if (json_array_size(details) == 0 && n.email && n.name)
        users_prepare(&n, NULL, details, &x->user, http_arena(req));
    if (!api_valid_or_reply(req, details))
        return;
    x->cost = (int)http_app(req)->cfg->bcrypt_cost;
    x->password = arena_strdup(http_arena(req), n.password);
    if (http_defer(req, register_work, register_done, x) != 0)
        reply_busy(req);
}

/* ---- login ---- */

typedef struct {
    int cost;
    char *password;
    bool found;
    bool ok;
    store_user user;
} login_ctx;

static void login_work(void *p)
{
    login_ctx *x = p;
    if (x->found)
        x->ok = auth_password_verify(x->password, x->user.password_hash);
    else
        auth_password_verify_dummy(x->password, x->cost);
    explicit_bzero(x->password, strlen(x->password));
}

static void login_failed(http_req *req, const login_ctx *x, const char *email,
                         const char *reason)
{
    api_audit(req, "auth.login_failed", x->found ? x->user.id : NULL,
              x->found ? x->user.id : NULL,
              json_pack("{s:s, s:s}", "email", email, "reason", reason));
}

static void login_done(http_req *req, void *p)
{
    login_ctx *x = p;
    const app_ctx *app = http_app(req);
    if (!x->ok) {
        login_failed(req, x, x->user.email, x->found ? "wrong password" : "unknown email");
        http_reply_error(req, AOP_ERR_INVALID_CREDENTIALS, bad_login, NULL);
        return;
    }
    if (!x->user.is_active) {
        login_failed(req, x, x->user.email, "account disabled");
        http_reply_error(req, AOP_ERR_FORBIDDEN, "This account is disabled", NULL);
        return;
    }
    char now[25];
    clock_format_rfc3339(clock_now_ms(), now);
    aop_err rc = users_record_login(app, x->user.id, now);
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    str_copy(x->user.last_login_at, sizeof(x->user.last_login_at), now);
    start_session_or_reply(req, &x->user, 200, "auth.login");
}

void api_login(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    json_t *details = json_array();
    const char *email = api_string(body, "email", true, 1, 254, details);
    const char *password = password_field(body, "password", details);
    if (!api_valid_or_reply(req, details))
        return;
    arena *a = http_arena(req);
    login_ctx *x = arena_alloc(a, sizeof(*x));
    aop_err rc = auth_login_user(http_app(req), email, &x->user, a);
    if (rc != AOP_OK && rc != AOP_ERR_NOT_FOUND) {
        api_reply_err(req, rc, NULL);
        return;
    }
    x->found = rc == AOP_OK;
    x->cost = (int)http_app(req)->cfg->bcrypt_cost;
    /* bcrypt reads at most 72 bytes; a longer password can still be tried */
    x->password = arena_strdup(a, password);
    if (http_defer(req, login_work, login_done, x) != 0)
        reply_busy(req);
}

/* ---- refresh and logout ---- */

void api_refresh(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    json_t *details = json_array();
    /* an empty or oversized token is a bad token (401), not a bad field */
    const char *token = api_string(body, "refreshToken", true, 0, 1 << 20, details);
    if (!api_valid_or_reply(req, details))
        return;
    auth_pair pair;
    store_user u;
    bool reused = false;
    aop_err rc = auth_session_refresh(http_app(req), token, &pair, &u, &reused, http_arena(req));
    if (reused) {
        api_audit(req, "auth.refresh_reuse", u.id[0] ? u.id : NULL, u.id[0] ? u.id : NULL, NULL);
        http_reply_error(req, AOP_ERR_UNAUTHORIZED,
                         "Refresh token already used; the session has been revoked", NULL);
        return;
    }
    if (rc == AOP_ERR_UNAUTHORIZED) {
        http_reply_error(req, rc, "Invalid or expired refresh token", NULL);
        return;
    }
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    api_audit(req, "auth.refresh", u.id, u.id, NULL);
    http_reply_json(req, 200,
                    json_pack("{s:s, s:s, s:I}", "accessToken", pair.access, "refreshToken",
                              pair.refresh, "expiresIn", (json_int_t)pair.expires_in));
}

void api_logout(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    const app_ctx *app = http_app(req);
    const auth_identity *id = http_identity(req);
    aop_err rc = auth_revoke_access(app, &id->claims);
    if (rc == AOP_OK)
        rc = auth_revoke_family(app, id->claims.fam, "logout");
    json_t *rt = json_object_get(body, "refreshToken");
    auth_claims other;
    if (rc == AOP_OK && json_is_string(rt) &&
        auth_refresh_claims(app, json_string_value(rt), &other) == AOP_OK &&
        strcmp(other.sub, id->user.id) == 0 && strcmp(other.fam, id->claims.fam) != 0)
        rc = auth_revoke_family(app, other.fam, "logout");
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    api_audit(req, "auth.logout", id->user.id, id->user.id, NULL);
    http_reply_empty(req, 204);
}

/* ---- me ---- */

void api_me_get(http_req *req)
{
    buf b;
    buf_init(&b, 0);
    if (users_write_json(&http_identity(req)->user, &b) == 0)
        http_reply_bytes(req, 200, "application/json", b.data, b.len);
    else
        http_reply_error(req, AOP_ERR_INTERNAL, NULL, NULL);
    buf_free(&b);
}

void api_me_patch(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    json_t *details = json_array();
    const char *name = api_string(body, "name", false, 1, USER_NAME_MAX, details);
    json_t *prefs = json_object_get(body, "preferences");
    if (prefs && !json_is_null(prefs)) {
        char *text = json_is_object(prefs) ? json_dumps(prefs, JSON_COMPACT) : NULL;
        if (!json_is_object(prefs))
            api_problem(details, "preferences", "must be an object");
        else if (!text || strlen(text) > USER_PREFERENCES_MAX)
            api_problem(details, "preferences", "must be at most 16384 bytes as JSON");
        free(text);
    } else {
        prefs = NULL;
    }
    if (!api_valid_or_reply(req, details))
        return;
    store_user u;
    aop_err rc = AOP_OK;
    if (name || prefs)
        rc = users_update_profile(http_app(req), http_identity(req)->user.id, name, prefs,
                                  &u, http_arena(req));
    else
        u = http_identity(req)->user;
    if (rc == AOP_OK) {
        http_reply_json(req, 200, users_to_json(&u));
    } else if (rc == AOP_ERR_VALIDATION) {
        json_t *d = json_array();
        api_problem(d, "preferences", "merged with the preferences held, must be at most 16384 "
                                      "bytes as JSON");
        http_reply_error(req, rc, "The request has invalid fields", d);
    } else {
        api_reply_err(req, rc, NULL);
    }
}

/* ---- password change ---- */

typedef struct {
    int cost;
    char *current;
    char *next;
    const char *held; /* the hash held now */
    bool ok;
    aop_err rc;
    char hash[PASSWORD_HASH_MAX];
} password_ctx;

static void password_work(void *p)
{
    password_ctx *x = p;
    x->ok = auth_password_verify(x->current, x->held);
    if (x->ok)
        x->rc = auth_password_hash(x->next, x->cost, x->hash);
    explicit_bzero(x->current, strlen(x->current));
    explicit_bzero(x->next, strlen(x->next));
}

static void password_done(http_req *req, void *p)
{
    password_ctx *x = p;
    const app_ctx *app = http_app(req);
    const auth_identity *id = http_identity(req);
    if (!x->ok) {
        json_t *d = json_array();
        api_problem(d, "currentPassword", "is incorrect");
        http_reply_error(req, AOP_ERR_VALIDATION, "The current password is incorrect", d);
        return;
    }
    aop_err rc = x->rc;
    if (rc == AOP_OK)
        rc = users_set_password(app, id->user.id, x->hash, http_arena(req));
    explicit_bzero(x->hash, sizeof(x->hash));
    if (rc == AOP_OK)
        rc = auth_revoke_user(app, id->user.id, "password change", http_arena(req));
    if (rc != AOP_OK) {
        api_reply_err(req, rc, NULL);
        return;
    }
    api_audit(req, "auth.password_change", id->user.id, id->user.id, NULL);
    http_reply_empty(req, 204);
}

void api_me_password(http_req *req)
{
    json_t *body;
    if (!api_object_or_reply(req, &body))
        return;
    json_t *details = json_array();
    const char *current = password_field(body, "currentPassword", details);
    const char *next = password_field(body, "newPassword", details);
    if (next)
        password_length_ok(next, "newPassword", details);
    if (!api_valid_or_reply(req, details))
        return;
    arena *a = http_arena(req);
    password_ctx *x = arena_alloc(a, sizeof(*x));
    aop_err rc = auth_password_held(http_app(req), http_identity(req)->user.id, &x->held, a);
    if (rc != AOP_OK) {
        api_reply_err(req, rc == AOP_ERR_NOT_FOUND ? AOP_ERR_UNAUTHORIZED : rc, NULL);
        return;
    }
    x->cost = (int)http_app(req)->cfg->bcrypt_cost;
    x->current = arena_strdup(a, current);
    x->next = arena_strdup(a, next);
    if (http_defer(req, password_work, password_done, x) != 0)
        reply_busy(req);
}
