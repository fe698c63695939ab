/*
 * jschema.c - the JSON Schema subset of jschema.h.
 */
#include "engine/jschema.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "engine/cond.h"

#define PATH_MAX_LEN 256

/* The keywords of the subset, then those that only describe. */
static const char *const checked[] = {
    "type", "properties", "required", "additionalProperties", "enum", "items", "minLength",
    "maxLength", "minimum", "maximum", "minItems", "maxItems", NULL};
static const char *const described[] = {
    "description", "title", "default", "examples", "format", "$schema", "$id", "$comment",
    "deprecated", "readOnly", "writeOnly", NULL};
static const char *const types[] = {"object", "array", "string", "number", "integer",
                                    "boolean", "null", NULL};

static bool among(const char *s, const char *const *list)
{
    for (int k = 0; list[k]; k++)
        if (!strcmp(s, list[k]))
            return true;
    return false;
}

/* path + "." + key (or "[i]"), cut to fit PATH_MAX_LEN. */
static void join(char *out, const char *path, const char *key)
{
    size_t n = 0;
    const char *parts[3] = {path, path[0] && key[0] != '[' ? "." : "", key};
    for (int k = 0; k < 3; k++)
        for (const char *c = parts[k]; *c && n + 1 < PATH_MAX_LEN; c++)
            out[n++] = *c;
    out[n] = '\0';
}

static int fail(char *why, size_t whylen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t whylen, const char *path, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(why, whylen, "%.256s: %s", path[0] ? path : "(root)", msg);
    return -1;
}

static bool non_negative_int(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 0;
}

static int check_at(const json_t *s, const char *path, int depth, char *why, size_t whylen)
{
    if (depth > JSCHEMA_MAX_DEPTH)
        return fail(why, whylen, path, "nests too deep");
    if (!json_is_object(s))
        return fail(why, whylen, path, "must be a schema object");
    const char *key;
    json_t *v;
    char sub[PATH_MAX_LEN];
    json_object_foreach((json_t *)s, key, v) {
        if (among(key, described))
            continue;
        join(sub, path, key);
        if (!among(key, checked))
            return fail(why, whylen, path, "keyword \"%.60s\" is not supported", key);
        if (!strcmp(key, "type")) {
            bool ok = json_is_string(v) && among(json_string_value(v), types);
            if (json_is_array(v) && json_array_size(v) > 0) {
                size_t i;
                json_t *t;
                ok = true;
                json_array_foreach(v, i, t) ok = ok && json_is_string(t) &&
                                                 among(json_string_value(t), types);
            }
            if (!ok)
                return fail(why, whylen, sub, "must be a JSON type name or an array of them");
        } else if (!strcmp(key, "properties")) {
            if (!json_is_object(v))
                return fail(why, whylen, sub, "must be an object of schemas");
            const char *name;
            json_t *p;
            json_object_foreach(v, name, p) {
                char at[PATH_MAX_LEN];
                join(at, sub, name);
                if (check_at(p, at, depth + 1, why, whylen) != 0)
                    return -1;
            }
        } else if (!strcmp(key, "required")) {
            size_t i;
            json_t *n;
            bool ok = json_is_array(v);
            json_array_foreach(v, i, n) ok = ok && json_is_string(n);
            if (!ok)
                return fail(why, whylen, sub, "must be an array of property names");
        } else if (!strcmp(key, "additionalProperties")) {
            if (!json_is_boolean(v))
                return fail(why, whylen, sub, "must be true or false");
        } else if (!strcmp(key, "enum")) {
            if (!json_is_array(v) || json_array_size(v) == 0)
                return fail(why, whylen, sub, "must be a non-empty array");
        } else if (!strcmp(key, "items")) {
            if (check_at(v, sub, depth + 1, why, whylen) != 0)
                return -1;
        } else if (!strcmp(key, "minimum") || !strcmp(key, "maximum")) {
            if (!json_is_number(v))
                return fail(why, whylen, sub, "must be a number");
        } else if (!non_negative_int(v)) { /* the lengths and counts */
            return fail(why, whylen, sub, "must be a non-negative integer");
        }
    }
    return 0;
}

int jschema_check(const json_t *schema, char *why, size_t whylen)
{
    return check_at(schema, "", 0, why, whylen);
}

/* ---- validation ---- */

static bool is_type(const json_t *v, const char *t)
{
    if (!strcmp(t, "object"))
        return json_is_object(v);
    if (!strcmp(t, "array"))
        return json_is_array(v);
    if (!strcmp(t, "string"))
        return json_is_string(v);
    if (!strcmp(t, "number"))
        return json_is_number(v);
    if (!strcmp(t, "integer"))
        return json_is_integer(v) ||
               (json_is_real(v) && isfinite(json_real_value(v)) &&
                json_real_value(v) == floor(json_real_value(v)));
    if (!strcmp(t, "boolean"))
        return json_is_boolean(v);
    return json_is_null(v);
}

static int type_ok(const json_t *type, const json_t *v, char *why, size_t whylen,
                   const char *path)
{
    if (json_is_string(type)) {
        const char *t = json_string_value(type);
        if (is_type(v, t))
            return 0;
        return fail(why, whylen, path, "must be %s %s", strchr("aeiou", t[0]) ? "an" : "a", t);
    }
    size_t i;
    json_t *t;
    json_array_foreach(type, i, t) if (is_type(v, json_string_value(t))) return 0;
    return fail(why, whylen, path, "%s", "is of none of the types the schema allows");
}

/* UTF-8 characters in s. */
static size_t chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t k = 0; k < len; k++)
        n += ((unsigned char)s[k] & 0xC0) != 0x80;
    return n;
}

static int validate_at(const json_t *s, const json_t *v, const char *path, char *why,
                       size_t whylen)
{
    const json_t *type = json_object_get(s, "type"), *en = json_object_get(s, "enum");
    char sub[PATH_MAX_LEN];
    if (type && type_ok(type, v, why, whylen, path) != 0)
        return -1;
    if (en) {
        size_t i;
        json_t *x;
        bool hit = false, eq = false;
        json_array_foreach(en, i, x) {
            if (cond_eval("eq", v, x, &eq) == 0 && eq) {
                hit = true;
                break;
            }
        }
        if (!hit)
            return fail(why, whylen, path, "is not one of the values enum allows");
    }
    if (json_is_string(v)) {
        size_t n = chars(json_string_value(v), json_string_length(v));
        const json_t *lo = json_object_get(s, "minLength"), *hi = json_object_get(s, "maxLength");
        if (lo && n < (size_t)json_integer_value(lo))
            return fail(why, whylen, path, "must be at least %lld characters long",
                        (long long)json_integer_value(lo));
        if (hi && n > (size_t)json_integer_value(hi))
            return fail(why, whylen, path, "must be at most %lld characters long",
                        (long long)json_integer_value(hi));
    }
    if (json_is_number(v)) {
        const json_t *lo = json_object_get(s, "minimum"), *hi = json_object_get(s, "maximum");
        bool below = false, above = false;
        if (lo && cond_eval("lt", v, lo, &below) == 0 && below)
            return fail(why, whylen, path, "is below the minimum");
        if (hi && cond_eval("gt", v, hi, &above) == 0 && above)
            return fail(why, whylen, path, "is above the maximum");
    }
    if (json_is_array(v)) {
        const json_t *lo = json_object_get(s, "minItems"), *hi = json_object_get(s, "maxItems");
        const json_t *items = json_object_get(s, "items");
        if (lo && json_array_size(v) < (size_t)json_integer_value(lo))
            return fail(why, whylen, path, "has fewer items than minItems");
        if (hi && json_array_size(v) > (size_t)json_integer_value(hi))
            return fail(why, whylen, path, "has more items than maxItems");
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            char idx[32];
            snprintf(idx, sizeof(idx), "[%zu]", i);
            join(sub, path, idx);
            if (items && validate_at(items, x, sub, why, whylen) != 0)
                return -1;
        }
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(s, "properties");
        const json_t *req = json_object_get(s, "required");
        size_t i;
        json_t *name;
        json_array_foreach(req, i, name) {
            if (!json_object_get(v, json_string_value(name)))
                return fail(why, whylen, path, "missing required property \"%.60s\"",
                            json_string_value(name));
        }
        const char *key;
        json_t *x;
        bool closed = json_is_false(json_object_get(s, "additionalProperties"));
        json_object_foreach((json_t *)v, key, x) {
            const json_t *ps = json_object_get(props, key);
            join(sub, path, key);
            if (!ps && closed)
                return fail(why, whylen, sub, "is not a property the schema allows");
            if (ps && validate_at(ps, x, sub, why, whylen) != 0)
                return -1;
        }
    }
    return 0;
}

int jschema_validate(const json_t *schema, const json_t *v, char *why, size_t whylen)
{
    return validate_at(schema, v, "", why, whylen);
}
