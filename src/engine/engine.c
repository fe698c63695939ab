/*
 * engine.c - the loops: claim queued executions, walk their DAGs, commit
 * what they produce, end them.
 *
 * A run is one execution held in memory by one loop. Its nodes move
 * pending -> running -> succeeded | failed, or pending -> skipped. A node
 * is ready once every predecessor is resolved; it runs when at least one
 * incoming edge was taken (an edge is taken when its source succeeded and,
 * for a condition's edge with `when`, the branch matches), else it is
 * skipped, and so are the nodes below it that nothing else reaches.
 * A failed node (its attempts used up) ends the execution: nodes still in
 * flight end cancelled, nodes never started end skipped.
 *
 * What a node does is its kind's (kinds.h): the loop renders the node's
 * config, calls the start of its row, and takes the outcome from start
 * (inline kinds) or, later, from the kind's finish (a transfer collected
 * by calls.c, a timer fired here).
 */
#include "engine/engine.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "engine/engine_int.h"
#include "engine/exec_event.h"
#include "engine/render.h"

#define CLAIM_BATCH 256
#define DAG_CACHE 256

struct dag_slot {
    char key[UUID_STR_LEN + 24];
    dag *d;
    int64_t used;
};

int64_t engine_mono_ms(void)
{
    return clock_mono_ms();
}

/* The timer moment ms from now. The current millisecond is rounded up, so
 * the timer fires only once the whole wait has passed: a 300 ms delay never
 * lasts 299.x ms. */
int64_t engine_due_ms(long long ms)
{
    return (clock_mono_ns() + 999999) / 1000000 + ms;
}

void engine_count(long long *counter, long long by)
{
    __atomic_add_fetch(counter, by, __ATOMIC_RELAXED);
}

void engine_hook_ended(engine *e, const char *workflow_id, const char *execution_id)
{
    if (e->hooks.ended)
        e->hooks.ended(e->hooks.ctx, workflow_id, execution_id);
}

void engine_hook_changed(engine *e, const char *workflow_id, const char *execution_id)
{
    if (e->hooks.changed)
        e->hooks.changed(e->hooks.ctx, workflow_id, execution_id);
}

static void hook_cancel(engine *e, const char *execution_id)
{
    if (e->hooks.cancel)
        e->hooks.cancel(e->hooks.ctx, execution_id);
}

void engine_cancel_child(engine *e, const char *id)
{
    hook_cancel(e, id);
}

void engine_hook_pruned(engine *e)
{
    if (e->hooks.pruned)
        e->hooks.pruned(e->hooks.ctx);
}

/* ---- timers: a binary min-heap; items know their place ---- */

static void heap_place(loop *lp, size_t pos)
{
    struct heap_item *it = &lp->heap[pos];
    if (it->node < 0)
        it->r->heap_pos = pos + 1;
    else
        it->r->ns[it->node].heap_pos = pos + 1;
}

static void heap_swap(loop *lp, size_t a, size_t b)
{
    struct heap_item t = lp->heap[a];
    lp->heap[a] = lp->heap[b];
    lp->heap[b] = t;
    heap_place(lp, a);
    heap_place(lp, b);
}

static void heap_up(loop *lp, size_t pos)
{
    while (pos > 0 && lp->heap[(pos - 1) / 2].at > lp->heap[pos].at) {
        heap_swap(lp, pos, (pos - 1) / 2);
        pos = (pos - 1) / 2;
    }
}

static void heap_down(loop *lp, size_t pos)
{
    for (;;) {
        size_t l = 2 * pos + 1, m = pos;
        if (l < lp->heap_len && lp->heap[l].at < lp->heap[m].at)
            m = l;
        if (l + 1 < lp->heap_len && lp->heap[l + 1].at < lp->heap[m].at)
            m = l + 1;
        if (m == pos)
            return;
        heap_swap(lp, pos, m);
        pos = m;
    }
}

void heap_push(loop *lp, run *r, int node, int64_t at)
{
    if (lp->heap_len == lp->heap_cap) {
        lp->heap_cap = lp->heap_cap ? lp->heap_cap * 2 : 64;
        lp->heap = xrealloc(lp->heap, lp->heap_cap * sizeof(*lp->heap));
    }
    lp->heap[lp->heap_len] = (struct heap_item){at, r, node};
    heap_place(lp, lp->heap_len);
    heap_up(lp, lp->heap_len++);
}

/* pos is 1-based, as kept in the items' owners. */
void heap_remove(loop *lp, size_t pos)
{
    size_t i = pos - 1, last = --lp->heap_len;
    struct heap_item gone = lp->heap[i];
    if (gone.node < 0)
        gone.r->heap_pos = 0;
    else
        gone.r->ns[gone.node].heap_pos = 0;
    if (i == last)
        return;
    lp->heap[i] = lp->heap[last];
    heap_place(lp, i);
    heap_down(lp, i);
    heap_up(lp, i);
}

/* ---- definitions, cached per workflow version ---- */

static dag *load_dag(engine *e, const store_execution *row, char *err, size_t errlen)
{
    char key[sizeof(((struct dag_slot *)0)->key)];
    snprintf(key, sizeof(key), "%s:%lld", row->workflow_id, row->workflow_version);
    pthread_mutex_lock(&e->mu);
    for (int i = 0; i < e->ndags; i++)
        if (!strcmp(e->dags[i].key, key)) {
            e->dags[i].used = engine_mono_ms();
            dag_ref(e->dags[i].d);
            dag *d = e->dags[i].d;
            pthread_mutex_unlock(&e->mu);
            return d;
        }
    pthread_mutex_unlock(&e->mu);

    arena a = {0};
    char *snap = NULL;
    dag *d = NULL;
    aop_err rc = store_workflow_version_get(e->st, row->workflow_id, row->workflow_version,
                                            &snap, &a);
    json_t *root = rc == AOP_OK ? json_loads(snap, 0, NULL) : NULL;
    arena_free(&a);
    if (!root) {
        snprintf(err, errlen, "version %lld of the workflow cannot be read",
                 row->workflow_version);
        return NULL;
    }
    d = dag_build(json_object_get(root, "definition"), err, errlen);
    if (d) {
        const char *owner = json_string_value(json_object_get(root, "ownerId"));
        str_copy(d->owner_id, sizeof(d->owner_id), owner ? owner : "");
    }
    json_decref(root);
    if (!d)
        return NULL;

    pthread_mutex_lock(&e->mu);
    int slot = e->ndags;
    if (slot == DAG_CACHE) {
        slot = 0;
        for (int i = 1; i < e->ndags; i++)
            if (e->dags[i].used < e->dags[slot].used)
                slot = i;
        dag_unref(e->dags[slot].d);
    } else {
        e->ndags++;
    }
    str_copy(e->dags[slot].key, sizeof(e->dags[slot].key), key);
    e->dags[slot].d = d;
    e->dags[slot].used = engine_mono_ms();
    dag_ref(d);
    pthread_mutex_unlock(&e->mu);
    return d;
}

/* ---- runs ---- */

static void touch(loop *lp, run *r)
{
    if (r->touched)
        return;
    r->touched = true;
    r->touched_next = lp->touched;
    lp->touched = r;
}

static void push_ready(run *r, int i)
{
    if (r->ns[i].queued)
        return;
    r->ns[i].queued = true;
    r->ready[r->nready++] = i;
}

/* ---- events ----
 *
 * Every change a run commits brings its events (docs/api.md, "Live
 * execution events"): they wait in r->evs (a type and the text of its
 * fields each), and the flush that writes the change numbers them after
 * r->seq, stamps them with its time and writes them in the same
 * transaction; once it committed they go to the events hook. A flush that
 * fails keeps them for the next; a lost run drops them with everything
 * else. */

/* r's event of type with fields (malloc'd, taken): the text of its JSON
 * members after executionId, seq and ts. */
static void run_event(run *r, const char *type, char *fields)
{
    if (r->nevs == r->evs_cap) {
        r->evs_cap = r->evs_cap ? r->evs_cap * 2 : 8;
        r->evs = xrealloc(r->evs, sizeof(*r->evs) * (size_t)r->evs_cap);
    }
    r->evs[r->nevs++] = (store_exec_event){0, (char *)type, r->ev_ts, fields};
    touch(r->lp, r);
}

/*
 * Last in the flush transaction: the waiting events of every run of list
 * still ours, numbered after its seq (read now when its claim could not)
 * and stamped now, in one statement, so that little is left between their
 * time and the commit.
 */
static aop_err write_events(store *s, run *list)
{
    int n = 0;
    for (run *r = list; r; r = r->touched_next)
        n += r->nevs > 0 && !r->lost;
    if (!n)
        return AOP_OK;
    store_exec_events *rows = xcalloc((size_t)n, sizeof(*rows));
    char ts[25];
    clock_format_rfc3339(clock_now_ms(), ts);
    aop_err rc = AOP_OK;
    n = 0;
    for (run *r = list; r && rc == AOP_OK; r = r->touched_next) {
        if (!r->nevs || r->lost)
            continue;
        if (r->seq < 0)
            rc = store_execution_events_last(s, r->row.id, &r->seq);
        str_copy(r->ev_ts, sizeof(r->ev_ts), ts);
        for (int k = 0; k < r->nevs; k++)
            r->evs[k].seq = r->seq + k + 1;
        rows[n++] = (store_exec_events){r->row.id, r->evs, r->nevs};
    }
    if (rc == AOP_OK)
        rc = store_execution_events_put(s, rows, n);
    free(rows);
    return rc;
}

static void events_clear(run *r)
{
    for (int k = 0; k < r->nevs; k++)
        free(r->evs[k].members);
    r->nevs = 0;
}

/* The fields of the engine's events are written as text, not built as
 * JSON values, and without printf: an execution of three transforms
 * writes eight of them, and this keeps them off its cost. Ids are
 * escaped; errors are JSON already. */

static void put_int(buf *b, long long v)
{
    char t[24];
    size_t k = sizeof(t);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        t[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        t[--k] = '-';
    buf_append(b, t + k, sizeof(t) - k);
}

/* A JSON number that reads back as v (0 for nothing spent, most often). */
static void put_real(buf *b, double v)
{
    char t[32];
    if (v == 0) {
        buf_puts(b, "0");
        return;
    }
    snprintf(t, sizeof(t), "%.17g", v);
    buf_puts(b, t);
}

/* "nodeId":"<id>" into b. */
static void node_id_member(buf *b, const run *r, int i)
{
    const char *id = r->d->nodes[i].id;
    buf_puts(b, "\"nodeId\":\"");
    buf_json_escape(b, id, strlen(id));
    buf_puts(b, "\"");
}

/* ,"usage":{...},"costUsd":n,"error":<error or null> into b. */
static void spend_members(buf *b, long long prompt, long long completion, double cost,
                          const char *error)
{
    buf_puts(b, ",\"usage\":{\"promptTokens\":");
    put_int(b, prompt);
    buf_puts(b, ",\"completionTokens\":");
    put_int(b, completion);
    buf_puts(b, ",\"totalTokens\":");
    put_int(b, prompt + completion);
    buf_puts(b, "},\"costUsd\":");
    put_real(b, cost);
    buf_puts(b, ",\"error\":");
    buf_puts(b, error ? error : "null");
}

static char *take(buf *b)
{
    size_t len;
    return buf_take(b, &len);
}

/* node.finished of node i, as its row says it ended. */
static void event_node_finished(run *r, int i)
{
    const node_state *n = &r->ns[i];
    bool timed = n->started_ms && n->finished_ms && n->status != EXEC_SKIPPED;
    buf b;
    buf_init(&b, 0);
    node_id_member(&b, r, i);
    buf_puts(&b, ",\"status\":\"");
    buf_puts(&b, exec_status_name(n->status));
    buf_puts(&b, "\",\"durationMs\":");
    if (timed)
        put_int(&b, (long long)(n->finished_ms - n->started_ms));
    else
        buf_puts(&b, "null");
    spend_members(&b, n->prompt_tokens, n->completion_tokens, n->cost_usd, n->error);
    run_event(r, "node.finished", take(&b));
}

static void event_node_started(run *r, int i, const char *kind)
{
    buf b;
    buf_init(&b, 0);
    node_id_member(&b, r, i);
    buf_puts(&b, ",\"type\":\"");
    buf_puts(&b, kind);
    buf_puts(&b, "\",\"attempt\":");
    put_int(&b, r->ns[i].attempts);
    run_event(r, "node.started", take(&b));
}

void engine_node_event(run *r, int i, const char *type, char *members)
{
    buf b;
    buf_init(&b, 0);
    node_id_member(&b, r, i);
    buf_puts(&b, ",");
    buf_puts(&b, members);
    free(members);
    run_event(r, type, take(&b));
}

static void event_node_waiting(run *r, int i)
{
    buf b;
    buf_init(&b, 0);
    node_id_member(&b, r, i);
    run_event(r, "node.waiting", take(&b));
}

static void event_node_retrying(run *r, int i, long long delay_ms)
{
    buf b;
    buf_init(&b, 0);
    node_id_member(&b, r, i);
    buf_puts(&b, ",\"attempt\":");
    put_int(&b, r->ns[i].attempts);
    buf_puts(&b, ",\"error\":");
    buf_puts(&b, r->ns[i].error ? r->ns[i].error : "null");
    buf_puts(&b, ",\"delayMs\":");
    put_int(&b, delay_ms);
    run_event(r, "node.retrying", take(&b));
}

/* execution.started (status) or execution.finished (end: its row). */
static void event_execution(run *r, const char *type, const char *status,
                            const store_execution *end)
{
    buf b;
    buf_init(&b, 0);
    buf_puts(&b, "\"workflowId\":\"");
    buf_puts(&b, r->row.workflow_id);
    buf_puts(&b, "\",\"status\":\"");
    buf_puts(&b, status);
    buf_puts(&b, "\"");
    if (end) {
        buf_puts(&b, ",\"durationMs\":");
        put_int(&b, end->duration_ms);
        spend_members(&b, end->prompt_tokens, end->completion_tokens, end->cost_usd, end->error);
    }
    run_event(r, type, take(&b));
}

/* After the flush that wrote r's events committed: the hook hears them. */
static void events_done(engine *e, run *r)
{
    if (!r->nevs)
        return;
    if (e->hooks.events)
        e->hooks.events(e->hooks.ctx, r->row.workflow_id, r->row.id, r->evs, r->nevs);
    r->seq += r->nevs;
    events_clear(r);
}

void engine_queued_event(engine *e, const store_execution *row)
{
    char members[128], ts[25];
    if (!e->hooks.events)
        return;
    snprintf(members, sizeof(members), STORE_QUEUED_MEMBERS, row->workflow_id);
    str_copy(ts, sizeof(ts), row->created_at);
    store_exec_event ev = {1, "execution.queued", ts, members};
    e->hooks.events(e->hooks.ctx, row->workflow_id, row->id, &ev, 1);
}

/* llm.delta: what each streaming node received and has not sent yet. */
struct delta_buf {
    buf text;
    int attempt; /* whose text it holds */
    int64_t sent_ms;
};

static void delta_send(run *r, int i)
{
    struct delta_buf *d = &r->deltas[i];
    engine *e = r->lp->e;
    if (!d->text.len)
        return;
    if (e->hooks.events) {
        buf m;
        char ts[25];
        buf_init(&m, 0);
        node_id_member(&m, r, i);
        buf_printf(&m, ",\"attempt\":%d,\"text\":\"", r->ns[i].attempts);
        buf_json_escape(&m, d->text.data, d->text.len);
        buf_puts(&m, "\"");
        clock_format_rfc3339(clock_now_ms(), ts);
        store_exec_event ev = {-1, "llm.delta", ts, m.data};
        e->hooks.events(e->hooks.ctx, r->row.workflow_id, r->row.id, &ev, 1);
        buf_free(&m);
    }
    buf_reset(&d->text);
    d->sent_ms = engine_mono_ms();
}

void engine_delta(run *r, int i, const char *text, size_t len, bool end)
{
    if (!r->deltas)
        r->deltas = xcalloc((size_t)r->d->n, sizeof(*r->deltas));
    struct delta_buf *d = &r->deltas[i];
    if (!d->text.max)
        buf_init(&d->text, EXEC_EVENT_DELTA_MAX + 1);
    if (d->attempt != r->ns[i].attempts) { /* what a failed attempt left is not sent */
        buf_reset(&d->text);
        d->attempt = r->ns[i].attempts;
    }
    while (len) { /* a text past the bound goes out in parts */
        size_t room = EXEC_EVENT_DELTA_MAX - d->text.len, n = len < room ? len : room;
        buf_append(&d->text, text, n);
        text += n;
        len -= n;
        if (len)
            delta_send(r, i);
    }
    if (end || engine_mono_ms() - d->sent_ms >= ENGINE_DELTA_MS)
        delta_send(r, i);
}

/* An error object: {code, message} for a node, plus details when o has
 * them; plus nodeId (null when no node is to blame) for an execution. */
static char *error_text(const char *code, const char *message, bool execution,
                        const char *node_id)
{
    json_t *o = json_pack("{s:s, s:s}", "code", code, "message", message);
    if (o && execution)
        json_object_set_new(o, "nodeId", node_id ? json_string(node_id) : json_null());
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s ? s : xstrdup("{\"code\":\"INTERNAL_ERROR\",\"message\":\"out of memory\"}");
}

/* text (taken) when it fits max, else the marker that stands for it. */
static char *capped(char *text, size_t len, size_t max)
{
    if (len <= max)
        return text;
    text[str_utf8_prefix(text, ENGINE_OUTPUT_PREVIEW)] = '\0';
    json_t *m = json_pack("{s:b, s:I, s:s}", "truncated", 1, "sizeBytes", (json_int_t)len,
                          "preview", text);
    free(text);
    char *t = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    return t ? t : xstrdup("null");
}

/* ---- budgets ----
 *
 * What a run holds is counted in JSON bytes (json.h's sizes): its input, the
 * output of each node (also a failed attempt's, kept until the next), and
 * the rendered config of each attempt in flight. A value shared by
 * reference (a whole placeholder) counts in full wherever it is held, so
 * the count is an upper bound of the memory really taken. It is checked
 * where memory is taken, before taking it: a render gets what is left as
 * its budget (render.h), an output is measured while it is encoded for
 * storage, no further than what is left. */

const long long engine_memory_bounds[ENGINE_MEMORY_BUCKETS - 1] = {
    64LL << 10, 256LL << 10, 1LL << 20, 4LL << 20, 16LL << 20, 64LL << 20};

/* r holds n bytes more (n < 0: fewer); memory_bytes keeps the peak. */
static void hold(run *r, long long n)
{
    r->memory_now += n;
    if (r->memory_now > r->memory_bytes)
        r->memory_bytes = r->memory_now;
}

/* What the next value node work makes in r may take: NODE_OUTPUT_MAX_BYTES,
 * or less when that is all the execution has left (*memory is then true). */
static size_t room(const engine *e, const run *r, bool *memory)
{
    long long left = e->cfg->execution_memory_max_bytes - r->memory_now;
    *memory = left < e->cfg->node_output_max_bytes;
    if (!*memory)
        return (size_t)e->cfg->node_output_max_bytes;
    return left > 0 ? (size_t)left : 0;
}

/* Fails o, not retried: what (the rendered config, the output) would pass
 * the execution's memory, or else the node's cap. */
static void refuse(engine *e, node_outcome *o, bool memory, const char *what)
{
    if (memory) {
        engine_count(&e->stats.refused_memory, 1);
        outcome_fail(o, "MEMORY_LIMIT", false,
                     "%s would take the execution past EXECUTION_MEMORY_MAX_BYTES (%lld bytes)",
                     what, e->cfg->execution_memory_max_bytes);
        return;
    }
    engine_count(&e->stats.refused_output, 1);
    outcome_fail(o, "OUTPUT_TOO_LARGE", false, "%s is larger than NODE_OUTPUT_MAX_BYTES (%lld bytes)",
                 what, e->cfg->node_output_max_bytes);
}

/* text (taken, len bytes) as r stores it: whole while r's stored outputs
 * stay within EXECUTION_STORED_MAX_BYTES, else the marker. A text no longer
 * than a marker's preview is kept whole all the same: its marker would not
 * be smaller, and a condition's stored {"result": …} must stay readable for
 * a resume to take the same branch. */
static char *stored_text(const engine *e, const run *r, char *text, size_t len)
{
    long long left = e->cfg->execution_stored_max_bytes - r->stored_bytes;
    if (len <= ENGINE_OUTPUT_PREVIEW)
        return text;
    return capped(text, len, left > 0 ? (size_t)left : 0);
}

/* Node n of r forgets its output and gives back what it counted. */
static void drop_output(run *r, node_state *n)
{
    hold(r, -n->out_bytes);
    r->stored_bytes -= n->stored;
    json_decref(n->output);
    free(n->out_text);
    n->output = NULL;
    n->out_text = NULL;
    n->out_bytes = n->stored = 0;
}

/* Keeps o's output (taken) as node n's, with the text it is stored as. An
 * output that does not fit room() is dropped, and o fails instead. */
static void keep_output(engine *e, run *r, node_state *n, node_outcome *o)
{
    bool memory;
    size_t len = 0;
    char *text = json_dumps_within(o->output, room(e, r, &memory), &len);
    if (!text) {
        json_decref(o->output);
        o->output = NULL;
        refuse(e, o, memory, "the node's output");
        return;
    }
    n->output = o->output;
    o->output = NULL;
    n->out_bytes = (long long)len;
    hold(r, n->out_bytes);
    n->out_text = stored_text(e, r, text, len);
    n->stored = (long long)strlen(n->out_text);
    r->stored_bytes += n->stored;
}

/* Counts the memoryBytes of an execution the engine ended, for /metrics. */
static void count_memory(engine *e, long long bytes)
{
    int k = 0;
    while (k < ENGINE_MEMORY_BUCKETS - 1 && bytes > engine_memory_bounds[k])
        k++;
    engine_count(&e->stats.memory_buckets[k], 1);
    engine_count(&e->stats.memory_sum, bytes);
    long long seen = __atomic_load_n(&e->stats.memory_max, __ATOMIC_RELAXED);
    while (bytes > seen && !__atomic_compare_exchange_n(&e->stats.memory_max, &seen, bytes, true,
                                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

int engine_node_hold(loop *lp, run *r, int i, long long bytes, node_outcome *o)
{
    bool memory;
    size_t left = room(lp->e, r, &memory);
    node_state *n = &r->ns[i];
    if (bytes > (long long)left || n->held + bytes > lp->e->cfg->node_output_max_bytes) {
        refuse(lp->e, o, bytes > (long long)left && memory, "the agent's transcript");
        return -1;
    }
    n->held += bytes;
    hold(r, bytes);
    return 0;
}

void engine_node_park(run *r, int i)
{
    if (!r->ns[i].parked) {
        r->ns[i].parked = true;
        r->parked++;
    }
}

static void unpark(run *r, node_state *n)
{
    if (n->parked) {
        n->parked = false;
        r->parked--;
    }
}

void engine_node_unpark(run *r, int i)
{
    unpark(r, &r->ns[i]);
}

static void stop_node(loop *lp, run *r, int i)
{
    node_state *n = &r->ns[i];
    if (n->agent)
        kind_agent_stop(lp, r, i);
    unpark(r, n);
    if (n->heap_pos)
        heap_remove(lp, n->heap_pos);
    if (n->call) {
        call_drop(lp, n->call);
        n->call = NULL;
    }
    n->timer = TIMER_NONE;
}

/* Ends the run: what is in flight stops with `status` (cancelled or
 * timed_out); the flush writes the end. */
static void end_run(run *r, exec_status status, char *error)
{
    if (r->ending) {
        free(error);
        return;
    }
    r->ending = true;
    r->end_status = status;
    r->end_error = error;
    exec_status cut = status == EXEC_TIMED_OUT ? EXEC_TIMED_OUT : EXEC_CANCELLED;
    int64_t now = clock_now_ms();
    for (int i = 0; i < r->d->n; i++) {
        node_state *n = &r->ns[i];
        if (n->status == EXEC_PENDING && n->resumed_wait) { /* it waited, and stops so */
            n->status = cut;
            n->finished_ms = now;
            n->dirty = true;
            event_node_finished(r, i);
            continue;
        }
        if (n->status == EXEC_PENDING) { /* never reached; a restored one had succeeded */
            n->status = n->restored ? EXEC_SUCCEEDED : EXEC_SKIPPED;
            n->dirty = !n->restored;
            if (!n->restored)
                event_node_finished(r, i);
            continue;
        }
        if (n->status != EXEC_RUNNING && n->status != EXEC_WAITING)
            continue;
        if (n->parked && n->child[0] && status != EXEC_TIMED_OUT) /* its own deadline ends it */
            hook_cancel(r->lp->e, n->child);
        if (n->agent && status != EXEC_TIMED_OUT)
            kind_agent_cancel(r->lp, r, i);
        stop_node(r->lp, r, i);
        if (n->status == EXEC_RUNNING)
            r->inflight--;
        else
            r->nwaiting--;
        n->status = cut;
        n->finished_ms = now;
        n->dirty = true;
        event_node_finished(r, i);
    }
    if (r->heap_pos)
        heap_remove(r->lp, r->heap_pos);
    touch(r->lp, r);
}

static void resolve(run *r, int i)
{
    const dag_node *dn = &r->d->nodes[i];
    node_state *n = &r->ns[i];
    r->unresolved--;
    for (int k = 0; k < dn->nout; k++) {
        const dag_edge *ed = &r->d->out[dn->first_out + k];
        node_state *t = &r->ns[ed->to];
        if (n->status == EXEC_SUCCEEDED && (ed->when < 0 || ed->when == (int)n->result))
            t->active_in = true;
        if (--t->preds_left == 0)
            push_ready(r, ed->to);
    }
}

/* A node's error from a failed outcome: error_text's, with o's details. */
static char *node_error_text(const node_outcome *o)
{
    if (!o->details)
        return error_text(o->code, o->message, false, NULL);
    json_t *v = json_pack("{s:s, s:s, s:O}", "code", o->code, "message", o->message, "details",
                          o->details);
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    return s ? s : error_text(o->code, o->message, false, NULL);
}

static void node_finished(run *r, int i, exec_status st)
{
    node_state *n = &r->ns[i];
    n->status = st;
    n->finished_ms = clock_now_ms();
    n->dirty = true;
    touch(r->lp, r);
    event_node_finished(r, i);
}

static void attempt(loop *lp, run *r, int i);

static void node_done(loop *lp, run *r, int i, node_outcome *o);

void loop_node_done(loop *lp, run *r, int i, node_outcome *o)
{
    node_done(lp, r, i, o);
    json_decref(o->details);
    o->details = NULL;
}

static void node_done(loop *lp, run *r, int i, node_outcome *o)
{
    node_state *n = &r->ns[i];
    const dag_node *dn = &r->d->nodes[i];
    const node_kind *kind = &node_kinds[dn->kind];
    n->call = NULL;
    if (n->heap_pos)
        heap_remove(lp, n->heap_pos);
    n->timer = TIMER_NONE;
    if (n->parked && n->child[0] && !n->agent) /* the wait ended before the child did */
        hook_cancel(lp->e, n->child);
    unpark(r, n);
    if (kind->runs != KIND_INLINE)
        r->inflight--;
    n->prompt_tokens += o->prompt_tokens;
    n->completion_tokens += o->completion_tokens;
    n->cost_usd += o->cost_usd;
    engine_budget_settle(r, i, o->cost_usd);
    if (o->model[0]) {
        free(n->model);
        n->model = xstrdup(o->model);
    }
    hold(r, -n->held); /* the attempt's config is gone */
    n->held = 0;
    drop_output(r, n);
    if (o->output)
        keep_output(lp->e, r, n, o);
    free(n->error);
    n->error = NULL;
    if (o->ok) {
        n->result = kind->branch && kind->branch(n->output);
        node_finished(r, i, EXEC_SUCCEEDED);
        resolve(r, i);
        return;
    }
    n->error = node_error_text(o);
    if (o->retryable && n->attempts < dn->max_attempts && !r->ending) {
        long long wait = dn->backoff_ms;
        for (int k = 1; k < n->attempts && wait < 600000; k++)
            wait *= 2;
        if (wait > 600000)
            wait = 600000;
        n->timer = TIMER_RETRY;
        heap_push(lp, r, i, engine_due_ms(wait));
        event_node_retrying(r, i, wait);
        r->inflight++;
        n->dirty = true;
        touch(lp, r);
        return;
    }
    node_finished(r, i, EXEC_FAILED);
    r->unresolved--;
    end_run(r, EXEC_FAILED, error_text(o->code, o->message, true, dn->id));
}

void engine_node_timer(loop *lp, run *r, int i, long long wait_ms)
{
    node_state *n = &r->ns[i];
    long long limit = r->d->nodes[i].timeout_ms;
    n->timer = limit && limit < wait_ms ? TIMER_TIMEOUT : TIMER_NODE;
    heap_push(lp, r, i, engine_due_ms(n->timer == TIMER_TIMEOUT ? limit : wait_ms));
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

/* Node i's config with every template rendered (new), held by the
 * attempt until its outcome; or NULL with o failed. */
static json_t *render_config(engine *e, run *r, int i, node_outcome *o)
{
    bool memory;
    render_budget b = {.max = room(e, r, &memory)};
    render_scope sc = {r->input, output_of, r, NULL};
    char err[256];
    json_t *c = render_value(r->d->nodes[i].config, &sc, &b, err, sizeof(err));
    if (c) {
        r->ns[i].held = (long long)b.used;
        hold(r, r->ns[i].held);
    } else if (b.over) {
        refuse(e, o, memory, "the node's rendered config");
    } else {
        outcome_fail(o, "TEMPLATE_ERROR", false, "%s", err);
    }
    return c;
}

json_t *engine_render_args(loop *lp, run *r, int i, const json_t *v, const json_t *args,
                           node_outcome *o)
{
    bool memory;
    render_budget b = {.max = room(lp->e, r, &memory)};
    json_t *none = args ? NULL : json_null();
    render_scope sc = {r->input, output_of, r, args ? args : none};
    char err[256];
    json_t *out = render_value(v, &sc, &b, err, sizeof(err));
    json_decref(none);
    (void)i;
    if (!out && b.over)
        refuse(lp->e, o, memory, "the tool's rendered request");
    else if (!out)
        outcome_fail(o, "TEMPLATE_ERROR", false, "%s", err);
    return out;
}

static void attempt(loop *lp, run *r, int i)
{
    node_state *n = &r->ns[i];
    const node_kind *k = &node_kinds[r->d->nodes[i].kind];
    bool again = n->resumed_wait; /* the attempt that waited goes on */
    n->resumed_wait = false;
    if (!again)
        n->attempts++;
    if (n->status != EXEC_RUNNING) {
        n->status = EXEC_RUNNING;
        if (!n->started_ms)
            n->started_ms = clock_now_ms();
    }
    engine_count(&lp->e->stats.node_runs, 1);
    if (!again)
        event_node_started(r, i, k->name);
    if (k->runs != KIND_INLINE)
        r->inflight++; /* until its outcome reaches loop_node_done */
    node_outcome o = {0};
    json_t *cfgv = render_config(lp->e, r, i, &o);
    node_step step = cfgv ? k->start(lp, r, i, cfgv, &o) : NODE_DONE;
    if (step == NODE_DONE) {
        loop_node_done(lp, r, i, &o);
        return;
    }
    if (step == NODE_WAITING) {
        n->status = EXEC_WAITING;
        r->nwaiting++;
        if (!again)
            event_node_waiting(r, i);
    }
    n->dirty = true; /* the row says running (or waiting): a crash resumes it */
    touch(lp, r);
}

static void start_node(loop *lp, run *r, int i)
{
    node_state *n = &r->ns[i];
    if (r->d->nodes[i].npred > 0 && !n->active_in) {
        node_finished(r, i, EXEC_SKIPPED);
        resolve(r, i);
        return;
    }
    if (n->restored) {
        n->status = EXEC_SUCCEEDED;
        resolve(r, i);
        return;
    }
    attempt(lp, r, i);
}

static void advance(loop *lp, run *r)
{
    while (r->nready > 0 && !r->ending)
        start_node(lp, r, r->ready[--r->nready]);
    if (!r->ending && r->unresolved == 0 && r->inflight == 0)
        end_run(r, EXEC_SUCCEEDED, NULL);
    else if (!r->ending && r->nwaiting > 0 && r->inflight == 0 && r->nready == 0 && !r->parking) {
        r->parking = true; /* only a decision moves it on: it leaves the loop */
        touch(lp, r);
    }
}

static void free_run(run *r)
{
    for (int i = 0; r->d && i < r->d->n; i++) {
        node_state *n = &r->ns[i];
        json_decref(n->output);
        free(n->error);
        free(n->model);
        free(n->out_text);
        json_decref(n->wait_conf);
    }
    free(r->ns);
    free(r->ready);
    free(r->settles);
    events_clear(r);
    free(r->evs);
    for (int i = 0; r->deltas && i < r->d->n; i++)
        buf_free(&r->deltas[i].text);
    free(r->deltas);
    json_decref(r->input);
    dag_unref(r->d);
    free(r->row.input);
    free(r->end_error);
    free(r);
}

static void unlink_run(loop *lp, run *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        lp->runs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    __atomic_sub_fetch(&lp->nruns, 1, __ATOMIC_RELAXED);
    if (r->touched) { /* off the flush list */
        run **p = &lp->touched;
        while (*p && *p != r)
            p = &(*p)->touched_next;
        if (*p)
            *p = r->touched_next;
    }
}

/* Forgets r without writing anything: what is in flight is dropped. */
static void drop_run(loop *lp, run *r)
{
    for (int i = 0; i < r->d->n; i++)
        stop_node(lp, r, i);
    if (r->heap_pos)
        heap_remove(lp, r->heap_pos);
    unlink_run(lp, r);
    free_run(r);
}

/* ---- resume ---- */

static void restore_nodes(engine *e, run *r)
{
    arena a = {0};
    store_exec_node *rows = NULL;
    int n = 0;
    if (store_execution_nodes(e->st, r->row.id, &rows, &n, &a) != AOP_OK) {
        arena_free(&a);
        return; /* runs from the start; the rows are replaced */
    }
    for (int k = 0; k < n; k++) {
        int i = dag_find(r->d, rows[k].node_id, strlen(rows[k].node_id));
        if (i < 0)
            continue;
        node_state *ns = &r->ns[i];
        int64_t t = 0;
        if (rows[k].started_at[0] && clock_parse_rfc3339(rows[k].started_at, 0, &t) == 0)
            ns->started_ms = t;
        ns->attempts = (int)rows[k].attempts;
        if (rows[k].status == EXEC_RUNNING)
            ns->resumed = ns->attempts;
        if (rows[k].status == EXEC_WAITING) {
            ns->resumed_wait = true; /* its decision is in the store, or still to come */
            continue;
        }
        if (rows[k].status != EXEC_SUCCEEDED) {
            if (ns->attempts >= r->d->nodes[i].max_attempts)
                ns->attempts = r->d->nodes[i].max_attempts - 1; /* one more try */
            continue;
        }
        ns->restored = true;
        ns->dirty = false; /* its row is already right */
        ns->output = rows[k].output ? json_loads(rows[k].output, JSON_DECODE_ANY, NULL) : NULL;
        ns->out_text = rows[k].output ? xstrdup(rows[k].output) : NULL;
        ns->out_bytes = ns->stored = ns->out_text ? (long long)strlen(ns->out_text) : 0;
        hold(r, ns->out_bytes);
        r->stored_bytes += ns->stored;
        const node_kind *kind = &node_kinds[r->d->nodes[i].kind];
        ns->result = kind->branch && kind->branch(ns->output);
        ns->prompt_tokens = rows[k].prompt_tokens;
        ns->completion_tokens = rows[k].completion_tokens;
        ns->cost_usd = rows[k].cost_usd;
        ns->model = rows[k].model ? xstrdup(rows[k].model) : NULL;
        if (rows[k].finished_at[0] && clock_parse_rfc3339(rows[k].finished_at, 0, &t) == 0)
            ns->finished_ms = t;
    }
    arena_free(&a);
}

/* ---- claim ---- */

static void open_failed(loop *lp, run *r, const char *why)
{
    r->unresolved = 0;
    end_run(r, EXEC_FAILED, error_text("WORKFLOW_UNAVAILABLE", why, true, NULL));
    (void)lp;
}

static void open_run(loop *lp, const store_execution *row)
{
    engine *e = lp->e;
    run *r = xcalloc(1, sizeof(*r));
    r->lp = lp;
    r->row = *row;
    r->row.input = xstrdup(row->input ? row->input : "{}");
    r->row.output = r->row.error = NULL;
    r->input = json_loads(r->row.input, JSON_DECODE_ANY, NULL);
    hold(r, (long long)strlen(r->row.input));
    int64_t t = 0;
    r->started_ms = clock_parse_rfc3339(row->started_at, 0, &t) == 0 ? t : clock_now_ms();
    /* execution.queued is seq 1 (store_execution_enqueue); a resumed run
     * goes on after what the claims before it committed, and starts
     * where no claim got as far as committing the start */
    r->seq = 1;
    if (row->claims > 1 && store_execution_events_last(e->st, row->id, &r->seq) != AOP_OK)
        r->seq = -1; /* unknown: the first flush reads it (write_events) */
    r->next = lp->runs;
    if (lp->runs)
        lp->runs->prev = r;
    lp->runs = r;
    __atomic_add_fetch(&lp->nruns, 1, __ATOMIC_RELAXED); /* read by /metrics */
    engine_count(&e->stats.started, 1);

    if (r->seq >= 0 && r->seq < 2)
        event_execution(r, "execution.started", "running", NULL);
    char why[160];
    r->d = load_dag(e, row, why, sizeof(why));
    if (!r->d) {
        static dag empty = {.refs = 1 << 30};
        r->d = &empty;
        dag_ref(r->d);
        open_failed(lp, r, why);
        return;
    }
    int n = r->d->n;
    r->ns = xcalloc(n ? (size_t)n : 1, sizeof(node_state));
    r->ready = xcalloc(n ? (size_t)n : 1, sizeof(int));
    r->unresolved = n;
    for (int i = 0; i < n; i++) {
        r->ns[i].status = EXEC_PENDING;
        r->ns[i].dirty = true; /* every node is listed, pending until it starts */
        r->ns[i].preds_left = r->d->nodes[i].npred;
        if (r->ns[i].preds_left == 0)
            push_ready(r, i);
    }
    if (row->claims > 1) {
        budget_resumed(e, r);
        restore_nodes(e, r);
    }
    int64_t left = row->deadline_ms - clock_now_ms();
    heap_push(lp, r, -1, engine_due_ms(left > 0 ? left : 0));
    advance(lp, r);
}

/* How many runs one loop holds at most. */
static int loop_limit(const engine *e)
{
    long long most = e->cfg->worker_max_executions;
    return (int)(most > 0 && most < ENGINE_LOOP_MAX_RUNS ? most : ENGINE_LOOP_MAX_RUNS);
}

struct handed {
    struct handed *next;
    store_execution row;
};

loop *engine_place(engine *e)
{
    loop *best = NULL;
    int best_room = 0, limit = loop_limit(e);
    for (int k = 0; k < e->nloops; k++) {
        loop *lp = &e->loops[k];
        pthread_mutex_lock(&lp->mu);
        int room = limit - __atomic_load_n(&lp->nruns, __ATOMIC_RELAXED) - lp->reserved;
        if (room > best_room) {
            if (best) /* the promise goes to this one instead */
                engine_unplace(best);
            lp->reserved++;
            best = lp;
            best_room = room;
        }
        pthread_mutex_unlock(&lp->mu);
    }
    return best;
}

void engine_unplace(loop *lp)
{
    pthread_mutex_lock(&lp->mu);
    lp->reserved--;
    pthread_mutex_unlock(&lp->mu);
}

void engine_hand_over(loop *lp, store_execution *row)
{
    struct handed *h = xmalloc(sizeof(*h));
    h->row = *row;
    row->input = NULL;
    pthread_mutex_lock(&lp->mu);
    h->next = lp->handed;
    lp->handed = h;
    pthread_mutex_unlock(&lp->mu);
    curl_multi_wakeup(lp->multi);
}

/* Opens the rows handed over (the list is newest first). */
static void open_handed(loop *lp, struct handed *list)
{
    struct handed *rev = NULL;
    int n = 0;
    while (list) {
        struct handed *h = list;
        list = h->next;
        h->next = rev;
        rev = h;
    }
    while (rev) {
        struct handed *h = rev;
        rev = h->next;
        open_run(lp, &h->row);
        free(h->row.input);
        free(h);
        n++;
    }
    if (!n)
        return;
    pthread_mutex_lock(&lp->mu);
    lp->reserved -= n;
    pthread_mutex_unlock(&lp->mu);
    engine_hook_changed(lp->e, NULL, NULL); /* stats count running ones */
}

static int claim(loop *lp)
{
    engine *e = lp->e;
    int room = loop_limit(e) - lp->nruns;
    /* Runs that only wait for other executions hold no place: their
     * children must be able to start, whatever WORKER_MAX_EXECUTIONS is.
     * ENGINE_LOOP_MAX_RUNS still bounds the loop. */
    for (run *r = lp->runs; room <= 0 && r; r = r->next)
        room += r->parked > 0 && r->parked == r->inflight && !r->ending;
    if (lp->nruns + room > ENGINE_LOOP_MAX_RUNS)
        room = ENGINE_LOOP_MAX_RUNS - lp->nruns;
    if (room <= 0)
        return 0;
    if (room > CLAIM_BATCH)
        room = CLAIM_BATCH;
    pthread_mutex_lock(&lp->mu); /* the places promised elsewhere, then this claim's */
    room -= lp->reserved;
    if (room > 0)
        lp->reserved += room;
    pthread_mutex_unlock(&lp->mu);
    if (room <= 0)
        return 0;
    arena a = {0};
    store_execution *rows = NULL;
    int n = 0;
    char after[UUID_STR_LEN];
    pthread_mutex_lock(&e->turn_mu);
    str_copy(after, sizeof(after), e->turn);
    pthread_mutex_unlock(&e->turn_mu);
    aop_err rc = store_execution_claim(e->st, e->owner, clock_now_ms, e->cfg->execution_lease_ms,
                                       room, after, &rows, &n, &a);
    if (rc != AOP_OK) {
        log_warn("cannot claim executions", LF_S("error", err_code(rc)));
        n = 0;
    }
    if (n > 0) { /* the next claim, of any loop, resumes the round after this user */
        pthread_mutex_lock(&e->turn_mu);
        str_copy(e->turn, sizeof(e->turn), rows[n - 1].triggered_by);
        pthread_mutex_unlock(&e->turn_mu);
    }
    for (int i = 0; i < n; i++)
        open_run(lp, &rows[i]);
    arena_free(&a);
    pthread_mutex_lock(&lp->mu);
    lp->reserved -= room;
    pthread_mutex_unlock(&lp->mu);
    if (n > 0)
        engine_hook_changed(e, NULL, NULL); /* stats count running ones */
    return n == room ? 1 : 0;
}

/* ---- writing ---- */

static void node_row(const run *r, int i, store_exec_node *out, char at[2][25])
{
    const node_state *n = &r->ns[i];
    memset(out, 0, sizeof(*out));
    out->node_id = (char *)r->d->nodes[i].id;
    out->type = (char *)node_kinds[r->d->nodes[i].kind].name;
    out->status = n->status;
    out->attempts = n->attempts;
    if (n->started_ms)
        clock_format_rfc3339(n->started_ms, at[0]);
    else
        at[0][0] = '\0';
    if (n->finished_ms && n->status != EXEC_RUNNING && n->status != EXEC_SKIPPED)
        clock_format_rfc3339(n->finished_ms, at[1]);
    else
        at[1][0] = '\0';
    str_copy(out->started_at, sizeof(out->started_at), at[0]);
    str_copy(out->finished_at, sizeof(out->finished_at), at[1]);
    out->duration_ms = at[0][0] && at[1][0] ? n->finished_ms - n->started_ms : -1;
    out->prompt_tokens = n->prompt_tokens;
    out->completion_tokens = n->completion_tokens;
    out->total_tokens = n->prompt_tokens + n->completion_tokens;
    out->cost_usd = n->cost_usd;
    out->model = n->model;
    out->error = n->status == EXEC_RUNNING && n->timer != TIMER_RETRY ? NULL : n->error;
    out->output = n->status == EXEC_RUNNING ? NULL : n->out_text;
}

/* The execution's output: its sinks' stored outputs by id (node ids need
 * no escaping), null for a sink that did not succeed. */
static char *run_output(const run *r)
{
    buf b;
    buf_init(&b, 0);
    buf_puts(&b, "{");
    int k = 0;
    for (int i = 0; i < r->d->n; i++) {
        if (!dag_is_sink(r->d, i))
            continue;
        const node_state *n = &r->ns[i];
        buf_printf(&b, "%s\"%s\":", k++ ? "," : "", r->d->nodes[i].id);
        buf_puts(&b, n->status == EXEC_SUCCEEDED && n->out_text ? n->out_text : "null");
    }
    buf_puts(&b, "}");
    size_t len = 0;
    char *text = buf_take(&b, &len);
    return stored_text(r->lp->e, r, text ? text : xstrdup("{}"), len);
}

static void end_row(run *r, store_execution *x, char **output)
{
    *x = r->row;
    x->status = r->end_status;
    int64_t now = clock_now_ms();
    clock_format_rfc3339(now, x->finished_at);
    x->duration_ms = now - r->started_ms;
    if (x->duration_ms < 0)
        x->duration_ms = 0;
    x->error = r->end_error;
    x->output = NULL;
    if (r->end_status == EXEC_SUCCEEDED)
        x->output = *output = run_output(r);
    x->prompt_tokens = x->completion_tokens = 0;
    x->cost_usd = 0;
    for (int i = 0; i < r->d->n; i++) {
        x->prompt_tokens += r->ns[i].prompt_tokens;
        x->completion_tokens += r->ns[i].completion_tokens;
        x->cost_usd += r->ns[i].cost_usd;
    }
    x->total_tokens = x->prompt_tokens + x->completion_tokens;
    x->memory_bytes = r->memory_bytes;
}

/* What an ended run adds to its workflow's analytics counters. */
typedef struct {
    char workflow_id[UUID_STR_LEN];
    exec_status status;
    long long duration_ms, total_tokens;
    double cost_usd;
    char started_at[25];
} wf_tally;

typedef struct {
    engine *e;
    run *list;
    wf_tally *tallies; /* one per run of list that ends */
    int ntallies;
    store_budget_deltas spend; /* what the runs' LLM calls held and cost */
} flush_ctx;

/* r waits at its approval nodes: the row says so (no lease, no slot), and
 * each node that began to wait has its approvals row, with what is left
 * of the execution's timeout (paused until it runs again). */
static aop_err park_run(store *s, engine *e, run *r)
{
    int64_t now = clock_now_ms();
    aop_err rc = store_execution_wait(s, r->row.id, e->owner, r->row.claims);
    for (int i = 0; rc == AOP_OK && i < r->d->n; i++) {
        if (r->ns[i].status != EXEC_WAITING || !r->ns[i].wait_conf)
            continue;
        store_approval ap;
        kind_approval_row(r, i, r->ns[i].wait_conf, now, &ap);
        long long left = r->row.deadline_ms - now;
        rc = store_approval_put(s, &ap, left > 0 ? left : 0);
    }
    return rc;
}

/* The leases of every run of the list, checked in one go: a run no longer
 * ours is lost, and nothing of it is written. The rows of the others stay
 * locked until the commit. */
static aop_err check_leases(store *s, flush_ctx *f)
{
    int n = 0;
    for (run *r = f->list; r; r = r->touched_next)
        n++;
    store_exec_lease *leases = xcalloc((size_t)(n ? n : 1), sizeof(*leases));
    bool *owned = xcalloc((size_t)(n ? n : 1), sizeof(*owned));
    n = 0;
    for (run *r = f->list; r; r = r->touched_next)
        leases[n++] = (store_exec_lease){r->row.id, r->row.claims};
    aop_err rc = store_execution_owned_batch(s, f->e->owner, leases, n, owned);
    n = 0;
    for (run *r = f->list; rc == AOP_OK && r; r = r->touched_next)
        r->lost = !owned[n++];
    free(leases);
    free(owned);
    return rc;
}

/* The node rows that changed, of every run still ours, in one write. */
static aop_err write_nodes(store *s, run *list)
{
    int n = 0;
    for (run *r = list; r; r = r->touched_next)
        for (int i = 0; !r->lost && r->d && i < r->d->n; i++)
            n += r->ns[i].dirty;
    if (!n)
        return AOP_OK;
    store_exec_node_row *rows = xcalloc((size_t)n, sizeof(*rows));
    n = 0;
    for (run *r = list; r; r = r->touched_next) {
        for (int i = 0; !r->lost && r->d && i < r->d->n; i++) {
            if (!r->ns[i].dirty)
                continue;
            char at[2][25];
            rows[n].execution_id = r->row.id;
            node_row(r, i, &rows[n++].node, at);
        }
    }
    aop_err rc = store_execution_nodes_put(s, rows, n);
    free(rows);
    return rc;
}

/* The ends a flush writes, together: the runs, their rows, and the
 * outputs those point to. */
typedef struct {
    run **runs;
    store_execution *rows;
    char **outputs;
    int n;
} flush_ends;

/* One run's writes besides its nodes and end; its end goes into ends.
 * Lost when its row is no longer running under this engine's lease. */
static aop_err write_run(store *s, flush_ctx *f, run *r, flush_ends *ends)
{
    aop_err rc = budget_flush_run(s, r, &f->spend);
    if (rc == AOP_OK && r->parking && !r->ending)
        rc = park_run(s, f->e, r);
    if (rc == AOP_OK && r->ending) {
        store_execution *end = &ends->rows[ends->n];
        end_row(r, end, &ends->outputs[ends->n]);
        if (!r->nevs || strcmp(r->evs[r->nevs - 1].type, "execution.finished"))
            event_execution(r, "execution.finished", exec_status_name(end->status), end);
        ends->runs[ends->n++] = r;
    }
    r->lost = rc == AOP_ERR_CONFLICT || rc == AOP_ERR_NOT_FOUND;
    return r->lost ? AOP_OK : rc;
}

/* The ends, in one write; a run whose row ended meanwhile is lost. */
static aop_err write_ends(store *s, flush_ctx *f, flush_ends *ends)
{
    aop_err *each = xcalloc((size_t)(ends->n ? ends->n : 1), sizeof(*each));
    aop_err rc = ends->n ? store_execution_finish_batch(s, ends->rows, ends->n, each) : AOP_OK;
    for (int k = 0; rc == AOP_OK && k < ends->n; k++) {
        const store_execution *end = &ends->rows[k];
        if (each[k] != AOP_OK) {
            ends->runs[k]->lost = true;
            continue;
        }
        wf_tally *t = &f->tallies[f->ntallies++];
        str_copy(t->workflow_id, sizeof(t->workflow_id), end->workflow_id);
        t->status = end->status;
        t->duration_ms = end->duration_ms;
        t->total_tokens = end->total_tokens;
        t->cost_usd = end->cost_usd;
        str_copy(t->started_at, sizeof(t->started_at), end->started_at);
    }
    free(each);
    return rc;
}

/* The runs' writes: leases, node rows, budgets and waits, ends. */
static aop_err write_runs(store *s, flush_ctx *f)
{
    int n = 0;
    for (run *r = f->list; r; r = r->touched_next)
        n += r->ending;
    flush_ends ends = {xcalloc((size_t)(n ? n : 1), sizeof(run *)),
                       xcalloc((size_t)(n ? n : 1), sizeof(store_execution)),
                       xcalloc((size_t)(n ? n : 1), sizeof(char *)), 0};
    aop_err rc = check_leases(s, f);
    if (rc == AOP_OK)
        rc = write_nodes(s, f->list);
    for (run *r = f->list; rc == AOP_OK && r; r = r->touched_next)
        if (!r->lost)
            rc = write_run(s, f, r, &ends);
    if (rc == AOP_OK)
        rc = write_ends(s, f, &ends);
    for (int k = 0; k < ends.n; k++)
        free(ends.outputs[k]);
    free(ends.runs);
    free(ends.rows);
    free(ends.outputs);
    return rc;
}

static int tally_cmp(const void *a, const void *b)
{
    return strcmp(((const wf_tally *)a)->workflow_id, ((const wf_tally *)b)->workflow_id);
}

/* Every touched run of the loop in one transaction: a commit costs about
 * the same for one run as for a hundred. A lost run writes nothing (its
 * ownership is checked before anything of it is written). The workflows'
 * analytics counters come last, one write per workflow in workflow id
 * order: transactions of several loops or instances then lock those rows
 * in one order and never deadlock on them. */
static aop_err flush_tx(store *s, void *p)
{
    flush_ctx *f = p;
    f->ntallies = 0;
    f->spend.n = 0;
    aop_err rc = write_runs(s, f);
    if (rc != AOP_OK)
        return rc;
    if (f->spend.n > 0) { /* the budgets, in id order, before the workflows */
        store_budget_clock ck;
        int n = 0;
        store_budget_clock_at(clock_now_ms(), &ck);
        rc = store_budget_apply(s, &ck, &f->spend, &n);
        if (rc != AOP_OK)
            return rc;
    }
    /* One write per workflow: under load a flush ends many executions of
     * the same few workflows, whose rows every loop would otherwise queue
     * on one by one. */
    qsort(f->tallies, (size_t)f->ntallies, sizeof(*f->tallies), tally_cmp);
    for (int i = 0; i < f->ntallies;) {
        const char *wf = f->tallies[i].workflow_id;
        store_wf_tally sum = {0};
        for (; i < f->ntallies && !strcmp(f->tallies[i].workflow_id, wf); i++) {
            const wf_tally *t = &f->tallies[i];
            store_wf_tally_add(&sum, t->status, t->duration_ms, t->total_tokens, t->cost_usd,
                               t->started_at);
        }
        rc = store_workflow_analytics_tally(s, wf, &sum);
        if (rc != AOP_OK)
            return rc;
    }
    rc = write_events(s, f->list);
    if (rc == AOP_OK)
        rc = events_written(f->e, f->list);
    return rc == AOP_OK ? events_ended(f->e, f->list) : rc;
}

static void count_end(engine *e, exec_status st)
{
    long long *c = st == EXEC_SUCCEEDED   ? &e->stats.succeeded
                   : st == EXEC_FAILED    ? &e->stats.failed
                   : st == EXEC_TIMED_OUT ? &e->stats.timed_out
                                          : &e->stats.cancelled;
    engine_count(c, 1);
}

/* After the end of an execution of workflow wf is committed. */
static void ended(engine *e, const char *wf, const char *id)
{
    engine_hook_ended(e, wf, id);
    waits_notify(e, id, true);
}

/* What the run's committed writes mean for it. */
static void written(loop *lp, run *r)
{
    char wf[UUID_STR_LEN], id[UUID_STR_LEN];
    str_copy(wf, sizeof(wf), r->row.workflow_id);
    str_copy(id, sizeof(id), r->row.id);
    if (r->lost) {
        drop_run(lp, r);
        waits_notify(lp->e, id, true);
        return;
    }
    events_done(lp->e, r);
    for (int i = 0; r->d && i < r->d->n; i++)
        r->ns[i].dirty = false;
    budget_flushed(r);
    if (r->parking && !r->ending) {
        /* Waiting holds no loop and no slot of its workflow's limit. */
        bool limited = r->row.max_concurrency > 0;
        budget_abandon(lp->e, r);
        drop_run(lp, r);
        engine_hook_changed(lp->e, wf, id);
        waits_notify(lp->e, id, false); /* a wait: true answers 202 "waiting" now */
        if (limited)
            engine_wake(lp->e);
        return;
    }
    if (r->ending) {
        /* Its workflow's limit has room again: a queued one may start now. */
        bool limited = r->row.max_concurrency > 0;
        count_end(lp->e, r->end_status);
        count_memory(lp->e, r->memory_bytes);
        drop_run(lp, r);
        ended(lp->e, wf, id);
        if (limited)
            engine_wake(lp->e);
    }
}

/* Writes what the touched runs produced; a run that ended leaves. */
static void flush(loop *lp)
{
    int n = 0;
    for (run *r = lp->touched; r; r = r->touched_next)
        n += r->ending;
    flush_ctx f = {lp->e, lp->touched, xcalloc((size_t)(n ? n : 1), sizeof(wf_tally)), 0, {0}};
    aop_err rc = store_tx(lp->e->st, flush_tx, &f);
    free(f.tallies);
    store_budget_deltas_free(&f.spend);
    if (rc != AOP_OK) {
        log_warn("cannot write the progress of executions; retrying",
                 LF_S("error", err_code(rc)));
        lp->flush_retry_ms = engine_mono_ms() + 100;
        return;
    }
    run *list = lp->touched;
    lp->touched = NULL;
    while (list) {
        run *r = list;
        list = r->touched_next;
        r->touched = false;
        written(lp, r);
    }
}

/* ---- the loop ---- */

static void fire(loop *lp, int64_t now)
{
    while (lp->heap_len && lp->heap[0].at <= now) {
        struct heap_item it = lp->heap[0];
        heap_remove(lp, 1);
        run *r = it.r;
        if (it.node < 0) {
            char msg[96];
            snprintf(msg, sizeof(msg), "the execution ran longer than its %lld ms timeout",
                     r->row.timeout_ms);
            end_run(r, EXEC_TIMED_OUT, error_text("EXECUTION_TIMEOUT", msg, true, NULL));
            continue;
        }
        node_state *n = &r->ns[it.node];
        timer_kind k = n->timer;
        n->timer = TIMER_NONE;
        node_outcome o = {0};
        if (k == TIMER_RETRY) {
            r->inflight--;
            attempt(lp, r, it.node);
        } else if (k == TIMER_NODE) {
            node_kinds[r->d->nodes[it.node].kind].finish(lp, r, it.node, NULL, &o);
            if (n->timer == TIMER_NONE && !o.pending) /* else still waiting */
                loop_node_done(lp, r, it.node, &o);
        } else if (k == TIMER_TIMEOUT) {
            outcome_fail(&o, "TIMEOUT", true, "the node ran longer than its %lld ms timeout",
                         r->d->nodes[it.node].timeout_ms);
            loop_node_done(lp, r, it.node, &o);
        }
        advance(lp, r);
    }
}

/* Grows a list of ids of lp's requests (under lp->mu) and appends id. */
static void request_id(char (**list)[UUID_STR_LEN], int *n, int *cap, const char *id)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *list = xrealloc(*list, (size_t)*cap * sizeof(**list));
    }
    str_copy((*list)[(*n)++], UUID_STR_LEN, id);
}

void engine_child_ended(loop *lp, const char *id)
{
    pthread_mutex_lock(&lp->mu);
    request_id(&lp->woken, &lp->nwoken, &lp->woken_cap, id);
    pthread_mutex_unlock(&lp->mu);
    curl_multi_wakeup(lp->multi);
}

/* The parked nodes waiting for the executions woken[0..n) fire now. */
static void wake_parents(loop *lp, char (*woken)[UUID_STR_LEN], int n)
{
    int64_t now = engine_mono_ms();
    for (run *r = lp->runs; r; r = r->next) {
        for (int i = 0; r->parked > 0 && i < r->d->n; i++) {
            node_state *ns = &r->ns[i];
            if (!ns->parked || ns->timer != TIMER_NODE || !ns->heap_pos)
                continue;
            for (int k = 0; k < n; k++)
                if (!strcmp(ns->child, woken[k])) {
                    heap_remove(lp, ns->heap_pos);
                    heap_push(lp, r, i, now);
                    break;
                }
        }
    }
}

static void take_requests(loop *lp, bool *want_claim)
{
    char(*forget)[UUID_STR_LEN] = NULL, (*woken)[UUID_STR_LEN] = NULL;
    int n = 0, nwoken = 0;
    pthread_mutex_lock(&lp->mu);
    *want_claim = lp->want_claim;
    lp->want_claim = false;
    struct handed *handed = lp->handed;
    lp->handed = NULL;
    if (lp->nforget) {
        forget = lp->forget;
        n = lp->nforget;
        lp->forget = NULL;
        lp->nforget = lp->forget_cap = 0;
    }
    if (lp->nwoken) {
        woken = lp->woken;
        nwoken = lp->nwoken;
        lp->woken = NULL;
        lp->nwoken = lp->woken_cap = 0;
    }
    pthread_mutex_unlock(&lp->mu);
    if (handed)
        open_handed(lp, handed);
    if (nwoken)
        wake_parents(lp, woken, nwoken);
    free(woken);
    for (int k = 0; k < n; k++)
        for (run *r = lp->runs; r; r = r->next)
            if (!strcmp(r->row.id, forget[k])) {
                drop_run(lp, r);
                break;
            }
    free(forget);
}

static long long poll_wait(loop *lp, int64_t now)
{
    int64_t until = now + 1000;
    if (lp->next_claim_ms < until)
        until = lp->next_claim_ms;
    if (lp->heap_len && lp->heap[0].at < until)
        until = lp->heap[0].at;
    if (lp->touched && lp->flush_retry_ms < until)
        until = lp->flush_retry_ms;
    return until > now ? until - now : 0;
}

static void *loop_main(void *arg)
{
    loop *lp = arg;
    engine *e = lp->e;
    lp->next_claim_ms = 0;
    while (!__atomic_load_n(&e->stopping, __ATOMIC_SEQ_CST)) {
        bool want = false;
        take_requests(lp, &want);
        int64_t now = engine_mono_ms();
        if (want || now >= lp->next_claim_ms)
            lp->next_claim_ms = claim(lp) ? now : now + 1000;
        fire(lp, engine_mono_ms());
        int still = 0;
        curl_multi_perform(lp->multi, &still);
        calls_collect(lp);
        if (lp->touched && engine_mono_ms() >= lp->flush_retry_ms)
            flush(lp);
        long long wait = poll_wait(lp, engine_mono_ms());
        if (wait > 0)
            curl_multi_poll(lp->multi, NULL, 0, (int)wait, NULL);
    }
    /* What finished is written; the rest goes back to the queue (engine_stop),
     * the rows handed over and not opened too. */
    pthread_mutex_lock(&lp->mu);
    struct handed *handed = lp->handed;
    lp->handed = NULL;
    pthread_mutex_unlock(&lp->mu);
    while (handed) {
        struct handed *h = handed;
        handed = h->next;
        free(h->row.input);
        free(h);
    }
    calls_collect(lp);
    if (lp->touched)
        flush(lp);
    for (run *r = lp->runs; r; r = r->next)
        budget_abandon(e, r);
    while (lp->runs)
        drop_run(lp, lp->runs);
    return NULL;
}

void engine_after(loop *lp, run *r)
{
    advance(lp, r);
}

/* ---- public ---- */

void engine_wake(engine *e)
{
    if (!e || __atomic_load_n(&e->stopping, __ATOMIC_SEQ_CST))
        return;
    loop *lp = &e->loops[__atomic_fetch_add(&e->rr, 1, __ATOMIC_RELAXED) % (unsigned)e->nloops];
    pthread_mutex_lock(&lp->mu);
    lp->want_claim = true;
    pthread_mutex_unlock(&lp->mu);
    curl_multi_wakeup(lp->multi);
}

void engine_forget(engine *e, const char *execution_id)
{
    if (!e)
        return;
    engine_forget_local(e, execution_id);
    if (!__atomic_load_n(&e->stopping, __ATOMIC_SEQ_CST))
        events_cancelled(e, execution_id);
}

void engine_queued(engine *e)
{
    if (!e)
        return;
    engine_wake(e);
    events_queued(e);
}

void engine_forget_local(engine *e, const char *execution_id)
{
    if (!e)
        return;
    if (__atomic_load_n(&e->stopping, __ATOMIC_SEQ_CST)) {
        waits_notify(e, execution_id, true);
        return;
    }
    for (int k = 0; k < e->nloops; k++) {
        loop *lp = &e->loops[k];
        pthread_mutex_lock(&lp->mu);
        request_id(&lp->forget, &lp->nforget, &lp->forget_cap, execution_id);
        pthread_mutex_unlock(&lp->mu);
        curl_multi_wakeup(lp->multi);
    }
    waits_notify(e, execution_id, true);
}

void engine_cancelled(engine *e, const char *execution_id)
{
    if (!e)
        return;
    engine_count(&e->stats.cancelled, 1);
    engine_forget(e, execution_id);
}

void engine_read_stats(engine *e, engine_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!e)
        return;
    long long *src = &e->stats.running, *dst = &out->running;
    for (size_t i = 0; i < sizeof(*out) / sizeof(long long); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    out->running = 0;
    for (int k = 0; k < e->nloops; k++)
        out->running += __atomic_load_n(&e->loops[k].nruns, __ATOMIC_RELAXED);
}

pricing *engine_load_prices(const config *cfg, char *err, size_t errlen)
{
    if (!cfg->llm_pricing_file)
        return pricing_default();
    char why[256];
    pricing *p = pricing_load_file(cfg->llm_pricing_file, why, sizeof(why));
    if (!p)
        snprintf(err, errlen, "LLM_PRICING_FILE: %s", why);
    return p;
}

engine *engine_start(const engine_opts *opts, char *err, size_t errlen)
{
    if (calls_global_init() != 0) {
        snprintf(err, errlen, "cannot initialise libcurl");
        pricing_free(opts->prices);
        return NULL;
    }
    engine *e = xcalloc(1, sizeof(*e));
    e->hooks = opts->hooks;
    e->cfg = opts->cfg;
    e->st = opts->store;
    e->exclusive = opts->exclusive;
    ids_uuid7(e->owner);
    e->prices = opts->prices;
    e->vault = opts->vault;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    pthread_mutex_init(&e->ins_mu, NULL);
    pthread_mutex_init(&e->turn_mu, NULL);
    pthread_cond_init(&e->ins_cv, NULL);
    e->ins_tail = &e->ins_head;
    e->dags = xcalloc(DAG_CACHE, sizeof(*e->dags));
    long long n = 0;
    /* An embedded store belongs to this process: every running row is an
     * orphan of a previous run and resumes now. */
    if (e->exclusive && store_execution_requeue(e->st, INT64_MAX, &n) == AOP_OK && n > 0)
        log_info("re-queued executions of a previous run", LF_I("executions", n));
    engine_count(&e->stats.requeued, n);
    e->nloops = (int)(e->cfg->workers > 0 ? e->cfg->workers : 1);
    e->loops = xcalloc((size_t)e->nloops, sizeof(loop));
    for (int k = 0; k < e->nloops; k++) {
        loop *lp = &e->loops[k];
        lp->e = e;
        lp->index = k;
        pthread_mutex_init(&lp->mu, NULL);
        lp->multi = curl_multi_init();
        if (!lp->multi || pthread_create(&lp->thread, NULL, loop_main, lp) != 0) {
            snprintf(err, errlen, "cannot start the engine's loops");
            e->nloops = k; /* fail safe: stop what started */
            if (lp->multi)
                curl_multi_cleanup(lp->multi);
            engine_free(e);
            return NULL;
        }
    }
    if (maint_start(e) != 0 || inserter_start(e) != 0 || events_start(e) != 0) {
        snprintf(err, errlen, "cannot start the engine's threads");
        engine_free(e);
        return NULL;
    }
    return e;
}

void engine_stop(engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    bool was = __atomic_exchange_n(&e->stopping, 1, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (was)
        return;
    inserter_stop(e);
    if (e->maint)
        pthread_join(e->maint, NULL);
    events_stop(e);
    for (int k = 0; k < e->nloops; k++) {
        curl_multi_wakeup(e->loops[k].multi);
        pthread_join(e->loops[k].thread, NULL);
    }
    long long n = 0;
    if (store_execution_release(e->st, e->owner, &n) != AOP_OK)
        log_warn("cannot hand running executions back to the queue");
    else if (n > 0)
        log_info("handed running executions back to the queue", LF_I("executions", n));
    waits_end_all(e);
}

void engine_free(engine *e)
{
    if (!e)
        return;
    engine_stop(e);
    for (int k = 0; k < e->nloops; k++) {
        loop *lp = &e->loops[k];
        curl_multi_cleanup(lp->multi);
        free(lp->heap);
        free(lp->forget);
        free(lp->woken);
        pthread_mutex_destroy(&lp->mu);
    }
    for (int i = 0; i < e->ndags; i++)
        dag_unref(e->dags[i].d);
    free(e->dags);
    free(e->loops);
    pricing_free(e->prices);
    pthread_mutex_destroy(&e->ins_mu);
    pthread_mutex_destroy(&e->turn_mu);
    pthread_cond_destroy(&e->ins_cv);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}
