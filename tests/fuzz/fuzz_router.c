/* libFuzzer target: route matching of arbitrary paths against the real table,
 * and of arbitrary patterns against arbitrary paths. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/mem.h"
#include "http/router.h"
#include "http/routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size);
    char *split = strchr(text, '\n');
    arena a = {0};
    router_param params[ROUTER_MAX_PARAMS];
    int n;
    for (int i = 0; i < http_routes_len; i++)
        router_match(http_routes[i].pattern, text, params, &n, &a);
    if (split) {
        *split = '\0';
        router_match(text, split + 1, params, &n, &a);
    }
    arena_free(&a);
    free(text);
    return 0;
}
