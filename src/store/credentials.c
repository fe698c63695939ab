/*
 * credentials.c - the credentials vault's rows and its canary (store.h).
 * Only sealed values are ever written here (credentials/vault.h).
 */
#include <string.h>

#include "store/db.h"

#define CRED_COLUMNS                                                                       \
    "id, owner_id, name, type, description, base_url, allowed_hosts, fields, hint, secret, " \
    "key_id, created_at, updated_at, last_used_at"

static const db_sql q_insert = DB_BOTH(
    "INSERT INTO credentials (" CRED_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
    "$10, $11, $12, $13, NULL)");
static const db_sql q_get = DB_BOTH("SELECT " CRED_COLUMNS " FROM credentials WHERE id = $1");
static const db_sql q_count = DB_BOTH("SELECT COUNT(*) FROM credentials WHERE owner_id = $1");
static const db_sql q_update = DB_BOTH(
    "UPDATE credentials SET name = $2, description = $3, base_url = $4, allowed_hosts = $5, "
    "fields = $6, hint = $7, secret = $8, key_id = $9, updated_at = $10 "
    "WHERE id = $1 AND secret = $11");
static const db_sql q_exists = DB_BOTH("SELECT COUNT(*) FROM credentials WHERE id = $1");
static const db_sql q_delete = DB_BOTH("DELETE FROM credentials WHERE id = $1");
static const db_sql q_touch = DB_BOTH(
    "UPDATE credentials SET last_used_at = $2 WHERE id = $1 AND "
    "(last_used_at IS NULL OR last_used_at < $3)");
static const db_sql q_stale = DB_BOTH(
    "SELECT id, secret, key_id FROM credentials WHERE key_id <> $1 AND id > $2 "
    "ORDER BY id LIMIT $3");
static const db_sql q_reseal = DB_BOTH(
    "UPDATE credentials SET secret = $2, key_id = $3 WHERE id = $1 AND secret = $4");
static const db_sql q_canary_get = DB_BOTH("SELECT secret FROM credential_canary WHERE id = 1");
static const db_sql q_canary_add = DB_BOTH(
    "INSERT INTO credential_canary (id, secret, key_id, updated_at) VALUES (1, $1, $2, $3) "
    "ON CONFLICT (id) DO NOTHING");
static const db_sql q_canary_set = DB_BOTH(
    "INSERT INTO credential_canary (id, secret, key_id, updated_at) VALUES (1, $1, $2, $3) "
    "ON CONFLICT (id) DO UPDATE SET secret = excluded.secret, key_id = excluded.key_id, "
    "updated_at = excluded.updated_at");

#define C(kind, member) DB_COL(kind, store_credential, member)
static const db_col cred_cols[] = {
    C(DB_COPY, id), C(DB_COPY, owner_id), C(DB_DUP, name), C(DB_COPY, type),
    C(DB_DUP, description), C(DB_DUP, base_url), C(DB_DUP, allowed_hosts), C(DB_DUP, fields),
    C(DB_COPY, hint), C(DB_DUP, secret), C(DB_COPY, key_id), C(DB_COPY, created_at),
    C(DB_COPY, updated_at), C(DB_COPY, last_used_at),
};
static const db_row cred_row = DB_ROW(cred_cols, store_credential);

static const db_col stale_cols[] = {C(DB_COPY, id), C(DB_DUP, secret), C(DB_COPY, key_id)};
static const db_row stale_row = DB_ROW(stale_cols, store_credential);

typedef struct {
    char *text;
} text_item;
static const db_col text_cols[] = {DB_COL(DB_DUP, text_item, text)};
static const db_row text_row = DB_ROW(text_cols, text_item);

aop_err store_credential_insert(store *s, const store_credential *c)
{
    db_op o = db_op_start(s, "credential_insert");
    return db_op_end(&o, db_exec(&o, &q_insert, NULL, "tttttttttt" "ttt", c->id, c->owner_id,
                                 c->name, c->type, c->description, db_opt(c->base_url),
                                 c->allowed_hosts, c->fields, c->hint, c->secret, c->key_id,
                                 c->created_at, c->updated_at));
}

aop_err store_credential_get(store *s, const char *id, store_credential *out, arena *a)
{
    db_op o = db_op_start(s, "credential_get");
    return db_op_end(&o, db_get(&o, &q_get, &cred_row, out, a, "t", id));
}

aop_err store_credential_count(store *s, const char *owner_id, long long *n)
{
    db_op o = db_op_start(s, "credential_count");
    return db_op_end(&o, db_query_int(&o, &q_count, n, "t", owner_id));
}

aop_err store_credential_update(store *s, const store_credential *c, const char *was_secret)
{
    db_op o = db_op_start(s, "credential_update");
    long long n = 0, found = 0;
    aop_err rc = db_exec(&o, &q_update, &n, "tttttttttt" "t", c->id, c->name, c->description,
                         db_opt(c->base_url), c->allowed_hosts, c->fields, c->hint, c->secret,
                         c->key_id, c->updated_at, was_secret);
    if (rc == AOP_OK && n == 0 && (rc = db_query_int(&o, &q_exists, &found, "t", c->id)) == AOP_OK)
        rc = found ? AOP_ERR_VERSION_CONFLICT : AOP_ERR_NOT_FOUND;
    return db_op_end(&o, rc);
}

aop_err store_credential_delete(store *s, const char *id)
{
    db_op o = db_op_start(s, "credential_delete");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_delete, &n, "t", id);
    return db_op_end(&o, rc == AOP_OK && n == 0 ? AOP_ERR_NOT_FOUND : rc);
}

aop_err store_credential_touch(store *s, const char *id, const char *now, const char *since)
{
    db_op o = db_op_start(s, "credential_touch");
    return db_op_end(&o, db_exec(&o, &q_touch, NULL, "ttt", id, now, since));
}

aop_err store_credential_stale(store *s, const char *key_id, const char *after, int max,
                               store_credential **out, int *n, arena *a)
{
    db_op o = db_op_start(s, "credential_stale");
    void *items = NULL;
    aop_err rc = db_rows(&o, &q_stale, &stale_row, max, &items, n, a, "tti", key_id, after,
                         (long long)max);
    *out = items;
    return db_op_end(&o, rc);
}

aop_err store_credential_reseal(store *s, const char *id, const char *was, const char *secret,
                                const char *key_id, bool *done)
{
    db_op o = db_op_start(s, "credential_reseal");
    long long n = 0;
    aop_err rc = db_exec(&o, &q_reseal, &n, "tttt", id, secret, key_id, was);
    *done = rc == AOP_OK && n == 1;
    return db_op_end(&o, rc);
}

aop_err store_credential_canary_get(store *s, char **secret, arena *a)
{
    db_op o = db_op_start(s, "credential_canary_get");
    text_item t = {0};
    aop_err rc = db_get(&o, &q_canary_get, &text_row, &t, a, "");
    *secret = t.text;
    return db_op_end(&o, rc);
}

aop_err store_credential_canary_put(store *s, const char *secret, const char *key_id,
                                    const char *now, bool replace)
{
    db_op o = db_op_start(s, "credential_canary_put");
    return db_op_end(&o, db_exec(&o, replace ? &q_canary_set : &q_canary_add, NULL, "ttt", secret,
                                 key_id, now));
}

/* ---- the list ---- */

#define NFILTERS 2 /* reader, owner */
#define NSORTS 3

static const db_sql list_terms[NFILTERS] = {
    DB_BOTH("c.owner_id = $1"),
    DB_BOTH("c.owner_id = $1"),
};
static const db_sql list_orders[NSORTS] = {
    DB_BOTH("c.created_at%s, c.id%s"),
    DB_BOTH("c.updated_at%s, c.id%s"),
    DB_BOTH("c.name%s, c.id%s"),
};
static db_sql list_count[1 << NFILTERS], list_page[(1 << NFILTERS) * NSORTS * 2];

static db_list cred_list = {.columns = CRED_COLUMNS, .from = " FROM credentials c",
                            .terms = list_terms, .nfilters = NFILTERS, .nsorts = NSORTS,
                            .order = list_orders, .count = list_count, .page = list_page};

aop_err store_credential_list(store *s, const store_cred_query *q, store_credential **out,
                              int *n, long long *total, arena *a)
{
    db_op o = db_op_start(s, "credential_list");
    const char *values[NFILTERS] = {q->reader, q->owner_id};
    void *items = NULL;
    aop_err rc = db_list_page(&o, &cred_list, values, (int)q->sort, q->desc, q->offset, q->limit,
                              &cred_row, &items, n, total, a);
    *out = items;
    return db_op_end(&o, rc);
}
