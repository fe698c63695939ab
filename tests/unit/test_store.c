/*
 * test_store.c - the store port on a real SQLite file.
 *
 * Each test runs in a fresh directory made with mkdtemp under /tmp, which
 * run_test() removes afterwards even when a CHECK failed (a CHECK returns
 * from the test body only). The database is inspected with sqlite3 directly
 * where the port has no way to show it.
 */
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/str.h"
#include "store/db.h"
#include "store/store.h"
#include "unit.h"
#include "unit_pg.h"

#define SLOW_MS 1000000 /* never log slow operations in tests */

typedef struct {
    char dir[64];
    char path[256]; /* the database file; on PostgreSQL the database's URL */
    char url[300];  /* sqlite://path, or the PostgreSQL URL */
    bool pg;        /* the store is on PostgreSQL */
    store *s;       /* opened and migrated unless the test asked otherwise */
    arena a;
} fixture;

typedef void (*test_body)(fixture *f);

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(p);
}

/* Makes the directory, opens (and migrates) the store when asked, runs the
 * body, then closes and removes everything whatever the body did. */
static void run_test(test_body body, bool open_store, bool migrate)
{
    fixture f;
    memset(&f, 0, sizeof(f));
    str_copy(f.dir, sizeof(f.dir), "/tmp/aop-store-XXXXXX");
    if (!mkdtemp(f.dir)) {
        unit_fail(__FILE__, __LINE__, "mkdtemp");
        return;
    }
    snprintf(f.path, sizeof(f.path), "%s/aop.db", f.dir);
    snprintf(f.url, sizeof(f.url), "sqlite://%s", f.path);
    bool ready = true;
    if (open_store) {
        char err[256] = "";
        f.s = store_open(f.url, SLOW_MS, err, sizeof(err));
        if (!f.s) {
            unit_fail(__FILE__, __LINE__, err);
            ready = false;
        }
    }
    if (ready && migrate) {
        int applied = -1;
        if (store_migrate(f.s, &applied) != AOP_OK) {
            unit_fail(__FILE__, __LINE__, "store_migrate");
            ready = false;
        }
    }
    if (ready)
        body(&f);
    arena_free(&f.a);
    store_close(f.s);
    nftw(f.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* run_test on a fresh PostgreSQL database (unit_pg.h), dropped afterwards;
 * skipped with a note when AOP_TEST_PG_URL is unset. */
static void run_test_pg(test_body body, bool open_store, bool migrate)
{
    fixture f;
    memset(&f, 0, sizeof(f));
    if (!unit_pg_admin_url()) {
        unit_pg_skip_note();
        return;
    }
    if (!unit_pg_fresh(f.url, sizeof(f.url))) {
        unit_fail(__FILE__, __LINE__, "cannot create a PostgreSQL test database");
        return;
    }
    str_copy(f.path, sizeof(f.path), f.url);
    f.pg = true;
    bool ready = true;
    if (open_store) {
        char err[256] = "";
        f.s = store_open(f.url, SLOW_MS, err, sizeof(err));
        if (!f.s) {
            unit_fail(__FILE__, __LINE__, err);
            ready = false;
        }
    }
    if (ready && migrate) {
        int applied = -1;
        if (store_migrate(f.s, &applied) != AOP_OK) {
            unit_fail(__FILE__, __LINE__, "store_migrate");
            ready = false;
        }
    }
    if (ready)
        body(&f);
    arena_free(&f.a);
    store_close(f.s);
    unit_pg_drop(f.url);
}

/* The test fn on SQLite, and fn_pg, the same body on PostgreSQL. */
#define BOTH(fn, body, open_store, migrate)                                   \
    static void fn(void) { run_test(body, open_store, migrate); }             \
    static void fn##_pg(void) { run_test_pg(body, open_store, migrate); }

/* First column of the first row of sql, read with a connection of its own,
 * as text into out ("" when no row). 0, or -1 when the query fails. path is
 * a fixture's path: a file, or a PostgreSQL URL. */
static int sql_text(const char *path, const char *sql, char *out, size_t outlen)
{
    if (strncmp(path, "postgres", 8) == 0)
        return unit_pg_text(path, sql, out, outlen);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    out[0] = '\0';
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        str_copy(out, outlen, t ? (const char *)t : "");
    } else if (rc != SQLITE_DONE) {
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close_v2(db);
    return ret;
}

/* Like sql_text for a number; -1 on failure or when there is no row. */
static long long sql_int(const char *path, const char *sql)
{
    char v[64];
    long long n = -1;
    if (sql_text(path, sql, v, sizeof(v)) != 0 || str_to_ll(v, -1000000, 1000000, &n) != 0)
        return -1;
    return n;
}

/* Test user number n; email and name live in the caller's buffers. */
static void user_make(store_user *u, int n, char *email, size_t emaillen, char *name,
                      size_t namelen)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->id, sizeof(u->id), "0190a0b1-0000-7000-8000-%012d", n);
    snprintf(email, emaillen, "user%d@example.com", n);
    snprintf(name, namelen, "User %d", n);
    u->email = email;
    u->name = name;
    u->password_hash = "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
    u->role = "user";
    u->preferences = "{}";
    u->is_active = true;
    str_copy(u->created_at, sizeof(u->created_at), "2026-01-02T03:04:05.006Z");
    str_copy(u->updated_at, sizeof(u->updated_at), "2026-01-02T03:04:05.006Z");
}

/* ---- migrations ---- */

/* Whether migration m has SQL in dialect. */
static bool migration_has_sql(const store_migration *m, int dialect)
{
    char *sql = store_migration_sql(m, dialect);
    bool has = sql && sql[0];
    free(sql);
    return has;
}

static void migrations_numbered(void)
{
    CHECK(store_migrations_len > 0);
    CHECK_INT(store_migrations[0].version, 1);
    for (size_t i = 0; i < store_migrations_len; i++) {
        const store_migration *m = &store_migrations[i];
        /* strictly increasing; a number another branch took may be missing
         * until that branch is merged */
        CHECK(i == 0 || m->version > store_migrations[i - 1].version);
        CHECK(m->name && m->name[0]);
        CHECK(migration_has_sql(m, DB_SQLITE));
    }
    CHECK_STR(store_migrations[0].name, "001_users");
}

static void body_migrate_twice(fixture *f)
{
    int applied = -1;
    CHECK_INT(store_migrate(f->s, &applied), AOP_OK);
    CHECK_INT(applied, (long long)store_migrations_len);
    CHECK_INT(store_migrate(f->s, &applied), AOP_OK);
    CHECK_INT(applied, 0);
    CHECK_INT(store_ping(f->s), AOP_OK);
}

BOTH(migrate_applies_once, body_migrate_twice, true, false)

static void body_schema_row(fixture *f)
{
    char v[64];
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM schema_migrations"),
              (long long)store_migrations_len);
    CHECK_INT(sql_int(f->path, "SELECT MIN(version) FROM schema_migrations"), 1);
    CHECK_INT(sql_text(f->path, "SELECT name FROM schema_migrations WHERE version = 1", v,
                       sizeof(v)), 0);
    CHECK_STR(v, "001_users");
    CHECK_INT(sql_text(f->path, "SELECT applied_at FROM schema_migrations WHERE version = 1", v, sizeof(v)), 0);
    CHECK_INT(strlen(v), 24);
    CHECK(v[4] == '-' && v[10] == 'T' && v[19] == '.' && v[23] == 'Z');
    if (f->pg) {
        CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'users'"), 1);
        CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM pg_indexes WHERE indexname IN "
                                   "('users_role_idx', 'users_created_at_idx')"), 2);
        return;
    }
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'users'"), 1);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                               "name IN ('users_role_idx', 'users_created_at_idx')"), 2);
}

BOTH(migrate_records_row, body_schema_row, true, true)

static void body_new_file_pragmas(fixture *f)
{
    char v[32];
    CHECK_INT(sql_int(f->path, "PRAGMA auto_vacuum"), 2);
    CHECK_INT(sql_text(f->path, "PRAGMA journal_mode", v, sizeof(v)), 0);
    CHECK_STR(v, "wal");
}

static void new_file_incremental_wal(void)
{
    run_test(body_new_file_pragmas, true, true);
}

static void body_newer_schema(fixture *f)
{
    int applied = -1;
    CHECK_INT(sql_text(f->path,
                       "INSERT INTO schema_migrations (version, name, applied_at) "
                       "VALUES (9999, '9999_future', '2030-01-01T00:00:00.000Z')",
                       (char[8]){0}, 8), 0);
    CHECK_INT(store_migrate(f->s, &applied), AOP_ERR_INTERNAL);
    CHECK_INT(applied, 0);
}

BOTH(migrate_refuses_newer_schema, body_newer_schema, true, true)

/* ---- users ---- */

static void body_user_roundtrip(fixture *f)
{
    store_user in, out;
    char email[64], name[64];
    user_make(&in, 1, email, sizeof(email), name, sizeof(name));
    in.role = "viewer";
    in.preferences = "{\"theme\":\"dark\",\"lang\":\"fr\"}";
    in.is_active = false;
    str_copy(in.updated_at, sizeof(in.updated_at), "2026-01-03T00:00:00.123Z");
    CHECK_INT(store_user_insert(f->s, &in), AOP_OK);
    CHECK_INT(store_user_get_by_email(f->s, email, &out, &f->a), AOP_OK);
    CHECK_STR(out.id, in.id);
    CHECK_STR(out.email, in.email);
    CHECK_STR(out.name, in.name);
    CHECK_STR(out.password_hash, in.password_hash);
    CHECK_STR(out.role, "viewer");
    CHECK_STR(out.preferences, in.preferences);
    CHECK(!out.is_active);
    CHECK_STR(out.created_at, in.created_at);
    CHECK_STR(out.updated_at, "2026-01-03T00:00:00.123Z");
    CHECK_STR(out.last_login_at, "");
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM users WHERE last_login_at IS NULL"), 1);

    store_user in2;
    char email2[64], name2[64];
    user_make(&in2, 2, email2, sizeof(email2), name2, sizeof(name2));
    in2.role = "admin";
    str_copy(in2.last_login_at, sizeof(in2.last_login_at), "2026-02-01T10:11:12.013Z");
    CHECK_INT(store_user_insert(f->s, &in2), AOP_OK);
    CHECK_INT(store_user_get_by_email(f->s, email2, &out, &f->a), AOP_OK);
    CHECK_STR(out.id, in2.id);
    CHECK_STR(out.role, "admin");
    CHECK(out.is_active);
    CHECK_STR(out.last_login_at, "2026-02-01T10:11:12.013Z");
}

BOTH(user_insert_get_roundtrip, body_user_roundtrip, true, true)

static void body_user_conflict(fixture *f)
{
    store_user u;
    char email[64], name[64];
    user_make(&u, 1, email, sizeof(email), name, sizeof(name));
    CHECK_INT(store_user_insert(f->s, &u), AOP_OK);
    snprintf(u.id, sizeof(u.id), "0190a0b1-0000-7000-8000-%012d", 2); /* same email */
    CHECK_INT(store_user_insert(f->s, &u), AOP_ERR_CONFLICT);
    snprintf(u.id, sizeof(u.id), "0190a0b1-0000-7000-8000-%012d", 1); /* same id */
    u.email = "other@example.com";
    CHECK_INT(store_user_insert(f->s, &u), AOP_ERR_CONFLICT);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM users"), 1);
}

BOTH(user_duplicate_conflicts, body_user_conflict, true, true)

static void body_user_unknown(fixture *f)
{
    store_user u, out;
    char email[64], name[64];
    CHECK_INT(store_user_get_by_email(f->s, "nobody@example.com", &out, &f->a),
              AOP_ERR_NOT_FOUND);
    user_make(&u, 1, email, sizeof(email), name, sizeof(name));
    CHECK_INT(store_user_insert(f->s, &u), AOP_OK);
    /* The store compares as given; callers lowercase. */
    CHECK_INT(store_user_get_by_email(f->s, "USER1@example.com", &out, &f->a),
              AOP_ERR_NOT_FOUND);
    CHECK_INT(store_user_get_by_email(f->s, "user1@example.com", &out, &f->a), AOP_OK);
}

BOTH(user_unknown_not_found, body_user_unknown, true, true)

/* ---- transactions ---- */

typedef struct {
    store_user u;
    char email[64], name[64];
    aop_err result; /* what the function returns after inserting */
} tx_ctx;

static aop_err tx_insert(store *s, void *p)
{
    tx_ctx *t = p;
    aop_err rc = store_user_insert(s, &t->u);
    return rc != AOP_OK ? rc : t->result;
}

static void body_tx(fixture *f)
{
    tx_ctx ok, bad;
    store_user out;
    user_make(&ok.u, 1, ok.email, sizeof(ok.email), ok.name, sizeof(ok.name));
    ok.result = AOP_OK;
    CHECK_INT(store_tx(f->s, tx_insert, &ok), AOP_OK);
    CHECK_INT(store_user_get_by_email(f->s, ok.email, &out, &f->a), AOP_OK);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM users"), 1); /* visible to others */

    user_make(&bad.u, 2, bad.email, sizeof(bad.email), bad.name, sizeof(bad.name));
    bad.result = AOP_ERR_VALIDATION;
    CHECK_INT(store_tx(f->s, tx_insert, &bad), AOP_ERR_VALIDATION);
    CHECK_INT(store_user_get_by_email(f->s, bad.email, &out, &f->a), AOP_ERR_NOT_FOUND);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM users"), 1);

    /* A conflict inside the transaction rolls back what came before it. */
    user_make(&bad.u, 3, bad.email, sizeof(bad.email), bad.name, sizeof(bad.name));
    bad.u.email = ok.email;
    bad.result = AOP_OK;
    CHECK_INT(store_tx(f->s, tx_insert, &bad), AOP_ERR_CONFLICT);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM users"), 1);
    /* And the connection takes a new transaction afterwards. */
    user_make(&bad.u, 4, bad.email, sizeof(bad.email), bad.name, sizeof(bad.name));
    CHECK_INT(store_tx(f->s, tx_insert, &bad), AOP_OK);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM users"), 2);
}

BOTH(tx_commits_and_rolls_back, body_tx, true, true)

/* ---- threads ---- */

#define THREAD_USERS 50

typedef struct {
    store *s;
    int first;      /* number of the first user to insert */
    int ok;         /* inserts that succeeded */
    aop_err failed; /* first failure */
    pthread_barrier_t *start;
} thread_ctx;

/*
 * How many descriptors of this process are open on file. Each connection has
 * its own descriptor on the -wal file and closes it when it closes; its
 * descriptor on the database file itself may outlive it, since SQLite defers
 * that close() while another connection of the process holds a lock.
 */
static int fds_open_on(const char *file)
{
    char target[512];
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));) {
        ssize_t len = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);
        if (len < 0)
            continue;
        target[len] = '\0';
        n += strcmp(target, file) == 0;
    }
    closedir(d);
    return n;
}

static void *insert_many(void *p)
{
    thread_ctx *t = p;
    pthread_barrier_wait(t->start); /* both threads write at the same time */
    for (int i = 0; i < THREAD_USERS; i++) {
        store_user u;
        char email[64], name[64];
        user_make(&u, t->first + i, email, sizeof(email), name, sizeof(name));
        aop_err rc = store_user_insert(t->s, &u);
        if (rc == AOP_OK)
            t->ok++;
        else if (t->failed == AOP_OK)
            t->failed = rc;
    }
    return NULL;
}

static void body_threads(fixture *f)
{
    char wal[300];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    if (!f->pg)
        CHECK_INT(fds_open_on(wal), 1); /* the main thread's connection */
    pthread_barrier_t start;
    thread_ctx t[2] = {{.s = f->s, .first = 1000, .start = &start},
                       {.s = f->s, .first = 2000, .start = &start}};
    pthread_t th[2];
    int started = 0;
    CHECK_INT(pthread_barrier_init(&start, NULL, 2), 0);
    for (; started < 2; started++)
        if (pthread_create(&th[started], NULL, insert_many, &t[started]) != 0)
            break;
    if (started == 1)
        pthread_barrier_wait(&start); /* release the lone thread */
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    CHECK_INT(started, 2);
    CHECK_INT(t[0].failed, AOP_OK);
    CHECK_INT(t[1].failed, AOP_OK);
    CHECK_INT(t[0].ok + t[1].ok, 2 * THREAD_USERS);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM users"), 2 * THREAD_USERS);
    if (!f->pg)
        CHECK_INT(fds_open_on(wal), 1); /* the threads' connections closed as they exited */
    store_user out;
    CHECK_INT(store_user_get_by_email(f->s, "user2049@example.com", &out, &f->a), AOP_OK);
}

BOTH(threads_insert_concurrently, body_threads, true, true)

/* ---- opening ---- */

static void body_unopenable(fixture *f)
{
    char file[160], url[200], err[256] = "";
    snprintf(file, sizeof(file), "%s/plain", f->dir);
    FILE *fp = fopen(file, "w");
    CHECK(fp != NULL);
    fclose(fp);
    snprintf(url, sizeof(url), "sqlite://%s/aop.db", file);
    store *s = store_open(url, SLOW_MS, err, sizeof(err));
    store_close(s);
    CHECK(s == NULL);
    CHECK(strstr(err, "DATABASE_URL") != NULL);
    CHECK(strstr(err, file) != NULL);
}

static void open_unopenable_path_fails(void)
{
    run_test(body_unopenable, false, false);
}

static void body_parent_dir(fixture *f)
{
    char path[200], url[220], err[256] = "";
    struct stat sb;
    snprintf(path, sizeof(path), "%s/data/aop.db", f->dir);
    snprintf(url, sizeof(url), "sqlite://%s", path);
    f->s = store_open(url, SLOW_MS, err, sizeof(err));
    CHECK(f->s != NULL);
    CHECK_INT(stat(path, &sb), 0);
    *strrchr(path, '/') = '\0';
    CHECK_INT(stat(path, &sb), 0);
    CHECK(S_ISDIR(sb.st_mode));
    CHECK_INT(sb.st_mode & 0777, 0700);
}

static void open_creates_parent_dir(void)
{
    run_test(body_parent_dir, false, false);
}

static void body_reopen(fixture *f)
{
    char err[256] = "";
    int applied = -1;
    store_user u, out;
    char email[64], name[64];
    user_make(&u, 7, email, sizeof(email), name, sizeof(name));
    CHECK_INT(store_user_insert(f->s, &u), AOP_OK);
    store_close(f->s);
    f->s = store_open(f->url, SLOW_MS, err, sizeof(err));
    CHECK(f->s != NULL);
    CHECK_INT(store_migrate(f->s, &applied), AOP_OK);
    CHECK_INT(applied, 0);
    CHECK_INT(store_user_get_by_email(f->s, email, &out, &f->a), AOP_OK);
    CHECK_STR(out.id, u.id);
    if (!f->pg)
        CHECK_INT(sql_int(f->path, "PRAGMA auto_vacuum"), 2);
}

BOTH(reopen_keeps_data, body_reopen, true, true)

/* ---- helpers for the token, key, list and audit tests ---- */

#define T_PAST "2026-01-01T00:00:00.000Z"
#define T_NOW "2026-06-01T00:00:00.000Z"
#define T_LATER "2026-07-01T00:00:00.000Z"
#define T_FAR "2027-01-01T00:00:00.000Z"

/* Inserts test user n; 0, or -1 when the store refused. */
static int add_user(fixture *f, int n)
{
    store_user u;
    char email[64], name[64];
    user_make(&u, n, email, sizeof(email), name, sizeof(name));
    return store_user_insert(f->s, &u) == AOP_OK ? 0 : -1;
}

/* The id user_make gives user n. */
static void user_id(char out[UUID_STR_LEN], int n)
{
    snprintf(out, UUID_STR_LEN, "0190a0b1-0000-7000-8000-%012d", n);
}

/* A family or token id numbered n under a kind digit, distinct from user ids. */
static void tok_id(char out[UUID_STR_LEN], int kind, int n)
{
    snprintf(out, UUID_STR_LEN, "0190a0b1-000%d-7000-8000-%012d", kind, n);
}

/* ---- token families ---- */

static void body_family_extend(fixture *f)
{
    char uid[UUID_STR_LEN], fam[UUID_STR_LEN], v[64], q[200];
    user_id(uid, 1);
    tok_id(fam, 1, 1);
    CHECK_INT(add_user(f, 1), 0);
    CHECK_INT(store_family_insert(f->s, fam, uid, T_PAST, T_NOW), AOP_OK);
    CHECK_INT(store_family_insert(f->s, fam, uid, T_PAST, T_NOW), AOP_ERR_CONFLICT);
    snprintf(q, sizeof(q), "SELECT expires_at FROM token_families WHERE id = '%s'", fam);
    CHECK_INT(store_family_extend(f->s, fam, T_LATER), AOP_OK);
    CHECK_INT(sql_text(f->path, q, v, sizeof(v)), 0);
    CHECK_STR(v, T_LATER);
    CHECK_INT(store_family_extend(f->s, fam, T_PAST), AOP_OK); /* never back */
    CHECK_INT(sql_text(f->path, q, v, sizeof(v)), 0);
    CHECK_STR(v, T_LATER);
}

BOTH(family_extend_never_moves_back, body_family_extend, true, true)

static void body_family_revoke(fixture *f)
{
    char uid[UUID_STR_LEN], fam[UUID_STR_LEN], v[64], q[200];
    user_id(uid, 1);
    tok_id(fam, 1, 1);
    CHECK_INT(add_user(f, 1), 0);
    CHECK_INT(store_family_insert(f->s, fam, uid, T_PAST, T_FAR), AOP_OK);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM token_families WHERE revoked_at IS NULL"), 1);
    CHECK_INT(store_family_revoke(f->s, fam, T_NOW, "logout"), AOP_OK);
    CHECK_INT(store_family_revoke(f->s, fam, T_LATER, "reuse"), AOP_OK); /* first one stays */
    snprintf(q, sizeof(q),
             "SELECT revoked_at || ' ' || revoked_reason FROM token_families WHERE id = '%s'", fam);
    CHECK_INT(sql_text(f->path, q, v, sizeof(v)), 0);
    CHECK_STR(v, T_NOW " logout");
}

BOTH(family_revoke_keeps_first_revocation, body_family_revoke, true, true)

/* ---- refresh tokens ---- */

/* User 1 with family (1,1) and refresh token (2,1) in it. */
static int add_login(fixture *f)
{
    char uid[UUID_STR_LEN], fam[UUID_STR_LEN], jti[UUID_STR_LEN];
    user_id(uid, 1);
    tok_id(fam, 1, 1);
    tok_id(jti, 2, 1);
    if (add_user(f, 1) != 0 || store_family_insert(f->s, fam, uid, T_PAST, T_FAR) != AOP_OK ||
        store_refresh_insert(f->s, jti, fam, uid, T_PAST, T_FAR) != AOP_OK)
        return -1;
    return 0;
}

static void body_refresh_get(fixture *f)
{
    char uid[UUID_STR_LEN], fam[UUID_STR_LEN], jti[UUID_STR_LEN], other[UUID_STR_LEN];
    store_refresh r;
    user_id(uid, 1);
    tok_id(fam, 1, 1);
    tok_id(jti, 2, 1);
    tok_id(other, 2, 2);
    CHECK_INT(add_login(f), 0);
    CHECK_INT(store_refresh_get(f->s, jti, &r), AOP_OK);
    CHECK_STR(r.jti, jti);
    CHECK_STR(r.family_id, fam);
    CHECK_STR(r.user_id, uid);
    CHECK_STR(r.expires_at, T_FAR);
    CHECK_STR(r.used_at, "");
    CHECK(!r.family_revoked);
    CHECK_INT(store_refresh_get(f->s, other, &r), AOP_ERR_NOT_FOUND);
    CHECK_INT(store_family_revoke(f->s, fam, T_NOW, "logout"), AOP_OK);
    CHECK_INT(store_refresh_get(f->s, jti, &r), AOP_OK);
    CHECK(r.family_revoked);
}

BOTH(refresh_get_reports_family_revoked, body_refresh_get, true, true)

static void body_refresh_use(fixture *f)
{
    char jti[UUID_STR_LEN], other[UUID_STR_LEN];
    store_refresh r;
    bool won = false;
    tok_id(jti, 2, 1);
    tok_id(other, 2, 2);
    CHECK_INT(add_login(f), 0);
    CHECK_INT(store_refresh_use(f->s, jti, T_NOW, &won), AOP_OK);
    CHECK(won);
    CHECK_INT(store_refresh_get(f->s, jti, &r), AOP_OK);
    CHECK_STR(r.used_at, T_NOW);
    won = true;
    CHECK_INT(store_refresh_use(f->s, jti, T_LATER, &won), AOP_OK);
    CHECK(!won);
    CHECK_INT(store_refresh_get(f->s, jti, &r), AOP_OK);
    CHECK_STR(r.used_at, T_NOW); /* the first use stays */
    won = true;
    CHECK_INT(store_refresh_use(f->s, other, T_NOW, &won), AOP_OK);
    CHECK(!won);
}

BOTH(refresh_use_wins_once, body_refresh_use, true, true)

#define RACERS 4
#define RACE_ROUNDS 40

typedef struct {
    store *s;
    atomic_int *go;             /* 1: all racers exist, run; -1: give up */
    pthread_barrier_t *line;    /* the start line of every round */
    int wins[RACE_ROUNDS];
    aop_err failed;
} racer;

/* Every round, all racers leave the line together and mark the round's token
 * used; their connections stay open, so nothing but the race is timed. */
static void *race_use(void *p)
{
    racer *r = p;
    int go;
    while ((go = atomic_load(r->go)) == 0)
        ;
    if (go < 0)
        return NULL;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        char jti[UUID_STR_LEN];
        bool won = false;
        tok_id(jti, 2, round + 1);
        pthread_barrier_wait(r->line);
        aop_err rc = store_refresh_use(r->s, jti, T_NOW, &won);
        if (rc != AOP_OK && r->failed == AOP_OK)
            r->failed = rc;
        r->wins[round] = won;
    }
    return NULL;
}

static void body_refresh_race(fixture *f)
{
    char uid[UUID_STR_LEN], fam[UUID_STR_LEN], jti[UUID_STR_LEN];
    user_id(uid, 1);
    tok_id(fam, 1, 1);
    CHECK_INT(add_user(f, 1), 0);
    CHECK_INT(store_family_insert(f->s, fam, uid, T_PAST, T_FAR), AOP_OK);
    for (int i = 1; i <= RACE_ROUNDS; i++) {
        tok_id(jti, 2, i);
        CHECK_INT(store_refresh_insert(f->s, jti, fam, uid, T_PAST, T_FAR), AOP_OK);
    }
    atomic_int go = 0;
    pthread_barrier_t line;
    racer r[RACERS];
    pthread_t th[RACERS];
    int started = 0;
    CHECK_INT(pthread_barrier_init(&line, NULL, RACERS), 0);
    for (; started < RACERS; started++) {
        r[started] = (racer){.s = f->s, .go = &go, .line = &line};
        if (pthread_create(&th[started], NULL, race_use, &r[started]) != 0)
            break;
    }
    atomic_store(&go, started == RACERS ? 1 : -1);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&line);
    CHECK_INT(started, RACERS);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        int wins = 0;
        for (int i = 0; i < RACERS; i++)
            wins += r[i].wins[round];
        CHECK_INT(wins, 1); /* exactly one winner per token */
    }
    for (int i = 0; i < RACERS; i++)
        CHECK_INT(r[i].failed, AOP_OK);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NULL"), 0);
}

BOTH(refresh_use_one_winner_among_threads, body_refresh_race, true, true)

/* ---- revocation ---- */

static void body_token_revoked(fixture *f)
{
    char uid[UUID_STR_LEN], fam[UUID_STR_LEN], a1[UUID_STR_LEN], a2[UUID_STR_LEN];
    bool rev = true;
    user_id(uid, 1);
    tok_id(fam, 1, 1);
    tok_id(a1, 3, 1);
    tok_id(a2, 3, 2);
    CHECK_INT(add_login(f), 0);
    CHECK_INT(store_token_revoked(f->s, a1, fam, &rev), AOP_OK);
    CHECK(!rev); /* neither */
    CHECK_INT(store_access_revoke(f->s, a1, uid, T_FAR), AOP_OK);
    CHECK_INT(store_access_revoke(f->s, a1, uid, T_FAR), AOP_OK); /* again: no conflict */
    rev = false;
    CHECK_INT(store_token_revoked(f->s, a1, fam, &rev), AOP_OK);
    CHECK(rev); /* by jti */
    rev = true;
    CHECK_INT(store_token_revoked(f->s, a2, fam, &rev), AOP_OK);
    CHECK(!rev);
    CHECK_INT(store_family_revoke(f->s, fam, T_NOW, "logout"), AOP_OK);
    rev = false;
    CHECK_INT(store_token_revoked(f->s, a2, fam, &rev), AOP_OK);
    CHECK(rev); /* by family */
}

BOTH(token_revoked_by_jti_or_family, body_token_revoked, true, true)

static int cmp_store_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* User 1 gets families 1..20 (number 3 already revoked), user 2 family 21. */
static void body_revoke_user(fixture *f)
{
    char u1[UUID_STR_LEN], u2[UUID_STR_LEN], fam[UUID_STR_LEN], v[64], q[200];
    store_id *ids = NULL;
    int n = -1;
    user_id(u1, 1);
    user_id(u2, 2);
    CHECK_INT(add_user(f, 1), 0);
    CHECK_INT(add_user(f, 2), 0);
    for (int i = 1; i <= 21; i++) {
        tok_id(fam, 1, i);
        CHECK_INT(store_family_insert(f->s, fam, i <= 20 ? u1 : u2, T_PAST, T_FAR), AOP_OK);
    }
    tok_id(fam, 1, 3);
    CHECK_INT(store_family_revoke(f->s, fam, T_PAST, "logout"), AOP_OK);
    CHECK_INT(store_families_revoke_user(f->s, u1, T_NOW, "password", &ids, &n, &f->a), AOP_OK);
    CHECK_INT(n, 19);
    qsort(ids, (size_t)n, sizeof(store_id), cmp_store_id);
    for (int i = 1, k = 0; i <= 20; i++) {
        if (i == 3)
            continue;
        tok_id(fam, 1, i);
        CHECK_STR(ids[k++], fam);
    }
    /* The earlier revocation is kept; the other user's family is untouched. */
    tok_id(fam, 1, 3);
    snprintf(q, sizeof(q), "SELECT revoked_at FROM token_families WHERE id = '%s'", fam);
    CHECK_INT(sql_text(f->path, q, v, sizeof(v)), 0);
    CHECK_STR(v, T_PAST);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM token_families WHERE revoked_at IS NULL"), 1);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM token_families "
                               "WHERE revoked_reason = 'password'"), 19);
    CHECK_INT(store_families_revoke_user(f->s, u1, T_LATER, "again", &ids, &n, &f->a), AOP_OK);
    CHECK_INT(n, 0);
}

BOTH(families_revoke_user_returns_live_ones, body_revoke_user, true, true)

/*
 * Expired before T_NOW: access token a1, refresh token r1 (in the expired
 * family f1), refresh token r2 (in the live family f2), family f1. Kept:
 * access a2 (at T_NOW exactly) and a3, refresh r3, family f2.
 */
static void body_prune(fixture *f)
{
    char uid[UUID_STR_LEN], f1[UUID_STR_LEN], f2[UUID_STR_LEN], id[UUID_STR_LEN];
    long long n = -1;
    user_id(uid, 1);
    tok_id(f1, 1, 1);
    tok_id(f2, 1, 2);
    CHECK_INT(add_user(f, 1), 0);
    CHECK_INT(store_family_insert(f->s, f1, uid, T_PAST, T_PAST), AOP_OK);
    CHECK_INT(store_family_insert(f->s, f2, uid, T_PAST, T_FAR), AOP_OK);
    tok_id(id, 2, 1);
    CHECK_INT(store_refresh_insert(f->s, id, f1, uid, T_PAST, T_PAST), AOP_OK);
    tok_id(id, 2, 2);
    CHECK_INT(store_refresh_insert(f->s, id, f2, uid, T_PAST, T_PAST), AOP_OK);
    tok_id(id, 2, 3);
    CHECK_INT(store_refresh_insert(f->s, id, f2, uid, T_PAST, T_FAR), AOP_OK);
    tok_id(id, 3, 1);
    CHECK_INT(store_access_revoke(f->s, id, uid, T_PAST), AOP_OK);
    tok_id(id, 3, 2);
    CHECK_INT(store_access_revoke(f->s, id, uid, T_NOW), AOP_OK);
    tok_id(id, 3, 3);
    CHECK_INT(store_access_revoke(f->s, id, uid, T_FAR), AOP_OK);
    CHECK_INT(store_tokens_prune(f->s, T_NOW, &n), AOP_OK);
    CHECK_INT(n, 4);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM revoked_access_tokens"), 2);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM refresh_tokens"), 1);
    CHECK_INT(sql_int(f->path,
                      "SELECT COUNT(*) FROM refresh_tokens WHERE jti LIKE '%000000000003'"), 1);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM token_families"), 1);
    CHECK_INT(sql_int(f->path,
                      "SELECT COUNT(*) FROM token_families WHERE expires_at = '" T_FAR "'"), 1);
    CHECK_INT(store_tokens_prune(f->s, T_NOW, &n), AOP_OK);
    CHECK_INT(n, 0);
}

BOTH(tokens_prune_deletes_only_expired, body_prune, true, true)

/* ---- API keys ---- */

/* Key n of user u created at minute n past midnight; the hash is "hash-<n>". */
static aop_err add_key(fixture *f, const char *uid, int n)
{
    store_apikey k;
    char name[32], hash[32];
    memset(&k, 0, sizeof(k));
    tok_id(k.id, 4, n);
    str_copy(k.user_id, sizeof(k.user_id), uid);
    snprintf(name, sizeof(name), "key %d", n);
    snprintf(hash, sizeof(hash), "hash-%d", n);
    k.name = name;
    snprintf(k.prefix, sizeof(k.prefix), "aop_%04d", n);
    k.scopes = n % 2 ? "[\"read\"]" : "[\"read\",\"write\"]";
    snprintf(k.created_at, sizeof(k.created_at), "2026-01-01T00:%02d:00.000Z", n);
    if (n == 2)
        str_copy(k.expires_at, sizeof(k.expires_at), T_FAR);
    return store_apikey_insert(f->s, &k, hash);
}

static void body_apikey_fields(fixture *f)
{
    char uid[UUID_STR_LEN], id[UUID_STR_LEN];
    store_apikey k;
    user_id(uid, 1);
    tok_id(id, 4, 2);
    CHECK_INT(add_user(f, 1), 0);
    CHECK_INT(add_key(f, uid, 1), AOP_OK);
    CHECK_INT(add_key(f, uid, 2), AOP_OK);
    CHECK_INT(store_apikey_get_by_hash(f->s, "hash-2", &k, &f->a), AOP_OK);
    CHECK_STR(k.id, id);
    CHECK_STR(k.user_id, uid);
    CHECK_STR(k.name, "key 2");
    CHECK_STR(k.prefix, "aop_0002");
    CHECK_STR(k.scopes, "[\"read\",\"write\"]");
    CHECK_STR(k.created_at, "2026-01-01T00:02:00.000Z");
    CHECK_STR(k.expires_at, T_FAR);
    CHECK_STR(k.last_used_at, "");
    CHECK_INT(store_apikey_get_by_hash(f->s, "hash-1", &k, &f->a), AOP_OK);
    CHECK_STR(k.expires_at, ""); /* never expires */
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM api_keys WHERE expires_at IS NULL"), 1);
    CHECK_INT(store_apikey_get_by_hash(f->s, "hash-9", &k, &f->a), AOP_ERR_NOT_FOUND);
    CHECK_INT(add_key(f, uid, 2), AOP_ERR_CONFLICT);
}

BOTH(apikey_insert_get_by_hash, body_apikey_fields, true, true)

static void body_apikey_list(fixture *f)
{
    char u1[UUID_STR_LEN], u2[UUID_STR_LEN], id[UUID_STR_LEN];
    store_apikey *keys = NULL;
    int n = -1;
    long long total = -1;
    user_id(u1, 1);
    user_id(u2, 2);
    CHECK_INT(add_user(f, 1), 0);
    CHECK_INT(add_user(f, 2), 0);
    /* Inserted out of time order: 3, 1, 2 (user 1) and 4 (user 2). */
    CHECK_INT(add_key(f, u1, 3), AOP_OK);
    CHECK_INT(add_key(f, u1, 1), AOP_OK);
    CHECK_INT(add_key(f, u1, 2), AOP_OK);
    CHECK_INT(add_key(f, u2, 4), AOP_OK);
    CHECK_INT(store_apikey_count(f->s, u1, &total), AOP_OK);
    CHECK_INT(total, 3);
    CHECK_INT(store_apikey_list(f->s, u1, 0, 2, &keys, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 3);
    CHECK_INT(n, 2);
    tok_id(id, 4, 3);
    CHECK_STR(keys[0].id, id); /* newest first */
    tok_id(id, 4, 2);
    CHECK_STR(keys[1].id, id);
    CHECK_INT(store_apikey_list(f->s, u1, 2, 2, &keys, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 3);
    CHECK_INT(n, 1);
    tok_id(id, 4, 1);
    CHECK_STR(keys[0].id, id);
    CHECK_STR(keys[0].name, "key 1");
    CHECK_INT(store_apikey_list(f->s, u1, 3, 2, &keys, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 3);
    CHECK_INT(n, 0);
    CHECK_INT(store_apikey_list(f->s, u2, 0, 10, &keys, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 1);
    CHECK_INT(n, 1);
    tok_id(id, 4, 4);
    CHECK_STR(keys[0].id, id);
}

BOTH(apikey_list_newest_first_paged, body_apikey_list, true, true)

static void body_apikey_delete(fixture *f)
{
    char u1[UUID_STR_LEN], u2[UUID_STR_LEN], id[UUID_STR_LEN];
    bool deleted = true;
    long long n = -1;
    user_id(u1, 1);
    user_id(u2, 2);
    tok_id(id, 4, 1);
    CHECK_INT(add_user(f, 1), 0);
    CHECK_INT(add_user(f, 2), 0);
    CHECK_INT(add_key(f, u1, 1), AOP_OK);
    CHECK_INT(store_apikey_delete(f->s, id, u2, &deleted), AOP_OK);
    CHECK(!deleted); /* not user 2's key */
    CHECK_INT(store_apikey_count(f->s, u1, &n), AOP_OK);
    CHECK_INT(n, 1);
    CHECK_INT(store_apikey_delete(f->s, id, u1, &deleted), AOP_OK);
    CHECK(deleted);
    CHECK_INT(store_apikey_count(f->s, u1, &n), AOP_OK);
    CHECK_INT(n, 0);
    deleted = true;
    CHECK_INT(store_apikey_delete(f->s, id, u1, &deleted), AOP_OK);
    CHECK(!deleted);
}

BOTH(apikey_delete_only_own_key, body_apikey_delete, true, true)

static void body_apikey_touch(fixture *f)
{
    char uid[UUID_STR_LEN], id[UUID_STR_LEN];
    store_apikey k;
    user_id(uid, 1);
    tok_id(id, 4, 1);
    CHECK_INT(add_user(f, 1), 0);
    CHECK_INT(add_key(f, uid, 1), AOP_OK);
    CHECK_INT(add_key(f, uid, 2), AOP_OK);
    CHECK_INT(store_apikey_touch(f->s, id, T_NOW), AOP_OK);
    CHECK_INT(store_apikey_get_by_hash(f->s, "hash-1", &k, &f->a), AOP_OK);
    CHECK_STR(k.last_used_at, T_NOW);
    CHECK_INT(store_apikey_get_by_hash(f->s, "hash-2", &k, &f->a), AOP_OK);
    CHECK_STR(k.last_used_at, "");
}

BOTH(apikey_touch_sets_last_used, body_apikey_touch, true, true)

/* ---- user list ---- */

typedef struct {
    const char *email, *name, *role, *created_at;
} list_user;

/* Emails, names and creation times sort in three different orders. */
static const list_user list_users[] = {
    {"alice@example.com", "Zoe Alice", "admin", "2026-01-03T00:00:00.000Z"},
    {"bob@example.com", "Bob 100%", "user", "2026-01-01T00:00:00.000Z"},
    {"carol_x@example.com", "Carol", "user", "2026-01-04T00:00:00.000Z"},
    {"dave@example.com", "Dave \\ Backslash", "viewer", "2026-01-02T00:00:00.000Z"},
    {"eve@example.com", "Adam", "user", "2026-01-05T00:00:00.000Z"},
};
#define LIST_USERS ((int)(sizeof(list_users) / sizeof(list_users[0])))

static int add_list_users(fixture *f)
{
    for (int i = 0; i < LIST_USERS; i++) {
        store_user u;
        char email[64], name[64];
        user_make(&u, i + 1, email, sizeof(email), name, sizeof(name));
        u.email = (char *)list_users[i].email;
        u.name = (char *)list_users[i].name;
        u.role = (char *)list_users[i].role;
        str_copy(u.created_at, sizeof(u.created_at), list_users[i].created_at);
        if (store_user_insert(f->s, &u) != AOP_OK)
            return -1;
    }
    return 0;
}

/* The first letters of the emails of one page, e.g. "abc", or "!" on error;
 * *total gets the total. */
static const char *page(fixture *f, store_user_query q, long long *total)
{
    static char out[16];
    store_user *us = NULL;
    int n = 0;
    if (q.limit == 0)
        q.limit = 100;
    if (store_user_list(f->s, &q, &us, &n, total, &f->a) != AOP_OK || n > 15)
        return "!";
    for (int i = 0; i < n; i++)
        out[i] = us[i].email[0];
    out[n] = '\0';
    return out;
}

static void body_list_search(fixture *f)
{
    long long total = -1;
    CHECK_INT(add_list_users(f), 0);
    CHECK_STR(page(f, (store_user_query){.search = "ALICE"}, &total), "a");
    CHECK_INT(total, 1);
    CHECK_STR(page(f, (store_user_query){.search = "cArOl"}, &total), "c");
    CHECK_STR(page(f, (store_user_query){.search = "ADA"}, &total), "e"); /* by name */
    CHECK_STR(page(f, (store_user_query){.search = "EXAMPLE.com"}, &total), "bdace");
    CHECK_INT(total, LIST_USERS);
    CHECK_STR(page(f, (store_user_query){.search = "nobody"}, &total), "");
    CHECK_INT(total, 0);
    CHECK_STR(page(f, (store_user_query){.search = ""}, &total), "bdace"); /* no filter */
}

BOTH(user_list_search_case_insensitive, body_list_search, true, true)

/* Non-ASCII capitals fold too: SQLite's LIKE alone would fold A-Z only. */
static void body_list_search_unicode(fixture *f)
{
    long long total = -1;
    store_user u;
    char email[64], name[64];
    user_make(&u, 99, email, sizeof(email), name, sizeof(name));
    u.email = (char *)"\xc3\xbclrich@example.com";   /* ülrich@ */
    u.name = (char *)"\xc3\x9cLRICH \xd0\x96uk";     /* ÜLRICH Жuk */
    CHECK_INT(store_user_insert(f->s, &u), AOP_OK);
    CHECK_STR(page(f, (store_user_query){.search = "\xc3\x9cLRICH@"}, &total), "\xc3");
    CHECK_INT(total, 1);
    CHECK_STR(page(f, (store_user_query){.search = "\xc3\xbclrich \xd0\xb6"}, &total), "\xc3");
    CHECK_INT(total, 1);
}

BOTH(user_list_search_folds_unicode, body_list_search_unicode, true, true)

static void body_list_wildcards(fixture *f)
{
    long long total = -1;
    CHECK_INT(add_list_users(f), 0);
    CHECK_STR(page(f, (store_user_query){.search = "_"}, &total), "c");
    CHECK_INT(total, 1);
    CHECK_STR(page(f, (store_user_query){.search = "%"}, &total), "b");
    CHECK_INT(total, 1);
    CHECK_STR(page(f, (store_user_query){.search = "0%"}, &total), "b");
    CHECK_STR(page(f, (store_user_query){.search = "\\"}, &total), "d");
    CHECK_INT(total, 1);
    CHECK_STR(page(f, (store_user_query){.search = "l_x"}, &total), "c");
    CHECK_STR(page(f, (store_user_query){.search = "a_x"}, &total), "");
}

BOTH(user_list_search_wildcards_literal, body_list_wildcards, true, true)

static void body_list_role(fixture *f)
{
    long long total = -1;
    CHECK_INT(add_list_users(f), 0);
    CHECK_STR(page(f, (store_user_query){.role = "user"}, &total), "bce");
    CHECK_INT(total, 3);
    CHECK_STR(page(f, (store_user_query){.role = "admin"}, &total), "a");
    CHECK_STR(page(f, (store_user_query){.role = "user", .search = "CAROL"}, &total), "c");
    CHECK_INT(total, 1);
    CHECK_STR(page(f, (store_user_query){.role = "viewer", .search = "carol"}, &total), "");
    CHECK_INT(total, 0);
}

BOTH(user_list_role_filter, body_list_role, true, true)

static void body_list_sort(fixture *f)
{
    long long total = -1;
    CHECK_INT(add_list_users(f), 0);
    CHECK_STR(page(f, (store_user_query){.sort = STORE_USER_SORT_CREATED}, &total), "bdace");
    CHECK_STR(page(f, (store_user_query){.sort = STORE_USER_SORT_CREATED, .desc = true}, &total),
              "ecadb");
    CHECK_STR(page(f, (store_user_query){.sort = STORE_USER_SORT_EMAIL}, &total), "abcde");
    CHECK_STR(page(f, (store_user_query){.sort = STORE_USER_SORT_EMAIL, .desc = true}, &total),
              "edcba");
    /* Names: Adam, Bob 100%, Carol, Dave \ Backslash, Zoe Alice. */
    CHECK_STR(page(f, (store_user_query){.sort = STORE_USER_SORT_NAME}, &total), "ebcda");
    CHECK_STR(page(f, (store_user_query){.sort = STORE_USER_SORT_NAME, .desc = true}, &total),
              "adcbe");
}

BOTH(user_list_sorts_both_directions, body_list_sort, true, true)

static void body_list_page(fixture *f)
{
    long long total = -1;
    store_user_query q = {.sort = STORE_USER_SORT_EMAIL, .offset = 1, .limit = 2};
    CHECK_INT(add_list_users(f), 0);
    CHECK_STR(page(f, q, &total), "bc");
    CHECK_INT(total, LIST_USERS);
    q.offset = 4;
    CHECK_STR(page(f, q, &total), "e");
    CHECK_INT(total, LIST_USERS);
    q.offset = 5;
    CHECK_STR(page(f, q, &total), "");
    CHECK_INT(total, LIST_USERS);
    q = (store_user_query){.sort = STORE_USER_SORT_EMAIL, .role = "user", .offset = 1, .limit = 1};
    CHECK_STR(page(f, q, &total), "c");
    CHECK_INT(total, 3);
}

BOTH(user_list_offset_limit_total, body_list_page, true, true)

/* ---- user update ---- */

static void body_user_update(fixture *f)
{
    store_user u, out;
    char email[64], name[64];
    user_make(&u, 1, email, sizeof(email), name, sizeof(name));
    CHECK_INT(store_user_insert(f->s, &u), AOP_OK);
    u.name = "Renamed";
    u.password_hash = "$2b$12$newhashnewhashnewhashnewhashnewhashnewhashnewhashnewh";
    u.role = "admin";
    u.preferences = "{\"theme\":\"light\"}";
    u.is_active = false;
    u.email = "changed@example.com"; /* not a column update writes */
    str_copy(u.updated_at, sizeof(u.updated_at), T_NOW);
    CHECK_INT(store_user_update(f->s, &u), AOP_OK);
    CHECK_INT(store_user_get_by_id(f->s, u.id, &out, &f->a), AOP_OK);
    CHECK_STR(out.name, "Renamed");
    CHECK_STR(out.password_hash, u.password_hash);
    CHECK_STR(out.role, "admin");
    CHECK_STR(out.preferences, "{\"theme\":\"light\"}");
    CHECK(!out.is_active);
    CHECK_STR(out.updated_at, T_NOW);
    CHECK_STR(out.email, "user1@example.com");
    CHECK_STR(out.created_at, "2026-01-02T03:04:05.006Z");
    user_id(u.id, 99);
    CHECK_INT(store_user_update(f->s, &u), AOP_ERR_NOT_FOUND);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM users"), 1);
}

BOTH(user_update_writes_and_unknown_not_found, body_user_update, true, true)

/* ---- audit ---- */

static void body_audit(fixture *f)
{
    char v[256];
    store_audit e = {.action = "user.login", .actor_id = "actor-1", .subject_id = "subject-2",
                     .ip = "203.0.113.7", .request_id = "req-3", .detail = "{\"ok\":true}"};
    CHECK_INT(store_audit_insert(f->s, &e), AOP_OK);
    CHECK_INT(sql_text(f->path,
                       "SELECT action || '|' || actor_id || '|' || subject_id || '|' || ip || '|' "
                       "|| request_id || '|' || detail FROM audit_events",
                       v, sizeof(v)), 0);
    CHECK_STR(v, "user.login|actor-1|subject-2|203.0.113.7|req-3|{\"ok\":true}");
    CHECK_INT(sql_text(f->path, "SELECT id FROM audit_events", v, sizeof(v)), 0);
    CHECK_INT(strlen(v), 36);
    CHECK(v[14] == '7');
    CHECK_INT(sql_text(f->path, "SELECT created_at FROM audit_events", v, sizeof(v)), 0);
    CHECK_INT(strlen(v), 24);
    CHECK(v[10] == 'T' && v[23] == 'Z');

    store_audit bare = {.action = "user.logout"};
    CHECK_INT(store_audit_insert(f->s, &bare), AOP_OK);
    CHECK_INT(sql_text(f->path, "SELECT detail FROM audit_events WHERE action = 'user.logout'", v,
                       sizeof(v)), 0);
    CHECK_STR(v, "{}");
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM audit_events WHERE action = 'user.logout' "
                               "AND actor_id IS NULL AND subject_id IS NULL AND ip IS NULL "
                               "AND request_id IS NULL"), 1);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(DISTINCT id) FROM audit_events"), 2);
}

BOTH(audit_insert_writes_fields, body_audit, true, true)

/* ---- workflows ---- */

#define WF_SINCE "2026-03-01T00:00:00.000Z"

/* Workflow id n, distinct from user, family, token and key ids. */
static void wf_id(char out[UUID_STR_LEN], int n)
{
    tok_id(out, 5, n);
}

/* JSON array of the ids of users u1 and u2 (0: absent). */
static char *uids_json(arena *a, int u1, int u2)
{
    char x[UUID_STR_LEN], y[UUID_STR_LEN];
    user_id(x, u1);
    user_id(y, u2);
    if (!u1)
        return arena_strdup(a, "[]");
    if (!u2)
        return arena_printf(a, "[\"%s\"]", x);
    return arena_printf(a, "[\"%s\",\"%s\"]", x, y);
}

typedef struct {
    const char *name, *description, *tags, *status;
    int owner, editor, viewer; /* user numbers; 0: none */
    const char *created_at, *updated_at;
} wf_spec;

/* Workflow n as s describes it (strings from a or s; version 1). */
static void wf_make(store_workflow *w, int n, const wf_spec *s, arena *a)
{
    memset(w, 0, sizeof(*w));
    wf_id(w->id, n);
    w->name = arena_strdup(a, s->name);
    w->description = arena_strdup(a, s->description ? s->description : "");
    w->tags = arena_strdup(a, s->tags ? s->tags : "[]");
    w->status = arena_strdup(a, s->status ? s->status : "draft");
    w->definition = arena_printf(a, "{\"nodes\":[{\"id\":\"n%d\",\"type\":\"noop\"}],\"edges\":[]}", n);
    w->settings = arena_strdup(a, "{\"timeoutMs\":1000}");
    w->editors = uids_json(a, s->editor, 0);
    w->viewers = uids_json(a, s->viewer, 0);
    w->version = 1;
    user_id(w->owner_id, s->owner);
    user_id(w->created_by, s->owner);
    user_id(w->updated_by, s->owner);
    str_copy(w->created_at, sizeof(w->created_at), s->created_at ? s->created_at : T_PAST);
    str_copy(w->updated_at, sizeof(w->updated_at), s->updated_at ? s->updated_at : w->created_at);
}

static aop_err wf_add(fixture *f, int n, const wf_spec *s)
{
    store_workflow w;
    wf_make(&w, n, s, &f->a);
    return store_workflow_insert(f->s, &w);
}

/* Users 1..n; 0, or -1 when the store refused one. */
static int add_users(fixture *f, int n)
{
    for (int i = 1; i <= n; i++)
        if (add_user(f, i) != 0)
            return -1;
    return 0;
}

/* The last digits of the ids of one page, in order, e.g. "153"; "!" when the
 * list failed, "D" when a row carried a definition. *total gets the total. */
static const char *wf_page(fixture *f, store_wf_query q, long long *total)
{
    static char out[64];
    store_workflow *ws = NULL;
    int n = -1;
    if (q.limit == 0)
        q.limit = 100;
    *total = -1;
    if (store_workflow_list(f->s, &q, &ws, &n, total, &f->a) != AOP_OK || n < 0 || n > 60)
        return "!";
    for (int i = 0; i < n; i++) {
        if (ws[i].definition)
            return "D";
        out[i] = ws[i].id[UUID_STR_LEN - 2];
    }
    out[n] = '\0';
    return out;
}

/* A page with every match on it: the digits, and the total equal to their count. */
#define WF_LIST(f, q, want)                                                      \
    do {                                                                         \
        long long t_ = -1;                                                       \
        CHECK_STR(wf_page((f), (q), &t_), (want));                               \
        CHECK_INT(t_, (long long)strlen(want));                                  \
    } while (0)

static void body_wf_roundtrip(fixture *f)
{
    store_workflow in, out;
    char id[UUID_STR_LEN], u1[UUID_STR_LEN], u2[UUID_STR_LEN], q[256];
    CHECK_INT(add_users(f, 5), 0);
    user_id(u1, 1);
    user_id(u2, 2);
    wf_make(&in, 1, &(wf_spec){.name = "Nightly \xc3\x9c" "bersicht", .owner = 1}, &f->a);
    in.description = "Sends a \"digest\"\nevery night";
    in.tags = "[\"a\",\"b\"]";
    in.status = "active";
    in.definition = "{\"nodes\":[{\"id\":\"start\",\"type\":\"trigger\"}],\"edges\":[]}";
    in.settings = "{\"timeoutMs\":30000,\"retries\":2}";
    in.editors = uids_json(&f->a, 2, 3);
    in.viewers = uids_json(&f->a, 4, 5);
    in.version = 7;
    user_id(in.created_by, 2);
    user_id(in.updated_by, 3);
    str_copy(in.created_at, sizeof(in.created_at), "2026-01-05T06:07:08.009Z");
    str_copy(in.updated_at, sizeof(in.updated_at), "2026-01-06T06:07:08.010Z");
    CHECK_INT(store_workflow_insert(f->s, &in), AOP_OK);

    memset(&out, 0x5a, sizeof(out));
    CHECK_INT(store_workflow_get(f->s, in.id, &out, &f->a), AOP_OK);
    CHECK_STR(out.id, in.id);
    CHECK_STR(out.name, in.name);
    CHECK_STR(out.description, in.description);
    CHECK_STR(out.tags, "[\"a\",\"b\"]");
    CHECK_STR(out.status, "active");
    CHECK(out.definition != NULL);
    CHECK_STR(out.definition, in.definition);
    CHECK_STR(out.settings, in.settings);
    CHECK_STR(out.editors, in.editors);
    CHECK_STR(out.viewers, in.viewers);
    CHECK_INT(out.version, 7);
    CHECK_STR(out.owner_id, u1);
    CHECK_STR(out.created_by, u2);
    CHECK_STR(out.updated_by, in.updated_by);
    CHECK_STR(out.created_at, "2026-01-05T06:07:08.009Z");
    CHECK_STR(out.updated_at, "2026-01-06T06:07:08.010Z");
    /* Analytics start at zero; never executed. */
    CHECK_INT(out.an.execution_count, 0);
    CHECK_INT(out.an.success_count, 0);
    CHECK_INT(out.an.failure_count, 0);
    CHECK_INT(out.an.duration_ms_total, 0);
    CHECK_INT(out.an.duration_count, 0);
    CHECK_INT(out.an.total_tokens, 0);
    CHECK(out.an.total_cost_usd == 0.0);
    CHECK_STR(out.an.last_executed_at, "");

    /* The tag and permission rows the list filters use (SQLite), the
     * lowered search columns (both). */
    if (!f->pg) {
        snprintf(q, sizeof(q), "SELECT group_concat(tag, ',') FROM (SELECT tag FROM workflow_tags "
                               "WHERE workflow_id = '%s' ORDER BY tag)", in.id);
        CHECK_INT(sql_text(f->path, q, id, sizeof(id)), 0);
        CHECK_STR(id, "a,b");
        snprintf(q, sizeof(q), "SELECT group_concat(substr(user_id, -1) || access, ',') FROM "
                               "(SELECT * FROM workflow_permissions WHERE workflow_id = '%s' "
                               "ORDER BY user_id)", in.id);
        CHECK_INT(sql_text(f->path, q, id, sizeof(id)), 0);
        CHECK_STR(id, "2editor,3editor,4viewer,5viewer");
    }
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM workflows WHERE search_name = "
                               "'nightly \xc3\xbc" "bersicht' AND search_description = "
                               "'sends a \"digest\"\nevery night'"), 1);

    /* A second one with the defaults' shapes: empty sets. */
    store_workflow w2;
    wf_make(&w2, 2, &(wf_spec){.name = "Plain", .owner = 2}, &f->a);
    CHECK_INT(store_workflow_insert(f->s, &w2), AOP_OK);
    CHECK_INT(store_workflow_get(f->s, w2.id, &out, &f->a), AOP_OK);
    CHECK_STR(out.name, "Plain");
    CHECK_STR(out.description, "");
    CHECK_STR(out.tags, "[]");
    CHECK_STR(out.editors, "[]");
    CHECK_STR(out.status, "draft");
    CHECK_STR(out.definition, w2.definition);
    if (!f->pg) {
        CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM workflow_tags"), 2);
        CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM workflow_permissions"), 4);
    }

    /* Same id again: a conflict, and nothing written. */
    CHECK_INT(store_workflow_insert(f->s, &w2), AOP_ERR_CONFLICT);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM workflows"), 2);

    wf_id(id, 9);
    memset(&out, 0, sizeof(out));
    CHECK_INT(store_workflow_get(f->s, id, &out, &f->a), AOP_ERR_NOT_FOUND);
    CHECK_INT(store_workflow_get(f->s, "", &out, &f->a), AOP_ERR_NOT_FOUND);
}

BOTH(workflow_insert_get_roundtrip, body_wf_roundtrip, true, true)

static void body_wf_update(fixture *f)
{
    store_workflow w, out;
    char u1[UUID_STR_LEN], u2[UUID_STR_LEN], q[256], v[128];
    long long total = -1;
    CHECK_INT(add_users(f, 4), 0);
    user_id(u1, 1);
    user_id(u2, 2);
    wf_make(&w, 1, &(wf_spec){.name = "Original Name", .description = "First", .tags = "[\"a\",\"b\"]",
                              .owner = 1, .editor = 2, .viewer = 3}, &f->a);
    CHECK_INT(store_workflow_insert(f->s, &w), AOP_OK);
    CHECK_STR(wf_page(f, (store_wf_query){.tag = "a"}, &total), "1");
    CHECK_STR(wf_page(f, (store_wf_query){.reader = u2}, &total), "1");

    /* The right expected version: every field but the creation ones written. */
    store_workflow up = w;
    up.name = "Renamed Flow";
    up.description = "Second";
    up.tags = "[\"b\",\"c\"]";
    up.status = "active";
    up.definition = "{\"nodes\":[],\"edges\":[],\"v\":2}";
    up.settings = "{\"timeoutMs\":5}";
    up.editors = uids_json(&f->a, 4, 0);
    up.viewers = uids_json(&f->a, 2, 0);
    up.version = 2;
    user_id(up.updated_by, 2);
    str_copy(up.updated_at, sizeof(up.updated_at), T_NOW);
    user_id(up.created_by, 4);                                  /* not written */
    str_copy(up.created_at, sizeof(up.created_at), T_FAR);      /* not written */
    CHECK_INT(store_workflow_update(f->s, &up, 1), AOP_OK);
    CHECK_INT(store_workflow_get(f->s, w.id, &out, &f->a), AOP_OK);
    CHECK_STR(out.name, "Renamed Flow");
    CHECK_STR(out.description, "Second");
    CHECK_STR(out.tags, "[\"b\",\"c\"]");
    CHECK_STR(out.status, "active");
    CHECK_STR(out.definition, up.definition);
    CHECK_STR(out.settings, "{\"timeoutMs\":5}");
    CHECK_STR(out.editors, up.editors);
    CHECK_STR(out.viewers, up.viewers);
    CHECK_INT(out.version, 2);
    CHECK_STR(out.updated_by, u2);
    CHECK_STR(out.updated_at, T_NOW);
    CHECK_STR(out.created_by, u1);
    CHECK_STR(out.created_at, T_PAST);
    CHECK_STR(out.owner_id, u1);
    /* The lists see the new sets and the new search text. */
    WF_LIST(f, ((store_wf_query){.tag = "a"}), "");
    WF_LIST(f, ((store_wf_query){.tag = "b"}), "1");
    WF_LIST(f, ((store_wf_query){.tag = "c"}), "1");
    char r[UUID_STR_LEN];
    user_id(r, 3); /* the former viewer */
    WF_LIST(f, ((store_wf_query){.reader = r}), "");
    user_id(r, 4); /* the new editor */
    WF_LIST(f, ((store_wf_query){.reader = r}), "1");
    WF_LIST(f, ((store_wf_query){.reader = u2}), "1"); /* editor before, viewer now */
    WF_LIST(f, ((store_wf_query){.reader = u1}), "1"); /* the owner */
    WF_LIST(f, ((store_wf_query){.search = "RENAMED"}), "1");
    WF_LIST(f, ((store_wf_query){.search = "second"}), "1");
    WF_LIST(f, ((store_wf_query){.search = "original"}), "");
    WF_LIST(f, ((store_wf_query){.status = "active"}), "1");
    WF_LIST(f, ((store_wf_query){.status = "draft"}), "");
    snprintf(q, sizeof(q), "SELECT group_concat(substr(user_id, -1) || access, ',') FROM (SELECT "
                           "* FROM workflow_permissions WHERE workflow_id = '%s' ORDER BY user_id)",
             w.id);
    if (!f->pg) {
        CHECK_INT(sql_text(f->path, q, v, sizeof(v)), 0);
        CHECK_STR(v, "2viewer,4editor");
        CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM workflow_tags"), 2);
    }

    /* A stale expected version: refused, nothing changed. */
    store_workflow stale = up;
    stale.name = "Stale";
    stale.description = "Stale";
    stale.tags = "[\"d\"]";
    stale.status = "archived";
    stale.editors = uids_json(&f->a, 3, 0);
    stale.viewers = "[]";
    stale.version = 3;
    str_copy(stale.updated_at, sizeof(stale.updated_at), T_LATER);
    CHECK_INT(store_workflow_update(f->s, &stale, 1), AOP_ERR_VERSION_CONFLICT);
    CHECK_INT(store_workflow_update(f->s, &stale, 3), AOP_ERR_VERSION_CONFLICT); /* ahead */
    CHECK_INT(store_workflow_get(f->s, w.id, &out, &f->a), AOP_OK);
    CHECK_STR(out.name, "Renamed Flow");
    CHECK_STR(out.description, "Second");
    CHECK_STR(out.tags, "[\"b\",\"c\"]");
    CHECK_STR(out.status, "active");
    CHECK_STR(out.editors, up.editors);
    CHECK_INT(out.version, 2);
    CHECK_STR(out.updated_at, T_NOW);
    WF_LIST(f, ((store_wf_query){.tag = "d"}), "");
    WF_LIST(f, ((store_wf_query){.tag = "c"}), "1");
    WF_LIST(f, ((store_wf_query){.search = "stale"}), "");
    user_id(r, 3);
    WF_LIST(f, ((store_wf_query){.reader = r}), "");
    if (!f->pg) {
        CHECK_INT(sql_text(f->path, q, v, sizeof(v)), 0);
        CHECK_STR(v, "2viewer,4editor");
    }

    /* Unknown id. */
    store_workflow other = up;
    wf_id(other.id, 8);
    CHECK_INT(store_workflow_update(f->s, &other, 2), AOP_ERR_NOT_FOUND);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM workflows"), 1);
    if (!f->pg)
        CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM workflow_tags"), 2);

    /* Deleted: gone for update too, whatever the version. */
    CHECK_INT(store_workflow_delete(f->s, w.id, u1, T_LATER), AOP_OK);
    up.version = 3;
    CHECK_INT(store_workflow_update(f->s, &up, 2), AOP_ERR_NOT_FOUND);
    CHECK_INT(store_workflow_update(f->s, &up, 1), AOP_ERR_NOT_FOUND);
    snprintf(q, sizeof(q), "SELECT version FROM workflows WHERE id = '%s'", w.id);
    CHECK_INT(sql_int(f->path, q), 2);
}

BOTH(workflow_update_expected_version, body_wf_update, true, true)

static void body_wf_delete(fixture *f)
{
    char u1[UUID_STR_LEN], u2[UUID_STR_LEN], id1[UUID_STR_LEN], id9[UUID_STR_LEN], q[256],
        v[64];
    store_workflow out;
    CHECK_INT(add_users(f, 2), 0);
    user_id(u1, 1);
    user_id(u2, 2);
    wf_id(id1, 1);
    wf_id(id9, 9);
    CHECK_INT(wf_add(f, 1, &(wf_spec){.name = "One", .tags = "[\"t\"]", .owner = 1, .viewer = 2}),
              AOP_OK);
    CHECK_INT(wf_add(f, 2, &(wf_spec){.name = "Two", .tags = "[\"t\"]", .owner = 1}), AOP_OK);
    for (int ver = 1; ver <= 2; ver++) {
        store_wf_version wv = {.version = ver, .name = "One", .created_at = T_PAST};
        str_copy(wv.updated_by, sizeof(wv.updated_by), u1);
        CHECK_INT(store_workflow_version_insert(f->s, id1, &wv, "{}"), AOP_OK);
    }
    WF_LIST(f, ((store_wf_query){0}), "12");

    CHECK_INT(store_workflow_delete(f->s, id1, u2, T_NOW), AOP_OK);
    CHECK_INT(store_workflow_get(f->s, id1, &out, &f->a), AOP_ERR_NOT_FOUND);
    WF_LIST(f, ((store_wf_query){0}), "2");
    WF_LIST(f, ((store_wf_query){.tag = "t"}), "2");
    WF_LIST(f, ((store_wf_query){.owner_id = u1}), "2");
    WF_LIST(f, ((store_wf_query){.reader = u2}), "");
    WF_LIST(f, ((store_wf_query){.search = "one"}), "");
    CHECK_INT(store_workflow_delete(f->s, id1, u1, T_LATER), AOP_ERR_NOT_FOUND); /* twice */
    CHECK_INT(store_workflow_delete(f->s, id9, u1, T_LATER), AOP_ERR_NOT_FOUND); /* unknown */

    /* Still in the file, marked by the first delete; versions kept. */
    snprintf(q, sizeof(q), "SELECT deleted_at || ' ' || deleted_by FROM workflows WHERE id = '%s'",
             id1);
    CHECK_INT(sql_text(f->path, q, v, sizeof(v)), 0);
    char want[80];
    snprintf(want, sizeof(want), "%s %s", T_NOW, u2);
    CHECK_STR(v, want);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM workflows"), 2);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM workflows WHERE deleted_at IS NOT NULL"), 1);
    snprintf(q, sizeof(q), "SELECT COUNT(*) FROM workflow_versions WHERE workflow_id = '%s'", id1);
    CHECK_INT(sql_int(f->path, q), 2);
    CHECK_INT(store_workflow_get(f->s, id1, &out, &f->a), AOP_ERR_NOT_FOUND);
}

BOTH(workflow_delete_soft, body_wf_delete, true, true)

/* Six live workflows and a deleted one that would match every filter. */
static const char *const wt[] = {"2026-02-01T00:00:00.000Z", "2026-02-02T00:00:00.000Z",
                                 "2026-02-03T00:00:00.000Z", "2026-02-04T00:00:00.000Z",
                                 "2026-02-05T00:00:00.000Z", "2026-02-06T00:00:00.000Z"};

static int add_list_workflows(fixture *f)
{
    const wf_spec s[] = {
        {"Alpha", "Daily report", "[\"x\",\"y\"]", "active", 1, 2, 0, wt[1], wt[3]},
        {"Beta", "\xc3\x9c" "ber flow", "[\"y\"]", "draft", 2, 0, 3, wt[2], wt[4]},
        {"Same", "100% done", "[]", "archived", 1, 0, 3, wt[2], wt[3]},
        {"Delta", "\xc3\x9c" "BER alles", "[\"x\"]", "active", 3, 0, 0, wt[2], wt[1]},
        {"Same", "a_b c", "[\"x\"]", "draft", 1, 4, 0, wt[3], wt[3]},
        {"Cobra", "100 percent, ab", "[\"z\"]", "active", 4, 1, 2, wt[0], wt[2]},
        {"Alpha", "Daily report \xc3\xbc" "ber 100% a_b percent same", "[\"x\",\"y\",\"z\"]",
         "active", 4, 1, 2, wt[0], wt[5]},
    };
    char id7[UUID_STR_LEN], u1[UUID_STR_LEN];
    if (add_users(f, 5) != 0)
        return -1;
    for (int i = 0; i < 7; i++)
        if (wf_add(f, i + 1, &s[i]) != AOP_OK)
            return -1;
    wf_id(id7, 7);
    user_id(u1, 1);
    return store_workflow_delete(f->s, id7, u1, T_NOW) == AOP_OK ? 0 : -1;
}

static void body_wf_list_filters(fixture *f)
{
    char u[6][UUID_STR_LEN];
    for (int i = 1; i <= 5; i++)
        user_id(u[i], i);
    CHECK_INT(add_list_workflows(f), 0);
    /* Default order: created_at, then id. */
    WF_LIST(f, ((store_wf_query){0}), "612345");
    /* status */
    WF_LIST(f, ((store_wf_query){.status = "active"}), "614");
    WF_LIST(f, ((store_wf_query){.status = "draft"}), "25");
    WF_LIST(f, ((store_wf_query){.status = "archived"}), "3");
    /* tag */
    WF_LIST(f, ((store_wf_query){.tag = "x"}), "145");
    WF_LIST(f, ((store_wf_query){.tag = "y"}), "12");
    WF_LIST(f, ((store_wf_query){.tag = "z"}), "6");
    WF_LIST(f, ((store_wf_query){.tag = "nope"}), "");
    /* owner */
    WF_LIST(f, ((store_wf_query){.owner_id = u[1]}), "135");
    WF_LIST(f, ((store_wf_query){.owner_id = u[4]}), "6");
    WF_LIST(f, ((store_wf_query){.owner_id = u[5]}), "");
    /* search: name or description, any case, non-ASCII too, substrings */
    WF_LIST(f, ((store_wf_query){.search = "\xc3\x9c" "BER"}), "24");        /* ÜBER */
    WF_LIST(f, ((store_wf_query){.search = "\xc3\xbc" "ber"}), "24");        /* über */
    WF_LIST(f, ((store_wf_query){.search = "\xc3\x9c" "bEr FLOW"}), "2");    /* Über FLOW */
    WF_LIST(f, ((store_wf_query){.search = "ALPHA"}), "1");
    WF_LIST(f, ((store_wf_query){.search = "Report"}), "1");
    WF_LIST(f, ((store_wf_query){.search = "elt"}), "4");
    WF_LIST(f, ((store_wf_query){.search = "SAME"}), "35");
    WF_LIST(f, ((store_wf_query){.search = "100"}), "63");
    WF_LIST(f, ((store_wf_query){.search = "x"}), "");        /* tags are not searched */
    WF_LIST(f, ((store_wf_query){.search = "0190a0b1"}), ""); /* nor ids */
    WF_LIST(f, ((store_wf_query){.search = ""}), "612345");   /* empty: no filter */
    /* LIKE's wildcards are plain characters */
    WF_LIST(f, ((store_wf_query){.search = "%"}), "3");
    WF_LIST(f, ((store_wf_query){.search = "100%"}), "3");
    WF_LIST(f, ((store_wf_query){.search = "_"}), "5");
    WF_LIST(f, ((store_wf_query){.search = "a_b"}), "5");
    WF_LIST(f, ((store_wf_query){.search = "0_"}), "");
    WF_LIST(f, ((store_wf_query){.search = "a%"}), "");
    /* reader: owned, or named as editor or viewer */
    WF_LIST(f, ((store_wf_query){.reader = u[1]}), "6135");
    WF_LIST(f, ((store_wf_query){.reader = u[2]}), "612");
    WF_LIST(f, ((store_wf_query){.reader = u[3]}), "234");
    WF_LIST(f, ((store_wf_query){.reader = u[4]}), "65");
    WF_LIST(f, ((store_wf_query){.reader = u[5]}), "");
    /* combined */
    WF_LIST(f, ((store_wf_query){.status = "active", .tag = "x"}), "14");
    WF_LIST(f, ((store_wf_query){.status = "draft", .owner_id = u[1]}), "5");
    WF_LIST(f, ((store_wf_query){.tag = "x", .owner_id = u[1]}), "15");
    WF_LIST(f, ((store_wf_query){.status = "active", .search = "AL"}), "14");
    WF_LIST(f, ((store_wf_query){.tag = "y", .search = "\xc3\x9c" "BER"}), "2");
    WF_LIST(f, ((store_wf_query){.owner_id = u[1], .search = "same"}), "35");
    WF_LIST(f, ((store_wf_query){.status = "archived", .tag = "x"}), "");
    WF_LIST(f, ((store_wf_query){.reader = u[1], .status = "active"}), "61");
    WF_LIST(f, ((store_wf_query){.reader = u[2], .tag = "y"}), "12");
    WF_LIST(f, ((store_wf_query){.reader = u[3], .search = "\xc3\xbc" "ber"}), "24");
    WF_LIST(f, ((store_wf_query){.reader = u[1], .owner_id = u[4]}), "6");
    WF_LIST(f, ((store_wf_query){.reader = u[4], .owner_id = u[1]}), "5");
    WF_LIST(f, ((store_wf_query){.reader = u[3], .owner_id = u[1]}), "3");
    WF_LIST(f, ((store_wf_query){.status = "active", .tag = "x", .owner_id = u[3],
                                 .search = "ALLES"}), "4");
    WF_LIST(f, ((store_wf_query){.reader = u[2], .status = "active", .tag = "z",
                                 .owner_id = u[4], .search = "PERCENT"}), "6");
    WF_LIST(f, ((store_wf_query){.reader = u[2], .status = "draft", .tag = "z",
                                 .owner_id = u[4], .search = "PERCENT"}), "");
    WF_LIST(f, ((store_wf_query){.reader = u[3], .status = "active", .tag = "z",
                                 .owner_id = u[4], .search = "PERCENT"}), "");
}

BOTH(workflow_list_filters, body_wf_list_filters, true, true)

static void body_wf_list_sort_page(fixture *f)
{
    long long total = -1;
    char u1[UUID_STR_LEN], u4[UUID_STR_LEN];
    user_id(u1, 1);
    user_id(u4, 4);
    CHECK_INT(add_list_workflows(f), 0);
    /* Ties (created 2,3,4; updated 1,3,5; names 3,5) go by id, in the sort's direction. */
    WF_LIST(f, ((store_wf_query){.sort = STORE_WF_SORT_CREATED}), "612345");
    WF_LIST(f, ((store_wf_query){.sort = STORE_WF_SORT_CREATED, .desc = true}), "543216");
    WF_LIST(f, ((store_wf_query){.sort = STORE_WF_SORT_UPDATED}), "461352");
    WF_LIST(f, ((store_wf_query){.sort = STORE_WF_SORT_UPDATED, .desc = true}), "253164");
    WF_LIST(f, ((store_wf_query){.sort = STORE_WF_SORT_NAME}), "126435");
    WF_LIST(f, ((store_wf_query){.sort = STORE_WF_SORT_NAME, .desc = true}), "534621");
    /* with filters */
    WF_LIST(f, ((store_wf_query){.reader = u1, .sort = STORE_WF_SORT_NAME, .desc = true}), "5361");
    WF_LIST(f, ((store_wf_query){.tag = "x", .sort = STORE_WF_SORT_UPDATED, .desc = true}), "514");
    WF_LIST(f, ((store_wf_query){.status = "active", .sort = STORE_WF_SORT_NAME}), "164");
    WF_LIST(f, ((store_wf_query){.owner_id = u1, .sort = STORE_WF_SORT_CREATED, .desc = true}),
            "531");
    WF_LIST(f, ((store_wf_query){.search = "a", .sort = STORE_WF_SORT_UPDATED}), "461352");

    /* paging */
    store_wf_query q = {.sort = STORE_WF_SORT_CREATED, .offset = 1, .limit = 2};
    CHECK_STR(wf_page(f, q, &total), "12");
    CHECK_INT(total, 6);
    q.offset = 4;
    q.limit = 3;
    CHECK_STR(wf_page(f, q, &total), "45");
    CHECK_INT(total, 6);
    q.offset = 5;
    q.limit = 1;
    CHECK_STR(wf_page(f, q, &total), "5");
    CHECK_INT(total, 6);
    q.offset = 6;
    q.limit = 2;
    CHECK_STR(wf_page(f, q, &total), "");
    CHECK_INT(total, 6);
    q.offset = 100;
    CHECK_STR(wf_page(f, q, &total), "");
    CHECK_INT(total, 6);
    q = (store_wf_query){.sort = STORE_WF_SORT_UPDATED, .desc = true, .offset = 2, .limit = 3};
    CHECK_STR(wf_page(f, q, &total), "316");
    CHECK_INT(total, 6);
    q = (store_wf_query){.tag = "x", .offset = 1, .limit = 1};
    CHECK_STR(wf_page(f, q, &total), "4");
    CHECK_INT(total, 3);
    q = (store_wf_query){.reader = u1, .sort = STORE_WF_SORT_NAME, .offset = 2, .limit = 2};
    CHECK_STR(wf_page(f, q, &total), "35");
    CHECK_INT(total, 4);
    q = (store_wf_query){.reader = u4, .offset = 2, .limit = 5};
    CHECK_STR(wf_page(f, q, &total), "");
    CHECK_INT(total, 2);

    /* The n reported and the rows themselves: no definition, the rest filled. */
    store_workflow *ws = NULL;
    int n = -1;
    q = (store_wf_query){.sort = STORE_WF_SORT_NAME, .desc = true, .offset = 0, .limit = 4};
    CHECK_INT(store_workflow_list(f->s, &q, &ws, &n, &total, &f->a), AOP_OK);
    CHECK_INT(n, 4);
    CHECK_INT(total, 6);
    for (int i = 0; i < n; i++)
        CHECK(ws[i].definition == NULL);
    CHECK_STR(ws[2].name, "Delta");
    CHECK_STR(ws[2].description, "\xc3\x9c" "BER alles");
    CHECK_STR(ws[2].tags, "[\"x\"]");
    CHECK_STR(ws[2].status, "active");
    CHECK_STR(ws[2].settings, "{\"timeoutMs\":1000}");
    CHECK_STR(ws[2].editors, "[]");
    CHECK_STR(ws[2].viewers, "[]");
    CHECK_INT(ws[2].version, 1);
    CHECK_STR(ws[2].created_at, wt[2]);
    CHECK_STR(ws[2].updated_at, wt[1]);
    CHECK_STR(ws[3].viewers, uids_json(&f->a, 2, 0)); /* Cobra */
    CHECK_STR(ws[3].owner_id, u4);
    q.offset = 6;
    n = -1;
    CHECK_INT(store_workflow_list(f->s, &q, &ws, &n, &total, &f->a), AOP_OK);
    CHECK_INT(n, 0);
    CHECK_INT(total, 6);
}

BOTH(workflow_list_sorts_and_pages, body_wf_list_sort_page, true, true)

static void body_wf_versions(fixture *f)
{
    char id1[UUID_STR_LEN], id2[UUID_STR_LEN], id9[UUID_STR_LEN], who[UUID_STR_LEN];
    store_wf_version *vs = NULL;
    char *snap = NULL;
    int n = -1;
    long long total = -1;
    CHECK_INT(add_users(f, 3), 0);
    wf_id(id1, 1);
    wf_id(id2, 2);
    wf_id(id9, 9);
    CHECK_INT(wf_add(f, 1, &(wf_spec){.name = "One", .owner = 1}), AOP_OK);
    CHECK_INT(wf_add(f, 2, &(wf_spec){.name = "Two", .owner = 1}), AOP_OK);
    static const int order[] = {1, 3, 2}; /* inserted out of order */
    for (int i = 0; i < 3; i++) {
        int ver = order[i];
        char name[16], snapshot[64];
        store_wf_version v = {.version = ver, .name = name};
        snprintf(name, sizeof(name), "v%d name", ver);
        snprintf(snapshot, sizeof(snapshot), "{\"name\":\"v%d name\",\"version\":%d}", ver, ver);
        user_id(v.updated_by, ver);
        snprintf(v.created_at, sizeof(v.created_at), "2026-01-0%dT00:00:00.000Z", ver);
        CHECK_INT(store_workflow_version_insert(f->s, id1, &v, snapshot), AOP_OK);
    }
    store_wf_version other = {.version = 1, .name = "two v1", .created_at = T_PAST};
    user_id(other.updated_by, 1);
    CHECK_INT(store_workflow_version_insert(f->s, id2, &other, "{\"other\":true}"), AOP_OK);

    CHECK_INT(store_workflow_version_list(f->s, id1, 0, 2, &vs, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 3);
    CHECK_INT(n, 2);
    CHECK_INT(vs[0].version, 3);
    CHECK_STR(vs[0].name, "v3 name");
    user_id(who, 3);
    CHECK_STR(vs[0].updated_by, who);
    CHECK_STR(vs[0].created_at, "2026-01-03T00:00:00.000Z");
    CHECK_INT(vs[1].version, 2);
    CHECK_STR(vs[1].name, "v2 name");
    CHECK_INT(store_workflow_version_list(f->s, id1, 2, 2, &vs, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 3);
    CHECK_INT(n, 1);
    CHECK_INT(vs[0].version, 1);
    user_id(who, 1);
    CHECK_STR(vs[0].updated_by, who);
    CHECK_INT(store_workflow_version_list(f->s, id1, 1, 1, &vs, &n, &total, &f->a), AOP_OK);
    CHECK_INT(n, 1);
    CHECK_INT(vs[0].version, 2);
    CHECK_INT(store_workflow_version_list(f->s, id1, 0, 10, &vs, &n, &total, &f->a), AOP_OK);
    CHECK_INT(n, 3);
    CHECK_INT(vs[0].version * 100 + vs[1].version * 10 + vs[2].version, 321);
    n = -1;
    CHECK_INT(store_workflow_version_list(f->s, id1, 3, 2, &vs, &n, &total, &f->a), AOP_OK);
    CHECK_INT(n, 0);
    CHECK_INT(total, 3);
    CHECK_INT(store_workflow_version_list(f->s, id2, 0, 10, &vs, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 1);
    CHECK_INT(n, 1);
    CHECK_STR(vs[0].name, "two v1");
    CHECK_INT(store_workflow_version_list(f->s, id9, 0, 10, &vs, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 0);
    CHECK_INT(n, 0);

    CHECK_INT(store_workflow_version_get(f->s, id1, 2, &snap, &f->a), AOP_OK);
    CHECK_STR(snap, "{\"name\":\"v2 name\",\"version\":2}");
    CHECK_INT(store_workflow_version_get(f->s, id2, 1, &snap, &f->a), AOP_OK);
    CHECK_STR(snap, "{\"other\":true}");
    CHECK_INT(store_workflow_version_get(f->s, id1, 4, &snap, &f->a), AOP_ERR_NOT_FOUND);
    CHECK_INT(store_workflow_version_get(f->s, id1, 0, &snap, &f->a), AOP_ERR_NOT_FOUND);
    CHECK_INT(store_workflow_version_get(f->s, id2, 2, &snap, &f->a), AOP_ERR_NOT_FOUND);
    CHECK_INT(store_workflow_version_get(f->s, id9, 1, &snap, &f->a), AOP_ERR_NOT_FOUND);

    /* (workflow_id, version) is unique; the first snapshot stays. */
    store_wf_version dup = {.version = 2, .name = "dup", .created_at = T_NOW};
    user_id(dup.updated_by, 2);
    CHECK_INT(store_workflow_version_insert(f->s, id1, &dup, "{\"dup\":true}"), AOP_ERR_CONFLICT);
    CHECK_INT(store_workflow_version_get(f->s, id1, 2, &snap, &f->a), AOP_OK);
    CHECK_STR(snap, "{\"name\":\"v2 name\",\"version\":2}");
    CHECK_INT(store_workflow_version_list(f->s, id1, 0, 10, &vs, &n, &total, &f->a), AOP_OK);
    CHECK_INT(total, 3);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM workflow_versions"), 4);
    /* The same number under another workflow is no conflict. */
    dup.version = 3;
    CHECK_INT(store_workflow_version_insert(f->s, id2, &dup, "{\"dup\":true}"), AOP_OK);
}

BOTH(workflow_versions_list_get_conflict, body_wf_versions, true, true)

/* Workflows 1..13 live, 14 deleted: n executions and (14 - n) * 1.5 dollars;
 * statuses cycle active, archived, draft; created before WF_SINCE for n < 7,
 * at it for 7, after for n > 7. */
static void body_wf_summary(fixture *f)
{
    store_wf_summary sm;
    char id[UUID_STR_LEN], u1[UUID_STR_LEN], q[256];
    static const char *const status[3] = {"draft", "active", "archived"};
    user_id(u1, 1);
    CHECK_INT(add_users(f, 1), 0);

    memset(&sm, 0x5a, sizeof(sm));
    CHECK_INT(store_workflow_summary(f->s, WF_SINCE, &sm, &f->a), AOP_OK);
    CHECK_INT(sm.total, 0);
    CHECK_INT(sm.draft + sm.active + sm.archived + sm.created_since, 0);
    CHECK_INT(sm.n_by_executions, 0);
    CHECK_INT(sm.n_by_cost, 0);

    for (int n = 1; n <= 14; n++) {
        char name[32], created[48];
        snprintf(name, sizeof(name), "Flow %d", n);
        if (n < 7)
            snprintf(created, sizeof(created), "2026-02-%02dT23:59:59.999Z", n + 20);
        else if (n == 7)
            str_copy(created, sizeof(created), WF_SINCE);
        else
            snprintf(created, sizeof(created), "2026-03-%02dT00:00:00.000Z", n);
        CHECK_INT(wf_add(f, n, &(wf_spec){.name = name, .status = status[n % 3], .owner = 1,
                                          .created_at = created}), AOP_OK);
        wf_id(id, n);
        snprintf(q, sizeof(q), "UPDATE workflows SET execution_count = %d, total_cost_usd = %.1f "
                               "WHERE id = '%s'", n == 14 ? 1000 : n, n == 14 ? 1000.0 : (14 - n) * 1.5, id);
        CHECK_INT(sql_text(f->path, q, name, sizeof(name)), 0);
    }
    wf_id(id, 14);
    CHECK_INT(store_workflow_delete(f->s, id, u1, T_NOW), AOP_OK);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM workflows WHERE execution_count > 0"), 14);

    CHECK_INT(store_workflow_summary(f->s, WF_SINCE, &sm, &f->a), AOP_OK);
    CHECK_INT(sm.total, 13);
    CHECK_INT(sm.draft, 4);    /* 3 6 9 12 */
    CHECK_INT(sm.active, 5);   /* 1 4 7 10 13 */
    CHECK_INT(sm.archived, 4); /* 2 5 8 11 */
    CHECK_INT(sm.created_since, 7); /* 7..13 */
    CHECK_INT(sm.n_by_executions, STORE_WF_TOP);
    CHECK_INT(sm.n_by_cost, STORE_WF_TOP);
    for (int i = 0; i < STORE_WF_TOP; i++) {
        char name[32];
        int n = 13 - i; /* most executions first */
        wf_id(id, n);
        snprintf(name, sizeof(name), "Flow %d", n);
        CHECK_STR(sm.by_executions[i].id, id);
        CHECK_STR(sm.by_executions[i].name, name);
        CHECK_INT(sm.by_executions[i].executions, n);
        CHECK(sm.by_executions[i].cost_usd == (14 - n) * 1.5);
        n = i + 1; /* most cost first */
        wf_id(id, n);
        snprintf(name, sizeof(name), "Flow %d", n);
        CHECK_STR(sm.by_cost[i].id, id);
        CHECK_STR(sm.by_cost[i].name, name);
        CHECK_INT(sm.by_cost[i].executions, n);
        CHECK(sm.by_cost[i].cost_usd == (14 - n) * 1.5);
    }

    /* since between the creation times; fewer than STORE_WF_TOP workflows. */
    CHECK_INT(store_workflow_summary(f->s, "2026-02-24T00:00:00.000Z", &sm, &f->a), AOP_OK);
    CHECK_INT(sm.created_since, 10); /* 4..13 */
    CHECK_INT(store_workflow_summary(f->s, "2026-04-01T00:00:00.000Z", &sm, &f->a), AOP_OK);
    CHECK_INT(sm.created_since, 0);
    for (int n = 1; n <= 10; n++) {
        wf_id(id, n);
        CHECK_INT(store_workflow_delete(f->s, id, u1, T_NOW), AOP_OK);
    }
    CHECK_INT(store_workflow_summary(f->s, WF_SINCE, &sm, &f->a), AOP_OK);
    CHECK_INT(sm.total, 3);
    CHECK_INT(sm.draft, 1);    /* 12 */
    CHECK_INT(sm.active, 1);   /* 13 */
    CHECK_INT(sm.archived, 1); /* 11 */
    CHECK_INT(sm.created_since, 3);
    CHECK_INT(sm.n_by_executions, 3);
    CHECK_INT(sm.n_by_cost, 3);
    wf_id(id, 13);
    CHECK_STR(sm.by_executions[0].id, id);
    wf_id(id, 11);
    CHECK_STR(sm.by_cost[0].id, id);
    CHECK_STR(sm.by_executions[2].id, id);
}

BOTH(workflow_summary_counts_and_tops, body_wf_summary, true, true)

/* ---- workflow list query plans ---- */

#define PLAN_WORKFLOWS 2000

static const char plan_seed[] =
    "BEGIN;"
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 50) "
    "INSERT INTO users (id, email, name, password_hash, role, created_at, updated_at) "
    "SELECT printf('0190a0b1-0000-7000-8000-%012d', i), printf('plan%d@example.com', i), "
    "printf('Plan %d', i), 'x', 'user', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' "
    "FROM c;"
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000) "
    "INSERT INTO workflows (id, name, description, tags, status, definition, version, owner_id, "
    "created_by, updated_by, created_at, updated_at, search_name, search_description, deleted_at) "
    "SELECT printf('0190a0b1-0005-7000-8000-%012d', i), printf('Flow %d', (i * 37) % 500), "
    "printf('about %d', i % 13), printf('[\"t%d\"]', i % 20), "
    "CASE i % 3 WHEN 0 THEN 'draft' WHEN 1 THEN 'active' ELSE 'archived' END, '{}', 1, "
    "printf('0190a0b1-0000-7000-8000-%012d', 1 + i % 50), "
    "printf('0190a0b1-0000-7000-8000-%012d', 1 + i % 50), "
    "printf('0190a0b1-0000-7000-8000-%012d', 1 + i % 50), "
    "printf('2026-01-%02dT%02d:%02d:00.000Z', 1 + i % 28, (i / 28) % 24, i % 60), "
    "printf('2026-02-%02dT%02d:%02d:00.000Z', 1 + (i * 7) % 28, (i * 11) % 24, (i * 13) % 60), "
    "printf('flow %d', (i * 37) % 500), printf('about %d', i % 13), "
    "CASE WHEN i % 10 = 0 THEN '2026-03-01T00:00:00.000Z' END FROM c;"
    "INSERT INTO workflow_tags (tag, workflow_id) "
    "SELECT json_extract(tags, '$[0]'), id FROM workflows;"
    "INSERT INTO workflow_permissions (workflow_id, user_id, access) "
    "SELECT id, printf('0190a0b1-0000-7000-8000-%012d', 1 + (CAST(substr(id, -4) AS INTEGER) * 7 "
    "+ 3) % 50), CASE WHEN CAST(substr(id, -4) AS INTEGER) % 2 THEN 'editor' ELSE 'viewer' END "
    "FROM workflows WHERE CAST(substr(id, -4) AS INTEGER) % 4 = 0;"
    "COMMIT;";

/* The EXPLAIN QUERY PLAN of sql into plan, each step's detail between bars
 * ("|SCAN w|USE TEMP B-TREE FOR ORDER BY|"); 0, or -1 on error. */
static int query_plan(sqlite3 *db, const char *sql, char *plan, size_t planlen)
{
    sqlite3_stmt *st = NULL;
    char *text = db_sqlite_text(sql); /* as the driver prepares it */
    char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", text);
    int rc = q ? sqlite3_prepare_v2(db, q, -1, &st, NULL) : SQLITE_NOMEM;
    sqlite3_free(q);
    bool page = strstr(text, " LIMIT ?") && strstr(text, " OFFSET ?");
    free(text);
    if (rc != SQLITE_OK) {
        snprintf(plan, planlen, "prepare: %s: %s", sqlite3_errmsg(db), sql);
        return -1;
    }
    int np = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= np; i++) {
        if (page && i == np - 1)
            rc = sqlite3_bind_int64(st, i, 20);
        else if (page && i == np)
            rc = sqlite3_bind_int64(st, i, 40);
        else
            rc = sqlite3_bind_text(st, i, "0190a0b1-0000-7000-8000-000000000007", -1,
                                   SQLITE_STATIC);
        if (rc != SQLITE_OK)
            break;
    }
    size_t len = (size_t)snprintf(plan, planlen, "|");
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *d = sqlite3_column_text(st, 3);
        if (len < planlen)
            len += (size_t)snprintf(plan + len, planlen - len, "%s|", d ? (const char *)d : "");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static const char *plan_sort_index(int s)
{
    return s == STORE_WF_SORT_CREATED ? "workflows_created_idx"
           : s == STORE_WF_SORT_UPDATED ? "workflows_updated_idx"
                                        : "workflows_name_idx";
}

/* Every list statement on db, and the count statements when counts: the
 * failures, each with its plan, into msg; their number. */
static int check_plans(sqlite3 *db, const char *phase, bool counts, char *msg, size_t msglen)
{
    char plan[2048];
    int bad = 0;
    size_t len = 0;
    msg[0] = '\0';
#define PLAN_BAD(...)                                                               \
    do {                                                                            \
        if (++bad <= 6 && len < msglen)                                             \
            len += (size_t)snprintf(msg + len, msglen - len, __VA_ARGS__);          \
    } while (0)
    for (unsigned fl = 0; fl < 32; fl++) {
        const char *sql =
            db_list_sql(&store_wf_list, fl, STORE_WF_SORT_CREATED, false, true)->sqlite;
        if (!counts)
            ;
        else if (!sql || query_plan(db, sql, plan, sizeof(plan)) != 0)
            PLAN_BAD("\n[%s] count filters=%u: %s", phase, fl, sql ? plan : "no statement");
        else if (strstr(plan, "|SCAN w|"))
            PLAN_BAD("\n[%s] count filters=%u scans workflows: %s\n  for %s", phase, fl, plan,
                     sql);
        for (int s = 0; s < 3; s++) {
            for (int d = 0; d < 2; d++) {
                sql = db_list_sql(&store_wf_list, fl, s, d, false)->sqlite;
                if (!sql || query_plan(db, sql, plan, sizeof(plan)) != 0) {
                    PLAN_BAD("\n[%s] page filters=%u sort=%d desc=%d: %s", phase, fl, s, d,
                             sql ? plan : "no statement");
                    continue;
                }
                if (strstr(plan, "|SCAN w|"))
                    PLAN_BAD("\n[%s] page filters=%u sort=%d desc=%d scans workflows: %s\n  for %s",
                             phase, fl, s, d, plan, sql);
                if ((fl == 0 || fl == STORE_WF_F_READER) &&
                    (!strstr(plan, plan_sort_index(s)) || strstr(plan, "USE TEMP B-TREE")))
                    PLAN_BAD("\n[%s] page filters=%u sort=%d desc=%d not in %s order: %s\n  for %s",
                             phase, fl, s, d, plan_sort_index(s), plan, sql);
            }
        }
    }
#undef PLAN_BAD
    if (bad > 6 && len < msglen)
        snprintf(msg + len, msglen - len, "\n... %d failing plans in all", bad);
    return bad;
}

/* Stands in for the store's aop_lower() (plans do not depend on it). */
static void plan_lower(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sqlite3_result_value(ctx, argv[0]);
}

static void body_wf_plans(fixture *f)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    static char msg[65536];
    CHECK_INT(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_create_function(db, "aop_lower", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            plan_lower, NULL, NULL);
    int rc = sqlite3_exec(db, plan_seed, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        snprintf(msg, sizeof(msg), "seed: %s", err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        sqlite3_close_v2(db);
        unit_fail(__FILE__, __LINE__, msg);
        return;
    }
    /* As the store leaves it (it never runs ANALYZE): every statement. */
    int bad = check_plans(db, "no stats", true, msg, sizeof(msg));
    /* With statistics the list statements keep their plans too. (The counts
     * of filters 0, reader, search and reader+search then plan "SCAN w" on
     * SQLite 3.40, 90% of the rows being live; not checked, as the store
     * never gathers statistics.) */
    if (!bad && sqlite3_exec(db, "ANALYZE", NULL, NULL, NULL) != SQLITE_OK)
        bad = snprintf(msg, sizeof(msg), "ANALYZE: %s", sqlite3_errmsg(db)) > 0;
    if (!bad)
        bad = check_plans(db, "ANALYZE", false, msg, sizeof(msg));
    sqlite3_close_v2(db);
    if (bad) {
        unit_fail(__FILE__, __LINE__, msg);
        return;
    }
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM workflows"), PLAN_WORKFLOWS);
    /* The store's own statements agree with plain SQL on this data. */
    char u32[UUID_STR_LEN], sql[512];
    long long total = -1;
    store_workflow *ws = NULL;
    int n = -1;
    user_id(u32, 32); /* owns 40, named in 20 */
    char first[UUID_STR_LEN];
    store_wf_query q0 = {.limit = 5};
    CHECK_INT(store_workflow_list(f->s, &q0, &ws, &n, &total, &f->a), AOP_OK);
    CHECK_INT(n, 5);
    CHECK_INT(total, PLAN_WORKFLOWS - PLAN_WORKFLOWS / 10);
    CHECK_INT(sql_text(f->path, "SELECT id FROM workflows WHERE deleted_at IS NULL "
                                "ORDER BY created_at, id LIMIT 1 OFFSET 4", first, sizeof(first)), 0);
    CHECK_STR(ws[4].id, first);
    store_wf_query q = {.reader = u32, .sort = STORE_WF_SORT_NAME, .desc = true, .limit = 1000};
    CHECK_INT(store_workflow_list(f->s, &q, &ws, &n, &total, &f->a), AOP_OK);
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM workflows WHERE deleted_at IS NULL AND "
                               "(owner_id = '%s' OR id IN (SELECT workflow_id FROM "
                               "workflow_permissions WHERE user_id = '%s'))", u32, u32);
    CHECK_INT(total, sql_int(f->path, sql));
    CHECK_INT(total, 60);
    CHECK_INT(n, total);
    for (int i = 1; i < n; i++)
        CHECK(strcmp(ws[i - 1].name, ws[i].name) > 0 ||
              (strcmp(ws[i - 1].name, ws[i].name) == 0 && strcmp(ws[i - 1].id, ws[i].id) > 0));
}

static void workflow_list_query_plans_use_indexes(void)
{
    run_test(body_wf_plans, true, true);
}

/* ---- the driver layer ---- */

/* A statement is refused when the values given are not as many as its $n
 * (or one is of no known kind), and runs with the right ones; a step with
 * no text in a dialect answers AOP_OK there, with no row. */
static void body_values_checked(fixture *f)
{
    static const db_sql q = DB_BOTH("SELECT COUNT(*) FROM users WHERE id = $1 OR email = $2");
    static const db_sql q_sqlite = DB_PAIR("SELECT 7", NULL);
    db_op o = db_op_start(f->s, "test_values");
    long long n = -1;
    CHECK_INT(db_query_int(&o, &q, &n, "t", "a"), AOP_ERR_INTERNAL);
    CHECK_INT(db_query_int(&o, &q, &n, "ttt", "a", "b", "c"), AOP_ERR_INTERNAL);
    CHECK_INT(db_query_int(&o, &q, &n, "tx", "a", "b"), AOP_ERR_INTERNAL);
    CHECK_INT(db_query_int(&o, &q, &n, "tt", "a", "b"), AOP_OK);
    CHECK_INT(n, 0);
    CHECK_INT(db_query_int(&o, &q_sqlite, &n, ""), AOP_OK);
    CHECK_INT(n, f->pg ? 0 : 7);
    CHECK_INT(db_op_end(&o, AOP_OK), AOP_OK);
}

BOTH(statement_values_checked, body_values_checked, true, true)

/* ---- PostgreSQL only ---- */

/* Every version of the one list has PostgreSQL SQL too. */
static void pg_migrations_match_sqlite(void)
{
    for (size_t i = 0; i < store_migrations_len; i++)
        CHECK(migration_has_sql(&store_migrations[i], DB_PG));
}

#define MIGRATORS 3

typedef struct {
    const char *url;
    pthread_barrier_t *start;
    int applied;
    aop_err rc;
} migrator;

/* Opens a store of its own (as another process would) and migrates. */
static void *migrate_one(void *p)
{
    migrator *m = p;
    char err[256];
    store *s = store_open(m->url, SLOW_MS, err, sizeof(err));
    pthread_barrier_wait(m->start);
    m->rc = s ? store_migrate(s, &m->applied) : AOP_ERR_UNAVAILABLE;
    store_close(s);
    return NULL;
}

static void body_pg_migrate_together(fixture *f)
{
    pthread_barrier_t start;
    migrator m[MIGRATORS];
    pthread_t th[MIGRATORS];
    int started = 0, applied = 0;
    CHECK_INT(pthread_barrier_init(&start, NULL, MIGRATORS), 0);
    for (; started < MIGRATORS; started++) {
        m[started] = (migrator){.url = f->url, .start = &start, .rc = AOP_ERR_INTERNAL};
        if (pthread_create(&th[started], NULL, migrate_one, &m[started]) != 0)
            break;
    }
    for (int i = started; i < MIGRATORS; i++)
        pthread_barrier_wait(&start); /* stand in for the threads that did not start */
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    CHECK_INT(started, MIGRATORS);
    for (int i = 0; i < MIGRATORS; i++) {
        CHECK_INT(m[i].rc, AOP_OK);
        applied += m[i].applied;
    }
    CHECK_INT(applied, (long long)store_migrations_len);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM schema_migrations"),
              (long long)store_migrations_len);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM pg_tables WHERE tablename IN ('users', "
                               "'api_keys', 'workflows', 'executions', 'execution_nodes')"), 5);
}

static void pg_migrations_by_three_at_once(void)
{
    run_test_pg(body_pg_migrate_together, false, false);
}

#define KEY_CAP 10
#define KEY_THREADS 6
#define KEY_TRIES 5

typedef struct {
    store *s;
    int thread, n;
    bool full;
} key_try;

/* keys_api.c's insert_tx: count, then insert below the cap. */
static aop_err key_cap_tx(store *s, void *p)
{
    key_try *k = p;
    long long held = 0;
    aop_err rc = store_apikey_count(s, "0190a0b1-0000-7000-8000-000000000001", &held);
    if (rc != AOP_OK)
        return rc;
    k->full = held >= KEY_CAP;
    if (k->full)
        return AOP_OK;
    store_apikey key;
    char name[32], hash[32];
    memset(&key, 0, sizeof(key));
    tok_id(key.id, 4, k->thread * 100 + k->n);
    user_id(key.user_id, 1);
    snprintf(name, sizeof(name), "key %d-%d", k->thread, k->n);
    snprintf(hash, sizeof(hash), "hash-%d-%d", k->thread, k->n);
    key.name = name;
    str_copy(key.prefix, sizeof(key.prefix), "aop_x");
    key.scopes = "[\"read\"]";
    str_copy(key.created_at, sizeof(key.created_at), T_NOW);
    return store_apikey_insert(s, &key, hash);
}

typedef struct {
    store *s;
    int thread, made, full;
    aop_err failed;
    pthread_barrier_t *start;
} key_racer;

static void *race_keys(void *p)
{
    key_racer *r = p;
    pthread_barrier_wait(r->start);
    for (int i = 0; i < KEY_TRIES; i++) {
        key_try k = {.s = r->s, .thread = r->thread, .n = i};
        aop_err rc = store_tx(r->s, key_cap_tx, &k);
        if (rc != AOP_OK) {
            if (r->failed == AOP_OK)
                r->failed = rc;
        } else if (k.full) {
            r->full++;
        } else {
            r->made++;
        }
    }
    return NULL;
}

static void body_pg_key_cap(fixture *f)
{
    pthread_barrier_t start;
    key_racer r[KEY_THREADS];
    pthread_t th[KEY_THREADS];
    int started = 0, made = 0, full = 0;
    long long n = -1;
    CHECK_INT(add_user(f, 1), 0);
    CHECK_INT(pthread_barrier_init(&start, NULL, KEY_THREADS), 0);
    for (; started < KEY_THREADS; started++) {
        r[started] = (key_racer){.s = f->s, .thread = started + 1, .start = &start};
        if (pthread_create(&th[started], NULL, race_keys, &r[started]) != 0)
            break;
    }
    for (int i = started; i < KEY_THREADS; i++)
        pthread_barrier_wait(&start);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    CHECK_INT(started, KEY_THREADS);
    for (int i = 0; i < KEY_THREADS; i++) {
        CHECK_INT(r[i].failed, AOP_OK);
        made += r[i].made;
        full += r[i].full;
    }
    CHECK_INT(made, KEY_CAP);
    CHECK_INT(full, KEY_THREADS * KEY_TRIES - KEY_CAP);
    CHECK_INT(store_apikey_count(f->s, "0190a0b1-0000-7000-8000-000000000001", &n), AOP_OK);
    CHECK_INT(n, KEY_CAP);
}

static void pg_apikey_cap_holds_across_connections(void)
{
    run_test_pg(body_pg_key_cap, true, true);
}

#define BUMPERS 4
#define BUMPS 10

/* users.c's update_tx: read the user, change it, write it; the name counts
 * the updates. */
static aop_err bump_tx(store *s, void *p)
{
    arena *a = p;
    store_user u;
    char uid[UUID_STR_LEN];
    user_id(uid, 1);
    aop_err rc = store_user_get_by_id(s, uid, &u, a);
    if (rc != AOP_OK)
        return rc;
    long long n = 0;
    str_to_ll(u.name, 0, 1000000, &n);
    u.name = arena_printf(a, "%lld", n + 1);
    return store_user_update(s, &u);
}

typedef struct {
    store *s;
    aop_err failed;
} bumper;

static void *bump_many(void *p)
{
    bumper *b = p;
    arena a = {0};
    for (int i = 0; i < BUMPS; i++) {
        aop_err rc = store_tx(b->s, bump_tx, &a);
        if (rc != AOP_OK && b->failed == AOP_OK)
            b->failed = rc;
    }
    arena_free(&a);
    return NULL;
}

static void body_pg_user_rmw(fixture *f)
{
    store_user u;
    char email[64], name[64] = "0";
    user_make(&u, 1, email, sizeof(email), name, sizeof(name));
    str_copy(name, sizeof(name), "0");
    CHECK_INT(store_user_insert(f->s, &u), AOP_OK);
    bumper b[BUMPERS];
    pthread_t th[BUMPERS];
    int started = 0;
    for (; started < BUMPERS; started++) {
        b[started] = (bumper){.s = f->s};
        if (pthread_create(&th[started], NULL, bump_many, &b[started]) != 0)
            break;
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    CHECK_INT(started, BUMPERS);
    for (int i = 0; i < BUMPERS; i++)
        CHECK_INT(b[i].failed, AOP_OK);
    store_user out;
    CHECK_INT(store_user_get_by_id(f->s, u.id, &out, &f->a), AOP_OK);
    CHECK_STR(out.name, "40"); /* BUMPERS * BUMPS: no update lost */
}

static void pg_user_updates_in_tx_never_lost(void)
{
    run_test_pg(body_pg_user_rmw, true, true);
}

/* Ends every other session on f's database, from a connection of its own. */
static int kill_sessions(fixture *f)
{
    char v[32];
    return sql_text(f->path, "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    v, sizeof(v));
}

static void body_pg_reconnect(fixture *f)
{
    store_user out;
    char uid[UUID_STR_LEN];
    user_id(uid, 1);
    CHECK_INT(add_user(f, 1), 0);
    CHECK_INT(store_ping(f->s), AOP_OK);
    CHECK_INT(kill_sessions(f), 0);
    aop_err rc = store_user_get_by_id(f->s, uid, &out, &f->a);
    CHECK(rc == AOP_ERR_UNAVAILABLE || rc == AOP_OK);
    CHECK_INT(store_user_get_by_id(f->s, uid, &out, &f->a), AOP_OK);
    CHECK_STR(out.id, uid);

    /* Lost inside a transaction: unavailable until the rollback. */
    CHECK_INT(f->s->v->begin(f->s->h), AOP_OK);
    CHECK_INT(store_user_get_by_id(f->s, uid, &out, &f->a), AOP_OK);
    CHECK_INT(kill_sessions(f), 0);
    CHECK_INT(store_user_get_by_id(f->s, uid, &out, &f->a), AOP_ERR_UNAVAILABLE);
    CHECK_INT(store_ping(f->s), AOP_ERR_UNAVAILABLE);
    CHECK_INT(f->s->v->commit(f->s->h), AOP_ERR_UNAVAILABLE);
    CHECK_INT(f->s->v->rollback(f->s->h), AOP_OK);
    CHECK_INT(store_ping(f->s), AOP_OK);
    CHECK_INT(add_user(f, 2), 0);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM users"), 2);
}

static void pg_reconnects_after_terminate(void)
{
    run_test_pg(body_pg_reconnect, true, true);
}

/* The database goes away under an open store (dropped: every connect is
 * refused): calls answer unavailable, never hang nor crash, and the store
 * still closes cleanly. */
static void body_pg_down(fixture *f)
{
    CHECK_INT(store_ping(f->s), AOP_OK);
    unit_pg_drop(f->url);
    for (int i = 0; i < 50; i++)
        CHECK_INT(store_ping(f->s), AOP_ERR_UNAVAILABLE);
    usleep(300000); /* past the retry window: one more real try */
    CHECK_INT(store_ping(f->s), AOP_ERR_UNAVAILABLE);
    store_user out;
    CHECK_INT(store_user_get_by_email(f->s, "a@example.com", &out, &f->a), AOP_ERR_UNAVAILABLE);
}

static void pg_database_gone_is_unavailable(void)
{
    run_test_pg(body_pg_down, true, true);
}

static void body_pg_open_fails(fixture *f)
{
    char url[300], err[256] = "";
    /* A port nothing listens on (the server's, plus one, is a guess that
     * only needs to fail): the URL's password must not be in err. */
    snprintf(url, sizeof(url), "postgres://aop:S3cretPassw0rd@127.0.0.1:1/%s", "aop");
    store *s = store_open(url, SLOW_MS, err, sizeof(err));
    store_close(s);
    CHECK(s == NULL);
    CHECK(strstr(err, "DATABASE_URL") != NULL);
    CHECK(strstr(err, "127.0.0.1:1/aop") != NULL);
    CHECK(strstr(err, "S3cretPassw0rd") == NULL);
    /* A wrong password is refused by the server; the message keeps it out. */
    const char *at = strchr(f->url + 11, '@');
    CHECK(at != NULL);
    snprintf(url, sizeof(url), "postgres://aop:Wr0ngPassw0rd%s", at);
    s = store_open(url, SLOW_MS, err, sizeof(err));
    store_close(s);
    CHECK(s == NULL);
    CHECK(strstr(err, "Wr0ngPassw0rd") == NULL);
}

static void pg_open_fails_without_password_in_message(void)
{
    run_test_pg(body_pg_open_fails, false, false);
}

typedef struct {
    store *s;
    volatile int stop;
    pthread_mutex_t mu;
    char got[64][32];
    int n, nulls;
    aop_err rc;
} listener;

static void on_event(void *arg, const char *payload)
{
    listener *l = arg;
    pthread_mutex_lock(&l->mu);
    if (!payload)
        l->nulls++;
    else if (l->n < 64)
        str_copy(l->got[l->n++], sizeof(l->got[0]), payload);
    pthread_mutex_unlock(&l->mu);
}

static void *listen_run(void *p)
{
    listener *l = p;
    l->rc = store_listen(l->s, on_event, l, &l->stop);
    return NULL;
}

/* Whether l got payload (NULL: any reconnect call). */
static bool got_event(listener *l, const char *payload)
{
    bool found = false;
    pthread_mutex_lock(&l->mu);
    if (!payload)
        found = l->nulls > 0;
    for (int i = 0; payload && i < l->n; i++)
        found = found || strcmp(l->got[i], payload) == 0;
    pthread_mutex_unlock(&l->mu);
    return found;
}

/* Publishes payload outside a transaction every 50 ms until l has it; at
 * most 5 s. */
static bool publish_until_seen(listener *l, const char *payload)
{
    for (int i = 0; i < 100; i++) {
        if (store_publish(l->s, payload) == AOP_OK && (usleep(50000), got_event(l, payload)))
            return true;
    }
    return false;
}

static aop_err publish_tx(store *s, void *p)
{
    const char *payload = p;
    aop_err rc = store_publish(s, payload);
    if (rc != AOP_OK)
        return rc;
    return strcmp(payload, "rolled-back") == 0 ? AOP_ERR_VALIDATION : AOP_OK;
}

static void body_pg_events(fixture *f)
{
    listener l = {.s = f->s};
    pthread_t th;
    CHECK(store_shared(f->s));
    CHECK_INT(pthread_mutex_init(&l.mu, NULL), 0);
    if (pthread_create(&th, NULL, listen_run, &l) != 0) {
        pthread_mutex_destroy(&l.mu);
        CHECK(!"pthread_create");
    }
    bool ready = publish_until_seen(&l, "hello");
    CHECK_INT(store_tx(f->s, publish_tx, "rolled-back"), AOP_ERR_VALIDATION);
    CHECK_INT(store_tx(f->s, publish_tx, "committed"), AOP_OK);
    bool committed = publish_until_seen(&l, "after");
    /* The listener's connection is lost too: it reconnects, says so. */
    CHECK_INT(kill_sessions(f), 0);
    for (int i = 0; i < 100 && !got_event(&l, NULL); i++)
        usleep(50000);
    bool renewed = got_event(&l, NULL) && publish_until_seen(&l, "again");
    __atomic_store_n(&l.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    pthread_mutex_destroy(&l.mu);
    CHECK(ready);
    CHECK(committed);
    CHECK(got_event(&l, "committed"));
    CHECK(!got_event(&l, "rolled-back"));
    CHECK(renewed);
    CHECK_INT(l.rc, AOP_OK);
}

static void pg_publish_listen_delivers_committed_only(void)
{
    run_test_pg(body_pg_events, true, true);
}

const unit_test store_tests[] = {
    TEST(migrations_numbered),
    TEST(migrate_applies_once),
    TEST(migrate_applies_once_pg),
    TEST(migrate_records_row),
    TEST(migrate_records_row_pg),
    TEST(new_file_incremental_wal),
    TEST(migrate_refuses_newer_schema),
    TEST(migrate_refuses_newer_schema_pg),
    TEST(user_insert_get_roundtrip),
    TEST(user_insert_get_roundtrip_pg),
    TEST(user_duplicate_conflicts),
    TEST(user_duplicate_conflicts_pg),
    TEST(user_unknown_not_found),
    TEST(user_unknown_not_found_pg),
    TEST(tx_commits_and_rolls_back),
    TEST(tx_commits_and_rolls_back_pg),
    TEST(threads_insert_concurrently),
    TEST(threads_insert_concurrently_pg),
    TEST(open_unopenable_path_fails),
    TEST(open_creates_parent_dir),
    TEST(reopen_keeps_data),
    TEST(reopen_keeps_data_pg),
    TEST(family_extend_never_moves_back),
    TEST(family_extend_never_moves_back_pg),
    TEST(family_revoke_keeps_first_revocation),
    TEST(family_revoke_keeps_first_revocation_pg),
    TEST(refresh_get_reports_family_revoked),
    TEST(refresh_get_reports_family_revoked_pg),
    TEST(refresh_use_wins_once),
    TEST(refresh_use_wins_once_pg),
    TEST(refresh_use_one_winner_among_threads),
    TEST(refresh_use_one_winner_among_threads_pg),
    TEST(token_revoked_by_jti_or_family),
    TEST(token_revoked_by_jti_or_family_pg),
    TEST(families_revoke_user_returns_live_ones),
    TEST(families_revoke_user_returns_live_ones_pg),
    TEST(tokens_prune_deletes_only_expired),
    TEST(tokens_prune_deletes_only_expired_pg),
    TEST(apikey_insert_get_by_hash),
    TEST(apikey_insert_get_by_hash_pg),
    TEST(apikey_list_newest_first_paged),
    TEST(apikey_list_newest_first_paged_pg),
    TEST(apikey_delete_only_own_key),
    TEST(apikey_delete_only_own_key_pg),
    TEST(apikey_touch_sets_last_used),
    TEST(apikey_touch_sets_last_used_pg),
    TEST(user_list_search_case_insensitive),
    TEST(user_list_search_case_insensitive_pg),
    TEST(user_list_search_wildcards_literal),
    TEST(user_list_search_wildcards_literal_pg),
    TEST(user_list_search_folds_unicode),
    TEST(user_list_search_folds_unicode_pg),
    TEST(user_list_role_filter),
    TEST(user_list_role_filter_pg),
    TEST(user_list_sorts_both_directions),
    TEST(user_list_sorts_both_directions_pg),
    TEST(user_list_offset_limit_total),
    TEST(user_list_offset_limit_total_pg),
    TEST(user_update_writes_and_unknown_not_found),
    TEST(user_update_writes_and_unknown_not_found_pg),
    TEST(audit_insert_writes_fields),
    TEST(audit_insert_writes_fields_pg),
    TEST(workflow_insert_get_roundtrip),
    TEST(workflow_insert_get_roundtrip_pg),
    TEST(workflow_update_expected_version),
    TEST(workflow_update_expected_version_pg),
    TEST(workflow_delete_soft),
    TEST(workflow_delete_soft_pg),
    TEST(workflow_list_filters),
    TEST(workflow_list_filters_pg),
    TEST(workflow_list_sorts_and_pages),
    TEST(workflow_list_sorts_and_pages_pg),
    TEST(workflow_versions_list_get_conflict),
    TEST(workflow_versions_list_get_conflict_pg),
    TEST(workflow_summary_counts_and_tops),
    TEST(workflow_summary_counts_and_tops_pg),
    TEST(workflow_list_query_plans_use_indexes),
    TEST(pg_migrations_match_sqlite),
    TEST(pg_migrations_by_three_at_once),
    TEST(pg_apikey_cap_holds_across_connections),
    TEST(pg_user_updates_in_tx_never_lost),
    TEST(pg_reconnects_after_terminate),
    TEST(pg_open_fails_without_password_in_message),
    TEST(pg_database_gone_is_unavailable),
    TEST(pg_publish_listen_delivers_committed_only),
    TEST(statement_values_checked),
    TEST(statement_values_checked_pg),
    {NULL, NULL},
};
