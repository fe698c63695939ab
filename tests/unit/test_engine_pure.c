/* Unit tests of the engine's pure modules: render, cond, pricing, netguard.
 * JSON in these tests is written with ' for " to keep it readable. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/cond.h"
#include "engine/netguard.h"
#include "engine/pricing.h"
#include "engine/render.h"
#include "unit.h"

/* ---- helpers ------------------------------------------------------------ */

/* A budget no test here comes near (render_budget_tests test budgets). */
#define ROOMY (&(render_budget){.max = SIZE_MAX / 2})

/* Parses text with ' standing for ". NULL on a typo in the test. */
static json_t *parse(const char *text)
{
    size_t n = strlen(text);
    char *copy = malloc(n + 1);
    json_error_t e;
    for (size_t i = 0; i <= n; i++)
        copy[i] = text[i] == '\'' ? '"' : text[i];
    json_t *v = json_loads(copy, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        printf("  test JSON: %s at %d: %s\n", e.text, e.position, copy);
    free(copy);
    return v;
}

/* 1 when v (may be NULL) dumps compactly to want (' for "); prints both otherwise. */
static int json_is_text(const json_t *v, const char *want)
{
    json_t *w = parse(want);
    char *got = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *exp = w ? json_dumps(w, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    int ok = got && exp && strcmp(got, exp) == 0;
    if (!ok)
        printf("  got %s, want %s\n", got ? got : "(null)", exp ? exp : "(null)");
    free(got);
    free(exp);
    json_decref(w);
    return ok;
}

/* Node outputs for the tests: ctx is an object mapping node id to output. */
static const json_t *outputs_of(void *ctx, const char *id, size_t len)
{
    return ctx ? json_object_getn(ctx, id, len) : NULL;
}

/* Renders v (JSON text, ' for ") against input and the node outputs nodes
 * (JSON text or NULL for none); the result, or NULL with the message in err. */
static json_t *render_text_of(const char *v, const char *input, const char *nodes, char *err,
                              size_t errlen)
{
    json_t *in = input ? parse(input) : NULL, *outs = nodes ? parse(nodes) : NULL;
    json_t *t = parse(v);
    render_scope sc = {in, outputs_of, outs, NULL};
    err[0] = '\0';
    json_t *got = render_value(t, &sc, ROOMY, err, errlen);
    json_decref(t);
    json_decref(in);
    json_decref(outs);
    return got;
}

/* 1 when rendering v gives want (all JSON text, ' for "). */
static int render_is(const char *v, const char *input, const char *nodes, const char *want)
{
    char err[256];
    json_t *got = render_text_of(v, input, nodes, err, sizeof(err));
    int ok = json_is_text(got, want);
    if (!got)
        printf("  error: %s\n", err);
    json_decref(got);
    return ok;
}

/* 1 when rendering v fails with a message starting with want. */
static int render_fails(const char *v, const char *input, const char *want)
{
    char err[256];
    json_t *got = render_text_of(v, input, NULL, err, sizeof(err));
    int ok = !got && strncmp(err, want, strlen(want)) == 0;
    if (!ok)
        printf("  error \"%s\", want \"%s...\"\n", err, want);
    json_decref(got);
    return ok;
}

/* ---- render --------------------------------------------------------------- */

static void render_whole_keeps_number_type(void)
{
    CHECK(render_is("'{{input.n}}'", "{'n': 42}", NULL, "42"));
    CHECK(render_is("'{{ input.r }}'", "{'r': 1.5}", NULL, "1.5"));
    CHECK(render_is("'{{input.b}}'", "{'b': false}", NULL, "false"));
    CHECK(render_is("'{{input.s}}'", "{'s': 'hi'}", NULL, "'hi'"));
}

static void render_whole_object_is_shared(void)
{
    json_t *in = parse("{'o': {'k': [1, {'x': 'y'}]}}");
    render_scope sc = {in, NULL, NULL, NULL};
    char err[128];
    json_t *orig = json_object_get(in, "o");
    size_t refs = orig->refcount;
    json_t *got = render_string("{{input.o}}", 11, &sc, ROOMY, err, sizeof(err));
    int shared = got == orig && orig->refcount == refs + 1;
    json_decref(got);
    int given_back = orig->refcount == refs;
    json_decref(in);
    CHECK(shared && given_back);
}

static void render_whole_null_and_missing_paths(void)
{
    CHECK(render_is("'{{input.z}}'", "{'z': null}", NULL, "null"));
    CHECK(render_is("'{{input.missing}}'", "{'z': 1}", NULL, "null"));
    CHECK(render_is("'{{input.z.deeper}}'", "{'z': 'str'}", NULL, "null"));
    CHECK(render_is("'{{input.n.0}}'", "{'n': 5}", NULL, "null"));
    CHECK(render_is("'{{input}}'", NULL, NULL, "null"));
    CHECK(render_is("'{{input.a}}'", NULL, NULL, "null"));
    CHECK(render_is("'{{nodes.x.output}}'", "{}", NULL, "null"));
    CHECK(render_is("'{{nodes.x.output}}'", "{}", "{'y': 1}", "null"));
    CHECK(render_is("'{{input}}'", "[1, 2]", NULL, "[1, 2]"));
}

static void render_array_index_paths(void)
{
    const char *in = "{'items': [{'name': 'a'}, {'name': 'b'}], 'm': {'0': 'zero'}}";
    CHECK(render_is("'{{input.items.1.name}}'", in, NULL, "'b'"));
    CHECK(render_is("'{{input.items.0}}'", in, NULL, "{'name': 'a'}"));
    CHECK(render_is("'{{input.items.2}}'", in, NULL, "null"));
    CHECK(render_is("'{{input.items.name}}'", in, NULL, "null"));
    CHECK(render_is("'{{input.items.01.name}}'", in, NULL, "'b'"));
    CHECK(render_is("'{{input.items.99999999999999999999999}}'", in, NULL, "null"));
    /* On an object a digit segment is a key. */
    CHECK(render_is("'{{input.m.0}}'", in, NULL, "'zero'"));
    CHECK(render_is("'{{input.m.00}}'", in, NULL, "null"));
}

static void render_node_outputs(void)
{
    const char *nodes = "{'fetch-1': {'body': {'list': [10, 20]}}, 'n2': 'plain'}";
    CHECK(render_is("'{{nodes.fetch-1.output.body.list.1}}'", "{}", nodes, "20"));
    CHECK(render_is("'{{nodes.n2.output}}'", "{}", nodes, "'plain'"));
    CHECK(render_is("'got {{nodes.n2.output}}!'", "{}", nodes, "'got plain!'"));
    CHECK(render_is("'{{nodes.fetch-2.output}}'", "{}", nodes, "null"));
    /* A scope without a node_output function: no node has an output. */
    json_t *t = parse("'{{nodes.n2.output}}'");
    render_scope sc = {NULL, NULL, NULL, NULL};
    char err[64];
    json_t *got = render_value(t, &sc, ROOMY, err, sizeof(err));
    int ok = json_is_null(got);
    json_decref(got);
    json_decref(t);
    CHECK(ok);
}

/* {{args...}}: an agent tool's arguments. A scope without them leaves a
 * string holding one as it is (the rest of it too), to render later. */
static void render_args_deferred_then_filled(void)
{
    json_t *in = parse("{'k': 'key'}");
    json_t *args = parse("{'city': 'Oslo', 'n': 3}");
    json_t *t = parse("{'url': 'http://x/{{args.city}}?k={{input.k}}', 'n': '{{args.n}}',"
                      " 'plain': '{{input.k}}'}");
    render_scope none = {in, NULL, NULL, NULL};
    render_scope with = {in, NULL, NULL, args};
    char err[128];
    json_t *later = render_value(t, &none, ROOMY, err, sizeof(err));
    json_t *want_later = parse("{'url': 'http://x/{{args.city}}?k={{input.k}}', 'n': '{{args.n}}',"
                               " 'plain': 'key'}");
    CHECK(later && json_equal(later, want_later));
    json_t *now = later ? render_value(later, &with, ROOMY, err, sizeof(err)) : NULL;
    json_t *want_now = parse("{'url': 'http://x/Oslo?k=key', 'n': 3, 'plain': 'key'}");
    CHECK(now && json_equal(now, want_now));
    json_decref(now);
    json_decref(want_now);
    json_decref(later);
    json_decref(want_later);
    json_decref(t);
    json_decref(args);
    json_decref(in);
}

static void render_text_of_each_type(void)
{
    const char *in = "{'s': 'hi', 'n': 42, 'r': 1.5, 'neg': -3, 't': true, 'f': false,"
                     " 'z': null, 'o': {'k': 1, 'a': [1, 'x']}, 'a': [1, 'x', null], 'e': ''}";
    CHECK(render_is("'s={{input.s}} n={{input.n}} r={{input.r}} neg={{input.neg}}'", in, NULL,
                    "'s=hi n=42 r=1.5 neg=-3'"));
    CHECK(render_is("'{{input.t}}/{{input.f}}/{{input.z}}/{{input.missing}}'", in, NULL,
                    "'true/false/null/null'"));
    CHECK(render_is("'o={{input.o}}'", in, NULL, "'o={\\'k\\':1,\\'a\\':[1,\\'x\\']}'"));
    CHECK(render_is("'a={{input.a}}'", in, NULL, "'a=[1,\\'x\\',null]'"));
    CHECK(render_is("'[{{input.e}}]'", in, NULL, "'[]'"));
    /* Anything outside the braces, spaces included, makes it text. */
    CHECK(render_is("' {{input.n}}'", in, NULL, "' 42'"));
    CHECK(render_is("'{{input.n}}{{input.n}}'", in, NULL, "'4242'"));
    CHECK(render_is("'{{input.s}} '", in, NULL, "'hi '"));
}

static void render_text_keeps_insertion_order(void)
{
    CHECK(render_is("'{{input.o}}.'", "{'o': {'z': 1, 'a': 2, 'm': 3}}", NULL,
                    "'{\\'z\\':1,\\'a\\':2,\\'m\\':3}.'"));
}

static void render_text_raw_utf8_and_nul(void)
{
    CHECK(render_is("'<{{input.s}}>'", "{'s': 'caf\\u00e9 \\u2603 \\'q\\''}", NULL,
                    "'<caf\\u00e9 \\u2603 \\'q\\'>'"));
    /* A string value holding a NUL byte keeps it (and its length). */
    json_t *in = json_pack("{s:s%}", "s", "a\0b", (size_t)3);
    render_scope sc = {in, NULL, NULL, NULL};
    char err[64];
    json_t *got = render_string("[{{input.s}}]", 13, &sc, ROOMY, err, sizeof(err));
    int ok = got && json_string_length(got) == 5 &&
             memcmp(json_string_value(got), "[a\0b]", 5) == 0;
    json_decref(got);
    json_decref(in);
    CHECK(ok);
}

static void render_value_walks_and_keeps_keys(void)
{
    CHECK(render_is("{'{{input.s}}': '{{input.s}}', 'list': ['{{input.n}}', 'x{{input.n}}', 7,"
                    " true, null, {'deep': ['{{input.o}}']}], 'num': 1.25}",
                    "{'s': 'hi', 'n': 3, 'o': {'k': 'v'}}", NULL,
                    "{'{{input.s}}': 'hi', 'list': [3, 'x3', 7, true, null,"
                    " {'deep': [{'k': 'v'}]}], 'num': 1.25}"));
    CHECK(render_is("[]", NULL, NULL, "[]"));
    CHECK(render_is("{}", NULL, NULL, "{}"));
    CHECK(render_is("'no placeholders } {'", NULL, NULL, "'no placeholders } {'"));
    CHECK(render_is("''", NULL, NULL, "''"));
}

static void render_value_copies_scalars(void)
{
    json_t *n = json_integer(5);
    char err[64];
    json_t *got = render_value(n, NULL, ROOMY, err, sizeof(err));
    int ok = got && got != n && json_integer_value(got) == 5;
    json_decref(got);
    json_decref(n);
    CHECK(ok);
    got = render_value(NULL, NULL, ROOMY, err, sizeof(err));
    CHECK(json_is_null(got));
    json_decref(got);
}

static void render_malformed_templates(void)
{
    CHECK(render_fails("'{{ bad }}'", "{}", "template: unknown template root"));
    CHECK(render_fails("'x {{input'", "{}", "template: unclosed"));
    CHECK(render_fails("'{{}}'", "{}", "template: empty placeholder"));
    CHECK(render_fails("'{{input..a}}'", "{}", "template: empty segment"));
    CHECK(render_fails("'{{nodes.a}}'", "{}", "template: "));
    CHECK(render_fails("'ok {{input}} then {{input.a b}}'", "{}", "template: invalid character"));
    /* Deep inside a value: the error comes up and nothing leaks. */
    CHECK(render_fails("{'a': [1, {'b': ['fine {{input}}', '{{oops}}']}], 'c': '{{input}}'}",
                       "{}", "template: unknown template root"));
}

static void render_error_without_buffer(void)
{
    render_scope sc = {NULL, NULL, NULL, NULL};
    CHECK(render_string("{{x", 3, &sc, ROOMY, NULL, 0) == NULL);
}

static void render_string_uses_len_not_nul(void)
{
    json_t *in = parse("{'a': 'A'}");
    render_scope sc = {in, NULL, NULL, NULL};
    char err[64];
    const char *s = "{{input.a}}tail that is not included";
    json_t *got = render_string(s, 11, &sc, ROOMY, err, sizeof(err));
    int ok = json_is_text(got, "'A'");
    json_decref(got);
    got = render_string(s, 15, &sc, ROOMY, err, sizeof(err));
    ok = ok && json_is_text(got, "'Atail'");
    json_decref(got);
    json_decref(in);
    CHECK(ok);
}

static void render_invalid_utf8_is_an_error(void)
{
    render_scope sc = {NULL, NULL, NULL, NULL};
    char err[64] = "";
    json_t *got = render_string("ab\xff", 3, &sc, ROOMY, err, sizeof(err));
    CHECK(got == NULL);
    CHECK_STR(err, "string is not valid UTF-8");
}

/* An input whose "s" is a string of n 'x' bytes. */
static json_t *input_of_len(size_t n)
{
    char *s = malloc(n);
    memset(s, 'x', n);
    json_t *in = json_pack("{s:s#}", "s", s, (int)n);
    free(s);
    return in;
}

/* Renders tmpl against in; returns the length of the result string or -1
 * with the message in err. */
static long long rendered_len(const char *tmpl, const json_t *in, char *err, size_t errlen)
{
    render_scope sc = {in, NULL, NULL, NULL};
    err[0] = '\0';
    json_t *got = render_string(tmpl, strlen(tmpl), &sc, ROOMY, err, errlen);
    long long n = got ? (long long)json_string_length(got) : -1;
    json_decref(got);
    return n;
}

static void render_max_bytes(void)
{
    char err[128];
    json_t *in = input_of_len(RENDER_MAX_BYTES - 1);
    long long ok_len = rendered_len("{{input.s}}x", in, err, sizeof(err));
    long long over = rendered_len("{{input.s}}xy", in, err, sizeof(err));
    json_decref(in);
    CHECK_INT(ok_len, RENDER_MAX_BYTES);
    CHECK_INT(over, -1);
    CHECK_STR(err, "rendered string is longer than 1048576 bytes");
    in = input_of_len(RENDER_MAX_BYTES / 2 + 1);
    over = rendered_len("{{input.s}}{{input.s}}", in, err, sizeof(err));
    json_decref(in);
    CHECK_INT(over, -1);
    CHECK_STR(err, "rendered string is longer than 1048576 bytes");
}

static void render_max_bytes_json_text(void)
{
    char err[128];
    /* The object's JSON text is over the limit though no string in it is. */
    json_t *in = json_object(), *o = json_array();
    json_object_set_new(in, "o", o);
    for (int i = 0; i < 120000; i++)
        json_array_append_new(o, json_string("abcdefgh"));
    long long over = rendered_len("o={{input.o}}", in, err, sizeof(err));
    /* As a whole placeholder it is the value itself, not text: no limit. */
    render_scope sc = {in, NULL, NULL, NULL};
    json_t *copy = render_string("{{input.o}}", 11, &sc, ROOMY, err, sizeof(err));
    int copied = json_array_size(copy) == 120000;
    json_decref(copy);
    json_decref(in);
    CHECK_INT(over, -1);
    CHECK(copied);
}

static void render_lookup_direct(void)
{
    json_t *in = parse("{'a': [0, {'b': 'c'}]}");
    render_scope sc = {in, NULL, NULL, NULL};
    template_ref ref;
    const char *s = "{{input.a.1.b}}";
    int whole = template_is_whole(s, strlen(s), &ref);
    const json_t *v = render_lookup(&ref, &sc);
    int ok = whole && json_is_string(v) && strcmp(json_string_value(v), "c") == 0;
    ok = ok && render_lookup(&ref, NULL) == NULL && render_lookup(NULL, &sc) == NULL;
    json_decref(in);
    CHECK(ok);
}

/* ---- cond ----------------------------------------------------------------- */

/* The result of op on two JSON texts (' for "; NULL for a NULL pointer);
 * -1 for an unknown op. */
static int cond_of(const char *op, const char *left, const char *right)
{
    json_t *l = left ? parse(left) : NULL, *r = right ? parse(right) : NULL;
    bool result = true;
    int rc = cond_eval(op, l, r, &result);
    json_decref(l);
    json_decref(r);
    return rc < 0 ? -1 : result;
}

static void cond_numbers_integer_and_real(void)
{
    CHECK_INT(cond_of("eq", "1", "1.0"), 1);
    CHECK_INT(cond_of("ne", "1", "1.0"), 0);
    CHECK_INT(cond_of("eq", "1", "1.5"), 0);
    CHECK_INT(cond_of("gt", "2", "1.5"), 1);
    CHECK_INT(cond_of("gt", "1.5", "2"), 0);
    CHECK_INT(cond_of("gte", "1", "1.0"), 1);
    CHECK_INT(cond_of("lte", "1.0", "1"), 1);
    CHECK_INT(cond_of("lt", "-2", "-1.5"), 1);
    CHECK_INT(cond_of("gt", "-1", "-1.5"), 1);
    CHECK_INT(cond_of("lt", "-1", "-0.5"), 1);
    CHECK_INT(cond_of("lt", "1e300", "5"), 0);
    CHECK_INT(cond_of("gt", "1e300", "9223372036854775807"), 1);
    CHECK_INT(cond_of("lt", "-1e300", "-9223372036854775807"), 1);
    /* Exact: 2^53 + 1 is not 2^53 although a double cannot tell them apart. */
    CHECK_INT(cond_of("eq", "9007199254740993", "9007199254740992.0"), 0);
    CHECK_INT(cond_of("gt", "9007199254740993", "9007199254740992.0"), 1);
    CHECK_INT(cond_of("eq", "9007199254740992", "9007199254740992.0"), 1);
    CHECK_INT(cond_of("lt", "9223372036854775807", "9223372036854775808.0"), 1);
    CHECK_INT(cond_of("eq", "0", "-0.0"), 1);
    CHECK_INT(cond_of("eq", "5", "5"), 1);
    CHECK_INT(cond_of("lt", "4", "5"), 1);
}

static void cond_deep_equality(void)
{
    CHECK_INT(cond_of("eq", "{'a': 1, 'b': [1, 2.0]}", "{'b': [1.0, 2], 'a': 1.0}"), 1);
    CHECK_INT(cond_of("eq", "{'a': 1}", "{'a': 1, 'b': 2}"), 0);
    CHECK_INT(cond_of("eq", "{'a': 1, 'c': 2}", "{'a': 1, 'b': 2}"), 0);
    CHECK_INT(cond_of("eq", "[1, 2]", "[2, 1]"), 0);
    CHECK_INT(cond_of("eq", "[1, 2]", "[1, 2, 3]"), 0);
    CHECK_INT(cond_of("eq", "[[{'x': [null]}]]", "[[{'x': [null]}]]"), 1);
    CHECK_INT(cond_of("eq", "[[{'x': [null]}]]", "[[{'x': [false]}]]"), 0);
    CHECK_INT(cond_of("eq", "'1'", "1"), 0);
    CHECK_INT(cond_of("ne", "'1'", "1"), 1);
    CHECK_INT(cond_of("eq", "'abc'", "'abc'"), 1);
    CHECK_INT(cond_of("eq", "'abc'", "'abd'"), 0);
    CHECK_INT(cond_of("eq", "'a\\u0000b'", "'a\\u0000c'"), 0);
    CHECK_INT(cond_of("eq", "true", "true"), 1);
    CHECK_INT(cond_of("eq", "true", "false"), 0);
    CHECK_INT(cond_of("eq", "null", NULL), 1);
    CHECK_INT(cond_of("eq", NULL, NULL), 1);
    CHECK_INT(cond_of("ne", NULL, "0"), 1);
    CHECK_INT(cond_of("eq", "{}", "[]"), 0);
    CHECK_INT(cond_of("ne", "{}", "[]"), 1);
}

static void cond_ordering(void)
{
    CHECK_INT(cond_of("lt", "'abc'", "'abd'"), 1);
    CHECK_INT(cond_of("lt", "'ab'", "'abc'"), 1);
    CHECK_INT(cond_of("gt", "'b'", "'abc'"), 1);
    CHECK_INT(cond_of("gte", "'x'", "'x'"), 1);
    CHECK_INT(cond_of("lte", "'x'", "'x'"), 1);
    CHECK_INT(cond_of("lt", "'Z'", "'a'"), 1);
    /* UTF-8 byte order is code point order: e-acute (U+00E9) sorts after z. */
    CHECK_INT(cond_of("gt", "'\\u00e9'", "'z'"), 1);
    CHECK_INT(cond_of("lt", "'\\u00e9'", "'\\u4e00'"), 1);
    CHECK_INT(cond_of("lt", "'\\ud83d\\ude00'", "'\\uffff'"), 0);
    /* Mismatched or unordered types: every ordering is false. */
    const char *ops[] = {"gt", "gte", "lt", "lte"};
    for (size_t i = 0; i < 4; i++) {
        CHECK_INT(cond_of(ops[i], "'5'", "5"), 0);
        CHECK_INT(cond_of(ops[i], "true", "false"), 0);
        CHECK_INT(cond_of(ops[i], "null", NULL), 0);
        CHECK_INT(cond_of(ops[i], "[1]", "[1]"), 0);
        CHECK_INT(cond_of(ops[i], "{}", "{}"), 0);
        CHECK_INT(cond_of(ops[i], NULL, "1"), 0);
    }
}

static void cond_contains(void)
{
    CHECK_INT(cond_of("contains", "'hello world'", "'lo w'"), 1);
    CHECK_INT(cond_of("contains", "'hello'", "'Hello'"), 0);
    CHECK_INT(cond_of("contains", "'hello'", "''"), 1);
    CHECK_INT(cond_of("contains", "''", "''"), 1);
    CHECK_INT(cond_of("contains", "'hi'", "'hi there'"), 0);
    CHECK_INT(cond_of("contains", "'a\\u0000bc'", "'bc'"), 1);
    CHECK_INT(cond_of("contains", "'123'", "2"), 0);
    CHECK_INT(cond_of("contains", "[1.0, 'x']", "1"), 1);
    CHECK_INT(cond_of("contains", "[1, 'x']", "'x'"), 1);
    CHECK_INT(cond_of("contains", "[1, 'x']", "'y'"), 0);
    CHECK_INT(cond_of("contains", "[{'a': [1]}]", "{'a': [1.0]}"), 1);
    CHECK_INT(cond_of("contains", "[null]", NULL), 1);
    CHECK_INT(cond_of("contains", "[]", NULL), 0);
    CHECK_INT(cond_of("contains", "{'k': 0}", "'k'"), 1);
    CHECK_INT(cond_of("contains", "{'k': 0}", "'v'"), 0);
    CHECK_INT(cond_of("contains", "{'k': 0}", "0"), 0);
    CHECK_INT(cond_of("contains", "12", "1"), 0);
    CHECK_INT(cond_of("contains", NULL, "'x'"), 0);
    CHECK_INT(cond_of("contains", "true", "true"), 0);
}

static void cond_exists(void)
{
    CHECK_INT(cond_of("exists", NULL, NULL), 0);
    CHECK_INT(cond_of("exists", "null", "1"), 0);
    CHECK_INT(cond_of("exists", "0", NULL), 1);
    CHECK_INT(cond_of("exists", "''", NULL), 1);
    CHECK_INT(cond_of("exists", "false", NULL), 1);
    CHECK_INT(cond_of("exists", "[]", "'ignored'"), 1);
}

static void cond_unknown_op(void)
{
    CHECK_INT(cond_of("EQ", "1", "1"), -1);
    CHECK_INT(cond_of("", "1", "1"), -1);
    CHECK_INT(cond_of("equals", "1", "1"), -1);
    CHECK_INT(cond_of("eq ", "1", "1"), -1);
    CHECK_INT(cond_of(NULL, "1", "1"), -1);
    /* An unknown op leaves *result false. */
    bool r = true;
    CHECK_INT(cond_eval("nope", NULL, NULL, &r), -1);
    CHECK(!r);
}

/* ---- pricing -------------------------------------------------------------- */

/* pricing_parse of text (' for "); the message goes into err. */
static pricing *pricing_of(const char *text, char *err, size_t errlen)
{
    size_t n = strlen(text);
    char *copy = malloc(n + 1);
    for (size_t i = 0; i <= n; i++)
        copy[i] = text[i] == '\'' ? '"' : text[i];
    err[0] = '\0';
    pricing *p = pricing_parse(copy, n, err, errlen);
    free(copy);
    return p;
}

/* 1 when parsing text fails with exactly the message want. */
static int pricing_fails(const char *text, const char *want)
{
    char err[512];
    pricing *p = pricing_of(text, err, sizeof(err));
    int ok = !p && strcmp(err, want) == 0;
    if (!ok)
        printf("  error \"%s\", want \"%s\"\n", err, want);
    pricing_free(p);
    return ok;
}

/* The cost of model with the given tokens, or -1 when it has no price. */
static double cost_of(const pricing *p, const char *model, long long in, long long out)
{
    double c = 123;
    if (!pricing_cost(p, model, in, out, &c))
        return c == 0 ? -1 : -2;
    return c;
}

static int near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

static void pricing_parses_and_costs(void)
{
    char err[256];
    pricing *p = pricing_of("{'_comment': 'x', 'models': {'m1': {'inputPerMillion': 2,"
                            " 'outputPerMillion': 8.5, 'note': 'ignored'},"
                            " 'free': {'inputPerMillion': 0, 'outputPerMillion': 0.0}}}",
                            err, sizeof(err));
    CHECK(p != NULL);
    size_t count = pricing_count(p);
    double c1 = cost_of(p, "m1", 1000000, 2000000);
    double c2 = cost_of(p, "m1", 1500, 300);
    double c3 = cost_of(p, "free", 1000, 1000);
    double c4 = cost_of(p, "m1", -5, 1000000);
    pricing_free(p);
    CHECK_INT(count, 2);
    CHECK(near(c1, 2 + 17));
    CHECK(near(c2, (1500 * 2 + 300 * 8.5) / 1e6));
    CHECK(near(c3, 0));
    CHECK(near(c4, 8.5));
}

static void pricing_prefix_lookup(void)
{
    char err[256];
    pricing *p = pricing_of("{'models':"
                            " {'gpt-4o': {'inputPerMillion': 2.5, 'outputPerMillion': 10},"
                            " 'gpt-4o-mini': {'inputPerMillion': 0.15, 'outputPerMillion': 0.6},"
                            " 'a': {'inputPerMillion': 1, 'outputPerMillion': 1},"
                            " 'a-b': {'inputPerMillion': 2, 'outputPerMillion': 2}}}",
                            err, sizeof(err));
    CHECK(p != NULL);
    double mini = cost_of(p, "gpt-4o-mini-2024-07-18", 1000000, 0);
    double full = cost_of(p, "gpt-4o-2024-08-06", 1000000, 0);
    double exact = cost_of(p, "gpt-4o-mini", 0, 1000000);
    double dash = cost_of(p, "gpt-4o-", 1000000, 0);
    double no_dash = cost_of(p, "gpt-4omni", 1000000, 0);
    double shorter = cost_of(p, "gpt-4", 1000000, 0);
    double ab = cost_of(p, "a-b", 1000000, 0);
    double abc = cost_of(p, "a-b-c", 1000000, 0);
    double ac = cost_of(p, "a-c", 1000000, 0);
    double case_diff = cost_of(p, "GPT-4o", 1000000, 0);
    pricing_free(p);
    CHECK(near(mini, 0.15));
    CHECK(near(full, 2.5));
    CHECK(near(exact, 0.6));
    CHECK(near(dash, 2.5));
    CHECK(near(no_dash, -1));
    CHECK(near(shorter, -1));
    CHECK(near(ab, 2));
    CHECK(near(abc, 2));
    CHECK(near(ac, 1));
    CHECK(near(case_diff, -1));
}

static void pricing_unknown_model_costs_zero(void)
{
    char err[256];
    pricing *p = pricing_of("{'models': {'m': {'inputPerMillion': 1, 'outputPerMillion': 1}}}",
                            err, sizeof(err));
    double c = 5;
    bool a = pricing_cost(p, "other", 10, 10, &c);
    double after_a = c;
    c = 5;
    bool b = pricing_cost(p, NULL, 10, 10, &c);
    double after_b = c;
    c = 5;
    bool d = pricing_cost(NULL, "m", 10, 10, &c);
    double after_d = c;
    double empty = cost_of(p, "", 1, 1);
    double dash = cost_of(p, "-m", 1, 1);
    pricing_free(p);
    CHECK(!a && after_a == 0);
    CHECK(!b && after_b == 0);
    CHECK(!d && after_d == 0);
    CHECK(near(empty, -1));
    CHECK(near(dash, -1));
    CHECK_INT(pricing_count(NULL), 0);
    pricing_free(NULL);
}

static void pricing_rejects_bad_json(void)
{
    CHECK(pricing_fails("{'models': ",
                        "invalid JSON at line 1 column 11: unexpected end of input"));
    CHECK(pricing_fails("{'models': {}} x",
                        "invalid JSON at line 1 column 16: text after the end of the value"));
    CHECK(pricing_fails("{'models': {}, 'models': {}}",
                        "invalid JSON at line 1 column 23: duplicate key"));
    CHECK(pricing_fails("{'models': {'m': {'inputPerMillion': 1, 'inputPerMillion': 1}}}",
                        "invalid JSON at line 1 column 57: duplicate key"));
    CHECK(pricing_fails("{'models': {'m\\u0000': {}}}",
                        "invalid JSON at line 1 column 21: \\u0000 in a key"));
    CHECK(pricing_fails("", "invalid JSON at line 1 column 0: unexpected end of input"));
}

static void pricing_rejects_bad_shapes(void)
{
    CHECK(pricing_fails("[]", "the top level must be an object"));
    CHECK(pricing_fails("5", "the top level must be an object"));
    CHECK(pricing_fails("{}", "models is required"));
    CHECK(pricing_fails("{'Models': {}}", "models is required"));
    CHECK(pricing_fails("{'models': []}", "models must be an object"));
    CHECK(pricing_fails("{'models': null}", "models must be an object"));
    CHECK(pricing_fails("{'models': {'m': 1}}", "models.m must be an object"));
    CHECK(pricing_fails("{'models': {'m': {'outputPerMillion': 1}}}",
                        "models.m.inputPerMillion must be a number >= 0"));
    CHECK(pricing_fails("{'models': {'m': {'inputPerMillion': 1}}}",
                        "models.m.outputPerMillion must be a number >= 0"));
    CHECK(pricing_fails("{'models': {'gpt-4o': {'inputPerMillion': '2.5', 'outputPerMillion': 1}}}",
                        "models.gpt-4o.inputPerMillion must be a number >= 0"));
    CHECK(pricing_fails("{'models': {'m': {'inputPerMillion': -1, 'outputPerMillion': 1}}}",
                        "models.m.inputPerMillion must be a number >= 0"));
    CHECK(pricing_fails("{'models': {'m': {'inputPerMillion': 1, 'outputPerMillion': -0.001}}}",
                        "models.m.outputPerMillion must be a number >= 0"));
    CHECK(pricing_fails("{'models': {'m': {'inputPerMillion': null, 'outputPerMillion': 1}}}",
                        "models.m.inputPerMillion must be a number >= 0"));
    CHECK(pricing_fails("{'models': {'m': {'inputPerMillion': true, 'outputPerMillion': 1}}}",
                        "models.m.inputPerMillion must be a number >= 0"));
    CHECK(pricing_fails("{'models': {'': {'inputPerMillion': 1, 'outputPerMillion': 1}}}",
                        "models: a model name must be 1 to 200 bytes"));
}

/* {"models": {...}} with n models named m0, m1, ...; the first named with
 * name_len 'n' bytes when name_len > 0. The caller frees. */
static char *models_text(size_t n, size_t name_len)
{
    size_t cap = n * 80 + name_len + 64, len = 0;
    char *s = malloc(cap);
    len += (size_t)snprintf(s, cap, "{\"models\": {");
    for (size_t i = 0; i < n; i++) {
        s[len++] = '"';
        if (i == 0 && name_len) {
            memset(s + len, 'n', name_len);
            len += name_len;
        } else {
            len += (size_t)snprintf(s + len, cap - len, "m%zu", i);
        }
        len += (size_t)snprintf(s + len, cap - len,
                                "\": {\"inputPerMillion\": %zu, \"outputPerMillion\": 1}%s", i,
                                i + 1 < n ? ", " : "");
    }
    snprintf(s + len, cap - len, "}}");
    return s;
}

/* The message of parsing models_text(n, name_len), "" when it parses; *count
 * gets the model count. */
static void parse_models(size_t n, size_t name_len, char *err, size_t errlen, size_t *count)
{
    char *text = models_text(n, name_len);
    err[0] = '\0';
    pricing *p = pricing_parse(text, strlen(text), err, errlen);
    *count = pricing_count(p);
    pricing_free(p);
    free(text);
}

static void pricing_limits(void)
{
    char err[256];
    size_t count;
    parse_models(PRICING_MAX_MODELS, 0, err, sizeof(err), &count);
    CHECK_STR(err, "");
    CHECK_INT(count, PRICING_MAX_MODELS);
    parse_models(PRICING_MAX_MODELS + 1, 0, err, sizeof(err), &count);
    CHECK_STR(err, "models has more than 10000 entries");
    parse_models(3, PRICING_MAX_NAME, err, sizeof(err), &count);
    CHECK_STR(err, "");
    CHECK_INT(count, 3);
    parse_models(3, PRICING_MAX_NAME + 1, err, sizeof(err), &count);
    CHECK_STR(err, "models: a model name must be 1 to 200 bytes");
}

static void pricing_many_models_lookup(void)
{
    char *text = models_text(5000, 0);
    pricing *p = pricing_parse(text, strlen(text), NULL, 0);
    free(text);
    int ok = p != NULL;
    for (size_t i = 0; ok && i < 5000; i += 7) {
        char name[32];
        snprintf(name, sizeof(name), "m%zu-2025", i);
        ok = near(cost_of(p, name, 1000000, 0), (double)i);
    }
    pricing_free(p);
    CHECK(ok);
}

/* Writes n bytes of text into dir/name; the path goes into path. */
static int write_file(const char *dir, const char *name, const char *text, size_t n, char *path,
                      size_t pathlen)
{
    snprintf(path, pathlen, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t put = n ? fwrite(text, 1, n, f) : 0;
    return fclose(f) == 0 && put == n ? 0 : -1;
}

/* 1 when loading path fails with a message starting with path + ": " + want. */
static int load_fails(const char *path, const char *want)
{
    char err[512], exp[512];
    pricing *p = pricing_load_file(path, err, sizeof(err));
    snprintf(exp, sizeof(exp), "%s: %s", path, want);
    int ok = !p && strncmp(err, exp, strlen(exp)) == 0;
    if (!ok)
        printf("  error \"%s\", want \"%s...\"\n", err, exp);
    pricing_free(p);
    return ok;
}

static void pricing_load_file_errors(void)
{
    char dir[] = "/tmp/aop-pricing-XXXXXX", good[96], bad[96], big[96], missing[96];
    CHECK(mkdtemp(dir) != NULL);
    const char *ok_text =
        "{\"models\": {\"m\": {\"inputPerMillion\": 1, \"outputPerMillion\": 3}}}";
    const char *bad_text = "{\"models\": {\"secret-content-here\": 1}, \"x\": \"more secret\"}";
    size_t big_len = PRICING_MAX_FILE + 1;
    char *big_text = malloc(big_len);
    memset(big_text, ' ', big_len);
    int w = write_file(dir, "good.json", ok_text, strlen(ok_text), good, sizeof(good)) |
            write_file(dir, "bad.json", bad_text, strlen(bad_text), bad, sizeof(bad)) |
            write_file(dir, "big.json", big_text, big_len, big, sizeof(big));
    free(big_text);
    snprintf(missing, sizeof(missing), "%s/missing.json", dir);
    char err[256];
    pricing *p = pricing_load_file(good, err, sizeof(err));
    double c = cost_of(p, "m", 0, 1000000);
    pricing_free(p);
    int r_missing = load_fails(missing, "cannot open: ");
    int r_dir = load_fails(dir, "is not a regular file");
    int r_big = load_fails(big, "is larger than 4 MiB");
    int r_bad = load_fails(bad, "models.secret-content-here must be an object");
    unlink(good);
    unlink(bad);
    unlink(big);
    rmdir(dir);
    CHECK_INT(w, 0);
    CHECK(near(c, 3));
    CHECK(r_missing && r_dir && r_big && r_bad);
    CHECK(pricing_load_file(NULL, err, sizeof(err)) == NULL);
}

static void pricing_default_matches_config_file(void)
{
    char err[256];
    json_error_t je;
    pricing *file = pricing_load_file("config/llm-pricing.json", err, sizeof(err));
    pricing *builtin = pricing_default();
    json_t *doc = json_load_file("config/llm-pricing.json", 0, &je);
    json_t *models = json_object_get(doc, "models");
    int ok = file && builtin && json_object_size(models) > 10 &&
             pricing_count(file) == json_object_size(models) &&
             pricing_count(builtin) == pricing_count(file) &&
             json_is_string(json_object_get(doc, "_comment"));
    const char *name;
    json_t *m;
    json_object_foreach(models, name, m) {
        double in = json_number_value(json_object_get(m, "inputPerMillion"));
        double out = json_number_value(json_object_get(m, "outputPerMillion"));
        if (!ok)
            break;
        ok = near(cost_of(builtin, name, 1000000, 0), in) &&
             near(cost_of(builtin, name, 0, 1000000), out) &&
             near(cost_of(file, name, 1000000, 0), in) &&
             near(cost_of(file, name, 0, 1000000), out);
        if (!ok)
            printf("  model %s differs between the file and the built-in copy\n", name);
    }
    json_decref(doc);
    pricing_free(file);
    pricing_free(builtin);
    CHECK(ok);
}

static void pricing_default_has_known_models(void)
{
    pricing *p = pricing_default();
    const char *names[] = {"gpt-4o",          "gpt-4o-mini",       "gpt-4.1",
                           "gpt-4.1-mini",    "gpt-4.1-nano",      "o3-mini",
                           "gpt-3.5-turbo",   "claude-3-5-sonnet", "claude-3-5-haiku",
                           "claude-3-opus",   "claude-sonnet-4",   "llama-3.1-8b-instruct",
                           "mistral-small"};
    int ok = p != NULL;
    for (size_t i = 0; ok && i < sizeof(names) / sizeof(names[0]); i++)
        ok = cost_of(p, names[i], 1000, 1000) > 0;
    double mini = cost_of(p, "gpt-4o-mini-2024-07-18", 1000000, 1000000);
    double sonnet = cost_of(p, "claude-3-5-sonnet-20241022", 1000000, 0);
    pricing_free(p);
    CHECK(ok);
    CHECK(near(mini, 0.15 + 0.6));
    CHECK(near(sonnet, 3));
}

/* ---- netguard ------------------------------------------------------------- */

/* netguard_blocked for an IPv4 or IPv6 address in text; -1 on a typo. */
static int blocked(const char *text)
{
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(80)};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    if (inet_pton(AF_INET, text, &in4.sin_addr) == 1)
        return netguard_blocked((const struct sockaddr *)&in4, sizeof(in4));
    if (inet_pton(AF_INET6, text, &in6.sin6_addr) == 1)
        return netguard_blocked((const struct sockaddr *)&in6, sizeof(in6));
    printf("  bad address in test: %s\n", text);
    return -1;
}

/* Checks each address against its expected verdict; prints the first miss. */
static int verdicts(const char *const *addrs, size_t n, int want)
{
    for (size_t i = 0; i < n; i++) {
        if (blocked(addrs[i]) != want) {
            printf("  %s: want %s\n", addrs[i], want ? "blocked" : "allowed");
            return 0;
        }
    }
    return 1;
}

#define VERDICTS(list, want) verdicts(list, sizeof(list) / sizeof(list[0]), want)

static void netguard_ipv4_range_edges(void)
{
    static const char *const bad[] = {
        "0.0.0.0",        "0.255.255.255",   "10.0.0.0",        "10.255.255.255",
        "100.64.0.0",     "100.127.255.255", "127.0.0.0",       "127.0.0.1",
        "127.255.255.255", "169.254.0.0",    "169.254.169.254", "169.254.255.255",
        "172.16.0.0",     "172.31.255.255",  "192.0.0.0",       "192.0.0.255",
        "192.0.2.0",      "192.0.2.255",     "192.168.0.0",     "192.168.255.255",
        "198.18.0.0",     "198.19.255.255",  "198.51.100.0",    "198.51.100.255",
        "203.0.113.0",    "203.0.113.255",   "224.0.0.0",       "239.255.255.255",
        "240.0.0.0",      "254.255.255.255", "255.255.255.255",
    };
    static const char *const good[] = {
        "1.0.0.0",        "9.255.255.255",   "11.0.0.0",        "100.63.255.255",
        "100.128.0.0",    "126.255.255.255", "128.0.0.0",       "169.253.255.255",
        "169.255.0.0",    "172.15.255.255",  "172.32.0.0",      "191.255.255.255",
        "192.0.1.0",      "192.0.1.255",     "192.0.3.0",       "192.167.255.255",
        "192.169.0.0",    "198.17.255.255",  "198.20.0.0",      "198.51.99.255",
        "198.51.101.0",   "203.0.112.255",   "203.0.114.0",     "223.255.255.255",
        "8.8.8.8",        "1.1.1.1",         "93.184.216.34",
    };
    CHECK(VERDICTS(bad, 1));
    CHECK(VERDICTS(good, 0));
}

static void netguard_ipv6_ranges(void)
{
    static const char *const bad[] = {
        "::", "::1", "fc00::", "fc00::1", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe80::", "fe80::1", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::1",
        "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ff00::", "ff02::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::", "2001:db8::1",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "100::", "100::1", "100::ffff:ffff:ffff:ffff",
        "2001::", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:1ff:ffff::1", "3fff::1",
        "3fff:fff:ffff::1", "64:ff9b:1::1", "100:0:0:1::",  "1fff:ffff::1", "4000::1",
        "e000::1", "::ffff:0:0:1",
    };
    static const char *const good[] = {
        "2606:4700:4700::1111", "2a00:1450:4001:81b::200e", "2001:200::1",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::", "2000::1",
        "3fff:1000::1", "3ffe::1", "2400:cb00::1",
    };
    CHECK(VERDICTS(bad, 1));
    CHECK(VERDICTS(good, 0));
}

static void netguard_ipv6_embedded_ipv4(void)
{
    static const char *const bad[] = {
        "::ffff:127.0.0.1",   "::ffff:10.0.0.1",     "::ffff:0.0.0.0",
        "::ffff:169.254.169.254", "::ffff:172.16.0.0", "::ffff:255.255.255.255",
        "::10.0.0.1",         "::127.0.0.1",         "::0.0.0.2",
        "64:ff9b::192.168.1.1", "64:ff9b::7f00:1",  "64:ff9b::a9fe:a9fe",
        "2002:0a00:0001::",   "2002:7f00:0001::1",   "2002:c0a8:0101:1::1",
        "2002:ac10::1",
    };
    static const char *const good[] = {
        "::ffff:8.8.8.8", "::ffff:172.15.255.255", "::ffff:172.32.0.0", "::8.8.8.8",
        "64:ff9b::8.8.8.8", "64:ff9b::101:101", "2002:0808:0808::1", "2002:ac20::1",
    };
    CHECK(VERDICTS(bad, 1));
    CHECK(VERDICTS(good, 0));
}

static void netguard_other_families_and_lengths(void)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    struct sockaddr_storage ss = {.ss_family = AF_PACKET};
    inet_pton(AF_INET, "8.8.8.8", &in4.sin_addr);
    inet_pton(AF_INET6, "2606:4700:4700::1111", &in6.sin6_addr);
    CHECK(netguard_blocked((const struct sockaddr *)&un, sizeof(un)));
    CHECK(netguard_blocked((const struct sockaddr *)&ss, sizeof(ss)));
    CHECK(netguard_blocked(NULL, sizeof(in4)));
    CHECK(!netguard_blocked((const struct sockaddr *)&in4, sizeof(in4)));
    CHECK(netguard_blocked((const struct sockaddr *)&in4, sizeof(in4) - 1));
    CHECK(netguard_blocked((const struct sockaddr *)&in4, 0));
    CHECK(!netguard_blocked((const struct sockaddr *)&in6, sizeof(in6)));
    CHECK(netguard_blocked((const struct sockaddr *)&in6, sizeof(in6) - 1));
    /* An AF_INET6 address that claims only an IPv4-sized length. */
    CHECK(netguard_blocked((const struct sockaddr *)&in6, sizeof(in4)));
}

const unit_test engine_pure_tests[] = {
    TEST(render_whole_keeps_number_type),
    TEST(render_whole_object_is_shared),
    TEST(render_whole_null_and_missing_paths),
    TEST(render_array_index_paths),
    TEST(render_node_outputs),
    TEST(render_args_deferred_then_filled),
    TEST(render_text_of_each_type),
    TEST(render_text_keeps_insertion_order),
    TEST(render_text_raw_utf8_and_nul),
    TEST(render_value_walks_and_keeps_keys),
    TEST(render_value_copies_scalars),
    TEST(render_malformed_templates),
    TEST(render_error_without_buffer),
    TEST(render_string_uses_len_not_nul),
    TEST(render_invalid_utf8_is_an_error),
    TEST(render_max_bytes),
    TEST(render_max_bytes_json_text),
    TEST(render_lookup_direct),
    TEST(cond_numbers_integer_and_real),
    TEST(cond_deep_equality),
    TEST(cond_ordering),
    TEST(cond_contains),
    TEST(cond_exists),
    TEST(cond_unknown_op),
    TEST(pricing_parses_and_costs),
    TEST(pricing_prefix_lookup),
    TEST(pricing_unknown_model_costs_zero),
    TEST(pricing_rejects_bad_json),
    TEST(pricing_rejects_bad_shapes),
    TEST(pricing_limits),
    TEST(pricing_many_models_lookup),
    TEST(pricing_load_file_errors),
    TEST(pricing_default_matches_config_file),
    TEST(pricing_default_has_known_models),
    TEST(netguard_ipv4_range_edges),
    TEST(netguard_ipv6_ranges),
    TEST(netguard_ipv6_embedded_ipv4),
    TEST(netguard_other_families_and_lengths),
    {NULL, NULL},
};
