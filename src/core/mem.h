/*
 * mem.h - allocation policy and the request arena.
 *
 * Out-of-memory policy: the x* functions never return NULL; when the system
 * cannot give memory they log one line on stderr and abort(). A server that
 * cannot allocate cannot answer correctly either, and aborting is honest.
 *
 * An arena hands out memory that lives until arena_free(); a request owns one,
 * so handlers rarely free anything themselves.
 */
#ifndef AOP_CORE_MEM_H
#define AOP_CORE_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

typedef struct arena_block arena_block;
typedef struct {
    arena_block *head;
    size_t used_total;
} arena;

/* Memory of at least n bytes, aligned for any type, zeroed. Owned by the arena. */
void *arena_alloc(arena *a, size_t n);
char *arena_strdup(arena *a, const char *s);
char *arena_strndup(arena *a, const char *s, size_t n);
/* printf into the arena; never NULL. */
char *arena_printf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees every block; the arena can be used again afterwards. Safe to call twice. */
void arena_free(arena *a);

#endif
