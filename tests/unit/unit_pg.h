/*
 * unit_pg.h - throwaway PostgreSQL databases for unit tests.
 *
 * AOP_TEST_PG_URL names a server and a role that may CREATE DATABASE
 * (make test sets it). Without it the PostgreSQL variants of the tests are
 * skipped with a note.
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
/* Prints, once per run, that the PostgreSQL variants are skipped. */
void unit_pg_skip_note(void);

#endif
