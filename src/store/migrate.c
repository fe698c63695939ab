/*
 * migrate.c - applying the numbered migrations (migrations.h), the same
 * way on both databases.
 *
 * Each migration runs in a transaction of its own with its schema_migrations
 * row, after checking under the migrations' lock that no other process
 * applied it meanwhile: on SQLite the write lock BEGIN IMMEDIATE takes, on
 * PostgreSQL a transaction-level advisory lock (which also keeps concurrent
 * CREATE TABLE IF NOT EXISTS from colliding).
 */
#include "core/clock.h"
#include "core/log.h"
#include "store/migrations.h"

#include <stdlib.h>

/* pg_advisory_xact_lock key of migrations: "aopmigr" in ASCII. */
#define MIGRATION_LOCK "27425601403578226"

static const db_sql q_lock = DB_PAIR(NULL, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")");
static const db_sql q_max = DB_BOTH("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
static const db_sql q_has = DB_BOTH("SELECT COUNT(*) FROM schema_migrations WHERE version = $1");
static const db_sql q_add = DB_BOTH(
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)");
static const char schema_migrations_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL)";

/* Runs SQL without values (DDL) in the operation's store. */
static aop_err exec_ddl(db_op *o, const char *sql)
{
    return o->s->v->exec(o->s->h, sql, o->name);
}

/* Creates schema_migrations and reads the newest version recorded. */
static aop_err migrations_table(db_op *o, long long *max)
{
    aop_err rc = db_begin(o);
    if (rc != AOP_OK)
        return rc;
    rc = db_exec(o, &q_lock, NULL, "");
    if (rc == AOP_OK)
        rc = exec_ddl(o, schema_migrations_sql);
    if (rc == AOP_OK)
        rc = db_query_int(o, &q_max, max, "");
    if (rc == AOP_OK)
        rc = db_commit(o);
    if (rc != AOP_OK)
        db_rollback(o);
    return rc;
}

/* Applies m with its schema_migrations row unless it is recorded already.
 * Sets *did when it applied m. */
static aop_err migration_apply(db_op *o, const store_migration *m, bool *did)
{
    long long has = 0;
    char now[25];
    char *sql = NULL;
    *did = false;
    aop_err rc = db_begin(o);
    if (rc != AOP_OK)
        return rc;
    rc = db_exec(o, &q_lock, NULL, "");
    if (rc == AOP_OK)
        rc = db_query_int(o, &q_has, &has, "i", (long long)m->version);
    if (rc != AOP_OK || has)
        goto out;
    sql = store_migration_sql(m, o->s->v->dialect);
    if ((rc = exec_ddl(o, sql)) != AOP_OK) {
        log_error("database migration failed", LF_I("version", m->version),
                  LF_S("name", m->name));
        goto out;
    }
    clock_format_rfc3339(clock_now_ms(), now);
    rc = db_exec(o, &q_add, NULL, "itt", (long long)m->version, m->name, now);
    if (rc == AOP_OK)
        rc = db_commit(o);
    if (rc == AOP_OK) {
        *did = true;
        log_info("database migration applied", LF_I("version", m->version),
                 LF_S("name", m->name));
    }
out:
    if (rc != AOP_OK || has)
        db_rollback(o);
    free(sql);
    return rc;
}

/* Applies every migration newer than the newest recorded, in order;
 * refuses a database whose schema is newer than the binary's list. */
aop_err store_migrate(store *s, int *applied)
{
    db_op o = db_op_start(s, "migrate");
    long long max = 0;
    *applied = 0;
    aop_err rc = migrations_table(&o, &max);
    int known = store_migrations_len ? store_migrations[store_migrations_len - 1].version : 0;
    if (rc == AOP_OK && max > known) {
        log_error("database schema is newer than this binary", LF_I("databaseVersion", max),
                  LF_I("binaryVersion", known));
        rc = AOP_ERR_INTERNAL;
    }
    for (size_t i = 0; rc == AOP_OK && i < store_migrations_len; i++) {
        bool did = false;
        if (store_migrations[i].version <= max)
            continue;
        rc = migration_apply(&o, &store_migrations[i], &did);
        *applied += did;
    }
    return db_op_end(&o, rc);
}
