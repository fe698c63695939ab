/* Unit tests of auth/jwt (signing and verifying tokens) and auth/apikey. */
#include <jwt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/apikey.h"
#include "auth/jwt.h"
#include "core/buf.h"
#include "core/str.h"
#include "unit.h"

#define SECRET "unit-test-secret-0123456789abcdef"
#define OTHER_SECRET "another-secret-0123456789abcdef!"
#define SUB "0190a6e4-7b2c-7d3e-8f40-123456789abc"
#define JTI "0190a6e4-7b2c-7d3e-8f40-abcdefabcdef"
#define FAM "0190a6e4-7b2c-7d3e-8f40-000000000001"
#define IAT 1700000000LL
#define EXP (IAT + 900)
#define NOW (IAT + 60)

/* The claims of a well-formed token of type t. */
static auth_claims claims_of(auth_token_type t)
{
    auth_claims c;
    memset(&c, 0, sizeof(c));
    c.type = t;
    memcpy(c.sub, SUB, sizeof(SUB));
    memcpy(c.jti, JTI, sizeof(JTI));
    memcpy(c.fam, FAM, sizeof(FAM));
    memcpy(c.role, "user", sizeof("user"));
    c.iat = IAT;
    c.exp = EXP;
    return c;
}

/* A token made directly with libjwt: grants is the payload as JSON, signed
 * with alg and secret. Caller frees; NULL if libjwt refuses. */
static char *forge(jwt_alg_t alg, const char *secret, const char *grants)
{
    jwt_t *j = NULL;
    char *t = NULL;
    if (jwt_new(&j) == 0 &&
        jwt_set_alg(j, alg, (const unsigned char *)secret, (int)strlen(secret)) == 0 &&
        jwt_add_grants_json(j, grants) == 0)
        t = jwt_encode_str(j);
    jwt_free(j);
    return t;
}

/* Unpadded base64url of s into out (large enough). */
static void b64url(const char *s, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned acc = 0;
    int bits = 0;
    for (; *s; s++) {
        acc = (acc << 8 | (unsigned char)*s) & 0xffff;
        for (bits += 8; bits >= 6;) {
            bits -= 6;
            *out++ = tab[(acc >> bits) & 63];
        }
    }
    if (bits)
        *out++ = tab[(acc << (6 - bits)) & 63];
    *out = '\0';
}

/* The payload an access token carries, as JSON (the baseline the "missing
 * claims" cases below differ from). */
#define ACCESS_JSON                                                                      \
    "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"access\",\"jti\":\"" JTI \
    "\",\"fam\":\"" FAM "\",\"iat\":1700000000,\"exp\":1700000900}"

static void jwt_round_trip_access(void)
{
    auth_claims in = claims_of(AUTH_TOKEN_ACCESS), out;
    memcpy(in.role, "admin", sizeof("admin"));
    char *t = auth_jwt_sign(&in, SECRET);
    CHECK(t != NULL);
    aop_err e = auth_jwt_verify(t, AUTH_TOKEN_ACCESS, SECRET, NOW, &out);
    free(t);
    CHECK_INT(e, AOP_OK);
    CHECK_INT(out.type, AUTH_TOKEN_ACCESS);
    CHECK_STR(out.sub, SUB);
    CHECK_STR(out.jti, JTI);
    CHECK_STR(out.fam, FAM);
    CHECK_STR(out.role, "admin");
    CHECK_INT(out.iat, IAT);
    CHECK_INT(out.exp, EXP);
}

static void jwt_round_trip_refresh(void)
{
    auth_claims in = claims_of(AUTH_TOKEN_REFRESH), out;
    char *t = auth_jwt_sign(&in, SECRET);
    CHECK(t != NULL);
    /* What libjwt reads back: no role in a refresh token. */
    jwt_t *j = NULL;
    int dec = jwt_decode(&j, t, (const unsigned char *)SECRET, (int)strlen(SECRET));
    int has_role = dec == 0 && jwt_get_grant(j, "role") != NULL;
    char iss[16] = "", type[16] = "";
    if (dec == 0) {
        str_copy(iss, sizeof(iss), jwt_get_grant(j, "iss") ? jwt_get_grant(j, "iss") : "");
        str_copy(type, sizeof(type), jwt_get_grant(j, "type") ? jwt_get_grant(j, "type") : "");
        jwt_free(j);
    }
    aop_err e = auth_jwt_verify(t, AUTH_TOKEN_REFRESH, SECRET, NOW, &out);
    free(t);
    CHECK_INT(dec, 0);
    CHECK(!has_role);
    CHECK_STR(iss, "aop");
    CHECK_STR(type, "refresh");
    CHECK_INT(e, AOP_OK);
    CHECK_INT(out.type, AUTH_TOKEN_REFRESH);
    CHECK_STR(out.sub, SUB);
    CHECK_STR(out.jti, JTI);
    CHECK_STR(out.fam, FAM);
    CHECK_STR(out.role, "");
    CHECK_INT(out.iat, IAT);
    CHECK_INT(out.exp, EXP);
}

static void jwt_wrong_secret_refused(void)
{
    auth_claims in = claims_of(AUTH_TOKEN_ACCESS), out;
    char *t = auth_jwt_sign(&in, SECRET);
    CHECK(t != NULL);
    aop_err e1 = auth_jwt_verify(t, AUTH_TOKEN_ACCESS, OTHER_SECRET, NOW, &out);
    aop_err e2 = auth_jwt_verify(t, AUTH_TOKEN_ACCESS, SECRET "x", NOW, &out);
    /* libjwt skips the signature check for an empty key; we must not. */
    aop_err e3 = auth_jwt_verify(t, AUTH_TOKEN_ACCESS, "", NOW, &out);
    aop_err e4 = auth_jwt_verify(t, AUTH_TOKEN_ACCESS, NULL, NOW, &out);
    free(t);
    CHECK_INT(e1, AOP_ERR_UNAUTHORIZED);
    CHECK_INT(e2, AOP_ERR_UNAUTHORIZED);
    CHECK_INT(e3, AOP_ERR_UNAUTHORIZED);
    CHECK_INT(e4, AOP_ERR_UNAUTHORIZED);
    CHECK_STR(out.sub, ""); /* zeroed on failure */
}

/* Verifies t with segment seg (0 header, 1 payload, 2 signature) changed
 * in its middle character. */
static aop_err verify_tampered(const char *t, int seg)
{
    char tok[AUTH_TOKEN_MAX + 1];
    auth_claims out;
    str_copy(tok, sizeof(tok), t);
    char *start = tok;
    for (int i = 0; i < seg; i++)
        start = strchr(start, '.') + 1;
    char *end = strchr(start, '.');
    size_t len = end ? (size_t)(end - start) : strlen(start);
    char *p = start + len / 2;
    *p = *p == 'A' ? 'B' : 'A';
    return auth_jwt_verify(tok, AUTH_TOKEN_ACCESS, SECRET, NOW, &out);
}

static void jwt_tampering_refused(void)
{
    auth_claims in = claims_of(AUTH_TOKEN_ACCESS);
    char *t = auth_jwt_sign(&in, SECRET);
    CHECK(t != NULL);
    aop_err head = verify_tampered(t, 0), payload = verify_tampered(t, 1),
            sig = verify_tampered(t, 2);
    free(t);
    CHECK_INT(head, AOP_ERR_UNAUTHORIZED);
    CHECK_INT(payload, AOP_ERR_UNAUTHORIZED);
    CHECK_INT(sig, AOP_ERR_UNAUTHORIZED);
}

static void jwt_type_confusion_refused(void)
{
    auth_claims a = claims_of(AUTH_TOKEN_ACCESS), r = claims_of(AUTH_TOKEN_REFRESH), out;
    char *ta = auth_jwt_sign(&a, SECRET), *tr = auth_jwt_sign(&r, SECRET);
    CHECK(ta && tr);
    aop_err e1 = auth_jwt_verify(ta, AUTH_TOKEN_REFRESH, SECRET, NOW, &out);
    aop_err e2 = auth_jwt_verify(tr, AUTH_TOKEN_ACCESS, SECRET, NOW, &out);
    aop_err e3 = auth_jwt_verify(ta, (auth_token_type)7, SECRET, NOW, &out);
    free(ta);
    free(tr);
    CHECK_INT(e1, AOP_ERR_UNAUTHORIZED);
    CHECK_INT(e2, AOP_ERR_UNAUTHORIZED);
    CHECK_INT(e3, AOP_ERR_UNAUTHORIZED);
}

static void jwt_expiry(void)
{
    auth_claims a = claims_of(AUTH_TOKEN_ACCESS), r = claims_of(AUTH_TOKEN_REFRESH), out;
    char *ta = auth_jwt_sign(&a, SECRET), *tr = auth_jwt_sign(&r, SECRET);
    CHECK(ta && tr);
    aop_err before = auth_jwt_verify(ta, AUTH_TOKEN_ACCESS, SECRET, EXP - 1, &out);
    aop_err at = auth_jwt_verify(ta, AUTH_TOKEN_ACCESS, SECRET, EXP, &out);
    aop_err after = auth_jwt_verify(ta, AUTH_TOKEN_ACCESS, SECRET, EXP + 3600, &out);
    char sub_after[UUID_STR_LEN];
    str_copy(sub_after, sizeof(sub_after), out.sub);
    aop_err refresh_at = auth_jwt_verify(tr, AUTH_TOKEN_REFRESH, SECRET, EXP, &out);
    aop_err refresh_before = auth_jwt_verify(tr, AUTH_TOKEN_REFRESH, SECRET, EXP - 1, &out);
    free(ta);
    free(tr);
    CHECK_INT(before, AOP_OK);
    CHECK_INT(at, AOP_ERR_TOKEN_EXPIRED);
    CHECK_INT(after, AOP_ERR_TOKEN_EXPIRED);
    CHECK_STR(sub_after, SUB); /* claims are filled for an expired access token */
    CHECK_INT(refresh_at, AOP_ERR_UNAUTHORIZED);
    CHECK_INT(refresh_before, AOP_OK);
}

static void jwt_expired_forgery_is_unauthorized(void)
{
    auth_claims a = claims_of(AUTH_TOKEN_ACCESS), out;
    char *t = auth_jwt_sign(&a, OTHER_SECRET);
    CHECK(t != NULL);
    aop_err right = auth_jwt_verify(t, AUTH_TOKEN_ACCESS, OTHER_SECRET, EXP + 10, &out);
    aop_err wrong = auth_jwt_verify(t, AUTH_TOKEN_ACCESS, SECRET, EXP + 10, &out);
    free(t);
    CHECK_INT(right, AOP_ERR_TOKEN_EXPIRED);
    CHECK_INT(wrong, AOP_ERR_UNAUTHORIZED);
}

static void jwt_alg_none_refused(void)
{
    char head[128], body[512], tok[1024];
    auth_claims out;
    b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}", head);
    b64url(ACCESS_JSON, body);
    snprintf(tok, sizeof(tok), "%s.%s.", head, body);
    CHECK_INT(auth_jwt_verify(tok, AUTH_TOKEN_ACCESS, SECRET, NOW, &out), AOP_ERR_UNAUTHORIZED);
    /* ...with a signature glued on, too. */
    snprintf(tok, sizeof(tok), "%s.%s.c2lnbmF0dXJl", head, body);
    CHECK_INT(auth_jwt_verify(tok, AUTH_TOKEN_ACCESS, SECRET, NOW, &out), AOP_ERR_UNAUTHORIZED);
}

static void jwt_other_algs_refused(void)
{
    auth_claims out;
    char *ok = forge(JWT_ALG_HS256, SECRET, ACCESS_JSON);
    char *hs384 = forge(JWT_ALG_HS384, SECRET, ACCESS_JSON);
    char *hs512 = forge(JWT_ALG_HS512, SECRET, ACCESS_JSON);
    CHECK(ok && hs384 && hs512);
    aop_err e_ok = auth_jwt_verify(ok, AUTH_TOKEN_ACCESS, SECRET, NOW, &out);
    aop_err e384 = auth_jwt_verify(hs384, AUTH_TOKEN_ACCESS, SECRET, NOW, &out);
    aop_err e512 = auth_jwt_verify(hs512, AUTH_TOKEN_ACCESS, SECRET, NOW, &out);
    free(ok);
    free(hs384);
    free(hs512);
    CHECK_INT(e_ok, AOP_OK); /* the same payload is fine as HS256 */
    CHECK_INT(e384, AOP_ERR_UNAUTHORIZED);
    CHECK_INT(e512, AOP_ERR_UNAUTHORIZED);
}

#define J_IDS "\"jti\":\"" JTI "\",\"fam\":\"" FAM "\""
#define J_TIMES "\"iat\":1700000000,\"exp\":1700000900"
#define J_REST "\"role\":\"user\",\"type\":\"access\"," J_IDS "," J_TIMES

static void jwt_bad_claims_refused(void)
{
    static const struct {
        const char *what, *json;
    } cases[] = {
        {"no iss", "{\"sub\":\"" SUB "\"," J_REST "}"},
        {"wrong iss", "{\"iss\":\"aop2\",\"sub\":\"" SUB "\"," J_REST "}"},
        {"iss case", "{\"iss\":\"AOP\",\"sub\":\"" SUB "\"," J_REST "}"},
        {"iss not a string", "{\"iss\":1,\"sub\":\"" SUB "\"," J_REST "}"},
        {"no sub", "{\"iss\":\"aop\"," J_REST "}"},
        {"sub not a uuid", "{\"iss\":\"aop\",\"sub\":\"alice\"," J_REST "}"},
        {"sub uppercase", "{\"iss\":\"aop\",\"sub\":\"0190A6E4-7B2C-7D3E-8F40-123456789ABC\"," J_REST "}"},
        {"sub no hyphens", "{\"iss\":\"aop\",\"sub\":\"0190a6e47b2c7d3e8f40123456789abc\"," J_REST "}"},
        {"sub too long", "{\"iss\":\"aop\",\"sub\":\"" SUB "0\"," J_REST "}"},
        {"sub a number", "{\"iss\":\"aop\",\"sub\":7," J_REST "}"},
        {"no jti", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"access\","
                   "\"fam\":\"" FAM "\"," J_TIMES "}"},
        {"no fam", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"access\","
                   "\"jti\":\"" JTI "\"," J_TIMES "}"},
        {"bad jti", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"access\","
                    "\"jti\":\"x\",\"fam\":\"" FAM "\"," J_TIMES "}"},
        {"no role", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"type\":\"access\"," J_IDS "," J_TIMES "}"},
        {"bad role", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"root\",\"type\":\"access\","
                     J_IDS "," J_TIMES "}"},
        {"role case", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"Admin\",\"type\":\"access\","
                      J_IDS "," J_TIMES "}"},
        {"no type", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\"," J_IDS "," J_TIMES "}"},
        {"bad type", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"id\","
                     J_IDS "," J_TIMES "}"},
        {"no iat", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"access\","
                   J_IDS ",\"exp\":1700000900}"},
        {"no exp", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"access\","
                   J_IDS ",\"iat\":1700000000}"},
        {"exp a string", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"access\","
                         J_IDS ",\"iat\":1700000000,\"exp\":\"1700000900\"}"},
        {"exp a real", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"access\","
                       J_IDS ",\"iat\":1700000000,\"exp\":1700000900.0}"},
        {"iat a string", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"access\","
                         J_IDS ",\"iat\":\"0\",\"exp\":1700000900}"},
        {"iat null", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"access\","
                     J_IDS ",\"iat\":null,\"exp\":1700000900}"},
        {"exp == iat", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"access\","
                       J_IDS ",\"iat\":1700000000,\"exp\":1700000000}"},
        {"exp < iat", "{\"iss\":\"aop\",\"sub\":\"" SUB "\",\"role\":\"user\",\"type\":\"access\","
                      J_IDS ",\"iat\":1700000900,\"exp\":1700000000}"},
        {"empty object", "{}"},
    };
    auth_claims out;
    char *base = forge(JWT_ALG_HS256, SECRET, ACCESS_JSON);
    CHECK(base != NULL);
    aop_err e = auth_jwt_verify(base, AUTH_TOKEN_ACCESS, SECRET, NOW, &out);
    free(base);
    CHECK_INT(e, AOP_OK); /* the cases differ from a token that passes */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *t = forge(JWT_ALG_HS256, SECRET, cases[i].json);
        if (!t) {
            unit_fail(__FILE__, __LINE__, cases[i].what);
            return;
        }
        e = auth_jwt_verify(t, AUTH_TOKEN_ACCESS, SECRET, NOW, &out);
        free(t);
        if (e != AOP_ERR_UNAUTHORIZED) {
            char m[128];
            snprintf(m, sizeof(m), "%s: not refused (%d)", cases[i].what, (int)e);
            unit_fail(__FILE__, __LINE__, m);
            return;
        }
    }
}

/* A token of exactly the length asked for, or NULL if padding cannot hit it. */
static char *forge_of_length(size_t want)
{
    char json[AUTH_TOKEN_MAX + 512];
    char pad[AUTH_TOKEN_MAX];
    for (size_t n = 2500; n < 3200; n++) {
        memset(pad, 'p', n);
        pad[n] = '\0';
        snprintf(json, sizeof(json), "{\"pad\":\"%s\",%s", pad, ACCESS_JSON + 1);
        char *t = forge(JWT_ALG_HS256, SECRET, json);
        if (t && strlen(t) == want)
            return t;
        free(t);
    }
    return NULL;
}

static void jwt_oversized_refused(void)
{
    auth_claims out;
    char *big = malloc(AUTH_TOKEN_MAX + 2);
    CHECK(big != NULL);
    memset(big, 'a', AUTH_TOKEN_MAX + 1);
    big[AUTH_TOKEN_MAX + 1] = '\0';
    aop_err e = auth_jwt_verify(big, AUTH_TOKEN_ACCESS, SECRET, NOW, &out);
    free(big);
    CHECK_INT(e, AOP_ERR_UNAUTHORIZED);
    /* A valid token right at the limit passes; one byte more is refused. */
    char *at = forge_of_length(AUTH_TOKEN_MAX), *over = forge_of_length(AUTH_TOKEN_MAX + 1);
    aop_err e_at = at ? auth_jwt_verify(at, AUTH_TOKEN_ACCESS, SECRET, NOW, &out) : AOP_ERR__COUNT;
    aop_err e_over = over ? auth_jwt_verify(over, AUTH_TOKEN_ACCESS, SECRET, NOW, &out) : AOP_OK;
    free(at);
    free(over);
    CHECK_INT(e_at, AOP_OK);
    CHECK_INT(e_over, AOP_ERR_UNAUTHORIZED);
}

static void jwt_garbage_refused(void)
{
    static const char *const junk[] = {
        "", ".", "..", "...", "a.b.c", "a.b", "a..c", ".b.c", "a.b.c.d", "!!!.@@@.###",
        "eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJIUzI1NiJ9.e30.", "e30.e30.e30", "a b.c d.e f",
        "Bearer x.y.z", "\xff\xfe.\x01.\x7f",
    };
    auth_claims out;
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        if (auth_jwt_verify(junk[i], AUTH_TOKEN_ACCESS, SECRET, NOW, &out) != AOP_ERR_UNAUTHORIZED ||
            auth_jwt_verify(junk[i], AUTH_TOKEN_REFRESH, SECRET, NOW, &out) != AOP_ERR_UNAUTHORIZED) {
            unit_fail(__FILE__, __LINE__, junk[i]);
            return;
        }
    }
    CHECK_INT(auth_jwt_verify(NULL, AUTH_TOKEN_ACCESS, SECRET, NOW, &out), AOP_ERR_UNAUTHORIZED);
    /* A real token with whitespace or padding around it is not the token. */
    auth_claims in = claims_of(AUTH_TOKEN_ACCESS);
    char *t = auth_jwt_sign(&in, SECRET);
    CHECK(t != NULL);
    char line[AUTH_TOKEN_MAX + 8];
    snprintf(line, sizeof(line), " %s", t);
    aop_err lead = auth_jwt_verify(line, AUTH_TOKEN_ACCESS, SECRET, NOW, &out);
    snprintf(line, sizeof(line), "%s\n", t);
    aop_err trail = auth_jwt_verify(line, AUTH_TOKEN_ACCESS, SECRET, NOW, &out);
    snprintf(line, sizeof(line), "%s=", t);
    aop_err pad = auth_jwt_verify(line, AUTH_TOKEN_ACCESS, SECRET, NOW, &out);
    free(t);
    CHECK_INT(lead, AOP_ERR_UNAUTHORIZED);
    CHECK_INT(trail, AOP_ERR_UNAUTHORIZED);
    CHECK_INT(pad, AOP_ERR_UNAUTHORIZED);
}

static void jwt_sign_refuses_bad_input(void)
{
    auth_claims c = claims_of(AUTH_TOKEN_ACCESS);
    CHECK(auth_jwt_sign(&c, "") == NULL);
    CHECK(auth_jwt_sign(&c, NULL) == NULL);
    CHECK(auth_jwt_sign(NULL, SECRET) == NULL);
    memcpy(c.role, "root", sizeof("root"));
    CHECK(auth_jwt_sign(&c, SECRET) == NULL);
    c = claims_of(AUTH_TOKEN_ACCESS);
    memcpy(c.sub, "not-a-uuid", sizeof("not-a-uuid"));
    CHECK(auth_jwt_sign(&c, SECRET) == NULL);
    c = claims_of(AUTH_TOKEN_ACCESS);
    c.exp = c.iat;
    CHECK(auth_jwt_sign(&c, SECRET) == NULL);
    c = claims_of(AUTH_TOKEN_ACCESS);
    c.type = (auth_token_type)5;
    CHECK(auth_jwt_sign(&c, SECRET) == NULL);
    /* A one-byte secret is a secret. */
    c = claims_of(AUTH_TOKEN_ACCESS);
    char *t = auth_jwt_sign(&c, "k");
    CHECK(t != NULL);
    auth_claims out;
    aop_err e = auth_jwt_verify(t, AUTH_TOKEN_ACCESS, "k", NOW, &out);
    free(t);
    CHECK_INT(e, AOP_OK);
}

/* ---- API keys ---- */

static int is_b64url(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

/* Lowercase hex SHA-256 through EVP, independent of the module. */
static void evp_sha256_hex(const char *s, char out[APIKEY_HASH_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void apikey_new_has_the_format(void)
{
    char key[APIKEY_LEN + 1], prefix[APIKEY_PREFIX_LEN + 1], hash[APIKEY_HASH_LEN + 1];
    char again[APIKEY_HASH_LEN + 1], evp[APIKEY_HASH_LEN + 1];
    auth_apikey_new(key, prefix, hash);
    CHECK_INT(strlen(key), APIKEY_LEN);
    CHECK(strncmp(key, "aop_", 4) == 0);
    for (int i = 4; i < APIKEY_LEN; i++)
        CHECK(is_b64url(key[i]));
    /* 43 characters carry 258 bits: the last one holds 4 data bits only. */
    CHECK(strchr("AEIMQUYcgkosw048", key[APIKEY_LEN - 1]) != NULL);
    CHECK_INT(strlen(prefix), APIKEY_PREFIX_LEN);
    CHECK(strncmp(prefix, key, APIKEY_PREFIX_LEN) == 0);
    CHECK_INT(strlen(hash), APIKEY_HASH_LEN);
    CHECK_INT(strspn(hash, "0123456789abcdef"), APIKEY_HASH_LEN);
    CHECK_INT(auth_apikey_hash(key, again), 0);
    CHECK_STR(again, hash);
    evp_sha256_hex(key, evp);
    CHECK_STR(evp, hash);
}

static void apikey_hash_known_vector(void)
{
    char hash[APIKEY_HASH_LEN + 1];
    /* printf %s KEY | sha256sum */
    CHECK_INT(auth_apikey_hash("aop_0123456789abcdefghijklmnopqrstuvwxyzABCDE-_", hash), 0);
    CHECK_STR(hash, "78bcf09916f0d75c2f4572b582a5a9814628b3910839cb5d04d0a8cc1e7d3351");
}

static void apikey_new_keys_differ(void)
{
    char k1[APIKEY_LEN + 1], p1[APIKEY_PREFIX_LEN + 1], h1[APIKEY_HASH_LEN + 1];
    char k2[APIKEY_LEN + 1], p2[APIKEY_PREFIX_LEN + 1], h2[APIKEY_HASH_LEN + 1];
    auth_apikey_new(k1, p1, h1);
    auth_apikey_new(k2, p2, h2);
    CHECK(strcmp(k1, k2) != 0);
    CHECK(strcmp(h1, h2) != 0);
}

static void apikey_malformed_refused(void)
{
    static const char *const bad[] = {
        "aoq_0123456789abcdefghijklmnopqrstuvwxyzABCDE-_",  /* prefix */
        "AOP_0123456789abcdefghijklmnopqrstuvwxyzABCDE-_",  /* prefix case */
        "aop-0123456789abcdefghijklmnopqrstuvwxyzABCDE-_",  /* separator */
        "aop_0123456789abcdefghijklmnopqrstuvwxyzABCDE-",   /* 46 */
        "aop_0123456789abcdefghijklmnopqrstuvwxyzABCDE-_x", /* 48 */
        "aop_0123456789abcdefghijklmnopqrstuvwxyzABCDE+_",  /* '+' */
        "aop_0123456789abcdefghijklmnopqrstuvwxyzABCDE/_",  /* '/' */
        "aop_0123456789abcdefghijklmnopqrstuvwxyzABCDE-=",  /* padding */
        "aop_0123456789abcdefghijklm opqrstuvwxyzABCDE-_",  /* space */
        "aop_0123456789abcdefghijklm\xc3\xa9pqrstuvwxyzABCDE-", /* UTF-8 */
        "",
        "aop_",
    };
    char hash[APIKEY_HASH_LEN + 1] = "untouched";
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (auth_apikey_hash(bad[i], hash) != -1) {
            unit_fail(__FILE__, __LINE__, bad[i]);
            return;
        }
    }
    CHECK_INT(auth_apikey_hash(NULL, hash), -1);
    CHECK_STR(hash, "untouched");
}

const unit_test jwt_tests[] = {
    TEST(jwt_round_trip_access),
    TEST(jwt_round_trip_refresh),
    TEST(jwt_wrong_secret_refused),
    TEST(jwt_tampering_refused),
    TEST(jwt_type_confusion_refused),
    TEST(jwt_expiry),
    TEST(jwt_expired_forgery_is_unauthorized),
    TEST(jwt_alg_none_refused),
    TEST(jwt_other_algs_refused),
    TEST(jwt_bad_claims_refused),
    TEST(jwt_oversized_refused),
    TEST(jwt_garbage_refused),
    TEST(jwt_sign_refuses_bad_input),
    TEST(apikey_new_has_the_format),
    TEST(apikey_hash_known_vector),
    TEST(apikey_new_keys_differ),
    TEST(apikey_malformed_refused),
    {NULL, NULL},
};
