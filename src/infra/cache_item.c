#include "infra/cache_item.h"
#include "core/ids.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA_MAGIC 'D'
#define MARK_MAGIC 'M'
#define STAMP_HEX 32

/* Reads key: AOP_OK with the item, or AOP_ERR_NOT_FOUND with the stamp of a
 * change marker in stamp ("" when the key held nothing usable). */
static aop_err lookup(cache *c, const char *key, char **val, size_t *len,
                      char stamp[STAMP_HEX + 1])
{
    char *v = NULL;
    size_t n = 0;
    stamp[0] = '\0';
    if (cache_get(c, key, &v, &n) != AOP_OK)
        return AOP_ERR_NOT_FOUND;
    if (n >= 1 && v[0] == DATA_MAGIC) {
        memmove(v, v + 1, n); /* the NUL moves too */
        *val = v;
        *len = n - 1;
        return AOP_OK;
    }
    if (n == STAMP_HEX + 1 && v[0] == MARK_MAGIC)
        memcpy(stamp, v + 1, STAMP_HEX + 1);
    free(v);
    return AOP_ERR_NOT_FOUND;
}

aop_err cache_item_get(cache *c, const char *ns, const char *id, cache_slot *slot, char **val,
                       size_t *len)
{
    char stamp[STAMP_HEX + 1], unused[STAMP_HEX + 1];
    *val = NULL;
    *len = 0;
    snprintf(slot->key, sizeof(slot->key), "%s:%s", ns, id);
    if (lookup(c, slot->key, val, len, stamp) == AOP_OK)
        return AOP_OK;
    if (!stamp[0])
        return AOP_ERR_NOT_FOUND;
    /* changed: the item lives under the marker's stamp */
    snprintf(slot->key, sizeof(slot->key), "%s:%s@%s", ns, id, stamp);
    return lookup(c, slot->key, val, len, unused);
}

void cache_item_fill(cache *c, const cache_slot *slot, const void *val, size_t len,
                     long long ttl_ms)
{
    char *v = xmalloc(len + 1);
    v[0] = DATA_MAGIC;
    memcpy(v + 1, val, len);
    cache_add(c, slot->key, v, len + 1, ttl_ms); /* never over a newer marker */
    free(v);
}

void cache_item_changed(cache *c, const char *ns, const char *id, long long ttl_ms)
{
    char key[CACHE_ITEM_KEY_MAX], mark[STAMP_HEX + 2];
    snprintf(key, sizeof(key), "%s:%s", ns, id);
    mark[0] = MARK_MAGIC;
    ids_random_hex(mark + 1, STAMP_HEX / 2);
    if (cache_set(c, key, mark, STAMP_HEX + 1, ttl_ms) != AOP_OK) {
        log_warn("cannot mark a cached item changed; deleting it", LF_S("key", key));
        cache_del(c, key);
    }
}
