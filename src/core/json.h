/*
 * json.h - checks and helpers around jansson for request bodies.
 */
#ifndef AOP_CORE_JSON_H
#define AOP_CORE_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

#define JSON_MAX_DEPTH 64

/* 1 when p[0..n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int json_utf8_valid(const char *p, size_t n);

/* Appends p[0..n) to b with each byte that is not part of well-formed UTF-8
 * written as U+FFFD. 0, or -1 when b would pass its maximum. */
int json_utf8_lossy(buf *b, const char *p, size_t n);

/* p[0..n) as a JSON string (a new reference): bytes that are not UTF-8
 * become U+FFFD, so the value always encodes. */
json_t *json_string_lossy(const char *p, size_t n);

/* Deepest nesting of arrays and objects in the text (strings are skipped).
 * Stops counting once past limit and returns limit + 1. */
int json_depth(const char *p, size_t n, int limit);

/* Parses a request body: UTF-8, nesting at most JSON_MAX_DEPTH, no duplicate
 * keys, any JSON value. On failure returns AOP_ERR_INVALID_JSON with a short
 * client-safe reason in why. *out is a new reference the caller decrefs. */
aop_err json_parse_body(const char *p, size_t n, json_t **out, char *why, size_t whylen);

/* {"data": data (taken), "pagination": {page, limit, total, totalPages}},
 * the contract's list shape. limit must be >= 1. */
json_t *json_list_page(json_t *data, long long page, long long limit, long long total);

#endif
