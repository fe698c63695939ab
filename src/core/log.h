/*
 * log.h - structured JSON-lines logging.
 *
 * Every event is one line: {"ts":"…","level":"info","msg":"…", fields…}.
 * Output goes to stderr, or to LOG_FILE with size-based rotation
 * (file -> file.1 -> … -> file.N) and reopen on demand (SIGHUP).
 * Thread-safe. Fields whose key names a secret (password, secret, token,
 * authorization, api key, cookie) are written as "[REDACTED]" whatever the
 * caller passes, as a last line of defence.
 *
 *   log_info("listening", LF_S("host", host), LF_I("port", port));
 */
#ifndef AOP_CORE_LOG_H
#define AOP_CORE_LOG_H

#include <stddef.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

typedef enum { LF_END = 0, LF_STR, LF_INT, LF_DBL, LF_BOOL, LF_RAW } log_field_type;

typedef struct {
    const char *key;
    log_field_type type;
    const char *s;   /* LF_STR (NULL writes null), LF_RAW (pre-encoded JSON) */
    long long i;     /* LF_INT, LF_BOOL */
    double d;        /* LF_DBL */
} log_field;

#define LF_S(k, v) ((log_field){.key = (k), .type = LF_STR, .s = (v)})
#define LF_I(k, v) ((log_field){.key = (k), .type = LF_INT, .i = (long long)(v)})
#define LF_D(k, v) ((log_field){.key = (k), .type = LF_DBL, .d = (double)(v)})
#define LF_B(k, v) ((log_field){.key = (k), .type = LF_BOOL, .i = !!(v)})
#define LF_RAW(k, v) ((log_field){.key = (k), .type = LF_RAW, .s = (v)})

/* fields is terminated by an entry with type LF_END; the macros below add it. */
void log_emit(log_level lvl, const char *msg, const log_field *fields);

#define log_at(lvl, msg, ...) \
    log_emit((lvl), (msg), (const log_field[]){{.type = LF_END}, ##__VA_ARGS__, {.type = LF_END}} + 1)
#define log_debug(msg, ...) log_at(LOG_DEBUG, msg, ##__VA_ARGS__)
#define log_info(msg, ...) log_at(LOG_INFO, msg, ##__VA_ARGS__)
#define log_warn(msg, ...) log_at(LOG_WARN, msg, ##__VA_ARGS__)
#define log_error(msg, ...) log_at(LOG_ERROR, msg, ##__VA_ARGS__)

/* The request the calling thread is serving (NULL: none). While set, every
 * event the thread logs carries it as "requestId". id is borrowed: clear it
 * before the string goes away. */
void log_set_request_id(const char *id);

/* Parses "debug", "info", "warn", "error"; -1 when unknown. */
int log_level_parse(const char *s);
/* 1 when events at lvl are written. */
int log_enabled(log_level lvl);

/* Sets the level and destination. path NULL logs to stderr. max_bytes 0 turns
 * rotation off; max_files is how many rotated files are kept (>= 1).
 * Returns 0, or -1 with errno when the file cannot be opened. */
int log_setup(log_level lvl, const char *path, size_t max_bytes, int max_files);
/* Reopens LOG_FILE (after an outside rotation). Safe from the signal thread. */
void log_reopen(void);
/* Flushes and closes the file; later events go to stderr. */
void log_close(void);

#endif
