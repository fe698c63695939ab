#include "store/store.h"
#include "core/clock.h"
#include "core/log.h"
#include "infra/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

store *store_open(const char *url, long long slow_ms, char *err, size_t errlen)
{
    const store_vtbl *v = NULL;
    void *h = NULL;
    if (strncmp(url, "sqlite://", 9) == 0) {
        v = &store_sqlite_vtbl;
        h = store_sqlite_open(url + 9, err, errlen);
    } else {
        snprintf(err, errlen, "DATABASE_URL: this build supports sqlite:// only");
        return NULL;
    }
    if (!h)
        return NULL;
    store *s = xcalloc(1, sizeof(*s));
    s->v = v;
    s->h = h;
    s->slow_ms = slow_ms;
    return s;
}

void store_close(store *s)
{
    if (!s)
        return;
    s->v->close(s->h);
    free(s);
}

/* Records one operation's duration and logs it when slower than slow_ms. */
static void observe(store *s, const char *op, int64_t start_ns, aop_err rc)
{
    int64_t ns = clock_mono_ns() - start_ns;
    metrics_db_observe(op, ns);
    if (ns / 1000000 >= s->slow_ms)
        log_warn("slow database operation", LF_S("op", op), LF_D("durationMs", ns / 1e6),
                 LF_S("result", err_code(rc)));
}

#define TIMED(op, call)                         \
    do {                                        \
        int64_t t0_ = clock_mono_ns();          \
        aop_err rc_ = (call);                   \
        observe(s, (op), t0_, rc_);             \
        return rc_;                             \
    } while (0)

aop_err store_ping(store *s)
{
    TIMED("ping", s->v->ping(s->h));
}

aop_err store_migrate(store *s, int *applied)
{
    TIMED("migrate", s->v->migrate(s->h, applied));
}

aop_err store_user_insert(store *s, const store_user *u)
{
    TIMED("user_insert", s->v->user_insert(s->h, u));
}

aop_err store_user_get_by_email(store *s, const char *email, store_user *out, arena *a)
{
    TIMED("user_get_by_email", s->v->user_get_by_email(s->h, email, out, a));
}

aop_err store_tx(store *s, store_tx_fn fn, void *ctx)
{
    int64_t t0 = clock_mono_ns();
    aop_err rc = s->v->begin(s->h);
    if (rc == AOP_OK) {
        rc = fn(s, ctx);
        if (rc == AOP_OK)
            rc = s->v->commit(s->h);
        if (rc != AOP_OK)
            s->v->rollback(s->h);
    }
    observe(s, "transaction", t0, rc);
    return rc;
}
