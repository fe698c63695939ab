/*
 * test_budget_store.c - budgets on the store: the rows, who sees them,
 * reservations (all or nothing, under the execution's lease), their end as
 * costs or releases, periods rolling over at explicit times, and threads
 * that reserve at once never passing a limit.
 *
 * Each body runs on SQLite (a fresh file under /tmp) and, as the test of
 * the same name ending in _pg, on a fresh PostgreSQL database (skipped
 * without AOP_TEST_PG_URL). Times are explicit clocks: T0 is
 * 2026-06-01T00:00:00.000Z. Money is nano-dollars.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/str.h"
#include "store/store.h"
#include "unit.h"
#include "unit_store.h"

#define T0_MS 1780272000000LL
#define HOUR (3600LL * 1000)
#define DAY (24 * HOUR)
#define OWNER "engine-a"

typedef unit_fixture fixture;

#define BOTH(name, body) UNIT_BOTH(unit_fixture_run, name, body)

/* ---- rows ---- */

static const char *uid(fixture *f, int n)
{
    return arena_printf(&f->a, "0190a0b1-0000-7000-8000-%012d", n);
}

static const char *wid(fixture *f, int n)
{
    return arena_printf(&f->a, "0190a0b1-0005-7000-8000-%012d", n);
}

static const char *xid(fixture *f, int n)
{
    return arena_printf(&f->a, "0190a0b1-0006-7000-8000-%012d", n);
}

static const char *bid(fixture *f, int n)
{
    return arena_printf(&f->a, "0190a0b1-0009-7000-8000-%012d", n);
}

/* The claims' clock. */
static int64_t clock_t0(void) { return T0_MS; }

static char *at(fixture *f, long long ms)
{
    char *out = arena_alloc(&f->a, 25);
    clock_format_rfc3339(T0_MS + ms, out);
    return out;
}

static aop_err add_user(fixture *f, int n)
{
    store_user u = {.name = "U", .password_hash = "x", .role = "user", .preferences = "{}",
                    .is_active = true};
    str_copy(u.id, sizeof(u.id), uid(f, n));
    u.email = arena_printf(&f->a, "u%d@example.com", n);
    str_copy(u.created_at, sizeof(u.created_at), at(f, 0));
    str_copy(u.updated_at, sizeof(u.updated_at), at(f, 0));
    return store_user_insert(f->s, &u);
}

/* Workflow n of user owner, with user viewer (0: none) named a viewer. */
static aop_err add_wf(fixture *f, int n, int owner, int viewer)
{
    store_workflow w = {.name = "W", .description = "", .tags = "[]", .status = "active",
                        .definition = "{\"nodes\":[],\"edges\":[]}", .settings = "{}",
                        .editors = "[]", .version = 1};
    w.viewers = viewer ? arena_printf(&f->a, "[\"%s\"]", uid(f, viewer)) : "[]";
    str_copy(w.id, sizeof(w.id), wid(f, n));
    str_copy(w.owner_id, sizeof(w.owner_id), uid(f, owner));
    str_copy(w.created_by, sizeof(w.created_by), uid(f, owner));
    str_copy(w.updated_by, sizeof(w.updated_by), uid(f, owner));
    str_copy(w.created_at, sizeof(w.created_at), at(f, 0));
    str_copy(w.updated_at, sizeof(w.updated_at), at(f, 0));
    return store_workflow_insert(f->s, &w);
}

/* Execution n of workflow 1 by user 1, claimed by OWNER (claims 1). */
static aop_err add_running(fixture *f, int n)
{
    store_execution e = {.workflow_version = 1, .status = EXEC_QUEUED, .input = "{}",
                         .duration_ms = -1, .timeout_ms = 60000};
    str_copy(e.id, sizeof(e.id), xid(f, n));
    str_copy(e.workflow_id, sizeof(e.workflow_id), wid(f, 1));
    str_copy(e.trigger, sizeof(e.trigger), "api");
    str_copy(e.triggered_by, sizeof(e.triggered_by), uid(f, 1));
    str_copy(e.created_at, sizeof(e.created_at), at(f, n));
    aop_err rc = store_execution_insert(f->s, &e);
    store_execution *rows = NULL;
    int got = 0;
    if (rc == AOP_OK)
        rc = store_execution_claim(f->s, OWNER, clock_t0, 100 * DAY, 10, NULL, &rows, &got, &f->a);
    return rc == AOP_OK && got == 1 ? AOP_OK : AOP_ERR_INTERNAL;
}

/* Budget n: scope type and id (NULL: global), period, limit, at T0 + ms. */
static aop_err add_budget(fixture *f, int n, const char *type, const char *scope_id,
                          const char *period, long long limit, long long ms)
{
    store_budget b = {.limit_nano = limit};
    store_budget_clock ck;
    store_budget_clock_at(T0_MS + ms, &ck);
    str_copy(b.id, sizeof(b.id), bid(f, n));
    str_copy(b.scope_type, sizeof(b.scope_type), type);
    str_copy(b.scope_id, sizeof(b.scope_id), scope_id ? scope_id : "");
    str_copy(b.period, sizeof(b.period), period);
    store_budget_period(&ck, period, ck.now, b.period_start, b.resets_at);
    str_copy(b.created_at, sizeof(b.created_at), ck.now);
    str_copy(b.updated_at, sizeof(b.updated_at), ck.now);
    str_copy(b.created_by, sizeof(b.created_by), uid(f, 9));
    return store_budget_insert(f->s, &b);
}

/* Users 1..3, workflow 1 of user 1, execution 1 running. */
static int setup(fixture *f)
{
    for (int i = 1; i <= 3; i++)
        if (add_user(f, i) != AOP_OK)
            return -1;
    return add_wf(f, 1, 1, 0) == AOP_OK && add_running(f, 1) == AOP_OK ? 0 : -1;
}

static store_budget_call call_of(fixture *f, int exec, const char *node, long long seq)
{
    return (store_budget_call){xid(f, exec), node, seq, OWNER, 1};
}

/* Reserves amount at T0 + ms against budgets 1..n for the call. */
static aop_err reserve(fixture *f, const store_budget_call *c, int n, long long amount,
                       long long ms, store_id refused)
{
    store_id ids[8];
    store_budget_clock ck;
    store_budget_clock_at(T0_MS + ms, &ck);
    for (int i = 0; i < n; i++)
        str_copy(ids[i], sizeof(ids[i]), bid(f, i + 1));
    return store_budget_reserve(f->s, &ck, c, ids, n, amount, refused);
}

typedef struct {
    const store_budget_call *c;
    const char *execution_id;
    long long cost, ms;
    int applied;
} settle_req;

static aop_err settle_tx(store *s, void *p)
{
    settle_req *r = p;
    store_budget_deltas d = {0};
    store_budget_clock ck;
    store_budget_clock_at(T0_MS + r->ms, &ck);
    aop_err rc = store_budget_take(s, r->c, r->execution_id, r->cost, &d);
    if (rc == AOP_OK)
        rc = store_budget_apply(s, &ck, &d, &r->applied);
    store_budget_deltas_free(&d);
    return rc;
}

/* The call's reservations become cost at T0 + ms; the budgets charged. */
static int settle(fixture *f, const store_budget_call *c, long long cost, long long ms)
{
    settle_req r = {c, NULL, cost, ms, -1};
    return store_tx(f->s, settle_tx, &r) == AOP_OK ? r.applied : -1;
}

static store_budget get(fixture *f, int n)
{
    store_budget b;
    memset(&b, 0, sizeof(b));
    if (store_budget_get(f->s, bid(f, n), &b) != AOP_OK)
        b.limit_nano = -1;
    return b;
}

static long long reservations(fixture *f)
{
    return unit_db_int(&f->db, "SELECT COUNT(*) FROM budget_reservations");
}

/* ---- money and clocks (no database) ---- */

static void budget_usd_nano_rounds(void)
{
    CHECK_INT(store_usd_nano(0.1), 100000000);
    CHECK_INT(store_usd_nano(10), 10000000000LL);
    CHECK_INT(store_usd_nano(4.5e-6), 4500);
    CHECK_INT(store_usd_nano(0.4e-9), 0);
    CHECK_INT(store_usd_nano(0.6e-9), 1);
    CHECK_INT(store_usd_nano(-3), 0);
    CHECK_INT(store_usd_nano(1e30), 4611686018427387904LL);
    /* monotonic: a cost no larger than a reservation stays no larger */
    for (int k = 1; k < 2000; k++) {
        double x = k * 0.000000123456789;
        CHECK(store_usd_nano(x) <= store_usd_nano(x + 1e-15));
    }
}

static void budget_clock_bounds(void)
{
    store_budget_clock c;
    int64_t ms = 0;
    CHECK_INT(clock_parse_rfc3339("2024-02-29T23:59:59.999Z", 0, &ms), 0);
    store_budget_clock_at(ms, &c);
    CHECK_STR(c.now, "2024-02-29T23:59:59.999Z");
    CHECK_STR(c.day_start, "2024-02-29T00:00:00.000Z");
    CHECK_STR(c.day_end, "2024-03-01T00:00:00.000Z");
    CHECK_STR(c.month_start, "2024-02-01T00:00:00.000Z");
    CHECK_STR(c.month_end, "2024-03-01T00:00:00.000Z");
    CHECK_INT(clock_parse_rfc3339("2025-12-31T12:00:00.000Z", 0, &ms), 0);
    store_budget_clock_at(ms, &c);
    CHECK_STR(c.day_end, "2026-01-01T00:00:00.000Z");
    CHECK_STR(c.month_start, "2025-12-01T00:00:00.000Z");
    CHECK_STR(c.month_end, "2026-01-01T00:00:00.000Z");
    store_budget_clock_at(T0_MS, &c); /* a period starts at its own first instant */
    CHECK_STR(c.day_start, "2026-06-01T00:00:00.000Z");
    CHECK_STR(c.month_start, "2026-06-01T00:00:00.000Z");
    CHECK_STR(c.month_end, "2026-07-01T00:00:00.000Z");
    char start[25], end[25];
    store_budget_period(&c, "total", "2020-01-01T00:00:00.000Z", start, end);
    CHECK_STR(start, "2020-01-01T00:00:00.000Z");
    CHECK_STR(end, "");
    store_budget_period(&c, "day", "", start, end);
    CHECK_STR(end, "2026-06-02T00:00:00.000Z");
}

/* ---- rows ---- */

static void body_crud(fixture *f)
{
    CHECK(setup(f) == 0);
    CHECK_INT(add_budget(f, 1, "global", NULL, "day", 5000, 0), AOP_OK);
    CHECK_INT(add_budget(f, 2, "global", NULL, "day", 7000, 0), AOP_ERR_CONFLICT);
    CHECK_INT(add_budget(f, 2, "global", NULL, "month", 7000, 0), AOP_OK);
    CHECK_INT(add_budget(f, 3, "user", uid(f, 1), "total", 9000, 0), AOP_OK);
    CHECK_INT(add_budget(f, 4, "user", uid(f, 1), "total", 9000, 0), AOP_ERR_CONFLICT);
    store_budget b = get(f, 1);
    CHECK_STR(b.scope_type, "global");
    CHECK_STR(b.scope_id, "");
    CHECK_INT(b.limit_nano, 5000);
    CHECK_STR(b.period_start, "2026-06-01T00:00:00.000Z");
    CHECK_STR(b.resets_at, "2026-06-02T00:00:00.000Z");
    b = get(f, 3);
    CHECK_STR(b.resets_at, "");
    CHECK_STR(b.period_start, at(f, 0));

    store_budget_clock ck;
    store_budget_clock_at(T0_MS + 40 * DAY, &ck);
    store_budget out;
    /* the limit alone; then the period, whose bounds start at the clock */
    CHECK_INT(store_budget_update(f->s, bid(f, 1), 6000, NULL, &ck, ck.now, &out), AOP_OK);
    CHECK_INT(out.limit_nano, 6000);
    CHECK_STR(out.period, "day");
    CHECK_STR(out.period_start, "2026-06-01T00:00:00.000Z");
    CHECK_STR(out.updated_at, ck.now);
    CHECK_INT(store_budget_update(f->s, bid(f, 3), 0, "month", &ck, ck.now, &out), AOP_OK);
    CHECK_INT(out.limit_nano, 9000);
    CHECK_STR(out.period_start, "2026-07-01T00:00:00.000Z");
    CHECK_STR(out.resets_at, "2026-08-01T00:00:00.000Z");
    CHECK_INT(store_budget_update(f->s, bid(f, 3), 0, "total", &ck, ck.now, &out), AOP_OK);
    CHECK_STR(out.period_start, ck.now);
    CHECK_STR(out.resets_at, "");
    /* the global scope has a month budget already */
    CHECK_INT(store_budget_update(f->s, bid(f, 1), 0, "month", &ck, ck.now, &out),
              AOP_ERR_CONFLICT);
    CHECK_INT(store_budget_update(f->s, bid(f, 7), 1, NULL, &ck, ck.now, &out), AOP_ERR_NOT_FOUND);
    CHECK_INT(store_budget_delete(f->s, bid(f, 1)), AOP_OK);
    CHECK_INT(store_budget_delete(f->s, bid(f, 1)), AOP_ERR_NOT_FOUND);
    CHECK_INT(store_budget_get(f->s, bid(f, 1), &out), AOP_ERR_NOT_FOUND);
}
BOTH(budget_rows_insert_update_delete, body_crud)

/* The ids of a page, as budget numbers "1,3". */
static const char *listed(fixture *f, const store_budget_query *q, long long *total)
{
    store_budget *rows = NULL;
    int n = 0;
    if (store_budget_list(f->s, q, &rows, &n, total, &f->a) != AOP_OK)
        return "error";
    size_t cap = (size_t)n * 16 + 1, used = 0;
    char *out = arena_alloc(&f->a, cap);
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%ld", i ? "," : "",
                                 strtol(rows[i].id + 24, NULL, 10));
    return out;
}

static void body_list(fixture *f)
{
    CHECK(setup(f) == 0);
    CHECK_INT(add_wf(f, 2, 2, 3), AOP_OK); /* user 2's, user 3 a viewer */
    CHECK_INT(add_budget(f, 1, "global", NULL, "total", 10, 1), AOP_OK);
    CHECK_INT(add_budget(f, 2, "user", uid(f, 1), "total", 10, 2), AOP_OK);
    CHECK_INT(add_budget(f, 3, "user", uid(f, 2), "total", 10, 3), AOP_OK);
    CHECK_INT(add_budget(f, 4, "workflow", wid(f, 1), "total", 10, 4), AOP_OK);
    CHECK_INT(add_budget(f, 5, "workflow", wid(f, 2), "day", 10, 5), AOP_OK);
    long long total = 0;
    store_budget_query q = {.limit = 20};
    CHECK_STR(listed(f, &q, &total), "1,2,3,4,5");
    CHECK_INT(total, 5);
    q.reader = uid(f, 1);
    CHECK_STR(listed(f, &q, &total), "1,2,4");
    q.reader = uid(f, 2);
    CHECK_STR(listed(f, &q, &total), "1,3,5");
    q.reader = uid(f, 3);
    CHECK_STR(listed(f, &q, &total), "1,5");
    q.scope_type = "workflow";
    CHECK_STR(listed(f, &q, &total), "5");
    q = (store_budget_query){.scope_id = uid(f, 2), .limit = 20};
    CHECK_STR(listed(f, &q, &total), "3");
    q = (store_budget_query){.desc = true, .offset = 1, .limit = 2};
    CHECK_STR(listed(f, &q, &total), "4,3");
    CHECK_INT(total, 5);
    /* a deleted workflow's budget shows to admins only */
    CHECK_INT(store_workflow_delete(f->s, wid(f, 2), uid(f, 2), at(f, 9)), AOP_OK);
    q = (store_budget_query){.reader = uid(f, 3), .limit = 20};
    CHECK_STR(listed(f, &q, &total), "1");
}
BOTH(budget_list_shows_what_the_reader_may_see, body_list)

static void body_applicable(fixture *f)
{
    CHECK(setup(f) == 0);
    store_id *ids = NULL;
    int n = -1;
    CHECK_INT(store_budget_applicable(f->s, uid(f, 1), wid(f, 1), &ids, &n, &f->a), AOP_OK);
    CHECK_INT(n, 0);
    CHECK_INT(add_budget(f, 4, "workflow", wid(f, 1), "total", 10, 0), AOP_OK);
    CHECK_INT(add_budget(f, 1, "global", NULL, "day", 10, 0), AOP_OK);
    CHECK_INT(add_budget(f, 2, "global", NULL, "month", 10, 0), AOP_OK);
    CHECK_INT(add_budget(f, 3, "user", uid(f, 2), "total", 10, 0), AOP_OK);
    CHECK_INT(add_budget(f, 5, "user", uid(f, 1), "total", 10, 0), AOP_OK);
    CHECK_INT(store_budget_applicable(f->s, uid(f, 1), wid(f, 1), &ids, &n, &f->a), AOP_OK);
    CHECK_INT(n, 4);
    CHECK_STR(ids[0], bid(f, 1));
    CHECK_STR(ids[1], bid(f, 2));
    CHECK_STR(ids[2], bid(f, 4));
    CHECK_STR(ids[3], bid(f, 5));
    CHECK_INT(store_budget_applicable(f->s, uid(f, 2), wid(f, 9), &ids, &n, &f->a), AOP_OK);
    CHECK_INT(n, 3);
    CHECK_STR(ids[2], bid(f, 3));
}
BOTH(budget_applicable_global_user_workflow, body_applicable)

/* ---- reservations ---- */

static void body_reserve_settle(fixture *f)
{
    CHECK(setup(f) == 0);
    CHECK_INT(add_budget(f, 1, "global", NULL, "total", 1000, 0), AOP_OK);
    CHECK_INT(add_budget(f, 2, "user", uid(f, 1), "total", 5000, 0), AOP_OK);
    store_id refused;
    store_budget_call a = call_of(f, 1, "ask", 1), b = call_of(f, 1, "ask", 2);
    CHECK_INT(reserve(f, &a, 2, 600, 0, refused), AOP_OK);
    CHECK_STR(refused, "");
    CHECK_INT(get(f, 1).reserved_nano, 600);
    CHECK_INT(get(f, 2).reserved_nano, 600);
    CHECK_INT(reservations(f), 2);
    /* the global one has 400 left: all or nothing */
    CHECK_INT(reserve(f, &b, 2, 401, 0, refused), AOP_ERR_FORBIDDEN);
    CHECK_STR(refused, bid(f, 1));
    CHECK_INT(get(f, 2).reserved_nano, 600);
    CHECK_INT(reservations(f), 2);
    CHECK_INT(reserve(f, &b, 2, 400, 0, refused), AOP_OK);
    CHECK_INT(get(f, 1).reserved_nano, 1000);
    /* the first answer cost 250: it leaves 350 of its reservation free */
    CHECK_INT(settle(f, &a, 250, 1000), 2);
    store_budget g = get(f, 1);
    CHECK_INT(g.spent_nano, 250);
    CHECK_INT(g.reserved_nano, 400);
    CHECK_INT(get(f, 2).spent_nano, 250);
    CHECK_INT(reservations(f), 2);
    /* a call settled twice charges once */
    CHECK_INT(settle(f, &a, 250, 1000), 0);
    CHECK_INT(get(f, 1).spent_nano, 250);
    CHECK_INT(settle(f, &b, 0, 1000), 2);
    g = get(f, 1);
    CHECK_INT(g.spent_nano, 250);
    CHECK_INT(g.reserved_nano, 0);
    CHECK_INT(reservations(f), 0);
}
BOTH(budget_reserve_all_or_nothing_then_cost, body_reserve_settle)

static void body_ownership(fixture *f)
{
    CHECK(setup(f) == 0);
    CHECK_INT(add_budget(f, 1, "global", NULL, "total", 1000, 0), AOP_OK);
    store_id refused;
    store_budget_call c = call_of(f, 1, "ask", 1);
    c.owner = "engine-b";
    CHECK_INT(reserve(f, &c, 1, 10, 0, refused), AOP_ERR_CONFLICT);
    c = call_of(f, 1, "ask", 1);
    c.claims = 2; /* a lease that lapsed and was claimed again is another one */
    CHECK_INT(reserve(f, &c, 1, 10, 0, refused), AOP_ERR_CONFLICT);
    c = call_of(f, 2, "ask", 1); /* no such execution */
    CHECK_INT(reserve(f, &c, 1, 10, 0, refused), AOP_ERR_CONFLICT);
    CHECK_INT(get(f, 1).reserved_nano, 0);
    CHECK_INT(reservations(f), 0);
    /* a budget deleted meanwhile is passed over */
    store_id ids[2];
    str_copy(ids[0], sizeof(ids[0]), bid(f, 8));
    str_copy(ids[1], sizeof(ids[1]), bid(f, 1));
    store_budget_clock ck;
    store_budget_clock_at(T0_MS, &ck);
    c = call_of(f, 1, "ask", 1);
    CHECK_INT(store_budget_reserve(f->s, &ck, &c, ids, 2, 10, refused), AOP_OK);
    CHECK_INT(get(f, 1).reserved_nano, 10);
    CHECK_INT(reservations(f), 1);
}
BOTH(budget_reserve_only_under_the_lease, body_ownership)

static aop_err release_tx(store *s, void *p)
{
    long long n = 0;
    return store_budget_release(s, p, &n);
}

static void body_release(fixture *f)
{
    CHECK(setup(f) == 0);
    CHECK_INT(add_running(f, 2), AOP_OK);
    CHECK_INT(add_budget(f, 1, "global", NULL, "total", 1000, 0), AOP_OK);
    CHECK_INT(add_budget(f, 2, "workflow", wid(f, 1), "total", 1000, 0), AOP_OK);
    store_id refused;
    store_budget_call a = call_of(f, 1, "a", 1), b = call_of(f, 1, "b", 1),
                      c = call_of(f, 2, "a", 1);
    CHECK_INT(reserve(f, &a, 2, 100, 0, refused), AOP_OK);
    CHECK_INT(reserve(f, &b, 2, 200, 0, refused), AOP_OK);
    CHECK_INT(reserve(f, &c, 2, 300, 0, refused), AOP_OK);
    CHECK_INT(settle(f, &a, 50, 0), 2);
    CHECK_INT(store_tx(f->s, release_tx, (void *)xid(f, 1)), AOP_OK);
    store_budget g = get(f, 1);
    CHECK_INT(g.reserved_nano, 300); /* execution 2's call still holds its own */
    CHECK_INT(g.spent_nano, 50);
    CHECK_INT(get(f, 2).reserved_nano, 300);
    CHECK_INT(reservations(f), 2);
    /* released already: a late answer charges nothing */
    CHECK_INT(settle(f, &b, 150, 0), 0);
    CHECK_INT(get(f, 1).spent_nano, 50);
    /* a deleted budget takes its reservations with it */
    CHECK_INT(store_budget_delete(f->s, bid(f, 1)), AOP_OK);
    CHECK_INT(reservations(f), 1);
    CHECK_INT(settle(f, &c, 100, 0), 1);
    g = get(f, 2);
    CHECK_INT(g.reserved_nano, 0);
    CHECK_INT(g.spent_nano, 150);
}
BOTH(budget_release_by_execution, body_release)

/* ---- periods ---- */

static void body_rollover(fixture *f)
{
    CHECK(setup(f) == 0);
    CHECK_INT(add_budget(f, 1, "global", NULL, "day", 1000, 5 * HOUR), AOP_OK);
    CHECK_INT(add_budget(f, 2, "user", uid(f, 1), "total", 100000, 0), AOP_OK);
    store_id refused;
    store_budget_call c1 = call_of(f, 1, "a", 1), c2 = call_of(f, 1, "a", 2),
                      c3 = call_of(f, 1, "a", 3), c4 = call_of(f, 1, "a", 4);
    CHECK_INT(reserve(f, &c1, 2, 900, 6 * HOUR, refused), AOP_OK);
    CHECK_INT(settle(f, &c1, 900, 7 * HOUR), 2);
    /* the same day: 100 left */
    CHECK_INT(reserve(f, &c2, 2, 101, DAY - 1, refused), AOP_ERR_FORBIDDEN);
    CHECK_STR(refused, bid(f, 1));
    store_budget g = get(f, 1);
    CHECK_INT(g.spent_nano, 900);
    CHECK_STR(g.period_start, "2026-06-01T00:00:00.000Z");
    /* the next day starts with nothing spent, in the same statement */
    CHECK_INT(reserve(f, &c2, 2, 101, DAY, refused), AOP_OK);
    g = get(f, 1);
    CHECK_INT(g.spent_nano, 0);
    CHECK_INT(g.reserved_nano, 101);
    CHECK_STR(g.period_start, "2026-06-02T00:00:00.000Z");
    CHECK_STR(g.resets_at, "2026-06-03T00:00:00.000Z");
    store_budget u = get(f, 2); /* "total" never rolls */
    CHECK_INT(u.spent_nano, 900);
    CHECK_STR(u.resets_at, "");
    /* an answer after midnight is spent in the day it arrives: the period
     * rolls over before its cost is added */
    CHECK_INT(settle(f, &c2, 80, 2 * DAY + HOUR), 2);
    g = get(f, 1);
    CHECK_INT(g.spent_nano, 80);
    CHECK_INT(g.reserved_nano, 0);
    CHECK_STR(g.period_start, "2026-06-03T00:00:00.000Z");
    CHECK_INT(get(f, 2).spent_nano, 980);
    /* a month budget: the last instant of June, then July */
    CHECK_INT(store_budget_delete(f->s, bid(f, 1)), AOP_OK);
    CHECK_INT(add_budget(f, 1, "global", NULL, "month", 1000, 0), AOP_OK);
    CHECK_INT(reserve(f, &c3, 1, 1000, 29 * DAY + 23 * HOUR, refused), AOP_OK);
    CHECK_INT(settle(f, &c3, 1000, 29 * DAY + 23 * HOUR), 1);
    CHECK_INT(reserve(f, &c4, 1, 1, 30 * DAY - 1, refused), AOP_ERR_FORBIDDEN);
    CHECK_INT(reserve(f, &c4, 1, 1000, 30 * DAY, refused), AOP_OK);
    g = get(f, 1);
    CHECK_INT(g.spent_nano, 0);
    CHECK_STR(g.period_start, "2026-07-01T00:00:00.000Z");
    CHECK_STR(g.resets_at, "2026-08-01T00:00:00.000Z");
}
BOTH(budget_periods_roll_over_at_explicit_times, body_rollover)

/* ---- threads ---- */

#define THREADS 6
#define CALLS 40
#define LIMIT 1000
#define RESERVE 70
#define COST 45

typedef struct {
    fixture *f;       /* its store only: the arena is the main thread's */
    const char *budget, *exec;
    int t;
    int made;           /* calls whose reservation went through */
    aop_err rc;
} racer;

/* Reserves and settles CALLS times; every settled call costs COST. */
static void *race(void *p)
{
    racer *r = p;
    store_id refused, id;
    char node[16];
    str_copy(id, sizeof(id), r->budget);
    snprintf(node, sizeof(node), "n%d", r->t);
    store_budget_clock ck;
    store_budget_clock_at(T0_MS, &ck);
    for (int k = 1; k <= CALLS && r->rc == AOP_OK; k++) {
        store_budget_call c = {r->exec, node, k, OWNER, 1};
        aop_err rc = store_budget_reserve(r->f->s, &ck, &c, &id, 1, RESERVE, refused);
        if (rc == AOP_ERR_FORBIDDEN)
            continue;
        r->rc = rc;
        if (rc != AOP_OK)
            break;
        r->made++;
        settle_req q = {&c, NULL, COST, 0, 0};
        r->rc = store_tx(r->f->s, settle_tx, &q);
    }
    return NULL;
}

static void body_threads(fixture *f)
{
    CHECK(setup(f) == 0);
    CHECK_INT(add_budget(f, 1, "global", NULL, "total", LIMIT, 0), AOP_OK);
    pthread_t th[THREADS];
    racer r[THREADS];
    for (int i = 0; i < THREADS; i++) {
        r[i] = (racer){f, bid(f, 1), xid(f, 1), i, 0, AOP_OK};
        CHECK(pthread_create(&th[i], NULL, race, &r[i]) == 0);
    }
    int made = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(r[i].rc, AOP_OK);
        made += r[i].made;
    }
    store_budget g = get(f, 1);
    /* every answer stayed within its reservation, so together they never
     * spent past the limit, and no update of the row was lost */
    CHECK(made >= 1);
    CHECK_INT(g.spent_nano, (long long)made * COST);
    CHECK(g.spent_nano <= LIMIT);
    CHECK_INT(g.reserved_nano, 0);
    CHECK_INT(reservations(f), 0);
}
BOTH(budget_threads_never_pass_the_limit, body_threads)

const unit_test budget_store_tests[] = {
    TEST(budget_usd_nano_rounds),
    TEST(budget_clock_bounds),
    TEST(budget_rows_insert_update_delete),
    TEST(budget_rows_insert_update_delete_pg),
    TEST(budget_list_shows_what_the_reader_may_see),
    TEST(budget_list_shows_what_the_reader_may_see_pg),
    TEST(budget_applicable_global_user_workflow),
    TEST(budget_applicable_global_user_workflow_pg),
    TEST(budget_reserve_all_or_nothing_then_cost),
    TEST(budget_reserve_all_or_nothing_then_cost_pg),
    TEST(budget_reserve_only_under_the_lease),
    TEST(budget_reserve_only_under_the_lease_pg),
    TEST(budget_release_by_execution),
    TEST(budget_release_by_execution_pg),
    TEST(budget_periods_roll_over_at_explicit_times),
    TEST(budget_periods_roll_over_at_explicit_times_pg),
    TEST(budget_threads_never_pass_the_limit),
    TEST(budget_threads_never_pass_the_limit_pg),
    {NULL, NULL},
};
