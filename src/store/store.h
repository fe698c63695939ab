/*
 * store.h - the store port: what the program asks of its database.
 *
 * A store is a database driver (store_vtbl) plus an opaque handle, chosen
 * once at start from DATABASE_URL. Callers use the store_* functions below,
 * which time every operation (metrics, slow-operation log) and never expose
 * which backend answers; each is written once over the driver layer
 * (src/store/db.h). Every function returns an aop_err: a UNIQUE
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
#include <stdint.h>

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

typedef char store_id[UUID_STR_LEN];

/* One login's refresh token, as the store knows it. */
typedef struct {
    char jti[UUID_STR_LEN];
    char family_id[UUID_STR_LEN];
    char user_id[UUID_STR_LEN];
    char expires_at[25];
    char used_at[25];     /* "" while unused */
    bool family_revoked;
} store_refresh;

typedef struct {
    char id[UUID_STR_LEN];
    char user_id[UUID_STR_LEN];
    char *name;
    char prefix[16];
    char *scopes;         /* JSON array text, e.g. ["read","write"] */
    char created_at[25];
    char expires_at[25];  /* "" when it never expires */
    char last_used_at[25];
} store_apikey;

/* One audit_events row; NULL members are stored as NULL ("{}" for detail). */
typedef struct {
    const char *action;
    const char *actor_id;
    const char *subject_id;
    const char *ip;
    const char *request_id;
    const char *detail;   /* JSON object text */
} store_audit;

typedef enum { STORE_USER_SORT_CREATED, STORE_USER_SORT_EMAIL, STORE_USER_SORT_NAME } store_user_sort;

typedef struct {
    const char *search;   /* substring of email or name (case-insensitive) or NULL */
    const char *role;     /* or NULL */
    store_user_sort sort;
    bool desc;
    long long offset, limit;
} store_user_query;

/* Counters an execution's end updates (issue: engine); zeros before. */
typedef struct {
    long long execution_count, success_count, failure_count;
    long long duration_ms_total, duration_count; /* avgDurationMs = total / count */
    long long total_tokens;
    double total_cost_usd;
    char last_executed_at[25]; /* "" when never */
} store_wf_analytics;

/* A workflow's current state. JSON members are compact JSON text. In list
 * rows definition is NULL (lists omit it). */
typedef struct {
    char id[UUID_STR_LEN];
    char *name;
    char *description;
    char *tags;        /* JSON array of strings */
    char *status;      /* draft | active | archived */
    char *definition;  /* JSON object */
    char *settings;    /* JSON object */
    char *editors;     /* JSON array of user ids */
    char *viewers;     /* JSON array of user ids */
    long long version;
    char owner_id[UUID_STR_LEN];
    char created_by[UUID_STR_LEN];
    char updated_by[UUID_STR_LEN];
    char created_at[25];
    char updated_at[25];
    store_wf_analytics an;
} store_workflow;

typedef enum { STORE_WF_SORT_CREATED, STORE_WF_SORT_UPDATED, STORE_WF_SORT_NAME } store_wf_sort;

typedef struct {
    const char *reader;   /* only workflows this user owns or is named in; NULL: all */
    const char *status;   /* filters, each NULL when absent */
    const char *tag;
    const char *owner_id;
    const char *search;   /* substring of name or description, any case */
    store_wf_sort sort;
    bool desc;
    long long offset, limit;
} store_wf_query;

/* One entry of a workflow's version history. */
typedef struct {
    long long version;
    char *name;
    char updated_by[UUID_STR_LEN];
    char created_at[25];
} store_wf_version;

/* Item of a top list. */
typedef struct {
    char id[UUID_STR_LEN];
    char *name;
    long long executions;
    double cost_usd;
} store_wf_top;

#define STORE_WF_TOP 10

typedef struct {
    long long total, draft, active, archived, created_since;
    store_wf_top by_executions[STORE_WF_TOP], by_cost[STORE_WF_TOP];
    int n_by_executions, n_by_cost;
} store_wf_summary;


/* Execution and node statuses, in this order everywhere (byStatus). */
typedef enum {
    EXEC_QUEUED, EXEC_RUNNING, EXEC_SUCCEEDED, EXEC_FAILED, EXEC_CANCELLED, EXEC_TIMED_OUT,
    EXEC_WAITING, /* at an approval node: no worker, no lease */
    EXEC_PENDING, EXEC_SKIPPED, /* nodes only */
    EXEC_STATUS_COUNT
} exec_status;
#define EXEC_RUN_STATUSES 7 /* the ones an execution can have */

const char *exec_status_name(exec_status s);
/* -1 when name is not a status (nodes' included). */
int exec_status_of(const char *name);

/* One executions row. JSON members are compact JSON text; "" timestamps
 * and NULL texts are SQL NULL. */
typedef struct {
    char id[UUID_STR_LEN];
    char workflow_id[UUID_STR_LEN];
    long long workflow_version;
    exec_status status;
    char trigger[16];             /* "api", "schedule", "webhook" */
    char triggered_by[UUID_STR_LEN];
    char trigger_id[UUID_STR_LEN]; /* the schedule's or webhook's id; "" for none */
    char scheduled_for[25];       /* a schedule's due time; "" for none */
    char *input;                  /* JSON */
    char *output;                 /* JSON or NULL */
    char *error;                  /* JSON {code, message, nodeId} or NULL */
    char created_at[25];
    char started_at[25];          /* "" until first claimed */
    char finished_at[25];         /* "" until it ends */
    long long duration_ms;        /* when finished; from started_at (0 if never started) */
    long long memory_bytes;
    long long prompt_tokens, completion_tokens, total_tokens;
    double cost_usd;
    long long timeout_ms;         /* settings.timeoutMs when queued */
    long long max_concurrency;    /* settings.maxConcurrency when queued; 0: no limit */
    long long deadline_ms;        /* wall-clock ms it times out at; 0 until first claimed */
    long long claims;             /* times it has been claimed (> 1: resumed) */
    /* A child execution (a workflow node's, migration 13): its parent, the
     * root of its tree ("" both at the root), its depth (0 at the root),
     * and the parent's node and attempt that started it ("" and 0). */
    char parent_execution_id[UUID_STR_LEN];
    char root_execution_id[UUID_STR_LEN];
    long long depth;
    char parent_node_id[65];
    long long parent_attempt;
} store_execution;

/* One execution_nodes row: a node that started, finished or was skipped. */
typedef struct {
    char *node_id;
    char *type;
    exec_status status;
    long long attempts;
    char started_at[25];
    char finished_at[25];
    long long duration_ms;
    long long prompt_tokens, completion_tokens, total_tokens;
    double cost_usd;
    char *model;                  /* NULL unless llm */
    char *error;                  /* JSON {code, message} or NULL */
    char *output;                 /* JSON or NULL */
    long long seq;                /* order it was first written in */
} store_exec_node;

/* One execution event (migration 8): seq from 1 per execution (-1: live
 * only, never stored), its type (no space in it), ts (RFC 3339, ms) and
 * members: the text of the JSON members of its fields, e.g.
 * "nodeId":"a","attempt":1. What streams send is
 * {"executionId","seq","ts",<members>} (engine/exec_event.h). */
typedef struct {
    long long seq;
    char *type;
    char *ts;
    char *members;
} store_exec_event;

/* The members of execution.queued (seq 1), which is not stored as an
 * event row: the executions row, written in the same transaction, is it
 * (store_execution_events reads it from there, with created_at as ts). */
#define STORE_QUEUED_MEMBERS "\"workflowId\":\"%s\",\"status\":\"queued\""

typedef enum {
    STORE_EXEC_SORT_CREATED, STORE_EXEC_SORT_STARTED, STORE_EXEC_SORT_FINISHED,
    STORE_EXEC_SORT_DURATION
} store_exec_sort;

typedef struct {
    const char *reader;      /* only executions of live workflows this user owns or is
                                named in; NULL: all (admin) */
    const char *workflow_id; /* filters, NULL when absent */
    int status;              /* exec_status or -1 */
    const char *from, *to;   /* created_at >= from, < to (RFC 3339 ms), or NULL */
    const char *trigger;     /* api, schedule, webhook, or NULL */
    store_exec_sort sort;
    bool desc;
    long long offset, limit;
} store_exec_query;

/* Aggregates over a set of executions. Durations over finished executions
 * that started (nearest-rank percentiles); 0 when none. */
typedef struct {
    long long total;
    long long by_status[EXEC_RUN_STATUSES];
    double duration_avg;
    long long duration_p50, duration_p95, duration_max;
    long long prompt_tokens, completion_tokens, total_tokens;
    double cost_usd;
    char last_executed_at[25];   /* newest started_at; "" when none started */
} store_exec_totals;

typedef struct {
    char *node_id;
    long long executions, failures; /* rows, rows failed or timed_out */
    double avg_duration_ms;
    long long total_tokens;
    double cost_usd;
} store_exec_node_stat;

typedef struct {
    char *model;
    long long calls, total_tokens;
    double cost_usd;
} store_exec_model_stat;

typedef struct {
    char date[11];               /* YYYY-MM-DD of created_at */
    long long executions, failures;
    double cost_usd;
} store_exec_day;

/* What ended executions of one workflow add to its analytics counters. */
typedef struct {
    long long executions, succeeded, failed;     /* failed counts timed_out too */
    long long duration_ms_total, duration_count; /* over those that started */
    long long total_tokens;
    double cost_usd;
    char last_executed_at[25];                   /* newest start among them; "" none */
} store_wf_tally;

/* Counts one ended execution into t (duration_ms < 0: it never started;
 * at: its started_at, "" or NULL when none). */
void store_wf_tally_add(store_wf_tally *t, exec_status status, long long duration_ms,
                        long long total_tokens, double cost_usd, const char *at);

#define STORE_EXEC_MAX_DAYS 400
#define STORE_EXEC_MAX_MODELS 100

/* One budget (src/store/budgets.c). Money is integer nano-dollars (1e-9
 * USD); scope_id is "" for the global scope; resets_at "" for "total". */
typedef struct {
    char id[UUID_STR_LEN];
    char scope_type[16];          /* global | user | workflow */
    char scope_id[UUID_STR_LEN];
    char period[8];               /* day | month | total */
    long long limit_nano, spent_nano, reserved_nano;
    char period_start[25];
    char resets_at[25];
    char created_at[25];
    char updated_at[25];
    char created_by[UUID_STR_LEN];
} store_budget;

#define STORE_NANO_PER_USD 1000000000.0
/* USD as whole nano-dollars, rounded to the nearest (negative and NaN: 0;
 * capped at 2^62). Rounding is monotonic, so a cost within its reservation
 * in dollars stays within it in nano-dollars. */
long long store_usd_nano(double usd);

/* A moment and the bounds of the periods that contain it, all RFC 3339
 * UTC: the day's and the month's start, and the next day's and month's. */
typedef struct {
    char now[25];
    char day_start[25], day_end[25];
    char month_start[25], month_end[25];
} store_budget_clock;
void store_budget_clock_at(long long now_ms, store_budget_clock *out);
/* The period a budget of that period ("day", "month", "total") is in at
 * ck: its start and its end ("" for total, whose start is start_total). */
void store_budget_period(const store_budget_clock *ck, const char *period,
                         const char *start_total, char start[25], char end[25]);

typedef enum { STORE_BUDGET_SORT_CREATED, STORE_BUDGET_SORT_UPDATED } store_budget_sort;

typedef struct {
    const char *reader;     /* only what this user sees: global budgets, its own, those of
                             * workflows it reads; NULL: all */
    const char *scope_type; /* filters, NULL when absent */
    const char *scope_id;
    store_budget_sort sort;
    bool desc;
    long long offset, limit;
} store_budget_query;

/* One call's reservations: the call and who runs it. */
typedef struct {
    const char *execution_id, *node_id;
    long long seq;          /* the node's call (an llm node: its attempt) */
    const char *owner;      /* the engine holding the execution's lease */
    long long claims;       /* ... from this claim of it */
} store_budget_call;

struct db_sql;
struct db_val;
struct db_stmt;

/* A database driver (src/store/sqlite.c, pg.c): connections, statements,
 * transactions, and what only one database has. The operations reach it
 * through src/store/db.h, which says what each entry point does. */
typedef struct store_vtbl {
    const char *name; /* "sqlite", "postgres" */
    int dialect;      /* DB_SQLITE or DB_PG (db.h) */
    aop_err (*run)(void *h, const struct db_sql *sql, const char *op, const struct db_val *v,
                   int n, struct db_stmt **st);
    aop_err (*step)(struct db_stmt *st, const char *op, bool *row);
    long long (*changes)(struct db_stmt *st);
    void (*done)(struct db_stmt *st);
    bool (*col_null)(struct db_stmt *st, int i);
    const char *(*col_text)(struct db_stmt *st, int i);
    char *(*col_dup)(struct db_stmt *st, int i, arena *a);
    long long (*col_int)(struct db_stmt *st, int i);
    double (*col_double)(struct db_stmt *st, int i);
    /* db_send: runs the statement without reading anything back; NULL:
     * run does. */
    aop_err (*send)(void *h, const struct db_sql *sql, const char *op, const struct db_val *v,
                    int n);
    /* SQL without values, one or several statements (migrations). */
    aop_err (*exec)(void *h, const char *sql, const char *op);
    aop_err (*begin)(void *h);
    aop_err (*commit)(void *h);
    aop_err (*rollback)(void *h);
    aop_err (*ping)(void *h);
    aop_err (*claim)(void *h, char *why, size_t whylen); /* NULL: nothing to claim */
    aop_err (*reclaim)(void *h, long long pages);  /* NULL: the server does it */
    aop_err (*publish)(void *h, const char *payload); /* both NULL: not shared */
    aop_err (*listen)(void *h, void (*fn)(void *arg, const char *payload), void *arg,
                      const volatile int *stop);
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
/* Applies pending numbered migrations; *applied counts the new ones. */
aop_err store_migrate(store *s, int *applied);
/* Claims the database for this serving process when the backend allows
 * only one (an embedded file: caches, limits and locks live in the
 * process). AOP_ERR_CONFLICT with the reason in why when another process
 * holds it; the claim lasts until close. */
aop_err store_claim(store *s, char *why, size_t whylen);

/* Runs fn inside one transaction: committed when fn returns AOP_OK, rolled
 * back otherwise. Returns fn's error, or the commit's. Not reentrant. */
typedef aop_err (*store_tx_fn)(store *s, void *ctx);
aop_err store_tx(store *s, store_tx_fn fn, void *ctx);

aop_err store_user_insert(store *s, const store_user *u);
/* Fills *out from the arena; AOP_ERR_NOT_FOUND when absent. */
aop_err store_user_get_by_email(store *s, const char *email, store_user *out, arena *a);
aop_err store_user_get_by_id(store *s, const char *id, store_user *out, arena *a);
/* Writes name, password_hash, role, preferences, is_active, updated_at of
 * u->id; AOP_ERR_NOT_FOUND when there is no such user. */
aop_err store_user_update(store *s, const store_user *u);
aop_err store_user_set_login(store *s, const char *id, const char *at);
/* One page of users (from a) in *out, *n of them, and the total matching. */
aop_err store_user_list(store *s, const store_user_query *q, store_user **out, int *n,
                        long long *total, arena *a);
aop_err store_family_insert(store *s, const char *id, const char *user_id, const char *created_at,
                            const char *expires_at);
/* Moves the family's expires_at forward (never back). */
aop_err store_family_extend(store *s, const char *id, const char *expires_at);
aop_err store_family_revoke(store *s, const char *id, const char *at, const char *reason);
/* Revokes every live family of the user; their ids (from a) in *ids. */
aop_err store_families_revoke_user(store *s, const char *user_id, const char *at,
                                   const char *reason, store_id **ids, int *n, arena *a);
aop_err store_refresh_insert(store *s, const char *jti, const char *family_id,
                             const char *user_id, const char *issued_at, const char *expires_at);
aop_err store_refresh_get(store *s, const char *jti, store_refresh *out);
/* Marks jti used if it was not; *won is true only for the call that did. */
aop_err store_refresh_use(store *s, const char *jti, const char *at, bool *won);
aop_err store_access_revoke(store *s, const char *jti, const char *user_id,
                            const char *expires_at);
/* *revoked when the access token jti or its family fam is revoked. */
aop_err store_token_revoked(store *s, const char *jti, const char *fam, bool *revoked);
/* Deletes revocations and tokens that expired before now; *n counts rows. */
aop_err store_tokens_prune(store *s, const char *now, long long *n);
aop_err store_apikey_insert(store *s, const store_apikey *k, const char *key_hash);
aop_err store_apikey_count(store *s, const char *user_id, long long *n);
aop_err store_apikey_list(store *s, const char *user_id, long long offset, long long limit,
                          store_apikey **out, int *n, long long *total, arena *a);
aop_err store_apikey_get_by_hash(store *s, const char *key_hash, store_apikey *out, arena *a);
aop_err store_apikey_delete(store *s, const char *id, const char *user_id, bool *deleted);
aop_err store_apikey_touch(store *s, const char *id, const char *at);
aop_err store_audit_insert(store *s, const store_audit *e);

aop_err store_workflow_insert(store *s, const store_workflow *w);
/* A workflow that is not deleted; AOP_ERR_NOT_FOUND otherwise. */
aop_err store_workflow_get(store *s, const char *id, store_workflow *out, arena *a);
/* Writes every field of w but the analytics and creation ones, when the
 * stored version is expected: AOP_ERR_VERSION_CONFLICT when it is not,
 * AOP_ERR_NOT_FOUND when there is no such (live) workflow. */
aop_err store_workflow_update(store *s, const store_workflow *w, long long expected);
/* Soft delete; AOP_ERR_NOT_FOUND when absent or already deleted. */
aop_err store_workflow_delete(store *s, const char *id, const char *by, const char *at);
aop_err store_workflow_list(store *s, const store_wf_query *q, store_workflow **out, int *n,
                            long long *total, arena *a);
aop_err store_workflow_version_insert(store *s, const char *workflow_id,
                                      const store_wf_version *v, const char *snapshot);
/* Newest first. */
aop_err store_workflow_version_list(store *s, const char *workflow_id, long long offset,
                                    long long limit, store_wf_version **out, int *n,
                                    long long *total, arena *a);
/* The snapshot text; AOP_ERR_NOT_FOUND when there is no such version. */
aop_err store_workflow_version_get(store *s, const char *workflow_id, long long version,
                                   char **snapshot, arena *a);
/* Live workflows: totals, created at or after since, top lists. */
aop_err store_workflow_summary(store *s, const char *since, store_wf_summary *out, arena *a);

/* Executions. insert writes a row as it is (triggered_by "" for no user). */
aop_err store_execution_insert(store *s, const store_execution *e);
/*
 * Inside a transaction: inserts e (a queued row) unless its user
 * (triggered_by) already has quota active executions (queued or running),
 * AOP_ERR_QUOTA_EXCEEDED then, nothing written. *active: the user's active
 * executions in this transaction, -1 before its first call for the user
 * (it counts them then; each insert adds one). The count holds against
 * concurrent transactions of any process: on PostgreSQL the first call
 * for a user locks the user's quota until the transaction ends, so a
 * transaction inserting rows of several users calls it in user order (two
 * such transactions then never wait for each other in a cycle). The
 * insert is sent ahead on PostgreSQL (db_send): an error of it comes from
 * the transaction's next statement or its commit.
 */
aop_err store_execution_enqueue(store *s, const store_execution *e, long long quota,
                                long long *active);
/* store_execution_enqueue of a row its caller starts at once: e (status
 * running, claims 1, started_at and deadline_ms set as a claim sets them)
 * is written owned by owner until lease_until_ms, as store_execution_claim
 * would leave it. */
aop_err store_execution_enqueue_owned(store *s, const store_execution *e, long long quota,
                                      long long *active, const char *owner,
                                      long long lease_until_ms);
/* Inside a transaction: whether any execution is queued. */
aop_err store_execution_any_queued(store *s, bool *any);
aop_err store_execution_get(store *s, const char *id, store_execution *out, arena *a);
/* Node rows in seq order. */
aop_err store_execution_nodes(store *s, const char *id, store_exec_node **out, int *n, arena *a);
/* One page; list rows carry their input but no output (NULL). */
aop_err store_execution_list(store *s, const store_exec_query *q, store_execution **out, int *n,
                             long long *total, arena *a);
/* A wall clock in ms since the epoch (clock_now_ms, or a test's). */
typedef int64_t (*store_clock)(void);

/*
 * Claims up to limit queued executions for owner, never inside a caller's
 * transaction: status running, lease_owner owner, lease_until now +
 * lease_ms, claims + 1, started_at = now when empty (but never before
 * created_at: a row committed after the clock was read is younger),
 * deadline_ms = now + timeout_ms when 0. now() is read once the claim holds
 * what orders it after the ends of other executions (SQLite's write lock;
 * PostgreSQL's claim lock, for workflows with a limit): an execution that
 * starts in the room another one's end made never starts before that end.
 * Which: round-robin across the users who triggered them (triggered_by),
 * each user's oldest first, the users in byte order of their ids starting
 * after `after` (the last user the caller served, "" or NULL: from the
 * first): every user's next execution before anyone's second, so one
 * user's backlog delays another's next execution by one round at most.
 * A workflow with max_concurrency > 0 never gets more running executions
 * than that (running ones of any owner counted, across processes); the
 * executions of workflows at their limit are passed over.
 * *out: the claimed rows in that round-robin order among themselves (the
 * caller's next `after` is the user of the last). SQLite claims in one
 * statement in its own transaction; PostgreSQL picks without locks, then takes the rows of
 * limited workflows under a lock and the others by SKIP LOCKED alone.
 */
aop_err store_execution_claim(store *s, const char *owner, store_clock now, long long lease_ms,
                              int limit, const char *after, store_execution **out, int *n,
                              arena *a);
/* lease_until of every running execution of owner; *n rows. */
aop_err store_execution_renew(store *s, const char *owner, long long lease_until_ms, long long *n);
/* Running executions whose lease_until < before_ms go back to queued
 * (lease cleared); *n rows. */
aop_err store_execution_requeue(store *s, long long before_ms, long long *n);
/* Running executions of owner go back to queued (shutdown); *n rows. */
aop_err store_execution_release(store *s, const char *owner, long long *n);
/* AOP_OK when id is running under owner's lease from its claims-th
 * claim, else AOP_ERR_CONFLICT (a lease that lapsed and was claimed
 * again, even by the same owner, is another one). */
aop_err store_execution_owned(store *s, const char *id, const char *owner, long long claims);
/* Inserts or replaces the node row (execution_id, node_id); seq kept
 * from the first write. */
aop_err store_execution_node_put(store *s, const char *execution_id, const store_exec_node *n);
/* Node rows of id with status from become status to, finished at at
 * (duration from their started_at); *n rows. */
aop_err store_execution_nodes_end(store *s, const char *id, exec_status from, exec_status to,
                                  const char *at, long long *n);
/* Writes the end of e (status, output, error, finished_at, duration_ms,
 * memory_bytes, tokens, cost) and clears the lease, when the row is
 * still queued or running: else AOP_ERR_CONFLICT (it ended already),
 * AOP_ERR_NOT_FOUND when absent. */
aop_err store_execution_finish(store *s, const store_execution *e);
/* The batched forms of store_execution_owned, store_execution_node_put and
 * store_execution_finish, for the engine's flush: one statement per few
 * hundred rows on PostgreSQL, the single-row statements on SQLite.
 * store_execution_owned_batch: owned[i] whether runs[i] is running under
 * owner's lease from its claims-th claim (locked as store_execution_owned
 * locks, in id order). store_execution_nodes_put: store_execution_node_put
 * of each row, in order; inside a transaction on PostgreSQL its error may
 * come from the transaction's next statement (db_send).
 * store_execution_finish_batch: store_execution_finish of each, its answer
 * in each[i] (AOP_OK, AOP_ERR_CONFLICT or AOP_ERR_NOT_FOUND); another
 * error ends the call. */
typedef struct {
    const char *id;
    long long claims;
} store_exec_lease;
typedef struct {
    const char *execution_id;
    store_exec_node node;
} store_exec_node_row;
aop_err store_execution_owned_batch(store *s, const char *owner, const store_exec_lease *runs,
                                    int n, bool *owned);
aop_err store_execution_nodes_put(store *s, const store_exec_node_row *rows, int n);
aop_err store_execution_finish_batch(store *s, const store_execution *ends, int n, aop_err *each);
/* Adds one ended execution (store_wf_tally_add's arguments) to its
 * workflow's analytics counters; AOP_ERR_NOT_FOUND when there is no such
 * workflow row. */
aop_err store_workflow_analytics_add(store *s, const char *workflow_id, exec_status status,
                                     long long duration_ms, long long total_tokens,
                                     double cost_usd, const char *at);
/* Several at once: one write for a batch of ends. */
aop_err store_workflow_analytics_tally(store *s, const char *workflow_id, const store_wf_tally *t);
/* Deletes the execution and its nodes; AOP_ERR_NOT_FOUND when absent. */
aop_err store_execution_delete(store *s, const char *id);
/* Adds events ev[0..n) of execution id, whose seqs follow each other and
 * which share ev[0].ts (in the caller's transaction, the one that writes
 * the change they describe), as one row. A first seq taken already is
 * AOP_ERR_CONFLICT. */
aop_err store_execution_events_add(store *s, const char *id, const store_exec_event *ev, int n);
/* The events of several executions (each as for store_execution_events_add)
 * in one statement. */
typedef struct {
    const char *execution_id;
    const store_exec_event *ev;
    int n;
} store_exec_events;
aop_err store_execution_events_put(store *s, const store_exec_events *rows, int n);
/* Events of execution id with seq > after, oldest first, at most max of
 * them (texts from a); execution.queued (seq 1) comes from the executions
 * row. */
aop_err store_execution_events(store *s, const char *id, long long after, int max,
                               store_exec_event **out, int *n, arena *a);
/* The child execution that attempt of node node_id of execution parent
 * started (store_execution's parent_* members); AOP_ERR_NOT_FOUND when it
 * started none. */
aop_err store_execution_child(store *s, const char *parent, const char *node_id,
                              long long attempt, store_execution *out, arena *a);
/* The ids (from a) of execution parent's children that are queued or
 * running, at most max of them. */
aop_err store_execution_children_active(store *s, const char *parent, int max, char ***ids,
                                        int *n, arena *a);
/* One agent_steps row (migration 13): step seq (from 1) of an agent node's
 * loop; kind "model" (data: the model's message) or "tool" (data: the
 * result sent back for call_id). */
typedef struct {
    long long seq;
    char kind[8];
    char *call_id;                /* NULL unless a tool result */
    char *data;                   /* JSON text */
    long long prompt_tokens, completion_tokens;
    double cost_usd;
    char created_at[25];
} store_agent_step;

/* Adds step st of node node_id of execution id; AOP_ERR_CONFLICT when that
 * seq is there already (another claim of the run wrote it first). */
aop_err store_agent_step_add(store *s, const char *id, const char *node_id,
                             const store_agent_step *st);
/* The steps of node node_id of execution id in seq order, at most max of
 * them (texts from a). */
aop_err store_agent_steps(store *s, const char *id, const char *node_id, int max,
                          store_agent_step **out, int *n, arena *a);
/* The status of execution id; AOP_ERR_NOT_FOUND when absent. */
aop_err store_execution_status(store *s, const char *id, exec_status *status);
/* The highest seq of execution id's events (1: only execution.queued). */
aop_err store_execution_events_last(store *s, const char *id, long long *seq);
/* Totals over one workflow's executions, and per node (out from a). */
aop_err store_execution_stats(store *s, const char *workflow_id, store_exec_totals *t,
                              store_exec_node_stat **nodes, int *n, arena *a);
/* Totals over every execution created in [from, to) (NULL: open), by
 * model (llm node rows, most calls first), by day (oldest first, newest
 * STORE_EXEC_MAX_DAYS), top workflows by executions (STORE_WF_TOP). */
aop_err store_execution_summary(store *s, const char *from, const char *to, store_exec_totals *t,
                                store_exec_model_stat **models, int *nmodels,
                                store_exec_day **days, int *ndays, store_wf_top **top, int *ntop,
                                arena *a);
/* Deletes up to batch ended executions (with their nodes) that were
 * created before `before` (NULL: no age limit) or are older than the
 * newest keep ended ones (keep 0: no cap), oldest first; *n rows. */
aop_err store_execution_prune(store *s, const char *before, long long keep, int batch,
                              long long *n);
/* Gives free pages back to the file system (at most pages; 0: all);
 * AOP_OK at once where the database server does that itself. */
aop_err store_reclaim(store *s, long long pages);

/* Budgets. insert: AOP_ERR_CONFLICT when the scope has one of that period. */
aop_err store_budget_insert(store *s, const store_budget *b);
aop_err store_budget_get(store *s, const char *id, store_budget *out);
aop_err store_budget_list(store *s, const store_budget_query *q, store_budget **out, int *n,
                          long long *total, arena *a);
/* Sets the limit (limit_nano > 0) and, when period is not NULL, the period,
 * whose current bounds (at ck) it then starts (spent is kept), at `at`;
 * *out is the row afterwards. AOP_ERR_NOT_FOUND, AOP_ERR_CONFLICT (the
 * scope has a budget of that period). */
aop_err store_budget_update(store *s, const char *id, long long limit_nano, const char *period,
                            const store_budget_clock *ck, const char *at, store_budget *out);
/* Deletes it with its reservations; AOP_ERR_NOT_FOUND when absent. */
aop_err store_budget_delete(store *s, const char *id);
/* The ids (from a) of the budgets that apply to a call of an execution of
 * workflow_id that user_id triggered: global ones, the user's, the
 * workflow's, in id order. One indexed read: what a call costs when no
 * budget is defined. */
aop_err store_budget_applicable(store *s, const char *user_id, const char *workflow_id,
                                store_id **ids, int *n, arena *a);
/*
 * Reserves amount_nano (> 0) against each of the n budgets ids, in one
 * transaction of its own, for call c: one conditional UPDATE per budget
 * (period rolled over at ck first when it ended), then its reservation
 * row. All or nothing: AOP_ERR_FORBIDDEN when a budget has less than
 * amount_nano left (its id in refused; nothing reserved); AOP_ERR_CONFLICT
 * when c's execution is no longer running under c's owner and claim (its
 * row is locked until the commit on PostgreSQL, so a cancel, delete or
 * requeue comes before, and finds nothing, or after, and releases it). A
 * budget deleted meanwhile is passed over.
 */
aop_err store_budget_reserve(store *s, const store_budget_clock *ck, const store_budget_call *c,
                             const store_id *ids, int n, long long amount_nano,
                             store_id refused);
/*
 * What reservations leave behind once taken: per budget, what it reserved
 * and what the call cost (0 for a release). Turning reservations into
 * costs is two steps, inside one transaction of the caller's:
 * store_budget_take for each call (c) or execution (c NULL) whose
 * reservations end, then store_budget_apply once, which writes the budgets
 * in id order (so transactions never wait on each other in a circle) with
 * one UPDATE per budget: cost added to spent (period rolled over at ck
 * first), the reservations taken out of reserved. A reservation taken
 * already (released by another transaction) yields nothing.
 */
typedef struct {
    store_id budget_id;
    long long amount_nano, cost_nano;
} store_budget_delta;
typedef struct {
    store_budget_delta *items; /* malloc'd */
    int n, cap;
} store_budget_deltas;
aop_err store_budget_take(store *s, const store_budget_call *c, const char *execution_id,
                          long long cost_nano, store_budget_deltas *d);
/* *n: the budgets written; d is emptied (not freed) when it succeeds. */
aop_err store_budget_apply(store *s, const store_budget_clock *ck, store_budget_deltas *d,
                           int *n);
void store_budget_deltas_free(store_budget_deltas *d);
/* Take and apply for every reservation of the execution (inside the
 * caller's transaction); *n: how many reservations there were. */
aop_err store_budget_release(store *s, const char *execution_id, long long *n);

/* One credential (src/store/credentials.c). secret is the sealed data
 * (credentials/vault.h), never plaintext. JSON members are compact text. */
typedef struct {
    char id[UUID_STR_LEN];
    char owner_id[UUID_STR_LEN];
    char *name;
    char type[16];           /* openai | anthropic | http_bearer | http_header | http_basic */
    char *description;
    char *base_url;          /* "" when none */
    char *allowed_hosts;     /* JSON array of strings */
    char *fields;            /* JSON array of the data keys held */
    char hint[32];           /* "…abcd" */
    char *secret;            /* the sealed data */
    char key_id[17];         /* the key that sealed it */
    char created_at[25];
    char updated_at[25];
    char last_used_at[25];   /* "" when never */
} store_credential;

typedef enum {
    STORE_CRED_SORT_CREATED, STORE_CRED_SORT_UPDATED, STORE_CRED_SORT_NAME
} store_cred_sort;

typedef struct {
    const char *reader;      /* only this user's credentials; NULL: all (admin) */
    const char *owner_id;    /* filter, NULL when absent */
    store_cred_sort sort;
    bool desc;
    long long offset, limit;
} store_cred_query;

/* AOP_ERR_CONFLICT when its owner has a credential of that name. */
aop_err store_credential_insert(store *s, const store_credential *c);
aop_err store_credential_get(store *s, const char *id, store_credential *out, arena *a);
aop_err store_credential_list(store *s, const store_cred_query *q, store_credential **out,
                              int *n, long long *total, arena *a);
/* How many credentials owner_id has. */
aop_err store_credential_count(store *s, const char *owner_id, long long *n);
/* Writes name, description, base_url, allowed_hosts, fields, hint, secret,
 * key_id and updated_at of c, provided the row still holds the sealed
 * value was_secret (a concurrent change: AOP_ERR_VERSION_CONFLICT).
 * AOP_ERR_NOT_FOUND, AOP_ERR_CONFLICT (the name). */
aop_err store_credential_update(store *s, const store_credential *c, const char *was_secret);
aop_err store_credential_delete(store *s, const char *id);
/* Sets last_used_at to now unless it is already at or after since (one
 * write a minute at most when since is a minute before now). */
aop_err store_credential_touch(store *s, const char *id, const char *now, const char *since);
/* Up to max credentials sealed by a key other than key_id, oldest id
 * first, after the id after ("" from the start): id, secret (and key_id). */
aop_err store_credential_stale(store *s, const char *key_id, const char *after, int max,
                               store_credential **out, int *n, arena *a);
/* Replaces the sealed value of id by secret (of key_id) if it still holds
 * was; *done: whether it did. */
aop_err store_credential_reseal(store *s, const char *id, const char *was, const char *secret,
                                const char *key_id, bool *done);
/* The canary's sealed value into *secret (from a); AOP_ERR_NOT_FOUND when
 * there is none yet. */
aop_err store_credential_canary_get(store *s, char **secret, arena *a);
/* Stores the canary: the first one (an existing one is kept: another
 * instance was first), or, with replace, over the one there. */
aop_err store_credential_canary_put(store *s, const char *secret, const char *key_id,
                                    const char *now, bool replace);

/* One schedules row (docs/api.md, "Triggers"). "" timestamps are NULL. */
typedef struct {
    char id[UUID_STR_LEN];
    char workflow_id[UUID_STR_LEN];
    char cron[257];               /* CRON_TEXT_MAX bytes at most */
    char timezone[65];            /* CRON_ZONE_MAX bytes at most */
    char *input;                  /* JSON object */
    char overlap[16];             /* skip | allow | buffer_one */
    bool enabled;
    char last_run_at[25];         /* scheduledFor of the latest run */
    char pending_for[25];         /* buffer_one: the due time held back */
    char created_at[25];
    char created_by[UUID_STR_LEN];
    char updated_at[25];
} store_schedule;

aop_err store_schedule_insert(store *s, const store_schedule *sc);
aop_err store_schedule_get(store *s, const char *id, store_schedule *out, arena *a);
/* A workflow's schedules, oldest first. */
aop_err store_schedule_list(store *s, const char *workflow_id, long long offset, long long limit,
                            store_schedule **out, int *n, long long *total, arena *a);
/* Inside the transaction that then inserts one: the workflow's schedules
 * (on PostgreSQL after locking the workflow's row, so that the count holds
 * across processes). */
aop_err store_schedule_count(store *s, const char *workflow_id, long long *n);
/* Writes cron, timezone, input, overlap, enabled (disabling drops a
 * pending start) and updated_at of sc->id. AOP_ERR_NOT_FOUND. */
aop_err store_schedule_update(store *s, const store_schedule *sc);
/* With its runs. AOP_ERR_NOT_FOUND. */
aop_err store_schedule_delete(store *s, const char *id);
/* Up to max enabled schedules with ids after `after` ("" from the first),
 * in id order. */
aop_err store_schedule_enabled(store *s, const char *after, int max, store_schedule **out, int *n,
                               arena *a);
/* Inside the transaction that queues its execution: records the run of
 * due time scheduled_for of schedule id; *won false (nothing written) when
 * it is recorded already, by this or any other process. */
aop_err store_schedule_run_claim(store *s, const char *id, const char *scheduled_for,
                                 const char *execution_id, const char *now, bool *won);
/* *n: executions of schedule id that are queued, running or waiting. */
aop_err store_schedule_active(store *s, const char *id, long long *n);
/* last_run_at becomes the later of itself and last_run_at (NULL: left as
 * it is), pending_for becomes pending_for ("" or NULL: none). */
aop_err store_schedule_mark(store *s, const char *id, const char *last_run_at,
                            const char *pending_for);
/* buffer_one: due becomes the start schedule id holds back, unless it
 * holds one already (the first held due time stays; later ones are
 * skipped). */
aop_err store_schedule_hold(store *s, const char *id, const char *due);
/* Deletes run records created before `before`; *n how many. */
aop_err store_schedule_runs_prune(store *s, const char *before, long long *n);

/* One webhooks row. secret and old_secret are sealed by the vault (bound
 * to the webhook's id); old_secret NULL, old_until_ms 0 when none. */
typedef struct {
    char id[UUID_STR_LEN];
    char workflow_id[UUID_STR_LEN];
    char *name;
    char auth[8];                 /* none | token | hmac */
    char response[8];             /* async | sync */
    char *secret;
    char key_id[24];
    char *old_secret;
    char old_key_id[24];
    long long old_until_ms;
    char created_at[25];
    char created_by[UUID_STR_LEN];
    char last_called_at[25];
} store_webhook;

aop_err store_webhook_insert(store *s, const store_webhook *w);
/* One lookup by primary key. AOP_ERR_NOT_FOUND. */
aop_err store_webhook_get(store *s, const char *id, store_webhook *out, arena *a);
aop_err store_webhook_list(store *s, const char *workflow_id, long long offset, long long limit,
                           store_webhook **out, int *n, long long *total, arena *a);
aop_err store_webhook_delete(store *s, const char *id);
/* As store_schedule_count, for webhooks. */
aop_err store_webhook_count(store *s, const char *workflow_id, long long *n);
/* The secret becomes secret (sealed, under key_id); the one it had, was,
 * stays good until old_until_ms. AOP_ERR_CONFLICT when the secret is no
 * longer was (another rotation came first). */
aop_err store_webhook_rotate(store *s, const char *id, const char *was, const char *secret,
                             const char *key_id, long long old_until_ms);
aop_err store_webhook_touch(store *s, const char *id, const char *at);
/* Inside the transaction that queues the call's execution: keeps key's
 * answer (execution_id, status_code) until expires_ms, *won true; or,
 * when the key has an unexpired answer already, *won false and that answer
 * in first_id and *first_status (a concurrent first call is waited for). */
aop_err store_webhook_key_claim(store *s, const char *webhook_id, const char *key,
                                const char *execution_id, long long status_code,
                                long long now_ms, long long expires_ms, bool *won,
                                char first_id[UUID_STR_LEN], long long *first_status);
/* The status code the first call answered in the end (a sync call's 200). */
aop_err store_webhook_key_status(store *s, const char *webhook_id, const char *key,
                                 long long status_code);
aop_err store_webhook_keys_prune(store *s, long long now_ms, long long *n);
/* Up to max webhooks, ids after `after` in order, with a secret (current,
 * or one in its grace) sealed under another key than key_id. */
aop_err store_webhook_stale(store *s, const char *key_id, const char *after, int max,
                            store_webhook **out, int *n, arena *a);
/* Replaces the sealed secret was (and old_was, NULL for none) by secret
 * (and old_secret) under key_id; *done false when either changed meanwhile
 * (a rotation of the webhook's secret came first). */
aop_err store_webhook_reseal(store *s, const char *id, const char *was, const char *secret,
                             const char *old_was, const char *old_secret, const char *key_id,
                             bool *done);

#define STORE_EVENT_MAX 7900 /* bytes of one published payload */

/* True when several processes may share the database (publish/listen). */
bool store_shared(const store *s);
/* Sends payload (at most STORE_EVENT_MAX bytes) to every process
 * listening, this one included: inside a transaction at its commit (a
 * rollback drops it), outside one at once. AOP_OK without doing anything
 * on a backend that is not shared (one process holds it: store_claim; its
 * engine wakes itself). */
aop_err store_publish(store *s, const char *payload);
/* Blocks on a connection of its own and calls fn(arg, payload) for every
 * payload published, until *stop is non-zero (noticed within 250 ms).
 * When the connection was lost and is made again, calls fn(arg, NULL):
 * events may have been missed in between. AOP_OK once stopped. Not
 * shared: returns AOP_ERR_NOT_FOUND at once. */
aop_err store_listen(store *s, void (*fn)(void *arg, const char *payload), void *arg,
                     const volatile int *stop);

/* Backends (src/store/<name>.c). */
void *store_sqlite_open(const char *path, char *err, size_t errlen);
extern const store_vtbl store_sqlite_vtbl;
/* url is the whole postgres:// (or postgresql://) URL; err never holds its
 * password. */
void *store_pg_open(const char *url, char *err, size_t errlen);
extern const store_vtbl store_pg_vtbl;

/* ---- approvals (approvals.c) ---- */

/* One approvals row; texts "" (DB_COPY) or NULL (message, comment,
 * decided_by) when SQL NULL. decision "" until decided: "approve",
 * "reject" or "timeout". workflow_name is read, never written. */
typedef struct {
    char execution_id[UUID_STR_LEN];
    char workflow_id[UUID_STR_LEN];
    char *workflow_name;
    char *node_id;
    char *message;
    char on_timeout[8];    /* "fail" or "reject" */
    char created_at[25];
    long long expires_at_ms; /* wall clock */
    char decision[8];
    char *comment;
    char *decided_by;
    char decided_at[25];
} store_approval;

/* The engine parks execution id (running under owner's claims-th lease) at
 * its approval nodes: waiting, with no lease. AOP_ERR_CONFLICT when the
 * row is no longer so held. */
aop_err store_execution_wait(store *s, const char *id, const char *owner, long long claims);
/* The row of a node that begins to wait (left_ms: what is left of the
 * execution's timeout); a row already there is kept as it is. */
aop_err store_approval_put(store *s, const store_approval *ap, long long left_ms);
/* AOP_ERR_NOT_FOUND when the node has no row. */
aop_err store_approval_get(store *s, const char *execution_id, const char *node_id,
                           store_approval *out, arena *a);
/* The node's decision (comment, by may be NULL), taken only while it is
 * undecided and its execution waiting; the execution is queued again, its
 * deadline now_ms + what was left of it. AOP_ERR_CONFLICT otherwise. Run
 * it in a transaction. */
aop_err store_approval_decide(store *s, const char *execution_id, const char *node_id,
                              const char *decision, const char *comment, const char *by,
                              const char *at, long long now_ms);
/* Closes (decision "timeout", no requeue) the undecided row of an
 * execution that ended without it; *closed says whether it did. A row of
 * a queued or running execution is left: it may wait again. */
aop_err store_approval_close(store *s, const char *execution_id, const char *node_id,
                             const char *at, bool *closed);
/* At most max undecided rows whose expires_at is not after now_ms (ids
 * only), the oldest due first. */
aop_err store_approval_due(store *s, long long now_ms, int max, store_approval **out, int *n,
                           arena *a);
/* A page of the undecided approvals of waiting executions that user_id
 * may decide (admin: all), oldest first; *total counts them all. */
aop_err store_approval_list(store *s, const char *user_id, bool admin, long long offset,
                            long long limit, store_approval **out, int *n, long long *total,
                            arena *a);

#endif
