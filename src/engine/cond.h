/*
 * cond.h - the comparison a condition node makes. Pure.
 *
 * Operands are JSON values; a NULL pointer means json null.
 *
 * Numbers compare by value whether integer or real: 1 == 1.0, and a large
 * integer is compared exactly against a real (no rounding through double).
 *
 * - eq, ne: deep JSON equality, with the number rule at every depth. Objects
 *   are equal when they have the same keys with equal values (order does not
 *   matter); arrays when they have the same length and equal items in order;
 *   strings when their bytes are equal. Values of different types are never
 *   equal, so ne of mismatched types is true. ne is exactly "not eq".
 * - gt, gte, lt, lte: two numbers compare numerically; two strings compare
 *   byte-wise (UTF-8 byte order is code point order; a proper prefix is
 *   less). Anything else (mismatched types, booleans, null, objects, arrays)
 *   is false.
 * - contains: string left, string right: right is a substring of left (the
 *   empty string is in every string). Array left: some item equals right
 *   (deep, number rule; right may be null). Object left, string right: left
 *   has that key. Anything else is false.
 * - exists: left is present and not json null; right is ignored.
 *
 * Ops are lowercase and exact.
 */
#ifndef AOP_ENGINE_COND_H
#define AOP_ENGINE_COND_H

#include <jansson.h>
#include <stdbool.h>

/* op one of eq ne gt gte lt lte contains exists. Returns 0 and sets *result,
 * or -1 for an unknown (or NULL) op, leaving *result false. left and right are
 * borrowed. */
int cond_eval(const char *op, const json_t *left, const json_t *right, bool *result);

#endif
