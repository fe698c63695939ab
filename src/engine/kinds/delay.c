/*
 * delay.c - the delay kind: waits config.ms on the loop's timers (no
 * thread held), then outputs {"delayedMs": ms}. A resumed delay waits only
 * for what is left of it, counted from the node's first start.
 *
 * Config: ms (required), an integer from 0 to DELAY_MAX_MS, or a string
 * that is exactly one placeholder ("{{input.ms}}"), the node's only
 * template. What a placeholder renders to is checked when the node runs:
 * anything but a JSON integer in the same range fails it INVALID_CONFIG,
 * naming the value it got.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/str.h"
#include "engine/definition_int.h"
#include "engine/engine_int.h"
#include "engine/template.h"

#define DELAY_MAX_MS 86400000
#define SHOWN_MAX 64 /* bytes of a bad rendered value quoted in the error */

void kind_delay_check(definition_ctx *c, const json_t *conf)
{
    const json_t *ms = json_object_get(conf, "ms");
    if (!json_is_string(ms)) {
        definition_int(c, conf, "ms", true, 0, DELAY_MAX_MS);
        return;
    }
    /* Malformed placeholders are the template walk's to report. */
    const char *s = json_string_value(ms);
    size_t len = json_string_length(ms);
    if (template_validate(s, len, NULL, 0) == 0 && !template_is_whole(s, len, NULL))
        definition_bad(c, "ms",
                       "must be an integer from 0 to 86400000, or a string that is exactly one "
                       "placeholder such as \"{{input.ms}}\"");
}

void kind_delay_templates(definition_ctx *c, const json_t *conf)
{
    definition_walk_string(c, conf, "ms");
}

/* Fails o: ms (as rendered) is not a wait. */
static void bad_ms(const json_t *ms, node_outcome *o)
{
    char *text = ms ? json_dumps(ms, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char shown[SHOWN_MAX + 4];
    str_copy(shown, sizeof(shown), text ? text : "nothing");
    if (text && strlen(text) > SHOWN_MAX)
        str_copy(shown + str_utf8_prefix(shown, SHOWN_MAX), 4, "...");
    free(text);
    outcome_fail(o, "INVALID_CONFIG", false,
                 "config.ms must be an integer from 0 to 86400000 (milliseconds), got %s", shown);
}

node_step kind_delay_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o)
{
    node_state *n = &r->ns[i];
    const json_t *ms = json_object_get(conf, "ms");
    if (!json_is_integer(ms) || json_integer_value(ms) < 0 ||
        json_integer_value(ms) > DELAY_MAX_MS) {
        bad_ms(ms, o);
        json_decref(conf);
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
