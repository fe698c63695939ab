/*
 * pg_migrations.c - the PostgreSQL schema, as numbered migrations.
 *
 * The same four migrations as sqlite_migrations.c (same versions and names),
 * in PostgreSQL's dialect. pg.c applies each in its own transaction, after
 * pg_advisory_xact_lock(), together with its schema_migrations row.
 *
 * Conventions (see pg_int.h):
 *  - ids and timestamps are TEXT: UUID strings and RFC 3339 UTC with
 *    milliseconds, which sort as text sorts; counters are BIGINT, money
 *    DOUBLE PRECISION.
 *  - JSON documents handed back to clients (preferences, scopes, detail,
 *    definition, settings, snapshot, input, output, error) are `json`: the
 *    text comes back as written. The arrays queries filter on (workflows'
 *    tags, editors, viewers) are `jsonb` with GIN indexes, filtered with
 *    `@>` (e.g. tags @> jsonb_build_array($1::text)); they replace SQLite's
 *    workflow_tags and workflow_permissions tables, which PostgreSQL does
 *    not need. jsonb prints arrays as ["a", "b"] (a space after commas).
 *  - Sorting by a name or an email is in byte order, as on SQLite: ORDER BY
 *    name COLLATE "C" (the indexes are built that way).
 *  - Case-insensitive substring search: lower() folds Unicode in a UTF8
 *    database; the pattern is '%' || escaped(lowered text) || '%' matched
 *    with LIKE ... ESCAPE '\', served by pg_trgm GIN indexes: users on
 *    email and lower(name); workflows on search_name and search_description,
 *    generated columns (lower(name), lower(description)) that must not be
 *    written.
 *
 * Append new migrations at the end; never edit a released one.
 */
#include "store/migrations.h"

const store_migration store_pg_migrations[] = {
    {1, "001_users",
     "CREATE EXTENSION IF NOT EXISTS pg_trgm;\n"
     "CREATE TABLE users (\n"
     "  id TEXT PRIMARY KEY,\n"
     "  email TEXT NOT NULL UNIQUE,\n"
     "  name TEXT NOT NULL,\n"
     "  password_hash TEXT NOT NULL,\n"
     "  role TEXT NOT NULL CHECK (role IN ('admin','user','viewer')),\n"
     "  preferences JSON NOT NULL DEFAULT '{}',\n"
     "  is_active BOOLEAN NOT NULL DEFAULT TRUE,\n"
     "  created_at TEXT NOT NULL,\n"
     "  updated_at TEXT NOT NULL,\n"
     "  last_login_at TEXT\n"
     ");\n"
     "CREATE INDEX users_role_idx ON users (role);\n"
     "CREATE INDEX users_created_at_idx ON users (created_at);\n"},
    {2, "002_auth",
     /* A family is one login's chain of refresh tokens; revoking it refuses
      * every token that carries its id. expires_at is the latest expiry of
      * any token issued in it, so pruning never forgets a revocation too
      * early. */
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
     "  scopes JSON NOT NULL,\n"
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
     "  detail JSON NOT NULL DEFAULT '{}'\n"
     ");\n"
     "CREATE INDEX audit_events_created_idx ON audit_events (created_at);\n"
     "CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, created_at);\n"
     "CREATE INDEX audit_events_subject_idx ON audit_events (subject_id, created_at);\n"
     "CREATE INDEX users_name_idx ON users (name COLLATE \"C\", id);\n"
     "CREATE INDEX users_email_sort_idx ON users (email COLLATE \"C\", id);\n"
     "CREATE UNIQUE INDEX users_email_lower_idx ON users (lower(email));\n"
     "CREATE INDEX users_email_trgm_idx ON users USING GIN (email gin_trgm_ops);\n"
     "CREATE INDEX users_name_trgm_idx ON users USING GIN (lower(name) gin_trgm_ops);\n"},
    {3, "003_workflows",
     /* tags, editors and viewers are jsonb arrays with GIN indexes (jsonb_path_ops:
      * they serve @>), where SQLite keeps workflow_tags and
      * workflow_permissions rows. search_name and search_description are
      * generated from the lowered name and description, with trigram
      * indexes for LIKE '%...%'. definition, the large one, is the last
      * column. Partial indexes keep deleted workflows out of every list and
      * sort. */
     "CREATE TABLE workflows (\n"
     "  id TEXT PRIMARY KEY,\n"
     "  name TEXT NOT NULL,\n"
     "  description TEXT NOT NULL DEFAULT '',\n"
     "  tags JSONB NOT NULL DEFAULT '[]',\n"
     "  status TEXT NOT NULL CHECK (status IN ('draft','active','archived')),\n"
     "  settings JSON NOT NULL DEFAULT '{}',\n"
     "  editors JSONB NOT NULL DEFAULT '[]',\n"
     "  viewers JSONB NOT NULL DEFAULT '[]',\n"
     "  version BIGINT NOT NULL CHECK (version >= 1),\n"
     "  owner_id TEXT NOT NULL REFERENCES users (id),\n"
     "  created_by TEXT NOT NULL,\n"
     "  updated_by TEXT NOT NULL,\n"
     "  created_at TEXT NOT NULL,\n"
     "  updated_at TEXT NOT NULL,\n"
     "  deleted_at TEXT,\n"
     "  deleted_by TEXT,\n"
     "  search_name TEXT GENERATED ALWAYS AS (lower(name)) STORED,\n"
     "  search_description TEXT GENERATED ALWAYS AS (lower(description)) STORED,\n"
     "  execution_count BIGINT NOT NULL DEFAULT 0,\n"
     "  success_count BIGINT NOT NULL DEFAULT 0,\n"
     "  failure_count BIGINT NOT NULL DEFAULT 0,\n"
     "  duration_ms_total BIGINT NOT NULL DEFAULT 0,\n"
     "  duration_count BIGINT NOT NULL DEFAULT 0,\n"
     "  total_tokens BIGINT NOT NULL DEFAULT 0,\n"
     "  total_cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,\n"
     "  last_executed_at TEXT,\n"
     "  definition JSON NOT NULL\n"
     ");\n"
     "CREATE INDEX workflows_created_idx ON workflows (created_at, id) WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_updated_idx ON workflows (updated_at, id) WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_name_idx ON workflows (name COLLATE \"C\", id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_status_idx ON workflows (status, created_at, id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_owner_idx ON workflows (owner_id, created_at, id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_status_name_idx ON workflows (status, name COLLATE \"C\", id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_status_updated_idx ON workflows (status, updated_at, id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_owner_name_idx ON workflows (owner_id, name COLLATE \"C\", id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_owner_updated_idx ON workflows (owner_id, updated_at, id) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_executions_idx ON workflows (execution_count DESC) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_cost_idx ON workflows (total_cost_usd DESC) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_tags_idx ON workflows USING GIN (tags jsonb_path_ops) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_editors_idx ON workflows USING GIN (editors jsonb_path_ops) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_viewers_idx ON workflows USING GIN (viewers jsonb_path_ops) "
     "WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_search_name_idx ON workflows USING GIN "
     "(search_name gin_trgm_ops) WHERE deleted_at IS NULL;\n"
     "CREATE INDEX workflows_search_description_idx ON workflows USING GIN "
     "(search_description gin_trgm_ops) WHERE deleted_at IS NULL;\n"
     "CREATE TABLE workflow_versions (\n"
     "  workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,\n"
     "  version BIGINT NOT NULL,\n"
     "  name TEXT NOT NULL,\n"
     "  updated_by TEXT NOT NULL,\n"
     "  created_at TEXT NOT NULL,\n"
     "  snapshot JSON NOT NULL,\n"
     "  UNIQUE (workflow_id, version)\n"
     ");\n"},
    {4, "004_executions",
     /* One row per run of a workflow, and one per node that ran in it; the
      * engine's queue lives in the same table (a worker claims queued rows
      * with FOR UPDATE SKIP LOCKED, setting status, lease_owner and
      * lease_until, wall-clock ms). Timestamps that have not happened yet
      * are NULL, as is duration_ms until the end. Indexes: one per sort of
      * the list, each ending in id; per filter (workflow, status) with
      * created_at after it; the queue (queued rows, oldest first, and
      * those of limited workflows alone, which claims rank); running
      * rows per workflow (max_concurrency); ended rows by age (pruning).
      * Node rows are keyed by (execution_id, node_id) and go with their
      * execution (cascade). */
     "CREATE TABLE executions (\n"
     "  id TEXT PRIMARY KEY,\n"
     "  workflow_id TEXT NOT NULL REFERENCES workflows (id),\n"
     "  workflow_version BIGINT NOT NULL,\n"
     "  status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed',"
     "'cancelled','timed_out')),\n"
     "  trigger TEXT NOT NULL,\n"
     "  triggered_by TEXT,\n"
     "  created_at TEXT NOT NULL,\n"
     "  started_at TEXT,\n"
     "  finished_at TEXT,\n"
     "  duration_ms BIGINT,\n"
     "  memory_bytes BIGINT NOT NULL DEFAULT 0,\n"
     "  prompt_tokens BIGINT NOT NULL DEFAULT 0,\n"
     "  completion_tokens BIGINT NOT NULL DEFAULT 0,\n"
     "  total_tokens BIGINT NOT NULL DEFAULT 0,\n"
     "  cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,\n"
     "  timeout_ms BIGINT NOT NULL,\n"
     "  max_concurrency BIGINT NOT NULL DEFAULT 0,\n"
     "  deadline_ms BIGINT NOT NULL DEFAULT 0,\n"
     "  claims BIGINT NOT NULL DEFAULT 0,\n"
     "  lease_owner TEXT,\n"
     "  lease_until BIGINT,\n"
     "  error JSON,\n"
     "  input JSON NOT NULL,\n"
     "  output JSON\n"
     ");\n"
     "CREATE INDEX executions_created_idx ON executions (created_at, id);\n"
     "CREATE INDEX executions_workflow_idx ON executions (workflow_id, created_at, id);\n"
     "CREATE INDEX executions_status_idx ON executions (status, created_at, id);\n"
     "CREATE INDEX executions_started_idx ON executions (started_at, id);\n"
     "CREATE INDEX executions_finished_idx ON executions (finished_at, id);\n"
     "CREATE INDEX executions_duration_idx ON executions (duration_ms, id);\n"
     "CREATE INDEX executions_queue_idx ON executions "
     "(created_at, id, workflow_id, max_concurrency) WHERE status = 'queued';\n"
     "CREATE INDEX executions_queue_limited_idx ON executions "
     "(created_at, id, workflow_id, max_concurrency) "
     "WHERE status = 'queued' AND max_concurrency > 0;\n"
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
     "  attempts BIGINT NOT NULL DEFAULT 0,\n"
     "  started_at TEXT,\n"
     "  finished_at TEXT,\n"
     "  duration_ms BIGINT,\n"
     "  prompt_tokens BIGINT NOT NULL DEFAULT 0,\n"
     "  completion_tokens BIGINT NOT NULL DEFAULT 0,\n"
     "  total_tokens BIGINT NOT NULL DEFAULT 0,\n"
     "  cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,\n"
     "  model TEXT,\n"
     "  seq BIGINT NOT NULL,\n"
     "  error JSON,\n"
     "  output JSON,\n"
     "  PRIMARY KEY (execution_id, node_id)\n"
     ");\n"},
};

const size_t store_pg_migrations_len = sizeof(store_pg_migrations) / sizeof(store_pg_migrations[0]);
