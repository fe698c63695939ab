/*
 * user_cache.h - user rows by id through the cache port.
 *
 * Every authenticated request needs its caller's current role and active
 * flag. They are read through the cache (TTL 1 h) and every committed change
 * to a user replaces the cached row with a tombstone for a minute, during
 * which readers go to the store and may not cache what they read. Readers
 * only ever add (set-if-absent), so a reader that fetched the row just
 * before a change can never put the old row back over the tombstone: a role
 * change or a deactivation is seen by the very next request.
 *
 * Cached rows carry no password hash; code that verifies a password reads
 * the store.
 */
#ifndef AOP_AUTH_USER_CACHE_H
#define AOP_AUTH_USER_CACHE_H

#include "app.h"

/* The user (password_hash "") from the cache or the store. */
aop_err user_cache_get(const app_ctx *app, const char *id, store_user *out, arena *a);
/* To call after every committed change to user id. */
void user_cache_changed(const app_ctx *app, const char *id);

#endif
