/*
 * webhooks.c - webhooks, their sealed secrets, and the Idempotency-Key
 * answers kept for them (docs/api.md, "Triggers").
 *
 * A call looks its webhook up by primary key, once: the row carries the
 * secret and, during a rotation's grace, the one before. An idempotency
 * row is inserted in the transaction that queues the call's execution, so
 * a repeat on any instance waits for that commit (the key is unique) and
 * then finds the first answer.
 */
#include <string.h>

#include "store/db.h"

#define HOOK_COLUMNS                                                                         \
    "id, workflow_id, name, auth, response, secret, key_id, old_secret, old_key_id, "        \
    "old_until_ms, created_at, created_by, last_called_at"

static const db_sql q_insert = DB_BOTH(
    "INSERT INTO webhooks (" HOOK_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
    "$11, $12, $13)");
static const db_sql q_get = DB_BOTH("SELECT " HOOK_COLUMNS " FROM webhooks WHERE id = $1");
static const db_sql q_count = DB_BOTH("SELECT COUNT(*) FROM webhooks WHERE workflow_id = $1");
static const db_sql q_page = DB_BOTH(
    "SELECT " HOOK_COLUMNS " FROM webhooks WHERE workflow_id = $1 "
    "ORDER BY created_at, id LIMIT $2 OFFSET $3");
/* On PostgreSQL the workflow's row is locked until the transaction ends, so
 * the count and the insert that follows of concurrent creations take turns. */
static const db_sql q_lock_workflow = DB_PAIR(
    NULL, "SELECT 1 FROM workflows WHERE id = $1 FOR NO KEY UPDATE");
static const db_sql q_delete = DB_BOTH("DELETE FROM webhooks WHERE id = $1");
/* The secret it had ($4, sealed) stays good until $6; a rotation that
 * lost a race to another (the secret changed meanwhile) writes nothing. */
static const db_sql q_rotate = DB_BOTH(
    "UPDATE webhooks SET secret = $2, key_id = $3, old_secret = secret, old_key_id = key_id, "
    "old_until_ms = $5 WHERE id = $1 AND secret = $4");
static const db_sql q_touch = DB_BOTH(
    "UPDATE webhooks SET last_called_at = $2 WHERE id = $1 AND "
    "(last_called_at IS NULL OR last_called_at < $2)");
static const db_sql q_key_insert = DB_BOTH(
    "INSERT INTO webhook_keys (webhook_id, idem_key, execution_id, status_code, expires_ms) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (webhook_id, idem_key) DO NOTHING");
static const db_sql q_key_get = DB_BOTH(
    "SELECT execution_id, status_code, expires_ms FROM webhook_keys "
    "WHERE webhook_id = $1 AND idem_key = $2");
static const db_sql q_key_expired = DB_BOTH(
    "DELETE FROM webhook_keys WHERE webhook_id = $1 AND idem_key = $2 AND expires_ms <= $3");
static const db_sql q_key_status = DB_BOTH(
    "UPDATE webhook_keys SET status_code = $3 WHERE webhook_id = $1 AND idem_key = $2");
/* Webhooks with a secret (or one in its grace) sealed under another key
 * than $1, after id $2. */
static const db_sql q_stale = DB_BOTH(
    "SELECT " HOOK_COLUMNS " FROM webhooks WHERE (key_id <> $1 OR (old_secret IS NOT NULL "
    "AND old_key_id <> $1)) AND id > $2 ORDER BY id LIMIT $3");
/* Both sealed values at once, unless either changed meanwhile. */
static const db_sql q_reseal = DB_BOTH(
    "UPDATE webhooks SET secret = $3, old_secret = $5, key_id = $6, "
    "old_key_id = CASE WHEN CAST($5 AS TEXT) IS NULL THEN old_key_id ELSE $6 END "
    "WHERE id = $1 AND secret = $2 AND old_secret IS NOT DISTINCT FROM $4");
static const db_sql q_keys_prune = DB_BOTH("DELETE FROM webhook_keys WHERE expires_ms <= $1");

#define W(kind, member) DB_COL(kind, store_webhook, member)
static const db_col hook_cols[] = {
    W(DB_COPY, id), W(DB_COPY, workflow_id), W(DB_DUP, name), W(DB_COPY, auth),
    W(DB_COPY, response), W(DB_DUP, secret), W(DB_COPY, key_id), W(DB_DUP_OR_NULL, old_secret),
    W(DB_COPY, old_key_id), W(DB_INT, old_until_ms), W(DB_COPY, created_at),
    W(DB_COPY, created_by), W(DB_COPY, last_called_at),
};
static const db_row hook_row = DB_ROW(hook_cols, store_webhook);

typedef struct {
    char execution_id[UUID_STR_LEN];
    long long status_code, expires_ms;
} key_row_t;
#define K(kind, member) DB_COL(kind, key_row_t, member)
static const db_col key_cols[] = {K(DB_COPY, execution_id), K(DB_INT, status_code),
                                  K(DB_INT, expires_ms)};
static const db_row key_row = DB_ROW(key_cols, key_row_t);

aop_err store_webhook_insert(store *s, const store_webhook *w)
{
    db_op o = db_op_start(s, "webhook_insert");
    return db_op_end(&o, db_exec(&o, &q_insert, NULL, "tttttttttittt", w->id, w->workflow_id,
                                 w->name, w->auth, w->response, w->secret, w->key_id,
                                 w->old_secret, db_opt(w->old_key_id), w->old_until_ms,
                                 w->created_at, w->created_by, db_opt(w->last_called_at)));
}

aop_err store_webhook_get(store *s, const char *id, store_webhook *out, arena *a)
{
    db_op o = db_op_start(s, "webhook_get");
    return db_op_end(&o, db_get(&o, &q_get, &hook_row, out, a, "t", id));
}

aop_err store_webhook_list(store *s, const char *workflow_id, long long offset, long long limit,
                           store_webhook **out, int *n, long long *total, arena *a)
{
    db_op o = db_op_start(s, "webhook_list");
    db_val v[3] = {DB_TEXT(workflow_id)};
    void *items = NULL;
    aop_err rc = db_page(&o, &q_count, &q_page, v, 1, offset, limit, &hook_row, &items, n, total,
                         a);
    *out = items;
    return db_op_end(&o, rc);
}

aop_err store_webhook_delete(store *s, const char *id)
{
    db_op o = db_op_start(s, "webhook_delete");
    long long changed = 0;
    aop_err rc = db_exec(&o, &q_delete, &changed, "t", id);
    return db_op_end(&o, rc == AOP_OK && !changed ? AOP_ERR_NOT_FOUND : rc);
}

aop_err store_webhook_rotate(store *s, const char *id, const char *was, const char *secret,
                             const char *key_id, long long old_until_ms)
{
    db_op o = db_op_start(s, "webhook_rotate");
    long long changed = 0;
    aop_err rc = db_exec(&o, &q_rotate, &changed, "tttti", id, secret, key_id, was,
                         old_until_ms);
    return db_op_end(&o, rc == AOP_OK && !changed ? AOP_ERR_CONFLICT : rc);
}

aop_err store_webhook_touch(store *s, const char *id, const char *at)
{
    db_op o = db_op_start(s, "webhook_touch");
    return db_op_end(&o, db_exec(&o, &q_touch, NULL, "tt", id, at));
}

aop_err store_webhook_key_claim(store *s, const char *webhook_id, const char *key,
                                const char *execution_id, long long status_code,
                                long long now_ms, long long expires_ms, bool *won,
                                char first_id[UUID_STR_LEN], long long *first_status)
{
    db_op o = db_op_start(s, "webhook_key_claim");
    long long changed = 0;
    aop_err rc = db_exec(&o, &q_key_expired, NULL, "tti", webhook_id, key, now_ms);
    if (rc == AOP_OK)
        rc = db_exec(&o, &q_key_insert, &changed, "tttii", webhook_id, key, execution_id,
                     status_code, expires_ms);
    *won = rc == AOP_OK && changed > 0;
    if (rc == AOP_OK && !*won) {
        key_row_t k;
        arena a = {0};
        rc = db_get(&o, &q_key_get, &key_row, &k, &a, "tt", webhook_id, key);
        if (rc == AOP_OK) {
            memcpy(first_id, k.execution_id, UUID_STR_LEN);
            *first_status = k.status_code;
        }
        arena_free(&a);
    }
    return db_op_end(&o, rc);
}

aop_err store_webhook_key_status(store *s, const char *webhook_id, const char *key,
                                 long long status_code)
{
    db_op o = db_op_start(s, "webhook_key_status");
    return db_op_end(&o, db_exec(&o, &q_key_status, NULL, "tti", webhook_id, key, status_code));
}

aop_err store_webhook_keys_prune(store *s, long long now_ms, long long *n)
{
    db_op o = db_op_start(s, "webhook_keys_prune");
    return db_op_end(&o, db_exec(&o, &q_keys_prune, n, "i", now_ms));
}

aop_err store_webhook_stale(store *s, const char *key_id, const char *after, int max,
                            store_webhook **out, int *n, arena *a)
{
    db_op o = db_op_start(s, "webhook_stale");
    void *items = NULL;
    aop_err rc = db_rows(&o, &q_stale, &hook_row, max, &items, n, a, "tti", key_id, after,
                         (long long)max);
    *out = items;
    return db_op_end(&o, rc);
}

aop_err store_webhook_reseal(store *s, const char *id, const char *was, const char *secret,
                             const char *old_was, const char *old_secret, const char *key_id,
                             bool *done)
{
    db_op o = db_op_start(s, "webhook_reseal");
    long long changed = 0;
    aop_err rc = db_exec(&o, &q_reseal, &changed, "tttttt", id, was, secret, old_was,
                         old_secret, key_id);
    *done = rc == AOP_OK && changed > 0;
    return db_op_end(&o, rc);
}

aop_err store_webhook_count(store *s, const char *workflow_id, long long *n)
{
    db_op o = db_op_start(s, "webhook_count");
    *n = 0;
    aop_err rc = db_exec(&o, &q_lock_workflow, NULL, "t", workflow_id);
    if (rc == AOP_OK)
        rc = db_query_int(&o, &q_count, n, "t", workflow_id);
    return db_op_end(&o, rc);
}
