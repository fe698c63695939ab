#include "engine/cond.h"

#include <math.h>
#include <string.h>

typedef bool (*cond_fn)(const json_t *left, const json_t *right);

/* The operands with NULL read as json null (a shared singleton: nothing to free). */
static const json_t *or_null(const json_t *v)
{
    return v ? v : json_null();
}

/* -1, 0 or 1 for integer i against finite real d, exactly: going through
 * double would make 2^53 + 1 equal to 2^53. */
static int cmp_int_real(json_int_t i, double d)
{
    const double two63 = 9223372036854775808.0;
    if (d >= two63)
        return -1;
    if (d < -two63)
        return 1;
    double whole = trunc(d);
    json_int_t w = (json_int_t)whole;
    if (i != w)
        return i < w ? -1 : 1;
    double frac = d - whole;
    return frac > 0 ? -1 : (frac < 0 ? 1 : 0);
}

/* -1, 0 or 1 for two numbers (jansson keeps reals finite). */
static int cmp_numbers(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : (x > y);
    }
    if (json_is_integer(a))
        return cmp_int_real(json_integer_value(a), json_real_value(b));
    if (json_is_integer(b))
        return -cmp_int_real(json_integer_value(b), json_real_value(a));
    double x = json_real_value(a), y = json_real_value(b);
    return x < y ? -1 : (x > y);
}

/* Byte-wise order of two strings that may hold NUL bytes. */
static int cmp_strings(const json_t *a, const json_t *b)
{
    size_t la = json_string_length(a), lb = json_string_length(b);
    int c = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
    if (c)
        return c < 0 ? -1 : 1;
    return la < lb ? -1 : (la > lb);
}

static bool equal(const json_t *a, const json_t *b);

static bool equal_objects(const json_t *a, const json_t *b)
{
    json_t *obj = (json_t *)a; /* jansson's iterators are not const; read only */
    if (json_object_size(a) != json_object_size(b))
        return false;
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const json_t *other =
            json_object_getn(b, json_object_iter_key(it), json_object_iter_key_len(it));
        if (!other || !equal(json_object_iter_value(it), other))
            return false;
    }
    return true;
}

static bool equal_arrays(const json_t *a, const json_t *b)
{
    size_t n = json_array_size(a);
    if (n != json_array_size(b))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!equal(json_array_get(a, i), json_array_get(b, i)))
            return false;
    return true;
}

/* Deep equality with the number rule; values come from parsed JSON, whose
 * depth jansson bounds, so the recursion is bounded too. */
static bool equal(const json_t *a, const json_t *b)
{
    a = or_null(a);
    b = or_null(b);
    if (json_is_number(a) && json_is_number(b))
        return cmp_numbers(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return cmp_strings(a, b) == 0;
    case JSON_OBJECT:
        return equal_objects(a, b);
    case JSON_ARRAY:
        return equal_arrays(a, b);
    default: /* true, false, null: the type is the value */
        return true;
    }
}

/* Sets *c to the order of l against r and returns true when they can be
 * ordered (two numbers or two strings). */
static bool order(const json_t *l, const json_t *r, int *c)
{
    if (json_is_number(l) && json_is_number(r))
        *c = cmp_numbers(l, r);
    else if (json_is_string(l) && json_is_string(r))
        *c = cmp_strings(l, r);
    else
        return false;
    return true;
}

static bool op_eq(const json_t *l, const json_t *r)
{
    return equal(l, r);
}

static bool op_ne(const json_t *l, const json_t *r)
{
    return !equal(l, r);
}

static bool op_gt(const json_t *l, const json_t *r)
{
    int c;
    return order(l, r, &c) && c > 0;
}

static bool op_gte(const json_t *l, const json_t *r)
{
    int c;
    return order(l, r, &c) && c >= 0;
}

static bool op_lt(const json_t *l, const json_t *r)
{
    int c;
    return order(l, r, &c) && c < 0;
}

static bool op_lte(const json_t *l, const json_t *r)
{
    int c;
    return order(l, r, &c) && c <= 0;
}

static bool op_contains(const json_t *l, const json_t *r)
{
    if (json_is_string(l) && json_is_string(r))
        return json_string_length(r) == 0 ||
               memmem(json_string_value(l), json_string_length(l), json_string_value(r),
                      json_string_length(r)) != NULL;
    if (json_is_array(l)) {
        for (size_t i = 0; i < json_array_size(l); i++)
            if (equal(json_array_get(l, i), r))
                return true;
        return false;
    }
    if (json_is_object(l) && json_is_string(r))
        return json_object_getn(l, json_string_value(r), json_string_length(r)) != NULL;
    return false;
}

static bool op_exists(const json_t *l, const json_t *r)
{
    (void)r;
    return l && !json_is_null(l);
}

static const struct {
    const char *name;
    cond_fn fn;
} ops[] = {
    {"eq", op_eq},   {"ne", op_ne},   {"gt", op_gt},           {"gte", op_gte},
    {"lt", op_lt},   {"lte", op_lte}, {"contains", op_contains}, {"exists", op_exists},
};

int cond_eval(const char *op, const json_t *left, const json_t *right, bool *result)
{
    *result = false;
    if (!op)
        return -1;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(op, ops[i].name) == 0) {
            *result = ops[i].fn(left, right);
            return 0;
        }
    }
    return -1;
}
