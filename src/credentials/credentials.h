/*
 * credentials.h - the credentials service behind /api/credentials
 * (docs/api.md, "Credentials"): validation, who sees what, sealing, the
 * key at start, and the rotation of `aop credentials rotate`.
 *
 * Access: the owner and admins read, change and delete a credential; to
 * anyone else it does not exist (AOP_ERR_NOT_FOUND). Lists show the
 * caller's own (admins: all, filter ownerId).
 *
 * The secret data is sealed (vault.h) with the credential's id bound, and
 * never leaves this service in a response: the JSON of a credential holds
 * its fields (the data keys held) and hint ("…" and the last 4 characters
 * of its main secret) instead. A change of data opens the sealed data,
 * merges the keys sent over the keys held and seals the result again, on
 * the condition that nobody changed it meanwhile.
 *
 * JSON text handed out is from the arena.
 */
#ifndef AOP_CREDENTIALS_CREDENTIALS_H
#define AOP_CREDENTIALS_CREDENTIALS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "app.h"
#include "credentials/vault.h"
#include "workflows/workflows.h"

#define CREDENTIALS_NAME_MAX 200          /* characters */
#define CREDENTIALS_DESCRIPTION_MAX 5000  /* characters */
#define CREDENTIALS_URL_MAX 2048          /* bytes of a baseUrl */
#define CREDENTIALS_ROTATE_BATCH 100      /* rows re-sealed in one transaction */

/* Creates a credential of c from body (a JSON object, borrowed). Problems
 * go to details (AOP_ERR_VALIDATION); AOP_ERR_CONFLICT when c has one of
 * that name, or (why says so) CREDENTIALS_MAX_PER_USER of them. */
aop_err credentials_create(const app_ctx *app, const wf_caller *c, const json_t *body,
                           json_t *details, char *why, size_t whylen, char **json, size_t *len,
                           arena *a);
aop_err credentials_get(const app_ctx *app, const wf_caller *c, const char *id, char **json,
                        size_t *len, arena *a);
/* The list response of what c may see matching q (q->reader set here). */
aop_err credentials_list(const app_ctx *app, const wf_caller *c, store_cred_query *q,
                         long long page, char **json, size_t *len, arena *a);
/* Applies body's members. AOP_ERR_VALIDATION (details), AOP_ERR_NOT_FOUND,
 * AOP_ERR_CONFLICT (the name), AOP_ERR_VERSION_CONFLICT (changed
 * meanwhile), AOP_ERR_INTERNAL when no configured key opens its data. */
aop_err credentials_update(const app_ctx *app, const wf_caller *c, const char *id,
                           const json_t *body, json_t *details, char **json, size_t *len,
                           arena *a);
aop_err credentials_delete(const app_ctx *app, const wf_caller *c, const char *id);

/*
 * For the workflows service: each node of definition (validated already)
 * whose config names a credentialId must name a credential of owner_id of
 * a type its kind can send (http: http_*; llm and agent: openai,
 * anthropic). Problems go to details, naming the node's field.
 * AOP_ERR_VALIDATION when there are any, AOP_ERR_UNAVAILABLE when the
 * store does not answer.
 */
aop_err credentials_check_definition(const app_ctx *app, const char *owner_id,
                                     const json_t *definition, json_t *details);

/*
 * The vault for cfg at start: CREDENTIALS_KEY (required in production and
 * with PostgreSQL; otherwise, when unset, read from or generated into a
 * file next to the SQLite database, mode 0600) and CREDENTIALS_OLD_KEYS,
 * checked against the stored canary (created by the first start). NULL
 * with a message naming CREDENTIALS_KEY when no key opens the canary or a
 * key is malformed (*config_error true: exit 2), or when the store fails.
 */
vault *credentials_vault_open(const config *cfg, store *s, bool *config_error, char *err,
                              size_t errlen);

typedef struct {
    long long rotated; /* re-sealed under the current key */
    long long failed;  /* that no configured key opens */
} credentials_rotation;
/* Re-seals every credential and webhook secret not sealed by the current key, in
 * transactions of CREDENTIALS_ROTATE_BATCH, then the canary (only when
 * nothing failed). Safe to run again after an interruption, and beside a
 * serving instance (a row changed meanwhile is left to that change, which
 * seals under the current key too). */
aop_err credentials_rotate(store *s, vault *v, credentials_rotation *out);

#endif
