/*
 * common.h - what handlers share: reading fields with every problem
 * collected, list paging, audit records.
 */
#ifndef AOP_API_COMMON_H
#define AOP_API_COMMON_H

#include <jansson.h>
#include <stdbool.h>

#include "http/http.h"
#include "workflows/workflows.h"

#define API_LIMIT_DEFAULT 20
#define API_LIMIT_MAX 100

/* Appends {field, message} to details. */
void api_problem(json_t *details, const char *field, const char *message);

/* The request body (borrowed) in *out: an object, or NULL when there was no
 * body (jansson's getters take NULL). 0 after answering 400 when the body is
 * JSON but not an object. */
int api_object_or_reply(http_req *req, json_t **out);

/* A string member of o. Absent: NULL, with a problem when required (null
 * counts as absent there). Present: must be a string of min..max characters
 * (UTF-8 characters, not bytes), else a problem and NULL. */
const char *api_string(json_t *o, const char *field, bool required, size_t min, size_t max,
                       json_t *details);

/* Answers 400 VALIDATION_ERROR with details (taken) when it holds anything
 * and returns 0; otherwise frees it and returns 1. */
int api_valid_or_reply(http_req *req, json_t *details);

/* Answers an error from a service: 503 and 429 QUOTA_EXCEEDED get
 * Retry-After (1 s), the latter a message naming the quota. */
void api_reply_err(http_req *req, aop_err e, const char *message);

/* A service's answer: status with its JSON text (none for 204) when rc is
 * AOP_OK, else its error, 404 with the message not_found. */
void api_reply_result(http_req *req, aop_err rc, int status, const char *json, size_t len,
                      const char *not_found);

typedef struct {
    long long page, limit, offset;
    int sort;  /* index into the sort field list */
    bool desc;
} api_page;

/* Reads page, limit and (when fields is not NULL) sort from the query;
 * fields is NULL-terminated, fields[0] the default. 0 after answering 400. */
int api_page_or_reply(http_req *req, const char *const *fields, bool default_desc,
                      api_page *out);

/* {"data": data (taken), "pagination": {...}}. */
json_t *api_list(json_t *data, const api_page *p, long long total);

/* Records an audit event (row and log line); detail is taken (may be NULL). */
void api_audit(http_req *req, const char *action, const char *actor_id, const char *subject_id,
               json_t *detail);

/* The caller as the workflow rules see it (role admin, role viewer). */
wf_caller api_wf_caller(http_req *req);

/* Answers 202 {executionId, status}: an execution accepted, or not ended
 * yet when a wait for it was over. */
void api_reply_status(http_req *req, const char *execution_id, exec_status status);

/*
 * A synchronous wait (wait.c): parks req until execution execution_id
 * (whose status was status) ends or timeout_ms (plus 250 ms) passes, and
 * never longer than WAIT_MAX_MS. Then, on an HTTP thread: when it ended,
 * ended(req, json, len, ctx) answers, json being the execution as
 * executions_get gives it to c (copied; ctx must live until then: use the
 * arena); otherwise the answer is 202 {executionId, status} with its
 * status then, or 404 when it was deleted meanwhile.
 */
typedef void (*api_ended_fn)(http_req *req, const char *json, size_t len, void *ctx);
void api_wait_end(http_req *req, const wf_caller *c, const char *execution_id,
                  exec_status status, long long timeout_ms, api_ended_fn ended, void *ctx);
/* Starts row (executions_start_wait) and waits for its end as api_wait_end
 * does; a refused start is answered as the error it is (429 over the
 * quota, 503 while stopping). */
void api_start_wait(http_req *req, const wf_caller *c, const store_execution *row,
                    api_ended_fn ended, void *ctx);

#endif
