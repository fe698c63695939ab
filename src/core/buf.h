/*
 * buf.h - a growable byte buffer with a maximum set at creation.
 *
 * Appends that would take the buffer past its maximum fail with -1 and leave
 * the content as it was; the data is always NUL-terminated for convenience.
 */
#ifndef AOP_CORE_BUF_H
#define AOP_CORE_BUF_H

#include <stddef.h>

#include "core/mem.h"

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
} buf;

/* An empty buffer that may grow to max bytes (0 means no limit besides memory). */
void buf_init(buf *b, size_t max);
int buf_append(buf *b, const void *p, size_t n);
int buf_puts(buf *b, const char *s);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as the inside of a JSON string (without the quotes). */
int buf_json_escape(buf *b, const char *s, size_t n);
/* Hands the data to the caller (free() it) and resets the buffer. */
char *buf_take(buf *b, size_t *len);
void buf_reset(buf *b);
void buf_free(buf *b);

/* Bounded copy: always NUL-terminates; returns the length of src. */
size_t str_copy(char *dst, size_t dstsize, const char *src);
/* Strict base-10 parse of a whole string into [min, max]; 0 on success, -1 otherwise. */
int str_to_ll(const char *s, long long min, long long max, long long *out);
/* 1 when s looks like an email address: one '@' with a non-empty local part, a
 * domain with a dot inside it, no spaces or control characters, at most 254 bytes. */
int str_is_email(const char *s);
/* Lowercases ASCII letters in place; returns s. */
char *str_lower(char *s);
/* Characters (not bytes) in UTF-8 text: the bytes that do not continue one. */
size_t str_utf8_len(const char *s);
/* Bytes of s's first max UTF-8 characters (all of s when shorter). */
size_t str_utf8_prefix(const char *s, size_t max);
/* A lowercased copy of UTF-8 text s in the arena: every character through
 * Unicode's simple lowercase mapping (so "Ülrich" becomes "ülrich"). Bytes
 * that are not valid UTF-8 are copied unchanged. Never NULL. */
char *str_lower_utf8(const char *s, arena *a);
/* ASCII case-insensitive equality. */
int str_ieq(const char *a, const char *b);

#endif
