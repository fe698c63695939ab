/*
 * test_jschema.c - the JSON Schema subset of agent tools (engine/jschema.h):
 * which schemas are refused, and what each keyword accepts and refuses.
 */
#include <stdio.h>
#include <string.h>

#include "engine/jschema.h"
#include "unit.h"

/* JSON text with ' for " (as test_definition.c writes it). */
static json_t *j(const char *text)
{
    char t[2048];
    size_t n = strlen(text);
    if (n >= sizeof(t))
        return NULL;
    for (size_t k = 0; k <= n; k++)
        t[k] = text[k] == '\'' ? '"' : text[k];
    return json_loads(t, JSON_DECODE_ANY, NULL);
}

/* The schema check of s: 0 and "" when accepted, else -1 and the problem. */
static int checks(const char *s, char *why)
{
    json_t *schema = j(s);
    why[0] = '\0';
    int rc = schema ? jschema_check(schema, why, 256) : -2;
    json_decref(schema);
    return rc;
}

/* Validates v against s (both JSON with '); why gets the problem. */
static int valid(const char *s, const char *v, char *why)
{
    json_t *schema = j(s), *value = j(v);
    why[0] = '\0';
    int rc = schema && value && jschema_check(schema, why, 256) == 0
                 ? jschema_validate(schema, value, why, 256)
                 : -2;
    json_decref(schema);
    json_decref(value);
    return rc;
}

static void jschema_schemas_of_the_subset(void)
{
    char why[256];
    CHECK_INT(checks("{}", why), 0);
    static const char search[] =
        "{'type': 'object', 'properties': {'q': {'type': 'string', 'description': "
        "'the query', 'minLength': 1}, 'n': {'type': ['integer', 'null'], 'minimum': 1, "
        "'maximum': 10}, 'tags': {'type': 'array', 'items': {'enum': ['a', 'b']}, "
        "'maxItems': 3}}, 'required': ['q'], 'additionalProperties': false, 'title': 'Search'}";
    CHECK_INT(checks(search, why), 0);
    CHECK_INT(checks("[]", why), -1);
    CHECK_STR(why, "(root): must be a schema object");
    CHECK_INT(checks("{'$ref': '#/x'}", why), -1);
    CHECK_STR(why, "(root): keyword \"$ref\" is not supported");
    CHECK_INT(checks("{'properties': {'a': {'anyOf': []}}}", why), -1);
    CHECK_STR(why, "properties.a: keyword \"anyOf\" is not supported");
    CHECK_INT(checks("{'type': 'text'}", why), -1);
    CHECK_STR(why, "type: must be a JSON type name or an array of them");
    CHECK_INT(checks("{'type': []}", why), -1);
    CHECK_INT(checks("{'required': 'q'}", why), -1);
    CHECK_STR(why, "required: must be an array of property names");
    CHECK_INT(checks("{'additionalProperties': {}}", why), -1);
    CHECK_STR(why, "additionalProperties: must be true or false");
    CHECK_INT(checks("{'enum': []}", why), -1);
    CHECK_INT(checks("{'items': 5}", why), -1);
    CHECK_STR(why, "items: must be a schema object");
    CHECK_INT(checks("{'minLength': -1}", why), -1);
    CHECK_STR(why, "minLength: must be a non-negative integer");
    CHECK_INT(checks("{'maximum': 'ten'}", why), -1);
    CHECK_STR(why, "maximum: must be a number");
}

static void jschema_depth_bound(void)
{
    char s[2048] = "", why[256];
    /* items nested JSCHEMA_MAX_DEPTH deep pass; one more does not */
    for (int depth = JSCHEMA_MAX_DEPTH; depth <= JSCHEMA_MAX_DEPTH + 1; depth++) {
        size_t n = 0;
        for (int k = 0; k < depth; k++)
            n += (size_t)snprintf(s + n, sizeof(s) - n, "{'items': ");
        n += (size_t)snprintf(s + n, sizeof(s) - n, "{}");
        for (int k = 0; k < depth; k++)
            n += (size_t)snprintf(s + n, sizeof(s) - n, "}");
        CHECK_INT(checks(s, why), depth <= JSCHEMA_MAX_DEPTH ? 0 : -1);
    }
    CHECK(strstr(why, "nests too deep") != NULL);
}

static void jschema_types(void)
{
    char why[256];
    CHECK_INT(valid("{'type': 'string'}", "'x'", why), 0);
    CHECK_INT(valid("{'type': 'string'}", "5", why), -1);
    CHECK_STR(why, "(root): must be a string");
    CHECK_INT(valid("{'type': 'integer'}", "5", why), 0);
    CHECK_INT(valid("{'type': 'integer'}", "5.0", why), 0);
    CHECK_INT(valid("{'type': 'integer'}", "5.5", why), -1);
    CHECK_STR(why, "(root): must be an integer");
    CHECK_INT(valid("{'type': 'number'}", "5", why), 0);
    CHECK_INT(valid("{'type': 'boolean'}", "false", why), 0);
    CHECK_INT(valid("{'type': 'null'}", "null", why), 0);
    CHECK_INT(valid("{'type': 'object'}", "[]", why), -1);
    CHECK_INT(valid("{'type': 'array'}", "[]", why), 0);
    CHECK_INT(valid("{'type': ['string', 'null']}", "null", why), 0);
    CHECK_INT(valid("{'type': ['string', 'null']}", "1", why), -1);
    CHECK_STR(why, "(root): is of none of the types the schema allows");
    CHECK_INT(valid("{}", "{'anything': [1]}", why), 0);
}

static void jschema_objects(void)
{
    char why[256];
    static const char s[] = "{'type': 'object', 'properties': {'city': {'type': 'string'}, "
                            "'days': {'type': 'integer', 'minimum': 1, 'maximum': 7}}, "
                            "'required': ['city']}";
    CHECK_INT(valid(s, "{'city': 'Oslo', 'days': 3}", why), 0);
    CHECK_INT(valid(s, "{'city': 'Oslo', 'extra': true}", why), 0);
    CHECK_INT(valid(s, "{'days': 3}", why), -1);
    CHECK_STR(why, "(root): missing required property \"city\"");
    CHECK_INT(valid(s, "{'city': 7}", why), -1);
    CHECK_STR(why, "city: must be a string");
    CHECK_INT(valid(s, "{'city': 'Oslo', 'days': 0}", why), -1);
    CHECK_STR(why, "days: is below the minimum");
    CHECK_INT(valid(s, "{'city': 'Oslo', 'days': 8}", why), -1);
    CHECK_STR(why, "days: is above the maximum");
    CHECK_INT(valid(s, "{'city': 'Oslo', 'days': 7.0}", why), 0);
    static const char closed[] = "{'type': 'object', 'properties': {'a': {}}, "
                         "'additionalProperties': false}";
    CHECK_INT(valid(closed, "{'a': 1}", why), 0);
    CHECK_INT(valid(closed, "{'a': 1, 'b': 2}", why), -1);
    CHECK_STR(why, "b: is not a property the schema allows");
}

static void jschema_arrays_enums_strings(void)
{
    char why[256];
    static const char s[] = "{'type': 'array', 'items': {'type': 'object', 'properties': "
                            "{'k': {'enum': ['x', 2, null]}}}, 'minItems': 1, 'maxItems': 2}";
    CHECK_INT(valid(s, "[{'k': 'x'}, {'k': 2.0}]", why), 0);
    CHECK_INT(valid(s, "[]", why), -1);
    CHECK_STR(why, "(root): has fewer items than minItems");
    CHECK_INT(valid(s, "[{}, {}, {}]", why), -1);
    CHECK_STR(why, "(root): has more items than maxItems");
    CHECK_INT(valid(s, "[{'k': null}, {'k': 'y'}]", why), -1);
    CHECK_STR(why, "[1].k: is not one of the values enum allows");
    /* lengths count characters, not bytes */
    CHECK_INT(valid("{'minLength': 2, 'maxLength': 2}", "'\xc3\xa9\xc3\xa9'", why), 0);
    CHECK_INT(valid("{'maxLength': 1}", "'ab'", why), -1);
    CHECK_STR(why, "(root): must be at most 1 characters long");
    CHECK_INT(valid("{'minLength': 1}", "''", why), -1);
    CHECK_STR(why, "(root): must be at least 1 characters long");
}

const unit_test jschema_tests[] = {
    TEST(jschema_schemas_of_the_subset),
    TEST(jschema_depth_bound),
    TEST(jschema_types),
    TEST(jschema_objects),
    TEST(jschema_arrays_enums_strings),
    {NULL, NULL},
};
