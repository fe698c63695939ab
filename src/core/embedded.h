/*
 * embedded.h - files built into the binary (scripts/embed.sh --files).
 *
 * The Makefile turns a list of files into a table of these, sorted by
 * name, compiled with the rest; nothing is read from disk at run time.
 */
#ifndef AOP_CORE_EMBEDDED_H
#define AOP_CORE_EMBEDDED_H

#include <stddef.h>

typedef struct {
    const char *name;          /* the path below the embedded folder, e.g. "vendor/htm.mjs" */
    const unsigned char *data; /* the bytes, then a NUL */
    size_t len;                /* without the NUL */
    const char *etag;          /* a quoted strong ETag: the content's CRC-32 and size */
} embedded_file;

#endif
