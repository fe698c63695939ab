#include "engine/render.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"

/* What rendering can run into. */
enum { RENDER_OK, RENDER_TOO_LONG, RENDER_OVER, RENDER_NOMEM, RENDER_BAD_TEMPLATE };

/* The message of a failed render (rc; why: the scanner's words) into err;
 * RENDER_OVER marks the budget. */
static void fail(int rc, render_budget *b, const char *why, char *err, size_t errlen)
{
    switch (rc) {
    case RENDER_BAD_TEMPLATE:
        err_set(err, errlen, "template: %s", why);
        break;
    case RENDER_TOO_LONG:
        err_set(err, errlen, "rendered string is longer than %d bytes", RENDER_MAX_BYTES);
        break;
    case RENDER_OVER:
        b->over = true;
        err_set(err, errlen, "rendered value is larger than its budget of %zu bytes", b->max);
        break;
    default:
        err_set(err, errlen, "out of memory");
    }
}

/* Takes n bytes of b: RENDER_OK, or RENDER_OVER when they are not left. */
static int take(render_budget *b, size_t n)
{
    if (n > b->max - b->used)
        return RENDER_OVER;
    b->used += n;
    return RENDER_OK;
}

/* One step down from v: an index on an array, a key on an object. */
static const json_t *step(const json_t *v, template_span seg)
{
    size_t index;
    if (json_is_array(v))
        return template_seg_index(seg, &index) ? json_array_get(v, index) : NULL;
    if (json_is_object(v))
        return json_object_getn(v, seg.p, seg.len);
    return NULL;
}

const json_t *render_lookup(const template_ref *ref, const render_scope *sc)
{
    const json_t *v = NULL;
    if (!ref || !sc)
        return NULL;
    if (ref->root == TEMPLATE_INPUT)
        v = sc->input;
    else if (ref->root == TEMPLATE_ARGS)
        v = sc->args;
    else if (sc->node_output)
        v = sc->node_output(sc->ctx, ref->node.p, ref->node.len);
    for (size_t i = ref->rest; v && i < ref->nseg; i++)
        v = step(v, ref->seg[i]);
    return v;
}

/* ---- text ---- */

/* A string being rendered: at most limit bytes; passing it is `full`
 * (RENDER_TOO_LONG when RENDER_MAX_BYTES is the nearer limit, RENDER_OVER
 * when the budget is). */
typedef struct {
    buf b;
    size_t limit;
    int full;
} text;

static int put(text *t, const char *p, size_t n)
{
    if (n > t->limit - t->b.len)
        return t->full;
    return buf_append(&t->b, p, n) == 0 ? RENDER_OK : t->full;
}

/* Appends v as compact JSON, encoded straight into the text: the encoder
 * stops where the text is full, so a huge value is never encoded whole. */
static int put_json(text *t, const json_t *v)
{
    size_t room = t->limit - t->b.len;
    if (room == 0) /* every value takes a byte (and t->b may have no maximum) */
        return t->full;
    if (json_dump_buf(v, &t->b) == 0)
        return RENDER_OK;
    return json_size_within(v, room) > room ? t->full : RENDER_NOMEM;
}

/* Appends the text of v (NULL: the path led nowhere) as the header describes. */
static int put_value(text *t, const json_t *v)
{
    if (!v || json_is_null(v))
        return put(t, "null", 4);
    if (json_is_string(v))
        return put(t, json_string_value(v), json_string_length(v));
    return put_json(t, v);
}

/* Literal text and placeholders of s[0..len) into t; a RENDER_* code (the
 * scanner's message in why for RENDER_BAD_TEMPLATE). */
static int fill(text *t, const char *s, size_t len, const render_scope *sc, char *why,
                size_t whylen)
{
    size_t pos = 0, lit = 0;
    template_ref ref;
    int r;
    while ((r = template_next(s, len, &pos, &ref, why, whylen)) == 1) {
        int rc = put(t, s + lit, ref.start - lit);
        if (rc == RENDER_OK)
            rc = put_value(t, render_lookup(&ref, sc));
        if (rc != RENDER_OK)
            return rc;
        lit = pos;
    }
    if (r < 0)
        return RENDER_BAD_TEMPLATE;
    return put(t, s + lit, len - lit);
}

/* A string with its placeholders replaced by text, its JSON size taken
 * from bud. */
static json_t *render_text(const char *s, size_t len, const render_scope *sc,
                           render_budget *bud, char *err, size_t errlen)
{
    char why[320];
    json_t *out = NULL;
    size_t left = bud->max - bud->used;
    if (left < 2) { /* not even the quotes */
        fail(RENDER_OVER, bud, NULL, err, errlen);
        return NULL;
    }
    text t = {.limit = left - 2 < RENDER_MAX_BYTES ? left - 2 : RENDER_MAX_BYTES,
              .full = left - 2 < RENDER_MAX_BYTES ? RENDER_OVER : RENDER_TOO_LONG};
    buf_init(&t.b, t.limit);
    int rc = fill(&t, s, len, sc, why, sizeof(why));
    if (rc == RENDER_OK)
        rc = take(bud, json_string_size(t.b.data, t.b.len));
    if (rc != RENDER_OK)
        fail(rc, bud, why, err, errlen);
    else if (!(out = json_stringn(t.b.data ? t.b.data : "", t.b.len)))
        /* Values are valid UTF-8 and placeholders are ASCII, so only a caller's
         * s can bring bytes that are not. */
        err_set(err, errlen, json_utf8_valid(t.b.data, t.b.len) ? "out of memory"
                                                                : "string is not valid UTF-8");
    buf_free(&t.b);
    return out;
}

/* Whether s[0..len) holds an {{args...}} placeholder (a malformed string
 * holds none: its render reports it). */
static bool has_args(const char *s, size_t len)
{
    size_t pos = 0;
    template_ref ref;
    if (!memmem(s, len, "args", 4))
        return false;
    while (template_next(s, len, &pos, &ref, NULL, 0) == 1)
        if (ref.root == TEMPLATE_ARGS)
            return true;
    return false;
}

json_t *render_string(const char *s, size_t len, const render_scope *sc, render_budget *b,
                      char *err, size_t errlen)
{
    template_ref ref;
    if (!s) {
        s = "";
        len = 0;
    }
    if ((!sc || !sc->args) && has_args(s, len)) { /* copied as it is, rendered later */
        if (take(b, json_string_size(s, len)) != RENDER_OK) {
            fail(RENDER_OVER, b, NULL, err, errlen);
            return NULL;
        }
        json_t *copy = json_stringn(s, len);
        if (!copy)
            fail(RENDER_NOMEM, b, NULL, err, errlen);
        return copy;
    }
    if (!template_is_whole(s, len, &ref))
        return render_text(s, len, sc, b, err, errlen);
    json_t *v = (json_t *)render_lookup(&ref, sc);
    size_t left = b->max - b->used;
    if (take(b, v ? json_size_within(v, left) : 4) != RENDER_OK) {
        fail(RENDER_OVER, b, NULL, err, errlen);
        return NULL;
    }
    return v ? json_incref(v) : json_null();
}

/* ---- values ---- */

/* Object keys are copied as they are: only values are templates. jansson's
 * iterators take a non-const object; nothing here changes it. */
static json_t *render_object(const json_t *v, const render_scope *sc, render_budget *b,
                             char *err, size_t errlen)
{
    json_t *obj = (json_t *)v, *out = NULL;
    bool first = true;
    if (take(b, 2) != RENDER_OK) { /* {} */
        fail(RENDER_OVER, b, NULL, err, errlen);
        return NULL;
    }
    out = json_object();
    for (void *it = json_object_iter(obj); out && it; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        /* the comma before all but the first, the key, the colon */
        int rc = take(b, !first + json_string_size(key, klen) + 1);
        json_t *item = rc == RENDER_OK
                           ? render_value(json_object_iter_value(it), sc, b, err, errlen)
                           : NULL;
        first = false;
        /* jansson's _new setters drop the item when they fail */
        if (item && json_object_setn_new_nocheck(out, key, klen, item) == 0)
            continue;
        if (rc != RENDER_OK || item)
            fail(rc != RENDER_OK ? rc : RENDER_NOMEM, b, NULL, err, errlen);
        json_decref(out);
        return NULL;
    }
    if (!out)
        fail(RENDER_NOMEM, b, NULL, err, errlen);
    return out;
}

static json_t *render_array(const json_t *v, const render_scope *sc, render_budget *b,
                            char *err, size_t errlen)
{
    size_t n = json_array_size(v);
    /* [] and the commas */
    if (take(b, 2 + (n ? n - 1 : 0)) != RENDER_OK) {
        fail(RENDER_OVER, b, NULL, err, errlen);
        return NULL;
    }
    json_t *out = json_array();
    for (size_t i = 0; out && i < n; i++) {
        json_t *item = render_value(json_array_get(v, i), sc, b, err, errlen);
        if (item && json_array_append_new(out, item) == 0)
            continue;
        if (item)
            fail(RENDER_NOMEM, b, NULL, err, errlen);
        json_decref(out);
        return NULL;
    }
    if (!out)
        fail(RENDER_NOMEM, b, NULL, err, errlen);
    return out;
}

/* A literal number, boolean or null (or NULL: null): copied, never shared. */
static json_t *render_scalar(const json_t *v, render_budget *b, char *err, size_t errlen)
{
    size_t left = b->max - b->used;
    if (take(b, v ? json_size_within(v, left) : 4) != RENDER_OK) {
        fail(RENDER_OVER, b, NULL, err, errlen);
        return NULL;
    }
    json_t *out = v ? json_deep_copy(v) : json_null();
    if (!out)
        fail(RENDER_NOMEM, b, NULL, err, errlen);
    return out;
}

json_t *render_value(const json_t *v, const render_scope *sc, render_budget *b, char *err,
                     size_t errlen)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        return render_string(json_string_value(v), json_string_length(v), sc, b, err, errlen);
    case JSON_OBJECT:
        return render_object(v, sc, b, err, errlen);
    case JSON_ARRAY:
        return render_array(v, sc, b, err, errlen);
    default:
        return render_scalar(v, b, err, errlen);
    }
}
