/*
 * test_credentials_store.c - credentials on the store (store/credentials.c),
 * each test on SQLite and, as <name>_pg, on PostgreSQL: the rows, unique names
 * per owner, the conditional change of a sealed value, lastUsedAt at most once
 * a minute, the rotation's pages and re-seals, the canary.
 */
#include <stdio.h>
#include <string.h>

#include "core/str.h"
#include "store/store.h"
#include "unit.h"
#include "unit_store.h"

typedef unit_fixture fixture;

#define BOTH(name, body) UNIT_BOTH(unit_fixture_run, name, body)

#define OWNER_A "0190a0b1-0000-7000-8000-00000000000a"
#define OWNER_B "0190a0b1-0000-7000-8000-00000000000b"

static const char *cid(fixture *f, int n)
{
    return arena_printf(&f->a, "0190a0b1-00c0-7000-8000-%012d", n);
}

/* Credential n of owner, named name, sealed as secret under key. */
static aop_err add(fixture *f, int n, const char *owner, const char *name, const char *secret,
                   const char *key)
{
    store_credential c = {.name = (char *)name, .description = "", .base_url = "",
                          .allowed_hosts = "[\"a.example\"]", .fields = "[\"token\"]",
                          .secret = (char *)secret};
    str_copy(c.id, sizeof(c.id), cid(f, n));
    str_copy(c.owner_id, sizeof(c.owner_id), owner);
    str_copy(c.type, sizeof(c.type), "http_bearer");
    str_copy(c.hint, sizeof(c.hint), "\xe2\x80\xa6" "abcd");
    str_copy(c.key_id, sizeof(c.key_id), key);
    str_copy(c.created_at, sizeof(c.created_at), "2026-12-01T00:00:00.000Z");
    str_copy(c.updated_at, sizeof(c.updated_at), c.created_at);
    return store_credential_insert(f->s, &c);
}

static void body_rows(fixture *f)
{
    CHECK(add(f, 1, OWNER_A, "ci", "v1.k1.AAAA", "k1") == AOP_OK);
    CHECK(add(f, 2, OWNER_A, "ci", "v1.k1.BBBB", "k1") == AOP_ERR_CONFLICT);
    CHECK(add(f, 2, OWNER_B, "ci", "v1.k1.BBBB", "k1") == AOP_OK);
    store_credential c;
    CHECK(store_credential_get(f->s, cid(f, 1), &c, &f->a) == AOP_OK);
    CHECK_STR(c.name, "ci");
    CHECK_STR(c.owner_id, OWNER_A);
    CHECK_STR(c.secret, "v1.k1.AAAA");
    CHECK_STR(c.hint, "\xe2\x80\xa6" "abcd");
    CHECK_STR(c.base_url, "");
    CHECK_STR(c.last_used_at, "");
    long long n = 0;
    CHECK(store_credential_count(f->s, OWNER_A, &n) == AOP_OK);
    CHECK_INT(n, 1);
    /* a change applies only over the sealed value it read */
    c.name = "renamed";
    c.secret = "v1.k2.CCCC";
    str_copy(c.key_id, sizeof(c.key_id), "k2");
    CHECK(store_credential_update(f->s, &c, "v1.k1.AAAA") == AOP_OK);
    CHECK(store_credential_update(f->s, &c, "v1.k1.AAAA") == AOP_ERR_VERSION_CONFLICT);
    str_copy(c.id, sizeof(c.id), cid(f, 9));
    CHECK(store_credential_update(f->s, &c, "x") == AOP_ERR_NOT_FOUND);
    CHECK(store_credential_get(f->s, cid(f, 1), &c, &f->a) == AOP_OK);
    CHECK_STR(c.name, "renamed");
    CHECK_STR(c.key_id, "k2");
    CHECK(store_credential_delete(f->s, cid(f, 1)) == AOP_OK);
    CHECK(store_credential_delete(f->s, cid(f, 1)) == AOP_ERR_NOT_FOUND);
    CHECK(store_credential_get(f->s, cid(f, 1), &c, &f->a) == AOP_ERR_NOT_FOUND);
}
BOTH(credential_rows_names_and_conditional_changes, body_rows)

static void body_list(fixture *f)
{
    CHECK(add(f, 1, OWNER_A, "b", "s1", "k") == AOP_OK);
    CHECK(add(f, 2, OWNER_B, "a", "s2", "k") == AOP_OK);
    CHECK(add(f, 3, OWNER_A, "a", "s3", "k") == AOP_OK);
    store_cred_query q = {.reader = OWNER_A, .sort = STORE_CRED_SORT_NAME, .limit = 10};
    store_credential *rows = NULL;
    int n = 0;
    long long total = 0;
    CHECK(store_credential_list(f->s, &q, &rows, &n, &total, &f->a) == AOP_OK);
    CHECK_INT(total, 2);
    CHECK_INT(n, 2);
    CHECK_STR(rows[0].id, cid(f, 3));
    CHECK_STR(rows[1].id, cid(f, 1));
    store_cred_query all = {.owner_id = OWNER_B, .limit = 10};
    CHECK(store_credential_list(f->s, &all, &rows, &n, &total, &f->a) == AOP_OK);
    CHECK_INT(total, 1);
    CHECK_STR(rows[0].id, cid(f, 2));
}
BOTH(credential_list_by_reader_and_owner, body_list)

static void body_touch(fixture *f)
{
    store_credential c;
    CHECK(add(f, 1, OWNER_A, "t", "s", "k") == AOP_OK);
    CHECK(store_credential_touch(f->s, cid(f, 1), "2026-12-01T10:00:00.000Z",
                                 "2026-12-01T09:59:00.000Z") == AOP_OK);
    /* 30 s later: not written again */
    CHECK(store_credential_touch(f->s, cid(f, 1), "2026-12-01T10:00:30.000Z",
                                 "2026-12-01T09:59:30.000Z") == AOP_OK);
    CHECK(store_credential_get(f->s, cid(f, 1), &c, &f->a) == AOP_OK);
    CHECK_STR(c.last_used_at, "2026-12-01T10:00:00.000Z");
    CHECK(store_credential_touch(f->s, cid(f, 1), "2026-12-01T10:01:01.000Z",
                                 "2026-12-01T10:00:01.000Z") == AOP_OK);
    CHECK(store_credential_get(f->s, cid(f, 1), &c, &f->a) == AOP_OK);
    CHECK_STR(c.last_used_at, "2026-12-01T10:01:01.000Z");
}
BOTH(credential_touch_once_a_minute, body_touch)

static void body_rotation(fixture *f)
{
    for (int i = 1; i <= 5; i++)
        CHECK(add(f, i, OWNER_A, arena_printf(&f->a, "c%d", i), arena_printf(&f->a, "old%d", i),
                  i == 3 ? "new" : "old") == AOP_OK);
    store_credential *rows = NULL;
    int n = 0;
    CHECK(store_credential_stale(f->s, "new", "", 2, &rows, &n, &f->a) == AOP_OK);
    CHECK_INT(n, 2);
    CHECK_STR(rows[0].id, cid(f, 1));
    CHECK_STR(rows[1].id, cid(f, 2));
    CHECK_STR(rows[1].secret, "old2");
    bool done = false;
    CHECK(store_credential_reseal(f->s, cid(f, 1), "old1", "new1", "new", &done) == AOP_OK && done);
    CHECK(store_credential_reseal(f->s, cid(f, 2), "changed", "new2", "new", &done) == AOP_OK);
    CHECK(!done);
    CHECK(store_credential_stale(f->s, "new", cid(f, 2), 2, &rows, &n, &f->a) == AOP_OK);
    CHECK_INT(n, 2); /* 3 is under the new key already */
    CHECK_STR(rows[0].id, cid(f, 4));
    CHECK_STR(rows[1].id, cid(f, 5));
    CHECK(store_credential_stale(f->s, "new", "", 10, &rows, &n, &f->a) == AOP_OK);
    CHECK_INT(n, 3); /* 2, 4, 5 */
}
BOTH(credential_rotation_pages_and_reseals, body_rotation)

static void body_canary(fixture *f)
{
    char *blob = NULL;
    CHECK(store_credential_canary_get(f->s, &blob, &f->a) == AOP_ERR_NOT_FOUND);
    CHECK(store_credential_canary_put(f->s, "first", "k1", "2026-12-01T00:00:00.000Z", false) ==
          AOP_OK);
    CHECK(store_credential_canary_put(f->s, "second", "k2", "2026-12-01T00:00:01.000Z", false) ==
          AOP_OK);
    CHECK(store_credential_canary_get(f->s, &blob, &f->a) == AOP_OK);
    CHECK_STR(blob, "first");
    CHECK(store_credential_canary_put(f->s, "rotated", "k2", "2026-12-01T00:00:02.000Z", true) ==
          AOP_OK);
    CHECK(store_credential_canary_get(f->s, &blob, &f->a) == AOP_OK);
    CHECK_STR(blob, "rotated");
}
BOTH(credential_canary_first_one_kept_rotation_replaces, body_canary)

const unit_test credentials_store_tests[] = {
    TEST(credential_rows_names_and_conditional_changes),
    TEST(credential_rows_names_and_conditional_changes_pg),
    TEST(credential_list_by_reader_and_owner),
    TEST(credential_list_by_reader_and_owner_pg),
    TEST(credential_touch_once_a_minute),
    TEST(credential_touch_once_a_minute_pg),
    TEST(credential_rotation_pages_and_reseals),
    TEST(credential_rotation_pages_and_reseals_pg),
    TEST(credential_canary_first_one_kept_rotation_replaces),
    TEST(credential_canary_first_one_kept_rotation_replaces_pg),
    {NULL, NULL},
};
