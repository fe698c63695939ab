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

static void family_extend_never_moves_back(void)
{
    run_test(body_family_extend, true, true);
}

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

static void family_revoke_keeps_first_revocation(void)
{
    run_test(body_family_revoke, true, true);
}

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

static void refresh_get_reports_family_revoked(void)
{
    run_test(body_refresh_get, true, true);
}

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

static void refresh_use_wins_once(void)
{
    run_test(body_refresh_use, true, true);
}

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

static void refresh_use_one_winner_among_threads(void)
{
    run_test(body_refresh_race, true, true);
}

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

static void token_revoked_by_jti_or_family(void)
{
    run_test(body_token_revoked, true, true);
}

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

static void families_revoke_user_returns_live_ones(void)
{
    run_test(body_revoke_user, true, true);
}

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

static void tokens_prune_deletes_only_expired(void)
{
    run_test(body_prune, true, true);
}

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

static void apikey_insert_get_by_hash(void)
{
    run_test(body_apikey_fields, true, true);
}

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

static void apikey_list_newest_first_paged(void)
{
    run_test(body_apikey_list, true, true);
}

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

static void apikey_delete_only_own_key(void)
{
    run_test(body_apikey_delete, true, true);
}

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

static void apikey_touch_sets_last_used(void)
{
    run_test(body_apikey_touch, true, true);
}

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

static void user_list_search_case_insensitive(void)
{
    run_test(body_list_search, true, true);
}

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

static void user_list_search_folds_unicode(void)
{
    run_test(body_list_search_unicode, true, true);
}

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

static void user_list_search_wildcards_literal(void)
{
    run_test(body_list_wildcards, true, true);
}

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

static void user_list_role_filter(void)
{
    run_test(body_list_role, true, true);
}

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

static void user_list_sorts_both_directions(void)
{
    run_test(body_list_sort, true, true);
}

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

static void user_list_offset_limit_total(void)
{
    run_test(body_list_page, true, true);
}

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

static void user_update_writes_and_unknown_not_found(void)
{
    run_test(body_user_update, true, true);
}

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

static void audit_insert_writes_fields(void)
{
    run_test(body_audit, true, true);
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
    TEST(family_extend_never_moves_back),
    TEST(family_revoke_keeps_first_revocation),
    TEST(refresh_get_reports_family_revoked),
    TEST(refresh_use_wins_once),
    TEST(refresh_use_one_winner_among_threads),
    TEST(token_revoked_by_jti_or_family),
    TEST(families_revoke_user_returns_live_ones),
    TEST(tokens_prune_deletes_only_expired),
    TEST(apikey_insert_get_by_hash),
    TEST(apikey_list_newest_first_paged),
    TEST(apikey_delete_only_own_key),
    TEST(apikey_touch_sets_last_used),
    TEST(user_list_search_case_insensitive),
    TEST(user_list_search_wildcards_literal),
    TEST(user_list_search_folds_unicode),
    TEST(user_list_role_filter),
    TEST(user_list_sorts_both_directions),
    TEST(user_list_offset_limit_total),
    TEST(user_update_writes_and_unknown_not_found),
    TEST(audit_insert_writes_fields),
    {NULL, NULL},
};
