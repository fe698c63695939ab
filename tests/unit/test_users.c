/* Unit tests of password hashing and user validation. */
#include <stdio.h>
#include <string.h>

#include "auth/password.h"
#include "core/str.h"
#include "auth/users.h"
#include "unit.h"

static void password_hash_and_verify(void)
{
    char h[PASSWORD_HASH_MAX], h2[PASSWORD_HASH_MAX];
    CHECK_INT(auth_password_hash("correct horse", 4, h), AOP_OK);
    CHECK_INT(auth_password_hash("correct horse", 4, h2), AOP_OK);
    CHECK(strncmp(h, "$2b$04$", 7) == 0);
    CHECK(strcmp(h, h2) != 0); /* fresh salt each time */
    CHECK(auth_password_verify("correct horse", h));
    CHECK(!auth_password_verify("correct horsE", h));
    CHECK(!auth_password_verify("correct horse", "not a hash"));
}

/* Node's bcrypt writes $2a$ or $2b$; both must verify, so users can be migrated. */
static void password_accepts_2a_and_2b(void)
{
    char h[PASSWORD_HASH_MAX];
    CHECK_INT(auth_password_hash("password123", 4, h), AOP_OK);
    /* $2a$ (older Node bcrypt) and $2b$ hashes of the same salt agree. */
    char a[PASSWORD_HASH_MAX];
    memcpy(a, h, sizeof(a));
    a[2] = 'a';
    CHECK(auth_password_verify("password123", a));
}

/* The direct writer and the jansson tree say the same thing, escapes and
 * nulls included. */
static void users_write_json_matches_tree(void)
{
    store_user u;
    memset(&u, 0, sizeof(u));
    str_copy(u.id, sizeof(u.id), "01a21418-4302-745a-a8da-ee7c0e82a6ae");
    u.email = (char *)"a\"b\\c@example.com";
    u.name = (char *)"Ann \x01\n\xc3\xa9";
    u.role = (char *)"viewer";
    u.preferences = (char *)"{\"theme\":\"dark\",\"n\":[1,2]}";
    u.is_active = false;
    str_copy(u.created_at, sizeof(u.created_at), "2026-11-25T16:38:35.123Z");
    str_copy(u.updated_at, sizeof(u.updated_at), "2026-11-25T16:38:36.000Z");
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            str_copy(u.last_login_at, sizeof(u.last_login_at), "2026-11-25T17:00:00.000Z");
        buf b;
        buf_init(&b, 0);
        CHECK_INT(users_write_json(&u, &b), 0);
        json_error_t e;
        json_t *got = json_loads(b.data, 0, &e);
        json_t *want = users_to_json(&u);
        int same = got && json_equal(got, want);
        json_decref(got);
        json_decref(want);
        buf_free(&b);
        CHECK(same);
    }
}

static int problems(const users_new *n, const char *field)
{
    json_t *d = json_array();
    int count = users_validate(n, d);
    int named = 0;
    for (size_t i = 0; i < json_array_size(d); i++)
        named |= strcmp(json_string_value(json_object_get(json_array_get(d, i), "field")),
                        field) == 0;
    json_decref(d);
    return named ? count : -count;
}

static void users_validation_collects_every_problem(void)
{
    users_new ok = {"a@b.example", "Ann", "user", "password1"};
    json_t *d = json_array();
    CHECK_INT(users_validate(&ok, d), 0);
    json_decref(d);

    users_new all_bad = {"nope", "", "root", "short"};
    d = json_array();
    int n = users_validate(&all_bad, d);
    json_decref(d);
    CHECK_INT(n, 4);

    users_new long_pw = {"a@b.example", "Ann", "user",
                         "0123456789012345678901234567890123456789012345678901234567890123456789012"};
    CHECK(problems(&long_pw, "password") == 1);
    users_new bad_email = {"a b@c.example", "Ann", "user", "password1"};
    CHECK(problems(&bad_email, "email") == 1);
    users_new no_dot = {"a@localhost", "Ann", "user", "password1"};
    CHECK(problems(&no_dot, "email") == 1);
    users_new viewer = {"v@b.example", "Vi", "viewer", "12345678"};
    CHECK(problems(&viewer, "role") == 0);
}

const unit_test users_tests[] = {
    TEST(users_write_json_matches_tree),
    TEST(password_hash_and_verify),
    TEST(password_accepts_2a_and_2b),
    TEST(users_validation_collects_every_problem),
    {NULL, NULL},
};
