/*
 * forwarded.h - the client's address behind trusted proxies (TRUST_PROXY).
 *
 * Each proxy in front of the server appends the address it took the
 * request from to X-Forwarded-For. With `hops` trusted proxies, the client
 * is the entry `hops` places from the right: the one the outermost trusted
 * proxy appended. Everything further left is text the client sent, which
 * is never searched. The X-Forwarded-For lines of a request form one list,
 * in order (a proxy may add its own line after the client's); empty list
 * elements do not count, spaces and tabs around an entry are dropped.
 *
 * No address is chosen (the caller keeps the socket's) when the list has
 * fewer entries than hops (the request did not pass every proxy), or the
 * entry at that place is not a bare IPv4 or IPv6 address (no port, no
 * brackets, no zone). A chosen address is written the one canonical way
 * (inet_ntop), so one client has one rate-limit bucket.
 *
 *   forwarded_scan fs;
 *   forwarded_begin(&fs, hops);
 *   for each X-Forwarded-For line: forwarded_feed(&fs, value);
 *   if (forwarded_client(&fs, ip, sizeof(ip)) != 0) ... the socket's address
 *
 * Nothing is allocated; values are borrowed until forwarded_client.
 */
#ifndef AOP_HTTP_FORWARDED_H
#define AOP_HTTP_FORWARDED_H

#include <stddef.h>

#define FORWARDED_HOPS_MAX 16 /* TRUST_PROXY's upper bound (config.c) */

typedef struct {
    int hops;
    long long seen; /* entries so far */
    /* the last `hops` entries, a ring indexed by seen % hops */
    const char *at[FORWARDED_HOPS_MAX];
    size_t len[FORWARDED_HOPS_MAX];
} forwarded_scan;

/* hops: 1..FORWARDED_HOPS_MAX (clamped). */
void forwarded_begin(forwarded_scan *s, int hops);
/* One X-Forwarded-For line's value (NULL: ignored). */
void forwarded_feed(forwarded_scan *s, const char *value);
/* The client's address into out (at least INET6_ADDRSTRLEN bytes): 0, or
 * -1 when none is chosen (out untouched). */
int forwarded_client(const forwarded_scan *s, char *out, size_t outlen);

#endif
