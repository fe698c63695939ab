/*
 * user_cache.h - user rows by id through the cache port.
 *
 * Every authenticated request needs its caller's current role and active
 * flag; they are read through the cache (TTL 1 h) as items of namespace
 * "user" (infra/cache_item.h), so a role change or a deactivation is seen by
 * the very next request, and the row is cached again right after.
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
