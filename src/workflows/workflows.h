/*
 * workflows.h - the workflow service: who may see and change a workflow,
 * its writes (serialised per workflow, versioned), and its cached reads.
 *
 * Access (API.md, "Workflows"): admins read and write every workflow; the
 * owner and the editors read and write it; the viewers read it; a user whose
 * role is viewer never writes, whatever the workflow says. A workflow the
 * caller may not read is AOP_ERR_NOT_FOUND, one it may read but not change
 * AOP_ERR_FORBIDDEN. Only the owner and admins change permissions.
 *
 * Writes (DESIGN.md, "Consistency rules"): an update takes the workflow's
 * lock (TTL WF_LOCK_TTL_MS, waiting at most LOCK_WAIT_MS, else
 * AOP_ERR_RESOURCE_LOCKED), then, in one transaction, reads the row, checks
 * access and the client's version, writes the row with version + 1 under
 * "WHERE version = <read>" and appends the new state to the version
 * history. The version check is the real guard; the lock only keeps
 * writers from colliding. After the commit the cached item is re-keyed and
 * the list generation bumped, then the lock is released.
 *
 * Reads go through the cache port: a workflow (10 min) as an item of
 * namespace "wf" (infra/cache_item.h), lists (5 min) and the summary (1 h)
 * under keys holding the generation "wf:gen", which every committed write
 * bumps. Access is decided on every request from the cached owner and
 * permission lists; list keys name the caller (or "every workflow" for
 * admins), so a list never shows what its caller may not read.
 *
 * JSON text handed out is from the arena.
 */
#ifndef AOP_WORKFLOWS_WORKFLOWS_H
#define AOP_WORKFLOWS_WORKFLOWS_H

#include <jansson.h>
#include <stdbool.h>

#include "app.h"

#define WF_LOCK_TTL_MS 15000
#define WF_TTL_MS (10LL * 60 * 1000)
#define WF_LIST_TTL_MS (5LL * 60 * 1000)
#define WF_SUMMARY_TTL_MS (60LL * 60 * 1000)

typedef struct {
    const char *id; /* the caller's user id */
    bool admin;     /* role admin */
    bool viewer;    /* role viewer: reads only */
} wf_caller;

typedef enum { WF_ACCESS_NONE, WF_ACCESS_READ, WF_ACCESS_WRITE } wf_access;

/* One workflow as its caller sees it. */
typedef struct {
    char *json;    /* the workflow object, compact */
    size_t len;
    wf_access access;
    bool may_share; /* owner or admin: may change permissions */
    long long version;
    char id[UUID_STR_LEN];
    char owner_id[UUID_STR_LEN];
} wf_view;

/* Validated input of a create or an update; NULL members were absent.
 * JSON members are borrowed. */
typedef struct {
    const char *name, *description, *status;
    const json_t *tags, *definition, *settings;
    const json_t *editors, *viewers; /* update only */
    bool has_version;
    long long version;               /* the version the client edited */
    /* where the definition's credential problems go (credentials.h): a
     * JSON array; the write is then AOP_ERR_VALIDATION */
    json_t *problems;
} wf_input;

/* The workflow id as caller c sees it; AOP_ERR_NOT_FOUND when absent,
 * deleted, or not readable by c. */
aop_err workflows_view(const app_ctx *app, const wf_caller *c, const char *id, wf_view *out,
                       arena *a);

/* workflows_view with json {status, settings} alone: what starting an
 * execution reads. Its cached copy outlives the ends of executions, which
 * change the full view's analytics. */
aop_err workflows_brief(const app_ctx *app, const wf_caller *c, const char *id, wf_view *out,
                        arena *a);

/* workflows_view for an access check alone: AOP_OK when c may read the
 * workflow (and write it, when write), AOP_ERR_NOT_FOUND when c may not
 * read it, AOP_ERR_FORBIDDEN when c may read but not write. */
aop_err workflows_reach(const app_ctx *app, const wf_caller *c, const char *id, bool write,
                        arena *a);

/* Whether the caller of v (from workflows_view) may send an update; sharing
 * when it carries permissions. AOP_OK, AOP_ERR_NOT_FOUND or
 * AOP_ERR_FORBIDDEN; workflows_update applies the same rule again to the row
 * it reads inside its transaction. */
aop_err workflows_may_update(const wf_view *v, bool sharing);

/* Creates a workflow owned by c (version 1, one history entry). A
 * definition naming credentials that are not c's, or of a type its node
 * cannot send, is AOP_ERR_VALIDATION with in->problems filled (the same
 * for updates, by the workflow's owner, and for duplicates). */
aop_err workflows_create(const app_ctx *app, const wf_caller *c, const wf_input *in,
                         wf_view *out, arena *a);

/* Applies the present members of in as one new version. Errors: NOT_FOUND,
 * FORBIDDEN (no write access, or permissions by neither owner nor admin),
 * VERSION_CONFLICT, RESOURCE_LOCKED, UNAVAILABLE. */
aop_err workflows_update(const app_ctx *app, const wf_caller *c, const char *id,
                         const wf_input *in, wf_view *out, arena *a);

/* Soft delete (the route admits admins only); history and executions stay. */
aop_err workflows_delete(const app_ctx *app, const wf_caller *c, const char *id);

/* A copy owned by c of src, which workflows_view gave c (so c may read it):
 * name (NULL: "<name> (copy)", the source name shortened to fit 200
 * characters), version 1, no permissions, zero analytics. Credentials the
 * definition names must be c's (problems, AOP_ERR_VALIDATION). */
aop_err workflows_duplicate(const app_ctx *app, const wf_caller *c, const wf_view *src,
                            const char *name, json_t *problems, wf_view *out, arena *a);

/* The list response text (data and pagination) of the workflows c may read
 * matching q (q->reader is set here). page numbers the page of q. */
aop_err workflows_list(const app_ctx *app, const wf_caller *c, store_wf_query *q,
                       long long page, char **json, size_t *len, arena *a);

/* A page of id's history, newest first, after a read check. */
aop_err workflows_versions(const app_ctx *app, const wf_caller *c, const char *id,
                           long long offset, long long limit, store_wf_version **out, int *n,
                           long long *total, arena *a);

/* The workflow as it was at version (the current state for the current
 * version); AOP_ERR_NOT_FOUND when there is no such version. */
aop_err workflows_version(const app_ctx *app, const wf_caller *c, const char *id,
                          long long version, char **json, size_t *len, arena *a);

/* The admin summary text: totals, byStatus, createdLast7Days, top lists. */
aop_err workflows_summary(const app_ctx *app, char **json, size_t *len, arena *a);

/* To call after every committed change of workflow id made elsewhere (e.g.
 * its analytics counters): drops its cached copy and every cached list. */
void workflows_changed(const app_ctx *app, const char *id);
/* workflows_changed for a change of the analytics alone (an execution's
 * end): the brief view stays cached. */
void workflows_counted(const app_ctx *app, const char *id);

#endif
