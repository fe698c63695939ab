/*
 * tz.c - TZif files and POSIX TZ strings (RFC 8536), read into immutable
 * zones, and the process-wide cache of loaded zones.
 *
 * Our own reader: ICU's bundled tz data on Debian 12 is years older than
 * the system's tzdata, and glibc reads TZif only for the process-wide TZ
 * (localtime), which a threaded server cannot switch per schedule.
 */
#include "schedules/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mem.h"

/* UTC offsets accepted from a file: RFC 8536's -89999 to 93599 seconds. */
#define OFF_MIN (-89999)
#define OFF_MAX 93599
#define DAY INT64_C(86400)

struct tz_zone {
    size_t n;        /* transitions */
    int64_t *times;  /* their instants, ascending */
    int32_t *offs;   /* the UTC offset from each on */
    int32_t off0;    /* before the first (time type 0) */
    bool has_rule;   /* the footer's rule applies from the last transition */
    tz_rule rule;
    bool cached;     /* belongs to the cache (tz_release keeps it) */
};

/* ---- the calendar ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* H. Hinnant's days_from_civil. */
int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* H. Hinnant's civil_from_days. */
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int tz_days_in_month(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static int64_t clamp_time(int64_t t)
{
    return t < -TZ_TIME_LIMIT ? -TZ_TIME_LIMIT : t > TZ_TIME_LIMIT ? TZ_TIME_LIMIT : t;
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    int m, d;
    tz_civil_from_days(floor_div(clamp_time(t), DAY), &y, &m, &d);
    return y;
}

/* ---- POSIX TZ strings ---- */

typedef struct {
    const char *p, *end;
} scan;

static bool at_char(const scan *s, char ch)
{
    return s->p < s->end && *s->p == ch;
}

static bool is_alpha(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* A zone abbreviation: 3 or more letters, or <3 or more of [A-Za-z0-9+-]>. */
static bool scan_name(scan *s)
{
    const char *q = s->p;
    if (at_char(s, '<')) {
        for (q++; q < s->end && (is_alpha(*q) || is_digit(*q) || *q == '+' || *q == '-'); q++)
            ;
        if (q == s->end || *q != '>' || q - s->p - 1 < 3)
            return false;
        s->p = q + 1;
        return true;
    }
    for (; q < s->end && is_alpha(*q); q++)
        ;
    if (q - s->p < 3)
        return false;
    s->p = q;
    return true;
}

/* 1 to maxdigits decimal digits, at most max, into *v. */
static bool scan_num(scan *s, int maxdigits, int max, int *v)
{
    int n = 0, k = 0;
    for (; k < maxdigits && s->p < s->end && is_digit(*s->p); k++, s->p++)
        n = n * 10 + (*s->p - '0');
    if (k == 0 || n > max)
        return false;
    *v = n;
    return true;
}

/* [+-]hh[:mm[:ss]], hh up to max_h, into seconds (the sign applied). */
static bool scan_hms(scan *s, int max_h, int32_t *out)
{
    int sign = 1, h, m = 0, sec = 0;
    if (at_char(s, '+') || at_char(s, '-'))
        sign = *s->p++ == '-' ? -1 : 1;
    if (!scan_num(s, 3, max_h, &h))
        return false;
    if (at_char(s, ':')) {
        s->p++;
        if (!scan_num(s, 2, 59, &m))
            return false;
        if (at_char(s, ':')) {
            s->p++;
            if (!scan_num(s, 2, 59, &sec))
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
}

/* Jn, n or Mm.w.d, then an optional /time (02:00 when absent). */
static bool scan_date(scan *s, tz_date *d)
{
    *d = (tz_date){.time = 7200};
    if (at_char(s, 'M')) {
        s->p++;
        d->kind = TZ_DATE_MWD;
        if (!scan_num(s, 2, 12, &d->month) || d->month < 1 || !at_char(s, '.'))
            return false;
        s->p++;
        if (!scan_num(s, 1, 5, &d->week) || d->week < 1 || !at_char(s, '.'))
            return false;
        s->p++;
        if (!scan_num(s, 1, 6, &d->wday))
            return false;
    } else if (at_char(s, 'J')) {
        s->p++;
        d->kind = TZ_DATE_JULIAN;
        if (!scan_num(s, 3, 365, &d->day) || d->day < 1)
            return false;
    } else {
        d->kind = TZ_DATE_DAY;
        if (!scan_num(s, 3, 365, &d->day))
            return false;
    }
    if (at_char(s, '/')) {
        s->p++;
        return scan_hms(s, 167, &d->time);
    }
    return true;
}

aop_err tz_rule_parse(const char *str, size_t len, tz_rule *out, char *err, size_t errlen)
{
    scan s = {str, str + len};
    int32_t off;
    *out = (tz_rule){0};
    if (!scan_name(&s))
        goto bad;
    if (!scan_hms(&s, 24, &off))
        goto bad;
    out->std_off = -off;
    out->dst_off = out->std_off + 3600;
    if (s.p == s.end)
        return AOP_OK;
    if (!scan_name(&s))
        goto bad;
    out->has_dst = true;
    if (!at_char(&s, ',')) {
        if (s.p == s.end) {
            err_set(err, errlen, "TZ string \"%.*s\": DST without a rule", (int)len, str);
            return AOP_ERR_VALIDATION;
        }
        if (!scan_hms(&s, 24, &off))
            goto bad;
        out->dst_off = -off;
    }
    if (!at_char(&s, ','))
        goto bad;
    s.p++;
    if (!scan_date(&s, &out->start) || !at_char(&s, ','))
        goto bad;
    s.p++;
    if (!scan_date(&s, &out->end) || s.p != s.end)
        goto bad;
    return AOP_OK;
bad:
    err_set(err, errlen, "TZ string \"%.*s\": unexpected text at byte %d",
            len > 64 ? 64 : (int)len, str, (int)(s.p - str));
    return AOP_ERR_VALIDATION;
}

/* The day, since 1970-01-01, that d names in year y. */
static int64_t rule_day(const tz_date *d, int64_t y)
{
    int64_t jan1 = tz_days_from_civil(y, 1, 1);
    if (d->kind == TZ_DATE_JULIAN)
        return jan1 + d->day - 1 + (is_leap(y) && d->day >= 60);
    if (d->kind == TZ_DATE_DAY)
        return jan1 + d->day;
    int64_t first = tz_days_from_civil(y, d->month, 1);
    int wday_first = (int)((first % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
    int64_t day = first + (d->wday - wday_first + 7) % 7 + 7 * (d->week - 1);
    while (day >= first + tz_days_in_month(y, d->month))
        day -= 7;
    return day;
}

/* A change of offset: from instant at on, off. */
typedef struct {
    int64_t at;
    int32_t off;
} change;

/* The two changes of rule r in year y: DST's start, then its end. */
static void rule_changes(const tz_rule *r, int64_t y, change ch[2])
{
    ch[0] = (change){rule_day(&r->start, y) * DAY + r->start.time - r->std_off, r->dst_off};
    ch[1] = (change){rule_day(&r->end, y) * DAY + r->end.time - r->dst_off, r->std_off};
}

/* Changes can stray about a week from their year (a day near the year's
 * end, a time of 167 hours): the changes of the two years before t's, its
 * own and the next cover it. */
int32_t tz_rule_offset(const tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    t = clamp_time(t);
    int64_t y = year_of(t);
    bool found = false;
    change best = {0, r->std_off};
    for (int64_t yy = y - 2; yy <= y + 1; yy++) {
        change ch[2];
        rule_changes(r, yy, ch);
        /* The latest at or before t; on a tie the later-listed one (a year's
         * start at the same instant as the year before's end: DST all year). */
        for (int i = 0; i < 2; i++)
            if (ch[i].at <= t && (!found || ch[i].at >= best.at)) {
                best = ch[i];
                found = true;
            }
    }
    return best.off;
}

/* The first change of r after t, or INT64_MAX. */
static int64_t rule_next(const tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return INT64_MAX;
    int64_t y = year_of(t), next = INT64_MAX;
    for (int64_t yy = y - 1; yy <= y + 2; yy++) {
        change ch[2];
        rule_changes(r, yy, ch);
        for (int i = 0; i < 2; i++)
            if (ch[i].at > t && ch[i].at < next)
                next = ch[i].at;
    }
    return next;
}

/* ---- TZif ---- */

#define HEADER_LEN 44

typedef struct {
    char version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_header;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The header at p (len bytes left): 0, or -1 when p does not start one. */
static int read_header(const uint8_t *p, size_t len, tzif_header *h)
{
    if (len < HEADER_LEN || memcmp(p, "TZif", 4) != 0)
        return -1;
    h->version = (char)p[4];
    const uint8_t *c = p + 20;
    h->isutcnt = be32(c);
    h->isstdcnt = be32(c + 4);
    h->leapcnt = be32(c + 8);
    h->timecnt = be32(c + 12);
    h->typecnt = be32(c + 16);
    h->charcnt = be32(c + 20);
    return 0;
}

/* The size of the data block after h, time values being tsize bytes
 * (cannot overflow: six 32-bit counts times at most 12). */
static uint64_t block_len(const tzif_header *h, unsigned tsize)
{
    return (uint64_t)h->timecnt * (tsize + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static aop_err bad_file(char *err, size_t errlen, const char *why)
{
    err_set(err, errlen, "malformed TZif file: %s", why);
    return AOP_ERR_INTERNAL;
}

/* The v2+ counts' own rules (RFC 8536, 3.1). */
static const char *counts_problem(const tzif_header *h)
{
    if (h->typecnt == 0 || h->typecnt > 256)
        return "the number of time types is not 1-256";
    if (h->charcnt == 0)
        return "no designation characters";
    if (h->isutcnt != 0 && h->isutcnt != h->typecnt)
        return "the UT/local indicators do not match the time types";
    if (h->isstdcnt != 0 && h->isstdcnt != h->typecnt)
        return "the standard/wall indicators do not match the time types";
    if (h->leapcnt != 0)
        return "leap-second records are not supported";
    return NULL;
}

aop_err tz_parse(const uint8_t *data, size_t len, tz_zone **out, char *err, size_t errlen)
{
    tzif_header h;
    *out = NULL;
    if (read_header(data, len, &h) != 0) {
        err_set(err, errlen, "not a TZif file");
        return AOP_ERR_NOT_FOUND;
    }
    if (h.version < '2')
        return bad_file(err, errlen, "version 1 (2 or later needed)");
    /* Past the version 1 block to the second header. */
    uint64_t v1 = block_len(&h, 4);
    if (v1 > len - HEADER_LEN)
        return bad_file(err, errlen, "the version 1 data runs past the end");
    const uint8_t *p = data + HEADER_LEN + v1;
    size_t left = len - HEADER_LEN - (size_t)v1;
    if (read_header(p, left, &h) != 0 || h.version < '2')
        return bad_file(err, errlen, "no version 2 header after the version 1 data");
    const char *problem = counts_problem(&h);
    if (problem)
        return bad_file(err, errlen, problem);
    p += HEADER_LEN;
    left -= HEADER_LEN;
    uint64_t v2 = block_len(&h, 8);
    if (v2 > left)
        return bad_file(err, errlen, "the data runs past the end");
    const uint8_t *times = p, *idx = times + (size_t)h.timecnt * 8,
                  *types = idx + h.timecnt;
    const uint8_t *footer = p + v2;
    size_t footer_len = left - (size_t)v2;

    /* The footer: '\n', a TZ string (maybe empty), '\n', and nothing after. */
    const uint8_t *nl = footer_len > 1 && footer[0] == '\n'
                            ? memchr(footer + 1, '\n', footer_len - 1) : NULL;
    if (!nl || nl != footer + footer_len - 1)
        return bad_file(err, errlen, "no footer, or bytes after it");
    tz_rule rule;
    size_t rule_len = (size_t)(nl - footer - 1);
    char why[160];
    if (rule_len > 0 &&
        tz_rule_parse((const char *)footer + 1, rule_len, &rule, why, sizeof(why)) != AOP_OK)
        return bad_file(err, errlen, why);

    int32_t offs[256];
    for (uint32_t i = 0; i < h.typecnt; i++) {
        const uint8_t *t = types + i * 6;
        int32_t off = (int32_t)be32(t);
        if (off < OFF_MIN || off > OFF_MAX)
            return bad_file(err, errlen, "a UTC offset out of range");
        if (t[4] > 1 || t[5] >= h.charcnt)
            return bad_file(err, errlen, "a malformed time type");
        offs[i] = off;
    }
    /* The indicators are 0 or 1 (they matter only to a footer-less v1 reader). */
    const uint8_t *ind = types + (size_t)h.typecnt * 6 + h.charcnt;
    for (uint32_t i = 0; i < h.isstdcnt + h.isutcnt; i++)
        if (ind[i] > 1)
            return bad_file(err, errlen, "an indicator is not 0 or 1");

    tz_zone *z = xmalloc(sizeof(*z) + (size_t)h.timecnt * (sizeof(int64_t) + sizeof(int32_t)));
    *z = (tz_zone){.n = h.timecnt, .off0 = offs[0], .has_rule = rule_len > 0};
    z->times = (int64_t *)(z + 1);
    z->offs = (int32_t *)(z->times + h.timecnt);
    if (z->has_rule)
        z->rule = rule;
    for (uint32_t i = 0; i < h.timecnt; i++) {
        z->times[i] = be64(times + (size_t)i * 8);
        if (idx[i] >= h.typecnt || (i > 0 && z->times[i] <= z->times[i - 1])) {
            free(z);
            return bad_file(err, errlen, idx[i] >= h.typecnt ? "a transition's type is unknown"
                                                             : "transitions out of order");
        }
        z->offs[i] = offs[idx[i]];
    }
    *out = z;
    return AOP_OK;
}

void tz_free(tz_zone *z)
{
    free(z);
}

/* ---- offsets and instants ---- */

/* The number of transitions of z at or before t. */
static size_t transitions_until(const tz_zone *z, int64_t t)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->times[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int32_t tz_offset(const tz_zone *z, int64_t t)
{
    if (z->n == 0 || t >= z->times[z->n - 1]) {
        if (z->has_rule)
            return tz_rule_offset(&z->rule, t);
        return z->n ? z->offs[z->n - 1] : z->off0;
    }
    size_t i = transitions_until(z, t);
    return i ? z->offs[i - 1] : z->off0;
}

/* The first transition of z after t (it may leave the offset as it was),
 * or INT64_MAX. */
static int64_t next_change(const tz_zone *z, int64_t t)
{
    if (z->n == 0 || t >= z->times[z->n - 1])
        return z->has_rule ? rule_next(&z->rule, t) : INT64_MAX;
    return z->times[transitions_until(z, t)];
}

/*
 * The clock reads t + off(t): it runs on between changes and jumps at
 * them. Offsets are within about a day, so two days before local the clock
 * reads less than local; from there each interval between changes either
 * starts at local or later (the answer is its start: a jump over local, or
 * onto it), contains it (the answer is local - offset), or ends before it.
 */
int64_t tz_instant(const tz_zone *z, int64_t local)
{
    local = clamp_time(local);
    int64_t t = local - 2 * DAY;
    for (;;) {
        int32_t off = tz_offset(z, t);
        if (t + off >= local)
            return t;
        int64_t next = next_change(z, t);
        if (local - off < next)
            return local - off;
        t = next;
    }
}

/* ---- loading ---- */

/* name as tz_load takes it: components of [A-Za-z0-9_+-] between single
 * '/' (so no '.', '..', leading, trailing or doubled '/'). */
static bool name_ok(const char *name)
{
    size_t len = strnlen(name, TZ_NAME_MAX + 1);
    if (len == 0 || len > TZ_NAME_MAX)
        return false;
    size_t comp = 0;
    for (size_t i = 0; i <= len; i++) {
        char ch = name[i];
        if (ch == '/' || ch == '\0') {
            if (comp == 0)
                return false;
            comp = 0;
        } else if (is_alpha(ch) || is_digit(ch) || ch == '_' || ch == '+' || ch == '-') {
            comp++;
        } else {
            return false;
        }
    }
    return true;
}

/* The file of zone name into path (PATH_MAX bytes): TZDIR's or the default. */
static aop_err zone_path(const char *name, char *path, char *err, size_t errlen)
{
    if (!name_ok(name)) {
        err_set(err, errlen, "\"%.*s\" is not a zone name", TZ_NAME_MAX, name);
        return AOP_ERR_VALIDATION;
    }
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = TZ_DIR_DEFAULT;
    int n = snprintf(path, PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX) {
        err_set(err, errlen, "time zone %s: its path is too long", name);
        return AOP_ERR_INTERNAL;
    }
    return AOP_OK;
}

/* The bytes of the regular file at path (at most TZ_FILE_MAX) into a new
 * buffer *data of *len bytes. */
static aop_err read_zone_file(const char *path, const char *name, uint8_t **data, size_t *len,
                              char *err, size_t errlen)
{
    /* O_NONBLOCK: a FIFO in the directory must not hang the open. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        err_set(err, errlen, "time zone %s: %s", name, strerror(e));
        return e == ENOENT || e == ENOTDIR ? AOP_ERR_NOT_FOUND : AOP_ERR_INTERNAL;
    }
    struct stat st;
    aop_err rc = AOP_OK;
    if (fstat(fd, &st) != 0) {
        err_set(err, errlen, "time zone %s: %s", name, strerror(errno));
        rc = AOP_ERR_INTERNAL;
    } else if (!S_ISREG(st.st_mode)) {
        err_set(err, errlen, "time zone %s: not a file", name);
        rc = AOP_ERR_NOT_FOUND;
    } else if (st.st_size > TZ_FILE_MAX) {
        err_set(err, errlen, "time zone %s: larger than %d bytes", name, TZ_FILE_MAX);
        rc = AOP_ERR_INTERNAL;
    }
    if (rc != AOP_OK) {
        close(fd);
        return rc;
    }
    /* One byte more than the size, to notice a file that grew. */
    size_t cap = (size_t)st.st_size + 1, got = 0;
    uint8_t *buf = xmalloc(cap);
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err_set(err, errlen, "time zone %s: %s", name, strerror(errno));
            rc = AOP_ERR_INTERNAL;
            break;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (rc == AOP_OK && got == cap) {
        err_set(err, errlen, "time zone %s: changed while read", name);
        rc = AOP_ERR_INTERNAL;
    }
    if (rc != AOP_OK) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = got;
    return AOP_OK;
}

static aop_err load_path(const char *path, const char *name, tz_zone **out, char *err,
                         size_t errlen)
{
    uint8_t *data;
    size_t len;
    *out = NULL;
    aop_err rc = read_zone_file(path, name, &data, &len, err, errlen);
    if (rc != AOP_OK)
        return rc;
    char why[200];
    rc = tz_parse(data, len, out, why, sizeof(why));
    free(data);
    if (rc != AOP_OK)
        err_set(err, errlen, "time zone %s: %s", name, why);
    return rc;
}

aop_err tz_load(const char *name, tz_zone **out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    *out = NULL;
    aop_err rc = zone_path(name, path, err, errlen);
    return rc != AOP_OK ? rc : load_path(path, name, out, err, errlen);
}

/* ---- the cache ---- */

/* Zones by the path they were read from (TZDIR included), kept for the
 * process's life; a linear search is fine at this size and rate (a zone is
 * acquired when a schedule's zone is opened, not per due time). */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *path;
    tz_zone *zone;
} cache[TZ_CACHE_MAX];
static size_t cache_len;

/* The cached zone of path, or NULL; the caller holds cache_lock. */
static tz_zone *cache_find(const char *path)
{
    for (size_t i = 0; i < cache_len; i++)
        if (strcmp(cache[i].path, path) == 0)
            return cache[i].zone;
    return NULL;
}

aop_err tz_acquire(const char *name, const tz_zone **out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    *out = NULL;
    aop_err rc = zone_path(name, path, err, errlen);
    if (rc != AOP_OK)
        return rc;
    pthread_mutex_lock(&cache_lock);
    tz_zone *z = cache_find(path);
    pthread_mutex_unlock(&cache_lock);
    if (z) {
        *out = z;
        return AOP_OK;
    }
    /* Read without the lock; a thread that loaded the same zone meanwhile wins. */
    rc = load_path(path, name, &z, err, errlen);
    if (rc != AOP_OK)
        return rc;
    pthread_mutex_lock(&cache_lock);
    tz_zone *had = cache_find(path);
    if (had) {
        tz_free(z);
        z = had;
    } else if (cache_len < TZ_CACHE_MAX) {
        z->cached = true;
        cache[cache_len].path = xstrdup(path);
        cache[cache_len++].zone = z;
    }
    pthread_mutex_unlock(&cache_lock);
    *out = z;
    return AOP_OK;
}

void tz_release(const tz_zone *z)
{
    if (z && !z->cached)
        tz_free((tz_zone *)z);
}
