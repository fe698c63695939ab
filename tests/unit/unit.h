/*
 * unit.h - a small unit-test harness.
 *
 * A test is a void function; a CHECK that fails records the place and returns
 * from it, and SKIP records why the test cannot run here and returns. Each
 * tests/unit/test_*.c file exports a NULL-terminated unit_test array that
 * main.c lists by name. The runner's last line reads
 * "N passed, N failed, N skipped" (main.c says what it accepts).
 */
#ifndef AOP_TESTS_UNIT_H
#define AOP_TESTS_UNIT_H

#include <string.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} unit_test;

/* Records a failure of the running test at file:line (printed at once). */
void unit_fail(const char *file, int line, const char *what);

/* Records the running test as skipped, for why (copied; the report groups
 * skips by reason). A failure recorded in the same test wins. The caller
 * returns from the test right after: SKIP does both. */
void unit_skip(const char *why);

/* A skip for want of a server that `make test` always starts (PostgreSQL,
 * Redis): with AOP_TEST_REQUIRE_SERVICES=1 in the environment it is recorded
 * as a failure instead, so that a run which should have reached the server
 * cannot end green. */
void unit_skip_service(const char *why);

#define SKIP(why)           \
    do {                    \
        unit_skip(why);     \
        return;             \
    } while (0)

#define CHECK(cond)                                   \
    do {                                              \
        if (!(cond)) {                                \
            unit_fail(__FILE__, __LINE__, #cond);     \
            return;                                   \
        }                                             \
    } while (0)

#define CHECK_INT(a, b)                                                   \
    do {                                                                  \
        long long a_ = (long long)(a), b_ = (long long)(b);               \
        if (a_ != b_) {                                                   \
            char m_[256];                                                 \
            snprintf(m_, sizeof(m_), "%s == %s (%lld != %lld)", #a, #b, a_, b_); \
            unit_fail(__FILE__, __LINE__, m_);                            \
            return;                                                       \
        }                                                                 \
    } while (0)

#define CHECK_STR(a, b)                                                   \
    do {                                                                  \
        const char *a_ = (a), *b_ = (b);                                  \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                          \
            char m_[512];                                                 \
            snprintf(m_, sizeof(m_), "%s == %s (\"%s\" != \"%s\")", #a, #b, \
                     a_ ? a_ : "(null)", b_ ? b_ : "(null)");             \
            unit_fail(__FILE__, __LINE__, m_);                            \
            return;                                                       \
        }                                                                 \
    } while (0)

#define TEST(fn) {#fn, fn}

/* Checks shared by the backends of a port (test_cache.c). */
struct cache;
void check_cache_get_many(struct cache *c);

#endif
