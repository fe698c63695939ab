/* libFuzzer target: header values the server interprets (Accept-Encoding,
 * X-Request-Id, X-Forwarded-For lines) and the log encoder on arbitrary
 * bytes. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/gzip.h"
#include "core/ids.h"
#include "core/mem.h"
#include "http/forwarded.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size);
    gzip_accepted(text);
    ids_request_id_ok(text);
    /* the first byte picks the hops; newlines split the text into lines */
    forwarded_scan fs;
    forwarded_begin(&fs, size ? data[0] % (FORWARDED_HOPS_MAX + 2) : 1);
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        forwarded_feed(&fs, line);
    }
    char ip[INET6_ADDRSTRLEN];
    forwarded_client(&fs, ip, sizeof(ip));
    buf b;
    buf_init(&b, 1 << 20);
    buf_json_escape(&b, (const char *)data, size);
    buf_free(&b);
    free(text);
    return 0;
}
