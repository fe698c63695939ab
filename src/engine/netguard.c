#include "engine/netguard.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

/* An IPv4 range: the address in host order and the prefix length. */
typedef struct {
    uint32_t net;
    unsigned bits;
} v4_range;

#define V4(a, b, c, d)                                                                    \
    (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

static const v4_range v4_blocked[] = {
    {V4(0, 0, 0, 0), 8},      /* "this" network */
    {V4(10, 0, 0, 0), 8},     /* private */
    {V4(100, 64, 0, 0), 10},  /* carrier-grade NAT */
    {V4(127, 0, 0, 0), 8},    /* loopback */
    {V4(169, 254, 0, 0), 16}, /* link-local, cloud metadata */
    {V4(172, 16, 0, 0), 12},  /* private */
    {V4(192, 0, 0, 0), 24},   /* IETF protocol assignments */
    {V4(192, 0, 2, 0), 24},   /* documentation */
    {V4(192, 168, 0, 0), 16}, /* private */
    {V4(198, 18, 0, 0), 15},  /* benchmarking */
    {V4(198, 51, 100, 0), 24}, /* documentation */
    {V4(203, 0, 113, 0), 24}, /* documentation */
    {V4(224, 0, 0, 0), 4},    /* multicast */
    {V4(240, 0, 0, 0), 4},    /* reserved, broadcast */
};

static bool v4_is_blocked(uint32_t a)
{
    for (size_t i = 0; i < sizeof(v4_blocked) / sizeof(v4_blocked[0]); i++) {
        uint32_t mask = ~(uint32_t)0 << (32 - v4_blocked[i].bits);
        if ((a & mask) == v4_blocked[i].net)
            return true;
    }
    return false;
}

/* The IPv4 address in p[0..4) (network order) in host order. */
static uint32_t v4_at(const uint8_t *p)
{
    return V4(p[0], p[1], p[2], p[3]);
}

/* What an IPv6 range means: blocked, allowed, or judged by the IPv4 address
 * found at byte offset v4 inside it. */
typedef enum { V6_BLOCK, V6_ALLOW, V6_EMBEDDED } v6_verdict;

typedef struct {
    uint8_t net[16];
    unsigned bits;
    v6_verdict verdict;
    unsigned v4; /* V6_EMBEDDED: offset of the IPv4 address */
} v6_range;

/* First match wins, so the order matters: the ranges that embed IPv4 and the
 * blocked ranges inside 2000::/3 come before 2000::/3 itself, and the last
 * entry blocks everything else. */
static const v6_range v6_ranges[] = {
    {{0}, 96, V6_EMBEDDED, 12},                               /* ::/96 */
    {{[10] = 0xff, [11] = 0xff}, 96, V6_EMBEDDED, 12},        /* ::ffff:0:0/96 */
    {{0x00, 0x64, 0xff, 0x9b}, 96, V6_EMBEDDED, 12},          /* 64:ff9b::/96 */
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, V6_BLOCK, 0},  /* 64:ff9b:1::/48 */
    {{0x01, 0x00}, 64, V6_BLOCK, 0},                          /* 100::/64 */
    {{0x20, 0x02}, 16, V6_EMBEDDED, 2},                       /* 2002::/16 */
    {{0x20, 0x01, 0x0d, 0xb8}, 32, V6_BLOCK, 0},              /* 2001:db8::/32 */
    {{0x20, 0x01}, 23, V6_BLOCK, 0},                          /* 2001::/23 */
    {{0x3f, 0xff}, 20, V6_BLOCK, 0},                          /* 3fff::/20 */
    {{0xfc}, 7, V6_BLOCK, 0},                                 /* fc00::/7 */
    {{0xfe, 0x80}, 10, V6_BLOCK, 0},                          /* fe80::/10 */
    {{0xfe, 0xc0}, 10, V6_BLOCK, 0},                          /* fec0::/10 */
    {{0xff}, 8, V6_BLOCK, 0},                                 /* ff00::/8 */
    {{0x20}, 3, V6_ALLOW, 0},                                 /* 2000::/3 */
    {{0}, 0, V6_BLOCK, 0},                                    /* ::/0 */
};

static bool v6_in(const uint8_t *a, const v6_range *r)
{
    unsigned full = r->bits / 8, rest = r->bits % 8;
    if (memcmp(a, r->net, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == r->net[full];
}

static bool v6_is_blocked(const uint8_t *a)
{
    for (size_t i = 0; i < sizeof(v6_ranges) / sizeof(v6_ranges[0]); i++) {
        const v6_range *r = &v6_ranges[i];
        if (!v6_in(a, r))
            continue;
        if (r->verdict == V6_EMBEDDED)
            return v4_is_blocked(v4_at(a + r->v4));
        return r->verdict == V6_BLOCK;
    }
    return true;
}

bool netguard_blocked(const struct sockaddr *sa, socklen_t len)
{
    if (!sa || len < (socklen_t)sizeof(sa_family_t))
        return true;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in)); /* sa may not be aligned for sockaddr_in */
        return v4_is_blocked(ntohl(in.sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof(in6));
        return v6_is_blocked(in6.sin6_addr.s6_addr);
    }
    return true;
}
