/*
 * definition_int.h - what the node kinds' config checks (kinds.h: check and
 * templates) use from the definition validator (definition.c). Not for
 * other code.
 *
 * Problems name a path: the validator sets it to the node's "config"
 * before calling the kind, and definition_key / definition_index extend
 * it for nested values (undo with definition_pop). A key argument names a
 * member of the object being checked (the problem's field is
 * <path>.<key>); NULL names the value at the path itself. Messages read
 * "node \"id\": config.<key> <what>".
 */
#ifndef AOP_ENGINE_DEFINITION_INT_H
#define AOP_ENGINE_DEFINITION_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine/kinds.h"

/* A problem: "<path>.<key> <what>". */
void definition_bad(definition_ctx *c, const char *key, const char *what);

/* o[key], or NULL after a problem when it is missing or null. */
const json_t *definition_need(definition_ctx *c, const json_t *o, const char *key);
/* o[key], or NULL after a problem when it is missing (null is a value). */
const json_t *definition_need_any(definition_ctx *c, const json_t *o, const char *key);

/* o[key] is a JSON integer in [min, max] (optional: or absent). */
void definition_int(definition_ctx *c, const json_t *o, const char *key, bool required,
                    json_int_t min, json_int_t max);
/* o[key] is a string of min..max UTF-8 characters; returns it, or NULL
 * when absent or bad. */
const json_t *definition_string(definition_ctx *c, const json_t *o, const char *key,
                                bool required, size_t min, size_t max);
/* o[key] is one of names (NULL-terminated); returns its index, or -1. */
int definition_enum(definition_ctx *c, const json_t *o, const char *key, bool required,
                    const char *const *names);

/* conf.credentialId, when present, is a credential id (whose owner and
 * type the workflows service checks on save; the engine at run time). */
void definition_credential(definition_ctx *c, const json_t *conf);

/* Extends the path by .key (or ["key"]) / by [i]; return what to give
 * definition_pop to undo it. */
size_t definition_key(definition_ctx *c, const char *key);
size_t definition_index(definition_ctx *c, size_t i);
void definition_pop(definition_ctx *c, size_t mark);

/* Every string at any depth of o[key] (when present) is a template:
 * checks its syntax or its node references, as the pass requires. */
void definition_walk_key(definition_ctx *c, const json_t *o, const char *key);
/* The same for o[key] only when it is a string (its type is checked
 * elsewhere). */
void definition_walk_string(definition_ctx *c, const json_t *o, const char *key);
/* Whether the walks that follow accept {{args...}} (an agent tool's http
 * request); off unless set. */
void definition_args(definition_ctx *c, bool ok);

#endif
