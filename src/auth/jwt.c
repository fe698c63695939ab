#include "auth/jwt.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/str.h"

#include <jwt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define JWT_ISSUER "aop"

static const char *const type_names[] = {
    [AUTH_TOKEN_ACCESS] = "access",
    [AUTH_TOKEN_REFRESH] = "refresh",
};

static const char *const roles[] = {"admin", "user", "viewer"};

static int type_ok(auth_token_type t)
{
    return (unsigned)t < sizeof(type_names) / sizeof(type_names[0]);
}

static int role_ok(const char *s)
{
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(s, roles[i]) == 0)
            return 1;
    return 0;
}

/* 1 when s is a lowercase hyphenated UUID (8-4-4-4-12 hex digits). */
static int uuid_ok(const char *s)
{
    for (int i = 0; i < UUID_STR_LEN - 1; i++) {
        char ch = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ch != '-')
                return 0;
        } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            return 0;
        }
    }
    return s[UUID_STR_LEN - 1] == '\0';
}

/* The key length libjwt is given, or -1 when secret is unusable. An empty
 * key must never reach jwt_decode: libjwt then skips the signature check. */
static int secret_len(const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    return n == 0 || n > INT_MAX ? -1 : (int)n;
}

/* 1 when t (n bytes) is three non-empty base64url segments joined by dots,
 * the only shape we sign; anything else never reaches libjwt. */
static int shape_ok(const char *t, size_t n)
{
    int dots = 0;
    size_t seg = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch == '.') {
            if (seg == 0 || ++dots > 2)
                return 0;
            seg = 0;
        } else if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                   (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
            seg++;
        } else {
            return 0;
        }
    }
    return dots == 2 && seg > 0;
}

/* Why c cannot be signed, or NULL when it can. */
static const char *claims_problem(const auth_claims *c)
{
    if (!type_ok(c->type))
        return "unknown token type";
    if (!uuid_ok(c->sub) || !uuid_ok(c->jti) || !uuid_ok(c->fam))
        return "sub, jti or fam is not a UUID";
    if (c->type == AUTH_TOKEN_ACCESS && !role_ok(c->role))
        return "unknown role";
    if (c->exp <= c->iat)
        return "exp is not after iat";
#if LONG_MAX < LLONG_MAX
    if (c->iat < LONG_MIN || c->exp > LONG_MAX)
        return "iat or exp out of range";
#endif
    return NULL;
}

/* Adds every claim of c to j; 0, or -1 when libjwt refuses one. */
static int add_claims(jwt_t *j, const auth_claims *c)
{
    const struct {
        const char *name, *value;
    } strs[] = {
        {"iss", JWT_ISSUER},
        {"sub", c->sub},
        {"type", type_names[c->type]},
        {"jti", c->jti},
        {"fam", c->fam},
        {"role", c->type == AUTH_TOKEN_ACCESS ? c->role : NULL},
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (strs[i].value && jwt_add_grant(j, strs[i].name, strs[i].value) != 0)
            return -1;
    if (jwt_add_grant_int(j, "iat", (long)c->iat) != 0 ||
        jwt_add_grant_int(j, "exp", (long)c->exp) != 0)
        return -1;
    return 0;
}

char *auth_jwt_sign(const auth_claims *c, const char *secret)
{
    const char *why = NULL;
    jwt_t *j = NULL;
    char *token = NULL;
    int klen = secret_len(secret);
    if (!c) {
        why = "no claims";
        goto out;
    }
    if ((why = claims_problem(c)) != NULL)
        goto out;
    if (klen < 0) {
        why = "empty secret";
        goto out;
    }
    if (jwt_new(&j) != 0 || jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret, klen) != 0) {
        why = "libjwt setup failed";
        goto out;
    }
    if (add_claims(j, c) != 0) {
        why = "libjwt refused a claim";
        goto out;
    }
    if ((token = jwt_encode_str(j)) == NULL)
        why = "libjwt encoding failed";
out:
    if (why)
        log_error("jwt signing failed", LF_S("reason", why));
    if (j)
        jwt_free(j);
    return token;
}

/* Copies the string claim name into dst (n bytes); 0, or -1 when it is
 * missing, not a JSON string or too long. */
static int grant_str(jwt_t *j, const char *name, char *dst, size_t n)
{
    const char *v = jwt_get_grant(j, name);
    return v && str_copy(dst, n, v) < n ? 0 : -1;
}

/* The integer claim name; 0, or -1 when it is missing or not a JSON integer.
 * jwt_get_grant_int() cannot tell: it reads 5.0, "5", true and null as 0
 * without setting errno, so the claim's JSON text is parsed instead. */
static int grant_int(jwt_t *j, const char *name, long long *v)
{
    char *js = jwt_get_grants_json(j, name);
    int rc = js ? str_to_ll(js, LLONG_MIN, LLONG_MAX, v) : -1;
    free(js);
    return rc;
}

/* Reads and checks every claim of the decoded token j as a token of type
 * want into *c, expiry aside; 0, or -1 on the first problem. */
static int read_claims(jwt_t *j, auth_token_type want, auth_claims *c)
{
    char iss[sizeof(JWT_ISSUER)], type[sizeof("refresh")];
    if (jwt_get_alg(j) != JWT_ALG_HS256)
        return -1;
    if (grant_str(j, "iss", iss, sizeof(iss)) != 0 || strcmp(iss, JWT_ISSUER) != 0)
        return -1;
    if (grant_str(j, "type", type, sizeof(type)) != 0 || strcmp(type, type_names[want]) != 0)
        return -1;
    if (grant_str(j, "sub", c->sub, sizeof(c->sub)) != 0 || !uuid_ok(c->sub) ||
        grant_str(j, "jti", c->jti, sizeof(c->jti)) != 0 || !uuid_ok(c->jti) ||
        grant_str(j, "fam", c->fam, sizeof(c->fam)) != 0 || !uuid_ok(c->fam))
        return -1;
    if (want == AUTH_TOKEN_ACCESS &&
        (grant_str(j, "role", c->role, sizeof(c->role)) != 0 || !role_ok(c->role)))
        return -1;
    if (grant_int(j, "iat", &c->iat) != 0 || grant_int(j, "exp", &c->exp) != 0 ||
        c->exp <= c->iat)
        return -1;
    c->type = want;
    return 0;
}

aop_err auth_jwt_verify(const char *token, auth_token_type want, const char *secret,
                        long long now_s, auth_claims *out)
{
    aop_err rc = AOP_ERR_UNAUTHORIZED;
    auth_claims c;
    jwt_t *j = NULL;
    int klen = secret_len(secret);
    memset(&c, 0, sizeof(c));
    if (!out)
        return rc;
    memset(out, 0, sizeof(*out));
    if (!token || klen < 0 || !type_ok(want))
        goto out;
    size_t n = strnlen(token, AUTH_TOKEN_MAX + 1);
    if (n > AUTH_TOKEN_MAX || !shape_ok(token, n))
        goto out;
    /* With a key, jwt_decode() checks the signature (and refuses alg none)
     * before anything from the payload is used below. */
    if (jwt_decode(&j, token, (const unsigned char *)secret, klen) != 0)
        goto out;
    if (read_claims(j, want, &c) != 0)
        goto out;
    if (c.exp > now_s)
        rc = AOP_OK;
    else if (want == AUTH_TOKEN_ACCESS)
        rc = AOP_ERR_TOKEN_EXPIRED;
    else
        goto out;
    *out = c;
out:
    if (j)
        jwt_free(j);
    return rc;
}
