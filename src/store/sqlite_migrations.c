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
};

const size_t store_sqlite_migrations_len =
    sizeof(store_sqlite_migrations) / sizeof(store_sqlite_migrations[0]);
