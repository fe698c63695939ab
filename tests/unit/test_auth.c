/*
 * test_auth.c - the user cache (auth/user_cache.c) over a real SQLite store
 * and the in-process cache.
 *
 * Each test gets a fresh database in a mkdtemp directory with one user in
 * it, removed afterwards even when a CHECK failed. Rows are changed behind
 * the cache's back with sqlite3 directly, as another process or a forgotten
 * user_cache_changed() would. A cache wrapper with a hook before add() plays
 * the writer of a race: it changes the user just after a reader has read the
 * store and just before that reader fills the cache.
 */
#include <ftw.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app.h"
#include "auth/user_cache.h"
#include "core/buf.h"
#include "core/str.h"
#include "infra/cache.h"
#include "store/store.h"
#include "unit.h"

#define SLOW_MS 1000000
#define USER_ID "0190a0b1-0000-7000-8000-000000000001"
#define USER_HASH "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"

/* The hook: the next add() whose key contains `when` first sets the user's
 * role to `role` in the database and calls user_cache_changed(). */
typedef struct {
    cache *inner;
    const app_ctx *app;
    const char *path;
    const char *when; /* NULL: not armed */
    const char *role;
    int fired;
} hook;

typedef struct {
    char dir[64];
    char path[128];
    store *s;
    hook hk;
    app_ctx app;
    arena a;
} fixture;

typedef void (*test_body)(fixture *f);

/* Runs sql on its own connection; 0 or -1. */
static int sql_run(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
             sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
             sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close_v2(db);
    return ok ? 0 : -1;
}

static int set_role(const char *path, const char *role)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "UPDATE users SET role = '%s' WHERE id = '" USER_ID "'", role);
    return sql_run(path, sql);
}

/* ---- the hooked cache backend: forwards to an in-process cache ---- */

static aop_err hk_get(void *h, const char *key, char **val, size_t *len)
{
    return cache_get(((hook *)h)->inner, key, val, len);
}

static aop_err hk_set(void *h, const char *key, const void *val, size_t len, long long ttl_ms)
{
    return cache_set(((hook *)h)->inner, key, val, len, ttl_ms);
}

static aop_err hk_add(void *h, const char *key, const void *val, size_t len, long long ttl_ms)
{
    hook *k = h;
    if (k->when && strstr(key, k->when)) {
        k->when = NULL;
        if (set_role(k->path, k->role) == 0)
            k->fired = 1;
        user_cache_changed(k->app, USER_ID);
    }
    return cache_add(k->inner, key, val, len, ttl_ms);
}

static aop_err hk_del(void *h, const char *key)
{
    return cache_del(((hook *)h)->inner, key);
}

static aop_err hk_incr(void *h, const char *key, long long *out)
{
    return cache_incr(((hook *)h)->inner, key, out);
}

static aop_err hk_counter(void *h, const char *key, long long *out)
{
    return cache_counter(((hook *)h)->inner, key, out);
}

static void hk_close(void *h)
{
    cache_close(((hook *)h)->inner);
}

static const cache_vtbl hook_vtbl = {
    .name = "hook", .get = hk_get, .set = hk_set, .add = hk_add,
    .del = hk_del, .incr = hk_incr, .counter = hk_counter, .close = hk_close,
};

/* ---- fixture ---- */

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(p);
}

static int insert_user(fixture *f)
{
    store_user u;
    memset(&u, 0, sizeof(u));
    str_copy(u.id, sizeof(u.id), USER_ID);
    u.email = "ulrich@example.com";
    u.name = "Ulrich";
    u.password_hash = USER_HASH;
    u.role = "user";
    u.preferences = "{\"theme\":\"dark\"}";
    u.is_active = false;
    str_copy(u.created_at, sizeof(u.created_at), "2026-01-02T03:04:05.006Z");
    str_copy(u.updated_at, sizeof(u.updated_at), "2026-01-03T03:04:05.007Z");
    str_copy(u.last_login_at, sizeof(u.last_login_at), "2026-01-04T03:04:05.008Z");
    return store_user_insert(f->s, &u) == AOP_OK ? 0 : -1;
}

/* A fresh store with the user in it and a hooked cache; runs body; cleans up. */
static void run_test(test_body body, bool with_user)
{
    fixture f;
    char err[256] = "";
    int applied = 0;
    memset(&f, 0, sizeof(f));
    str_copy(f.dir, sizeof(f.dir), "/tmp/aop-auth-XXXXXX");
    if (!mkdtemp(f.dir)) {
        unit_fail(__FILE__, __LINE__, "mkdtemp");
        return;
    }
    snprintf(f.path, sizeof(f.path), "%s/aop.db", f.dir);
    char url[160];
    snprintf(url, sizeof(url), "sqlite://%s", f.path);
    f.s = store_open(url, SLOW_MS, err, sizeof(err));
    f.hk.inner = cache_mem_new(1 << 20);
    f.hk.app = &f.app;
    f.hk.path = f.path;
    f.app.store = f.s;
    f.app.cache = cache_new(&hook_vtbl, &f.hk);
    if (!f.s)
        unit_fail(__FILE__, __LINE__, err);
    else if (store_migrate(f.s, &applied) != AOP_OK)
        unit_fail(__FILE__, __LINE__, "store_migrate");
    else if (with_user && insert_user(&f) != 0)
        unit_fail(__FILE__, __LINE__, "insert_user");
    else
        body(&f);
    arena_free(&f.a);
    cache_close(f.app.cache);
    store_close(f.s);
    nftw(f.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* The role user_cache_get answers, or "!" when it fails. */
static const char *cached_role(fixture *f)
{
    store_user u;
    return user_cache_get(&f->app, USER_ID, &u, &f->a) == AOP_OK ? u.role : "!";
}

/* 1 when the raw cache value under key holds text. */
static int raw_contains(fixture *f, const char *key, const char *text)
{
    char *v = NULL;
    size_t len = 0;
    if (cache_get(f->app.cache, key, &v, &len) != AOP_OK)
        return 0;
    int found = memmem(v, len, text, strlen(text)) != NULL;
    free(v);
    return found;
}

/* ---- tests ---- */

static void body_fields(fixture *f)
{
    store_user u;
    for (int pass = 0; pass < 2; pass++) { /* from the store, then from the cache */
        memset(&u, 0x55, sizeof(u));
        CHECK_INT(user_cache_get(&f->app, USER_ID, &u, &f->a), AOP_OK);
        CHECK_STR(u.id, USER_ID);
        CHECK_STR(u.email, "ulrich@example.com");
        CHECK_STR(u.name, "Ulrich");
        CHECK_STR(u.password_hash, "");
        CHECK_STR(u.role, "user");
        CHECK_STR(u.preferences, "{\"theme\":\"dark\"}");
        CHECK(!u.is_active);
        CHECK_STR(u.created_at, "2026-01-02T03:04:05.006Z");
        CHECK_STR(u.updated_at, "2026-01-03T03:04:05.007Z");
        CHECK_STR(u.last_login_at, "2026-01-04T03:04:05.008Z");
        CHECK(raw_contains(f, "user:" USER_ID, "ulrich@example.com"));
    }
}

static void user_cache_returns_every_field(void)
{
    run_test(body_fields, true);
}

static void body_caches(fixture *f)
{
    CHECK_STR(cached_role(f), "user");
    CHECK_INT(set_role(f->path, "admin"), 0); /* behind the cache's back */
    CHECK_STR(cached_role(f), "user");
    CHECK_STR(cached_role(f), "user");
}

static void user_cache_serves_cached_row(void)
{
    run_test(body_caches, true);
}

static void body_changed(fixture *f)
{
    CHECK_STR(cached_role(f), "user");
    CHECK_INT(set_role(f->path, "admin"), 0);
    user_cache_changed(&f->app, USER_ID);
    CHECK_STR(cached_role(f), "admin");
    /* Cached again under the new stamp. */
    CHECK_INT(set_role(f->path, "viewer"), 0);
    CHECK_STR(cached_role(f), "admin");
    user_cache_changed(&f->app, USER_ID);
    CHECK_STR(cached_role(f), "viewer");
}

static void user_cache_changed_shows_new_row(void)
{
    run_test(body_changed, true);
}

static void body_changed_first(fixture *f)
{
    user_cache_changed(&f->app, USER_ID); /* a change before anything was cached */
    CHECK_STR(cached_role(f), "user");
}

static void user_cache_changed_before_first_get(void)
{
    run_test(body_changed_first, true);
}

/* The user changes between a reader's store read and its fill of "user:<id>"
 * (no marker yet): the reader got the old row, the next get the new one. */
static void body_race_plain(fixture *f)
{
    f->hk.when = "user:" USER_ID;
    f->hk.role = "admin";
    CHECK_STR(cached_role(f), "user"); /* read before the change */
    CHECK(f->hk.fired);
    CHECK_STR(cached_role(f), "admin");
    CHECK_STR(cached_role(f), "admin");
}

static void user_cache_stale_fill_never_served(void)
{
    run_test(body_race_plain, true);
}

/* The same race one change later: the reader saw a marker and fills the key
 * that marker names, but a newer change has replaced the marker. */
static void body_race_stamped(fixture *f)
{
    user_cache_changed(&f->app, USER_ID);
    f->hk.when = "@";
    f->hk.role = "viewer";
    CHECK_STR(cached_role(f), "user");
    CHECK(f->hk.fired);
    CHECK_STR(cached_role(f), "viewer");
    CHECK_STR(cached_role(f), "viewer");
}

static void user_cache_stale_stamped_fill_never_served(void)
{
    run_test(body_race_stamped, true);
}

/* A stale reader's own add of the old encoded row over the marker is refused. */
static void body_old_row_readded(fixture *f)
{
    char *old = NULL;
    size_t len = 0;
    CHECK_STR(cached_role(f), "user");
    CHECK_INT(cache_get(f->app.cache, "user:" USER_ID, &old, &len), AOP_OK);
    CHECK_INT(set_role(f->path, "admin"), 0);
    user_cache_changed(&f->app, USER_ID);
    aop_err added = cache_add(f->app.cache, "user:" USER_ID, old, len, 60000);
    free(old);
    CHECK_INT(added, AOP_ERR_CONFLICT);
    CHECK_STR(cached_role(f), "admin");
}

static void user_cache_marker_blocks_old_row(void)
{
    run_test(body_old_row_readded, true);
}

/* The current marker's key "user:<id>@<stamp>" into key; 0 or -1. */
static int stamped_key(fixture *f, char *key, size_t keylen)
{
    char *v = NULL;
    size_t len = 0;
    if (cache_get(f->app.cache, "user:" USER_ID, &v, &len) != AOP_OK)
        return -1;
    int ok = len == 33 && v[0] == 'M';
    if (ok)
        snprintf(key, keylen, "user:" USER_ID "@%s", v + 1);
    free(v);
    return ok ? 0 : -1;
}

static void body_no_hash(fixture *f)
{
    char key[128];
    CHECK_STR(cached_role(f), "user");
    CHECK(raw_contains(f, "user:" USER_ID, "ulrich@example.com")); /* the row is there */
    CHECK(!raw_contains(f, "user:" USER_ID, USER_HASH));
    CHECK(!raw_contains(f, "user:" USER_ID, "$2b$"));
    user_cache_changed(&f->app, USER_ID);
    CHECK_STR(cached_role(f), "user");
    CHECK_INT(stamped_key(f, key, sizeof(key)), 0);
    CHECK(raw_contains(f, key, "ulrich@example.com"));
    CHECK(!raw_contains(f, key, "$2b$"));
}

static void user_cache_never_holds_password_hash(void)
{
    run_test(body_no_hash, true);
}

static void body_unknown(fixture *f)
{
    store_user u;
    char *v = NULL;
    size_t len = 0;
    CHECK_INT(user_cache_get(&f->app, USER_ID, &u, &f->a), AOP_ERR_NOT_FOUND);
    CHECK_INT(cache_get(f->app.cache, "user:" USER_ID, &v, &len), AOP_ERR_NOT_FOUND);
    CHECK_INT(insert_user(f), 0); /* no absence was remembered */
    CHECK_STR(cached_role(f), "user");
}

static void user_cache_unknown_user_not_cached(void)
{
    run_test(body_unknown, false);
}

const unit_test auth_tests[] = {
    TEST(user_cache_returns_every_field),
    TEST(user_cache_serves_cached_row),
    TEST(user_cache_changed_shows_new_row),
    TEST(user_cache_changed_before_first_get),
    TEST(user_cache_stale_fill_never_served),
    TEST(user_cache_stale_stamped_fill_never_served),
    TEST(user_cache_marker_blocks_old_row),
    TEST(user_cache_never_holds_password_hash),
    TEST(user_cache_unknown_user_not_cached),
    {NULL, NULL},
};
