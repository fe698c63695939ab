/* Unit tests of the pure core modules: err, buf, json. */
#include <stdio.h>
#include <stdlib.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/gzip.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/secure.h"
#include "unit.h"

static void err_maps_every_code_to_contract(void)
{
    CHECK_INT(err_http_status(AOP_ERR_VALIDATION), 400);
    CHECK_STR(err_code(AOP_ERR_VALIDATION), "VALIDATION_ERROR");
    CHECK_INT(err_http_status(AOP_ERR_CONFLICT), 409);
    CHECK_STR(err_code(AOP_ERR_CONFLICT), "CONFLICT");
    CHECK_INT(err_http_status(AOP_ERR_METHOD_NOT_ALLOWED), 405);
    CHECK_INT(err_http_status(AOP_ERR_PAYLOAD_TOO_LARGE), 413);
    CHECK_INT(err_http_status(AOP_ERR_UNSUPPORTED_MEDIA_TYPE), 415);
    CHECK_INT(err_http_status(AOP_ERR_HEADERS_TOO_LARGE), 431);
    CHECK_INT(err_http_status(AOP_ERR_URI_TOO_LONG), 414);
    CHECK_STR(err_code(AOP_ERR_INTERNAL), "INTERNAL_ERROR");
    CHECK_STR(err_code(AOP_ERR_UNAVAILABLE), "SERVICE_UNAVAILABLE");
    CHECK_INT(err_http_status(AOP_ERR_TOKEN_EXPIRED), 401);
}

static void err_every_entry_is_filled(void)
{
    for (int e = 0; e < AOP_ERR__COUNT; e++) {
        CHECK(err_http_status((aop_err)e) >= 200);
        CHECK(err_code((aop_err)e)[0] != '\0');
        CHECK(err_message((aop_err)e)[0] != '\0');
    }
    CHECK_STR(err_code((aop_err)999), "INTERNAL_ERROR");
    CHECK_INT(err_http_status((aop_err)-1), 500);
}

static void buf_respects_max(void)
{
    buf b;
    buf_init(&b, 8);
    CHECK_INT(buf_puts(&b, "12345678"), 0);
    CHECK_INT(buf_puts(&b, "9"), -1);
    CHECK_STR(b.data, "12345678");
    CHECK_INT(b.len, 8);
    buf_free(&b);
    buf_free(&b); /* twice is safe */
}

static void buf_json_escape_controls(void)
{
    buf b;
    buf_init(&b, 0);
    const char in[] = "a\"b\\c\n\x01";
    CHECK_INT(buf_json_escape(&b, in, sizeof(in) - 1), 0);
    CHECK_STR(b.data, "a\\\"b\\\\c\\n\\u0001");
    buf_free(&b);
}

static void str_to_ll_is_strict(void)
{
    long long v = 0;
    CHECK_INT(str_to_ll("42", 0, 100, &v), 0);
    CHECK_INT(v, 42);
    CHECK_INT(str_to_ll("42x", 0, 100, &v), -1);
    CHECK_INT(str_to_ll(" 42", 0, 100, &v), -1);
    CHECK_INT(str_to_ll("", 0, 100, &v), -1);
    CHECK_INT(str_to_ll("101", 0, 100, &v), -1);
    CHECK_INT(str_to_ll("-1", 0, 100, &v), -1);
    CHECK_INT(str_to_ll("99999999999999999999", 0, 100, &v), -1);
}

static void json_utf8_validation(void)
{
    CHECK(json_utf8_valid("plain", 5));
    CHECK(json_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    CHECK(!json_utf8_valid("\xff", 1));
    CHECK(!json_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    CHECK(!json_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!json_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!json_utf8_valid("\xe2\x82", 2));         /* truncated */
}

static void json_depth_counts_nesting_outside_strings(void)
{
    CHECK_INT(json_depth("{}", 2, 64), 1);
    CHECK_INT(json_depth("[[{\"a\":[1]}]]", 13, 64), 4);
    CHECK_INT(json_depth("{\"a\":\"[[[[\"}", 12, 64), 1);
    CHECK_INT(json_depth("{\"a\":\"\\\"[[\"}", 12, 64), 1);
    CHECK_INT(json_depth("1", 1, 64), 0);
}

static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);
    for (int i = 0; i < depth; i++) {
        s[i] = '[';
        s[depth * 2 - 1 - i] = ']';
    }
    s[depth * 2] = '\0';
    return s;
}

static void json_parse_body_limits(void)
{
    json_t *v = NULL;
    char why[256];
    char *ok = nested(64), *deep = nested(65);
    aop_err a = json_parse_body(ok, strlen(ok), &v, why, sizeof(why));
    json_decref(v);
    aop_err b = json_parse_body(deep, strlen(deep), &v, why, sizeof(why));
    free(ok);
    free(deep);
    CHECK_INT(a, AOP_OK);
    CHECK_INT(b, AOP_ERR_INVALID_JSON);
    CHECK(v == NULL);
    CHECK_INT(json_parse_body("{\"a\":1,\"a\":2}", 13, &v, why, sizeof(why)), AOP_ERR_INVALID_JSON);
    CHECK_INT(json_parse_body("{\"a\":\"\xff\"}", 9, &v, why, sizeof(why)), AOP_ERR_INVALID_JSON);
    CHECK_INT(json_parse_body("{\"a\":", 5, &v, why, sizeof(why)), AOP_ERR_INVALID_JSON);
    CHECK_INT(json_parse_body("{\"a\":[1,2]}", 11, &v, why, sizeof(why)), AOP_OK);
    CHECK(json_is_object(v));
    json_decref(v);
}

static void gzip_accept_encoding(void)
{
    CHECK(gzip_accepted("gzip"));
    CHECK(gzip_accepted("deflate, gzip;q=0.8"));
    CHECK(gzip_accepted("*"));
    CHECK(!gzip_accepted("gzip;q=0"));
    CHECK(!gzip_accepted("gzip; q=0.000"));
    CHECK(!gzip_accepted("identity"));
    CHECK(!gzip_accepted("gzipx"));
    CHECK(!gzip_accepted(NULL));
}

static void gzip_round_trip_header(void)
{
    char in[4096];
    memset(in, 'a', sizeof(in));
    char *z = NULL;
    size_t zl = 0;
    CHECK_INT(gzip_compress(in, sizeof(in), &z, &zl), 0);
    int magic = zl > 2 && (unsigned char)z[0] == 0x1f && (unsigned char)z[1] == 0x8b;
    free(z);
    CHECK(magic);
    CHECK(zl < sizeof(in) / 10);
}

static void ids_uuid7_shape(void)
{
    char a[UUID_STR_LEN], b[UUID_STR_LEN];
    ids_uuid7(a);
    ids_uuid7(b);
    CHECK_INT(strlen(a), 36);
    CHECK(a[14] == '7');
    CHECK(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b');
    CHECK(strcmp(a, b) != 0);
    CHECK(ids_request_id_ok("abc-123_x.y:z"));
    CHECK(!ids_request_id_ok("has space"));
    CHECK(!ids_request_id_ok(""));
    char long_id[200];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[199] = '\0';
    CHECK(!ids_request_id_ok(long_id));
}

static void clock_rfc3339_format(void)
{
    char out[25];
    clock_format_rfc3339(1795624715123LL, out);
    CHECK_STR(out, "2026-11-25T16:38:35.123Z");
}

static void secure_compare(void)
{
    CHECK(secure_str_eq("token", "token"));
    CHECK(!secure_str_eq("token", "tokeN"));
    CHECK(!secure_str_eq("token", "token2"));
    CHECK(!secure_str_eq(NULL, "x"));
}

const unit_test core_tests[] = {
    TEST(err_maps_every_code_to_contract),
    TEST(err_every_entry_is_filled),
    TEST(buf_respects_max),
    TEST(buf_json_escape_controls),
    TEST(str_to_ll_is_strict),
    TEST(json_utf8_validation),
    TEST(json_depth_counts_nesting_outside_strings),
    TEST(json_parse_body_limits),
    TEST(gzip_accept_encoding),
    TEST(gzip_round_trip_header),
    TEST(ids_uuid7_shape),
    TEST(clock_rfc3339_format),
    TEST(secure_compare),
    {NULL, NULL},
};
