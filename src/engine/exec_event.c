/*
 * exec_event.c - the data line of execution events (exec_event.h).
 */
#include "engine/exec_event.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

char *exec_event_text_raw(const char *execution_id, long long seq, int64_t ts_ms,
                          const char *members)
{
    char ts[25];
    clock_format_rfc3339(ts_ms, ts);
    buf b;
    buf_init(&b, 0);
    buf_puts(&b, "{\"executionId\":\"");
    buf_json_escape(&b, execution_id, strlen(execution_id));
    if (seq >= 0)
        buf_printf(&b, "\",\"seq\":%lld", seq);
    else
        buf_puts(&b, "\"");
    buf_printf(&b, ",\"ts\":\"%s\"%s%s}", ts, members && *members ? "," : "",
               members ? members : "");
    size_t len;
    return buf_take(&b, &len);
}

char *exec_event_text(const char *execution_id, long long seq, int64_t ts_ms,
                      const json_t *fields)
{
    char *rest = fields && json_object_size(fields)
                     ? json_dumps(fields, JSON_COMPACT | JSON_PRESERVE_ORDER)
                     : NULL;
    if (rest) /* "{...}" without its braces */
        rest[strlen(rest) - 1] = '\0';
    char *t = exec_event_text_raw(execution_id, seq, ts_ms, rest ? rest + 1 : NULL);
    free(rest);
    return t;
}

json_t *exec_event_usage(long long prompt, long long completion)
{
    return json_pack("{s:I, s:I, s:I}", "promptTokens", (json_int_t)prompt, "completionTokens",
                     (json_int_t)completion, "totalTokens", (json_int_t)(prompt + completion));
}

json_t *exec_event_error(const char *text)
{
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    return v ? v : json_null();
}
