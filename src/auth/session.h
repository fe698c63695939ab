/*
 * session.h - who is calling, and the life of their tokens.
 *
 * Access and refresh tokens belong to a family (one login). Revocations (an
 * access token's jti, a family, all of a user's families) are written to the
 * store first and then mirrored in the cache, so a check usually costs two
 * cache reads and never trusts the cache for more than it may know: a miss
 * asks the store, and "not revoked" is cached only briefly and only where no
 * revocation was written meanwhile (cache_add), so a revocation is never
 * hidden by a stale entry.
 *
 * Also the store side of signing up and in: registering a prepared user,
 * finding the user a login names, reading the hash a password change
 * checks.
 */
#ifndef AOP_AUTH_SESSION_H
#define AOP_AUTH_SESSION_H

#include <stdbool.h>

#include "app.h"
#include "auth/jwt.h"
#include "store/store.h"

typedef enum { AUTH_VIA_NONE = 0, AUTH_VIA_BEARER, AUTH_VIA_APIKEY } auth_via;

typedef struct auth_identity {
    auth_via via;
    store_user user;          /* the current row: role and active flag are fresh */
    auth_claims claims;       /* bearer only */
    char key_id[UUID_STR_LEN];/* API key only */
    bool can_read, can_write; /* an API key's scopes; both for a bearer token */
} auth_identity;

/* A token pair for a client; strings from the arena. */
typedef struct {
    char *access;
    char *refresh;
    long long expires_in; /* seconds, of the access token */
} auth_pair;

/*
 * A rate-limit hit counted with a bearer token's cache reads, in their round
 * trip (limiter_ride in infra/limiter.h), against "<prefix><token's sub>":
 * the caller fills the first three fields; counted says whether the hit was
 * counted so, and then key, rc and res are limiter_hit's key and results.
 * Only a token whose signature and expiry hold is counted (its user is then
 * known before any read), and only by a limiter that can ride.
 */
typedef struct {
    const char *prefix;
    long long max, window_ms;
    bool counted;
    aop_err rc;
    limiter_result res;
    char key[96];
} auth_limit;

/*
 * Authenticates a request from its Authorization and X-API-Key headers (each
 * may be NULL; a bearer token wins when both are sent). AOP_OK fills *out;
 * otherwise *why is a message for the client: AOP_ERR_UNAUTHORIZED (missing,
 * malformed, unknown, revoked, expired key, inactive user), AOP_ERR_TOKEN_EXPIRED,
 * or AOP_ERR_UNAVAILABLE / AOP_ERR_INTERNAL from the store. lim (may be
 * NULL) is a hit to count on the way, see auth_limit.
 */
aop_err auth_authenticate(const app_ctx *app, const char *authorization, const char *api_key,
                          auth_identity *out, const char **why, arena *a, auth_limit *lim);

/* Inserts u (prepared by users_prepare, with its password hash);
 * AOP_ERR_CONFLICT when the email is taken. */
aop_err auth_register(const app_ctx *app, const store_user *u);

/* The user whose email is email (any case), with its password hash, into
 * *out. AOP_ERR_NOT_FOUND when there is none: then *out is empty except
 * out->email, the lowercased email (from a) for the record. */
aop_err auth_login_user(const app_ctx *app, const char *email, store_user *out, arena *a);

/* The password hash the user holds now (from a; the cached identity
 * carries none). AOP_ERR_NOT_FOUND when the user is gone. */
aop_err auth_password_held(const app_ctx *app, const char *user_id, const char **hash,
                           arena *a);

/* Starts a family for u and issues its first pair. */
aop_err auth_session_start(const app_ctx *app, const store_user *u, auth_pair *out, arena *a);

/*
 * Spends a refresh token and issues the next pair of its family. A spent
 * token presented again revokes the family: AOP_ERR_UNAUTHORIZED with
 * *reused set. The token's user is in *u on success (and on reuse).
 */
aop_err auth_session_refresh(const app_ctx *app, const char *refresh_token, auth_pair *out,
                             store_user *u, bool *reused, arena *a);

/* Verifies a refresh token's signature and claims only (no store access). */
aop_err auth_refresh_claims(const app_ctx *app, const char *refresh_token, auth_claims *out);

/* Refuses the access token from now until it expires. */
aop_err auth_revoke_access(const app_ctx *app, const auth_claims *c);
/* Refuses every token of the family. */
aop_err auth_revoke_family(const app_ctx *app, const char *fam, const char *reason);
/* Refuses every token of every family of the user. */
aop_err auth_revoke_user(const app_ctx *app, const char *user_id, const char *reason, arena *a);

/* Deletes expired revocations and tokens; logs how many. */
void auth_prune(const app_ctx *app);

#endif
