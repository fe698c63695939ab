/*
 * call_secrets.h - the secrets a transfer sends (calls.c), for the kinds'
 * files: an API key, a credential's values.
 *
 * A kind names each secret it puts into a request with call_secret before
 * the transfer starts. calls.c then redacts them (core/redact.h) from the
 * response before the kind's finish reads it, and again from the outcome
 * (error message, model, output) before the engine stores it, hands it to
 * later nodes or logs it. A call with no secret is not scanned at all.
 *
 * Kept beside engine_int.h, which holds the rest of the call interface.
 */
#ifndef AOP_ENGINE_CALL_SECRETS_H
#define AOP_ENGINE_CALL_SECRETS_H

#include "engine/kinds.h"

/* Adds secret (copied; wiped when the call is freed). 0, or -1 when the
 * call holds too many: then the secret must not be sent. */
int call_secret(call *c, const char *secret);

#endif
