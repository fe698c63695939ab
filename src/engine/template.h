/*
 * template.h - placeholders inside strings: "Hello {{ input.user.name }}!".
 *
 * Syntax
 * - A placeholder is "{{", optional spaces or tabs, a path, optional spaces or
 *   tabs, "}}". It closes at the first "}}" after its "{{". Everything outside
 *   placeholders is literal text, a "}}" that closes nothing included.
 * - There is no escape: every "{{" opens a placeholder, and a "{{" without a
 *   closing "}}" makes the whole string invalid.
 * - A path is segments separated by '.', each non-empty and made of
 *   A-Z a-z 0-9 _ -; at most TEMPLATE_MAX_SEGMENTS segments and
 *   TEMPLATE_MAX_PATH bytes (spaces around it not counted). Case matters.
 * - The path starts at one of two roots:
 *     input[.seg...]               the execution's input
 *     nodes.<id>.output[.seg...]   the output of node <id>
 *   and, in an agent tool's http request only (the validator refuses it
 *   elsewhere), at a third:
 *     args[.seg...]                the arguments the model called the tool with
 *   Anything else is an error.
 *
 * Rendering (done by the engine): the segments from seg[rest] on walk down
 * from the root value. On an array, a segment of digits only is a 0-based
 * index (template_seg_index); on an object, every segment is a key. A path that
 * leads nowhere renders null. A string that is exactly one placeholder
 * (template_is_whole) takes the JSON value itself; otherwise each placeholder
 * is replaced by the value's text inside the string.
 *
 * Nothing here allocates or keeps state: spans point into the caller's string.
 * Error messages are short, ASCII, client-safe and quote only path text.
 */
#ifndef AOP_ENGINE_TEMPLATE_H
#define AOP_ENGINE_TEMPLATE_H

#include <stddef.h>

#define TEMPLATE_MAX_SEGMENTS 32
#define TEMPLATE_MAX_PATH 256

typedef enum {
    TEMPLATE_INPUT, /* input[.seg...] */
    TEMPLATE_NODES, /* nodes.<id>.output[.seg...] */
    TEMPLATE_ARGS,  /* args[.seg...]: an agent tool's arguments */
} template_root;

/* len bytes at p; p points into the scanned string (not NUL-terminated). */
typedef struct {
    const char *p;
    size_t len;
} template_span;

/* One placeholder found by template_next. */
typedef struct {
    size_t start, end;  /* s[start..end) is the whole "{{ ... }}" */
    template_root root;
    template_span node; /* TEMPLATE_NODES: the node id (seg[1]); else {NULL, 0} */
    size_t nseg;        /* segments in seg[], the root ones included */
    size_t rest;        /* index in seg[] of the first segment below the root value:
                           1 for input and args, 3 for nodes.<id>.output (== nseg
                           when none) */
    template_span seg[TEMPLATE_MAX_SEGMENTS];
} template_ref;

/* Finds the next placeholder of s[0..len) at or after *pos.
 * Returns 1 when found: *ref describes it and *pos moves to ref->end, so
 * s[old *pos .. ref->start) is literal text before it.
 * Returns 0 when there is none left: *pos becomes len.
 * Returns -1 when the next placeholder is malformed: a message goes into
 * err (errlen bytes, may be NULL/0), ref->start is the offending "{{" and
 * ref->end the end of what was examined; *pos does not move. */
int template_next(const char *s, size_t len, size_t *pos, template_ref *ref, char *err,
                  size_t errlen);

/* 0 when every placeholder in s[0..len) is well formed, else -1 with a
 * message in err (may be NULL/0). */
int template_validate(const char *s, size_t len, char *err, size_t errlen);

/* 1 when s[0..len) is exactly one valid placeholder and nothing else (not even
 * spaces outside the braces), filling *ref when ref is not NULL; 0 otherwise. */
int template_is_whole(const char *s, size_t len, template_ref *ref);

/* 1 when seg is digits only and fits a size_t, storing the value in *index;
 * 0 otherwise (then the segment can only be an object key). */
int template_seg_index(template_span seg, size_t *index);

#endif
