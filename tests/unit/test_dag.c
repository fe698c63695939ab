/* The engine's layout of a definition: nodes, edges grouped by source, ids;
 * and the kinds table it reads. */
#include <jansson.h>
#include <string.h>

#include "engine/dag.h"
#include "engine/kinds.h"
#include "unit.h"

static dag *build(const char *text)
{
    json_t *def = json_loads(text, 0, NULL);
    char err[160] = "";
    dag *d = def ? dag_build(def, err, sizeof(err)) : NULL;
    json_decref(def);
    return d;
}

static void dag_lays_out_nodes_and_edges(void)
{
    dag *d = build("{\"nodes\": ["
                   "{\"id\": \"b\", \"type\": \"condition\", \"config\": {\"left\": 1, \"op\": \"eq\", "
                   "\"right\": 1}},"
                   "{\"id\": \"a\", \"type\": \"transform\", \"config\": {\"output\": 1}, "
                   "\"retry\": {\"maxAttempts\": 3, \"backoffMs\": 50}, \"timeoutMs\": 900},"
                   "{\"id\": \"c\", \"type\": \"delay\", \"config\": {\"ms\": 5}},"
                   "{\"id\": \"d\", \"type\": \"http\", \"config\": {\"url\": \"http://x/\"}}],"
                   "\"edges\": [{\"from\": \"a\", \"to\": \"b\"}, {\"from\": \"b\", \"to\": \"c\", "
                   "\"when\": true}, {\"from\": \"b\", \"to\": \"d\", \"when\": false}]}");
    CHECK(d != NULL);
    CHECK_INT(d->n, 4);
    CHECK_INT(d->nedges, 3);
    int a = dag_find(d, "a", 1), b = dag_find(d, "b", 1), c = dag_find(d, "c", 1);
    CHECK_INT(a, 1);
    CHECK_INT(b, 0);
    CHECK_INT(c, 2);
    CHECK_INT(dag_find(d, "dd", 2), -1);
    CHECK_INT(dag_find(d, "abc", 1), 1); /* only the first len bytes count */
    CHECK_INT(d->nodes[a].max_attempts, 3);
    CHECK_INT(d->nodes[a].backoff_ms, 50);
    CHECK_INT(d->nodes[a].timeout_ms, 900);
    CHECK_INT(d->nodes[b].max_attempts, 1);
    CHECK_INT(d->nodes[b].npred, 1);
    CHECK_INT(d->nodes[b].nout, 2);
    const dag_edge *e0 = &d->out[d->nodes[b].first_out];
    const dag_edge *e1 = &d->out[d->nodes[b].first_out + 1];
    CHECK_INT(e0->from, b);
    CHECK_INT(e0->to, c);
    CHECK_INT(e0->when, 1);
    CHECK_INT(e1->when, 0);
    CHECK_INT(d->out[d->nodes[a].first_out].when, -1);
    CHECK(!dag_is_sink(d, a));
    CHECK(dag_is_sink(d, c));
    CHECK_STR(node_kinds[d->nodes[c].kind].name, "delay");
    dag_ref(d);
    dag_unref(d);
    dag_unref(d);
}

static void dag_refuses_what_the_validator_refuses(void)
{
    CHECK(build("{\"nodes\": [{\"id\": \"a\", \"type\": \"nope\", \"config\": {}}]}") == NULL);
    CHECK(build("{\"nodes\": [{\"id\": \"a\", \"type\": \"transform\", \"config\": {\"output\": 1}}],"
                "\"edges\": [{\"from\": \"a\", \"to\": \"a\"}]}") == NULL);
}

static void dag_empty_definition(void)
{
    dag *d = build("{\"nodes\": []}");
    CHECK(d != NULL);
    CHECK_INT(d->n, 0);
    CHECK_INT(dag_find(d, "a", 1), -1);
    dag_unref(d);
}

/* Every row of the kinds table can run: inline kinds finish in start,
 * the others need a finish; names are unique and found by name. */
static void kinds_table_is_consistent(void)
{
    char names[256];
    CHECK(node_kinds_count >= 5);
    for (int k = 0; k < node_kinds_count; k++) {
        const node_kind *row = &node_kinds[k];
        CHECK(row->name && row->check && row->start);
        CHECK((row->runs == KIND_INLINE) == (row->finish == NULL));
        CHECK_INT(node_kind_find(row->name, strlen(row->name)), k);
    }
    CHECK_INT(node_kind_find("https", 4), node_kind_find("http", 4)); /* len bytes only */
    CHECK_INT(node_kind_find("htt", 3), -1);
    CHECK_INT(node_kind_find("Delay", 5), -1);
    node_kind_names(names, sizeof(names), false);
    CHECK_STR(names, "transform, condition, http, llm, delay, workflow, approval or agent");
    node_kind_names(names, sizeof(names), true);
    CHECK_STR(names, "condition or approval");
}

const unit_test dag_tests[] = {
    TEST(dag_lays_out_nodes_and_edges),
    TEST(dag_refuses_what_the_validator_refuses),
    TEST(dag_empty_definition),
    TEST(kinds_table_is_consistent),
    {NULL, NULL},
};
