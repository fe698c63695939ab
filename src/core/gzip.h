/*
 * gzip.h - gzip encoding of response bodies, and the Accept-Encoding check.
 */
#ifndef AOP_CORE_GZIP_H
#define AOP_CORE_GZIP_H

#include <stddef.h>

/* Compresses in[0..n) into a new malloc'd gzip stream (*out, *outlen).
 * Returns 0, or -1 (nothing allocated) when zlib fails. */
int gzip_compress(const char *in, size_t n, char **out, size_t *outlen);

/* 1 when an Accept-Encoding value accepts gzip (a "gzip" or "*" token whose
 * q is not 0). NULL accepts nothing. */
int gzip_accepted(const char *accept_encoding);

#endif
