/*
 * password.h - bcrypt ($2b$) hashing through libxcrypt.
 * Hashes stay compatible with Node's bcrypt, so users can be migrated.
 */
#ifndef AOP_AUTH_PASSWORD_H
#define AOP_AUTH_PASSWORD_H

#include "core/err.h"

#define PASSWORD_HASH_MAX 128

/* Hashes password with a fresh random salt at cost (4..31) into out. */
aop_err auth_password_hash(const char *password, int cost, char out[PASSWORD_HASH_MAX]);
/* 1 when password matches hash (compared in constant time), else 0. */
int auth_password_verify(const char *password, const char *hash);
/* Checks password against a hash no account has, made once at cost: a login
 * for an unknown email spends the same time as a wrong password. Always 0. */
int auth_password_verify_dummy(const char *password, int cost);

#endif
