/*
 * budgets.c - LLM spend budgets and the reservations calls hold against
 * them (docs/api.md, "Budgets").
 *
 * Money is integer nano-dollars, so every sum and comparison is exact. A
 * budget's limit is never passed by reservations: a reservation is one
 * conditional UPDATE (... WHERE limit - spent - reserved >= amount), which
 * PostgreSQL, at READ COMMITTED, evaluates again on the newest row once a
 * concurrent writer of that row commits; SQLite writes one transaction at a
 * time. Periods roll over inside the same statements (ROLL_SET): a "day"
 * or "month" budget whose resets_at has passed starts the current period
 * with nothing spent, so no reader or writer ever acts on an ended period.
 *
 * Lock order, the same in every transaction that writes budgets (a call's
 * reservation, the engine's flush, a cancel or a delete of an execution):
 * the execution's row, then reservation rows, then budgets in id order
 * (store_budget_apply sorts and sums them), then the workflow's counters.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/str.h"
#include "store/db.h"

#define BUDGET_COLUMNS                                                                       \
    "id, scope_type, scope_id, period, limit_nano, spent_nano, reserved_nano, period_start, " \
    "resets_at, created_at, updated_at, created_by"

/* The current period ended at now: it rolls over. */
#define ROLLED(now) "resets_at <= CAST(" now " AS TEXT)"
/* spent_nano as of now (nothing in a period that just started). */
#define SPENT(now) "CASE WHEN " ROLLED(now) " THEN 0 ELSE spent_nano END"
/* The period's bounds as of now, from the clock's day and month bounds. */
#define ROLL_SET(now, ds, de, ms, me)                                                        \
    "period_start = CASE WHEN " ROLLED(now) " THEN CASE period WHEN 'day' THEN CAST(" ds     \
    " AS TEXT) ELSE CAST(" ms " AS TEXT) END ELSE period_start END, "                         \
    "resets_at = CASE WHEN " ROLLED(now) " THEN CASE period WHEN 'day' THEN CAST(" de        \
    " AS TEXT) ELSE CAST(" me " AS TEXT) END ELSE resets_at END"

static const db_sql q_insert = DB_BOTH(
    "INSERT INTO budgets (" BUDGET_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
    "$11, $12)");
static const db_sql q_get = DB_BOTH("SELECT " BUDGET_COLUMNS " FROM budgets WHERE id = $1");
static const db_sql q_exists = DB_BOTH("SELECT COUNT(*) FROM budgets WHERE id = $1");
/* $1 limit (<= 0: kept), $2 period (NULL: kept) with its bounds $3, $4
 * (NULL for total), $5 updated_at, $6 id. */
static const db_sql q_update = DB_BOTH(
    "UPDATE budgets SET limit_nano = CASE WHEN $1 > 0 THEN $1 ELSE limit_nano END, "
    "period = COALESCE(CAST($2 AS TEXT), period), "
    "period_start = CASE WHEN CAST($2 AS TEXT) IS NULL THEN period_start "
    "ELSE CAST($3 AS TEXT) END, "
    "resets_at = CASE WHEN CAST($2 AS TEXT) IS NULL THEN resets_at ELSE CAST($4 AS TEXT) END, "
    "updated_at = $5 WHERE id = $6");
/* Reservations first, then the budget (the lock order at the top). */
static const db_sql q_delete_reservations = DB_BOTH(
    "DELETE FROM budget_reservations WHERE budget_id = $1");
static const db_sql q_delete = DB_BOTH("DELETE FROM budgets WHERE id = $1");
/* The unique index on (scope_type, scope_id, period) answers each arm. */
static const db_sql q_applicable = DB_BOTH(
    "SELECT id FROM budgets WHERE (scope_type = 'global' AND scope_id = '') "
    "OR (scope_type = 'user' AND scope_id = $1) OR (scope_type = 'workflow' AND scope_id = $2) "
    "ORDER BY id");
/* $1 amount, $2 id, $3 now, $4..$7 the clock's day and month bounds. */
static const db_sql q_reserve = DB_BOTH(
    "UPDATE budgets SET " ROLL_SET("$3", "$4", "$5", "$6", "$7") ", "
    "spent_nano = " SPENT("$3") ", reserved_nano = reserved_nano + $1 "
    "WHERE id = $2 AND limit_nano - " SPENT("$3") " - reserved_nano >= $1");
static const db_sql q_reservation_insert = DB_BOTH(
    "INSERT INTO budget_reservations (execution_id, node_id, call_seq, budget_id, amount_nano, "
    "created_at) VALUES ($1, $2, $3, $4, $5, $6)");
static const db_sql q_take_call = DB_BOTH(
    "DELETE FROM budget_reservations WHERE execution_id = $1 AND node_id = $2 AND call_seq = $3 "
    "RETURNING budget_id, amount_nano");
static const db_sql q_take_execution = DB_BOTH(
    "DELETE FROM budget_reservations WHERE execution_id = $1 RETURNING budget_id, amount_nano");
/* $1 cost, $2 reserved amount, $3 id, $4 now, $5..$8 the bounds. */
static const db_sql q_apply = DB_BOTH(
    "UPDATE budgets SET " ROLL_SET("$4", "$5", "$6", "$7", "$8") ", "
    "spent_nano = " SPENT("$4") " + $1, reserved_nano = reserved_nano - $2 WHERE id = $3");

/* ---- money and time ---- */

long long store_usd_nano(double usd)
{
    double n = usd * STORE_NANO_PER_USD;
    if (!(n > 0)) /* negative, zero, NaN */
        return 0;
    if (n >= 4611686018427387904.0) /* 2^62 */
        return 4611686018427387904LL;
    return llround(n);
}

/* The epoch ms of UTC midnight at the start of y-m-d (fields normalised:
 * month 13 is January of the next year, day 1 of month m its first). */
static long long utc_midnight(int y, int m, int d)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m, .tm_mday = d};
    return (long long)timegm(&tm) * 1000;
}

void store_budget_clock_at(long long now_ms, store_budget_clock *out)
{
    time_t secs = (time_t)(now_ms >= 0 ? now_ms / 1000 : (now_ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int y = tm.tm_year + 1900, m = tm.tm_mon;
    clock_format_rfc3339(now_ms, out->now);
    clock_format_rfc3339(utc_midnight(y, m, tm.tm_mday), out->day_start);
    clock_format_rfc3339(utc_midnight(y, m, tm.tm_mday + 1), out->day_end);
    clock_format_rfc3339(utc_midnight(y, m, 1), out->month_start);
    clock_format_rfc3339(utc_midnight(y, m + 1, 1), out->month_end);
}

void store_budget_period(const store_budget_clock *ck, const char *period,
                         const char *start_total, char start[25], char end[25])
{
    bool day = !strcmp(period, "day"), month = !strcmp(period, "month");
    str_copy(start, 25, day ? ck->day_start : month ? ck->month_start : start_total);
    str_copy(end, 25, day ? ck->day_end : month ? ck->month_end : "");
}

/* ---- rows ---- */

#define B(kind, member) DB_COL(kind, store_budget, member)
static const db_col budget_cols[] = {
    B(DB_COPY, id), B(DB_COPY, scope_type), B(DB_COPY, scope_id), B(DB_COPY, period),
    B(DB_INT, limit_nano), B(DB_INT, spent_nano), B(DB_INT, reserved_nano),
    B(DB_COPY, period_start), B(DB_COPY, resets_at), B(DB_COPY, created_at),
    B(DB_COPY, updated_at), B(DB_COPY, created_by),
};
static const db_row budget_row = DB_ROW(budget_cols, store_budget);

static const db_col id_cols[] = {{DB_COPY, 0, sizeof(store_id)}};
static const db_row id_row = DB_ROW(id_cols, store_id);

#define D(kind, member) DB_COL(kind, store_budget_delta, member)
static const db_col delta_cols[] = {D(DB_COPY, budget_id), D(DB_INT, amount_nano)};
static const db_row delta_row = DB_ROW(delta_cols, store_budget_delta);

/* ---- budgets ---- */

aop_err store_budget_insert(store *s, const store_budget *b)
{
    db_op o = db_op_start(s, "budget_insert");
    return db_op_end(&o, db_exec(&o, &q_insert, NULL, "ttttiiitttt" "t", b->id, b->scope_type,
                                 b->scope_id, b->period, b->limit_nano, b->spent_nano,
                                 b->reserved_nano, b->period_start, db_opt(b->resets_at),
                                 b->created_at, b->updated_at, b->created_by));
}

aop_err store_budget_get(store *s, const char *id, store_budget *out)
{
    db_op o = db_op_start(s, "budget_get");
    return db_op_end(&o, db_get(&o, &q_get, &budget_row, out, NULL, "t", id));
}

aop_err store_budget_update(store *s, const char *id, long long limit_nano, const char *period,
                            const store_budget_clock *ck, const char *at, store_budget *out)
{
    db_op o = db_op_start(s, "budget_update");
    char start[25] = "", end[25] = "";
    if (period)
        store_budget_period(ck, period, ck->now, start, end);
    long long n = 0;
    aop_err rc = db_exec(&o, &q_update, &n, "itttt" "t", limit_nano, period,
                         period ? start : NULL, db_opt(end), at, id);
    if (rc == AOP_OK && n == 0)
        rc = AOP_ERR_NOT_FOUND;
    if (rc == AOP_OK)
        rc = db_get(&o, &q_get, &budget_row, out, NULL, "t", id);
    return db_op_end(&o, rc);
}

static aop_err delete_tx(db_op *o, void *id)
{
    long long n = 0;
    aop_err rc = db_exec(o, &q_delete_reservations, NULL, "t", id);
    if (rc == AOP_OK)
        rc = db_exec(o, &q_delete, &n, "t", id);
    return rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc;
}

aop_err store_budget_delete(store *s, const char *id)
{
    db_op o = db_op_start(s, "budget_delete");
    return db_op_end(&o, db_tx(&o, NULL, delete_tx, (void *)id));
}

/* ---- the list ---- */

#define NFILTERS 3 /* reader, scope type, scope id */
#define NSORTS 2

/* A workflow's budget shows to those who may read the workflow (the rule
 * of workflows.h: owner, editors, viewers; never a deleted one). */
static const db_sql list_terms[NFILTERS] = {
    DB_PAIR("(b.scope_type = 'global' OR (b.scope_type = 'user' AND b.scope_id = $1) OR "
            "(b.scope_type = 'workflow' AND b.scope_id IN (SELECT w.id FROM workflows w "
            "WHERE w.deleted_at IS NULL AND (w.owner_id = $1 OR w.id IN (SELECT p.workflow_id "
            "FROM workflow_permissions p WHERE p.user_id = $1)))))",
            "(b.scope_type = 'global' OR (b.scope_type = 'user' AND b.scope_id = $1) OR "
            "(b.scope_type = 'workflow' AND b.scope_id IN (SELECT w.id FROM workflows w "
            "WHERE w.deleted_at IS NULL AND (w.owner_id = $1 OR "
            "w.editors @> jsonb_build_array($1::text) OR "
            "w.viewers @> jsonb_build_array($1::text)))))"),
    DB_BOTH("b.scope_type = $1"),
    DB_BOTH("b.scope_id = $1"),
};
static const db_sql list_orders[NSORTS] = {
    DB_BOTH("b.created_at%s, b.id%s"),
    DB_BOTH("b.updated_at%s, b.id%s"),
};
static db_sql list_count[1 << NFILTERS], list_page[(1 << NFILTERS) * NSORTS * 2];

static db_list budget_list = {.columns = BUDGET_COLUMNS, .from = " FROM budgets b",
                              .terms = list_terms, .nfilters = NFILTERS, .nsorts = NSORTS,
                              .order = list_orders, .count = list_count, .page = list_page};

aop_err store_budget_list(store *s, const store_budget_query *q, store_budget **out, int *n,
                          long long *total, arena *a)
{
    db_op o = db_op_start(s, "budget_list");
    const char *values[NFILTERS] = {q->reader, q->scope_type, q->scope_id};
    void *items = NULL;
    aop_err rc = db_list_page(&o, &budget_list, values, (int)q->sort, q->desc, q->offset,
                              q->limit, &budget_row, &items, n, total, a);
    *out = items;
    return db_op_end(&o, rc);
}

/* ---- reservations ---- */

aop_err store_budget_applicable(store *s, const char *user_id, const char *workflow_id,
                                store_id **ids, int *n, arena *a)
{
    db_op o = db_op_start(s, "budget_applicable");
    void *items = NULL;
    aop_err rc = db_rows(&o, &q_applicable, &id_row, INT32_MAX, &items, n, a, "tt",
                         user_id ? user_id : "", workflow_id ? workflow_id : "");
    *ids = items;
    return db_op_end(&o, rc);
}

typedef struct {
    const store_budget_clock *ck;
    const store_budget_call *c;
    const store_id *ids;
    int n;
    long long amount;
    char *refused;
} reserve_req;

/* One budget: the conditional UPDATE, then the call's row. A budget that
 * took nothing is either gone (passed over) or short (refused). */
static aop_err reserve_one(db_op *o, const reserve_req *r, const char *id)
{
    const store_budget_clock *ck = r->ck;
    long long changed = 0, found = 0;
    aop_err rc = db_exec(o, &q_reserve, &changed, "ittttt" "t", r->amount, id, ck->now,
                         ck->day_start, ck->day_end, ck->month_start, ck->month_end);
    if (rc == AOP_OK && changed == 0 && (rc = db_query_int(o, &q_exists, &found, "t", id)) == AOP_OK)
        rc = found ? AOP_ERR_FORBIDDEN : AOP_OK;
    if (rc == AOP_ERR_FORBIDDEN)
        str_copy(r->refused, sizeof(store_id), id);
    if (rc != AOP_OK || changed == 0)
        return rc;
    return db_exec(o, &q_reservation_insert, NULL, "ttitit", r->c->execution_id, r->c->node_id,
                   r->c->seq, id, r->amount, ck->now);
}

static aop_err reserve_tx(db_op *o, void *p)
{
    const reserve_req *r = p;
    aop_err rc = store_execution_owned(o->s, r->c->execution_id, r->c->owner, r->c->claims);
    for (int i = 0; rc == AOP_OK && i < r->n; i++)
        rc = reserve_one(o, r, r->ids[i]);
    return rc;
}

aop_err store_budget_reserve(store *s, const store_budget_clock *ck, const store_budget_call *c,
                             const store_id *ids, int n, long long amount_nano,
                             store_id refused)
{
    db_op o = db_op_start(s, "budget_reserve");
    reserve_req r = {ck, c, ids, n, amount_nano, refused};
    refused[0] = '\0';
    return db_op_end(&o, db_tx(&o, NULL, reserve_tx, &r));
}

/* Appends rows (each of amount reserved) to d, with the call's cost. */
static void deltas_add(store_budget_deltas *d, const store_budget_delta *rows, int n,
                       long long cost_nano)
{
    if (d->n + n > d->cap) {
        d->cap = (d->n + n) * 2;
        d->items = xrealloc(d->items, (size_t)d->cap * sizeof(*d->items));
    }
    for (int i = 0; i < n; i++) {
        d->items[d->n] = rows[i];
        d->items[d->n++].cost_nano = cost_nano;
    }
}

aop_err store_budget_take(store *s, const store_budget_call *c, const char *execution_id,
                          long long cost_nano, store_budget_deltas *d)
{
    db_op o = db_op_start(s, "budget_take");
    arena a = {0};
    void *items = NULL;
    int n = 0;
    aop_err rc = c ? db_rows(&o, &q_take_call, &delta_row, INT32_MAX, &items, &n, &a, "tti",
                             c->execution_id, c->node_id, c->seq)
                   : db_rows(&o, &q_take_execution, &delta_row, INT32_MAX, &items, &n, &a, "t",
                             execution_id);
    if (rc == AOP_OK)
        deltas_add(d, items, n, cost_nano);
    arena_free(&a);
    return db_op_end(&o, rc);
}

static int by_budget(const void *x, const void *y)
{
    return strcmp(((const store_budget_delta *)x)->budget_id,
                  ((const store_budget_delta *)y)->budget_id);
}

aop_err store_budget_apply(store *s, const store_budget_clock *ck, store_budget_deltas *d,
                           int *n)
{
    db_op o = db_op_start(s, "budget_apply");
    aop_err rc = AOP_OK;
    *n = 0;
    if (d->n > 1)
        qsort(d->items, (size_t)d->n, sizeof(*d->items), by_budget);
    for (int i = 0; rc == AOP_OK && i < d->n;) {
        const char *id = d->items[i].budget_id;
        long long cost = 0, amount = 0;
        for (; i < d->n && !strcmp(d->items[i].budget_id, id); i++) {
            cost += d->items[i].cost_nano;
            amount += d->items[i].amount_nano;
        }
        rc = db_exec(&o, &q_apply, NULL, "iitttt" "tt", cost, amount, id, ck->now,
                     ck->day_start, ck->day_end, ck->month_start, ck->month_end);
        *n += rc == AOP_OK;
    }
    if (rc == AOP_OK)
        d->n = 0;
    return db_op_end(&o, rc);
}

void store_budget_deltas_free(store_budget_deltas *d)
{
    free(d->items);
    d->items = NULL;
    d->n = d->cap = 0;
}

aop_err store_budget_release(store *s, const char *execution_id, long long *n)
{
    store_budget_deltas d = {0};
    store_budget_clock ck;
    int applied = 0;
    store_budget_clock_at(clock_now_ms(), &ck);
    aop_err rc = store_budget_take(s, NULL, execution_id, 0, &d);
    *n = d.n;
    if (rc == AOP_OK)
        rc = store_budget_apply(s, &ck, &d, &applied);
    store_budget_deltas_free(&d);
    return rc;
}
