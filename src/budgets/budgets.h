/*
 * budgets.h - the LLM spend budgets service behind /api/budgets
 * (docs/api.md, "Budgets"). The engine enforces budgets on its own,
 * straight on the store (engine/budget.c); this service manages them.
 *
 * Access: the route table admits admins only to create, change and delete.
 * Reading: admins see every budget; others the global ones, their own user
 * budget and the budgets of workflows they may read; any other budget is
 * AOP_ERR_NOT_FOUND to them.
 *
 * A budget is shown as it stands now: a "day" or "month" budget whose
 * period ended (and that no call has rolled over yet) shows the current
 * period, with nothing spent. Money is stored in nano-dollars and shown in
 * USD. JSON text handed out is from the arena.
 */
#ifndef AOP_BUDGETS_BUDGETS_H
#define AOP_BUDGETS_BUDGETS_H

#include <stdbool.h>
#include <stddef.h>

#include "app.h"
#include "workflows/workflows.h"

/* The largest limit taken, in USD. */
#define BUDGETS_MAX_USD 1e9

/* A create (every member set) or an update (NULL, 0: unchanged). */
typedef struct {
    const char *scope_type; /* global | user | workflow */
    const char *scope_id;   /* a user or workflow id; NULL for global */
    double limit_usd;       /* > 0; kept as whole nano-dollars, the nearest */
    const char *period;     /* day | month | total */
} budget_input;

/* Whether s names a scope type, a period. */
bool budgets_scope_ok(const char *s);
bool budgets_period_ok(const char *s);

/* Creates the budget in; c is its creator. AOP_ERR_NOT_FOUND when its
 * scope names no user or no (live) workflow; AOP_ERR_CONFLICT when the
 * scope has a budget of that period. *json: the budget. */
aop_err budgets_create(const app_ctx *app, const wf_caller *c, const budget_input *in,
                       char **json, size_t *len, arena *a);
aop_err budgets_get(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                    size_t *len, arena *a);
/* The list response text of the budgets c may see matching q (q->reader is
 * set here); page numbers q's page. */
aop_err budgets_list(const app_ctx *app, const wf_caller *c, store_budget_query *q,
                     long long page, char **json, size_t *len, arena *a);
/* Changes the limit and/or the period; a new period starts at its current
 * bounds, with what was spent kept. AOP_ERR_NOT_FOUND, AOP_ERR_CONFLICT. */
aop_err budgets_update(const app_ctx *app, const char *id, const budget_input *in, char **json,
                       size_t *len, arena *a);
/* Deletes it with whatever calls in flight hold against it. */
aop_err budgets_delete(const app_ctx *app, const char *id);

#endif
