/*
 * secure.h - comparisons that do not leak through timing.
 */
#ifndef AOP_CORE_SECURE_H
#define AOP_CORE_SECURE_H

/* 1 when a and b are equal. Hashes both with SHA-256 first and compares the
 * digests with CRYPTO_memcmp, so neither content nor length leaks. */
int secure_str_eq(const char *a, const char *b);

#endif
