/*
 * wf_int.h - what the workflow service's files share (not for other code).
 */
#ifndef AOP_WORKFLOWS_WF_INT_H
#define AOP_WORKFLOWS_WF_INT_H

#include "workflows/workflows.h"

#define WF_GEN_KEY "wf:gen"

/* The workflow object of the contract; definition omitted when NULL. */
json_t *wf_to_json(const store_workflow *w);
/* Compact JSON text of v (taken) in the arena. */
char *wf_dump(json_t *v, size_t *len, arena *a);
/* The current list generation (0 when unknown). */
long long wf_generation(const app_ctx *app);

#endif
