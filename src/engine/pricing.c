#include "engine/pricing.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Exactly the content of config/llm-pricing.json: a unit test parses both and
 * compares every price, so edit the two together. */
static const char builtin[] =
    "{\n"
    "  \"_comment\": \"LLM list prices in USD per million tokens: "
    "inputPerMillion for prompt tokens, outputPerMillion for completion "
    "tokens. A model name also prices its dated or suffixed variants "
    "(gpt-4o prices gpt-4o-2024-08-06). To change them, edit a copy of "
    "this file and point LLM_PRICING_FILE at it.\",\n"
    "  \"models\": {\n"
    "    \"gpt-4o\": {\"inputPerMillion\": 2.5, \"outputPerMillion\": 10},\n"
    "    \"gpt-4o-mini\": {\"inputPerMillion\": 0.15, \"outputPerMillion\": 0.6},\n"
    "    \"gpt-4.1\": {\"inputPerMillion\": 2, \"outputPerMillion\": 8},\n"
    "    \"gpt-4.1-mini\": {\"inputPerMillion\": 0.4, \"outputPerMillion\": 1.6},\n"
    "    \"gpt-4.1-nano\": {\"inputPerMillion\": 0.1, \"outputPerMillion\": 0.4},\n"
    "    \"gpt-4-turbo\": {\"inputPerMillion\": 10, \"outputPerMillion\": 30},\n"
    "    \"gpt-3.5-turbo\": {\"inputPerMillion\": 0.5, \"outputPerMillion\": 1.5},\n"
    "    \"o1\": {\"inputPerMillion\": 15, \"outputPerMillion\": 60},\n"
    "    \"o1-mini\": {\"inputPerMillion\": 1.1, \"outputPerMillion\": 4.4},\n"
    "    \"o3-mini\": {\"inputPerMillion\": 1.1, \"outputPerMillion\": 4.4},\n"
    "    \"claude-3-haiku\": {\"inputPerMillion\": 0.25, \"outputPerMillion\": 1.25},\n"
    "    \"claude-3-opus\": {\"inputPerMillion\": 15, \"outputPerMillion\": 75},\n"
    "    \"claude-3-5-haiku\": {\"inputPerMillion\": 0.8, \"outputPerMillion\": 4},\n"
    "    \"claude-3-5-sonnet\": {\"inputPerMillion\": 3, \"outputPerMillion\": 15},\n"
    "    \"claude-3-7-sonnet\": {\"inputPerMillion\": 3, \"outputPerMillion\": 15},\n"
    "    \"claude-sonnet-4\": {\"inputPerMillion\": 3, \"outputPerMillion\": 15},\n"
    "    \"claude-opus-4\": {\"inputPerMillion\": 15, \"outputPerMillion\": 75},\n"
    "    \"claude-opus-4-1\": {\"inputPerMillion\": 15, \"outputPerMillion\": 75},\n"
    "    \"claude-opus-4-5\": {\"inputPerMillion\": 5, \"outputPerMillion\": 25},\n"
    "    \"claude-sonnet-4-5\": {\"inputPerMillion\": 3, \"outputPerMillion\": 15},\n"
    "    \"claude-haiku-4-5\": {\"inputPerMillion\": 1, \"outputPerMillion\": 5},\n"
    "    \"llama-3.1-8b-instruct\": {\"inputPerMillion\": 0.18, \"outputPerMillion\": 0.18},\n"
    "    \"llama-3.1-70b-instruct\": {\"inputPerMillion\": 0.88, \"outputPerMillion\": 0.88},\n"
    "    \"mistral-small\": {\"inputPerMillion\": 0.2, \"outputPerMillion\": 0.6},\n"
    "    \"mistral-large\": {\"inputPerMillion\": 2, \"outputPerMillion\": 6}\n"
    "  }\n"
    "}\n";

typedef struct {
    char *name; /* NUL-terminated; jansson refuses NUL bytes in keys */
    size_t len;
    double in, out; /* USD per million tokens */
} price;

struct pricing {
    price *items; /* sorted by name, byte-wise, for bsearch */
    size_t n;
};

/* A name to look up: a span, so that prefixes need no copy. */
typedef struct {
    const char *p;
    size_t len;
} span;

static int cmp_span(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : (alen > blen);
}

static int cmp_items(const void *a, const void *b)
{
    const price *x = a, *y = b;
    return cmp_span(x->name, x->len, y->name, y->len);
}

static int cmp_key(const void *key, const void *item)
{
    const span *k = key;
    const price *e = item;
    return cmp_span(k->p, k->len, e->name, e->len);
}

static const price *find(const pricing *p, const char *name, size_t len)
{
    span k = {name, len};
    return p->n ? bsearch(&k, p->items, p->n, sizeof(price), cmp_key) : NULL;
}

/* A short reason for a jansson parse error that quotes none of the text
 * (jansson's own messages can quote a whole string token). */
static const char *parse_reason(const json_error_t *je)
{
    static const struct {
        enum json_error_code code;
        const char *what;
    } reasons[] = {
        {json_error_out_of_memory, "out of memory"},
        {json_error_stack_overflow, "nested too deep"},
        {json_error_invalid_utf8, "invalid UTF-8"},
        {json_error_premature_end_of_input, "unexpected end of input"},
        {json_error_end_of_input_expected, "text after the end of the value"},
        {json_error_invalid_syntax, "syntax error"},
        {json_error_null_character, "\\u0000 in a string"},
        {json_error_null_byte_in_key, "\\u0000 in a key"},
        {json_error_duplicate_key, "duplicate key"},
        {json_error_numeric_overflow, "number out of range"},
    };
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (json_error_code(je) == reasons[i].code)
            return reasons[i].what;
    return "invalid JSON";
}

/* One price of model m: true with *out set when key holds a number >= 0. */
static bool read_price(const json_t *m, const char *key, double *out)
{
    const json_t *v = json_object_get(m, key);
    if (!json_is_number(v) || json_number_value(v) < 0)
        return false;
    *out = json_number_value(v);
    return true;
}

/* Checks one entry of "models" and fills *e (its name allocated). */
static bool read_model(const char *name, size_t len, const json_t *m, price *e, char *err,
                       size_t errlen)
{
    static const char *const keys[] = {"inputPerMillion", "outputPerMillion"};
    double *slots[] = {&e->in, &e->out};
    if (len == 0 || len > PRICING_MAX_NAME) {
        err_set(err, errlen, "models: a model name must be 1 to %d bytes", PRICING_MAX_NAME);
        return false;
    }
    if (!json_is_object(m)) {
        err_set(err, errlen, "models.%s must be an object", name);
        return false;
    }
    for (size_t i = 0; i < 2; i++) {
        if (!read_price(m, keys[i], slots[i])) {
            err_set(err, errlen, "models.%s.%s must be a number >= 0", name, keys[i]);
            return false;
        }
    }
    if (!(e->name = strdup(name))) {
        err_set(err, errlen, "out of memory");
        return false;
    }
    e->len = len;
    return true;
}

/* The table of the "models" object (checked to be an object). */
static pricing *build(const json_t *models, char *err, size_t errlen)
{
    json_t *obj = (json_t *)models; /* jansson's iterators are not const; read only */
    pricing *p = calloc(1, sizeof(*p));
    size_t n = json_object_size(models);
    if (!p || !(p->items = calloc(n ? n : 1, sizeof(price)))) {
        free(p);
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        if (!read_model(json_object_iter_key(it), json_object_iter_key_len(it),
                        json_object_iter_value(it), &p->items[p->n], err, errlen)) {
            pricing_free(p);
            return NULL;
        }
        p->n++;
    }
    qsort(p->items, p->n, sizeof(price), cmp_items);
    return p;
}

pricing *pricing_parse(const char *json, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        err_set(err, errlen, "invalid JSON at line %d column %d: %s", je.line, je.column,
                parse_reason(&je));
        return NULL;
    }
    const json_t *models = json_object_get(root, "models");
    pricing *p = NULL;
    if (!json_is_object(root))
        err_set(err, errlen, "the top level must be an object");
    else if (!models)
        err_set(err, errlen, "models is required");
    else if (!json_is_object(models))
        err_set(err, errlen, "models must be an object");
    else if (json_object_size(models) > PRICING_MAX_MODELS)
        err_set(err, errlen, "models has more than %d entries", PRICING_MAX_MODELS);
    else
        p = build(models, err, errlen);
    json_decref(root);
    return p;
}

/* Reads what is left of fd into a new buffer (*text, *len); refuses more than
 * PRICING_MAX_FILE bytes. 0, or -1 with a reason in why. */
static int read_all(int fd, char **text, size_t *len, char *why, size_t whylen)
{
    size_t cap = 64 * 1024, n = 0;
    char *b = malloc(cap), ebuf[128];
    int rc = -1;
    for (;;) {
        if (!b) {
            err_set(why, whylen, "out of memory");
            goto out;
        }
        if (n > PRICING_MAX_FILE) {
            err_set(why, whylen, "is larger than 4 MiB");
            goto out;
        }
        if (n == cap) {
            char *bigger = realloc(b, cap * 2);
            if (!bigger)
                free(b);
            b = bigger;
            cap *= 2;
            continue;
        }
        ssize_t got = read(fd, b + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            err_set(why, whylen, "cannot read: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    *text = b;
    *len = n;
    b = NULL;
    rc = 0;
out:
    free(b);
    return rc;
}

/* The whole regular file at path; 0, or -1 with a reason in why. O_NONBLOCK
 * keeps a FIFO from hanging the open; it is refused right after. */
static int read_file(const char *path, char **text, size_t *len, char *why, size_t whylen)
{
    char ebuf[128];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return err_set(why, whylen, "cannot open: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
    int rc = -1;
    if (fstat(fd, &st) < 0)
        err_set(why, whylen, "cannot stat: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
    else if (!S_ISREG(st.st_mode))
        err_set(why, whylen, "is not a regular file");
    else if (st.st_size > PRICING_MAX_FILE)
        err_set(why, whylen, "is larger than 4 MiB");
    else
        rc = read_all(fd, text, len, why, whylen);
    close(fd);
    return rc;
}

pricing *pricing_load_file(const char *path, char *err, size_t errlen)
{
    char why[256];
    char *text = NULL;
    size_t len = 0;
    if (!path) {
        err_set(err, errlen, "no pricing file given");
        return NULL;
    }
    if (read_file(path, &text, &len, why, sizeof(why)) < 0) {
        err_set(err, errlen, "%s: %s", path, why);
        return NULL;
    }
    pricing *p = pricing_parse(text, len, why, sizeof(why));
    free(text);
    if (!p)
        err_set(err, errlen, "%s: %s", path, why);
    return p;
}

pricing *pricing_default(void)
{
    return pricing_parse(builtin, sizeof(builtin) - 1, NULL, 0);
}

/* The entry pricing model: the exact name, else the longest name that is a
 * prefix of model followed by '-', tried from the last '-' backwards. */
static const price *lookup(const pricing *p, const char *model)
{
    size_t len = strlen(model);
    const price *e = find(p, model, len);
    for (size_t i = len; !e && i-- > 0;)
        if (model[i] == '-')
            e = find(p, model, i);
    return e;
}

bool pricing_cost(const pricing *p, const char *model, long long prompt_tokens,
                  long long completion_tokens, double *cost)
{
    *cost = 0;
    const price *e = p && model ? lookup(p, model) : NULL;
    if (!e)
        return false;
    double in = prompt_tokens > 0 ? (double)prompt_tokens : 0;
    double out = completion_tokens > 0 ? (double)completion_tokens : 0;
    *cost = (in * e->in + out * e->out) / 1e6;
    return true;
}

size_t pricing_count(const pricing *p)
{
    return p ? p->n : 0;
}

void pricing_free(pricing *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->items[i].name);
    free(p->items);
    free(p);
}
