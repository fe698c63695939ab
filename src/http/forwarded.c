#include "http/forwarded.h"

#include <arpa/inet.h>
#include <string.h>

void forwarded_begin(forwarded_scan *s, int hops)
{
    s->hops = hops < 1 ? 1 : hops > FORWARDED_HOPS_MAX ? FORWARDED_HOPS_MAX : hops;
    s->seen = 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

void forwarded_feed(forwarded_scan *s, const char *value)
{
    if (!value)
        return;
    for (const char *p = value;;) {
        size_t n = strcspn(p, ",");
        const char *b = p, *e = p + n;
        while (b < e && is_space(*b))
            b++;
        while (e > b && is_space(e[-1]))
            e--;
        if (e > b) {
            int slot = (int)(s->seen % s->hops);
            s->at[slot] = b;
            s->len[slot] = (size_t)(e - b);
            s->seen++;
        }
        if (!p[n])
            return;
        p += n + 1;
    }
}

int forwarded_client(const forwarded_scan *s, char *out, size_t outlen)
{
    if (s->seen < s->hops || outlen < INET6_ADDRSTRLEN)
        return -1;
    /* the oldest of the last `hops` entries */
    int slot = (int)(s->seen % s->hops);
    char text[INET6_ADDRSTRLEN];
    size_t n = s->len[slot];
    if (n >= sizeof(text))
        return -1;
    memcpy(text, s->at[slot], n);
    text[n] = '\0';
    unsigned char addr[sizeof(struct in6_addr)];
    int family = strchr(text, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(family, text, addr) != 1 || !inet_ntop(family, addr, out, (socklen_t)outlen))
        return -1;
    return 0;
}
