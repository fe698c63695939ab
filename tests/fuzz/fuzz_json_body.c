/* libFuzzer target: request-body parsing (UTF-8, depth, duplicate keys, JSON). */
#include <stddef.h>
#include <stdint.h>

#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = NULL;
    char why[256];
    if (json_parse_body((const char *)data, size, &v, why, sizeof(why)) == AOP_OK)
        json_decref(v);
    json_depth((const char *)data, size, JSON_MAX_DEPTH);
    return 0;
}
