#include "core/gzip.h"
#include "core/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int gzip_compress(const char *in, size_t n, char **out, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    uLong cap = deflateBound(&z, (uLong)n);
    char *dst = xmalloc(cap);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)dst;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(dst);
        return -1;
    }
    *out = dst;
    *outlen = z.total_out;
    return 0;
}

/* Is the parameter text after a token (";q=0.000") a zero quality? */
static int q_is_zero(const char *p, const char *end)
{
    while (p < end) {
        while (p < end && (*p == ';' || *p == ' ' || *p == '\t'))
            p++;
        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            p += 2;
            if (p < end && *p == '1')
                return 0;
            while (p < end && (*p == '0' || *p == '.'))
                p++;
            return p == end || *p == ' ' || *p == ';';
        }
        while (p < end && *p != ';')
            p++;
    }
    return 0;
}

int gzip_accepted(const char *ae)
{
    if (!ae)
        return 0;
    const char *p = ae;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t tlen = (size_t)(p - tok);
        const char *params = p;
        while (*p && *p != ',')
            p++;
        int named = (tlen == 4 && strncasecmp(tok, "gzip", 4) == 0) || (tlen == 1 && *tok == '*');
        if (named && !q_is_zero(params, p))
            return 1;
    }
    return 0;
}
