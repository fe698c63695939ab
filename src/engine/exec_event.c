/*
 * exec_event.c - the data line of execution events (exec_event.h).
 */
#include "engine/exec_event.h"
#include "core/buf.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

char *exec_event_text(const char *execution_id, const store_exec_event *ev)
{
    buf b;
    buf_init(&b, 0);
    buf_puts(&b, "{\"executionId\":\"");
    buf_json_escape(&b, execution_id, strlen(execution_id));
    if (ev->seq >= 0)
        buf_printf(&b, "\",\"seq\":%lld", ev->seq);
    else
        buf_puts(&b, "\"");
    buf_printf(&b, ",\"ts\":\"%s\"%s%s}", ev->ts, ev->members[0] ? "," : "", ev->members);
    size_t len;
    return buf_take(&b, &len);
}

char *exec_event_members(const json_t *fields)
{
    char *s = json_object_size(fields) ? json_dumps(fields, JSON_COMPACT | JSON_PRESERVE_ORDER)
                                       : NULL;
    if (!s)
        return xstrdup("");
    size_t n = strlen(s); /* "{...}": the inside */
    memmove(s, s + 1, n - 2);
    s[n - 2] = '\0';
    return s;
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
