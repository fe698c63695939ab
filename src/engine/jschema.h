/*
 * jschema.h - the subset of JSON Schema that agent tools' `parameters` may
 * use, checked without a library: Debian 12 packages no maintained C JSON
 * Schema validator that fits (the ones there are unmaintained, pull in a
 * second JSON library, or load remote references), and tools need little.
 *
 * Keywords checked: type (one of object, array, string, number, integer,
 * boolean, null, or an array of them), properties, required,
 * additionalProperties (a boolean only), enum, items (one schema),
 * minLength, maxLength, minimum, maximum, minItems, maxItems. Other
 * keywords (description, title, default, examples, format, ...) are
 * accepted and ignored; a schema using a keyword that changes what is
 * valid but is not in the subset ($ref, anyOf, oneOf, allOf, not, pattern,
 * const, ...) is refused when the workflow is saved, so that no argument
 * is ever passed on unchecked. Numbers follow the condition rule (cond.h):
 * 1 and 1.0 are the same value, and "integer" accepts 1.0.
 *
 * Pure; schemas nest at most JSCHEMA_MAX_DEPTH deep.
 */
#ifndef AOP_ENGINE_JSCHEMA_H
#define AOP_ENGINE_JSCHEMA_H

#include <jansson.h>
#include <stddef.h>

#define JSCHEMA_MAX_DEPTH 32

/* Whether schema (borrowed) is one of the subset: 0, or -1 with the first
 * problem in why ("properties.city.type: ..."). */
int jschema_check(const json_t *schema, char *why, size_t whylen);

/* Whether v is valid against schema (both borrowed; schema passed
 * jschema_check): 0, or -1 with the first problem in why, naming where it
 * is ("city: must be a string", "(root): missing required property \"q\""). */
int jschema_validate(const json_t *schema, const json_t *v, char *why, size_t whylen);

#endif
