/*
 * pg.c - the PostgreSQL driver (libpq; db.h's entry points), for several
 * instances sharing one database.
 *
 * Connections: one per thread (db.c's pool). Each prepares a statement on
 * its first use (named "s<n>") and runs it with PQexecPrepared, every value
 * sent as text ('i', 'd', 'b' typed int8, float8, bool; texts typed by the
 * server). Inside a transaction, BEGIN and what db_send runs go in pipeline
 * mode, their answers read with the next one wanted (see "pipeline mode").
 *
 * Outages: a connection the server closed while it was idle (restart,
 * terminated backend) is noticed before use and replaced. A call that finds
 * its connection broken otherwise (lost mid-statement) drops it and answers
 * AOP_ERR_UNAVAILABLE; the thread's next call connects afresh (and prepares
 * its statements again). A failed connect marks the whole store down for
 * DOWN_RETRY_MS: meanwhile every connect fails at once without touching the
 * network, and afterwards one thread at a time probes. One warning per
 * outage, one info line when the database is back; the URL's password is
 * never logged nor put in an error message. When the connection is lost
 * inside a transaction, every call answers AOP_ERR_UNAVAILABLE until the
 * caller's rollback, which then succeeds.
 *
 * Errors: unique_violation (23505) is AOP_ERR_CONFLICT; a lost or refused
 * connection, admin shutdown, cannot connect now (class 08, 57P01-57P03),
 * serialization failure (40001) or deadlock (40P01), lock or statement
 * timeout (55P03, 57014) AOP_ERR_UNAVAILABLE; anything else
 * AOP_ERR_INTERNAL (logged with the op and the server's message).
 *
 * jsonb (workflows' tags, editors, viewers) prints a space after each
 * comma: reads give it back compact, as written and as SQLite answers.
 * Events travel through NOTIFY/LISTEN on the channel aop_events; pq_listen
 * keeps a connection of its own.
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "store/db.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 64       /* parameters of one statement */
#define DOWN_RETRY_MS 250   /* after a failed connect, others fail at once this long */
#define LISTEN_POLL_MS 250  /* how often the listener looks at *stop */
#define LISTEN_CONNECT_MS 3000
#define CHANNEL "aop_events"
#define LOCK_ROWS " FOR NO KEY UPDATE" /* db_sql.lock_in_tx */
#define PIPE_MAX 128        /* statements sent ahead of their answers, at most */
enum { INT8OID = 20, BOOLOID = 16, FLOAT8OID = 701, JSONBOID = 3802 };

typedef struct pq_store pq_store;

/* One thread's connection state; owned by the store's pool. pg is NULL
 * between a loss and the next connect; gen counts connections, so that a
 * statement prepared on an earlier one is prepared again. */
typedef struct {
    db_conn base;
    PGconn *pg;
    int gen, names;
    bool in_tx;  /* between begin and commit/rollback */
    bool lost;   /* the connection died inside that transaction */
    int piped;   /* statements sent in pipeline mode whose answers are unread */
    const char *piped_op[PIPE_MAX]; /* their operations, for messages */
} conn;

/* One statement of a connection and the result of its running call. */
typedef struct {
    db_stmt base;
    char name[16];
    int gen; /* of the connection it is prepared on */
    PGresult *res;
    int row, nrows;
} pq_stmt;

struct pq_store {
    /* libpq keywords and values: the URL's own plus ours; NULL-terminated. */
    const char **keys;
    const char **vals;
    PQconninfoOption *opts; /* owns the URL's strings */
    char *where;            /* "host:port/db", for messages */
    char *password;         /* to scrub from messages; may be NULL */
    db_pool pool;
    atomic_llong down_until; /* monotonic ms; 0 while the database is up */
    atomic_int probing;      /* a thread is connecting during an outage */
    atomic_bool outage_logged;
};

/* ---- messages ---- */

/* Copies msg into out with every occurrence of secret replaced by "***"
 * and trailing newlines cut. */
static void scrub(const char *msg, const char *secret, char *out, size_t outlen)
{
    buf b;
    buf_init(&b, outlen > 1 ? outlen - 1 : 1);
    size_t sl = secret ? strlen(secret) : 0;
    for (const char *p = msg ? msg : ""; *p;) {
        if (sl && strncmp(p, secret, sl) == 0) {
            buf_puts(&b, "***");
            p += sl;
        } else {
            buf_append(&b, p++, 1);
        }
    }
    str_copy(out, outlen, b.data ? b.data : "");
    buf_free(&b);
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
}

/*
 * The one mapping from a failed result to the program's error (see
 * the top of the file). A result without SQLSTATE is libpq's own failure (a lost
 * connection, mostly): unavailable. Unavailable errors are logged by the
 * outage logic, conflicts not at all.
 */
static aop_err pq_error(const PGresult *res, const char *op)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg && res)
        msg = PQresultErrorMessage(res);
    if (!state || strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
        strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0)
        return AOP_ERR_UNAVAILABLE;
    if (strcmp(state, "23505") == 0)
        return AOP_ERR_CONFLICT;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
        strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0) {
        log_warn("database busy", LF_S("op", op), LF_S("error", msg ? msg : ""),
                 LF_S("sqlstate", state));
        return AOP_ERR_UNAVAILABLE;
    }
    log_error("database error", LF_S("op", op), LF_S("error", msg ? msg : ""),
              LF_S("sqlstate", state));
    return AOP_ERR_INTERNAL;
}

/* ---- connections ---- */

/* Closes the connection (if any); its statements are to be prepared again. */
static void conn_drop(conn *c)
{
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->piped = 0;
    c->gen++;
}

/* The connection broke: drop it; inside a transaction, remember that until
 * the rollback. Returns AOP_ERR_UNAVAILABLE. */
static aop_err conn_lost(conn *c, const char *op)
{
    log_debug("database connection lost", LF_S("op", op));
    conn_drop(c);
    if (c->in_tx)
        c->lost = true;
    return AOP_ERR_UNAVAILABLE;
}

static void stmt_clear(db_stmt *st)
{
    PQclear(((pq_stmt *)st)->res);
}

/* The pool's conn_free. */
static void conn_free(db_conn *base)
{
    conn *c = (conn *)base;
    conn_drop(c);
    db_conn_free_stmts(base, stmt_clear);
    free(c);
}

/* Server notices (CREATE ... IF NOT EXISTS skipping, a FATAL that arrives
 * while idle) go to the debug log instead of libpq's stderr. */
static void notice_log(void *arg, const char *message)
{
    char line[512];
    (void)arg;
    scrub(message, NULL, line, sizeof(line));
    log_debug("database notice", LF_S("message", line));
}

/* Opens a connection (blocking, bounded by connect_timeout). NULL with the
 * scrubbed reason in why when it fails. */
static PGconn *connect_now(pq_store *h, char *why, size_t whylen)
{
    PGconn *pg = PQconnectdbParams(h->keys, h->vals, 0);
    if (pg && PQstatus(pg) == CONNECTION_OK) {
        PQsetNoticeProcessor(pg, notice_log, NULL);
        return pg;
    }
    scrub(pg ? PQerrorMessage(pg) : "out of memory", h->password, why, whylen);
    PQfinish(pg);
    return NULL;
}

/*
 * A new connection for a thread, unless the database is known to be down:
 * within DOWN_RETRY_MS of a failed connect every caller fails at once, and
 * after it only one caller at a time tries. AOP_ERR_UNAVAILABLE otherwise.
 */
static aop_err conn_open(pq_store *h, PGconn **out)
{
    char why[512];
    *out = NULL;
    long long until = atomic_load(&h->down_until);
    if (until) {
        if (clock_mono_ms() < until || atomic_exchange(&h->probing, 1))
            return AOP_ERR_UNAVAILABLE;
    }
    PGconn *pg = connect_now(h, why, sizeof(why));
    if (until)
        atomic_store(&h->probing, 0);
    if (!pg) {
        atomic_store(&h->down_until, (long long)clock_mono_ms() + DOWN_RETRY_MS);
        if (!atomic_exchange(&h->outage_logged, true))
            log_warn("database unreachable", LF_S("database", h->where), LF_S("error", why));
        return AOP_ERR_UNAVAILABLE;
    }
    atomic_store(&h->down_until, 0);
    if (atomic_exchange(&h->outage_logged, false))
        log_info("database reachable again", LF_S("database", h->where));
    *out = pg;
    return AOP_OK;
}

/* The calling thread's state, created on first use; NULL only when the
 * thread slot cannot be set. */
static conn *conn_of_thread(pq_store *h)
{
    conn *c = (conn *)db_pool_get(&h->pool);
    if (c)
        return c;
    c = xcalloc(1, sizeof(*c));
    c->gen = 1;
    if (db_pool_add(&h->pool, &c->base) != 0) {
        free(c);
        log_error("database error", LF_S("op", "open"),
                  LF_S("error", "cannot set the thread's connection"));
        return NULL;
    }
    return c;
}

/*
 * Outside a transaction, an idle connection has nothing to say: when its
 * socket is readable the server is closing it (a restart sends FATAL
 * admin_shutdown, then the end of the stream, which libpq may not have seen
 * yet), so it is dropped before a statement is sent on it, and the caller
 * gets a new one instead of an error. One poll() per call.
 */
static void conn_check_idle(conn *c)
{
    if (!c->pg || c->in_tx)
        return;
    struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN};
    if (p.fd < 0 || poll(&p, 1, 0) > 0) {
        log_debug("database connection closed by the server; reconnecting");
        conn_drop(c);
    }
}

/* The calling thread's live connection, (re)opened when needed. */
static aop_err conn_borrow(pq_store *h, conn **out)
{
    *out = NULL;
    conn *c = conn_of_thread(h);
    if (!c)
        return AOP_ERR_INTERNAL;
    if (c->lost)
        return AOP_ERR_UNAVAILABLE; /* until the transaction is rolled back */
    conn_check_idle(c);
    if (!c->pg) {
        aop_err rc = conn_open(h, &c->pg);
        if (rc != AOP_OK)
            return rc;
    }
    *out = c;
    return AOP_OK;
}

/* Maps a failed result on c: a broken connection is dropped. Clears res. */
static aop_err result_error(conn *c, PGresult *res, const char *op)
{
    aop_err rc = pq_error(res, op);
    PQclear(res);
    if (PQstatus(c->pg) == CONNECTION_BAD)
        return conn_lost(c, op);
    return rc;
}

/* Runs fixed SQL without parameters (one or several statements) on c. */
static aop_err exec_simple(conn *c, const char *sql, const char *op)
{
    PGresult *res = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(res);
    if (res && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
        PQclear(res);
        return AOP_OK;
    }
    return result_error(c, res, op);
}

/* ---- pipeline mode ----
 *
 * Inside a transaction, a statement whose answer nobody waits for (BEGIN,
 * db_send's: inserts, node rows, events, NOTIFY) is sent without waiting
 * (libpq's pipeline mode): the server runs them in order, and their
 * answers are read with the next statement whose answer is wanted, or the
 * COMMIT, in the same round trip. The first of them that failed is that
 * statement's error (the server skips the rest up to the sync, and the
 * transaction is rolled back as after any error). Statements are prepared
 * outside the pipeline: one that is not yet makes the answers be read
 * first.
 */

/* One more statement on c's pipeline (entered first when it is not);
 * sent: the PQsend call's answer. */
static aop_err pipe_add(conn *c, int sent, const char *op)
{
    if (!sent)
        return conn_lost(c, op);
    c->piped_op[c->piped++] = op;
    return AOP_OK;
}

static aop_err pipe_enter(conn *c, const char *op)
{
    if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF || PQenterPipelineMode(c->pg))
        return AOP_OK;
    return conn_lost(c, op);
}

/*
 * Syncs c's pipeline, reads every answer and leaves pipeline mode. The
 * first statement that failed gives the error; else, with keep, the last
 * statement's result is handed over in *keep (PQclear it).
 */
static aop_err pipe_read(conn *c, PGresult **keep)
{
    PGresult *failed = NULL, *res;
    const char *failed_op = NULL, *op = c->piped ? c->piped_op[c->piped - 1] : "sync";
    if (keep)
        *keep = NULL;
    if (PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF)
        return AOP_OK;
    if (!PQpipelineSync(c->pg))
        return conn_lost(c, op);
    for (int i = 0; i < c->piped; i++) {
        while ((res = PQgetResult(c->pg)) != NULL) {
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_FATAL_ERROR && !failed) {
                failed = res;
                failed_op = c->piped_op[i];
            } else if (keep && !*keep && i == c->piped - 1 &&
                       (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
                *keep = res;
            } else {
                PQclear(res);
            }
        }
        if (PQstatus(c->pg) == CONNECTION_BAD)
            break;
    }
    c->piped = 0;
    bool synced = false;
    while (PQstatus(c->pg) != CONNECTION_BAD && (res = PQgetResult(c->pg)) != NULL) {
        synced = synced || PQresultStatus(res) == PGRES_PIPELINE_SYNC;
        PQclear(res);
        if (synced)
            break;
    }
    if (!synced || !PQexitPipelineMode(c->pg)) {
        if (keep) {
            PQclear(*keep);
            *keep = NULL;
        }
        if (failed)
            return result_error(c, failed, failed_op);
        return conn_lost(c, op);
    }
    if (failed) {
        if (keep) {
            PQclear(*keep);
            *keep = NULL;
        }
        return result_error(c, failed, failed_op);
    }
    return AOP_OK;
}

/* Prepares st (text, with LOCK_ROWS when lock) on c unless it is
 * prepared there already, typing the values as v's. */
static aop_err stmt_prepare(conn *c, pq_stmt *st, const char *text, bool lock, const db_val *v,
                            int n, const char *op)
{
    Oid types[MAX_PARAMS];
    if (st->gen == c->gen)
        return AOP_OK;
    if (!st->name[0])
        snprintf(st->name, sizeof(st->name), "s%d", c->names++);
    for (int i = 0; i < n; i++)
        types[i] = v[i].type == 'i' ? INT8OID : v[i].type == 'd' ? FLOAT8OID
                 : v[i].type == 'b' ? BOOLOID : 0;
    size_t len = strlen(text) + sizeof(LOCK_ROWS);
    char *locked = lock ? xmalloc(len) : NULL;
    if (locked)
        snprintf(locked, len, "%s" LOCK_ROWS, text);
    aop_err rc = c->piped ? pipe_read(c, NULL) : AOP_OK; /* not in a pipeline */
    PGresult *res = rc == AOP_OK ? PQprepare(c->pg, st->name, locked ? locked : text, n, types)
                                 : NULL;
    free(locked);
    if (rc != AOP_OK)
        return rc;
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
        return result_error(c, res, op);
    PQclear(res);
    st->gen = c->gen;
    return AOP_OK;
}

/* The n values of v as text for libpq (numbers printed into nums). */
static void values_text(const db_val *v, int n, const char **vals, char (*nums)[32])
{
    for (int i = 0; i < n; i++) {
        vals[i] = nums[i];
        if (v[i].type == 't')
            vals[i] = v[i].u.t;
        else if (v[i].type == 'b')
            vals[i] = v[i].u.i ? "true" : "false";
        else if (v[i].type == 'd')
            snprintf(nums[i], sizeof(nums[i]), "%.17g", v[i].u.d);
        else
            snprintf(nums[i], sizeof(nums[i]), "%lld", v[i].u.i);
    }
}

/* The calling thread's connection and sql's statement on it, prepared.
 * Inside a transaction a lock_in_tx statement is its own variant (keyed by
 * the address of its pg member). */
static aop_err stmt_of(void *hp, const db_sql *sql, const char *op, const db_val *v, int n,
                       conn **c, pq_stmt **out)
{
    db_stmt *base = NULL;
    *out = NULL;
    aop_err rc = conn_borrow(hp, c);
    if (rc != AOP_OK)
        return rc;
    bool lock = sql->lock_in_tx && (*c)->in_tx;
    const void *key = lock ? (const void *)&sql->pg : (const void *)sql;
    rc = db_conn_stmt(&(*c)->base, key, sql->pg, &store_pg_vtbl, sizeof(pq_stmt), n, op, &base);
    if (rc == AOP_OK)
        rc = stmt_prepare(*c, (pq_stmt *)base, sql->pg, lock, v, n, op);
    if (rc == AOP_OK)
        *out = (pq_stmt *)base;
    return rc;
}

/*
 * Runs sql's statement on the calling thread's connection with the n values
 * of v, leaving its result on the statement. Statements sent ahead
 * (pipeline mode) go in the same round trip.
 */
static aop_err pq_run(void *hp, const db_sql *sql, const char *op, const db_val *v, int n,
                      db_stmt **out)
{
    const char *vals[MAX_PARAMS];
    char nums[MAX_PARAMS][32];
    conn *c;
    pq_stmt *st;
    *out = NULL;
    aop_err rc = stmt_of(hp, sql, op, v, n, &c, &st);
    if (rc != AOP_OK)
        return rc;
    values_text(v, n, vals, nums);
    PGresult *res = NULL;
    if (c->piped) {
        rc = pipe_add(c, PQsendQueryPrepared(c->pg, st->name, n, vals, NULL, NULL, 0), op);
        if (rc == AOP_OK)
            rc = pipe_read(c, &res);
        if (rc != AOP_OK)
            return rc;
    } else {
        res = PQexecPrepared(c->pg, st->name, n, vals, NULL, NULL, 0);
    }
    ExecStatusType status = PQresultStatus(res);
    if (!res || (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK))
        return result_error(c, res, op);
    PQclear(st->res);
    st->res = res;
    st->row = -1;
    st->nrows = PQntuples(res);
    *out = &st->base;
    return AOP_OK;
}

static void pq_done(db_stmt *base);

/* db_send: inside a transaction the statement is sent in pipeline mode
 * (its answer read later; PIPE_MAX of them at most), else run. */
static aop_err pq_send(void *hp, const db_sql *sql, const char *op, const db_val *v, int n)
{
    const char *vals[MAX_PARAMS];
    char nums[MAX_PARAMS][32];
    conn *c;
    pq_stmt *st;
    aop_err rc = stmt_of(hp, sql, op, v, n, &c, &st);
    if (rc == AOP_OK && !c->in_tx) {
        db_stmt *done = NULL;
        rc = pq_run(hp, sql, op, v, n, &done);
        if (done)
            pq_done(done);
        return rc;
    }
    if (rc == AOP_OK)
        rc = pipe_enter(c, op);
    if (rc != AOP_OK)
        return rc;
    values_text(v, n, vals, nums);
    rc = pipe_add(c, PQsendQueryPrepared(c->pg, st->name, n, vals, NULL, NULL, 0), op);
    if (rc == AOP_OK && c->piped >= PIPE_MAX)
        rc = pipe_read(c, NULL);
    return rc;
}

static aop_err pq_step(db_stmt *base, const char *op, bool *row)
{
    pq_stmt *st = (pq_stmt *)base;
    (void)op;
    *row = ++st->row < st->nrows;
    return AOP_OK;
}

static long long pq_changes(db_stmt *base)
{
    return strtoll(PQcmdTuples(((pq_stmt *)base)->res), NULL, 10);
}

static void pq_done(db_stmt *base)
{
    pq_stmt *st = (pq_stmt *)base;
    PQclear(st->res);
    st->res = NULL;
}

static bool pq_col_null(db_stmt *base, int i)
{
    pq_stmt *st = (pq_stmt *)base;
    return PQgetisnull(st->res, st->row, i) != 0;
}

static const char *pq_col_text(db_stmt *base, int i)
{
    pq_stmt *st = (pq_stmt *)base;
    return PQgetvalue(st->res, st->row, i);
}

/* A jsonb value comes back without the blanks outside its strings, as it
 * was written. */
static char *pq_col_dup(db_stmt *base, int i, arena *a)
{
    pq_stmt *st = (pq_stmt *)base;
    const char *s = PQgetvalue(st->res, st->row, i);
    size_t len = (size_t)PQgetlength(st->res, st->row, i);
    if (PQftype(st->res, i) != JSONBOID)
        return arena_strndup(a, s, len);
    char *out = arena_alloc(a, len + 1), *o = out;
    bool in_string = false, escaped = false;
    for (; *s; s++) {
        if (!in_string && strchr(" \n\t\r", *s))
            continue; /* a blank outside strings */
        *o++ = *s;
        if (escaped)
            escaped = false;
        else if (in_string && *s == '\\')
            escaped = true;
        else if (*s == '"')
            in_string = !in_string;
    }
    *o = '\0';
    return out;
}

/* Also reads a boolean ("t" 1, "f" 0) and the integer part of a numeric. */
static long long pq_col_int(db_stmt *base, int i)
{
    const char *v = pq_col_text(base, i);
    return v[0] == 't' ? 1 : strtoll(v, NULL, 10);
}

static double pq_col_double(db_stmt *base, int i)
{
    return strtod(pq_col_text(base, i), NULL);
}

static aop_err pq_exec(void *h, const char *sql, const char *op)
{
    conn *c;
    aop_err rc = conn_borrow(h, &c);
    if (rc == AOP_OK && c->piped)
        rc = pipe_read(c, NULL);
    return rc == AOP_OK ? exec_simple(c, sql, op) : rc;
}

/* ---- ping, transactions, events ---- */

/* Runs a statement without values whose rows are not read. */
static aop_err run_fixed(void *h, const db_sql *sql, const char *op, const char *text)
{
    db_stmt *st = NULL;
    db_val v = DB_TEXT(text);
    aop_err rc = pq_run(h, sql, op, &v, text ? 1 : 0, &st);
    if (st)
        pq_done(st);
    return rc;
}

static aop_err pq_ping(void *h)
{
    static const db_sql q_ping = DB_PAIR(NULL, "SELECT 1");
    return run_fixed(h, &q_ping, "ping", NULL);
}

/* Sent ahead: its answer comes with the transaction's first statement
 * whose answer is wanted, or its COMMIT. */
static aop_err pq_begin(void *hp)
{
    conn *c;
    aop_err rc = conn_borrow(hp, &c);
    if (rc != AOP_OK)
        return rc;
    rc = pipe_enter(c, "begin");
    if (rc == AOP_OK)
        rc = pipe_add(c, PQsendQueryParams(c->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0),
                      "begin");
    if (rc == AOP_OK) {
        c->in_tx = true;
        c->lost = false;
    }
    return rc;
}

/* COMMIT's own error (a serialization failure is unavailable). A COMMIT of
 * a transaction that failed earlier is a ROLLBACK for PostgreSQL: an error
 * here. The state stays "in transaction" until the rollback that follows a
 * failed commit. */
static aop_err pq_commit(void *hp)
{
    pq_store *h = hp;
    conn *c = conn_of_thread(h);
    if (!c || !c->in_tx)
        return AOP_ERR_INTERNAL;
    if (c->lost || !c->pg)
        return AOP_ERR_UNAVAILABLE;
    PGresult *res = NULL;
    if (c->piped) {
        aop_err rc = pipe_add(c, PQsendQueryParams(c->pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0),
                              "commit");
        if (rc == AOP_OK)
            rc = pipe_read(c, &res);
        if (rc != AOP_OK)
            return rc;
    } else {
        res = PQexec(c->pg, "COMMIT");
    }
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
        return result_error(c, res, "commit");
    bool rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
    PQclear(res);
    if (rolled_back) {
        log_error("database error", LF_S("op", "commit"),
                  LF_S("error", "the transaction had failed and was rolled back"));
        return AOP_ERR_INTERNAL;
    }
    c->in_tx = false;
    return AOP_OK;
}

/* Always ends the transaction: after a lost connection there is nothing to
 * roll back, and a ROLLBACK that fails drops the connection. */
static aop_err pq_rollback(void *hp)
{
    pq_store *h = hp;
    conn *c = conn_of_thread(h);
    if (!c)
        return AOP_OK;
    if (c->pg && c->piped)
        (void)pipe_read(c, NULL); /* the error that led here, mostly */
    if (c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE &&
        exec_simple(c, "ROLLBACK", "rollback") != AOP_OK)
        conn_drop(c);
    c->in_tx = false;
    c->lost = false;
    return AOP_OK;
}

/* Inside a transaction PostgreSQL sends it at commit, drops it on rollback
 * (and it goes in pipeline mode). */
static aop_err pq_publish(void *h, const char *payload)
{
    static const db_sql q_notify = DB_PAIR(NULL, "SELECT pg_notify('" CHANNEL "', $1)");
    db_val v = DB_TEXT(payload);
    return pq_send(h, &q_notify, "publish", &v, 1);
}

/* Waits until fd is ready for events or ms pass; -1 on a poll error. */
static int wait_fd(int fd, short events, int ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, ms);
    if (r < 0 && errno == EINTR)
        return 0;
    return r;
}

/* Whether the listener's owner asked it to stop: another thread sets the
 * flag, so it is read atomically. */
static bool stopped(const volatile int *stop)
{
    return __atomic_load_n(stop, __ATOMIC_ACQUIRE) != 0;
}

/* A listening connection, connecting without blocking longer than
 * LISTEN_POLL_MS between looks at *stop. NULL when it fails or stop is set. */
static PGconn *listen_connect(pq_store *h, const volatile int *stop, char *why, size_t whylen)
{
    PGconn *pg = PQconnectStartParams(h->keys, h->vals, 0);
    int64_t deadline = clock_mono_ms() + LISTEN_CONNECT_MS;
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    if (!pg || PQstatus(pg) == CONNECTION_BAD)
        goto fail;
    while (ps != PGRES_POLLING_OK) {
        if (ps == PGRES_POLLING_FAILED || stopped(stop) || clock_mono_ms() > deadline)
            goto fail;
        short ev = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        if (wait_fd(PQsocket(pg), ev, LISTEN_POLL_MS) < 0)
            goto fail;
        ps = PQconnectPoll(pg);
    }
    PQsetNoticeProcessor(pg, notice_log, NULL);
    PGresult *res = PQexec(pg, "LISTEN " CHANNEL);
    bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (ok && PQsetnonblocking(pg, 1) == 0)
        return pg;
fail:
    scrub(pg ? PQerrorMessage(pg) : "out of memory", h->password, why, whylen);
    if (!why[0])
        str_copy(why, whylen, stopped(stop) ? "stopped" : "timed out");
    PQfinish(pg);
    return NULL;
}

/* Delivers every notification waiting on pg. false when the connection
 * is lost. */
static bool listen_drain(PGconn *pg, void (*fn)(void *arg, const char *payload), void *arg)
{
    if (!PQconsumeInput(pg))
        return false;
    PGnotify *n;
    while ((n = PQnotifies(pg)) != NULL) {
        fn(arg, n->extra);
        PQfreemem(n);
    }
    return PQstatus(pg) == CONNECTION_OK;
}

static aop_err pq_listen(void *hp, void (*fn)(void *arg, const char *payload), void *arg,
                  const volatile int *stop)
{
    pq_store *h = hp;
    PGconn *pg = NULL;
    bool missed = false, logged = false;
    char why[512];
    while (!stopped(stop)) {
        if (!pg) {
            pg = listen_connect(h, stop, why, sizeof(why));
            if (!pg) {
                if (!stopped(stop) && !logged)
                    log_warn("database event connection lost; retrying",
                             LF_S("database", h->where), LF_S("error", why));
                if (!stopped(stop))
                    logged = true;
                missed = true;
                if (!stopped(stop))
                    wait_fd(-1, 0, LISTEN_POLL_MS);
                continue;
            }
            if (logged)
                log_info("database event connection restored", LF_S("database", h->where));
            logged = false;
            if (missed)
                fn(arg, NULL);
        }
        int r = wait_fd(PQsocket(pg), POLLIN, LISTEN_POLL_MS);
        if (r < 0 || !listen_drain(pg, fn, arg)) {
            PQfinish(pg);
            pg = NULL;
            missed = true;
        }
    }
    PQfinish(pg);
    return AOP_OK;
}

/* ---- open and close ---- */

/*
 * Frees the connection options, closes every connection still open and
 * frees the store; also undoes a partly built one. Call it once no other
 * thread uses the store.
 */
static void pq_close(void *hp)
{
    pq_store *h = hp;
    PQconninfoFree(h->opts);
    free(h->keys);
    free(h->vals);
    free(h->where);
    free(h->password);
    db_pool_close(&h->pool);
    free(h);
}

const store_vtbl store_pg_vtbl = {
    DB_DRIVER(pq, "postgres", DB_PG),
    .send = pq_send,
    .publish = pq_publish,
    .listen = pq_listen,
};

/* The value the URL gives keyword, or NULL. */
static const char *opt_value(const PQconninfoOption *o, const char *keyword)
{
    for (; o && o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0 && o->val && o->val[0])
            return o->val;
    return NULL;
}

/* The URL's options plus ours where the URL has none: connect timeout,
 * application name, keepalives, UTF-8, no JIT compilation. */
static void conninfo_build(pq_store *h)
{
    static const char *const extra[][2] = {
        {"connect_timeout", "3"}, {"application_name", "aop"}, {"keepalives", "1"},
        {"keepalives_idle", "10"}, {"keepalives_interval", "5"}, {"keepalives_count", "3"},
        {"client_encoding", "UTF8"},
        /* Short statements only: compiling one (from a cost estimate over
         * 100000, as the claim's can be) takes longer than running it. */
        {"options", "-c jit=off"},
    };
    size_t n = 0, nextra = sizeof(extra) / sizeof(extra[0]);
    for (PQconninfoOption *o = h->opts; o->keyword; o++)
        n++;
    h->keys = xcalloc(n + nextra + 1, sizeof(char *));
    h->vals = xcalloc(n + nextra + 1, sizeof(char *));
    size_t k = 0;
    for (PQconninfoOption *o = h->opts; o->keyword; o++) {
        if (o->val && o->val[0]) {
            h->keys[k] = o->keyword;
            h->vals[k++] = o->val;
        }
    }
    for (size_t i = 0; i < nextra; i++) {
        if (!opt_value(h->opts, extra[i][0])) {
            h->keys[k] = extra[i][0];
            h->vals[k++] = extra[i][1];
        }
    }
}

/* The password as written in the URL (percent-encoded), or NULL. */
static char *url_password(const char *url)
{
    const char *s = strstr(url, "://");
    if (!s)
        return NULL;
    s += 3;
    const char *end = s + strcspn(s, "/?#");
    const char *at = NULL;
    for (const char *p = s; p < end; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return NULL;
    const char *colon = memchr(s, ':', (size_t)(at - s));
    return colon && at > colon + 1 ? xstrndup(colon + 1, (size_t)(at - colon - 1)) : NULL;
}

/*
 * Opens the store on the postgres:// or postgresql:// URL and opens the
 * calling thread's connection to prove the server reachable (a server that
 * is down fails the open). Returns the handle (free with pq_close), or NULL
 * with the reason in err, which never holds the password.
 */
void *store_pg_open(const char *url, char *err, size_t errlen)
{
    pq_store *h = xcalloc(1, sizeof(*h)), *ret = NULL;
    char *raw_pw = url_password(url), *msg = NULL, why[512];
    h->opts = PQconninfoParse(url, &msg);
    if (!h->opts) {
        scrub(msg ? msg : "out of memory", raw_pw, why, sizeof(why));
        snprintf(err, errlen, "DATABASE_URL: not a valid PostgreSQL URL: %s", why);
        goto out;
    }
    const char *pw = opt_value(h->opts, "password");
    h->password = pw ? xstrdup(pw) : NULL;
    const char *host = opt_value(h->opts, "host"), *port = opt_value(h->opts, "port");
    const char *db = opt_value(h->opts, "dbname");
    size_t wn = strlen(host ? host : "localhost") + strlen(port ? port : "5432") +
                strlen(db ? db : "") + 3;
    h->where = xmalloc(wn);
    snprintf(h->where, wn, "%s:%s/%s", host ? host : "localhost", port ? port : "5432",
             db ? db : "");
    conninfo_build(h);
    const char *no = db_pool_init(&h->pool, conn_free);
    if (no) {
        snprintf(err, errlen, "DATABASE_URL: %s", no);
        goto out;
    }
    conn *c = conn_of_thread(h);
    if (!c) {
        snprintf(err, errlen, "DATABASE_URL: cannot set the thread's connection");
        goto out;
    }
    c->pg = connect_now(h, why, sizeof(why));
    if (!c->pg) {
        char clean[512];
        scrub(why, raw_pw, clean, sizeof(clean));
        snprintf(err, errlen, "DATABASE_URL: cannot connect to %s: %s", h->where, clean);
        goto out;
    }
    ret = h;
    h = NULL;
out:
    if (msg)
        PQfreemem(msg);
    free(raw_pw);
    if (h)
        pq_close(h);
    return ret;
}
