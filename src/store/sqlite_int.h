/*
 * sqlite_int.h - what the SQLite backend's files share (not for other code).
 *
 * sqlite.c owns connections, statements, migrations and transactions; the
 * sqlite_*.c files implement the port's operations with these helpers:
 *
 *   sq_prepare(h, sql, op, &st, fmt, ...)  the calling thread's statement for
 *       sql (a string with static storage: its address is the cache key),
 *       with values bound as fmt says, one letter per '?':
 *         't' const char * (NULL binds NULL), 'i' long long, 'b' int as 0/1,
 *         'd' double.
 *   sq_step(st, op, &row)   one step; *row tells whether a row is ready.
 *   sq_release(st)          resets and unbinds; call once per sq_prepare.
 *   sq_exec(h, sql, op, &changes, fmt, ...)  prepare, step to the end,
 *       release; changes (may be NULL) is the number of rows written.
 *
 * Errors are mapped by sq_error(): UNIQUE -> AOP_ERR_CONFLICT, busy ->
 * AOP_ERR_UNAVAILABLE, anything else AOP_ERR_INTERNAL (logged with op).
 */
#ifndef AOP_STORE_SQLITE_INT_H
#define AOP_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdbool.h>

#include "store/store.h"

aop_err sq_error(int rc, const char *op, const char *msg);
aop_err sq_prepare(void *h, const char *sql, const char *op, sqlite3_stmt **st, const char *fmt,
                   ...);
aop_err sq_step(sqlite3_stmt *st, const char *op, bool *row);
void sq_release(sqlite3_stmt *st);
aop_err sq_exec(void *h, const char *sql, const char *op, long long *changes, const char *fmt,
                ...);
/* Prepares sql and steps to its first row: AOP_OK with *st on that row (read
 * its columns, then sq_release), AOP_ERR_NOT_FOUND when there is none (*st
 * already released and NULL), or an error. */
aop_err sq_query_row(void *h, const char *sql, const char *op, sqlite3_stmt **st,
                     const char *fmt, ...);
/* Runs a query whose first column of its first row is an integer: *out
 * (0 when there is no row). */
aop_err sq_query_int(void *h, const char *sql, const char *op, long long *out, const char *fmt,
                     ...);
/* Column i as an arena string ("" for NULL) / copied into dst, cut to fit. */
char *sq_col_dup(sqlite3_stmt *st, int i, arena *a);
void sq_col_copy(sqlite3_stmt *st, int i, char *dst, size_t size);

/* sqlite.c */
aop_err sq_ping(void *h);
aop_err sq_migrate(void *h, int *applied);
aop_err sq_claim(void *h, char *why, size_t whylen);
aop_err sq_begin(void *h);
aop_err sq_commit(void *h);
aop_err sq_rollback(void *h);
void sq_close(void *h);

/* sqlite_users.c */
aop_err sq_user_insert(void *h, const store_user *u);
aop_err sq_user_get_by_email(void *h, const char *email, store_user *out, arena *a);
aop_err sq_user_get_by_id(void *h, const char *id, store_user *out, arena *a);
aop_err sq_user_update(void *h, const store_user *u);
aop_err sq_user_set_login(void *h, const char *id, const char *at);
aop_err sq_user_list(void *h, const store_user_query *q, store_user **out, int *n,
                     long long *total, arena *a);
aop_err sq_audit_insert(void *h, const store_audit *e);

/* sqlite_tokens.c */
aop_err sq_family_insert(void *h, const char *id, const char *user_id, const char *created_at,
                         const char *expires_at);
aop_err sq_family_extend(void *h, const char *id, const char *expires_at);
aop_err sq_family_revoke(void *h, const char *id, const char *at, const char *reason);
aop_err sq_families_revoke_user(void *h, const char *user_id, const char *at,
                                const char *reason, store_id **ids, int *n, arena *a);
aop_err sq_refresh_insert(void *h, const char *jti, const char *family_id, const char *user_id,
                          const char *issued_at, const char *expires_at);
aop_err sq_refresh_get(void *h, const char *jti, store_refresh *out);
aop_err sq_refresh_use(void *h, const char *jti, const char *at, bool *won);
aop_err sq_access_revoke(void *h, const char *jti, const char *user_id, const char *expires_at);
aop_err sq_token_revoked(void *h, const char *jti, const char *fam, bool *revoked);
aop_err sq_tokens_prune(void *h, const char *now, long long *n);
aop_err sq_apikey_insert(void *h, const store_apikey *k, const char *key_hash);
aop_err sq_apikey_count(void *h, const char *user_id, long long *n);
aop_err sq_apikey_list(void *h, const char *user_id, long long offset, long long limit,
                       store_apikey **out, int *n, long long *total, arena *a);
aop_err sq_apikey_get_by_hash(void *h, const char *key_hash, store_apikey *out, arena *a);
aop_err sq_apikey_delete(void *h, const char *id, const char *user_id, bool *deleted);
aop_err sq_apikey_touch(void *h, const char *id, const char *at);

/* sqlite_workflows.c */
aop_err sq_workflow_insert(void *h, const store_workflow *w);
aop_err sq_workflow_get(void *h, const char *id, store_workflow *out, arena *a);
aop_err sq_workflow_update(void *h, const store_workflow *w, long long expected);
aop_err sq_workflow_delete(void *h, const char *id, const char *by, const char *at);
aop_err sq_workflow_list(void *h, const store_wf_query *q, store_workflow **out, int *n,
                         long long *total, arena *a);
aop_err sq_workflow_version_insert(void *h, const char *workflow_id, const store_wf_version *v,
                                   const char *snapshot);
aop_err sq_workflow_version_list(void *h, const char *workflow_id, long long offset,
                                 long long limit, store_wf_version **out, int *n,
                                 long long *total, arena *a);
aop_err sq_workflow_version_get(void *h, const char *workflow_id, long long version,
                                char **snapshot, arena *a);
aop_err sq_workflow_summary(void *h, const char *since, store_wf_summary *out, arena *a);
/* The list statement for a set of filters (SQ_WF_* bits; a reader filter
 * binds the user id twice), a sort and a direction, or its count; for
 * checking query plans. */
enum { SQ_WF_READER = 1, SQ_WF_STATUS = 2, SQ_WF_TAG = 4, SQ_WF_OWNER = 8, SQ_WF_SEARCH = 16 };
const char *sq_workflow_list_sql(unsigned filters, store_wf_sort sort, bool desc, bool count);

/* sqlite_executions.c */
aop_err sq_execution_insert(void *h, const store_execution *e);
aop_err sq_execution_get(void *h, const char *id, store_execution *out, arena *a);
aop_err sq_execution_nodes(void *h, const char *id, store_exec_node **out, int *n, arena *a);
aop_err sq_execution_list(void *h, const store_exec_query *q, store_execution **out, int *n,
                          long long *total, arena *a);
aop_err sq_execution_claim(void *h, const char *owner, long long now_ms, const char *now,
                           long long lease_until_ms, int limit, store_execution **out, int *n,
                           arena *a);
aop_err sq_execution_renew(void *h, const char *owner, long long lease_until_ms, long long *n);
aop_err sq_execution_requeue(void *h, long long before_ms, long long *n);
aop_err sq_execution_release(void *h, const char *owner, long long *n);
aop_err sq_execution_owned(void *h, const char *id, const char *owner, long long claims);
aop_err sq_execution_node_put(void *h, const char *execution_id, const store_exec_node *n);
aop_err sq_execution_nodes_end(void *h, const char *id, exec_status from, exec_status to,
                               const char *at, long long *n);
aop_err sq_execution_finish(void *h, const store_execution *e);
aop_err sq_workflow_analytics_add(void *h, const char *workflow_id, const store_wf_tally *t);
aop_err sq_execution_delete(void *h, const char *id);
aop_err sq_execution_stats(void *h, const char *workflow_id, store_exec_totals *t,
                           store_exec_node_stat **nodes, int *n, arena *a);
aop_err sq_execution_summary(void *h, const char *from, const char *to, store_exec_totals *t,
                             store_exec_model_stat **models, int *nmodels, store_exec_day **days,
                             int *ndays, store_wf_top **top, int *ntop, arena *a);
aop_err sq_execution_prune(void *h, const char *before, long long keep, int batch,
                           long long *n);
aop_err sq_reclaim(void *h, long long pages);
/* The list statement for a set of filters (SQ_EXEC_* bits; a reader filter
 * binds the user id twice, a range binds from and to), a sort and a
 * direction, or its count; and the claim and prune statements: for checking
 * query plans. */
enum { SQ_EXEC_READER = 1, SQ_EXEC_WORKFLOW = 2, SQ_EXEC_STATUS = 4, SQ_EXEC_RANGE = 8 };
const char *sq_execution_list_sql(unsigned filters, store_exec_sort sort, bool desc, bool count);
extern const char sq_execution_claim_sql[];
extern const char sq_execution_prune_sql[];

#endif
