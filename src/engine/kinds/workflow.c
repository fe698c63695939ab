/*
 * workflow.c - the workflow kind: runs another workflow as a child
 * execution and waits for it; its output is the child's output.
 *
 * Config: workflowId (required, a workflow id; not a template, so that the
 * right to run it is checked when the workflow is saved), input (any
 * JSON, every string a template; default {}).
 *
 * The child is an executions row like any other (trigger "workflow"),
 * queued for any loop of any instance, with the parent's triggering user,
 * its root's deadline, its parent, root and depth, and the parent's node
 * and attempt: one child per attempt, so that a parent resumed after a
 * crash finds the child its interrupted attempt started and waits for it
 * instead of starting another. A parent at WORKFLOW_MAX_DEPTH starts
 * none (DEPTH_EXCEEDED). The workflow's owner must be allowed to execute
 * the child's workflow (its owner, an editor, or an admin), checked again
 * here since sharing may have changed since the save (FORBIDDEN).
 *
 * The parent waits on the loop's timers, holding no thread and no place
 * of WORKER_MAX_EXECUTIONS (engine_node_park). The child's end wakes it
 * through the engine's waiters (engine_wait), which hear of ends on any
 * instance (events.c); since that news comes at most once, the node's
 * timer also reads the child's status, after POLL_MIN_MS and then at
 * least every POLL_MAX_MS. The child's usage and cost become the node's,
 * so the parent's execution counts them too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/ids.h"
#include "core/mem.h"
#include "core/str.h"
#include "engine/definition_int.h"
#include "engine/engine_int.h"

#define POLL_MIN_MS 50
#define POLL_MAX_MS 1000

void kind_workflow_check(definition_ctx *c, const json_t *conf)
{
    const json_t *id = definition_string(c, conf, "workflowId", true, 1, UUID_STR_LEN - 1);
    if (id && !ids_uuid_ok(json_string_value(id)))
        definition_bad(c, "workflowId", "must be a workflow id");
}

void kind_workflow_templates(definition_ctx *c, const json_t *conf)
{
    definition_walk_key(c, conf, "input");
}

/* "id" as an element of the JSON array text ids. */
static bool listed(const char *ids, const char *id)
{
    char quoted[UUID_STR_LEN + 2];
    snprintf(quoted, sizeof(quoted), "\"%s\"", id);
    return ids && strstr(ids, quoted) != NULL;
}

bool engine_may_execute(store *s, const char *user_id, const store_workflow *w)
{
    if (!strcmp(w->owner_id, user_id) || listed(w->editors, user_id))
        return true;
    arena a = {0};
    store_user u;
    bool admin = store_user_get_by_id(s, user_id, &u, &a) == AOP_OK && u.role &&
                 !strcmp(u.role, "admin");
    arena_free(&a);
    return admin;
}

/* Waits for node i's child: the next look at it, or the node's timeout. */
static void arm(loop *lp, run *r, int i)
{
    node_state *n = &r->ns[i];
    int64_t now = engine_mono_ms(), since = now - n->wait_ms;
    long long poll = since / 2, limit = r->d->nodes[i].timeout_ms;
    poll = poll < POLL_MIN_MS ? POLL_MIN_MS : poll > POLL_MAX_MS ? POLL_MAX_MS : poll;
    if (limit && since + poll >= limit) {
        n->timer = TIMER_TIMEOUT;
        heap_push(lp, r, i, n->wait_ms + limit);
        return;
    }
    n->timer = TIMER_NODE;
    heap_push(lp, r, i, now + poll);
}

static long long setting(const char *settings, const char *key, long long def)
{
    json_t *s = settings ? json_loads(settings, 0, NULL) : NULL;
    const json_t *v = json_object_get(s, key);
    long long out = json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : def;
    json_decref(s);
    return out;
}

static aop_err insert_tx(store *s, void *row)
{
    return store_execution_insert(s, row);
}

int engine_child_start(loop *lp, run *r, int i, long long key, const char *wf,
                       const json_t *input, store_execution *child, arena *a, node_outcome *o)
{
    engine *e = lp->e;
    store_workflow w;
    aop_err rc = store_workflow_get(e->st, wf, &w, a);
    if (rc == AOP_ERR_NOT_FOUND) {
        outcome_fail(o, "FORBIDDEN", false, "workflow %s does not exist", wf);
        return -1;
    }
    if (rc != AOP_OK) {
        outcome_fail(o, "UNAVAILABLE", true, "the child workflow cannot be read (%s)",
                     err_code(rc));
        return -1;
    }
    if (!engine_may_execute(e->st, r->d->owner_id, &w)) {
        outcome_fail(o, "FORBIDDEN", false,
                     "the workflow's owner may not execute workflow %s", wf);
        return -1;
    }
    store_execution *x = child;
    memset(x, 0, sizeof(*x));
    ids_uuid7(x->id);
    str_copy(x->workflow_id, sizeof(x->workflow_id), w.id);
    x->workflow_version = w.version;
    x->status = EXEC_QUEUED;
    str_copy(x->trigger, sizeof(x->trigger), "workflow");
    str_copy(x->triggered_by, sizeof(x->triggered_by), r->row.triggered_by);
    char *text = input ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    x->input = arena_strdup(a, text ? text : "{}");
    free(text);
    clock_format_rfc3339(clock_now_ms(), x->created_at);
    x->duration_ms = -1;
    /* the root's deadline: a tree of executions ends by its root's timeout */
    x->timeout_ms = setting(w.settings, "timeoutMs", r->row.timeout_ms);
    x->deadline_ms = r->row.deadline_ms;
    str_copy(x->parent_execution_id, sizeof(x->parent_execution_id), r->row.id);
    str_copy(x->root_execution_id, sizeof(x->root_execution_id),
             r->row.root_execution_id[0] ? r->row.root_execution_id : r->row.id);
    x->depth = r->row.depth + 1;
    str_copy(x->parent_node_id, sizeof(x->parent_node_id), r->d->nodes[i].id);
    x->parent_attempt = key;
    rc = store_tx(e->st, insert_tx, x);
    if (rc == AOP_ERR_CONFLICT) /* another claim of this run was first */
        rc = store_execution_child(e->st, r->row.id, r->d->nodes[i].id, key, x, a);
    if (rc != AOP_OK) {
        outcome_fail(o, "UNAVAILABLE", true, "the child execution cannot be queued (%s)",
                     err_code(rc));
        return -1;
    }
    engine_queued_event(e, x);
    engine_events_committed(e, x->id, 1, 1);
    engine_queued(e);
    return 0;
}

bool engine_child_active(exec_status st)
{
    return st == EXEC_QUEUED || st == EXEC_RUNNING || st == EXEC_WAITING;
}

struct wake {
    loop *lp;
    char child[UUID_STR_LEN];
};

/* The engine's waiter of a child (any thread): its end wakes the loop. */
static void child_ended(void *ctx, bool ended)
{
    struct wake *w = ctx;
    if (ended)
        engine_child_ended(w->lp, w->child);
    free(w);
}

void engine_child_watch(loop *lp, run *r, const store_execution *child)
{
    struct wake *w = xmalloc(sizeof(*w));
    w->lp = lp;
    str_copy(w->child, sizeof(w->child), child->id);
    long long left = r->row.deadline_ms - clock_now_ms();
    if (engine_wait(lp->e, child->id, left > 0 ? left + POLL_MAX_MS : POLL_MAX_MS, child_ended,
                    w) != 0)
        free(w); /* stopping: the timer looks */
    else if (!engine_child_active(child->status))
        engine_child_ended(lp, child->id); /* re-attached to one that ended */
}

node_step kind_workflow_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o)
{
    engine *e = lp->e;
    node_state *n = &r->ns[i];
    const char *node_id = r->d->nodes[i].id;
    arena a = {0};
    store_execution child;
    node_step step = NODE_DONE;
    /* the attempt a crash interrupted: its child, if it started one */
    aop_err rc = AOP_ERR_NOT_FOUND;
    if (n->resumed > 0)
        rc = store_execution_child(e->st, r->row.id, node_id, n->resumed, &child, &a);
    n->resumed = 0;
    if (rc == AOP_ERR_NOT_FOUND)
        rc = store_execution_child(e->st, r->row.id, node_id, n->attempts, &child, &a);
    if (rc == AOP_ERR_NOT_FOUND) {
        if (r->row.depth >= e->cfg->workflow_max_depth) {
            outcome_fail(o, "DEPTH_EXCEEDED", false,
                         "the execution is at depth %lld, WORKFLOW_MAX_DEPTH (%lld): it may not "
                         "start a child execution",
                         r->row.depth, e->cfg->workflow_max_depth);
            goto out;
        }
        if (engine_child_start(lp, r, i, n->attempts,
                               json_string_value(json_object_get(conf, "workflowId")),
                               json_object_get(conf, "input"), &child, &a, o) != 0)
            goto out;
    } else if (rc != AOP_OK) {
        outcome_fail(o, "UNAVAILABLE", true, "the child execution cannot be read (%s)",
                     err_code(rc));
        goto out;
    }
    str_copy(n->child, sizeof(n->child), child.id);
    n->wait_ms = engine_mono_ms();
    arm(lp, r, i);
    engine_node_park(r, i);
    engine_child_watch(lp, r, &child);
    step = NODE_STARTED;
out:
    arena_free(&a);
    json_decref(conf);
    return step;
}

void kind_workflow_finish(loop *lp, run *r, int i, call *c, node_outcome *o)
{
    (void)c;
    node_state *n = &r->ns[i];
    arena a = {0};
    store_execution x;
    aop_err rc = store_execution_get(lp->e->st, n->child, &x, &a);
    if (rc == AOP_OK && engine_child_active(x.status)) {
        arm(lp, r, i); /* not yet */
        goto out;
    }
    if (rc == AOP_ERR_NOT_FOUND) {
        outcome_fail(o, "CHILD_FAILED", false, "child execution %s was deleted", n->child);
        n->child[0] = '\0';
        goto out;
    }
    if (rc != AOP_OK) {
        arm(lp, r, i); /* the store did not answer: look again */
        goto out;
    }
    n->child[0] = '\0'; /* it ended: nothing to cancel */
    o->prompt_tokens = x.prompt_tokens;
    o->completion_tokens = x.completion_tokens;
    o->cost_usd = x.cost_usd;
    if (x.status == EXEC_SUCCEEDED) {
        o->ok = true;
        o->output = x.output ? json_loads(x.output, JSON_DECODE_ANY, NULL) : NULL;
        if (!o->output)
            o->output = json_null();
        goto out;
    }
    outcome_fail(o, "CHILD_FAILED", true, "child execution %s ended %s", x.id,
                 exec_status_name(x.status));
    json_t *err = x.error ? json_loads(x.error, 0, NULL) : NULL;
    o->details = json_pack("{s:s, s:s, s:o}", "executionId", x.id, "status",
                           exec_status_name(x.status), "error", err ? err : json_null());
out:
    arena_free(&a);
}
