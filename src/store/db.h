/*
 * db.h - the driver layer under the store port (not for code outside
 * src/store/). Each operation is written once (users.c, tokens.c,
 * workflows.c, executions.c, migrations.c) on the calls below; the drivers,
 * sqlite.c and pg.c, implement the entry points of store_vtbl (store.h).
 *
 * SQL: a statement is a static db_sql, its SQLite and PostgreSQL texts side
 * by side: DB_PAIR(sqlite, pg), or DB_BOTH(text) when they are the same.
 *  - Placeholders are $1..$n in both; the SQLite driver rewrites them to
 *    ?1..?n when it prepares (quoted literals left alone). A value is bound
 *    once however often its $n appears, always bound, never written in SQL.
 *  - A NULL text: the step does not exist in that dialect; running it
 *    answers AOP_OK, no row, no change (SQLite's workflow_tags rows,
 *    PostgreSQL's advisory locks).
 *  - lock_in_tx: inside a transaction the rows read stay locked against
 *    other writers until its end (PostgreSQL adds FOR NO KEY UPDATE;
 *    SQLite's single writer needs nothing).
 *  - Keep SQL portable where it costs nothing (CAST($1 AS TEXT) IS NULL,
 *    COUNT(*) FILTER (WHERE ...), CASE). PostgreSQL gets 'i', 'd', 'b'
 *    values as int8, float8, bool and infers a text's type from where it
 *    stands (an INSERT's column gives json or jsonb): cast only where
 *    nothing tells.
 * A connection prepares a statement once and finds it again by the address
 * of its db_sql, which must be static (or never freed, as db_list's are).
 *
 * An operation: db_op o = db_op_start(s, "name"); the calls below with &o;
 * return db_op_end(&o, rc), which records the duration under that name
 * (metrics, slow-operation log). Errors are the port's (store.h); a
 * statement whose $n count differs from the values given is refused
 * (AOP_ERR_INTERNAL, logged with the op's name). Every call gives its
 * statement back before it returns: rows are copied into the caller's
 * structs (db_row) and arena.
 *
 * Adding a table: its DDL in migrations.c, a new version at the end.
 * Adding an operation: its prototype in store.h, one function next to its
 * table's others with its db_sql, and a db_row for what it reads.
 */
#ifndef AOP_STORE_DB_H
#define AOP_STORE_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

enum { DB_SQLITE, DB_PG };

typedef struct db_sql {
    const char *sqlite;
    const char *pg;
    bool lock_in_tx;
} db_sql;

#define DB_PAIR(sqlite, pg) {(sqlite), (pg), false}
#define DB_BOTH(text) DB_PAIR(text, text)

/* One bound value: 't' text (NULL binds NULL), 'i' integer, 'd' double,
 * 'b' boolean. */
typedef struct db_val {
    char type;
    union {
        const char *t;
        long long i;
        double d;
    } u;
} db_val;

#define DB_TEXT(x) ((db_val){.type = 't', .u.t = (x)})
#define DB_INT(x) ((db_val){.type = 'i', .u.i = (x)})

typedef struct {
    store *s;
    const char *name;
    int64_t t0;
} db_op;

db_op db_op_start(store *s, const char *name);
aop_err db_op_end(const db_op *o, aop_err rc);

/*
 * How each column of a row goes into a member of the struct it fills, in
 * the statement's column order: DB_COPY into a char array, cut to fit;
 * DB_DUP an arena copy; DB_DUP_OR_NULL the same, NULL for SQL NULL (else
 * SQL NULL reads as "", 0 or false); DB_INT long long, DB_INT_OR_NEG -1
 * for SQL NULL; DB_DOUBLE; DB_BOOL; DB_STATUS an exec_status from its name.
 */
typedef enum {
    DB_COPY, DB_DUP, DB_DUP_OR_NULL, DB_INT, DB_INT_OR_NEG, DB_DOUBLE, DB_BOOL, DB_STATUS
} db_kind;

typedef struct {
    db_kind kind;
    size_t offset, size;
} db_col;

/* A row's columns and the size of the struct they fill (zeroed before a
 * row is read into it). */
typedef struct {
    const db_col *cols;
    int n;
    size_t size;
} db_row;

#define DB_COL(kind, type, member) {(kind), offsetof(type, member), sizeof(((type *)0)->member)}
#define DB_ROW(cols, type) {(cols), (int)(sizeof(cols) / sizeof((cols)[0])), sizeof(type)}

/*
 * Runs sql with the values fmt describes, one letter per $n: 't' const char
 * *, 'i' long long, 'd' double, 'b' int (as a boolean).
 *   db_exec: runs it to the end; *changes (may be NULL) the rows written.
 *   db_query_int: the first column of the first row, 0 when none.
 *   db_get: the first row into *item (memory from a), AOP_ERR_NOT_FOUND
 *     (*item zeroed) when there is none.
 *   db_rows: the rows into an array of row's structs, at most max of them
 *     (the rest are read, not kept): into *items when the caller set it
 *     (room for max), else into an array from a, grown by doubling (NULL
 *     when no row). *n: how many were kept.
 */
aop_err db_exec(db_op *o, const db_sql *sql, long long *changes, const char *fmt, ...);
/* db_exec without *changes, for a statement whose outcome nothing that
 * follows in the transaction depends on: inside a transaction on
 * PostgreSQL it is sent without waiting for its answer (pipeline mode), and
 * its error, if any, is that of the next statement whose answer is read, or
 * of the commit; the transaction then fails as a whole. Elsewhere db_exec. */
aop_err db_send(db_op *o, const db_sql *sql, const char *fmt, ...);
aop_err db_query_int(db_op *o, const db_sql *sql, long long *out, const char *fmt, ...);
aop_err db_get(db_op *o, const db_sql *sql, const db_row *row, void *item, arena *a,
               const char *fmt, ...);
aop_err db_rows(db_op *o, const db_sql *sql, const db_row *row, long long max, void **items,
                int *n, arena *a, const char *fmt, ...);
/*
 * A page of a list: *total, the first column of count run with the n values
 * of v; then, when the page holds any, page's rows run with v, limit and
 * offset (v has room for two more), into *items (from a), *nitems of them.
 * A negative offset reads as 0, a limit below 1 as none.
 */
aop_err db_page(db_op *o, const db_sql *count, const db_sql *page, db_val *v, int n,
                long long offset, long long limit, const db_row *row, void **items, int *nitems,
                long long *total, arena *a);

/* Runs fn(o, ctx) in a transaction of its own, after the statement lock
 * (a lock the transaction holds, or NULL): committed when fn returns
 * AOP_OK, rolled back otherwise. fn's error, or the commit's. */
aop_err db_tx(db_op *o, const db_sql *lock, aop_err (*fn)(db_op *o, void *ctx), void *ctx);

/* s when it holds something, else NULL (bound as SQL NULL). */
const char *db_opt(const char *s);
/* "%text%" for LIKE ... ESCAPE '\', text's own %, _ and \ escaped. */
char *db_like_pattern(const char *text, arena *a);

/*
 * A list query with optional filters: one statement per combination of
 * filters, sort and direction (each gets a plan of its own), built on first
 * use and never freed. Filter k (bit 1 << k) adds terms[k] to the WHERE
 * clause (or term(filters, k), when set), its own $1, $2 numbered after
 * those of the filters before it; LIMIT and OFFSET come last. order[s] is
 * sort s's ORDER BY, with two %s for the direction (the column's and the
 * tie-breaker's). count and page have room for 1 << nfilters and
 * (1 << nfilters) * nsorts * 2.
 */
typedef struct {
    const char *columns, *from;
    const char *where; /* a condition every statement has, or NULL */
    const db_sql *terms;
    const db_sql *(*term)(unsigned filters, int k);
    int nfilters, nsorts;
    const db_sql *order;
    db_sql *count, *page;
    atomic_bool built;
} db_list;
/* The count (count) or page statement of l for filters, sort, desc; a sort
 * out of range reads as the first. */
const db_sql *db_list_sql(db_list *l, unsigned filters, int sort, bool desc, bool count);
/* db_page over l: filter k applies when values[k] (l->nfilters of them,
 * at most DB_LIST_MAX_FILTERS) is not NULL, with that text as its value. */
#define DB_LIST_MAX_FILTERS 16
aop_err db_list_page(db_op *o, db_list *l, const char *const *values, int sort, bool desc,
                     long long offset, long long limit, const db_row *row, void **items,
                     int *nitems, long long *total, arena *a);

/* The numbered migrations (migrations.c): parts end with {0}. */
typedef struct {
    int version;         /* 1, 2, 3, … strictly increasing */
    const char *name;    /* e.g. "001_users" */
    const db_sql *parts;
} store_migration;
extern const store_migration store_migrations[];
extern const size_t store_migrations_len;
/* m's SQL in dialect (DB_SQLITE, DB_PG); the caller frees it. */
char *store_migration_sql(const store_migration *m, int dialect);

/* A store_wf_top from (id, name, executions, cost); workflows.c. */
extern const db_row store_wf_top_row;

/* ---- for the drivers ----
 *
 * A driver's entry points (store_vtbl): run borrows the calling thread's
 * connection, finds sql's statement (db_conn_stmt; prepared on first use
 * from its dialect's text), binds the n values of v and starts it; step
 * moves to the next row; columns are read from the current row (col_text
 * and col_dup: NULL or "" for SQL NULL; col_text valid until done); changes
 * is the rows the statement wrote; done gives it back. exec runs SQL
 * without values (DDL); begin, commit, rollback stay on the thread's
 * connection (a failed commit is followed by a rollback). Errors are mapped
 * to the port's and logged with op.
 */

/* The part of a driver's statement the shared code reads. */
struct db_stmt {
    const store_vtbl *v;
    int nparams; /* the highest $n of its text */
};
typedef struct db_stmt db_stmt;

/* The entry points every driver has, named <prefix>_run, <prefix>_step ...:
 * const store_vtbl store_x_vtbl = {DB_DRIVER(x, "x", DB_X), .reclaim = ...}. */
#define DB_DRIVER(prefix, driver_name, driver_dialect)                                     \
    .name = (driver_name), .dialect = (driver_dialect), .run = prefix##_run,               \
    .step = prefix##_step, .changes = prefix##_changes, .done = prefix##_done,             \
    .col_null = prefix##_col_null, .col_text = prefix##_col_text,                          \
    .col_dup = prefix##_col_dup, .col_int = prefix##_col_int,                              \
    .col_double = prefix##_col_double,                                                     \
    .exec = prefix##_exec, .begin = prefix##_begin, .commit = prefix##_commit,             \
    .rollback = prefix##_rollback, .ping = prefix##_ping, .close = prefix##_close

#define DB_STMT_SLOTS 1024 /* more than the distinct statements of all operations */

typedef struct {
    const void *key;
    db_stmt *st;
} db_slot;

struct db_pool;

/* What every driver connection starts with: the pool's link and the
 * connection's statements, found by key (the address of a db_sql, or of a
 * member of it for a variant). */
typedef struct db_conn {
    struct db_pool *pool;
    struct db_conn *next;
    db_slot stmts[DB_STMT_SLOTS];
} db_conn;

/* One connection per thread: a thread's first call makes it, a pthread key
 * destructor frees it when the thread exits (conn_free, the driver's, which
 * also frees its statements with db_conn_free_stmts), db_pool_close frees
 * what is left. */
typedef struct db_pool {
    pthread_key_t key;
    bool key_ok, mu_ok;
    pthread_mutex_t mu;
    db_conn *conns;
    void (*conn_free)(db_conn *c);
} db_pool;

/* NULL, or why the pool cannot be set up ("cannot create a mutex", "no
 * thread key left"); db_pool_close undoes a partial one. */
const char *db_pool_init(db_pool *p, void (*conn_free)(db_conn *c));
/* Frees every connection still open. Call it once no other thread uses the
 * pool; threads that exit afterwards no longer run the destructor. */
void db_pool_close(db_pool *p);
/* The calling thread's connection, NULL before its first. */
db_conn *db_pool_get(db_pool *p);
/* Makes c the calling thread's connection and lists it; -1 (c not listed)
 * when the thread slot cannot be set. */
int db_pool_add(db_pool *p, db_conn *c);
/*
 * c's statement for key: the one cached, or a new one of size bytes
 * (zeroed; the driver prepares it) whose text has the given $n count. Then
 * checks that count against n, the values given. AOP_ERR_INTERNAL (logged
 * with op) when they differ or the table is full.
 */
aop_err db_conn_stmt(db_conn *c, const void *key, const char *text, const store_vtbl *v,
                     size_t size, int n, const char *op, db_stmt **out);
/* Calls fn on each statement of c (to finalize it), frees them, empties the
 * table. */
void db_conn_free_stmts(db_conn *c, void (*fn)(db_stmt *st));
/* A copy of text with $n written ?n outside quotes (free it). */
char *db_sqlite_text(const char *text);

/* ---- for the query-plan tests ---- */

enum { STORE_WF_F_READER = 1, STORE_WF_F_STATUS = 2, STORE_WF_F_TAG = 4, STORE_WF_F_OWNER = 8,
       STORE_WF_F_SEARCH = 16 };
extern db_list store_wf_list;
enum { STORE_EXEC_F_READER = 1, STORE_EXEC_F_WORKFLOW = 2, STORE_EXEC_F_STATUS = 4,
       STORE_EXEC_F_RANGE = 8, STORE_EXEC_F_TRIGGER = 16 };
extern db_list store_exec_list;
extern const db_sql store_exec_claim_sql; /* SQLite's */
extern const db_sql store_exec_pick_sql;  /* PostgreSQL's first part */
extern const db_sql store_exec_active_sql; /* the quota's count */
extern const db_sql store_exec_prune_sql;

#endif
