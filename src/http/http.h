/*
 * http.h - what a handler sees of a request and how it answers.
 *
 * A request lives from its first byte to the end of its response; memory
 * from http_arena() lives exactly as long. A handler answers once with one of
 * the http_reply_* functions; the server adds the request id, security and
 * CORS headers, compresses, sends, counts and logs.
 */
#ifndef AOP_HTTP_HTTP_H
#define AOP_HTTP_HTTP_H

#include <jansson.h>
#include <stddef.h>

#include "app.h"
#include "core/err.h"
#include "core/mem.h"

typedef struct http_req http_req;
typedef void (*http_handler)(http_req *req);
typedef struct auth_identity auth_identity;

const app_ctx *http_app(const http_req *req);
arena *http_arena(http_req *req);
const char *http_method(const http_req *req);
const char *http_path(const http_req *req);
const char *http_request_id(const http_req *req);
/* A request header (case-insensitive name) or NULL. */
const char *http_header(const http_req *req, const char *name);
/* A query-string argument or NULL. */
const char *http_query(const http_req *req, const char *name);
/* A path parameter of the matched route (":id" -> "id") or NULL. */
const char *http_param(const http_req *req, const char *name);
/* The body as it came (borrowed; not NUL-terminated), *len bytes. */
const char *http_body_raw(const http_req *req, size_t *len);
/* Calls fn(ctx, name, value) for each request header / query argument, in
 * the order they came (repeats included; a value may be ""). */
typedef void (*http_pair_fn)(void *ctx, const char *name, const char *value);
void http_headers_each(const http_req *req, http_pair_fn fn, void *ctx);
void http_query_each(const http_req *req, http_pair_fn fn, void *ctx);
/* The parsed JSON body (borrowed) or NULL when the request had none. */
json_t *http_body(const http_req *req);
/* The client's address: the socket's, or behind TRUST_PROXY hops the
 * X-Forwarded-For entry that many places from the right (forwarded.h). */
const char *http_client_ip(const http_req *req);
/* Who is calling, on routes that require credentials (else via NONE). */
const auth_identity *http_identity(const http_req *req);

/*
 * Slow work off the HTTP threads: runs work(ctx) on the app's slow-work pool
 * with the connection suspended, then cont(req, ctx) back on an HTTP thread,
 * where the answer is given. The handler returns right after a successful
 * call without answering. Returns 0, or -1 when the pool is full (nothing
 * was started; answer 503). ctx must live until cont runs (use the arena).
 */
typedef void (*http_work)(void *ctx);
typedef void (*http_cont)(http_req *req, void *ctx);
int http_defer(http_req *req, http_work work, http_cont cont, void *ctx);

/*
 * Waiting on an event instead of work: the connection is suspended after
 * the handler returns, until http_unpark(req) is called (from any thread,
 * exactly once, possibly before the suspension); then cont(req, ctx) answers
 * on an HTTP thread. The caller guarantees the unpark (a deadline); the
 * server's shutdown waits for it. Returns -1 when the request is already
 * deferred.
 */
int http_park(http_req *req, http_cont cont, void *ctx);
void http_unpark(http_req *req);

/*
 * A response whose body comes over time (Server-Sent Events), holding no
 * thread while it waits. After the handler returns, the server calls
 * read(ctx, out, max) on an HTTP thread whenever it can send: it returns
 * the bytes it put in out (1..max), HTTP_STREAM_WAIT when it has nothing
 * now (the connection is then suspended until http_stream_wake),
 * HTTP_STREAM_END to finish the response, or HTTP_STREAM_ABORT to close the
 * connection. done(ctx) runs once, when the response is gone (finished,
 * or the client left); from then on the stream must not be woken. The
 * stream is NULL when the response could not be made (done has then run).
 */
#define HTTP_STREAM_WAIT 0
#define HTTP_STREAM_END (-1)
#define HTTP_STREAM_ABORT (-2)
typedef struct http_stream http_stream;
typedef long (*http_stream_read)(void *ctx, char *out, size_t max);
http_stream *http_reply_stream(http_req *req, const char *content_type, http_stream_read read,
                               void (*done)(void *ctx), void *ctx);
/* Calls read again soon (any thread; a no-op while it is not waiting). */
void http_stream_wake(http_stream *s);

/* Replaces the Content-Security-Policy and Cache-Control every answer
 * gets (default-src 'none', no-store) for this one; both strings must
 * outlive the request (literals). For the console's pages and files only:
 * the API's headers stay as they are. */
void http_set_policy(http_req *req, const char *csp, const char *cache_control);
/* Adds a response header; name and value are copied. */
void http_set_header(http_req *req, const char *name, const char *value);
/* Answers with body (taken: the reply owns it from now on) as compact JSON. */
void http_reply_json(http_req *req, int status, json_t *body);
/* Answers with bytes of the given content type (copied). */
void http_reply_bytes(http_req *req, int status, const char *content_type, const char *data,
                      size_t len);
/* Answers with no body (e.g. 204). */
void http_reply_empty(http_req *req, int status);
/* Answers with the contract's error shape. message NULL uses the code's
 * default; details (taken, may be NULL) is an array of {field, message}. */
void http_reply_error(http_req *req, aop_err e, const char *message, json_t *details);

#endif
