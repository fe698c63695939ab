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
/* An empty buffer over the caller's mem[0..size) (size >= 1), which it
 * never grows past: it holds size - 1 bytes and the NUL at most. Never
 * buf_free, buf_take or buf_reset it. */
void buf_init_fixed(buf *b, char *mem, size_t size);
int buf_append(buf *b, const void *p, size_t n);
int buf_puts(buf *b, const char *s);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as the inside of a JSON string (without the quotes). */
int buf_json_escape(buf *b, const char *s, size_t n);
/* Hands the data to the caller (free() it) and resets the buffer. */
char *buf_take(buf *b, size_t *len);
void buf_reset(buf *b);
void buf_free(buf *b);

#endif
