/*
 * condition.c - the condition kind: compares left and right (cond.h) and
 * outputs {"result": true | false}; edges leaving it with "when" take the
 * branch that matches the result.
 *
 * Config: op (required) one of eq ne gt gte lt lte contains exists; left
 * (required, any JSON); right (required unless op is exists). null is a
 * value, not a missing key. Every string inside left and right is a
 * template.
 */
#include <string.h>

#include "engine/cond.h"
#include "engine/definition_int.h"
#include "engine/engine_int.h"

static const char *const ops[] = {"eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists",
                                  NULL};

void kind_condition_check(definition_ctx *c, const json_t *conf)
{
    int op = definition_enum(c, conf, "op", true, ops);
    definition_need_any(c, conf, "left");
    if (op >= 0 && strcmp(ops[op], "exists") != 0)
        definition_need_any(c, conf, "right");
}

void kind_condition_templates(definition_ctx *c, const json_t *conf)
{
    definition_walk_key(c, conf, "left");
    definition_walk_key(c, conf, "right");
}

bool kind_condition_branch(const json_t *output)
{
    return json_is_true(json_object_get(output, "result"));
}

node_step kind_condition_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o)
{
    (void)lp, (void)r, (void)i;
    const char *op = json_string_value(json_object_get(conf, "op"));
    bool result = false;
    if (!op || cond_eval(op, json_object_get(conf, "left"), json_object_get(conf, "right"),
                         &result) != 0) {
        outcome_fail(o, "INVALID_CONFIG", false, "config.op is not a known operator");
    } else {
        o->ok = true;
        o->output = json_pack("{s:b}", "result", result);
    }
    json_decref(conf);
    return NODE_DONE;
}
