#include "auth/audit.h"
#include "core/log.h"

void audit_record(const app_ctx *app, const store_audit *e)
{
    aop_err rc = store_audit_insert(app->store, e);
    log_info("audit", LF_S("action", e->action), LF_S("actorId", e->actor_id),
             LF_S("subjectId", e->subject_id), LF_S("ip", e->ip),
             LF_S("requestId", e->request_id), LF_RAW("detail", e->detail ? e->detail : "{}"));
    if (rc != AOP_OK)
        log_error("audit event not stored", LF_S("action", e->action),
                  LF_S("result", err_code(rc)));
}
