/* libFuzzer target: the TZif parser and the POSIX TZ string parser over
 * raw bytes (zone files and their footers come from the system, but a
 * reader must not trust them), and what an accepted zone computes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schedules/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The offsets of z stay within RFC 8536's bounds, and each wall time in a
 * few windows maps to the first instant whose wall time reaches it: the
 * second before reads earlier, and later wall times never map earlier. */
static void check_zone(const tz_zone *z)
{
    static const int64_t starts[] = {-2000000000, 0, 1000000000, 1824944340, 2240524800,
                                     4102444800, 253086768000};
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
        int64_t prev = INT64_MIN;
        for (int64_t local = starts[i]; local < starts[i] + 3 * 86400; local += 1800) {
            int32_t off = tz_offset(z, local);
            if (off < -25 * 3600 || off > 26 * 3600)
                __builtin_trap();
            int64_t t = tz_instant(z, local);
            if (t < prev || t + tz_offset(z, t) < local || t - 1 + tz_offset(z, t - 1) >= local)
                __builtin_trap();
            prev = t;
        }
    }
}

/* A version 2 TZif file with no transitions, one type and rule as its
 * footer, into buf (at least 128 bytes more than the rule); its length. */
static size_t wrap_rule(const uint8_t *rule, size_t len, uint8_t *buf)
{
    static const uint8_t counts[24] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                       0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1};
    uint8_t *p = buf;
    for (int h = 0; h < 2; h++) {
        memcpy(p, "TZif2", 5);
        memset(p + 5, 0, 15);
        memcpy(p + 20, counts, sizeof(counts));
        memset(p + 44, 0, 7); /* one type (UTC), one character */
        p += 51;
    }
    *p++ = '\n';
    memcpy(p, rule, len);
    p += len;
    *p++ = '\n';
    return (size_t)(p - buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    tz_zone *z;
    err[0] = '\0';
    aop_err rc = tz_parse(data, size, &z, err, sizeof(err));
    if (rc == AOP_OK) {
        check_zone(z);
        tz_free(z);
    } else if (err[0] == '\0' || (rc != AOP_ERR_NOT_FOUND && rc != AOP_ERR_INTERNAL)) {
        __builtin_trap();
    }

    /* The same bytes as a TZ string: an accepted one gives its two
     * offsets only, and makes a zone file whose footer it is. */
    tz_rule r;
    if (tz_rule_parse((const char *)data, size, &r, err, sizeof(err)) != AOP_OK)
        return 0;
    if (size > 4096 || memchr(data, '\n', size))
        return 0;
    for (int64_t t = 0; t < 20 * 86400 * 365LL; t += 86400 * 13 + 3601) {
        int32_t off = tz_rule_offset(&r, t);
        if (off != r.std_off && !(r.has_dst && off == r.dst_off))
            __builtin_trap();
    }
    uint8_t *buf = malloc(size + 128);
    size_t len = wrap_rule(data, size, buf);
    if (tz_parse(buf, len, &z, err, sizeof(err)) != AOP_OK)
        __builtin_trap();
    check_zone(z);
    tz_free(z);
    free(buf);
    return 0;
}
