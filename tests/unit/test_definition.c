/* Unit tests of workflow definition validation (src/engine/definition.c).
 * JSON in these tests is written with ' for " to keep it readable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/definition.h"
#include "unit.h"

/* The problem of a delay ms that is a string but not one placeholder. */
#define DELAY_MS_STRING(id)                                                               \
    "node \"" id "\": config.ms must be an integer from 0 to 86400000, or a string that is " \
    "exactly one placeholder such as \"{{input.ms}}\""

/* Parses text with ' standing for ". NULL on a typo in the test. */
static json_t *parse(const char *text)
{
    size_t n = strlen(text);
    char *copy = malloc(n + 1);
    json_error_t e;
    for (size_t i = 0; i <= n; i++)
        copy[i] = text[i] == '\'' ? '"' : text[i];
    json_t *v = json_loads(copy, JSON_DECODE_ANY, &e);
    if (!v)
        printf("  test JSON: %s at %d: %s\n", e.text, e.position, copy);
    free(copy);
    return v;
}

/* Validates def (taken) and returns the details (caller decrefs); *count
 * receives the return value. Prints the problems, to help when a check fails. */
static json_t *validate_take(json_t *def, int *count)
{
    json_t *details = json_array();
    *count = definition_validate(def, details);
    if (getenv("DEF_TEST_VERBOSE")) {
        char *s = json_dumps(details, JSON_INDENT(1));
        printf("%s\n", s);
        free(s);
    }
    json_decref(def);
    return details;
}

static json_t *validate_text(const char *text, int *count)
{
    return validate_take(parse(text), count);
}

/* 1 when details holds {field, message} exactly. */
static int has(const json_t *details, const char *field, const char *message)
{
    for (size_t i = 0; i < json_array_size(details); i++) {
        const json_t *p = json_array_get(details, i);
        if (strcmp(json_string_value(json_object_get(p, "field")), field) == 0 &&
            strcmp(json_string_value(json_object_get(p, "message")), message) == 0)
            return 1;
    }
    printf("  missing {%s: %s} in:\n", field, message);
    for (size_t i = 0; i < json_array_size(details); i++) {
        const json_t *p = json_array_get(details, i);
        printf("    {%s: %s}\n", json_string_value(json_object_get(p, "field")),
               json_string_value(json_object_get(p, "message")));
    }
    return 0;
}

/* Validates text, expecting exactly one problem {field, message}. */
static int one_problem(const char *text, const char *field, const char *message)
{
    int n;
    json_t *d = validate_text(text, &n);
    int ok = n == 1 && (int)json_array_size(d) == 1 && has(d, field, message);
    if (n != 1)
        has(d, field, message); /* prints what came instead */
    json_decref(d);
    return ok;
}

/* 1 when text is a valid definition; otherwise prints its problems. */
static int valid(const char *text)
{
    int n;
    json_t *d = validate_text(text, &n);
    if (n)
        has(d, "(none)", "(none)");
    json_decref(d);
    return n == 0;
}

/* A node of each type, wired and referring to one another as the engine would run them. */
static const char *const realistic =
    "{'nodes': ["
    " {'id': 'start', 'type': 'transform', 'name': 'Prepare', 'position': {'x': 10, 'y': 20},"
    "  'config': {'output': {'q': '{{ input.query }}', 'n': '{{input.limit}}',"
    "             'static': [1, 2.5, null, {'x': true}], 'text': 'a }} b'}}},"
    " {'id': 'check', 'type': 'condition',"
    "  'config': {'left': '{{nodes.start.output.n}}', 'op': 'gt', 'right': 0, 'ui': 'x'}},"
    " {'id': 'fetch', 'type': 'http', 'retry': {'maxAttempts': 3, 'backoffMs': 500},"
    "  'timeoutMs': 10000, 'config': {'method': 'POST',"
    "  'url': 'https://api.example.com/search?q={{nodes.start.output.q}}',"
    "  'headers': {'Authorization': 'Bearer {{input.token}}', 'Content-Type': 'application/json'},"
    "  'body': {'query': '{{nodes.start.output.q}}', 'items': ['{{input.items.0}}', 7]},"
    "  'timeoutMs': 5000}},"
    " {'id': 'summarize', 'type': 'llm', 'name': 'R\xc3\xa9sum\xc3\xa9 \xe2\x9c\x93',"
    "  'config': {'model': 'gpt-4o-mini', 'temperature': 0.2, 'maxTokens': 500, 'messages': ["
    "   {'role': 'system', 'content': 'You summarise.'},"
    "   {'role': 'user', 'content': 'Summarise: {{nodes.fetch.output.body}} for {{input.user}}'}]}},"
    " {'id': 'wait', 'type': 'delay', 'config': {'ms': 1000}},"
    " {'id': 'fallback', 'type': 'transform', 'config': {'output': '{{nodes.check.output}}'}},"
    " {'id': 'web-get_2', 'type': 'http', 'config': {'url': '{{input.url}}'}}"
    "],"
    "'edges': ["
    " {'from': 'start', 'to': 'check'},"
    " {'from': 'check', 'to': 'fetch', 'when': true, 'label': 'yes'},"
    " {'from': 'check', 'to': 'wait', 'when': false},"
    " {'from': 'wait', 'to': 'fallback'},"
    " {'from': 'fetch', 'to': 'summarize'}"
    "],"
    "'layout': {'zoom': 1.5}}";

static void def_realistic_definition_is_valid(void)
{
    CHECK(valid(realistic));
    CHECK(valid("{'nodes': []}"));
    CHECK(valid("{'nodes': [], 'edges': []}"));
}

static void def_must_be_an_object(void)
{
    CHECK(one_problem("[]", "definition", "definition must be an object"));
    CHECK(one_problem("'x'", "definition", "definition must be an object"));
    json_t *d = json_array();
    CHECK_INT(definition_validate(NULL, d), 1);
    json_decref(d);
}

static void def_nodes_and_edges_shape(void)
{
    CHECK(one_problem("{}", "definition.nodes", "nodes is required"));
    CHECK(one_problem("{'nodes': null}", "definition.nodes", "nodes is required"));
    CHECK(one_problem("{'nodes': {}}", "definition.nodes", "nodes must be an array"));
    CHECK(one_problem("{'nodes': [], 'edges': {}}", "definition.edges", "edges must be an array"));
    CHECK(one_problem("{'nodes': [], 'edges': null}", "definition.edges", "edges must be an array"));
    CHECK(one_problem("{'nodes': [3]}", "definition.nodes[0]", "node 0: must be an object"));
    CHECK(one_problem("{'nodes': [], 'edges': [[]]}", "definition.edges[0]",
                      "edge 0: must be an object"));
}

static void def_unknown_keys_are_ignored(void)
{
    CHECK(valid("{'nodes': [{'id': 'a', 'type': 'delay', 'config': {'ms': 1, 'ui': {}},"
                       " 'position': [1, 2], 'retry': {'note': 'x'}}],"
                       " 'edges': [], 'viewport': {'x': 0}, 'version': 'any'}"));
    CHECK(valid("{'nodes': [{'id': 'a', 'type': 'condition', 'config': {'op': 'exists',"
                       " 'left': '{{input.a}}'}}, {'id': 'b', 'type': 'delay', 'config': {'ms': 0}}],"
                       " 'edges': [{'from': 'a', 'to': 'b', 'when': true, 'color': 'red'}]}"));
}

static void def_node_id_rules(void)
{
    const char *msg = "must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -";
    char want[128];
    snprintf(want, sizeof(want), "node 0: id %s", msg);
    CHECK(one_problem("{'nodes': [{'type': 'delay', 'config': {'ms': 1}}]}",
                      "definition.nodes[0].id", "node 0: id is required"));
    CHECK(one_problem("{'nodes': [{'id': 7, 'type': 'delay', 'config': {'ms': 1}}]}",
                      "definition.nodes[0].id", "node 0: id must be a string"));
    CHECK(one_problem("{'nodes': [{'id': '', 'type': 'delay', 'config': {'ms': 1}}]}",
                      "definition.nodes[0].id", want));
    CHECK(one_problem("{'nodes': [{'id': 'a.b', 'type': 'delay', 'config': {'ms': 1}}]}",
                      "definition.nodes[0].id", want));
    CHECK(one_problem("{'nodes': [{'id': 'caf\xc3\xa9', 'type': 'delay', 'config': {'ms': 1}}]}",
                      "definition.nodes[0].id", want));
    char text[256], id[80];
    memset(id, 'x', 65);
    id[64] = '\0';
    snprintf(text, sizeof(text), "{'nodes': [{'id': '%s', 'type': 'delay', 'config': {'ms': 1}}]}",
             id);
    CHECK(valid(text));
    id[64] = 'x';
    id[65] = '\0';
    snprintf(text, sizeof(text), "{'nodes': [{'id': '%s', 'type': 'delay', 'config': {'ms': 1}}]}",
             id);
    CHECK(one_problem(text, "definition.nodes[0].id", want));
}

static void def_duplicate_ids(void)
{
    int n;
    json_t *d = validate_text("{'nodes': [{'id': 'fetch', 'type': 'delay', 'config': {'ms': 1}},"
                              " {'id': 'other', 'type': 'delay', 'config': {'ms': 1}},"
                              " {'id': 'fetch', 'type': 'delay', 'config': {'ms': 2}},"
                              " {'id': 'fetch', 'type': 'delay', 'config': {'ms': 3}}]}",
                              &n);
    CHECK_INT(n, 2);
    CHECK(has(d, "definition.nodes[2].id", "node \"fetch\": duplicate id"));
    CHECK(has(d, "definition.nodes[3].id", "node \"fetch\": duplicate id"));
    json_decref(d);
}

static void def_type_rules(void)
{
    CHECK(one_problem("{'nodes': [{'id': 'a', 'config': {}}]}", "definition.nodes[0].type",
                      "node \"a\": type is required"));
    CHECK(one_problem("{'nodes': [{'id': 'a', 'type': 'email', 'config': {}}]}",
                      "definition.nodes[0].type",
                      "node \"a\": unknown type \"email\": use transform, condition, http, llm, "
                      "delay, workflow, approval or agent"));
    CHECK(one_problem("{'nodes': [{'id': 'a', 'type': 'HTTP', 'config': {}}]}",
                      "definition.nodes[0].type",
                      "node \"a\": unknown type \"HTTP\": use transform, condition, http, llm, "
                      "delay, workflow, approval or agent"));
    CHECK(one_problem("{'nodes': [{'id': 'a', 'type': ['http'], 'config': {}}]}",
                      "definition.nodes[0].type", "node \"a\": type must be a string"));
}

static void def_name_rules(void)
{
    char text[1200], name[900];
    size_t len = 0;
    for (int i = 0; i < 200; i++)
        len += (size_t)snprintf(name + len, sizeof(name) - len, "\xc3\xa9"); /* é: 2 bytes */
    snprintf(text, sizeof(text),
             "{'nodes': [{'id': 'a', 'name': '%s', 'type': 'delay', 'config': {'ms': 1}}]}", name);
    CHECK(valid(text)); /* 200 characters, 400 bytes */
    snprintf(text, sizeof(text),
             "{'nodes': [{'id': 'a', 'name': '%sx', 'type': 'delay', 'config': {'ms': 1}}]}", name);
    CHECK(one_problem(text, "definition.nodes[0].name",
                      "node \"a\": name must be at most 200 characters"));
    CHECK(one_problem("{'nodes': [{'id': 'a', 'name': 5, 'type': 'delay', 'config': {'ms': 1}}]}",
                      "definition.nodes[0].name", "node \"a\": name must be a string"));
    CHECK(valid("{'nodes': [{'id': 'a', 'name': '', 'type': 'delay', 'config': {'ms': 1}}]}"));
}

static void def_config_is_a_required_object(void)
{
    CHECK(one_problem("{'nodes': [{'id': 'a', 'type': 'delay'}]}", "definition.nodes[0].config",
                      "node \"a\": config is required"));
    CHECK(one_problem("{'nodes': [{'id': 'a', 'type': 'delay', 'config': []}]}",
                      "definition.nodes[0].config", "node \"a\": config must be an object"));
    CHECK(one_problem("{'nodes': [{'id': 'a', 'type': 'delay', 'config': null}]}",
                      "definition.nodes[0].config", "node \"a\": config is required"));
}

static void def_retry_and_timeout(void)
{
    const char *node = "{'nodes': [{'id': 'a', 'type': 'delay', 'config': {'ms': 1}, %s}]}";
    char text[256];
    static const struct {
        const char *extra, *field, *message;
    } bad[] = {
        {"'retry': 3", "retry", "retry must be an object"},
        {"'retry': {'maxAttempts': 0}", "retry.maxAttempts",
         "retry.maxAttempts must be an integer from 1 to 10"},
        {"'retry': {'maxAttempts': 11}", "retry.maxAttempts",
         "retry.maxAttempts must be an integer from 1 to 10"},
        {"'retry': {'backoffMs': -1}", "retry.backoffMs",
         "retry.backoffMs must be an integer from 0 to 600000"},
        {"'retry': {'backoffMs': 600001}", "retry.backoffMs",
         "retry.backoffMs must be an integer from 0 to 600000"},
        {"'timeoutMs': 0", "timeoutMs", "timeoutMs must be an integer from 1 to 3600000"},
        {"'timeoutMs': 3600001", "timeoutMs", "timeoutMs must be an integer from 1 to 3600000"},
        {"'timeoutMs': null", "timeoutMs", "timeoutMs must be an integer from 1 to 3600000"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char field[96], message[160];
        snprintf(text, sizeof(text), node, bad[i].extra);
        snprintf(field, sizeof(field), "definition.nodes[0].%s", bad[i].field);
        snprintf(message, sizeof(message), "node \"a\": %s", bad[i].message);
        CHECK(one_problem(text, field, message));
    }
    snprintf(text, sizeof(text), node,
             "'retry': {'maxAttempts': 10, 'backoffMs': 600000}, 'timeoutMs': 3600000");
    CHECK(valid(text));
    snprintf(text, sizeof(text), node,
             "'retry': {'maxAttempts': 1, 'backoffMs': 0}, 'timeoutMs': 1");
    CHECK(valid(text));
    snprintf(text, sizeof(text), node, "'retry': {}");
    CHECK(valid(text));
}

static void def_integers_must_be_json_integers(void)
{
    CHECK(one_problem("{'nodes': [{'id': 'a', 'type': 'delay', 'config': {'ms': 1.0}}]}",
                      "definition.nodes[0].config.ms",
                      "node \"a\": config.ms must be an integer from 0 to 86400000"));
    CHECK(one_problem("{'nodes': [{'id': 'a', 'type': 'delay', 'config': {'ms': '5'}}]}",
                      "definition.nodes[0].config.ms", DELAY_MS_STRING("a")));
    CHECK(one_problem("{'nodes': [{'id': 'a', 'type': 'delay', 'config': {'ms': 1},"
                      " 'retry': {'maxAttempts': 2.0}}]}",
                      "definition.nodes[0].retry.maxAttempts",
                      "node \"a\": retry.maxAttempts must be an integer from 1 to 10"));
    CHECK(one_problem("{'nodes': [{'id': 'a', 'type': 'delay', 'config': {'ms': 1e3}}]}",
                      "definition.nodes[0].config.ms",
                      "node \"a\": config.ms must be an integer from 0 to 86400000"));
    /* temperature is a number: integer or real. */
    const char *llm = "{'nodes': [{'id': 'a', 'type': 'llm', 'config': {'model': 'm',"
                      " 'messages': [{'role': 'user', 'content': 'hi'}], 'temperature': %s}}]}";
    char text[256];
    const char *ok[] = {"0", "1", "2", "0.7", "2.0", "0.0"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(text, sizeof(text), llm, ok[i]);
        CHECK(valid(text));
    }
    const char *no[] = {"2.01", "-0.1", "'1'", "null", "true"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        snprintf(text, sizeof(text), llm, no[i]);
        CHECK(one_problem(text, "definition.nodes[0].config.temperature",
                          "node \"a\": config.temperature must be a number from 0 to 2"));
    }
}

static void def_transform_config(void)
{
    CHECK(one_problem("{'nodes': [{'id': 't', 'type': 'transform', 'config': {}}]}",
                      "definition.nodes[0].config.output", "node \"t\": config.output is required"));
    CHECK(valid("{'nodes': [{'id': 't', 'type': 'transform', 'config': {'output': null}}]}"));
    CHECK(valid("{'nodes': [{'id': 't', 'type': 'transform', 'config': {'output': 3}}]}"));
}

static void def_condition_config(void)
{
    const char *node = "{'nodes': [{'id': 'c', 'type': 'condition', 'config': {%s}}]}";
    char text[256];
    snprintf(text, sizeof(text), node, "'left': 1, 'right': 2");
    CHECK(one_problem(text, "definition.nodes[0].config.op", "node \"c\": config.op is required"));
    snprintf(text, sizeof(text), node, "'op': 'neq', 'left': 1, 'right': 2");
    CHECK(one_problem(text, "definition.nodes[0].config.op",
                      "node \"c\": config.op must be one of eq, ne, gt, gte, lt, lte, contains, "
                      "exists"));
    snprintf(text, sizeof(text), node, "'op': 'eq', 'right': 2");
    CHECK(one_problem(text, "definition.nodes[0].config.left",
                      "node \"c\": config.left is required"));
    snprintf(text, sizeof(text), node, "'op': 'lte', 'left': 2");
    CHECK(one_problem(text, "definition.nodes[0].config.right",
                      "node \"c\": config.right is required"));
    snprintf(text, sizeof(text), node, "'op': 'exists', 'left': '{{input.x}}'");
    CHECK(valid(text));
    snprintf(text, sizeof(text), node, "'op': 'eq', 'left': null, 'right': null");
    CHECK(valid(text));
    snprintf(text, sizeof(text), node, "'op': 'contains', 'left': ['{{input.x}}'], 'right': 'a'");
    CHECK(valid(text));
}

static void def_http_url(void)
{
    const char *node = "{'nodes': [{'id': 'h', 'type': 'http', 'config': {%s}}]}";
    char text[9000];
    static const struct {
        const char *config, *message;
    } bad[] = {
        {"'method': 'GET'", "config.url is required"},
        {"'url': ''", "config.url must not be empty"},
        {"'url': 5", "config.url must be a string"},
        {"'url': 'ftp://example.com/x'", "config.url must start with http:// or https://"},
        {"'url': 'example.com'", "config.url must start with http:// or https://"},
        {"'url': '/relative'", "config.url must start with http:// or https://"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char message[128];
        snprintf(text, sizeof(text), node, bad[i].config);
        snprintf(message, sizeof(message), "node \"h\": %s", bad[i].message);
        CHECK(one_problem(text, "definition.nodes[0].config.url", message));
    }
    const char *good[] = {"'url': 'http://x'", "'url': 'HTTPS://EXAMPLE.COM/'",
                          "'url': '{{input.url}}'", "'url': 'ftp://{{input.host}}'",
                          "'url': 'https://h/{{nodes.x.output.path}}'"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(text, sizeof(text), node, good[i]);
        CHECK(valid(text));
    }
    /* A reference to a node that does not exist is still refused. */
    snprintf(text, sizeof(text), node, good[4]);
    CHECK(one_problem(text, "definition.nodes[0].config.url",
                      "node \"h\": template refers to \"x\", which is not a node"));
    /* 8192 bytes accepted, 8193 refused. */
    char url[8200];
    memcpy(url, "https://", 8);
    memset(url + 8, 'a', sizeof(url) - 8);
    url[8192] = '\0';
    snprintf(text, sizeof(text), "{'nodes': [{'id': 'h', 'type': 'http', 'config': {'url': '%s'}}]}",
             url);
    CHECK(valid(text));
    url[8192] = 'a';
    url[8193] = '\0';
    snprintf(text, sizeof(text), "{'nodes': [{'id': 'h', 'type': 'http', 'config': {'url': '%s'}}]}",
             url);
    CHECK(one_problem(text, "definition.nodes[0].config.url",
                      "node \"h\": config.url must be at most 8192 bytes"));
    CHECK(one_problem("{'nodes': [{'id': 'h', 'type': 'http', 'config': {'url': 'https://x/{{in'}}]}",
                      "definition.nodes[0].config.url",
                      "node \"h\": invalid template: unclosed \"{{\""));
}

static void def_http_method_headers_timeout(void)
{
    const char *node = "{'nodes': [{'id': 'h', 'type': 'http', 'config': {'url': 'http://x', %s}}]}";
    char text[256];
    static const struct {
        const char *config, *field, *message;
    } bad[] = {
        {"'method': 'get'", "config.method",
         "config.method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
        {"'method': 1", "config.method",
         "config.method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
        {"'headers': []", "config.headers", "config.headers must be an object"},
        {"'headers': {'X-A': 1}", "config.headers.X-A", "config.headers.X-A must be a string"},
        {"'headers': {'X A': 'v'}", "config.headers[\"X A\"]",
         "config.headers[\"X A\"] is not a valid header name (HTTP token characters only)"},
        {"'headers': {'': 'v'}", "config.headers[\"\"]",
         "config.headers[\"\"] is not a valid header name (HTTP token characters only)"},
        {"'headers': {'X-A': 'a\\r\\nX-B: b'}", "config.headers.X-A",
         "config.headers.X-A must not contain CR, LF or NUL"},
        {"'headers': {'X-A': '{{input'}", "config.headers.X-A", "invalid template: unclosed \"{{\""},
        {"'timeoutMs': 300001", "config.timeoutMs", "config.timeoutMs must be an integer from 1 to 300000"},
        {"'timeoutMs': 0", "config.timeoutMs", "config.timeoutMs must be an integer from 1 to 300000"},
        {"'body': {'a': ['{{input.x}}', '{{oops}}']}", "config.body.a[1]",
         "invalid template: unknown template root \"oops\": use input or nodes"},
        {"'body': {'a b': {'c.d': '{{nodes}}'}}", "config.body[\"a b\"][\"c.d\"]",
         "invalid template: \"nodes\" must be followed by a node id and .output"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char field[96], message[160];
        snprintf(text, sizeof(text), node, bad[i].config);
        snprintf(field, sizeof(field), "definition.nodes[0].%s", bad[i].field);
        snprintf(message, sizeof(message), "node \"h\": %s", bad[i].message);
        CHECK(one_problem(text, field, message));
    }
    const char *good[] = {"'method': 'OPTIONS', 'headers': {}, 'timeoutMs': 300000",
                          "'headers': {'!#$%&*+-.^_`|~09azAZ': 'v'}, 'body': null",
                          "'body': '{{input}}', 'timeoutMs': 1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(text, sizeof(text), node, good[i]);
        CHECK(valid(text));
    }
}

static void def_http_header_count(void)
{
    json_t *def = parse("{'nodes': [{'id': 'h', 'type': 'http', 'config': {'url': 'http://x'}}]}");
    json_t *config = json_object_get(json_array_get(json_object_get(def, "nodes"), 0), "config");
    json_t *headers = json_object();
    json_object_set_new(config, "headers", headers);
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof(name), "X-H%d", i);
        json_object_set_new(headers, name, json_string("v"));
    }
    json_t *details = json_array();
    CHECK_INT(definition_validate(def, details), 0);
    json_object_set_new(headers, "X-One-More", json_string("v"));
    CHECK_INT(definition_validate(def, details), 1);
    CHECK(has(details, "definition.nodes[0].config.headers",
              "node \"h\": config.headers must have at most 100 entries"));
    json_decref(details);
    json_decref(def);
}

static void def_llm_config(void)
{
    const char *node = "{'nodes': [{'id': 'l', 'type': 'llm', 'config': {%s}}]}";
    const char *msgs = "'messages': [{'role': 'user', 'content': 'hi'}]";
    char text[1024], config[900];
    static const struct {
        const char *config, *field, *message;
    } bad[] = {
        {"'messages': [{'role': 'user', 'content': 'hi'}]", "config.model",
         "config.model is required"},
        {"'model': '', 'messages': [{'role': 'user', 'content': 'hi'}]", "config.model",
         "config.model must not be empty"},
        {"'model': 'm'", "config.messages", "config.messages is required"},
        {"'model': 'm', 'messages': []", "config.messages", "config.messages must hold 1 to 100 messages"},
        {"'model': 'm', 'messages': {}", "config.messages", "config.messages must be an array"},
        {"'model': 'm', 'messages': ['hi']", "config.messages[0]",
         "config.messages[0] must be an object"},
        {"'model': 'm', 'messages': [{'role': 'user', 'content': 'a'}, {'role': 'bot', 'content': 'b'}]",
         "config.messages[1].role", "config.messages[1].role must be one of system, user, assistant"},
        {"'model': 'm', 'messages': [{'role': 'user'}]", "config.messages[0].content",
         "config.messages[0].content is required"},
        {"'model': 'm', 'messages': [{'role': 'user', 'content': ['x']}]",
         "config.messages[0].content", "config.messages[0].content must be a string"},
        {"'model': 'm', 'messages': [{'role': 'user', 'content': 'a {{input.'}]",
         "config.messages[0].content", "invalid template: unclosed \"{{\""},
        {"'model': '{{input.model', 'messages': [{'role': 'user', 'content': 'x'}]",
         "config.model", "invalid template: unclosed \"{{\""},
        {"'model': 'm', 'maxTokens': 0, 'messages': [{'role': 'user', 'content': 'x'}]",
         "config.maxTokens", "config.maxTokens must be an integer from 1 to 1000000"},
        {"'model': 'm', 'maxTokens': 1000001, 'messages': [{'role': 'user', 'content': 'x'}]",
         "config.maxTokens", "config.maxTokens must be an integer from 1 to 1000000"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char field[96], message[160];
        snprintf(text, sizeof(text), node, bad[i].config);
        snprintf(field, sizeof(field), "definition.nodes[0].%s", bad[i].field);
        snprintf(message, sizeof(message), "node \"l\": %s", bad[i].message);
        CHECK(one_problem(text, field, message));
    }
    /* model: 200 characters accepted, 201 refused. */
    char model[210];
    memset(model, 'm', 201);
    model[200] = '\0';
    snprintf(config, sizeof(config), "'model': '%s', %s", model, msgs);
    snprintf(text, sizeof(text), node, config);
    CHECK(valid(text));
    model[200] = 'm';
    model[201] = '\0';
    snprintf(config, sizeof(config), "'model': '%s', %s", model, msgs);
    snprintf(text, sizeof(text), node, config);
    CHECK(one_problem(text, "definition.nodes[0].config.model",
                      "node \"l\": config.model must be 1 to 200 characters"));
    /* Every role, an empty content, a templated model, the largest maxTokens. */
    snprintf(text, sizeof(text), node,
             "'model': '{{input.model}}', 'maxTokens': 1000000, 'messages': ["
             "{'role': 'system', 'content': ''}, {'role': 'user', 'content': 'u'},"
             "{'role': 'assistant', 'content': 'a'}]");
    CHECK(valid(text));
}

static void def_llm_message_count(void)
{
    json_t *def = parse("{'nodes': [{'id': 'l', 'type': 'llm', 'config': {'model': 'm'}}]}");
    json_t *config = json_object_get(json_array_get(json_object_get(def, "nodes"), 0), "config");
    json_t *list = json_array();
    json_object_set_new(config, "messages", list);
    for (int i = 0; i < 100; i++)
        json_array_append_new(list, json_pack("{s:s, s:s}", "role", "user", "content", "x"));
    json_t *details = json_array();
    CHECK_INT(definition_validate(def, details), 0);
    json_array_append_new(list, json_pack("{s:s, s:s}", "role", "user", "content", "x"));
    CHECK_INT(definition_validate(def, details), 1);
    CHECK(has(details, "definition.nodes[0].config.messages",
              "node \"l\": config.messages must hold 1 to 100 messages"));
    json_decref(details);
    json_decref(def);
}

/* An agent: an llm node's config plus tools; {{args...}} in a tool's http
 * request only. */
static void def_agent_config(void)
{
    const char *node =
        "{'nodes': [{'id': 'a', 'type': 'agent', 'config': {'model': 'm', "
        "'messages': [{'role': 'user', 'content': 'hi'}], %s}}]}";
    const char *tool = "{'name': 'get', 'description': 'd', 'parameters': {'type': 'object', "
                       "'properties': {'q': {'type': 'string'}}}, 'http': {'url': "
                       "'http://x/{{args.q}}?k={{input.k}}'%s}}";
    char t[256], text[1024];
    snprintf(t, sizeof(t), tool, "");
    snprintf(text, sizeof(text), node, "'tools': [] , 'maxSteps': 50, 'maxCostUsd': 0.5");
    CHECK(valid(text));
    char both[600];
    snprintf(both, sizeof(both), "'tools': [%s], 'maxToolCalls': 200", t);
    snprintf(text, sizeof(text), node, both);
    CHECK(valid(text));
    snprintf(text, sizeof(text), node, "'tools': 'x'");
    CHECK(one_problem(text, "definition.nodes[0].config.tools",
                      "node \"a\": config.tools must be an array of at most 32 tools"));
    snprintf(text, sizeof(text), node, "'tools': [], 'maxSteps': 0");
    CHECK(one_problem(text, "definition.nodes[0].config.maxSteps",
                      "node \"a\": config.maxSteps must be an integer from 1 to 50"));
    snprintf(t, sizeof(t), tool, ", 'method': 'FETCH'");
    snprintf(both, sizeof(both), "'tools': [%s]", t);
    snprintf(text, sizeof(text), node, both);
    int n = 0;
    json_t *d = validate_text(text, &n);
    CHECK(n == 1 && has(d, "definition.nodes[0].config.tools[0].http.method",
                        "node \"a\": config.tools[0].http.method must be one of GET, HEAD, POST, PUT, "
                        "PATCH, DELETE, OPTIONS"));
    json_decref(d);
    /* args outside a tool's request */
    CHECK(one_problem("{'nodes': [{'id': 't', 'type': 'transform', 'config': {'output': "
                      "'{{args.x}}'}}]}",
                      "definition.nodes[0].config.output",
                      "node \"t\": invalid template: {{args...}} is only for an "
                      "agent tool's http"));
}

static void def_workflow_config(void)
{
    const char *node = "{'nodes': [{'id': 'w', 'type': 'workflow', 'config': {%s}}]}";
    char text[256];
    snprintf(text, sizeof(text), node, "");
    CHECK(one_problem(text, "definition.nodes[0].config.workflowId",
                      "node \"w\": config.workflowId is required"));
    snprintf(text, sizeof(text), node, "'workflowId': 'not-an-id'");
    CHECK(one_problem(text, "definition.nodes[0].config.workflowId",
                      "node \"w\": config.workflowId must be a workflow id"));
    snprintf(text, sizeof(text), node, "'workflowId': '{{input.id}}'");
    CHECK(one_problem(text, "definition.nodes[0].config.workflowId",
                      "node \"w\": config.workflowId must be a workflow id"));
    snprintf(text, sizeof(text), node,
             "'workflowId': '0193a1b2-9d8e-7f6a-8b5c-4d3e2f1a0b9c', 'input': {'a': '{{input.x}}'}");
    CHECK(valid(text));
    snprintf(text, sizeof(text), node,
             "'workflowId': '0193a1b2-9d8e-7f6a-8b5c-4d3e2f1a0b9c', 'input': '{{nodes.nope}}'");
    json_t *d = NULL;
    int n = 0;
    d = validate_text(text, &n);
    CHECK_INT(n, 1); /* a reference to no node */
    json_decref(d);
}

static void def_delay_config(void)
{
    /* ms may be a template: exactly one placeholder, its value checked when
     * the node runs. */
    const char *node = "{'nodes': [{'id': 'd', 'type': 'delay', 'config': {%s}}]}";
    char text[256];
    snprintf(text, sizeof(text), node, "");
    CHECK(one_problem(text, "definition.nodes[0].config.ms", "node \"d\": config.ms is required"));
    const char *no[] = {"'ms': -1", "'ms': 86400001", "'ms': true"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        snprintf(text, sizeof(text), node, no[i]);
        CHECK(one_problem(text, "definition.nodes[0].config.ms",
                          "node \"d\": config.ms must be an integer from 0 to 86400000"));
    }
    snprintf(text, sizeof(text), node, "'ms': 0");
    CHECK(valid(text));
    snprintf(text, sizeof(text), node, "'ms': 86400000");
    CHECK(valid(text));
    const char *yes[] = {"'ms': '{{input.ms}}'", "'ms': '{{ input.wait.ms }}'",
                         "'ms': '{{input.list.0}}'"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        snprintf(text, sizeof(text), node, yes[i]);
        CHECK(valid(text));
    }
    const char *not_whole[] = {"'ms': '5'", "'ms': ''", "'ms': '{{input.ms}}0'",
                               "'ms': ' {{input.ms}}'", "'ms': '{{input.a}}{{input.b}}'"};
    for (size_t i = 0; i < sizeof(not_whole) / sizeof(not_whole[0]); i++) {
        snprintf(text, sizeof(text), node, not_whole[i]);
        CHECK(one_problem(text, "definition.nodes[0].config.ms", DELAY_MS_STRING("d")));
    }
    /* A malformed placeholder is reported once, by the template check. */
    int n;
    snprintf(text, sizeof(text), node, "'ms': '{{input.ms'");
    json_t *d = validate_text(text, &n);
    CHECK_INT(n, 1);
    const char *message = json_string_value(json_object_get(json_array_get(d, 0), "message"));
    int bad_template = message && strstr(message, "invalid template") != NULL;
    json_decref(d);
    CHECK(bad_template);
    /* Its references are checked like any other template's. */
    CHECK(one_problem("{'nodes': [{'id': 'd', 'type': 'delay', 'config':"
                      " {'ms': '{{nodes.zz.output.ms}}'}}]}",
                      "definition.nodes[0].config.ms",
                      "node \"d\": template refers to \"zz\", which is not a node"));
    CHECK(valid("{'nodes': [{'id': 'a', 'type': 'transform', 'config': {'output': 5}},"
                " {'id': 'd', 'type': 'delay', 'config': {'ms': '{{nodes.a.output}}'}}],"
                " 'edges': [{'from': 'a', 'to': 'd'}]}"));
}

static void def_approval_config(void)
{
    const char *node = "{'nodes': [{'id': 'p', 'type': 'approval', 'config': {%s}}]}";
    char text[256];
    const char *yes[] = {"", "'message': 'Ship {{input.v}}?'", "'timeoutMs': 1",
                         "'timeoutMs': 2592000000", "'onTimeout': 'fail'",
                         "'onTimeout': 'reject'"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        snprintf(text, sizeof(text), node, yes[i]);
        CHECK(valid(text));
    }
    const char *bad_timeout[] = {"'timeoutMs': 0", "'timeoutMs': 2592000001",
                                 "'timeoutMs': '5'"};
    for (size_t i = 0; i < sizeof(bad_timeout) / sizeof(bad_timeout[0]); i++) {
        snprintf(text, sizeof(text), node, bad_timeout[i]);
        CHECK(one_problem(text, "definition.nodes[0].config.timeoutMs",
                          "node \"p\": config.timeoutMs must be an integer from 1 to 2592000000"));
    }
    snprintf(text, sizeof(text), node, "'onTimeout': 'ignore'");
    int n;
    json_t *d = validate_text(text, &n);
    CHECK_INT(n, 1);
    json_decref(d);
    snprintf(text, sizeof(text), node, "'message': 5");
    d = validate_text(text, &n);
    CHECK_INT(n, 1);
    json_decref(d);
    /* Its edges take when, as a condition's. */
    CHECK(valid("{'nodes': [{'id': 'p', 'type': 'approval', 'config': {}},"
                " {'id': 'y', 'type': 'transform', 'config': {'output': 1}},"
                " {'id': 'n', 'type': 'transform', 'config': {'output': 0}}],"
                " 'edges': [{'from': 'p', 'to': 'y', 'when': true},"
                " {'from': 'p', 'to': 'n', 'when': false}]}"));
}

/* Nodes a (transform), c (condition), h (http) for edge tests, followed by edges. */
#define THREE_NODES                                                                  \
    "{'nodes': [{'id': 'a', 'type': 'transform', 'config': {'output': 1}},"          \
    " {'id': 'c', 'type': 'condition', 'config': {'op': 'exists', 'left': 1}},"      \
    " {'id': 'h', 'type': 'http', 'config': {'url': 'http://x'}}], 'edges': "

static void def_edge_rules(void)
{
    CHECK(one_problem(THREE_NODES "[{'to': 'a'}]}", "definition.edges[0].from",
                      "edge 0: from is required"));
    CHECK(one_problem(THREE_NODES "[{'from': 'a', 'to': 3}]}", "definition.edges[0].to",
                      "edge 0: to must be a string"));
    CHECK(one_problem(THREE_NODES "[{'from': 'a', 'to': 'c'}, {'from': 'a', 'to': 'zz'}]}",
                      "definition.edges[1].to", "edge 1 (\"a\" -> \"zz\"): unknown node \"zz\""));
    int n;
    json_t *d = validate_text(THREE_NODES "[{'from': 'x', 'to': 'y'}]}", &n);
    CHECK_INT(n, 2);
    CHECK(has(d, "definition.edges[0].from", "edge 0 (\"x\" -> \"y\"): unknown node \"x\""));
    CHECK(has(d, "definition.edges[0].to", "edge 0 (\"x\" -> \"y\"): unknown node \"y\""));
    json_decref(d);
    CHECK(one_problem(THREE_NODES "[{'from': 'a', 'to': 'a'}]}", "definition.edges[0].to",
                      "edge 0 (\"a\" -> \"a\"): an edge cannot lead from a node to itself"));
    CHECK(one_problem(THREE_NODES "[{'from': 'a', 'to': 'h'}, {'from': 'a', 'to': 'c'},"
                      " {'from': 'a', 'to': 'h'}]}",
                      "definition.edges[2]",
                      "edge 2 (\"a\" -> \"h\"): repeats an earlier edge with the same from and to"));
    /* Text that is not an id is shown safely. */
    CHECK(one_problem(THREE_NODES "[{'from': 'a', 'to': 'caf\xc3\xa9\\n'}]}",
                      "definition.edges[0].to",
                      "edge 0 (\"a\" -> \"caf\xc3\xa9?\"): unknown node \"caf\xc3\xa9?\""));
    CHECK(one_problem(THREE_NODES "[{'from': 'a', 'to': 'x\\\"y\\\\'}]}", "definition.edges[0].to",
                      "edge 0 (\"a\" -> \"x\\\"y\\\\\"): unknown node \"x\\\"y\\\\\""));
    char text[512], id[128], shown[80];
    memset(id, 'z', 100);
    id[100] = '\0';
    snprintf(text, sizeof(text), THREE_NODES "[{'from': 'a', 'to': '%s'}]}", id);
    memset(shown, 'z', 64);
    shown[64] = '\0';
    char want[256];
    snprintf(want, sizeof(want), "edge 0 (\"a\" -> \"%s...\"): unknown node \"%s...\"", shown,
             shown);
    CHECK(one_problem(text, "definition.edges[0].to", want));
    /* Quotes shown escaped at both ends still make whole entries. */
    char quotes[80];
    memset(quotes, '"', 70);
    quotes[70] = '\0';
    json_t *def = parse(THREE_NODES "[]}");
    json_array_append_new(json_object_get(def, "edges"),
                          json_pack("{s:s, s:s}", "from", quotes, "to", quotes));
    json_t *d2 = validate_take(def, &n);
    CHECK_INT(n, 2);
    CHECK_INT(json_array_size(d2), 2);
    const char *m2 = json_string_value(json_object_get(json_array_get(d2, 1), "message"));
    CHECK(strstr(m2, "\\\"\\\"...\"): unknown node \"\\\"") != NULL);
    json_decref(d2);
    /* A character is not cut: 63 letters and "\xc3\xa9" show 63 letters. */
    memset(id, 'z', 63);
    memcpy(id + 63, "\xc3\xa9", 3);
    snprintf(text, sizeof(text), THREE_NODES "[{'from': 'a', 'to': '%s'}]}", id);
    shown[63] = '\0';
    snprintf(want, sizeof(want), "edge 0 (\"a\" -> \"%s...\"): unknown node \"%s...\"", shown,
             shown);
    CHECK(one_problem(text, "definition.edges[0].to", want));
    CHECK(valid(THREE_NODES "[{'from': 'a', 'to': 'c'}, {'from': 'c', 'to': 'h'},"
                       " {'from': 'a', 'to': 'h'}]}"));
}

static void def_when_rules(void)
{
    CHECK(valid(THREE_NODES "[{'from': 'c', 'to': 'a', 'when': true},"
                       " {'from': 'c', 'to': 'h', 'when': false}]}"));
    CHECK(one_problem(THREE_NODES "[{'from': 'h', 'to': 'a', 'when': true}]}",
                      "definition.edges[0].when",
                      "edge 0 (\"h\" -> \"a\"): when is only allowed on edges leaving a condition "
                      "or approval node (\"h\" is http)"));
    CHECK(one_problem(THREE_NODES "[{'from': 'c', 'to': 'a', 'when': 'yes'}]}",
                      "definition.edges[0].when",
                      "edge 0 (\"c\" -> \"a\"): when must be true or false"));
    CHECK(one_problem(THREE_NODES "[{'from': 'c', 'to': 'a', 'when': 1}]}",
                      "definition.edges[0].when",
                      "edge 0 (\"c\" -> \"a\"): when must be true or false"));
    CHECK(one_problem(THREE_NODES "[{'from': 'c', 'to': 'a', 'when': null}]}",
                      "definition.edges[0].when",
                      "edge 0 (\"c\" -> \"a\"): when must be true or false"));
}

static void def_cycles(void)
{
    CHECK(one_problem(THREE_NODES "[{'from': 'a', 'to': 'c'}, {'from': 'c', 'to': 'h'},"
                      " {'from': 'h', 'to': 'a'}]}",
                      "definition.edges", "cycle: a -> c -> h -> a"));
    /* The cycle does not start at the first node. */
    CHECK(one_problem(THREE_NODES "[{'from': 'a', 'to': 'c'}, {'from': 'c', 'to': 'h'},"
                      " {'from': 'h', 'to': 'c'}]}",
                      "definition.edges", "cycle: c -> h -> c"));
    /* A diamond is not a cycle. */
    CHECK(valid("{'nodes': [{'id': 'a', 'type': 'delay', 'config': {'ms': 1}},"
                       " {'id': 'b', 'type': 'delay', 'config': {'ms': 1}},"
                       " {'id': 'c', 'type': 'delay', 'config': {'ms': 1}},"
                       " {'id': 'd', 'type': 'delay', 'config': {'ms': 1}}],"
                       " 'edges': [{'from': 'a', 'to': 'b'}, {'from': 'a', 'to': 'c'},"
                       " {'from': 'b', 'to': 'd'}, {'from': 'c', 'to': 'd'}]}"));
    /* Edge problems do not hide a cycle among the valid edges. */
    int n;
    json_t *d = validate_text(THREE_NODES "[{'from': 'a', 'to': 'c'}, {'from': 'c', 'to': 'a'},"
                              " {'from': 'h', 'to': 'nope'}]}",
                              &n);
    CHECK_INT(n, 2);
    CHECK(has(d, "definition.edges[2].to", "edge 2 (\"h\" -> \"nope\"): unknown node \"nope\""));
    CHECK(has(d, "definition.edges", "cycle: a -> c -> a"));
    json_decref(d);
}

/* transform nodes a, b, c, d; b's and c's outputs given; edges a->b->c, a->d. */
static void def_template_references(void)
{
    const char *tpl = "{'nodes': [{'id': 'a', 'type': 'transform', 'config': {'output': 1}},"
                      " {'id': 'b', 'type': 'transform', 'config': {'output': %s}},"
                      " {'id': 'c', 'type': 'transform', 'config': {'output': %s}},"
                      " {'id': 'd', 'type': 'transform', 'config': {'output': 4}}],"
                      " 'edges': [{'from': 'a', 'to': 'b'}, {'from': 'b', 'to': 'c'},"
                      " {'from': 'a', 'to': 'd'}]}";
    char text[1024];
    snprintf(text, sizeof(text), tpl, "'{{nodes.a.output}}'",
             "{'x': ['{{nodes.a.output.v}} and {{nodes.b.output.list.0}}']}");
    CHECK(valid(text));
    snprintf(text, sizeof(text), tpl, "'{{nodes.zz.output}}'", "1");
    CHECK(one_problem(text, "definition.nodes[1].config.output",
                      "node \"b\": template refers to \"zz\", which is not a node"));
    snprintf(text, sizeof(text), tpl, "1", "{'k': ['x', '{{nodes.d.output}}']}");
    CHECK(one_problem(text, "definition.nodes[2].config.output.k[1]",
                      "node \"c\": template refers to \"d\", which does not run before \"c\""));
    snprintf(text, sizeof(text), tpl, "'{{nodes.c.output}}'", "1");
    CHECK(one_problem(text, "definition.nodes[1].config.output",
                      "node \"b\": template refers to \"c\", which does not run before \"b\""));
    snprintf(text, sizeof(text), tpl, "'{{nodes.b.output}}'", "1");
    CHECK(one_problem(text, "definition.nodes[1].config.output",
                      "node \"b\": template refers to the node's own output"));
    /* Several bad references in one node are all reported. */
    snprintf(text, sizeof(text), tpl, "['{{nodes.c.output}}', '{{nodes.q.output}}']", "1");
    int n;
    json_t *d = validate_text(text, &n);
    CHECK_INT(n, 2);
    CHECK(has(d, "definition.nodes[1].config.output[0]",
              "node \"b\": template refers to \"c\", which does not run before \"b\""));
    CHECK(has(d, "definition.nodes[1].config.output[1]",
              "node \"b\": template refers to \"q\", which is not a node"));
    json_decref(d);
}

static void def_template_references_in_every_type(void)
{
    /* Node r refers to a node that runs after it, from each template-bearing field. */
    static const struct {
        const char *node, *field;
    } cases[] = {
        {"{'id': 'r', 'type': 'condition', 'config': {'op': 'eq', 'left': '{{nodes.z.output}}', 'right': 1}}",
         "config.left"},
        {"{'id': 'r', 'type': 'condition', 'config': {'op': 'eq', 'left': 1, 'right': {'a': '{{nodes.z.output}}'}}}",
         "config.right.a"},
        {"{'id': 'r', 'type': 'http', 'config': {'url': 'http://h/{{nodes.z.output}}'}}", "config.url"},
        {"{'id': 'r', 'type': 'http', 'config': {'url': 'http://h', 'headers': {'X-Y': '{{nodes.z.output}}'}}}",
         "config.headers.X-Y"},
        {"{'id': 'r', 'type': 'http', 'config': {'url': 'http://h', 'body': ['{{nodes.z.output}}']}}",
         "config.body[0]"},
        {"{'id': 'r', 'type': 'llm', 'config': {'model': '{{nodes.z.output}}', 'messages': [{'role': 'user', 'content': 'x'}]}}",
         "config.model"},
        {"{'id': 'r', 'type': 'llm', 'config': {'model': 'm', 'messages': [{'role': 'user', 'content': 'x'}, {'role': 'user', 'content': '{{ nodes.z.output.a }}'}]}}",
         "config.messages[1].content"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024], field[96];
        snprintf(text, sizeof(text),
                 "{'nodes': [%s, {'id': 'z', 'type': 'delay', 'config': {'ms': 1}}],"
                 " 'edges': [{'from': 'r', 'to': 'z'}]}",
                 cases[i].node);
        snprintf(field, sizeof(field), "definition.nodes[0].%s", cases[i].field);
        CHECK(one_problem(text, field,
                          "node \"r\": template refers to \"z\", which does not run before \"r\""));
    }
    /* Unknown config keys are not templates. */
    CHECK(valid("{'nodes': [{'id': 'r', 'type': 'delay', 'config': {'ms': 1,"
                       " 'note': '{{nodes.gone.output}} {{'}}]}"));
}

static void def_references_with_a_cycle(void)
{
    /* With a cycle only the existence of the referred node is checked. */
    int n;
    json_t *d = validate_text("{'nodes': [{'id': 'a', 'type': 'transform', 'config': {'output': 1}},"
                              " {'id': 'b', 'type': 'transform', 'config': {'output':"
                              " ['{{nodes.a.output}}', '{{nodes.c.output}}', '{{nodes.x.output}}']}},"
                              " {'id': 'c', 'type': 'transform', 'config': {'output': 3}}],"
                              " 'edges': [{'from': 'b', 'to': 'c'}, {'from': 'c', 'to': 'b'}]}",
                              &n);
    CHECK_INT(n, 2);
    CHECK(has(d, "definition.edges", "cycle: b -> c -> b"));
    CHECK(has(d, "definition.nodes[1].config.output[2]",
              "node \"b\": template refers to \"x\", which is not a node"));
    json_decref(d);
}

static void def_reports_every_problem_at_once(void)
{
    int n;
    json_t *d = validate_text(
        "{'nodes': [{'id': 'a', 'type': 'delay', 'config': {'ms': -5}, 'timeoutMs': 2.5},"
        " {'id': 'a', 'type': 'nope', 'config': {}},"
        " {'type': 'http', 'config': {'url': 'mailto:x', 'method': 'get'}},"
        " {'id': 'q', 'type': 'transform', 'config': {'output': '{{nodes.zz.output}}'}}],"
        " 'edges': [{'from': 'a', 'to': 'ghost'}, {'from': 'a', 'to': 'q', 'when': true}]}",
        &n);
    CHECK_INT(n, 10);
    CHECK_INT(json_array_size(d), 10);
    CHECK(has(d, "definition.nodes[0].config.ms",
              "node \"a\": config.ms must be an integer from 0 to 86400000"));
    CHECK(has(d, "definition.nodes[0].timeoutMs",
              "node \"a\": timeoutMs must be an integer from 1 to 3600000"));
    CHECK(has(d, "definition.nodes[1].id", "node \"a\": duplicate id"));
    CHECK(has(d, "definition.nodes[1].type",
              "node \"a\": unknown type \"nope\": use transform, condition, http, llm, delay, "
              "workflow, approval or agent"));
    CHECK(has(d, "definition.nodes[2].id", "node 2: id is required"));
    CHECK(has(d, "definition.nodes[2].config.url",
              "node 2: config.url must start with http:// or https://"));
    CHECK(has(d, "definition.nodes[2].config.method",
              "node 2: config.method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"));
    CHECK(has(d, "definition.edges[0].to", "edge 0 (\"a\" -> \"ghost\"): unknown node \"ghost\""));
    CHECK(has(d, "definition.edges[1].when",
              "edge 1 (\"a\" -> \"q\"): when is only allowed on edges leaving a condition or "
              "approval node (\"a\" is delay)"));
    CHECK(has(d, "definition.nodes[3].config.output",
              "node \"q\": template refers to \"zz\", which is not a node"));
    /* Order: nodes, then edges, then references. */
    CHECK_STR(json_string_value(json_object_get(json_array_get(d, 0), "field")),
              "definition.nodes[0].config.ms");
    CHECK_STR(json_string_value(json_object_get(json_array_get(d, 9), "field")),
              "definition.nodes[3].config.output");
    json_decref(d);
}

/* n delay nodes "n0".."n<n-1>" with edges n(i) -> n(i+1) when chain is set. */
static json_t *many_nodes(int n, int chain)
{
    json_t *nodes = json_array(), *edges = json_array();
    for (int i = 0; i < n; i++) {
        char id[16], prev[16], first[64];
        snprintf(id, sizeof(id), "n%d", i);
        json_t *config = json_pack("{s:i}", "ms", 0);
        if (chain && i > 0) {
            /* Each node reads its predecessor's and the first node's output. */
            snprintf(prev, sizeof(prev), "n%d", i - 1);
            snprintf(first, sizeof(first), "{{nodes.n0.output}} {{nodes.%s.output.x}}", prev);
            json_decref(config);
            config = json_pack("{s:s}", "output", first);
            json_array_append_new(edges, json_pack("{s:s, s:s}", "from", prev, "to", id));
        }
        json_array_append_new(nodes, json_pack("{s:s, s:s, s:o}", "id", id, "type",
                                               chain && i > 0 ? "transform" : "delay", "config",
                                               config));
    }
    return json_pack("{s:o, s:o}", "nodes", nodes, "edges", edges);
}

static void def_node_limit(void)
{
    int n;
    json_t *d = validate_take(many_nodes(DEFINITION_MAX_NODES, 0), &n);
    CHECK_INT(n, 0);
    json_decref(d);
    d = validate_take(many_nodes(DEFINITION_MAX_NODES + 1, 0), &n);
    CHECK_INT(n, 1);
    CHECK(has(d, "definition.nodes", "nodes must hold at most 500 nodes"));
    json_decref(d);
}

static void def_valid_500_node_chain(void)
{
    int n;
    json_t *d = validate_take(many_nodes(DEFINITION_MAX_NODES, 1), &n);
    CHECK_INT(n, 0);
    json_decref(d);
    /* Closing the chain makes a 500-node cycle, found without recursion. */
    json_t *def = many_nodes(DEFINITION_MAX_NODES, 1);
    json_array_append_new(json_object_get(def, "edges"),
                          json_pack("{s:s, s:s}", "from", "n499", "to", "n0"));
    d = validate_take(def, &n);
    CHECK_INT(n, 1);
    const char *msg = json_string_value(json_object_get(json_array_get(d, 0), "message"));
    CHECK(strncmp(msg, "cycle: n0 -> n1 -> n2 -> ", 25) == 0);
    CHECK(strstr(msg, "-> n499 -> n0") != NULL);
    json_decref(d);
}

static void def_edge_limit(void)
{
    json_t *def = many_nodes(3, 0), *edges = json_object_get(def, "edges");
    for (int i = 0; i < DEFINITION_MAX_EDGES; i++)
        json_array_append_new(edges, json_pack("{s:s, s:s}", "from", "n0", "to", "n1"));
    json_t *details = json_array();
    /* 5000 edges are allowed in number (all but one repeat the first). */
    CHECK_INT(definition_validate(def, details), DEFINITION_MAX_PROBLEMS);
    json_array_clear(details);
    json_array_append_new(edges, json_pack("{s:s, s:s}", "from", "n0", "to", "n1"));
    CHECK_INT(definition_validate(def, details), 1);
    CHECK(has(details, "definition.edges", "edges must hold at most 5000 edges"));
    json_decref(details);
    json_decref(def);
}

static void def_problem_cap(void)
{
    json_t *nodes = json_array();
    for (int i = 0; i < 150; i++)
        json_array_append_new(nodes, json_integer(i));
    json_t *def = json_pack("{s:o}", "nodes", nodes);
    json_t *details = json_array();
    json_array_append_new(details, json_pack("{s:s, s:s}", "field", "name", "message", "earlier"));
    CHECK_INT(definition_validate(def, details), DEFINITION_MAX_PROBLEMS);
    CHECK_INT(json_array_size(details), 1 + DEFINITION_MAX_PROBLEMS);
    CHECK_STR(json_string_value(json_object_get(json_array_get(details, 0), "field")), "name");
    CHECK_STR(json_string_value(json_object_get(json_array_get(details, 1), "field")),
              "definition.nodes[0]");
    CHECK_STR(json_string_value(json_object_get(json_array_get(details, 99), "field")),
              "definition.nodes[98]");
    json_t *last = json_array_get(details, DEFINITION_MAX_PROBLEMS);
    CHECK_STR(json_string_value(json_object_get(last, "field")), "definition");
    CHECK_STR(json_string_value(json_object_get(last, "message")),
              "too many problems: only the first 99 are listed");
    /* Exactly 100 problems: no note. */
    json_array_clear(details);
    json_array_remove(nodes, 0);
    while (json_array_size(nodes) > 100)
        json_array_remove(nodes, 0);
    CHECK_INT(definition_validate(def, details), DEFINITION_MAX_PROBLEMS);
    CHECK_STR(json_string_value(json_object_get(json_array_get(details, 99), "message")),
              "node 99: must be an object");
    /* Without an array the problems are only counted. */
    CHECK_INT(definition_validate(def, NULL), DEFINITION_MAX_PROBLEMS);
    json_decref(details);
    json_decref(def);
}

static void def_id_helper(void)
{
    CHECK_INT(definition_id_valid("a", 1), 1);
    CHECK_INT(definition_id_valid("A-z_09", 6), 1);
    CHECK_INT(definition_id_valid("", 0), 0);
    CHECK_INT(definition_id_valid("a b", 3), 0);
    CHECK_INT(definition_id_valid("a.b", 3), 0);
}

const unit_test definition_tests[] = {
    TEST(def_realistic_definition_is_valid),
    TEST(def_must_be_an_object),
    TEST(def_nodes_and_edges_shape),
    TEST(def_unknown_keys_are_ignored),
    TEST(def_node_id_rules),
    TEST(def_duplicate_ids),
    TEST(def_type_rules),
    TEST(def_workflow_config),
    TEST(def_agent_config),
    TEST(def_name_rules),
    TEST(def_config_is_a_required_object),
    TEST(def_retry_and_timeout),
    TEST(def_integers_must_be_json_integers),
    TEST(def_transform_config),
    TEST(def_condition_config),
    TEST(def_http_url),
    TEST(def_http_method_headers_timeout),
    TEST(def_http_header_count),
    TEST(def_llm_config),
    TEST(def_llm_message_count),
    TEST(def_delay_config),
    TEST(def_approval_config),
    TEST(def_edge_rules),
    TEST(def_when_rules),
    TEST(def_cycles),
    TEST(def_template_references),
    TEST(def_template_references_in_every_type),
    TEST(def_references_with_a_cycle),
    TEST(def_reports_every_problem_at_once),
    TEST(def_node_limit),
    TEST(def_valid_500_node_chain),
    TEST(def_edge_limit),
    TEST(def_problem_cap),
    TEST(def_id_helper),
    {NULL, NULL},
};
