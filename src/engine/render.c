#include "engine/render.h"

#include <stdlib.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"

/* What rendering text can run into. */
enum { APPEND_OK, APPEND_TOO_LONG, APPEND_NOMEM, APPEND_BAD_TEMPLATE };

/* The message of a failed append (rc) into err. */
static void fail_append(int rc, char *err, size_t errlen)
{
    if (rc == APPEND_TOO_LONG)
        err_set(err, errlen, "rendered string is longer than %d bytes", RENDER_MAX_BYTES);
    else
        err_set(err, errlen, "out of memory");
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
    else if (sc->node_output)
        v = sc->node_output(sc->ctx, ref->node.p, ref->node.len);
    for (size_t i = ref->rest; v && i < ref->nseg; i++)
        v = step(v, ref->seg[i]);
    return v;
}

/* Appends v as compact JSON. The size is measured first (json_dumpb without a
 * buffer only counts), so that a huge value is refused before it is encoded
 * into memory. */
static int append_json(buf *b, const json_t *v)
{
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t n = json_dumpb(v, NULL, 0, flags);
    if (n == 0)
        return APPEND_NOMEM;
    if (n > (size_t)RENDER_MAX_BYTES - b->len)
        return APPEND_TOO_LONG;
    char *tmp = malloc(n);
    if (!tmp)
        return APPEND_NOMEM;
    int rc = APPEND_NOMEM;
    if (json_dumpb(v, tmp, n, flags) == n)
        rc = buf_append(b, tmp, n) == 0 ? APPEND_OK : APPEND_TOO_LONG;
    free(tmp);
    return rc;
}

/* Appends the text of v (NULL: the path led nowhere) as the header describes. */
static int append_value(buf *b, const json_t *v)
{
    if (!v || json_is_null(v))
        return buf_append(b, "null", 4) == 0 ? APPEND_OK : APPEND_TOO_LONG;
    if (json_is_string(v))
        return buf_append(b, json_string_value(v), json_string_length(v)) == 0
                   ? APPEND_OK
                   : APPEND_TOO_LONG;
    return append_json(b, v);
}

/* Literal text and placeholders of s[0..len) into b; an APPEND_* code (the
 * scanner's message in why for APPEND_BAD_TEMPLATE). */
static int fill(buf *b, const char *s, size_t len, const render_scope *sc, char *why,
                size_t whylen)
{
    size_t pos = 0, lit = 0;
    template_ref ref;
    int r;
    while ((r = template_next(s, len, &pos, &ref, why, whylen)) == 1) {
        if (buf_append(b, s + lit, ref.start - lit) < 0)
            return APPEND_TOO_LONG;
        int rc = append_value(b, render_lookup(&ref, sc));
        if (rc != APPEND_OK)
            return rc;
        lit = pos;
    }
    if (r < 0)
        return APPEND_BAD_TEMPLATE;
    return buf_append(b, s + lit, len - lit) < 0 ? APPEND_TOO_LONG : APPEND_OK;
}

/* A string with its placeholders replaced by text. */
static json_t *render_text(const char *s, size_t len, const render_scope *sc, char *err,
                           size_t errlen)
{
    buf b;
    char why[320];
    json_t *out = NULL;
    buf_init(&b, RENDER_MAX_BYTES);
    int rc = fill(&b, s, len, sc, why, sizeof(why));
    if (rc == APPEND_BAD_TEMPLATE)
        err_set(err, errlen, "template: %s", why);
    else if (rc != APPEND_OK)
        fail_append(rc, err, errlen);
    else if (!(out = json_stringn(b.data ? b.data : "", b.len)))
        /* Values are valid UTF-8 and placeholders are ASCII, so only a caller's
         * s can bring bytes that are not. */
        err_set(err, errlen, json_utf8_valid(b.data, b.len) ? "out of memory"
                                                            : "string is not valid UTF-8");
    buf_free(&b);
    return out;
}

json_t *render_string(const char *s, size_t len, const render_scope *sc, char *err,
                      size_t errlen)
{
    template_ref ref;
    if (!s) {
        s = "";
        len = 0;
    }
    if (template_is_whole(s, len, &ref)) {
        const json_t *v = render_lookup(&ref, sc);
        json_t *out = v ? json_deep_copy(v) : json_null();
        if (!out)
            err_set(err, errlen, "out of memory");
        return out;
    }
    return render_text(s, len, sc, err, errlen);
}

/* Object keys are copied as they are: only values are templates. jansson's
 * iterators take a non-const object; nothing here changes it. */
static json_t *render_object(const json_t *v, const render_scope *sc, char *err,
                             size_t errlen)
{
    json_t *out = json_object();
    json_t *obj = (json_t *)v;
    if (!out) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        json_t *item = render_value(json_object_iter_value(it), sc, err, errlen);
        if (!item ||
            json_object_setn_new_nocheck(out, json_object_iter_key(it),
                                         json_object_iter_key_len(it), item) < 0) {
            if (item)
                err_set(err, errlen, "out of memory");
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *render_array(const json_t *v, const render_scope *sc, char *err,
                            size_t errlen)
{
    json_t *out = json_array();
    if (!out) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *item = render_value(json_array_get(v, i), sc, err, errlen);
        if (!item || json_array_append_new(out, item) < 0) {
            if (item)
                err_set(err, errlen, "out of memory");
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

json_t *render_value(const json_t *v, const render_scope *sc, char *err, size_t errlen)
{
    json_t *out;
    if (!v)
        return json_null();
    switch (json_typeof(v)) {
    case JSON_STRING:
        return render_string(json_string_value(v), json_string_length(v), sc, err, errlen);
    case JSON_OBJECT:
        return render_object(v, sc, err, errlen);
    case JSON_ARRAY:
        return render_array(v, sc, err, errlen);
    default:
        out = json_deep_copy(v);
        if (!out)
            err_set(err, errlen, "out of memory");
        return out;
    }
}
