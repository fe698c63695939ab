/*
 * ids.h - randomness and identifiers.
 */
#ifndef AOP_CORE_IDS_H
#define AOP_CORE_IDS_H

#include <stddef.h>

#define UUID_STR_LEN 37 /* 36 characters and the NUL */

/* Fills p with n cryptographically secure random bytes. Aborts if the kernel
 * cannot supply them (there is no safe fallback). */
void ids_random(void *p, size_t n);
/* A new UUIDv7 (time-ordered), lowercase and hyphenated. */
void ids_uuid7(char out[UUID_STR_LEN]);
/* Lowercase hex of n random bytes into out (2n+1 bytes). */
void ids_random_hex(char *out, size_t nbytes);
/* 1 if s is acceptable as a client-supplied request id: 1..128 characters of
 * [A-Za-z0-9._:-]. Anything else is replaced by a generated id. */
int ids_request_id_ok(const char *s);
/* 1 if s is a UUID as this program writes them: 36 characters, lowercase
 * hex in 8-4-4-4-12 groups. */
int ids_uuid_ok(const char *s);

#endif
