/*
 * tz.h - IANA time zones from the system's tz database (TZif files, RFC 8536).
 *
 * A zone is loaded by its name from the zoneinfo directory: TZ_DIR_DEFAULT,
 * or the directory the TZDIR environment variable names (as glibc does).
 * Only version 2 and later files are read (their 64-bit data block), with
 * the footer's POSIX TZ string for instants past the last transition.
 *
 * A loaded tz_zone is never changed: any number of threads may use one at
 * once. tz_acquire keeps the zones it loads in a process-wide cache (at most
 * TZ_CACHE_MAX, for the life of the process), so that many schedules in one
 * zone share it and read its file once.
 *
 * Instants and wall times are seconds since 1970-01-01 00:00:00 (wall times
 * counted as if the zone were UTC); both are clamped to
 * [-TZ_TIME_LIMIT, TZ_TIME_LIMIT] (about 34,800 years either way) before a
 * rule is applied.
 */
#ifndef AOP_SCHEDULES_TZ_H
#define AOP_SCHEDULES_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Where zones are read from when TZDIR is unset or empty. */
#define TZ_DIR_DEFAULT "/usr/share/zoneinfo"
/* The longest zone name accepted, in bytes. */
#define TZ_NAME_MAX 64
/* The largest zone file read, in bytes (the largest real ones are under 4 KiB). */
#define TZ_FILE_MAX (256 * 1024)
/* How many zones tz_acquire keeps; past that, a zone is loaded at each call. */
#define TZ_CACHE_MAX 256
#define TZ_TIME_LIMIT (INT64_C(1) << 40)

/* ---- POSIX TZ strings ("CET-1CEST,M3.5.0,M10.5.0/3") ---- */

typedef enum {
    TZ_DATE_MWD,    /* Mm.w.d: day d (0 = Sunday) of week w (5 = last) of month m */
    TZ_DATE_JULIAN, /* Jn: day n, 1-365, 29 February never counted */
    TZ_DATE_DAY,    /* n: day n, 0-365, 29 February counted */
} tz_date_kind;

typedef struct {
    tz_date_kind kind;
    int month, week, wday; /* TZ_DATE_MWD */
    int day;               /* TZ_DATE_JULIAN, TZ_DATE_DAY */
    int32_t time;          /* seconds after local midnight, -167:59:59 to 167:59:59 */
} tz_date;

typedef struct {
    int32_t std_off; /* standard time's UTC offset in seconds, east positive */
    int32_t dst_off; /* DST's (std_off + 3600 unless written) */
    bool has_dst;
    tz_date start;   /* DST starts, at a time in standard time */
    tz_date end;     /* DST ends, at a time in DST */
} tz_rule;

/* Parses the len bytes at s (no NUL needed) as a POSIX TZ string with
 * RFC 8536's extensions (transition times from -167 to 167 hours): std
 * name and offset, then optionally a DST name, offset and rule. Names are
 * 3 or more letters, or <...> around 3 or more of [A-Za-z0-9+-]; offsets
 * are [+-]hh[:mm[:ss]] with hh 0-24, positive west of Greenwich. A DST name
 * without a rule is refused (no default rule is guessed). AOP_OK, or
 * AOP_ERR_VALIDATION with a message. */
aop_err tz_rule_parse(const char *s, size_t len, tz_rule *out, char *err, size_t errlen);

/* The UTC offset, in seconds, that rule r gives at instant t. */
int32_t tz_rule_offset(const tz_rule *r, int64_t t);

/* ---- zones ---- */

typedef struct tz_zone tz_zone;

/* A zone from the bytes of a TZif file (version 2 or later, no leap-second
 * records) into *out, freed with tz_free. AOP_OK; AOP_ERR_NOT_FOUND when
 * the bytes do not start as a TZif file; AOP_ERR_INTERNAL for one that is
 * malformed or unsupported. A message in err either way. */
aop_err tz_parse(const uint8_t *data, size_t len, tz_zone **out, char *err, size_t errlen);

/* Loads zone name from the zoneinfo directory into *out (freed with
 * tz_free), bypassing the cache. name must be a relative path of
 * components of [A-Za-z0-9_+-] separated by single '/', at most
 * TZ_NAME_MAX bytes. AOP_OK; AOP_ERR_VALIDATION for a name refused unread;
 * AOP_ERR_NOT_FOUND when there is no such zone (no such file, not a regular
 * file, not a TZif file); AOP_ERR_INTERNAL for a file that cannot be read
 * or is malformed. */
aop_err tz_load(const char *name, tz_zone **out, char *err, size_t errlen);

/* Frees z; NULL is fine. Not for a zone from tz_acquire. */
void tz_free(tz_zone *z);

/* tz_load through the cache: the zone, shared and read only, into *out;
 * the caller gives it back with tz_release. Errors as tz_load's. Safe in
 * any number of threads. */
aop_err tz_acquire(const char *name, const tz_zone **out, char *err, size_t errlen);

/* Gives back a zone from tz_acquire; NULL is fine. */
void tz_release(const tz_zone *z);

/* The UTC offset of z at instant t, in seconds (east positive). */
int32_t tz_offset(const tz_zone *z, int64_t t);

/* The instant of the wall time local in z: the first instant at which z's
 * clock reads local or later. So a wall time that occurs twice maps to its
 * first occurrence, one the clocks skip to the instant they jump over it,
 * and later wall times never map to earlier instants. */
int64_t tz_instant(const tz_zone *z, int64_t local);

/* ---- the proleptic Gregorian calendar ---- */

/* Days since 1970-01-01 of y-m-d (m 1-12, d 1-31). */
int64_t tz_days_from_civil(int64_t y, int m, int d);
/* The date of the day days after 1970-01-01. */
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* The number of days of month m (1-12) of year y. */
int tz_days_in_month(int64_t y, int m);

#endif
