/*
 * jwt.h - access and refresh tokens: HS256 JWTs signed and checked with libjwt.
 *
 * A token carries sub, role (access only), type ("access"|"refresh"), jti,
 * fam (the refresh family), iat, exp and iss:"aop". Verification trusts
 * nothing in the token before its signature is checked, accepts only HS256,
 * and never logs the token or the secret.
 */
#ifndef AOP_AUTH_JWT_H
#define AOP_AUTH_JWT_H

#include "core/err.h"
#include "core/ids.h"

typedef enum { AUTH_TOKEN_ACCESS, AUTH_TOKEN_REFRESH } auth_token_type;

#define AUTH_TOKEN_MAX 4096 /* longer tokens are refused unread */

typedef struct {
    auth_token_type type;
    char sub[UUID_STR_LEN]; /* user id */
    char jti[UUID_STR_LEN];
    char fam[UUID_STR_LEN]; /* family id */
    char role[16];          /* access tokens only ("" in refresh tokens) */
    long long iat, exp;     /* seconds since the epoch */
} auth_claims;

/* Signs c as an HS256 JWT with secret (a non-empty string of any length).
 * c must be well formed: sub/jti/fam lowercase hyphenated UUIDs, role one of
 * admin|user|viewer for an access token (ignored for a refresh token),
 * exp > iat. Returns a malloc'd NUL-terminated token the caller free()s, or
 * NULL when c or secret is unusable or libjwt fails (logged, without the
 * secret). */
char *auth_jwt_sign(const auth_claims *c, const char *secret);

/* Verifies token as a token of type want signed with secret, at time now_s.
 * token is borrowed and never logged; tokens longer than AUTH_TOKEN_MAX are
 * refused unread. The signature is checked first, then alg == HS256,
 * iss == "aop", type == want, sub/jti/fam UUIDs, role (access only), iat and
 * exp JSON integers with exp > iat, and last exp > now_s.
 * Returns AOP_OK, or AOP_ERR_TOKEN_EXPIRED when the token is valid in every
 * other way but exp <= now_s and want is AUTH_TOKEN_ACCESS; *out is filled in
 * both cases. Anything else, an expired refresh token included, is
 * AOP_ERR_UNAUTHORIZED with *out zeroed. */
aop_err auth_jwt_verify(const char *token, auth_token_type want, const char *secret,
                        long long now_s, auth_claims *out);

#endif
