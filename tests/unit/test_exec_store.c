/*
 * test_exec_store.c - executions on the store: rows, the queue and its
 * leases, node rows, the list, aggregates and retention.
 *
 * Each test body runs on both backends: on SQLite (a fresh, migrated
 * database in a directory made with mkdtemp) and, as the test of the same
 * name ending in _pg, on PostgreSQL (a fresh database from unit_pg_fresh;
 * skipped when AOP_TEST_PG_URL is unset). Everything is removed afterwards
 * even when a CHECK failed (a CHECK returns from the test body only). Query
 * plans and page reclaiming are SQLite's own; the _pg-only tests at the end
 * check what several connections claiming at once must never do. Times are milliseconds after
 * T0, 2026-06-01T00:00:00.000Z. Executions are named by number: the last
 * digits of their ids, which the helpers print as "1,2,5".
 */
#include <ftw.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/str.h"
#include "store/db.h"
#include "store/store.h"
#include "unit.h"
#include "unit_pg.h"

#define SLOW_MS 1000000 /* never log slow operations in tests */
#define T0_MS 1780272000000LL
#define SEC 1000LL
#define NEAR(a, b) (fabs((double)(a) - (double)(b)) < 1e-9)

typedef struct {
    bool pg;        /* PostgreSQL, else SQLite */
    char dir[64];
    char path[128]; /* SQLite: the database file */
    char url[512];  /* PostgreSQL: the database's URL */
    store *s;       /* opened and migrated */
    arena a;
} fixture;

typedef void (*test_body)(fixture *f);

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(p);
}

/* Makes the database (a SQLite directory, or a PostgreSQL database), opens
 * and migrates the store, runs the body, then closes and removes everything
 * whatever the body did. */
static void run_test(test_body body, bool pg)
{
    fixture f;
    char url[600], err[256] = "";
    int applied = 0;
    memset(&f, 0, sizeof(f));
    f.pg = pg;
    if (pg) {
        if (!unit_pg_admin_url()) {
            unit_pg_skip_note();
            return;
        }
        if (!unit_pg_fresh(f.url, sizeof(f.url))) {
            unit_fail(__FILE__, __LINE__, "unit_pg_fresh");
            return;
        }
        snprintf(url, sizeof(url), "%s", f.url);
    } else {
        str_copy(f.dir, sizeof(f.dir), "/tmp/aop-exec-XXXXXX");
        if (!mkdtemp(f.dir)) {
            unit_fail(__FILE__, __LINE__, "mkdtemp");
            return;
        }
        snprintf(f.path, sizeof(f.path), "%s/aop.db", f.dir);
        snprintf(url, sizeof(url), "sqlite://%s", f.path);
    }
    f.s = store_open(url, SLOW_MS, err, sizeof(err));
    if (!f.s)
        unit_fail(__FILE__, __LINE__, err);
    else if (store_migrate(f.s, &applied) != AOP_OK)
        unit_fail(__FILE__, __LINE__, "store_migrate");
    else
        body(&f);
    arena_free(&f.a);
    store_close(f.s);
    if (pg)
        unit_pg_drop(f.url);
    else
        nftw(f.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A test of both backends: name on SQLite, name_pg on PostgreSQL. */
#define BOTH(name, body)                 \
    static void name(void)               \
    {                                    \
        run_test(body, false);           \
    }                                    \
    static void name##_pg(void)          \
    {                                    \
        run_test(body, true);            \
    }

/* The backend's text of a statement that differs between them. */
#define BY_BACKEND(f, sqlite_sql, pg_sql) ((f)->pg ? (pg_sql) : (sqlite_sql))

/* A PostgreSQL connection of the test's own to f's database, or NULL
 * (printed). */
static PGconn *pg_connect(fixture *f)
{
    PGconn *c = PQconnectdb(f->url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg_connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Runs sql on c; 0 when it worked (the error printed otherwise). With out,
 * the result is handed over (PQclear it), else cleared. */
static int pg_run(PGconn *c, const char *sql, PGresult **out)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "pg_run: %s", PQerrorMessage(c));
    if (out && ok)
        *out = r;
    else
        PQclear(r);
    return ok ? 0 : -1;
}

/* Runs sql (several statements allowed) on a connection of its own, with
 * foreign keys on like the store's. 0, or -1 when it fails. */
static int sql_run(fixture *f, const char *sql)
{
    if (f->pg) {
        PGconn *c = pg_connect(f);
        int rc = c ? pg_run(c, sql, NULL) : -1;
        PQfinish(c);
        return rc;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(db, 5000);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        fprintf(stderr, "sql_run: %s\n", sqlite3_errmsg(db));
    sqlite3_close_v2(db);
    return rc == SQLITE_OK ? 0 : -1;
}

/* First column of the first row of PostgreSQL's r as an integer: -1 when
 * there is no row, -2 when it is NULL. */
static long long pg_first_int(const PGresult *r)
{
    if (PQntuples(r) < 1 || PQnfields(r) < 1)
        return -1;
    return PQgetisnull(r, 0, 0) ? -2 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
}

/* First column of the first row of sql as an integer; -1 on failure or when
 * there is no row, -2 when it is NULL. */
static long long sql_int(fixture *f, const char *sql)
{
    long long v = -1;
    if (f->pg) {
        PGconn *c = pg_connect(f);
        PGresult *r = NULL;
        if (c && pg_run(c, sql, &r) == 0) {
            v = pg_first_int(r);
            PQclear(r);
        }
        PQfinish(c);
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -2 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close_v2(db);
    return v;
}

/* ---- ids, times and rows ---- */

static void user_id(char out[UUID_STR_LEN], int n)
{
    snprintf(out, UUID_STR_LEN, "0190a0b1-0000-7000-8000-%012d", n);
}

static void wf_id(char out[UUID_STR_LEN], int n)
{
    snprintf(out, UUID_STR_LEN, "0190a0b1-0005-7000-8000-%012d", n);
}

static void ex_id(char out[UUID_STR_LEN], int n)
{
    snprintf(out, UUID_STR_LEN, "0190a0b1-0006-7000-8000-%012d", n);
}

/* The number an id above was made from. */
static int id_num(const char *id)
{
    return (int)strtol(id + 24, NULL, 10);
}

/* T0 + ms as RFC 3339, from the arena. */
static char *ts(fixture *f, long long ms)
{
    char *out = arena_alloc(&f->a, 25);
    clock_format_rfc3339(T0_MS + ms, out);
    return out;
}

static int add_user(fixture *f, int n)
{
    store_user u;
    memset(&u, 0, sizeof(u));
    user_id(u.id, n);
    u.email = arena_printf(&f->a, "user%d@example.com", n);
    u.name = arena_printf(&f->a, "User %d", n);
    u.password_hash = "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
    u.role = "user";
    u.preferences = "{}";
    u.is_active = true;
    str_copy(u.created_at, sizeof(u.created_at), ts(f, 0));
    str_copy(u.updated_at, sizeof(u.updated_at), ts(f, 0));
    return store_user_insert(f->s, &u) == AOP_OK ? 0 : -1;
}

/* Workflow n owned by user owner, with user viewer (0: none) as a viewer. */
static int add_wf(fixture *f, int n, int owner, int viewer, const char *name)
{
    store_workflow w;
    char v[UUID_STR_LEN];
    memset(&w, 0, sizeof(w));
    wf_id(w.id, n);
    user_id(v, viewer);
    w.name = arena_strdup(&f->a, name);
    w.description = "";
    w.tags = "[]";
    w.status = "active";
    w.definition = "{\"nodes\":[],\"edges\":[]}";
    w.settings = "{}";
    w.editors = "[]";
    w.viewers = viewer ? arena_printf(&f->a, "[\"%s\"]", v) : "[]";
    w.version = 1;
    user_id(w.owner_id, owner);
    user_id(w.created_by, owner);
    user_id(w.updated_by, owner);
    str_copy(w.created_at, sizeof(w.created_at), ts(f, 0));
    str_copy(w.updated_at, sizeof(w.updated_at), ts(f, 0));
    return store_workflow_insert(f->s, &w) == AOP_OK ? 0 : -1;
}

/* Users 1..3 and workflow 1 of user 1 ("Alpha"). */
static int setup(fixture *f)
{
    for (int i = 1; i <= 3; i++)
        if (add_user(f, i) != 0)
            return -1;
    return add_wf(f, 1, 1, 0, "Alpha");
}

/* A queued execution n of workflow wf created at T0 + created_ms. */
static void ex_make(fixture *f, store_execution *e, int n, int wf, long long created_ms)
{
    memset(e, 0, sizeof(*e));
    ex_id(e->id, n);
    wf_id(e->workflow_id, wf);
    e->workflow_version = 1;
    e->status = EXEC_QUEUED;
    str_copy(e->trigger, sizeof(e->trigger), "api");
    user_id(e->triggered_by, 1);
    e->input = arena_printf(&f->a, "{\"n\":%d}", n);
    str_copy(e->created_at, sizeof(e->created_at), ts(f, created_ms));
    e->duration_ms = -1;
    e->timeout_ms = 1000;
}

static int ex_add(fixture *f, int n, int wf, long long created_ms, long long max_concurrency)
{
    store_execution e;
    ex_make(f, &e, n, wf, created_ms);
    e.max_concurrency = max_concurrency;
    return store_execution_insert(f->s, &e) == AOP_OK ? 0 : -1;
}

/* An execution that started when created and ended duration_ms later (a
 * negative duration: ended without starting, as a cancelled queued one). */
static int ex_add_ended(fixture *f, int n, int wf, long long created_ms, exec_status status,
                        long long duration_ms, long long tokens, double cost)
{
    store_execution e;
    ex_make(f, &e, n, wf, created_ms);
    e.status = status;
    if (duration_ms >= 0) {
        str_copy(e.started_at, sizeof(e.started_at), e.created_at);
        str_copy(e.finished_at, sizeof(e.finished_at), ts(f, created_ms + duration_ms));
        e.duration_ms = duration_ms;
    } else {
        str_copy(e.finished_at, sizeof(e.finished_at), e.created_at);
        e.duration_ms = 0;
    }
    e.total_tokens = tokens;
    e.prompt_tokens = tokens;
    e.cost_usd = cost;
    return store_execution_insert(f->s, &e) == AOP_OK ? 0 : -1;
}

/* Node row node_id of execution n: status, its own model (NULL: none). */
static aop_err node_add(fixture *f, int n, const char *node_id, exec_status status,
                        long long duration_ms, const char *model, long long tokens, double cost)
{
    store_exec_node nd;
    char id[UUID_STR_LEN];
    memset(&nd, 0, sizeof(nd));
    ex_id(id, n);
    nd.node_id = (char *)node_id;
    nd.type = model ? "llm" : "transform";
    nd.status = status;
    nd.attempts = 1;
    nd.duration_ms = duration_ms;
    nd.model = (char *)model;
    nd.total_tokens = tokens;
    nd.cost_usd = cost;
    return store_execution_node_put(f->s, id, &nd);
}

/* "1,2,5": the numbers of n executions, in order ("" when none). */
static const char *numbers(const store_execution *es, int n)
{
    static char out[1024];
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n && len < sizeof(out); i++)
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%d", i ? "," : "",
                                id_num(es[i].id));
    return out;
}

/* The claims' clocks: T0 + fake_ms, and T0. */
static int64_t fake_ms;
static int64_t fake_clock(void) { return T0_MS + __atomic_load_n(&fake_ms, __ATOMIC_RELAXED); }
static int64_t clock_t0(void) { return T0_MS; }

/* Claims up to limit for owner at T0 + now_ms, lease until T0 + lease_ms:
 * the numbers claimed, or "!" when the call failed. */
static const char *claim_at(fixture *f, const char *owner, long long now_ms, long long lease_ms,
                            int limit)
{
    store_execution *es = NULL;
    int n = -1;
    __atomic_store_n(&fake_ms, now_ms, __ATOMIC_RELAXED);
    if (store_execution_claim(f->s, owner, fake_clock, lease_ms - now_ms, limit, NULL, &es, &n,
                              &f->a) != AOP_OK)
        return "!";
    for (int i = 0; i < n; i++)
        if (es[i].status != EXEC_RUNNING)
            return "not running";
    return numbers(es, n);
}

static const char *claim(fixture *f, const char *owner, int limit)
{
    return claim_at(f, owner, 0, 30 * SEC, limit);
}

/* Claims up to limit for "w1" resuming the round after user `after` (0:
 * from the first): the numbers claimed in the order returned, or "!". */
static const char *claim_after(fixture *f, int limit, int after)
{
    store_execution *es = NULL;
    int n = -1;
    char u[UUID_STR_LEN];
    user_id(u, after);
    if (store_execution_claim(f->s, "w1", clock_t0, 30 * SEC, limit, after ? u : NULL, &es, &n,
                              &f->a) != AOP_OK)
        return "!";
    return numbers(es, n);
}

/* Queued execution n of workflow wf by user, created at T0 + created_ms. */
static int ex_add_by(fixture *f, int n, int wf, int user, long long created_ms,
                     long long max_concurrency)
{
    store_execution e;
    ex_make(f, &e, n, wf, created_ms);
    user_id(e.triggered_by, user);
    e.max_concurrency = max_concurrency;
    return store_execution_insert(f->s, &e) == AOP_OK ? 0 : -1;
}

/* Ends execution n as status (finish only; no analytics). */
static aop_err finish(fixture *f, int n, exec_status status)
{
    store_execution e;
    ex_make(f, &e, n, 1, 0);
    e.status = status;
    str_copy(e.finished_at, sizeof(e.finished_at), ts(f, 60 * SEC));
    e.duration_ms = 5;
    return store_execution_finish(f->s, &e);
}

/* ---- statuses ---- */

static void exec_status_names_both_ways(void)
{
    static const char *const names[] = {"queued", "running", "succeeded", "failed",
                                        "cancelled", "timed_out", "waiting", "pending",
                                        "skipped"};
    for (int i = 0; i < EXEC_STATUS_COUNT; i++) {
        CHECK_STR(exec_status_name((exec_status)i), names[i]);
        CHECK_INT(exec_status_of(names[i]), i);
    }
    CHECK_INT(exec_status_of("Queued"), -1);
    CHECK_INT(exec_status_of(""), -1);
    CHECK_INT(exec_status_of(NULL), -1);
}

/* ---- one execution ---- */

static void body_roundtrip(fixture *f)
{
    store_execution in, out;
    CHECK_INT(setup(f), 0);
    ex_make(f, &in, 1, 1, 0);
    in.status = EXEC_SUCCEEDED;
    in.workflow_version = 7;
    in.output = "{\"r\":1}";
    in.error = "{\"code\":\"X\",\"message\":\"m\",\"nodeId\":\"a\"}";
    str_copy(in.started_at, sizeof(in.started_at), ts(f, 100));
    str_copy(in.finished_at, sizeof(in.finished_at), ts(f, 350));
    in.duration_ms = 250;
    in.memory_bytes = 4096;
    in.prompt_tokens = 1;
    in.completion_tokens = 2;
    in.total_tokens = 3;
    in.cost_usd = 0.125;
    in.timeout_ms = 9000;
    in.max_concurrency = 4;
    in.deadline_ms = 99;
    in.claims = 2;
    CHECK_INT(store_execution_insert(f->s, &in), AOP_OK);
    CHECK_INT(store_execution_get(f->s, in.id, &out, &f->a), AOP_OK);
    CHECK_STR(out.id, in.id);
    CHECK_STR(out.workflow_id, in.workflow_id);
    CHECK_INT(out.workflow_version, 7);
    CHECK_INT(out.status, EXEC_SUCCEEDED);
    CHECK_STR(out.trigger, "api");
    CHECK_STR(out.triggered_by, in.triggered_by);
    CHECK_STR(out.input, "{\"n\":1}");
    CHECK_STR(out.output, in.output);
    CHECK_STR(out.error, in.error);
    CHECK_STR(out.created_at, in.created_at);
    CHECK_STR(out.started_at, ts(f, 100));
    CHECK_STR(out.finished_at, ts(f, 350));
    CHECK_INT(out.duration_ms, 250);
    CHECK_INT(out.memory_bytes, 4096);
    CHECK_INT(out.prompt_tokens, 1);
    CHECK_INT(out.completion_tokens, 2);
    CHECK_INT(out.total_tokens, 3);
    CHECK(NEAR(out.cost_usd, 0.125));
    CHECK_INT(out.timeout_ms, 9000);
    CHECK_INT(out.max_concurrency, 4);
    CHECK_INT(out.deadline_ms, 99);
    CHECK_INT(out.claims, 2);

    /* A fresh queued row: NULLs all round, but "no user" is '' (the fair
     * queue walks users by comparison, which NULL would escape). */
    ex_make(f, &in, 2, 1, 10);
    in.triggered_by[0] = '\0';
    CHECK_INT(store_execution_insert(f->s, &in), AOP_OK);
    CHECK_INT(store_execution_get(f->s, in.id, &out, &f->a), AOP_OK);
    CHECK_INT(out.status, EXEC_QUEUED);
    CHECK_STR(out.triggered_by, "");
    CHECK_STR(out.input, "{\"n\":2}");
    CHECK(out.output == NULL);
    CHECK(out.error == NULL);
    CHECK_STR(out.started_at, "");
    CHECK_STR(out.finished_at, "");
    CHECK_INT(out.duration_ms, -1);
    CHECK_INT(out.claims, 0);
    CHECK_INT(out.deadline_ms, 0);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE triggered_by = '' AND "
                         "started_at IS NULL AND duration_ms IS NULL AND output IS NULL"), 1);

    CHECK_INT(store_execution_insert(f->s, &in), AOP_ERR_CONFLICT);
    ex_id(in.id, 99);
    CHECK_INT(store_execution_get(f->s, in.id, &out, &f->a), AOP_ERR_NOT_FOUND);
}

BOTH(exec_insert_get_roundtrip, body_roundtrip)

static void body_finish(fixture *f)
{
    store_execution e, out;
    CHECK_INT(setup(f), 0);
    CHECK_INT(ex_add(f, 1, 1, 0, 0), 0);
    CHECK_INT(ex_add(f, 2, 1, 1, 0), 0);
    CHECK_STR(claim(f, "w1", 1), "1");
    ex_make(f, &e, 1, 1, 0);
    e.status = EXEC_SUCCEEDED;
    e.output = "{\"ok\":true}";
    str_copy(e.finished_at, sizeof(e.finished_at), ts(f, 2 * SEC));
    e.duration_ms = 2000;
    e.memory_bytes = 1 << 20;
    e.prompt_tokens = 10;
    e.completion_tokens = 20;
    e.total_tokens = 30;
    e.cost_usd = 0.5;
    CHECK_INT(store_execution_finish(f->s, &e), AOP_OK);
    CHECK_INT(store_execution_get(f->s, e.id, &out, &f->a), AOP_OK);
    CHECK_INT(out.status, EXEC_SUCCEEDED);
    CHECK_STR(out.output, "{\"ok\":true}");
    CHECK(out.error == NULL);
    CHECK_STR(out.finished_at, ts(f, 2 * SEC));
    CHECK_STR(out.started_at, ts(f, 0));
    CHECK_INT(out.duration_ms, 2000);
    CHECK_INT(out.memory_bytes, 1 << 20);
    CHECK_INT(out.total_tokens, 30);
    CHECK_INT(out.completion_tokens, 20);
    CHECK(NEAR(out.cost_usd, 0.5));
    CHECK_INT(out.claims, 1);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE lease_owner IS NULL AND "
                         "lease_until IS NULL"), 2);
    /* It ended already; a queued one can end (cancelled before it ran). */
    CHECK_INT(store_execution_finish(f->s, &e), AOP_ERR_CONFLICT);
    CHECK_INT(finish(f, 2, EXEC_CANCELLED), AOP_OK);
    CHECK_INT(finish(f, 2, EXEC_FAILED), AOP_ERR_CONFLICT);
    CHECK_INT(finish(f, 3, EXEC_FAILED), AOP_ERR_NOT_FOUND);
    CHECK_INT(store_execution_get(f->s, e.id, &out, &f->a), AOP_OK);
    CHECK_INT(out.status, EXEC_SUCCEEDED);
}

BOTH(exec_finish_conflict_not_found, body_finish)

static void body_delete(fixture *f)
{
    store_execution out;
    char id[UUID_STR_LEN];
    CHECK_INT(setup(f), 0);
    CHECK_INT(ex_add(f, 1, 1, 0, 0), 0);
    CHECK_INT(ex_add(f, 2, 1, 0, 0), 0);
    CHECK_INT(node_add(f, 1, "a", EXEC_SUCCEEDED, 5, NULL, 0, 0), AOP_OK);
    CHECK_INT(node_add(f, 1, "b", EXEC_SUCCEEDED, 5, NULL, 0, 0), AOP_OK);
    CHECK_INT(node_add(f, 2, "a", EXEC_SUCCEEDED, 5, NULL, 0, 0), AOP_OK);
    ex_id(id, 1);
    CHECK_INT(store_execution_delete(f->s, id), AOP_OK);
    CHECK_INT(store_execution_get(f->s, id, &out, &f->a), AOP_ERR_NOT_FOUND);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM execution_nodes"), 1);
    CHECK_INT(store_execution_delete(f->s, id), AOP_ERR_NOT_FOUND);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions"), 1);
}

BOTH(exec_delete_takes_nodes, body_delete)

/* Child executions: the fields read back, one child per (parent, node,
 * attempt), found by that key, and the parent's active ones listed. */
static void body_children(fixture *f)
{
    store_execution root, kid, out;
    CHECK_INT(setup(f), 0);
    ex_make(f, &root, 1, 1, 0);
    CHECK_INT(store_execution_insert(f->s, &root), AOP_OK);
    CHECK_INT(store_execution_get(f->s, root.id, &out, &f->a), AOP_OK);
    CHECK_STR(out.parent_execution_id, "");
    CHECK_STR(out.root_execution_id, "");
    CHECK_INT(out.depth, 0);
    for (int n = 2; n <= 4; n++) {
        ex_make(f, &kid, n, 1, 0);
        str_copy(kid.trigger, sizeof(kid.trigger), "workflow");
        str_copy(kid.parent_execution_id, sizeof(kid.parent_execution_id), root.id);
        str_copy(kid.root_execution_id, sizeof(kid.root_execution_id), root.id);
        kid.depth = 1;
        str_copy(kid.parent_node_id, sizeof(kid.parent_node_id), "sub");
        kid.parent_attempt = n - 1;
        CHECK_INT(store_execution_insert(f->s, &kid), AOP_OK);
    }
    /* a second child of the same attempt is refused */
    ex_make(f, &kid, 5, 1, 0);
    str_copy(kid.parent_execution_id, sizeof(kid.parent_execution_id), root.id);
    str_copy(kid.parent_node_id, sizeof(kid.parent_node_id), "sub");
    kid.parent_attempt = 2;
    CHECK_INT(store_execution_insert(f->s, &kid), AOP_ERR_CONFLICT);
    CHECK_INT(store_execution_child(f->s, root.id, "sub", 2, &out, &f->a), AOP_OK);
    char want[UUID_STR_LEN];
    ex_id(want, 3);
    CHECK_STR(out.id, want);
    CHECK_STR(out.trigger, "workflow");
    CHECK_STR(out.parent_execution_id, root.id);
    CHECK_STR(out.root_execution_id, root.id);
    CHECK_INT(out.depth, 1);
    CHECK_STR(out.parent_node_id, "sub");
    CHECK_INT(out.parent_attempt, 2);
    CHECK_INT(store_execution_child(f->s, root.id, "sub", 9, &out, &f->a), AOP_ERR_NOT_FOUND);
    CHECK_INT(store_execution_child(f->s, root.id, "other", 1, &out, &f->a), AOP_ERR_NOT_FOUND);
    char **ids = NULL;
    int n = 0;
    CHECK_INT(store_execution_children_active(f->s, root.id, 2, &ids, &n, &f->a), AOP_OK);
    CHECK_INT(n, 2); /* at most max */
    CHECK_INT(store_execution_children_active(f->s, root.id, 10, &ids, &n, &f->a), AOP_OK);
    CHECK_INT(n, 3);
    /* a child waiting for an approval is active too (a cancel reaches it) */
    CHECK_INT(sql_run(f, "UPDATE executions SET status = 'waiting' WHERE depth = 1"), 0);
    CHECK_INT(store_execution_children_active(f->s, root.id, 10, &ids, &n, &f->a), AOP_OK);
    CHECK_INT(n, 3);
    ex_id(want, 2);
    CHECK_STR(ids[0], want);
    CHECK_INT(store_execution_children_active(f->s, want, 10, &ids, &n, &f->a), AOP_OK);
    CHECK_INT(n, 0);
}

BOTH(exec_children, body_children)

/* Agent steps: added in order, read back in order and in full, one row per
 * seq, gone with their execution. */
static void body_agent_steps(fixture *f)
{
    char id[UUID_STR_LEN];
    CHECK_INT(setup(f), 0);
    CHECK_INT(ex_add(f, 1, 1, 0, 0), 0);
    ex_id(id, 1);
    store_agent_step st = {.seq = 1, .kind = "model", .data = "{\"role\":\"assistant\"}",
                           .prompt_tokens = 10, .completion_tokens = 5, .cost_usd = 0.25,
                           .created_at = "2026-12-06T10:00:00.000Z"};
    CHECK_INT(store_agent_step_add(f->s, id, "ag", &st), AOP_OK);
    store_agent_step tool = {.seq = 2, .kind = "tool", .call_id = "call_1", .data = "\"ok\"",
                             .created_at = "2026-12-06T10:00:01.000Z"};
    CHECK_INT(store_agent_step_add(f->s, id, "ag", &tool), AOP_OK);
    CHECK_INT(store_agent_step_add(f->s, id, "ag", &tool), AOP_ERR_CONFLICT);
    CHECK_INT(store_agent_step_add(f->s, id, "other", &tool), AOP_OK);
    store_agent_step *rows = NULL;
    int n = 0;
    CHECK_INT(store_agent_steps(f->s, id, "ag", 100, &rows, &n, &f->a), AOP_OK);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_INT(rows[0].seq, 1);
        CHECK_STR(rows[0].kind, "model");
        CHECK(rows[0].call_id == NULL);
        CHECK_STR(rows[0].data, "{\"role\":\"assistant\"}");
        CHECK_INT(rows[0].prompt_tokens, 10);
        CHECK_INT(rows[0].completion_tokens, 5);
        CHECK(rows[0].cost_usd == 0.25);
        CHECK_STR(rows[1].kind, "tool");
        CHECK_STR(rows[1].call_id, "call_1");
        CHECK_STR(rows[1].created_at, "2026-12-06T10:00:01.000Z");
    }
    CHECK_INT(store_agent_steps(f->s, id, "ag", 1, &rows, &n, &f->a), AOP_OK);
    CHECK_INT(n, 1);
    CHECK_INT(store_execution_delete(f->s, id), AOP_OK);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM agent_steps"), 0);
}

BOTH(exec_agent_steps, body_agent_steps)

/* ---- approvals ---- */

static aop_err approve_tx(store *s, void *id)
{
    return store_approval_decide(s, id, "gate", "approve", "ok", "someone",
                                 "2026-06-01T00:00:30.000Z", T0_MS + 30 * SEC);
}

static aop_err timeout_tx(store *s, void *id)
{
    return store_approval_decide(s, id, "gate", "timeout", NULL, NULL,
                                 "2026-06-01T00:00:31.000Z", T0_MS + 31 * SEC);
}

static void body_approvals(fixture *f)
{
    char id[UUID_STR_LEN], wf[UUID_STR_LEN], owner[UUID_STR_LEN], other[UUID_STR_LEN];
    store_approval ap, *rows = NULL;
    store_execution e;
    int n = 0;
    long long total = 0;
    CHECK_INT(setup(f), 0);
    CHECK_INT(ex_add(f, 1, 1, 0, 0), 0);
    ex_id(id, 1);
    wf_id(wf, 1);
    user_id(owner, 1);
    user_id(other, 2);
    /* Only the lease holder parks it. */
    CHECK_INT(store_execution_wait(f->s, id, "o1", 1), AOP_ERR_CONFLICT);
    CHECK_INT(sql_run(f, "UPDATE executions SET status = 'running', lease_owner = 'o1', "
                         "lease_until = 1, claims = 1, deadline_ms = 1"),
              0);
    CHECK_INT(store_execution_wait(f->s, id, "o2", 1), AOP_ERR_CONFLICT);
    CHECK_INT(store_execution_wait(f->s, id, "o1", 1), AOP_OK);
    CHECK_INT(store_execution_get(f->s, id, &e, &f->a), AOP_OK);
    CHECK_INT(e.status, EXEC_WAITING);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE lease_owner IS NULL"), 1);
    /* The status CHECKs take waiting (SQLite's rewritten by migration 011)
     * and still refuse what is not a status. */
    CHECK(sql_run(f, "UPDATE executions SET status = 'bogus'") != 0);
    CHECK(sql_run(f, "UPDATE execution_nodes SET status = 'bogus'") == 0); /* no rows */
    CHECK_INT(node_add(f, 1, "gate", EXEC_WAITING, 1, NULL, 0, 0), AOP_OK);
    CHECK(sql_run(f, "UPDATE execution_nodes SET status = 'bogus'") != 0);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM execution_nodes WHERE status = 'waiting'"), 1);
    /* Its row; a second put keeps the first. */
    store_approval put = {.node_id = "gate", .message = "Ship?", .on_timeout = "reject",
                          .created_at = "2026-06-01T00:00:00.000Z",
                          .expires_at_ms = T0_MS + 10 * SEC};
    str_copy(put.execution_id, sizeof(put.execution_id), id);
    str_copy(put.workflow_id, sizeof(put.workflow_id), wf);
    CHECK_INT(store_approval_put(f->s, &put, 5000), AOP_OK);
    put.expires_at_ms = T0_MS + 99 * SEC;
    CHECK_INT(store_approval_put(f->s, &put, 1), AOP_OK);
    CHECK_INT(store_approval_get(f->s, id, "gate", &ap, &f->a), AOP_OK);
    CHECK_STR(ap.decision, "");
    CHECK_STR(ap.message, "Ship?");
    CHECK_STR(ap.workflow_name, "Alpha");
    CHECK_INT(ap.expires_at_ms, T0_MS + 10 * SEC);
    CHECK_INT(store_approval_get(f->s, id, "nope", &ap, &f->a), AOP_ERR_NOT_FOUND);
    /* Due from expires_at on. */
    CHECK_INT(store_approval_due(f->s, T0_MS + 10 * SEC - 1, 10, &rows, &n, &f->a), AOP_OK);
    CHECK_INT(n, 0);
    CHECK_INT(store_approval_due(f->s, T0_MS + 10 * SEC, 10, &rows, &n, &f->a), AOP_OK);
    CHECK_INT(n, 1);
    CHECK_STR(n ? rows[0].node_id : "", "gate");
    /* Listed for the owner and an admin, not for another user. */
    CHECK_INT(store_approval_list(f->s, owner, false, 0, 20, &rows, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 1);
    CHECK_INT(store_approval_list(f->s, other, false, 0, 20, &rows, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 0);
    CHECK_INT(store_approval_list(f->s, other, true, 0, 20, &rows, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 1);
    /* The first decision wins and queues the execution with what was left. */
    CHECK_INT(store_tx(f->s, approve_tx, id), AOP_OK);
    CHECK_INT(store_tx(f->s, approve_tx, id), AOP_ERR_CONFLICT);
    CHECK_INT(store_tx(f->s, timeout_tx, id), AOP_ERR_CONFLICT);
    CHECK_INT(store_execution_get(f->s, id, &e, &f->a), AOP_OK);
    CHECK_INT(e.status, EXEC_QUEUED);
    CHECK_INT(e.deadline_ms, T0_MS + 30 * SEC + 5000);
    CHECK_INT(store_approval_get(f->s, id, "gate", &ap, &f->a), AOP_OK);
    CHECK_STR(ap.decision, "approve");
    CHECK_STR(ap.comment, "ok");
    CHECK_STR(ap.decided_by, "someone");
    CHECK_INT(store_approval_due(f->s, T0_MS + 99 * SEC, 10, &rows, &n, &f->a), AOP_OK);
    CHECK_INT(n, 0);
    CHECK_INT(store_approval_list(f->s, owner, false, 0, 20, &rows, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 0);
    /* The row goes with its execution. */
    CHECK_INT(store_execution_delete(f->s, id), AOP_OK);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM approvals"), 0);
}

BOTH(exec_approvals_first_decision_wins, body_approvals)

/* ---- the queue ---- */

static void body_claim_order(fixture *f)
{
    CHECK_INT(setup(f), 0);
    CHECK_INT(add_wf(f, 2, 1, 0, "Beta"), 0);
    CHECK_INT(add_wf(f, 3, 1, 0, "Gamma"), 0);
    /* Inserted out of order, so that rowid order is not queue order.
     * Workflow 1 allows 2 at a time, 2 any number, 3 one. */
    CHECK_INT(ex_add(f, 7, 2, 7 * SEC, 0), 0);
    CHECK_INT(ex_add(f, 5, 1, 5 * SEC, 2), 0);
    CHECK_INT(ex_add(f, 3, 1, 3 * SEC, 2), 0);
    CHECK_INT(ex_add(f, 6, 3, 6 * SEC, 1), 0);
    CHECK_INT(ex_add(f, 1, 1, 1 * SEC, 2), 0);
    CHECK_INT(ex_add(f, 4, 3, 4 * SEC, 1), 0);
    CHECK_INT(ex_add(f, 2, 2, 2 * SEC, 0), 0);
    /* Two sharing a created_at: id breaks the tie. */
    CHECK_INT(ex_add(f, 9, 2, 8 * SEC, 0), 0);
    CHECK_INT(ex_add(f, 8, 2, 8 * SEC, 0), 0);
    /* One batch: the limits hold among the rows it claims. */
    CHECK_STR(claim(f, "w1", 100), "1,2,3,4,7,8,9");
    CHECK_STR(claim(f, "w1", 100), "");
    CHECK_STR(claim(f, "w2", 100), "");
    /* Across calls: a place frees, the next one of that workflow gets it. */
    CHECK_INT(finish(f, 3, EXEC_SUCCEEDED), AOP_OK);
    CHECK_STR(claim(f, "w2", 100), "5");
    CHECK_STR(claim(f, "w2", 100), "");
    CHECK_INT(finish(f, 4, EXEC_FAILED), AOP_OK);
    CHECK_STR(claim(f, "w1", 100), "6");
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE status = 'running'"), 7);
    /* Unlimited workflow, limit per call, oldest first. */
    CHECK_INT(ex_add(f, 11, 2, 20 * SEC, 0), 0);
    CHECK_INT(ex_add(f, 10, 2, 10 * SEC, 0), 0);
    CHECK_INT(ex_add(f, 12, 2, 30 * SEC, 0), 0);
    CHECK_STR(claim(f, "w1", 1), "10");
    CHECK_STR(claim(f, "w1", 2), "11,12");
    CHECK_STR(claim(f, "w1", 0), "");
}

BOTH(exec_claim_order_and_max_concurrency, body_claim_order)

/* A backlog of a workflow at its limit, longer than one claim's window,
 * does not hold back the executions of other workflows queued after it. */
static void body_claim_backlog(fixture *f)
{
    CHECK_INT(setup(f), 0);
    CHECK_INT(add_wf(f, 2, 1, 0, "Beta"), 0);
    CHECK_INT(ex_add(f, 1, 1, 1 * SEC, 1), 0);
    CHECK_STR(claim(f, "w1", 100), "1");
    static const char backlog[] =
        "WITH RECURSIVE c(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM c WHERE i < 12001) "
        "INSERT INTO executions (id, workflow_id, workflow_version, status, trigger, input, "
        "created_at, timeout_ms, max_concurrency, triggered_by) "
        "SELECT printf('0190a0b1-0006-7000-8000-%012d', i), "
        "'0190a0b1-0005-7000-8000-000000000001', 1, 'queued', 'api', '{}', "
        "strftime('%Y-%m-%dT%H:%M:%S.000Z', 1780000000 + i, 'unixepoch'), 300000, 1, "
        "'0190a0b1-0000-7000-8000-000000000001' FROM c";
    static const char backlog_pg[] =
        "INSERT INTO executions (id, workflow_id, workflow_version, status, trigger, input, "
        "created_at, timeout_ms, max_concurrency, triggered_by) "
        "SELECT '0190a0b1-0006-7000-8000-' || lpad(i::text, 12, '0'), "
        "'0190a0b1-0005-7000-8000-000000000001', 1, 'queued', 'api', '{}', "
        "to_char(to_timestamp(1780000000 + i) AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"'), 300000, 1, "
        "'0190a0b1-0000-7000-8000-000000000001' FROM generate_series(2, 12001) i";
    CHECK_INT(sql_run(f, BY_BACKEND(f, backlog, backlog_pg)), 0);
    CHECK_INT(ex_add(f, 20000, 2, 100000 * SEC, 0), 0);
    CHECK_STR(claim(f, "w1", 100), "20000");
    /* and the limited one gets its turn when its running one ends */
    CHECK_INT(finish(f, 1, EXEC_SUCCEEDED), AOP_OK);
    CHECK_STR(claim(f, "w1", 100), "2");
}

BOTH(exec_claim_backlog_does_not_starve_others, body_claim_backlog)

static void body_claim_once(fixture *f)
{
    store_execution e;
    store_execution *es = NULL;
    int n = 0;
    CHECK_INT(setup(f), 0);
    CHECK_INT(ex_add(f, 1, 1, 0, 0), 0);
    __atomic_store_n(&fake_ms, 5 * SEC, __ATOMIC_RELAXED);
    CHECK_INT(store_execution_claim(f->s, "w1", fake_clock, 5 * SEC, 4, NULL, &es, &n, &f->a),
              AOP_OK);
    CHECK_INT(n, 1);
    CHECK_STR(es[0].started_at, ts(f, 5 * SEC));
    CHECK_INT(es[0].deadline_ms, T0_MS + 5 * SEC + 1000);
    CHECK_INT(es[0].claims, 1);
    CHECK_STR(es[0].input, "{\"n\":1}");
    CHECK_INT(sql_int(f, "SELECT lease_until FROM executions"), T0_MS + 10 * SEC);
    long long moved = -1;
    CHECK_INT(store_execution_requeue(f->s, T0_MS + 20 * SEC, &moved), AOP_OK);
    CHECK_INT(moved, 1);
    CHECK_INT(store_execution_get(f->s, es[0].id, &e, &f->a), AOP_OK);
    CHECK_INT(e.status, EXEC_QUEUED);
    CHECK_STR(e.started_at, ts(f, 5 * SEC));
    CHECK_INT(e.deadline_ms, T0_MS + 6 * SEC);
    CHECK_INT(e.claims, 1);
    /* Resumed: started_at and the deadline stay those of the first claim. */
    __atomic_store_n(&fake_ms, 30 * SEC, __ATOMIC_RELAXED);
    CHECK_INT(store_execution_claim(f->s, "w2", fake_clock, 10 * SEC, 4, NULL, &es, &n, &f->a),
              AOP_OK);
    CHECK_INT(n, 1);
    CHECK_STR(es[0].started_at, ts(f, 5 * SEC));
    CHECK_INT(es[0].deadline_ms, T0_MS + 6 * SEC);
    CHECK_INT(es[0].claims, 2);
    CHECK_INT(store_execution_get(f->s, es[0].id, &e, &f->a), AOP_OK);
    CHECK_INT(e.claims, 2);
    CHECK_INT(e.status, EXEC_RUNNING);
}

BOTH(exec_claim_sets_start_and_deadline_once, body_claim_once)

static void body_leases(fixture *f)
{
    char e1[UUID_STR_LEN], e2[UUID_STR_LEN], e9[UUID_STR_LEN];
    long long n = -1;
    store_execution out;
    CHECK_INT(setup(f), 0);
    CHECK_INT(ex_add(f, 1, 1, 1, 0), 0);
    CHECK_INT(ex_add(f, 2, 1, 2, 0), 0);
    ex_id(e1, 1);
    ex_id(e2, 2);
    ex_id(e9, 9);
    CHECK_STR(claim_at(f, "A", 0, 1 * SEC, 1), "1");
    CHECK_STR(claim_at(f, "B", 0, 2 * SEC, 1), "2");
    CHECK_INT(store_execution_owned(f->s, e1, "A", 1), AOP_OK);
    CHECK_INT(store_execution_owned(f->s, e1, "B", 1), AOP_ERR_CONFLICT);
    CHECK_INT(store_execution_owned(f->s, e2, "B", 1), AOP_OK);
    CHECK_INT(store_execution_owned(f->s, e9, "A", 1), AOP_ERR_CONFLICT);
    /* A renews; B's lease runs out and its execution goes back. */
    CHECK_INT(store_execution_renew(f->s, "A", T0_MS + 5 * SEC, &n), AOP_OK);
    CHECK_INT(n, 1);
    CHECK_INT(sql_int(f, "SELECT lease_until FROM executions WHERE lease_owner = 'A'"),
              T0_MS + 5 * SEC);
    CHECK_INT(store_execution_requeue(f->s, T0_MS + 3 * SEC, &n), AOP_OK);
    CHECK_INT(n, 1);
    CHECK_INT(store_execution_owned(f->s, e2, "B", 1), AOP_ERR_CONFLICT);
    CHECK_INT(store_execution_owned(f->s, e1, "A", 1), AOP_OK);
    CHECK_INT(store_execution_get(f->s, e2, &out, &f->a), AOP_OK);
    CHECK_INT(out.status, EXEC_QUEUED);
    /* A shuts down: its execution is queued again, lease cleared, the rest kept. */
    CHECK_INT(store_execution_release(f->s, "A", &n), AOP_OK);
    CHECK_INT(n, 1);
    CHECK_INT(store_execution_owned(f->s, e1, "A", 1), AOP_ERR_CONFLICT);
    CHECK_INT(store_execution_get(f->s, e1, &out, &f->a), AOP_OK);
    CHECK_INT(out.status, EXEC_QUEUED);
    CHECK_INT(out.claims, 1);
    /* Claimed "at" 0 ms but created at 1 ms: a start is never before the
     * creation (a claimer's clock may be read before a row commits). */
    CHECK_STR(out.started_at, ts(f, 1));
    CHECK_INT(out.deadline_ms, T0_MS + 1000);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE status = 'queued' AND "
                         "lease_owner IS NULL AND lease_until IS NULL"), 2);
    CHECK_INT(store_execution_renew(f->s, "A", T0_MS + 9 * SEC, &n), AOP_OK);
    CHECK_INT(n, 0);
    CHECK_INT(store_execution_release(f->s, "B", &n), AOP_OK);
    CHECK_INT(n, 0);
    CHECK_INT(store_execution_requeue(f->s, T0_MS + 100 * SEC, &n), AOP_OK);
    CHECK_INT(n, 0);
    /* Claimed again by the same owner: the first claim's holder no longer owns it. */
    CHECK_STR(claim_at(f, "A", 0, 10 * SEC, 1), "1");
    CHECK_INT(store_execution_owned(f->s, e1, "A", 1), AOP_ERR_CONFLICT);
    CHECK_INT(store_execution_owned(f->s, e1, "A", 2), AOP_OK);
}

BOTH(exec_lease_renew_requeue_release_owned, body_leases)

typedef struct {
    store *s;
    char owner[16];
    int claimed;
    aop_err rc;
} claimer;

/* Claims two at a time until a claim finds nothing (nothing ends here, so
 * nothing becomes claimable afterwards). */
static void *claim_loop(void *p)
{
    claimer *c = p;
    arena a = {0};
    for (;;) {
        store_execution *es = NULL;
        int n = 0;
        c->rc = store_execution_claim(c->s, c->owner, clock_t0, 60 * SEC, 2, NULL, &es, &n, &a);
        if (c->rc != AOP_OK || n == 0)
            break;
        c->claimed += n;
    }
    arena_free(&a);
    return NULL;
}

static void body_claim_threads(fixture *f)
{
    enum { THREADS = 4 };
    claimer c[THREADS];
    pthread_t t[THREADS];
    CHECK_INT(setup(f), 0);
    CHECK_INT(add_wf(f, 2, 1, 0, "Beta"), 0);
    for (int i = 1; i <= 60; i++)
        CHECK_INT(ex_add(f, i, 1, i, 0), 0);
    for (int i = 61; i <= 80; i++)
        CHECK_INT(ex_add(f, i, 2, i, 3), 0);
    for (int i = 0; i < THREADS; i++) {
        memset(&c[i], 0, sizeof(c[i]));
        c[i].s = f->s;
        snprintf(c[i].owner, sizeof(c[i].owner), "t%d", i);
        CHECK_INT(pthread_create(&t[i], NULL, claim_loop, &c[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(c[i].rc, AOP_OK);
        total += c[i].claimed;
    }
    /* Each row claimed once, and workflow 2 never past three running. */
    CHECK_INT(total, 63);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE status = 'running'"), 63);
    CHECK_INT(sql_int(f, "SELECT MAX(claims) FROM executions"), 1);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE status = 'running' AND "
                         "workflow_id = '0190a0b1-0005-7000-8000-000000000002'"), 3);
}

BOTH(exec_claim_threads_never_share, body_claim_threads)

/* Round-robin across users: each user's next execution before anyone's
 * second, the round resuming after the user served last, whatever the
 * ages. Users 1 (1..10, the oldest), 2 (11, 12) and 3 (13). */
static void body_claim_fair(fixture *f)
{
    CHECK_INT(setup(f), 0);
    for (int i = 1; i <= 10; i++)
        CHECK_INT(ex_add_by(f, i, 1, 1, i * SEC, 0), 0);
    CHECK_INT(ex_add_by(f, 12, 1, 2, 12 * SEC, 0), 0);
    CHECK_INT(ex_add_by(f, 11, 1, 2, 11 * SEC, 0), 0);
    CHECK_INT(ex_add_by(f, 13, 1, 3, 13 * SEC, 0), 0);
    /* A round (1, 11, 13), then the next one begins (2). */
    CHECK_STR(claim_after(f, 4, 0), "1,11,13,2");
    /* The next claim goes on after user 1: user 2, then user 1 again. */
    CHECK_STR(claim_after(f, 2, 1), "12,3");
    CHECK_STR(claim_after(f, 1, 1), "4");
    /* A newcomer's execution, younger than user 1's backlog, is next. */
    CHECK_INT(ex_add_by(f, 14, 1, 3, 14 * SEC, 0), 0);
    CHECK_STR(claim_after(f, 1, 1), "14");
    /* Served last: user 3; user 1 is the only one left. */
    CHECK_STR(claim_after(f, 3, 3), "5,6,7");
    /* Without a user ("" for none), still claimed, in its own turn. */
    store_execution e;
    ex_make(f, &e, 20, 1, 20 * SEC);
    e.triggered_by[0] = '\0';
    CHECK_INT(store_execution_insert(f->s, &e), AOP_OK);
    CHECK_STR(claim_after(f, 2, 1), "20,8");
}

BOTH(exec_claim_round_robin_across_users, body_claim_fair)

/* A workflow's limit shared by two users: the place that frees goes to
 * the user whose turn it is, not to the oldest row. */
static void body_claim_fair_limit(fixture *f)
{
    CHECK_INT(setup(f), 0);
    CHECK_INT(add_wf(f, 2, 1, 0, "Beta"), 0);
    for (int i = 1; i <= 3; i++)
        CHECK_INT(ex_add_by(f, i, 1, 1, i * SEC, 1), 0);
    CHECK_INT(ex_add_by(f, 4, 1, 2, 4 * SEC, 1), 0);
    CHECK_INT(ex_add_by(f, 5, 2, 1, 5 * SEC, 0), 0);
    /* After user 1: user 2's 4 takes the one place; user 1 gets 5. */
    CHECK_STR(claim_after(f, 10, 1), "4,5");
    CHECK_STR(claim_after(f, 10, 1), "");
    CHECK_INT(finish(f, 4, EXEC_SUCCEEDED), AOP_OK);
    CHECK_STR(claim_after(f, 10, 2), "1");
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE status = 'running' AND "
                         "workflow_id = '0190a0b1-0005-7000-8000-000000000001'"), 1);
}

BOTH(exec_claim_fair_within_a_limit, body_claim_fair_limit)

#define FAIR_BACKLOG 100000

/* A backlog of FAIR_BACKLOG rows of user 1 (the oldest; every 1000th of
 * a workflow limited to one at a time, running already) delays neither
 * the next execution of users 2 and 3 nor their second beyond the round
 * it comes in. */
static void body_claim_fair_backlog(fixture *f)
{
    static const char seed[] =
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000) "
        "INSERT INTO executions (id, workflow_id, workflow_version, status, trigger, input, "
        "created_at, timeout_ms, max_concurrency, triggered_by) "
        "SELECT printf('0190a0b1-0006-7000-8000-%012d', i), "
        "printf('0190a0b1-0005-7000-8000-%012d', 1 + (i % 1000 = 0)), 1, 'queued', 'api', "
        "'{}', strftime('%Y-%m-%dT%H:%M:%S.000Z', 1780000000 + i, 'unixepoch'), 300000, "
        "i % 1000 = 0, '0190a0b1-0000-7000-8000-000000000001' FROM c";
    static const char seed_pg[] =
        "INSERT INTO executions (id, workflow_id, workflow_version, status, trigger, input, "
        "created_at, timeout_ms, max_concurrency, triggered_by) "
        "SELECT '0190a0b1-0006-7000-8000-' || lpad(i::text, 12, '0'), "
        "'0190a0b1-0005-7000-8000-00000000000' || (1 + (i % 1000 = 0)::int), 1, 'queued', "
        "'api', '{}', to_char(to_timestamp(1780000000 + i) AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"'), 300000, (i % 1000 = 0)::int, "
        "'0190a0b1-0000-7000-8000-000000000001' FROM generate_series(1, 100000) i";
    store_execution *es = NULL;
    int n = 0;
    CHECK_INT(setup(f), 0);
    CHECK_INT(add_wf(f, 2, 1, 0, "Limited"), 0);
    CHECK_INT(ex_add_by(f, FAIR_BACKLOG + 1, 2, 1, 0, 1), 0);
    CHECK_STR(claim_after(f, 1, 0), "100001");
    CHECK_INT(sql_run(f, BY_BACKEND(f, seed, seed_pg)), 0);
    CHECK_INT(ex_add_by(f, FAIR_BACKLOG + 2, 1, 2, 100000 * SEC, 0), 0);
    CHECK_INT(ex_add_by(f, FAIR_BACKLOG + 3, 1, 3, 100001 * SEC, 0), 0);
    CHECK_INT(ex_add_by(f, FAIR_BACKLOG + 4, 1, 3, 100002 * SEC, 0), 0);
    /* One claim of 256: a round (1, 100002, 100003), the next (2,
     * 100004), then user 1's oldest, its limited rows passed over. */
    CHECK_INT(store_execution_claim(f->s, "w1", clock_t0, 30 * SEC, 256, NULL, &es, &n, &f->a),
              AOP_OK);
    CHECK_INT(n, 256);
    CHECK_STR(numbers(es, 5), "1,100002,100003,2,100004");
    CHECK_INT(id_num(es[255].id), 253);
    /* A newcomer later: the next claim of one takes it. */
    CHECK_INT(ex_add_by(f, FAIR_BACKLOG + 5, 1, 2, 100003 * SEC, 0), 0);
    CHECK_STR(claim_after(f, 1, 1), "100005");
    CHECK_STR(claim_after(f, 1, 2), "254");
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE status = 'running'"), 259);
}

BOTH(exec_claim_fair_under_a_large_backlog, body_claim_fair_backlog)

/* The quota of active executions per user: queued and running rows count,
 * ended ones do not, nor other users'; the rows of one transaction count
 * against each other. */
typedef struct {
    fixture *f;
    int from, n, user;
    long long quota;
    aop_err rc[8];
} enqueue_job;

static aop_err enqueue_tx(store *s, void *p)
{
    enqueue_job *j = p;
    long long active = -1;
    for (int i = 0; i < j->n; i++) {
        store_execution e;
        ex_make(j->f, &e, j->from + i, 1, (j->from + i) * SEC);
        user_id(e.triggered_by, j->user);
        j->rc[i] = store_execution_enqueue(s, &e, j->quota, &active);
        if (j->rc[i] != AOP_OK && j->rc[i] != AOP_ERR_QUOTA_EXCEEDED)
            return j->rc[i];
    }
    return AOP_OK;
}

static aop_err enqueue(fixture *f, int from, int n, int user, long long quota, aop_err *rcs)
{
    enqueue_job j = {f, from, n, user, quota, {0}};
    aop_err rc = store_tx(f->s, enqueue_tx, &j);
    memcpy(rcs, j.rc, sizeof(j.rc));
    return rc;
}

static void body_quota(fixture *f)
{
    aop_err rc[8];
    CHECK_INT(setup(f), 0);
    /* Three of user 1 in one transaction against a quota of 3: all in. */
    CHECK_INT(enqueue(f, 1, 3, 1, 3, rc), AOP_OK);
    CHECK(rc[0] == AOP_OK && rc[1] == AOP_OK && rc[2] == AOP_OK);
    /* A fourth, alone or with others: refused, nothing written. */
    CHECK_INT(enqueue(f, 4, 1, 1, 3, rc), AOP_OK);
    CHECK_INT(rc[0], AOP_ERR_QUOTA_EXCEEDED);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions"), 3);
    /* Another user is not affected. */
    CHECK_INT(enqueue(f, 5, 2, 2, 3, rc), AOP_OK);
    CHECK(rc[0] == AOP_OK && rc[1] == AOP_OK);
    /* Running still counts; an end frees a place, for one more only. */
    CHECK_STR(claim(f, "w1", 2), "1,5");
    CHECK_INT(enqueue(f, 9, 1, 1, 3, rc), AOP_OK);
    CHECK_INT(rc[0], AOP_ERR_QUOTA_EXCEEDED);
    CHECK_INT(finish(f, 1, EXEC_SUCCEEDED), AOP_OK);
    CHECK_INT(enqueue(f, 10, 2, 1, 3, rc), AOP_OK);
    CHECK_INT(rc[0], AOP_OK);
    CHECK_INT(rc[1], AOP_ERR_QUOTA_EXCEEDED);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE triggered_by = "
                         "'0190a0b1-0000-7000-8000-000000000001' AND status IN "
                         "('queued', 'running')"), 3);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions"), 6);
}

BOTH(exec_quota_counts_active_rows, body_quota)

/* An llm node that succeeded at its second attempt, run from T0 to
 * T0 + 1500 ms, with output. */
static void llm_done(fixture *f, store_exec_node *nd, const char *output)
{
    nd->type = "llm";
    nd->status = EXEC_SUCCEEDED;
    nd->attempts = 2;
    str_copy(nd->started_at, sizeof(nd->started_at), ts(f, 0));
    str_copy(nd->finished_at, sizeof(nd->finished_at), ts(f, 1500));
    nd->duration_ms = 1500;
    nd->prompt_tokens = 10;
    nd->completion_tokens = 5;
    nd->total_tokens = 15;
    nd->cost_usd = 0.25;
    nd->model = "gpt-4o-mini";
    nd->output = (char *)output;
}

/* got reads back as llm_done wrote it, as node "a", first of its execution. */
static void check_llm_done(fixture *f, const store_exec_node *got, const char *output)
{
    CHECK_STR(got->node_id, "a");
    CHECK_INT(got->seq, 0);
    CHECK_STR(got->type, "llm");
    CHECK_INT(got->status, EXEC_SUCCEEDED);
    CHECK_INT(got->attempts, 2);
    CHECK_STR(got->started_at, ts(f, 0));
    CHECK_STR(got->finished_at, ts(f, 1500));
    CHECK_INT(got->duration_ms, 1500);
    CHECK_INT(got->prompt_tokens, 10);
    CHECK_INT(got->completion_tokens, 5);
    CHECK_INT(got->total_tokens, 15);
    CHECK(NEAR(got->cost_usd, 0.25));
    CHECK_STR(got->model, "gpt-4o-mini");
    CHECK_STR(got->output, output);
    CHECK(got->error == NULL);
}

/* ---- node rows ---- */

static void body_nodes(fixture *f)
{
    store_exec_node nd, *ns = NULL;
    char id[UUID_STR_LEN];
    int n = -1;
    long long changed = -1;
    CHECK_INT(setup(f), 0);
    CHECK_INT(ex_add(f, 1, 1, 0, 0), 0);
    ex_id(id, 1);
    memset(&nd, 0, sizeof(nd));
    nd.node_id = "a";
    nd.type = "llm";
    nd.status = EXEC_RUNNING;
    nd.attempts = 1;
    str_copy(nd.started_at, sizeof(nd.started_at), ts(f, 0));
    nd.duration_ms = -1;
    nd.model = "gpt-4o-mini";
    CHECK_INT(store_execution_node_put(f->s, id, &nd), AOP_OK);
    CHECK_INT(node_add(f, 1, "b", EXEC_PENDING, -1, NULL, 0, 0), AOP_OK);
    /* a again: every field replaced, its seq kept. */
    llm_done(f, &nd, "{\"text\":\"hi\"}");
    CHECK_INT(store_execution_node_put(f->s, id, &nd), AOP_OK);
    memset(&nd, 0, sizeof(nd));
    nd.node_id = "c";
    nd.type = "http";
    nd.status = EXEC_RUNNING;
    str_copy(nd.started_at, sizeof(nd.started_at), ts(f, 1000));
    nd.duration_ms = -1;
    nd.error = "{\"code\":\"E\",\"message\":\"m\"}";
    CHECK_INT(store_execution_node_put(f->s, id, &nd), AOP_OK);

    CHECK_INT(store_execution_nodes(f->s, id, &ns, &n, &f->a), AOP_OK);
    CHECK_INT(n, 3);
    check_llm_done(f, &ns[0], "{\"text\":\"hi\"}");
    CHECK_STR(ns[1].node_id, "b");
    CHECK_INT(ns[1].seq, 1);
    CHECK(ns[1].model == NULL && ns[1].output == NULL && ns[1].error == NULL);
    CHECK_STR(ns[1].started_at, "");
    CHECK_INT(ns[1].duration_ms, -1);
    CHECK_STR(ns[2].node_id, "c");
    CHECK_INT(ns[2].seq, 2);
    CHECK_STR(ns[2].error, "{\"code\":\"E\",\"message\":\"m\"}");

    /* The execution is cancelled: running nodes end with a duration from
     * their start, pending ones are skipped without one. */
    CHECK_INT(store_execution_nodes_end(f->s, id, EXEC_RUNNING, EXEC_CANCELLED, ts(f, 2234),
                                        &changed), AOP_OK);
    CHECK_INT(changed, 1);
    CHECK_INT(store_execution_nodes_end(f->s, id, EXEC_PENDING, EXEC_SKIPPED, ts(f, 2300),
                                        &changed), AOP_OK);
    CHECK_INT(changed, 1);
    CHECK_INT(store_execution_nodes(f->s, id, &ns, &n, &f->a), AOP_OK);
    CHECK_INT(n, 3);
    CHECK_INT(ns[0].status, EXEC_SUCCEEDED);
    CHECK_INT(ns[0].duration_ms, 1500);
    CHECK_INT(ns[1].status, EXEC_SKIPPED);
    CHECK_STR(ns[1].finished_at, ts(f, 2300));
    CHECK_INT(ns[1].duration_ms, -1);
    CHECK_INT(ns[2].status, EXEC_CANCELLED);
    CHECK_STR(ns[2].finished_at, ts(f, 2234));
    CHECK_INT(ns[2].duration_ms, 1234);
    CHECK_INT(store_execution_nodes_end(f->s, id, EXEC_RUNNING, EXEC_CANCELLED, ts(f, 3000),
                                        &changed), AOP_OK);
    CHECK_INT(changed, 0);

    /* Another execution numbers its own nodes; an unknown one has none. */
    CHECK_INT(ex_add(f, 2, 1, 0, 0), 0);
    CHECK_INT(node_add(f, 2, "z", EXEC_RUNNING, -1, NULL, 0, 0), AOP_OK);
    ex_id(id, 2);
    CHECK_INT(store_execution_nodes(f->s, id, &ns, &n, &f->a), AOP_OK);
    CHECK_INT(n, 1);
    CHECK_INT(ns[0].seq, 0);
    ex_id(id, 3);
    CHECK_INT(store_execution_nodes(f->s, id, &ns, &n, &f->a), AOP_OK);
    CHECK_INT(n, 0);
    CHECK(node_add(f, 3, "a", EXEC_RUNNING, -1, NULL, 0, 0) != AOP_OK);
}

BOTH(exec_node_put_keeps_seq_and_nodes_end, body_nodes)

/* Many node rows: the array grows past its first size. */
static void body_many_nodes(fixture *f)
{
    store_exec_node *ns = NULL;
    char id[UUID_STR_LEN], name[16];
    int n = -1;
    CHECK_INT(setup(f), 0);
    CHECK_INT(ex_add(f, 1, 1, 0, 0), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "n%03d", 99 - i);
        CHECK_INT(node_add(f, 1, name, EXEC_SUCCEEDED, i, NULL, 0, 0), AOP_OK);
    }
    ex_id(id, 1);
    CHECK_INT(store_execution_nodes(f->s, id, &ns, &n, &f->a), AOP_OK);
    CHECK_INT(n, 100);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "n%03d", 99 - i);
        CHECK_STR(ns[i].node_id, name);
        CHECK_INT(ns[i].seq, i);
        CHECK_INT(ns[i].duration_ms, i);
    }
}

BOTH(exec_nodes_many_in_seq_order, body_many_nodes)

/* A node row of execution n for the batched writes. */
static void node_row_of(fixture *f, store_exec_node_row *r, int n, const char *node_id,
                        exec_status status)
{
    memset(r, 0, sizeof(*r));
    char *id = arena_alloc(&f->a, UUID_STR_LEN);
    ex_id(id, n);
    r->execution_id = id;
    r->node.node_id = arena_strdup(&f->a, node_id);
    r->node.type = "transform";
    r->node.status = status;
    r->node.attempts = 1;
    r->node.duration_ms = -1;
}

/* The engine's flush writes: leases checked for many runs at once (only
 * the owner's current claim of a running row passes), node rows of several
 * executions in one call (seq numbered per execution in the order given,
 * kept on a rewrite; more rows than one statement takes), ends with each
 * one's own answer. */
static void body_flush_batches(fixture *f)
{
    enum { MANY = 600 }; /* more than two statements' worth (BATCH_ROWS) */
    store_exec_lease leases[5];
    bool owned[5];
    char ids[5][UUID_STR_LEN];
    store_exec_node *ns = NULL;
    int n = 0;
    CHECK_INT(setup(f), 0);
    for (int i = 1; i <= 4; i++)
        CHECK_INT(ex_add(f, i, 1, i, 0), 0);
    CHECK_STR(claim(f, "w1", 3), "1,2,3");
    static const int num[5] = {1, 2, 3, 4, 9};
    static const long long claims[5] = {1, 2, 1, 1, 1};
    for (int i = 0; i < 5; i++) {
        ex_id(ids[i], num[i]);
        leases[i] = (store_exec_lease){ids[i], claims[i]};
    }
    CHECK_INT(store_execution_owned_batch(f->s, "w1", leases, 5, owned), AOP_OK);
    CHECK(owned[0] && !owned[1] && owned[2] && !owned[3] && !owned[4]);
    CHECK_INT(store_execution_owned_batch(f->s, "w2", leases, 5, owned), AOP_OK);
    CHECK(!owned[0] && !owned[1] && !owned[2] && !owned[3] && !owned[4]);
    CHECK_INT(store_execution_owned_batch(f->s, "w1", leases, 0, owned), AOP_OK);

    store_exec_node_row rows[3];
    node_row_of(f, &rows[0], 1, "a", EXEC_RUNNING);
    node_row_of(f, &rows[1], 3, "a", EXEC_PENDING);
    node_row_of(f, &rows[2], 1, "b", EXEC_PENDING);
    CHECK_INT(store_execution_nodes_put(f->s, rows, 3), AOP_OK);
    /* a rewrite keeps its seq; a new row comes after; texts as written */
    node_row_of(f, &rows[0], 1, "c", EXEC_PENDING);
    node_row_of(f, &rows[1], 1, "a", EXEC_SUCCEEDED);
    static const char said[] = "{\"t\":\"say \\\"hi\\\" \\\\ \\u00e9 \xc3\xa9\\n\"}";
    llm_done(f, &rows[1].node, said);
    node_row_of(f, &rows[2], 3, "b", EXEC_FAILED);
    rows[2].node.error = "{\"code\":\"E\",\"message\":\"m\"}";
    CHECK_INT(store_execution_nodes_put(f->s, rows, 3), AOP_OK);
    CHECK_INT(store_execution_nodes(f->s, ids[0], &ns, &n, &f->a), AOP_OK);
    CHECK_INT(n, 3);
    check_llm_done(f, &ns[0], said);
    CHECK_STR(ns[1].node_id, "b");
    CHECK_INT(ns[1].seq, 1);
    CHECK(ns[1].model == NULL && ns[1].output == NULL && ns[1].error == NULL);
    CHECK_STR(ns[1].started_at, "");
    CHECK_INT(ns[1].duration_ms, -1);
    CHECK_STR(ns[2].node_id, "c");
    CHECK_INT(ns[2].seq, 2);
    CHECK_INT(store_execution_nodes(f->s, ids[2], &ns, &n, &f->a), AOP_OK);
    CHECK_INT(n, 2);
    CHECK_STR(ns[0].node_id, "a");
    CHECK_INT(ns[0].status, EXEC_PENDING);
    CHECK_STR(ns[1].node_id, "b");
    CHECK_INT(ns[1].seq, 1);
    CHECK_STR(ns[1].error, "{\"code\":\"E\",\"message\":\"m\"}");

    /* more rows than one statement takes: all written, seq in order */
    store_exec_node_row *many = arena_alloc(&f->a, sizeof(*many) * MANY);
    for (int i = 0; i < MANY; i++)
        node_row_of(f, &many[i], 2, arena_printf(&f->a, "n%d", i), EXEC_PENDING);
    CHECK_INT(store_execution_nodes_put(f->s, many, MANY), AOP_OK);
    CHECK_INT(store_execution_nodes(f->s, ids[1], &ns, &n, &f->a), AOP_OK);
    CHECK_INT(n, MANY);
    for (int i = 0; i < n; i++) {
        CHECK_INT(ns[i].seq, i);
        CHECK_STR(ns[i].node_id, arena_printf(&f->a, "n%d", i));
    }
    /* rows larger together than one statement takes (BATCH_BYTES) */
    enum { BIG = 700 * 1024 };
    char *big = arena_alloc(&f->a, BIG + 16);
    memcpy(big, "{\"t\":\"", 6);
    memset(big + 6, 'x', BIG);
    memcpy(big + 6 + BIG, "\"}", 3);
    for (int i = 0; i < 3; i++) {
        node_row_of(f, &rows[i], 3, arena_printf(&f->a, "big%d", i), EXEC_SUCCEEDED);
        rows[i].node.output = big;
    }
    CHECK_INT(store_execution_nodes_put(f->s, rows, 3), AOP_OK);
    CHECK_INT(store_execution_nodes(f->s, ids[2], &ns, &n, &f->a), AOP_OK);
    CHECK_INT(n, 5);
    for (int i = 2; i < n; i++) {
        CHECK_STR(ns[i].node_id, arena_printf(&f->a, "big%d", i - 2));
        CHECK_INT(ns[i].seq, i);
        CHECK_STR(ns[i].output, big);
    }
    /* a row whose execution does not exist fails the call */
    node_row_of(f, &rows[0], 9, "a", EXEC_PENDING);
    CHECK(store_execution_nodes_put(f->s, rows, 1) != AOP_OK);

    /* ends: one written, one that had ended (a conflict), one absent */
    store_execution ends[3];
    aop_err each[3];
    CHECK_INT(finish(f, 4, EXEC_CANCELLED), AOP_OK);
    for (int i = 0; i < 3; i++) {
        ex_make(f, &ends[i], i == 0 ? 1 : i == 1 ? 4 : 9, 1, 0);
        ends[i].status = EXEC_FAILED;
        str_copy(ends[i].finished_at, sizeof(ends[i].finished_at), ts(f, 2 * SEC));
        ends[i].duration_ms = 2000;
    }
    ends[0].status = EXEC_SUCCEEDED;
    ends[0].output = "{\"ok\":\"\\\"\"}";
    ends[0].memory_bytes = 1 << 20;
    ends[0].prompt_tokens = 10;
    ends[0].completion_tokens = 20;
    ends[0].total_tokens = 30;
    ends[0].cost_usd = 0.5;
    ends[1].error = "{\"code\":\"E\",\"message\":\"m\"}";
    CHECK_INT(store_execution_finish_batch(f->s, ends, 3, each), AOP_OK);
    CHECK_INT(each[0], AOP_OK);
    CHECK_INT(each[1], AOP_ERR_CONFLICT);
    CHECK_INT(each[2], AOP_ERR_NOT_FOUND);
    store_execution out;
    CHECK_INT(store_execution_get(f->s, ids[0], &out, &f->a), AOP_OK);
    CHECK_INT(out.status, EXEC_SUCCEEDED);
    CHECK_STR(out.output, "{\"ok\":\"\\\"\"}");
    CHECK(out.error == NULL);
    CHECK_STR(out.finished_at, ts(f, 2 * SEC));
    CHECK_INT(out.duration_ms, 2000);
    CHECK_INT(out.memory_bytes, 1 << 20);
    CHECK_INT(out.prompt_tokens, 10);
    CHECK_INT(out.completion_tokens, 20);
    CHECK_INT(out.total_tokens, 30);
    CHECK(NEAR(out.cost_usd, 0.5));
    CHECK_INT(store_execution_get(f->s, ids[3], &out, &f->a), AOP_OK);
    CHECK_INT(out.status, EXEC_CANCELLED);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE lease_owner IS NULL"), 2);
    /* an ended row is no longer owned */
    CHECK_INT(store_execution_owned_batch(f->s, "w1", leases, 3, owned), AOP_OK);
    CHECK(!owned[0] && !owned[1] && owned[2]);
}

BOTH(exec_flush_batches, body_flush_batches)

/* What a transaction of sent statements (db_send: pipeline mode on
 * PostgreSQL) does: queue n executions from first, then, with bad, write
 * a node row of an execution that does not exist, then read a count
 * (whose answer the statements sent before come with). */
typedef struct {
    fixture *f;
    int first, n;
    bool bad;
    long long count;
} sent_tx;

static aop_err sent_body(store *s, void *p)
{
    sent_tx *x = p;
    long long active = -1;
    for (int i = 0; i < x->n; i++) {
        store_execution e;
        ex_make(x->f, &e, x->first + i, 1, i);
        aop_err rc = store_execution_enqueue(s, &e, 1000000, &active);
        if (rc != AOP_OK)
            return rc;
    }
    if (x->bad) {
        store_exec_node_row r;
        node_row_of(x->f, &r, 99999, "a", EXEC_PENDING);
        aop_err rc = store_execution_nodes_put(s, &r, 1);
        if (rc != AOP_OK)
            return rc;
    }
    return store_execution_events_last(s, "none", &x->count);
}

/* Statements sent ahead of their answers: more of them in a transaction
 * than the pipeline holds are all committed, in order (the quota's count
 * sees the rows before it); one that fails fails the transaction at the
 * next answer read, nothing of it is kept, and the connection serves the
 * next transaction. */
static void body_sent_statements(fixture *f)
{
    enum { MANY = 300 }; /* more than PIPE_MAX */
    CHECK_INT(setup(f), 0);
    sent_tx x = {f, 1, MANY, false, -1};
    CHECK_INT(store_tx(f->s, sent_body, &x), AOP_OK);
    CHECK_INT(x.count, 1);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions"), MANY);
    long long active = -1;
    store_execution e;
    ex_make(f, &e, MANY + 1, 1, 0);
    CHECK_INT(store_execution_enqueue(f->s, &e, MANY, &active), AOP_ERR_QUOTA_EXCEEDED);
    CHECK_INT(active, MANY);

    sent_tx bad = {f, 1000, 5, true, -1};
    CHECK(store_tx(f->s, sent_body, &bad) != AOP_OK);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions"), MANY);
    sent_tx again = {f, 2000, 5, false, -1};
    CHECK_INT(store_tx(f->s, sent_body, &again), AOP_OK);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions"), MANY + 5);
    /* outside a transaction a sent statement answers at once */
    store_exec_node_row r;
    node_row_of(f, &r, 99999, "a", EXEC_PENDING);
    CHECK(store_execution_nodes_put(f->s, &r, 1) != AOP_OK);
    node_row_of(f, &r, 2000, "a", EXEC_PENDING);
    CHECK_INT(store_execution_nodes_put(f->s, &r, 1), AOP_OK);
}

BOTH(exec_sent_statements, body_sent_statements)

/* ---- analytics ---- */

static void body_analytics(fixture *f)
{
    store_workflow w;
    char wid[UUID_STR_LEN], w9[UUID_STR_LEN];
    CHECK_INT(setup(f), 0);
    CHECK_INT(add_wf(f, 2, 1, 0, "Beta"), 0);
    wf_id(wid, 1);
    wf_id(w9, 9);
    CHECK_INT(store_workflow_get(f->s, wid, &w, &f->a), AOP_OK);
    CHECK_INT(w.an.execution_count, 0);
    CHECK_STR(w.an.last_executed_at, "");
    CHECK_INT(store_workflow_analytics_add(f->s, wid, EXEC_SUCCEEDED, 100, 10, 0.5, ts(f, 50)),
              AOP_OK);
    CHECK_INT(store_workflow_analytics_add(f->s, wid, EXEC_FAILED, -1, 0, 0, ts(f, 60)), AOP_OK);
    CHECK_INT(store_workflow_analytics_add(f->s, wid, EXEC_TIMED_OUT, 50, 5, 0.25, ts(f, 10)),
              AOP_OK);
    CHECK_INT(store_workflow_analytics_add(f->s, wid, EXEC_CANCELLED, 0, 0, 0, ts(f, 20)), AOP_OK);
    CHECK_INT(store_workflow_get(f->s, wid, &w, &f->a), AOP_OK);
    CHECK_INT(w.an.execution_count, 4);
    CHECK_INT(w.an.success_count, 1);
    CHECK_INT(w.an.failure_count, 2);
    CHECK_INT(w.an.duration_ms_total, 150);
    CHECK_INT(w.an.duration_count, 3);
    CHECK_INT(w.an.total_tokens, 15);
    CHECK(NEAR(w.an.total_cost_usd, 0.75));
    CHECK_STR(w.an.last_executed_at, ts(f, 60)); /* the latest, not the last written */
    /* A deleted workflow still counts its last runs; no row, not found. */
    wf_id(wid, 2);
    CHECK_INT(store_workflow_delete(f->s, wid, "x", ts(f, 70)), AOP_OK);
    CHECK_INT(store_workflow_analytics_add(f->s, wid, EXEC_SUCCEEDED, 7, 1, 0.125, ts(f, 80)),
              AOP_OK);
    CHECK_INT(sql_int(f, "SELECT execution_count * 1000 + success_count * 100 + duration_ms_total "
                         "FROM workflows WHERE name = 'Beta'"), 1107);
    CHECK_INT(store_workflow_analytics_add(f->s, w9, EXEC_SUCCEEDED, 7, 1, 0, ts(f, 80)),
              AOP_ERR_NOT_FOUND);
}

BOTH(exec_analytics_add_counts, body_analytics)

/* Several ends in one write (the engine's flush) count as the same ends one
 * by one; an empty last start keeps the stored one. */
static void body_analytics_tally(fixture *f)
{
    store_workflow w;
    char wid[UUID_STR_LEN];
    store_wf_tally t = {0};
    CHECK_INT(setup(f), 0);
    wf_id(wid, 1);
    store_wf_tally_add(&t, EXEC_SUCCEEDED, 100, 10, 0.5, ts(f, 50));
    store_wf_tally_add(&t, EXEC_FAILED, -1, 0, 0, ts(f, 60));
    store_wf_tally_add(&t, EXEC_TIMED_OUT, 50, 5, 0.25, ts(f, 10));
    store_wf_tally_add(&t, EXEC_CANCELLED, 0, 0, 0, NULL);
    CHECK_INT(t.executions, 4);
    CHECK_STR(t.last_executed_at, ts(f, 60));
    CHECK_INT(store_workflow_analytics_tally(f->s, wid, &t), AOP_OK);
    store_wf_tally none = {.executions = 1, .failed = 1};
    CHECK_INT(store_workflow_analytics_tally(f->s, wid, &none), AOP_OK);
    CHECK_INT(store_workflow_get(f->s, wid, &w, &f->a), AOP_OK);
    CHECK_INT(w.an.execution_count, 5);
    CHECK_INT(w.an.success_count, 1);
    CHECK_INT(w.an.failure_count, 3);
    CHECK_INT(w.an.duration_ms_total, 150);
    CHECK_INT(w.an.duration_count, 3);
    CHECK_INT(w.an.total_tokens, 15);
    CHECK(NEAR(w.an.total_cost_usd, 0.75));
    CHECK_STR(w.an.last_executed_at, ts(f, 60));
}

BOTH(exec_analytics_tally_counts, body_analytics_tally)

/* ---- the list ---- */

static store_exec_query q_all(void)
{
    return (store_exec_query){.status = -1, .limit = 100};
}

/* One page as numbers ("!" when the call failed, "O" when a row carried
 * its output, "I" when one lacked its input); *total gets the total. */
static const char *page(fixture *f, store_exec_query q, long long *total)
{
    store_execution *es = NULL;
    int n = -1;
    *total = -1;
    if (store_execution_list(f->s, &q, &es, &n, total, &f->a) != AOP_OK)
        return "!";
    for (int i = 0; i < n; i++) {
        if (es[i].output)
            return "O";
        if (!es[i].input || strncmp(es[i].input, "{\"n\":", 5) != 0)
            return "I";
    }
    return numbers(es, n);
}

#define LIST(f, q, want, want_total)                                                       \
    do {                                                                                   \
        long long t_ = -1;                                                                 \
        CHECK_STR(page((f), (q), &t_), (want));                                            \
        CHECK_INT(t_, (want_total));                                                       \
    } while (0)

/*
 * Six executions: 1 (workflow 1, succeeded, 50 ms), 2 (2, failed, 10 ms),
 * 3 (1, running), 4 (3, succeeded, 30 ms), 5 (4, queued), 6 (1, succeeded,
 * 20 ms), created at seconds 1..6 and started then. Workflow 1 is user 1's
 * with user 2 as a viewer, 2 user 2's, 3 user 1's but deleted, 4 user 3's.
 */
static int list_seed(fixture *f)
{
    store_execution e;
    char w3[UUID_STR_LEN];
    for (int i = 1; i <= 4; i++)
        if (add_user(f, i) != 0)
            return -1;
    if (add_wf(f, 1, 1, 2, "Alpha") != 0 || add_wf(f, 2, 2, 0, "Beta") != 0 ||
        add_wf(f, 3, 1, 0, "Gamma") != 0 || add_wf(f, 4, 3, 0, "Delta") != 0)
        return -1;
    if (ex_add_ended(f, 1, 1, 1 * SEC, EXEC_SUCCEEDED, 50, 0, 0) != 0 ||
        ex_add_ended(f, 2, 2, 2 * SEC, EXEC_FAILED, 10, 0, 0) != 0 ||
        ex_add_ended(f, 4, 3, 4 * SEC, EXEC_SUCCEEDED, 30, 0, 0) != 0 ||
        ex_add(f, 5, 4, 5 * SEC, 0) != 0 ||
        ex_add_ended(f, 6, 1, 6 * SEC, EXEC_SUCCEEDED, 20, 0, 0) != 0)
        return -1;
    ex_make(f, &e, 3, 1, 3 * SEC);
    e.status = EXEC_RUNNING;
    str_copy(e.started_at, sizeof(e.started_at), e.created_at);
    if (store_execution_insert(f->s, &e) != AOP_OK)
        return -1;
    wf_id(w3, 3);
    if (store_workflow_delete(f->s, w3, "x", ts(f, 10 * SEC)) != AOP_OK)
        return -1;
    /* Outputs are kept but never listed. */
    return sql_run(f, "UPDATE executions SET output = '{\"big\":true}' WHERE status = 'succeeded'");
}

static void body_list_filters(fixture *f)
{
    char u1[UUID_STR_LEN], u2[UUID_STR_LEN], u3[UUID_STR_LEN], u4[UUID_STR_LEN];
    char w1[UUID_STR_LEN], w3[UUID_STR_LEN];
    store_exec_query q;
    CHECK_INT(list_seed(f), 0);
    user_id(u1, 1);
    user_id(u2, 2);
    user_id(u3, 3);
    user_id(u4, 4);
    wf_id(w1, 1);
    wf_id(w3, 3);
    LIST(f, q_all(), "1,2,3,4,5,6", 6);
    q = q_all();
    q.status = EXEC_SUCCEEDED;
    LIST(f, q, "1,4,6", 3);
    q.status = EXEC_QUEUED;
    LIST(f, q, "5", 1);
    q = q_all();
    q.workflow_id = w1;
    LIST(f, q, "1,3,6", 3);
    q.status = EXEC_RUNNING;
    LIST(f, q, "3", 1);
    q = q_all();
    q.from = ts(f, 2 * SEC);
    q.to = ts(f, 5 * SEC);
    LIST(f, q, "2,3,4", 3);
    q.to = NULL;
    LIST(f, q, "2,3,4,5,6", 5);
    q.from = NULL;
    q.to = ts(f, 3 * SEC);
    LIST(f, q, "1,2", 2);
    /* Readers: what they own or are named in, of live workflows only (the
     * deleted workflow 3's execution is an admin's to see). */
    q = q_all();
    q.reader = u1;
    LIST(f, q, "1,3,6", 3);
    q.reader = u2;
    LIST(f, q, "1,2,3,6", 4);
    q.reader = u3;
    LIST(f, q, "5", 1);
    q.reader = u4;
    LIST(f, q, "", 0);
    q.reader = u2;
    q.status = EXEC_SUCCEEDED;
    q.from = ts(f, 2 * SEC);
    LIST(f, q, "6", 1);
    q = q_all();
    q.reader = u1;
    q.workflow_id = w3;
    LIST(f, q, "", 0);
    q.reader = NULL;
    LIST(f, q, "4", 1);
}

BOTH(exec_list_filters_and_readers, body_list_filters)

static void body_list_sorts(fixture *f)
{
    store_exec_query q;
    CHECK_INT(list_seed(f), 0);
    q = q_all();
    q.desc = true;
    LIST(f, q, "6,5,4,3,2,1", 6);
    /* NULLs (not started, not finished) last in both directions, by id. */
    q = q_all();
    q.sort = STORE_EXEC_SORT_DURATION;
    LIST(f, q, "2,6,4,1,3,5", 6);
    q.desc = true;
    LIST(f, q, "1,4,6,2,5,3", 6);
    q = q_all();
    q.sort = STORE_EXEC_SORT_STARTED;
    LIST(f, q, "1,2,3,4,6,5", 6);
    q.desc = true;
    LIST(f, q, "6,4,3,2,1,5", 6);
    q = q_all();
    q.sort = STORE_EXEC_SORT_FINISHED;
    LIST(f, q, "1,2,4,6,3,5", 6);
    q.desc = true;
    LIST(f, q, "6,4,2,1,5,3", 6);
    q.status = EXEC_SUCCEEDED;
    LIST(f, q, "6,4,1", 3);
    /* Pages: the total is every match whatever the page. */
    q = q_all();
    q.limit = 2;
    q.offset = 2;
    LIST(f, q, "3,4", 6);
    q.offset = 5;
    LIST(f, q, "6", 6);
    q.offset = 6;
    LIST(f, q, "", 6);
    q.offset = 0;
    q.limit = 0;
    LIST(f, q, "", 6);
    q = q_all();
    q.sort = STORE_EXEC_SORT_DURATION;
    q.desc = true;
    q.limit = 3;
    q.offset = 3;
    LIST(f, q, "2,5,3", 6);
}

BOTH(exec_list_sorts_and_pages, body_list_sorts)

/* ---- stats and summary ---- */

static void body_stats(fixture *f)
{
    store_exec_totals t;
    store_exec_node_stat *ns = NULL;
    char w1[UUID_STR_LEN], w3[UUID_STR_LEN], w4[UUID_STR_LEN];
    int n = -1;
    CHECK_INT(setup(f), 0);
    CHECK_INT(add_wf(f, 2, 1, 0, "Beta"), 0);
    CHECK_INT(add_wf(f, 3, 1, 0, "Gamma"), 0);
    CHECK_INT(add_wf(f, 4, 1, 0, "Delta"), 0);
    /* Durations 1..100 ms, inserted out of order; one queued; one cancelled
     * before it started (duration 0, not counted); another workflow's. */
    for (int i = 1; i <= 100; i++) {
        int d = (i * 37) % 100 + 1;
        CHECK_INT(ex_add_ended(f, i, 1, i * SEC, EXEC_SUCCEEDED, d, d, 0.01), 0);
    }
    CHECK_INT(ex_add(f, 101, 1, 200 * SEC, 0), 0);
    CHECK_INT(ex_add_ended(f, 102, 1, 150 * SEC, EXEC_CANCELLED, -1, 0, 0), 0);
    CHECK_INT(ex_add_ended(f, 103, 2, 300 * SEC, EXEC_FAILED, 100000, 7, 1), 0);
    CHECK_INT(ex_add_ended(f, 104, 3, 1 * SEC, EXEC_TIMED_OUT, 7, 0, 0), 0);
    wf_id(w1, 1);
    wf_id(w3, 3);
    wf_id(w4, 4);
    CHECK_INT(store_execution_stats(f->s, w1, &t, &ns, &n, &f->a), AOP_OK);
    CHECK_INT(t.total, 102);
    CHECK_INT(t.by_status[EXEC_SUCCEEDED], 100);
    CHECK_INT(t.by_status[EXEC_QUEUED], 1);
    CHECK_INT(t.by_status[EXEC_CANCELLED], 1);
    CHECK_INT(t.by_status[EXEC_FAILED] + t.by_status[EXEC_RUNNING] + t.by_status[EXEC_TIMED_OUT],
              0);
    CHECK(NEAR(t.duration_avg, 50.5));
    CHECK_INT(t.duration_p50, 50);
    CHECK_INT(t.duration_p95, 95);
    CHECK_INT(t.duration_max, 100);
    CHECK_INT(t.total_tokens, 5050);
    CHECK_INT(t.prompt_tokens, 5050);
    CHECK_INT(t.completion_tokens, 0);
    CHECK(fabs(t.cost_usd - 1.0) < 1e-9);
    /* the newest start: the queued one and the one cancelled in the queue never ran */
    CHECK_STR(t.last_executed_at, ts(f, 100 * SEC));
    CHECK_INT(n, 0);
    /* One duration: every percentile is it. */
    CHECK_INT(store_execution_stats(f->s, w3, &t, &ns, &n, &f->a), AOP_OK);
    CHECK_INT(t.total, 1);
    CHECK_INT(t.by_status[EXEC_TIMED_OUT], 1);
    CHECK_INT(t.duration_p50, 7);
    CHECK_INT(t.duration_p95, 7);
    CHECK_INT(t.duration_max, 7);
    /* None at all. */
    CHECK_INT(store_execution_stats(f->s, w4, &t, &ns, &n, &f->a), AOP_OK);
    CHECK_INT(t.total, 0);
    CHECK_INT(t.duration_p50 + t.duration_p95 + t.duration_max, 0);
    CHECK(t.duration_avg == 0);
    CHECK_STR(t.last_executed_at, "");
    CHECK_INT(n, 0);
}

BOTH(exec_stats_percentiles, body_stats)

static void body_stats_nodes(fixture *f)
{
    store_exec_totals t;
    store_exec_node_stat *ns = NULL;
    char w1[UUID_STR_LEN];
    int n = -1;
    CHECK_INT(setup(f), 0);
    CHECK_INT(add_wf(f, 2, 1, 0, "Beta"), 0);
    CHECK_INT(ex_add_ended(f, 1, 1, 1 * SEC, EXEC_FAILED, 100, 0, 0), 0);
    CHECK_INT(ex_add_ended(f, 2, 1, 2 * SEC, EXEC_TIMED_OUT, 100, 0, 0), 0);
    CHECK_INT(ex_add_ended(f, 3, 2, 3 * SEC, EXEC_SUCCEEDED, 100, 0, 0), 0);
    CHECK_INT(node_add(f, 1, "b", EXEC_SUCCEEDED, 10, "m1", 5, 0.125), AOP_OK);
    CHECK_INT(node_add(f, 1, "a", EXEC_FAILED, 20, NULL, 0, 0), AOP_OK);
    CHECK_INT(node_add(f, 2, "b", EXEC_SUCCEEDED, 30, "m1", 7, 0.25), AOP_OK);
    CHECK_INT(node_add(f, 2, "a", EXEC_SKIPPED, -1, NULL, 0, 0), AOP_OK);
    CHECK_INT(node_add(f, 2, "c", EXEC_TIMED_OUT, -1, NULL, 0, 0), AOP_OK);
    CHECK_INT(node_add(f, 3, "a", EXEC_FAILED, 99, NULL, 0, 0), AOP_OK);
    wf_id(w1, 1);
    CHECK_INT(store_execution_stats(f->s, w1, &t, &ns, &n, &f->a), AOP_OK);
    CHECK_INT(t.total, 2);
    CHECK_INT(t.by_status[EXEC_FAILED], 1);
    CHECK_INT(t.by_status[EXEC_TIMED_OUT], 1);
    CHECK_INT(n, 3);
    CHECK_STR(ns[0].node_id, "a");
    CHECK_INT(ns[0].executions, 1);
    CHECK_INT(ns[0].failures, 1);
    CHECK(NEAR(ns[0].avg_duration_ms, 20));
    CHECK_STR(ns[1].node_id, "b");
    CHECK_INT(ns[1].executions, 2);
    CHECK_INT(ns[1].failures, 0);
    CHECK(NEAR(ns[1].avg_duration_ms, 20));
    CHECK_INT(ns[1].total_tokens, 12);
    CHECK(NEAR(ns[1].cost_usd, 0.375));
    CHECK_STR(ns[2].node_id, "c");
    CHECK_INT(ns[2].executions, 1);
    CHECK_INT(ns[2].failures, 1);
    CHECK(NEAR(ns[2].avg_duration_ms, 0));
}

BOTH(exec_stats_per_node, body_stats_nodes)

#define DAY (24 * 3600 * SEC)

/*
 * Day 0: 1 (workflow 1, succeeded, 0.5 USD, a node on m1) and 2 (2, failed,
 * 0.25, a node on m2); day 1: 3 (1, timed out, two nodes on m1); day 2:
 * 4 (2, succeeded, 1.0), 5 (2, queued), 6 (3, succeeded; workflow 3 is
 * deleted but keeps its name).
 */
static int summary_seed(fixture *f)
{
    char w3[UUID_STR_LEN];
    wf_id(w3, 3);
    if (setup(f) != 0 || add_wf(f, 2, 1, 0, "Beta") != 0 || add_wf(f, 3, 1, 0, "Gamma") != 0 ||
        ex_add_ended(f, 1, 1, 0, EXEC_SUCCEEDED, 10, 10, 0.5) != 0 ||
        ex_add_ended(f, 2, 2, 60 * SEC, EXEC_FAILED, 20, 20, 0.25) != 0 ||
        ex_add_ended(f, 3, 1, DAY, EXEC_TIMED_OUT, 30, 0, 0) != 0 ||
        ex_add_ended(f, 4, 2, 2 * DAY, EXEC_SUCCEEDED, 40, 0, 1.0) != 0 ||
        ex_add(f, 5, 2, 2 * DAY + 1, 0) != 0 ||
        ex_add_ended(f, 6, 3, 2 * DAY + 2, EXEC_SUCCEEDED, 50, 0, 0) != 0 ||
        node_add(f, 1, "a", EXEC_SUCCEEDED, 5, "m1", 10, 0.5) != AOP_OK ||
        node_add(f, 1, "t", EXEC_SUCCEEDED, 5, NULL, 0, 0) != AOP_OK ||
        node_add(f, 2, "a", EXEC_SUCCEEDED, 5, "m2", 20, 0.25) != AOP_OK ||
        node_add(f, 3, "a", EXEC_SUCCEEDED, 5, "m1", 1, 0) != AOP_OK ||
        node_add(f, 3, "b", EXEC_FAILED, 5, "m1", 2, 0) != AOP_OK)
        return -1;
    return store_workflow_delete(f->s, w3, "x", ts(f, 3 * DAY)) == AOP_OK ? 0 : -1;
}

static void body_summary(fixture *f)
{
    store_exec_totals t;
    store_exec_model_stat *ms = NULL;
    store_exec_day *ds = NULL;
    store_wf_top *top = NULL;
    int nm = -1, nd = -1, nt = -1;
    CHECK_INT(summary_seed(f), 0);
    CHECK_INT(store_execution_summary(f->s, NULL, NULL, &t, &ms, &nm, &ds, &nd, &top, &nt, &f->a),
              AOP_OK);
    CHECK_INT(t.total, 6);
    CHECK_INT(t.by_status[EXEC_SUCCEEDED], 3);
    CHECK_INT(t.by_status[EXEC_QUEUED], 1);
    CHECK(NEAR(t.cost_usd, 1.75));
    CHECK_INT(t.total_tokens, 30);
    CHECK_INT(t.duration_p50, 30);
    CHECK_INT(t.duration_max, 50);
    CHECK_STR(t.last_executed_at, ts(f, 2 * DAY + 2));
    CHECK_INT(nm, 2);
    CHECK_STR(ms[0].model, "m1");
    CHECK_INT(ms[0].calls, 3);
    CHECK_INT(ms[0].total_tokens, 13);
    CHECK(NEAR(ms[0].cost_usd, 0.5));
    CHECK_STR(ms[1].model, "m2");
    CHECK_INT(ms[1].calls, 1);
    CHECK_INT(nd, 3);
    CHECK_STR(ds[0].date, "2026-06-01");
    CHECK_INT(ds[0].executions, 2);
    CHECK_INT(ds[0].failures, 1);
    CHECK(NEAR(ds[0].cost_usd, 0.75));
    CHECK_STR(ds[1].date, "2026-06-02");
    CHECK_INT(ds[1].executions, 1);
    CHECK_INT(ds[1].failures, 1);
    CHECK_STR(ds[2].date, "2026-06-03");
    CHECK_INT(ds[2].executions, 3);
    CHECK_INT(ds[2].failures, 0);
    CHECK(NEAR(ds[2].cost_usd, 1.0));
    CHECK_INT(nt, 3);
    CHECK_INT(id_num(top[0].id), 2);
    CHECK_STR(top[0].name, "Beta");
    CHECK_INT(top[0].executions, 3);
    CHECK(NEAR(top[0].cost_usd, 1.25));
    CHECK_INT(id_num(top[1].id), 1);
    CHECK_STR(top[1].name, "Alpha");
    CHECK_INT(top[1].executions, 2);
    CHECK_INT(id_num(top[2].id), 3);
    CHECK_STR(top[2].name, "Gamma");

    /* [day 1, day 2): execution 3 alone. */
    CHECK_INT(store_execution_summary(f->s, ts(f, DAY), ts(f, 2 * DAY), &t, &ms, &nm, &ds, &nd,
                                      &top, &nt, &f->a), AOP_OK);
    CHECK_INT(t.total, 1);
    CHECK_INT(t.by_status[EXEC_TIMED_OUT], 1);
    CHECK_INT(t.duration_p95, 30);
    CHECK_INT(nm, 1);
    CHECK_STR(ms[0].model, "m1");
    CHECK_INT(ms[0].calls, 2);
    CHECK_INT(nd, 1);
    CHECK_STR(ds[0].date, "2026-06-02");
    CHECK_INT(nt, 1);
    CHECK_STR(top[0].name, "Alpha");
    /* From day 1 on; up to (not including) execution 2. */
    CHECK_INT(store_execution_summary(f->s, ts(f, DAY), NULL, &t, &ms, &nm, &ds, &nd, &top, &nt,
                                      &f->a), AOP_OK);
    CHECK_INT(t.total, 4);
    CHECK_INT(nd, 2);
    CHECK_INT(store_execution_summary(f->s, NULL, ts(f, 60 * SEC), &t, &ms, &nm, &ds, &nd, &top,
                                      &nt, &f->a), AOP_OK);
    CHECK_INT(t.total, 1);
    CHECK_INT(nm, 1);
    CHECK_STR(ms[0].model, "m1");
    CHECK_INT(ms[0].calls, 1);
    /* An empty range. */
    CHECK_INT(store_execution_summary(f->s, ts(f, 9 * DAY), NULL, &t, &ms, &nm, &ds, &nd, &top,
                                      &nt, &f->a), AOP_OK);
    CHECK_INT(t.total, 0);
    CHECK_INT(nm + nd + nt, 0);
    CHECK_STR(t.last_executed_at, "");
}

BOTH(exec_summary_models_days_top, body_summary)

/* Workflows 2..13 and 402 days, one execution each: day i (from
 * 2025-01-01) runs workflow 1 + i % 13 and costs i / 1000 USD. */
static const char caps_seed[] =
    "WITH RECURSIVE c(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM c WHERE i < 13) "
    "INSERT INTO workflows (id, name, status, version, owner_id, created_by, updated_by, "
    "created_at, updated_at, search_name, search_description, definition) "
    "SELECT printf('0190a0b1-0005-7000-8000-%012d', i), printf('W%d', i), 'active', 1, "
    "'0190a0b1-0000-7000-8000-000000000001', 'x', 'x', '2026-01-01T00:00:00.000Z', "
    "'2026-01-01T00:00:00.000Z', '', '', '{}' FROM c;"
    "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 401) "
    "INSERT INTO executions (id, workflow_id, workflow_version, status, trigger, created_at, "
    "timeout_ms, cost_usd, input) "
    "SELECT printf('0190a0b1-0006-7000-8000-%012d', i), "
    "printf('0190a0b1-0005-7000-8000-%012d', 1 + i % 13), 1, 'succeeded', 'api', "
    "strftime('%Y-%m-%dT00:00:00.000Z', '2025-01-01', printf('+%d days', i)), 1000, "
    "i / 1000.0, '{}' FROM c;";
static const char caps_seed_pg[] =
    "INSERT INTO workflows (id, name, status, version, owner_id, created_by, updated_by, "
    "created_at, updated_at, definition) "
    "SELECT '0190a0b1-0005-7000-8000-' || lpad(i::text, 12, '0'), 'W' || i, 'active', 1, "
    "'0190a0b1-0000-7000-8000-000000000001', 'x', 'x', '2026-01-01T00:00:00.000Z', "
    "'2026-01-01T00:00:00.000Z', '{}' FROM generate_series(2, 13) i;"
    "INSERT INTO executions (id, workflow_id, workflow_version, status, trigger, created_at, "
    "timeout_ms, cost_usd, input) "
    "SELECT '0190a0b1-0006-7000-8000-' || lpad(i::text, 12, '0'), "
    "'0190a0b1-0005-7000-8000-' || lpad((1 + i % 13)::text, 12, '0'), 1, 'succeeded', 'api', "
    "to_char(DATE '2025-01-01' + i, 'YYYY-MM-DD\"T00:00:00.000Z\"'), 1000, i / 1000.0, '{}' "
    "FROM generate_series(0, 401) i;";

/* More days and workflows than the summary returns: the newest days, oldest
 * first; the top by executions, then cost. */
static void body_summary_caps(fixture *f)
{
    store_exec_totals t;
    store_exec_model_stat *ms = NULL;
    store_exec_day *ds = NULL;
    store_wf_top *top = NULL;
    int nm = -1, nd = -1, nt = -1;
    CHECK_INT(setup(f), 0);
    CHECK_INT(sql_run(f, BY_BACKEND(f, caps_seed, caps_seed_pg)), 0);
    CHECK_INT(store_execution_summary(f->s, NULL, NULL, &t, &ms, &nm, &ds, &nd, &top, &nt, &f->a),
              AOP_OK);
    CHECK_INT(t.total, 402);
    CHECK_INT(nd, STORE_EXEC_MAX_DAYS);
    CHECK_STR(ds[0].date, "2025-01-03");
    CHECK_STR(ds[STORE_EXEC_MAX_DAYS - 1].date, "2026-02-06");
    for (int i = 1; i < nd; i++)
        CHECK(strcmp(ds[i - 1].date, ds[i].date) < 0);
    CHECK_INT(nm, 0);
    /* 402 = 13 * 30 + 12: workflows 1..12 have 31 each, 13 has 30; among
     * the 31s the dearer first: day i's cost grows with i, and workflow
     * 12's days are the latest (i % 13 = 11). */
    CHECK_INT(nt, STORE_WF_TOP);
    CHECK_INT(top[0].executions, 31);
    CHECK_INT(id_num(top[0].id), 12);
    CHECK_STR(top[0].name, "W12");
    CHECK_INT(id_num(top[1].id), 11);
    CHECK_INT(id_num(top[9].id), 3);
    for (int i = 1; i < nt; i++)
        CHECK(top[i - 1].cost_usd > top[i].cost_usd);
}

BOTH(exec_summary_caps_days_and_top, body_summary_caps)

/* ---- retention ---- */

/* The numbers of the executions left, in number order. */
static const char *left(fixture *f)
{
    static char out[512];
    static const char sql[] = "SELECT id FROM executions ORDER BY id";
    size_t len = 0;
    snprintf(out, sizeof(out), "!");
    if (f->pg) {
        PGconn *c = pg_connect(f);
        PGresult *r = NULL;
        if (c && pg_run(c, sql, &r) == 0) {
            out[0] = '\0';
            for (int i = 0; i < PQntuples(r) && len < sizeof(out); i++)
                len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%d", len ? "," : "",
                                        id_num(PQgetvalue(r, i, 0)));
            PQclear(r);
        }
        PQfinish(c);
        return out;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        out[0] = '\0';
        while (sqlite3_step(st) == SQLITE_ROW && len < sizeof(out))
            len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%d", len ? "," : "",
                                    id_num((const char *)sqlite3_column_text(st, 0)));
    }
    sqlite3_finalize(st);
    sqlite3_close_v2(db);
    return out;
}

static void body_prune(fixture *f)
{
    long long n = -1;
    CHECK_INT(setup(f), 0);
    /* Ended 1..6 at seconds 1..6; 7 queued and 8 running, older than all. */
    CHECK_INT(ex_add_ended(f, 1, 1, 1 * SEC, EXEC_SUCCEEDED, 5, 0, 0), 0);
    CHECK_INT(ex_add_ended(f, 2, 1, 2 * SEC, EXEC_FAILED, 5, 0, 0), 0);
    CHECK_INT(ex_add_ended(f, 3, 1, 3 * SEC, EXEC_CANCELLED, -1, 0, 0), 0);
    CHECK_INT(ex_add_ended(f, 4, 1, 4 * SEC, EXEC_TIMED_OUT, 5, 0, 0), 0);
    CHECK_INT(ex_add_ended(f, 5, 1, 5 * SEC, EXEC_SUCCEEDED, 5, 0, 0), 0);
    CHECK_INT(ex_add_ended(f, 6, 1, 6 * SEC, EXEC_SUCCEEDED, 5, 0, 0), 0);
    CHECK_INT(ex_add(f, 7, 1, 0, 0), 0);
    CHECK_INT(ex_add(f, 8, 1, 0, 0), 0);
    CHECK_STR(claim(f, "w", 1), "7");
    CHECK_INT(node_add(f, 1, "a", EXEC_SUCCEEDED, 5, NULL, 0, 0), AOP_OK);
    CHECK_INT(node_add(f, 2, "a", EXEC_SUCCEEDED, 5, NULL, 0, 0), AOP_OK);
    CHECK_INT(node_add(f, 6, "a", EXEC_SUCCEEDED, 5, NULL, 0, 0), AOP_OK);
    /* Nothing asked, nothing done. */
    CHECK_INT(store_execution_prune(f->s, NULL, 0, 100, &n), AOP_OK);
    CHECK_INT(n, 0);
    CHECK_INT(store_execution_prune(f->s, ts(f, 100 * SEC), 0, 0, &n), AOP_OK);
    CHECK_INT(n, 0);
    /* By age, in batches, oldest first; never a queued or running one. */
    CHECK_INT(store_execution_prune(f->s, ts(f, 3500), 0, 2, &n), AOP_OK);
    CHECK_INT(n, 2);
    CHECK_STR(left(f), "3,4,5,6,7,8");
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM execution_nodes"), 1);
    CHECK_INT(store_execution_prune(f->s, ts(f, 3500), 0, 2, &n), AOP_OK);
    CHECK_INT(n, 1);
    CHECK_INT(store_execution_prune(f->s, ts(f, 3500), 0, 2, &n), AOP_OK);
    CHECK_INT(n, 0);
    CHECK_STR(left(f), "4,5,6,7,8");
    /* By count: the newest two ended ones stay. */
    CHECK_INT(store_execution_prune(f->s, NULL, 2, 100, &n), AOP_OK);
    CHECK_INT(n, 1);
    CHECK_STR(left(f), "5,6,7,8");
    CHECK_INT(store_execution_prune(f->s, NULL, 2, 100, &n), AOP_OK);
    CHECK_INT(n, 0);
    CHECK_INT(store_execution_prune(f->s, NULL, 5, 100, &n), AOP_OK);
    CHECK_INT(n, 0);
    /* Both: whichever takes more. */
    CHECK_INT(store_execution_prune(f->s, ts(f, 100 * SEC), 1, 100, &n), AOP_OK);
    CHECK_INT(n, 2);
    CHECK_STR(left(f), "7,8");
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM execution_nodes"), 0);
}

BOTH(exec_prune_by_age_and_keep, body_prune)

/* Several ended at the same instant: keep counts rows, (created_at, id)
 * deciding among equals; before takes every row older than it. */
static void body_prune_ties(fixture *f)
{
    long long n = -1;
    CHECK_INT(setup(f), 0);
    CHECK_INT(ex_add_ended(f, 1, 1, 1 * SEC, EXEC_SUCCEEDED, 5, 0, 0), 0);
    CHECK_INT(ex_add_ended(f, 4, 1, 2 * SEC, EXEC_SUCCEEDED, 5, 0, 0), 0);
    CHECK_INT(ex_add_ended(f, 2, 1, 2 * SEC, EXEC_SUCCEEDED, 5, 0, 0), 0);
    CHECK_INT(ex_add_ended(f, 3, 1, 2 * SEC, EXEC_SUCCEEDED, 5, 0, 0), 0);
    CHECK_INT(ex_add_ended(f, 5, 1, 3 * SEC, EXEC_SUCCEEDED, 5, 0, 0), 0);
    CHECK_INT(store_execution_prune(f->s, NULL, 3, 100, &n), AOP_OK);
    CHECK_INT(n, 2);
    CHECK_STR(left(f), "3,4,5");
    /* before at the tied instant keeps them; the keep cap past it wins. */
    CHECK_INT(store_execution_prune(f->s, ts(f, 2 * SEC), 2, 100, &n), AOP_OK);
    CHECK_INT(n, 1);
    CHECK_STR(left(f), "4,5");
    CHECK_INT(store_execution_prune(f->s, ts(f, 2 * SEC), 0, 100, &n), AOP_OK);
    CHECK_INT(n, 0);
    CHECK_INT(store_execution_prune(f->s, ts(f, 2 * SEC + 1), 0, 100, &n), AOP_OK);
    CHECK_INT(n, 1);
    CHECK_STR(left(f), "5");
}

BOTH(exec_prune_ties_exact, body_prune_ties)

/* 300 ended executions with 6 kB inputs (overflow pages). */
static const char reclaim_seed[] =
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300) "
    "INSERT INTO executions (id, workflow_id, workflow_version, status, trigger, created_at, "
    "timeout_ms, input) SELECT printf('0190a0b1-0006-7000-8000-%012d', i), "
    "'0190a0b1-0005-7000-8000-000000000001', 1, 'succeeded', 'api', "
    "'2026-01-01T00:00:00.000Z', 1000, printf('{\"pad\":\"%s\"}', hex(zeroblob(3000))) "
    "FROM c";

static void body_reclaim(fixture *f)
{
    long long n = -1;
    CHECK_INT(setup(f), 0);
    CHECK_INT(sql_run(f, reclaim_seed), 0);
    CHECK_INT(sql_int(f, "PRAGMA auto_vacuum"), 2);
    CHECK_INT(store_execution_prune(f->s, ts(f, 0), 0, 1000, &n), AOP_OK);
    CHECK_INT(n, 300);
    long long free0 = sql_int(f, "PRAGMA freelist_count");
    CHECK(free0 > 100);
    CHECK_INT(store_reclaim(f->s, 10), AOP_OK);
    CHECK_INT(sql_int(f, "PRAGMA freelist_count"), free0 - 10);
    CHECK_INT(store_reclaim(f->s, 0), AOP_OK);
    CHECK_INT(sql_int(f, "PRAGMA freelist_count"), 0);
    CHECK_INT(store_reclaim(f->s, 0), AOP_OK);
}

static void exec_reclaim_frees_pages(void)
{
    run_test(body_reclaim, false);
}

/* ---- plans on a larger table ---- */

#define PLAN_ROWS 10000 /* plans do not depend on it; the run time does */
#define STR_(x) #x
#define STR(x) STR_(x)

/* PLAN_ROWS executions over 20 workflows of 10 users, created a second apart:
 * 1 in 100 queued, 1 in 100 running, the rest ended, most with a duration;
 * a node row for every tenth. */
static const char plan_seed[] =
    "BEGIN;"
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 10) "
    "INSERT INTO users (id, email, name, password_hash, role, created_at, updated_at) "
    "SELECT printf('0190a0b1-0000-7000-8000-%012d', i), printf('p%d@example.com', i), 'P', 'x', "
    "'user', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' FROM c;"
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20) "
    "INSERT INTO workflows (id, name, status, version, owner_id, created_by, updated_by, "
    "created_at, updated_at, search_name, search_description, definition) "
    "SELECT printf('0190a0b1-0005-7000-8000-%012d', i), printf('W%d', i), 'active', 1, "
    "printf('0190a0b1-0000-7000-8000-%012d', 1 + i % 10), 'x', 'x', '2026-01-01T00:00:00.000Z', "
    "'2026-01-01T00:00:00.000Z', '', '', '{}' FROM c;"
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < " STR(PLAN_ROWS) ") "
    "INSERT INTO executions (id, workflow_id, workflow_version, status, trigger, created_at, "
    "started_at, finished_at, duration_ms, timeout_ms, max_concurrency, cost_usd, input, "
    "triggered_by) SELECT printf('0190a0b1-0006-7000-8000-%012d', i), "
    "printf('0190a0b1-0005-7000-8000-%012d', 1 + i % 20), 1, "
    "CASE i % 100 WHEN 0 THEN 'queued' WHEN 1 THEN 'running' WHEN 2 THEN 'failed' "
    "ELSE 'succeeded' END, 'api', "
    "strftime('%Y-%m-%dT%H:%M:%S.000Z', 1767225600 + i, 'unixepoch'), "
    "CASE WHEN i % 100 <> 0 THEN strftime('%Y-%m-%dT%H:%M:%S.000Z', 1767225600 + i, "
    "'unixepoch') END, "
    "CASE WHEN i % 100 > 1 THEN strftime('%Y-%m-%dT%H:%M:%S.500Z', 1767225600 + i, "
    "'unixepoch') END, CASE WHEN i % 100 > 1 THEN 500 + i % 977 END, 1000, i % 3, 0.001, "
    "'{\"pad\":\"0123456789012345678901234567890123456789\"}', "
    "printf('0190a0b1-0000-7000-8000-%012d', 1 + i % 10) FROM c;"
    "INSERT INTO execution_nodes (execution_id, node_id, type, status, seq, model, "
    "total_tokens) SELECT id, 'a', 'llm', 'succeeded', 0, 'm' || (rowid % 3), 10 "
    "FROM executions WHERE rowid % 10 = 0;"
    "COMMIT;";

/* The EXPLAIN QUERY PLAN of sql into plan, each step's detail between bars
 * ("|SCAN e|USE TEMP B-TREE FOR ORDER BY|"); 0, or -1 on error. Values stay
 * unbound: plans do not depend on them without statistics. */
static int query_plan(sqlite3 *db, const char *sql, char *plan, size_t planlen)
{
    sqlite3_stmt *st = NULL;
    char *text = db_sqlite_text(sql); /* as the driver prepares it */
    char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", text);
    free(text);
    int rc = q ? sqlite3_prepare_v2(db, q, -1, &st, NULL) : SQLITE_NOMEM;
    sqlite3_free(q);
    if (rc != SQLITE_OK) {
        snprintf(plan, planlen, "prepare: %s", sqlite3_errmsg(db));
        return -1;
    }
    size_t len = (size_t)snprintf(plan, planlen, "|");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *d = sqlite3_column_text(st, 3);
        if (len < planlen)
            len += (size_t)snprintf(plan + len, planlen - len, "%s|", d ? (const char *)d : "");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static const char *const sort_index[] = {"executions_created_idx", "executions_started_idx",
                                         "executions_finished_idx", "executions_duration_idx"};

/* Every list statement: none reads the whole table, and with no filter (or
 * a reader's) each sort walks its index. Failures into msg; their number. */
static int check_list_plans(sqlite3 *db, char *msg, size_t msglen)
{
    char plan[2048];
    int bad = 0;
    size_t len = 0;
    msg[0] = '\0';
#define PLAN_BAD(...)                                                                \
    do {                                                                             \
        if (++bad <= 6 && len < msglen)                                              \
            len += (size_t)snprintf(msg + len, msglen - len, __VA_ARGS__);           \
    } while (0)
    for (unsigned fl = 0; fl < 16; fl++) {
        const char *sql =
            db_list_sql(&store_exec_list, fl, STORE_EXEC_SORT_CREATED, false, true)->sqlite;
        if (query_plan(db, sql, plan, sizeof(plan)) != 0 || strstr(plan, "|SCAN e|"))
            PLAN_BAD("\ncount filters=%u: %s\n  for %s", fl, plan, sql);
        for (int s = 0; s < 4; s++) {
            for (int d = 0; d < 2; d++) {
                sql = db_list_sql(&store_exec_list, fl, s, d, false)->sqlite;
                if (query_plan(db, sql, plan, sizeof(plan)) != 0 || strstr(plan, "|SCAN e|"))
                    PLAN_BAD("\npage filters=%u sort=%d desc=%d: %s\n  for %s", fl, s, d, plan,
                             sql);
                else if (fl == 0 && (!strstr(plan, sort_index[s]) || strstr(plan, "TEMP B-TREE")))
                    PLAN_BAD("\npage filters=%u sort=%d desc=%d not in %s order: %s", fl, s, d,
                             sort_index[s], plan);
            }
        }
    }
#undef PLAN_BAD
    return bad;
}

/* The claim reads the queue through executions_fair_idx alone, a step per
 * user and each user's head up to its bound (never a scan of the table or
 * of the whole index: its sorts are of those heads), and the running rows
 * by their status, once. */
static bool claim_plan_ok(const char *plan)
{
    return strstr(plan, "COVERING INDEX executions_fair_idx (triggered_by>?)") &&
           strstr(plan, "COVERING INDEX executions_fair_idx (triggered_by=?)") &&
           strstr(plan, "SEARCH e USING COVERING INDEX executions_fair_idx (triggered_by=? AND "
                        "created_at<?)") &&
           strstr(plan, "SEARCH executions USING INDEX executions_active_idx (status=?)") &&
           !strstr(plan, "SCAN executions") && !strstr(plan, "|SCAN e|");
}

static void body_plans(fixture *f)
{
    sqlite3 *db = NULL;
    static char msg[16384];
    char plan[2048];
    long long n = -1, total = -1;
    CHECK_INT(sql_run(f, plan_seed), 0);
    CHECK_INT(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    int bad = check_list_plans(db, msg, sizeof(msg));
    if (!bad && (query_plan(db, store_exec_claim_sql.sqlite, plan, sizeof(plan)) != 0 ||
                 !claim_plan_ok(plan)))
        bad = snprintf(msg, sizeof(msg), "claim: %s", plan) > 0;
    if (!bad && (query_plan(db, store_exec_active_sql.sqlite, plan, sizeof(plan)) != 0 ||
                 !strstr(plan, "COVERING INDEX executions_active_idx (status=? AND "
                               "triggered_by=?)")))
        bad = snprintf(msg, sizeof(msg), "quota count: %s", plan) > 0;
    if (!bad && (query_plan(db, store_exec_prune_sql.sqlite, plan, sizeof(plan)) != 0 ||
                 !strstr(plan, "executions_ended_idx") || strstr(plan, "TEMP B-TREE")))
        bad = snprintf(msg, sizeof(msg), "prune: %s", plan) > 0;
    sqlite3_close_v2(db);
    if (bad) {
        unit_fail(__FILE__, __LINE__, msg);
        return;
    }
    /* And the statements do their work on this many rows. */
    store_execution *es = NULL;
    int got = -1;
    store_exec_query q = q_all();
    q.limit = 20;
    q.sort = STORE_EXEC_SORT_DURATION;
    q.desc = true;
    CHECK_INT(store_execution_list(f->s, &q, &es, &got, &total, &f->a), AOP_OK);
    CHECK_INT(total, PLAN_ROWS);
    CHECK_INT(got, 20);
    CHECK_INT(es[0].duration_ms, 500 + 976);
    CHECK_STR(claim(f, "w", 5), "100,200,300,600,900");
    CHECK_INT(store_execution_prune(f->s, NULL, PLAN_ROWS / 2, 1000000, &n), AOP_OK);
    CHECK_INT(n, PLAN_ROWS - PLAN_ROWS / 50 - PLAN_ROWS / 2);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE status NOT IN "
                         "('queued', 'running')"), PLAN_ROWS / 2);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM execution_nodes WHERE execution_id NOT IN "
                         "(SELECT id FROM executions)"), 0);
    CHECK_INT(sql_int(f, "PRAGMA foreign_key_check"), -1); /* no row: nothing dangling */
}

static void exec_plans_use_indexes(void)
{
    run_test(body_plans, false);
}

/* ---- PostgreSQL: several connections at once ---- */

#define RACE_WORKFLOWS 4 /* limits 1, 2, 3 and none */
#define RACE_EXECUTIONS 240
#define RACE_STORES 2    /* two "instances", each its own pool of connections */
#define RACE_THREADS 3   /* per store */

typedef struct {
    fixture *f;
    store *s;
    char owner[16];
    int batch;           /* claimed at a time */
    int total;           /* the race is over once this many were claimed */
    bool end_unlimited;  /* end every run taken (else only limited ones) */
    int *seen;           /* claims of each execution number, shared (atomic adds) */
    int *done;           /* executions claimed, shared */
    int claimed, over, duplicates, unordered;
    aop_err rc;
} racer;

/* Workflows that have more running executions than they allow, on a
 * connection of the racer's own: 0 at every moment. */
static const char q_over_limit[] =
    "SELECT COUNT(*) FROM (SELECT workflow_id FROM executions WHERE status = 'running' "
    "GROUP BY workflow_id HAVING MIN(max_concurrency) > 0 "
    "AND COUNT(*) > MAX(max_concurrency)) x";

/* Claims a batch at a time, checks the limits and the order of the batch,
 * ends the runs it took (every one, or only the limited ones); until every
 * execution was claimed (or 60 s pass). */
static void *race_loop(void *p)
{
    racer *r = p;
    arena a = {0};
    PGconn *c = pg_connect(r->f);
    int64_t until = clock_mono_ns() + 60 * 1000000000LL;
    while (c && r->rc == AOP_OK && __atomic_load_n(r->done, __ATOMIC_SEQ_CST) < r->total &&
           clock_mono_ns() < until) {
        store_execution *es = NULL;
        int n = 0;
        r->rc = store_execution_claim(r->s, r->owner, clock_t0, 60 * SEC, r->batch, NULL, &es, &n,
                                      &a);
        PGresult *res = NULL;
        if (r->rc == AOP_OK && n > 0 && pg_run(c, q_over_limit, &res) == 0) {
            r->over += pg_first_int(res) != 0;
            PQclear(res);
        }
        for (int i = 0; r->rc == AOP_OK && i < n; i++) {
            if (i > 0 && strcmp(es[i - 1].created_at, es[i].created_at) >= 0)
                r->unordered++;
            if (__atomic_add_fetch(&r->seen[id_num(es[i].id)], 1, __ATOMIC_SEQ_CST) > 1)
                r->duplicates++;
            __atomic_add_fetch(r->done, 1, __ATOMIC_SEQ_CST);
            if (es[i].max_concurrency == 0 && !r->end_unlimited)
                continue;
            es[i].status = EXEC_SUCCEEDED;
            str_copy(es[i].finished_at, sizeof(es[i].finished_at), "2026-06-01T00:00:01.000Z");
            es[i].duration_ms = 1000;
            r->rc = store_execution_finish(r->s, &es[i]);
        }
        r->claimed += n;
        arena_free(&a);
        if (n == 0)
            usleep(1000);
    }
    PQfinish(c);
    arena_free(&a);
    return NULL;
}

typedef struct {
    int started, claimed, over, duplicates, unordered;
    aop_err rc;
    char err[256];
} race_result;

/* RACE_STORES stores ("instances") of RACE_THREADS racers each, started at
 * once with done (shared) claims already counted; joins them and adds up
 * what they saw. */
static void race(fixture *f, int batch, int total, bool end_unlimited, int *seen, int done,
                 race_result *out)
{
    store *stores[RACE_STORES] = {0};
    racer r[RACE_STORES * RACE_THREADS];
    pthread_t t[RACE_STORES * RACE_THREADS];
    memset(out, 0, sizeof(*out));
    for (int k = 0; k < RACE_STORES; k++) {
        stores[k] = store_open(f->url, SLOW_MS, out->err, sizeof(out->err));
        if (!stores[k])
            break;
    }
    for (int k = 0; stores[RACE_STORES - 1] && k < RACE_STORES * RACE_THREADS; k++) {
        r[k] = (racer){.f = f, .s = stores[k / RACE_THREADS], .batch = batch, .total = total,
                       .end_unlimited = end_unlimited, .seen = seen, .done = &done};
        snprintf(r[k].owner, sizeof(r[k].owner), "i%d-t%d", k / RACE_THREADS, k % RACE_THREADS);
        if (pthread_create(&t[k], NULL, race_loop, &r[k]) != 0)
            break;
        out->started++;
    }
    for (int k = 0; k < out->started; k++) {
        pthread_join(t[k], NULL);
        out->claimed += r[k].claimed;
        out->over += r[k].over;
        out->duplicates += r[k].duplicates;
        out->unordered += r[k].unordered;
        if (r[k].rc != AOP_OK)
            out->rc = r[k].rc;
    }
    for (int k = 0; k < RACE_STORES; k++)
        store_close(stores[k]);
}

/* Several instances (stores), several threads each, claiming and ending
 * at once: every execution claimed exactly once, and no workflow ever past
 * its max_concurrency. */
static void body_pg_claim_race(fixture *f)
{
    static int seen[RACE_EXECUTIONS + 1];
    race_result r;
    CHECK_INT(setup(f), 0);
    for (int w = 2; w <= RACE_WORKFLOWS; w++)
        CHECK_INT(add_wf(f, w, 1, 0, "Race"), 0);
    for (int i = 1; i <= RACE_EXECUTIONS; i++)
        CHECK_INT(ex_add(f, i, 1 + i % RACE_WORKFLOWS, i, (i % RACE_WORKFLOWS + 1) % 4), 0);
    memset(seen, 0, sizeof(seen));
    race(f, 3, RACE_EXECUTIONS, true, seen, 0, &r);
    CHECK_STR(r.err, "");
    CHECK_INT(r.started, RACE_STORES * RACE_THREADS);
    CHECK_INT(r.rc, AOP_OK);
    CHECK_INT(r.duplicates, 0);
    CHECK_INT(r.over, 0);
    CHECK_INT(r.unordered, 0);
    CHECK_INT(r.claimed, RACE_EXECUTIONS);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE status = 'succeeded' AND "
                         "claims = 1"), RACE_EXECUTIONS);
}

static void exec_pg_claim_race_instances(void)
{
    run_test(body_pg_claim_race, true);
}

/* A backlog of mostly unlimited executions (claimed apart from the limited
 * ones, without the lock): one claim still takes the oldest of each class
 * in queue order within its limits, and claimers at once never share a
 * row nor pass a limit. Row i is created at i ms; every 50th is limited,
 * alternately to workflow 3 (two at a time) and 4 (one). */
#define SPLIT_ROWS 3060
#define SPLIT_BATCH 256
#define SPLIT_LIMITED(i) ((i) % 50 == 0)

static void body_pg_claim_split(fixture *f)
{
    static const char backlog[] =
        "INSERT INTO executions (id, workflow_id, workflow_version, status, trigger, input, "
        "created_at, timeout_ms, max_concurrency, triggered_by) "
        "SELECT '0190a0b1-0006-7000-8000-' || lpad(i::text, 12, '0'), "
        "'0190a0b1-0005-7000-8000-00000000000' || CASE WHEN i % 50 <> 0 THEN 2 "
        "WHEN i % 100 = 50 THEN 3 ELSE 4 END, 1, 'queued', 'api', '{}', "
        "to_char(to_timestamp(1780272000 + i / 1000.0) AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 300000, "
        "CASE WHEN i % 50 <> 0 THEN 0 WHEN i % 100 = 50 THEN 2 ELSE 1 END, "
        "'0190a0b1-0000-7000-8000-000000000001' FROM generate_series(1, 3060) i";
    static int seen[SPLIT_ROWS + 1];
    store_execution *es = NULL;
    int n = 0, want = 0, wrong = 0;
    race_result r;
    CHECK_INT(setup(f), 0);
    for (int w = 2; w <= 4; w++)
        CHECK_INT(add_wf(f, w, 1, 0, "Split"), 0);
    CHECK_INT(sql_run(f, backlog), 0);
    /* One claim: 50 and 150 of workflow 3, 100 of 4, and the oldest
     * unlimited rows for the rest (1..258 but 50, 100, 150, 200, 250), in
     * queue order. */
    CHECK_INT(store_execution_claim(f->s, "w1", clock_t0, 60 * SEC, SPLIT_BATCH, NULL, &es, &n,
                                    &f->a), AOP_OK);
    CHECK_INT(n, SPLIT_BATCH);
    for (int i = 1, k = 0; k < n; i++) {
        if (SPLIT_LIMITED(i) && i != 50 && i != 100 && i != 150)
            continue;
        want = i;
        if (id_num(es[k].id) != i || es[k].status != EXEC_RUNNING)
            wrong++;
        k++;
    }
    CHECK_INT(want, 258);
    CHECK_INT(wrong, 0);
    CHECK_INT(sql_int(f, q_over_limit), 0);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE status = 'running'"), SPLIT_BATCH);
    /* Then several instances at once take the rest (the limited runs of
     * this claim end first). */
    for (int i = 50; i <= 150; i += 50)
        CHECK_INT(finish(f, i, EXEC_SUCCEEDED), AOP_OK);
    memset(seen, 0, sizeof(seen));
    for (int k = 0; k < n; k++)
        seen[id_num(es[k].id)] = 1;
    race(f, SPLIT_BATCH, SPLIT_ROWS, false, seen, n, &r);
    CHECK_STR(r.err, "");
    CHECK_INT(r.started, RACE_STORES * RACE_THREADS);
    CHECK_INT(r.rc, AOP_OK);
    CHECK_INT(r.duplicates, 0);
    CHECK_INT(r.over, 0);
    CHECK_INT(r.unordered, 0);
    CHECK_INT(n + r.claimed, SPLIT_ROWS);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE status = 'queued'"), 0);
    CHECK_INT(sql_int(f, "SELECT MAX(claims) FROM executions"), 1);
}

static void exec_pg_claim_split_backlog(void)
{
    run_test(body_pg_claim_split, true);
}

/* A store call on a thread of its own, given 10 s (see call_in_time). */
typedef enum { CALL_CLAIM, CALL_RENEW, CALL_REQUEUE } call_kind;

typedef struct {
    fixture *f;
    call_kind kind;
    const char *got; /* CALL_CLAIM: the numbers claimed by "w1" */
    long long n;     /* else: rows changed */
    aop_err rc;
} timed_call;

static void *call_thread(void *p)
{
    timed_call *c = p;
    if (c->kind == CALL_CLAIM)
        c->got = claim(c->f, "w1", 10);
    else if (c->kind == CALL_RENEW)
        c->rc = store_execution_renew(c->f->s, "w1", T0_MS + 90 * SEC, &c->n);
    else
        c->rc = store_execution_requeue(c->f->s, T0_MS + 100 * SEC, &c->n);
    return NULL;
}

/* Runs c on a thread; false when it did not return within 10 s (then the
 * thread is joined once the caller has let go of what blocked it). */
static bool call_in_time(timed_call *c, pthread_t *t, bool *joined)
{
    struct timespec deadline;
    c->got = "!";
    c->n = -1;
    c->rc = AOP_ERR_INTERNAL;
    *joined = false;
    if (pthread_create(t, NULL, call_thread, c) != 0)
        return false;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    *joined = pthread_timedjoin_np(*t, NULL, &deadline) == 0;
    return *joined;
}

/* claim() for "w1" on a thread, given 10 s: "wait" when it did not return. */
static const char *claim_in_time(fixture *f, pthread_t *t, bool *joined)
{
    static timed_call c;
    c.f = f;
    c.kind = CALL_CLAIM;
    return call_in_time(&c, t, joined) ? c.got : "wait";
}

/* A row another transaction holds is passed over, not waited for; when
 * that transaction ends the row is claimable again, or gone for good when
 * it ended the execution. */
static void body_pg_claim_skips_locked(fixture *f)
{
    pthread_t t;
    bool joined = false;
    PGconn *c = NULL;
    CHECK_INT(setup(f), 0);
    for (int i = 1; i <= 4; i++)
        CHECK_INT(ex_add(f, i, 1, i * SEC, 0), 0);
    CHECK((c = pg_connect(f)) != NULL);
    if (pg_run(c, "BEGIN; SELECT 1 FROM executions WHERE id = "
                  "'0190a0b1-0006-7000-8000-000000000002' FOR UPDATE; UPDATE executions SET "
                  "status = 'cancelled' WHERE id = '0190a0b1-0006-7000-8000-000000000003'",
               NULL) != 0) {
        PQfinish(c);
        CHECK(!"lock rows");
    }
    const char *got = claim_in_time(f, &t, &joined);
    pg_run(c, "ROLLBACK", NULL);
    if (!joined)
        pthread_join(t, NULL);
    PQfinish(c);
    CHECK_STR(got, "1,4");
    /* Rolled back: both are queued and free again. */
    CHECK_STR(claim(f, "w1", 10), "2,3");
    /* Held and ended by the other transaction: skipped, then not there. */
    CHECK_INT(ex_add(f, 5, 1, 5 * SEC, 0), 0);
    CHECK_INT(ex_add(f, 6, 1, 6 * SEC, 0), 0);
    CHECK((c = pg_connect(f)) != NULL);
    if (pg_run(c, "BEGIN; UPDATE executions SET status = 'cancelled' WHERE id = "
                  "'0190a0b1-0006-7000-8000-000000000005'", NULL) != 0) {
        PQfinish(c);
        CHECK(!"lock rows");
    }
    got = claim_in_time(f, &t, &joined);
    pg_run(c, "COMMIT", NULL);
    if (!joined)
        pthread_join(t, NULL);
    PQfinish(c);
    CHECK_STR(got, "6");
    CHECK_STR(claim(f, "w1", 10), "");
}

static void exec_pg_claim_skips_locked_rows(void)
{
    run_test(body_pg_claim_skips_locked, true);
}

/* Renew and requeue pass over a running row another transaction holds
 * (a run's writes under execution_owned) instead of waiting for it. */
static void body_pg_leases_skip_locked(fixture *f)
{
    pthread_t t;
    bool joined = false, in_time = false;
    timed_call c;
    PGconn *conn = NULL;
    CHECK_INT(setup(f), 0);
    CHECK_INT(ex_add(f, 1, 1, 1 * SEC, 0), 0);
    CHECK_INT(ex_add(f, 2, 1, 2 * SEC, 0), 0);
    CHECK_STR(claim_at(f, "w1", 0, 30 * SEC, 2), "1,2");
    CHECK((conn = pg_connect(f)) != NULL);
    if (pg_run(conn, "BEGIN; SELECT 1 FROM executions WHERE id = "
                     "'0190a0b1-0006-7000-8000-000000000002' FOR NO KEY UPDATE", NULL) != 0) {
        PQfinish(conn);
        CHECK(!"lock row");
    }
    memset(&c, 0, sizeof(c));
    c.f = f;
    c.kind = CALL_RENEW;
    in_time = call_in_time(&c, &t, &joined);
    timed_call q = c;
    if (in_time) {
        q.kind = CALL_REQUEUE;
        in_time = call_in_time(&q, &t, &joined);
    }
    pg_run(conn, "ROLLBACK", NULL);
    if (!joined)
        pthread_join(t, NULL);
    PQfinish(conn);
    CHECK(in_time);
    CHECK_INT(c.rc, AOP_OK);
    CHECK_INT(c.n, 1);
    CHECK_INT(q.rc, AOP_OK);
    CHECK_INT(q.n, 1);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE status = 'queued' AND id LIKE "
                         "'%1'"), 1);
    CHECK_INT(sql_int(f, "SELECT lease_until FROM executions WHERE status = 'running'"),
              T0_MS + 30 * SEC);
    /* Let go of: the next round takes it. */
    long long n = -1;
    CHECK_INT(store_execution_requeue(f->s, T0_MS + 100 * SEC, &n), AOP_OK);
    CHECK_INT(n, 1);
}

static void exec_pg_leases_skip_locked_rows(void)
{
    run_test(body_pg_leases_skip_locked, true);
}

/* The lease a run's writes check holds until their transaction ends: a
 * requeue of the lapsed lease waits for it, then finds the run ended. */
typedef struct {
    fixture *f;
    long long moved;
    aop_err rc;
} requeuer;

static void *requeue_thread(void *p)
{
    requeuer *q = p;
    q->rc = store_execution_requeue(q->f->s, T0_MS + 100 * SEC, &q->moved);
    return NULL;
}

typedef struct {
    fixture *f;
    char id[UUID_STR_LEN];
    pthread_t t;
    requeuer q;
    bool started;
} owned_ctx;

static aop_err owned_tx(store *s, void *p)
{
    owned_ctx *x = p;
    store_execution e;
    aop_err rc = store_execution_owned(s, x->id, "A", 1);
    if (rc != AOP_OK)
        return rc;
    /* Another connection's requeue now has to wait for this transaction. */
    x->started = pthread_create(&x->t, NULL, requeue_thread, &x->q) == 0;
    usleep(200 * 1000);
    ex_make(x->f, &e, 1, 1, 0);
    e.status = EXEC_SUCCEEDED;
    str_copy(e.finished_at, sizeof(e.finished_at), ts(x->f, 2 * SEC));
    e.duration_ms = 5;
    return store_execution_finish(s, &e);
}

static void body_pg_owned_holds_lease(fixture *f)
{
    owned_ctx x;
    memset(&x, 0, sizeof(x));
    x.f = f;
    x.q.f = f;
    x.q.moved = -1;
    ex_id(x.id, 1);
    CHECK_INT(setup(f), 0);
    CHECK_INT(ex_add(f, 1, 1, 0, 0), 0);
    CHECK_STR(claim_at(f, "A", 0, 1 * SEC, 1), "1");
    aop_err rc = store_tx(f->s, owned_tx, &x);
    if (x.started)
        pthread_join(x.t, NULL);
    CHECK_INT(rc, AOP_OK);
    CHECK(x.started);
    CHECK_INT(x.q.rc, AOP_OK);
    CHECK_INT(x.q.moved, 0);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions WHERE status = 'succeeded'"), 1);
}

static void exec_pg_owned_holds_the_lease(void)
{
    run_test(body_pg_owned_holds_lease, true);
}

/* The plan of a statement on PostgreSQL, prepared as the driver prepares
 * it (parameter types inferred) and explained with values: each line of
 * EXPLAIN between bars, into plan; 0, or -1 (the error in plan). */
static int pg_plan(PGconn *c, const char *sql, int n, const char *const *values, char *plan,
                   size_t planlen)
{
    PGresult *r = PQexec(c, "DEALLOCATE ALL");
    PQclear(r);
    r = PQprepare(c, "planned", sql, 0, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    buf q;
    buf_init(&q, 0);
    buf_puts(&q, "EXPLAIN EXECUTE planned(");
    for (int i = 0; i < n; i++) {
        char *lit = PQescapeLiteral(c, values[i], strlen(values[i]));
        buf_printf(&q, "%s%s", i ? ", " : "", lit ? lit : "NULL");
        PQfreemem(lit);
    }
    buf_puts(&q, ")");
    r = ok ? PQexec(c, q.data) : NULL;
    buf_free(&q);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(plan, planlen, "%s", PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    size_t len = (size_t)snprintf(plan, planlen, "|");
    for (int i = 0; i < PQntuples(r) && len < planlen; i++)
        len += (size_t)snprintf(plan + len, planlen - len, "%s|", PQgetvalue(r, i, 0));
    PQclear(r);
    return 0;
}

/* On PostgreSQL, over 22000 executions, one in ten queued (a backlog of
 * one user and a few of others), with statistics and without, and as a custom and a generic plan
 * (the driver's prepared statements may get either): the pick reads each
 * user's rows through executions_fair_idx, by user (never a scan of the
 * table, nor the queue in created_at or status order),
 * and the quota's count finds the user's rows by executions_active_idx
 * (whether PostgreSQL also visits the table for them depends on its
 * visibility map, not on the statement). */
static void body_pg_plans(fixture *f)
{
    static const char seed[] =
        "INSERT INTO executions (id, workflow_id, workflow_version, status, trigger, input, "
        "created_at, timeout_ms, max_concurrency, triggered_by) "
        "SELECT '0190a0b1-0006-7000-8000-' || lpad(i::text, 12, '0'), "
        "'0190a0b1-0005-7000-8000-000000000001', 1, CASE WHEN i % 10 = 0 THEN 'queued' "
        "ELSE 'succeeded' END, 'api', '{}', to_char(to_timestamp(1780000000 + i) AT TIME ZONE "
        "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"'), 300000, (i % 7 = 0)::int, "
        "'0190a0b1-0000-7000-8000-00000000000' || (1 + (i % 1000 = 0)::int + 2 * (i % 990 = 0)::int) "
        "FROM generate_series(1, 22000) i";
    static const char *const pick_values[] = {"256", ""};
    static const char *const count_values[] = {"0190a0b1-0000-7000-8000-000000000001", "1001"};
    static const char *const modes[] = {"auto", "force_generic_plan"};
    char plan[8192] = "";
    CHECK_INT(setup(f), 0);
    CHECK_INT(sql_run(f, seed), 0);
    PGconn *c = pg_connect(f);
    CHECK(c != NULL);
    int bad = 0;
    for (int analyzed = 0; analyzed < 2 && !bad; analyzed++) {
        if (analyzed)
            bad = pg_run(c, "ANALYZE executions", NULL) != 0;
        for (int m = 0; m < 2 && !bad; m++) {
            char set[80];
            snprintf(set, sizeof(set), "SET plan_cache_mode = %s", modes[m]);
            bad = pg_run(c, set, NULL) != 0 ||
                  pg_plan(c, store_exec_pick_sql.pg, 2, pick_values, plan, sizeof(plan)) != 0 ||
                  !strstr(plan, "Index Cond: ((triggered_by >= u.t) AND (triggered_by <= u.t))") ||
                  strstr(plan, "Seq Scan on executions") ||
                  strstr(plan, "executions_status_idx") ||
                  strstr(plan, "executions_created_idx") ||
                  pg_plan(c, store_exec_active_sql.pg, 2, count_values, plan + 4096, 4096) != 0 ||
                  !strstr(plan + 4096, "executions_active_idx") ||
                  strstr(plan + 4096, "Seq Scan");
        }
    }
    PQfinish(c);
    if (bad) {
        unit_fail(__FILE__, __LINE__, plan);
        unit_fail(__FILE__, __LINE__, plan + 4096);
        return;
    }
    /* and the claim does its work there: users 2 and 3 first */
    CHECK_STR(claim_after(f, 4, 0), "10,1000,990,20");
}

static void exec_pg_plans_use_indexes(void)
{
    run_test(body_pg_plans, true);
}

/* Several instances (stores), several threads each, starting executions
 * of one user at once, each in a transaction of its own: exactly the quota
 * gets in, however they interleave. */
#define QUOTA_STARTS 20
#define QUOTA_LIMIT 25

typedef struct {
    fixture *f;
    store *s;
    int from, ok, over;
    aop_err rc;
} quota_racer;

static void *quota_loop(void *p)
{
    quota_racer *q = p;
    fixture own = *q->f; /* an arena of its own: the fixture's is not shared */
    own.a = (arena){0};
    enqueue_job j = {&own, 0, 1, 1, QUOTA_LIMIT, {0}};
    for (int i = 0; i < QUOTA_STARTS && q->rc == AOP_OK; i++) {
        j.from = q->from + i;
        q->rc = store_tx(q->s, enqueue_tx, &j);
        q->ok += q->rc == AOP_OK && j.rc[0] == AOP_OK;
        q->over += q->rc == AOP_OK && j.rc[0] == AOP_ERR_QUOTA_EXCEEDED;
    }
    arena_free(&own.a);
    return NULL;
}

static void body_pg_quota_race(fixture *f)
{
    store *stores[RACE_STORES] = {0};
    quota_racer q[RACE_STORES * RACE_THREADS];
    pthread_t t[RACE_STORES * RACE_THREADS];
    char err[256] = "";
    int started = 0, ok = 0, over = 0;
    aop_err rc = AOP_OK;
    CHECK_INT(setup(f), 0);
    for (int k = 0; k < RACE_STORES; k++)
        stores[k] = store_open(f->url, SLOW_MS, err, sizeof(err));
    for (int k = 0; stores[RACE_STORES - 1] && k < RACE_STORES * RACE_THREADS; k++) {
        q[k] = (quota_racer){.f = f, .s = stores[k / RACE_THREADS], .from = 1 + k * 100};
        if (pthread_create(&t[k], NULL, quota_loop, &q[k]) != 0)
            break;
        started++;
    }
    for (int k = 0; k < started; k++) {
        pthread_join(t[k], NULL);
        ok += q[k].ok;
        over += q[k].over;
        if (q[k].rc != AOP_OK)
            rc = q[k].rc;
    }
    for (int k = 0; k < RACE_STORES; k++)
        store_close(stores[k]);
    CHECK_STR(err, "");
    CHECK_INT(started, RACE_STORES * RACE_THREADS);
    CHECK_INT(rc, AOP_OK);
    CHECK_INT(ok, QUOTA_LIMIT);
    CHECK_INT(over, RACE_STORES * RACE_THREADS * QUOTA_STARTS - QUOTA_LIMIT);
    CHECK_INT(sql_int(f, "SELECT COUNT(*) FROM executions"), QUOTA_LIMIT);
}

static void exec_pg_quota_race_instances(void)
{
    run_test(body_pg_quota_race, true);
}

const unit_test exec_store_tests[] = {
    TEST(exec_status_names_both_ways),
    TEST(exec_insert_get_roundtrip),
    TEST(exec_insert_get_roundtrip_pg),
    TEST(exec_finish_conflict_not_found),
    TEST(exec_finish_conflict_not_found_pg),
    TEST(exec_delete_takes_nodes),
    TEST(exec_delete_takes_nodes_pg),
    TEST(exec_children),
    TEST(exec_children_pg),
    TEST(exec_agent_steps),
    TEST(exec_agent_steps_pg),

    TEST(exec_approvals_first_decision_wins),
    TEST(exec_approvals_first_decision_wins_pg),
    TEST(exec_claim_order_and_max_concurrency),
    TEST(exec_claim_order_and_max_concurrency_pg),
    TEST(exec_claim_backlog_does_not_starve_others),
    TEST(exec_claim_backlog_does_not_starve_others_pg),
    TEST(exec_claim_sets_start_and_deadline_once),
    TEST(exec_claim_sets_start_and_deadline_once_pg),
    TEST(exec_lease_renew_requeue_release_owned),
    TEST(exec_lease_renew_requeue_release_owned_pg),
    TEST(exec_claim_threads_never_share),
    TEST(exec_claim_threads_never_share_pg),
    TEST(exec_claim_round_robin_across_users),
    TEST(exec_claim_round_robin_across_users_pg),
    TEST(exec_claim_fair_within_a_limit),
    TEST(exec_claim_fair_within_a_limit_pg),
    TEST(exec_claim_fair_under_a_large_backlog),
    TEST(exec_claim_fair_under_a_large_backlog_pg),
    TEST(exec_quota_counts_active_rows),
    TEST(exec_quota_counts_active_rows_pg),
    TEST(exec_node_put_keeps_seq_and_nodes_end),
    TEST(exec_node_put_keeps_seq_and_nodes_end_pg),
    TEST(exec_nodes_many_in_seq_order),
    TEST(exec_nodes_many_in_seq_order_pg),
    TEST(exec_flush_batches),
    TEST(exec_flush_batches_pg),
    TEST(exec_sent_statements),
    TEST(exec_sent_statements_pg),
    TEST(exec_analytics_add_counts),
    TEST(exec_analytics_add_counts_pg),
    TEST(exec_analytics_tally_counts),
    TEST(exec_analytics_tally_counts_pg),
    TEST(exec_list_filters_and_readers),
    TEST(exec_list_filters_and_readers_pg),
    TEST(exec_list_sorts_and_pages),
    TEST(exec_list_sorts_and_pages_pg),
    TEST(exec_stats_percentiles),
    TEST(exec_stats_percentiles_pg),
    TEST(exec_stats_per_node),
    TEST(exec_stats_per_node_pg),
    TEST(exec_summary_models_days_top),
    TEST(exec_summary_models_days_top_pg),
    TEST(exec_summary_caps_days_and_top),
    TEST(exec_summary_caps_days_and_top_pg),
    TEST(exec_prune_by_age_and_keep),
    TEST(exec_prune_by_age_and_keep_pg),
    TEST(exec_prune_ties_exact),
    TEST(exec_prune_ties_exact_pg),
    TEST(exec_reclaim_frees_pages),
    TEST(exec_plans_use_indexes),
    TEST(exec_pg_claim_race_instances),
    TEST(exec_pg_claim_split_backlog),
    TEST(exec_pg_claim_skips_locked_rows),
    TEST(exec_pg_leases_skip_locked_rows),
    TEST(exec_pg_owned_holds_the_lease),
    TEST(exec_pg_plans_use_indexes),
    TEST(exec_pg_quota_race_instances),
    {NULL, NULL},
};
