/*
 * definition.h - validation of a workflow definition (the "definition" field of
 * POST/PUT /api/workflows). Pure: reads the JSON, appends problems, keeps nothing.
 *
 * Shape: {"nodes": [node...], "edges": [edge...]}. Unknown keys are ignored at
 * every level (top, node, config, edge, retry): UIs keep layout data there.
 * A required key whose value is null counts as missing; an optional key that
 * is present must have the right type (null included).
 *
 * Top level
 * - definition: an object. nodes: required array of at most 500 nodes (may be
 *   empty). edges: optional array (absent = none) of at most 5000 edges. When a
 *   count is over its limit nothing else is checked.
 * Node
 * - An object. id: required, 1..64 characters of A-Z a-z 0-9 _ - (so that
 *   templates can name it), unique. type: required, the name of a node
 *   kind (kinds.h: transform, condition, http, llm, delay). name: optional
 *   string of at most 200 characters. config: required object, checked by
 *   its kind (below).
 *   retry: optional object {maxAttempts?: 1..10, backoffMs?: 0..600000}.
 *   timeoutMs: optional, 1..3600000. Every number named "integer" or given as
 *   a range here must be a JSON integer (not 1.0, not "1").
 * Config: what it must hold is its kind's to check (the row's check
 * function; the rules head each src/engine/kinds/<type>.c). Every string at
 * any depth inside the values the kind marks as templates (the row's
 * templates function) must pass template_validate (see template.h); object
 * keys are not templates.
 * Edge
 * - An object. from, to: required strings naming nodes (the first node with a
 *   duplicated id). Refused: an edge from a node to itself, a second edge with
 *   the same from and to. when: optional boolean, only on edges leaving a
 *   node whose kind branches (condition).
 * Graph
 * - No cycles. The valid edges are searched without recursion; one cycle is
 *   reported (field "definition.edges", "cycle: a -> b -> a").
 * - A template {{nodes.X.output...}} in node N's config must name a node X
 *   that runs before N: a path of edges X -> ... -> N exists. Whether X exists
 *   is always checked; whether it runs before N only when there is no cycle.
 *
 * Problems are {"field": "definition.nodes[3].config.url", "message":
 * "node \"fetch\": config.url must be a string"}: the field is the path in the
 * request body ([i] for array items, .key or ["key"] for object keys) and the
 * message names the node (by id, or by index when the id is unusable) or the
 * edge (by index, with its from and to). Node, type and structure problems
 * come in node order, then edge problems, then the cycle, then template
 * references. Text from the request is quoted in messages and fields with '"'
 * and backslash escaped, control characters as '?', and cut after 64 bytes.
 */
#ifndef AOP_ENGINE_DEFINITION_H
#define AOP_ENGINE_DEFINITION_H

#include <jansson.h>

#define DEFINITION_MAX_NODES 500
#define DEFINITION_MAX_EDGES 5000
#define DEFINITION_ID_MAX 64
#define DEFINITION_NAME_MAX 200
/* At most this many entries are appended; when there are more problems the
 * last entry becomes {"field": "definition", "message": "too many problems:
 * only the first 99 are listed"}. */
#define DEFINITION_MAX_PROBLEMS 100

/* Checks def (borrowed; anything, NULL included) and appends one
 * {"field", "message"} object per problem to the jansson array details
 * (borrowed; entries already in it are kept; NULL only counts). Returns the
 * number of entries appended: 0 when the definition is valid. */
int definition_validate(const json_t *def, json_t *details);

/* 1 when s[0..len) is a well-formed node id (1..64 of A-Z a-z 0-9 _ -). */
int definition_id_valid(const char *s, size_t len);

#endif
