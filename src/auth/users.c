#include "auth/users.h"
#include "auth/password.h"
#include "core/buf.h"
#include "core/clock.h"

#include <string.h>

static const char *const roles[] = {"admin", "user", "viewer"};

static void problem(json_t *details, const char *field, const char *message)
{
    json_array_append_new(details, json_pack("{s:s, s:s}", "field", field, "message", message));
}

/* Characters (not bytes) in a UTF-8 string. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
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
    else if (utf8_chars(n->name) > USER_NAME_MAX)
        problem(details, "name", "must be at most 200 characters");
    int role_ok = 0;
    for (size_t i = 0; n->role && i < sizeof(roles) / sizeof(roles[0]); i++)
        role_ok |= strcmp(n->role, roles[i]) == 0;
    if (!role_ok)
        problem(details, "role", "must be one of admin, user, viewer");
    size_t pl = n->password ? strlen(n->password) : 0;
    if (pl < USER_PASSWORD_MIN || pl > USER_PASSWORD_MAX)
        problem(details, "password", "must be 8 to 72 bytes");
    return (int)(json_array_size(details) - before);
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
    char *email = str_lower(arena_strdup(a, n->email));
    memset(out, 0, sizeof(*out));
    ids_uuid7(out->id);
    out->email = email;
    out->name = arena_strdup(a, n->name);
    out->password_hash = arena_strdup(a, hash);
    out->role = arena_strdup(a, n->role);
    out->preferences = arena_strdup(a, "{}");
    out->is_active = true;
    clock_format_rfc3339(clock_now_ms(), out->created_at);
    str_copy(out->updated_at, sizeof(out->updated_at), out->created_at);
    return store_user_insert(s, out);
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
