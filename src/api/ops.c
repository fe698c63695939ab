/* Operations routes: /health, /ready, /metrics, /openapi.json. */
#include "api/api.h"
#include "executions/live.h"
#include "core/buf.h"
#include "core/clock.h"
#include "engine/engine.h"
#include "core/secure.h"
#include "credentials/vault.h"
#include "http/routes.h"
#include "infra/redis.h"

#include <string.h>

/* docs/openapi.json, built in by the Makefile (scripts/embed.sh). */
extern const unsigned char aop_openapi_json[];
extern const size_t aop_openapi_json_len;

void api_health(http_req *req)
{
    const app_ctx *app = http_app(req);
    long long up = (clock_mono_ns() - app->start_mono_ns) / 1000000000;
    /* Written out rather than built as a JSON tree: a load balancer asks
     * often, and this is the whole answer. */
    char body[160];
    buf b;
    buf_init_fixed(&b, body, sizeof(body));
    int bad = buf_puts(&b, "{\"status\":\"ok\",\"version\":\"");
    bad |= buf_json_escape(&b, AOP_VERSION, strlen(AOP_VERSION));
    bad |= buf_printf(&b, "\",\"uptimeSeconds\":%lld}", up);
    if (bad) { /* a version too long for the room: the general way */
        http_reply_json(req, 200, json_pack("{s:s, s:s, s:I}", "status", "ok", "version",
                                            AOP_VERSION, "uptimeSeconds", (json_int_t)up));
        return;
    }
    http_reply_bytes(req, 200, "application/json", b.data, b.len);
}

void api_ready(http_req *req)
{
    const app_ctx *app = http_app(req);
    int db_ok = store_ping(app->store) == AOP_OK;
    int redis_ok = !app->redis || redis_pool_ping(app->redis) == AOP_OK;
    json_t *checks = json_pack("{s:s}", "database", db_ok ? "ok" : "down");
    if (app->redis)
        json_object_set_new(checks, "redis", json_string(redis_ok ? "ok" : "down"));
    http_reply_json(req, db_ok && redis_ok ? 200 : 503,
                    json_pack("{s:s, s:o}", "status", db_ok && redis_ok ? "ok" : "unavailable",
                              "checks", checks));
}

/* With METRICS_TOKEN set, /metrics needs "Authorization: Bearer <token>". */
static int metrics_allowed(http_req *req)
{
    const char *token = http_app(req)->cfg->metrics_token;
    if (!token)
        return 1;
    const char *auth = http_header(req, "Authorization");
    if (!auth || strncmp(auth, "Bearer ", 7) != 0)
        return 0;
    return secure_str_eq(auth + 7, token);
}

static void engine_metrics(struct engine *e, buf *out)
{
    engine_stats st;
    engine_read_stats(e, &st);
    buf_printf(out,
               "# HELP aop_executions_running Executions the engine holds now.\n"
               "# TYPE aop_executions_running gauge\n"
               "aop_executions_running %lld\n"
               "# HELP aop_executions_total Executions claimed, and ended by status.\n"
               "# TYPE aop_executions_total counter\n"
               "aop_executions_total{event=\"claimed\"} %lld\n"
               "aop_executions_total{event=\"succeeded\"} %lld\n"
               "aop_executions_total{event=\"failed\"} %lld\n"
               "aop_executions_total{event=\"cancelled\"} %lld\n"
               "aop_executions_total{event=\"timed_out\"} %lld\n"
               "aop_executions_total{event=\"requeued\"} %lld\n"
               "aop_executions_total{event=\"pruned\"} %lld\n"
               "# HELP aop_node_attempts_total Node attempts, and outbound calls by kind.\n"
               "# TYPE aop_node_attempts_total counter\n"
               "aop_node_attempts_total %lld\n"
               "# TYPE aop_node_calls_total counter\n"
               "aop_node_calls_total{kind=\"http\"} %lld\n"
               "aop_node_calls_total{kind=\"llm\"} %lld\n",
               st.running, st.started, st.succeeded, st.failed, st.cancelled, st.timed_out,
               st.requeued, st.pruned, st.node_runs, st.http_calls, st.llm_calls);
    buf_printf(out,
               "# HELP aop_node_limit_refusals_total Node attempts refused by a memory budget.\n"
               "# TYPE aop_node_limit_refusals_total counter\n"
               "aop_node_limit_refusals_total{reason=\"OUTPUT_TOO_LARGE\"} %lld\n"
               "aop_node_limit_refusals_total{reason=\"MEMORY_LIMIT\"} %lld\n"
               "# HELP aop_budget_refusals_total LLM calls refused by a budget (BUDGET_EXCEEDED).\n"
               "# TYPE aop_budget_refusals_total counter\n"
               "aop_budget_refusals_total %lld\n"
               "# HELP aop_quota_refusals_total Executions refused by QUOTA_ACTIVE_EXECUTIONS "
               "(QUOTA_EXCEEDED).\n"
               "# TYPE aop_quota_refusals_total counter\n"
               "aop_quota_refusals_total %lld\n"
               "# HELP aop_execution_memory_bytes memoryBytes of the executions the engine ended.\n"
               "# TYPE aop_execution_memory_bytes histogram\n",
               st.refused_output, st.refused_memory, st.budget_refusals, st.quota_refusals);
    long long count = 0;
    for (int k = 0; k < ENGINE_MEMORY_BUCKETS; k++) {
        count += st.memory_buckets[k];
        if (k < ENGINE_MEMORY_BUCKETS - 1)
            buf_printf(out, "aop_execution_memory_bytes_bucket{le=\"%lld\"} %lld\n",
                       engine_memory_bounds[k], count);
        else
            buf_printf(out, "aop_execution_memory_bytes_bucket{le=\"+Inf\"} %lld\n", count);
    }
    buf_printf(out,
               "aop_execution_memory_bytes_sum %lld\n"
               "aop_execution_memory_bytes_count %lld\n"
               "# HELP aop_execution_memory_bytes_max The largest memoryBytes seen since start.\n"
               "# TYPE aop_execution_memory_bytes_max gauge\n"
               "aop_execution_memory_bytes_max %lld\n",
               st.memory_sum, count, st.memory_max);
}

void api_metrics(http_req *req)
{
    if (!metrics_allowed(req)) {
        http_set_header(req, "WWW-Authenticate", "Bearer");
        http_reply_error(req, AOP_ERR_UNAUTHORIZED, "A valid metrics token is required", NULL);
        return;
    }
    buf out;
    buf_init(&out, 0);
    http_routes_metrics(&out);
    long streams = 0;
    long long dropped = 0;
    live_read_stats(http_app(req)->live, &streams, &dropped);
    buf_printf(&out,
               "# HELP aop_event_streams Event streams open on this instance.\n"
               "# TYPE aop_event_streams gauge\n"
               "aop_event_streams %ld\n"
               "# HELP aop_event_streams_dropped_total Readers dropped for falling "
               "SSE_BUFFER_BYTES behind.\n"
               "# TYPE aop_event_streams_dropped_total counter\n"
               "aop_event_streams_dropped_total %lld\n",
               streams, dropped);
    cache_render_metrics(http_app(req)->cache, &out);
    lock_render_metrics(http_app(req)->locks, &out);
    if (http_app(req)->redis)
        redis_pool_render_metrics(http_app(req)->redis, &out);
    engine_metrics(http_app(req)->engine, &out);
    if (http_app(req)->vault)
        buf_printf(&out,
                   "# HELP aop_credential_decrypt_failures_total Credentials that no configured "
                   "key could decrypt.\n"
                   "# TYPE aop_credential_decrypt_failures_total counter\n"
                   "aop_credential_decrypt_failures_total %lld\n",
                   vault_failures(http_app(req)->vault));
    http_reply_bytes(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    buf_free(&out);
}

/* The OpenAPI 3.1 description of the API, as built into the binary. */
void api_openapi(http_req *req)
{
    http_reply_bytes(req, 200, "application/json", (const char *)aop_openapi_json,
                     aop_openapi_json_len);
}
