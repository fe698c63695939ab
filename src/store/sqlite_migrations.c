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
};

const size_t store_sqlite_migrations_len =
    sizeof(store_sqlite_migrations) / sizeof(store_sqlite_migrations[0]);
