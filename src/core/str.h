/*
 * str.h - bounded string helpers (the banned strcpy/atoi family's
 * replacements) and UTF-8 text measures.
 */
#ifndef AOP_CORE_STR_H
#define AOP_CORE_STR_H

#include <stddef.h>

#include "core/mem.h"

/* Bounded copy: always NUL-terminates; returns the length of src. */
size_t str_copy(char *dst, size_t dstsize, const char *src);
/* Strict base-10 parse of a whole string into [min, max]; 0 on success, -1 otherwise. */
int str_to_ll(const char *s, long long min, long long max, long long *out);
/* The n strings parts[] one after the other in dst (cut to fit dstsize,
 * NUL-terminated when dstsize > 0): snprintf's "%s%s..." at a tenth of its
 * cost, for the paths every request takes. The whole length, as snprintf. */
size_t str_cat(char *dst, size_t dstsize, int n, const char *const *parts);
#define STR_CAT(dst, dstsize, ...)                                                              \
    str_cat(dst, dstsize, (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)), \
            (const char *[]){__VA_ARGS__})
#define STR_LL_MAX 21 /* "-9223372036854775808" and the NUL */
/* The decimal text of v in out; its length. */
size_t str_from_ll(char out[STR_LL_MAX], long long v);
/* 1 when s looks like an email address: one '@' with a non-empty local part, a
 * domain with a dot inside it, no spaces or control characters, at most 254 bytes. */
int str_is_email(const char *s);
/* Lowercases ASCII letters in place; returns s. */
char *str_lower(char *s);
/* Characters (not bytes) in UTF-8 text: the bytes that do not continue one. */
size_t str_utf8_len(const char *s);
/* Bytes of s's first max UTF-8 characters (all of s when shorter). */
size_t str_utf8_prefix(const char *s, size_t max);
/* Bytes of the longest prefix of s[0..len) that is at most max bytes and
 * does not end inside a UTF-8 character (len when it fits). */
size_t str_utf8_cut(const char *s, size_t len, size_t max);
/* A lowercased copy of UTF-8 text s in the arena: every character through
 * Unicode's simple lowercase mapping (so "Ülrich" becomes "ülrich"). Bytes
 * that are not valid UTF-8 are copied unchanged. Never NULL. */
char *str_lower_utf8(const char *s, arena *a);
/* 1 when s is a non-empty RFC 9110 token (an HTTP header name). */
int str_is_token(const char *s);
/* ASCII case-insensitive equality. */
int str_ieq(const char *a, const char *b);

#endif
