/*
 * dag.h - a validated workflow definition, laid out for running it.
 *
 * Built once per (workflow, version) from the definition JSON that
 * definition_validate accepted, then shared read-only by every execution of
 * that version (reference counted). Node configs stay in the JSON tree the
 * dag holds.
 */
#ifndef AOP_ENGINE_DAG_H
#define AOP_ENGINE_DAG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *id;        /* borrowed from the JSON tree */
    int kind;              /* its row in node_kinds (kinds.h) */
    const json_t *config;
    int max_attempts;      /* retry.maxAttempts, default 1 */
    long long backoff_ms;  /* retry.backoffMs, default 0 */
    long long timeout_ms;  /* timeoutMs, 0 when absent */
    int first_out, nout;   /* its outgoing edges: out[first_out .. first_out + nout) */
    int npred;             /* incoming edges */
} dag_node;

typedef struct {
    int from, to;
    int when; /* -1: none, 0: false, 1: true */
} dag_edge;

typedef struct {
    json_t *root;    /* the definition (owned) */
    dag_node *nodes;
    int n;
    dag_edge *out;   /* edges grouped by their source node */
    int nedges;
    int *by_id;      /* node indexes sorted by id, for dag_find */
    char owner_id[37]; /* the workflow's owner: credentials are its own */
    int refs;        /* atomic */
} dag;

/* The dag of definition (a reference is taken on it); NULL with a message
 * when it is not a valid definition. */
dag *dag_build(json_t *definition, char *err, size_t errlen);
/* Index of node id[0..len), or -1. */
int dag_find(const dag *d, const char *id, size_t len);
bool dag_is_sink(const dag *d, int i);
void dag_ref(dag *d);
void dag_unref(dag *d);

#endif
