/*
 * pg_int.h - what the PostgreSQL backend's files share (not for other code).
 *
 * pg.c owns connections, prepared statements, migrations, transactions and
 * the event channel; the pg_*.c files implement the port's operations with
 * these helpers, the same way the sqlite_*.c files do on sqlite_int.h:
 *
 *   pq_query(h, sql, op, &res, fmt, ...)  runs sql on the calling thread's
 *       connection as a prepared statement (sql is a string with static
 *       storage: its address is the cache key; parameters are $1, $2, ...)
 *       with values bound as fmt says, one letter per parameter:
 *         't' const char * (NULL binds NULL), 'i' long long, 'b' int as
 *         true/false, 'd' double (printed with 17 significant digits).
 *       Every value is sent as text; the SQL casts where a type matters
 *       ($1::jsonb, $2::bigint ...). On AOP_OK *res holds the result (rows
 *       or a command status): read it with the pq_col_* helpers, then
 *       PQclear(*res). On an error *res is NULL.
 *   pq_exec(h, sql, op, &changes, fmt, ...)  the same for a statement whose
 *       rows are not read; changes (may be NULL) is the number of rows
 *       written (PQcmdTuples).
 *   pq_query_row(h, sql, op, &res, fmt, ...)  AOP_OK with at least one row
 *       in *res, AOP_ERR_NOT_FOUND when there is none (*res NULL, cleared).
 *   pq_query_int(h, sql, op, &out, fmt, ...)  first column of the first row
 *       as an integer (0 when there is no row or it is NULL).
 *
 * Errors are mapped by pq_error(): unique_violation (23505) ->
 * AOP_ERR_CONFLICT; a lost or refused connection, admin shutdown, cannot
 * connect now (class 08, 57P01-57P03), serialization failure (40001) or
 * deadlock (40P01), lock or statement timeout (55P03, 57014) ->
 * AOP_ERR_UNAVAILABLE; anything else AOP_ERR_INTERNAL (logged with op and
 * the server's message, never shown to a client).
 *
 * Text conventions shared with SQLite, so that both backends answer the
 * same bytes: timestamps are TEXT in the program's RFC 3339 UTC form with
 * milliseconds ("2026-11-26T02:45:00.123Z", which sorts as text sorts);
 * JSON documents handed back to clients (definition, settings, input,
 * output, preferences, snapshots, error) are `json` (the text is kept as
 * written); JSON arrays that queries filter on (tags, editors, viewers) are
 * `jsonb` with GIN indexes; ids are TEXT (UUID strings).
 */
#ifndef AOP_STORE_PG_INT_H
#define AOP_STORE_PG_INT_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "store/store.h"

aop_err pq_error(const PGresult *res, const char *op);
aop_err pq_query(void *h, const char *sql, const char *op, PGresult **res, const char *fmt, ...);
aop_err pq_exec(void *h, const char *sql, const char *op, long long *changes, const char *fmt,
                ...);
aop_err pq_query_row(void *h, const char *sql, const char *op, PGresult **res, const char *fmt,
                     ...);
aop_err pq_query_int(void *h, const char *sql, const char *op, long long *out, const char *fmt,
                     ...);

/* pq_query with n text values (NULL binds NULL), then, when page, limit and
 * offset: the list statements, whose filters vary. */
aop_err pq_query_page(void *h, const char *sql, const char *op, PGresult **res, int n,
                      const char *const *texts, bool page, long long limit, long long offset);

/* Column readers; a NULL value reads as "" / 0 / false. */
bool pq_col_null(const PGresult *res, int row, int col);
char *pq_col_dup(const PGresult *res, int row, int col, arena *a);
void pq_col_copy(const PGresult *res, int row, int col, char *dst, size_t size);
long long pq_col_int(const PGresult *res, int row, int col);
double pq_col_double(const PGresult *res, int row, int col);
bool pq_col_bool(const PGresult *res, int row, int col); /* "t" */

/* pg.c */
/* True while the calling thread's connection is inside begin..commit. */
bool pq_in_tx(void *h);
aop_err pq_ping(void *h);
aop_err pq_migrate(void *h, int *applied);
aop_err pq_claim(void *h, char *why, size_t whylen);
aop_err pq_begin(void *h);
aop_err pq_commit(void *h);
aop_err pq_rollback(void *h);
aop_err pq_publish(void *h, const char *payload);
aop_err pq_listen(void *h, void (*fn)(void *arg, const char *payload), void *arg,
                  const volatile int *stop);
void pq_close(void *h);

/* pg_users.c */
aop_err pq_user_insert(void *h, const store_user *u);
aop_err pq_user_get_by_email(void *h, const char *email, store_user *out, arena *a);
aop_err pq_user_get_by_id(void *h, const char *id, store_user *out, arena *a);
aop_err pq_user_update(void *h, const store_user *u);
aop_err pq_user_set_login(void *h, const char *id, const char *at);
aop_err pq_user_list(void *h, const store_user_query *q, store_user **out, int *n,
                     long long *total, arena *a);
aop_err pq_audit_insert(void *h, const store_audit *e);

/* pg_tokens.c */
aop_err pq_family_insert(void *h, const char *id, const char *user_id, const char *created_at,
                         const char *expires_at);
aop_err pq_family_extend(void *h, const char *id, const char *expires_at);
aop_err pq_family_revoke(void *h, const char *id, const char *at, const char *reason);
aop_err pq_families_revoke_user(void *h, const char *user_id, const char *at,
                                const char *reason, store_id **ids, int *n, arena *a);
aop_err pq_refresh_insert(void *h, const char *jti, const char *family_id, const char *user_id,
                          const char *issued_at, const char *expires_at);
aop_err pq_refresh_get(void *h, const char *jti, store_refresh *out);
aop_err pq_refresh_use(void *h, const char *jti, const char *at, bool *won);
aop_err pq_access_revoke(void *h, const char *jti, const char *user_id, const char *expires_at);
aop_err pq_token_revoked(void *h, const char *jti, const char *fam, bool *revoked);
aop_err pq_tokens_prune(void *h, const char *now, long long *n);
aop_err pq_apikey_insert(void *h, const store_apikey *k, const char *key_hash);
aop_err pq_apikey_count(void *h, const char *user_id, long long *n);
aop_err pq_apikey_list(void *h, const char *user_id, long long offset, long long limit,
                       store_apikey **out, int *n, long long *total, arena *a);
aop_err pq_apikey_get_by_hash(void *h, const char *key_hash, store_apikey *out, arena *a);
aop_err pq_apikey_delete(void *h, const char *id, const char *user_id, bool *deleted);
aop_err pq_apikey_touch(void *h, const char *id, const char *at);

/* pg_workflows.c */
aop_err pq_workflow_insert(void *h, const store_workflow *w);
aop_err pq_workflow_get(void *h, const char *id, store_workflow *out, arena *a);
aop_err pq_workflow_update(void *h, const store_workflow *w, long long expected);
aop_err pq_workflow_delete(void *h, const char *id, const char *by, const char *at);
aop_err pq_workflow_list(void *h, const store_wf_query *q, store_workflow **out, int *n,
                         long long *total, arena *a);
aop_err pq_workflow_version_insert(void *h, const char *workflow_id, const store_wf_version *v,
                                   const char *snapshot);
aop_err pq_workflow_version_list(void *h, const char *workflow_id, long long offset,
                                 long long limit, store_wf_version **out, int *n,
                                 long long *total, arena *a);
aop_err pq_workflow_version_get(void *h, const char *workflow_id, long long version,
                                char **snapshot, arena *a);
aop_err pq_workflow_summary(void *h, const char *since, store_wf_summary *out, arena *a);
aop_err pq_workflow_analytics_add(void *h, const char *workflow_id, const store_wf_tally *t);

/* pg_executions.c */
aop_err pq_execution_insert(void *h, const store_execution *e);
aop_err pq_execution_get(void *h, const char *id, store_execution *out, arena *a);
aop_err pq_execution_nodes(void *h, const char *id, store_exec_node **out, int *n, arena *a);
aop_err pq_execution_list(void *h, const store_exec_query *q, store_execution **out, int *n,
                          long long *total, arena *a);
aop_err pq_execution_claim(void *h, const char *owner, long long now_ms, const char *now,
                           long long lease_until_ms, int limit, store_execution **out, int *n,
                           arena *a);
aop_err pq_execution_renew(void *h, const char *owner, long long lease_until_ms, long long *n);
aop_err pq_execution_requeue(void *h, long long before_ms, long long *n);
aop_err pq_execution_release(void *h, const char *owner, long long *n);
aop_err pq_execution_owned(void *h, const char *id, const char *owner, long long claims);
aop_err pq_execution_node_put(void *h, const char *execution_id, const store_exec_node *n);
aop_err pq_execution_nodes_end(void *h, const char *id, exec_status from, exec_status to,
                               const char *at, long long *n);
aop_err pq_execution_finish(void *h, const store_execution *e);
aop_err pq_execution_delete(void *h, const char *id);
aop_err pq_execution_stats(void *h, const char *workflow_id, store_exec_totals *t,
                           store_exec_node_stat **nodes, int *n, arena *a);
aop_err pq_execution_summary(void *h, const char *from, const char *to, store_exec_totals *t,
                             store_exec_model_stat **models, int *nmodels, store_exec_day **days,
                             int *ndays, store_wf_top **top, int *ntop, arena *a);
aop_err pq_execution_prune(void *h, const char *before, long long keep, int batch,
                           long long *n);

#endif
