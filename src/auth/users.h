/*
 * users.h - the user service: validation and creation shared by the CLI,
 * the start-up admin and (later) registration.
 */
#ifndef AOP_AUTH_USERS_H
#define AOP_AUTH_USERS_H

#include <jansson.h>
#include <stddef.h>

#include "store/store.h"

#define USER_NAME_MAX 200
#define USER_PASSWORD_MIN 8
#define USER_PASSWORD_MAX 72

typedef struct {
    const char *email;
    const char *name;
    const char *role;
    const char *password;
} users_new;

/* Checks every field of n; appends {field, message} objects to details (an
 * array the caller owns). Returns the number of problems found. */
int users_validate(const users_new *n, json_t *details);

/* Validates, hashes the password at cost and inserts the user with a
 * lowercased email. AOP_ERR_VALIDATION fills details; AOP_ERR_CONFLICT when
 * the email is taken. On success *out is filled from a. */
aop_err users_create(store *s, const users_new *n, int cost, json_t *details, store_user *out,
                     arena *a);

/* The contract's user object (never the password hash). New reference. */
json_t *users_to_json(const store_user *u);

#endif
