/*
 * sqlite.c - the SQLite driver, the embedded default (db.h's entry points).
 *
 * One database file in WAL mode and one connection per thread (db.c's
 * pool): a thread's first store call opens its own connection
 * (SQLITE_OPEN_NOMUTEX, since it is never shared), closed when the thread
 * exits or at close. Every connection has foreign keys on,
 * synchronous=NORMAL (a process crash loses nothing committed; a power cut
 * may lose the last commits but never corrupts the file), aop_lower(), and
 * waits up to BUSY_TIMEOUT_MS for a lock before answering
 * AOP_ERR_UNAVAILABLE.
 *
 * Statements are prepared once per connection (from the SQLite text of
 * their db_sql, $n written ?n) and reset after every use, so no statement
 * keeps a read transaction open. A serving process holds the file alone
 * (sq_claim: a lock file), checkpoints the WAL on a thread of its own, and
 * its write transactions take turns on a mutex, on one connection of their
 * own (the writer) whichever thread runs them.
 */
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "store/db.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000
#define OPEN_FLAGS (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX)

/* A commit that finds the WAL this long checkpoints it there and then, the
 * write mutex held, for tens of milliseconds: at several thousand
 * executions a second the log grows by 8,192 pages between two rounds of
 * the checkpointer, so below 256 MiB this fired under load. */
#define CKPT_WRITER_PAGES "65536"   /* 256 MiB of WAL */
#define CKPT_KEEP_BYTES "67108864"   /* the WAL file is cut back to this */
#define CKPT_EVERY_MS 100
#define CKPT_RESTART_PAGES 8192      /* 32 MiB: start the log over */
#define CKPT_CATCH_UP 4              /* passive rounds at most before a restart */
#define CKPT_LEFT_PAGES 256          /* copied by the last of them, at most */

typedef struct sq_store sq_store;

/* One thread's connection; owned by the store's pool. */
typedef struct {
    db_conn base;
    sqlite3 *db;
} conn;

/* One statement of a connection; st is NULL until it is prepared. */
typedef struct {
    db_stmt base;
    sqlite3_stmt *st;
} sq_stmt;

struct sq_store {
    char *path;          /* as handed to sqlite3_open_v2 */
    db_pool pool;
    /* Write transactions of this process take turns here rather than in
     * SQLite's busy handler, which sleeps (1, 2, 5, 10 ms ...) and leaves
     * the file idle between tries; other processes (aop migrate) still meet
     * the busy handler. Held from BEGIN to COMMIT or ROLLBACK. */
    pthread_mutex_t write_mu;
    /* The connection every write transaction runs on, under write_mu;
     * opened by the first. A connection drops its whole page cache when
     * it finds the log changed by another connection since its last
     * transaction: the writers' transactions (the inserter's, each loop's
     * flush) followed one another on connections of their own, so each
     * read the pages it changed back from the file every time. */
    conn *writer;
    /* The checkpointer (started by claim): WAL pages go back to the
     * database file off the commit path. */
    pthread_t ckpt;
    bool ckpt_on, sync_ok;
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
static aop_err sq_error(int rc, const char *op, const char *msg)
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

static void stmt_finalize(db_stmt *st)
{
    sqlite3_finalize(((sq_stmt *)st)->st);
}

/* Finalizes the statements and closes the connection (the pool's
 * conn_free). */
static void conn_free(db_conn *base)
{
    conn *c = (conn *)base;
    db_conn_free_stmts(base, stmt_finalize);
    sqlite3_close_v2(c->db);
    free(c);
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

/*
 * Settings every new connection needs. auto_vacuum can only be chosen while
 * the file has no page yet, and switching to WAL writes the first page, so
 * auto_vacuum comes first or it is silently ignored. Returns a SQLite result
 * code; the message is left on db.
 */
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

/* The store whose write transaction the calling thread is in, if any. */
static _Thread_local const sq_store *in_tx;

/* The calling thread's connection, opened on first use (the store keeps
 * it); in a write transaction, the writer. */
static aop_err conn_borrow(sq_store *h, conn **out)
{
    char why[256];
    if (in_tx == h) {
        *out = h->writer;
        return AOP_OK;
    }
    conn *c = (conn *)db_pool_get(&h->pool);
    *out = NULL;
    if (!c) {
        int rc = conn_new(h->path, &c, why, sizeof(why));
        if (rc != SQLITE_OK)
            return sq_error(rc, "open", why);
        if (db_pool_add(&h->pool, &c->base) != 0) {
            conn_free(&c->base);
            log_error("database error", LF_S("op", "open"),
                      LF_S("error", "cannot set the thread's connection"));
            return AOP_ERR_INTERNAL;
        }
    }
    *out = c;
    return AOP_OK;
}

/* Binds v (n values, as many as st has parameters) to st. */
static int bind_values(sqlite3_stmt *st, const db_val *v, int n)
{
    int s = SQLITE_OK;
    for (int i = 0; i < n && s == SQLITE_OK; i++) {
        if (v[i].type == 't')
            s = v[i].u.t ? sqlite3_bind_text(st, i + 1, v[i].u.t, -1, SQLITE_STATIC)
                         : sqlite3_bind_null(st, i + 1);
        else if (v[i].type == 'd')
            s = sqlite3_bind_double(st, i + 1, v[i].u.d);
        else
            s = sqlite3_bind_int64(st, i + 1, v[i].u.i);
    }
    return s;
}

/* Resets a statement and drops its bindings (which may point into the
 * caller's memory). */
static void sq_done(db_stmt *base)
{
    sqlite3_stmt *st = ((sq_stmt *)base)->st;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* The calling thread's statement for sql, prepared on first use, with v
 * bound. */
static aop_err sq_run(void *hp, const db_sql *sql, const char *op, const db_val *v, int n,
                      db_stmt **out)
{
    conn *c;
    db_stmt *base = NULL;
    *out = NULL;
    aop_err rc = conn_borrow(hp, &c);
    if (rc == AOP_OK)
        rc = db_conn_stmt(&c->base, sql, sql->sqlite, &store_sqlite_vtbl, sizeof(sq_stmt), n, op,
                          &base);
    if (rc != AOP_OK)
        return rc;
    sq_stmt *st = (sq_stmt *)base;
    if (!st->st) {
        char *text = db_sqlite_text(sql->sqlite);
        int s = sqlite3_prepare_v3(c->db, text, -1, SQLITE_PREPARE_PERSISTENT, &st->st, NULL);
        free(text);
        if (s != SQLITE_OK)
            return sq_error(s, op, sqlite3_errmsg(c->db));
    }
    int s = bind_values(st->st, v, n);
    if (s != SQLITE_OK) {
        rc = sq_error(s, op, sqlite3_errmsg(c->db));
        sq_done(base);
        return rc;
    }
    *out = base;
    return AOP_OK;
}

static aop_err sq_step(db_stmt *base, const char *op, bool *row)
{
    sqlite3_stmt *st = ((sq_stmt *)base)->st;
    int s = sqlite3_step(st);
    *row = s == SQLITE_ROW;
    if (s == SQLITE_ROW || s == SQLITE_DONE)
        return AOP_OK;
    return sq_error(s, op, sqlite3_errmsg(sqlite3_db_handle(st)));
}

static long long sq_changes(db_stmt *base)
{
    return sqlite3_changes64(sqlite3_db_handle(((sq_stmt *)base)->st));
}

static bool sq_col_null(db_stmt *base, int i)
{
    return sqlite3_column_type(((sq_stmt *)base)->st, i) == SQLITE_NULL;
}

static const char *sq_col_text(db_stmt *base, int i)
{
    return (const char *)sqlite3_column_text(((sq_stmt *)base)->st, i);
}

static char *sq_col_dup(db_stmt *base, int i, arena *a)
{
    sqlite3_stmt *st = ((sq_stmt *)base)->st;
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return arena_strdup(a, "");
    return arena_strndup(a, (const char *)t, (size_t)sqlite3_column_bytes(st, i));
}

static long long sq_col_int(db_stmt *base, int i)
{
    return sqlite3_column_int64(((sq_stmt *)base)->st, i);
}

static double sq_col_double(db_stmt *base, int i)
{
    return sqlite3_column_double(((sq_stmt *)base)->st, i);
}

/* Runs SQL without values (transaction control, DDL) on the calling
 * thread's connection. */
static aop_err sq_exec(void *hp, const char *sql, const char *op)
{
    conn *c;
    aop_err rc = conn_borrow(hp, &c);
    int s = rc == AOP_OK ? sqlite3_exec(c->db, sql, NULL, NULL, NULL) : SQLITE_OK;
    return s == SQLITE_OK ? rc : sq_error(s, op, sqlite3_errmsg(c->db));
}

/*
 * Answers when the database is usable: the file at the path is still the one
 * that was opened (a deleted or replaced file would take every later write
 * into an unlinked inode, lost at restart) and a query runs.
 */
static aop_err sq_ping(void *hp)
{
    static const db_sql q_ping = DB_PAIR("SELECT 1", NULL);
    sq_store *h = hp;
    db_stmt *st = NULL;
    bool row = false;
    struct stat sb;
    if (stat(h->path, &sb) != 0 || sb.st_dev != h->dev || sb.st_ino != h->ino) {
        log_error("database file is missing or was replaced", LF_S("path", h->path));
        return AOP_ERR_UNAVAILABLE;
    }
    aop_err rc = sq_run(h, &q_ping, "ping", NULL, 0, &st);
    if (rc == AOP_OK)
        rc = sq_step(st, "ping", &row);
    if (st)
        sq_done(st);
    return rc;
}

/* Copies the WAL back every CKPT_EVERY_MS without blocking anyone; when
 * readers keep the log from starting over and it grows past
 * CKPT_RESTART_PAGES, restarts it, in turn with this process's writers.
 * A restart copies, the write mutex held, what was written during the
 * passive round before it; under load that round takes tens of
 * milliseconds, so passive rounds go on first (up to CKPT_CATCH_UP) until
 * one finds little new, and the writers wait a few milliseconds, not 20. */
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
        for (int k = 0, before = 0; rc == SQLITE_OK && log >= CKPT_RESTART_PAGES &&
                                    done - before > CKPT_LEFT_PAGES && k < CKPT_CATCH_UP;
             k++) {
            before = done;
            rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        }
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

/*
 * One serving process per database file: takes an exclusive flock() on
 * PATH-aop.lock (never on the database itself: closing any descriptor of the
 * database would drop SQLite's own POSIX locks) and writes the pid into it.
 * The kernel releases the lock when the process ends, however it ends.
 */
static aop_err sq_claim(void *hp, char *why, size_t whylen)
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
static aop_err sq_begin(void *hp)
{
    sq_store *h = hp;
    char why[256];
    pthread_mutex_lock(&h->write_mu);
    if (!h->writer) {
        int s = conn_new(h->path, &h->writer, why, sizeof(why));
        if (s != SQLITE_OK) {
            pthread_mutex_unlock(&h->write_mu);
            return sq_error(s, "open", why);
        }
    }
    in_tx = h;
    aop_err rc = sq_exec(hp, "BEGIN IMMEDIATE", "begin");
    if (rc != AOP_OK) {
        in_tx = NULL;
        pthread_mutex_unlock(&h->write_mu);
    }
    return rc;
}

static aop_err sq_commit(void *hp)
{
    sq_store *h = hp;
    aop_err rc = sq_exec(hp, "COMMIT", "commit");
    if (rc == AOP_OK) {
        in_tx = NULL;
        pthread_mutex_unlock(&h->write_mu);
    }
    return rc;
}

/* Succeeds when no transaction is open any more (SQLite may have rolled it
 * back by itself after an error: some errors end the transaction). */
static aop_err sq_rollback(void *hp)
{
    sq_store *h = hp;
    conn *c;
    aop_err rc = conn_borrow(hp, &c);
    if (rc == AOP_OK && !sqlite3_get_autocommit(c->db))
        rc = sq_exec(hp, "ROLLBACK", "rollback");
    in_tx = NULL;
    pthread_mutex_unlock(&h->write_mu);
    return rc;
}

/*
 * PRAGMA incremental_vacuum takes no bound values, so the page count (an
 * integer, never text from outside) is written into the SQL, and the
 * statement is prepared apart from the cache, whose keys are the addresses
 * of static statements. The pragma frees pages as it is stepped.
 */
static aop_err sq_reclaim(void *hp, long long pages)
{
    conn *c;
    sqlite3_stmt *st = NULL;
    char sql[64];
    aop_err rc = conn_borrow(hp, &c);
    if (rc != AOP_OK)
        return rc;
    snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%lld)", pages > 0 ? pages : 0);
    int s = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    while (s == SQLITE_OK && (s = sqlite3_step(st)) == SQLITE_ROW)
        s = SQLITE_OK;
    if (s != SQLITE_DONE)
        rc = sq_error(s, "reclaim", sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
    return rc;
}

/*
 * Stops the checkpointer, closes every connection still open and frees the
 * store; also undoes a partly built one. Call it once no other thread uses
 * the store.
 */
static void sq_close(void *hp)
{
    sq_store *h = hp;
    checkpointer_stop(h);
    db_pool_close(&h->pool);
    if (h->writer)
        conn_free(&h->writer->base);
    if (h->sync_ok) {
        pthread_mutex_destroy(&h->write_mu);
        pthread_mutex_destroy(&h->ckpt_mu);
        pthread_cond_destroy(&h->ckpt_cv);
    }
    if (h->lock_fd >= 0)
        close(h->lock_fd);
    free(h->path);
    free(h);
}

const store_vtbl store_sqlite_vtbl = {
    DB_DRIVER(sq, "sqlite", DB_SQLITE),
    .claim = sq_claim,
    .reclaim = sq_reclaim,
};

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
    const char *no;
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
    h->path = plain_path(path);
    h->sync_ok = pthread_mutex_init(&h->write_mu, NULL) == 0 &&
                 pthread_mutex_init(&h->ckpt_mu, NULL) == 0 &&
                 pthread_cond_init(&h->ckpt_cv, NULL) == 0;
    no = h->sync_ok ? db_pool_init(&h->pool, conn_free) : "cannot create a mutex";
    if (no) {
        snprintf(err, errlen, "DATABASE_URL: cannot open %s: %s", path, no);
        goto out;
    }
    if (parent_dir_make(h->path, why, sizeof(why)) != 0 ||
        conn_new(h->path, &c, why, sizeof(why)) != SQLITE_OK) {
        snprintf(err, errlen, "DATABASE_URL: cannot open %s: %s", path, why);
        goto out;
    }
    if (db_pool_add(&h->pool, &c->base) != 0) {
        snprintf(err, errlen, "DATABASE_URL: cannot open %s: cannot set the thread's connection",
                 path);
        conn_free(&c->base);
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
    if (h)
        sq_close(h);
    return ret;
}
