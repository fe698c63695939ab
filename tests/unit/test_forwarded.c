/* Unit tests of the client address behind trusted proxies (http/forwarded.h). */
#include <arpa/inet.h>
#include <stdio.h>

#include "http/forwarded.h"
#include "unit.h"

/* The address chosen from lines (NULL-terminated) with hops, or "-" when none. */
static const char *client(int hops, const char *const *lines, char *out, size_t outlen)
{
    forwarded_scan fs;
    forwarded_begin(&fs, hops);
    for (; *lines; lines++)
        forwarded_feed(&fs, *lines);
    if (forwarded_client(&fs, out, outlen) != 0)
        snprintf(out, outlen, "-");
    return out;
}

static void forwarded_counts_from_the_right(void)
{
    static const struct {
        int hops;
        const char *lines[4];
        const char *want;
    } cases[] = {
        {1, {"203.0.113.9"}, "203.0.113.9"},
        {1, {"6.6.6.6, 203.0.113.9"}, "203.0.113.9"},
        {2, {"6.6.6.6, 203.0.113.9, 10.0.0.1"}, "203.0.113.9"},
        {3, {"6.6.6.6, 203.0.113.9, 10.0.0.1, 10.0.0.2"}, "203.0.113.9"},
        {2, {"203.0.113.9"}, "-"},                      /* fewer entries than hops */
        {1, {NULL}, "-"},                               /* no header */
        {1, {"6.6.6.6", "203.0.113.9"}, "203.0.113.9"}, /* lines are one list */
        {2, {"6.6.6.6, 203.0.113.9", "10.0.0.1"}, "203.0.113.9"},
        {2, {"203.0.113.9", "", "10.0.0.1"}, "203.0.113.9"},
        {1, {"203.0.113.9,, ,\t"}, "203.0.113.9"},      /* empty elements do not count */
        {1, {" \t 203.0.113.9 \t"}, "203.0.113.9"},
        {1, {"203.0.113.9, nope"}, "-"},                /* never searches further left */
        {1, {"nope"}, "-"},
        {1, {"203.0.113.9:80"}, "-"},
        {1, {"[2001:db8::1]"}, "-"},
        {1, {"fe80::1%eth0"}, "-"},
        {1, {"2001:DB8:0:0:0:0:0:7"}, "2001:db8::7"},
        {1, {"::ffff:203.0.113.9"}, "::ffff:203.0.113.9"},
        {1, {"1234:5678:9abc:def0:1234:5678:9abc:def0:1"}, "-"}, /* too long */
        {16, {"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"}, "-"},
        {16, {"203.0.113.1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"}, "203.0.113.1"},
        {99, {"203.0.113.1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"}, "203.0.113.1"}, /* clamped */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[INET6_ADDRSTRLEN];
        client(cases[i].hops, cases[i].lines, out, sizeof(out));
        if (strcmp(out, cases[i].want) != 0) {
            char m[300];
            snprintf(m, sizeof(m), "case %zu (%s): got %s, want %s", i,
                     cases[i].lines[0] ? cases[i].lines[0] : "(none)", out, cases[i].want);
            unit_fail(__FILE__, __LINE__, m);
            return;
        }
    }
}

const unit_test forwarded_tests[] = {
    TEST(forwarded_counts_from_the_right),
    {NULL, NULL},
};
