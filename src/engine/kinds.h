/*
 * kinds.h - the node kinds: one table (kinds.c), one row per kind, read
 * by the definition validator (definition.c), the DAG layout (dag.c) and
 * the engine's loops (engine.c, calls.c). Nothing else knows the kinds.
 *
 * A row holds the kind's name (the definition's "type"), how its config
 * is checked and which of its values are templates, how it runs (inline,
 * as a transfer on the loop's curl multi handle, or on the loop's timers)
 * and its start and finish functions. Each kind's code is one file in
 * src/engine/kinds/, its functions named kind_<name>_*.
 *
 * The dag keeps the index of a node's row (dag_node.kind), so the engine
 * reaches a node's kind with one array access, never a name.
 */
#ifndef AOP_ENGINE_KINDS_H
#define AOP_ENGINE_KINDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct definition_ctx definition_ctx; /* definition_int.h */
typedef struct loop loop;                     /* engine_int.h */
typedef struct run run;
typedef struct call call;
typedef struct node_outcome node_outcome;

/* How a kind's attempt runs. */
typedef enum {
    KIND_INLINE, /* start computes the outcome at once, on the loop's thread */
    KIND_CALL,   /* start submits a transfer (calls.c); finish reads its response */
    KIND_TIMER,  /* start sets the node's timer (engine_node_timer); finish when it fires */
} node_kind_runs;

/* What start did. */
typedef enum {
    NODE_DONE,    /* *o is the attempt's outcome */
    NODE_STARTED, /* the attempt is in flight until the kind's finish */
    NODE_WAITING, /* the node waits for a decision out of the engine's hands
                   * (approval): the execution parks once nothing else can run */
} node_step;

typedef struct {
    const char *name;
    /* The branch the node's output takes: edges with a "when" equal to it
     * are taken, the others not. NULL: edges leaving the node may not
     * carry "when". Called on every success and on a resumed output. */
    bool (*branch)(const json_t *output);
    /* definition.c, on a config that is an object: check appends the
     * problems of its structure; templates (NULL: none) visits every value
     * that holds templates, through definition_walk*, once for their
     * syntax and once for their references to other nodes. */
    void (*check)(definition_ctx *c, const json_t *conf);
    void (*templates)(definition_ctx *c, const json_t *conf);
    node_kind_runs runs;
    /* One attempt of node i of r with its config rendered (taken). Inline
     * kinds always return NODE_DONE; the others return it when the attempt
     * could not start (*o failed). */
    node_step (*start)(loop *lp, run *r, int i, json_t *conf, node_outcome *o);
    /* The outcome of the attempt in flight: for KIND_CALL, c is the
     * finished transfer (it went through; judging its status and body is
     * the kind's); for KIND_TIMER, c is NULL. NULL for KIND_INLINE. */
    void (*finish)(loop *lp, run *r, int i, call *c, node_outcome *o);
} node_kind;

extern const node_kind node_kinds[];
extern const int node_kinds_count;

/* The index of the kind named name[0..len), or -1. */
int node_kind_find(const char *name, size_t len);

/* The names of the kinds (of those with branches only, when branching),
 * as "a, b or c", into out (NUL-terminated, cut to outlen). */
void node_kind_names(char *out, size_t outlen, bool branching);

/* ---- the kinds' own functions (src/engine/kinds/<name>.c) ---- */

void kind_transform_check(definition_ctx *c, const json_t *conf);
void kind_transform_templates(definition_ctx *c, const json_t *conf);
node_step kind_transform_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o);

void kind_condition_check(definition_ctx *c, const json_t *conf);
void kind_condition_templates(definition_ctx *c, const json_t *conf);
bool kind_condition_branch(const json_t *output);
node_step kind_condition_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o);

void kind_http_check(definition_ctx *c, const json_t *conf);
void kind_http_templates(definition_ctx *c, const json_t *conf);
node_step kind_http_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o);
void kind_http_finish(loop *lp, run *r, int i, call *c, node_outcome *o);

void kind_llm_check(definition_ctx *c, const json_t *conf);
void kind_llm_templates(definition_ctx *c, const json_t *conf);
node_step kind_llm_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o);
void kind_llm_finish(loop *lp, run *r, int i, call *c, node_outcome *o);

void kind_delay_check(definition_ctx *c, const json_t *conf);
void kind_delay_templates(definition_ctx *c, const json_t *conf);
node_step kind_delay_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o);
void kind_delay_finish(loop *lp, run *r, int i, call *c, node_outcome *o);

void kind_workflow_check(definition_ctx *c, const json_t *conf);
void kind_workflow_templates(definition_ctx *c, const json_t *conf);
node_step kind_workflow_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o);
void kind_workflow_finish(loop *lp, run *r, int i, call *c, node_outcome *o);

void kind_approval_check(definition_ctx *c, const json_t *conf);
void kind_approval_templates(definition_ctx *c, const json_t *conf);
bool kind_approval_branch(const json_t *output);
node_step kind_approval_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o);

/* An agent's start may deliver its outcome itself (loop_node_done) and
 * return NODE_STARTED, when what its store rows say ends it at once. */
void kind_agent_check(definition_ctx *c, const json_t *conf);
void kind_agent_templates(definition_ctx *c, const json_t *conf);
node_step kind_agent_start(loop *lp, run *r, int i, json_t *conf, node_outcome *o);
void kind_agent_finish(loop *lp, run *r, int i, call *c, node_outcome *o);

#endif
