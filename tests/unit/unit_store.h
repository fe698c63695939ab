/*
 * unit_store.h - a fresh, migrated store for a unit test, on SQLite (a file
 * in a directory made with mkdtemp under /tmp) or PostgreSQL (a database
 * from unit_pg_fresh), removed again afterwards whatever the test did.
 */
#ifndef AOP_TESTS_UNIT_STORE_H
#define AOP_TESTS_UNIT_STORE_H

#include <stdbool.h>

#include "store/store.h"

typedef struct {
    bool pg;
    char dir[64];
    char path[300]; /* SQLite: the file; PostgreSQL: the database's URL */
    store *s;
} unit_db;

/* Opens d on the backend pg names; false when the test cannot go on (a
 * failure or, without AOP_TEST_PG_URL, a skip, recorded already). Call
 * unit_db_close either way. */
bool unit_db_open(unit_db *d, bool pg);
void unit_db_close(unit_db *d);
/* The first column of the first row of sql (no parameters), read on a
 * connection of its own; -1 on failure or when there is no row. */
long long unit_db_int(const unit_db *d, const char *sql);

/* What most store tests hold: the store, and an arena freed after the test. */
typedef struct {
    unit_db db;
    store *s;
    arena a;
} unit_fixture;
/* Runs body on a fresh store of the backend pg names (nothing when it
 * cannot open: the failure or skip is recorded), then frees it all. */
void unit_fixture_run(void (*body)(unit_fixture *f), bool pg);

/* A test of both backends over run(body, pg): name on SQLite, name_pg on
 * PostgreSQL. */
#define UNIT_BOTH(run, name, body)       \
    static void name(void)               \
    {                                    \
        run(body, false);                \
    }                                    \
    static void name##_pg(void)          \
    {                                    \
        run(body, true);                 \
    }

#endif
