/*
 * test_triggers_store.c - schedules and webhooks on the store
 * (store/schedules.c, store/webhooks.c), each test on SQLite and, as
 * <name>_pg, on PostgreSQL: a due time's run is recorded once, and the
 * first due time buffer_one holds back stays held; a schedule's
 * active runs, waiting ones included (migration 012 after 011's status);
 * an Idempotency-Key's answer is kept, found again, and taken anew once
 * expired; a rotation keeps the secret before it and loses a race.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/str.h"
#include "store/store.h"
#include "unit.h"
#include "unit_store.h"

typedef unit_fixture fixture;

#define BOTH(name, body) UNIT_BOTH(unit_fixture_run, name, body)

#define USER "0190a0b1-0000-7000-8000-0000000000a1"
#define WF "0190a0b1-0000-7000-8000-0000000000f1"
#define SCHED "0190a0b1-0000-7000-8000-0000000000c1"
#define HOOK "0190a0b1-0000-7000-8000-0000000000d1"
#define T0 "2026-12-01T00:00:00.000Z"

static bool setup(fixture *f)
{
    store_user u = {.name = "U", .password_hash = "x", .role = "user", .preferences = "{}",
                    .is_active = true, .email = "u@example.com"};
    str_copy(u.id, sizeof(u.id), USER);
    str_copy(u.created_at, sizeof(u.created_at), T0);
    str_copy(u.updated_at, sizeof(u.updated_at), T0);
    store_workflow w = {.name = "W", .description = "", .tags = "[]", .status = "active",
                        .definition = "{\"nodes\":[],\"edges\":[]}", .settings = "{}",
                        .editors = "[]", .viewers = "[]", .version = 1};
    str_copy(w.id, sizeof(w.id), WF);
    str_copy(w.owner_id, sizeof(w.owner_id), USER);
    str_copy(w.created_by, sizeof(w.created_by), USER);
    str_copy(w.updated_by, sizeof(w.updated_by), USER);
    str_copy(w.created_at, sizeof(w.created_at), T0);
    str_copy(w.updated_at, sizeof(w.updated_at), T0);
    return store_user_insert(f->s, &u) == AOP_OK && store_workflow_insert(f->s, &w) == AOP_OK;
}

/* SCHED: every second, overlap skip, on WF. */
static void add_schedule(fixture *f)
{
    store_schedule sc = {.enabled = true, .input = "{}"};
    str_copy(sc.id, sizeof(sc.id), SCHED);
    str_copy(sc.workflow_id, sizeof(sc.workflow_id), WF);
    str_copy(sc.cron, sizeof(sc.cron), "* * * * * *");
    str_copy(sc.timezone, sizeof(sc.timezone), "UTC");
    str_copy(sc.overlap, sizeof(sc.overlap), "skip");
    str_copy(sc.created_at, sizeof(sc.created_at), T0);
    str_copy(sc.updated_at, sizeof(sc.updated_at), T0);
    str_copy(sc.created_by, sizeof(sc.created_by), USER);
    CHECK(store_schedule_insert(f->s, &sc) == AOP_OK);
}

static void body_runs(fixture *f)
{
    CHECK(setup(f));
    add_schedule(f);
    bool won = false;
    const char *due = "2026-12-01T00:00:01.000Z";
    CHECK(store_schedule_run_claim(f->s, SCHED, due, NULL, T0, &won) == AOP_OK && won);
    CHECK(store_schedule_run_claim(f->s, SCHED, due, NULL, T0, &won) == AOP_OK && !won);
    CHECK(store_schedule_run_claim(f->s, SCHED, "2026-12-01T00:00:02.000Z", NULL, T0, &won) ==
              AOP_OK &&
          won);
    CHECK(store_schedule_mark(f->s, SCHED, due, "2026-12-01T00:00:02.000Z") == AOP_OK);
    CHECK(store_schedule_mark(f->s, SCHED, T0, NULL) == AOP_OK); /* never goes back */
    store_schedule got;
    CHECK(store_schedule_get(f->s, SCHED, &got, &f->a) == AOP_OK);
    CHECK_STR(got.last_run_at, due);
    CHECK_STR(got.pending_for, "");
    /* buffer_one holds the first due time it is given; later ones are skipped */
    CHECK(store_schedule_hold(f->s, SCHED, "2026-12-01T00:00:03.000Z") == AOP_OK);
    CHECK(store_schedule_hold(f->s, SCHED, "2026-12-01T00:00:04.000Z") == AOP_OK);
    CHECK(store_schedule_get(f->s, SCHED, &got, &f->a) == AOP_OK);
    CHECK_STR(got.pending_for, "2026-12-01T00:00:03.000Z");
    CHECK(store_schedule_mark(f->s, SCHED, NULL, NULL) == AOP_OK);
    CHECK(store_schedule_get(f->s, SCHED, &got, &f->a) == AOP_OK);
    CHECK_STR(got.pending_for, "");
    long long active = -1;
    CHECK(store_schedule_active(f->s, SCHED, &active) == AOP_OK && active == 0);
    store_schedule *rows = NULL;
    int n = 0;
    CHECK(store_schedule_enabled(f->s, "", 10, &rows, &n, &f->a) == AOP_OK && n == 1);
    got.enabled = false;
    CHECK(store_schedule_update(f->s, &got) == AOP_OK);
    CHECK(store_schedule_enabled(f->s, "", 10, &rows, &n, &f->a) == AOP_OK && n == 0);
    long long pruned = 0;
    CHECK(store_schedule_runs_prune(f->s, "2026-12-02T00:00:00.000Z", &pruned) == AOP_OK &&
          pruned == 2);
    CHECK(store_schedule_delete(f->s, SCHED) == AOP_OK);
    CHECK(store_schedule_delete(f->s, SCHED) == AOP_ERR_NOT_FOUND);
}
BOTH(schedule_run_recorded_once, body_runs)

/* A schedule-started execution n of SCHED in status st. */
static aop_err add_run(fixture *f, int n, exec_status st)
{
    store_execution e = {.workflow_version = 1, .status = st, .input = "{}", .duration_ms = -1,
                         .timeout_ms = 1000};
    snprintf(e.id, sizeof(e.id), "0190a0b1-0000-7000-8000-0000000001%02d", n);
    str_copy(e.workflow_id, sizeof(e.workflow_id), WF);
    str_copy(e.trigger, sizeof(e.trigger), "schedule");
    str_copy(e.triggered_by, sizeof(e.triggered_by), USER);
    str_copy(e.trigger_id, sizeof(e.trigger_id), SCHED);
    str_copy(e.scheduled_for, sizeof(e.scheduled_for), T0);
    str_copy(e.created_at, sizeof(e.created_at), T0);
    return store_execution_insert(f->s, &e);
}

/* The triggers' migration is 012, applied after 011 (approvals), and a run
 * waiting for an approval counts as active for overlap, as queued and
 * running ones do; ended ones do not. */
static void body_active(fixture *f)
{
    CHECK(setup(f));
    CHECK_INT(unit_db_int(&f->db, "SELECT COUNT(*) FROM schema_migrations WHERE version = 12 "
                                  "AND name = '012_triggers'"), 1);
    CHECK_INT(unit_db_int(&f->db, "SELECT MAX(version) FROM schema_migrations WHERE version < 12"),
              11);
    add_schedule(f);
    long long active = -1;
    CHECK(add_run(f, 1, EXEC_WAITING) == AOP_OK);
    CHECK(store_schedule_active(f->s, SCHED, &active) == AOP_OK);
    CHECK_INT(active, 1);
    static const exec_status ended[] = {EXEC_SUCCEEDED, EXEC_FAILED, EXEC_CANCELLED,
                                        EXEC_TIMED_OUT};
    for (int i = 0; i < 4; i++)
        CHECK(add_run(f, 2 + i, ended[i]) == AOP_OK);
    CHECK(add_run(f, 6, EXEC_QUEUED) == AOP_OK);
    CHECK(store_schedule_active(f->s, SCHED, &active) == AOP_OK);
    CHECK_INT(active, 2);
}
BOTH(schedule_active_counts_waiting_runs, body_active)

static void add_hook(fixture *f)
{
    store_webhook w = {.name = "h", .secret = "sealed-1"};
    str_copy(w.id, sizeof(w.id), HOOK);
    str_copy(w.workflow_id, sizeof(w.workflow_id), WF);
    str_copy(w.auth, sizeof(w.auth), "hmac");
    str_copy(w.response, sizeof(w.response), "async");
    str_copy(w.key_id, sizeof(w.key_id), "k1");
    str_copy(w.created_at, sizeof(w.created_at), T0);
    str_copy(w.created_by, sizeof(w.created_by), USER);
    CHECK(store_webhook_insert(f->s, &w) == AOP_OK);
}

static void body_keys(fixture *f)
{
    CHECK(setup(f));
    add_hook(f);
    bool won = false;
    char first[UUID_STR_LEN] = "";
    long long code = 0;
    const char *e1 = "0190a0b1-0000-7000-8000-0000000000e1";
    const char *e2 = "0190a0b1-0000-7000-8000-0000000000e2";
    CHECK(store_webhook_key_claim(f->s, HOOK, "k", e1, 202, 1000, 2000, &won, first, &code) ==
              AOP_OK &&
          won);
    CHECK(store_webhook_key_claim(f->s, HOOK, "k", e2, 202, 1500, 2500, &won, first, &code) ==
              AOP_OK &&
          !won);
    CHECK_STR(first, e1);
    CHECK(code == 202);
    CHECK(store_webhook_key_status(f->s, HOOK, "k", 200) == AOP_OK);
    CHECK(store_webhook_key_claim(f->s, HOOK, "k", e2, 202, 1999, 3000, &won, first, &code) ==
              AOP_OK &&
          !won && code == 200);
    /* expired at 2000: the key is taken anew */
    CHECK(store_webhook_key_claim(f->s, HOOK, "k", e2, 202, 2000, 3000, &won, first, &code) ==
              AOP_OK &&
          won);
    long long pruned = 0;
    CHECK(store_webhook_keys_prune(f->s, 3000, &pruned) == AOP_OK && pruned == 1);
}
BOTH(webhook_idempotency_key_kept_until_expiry, body_keys)

static void body_rotate(fixture *f)
{
    CHECK(setup(f));
    add_hook(f);
    CHECK(store_webhook_rotate(f->s, HOOK, "sealed-1", "sealed-2", "k2", 5000) == AOP_OK);
    CHECK(store_webhook_rotate(f->s, HOOK, "sealed-1", "sealed-3", "k2", 6000) ==
          AOP_ERR_CONFLICT); /* lost to the one before */
    store_webhook w;
    CHECK(store_webhook_get(f->s, HOOK, &w, &f->a) == AOP_OK);
    CHECK_STR(w.secret, "sealed-2");
    CHECK(w.old_secret && !strcmp(w.old_secret, "sealed-1"));
    CHECK(w.old_until_ms == 5000);
    CHECK(store_webhook_touch(f->s, HOOK, "2026-12-01T00:00:05.000Z") == AOP_OK);
    CHECK(store_webhook_touch(f->s, HOOK, "2026-12-01T00:00:04.000Z") == AOP_OK);
    CHECK(store_webhook_get(f->s, HOOK, &w, &f->a) == AOP_OK);
    CHECK_STR(w.last_called_at, "2026-12-01T00:00:05.000Z");
    CHECK(store_webhook_delete(f->s, HOOK) == AOP_OK);
    CHECK(store_webhook_get(f->s, HOOK, &w, &f->a) == AOP_ERR_NOT_FOUND);
}
BOTH(webhook_rotation_keeps_the_one_before, body_rotate)

const unit_test triggers_store_tests[] = {
    TEST(schedule_run_recorded_once),
    TEST(schedule_run_recorded_once_pg),
    TEST(schedule_active_counts_waiting_runs),
    TEST(schedule_active_counts_waiting_runs_pg),
    TEST(webhook_idempotency_key_kept_until_expiry),
    TEST(webhook_idempotency_key_kept_until_expiry_pg),
    TEST(webhook_rotation_keeps_the_one_before),
    TEST(webhook_rotation_keeps_the_one_before_pg),
    {NULL, NULL},
};
