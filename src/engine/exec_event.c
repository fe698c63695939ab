/*
 * exec_event.c - the data line of execution events (exec_event.h).
 */
#include "engine/exec_event.h"
#include "core/clock.h"
#include "core/mem.h"

#include <string.h>

char *exec_event_text(const char *execution_id, long long seq, int64_t ts_ms, json_t *fields)
{
    char ts[25];
    clock_format_rfc3339(ts_ms, ts);
    json_t *o = json_object();
    json_object_set_new(o, "executionId", json_string(execution_id));
    if (seq >= 0)
        json_object_set_new(o, "seq", json_integer(seq));
    json_object_set_new(o, "ts", json_string(ts));
    const char *k;
    json_t *v;
    json_object_foreach(fields, k, v)
        json_object_set(o, k, v);
    json_decref(fields);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s ? s : xstrdup("{}");
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
