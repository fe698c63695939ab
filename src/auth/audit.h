/*
 * audit.h - the audit trail: security-relevant events (sign-ins, key and
 * role changes, revocations) as rows of audit_events and log lines.
 */
#ifndef AOP_AUTH_AUDIT_H
#define AOP_AUTH_AUDIT_H

#include "app.h"
#include "store/store.h"

/* Stores e (borrowed) and logs it. Never fails its caller: an event that
 * cannot be stored is logged as an error, with its action. */
void audit_record(const app_ctx *app, const store_audit *e);

#endif
