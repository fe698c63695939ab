/*
 * migrations.c - the schema as numbered migrations, both dialects side by
 * side, and how they are applied.
 *
 * One list, versions from 1 up, never renumbered or edited once released:
 * a change is a new entry at the end. An entry is a list of parts (DB_BOTH
 * where the dialects agree, a NULL side where a part exists in one only)
 * whose words[] tokens stand for each dialect's own; it may hold several
 * statements but no BEGIN, COMMIT or ROLLBACK. store_migrate applies each
 * version newer than the newest recorded in schema_migrations in a
 * transaction of its own with its row, after checking under the
 * migrations' lock (SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory lock)
 * that no other process applied it meanwhile.
 *
 * Conventions: ids are TEXT (UUIDv7); timestamps TEXT in RFC 3339 UTC with
 * milliseconds (they sort as text); JSON documents handed back to clients
 * are {JSON} (PostgreSQL's json keeps the text as written); the arrays
 * queries filter on are {JSONB}; PostgreSQL sorts names and emails in
 * byte order ({COLLATE_C}) and searches them through pg_trgm indexes.
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "store/db.h"

#include <stdlib.h>
#include <string.h>

/* The words the parts below write {NAME}, per dialect. */
static const struct {
    const char *token;
    db_sql word;
} words[] = {
    {"{INT}", DB_PAIR("INTEGER", "BIGINT")},
    {"{REAL}", DB_PAIR("REAL", "DOUBLE PRECISION")},
    {"{JSON}", DB_PAIR("TEXT", "JSON")},
    {"{JSONB}", DB_PAIR("TEXT", "JSONB")},
    {"{COLLATE_C}", DB_PAIR("", " COLLATE \"C\"")},
};

/* Appends text to b with its tokens written out for dialect. */
static void append_words(buf *b, const char *text, int dialect)
{
    while (*text) {
        size_t i = 0, n = sizeof(words) / sizeof(words[0]);
        while (i < n && strncmp(text, words[i].token, strlen(words[i].token)) != 0)
            i++;
        if (i < n) {
            buf_puts(b, dialect == DB_PG ? words[i].word.pg : words[i].word.sqlite);
            text += strlen(words[i].token);
        } else {
            buf_append(b, text++, 1);
        }
    }
}

char *store_migration_sql(const store_migration *m, int dialect)
{
    buf b;
    buf_init(&b, 0);
    for (const db_sql *p = m->parts; p->sqlite || p->pg; p++) {
        const char *text = dialect == DB_PG ? p->pg : p->sqlite;
        if (text)
            append_words(&b, text, dialect);
    }
    return buf_take(&b, NULL);
}

/* 001: users. */
static const db_sql m1[] = {
    DB_PAIR(NULL,
            "CREATE EXTENSION IF NOT EXISTS pg_trgm;\n"),
    DB_BOTH("CREATE TABLE users (\n"
            "  id TEXT PRIMARY KEY,\n"
            "  email TEXT NOT NULL UNIQUE,\n"
            "  name TEXT NOT NULL,\n"
            "  password_hash TEXT NOT NULL,\n"
            "  role TEXT NOT NULL CHECK (role IN ('admin','user','viewer')),\n"
            "  preferences {JSON} NOT NULL DEFAULT '{}',\n"
            "  is_active BOOLEAN NOT NULL DEFAULT TRUE,\n"
            "  created_at TEXT NOT NULL,\n"
            "  updated_at TEXT NOT NULL,\n"
            "  last_login_at TEXT\n"
            ");\n"
            "CREATE INDEX users_role_idx ON users (role);\n"
            "CREATE INDEX users_created_at_idx ON users (created_at);\n"),
    {0},
};

/* 002: authentication. A family is one login's chain of refresh tokens;
 * revoking it refuses every token that carries its id. expires_at is the
 * latest expiry of any token issued in it, so pruning never forgets a
 * revocation too early. PostgreSQL sorts names and emails through COLLATE
 * "C" indexes and searches them through trigram ones. */
static const db_sql m2[] = {
    DB_BOTH("CREATE TABLE token_families (\n"
            "  id TEXT PRIMARY KEY,\n"
            "  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,\n"
            "  created_at TEXT NOT NULL,\n"
            "  expires_at TEXT NOT NULL,\n"
            "  revoked_at TEXT,\n"
            "  revoked_reason TEXT\n"
            ");\n"
            "CREATE INDEX token_families_user_idx ON token_families (user_id);\n"
            "CREATE INDEX token_families_expires_idx ON token_families (expires_at);\n"
            "CREATE TABLE refresh_tokens (\n"
            "  jti TEXT PRIMARY KEY,\n"
            "  family_id TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,\n"
            "  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,\n"
            "  issued_at TEXT NOT NULL,\n"
            "  expires_at TEXT NOT NULL,\n"
            "  used_at TEXT\n"
            ");\n"
            "CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);\n"
            "CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);\n"
            "CREATE TABLE revoked_access_tokens (\n"
            "  jti TEXT PRIMARY KEY,\n"
            "  user_id TEXT NOT NULL,\n"
            "  expires_at TEXT NOT NULL\n"
            ");\n"
            "CREATE INDEX revoked_access_tokens_expires_idx ON revoked_access_tokens "
            "(expires_at);\n"
            "CREATE TABLE api_keys (\n"
            "  id TEXT PRIMARY KEY,\n"
            "  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,\n"
            "  name TEXT NOT NULL,\n"
            "  prefix TEXT NOT NULL,\n"
            "  key_hash TEXT NOT NULL UNIQUE,\n"
            "  scopes {JSON} NOT NULL,\n"
            "  created_at TEXT NOT NULL,\n"
            "  expires_at TEXT,\n"
            "  last_used_at TEXT\n"
            ");\n"
            "CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at);\n"
            "CREATE TABLE audit_events (\n"
            "  id TEXT PRIMARY KEY,\n"
            "  created_at TEXT NOT NULL,\n"
            "  action TEXT NOT NULL,\n"
            "  actor_id TEXT,\n"
            "  subject_id TEXT,\n"
            "  ip TEXT,\n"
            "  request_id TEXT,\n"
            "  detail {JSON} NOT NULL DEFAULT '{}'\n"
            ");\n"
            "CREATE INDEX audit_events_created_idx ON audit_events (created_at);\n"
            "CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, created_at);\n"
            "CREATE INDEX audit_events_subject_idx ON audit_events (subject_id, created_at);\n"),
    DB_PAIR("CREATE INDEX users_name_idx ON users (name);\n",
            "CREATE INDEX users_name_idx ON users (name COLLATE \"C\", id);\n"
            "CREATE INDEX users_email_sort_idx ON users (email COLLATE \"C\", id);\n"),
    DB_BOTH("CREATE UNIQUE INDEX users_email_lower_idx ON users (lower(email));\n"),
    DB_PAIR(NULL,
            "CREATE INDEX users_email_trgm_idx ON users USING GIN (email gin_trgm_ops);\n"
            "CREATE INDEX users_name_trgm_idx ON users USING GIN (lower(name) gin_trgm_ops);\n"),
    {0},
};

/*
 * 003: workflows and their versions. Tags and permissions are JSON in the
 * row (what a read returns); SQLite's list filters use workflow_tags and
 * workflow_permissions rows, PostgreSQL's GIN indexes (jsonb_path_ops) on
 * the jsonb arrays. search_name and search_description: the lowered name
 * and description (trigram indexes on PostgreSQL). definition, the large
 * one, comes last: reading the columns a list shows never walks its
 * overflow pages. Partial indexes keep deleted workflows out of every list.
 */
static const db_sql m3[] = {
    DB_BOTH("CREATE TABLE workflows (\n"
            "  id TEXT PRIMARY KEY,\n"
            "  name TEXT NOT NULL,\n"
            "  description TEXT NOT NULL DEFAULT '',\n"
            "  tags {JSONB} NOT NULL DEFAULT '[]',\n"
            "  status TEXT NOT NULL CHECK (status IN ('draft','active','archived')),\n"
            "  settings {JSON} NOT NULL DEFAULT '{}',\n"
            "  editors {JSONB} NOT NULL DEFAULT '[]',\n"
            "  viewers {JSONB} NOT NULL DEFAULT '[]',\n"
            "  version {INT} NOT NULL CHECK (version >= 1),\n"
            "  owner_id TEXT NOT NULL REFERENCES users (id),\n"
            "  created_by TEXT NOT NULL,\n"
            "  updated_by TEXT NOT NULL,\n"
            "  created_at TEXT NOT NULL,\n"
            "  updated_at TEXT NOT NULL,\n"
            "  deleted_at TEXT,\n"
            "  deleted_by TEXT,\n"),
    DB_PAIR("  search_name TEXT NOT NULL,\n"
            "  search_description TEXT NOT NULL,\n",
            "  search_name TEXT GENERATED ALWAYS AS (lower(name)) STORED,\n"
            "  search_description TEXT GENERATED ALWAYS AS (lower(description)) STORED,\n"),
    DB_BOTH("  execution_count {INT} NOT NULL DEFAULT 0,\n"
            "  success_count {INT} NOT NULL DEFAULT 0,\n"
            "  failure_count {INT} NOT NULL DEFAULT 0,\n"
            "  duration_ms_total {INT} NOT NULL DEFAULT 0,\n"
            "  duration_count {INT} NOT NULL DEFAULT 0,\n"
            "  total_tokens {INT} NOT NULL DEFAULT 0,\n"
            "  total_cost_usd {REAL} NOT NULL DEFAULT 0,\n"
            "  last_executed_at TEXT,\n"
            "  definition {JSON} NOT NULL\n"
            ");\n"
            "CREATE INDEX workflows_created_idx ON workflows (created_at, id) WHERE "
            "deleted_at IS NULL;\n"
            "CREATE INDEX workflows_updated_idx ON workflows (updated_at, id) WHERE "
            "deleted_at IS NULL;\n"
            "CREATE INDEX workflows_name_idx ON workflows (name{COLLATE_C}, id) WHERE "
            "deleted_at IS NULL;\n"
            "CREATE INDEX workflows_status_idx ON workflows (status, created_at, id) WHERE "
            "deleted_at IS NULL;\n"
            "CREATE INDEX workflows_owner_idx ON workflows (owner_id, created_at, id) WHERE "
            "deleted_at IS NULL;\n"
            "CREATE INDEX workflows_status_name_idx ON workflows (status, name{COLLATE_C}, "
            "id) WHERE deleted_at IS NULL;\n"
            "CREATE INDEX workflows_status_updated_idx ON workflows (status, updated_at, id) "
            "WHERE deleted_at IS NULL;\n"
            "CREATE INDEX workflows_owner_name_idx ON workflows (owner_id, name{COLLATE_C}, "
            "id) WHERE deleted_at IS NULL;\n"
            "CREATE INDEX workflows_owner_updated_idx ON workflows (owner_id, updated_at, "
            "id) WHERE deleted_at IS NULL;\n"
            "CREATE INDEX workflows_executions_idx ON workflows (execution_count DESC) WHERE "
            "deleted_at IS NULL;\n"
            "CREATE INDEX workflows_cost_idx ON workflows (total_cost_usd DESC) WHERE "
            "deleted_at IS NULL;\n"),
    DB_PAIR("CREATE TABLE workflow_tags (\n"
            "  tag TEXT NOT NULL,\n"
            "  workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,\n"
            "  PRIMARY KEY (tag, workflow_id)\n"
            ") WITHOUT ROWID;\n"
            "CREATE INDEX workflow_tags_workflow_idx ON workflow_tags (workflow_id);\n"
            "CREATE TABLE workflow_permissions (\n"
            "  workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,\n"
            "  user_id TEXT NOT NULL REFERENCES users (id),\n"
            "  access TEXT NOT NULL CHECK (access IN ('editor','viewer')),\n"
            "  PRIMARY KEY (workflow_id, user_id)\n"
            ") WITHOUT ROWID;\n"
            "CREATE INDEX workflow_permissions_user_idx ON workflow_permissions (user_id, "
            "workflow_id);\n",
            "CREATE INDEX workflows_tags_idx ON workflows USING GIN (tags jsonb_path_ops) "
            "WHERE deleted_at IS NULL;\n"
            "CREATE INDEX workflows_editors_idx ON workflows USING GIN (editors "
            "jsonb_path_ops) WHERE deleted_at IS NULL;\n"
            "CREATE INDEX workflows_viewers_idx ON workflows USING GIN (viewers "
            "jsonb_path_ops) WHERE deleted_at IS NULL;\n"
            "CREATE INDEX workflows_search_name_idx ON workflows USING GIN (search_name "
            "gin_trgm_ops) WHERE deleted_at IS NULL;\n"
            "CREATE INDEX workflows_search_description_idx ON workflows USING GIN "
            "(search_description gin_trgm_ops) WHERE deleted_at IS NULL;\n"),
    DB_BOTH("CREATE TABLE workflow_versions (\n"
            "  workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,\n"
            "  version {INT} NOT NULL,\n"
            "  name TEXT NOT NULL,\n"
            "  updated_by TEXT NOT NULL,\n"
            "  created_at TEXT NOT NULL,\n"
            "  snapshot {JSON} NOT NULL,\n"
            "  UNIQUE (workflow_id, version)\n"
            ");\n"),
    {0},
};

/*
 * 004: executions, one row per run, and their node rows. input, output and
 * error, the large texts, come last (lists never walk their overflow
 * pages). What has not happened yet is NULL. The engine's queue is this
 * table (status, lease_owner, lease_until in wall-clock ms). Indexes: one
 * per sort of the list, each ending in id, and per filter (workflow,
 * status) then created_at; NULLs last walk them too. The queue index covers
 * what a claim reads (status included on SQLite, which does not count a
 * partial index's condition as covered); PostgreSQL's claims also rank the
 * queued rows of limited workflows alone. The running index counts a
 * workflow's running executions; ended rows by age serve pruning (NOT IN,
 * so the status index does not compete). Leases go through the status
 * index: an index on lease_until would cost every claim and finish a write.
 * Node rows (large output: a rowid on SQLite) go with their execution.
 */
static const db_sql m4[] = {
    DB_BOTH("CREATE TABLE executions (\n"
            "  id TEXT PRIMARY KEY,\n"
            "  workflow_id TEXT NOT NULL REFERENCES workflows (id),\n"
            "  workflow_version {INT} NOT NULL,\n"
            "  status TEXT NOT NULL CHECK (status IN "
            "('queued','running','succeeded','failed','cancelled','timed_out')),\n"
            "  trigger TEXT NOT NULL,\n"
            "  triggered_by TEXT,\n"
            "  created_at TEXT NOT NULL,\n"
            "  started_at TEXT,\n"
            "  finished_at TEXT,\n"
            "  duration_ms {INT},\n"
            "  memory_bytes {INT} NOT NULL DEFAULT 0,\n"
            "  prompt_tokens {INT} NOT NULL DEFAULT 0,\n"
            "  completion_tokens {INT} NOT NULL DEFAULT 0,\n"
            "  total_tokens {INT} NOT NULL DEFAULT 0,\n"
            "  cost_usd {REAL} NOT NULL DEFAULT 0,\n"
            "  timeout_ms {INT} NOT NULL,\n"
            "  max_concurrency {INT} NOT NULL DEFAULT 0,\n"
            "  deadline_ms {INT} NOT NULL DEFAULT 0,\n"
            "  claims {INT} NOT NULL DEFAULT 0,\n"
            "  lease_owner TEXT,\n"
            "  lease_until {INT},\n"
            "  error {JSON},\n"
            "  input {JSON} NOT NULL,\n"
            "  output {JSON}\n"
            ");\n"
            "CREATE INDEX executions_created_idx ON executions (created_at, id);\n"
            "CREATE INDEX executions_workflow_idx ON executions (workflow_id, created_at, "
            "id);\n"
            "CREATE INDEX executions_status_idx ON executions (status, created_at, id);\n"
            "CREATE INDEX executions_started_idx ON executions (started_at, id);\n"
            "CREATE INDEX executions_finished_idx ON executions (finished_at, id);\n"
            "CREATE INDEX executions_duration_idx ON executions (duration_ms, id);\n"),
    DB_PAIR("CREATE INDEX executions_queue_idx ON executions (created_at, id, workflow_id, "
            "max_concurrency, status) WHERE status = 'queued';\n",
            "CREATE INDEX executions_queue_idx ON executions (created_at, id, workflow_id, "
            "max_concurrency) WHERE status = 'queued';\n"
            "CREATE INDEX executions_queue_limited_idx ON executions (created_at, id, "
            "workflow_id, max_concurrency) WHERE status = 'queued' AND max_concurrency > 0;\n"),
    DB_BOTH("CREATE INDEX executions_running_idx ON executions (workflow_id) WHERE status = "
            "'running';\n"
            "CREATE INDEX executions_ended_idx ON executions (created_at, id, status) WHERE "
            "status NOT IN ('queued','running');\n"
            "CREATE TABLE execution_nodes (\n"
            "  execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,\n"
            "  node_id TEXT NOT NULL,\n"
            "  type TEXT NOT NULL,\n"
            "  status TEXT NOT NULL CHECK (status IN "
            "('queued','running','succeeded','failed','cancelled','timed_out','pending',"
            "'skipped')),\n"
            "  attempts {INT} NOT NULL DEFAULT 0,\n"
            "  started_at TEXT,\n"
            "  finished_at TEXT,\n"
            "  duration_ms {INT},\n"
            "  prompt_tokens {INT} NOT NULL DEFAULT 0,\n"
            "  completion_tokens {INT} NOT NULL DEFAULT 0,\n"
            "  total_tokens {INT} NOT NULL DEFAULT 0,\n"
            "  cost_usd {REAL} NOT NULL DEFAULT 0,\n"
            "  model TEXT,\n"
            "  seq {INT} NOT NULL,\n"
            "  error {JSON},\n"
            "  output {JSON},\n"
            "  PRIMARY KEY (execution_id, node_id)\n"
            ");\n"),
    {0},
};

/*
 * 005: fair claims and the active-executions quota, both by triggered_by.
 * A claim walks the queue user by user (executions_fair_idx: each user's
 * queued rows oldest first, with what a claim checks, so the walk reads no
 * table row on SQLite); the quota counts one user's rows by status
 * (executions_active_idx: every status, so a status added later is counted
 * through it unchanged). Neither claim reads the older queue indexes any
 * more, so they go. "No user" is '' from now on, never NULL: a claim
 * enumerates users by comparison, which NULL escapes.
 */
static const db_sql m5[] = {
    DB_BOTH("UPDATE executions SET triggered_by = '' WHERE triggered_by IS NULL;\n"
            "DROP INDEX executions_queue_idx;\n"),
    DB_PAIR("CREATE INDEX executions_fair_idx ON executions (triggered_by, created_at, id, "
            "workflow_id, max_concurrency, status) WHERE status = 'queued';\n",
            "DROP INDEX executions_queue_limited_idx;\n"
            "CREATE INDEX executions_fair_idx ON executions (triggered_by, created_at, id, "
            "workflow_id, max_concurrency) WHERE status = 'queued';\n"),
    DB_BOTH("CREATE INDEX executions_active_idx ON executions (status, triggered_by);\n"),
    {0},
};

/*
 * 006: LLM spend budgets (docs/api.md, "Budgets"). Money is integer
 * nano-dollars (1e-9 USD), so sums and the reservation's comparison are
 * exact on both databases. One budget per scope and period: scope_id is ''
 * for the global scope, so the UNIQUE index also holds there (NULLs would
 * never collide) and answers the engine's lookup of the budgets of a call.
 * resets_at is NULL for a "total" budget. A reservation is one call's
 * worst-case cost held against one budget, keyed by the call (execution,
 * node, the node's call number) and released by execution id.
 */
static const db_sql m6[] = {
    DB_BOTH("CREATE TABLE budgets (\n"
            "  id TEXT PRIMARY KEY,\n"
            "  scope_type TEXT NOT NULL CHECK (scope_type IN ('global','user','workflow')),\n"
            "  scope_id TEXT NOT NULL,\n"
            "  period TEXT NOT NULL CHECK (period IN ('day','month','total')),\n"
            "  limit_nano {INT} NOT NULL CHECK (limit_nano > 0),\n"
            "  spent_nano {INT} NOT NULL DEFAULT 0,\n"
            "  reserved_nano {INT} NOT NULL DEFAULT 0,\n"
            "  period_start TEXT NOT NULL,\n"
            "  resets_at TEXT,\n"
            "  created_at TEXT NOT NULL,\n"
            "  updated_at TEXT NOT NULL,\n"
            "  created_by TEXT NOT NULL\n"
            ");\n"
            "CREATE UNIQUE INDEX budgets_scope_idx ON budgets (scope_type, scope_id, period);\n"
            "CREATE INDEX budgets_created_idx ON budgets (created_at, id);\n"
            "CREATE INDEX budgets_updated_idx ON budgets (updated_at, id);\n"
            "CREATE TABLE budget_reservations (\n"
            "  execution_id TEXT NOT NULL,\n"
            "  node_id TEXT NOT NULL,\n"
            "  call_seq {INT} NOT NULL,\n"
            "  budget_id TEXT NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,\n"
            "  amount_nano {INT} NOT NULL CHECK (amount_nano > 0),\n"
            "  created_at TEXT NOT NULL,\n"
            "  PRIMARY KEY (execution_id, node_id, call_seq, budget_id)\n"
            ");\n"
            "CREATE INDEX budget_reservations_budget_idx ON budget_reservations (budget_id);\n"),
    {0},
};

/*
 * 007: the credentials vault. secret is the sealed data (credentials/
 * vault.h: key id, nonce, ciphertext, tag), never plaintext; key_id repeats
 * the blob's key id so a rotation finds what it has left to re-seal. The
 * canary is one value sealed under the key of the last start or rotation:
 * a start whose keys cannot open it is refused.
 */
static const db_sql m7[] = {
    DB_BOTH("CREATE TABLE credentials (\n"
            "  id TEXT PRIMARY KEY,\n"
            "  owner_id TEXT NOT NULL,\n"
            "  name TEXT NOT NULL,\n"
            "  type TEXT NOT NULL,\n"
            "  description TEXT NOT NULL DEFAULT '',\n"
            "  base_url TEXT,\n"
            "  allowed_hosts TEXT NOT NULL,\n"
            "  fields TEXT NOT NULL,\n"
            "  hint TEXT NOT NULL,\n"
            "  secret TEXT NOT NULL,\n"
            "  key_id TEXT NOT NULL,\n"
            "  created_at TEXT NOT NULL,\n"
            "  updated_at TEXT NOT NULL,\n"
            "  last_used_at TEXT\n"
            ");\n"
            "CREATE UNIQUE INDEX credentials_owner_name_idx ON credentials (owner_id, name);\n"
            "CREATE INDEX credentials_owner_created_idx ON credentials (owner_id, created_at, id);\n"
            "CREATE INDEX credentials_created_idx ON credentials (created_at, id);\n"
            "CREATE INDEX credentials_updated_idx ON credentials (updated_at, id);\n"
            "CREATE INDEX credentials_key_idx ON credentials (key_id, id);\n"
            "CREATE TABLE credential_canary (\n"
            "  id {INT} PRIMARY KEY,\n"
            "  secret TEXT NOT NULL,\n"
            "  key_id TEXT NOT NULL,\n"
            "  updated_at TEXT NOT NULL\n"
            ");\n"),
    {0},
};

/*
 * 008: durable execution events (docs/api.md, "Live execution events"),
 * numbered per execution from 1 with no gaps and written in the
 * transaction of the change they describe. A row holds the events one
 * transaction wrote for one execution, seq..last_seq, stamped ts, as
 * lines "<type> <members>" (members: the JSON members of the event's
 * fields; streams add executionId, seq and ts, the same way live and on
 * replay; never an output): a flush that moves an execution several steps
 * writes one row, not one per event. execution.queued (seq 1) is the
 * executions row itself. The rows go with their execution (delete,
 * retention).
 */
static const db_sql m8[] = {
    DB_BOTH("CREATE TABLE execution_events (\n"
            "  execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,\n"
            "  seq {INT} NOT NULL,\n"
            "  last_seq {INT} NOT NULL CHECK (last_seq >= seq),\n"
            "  ts TEXT NOT NULL,\n"
            "  data TEXT NOT NULL,\n"
            "  PRIMARY KEY (execution_id, seq)\n"
            ");\n"),
    {0},
};

/*
 * 011: approvals (docs/api.md, "More node types"). An execution at an
 * approval node is "waiting", and so is the node: both CHECKs take the new
 * status (PostgreSQL replaces the constraints; SQLite, which cannot alter
 * a CHECK, has the tables' text rewritten in its schema, as its ALTER
 * TABLE documentation gives for a change that leaves every stored row
 * valid, and reloads it). Pruning passes over waiting executions
 * (executions_ended_idx again, its condition as the queries write it).
 * One approvals row per waiting node, decided by one conditional UPDATE
 * (decision IS NULL), so the first decision wins; expires_at (wall-clock
 * ms) is when its timeout fires, found through approvals_due_idx by any
 * instance; left_ms is what was left of the execution's settings.timeoutMs
 * when it began to wait (that clock is paused until it runs again).
 */
static const db_sql m11[] = {
    DB_PAIR("PRAGMA writable_schema=ON;\n"
            "UPDATE sqlite_master SET sql = replace(sql, '''timed_out'')', "
            "'''timed_out'',''waiting'')') WHERE type = 'table' AND name = 'executions';\n"
            "UPDATE sqlite_master SET sql = replace(sql, '''pending'',', "
            "'''pending'',''waiting'',') WHERE type = 'table' AND name = 'execution_nodes';\n"
            "PRAGMA writable_schema=RESET;\n",
            "ALTER TABLE executions DROP CONSTRAINT executions_status_check;\n"
            "ALTER TABLE executions ADD CONSTRAINT executions_status_check CHECK (status IN "
            "('queued','running','succeeded','failed','cancelled','timed_out','waiting'));\n"
            "ALTER TABLE execution_nodes DROP CONSTRAINT execution_nodes_status_check;\n"
            "ALTER TABLE execution_nodes ADD CONSTRAINT execution_nodes_status_check CHECK "
            "(status IN ('queued','running','succeeded','failed','cancelled','timed_out',"
            "'pending','waiting','skipped'));\n"),
    DB_BOTH("DROP INDEX executions_ended_idx;\n"
            "CREATE INDEX executions_ended_idx ON executions (created_at, id, status) WHERE "
            "status NOT IN ('queued', 'running', 'waiting');\n"
            "CREATE TABLE approvals (\n"
            "  execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,\n"
            "  node_id TEXT NOT NULL,\n"
            "  workflow_id TEXT NOT NULL,\n"
            "  message TEXT,\n"
            "  on_timeout TEXT NOT NULL CHECK (on_timeout IN ('fail','reject')),\n"
            "  created_at TEXT NOT NULL,\n"
            "  expires_at {INT} NOT NULL,\n"
            "  left_ms {INT} NOT NULL,\n"
            "  decision TEXT CHECK (decision IN ('approve','reject','timeout')),\n"
            "  comment TEXT,\n"
            "  decided_by TEXT,\n"
            "  decided_at TEXT,\n"
            "  PRIMARY KEY (execution_id, node_id)\n"
            ");\n"
            "CREATE INDEX approvals_due_idx ON approvals (expires_at) WHERE decision IS NULL;\n"
            "CREATE INDEX approvals_open_idx ON approvals (workflow_id, created_at) "
            "WHERE decision IS NULL;\n"),
    {0},
};

/*
 * 012: triggers (docs/api.md, "Triggers"). Executions say what started them
 * (trigger_id: the schedule or webhook; scheduled_for: a schedule's due
 * time). A schedule_runs row is written in the transaction that queues the
 * execution of a due time, and its key is the due time itself, so a due
 * time runs at most once whatever the number of instances or restarts.
 * schedules.pending_for is the one start buffer_one keeps. A webhook holds
 * its secret sealed by the credentials vault (secret, key_id), and during a
 * rotation's grace also the one before (old_secret, old_key_id, until
 * old_until_ms). webhook_keys keeps an Idempotency-Key's answer until
 * expires_ms; execution_id NULL while the first request is being handled.
 */
static const db_sql m12[] = {
    DB_BOTH("ALTER TABLE executions ADD COLUMN trigger_id TEXT;\n"
            "ALTER TABLE executions ADD COLUMN scheduled_for TEXT;\n"
            "CREATE INDEX executions_trigger_idx ON executions (trigger, created_at, id);\n"
            "CREATE INDEX executions_trigger_id_idx ON executions (trigger_id, status) "
            "WHERE trigger_id IS NOT NULL;\n"
            "CREATE TABLE schedules (\n"
            "  id TEXT PRIMARY KEY,\n"
            "  workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,\n"
            "  cron TEXT NOT NULL,\n"
            "  timezone TEXT NOT NULL,\n"
            "  input {JSON} NOT NULL DEFAULT '{}',\n"
            "  overlap TEXT NOT NULL CHECK (overlap IN ('skip','allow','buffer_one')),\n"
            "  enabled BOOLEAN NOT NULL,\n"
            "  last_run_at TEXT,\n"
            "  pending_for TEXT,\n"
            "  created_at TEXT NOT NULL,\n"
            "  created_by TEXT NOT NULL,\n"
            "  updated_at TEXT NOT NULL\n"
            ");\n"
            "CREATE INDEX schedules_workflow_idx ON schedules (workflow_id, created_at, id);\n"
            "CREATE INDEX schedules_enabled_idx ON schedules (enabled, id);\n"
            "CREATE TABLE schedule_runs (\n"
            "  schedule_id TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,\n"
            "  scheduled_for TEXT NOT NULL,\n"
            "  execution_id TEXT,\n"
            "  created_at TEXT NOT NULL,\n"
            "  PRIMARY KEY (schedule_id, scheduled_for)\n"
            ");\n"
            "CREATE INDEX schedule_runs_created_idx ON schedule_runs (created_at);\n"
            "CREATE TABLE webhooks (\n"
            "  id TEXT PRIMARY KEY,\n"
            "  workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,\n"
            "  name TEXT NOT NULL,\n"
            "  auth TEXT NOT NULL CHECK (auth IN ('none','token','hmac')),\n"
            "  response TEXT NOT NULL CHECK (response IN ('async','sync')),\n"
            "  secret TEXT NOT NULL,\n"
            "  key_id TEXT NOT NULL,\n"
            "  old_secret TEXT,\n"
            "  old_key_id TEXT,\n"
            "  old_until_ms {INT} NOT NULL DEFAULT 0,\n"
            "  created_at TEXT NOT NULL,\n"
            "  created_by TEXT NOT NULL,\n"
            "  last_called_at TEXT\n"
            ");\n"
            "CREATE INDEX webhooks_workflow_idx ON webhooks (workflow_id, created_at, id);\n"
            "CREATE TABLE webhook_keys (\n"
            "  webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,\n"
            "  idem_key TEXT NOT NULL,\n"
            "  execution_id TEXT,\n"
            "  status_code {INT} NOT NULL DEFAULT 0,\n"
            "  expires_ms {INT} NOT NULL,\n"
            "  PRIMARY KEY (webhook_id, idem_key)\n"
            ");\n"
            "CREATE INDEX webhook_keys_expires_idx ON webhook_keys (expires_ms);\n"),
    {0},
};

/*
 * 013: child executions (workflow nodes). A child names its parent, the
 * root of its tree and its depth (0 at the root), and the parent's node
 * and attempt that started it: one child per attempt (the unique index),
 * so a parent resumed after a crash finds the child it started instead of
 * starting another. (Versions 9 and 10 were never used.)
 *
 * agent_steps: what an agent node's loop finished, one row each (a model
 * answer, a tool call's result), committed as it finishes, in order (seq
 * from 1 per node of an execution), so that a resumed loop goes on after
 * the last one and never runs a finished tool call again. Node retries
 * apply to model calls, not to the loop, so rows are not per attempt.
 * They go with their execution.
 */
static const db_sql m13[] = {
    DB_BOTH("ALTER TABLE executions ADD COLUMN parent_execution_id TEXT;\n"
            "ALTER TABLE executions ADD COLUMN root_execution_id TEXT;\n"
            "ALTER TABLE executions ADD COLUMN depth {INT} NOT NULL DEFAULT 0;\n"
            "ALTER TABLE executions ADD COLUMN parent_node_id TEXT;\n"
            "ALTER TABLE executions ADD COLUMN parent_attempt {INT};\n"
            "CREATE UNIQUE INDEX executions_child_idx ON executions "
            "(parent_execution_id, parent_node_id, parent_attempt);\n"
            "CREATE TABLE agent_steps (\n"
            "  execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,\n"
            "  node_id TEXT NOT NULL,\n"
            "  seq {INT} NOT NULL CHECK (seq >= 1),\n"
            "  kind TEXT NOT NULL,\n"
            "  call_id TEXT,\n"
            "  data TEXT NOT NULL,\n"
            "  prompt_tokens {INT} NOT NULL DEFAULT 0,\n"
            "  completion_tokens {INT} NOT NULL DEFAULT 0,\n"
            "  cost_usd {REAL} NOT NULL DEFAULT 0,\n"
            "  created_at TEXT NOT NULL,\n"
            "  PRIMARY KEY (execution_id, node_id, seq)\n"
            ");\n"),
    {0},
};

/*
 * 014: the execution status tests as comparisons instead of IN lists.
 * SQLite builds a temporary b-tree to test a value against an IN list,
 * and every insert and update of an execution or a node row tested one to
 * three of them (the status CHECKs and executions_ended_idx's condition,
 * for the old row and the new): about ten per execution, 6 % of the
 * instructions of a small one. PostgreSQL tests a list in place; there
 * only the index changes, whose condition the queries repeat as written
 * (EXEC_ENDED in executions.c). The CHECKs are rewritten in SQLite's
 * schema text as in 011: every stored row stays valid.
 */
#define OR_STATUS(a) "status = ''" a "''"
static const db_sql m14[] = {
    DB_PAIR("PRAGMA writable_schema=ON;\n"
            "UPDATE sqlite_master SET sql = replace(sql, 'CHECK (status IN (''queued'',''running'',"
            "''succeeded'',''failed'',''cancelled'',''timed_out'',''waiting''))', 'CHECK ("
            OR_STATUS("queued") " OR " OR_STATUS("running") " OR " OR_STATUS("succeeded") " OR "
            OR_STATUS("failed") " OR " OR_STATUS("cancelled") " OR " OR_STATUS("timed_out") " OR "
            OR_STATUS("waiting") ")') WHERE type = 'table' AND name = 'executions';\n"
            "UPDATE sqlite_master SET sql = replace(sql, 'CHECK (status IN (''queued'',''running'',"
            "''succeeded'',''failed'',''cancelled'',''timed_out'',''pending'',''waiting'',"
            "''skipped''))', 'CHECK (" OR_STATUS("queued") " OR " OR_STATUS("running") " OR "
            OR_STATUS("succeeded") " OR " OR_STATUS("failed") " OR " OR_STATUS("cancelled") " OR "
            OR_STATUS("timed_out") " OR " OR_STATUS("pending") " OR " OR_STATUS("waiting") " OR "
            OR_STATUS("skipped") ")') WHERE type = 'table' AND name = 'execution_nodes';\n"
            "PRAGMA writable_schema=RESET;\n",
            NULL),
    DB_BOTH("DROP INDEX executions_ended_idx;\n"
            "CREATE INDEX executions_ended_idx ON executions (created_at, id, status) WHERE "
            "status <> 'queued' AND status <> 'running' AND status <> 'waiting';\n"),
    {0},
};
#undef OR_STATUS

const store_migration store_migrations[] = {
    {1, "001_users", m1},
    {2, "002_auth", m2},
    {3, "003_workflows", m3},
    {4, "004_executions", m4},
    {5, "005_fair_queue", m5},
    {6, "006_budgets", m6},
    {7, "007_credentials", m7},
    {8, "008_execution_events", m8},
    {11, "011_approvals", m11},
    {12, "012_triggers", m12},
    {13, "013_agents", m13},
    {14, "014_status_tests", m14},
};

const size_t store_migrations_len = sizeof(store_migrations) / sizeof(store_migrations[0]);

/* pg_advisory_xact_lock key of migrations: "aopmigr" in ASCII. */
#define MIGRATION_LOCK "27425601403578226"

static const db_sql q_lock = DB_PAIR(NULL, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")");
static const db_sql q_max = DB_BOTH("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
static const db_sql q_has = DB_BOTH("SELECT COUNT(*) FROM schema_migrations WHERE version = $1");
static const db_sql q_add = DB_BOTH(
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)");
static const char table_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL)";

/* Creates schema_migrations; *max (a long long): the newest version it
 * records. */
static aop_err table(db_op *o, void *max)
{
    aop_err rc = o->s->v->exec(o->s->h, table_sql, o->name);
    return rc == AOP_OK ? db_query_int(o, &q_max, max, "") : rc;
}

/* A migration to apply, and whether this process did. */
typedef struct {
    const store_migration *m;
    bool did;
} step;

/* Applies the step's migration with its schema_migrations row unless it is
 * recorded (another process was first). */
static aop_err apply(db_op *o, void *p)
{
    step *st = p;
    long long has = 0;
    char now[25];
    aop_err rc = db_query_int(o, &q_has, &has, "i", (long long)st->m->version);
    if (rc != AOP_OK || has)
        return rc;
    char *sql = store_migration_sql(st->m, o->s->v->dialect);
    rc = o->s->v->exec(o->s->h, sql, o->name);
    free(sql);
    if (rc != AOP_OK) {
        log_error("database migration failed", LF_I("version", st->m->version),
                  LF_S("name", st->m->name));
        return rc;
    }
    clock_format_rfc3339(clock_now_ms(), now);
    rc = db_exec(o, &q_add, NULL, "itt", (long long)st->m->version, st->m->name, now);
    st->did = rc == AOP_OK;
    return rc;
}

/* Applies every migration newer than the newest recorded, in order;
 * refuses a database whose schema is newer than the binary's list. */
aop_err store_migrate(store *s, int *applied)
{
    db_op o = db_op_start(s, "migrate");
    long long max = 0;
    *applied = 0;
    aop_err rc = db_tx(&o, &q_lock, table, &max);
    int known = store_migrations_len ? store_migrations[store_migrations_len - 1].version : 0;
    if (rc == AOP_OK && max > known) {
        log_error("database schema is newer than this binary", LF_I("databaseVersion", max),
                  LF_I("binaryVersion", known));
        rc = AOP_ERR_INTERNAL;
    }
    for (size_t i = 0; rc == AOP_OK && i < store_migrations_len; i++) {
        step st = {&store_migrations[i], false};
        if (st.m->version <= max || (rc = db_tx(&o, &q_lock, apply, &st)) != AOP_OK || !st.did)
            continue;
        *applied += 1;
        log_info("database migration applied", LF_I("version", st.m->version),
                 LF_S("name", st.m->name));
    }
    return db_op_end(&o, rc);
}
