/*
 * hash.h - a seeded 64-bit hash for in-process hash tables.
 *
 * FNV-1a over the bytes from a random per-table basis (so clients cannot
 * pick keys that collide), then a 64-bit finaliser so that both the top bits
 * (stripe) and the low bits (bucket) are well mixed. Not cryptographic.
 */
#ifndef AOP_CORE_HASH_H
#define AOP_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash_seeded(uint64_t seed, const void *p, size_t n);

#endif
