/*
 * main.c - the `aop` command: serve, migrate, version, user create,
 * credentials rotate, help.
 *
 * Exit codes: 0 success, 1 the operation failed (database, conflict),
 * 2 bad usage or configuration.
 */
#include "app.h"
#include "auth/audit.h"
#include "auth/password.h"
#include "auth/session.h"
#include "auth/users.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/str.h"
#include "credentials/credentials.h"
#include "engine/engine.h"
#include "engine/pricing.h"
#include "executions/executions.h"
#include "executions/live.h"
#include "http/server.h"
#include "infra/cache.h"
#include "infra/limiter.h"
#include "infra/lock.h"
#include "infra/metrics.h"
#include "infra/redis.h"
#include "infra/workpool.h"
#include "schedules/scheduler.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define LIMITER_KEYS 100000     /* rate-limit windows kept at once */
#define PRUNE_EVERY_S 3600      /* expired tokens and revocations are deleted this often */
#define REDIS_TIMEOUT_MS 1000   /* connect and command timeout */
#define REDIS_PREFIX "aop:"     /* every key this program writes in Redis */

/* The commands, for --help and the man page (`aop help --man`). */
static const struct command {
    const char *synopsis;
    const char *help;
} commands[] = {
    {"serve", "serve the HTTP API (applies migrations first)"},
    {"migrate", "apply pending database migrations and exit"},
    {"version", "print the version"},
    {"user create --email E --name N --role admin|user|viewer",
     "create a user; the password is read from stdin"},
    {"credentials rotate", "re-encrypt every credential under CREDENTIALS_KEY"},
    {"help, --help", "this text (help --man: the manual page, in man(7) source)"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fputs("usage: aop <command> [options]\n\ncommands:\n", f);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strlen(commands[i].synopsis) < 30)
            fprintf(f, "  %-29s %s\n", commands[i].synopsis, commands[i].help);
        else
            fprintf(f, "  %s\n  %-29s %s\n", commands[i].synopsis, "", commands[i].help);
    }
    fputs("\nconfiguration (environment):\n", f);
    config_print_help(f);
}

/* aop.1, from the same tables as usage(): the commands and the variables. */
static void man_page(FILE *f)
{
    fprintf(f, ".TH AOP 1 \"\" \"aop %s\" \"User Commands\"\n", AOP_VERSION);
    fputs(".SH NAME\naop \\- orchestrate AI workflows: REST API, workflow engine, history\n"
          ".SH SYNOPSIS\n.B aop\n.I command\n[\\fIoptions\\fR]\n"
          ".SH DESCRIPTION\n"
          "One binary that serves the AOP HTTP API, runs workflows of LLM calls, HTTP calls\n"
          "and transforms, and keeps a queryable history of every run. It starts on an\n"
          "SQLite file with no set-up, and runs as several instances on PostgreSQL and Redis.\n"
          "Configuration comes from the environment only; a bad value stops the start with a\n"
          "message naming the variable.\n"
          ".SH COMMANDS\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        fputs(".TP\n.B ", f);
        config_roff(f, commands[i].synopsis);
        fputs("\n", f);
        config_roff(f, commands[i].help);
        fputs("\n", f);
    }
    fputs(".SH ENVIRONMENT\n", f);
    config_print_man(f);
    fputs(".SH EXIT STATUS\n0 success; 1 the operation failed (database, conflict); 2 bad usage\n"
          "or a refused configuration.\n"
          ".SH SIGNALS\n"
          ".B SIGTERM\nand\n.B SIGINT\nhand running executions back to the queue, finish the\n"
          "requests in flight and exit 0;\n.B SIGHUP\nreopens\n.BR LOG_FILE .\n"
          ".SH SEE ALSO\n"
          "GET /openapi.json on a running server describes the HTTP API; GET / serves its\n"
          "web console. The documentation (install.md, configuration.md, operations.md,\n"
          "api.md, console.md) is installed in share/doc/aop beside this page.\n",
          f);
}

/* Loads configuration and sets logging up; prints the refusal and returns -1. */
static int setup(config *cfg)
{
    char err[512];
    if (config_load(cfg, NULL, NULL, err, sizeof(err)) < 0) {
        fprintf(stderr, "aop: configuration refused: %s\n", err);
        return -1;
    }
    size_t max_bytes = (size_t)cfg->log_max_size_mb * 1024 * 1024;
    if (log_setup((log_level)cfg->log_level, cfg->log_file, max_bytes, (int)cfg->log_max_files) < 0) {
        fprintf(stderr, "aop: configuration refused: LOG_FILE: cannot open %s: %s\n",
                cfg->log_file, strerror(errno));
        config_free(cfg);
        return -1;
    }
    return 0;
}

/* Opens the store and applies migrations. NULL (logged) on failure. */
static store *open_store(const config *cfg)
{
    char err[512];
    store *s = store_open(cfg->database_url, cfg->db_slow_ms, err, sizeof(err));
    if (!s) {
        log_error("cannot open the database", LF_S("error", err));
        fprintf(stderr, "aop: %s\n", err);
        return NULL;
    }
    int applied = 0;
    if (store_migrate(s, &applied) != AOP_OK) {
        fprintf(stderr, "aop: database migration failed (see the log)\n");
        store_close(s);
        return NULL;
    }
    log_info("migrations applied", LF_I("applied", applied), LF_S("store", s->v->name));
    return s;
}

static void finish(config *cfg, store *s)
{
    store_close(s);
    log_close();
    config_free(cfg);
}

static int cmd_migrate(void)
{
    config cfg;
    if (setup(&cfg) < 0)
        return EXIT_USAGE;
    store *s = open_store(&cfg);
    finish(&cfg, s);
    return s ? 0 : 1;
}

/* Warms the dummy bcrypt hash up, so the first login for an unknown email
 * takes no longer than any other. */
static void warm_dummy_hash(void *arg)
{
    const config *cfg = arg;
    auth_password_verify_dummy("", (int)cfg->bcrypt_cost);
}

/* The cache, limiter and locks: in-process, or shared through REDIS_URL
 * (with in-process limits and locks to fall back on while Redis is away).
 * -1 with a message when REDIS_URL cannot be used. */
static int shared_ports_open(app_ctx *app, char *err, size_t errlen)
{
    const config *cfg = app->cfg;
    if (!cfg->redis_url) {
        app->cache = cache_mem_new((size_t)cfg->cache_max_bytes);
        app->limiter = limiter_mem_new(LIMITER_KEYS);
        app->locks = lock_mem_new();
        return 0;
    }
    /* Every HTTP thread, engine loop and the maintenance threads may hold
     * one connection at once. */
    int conns = (int)(cfg->http_threads + cfg->workers) + 4;
    app->redis = redis_pool_open(cfg->redis_url, conns, REDIS_TIMEOUT_MS, err, errlen);
    if (!app->redis)
        return -1;
    app->cache = cache_redis_new(app->redis, REDIS_PREFIX);
    app->limiter = limiter_redis_new(app->redis, REDIS_PREFIX, limiter_mem_new(LIMITER_KEYS));
    app->locks = lock_redis_new(app->redis, REDIS_PREFIX, lock_mem_new());
    if (redis_pool_ping(app->redis) != AOP_OK)
        log_warn("Redis does not answer; serving from the database until it does");
    return 0;
}

/* The cache, limiter and locks, and the slow-work pool: half the cores
 * (at least one thread), 32 queued jobs per thread. -1 (message in err) when
 * they cannot start. */
static int ports_open(app_ctx *app, char *err, size_t errlen)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cores > 1 ? (int)(cores / 2) : 1;
    if (shared_ports_open(app, err, errlen) < 0)
        return -1;
    app->slow = workpool_new(threads, 32 * threads);
    if (!app->slow) {
        snprintf(err, errlen, "cannot start the slow-work pool");
        return -1;
    }
    if (workpool_reserve(app->slow))
        workpool_submit(app->slow, warm_dummy_hash, (void *)app->cfg);
    return 0;
}

/* Stops the pool after the HTTP server (no request can queue work any more),
 * then the ports. NULL-safe members. */
static void ports_close(app_ctx *app)
{
    workpool_free(app->slow);
    lock_close(app->locks);
    limiter_close(app->limiter);
    cache_close(app->cache);
    redis_pool_close(app->redis);
    app->redis = NULL;
    app->slow = NULL;
    app->locks = NULL;
    app->limiter = NULL;
    app->cache = NULL;
}

/* Every open call of an http or llm node is a descriptor: take the hard
 * limit, not the usual soft 1024. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warn("cannot raise the open-files limit");
    }
}

/* Creates ADMIN_EMAIL with ADMIN_PASSWORD when no such user exists.
 * Returns 0, 1 when the database fails, EXIT_USAGE when the pair is refused. */
static int ensure_admin(const config *cfg, store *s)
{
    if (!cfg->admin_email)
        return 0;
    arena a = {0};
    store_user u;
    int rc = 1;
    char *email = str_lower_utf8(cfg->admin_email, &a);
    aop_err e = store_user_get_by_email(s, email, &u, &a);
    if (e == AOP_OK) {
        rc = 0;
        goto out;
    }
    if (e != AOP_ERR_NOT_FOUND)
        goto out;
    users_new n = {cfg->admin_email, "Admin", "admin", cfg->admin_password};
    json_t *details = json_array();
    e = users_create(s, &n, (int)cfg->bcrypt_cost, details, &u, &a);
    if (e == AOP_OK || e == AOP_ERR_CONFLICT) {
        if (e == AOP_OK)
            log_info("admin user created", LF_S("userId", u.id), LF_S("email", u.email));
        rc = 0;
    } else if (e == AOP_ERR_VALIDATION) {
        char *d = json_dumps(details, JSON_COMPACT);
        fprintf(stderr, "aop: configuration refused: ADMIN_EMAIL/ADMIN_PASSWORD: %s\n", d ? d : "");
        free(d);
        rc = EXIT_USAGE;
    }
    json_decref(details);
out:
    arena_free(&a);
    return rc;
}

/* Waits for SIGTERM or SIGINT (returned); reopens the log on SIGHUP, and
 * every PRUNE_EVERY_S seconds deletes expired tokens and revocations. */
static int wait_for_stop(const app_ctx *app)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    int64_t next_prune = clock_mono_ns() + (int64_t)PRUNE_EVERY_S * 1000000000;
    for (;;) {
        int64_t left = next_prune - clock_mono_ns();
        struct timespec ts = {left > 0 ? left / 1000000000 : 0, left > 0 ? left % 1000000000 : 0};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig < 0) {
            if (errno == EAGAIN) {
                auth_prune(app);
                next_prune = clock_mono_ns() + (int64_t)PRUNE_EVERY_S * 1000000000;
            }
            continue;
        }
        if (sig == SIGHUP) {
            log_reopen();
            log_info("log file reopened");
            continue;
        }
        return sig;
    }
}

/* Once the vault holds the keys, no other copy of them stays in memory:
 * the configuration's strings and the environment's are wiped. */
static void forget_key_text(config *cfg)
{
    char **keys[] = {&cfg->credentials_key, &cfg->credentials_old_keys};
    const char *names[] = {"CREDENTIALS_KEY", "CREDENTIALS_OLD_KEYS"};
    for (int i = 0; i < 2; i++) {
        if (*keys[i]) {
            explicit_bzero(*keys[i], strlen(*keys[i]));
            free(*keys[i]);
            *keys[i] = NULL;
        }
        char *env = getenv(names[i]);
        if (env)
            explicit_bzero(env, strlen(env));
    }
}

/* Serves until SIGTERM or SIGINT. Every exit goes through out:, which
 * stops and frees whatever was started, in the order shutdown needs. */
static int cmd_serve(void)
{
    int rc = EXIT_USAGE;
    char err[512];
    config cfg = {0};
    store *s = NULL;
    pricing *prices = NULL;
    http_server *srv = NULL;
    app_ctx app = {.cfg = &cfg};
    if (setup(&cfg) < 0)
        goto out;
    if (config_ensure_secrets(&cfg, err, sizeof(err)) < 0 ||
        !(prices = engine_load_prices(&cfg, err, sizeof(err)))) {
        fprintf(stderr, "aop: configuration refused: %s\n", err);
        goto out;
    }
    rc = 1;
    if (!(s = open_store(&cfg)))
        goto out;
    if (store_claim(s, err, sizeof(err)) != AOP_OK) {
        log_error("cannot serve this database", LF_S("error", err));
        fprintf(stderr, "aop: %s\n", err);
        goto out;
    }
    int admin_rc = ensure_admin(&cfg, s);
    if (admin_rc != 0) {
        rc = admin_rc;
        goto out;
    }
    bool key_refused = false;
    if (!(app.vault = credentials_vault_open(&cfg, s, &key_refused, err, sizeof(err)))) {
        log_error("cannot open the credentials vault", LF_S("error", err));
        fprintf(stderr, "aop: %s%s\n", key_refused ? "configuration refused: " : "", err);
        rc = key_refused ? EXIT_USAGE : 1;
        goto out;
    }
    forget_key_text(&cfg);
    app.store = s;
    app.start_ms = clock_now_ms();
    app.start_mono_ns = clock_mono_ns();
    if (ports_open(&app, err, sizeof(err)) < 0) {
        log_error("cannot start", LF_S("error", err));
        fprintf(stderr, "aop: %s\n", err);
        goto out;
    }
    auth_prune(&app);
    metrics_init(AOP_VERSION, AOP_COMMIT);
    raise_fd_limit();
    /* A store that is not shared was claimed above: this process holds it
     * alone, and every running execution in it is an orphan. */
    if (!(app.live = live_new(&app))) {
        log_error("cannot start the event streams");
        fprintf(stderr, "aop: cannot start the event streams\n");
        goto out;
    }
    engine_opts eo = {.cfg = &cfg, .store = s, .prices = prices,
                      .hooks = executions_hooks(&app), .exclusive = !store_shared(s),
                      .vault = app.vault};
    prices = NULL; /* the engine's now, started or not */
    if (!(app.engine = engine_start(&eo, err, sizeof(err)))) {
        log_error("cannot start the engine", LF_S("error", err));
        fprintf(stderr, "aop: %s\n", err);
        goto out;
    }
    if (!(app.scheduler = scheduler_start(&app))) {
        log_error("cannot start the scheduler");
        fprintf(stderr, "aop: cannot start the scheduler\n");
        goto out;
    }
    if (!(srv = http_server_start(&app, err, sizeof(err)))) {
        log_error("cannot start the HTTP server", LF_S("error", err));
        fprintf(stderr, "aop: %s\n", err);
        goto out;
    }
    char url[300];
    snprintf(url, sizeof(url), strchr(cfg.host, ':') ? "http://[%s]:%d" : "http://%s:%d",
             cfg.host, http_server_port(srv));
    log_info("listening", LF_S("url", url), LF_S("host", cfg.host), LF_I("port", http_server_port(srv)),
             LF_S("env", config_env_name(cfg.app_env)), LF_S("version", AOP_VERSION),
             LF_I("threads", cfg.http_threads));
    int sig = wait_for_stop(&app);
    log_info("shutting down", LF_S("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
    rc = 0;
out:
    /* The engine first: it hands its executions back and ends the waits of
     * parked requests, which the HTTP server's drain waits for. */
    scheduler_stop(app.scheduler); /* no due time starts after this */
    app.scheduler = NULL;
    engine_stop(app.engine);
    live_shutdown(app.live); /* every stream ends, so the drain does not wait for them */
    http_server_stop(srv, cfg.shutdown_timeout_ms);
    live_free(app.live);
    engine_free(app.engine);
    ports_close(&app);
    pricing_free(prices);
    vault_free(app.vault);
    if (rc == 0)
        log_info("stopped");
    finish(&cfg, s);
    return rc;
}

/* Reads the first line of stdin (at most 1 KiB) as the password. On a
 * terminal it turns echo off, then prompts on stderr: what is typed once
 * the prompt shows is neither echoed nor discarded by the switch. */
static char *read_password(void)
{
    char line[1026];
    struct termios saved, quiet;
    int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        fputs("Password: ", stderr);
    }
    char *got = fgets(line, sizeof(line), stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (!got)
        return NULL;
    line[strcspn(line, "\r\n")] = '\0';
    char *pw = xstrdup(line);
    explicit_bzero(line, sizeof(line));
    return pw;
}

static int cmd_user_create(int argc, char **argv)
{
    const char *email = NULL, *name = NULL, *role = NULL;
    for (int i = 0; i < argc; i++) {
        const char **slot = !strcmp(argv[i], "--email") ? &email
                          : !strcmp(argv[i], "--name")  ? &name
                          : !strcmp(argv[i], "--role")  ? &role : NULL;
        if (!slot || i + 1 >= argc) {
            fprintf(stderr, "aop: user create: unexpected argument %s\n", argv[i]);
            return EXIT_USAGE;
        }
        *slot = argv[++i];
    }
    char *password = read_password();
    users_new n = {email, name, role, password};
    json_t *details = json_array();
    int rc = EXIT_USAGE;
    config cfg = {0};
    store *s = NULL;
    arena a = {0};
    if (users_validate(&n, details) > 0) {
        for (size_t i = 0; i < json_array_size(details); i++) {
            json_t *d = json_array_get(details, i);
            fprintf(stderr, "aop: user create: %s %s\n",
                    json_string_value(json_object_get(d, "field")),
                    json_string_value(json_object_get(d, "message")));
        }
        goto out;
    }
    if (setup(&cfg) < 0)
        goto out;
    rc = 1;
    s = open_store(&cfg);
    if (!s)
        goto out;
    store_user u;
    aop_err e = users_create(s, &n, (int)cfg.bcrypt_cost, details, &u, &a);
    if (e == AOP_ERR_CONFLICT) {
        fprintf(stderr, "aop: user create: a user with that email already exists\n");
    } else if (e != AOP_OK) {
        fprintf(stderr, "aop: user create: failed (%s)\n", err_code(e));
    } else {
        json_t *j = users_to_json(&u);
        char *text = json_dumps(j, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(j);
        log_info("user created", LF_S("userId", u.id), LF_S("role", u.role));
        rc = 0;
    }
out:
    finish(&cfg, s); /* also before setup: every part of it accepts nothing set */
    arena_free(&a);
    json_decref(details);
    if (password) {
        explicit_bzero(password, strlen(password));
        free(password);
    }
    return rc;
}

/* Re-seals every credential under CREDENTIALS_KEY (credentials.h), with
 * an audit event. 0 when everything is under it now; 1 when the database
 * failed or some credential opens with no configured key (they are named
 * in the log; run it again once the key that sealed them is listed). */
static int cmd_credentials_rotate(void)
{
    config cfg = {0};
    char err[512];
    if (setup(&cfg) < 0)
        return EXIT_USAGE;
    int rc = 1;
    bool refused = false;
    vault *v = NULL;
    store *s = open_store(&cfg);
    if (s && !(v = credentials_vault_open(&cfg, s, &refused, err, sizeof(err)))) {
        fprintf(stderr, "aop: %s%s\n", refused ? "configuration refused: " : "", err);
        rc = refused ? EXIT_USAGE : 1;
    }
    forget_key_text(&cfg);
    credentials_rotation r = {0};
    aop_err e = v ? credentials_rotate(s, v, &r) : AOP_ERR_INTERNAL;
    if (v) {
        char detail[160];
        snprintf(detail, sizeof(detail), "{\"rotated\":%lld,\"failed\":%lld,\"keyId\":\"%s\"}",
                 r.rotated, r.failed, vault_kid(v));
        app_ctx app = {.cfg = &cfg, .store = s};
        store_audit ev = {.action = "credentials.rotate", .detail = detail};
        audit_record(&app, &ev);
        printf("%s\n", detail);
        if (e != AOP_OK)
            fprintf(stderr, "aop: credentials rotate: stopped (%s); run it again\n", err_code(e));
        else if (r.failed)
            fprintf(stderr, "aop: credentials rotate: %lld credentials open with no configured "
                            "key (see the log)\n", r.failed);
        rc = e == AOP_OK && r.failed == 0 ? 0 : 1;
    }
    vault_free(v);
    finish(&cfg, s);
    return rc;
}

int main(int argc, char **argv)
{
    /* Signals are taken by sigwait() in the main thread only: block them before
     * any other thread starts so every thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* The database holds password hashes and the data dir holds secrets: what
     * aop creates is for its own user only. */
    umask(0077);

    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "serve") && argc == 2)
        return cmd_serve();
    if (!strcmp(cmd, "migrate") && argc == 2)
        return cmd_migrate();
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("aop %s (%s)\n", AOP_VERSION, AOP_COMMIT);
        return 0;
    }
    if (!strcmp(cmd, "help") && argc == 3 && !strcmp(argv[2], "--man")) {
        man_page(stdout);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "user") && argc > 2 && !strcmp(argv[2], "create"))
        return cmd_user_create(argc - 3, argv + 3);
    if (!strcmp(cmd, "credentials") && argc == 3 && !strcmp(argv[2], "rotate"))
        return cmd_credentials_rotate();
    usage(stderr);
    return EXIT_USAGE;
}
