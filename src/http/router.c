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
        size_t pl = seg_len(p), ul = seg_len(u);
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
            if (ul == 0 || n >= ROUTER_MAX_PARAMS)
                return 0;
            params[n].name = p + 1;
            params[n].name_len = pl - 1;
            params[n].value = u; /* copied into the arena once all matched */
            n++;
        } else if (pl != ul || memcmp(p, u, pl) != 0) {
            return 0;
        }
        p += pl;
        u += ul;
    }
    if (*p || *u)
        return 0;
    for (int i = 0; i < n; i++)
        params[i].value = i == star ? arena_strdup(a, rest)
                                    : arena_strndup(a, params[i].value, seg_len(params[i].value));
    *nparams = n;
    return 1;
}
