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

#include "infra/cache_item.h"

/* The user (password_hash "") from the cache or the store. */
aop_err user_cache_get(const app_ctx *app, const char *id, store_user *out, arena *a);
/* The same in two halves, so that the cache read can share a round trip
 * with others: user_cache_read sets r up for a cache_get_many batch (link
 * CACHE_ITEM_LINK), user_cache_got answers from it once the batch is read
 * (and frees what r holds). */
void user_cache_read(const char *id, cache_read *r, cache_slot *slot);
aop_err user_cache_got(const app_ctx *app, const char *id, cache_read *r, cache_slot *slot,
                       store_user *out, arena *a);
/* To call after every committed change to user id. */
void user_cache_changed(const app_ctx *app, const char *id);

#endif
