/* Unit tests of the core modules (err, buf, json, clock, ids) and the
 * slow-work pool. */
#include <pthread.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/gzip.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/secure.h"
#include "core/str.h"
#include "infra/workpool.h"
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

/* buf_printf formats once into the room it has, again after growing when
 * the text is longer; a fixed buffer never grows and fails whole. */
static void buf_printf_grows_and_fixed_holds(void)
{
    buf b;
    buf_init(&b, 0);
    CHECK_INT(buf_printf(&b, "%s-%d", "a", 1), 0);
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK_INT(buf_printf(&b, "[%s]", big), 0); /* past the first 256 bytes */
    CHECK_INT(b.len, 3 + 601);
    CHECK(b.data[b.len] == '\0' && b.data[3] == '[' && b.data[b.len - 1] == ']');
    buf_free(&b);
    buf_init(&b, 10);
    CHECK_INT(buf_printf(&b, "%s", "12345"), 0);
    CHECK_INT(buf_printf(&b, "%s", "123456"), -1); /* over the maximum: nothing added */
    CHECK_STR(b.data, "12345");
    buf_free(&b);
    char mem[8];
    buf_init_fixed(&b, mem, sizeof(mem));
    CHECK_INT(buf_puts(&b, "abc"), 0);
    CHECK_INT(buf_printf(&b, "%d", 1234), 0);
    CHECK_STR(mem, "abc1234");
    CHECK_INT(buf_printf(&b, "%d", 5), -1);
    CHECK_INT(buf_puts(&b, "x"), -1);
    CHECK_STR(mem, "abc1234");
    CHECK(b.data == mem);
}

static void str_cat_and_from_ll(void)
{
    char out[8];
    CHECK_INT(STR_CAT(out, sizeof(out), "ab", ":", "cd"), 5);
    CHECK_STR(out, "ab:cd");
    CHECK_INT(STR_CAT(out, sizeof(out), "abcd", "@", "efghij"), 11); /* cut, as snprintf */
    CHECK_STR(out, "abcd@ef");
    CHECK_INT(str_cat(out, 0, 1, (const char *[]){"x"}), 1);
    CHECK_INT(STR_CAT(out, sizeof(out), ""), 0);
    CHECK_STR(out, "");
    char n[STR_LL_MAX];
    const long long v[] = {0, 7, -7, 1234567890123LL, LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char want[32];
        snprintf(want, sizeof(want), "%lld", v[i]);
        CHECK_INT(str_from_ll(n, v[i]), strlen(want));
        CHECK_STR(n, want);
    }
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

/* Bytes that are not UTF-8 become U+FFFD; valid sequences stay as they are. */
static void json_string_lossy_replaces_bad_bytes(void)
{
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {"plain", 5, "plain"},
        {"a\xff" "b", 3, "a\xef\xbf\xbd" "b"},
        {"caf\xe9", 4, "caf\xef\xbf\xbd"},
        {"\xc3\xa9\xe2\x82", 4, "\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd"}, /* truncated euro */
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},                   /* overlong */
        {"\xed\xa0\x80x", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx"},     /* surrogate */
        {"", 0, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = json_string_lossy(cases[i].in, cases[i].len);
        int ok = v && json_string_length(v) == strlen(cases[i].want) &&
                 memcmp(json_string_value(v), cases[i].want, strlen(cases[i].want)) == 0;
        char *text = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
        ok = ok && text != NULL;
        free(text);
        json_decref(v);
        CHECK(ok);
    }
}

static void str_utf8_cut_ends_on_a_character(void)
{
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a é € 😀 z: 1+2+3+4+1 */
    CHECK_INT(str_utf8_cut(s, 11, 20), 11);
    CHECK_INT(str_utf8_cut(s, 11, 11), 11);
    CHECK_INT(str_utf8_cut(s, 11, 10), 10);
    CHECK_INT(str_utf8_cut(s, 11, 9), 6);
    CHECK_INT(str_utf8_cut(s, 11, 7), 6);
    CHECK_INT(str_utf8_cut(s, 11, 5), 3);
    CHECK_INT(str_utf8_cut(s, 11, 2), 1);
    CHECK_INT(str_utf8_cut(s, 11, 0), 0);
}

static void json_depth_counts_nesting_outside_strings(void)
{
    CHECK_INT(json_depth("{}", 2, 64), 1);
    CHECK_INT(json_depth("[[{\"a\":[1]}]]", 13, 64), 4);
    CHECK_INT(json_depth("{\"a\":\"[[[[\"}", 12, 64), 1);
    CHECK_INT(json_depth("{\"a\":\"\\\"[[\"}", 12, 64), 1);
    CHECK_INT(json_depth("1", 1, 64), 0);
}

static void member_is(const char *json, const char *key, const char *want)
{
    const char *v = NULL;
    size_t n = 0;
    int rc = json_member_text(json, strlen(json), key, &v, &n);
    if (!want) {
        CHECK_INT(rc, -1);
        return;
    }
    CHECK_INT(rc, 0);
    CHECK_INT((long long)n, (long long)strlen(want));
    CHECK(rc == 0 && strncmp(v, want, n) == 0);
}

static void json_member_text_finds_top_level_members_only(void)
{
    const char *wf = "{\"id\":\"x\",\"definition\":{\"nodes\":[{\"settings\":{\"timeoutMs\":1}}],"
                     "\"s\":\"\\\"settings\\\":\"},\"settings\":{\"timeoutMs\":5,\"a\":[1,{}]},"
                     "\"status\":\"active\"}";
    member_is(wf, "settings", "{\"timeoutMs\":5,\"a\":[1,{}]}");
    member_is(wf, "status", "\"active\"");
    member_is(wf, "id", "\"x\"");
    member_is(wf, "timeoutMs", NULL);
    member_is(wf, "nodes", NULL);
    member_is(" { \"a\" : 1 , \"b\" : [ 2 ] } ", "b", "[ 2 ]");
    member_is(" { \"a\" : 1 , \"b\" : [ 2 ] } ", "a", "1");
    member_is("{}", "a", NULL);
    member_is("[\"a\",1]", "a", NULL);
    member_is("{\"a\":", "a", NULL);
    member_is("{\"a", "a", NULL);
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
    clock_format_rfc3339(-1, out);
    CHECK_STR(out, "1969-12-31T23:59:59.999Z");
    clock_format_rfc3339(951782400000LL, out); /* a leap day of a year divisible by 400 */
    CHECK_STR(out, "2000-02-29T00:00:00.000Z");
    clock_format_rfc3339(4107542400000LL, out); /* 2100 is not a leap year */
    CHECK_STR(out, "2100-03-01T00:00:00.000Z");
}

/* The arithmetic against gmtime_r, a day and a bit at a time over 1900..2400. */
static void clock_rfc3339_format_matches_gmtime(void)
{
    int bad = 0;
    for (long long ms = -2208988800000LL; ms < 13569465600000LL && bad < 3;
         ms += 86400000LL + 3601001LL) {
        char out[25], want[64];
        time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(((ms % 1000) + 1000) % 1000));
        clock_format_rfc3339(ms, out);
        if (strcmp(out, want) != 0) {
            bad++;
            CHECK_STR(out, want);
        }
    }
    CHECK_INT(bad, 0);
}

static void secure_compare(void)
{
    CHECK(secure_str_eq("token", "token"));
    CHECK(!secure_str_eq("token", "tokeN"));
    CHECK(!secure_str_eq("token", "token2"));
    CHECK(!secure_str_eq(NULL, "x"));
}

/* ---- clock_parse_rfc3339 ---- */

/* The epoch ms of s, or a sentinel when the parse is refused. */
static long long parsed(const char *s, int date_only)
{
    int64_t ms = 0;
    return clock_parse_rfc3339(s, date_only, &ms) == 0 ? (long long)ms : -999;
}

/* Expected values computed with Python's datetime. */
static void clock_parse_exact_epoch_values(void)
{
    CHECK_INT(parsed("1970-01-01T00:00:00Z", 0), 0);
    CHECK_INT(parsed("2026-11-25T16:38:35Z", 0), 1795624715000LL);
    CHECK_INT(parsed("2000-03-01T00:00:00Z", 0), 951868800000LL);
    CHECK_INT(parsed("2026-12-31T23:59:59Z", 0), 1798761599000LL);
}

static void clock_parse_fractions_to_milliseconds(void)
{
    CHECK_INT(parsed("2026-11-25T16:38:35.1Z", 0), 1795624715100LL);
    CHECK_INT(parsed("2026-11-25T16:38:35.12Z", 0), 1795624715120LL);
    CHECK_INT(parsed("2026-11-25T16:38:35.123Z", 0), 1795624715123LL);
    CHECK_INT(parsed("2026-11-25T16:38:35.123456Z", 0), 1795624715123LL); /* truncated */
    CHECK_INT(parsed("2026-11-25T16:38:35.999999999Z", 0), 1795624715999LL);
    CHECK_INT(parsed("2026-11-25T16:38:35.Z", 0), -999);           /* no digit */
    CHECK_INT(parsed("2026-11-25T16:38:35.1234567890Z", 0), -999); /* > 9 digits */
}

static void clock_parse_offsets_shift_to_utc(void)
{
    CHECK_INT(parsed("2026-11-25T16:38:35+02:00", 0), 1795617515000LL);
    CHECK_INT(parsed("2026-11-25T16:38:35-05:30", 0), 1795644515000LL);
    CHECK_INT(parsed("2026-11-25T16:38:35.5+00:00", 0), 1795624715500LL);
    CHECK_INT(parsed("2026-11-25T16:38:35+2:00", 0), -999);
    CHECK_INT(parsed("2026-11-25T16:38:35+02:60", 0), -999);
    CHECK_INT(parsed("2026-11-25T16:38:35+24:00", 0), -999);
    CHECK_INT(parsed("2026-11-25T16:38:35+0200", 0), -999);
}

static void clock_parse_lowercase_t_and_z(void)
{
    CHECK_INT(parsed("2026-11-25t16:38:35z", 0), 1795624715000LL);
    CHECK_INT(parsed("2026-11-25t16:38:35.123z", 0), 1795624715123LL);
    CHECK_INT(parsed("2026-11-25 16:38:35Z", 0), -999);
}

static void clock_parse_date_only_when_allowed(void)
{
    CHECK_INT(parsed("2026-11-25", 1), 1795564800000LL);
    CHECK_INT(parsed("2026-11-25", 0), -999);
    CHECK_INT(parsed("2026-11-25T16:38:35Z", 1), 1795624715000LL); /* full form still fine */
    CHECK_INT(parsed("2026-11-25T", 1), -999);
    CHECK_INT(parsed("2026-1-25", 1), -999);
}

static void clock_parse_checks_the_calendar(void)
{
    CHECK_INT(parsed("2024-02-29T00:00:00Z", 0), 1709164800000LL);
    CHECK_INT(parsed("2000-02-29", 1), 951782400000LL); /* divisible by 400 */
    CHECK_INT(parsed("2023-02-29T00:00:00Z", 0), -999);
    CHECK_INT(parsed("1900-02-29", 1), -999); /* divisible by 100 */
    CHECK_INT(parsed("2026-04-31", 1), -999);
    CHECK_INT(parsed("2026-12-31", 1), 1798675200000LL);
    CHECK_INT(parsed("2026-13-01T00:00:00Z", 0), -999);
    CHECK_INT(parsed("2026-00-10T00:00:00Z", 0), -999);
    CHECK_INT(parsed("2026-11-00T00:00:00Z", 0), -999);
    CHECK_INT(parsed("2026-11-25T24:00:00Z", 0), -999);
    CHECK_INT(parsed("2026-11-25T23:60:00Z", 0), -999);
    CHECK_INT(parsed("2026-11-25T23:59:60Z", 0), -999);
}

static void clock_parse_refuses_malformed(void)
{
    int64_t ms = 0;
    CHECK_INT(clock_parse_rfc3339(NULL, 1, &ms), -1);
    CHECK_INT(parsed("", 1), -999);
    CHECK_INT(parsed("2026-11-25T16:38:35", 0), -999); /* no zone */
    CHECK_INT(parsed("2026-11-25T16:38:35Z ", 0), -999);
    CHECK_INT(parsed("2026-11-25T16:38:35Zx", 0), -999);
    CHECK_INT(parsed("2026-11-25T16:38:35+02:00x", 0), -999);
    CHECK_INT(parsed("2026-11-25x", 1), -999);
    CHECK_INT(parsed("2026-11-25T16:38Z", 0), -999);
    CHECK_INT(parsed("2026-11-2", 1), -999);
}

static void clock_format_parse_round_trip(void)
{
    static const long long vals[] = {0, 1, 999, -1, 1709164800000LL, 1795624715123LL,
                                     253402300799999LL /* 9999-12-31T23:59:59.999Z */};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char out[25];
        clock_format_rfc3339(vals[i], out);
        CHECK_INT(parsed(out, 0), vals[i]);
    }
}

/* ---- str_lower_utf8 ---- */

static void lower_utf8_ascii(void)
{
    arena a = {0};
    const char *r = str_lower_utf8("Hello WORLD 0-9_@[]{}", &a);
    int ok = strcmp(r, "hello world 0-9_@[]{}") == 0;
    arena_free(&a);
    CHECK(ok);
}

/* Each pair: input, expected; compared byte for byte. */
static int lower_all(const char *const (*pairs)[2], size_t n)
{
    arena a = {0};
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        const char *r = str_lower_utf8(pairs[i][0], &a);
        if (!r || strcmp(r, pairs[i][1]) != 0) {
            printf("  str_lower_utf8 of pair %zu gave", i);
            for (const char *c = r ? r : ""; *c; c++)
                printf(" %02x", (unsigned char)*c);
            printf("\n");
            ok = 0;
        }
    }
    arena_free(&a);
    return ok;
}

static void lower_utf8_latin_greek_cyrillic(void)
{
    static const char *const pairs[][2] = {
        {"\xc3\x9clrich@Example.COM", "\xc3\xbclrich@example.com"}, /* Ülrich */
        {"\xce\x91\xce\x92\xce\x93 \xce\xa3\xce\xa9",                /* ΑΒΓ ΣΩ */
         "\xce\xb1\xce\xb2\xce\xb3 \xcf\x83\xcf\x89"},               /* αβγ σω */
        {"\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2 \xd0\x81", /* ПРИВЕТ Ё */
         "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd1\x91"}, /* привет ё */
        {"\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9"},                   /* already lower */
    };
    CHECK(lower_all(pairs, sizeof(pairs) / sizeof(pairs[0])));
}

static void lower_utf8_length_changes(void)
{
    static const char *const pairs[][2] = {
        {"\xc8\xba", "\xe2\xb1\xa5"},                 /* U+023A -> U+2C65: 2 -> 3 bytes */
        {"x\xc8\xbay\xc8\xbaZ", "x\xe2\xb1\xa5y\xe2\xb1\xa5z"},
        {"\xf0\x90\x90\x80", "\xf0\x90\x90\xa8"},      /* U+10400 -> U+10428, 4 bytes */
        {"\xe2\x84\xaa", "k"},                         /* KELVIN SIGN -> 'k': 3 -> 1 */
    };
    CHECK(lower_all(pairs, sizeof(pairs) / sizeof(pairs[0])));
}

static void lower_utf8_keeps_invalid_bytes(void)
{
    static const char *const pairs[][2] = {
        {"A\xffZ", "a\xffz"},
        {"A\xc3", "a\xc3"},                     /* truncated at the end */
        {"\xc3Z", "\xc3z"},                     /* lead byte without continuation */
        {"\xc0\xafQ", "\xc0\xafq"},             /* overlong '/' */
        {"\xed\xa0\x80X", "\xed\xa0\x80x"},     /* surrogate */
        {"\xf4\x90\x80\x80X", "\xf4\x90\x80\x80x"}, /* > U+10FFFF */
        {"\x80\xc3\x9c", "\x80\xc3\xbc"},       /* stray continuation, then Ü */
        {"\xe2\x82Q", "\xe2\x82q"},             /* truncated 3-byte */
    };
    CHECK(lower_all(pairs, sizeof(pairs) / sizeof(pairs[0])));
}

/* Long enough for an arena block of its own, so the sanitizer sees the end of
 * the output: every character grows from 2 to 3 bytes. */
static void lower_utf8_long_text_grows(void)
{
    enum { CHARS = 3000 };
    char *in = malloc(2 * CHARS + 1);
    for (int i = 0; i < CHARS; i++)
        memcpy(in + 2 * i, "\xc8\xba", 2);
    in[2 * CHARS] = '\0';
    arena a = {0};
    const char *r = str_lower_utf8(in, &a);
    int ok = strlen(r) == 3 * CHARS;
    for (int i = 0; ok && i < CHARS; i++)
        ok = memcmp(r + 3 * i, "\xe2\xb1\xa5", 3) == 0;
    arena_free(&a);
    free(in);
    CHECK(ok);
}

static void lower_utf8_empty(void)
{
    arena a = {0};
    const char *r = str_lower_utf8("", &a);
    int ok = r != NULL && r[0] == '\0';
    arena_free(&a);
    CHECK(ok);
}

/* ---- ids_uuid7 ---- */

/* 1 when s is a lowercase hyphenated UUID of version 7 and variant 10xx. */
static int uuid7_well_formed(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return s[14] == '7' && strchr("89ab", s[19]) != NULL;
}

/* The 48-bit millisecond timestamp at the front of a UUIDv7. */
static long long uuid7_ms(const char *s)
{
    long long v = 0;
    for (int i = 0; i < 13; i++) {
        if (s[i] == '-')
            continue;
        v = v * 16 + (s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10);
    }
    return v;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* 1 when the n ids (UUID_STR_LEN apart) are all well formed and distinct; sorts them. */
static int ids_all_good(char (*ids)[UUID_STR_LEN], size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!uuid7_well_formed(ids[i]))
            return 0;
    qsort(ids, n, UUID_STR_LEN, cmp_id);
    for (size_t i = 1; i < n; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            return 0;
    return 1;
}

#define MANY_IDS 5000

static void uuid7_many_distinct_and_well_formed(void)
{
    char(*ids)[UUID_STR_LEN] = malloc(MANY_IDS * UUID_STR_LEN);
    for (int i = 0; i < MANY_IDS; i++)
        ids_uuid7(ids[i]);
    int ok = ids_all_good(ids, MANY_IDS);
    free(ids);
    CHECK(ok);
}

static void uuid7_time_ordered_prefix(void)
{
    char a[UUID_STR_LEN], b[UUID_STR_LEN];
    long long before = (long long)clock_now_ms();
    ids_uuid7(a);
    nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
    ids_uuid7(b);
    long long after = (long long)clock_now_ms();
    CHECK(uuid7_ms(a) >= before);
    CHECK(uuid7_ms(b) <= after);
    CHECK(uuid7_ms(b) - uuid7_ms(a) >= 2);
    CHECK(strncmp(a, b, 13) < 0);
    CHECK(strcmp(a, b) < 0);
}

#define ID_THREADS 4
#define IDS_PER_THREAD 1000

static void *make_ids(void *p)
{
    char(*ids)[UUID_STR_LEN] = p;
    for (int i = 0; i < IDS_PER_THREAD; i++)
        ids_uuid7(ids[i]);
    return NULL;
}

static void uuid7_distinct_across_threads(void)
{
    char(*ids)[UUID_STR_LEN] = calloc(ID_THREADS * IDS_PER_THREAD, UUID_STR_LEN);
    pthread_t th[ID_THREADS];
    int started = 0;
    for (; started < ID_THREADS; started++)
        if (pthread_create(&th[started], NULL, make_ids, ids + started * IDS_PER_THREAD) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    int ok = started == ID_THREADS && ids_all_good(ids, ID_THREADS * IDS_PER_THREAD);
    free(ids);
    CHECK_INT(started, ID_THREADS);
    CHECK(ok);
}

/* ---- workpool ---- */

static void count_job(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void slow_count_job(void *arg)
{
    nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* Waits up to 5 s for *n to reach want; 1 when it did. */
static int wait_for(atomic_int *n, int want)
{
    for (int i = 0; i < 5000 && atomic_load(n) < want; i++)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    return atomic_load(n) >= want;
}

static void workpool_reserve_refuses_past_queue_max(void)
{
    workpool *p = workpool_new(1, 3);
    CHECK(p != NULL);
    int got[5];
    for (int i = 0; i < 5; i++)
        got[i] = workpool_reserve(p);
    workpool_unreserve(p);
    int again = workpool_reserve(p), full = workpool_reserve(p);
    for (int i = 0; i < 3; i++)
        workpool_unreserve(p);
    workpool_free(p);
    CHECK(got[0] && got[1] && got[2]);
    CHECK(!got[3] && !got[4]);
    CHECK(again);
    CHECK(!full);
}

static void workpool_finished_job_frees_its_place(void)
{
    atomic_int n = 0;
    workpool *p = workpool_new(2, 2);
    CHECK(p != NULL);
    int r1 = workpool_reserve(p), r2 = workpool_reserve(p), r3 = workpool_reserve(p);
    if (r1)
        workpool_submit(p, count_job, &n);
    if (r2)
        workpool_submit(p, count_job, &n);
    int done = wait_for(&n, 2);
    /* The worker gives the place back just after the job returns. */
    int again = 0;
    for (int i = 0; i < 5000 && !again; i++) {
        again = workpool_reserve(p);
        if (!again)
            nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    if (again)
        workpool_unreserve(p);
    workpool_free(p);
    CHECK(r1 && r2 && !r3);
    CHECK(done);
    CHECK(again);
}

static void workpool_wakes_an_idle_thread(void)
{
    atomic_int n = 0;
    workpool *p = workpool_new(1, 4);
    CHECK(p != NULL);
    int done[2] = {0, 0};
    for (int round = 0; round < 2; round++) {
        /* Let the thread go to sleep on an empty queue first. */
        nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
        if (workpool_reserve(p))
            workpool_submit(p, count_job, &n);
        done[round] = wait_for(&n, round + 1);
    }
    workpool_free(p);
    CHECK(done[0]);
    CHECK(done[1]);
}

static void workpool_runs_every_job(void)
{
    atomic_int n = 0;
    workpool *p = workpool_new(3, 200);
    CHECK(p != NULL);
    int reserved = 0;
    for (int i = 0; i < 200; i++) {
        if (workpool_reserve(p)) {
            reserved++;
            workpool_submit(p, count_job, &n);
        }
    }
    int all = wait_for(&n, 200);
    workpool_free(p);
    CHECK_INT(reserved, 200);
    CHECK(all);
    CHECK_INT(atomic_load(&n), 200);
}

#define ORDER_JOBS 20

typedef struct {
    int order[ORDER_JOBS];
    int next;
} order_log;

typedef struct {
    order_log *log;
    int id;
} order_job;

static void record_order(void *arg)
{
    order_job *j = arg;
    j->log->order[j->log->next++] = j->id; /* one thread: no race */
}

static void workpool_one_thread_runs_in_submission_order(void)
{
    order_log log = {.next = 0};
    order_job jobs[ORDER_JOBS];
    workpool *p = workpool_new(1, ORDER_JOBS);
    CHECK(p != NULL);
    for (int i = 0; i < ORDER_JOBS; i++) {
        jobs[i] = (order_job){.log = &log, .id = i};
        if (workpool_reserve(p))
            workpool_submit(p, record_order, &jobs[i]);
    }
    workpool_free(p);
    CHECK_INT(log.next, ORDER_JOBS);
    for (int i = 0; i < ORDER_JOBS; i++)
        CHECK_INT(log.order[i], i);
}

static void workpool_free_runs_queued_jobs(void)
{
    atomic_int n = 0;
    workpool *p = workpool_new(1, 20);
    CHECK(p != NULL);
    int reserved = 0;
    /* The first job keeps the only thread busy while the rest wait in the queue. */
    for (int i = 0; i < 11; i++) {
        if (workpool_reserve(p)) {
            reserved++;
            workpool_submit(p, i == 0 ? slow_count_job : count_job, &n);
        }
    }
    workpool_free(p);
    CHECK_INT(reserved, 11);
    CHECK_INT(atomic_load(&n), 11);
}

#define SUBMITTERS 4
#define JOBS_PER_SUBMITTER 250

typedef struct {
    workpool *p;
    atomic_int *n;
    int refused;
} submitter;

static void *submit_many(void *arg)
{
    submitter *s = arg;
    for (int i = 0; i < JOBS_PER_SUBMITTER; i++) {
        if (workpool_reserve(s->p))
            workpool_submit(s->p, count_job, s->n);
        else
            s->refused++;
    }
    return NULL;
}

static void workpool_jobs_from_several_threads(void)
{
    atomic_int n = 0;
    workpool *p = workpool_new(2, SUBMITTERS * JOBS_PER_SUBMITTER);
    CHECK(p != NULL);
    submitter s[SUBMITTERS];
    pthread_t th[SUBMITTERS];
    int started = 0;
    for (; started < SUBMITTERS; started++) {
        s[started] = (submitter){.p = p, .n = &n};
        if (pthread_create(&th[started], NULL, submit_many, &s[started]) != 0)
            break;
    }
    int refused = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        refused += s[i].refused;
    }
    workpool_free(p);
    CHECK_INT(started, SUBMITTERS);
    CHECK_INT(refused, 0);
    CHECK_INT(atomic_load(&n), SUBMITTERS * JOBS_PER_SUBMITTER);
}

static void workpool_free_null_is_safe(void)
{
    workpool_free(NULL);
    workpool *p = workpool_new(2, 1);
    CHECK(p != NULL);
    workpool_free(p); /* idle threads, empty queue */
}


const unit_test core_tests[] = {
    TEST(err_maps_every_code_to_contract),
    TEST(err_every_entry_is_filled),
    TEST(buf_respects_max),
    TEST(buf_json_escape_controls),
    TEST(buf_printf_grows_and_fixed_holds),
    TEST(str_cat_and_from_ll),
    TEST(str_to_ll_is_strict),
    TEST(json_utf8_validation),
    TEST(json_string_lossy_replaces_bad_bytes),
    TEST(str_utf8_cut_ends_on_a_character),
    TEST(json_depth_counts_nesting_outside_strings),
    TEST(json_member_text_finds_top_level_members_only),
    TEST(json_parse_body_limits),
    TEST(gzip_accept_encoding),
    TEST(gzip_round_trip_header),
    TEST(ids_uuid7_shape),
    TEST(clock_rfc3339_format),
    TEST(clock_rfc3339_format_matches_gmtime),
    TEST(secure_compare),
    TEST(clock_parse_exact_epoch_values),
    TEST(clock_parse_fractions_to_milliseconds),
    TEST(clock_parse_offsets_shift_to_utc),
    TEST(clock_parse_lowercase_t_and_z),
    TEST(clock_parse_date_only_when_allowed),
    TEST(clock_parse_checks_the_calendar),
    TEST(clock_parse_refuses_malformed),
    TEST(clock_format_parse_round_trip),
    TEST(lower_utf8_ascii),
    TEST(lower_utf8_latin_greek_cyrillic),
    TEST(lower_utf8_length_changes),
    TEST(lower_utf8_keeps_invalid_bytes),
    TEST(lower_utf8_empty),
    TEST(lower_utf8_long_text_grows),
    TEST(uuid7_many_distinct_and_well_formed),
    TEST(uuid7_time_ordered_prefix),
    TEST(uuid7_distinct_across_threads),
    TEST(workpool_reserve_refuses_past_queue_max),
    TEST(workpool_finished_job_frees_its_place),
    TEST(workpool_wakes_an_idle_thread),
    TEST(workpool_runs_every_job),
    TEST(workpool_one_thread_runs_in_submission_order),
    TEST(workpool_free_runs_queued_jobs),
    TEST(workpool_jobs_from_several_threads),
    TEST(workpool_free_null_is_safe),
    {NULL, NULL},
};
