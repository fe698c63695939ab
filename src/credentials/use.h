/*
 * use.h - credentials as nodes use them: the types (one table row each)
 * and a credential opened for one call.
 *
 * Shared by the credentials service (credentials.h), which validates and
 * seals, and the engine, which opens a credential for each call a node
 * makes and wipes it when the call is built (engine/credential.c). Only
 * the store and the vault are used here: no service, no cache.
 */
#ifndef AOP_CREDENTIALS_USE_H
#define AOP_CREDENTIALS_USE_H

#include <jansson.h>
#include <stdbool.h>

#include "credentials/vault.h"
#include "store/store.h"

#define CREDENTIALS_KEYS_MAX 2        /* data keys of one type at most */
#define CREDENTIALS_VALUE_MAX 8192    /* bytes of one data value */
#define CREDENTIALS_TOUCH_MS 60000    /* lastUsedAt is written once a minute at most */

/* One credential type (docs/api.md, "Credentials"). */
typedef struct {
    const char *name;
    const char *keys[CREDENTIALS_KEYS_MAX + 1]; /* the data it holds, NULL-ended */
    const char *secret;   /* the main secret: the hint shows its end */
    bool http;            /* sent by http nodes; allowedHosts required */
    const char *base_url; /* LLM types: the default base URL; NULL for http types */
} credentials_type;

extern const credentials_type credentials_types[];
/* The type named name, or NULL. */
const credentials_type *credentials_type_find(const char *name);

/* A credential opened for one call. */
typedef struct credentials_use {
    const credentials_type *type;
    char *base_url;  /* the credential's, else the type's default (LLM types); malloc'd */
    json_t *hosts;   /* allowedHosts */
    json_t *data;    /* the plaintext data: wiped by credentials_use_free */
} credentials_use;

typedef enum {
    CREDENTIALS_USE_OK,
    CREDENTIALS_USE_MISSING,     /* no such credential, or not the owner's */
    CREDENTIALS_USE_UNREADABLE,  /* no configured key opens it (counted by the vault) */
    CREDENTIALS_USE_UNAVAILABLE, /* the store did not answer */
} credentials_use_rc;

/* Opens credential id for a workflow of owner_id into *out (free it with
 * credentials_use_free in every case), and marks it used (lastUsedAt, at
 * most once per CREDENTIALS_TOUCH_MS). */
credentials_use_rc credentials_use_open(store *s, vault *v, const char *id, const char *owner_id,
                                        credentials_use *out);
/* The data value key as a string, or NULL. Borrowed from u. */
const char *credentials_use_value(const credentials_use *u, const char *key);
/* Wipes the plaintext and frees u's members. NULL-safe, can run twice. */
void credentials_use_free(credentials_use *u);

/* Wipes every string inside v (an object of strings), then drops it. */
void credentials_data_wipe(json_t *v);

#endif
