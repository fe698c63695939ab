/*
 * sqlite.c - the store port on SQLite, the embedded default.
 *
 * One database file in WAL mode and one connection per thread: a thread's
 * first store call opens its own connection (SQLITE_OPEN_NOMUTEX, since it is
 * never shared), a pthread key destructor closes it when the thread exits,
 * and sq_close() closes whatever is still open. Every connection has foreign
 * keys on, synchronous=NORMAL (a process crash loses nothing committed; a
 * power cut may lose the last commits but never corrupts the file) and waits
 * up to BUSY_TIMEOUT_MS for a lock before answering AOP_ERR_UNAVAILABLE.
 *
 * Statements are prepared once per connection (keyed by their SQL text's
 * address) and reset after every use, so no statement keeps a read
 * transaction open. Values are always bound, never written into SQL. The
 * operations of the port live in sqlite_*.c files on top of sqlite_int.h.
 */
#include "store/store.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "store/migrations.h"
#include "store/sqlite_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000
#define OPEN_FLAGS (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX)

#define STMT_SLOTS 1024 /* more than the distinct statements of all backend files */

static const char q_ping[] = "SELECT 1";
static const char q_migration_max[] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
static const char q_migration_has[] = "SELECT 1 FROM schema_migrations WHERE version = ?";
static const char q_migration_add[] =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)";

static const char schema_migrations_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL)";

typedef struct sq_store sq_store;

/* One thread's connection; owned by the store's list. Its statements are
 * kept in an open-addressing table keyed by the address of their SQL text. */
typedef struct conn {
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } stmts[STMT_SLOTS];
    sq_store *owner;
    struct conn *next;
} conn;

struct sq_store {
    char *path;          /* as handed to sqlite3_open_v2 */
    pthread_key_t key;   /* this thread's conn */
    bool key_ok;
    pthread_mutex_t mu;  /* guards conns */
    /* Write transactions of this process take turns here rather than in
     * SQLite's busy handler, which sleeps (1, 2, 5, 10 ms ...) and leaves
     * the file idle between tries; other processes (aop migrate) still meet
     * the busy handler. Held from BEGIN to COMMIT or ROLLBACK. */
    pthread_mutex_t write_mu;
    conn *conns;         /* every open connection */
    /* The checkpointer (started by claim): WAL pages go back to the
     * database file off the commit path. */
    pthread_t ckpt;
    bool ckpt_on;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    bool ckpt_stop;
    int lock_fd;         /* PATH-aop.lock while this process serves, else -1 */
    dev_t dev;           /* identity of the file opened, for ping */
    ino_t ino;
};

/*
 * The one mapping from a SQLite result code (extended codes are on) to the
 * program's error. msg is the database's own message: it is logged, never
 * shown to a client. A UNIQUE or PRIMARY KEY violation is a plain conflict
 * and is not logged.
 */
aop_err sq_error(int rc, const char *op, const char *msg)
{
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return AOP_ERR_CONFLICT;
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
        log_warn("database busy", LF_S("op", op), LF_S("error", msg));
        return AOP_ERR_UNAVAILABLE;
    }
    log_error("database error", LF_S("op", op), LF_S("error", msg), LF_I("code", rc));
    return AOP_ERR_INTERNAL;
}

#define CKPT_WRITER_PAGES "16384"   /* 64 MiB of WAL */
#define CKPT_KEEP_BYTES "67108864"   /* the WAL file is cut back to this */
#define CKPT_EVERY_MS 100
#define CKPT_RESTART_PAGES 8192      /* 32 MiB: start the log over */

/* Finalizes the statements and closes the connection. NULL-safe. */
static void conn_free(conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < STMT_SLOTS; i++)
        sqlite3_finalize(c->stmts[i].st);
    sqlite3_close_v2(c->db);
    free(c);
}

/* pthread key destructor: the thread is exiting, so its connection goes. */
static void conn_thread_exit(void *p)
{
    conn *c = p;
    sq_store *h = c->owner;
    pthread_mutex_lock(&h->mu);
    for (conn **pp = &h->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    conn_free(c);
}

/* Runs a PRAGMA and copies the first column of its first row (if any) into
 * val as text ("" when none). Returns a SQLite result code. */
static int pragma_text(sqlite3 *db, const char *sql, char *val, size_t vallen)
{
    sqlite3_stmt *st = NULL;
    val[0] = '\0';
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        str_copy(val, vallen, t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/*
 * Settings every new connection needs. auto_vacuum can only be chosen while
 * the file has no page yet, and switching to WAL writes the first page, so
 * auto_vacuum comes first or it is silently ignored. Returns a SQLite result
 * code; the message is left on db.
 */
/* aop_lower(text): text through Unicode's simple lowercase mapping (SQLite's
 * own lower() folds ASCII only), for case-insensitive search. */
static void sql_aop_lower(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const unsigned char *t = sqlite3_value_text(argv[0]);
    if (!t) {
        sqlite3_result_null(ctx);
        return;
    }
    arena a = {0};
    sqlite3_result_text(ctx, str_lower_utf8((const char *)t, &a), -1, SQLITE_TRANSIENT);
    arena_free(&a);
}

static int conn_setup(sqlite3 *db)
{
    char val[32];
    sqlite3_extended_result_codes(db, 1);
    int rc = sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (rc == SQLITE_OK)
        rc = pragma_text(db, "PRAGMA page_count", val, sizeof(val));
    if (rc == SQLITE_OK && strcmp(val, "0") == 0) {
        rc = sqlite3_exec(db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = pragma_text(db, "PRAGMA auto_vacuum", val, sizeof(val));
        if (rc == SQLITE_OK && strcmp(val, "2") != 0)
            log_warn("database auto_vacuum is not incremental", LF_S("autoVacuum", val));
    }
    if (rc == SQLITE_OK)
        rc = pragma_text(db, "PRAGMA journal_mode=WAL", val, sizeof(val));
    if (rc == SQLITE_OK && strcmp(val, "wal") != 0)
        log_warn("database is not in WAL mode", LF_S("journalMode", val));
    /* A serving process checkpoints on its own thread (sq_claim); a writer
     * only checkpoints itself when that falls far behind. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db,
                          "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL; "
                          "PRAGMA wal_autocheckpoint=" CKPT_WRITER_PAGES "; "
                          "PRAGMA journal_size_limit=" CKPT_KEEP_BYTES,
                          NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(db, "aop_lower", 1,
                                     SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                     sql_aop_lower, NULL, NULL);
    return rc;
}

/* Opens and sets up one connection. Returns a SQLite result code; on failure
 * *out is NULL and why holds the reason (with the OS error when there is one). */
static int conn_new(const char *path, conn **out, char *why, size_t whylen)
{
    sqlite3 *db = NULL;
    *out = NULL;
    int rc = sqlite3_open_v2(path, &db, OPEN_FLAGS, NULL);
    if (rc == SQLITE_OK)
        rc = conn_setup(db);
    if (rc != SQLITE_OK) {
        const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        int sys = db ? sqlite3_system_errno(db) : 0;
        int prim = rc & 0xff;
        if (sys && (prim == SQLITE_CANTOPEN || prim == SQLITE_IOERR))
            snprintf(why, whylen, "%s (%s)", msg, strerror(sys));
        else
            snprintf(why, whylen, "%s", msg);
        sqlite3_close_v2(db);
        return rc;
    }
    conn *c = xcalloc(1, sizeof(*c));
    c->db = db;
    *out = c;
    return SQLITE_OK;
}

/* Makes c the calling thread's connection and lists it. 0, or -1 when the
 * thread-specific slot cannot be set (c is then not listed). */
static int conn_register(sq_store *h, conn *c)
{
    c->owner = h;
    if (pthread_setspecific(h->key, c) != 0)
        return -1;
    pthread_mutex_lock(&h->mu);
    c->next = h->conns;
    h->conns = c;
    pthread_mutex_unlock(&h->mu);
    return 0;
}

/* The calling thread's connection, opened on first use. The store keeps it. */
static aop_err conn_borrow(sq_store *h, conn **out)
{
    char why[256];
    conn *c = pthread_getspecific(h->key);
    *out = NULL;
    if (!c) {
        int rc = conn_new(h->path, &c, why, sizeof(why));
        if (rc != SQLITE_OK)
            return sq_error(rc, "open", why);
        if (conn_register(h, c) != 0) {
            conn_free(c);
            log_error("database error", LF_S("op", "open"),
                      LF_S("error", "cannot set the thread's connection"));
            return AOP_ERR_INTERNAL;
        }
    }
    *out = c;
    return AOP_OK;
}

/* A ready statement for sql on c, prepared on first use. sql must have static
 * storage: its address is the key. The connection keeps the statement; give
 * it back with stmt_release(). */
static aop_err stmt_borrow(conn *c, const char *sql, const char *op, sqlite3_stmt **out)
{
    *out = NULL;
    size_t i = ((uintptr_t)sql >> 3) % STMT_SLOTS;
    for (int probes = 0; probes < STMT_SLOTS; probes++, i = (i + 1) % STMT_SLOTS) {
        if (c->stmts[i].sql == sql) {
            *out = c->stmts[i].st;
            return AOP_OK;
        }
        if (c->stmts[i].sql)
            continue;
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (rc != SQLITE_OK)
            return sq_error(rc, op, sqlite3_errmsg(c->db));
        c->stmts[i].sql = sql;
        c->stmts[i].st = st;
        *out = st;
        return AOP_OK;
    }
    log_error("database statement table is full", LF_S("op", op));
    return AOP_ERR_INTERNAL;
}

/* Resets a borrowed statement and drops its bindings (which may point into
 * the caller's memory). NULL-safe. */
static void stmt_release(sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

void sq_release(sqlite3_stmt *st)
{
    stmt_release(st);
}

/* Binds the values of ap to st as fmt says (see sqlite_int.h). */
static int bind_args(sqlite3_stmt *st, const char *fmt, va_list ap)
{
    int s = SQLITE_OK;
    for (int i = 1; *fmt && s == SQLITE_OK; fmt++, i++) {
        switch (*fmt) {
        case 't': {
            const char *t = va_arg(ap, const char *);
            s = t ? sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
            break;
        }
        case 'i':
            s = sqlite3_bind_int64(st, i, va_arg(ap, long long));
            break;
        case 'b':
            s = sqlite3_bind_int(st, i, va_arg(ap, int) ? 1 : 0);
            break;
        case 'd':
            s = sqlite3_bind_double(st, i, va_arg(ap, double));
            break;
        default:
            s = SQLITE_MISUSE;
        }
    }
    return s;
}

static aop_err vprepare(void *hp, const char *sql, const char *op, sqlite3_stmt **out,
                        const char *fmt, va_list ap)
{
    conn *c;
    sqlite3_stmt *st = NULL;
    *out = NULL;
    aop_err rc = conn_borrow(hp, &c);
    if (rc == AOP_OK)
        rc = stmt_borrow(c, sql, op, &st);
    if (rc != AOP_OK)
        return rc;
    int s = bind_args(st, fmt, ap);
    if (s != SQLITE_OK) {
        rc = sq_error(s, op, sqlite3_errmsg(c->db));
        stmt_release(st);
        return rc;
    }
    *out = st;
    return AOP_OK;
}

aop_err sq_prepare(void *hp, const char *sql, const char *op, sqlite3_stmt **out,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vprepare(hp, sql, op, out, fmt, ap);
    va_end(ap);
    return rc;
}

aop_err sq_step(sqlite3_stmt *st, const char *op, bool *row)
{
    int s = sqlite3_step(st);
    *row = s == SQLITE_ROW;
    if (s == SQLITE_ROW || s == SQLITE_DONE)
        return AOP_OK;
    return sq_error(s, op, sqlite3_errmsg(sqlite3_db_handle(st)));
}

/* Prepares, binds, steps once, releases; reports rows written and the first
 * column of a first row (when the caller wants them). */
static aop_err vrun(void *hp, const char *sql, const char *op, long long *changes,
                    long long *first, const char *fmt, va_list ap)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    aop_err rc = vprepare(hp, sql, op, &st, fmt, ap);
    if (first)
        *first = 0;
    if (rc == AOP_OK)
        rc = sq_step(st, op, &row);
    if (rc == AOP_OK && changes)
        *changes = sqlite3_changes64(sqlite3_db_handle(st));
    if (rc == AOP_OK && row && first)
        *first = sqlite3_column_int64(st, 0);
    stmt_release(st);
    return rc;
}

aop_err sq_exec(void *hp, const char *sql, const char *op, long long *changes, const char *fmt,
                ...)
{
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vrun(hp, sql, op, changes, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

aop_err sq_query_row(void *hp, const char *sql, const char *op, sqlite3_stmt **st,
                     const char *fmt, ...)
{
    bool row = false;
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vprepare(hp, sql, op, st, fmt, ap);
    va_end(ap);
    if (rc == AOP_OK)
        rc = sq_step(*st, op, &row);
    if (rc == AOP_OK && !row)
        rc = AOP_ERR_NOT_FOUND;
    if (rc != AOP_OK) {
        stmt_release(*st);
        *st = NULL;
    }
    return rc;
}

aop_err sq_query_int(void *hp, const char *sql, const char *op, long long *out, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vrun(hp, sql, op, NULL, out, fmt, ap);
    va_end(ap);
    return rc;
}

char *sq_col_dup(sqlite3_stmt *st, int i, arena *a)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return arena_strdup(a, "");
    return arena_strndup(a, (const char *)t, (size_t)sqlite3_column_bytes(st, i));
}

void sq_col_copy(sqlite3_stmt *st, int i, char *dst, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    str_copy(dst, size, t ? (const char *)t : "");
}

/* Runs SQL without values (transaction control, DDL) on c. */
static aop_err exec_sql(conn *c, const char *sql, const char *op)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_error(rc, op, sqlite3_errmsg(c->db));
    return AOP_OK;
}

/* Rolls back c's open transaction, if SQLite has not already done so (some
 * errors end the transaction by themselves). */
static aop_err rollback_if_open(conn *c, const char *op)
{
    if (sqlite3_get_autocommit(c->db))
        return AOP_OK;
    return exec_sql(c, "ROLLBACK", op);
}

/*
 * Answers when the database is usable: the file at the path is still the one
 * that was opened (a deleted or replaced file would take every later write
 * into an unlinked inode, lost at restart) and a query runs.
 */
aop_err sq_ping(void *hp)
{
    sq_store *h = hp;
    conn *c;
    sqlite3_stmt *st = NULL;
    struct stat sb;
    if (stat(h->path, &sb) != 0 || sb.st_dev != h->dev || sb.st_ino != h->ino) {
        log_error("database file is missing or was replaced", LF_S("path", h->path));
        return AOP_ERR_UNAVAILABLE;
    }
    aop_err rc = conn_borrow(h, &c);
    if (rc != AOP_OK)
        goto out;
    if ((rc = stmt_borrow(c, q_ping, "ping", &st)) != AOP_OK)
        goto out;
    int s = sqlite3_step(st);
    rc = s == SQLITE_ROW ? AOP_OK : sq_error(s, "ping", sqlite3_errmsg(c->db));
out:
    stmt_release(st);
    return rc;
}

/* Highest version recorded in schema_migrations (0 when none). */
static aop_err migration_max(conn *c, long long *max)
{
    sqlite3_stmt *st = NULL;
    aop_err rc = stmt_borrow(c, q_migration_max, "migrate", &st);
    *max = 0;
    if (rc != AOP_OK)
        goto out;
    int s = sqlite3_step(st);
    if (s != SQLITE_ROW) {
        rc = sq_error(s, "migrate", sqlite3_errmsg(c->db));
        goto out;
    }
    *max = sqlite3_column_int64(st, 0);
out:
    stmt_release(st);
    return rc;
}

/* Is version recorded in schema_migrations? Sets *has. */
static aop_err migration_has(conn *c, int version, bool *has)
{
    sqlite3_stmt *st = NULL;
    aop_err rc = stmt_borrow(c, q_migration_has, "migrate", &st);
    *has = false;
    if (rc != AOP_OK)
        goto out;
    int s = sqlite3_bind_int(st, 1, version);
    if (s == SQLITE_OK)
        s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *has = true;
    else if (s != SQLITE_DONE)
        rc = sq_error(s, "migrate", sqlite3_errmsg(c->db));
out:
    stmt_release(st);
    return rc;
}

/* Records migration m as applied now. */
static aop_err migration_record(conn *c, const store_migration *m)
{
    char now[25];
    sqlite3_stmt *st = NULL;
    aop_err rc = stmt_borrow(c, q_migration_add, "migrate", &st);
    if (rc != AOP_OK)
        goto out;
    clock_format_rfc3339(clock_now_ms(), now);
    int s = sqlite3_bind_int(st, 1, m->version);
    if (s == SQLITE_OK)
        s = sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
    if (s == SQLITE_OK)
        s = sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    if (s == SQLITE_OK)
        s = sqlite3_step(st);
    if (s != SQLITE_DONE)
        rc = sq_error(s, "migrate", sqlite3_errmsg(c->db));
out:
    stmt_release(st);
    return rc;
}

/*
 * Applies migration m in its own BEGIN IMMEDIATE transaction together with its
 * schema_migrations row, unless it is already recorded (checked under the
 * write lock, so two processes migrating at once do not both apply it).
 * Sets *did when it applied m.
 */
static aop_err migration_apply(conn *c, const store_migration *m, bool *did)
{
    bool has = false;
    *did = false;
    aop_err rc = exec_sql(c, "BEGIN IMMEDIATE", "migrate");
    if (rc != AOP_OK)
        return rc;
    if ((rc = migration_has(c, m->version, &has)) != AOP_OK || has)
        goto out;
    int s = sqlite3_exec(c->db, m->sql, NULL, NULL, NULL);
    if (s != SQLITE_OK) {
        log_error("database migration failed", LF_I("version", m->version),
                  LF_S("name", m->name));
        rc = sq_error(s, "migrate", sqlite3_errmsg(c->db));
        goto out;
    }
    if ((rc = migration_record(c, m)) != AOP_OK)
        goto out;
    rc = exec_sql(c, "COMMIT", "migrate");
    if (rc == AOP_OK) {
        *did = true;
        log_info("database migration applied", LF_I("version", m->version),
                 LF_S("name", m->name));
    }
out:
    if (rc != AOP_OK || has)
        rollback_if_open(c, "migrate");
    return rc;
}

/* Applies every migration the database has not recorded, in order; refuses a
 * database whose schema is newer than the binary's list. */
aop_err sq_migrate(void *hp, int *applied)
{
    sq_store *h = hp;
    conn *c;
    long long max = 0;
    *applied = 0;
    aop_err rc = conn_borrow(h, &c);
    if (rc != AOP_OK)
        return rc;
    if ((rc = exec_sql(c, schema_migrations_sql, "migrate")) != AOP_OK)
        return rc;
    if ((rc = migration_max(c, &max)) != AOP_OK)
        return rc;
    size_t n = store_sqlite_migrations_len;
    int known = n ? store_sqlite_migrations[n - 1].version : 0;
    if (max > known) {
        log_error("database schema is newer than this binary", LF_I("databaseVersion", max),
                  LF_I("binaryVersion", known));
        return AOP_ERR_INTERNAL;
    }
    for (size_t i = 0; i < n; i++) {
        bool did = false;
        if ((rc = migration_apply(c, &store_sqlite_migrations[i], &did)) != AOP_OK)
            return rc;
        *applied += did;
    }
    return AOP_OK;
}

/* Runs fixed SQL on the calling thread's connection. */
static aop_err exec_on_thread(void *hp, const char *sql, const char *op)
{
    conn *c;
    aop_err rc = conn_borrow(hp, &c);
    if (rc != AOP_OK)
        return rc;
    return exec_sql(c, sql, op);
}

/* Succeeds when no transaction is open any more (SQLite may have rolled it
 * back by itself after an error). */
/*
 * One serving process per database file: takes an exclusive flock() on
 * PATH-aop.lock (never on the database itself: closing any descriptor of the
 * database would drop SQLite's own POSIX locks) and writes the pid into it.
 * The kernel releases the lock when the process ends, however it ends.
 */
/* Copies the WAL back every CKPT_EVERY_MS without blocking anyone; when
 * readers keep the log from starting over and it grows past
 * CKPT_RESTART_PAGES, restarts it, in turn with this process's writers. */
static void *checkpointer(void *hp)
{
    sq_store *h = hp;
    conn *c = NULL;
    if (conn_borrow(h, &c) != AOP_OK)
        return NULL;
    pthread_mutex_lock(&h->ckpt_mu);
    while (!h->ckpt_stop) {
        struct timespec ts;
        clock_deadline_after(CKPT_EVERY_MS, &ts);
        pthread_cond_timedwait(&h->ckpt_cv, &h->ckpt_mu, &ts);
        if (h->ckpt_stop)
            break;
        pthread_mutex_unlock(&h->ckpt_mu);
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc == SQLITE_OK && log >= CKPT_RESTART_PAGES) {
            pthread_mutex_lock(&h->write_mu);
            rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done);
            pthread_mutex_unlock(&h->write_mu);
        }
        if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
            log_warn("database checkpoint failed", LF_S("error", sqlite3_errmsg(c->db)));
        pthread_mutex_lock(&h->ckpt_mu);
    }
    pthread_mutex_unlock(&h->ckpt_mu);
    return NULL;
}

static void checkpointer_start(sq_store *h)
{
    if (h->ckpt_on)
        return;
    h->ckpt_stop = false;
    h->ckpt_on = pthread_create(&h->ckpt, NULL, checkpointer, h) == 0;
    if (!h->ckpt_on)
        log_warn("cannot start the database checkpointer; writers checkpoint themselves");
}

static void checkpointer_stop(sq_store *h)
{
    if (!h->ckpt_on)
        return;
    pthread_mutex_lock(&h->ckpt_mu);
    h->ckpt_stop = true;
    pthread_cond_signal(&h->ckpt_cv);
    pthread_mutex_unlock(&h->ckpt_mu);
    pthread_join(h->ckpt, NULL);
    h->ckpt_on = false;
}

aop_err sq_claim(void *hp, char *why, size_t whylen)
{
    sq_store *h = hp;
    size_t n = strlen(h->path) + sizeof("-aop.lock");
    char *lock = xmalloc(n);
    snprintf(lock, n, "%s-aop.lock", h->path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    aop_err rc = AOP_ERR_INTERNAL;
    if (fd < 0) {
        snprintf(why, whylen, "cannot open %s: %s", lock, strerror(errno));
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t got = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[got > 0 ? got : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(why, whylen,
                 "another aop process (pid %s) serves this database; one process per SQLite "
                 "file (several instances need PostgreSQL and Redis)",
                 pid[0] ? pid : "unknown");
        rc = errno == EWOULDBLOCK ? AOP_ERR_CONFLICT : AOP_ERR_INTERNAL;
        close(fd);
        goto out;
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        log_warn("cannot write the pid into the lock file", LF_S("path", lock));
    h->lock_fd = fd;
    checkpointer_start(h);
    rc = AOP_OK;
out:
    free(lock);
    return rc;
}

/* begin takes the store's write mutex; a commit that succeeds or any
 * rollback gives it back (store_tx rolls back after a failed commit). */
aop_err sq_begin(void *hp)
{
    sq_store *h = hp;
    pthread_mutex_lock(&h->write_mu);
    aop_err rc = exec_on_thread(hp, "BEGIN IMMEDIATE", "begin");
    if (rc != AOP_OK)
        pthread_mutex_unlock(&h->write_mu);
    return rc;
}

aop_err sq_commit(void *hp)
{
    sq_store *h = hp;
    aop_err rc = exec_on_thread(hp, "COMMIT", "commit");
    if (rc == AOP_OK)
        pthread_mutex_unlock(&h->write_mu);
    return rc;
}

/* Succeeds when no transaction is open any more (SQLite may have rolled it
 * back by itself after an error). */
aop_err sq_rollback(void *hp)
{
    sq_store *h = hp;
    conn *c;
    aop_err rc = conn_borrow(hp, &c);
    if (rc == AOP_OK)
        rc = rollback_if_open(c, "rollback");
    pthread_mutex_unlock(&h->write_mu);
    return rc;
}

/*
 * Closes every connection still open and frees the store. NULL-safe; also
 * undoes a partly built store. Call it once no other thread uses the store;
 * threads that exit afterwards no longer run the key's destructor.
 */
void sq_close(void *hp)
{
    sq_store *h = hp;
    if (!h)
        return;
    checkpointer_stop(h);
    pthread_mutex_lock(&h->mu);
    conn *c = h->conns;
    h->conns = NULL;
    pthread_mutex_unlock(&h->mu);
    while (c) {
        conn *next = c->next;
        conn_free(c);
        c = next;
    }
    if (h->key_ok) {
        pthread_setspecific(h->key, NULL);
        pthread_key_delete(h->key);
    }
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->write_mu);
    pthread_mutex_destroy(&h->ckpt_mu);
    pthread_cond_destroy(&h->ckpt_cv);
    if (h->lock_fd >= 0)
        close(h->lock_fd);
    free(h->path);
    free(h);
}

/* Creates the parent directory of path (one level, mode 0700) when missing.
 * 0, or -1 with the reason in why. */
static int parent_dir_make(const char *path, char *why, size_t whylen)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    char *dir = xstrndup(path, (size_t)(slash - path));
    int ret = 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, whylen, "cannot create directory %s: %s", dir, strerror(errno));
        ret = -1;
    }
    free(dir);
    return ret;
}

/* The path to hand to SQLite: this SQLite build reads names starting with
 * "file:" as URIs, so such a relative name gets a "./" to stay a plain file. */
static char *plain_path(const char *path)
{
    if (strncmp(path, "file:", 5) != 0)
        return xstrdup(path);
    size_t n = strlen(path);
    char *p = xmalloc(n + 3);
    memcpy(p, "./", 2);
    memcpy(p + 2, path, n + 1);
    return p;
}

/*
 * Opens the store on the file at path (what follows sqlite:// in
 * DATABASE_URL), creating its parent directory if missing, and opens the
 * calling thread's connection to prove the file usable. Returns the handle
 * (free with store_sqlite_vtbl.close), or NULL with the reason in err.
 */
void *store_sqlite_open(const char *path, char *err, size_t errlen)
{
    sq_store *h = NULL, *ret = NULL;
    conn *c = NULL;
    char why[256];
    if (!path || !path[0]) {
        snprintf(err, errlen, "DATABASE_URL: sqlite:// needs a file path");
        goto out;
    }
    if (!sqlite3_threadsafe()) {
        snprintf(err, errlen, "DATABASE_URL: this SQLite library is not built thread-safe");
        goto out;
    }
    h = xcalloc(1, sizeof(*h));
    h->lock_fd = -1;
    if (pthread_mutex_init(&h->mu, NULL) != 0 || pthread_mutex_init(&h->write_mu, NULL) != 0 ||
        pthread_mutex_init(&h->ckpt_mu, NULL) != 0 || pthread_cond_init(&h->ckpt_cv, NULL) != 0) {
        snprintf(err, errlen, "DATABASE_URL: cannot open %s: cannot create a mutex", path);
        free(h);
        h = NULL;
        goto out;
    }
    h->path = plain_path(path);
    if (pthread_key_create(&h->key, conn_thread_exit) != 0) {
        snprintf(err, errlen, "DATABASE_URL: cannot open %s: no thread key left", path);
        goto out;
    }
    h->key_ok = true;
    if (parent_dir_make(h->path, why, sizeof(why)) != 0 ||
        conn_new(h->path, &c, why, sizeof(why)) != SQLITE_OK) {
        snprintf(err, errlen, "DATABASE_URL: cannot open %s: %s", path, why);
        goto out;
    }
    if (conn_register(h, c) != 0) {
        snprintf(err, errlen, "DATABASE_URL: cannot open %s: cannot set the thread's connection",
                 path);
        conn_free(c);
        goto out;
    }
    struct stat sb;
    if (stat(h->path, &sb) != 0) {
        snprintf(err, errlen, "DATABASE_URL: cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    h->dev = sb.st_dev;
    h->ino = sb.st_ino;
    ret = h;
    h = NULL;
out:
    sq_close(h);
    return ret;
}

const store_vtbl store_sqlite_vtbl = {
    .name = "sqlite",
    .ping = sq_ping,
    .migrate = sq_migrate,
    .claim = sq_claim,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .user_insert = sq_user_insert,
    .user_get_by_email = sq_user_get_by_email,
    .user_get_by_id = sq_user_get_by_id,
    .user_update = sq_user_update,
    .user_set_login = sq_user_set_login,
    .user_list = sq_user_list,
    .family_insert = sq_family_insert,
    .family_extend = sq_family_extend,
    .family_revoke = sq_family_revoke,
    .families_revoke_user = sq_families_revoke_user,
    .refresh_insert = sq_refresh_insert,
    .refresh_get = sq_refresh_get,
    .refresh_use = sq_refresh_use,
    .access_revoke = sq_access_revoke,
    .token_revoked = sq_token_revoked,
    .tokens_prune = sq_tokens_prune,
    .apikey_insert = sq_apikey_insert,
    .apikey_count = sq_apikey_count,
    .apikey_list = sq_apikey_list,
    .apikey_get_by_hash = sq_apikey_get_by_hash,
    .apikey_delete = sq_apikey_delete,
    .apikey_touch = sq_apikey_touch,
    .audit_insert = sq_audit_insert,
    .workflow_insert = sq_workflow_insert,
    .workflow_get = sq_workflow_get,
    .workflow_update = sq_workflow_update,
    .workflow_delete = sq_workflow_delete,
    .workflow_list = sq_workflow_list,
    .workflow_version_insert = sq_workflow_version_insert,
    .workflow_version_list = sq_workflow_version_list,
    .workflow_version_get = sq_workflow_version_get,
    .workflow_summary = sq_workflow_summary,
    .execution_insert = sq_execution_insert,
    .execution_get = sq_execution_get,
    .execution_nodes = sq_execution_nodes,
    .execution_list = sq_execution_list,
    .execution_claim = sq_execution_claim,
    .execution_renew = sq_execution_renew,
    .execution_requeue = sq_execution_requeue,
    .execution_release = sq_execution_release,
    .execution_owned = sq_execution_owned,
    .execution_node_put = sq_execution_node_put,
    .execution_nodes_end = sq_execution_nodes_end,
    .execution_finish = sq_execution_finish,
    .workflow_analytics_add = sq_workflow_analytics_add,
    .execution_delete = sq_execution_delete,
    .execution_stats = sq_execution_stats,
    .execution_summary = sq_execution_summary,
    .execution_prune = sq_execution_prune,
    .reclaim = sq_reclaim,
    .close = sq_close,
};
