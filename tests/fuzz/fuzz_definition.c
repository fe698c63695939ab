/* libFuzzer target: workflow definition validation over any JSON body. */
#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "engine/definition.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = NULL;
    char why[256];
    if (json_parse_body((const char *)data, size, &body, why, sizeof(why)) != AOP_OK)
        return 0;
    json_t *details = json_array();
    /* The body itself, and the body's "definition" as the API passes it. */
    int n = definition_validate(body, details);
    if (n < 0 || n > DEFINITION_MAX_PROBLEMS || json_array_size(details) != (size_t)n)
        __builtin_trap();
    json_array_clear(details);
    json_t *inner = json_object_get(body, "definition");
    if (inner)
        definition_validate(inner, details);
    json_decref(details);
    json_decref(body);
    return 0;
}
