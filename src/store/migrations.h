/*
 * migrations.h - numbered schema migrations embedded in the binary.
 *
 * One list for both dialects, in ascending version order, starting at 1,
 * never renumbered or edited once released: a change to the schema is a
 * new entry at the end. An entry's SQL is a list of parts (db_sql pairs:
 * DB_BOTH where the dialects agree, a NULL side where a part exists in one
 * only), in which the column types {INT}, {REAL}, {JSON} and {JSONB} stand
 * for each dialect's own (see types[] in migrations.c). migrate.c applies
 * every version the database has not recorded in schema_migrations, each in
 * its own transaction together with its schema_migrations row, so an
 * entry's SQL may hold several statements but must not contain BEGIN,
 * COMMIT or ROLLBACK itself.
 */
#ifndef AOP_STORE_MIGRATIONS_H
#define AOP_STORE_MIGRATIONS_H

#include <stddef.h>

#include "store/db.h"

typedef struct {
    int version;          /* 1, 2, 3, … strictly increasing */
    const char *name;     /* e.g. "001_users" */
    const db_sql *parts;  /* ends with {0} */
} store_migration;

extern const store_migration store_migrations[];
extern const size_t store_migrations_len;

/* m's SQL in dialect (DB_SQLITE, DB_PG): its parts with the types written
 * out. The caller frees it. */
char *store_migration_sql(const store_migration *m, int dialect);

#endif
