#include "auth/user_cache.h"
#include "core/buf.h"
#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROW_TTL_MS (3600LL * 1000)
#define ROW_MAGIC "U1"
#define NFIELDS 9

/* ROW_MAGIC then the fields, each ending in NUL. */
static void encode(const store_user *u, buf *b)
{
    const char *f[NFIELDS] = {u->id,         u->email,      u->name,
                              u->role,       u->preferences, u->is_active ? "1" : "0",
                              u->created_at, u->updated_at, u->last_login_at};
    buf_append(b, ROW_MAGIC, sizeof(ROW_MAGIC));
    for (int i = 0; i < NFIELDS; i++)
        buf_append(b, f[i] ? f[i] : "", strlen(f[i] ? f[i] : "") + 1);
}

/* 0 when v[0..len) is a whole encoded row (strings copied into a). */
static int decode(const char *v, size_t len, store_user *u, arena *a)
{
    const char *f[NFIELDS];
    const char *p = v + sizeof(ROW_MAGIC), *end = v + len;
    if (len < sizeof(ROW_MAGIC) || memcmp(v, ROW_MAGIC, sizeof(ROW_MAGIC)) != 0)
        return -1;
    for (int i = 0; i < NFIELDS; i++) {
        const char *nul = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
        if (!nul)
            return -1;
        f[i] = p;
        p = nul + 1;
    }
    memset(u, 0, sizeof(*u));
    str_copy(u->id, sizeof(u->id), f[0]);
    u->email = arena_strdup(a, f[1]);
    u->name = arena_strdup(a, f[2]);
    u->password_hash = arena_strdup(a, "");
    u->role = arena_strdup(a, f[3]);
    u->preferences = arena_strdup(a, f[4]);
    u->is_active = f[5][0] == '1';
    str_copy(u->created_at, sizeof(u->created_at), f[6]);
    str_copy(u->updated_at, sizeof(u->updated_at), f[7]);
    str_copy(u->last_login_at, sizeof(u->last_login_at), f[8]);
    return 0;
}

void user_cache_read(const char *id, cache_read *r, cache_slot *slot)
{
    cache_item_read(r, slot, "user", id);
}

aop_err user_cache_get(const app_ctx *app, const char *id, store_user *out, arena *a)
{
    cache_read r;
    cache_slot slot;
    user_cache_read(id, &r, &slot);
    cache_get_many(app->cache, &r, 1, CACHE_ITEM_LINK);
    return user_cache_got(app, id, &r, &slot, out, a);
}

aop_err user_cache_got(const app_ctx *app, const char *id, cache_read *r, cache_slot *slot,
                       store_user *out, arena *a)
{
    char *v = NULL;
    size_t len = 0;
    if (cache_item_took(r, slot, &v, &len) == AOP_OK) {
        int bad = decode(v, len, out, a);
        free(v);
        if (!bad)
            return AOP_OK;
    }
    aop_err rc = store_user_get_by_id(app->store, id, out, a);
    if (rc != AOP_OK)
        return rc;
    out->password_hash = arena_strdup(a, "");
    buf b;
    buf_init(&b, 0);
    encode(out, &b);
    cache_item_fill(app->cache, slot, b.data, b.len, ROW_TTL_MS);
    buf_free(&b);
    return AOP_OK;
}

void user_cache_changed(const app_ctx *app, const char *id)
{
    cache_item_changed(app->cache, "user", id, ROW_TTL_MS);
}
