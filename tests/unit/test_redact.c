/* Unit tests of secret redaction (core/redact.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/redact.h"
#include "unit.h"

/* text redacted with secrets (NULL-terminated); "=" when nothing changed. */
static char *redacted(const char *const *secrets, const char *text)
{
    redact_set s = {0};
    for (; *secrets; secrets++)
        redact_add(&s, *secrets, strlen(*secrets));
    size_t n;
    char *t = redact_text_new(&s, text, strlen(text), &n);
    redact_clear(&s);
    if (!t)
        return strdup("=");
    if (strlen(t) != n) {
        free(t);
        return strdup("(length mismatch)");
    }
    return t;
}

/* One secret, a text, what redaction makes of it ("=": unchanged). */
static const struct {
    const char *secret, *text, *want;
} one_secret[] = {
    /* every occurrence */
    {"sk-test-1234", "Bearer sk-test-1234", "Bearer [REDACTED]"},
    {"sk-test-1234", "sk-test-1234sk-test-1234", "[REDACTED][REDACTED]"},
    {"sk-test-1234", "key=sk-test-1234&x=sk-test-1234.", "key=[REDACTED]&x=[REDACTED]."},
    {"sk-test-1234", "nothing to see", "="},
    {"sk-test-1234", "sk-test-123", "="},
    {"abcd", "xabcdx", "x[REDACTED]x"}, /* REDACT_SHORT bytes: anywhere */
    /* quotes and backslashes as a JSON encoder writes them inside a string */
    {"k\"ey\\1", "{\"auth\":\"Bearer k\\\"ey\\\\1\"}", "{\"auth\":\"Bearer [REDACTED]\"}"},
    {"k\"ey\\1", "raw k\"ey\\1 too", "raw [REDACTED] too"},
    /* '/' escaped or not */
    {"a/b+c=", "x a\\/b+c= y a/b+c=", "x [REDACTED] y [REDACTED]"},
    /* control characters */
    {"line\nnext", "\"line\\nnext\"", "\"[REDACTED]\""},
    {"ctl\x01z", "ctl\\u0001z", "[REDACTED]"},
    /* non-ASCII as \uXXXX (Python's default), also above U+FFFF */
    {"caf\xc3\xa9-key", "caf\\u00e9-key", "[REDACTED]"},
    {"x\xf0\x9f\x98\x80y-key", "x\\ud83d\\ude00y-key", "[REDACTED]"},
    {"caf\xc3\xa9/key", "caf\\u00e9\\/key", "[REDACTED]"},
    /* < > & as Go writes them */
    {"a<b>&c", "a\\u003cb\\u003e\\u0026c", "[REDACTED]"},
    /* short secrets: only standing alone, never inside a word */
    {"ab", "Bearer ab", "Bearer [REDACTED]"},
    {"ab", "ab", "[REDACTED]"},
    {"ab", "(ab)", "([REDACTED])"},
    {"ab", "about cab ab1 1ab", "="},
    {"ab", "about ab", "about [REDACTED]"},
    {"x", "a x b", "a [REDACTED] b"},
    {"abc", "abc-abc", "[REDACTED]-[REDACTED]"},
};

static void redact_one_secret_cases(void)
{
    for (size_t i = 0; i < sizeof(one_secret) / sizeof(one_secret[0]); i++) {
        const char *sec[] = {one_secret[i].secret, NULL};
        char *got = redacted(sec, one_secret[i].text);
        int ok = strcmp(got, one_secret[i].want) == 0;
        char m[512];
        snprintf(m, sizeof(m), "case %zu: %s -> \"%s\", want \"%s\"", i, one_secret[i].text, got,
                 one_secret[i].want);
        free(got);
        if (!ok) {
            unit_fail(__FILE__, __LINE__, m);
            return;
        }
    }
}

static void redact_several_secrets(void)
{
    const char *sec[] = {"first-secret", "second-secret", "secret", NULL};
    char *got = redacted(sec, "first-secret second-secret secret");
    int ok = strcmp(got, "[REDACTED] [REDACTED] [REDACTED]") == 0;
    free(got);
    CHECK(ok);
    /* the longest of those starting at one place wins */
    const char *nested[] = {"abcd", "abcdefgh", NULL};
    got = redacted(nested, "abcdefgh abcd");
    ok = strcmp(got, "[REDACTED] [REDACTED]") == 0;
    free(got);
    CHECK(ok);
}

static void redact_set_limits(void)
{
    redact_set s = {0};
    CHECK(redact_empty(&s));
    CHECK_INT(redact_add(&s, "", 0), 0);
    CHECK(redact_empty(&s));
    for (int i = 0; i < REDACT_MAX; i++) {
        char sec[32];
        snprintf(sec, sizeof(sec), "secret-number-%d", i);
        CHECK_INT(redact_add(&s, sec, strlen(sec)), 0);
    }
    int full = redact_add(&s, "one-too-many", 12);
    size_t n = 0;
    char *none = redact_text_new(&s, "plain", 5, &n);
    redact_clear(&s);
    redact_clear(&s);
    CHECK_INT(full, -1);
    CHECK(none == NULL);
    CHECK(redact_empty(&s));
    /* an empty set touches nothing */
    CHECK(redact_text_new(&s, "secret-number-1", 15, &n) == NULL);
    json_t *v = json_string("secret-number-1");
    CHECK(redact_json(&s, v) == v);
    json_decref(v);
}

static void redact_cstr_cuts_at_a_character(void)
{
    redact_set s = {0};
    redact_add(&s, "k1", 2);
    char fits[32] = "k1 \xc3\xa9\xc3\xa9";        /* "k1 éé" */
    char cut[32] = "k1 \xc3\xa9\xc3\xa9";
    char plain[16] = "nothing";
    bool changed = redact_cstr(&s, fits, sizeof(fits));
    redact_cstr(&s, cut, 13);                       /* 12 bytes end inside the first é */
    bool unchanged = !redact_cstr(&s, plain, sizeof(plain));
    redact_clear(&s);
    CHECK(changed && unchanged);
    CHECK_STR(fits, "[REDACTED] \xc3\xa9\xc3\xa9");
    CHECK_STR(cut, "[REDACTED] ");
    CHECK_STR(plain, "nothing");
}

static void redact_json_strings_and_keys(void)
{
    redact_set s = {0};
    redact_add(&s, "sk-live-XYZ", 11);
    json_t *v = json_pack("{s:s, s:[s, i, {s:s}], s:s, s:s}", "authorization", "Bearer sk-live-XYZ",
                          "list", "sk-live-XYZ", 7, "deep", "x sk-live-XYZ y", "sk-live-XYZ",
                          "as a key", "plain", "kept");
    v = redact_json(&s, v);
    json_t *str = redact_json(&s, json_string("sk-live-XYZ!"));
    redact_clear(&s);
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    int ok = text && strcmp(text, "{\"[REDACTED]\":\"as a key\",\"authorization\":\"Bearer "
                                  "[REDACTED]\",\"list\":[\"[REDACTED]\",7,{\"deep\":\"x "
                                  "[REDACTED] y\"}],\"plain\":\"kept\"}") == 0;
    if (!ok)
        fprintf(stderr, "  got %s\n", text ? text : "(null)");
    free(text);
    json_decref(v);
    int ok2 = json_is_string(str) && strcmp(json_string_value(str), "[REDACTED]!") == 0;
    json_decref(str);
    CHECK(ok);
    CHECK(ok2);
}

const unit_test redact_tests[] = {
    TEST(redact_one_secret_cases),
    TEST(redact_several_secrets),
    TEST(redact_set_limits),
    TEST(redact_cstr_cuts_at_a_character),
    TEST(redact_json_strings_and_keys),
    {NULL, NULL},
};
