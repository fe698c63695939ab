#include "core/buf.h"
#include "core/mem.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

void buf_init(buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static int reserve(buf *b, size_t extra)
{
    if (extra > (size_t)-1 - b->len - 1)
        return -1;
    size_t need = b->len + extra;
    if (b->max && need > b->max)
        return -1;
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need + 1)
        cap *= 2;
    if (b->max && cap > b->max + 1)
        cap = b->max + 1;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int buf_append(buf *b, const void *p, size_t n)
{
    if (reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_puts(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n) < 0) {
        va_end(ap2);
        return -1;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

int buf_json_escape(buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        char u[7];
        switch (c) {
        case '"': rep = "\\\""; break;
        case '\\': rep = "\\\\"; break;
        case '\n': rep = "\\n"; break;
        case '\r': rep = "\\r"; break;
        case '\t': rep = "\\t"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
                u[4] = hex[c >> 4]; u[5] = hex[c & 15]; u[6] = '\0';
                rep = u;
            }
        }
        if (rep) {
            if (buf_append(b, s + start, i - start) < 0 || buf_puts(b, rep) < 0)
                return -1;
            start = i + 1;
        }
    }
    return buf_append(b, s + start, n - start);
}

char *buf_take(buf *b, size_t *len)
{
    char *d = b->data ? b->data : xstrdup("");
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void buf_reset(buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_free(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

size_t str_copy(char *dst, size_t dstsize, const char *src)
{
    size_t n = strlen(src);
    if (dstsize) {
        size_t c = n < dstsize - 1 ? n : dstsize - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

int str_to_ll(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int str_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

int str_is_email(const char *e)
{
    size_t n = strlen(e);
    const char *at = strchr(e, '@');
    if (n == 0 || n > 254 || !at || at == e || strchr(at + 1, '@'))
        return 0;
    const char *dot = strrchr(at + 1, '.');
    if (!dot || dot == at + 1 || dot[1] == '\0')
        return 0;
    for (const char *p = e; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

char *str_lower(char *s)
{
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return s;
}

size_t str_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

static locale_t utf8_loc;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void make_utf8_locale(void)
{
    utf8_loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Decodes one UTF-8 character at s (n bytes left) into *cp; its length, or 0
 * when the bytes are not a valid, shortest-form character. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = s[0] >= 0xf0 && s[0] < 0xf5 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || len > n || s[0] >= 0xf5)
        return 0;
    unsigned v = s[0] & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10ffff)) ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

static size_t utf8_encode(unsigned v, char *o)
{
    if (v < 0x80) {
        o[0] = (char)v;
        return 1;
    }
    if (v < 0x800) {
        o[0] = (char)(0xc0 | (v >> 6));
        o[1] = (char)(0x80 | (v & 0x3f));
        return 2;
    }
    if (v < 0x10000) {
        o[0] = (char)(0xe0 | (v >> 12));
        o[1] = (char)(0x80 | ((v >> 6) & 0x3f));
        o[2] = (char)(0x80 | (v & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (v >> 18));
    o[1] = (char)(0x80 | ((v >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((v >> 6) & 0x3f));
    o[3] = (char)(0x80 | (v & 0x3f));
    return 4;
}

char *str_lower_utf8(const char *s, arena *a)
{
    pthread_once(&utf8_once, make_utf8_locale);
    size_t n = strlen(s);
    char *out = arena_alloc(a, 4 * n + 1), *o = out;
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0) {
        unsigned cp;
        size_t len = utf8_decode(p, n, &cp);
        if (len == 0) { /* not UTF-8: keep the byte */
            *o++ = (char)*p++;
            n--;
            continue;
        }
        if (cp < 0x80)
            cp = (unsigned)tolower((int)cp);
        else if (utf8_loc)
            cp = (unsigned)towlower_l((wint_t)cp, utf8_loc);
        o += utf8_encode(cp, o);
        p += len;
        n -= len;
    }
    *o = '\0';
    return out;
}

size_t str_utf8_prefix(const char *s, size_t max)
{
    size_t i = 0, chars = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && chars++ == max)
            break;
    }
    return i;
}
