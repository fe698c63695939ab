/*
 * netguard.h - the addresses an http node may not connect to. Pure.
 *
 * Workflows are written by users, and the server usually sits inside a
 * private network: without this check an http node could reach the
 * database, a cloud metadata service (169.254.169.254) or the server itself.
 * The check is made on each address the connection is about to use (after
 * DNS), so a name that resolves to a private address is refused as well.
 *
 * IPv4, blocked: 0.0.0.0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12,
 * 192.0.0/24, 192.0.2/24, 192.168/16, 198.18/15, 198.51.100/24,
 * 203.0.113/24, 224/4 and 240/4 (255.255.255.255 included).
 *
 * IPv6: addresses that carry an IPv4 address are judged by the IPv4 rules on
 * it: IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96 (so :: and ::1 too),
 * NAT64 64:ff9b::/96 (last 32 bits) and 6to4 2002::/16 (bits 16..48).
 * Blocked: fc00::/7, fe80::/10, fec0::/10, ff00::/8, 100::/64,
 * 2001:db8::/32 and 3fff::/20 (documentation), 2001::/23 (IETF protocol
 * assignments: Teredo, benchmarking, ORCHID), 64:ff9b:1::/48 (local NAT64),
 * and everything outside 2000::/3, the only global unicast space.
 *
 * Any other family, a NULL address or a length too short for its family:
 * blocked.
 */
#ifndef AOP_ENGINE_NETGUARD_H
#define AOP_ENGINE_NETGUARD_H

#include <stdbool.h>
#include <sys/socket.h>

/* true when the address is loopback, private, link-local or otherwise not a
 * public unicast address (the rules above). The port is not looked at. */
bool netguard_blocked(const struct sockaddr *sa, socklen_t len);

#endif
