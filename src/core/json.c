#include "core/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

typedef struct {
    size_t n, max;
} counter;

/* Counts what the encoder writes; refuses (and keeps refusing: jansson
 * goes on after a refused key) once past max. */
static int count(const char *p, size_t n, void *data)
{
    counter *c = data;
    (void)p;
    if (c->n > c->max || n > c->max - c->n) {
        c->n = c->max + 1;
        return -1;
    }
    c->n += n;
    return 0;
}

size_t json_size_within(const json_t *v, size_t max)
{
    char digits[32];
    size_t n = max + 1;
    if (!v)
        return n;
    switch (json_typeof(v)) { /* the common leaves, without the encoder's setup */
    case JSON_STRING:
        n = json_string_size(json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        n = (size_t)snprintf(digits, sizeof(digits), "%" JSON_INTEGER_FORMAT,
                             json_integer_value(v));
        break;
    case JSON_TRUE:
    case JSON_NULL:
        n = 4;
        break;
    case JSON_FALSE:
        n = 5;
        break;
    default: {
        counter c = {0, max};
        if (json_dump_callback(v, count, &c, ENCODING) == 0)
            n = c.n;
    }
    }
    return n <= max ? n : max + 1;
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
