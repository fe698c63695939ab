/*
 * budget.c - LLM spend: reservations before every LLM call, their end as
 * costs or releases (engine_int.h, "budget.c"; docs/api.md, "Budgets").
 *
 * A call's reservation is committed, under the execution's lease, before
 * its request is sent (store_budget_reserve). Its end is written by the
 * flush that writes the node's outcome: the same transaction that stores
 * the node's cost charges it to the budgets, so a budget's spend and the
 * executions' costs never disagree, and a run that lost its lease (cancel,
 * delete, takeover) charges nothing: whoever took the row released what
 * it held. A call's key is (execution, node, claims << 20 | n): the n-th
 * reservation of the node in this claim of the execution, so a resumed run
 * never meets the rows of the claim that died.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine_int.h"

#define CHARS_PER_TOKEN 4

struct budget_settle {
    int node;
    long long seq, cost_nano;
};

/* Fails o: budget id refused amount_nano (budget b, when it could be
 * read, says what it had left). */
static void refused(engine *e, const char *id, long long amount_nano, node_outcome *o)
{
    store_budget b;
    double need = (double)amount_nano / STORE_NANO_PER_USD, left = -1;
    if (store_budget_get(e->st, id, &b) == AOP_OK) {
        store_budget_clock ck;
        store_budget_clock_at(clock_now_ms(), &ck);
        bool rolled = b.resets_at[0] && strcmp(b.resets_at, ck.now) <= 0;
        long long rest = b.limit_nano - (rolled ? 0 : b.spent_nano) - b.reserved_nano;
        left = (double)(rest > 0 ? rest : 0) / STORE_NANO_PER_USD;
    }
    engine_count(&e->stats.budget_refusals, 1);
    if (left >= 0)
        outcome_fail(o, "BUDGET_EXCEEDED", false,
                     "budget %s has %.9g USD left; this call may cost up to %.9g USD", id, left,
                     need);
    else
        outcome_fail(o, "BUDGET_EXCEEDED", false,
                     "budget %s has less left than this call may cost (%.9g USD)", id, need);
    o->details = json_pack("{s:s, s:f}", "budgetId", id, "requiredUsd", need);
    if (o->details && left >= 0)
        json_object_set_new(o->details, "remainingUsd", json_real(left));
}

int engine_budget_reserve(loop *lp, run *r, int i, const char *model, size_t prompt_bytes,
                          long long *max_tokens, node_outcome *o)
{
    engine *e = lp->e;
    node_state *n = &r->ns[i];
    arena a = {0};
    store_id *ids = NULL;
    int nids = 0, ret = -1;
    double cost = 0;
    aop_err rc = store_budget_applicable(e->st, r->row.triggered_by, r->row.workflow_id, &ids,
                                         &nids, &a);
    if (rc != AOP_OK) {
        outcome_fail(o, "BUDGET_UNAVAILABLE", true, "the budgets could not be read");
        goto out;
    }
    ret = 0;
    if (nids == 0)
        goto out;
    if (*max_tokens <= 0)
        *max_tokens = e->cfg->llm_default_max_tokens;
    long long prompt = (long long)((prompt_bytes + CHARS_PER_TOKEN - 1) / CHARS_PER_TOKEN);
    long long amount = pricing_cost(e->prices, model, prompt, *max_tokens, &cost)
                           ? store_usd_nano(cost) : 0;
    if (amount == 0) /* nothing to hold: never blocked */
        goto out;
    long long seq = (r->row.claims << 20) | (long long)(n->budget_calls + 1);
    store_budget_call c = {r->row.id, r->d->nodes[i].id, seq, e->owner, r->row.claims};
    store_budget_clock ck;
    store_id no;
    store_budget_clock_at(clock_now_ms(), &ck);
    rc = store_budget_reserve(e->st, &ck, &c, ids, nids, amount, no);
    if (rc == AOP_OK) {
        n->budget_calls++;
        n->budget_seq = seq;
        r->reserved = true;
        goto out;
    }
    ret = -1;
    if (rc == AOP_ERR_FORBIDDEN)
        refused(e, no, amount, o);
    else if (rc == AOP_ERR_CONFLICT) /* never stored: the flush finds the run lost */
        outcome_fail(o, "CANCELLED", false, "the execution is no longer held by this engine");
    else
        outcome_fail(o, "BUDGET_UNAVAILABLE", true, "the budgets could not be written");
out:
    arena_free(&a);
    return ret;
}

void engine_budget_settle(run *r, int i, double cost_usd)
{
    node_state *n = &r->ns[i];
    if (!n->budget_seq)
        return;
    if (r->nsettles == r->settles_cap) {
        r->settles_cap = r->settles_cap ? r->settles_cap * 2 : 4;
        r->settles = xrealloc(r->settles, (size_t)r->settles_cap * sizeof(*r->settles));
    }
    r->settles[r->nsettles++] = (struct budget_settle){i, n->budget_seq, store_usd_nano(cost_usd)};
    n->budget_seq = 0;
}

aop_err budget_flush_run(store *s, run *r, store_budget_deltas *d)
{
    aop_err rc = AOP_OK;
    for (int k = 0; rc == AOP_OK && k < r->nsettles; k++) {
        const struct budget_settle *b = &r->settles[k];
        store_budget_call c = {r->row.id, r->d->nodes[b->node].id, b->seq, NULL, 0};
        rc = store_budget_take(s, &c, NULL, b->cost_nano, d);
    }
    if (rc == AOP_OK && r->ending && r->reserved)
        rc = store_budget_take(s, NULL, r->row.id, 0, d);
    return rc;
}

void budget_flushed(run *r)
{
    r->nsettles = 0;
}

static aop_err release_tx(store *s, void *id)
{
    long long n = 0;
    return store_budget_release(s, id, &n);
}

void budget_resumed(engine *e, run *r)
{
    if (store_tx(e->st, release_tx, r->row.id) != AOP_OK) {
        log_warn("cannot release the reservations of an earlier claim; the end will",
                 LF_S("executionId", r->row.id));
        r->reserved = true;
    }
}

void budget_abandon(engine *e, run *r)
{
    if (r->reserved && store_tx(e->st, release_tx, r->row.id) != AOP_OK)
        log_warn("cannot release the reservations of an execution handed back; its next "
                 "claim will", LF_S("executionId", r->row.id));
}
