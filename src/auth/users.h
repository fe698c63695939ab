/*
 * users.h - the user service: validation and creation (shared by the CLI's
 * `user create`, the start-up admin and registration), updates of a user's
 * profile, role, active flag, password and last login, and the contract's
 * user object. Every change to an existing user marks its cached row stale
 * once committed (auth/user_cache.h).
 */
#ifndef AOP_AUTH_USERS_H
#define AOP_AUTH_USERS_H

#include <jansson.h>
#include <stddef.h>

#include "app.h"
#include "core/buf.h"
#include "store/store.h"

#define USER_NAME_MAX 200
#define USER_PASSWORD_MIN 8
#define USER_PASSWORD_MAX 72
#define USER_PREFERENCES_MAX 16384 /* bytes of the preferences object as JSON */

typedef struct {
    const char *email;
    const char *name;
    const char *role;
    const char *password;
} users_new;

/* Checks every field of n; appends {field, message} objects to details (an
 * array the caller owns). Returns the number of problems found. */
int users_validate(const users_new *n, json_t *details);

/* Validates n (details as above) and, when it is valid, fills *out (its
 * strings in a) for insertion: a new id, the lowercased email, the given
 * password hash ("" when hash is NULL, for a caller that hashes later, as
 * registration does), empty preferences, active, timestamps now. Returns the
 * number of problems. */
int users_prepare(const users_new *n, const char *hash, json_t *details, store_user *out,
                  arena *a);

/* Validates, hashes the password at cost and inserts the user with a
 * lowercased email, as users_prepare fills it. AOP_ERR_VALIDATION fills
 * details; AOP_ERR_CONFLICT when the email is taken; another error when
 * hashing or the store fails. On success *out is filled from a. */
aop_err users_create(store *s, const users_new *n, int cost, json_t *details, store_user *out,
                     arena *a);

/* Sets name (when not NULL) and merges prefs (an object, when not NULL) one
 * level deep into the user's preferences, in one transaction; *out is the
 * result. AOP_ERR_NOT_FOUND when the user is gone; AOP_ERR_VALIDATION (nothing
 * written) when the merged preferences would exceed USER_PREFERENCES_MAX. */
aop_err users_update_profile(const app_ctx *app, const char *id, const char *name,
                             json_t *prefs, store_user *out, arena *a);

/* Sets role (when not NULL) and the active flag (when active >= 0) in one
 * transaction; *before and *out are the user before and after.
 * AOP_ERR_NOT_FOUND when the user is gone. */
aop_err users_update_admin(const app_ctx *app, const char *id, const char *role, int active,
                           store_user *before, store_user *out, arena *a);

/* Replaces the user's password hash (and updatedAt). AOP_ERR_NOT_FOUND when
 * the user is gone. */
aop_err users_set_password(const app_ctx *app, const char *id, const char *hash, arena *a);

/* Sets lastLoginAt to at; updatedAt is left as it is. */
aop_err users_record_login(const app_ctx *app, const char *id, const char *at);

/* One page of users for the admin list (q's filters, sort and paging): *n
 * of them in *out (from a), and *total matching. */
aop_err users_list(const app_ctx *app, const store_user_query *q, store_user **out, int *n,
                   long long *total, arena *a);

/* 1 when role is admin, user or viewer. */
int users_role_ok(const char *role);

/* The object of users_to_json, written straight into b as compact JSON (no
 * jansson tree: the hot path of GET /api/auth/me). preferences text is held
 * as compact JSON already and is copied as it is. Returns 0, or -1 when b is
 * full. */
int users_write_json(const store_user *u, buf *b);

/* The contract's user object (never the password hash). New reference. */
json_t *users_to_json(const store_user *u);

#endif
