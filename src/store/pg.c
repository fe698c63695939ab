/*
 * pg.c - the store port on PostgreSQL (libpq), for several instances
 * sharing one database.
 *
 * Connections: one per thread, like sqlite.c. A thread's first call opens
 * its connection, a pthread key destructor closes it at thread exit and
 * pq_close() closes whatever is still open. Each connection prepares its
 * statements on first use (named "s<slot>", keyed by the address of their
 * SQL text) and runs them with PQexecPrepared, values always sent as text
 * parameters.
 *
 * Outages: a connection the server closed while it was idle (restart,
 * terminated backend) is noticed before use and replaced. A call that finds
 * its connection broken otherwise (lost mid-statement) drops it with its
 * statements and answers AOP_ERR_UNAVAILABLE; the thread's next call
 * connects afresh. A failed connect marks the whole
 * store down for DOWN_RETRY_MS: meanwhile every connect fails at once
 * without touching the network, and afterwards one thread at a time probes.
 * One warning per outage, one info line when the database is back; the
 * URL's password is never logged nor put in an error message.
 *
 * Transactions stay on the thread's connection. When the connection is lost
 * inside one, every call answers AOP_ERR_UNAVAILABLE until the caller's
 * rollback, which then succeeds.
 *
 * Events travel through NOTIFY/LISTEN on the channel aop_events; pq_listen
 * keeps a connection of its own.
 */
#include "store/store.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "store/migrations.h"
#include "store/pg_int.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_SLOTS 1024     /* more than the distinct statements of all backend files */
#define MAX_PARAMS 64       /* parameters of one statement */
#define DOWN_RETRY_MS 250   /* after a failed connect, others fail at once this long */
#define LISTEN_POLL_MS 250  /* how often the listener looks at *stop */
#define LISTEN_CONNECT_MS 3000
#define CHANNEL "aop_events"
/* pg_advisory_xact_lock key of migrations: "aopmigr" in ASCII. */
#define MIGRATION_LOCK "27425601403578226"

static const char q_ping[] = "SELECT 1";
static const char q_notify[] = "SELECT pg_notify('" CHANNEL "', $1)";
static const char q_migration_lock[] = "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")";
static const char q_migration_max[] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
static const char q_migration_has[] = "SELECT 1 FROM schema_migrations WHERE version = $1";
static const char q_migration_add[] =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)";
static const char schema_migrations_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL)";

typedef struct pq_store pq_store;

/* One thread's connection state; owned by the store's list. pg is NULL
 * between a loss and the next connect. stmts[i] is the SQL prepared as
 * "s<i>" on pg. */
typedef struct conn {
    PGconn *pg;
    const char *stmts[STMT_SLOTS];
    bool in_tx;  /* between begin and commit/rollback */
    bool lost;   /* the connection died inside that transaction */
    pq_store *owner;
    struct conn *next;
} conn;

struct pq_store {
    /* libpq keywords and values: the URL's own plus ours; NULL-terminated. */
    const char **keys;
    const char **vals;
    PQconninfoOption *opts; /* owns the URL's strings */
    char *where;            /* "host:port/db", for messages */
    char *password;         /* to scrub from messages; may be NULL */
    pthread_key_t key;
    bool key_ok;
    pthread_mutex_t mu;     /* guards conns */
    conn *conns;
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
 * pg_int.h). A result without SQLSTATE is libpq's own failure (a lost
 * connection, mostly): unavailable. Unavailable errors are logged by the
 * outage logic, conflicts not at all.
 */
aop_err pq_error(const PGresult *res, const char *op)
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

/* Closes the connection (if any) and forgets its statements. */
static void conn_drop(conn *c)
{
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    memset(c->stmts, 0, sizeof(c->stmts));
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

static void conn_free(conn *c)
{
    if (!c)
        return;
    conn_drop(c);
    free(c);
}

/* pthread key destructor: the thread is exiting, so its connection goes. */
static void conn_thread_exit(void *p)
{
    conn *c = p;
    pq_store *h = c->owner;
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
    conn *c = pthread_getspecific(h->key);
    if (c)
        return c;
    c = xcalloc(1, sizeof(*c));
    c->owner = h;
    if (pthread_setspecific(h->key, c) != 0) {
        free(c);
        log_error("database error", LF_S("op", "open"),
                  LF_S("error", "cannot set the thread's connection"));
        return NULL;
    }
    pthread_mutex_lock(&h->mu);
    c->next = h->conns;
    h->conns = c;
    pthread_mutex_unlock(&h->mu);
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

/* The statement name for sql on c ("s<slot>" in name), prepared on first
 * use. sql must have static storage: its address is the key. */
static aop_err stmt_name(conn *c, const char *sql, const char *op, char name[16])
{
    size_t i = ((uintptr_t)sql >> 3) % STMT_SLOTS;
    for (int probes = 0; probes < STMT_SLOTS; probes++, i = (i + 1) % STMT_SLOTS) {
        snprintf(name, 16, "s%zu", i);
        if (c->stmts[i] == sql)
            return AOP_OK;
        if (c->stmts[i])
            continue;
        PGresult *res = PQprepare(c->pg, name, sql, 0, NULL);
        if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
            return result_error(c, res, op);
        PQclear(res);
        c->stmts[i] = sql;
        return AOP_OK;
    }
    log_error("database statement table is full", LF_S("op", op));
    return AOP_ERR_INTERNAL;
}

/* Renders the values of ap as fmt says (see pg_int.h) into vals, using
 * nums for numbers. -1 on a bad format. */
static int params_render(const char *fmt, va_list ap, const char **vals, char nums[][32])
{
    int n = 0;
    for (; *fmt; fmt++, n++) {
        if (n == MAX_PARAMS)
            return -1;
        switch (*fmt) {
        case 't':
            vals[n] = va_arg(ap, const char *);
            break;
        case 'i':
            snprintf(nums[n], 32, "%lld", va_arg(ap, long long));
            vals[n] = nums[n];
            break;
        case 'b':
            vals[n] = va_arg(ap, int) ? "true" : "false";
            break;
        case 'd':
            snprintf(nums[n], 32, "%.17g", va_arg(ap, double));
            vals[n] = nums[n];
            break;
        default:
            return -1;
        }
    }
    return n;
}

/* Runs the prepared statement for sql with n text values (NULL: SQL NULL). */
static aop_err run_texts(pq_store *h, const char *sql, const char *op, PGresult **out, int n,
                         const char *const *vals)
{
    conn *c;
    char name[16];
    *out = NULL;
    aop_err rc = conn_borrow(h, &c);
    if (rc == AOP_OK)
        rc = stmt_name(c, sql, op, name);
    if (rc != AOP_OK)
        return rc;
    PGresult *res = PQexecPrepared(c->pg, name, n, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (!res || (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK))
        return result_error(c, res, op);
    *out = res;
    return AOP_OK;
}

static aop_err vquery(void *hp, const char *sql, const char *op, PGresult **out,
                      const char *fmt, va_list ap)
{
    const char *vals[MAX_PARAMS];
    char nums[MAX_PARAMS][32];
    *out = NULL;
    int n = params_render(fmt, ap, vals, nums);
    if (n < 0) {
        log_error("database error", LF_S("op", op), LF_S("error", "bad parameter format"));
        return AOP_ERR_INTERNAL;
    }
    return run_texts(hp, sql, op, out, n, vals);
}

aop_err pq_query_page(void *h, const char *sql, const char *op, PGresult **res, int n,
                      const char *const *texts, bool page, long long limit, long long offset)
{
    const char *vals[MAX_PARAMS];
    char nums[2][32];
    if (n < 0 || n > MAX_PARAMS - 2) {
        log_error("database error", LF_S("op", op), LF_S("error", "too many parameters"));
        return AOP_ERR_INTERNAL;
    }
    for (int i = 0; i < n; i++)
        vals[i] = texts[i];
    if (page) {
        snprintf(nums[0], sizeof(nums[0]), "%lld", limit);
        snprintf(nums[1], sizeof(nums[1]), "%lld", offset);
        vals[n++] = nums[0];
        vals[n++] = nums[1];
    }
    return run_texts(h, sql, op, res, n, vals);
}

aop_err pq_query(void *h, const char *sql, const char *op, PGresult **res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vquery(h, sql, op, res, fmt, ap);
    va_end(ap);
    return rc;
}

aop_err pq_exec(void *h, const char *sql, const char *op, long long *changes, const char *fmt,
                ...)
{
    PGresult *res = NULL;
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vquery(h, sql, op, &res, fmt, ap);
    va_end(ap);
    if (changes)
        *changes = rc == AOP_OK ? strtoll(PQcmdTuples(res), NULL, 10) : 0;
    PQclear(res);
    return rc;
}

aop_err pq_query_row(void *h, const char *sql, const char *op, PGresult **res, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vquery(h, sql, op, res, fmt, ap);
    va_end(ap);
    if (rc == AOP_OK && PQntuples(*res) == 0) {
        PQclear(*res);
        *res = NULL;
        rc = AOP_ERR_NOT_FOUND;
    }
    return rc;
}

aop_err pq_query_int(void *h, const char *sql, const char *op, long long *out, const char *fmt,
                     ...)
{
    PGresult *res = NULL;
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vquery(h, sql, op, &res, fmt, ap);
    va_end(ap);
    *out = rc == AOP_OK && PQntuples(res) > 0 && PQnfields(res) > 0 ? pq_col_int(res, 0, 0) : 0;
    PQclear(res);
    return rc;
}

/* ---- column readers ---- */

bool pq_col_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) != 0;
}

char *pq_col_dup(const PGresult *res, int row, int col, arena *a)
{
    return arena_strndup(a, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

void pq_col_copy(const PGresult *res, int row, int col, char *dst, size_t size)
{
    str_copy(dst, size, PQgetvalue(res, row, col));
}

/* Also reads a boolean ("t" 1, "f" 0) and the integer part of a numeric. */
long long pq_col_int(const PGresult *res, int row, int col)
{
    const char *v = PQgetvalue(res, row, col);
    if (v[0] == 't')
        return 1;
    return strtoll(v, NULL, 10);
}

double pq_col_double(const PGresult *res, int row, int col)
{
    return strtod(PQgetvalue(res, row, col), NULL);
}

bool pq_col_bool(const PGresult *res, int row, int col)
{
    return PQgetvalue(res, row, col)[0] == 't';
}

/* ---- ping, claim, transactions, events ---- */

/* Whether the calling thread is inside begin..commit/rollback: reads in a
 * transaction lock the rows they are about to rewrite. (Wanted in
 * pg_int.h; declared here and in pg_users.c until it is.) */
bool pq_in_tx(void *hp)
{
    pq_store *h = hp;
    conn *c = pthread_getspecific(h->key);
    return c && c->in_tx;
}

aop_err pq_ping(void *h)
{
    long long one = 0;
    return pq_query_int(h, q_ping, "ping", &one, "");
}

/* Many instances share a PostgreSQL database: nothing to claim. */
aop_err pq_claim(void *h, char *why, size_t whylen)
{
    (void)h;
    if (whylen)
        why[0] = '\0';
    return AOP_OK;
}

aop_err pq_begin(void *hp)
{
    conn *c;
    aop_err rc = conn_borrow(hp, &c);
    if (rc != AOP_OK)
        return rc;
    rc = exec_simple(c, "BEGIN", "begin");
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
aop_err pq_commit(void *hp)
{
    pq_store *h = hp;
    conn *c = conn_of_thread(h);
    if (!c || !c->in_tx)
        return AOP_ERR_INTERNAL;
    if (c->lost || !c->pg)
        return AOP_ERR_UNAVAILABLE;
    PGresult *res = PQexec(c->pg, "COMMIT");
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
aop_err pq_rollback(void *hp)
{
    pq_store *h = hp;
    conn *c = conn_of_thread(h);
    if (!c)
        return AOP_OK;
    if (c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE &&
        exec_simple(c, "ROLLBACK", "rollback") != AOP_OK)
        conn_drop(c);
    c->in_tx = false;
    c->lost = false;
    return AOP_OK;
}

/* Inside a transaction PostgreSQL sends it at commit, drops it on rollback. */
aop_err pq_publish(void *h, const char *payload)
{
    return pq_exec(h, q_notify, "publish", NULL, "t", payload);
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
        if (ps == PGRES_POLLING_FAILED || *stop || clock_mono_ms() > deadline)
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
        str_copy(why, whylen, *stop ? "stopped" : "timed out");
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

aop_err pq_listen(void *hp, void (*fn)(void *arg, const char *payload), void *arg,
                  const volatile int *stop)
{
    pq_store *h = hp;
    PGconn *pg = NULL;
    bool missed = false, logged = false;
    char why[512];
    while (!*stop) {
        if (!pg) {
            pg = listen_connect(h, stop, why, sizeof(why));
            if (!pg) {
                if (!*stop && !logged)
                    log_warn("database event connection lost; retrying",
                             LF_S("database", h->where), LF_S("error", why));
                if (!*stop)
                    logged = true;
                missed = true;
                if (!*stop)
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

/* ---- migrations ---- */

/* Applies migration m in its own transaction with its schema_migrations
 * row, after taking the migrations' advisory lock and checking again that
 * no other process applied it meanwhile. Sets *did when it applied m. */
static aop_err migration_apply(pq_store *h, const store_migration *m, bool *did)
{
    long long has = 0, lock = 0;
    char now[25];
    conn *c;
    *did = false;
    aop_err rc = pq_begin(h);
    if (rc != AOP_OK)
        return rc;
    rc = pq_query_int(h, q_migration_lock, "migrate", &lock, "");
    if (rc == AOP_OK)
        rc = pq_query_int(h, q_migration_has, "migrate", &has, "i", (long long)m->version);
    if (rc != AOP_OK || has)
        goto out;
    if ((rc = conn_borrow(h, &c)) != AOP_OK)
        goto out;
    if ((rc = exec_simple(c, m->sql, "migrate")) != AOP_OK) {
        log_error("database migration failed", LF_I("version", m->version),
                  LF_S("name", m->name));
        goto out;
    }
    clock_format_rfc3339(clock_now_ms(), now);
    rc = pq_exec(h, q_migration_add, "migrate", NULL, "itt", (long long)m->version, m->name, now);
    if (rc == AOP_OK)
        rc = pq_commit(h);
    if (rc == AOP_OK) {
        *did = true;
        log_info("database migration applied", LF_I("version", m->version),
                 LF_S("name", m->name));
    }
out:
    if (rc != AOP_OK || has)
        pq_rollback(h);
    return rc;
}

/* Creates schema_migrations (under the lock: concurrent CREATE TABLE IF
 * NOT EXISTS can collide) and reads the newest version recorded. */
static aop_err migrations_table(pq_store *h, long long *max)
{
    long long lock = 0;
    conn *c;
    aop_err rc = pq_begin(h);
    if (rc != AOP_OK)
        return rc;
    rc = pq_query_int(h, q_migration_lock, "migrate", &lock, "");
    if (rc == AOP_OK)
        rc = conn_borrow(h, &c);
    if (rc == AOP_OK)
        rc = exec_simple(c, schema_migrations_sql, "migrate");
    if (rc == AOP_OK)
        rc = pq_query_int(h, q_migration_max, "migrate", max, "");
    if (rc == AOP_OK)
        rc = pq_commit(h);
    if (rc != AOP_OK)
        pq_rollback(h);
    return rc;
}

/* Applies every migration the database has not recorded, in order; refuses
 * a database whose schema is newer than the binary's list. */
aop_err pq_migrate(void *hp, int *applied)
{
    pq_store *h = hp;
    long long max = 0;
    *applied = 0;
    aop_err rc = migrations_table(h, &max);
    if (rc != AOP_OK)
        return rc;
    size_t n = store_pg_migrations_len;
    int known = n ? store_pg_migrations[n - 1].version : 0;
    if (max > known) {
        log_error("database schema is newer than this binary", LF_I("databaseVersion", max),
                  LF_I("binaryVersion", known));
        return AOP_ERR_INTERNAL;
    }
    for (size_t i = 0; i < n; i++) {
        bool did = false;
        if (store_pg_migrations[i].version <= max)
            continue;
        if ((rc = migration_apply(h, &store_pg_migrations[i], &did)) != AOP_OK)
            return rc;
        *applied += did;
    }
    return AOP_OK;
}

/* ---- open and close ---- */

/*
 * Closes every connection still open and frees the store. NULL-safe; also
 * undoes a partly built store. Call it once no other thread uses the store.
 */
void pq_close(void *hp)
{
    pq_store *h = hp;
    if (!h)
        return;
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
    PQconninfoFree(h->opts);
    free(h->keys);
    free(h->vals);
    free(h->where);
    free(h->password);
    free(h);
}

/* The value the URL gives keyword, or NULL. */
static const char *opt_value(const PQconninfoOption *o, const char *keyword)
{
    for (; o && o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0 && o->val && o->val[0])
            return o->val;
    return NULL;
}

/* The URL's options plus ours where the URL has none: connect timeout,
 * application name, keepalives, UTF-8. */
static void conninfo_build(pq_store *h)
{
    static const char *const extra[][2] = {
        {"connect_timeout", "3"}, {"application_name", "aop"}, {"keepalives", "1"},
        {"keepalives_idle", "10"}, {"keepalives_interval", "5"}, {"keepalives_count", "3"},
        {"client_encoding", "UTF8"},
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
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        snprintf(err, errlen, "DATABASE_URL: cannot create a mutex");
        free(h);
        h = NULL;
        goto out;
    }
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
    if (pthread_key_create(&h->key, conn_thread_exit) != 0) {
        snprintf(err, errlen, "DATABASE_URL: no thread key left");
        goto out;
    }
    h->key_ok = true;
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
    pq_close(h);
    return ret;
}

const store_vtbl store_pg_vtbl = {
    .name = "postgres",
    .ping = pq_ping,
    .migrate = pq_migrate,
    .claim = pq_claim,
    .begin = pq_begin,
    .commit = pq_commit,
    .rollback = pq_rollback,
    .user_insert = pq_user_insert,
    .user_get_by_email = pq_user_get_by_email,
    .user_get_by_id = pq_user_get_by_id,
    .user_update = pq_user_update,
    .user_set_login = pq_user_set_login,
    .user_list = pq_user_list,
    .family_insert = pq_family_insert,
    .family_extend = pq_family_extend,
    .family_revoke = pq_family_revoke,
    .families_revoke_user = pq_families_revoke_user,
    .refresh_insert = pq_refresh_insert,
    .refresh_get = pq_refresh_get,
    .refresh_use = pq_refresh_use,
    .access_revoke = pq_access_revoke,
    .token_revoked = pq_token_revoked,
    .tokens_prune = pq_tokens_prune,
    .apikey_insert = pq_apikey_insert,
    .apikey_count = pq_apikey_count,
    .apikey_list = pq_apikey_list,
    .apikey_get_by_hash = pq_apikey_get_by_hash,
    .apikey_delete = pq_apikey_delete,
    .apikey_touch = pq_apikey_touch,
    .audit_insert = pq_audit_insert,
    .workflow_insert = pq_workflow_insert,
    .workflow_get = pq_workflow_get,
    .workflow_update = pq_workflow_update,
    .workflow_delete = pq_workflow_delete,
    .workflow_list = pq_workflow_list,
    .workflow_version_insert = pq_workflow_version_insert,
    .workflow_version_list = pq_workflow_version_list,
    .workflow_version_get = pq_workflow_version_get,
    .workflow_summary = pq_workflow_summary,
    .execution_insert = pq_execution_insert,
    .execution_get = pq_execution_get,
    .execution_nodes = pq_execution_nodes,
    .execution_list = pq_execution_list,
    .execution_claim = pq_execution_claim,
    .execution_renew = pq_execution_renew,
    .execution_requeue = pq_execution_requeue,
    .execution_release = pq_execution_release,
    .execution_owned = pq_execution_owned,
    .execution_node_put = pq_execution_node_put,
    .execution_nodes_end = pq_execution_nodes_end,
    .execution_finish = pq_execution_finish,
    .workflow_analytics_add = pq_workflow_analytics_add,
    .execution_delete = pq_execution_delete,
    .execution_stats = pq_execution_stats,
    .execution_summary = pq_execution_summary,
    .execution_prune = pq_execution_prune,
    .reclaim = NULL,
    .publish = pq_publish,
    .listen = pq_listen,
    .close = pq_close,
};
