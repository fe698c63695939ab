/* libFuzzer target: header values the server interprets (Accept-Encoding,
 * X-Request-Id) and the log encoder on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/buf.h"
#include "core/gzip.h"
#include "core/ids.h"
#include "core/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size);
    gzip_accepted(text);
    ids_request_id_ok(text);
    buf b;
    buf_init(&b, 1 << 20);
    buf_json_escape(&b, (const char *)data, size);
    buf_free(&b);
    free(text);
    return 0;
}
