/*
 * live.h - the streams that follow executions (docs/api.md, "Live execution
 * events"): GET /api/executions/:id/events and GET /api/events.
 *
 * A stream (live_sub) is a subscription to the events the engine commits
 * (its events hook) plus what it still has to send. Nothing waits on a
 * thread: the HTTP layer pulls frames with live_read when the socket can
 * take them and parks the connection when there are none; the hub wakes it
 * when events, a ping or the end arrive.
 *
 * An execution's stream sends its durable events in seq order with no gap:
 * first those the store holds after the client's last seq (catch-up, also
 * whenever a live event shows a gap, and when another instance wrote
 * events), then each committed event as the engine hands it over. It ends
 * after execution.finished, or when the execution is deleted. A reader
 * that falls SSE_BUFFER_BYTES behind the live events is dropped (its
 * connection closed); it reconnects with Last-Event-ID and loses nothing
 * durable. The global stream sends execution.queued|started|finished of
 * the workflows its caller may read, checked as each is sent.
 */
#ifndef AOP_EXECUTIONS_LIVE_H
#define AOP_EXECUTIONS_LIVE_H

#include <stddef.h>

#include "app.h"
#include "workflows/workflows.h"

typedef struct live live;
typedef struct live_sub live_sub;

/* The hub of app (its configuration and store, borrowed); starts the
 * thread that sends pings. NULL when that thread cannot start. */
live *live_new(const app_ctx *app);
/* Ends every stream (call before the HTTP server stops) and the ping
 * thread. The hooks below stay safe and do nothing. NULL-safe. */
void live_shutdown(live *l);
/* After live_shutdown, once no stream is left. NULL-safe. */
void live_free(live *l);

/* A stream of execution id's events after seq after, for caller c, who must
 * may read it: AOP_ERR_NOT_FOUND otherwise; AOP_ERR_RATE_LIMITED when c's
 * user has SSE_MAX_STREAMS open here. */
aop_err live_open_execution(const app_ctx *app, const wf_caller *c, const char *id,
                            long long after, live_sub **out);
/* The global stream of c (workflow_id NULL: every readable workflow). */
aop_err live_open_all(const app_ctx *app, const wf_caller *c, const char *workflow_id,
                      live_sub **out);
/* How the HTTP layer's stream is woken (set once the response exists). */
void live_attach(live_sub *s, void (*wake)(void *w), void *w);
/* http_stream_read and done of the sub's response (http.h's values). */
long live_read(void *sub, char *out, size_t max);
void live_done(void *sub);

/* The engine's hooks (engine.h): events committed here, events another
 * instance committed, and an execution deleted here. */
void live_events(live *l, const char *workflow_id, const char *execution_id,
                 const store_exec_event *ev, int n);
void live_elsewhere(live *l, const char *execution_id, long long first, long long last);
void live_deleted(live *l, const char *execution_id);

/* For /metrics: streams open now, and readers dropped for falling
 * SSE_BUFFER_BYTES behind since start. */
void live_read_stats(live *l, long *open, long long *dropped);

#endif
