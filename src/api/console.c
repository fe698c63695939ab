/*
 * The web console: GET /, GET /console and GET /console/... (docs/console.md).
 *
 * Its files (console/ in the source tree) are built into the binary
 * (scripts/embed.sh --files); nothing is read from disk. Two kinds of
 * address:
 *   /console/assets/<version>/<file>  a built-in file, or 404 when there is
 *                                     no such file (nothing else is served);
 *   /, /console, any other /console/... the app's index.html, so that an
 *                                     address the app shows loads directly.
 * <version> is a digest of all the files: index.html names its assets under
 * the current one, so they can be cached for good and an upgrade never mixes
 * old files with new ones. Every answer has an ETag and the console's
 * Content-Security-Policy ('self' only, no inline code).
 */
#include "api/api.h"
#include "core/buf.h"
#include "core/embedded.h"
#include "core/hash.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

extern const embedded_file aop_console_files[];
extern const size_t aop_console_files_count;

/* Longer console addresses are not the app's: 404. */
#define CONSOLE_PATH_MAX 512
#define ASSETS "/console/assets/"

static const char CONSOLE_CSP[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'";

static const struct {
    const char *ext;
    const char *type;
} TYPES[] = {
    {".html", "text/html; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
};

/* What startup of the console computes once: the version and index.html
 * with its asset addresses under it. */
static struct {
    pthread_once_t once;
    char version[17];
    char *index;
    size_t index_len;
    char index_etag[40];
} shell = {.once = PTHREAD_ONCE_INIT};

static const embedded_file *find_file(const char *name)
{
    for (size_t i = 0; i < aop_console_files_count; i++)
        if (strcmp(aop_console_files[i].name, name) == 0)
            return &aop_console_files[i];
    return NULL;
}

static const char *type_of(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++) {
        size_t e = strlen(TYPES[i].ext);
        if (n > e && strcmp(name + n - e, TYPES[i].ext) == 0)
            return TYPES[i].type;
    }
    return "application/octet-stream";
}

/* The version (a digest of every file's ETag) and index.html with each
 * "/console/assets/" made "/console/assets/<version>/". The rewritten index
 * lives as long as the process. */
static void shell_init(void)
{
    uint64_t h = 0;
    for (size_t i = 0; i < aop_console_files_count; i++) {
        const embedded_file *f = &aop_console_files[i];
        h = hash_seeded(hash_seeded(h, f->name, strlen(f->name) + 1), f->etag, strlen(f->etag));
    }
    snprintf(shell.version, sizeof(shell.version), "%016llx", (unsigned long long)h);
    const embedded_file *idx = find_file("index.html");
    buf b;
    buf_init(&b, 4 * (idx ? idx->len : 0) + 64);
    const char *p = idx ? (const char *)idx->data : "";
    const char *hit;
    while ((hit = strstr(p, ASSETS)) != NULL) {
        buf_append(&b, p, (size_t)(hit - p) + strlen(ASSETS));
        buf_printf(&b, "%s/", shell.version);
        p = hit + strlen(ASSETS);
    }
    buf_puts(&b, p);
    shell.index = buf_take(&b, &shell.index_len);
    snprintf(shell.index_etag, sizeof(shell.index_etag), "\"%s-%zu\"", shell.version,
             shell.index_len);
}

/* 304 when the client's If-None-Match names etag, else 200 with the bytes. */
static void reply_file(http_req *req, const char *type, const char *data, size_t len,
                       const char *etag, const char *cache_control)
{
    http_set_policy(req, CONSOLE_CSP, cache_control);
    http_set_header(req, "ETag", etag);
    const char *inm = http_header(req, "If-None-Match");
    if (inm && (strstr(inm, etag) || strcmp(inm, "*") == 0))
        http_reply_empty(req, 304);
    else
        http_reply_bytes(req, 200, type, data, len);
}

/* /console/assets/<version>/<file>: cached for good under the current
 * version; under another (a page loaded before an upgrade) revalidated. */
static void reply_asset(http_req *req, const char *rest)
{
    const char *slash = strchr(rest, '/');
    const embedded_file *f = slash ? find_file(slash + 1) : NULL;
    if (!f || strcmp(f->name, "index.html") == 0) {
        http_reply_error(req, AOP_ERR_NOT_FOUND, NULL, NULL);
        return;
    }
    int current = (size_t)(slash - rest) == strlen(shell.version) &&
                  memcmp(rest, shell.version, strlen(shell.version)) == 0;
    reply_file(req, type_of(f->name), (const char *)f->data, f->len, f->etag,
               current ? "public, max-age=31536000, immutable" : "no-cache");
}

void api_console(http_req *req)
{
    pthread_once(&shell.once, shell_init);
    const char *path = http_path(req);
    if (strlen(path) > CONSOLE_PATH_MAX) {
        http_reply_error(req, AOP_ERR_NOT_FOUND, NULL, NULL);
        return;
    }
    if (strncmp(path, ASSETS, strlen(ASSETS)) == 0) {
        reply_asset(req, path + strlen(ASSETS));
        return;
    }
    reply_file(req, "text/html; charset=utf-8", shell.index, shell.index_len, shell.index_etag,
               "no-cache");
}
