#include "infra/cache_item.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/str.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA_MAGIC 'D'
#define MARK_MAGIC CACHE_ITEM_LINK
#define STAMP_HEX 32

void cache_item_read(cache_read *r, cache_slot *slot, const char *ns, const char *id)
{
    STR_CAT(slot->key, sizeof(slot->key), ns, ":", id);
    r->key = slot->key;
}

aop_err cache_item_took(cache_read *r, cache_slot *slot, char **val, size_t *len)
{
    *val = NULL;
    *len = 0;
    bool marked = strlen(r->at) == STAMP_HEX;
    if (r->rc == AOP_OK && r->len >= 1 && r->val[0] == DATA_MAGIC && (marked || !r->at[0])) {
        memmove(r->val, r->val + 1, r->len); /* the NUL moves too */
        *val = r->val;
        *len = r->len - 1;
        r->val = NULL;
        return AOP_OK;
    }
    free(r->val);
    r->val = NULL;
    if (marked) { /* changed: the item lives under the marker's stamp */
        size_t n = strlen(slot->key); /* r->key is slot->key */
        if (n + 1 + STAMP_HEX < sizeof(slot->key)) {
            slot->key[n] = '@';
            memcpy(slot->key + n + 1, r->at, STAMP_HEX + 1);
        }
    }
    return AOP_ERR_NOT_FOUND;
}

aop_err cache_item_get(cache *c, const char *ns, const char *id, cache_slot *slot, char **val,
                       size_t *len)
{
    cache_read r;
    cache_item_read(&r, slot, ns, id);
    cache_get_many(c, &r, 1, MARK_MAGIC);
    return cache_item_took(&r, slot, val, len);
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
