/*
 * cron.h - cron expressions and their due times in an IANA time zone.
 *
 * A schedule's `cron` text is parsed once into a cron_expr (plain bit sets,
 * no pointers: copy it, store it beside the schedule, share it between
 * threads freely). Its due times are computed in the schedule's zone by
 * stepping through wall-clock fields, with the zone's rules from the
 * system's tz database (tz.h). docs/schedules.md is the user's description
 * of both.
 *
 * Syntax: 5 fields (minute hour day-of-month month day-of-week; the second
 * is then 0) or 6 (second first), separated by blanks. A field is a list of
 * items separated by ','; an item is '*', a value, or a range 'a-b', each
 * optionally followed by '/n' (every n-th value of the range; 'a/n' runs
 * from a to the field's last value). Values: second and minute 0-59, hour
 * 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-7 or
 * SUN-SAT (0 and 7 are Sunday); names are case-insensitive. The macros
 * @hourly, @daily, @weekly (Sunday 00:00) and @monthly stand for a whole
 * expression. When both day fields are restricted (neither is a lone '*'),
 * a day matches when either matches (the classic cron rule); otherwise both
 * must.
 *
 * Wall times the zone skips (a DST gap) are due once, at the instant the
 * clocks jump; wall times it repeats are due once, at their first
 * occurrence.
 *
 * Thread safety: cron_parse, cron_zone_check and cron_next may run in any
 * number of threads at once; so may cron_zone_next on one cron_zone (it is
 * read only), which its opener closes once no thread uses it any more.
 */
#ifndef AOP_SCHEDULES_CRON_H
#define AOP_SCHEDULES_CRON_H

#include <stddef.h>
#include <stdint.h>

/* The longest expression accepted, in bytes. */
#define CRON_TEXT_MAX 256
/* The longest zone name accepted, in bytes (IANA names are under 32). */
#define CRON_ZONE_MAX 64 /* tz.h's TZ_NAME_MAX */
/* How far ahead, in years of wall time, a search for the next due time
 * looks before it answers "never". No expression that can match at all
 * goes longer without one: 29 February is 8 years away around 2100. */
#define CRON_SEARCH_YEARS 10
/* The instants cron_next accepts as its starting point: 1970 up to, not
 * including, 9990-01-01T00:00:00Z (253086768000000 ms), so that every
 * search ends before the year 10000. */
#define CRON_AFTER_MAX_MS INT64_C(253086768000000)

/* The fields, in the order of a 6-field expression. */
enum {
    CRON_SECOND,
    CRON_MINUTE,
    CRON_HOUR,
    CRON_MDAY,  /* day of month, 1-31 */
    CRON_MONTH, /* 1-12 */
    CRON_WDAY,  /* day of week, 0 = Sunday .. 6 = Saturday (7 is folded into 0) */
    CRON_NFIELDS
};

/* cron_expr.flags: the day field was a lone '*' (unrestricted). */
#define CRON_MDAY_ANY 1u
#define CRON_WDAY_ANY 2u

typedef struct {
    uint64_t bits[CRON_NFIELDS]; /* bit v set: value v matches the field */
    unsigned flags;              /* CRON_MDAY_ANY, CRON_WDAY_ANY */
} cron_expr;

/* Parses text (NUL-terminated, at most CRON_TEXT_MAX bytes) into *out.
 * 0, or -1 with a message for the user in err that names the field and
 * what is wrong with it ("minute: 61 is out of range 0-59"); *out is then
 * unspecified. */
int cron_parse(const char *text, cron_expr *out, char *err, size_t errlen);

/* 0 when the system's tz database has zone as an IANA time zone name
 * (exact spelling, aliases such as "US/Eastern" included; NULL stands for
 * the default, "UTC"), or -1 with a message in err. */
int cron_zone_check(const char *zone, char *err, size_t errlen);

/* A zone's rules, for computing many due times without looking the zone
 * up each time (the scheduler keeps one per thread or per schedule). */
typedef struct cron_zone cron_zone;

/* Opens zone (NULL stands for "UTC"): a new cron_zone the caller closes,
 * or NULL with a message in err for a name cron_zone_check refuses. */
cron_zone *cron_zone_open(const char *zone, char *err, size_t errlen);
/* Frees z; NULL is fine. */
void cron_zone_close(cron_zone *z);

/* The first due time of c strictly after after_ms (Unix ms, 0 up to
 * CRON_AFTER_MAX_MS excluded) in z's zone, into *out_ms (whole seconds).
 * 0 found; 1 none within CRON_SEARCH_YEARS (the expression never matches,
 * e.g. "0 0 30 2 *"); -1 for after_ms out of range. */
int cron_zone_next(const cron_expr *c, cron_zone *z, int64_t after_ms, int64_t *out_ms);

/* cron_zone_next on a cron_zone of its own for zone (NULL: "UTC"); -1 also
 * for a zone cron_zone_check refuses. */
int cron_next(const cron_expr *c, const char *zone, int64_t after_ms, int64_t *out_ms);

/* The next n due times after after_ms in zone (NULL: "UTC"), in order,
 * into out[0..n-1]: how many were found (fewer than n when the expression
 * never matches again), or -1 as for cron_next. */
int cron_next_n(const cron_expr *c, const char *zone, int64_t after_ms, int64_t *out, int n);

#endif
