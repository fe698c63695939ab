#include "http/router.h"

#include <string.h>

/* Length of the segment starting at s (up to the next '/' or the end). */
static size_t seg_len(const char *s)
{
    return strcspn(s, "/");
}

int router_match(const char *pattern, const char *path, router_param *params, int *nparams,
                 arena *a)
{
    const char *p = pattern, *u = path;
    const char *rest = NULL; /* what a final "*" matched, params[star] */
    int n = 0, star = -1;
    *nparams = 0;
    while (*p && *u) {
        if (*p != '/' || *u != '/')
            return 0;
        p++;
        u++;
        if (p[0] == '*' && p[1] == '\0') {
            if (n >= ROUTER_MAX_PARAMS)
                return 0;
            params[n].name = p;
            params[n].name_len = 1;
            rest = u;
            star = n++;
            p++;
            u += strlen(u);
            break;
        }
        if (*p == ':') {
            size_t pl = seg_len(p), ul = seg_len(u);
            if (ul == 0 || n >= ROUTER_MAX_PARAMS)
                return 0;
            params[n].name = p + 1;
            params[n].name_len = pl - 1;
            params[n].value = u; /* copied into the arena once all matched */
            n++;
            p += pl;
            u += ul;
        } else {
            /* a literal segment, compared as it goes: every request tries
             * the table's patterns in turn, and most differ in a byte or two */
            while (*p && *p != '/' && *p == *u) {
                p++;
                u++;
            }
            if ((*p && *p != '/') || (*u && *u != '/'))
                return 0;
        }
    }
    if (*p || *u)
        return 0;
    for (int i = 0; i < n; i++)
        params[i].value = i == star ? arena_strdup(a, rest)
                                    : arena_strndup(a, params[i].value, seg_len(params[i].value));
    *nparams = n;
    return 1;
}
