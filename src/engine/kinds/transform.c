/*
 * transform.c - the transform kind: its output is config.output, rendered.
 *
 * Config: output (required, any JSON; null is a value). Every string at any
 * depth of it is a template.
 */
#include "engine/definition_int.h"
#include "engine/engine_int.h"

void kind_transform_check(definition_ctx *c, const json_t *conf)
{
    definition_need_any(c, conf, "output");
}

void kind_transform_templates(definition_ctx *c, const json_t *conf)
{
    definition_walk_key(c, conf, "output");
}

node_step kind_transform_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o)
{
    (void)lp, (void)r, (void)i;
    json_t *out = json_object_get(conf, "output");
    o->ok = true;
    o->output = out ? json_incref(out) : json_null();
    json_decref(conf);
    return NODE_DONE;
}
