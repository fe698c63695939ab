/*
 * approval.c - the approval kind: a human decision (docs/api.md, "More
 * node types"). Reached, the node waits: start answers NODE_WAITING, the
 * engine parks the execution (waiting, no lease, no loop) and writes the
 * node's approvals row in the same flush. A decision or the row's timeout
 * queues the execution again; the resumed node reads the decision and
 * ends: approve takes the when: true edges, reject (and a timeout with
 * onTimeout "reject", decision "timeout") the when: false ones; a timeout
 * with onTimeout "fail" fails it APPROVAL_TIMEOUT.
 *
 * Config: message (optional) a string of at most APPROVAL_MESSAGE_MAX
 * characters, a template; timeoutMs (optional, default
 * APPROVAL_TIMEOUT_DEFAULT_MS) an integer from 1 to APPROVAL_TIMEOUT_MAX_MS;
 * onTimeout (optional, default "fail") "fail" or "reject".
 * Output: {decision, comment, decidedBy, decidedAt}.
 */
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "core/str.h"
#include "engine/definition_int.h"
#include "engine/engine_int.h"

#define APPROVAL_MESSAGE_MAX 4000
#define APPROVAL_TIMEOUT_DEFAULT_MS 604800000LL
#define APPROVAL_TIMEOUT_MAX_MS 2592000000LL /* 30 days */

static const char *const on_timeout[] = {"fail", "reject", NULL};

void kind_approval_check(definition_ctx *c, const json_t *conf)
{
    definition_string(c, conf, "message", false, 0, APPROVAL_MESSAGE_MAX);
    definition_int(c, conf, "timeoutMs", false, 1, APPROVAL_TIMEOUT_MAX_MS);
    definition_enum(c, conf, "onTimeout", false, on_timeout);
}

void kind_approval_templates(definition_ctx *c, const json_t *conf)
{
    definition_walk_string(c, conf, "message");
}

bool kind_approval_branch(const json_t *output)
{
    const char *d = json_string_value(json_object_get(output, "decision"));
    return d && strcmp(d, "approve") == 0;
}

/* What node i waits with, for its approvals row (engine_approval_row). */
void kind_approval_row(const run *r, int i, const json_t *conf, int64_t now_ms,
                       store_approval *out)
{
    const json_t *t = json_object_get(conf, "timeoutMs");
    const char *ot = json_string_value(json_object_get(conf, "onTimeout"));
    long long ms = json_is_integer(t) ? json_integer_value(t) : APPROVAL_TIMEOUT_DEFAULT_MS;
    memset(out, 0, sizeof(*out));
    str_copy(out->execution_id, sizeof(out->execution_id), r->row.id);
    str_copy(out->workflow_id, sizeof(out->workflow_id), r->row.workflow_id);
    out->node_id = (char *)r->d->nodes[i].id;
    out->message = (char *)json_string_value(json_object_get(conf, "message"));
    str_copy(out->on_timeout, sizeof(out->on_timeout), ot ? ot : "fail");
    clock_format_rfc3339(now_ms, out->created_at);
    out->expires_at_ms = now_ms + ms;
}

node_step kind_approval_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o)
{
    engine *e = lp->e;
    arena a = {0};
    store_approval ap;
    aop_err rc = store_approval_get(e->st, r->row.id, r->d->nodes[i].id, &ap, &a);
    if (rc == AOP_ERR_NOT_FOUND || (rc == AOP_OK && !ap.decision[0])) {
        arena_free(&a);
        r->ns[i].wait_conf = conf; /* for its row, written by the flush that parks */
        return NODE_WAITING;
    }
    json_decref(conf);
    if (rc != AOP_OK) {
        outcome_fail(o, "APPROVAL_UNAVAILABLE", true, "the approval cannot be read");
    } else if (!strcmp(ap.decision, "timeout") && !strcmp(ap.on_timeout, "fail")) {
        outcome_fail(o, "APPROVAL_TIMEOUT", false, "no decision was made before the timeout");
    } else {
        o->ok = true;
        o->output = json_pack("{s:s, s:s?, s:s?, s:s}", "decision", ap.decision, "comment",
                              ap.comment, "decidedBy", ap.decided_by, "decidedAt",
                              ap.decided_at);
    }
    arena_free(&a);
    return NODE_DONE;
}
