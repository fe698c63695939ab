/* db.c - the driver layer's shared half (db.h): timing, running statements
 * and reading their rows, list statements, and the connections per thread
 * and statement tables both drivers keep. */
#include "store/db.h"
#include "core/buf.h"
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

aop_err db_tx(db_op *o, const db_sql *lock, aop_err (*fn)(db_op *o, void *ctx), void *ctx)
{
    aop_err rc = o->s->v->begin(o->s->h);
    if (rc != AOP_OK)
        return rc;
    if (lock)
        rc = db_exec(o, lock, NULL, "");
    if (rc == AOP_OK)
        rc = fn(o, ctx);
    if (rc == AOP_OK)
        rc = o->s->v->commit(o->s->h);
    if (rc != AOP_OK)
        o->s->v->rollback(o->s->h);
    return rc;
}

/* ---- statements ---- */

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
            *(bool *)p = v->col_int(st, i) != 0;
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

/* What one run of a statement reads: up to max rows as row says, into
 * *items as given (room for max) or into an array grown by doubling from
 * a; to the end of the rows when all (a RETURNING statement finishes),
 * else only while it keeps them. */
typedef struct {
    const db_row *row;
    long long max;
    void **items;
    bool all;
    int got;            /* rows kept */
    long long *changes; /* rows written, when wanted */
} fetch;

/* Runs sql with the n values of v and reads as f says. */
static aop_err run(db_op *o, const db_sql *sql, const db_val *v, int n, fetch *f, arena *a)
{
    db_stmt *st = NULL;
    bool more = false;
    long long cap = f->items && *f->items ? f->max : 0;
    aop_err rc = AOP_OK;
    if (o->s->v->dialect == DB_PG ? sql->pg : sql->sqlite) /* else no such step here */
        rc = o->s->v->run(o->s->h, sql, o->name, v, n, &st);
    while (rc == AOP_OK && st && (f->all || f->got < f->max) &&
           (rc = st->v->step(st, o->name, &more)) == AOP_OK && more) {
        if (f->got >= f->max)
            continue;
        size_t size = f->row->size;
        if (f->got == cap) {
            cap = cap ? 2 * cap : (f->max < 16 ? f->max : 16);
            void *bigger = arena_alloc(a, size * (size_t)cap);
            if (f->got)
                memcpy(bigger, *f->items, size * (size_t)f->got);
            *f->items = bigger;
        }
        char *item = (char *)*f->items + size * (size_t)f->got++;
        memset(item, 0, size);
        read_row(st, f->row, item, a);
    }
    if (rc == AOP_OK && st && f->changes)
        *f->changes = st->v->changes(st);
    if (st)
        st->v->done(st);
    return rc;
}

/* The values of ap as fmt says (see db.h) into v, *n of them; a bad
 * letter or too many values is AOP_ERR_INTERNAL (logged). */
static aop_err values_of(db_op *o, const char *fmt, va_list ap, db_val *v, int *count)
{
    int n = 0;
    for (; fmt[n]; n++) {
        switch (n < MAX_VALUES ? fmt[n] : 0) {
        case 't':
            v[n].u.t = va_arg(ap, const char *);
            break;
        case 'i':
            v[n].u.i = va_arg(ap, long long);
            break;
        case 'd':
            v[n].u.d = va_arg(ap, double);
            break;
        case 'b':
            v[n].u.i = va_arg(ap, int) != 0;
            break;
        default:
            log_error("database error", LF_S("op", o->name), LF_S("error", "bad value format"),
                      LF_S("format", fmt));
            return AOP_ERR_INTERNAL;
        }
        v[n].type = fmt[n];
    }
    *count = n;
    return AOP_OK;
}

/* run() with the values of ap as fmt says. */
static aop_err vrun(db_op *o, const db_sql *sql, fetch *f, arena *a, const char *fmt,
                    va_list ap)
{
    db_val v[MAX_VALUES];
    int n = 0;
    aop_err rc = values_of(o, fmt, ap, v, &n);
    return rc == AOP_OK ? run(o, sql, v, n, f, a) : rc;
}

/* The first column of a row as an integer. */
static const db_col int_cols[] = {{DB_INT, 0, sizeof(long long)}};
static const db_row int_row = DB_ROW(int_cols, long long);

aop_err db_exec(db_op *o, const db_sql *sql, long long *changes, const char *fmt, ...)
{
    fetch f = {.all = true, .changes = changes};
    va_list ap;
    if (changes)
        *changes = 0;
    va_start(ap, fmt);
    aop_err rc = vrun(o, sql, &f, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

aop_err db_send(db_op *o, const db_sql *sql, const char *fmt, ...)
{
    db_val v[MAX_VALUES];
    int n = 0;
    fetch f = {.all = true};
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = values_of(o, fmt, ap, v, &n);
    va_end(ap);
    if (rc != AOP_OK)
        return rc;
    if (o->s->v->send && (o->s->v->dialect == DB_PG ? sql->pg : sql->sqlite))
        return o->s->v->send(o->s->h, sql, o->name, v, n);
    return run(o, sql, v, n, &f, NULL);
}

aop_err db_get(db_op *o, const db_sql *sql, const db_row *row, void *item, arena *a,
               const char *fmt, ...)
{
    fetch f = {.row = row, .max = 1, .items = &item};
    va_list ap;
    memset(item, 0, row->size);
    va_start(ap, fmt);
    aop_err rc = vrun(o, sql, &f, a, fmt, ap);
    va_end(ap);
    return rc == AOP_OK && !f.got ? AOP_ERR_NOT_FOUND : rc;
}

aop_err db_query_int(db_op *o, const db_sql *sql, long long *out, const char *fmt, ...)
{
    void *item = out;
    fetch f = {.row = &int_row, .max = 1, .items = &item};
    va_list ap;
    va_start(ap, fmt);
    *out = 0;
    aop_err rc = vrun(o, sql, &f, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

aop_err db_rows(db_op *o, const db_sql *sql, const db_row *row, long long max, void **items,
                int *n, arena *a, const char *fmt, ...)
{
    fetch f = {.row = row, .max = max, .items = items, .all = true};
    va_list ap;
    va_start(ap, fmt);
    aop_err rc = vrun(o, sql, &f, a, fmt, ap);
    va_end(ap);
    *n = f.got;
    return rc;
}

aop_err db_page(db_op *o, const db_sql *count, const db_sql *page, db_val *v, int n,
                long long offset, long long limit, const db_row *row, void **items, int *nitems,
                long long *total, arena *a)
{
    void *item = total;
    fetch f = {.row = &int_row, .max = 1, .items = &item};
    *items = NULL;
    *nitems = 0;
    *total = 0;
    offset = offset > 0 ? offset : 0;
    aop_err rc = run(o, count, v, n, &f, a);
    if (rc != AOP_OK || limit <= 0 || *total <= offset)
        return rc;
    f = (fetch){.row = row, .max = *total - offset < limit ? *total - offset : limit,
                .items = items, .all = true};
    *items = arena_alloc(a, row->size * (size_t)f.max);
    v[n] = DB_INT(limit);
    v[n + 1] = DB_INT(offset);
    rc = run(o, page, v, n + 2, &f, a);
    *nitems = f.got;
    return rc;
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

char *db_sqlite_text(const char *text)
{
    buf b;
    buf_init(&b, 0);
    placeholders(text, &b, '?', 0);
    char *t = buf_take(&b, NULL);
    return t ? t : xstrdup("");
}

/* One dialect's text of the count (s < 0) or of a page of l. */
static char *list_text(const db_list *l, unsigned f, int s, bool desc, int dialect)
{
    int np = 0, terms = l->where ? 1 : 0;
    buf b;
    buf_init(&b, 0);
    buf_printf(&b, "SELECT %s%s", s < 0 ? "COUNT(*)" : l->columns, l->from);
    if (l->where)
        buf_printf(&b, " WHERE %s", l->where);
    for (int k = 0; k < l->nfilters; k++) {
        const db_sql *t = l->term ? l->term(f, k) : f & (1u << k) ? &l->terms[k] : NULL;
        if (t) {
            buf_puts(&b, terms++ ? " AND " : " WHERE ");
            np += placeholders(dialect == DB_PG ? t->pg : t->sqlite, &b, '$', np);
        }
    }
    if (s >= 0) {
        const db_sql *ord = &l->order[s];
        const char *dir = desc ? " DESC" : "";
        buf_puts(&b, " ORDER BY ");
        buf_printf(&b, dialect == DB_PG ? ord->pg : ord->sqlite, dir, dir);
        buf_printf(&b, " LIMIT $%d OFFSET $%d", np + 1, np + 2);
    }
    return buf_take(&b, NULL);
}

/* Builds every statement of l. */
static void list_build(db_list *l)
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

const db_sql *db_list_sql(db_list *l, unsigned filters, int sort, bool desc, bool count)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    if (!atomic_load(&l->built)) {
        pthread_mutex_lock(&mu);
        if (!atomic_load(&l->built))
            list_build(l);
        atomic_store(&l->built, true);
        pthread_mutex_unlock(&mu);
    }
    filters &= (1u << l->nfilters) - 1;
    sort = sort >= 0 && sort < l->nsorts ? sort : 0;
    return count ? &l->count[filters] : &l->page[((int)filters * l->nsorts + sort) * 2 + desc];
}

aop_err db_list_page(db_op *o, db_list *l, const char *const *values, int sort, bool desc,
                     long long offset, long long limit, const db_row *row, void **items,
                     int *nitems, long long *total, arena *a)
{
    db_val v[DB_LIST_MAX_FILTERS + 2];
    unsigned f = 0;
    int nv = 0;
    for (int k = 0; k < l->nfilters && k < DB_LIST_MAX_FILTERS; k++) {
        if (values[k]) {
            f |= 1u << k;
            v[nv++] = DB_TEXT(values[k]);
        }
    }
    return db_page(o, db_list_sql(l, f, 0, false, true), db_list_sql(l, f, sort, desc, false), v,
                   nv, offset, limit, row, items, nitems, total, a);
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
        slot->st->nparams = placeholders(text, NULL, 0, 0);
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
