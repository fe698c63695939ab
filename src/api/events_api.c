/*
 * events_api.c - GET /api/executions/:id/events and GET /api/events: the
 * streams of live execution events (executions/live.h does the work).
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/common.h"
#include "core/ids.h"
#include "core/str.h"
#include "executions/live.h"

/* Seconds a client refused for SSE_MAX_STREAMS waits before it tries again. */
#define STREAMS_RETRY_AFTER "5"
/* The largest Last-Event-ID taken: the largest integer a JSON number
 * carries exactly. */
#define LAST_ID_MAX ((1LL << 53) - 1)

static void wake(void *st)
{
    http_stream_wake(st);
}

/* Answers with s's stream (s is the response's from now on). */
static void reply_stream(http_req *req, live_sub *s)
{
    http_stream *st = http_reply_stream(req, "text/event-stream", live_read, live_done, s);
    if (st)
        live_attach(s, wake, st);
}

static void reply_refused(http_req *req, aop_err rc)
{
    if (rc == AOP_ERR_RATE_LIMITED) {
        http_set_header(req, "Retry-After", STREAMS_RETRY_AFTER);
        http_reply_error(req, rc, "Too many open event streams (SSE_MAX_STREAMS)", NULL);
    } else if (rc == AOP_ERR_NOT_FOUND) {
        http_reply_error(req, rc, "No such execution", NULL);
    } else {
        api_reply_err(req, rc, NULL);
    }
}

/* The seq the client saw last: the Last-Event-ID header (a reconnecting
 * EventSource sends it), else ?lastEventId, else 0. */
static bool last_event_id(http_req *req, long long *after, json_t *details)
{
    const char *field = "Last-Event-ID";
    const char *v = http_header(req, field);
    if (!v) {
        field = "lastEventId";
        v = http_query(req, field);
    }
    *after = 0;
    if (!v)
        return true;
    if (str_to_ll(v, 0, LAST_ID_MAX, after) != 0) {
        api_problem(details, field, "must be an event id: an integer from 0");
        return false;
    }
    return true;
}

void api_execution_events(http_req *req)
{
    json_t *details = json_array();
    long long after = 0;
    last_event_id(req, &after, details);
    if (!api_valid_or_reply(req, details))
        return;
    wf_caller c = api_wf_caller(req);
    live_sub *s = NULL;
    aop_err rc = live_open_execution(http_app(req), &c, http_param(req, "id"), after, &s);
    if (rc != AOP_OK) {
        reply_refused(req, rc);
        return;
    }
    reply_stream(req, s);
}

void api_events(http_req *req)
{
    json_t *details = json_array();
    const char *wf = http_query(req, "workflowId");
    if (wf && !ids_uuid_ok(wf))
        api_problem(details, "workflowId", "must be a workflow id");
    if (!api_valid_or_reply(req, details))
        return;
    wf_caller c = api_wf_caller(req);
    live_sub *s = NULL;
    aop_err rc = live_open_all(http_app(req), &c, wf, &s);
    if (rc != AOP_OK) {
        reply_refused(req, rc);
        return;
    }
    reply_stream(req, s);
}
