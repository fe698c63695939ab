#include "core/redact.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

/* ---- the set ---- */

/* How JSON encoders may write a string: which characters besides quotes,
 * backslashes and control characters they escape. */
enum { ESC_SLASH = 1, ESC_ASCII = 2, ESC_HTML = 4 };
static const int spellings[] = {0, ESC_SLASH, ESC_ASCII, ESC_SLASH | ESC_ASCII, ESC_HTML};
_Static_assert(1 + sizeof(spellings) / sizeof(spellings[0]) <= REDACT_FORMS,
               "the raw form and every spelling fit REDACT_FORMS");

/* Where a spelling is written: a buffer of at least 6 bytes per byte of
 * the secret (the widest escape, \u001f, is 6 for 1), allocated once so
 * that no copy of a secret is left behind by a reallocation. */
typedef struct {
    char *p;
    size_t n;
} spelled;

static void put(spelled *o, const void *p, size_t n)
{
    memcpy(o->p + o->n, p, n);
    o->n += n;
}

/* \uXXXX, lowercase hex as the common encoders write it; cp <= 0xffff. */
static void put_u(spelled *o, unsigned cp)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', 'u', hex[(cp >> 12) & 15], hex[(cp >> 8) & 15], hex[(cp >> 4) & 15],
                   hex[cp & 15]};
    put(o, esc, sizeof(esc));
}

/* Puts the code point starting at p (valid UTF-8, n bytes) as \uXXXX, a
 * surrogate pair above U+FFFF. */
static void put_escaped_cp(spelled *o, const unsigned char *p, size_t n)
{
    unsigned cp = n == 2 ? p[0] & 0x1f : n == 3 ? p[0] & 0x0f : p[0] & 0x07;
    for (size_t k = 1; k < n; k++)
        cp = (cp << 6) | (p[k] & 0x3f);
    if (cp > 0xffff) {
        cp -= 0x10000;
        put_u(o, 0xd800 + (cp >> 10));
        put_u(o, 0xdc00 + (cp & 0x3ff));
    } else {
        put_u(o, cp);
    }
}

/* s[0..len) (valid UTF-8) as it stands inside a JSON string written with
 * flags: a new string of *outlen bytes. */
static char *json_spelling(const char *s, size_t len, int flags, size_t *outlen)
{
    static const char *const named[0x20] = {
        ['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t"};
    const unsigned char *p = (const unsigned char *)s;
    spelled o = {xmalloc(len * 6 + 1), 0};
    for (size_t i = 0; i < len;) {
        unsigned char ch = p[i];
        size_t n = ch < 0x80 ? 1 : (ch >> 5) == 6 ? 2 : (ch >> 4) == 14 ? 3 : 4;
        if (ch == '"' || ch == '\\') {
            put(&o, "\\", 1);
            put(&o, &ch, 1);
        } else if (ch < 0x20) {
            if (named[ch])
                put(&o, named[ch], 2);
            else
                put_u(&o, ch);
        } else if ((flags & ESC_SLASH) && ch == '/') {
            put(&o, "\\/", 2);
        } else if ((flags & ESC_HTML) && (ch == '<' || ch == '>' || ch == '&')) {
            put_u(&o, ch);
        } else if ((flags & ESC_ASCII) && ch >= 0x7f) {
            if (ch == 0x7f)
                put_u(&o, ch);
            else
                put_escaped_cp(&o, p + i, n);
        } else {
            put(&o, p + i, n);
        }
        i += n;
    }
    o.p[o.n] = '\0';
    *outlen = o.n;
    return o.p;
}

/* Adds t[0..len) (taken) as a form unless the set already has it. */
static void add_form(redact_set *s, char *t, size_t len, bool alone)
{
    for (int i = 0; i < s->n; i++) {
        if (s->form[i].len == len && memcmp(s->form[i].p, t, len) == 0) {
            OPENSSL_cleanse(t, len);
            free(t);
            return;
        }
    }
    s->form[s->n++] = (redact_form){t, len, alone};
}

int redact_add(redact_set *s, const char *secret, size_t len)
{
    if (len == 0)
        return 0;
    if (s->nsecrets >= REDACT_MAX)
        return -1;
    s->nsecrets++;
    bool alone = len < REDACT_SHORT;
    add_form(s, xstrndup(secret, len), len, alone);
    if (!json_utf8_valid(secret, len))
        return 0; /* no JSON encoder writes it */
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        size_t n;
        char *t = json_spelling(secret, len, spellings[i], &n);
        add_form(s, t, n, alone);
    }
    return 0;
}

void redact_clear(redact_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        OPENSSL_cleanse(s->form[i].p, s->form[i].len);
        free(s->form[i].p);
    }
    s->n = 0;
    s->nsecrets = 0;
}

bool redact_empty(const redact_set *s)
{
    return !s || s->n == 0;
}

/* ---- text ---- */

static bool word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* Where form f first occurs in t[0..len) at or after from; len when nowhere. */
static size_t find(const redact_form *f, const char *t, size_t len, size_t from)
{
    while (from < len && f->len <= len - from) {
        const char *m = memmem(t + from, len - from, f->p, f->len);
        if (!m)
            break;
        size_t at = (size_t)(m - t), end = at + f->len;
        if (!f->alone || ((at == 0 || !word_byte((unsigned char)t[at - 1])) &&
                          (end == len || !word_byte((unsigned char)t[end]))))
            return at;
        from = at + 1;
    }
    return len;
}

/* The form whose next occurrence comes first (the longest of those that
 * start there), or -1. */
static int first_match(const redact_set *s, const size_t *next, size_t len)
{
    int best = -1;
    for (int i = 0; i < s->n; i++) {
        if (next[i] >= len)
            continue;
        if (best < 0 || next[i] < next[best] ||
            (next[i] == next[best] && s->form[i].len > s->form[best].len))
            best = i;
    }
    return best;
}

char *redact_text_new(const redact_set *s, const char *text, size_t len, size_t *outlen)
{
    if (redact_empty(s) || !text || len == 0)
        return NULL;
    size_t next[REDACT_MAX * REDACT_FORMS];
    for (int i = 0; i < s->n; i++)
        next[i] = find(&s->form[i], text, len, 0);
    buf out;
    bool any = false;
    size_t pos = 0;
    int f;
    while ((f = first_match(s, next, len)) >= 0) {
        if (!any)
            buf_init(&out, 0);
        any = true;
        buf_append(&out, text + pos, next[f] - pos);
        buf_puts(&out, REDACT_MARK);
        pos = next[f] + s->form[f].len;
        for (int i = 0; i < s->n; i++)
            if (next[i] < pos)
                next[i] = find(&s->form[i], text, len, pos);
    }
    if (!any)
        return NULL;
    buf_append(&out, text + pos, len - pos);
    return buf_take(&out, outlen);
}

bool redact_cstr(const redact_set *s, char *str, size_t cap)
{
    if (redact_empty(s) || !str || cap == 0)
        return false;
    size_t n;
    char *t = redact_text_new(s, str, strlen(str), &n);
    if (!t)
        return false;
    n = str_utf8_cut(t, n, cap - 1);
    memcpy(str, t, n);
    str[n] = '\0';
    free(t);
    return true;
}

/* ---- JSON ---- */

/* t[0..len) (taken) as a JSON string. */
static json_t *string_take(char *t, size_t len)
{
    json_t *v = json_string_lossy(t, len);
    free(t);
    return v ? v : json_string("");
}

static void redact_items(const redact_set *s, json_t *arr)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *item = json_array_get(arr, i);
        json_t *r = redact_json(s, json_incref(item));
        if (r != item)
            json_array_set_new(arr, i, r);
        else
            json_decref(r);
    }
}

/* A copy of obj with its keys redacted (values shared); a later key that
 * redacts to the same text as an earlier one replaces it. */
static json_t *rekeyed(const redact_set *s, json_t *obj)
{
    json_t *out = json_object();
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *k = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it), n;
        json_t *v = json_incref(json_object_iter_value(it));
        char *t = redact_text_new(s, k, klen, &n);
        if (!t) {
            json_object_setn_new_nocheck(out, k, klen, v);
            continue;
        }
        buf key;
        buf_init(&key, 0);
        json_utf8_lossy(&key, t, n);
        json_object_setn_new_nocheck(out, key.data ? key.data : "", key.len, v);
        buf_free(&key);
        free(t);
    }
    json_decref(obj);
    return out;
}

static json_t *redact_object(const redact_set *s, json_t *obj)
{
    bool keys = false;
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        json_t *v = json_object_iter_value(it);
        json_t *r = redact_json(s, json_incref(v));
        if (r != v)
            json_object_iter_set_new(obj, it, r);
        else
            json_decref(r);
        if (!keys) {
            size_t n;
            char *t = redact_text_new(s, json_object_iter_key(it), json_object_iter_key_len(it), &n);
            keys = t != NULL;
            free(t);
        }
    }
    return keys ? rekeyed(s, obj) : obj;
}

json_t *redact_json(const redact_set *s, json_t *v)
{
    if (redact_empty(s) || !v)
        return v;
    if (json_is_array(v)) {
        redact_items(s, v);
    } else if (json_is_object(v)) {
        v = redact_object(s, v);
    } else if (json_is_string(v)) {
        size_t n;
        char *t = redact_text_new(s, json_string_value(v), json_string_length(v), &n);
        if (t) {
            json_decref(v);
            v = string_take(t, n);
        }
    }
    return v;
}
