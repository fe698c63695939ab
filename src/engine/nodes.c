/*
 * nodes.c - the nodes that run inline (transform, condition) and what every
 * node needs first: its config with the templates rendered.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/cond.h"
#include "engine/engine_int.h"
#include "engine/render.h"

void outcome_fail(node_outcome *o, const char *code, bool retryable, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->message, sizeof(o->message), fmt, ap);
    va_end(ap);
    o->ok = false;
    o->code = code;
    o->retryable = retryable;
}

/* A template's node output: only nodes that succeeded have one. */
static const json_t *output_of(void *ctx, const char *id, size_t len)
{
    const run *r = ctx;
    int i = dag_find(r->d, id, len);
    if (i < 0 || r->ns[i].status != EXEC_SUCCEEDED)
        return NULL;
    return r->ns[i].output;
}

json_t *node_render_config(run *r, int i, node_outcome *o)
{
    render_scope sc = {r->input, output_of, r};
    char err[256];
    json_t *c = render_value(r->d->nodes[i].config, &sc, err, sizeof(err));
    if (!c)
        outcome_fail(o, "TEMPLATE_ERROR", false, "%s", err);
    return c;
}

void node_run_inline(run *r, int i, const json_t *cfgv, node_outcome *o)
{
    if (r->d->nodes[i].type == NODE_TRANSFORM) {
        json_t *out = json_object_get(cfgv, "output");
        o->ok = true;
        o->output = out ? json_incref(out) : json_null();
        return;
    }
    const char *op = json_string_value(json_object_get(cfgv, "op"));
    bool result = false;
    if (!op || cond_eval(op, json_object_get(cfgv, "left"), json_object_get(cfgv, "right"),
                         &result) != 0) {
        outcome_fail(o, "INVALID_CONFIG", false, "config.op is not a known operator");
        return;
    }
    r->ns[i].result = result;
    o->ok = true;
    o->output = json_pack("{s:b}", "result", result);
}
