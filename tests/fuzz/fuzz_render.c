/* libFuzzer target: template rendering (and the condition ops on what it
 * renders). The input is a template, a newline, then a JSON document used as
 * the execution's input; any node's output is one fixed small object. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/cond.h"
#include "engine/render.h"
#include "engine/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const json_t *fixed_output(void *ctx, const char *id, size_t len)
{
    (void)id;
    (void)len;
    return ctx;
}

/* A failure must be one of the documented ones. */
static void check_error(const char *tmpl, size_t len, const char *err)
{
    if (template_validate(tmpl, len, NULL, 0) < 0) {
        if (strncmp(err, "template: ", 10) != 0)
            __builtin_trap();
        return;
    }
    if (strcmp(err, "string is not valid UTF-8") != 0 &&
        strncmp(err, "rendered string is longer than", 30) != 0)
        __builtin_trap();
}

/* A whole placeholder renders to what it refers to. */
static void check_whole(const char *tmpl, size_t len, const render_scope *sc, const json_t *got)
{
    template_ref ref;
    if (!template_is_whole(tmpl, len, &ref))
        return;
    if (ref.root == TEMPLATE_ARGS && !sc->args) { /* kept as it is for the tool call */
        if (!json_is_string(got) || json_string_length(got) != len ||
            memcmp(json_string_value(got), tmpl, len) != 0)
            __builtin_trap();
        return;
    }
    const json_t *want = render_lookup(&ref, sc);
    if (want ? !json_equal(got, want) : !json_is_null(got))
        __builtin_trap();
}

static void compare_all(const json_t *a, const json_t *b)
{
    static const char *const ops[] = {"eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists"};
    bool eq = false, ne = false, r;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (cond_eval(ops[i], a, b, &r) < 0)
            __builtin_trap();
    cond_eval("eq", a, b, &eq);
    cond_eval("ne", a, b, &ne);
    if (eq == ne)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t tlen = nl ? (size_t)(nl - s) : size;
    json_t *input = nl ? json_loadb(nl + 1, size - tlen - 1, JSON_DECODE_ANY, NULL) : NULL;
    json_t *node = json_pack("{s:i, s:[b, n, s], s:{s:f}}", "a", 1, "b", 1, "x", "s", "k", 2.5);
    /* A heap copy of the template, so that reading past tlen is caught. */
    char *tmpl = malloc(tlen ? tlen : 1);
    char err[256] = "";
    if (!node || !tmpl)
        goto out;
    memcpy(tmpl, s, tlen);
    render_scope sc = {input, fixed_output, node, NULL};
    /* Budgets are fuzz_render_budget's; this one is never reached. */
    render_budget roomy = {.max = SIZE_MAX / 2};
    json_t *got = render_string(tmpl, tlen, &sc, &roomy, err, sizeof(err));
    if (got) {
        check_whole(tmpl, tlen, &sc, got);
        compare_all(got, input);
    } else {
        check_error(tmpl, tlen, err);
    }
    json_decref(got);
    /* The same string deep inside a value, and the input itself as a template. */
    json_t *wrapped = json_array();
    json_array_append_new(wrapped, json_pack("{s:s%}", "k", tmpl, tlen));
    if (input)
        json_array_append(wrapped, input);
    roomy.used = 0;
    json_t *again = render_value(wrapped, &sc, &roomy, err, sizeof(err));
    json_decref(again);
    json_decref(wrapped);
out:
    free(tmpl);
    json_decref(node);
    json_decref(input);
    return 0;
}
