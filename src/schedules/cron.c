/*
 * cron.c - the cron parser (our own: Debian has no maintained C cron
 * library) and the next-due-time search (wall-clock arithmetic here, the
 * zone's rules from the system's tz database through tz.c).
 */
#include "schedules/cron.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/mem.h"
#include "schedules/tz.h"

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

/* The wall-clock time t seconds after 1970-01-01 00:00:00 into *c. */
static void civil_from_secs(int64_t t, civil *c)
{
    int64_t sod = (t % 86400 + 86400) % 86400, days = (t - sod) / 86400, y;
    c->h = (int)(sod / 3600);
    c->mi = (int)(sod / 60 % 60);
    c->s = (int)(sod % 60);
    tz_civil_from_days(days, &y, &c->mo, &c->d);
    c->y = (int)y;
}

static int64_t civil_secs(const civil *c)
{
    return tz_days_from_civil(c->y, c->mo, c->d) * 86400 + c->h * 3600 + c->mi * 60 + c->s;
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
    int wday = (int)((tz_days_from_civil(w->y, w->mo, w->d) % 7 + 11) % 7); /* 1970-01-01: Thu */
    bool mday = c->bits[CRON_MDAY] >> w->d & 1, wd = c->bits[CRON_WDAY] >> wday & 1;
    if (c->flags & (CRON_MDAY_ANY | CRON_WDAY_ANY))
        return mday && wd;
    return mday || wd;
}

/* Midnight of the day after w's. */
static void next_day(civil *w)
{
    w->h = w->mi = w->s = 0;
    if (++w->d <= tz_days_in_month(w->y, w->mo))
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

/* ---- the zone's rules (tz.c) ---- */

struct cron_zone {
    const tz_zone *tz;
};

_Static_assert(CRON_ZONE_MAX == TZ_NAME_MAX, "cron.h's bound on zone names is tz.h's");

/* The zone named zone (NULL: "UTC") from tz.c's cache into *tz, or -1 with
 * the user's message: every name the tz database does not have as a zone
 * is "unknown"; a zone file that cannot be read is named as such. */
static int zone_acquire(const char *zone, const tz_zone **tz, char *err, size_t errlen)
{
    if (!zone)
        zone = "UTC";
    size_t len = strnlen(zone, CRON_ZONE_MAX + 1);
    if (len == 0)
        return err_set(err, errlen, "the time zone is empty");
    if (len > CRON_ZONE_MAX)
        return err_set(err, errlen, "the time zone is longer than %d bytes", CRON_ZONE_MAX);
    char why[256];
    aop_err rc = tz_acquire(zone, tz, why, sizeof(why));
    if (rc == AOP_ERR_INTERNAL)
        return err_set(err, errlen, "%s", why);
    if (rc != AOP_OK)
        return err_set(err, errlen, "unknown time zone \"%s\"", zone);
    return 0;
}

int cron_zone_check(const char *zone, char *err, size_t errlen)
{
    const tz_zone *tz;
    if (zone_acquire(zone, &tz, err, errlen) != 0)
        return -1;
    tz_release(tz);
    return 0;
}

cron_zone *cron_zone_open(const char *zone, char *err, size_t errlen)
{
    const tz_zone *tz;
    if (zone_acquire(zone, &tz, err, errlen) != 0)
        return NULL;
    cron_zone *z = xmalloc(sizeof(*z));
    z->tz = tz;
    return z;
}

void cron_zone_close(cron_zone *z)
{
    if (z) {
        tz_release(z->tz);
        free(z);
    }
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
    if (!c || !z || after_ms < 0 || after_ms >= CRON_AFTER_MAX_MS)
        return -1;
    int64_t after_s = after_ms / 1000;
    civil w;
    civil_from_secs(after_s + tz_offset(z->tz, after_s) + 1, &w);
    int last_year = w.y + CRON_SEARCH_YEARS;
    for (;;) {
        if (civil_next(c, &w, last_year) != 0)
            return 1;
        int64_t t = tz_instant(z->tz, civil_secs(&w)) * 1000;
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
