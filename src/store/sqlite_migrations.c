/*
 * sqlite_migrations.c - the SQLite schema, as numbered migrations.
 *
 * Keep the SQL portable where it costs nothing (PostgreSQL has its own list):
 * TEXT ids (UUIDv7), TEXT RFC 3339 timestamps in UTC with milliseconds (they
 * sort as text), JSON documents as TEXT. Append new migrations at the end.
 */
#include "store/migrations.h"

const store_migration store_sqlite_migrations[] = {
    {1, "001_users",
     "CREATE TABLE users (\n"
     "  id TEXT PRIMARY KEY,\n"
     "  email TEXT NOT NULL UNIQUE,\n"
     "  name TEXT NOT NULL,\n"
     "  password_hash TEXT NOT NULL,\n"
     "  role TEXT NOT NULL CHECK (role IN ('admin','user','viewer')),\n"
     "  preferences TEXT NOT NULL DEFAULT '{}',\n"
     "  is_active BOOLEAN NOT NULL DEFAULT TRUE,\n"
     "  created_at TEXT NOT NULL,\n"
     "  updated_at TEXT NOT NULL,\n"
     "  last_login_at TEXT\n"
     ");\n"
     "CREATE INDEX users_role_idx ON users (role);\n"
     "CREATE INDEX users_created_at_idx ON users (created_at);\n"},
    {2, "002_auth",
     /* A family is one login's chain of refresh tokens; revoking it refuses
      * every token that carries its id. expires_at is the latest expiry of any
      * token issued in it, so pruning never forgets a revocation too early. */
     "CREATE TABLE token_families (\n"
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
     "CREATE INDEX revoked_access_tokens_expires_idx ON revoked_access_tokens (expires_at);\n"
     "CREATE TABLE api_keys (\n"
     "  id TEXT PRIMARY KEY,\n"
     "  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,\n"
     "  name TEXT NOT NULL,\n"
     "  prefix TEXT NOT NULL,\n"
     "  key_hash TEXT NOT NULL UNIQUE,\n"
     "  scopes TEXT NOT NULL,\n"
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
     "  detail TEXT NOT NULL DEFAULT '{}'\n"
     ");\n"
     "CREATE INDEX audit_events_created_idx ON audit_events (created_at);\n"
     "CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, created_at);\n"
     "CREATE INDEX audit_events_subject_idx ON audit_events (subject_id, created_at);\n"
     "CREATE INDEX users_name_idx ON users (name);\n"
     "CREATE UNIQUE INDEX users_email_lower_idx ON users (lower(email));\n"},
    {3, "003_workflows",
     /* Tags and permissions are kept twice: as JSON in the row, which is what
      * a read returns, and as rows of their own, which is what the list
      * filters use; the backend writes both in one statement group inside
      * the caller's transaction. search_name and search_description are
      * the name and description lowered with Unicode's simple mapping at
      * write time, so a search is two instr() per row. definition, the
      * large one, is the last column: reading the columns a list shows
      * never walks its overflow pages. Partial indexes keep deleted
      * workflows out of every list and sort. */
     "CREATE TABLE workflows (\n"
     "  id TEXT PRIMARY KEY,\n"
     "  name TEXT NOT NULL,\n"
     "  description TEXT NOT NULL DEFAULT '',\n"
     "  tags TEXT NOT NULL DEFAULT '[]',\n"
     "  status TEXT NOT NULL CHECK (status IN ('draft','active','archived')),\n"
     "  settings TEXT NOT NULL DEFAULT '{}',\n"
     "  editors TEXT NOT NULL DEFAULT '[]',\n"
     "  viewers TEXT NOT NULL DEFAULT '[]',\n"
     "  version INTEGER NOT NULL CHECK (version >= 1),\n"
     "  owner_id TEXT NOT NULL REFERENCES users (id),\n"
     "  created_by TEXT NOT NULL,\n"
     "  updated_by TEXT NOT NULL,\n"
     "  created_at TEXT NOT NULL,\n"
     "  updated_at TEXT NOT NULL,\n"
     "  deleted_at TEXT,\n"
     "  deleted_by TEXT,\n"
     "  search_name TEXT NOT NULL,\n"
     "  search_description TEXT NOT NULL,\n"
     "  execution_count INTEGER NOT NULL DEFAULT 0,\n"
     "  success_count INTEGER NOT NULL DEFAULT 0,\n"
     "  failure_count INTEGER NOT NULL DEFAULT 0,\n"
     "  duration_ms_total INTEGER NOT NULL DEFAULT 0,\n"
     "  duration_count INTEGER NOT NULL DEFAULT 0,\n"
     "  total_tokens INTEGER NOT NULL DEFAULT 0,\n"
     "  total_cost_usd REAL NOT NULL DEFAULT 0,\n"
     "  last_executed_at TEXT,\n"
     "  definition TEXT NOT NULL\n"
     ");\n"
     "CREATE INDEX workflows_created_idx ON workflows (created_at, id) WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_updated_idx ON workflows (updated_at, id) WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_name_idx ON workflows (name, id) WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_status_idx ON workflows (status, created_at, id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_owner_idx ON workflows (owner_id, created_at, id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_status_name_idx ON workflows (status, name, id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_status_updated_idx ON workflows (status, updated_at, id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_owner_name_idx ON workflows (owner_id, name, id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_owner_updated_idx ON workflows (owner_id, updated_at, id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_executions_idx ON workflows (execution_count DESC) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_cost_idx ON workflows (total_cost_usd DESC) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE TABLE workflow_tags (\n"
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
     "CREATE INDEX workflow_permissions_user_idx ON workflow_permissions (user_id, workflow_id);\n"
     "CREATE TABLE workflow_versions (\n"
     "  workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,\n"
     "  version INTEGER NOT NULL,\n"
     "  name TEXT NOT NULL,\n"
     "  updated_by TEXT NOT NULL,\n"
     "  created_at TEXT NOT NULL,\n"
     "  snapshot TEXT NOT NULL,\n"
     "  UNIQUE (workflow_id, version)\n"
     ");\n"},
    {4, "004_executions",
     /* One row per run of a workflow, and one per node that ran in it.
      * input, output and error, the large texts, come last so that lists,
      * sorts and aggregates never walk their overflow pages. Timestamps
      * that have not happened yet are NULL, as is duration_ms until the end.
      * The engine's queue lives in the same table: a worker claims queued
      * rows by setting status, lease_owner and lease_until (wall-clock ms)
      * in one statement. Indexes: one per sort of the list, each ending in
      * id (the tie-breaker), and per filter (workflow, status) with
      * created_at after it, the list's default order. Sorting by
      * started_at, finished_at or duration_ms with NULLs last walks those
      * indexes too (SQLite reads the NULL entries at the end). The queue
      * index covers what a claim reads (status included: this SQLite does
      * not count a partial index's condition as covered); the running one
      * counts a workflow's running executions for max_concurrency; ended
      * rows by age serve pruning (NOT IN, so that the status index, which
      * an IN list would match, does not compete with it). Leases are found
      * through the status index: running rows are few, so an index on
      * lease_until of its own would cost every claim and finish a write
      * for nothing. Node rows can be large (output), so they keep a rowid;
      * their key is (execution_id, node_id) and the cascade removes them
      * with their execution. */
     "CREATE TABLE executions (\n"
     "  id TEXT PRIMARY KEY,\n"
     "  workflow_id TEXT NOT NULL REFERENCES workflows (id),\n"
     "  workflow_version INTEGER NOT NULL,\n"
     "  status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed',"
     "'cancelled','timed_out')),\n"
     "  trigger TEXT NOT NULL,\n"
     "  triggered_by TEXT,\n"
     "  created_at TEXT NOT NULL,\n"
     "  started_at TEXT,\n"
     "  finished_at TEXT,\n"
     "  duration_ms INTEGER,\n"
     "  memory_bytes INTEGER NOT NULL DEFAULT 0,\n"
     "  prompt_tokens INTEGER NOT NULL DEFAULT 0,\n"
     "  completion_tokens INTEGER NOT NULL DEFAULT 0,\n"
     "  total_tokens INTEGER NOT NULL DEFAULT 0,\n"
     "  cost_usd REAL NOT NULL DEFAULT 0,\n"
     "  timeout_ms INTEGER NOT NULL,\n"
     "  max_concurrency INTEGER NOT NULL DEFAULT 0,\n"
     "  deadline_ms INTEGER NOT NULL DEFAULT 0,\n"
     "  claims INTEGER NOT NULL DEFAULT 0,\n"
     "  lease_owner TEXT,\n"
     "  lease_until INTEGER,\n"
     "  error TEXT,\n"
     "  input TEXT NOT NULL,\n"
     "  output TEXT\n"
     ");\n"
     "CREATE INDEX executions_created_idx ON executions (created_at, id);\n"
     "CREATE INDEX executions_workflow_idx ON executions (workflow_id, created_at, id);\n"
     "CREATE INDEX executions_status_idx ON executions (status, created_at, id);\n"
     "CREATE INDEX executions_started_idx ON executions (started_at, id);\n"
     "CREATE INDEX executions_finished_idx ON executions (finished_at, id);\n"
     "CREATE INDEX executions_duration_idx ON executions (duration_ms, id);\n"
     "CREATE INDEX executions_queue_idx ON executions "
     "(created_at, id, workflow_id, max_concurrency, status) WHERE status = 'queued';\n"
     "CREATE INDEX executions_running_idx ON executions (workflow_id) "
     "WHERE status = 'running';\n"
     "CREATE INDEX executions_ended_idx ON executions (created_at, id, status) "
     "WHERE status NOT IN ('queued','running');\n"
     "CREATE TABLE execution_nodes (\n"
     "  execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,\n"
     "  node_id TEXT NOT NULL,\n"
     "  type TEXT NOT NULL,\n"
     "  status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed',"
     "'cancelled','timed_out','pending','skipped')),\n"
     "  attempts INTEGER NOT NULL DEFAULT 0,\n"
     "  started_at TEXT,\n"
     "  finished_at TEXT,\n"
     "  duration_ms INTEGER,\n"
     "  prompt_tokens INTEGER NOT NULL DEFAULT 0,\n"
     "  completion_tokens INTEGER NOT NULL DEFAULT 0,\n"
     "  total_tokens INTEGER NOT NULL DEFAULT 0,\n"
     "  cost_usd REAL NOT NULL DEFAULT 0,\n"
     "  model TEXT,\n"
     "  seq INTEGER NOT NULL,\n"
     "  error TEXT,\n"
     "  output TEXT,\n"
     "  PRIMARY KEY (execution_id, node_id)\n"
     ");\n"},
};

const size_t store_sqlite_migrations_len =
    sizeof(store_sqlite_migrations) / sizeof(store_sqlite_migrations[0]);
