/* Unit tests of render's byte budget (render.h) and of the measuring helpers
 * under it (core/json.h): sizes are exact, a budget is never passed, shared
 * values are measured no further than the budget, and what render allocates
 * stays within it. JSON in these tests is written with ' for ". */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/json.h"
#include "engine/render.h"
#include "unit.h"

/* Parses text with ' standing for ". */
static json_t *parse(const char *text)
{
    char *copy = strdup(text);
    for (char *p = copy; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_t *v = json_loads(copy, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    free(copy);
    return v;
}

/* The size of v's text as jansson writes it. */
static size_t dumped(const json_t *v)
{
    return json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Node outputs for the tests: ctx is an object mapping node id to output. */
static const json_t *outputs_of(void *ctx, const char *id, size_t len)
{
    return ctx ? json_object_getn(ctx, id, len) : NULL;
}

/* Renders template (JSON text) against in and nodes within max bytes;
 * *b is the budget afterwards. */
static json_t *render_within(const char *template, json_t *in, json_t *nodes, size_t max,
                             render_budget *b, char *err, size_t errlen)
{
    json_t *t = parse(template);
    render_scope sc = {in, outputs_of, nodes, NULL};
    *b = (render_budget){.max = max};
    err[0] = '\0';
    json_t *got = t ? render_value(t, &sc, b, err, errlen) : NULL;
    json_decref(t);
    return got;
}

/* An object {'s': <n bytes of c>}. */
static json_t *input_with(size_t n, char c)
{
    char *s = malloc(n);
    memset(s, c, n);
    json_t *in = json_pack("{s:s#}", "s", s, (int)n);
    free(s);
    return in;
}

/* A value of 2^levels logical copies of leaf (taken), each level an object
 * holding the level below twice: tiny in memory, huge as text. */
static json_t *doubling(json_t *leaf, int levels)
{
    for (int i = 0; i < levels; i++)
        leaf = json_pack("{s:O, s:o}", "k0", leaf, "k1", leaf);
    return leaf;
}

/* ---- sizes ---------------------------------------------------------------- */

static void string_size_matches_jansson(void)
{
    char s[128];
    for (int c = 1; c < 128; c++) {
        s[0] = 'a';
        s[1] = (char)c;
        json_t *v = json_stringn(s, 2);
        CHECK_INT(json_string_size(s, 2), dumped(v));
        json_decref(v);
    }
    const char *utf8 = "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80 \"q\" \\ /\t\x01";
    json_t *v = json_string(utf8);
    CHECK_INT(json_string_size(utf8, strlen(utf8)), dumped(v));
    json_decref(v);
    json_t *nul = json_stringn("a\0b", 3);
    CHECK_INT(json_string_size("a\0b", 3), dumped(nul));
    json_decref(nul);
}

static void size_within_is_exact_up_to_max(void)
{
    const char *docs[] = {"null", "true", "false", "0", "-12345678901234", "1.5", "1e300", "''",
                          "'x\\n\\u0001'", "[]", "{}", "[1, [2, [3, {}]], 'a']",
                          "{'k\\'ey': {'a': [true, null]}, 'b': 2.25}"};
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_t *v = parse(docs[i]);
        size_t n = dumped(v);
        CHECK(v && n > 0);
        CHECK_INT(json_size_within(v, n), n);
        CHECK_INT(json_size_within(v, n + 100), n);
        CHECK_INT(json_size_within(v, n - 1), n);
        json_decref(v);
    }
    CHECK_INT(json_size_within(NULL, 10), 11);
}

static void size_within_stops_at_max_on_shared_values(void)
{
    /* 2^60 copies of a 10-byte string as text: only a walk that stops at
     * max can answer at all. */
    json_t *v = doubling(json_string("abcdefgh"), 60);
    CHECK_INT(json_size_within(v, 1 << 20), (1 << 20) + 1);
    size_t len = 1;
    char *text = json_dumps_within(v, 1 << 16, &len);
    json_decref(v);
    CHECK(text == NULL);
    CHECK_INT(len, 0);
}

static void dumps_within_at_the_edge(void)
{
    json_t *v = parse("{'a': [1, 'two']}");
    size_t n = dumped(v), len = 0;
    char *text = json_dumps_within(v, n, &len);
    int ok = text && len == n && strcmp(text, "{\"a\":[1,\"two\"]}") == 0;
    free(text);
    CHECK(ok);
    CHECK(json_dumps_within(v, n - 1, &len) == NULL);
    CHECK(json_dumps_within(v, 0, &len) == NULL);
    json_decref(v);
}

/* ---- render --------------------------------------------------------------- */

/* used is the exact size of the result's text, for every kind of template. */
static void used_is_the_size_of_the_result(void)
{
    json_t *in = parse("{'s': 'hi \\'there\\'\\n', 'n': 42, 'r': 0.1, 'o': {'k': [1, null, 'x']},"
                       " 'e': ''}");
    json_t *nodes = parse("{'a': {'body': {'list': [10, 20]}}}");
    const char *templates[] = {
        "'{{input.s}}'", "'{{input.n}}'", "'{{input.r}}'", "'{{input.o}}'", "'{{input.missing}}'",
        "'a {{input.s}} b {{input.o}} c {{input.n}}'", "'{{input.e}}'", "'plain \\t text'",
        "{'\\u0001key \\'q\\'': '{{input.o}}', 'n': [1, 2.5, true, false, null, {}]}",
        "['{{nodes.a.output.body.list}}', 'x{{nodes.a.output}}', '{{nodes.b.output}}']",
        "{'deep': [[[['{{input}}']]]], '': ''}", "[]", "{}", "7", "null"};
    for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
        render_budget b;
        char err[256];
        json_t *got = render_within(templates[i], in, nodes, SIZE_MAX / 2, &b, err, sizeof(err));
        if (!got)
            printf("  %s: %s\n", templates[i], err);
        CHECK(got != NULL);
        size_t n = dumped(got);
        json_decref(got);
        if (b.used != n)
            printf("  %s: used %zu, text %zu\n", templates[i], b.used, n);
        CHECK_INT(b.used, n);
        CHECK(!b.over);
    }
    json_decref(in);
    json_decref(nodes);
}

/* A budget of exactly the size fits; one byte less does not, at every
 * depth of the template and whatever filled the missing byte. */
static void budget_is_exact(void)
{
    json_t *in = parse("{'s': 'hello', 'o': {'k': [1, 2]}}");
    const char *templates[] = {"'{{input.s}}'", "'<{{input.s}}>'", "'{{input.o}}'",
                               "{'a': ['{{input.o}}', 'x{{input.o}}'], 'b': 3}", "[1, 2]",
                               "{'key': null}"};
    for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
        render_budget b;
        char err[256];
        json_t *got = render_within(templates[i], in, NULL, SIZE_MAX / 2, &b, err, sizeof(err));
        size_t n = b.used;
        json_decref(got);
        got = render_within(templates[i], in, NULL, n, &b, err, sizeof(err));
        CHECK(got != NULL && b.used == n && !b.over);
        json_decref(got);
        got = render_within(templates[i], in, NULL, n - 1, &b, err, sizeof(err));
        CHECK(got == NULL && b.over);
        CHECK(strncmp(err, "rendered value is larger than its budget of", 43) == 0);
    }
    json_decref(in);
}

/* The budget is shared by the renders given it. */
static void budget_adds_up(void)
{
    json_t *in = parse("{'s': 'abc'}");
    render_scope sc = {in, NULL, NULL, NULL};
    render_budget b = {.max = 12};
    char err[128];
    json_t *one = render_string("{{input.s}}", 11, &sc, &b, err, sizeof(err));
    json_t *two = render_string("{{input.s}}", 11, &sc, &b, err, sizeof(err));
    CHECK(one && two && b.used == 10);
    json_t *three = render_string("{{input.s}}", 11, &sc, &b, err, sizeof(err));
    CHECK(three == NULL && b.over && b.used == 10);
    json_decref(one);
    json_decref(two);
    json_decref(in);
}

/* The audit's first case: 2,000 copies of a 200 KB string in one output. */
static void many_copies_are_refused(void)
{
    json_t *in = input_with(200000, 'x'), *t = json_array();
    for (int i = 0; i < 2000; i++)
        json_array_append_new(t, json_string("{{input.s}}"));
    render_scope sc = {in, NULL, NULL, NULL};
    render_budget b = {.max = 2 * 1024 * 1024};
    char err[128];
    json_t *got = render_value(t, &sc, &b, err, sizeof(err));
    CHECK(got == NULL && b.over);
    /* what was taken was given back: the input is referenced by in alone */
    CHECK_INT(json_object_get(in, "s")->refcount, 1);
    json_decref(t);
    json_decref(in);
}

/* The audit's second case, far deeper: a value of 2^50 logical copies,
 * whole and inside text, is refused within the budget; a small doubled
 * value that fits is shared, not copied. */
static void doubled_values_are_refused(void)
{
    json_t *nodes = json_pack("{s:o, s:o}", "prev", doubling(json_string("0123456789"), 50),
                              "small", doubling(json_string("0123456789"), 6));
    const char *templates[] = {"'{{nodes.prev.output}}'", "'x{{nodes.prev.output}}'",
                               "{'k0': '{{nodes.prev.output}}', 'k1': '{{nodes.prev.output}}'}"};
    render_budget b;
    char err[256];
    for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
        json_t *got = render_within(templates[i], NULL, nodes, 1 << 20, &b, err, sizeof(err));
        CHECK(got == NULL && b.over);
    }
    json_t *small = json_object_get(nodes, "small");
    json_t *got = render_within("'{{nodes.small.output}}'", NULL, nodes, 1 << 20, &b, err,
                                sizeof(err));
    int shared = got == small && b.used == dumped(small);
    json_decref(got);
    json_decref(nodes);
    CHECK(shared);
}

/* RENDER_MAX_BYTES still bounds one string when the budget is larger; the
 * budget, when it is the nearer limit, is reported as such. */
static void string_limit_and_budget_are_told_apart(void)
{
    json_t *in = input_with(RENDER_MAX_BYTES, 'y');
    render_budget b;
    char err[256];
    json_t *got = render_within("'{{input.s}}!'", in, NULL, 4 * RENDER_MAX_BYTES, &b, err,
                                sizeof(err));
    CHECK(got == NULL && !b.over);
    CHECK_STR(err, "rendered string is longer than 1048576 bytes");
    got = render_within("'{{input.s}}!'", in, NULL, RENDER_MAX_BYTES / 2, &b, err, sizeof(err));
    CHECK(got == NULL && b.over);
    CHECK_STR(err, "rendered value is larger than its budget of 524288 bytes");
    /* a whole placeholder is not text: only the budget applies */
    got = render_within("'{{input.s}}'", in, NULL, 4 * RENDER_MAX_BYTES, &b, err, sizeof(err));
    CHECK(got == json_object_get(in, "s"));
    json_decref(got);
    json_decref(in);
}

/* Escapes count: a string of quotes takes twice its length as text. */
static void escapes_count_against_the_budget(void)
{
    json_t *in = input_with(1000, '"');
    render_budget b;
    char err[256];
    json_t *got = render_within("'<{{input.s}}>'", in, NULL, 1500, &b, err, sizeof(err));
    CHECK(got == NULL && b.over);
    got = render_within("'<{{input.s}}>'", in, NULL, 2004, &b, err, sizeof(err));
    CHECK(got != NULL && b.used == 2004);
    json_decref(got);
    json_decref(in);
}

/* ---- what render allocates ------------------------------------------------ */

static size_t live, peak;

static void *counting_malloc(size_t n)
{
    void *p = malloc(n);
    if (p) {
        live += malloc_usable_size(p);
        if (live > peak)
            peak = live;
    }
    return p;
}

static void counting_free(void *p)
{
    if (p)
        live -= malloc_usable_size(p);
    free(p);
}

/* The most jansson held at once, beyond what it held before, while
 * rendering template within max. */
static size_t peak_of_render(const char *template, json_t *in, size_t max, bool *ok)
{
    json_t *t = parse(template);
    render_scope sc = {in, NULL, NULL, NULL};
    render_budget b = {.max = max};
    char err[256];
    live = peak = 0;
    json_set_alloc_funcs(counting_malloc, counting_free);
    json_t *got = render_value(t, &sc, &b, err, sizeof(err));
    json_set_alloc_funcs(malloc, free);
    *ok = got != NULL;
    json_decref(got);
    json_decref(t);
    return peak;
}

static void allocations_stay_within_the_budget(void)
{
    json_t *in = input_with(200000, 'z');
    bool ok;
    /* shared: nothing of the 200 KB is copied, however many times it appears */
    size_t p = peak_of_render("['{{input.s}}', '{{input.s}}', '{{input.s}}']", in, 1 << 20, &ok);
    CHECK(ok && p < 4096);
    /* text: the string once, within the budget */
    p = peak_of_render("['<{{input.s}}>']", in, 1 << 20, &ok);
    CHECK(ok && p < 200000 + 4096);
    /* refused text: never more than the budget */
    p = peak_of_render("['<{{input.s}}>', '<{{input.s}}>']", in, 300000, &ok);
    CHECK(!ok && p < 300000 + 4096);
    p = peak_of_render("['<{{input.s}}>']", in, 50000, &ok);
    CHECK(!ok && p < 4096);
    json_decref(in);
}

const unit_test render_budget_tests[] = {
    TEST(string_size_matches_jansson),
    TEST(size_within_is_exact_up_to_max),
    TEST(size_within_stops_at_max_on_shared_values),
    TEST(dumps_within_at_the_edge),
    TEST(used_is_the_size_of_the_result),
    TEST(budget_is_exact),
    TEST(budget_adds_up),
    TEST(many_copies_are_refused),
    TEST(doubled_values_are_refused),
    TEST(string_limit_and_budget_are_told_apart),
    TEST(escapes_count_against_the_budget),
    TEST(allocations_stay_within_the_budget),
    {NULL, NULL},
};
