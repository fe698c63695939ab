#include "core/config.h"
#include "core/buf.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VALUE_MAX 4096

/* T_INT_BOOL: a T_INT that also takes the boolean words (true 1, false 0). */
typedef enum { T_STR, T_INT, T_BOOL, T_ENUM, T_INT_BOOL } cfg_type;

typedef int (*cfg_check)(const char *value, char *why, size_t whylen);

typedef struct {
    const char *name;
    cfg_type type;
    size_t offset;
    const char *def;           /* NULL: unset unless given */
    long long min, max;        /* T_INT bounds */
    const char *const *values; /* T_ENUM: NULL-terminated list, index stored */
    cfg_check check;           /* T_STR extra check */
    const char *help;
} cfg_entry;

static const char *const env_values[] = {"development", "production", "test", NULL};
static const char *const level_values[] = {"debug", "info", "warn", "error", NULL};

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static int check_database_url(const char *v, char *why, size_t n)
{
    if (has_prefix(v, "sqlite://") && v[9])
        return 0;
    if ((has_prefix(v, "postgres://") || has_prefix(v, "postgresql://")))
        return 0;
    snprintf(why, n, "must be sqlite://PATH or postgres://…");
    return -1;
}

static int check_redis_url(const char *v, char *why, size_t n)
{
    if ((has_prefix(v, "redis://") && v[8]) || (has_prefix(v, "rediss://") && v[9]))
        return 0;
    snprintf(why, n, "must be redis://HOST[:PORT][/DB]");
    return -1;
}

static int check_http_url(const char *v, char *why, size_t n)
{
    const char *rest = has_prefix(v, "https://") ? v + 8 : has_prefix(v, "http://") ? v + 7 : NULL;
    if (rest && *rest && *rest != '/' && !strpbrk(v, " \t\r\n"))
        return 0;
    snprintf(why, n, "must be an http:// or https:// URL");
    return -1;
}

/* A comma-separated list of origins: scheme://host[:port], no path. */
static int check_origins(const char *v, char *why, size_t n)
{
    char *copy = xstrdup(v);
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len && tok[len - 1] == ' ')
            tok[--len] = '\0';
        const char *host = has_prefix(tok, "https://") ? tok + 8
                         : has_prefix(tok, "http://") ? tok + 7 : NULL;
        if (!host || !*host || strchr(host, '/') || strpbrk(tok, " \t")) {
            snprintf(why, n, "must be comma-separated origins like https://app.example.com");
            rc = -1;
            break;
        }
    }
    free(copy);
    return rc;
}

static int check_email(const char *v, char *why, size_t n)
{
    if (str_is_email(v))
        return 0;
    snprintf(why, n, "must be an email address");
    return -1;
}

static int check_nonempty(const char *v, char *why, size_t n)
{
    if (*v)
        return 0;
    snprintf(why, n, "must not be empty");
    return -1;
}

#define F(field) offsetof(config, field)
#define NOLIM 0, 0
static const cfg_entry table[] = {
    {"APP_ENV", T_ENUM, F(app_env), "development", NOLIM, env_values, NULL,
     "development | production | test"},
    {"HOST", T_STR, F(host), "127.0.0.1", NOLIM, NULL, check_nonempty, "address to listen on"},
    {"PORT", T_INT, F(port), "3000", 0, 65535, NULL, NULL, "TCP port (0: any free port)"},
    {"DATABASE_URL", T_STR, F(database_url), "sqlite://./var/aop.db", NOLIM, NULL,
     check_database_url, "sqlite://PATH or postgres://…"},
    {"REDIS_URL", T_STR, F(redis_url), NULL, NOLIM, NULL, check_redis_url,
     "Redis for shared state (unset: in-process)"},
    {"JWT_ACCESS_SECRET", T_STR, F(jwt_access_secret), NULL, NOLIM, NULL, check_nonempty,
     "HS256 key for access tokens (production: >= 32 bytes)"},
    {"JWT_REFRESH_SECRET", T_STR, F(jwt_refresh_secret), NULL, NOLIM, NULL, check_nonempty,
     "HS256 key for refresh tokens (production: >= 32 bytes, distinct)"},
    {"FRONTEND_URL", T_STR, F(frontend_url), NULL, NOLIM, NULL, check_origins,
     "comma-separated origins allowed by CORS"},
    {"TRUST_PROXY", T_INT_BOOL, F(trust_proxy), "0", 0, 16, NULL, NULL,
     "proxies in front: the client is that many X-Forwarded-For entries from the right"},
    {"ACCESS_TOKEN_TTL", T_INT, F(access_token_ttl), "900", 1, 86400 * 365LL, NULL, NULL,
     "access token lifetime, seconds"},
    {"REFRESH_TOKEN_TTL", T_INT, F(refresh_token_ttl), "604800", 1, 86400 * 3650LL, NULL, NULL,
     "refresh token lifetime, seconds"},
    {"BCRYPT_COST", T_INT, F(bcrypt_cost), "12", 4, 31, NULL, NULL,
     "bcrypt cost (production: >= 10)"},
    {"BODY_LIMIT_BYTES", T_INT, F(body_limit_bytes), "1048576", 1, 1LL << 30, NULL, NULL,
     "largest accepted request body"},
    {"RATE_LIMIT_MAX", T_INT, F(rate_limit_max), "600", 1, 1000000000, NULL, NULL,
     "requests per window per caller"},
    {"RATE_LIMIT_WINDOW_MS", T_INT, F(rate_limit_window_ms), "60000", 1, 86400000LL * 30, NULL,
     NULL, "rate limit window"},
    {"AUTH_RATE_LIMIT_MAX", T_INT, F(auth_rate_limit_max), "10", 1, 1000000000, NULL, NULL,
     "login/register/refresh requests per window per IP"},
    {"AUTH_RATE_LIMIT_WINDOW_MS", T_INT, F(auth_rate_limit_window_ms), "900000", 1,
     86400000LL * 30, NULL, NULL, "auth rate limit window"},
    {"LOG_LEVEL", T_ENUM, F(log_level), "info", NOLIM, level_values, NULL,
     "debug | info | warn | error"},
    {"LOG_FILE", T_STR, F(log_file), NULL, NOLIM, NULL, check_nonempty,
     "log to this file instead of stderr"},
    {"LOG_MAX_SIZE_MB", T_INT, F(log_max_size_mb), "100", 1, 1000000, NULL, NULL,
     "rotate LOG_FILE at this size"},
    {"LOG_MAX_FILES", T_INT, F(log_max_files), "5", 1, 1000, NULL, NULL,
     "rotated log files kept"},
    {"HTTP_THREADS", T_INT, F(http_threads), NULL, 1, 1024, NULL, NULL,
     "HTTP threads (default: cores)"},
    {"WORKERS", T_INT, F(workers), NULL, 1, 1024, NULL, NULL,
     "execution workers (default: cores)"},
    {"LOCK_WAIT_MS", T_INT, F(lock_wait_ms), "2000", 0, 600000, NULL, NULL,
     "wait budget for a workflow's lock"},
    {"CACHE_MAX_BYTES", T_INT, F(cache_max_bytes), "67108864", 0, 1LL << 40, NULL, NULL,
     "in-process cache budget (0: cache nothing)"},
    {"METRICS_TOKEN", T_STR, F(metrics_token), NULL, NOLIM, NULL, check_nonempty,
     "bearer token required by /metrics"},
    {"LLM_BASE_URL", T_STR, F(llm_base_url), NULL, NOLIM, NULL, check_http_url,
     "OpenAI-compatible base URL including /v1"},
    {"LLM_API_KEY", T_STR, F(llm_api_key), NULL, NOLIM, NULL, check_nonempty, "LLM API key"},
    {"LLM_PRICING_FILE", T_STR, F(llm_pricing_file), NULL, NOLIM, NULL, check_nonempty,
     "model prices, JSON"},
    {"ADMIN_EMAIL", T_STR, F(admin_email), NULL, NOLIM, NULL, check_email,
     "admin created at start if absent"},
    {"ADMIN_PASSWORD", T_STR, F(admin_password), NULL, NOLIM, NULL, check_nonempty,
     "password of ADMIN_EMAIL"},
    {"HTTP_NODE_ALLOW_PRIVATE", T_BOOL, F(http_node_allow_private), "false", NOLIM, NULL, NULL,
     "let http nodes reach private addresses"},
    {"EXECUTION_RETENTION_DAYS", T_INT, F(execution_retention_days), "0", 0, 36500, NULL, NULL,
     "prune executions older than this (0: keep)"},
    {"EXECUTION_RETENTION_MAX", T_INT, F(execution_retention_max), "0", 0, 1LL << 40, NULL,
     NULL, "keep at most this many executions (0: no cap)"},
    {"EXECUTION_LEASE_MS", T_INT, F(execution_lease_ms), "30000", 1000, 3600000, NULL, NULL,
     "worker lease on a running execution"},
    {"HTTP_MAX_CONNECTIONS", T_INT, F(http_max_connections), "1024", 1, 100000, NULL, NULL,
     "open connections at most"},
    {"HTTP_MAX_CONNECTIONS_PER_IP", T_INT, F(http_max_connections_per_ip), "128", 1, 100000,
     NULL, NULL, "open connections from one client address at most"},
    {"HTTP_TIMEOUT_SECONDS", T_INT, F(http_timeout_seconds), "30", 1, 3600, NULL, NULL,
     "drop a connection idle this long (slow or half-sent requests)"},
    {"SHUTDOWN_TIMEOUT_MS", T_INT, F(shutdown_timeout_ms), "10000", 0, 600000, NULL, NULL,
     "wait for in-flight requests on SIGTERM"},
    {"DB_SLOW_MS", T_INT, F(db_slow_ms), "200", 0, 600000, NULL, NULL,
     "log database operations slower than this"},
    {"DATA_DIR", T_STR, F(data_dir), "./var", NOLIM, NULL, check_nonempty,
     "where development secrets are kept"},
    {"NODE_OUTPUT_MAX_BYTES", T_INT, F(node_output_max_bytes), "2097152", 1024, 1LL << 28, NULL,
     NULL, "one node's output (and rendered config) at most, as JSON, in memory"},
    {"EXECUTION_MEMORY_MAX_BYTES", T_INT, F(execution_memory_max_bytes), "67108864", 1024,
     1LL << 40, NULL, NULL, "what the engine holds for one execution at most"},
    {"EXECUTION_STORED_MAX_BYTES", T_INT, F(execution_stored_max_bytes), "16777216", 1024,
     1LL << 29, NULL, NULL, "stored outputs of one execution in all; then truncation markers"},
    {"QUOTA_ACTIVE_EXECUTIONS", T_INT, F(quota_active_executions), "1000", 1, 1000000, NULL,
     NULL, "queued + running executions one user may have; more answer 429 QUOTA_EXCEEDED"},
    {"WAIT_MAX_MS", T_INT, F(wait_max_ms), "60000", 0, 86400000, NULL, NULL,
     "longest synchronous wait (wait: true); past it the answer is 202"},
    {"WEBHOOK_SECRET_GRACE_S", T_INT, F(webhook_secret_grace_s), "3600", 0, 2592000, NULL, NULL,
     "seconds a webhook's secret still works after a rotation"},
    {"WORKER_MAX_EXECUTIONS", T_INT, F(worker_max_executions), "4096", 1, 4096, NULL, NULL,
     "executions one worker runs at once (the rest wait queued)"},
    {"WORKFLOW_MAX_DEPTH", T_INT, F(workflow_max_depth), "8", 0, 64, NULL, NULL,
     "deepest child execution that runs: a workflow node at that depth fails DEPTH_EXCEEDED"},
    {"LLM_DEFAULT_MAX_TOKENS", T_INT, F(llm_default_max_tokens), "4096", 1, 1000000, NULL, NULL,
     "max_tokens of an LLM call whose node sets none, when a budget applies to it"},
    {"CREDENTIALS_KEY", T_STR, F(credentials_key), NULL, NOLIM, NULL, check_nonempty,
     "(secret) base64 of 32 bytes sealing credentials; required in production and with "
     "PostgreSQL, else generated next to the SQLite file"},
    {"CREDENTIALS_OLD_KEYS", T_STR, F(credentials_old_keys), NULL, NOLIM, NULL, check_nonempty,
     "(secret) comma-separated earlier keys that still open what they sealed"},
    {"CREDENTIALS_MAX_PER_USER", T_INT, F(credentials_max_per_user), "500", 1, 1000000, NULL,
     NULL, "credentials one user may hold"},
    {"SSE_PING_MS", T_INT, F(sse_ping_ms), "15000", 100, 3600000, NULL, NULL,
     "an event stream sends a ': ping' comment this often"},
    {"SSE_MAX_STREAMS", T_INT, F(sse_max_streams), "20", 1, 100000, NULL, NULL,
     "open event streams of one user on one instance; more answer 429"},
    {"SSE_BUFFER_BYTES", T_INT, F(sse_buffer_bytes), "1048576", 4096, 1LL << 30, NULL, NULL,
     "events a stream may hold unsent; a reader that falls further behind is dropped"},
};
#undef F
#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

static const char *env_get(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (str_ieq(v, yes[i])) {
            *out = true;
            return 0;
        }
        if (str_ieq(v, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Parses one value into its field; -1 with a reason in why. */
static int parse_entry(config *c, const cfg_entry *e, const char *v, char *why, size_t n)
{
    void *field = (char *)c + e->offset;
    if (strlen(v) > VALUE_MAX) {
        snprintf(why, n, "is longer than %d bytes", VALUE_MAX);
        return -1;
    }
    switch (e->type) {
    case T_STR:
        if (e->check && e->check(v, why, n) < 0)
            return -1;
        free(*(char **)field);
        *(char **)field = xstrdup(v);
        return 0;
    case T_INT:
        if (str_to_ll(v, e->min, e->max, (long long *)field) < 0) {
            snprintf(why, n, "must be a whole number from %lld to %lld", e->min, e->max);
            return -1;
        }
        return 0;
    case T_INT_BOOL: {
        bool b;
        if (parse_bool(v, &b) == 0) {
            *(long long *)field = b;
            return 0;
        }
        if (str_to_ll(v, e->min, e->max, (long long *)field) < 0) {
            snprintf(why, n, "must be a whole number from %lld to %lld, or true (1) or false (0)",
                     e->min, e->max);
            return -1;
        }
        return 0;
    }
    case T_BOOL:
        if (parse_bool(v, (bool *)field) < 0) {
            snprintf(why, n, "must be true or false");
            return -1;
        }
        return 0;
    case T_ENUM:
        for (int i = 0; e->values[i]; i++) {
            if (strcmp(v, e->values[i]) == 0) {
                *(int *)field = i;
                return 0;
            }
        }
        {
            buf b;
            buf_init(&b, 512);
            for (int i = 0; e->values[i]; i++)
                buf_printf(&b, "%s%s", i ? ", " : "", e->values[i]);
            snprintf(why, n, "must be one of %s", b.data);
            buf_free(&b);
        }
        return -1;
    }
    return -1;
}

static long cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* Rules that involve more than one variable, or depend on APP_ENV. */
static int check_rules(const config *c, char *err, size_t errlen)
{
    if (c->app_env != APP_ENV_PRODUCTION)
        return 0;
    const char *names[2] = {"JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET"};
    const char *vals[2] = {c->jwt_access_secret, c->jwt_refresh_secret};
    for (int i = 0; i < 2; i++) {
        if (!vals[i]) {
            snprintf(err, errlen, "%s: required in production", names[i]);
            return -1;
        }
        if (strlen(vals[i]) < 32) {
            snprintf(err, errlen, "%s: must be at least 32 bytes in production", names[i]);
            return -1;
        }
    }
    if (strcmp(vals[0], vals[1]) == 0) {
        snprintf(err, errlen, "JWT_REFRESH_SECRET: must differ from JWT_ACCESS_SECRET");
        return -1;
    }
    if (c->bcrypt_cost < 10) {
        snprintf(err, errlen, "BCRYPT_COST: must be at least 10 in production");
        return -1;
    }
    return 0;
}

int config_load(config *c, config_getter get, void *ctx, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    if (!get)
        get = env_get;
    char why[256];
    for (size_t i = 0; i < TABLE_LEN; i++) {
        const cfg_entry *e = &table[i];
        const char *v = get(e->name, ctx);
        const char *use = v ? v : e->def;
        if (!use)
            continue;
        why[0] = '\0';
        if (parse_entry(c, e, use, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s: %s", e->name, why);
            config_free(c);
            return -1;
        }
    }
    if (!c->http_threads)
        c->http_threads = cores();
    if (!c->workers)
        c->workers = cores();
    if ((c->admin_email == NULL) != (c->admin_password == NULL)) {
        snprintf(err, errlen, "%s: must be set together with %s",
                 c->admin_email ? "ADMIN_PASSWORD" : "ADMIN_EMAIL",
                 c->admin_email ? "ADMIN_EMAIL" : "ADMIN_PASSWORD");
        config_free(c);
        return -1;
    }
    if (check_rules(c, err, errlen) < 0) {
        config_free(c);
        return -1;
    }
    return 0;
}

void config_free(config *c)
{
    for (size_t i = 0; i < TABLE_LEN; i++) {
        if (table[i].type == T_STR) {
            char **field = (char **)((char *)c + table[i].offset);
            if (*field) /* keys and secrets among them: wiped, not just freed */
                explicit_bzero(*field, strlen(*field));
            free(*field);
            *field = NULL;
        }
    }
}

/* Reads "access=<hex>\nrefresh=<hex>\n" from path into the unset secrets. 0 on success. */
static int read_secret_file(config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256], access[129] = "", refresh[129] = "";
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "access=", 7) == 0)
            str_copy(access, sizeof(access), line + 7);
        else if (strncmp(line, "refresh=", 8) == 0)
            str_copy(refresh, sizeof(refresh), line + 8);
    }
    fclose(f);
    if (strlen(access) < 32 || strlen(refresh) < 32)
        return -1;
    if (!c->jwt_access_secret)
        c->jwt_access_secret = xstrdup(access);
    if (!c->jwt_refresh_secret)
        c->jwt_refresh_secret = xstrdup(refresh);
    return 0;
}

static int write_secret_file(const char *path, const char *access, const char *refresh)
{
    buf tb;
    buf_init(&tb, 0);
    buf_printf(&tb, "%s.tmp", path);
    const char *tmp = tb.data;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        buf_free(&tb);
        return -1;
    }
    char body[300];
    int n = snprintf(body, sizeof(body), "access=%s\nrefresh=%s\n", access, refresh);
    int ok = write(fd, body, (size_t)n) == n && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    int rc = 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        rc = -1;
    }
    buf_free(&tb);
    return rc;
}

int config_ensure_secrets(config *c, char *err, size_t errlen)
{
    if (c->jwt_access_secret && c->jwt_refresh_secret)
        return 0;
    if (c->app_env == APP_ENV_PRODUCTION) {
        snprintf(err, errlen, "JWT_ACCESS_SECRET: required in production");
        return -1;
    }
    char access[65], refresh[65];
    ids_random_hex(access, 32);
    ids_random_hex(refresh, 32);
    if (c->app_env == APP_ENV_TEST) {
        if (!c->jwt_access_secret)
            c->jwt_access_secret = xstrdup(access);
        if (!c->jwt_refresh_secret)
            c->jwt_refresh_secret = xstrdup(refresh);
        return 0;
    }
    buf pb;
    buf_init(&pb, 0);
    buf_printf(&pb, "%s/jwt-secrets", c->data_dir);
    const char *path = pb.data;
    int rc = -1;
    if (read_secret_file(c, path) == 0) {
        rc = 0;
        goto out;
    }
    if (mkdir(c->data_dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "DATA_DIR: cannot create %s: %s", c->data_dir, strerror(errno));
        goto out;
    }
    if (write_secret_file(path, access, refresh) < 0) {
        snprintf(err, errlen, "DATA_DIR: cannot write the development secrets file: %s",
                 strerror(errno));
        goto out;
    }
    if (!c->jwt_access_secret)
        c->jwt_access_secret = xstrdup(access);
    if (!c->jwt_refresh_secret)
        c->jwt_refresh_secret = xstrdup(refresh);
    log_info("generated development JWT secrets", LF_S("file", path));
    rc = 0;
out:
    buf_free(&pb);
    return rc;
}

void config_print_help(void *file)
{
    FILE *f = file;
    for (size_t i = 0; i < TABLE_LEN; i++)
        fprintf(f, "  %-28s %-24s %s\n", table[i].name, table[i].def ? table[i].def : "(unset)",
                table[i].help);
}

void config_roff(void *file, const char *s)
{
    FILE *f = file;
    if (*s == '.' || *s == '\'')
        fputs("\\&", f);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
}

void config_print_man(void *file)
{
    FILE *f = file;
    for (size_t i = 0; i < TABLE_LEN; i++) {
        fputs(".TP\n.B ", f);
        config_roff(f, table[i].name);
        fputs("\n", f);
        config_roff(f, table[i].help);
        fputs(table[i].def ? " (default: " : " (default: unset)", f);
        if (table[i].def) {
            config_roff(f, table[i].def);
            fputs(")", f);
        }
        fputs("\n", f);
    }
}

const char *config_env_name(int env)
{
    return env >= 0 && env < 3 ? env_values[env] : "development";
}
