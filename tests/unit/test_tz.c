/* Unit tests of time zones read from the system's tz database
 * (schedules/tz.h): real zones, POSIX TZ strings, malformed TZif files
 * (written into a temporary TZDIR), refused names, the cache, and offsets
 * compared with glibc's localtime_r. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "schedules/tz.h"
#include "unit.h"

/* Unix seconds of an RFC 3339 time (aborts the run on a typo in a test). */
static int64_t at(const char *rfc3339)
{
    int64_t ms;
    if (clock_parse_rfc3339(rfc3339, 0, &ms) != 0) {
        fprintf(stderr, "test_tz: bad time %s\n", rfc3339);
        abort();
    }
    return ms / 1000;
}

/* Checks that zone's offset at each instant is the one listed, and fails
 * with the zone and instant when not. */
typedef struct {
    const char *when;
    int32_t off;
} offset_case;

static int offsets_are(const char *zone, const offset_case *cases, size_t n, int line)
{
    const tz_zone *z;
    char err[256], m[512];
    if (tz_acquire(zone, &z, err, sizeof(err)) != AOP_OK) {
        snprintf(m, sizeof(m), "%s: %s", zone, err);
        unit_fail(__FILE__, line, m);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int32_t got = tz_offset(z, at(cases[i].when));
        if (got != cases[i].off) {
            snprintf(m, sizeof(m), "%s at %s: offset %d, want %d", zone, cases[i].when,
                     (int)got, (int)cases[i].off);
            unit_fail(__FILE__, line, m);
            rc = -1;
        }
    }
    tz_release(z);
    return rc;
}

#define OFFSETS(zone, ...)                                                             \
    do {                                                                               \
        static const offset_case c_[] = {__VA_ARGS__};                                 \
        if (offsets_are(zone, c_, sizeof(c_) / sizeof(c_[0]), __LINE__) != 0)         \
            return;                                                                    \
    } while (0)

/* ---- real zones ---- */

/* Zones whose rules changed after ICU's bundled 2022e data. */
static void tz_zones_changed_since_2022(void)
{
    /* Cairo has DST again since 2023: from the last Friday of April (00:00)
     * to the last Thursday of October (24:00). */
    OFFSETS("Africa/Cairo", {"2027-07-15T12:00:00Z", 3 * 3600},
            {"2027-01-15T12:00:00Z", 2 * 3600}, {"2027-04-29T21:59:59Z", 2 * 3600},
            {"2027-04-29T22:00:00Z", 3 * 3600}, {"2027-10-28T20:59:59Z", 3 * 3600},
            {"2027-10-28T21:00:00Z", 2 * 3600});
    OFFSETS("Asia/Almaty", {"2027-01-15T12:00:00Z", 5 * 3600},
            {"2027-07-15T12:00:00Z", 5 * 3600});
    OFFSETS("America/Asuncion", {"2027-01-15T12:00:00Z", -3 * 3600},
            {"2027-07-15T12:00:00Z", -3 * 3600});
    OFFSETS("America/Nuuk", {"2027-01-15T12:00:00Z", -2 * 3600},
            {"2027-07-15T12:00:00Z", -1 * 3600});
}

/* 2040 is past the last transition the files list (2037): the footer's
 * rule answers. */
static void tz_footer_rule_past_the_table(void)
{
    OFFSETS("Europe/Berlin", {"2040-01-15T12:00:00Z", 3600},
            {"2040-03-25T00:59:59Z", 3600}, {"2040-03-25T01:00:00Z", 7200},
            {"2040-10-28T00:59:59Z", 7200}, {"2040-10-28T01:00:00Z", 3600},
            {"2399-07-01T00:00:00Z", 7200});
    OFFSETS("America/New_York", {"2040-01-15T12:00:00Z", -5 * 3600},
            {"2040-03-11T06:59:59Z", -5 * 3600}, {"2040-03-11T07:00:00Z", -4 * 3600},
            {"2040-11-04T05:59:59Z", -4 * 3600}, {"2040-11-04T06:00:00Z", -5 * 3600});
    /* Wall times in 2040: the gap at the jump, the repeat at its first. */
    const tz_zone *z;
    CHECK_INT(tz_acquire("Europe/Berlin", &z, NULL, 0), AOP_OK);
    CHECK_INT(tz_instant(z, at("2040-03-25T02:30:00Z")), at("2040-03-25T01:00:00Z"));
    CHECK_INT(tz_instant(z, at("2040-03-25T03:00:00Z")), at("2040-03-25T01:00:00Z"));
    CHECK_INT(tz_instant(z, at("2040-03-25T01:59:59Z")), at("2040-03-25T00:59:59Z"));
    CHECK_INT(tz_instant(z, at("2040-10-28T02:30:00Z")), at("2040-10-28T00:30:00Z"));
    CHECK_INT(tz_instant(z, at("2040-10-28T03:00:00Z")), at("2040-10-28T02:00:00Z"));
    tz_release(z);
}

static void tz_zone_without_dst(void)
{
    OFFSETS("Asia/Kathmandu", {"1990-01-01T00:00:00Z", 20700},
            {"2027-01-15T12:00:00Z", 20700}, {"2027-07-15T12:00:00Z", 20700},
            {"2060-07-15T12:00:00Z", 20700});
    OFFSETS("UTC", {"1970-01-01T00:00:00Z", 0}, {"2500-07-01T00:00:00Z", 0});
    const tz_zone *z;
    CHECK_INT(tz_acquire("Asia/Kathmandu", &z, NULL, 0), AOP_OK);
    CHECK_INT(tz_instant(z, at("2027-06-01T09:00:00Z")), at("2027-06-01T03:15:00Z"));
    tz_release(z);
}

/* Wall time to instant in 2027's Berlin (table data): skipped times map
 * to the jump, repeated ones to their first occurrence, all in order. */
static void tz_instant_follows_the_contract(void)
{
    const tz_zone *z;
    CHECK_INT(tz_acquire("Europe/Berlin", &z, NULL, 0), AOP_OK);
    CHECK_INT(tz_instant(z, at("2027-03-28T01:59:59Z")), at("2027-03-28T00:59:59Z"));
    CHECK_INT(tz_instant(z, at("2027-03-28T02:00:00Z")), at("2027-03-28T01:00:00Z"));
    CHECK_INT(tz_instant(z, at("2027-03-28T02:59:59Z")), at("2027-03-28T01:00:00Z"));
    CHECK_INT(tz_instant(z, at("2027-03-28T03:00:00Z")), at("2027-03-28T01:00:00Z"));
    CHECK_INT(tz_instant(z, at("2027-03-28T03:00:01Z")), at("2027-03-28T01:00:01Z"));
    CHECK_INT(tz_instant(z, at("2027-10-31T01:59:59Z")), at("2027-10-30T23:59:59Z"));
    CHECK_INT(tz_instant(z, at("2027-10-31T02:00:00Z")), at("2027-10-31T00:00:00Z"));
    CHECK_INT(tz_instant(z, at("2027-10-31T02:59:59Z")), at("2027-10-31T00:59:59Z"));
    CHECK_INT(tz_instant(z, at("2027-10-31T03:00:00Z")), at("2027-10-31T02:00:00Z"));
    /* Every wall second of both days: instants never go backwards, and a
     * wall time that exists maps to an instant that shows it. */
    const char *days[] = {"2027-03-28T00:00:00Z", "2027-10-31T00:00:00Z"};
    for (int d = 0; d < 2; d++) {
        int64_t prev = INT64_MIN;
        for (int64_t w = at(days[d]); w < at(days[d]) + 86400; w++) {
            int64_t t = tz_instant(z, w);
            CHECK(t >= prev);
            CHECK(t + tz_offset(z, t) >= w);
            prev = t;
        }
    }
    /* Apia skipped 30 December 2011: the whole day maps to the jump. */
    const tz_zone *apia;
    CHECK_INT(tz_acquire("Pacific/Apia", &apia, NULL, 0), AOP_OK);
    CHECK_INT(tz_instant(apia, at("2011-12-30T12:00:00Z")), at("2011-12-30T10:00:00Z"));
    CHECK_INT(tz_instant(apia, at("2011-12-31T00:00:00Z")), at("2011-12-30T10:00:00Z"));
    CHECK_INT(tz_instant(apia, at("2011-12-29T23:59:59Z")), at("2011-12-30T09:59:59Z"));
    tz_release(apia);
    tz_release(z);
}

/* ---- POSIX TZ strings ---- */

static int rule_of(const char *s, tz_rule *r)
{
    return tz_rule_parse(s, strlen(s), r, NULL, 0);
}

static void tz_rule_parses_posix_strings(void)
{
    tz_rule r;
    CHECK_INT(rule_of("CET-1CEST,M3.5.0,M10.5.0/3", &r), AOP_OK);
    CHECK_INT(r.std_off, 3600);
    CHECK_INT(r.dst_off, 7200);
    CHECK(r.has_dst);
    CHECK_INT(r.start.kind, TZ_DATE_MWD);
    CHECK_INT(r.start.month, 3);
    CHECK_INT(r.start.week, 5);
    CHECK_INT(r.start.wday, 0);
    CHECK_INT(r.start.time, 7200); /* the default */
    CHECK_INT(r.end.month, 10);
    CHECK_INT(r.end.time, 3 * 3600);

    CHECK_INT(rule_of("<+0545>-5:45", &r), AOP_OK);
    CHECK_INT(r.std_off, 5 * 3600 + 45 * 60);
    CHECK(!r.has_dst);
    CHECK_INT(tz_rule_offset(&r, at("2027-07-01T00:00:00Z")), 20700);
    CHECK_INT(rule_of("LMT+0:53:28", &r), AOP_OK);
    CHECK_INT(r.std_off, -(53 * 60 + 28));
    CHECK_INT(rule_of("<-03>3", &r), AOP_OK);
    CHECK_INT(r.std_off, -3 * 3600);
    CHECK_INT(rule_of("EST5EDT,M3.2.0,M11.1.0", &r), AOP_OK);
    CHECK_INT(r.std_off, -5 * 3600);
    CHECK_INT(r.dst_off, -4 * 3600);
    /* A DST offset written out, and negative and past-24h times (RFC 8536). */
    CHECK_INT(rule_of("<-02>2<-01>,M3.5.0/-1,M10.5.0/0", &r), AOP_OK);
    CHECK_INT(r.dst_off, -3600);
    CHECK_INT(r.start.time, -3600);
    CHECK_INT(r.end.time, 0);
    CHECK_INT(rule_of("EET-2EEST,M4.5.5/0,M10.5.4/24", &r), AOP_OK);
    CHECK_INT(r.end.time, 24 * 3600);
    CHECK_INT(rule_of("XXX0YYY-1,M3.5.0/167,M10.5.0/-167:30:15", &r), AOP_OK);
    CHECK_INT(r.start.time, 167 * 3600);
    CHECK_INT(r.end.time, -(167 * 3600 + 30 * 60 + 15));
    CHECK_INT(rule_of("IST-1GMT0,M10.5.0,M3.5.0/1", &r), AOP_OK); /* Dublin: DST in winter */
    CHECK_INT(r.std_off, 3600);
    CHECK_INT(r.dst_off, 0);
    CHECK_INT(tz_rule_offset(&r, at("2027-01-15T00:00:00Z")), 0);
    CHECK_INT(tz_rule_offset(&r, at("2027-07-15T00:00:00Z")), 3600);
    CHECK_INT(rule_of("<+0330>-3:30<+0430>,J79/24,J263/24", &r), AOP_OK);
    CHECK_INT(r.start.kind, TZ_DATE_JULIAN);
    CHECK_INT(r.start.day, 79);
    CHECK_INT(rule_of("XXX0YYY,59/0,300", &r), AOP_OK);
    CHECK_INT(r.start.kind, TZ_DATE_DAY);
    CHECK_INT(r.start.day, 59);
    CHECK_INT(r.end.day, 300);
}

/* The dates a rule names, applied at instants. */
static void tz_rule_dates_and_times(void)
{
    tz_rule r;
    /* Jn never counts 29 February: J60 is 1 March in every year. */
    CHECK_INT(rule_of("XXX0YYY-1,J60/0,J61/0", &r), AOP_OK);
    CHECK_INT(tz_rule_offset(&r, at("2028-02-29T12:00:00Z")), 0);
    CHECK_INT(tz_rule_offset(&r, at("2028-03-01T00:00:00Z")), 3600);
    CHECK_INT(tz_rule_offset(&r, at("2028-03-01T22:59:59Z")), 3600);
    CHECK_INT(tz_rule_offset(&r, at("2028-03-01T23:00:00Z")), 0);
    CHECK_INT(tz_rule_offset(&r, at("2027-03-01T12:00:00Z")), 3600);
    /* n counts it, from 0: day 59 is 29 February in a leap year, 1 March
     * in another. */
    CHECK_INT(rule_of("XXX0YYY-1,59/0,60/0", &r), AOP_OK);
    CHECK_INT(tz_rule_offset(&r, at("2028-02-29T12:00:00Z")), 3600);
    CHECK_INT(tz_rule_offset(&r, at("2028-03-01T12:00:00Z")), 0);
    CHECK_INT(tz_rule_offset(&r, at("2027-03-01T12:00:00Z")), 3600);
    CHECK_INT(tz_rule_offset(&r, at("2027-02-28T12:00:00Z")), 0);
    /* Times past 24 hours and negative ones move the change across days:
     * last Sunday of March 2027 (the 28th) + 167 h, last Sunday of October
     * (the 31st) - 167 h, in DST (so 1 h earlier in UTC). */
    CHECK_INT(rule_of("XXX0YYY-1,M3.5.0/167,M10.5.0/-167", &r), AOP_OK);
    CHECK_INT(tz_rule_offset(&r, at("2027-04-03T22:59:59Z")), 0);
    CHECK_INT(tz_rule_offset(&r, at("2027-04-03T23:00:00Z")), 3600);
    CHECK_INT(tz_rule_offset(&r, at("2027-10-23T23:59:59Z")), 3600);
    CHECK_INT(tz_rule_offset(&r, at("2027-10-24T00:00:00Z")), 0);
    /* Mm.5.d is the last such day; Mm.1.d the first. */
    CHECK_INT(rule_of("XXX0YYY-1,M2.5.2/0,M2.1.3/0", &r), AOP_OK); /* DST over New Year */
    /* February 2027: first Wednesday the 3rd, last Tuesday the 23rd. */
    CHECK_INT(tz_rule_offset(&r, at("2027-02-02T22:59:59Z")), 3600);
    CHECK_INT(tz_rule_offset(&r, at("2027-02-02T23:00:00Z")), 0); /* 00:00 in DST */
    CHECK_INT(tz_rule_offset(&r, at("2027-02-22T23:59:59Z")), 0);
    CHECK_INT(tz_rule_offset(&r, at("2027-02-23T00:00:00Z")), 3600);
    /* DST all year (RFC 8536's example). */
    CHECK_INT(rule_of("EST5EDT,0/0,J365/25", &r), AOP_OK);
    static const char *const year[] = {"2027-01-01T05:00:00Z", "2027-06-01T00:00:00Z",
                                       "2027-12-31T23:59:59Z", "2028-01-01T04:00:00Z",
                                       "2028-12-31T12:00:00Z"};
    for (size_t i = 0; i < sizeof(year) / sizeof(year[0]); i++)
        CHECK_INT(tz_rule_offset(&r, at(year[i])), -4 * 3600);
}

static void tz_rule_refuses_malformed_strings(void)
{
    static const char *const bad[] = {
        "", "CE-1", "CET", "CET-", "CET-25", "CET-1:60", "CET-1:00:60", "CET-1x",
        "CET-1CEST",                          /* DST without a rule */
        "CET-1CEST-2",                        /* likewise */
        "CET-1CE,M3.5.0,M10.5.0",             /* a short DST name */
        "CET-1CEST,M13.1.0,M10.5.0", "CET-1CEST,M0.1.0,M10.5.0", "CET-1CEST,M3.6.0,M10.5.0",
        "CET-1CEST,M3.0.0,M10.5.0", "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,M3.5,M10.5.0",
        "CET-1CEST,J0,J365", "CET-1CEST,J366,J1", "CET-1CEST,366,0",
        "CET-1CEST,M3.5.0/168,M10.5.0", "CET-1CEST,M3.5.0/-168,M10.5.0",
        "CET-1CEST,M3.5.0", "CET-1CEST,M3.5.0,", "CET-1CEST,M3.5.0,M10.5.0x",
        "CET-1CEST,M3.5.0,M10.5.0,", "<+01-1", "<+0>-1", "<+01>", "<+0 1>-1", "1CET-1",
        "CET-1CEST,M3.5.0/,M10.5.0",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tz_rule r;
        char err[256] = "";
        if (tz_rule_parse(bad[i], strlen(bad[i]), &r, err, sizeof(err)) != AOP_ERR_VALIDATION ||
            err[0] == '\0') {
            char m[300];
            snprintf(m, sizeof(m), "\"%s\" was accepted", bad[i]);
            unit_fail(__FILE__, __LINE__, m);
            return;
        }
    }
    /* The length bounds the string: a NUL or anything past it is not read. */
    tz_rule r;
    CHECK_INT(tz_rule_parse("UTC0garbage", 4, &r, NULL, 0), AOP_OK);
    CHECK_INT(tz_rule_parse("UTC0\0", 5, &r, NULL, 0), AOP_ERR_VALIDATION);
}

/* ---- TZif files ---- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int b = 0; b < 4; b++)
        p[b] = (uint8_t)(v >> (24 - 8 * b));
}

/* A header of version '2' with counts isut, isstd, leap, time, type, char. */
static uint8_t *put_header(uint8_t *p, const uint32_t counts[6])
{
    memcpy(p, "TZif2", 5);
    memset(p + 5, 0, 15);
    for (int i = 0; i < 6; i++)
        put32(p + 20 + 4 * i, counts[i]);
    return p + 44;
}

/* A version 2 TZif file into buf (big enough): n transitions at times to
 * types idx, ntypes types of UTC offsets offs, the footer's TZ string.
 * Its length. */
static size_t tzif(uint8_t *buf, const int64_t *times, const uint8_t *idx, uint32_t n,
                   const int32_t *offs, uint32_t ntypes, const char *footer)
{
    /* A minimal version 1 block: one type, one character. */
    uint8_t *p = put_header(buf, (const uint32_t[6]){0, 0, 0, 0, 1, 1});
    memset(p, 0, 7);
    p = put_header(p + 7, (const uint32_t[6]){0, 0, 0, n, ntypes, 4});
    for (uint32_t i = 0; i < n; i++, p += 8) {
        put32(p, (uint32_t)((uint64_t)times[i] >> 32));
        put32(p + 4, (uint32_t)times[i]);
    }
    if (n)
        memcpy(p, idx, n);
    p += n;
    for (uint32_t i = 0; i < ntypes; i++, p += 6) {
        put32(p, (uint32_t)offs[i]);
        p[4] = offs[i] != offs[0];
        p[5] = 0;
    }
    memcpy(p, "XYZ", 4);
    p += 4;
    p += sprintf((char *)p, "\n%s\n", footer);
    return (size_t)(p - buf);
}

/* Offsets in the v2 header of tzif's files: the counts, then the data. */
#define V2_AT 51
#define V2_TIMECNT (V2_AT + 32)
#define V2_TYPECNT (V2_AT + 36)
#define V2_CHARCNT (V2_AT + 40)
#define V2_DATA (V2_AT + 44)

/* A zone of two transitions and a footer, parsed from memory. */
static void tz_parse_reads_tzif(void)
{
    uint8_t buf[512];
    const int64_t times[] = {at("2000-01-01T00:00:00Z"), at("2010-01-01T00:00:00Z")};
    const uint8_t idx[] = {1, 0};
    const int32_t offs[] = {3600, 7200};
    size_t len = tzif(buf, times, idx, 2, offs, 2, "<+03>-3");
    tz_zone *z;
    char err[256];
    CHECK_INT(tz_parse(buf, len, &z, err, sizeof(err)), AOP_OK);
    CHECK_INT(tz_offset(z, at("1999-12-31T23:59:59Z")), 3600); /* type 0 before */
    CHECK_INT(tz_offset(z, at("2000-01-01T00:00:00Z")), 7200);
    CHECK_INT(tz_offset(z, at("2009-12-31T23:59:59Z")), 7200);
    CHECK_INT(tz_offset(z, at("2010-01-01T00:00:00Z")), 10800); /* the footer from the last */
    CHECK_INT(tz_offset(z, at("2050-01-01T00:00:00Z")), 10800);
    tz_free(z);
    /* No transitions: the footer, or type 0 when the footer is empty. */
    len = tzif(buf, NULL, NULL, 0, offs, 1, "<-0130>1:30");
    CHECK_INT(tz_parse(buf, len, &z, err, sizeof(err)), AOP_OK);
    CHECK_INT(tz_offset(z, 0), -5400);
    tz_free(z);
    len = tzif(buf, NULL, NULL, 0, offs, 1, "");
    CHECK_INT(tz_parse(buf, len, &z, err, sizeof(err)), AOP_OK);
    CHECK_INT(tz_offset(z, 0), 3600);
    CHECK_INT(tz_instant(z, 7200), 3600);
    tz_free(z);
    len = tzif(buf, times, idx, 2, offs, 2, "");
    CHECK_INT(tz_parse(buf, len, &z, err, sizeof(err)), AOP_OK);
    CHECK_INT(tz_offset(z, at("2050-01-01T00:00:00Z")), 3600); /* the last type */
    tz_free(z);
}

static void tz_parse_refuses_malformed_tzif(void)
{
    uint8_t good[512], buf[512];
    const int64_t times[] = {at("2000-01-01T00:00:00Z"), at("2010-01-01T00:00:00Z")};
    const uint8_t idx[] = {1, 0};
    const int32_t offs[] = {3600, 7200};
    size_t len = tzif(good, times, idx, 2, offs, 2, "CET-1CEST,M3.5.0,M10.5.0/3");
    tz_zone *z = NULL;
    char err[256];
    /* Every truncation. */
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(buf, good, cut);
        if (tz_parse(buf, cut, &z, err, sizeof(err)) == AOP_OK) {
            char m[100];
            snprintf(m, sizeof(m), "the file cut to %zu of %zu bytes was accepted", cut, len);
            unit_fail(__FILE__, __LINE__, m);
            tz_free(z);
            return;
        }
        CHECK(z == NULL);
    }
    /* One change each. */
    static const struct {
        size_t at;
        uint8_t byte;
        aop_err want;
    } flips[] = {
        {0, 'X', AOP_ERR_NOT_FOUND},         /* bad magic */
        {4, 0, AOP_ERR_INTERNAL},            /* version 1 */
        {4, '1', AOP_ERR_INTERNAL},
        {V2_AT, 'X', AOP_ERR_INTERNAL},      /* the second header's magic */
        {V2_AT + 4, 0, AOP_ERR_INTERNAL},    /* its version */
        {V2_TIMECNT, 0xff, AOP_ERR_INTERNAL}, /* counts past the end */
        {V2_TYPECNT, 0xff, AOP_ERR_INTERNAL},
        {V2_CHARCNT, 0xff, AOP_ERR_INTERNAL},
        {V2_TIMECNT + 3, 3, AOP_ERR_INTERNAL},
        {V2_TYPECNT + 3, 0, AOP_ERR_INTERNAL}, /* no time types */
        {V2_CHARCNT + 3, 0, AOP_ERR_INTERNAL}, /* no characters */
        {V2_AT + 20 + 11, 1, AOP_ERR_INTERNAL}, /* a leap second */
        {V2_AT + 20 + 3, 1, AOP_ERR_INTERNAL}, /* UT indicators not one a type */
        {39, 0xff, AOP_ERR_INTERNAL},        /* the version 1 block past the end */
        {V2_DATA + 3, 1, AOP_ERR_INTERNAL},   /* transitions out of order */
        {V2_DATA + 16, 2, AOP_ERR_INTERNAL},  /* a type that is not there */
        {V2_DATA + 18, 0x80, AOP_ERR_INTERNAL}, /* an offset out of range */
        {V2_DATA + 18 + 4, 2, AOP_ERR_INTERNAL}, /* isdst 2 */
        {V2_DATA + 18 + 5, 4, AOP_ERR_INTERNAL}, /* a designation past the characters */
        {V2_DATA + 18 + 12 + 4, 'Q', AOP_ERR_INTERNAL}, /* no '\n' before the footer */
        {V2_DATA + 18 + 12 + 4 + 1, '1', AOP_ERR_INTERNAL}, /* a footer that does not parse */
    };
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        memcpy(buf, good, len);
        buf[flips[i].at] = flips[i].byte;
        aop_err rc = tz_parse(buf, len, &z, err, sizeof(err));
        if (rc != flips[i].want) {
            char m[100];
            snprintf(m, sizeof(m), "byte %zu = %#x: rc %d, want %d", flips[i].at,
                     flips[i].byte, rc, flips[i].want);
            unit_fail(__FILE__, __LINE__, m);
            if (rc == AOP_OK)
                tz_free(z);
            return;
        }
    }
    /* Bytes after the footer. */
    memcpy(buf, good, len);
    buf[len] = 'x';
    CHECK_INT(tz_parse(buf, len + 1, &z, err, sizeof(err)), AOP_ERR_INTERNAL);
    /* The largest counts there are: refused, not overflowed. */
    memcpy(buf, good, len);
    for (int i = 0; i < 6; i++)
        put32(buf + V2_AT + 20 + 4 * i, UINT32_MAX);
    CHECK_INT(tz_parse(buf, len, &z, err, sizeof(err)), AOP_ERR_INTERNAL);
    CHECK_INT(tz_parse(good, len, &z, err, sizeof(err)), AOP_OK);
    tz_free(z);
}

/* ---- loading by name ---- */

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

/* setenv("TZDIR", ...) and back (the tests run one at a time). */
static char *saved_tzdir(void)
{
    const char *v = getenv("TZDIR");
    return v ? strdup(v) : NULL;
}

static void restore_tzdir(char *saved)
{
    if (saved)
        setenv("TZDIR", saved, 1);
    else
        unsetenv("TZDIR");
    free(saved);
}

static void remove_tree(const char *dir, const char *const *names, size_t n)
{
    char path[512];
    for (size_t i = n; i-- > 0;) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (unlink(path) != 0)
            rmdir(path);
    }
    rmdir(dir);
}

/* Zones from a TZDIR of the test's own: a good one, and files that are
 * refused (truncated, bad magic, counts past the end, too large, a
 * directory, a FIFO). */
static void tz_load_reads_tzdir(void)
{
    char dir[] = "/tmp/aop-tz-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    uint8_t good[512], buf[512];
    const int32_t offs[] = {3 * 3600};
    size_t len = tzif(good, NULL, NULL, 0, offs, 1, "<+03>-3");
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/Test", dir);
    int ok = mkdir(sub, 0700) == 0 && write_file(dir, "Test/Plus3", good, len) == 0;
    memcpy(buf, good, len);
    ok = ok && write_file(dir, "Truncated", buf, len - 3) == 0;
    buf[0] = 'X';
    ok = ok && write_file(dir, "BadMagic", buf, len) == 0;
    memcpy(buf, good, len);
    put32(buf + V2_TYPECNT, 1000);
    ok = ok && write_file(dir, "PastTheEnd", buf, len) == 0;
    ok = ok && write_file(dir, "Empty", buf, 0) == 0;
    size_t big_len = TZ_FILE_MAX + 1;
    uint8_t *big = calloc(1, big_len);
    memcpy(big, good, len);
    ok = ok && write_file(dir, "Big", big, big_len) == 0;
    free(big);
    snprintf(sub, sizeof(sub), "%s/Fifo", dir);
    ok = ok && mkfifo(sub, 0600) == 0;
    static const char *const names[] = {"Test",  "Test/Plus3", "Truncated", "BadMagic",
                                        "PastTheEnd", "Empty", "Big", "Fifo"};
    char *saved = saved_tzdir();
    setenv("TZDIR", dir, 1);
    tz_zone *z = NULL;
    char err[256];
    int fails = 0;
    if (ok && tz_load("Test/Plus3", &z, err, sizeof(err)) == AOP_OK) {
        fails += tz_offset(z, 0) != 3 * 3600;
        tz_free(z);
    } else {
        fails++;
    }
    static const struct {
        const char *name;
        aop_err want;
    } bad[] = {
        {"Truncated", AOP_ERR_INTERNAL}, {"BadMagic", AOP_ERR_NOT_FOUND},
        {"PastTheEnd", AOP_ERR_INTERNAL}, {"Empty", AOP_ERR_NOT_FOUND},
        {"Big", AOP_ERR_INTERNAL},       {"Test", AOP_ERR_NOT_FOUND},
        {"Fifo", AOP_ERR_NOT_FOUND},     {"Missing", AOP_ERR_NOT_FOUND},
        {"Europe/Berlin", AOP_ERR_NOT_FOUND}, /* not in this TZDIR */
    };
    char m[400] = "";
    for (size_t i = 0; ok && i < sizeof(bad) / sizeof(bad[0]); i++) {
        aop_err rc = tz_load(bad[i].name, &z, err, sizeof(err));
        const tz_zone *cz = NULL;
        aop_err crc = tz_acquire(bad[i].name, &cz, NULL, 0);
        if (rc != bad[i].want || crc != bad[i].want) {
            snprintf(m, sizeof(m), "%s: rc %d / %d (%s), want %d", bad[i].name, rc, crc, err,
                     bad[i].want);
            fails++;
        }
        if (rc == AOP_OK)
            tz_free(z);
        tz_release(cz);
    }
    restore_tzdir(saved);
    remove_tree(dir, names, sizeof(names) / sizeof(names[0]));
    CHECK(ok);
    if (fails) {
        unit_fail(__FILE__, __LINE__, m[0] ? m : "Test/Plus3 did not load as +03");
        return;
    }
    /* TZDIR unset again: the system's zones. */
    CHECK_INT(tz_load("Europe/Berlin", &z, err, sizeof(err)), AOP_OK);
    tz_free(z);
}

static void tz_load_refuses_names_outside_the_directory(void)
{
    static const char *const bad[] = {
        "../etc/passwd", "/etc/passwd", "Europe/../Europe/Berlin", "./UTC", "..", ".",
        "Europe//Berlin", "Europe/", "/UTC", "Europe/Berlin ", "Europe/Berlin\n",
        "zone.tab", "Europe\\Berlin", "", "Europe/Berlin/", "~/zone", "UTC*",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 65 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tz_zone *z = NULL;
        const tz_zone *cz = NULL;
        char err[256] = "";
        aop_err rc = tz_load(bad[i], &z, err, sizeof(err));
        aop_err crc = tz_acquire(bad[i], &cz, NULL, 0);
        if (rc != AOP_ERR_VALIDATION || crc != AOP_ERR_VALIDATION || err[0] == '\0') {
            char m[300];
            snprintf(m, sizeof(m), "\"%s\": rc %d / %d", bad[i], rc, crc);
            unit_fail(__FILE__, __LINE__, m);
            tz_free(z);
            tz_release(cz);
            return;
        }
    }
    /* 64 bytes of the right characters are looked up (and not found). */
    tz_zone *z;
    CHECK_INT(tz_load("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &z,
                      NULL, 0),
              AOP_ERR_NOT_FOUND);
    /* Aliases are links in the directory; files that are no zones are refused. */
    CHECK_INT(tz_load("US/Eastern", &z, NULL, 0), AOP_OK);
    tz_free(z);
    CHECK_INT(tz_load("Europe", &z, NULL, 0), AOP_ERR_NOT_FOUND);
}

/* ---- the cache ---- */

typedef struct {
    const tz_zone *z;
    int32_t off;
} acquire_job;

static void *acquire_cairo(void *arg)
{
    acquire_job *j = arg;
    if (tz_acquire("Africa/Cairo", &j->z, NULL, 0) == AOP_OK)
        j->off = tz_offset(j->z, at("2027-07-15T12:00:00Z"));
    return NULL;
}

/* One zone for all: the second acquire returns the first's, threads racing
 * to load one agree on it. */
static void tz_acquire_shares_zones(void)
{
    const tz_zone *a, *b;
    CHECK_INT(tz_acquire("Europe/Berlin", &a, NULL, 0), AOP_OK);
    CHECK_INT(tz_acquire("Europe/Berlin", &b, NULL, 0), AOP_OK);
    CHECK(a == b);
    tz_release(a);
    tz_release(b);
    CHECK_INT(tz_acquire("Europe/Berlin", &b, NULL, 0), AOP_OK);
    CHECK(a == b); /* kept after its release */
    tz_release(b);
    acquire_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (acquire_job){NULL, 0};
        CHECK_INT(pthread_create(&th[i], NULL, acquire_cairo, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        CHECK(jobs[i].z == jobs[0].z);
        CHECK_INT(jobs[i].off, 3 * 3600);
        tz_release(jobs[i].z);
    }
}

/* ---- against glibc ---- */

/* For a sample of zones and many instants from 1970 to 2200, the offset
 * equals the tm_gmtoff of glibc's localtime_r with TZ set to the zone
 * (one thread: TZ is the process's; restored after). */
static void tz_offsets_agree_with_glibc(void)
{
    static const char *const zones[] = {
        "Europe/Berlin",   "America/New_York", "Africa/Cairo",     "Asia/Kathmandu",
        "Australia/Sydney", "America/Santiago", "Europe/Dublin",   "America/Nuuk",
        "Asia/Tehran",     "Pacific/Apia",     "Antarctica/Troll", "America/Asuncion",
        "Asia/Almaty",     "Pacific/Chatham",  "Africa/Casablanca", "Australia/Lord_Howe",
        "America/Sao_Paulo", "Europe/London",  "UTC",
    };
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    char m[300] = "";
    int checked = 0;
    const int64_t from = 0, to = at("2200-01-01T00:00:00Z");
    const int64_t step = 3 * 86400 + 3607; /* hits every hour of the day over time */
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]) && !m[0]; i++) {
        const tz_zone *z;
        if (tz_acquire(zones[i], &z, NULL, 0) != AOP_OK) {
            snprintf(m, sizeof(m), "%s does not load", zones[i]);
            break;
        }
        setenv("TZ", zones[i], 1);
        tzset();
        int64_t prev_off = tz_offset(z, from);
        for (int64_t t = from; t < to && !m[0]; t += step) {
            /* Around a change between two samples, every second of it. */
            int64_t off = tz_offset(z, t);
            int64_t lo = t, hi = t + 1;
            if (off != prev_off) {
                lo = t - step;
                hi = t + 1;
                while (hi - lo > 1) { /* the change: off(lo) old, off(hi) new */
                    int64_t mid = lo + (hi - lo) / 2;
                    if (tz_offset(z, mid) == prev_off)
                        lo = mid;
                    else
                        hi = mid;
                }
                lo -= 1;
                hi += 1;
            }
            prev_off = off;
            for (int64_t u = lo; u <= hi; u++) {
                time_t tt = (time_t)u;
                struct tm tm;
                localtime_r(&tt, &tm);
                checked++;
                if (tm.tm_gmtoff != tz_offset(z, u)) {
                    snprintf(m, sizeof(m), "%s at %lld: offset %d, glibc %ld", zones[i],
                             (long long)u, (int)tz_offset(z, u), tm.tm_gmtoff);
                    break;
                }
            }
        }
        tz_release(z);
    }
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    free(saved);
    tzset();
    if (m[0]) {
        unit_fail(__FILE__, __LINE__, m);
        return;
    }
    CHECK(checked > 100000);
}

const unit_test tz_tests[] = {
    TEST(tz_zones_changed_since_2022),
    TEST(tz_footer_rule_past_the_table),
    TEST(tz_zone_without_dst),
    TEST(tz_instant_follows_the_contract),
    TEST(tz_rule_parses_posix_strings),
    TEST(tz_rule_dates_and_times),
    TEST(tz_rule_refuses_malformed_strings),
    TEST(tz_parse_reads_tzif),
    TEST(tz_parse_refuses_malformed_tzif),
    TEST(tz_load_reads_tzdir),
    TEST(tz_load_refuses_names_outside_the_directory),
    TEST(tz_acquire_shares_zones),
    TEST(tz_offsets_agree_with_glibc),
    {NULL, NULL},
};
