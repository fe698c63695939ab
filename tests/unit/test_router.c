/* Unit tests of route matching. */
#include <stdio.h>

#include "http/router.h"
#include "unit.h"

static int match(const char *pattern, const char *path, router_param *p, int *n, arena *a)
{
    return router_match(pattern, path, p, n, a);
}

static void router_literal_paths(void)
{
    arena a = {0};
    router_param p[ROUTER_MAX_PARAMS];
    int n = -1;
    int ok1 = match("/health", "/health", p, &n, &a);
    int ok2 = match("/health", "/health/", p, &n, &a);
    int ok3 = match("/health", "/healthz", p, &n, &a);
    int ok4 = match("/health", "/", p, &n, &a);
    int ok5 = match("/", "/", p, &n, &a);
    int ok6 = match("/api/workflows", "/api", p, &n, &a);
    /* a segment that is a prefix of the pattern's, or has it as its prefix */
    int ok7 = match("/api/auth/me", "/api/auth/m", p, &n, &a);
    int ok8 = match("/api/auth/me", "/api/authx/me", p, &n, &a);
    int ok9 = match("/api/auth/me", "/api/aut/me", p, &n, &a);
    int ok10 = match("/api//me", "/api//me", p, &n, &a);
    arena_free(&a);
    CHECK(ok1);
    CHECK(!ok2);
    CHECK(!ok3);
    CHECK(!ok4);
    CHECK(ok5);
    CHECK(!ok6);
    CHECK(!ok7);
    CHECK(!ok8);
    CHECK(!ok9);
    CHECK(ok10);
}

static void router_params_are_captured(void)
{
    arena a = {0};
    router_param p[ROUTER_MAX_PARAMS];
    int n = 0;
    int ok = match("/api/workflows/:id/versions/:version", "/api/workflows/abc-1/versions/7", p,
                   &n, &a);
    char name0[16] = "", name1[16] = "", v0[16] = "", v1[16] = "";
    if (ok && n == 2) {
        snprintf(name0, sizeof(name0), "%.*s", (int)p[0].name_len, p[0].name);
        snprintf(name1, sizeof(name1), "%.*s", (int)p[1].name_len, p[1].name);
        snprintf(v0, sizeof(v0), "%s", p[0].value);
        snprintf(v1, sizeof(v1), "%s", p[1].value);
    }
    arena_free(&a);
    CHECK(ok);
    CHECK_INT(n, 2);
    CHECK_STR(name0, "id");
    CHECK_STR(v0, "abc-1");
    CHECK_STR(name1, "version");
    CHECK_STR(v1, "7");
}

static void router_param_needs_a_segment(void)
{
    arena a = {0};
    router_param p[ROUTER_MAX_PARAMS];
    int n = 0;
    int empty = match("/api/workflows/:id", "/api/workflows/", p, &n, &a);
    int extra = match("/api/workflows/:id", "/api/workflows/1/x", p, &n, &a);
    int literal_after = match("/api/workflows/:id/versions", "/api/workflows/1/version", p, &n, &a);
    int ok = match("/api/executions/workflow/:workflowId/stats",
                   "/api/executions/workflow/w1/stats", p, &n, &a);
    arena_free(&a);
    CHECK(!empty);
    CHECK(!extra);
    CHECK(!literal_after);
    CHECK(ok);
    CHECK_INT(n, 1);
}

/* A final "*" takes the rest of the path, slashes and all, or nothing; the
 * slash before it is still needed. */
static void router_star_takes_the_rest(void)
{
    arena a = {0};
    router_param p[ROUTER_MAX_PARAMS];
    int n = 0;
    char v[64] = "";
    int deep = match("/console/*", "/console/executions/abc/x", p, &n, &a);
    if (deep && n == 1)
        snprintf(v, sizeof(v), "%.*s=%s", (int)p[0].name_len, p[0].name, p[0].value);
    int one = match("/console/*", "/console/a", p, &n, &a);
    int empty = match("/console/*", "/console/", p, &n, &a);
    int bare = match("/console/*", "/console", p, &n, &a);
    int other = match("/console/*", "/consoles/a", p, &n, &a);
    arena_free(&a);
    CHECK(deep);
    CHECK_STR(v, "*=executions/abc/x");
    CHECK(one);
    CHECK(empty);
    CHECK(!bare);
    CHECK(!other);
}

/* Only a whole final segment "*" is the rest: "/:*" is a one-segment
 * parameter named "*", and "*" elsewhere is a literal segment. */
static void router_star_only_as_the_last_segment(void)
{
    arena a = {0};
    router_param p[ROUTER_MAX_PARAMS];
    int n = 0;
    char v[64] = "";
    int named = match("/:*", "/abc", p, &n, &a);
    if (named && n == 1)
        snprintf(v, sizeof(v), "%s", p[0].value);
    int named_deep = match("/:*", "/a/b", p, &n, &a);
    int middle = match("/a/*/b", "/a/x/b", p, &n, &a);
    int middle_literal = match("/a/*/b", "/a/*/b", p, &n, &a);
    arena_free(&a);
    CHECK(named);
    CHECK_STR(v, "abc");
    CHECK(!named_deep);
    CHECK(!middle);
    CHECK(middle_literal);
}

const unit_test router_tests[] = {
    TEST(router_star_only_as_the_last_segment),
    TEST(router_star_takes_the_rest),
    TEST(router_literal_paths),
    TEST(router_params_are_captured),
    TEST(router_param_needs_a_segment),
    {NULL, NULL},
};
