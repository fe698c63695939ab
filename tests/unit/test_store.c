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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "store/migrations.h"
#include "store/store.h"
#include "unit.h"

#define SLOW_MS 1000000 /* never log slow operations in tests */

typedef struct {
    char dir[64];
    char path[128]; /* the database file */
    char url[160];  /* sqlite://path */
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

/* First column of the first row of sql, read with a connection of its own,
 * as text into out ("" when no row). 0, or -1 when the query fails. */
static int sql_text(const char *path, const char *sql, char *out, size_t outlen)
{
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

static void migrations_numbered(void)
{
    CHECK(store_sqlite_migrations_len > 0);
    for (size_t i = 0; i < store_sqlite_migrations_len; i++) {
        const store_migration *m = &store_sqlite_migrations[i];
        CHECK_INT(m->version, (long long)i + 1);
        CHECK(m->name && m->name[0]);
        CHECK(m->sql && m->sql[0]);
    }
    CHECK_STR(store_sqlite_migrations[0].name, "001_users");
}

static void body_migrate_twice(fixture *f)
{
    int applied = -1;
    CHECK_INT(store_migrate(f->s, &applied), AOP_OK);
    CHECK_INT(applied, (long long)store_sqlite_migrations_len);
    CHECK_INT(store_migrate(f->s, &applied), AOP_OK);
    CHECK_INT(applied, 0);
    CHECK_INT(store_ping(f->s), AOP_OK);
}

static void migrate_applies_once(void)
{
    run_test(body_migrate_twice, true, false);
}

static void body_schema_row(fixture *f)
{
    char v[64];
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM schema_migrations"),
              (long long)store_sqlite_migrations_len);
    CHECK_INT(sql_int(f->path, "SELECT MIN(version) FROM schema_migrations"), 1);
    CHECK_INT(sql_text(f->path, "SELECT name FROM schema_migrations WHERE version = 1", v,
                       sizeof(v)), 0);
    CHECK_STR(v, "001_users");
    CHECK_INT(sql_text(f->path, "SELECT applied_at FROM schema_migrations WHERE version = 1", v, sizeof(v)), 0);
    CHECK_INT(strlen(v), 24);
    CHECK(v[4] == '-' && v[10] == 'T' && v[19] == '.' && v[23] == 'Z');
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'users'"), 1);
    CHECK_INT(sql_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                               "name IN ('users_role_idx', 'users_created_at_idx')"), 2);
}

static void migrate_records_row(void)
{
    run_test(body_schema_row, true, true);
}

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

static void migrate_refuses_newer_schema(void)
{
    run_test(body_newer_schema, true, true);
}

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

static void user_insert_get_roundtrip(void)
{
    run_test(body_user_roundtrip, true, true);
}

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

static void user_duplicate_conflicts(void)
{
    run_test(body_user_conflict, true, true);
}

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

static void user_unknown_not_found(void)
{
    run_test(body_user_unknown, true, true);
}

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

static void tx_commits_and_rolls_back(void)
{
    run_test(body_tx, true, true);
}

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
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
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
    CHECK_INT(fds_open_on(wal), 1); /* the threads' connections closed as they exited */
    store_user out;
    CHECK_INT(store_user_get_by_email(f->s, "user2049@example.com", &out, &f->a), AOP_OK);
}

static void threads_insert_concurrently(void)
{
    run_test(body_threads, true, true);
}

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
    CHECK_INT(sql_int(f->path, "PRAGMA auto_vacuum"), 2);
}

static void reopen_keeps_data(void)
{
    run_test(body_reopen, true, true);
}

const unit_test store_tests[] = {
    TEST(migrations_numbered),
    TEST(migrate_applies_once),
    TEST(migrate_records_row),
    TEST(new_file_incremental_wal),
    TEST(migrate_refuses_newer_schema),
    TEST(user_insert_get_roundtrip),
    TEST(user_duplicate_conflicts),
    TEST(user_unknown_not_found),
    TEST(tx_commits_and_rolls_back),
    TEST(threads_insert_concurrently),
    TEST(open_unopenable_path_fails),
    TEST(open_creates_parent_dir),
    TEST(reopen_keeps_data),
    {NULL, NULL},
};
