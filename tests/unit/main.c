/* The unit-test runner: runs every suite, prints one line per failure and a
 * closing "N passed, N failed"; exits non-zero when anything failed. */
#include <stdio.h>

#include "core/log.h"
#include "unit.h"

extern const unit_test core_tests[];
extern const unit_test config_tests[];
extern const unit_test router_tests[];
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

static const unit_test *const suites[] = {
    core_tests, config_tests, router_tests, users_tests, store_tests, log_metrics_tests,
    jwt_tests,  limiter_tests, cache_tests, auth_tests, definition_tests, template_tests,
    lock_tests, engine_pure_tests, exec_store_tests, dag_tests, redis_tests,
    engine_hooks_tests,
};

static int failed_now;

void unit_fail(const char *file, int line, const char *what)
{
    printf("  %s:%d: %s\n", file, line, what);
    failed_now = 1;
}

int main(void)
{
    int passed = 0, failed = 0;
    /* Unbuffered, so a sanitizer ending the run early cannot swallow the report. */
    setvbuf(stdout, NULL, _IONBF, 0);
    /* Modules log; keep their lines out of the report. */
    if (log_setup(LOG_DEBUG, "build/test/unit.log", 0, 1) < 0)
        perror("build/test/unit.log");
    for (size_t s = 0; s < sizeof(suites) / sizeof(suites[0]); s++) {
        for (const unit_test *t = suites[s]; t->name; t++) {
            failed_now = 0;
            t->fn();
            if (failed_now) {
                printf("FAIL %s\n", t->name);
                failed++;
            } else {
                passed++;
            }
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
