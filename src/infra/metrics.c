#include "infra/metrics.h"
#include "core/clock.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Upper bounds in seconds; +Inf is implied after the last. */
static const double bucket_le[METRICS_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,   0.25,   0.5,   1,    2.5,   5};

static const char *const method_names[METRICS_METHODS] = {"GET", "HEAD",    "POST", "PUT",
                                                          "PATCH", "DELETE", "OPTIONS", "other"};

/* The statuses the server answers with; anything else counts under the last slot. */
static const int status_codes[METRICS_STATUSES - 1] = {200, 201, 202, 204, 301, 304, 400, 401,
                                                       403, 404, 405, 408, 409, 413, 414, 415,
                                                       422, 429, 431, 500, 502, 503, 504};

/* Distinct store operation names timed (about 100 today, with room). */
#define DB_OPS_MAX 160

static struct {
    const char *version;
    const char *commit;
    double start_time;
    pthread_mutex_t db_mu;
    int db_n;
    const char *db_names[DB_OPS_MAX];
    metrics_hist db[DB_OPS_MAX];
} M = {.db_mu = PTHREAD_MUTEX_INITIALIZER};

void metrics_init(const char *version, const char *commit)
{
    M.version = version;
    M.commit = commit;
    M.start_time = (double)clock_now_ms() / 1000.0;
}

static int method_slot(const char *m)
{
    for (int i = 0; i < METRICS_METHODS - 1; i++)
        if (strcmp(m, method_names[i]) == 0)
            return i;
    return METRICS_METHODS - 1;
}

static int status_slot(int status)
{
    for (int i = 0; i < METRICS_STATUSES - 1; i++)
        if (status_codes[i] == status)
            return i;
    return METRICS_STATUSES - 1;
}

static void add(uint64_t *p, uint64_t v)
{
    __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static uint64_t get(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void hist_observe(metrics_hist *h, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    double s = (double)ns / 1e9;
    add(&h->count, 1);
    add(&h->sum_ns, (uint64_t)ns);
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        if (s <= bucket_le[i]) {
            add(&h->buckets[i], 1);
            break;
        }
    }
}

void metrics_route_observe(metrics_route *r, const char *method, int status, int64_t ns)
{
    add(&r->requests[method_slot(method)][status_slot(status)], 1);
    hist_observe(&r->latency, ns);
}

/* Finds or adds op's slot; the table only grows, so readers need no lock
 * beyond the acquire load of db_n. */
static metrics_hist *db_slot(const char *op)
{
    int n = __atomic_load_n(&M.db_n, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        if (M.db_names[i] == op || strcmp(M.db_names[i], op) == 0)
            return &M.db[i];
    metrics_hist *h = NULL;
    pthread_mutex_lock(&M.db_mu);
    for (int i = 0; i < M.db_n; i++)
        if (strcmp(M.db_names[i], op) == 0)
            h = &M.db[i];
    if (!h && M.db_n < DB_OPS_MAX) {
        M.db_names[M.db_n] = op;
        h = &M.db[M.db_n];
        __atomic_store_n(&M.db_n, M.db_n + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&M.db_mu);
    return h;
}

void metrics_db_observe(const char *op, int64_t ns)
{
    metrics_hist *h = db_slot(op);
    if (h)
        hist_observe(h, ns);
}

static void render_hist(buf *out, const char *name, const char *label, const char *value,
                        const metrics_hist *h)
{
    uint64_t cum = 0;
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        cum += get(&h->buckets[i]);
        buf_printf(out, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, value,
                   bucket_le[i], (unsigned long long)cum);
    }
    uint64_t count = get(&h->count);
    buf_printf(out, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, value,
               (unsigned long long)count);
    buf_printf(out, "%s_sum{%s=\"%s\"} %.9f\n", name, label, value,
               (double)get(&h->sum_ns) / 1e9);
    buf_printf(out, "%s_count{%s=\"%s\"} %llu\n", name, label, value, (unsigned long long)count);
}

static void render_http(buf *out, metrics_route *const *routes, int n)
{
    buf_puts(out, "# HELP aop_http_requests_total HTTP requests by method, route pattern and status.\n"
                  "# TYPE aop_http_requests_total counter\n");
    for (int r = 0; r < n; r++)
        for (int m = 0; m < METRICS_METHODS; m++)
            for (int s = 0; s < METRICS_STATUSES; s++) {
                uint64_t v = get(&routes[r]->requests[m][s]);
                if (!v)
                    continue;
                char st[8];
                if (s < METRICS_STATUSES - 1)
                    snprintf(st, sizeof(st), "%d", status_codes[s]);
                else
                    snprintf(st, sizeof(st), "other");
                buf_printf(out, "aop_http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} %llu\n",
                           method_names[m], routes[r]->pattern, st, (unsigned long long)v);
            }
    buf_puts(out, "# HELP aop_http_request_duration_seconds HTTP request latency by route pattern.\n"
                  "# TYPE aop_http_request_duration_seconds histogram\n");
    for (int r = 0; r < n; r++)
        if (get(&routes[r]->latency.count))
            render_hist(out, "aop_http_request_duration_seconds", "route", routes[r]->pattern,
                        &routes[r]->latency);
}

static void render_db(buf *out)
{
    buf_puts(out, "# HELP aop_db_operation_duration_seconds Database operation latency by operation.\n"
                  "# TYPE aop_db_operation_duration_seconds histogram\n");
    int n = __atomic_load_n(&M.db_n, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        render_hist(out, "aop_db_operation_duration_seconds", "op", M.db_names[i], &M.db[i]);
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the descriptor opendir holds */
}

static void render_process(buf *out)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long vsize_pages = 0, rss_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &vsize_pages, &rss_pages) != 2)
            vsize_pages = rss_pages = 0;
        fclose(f);
    }
    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    struct rlimit rl;
    long long max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long long)rl.rlim_cur : -1;

    buf_printf(out,
               "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
               "# TYPE process_resident_memory_bytes gauge\n"
               "process_resident_memory_bytes %llu\n"
               "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
               "# TYPE process_virtual_memory_bytes gauge\n"
               "process_virtual_memory_bytes %llu\n"
               "# HELP process_cpu_seconds_total Total user and system CPU time in seconds.\n"
               "# TYPE process_cpu_seconds_total counter\n"
               "process_cpu_seconds_total %.6f\n"
               "# HELP process_open_fds Number of open file descriptors.\n"
               "# TYPE process_open_fds gauge\n"
               "process_open_fds %ld\n"
               "# HELP process_max_fds Maximum number of open file descriptors.\n"
               "# TYPE process_max_fds gauge\n"
               "process_max_fds %lld\n"
               "# HELP process_start_time_seconds Start time of the process since the Unix epoch in seconds.\n"
               "# TYPE process_start_time_seconds gauge\n"
               "process_start_time_seconds %.3f\n",
               rss_pages * (unsigned long long)page, vsize_pages * (unsigned long long)page, cpu,
               count_fds(), max_fds, M.start_time);
}

void metrics_render(buf *out, metrics_route *const *routes, int n)
{
    render_http(out, routes, n);
    render_db(out);
    render_process(out);
    buf_printf(out,
               "# HELP aop_build_info Build information.\n"
               "# TYPE aop_build_info gauge\n"
               "aop_build_info{version=\"%s\",commit=\"%s\"} 1\n",
               M.version ? M.version : "", M.commit ? M.commit : "");
}
