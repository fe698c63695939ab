/* libFuzzer target: the cron parser over raw bytes, and the next due times
 * of what it accepts, in UTC and in a zone with DST. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schedules/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Due times of c after from in z: strictly later each, whole seconds, and
 * "never" only when the first search already said so. */
static void check_next(const cron_expr *c, cron_zone *z, int64_t from)
{
    int64_t t = from;
    for (int i = 0; i < 3; i++) {
        int64_t next;
        int rc = cron_zone_next(c, z, t, &next);
        if (rc == 1 && i == 0)
            return;
        if (rc != 0 || next <= t || next % 1000 != 0)
            __builtin_trap();
        t = next;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cron_zone *utc, *berlin;
    if (!utc) {
        utc = cron_zone_open("UTC", NULL, 0);
        berlin = cron_zone_open("Europe/Berlin", NULL, 0);
        if (!utc || !berlin)
            __builtin_trap();
    }
    /* A NUL-terminated copy, so that reading past size would be caught. */
    char *s = malloc(size + 1);
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    cron_expr c;
    char err[256];
    err[0] = '\0';
    int rc = cron_parse(s, &c, err, sizeof(err));
    if (rc == 0) {
        for (int f = 0; f < CRON_NFIELDS; f++)
            if (c.bits[f] == 0)
                __builtin_trap();
        if (c.bits[CRON_WDAY] >> 7)
            __builtin_trap();
        /* 2027-10-31T00:59:00Z: a minute before Berlin's clocks go back. */
        check_next(&c, utc, INT64_C(1824944340000));
        check_next(&c, berlin, INT64_C(1824944340000));
    } else if (rc != -1 || err[0] == '\0') {
        __builtin_trap();
    }
    /* The zone check takes the same bytes as a name. */
    cron_zone_check(s, NULL, 0);
    free(s);
    return 0;
}
