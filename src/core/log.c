#include "core/log.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/mem.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_LINE_MAX (64 * 1024)

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static struct {
    pthread_mutex_t mu;
    log_level level;
    char *path;
    int fd;          /* -1: stderr */
    size_t size;     /* bytes in the current file */
    size_t max_bytes;
    int max_files;
} L = {PTHREAD_MUTEX_INITIALIZER, LOG_INFO, NULL, -1, 0, 0, 5};

static _Thread_local const char *thread_request_id;

void log_set_request_id(const char *id)
{
    thread_request_id = id;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int log_enabled(log_level lvl)
{
    return lvl >= __atomic_load_n(&L.level, __ATOMIC_RELAXED);
}

/* Case-insensitive: does key name something that must never be logged? */
static int key_is_secret(const char *key)
{
    static const char *const words[] = {"password", "secret", "token", "authorization",
                                        "apikey", "api_key", "cookie"};
    char low[64];
    size_t n = 0;
    for (; key[n] && n < sizeof(low) - 1; n++)
        low[n] = (char)tolower((unsigned char)key[n]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(low, words[i]))
            return 1;
    return 0;
}

static void put_field(buf *b, const log_field *f)
{
    buf_puts(b, ",\"");
    buf_json_escape(b, f->key, strlen(f->key));
    buf_puts(b, "\":");
    if (key_is_secret(f->key) && f->type != LF_BOOL) {
        buf_puts(b, "\"[REDACTED]\"");
        return;
    }
    switch (f->type) {
    case LF_STR:
        if (!f->s) {
            buf_puts(b, "null");
            break;
        }
        buf_puts(b, "\"");
        buf_json_escape(b, f->s, strlen(f->s));
        buf_puts(b, "\"");
        break;
    case LF_INT:
        buf_printf(b, "%lld", f->i);
        break;
    case LF_DBL:
        if (isfinite(f->d))
            buf_printf(b, "%.3f", f->d);
        else
            buf_puts(b, "null");
        break;
    case LF_BOOL:
        buf_puts(b, f->i ? "true" : "false");
        break;
    case LF_RAW:
        buf_puts(b, f->s ? f->s : "null");
        break;
    case LF_END:
        break;
    }
}

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Shifts path.(N-1) -> path.N … path -> path.1 and opens a fresh path. Lock held. */
static void rotate_locked(void)
{
    size_t plen = strlen(L.path) + 16;
    char *from = xmalloc(plen), *to = xmalloc(plen);
    for (int i = L.max_files - 1; i >= 1; i--) {
        snprintf(from, plen, "%s.%d", L.path, i);
        snprintf(to, plen, "%s.%d", L.path, i + 1);
        rename(from, to);
    }
    snprintf(to, plen, "%s.1", L.path);
    rename(L.path, to);
    free(from);
    free(to);
    int fd = open_file(L.path);
    if (fd >= 0) {
        close(L.fd);
        L.fd = fd;
        L.size = 0;
    }
}

void log_emit(log_level lvl, const char *msg, const log_field *fields)
{
    if (!log_enabled(lvl))
        return;
    char ts[25];
    clock_format_rfc3339(clock_now_ms(), ts);
    buf b;
    buf_init(&b, LOG_LINE_MAX);
    buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[lvl]);
    buf_json_escape(&b, msg, strlen(msg));
    buf_puts(&b, "\"");
    int has_id = 0;
    for (const log_field *f = fields; f && f->type != LF_END; f++) {
        put_field(&b, f);
        has_id |= strcmp(f->key, "requestId") == 0;
    }
    if (thread_request_id && !has_id)
        put_field(&b, &LF_S("requestId", thread_request_id));
    if (buf_puts(&b, "}\n") < 0) {
        buf_reset(&b);
        buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"log line too long\"}\n",
                   ts, level_names[lvl]);
    }

    pthread_mutex_lock(&L.mu);
    if (L.fd >= 0) {
        write_all(L.fd, b.data, b.len);
        L.size += b.len;
        if (L.max_bytes && L.size >= L.max_bytes)
            rotate_locked();
    } else {
        write_all(STDERR_FILENO, b.data, b.len);
    }
    pthread_mutex_unlock(&L.mu);
    buf_free(&b);
}

int log_setup(log_level lvl, const char *path, size_t max_bytes, int max_files)
{
    int fd = -1;
    size_t size = 0;
    if (path) {
        fd = open_file(path);
        if (fd < 0)
            return -1;
        struct stat st;
        if (fstat(fd, &st) == 0)
            size = (size_t)st.st_size;
    }
    pthread_mutex_lock(&L.mu);
    __atomic_store_n(&L.level, lvl, __ATOMIC_RELAXED);
    if (L.fd >= 0)
        close(L.fd);
    free(L.path);
    L.path = path ? xstrdup(path) : NULL;
    L.fd = fd;
    L.size = size;
    L.max_bytes = max_bytes;
    L.max_files = max_files < 1 ? 1 : max_files;
    pthread_mutex_unlock(&L.mu);
    return 0;
}

void log_reopen(void)
{
    pthread_mutex_lock(&L.mu);
    if (L.path) {
        int fd = open_file(L.path);
        if (fd >= 0) {
            struct stat st;
            close(L.fd);
            L.fd = fd;
            L.size = fstat(fd, &st) == 0 ? (size_t)st.st_size : 0;
        }
    }
    pthread_mutex_unlock(&L.mu);
}

void log_close(void)
{
    pthread_mutex_lock(&L.mu);
    if (L.fd >= 0)
        close(L.fd);
    L.fd = -1;
    free(L.path);
    L.path = NULL;
    pthread_mutex_unlock(&L.mu);
}
