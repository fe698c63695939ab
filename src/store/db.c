/*
 * db.c - the driver layer's shared half (see db.h): operations' timing,
 * running statements with checked values, reading rows, list statements,
 * and what both drivers keep alike (connections per thread, their
 * statement tables).
 */
#include "store/db.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "infra/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUES 64 /* values of one statement */

/* ---- operations ---- */

db_op db_op_start(store *s, const char *name)
{
    return (db_op){.s = s, .name = name, .t0 = clock_mono_ns()};
}

/* Records the operation's duration and logs it when slower than slow_ms. */
aop_err db_op_end(const db_op *o, aop_err rc)
{
    int64_t ns = clock_mono_ns() - o->t0;
    metrics_db_observe(o->name, ns);
    if (ns / 1000000 >= o->s->slow_ms)
        log_warn("slow database operation", LF_S("op", o->name), LF_D("durationMs", ns / 1e6),
                 LF_S("result", err_code(rc)));
    return rc;
}

bool db_is_pg(const db_op *o)
{
    return o->s->v->dialect == DB_PG;
}

aop_err db_begin(db_op *o)
{
    return o->s->v->begin(o->s->h);
}

aop_err db_commit(db_op *o)
{
    return o->s->v->commit(o->s->h);
}

aop_err db_rollback(db_op *o)
{
    return o->s->v->rollback(o->s->h);
}

/* ---- statements ---- */

/* Runs sql with the n values of v: *st ready to step (NULL when the text
 * is NULL). */
static aop_err run(db_op *o, const db_sql *sql, const db_val *v, int n, db_stmt **st)
{
    *st = NULL;
    if (!(o->s->v->dialect == DB_PG ? sql->pg : sql->sqlite))
        return AOP_OK; /* no such step in this dialect */
    return o->s->v->run(o->s->h, sql, o->name, v, n, st);
}

/* The values of ap as fmt says into v; their number, or -1 (logged) on a
 * letter that is not one or too many. */
static int values_of(const char *op, const char *fmt, va_list ap, db_val *v)
{
    int n = 0;
    for (; fmt[n]; n++) {
        if (n == MAX_VALUES)
            goto bad;
        v[n].type = fmt[n];
        if (fmt[n] == 't')
            v[n].u.t = va_arg(ap, const char *);
        else if (fmt[n] == 'i')
            v[n].u.i = va_arg(ap, long long);
        else if (fmt[n] == 'd')
            v[n].u.d = va_arg(ap, double);
        else if (fmt[n] == 'b')
            v[n].u.i = va_arg(ap, int) != 0;
        else
            goto bad;
    }
    return n;
bad:
    log_error("database error", LF_S("op", op), LF_S("error", "bad value format"),
              LF_S("format", fmt));
    return -1;
}

/* run() with the values of ap. */
static aop_err vrun(db_op *o, const db_sql *sql, db_stmt **st, const char *fmt, va_list ap)
{
    db_val v[MAX_VALUES];
    int n = values_of(o->name, fmt, ap, v);
    *st = NULL;
    return n < 0 ? AOP_ERR_INTERNAL : run(o, sql, v, n, st);
}

/* Steps to the next row; *row false at the end (at once for no st). */
static aop_err next(db_op *o, db_stmt *st, bool *row)
{
    *row = false;
    return st ? st->v->step(st, o->name, row) : AOP_OK;
}

/* Gives st back to its connection. NULL-safe. */
static void done(db_stmt *st)
{
    if (st)
        st->v->done(st);
}

/* Reads the current row of st into item as row says. */
static void read_row(db_stmt *st, const db_row *row, void *item, arena *a)
{
    const store_vtbl *v = st->v;
    for (int i = 0; i < row->n; i++) {
        const db_col *c = &row->cols[i];
        char *p = (char *)item + c->offset;
        const char *t;
        switch (c->kind) {
        case DB_COPY:
            t = v->col_text(st, i);
            str_copy(p, c->size, t ? t : "");
            break;
        case DB_DUP_OR_NULL:
        case DB_DUP:
            *(char **)p = c->kind == DB_DUP_OR_NULL && v->col_null(st, i) ? NULL
                                                                          : v->col_dup(st, i, a);
            break;
        case DB_INT_OR_NEG:
        case DB_INT:
            *(long long *)p = c->kind == DB_INT_OR_NEG && v->col_null(st, i) ? -1
                                                                            : v->col_int(st, i);
            break;
        case DB_DOUBLE:
            *(double *)p = v->col_double(st, i);
            break;
        case DB_BOOL:
            *(bool *)p = v->col_bool(st, i);
            break;
        case DB_STATUS: {
            int status = exec_status_of(v->col_text(st, i));
            /* never unknown: the CHECK constraints */
            *(exec_status *)p = status >= 0 ? (exec_status)status : EXEC_FAILED;
            break;
        }
        }
    }
}

aop_err db_exec(db_op *o, const db_sql *sql, long long *changes, const char *fmt, ...)
{
    db_stmt *st = NULL;
    bool row = true;
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vrun(o, sql, &st, fmt, ap);
    va_end(ap);
    while (rc == AOP_OK && row)
        rc = next(o, st, &row);
    if (changes)
        *changes = rc == AOP_OK && st ? st->v->changes(st) : 0;
    done(st);
    return rc;
}

aop_err db_get(db_op *o, const db_sql *sql, const db_row *row, void *item, arena *a,
               const char *fmt, ...)
{
    db_stmt *st = NULL;
    bool found = false;
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vrun(o, sql, &st, fmt, ap);
    va_end(ap);
    if (rc == AOP_OK)
        rc = next(o, st, &found);
    if (rc == AOP_OK && !found)
        rc = AOP_ERR_NOT_FOUND;
    if (rc == AOP_OK)
        read_row(st, row, item, a);
    done(st);
    return rc;
}

/* The first column of st's first row into *out (0 when none); ends st. */
static aop_err first_int(db_op *o, db_stmt *st, long long *out)
{
    bool row = false;
    aop_err rc = next(o, st, &row);
    *out = rc == AOP_OK && row ? st->v->col_int(st, 0) : 0;
    done(st);
    return rc;
}

aop_err db_query_int(db_op *o, const db_sql *sql, long long *out, const char *fmt, ...)
{
    db_stmt *st = NULL;
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vrun(o, sql, &st, fmt, ap);
    va_end(ap);
    *out = 0;
    return rc == AOP_OK ? first_int(o, st, out) : rc;
}

/* The first column of the first row of sql run with v, 0 when none. */
static aop_err run_int(db_op *o, const db_sql *sql, const db_val *v, int n, long long *out)
{
    db_stmt *st = NULL;
    aop_err rc = run(o, sql, v, n, &st);
    *out = 0;
    return rc == AOP_OK ? first_int(o, st, out) : rc;
}

/* Reads the rows of st into items (see db_rows), then gives st back. */
static aop_err collect(db_op *o, db_stmt *st, const db_row *row, size_t size, long long max,
                       void **items, int *n, arena *a)
{
    bool more = false;
    long long cap = *items ? max : 0;
    aop_err rc;
    *n = 0;
    while ((rc = next(o, st, &more)) == AOP_OK && more) {
        if (*n >= max)
            continue; /* read on to the end: a RETURNING statement finishes */
        if (*n == cap) {
            cap = cap ? 2 * cap : (max < 16 ? max : 16);
            void *bigger = arena_alloc(a, size * (size_t)cap);
            if (*n)
                memcpy(bigger, *items, size * (size_t)*n);
            *items = bigger;
        }
        char *item = (char *)*items + size * (size_t)(*n)++;
        memset(item, 0, size);
        read_row(st, row, item, a);
    }
    done(st);
    return rc;
}

aop_err db_page(db_op *o, const db_sql *count, const db_sql *page, db_val *v, int n,
                long long offset, long long limit, const db_row *row, size_t size, void **items,
                int *nitems, long long *total, arena *a)
{
    db_stmt *st = NULL;
    *items = NULL;
    *nitems = 0;
    offset = offset > 0 ? offset : 0;
    aop_err rc = run_int(o, count, v, n, total);
    if (rc != AOP_OK || limit <= 0 || *total <= offset)
        return rc;
    long long room = *total - offset < limit ? *total - offset : limit;
    *items = arena_alloc(a, size * (size_t)room);
    v[n] = DB_INT(limit);
    v[n + 1] = DB_INT(offset);
    rc = run(o, page, v, n + 2, &st);
    return rc == AOP_OK ? collect(o, st, row, size, room, items, nitems, a) : rc;
}

aop_err db_rows(db_op *o, const db_sql *sql, const db_row *row, size_t size, long long max,
                void **items, int *n, arena *a, const char *fmt, ...)
{
    db_stmt *st = NULL;
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vrun(o, sql, &st, fmt, ap);
    va_end(ap);
    *n = 0;
    return rc == AOP_OK ? collect(o, st, row, size, max, items, n, a) : rc;
}

/* ---- values ---- */

const char *db_opt(const char *s)
{
    return s && *s ? s : NULL;
}

char *db_like_pattern(const char *text, arena *a)
{
    char *p = arena_alloc(a, 2 * strlen(text) + 3), *o = p;
    *o++ = '%';
    for (const char *s = text; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\')
            *o++ = '\\';
        *o++ = *s;
    }
    *o++ = '%';
    *o = '\0';
    return p;
}

/* ---- texts ---- */

/* Where the quoted literal or identifier that starts at p ends (past its
 * closing quote; a doubled quote stays inside). */
static const char *skip_quoted(const char *p)
{
    char q = *p++;
    while (*p && !(p[0] == q && p[1] != q))
        p += p[0] == q ? 2 : 1;
    return *p ? p + 1 : p;
}

/*
 * Walks text's $n placeholders (not inside quotes) and returns the highest
 * n. With out, also copies text there, each $n written mark (n + shift).
 */
static int placeholders(const char *text, buf *out, char mark, int shift)
{
    int max = 0;
    for (const char *p = text; *p;) {
        const char *start = p;
        if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
            char *end;
            long k = strtol(p + 1, &end, 10);
            if (out)
                buf_printf(out, "%c%ld", mark, k + shift);
            max = k > max ? (int)k : max;
            p = end;
            continue;
        }
        p = *p == '\'' || *p == '"' ? skip_quoted(p) : p + 1;
        if (out)
            buf_append(out, start, (size_t)(p - start));
    }
    return max;
}

int db_param_count(const char *text)
{
    return placeholders(text, NULL, 0, 0);
}

char *db_sqlite_text(const char *text)
{
    buf b;
    buf_init(&b, 0);
    placeholders(text, &b, '?', 0);
    char *t = buf_take(&b, NULL);
    return t ? t : xstrdup("");
}

/* The FROM and WHERE of filters f in one dialect; returns the number of
 * values they take. */
static int list_where(buf *b, const db_list *l, unsigned f, int dialect)
{
    int np = 0, terms = l->where ? 1 : 0;
    buf_puts(b, l->from);
    if (l->where)
        buf_printf(b, " WHERE %s", l->where);
    for (int k = 0; k < l->nfilters; k++) {
        const db_sql *t = l->term(f, k);
        if (!t)
            continue;
        buf_puts(b, terms++ ? " AND " : " WHERE ");
        np += placeholders(dialect == DB_PG ? t->pg : t->sqlite, b, '$', np);
    }
    return np;
}

/* One dialect's text of the count (s < 0) or of a page of l. */
static char *list_text(const db_list *l, unsigned f, int s, bool desc, int dialect)
{
    buf b;
    buf_init(&b, 0);
    buf_puts(&b, s < 0 ? "SELECT COUNT(*)" : "SELECT ");
    if (s >= 0)
        buf_puts(&b, l->columns);
    int np = list_where(&b, l, f, dialect);
    if (s >= 0) {
        const db_sql *ord = &l->order[s];
        const char *dir = desc ? " DESC" : "";
        buf_puts(&b, " ORDER BY ");
        buf_printf(&b, dialect == DB_PG ? ord->pg : ord->sqlite, dir, dir);
        buf_printf(&b, " LIMIT $%d OFFSET $%d", np + 1, np + 2);
    }
    return buf_take(&b, NULL);
}

void db_list_build(const db_list *l)
{
    for (unsigned f = 0; f < 1u << l->nfilters; f++) {
        l->count[f].sqlite = list_text(l, f, -1, false, DB_SQLITE);
        l->count[f].pg = list_text(l, f, -1, false, DB_PG);
        for (int s = 0; s < l->nsorts; s++) {
            for (int d = 0; d < 2; d++) {
                db_sql *p = &l->page[((int)f * l->nsorts + s) * 2 + d];
                p->sqlite = list_text(l, f, s, d, DB_SQLITE);
                p->pg = list_text(l, f, s, d, DB_PG);
            }
        }
    }
}

/* ---- connections per thread ---- */

/* pthread key destructor: the thread is exiting, so its connection goes. */
static void thread_exit(void *p)
{
    db_conn *c = p;
    db_pool *pool = c->pool;
    pthread_mutex_lock(&pool->mu);
    for (db_conn **pp = &pool->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&pool->mu);
    pool->conn_free(c);
}

const char *db_pool_init(db_pool *p, void (*conn_free)(db_conn *c))
{
    p->conn_free = conn_free;
    p->mu_ok = pthread_mutex_init(&p->mu, NULL) == 0;
    if (!p->mu_ok)
        return "cannot create a mutex";
    p->key_ok = pthread_key_create(&p->key, thread_exit) == 0;
    return p->key_ok ? NULL : "no thread key left";
}

void db_pool_close(db_pool *p)
{
    if (!p->mu_ok)
        return;
    pthread_mutex_lock(&p->mu);
    db_conn *c = p->conns;
    p->conns = NULL;
    pthread_mutex_unlock(&p->mu);
    while (c) {
        db_conn *next = c->next;
        p->conn_free(c);
        c = next;
    }
    if (p->key_ok) {
        pthread_setspecific(p->key, NULL);
        pthread_key_delete(p->key);
        p->key_ok = false;
    }
    pthread_mutex_destroy(&p->mu);
    p->mu_ok = false;
}

db_conn *db_pool_get(db_pool *p)
{
    return pthread_getspecific(p->key);
}

int db_pool_add(db_pool *p, db_conn *c)
{
    c->pool = p;
    if (pthread_setspecific(p->key, c) != 0)
        return -1;
    pthread_mutex_lock(&p->mu);
    c->next = p->conns;
    p->conns = c;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* ---- statement tables ---- */

/* The slot of key in c's open-addressing table (hashed by address), or
 * the empty one where it goes; NULL when the table is full. */
static db_slot *slot_of(db_conn *c, const void *key)
{
    size_t i = ((uintptr_t)key >> 3) % DB_STMT_SLOTS;
    for (int probes = 0; probes < DB_STMT_SLOTS; probes++, i = (i + 1) % DB_STMT_SLOTS)
        if (c->stmts[i].key == key || !c->stmts[i].key)
            return &c->stmts[i];
    return NULL;
}

aop_err db_conn_stmt(db_conn *c, const void *key, const char *text, const store_vtbl *v,
                     size_t size, int n, const char *op, db_stmt **out)
{
    db_slot *slot = slot_of(c, key);
    *out = NULL;
    if (!slot) {
        log_error("database statement table is full", LF_S("op", op));
        return AOP_ERR_INTERNAL;
    }
    if (!slot->key) {
        slot->st = xcalloc(1, size);
        slot->st->v = v;
        slot->st->nparams = db_param_count(text);
        slot->key = key;
    }
    if (slot->st->nparams != n) {
        log_error("database statement and values differ", LF_S("op", op),
                  LF_I("parameters", slot->st->nparams), LF_I("values", n));
        return AOP_ERR_INTERNAL;
    }
    *out = slot->st;
    return AOP_OK;
}

void db_conn_free_stmts(db_conn *c, void (*fn)(db_stmt *st))
{
    for (int i = 0; i < DB_STMT_SLOTS; i++) {
        if (c->stmts[i].st) {
            fn(c->stmts[i].st);
            free(c->stmts[i].st);
        }
        c->stmts[i] = (db_slot){0};
    }
}
