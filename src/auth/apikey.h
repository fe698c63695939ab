/*
 * apikey.h - API keys: "aop_" and 43 base64url characters (32 random bytes).
 *
 * Only the hash (lowercase hex SHA-256 of the whole key) and the prefix (its
 * first 12 characters, for display and lookup) are stored; the key itself is
 * shown once to its owner.
 */
#ifndef AOP_AUTH_APIKEY_H
#define AOP_AUTH_APIKEY_H

#define APIKEY_LEN 47
#define APIKEY_PREFIX_LEN 12
#define APIKEY_HASH_LEN 64

/* A new key, its prefix and its hash (all NUL-terminated, caller's buffers). */
void auth_apikey_new(char key[APIKEY_LEN + 1], char prefix[APIKEY_PREFIX_LEN + 1],
                     char hash[APIKEY_HASH_LEN + 1]);

/* 0 and the hash when key is well-formed (exactly APIKEY_LEN characters,
 * "aop_" then base64url characters only); -1 otherwise, hash untouched.
 * key may be NULL (-1). */
int auth_apikey_hash(const char *key, char hash[APIKEY_HASH_LEN + 1]);

#endif
