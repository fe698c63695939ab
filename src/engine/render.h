/*
 * render.h - fills the placeholders of template.h into JSON values, within
 * a byte budget.
 *
 * Pure: every function reads its arguments and returns a new value; nothing
 * is kept between calls. The syntax and the walking rules are in template.h.
 *
 * - A string that is exactly one placeholder becomes the value it refers to,
 *   shared (json_incref), not copied; json null when the path leads nowhere.
 *   Numbers, objects and null keep their type.
 * - Any other string stays a string, each placeholder replaced by text: a
 *   string as its raw UTF-8, null (or a path leading nowhere) as "null", a
 *   number, boolean, object or array as compact JSON (keys in insertion
 *   order). A string without placeholders is copied unchanged.
 * - Text longer than RENDER_MAX_BYTES is an error, placeholders or not.
 * - Object keys are never rendered.
 * - A string with an {{args...}} placeholder is copied unrendered when the
 *   scope has no args (an agent's config before its tools are called).
 *
 * The budget. A render measures before it copies: everything the result's
 * JSON text (json.h's sizes) would hold counts against b->max as the walk
 * reaches it, text while it is built, a shared value by the size of its
 * text (measured by json_size_within, so no further than what is left of
 * the budget: a value whose shared parts repeat costs time in proportion to
 * the budget, never to its text), and the literal structure around them. A
 * render that would pass the budget stops, with b->over set, before taking
 * more than what was left (a string of text is built once in a buffer and
 * once as the value, so it briefly takes twice its size). On success b->used
 * has grown by exactly the size of the result's JSON text.
 *
 * Sharing. The result may hold the scope's values (the input, node outputs)
 * themselves: treat it as read-only, as the scope is. Those values belong
 * to one execution, so to one thread; the literal values of v, which other
 * threads may share (a cached definition), are copied, never shared.
 *
 * Errors are short, ASCII and client-safe: "template: <what the scanner
 * said>", "rendered string is longer than 1048576 bytes", "rendered value is
 * larger than its budget of <max> bytes" (with b->over set), "string is not
 * valid UTF-8", "out of memory".
 */
#ifndef AOP_ENGINE_RENDER_H
#define AOP_ENGINE_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine/template.h"

typedef struct {
    const json_t *input; /* the execution's input (may be NULL: treated as null) */
    /* The output of node id[0..len), borrowed, or NULL when that node has none
     * (not run, skipped). May itself be NULL: then no node has an output. */
    const json_t *(*node_output)(void *ctx, const char *id, size_t len);
    void *ctx;
    /* An agent tool's arguments for {{args...}} (NULL: none). Without them,
     * a string holding an args placeholder is copied as it is, to be
     * rendered when the tool is called. */
    const json_t *args;
} render_scope;

/* What renders may take, shared by the renders given it. */
typedef struct {
    size_t max;  /* bytes of JSON text the results may hold in all */
    size_t used; /* taken so far (start it at 0); meaningless after a failure */
    bool over;   /* set by a render that stopped because it would pass max */
} render_budget;

#define RENDER_MAX_BYTES (1024 * 1024) /* a rendered string longer than this is an error */

/* A new value (caller decrefs): v (borrowed; NULL renders as json null) with
 * every string at any depth rendered, its size taken from b. NULL with a
 * message in err (errlen bytes; may be NULL/0) on error. */
json_t *render_value(const json_t *v, const render_scope *sc, render_budget *b, char *err,
                     size_t errlen);

/* Renders s[0..len) as described above: a new value (caller decrefs), or NULL
 * with a message in err. s need not be NUL-terminated. */
json_t *render_string(const char *s, size_t len, const render_scope *sc, render_budget *b,
                      char *err, size_t errlen);

/* The value ref refers to (borrowed from the scope), or NULL when the path
 * leads nowhere: a missing key, an index past the end, a segment below a
 * string, number, boolean or null, an input or node output that is absent. */
const json_t *render_lookup(const template_ref *ref, const render_scope *sc);

#endif
