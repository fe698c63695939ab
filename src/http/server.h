/*
 * server.h - the HTTP server: libmicrohttpd glue and the request pipeline.
 *
 * Pipeline of every request: request id -> size checks (414, 431, 413) ->
 * CORS preflight -> body checks (415, 400) -> route (404, 405) -> handler;
 * then security and CORS headers, gzip, send; then metrics and access log.
 */
#ifndef AOP_HTTP_SERVER_H
#define AOP_HTTP_SERVER_H

#include <stddef.h>

#include "app.h"

typedef struct http_server http_server;

/* Binds and starts serving on the thread pool. NULL with a message in err
 * when the address cannot be used. */
http_server *http_server_start(const app_ctx *app, char *err, size_t errlen);
/* The port actually bound (useful with PORT=0). */
int http_server_port(const http_server *s);
/* Stops accepting, waits up to timeout_ms for requests in flight, then
 * closes every connection and frees the server. NULL-safe. */
void http_server_stop(http_server *s, long long timeout_ms);

#endif
