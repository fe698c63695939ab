/*
 * dag.c - lays a definition out as arrays: nodes, their outgoing edges
 * grouped per source, and an id index. The stored definition is validated
 * again (once per cached version): the engine refuses what it cannot use
 * rather than guess.
 */
#include "engine/dag.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "engine/definition.h"
#include "engine/kinds.h"

static long long int_or(const json_t *o, const char *key, long long def)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

static int by_id_cmp(const void *a, const void *b, void *ctx)
{
    const dag *d = ctx;
    return strcmp(d->nodes[*(const int *)a].id, d->nodes[*(const int *)b].id);
}

static int read_nodes(dag *d, const json_t *nodes, char *err, size_t errlen)
{
    size_t i;
    const json_t *n;
    json_array_foreach(nodes, i, n) {
        dag_node *dn = &d->nodes[i];
        const json_t *type = json_object_get(n, "type");
        dn->id = json_string_value(json_object_get(n, "id"));
        dn->kind = json_is_string(type)
                       ? node_kind_find(json_string_value(type), json_string_length(type))
                       : -1;
        dn->config = json_object_get(n, "config");
        if (!dn->id || dn->kind < 0 || !json_is_object(dn->config)) {
            snprintf(err, errlen, "node %zu is not valid", i);
            return -1;
        }
        const json_t *retry = json_object_get(n, "retry");
        dn->max_attempts = (int)int_or(retry, "maxAttempts", 1);
        if (dn->max_attempts < 1)
            dn->max_attempts = 1;
        dn->backoff_ms = int_or(retry, "backoffMs", 0);
        dn->timeout_ms = int_or(n, "timeoutMs", 0);
    }
    return 0;
}

static int read_edges(dag *d, const json_t *edges, char *err, size_t errlen)
{
    size_t ne = json_array_size(edges), i;
    const json_t *e;
    int *count = xcalloc((size_t)d->n + 1, sizeof(int));
    dag_edge *tmp = xcalloc(ne ? ne : 1, sizeof(dag_edge));
    json_array_foreach(edges, i, e) {
        const char *from = json_string_value(json_object_get(e, "from"));
        const char *to = json_string_value(json_object_get(e, "to"));
        int f = from ? dag_find(d, from, strlen(from)) : -1;
        int t = to ? dag_find(d, to, strlen(to)) : -1;
        if (f < 0 || t < 0) {
            snprintf(err, errlen, "edge %zu names an unknown node", i);
            free(count);
            free(tmp);
            return -1;
        }
        const json_t *w = json_object_get(e, "when");
        tmp[i] = (dag_edge){f, t, json_is_boolean(w) ? json_is_true(w) : -1};
        count[f + 1]++;
        d->nodes[t].npred++;
    }
    for (int k = 0; k < d->n; k++) {
        d->nodes[k].first_out = count[k];
        d->nodes[k].nout = count[k + 1];
        count[k + 1] += count[k];
    }
    d->out = xcalloc(ne ? ne : 1, sizeof(dag_edge));
    d->nedges = (int)ne;
    for (size_t k = 0; k < ne; k++)
        d->out[count[tmp[k].from]++] = tmp[k]; /* count[] now the fill cursor */
    free(count);
    free(tmp);
    return 0;
}

dag *dag_build(json_t *definition, char *err, size_t errlen)
{
    json_t *probs = json_array();
    int bad = definition_validate(definition, probs);
    json_decref(probs);
    if (bad != 0) {
        snprintf(err, errlen, "the workflow's definition is not valid");
        return NULL;
    }
    const json_t *nodes = json_object_get(definition, "nodes");
    dag *d = xcalloc(1, sizeof(*d));
    d->root = json_incref(definition);
    d->n = (int)json_array_size(nodes);
    d->nodes = xcalloc(d->n ? (size_t)d->n : 1, sizeof(dag_node));
    d->by_id = xcalloc(d->n ? (size_t)d->n : 1, sizeof(int));
    d->refs = 1;
    if (read_nodes(d, nodes, err, errlen) < 0)
        goto fail;
    for (int i = 0; i < d->n; i++)
        d->by_id[i] = i;
    qsort_r(d->by_id, (size_t)d->n, sizeof(int), by_id_cmp, d);
    if (read_edges(d, json_object_get(definition, "edges"), err, errlen) < 0)
        goto fail;
    return d;
fail:
    dag_unref(d);
    return NULL;
}

int dag_find(const dag *d, const char *id, size_t len)
{
    int lo = 0, hi = d->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const char *s = d->nodes[d->by_id[mid]].id;
        int c = strncmp(s, id, len);
        if (c == 0 && s[len] != '\0')
            c = 1;
        if (c == 0)
            return d->by_id[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

bool dag_is_sink(const dag *d, int i)
{
    return d->nodes[i].nout == 0;
}

void dag_ref(dag *d)
{
    __atomic_add_fetch(&d->refs, 1, __ATOMIC_SEQ_CST);
}

void dag_unref(dag *d)
{
    if (!d || __atomic_sub_fetch(&d->refs, 1, __ATOMIC_SEQ_CST) > 0)
        return;
    json_decref(d->root);
    free(d->nodes);
    free(d->out);
    free(d->by_id);
    free(d);
}
