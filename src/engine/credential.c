/*
 * credential.c - opening the credential a node names, once per call
 * (engine_int.h). The row is read straight from the store and opened with
 * the vault the engine was started with: the engine calls no service.
 */
#include <string.h>

#include "credentials/use.h"
#include "engine/engine_int.h"

int engine_credential(loop *lp, run *r, const json_t *conf, credentials_use *u,
                      node_outcome *o)
{
    const char *id = json_string_value(json_object_get(conf, "credentialId"));
    memset(u, 0, sizeof(*u));
    if (!id)
        return 0;
    engine *e = lp->e;
    switch (e->vault ? credentials_use_open(e->st, e->vault, id, r->d->owner_id, u)
                     : CREDENTIALS_USE_UNREADABLE) {
    case CREDENTIALS_USE_OK:
        return 0;
    case CREDENTIALS_USE_MISSING:
        outcome_fail(o, "CREDENTIAL_NOT_FOUND", false,
                     "credential %s does not exist or is not the workflow owner's", id);
        return -1;
    case CREDENTIALS_USE_UNREADABLE:
        outcome_fail(o, "CREDENTIAL_UNREADABLE", false,
                     "credential %s cannot be decrypted with the configured keys", id);
        return -1;
    default:
        outcome_fail(o, "CREDENTIAL_UNAVAILABLE", true,
                     "credential %s cannot be read now (the database did not answer)", id);
        return -1;
    }
}
