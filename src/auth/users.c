#include "auth/users.h"
#include "auth/password.h"
#include "auth/user_cache.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/clock.h"
#include "core/str.h"

#include <stdlib.h>
#include <string.h>

static const char *const roles[] = {"admin", "user", "viewer"};

static void problem(json_t *details, const char *field, const char *message)
{
    json_array_append_new(details, json_pack("{s:s, s:s}", "field", field, "message", message));
}

int users_validate(const users_new *n, json_t *details)
{
    size_t before = json_array_size(details);
    if (!n->email || !*n->email)
        problem(details, "email", "is required");
    else if (!str_is_email(n->email))
        problem(details, "email", "must be a valid email address");
    if (!n->name || !*n->name)
        problem(details, "name", "is required");
    else if (str_utf8_len(n->name) > USER_NAME_MAX)
        problem(details, "name", "must be at most 200 characters");
    if (!users_role_ok(n->role))
        problem(details, "role", "must be one of admin, user, viewer");
    size_t pl = n->password ? strlen(n->password) : 0;
    if (pl < USER_PASSWORD_MIN || pl > USER_PASSWORD_MAX)
        problem(details, "password", "must be 8 to 72 bytes");
    return (int)(json_array_size(details) - before);
}

int users_role_ok(const char *role)
{
    for (size_t i = 0; role && i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(role, roles[i]) == 0)
            return 1;
    return 0;
}

int users_prepare(const users_new *n, const char *hash, json_t *details, store_user *out,
                  arena *a)
{
    int problems = users_validate(n, details);
    if (problems > 0)
        return problems;
    memset(out, 0, sizeof(*out));
    ids_uuid7(out->id);
    out->email = str_lower_utf8(n->email, a);
    out->name = arena_strdup(a, n->name);
    out->password_hash = arena_strdup(a, hash ? hash : "");
    out->role = arena_strdup(a, n->role);
    out->preferences = arena_strdup(a, "{}");
    out->is_active = true;
    clock_format_rfc3339(clock_now_ms(), out->created_at);
    str_copy(out->updated_at, sizeof(out->updated_at), out->created_at);
    return 0;
}

aop_err users_create(store *s, const users_new *n, int cost, json_t *details, store_user *out,
                     arena *a)
{
    if (users_validate(n, details) > 0)
        return AOP_ERR_VALIDATION;
    char hash[PASSWORD_HASH_MAX];
    aop_err rc = auth_password_hash(n->password, cost, hash);
    if (rc != AOP_OK)
        return rc;
    users_prepare(n, hash, details, out, a);
    explicit_bzero(hash, sizeof(hash));
    return store_user_insert(s, out);
}

/* ---- updates, each a read-modify-write in one transaction ---- */

typedef struct {
    const char *id;
    const char *name;
    json_t *prefs;
    const char *role;
    int active;
    const char *hash;
    store_user *before;
    store_user *out;
    arena *a;
} update_ctx;

/* Merges prefs into the JSON object text held; returns the new text (arena). */
static char *merge_prefs(const char *held, json_t *prefs, arena *a)
{
    json_error_t e;
    json_t *o = json_loads(held ? held : "{}", 0, &e);
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    json_object_update(o, prefs);
    char *text = json_dumps(o, JSON_COMPACT);
    char *out = arena_strdup(a, text ? text : "{}");
    free(text);
    json_decref(o);
    return out;
}

static aop_err update_tx(store *s, void *p)
{
    update_ctx *x = p;
    aop_err rc = store_user_get_by_id(s, x->id, x->out, x->a);
    if (rc != AOP_OK)
        return rc;
    if (x->before)
        *x->before = *x->out;
    store_user *u = x->out;
    if (x->name)
        u->name = arena_strdup(x->a, x->name);
    if (x->prefs) {
        u->preferences = merge_prefs(u->preferences, x->prefs, x->a);
        if (strlen(u->preferences) > USER_PREFERENCES_MAX)
            return AOP_ERR_VALIDATION;
    }
    if (x->role)
        u->role = arena_strdup(x->a, x->role);
    if (x->active >= 0)
        u->is_active = x->active != 0;
    if (x->hash)
        u->password_hash = arena_strdup(x->a, x->hash);
    clock_format_rfc3339(clock_now_ms(), u->updated_at);
    return store_user_update(s, u);
}

/* Runs the update and, once committed, marks the cached row stale. */
static aop_err update(const app_ctx *app, update_ctx *x)
{
    aop_err rc = store_tx(app->store, update_tx, x);
    if (rc == AOP_OK)
        user_cache_changed(app, x->id);
    return rc;
}

aop_err users_update_profile(const app_ctx *app, const char *id, const char *name,
                             json_t *prefs, store_user *out, arena *a)
{
    update_ctx x = {.id = id, .name = name, .prefs = prefs, .active = -1, .out = out, .a = a};
    return update(app, &x);
}

aop_err users_update_admin(const app_ctx *app, const char *id, const char *role, int active,
                           store_user *before, store_user *out, arena *a)
{
    update_ctx x = {.id = id, .role = role, .active = active, .before = before, .out = out,
                    .a = a};
    return update(app, &x);
}

aop_err users_set_password(const app_ctx *app, const char *id, const char *hash, arena *a)
{
    store_user out;
    update_ctx x = {.id = id, .active = -1, .hash = hash, .out = &out, .a = a};
    return update(app, &x);
}

aop_err users_record_login(const app_ctx *app, const char *id, const char *at)
{
    aop_err rc = store_user_set_login(app->store, id, at);
    if (rc == AOP_OK)
        user_cache_changed(app, id);
    return rc;
}

int users_write_json(const store_user *u, buf *b)
{
    const char *prefs = u->preferences && u->preferences[0] == '{' ? u->preferences : "{}";
    int rc = buf_puts(b, "{");
    rc |= json_put_str(b, "id", u->id, 1);
    rc |= json_put_str(b, "email", u->email, 0);
    rc |= json_put_str(b, "name", u->name, 0);
    rc |= json_put_str(b, "role", u->role, 0);
    rc |= buf_puts(b, ",\"preferences\":");
    rc |= buf_puts(b, prefs);
    rc |= buf_puts(b, u->is_active ? ",\"isActive\":true" : ",\"isActive\":false");
    rc |= json_put_str(b, "createdAt", u->created_at, 0);
    rc |= json_put_str(b, "updatedAt", u->updated_at, 0);
    rc |= json_put_str(b, "lastLoginAt", u->last_login_at[0] ? u->last_login_at : NULL, 0);
    rc |= buf_puts(b, "}");
    return rc ? -1 : 0;
}

json_t *users_to_json(const store_user *u)
{
    json_error_t e;
    json_t *prefs = json_loads(u->preferences ? u->preferences : "{}", 0, &e);
    if (!json_is_object(prefs)) {
        json_decref(prefs);
        prefs = json_object();
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:s, s:s, s:s?}", "id", u->id, "email",
                     u->email, "name", u->name, "role", u->role, "preferences", prefs,
                     "isActive", u->is_active, "createdAt", u->created_at, "updatedAt",
                     u->updated_at, "lastLoginAt", u->last_login_at[0] ? u->last_login_at : NULL);
}

aop_err users_list(const app_ctx *app, const store_user_query *q, store_user **out, int *n,
                   long long *total, arena *a)
{
    return store_user_list(app->store, q, out, n, total, a);
}
