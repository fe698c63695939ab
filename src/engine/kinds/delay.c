/*
 * delay.c - the delay kind: waits config.ms on the loop's timers (no
 * thread held), then outputs {"delayedMs": ms}. A resumed delay waits only
 * for what is left of it, counted from the node's first start.
 *
 * Config: ms (required), an integer from 0 to DELAY_MAX_MS.
 */
#include "engine/definition_int.h"
#include "engine/engine_int.h"

#include "core/clock.h"

#define DELAY_MAX_MS 86400000

void kind_delay_check(definition_ctx *c, const json_t *conf)
{
    definition_int(c, conf, "ms", true, 0, DELAY_MAX_MS);
}

node_step kind_delay_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o)
{
    node_state *n = &r->ns[i];
    const json_t *ms = json_object_get(conf, "ms");
    if (!json_is_integer(ms) || json_integer_value(ms) < 0 ||
        json_integer_value(ms) > DELAY_MAX_MS) {
        json_decref(conf);
        outcome_fail(o, "INVALID_CONFIG", false, "config.ms must be an integer 0..86400000");
        return NODE_DONE;
    }
    n->wait_ms = json_integer_value(ms);
    json_decref(conf);
    long long left = n->wait_ms - (clock_now_ms() - n->started_ms);
    engine_node_timer(lp, r, i, left > 0 ? left : 0);
    return NODE_STARTED;
}

void kind_delay_finish(loop *lp, run *r, int i, call *c, node_outcome *o)
{
    (void)lp, (void)c;
    o->ok = true;
    o->output = json_pack("{s:I}", "delayedMs", (json_int_t)r->ns[i].wait_ms);
}
