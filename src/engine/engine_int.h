/*
 * engine_int.h - what the engine's files share (not for other code).
 *
 * engine.c     loops: claim, schedule (through the kinds table), persist, end
 * kinds.c      the node kinds table (kinds.h); kinds/<name>.c each kind's code
 * calls.c      transfers on the loop's curl multi handle, for KIND_CALL kinds
 * inserter.c   group commit of new executions (engine_submit)
 * waits.c      waiters and the maintenance thread
 * events.c     what instances sharing a database tell each other
 */
#ifndef AOP_ENGINE_ENGINE_INT_H
#define AOP_ENGINE_ENGINE_INT_H

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/dag.h"
#include "engine/engine.h"
#include "engine/kinds.h"
#include "engine/pricing.h"
#include "store/store.h"

typedef struct loop loop;
typedef struct run run;
typedef struct call call;

/* What a node attempt produced. */
struct node_outcome {
    bool ok;
    json_t *output;      /* owned; may be set on failure too (HTTP_STATUS) */
    const char *code;    /* on failure */
    char message[512];
    bool retryable;
    long long prompt_tokens, completion_tokens;
    double cost_usd;
    char model[201];     /* llm: the model used */
    json_t *details;     /* owned; on failure, the error's details (BUDGET_EXCEEDED) */
    bool pending;        /* a KIND_TIMER finish: no outcome, the kind's work goes on or
                          * it delivered the outcome itself (an agent) */
};

/* What a node's heap entry stands for: the node's own timer (a KIND_TIMER
 * kind's wait), the backoff before a retry, or its timeoutMs. */
typedef enum { TIMER_NONE, TIMER_NODE, TIMER_RETRY, TIMER_TIMEOUT } timer_kind;

typedef struct {
    exec_status status;  /* pending, running, succeeded, failed, skipped, cancelled, timed_out */
    int attempts;
    json_t *output;      /* owned */
    bool result;         /* the branch taken (kinds with a branch function) */
    int preds_left;
    bool active_in;      /* some incoming edge was taken */
    bool queued;         /* on the ready list */
    bool restored;       /* result loaded from the store (resume) */
    bool dirty;          /* to write at the next flush */
    int64_t started_ms;  /* wall clock of the first attempt */
    int64_t finished_ms;
    char *error;         /* JSON text {code, message}, malloc'd */
    long long prompt_tokens, completion_tokens;
    double cost_usd;
    char *model;         /* malloc'd */
    char *out_text;      /* output as stored (capped), malloc'd */
    /* What the node counts in its run's budgets (engine.c, "budgets"). */
    long long held;      /* the JSON size of the rendered config of the attempt in flight */
    long long out_bytes; /* the JSON size of output */
    long long stored;    /* the length of out_text */
    long long wait_ms;   /* KIND_TIMER: the wait its start chose (delay: ms; workflow:
                          * when the attempt's wait began, monotonic ms) */
    char child[UUID_STR_LEN]; /* workflow: the child execution waited for ("" once it
                               * ended) */
    int resumed;         /* the attempt a crash interrupted (restored running), 0: none */
    /* NODE_WAITING (approval): the rendered config it waits with (owned,
     * until the flush that parks the run writes its row); resumed: it
     * waited in an earlier claim, so its attempt goes on, not again */
    json_t *wait_conf;
    bool resumed_wait;
    bool parked;         /* waiting for another execution (engine_node_park) */
    struct agent *agent; /* agent: the loop of the attempt in flight (kinds/agent.c) */
    /* LLM spend (budget.c): the call whose reservation the node holds
     * (0: none), and how many calls it reserved for in this claim */
    long long budget_seq;
    int budget_calls;
    /* in flight */
    timer_kind timer;
    call *call;
    size_t heap_pos;     /* position + 1 in the loop's timer heap, 0 when none */
} node_state;

/* One execution held by a loop. Its values (input, outputs) belong to the
 * loop's thread; templates share them by reference (render.h), so they are
 * never changed once made. */
struct run {
    run *prev, *next;
    loop *lp;
    store_execution row; /* id, workflow, times, deadline; texts malloc'd */
    json_t *input;
    dag *d;
    node_state *ns;
    int *ready;          /* stack of node indexes */
    int nready;
    int unresolved;      /* nodes not yet succeeded, failed, skipped */
    int inflight;
    int parked;          /* nodes of inflight waiting for another execution */
    int64_t started_ms;  /* wall clock of startedAt */
    long long memory_now;   /* what the run holds now: input, outputs, configs in flight */
    long long memory_bytes; /* the peak of memory_now */
    long long stored_bytes; /* the length of the nodes' out_text together */
    bool touched;        /* on the loop's flush list */
    bool lost;           /* the row is no longer ours (set by the flush) */
    run *touched_next;
    bool ending;
    int nwaiting;        /* nodes waiting (NODE_WAITING) */
    bool parking;        /* nothing else can run: the flush parks it */
    exec_status end_status;
    char *end_error;     /* JSON text */
    size_t heap_pos;     /* the deadline timer */
    /* LLM spend (budget.c): calls whose reservations become their cost at
     * the next flush; reserved: some call of this claim reserved, so the
     * run's end releases what is left */
    struct budget_settle *settles;
    int nsettles, settles_cap;
    bool reserved;
    /* Durable events (engine.c, "events"): seq, the last one committed;
     * evs, those the next flush writes (members malloc'd), numbered after
     * it and stamped ev_ts by that flush. */
    long long seq;
    store_exec_event *evs;
    char ev_ts[25];
    int nevs, evs_cap;
    /* llm.delta coalescing (engine.c): text not sent yet, per node */
    struct delta_buf *deltas;
};

struct loop {
    engine *e;
    int index;
    pthread_t thread;
    CURLM *multi;
    run *runs;
    int nruns;
    run *touched;
    /* timers: a binary min-heap of (at, node or run) */
    struct heap_item *heap;
    size_t heap_len, heap_cap;
    /* requests from other threads */
    pthread_mutex_t mu;
    bool want_claim;
    char (*forget)[UUID_STR_LEN];
    int nforget, forget_cap;
    char (*woken)[UUID_STR_LEN]; /* executions that ended whose parents wait here */
    int nwoken, woken_cap;
    /* Places promised to a claim in progress and to rows started at their
     * insert (engine_place), which wait in `handed` until the loop opens
     * them: nruns + reserved never passes the loop's limit. */
    int reserved;
    struct handed *handed;
    int64_t next_claim_ms;
    int64_t flush_retry_ms; /* a failed write is tried again from then on */
};

struct heap_item {
    int64_t at;
    run *r;
    int node; /* -1: the run's deadline */
};

typedef struct waiter waiter;
typedef struct pending pending;

struct engine {
    engine_hooks hooks;
    const config *cfg;
    store *st;
    pricing *prices;
    struct vault *vault; /* borrowed */
    char owner[UUID_STR_LEN];
    bool exclusive;
    loop *loops;
    int nloops;
    unsigned rr;
    volatile int stopping;
    pthread_t maint;
    pthread_mutex_t mu;  /* waiters, stop, dag cache */
    pthread_cond_t cv;
    waiter *waiters;
    struct dag_slot *dags;
    int ndags;
    engine_stats stats;  /* atomics */
    /* inserter.c */
    pthread_t ins_thread;
    bool ins_on, ins_stop;
    pthread_mutex_t ins_mu;
    pthread_cond_t ins_cv;
    pending *ins_head, **ins_tail;
    /* claims: the user the latest claim served last, where the next
     * claim's round-robin resumes (store_execution_claim's after) */
    pthread_mutex_t turn_mu;
    char turn[UUID_STR_LEN];
    /* events.c */
    pthread_t listener;
    bool listener_on;
};

/* engine.c */
int64_t engine_mono_ms(void);
int64_t engine_due_ms(long long ms);
/* The hooks of engine.h, each skipped when unset. */
void engine_hook_ended(engine *e, const char *workflow_id, const char *execution_id);
void engine_hook_changed(engine *e, const char *workflow_id, const char *execution_id);
void engine_hook_pruned(engine *e);
/* Delivers the outcome of one attempt of node i, from any kind (o->output
 * is taken): inline kinds' through start's NODE_DONE, the others' through
 * their finish. Retries, resolves the node's edges or ends the run. */
void loop_node_done(loop *lp, run *r, int i, node_outcome *o);
/* Starts what became ready in r after node work finished outside the
 * scheduler (a call). */
void engine_after(loop *lp, run *r);
/* Sets node i's own timer (TIMER_NODE) to fire wait_ms from now, or its
 * timeoutMs when that is shorter (then the attempt fails TIMEOUT). */
void engine_node_timer(loop *lp, run *r, int i, long long wait_ms);
/* Node i (in flight) waits for another execution (a workflow node's
 * child): until its outcome, it does not count against
 * WORKER_MAX_EXECUTIONS when nothing else of r is in flight, so that a
 * loop full of parents still claims their children. */
void engine_node_park(run *r, int i);
/* Node i waits for no other execution any more (it still runs). */
void engine_node_unpark(run *r, int i);
/* Execution id ended (any thread): the nodes of lp's runs parked on it
 * (node_state.child) look at it now instead of at their next timer. */
void engine_child_ended(loop *lp, const char *id);
void heap_push(loop *lp, run *r, int node, int64_t at);
void heap_remove(loop *lp, size_t pos);
void engine_count(long long *counter, long long by);

/* kinds.c: fails o with code and a message (retryable: worth another
 * attempt, when the node has attempts left). */
void outcome_fail(node_outcome *o, const char *code, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * calls.c: transfers for KIND_CALL kinds. A kind's start makes one with
 * call_new, sets its request up, and hands it to call_start; when the
 * transfer ends the loop calls the kind's finish with it, unless the
 * transfer itself failed (network, timeout, response too large, address
 * refused): then the node fails with the kind's err_code, TIMEOUT,
 * RESPONSE_TOO_LARGE or ADDRESS_BLOCKED, and finish is not called.
 */
/* A transfer for node i of r: http and https only, no redirects followed,
 * no proxy from the environment, timeout_ms in all, the response capped
 * at ENGINE_HTTP_MAX_RESPONSE. NULL with o failed when out of resources. */
call *call_new(loop *lp, run *r, int i, long long timeout_ms, const char *err_code,
               node_outcome *o);
/* Adds the request header "name: value"; -1 when the line is too long. */
int call_header(call *c, const char *name, const char *value);
void call_url(call *c, const char *url);
/* Sends body (malloc'd, taken; NULL: none). */
void call_body(call *c, char *body);
/* The request method; call it after call_body (a GET with a body is still
 * sent as GET, not as curl's default POST). */
void call_method(call *c, const char *method);
/* Checks every address before connecting to it (netguard.h). */
void call_guard(call *c);
/* Keeps data (malloc'd, taken) with the transfer for the kind's finish. */
void call_set_data(call *c, void *data);
void *call_data(const call *c);
/* A response taken as it arrives (a streamed LLM answer): fn gets each
 * piece of the body of node's call (the call's secrets redacted in the
 * piece; one cut in two by the pieces' border is not), with the status;
 * when it returns true
 * the piece is its (not kept for call_response), else it is kept as
 * usual. state (taken) is freed with the call by state_free. */
typedef bool (*call_stream_fn)(run *r, int node, long status, const char *p, size_t len,
                               void *state);
void call_stream(call *c, call_stream_fn fn, void *state, void (*state_free)(void *));
/* A transfer that is one of several of its node's attempt (an agent's
 * model and tool calls): when it ends, fn gets it (o failed, its output
 * and details unset, when the transfer itself failed) instead of the
 * kind's finish and the node's outcome; fn decides what the node does
 * next, and the call is freed after it. It is not the node's `call`: the
 * kind keeps and drops it. */
typedef void (*call_done_fn)(loop *lp, run *r, int node, call *c, node_outcome *o);
void call_on_done(call *c, call_done_fn fn);
/* The state given to call_stream (borrowed), NULL when there is none. */
void *call_stream_state(const call *c);
/* Starts the transfer: 0, or -1 with o failed and c freed. */
int call_start(call *c, node_outcome *o);
/* Frees a transfer that was not started. NULL-safe. */
void call_free(call *c);
/* The finished transfer's response: status, body (len bytes, not
 * NUL-terminated), headers (lowercased names; borrowed). */
long call_status(const call *c);
const char *call_response(const call *c, size_t *len);
const json_t *call_response_headers(const call *c);
/* Drops the call in flight (no outcome is delivered). */
void call_drop(loop *lp, call *c);
/* Delivers the outcomes of finished transfers. */
void calls_collect(loop *lp);
int calls_global_init(void);

/*
 * budget.c: LLM spend (docs/api.md, "Budgets"). Every LLM call goes
 * through engine_budget_reserve before its request is sent; what a node
 * holds becomes its cost through engine_budget_settle, written by the
 * flush that writes the node's outcome (budget_flush_*), and what a run
 * still holds at its end is released in the same transaction.
 */
/*
 * Before an LLM call of node i (an llm node's attempt, an agent's step):
 * reserves its worst case against every budget that applies to r (global,
 * its triggering user's, its workflow's): ceil(prompt_bytes / 4) prompt
 * tokens (prompt_bytes: the UTF-8 bytes of the request's messages and
 * tools) at model's input price plus the completion limit at its output
 * price. *max_tokens: in, the node's limit (0: none); out, what the
 * request must carry (0: none), LLM_DEFAULT_MAX_TOKENS when the node sets
 * none and a budget applies. A model without a price reserves nothing.
 * 0: go ahead, and the reservation is node i's until engine_budget_settle;
 * -1: o failed, BUDGET_EXCEEDED (not retried; details name the budget)
 * or BUDGET_UNAVAILABLE (the store did not answer; retried). Without any
 * budget it costs one indexed read.
 */
int engine_budget_reserve(loop *lp, run *r, int i, const char *model, size_t prompt_bytes,
                          long long *max_tokens, node_outcome *o);
/* Node i's call ended having cost cost_usd: its reservation (if any)
 * becomes that cost at the next flush. */
void engine_budget_settle(run *r, int i, double cost_usd);
/* In the flush transaction, for run r (whose row is ours): takes what its
 * settled calls held, and at its end every reservation left. */
aop_err budget_flush_run(store *s, run *r, store_budget_deltas *d);
/* After a committed flush of r. */
void budget_flushed(run *r);
/* What a run of a claim before this one (claims > 1) may have left held:
 * released now (else at the run's end). */
void budget_resumed(engine *e, run *r);
/* The run leaves without an end (shutdown): its reservations go back. */
void budget_abandon(engine *e, run *r);

/*
 * credential.c: the credential conf.credentialId names (docs/api.md,
 * "Credentials"), for a kind's start. 0 with *u empty (u->type NULL) when
 * conf names none; 0 with *u opened for this one call (the kind frees it
 * with credentials_use_free as soon as the request is built); -1 with o
 * failed: CREDENTIAL_NOT_FOUND (deleted, or not the workflow owner's),
 * CREDENTIAL_UNREADABLE (no configured key opens it), or
 * CREDENTIAL_UNAVAILABLE (the store did not answer; retried).
 */
struct credentials_use;
int engine_credential(loop *lp, run *r, const json_t *conf, struct credentials_use *u,
                      node_outcome *o);

/*
 * llm_stream.c: an llm call with config.stream (docs/api.md): the answer
 * is parsed as it arrives (sse_parse.h), its text goes out as llm.delta
 * (engine_delta), and the finish reads the same answer a call without
 * streaming gets.
 */
void llm_stream_start(call *c, bool anthropic);
/* The streamed answer as a non-streaming call's JSON (new): NULL with
 * *streamed false when c did not stream (or was answered with an error
 * status), NULL with *streamed true when the stream could not be read. */
json_t *llm_stream_answer(call *c, bool *streamed);

/* kinds/agent.c: drops what node i's loop has in flight and frees it
 * (a cancel, the run's end). */
void kind_agent_stop(loop *lp, run *r, int i);
/* kinds/agent.c: the children node i's workflow tools wait for are
 * cancelled (its execution ends). */
void kind_agent_cancel(loop *lp, run *r, int i);

/* engine.c, for agents: node i's durable event of type (agent.step, ...)
 * with members (malloc'd, taken: JSON members after nodeId, without a
 * leading comma), written by the next flush. */
void engine_node_event(run *r, int i, const char *type, char *members);
/* Node i holds bytes more of r's memory (EXECUTION_MEMORY_MAX_BYTES) until
 * its outcome: 0, or -1 with o failed MEMORY_LIMIT (or OUTPUT_TOO_LARGE
 * past NODE_OUTPUT_MAX_BYTES) and nothing held. */
int engine_node_hold(loop *lp, run *r, int i, long long bytes, node_outcome *o);
/* v (borrowed) rendered for node i with args for {{args...}} (new), or
 * NULL with o failed (TEMPLATE_ERROR, or a memory limit). */
json_t *engine_render_args(loop *lp, run *r, int i, const json_t *v, const json_t *args,
                           node_outcome *o);

/* kinds/llm.c, for agents: a model call of node i to the provider conf
 * names (model, credentialId), its body made by body_fn (NULL: the llm
 * kind's, from conf.messages) once the budgets hold the call's worst case;
 * built, not started, or NULL with o failed. */
typedef char *(*llm_body_fn)(loop *lp, run *r, int i, const char *model, const json_t *conf,
                             bool anthropic, void *ctx, node_outcome *o);
call *kind_llm_call(loop *lp, run *r, int i, const json_t *conf, long long timeout_ms,
                    llm_body_fn body_fn, void *ctx, node_outcome *o);
/* A finished model call's answer (new): NULL with o failed LLM_ERROR when
 * the provider answered an error status, NULL with o untouched when the
 * body is not JSON. */
json_t *kind_llm_response(call *c, node_outcome *o);
/* Whether the call went to the Messages API. */
bool kind_llm_anthropic(const call *c);
/* The call's tokens and cost into o (its model the one that answered,
 * else the one asked for, priced by the one asked for first); returns the
 * model named. */
const char *kind_llm_spend(loop *lp, const call *c, const char *answered, long long pt,
                           long long ct, node_outcome *o);

/* kinds/http.c, for agent tools: the request of an http config (as the
 * http kind's, its timeoutMs cut to max_ms when max_ms > 0), built and not
 * started, or NULL with o failed; and a finished one's output {status,
 * headers, body} (new). */
call *kind_http_call(loop *lp, run *r, int i, const json_t *conf, long long max_ms,
                     node_outcome *o);
json_t *kind_http_output(const call *c);

/* kinds/workflow.c, for workflow nodes and agents' workflow tools: starts
 * a child execution of node i keyed by (r, node i, key) (a workflow node:
 * its attempt; an agent: a negative number per tool call): 0 with *child
 * its row, or -1 with o failed (FORBIDDEN, UNAVAILABLE); texts from a.
 * engine_child_watch: child's end wakes node i (engine_child_ended), on
 * any instance. engine_child_active: whether a child in status st has yet
 * to end (waiting: at an approval). */
int engine_child_start(loop *lp, run *r, int i, long long key, const char *wf,
                       const json_t *input, store_execution *child, arena *a, node_outcome *o);
void engine_child_watch(loop *lp, run *r, const store_execution *child);
bool engine_child_active(exec_status st);
/* engine.c: asks for execution id's cancel (a child a node stops waiting
 * for). */
void engine_cancel_child(engine *e, const char *id);

/* kinds/approval.c: node i's approvals row, from the config it waits
 * with (borrowed: out points into r and conf). */
void kind_approval_row(const run *r, int i, const json_t *conf, int64_t now_ms,
                       store_approval *out);

/* waits.c: approvals whose timeout is due, decided "timeout" (each once,
 * by one instance) and their executions queued again. */
void approvals_expire(engine *e);

/* inserter.c */
int inserter_start(engine *e);
void inserter_stop(engine *e);

/* events.c: other processes sharing the database (no-ops otherwise) */
int events_start(engine *e);
void events_stop(engine *e);
/* After executions were queued (outside a transaction, or inside one to be
 * sent at its commit). */
void events_queued(engine *e);
void events_cancelled(engine *e, const char *execution_id);
/* In the flush transaction: the runs of list that end in it. */
aop_err events_ended(engine *e, run *list);
/* In the flush transaction: the runs of list that write events in it. */
aop_err events_written(engine *e, run *list);
/* Tokens "id:first:last" of committed events for the other processes,
 * gathered (add) and sent (end) in as few payloads as fit; only on a
 * shared store. */
typedef struct {
    char ids[STORE_EVENT_MAX - 64];
    size_t len;
    aop_err rc;
} events_acc;
void events_acc_add(engine *e, events_acc *a, const char *id, long long first, long long last);
aop_err events_acc_end(engine *e, events_acc *a);

/* engine.c: text (len bytes) that node i of r streamed from its provider
 * (attempt: the node's attempt), sent as llm.delta at most once per
 * ENGINE_DELTA_MS per node; end: the attempt's transfer ended, send what
 * is left. Never stored. */
#define ENGINE_DELTA_MS 50
void engine_delta(run *r, int i, const char *text, size_t len, bool end);

/* engine.c: engine_forget without telling other processes. */
void engine_forget_local(engine *e, const char *execution_id);

/* waits.c */
/*
 * Rows that start at their insert (inserter.c): engine_place promises one
 * a place in the loop with the most room (NULL when every loop is full);
 * the row committed, engine_hand_over gives the loop the row (taking its
 * input) to open, or engine_unplace takes the promise back.
 */
loop *engine_place(engine *e);
void engine_unplace(loop *lp);
void engine_hand_over(loop *lp, store_execution *row);

void waits_notify(engine *e, const char *execution_id, bool ended);
/* A waiter for engine_submit_wait, held until waits_release (or freed
 * untold by waits_drop); NULL when the engine is stopping. */
waiter *waits_hold(engine *e, const char *execution_id, long long timeout_ms, engine_run_fn fn,
                   void *ctx);
/* The row of held waiter w is committed (rc AOP_OK) or was refused (rc):
 * a refusal, or an end heard meanwhile, is told now; else it waits on. */
void waits_release(engine *e, waiter *w, aop_err rc);
void waits_drop(engine *e, waiter *w);
void waits_expire(engine *e, int64_t now_mono, int64_t *next);
void waits_end_all(engine *e);
int maint_start(engine *e);

#endif
