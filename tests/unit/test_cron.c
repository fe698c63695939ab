/* Unit tests of cron expressions and their due times in time zones
 * (schedules/cron.h). With AOP_TEST_BENCH=1 in the environment,
 * cron_next_is_cheap also prints how long a call takes. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "schedules/cron.h"
#include "unit.h"

#define ALL(lo, hi) ((~UINT64_C(0) >> (63 - (hi))) & (~UINT64_C(0) << (lo)))
#define B(v) (UINT64_C(1) << (v))

/* Unix ms of an RFC 3339 time (aborts the run on a typo in a test). */
static int64_t at(const char *rfc3339)
{
    int64_t ms;
    if (clock_parse_rfc3339(rfc3339, 0, &ms) != 0) {
        fprintf(stderr, "test_cron: bad time %s\n", rfc3339);
        abort();
    }
    return ms;
}

/* "2027-03-28T01:00:00Z" for ms (whole seconds), into out[21]. */
static const char *utc(int64_t ms, char out[25])
{
    clock_format_rfc3339(ms, out);
    memcpy(out + 19, "Z", 2); /* drop ".000" */
    return out;
}

/* Compares the due times of text in zone after the instant from with want
 * (NULL-terminated RFC 3339 times); on a difference records a failure that
 * shows both lists and returns -1. */
static int due_times(const char *text, const char *zone, const char *from,
                     const char *const *want)
{
    cron_expr c;
    char err[256], m[1024];
    if (cron_parse(text, &c, err, sizeof(err)) != 0) {
        snprintf(m, sizeof(m), "cron_parse(\"%s\"): %s", text, err);
        unit_fail(__FILE__, __LINE__, m);
        return -1;
    }
    int n = 0;
    while (want[n])
        n++;
    int64_t got[16];
    int found = cron_next_n(&c, zone, at(from), got, n);
    bool same = found == n;
    for (int i = 0; same && i < n; i++)
        same = got[i] == at(want[i]);
    if (same)
        return 0;
    int len = snprintf(m, sizeof(m), "\"%s\" in %s after %s: got", text, zone, from);
    char t[25];
    for (int i = 0; i < found; i++)
        len += snprintf(m + len, sizeof(m) - (size_t)len, " %s", utc(got[i], t));
    len += snprintf(m + len, sizeof(m) - (size_t)len, "%s; want", found < 0 ? " an error" : "");
    for (int i = 0; i < n; i++)
        len += snprintf(m + len, sizeof(m) - (size_t)len, " %s", want[i]);
    unit_fail(__FILE__, __LINE__, m);
    return -1;
}

#define DUE(text, zone, from, ...)                                                 \
    do {                                                                           \
        static const char *const want_[] = {__VA_ARGS__, NULL};                    \
        if (due_times(text, zone, from, want_) != 0)                               \
            return;                                                                \
    } while (0)

/* ---- syntax ---- */

static void cron_parses_every_form(void)
{
    static const struct {
        const char *text;
        int field;
        uint64_t bits;
    } cases[] = {
        {"* * * * *", CRON_SECOND, B(0)}, /* 5 fields: second 0 */
        {"* * * * *", CRON_MINUTE, ALL(0, 59)},
        {"* * * * *", CRON_HOUR, ALL(0, 23)},
        {"* * * * *", CRON_MDAY, ALL(1, 31)},
        {"* * * * *", CRON_MONTH, ALL(1, 12)},
        {"* * * * *", CRON_WDAY, ALL(0, 6)},
        {"5 * * * *", CRON_MINUTE, B(5)},
        {"05 * * * *", CRON_MINUTE, B(5)},
        {"59 23 31 12 6", CRON_MINUTE, B(59)},
        {"59 23 31 12 6", CRON_HOUR, B(23)},
        {"59 23 31 12 6", CRON_MDAY, B(31)},
        {"59 23 31 12 6", CRON_MONTH, B(12)},
        {"59 23 31 12 6", CRON_WDAY, B(6)},
        {"1-5 * * * *", CRON_MINUTE, ALL(1, 5)},
        {"1,3,5 * * * *", CRON_MINUTE, B(1) | B(3) | B(5)},
        {"*/15 * * * *", CRON_MINUTE, B(0) | B(15) | B(30) | B(45)},
        {"10-30/10 * * * *", CRON_MINUTE, B(10) | B(20) | B(30)},
        {"7/20 * * * *", CRON_MINUTE, B(7) | B(27) | B(47)},
        {"1-3,30,*/20 * * * *", CRON_MINUTE, ALL(1, 3) | B(0) | B(20) | B(30) | B(40)},
        {"0 */6 * * *", CRON_HOUR, B(0) | B(6) | B(12) | B(18)},
        {"0 0 1-31/10 * *", CRON_MDAY, B(1) | B(11) | B(21) | B(31)},
        {"0 0 * JAN-MAR *", CRON_MONTH, ALL(1, 3)},
        {"0 0 * jan,Dec *", CRON_MONTH, B(1) | B(12)},
        {"0 0 * FEB/3 *", CRON_MONTH, B(2) | B(5) | B(8) | B(11)},
        {"0 0 * 1-Jun *", CRON_MONTH, ALL(1, 6)},
        {"0 0 * * MON-FRI", CRON_WDAY, ALL(1, 5)},
        {"0 0 * * sun", CRON_WDAY, B(0)},
        {"0 0 * * 7", CRON_WDAY, B(0)},
        {"0 0 * * 5-7", CRON_WDAY, B(0) | B(5) | B(6)},
        {"0 0 * * SAT,SUN", CRON_WDAY, B(0) | B(6)},
        {"0 0 * * 1/2", CRON_WDAY, B(1) | B(3) | B(5)},
        {"0 0 * * 7/2", CRON_WDAY, B(0)},
        {"0 0 * * */2", CRON_WDAY, B(0) | B(2) | B(4) | B(6)},
        {"0 0 * * 0-7", CRON_WDAY, ALL(0, 6)},
        {"*/10 * * * * *", CRON_SECOND, B(0) | B(10) | B(20) | B(30) | B(40) | B(50)},
        {"*/10 1 * * * *", CRON_MINUTE, B(1)},
        {"30 0 0 * * *", CRON_SECOND, B(30)},
        {" \t0  12 * * *\t ", CRON_HOUR, B(12)},
        {"0 0 * * *", CRON_MINUTE, B(0)},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cron_expr c;
        char err[256], m[512];
        int rc = cron_parse(cases[i].text, &c, err, sizeof(err));
        if (rc != 0 || c.bits[cases[i].field] != cases[i].bits) {
            snprintf(m, sizeof(m), "\"%s\" field %d: rc %d (%s), bits %#llx, want %#llx",
                     cases[i].text, cases[i].field, rc, rc ? err : "",
                     (unsigned long long)c.bits[cases[i].field],
                     (unsigned long long)cases[i].bits);
            unit_fail(__FILE__, __LINE__, m);
            return;
        }
    }
}

/* CRON_MDAY_ANY and CRON_WDAY_ANY mark a lone '*' only. */
static void cron_marks_unrestricted_days(void)
{
    cron_expr c;
    CHECK_INT(cron_parse("0 0 * * *", &c, NULL, 0), 0);
    CHECK_INT(c.flags, CRON_MDAY_ANY | CRON_WDAY_ANY);
    CHECK_INT(cron_parse("0 0 13 * *", &c, NULL, 0), 0);
    CHECK_INT(c.flags, CRON_WDAY_ANY);
    CHECK_INT(cron_parse("0 0 * * FRI", &c, NULL, 0), 0);
    CHECK_INT(c.flags, CRON_MDAY_ANY);
    CHECK_INT(cron_parse("0 0 */1 * 0-7", &c, NULL, 0), 0);
    CHECK_INT(c.flags, 0);
}

static void cron_expands_the_macros(void)
{
    static const struct {
        const char *macro, *same;
    } cases[] = {
        {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@weekly", "0 0 * * 0"},
        {"@monthly", "0 0 1 * *"},  {"@DAILY", "0 0 * * *"},   {"  @Weekly\t", "0 0 * * SUN"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cron_expr a, b;
        char err[256];
        CHECK_INT(cron_parse(cases[i].macro, &a, err, sizeof(err)), 0);
        CHECK_INT(cron_parse(cases[i].same, &b, err, sizeof(err)), 0);
        CHECK(memcmp(a.bits, b.bits, sizeof(a.bits)) == 0);
        CHECK_INT(a.flags, b.flags);
    }
}

static void cron_refuses_bad_expressions(void)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"", "the expression is empty"},
        {" \t ", "the expression is empty"},
        {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week) or 6 "
                    "(second first), got 4"},
        {"* * * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week) or 6 "
                          "(second first), got more than 6"},
        {"60 * * * *", "minute: 60 is out of range 0-59"},
        {"99999999999999999999 * * * *", "minute: 99999999999999999999 is out of range 0-59"},
        {"60 * * * * *", "second: 60 is out of range 0-59"},
        {"0 24 * * *", "hour: 24 is out of range 0-23"},
        {"0 0 0 * *", "day of month: 0 is out of range 1-31"},
        {"0 0 32 * *", "day of month: 32 is out of range 1-31"},
        {"0 0 * 0 *", "month: 0 is out of range 1-12"},
        {"0 0 * 13 *", "month: 13 is out of range 1-12"},
        {"0 0 * * 8", "day of week: 8 is out of range 0-7"},
        {"0 MON * * *", "hour: \"MON\" is not a number"},
        {"0 0 * FOO *", "month: \"FOO\" is neither a number nor a name (JAN-DEC)"},
        {"0 0 * JANUARY *", "month: \"JANUARY\" is neither a number nor a name (JAN-DEC)"},
        {"0 0 * * MON-FOO", "day of week: \"FOO\" is neither a number nor a name (SUN-SAT)"},
        {"0 0 * JAN *x", "day of week: \"*x\" is neither a number nor a name (SUN-SAT)"},
        {"1x * * * *", "minute: \"1x\" is not a number"},
        {"*/0 * * * *", "minute: step 0 is out of range 1-60"},
        {"*/61 * * * *", "minute: step 61 is out of range 1-60"},
        {"0 */25 * * *", "hour: step 25 is out of range 1-24"},
        {"0 0 * * */8", "day of week: step 8 is out of range 1-7"},
        {"*/ * * * *", "minute: a step is missing after '/'"},
        {"*/x * * * *", "minute: step \"x\" is not a number"},
        {"1/2/3 * * * *", "minute: step \"2/3\" is not a number"},
        {"5-1 * * * *", "minute: range 5-1 runs backwards"},
        {"0 0 * * FRI-MON", "day of week: range FRI-MON runs backwards"},
        {"1,,2 * * * *", "minute: an empty item in the list"},
        {"1, * * * *", "minute: an empty item in the list"},
        {",1 * * * *", "minute: an empty item in the list"},
        {"1- * * * *", "minute: a value is missing"},
        {"-1 * * * *", "minute: a value is missing"},
        {"1.5 * * * *", "minute: unexpected character '.'"},
        {"0 0 ? * *", "day of month: unexpected character '?'"},
        {"0 0 * * 1\x01", "day of week: unexpected byte 0x01"},
        {"0 0 * * \xc3\xa9", "day of week: unexpected byte 0xc3"},
        {"0 0 L * *", "day of month: \"L\" is not a number"},
        {"@yearly", "unknown macro \"@yearly\" (@hourly, @daily, @weekly, @monthly)"},
        {"@", "unknown macro \"@\" (@hourly, @daily, @weekly, @monthly)"},
        {"@daily 1", "a macro (@daily) stands alone"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cron_expr c;
        char err[256];
        err[0] = '\0';
        int rc = cron_parse(cases[i].text, &c, err, sizeof(err));
        if (rc != -1 || strcmp(err, cases[i].msg) != 0) {
            char m[700];
            snprintf(m, sizeof(m), "\"%s\": rc %d, \"%s\", want \"%s\"", cases[i].text, rc, err,
                     cases[i].msg);
            unit_fail(__FILE__, __LINE__, m);
            return;
        }
    }
    cron_expr c;
    CHECK_INT(cron_parse(NULL, &c, NULL, 0), -1);
    CHECK_INT(cron_parse("@daily", &c, NULL, 0), 0); /* no room for a message is fine */
    CHECK_INT(cron_parse("61 * * * *", &c, NULL, 0), -1);
}

/* CRON_TEXT_MAX bytes are accepted, one more refused. */
static void cron_refuses_text_over_the_bound(void)
{
    char text[CRON_TEXT_MAX + 2], err[256];
    cron_expr c;
    memset(text, ' ', sizeof(text));
    memcpy(text, "0 0 * * *", 9);
    text[CRON_TEXT_MAX] = '\0';
    CHECK_INT(cron_parse(text, &c, err, sizeof(err)), 0);
    text[CRON_TEXT_MAX] = ' ';
    text[CRON_TEXT_MAX + 1] = '\0';
    CHECK_INT(cron_parse(text, &c, err, sizeof(err)), -1);
    CHECK_STR(err, "longer than 256 bytes");
    /* A long list of valid items is bounded the same way. */
    char list[CRON_TEXT_MAX + 64];
    int len = 0;
    for (int v = 0; len < CRON_TEXT_MAX; v = (v + 1) % 60)
        len += snprintf(list + len, sizeof(list) - (size_t)len, "%d,", v);
    snprintf(list + len - 1, sizeof(list) - (size_t)len + 1, " * * * *");
    CHECK_INT(cron_parse(list, &c, err, sizeof(err)), -1);
    CHECK_STR(err, "longer than 256 bytes");
}

/* ---- due times ---- */

static void cron_next_is_strictly_after(void)
{
    /* Exactly at a due time, a millisecond before it, and between. */
    DUE("0 12 * * *", "UTC", "2027-05-10T12:00:00Z", "2027-05-11T12:00:00Z");
    DUE("0 12 * * *", "UTC", "2027-05-10T11:59:59.999Z", "2027-05-10T12:00:00Z");
    DUE("0 12 * * *", "UTC", "2027-05-10T12:00:00.001Z", "2027-05-11T12:00:00Z");
    DUE("* * * * *", "UTC", "2027-05-10T12:00:00Z", "2027-05-10T12:01:00Z",
        "2027-05-10T12:02:00Z");
    DUE("0 0 * * *", "UTC", "2027-12-31T23:59:59Z", "2028-01-01T00:00:00Z");
}

static void cron_next_counts_seconds(void)
{
    DUE("*/20 * * * * *", "UTC", "2027-05-10T12:00:00Z", "2027-05-10T12:00:20Z",
        "2027-05-10T12:00:40Z", "2027-05-10T12:01:00Z");
    DUE("*/20 * * * * *", "UTC", "2027-05-10T12:00:19.999Z", "2027-05-10T12:00:20Z");
    DUE("* * * * * *", "UTC", "2027-05-10T23:59:59Z", "2027-05-11T00:00:00Z");
    DUE("30 0 0 * * *", "UTC", "2027-05-10T00:00:30Z", "2027-05-11T00:00:30Z");
    DUE("15,45 30 9 * * MON", "UTC", "2027-05-10T09:30:15Z", "2027-05-10T09:30:45Z",
        "2027-05-17T09:30:15Z");
}

static void cron_next_walks_fields(void)
{
    DUE("*/15 9-10 * * *", "UTC", "2027-05-10T10:50:00Z", "2027-05-11T09:00:00Z",
        "2027-05-11T09:15:00Z");
    DUE("0 0 1 */4 *", "UTC", "2027-02-10T00:00:00Z", "2027-05-01T00:00:00Z",
        "2027-09-01T00:00:00Z", "2028-01-01T00:00:00Z");
    DUE("0 9 * * MON-FRI", "UTC", "2027-01-01T09:00:00Z", /* a Friday */
        "2027-01-04T09:00:00Z", "2027-01-05T09:00:00Z", "2027-01-06T09:00:00Z",
        "2027-01-07T09:00:00Z", "2027-01-08T09:00:00Z", "2027-01-11T09:00:00Z");
    DUE("0 0 * DEC SUN", "UTC", "2027-01-01T00:00:00Z", "2027-12-05T00:00:00Z");
}

/* When both day fields are restricted either may match; otherwise both must. */
static void cron_next_day_of_month_or_week(void)
{
    /* 2027-01-01 is a Friday, the 13th a Wednesday. */
    DUE("0 0 13 * FRI", "UTC", "2026-12-31T12:00:00Z", "2027-01-01T00:00:00Z",
        "2027-01-08T00:00:00Z", "2027-01-13T00:00:00Z", "2027-01-15T00:00:00Z");
    DUE("0 0 13 * *", "UTC", "2026-12-31T12:00:00Z", "2027-01-13T00:00:00Z",
        "2027-02-13T00:00:00Z");
    DUE("0 0 * * FRI", "UTC", "2026-12-31T12:00:00Z", "2027-01-01T00:00:00Z",
        "2027-01-08T00:00:00Z");
    /* "*" with a step is restricted: the 1st, 3rd, ... or a Monday. */
    DUE("0 0 */2 * MON", "UTC", "2027-01-01T12:00:00Z", "2027-01-03T00:00:00Z",
        "2027-01-04T00:00:00Z", "2027-01-05T00:00:00Z", "2027-01-07T00:00:00Z");
}

static void cron_next_month_ends_and_leap_years(void)
{
    DUE("0 0 31 * *", "UTC", "2027-01-31T00:00:00Z", "2027-03-31T00:00:00Z",
        "2027-05-31T00:00:00Z", "2027-07-31T00:00:00Z", "2027-08-31T00:00:00Z");
    DUE("0 0 28-31 2 *", "UTC", "2027-01-01T00:00:00Z",
        "2027-02-28T00:00:00Z", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z");
    DUE("0 0 29 2 *", "UTC", "2027-01-01T00:00:00Z", "2028-02-29T00:00:00Z",
        "2032-02-29T00:00:00Z");
    /* 2100 is no leap year: the longest wait there is, within the bound. */
    DUE("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z");
    DUE("0 0 29 2 *", "UTC", "2399-03-01T00:00:00Z", "2400-02-29T00:00:00Z");
    /* Never: "none", not an error and not a wrong date. */
    static const char *const never[] = {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2,4 *"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        cron_expr c;
        int64_t t = 0, list[5];
        CHECK_INT(cron_parse(never[i], &c, NULL, 0), 0);
        CHECK_INT(cron_next(&c, "UTC", at("2027-01-01T00:00:00Z"), &t), 1);
        CHECK_INT(cron_next(&c, "Europe/Berlin", at("2027-01-01T00:00:00Z"), &t), 1);
        CHECK_INT(cron_next_n(&c, "UTC", at("2027-01-01T00:00:00Z"), list, 5), 0);
    }
}

static void cron_next_weekly_is_sunday_midnight(void)
{
    DUE("@weekly", "UTC", "2027-01-01T00:00:00Z", "2027-01-03T00:00:00Z",
        "2027-01-10T00:00:00Z");
    DUE("@weekly", "Europe/Berlin", "2027-01-01T00:00:00Z", "2027-01-02T23:00:00Z");
    DUE("@weekly", "America/New_York", "2027-01-01T00:00:00Z", "2027-01-03T05:00:00Z");
    DUE("@hourly", "UTC", "2027-01-01T00:00:00Z", "2027-01-01T01:00:00Z");
    DUE("@daily", "UTC", "2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z");
    DUE("@monthly", "UTC", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z");
    DUE("@monthly", "America/New_York", "2027-01-01T00:00:00Z", "2027-01-01T05:00:00Z",
        "2027-02-01T05:00:00Z");
}

static void cron_next_in_offset_zones(void)
{
    /* Asia/Kathmandu is UTC+05:45 all year. */
    DUE("0 9 * * *", "Asia/Kathmandu", "2027-06-01T00:00:00Z", "2027-06-01T03:15:00Z",
        "2027-06-02T03:15:00Z");
    DUE("@hourly", "Asia/Kathmandu", "2027-06-01T00:00:00Z", "2027-06-01T00:15:00Z",
        "2027-06-01T01:15:00Z");
    DUE("0 0 * * *", "Asia/Kathmandu", "2027-06-01T00:00:00Z", "2027-06-01T18:15:00Z");
    DUE("30 5 * * *", "Asia/Kolkata", "2027-06-01T00:00:00Z", "2027-06-02T00:00:00Z");
    DUE("0 9 * * *", "UTC", "2027-06-01T00:00:00Z", "2027-06-01T09:00:00Z");
    DUE("0 9 * * *", NULL, "2027-06-01T00:00:00Z", "2027-06-01T09:00:00Z"); /* default */
    DUE("0 9 * * *", "US/Eastern", "2027-06-01T00:00:00Z", "2027-06-01T13:00:00Z");
}

/* Europe/Berlin, 2027: 28 March 02:00 CET -> 03:00 CEST, 31 October
 * 03:00 CEST -> 02:00 CET. */
static void cron_dst_berlin_2027(void)
{
    /* Spring: 02:30 does not exist; it runs once, at 03:00 CEST (01:00Z). */
    DUE("30 2 * * *", "Europe/Berlin", "2027-03-27T00:00:00Z", "2027-03-27T01:30:00Z",
        "2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z");
    DUE("30 2 * * *", "Europe/Berlin", "2027-03-28T00:59:59.500Z", "2027-03-28T01:00:00Z");
    DUE("30 2 * * *", "Europe/Berlin", "2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z");
    /* Every quarter hour: 01:45 CET, then 03:00 CEST once for 02:00-02:45. */
    DUE("*/15 * * * *", "Europe/Berlin", "2027-03-28T00:30:00Z", "2027-03-28T00:45:00Z",
        "2027-03-28T01:00:00Z", "2027-03-28T01:15:00Z", "2027-03-28T01:30:00Z");
    /* A whole skipped hour, every second: the jump's instant once. */
    DUE("* * 2 * * *", "Europe/Berlin", "2027-03-28T00:59:58Z", "2027-03-28T01:00:00Z",
        "2027-03-29T00:00:00Z");
    /* Autumn: 02:30 happens twice; it runs at the first (CEST, 00:30Z) only. */
    DUE("30 2 * * *", "Europe/Berlin", "2027-10-30T00:00:00Z", "2027-10-30T00:30:00Z",
        "2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z");
    /* Every quarter hour: 02:00-02:45 CEST, not again in CET, then 03:00 CET. */
    DUE("*/15 * * * *", "Europe/Berlin", "2027-10-30T23:45:00Z", "2027-10-31T00:00:00Z",
        "2027-10-31T00:15:00Z", "2027-10-31T00:30:00Z", "2027-10-31T00:45:00Z",
        "2027-10-31T02:00:00Z", "2027-10-31T02:15:00Z");
    /* From inside the second 02:00-02:59 (CET): nothing repeats. */
    DUE("*/15 * * * *", "Europe/Berlin", "2027-10-31T01:10:00Z", "2027-10-31T02:00:00Z");
    DUE("30 2 * * *", "Europe/Berlin", "2027-10-31T01:10:00Z", "2027-11-01T01:30:00Z");
    DUE("* * 2 * * *", "Europe/Berlin", "2027-10-31T00:59:59Z", "2027-11-01T01:00:00Z");
}

/* America/New_York, 2027: 14 March 02:00 EST -> 03:00 EDT, 7 November
 * 02:00 EDT -> 01:00 EST. */
static void cron_dst_new_york_2027(void)
{
    DUE("30 2 * * *", "America/New_York", "2027-03-13T00:00:00Z", "2027-03-13T07:30:00Z",
        "2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z");
    DUE("*/15 * * * *", "America/New_York", "2027-03-14T06:30:00Z", "2027-03-14T06:45:00Z",
        "2027-03-14T07:00:00Z", "2027-03-14T07:15:00Z");
    /* 01:30 happens twice; it runs at the first (EDT, 05:30Z) only. */
    DUE("30 1 * * *", "America/New_York", "2027-11-06T00:00:00Z", "2027-11-06T05:30:00Z",
        "2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z");
    DUE("30 1 * * *", "America/New_York", "2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z");
    DUE("30 1 * * *", "America/New_York", "2027-11-07T06:00:00Z", "2027-11-08T06:30:00Z");
    DUE("*/15 * * * *", "America/New_York", "2027-11-07T05:00:00Z", "2027-11-07T05:15:00Z",
        "2027-11-07T05:30:00Z", "2027-11-07T05:45:00Z", "2027-11-07T07:00:00Z",
        "2027-11-07T07:15:00Z");
}

/* Pacific/Apia skipped 30 December 2011 (23:59:59 on the 29th at -10 was
 * followed by 00:00 on the 31st at +14): that day's noon runs once, at the
 * jump, and the 31st's noon follows. */
static void cron_dst_skipped_day(void)
{
    DUE("0 12 * * *", "Pacific/Apia", "2011-12-29T22:00:00Z", "2011-12-30T10:00:00Z",
        "2011-12-30T22:00:00Z");
}

/* Zones whose rules changed after 2022, as the system's tz database has
 * them. Cairo, 2027: DST from 30 April 00:00 (EET -> 01:00 EEST) to 28
 * October 24:00 (EEST -> 23:00 EET). */
static void cron_zones_changed_since_2022(void)
{
    DUE("0 9 * * *", "Africa/Cairo", "2027-07-15T00:00:00Z", "2027-07-15T06:00:00Z",
        "2027-07-16T06:00:00Z");
    DUE("0 9 * * *", "Africa/Cairo", "2027-01-15T00:00:00Z", "2027-01-15T07:00:00Z");
    /* 00:30 on the 30th is skipped: at the jump (22:00Z the day before). */
    DUE("30 0 * * *", "Africa/Cairo", "2027-04-29T00:00:00Z", "2027-04-29T22:00:00Z",
        "2027-04-30T21:30:00Z");
    /* 23:30 on 28 October happens twice: the first (EEST) only. */
    DUE("30 23 * * *", "Africa/Cairo", "2027-10-28T00:00:00Z", "2027-10-28T20:30:00Z",
        "2027-10-29T21:30:00Z");
    DUE("0 9 * * *", "Asia/Almaty", "2027-07-15T00:00:00Z", "2027-07-15T04:00:00Z");
    DUE("0 9 * * *", "America/Asuncion", "2027-01-15T00:00:00Z", "2027-01-15T12:00:00Z");
    DUE("0 9 * * *", "America/Nuuk", "2027-07-15T00:00:00Z", "2027-07-15T10:00:00Z");
}

/* 2040 is past the transitions the zone files list: the footer's rule.
 * Berlin: 25 March 02:00 -> 03:00, 28 October 03:00 -> 02:00; New York:
 * 11 March 02:00 -> 03:00, 4 November 02:00 -> 01:00. */
static void cron_dst_2040(void)
{
    DUE("30 2 * * *", "Europe/Berlin", "2040-03-24T12:00:00Z", "2040-03-25T01:00:00Z",
        "2040-03-26T00:30:00Z");
    DUE("30 2 * * *", "Europe/Berlin", "2040-10-27T12:00:00Z", "2040-10-28T00:30:00Z",
        "2040-10-29T01:30:00Z");
    DUE("30 2 * * *", "America/New_York", "2040-03-10T12:00:00Z", "2040-03-11T07:00:00Z",
        "2040-03-12T06:30:00Z");
    DUE("30 1 * * *", "America/New_York", "2040-11-03T12:00:00Z", "2040-11-04T05:30:00Z",
        "2040-11-05T06:30:00Z");
}

static void cron_zone_check_knows_iana_names(void)
{
    static const char *const good[] = {"UTC", "Europe/Berlin", "America/New_York",
                                       "Asia/Kathmandu", "US/Eastern", "Etc/GMT+5",
                                       "America/Argentina/Buenos_Aires"};
    char err[256];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        err[0] = '\0';
        if (cron_zone_check(good[i], err, sizeof(err)) != 0) {
            unit_fail(__FILE__, __LINE__, good[i]);
            return;
        }
    }
    CHECK_INT(cron_zone_check(NULL, err, sizeof(err)), 0);
    static const struct {
        const char *zone, *msg;
    } bad[] = {
        {"Mars/Olympus_Mons", "unknown time zone \"Mars/Olympus_Mons\""},
        {"europe/berlin", "unknown time zone \"europe/berlin\""},
        {"GMT+05:00", "unknown time zone \"GMT+05:00\""},
        {"Etc/Unknown", "unknown time zone \"Etc/Unknown\""},
        {"Europe/Berlin ", "unknown time zone \"Europe/Berlin \""},
        {"../etc/passwd", "unknown time zone \"../etc/passwd\""},
        {"", "the time zone is empty"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        int rc = cron_zone_check(bad[i].zone, err, sizeof(err));
        if (rc != -1 || strcmp(err, bad[i].msg) != 0) {
            char m[600];
            snprintf(m, sizeof(m), "\"%s\": rc %d, \"%s\", want \"%s\"", bad[i].zone, rc, err,
                     bad[i].msg);
            unit_fail(__FILE__, __LINE__, m);
            return;
        }
    }
    /* The bound: CRON_ZONE_MAX bytes are looked up, one more is refused unread. */
    char name[CRON_ZONE_MAX + 2];
    memset(name, 'A', sizeof(name));
    name[CRON_ZONE_MAX] = '\0';
    CHECK_INT(cron_zone_check(name, err, sizeof(err)), -1);
    CHECK(strncmp(err, "unknown time zone", 17) == 0);
    name[CRON_ZONE_MAX] = 'A';
    name[CRON_ZONE_MAX + 1] = '\0';
    CHECK_INT(cron_zone_check(name, err, sizeof(err)), -1);
    CHECK_STR(err, "the time zone is longer than 64 bytes");
}

/* Unknown zones and instants out of range are errors, not due times. */
static void cron_next_refuses_bad_input(void)
{
    cron_expr c;
    int64_t t = 0, list[5];
    char err[256];
    CHECK_INT(cron_parse("@daily", &c, NULL, 0), 0);
    CHECK_INT(cron_next(&c, "Mars/Olympus_Mons", 0, &t), -1);
    CHECK_INT(cron_next_n(&c, "Mars/Olympus_Mons", 0, list, 5), -1);
    CHECK(cron_zone_open("Mars/Olympus_Mons", err, sizeof(err)) == NULL);
    CHECK_STR(err, "unknown time zone \"Mars/Olympus_Mons\"");
    CHECK_INT(cron_next(&c, "UTC", -1, &t), -1);
    CHECK_INT(cron_next(&c, "UTC", CRON_AFTER_MAX_MS, &t), -1);
    CHECK_INT(cron_next(&c, "UTC", CRON_AFTER_MAX_MS - 1, &t), 0);
    CHECK_INT(t, CRON_AFTER_MAX_MS);
    CHECK_INT(cron_next(&c, "UTC", 0, &t), 0);
    CHECK_INT(t, 86400000);
    /* New York's first midnight after the epoch (EST, 1970-01-01 05:00Z). */
    CHECK_INT(cron_next(&c, "America/New_York", 0, &t), 0);
    CHECK_INT(t, 5 * 3600000);
    /* The list stops at the end of the range instead of failing. */
    CHECK_INT(cron_next_n(&c, "UTC", CRON_AFTER_MAX_MS - 2 * 86400000, list, 5), 2);
    cron_zone_close(NULL);
}

static void cron_next_n_lists_upcoming(void)
{
    DUE("0 9 * * MON-FRI", "America/New_York", "2027-03-12T12:00:00Z",
        "2027-03-12T14:00:00Z", "2027-03-15T13:00:00Z", "2027-03-16T13:00:00Z",
        "2027-03-17T13:00:00Z", "2027-03-18T13:00:00Z");
    cron_expr c;
    int64_t list[5];
    CHECK_INT(cron_parse("@daily", &c, NULL, 0), 0);
    CHECK_INT(cron_next_n(&c, "UTC", 0, list, 0), 0);
}

/* ---- against a slow, plain search ---- */

static bool bit(uint64_t bits, int v)
{
    return bits >> v & 1;
}

/* c matches the UTC minute starting at t (5-field expressions). */
static bool matches_utc(const cron_expr *c, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    bool md = bit(c->bits[CRON_MDAY], tm.tm_mday), wd = bit(c->bits[CRON_WDAY], tm.tm_wday);
    bool day = (c->flags & (CRON_MDAY_ANY | CRON_WDAY_ANY)) ? md && wd : md || wd;
    return day && bit(c->bits[CRON_MONTH], tm.tm_mon + 1) && bit(c->bits[CRON_HOUR], tm.tm_hour) &&
           bit(c->bits[CRON_MINUTE], tm.tm_min);
}

/* Random expressions in UTC: cron_next agrees with trying every minute. */
static void cron_next_agrees_with_a_plain_search(void)
{
    static const char *const pieces[][6] = {
        {"*", "*/7", "5", "10-20", "0,30", "3-50/9"},           /* minute */
        {"*", "*/5", "0", "9-17", "1,13", "22/1"},              /* hour */
        {"*", "*", "1", "13", "28-31", "*/10"},                 /* day of month */
        {"*", "*", "FEB", "1-3", "*/2", "JUN,DEC"},             /* month */
        {"*", "*", "MON", "SAT,SUN", "1-5", "5-7"},             /* day of week */
    };
    unsigned seed = 12345;
    for (int n = 0; n < 60; n++) {
        char text[128];
        int p[5];
        for (int f = 0; f < 5; f++) {
            seed = seed * 1103515245 + 12345;
            p[f] = (int)(seed >> 16) % 6;
        }
        snprintf(text, sizeof(text), "%s %s %s %s %s", pieces[0][p[0]], pieces[1][p[1]],
                 pieces[2][p[2]], pieces[3][p[3]], pieces[4][p[4]]);
        cron_expr c;
        CHECK_INT(cron_parse(text, &c, NULL, 0), 0);
        int64_t from = at("2027-01-01T00:00:00Z") + (int64_t)(seed % 400) * 86400000 + 7000;
        int64_t got;
        CHECK_INT(cron_next(&c, "UTC", from, &got), 0);
        /* The plain search: day by day, then minute by minute. */
        time_t t = (time_t)(from / 60000 * 60 + 60), want = 0;
        for (int day = 0; day < 800 && !want; day++) {
            time_t midnight = t - t % 86400;
            struct tm tm;
            gmtime_r(&midnight, &tm);
            for (; t < midnight + 86400 && !want; t += 60)
                if (matches_utc(&c, t))
                    want = t;
        }
        if (got != (int64_t)want * 1000) {
            char m[300], a[25], b[25], f[25];
            snprintf(m, sizeof(m), "\"%s\" after %s: got %s, want %s", text, utc(from, f),
                     utc(got, a), utc((int64_t)want * 1000, b));
            unit_fail(__FILE__, __LINE__, m);
            return;
        }
    }
}

/* ---- threads and cost ---- */

typedef struct {
    const cron_expr *c;
    int64_t last;
    int rc;
} chain_job;

/* 500 due times of a quarter-hour schedule in Berlin from 2027-03-27. */
static void *chain(void *arg)
{
    chain_job *j = arg;
    cron_zone *z = cron_zone_open("Europe/Berlin", NULL, 0);
    int64_t t = at("2027-03-27T00:00:00Z");
    j->rc = z ? 0 : -1;
    for (int i = 0; i < 500 && j->rc == 0; i++)
        j->rc = cron_zone_next(j->c, z, t, &t);
    j->last = t;
    cron_zone_close(z);
    return NULL;
}

/* Threads share one cron_expr, each with its own cron_zone, and agree. */
static void cron_next_in_threads(void)
{
    cron_expr c;
    CHECK_INT(cron_parse("*/15 * * * *", &c, NULL, 0), 0);
    chain_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (chain_job){&c, 0, -1};
        CHECK_INT(pthread_create(&th[i], NULL, chain, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    /* 500 quarter hours after 00:00Z on the 27th, across the spring jump
     * (which drops nothing: 02:00-02:45 all fall on 03:00, itself due). */
    for (int i = 0; i < 4; i++) {
        CHECK_INT(jobs[i].rc, 0);
        CHECK_INT(jobs[i].last, at("2027-03-27T00:00:00Z") + 500 * INT64_C(900000));
    }
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A typical expression, many calls: the results chain on, and with
 * AOP_TEST_BENCH=1 the cost of a call is printed (no timed assertion). */
static void cron_next_is_cheap(void)
{
    enum { CALLS = 2000 };
    cron_expr c;
    CHECK_INT(cron_parse("*/15 9-17 * * MON-FRI", &c, NULL, 0), 0);
    cron_zone *z = cron_zone_open("Europe/Berlin", NULL, 0);
    CHECK(z != NULL);
    struct timespec t0;
    int64_t t = at("2027-01-01T00:00:00Z"), prev = t;
    int bad = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < CALLS; i++) {
        bad += cron_zone_next(&c, z, t, &t) != 0 || t <= prev;
        prev = t;
    }
    double reused = seconds_since(&t0) * 1e6 / CALLS;
    cron_zone_close(z);
    t = at("2027-01-01T00:00:00Z");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < CALLS; i++)
        bad += cron_next(&c, "Europe/Berlin", t, &t) != 0;
    double opened = seconds_since(&t0) * 1e6 / CALLS;
    CHECK_INT(bad, 0);
    CHECK_INT(t, prev);
    const char *bench = getenv("AOP_TEST_BENCH");
    if (bench && strcmp(bench, "1") == 0)
        printf("  cron_zone_next %.2f us a call, cron_next (opens the zone) %.2f us\n", reused,
               opened);
}

const unit_test cron_tests[] = {
    TEST(cron_parses_every_form),
    TEST(cron_marks_unrestricted_days),
    TEST(cron_expands_the_macros),
    TEST(cron_refuses_bad_expressions),
    TEST(cron_refuses_text_over_the_bound),
    TEST(cron_next_is_strictly_after),
    TEST(cron_next_counts_seconds),
    TEST(cron_next_walks_fields),
    TEST(cron_next_day_of_month_or_week),
    TEST(cron_next_month_ends_and_leap_years),
    TEST(cron_next_weekly_is_sunday_midnight),
    TEST(cron_next_in_offset_zones),
    TEST(cron_dst_berlin_2027),
    TEST(cron_dst_new_york_2027),
    TEST(cron_dst_skipped_day),
    TEST(cron_zones_changed_since_2022),
    TEST(cron_dst_2040),
    TEST(cron_zone_check_knows_iana_names),
    TEST(cron_next_refuses_bad_input),
    TEST(cron_next_n_lists_upcoming),
    TEST(cron_next_agrees_with_a_plain_search),
    TEST(cron_next_in_threads),
    TEST(cron_next_is_cheap),
    {NULL, NULL},
};
