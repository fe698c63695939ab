/*
 * cron.c - the cron parser (our own: Debian has no maintained C cron
 * library) and the next-due-time search (wall-clock arithmetic here, the
 * zone's rules from ICU's calendar).
 */
#include "schedules/cron.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "core/err.h"

/* ---- parsing ---- */

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const wday_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

/* One row a field, in the order of a 6-field expression. A '*' and an
 * 'a/n' run up to last; a value may be up to max (7 for Sunday again). */
typedef struct {
    const char *name;          /* as messages call it */
    int min, last, max;
    const char *const *names;  /* NULL, or the names of min, min + 1, ... */
    int nnames;
} field_spec;

static const field_spec fields[CRON_NFIELDS] = {
    [CRON_SECOND] = {"second", 0, 59, 59, NULL, 0},
    [CRON_MINUTE] = {"minute", 0, 59, 59, NULL, 0},
    [CRON_HOUR] = {"hour", 0, 23, 23, NULL, 0},
    [CRON_MDAY] = {"day of month", 1, 31, 31, NULL, 0},
    [CRON_MONTH] = {"month", 1, 12, 12, month_names, 12},
    [CRON_WDAY] = {"day of week", 0, 6, 7, wday_names, 7},
};

/* The macros, as the 6-field expressions they stand for. */
static const struct {
    const char *name;
    const char *text;
} macros[] = {
    {"@hourly", "0 0 * * * *"},
    {"@daily", "0 0 0 * * *"},
    {"@weekly", "0 0 0 * * 0"},
    {"@monthly", "0 0 0 1 * *"},
};

/* How much of a user's text a message quotes, for a piece of len bytes. */
#define QUOTE_MAX 32

static int quoted(ptrdiff_t len)
{
    return len < QUOTE_MAX ? (int)len : QUOTE_MAX;
}

/* The value written at [p, end): a decimal number or, where the field has
 * names, a name; into *v. 0 or -1 with a message. */
static int parse_value(const field_spec *f, const char *p, const char *end, int *v, char *err,
                       size_t errlen)
{
    int len = (int)(end - p);
    if (len == 0)
        return err_set(err, errlen, "%s: a value is missing", f->name);
    if (isdigit((unsigned char)*p)) {
        long n = 0;
        for (const char *q = p; q < end; q++) {
            if (!isdigit((unsigned char)*q))
                return err_set(err, errlen, "%s: \"%.*s\" is not a number", f->name,
                               quoted(len), p);
            if (n <= f->max)
                n = n * 10 + (*q - '0');
        }
        if (n < f->min || n > f->max)
            return err_set(err, errlen, "%s: %.*s is out of range %d-%d", f->name,
                           quoted(len), p, f->min, f->max);
        *v = (int)n;
        return 0;
    }
    for (int i = 0; i < f->nnames; i++) {
        if (len == 3 && strncasecmp(p, f->names[i], 3) == 0) {
            *v = f->min + i;
            return 0;
        }
    }
    if (f->names)
        return err_set(err, errlen, "%s: \"%.*s\" is neither a number nor a name (%s-%s)",
                       f->name, quoted(len), p, f->names[0],
                       f->names[f->nnames - 1]);
    return err_set(err, errlen, "%s: \"%.*s\" is not a number", f->name,
                   quoted(len), p);
}

/* The step after the '/' at [p, end): 1 up to the number of values a '*'
 * covers. */
static int parse_step(const field_spec *f, const char *p, const char *end, int *step,
                      char *err, size_t errlen)
{
    int len = (int)(end - p), most = f->last - f->min + 1;
    long n = 0;
    if (len == 0)
        return err_set(err, errlen, "%s: a step is missing after '/'", f->name);
    for (const char *q = p; q < end; q++) {
        if (!isdigit((unsigned char)*q))
            return err_set(err, errlen, "%s: step \"%.*s\" is not a number", f->name,
                           quoted(len), p);
        if (n <= most)
            n = n * 10 + (*q - '0');
    }
    if (n < 1 || n > most)
        return err_set(err, errlen, "%s: step %.*s is out of range 1-%d", f->name,
                       quoted(len), p, most);
    *step = (int)n;
    return 0;
}

/* One list item at [p, end): '*', 'a', 'a-b', each with an optional '/n';
 * its values are added to *bits. */
static int parse_item(const field_spec *f, const char *p, const char *end, uint64_t *bits,
                      char *err, size_t errlen)
{
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *range_end = slash ? slash : end;
    int lo, hi, step = 1;
    if (range_end - p == 1 && *p == '*') {
        lo = f->min;
        hi = f->last;
    } else {
        const char *dash = memchr(p, '-', (size_t)(range_end - p));
        if (parse_value(f, p, dash ? dash : range_end, &lo, err, errlen) != 0)
            return -1;
        /* 'a/n' runs to the last value ('7/n' of the weekdays is Sunday alone). */
        hi = slash && lo < f->last ? f->last : lo;
        if (dash) {
            if (parse_value(f, dash + 1, range_end, &hi, err, errlen) != 0)
                return -1;
            if (hi < lo)
                return err_set(err, errlen, "%s: range %.*s runs backwards", f->name,
                               quoted(range_end - p), p);
        }
    }
    if (slash && parse_step(f, slash + 1, end, &step, err, errlen) != 0)
        return -1;
    for (int v = lo; v <= hi; v += step)
        *bits |= UINT64_C(1) << v;
    return 0;
}

/* The field f written at [p, end) (no blanks), a list of items, into *bits. */
static int parse_field(const field_spec *f, const char *p, const char *end, uint64_t *bits,
                       char *err, size_t errlen)
{
    *bits = 0;
    for (const char *q = p; q < end; q++) {
        unsigned char ch = (unsigned char)*q;
        if (isalnum(ch) || (ch && strchr("*,-/", ch)))
            continue;
        if (isprint(ch))
            return err_set(err, errlen, "%s: unexpected character '%c'", f->name, ch);
        return err_set(err, errlen, "%s: unexpected byte 0x%02x", f->name, ch);
    }
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        if (item_end == p)
            return err_set(err, errlen, "%s: an empty item in the list", f->name);
        if (parse_item(f, p, item_end, bits, err, errlen) != 0)
            return -1;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* The expression's fields at text (blank-separated), for the macros too. */
static int parse_fields(const char *text, cron_expr *out, char *err, size_t errlen)
{
    const char *start[CRON_NFIELDS + 1], *end[CRON_NFIELDS + 1];
    int n = 0;
    for (const char *p = text; *p;) {
        while (is_blank(*p))
            p++;
        if (!*p)
            break;
        if (n == CRON_NFIELDS + 1)
            break;
        start[n] = p;
        while (*p && !is_blank(*p))
            p++;
        end[n++] = p;
    }
    if (n == 0)
        return err_set(err, errlen, "the expression is empty");
    if (n != 5 && n != 6)
        return err_set(err, errlen,
                       "expected 5 fields (minute hour day-of-month month day-of-week) or 6 "
                       "(second first), got %s%d",
                       n > CRON_NFIELDS ? "more than " : "", n > CRON_NFIELDS ? CRON_NFIELDS : n);
    int first = CRON_NFIELDS - n; /* 5 fields: no second field, second 0 */
    out->bits[CRON_SECOND] = 1;
    out->flags = 0;
    for (int i = 0; i < n; i++) {
        int fi = first + i;
        if (parse_field(&fields[fi], start[i], end[i], &out->bits[fi], err, errlen) != 0)
            return -1;
        bool any = end[i] - start[i] == 1 && *start[i] == '*';
        if (any && fi == CRON_MDAY)
            out->flags |= CRON_MDAY_ANY;
        if (any && fi == CRON_WDAY)
            out->flags |= CRON_WDAY_ANY;
    }
    /* 7 is Sunday too. */
    if (out->bits[CRON_WDAY] & (UINT64_C(1) << 7))
        out->bits[CRON_WDAY] = (out->bits[CRON_WDAY] & ~(UINT64_C(1) << 7)) | 1;
    return 0;
}

int cron_parse(const char *text, cron_expr *out, char *err, size_t errlen)
{
    if (!text)
        return err_set(err, errlen, "the expression is empty");
    if (strnlen(text, CRON_TEXT_MAX + 1) > CRON_TEXT_MAX)
        return err_set(err, errlen, "longer than %d bytes", CRON_TEXT_MAX);
    const char *p = text;
    while (is_blank(*p))
        p++;
    if (*p != '@')
        return parse_fields(p, out, err, errlen);
    size_t len = strcspn(p, " \t");
    for (const char *q = p + len; *q; q++)
        if (!is_blank(*q))
            return err_set(err, errlen, "a macro (%.*s) stands alone", (int)len, p);
    for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
        if (strlen(macros[i].name) == len && strncasecmp(p, macros[i].name, len) == 0)
            return parse_fields(macros[i].text, out, err, errlen);
    return err_set(err, errlen, "unknown macro \"%.*s\" (@hourly, @daily, @weekly, @monthly)",
                   quoted((ptrdiff_t)len), p);
}

/* ---- wall-clock arithmetic (proleptic Gregorian, no zone) ---- */

/* A wall-clock time: month 1-12, day 1-31. */
typedef struct {
    int y, mo, d, h, mi, s;
} civil;

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 of a date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The wall-clock time t seconds after 1970-01-01 00:00:00 into *c. */
static void civil_from_secs(int64_t t, civil *c)
{
    int64_t days = floor_div(t, 86400), sod = t - days * 86400;
    c->h = (int)(sod / 3600);
    c->mi = (int)(sod / 60 % 60);
    c->s = (int)(sod % 60);
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    c->d = (int)(doy - (153 * mp + 2) / 5 + 1);
    c->mo = (int)(mp < 10 ? mp + 3 : mp - 9);
    c->y = (int)(yoe + era * 400 + (c->mo <= 2));
}

static int64_t civil_secs(const civil *c)
{
    return days_from_civil(c->y, c->mo, c->d) * 86400 + c->h * 3600 + c->mi * 60 + c->s;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* The smallest value >= from whose bit is set in bits, or -1. */
static int next_bit(uint64_t bits, int from)
{
    if (from > 63)
        return -1;
    uint64_t rest = bits & (~UINT64_C(0) << from);
    return rest ? __builtin_ctzll(rest) : -1;
}

/* The classic rule: when both day fields are restricted, either may match. */
static bool day_matches(const cron_expr *c, const civil *w)
{
    int wday = (int)((days_from_civil(w->y, w->mo, w->d) % 7 + 11) % 7); /* 1970-01-01: Thu */
    bool mday = c->bits[CRON_MDAY] >> w->d & 1, wd = c->bits[CRON_WDAY] >> wday & 1;
    if (c->flags & (CRON_MDAY_ANY | CRON_WDAY_ANY))
        return mday && wd;
    return mday || wd;
}

/* Midnight of the day after w's. */
static void next_day(civil *w)
{
    w->h = w->mi = w->s = 0;
    if (++w->d <= days_in_month(w->y, w->mo))
        return;
    w->d = 1;
    if (++w->mo > 12) {
        w->mo = 1;
        w->y++;
    }
}

/*
 * Moves *w to the first wall-clock time at or after it that c matches:
 * month, then day, hour, minute and second, each jumping to the next value
 * its bit set allows and starting the smaller fields over when it moves.
 * 0, or 1 when that would be in a year after last_year (*w is then past it).
 * Each turn ends or moves w to the start of a later month, day, hour or
 * minute, and a field started over from its first value always finds one,
 * so a day costs a few turns at most and CRON_SEARCH_YEARS some thousands.
 */
static int civil_next(const cron_expr *c, civil *w, int last_year)
{
    while (w->y <= last_year) {
        if (!(c->bits[CRON_MONTH] >> w->mo & 1)) {
            int mo = next_bit(c->bits[CRON_MONTH], w->mo + 1);
            if (mo < 0) {
                mo = next_bit(c->bits[CRON_MONTH], 1);
                w->y++;
            }
            *w = (civil){w->y, mo, 1, 0, 0, 0};
            continue;
        }
        if (!day_matches(c, w)) {
            next_day(w);
            continue;
        }
        int h = next_bit(c->bits[CRON_HOUR], w->h);
        if (h < 0) {
            next_day(w);
            continue;
        }
        if (h != w->h)
            *w = (civil){w->y, w->mo, w->d, h, 0, 0};
        int mi = next_bit(c->bits[CRON_MINUTE], w->mi);
        if (mi < 0) {
            if (w->h == 23)
                next_day(w);
            else
                *w = (civil){w->y, w->mo, w->d, w->h + 1, 0, 0};
            continue;
        }
        if (mi != w->mi)
            *w = (civil){w->y, w->mo, w->d, w->h, mi, 0};
        int s = next_bit(c->bits[CRON_SECOND], w->s);
        if (s < 0) {
            civil_from_secs(civil_secs(w) - w->s + 60, w);
            continue;
        }
        w->s = s;
        return 0;
    }
    return 1;
}

/* ---- the zone's rules (ICU) ---- */

/* The zone name as ICU takes it, into id (CRON_ZONE_MAX + 1 units); its
 * length, or -1 with a message. NULL is "UTC". */
static int32_t zone_id(const char *zone, UChar *id, char *err, size_t errlen)
{
    if (!zone)
        zone = "UTC";
    size_t len = strnlen(zone, CRON_ZONE_MAX + 1);
    if (len == 0)
        return err_set(err, errlen, "the time zone is empty");
    if (len > CRON_ZONE_MAX)
        return err_set(err, errlen, "the time zone is longer than %d bytes", CRON_ZONE_MAX);
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)zone[i]) && !strchr("/_+-", zone[i]))
            return err_set(err, errlen, "unknown time zone \"%s\"", zone);
    u_charsToUChars(zone, id, (int32_t)len);
    id[len] = 0;
    return (int32_t)len;
}

/* The checks of cron_zone_check on a name zone_id took. */
static int zone_known(const char *zone, const UChar *id, int32_t len, char *err, size_t errlen)
{
    UChar canon[CRON_ZONE_MAX + 1];
    UBool system_id = 0;
    UErrorCode st = U_ZERO_ERROR;
    ucal_getCanonicalTimeZoneID(id, len, canon, CRON_ZONE_MAX + 1, &system_id, &st);
    /* Custom ids ("GMT+05:00") and "Etc/Unknown" are not system ids. */
    if (U_FAILURE(st) || !system_id)
        return err_set(err, errlen, "unknown time zone \"%s\"", zone ? zone : "UTC");
    return 0;
}

int cron_zone_check(const char *zone, char *err, size_t errlen)
{
    UChar id[CRON_ZONE_MAX + 1];
    int32_t len = zone_id(zone, id, err, errlen);
    return len < 0 ? -1 : zone_known(zone, id, len, err, errlen);
}

cron_zone *cron_zone_open(const char *zone, char *err, size_t errlen)
{
    UChar id[CRON_ZONE_MAX + 1];
    int32_t len = zone_id(zone, id, err, errlen);
    if (len < 0 || zone_known(zone, id, len, err, errlen) != 0)
        return NULL;
    UErrorCode st = U_ZERO_ERROR;
    UCalendar *cal = ucal_open(id, len, "en_US_POSIX", UCAL_GREGORIAN, &st);
    if (U_FAILURE(st)) {
        err_set(err, errlen, "time zone \"%s\": %s", zone ? zone : "UTC", u_errorName(st));
        ucal_close(cal);
        return NULL;
    }
    /* The contract's DST rules: a skipped wall time is the instant the
     * clocks jump, a repeated one its first occurrence. */
    ucal_setAttribute(cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_NEXT_VALID);
    ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
    return (cron_zone *)cal;
}

void cron_zone_close(cron_zone *z)
{
    if (z)
        ucal_close((UCalendar *)z);
}

/* The zone's offset from UTC at the instant ms, in seconds (floored). */
static int offset_at(UCalendar *cal, int64_t ms, int64_t *off_s)
{
    UErrorCode st = U_ZERO_ERROR;
    ucal_setMillis(cal, (UDate)ms, &st);
    int32_t zone = ucal_get(cal, UCAL_ZONE_OFFSET, &st);
    int32_t dst = ucal_get(cal, UCAL_DST_OFFSET, &st);
    if (U_FAILURE(st))
        return -1;
    *off_s = floor_div((int64_t)zone + dst, 1000);
    return 0;
}

/* The instant of wall-clock time w in the calendar's zone (DST rules as
 * cron_zone_open set them), in ms. */
static int instant_of(UCalendar *cal, const civil *w, int64_t *ms)
{
    UErrorCode st = U_ZERO_ERROR;
    ucal_clear(cal);
    ucal_setDateTime(cal, w->y, w->mo - 1, w->d, w->h, w->mi, w->s, &st);
    UDate t = ucal_getMillis(cal, &st);
    if (U_FAILURE(st))
        return -1;
    *ms = (int64_t)t;
    return 0;
}

/*
 * Wall-clock times map to instants in order (a skipped one to the jump's
 * instant, a repeated one to its first occurrence), and no wall time up to
 * that of after_ms maps to an instant after it. So the search starts at the
 * second after after_ms's wall time, takes the first wall time c matches
 * and, when that maps to after_ms or before (a wall time repeated, its first
 * occurrence already past), goes on from the second after it.
 */
int cron_zone_next(const cron_expr *c, cron_zone *z, int64_t after_ms, int64_t *out_ms)
{
    UCalendar *cal = (UCalendar *)z;
    if (!c || !cal || after_ms < 0 || after_ms >= CRON_AFTER_MAX_MS)
        return -1;
    int64_t after_s = after_ms / 1000, off_s;
    if (offset_at(cal, after_s * 1000, &off_s) != 0)
        return -1;
    civil w;
    civil_from_secs(after_s + off_s + 1, &w);
    int last_year = w.y + CRON_SEARCH_YEARS;
    for (;;) {
        if (civil_next(c, &w, last_year) != 0)
            return 1;
        int64_t t;
        if (instant_of(cal, &w, &t) != 0)
            return -1;
        if (t > after_ms) {
            *out_ms = t;
            return 0;
        }
        civil_from_secs(civil_secs(&w) + 1, &w);
    }
}

int cron_next(const cron_expr *c, const char *zone, int64_t after_ms, int64_t *out_ms)
{
    cron_zone *z = cron_zone_open(zone, NULL, 0);
    if (!z)
        return -1;
    int rc = cron_zone_next(c, z, after_ms, out_ms);
    cron_zone_close(z);
    return rc;
}

int cron_next_n(const cron_expr *c, const char *zone, int64_t after_ms, int64_t *out, int n)
{
    cron_zone *z = cron_zone_open(zone, NULL, 0);
    if (!z)
        return -1;
    int found = 0, rc = 0;
    while (found < n && (rc = cron_zone_next(c, z, after_ms, &out[found])) == 0)
        after_ms = out[found++];
    cron_zone_close(z);
    /* A failure after some were found (the range's end) ends the list. */
    return rc < 0 && found == 0 ? -1 : found;
}
