#include "engine/template.h"
#include "core/err.h"

#include <stdint.h>
#include <string.h>

static int is_seg_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static int span_is(template_span sp, const char *word)
{
    size_t n = strlen(word);
    return sp.len == n && memcmp(sp.p, word, n) == 0;
}

/* Offset of the first "xx" (two equal bytes ch) in s[from..len), or len. */
static size_t find_pair(const char *s, size_t len, size_t from, char ch)
{
    const char pair[2] = {ch, ch};
    if (from >= len)
        return len;
    const char *hit = memmem(s + from, len - from, pair, 2);
    return hit ? (size_t)(hit - s) : len;
}

/* Rejects any byte of the path that is neither a segment character nor '.'. */
static int check_chars(const char *p, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (is_seg_char(ch) || ch == '.')
            continue;
        if (ch >= 0x80)
            return err_set(err, errlen, "non-ASCII character in placeholder path");
        if (ch >= 0x20 && ch < 0x7f)
            return err_set(err, errlen, "invalid character \"%c\" in placeholder path", ch);
        return err_set(err, errlen, "invalid character 0x%02X in placeholder path", ch);
    }
    return 0;
}

/* Splits the path p[0..n) (only segment characters and dots) into ref->seg. */
static int split_segments(const char *p, size_t n, template_ref *ref, char *err, size_t errlen)
{
    size_t begin = 0;
    ref->nseg = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '.')
            continue;
        if (i == begin)
            return err_set(err, errlen, "empty segment in placeholder path \"%.*s\"", (int)n,
                           p);
        if (ref->nseg == TEMPLATE_MAX_SEGMENTS)
            return err_set(err, errlen, "placeholder path has more than %d segments",
                           TEMPLATE_MAX_SEGMENTS);
        ref->seg[ref->nseg].p = p + begin;
        ref->seg[ref->nseg].len = i - begin;
        ref->nseg++;
        begin = i + 1;
    }
    return 0;
}

/* Checks the root of the split path and fills root, node and rest. */
static int check_root(template_ref *ref, char *err, size_t errlen)
{
    const template_span *seg = ref->seg;
    ref->node.p = NULL;
    ref->node.len = 0;
    if (span_is(seg[0], "input")) {
        ref->root = TEMPLATE_INPUT;
        ref->rest = 1;
        return 0;
    }
    if (span_is(seg[0], "args")) {
        ref->root = TEMPLATE_ARGS;
        ref->rest = 1;
        return 0;
    }
    if (!span_is(seg[0], "nodes"))
        return err_set(err, errlen, "unknown template root \"%.*s\": use input or nodes",
                       (int)seg[0].len, seg[0].p);
    if (ref->nseg < 2)
        return err_set(err, errlen, "\"nodes\" must be followed by a node id and .output");
    if (ref->nseg < 3 || !span_is(seg[2], "output"))
        return err_set(err, errlen, "\"nodes.%.*s\" must be followed by .output",
                       (int)seg[1].len, seg[1].p);
    ref->root = TEMPLATE_NODES;
    ref->node = seg[1];
    ref->rest = 3;
    return 0;
}

/* Parses the inside of a placeholder, p[0..n) between "{{" and "}}". */
static int parse_inside(const char *p, size_t n, template_ref *ref, char *err, size_t errlen)
{
    while (n && is_blank(p[0])) {
        p++;
        n--;
    }
    while (n && is_blank(p[n - 1]))
        n--;
    if (n == 0)
        return err_set(err, errlen, "empty placeholder");
    if (n > TEMPLATE_MAX_PATH)
        return err_set(err, errlen, "placeholder path is longer than %d bytes",
                       TEMPLATE_MAX_PATH);
    if (check_chars(p, n, err, errlen) < 0 || split_segments(p, n, ref, err, errlen) < 0)
        return -1;
    return check_root(ref, err, errlen);
}

int template_next(const char *s, size_t len, size_t *pos, template_ref *ref, char *err,
                  size_t errlen)
{
    size_t open = find_pair(s, len, *pos, '{');
    if (open == len) {
        *pos = len;
        return 0;
    }
    size_t close = find_pair(s, len, open + 2, '}');
    ref->start = open;
    if (close == len) {
        ref->end = len;
        return err_set(err, errlen, "unclosed \"{{\"");
    }
    ref->end = close + 2;
    if (parse_inside(s + open + 2, close - open - 2, ref, err, errlen) < 0)
        return -1;
    *pos = ref->end;
    return 1;
}

int template_validate(const char *s, size_t len, char *err, size_t errlen)
{
    size_t pos = 0;
    template_ref ref;
    int r;
    while ((r = template_next(s, len, &pos, &ref, err, errlen)) == 1)
        ;
    return r;
}

int template_is_whole(const char *s, size_t len, template_ref *ref)
{
    template_ref local;
    size_t pos = 0;
    if (!ref)
        ref = &local;
    if (len < 4 || s[0] != '{' || s[1] != '{')
        return 0;
    return template_next(s, len, &pos, ref, NULL, 0) == 1 && ref->end == len;
}

int template_seg_index(template_span seg, size_t *index)
{
    size_t v = 0;
    if (seg.len == 0)
        return 0;
    for (size_t i = 0; i < seg.len; i++) {
        unsigned d = (unsigned char)seg.p[i] - (unsigned)'0';
        if (d > 9 || v > (SIZE_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *index = v;
    return 1;
}
