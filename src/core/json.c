#include "core/json.h"
#include "core/str.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int json_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned min, cp;
        if ((c & 0xe0) == 0xc0) {
            len = 2; min = 0x80; cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3; min = 0x800; cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4; min = 0x10000; cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

int json_utf8_lossy(buf *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)p[i];
        size_t k = ch < 0x80 ? 1 : (ch >> 5) == 6 ? 2 : (ch >> 4) == 14 ? 3 : (ch >> 3) == 30 ? 4 : 0;
        int rc;
        if (k && i + k <= n && json_utf8_valid(p + i, k)) {
            rc = buf_append(b, p + i, k);
            i += k;
        } else {
            rc = buf_append(b, "\xEF\xBF\xBD", 3);
            i++;
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

json_t *json_string_lossy(const char *p, size_t n)
{
    if (json_utf8_valid(p, n))
        return json_stringn_nocheck(p, n);
    buf b;
    buf_init(&b, 0);
    json_utf8_lossy(&b, p, n);
    json_t *s = json_stringn_nocheck(b.data ? b.data : "", b.len);
    buf_free(&b);
    return s;
}

int json_depth(const char *p, size_t n, int limit)
{
    int depth = 0, deepest = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > deepest) {
                deepest = depth;
                if (deepest > limit)
                    return limit + 1;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return deepest;
}

static int put_key(buf *b, const char *key, int first)
{
    int rc = buf_puts(b, first ? "\"" : ",\"");
    rc |= buf_puts(b, key);
    return rc | buf_puts(b, "\":");
}

int json_put_str(buf *b, const char *key, const char *v, int first)
{
    int rc = put_key(b, key, first);
    if (!v)
        return rc | buf_puts(b, "null");
    rc |= buf_puts(b, "\"");
    rc |= buf_json_escape(b, v, strlen(v));
    return rc | buf_puts(b, "\"");
}

int json_put_int(buf *b, const char *key, long long v, int first)
{
    char t[STR_LL_MAX];
    size_t n = str_from_ll(t, v);
    return put_key(b, key, first) | buf_append(b, t, n);
}

/* jansson's way: 17 significant digits, and ".0" when that reads as an
 * integer. */
int json_put_real(buf *b, const char *key, double v, int first)
{
    char t[40];
    int n = snprintf(t, sizeof(t), "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof(t) - 2)
        return -1;
    for (int i = 0; i < n; i++)
        if (t[i] == ',')
            t[i] = '.'; /* a locale's decimal comma */
    if (strspn(t, "0123456789-") == (size_t)n) {
        t[n++] = '.';
        t[n++] = '0';
    }
    return put_key(b, key, first) | buf_append(b, t, (size_t)n);
}

int json_put_raw(buf *b, const char *key, const char *text, int first)
{
    return put_key(b, key, first) | buf_puts(b, text && text[0] ? text : "null");
}

/* The index of the quote closing the string whose opening quote is p[i], or n. */
static size_t string_end(const char *p, size_t n, size_t i)
{
    for (i++; i < n && p[i] != '"'; i++)
        if (p[i] == '\\')
            i++;
    return i < n ? i : n;
}

static bool json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The end of the value starting at p[i]: the index of the ',', '}' or ']'
 * that follows it at its level, or n. */
static size_t value_end(const char *p, size_t n, size_t i)
{
    int depth = 0;
    for (; i < n; i++) {
        char c = p[i];
        if (c == '"')
            i = string_end(p, n, i);
        else if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && depth-- == 0)
            break;
        else if (c == ',' && depth == 0)
            break;
    }
    return i < n ? i : n;
}

int json_member_text(const char *p, size_t n, const char *key, const char **val, size_t *vlen)
{
    size_t i = 0, klen = strlen(key);
    while (i < n && json_space(p[i]))
        i++;
    if (i >= n || p[i] != '{')
        return -1;
    for (i++; i < n;) {
        while (i < n && (json_space(p[i]) || p[i] == ','))
            i++;
        if (i >= n || p[i] != '"')
            return -1; /* the end of the object */
        size_t k = i + 1, kend = string_end(p, n, i);
        if (kend >= n)
            return -1;
        i = kend + 1;
        while (i < n && (json_space(p[i]) || p[i] == ':'))
            i++;
        size_t end = value_end(p, n, i);
        if (kend - k == klen && memcmp(p + k, key, klen) == 0) {
            size_t e = end;
            while (e > i && json_space(p[e - 1]))
                e--;
            if (e == i)
                return -1;
            *val = p + i;
            *vlen = e - i;
            return 0;
        }
        if (end >= n || p[end] != ',')
            return -1;
        i = end + 1;
    }
    return -1;
}

aop_err json_parse_body(const char *p, size_t n, json_t **out, char *why, size_t whylen)
{
    *out = NULL;
    if (!json_utf8_valid(p, n)) {
        snprintf(why, whylen, "Request body is not valid UTF-8");
        return AOP_ERR_INVALID_JSON;
    }
    if (json_depth(p, n, JSON_MAX_DEPTH) > JSON_MAX_DEPTH) {
        snprintf(why, whylen, "Request body is nested deeper than %d levels", JSON_MAX_DEPTH);
        return AOP_ERR_INVALID_JSON;
    }
    json_error_t e;
    json_t *v = json_loadb(p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (!v) {
        snprintf(why, whylen, "Request body is not valid JSON (line %d, column %d): %s",
                 e.line, e.column, e.text);
        return AOP_ERR_INVALID_JSON;
    }
    *out = v;
    return AOP_OK;
}

json_t *json_list_page(json_t *data, long long page, long long limit, long long total)
{
    long long pages = (total + limit - 1) / limit;
    return json_pack("{s:o, s:{s:I, s:I, s:I, s:I}}", "data", data, "pagination", "page",
                     (json_int_t)page, "limit", (json_int_t)limit, "total", (json_int_t)total,
                     "totalPages", (json_int_t)pages);
}

/* ---- encoded sizes ---- */

size_t json_string_size(const char *s, size_t len)
{
    size_t n = len + 2;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
            c == '\t')
            n += 1;
        else if (c < 0x20)
            n += 5;
    }
    return n;
}

#define ENCODING (JSON_COMPACT | JSON_ENCODE_ANY)

/* n + k, or max + 1 when that passes max (n is at most max + 1). */
static size_t add(size_t n, size_t k, size_t max)
{
    return n > max || k > max - n ? max + 1 : n + k;
}

/* n plus the size of leaf v (no array or object), or max + 1 past max. */
static size_t add_leaf(const json_t *v, size_t n, size_t max)
{
    char text[64];
    switch (json_typeof(v)) {
    case JSON_STRING: /* its length first: a long string is not read when it cannot fit */
        if (json_string_length(v) > max - n)
            return max + 1;
        return add(n, json_string_size(json_string_value(v), json_string_length(v)), max);
    case JSON_INTEGER:
        return add(n, (size_t)snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT,
                                       json_integer_value(v)), max);
    case JSON_REAL: { /* jansson's own formatting, which has its rules */
        size_t len = json_dumpb(v, text, sizeof(text), ENCODING);
        return len ? add(n, len, max) : max + 1;
    }
    case JSON_FALSE:
        return add(n, 5, max);
    default: /* true, null */
        return add(n, 4, max);
    }
}

/* n plus the size of v's text, or max + 1 as soon as that passes max: every
 * value visited adds at least a byte, so the walk visits at most max + 1. No
 * loop check, unlike jansson's encoder: the engine's values have no cycles. */
static size_t add_value(const json_t *v, size_t n, size_t max)
{
    if (n > max)
        return n;
    if (json_is_object(v)) {
        json_t *o = (json_t *)v;
        bool first = true;
        n = add(n, 2, max); /* {} */
        for (void *it = json_object_iter(o); it && n <= max; it = json_object_iter_next(o, it)) {
            size_t key = json_string_size(json_object_iter_key(it), json_object_iter_key_len(it));
            n = add(n, !first + key + 1, max); /* the comma, "key": */
            n = add_value(json_object_iter_value(it), n, max);
            first = false;
        }
        return n;
    }
    if (json_is_array(v)) {
        size_t len = json_array_size(v);
        n = add(n, 2 + (len ? len - 1 : 0), max); /* [] and the commas */
        for (size_t i = 0; i < len && n <= max; i++)
            n = add_value(json_array_get(v, i), n, max);
        return n;
    }
    return v ? add_leaf(v, n, max) : max + 1;
}

size_t json_size_within(const json_t *v, size_t max)
{
    return add_value(v, 0, max);
}

static int to_buf(const char *p, size_t n, void *data)
{
    return buf_append(data, p, n);
}

int json_dump_buf(const json_t *v, buf *b)
{
    return v && json_dump_callback(v, to_buf, b, ENCODING) == 0 ? 0 : -1;
}

char *json_dumps_within(const json_t *v, size_t max, size_t *len)
{
    buf b;
    *len = 0;
    if (max == 0) /* a buf without a maximum would take anything */
        return NULL;
    buf_init(&b, max);
    if (json_dump_buf(v, &b) != 0) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, len);
}

aop_err json_dump_arena(json_t *v, char **json, size_t *len, arena *a)
{
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!s)
        return AOP_ERR_INTERNAL;
    *len = strlen(s);
    *json = arena_strndup(a, s, *len);
    free(s);
    return AOP_OK;
}
