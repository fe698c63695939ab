/* Unit tests of the log encoder (redaction, escaping, rotation, request id)
 * and of the metrics exposition. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "infra/metrics.h"
#include "unit.h"

/* Reads a whole file into a malloc'd string ("" when absent). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    buf b;
    buf_init(&b, 0);
    buf_puts(&b, "");
    if (f) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            buf_append(&b, chunk, n);
        fclose(f);
    }
    return buf_take(&b, NULL);
}

static void restore_unit_log(void)
{
    log_setup(LOG_DEBUG, "build/test/unit.log", 0, 1);
}

/* Points the log at dir/name, dir a fresh temporary directory (dir must be a
 * "/tmp/aop-log-XXXXXX" buffer). Returns 0, or -1 when nothing was set up. */
static int log_to_temp(char *dir, const char *name, char *path, size_t pathlen,
                       size_t max_bytes, int files)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, pathlen, "%s/%s", dir, name);
    return log_setup(LOG_INFO, path, max_bytes, files);
}

/* Puts the unit log back, returns what path holds (free it), and removes
 * path and dir (other files in dir must be gone already). */
static char *log_collect(const char *dir, const char *path)
{
    restore_unit_log();
    char *text = slurp(path);
    unlink(path);
    rmdir(dir);
    return text;
}

static void log_redacts_secrets_and_escapes(void)
{
    char dir[] = "/tmp/aop-log-XXXXXX", path[64];
    CHECK_INT(log_to_temp(dir, "a.log", path, sizeof(path), 0, 1), 0);
    log_info("hello \"world\"\n", LF_S("password", "hunter2"), LF_S("Authorization", "Bearer abc"),
             LF_S("jwtSecret", "s3"), LF_S("apiKey", "k1"), LF_S("user", "ann"), LF_I("n", 7),
             LF_B("ok", 1), LF_S("nothing", NULL));
    log_debug("not written at info");
    char *text = log_collect(dir, path);
    int leaked = strstr(text, "hunter2") || strstr(text, "Bearer abc") || strstr(text, "s3\"") ||
                 strstr(text, "k1");
    int shape = strstr(text, "\"msg\":\"hello \\\"world\\\"\\n\"") && strstr(text, "\"user\":\"ann\"") &&
                strstr(text, "\"n\":7") && strstr(text, "\"ok\":true") &&
                strstr(text, "\"nothing\":null") && strstr(text, "\"password\":\"[REDACTED]\"");
    int one_line = strchr(text, '\n') == text + strlen(text) - 1;
    free(text);
    CHECK(!leaked);
    CHECK(shape);
    CHECK(one_line);
}

static void log_rotates_by_size(void)
{
    char dir[] = "/tmp/aop-log-XXXXXX", path[64], p1[70], p2[70], p3[70];
    CHECK_INT(log_to_temp(dir, "r.log", path, sizeof(path), 500, 2), 0);
    snprintf(p1, sizeof(p1), "%s.1", path);
    snprintf(p2, sizeof(p2), "%s.2", path);
    snprintf(p3, sizeof(p3), "%s.3", path);
    for (int i = 0; i < 40; i++)
        log_info("line", LF_I("i", i), LF_S("pad", "0123456789012345678901234567890123456789"));
    int has1 = access(p1, F_OK) == 0, has2 = access(p2, F_OK) == 0, has3 = access(p3, F_OK) == 0;
    char *older = slurp(p1), *oldest = slurp(p2);
    unlink(p1);
    unlink(p2);
    char *last = log_collect(dir, path);
    /* A file is rotated right after the line that takes it past the limit. */
    int newest_kept = strstr(last, "\"i\":39") || strstr(older, "\"i\":39");
    int sizes_ok = strlen(older) < 500 + 200 && strlen(oldest) < 500 + 200 && oldest[0] != '\0';
    int order_ok = !strstr(oldest, "\"i\":39") && !strstr(older, "\"i\":0,");
    free(last);
    free(older);
    free(oldest);
    CHECK(has1);
    CHECK(has2);
    CHECK(!has3);
    CHECK(newest_kept);
    CHECK(sizes_ok);
    CHECK(order_ok);
}

static void log_lines_carry_thread_request_id(void)
{
    char dir[] = "/tmp/aop-log-XXXXXX", path[64];
    CHECK_INT(log_to_temp(dir, "id.log", path, sizeof(path), 0, 1), 0);
    log_set_request_id("req-42");
    log_info("inside");
    log_info("explicit", LF_S("requestId", "other"));
    log_set_request_id(NULL);
    log_info("outside");
    char *text = log_collect(dir, path);
    int inside = strstr(text, "\"msg\":\"inside\",\"requestId\":\"req-42\"") != NULL;
    int explicit_once = strstr(text, "\"requestId\":\"other\"}") != NULL;
    char *out = strstr(text, "\"msg\":\"outside\"");
    int outside_clean = out && strncmp(out, "\"msg\":\"outside\"}", 16) == 0;
    free(text);
    CHECK(inside);
    CHECK(explicit_once);
    CHECK(outside_clean);
}

static void metrics_render_counts_and_histograms(void)
{
    static metrics_route r = {.pattern = "/unit/:id"};
    metrics_init("9.9.9", "abc123");
    metrics_route_observe(&r, "GET", 200, 2000000);     /* 2 ms */
    metrics_route_observe(&r, "GET", 200, 30000000);    /* 30 ms */
    metrics_route_observe(&r, "POST", 404, 7000000000); /* 7 s: only +Inf */
    metrics_route_observe(&r, "BREW", 599, 1000);
    metrics_db_observe("unit_op", 1000000);
    metrics_route *all[] = {&r};
    buf out;
    buf_init(&out, 0);
    metrics_render(&out, all, 1);
    const char *want[] = {
        "aop_http_requests_total{method=\"GET\",route=\"/unit/:id\",status=\"200\"} 2\n",
        "aop_http_requests_total{method=\"POST\",route=\"/unit/:id\",status=\"404\"} 1\n",
        "aop_http_requests_total{method=\"other\",route=\"/unit/:id\",status=\"other\"} 1\n",
        "aop_http_request_duration_seconds_bucket{route=\"/unit/:id\",le=\"0.0025\"} 2\n",
        "aop_http_request_duration_seconds_bucket{route=\"/unit/:id\",le=\"0.05\"} 3\n",
        "aop_http_request_duration_seconds_bucket{route=\"/unit/:id\",le=\"5\"} 3\n",
        "aop_http_request_duration_seconds_bucket{route=\"/unit/:id\",le=\"+Inf\"} 4\n",
        "aop_http_request_duration_seconds_count{route=\"/unit/:id\"} 4\n",
        "aop_db_operation_duration_seconds_count{op=\"unit_op\"} 1\n",
        "aop_build_info{version=\"9.9.9\",commit=\"abc123\"} 1\n",
        "process_resident_memory_bytes ",
        "process_open_fds ",
    };
    const char *missing = NULL;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]) && !missing; i++)
        if (!strstr(out.data, want[i]))
            missing = want[i];
    buf_free(&out);
    CHECK_STR(missing ? missing : "", "");
}

const unit_test log_metrics_tests[] = {
    TEST(log_redacts_secrets_and_escapes),
    TEST(log_rotates_by_size),
    TEST(log_lines_carry_thread_request_id),
    TEST(metrics_render_counts_and_histograms),
    {NULL, NULL},
};
