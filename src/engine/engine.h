/*
 * engine.h - runs executions.
 *
 * Executions are rows first (store.h): the executions service commits a
 * queued row (itself, or through engine_submit's group commit) and wakes a
 * loop. WORKERS loops, each one thread, claim queued rows
 * with a lease (EXECUTION_LEASE_MS) and walk their DAG. Each node runs as
 * its kind says (kinds.h): inline (transform, condition), as a transfer on
 * the loop's libcurl multi handle (http, llm) or on its timers (delay, as
 * retry backoffs do), so one loop carries thousands of executions waiting
 * on slow APIs. Each node's result is
 * committed as the loop finishes with it (the results an iteration produces
 * for one execution in one transaction, together with the execution's end
 * and its workflow's analytics counters when it ends).
 *
 * Every write first checks that the row is still running under this
 * engine's lease; when it is not (cancelled or deleted through the API,
 * or the lease lapsed and someone else took it), the loop drops the
 * execution and its calls.
 *
 * A maintenance thread renews the leases, re-queues executions whose lease
 * lapsed (at start, on an embedded store that this process holds alone:
 * every running row at once), prunes old history and ends waits that ran
 * out of time. engine_stop hands running executions back to the queue.
 *
 * The engine calls no service: what the layers above must learn (an end,
 * new counts, pruned history) reaches them through the hooks given to
 * engine_start.
 */
#ifndef AOP_ENGINE_ENGINE_H
#define AOP_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "engine/pricing.h"
#include "store/store.h"

typedef struct engine engine;

/* Maximum executions one loop runs at once (WORKER_MAX_EXECUTIONS, at
 * most this). */
#define ENGINE_LOOP_MAX_RUNS 4096
/*
 * Budgets (configuration): a node's output, and its rendered config, may
 * take NODE_OUTPUT_MAX_BYTES of JSON at most, or the node fails
 * OUTPUT_TOO_LARGE; what an execution holds (input, outputs, configs of
 * attempts in flight) may take EXECUTION_MEMORY_MAX_BYTES, or the node
 * that would pass it fails MEMORY_LIMIT. Both are checked before the memory
 * is taken. The outputs an execution stores (its nodes' and its own) take
 * EXECUTION_STORED_MAX_BYTES in all; past it an output is stored as
 * {"truncated": true, "sizeBytes": n, "preview": "<first bytes>"}.
 */
#define ENGINE_OUTPUT_PREVIEW 1024
/* An http node's response body is refused above this size. */
#define ENGINE_HTTP_MAX_RESPONSE (1024 * 1024)
#define ENGINE_HTTP_DEFAULT_TIMEOUT_MS 30000
#define ENGINE_LLM_DEFAULT_TIMEOUT_MS 120000
/* Retention runs this often, deleting this many rows per transaction. */
#define ENGINE_PRUNE_EVERY_MS 1000
#define ENGINE_PRUNE_BATCH 500

/*
 * What the engine tells the code above it (the executions service wires
 * these; the engine calls no service itself). Every function may be NULL.
 * They run on engine threads (a loop, the inserter, the maintenance
 * thread), outside the engine's locks, and must not block for long.
 */
typedef struct {
    void *ctx; /* passed to every hook */
    /* The end of execution_id (of workflow_id) is committed. */
    void (*ended)(void *ctx, const char *workflow_id, const char *execution_id);
    /* Executions were queued or started, so counts by status moved; both
     * ids NULL when several executions changed at once. */
    void (*changed)(void *ctx, const char *workflow_id, const char *execution_id);
    /* Retention deleted executions (which ones is not known). */
    void (*pruned)(void *ctx);
    /* Events ev[0..n) of execution_id (of workflow_id) are committed (seq
     * in order), or, seq -1, live only (llm.delta, never stored). The
     * texts are borrowed for the call. */
    void (*events)(void *ctx, const char *workflow_id, const char *execution_id,
                   const store_exec_event *ev, int n);
    /* Another process sharing the database committed events first..last of
     * execution_id (0, 0: some, which ones is not known; also after a
     * cancel or a delete there). */
    void (*events_elsewhere)(void *ctx, const char *execution_id, long long first,
                             long long last);
    /* Cancels execution_id and its children, unless it ended: a workflow
     * node's child that its parent no longer waits for (the node timed
     * out, or its execution ended otherwise than by its own timeout). */
    void (*cancel)(void *ctx, const char *execution_id);
} engine_hooks;

/* What engine_start needs; borrowed for the engine's life except prices. */
typedef struct {
    const config *cfg;
    store *store;
    pricing *prices;    /* taken, also on failure */
    engine_hooks hooks; /* copied */
    struct vault *vault; /* opens the credentials nodes name (credentials/vault.h) */
    /* The store belongs to this process alone, so every running row at
     * start is an orphan of a previous run. */
    bool exclusive;
} engine_opts;

/* Starts the loops and the maintenance thread. NULL with a message. */
engine *engine_start(const engine_opts *opts, char *err, size_t errlen);
/* LLM_PRICING_FILE's prices, or the built-in ones when it is unset; NULL
 * with a message naming the variable. engine_start takes them. */
pricing *engine_load_prices(const config *cfg, char *err, size_t errlen);
/* Stops claiming, hands running executions back to the queue, ends every
 * wait and joins the threads. The calls below stay safe (and do nothing)
 * until engine_free. */
void engine_stop(engine *e);
void engine_free(engine *e);

/* New queued work: wakes a loop. */
void engine_wake(engine *e);
/* Executions were committed queued outside the engine: wakes a loop here
 * and tells the other processes sharing the database. */
void engine_queued(engine *e);
/* Execution id ended or went away outside the engine (cancel, delete): the
 * loop running it drops it, and its waiters are told, here and in the other
 * processes sharing the database. */
void engine_forget(engine *e, const char *execution_id);

/* Events first..last of execution_id were committed outside the engine
 * (queued, a cancel): tells the other processes sharing the database. */
void engine_events_committed(engine *e, const char *execution_id, long long first,
                             long long last);

/* Tells the events hook of row's execution.queued (committed). */
void engine_queued_event(engine *e, const store_execution *row);

/* engine_forget for an execution cancelled through the API (counted). */
void engine_cancelled(engine *e, const char *execution_id);

/* Tells the waiters of id that it ended (for an end the caller saw itself). */
void engine_notify(engine *e, const char *execution_id);

/*
 * Waits for execution id to end: fn(ctx, ended) is called once, from some
 * engine thread, with ended true when it ended (or went away) and false when
 * timeout_ms passed first or the engine is stopping. The caller checks the
 * row itself after registering (an end before registration is not seen).
 * Returns -1 (fn never called) when the engine is stopping.
 */
typedef void (*engine_wait_fn)(void *ctx, bool ended);
int engine_wait(engine *e, const char *execution_id, long long timeout_ms, engine_wait_fn fn,
                void *ctx);

/*
 * engine_submit and engine_wait in one, with no row read in between: row
 * joins the group commit and fn(ctx, rc, ended) is called once, from an
 * engine thread: with the commit's refusal (AOP_ERR_QUOTA_EXCEEDED, the
 * store's error), or with AOP_OK and ended as for engine_wait once the
 * execution ends, begins to wait for an approval (ended false), or
 * timeout_ms passed (told no sooner than the commit). Returns -1 (fn never
 * called) when the engine is stopping.
 */
typedef void (*engine_run_fn)(void *ctx, aop_err rc, bool ended);
int engine_submit_wait(engine *e, const store_execution *row, long long quota,
                       long long timeout_ms, engine_run_fn fn, void *ctx);

/*
 * Commits row (a queued execution) in one transaction with the others
 * submitted meanwhile, wakes a loop, then calls fn(ctx, rc) from the
 * engine's inserter thread: AOP_OK once committed,
 * AOP_ERR_QUOTA_EXCEEDED when its user already had quota active
 * executions (store_execution_enqueue; that row alone is left out), else
 * the store's error for the whole batch. Under load one commit carries
 * hundreds of executions. Returns -1 (fn never called) when the engine is
 * stopping.
 */
typedef void (*engine_submit_fn)(void *ctx, aop_err rc);
int engine_submit(engine *e, const store_execution *row, long long quota, engine_submit_fn fn,
                  void *ctx);
/* Counts an execution refused by its user's quota (aop_quota_refusals_total);
 * engine_submit's refusals are counted already. */
void engine_refused_quota(engine *e);

/* memoryBytes of ended executions are counted in buckets up to these
 * bounds (the last bucket: above them all). */
#define ENGINE_MEMORY_BUCKETS 7
extern const long long engine_memory_bounds[ENGINE_MEMORY_BUCKETS - 1];

/* Counters for /metrics. */
typedef struct {
    long long running;   /* executions held by the loops now */
    long long started, succeeded, failed, cancelled, timed_out, requeued, pruned;
    long long node_runs, http_calls, llm_calls;
    /* node attempts refused by NODE_OUTPUT_MAX_BYTES, EXECUTION_MEMORY_MAX_BYTES */
    long long refused_output, refused_memory;
    /* LLM calls refused by a budget (BUDGET_EXCEEDED) */
    long long budget_refusals;
    /* executions refused by QUOTA_ACTIVE_EXECUTIONS (QUOTA_EXCEEDED) */
    long long quota_refusals;
    /* executions ended by the engine, by memoryBytes (not cumulative) */
    long long memory_buckets[ENGINE_MEMORY_BUCKETS];
    long long memory_sum, memory_max;
} engine_stats;
void engine_read_stats(engine *e, engine_stats *out);

/* Whether user_id may execute workflow w: its owner, an editor, or an
 * admin (workflow nodes, on save and when they run; kinds/workflow.c). */
bool engine_may_execute(store *s, const char *user_id, const store_workflow *w);

#endif
