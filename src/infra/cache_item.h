/*
 * cache_item.h - single items (a user, a workflow) cached so that no read
 * after a committed write is ever stale, on one instance or many.
 *
 * An item starts under "<ns>:<id>". A committed change replaces that key
 * with a marker naming a fresh random stamp; from then on the item lives
 * under "<ns>:<id>@<stamp>". Readers only ever add (set-if-absent), and only
 * under the key the marker they saw names, so a reader that fetched the item
 * from the store just before a change can at worst fill a key that nobody
 * reads any more; the next reader after the change misses and reads the
 * store. Markers live as long as the items (ttl_ms of the namespace).
 *
 * Usage:
 *     cache_slot slot;
 *     if (cache_item_get(c, "wf", id, &slot, &val, &len) == AOP_OK) -> use val
 *     (one round trip: a marker is followed where it is read)
 *     else read the store, then cache_item_fill(c, &slot, bytes, n, ttl)
 *     after each committed write: cache_item_changed(c, "wf", id, ttl)
 */
#ifndef AOP_INFRA_CACHE_ITEM_H
#define AOP_INFRA_CACHE_ITEM_H

#include "infra/cache.h"

#define CACHE_ITEM_KEY_MAX 160

/* Where a value read from the store belongs (set by cache_item_get). */
typedef struct {
    char key[CACHE_ITEM_KEY_MAX];
} cache_slot;

/* AOP_OK with the item (malloc'd, NUL-terminated; caller frees) in *val, or
 * AOP_ERR_NOT_FOUND with slot naming where a fill belongs. ns and id must be
 * short (together under 100 bytes). */
aop_err cache_item_get(cache *c, const char *ns, const char *id, cache_slot *slot, char **val,
                       size_t *len);
/* The byte a change marker starts with: the link of cache_get_many batches
 * that read items. */
#define CACHE_ITEM_LINK 'M'
/* Sets r up to read the item (ns, id) in a cache_get_many batch with link
 * CACHE_ITEM_LINK (with other keys: any whose values never start with it);
 * r->key points into slot. */
void cache_item_read(cache_read *r, cache_slot *slot, const char *ns, const char *id);
/* After the batch, what cache_item_get answers: AOP_OK with the item moved
 * from r into *val, or AOP_ERR_NOT_FOUND with slot naming where a fill
 * belongs. Frees what r still holds. */
aop_err cache_item_took(cache_read *r, cache_slot *slot, char **val, size_t *len);
/* Adds val[0..len) under slot's key unless something is already there. */
void cache_item_fill(cache *c, const cache_slot *slot, const void *val, size_t len,
                     long long ttl_ms);
/* To call after every committed change of the item. */
void cache_item_changed(cache *c, const char *ns, const char *id, long long ttl_ms);

#endif
