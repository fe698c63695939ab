/*
 * config.h - configuration from the environment, parsed from one table.
 *
 * Every variable of API.md's "Configuration" section (plus the additions in
 * docs/configuration.md) is one row of the table in config.c: name, type,
 * default, bounds, and an optional check. config_load() fills a config,
 * refusing the first bad value with a message that names the variable.
 */
#ifndef AOP_CORE_CONFIG_H
#define AOP_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { APP_ENV_DEVELOPMENT = 0, APP_ENV_PRODUCTION, APP_ENV_TEST } app_env;

typedef struct {
    int app_env;
    char *host;
    long long port;
    char *database_url;
    char *redis_url;
    char *jwt_access_secret;
    char *jwt_refresh_secret;
    char *frontend_url;
    long long trust_proxy; /* trusted proxy hops in front (0: none) */
    long long access_token_ttl;
    long long refresh_token_ttl;
    long long bcrypt_cost;
    long long body_limit_bytes;
    long long rate_limit_max;
    long long rate_limit_window_ms;
    long long auth_rate_limit_max;
    long long auth_rate_limit_window_ms;
    int log_level;
    char *log_file;
    long long log_max_size_mb;
    long long log_max_files;
    long long http_threads;
    long long workers;
    long long lock_wait_ms;
    long long cache_max_bytes;
    char *metrics_token;
    char *llm_base_url;
    char *llm_api_key;
    char *llm_pricing_file;
    char *admin_email;
    char *admin_password;
    bool http_node_allow_private;
    long long execution_retention_days;
    long long execution_retention_max;
    long long execution_lease_ms;
    /* additions to the contract, see docs/configuration.md */
    long long http_max_connections;
    long long http_max_connections_per_ip;
    long long http_timeout_seconds;
    long long shutdown_timeout_ms;
    long long db_slow_ms;
    char *data_dir;
    /* memory and storage budgets of executions */
    long long node_output_max_bytes;
    long long execution_memory_max_bytes;
    long long execution_stored_max_bytes;
    /* limits and fairness */
    long long quota_active_executions; /* queued + running executions of one user */
    long long wait_max_ms;             /* every synchronous wait at most */
    long long webhook_secret_grace_s;  /* a rotated-out webhook secret still works */
    long long worker_max_executions;   /* what one engine loop runs at once */
    long long workflow_max_depth;      /* deepest child execution (workflow nodes) */
    /* LLM spend budgets */
    long long llm_default_max_tokens;
    /* the credentials vault (secrets: never logged) */
    char *credentials_key;       /* base64 of 32 bytes */
    char *credentials_old_keys;  /* comma-separated, still open what they sealed */
    long long credentials_max_per_user;
    /* live execution events (Server-Sent Events) */
    long long sse_ping_ms;      /* a ": ping" comment at least this often */
    long long sse_max_streams;  /* open streams of one user on one instance */
    long long sse_buffer_bytes; /* what a stream may hold unsent before it is dropped */
} config;

/* Looks a variable up; returns NULL when unset. ctx is passed through. */
typedef const char *(*config_getter)(const char *name, void *ctx);

/* Fills c from get (getenv when get is NULL). Returns 0, or -1 with a message
 * naming the variable in err. c owns its strings: config_free() them. */
int config_load(config *c, config_getter get, void *ctx, char *err, size_t errlen);
void config_free(config *c);

/* When a JWT secret is unset outside production: in development, reads it
 * from DATA_DIR/jwt-secrets (creating the file, mode 0600, on first start) so
 * tokens survive a restart; in test, makes a random one for this process.
 * Returns 0, or -1 with a message in err. */
int config_ensure_secrets(config *c, char *err, size_t errlen);

/* Writes one line per variable (name, default, help) to f, for --help. */
void config_print_help(void *file);
/* The same table as man(7) source: one tagged paragraph per variable. */
void config_print_man(void *file);
/* Writes s to f as roff text: backslashes, hyphens and a leading dot or
 * quote escaped, so that any help text prints as written. */
void config_roff(void *file, const char *s);

const char *config_env_name(int env);

#endif
