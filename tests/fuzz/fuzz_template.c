/* libFuzzer target: the template scanner over raw bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks what the scanner promises about one placeholder. */
static void check_ref(const char *s, size_t len, size_t from, const template_ref *r)
{
    if (r->start < from || r->end > len || r->end < r->start + 4 || s[r->start] != '{' ||
        s[r->end - 1] != '}' || r->nseg == 0 || r->nseg > TEMPLATE_MAX_SEGMENTS ||
        r->rest > r->nseg)
        __builtin_trap();
    for (size_t i = 0; i < r->nseg; i++)
        if (r->seg[i].len == 0 || r->seg[i].p < s + r->start || r->seg[i].p + r->seg[i].len > s + r->end)
            __builtin_trap();
    if (r->root == TEMPLATE_NODES && (r->node.p != r->seg[1].p || r->rest != 3))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A NUL-terminated copy, so that reading past len would be caught. */
    char *s = malloc(size + 1);
    char err[256];
    size_t pos = 0, from = 0;
    template_ref r;
    int rc;
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    while ((rc = template_next(s, size, &pos, &r, err, sizeof(err))) == 1) {
        check_ref(s, size, from, &r);
        size_t index;
        for (size_t i = 0; i < r.nseg; i++)
            template_seg_index(r.seg[i], &index);
        from = pos;
    }
    if (rc == 0 && pos != size)
        __builtin_trap();
    if ((template_validate(s, size, err, sizeof(err)) == 0) != (rc == 0))
        __builtin_trap();
    if (template_is_whole(s, size, &r) && (r.start != 0 || r.end != size || rc != 0))
        __builtin_trap();
    template_validate(s, size, NULL, 0);
    free(s);
    return 0;
}
