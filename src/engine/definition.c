/*
 * definition.c - the workflow definition validator (definition.h): the
 * shape of nodes and edges, ids, the graph, templates and their node
 * references. What a node's config must hold is its kind's to say: the
 * check and templates functions of its row in the kinds table (kinds.h),
 * which use the helpers of definition_int.h.
 */
#include "engine/definition.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"
#include "engine/definition_int.h"
#include "engine/kinds.h"
#include "engine/template.h"

#define SHOW_MAX 64        /* bytes of request text quoted in a message */
#define SHOW_BUF (2 * SHOW_MAX + 8)
#define WALK_DEPTH_MAX 64  /* nesting walked below a template-bearing value */
#define REL_MAX 8192       /* the path below a node or edge: "config.body.items[2]" */
#define CYCLE_TEXT_MAX 65536

/* What the first, silent pass learns about each node. */
typedef struct {
    const char *id;  /* a well-formed id, else NULL */
    size_t idlen;
    bool dup;        /* an earlier node has the same id */
    const node_kind *kind; /* its row, else NULL */
    const json_t *config; /* an object, else NULL */
} node_info;

typedef struct {
    const char *id;
    size_t len;
    int idx;
} id_entry;

/* Successors of every node: adj[head[u] .. head[u + 1]). */
typedef struct {
    size_t n;
    size_t *head;
    int *adj;
} graph;

enum { PASS_SYNTAX, PASS_REFS };

struct definition_ctx {
    json_t *details;
    size_t base;  /* entries in details before we started */
    int found;    /* problems found, including those past the cap */
    const json_t *nodes, *edges;
    size_t n;
    node_info *info;
    id_entry *ids; /* the nodes that own their id, sorted by id */
    size_t nids;
    int *pairs;    /* valid edges as (from, to) index pairs */
    size_t npairs;
    uint64_t *anc; /* ancestors of node u: words bits at anc + u * words; NULL: unknown */
    size_t words;
    int pass;
    int cur;             /* the node whose templates are walked */
    bool args;           /* {{args...}} may be used (an agent tool's http) */
    char prefix[48];     /* "definition.nodes[3]" */
    char who[2 * SHOW_BUF + 64]; /* "node \"fetch\"", or "" at the top level */
    char rel[REL_MAX];   /* the path below prefix: "config.headers" */
    size_t rellen;
};

/* ---- small helpers ---- */

static bool is_id_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

int definition_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > DEFINITION_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_id_char((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Copies request text s[0..len) into out (SHOW_BUF bytes) for a message:
 * UTF-8 characters are kept, '"' and '\\' get a backslash, control characters
 * and malformed bytes become '?', and past SHOW_MAX bytes of s it is cut at a
 * character with "...". */
static void show(char *out, size_t outlen, const char *s, size_t len)
{
    size_t i = 0, o = 0;
    while (i < len && o + 8 < outlen) {
        unsigned char ch = (unsigned char)s[i];
        size_t n = ch < 0x80 ? 1 : ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : 2;
        if (i + n > SHOW_MAX)
            break;
        if (ch >= 0x80 && i + n <= len && json_utf8_valid(s + i, n)) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
            continue;
        }
        if (ch == '"' || ch == '\\')
            out[o++] = '\\';
        out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
        i++;
    }
    out[o] = '\0';
    if (i < len)
        str_copy(out + o, outlen - o, "...");
}

/* UTF-8 characters (not bytes) of s[0..len). */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

static bool full(const definition_ctx *c)
{
    return c->found > DEFINITION_MAX_PROBLEMS;
}

static void bit_set(uint64_t *bits, size_t i)
{
    bits[i / 64] |= (uint64_t)1 << (i % 64);
}

static bool bit_get(const uint64_t *bits, size_t i)
{
    return (bits[i / 64] >> (i % 64)) & 1;
}

/* ---- problems ---- */

/* Appends {field, message} to details, keeping to the cap: the problem past
 * the cap replaces the last entry with a note that the list is cut. */
static void add(definition_ctx *c, const char *field, const char *message)
{
    c->found++;
    if (c->found == DEFINITION_MAX_PROBLEMS + 1) {
        char note[96];
        snprintf(note, sizeof(note), "too many problems: only the first %d are listed",
                 DEFINITION_MAX_PROBLEMS - 1);
        json_array_set_new(c->details, c->base + DEFINITION_MAX_PROBLEMS - 1,
                           json_pack("{s:s, s:s}", "field", "definition", "message", note));
    }
    if (c->found > DEFINITION_MAX_PROBLEMS)
        return;
    json_t *entry = json_pack("{s:s, s:s}", "field", field, "message", message);
    if (!entry) /* not UTF-8: a bug here, but the problem must not be lost */
        entry = json_pack("{s:s, s:s}", "field", "definition", "message", "invalid definition");
    json_array_append_new(c->details, entry);
}

/* Cuts an incomplete UTF-8 character off the end of s, which a bounded copy
 * may have left there. */
static void utf8_trim(char *s)
{
    size_t i = strlen(s), tail = 0;
    while (i > 0 && tail < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
        i--;
        tail++;
    }
    if (i == 0 || (unsigned char)s[i - 1] < 0xc0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    if (tail + 1 < need)
        s[i - 1] = '\0';
}

/* The path below prefix of key in the current object (c->rel), into out:
 * "rel.key", "key" when rel is empty, rel itself when key is NULL. */
static void rel_of(const definition_ctx *c, const char *key, char *out, size_t outlen)
{
    if (!key)
        str_copy(out, outlen, c->rel);
    else if (c->rellen == 0)
        str_copy(out, outlen, key);
    else
        snprintf(out, outlen, "%s.%s", c->rel, key);
}

/* A problem at <prefix>.<rel>.<key> (see rel_of) with message "<who>: <text>". */
__attribute__((format(printf, 3, 4))) static void problem_at(definition_ctx *c, const char *key,
                                                             const char *fmt, ...)
{
    char rel[REL_MAX + 64], field[sizeof(rel) + 64], text[1024];
    char message[sizeof(text) + sizeof(c->who) + 2];
    va_list ap;
    if (full(c)) {
        c->found++;
        return;
    }
    rel_of(c, key, rel, sizeof(rel));
    if (rel[0])
        snprintf(field, sizeof(field), "%s.%s", c->prefix, rel);
    else
        str_copy(field, sizeof(field), c->prefix);
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (c->who[0])
        snprintf(message, sizeof(message), "%s: %s", c->who, text);
    else
        str_copy(message, sizeof(message), text);
    utf8_trim(field);
    utf8_trim(message);
    add(c, field, message);
}

/* A problem whose message reads "<who>: <rel.key> <what>". */
void definition_bad(definition_ctx *c, const char *key, const char *what)
{
    char rel[REL_MAX + 64];
    rel_of(c, key, rel, sizeof(rel));
    if (rel[0])
        problem_at(c, key, "%s %s", rel, what);
    else
        problem_at(c, key, "%s", what);
}

/* ---- the path below the node or edge ---- */

/* Keeps what the last append wrote, n bytes after mark, when all of it fit:
 * a path too long to show is left short rather than cut inside a character. */
static void rel_grow(definition_ctx *c, size_t mark, int n)
{
    if (n < 0 || (size_t)n >= sizeof(c->rel) - mark)
        n = 0;
    c->rellen = mark + (size_t)n;
    c->rel[c->rellen] = '\0';
}

/* Appends .key (or ["key"] when key is not id-like) to c->rel; returns the
 * length to restore with rel_pop. */
size_t definition_key(definition_ctx *c, const char *key)
{
    size_t mark = c->rellen, room = sizeof(c->rel) - mark;
    int n;
    if (definition_id_valid(key, strlen(key))) {
        n = snprintf(c->rel + mark, room, "%s%s", mark ? "." : "", key);
    } else {
        char shown[SHOW_BUF];
        show(shown, sizeof(shown), key, strlen(key));
        n = snprintf(c->rel + mark, room, "[\"%s\"]", shown);
    }
    rel_grow(c, mark, n);
    return mark;
}

size_t definition_index(definition_ctx *c, size_t i)
{
    size_t mark = c->rellen, room = sizeof(c->rel) - mark;
    int n = snprintf(c->rel + mark, room, "[%zu]", i);
    rel_grow(c, mark, n);
    return mark;
}

void definition_pop(definition_ctx *c, size_t mark)
{
    c->rellen = mark;
    c->rel[mark] = '\0';
}

/* ---- typed fields ---- */

/* The value of a required key, or NULL after a problem (null counts as missing). */
const json_t *definition_need(definition_ctx *c, const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        definition_bad(c, key, "is required");
        return NULL;
    }
    return v;
}

/* Like need, but null is a value (for "any JSON" keys). */
const json_t *definition_need_any(definition_ctx *c, const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        definition_bad(c, key, "is required");
    return v;
}

/* An integer in [min, max]: required or optional. */
void definition_int(definition_ctx *c, const json_t *o, const char *key, bool required,
                    json_int_t min, json_int_t max)
{
    const json_t *v = required ? definition_need(c, o, key) : json_object_get(o, key);
    char what[96];
    if (!v)
        return;
    if (json_is_integer(v) && json_integer_value(v) >= min && json_integer_value(v) <= max)
        return;
    snprintf(what, sizeof(what), "must be an integer from %lld to %lld", (long long)min,
             (long long)max);
    definition_bad(c, key, what);
}

/* A string of min..max UTF-8 characters; returns it, or NULL when absent or bad. */
const json_t *definition_string(definition_ctx *c, const json_t *o, const char *key,
                                bool required, size_t min, size_t max)
{
    const json_t *v = required ? definition_need(c, o, key) : json_object_get(o, key);
    char what[96];
    if (!v)
        return NULL;
    if (!json_is_string(v)) {
        definition_bad(c, key, "must be a string");
        return NULL;
    }
    size_t n = utf8_chars(json_string_value(v), json_string_length(v));
    if (n >= min && n <= max)
        return v;
    if (n == 0)
        str_copy(what, sizeof(what), "must not be empty");
    else if (min == 0)
        snprintf(what, sizeof(what), "must be at most %zu characters", max);
    else
        snprintf(what, sizeof(what), "must be %zu to %zu characters", min, max);
    definition_bad(c, key, what);
    return NULL;
}

/* A string among names (NULL-terminated); returns its index or -1. */
void definition_credential(definition_ctx *c, const json_t *conf)
{
    const json_t *v = json_object_get(conf, "credentialId");
    if (v && !ids_uuid_ok(json_string_value(v)))
        definition_bad(c, "credentialId", "must be a credential id");
}

int definition_enum(definition_ctx *c, const json_t *o, const char *key, bool required,
                    const char *const *names)
{
    const json_t *v = required ? definition_need(c, o, key) : json_object_get(o, key);
    char what[256] = "must be one of";
    size_t len = strlen(what);
    if (!v)
        return -1;
    if (json_is_string(v))
        for (int i = 0; names[i]; i++)
            if (strcmp(json_string_value(v), names[i]) == 0)
                return i;
    for (int i = 0; names[i] && len < sizeof(what); i++)
        len += (size_t)snprintf(what + len, sizeof(what) - len, "%s %s", i ? "," : "", names[i]);
    definition_bad(c, key, what);
    return -1;
}

/* ---- templates ---- */

/* Finds the node that owns id s[0..len), or -1. */
static int lookup(const definition_ctx *c, const char *s, size_t len)
{
    size_t lo = 0, hi = c->nids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const id_entry *e = &c->ids[mid];
        int d = memcmp(s, e->id, len < e->len ? len : e->len);
        if (d == 0)
            d = len < e->len ? -1 : len > e->len;
        if (d == 0)
            return e->idx;
        if (d < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

/* A {{nodes.X.output...}} in node c->cur: X must exist and run before it. */
static void check_ref(definition_ctx *c, const template_ref *r)
{
    const node_info *self = &c->info[c->cur];
    char id[SHOW_BUF];
    int x = lookup(c, r->node.p, r->node.len);
    show(id, sizeof(id), r->node.p, r->node.len);
    if (x < 0)
        problem_at(c, NULL, "template refers to \"%s\", which is not a node", id);
    else if (x == c->cur)
        problem_at(c, NULL, "template refers to the node's own output");
    else if (c->anc && self->id && !self->dup &&
             !bit_get(c->anc + (size_t)c->cur * c->words, (size_t)x))
        problem_at(c, NULL, "template refers to \"%s\", which does not run before \"%s\"", id,
                   self->id);
}

/* One template string at c->rel: its syntax in the first pass, its node
 * references in the second. */
static void visit_string(definition_ctx *c, const json_t *v)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v), pos = 0;
    template_ref ref;
    char err[384];
    int r;
    while ((r = template_next(s, len, &pos, &ref, err, sizeof(err))) == 1) {
        if (c->pass == PASS_REFS && ref.root == TEMPLATE_NODES)
            check_ref(c, &ref);
        if (c->pass == PASS_SYNTAX && ref.root == TEMPLATE_ARGS && !c->args) {
            problem_at(c, NULL, "invalid template: {{args...}} is only for an agent tool's http");
            return;
        }
    }
    if (r < 0 && c->pass == PASS_SYNTAX)
        problem_at(c, NULL, "invalid template: %s", err);
}

/* Every string at any depth of v (at c->rel) is a template. */
static void walk(definition_ctx *c, const json_t *v, int depth)
{
    if (json_is_string(v)) {
        visit_string(c, v);
        return;
    }
    if (!json_is_array(v) && !json_is_object(v))
        return;
    if (depth >= WALK_DEPTH_MAX) {
        if (c->pass == PASS_SYNTAX)
            definition_bad(c, NULL, "is nested too deeply");
        return;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v) && !full(c); i++) {
            size_t mark = definition_index(c, i);
            walk(c, json_array_get(v, i), depth + 1);
            definition_pop(c, mark);
        }
        return;
    }
    const char *key;
    json_t *item;
    /* jansson's iteration takes a non-const object; it does not change it. */
    json_object_foreach((json_t *)v, key, item) {
        if (full(c))
            break;
        size_t mark = definition_key(c, key);
        walk(c, item, depth + 1);
        definition_pop(c, mark);
    }
}

/* Walks o[key] when present. */
void definition_walk_key(definition_ctx *c, const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        return;
    size_t mark = definition_key(c, key);
    walk(c, v, 0);
    definition_pop(c, mark);
}

void definition_args(definition_ctx *c, bool ok)
{
    c->args = ok;
}

/* Walks o[key] only when it is a string (its type is checked elsewhere). */
void definition_walk_string(definition_ctx *c, const json_t *o, const char *key)
{
    if (json_is_string(json_object_get(o, key)))
        definition_walk_key(c, o, key);
}

/* ---- nodes ---- */

static int id_cmp(const void *pa, const void *pb)
{
    const id_entry *a = pa, *b = pb;
    int d = memcmp(a->id, b->id, a->len < b->len ? a->len : b->len);
    if (d == 0)
        d = (a->len > b->len) - (a->len < b->len);
    return d ? d : a->idx - b->idx;
}

/* First, silent pass: what each node is, and which node owns each id (the
 * first one holding it). */
static void index_nodes(definition_ctx *c)
{
    c->info = xcalloc(c->n + 1, sizeof(*c->info));
    c->ids = xcalloc(c->n + 1, sizeof(*c->ids));
    size_t all = 0;
    for (size_t i = 0; i < c->n; i++) {
        const json_t *node = json_array_get(c->nodes, i);
        node_info *in = &c->info[i];
        const json_t *id = json_object_get(node, "id"), *type = json_object_get(node, "type");
        const json_t *config = json_object_get(node, "config");
        if (json_is_string(id) && definition_id_valid(json_string_value(id), json_string_length(id))) {
            in->id = json_string_value(id);
            in->idlen = json_string_length(id);
            c->ids[all++] = (id_entry){in->id, in->idlen, (int)i};
        }
        int k = json_is_string(type)
                    ? node_kind_find(json_string_value(type), json_string_length(type))
                    : -1;
        in->kind = k >= 0 ? &node_kinds[k] : NULL;
        in->config = json_is_object(config) ? config : NULL;
    }
    qsort(c->ids, all, sizeof(*c->ids), id_cmp);
    for (size_t k = 0; k < all; k++) {
        if (c->nids && c->ids[c->nids - 1].len == c->ids[k].len &&
            memcmp(c->ids[c->nids - 1].id, c->ids[k].id, c->ids[k].len) == 0)
            c->info[c->ids[k].idx].dup = true;
        else
            c->ids[c->nids++] = c->ids[k];
    }
}

/* Sets the prefix and name used by the problems of node i. */
static void node_context(definition_ctx *c, size_t i)
{
    snprintf(c->prefix, sizeof(c->prefix), "definition.nodes[%zu]", i);
    if (c->info[i].id)
        snprintf(c->who, sizeof(c->who), "node \"%s\"", c->info[i].id);
    else
        snprintf(c->who, sizeof(c->who), "node %zu", i);
    definition_pop(c, 0);
}

static void check_id(definition_ctx *c, const json_t *node, const node_info *in)
{
    const json_t *v = definition_need(c, node, "id");
    if (!v)
        return;
    if (!json_is_string(v))
        definition_bad(c, "id", "must be a string");
    else if (!in->id)
        definition_bad(c, "id", "must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -");
    else if (in->dup)
        problem_at(c, "id", "duplicate id");
}

static void check_type_and_config(definition_ctx *c, const json_t *node, const node_info *in)
{
    const json_t *type = definition_need(c, node, "type");
    const json_t *config = definition_need(c, node, "config");
    if (type && !in->kind) {
        char shown[SHOW_BUF], names[256];
        if (json_is_string(type)) {
            show(shown, sizeof(shown), json_string_value(type), json_string_length(type));
            node_kind_names(names, sizeof(names), false);
            problem_at(c, "type", "unknown type \"%s\": use %s", shown, names);
        } else {
            definition_bad(c, "type", "must be a string");
        }
    }
    if (config && !in->config)
        definition_bad(c, "config", "must be an object");
    if (!in->kind || !in->config)
        return;
    size_t mark = definition_key(c, "config");
    in->kind->check(c, in->config);
    if (in->kind->templates)
        in->kind->templates(c, in->config);
    definition_pop(c, mark);
}

static void check_retry(definition_ctx *c, const json_t *node)
{
    const json_t *retry = json_object_get(node, "retry");
    if (!retry)
        return;
    if (!json_is_object(retry)) {
        definition_bad(c, "retry", "must be an object");
        return;
    }
    size_t mark = definition_key(c, "retry");
    definition_int(c, retry, "maxAttempts", false, 1, 10);
    definition_int(c, retry, "backoffMs", false, 0, 600000);
    definition_pop(c, mark);
}

static void check_node(definition_ctx *c, size_t i)
{
    const json_t *node = json_array_get(c->nodes, i);
    node_context(c, i);
    if (!json_is_object(node)) {
        definition_bad(c, NULL, "must be an object");
        return;
    }
    check_id(c, node, &c->info[i]);
    check_type_and_config(c, node, &c->info[i]);
    definition_string(c, node, "name", false, 0, DEFINITION_NAME_MAX);
    check_retry(c, node);
    definition_int(c, node, "timeoutMs", false, 1, 3600000);
}

/* ---- edges ---- */

static void edge_context(definition_ctx *c, size_t j, const json_t *e)
{
    const json_t *from = json_object_get(e, "from"), *to = json_object_get(e, "to");
    snprintf(c->prefix, sizeof(c->prefix), "definition.edges[%zu]", j);
    if (json_is_string(from) && json_is_string(to)) {
        char a[SHOW_BUF], b[SHOW_BUF];
        show(a, sizeof(a), json_string_value(from), json_string_length(from));
        show(b, sizeof(b), json_string_value(to), json_string_length(to));
        snprintf(c->who, sizeof(c->who), "edge %zu (\"%s\" -> \"%s\")", j, a, b);
    } else {
        snprintf(c->who, sizeof(c->who), "edge %zu", j);
    }
    definition_pop(c, 0);
}

/* The node named by e[key], or -1 after a problem. */
static int edge_end(definition_ctx *c, const json_t *e, const char *key)
{
    const json_t *v = definition_need(c, e, key);
    if (!v)
        return -1;
    if (!json_is_string(v)) {
        definition_bad(c, key, "must be a string");
        return -1;
    }
    int x = lookup(c, json_string_value(v), json_string_length(v));
    if (x < 0) {
        char shown[SHOW_BUF];
        show(shown, sizeof(shown), json_string_value(v), json_string_length(v));
        problem_at(c, key, "unknown node \"%s\"", shown);
    }
    return x;
}

static void check_when(definition_ctx *c, const json_t *e, int from)
{
    const json_t *when = json_object_get(e, "when");
    if (!when)
        return;
    if (!json_is_boolean(when)) {
        definition_bad(c, "when", "must be true or false");
        return;
    }
    const node_info *in = from >= 0 ? &c->info[from] : NULL;
    if (in && in->kind && !in->kind->branch) {
        char names[256];
        node_kind_names(names, sizeof(names), true);
        problem_at(c, "when", "when is only allowed on edges leaving a %s node (\"%s\" is %s)",
                   names, in->id, in->kind->name);
    }
}

/* Checks edge j; a valid one joins c->pairs. pairbits marks the (from, to)
 * pairs seen so far. */
static void check_edge(definition_ctx *c, size_t j, uint64_t *pairbits)
{
    const json_t *e = json_array_get(c->edges, j);
    edge_context(c, j, e);
    if (!json_is_object(e)) {
        definition_bad(c, NULL, "must be an object");
        return;
    }
    int from = edge_end(c, e, "from");
    int to = edge_end(c, e, "to");
    check_when(c, e, from);
    if (from < 0 || to < 0)
        return;
    size_t pair = (size_t)from * c->n + (size_t)to;
    if (from == to) {
        problem_at(c, "to", "an edge cannot lead from a node to itself");
    } else if (bit_get(pairbits, pair)) {
        problem_at(c, NULL, "repeats an earlier edge with the same from and to");
    } else {
        bit_set(pairbits, pair);
        c->pairs[2 * c->npairs] = from;
        c->pairs[2 * c->npairs + 1] = to;
        c->npairs++;
    }
}

static void check_edges(definition_ctx *c)
{
    size_t m = json_array_size(c->edges);
    uint64_t *pairbits = xcalloc((c->n * c->n) / 64 + 1, sizeof(uint64_t));
    c->pairs = xcalloc(2 * m + 1, sizeof(int));
    for (size_t j = 0; j < m && !full(c); j++)
        check_edge(c, j, pairbits);
    free(pairbits);
}

/* ---- the graph ---- */

static void graph_build(graph *g, size_t n, const int *pairs, size_t npairs)
{
    g->n = n;
    g->head = xcalloc(n + 2, sizeof(*g->head));
    g->adj = xcalloc(npairs + 1, sizeof(*g->adj));
    for (size_t k = 0; k < npairs; k++)
        g->head[pairs[2 * k] + 2]++;
    for (size_t u = 0; u < n; u++)
        g->head[u + 2] += g->head[u + 1];
    /* head[u + 1] is now where u's successors start; filling moves it to u's end. */
    for (size_t k = 0; k < npairs; k++)
        g->adj[g->head[pairs[2 * k] + 1]++] = pairs[2 * k + 1];
}

static void graph_free(graph *g)
{
    free(g->head);
    free(g->adj);
    g->head = NULL;
    g->adj = NULL;
}

enum { WHITE, GRAY, BLACK };

/* Depth-first search over g with an explicit stack (no recursion). Returns 0
 * and fills topo[0..n) with the nodes in topological order when there is no
 * cycle; otherwise returns the number k of nodes on the first cycle met, in
 * order, in cycle[0..k). */
static size_t graph_search(const graph *g, int *topo, int *cycle)
{
    size_t n = g->n, sp = 0, filled = n, k = 0;
    unsigned char *color = xcalloc(n + 1, 1);
    size_t *next = xcalloc(n + 1, sizeof(*next)), *at = xcalloc(n + 1, sizeof(*at));
    int *stack = xcalloc(n + 1, sizeof(*stack));
    for (size_t s = 0; s < n && k == 0; s++) {
        if (color[s] != WHITE)
            continue;
        color[s] = GRAY;
        next[s] = g->head[s];
        at[s] = sp;
        stack[sp++] = (int)s;
        while (sp && k == 0) {
            int u = stack[sp - 1];
            if (next[u] == g->head[u + 1]) {
                color[u] = BLACK;
                topo[--filled] = u;
                sp--;
                continue;
            }
            int v = g->adj[next[u]++];
            if (color[v] == GRAY) {
                k = sp - at[v];
                memcpy(cycle, stack + at[v], k * sizeof(*cycle));
            } else if (color[v] == WHITE) {
                color[v] = GRAY;
                next[v] = g->head[v];
                at[v] = sp;
                stack[sp++] = v;
            }
        }
    }
    free(color);
    free(next);
    free(at);
    free(stack);
    return k;
}

static void report_cycle(definition_ctx *c, const int *cycle, size_t k)
{
    buf b;
    buf_init(&b, CYCLE_TEXT_MAX);
    buf_puts(&b, "cycle: ");
    for (size_t i = 0; i <= k; i++) {
        const node_info *in = &c->info[cycle[i % k]];
        if ((i && buf_puts(&b, " -> ") < 0) || buf_append(&b, in->id, in->idlen) < 0)
            break;
    }
    add(c, "definition.edges", b.data);
    buf_free(&b);
}

/* Ancestor bitsets: walking in topological order, every predecessor's set is
 * complete before it is merged into its successors. */
static void compute_ancestors(definition_ctx *c, const graph *g, const int *topo)
{
    size_t w = (g->n + 63) / 64;
    c->words = w;
    c->anc = xcalloc(g->n * w + 1, sizeof(uint64_t));
    for (size_t k = 0; k < g->n; k++) {
        size_t u = (size_t)topo[k];
        for (size_t e = g->head[u]; e < g->head[u + 1]; e++) {
            uint64_t *dst = c->anc + (size_t)g->adj[e] * w;
            const uint64_t *src = c->anc + u * w;
            for (size_t i = 0; i < w; i++)
                dst[i] |= src[i];
            bit_set(dst, u);
        }
    }
}

static void check_graph(definition_ctx *c)
{
    graph g;
    int *topo = xcalloc(c->n + 1, sizeof(int)), *cycle = xcalloc(c->n + 1, sizeof(int));
    graph_build(&g, c->n, c->pairs, c->npairs);
    size_t k = graph_search(&g, topo, cycle);
    if (k)
        report_cycle(c, cycle, k);
    else
        compute_ancestors(c, &g, topo);
    graph_free(&g);
    free(topo);
    free(cycle);
}

/* Last pass: the node references in every node's templates. */
static void check_refs(definition_ctx *c)
{
    c->pass = PASS_REFS;
    for (size_t i = 0; i < c->n && !full(c); i++) {
        const node_info *in = &c->info[i];
        if (!in->kind || !in->config || !in->kind->templates)
            continue;
        node_context(c, i);
        c->cur = (int)i;
        size_t mark = definition_key(c, "config");
        in->kind->templates(c, in->config);
        definition_pop(c, mark);
    }
}

/* ---- top level ---- */

/* Checks the definition's own shape; 0 when its nodes can be checked. */
static int check_top(definition_ctx *c, const json_t *def)
{
    int ok = 0;
    str_copy(c->prefix, sizeof(c->prefix), "definition");
    if (!json_is_object(def)) {
        definition_bad(c, NULL, "definition must be an object");
        return -1;
    }
    c->nodes = definition_need(c, def, "nodes");
    if (c->nodes && !json_is_array(c->nodes)) {
        definition_bad(c, "nodes", "must be an array");
        c->nodes = NULL;
    } else if (json_array_size(c->nodes) > DEFINITION_MAX_NODES) {
        definition_bad(c, "nodes", "must hold at most 500 nodes");
        ok = -1;
    }
    c->edges = json_object_get(def, "edges");
    if (c->edges && !json_is_array(c->edges)) {
        definition_bad(c, "edges", "must be an array");
        c->edges = NULL;
    } else if (json_array_size(c->edges) > DEFINITION_MAX_EDGES) {
        definition_bad(c, "edges", "must hold at most 5000 edges");
        ok = -1;
    }
    return c->nodes ? ok : -1;
}

int definition_validate(const json_t *def, json_t *details)
{
    definition_ctx *c = xcalloc(1, sizeof(*c));
    c->details = details;
    c->base = json_array_size(details);
    if (check_top(c, def) == 0) {
        c->n = json_array_size(c->nodes);
        index_nodes(c);
        c->pass = PASS_SYNTAX;
        for (size_t i = 0; i < c->n && !full(c); i++)
            check_node(c, i);
        check_edges(c);
        if (!full(c))
            check_graph(c);
        check_refs(c);
    }
    int out = c->found < DEFINITION_MAX_PROBLEMS ? c->found : DEFINITION_MAX_PROBLEMS;
    free(c->info);
    free(c->ids);
    free(c->pairs);
    free(c->anc);
    free(c);
    return out;
}
