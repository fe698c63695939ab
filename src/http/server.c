#include "http/server.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/gzip.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "auth/session.h"
#include "http/forwarded.h"
#include "http/guard.h"
#include "http/router.h"
#include "http/routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define URL_MAX (8 * 1024)
/* Query parameters of one request at most; see on_uri. */
#define QUERY_PARAMS_MAX 64
#define HEADERS_MAX (16 * 1024)
#define CONN_MEMORY (32 * 1024)
#define GZIP_MIN 1024
#define MAX_REPLY_HEADERS 24
#define MAX_ORIGINS 32

struct http_server {
    struct MHD_Daemon *d;
    const app_ctx *app;
    int port;
    long inflight;  /* requests between their first byte and their completion */
    long suspended; /* requests waiting on slow work */
    int norigins;
    char *origins[MAX_ORIGINS];
};

struct http_req {
    arena arena;
    http_server *srv;
    struct MHD_Connection *conn;
    char method[16];
    const char *path;     /* libmicrohttpd's, kept until on_completed */
    bool too_many_params; /* on_uri cut the query off */
    char request_id[129];
    char ip[INET6_ADDRSTRLEN];
    const http_route *route;   /* the row that handles the request */
    const http_route *matched; /* a row whose pattern matched the path (405, preflight) */
    const char *allow;         /* the path's methods, for a 405 */
    router_param params[ROUTER_MAX_PARAMS];
    int nparams;
    buf body;
    int body_too_large;
    size_t body_discarded;
    json_t *json;
    int64_t start_ns;
    auth_identity identity;
    /* slow work (http_defer): queued when the handler returns, then resumed */
    http_work work;
    http_cont cont;
    void *work_ctx;
    int deferred; /* 1: to suspend and queue; 2: suspended, cont pending */
    int parked;   /* http_park: PARK_SUSPENDED and PARK_WOKEN bits */
    /* the answer */
    int replied;
    int queued;
    int status;
    const char *content_type;
    char content_type_buf[64]; /* content_type when it fits, saving the arena a block */
    const char *origin;        /* find_origin's answer, once looked up */
    bool origin_known;
    http_stream *stream; /* http_reply_stream: the body comes from it */
    char *reply;      /* malloc'd; handed to libmicrohttpd */
    size_t reply_len;
    const char *csp;           /* http_set_policy, else the API's */
    const char *cache_control; /* http_set_policy, else no-store */
    int nheaders;
    const char *hname[MAX_REPLY_HEADERS];
    const char *hvalue[MAX_REPLY_HEADERS];
};

/* ---- accessors for handlers ---- */

const app_ctx *http_app(const http_req *req) { return req->srv->app; }
arena *http_arena(http_req *req) { return &req->arena; }
const char *http_method(const http_req *req) { return req->method; }
const char *http_path(const http_req *req) { return req->path; }
const char *http_request_id(const http_req *req) { return req->request_id; }
json_t *http_body(const http_req *req) { return req->json; }
const char *http_client_ip(const http_req *req) { return req->ip; }
const auth_identity *http_identity(const http_req *req) { return &req->identity; }

const char *http_header(const http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_query(const http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_body_raw(const http_req *req, size_t *len)
{
    *len = req->body.len;
    return req->body.len ? req->body.data : "";
}

typedef struct {
    http_pair_fn fn;
    void *ctx;
} pairs_ctx;

static enum MHD_Result each_pair(void *p, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    pairs_ctx *x = p;
    x->fn(x->ctx, key, value ? value : "");
    return MHD_YES;
}

void http_headers_each(const http_req *req, http_pair_fn fn, void *ctx)
{
    pairs_ctx x = {fn, ctx};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, each_pair, &x);
}

void http_query_each(const http_req *req, http_pair_fn fn, void *ctx)
{
    pairs_ctx x = {fn, ctx};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, each_pair, &x);
}

const char *http_param(const http_req *req, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < req->nparams; i++)
        if (req->params[i].name_len == n && memcmp(req->params[i].name, name, n) == 0)
            return req->params[i].value;
    return NULL;
}

/* ---- replies ---- */

void http_set_header(http_req *req, const char *name, const char *value)
{
    if (req->nheaders >= MAX_REPLY_HEADERS) {
        log_error("too many response headers", LF_S("requestId", req->request_id),
                  LF_S("header", name));
        return;
    }
    req->hname[req->nheaders] = arena_strdup(&req->arena, name);
    req->hvalue[req->nheaders] = arena_strdup(&req->arena, value);
    req->nheaders++;
}

void http_set_policy(http_req *req, const char *csp, const char *cache_control)
{
    req->csp = csp;
    req->cache_control = cache_control;
}

/* A copy of content_type (or NULL) in the record when it fits: /health and
 * most answers then leave the arena untouched, whose first block (4 KiB)
 * is a size glibc's malloc consolidates its fast bins for. */
static void set_content_type(http_req *req, const char *content_type)
{
    size_t n = content_type ? strlen(content_type) : 0;
    if (!content_type)
        req->content_type = NULL;
    else if (n < sizeof(req->content_type_buf))
        req->content_type = memcpy(req->content_type_buf, content_type, n + 1);
    else
        req->content_type = arena_strndup(&req->arena, content_type, n);
}

void http_reply_bytes(http_req *req, int status, const char *content_type, const char *data,
                      size_t len)
{
    if (req->replied) {
        log_error("second reply to one request", LF_S("requestId", req->request_id));
        return;
    }
    req->replied = 1;
    req->status = status;
    set_content_type(req, content_type);
    req->reply = xmalloc(len ? len : 1);
    if (len)
        memcpy(req->reply, data, len);
    req->reply_len = len;
}

void http_reply_empty(http_req *req, int status)
{
    http_reply_bytes(req, status, NULL, NULL, 0);
}

void http_reply_json(http_req *req, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (!text) {
        log_error("cannot encode a JSON reply", LF_S("requestId", req->request_id));
        http_reply_error(req, AOP_ERR_INTERNAL, NULL, NULL);
        return;
    }
    http_reply_bytes(req, status, "application/json", text, strlen(text));
    free(text);
}

void http_reply_error(http_req *req, aop_err e, const char *message, json_t *details)
{
    if (e == AOP_ERR_INTERNAL || !message)
        message = err_message(e);
    json_t *err = json_pack("{s:s, s:s, s:s}", "code", err_code(e), "message", message,
                            "requestId", req->request_id);
    if (details && err)
        json_object_set_new(err, "details", details);
    else
        json_decref(details);
    http_reply_json(req, err_http_status(e), json_pack("{s:o}", "error", err));
}

/* ---- streams ----
 *
 * A stream is a callback response: libmicrohttpd calls pull() when the
 * socket can take more. When the producer has nothing, pull() suspends
 * the connection and returns 0; http_stream_wake resumes it. woken closes
 * the race of a wake that comes while read runs: pull() then reads again
 * instead of suspending. */

/* libmicrohttpd allocates this much with every callback response; a chunked
 * body is written from the connection's own buffer instead, so only an
 * HTTP/1.0 client's stream goes through it: kept small, it costs a thousand
 * streams 1 MiB rather than 16. */
#define STREAM_BLOCK 1024

struct http_stream {
    pthread_mutex_t mu;
    struct MHD_Connection *conn;
    bool suspended, woken;
    http_stream_read read;
    void (*done)(void *ctx);
    void *ctx;
};

http_stream *http_reply_stream(http_req *req, const char *content_type, http_stream_read read,
                               void (*done)(void *ctx), void *ctx)
{
    if (req->replied) {
        log_error("second reply to one request", LF_S("requestId", req->request_id));
        done(ctx);
        return NULL;
    }
    http_stream *st = xcalloc(1, sizeof(*st));
    pthread_mutex_init(&st->mu, NULL);
    st->conn = req->conn;
    st->read = read;
    st->done = done;
    st->ctx = ctx;
    req->replied = 1;
    req->status = 200;
    set_content_type(req, content_type);
    req->stream = st;
    return st;
}

void http_stream_wake(http_stream *st)
{
    pthread_mutex_lock(&st->mu);
    st->woken = true;
    if (st->suspended) {
        st->suspended = false;
        MHD_resume_connection(st->conn);
    }
    pthread_mutex_unlock(&st->mu);
}

static ssize_t pull(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    http_stream *st = cls;
    for (;;) {
        pthread_mutex_lock(&st->mu);
        st->woken = false;
        pthread_mutex_unlock(&st->mu);
        long n = st->read(st->ctx, out, max);
        if (n == HTTP_STREAM_END)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (n < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (n > 0)
            return (ssize_t)n;
        pthread_mutex_lock(&st->mu);
        bool again = st->woken;
        if (!again) {
            st->suspended = true;
            MHD_suspend_connection(st->conn);
        }
        pthread_mutex_unlock(&st->mu);
        if (!again)
            return 0;
    }
}

static void stream_free(void *cls)
{
    http_stream *st = cls;
    st->done(st->ctx);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* ---- request pipeline ---- */

/* The request's Origin when FRONTEND_URL lists it, else NULL; looked up
 * once (a response asks up to three times). */
static const char *find_origin(http_req *req)
{
    if (req->origin_known)
        return req->origin;
    req->origin_known = true;
    const char *origin = req->srv->norigins ? http_header(req, "Origin") : NULL;
    if (!origin)
        return NULL;
    for (int i = 0; i < req->srv->norigins; i++)
        if (strcmp(origin, req->srv->origins[i]) == 0)
            return req->origin = req->srv->origins[i];
    return NULL;
}

static void preflight(http_req *req)
{
    int n;
    for (int i = 0; i < http_routes_len && !req->matched; i++)
        if (router_match(http_routes[i].pattern, req->path, req->params, &n, &req->arena))
            req->matched = &http_routes[i];
    if (find_origin(req)) {
        http_set_header(req, "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
        http_set_header(req, "Access-Control-Allow-Headers",
                        "Authorization, Content-Type, X-API-Key, X-Request-Id");
        http_set_header(req, "Access-Control-Max-Age", "600");
    }
    http_reply_empty(req, 204);
}

/* Is the Content-Type application/json (parameters such as charset allowed)? */
static int is_json_type(const char *ct)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; \t");
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

static int method_has_body(const char *m)
{
    return !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH");
}

/* 415 or 400 unless the body is absent or valid JSON; parses it into req->json. */
static int body_ok_or_reply(http_req *req)
{
    if (!method_has_body(req->method) || req->body.len == 0)
        return 1;
    if (!is_json_type(http_header(req, "Content-Type"))) {
        http_reply_error(req, AOP_ERR_UNSUPPORTED_MEDIA_TYPE, NULL, NULL);
        return 0;
    }
    char why[256];
    if (json_parse_body(req->body.data, req->body.len, &req->json, why, sizeof(why)) != AOP_OK) {
        http_reply_error(req, AOP_ERR_INVALID_JSON, why, NULL);
        return 0;
    }
    return 1;
}

/* Finds the row for method and path (req->route); when there is none, the
 * first row whose pattern matched the path (req->matched, for a 405) and
 * the methods the path allows (req->allow). */
static void find_route(http_req *req)
{
    const char *m = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    buf allow;
    buf_init(&allow, 256);
    for (int i = 0; i < http_routes_len; i++) {
        const http_route *r = &http_routes[i];
        if (!router_match(r->pattern, req->path, req->params, &req->nparams, &req->arena))
            continue;
        if (strcmp(r->method, m) == 0) {
            req->route = r;
            buf_free(&allow);
            return;
        }
        if (!req->matched)
            req->matched = r;
        buf_printf(&allow, "%s%s", allow.len ? ", " : "", r->method);
        if (strcmp(r->method, "GET") == 0)
            buf_puts(&allow, ", HEAD");
    }
    req->nparams = 0;
    if (req->matched)
        req->allow = arena_strdup(&req->arena, allow.data);
    buf_free(&allow);
}

/* 404, or 405 with Allow, for a request find_route found no row for. */
static void reply_no_route(http_req *req)
{
    if (req->matched) {
        http_set_header(req, "Allow", req->allow);
        http_reply_error(req, AOP_ERR_METHOD_NOT_ALLOWED, NULL, NULL);
    } else {
        http_reply_error(req, AOP_ERR_NOT_FOUND, NULL, NULL);
    }
}

/* The rate-limit bucket of a request: its row's, and the general one for
 * any other path under /api. */
static http_bucket bucket_of(const http_req *req, const http_route *row)
{
    if (row)
        return row->bucket;
    return strncmp(req->path, "/api/", 5) == 0 ? BUCKET_GENERAL : BUCKET_NONE;
}

/*
 * Order (docs/api.md): credentials read and rate limit, body checks (415,
 * 400), 404/405, the route's access rule (401, 403), the handler.
 */
static void dispatch(http_req *req)
{
    if (req->body_too_large) {
        http_reply_error(req, AOP_ERR_PAYLOAD_TOO_LARGE, NULL, NULL);
        return;
    }
    if (strcmp(req->method, "OPTIONS") == 0) {
        preflight(req);
        return;
    }
    find_route(req);
    const http_route *row = req->route ? req->route : req->matched;
    http_guard g;
    log_set_request_id(req->request_id);
    if (!http_guard_limit_or_reply(req, row, bucket_of(req, row), &req->identity, &g) ||
        (!(req->route && req->route->access == ACCESS_HOOK) && !body_ok_or_reply(req)))
        goto out;
    if (!req->route) {
        reply_no_route(req);
        goto out;
    }
    if (http_guard_access_or_reply(req, req->route, &req->identity, &g))
        req->route->handler(req);
    if (!req->replied && !req->deferred) {
        log_error("handler gave no reply", LF_S("requestId", req->request_id),
                  LF_S("route", req->route->pattern));
        http_reply_error(req, AOP_ERR_INTERNAL, NULL, NULL);
    }
out:
    log_set_request_id(NULL);
}

/* ---- slow work ---- */

int http_defer(http_req *req, http_work work, http_cont cont, void *ctx)
{
    workpool *pool = req->srv->app->slow;
    if (req->deferred || !pool || !workpool_reserve(pool))
        return -1;
    req->work = work;
    req->cont = cont;
    req->work_ctx = ctx;
    req->deferred = 1;
    return 0;
}

/* A parked request is resumed by whichever of the two comes second: the
 * suspension (after the handler returned) or http_unpark (any thread). */
enum { PARK_SUSPENDED = 1, PARK_WOKEN = 2 };

int http_park(http_req *req, http_cont cont, void *ctx)
{
    if (req->deferred)
        return -1;
    req->work = NULL;
    req->cont = cont;
    req->work_ctx = ctx;
    req->parked = 0;
    req->deferred = 1;
    return 0;
}

static void resume(http_req *req)
{
    http_server *srv = req->srv; /* req may be gone once resumed */
    MHD_resume_connection(req->conn);
    __atomic_sub_fetch(&srv->suspended, 1, __ATOMIC_SEQ_CST);
}

void http_unpark(http_req *req)
{
    if (__atomic_fetch_or(&req->parked, PARK_WOKEN, __ATOMIC_SEQ_CST) & PARK_SUSPENDED)
        resume(req);
}

/* On a pool thread: the work, then the connection goes back to the server. */
static void run_deferred(void *arg)
{
    http_req *req = arg;
    log_set_request_id(req->request_id);
    req->work(req->work_ctx);
    log_set_request_id(NULL);
    resume(req);
}

/* Suspends the connection (before the job can finish) and queues the job on
 * the place http_defer reserved. */
static void start_deferred(http_req *req)
{
    req->deferred = 2;
    __atomic_add_fetch(&req->srv->suspended, 1, __ATOMIC_SEQ_CST);
    MHD_suspend_connection(req->conn);
    if (!req->work) {
        if (__atomic_fetch_or(&req->parked, PARK_SUSPENDED, __ATOMIC_SEQ_CST) & PARK_WOKEN)
            resume(req);
        return;
    }
    workpool_submit(req->srv->app->slow, run_deferred, req);
}

/* Back on an HTTP thread after the work: the continuation answers. */
static void finish_deferred(http_req *req)
{
    req->deferred = 0;
    log_set_request_id(req->request_id);
    req->cont(req, req->work_ctx);
    log_set_request_id(NULL);
    if (!req->replied) {
        log_error("handler gave no reply", LF_S("requestId", req->request_id),
                  LF_S("route", req->route->pattern));
        http_reply_error(req, AOP_ERR_INTERNAL, NULL, NULL);
    }
}

/* ---- first-call checks: sizes known from the header alone ---- */

static enum MHD_Result sum_kv(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value)
{
    (void)kind;
    size_t *n = cls;
    *n += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* Notes a query argument whose name or value holds a NUL byte ("%00"), which
 * C strings would silently cut short. */
static enum MHD_Result find_nul(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    const char **bad = cls;
    if (strlen(key) != key_size || (value && strlen(value) != value_size)) {
        *bad = key;
        return MHD_NO;
    }
    return MHD_YES;
}

static int early_checks_or_reply(http_req *req, const char *url)
{
    if (req->too_many_params) {
        char msg[64];
        snprintf(msg, sizeof(msg), "The query has more than %d parameters", QUERY_PARAMS_MAX);
        http_reply_error(req, AOP_ERR_URI_TOO_LONG, msg, NULL);
        return 0;
    }
    size_t url_len = strlen(url);
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, sum_kv, &url_len);
    if (url_len > URL_MAX) {
        http_reply_error(req, AOP_ERR_URI_TOO_LONG, NULL, NULL);
        return 0;
    }
    const char *nul_in = NULL;
    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, find_nul, &nul_in);
    if (nul_in) {
        json_t *d = json_pack("[{s:s, s:s}]", "field", nul_in, "message",
                              "must not contain a NUL character");
        http_reply_error(req, AOP_ERR_VALIDATION, "A query parameter contains a NUL character", d);
        return 0;
    }
    size_t hdr_len = 0;
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, sum_kv, &hdr_len);
    if (hdr_len > HEADERS_MAX) {
        http_reply_error(req, AOP_ERR_HEADERS_TOO_LARGE, NULL, NULL);
        return 0;
    }
    const char *cl = http_header(req, "Content-Length");
    long long n;
    if (cl && str_to_ll(cl, 0, (long long)1 << 62, &n) == 0 &&
        n > req->srv->app->cfg->body_limit_bytes) {
        http_reply_error(req, AOP_ERR_PAYLOAD_TOO_LARGE, NULL, NULL);
        return 0;
    }
    return 1;
}

/* ---- sending ---- */

static void add_common_headers(http_req *req, struct MHD_Response *resp)
{
    const config *cfg = req->srv->app->cfg;
    MHD_add_response_header(resp, "X-Request-Id", req->request_id);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            req->csp ? req->csp : "default-src 'none'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(resp, "Cache-Control",
                            req->cache_control ? req->cache_control : "no-store");
    if (cfg->app_env == APP_ENV_PRODUCTION)
        MHD_add_response_header(resp, "Strict-Transport-Security",
                                "max-age=31536000; includeSubDomains");
    const char *origin = find_origin(req);
    if (origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "X-Request-Id, RateLimit-Limit, RateLimit-Remaining, "
                                "RateLimit-Reset, Retry-After");
    }
}

/* Compresses the reply in place when it is large and the client takes gzip;
 * sets Vary to what the answer depends on. Returns 1 when compressed. */
static int maybe_gzip(http_req *req)
{
    int compressed = 0;
    int big = req->reply_len > GZIP_MIN;
    const char *vary = find_origin(req) ? (big ? "Origin, Accept-Encoding" : "Origin")
                                        : (big ? "Accept-Encoding" : NULL);
    if (big && gzip_accepted(http_header(req, "Accept-Encoding"))) {
        char *z;
        size_t zlen;
        if (gzip_compress(req->reply, req->reply_len, &z, &zlen) == 0) {
            free(req->reply);
            req->reply = z;
            req->reply_len = zlen;
            compressed = 1;
        }
    }
    if (vary)
        http_set_header(req, "Vary", vary);
    return compressed;
}

/* Adds the handler's headers to resp, queues it and lets it go. */
static enum MHD_Result queue_reply(http_req *req, struct MHD_Response *resp)
{
    for (int i = 0; i < req->nheaders; i++)
        MHD_add_response_header(resp, req->hname[i], req->hvalue[i]);
    enum MHD_Result rc = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    req->queued = rc == MHD_YES;
    return rc;
}

/* A stream's response: never compressed, never cached, never buffered by
 * a proxy. */
static enum MHD_Result send_stream(http_req *req)
{
    http_stream *st = req->stream;
    req->stream = NULL;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, pull, st, stream_free);
    if (!resp) {
        stream_free(st);
        return MHD_NO;
    }
    add_common_headers(req, resp);
    MHD_add_response_header(resp, "Content-Type", req->content_type);
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    if (find_origin(req))
        MHD_add_response_header(resp, "Vary", "Origin");
    return queue_reply(req, resp);
}

static enum MHD_Result send_reply(http_req *req)
{
    if (req->stream)
        return send_stream(req);
    int gz = maybe_gzip(req);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(req->reply_len, req->reply, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    req->reply = NULL; /* libmicrohttpd frees it */
    add_common_headers(req, resp);
    if (gz)
        MHD_add_response_header(resp, "Content-Encoding", "gzip");
    if (req->content_type)
        MHD_add_response_header(resp, "Content-Type", req->content_type);
    return queue_reply(req, resp);
}

/* ---- libmicrohttpd callbacks ---- */

static enum MHD_Result feed_forwarded(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    if (strcasecmp(key, "X-Forwarded-For") == 0)
        forwarded_feed(cls, value);
    return MHD_YES;
}

static void ipv4_text(const struct in_addr *a, char out[INET_ADDRSTRLEN])
{
    const unsigned char *b = (const unsigned char *)&a->s_addr; /* network order */
    char *o = out;
    for (int i = 0; i < 4; i++) {
        char d[STR_LL_MAX];
        size_t n = str_from_ll(d, b[i]);
        if (i)
            *o++ = '.';
        memcpy(o, d, n);
        o += n;
    }
    *o = '\0';
}

/* The client's address: behind TRUST_PROXY hops, from every
 * X-Forwarded-For line of the request (forwarded.h); else, or when that
 * names none, the socket's. */
static void client_ip(http_req *req)
{
    long long hops = req->srv->app->cfg->trust_proxy;
    if (hops > 0) {
        forwarded_scan fs;
        forwarded_begin(&fs, (int)hops);
        MHD_get_connection_values(req->conn, MHD_HEADER_KIND, feed_forwarded, &fs);
        if (forwarded_client(&fs, req->ip, sizeof(req->ip)) == 0)
            return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    str_copy(req->ip, sizeof(req->ip), "unknown");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) /* dotted quad by hand: inet_ntop formats with sprintf */
        ipv4_text(&((const struct sockaddr_in *)(const void *)sa)->sin_addr, req->ip);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, req->ip,
                  sizeof(req->ip));
}

/*
 * One finished request record kept per thread for its next request. The
 * record is over 1 KiB, a size for which malloc consolidates its fast bins
 * first, at every request (about 3,000 instructions of ~75,000 for
 * /health). A thread's spare is freed when the thread ends (the key's
 * destructor); the thread that stops the server frees its own.
 */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void spare_init(void)
{
    if (pthread_key_create(&spare_key, free) != 0)
        abort(); /* only when the process has no keys left: at start */
}

static http_req *req_alloc(void)
{
    pthread_once(&spare_once, spare_init);
    http_req *req = pthread_getspecific(spare_key);
    if (!req)
        return xcalloc(1, sizeof(*req));
    pthread_setspecific(spare_key, NULL);
    memset(req, 0, sizeof(*req));
    return req;
}

static void req_release(http_req *req)
{
    if (pthread_getspecific(spare_key) || pthread_setspecific(spare_key, req) != 0)
        free(req);
}

static void spare_free(void)
{
    pthread_once(&spare_once, spare_init);
    free(pthread_getspecific(spare_key));
    pthread_setspecific(spare_key, NULL);
}

static http_req *req_new(http_server *srv, struct MHD_Connection *conn, const char *url,
                         const char *method)
{
    http_req *req = req_alloc();
    req->srv = srv;
    req->conn = conn;
    req->start_ns = clock_mono_ns();
    str_copy(req->method, sizeof(req->method), strlen(method) < sizeof(req->method) ? method : "OTHER");
    req->path = url; /* in the connection's memory, which outlives the request */
    buf_init(&req->body, (size_t)srv->app->cfg->body_limit_bytes);
    const char *rid = http_header(req, "X-Request-Id");
    if (ids_request_id_ok(rid))
        str_copy(req->request_id, sizeof(req->request_id), rid);
    else
        ids_uuid7(req->request_id);
    client_ip(req);
    __atomic_add_fetch(&srv->inflight, 1, __ATOMIC_SEQ_CST);
    return req;
}

static void req_free(http_req *req)
{
    if (req->stream) /* answered with a stream that never went out */
        stream_free(req->stream);
    json_decref(req->json);
    buf_free(&req->body);
    free(req->reply);
    arena_free(&req->arena);
    req_release(req);
}

/* Takes a chunk of the body; past the limit, keeps reading but drops it, so
 * the client still gets its 413. A client that goes on far past the limit is
 * disconnected. */
static enum MHD_Result absorb(http_req *req, const char *data, size_t n)
{
    if (!req->body_too_large && buf_append(&req->body, data, n) == 0)
        return MHD_YES;
    req->body_too_large = 1;
    buf_free(&req->body);
    req->body_discarded += n;
    return req->body_discarded > 4 * req->body.max + CONN_MEMORY ? MHD_NO : MHD_YES;
}

/* What on_uri hands on_request for a request whose query it cut off. */
static char too_many_params;

/* The parameters libmicrohttpd stores for query q: the parts between '&',
 * empty ones included, except an empty last one. */
static size_t count_params(const char *q)
{
    size_t n = 0;
    char last = '&';
    for (; *q; q++) {
        n += *q == '&';
        last = *q;
    }
    return n + (last != '&');
}

/*
 * libmicrohttpd 0.9.75 keeps one record per query parameter in the
 * connection's memory (CONN_MEMORY), parsed right after this callback and
 * before on_request. Past what the memory holds (about 480 parameters) it
 * fails to build even its own error answer and drops the connection. So
 * the count is checked here, on the raw request target, and a query with
 * too many parameters is cut off at its first byte: uri points into the
 * connection's read buffer, which is writable, and the library parses the
 * parameters from that same text once this returns. on_request then
 * answers 414. Cheap: one pass over the target, no allocation.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls, (void)conn;
    char *q = uri ? strchr(uri, '?') : NULL; /* NULL: a request line without a target */
    if (!q || count_params(q + 1) <= QUERY_PARAMS_MAX)
        return NULL;
    q[1] = '\0';
    return &too_many_params;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    http_req *req = *con_cls;
    if (!req || *con_cls == &too_many_params) {
        bool cut = req != NULL;
        req = req_new(cls, conn, url, method);
        req->too_many_params = cut;
        *con_cls = req;
        if (!early_checks_or_reply(req, url))
            return send_reply(req);
        return MHD_YES;
    }
    if (req->queued) { /* answered early (413, 414, 431): drop what still comes */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        enum MHD_Result rc = absorb(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return rc;
    }
    if (req->deferred == 2) {
        finish_deferred(req);
        return send_reply(req);
    }
    dispatch(req);
    if (req->deferred == 1) {
        start_deferred(req);
        return MHD_YES;
    }
    return send_reply(req);
}

static void access_log(http_req *req, enum MHD_RequestTerminationCode toe)
{
    int64_t ns = clock_mono_ns() - req->start_ns;
    const http_route *r = req->route ? req->route : req->matched;
    metrics_route *stats = r ? r->stats : &http_unmatched_stats;
    if (req->queued)
        metrics_route_observe(stats, req->method, req->status, ns);
    if (!log_enabled(LOG_INFO))
        return;
    log_info(req->queued ? "request" : "request aborted", LF_S("requestId", req->request_id),
             LF_S("method", req->method), LF_S("path", req->path),
             LF_S("route", r ? r->pattern : NULL),
             LF_I("status", req->queued ? req->status : 0), LF_D("durationMs", (double)ns / 1e6),
             LF_I("bytes", req->queued ? (long long)req->reply_len : 0), LF_S("ip", req->ip),
             LF_S("userId", req->identity.via ? req->identity.user.id : NULL),
             LF_B("completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK));
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    http_server *srv = cls;
    http_req *req = *con_cls;
    *con_cls = NULL;
    if (!req || (void *)req == &too_many_params)
        return;
    access_log(req, toe);
    req_free(req);
    __atomic_sub_fetch(&srv->inflight, 1, __ATOMIC_SEQ_CST);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_debug("http server", LF_S("detail", msg));
}

/* ---- start and stop ---- */

static void parse_origins(http_server *s, const char *list)
{
    if (!list)
        return;
    char *copy = xstrdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && s->norigins < MAX_ORIGINS;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t n = strlen(tok);
        while (n && (tok[n - 1] == ' ' || tok[n - 1] == '/'))
            n--;
        if (n)
            s->origins[s->norigins++] = xstrndup(tok, n);
    }
    free(copy);
}

static void server_free(http_server *s)
{
    for (int i = 0; i < s->norigins; i++)
        free(s->origins[i]);
    free(s);
}

http_server *http_server_start(const app_ctx *app, char *err, size_t errlen)
{
    const config *cfg = app->cfg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%lld", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, errlen, "HOST: cannot resolve %s: %s", cfg->host, gai_strerror(gai));
        return NULL;
    }
    http_server *s = xcalloc(1, sizeof(*s));
    s->app = app;
    parse_origins(s, cfg->frontend_url);
    /* poll(), not epoll: libmicrohttpd 0.9.75's MHD_quiesce_daemon() races its
     * own epoll worker threads over removing the listen socket and aborts the
     * process ("Failed to remove listen FD from epoll set") about once in 150
     * shutdowns with a keep-alive connection open (still so in 1.0.1). poll()
     * has no such race, and measured no slower here at 64 or 1000 connections,
     * nor in CPU time per request; a thread per connection took 1.75 times the
     * CPU (docs/benchmarks.md). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->http_max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->http_max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http_timeout_seconds,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_END);
    int saved = errno;
    freeaddrinfo(ai);
    if (!s->d) {
        snprintf(err, errlen, "cannot listen on %s:%lld: %s", cfg->host, cfg->port,
                 saved ? strerror(saved) : "libmicrohttpd refused the options");
        server_free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : (int)cfg->port;
    return s;
}

int http_server_port(const http_server *s)
{
    return s->port;
}

void http_server_stop(http_server *s, long long timeout_ms)
{
    if (!s)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    int64_t deadline = clock_mono_ns() + timeout_ms * 1000000;
    long left;
    while ((left = __atomic_load_n(&s->inflight, __ATOMIC_SEQ_CST)) > 0 &&
           clock_mono_ns() < deadline) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (left > 0)
        log_warn("shutdown timeout: closing requests still in flight", LF_I("requests", left));
    /* A suspended request belongs to a pool job that will resume it; the
     * daemon must outlive that call. The pool's queue bounds the wait. */
    while (__atomic_load_n(&s->suspended, __ATOMIC_SEQ_CST) > 0) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->d);
    server_free(s);
    spare_free();
}
