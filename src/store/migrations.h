/*
 * migrations.h - numbered schema migrations embedded in the binary.
 *
 * Each backend has its own list (SQL dialects differ), in ascending version
 * order, starting at 1, never renumbered or edited once released: a change
 * to the schema is a new entry at the end. The store applies every version
 * the database has not recorded in schema_migrations, each in its own
 * transaction together with its schema_migrations row, so an entry's sql
 * may hold several statements but must not contain BEGIN, COMMIT or
 * ROLLBACK itself.
 */
#ifndef AOP_STORE_MIGRATIONS_H
#define AOP_STORE_MIGRATIONS_H

#include <stddef.h>

typedef struct {
    int version;      /* 1, 2, 3, … strictly increasing */
    const char *name; /* e.g. "001_users" */
    const char *sql;
} store_migration;

/* SQLite (src/store/sqlite_migrations.c). */
extern const store_migration store_sqlite_migrations[];
extern const size_t store_sqlite_migrations_len;
/* PostgreSQL (src/store/pg_migrations.c): the same versions and names. */
extern const store_migration store_pg_migrations[];
extern const size_t store_pg_migrations_len;

#endif
