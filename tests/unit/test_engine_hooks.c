/*
 * test_engine_hooks.c - the engine on its own: a store, a configuration
 * and hooks that record what they are told. No executions, workflows or
 * cache module is involved; the workflow and its executions are written
 * straight through the store, as the services would.
 *
 * Each test starts an engine on a fresh SQLite file (a mkdtemp directory,
 * removed afterwards) and waits for the hooks on a condition variable.
 * The wait is bounded only so that a broken engine fails the test instead
 * of hanging the run; nothing here measures time.
 */
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/str.h"
#include "engine/engine.h"
#include "store/store.h"
#include "unit.h"

#define SLOW_MS 1000000        /* never log slow operations in tests */
#define GIVE_UP_MS 60000       /* a hook that never comes fails the test */
#define MAX_SEEN 8

#define USER_ID "0190a0b1-0000-7000-8000-000000000001"
#define WF_ID "0190a0b1-0005-7000-8000-000000000001"
#define EX1_ID "0190a0b1-0006-7000-8000-000000000001"
#define EX2_ID "0190a0b1-0006-7000-8000-000000000002"

/* What the hooks were told. */
typedef struct {
    int nended;
    char ended_wf[MAX_SEEN][UUID_STR_LEN];
    char ended_id[MAX_SEEN][UUID_STR_LEN];
    int nchanged;
    int npruned;
    bool committed; /* the last commit or wait callback's flag */
    int ncommits;   /* commit or wait callbacks */
} counts;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    counts n; /* under mu */
} seen;

/* A copy of what was seen so far. */
static counts seen_now(seen *s)
{
    pthread_mutex_lock(&s->mu);
    counts c = s->n;
    pthread_mutex_unlock(&s->mu);
    return c;
}

static void on_ended(void *ctx, const char *workflow_id, const char *execution_id)
{
    seen *s = ctx;
    pthread_mutex_lock(&s->mu);
    if (s->n.nended < MAX_SEEN) {
        str_copy(s->n.ended_wf[s->n.nended], UUID_STR_LEN, workflow_id ? workflow_id : "(null)");
        str_copy(s->n.ended_id[s->n.nended], UUID_STR_LEN, execution_id ? execution_id : "(null)");
    }
    s->n.nended++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_changed(void *ctx, const char *workflow_id, const char *execution_id)
{
    seen *s = ctx;
    (void)workflow_id, (void)execution_id;
    pthread_mutex_lock(&s->mu);
    s->n.nchanged++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_pruned(void *ctx)
{
    seen *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->n.npruned++;
    pthread_mutex_unlock(&s->mu);
}

/* A submission's commit, or a wait's end (ok: told "ended"). */
static void told(seen *s, bool ok)
{
    pthread_mutex_lock(&s->mu);
    s->n.committed = ok;
    s->n.ncommits++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_committed(void *ctx, aop_err rc)
{
    told(ctx, rc == AOP_OK);
}

static void on_wait_end(void *ctx, bool ended)
{
    told(ctx, ended);
}

/* Waits until s->n.<*count> reaches n (count points into s->n); false
 * when GIVE_UP_MS passed first. */
static bool wait_for(seen *s, const int *count, int n)
{
    struct timespec until;
    bool ok = true;
    clock_deadline_after(GIVE_UP_MS, &until);
    pthread_mutex_lock(&s->mu);
    while (ok && *count < n)
        ok = pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0 || *count >= n;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

typedef struct {
    char dir[64];
    store *st;
    config cfg;
    seen seen;
    engine *e;
    arena a;
} fixture;

/* Every configuration entry at its default. */
static const char *no_env(const char *name, void *ctx)
{
    (void)name, (void)ctx;
    return NULL;
}

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(p);
}

/* A user and its active workflow whose version 1 is definition. */
static bool add_workflow(fixture *f, const char *definition)
{
    char now[25];
    clock_format_rfc3339(clock_now_ms(), now);
    store_user u;
    memset(&u, 0, sizeof(u));
    str_copy(u.id, sizeof(u.id), USER_ID);
    u.email = "hooks@example.com";
    u.name = "Hooks";
    u.password_hash = "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
    u.role = "user";
    u.preferences = "{}";
    u.is_active = true;
    str_copy(u.created_at, sizeof(u.created_at), now);
    str_copy(u.updated_at, sizeof(u.updated_at), now);
    store_workflow w;
    memset(&w, 0, sizeof(w));
    str_copy(w.id, sizeof(w.id), WF_ID);
    w.name = "hooks";
    w.description = "";
    w.tags = "[]";
    w.status = "active";
    w.definition = (char *)definition;
    w.settings = "{}";
    w.editors = "[]";
    w.viewers = "[]";
    w.version = 1;
    str_copy(w.owner_id, sizeof(w.owner_id), USER_ID);
    str_copy(w.created_by, sizeof(w.created_by), USER_ID);
    str_copy(w.updated_by, sizeof(w.updated_by), USER_ID);
    str_copy(w.created_at, sizeof(w.created_at), now);
    str_copy(w.updated_at, sizeof(w.updated_at), now);
    store_wf_version v;
    memset(&v, 0, sizeof(v));
    v.version = 1;
    v.name = "hooks";
    str_copy(v.updated_by, sizeof(v.updated_by), USER_ID);
    str_copy(v.created_at, sizeof(v.created_at), now);
    char *snapshot = arena_printf(&f->a, "{\"definition\":%s}", definition);
    return store_user_insert(f->st, &u) == AOP_OK && store_workflow_insert(f->st, &w) == AOP_OK &&
           store_workflow_version_insert(f->st, WF_ID, &v, snapshot) == AOP_OK;
}

/* A queued execution id of the workflow with input (JSON text). */
static void queued_row(store_execution *x, const char *id, const char *input)
{
    memset(x, 0, sizeof(*x));
    str_copy(x->id, sizeof(x->id), id);
    str_copy(x->workflow_id, sizeof(x->workflow_id), WF_ID);
    x->workflow_version = 1;
    x->status = EXEC_QUEUED;
    str_copy(x->trigger, sizeof(x->trigger), "api");
    str_copy(x->triggered_by, sizeof(x->triggered_by), USER_ID);
    x->input = (char *)input;
    clock_format_rfc3339(clock_now_ms() - 1000, x->created_at);
    x->duration_ms = -1;
    x->timeout_ms = 300000;
}

/* A fresh store holding definition's workflow, and an engine on it with
 * the recording hooks. false (reported) when any of it fails. */
static bool open_fixture(fixture *f, const char *definition)
{
    char url[128], err[256] = "";
    int applied = 0;
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->seen.mu, NULL);
    pthread_cond_init(&f->seen.cv, NULL);
    str_copy(f->dir, sizeof(f->dir), "/tmp/aop-hooks-XXXXXX");
    if (!mkdtemp(f->dir)) {
        f->dir[0] = '\0';
        unit_fail(__FILE__, __LINE__, "mkdtemp");
        return false;
    }
    snprintf(url, sizeof(url), "sqlite://%s/aop.db", f->dir);
    if (config_load(&f->cfg, no_env, NULL, err, sizeof(err)) < 0 ||
        !(f->st = store_open(url, SLOW_MS, err, sizeof(err))) ||
        store_migrate(f->st, &applied) != AOP_OK) {
        unit_fail(__FILE__, __LINE__, err[0] ? err : "store_migrate");
        return false;
    }
    if (!add_workflow(f, definition)) {
        unit_fail(__FILE__, __LINE__, "add_workflow");
        return false;
    }
    f->cfg.workers = 1;
    engine_opts o = {.cfg = &f->cfg,
                     .store = f->st,
                     .prices = NULL,
                     .hooks = {.ctx = &f->seen,
                               .ended = on_ended,
                               .changed = on_changed,
                               .pruned = on_pruned},
                     .exclusive = true};
    if (!(f->e = engine_start(&o, err, sizeof(err)))) {
        unit_fail(__FILE__, __LINE__, err);
        return false;
    }
    return true;
}

/* Stops the engine and removes everything, whatever the test did. */
static void close_fixture(fixture *f)
{
    engine_free(f->e);
    store_close(f->st);
    config_free(&f->cfg);
    arena_free(&f->a);
    if (f->dir[0])
        nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    pthread_mutex_destroy(&f->seen.mu);
    pthread_cond_destroy(&f->seen.cv);
}

#define ONE_TRANSFORM                                                                     \
    "{\"nodes\":[{\"id\":\"t\",\"type\":\"transform\",\"config\":{\"output\":"           \
    "{\"got\":\"{{input.x}}\"}}}],\"edges\":[]}"

/* A test body: runs on an engine over a fresh store holding ONE_TRANSFORM. */
typedef void (*test_body)(fixture *f);

static void with_engine(test_body body)
{
    fixture f;
    if (open_fixture(&f, ONE_TRANSFORM))
        body(&f);
    close_fixture(&f);
}

static void ended_and_changed_fire_for_a_queued_execution(fixture *f)
{
    store_execution x;
    queued_row(&x, EX1_ID, "{\"x\":7}");
    CHECK(store_execution_insert(f->st, &x) == AOP_OK);
    engine_queued(f->e);
    CHECK(wait_for(&f->seen, &f->seen.n.nended, 1));
    counts n = seen_now(&f->seen);
    CHECK_INT(n.nended, 1);
    CHECK_STR(n.ended_wf[0], WF_ID);
    CHECK_STR(n.ended_id[0], EX1_ID);
    CHECK(n.nchanged >= 1); /* the claim that started it */
    /* The end was committed before the hook ran. */
    store_execution got;
    CHECK(store_execution_get(f->st, EX1_ID, &got, &f->a) == AOP_OK);
    CHECK_STR(exec_status_name(got.status), "succeeded");
    CHECK_STR(got.output, "{\"t\":{\"got\":7}}");
}

static void submitted_execution_is_committed_then_ends(fixture *f)
{
    store_execution x;
    queued_row(&x, EX2_ID, "{\"x\":\"b\"}");
    CHECK_INT(engine_submit(f->e, &x, 1000, on_committed, &f->seen), 0);
    CHECK(wait_for(&f->seen, &f->seen.n.ncommits, 1));
    CHECK(wait_for(&f->seen, &f->seen.n.nended, 1));
    counts n = seen_now(&f->seen);
    CHECK(n.committed);
    CHECK(n.nchanged >= 2); /* the group commit that queued it, the claim */
    CHECK_STR(n.ended_wf[0], WF_ID);
    CHECK_STR(n.ended_id[0], EX2_ID);
    store_execution got;
    CHECK(store_execution_get(f->st, EX2_ID, &got, &f->a) == AOP_OK);
    CHECK_STR(got.output, "{\"t\":{\"got\":\"b\"}}");
}

/* With no hooks set, an execution still runs and its waiter is told. */
static void runs_without_hooks(fixture *f)
{
    char err[256] = "";
    engine_free(f->e);
    engine_opts o = {.cfg = &f->cfg, .store = f->st, .exclusive = true};
    f->e = engine_start(&o, err, sizeof(err));
    CHECK(f->e != NULL);
    store_execution x, got;
    queued_row(&x, EX1_ID, "{\"x\":1}");
    CHECK(store_execution_insert(f->st, &x) == AOP_OK);
    engine_queued(f->e);
    CHECK_INT(engine_wait(f->e, EX1_ID, GIVE_UP_MS, on_wait_end, &f->seen), 0);
    /* An end before the wait was registered is not seen by it. */
    CHECK(store_execution_get(f->st, EX1_ID, &got, &f->a) == AOP_OK);
    if (got.status == EXEC_SUCCEEDED)
        engine_notify(f->e, EX1_ID);
    CHECK(wait_for(&f->seen, &f->seen.n.ncommits, 1));
    counts n = seen_now(&f->seen);
    CHECK(n.committed); /* told "ended", not "timed out" */
    CHECK(store_execution_get(f->st, EX1_ID, &got, &f->a) == AOP_OK);
    CHECK_STR(exec_status_name(got.status), "succeeded");
    CHECK_INT(n.nended + n.nchanged + n.npruned, 0);
}

static void engine_hooks_ended_and_changed(void)
{
    with_engine(ended_and_changed_fire_for_a_queued_execution);
}

static void engine_hooks_group_commit(void)
{
    with_engine(submitted_execution_is_committed_then_ends);
}

static void engine_hooks_may_be_unset(void)
{
    with_engine(runs_without_hooks);
}

const unit_test engine_hooks_tests[] = {
    TEST(engine_hooks_ended_and_changed),
    TEST(engine_hooks_group_commit),
    TEST(engine_hooks_may_be_unset),
    {NULL, NULL},
};
