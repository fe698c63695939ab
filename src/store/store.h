/*
 * store.h - the store port: what the program asks of its database.
 *
 * A store is a table of operations (store_vtbl) plus an opaque handle, chosen
 * once at start from DATABASE_URL. Callers use the store_* functions below,
 * which time every operation (metrics, slow-operation log) and never expose
 * which backend answers. Every function returns an aop_err: a UNIQUE
 * violation is AOP_ERR_CONFLICT, a busy or unreachable database
 * AOP_ERR_UNAVAILABLE, anything else AOP_ERR_INTERNAL (logged by the backend
 * with the database's own message, which never reaches a client).
 *
 * Connections: a backend keeps one connection per thread, opened on the
 * thread's first call and closed at thread exit or store_close().
 */
#ifndef AOP_STORE_STORE_H
#define AOP_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "core/ids.h"
#include "core/mem.h"

typedef struct {
    char id[UUID_STR_LEN];
    char *email;            /* stored lowercased */
    char *name;
    char *password_hash;    /* bcrypt $2b$ */
    char *role;             /* admin | user | viewer */
    char *preferences;      /* JSON object text */
    bool is_active;
    char created_at[25];    /* RFC 3339 with milliseconds */
    char updated_at[25];
    char last_login_at[25]; /* "" when never */
} store_user;

typedef struct store_vtbl {
    const char *name; /* "sqlite", … */
    aop_err (*ping)(void *h);
    /* Applies pending numbered migrations; *applied counts the new ones. */
    aop_err (*migrate)(void *h, int *applied);
    aop_err (*begin)(void *h);
    aop_err (*commit)(void *h);
    aop_err (*rollback)(void *h);
    aop_err (*user_insert)(void *h, const store_user *u);
    /* Fills *out from the arena; AOP_ERR_NOT_FOUND when absent. */
    aop_err (*user_get_by_email)(void *h, const char *email, store_user *out, arena *a);
    void (*close)(void *h);
} store_vtbl;

typedef struct {
    const store_vtbl *v;
    void *h;
    long long slow_ms; /* log operations slower than this */
} store;

/* Opens the backend DATABASE_URL names. Returns NULL with a message in err
 * (no secret of the URL in it) when it cannot. */
store *store_open(const char *database_url, long long slow_ms, char *err, size_t errlen);
void store_close(store *s);

aop_err store_ping(store *s);
aop_err store_migrate(store *s, int *applied);

/* Runs fn inside one transaction: committed when fn returns AOP_OK, rolled
 * back otherwise. Returns fn's error, or the commit's. Not reentrant. */
typedef aop_err (*store_tx_fn)(store *s, void *ctx);
aop_err store_tx(store *s, store_tx_fn fn, void *ctx);

aop_err store_user_insert(store *s, const store_user *u);
aop_err store_user_get_by_email(store *s, const char *email, store_user *out, arena *a);

/* Backends (src/store/<name>.c). */
void *store_sqlite_open(const char *path, char *err, size_t errlen);
extern const store_vtbl store_sqlite_vtbl;

#endif
