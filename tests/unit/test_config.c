/* Unit tests of configuration parsing and refusal. */
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "unit.h"

/* An environment made of "NAME=value" strings, NULL-terminated. */
static const char *lookup(const char *name, void *ctx)
{
    const char *const *env = ctx;
    size_t n = strlen(name);
    for (; *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

static int load(const char *const *env, config *c, char *err, size_t errlen)
{
    err[0] = '\0';
    return config_load(c, lookup, (void *)env, err, errlen);
}

#define SECRET_A "0123456789abcdef0123456789abcdef-a"
#define SECRET_B "0123456789abcdef0123456789abcdef-b"

static void config_defaults(void)
{
    const char *env[] = {NULL};
    config c;
    char err[256];
    CHECK_INT(load(env, &c, err, sizeof(err)), 0);
    int ok = c.app_env == APP_ENV_DEVELOPMENT && c.port == 3000 &&
             strcmp(c.host, "127.0.0.1") == 0 && strcmp(c.database_url, "sqlite://./var/aop.db") == 0 &&
             c.body_limit_bytes == 1048576 && c.rate_limit_max == 600 &&
             c.rate_limit_window_ms == 60000 && c.auth_rate_limit_max == 10 &&
             c.auth_rate_limit_window_ms == 900000 && c.bcrypt_cost == 12 &&
             c.access_token_ttl == 900 && c.refresh_token_ttl == 604800 && c.lock_wait_ms == 2000 &&
             c.execution_lease_ms == 30000 && !c.trust_proxy && !c.http_node_allow_private &&
             c.http_threads >= 1 && c.workers >= 1 && c.redis_url == NULL && c.log_level == 1;
    config_free(&c);
    CHECK(ok);
}

static void config_parses_values(void)
{
    const char *env[] = {"PORT=8080", "TRUST_PROXY=true", "LOG_LEVEL=debug", "HTTP_THREADS=3",
                         "FRONTEND_URL=http://a.example, https://b.example:8443", NULL};
    config c;
    char err[256];
    CHECK_INT(load(env, &c, err, sizeof(err)), 0);
    int ok = c.port == 8080 && c.trust_proxy == 1 && c.log_level == 0 && c.http_threads == 3;
    config_free(&c);
    CHECK(ok);
}

/* TRUST_PROXY: a number of hops 0..16, or a boolean word (true 1, false 0);
 * config_refuses_bad_values has the refusals. */
static void config_trust_proxy_hops(void)
{
    static const struct {
        const char *env;
        long long hops;
    } cases[] = {
        {"TRUST_PROXY=0", 0},    {"TRUST_PROXY=1", 1},     {"TRUST_PROXY=16", 16},
        {"TRUST_PROXY=true", 1}, {"TRUST_PROXY=FALSE", 0}, {"TRUST_PROXY=yes", 1},
        {"TRUST_PROXY=off", 0},  {"TRUST_PROXY=3", 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *env[] = {cases[i].env, NULL};
        config c;
        char err[256];
        CHECK_INT(load(env, &c, err, sizeof(err)), 0);
        long long hops = c.trust_proxy;
        config_free(&c);
        CHECK_INT(hops, cases[i].hops);
    }
}

/* Each bad environment must be refused with a message naming the variable. */
static void config_refuses_bad_values(void)
{
    static const struct {
        const char *env[4];
        const char *names;
    } cases[] = {
        {{"PORT=abc"}, "PORT"},
        {{"PORT=70000"}, "PORT"},
        {{"PORT=-1"}, "PORT"},
        {{"LOG_LEVEL=verbose"}, "LOG_LEVEL"},
        {{"APP_ENV=staging"}, "APP_ENV"},
        {{"BODY_LIMIT_BYTES=0"}, "BODY_LIMIT_BYTES"},
        {{"TRUST_PROXY=maybe"}, "TRUST_PROXY: must be a whole number from 0 to 16"},
        {{"TRUST_PROXY=17"}, "TRUST_PROXY: must be a whole number from 0 to 16"},
        {{"TRUST_PROXY=-1"}, "TRUST_PROXY: must be a whole number from 0 to 16"},
        {{"TRUST_PROXY=1.5"}, "TRUST_PROXY: must be a whole number from 0 to 16"},
        {{"TRUST_PROXY="}, "TRUST_PROXY: must be a whole number from 0 to 16"},
        {{"TRUST_PROXY= 2"}, "TRUST_PROXY: must be a whole number from 0 to 16"},
        {{"FRONTEND_URL=notaurl"}, "FRONTEND_URL"},
        {{"FRONTEND_URL=http://a.example/path"}, "FRONTEND_URL"},
        {{"DATABASE_URL=mysql://x"}, "DATABASE_URL"},
        {{"REDIS_URL=http://x"}, "REDIS_URL"},
        {{"LLM_BASE_URL=ftp://x"}, "LLM_BASE_URL"},
        {{"BCRYPT_COST=3"}, "BCRYPT_COST"},
        {{"ADMIN_EMAIL=a@b.example"}, "ADMIN_PASSWORD"},
        {{"ADMIN_EMAIL=nope", "ADMIN_PASSWORD=password1"}, "ADMIN_EMAIL"},
        {{"APP_ENV=production"}, "JWT_ACCESS_SECRET"},
        {{"APP_ENV=production", "JWT_ACCESS_SECRET=short", "JWT_REFRESH_SECRET=" SECRET_B},
         "JWT_ACCESS_SECRET"},
        {{"APP_ENV=production", "JWT_ACCESS_SECRET=" SECRET_A, "JWT_REFRESH_SECRET=short"},
         "JWT_REFRESH_SECRET"},
        {{"APP_ENV=production", "JWT_ACCESS_SECRET=" SECRET_A, "JWT_REFRESH_SECRET=" SECRET_A},
         "JWT_REFRESH_SECRET"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        config c;
        char err[256];
        int rc = load(cases[i].env, &c, err, sizeof(err));
        if (rc == 0)
            config_free(&c);
        if (rc != -1 || !strstr(err, cases[i].names)) {
            char m[400];
            snprintf(m, sizeof(m), "case %s: rc=%d err=\"%s\"", cases[i].env[0], rc, err);
            unit_fail(__FILE__, __LINE__, m);
            return;
        }
    }
}

static void config_production_rules(void)
{
    const char *weak[] = {"APP_ENV=production", "JWT_ACCESS_SECRET=" SECRET_A,
                          "JWT_REFRESH_SECRET=" SECRET_B, "BCRYPT_COST=9", NULL};
    const char *good[] = {"APP_ENV=production", "JWT_ACCESS_SECRET=" SECRET_A,
                          "JWT_REFRESH_SECRET=" SECRET_B, NULL};
    config c;
    char err[256];
    int rc_weak = load(weak, &c, err, sizeof(err));
    if (rc_weak == 0)
        config_free(&c);
    CHECK_INT(rc_weak, -1);
    CHECK(strstr(err, "BCRYPT_COST") != NULL);
    CHECK_INT(load(good, &c, err, sizeof(err)), 0);
    int prod = c.app_env == APP_ENV_PRODUCTION && c.bcrypt_cost == 12;
    config_free(&c);
    CHECK(prod);
}

/* Each of n one-variable environments is refused with a message naming
 * its variable. */
static void refuses_each(const char *const bad[][2], size_t n)
{
    config c;
    char err[256];
    for (size_t i = 0; i < n; i++) {
        int rc = load(bad[i], &c, err, sizeof(err));
        if (rc == 0)
            config_free(&c);
        CHECK_INT(rc, -1);
        CHECK(strncmp(err, bad[i][0], strcspn(bad[i][0], "=")) == 0);
    }
}

/* The execution budgets: defaults, bounds, and values that parse. */
static void config_memory_budgets(void)
{
    const char *none[] = {NULL};
    const char *set[] = {"NODE_OUTPUT_MAX_BYTES=65536", "EXECUTION_MEMORY_MAX_BYTES=262144",
                         "EXECUTION_STORED_MAX_BYTES=1048576", NULL};
    static const char *const bad[][2] = {{"NODE_OUTPUT_MAX_BYTES=0"},
                                         {"NODE_OUTPUT_MAX_BYTES=268435457"},
                                         {"EXECUTION_MEMORY_MAX_BYTES=1023"},
                                         {"EXECUTION_MEMORY_MAX_BYTES=lots"},
                                         {"EXECUTION_STORED_MAX_BYTES=536870913"}};
    config c;
    char err[256];
    CHECK_INT(load(none, &c, err, sizeof(err)), 0);
    int defaults = c.node_output_max_bytes == 2097152 &&
                   c.execution_memory_max_bytes == 67108864 &&
                   c.execution_stored_max_bytes == 16777216;
    config_free(&c);
    CHECK(defaults);
    CHECK_INT(load(set, &c, err, sizeof(err)), 0);
    int given = c.node_output_max_bytes == 65536 && c.execution_memory_max_bytes == 262144 &&
                c.execution_stored_max_bytes == 1048576;
    config_free(&c);
    CHECK(given);
    refuses_each(bad, sizeof(bad) / sizeof(bad[0]));
}

/* The limits of executions: defaults, bounds, and values that parse. */
static void config_execution_limits(void)
{
    const char *none[] = {NULL};
    const char *set[] = {"QUOTA_ACTIVE_EXECUTIONS=1", "WAIT_MAX_MS=0",
                         "WORKER_MAX_EXECUTIONS=2", NULL};
    static const char *const bad[][2] = {
        {"QUOTA_ACTIVE_EXECUTIONS=0"}, {"QUOTA_ACTIVE_EXECUTIONS=1000001"},
        {"WAIT_MAX_MS=-1"},            {"WAIT_MAX_MS=86400001"},
        {"WORKER_MAX_EXECUTIONS=0"},   {"WORKER_MAX_EXECUTIONS=4097"}};
    config c;
    char err[256];
    CHECK_INT(load(none, &c, err, sizeof(err)), 0);
    int defaults = c.quota_active_executions == 1000 && c.wait_max_ms == 60000 &&
                   c.worker_max_executions == 4096;
    config_free(&c);
    CHECK(defaults);
    CHECK_INT(load(set, &c, err, sizeof(err)), 0);
    int given = c.quota_active_executions == 1 && c.wait_max_ms == 0 &&
                c.worker_max_executions == 2;
    config_free(&c);
    CHECK(given);
    refuses_each(bad, sizeof(bad) / sizeof(bad[0]));
}

/* WORKFLOW_MAX_DEPTH: default, both ends of its range, one past each. */
static void config_workflow_max_depth(void)
{
    const char *none[] = {NULL}, *low[] = {"WORKFLOW_MAX_DEPTH=0", NULL},
               *high[] = {"WORKFLOW_MAX_DEPTH=64", NULL};
    static const char *const bad[][2] = {
        {"WORKFLOW_MAX_DEPTH=-1"}, {"WORKFLOW_MAX_DEPTH=65"}, {"WORKFLOW_MAX_DEPTH=deep"}};
    config c;
    char err[256];
    CHECK_INT(load(none, &c, err, sizeof(err)), 0);
    long long def = c.workflow_max_depth;
    config_free(&c);
    CHECK_INT(def, 8);
    CHECK_INT(load(low, &c, err, sizeof(err)), 0);
    long long lo = c.workflow_max_depth;
    config_free(&c);
    CHECK_INT(lo, 0);
    CHECK_INT(load(high, &c, err, sizeof(err)), 0);
    long long hi = c.workflow_max_depth;
    config_free(&c);
    CHECK_INT(hi, 64);
    refuses_each(bad, sizeof(bad) / sizeof(bad[0]));
}

/* LLM_DEFAULT_MAX_TOKENS: default, bounds, a value that parses. */
static void config_llm_default_max_tokens(void)
{
    const char *none[] = {NULL}, *set[] = {"LLM_DEFAULT_MAX_TOKENS=256", NULL};
    static const char *const bad[][2] = {{"LLM_DEFAULT_MAX_TOKENS=0"},
                                         {"LLM_DEFAULT_MAX_TOKENS=1000001"},
                                         {"LLM_DEFAULT_MAX_TOKENS=many"}};
    config c;
    char err[256];
    CHECK_INT(load(none, &c, err, sizeof(err)), 0);
    long long def = c.llm_default_max_tokens;
    config_free(&c);
    CHECK_INT(def, 4096);
    CHECK_INT(load(set, &c, err, sizeof(err)), 0);
    long long given = c.llm_default_max_tokens;
    config_free(&c);
    CHECK_INT(given, 256);
    refuses_each(bad, sizeof(bad) / sizeof(bad[0]));
}

const unit_test config_tests[] = {
    TEST(config_defaults),
    TEST(config_parses_values),
    TEST(config_trust_proxy_hops),
    TEST(config_refuses_bad_values),
    TEST(config_production_rules),
    TEST(config_memory_budgets),
    TEST(config_execution_limits),
    TEST(config_llm_default_max_tokens),
    TEST(config_workflow_max_depth),
    {NULL, NULL},
};
