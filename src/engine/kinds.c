/*
 * kinds.c - the table of node kinds (kinds.h), and what every kind uses to
 * report a failed attempt.
 *
 * To add a kind: a row here, its functions' prototypes in kinds.h, and its
 * file in src/engine/kinds/. Order matters only for messages that list
 * the kinds.
 */
#include "engine/kinds.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine_int.h"

/* name, branch, check, templates, runs, start, finish */
const node_kind node_kinds[] = {
    {"transform", NULL, kind_transform_check, kind_transform_templates, KIND_INLINE,
     kind_transform_start, NULL},
    {"condition", kind_condition_branch, kind_condition_check, kind_condition_templates,
     KIND_INLINE, kind_condition_start, NULL},
    {"http", NULL, kind_http_check, kind_http_templates, KIND_CALL, kind_http_start,
     kind_http_finish},
    {"llm", NULL, kind_llm_check, kind_llm_templates, KIND_CALL, kind_llm_start,
     kind_llm_finish},
    {"delay", NULL, kind_delay_check, kind_delay_templates, KIND_TIMER, kind_delay_start,
     kind_delay_finish},
    {"workflow", NULL, kind_workflow_check, kind_workflow_templates, KIND_TIMER,
     kind_workflow_start, kind_workflow_finish},
    {"approval", kind_approval_branch, kind_approval_check, kind_approval_templates,
     KIND_INLINE, kind_approval_start, NULL},
    {"agent", NULL, kind_agent_check, kind_agent_templates, KIND_CALL, kind_agent_start,
     kind_agent_finish},
};

const int node_kinds_count = (int)(sizeof(node_kinds) / sizeof(node_kinds[0]));

int node_kind_find(const char *name, size_t len)
{
    for (int k = 0; k < node_kinds_count; k++)
        if (strlen(node_kinds[k].name) == len && memcmp(node_kinds[k].name, name, len) == 0)
            return k;
    return -1;
}

void node_kind_names(char *out, size_t outlen, bool branching)
{
    int total = 0, done = 0;
    size_t used = 0;
    for (int k = 0; k < node_kinds_count; k++)
        total += !branching || node_kinds[k].branch;
    out[0] = '\0';
    for (int k = 0; k < node_kinds_count && used < outlen; k++) {
        if (branching && !node_kinds[k].branch)
            continue;
        const char *sep = done == 0 ? "" : done == total - 1 ? " or " : ", ";
        int n = snprintf(out + used, outlen - used, "%s%s", sep, node_kinds[k].name);
        used += n > 0 ? (size_t)n : 0;
        done++;
    }
}

void outcome_fail(node_outcome *o, const char *code, bool retryable, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->message, sizeof(o->message), fmt, ap);
    va_end(ap);
    o->ok = false;
    o->code = code;
    o->retryable = retryable;
}
