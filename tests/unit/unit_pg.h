/*
 * unit_pg.h - throwaway PostgreSQL databases for unit tests.
 *
 * AOP_TEST_PG_URL names a server and a role that may CREATE DATABASE
 * (make test sets it). Without it the PostgreSQL variants of the tests are
 * skipped (failed under AOP_TEST_REQUIRE_SERVICES=1, as make test runs them).
 */
#ifndef AOP_TESTS_UNIT_PG_H
#define AOP_TESTS_UNIT_PG_H

#include <stdbool.h>
#include <stddef.h>

/* getenv("AOP_TEST_PG_URL"), or NULL when unset or empty. */
const char *unit_pg_admin_url(void);
/* Creates a new empty database aop_unit_<pid>_<counter> and writes its URL
 * (the admin URL's credentials, host and port) into url. false when there
 * is no admin URL or the database cannot be made (printed). */
bool unit_pg_fresh(char *url, size_t n);
/* Drops the database url names (made by unit_pg_fresh), closing whatever
 * sessions are still on it. */
void unit_pg_drop(const char *url);
/* Runs sql (no parameters) on url; the first column of its first row into
 * out ("" when no row). 0, or -1 on failure. */
int unit_pg_text(const char *url, const char *sql, char *out, size_t outlen);
/* Marks the running test skipped for want of AOP_TEST_PG_URL (a failure
 * under AOP_TEST_REQUIRE_SERVICES=1: unit_skip_service in unit.h); the
 * caller returns from the test. */
void unit_pg_skip_note(void);

#endif
