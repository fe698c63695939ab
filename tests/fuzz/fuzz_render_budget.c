/* libFuzzer target: render's byte budget (render.h). The input is two bytes
 * of budget (little-endian, times 4), a template, a newline, then a JSON
 * document used as the execution's input. The template is rendered as a
 * string and, when it parses as JSON, as a value. Node outputs share the
 * input: "a" is the input, "b" holds it twice, "d" is 2^40 logical copies of
 * it (a chain of objects each holding the one below twice), "s" a 5000-byte
 * string.
 *
 * It checks that a render never passes its budget: a result's JSON text
 * takes exactly what the budget says was used, and at most the budget;
 * what jansson holds at any moment of a render stays within the budget plus
 * a bounded overhead per value; a render with four times the budget agrees
 * with it (same result, or the same error when it was not the budget's). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <malloc.h>

#include "engine/render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* ---- what jansson holds ---- */

static long long live, peak;

static void *counting_malloc(size_t n)
{
    void *p = malloc(n);
    if (p) {
        live += (long long)malloc_usable_size(p);
        if (live > peak)
            peak = live;
    }
    return p;
}

static void counting_free(void *p)
{
    if (p)
        live -= (long long)malloc_usable_size(p);
    free(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    json_set_alloc_funcs(counting_malloc, counting_free);
    return 0;
}

/* ---- the scope ---- */

static const json_t *output_of(void *ctx, const char *id, size_t len)
{
    return json_object_getn(ctx, id, len);
}

#define DOUBLINGS 40

static json_t *outputs_over(json_t *input)
{
    char s[5000];
    memset(s, 's', sizeof(s));
    json_t *in = input ? input : json_null();
    json_t *d = json_incref(in);
    for (int i = 0; i < DOUBLINGS; i++) /* each level holds the one below twice */
        d = json_pack("{s:O, s:o}", "k0", d, "k1", d);
    return json_pack("{s:O, s:[O, O], s:o, s:s#}", "a", in, "b", in, in, "d", d, "s", s,
                     (int)sizeof(s));
}

/* Nesting depth and number of values of v (a tree: parsed text). */
static void shape(const json_t *v, size_t depth, size_t *deepest, size_t *count)
{
    const char *k;
    json_t *item;
    size_t i;
    (*count)++;
    if (depth > *deepest)
        *deepest = depth;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, item) {
            shape(item, depth + 1, deepest, count);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            shape(item, depth + 1, deepest, count);
        }
    }
}

/* ---- one render and its checks ---- */

typedef struct {
    json_t *out;
    render_budget b;
    char err[256];
    size_t peak; /* the most jansson held beyond what it held before */
} result;

static void render(const json_t *tv, const char *ts, size_t tlen, const render_scope *sc,
                   size_t max, result *r)
{
    r->b = (render_budget){.max = max};
    r->err[0] = '\0';
    live = peak = 0;
    r->out = tv ? render_value(tv, sc, &r->b, r->err, sizeof(r->err))
                : render_string(ts, tlen, sc, &r->b, r->err, sizeof(r->err));
    r->peak = (size_t)peak;
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void check(const result *r, size_t allowance)
{
    if (r->out) {
        size_t n = json_dumpb(r->out, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        if (r->b.over || r->b.used > r->b.max || n != r->b.used)
            __builtin_trap();
    } else if (r->b.over != starts(r->err, "rendered value is larger than its budget of")) {
        __builtin_trap();
    } else if (!r->b.over && !starts(r->err, "template: ") &&
               !starts(r->err, "rendered string is longer than") &&
               strcmp(r->err, "string is not valid UTF-8") != 0) {
        __builtin_trap();
    }
    if (r->peak > r->b.max + allowance)
        __builtin_trap();
}

/* The render within max and the one within 4 * max agree. */
static void agree(const result *small, const result *big)
{
    if (small->out) {
        if (!big->out || big->b.used != small->b.used || !json_equal(small->out, big->out))
            __builtin_trap();
    } else if (!small->b.over) {
        if (big->out || strcmp(small->err, big->err) != 0)
            __builtin_trap();
    } else if (big->out && big->b.used <= small->b.max) {
        __builtin_trap();
    }
}

static void render_both(const json_t *tv, const char *ts, size_t tlen, const render_scope *sc,
                        size_t max, size_t allowance)
{
    result small, big;
    render(tv, ts, tlen, sc, max, &small);
    check(&small, allowance);
    render(tv, ts, tlen, sc, 4 * max + 64, &big);
    check(&big, allowance);
    agree(&small, &big);
    json_decref(small.out);
    json_decref(big.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = 4 * ((size_t)data[0] | (size_t)data[1] << 8);
    const char *s = (const char *)data + 2;
    size -= 2;
    const char *nl = memchr(s, '\n', size);
    size_t tlen = nl ? (size_t)(nl - s) : size;
    json_t *input = nl ? json_loadb(nl + 1, size - tlen - 1, JSON_DECODE_ANY, NULL) : NULL;
    json_t *outputs = outputs_over(input);
    /* A heap copy of the template, so that reading past tlen is caught. */
    char *tmpl = malloc(tlen ? tlen : 1);
    json_t *tv = NULL;
    if (!outputs || !tmpl)
        goto out;
    memcpy(tmpl, s, tlen);
    tv = json_loadb(tmpl, tlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    size_t deepest = 0, values = 0, ignored = 0;
    shape(input, 0, &deepest, &ignored);
    shape(tv, 0, &ignored, &values);
    /* Per rendered value: its struct, buckets, a key; per level of a
     * measured value: the encoder's loop check. */
    size_t allowance = 512 * values + tlen + 128 * (deepest + DOUBLINGS + 8) + 8192;
    render_scope sc = {input, output_of, outputs, NULL};
    render_both(NULL, tmpl, tlen, &sc, max, allowance);
    if (tv)
        render_both(tv, NULL, 0, &sc, max, allowance);
out:
    json_decref(tv);
    free(tmpl);
    json_decref(outputs);
    json_decref(input);
    return 0;
}
