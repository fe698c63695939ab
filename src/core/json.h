/*
 * json.h - checks and helpers around jansson: request bodies, and the size
 * of a value's JSON text measured without building it whole.
 *
 * Sizes are those of jansson's compact encoding (JSON_COMPACT |
 * JSON_ENCODE_ANY, keys in insertion order), the text the engine stores.
 * A value may share parts (one value referenced from several places, as
 * rendered templates do): its text then repeats them, and can be far
 * larger than the memory it takes. The measuring helpers stop as soon as
 * the text passes their limit, so they take time in proportion to the
 * limit, never to such a text.
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

/* Where the value of member key of the object in p[0..n) is, without
 * parsing the rest: *val and *vlen, or -1 when p is not an object or has no
 * such member at its top level. p must be well-formed JSON (as jansson
 * writes it); key is compared byte for byte with the member's name as
 * written (a name with escapes never matches). */
int json_member_text(const char *p, size_t n, const char *key, const char **val, size_t *vlen);

/*
 * Members of an object written straight into b as jansson's compact
 * encoding writes them: ,"key":value (no comma when first). NULL strings
 * and raw texts are null; a raw text is copied as it is (JSON the caller
 * trusts, such as what jansson wrote before); reals as jansson prints
 * them. Each returns 0, or -1 when b would pass its maximum.
 */
int json_put_str(buf *b, const char *key, const char *v, int first);
int json_put_int(buf *b, const char *key, long long v, int first);
int json_put_real(buf *b, const char *key, double v, int first);
int json_put_raw(buf *b, const char *key, const char *text, int first);

/* Parses a request body: UTF-8, nesting at most JSON_MAX_DEPTH, no duplicate
 * keys, any JSON value. On failure returns AOP_ERR_INVALID_JSON with a short
 * client-safe reason in why. *out is a new reference the caller decrefs. */
aop_err json_parse_body(const char *p, size_t n, json_t **out, char *why, size_t whylen);

/* {"data": data (taken), "pagination": {page, limit, total, totalPages}},
 * the contract's list shape. limit must be >= 1. */
json_t *json_list_page(json_t *data, long long page, long long limit, long long total);

/* The size of s[0..len) (valid UTF-8) encoded as a JSON string, quotes
 * included: '"', '\\' and \b \f \n \r \t take two bytes, other control
 * characters six, everything else is copied. */
size_t json_string_size(const char *s, size_t len);

/* The size of v's JSON text when it is at most max (< SIZE_MAX) bytes, else
 * max + 1; visits no more of v than the first max + 1 bytes of its text
 * hold. v must be free of cycles (jansson's values always are unless built
 * into themselves) with strings of valid UTF-8, as jansson makes them. */
size_t json_size_within(const json_t *v, size_t max);

/* Appends v's JSON text to b; -1 when b's maximum would be passed (b then
 * holds part of it: the caller drops it) or v cannot be encoded. */
int json_dump_buf(const json_t *v, buf *b);

/* v's JSON text (malloc'd, NUL-terminated; its length in *len) when it is
 * at most max bytes; else NULL, without ever holding more than max bytes. */
char *json_dumps_within(const json_t *v, size_t max, size_t *len);

/* Compact JSON text of v (taken, may be NULL) into *json (from a), its
 * length in *len: AOP_OK, or AOP_ERR_INTERNAL when v is NULL or cannot be
 * encoded. What services hand their handlers. */
aop_err json_dump_arena(json_t *v, char **json, size_t *len, arena *a);

#endif
