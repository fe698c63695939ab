/*
 * The unit-test runner.
 *
 *   build/test/unit [--list] [PREFIX...]
 *
 * Runs the tests whose suite (the name of its array, e.g. store_tests) or own
 * name starts with one of the PREFIXes; with none, every test. --list prints
 * the tests it would run instead, "suite test" one a line. A PREFIX that no
 * suite or test name starts with is refused.
 *
 * Prints a line per failed check and per failed test ("FAIL name"), then one
 * line per reason tests were skipped (with the suites they are in), and last
 * "N passed, N failed, N skipped". Exit status: 0 when nothing failed, 1 when
 * a test failed, 2 on bad usage or an unmatched PREFIX.
 *
 * With AOP_TEST_REQUIRE_SERVICES=1 a test that would be skipped for want of
 * PostgreSQL or Redis fails instead (unit_skip_service in unit.h).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "unit.h"

extern const unit_test core_tests[];
extern const unit_test config_tests[];
extern const unit_test router_tests[];
extern const unit_test forwarded_tests[];
extern const unit_test redact_tests[];
extern const unit_test credentials_tests[];
extern const unit_test credentials_store_tests[];
extern const unit_test triggers_store_tests[];
extern const unit_test users_tests[];
extern const unit_test store_tests[];
extern const unit_test log_metrics_tests[];
extern const unit_test jwt_tests[];
extern const unit_test limiter_tests[];
extern const unit_test cache_tests[];
extern const unit_test auth_tests[];
extern const unit_test definition_tests[];
extern const unit_test template_tests[];
extern const unit_test lock_tests[];
extern const unit_test engine_pure_tests[];
extern const unit_test exec_store_tests[];
extern const unit_test dag_tests[];
extern const unit_test redis_tests[];
extern const unit_test engine_hooks_tests[];
extern const unit_test render_budget_tests[];
extern const unit_test budget_store_tests[];
extern const unit_test sse_tests[];
extern const unit_test cron_tests[];
extern const unit_test tz_tests[];
extern const unit_test jschema_tests[];

typedef struct {
    const char *name; /* the array's name, which filters match */
    const unit_test *tests;
} suite;

#define SUITE(tests) {#tests, tests}

static const suite suites[] = {
    SUITE(core_tests),
    SUITE(config_tests),
    SUITE(router_tests),
    SUITE(forwarded_tests),
    SUITE(redact_tests),
    SUITE(credentials_tests),
    SUITE(credentials_store_tests),
    SUITE(triggers_store_tests),
    SUITE(users_tests),
    SUITE(store_tests),
    SUITE(log_metrics_tests),
    SUITE(jwt_tests),
    SUITE(limiter_tests),
    SUITE(cache_tests),
    SUITE(auth_tests),
    SUITE(definition_tests),
    SUITE(template_tests),
    SUITE(lock_tests),
    SUITE(engine_pure_tests),
    SUITE(exec_store_tests),
    SUITE(dag_tests),
    SUITE(redis_tests),
    SUITE(engine_hooks_tests),
    SUITE(render_budget_tests),
    SUITE(budget_store_tests),
    SUITE(sse_tests),
    SUITE(cron_tests),
    SUITE(tz_tests),
    SUITE(jschema_tests),
};

#define NSUITES (sizeof(suites) / sizeof(suites[0]))
_Static_assert(NSUITES <= 64, "skip_reason.suites is a 64-bit set");

#define WHY_MAX 200
#define REASONS_MAX 16

/* What the running test recorded. */
static int failed_now, skipped_now;
static char why_now[WHY_MAX];

/* The run's skips, one entry per reason (the last entry takes whatever does
 * not fit). */
typedef struct {
    char why[WHY_MAX];
    int count;
    uint64_t suites; /* bit i: suites[i] has a test skipped for this reason */
} skip_reason;

static skip_reason reasons[REASONS_MAX];
static int nreasons;

void unit_fail(const char *file, int line, const char *what)
{
    printf("  %s:%d: %s\n", file, line, what);
    failed_now = 1;
}

static bool services_required(void)
{
    const char *v = getenv("AOP_TEST_REQUIRE_SERVICES");
    return v && strcmp(v, "1") == 0;
}

/* The first reason given is the one kept. */
static void skip(const char *why, bool service)
{
    if (skipped_now)
        return;
    skipped_now = 1;
    snprintf(why_now, sizeof(why_now), "%s", why && why[0] ? why : "no reason given");
    if (service && services_required()) {
        printf("  %s, and AOP_TEST_REQUIRE_SERVICES=1 makes that a failure\n", why_now);
        failed_now = 1;
    }
}

void unit_skip(const char *why)
{
    skip(why, false);
}

void unit_skip_service(const char *why)
{
    skip(why, true);
}

/* Adds the running test's skip (in suites[s]) to its reason's entry. */
static void count_skip(size_t s)
{
    int i = 0;
    while (i < nreasons && strcmp(reasons[i].why, why_now) != 0)
        i++;
    if (i == nreasons) {
        if (nreasons == REASONS_MAX)
            snprintf(reasons[--i].why, WHY_MAX, "%s", "other reasons");
        else
            snprintf(reasons[nreasons++].why, WHY_MAX, "%s", why_now);
    }
    reasons[i].count++;
    reasons[i].suites |= UINT64_C(1) << s;
}

static void print_skips(void)
{
    for (int i = 0; i < nreasons; i++) {
        printf("skipped %d in", reasons[i].count);
        const char *sep = " ";
        for (size_t s = 0; s < NSUITES; s++) {
            if (reasons[i].suites & (UINT64_C(1) << s)) {
                printf("%s%s", sep, suites[s].name);
                sep = ", ";
            }
        }
        printf(": %s\n", reasons[i].why);
    }
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* true when no filter is given or s or t starts with one of them. */
static bool selected(const suite *s, const unit_test *t, char **filters, int nfilters)
{
    if (nfilters == 0)
        return true;
    for (int i = 0; i < nfilters; i++)
        if (starts_with(s->name, filters[i]) || starts_with(t->name, filters[i]))
            return true;
    return false;
}

/* The first filter no suite or test name starts with, or NULL. */
static const char *unmatched(char **filters, int nfilters)
{
    for (int i = 0; i < nfilters; i++) {
        bool found = false;
        for (size_t s = 0; s < NSUITES && !found; s++)
            for (const unit_test *t = suites[s].tests; t->name && !found; t++)
                found = selected(&suites[s], t, &filters[i], 1);
        if (!found)
            return filters[i];
    }
    return NULL;
}

/* Prints how to call the runner on f; returns status, the exit status. */
static int usage(FILE *f, int status)
{
    fprintf(f, "usage: unit [--list] [PREFIX...]\n"
               "  runs (or lists) the tests whose suite or test name starts with a PREFIX;\n"
               "  all of them without one\n");
    return status;
}

int main(int argc, char **argv)
{
    bool list = false;
    char **filters = argv + 1; /* the arguments that are not options, moved up */
    int nfilters = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0)
            list = true;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return usage(stdout, 0);
        else if (argv[i][0] == '-')
            return usage(stderr, 2);
        else
            filters[nfilters++] = argv[i];
    }
    const char *bad = unmatched(filters, nfilters);
    if (bad) {
        fprintf(stderr, "unit: no suite or test name starts with \"%s\" (--list shows them)\n",
                bad);
        return 2;
    }
    if (list) {
        for (size_t s = 0; s < NSUITES; s++)
            for (const unit_test *t = suites[s].tests; t->name; t++)
                if (selected(&suites[s], t, filters, nfilters))
                    printf("%s %s\n", suites[s].name, t->name);
        return 0;
    }

    int passed = 0, failed = 0, skipped = 0;
    /* Unbuffered, so a sanitizer ending the run early cannot swallow the report. */
    setvbuf(stdout, NULL, _IONBF, 0);
    /* Modules log; keep their lines out of the report. */
    if (log_setup(LOG_DEBUG, "build/test/unit.log", 0, 1) < 0)
        perror("build/test/unit.log");
    for (size_t s = 0; s < NSUITES; s++) {
        for (const unit_test *t = suites[s].tests; t->name; t++) {
            if (!selected(&suites[s], t, filters, nfilters))
                continue;
            failed_now = skipped_now = 0;
            t->fn();
            if (failed_now) {
                printf("FAIL %s\n", t->name);
                failed++;
            } else if (skipped_now) {
                count_skip(s);
                skipped++;
            } else {
                passed++;
            }
        }
    }
    print_skips();
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
